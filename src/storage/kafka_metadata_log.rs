//! Apache Kafka's KRaft metadata log (`__cluster_metadata-0/`) read as it
//! is (a snapshot for it is made by [`writer`]): the newest snapshot (`<offset>-<epoch>.checkpoint`,
//! Kafka's `RecordsSnapshotWriter` output: record batches framed by a
//! SnapshotHeader and a SnapshotFooter control record) and the log segments
//! (`<base>.log`) after it. Control records (leader changes, the KRaft
//! version and voters) are read for what they say about the quorum and
//! skipped; metadata records are decoded through `metadata::RecordAndVersion`
//! and their metadata transactions (Begin/End/AbortTransactionRecord)
//! resolved, so the caller sees exactly the records Kafka's controller
//! would replay.
//!
//! Anything this reader does not understand (an unknown record type or
//! version, a snapshot that does not end in its footer, a corrupt batch
//! before the log's tail) is an error naming the file and offset; only a
//! torn last batch of the newest segment (a kill -9 mid-append) ends the
//! log quietly, as Kafka's own recovery would truncate it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::metadata::{codec::Reader, RecordAndVersion, FRAME_VERSION};
use crate::record::batch::{self, BatchHeader, LOG_OVERHEAD, MIN_BATCH_LENGTH};
use crate::record::control::ControlRecordType;
use crate::record::default_record;

/// Kafka's metadata log directory (topic `__cluster_metadata`, partition 0).
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
/// The largest snapshot or segment file read: Kafka's default
/// `metadata.log.segment.bytes` is 1 GiB; anything bigger is not a file
/// Kafka wrote.
pub const MAX_METADATA_FILE_BYTES: u64 = 1 << 30;
/// The most metadata records kept in memory while reading.
pub const MAX_METADATA_RECORDS: usize = 20_000_000;
/// Decompression budget per batch (Kafka's controller writes batches of at
/// most `metadata.max.batch.size`-ish records; 64 MiB is far above).
const MAX_BATCH_RECORDS_BYTES: usize = 64 << 20;

/// Kafka's metadata record types that carry no state a standalone broker
/// keeps: NoOpRecord (20), ZkMigrationRecord (21), RemoveDelegationToken
/// (26), RegisterControllerRecord (27), ClearElrRecord (28),
/// UnregisterControllerRecord (29). Metadata transactions (23, 24, 25) are
/// resolved by the reader.
const IGNORED_TYPES: [u32; 6] = [20, 21, 26, 27, 28, 29];
const BEGIN_TRANSACTION: u32 = 23;
const END_TRANSACTION: u32 = 24;
const ABORT_TRANSACTION: u32 = 25;

/// What is wrong with which file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataLogError {
    pub file: PathBuf,
    pub message: String,
}

impl std::fmt::Display for MetadataLogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for MetadataLogError {}

/// The committed metadata records of a Kafka metadata log, in order.
#[derive(Debug, Default)]
pub struct MetadataLogContents {
    pub records: Vec<RecordAndVersion>,
    /// The snapshot the records start from: (end offset, epoch).
    pub snapshot: Option<(i64, i32)>,
    /// The offset after the last record read (snapshot or log).
    pub next_offset: i64,
    /// Voter count of the newest KRaftVoters control record, if any.
    pub voters: Option<usize>,
    /// The values of the newest KRaftVersion and KRaftVoters control
    /// records, as written (a hand-back carries them into its snapshot).
    pub kraft_version_value: Option<Vec<u8>>,
    pub voters_value: Option<Vec<u8>>,
    /// The highest leader epoch read: the snapshot's, or a batch's.
    pub last_epoch: i32,
}

/// Whether `dir` holds files Kafka's metadata log writes (a segment or a
/// snapshot), as opposed to being absent or holding another format.
pub fn is_kafka_metadata_log(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        snapshot_id(&name).is_some() || segment_base(&name).is_some()
    })
}

/// `00000000000000000247-0000000001.checkpoint` → (247, 1).
fn snapshot_id(name: &str) -> Option<(i64, i32)> {
    let stem = name.strip_suffix(".checkpoint")?;
    let (offset, epoch) = stem.split_once('-')?;
    if offset.len() != 20 || epoch.len() != 10 {
        return None;
    }
    Some((offset.parse().ok()?, epoch.parse().ok()?))
}

fn segment_base(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

fn read_file(path: &Path) -> Result<Vec<u8>, MetadataLogError> {
    let err = |message: String| MetadataLogError {
        file: path.to_path_buf(),
        message,
    };
    let len = fs::metadata(path)
        .map_err(|e| err(format!("cannot stat: {e}")))?
        .len();
    if len > MAX_METADATA_FILE_BYTES {
        return Err(err(format!(
            "{len} bytes, more than the {MAX_METADATA_FILE_BYTES} a metadata file may hold"
        )));
    }
    fs::read(path).map_err(|e| err(format!("cannot read: {e}")))
}

/// Reads the metadata log in `dir`: the newest snapshot, then the segments'
/// records after it.
pub fn read(dir: &Path) -> Result<MetadataLogContents, MetadataLogError> {
    let entries = fs::read_dir(dir).map_err(|e| MetadataLogError {
        file: dir.to_path_buf(),
        message: format!("cannot list: {e}"),
    })?;
    let mut snapshots = Vec::new();
    let mut segments = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = snapshot_id(&name) {
            snapshots.push((id, e.path()));
        } else if let Some(base) = segment_base(&name) {
            segments.push((base, e.path()));
        }
    }
    snapshots.sort();
    segments.sort();
    let mut reader = Replay::default();
    let mut next_offset = 0;
    let mut snapshot = None;
    if let Some(&(id, ref path)) = snapshots.last() {
        let bytes = read_file(path)?;
        reader.file = path.clone();
        reader.snapshot(&bytes)?;
        snapshot = Some(id);
        next_offset = id.0;
        reader.last_epoch = reader.last_epoch.max(id.1);
    }
    let last = segments.len().saturating_sub(1);
    for (i, (_, path)) in segments.iter().enumerate() {
        let bytes = read_file(path)?;
        reader.file = path.clone();
        next_offset = reader.segment(&bytes, next_offset, i == last)?;
    }
    // A metadata transaction still open at the end is not committed.
    Ok(MetadataLogContents {
        snapshot,
        ..reader.into_contents(next_offset)
    })
}

/// Reads the records of a buffer holding one snapshot (the fuzz target's
/// entry point too): every record, the transactions resolved.
pub fn read_snapshot_bytes(bytes: &[u8]) -> Result<MetadataLogContents, MetadataLogError> {
    let mut r = Replay::default();
    r.snapshot(bytes)?;
    Ok(r.into_contents(0))
}

/// Reads the records of one segment's bytes from offset 0, a torn tail
/// tolerated (the fuzz target's entry point too).
pub fn read_segment_bytes(bytes: &[u8]) -> Result<MetadataLogContents, MetadataLogError> {
    let mut r = Replay::default();
    let next_offset = r.segment(bytes, 0, true)?;
    Ok(r.into_contents(next_offset))
}

#[derive(Default)]
struct Replay {
    file: PathBuf,
    records: Vec<RecordAndVersion>,
    /// The records of an open metadata transaction.
    pending: Option<Vec<RecordAndVersion>>,
    voters: Option<usize>,
    kraft_version_value: Option<Vec<u8>>,
    voters_value: Option<Vec<u8>>,
    last_epoch: i32,
}

/// One batch framed from `bytes` at `pos`: its header and size, or why not.
fn frame(bytes: &[u8], pos: usize) -> Result<(BatchHeader, usize), String> {
    let rest = &bytes[pos..];
    let h = BatchHeader::parse(rest).map_err(|e| format!("batch header: {e}"))?;
    if h.batch_length < MIN_BATCH_LENGTH || h.magic != batch::CURRENT_MAGIC {
        return Err(format!(
            "batch length {} / magic {} is not a v2 record batch",
            h.batch_length, h.magic
        ));
    }
    let size = h.total_size();
    if size > rest.len() {
        return Err(format!("batch needs {size} bytes, {} are left", rest.len()));
    }
    if !batch::verify_crc(&rest[..size]) {
        return Err("batch CRC does not match its contents".to_string());
    }
    Ok((h, size))
}

impl Replay {
    fn into_contents(self, next_offset: i64) -> MetadataLogContents {
        MetadataLogContents {
            records: self.records,
            snapshot: None,
            next_offset,
            voters: self.voters,
            kraft_version_value: self.kraft_version_value,
            voters_value: self.voters_value,
            last_epoch: self.last_epoch,
        }
    }

    fn err(&self, message: String) -> MetadataLogError {
        MetadataLogError {
            file: self.file.clone(),
            message,
        }
    }

    /// A snapshot must be whole: a header first, a footer last.
    fn snapshot(&mut self, bytes: &[u8]) -> Result<(), MetadataLogError> {
        let mut pos = 0;
        let mut seen_header = false;
        let mut seen_footer = false;
        while pos < bytes.len() {
            if bytes.len() - pos < LOG_OVERHEAD {
                return Err(self.err(format!("{} stray bytes at {pos}", bytes.len() - pos)));
            }
            let (h, size) =
                frame(bytes, pos).map_err(|m| self.err(format!("at byte {pos}: {m}")))?;
            if seen_footer {
                return Err(self.err(format!(
                    "batch at offset {} after the SnapshotFooter",
                    h.base_offset
                )));
            }
            let controls = self.batch(&bytes[pos..pos + size], &h, i64::MIN)?;
            for c in controls {
                match c {
                    ControlRecordType::SnapshotHeader if pos == 0 => seen_header = true,
                    ControlRecordType::SnapshotFooter => seen_footer = true,
                    _ => {}
                }
            }
            if !seen_header {
                return Err(self.err("the snapshot does not start with a SnapshotHeader".into()));
            }
            pos += size;
        }
        if !seen_footer {
            return Err(
                self.err("the snapshot does not end with a SnapshotFooter (incomplete)".into())
            );
        }
        if self.pending.is_some() {
            return Err(
                self.err("a metadata transaction is still open at the snapshot's end".into())
            );
        }
        Ok(())
    }

    /// The records at or after `from` of one segment; returns the offset
    /// after its last batch. `last`: a torn or corrupt tail ends the log.
    fn segment(&mut self, bytes: &[u8], from: i64, last: bool) -> Result<i64, MetadataLogError> {
        let mut pos = 0;
        let mut next = from;
        while pos < bytes.len() {
            let (h, size) = match frame(bytes, pos) {
                Ok(f) => f,
                Err(_) if last && bytes[pos..].iter().all(|b| *b == 0) => break,
                Err(m) if last => {
                    tracing::warn!(
                        "{}: the log ends at byte {pos} (offset {next}): {m}",
                        self.file.display()
                    );
                    break;
                }
                Err(m) => return Err(self.err(format!("at byte {pos}: {m}"))),
            };
            // Kafka compares a snapshot's epoch with its whole log's.
            self.last_epoch = self.last_epoch.max(h.partition_leader_epoch);
            if h.last_offset() >= from {
                self.batch(&bytes[pos..pos + size], &h, from)?;
                next = next.max(h.next_offset());
            }
            pos += size;
        }
        Ok(next)
    }

    /// Applies one batch's records at or after `from`; returns the control
    /// record types it held.
    fn batch(
        &mut self,
        bytes: &[u8],
        h: &BatchHeader,
        from: i64,
    ) -> Result<Vec<ControlRecordType>, MetadataLogError> {
        let at = h.base_offset;
        let section = batch::batch_records(bytes, MAX_BATCH_RECORDS_BYTES)
            .map_err(|e| self.err(format!("batch at offset {at}: {e}")))?;
        let mut controls = Vec::new();
        for rec in default_record::records(&section, h.records_count) {
            let rec = rec.map_err(|e| self.err(format!("batch at offset {at}: {e}")))?;
            let offset = at + i64::from(rec.offset_delta);
            if offset < from {
                continue;
            }
            if h.is_control() {
                let t = ControlRecordType::parse(rec.key)
                    .map_err(|e| self.err(format!("control record at offset {offset}: {e}")))?;
                if let ControlRecordType::Unknown(id) = t {
                    return Err(self.err(format!(
                        "control record type {id} at offset {offset} is not one kastle reads"
                    )));
                }
                if t == ControlRecordType::KRaftVoters {
                    self.voters =
                        Some(voter_count(rec.value.unwrap_or_default()).map_err(|e| {
                            self.err(format!("KRaftVoters record at offset {offset}: {e}"))
                        })?);
                    self.voters_value = rec.value.map(<[u8]>::to_vec);
                }
                if t == ControlRecordType::KRaftVersion {
                    self.kraft_version_value = rec.value.map(<[u8]>::to_vec);
                }
                controls.push(t);
                continue;
            }
            let value = rec.value.ok_or_else(|| {
                self.err(format!("metadata record at offset {offset} has no value"))
            })?;
            self.record(value)
                .map_err(|m| self.err(format!("offset {offset}: {m}")))?;
            if self.records.len() > MAX_METADATA_RECORDS {
                return Err(self.err(format!("more than {MAX_METADATA_RECORDS} metadata records")));
            }
        }
        Ok(controls)
    }

    fn record(&mut self, value: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(value);
        let frame = r.uvarint("frame version").map_err(|e| e.0)?;
        let key = r.uvarint("api key").map_err(|e| e.0)?;
        let version = r.uvarint("version").map_err(|e| e.0)?;
        if frame == FRAME_VERSION && version == 0 {
            if IGNORED_TYPES.contains(&key) {
                return Ok(());
            }
            match key {
                BEGIN_TRANSACTION => {
                    if self.pending.is_some() {
                        return Err("BeginTransactionRecord inside a metadata transaction".into());
                    }
                    self.pending = Some(Vec::new());
                    return Ok(());
                }
                END_TRANSACTION => {
                    let done = self
                        .pending
                        .take()
                        .ok_or("EndTransactionRecord without a BeginTransactionRecord")?;
                    self.records.extend(done);
                    return Ok(());
                }
                ABORT_TRANSACTION => {
                    self.pending
                        .take()
                        .ok_or("AbortTransactionRecord without a BeginTransactionRecord")?;
                    return Ok(());
                }
                _ => {}
            }
        }
        let rec = RecordAndVersion::decode(value).map_err(|e| e.0)?;
        match &mut self.pending {
            Some(p) => p.push(rec),
            None => self.records.push(rec),
        }
        Ok(())
    }
}

/// The number of voters in a KRaftVoters control record's value (version,
/// then the compact array of voters).
fn voter_count(value: &[u8]) -> Result<usize, String> {
    let mut r = Reader::new(value);
    let version = r.i16("version").map_err(|e| e.0)?;
    if version != 0 {
        return Err(format!("version {version} is not one kastle reads"));
    }
    let n = r.uvarint("voters").map_err(|e| e.0)?;
    n.checked_sub(1)
        .map(|n| n as usize)
        .ok_or_else(|| "a null voters array".to_string())
}

pub mod writer;

#[cfg(test)]
mod tests;
