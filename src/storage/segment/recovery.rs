//! Loading a segment (Kafka's `LogSegment` open plus `LogLoader`'s
//! per-segment checks): trust-but-check its indexes against the tail of the
//! log file, or rebuild them with a full recovery scan (size, magic,
//! CRC-32C, increasing offsets) that truncates the file at the first
//! invalid batch.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use tracing::{debug, warn};

use crate::record::batch::{MIN_BATCH_LENGTH, NO_TIMESTAMP};
use crate::record::{verify_crc, BatchHeader, RECORD_BATCH_OVERHEAD};
use crate::storage::config::LogConfig;
use crate::storage::error::StorageError;
use crate::storage::offset_index::OffsetIndex;
use crate::storage::time_index::TimeIndex;

use super::{io_err, LogSegment};

/// Bytes read per syscall while recovering a segment.
const RECOVERY_CHUNK: usize = 1 << 20;

/// Buffered positional reader for the recovery scan: one large pread per
/// chunk instead of two small ones per batch.
struct ChunkReader<'a> {
    file: &'a File,
    path: &'a Path,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> ChunkReader<'a> {
    /// Caller guarantees `pos + n` is within the file.
    fn get(&mut self, pos: u64, n: usize, file_len: u64) -> Result<&[u8], StorageError> {
        let have_end = self.start + self.buf.len() as u64;
        if !(pos >= self.start && pos + n as u64 <= have_end) {
            let want = n.max(RECOVERY_CHUNK).min((file_len - pos) as usize);
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf, pos)
                .map_err(io_err(self.path, "read segment during recovery"))?;
            self.start = pos;
        }
        let off = (pos - self.start) as usize;
        Ok(&self.buf[off..off + n])
    }
}

/// An opened index, or a fresh one (and a rebuild of the segment) when the
/// file failed its checks.
fn open_or_reset<I>(
    path: &Path,
    opened: Result<I, StorageError>,
    create: impl FnOnce() -> Result<I, StorageError>,
    rebuild: &mut bool,
) -> Result<I, StorageError> {
    match opened {
        Ok(index) => Ok(index),
        Err(StorageError::CorruptIndex { reason, .. }) => {
            warn!(path = %path.display(), %reason, "rebuilding corrupt index");
            *rebuild = true;
            create()
        }
        Err(e) => Err(e),
    }
}

impl LogSegment {
    /// Opens an existing segment. Indexes that are missing or fail the
    /// sanity check, or a tail that does not parse, trigger a full
    /// [`recover`](Self::recover): an index is never trusted blindly.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        Self::open_with(dir, base_offset, config, now_ms, false)
    }

    /// Opens an unclean shutdown's active segment and recovers it at once
    /// ([`recover_after`](Self::recover_after) the recovery point
    /// `durable_end`), without first sanity-checking indexes the scan
    /// rebuilds anyway: one pass over the file, not two. Returns the
    /// segment, the bytes truncated and the bytes scanned.
    pub fn open_and_recover(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        durable_end: i64,
    ) -> Result<(Self, u64, u64), StorageError> {
        let mut seg = Self::open_with(dir, base_offset, config, now_ms, true)?;
        let (truncated, scanned) = if durable_end > base_offset {
            seg.recover_after(durable_end)?
        } else {
            let size = seg.size;
            (seg.recover()?, size)
        };
        Ok((seg, truncated, scanned))
    }

    /// `skip_checks`: the caller recovers the segment next, so neither the
    /// indexes nor the tail are checked here.
    fn open_with(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        skip_checks: bool,
    ) -> Result<Self, StorageError> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let (log, size) = Self::open_log_file(&log_path, false)?;
        let mut rebuild = !index_path.exists() || !time_path.exists();
        let bytes = config.segment_index_bytes;
        let offset_index = open_or_reset(
            &index_path,
            OffsetIndex::open(&index_path, base_offset, bytes),
            || OffsetIndex::create(&index_path, base_offset, bytes),
            &mut rebuild,
        )?;
        let time_index = open_or_reset(
            &time_path,
            TimeIndex::open(&time_path, base_offset, bytes),
            || TimeIndex::create(&time_path, base_offset, bytes),
            &mut rebuild,
        )?;
        let mut seg = LogSegment::assemble(
            base_offset,
            log_path,
            log,
            size,
            (offset_index, time_index),
            config,
            now_ms,
        );
        if skip_checks {
            return Ok(seg);
        }
        if !rebuild {
            match seg.load_from_indexes() {
                Ok(true) => {}
                Ok(false) => rebuild = true,
                Err(StorageError::CorruptIndex { path, reason }) => {
                    warn!(path = %path.display(), %reason, "index failed sanity check; rebuilding");
                    rebuild = true;
                }
                Err(e) => return Err(e),
            }
        }
        if rebuild {
            let truncated = seg.recover()?;
            debug!(segment = %seg.log_path.display(), truncated, "rebuilt segment indexes");
        }
        Ok(seg)
    }

    /// Trusting-but-checking load: sanity-check the indexes and scan only
    /// the batches after the last OffsetIndex entry to learn the next offset
    /// and max timestamp. Returns false if the tail does not parse cleanly.
    fn load_from_indexes(&mut self) -> Result<bool, StorageError> {
        self.offset_index.sanity_check(self.size)?;
        let last = self.offset_index.last_entry();
        let start = last.map_or(0, |e| u64::from(e.position));
        let t = self.time_index.last_entry();
        if self.time_index.entries() > 0 {
            self.max_timestamp_so_far = t.timestamp;
            self.offset_of_max_timestamp_so_far = t.offset;
        }
        let mut pos = start;
        let mut first = true;
        while pos < self.size {
            let Some(h) = self.try_read_header(pos)? else {
                return Ok(false);
            };
            if first {
                if let Some(e) = last {
                    // An index entry names the last offset of the batch at its position.
                    if h.last_offset() != e.offset {
                        return Err(StorageError::CorruptIndex {
                            path: self.offset_index.path().to_path_buf(),
                            reason: format!(
                                "entry {e:?} does not match batch ending at {}",
                                h.last_offset()
                            ),
                        });
                    }
                }
                first = false;
            }
            if h.max_timestamp > self.max_timestamp_so_far {
                self.max_timestamp_so_far = h.max_timestamp;
                self.offset_of_max_timestamp_so_far = h.last_offset();
            }
            self.next_offset = h.next_offset();
            pos += h.total_size() as u64;
        }
        self.time_index.sanity_check(self.next_offset)?;
        self.bytes_since_last_index_entry = self.size - start;
        if self.size >= RECORD_BATCH_OVERHEAD as u64 {
            if let Some(h) = self.try_read_header(0)? {
                self.rolling_based_timestamp = Some(h.max_timestamp);
            }
        }
        Ok(true)
    }

    /// Scans every batch from position 0 (size sanity, magic 2, CRC-32C,
    /// offsets increasing), rebuilds both indexes, and truncates the file at
    /// the first invalid batch. Returns the number of bytes truncated.
    pub fn recover(&mut self) -> Result<u64, StorageError> {
        self.offset_index.resize(self.max_index_bytes)?;
        self.offset_index.reset()?;
        self.time_index.resize(self.max_index_bytes)?;
        self.time_index.reset()?;
        self.max_timestamp_so_far = NO_TIMESTAMP;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        self.next_offset = self.base_offset;
        self.bytes_since_last_index_entry = 0;
        self.rolling_based_timestamp = None;
        self.scan_and_truncate(0)
    }

    /// Recovery after an unclean shutdown when the offsets below
    /// `durable_end` (the recovery point) were fsynced before it: the scan
    /// starts after the last batch the offset index places below the
    /// recovery point instead of at position 0. That batch is checked
    /// first (at its position, ending at the entry's offset, CRC-32C), and
    /// the index prefix before it must strictly increase; otherwise the
    /// whole segment is scanned as by [`recover`](Self::recover). Returns
    /// (bytes truncated, bytes scanned).
    pub fn recover_after(&mut self, durable_end: i64) -> Result<(u64, u64), StorageError> {
        if let Some(start) = self.resume_position(durable_end)? {
            let scanned = self.size - start;
            return Ok((self.scan_and_truncate(start)?, scanned));
        }
        let size = self.size;
        Ok((self.recover()?, size))
    }

    /// Restores the segment's state up to the last indexed batch below
    /// `durable_end` and returns the position after it, or `None` when no
    /// indexed batch there checks out.
    fn resume_position(&mut self, durable_end: i64) -> Result<Option<u64>, StorageError> {
        self.offset_index.resize(self.max_index_bytes)?;
        self.time_index.resize(self.max_index_bytes)?;
        // An unclean stop leaves both indexes untrimmed: keep what is real.
        self.offset_index.keep_increasing_prefix(self.size);
        let e = self.offset_index.lookup(durable_end - 1);
        if self.offset_index.lookup_by_position(e.position) != Some(e) {
            return Ok(None); // no entry at or below the recovery point
        }
        let Some(h) = self.try_read_header(u64::from(e.position))? else {
            return Ok(None);
        };
        if h.last_offset() != e.offset {
            return Ok(None);
        }
        let mut batch = vec![0u8; h.total_size()];
        self.log
            .read_exact_at(&mut batch, u64::from(e.position))
            .map_err(io_err(&self.log_path, "read batch during recovery"))?;
        if !verify_crc(&batch) {
            return Ok(None);
        }
        // Entries after the resume batch are rebuilt by the scan.
        self.offset_index.truncate_to(e.offset + 1);
        // Each offset index entry came with a time index entry for the
        // largest timestamp so far (when it grew): the last one up to the
        // resume batch is the segment's maximum up to there.
        self.time_index.keep_increasing_prefix(e.offset + 1);
        if self.time_index.entries() > 0 {
            let t = self.time_index.last_entry();
            self.max_timestamp_so_far = t.timestamp;
            self.offset_of_max_timestamp_so_far = t.offset;
        } else {
            self.max_timestamp_so_far = NO_TIMESTAMP;
            self.offset_of_max_timestamp_so_far = self.base_offset;
        }
        self.rolling_based_timestamp = self.try_read_header(0)?.map(|h0| h0.max_timestamp);
        self.next_offset = h.next_offset();
        self.bytes_since_last_index_entry = h.total_size() as u64;
        Ok(Some(u64::from(e.position) + h.total_size() as u64))
    }

    /// The recovery scan from `start` (a batch boundary; the segment's
    /// state covers everything before it): each batch is checked (size,
    /// magic 2, offsets increasing, CRC-32C) and indexed; the file is cut at
    /// the first invalid one. Returns the bytes truncated.
    fn scan_and_truncate(&mut self, start: u64) -> Result<u64, StorageError> {
        let file_len = self
            .log
            .metadata()
            .map_err(io_err(&self.log_path, "stat segment"))?
            .len();
        let log = Arc::clone(&self.log);
        let log_path = self.log_path.clone();
        let mut reader = ChunkReader {
            file: &log,
            path: &log_path,
            buf: Vec::new(),
            start: 0,
        };
        let mut pos = start;
        loop {
            let remaining = file_len - pos;
            if remaining < RECORD_BATCH_OVERHEAD as u64 {
                if remaining > 0 {
                    warn!(segment = %self.log_path.display(), pos, remaining, "partial batch header at end of segment");
                }
                break;
            }
            let h = BatchHeader::parse(reader.get(pos, RECORD_BATCH_OVERHEAD, file_len)?)?;
            let total = h.total_size() as u64;
            let plausible = h.batch_length >= MIN_BATCH_LENGTH
                && h.magic == 2
                && total <= remaining
                && h.last_offset_delta >= 0
                && h.base_offset >= self.next_offset
                && h.last_offset()
                    .checked_sub(self.base_offset)
                    .is_some_and(|d| (0..=i64::from(i32::MAX)).contains(&d));
            if !plausible {
                warn!(segment = %self.log_path.display(), pos, ?h, "invalid batch header during recovery");
                break;
            }
            if !verify_crc(reader.get(pos, total as usize, file_len)?) {
                warn!(segment = %self.log_path.display(), pos, offset = h.base_offset, "CRC mismatch during recovery");
                break;
            }
            if h.max_timestamp > self.max_timestamp_so_far {
                self.max_timestamp_so_far = h.max_timestamp;
                self.offset_of_max_timestamp_so_far = h.last_offset();
            }
            if self.bytes_since_last_index_entry > self.index_interval_bytes {
                self.add_index_entries(h.last_offset(), pos);
            }
            if self.rolling_based_timestamp.is_none() {
                self.rolling_based_timestamp = Some(h.max_timestamp);
            }
            self.bytes_since_last_index_entry += total;
            self.next_offset = h.next_offset();
            pos += total;
        }
        drop(reader);
        let truncated = file_len - pos;
        if truncated > 0 {
            warn!(segment = %self.log_path.display(), valid_bytes = pos, truncated, "truncating invalid bytes at end of segment");
            self.log
                .set_len(pos)
                .map_err(io_err(&self.log_path, "truncate segment"))?;
        }
        self.size = pos;
        Ok(truncated)
    }

    /// Kafka's `LogSegment.truncateTo`: removes every batch holding an
    /// offset >= `offset` (the batch containing `offset` goes whole), cuts
    /// the file there and fsyncs it, then rescans what is left to rebuild
    /// the indexes and the segment's offsets and timestamps. Returns the
    /// bytes removed. The caller makes it the active segment.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64, StorageError> {
        let Some((pos, _)) = self.translate_offset(offset, 0)? else {
            return Ok(0);
        };
        let removed = self.size - pos;
        self.log
            .set_len(pos)
            .map_err(io_err(&self.log_path, "truncate segment"))?;
        self.log
            .sync_all()
            .map_err(io_err(&self.log_path, "fsync truncated segment"))?;
        self.size = pos;
        self.writeback_started = self.writeback_started.min(pos);
        self.recover()?;
        Ok(removed)
    }
}
