//! The log cleaner: Kafka's `Cleaner` (log compaction) for one partition's
//! non-active segments, plus the `.cleaned`/`.swap` crash-recovery step run
//! by `Log::open`.
//!
//! One cleaning round, as in Kafka:
//! 1. Build a bounded key → latest-offset map ([`OffsetMap`], Kafka's
//!    `SkimpyOffsetMap`: 128-bit key hashes, capacity from
//!    `log.cleaner.dedupe.buffer.size`) over the dirty section
//!    `[first dirty, first uncleanable)`. If the map fills, the round only
//!    cleans up to the last offset it mapped (`end_offset`).
//! 2. Rewrite every non-active segment with base below `end_offset`, in
//!    groups no bigger than `segment.bytes` (Kafka's `groupSegmentsBySize`),
//!    keeping for each key only its latest record. Records keep their
//!    offsets; a batch that loses records is re-encoded with the same codec,
//!    base offset, producer fields and lastOffsetDelta (Kafka's
//!    `MemoryRecords.filterTo` / `buildRetainedRecordsInto`); a batch that
//!    loses nothing is copied byte for byte.
//! 3. Tombstones (null value) follow KIP-534: the first time a batch with a
//!    retained tombstone is cleaned it is rewritten with the delete-horizon
//!    flag and `baseTimestamp = now + delete.retention.ms`; a later round
//!    after that horizon drops the tombstone.
//! 4. The last batch of a still-known idempotent producer is kept even when
//!    all its records go (an empty batch, Kafka's `RETAIN_EMPTY`), so the
//!    producer's last sequence survives.
//!
//! Simplification (documented gap): transactional data batches and control
//! batches are kept untouched and their keys are not entered in the map, so
//! they neither lose records nor supersede older records. Kafka additionally
//! drops aborted data and, eventually, markers of fully-cleaned transactions.
//!
//! Crash safety is Kafka's swap protocol: the cleaned group is written as
//! `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`) and
//! fsynced without the partition lock; the swap itself (`Log::replace_with_cleaned`,
//! under the lock) renames the indexes then the log to `.swap` (the log's
//! rename is the commit point), renames the replaced segments to `.deleted`,
//! then strips `.swap`. [`complete_interrupted_swaps`] finishes or discards
//! an interrupted swap at the next open, so either the old or the new
//! segments survive a crash, never neither.
//!
//! All reads and writes go through a [`Throttler`] (token bucket at
//! `log.cleaner.io.max.bytes.per.second`) and the whole round runs on a
//! blocking thread, so compaction cannot starve produce and fetch.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::record::batch::{
    compute_crc, ATTRIBUTES_OFFSET, COMPRESSION_CODEC_MASK, CRC_OFFSET, CURRENT_MAGIC,
    DELETE_HORIZON_FLAG_MASK, MIN_BATCH_LENGTH, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD,
    TIMESTAMP_TYPE_MASK,
};
use crate::record::compression::{compress, MAX_DECOMPRESSION_BUDGET};
use crate::record::varint::{write_varint, write_varlong};
use crate::record::{
    batch_records, iter_batches, records, BatchHeader, Compression, MalformedRecord, Record,
    LOG_OVERHEAD,
};

use super::error::StorageError;
use super::offset_index::OffsetIndex;
use super::segment::{
    segment_file_name, INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX,
};
use super::time_index::TimeIndex;

pub const CLEANED_SUFFIX: &str = ".cleaned";
pub const SWAP_SUFFIX: &str = ".swap";
pub const DELETED_SUFFIX: &str = ".deleted";

/// Kafka's `SkimpyOffsetMap` spends 24 bytes per slot (16-byte MD5 + 8-byte
/// offset) and fills to `log.cleaner.io.buffer.load.factor` 0.9. A Rust
/// `HashMap<u128, i64>` needs about 32 bytes per entry at its own load
/// factor, so dividing the dedupe buffer by 32 keeps real memory at about
/// the configured size.
const BYTES_PER_MAP_ENTRY: usize = 32;

/// Bytes read per pread while scanning a segment.
const READ_CHUNK: usize = 1 << 20;
/// Bytes buffered before a write to the cleaned segment.
const WRITE_CHUNK: usize = 1 << 20;

/// Why a cleaning round stopped.
#[derive(Debug)]
pub enum CleanError {
    /// Shutdown, or the log changed under the cleaner (deleted, retention
    /// removed a segment being cleaned): nothing was swapped for the group
    /// in progress and the checkpoint must not move.
    Aborted,
    Storage(StorageError),
}

impl From<StorageError> for CleanError {
    fn from(e: StorageError) -> Self {
        CleanError::Storage(e)
    }
}

impl std::fmt::Display for CleanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CleanError::Aborted => f.write_str("cleaning aborted"),
            CleanError::Storage(e) => write!(f, "{e}"),
        }
    }
}

/// Token bucket over the cleaner's disk I/O (Kafka's `Throttler` on
/// `log.cleaner.io.max.bytes.per.second`).
pub struct Throttler {
    bytes_per_second: f64,
    window_start: Instant,
    window_bytes: f64,
}

impl Throttler {
    pub fn new(bytes_per_second: f64) -> Self {
        Throttler {
            bytes_per_second,
            window_start: Instant::now(),
            window_bytes: 0.0,
        }
    }

    /// Accounts `n` bytes and sleeps long enough to stay under the rate.
    /// Blocking: only call from the cleaner's own thread.
    pub fn acquire(&mut self, n: usize) {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second <= 0.0 {
            return;
        }
        self.window_bytes += n as f64;
        let due = Duration::from_secs_f64(self.window_bytes / self.bytes_per_second);
        let elapsed = self.window_start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
        // Restart the window now and then so an idle period does not bank
        // credit for a later burst.
        if self.window_start.elapsed() > Duration::from_secs(1) {
            self.window_start = Instant::now();
            self.window_bytes = 0.0;
        }
    }
}

/// Kafka's `OffsetMap`: key hash → last offset seen, bounded.
pub struct OffsetMap {
    map: HashMap<u128, i64>,
    max_entries: usize,
    latest_offset: i64,
}

fn hash_key(key: &[u8]) -> u128 {
    // Two independently seeded 64-bit SipHashes: collisions, like Kafka's
    // MD5 ones, are ignored as improbable.
    let mut a = DefaultHasher::new();
    0u8.hash(&mut a);
    key.hash(&mut a);
    let mut b = DefaultHasher::new();
    1u8.hash(&mut b);
    key.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl OffsetMap {
    /// A map using about `buffer_bytes` of memory (at least one entry).
    pub fn with_buffer_size(buffer_bytes: usize) -> Self {
        OffsetMap {
            map: HashMap::new(),
            max_entries: (buffer_bytes / BYTES_PER_MAP_ENTRY).max(1),
            latest_offset: -1,
        }
    }

    /// Records `offset` as the latest for `key`; false (nothing stored) when
    /// the map is full, as Kafka checks before every put.
    fn put(&mut self, key: &[u8], offset: i64) -> bool {
        if self.map.len() >= self.max_entries {
            return false;
        }
        self.map.insert(hash_key(key), offset);
        self.latest_offset = self.latest_offset.max(offset);
        true
    }

    fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&hash_key(key)).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }
}

/// A non-active segment as the cleaner sees it: summary taken under the
/// partition lock, data read through the shared handle without it.
#[derive(Debug, Clone)]
pub struct CleanerSegment {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub file: Arc<File>,
    /// For error messages only: reads go through `file`.
    pub path: PathBuf,
    /// Bytes of offset-index entries (for grouping).
    pub index_bytes: u64,
    pub largest_timestamp: i64,
    /// Max timestamp of the first batch (`max.compaction.lag.ms` clock).
    pub first_batch_timestamp: Option<i64>,
}

/// Everything one cleaning round needs.
pub struct CleanTask {
    pub dir: PathBuf,
    /// Every non-active segment, oldest first.
    pub segments: Vec<CleanerSegment>,
    pub first_dirty_offset: i64,
    /// Segment-aligned end of the cleanable section.
    pub first_uncleanable_offset: i64,
    pub segment_bytes: u64,
    pub segment_index_bytes: u32,
    pub index_interval_bytes: u32,
    pub delete_retention_ms: i64,
    pub now_ms: i64,
    /// Producer id → last offset of its last data batch (producers the
    /// partition still tracks); that batch is kept even when emptied.
    pub producer_last_offsets: HashMap<i64, i64>,
}

/// What a finished round did.
#[derive(Debug, Default)]
pub struct CleanResult {
    /// New first dirty offset (the cleaner checkpoint).
    pub end_offset: i64,
    pub groups_swapped: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    /// Replaced segment files, renamed `.deleted`, to remove after
    /// `file.delete.delay.ms`.
    pub deleted_files: Vec<PathBuf>,
}

/// Installs a cleaned group: given the replaced segments' (base, size),
/// returns the `.deleted` files, or `None` when the log changed and the
/// cleaned copy must be discarded. Implemented by the partition, which
/// takes its lock around `Log::replace_with_cleaned`.
pub type SwapFn<'a> = dyn FnMut(&[(i64, u64)]) -> Result<Option<Vec<PathBuf>>, StorageError> + 'a;

/// Path of a segment file with an extra suffix (`.cleaned`, `.swap`, ...).
pub fn suffixed(dir: &Path, base: i64, file_suffix: &str, extra: &str) -> PathBuf {
    dir.join(format!("{}{extra}", segment_file_name(base, file_suffix)))
}

const SEGMENT_SUFFIXES: [&str; 3] = [LOG_FILE_SUFFIX, INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX];

fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, "remove file", e)),
    }
}

/// Removes the `.cleaned` files of group `base` (a discarded round), and
/// index `.swap` files of a swap that failed before its commit point (the
/// log file's `.swap`); a committed swap is left for the next open to finish.
pub fn discard_cleaned(dir: &Path, base: i64) {
    let committed = suffixed(dir, base, LOG_FILE_SUFFIX, SWAP_SUFFIX).exists();
    for s in SEGMENT_SUFFIXES {
        let mut doomed = vec![suffixed(dir, base, s, CLEANED_SUFFIX)];
        if !committed && s != LOG_FILE_SUFFIX {
            doomed.push(suffixed(dir, base, s, SWAP_SUFFIX));
        }
        for p in doomed {
            if let Err(e) = remove_if_exists(&p) {
                warn!(error = %e, "could not remove a discarded cleaned segment file");
            }
        }
    }
}

/// Reads every whole batch of `seg` in order, throttled.
fn for_each_batch(
    seg: &CleanerSegment,
    io: &mut Throttler,
    stop: &AtomicBool,
    bytes_read: &mut u64,
    mut f: impl FnMut(&[u8], &BatchHeader, &mut Throttler) -> Result<(), CleanError>,
) -> Result<(), CleanError> {
    let path = &seg.path;
    let corrupt = |pos: u64, reason: &str| {
        CleanError::Storage(StorageError::InvalidRecords {
            path: Some(path.to_path_buf()),
            offset: seg.base_offset,
            reason: format!("cleaner: {reason} at position {pos}"),
        })
    };
    let mut buf = Vec::new();
    let mut pos = 0u64;
    while pos < seg.size {
        if stop.load(Ordering::Relaxed) {
            return Err(CleanError::Aborted);
        }
        let want = (seg.size - pos).min(READ_CHUNK as u64) as usize;
        buf.resize(want, 0);
        io.acquire(want);
        seg.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| StorageError::io(path, "read segment for cleaning", e))?;
        *bytes_read += want as u64;
        let mut it = iter_batches(&buf);
        for (p, h) in &mut it {
            f(&buf[p..p + h.total_size()], &h, io)?;
        }
        let consumed = it.position();
        if consumed > 0 {
            pos += consumed as u64;
            continue;
        }
        // Nothing whole in the chunk: one batch larger than the chunk.
        let h = BatchHeader::parse(&buf).map_err(|_| corrupt(pos, "partial batch header"))?;
        let total = h.total_size() as u64;
        if h.batch_length < MIN_BATCH_LENGTH
            || h.magic != CURRENT_MAGIC
            || total <= want as u64
            || pos + total > seg.size
        {
            return Err(corrupt(pos, "invalid batch"));
        }
        buf.resize(total as usize, 0);
        io.acquire(total as usize);
        seg.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| StorageError::io(path, "read segment for cleaning", e))?;
        *bytes_read += total;
        f(&buf, &h, io)?;
        pos += total;
    }
    Ok(())
}

/// Smallest encoding of a record: length, attributes, both deltas, key and
/// value lengths, header count; one byte each.
const MIN_RECORD_SIZE: usize = 7;

fn malformed(h: &BatchHeader, e: MalformedRecord) -> StorageError {
    StorageError::InvalidRecords {
        path: None,
        offset: h.base_offset,
        reason: format!("cleaner: malformed records ({e})"),
    }
}

/// Adds a data batch's keyed records at or after `from` to the map.
/// Returns false when the map filled up (Kafka stops there, mid-batch).
fn map_batch(
    batch: &[u8],
    h: &BatchHeader,
    from: i64,
    map: &mut OffsetMap,
) -> Result<bool, StorageError> {
    if h.is_control() || h.is_transactional() {
        return Ok(true);
    }
    let section = batch_records(batch, MAX_DECOMPRESSION_BUDGET)?;
    for r in records(&section, h.records_count) {
        let r = r.map_err(|e| malformed(h, e))?;
        let offset = h.base_offset + i64::from(r.offset_delta);
        if offset < from {
            continue;
        }
        if let Some(k) = r.key {
            if !map.put(k, offset) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// What happens to one batch.
enum Outcome {
    Keep,
    Drop,
    Rewrite(Vec<u8>, u64),
}

struct FilterCtx<'a> {
    map: &'a OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
    producer_last_offsets: &'a HashMap<i64, i64>,
}

/// Kafka's `shouldRetainRecord` + `checkBatchRetention` + `filterTo` for one batch.
fn filter_batch(
    batch: &[u8],
    h: &BatchHeader,
    ctx: &FilterCtx<'_>,
) -> Result<Outcome, StorageError> {
    if h.is_control() || h.is_transactional() {
        return Ok(Outcome::Keep);
    }
    let section = batch_records(batch, MAX_DECOMPRESSION_BUDGET)?;
    let horizon = (h.attributes & DELETE_HORIZON_FLAG_MASK != 0).then_some(h.base_timestamp);
    // A record takes at least MIN_RECORD_SIZE bytes: a corrupt count cannot
    // reserve more than the section could hold.
    let capacity = (h.records_count.max(0) as usize).min(section.len() / MIN_RECORD_SIZE);
    let mut retained = Vec::with_capacity(capacity);
    let mut contains_tombstones = false;
    let mut total = 0usize;
    for r in records(&section, h.records_count) {
        let r = r.map_err(|e| malformed(h, e))?;
        total += 1;
        let offset = h.base_offset + i64::from(r.offset_delta);
        let keep = if offset > ctx.map.latest_offset() {
            true
        } else {
            match r.key {
                // Kafka counts a keyless record on a compacted log as invalid and drops it.
                None => false,
                Some(k) => {
                    let latest = offset >= ctx.map.get(k).unwrap_or(-1);
                    let retain_delete = horizon.is_none_or(|hz| ctx.now_ms < hz);
                    latest && (r.value.is_some() || retain_delete)
                }
            }
        };
        if keep {
            contains_tombstones |= r.value.is_none();
            retained.push(r);
        }
    }
    let removed = (total - retained.len()) as u64;
    if retained.is_empty() {
        let last_of_producer = h.has_producer_id()
            && ctx.producer_last_offsets.get(&h.producer_id) == Some(&h.last_offset());
        return Ok(if last_of_producer {
            Outcome::Rewrite(empty_batch(h), removed)
        } else {
            Outcome::Drop
        });
    }
    let need_horizon = contains_tombstones && horizon.is_none();
    if removed == 0 && !need_horizon {
        return Ok(Outcome::Keep);
    }
    let new_horizon = if need_horizon {
        Some(ctx.now_ms.saturating_add(ctx.delete_retention_ms))
    } else {
        horizon
    };
    Ok(Outcome::Rewrite(
        rebuild_batch(h, &retained, new_horizon)?,
        removed,
    ))
}

/// Kafka's `DefaultRecordBatch.writeEmptyHeader`: no records, no codec, base
/// timestamp -1, everything else (offsets, producer fields) kept.
fn empty_batch(h: &BatchHeader) -> Vec<u8> {
    let attributes = h.attributes & TIMESTAMP_TYPE_MASK;
    encode_batch(h, attributes, NO_TIMESTAMP, h.max_timestamp, 0, &[])
}

fn encode_batch(
    h: &BatchHeader,
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
    records: &[u8],
) -> Vec<u8> {
    let total = RECORD_BATCH_OVERHEAD + records.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    out.extend_from_slice(&((total - LOG_OVERHEAD) as i32).to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(CURRENT_MAGIC as u8);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(records);
    debug_assert_eq!(
        &out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2],
        &attributes.to_be_bytes()
    );
    let crc = compute_crc(&out);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Kafka's `buildRetainedRecordsInto`: same base offset, codec, producer
/// fields and lastOffsetDelta; base timestamp is the delete horizon when
/// set, else the first retained record's timestamp; record offsets and
/// timestamps are unchanged (deltas re-expressed against the new base).
fn rebuild_batch(
    h: &BatchHeader,
    retained: &[Record<'_>],
    horizon: Option<i64>,
) -> Result<Vec<u8>, StorageError> {
    let ts = |r: &Record<'_>| h.base_timestamp.wrapping_add(r.timestamp_delta);
    let base_timestamp = horizon.unwrap_or_else(|| retained.first().map_or(h.base_timestamp, ts));
    let log_append_time = h.timestamp_type_is_log_append();
    let mut max_timestamp = NO_TIMESTAMP;
    let mut plain = Vec::new();
    let mut body = Vec::new();
    for r in retained {
        let t = ts(r);
        max_timestamp = max_timestamp.max(t);
        body.clear();
        body.push(r.attributes);
        write_varlong(&mut body, t.wrapping_sub(base_timestamp));
        write_varint(&mut body, r.offset_delta);
        body.extend_from_slice(r.key_value_and_headers());
        write_varint(&mut plain, body.len() as i32);
        plain.extend_from_slice(&body);
    }
    if log_append_time {
        max_timestamp = h.max_timestamp;
    }
    let codec = h
        .compression_type()
        .ok_or_else(|| StorageError::InvalidRecords {
            path: None,
            offset: h.base_offset,
            reason: format!("cleaner: unknown codec {}", h.compression()),
        })?;
    let records = if codec == Compression::None {
        plain
    } else {
        compress(codec, &plain).map_err(|e| StorageError::InvalidRecords {
            path: None,
            offset: h.base_offset,
            reason: format!("cleaner: re-compression failed: {e}"),
        })?
    };
    let mut attributes = h.attributes & !DELETE_HORIZON_FLAG_MASK;
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG_MASK;
    }
    debug_assert_eq!(
        attributes & COMPRESSION_CODEC_MASK,
        h.attributes & COMPRESSION_CODEC_MASK
    );
    Ok(encode_batch(
        h,
        attributes,
        base_timestamp,
        max_timestamp,
        retained.len() as i32,
        &records,
    ))
}

/// Writes one cleaned segment (`<base>.*.cleaned`) with its indexes, using
/// the same index rules as `LogSegment::append`.
struct CleanedWriter {
    path: PathBuf,
    file: File,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    buf: Vec<u8>,
    flushed: u64,
    size: u64,
    index_interval: u64,
    bytes_since_index: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl CleanedWriter {
    fn create(
        dir: &Path,
        base: i64,
        max_index_bytes: u32,
        index_interval: u32,
    ) -> Result<Self, StorageError> {
        // Debris of an earlier failed round at this base.
        discard_cleaned(dir, base);
        let path = suffixed(dir, base, LOG_FILE_SUFFIX, CLEANED_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, "create cleaned segment", e))?;
        let offset_index = OffsetIndex::create(
            &suffixed(dir, base, INDEX_FILE_SUFFIX, CLEANED_SUFFIX),
            base,
            max_index_bytes,
        )?;
        let time_index = TimeIndex::create(
            &suffixed(dir, base, TIME_INDEX_FILE_SUFFIX, CLEANED_SUFFIX),
            base,
            max_index_bytes,
        )?;
        Ok(CleanedWriter {
            path,
            file,
            offset_index,
            time_index,
            buf: Vec::with_capacity(WRITE_CHUNK),
            flushed: 0,
            size: 0,
            index_interval: u64::from(index_interval),
            bytes_since_index: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base,
        })
    }

    fn append(
        &mut self,
        batch: &[u8],
        h: &BatchHeader,
        io: &mut Throttler,
    ) -> Result<(), StorageError> {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        if self.bytes_since_index > self.index_interval {
            // A full index only makes look-ups scan further: skip, as appends do.
            if !self.offset_index.is_full() {
                self.offset_index
                    .append(h.last_offset(), self.size as u32)?;
            }
            if !self.time_index.is_full() {
                self.time_index.maybe_append(
                    self.max_timestamp,
                    self.offset_of_max_timestamp,
                    false,
                )?;
            }
            self.bytes_since_index = 0;
        }
        self.buf.extend_from_slice(batch);
        self.size += batch.len() as u64;
        self.bytes_since_index += batch.len() as u64;
        if self.buf.len() >= WRITE_CHUNK {
            self.write_out(io)?;
        }
        Ok(())
    }

    fn write_out(&mut self, io: &mut Throttler) -> Result<(), StorageError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        io.acquire(self.buf.len());
        self.file
            .write_all_at(&self.buf, self.flushed)
            .map_err(|e| StorageError::io(&self.path, "write cleaned segment", e))?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Seals like `on_become_inactive` and makes everything durable.
    fn finish(mut self, io: &mut Throttler) -> Result<u64, StorageError> {
        self.write_out(io)?;
        self.time_index.ensure_one_free_slot()?;
        self.time_index
            .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, true)?;
        self.offset_index.trim()?;
        self.time_index.trim()?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.file
            .sync_all()
            .map_err(|e| StorageError::io(&self.path, "fsync cleaned segment", e))?;
        Ok(self.size)
    }
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose total log
/// size, index size and offset span fit one segment.
fn group_segments(segs: &[CleanerSegment], max_size: u64, max_index: u64) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        let head = i;
        let mut size = segs[i].size;
        let mut index = segs[i].index_bytes;
        let mut group = vec![i];
        i += 1;
        while i < segs.len()
            && size + segs[i].size <= max_size
            && index + segs[i].index_bytes <= max_index
            && segs[i].next_offset - 1 - segs[head].base_offset <= i64::from(i32::MAX)
        {
            size += segs[i].size;
            index += segs[i].index_bytes;
            group.push(i);
            i += 1;
        }
        groups.push(group);
    }
    groups
}

/// One cleaning round (steps 1-4 of the module doc). Blocking: run it on a
/// dedicated or `spawn_blocking` thread, never under the partition lock.
pub fn clean(
    task: &CleanTask,
    map: &mut OffsetMap,
    io: &mut Throttler,
    stop: &AtomicBool,
    swap: &mut SwapFn<'_>,
) -> Result<CleanResult, CleanError> {
    let mut result = CleanResult::default();
    // 1. Offset map over the dirty section.
    let mut full = false;
    for seg in &task.segments {
        if seg.base_offset >= task.first_uncleanable_offset {
            break;
        }
        if seg.next_offset <= task.first_dirty_offset || full {
            continue;
        }
        for_each_batch(seg, io, stop, &mut result.bytes_read, |batch, h, _| {
            if full || h.last_offset() < task.first_dirty_offset {
                return Ok(());
            }
            if !map_batch(batch, h, task.first_dirty_offset, map)? {
                full = true;
                return Ok(());
            }
            map.latest_offset = map.latest_offset.max(h.last_offset());
            Ok(())
        })?;
    }
    result.end_offset = if full {
        map.latest_offset() + 1
    } else {
        task.first_uncleanable_offset
    }
    .max(task.first_dirty_offset);

    // 2-4. Rewrite every segment below the end offset, group by group.
    let to_clean: Vec<CleanerSegment> = task
        .segments
        .iter()
        .filter(|s| s.base_offset < result.end_offset)
        .cloned()
        .collect();
    let ctx = FilterCtx {
        map: &*map,
        now_ms: task.now_ms,
        delete_retention_ms: task.delete_retention_ms,
        producer_last_offsets: &task.producer_last_offsets,
    };
    for group in group_segments(
        &to_clean,
        task.segment_bytes,
        u64::from(task.segment_index_bytes),
    ) {
        let segs: Vec<&CleanerSegment> = group.iter().map(|&i| &to_clean[i]).collect();
        let base = segs[0].base_offset;
        let outcome = clean_group(task, &segs, &ctx, io, stop, &mut result);
        let changed = match outcome {
            Ok(changed) => changed,
            Err(e) => {
                discard_cleaned(&task.dir, base);
                return Err(e);
            }
        };
        if !changed && segs.len() == 1 {
            // Nothing to gain from swapping an identical copy.
            discard_cleaned(&task.dir, base);
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            discard_cleaned(&task.dir, base);
            return Err(CleanError::Aborted);
        }
        let replaced: Vec<(i64, u64)> = segs.iter().map(|s| (s.base_offset, s.size)).collect();
        match swap(&replaced) {
            Ok(Some(deleted)) => {
                result.groups_swapped += 1;
                result.deleted_files.extend(deleted);
            }
            Ok(None) => {
                discard_cleaned(&task.dir, base);
                return Err(CleanError::Aborted);
            }
            Err(e) => {
                discard_cleaned(&task.dir, base);
                return Err(e.into());
            }
        }
    }
    Ok(result)
}

/// Writes the cleaned copy of one group; true if anything changed.
fn clean_group(
    task: &CleanTask,
    segs: &[&CleanerSegment],
    ctx: &FilterCtx<'_>,
    io: &mut Throttler,
    stop: &AtomicBool,
    result: &mut CleanResult,
) -> Result<bool, CleanError> {
    let mut writer = CleanedWriter::create(
        &task.dir,
        segs[0].base_offset,
        task.segment_index_bytes,
        task.index_interval_bytes,
    )?;
    let mut changed = false;
    let mut bytes_read = 0;
    for seg in segs {
        for_each_batch(seg, io, stop, &mut bytes_read, |batch, h, io| {
            match filter_batch(batch, h, ctx)? {
                Outcome::Keep => writer.append(batch, h, io)?,
                Outcome::Drop => {
                    changed = true;
                    result.records_removed += h.records_count.max(0) as u64;
                }
                Outcome::Rewrite(bytes, removed) => {
                    changed = true;
                    result.records_removed += removed;
                    let nh = BatchHeader::parse(&bytes).map_err(StorageError::from)?;
                    writer.append(&bytes, &nh, io)?;
                }
            }
            Ok(())
        })?;
    }
    result.bytes_read += bytes_read;
    result.bytes_written += writer.finish(io)?;
    Ok(changed)
}

/// Finds the offset after the last whole batch of a segment file by reading
/// batch headers (crash recovery only).
fn scan_next_offset(path: &Path, base: i64) -> Result<i64, StorageError> {
    let file = File::open(path).map_err(|e| StorageError::io(path, "open swap segment", e))?;
    let len = file
        .metadata()
        .map_err(|e| StorageError::io(path, "stat swap segment", e))?
        .len();
    let mut next = base;
    let mut pos = 0u64;
    let mut hdr = [0u8; RECORD_BATCH_OVERHEAD];
    while pos + RECORD_BATCH_OVERHEAD as u64 <= len {
        file.read_exact_at(&mut hdr, pos)
            .map_err(|e| StorageError::io(path, "read swap segment", e))?;
        let Ok(h) = BatchHeader::parse(&hdr) else {
            break;
        };
        let total = h.total_size() as u64;
        if h.batch_length < MIN_BATCH_LENGTH || h.magic != CURRENT_MAGIC || pos + total > len {
            break;
        }
        next = h.next_offset();
        pos += total;
    }
    Ok(next)
}

/// Leading base offset of a segment-style file name (`000...42.log.swap`).
fn base_of(name: &str) -> Option<i64> {
    let stem = name.split('.').next()?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Kafka's `LogLoader` swap recovery, run before a log's segments load:
/// `.deleted` and `.cleaned` files are removed; `.swap` files at or above
/// the smallest `.cleaned` base are incomplete and removed; the remaining
/// `.swap` files were committed: every ordinary segment file inside the
/// swapped offset range (and at each swap's own base) is removed and the
/// `.swap` suffix stripped. Returns whether anything changed on disk.
pub fn complete_interrupted_swaps(dir: &Path) -> Result<bool, StorageError> {
    let list = |dir: &Path| -> Result<Vec<(PathBuf, String)>, StorageError> {
        let mut out = Vec::new();
        for entry in
            fs::read_dir(dir).map_err(|e| StorageError::io(dir, "list log directory", e))?
        {
            let entry = entry.map_err(|e| StorageError::io(dir, "list log directory", e))?;
            if let Some(name) = entry.file_name().to_str() {
                out.push((entry.path(), name.to_owned()));
            }
        }
        Ok(out)
    };
    let mut changed = false;
    let mut min_cleaned = i64::MAX;
    let mut swaps = Vec::new();
    for (path, name) in list(dir)? {
        if name.ends_with(DELETED_SUFFIX) || name.ends_with(CLEANED_SUFFIX) {
            if name.ends_with(CLEANED_SUFFIX) {
                if let Some(b) = base_of(&name) {
                    min_cleaned = min_cleaned.min(b);
                }
            }
            warn!(file = %path.display(), "removing leftover file");
            remove_if_exists(&path)?;
            changed = true;
        } else if name.ends_with(SWAP_SUFFIX) {
            swaps.push((path, name));
        }
    }
    let mut committed = Vec::new();
    for (path, name) in swaps {
        match base_of(&name) {
            Some(b) if b < min_cleaned => committed.push((path, name, b)),
            _ => {
                warn!(file = %path.display(), "removing swap file of an incomplete clean");
                remove_if_exists(&path)?;
                changed = true;
            }
        }
    }
    let log_swap_suffix = format!("{LOG_FILE_SUFFIX}{SWAP_SUFFIX}");
    let mut range: Option<(i64, i64)> = None;
    let mut swap_bases = HashSet::new();
    for (path, name, base) in &committed {
        if name.ends_with(&log_swap_suffix) {
            let next = scan_next_offset(path, *base)?;
            let (lo, hi) = range.unwrap_or((i64::MAX, i64::MIN));
            range = Some((lo.min(*base), hi.max(next)));
            swap_bases.insert(*base);
        }
    }
    if let Some((lo, hi)) = range {
        for (path, name) in list(dir)? {
            if name.ends_with(SWAP_SUFFIX) || !SEGMENT_SUFFIXES.iter().any(|s| name.ends_with(s)) {
                continue;
            }
            if let Some(b) = base_of(&name) {
                if (lo..hi).contains(&b) || swap_bases.contains(&b) {
                    info!(file = %path.display(), "removing segment file replaced by an interrupted clean");
                    remove_if_exists(&path)?;
                    changed = true;
                }
            }
        }
    }
    for (path, name, _) in committed {
        let final_name = name.trim_end_matches(SWAP_SUFFIX);
        let target = dir.join(final_name);
        info!(file = %path.display(), "completing interrupted segment swap");
        fs::rename(&path, &target).map_err(|e| StorageError::io(&path, "rename swap file", e))?;
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::BatchBuilder;
    use crate::storage::{Log, LogConfig};

    const T0: i64 = 1_700_000_000_000;

    type Records = Vec<(i64, String, Option<String>)>;

    fn cfg() -> LogConfig {
        LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 128,
            segment_index_bytes: 4096,
            ..LogConfig::default()
        }
    }

    fn append(log: &mut Log, records: &[(&str, Option<&str>)], ts: i64) {
        let mut b = BatchBuilder::new(ts);
        for (i, (k, v)) in records.iter().enumerate() {
            b = b.push(Some(k.as_bytes()), v.map(str::as_bytes), &[], ts + i as i64);
        }
        let mut bytes = b.build().to_vec();
        log.append(&mut bytes, ts).unwrap();
    }

    /// (offset, key, value) of every record from the log start.
    fn records(log: &Log) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let plan = log.read_plan(offset, 1 << 20, true, i64::MAX).unwrap();
            if plan.is_empty() {
                break;
            }
            let bytes = plan.read().unwrap();
            for (p, h) in iter_batches(&bytes) {
                let batch = &bytes[p..p + h.total_size()];
                assert!(
                    crate::record::verify_crc(batch),
                    "CRC of batch at {}",
                    h.base_offset
                );
                let recs = batch_records(batch, 1 << 20).unwrap();
                for r in crate::record::records(&recs, h.records_count) {
                    let r = r.unwrap();
                    let o = h.base_offset + i64::from(r.offset_delta);
                    let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                    let value = r.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                    if o >= offset {
                        out.push((o, key, value));
                    }
                }
                offset = h.next_offset();
            }
        }
        out
    }

    fn task(log: &Log, checkpoint: i64, now: i64, delete_retention_ms: i64) -> CleanTask {
        let segments = log.cleaner_segments();
        CleanTask {
            dir: log.dir().to_path_buf(),
            first_dirty_offset: checkpoint.max(log.log_start_offset()),
            first_uncleanable_offset: log.active_segment_base_offset(),
            segments,
            segment_bytes: log.config().segment_bytes,
            segment_index_bytes: log.config().segment_index_bytes,
            index_interval_bytes: log.config().index_interval_bytes,
            delete_retention_ms,
            now_ms: now,
            producer_last_offsets: HashMap::new(),
        }
    }

    fn run_clean(log: &mut Log, checkpoint: i64, now: i64, drm: i64) -> CleanResult {
        let t = task(log, checkpoint, now, drm);
        let mut map = OffsetMap::with_buffer_size(1 << 20);
        let mut io = Throttler::new(f64::INFINITY);
        let stop = AtomicBool::new(false);
        let mut swap = |r: &[(i64, u64)]| log.replace_with_cleaned(r, now);
        clean(&t, &mut map, &mut io, &stop, &mut swap).unwrap()
    }

    /// Ten keys written `rounds` times; the last round lands in the active segment.
    fn fill(log: &mut Log, rounds: usize) {
        for round in 0..rounds {
            for k in 0..10 {
                let (key, value) = (format!("k{k}"), format!("v{round}-{k}"));
                append(log, &[(&key, Some(&value))], T0 + round as i64);
            }
        }
    }

    fn latest_values(recs: &[(i64, String, Option<String>)]) -> HashMap<String, Option<String>> {
        recs.iter()
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn keeps_latest_per_key_with_original_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(), false).unwrap();
        fill(&mut log, 8);
        let before = records(&log);
        let active_base = log.active_segment_base_offset();
        let active_before: Vec<_> = before
            .iter()
            .filter(|r| r.0 >= active_base)
            .cloned()
            .collect();
        assert!(log.segments_count() > 3);
        let res = run_clean(&mut log, 0, T0, 86_400_000);
        assert_eq!(res.end_offset, active_base);
        assert!(res.groups_swapped >= 1 && res.records_removed > 0);
        let after = records(&log);
        // Offsets strictly increasing, each one original.
        assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
        for r in &after {
            assert!(before.contains(r), "{r:?} was not in the log before");
        }
        // Cleaned part: one record per key, the latest below the active segment.
        let cleaned: Vec<_> = after.iter().filter(|r| r.0 < active_base).collect();
        let mut keys: Vec<_> = cleaned.iter().map(|r| r.1.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), cleaned.len(), "one record per key: {cleaned:?}");
        // Active segment untouched; latest value per key unchanged.
        assert_eq!(
            after
                .iter()
                .filter(|r| r.0 >= active_base)
                .cloned()
                .collect::<Vec<_>>(),
            active_before
        );
        assert_eq!(latest_values(&after), latest_values(&before));
        assert_eq!(log.log_end_offset(), 80);
        // Survives a reopen, and the .deleted files are there for the caller.
        assert!(res.deleted_files.iter().all(|f| f.exists()));
        log.close().unwrap();
        let log = Log::open(dir.path(), cfg(), false).unwrap();
        assert_eq!(records(&log), after);
        assert!(
            res.deleted_files.iter().all(|f| !f.exists()),
            "removed at open"
        );
    }

    #[test]
    fn tombstones_survive_until_delete_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(), false).unwrap();
        fill(&mut log, 3);
        append(&mut log, &[("k3", None)], T0 + 10);
        fill(&mut log, 3);
        // k3 rewritten after the tombstone above: only k4's tombstone stays the latest.
        append(&mut log, &[("k4", None)], T0 + 20);
        log.roll(T0 + 20).unwrap();
        append(&mut log, &[("x", Some("active"))], T0 + 30);
        let drm = 1000;
        run_clean(&mut log, 0, T0 + 100, drm);
        let recs = records(&log);
        assert!(
            recs.iter().any(|r| r.1 == "k4" && r.2.is_none()),
            "tombstone kept before the horizon"
        );
        assert!(
            !recs.iter().any(|r| r.1 == "k3" && r.2.is_none()),
            "superseded tombstone dropped"
        );
        // Still before the horizon (first clean + delete.retention.ms): kept.
        run_clean(&mut log, 0, T0 + 100 + drm - 1, drm);
        assert!(records(&log).iter().any(|r| r.1 == "k4" && r.2.is_none()));
        // Past it: gone, and so is every other k4 record.
        run_clean(&mut log, 0, T0 + 100 + drm, drm);
        let recs = records(&log);
        assert!(!recs.iter().any(|r| r.1 == "k4"), "{recs:?}");
        assert!(recs.iter().any(|r| r.1 == "x"));
        assert!(recs.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn map_full_cleans_only_what_was_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(), false).unwrap();
        fill(&mut log, 6);
        let before = records(&log);
        let t = task(&log, 0, T0, 1000);
        let mut map = OffsetMap::with_buffer_size(5 * BYTES_PER_MAP_ENTRY);
        let mut io = Throttler::new(f64::INFINITY);
        let stop = AtomicBool::new(false);
        let mut swap = |r: &[(i64, u64)]| log.replace_with_cleaned(r, T0);
        let res = clean(&t, &mut map, &mut io, &stop, &mut swap).unwrap();
        assert_eq!(res.end_offset, 5, "five keys mapped: offsets 0..=4");
        let after = records(&log);
        assert_eq!(latest_values(&after), latest_values(&before));
        // Nothing past the mapped range was removed.
        assert_eq!(
            after.iter().filter(|r| r.0 >= 5).count(),
            before.iter().filter(|r| r.0 >= 5).count()
        );
    }

    #[test]
    fn idempotent_producers_last_batch_kept_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(), false).unwrap();
        let mut b = BatchBuilder::new(T0)
            .producer(7, 0, 0)
            .push(Some(b"a"), Some(b"1"), &[], T0)
            .push(Some(b"b"), Some(b"1"), &[], T0)
            .build()
            .to_vec();
        log.append(&mut b, T0).unwrap();
        append(&mut log, &[("a", Some("2")), ("b", Some("2"))], T0);
        log.roll(T0).unwrap();
        append(&mut log, &[("z", Some("z"))], T0);
        let mut t = task(&log, 0, T0, 1000);
        t.producer_last_offsets.insert(7, 1);
        let mut map = OffsetMap::with_buffer_size(1 << 16);
        let mut io = Throttler::new(f64::INFINITY);
        let stop = AtomicBool::new(false);
        let mut swap = |r: &[(i64, u64)]| log.replace_with_cleaned(r, T0);
        clean(&t, &mut map, &mut io, &stop, &mut swap).unwrap();
        let plan = log.read_plan(0, 1 << 20, true, i64::MAX).unwrap();
        let bytes = plan.read().unwrap();
        let hs: Vec<_> = iter_batches(&bytes).map(|(_, h)| h).collect();
        assert_eq!(hs[0].base_offset, 0);
        assert_eq!(hs[0].last_offset(), 1, "lastOffsetDelta preserved");
        assert_eq!(hs[0].records_count, 0);
        assert_eq!((hs[0].producer_id, hs[0].base_sequence), (7, 0));
        assert_eq!(records(&log).len(), 3);
    }

    #[test]
    fn compressed_batch_rewritten_with_same_codec() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(), false).unwrap();
        let mut b = BatchBuilder::new(T0)
            .push(Some(b"a"), Some(b"old"), &[("h", b"x")], T0)
            .push(Some(b"b"), Some(b"keep"), &[], T0 + 5)
            .build_compressed(4)
            .to_vec();
        log.append(&mut b, T0).unwrap();
        append(&mut log, &[("a", Some("new"))], T0 + 9);
        log.roll(T0).unwrap();
        append(&mut log, &[("z", Some("z"))], T0);
        run_clean(&mut log, 0, T0, 1000);
        let plan = log.read_plan(0, 1 << 20, true, i64::MAX).unwrap();
        let bytes = plan.read().unwrap();
        let (_, h) = iter_batches(&bytes).next().unwrap();
        assert_eq!(h.compression(), 4);
        assert_eq!(
            (h.base_offset, h.last_offset_delta, h.records_count),
            (0, 1, 1)
        );
        assert_eq!((h.base_timestamp, h.max_timestamp), (T0 + 5, T0 + 5));
        let recs = records(&log);
        assert_eq!(recs[0], (1, "b".into(), Some("keep".into())));
    }

    /// Cleans with a swap step that stops after `steps` of the protocol,
    /// "crashes" (drops the log unclosed) and reopens.
    fn crash_case(steps: usize) -> (Records, Records) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(), false).unwrap();
        fill(&mut log, 8);
        log.flush_all().unwrap();
        let before = records(&log);
        let t = task(&log, 0, T0, 1000);
        let d = dir.path().to_path_buf();
        let mut map = OffsetMap::with_buffer_size(1 << 20);
        let mut io = Throttler::new(f64::INFINITY);
        let stop = AtomicBool::new(false);
        // Walks Kafka's order by hand on the first group, then stops.
        let mut swap = |r: &[(i64, u64)]| -> Result<Option<Vec<PathBuf>>, StorageError> {
            let base = r[0].0;
            let mut done = 0;
            let mut step = |f: &mut dyn FnMut()| {
                if done < steps {
                    f();
                    done += 1;
                }
            };
            for s in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX] {
                step(&mut || {
                    fs::rename(
                        suffixed(&d, base, s, CLEANED_SUFFIX),
                        suffixed(&d, base, s, SWAP_SUFFIX),
                    )
                    .unwrap()
                });
            }
            for &(b, _) in r {
                for s in SEGMENT_SUFFIXES {
                    step(&mut || {
                        fs::rename(suffixed(&d, b, s, ""), suffixed(&d, b, s, DELETED_SUFFIX))
                            .unwrap()
                    });
                }
            }
            for s in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX] {
                step(&mut || {
                    fs::rename(
                        suffixed(&d, base, s, SWAP_SUFFIX),
                        suffixed(&d, base, s, ""),
                    )
                    .unwrap()
                });
            }
            // "Crash": stop here, leaving this group's files as they are
            // (a later group's files are discarded by the abort).
            stop.store(true, Ordering::Relaxed);
            Ok(Some(Vec::new()))
        };
        let res = clean(&t, &mut map, &mut io, &stop, &mut swap);
        assert!(matches!(res, Err(CleanError::Aborted) | Ok(_)));
        drop(log);
        let log = Log::open(dir.path(), cfg(), true).unwrap();
        (before, records(&log))
    }

    #[test]
    fn crash_at_every_step_of_the_swap_keeps_old_or_new_data() {
        for steps in 0..=15 {
            let (before, after) = crash_case(steps);
            // Never neither: every key's latest value is still there...
            assert_eq!(
                latest_values(&after),
                latest_values(&before),
                "steps {steps}"
            );
            // ...offsets still increase and come from the original log...
            assert!(after.windows(2).all(|w| w[0].0 < w[1].0), "steps {steps}");
            for r in &after {
                assert!(before.contains(r), "steps {steps}: {r:?}");
            }
            // ...and the log is either the old one or has the cleaned group.
            if steps < 3 {
                assert_eq!(after, before, "not committed at step {steps}");
            } else {
                assert!(after.len() < before.len(), "committed at step {steps}");
            }
        }
    }

    #[test]
    fn leftover_cleaned_files_are_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(), false).unwrap();
        fill(&mut log, 4);
        let before = records(&log);
        let bases = log.segment_base_offsets();
        drop(log);
        // A crash while writing: a partial cleaned copy of the first segment.
        fs::write(
            suffixed(dir.path(), bases[0], LOG_FILE_SUFFIX, CLEANED_SUFFIX),
            b"partial",
        )
        .unwrap();
        fs::write(
            suffixed(dir.path(), bases[0], INDEX_FILE_SUFFIX, SWAP_SUFFIX),
            b"",
        )
        .unwrap();
        let log = Log::open(dir.path(), cfg(), true).unwrap();
        assert_eq!(records(&log), before);
        let leftovers = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name().into_string().unwrap();
                n.ends_with(CLEANED_SUFFIX) || n.ends_with(SWAP_SUFFIX)
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn throttler_bounds_the_rate() {
        let mut t = Throttler::new(1_000_000.0);
        let start = Instant::now();
        for _ in 0..10 {
            t.acquire(20_000);
        }
        // 200 kB at 1 MB/s: about 200 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(180),
            "{:?}",
            start.elapsed()
        );
    }
}
