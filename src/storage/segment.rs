//! LogSegment: one `.log` file of whole v2 batches plus its OffsetIndex and
//! TimeIndex. Appends go to the end with positional writes; reads use
//! `pread`. Index entries are added per batch every `index.interval.bytes`
//! of log data (Kafka 4's per-batch rule), the TimeIndex tracking the
//! segment's max timestamp so far and the last offset of the batch holding it.
//! Opening an existing segment and the recovery scan are in
//! `segment/recovery.rs`.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::record::batch::{LEADER_PREFIX_LEN, MIN_BATCH_LENGTH, NO_TIMESTAMP};
use crate::record::{
    iter_batches, record_timestamps, BatchHeader, LeaderPrefix, RecordTimestamps, LOG_OVERHEAD,
    RECORD_BATCH_OVERHEAD,
};

use super::config::LogConfig;
use super::error::StorageError;
use super::offset_index::OffsetIndex;
use super::time_index::{TimeIndex, TimestampOffset};

pub const LOG_FILE_SUFFIX: &str = ".log";
pub const INDEX_FILE_SUFFIX: &str = ".index";
pub const TIME_INDEX_FILE_SUFFIX: &str = ".timeindex";

/// Most slices one `pwritev` takes (Linux's IOV_MAX).
const MAX_WRITE_SLICES: usize = 1024;

/// Writes all of `slices` at `offset` with `pwritev`, at most
/// [`MAX_WRITE_SLICES`] per call, going on after short writes and EINTR.
fn write_all_vectored_at(
    file: &File,
    mut slices: &mut [IoSlice<'_>],
    mut offset: u64,
) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        let count = slices.len().min(MAX_WRITE_SLICES);
        let at = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset beyond off_t"))?;
        // SAFETY: IoSlice is ABI-compatible with iovec on Unix, and the
        // `count` slices it points to outlive the call.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                slices.as_ptr().cast::<libc::iovec>(),
                count as libc::c_int,
                at,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        offset += n as u64;
        IoSlice::advance_slices(&mut slices, n as usize);
    }
    Ok(())
}

/// `00000000000000000042.log` etc.
pub fn segment_file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Parses the base offset of a file name's stem: `00000000000000000042` is 42.
pub fn parse_base_offset(stem: &str) -> Option<i64> {
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A contiguous run of whole batches inside a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRead {
    pub position: u64,
    pub len: usize,
    /// Base offset of the first batch in the range (it may start before
    /// the requested offset: clients skip the earlier records).
    pub first_offset: i64,
}

pub struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<File>,
    /// Bytes of whole, acknowledged batches. Anything past it in the file is
    /// a failed write's leftovers and is never read.
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval_bytes: u64,
    max_index_bytes: u32,
    bytes_since_last_index_entry: u64,
    max_timestamp_so_far: i64,
    offset_of_max_timestamp_so_far: i64,
    next_offset: i64,
    /// First batch's max timestamp: the clock `segment.ms` is measured on.
    rolling_based_timestamp: Option<i64>,
    /// Wall clock when this segment object was created or loaded; Kafka's
    /// fallback for `segment.ms` when batches carry no timestamps.
    created_ms: i64,
    /// File position up to which write-back has been started.
    writeback_started: u64,
}

/// Dirty bytes after which an append starts the kernel's write-back of the
/// segment (`sync_file_range`, asynchronous). Without it, in page-cache mode
/// a 1 GiB segment could reach its roll with most of itself dirty, and the
/// roll's fsync (under the partition lock, so the closed segment is durable
/// before the next one takes writes) stalled the partition for about 450 ms.
const WRITEBACK_CHUNK: u64 = 8 << 20;

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |e| StorageError::io(path, op, e)
}

impl LogSegment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        (
            dir.join(segment_file_name(base_offset, LOG_FILE_SUFFIX)),
            dir.join(segment_file_name(base_offset, INDEX_FILE_SUFFIX)),
            dir.join(segment_file_name(base_offset, TIME_INDEX_FILE_SUFFIX)),
        )
    }

    /// Opens a segment's `.log` file for reading and writing (creating it if
    /// `create`); returns it with its length.
    fn open_log_file(log_path: &Path, create: bool) -> Result<(File, u64), StorageError> {
        let op = if create {
            "create segment"
        } else {
            "open segment"
        };
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(log_path)
            .map_err(io_err(log_path, op))?;
        let len = log
            .metadata()
            .map_err(io_err(log_path, "stat segment"))?
            .len();
        Ok((log, len))
    }

    /// Creates a new, empty segment. Refuses to clobber a non-empty `.log`.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let (log, len) = Self::open_log_file(&log_path, true)?;
        if len > 0 {
            return Err(StorageError::InvalidRecords {
                path: Some(log_path),
                offset: base_offset,
                reason: format!("refusing to create a segment over an existing {len}-byte file"),
            });
        }
        let indexes = match OffsetIndex::create(
            &index_path,
            base_offset,
            config.segment_index_bytes,
        )
        .and_then(|o| {
            TimeIndex::create(&time_path, base_offset, config.segment_index_bytes).map(|t| (o, t))
        }) {
            Ok(indexes) => indexes,
            Err(e) => {
                // Typically ENOSPC allocating an index: leave no half-made
                // segment behind (the next open would take it for the
                // active one). The caller keeps its old active segment.
                for p in [&log_path, &index_path, &time_path] {
                    if let Err(r) = std::fs::remove_file(p) {
                        if r.kind() != io::ErrorKind::NotFound {
                            warn!(file = %p.display(), error = %r, "could not remove a segment file after a failed create");
                        }
                    }
                }
                return Err(e);
            }
        };
        Ok(Self::assemble(
            base_offset,
            log_path,
            log,
            0,
            indexes,
            config,
            now_ms,
        ))
    }

    /// A segment over an opened `.log` file of `size` bytes and its
    /// indexes, knowing nothing of its batches yet (appends, or the loader,
    /// fill in offsets and timestamps).
    fn assemble(
        base_offset: i64,
        log_path: PathBuf,
        log: File,
        size: u64,
        (offset_index, time_index): (OffsetIndex, TimeIndex),
        config: &LogConfig,
        now_ms: i64,
    ) -> LogSegment {
        LogSegment {
            base_offset,
            log_path,
            log: Arc::new(log),
            size,
            offset_index,
            time_index,
            index_interval_bytes: u64::from(config.index_interval_bytes),
            max_index_bytes: config.segment_index_bytes,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: NO_TIMESTAMP,
            offset_of_max_timestamp_so_far: base_offset,
            next_offset: base_offset,
            rolling_based_timestamp: None,
            created_ms: now_ms,
            writeback_started: 0,
        }
    }

    /// Reads and sanity-checks the header at `pos`; `None` if the bytes
    /// there cannot be a whole v2 batch inside the segment.
    fn try_read_header(&self, pos: u64) -> Result<Option<BatchHeader>, StorageError> {
        if pos + RECORD_BATCH_OVERHEAD as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; RECORD_BATCH_OVERHEAD];
        self.log
            .read_exact_at(&mut buf, pos)
            .map_err(io_err(&self.log_path, "read batch header"))?;
        let h = BatchHeader::parse(&buf)?;
        if h.batch_length < MIN_BATCH_LENGTH
            || h.magic != 2
            || pos + h.total_size() as u64 > self.size
            || h.last_offset_delta < 0
        {
            return Ok(None);
        }
        Ok(Some(h))
    }

    /// Like `try_read_header` but for positions that must hold a batch.
    fn read_header(&self, pos: u64) -> Result<BatchHeader, StorageError> {
        self.try_read_header(pos)?
            .ok_or_else(|| StorageError::InvalidRecords {
                path: Some(self.log_path.clone()),
                offset: self.base_offset,
                reason: format!("no valid batch header at position {pos}"),
            })
    }

    fn read_bytes(&self, pos: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let mut buf = vec![0u8; len];
        self.log
            .read_exact_at(&mut buf, pos)
            .map_err(io_err(&self.log_path, "read batch"))?;
        Ok(buf)
    }

    /// Index maintenance never fails an append: a full index only makes
    /// lookups scan further, and a non-monotonic entry would be a bug that
    /// must not corrupt the index, so it is logged and skipped.
    fn add_index_entries(&mut self, batch_last_offset: i64, position: u64) {
        if !self.offset_index.is_full() {
            if let Err(e) = self.offset_index.append(batch_last_offset, position as u32) {
                debug_assert!(false, "offset index append failed: {e}");
                warn!(error = %e, "skipping offset index entry");
            }
        }
        if !self.time_index.is_full() {
            if let Err(e) = self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
                false,
            ) {
                debug_assert!(false, "time index append failed: {e}");
                warn!(error = %e, "skipping time index entry");
            }
        }
        self.bytes_since_last_index_entry = 0;
    }

    /// Appends whole batches whose offsets are already assigned. Either all
    /// bytes become visible (size advances) or none do: a failed or short
    /// write is cut back off the file.
    pub fn append(&mut self, largest_offset: i64, records: &[u8]) -> Result<(), StorageError> {
        self.append_with_prefixes(largest_offset, records, &[])
    }

    /// [`LogSegment::append`] of batches stored with `prefixes` (one per
    /// batch, from `leader_prefixes`) in place of their own first bytes:
    /// the leader's offsets and epoch go to the file without the batches
    /// being copied, in one vectored positional write. No prefixes: the
    /// batches as they are.
    pub fn append_with_prefixes(
        &mut self,
        largest_offset: i64,
        records: &[u8],
        prefixes: &[LeaderPrefix],
    ) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        if !self.can_convert_to_relative_offset(largest_offset) {
            return Err(StorageError::OffsetOverflow {
                base_offset: self.base_offset,
                offset: largest_offset,
            });
        }
        // Room in the indexes for an entry per batch, allocated before any
        // byte is written: a full disk refuses the append here rather than
        // faulting in a mapped index page later (index_file.rs).
        let batches = iter_batches(records).count();
        if !prefixes.is_empty() && prefixes.len() != batches {
            debug_assert!(false, "{} prefixes for {batches} batches", prefixes.len());
            return Err(StorageError::InvalidRecords {
                path: Some(self.log_path.clone()),
                offset: self.next_offset,
                reason: format!("{} leader prefixes for {batches} batches", prefixes.len()),
            });
        }
        self.offset_index.reserve(batches)?;
        self.time_index.reserve(batches)?;
        let start = self.size;
        let written = if prefixes.is_empty() {
            self.log.write_all_at(records, start)
        } else {
            let mut slices = Vec::with_capacity(2 * batches);
            for ((position, h), prefix) in iter_batches(records).zip(prefixes) {
                let end = position + h.total_size();
                slices.push(IoSlice::new(prefix));
                slices.push(IoSlice::new(&records[position + LEADER_PREFIX_LEN..end]));
            }
            write_all_vectored_at(&self.log, &mut slices, start)
        };
        if let Err(e) = written {
            if let Err(t) = self.log.set_len(start) {
                warn!(segment = %self.log_path.display(), error = %t, "could not cut back a failed append");
            }
            return Err(StorageError::io(&self.log_path, "append to segment", e));
        }
        self.size = start + records.len() as u64;
        let mut position = start;
        let mut it = iter_batches(records);
        for (i, (_, h)) in (&mut it).enumerate() {
            let h = match prefixes.get(i) {
                Some(prefix) => h.with_leader_prefix(prefix),
                None => h,
            };
            debug_assert!(h.base_offset >= self.next_offset, "offsets must increase");
            if self.rolling_based_timestamp.is_none() {
                self.rolling_based_timestamp = Some(h.max_timestamp);
            }
            if h.max_timestamp > self.max_timestamp_so_far {
                self.max_timestamp_so_far = h.max_timestamp;
                self.offset_of_max_timestamp_so_far = h.last_offset();
            }
            if self.bytes_since_last_index_entry > self.index_interval_bytes {
                self.add_index_entries(h.last_offset(), position);
            }
            let total = h.total_size() as u64;
            position += total;
            self.bytes_since_last_index_entry += total;
        }
        debug_assert!(it.is_exhausted(), "append takes whole batches only");
        self.next_offset = largest_offset + 1;
        self.start_writeback();
        Ok(())
    }

    /// Starts (does not wait for) write-back of every whole chunk written
    /// since the last call (`writeback::start`).
    fn start_writeback(&mut self) {
        let from = self.writeback_started.min(self.size);
        if self.size - from < WRITEBACK_CHUNK {
            return;
        }
        super::writeback::start(&self.log, from, self.size - from);
        self.writeback_started = self.size;
    }

    /// Finds the first batch whose last offset is >= `offset`, starting the
    /// scan at the OffsetIndex entry for it (or `start_position` if later).
    pub fn translate_offset(
        &self,
        offset: i64,
        start_position: u64,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let entry = self.offset_index.lookup(offset);
        let mut pos = u64::from(entry.position).max(start_position);
        while pos < self.size {
            let h = self.read_header(pos)?;
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.total_size() as u64;
        }
        Ok(None)
    }

    /// Byte position of the first batch containing an offset >= `offset`, or
    /// the segment size. Used to turn the high watermark into a cut point.
    pub fn position_of(&self, offset: i64) -> Result<u64, StorageError> {
        if offset >= self.next_offset {
            return Ok(self.size);
        }
        Ok(self
            .translate_offset(offset, 0)?
            .map_or(self.size, |(p, _)| p))
    }

    /// Plans a read of whole batches starting with the batch that contains
    /// `start_offset`, up to `max_size` bytes (at least one batch when
    /// `min_one_batch`) and never past `max_position`. `None` when no batch
    /// in this segment reaches `start_offset`; `len == 0` when nothing fits.
    pub fn read(
        &self,
        start_offset: i64,
        max_size: usize,
        max_position: u64,
        min_one_batch: bool,
    ) -> Result<Option<SegmentRead>, StorageError> {
        let max_position = max_position.min(self.size);
        let Some((start, first)) = self.translate_offset(start_offset, 0)? else {
            return Ok(None);
        };
        let first_size = first.total_size() as u64;
        let mut out = SegmentRead {
            position: start,
            len: 0,
            first_offset: first.base_offset,
        };
        let budget = if min_one_batch {
            (max_size as u64).max(first_size)
        } else {
            max_size as u64
        };
        let limit = start.saturating_add(budget).min(max_position);
        if start + first_size > limit {
            return Ok(Some(out));
        }
        let end = if limit == self.size {
            self.size
        } else {
            self.last_batch_boundary(start + first_size, limit)?
        };
        out.len = (end - start) as usize;
        Ok(Some(out))
    }

    /// Largest batch boundary in [from, limit]; `from` must be a boundary.
    /// Jumps via the OffsetIndex (positions are monotonic too) so the header
    /// scan covers at most about one index interval.
    fn last_batch_boundary(&self, from: u64, limit: u64) -> Result<u64, StorageError> {
        let mut pos = from;
        let probe = u32::try_from(limit).unwrap_or(u32::MAX);
        if let Some(e) = self.offset_index.lookup_by_position(probe) {
            pos = pos.max(u64::from(e.position));
        }
        while pos + LOG_OVERHEAD as u64 <= limit && pos < self.size {
            let h = self.read_header(pos)?;
            let next = pos + h.total_size() as u64;
            if next > limit {
                break;
            }
            pos = next;
        }
        Ok(pos)
    }

    /// Kafka's findOffsetByTimestamp: the first record at or after
    /// `starting_offset` with timestamp >= `timestamp`. Record-level inside
    /// uncompressed batches; for compressed batches the batch's base offset
    /// (clamped to `starting_offset`) and max timestamp.
    pub fn find_offset_by_timestamp(
        &self,
        timestamp: i64,
        starting_offset: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        let t = self.time_index.lookup(timestamp);
        let mut pos = u64::from(
            self.offset_index
                .lookup(t.offset.max(starting_offset))
                .position,
        );
        while pos < self.size {
            let h = self.read_header(pos)?;
            if h.max_timestamp >= timestamp && h.last_offset() >= starting_offset {
                let batch = self.read_bytes(pos, h.total_size())?;
                match record_timestamps(&batch)? {
                    RecordTimestamps::NotAvailable => {
                        return Ok(Some(TimestampOffset {
                            timestamp: h.max_timestamp,
                            offset: h.base_offset.max(starting_offset),
                        }))
                    }
                    RecordTimestamps::Records(records) => {
                        for r in records {
                            let r = r?;
                            let offset = h.base_offset + i64::from(r.offset_delta);
                            if r.timestamp >= timestamp && offset >= starting_offset {
                                return Ok(Some(TimestampOffset {
                                    timestamp: r.timestamp,
                                    offset,
                                }));
                            }
                        }
                    }
                }
            }
            pos += h.total_size() as u64;
        }
        Ok(None)
    }

    /// The record holding this segment's max timestamp (ListOffsets -3).
    /// LogAppendTime and compressed batches answer with the batch's base offset.
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampOffset>, StorageError> {
        if self.size == 0 || self.max_timestamp_so_far == NO_TIMESTAMP {
            return Ok(None);
        }
        let target = self.max_timestamp_so_far;
        let mut pos = u64::from(
            self.offset_index
                .lookup(self.offset_of_max_timestamp_so_far)
                .position,
        );
        while pos < self.size {
            let h = self.read_header(pos)?;
            if h.max_timestamp == target {
                if h.timestamp_type_is_log_append() {
                    return Ok(Some(TimestampOffset {
                        timestamp: target,
                        offset: h.base_offset,
                    }));
                }
                let batch = self.read_bytes(pos, h.total_size())?;
                if let RecordTimestamps::Records(records) = record_timestamps(&batch)? {
                    for r in records {
                        let r = r?;
                        if r.timestamp == target {
                            return Ok(Some(TimestampOffset {
                                timestamp: target,
                                offset: h.base_offset + i64::from(r.offset_delta),
                            }));
                        }
                    }
                }
                return Ok(Some(TimestampOffset {
                    timestamp: target,
                    offset: h.base_offset,
                }));
            }
            pos += h.total_size() as u64;
        }
        Ok(None)
    }

    fn can_convert_to_relative_offset(&self, offset: i64) -> bool {
        let rel = offset - self.base_offset;
        (0..=i64::from(i32::MAX)).contains(&rel)
    }

    /// Kafka's LogSegment.shouldRoll: size would exceed `segment.bytes`,
    /// `segment.ms` elapsed (measured between the first batch's timestamp
    /// and the incoming one, or wall clock since creation when there are no
    /// timestamps), an index is full, or the offsets would overflow.
    pub fn should_roll(
        &self,
        config: &LogConfig,
        incoming_bytes: u64,
        max_timestamp_in_messages: i64,
        max_offset_in_messages: i64,
        now_ms: i64,
    ) -> bool {
        let waited = match self.rolling_based_timestamp {
            Some(t) if t >= 0 => max_timestamp_in_messages.saturating_sub(t),
            _ => now_ms.saturating_sub(self.created_ms),
        };
        let segment_ms = i64::try_from(config.segment_ms).unwrap_or(i64::MAX);
        self.size > config.segment_bytes.saturating_sub(incoming_bytes)
            || (self.size > 0 && waited > segment_ms)
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || !self.can_convert_to_relative_offset(max_offset_in_messages)
    }

    /// Called when the segment stops being the active one: record the final
    /// max-timestamp entry (so a reload knows it without scanning) and trim
    /// both indexes to their real size.
    pub fn on_become_inactive(&mut self) -> Result<(), StorageError> {
        self.time_index.ensure_one_free_slot()?;
        self.time_index.maybe_append(
            self.max_timestamp_so_far,
            self.offset_of_max_timestamp_so_far,
            true,
        )?;
        self.offset_index.trim()?;
        self.time_index.trim()
    }

    /// Grows the indexes back to `segment.index.bytes` so appends can index.
    pub fn make_active(&mut self) -> Result<(), StorageError> {
        self.offset_index.resize(self.max_index_bytes)?;
        self.time_index.resize(self.max_index_bytes)
    }

    /// fsync the log and msync both indexes.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.log
            .sync_data()
            .map_err(io_err(&self.log_path, "fsync segment"))?;
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// Seal (final time index entry + trim) and flush.
    pub fn close(&mut self) -> Result<(), StorageError> {
        self.on_become_inactive()?;
        self.flush()
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    /// Offset after the last batch (base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn max_timestamp_so_far(&self) -> i64 {
        self.max_timestamp_so_far
    }
    pub fn offset_of_max_timestamp_so_far(&self) -> i64 {
        self.offset_of_max_timestamp_so_far
    }
    pub fn rolling_based_timestamp(&self) -> Option<i64> {
        self.rolling_based_timestamp
    }
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }
    pub fn log_file(&self) -> &Arc<File> {
        &self.log
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }
    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }
    /// Kafka's `LogSegment.largestTimestamp`, the clock `retention.ms` and
    /// `min.compaction.lag.ms` are measured on: the max batch timestamp, or
    /// the file's modification time when no batch carries a timestamp.
    pub fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp_so_far >= 0 {
            return self.max_timestamp_so_far;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(self.created_ms, |d| d.as_millis() as i64)
    }
}

mod recovery;
#[cfg(test)]
mod tests;
