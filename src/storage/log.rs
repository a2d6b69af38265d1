//! Log: one partition's local log (Kafka's UnifiedLog + LocalLog) in its
//! `<topic>-<partition>` directory. Owns the ordered LogSegments, the log
//! start offset and log end offset, rolling, recovery after an unclean
//! shutdown, and the lock-free-I/O split used by the broker: `read_plan`
//! and `unflushed_files` run under the caller's mutex, while `ReadPlan::read`
//! and `FlushPlan::sync` do the I/O after it is released.

use crate::util::now_ms;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tracing::{info, warn};

use crate::record::{assign_offsets, iter_batches, RecordError};

use super::cleaner::{self, CleanerSegment, CLEANED_SUFFIX, DELETED_SUFFIX, SWAP_SUFFIX};
use super::config::LogConfig;
use super::error::StorageError;
use super::retention::{deletable_segment_count, RetentionPolicy, SegmentInfo};
use super::segment::{
    segment_file_name, LogSegment, INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX,
};
use super::time_index::TimestampOffset;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub first_offset: i64,
    pub last_offset: i64,
    /// Largest batch maxTimestamp in the append (-1 if none).
    pub max_timestamp: i64,
    /// Last offset of the batch carrying `max_timestamp` (Kafka's shallow offset).
    pub offset_of_max_timestamp: i64,
    pub segment_base_offset: i64,
    /// Byte position of the first batch inside its segment file.
    pub position: u64,
    pub size: usize,
}

/// A read decided under the lock and executed without it.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
    /// Base offset of the first batch, -1 when the plan is empty.
    pub first_offset: i64,
    pub segment_base_offset: i64,
}

impl ReadPlan {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The single pread. The file handle keeps a deleted segment readable,
    /// so retention running concurrently cannot break an in-flight fetch.
    pub fn read(&self) -> io::Result<Bytes> {
        if self.len == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(Bytes::from(buf))
    }
}

/// Files to fsync for a group commit, and the log end offset they cover.
#[derive(Debug, Clone, Default)]
pub struct FlushPlan {
    pub files: Vec<Arc<File>>,
    pub up_to: i64,
}

impl FlushPlan {
    pub fn sync(&self) -> io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        Ok(())
    }
}

pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset; never empty; the last one is the active segment.
    segments: Vec<LogSegment>,
    log_start_offset: i64,
    /// Offsets below this are known durable (Kafka's recovery point).
    flushed_offset: i64,
}

fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    crate::util::fs::sync_dir(dir).map_err(|e| StorageError::io(dir, "fsync directory", e))
}

/// Parses `00000000000000000042` into 42.
fn parse_base_offset(stem: &str) -> Option<i64> {
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

impl Log {
    /// Loads (or creates) the partition log in `dir`. Leftover `.deleted`,
    /// `.cleaned`, `.swap` and temp files are removed, as are index files
    /// without a `.log`. Every segment's indexes are sanity-checked and
    /// rebuilt if missing or bad; when `needs_recovery` (unclean shutdown)
    /// the active segment is fully scanned and cut at the first invalid batch.
    pub fn open(dir: &Path, config: LogConfig, needs_recovery: bool) -> Result<Log, StorageError> {
        config.validate()?;
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, "create log directory", e))?;
        let now = now_ms();
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        // Finish (or discard) a compaction swap a crash interrupted, as
        // Kafka's LogLoader does, before the segments are listed.
        let mut removed_any = super::cleaner::complete_interrupted_swaps(dir)?;
        let entries =
            fs::read_dir(dir).map_err(|e| StorageError::io(dir, "list log directory", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(dir, "list log directory", e))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if name.ends_with(".deleted")
                || name.ends_with(".cleaned")
                || name.ends_with(".swap")
                || name.ends_with(".tmp")
            {
                // complete_interrupted_swaps already handled these; what
                // is left appeared since and is garbage.
                warn!(file = %path.display(), "removing leftover file");
                fs::remove_file(&path)
                    .map_err(|e| StorageError::io(&path, "remove leftover", e))?;
                removed_any = true;
            } else if let Some(stem) = name.strip_suffix(LOG_FILE_SUFFIX) {
                if let Some(base) = parse_base_offset(stem) {
                    bases.push(base);
                }
            } else if let Some(stem) = name
                .strip_suffix(INDEX_FILE_SUFFIX)
                .or_else(|| name.strip_suffix(TIME_INDEX_FILE_SUFFIX))
            {
                if let Some(base) = parse_base_offset(stem) {
                    index_files.push((base, path));
                }
            }
        }
        bases.sort_unstable();
        for (base, path) in index_files {
            if bases.binary_search(&base).is_err() {
                warn!(file = %path.display(), "removing orphaned index file");
                fs::remove_file(&path)
                    .map_err(|e| StorageError::io(&path, "remove orphan index", e))?;
                removed_any = true;
            }
        }

        let mut segments = Vec::with_capacity(bases.len().max(1));
        for &base in &bases {
            segments.push(LogSegment::open(dir, base, &config, now)?);
        }
        let mut created = false;
        if segments.is_empty() {
            segments.push(LogSegment::create(dir, 0, &config, now)?);
            created = true;
        }
        let last = segments.len() - 1;
        for seg in &mut segments[..last] {
            // No-op for segments sealed cleanly; trims rebuilt ones.
            seg.on_become_inactive()?;
        }
        let active = &mut segments[last];
        if needs_recovery {
            let truncated = active.recover()?;
            info!(dir = %dir.display(), truncated, log_end_offset = active.next_offset(), "recovered active segment");
        }
        active.make_active()?;
        if created || removed_any {
            fsync_dir(dir)?;
        }
        let log_start_offset = segments[0].base_offset();
        let log_end_offset = segments[last].next_offset();
        Ok(Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            flushed_offset: log_end_offset,
        })
    }

    fn active(&self) -> &LogSegment {
        // Invariant: at least one segment.
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Appends whole v2 batches (already validated): assigns offsets from
    /// the log end offset by rewriting baseOffset in place, rolls if needed,
    /// writes with one positional write. On error the log end offset is
    /// unchanged and nothing becomes visible to readers.
    pub fn append(
        &mut self,
        records: &mut [u8],
        now_ms: i64,
    ) -> Result<AppendResult, StorageError> {
        let invalid = |reason: String, offset: i64| StorageError::InvalidRecords {
            path: None,
            offset,
            reason,
        };
        let first_offset = self.log_end_offset();
        if records.is_empty() {
            return Err(invalid("empty append".into(), first_offset));
        }
        let last_offset = assign_offsets(records, first_offset)?;
        let mut max_timestamp = -1i64;
        let mut offset_of_max_timestamp = first_offset;
        let mut it = iter_batches(records);
        for (_, h) in &mut it {
            if h.max_timestamp > max_timestamp {
                max_timestamp = h.max_timestamp;
                offset_of_max_timestamp = h.last_offset();
            }
        }
        if !it.is_exhausted() {
            return Err(StorageError::Record(RecordError::PartialBatch {
                batch_index: 0,
                position: it.position(),
                needed: records.len(),
                available: it.position(),
            }));
        }
        if last_offset < first_offset {
            return Err(invalid(
                format!("last offset {last_offset} below first"),
                first_offset,
            ));
        }
        if self.active().should_roll(
            &self.config,
            records.len() as u64,
            max_timestamp,
            last_offset,
            now_ms,
        ) {
            self.roll(now_ms)?;
        }
        let seg = self.active_mut();
        let position = seg.size();
        seg.append(last_offset, records)?;
        Ok(AppendResult {
            first_offset,
            last_offset,
            max_timestamp,
            offset_of_max_timestamp,
            segment_base_offset: seg.base_offset(),
            position,
            size: records.len(),
        })
    }

    /// Seals the active segment and starts a new one at the log end offset.
    /// An empty active segment already sits at that offset and is reused.
    pub fn roll(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let new_base = self.log_end_offset();
        if self.active().is_empty() && self.active().base_offset() == new_base {
            return Ok(());
        }
        // Recovery after a crash scans only the active segment, so a segment
        // must be fully on disk before it stops being the active one.
        self.active_mut().flush()?;
        self.active_mut().on_become_inactive()?;
        let seg = LogSegment::create(&self.dir, new_base, &self.config, now_ms)?;
        self.segments.push(seg);
        // The new directory entries must survive a crash.
        fsync_dir(&self.dir)?;
        info!(dir = %self.dir.display(), base_offset = new_base, "rolled new log segment");
        Ok(())
    }

    /// Index of the segment that would hold `offset`.
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1)
    }

    fn empty_plan(&self) -> ReadPlan {
        let seg = self.active();
        ReadPlan {
            file: Arc::clone(seg.log_file()),
            position: seg.size(),
            len: 0,
            first_offset: -1,
            segment_base_offset: seg.base_offset(),
        }
    }

    /// Decides what a fetch at `fetch_offset` returns: whole batches from the
    /// one containing `fetch_offset`, at most `max_bytes` (but at least one
    /// batch if `min_one_batch`), excluding any batch that reaches
    /// `max_offset` (exclusive; pass the high watermark, or `i64::MAX`).
    /// Moves on to the next segment when a segment has nothing at or after
    /// the offset. Offsets outside [log start, log end] are out of range.
    pub fn read_plan(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset: i64,
    ) -> Result<ReadPlan, StorageError> {
        let log_end = self.log_end_offset();
        if fetch_offset < self.log_start_offset || fetch_offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: log_end,
            });
        }
        let max_offset = max_offset.min(log_end);
        if fetch_offset >= max_offset {
            return Ok(self.empty_plan());
        }
        for seg in &self.segments[self.segment_index_for(fetch_offset)..] {
            let max_position = seg.position_of(max_offset)?;
            if let Some(r) = seg.read(fetch_offset, max_bytes, max_position, min_one_batch)? {
                return Ok(ReadPlan {
                    file: Arc::clone(seg.log_file()),
                    position: r.position,
                    len: r.len,
                    first_offset: if r.len == 0 { -1 } else { r.first_offset },
                    segment_base_offset: seg.base_offset(),
                });
            }
        }
        Ok(self.empty_plan())
    }

    /// Segments holding data not yet covered by `mark_flushed`, for the
    /// caller to fsync outside its lock.
    pub fn unflushed_files(&self) -> FlushPlan {
        let up_to = self.log_end_offset();
        let mut files = Vec::new();
        if up_to > self.flushed_offset {
            for seg in &self.segments {
                // Only the data files: indexes are rebuilt from the log by
                // recovery, so fsyncing them per acknowledgement buys nothing.
                if seg.next_offset() > self.flushed_offset && !seg.is_empty() {
                    files.push(Arc::clone(seg.log_file()));
                }
            }
        }
        FlushPlan { files, up_to }
    }

    /// Records that everything below `up_to` is durable.
    pub fn mark_flushed(&mut self, up_to: i64) {
        let up_to = up_to.min(self.log_end_offset());
        if up_to > self.flushed_offset {
            self.flushed_offset = up_to;
        }
    }

    /// Offset below which data is known durable (Kafka's recovery point).
    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset
    }

    /// Synchronous flush of everything unflushed.
    pub fn flush_all(&mut self) -> Result<(), StorageError> {
        let plan = self.unflushed_files();
        plan.sync()
            .map_err(|e| StorageError::io(&self.dir, "fsync segments", e))?;
        self.mark_flushed(plan.up_to);
        Ok(())
    }

    /// ListOffsets by timestamp: first record with timestamp >= `timestamp`
    /// at or after the log start offset, searching the first segment whose
    /// max timestamp reaches it.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        for seg in &self.segments {
            if seg.next_offset() <= self.log_start_offset || seg.max_timestamp_so_far() < timestamp
            {
                continue;
            }
            return seg.find_offset_by_timestamp(timestamp, self.log_start_offset);
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP (-3): the record with the largest timestamp
    /// (the earliest segment holding it wins ties, as in Kafka).
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampOffset>, StorageError> {
        let mut best: Option<&LogSegment> = None;
        for seg in &self.segments {
            if seg.is_empty() || seg.next_offset() <= self.log_start_offset {
                continue;
            }
            if best.is_none_or(|b| seg.max_timestamp_so_far() > b.max_timestamp_so_far()) {
                best = Some(seg);
            }
        }
        match best {
            Some(seg) => seg.max_timestamp_and_offset(),
            None => Ok(None),
        }
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Sets the log start offset (from the caller's checkpoint, or
    /// DeleteRecords/retention). Never moves below the first segment's base.
    /// Moving past the log end offset empties the log and restarts it there,
    /// like Kafka's truncateFullyAndStartAt. Segments wholly below the new
    /// start are deleted.
    pub fn set_log_start_offset(&mut self, offset: i64) -> Result<(), StorageError> {
        let first_base = self.segments[0].base_offset();
        let offset = offset.max(first_base);
        if offset > self.log_end_offset() {
            let now = now_ms();
            let old = std::mem::take(&mut self.segments);
            for seg in old {
                Self::remove_segment_files(seg)?;
            }
            let mut seg = LogSegment::create(&self.dir, offset, &self.config, now)?;
            seg.make_active()?;
            self.segments.push(seg);
            fsync_dir(&self.dir)?;
            self.flushed_offset = offset;
        } else {
            // Keep the segment containing `offset` and everything after it.
            let keep_from = self.segment_index_for(offset);
            if keep_from > 0 {
                let removed: Vec<LogSegment> = self.segments.drain(..keep_from).collect();
                for seg in removed {
                    Self::remove_segment_files(seg)?;
                }
                fsync_dir(&self.dir)?;
            }
        }
        self.log_start_offset = offset;
        Ok(())
    }

    fn remove_segment_files(seg: LogSegment) -> Result<(), StorageError> {
        let paths = [
            seg.log_path().to_path_buf(),
            seg.offset_index().path().to_path_buf(),
            seg.time_index().path().to_path_buf(),
        ];
        drop(seg);
        for p in paths {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(&p, "delete segment file", e)),
            }
        }
        Ok(())
    }

    /// Clean shutdown: seal and trim the active segment and fsync everything,
    /// so the next open needs no recovery.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.flush_all()?;
        let active = self.active_mut();
        active.close()?;
        Ok(())
    }

    /// Removes the partition directory (DeleteTopics).
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).map_err(|e| StorageError::io(&dir, "delete log directory", e))?;
        if let Some(parent) = dir.parent() {
            fsync_dir(parent)?;
        }
        Ok(())
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(LogSegment::size).sum()
    }

    /// Base offset of the segment taking appends.
    pub fn active_segment_base_offset(&self) -> i64 {
        self.active().base_offset()
    }

    pub fn segments_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of all segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.iter().map(LogSegment::base_offset).collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// New segment and index settings; they apply from the next roll.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Retention's view of the segments, oldest first, active last.
    pub fn retention_segments(&self) -> Vec<SegmentInfo> {
        self.segments
            .iter()
            .map(|s| SegmentInfo {
                base_offset: s.base_offset(),
                size: s.size(),
                largest_timestamp: s.largest_timestamp(),
            })
            .collect()
    }

    /// Kafka's `deleteOldSegments`: deletes the oldest segments that
    /// retention (see `retention::deletable_segment_count`) allows, rolling
    /// first when every segment goes. Returns the files renamed `.deleted`,
    /// which the caller removes after `file.delete.delay.ms`.
    pub fn delete_old_segments(
        &mut self,
        policy: &RetentionPolicy,
        high_watermark: i64,
        now_ms: i64,
    ) -> Result<Vec<PathBuf>, StorageError> {
        let n = deletable_segment_count(
            &self.retention_segments(),
            self.log_start_offset,
            self.log_end_offset(),
            high_watermark,
            policy,
            now_ms,
        );
        self.delete_oldest_segments(n, now_ms)
    }

    /// Removes the `n` oldest segments (renamed `.deleted`, for the caller
    /// to remove later) and moves the log start offset to the new first
    /// segment's base. A log always keeps one segment: when all go, a new
    /// active segment is rolled first.
    pub fn delete_oldest_segments(
        &mut self,
        n: usize,
        now_ms: i64,
    ) -> Result<Vec<PathBuf>, StorageError> {
        let n = n.min(self.segments.len());
        if n == 0 {
            return Ok(Vec::new());
        }
        if n == self.segments.len() {
            self.roll(now_ms)?;
        }
        let n = n.min(self.segments.len() - 1);
        if n == 0 {
            return Ok(Vec::new());
        }
        // Readers must never see a start below the first segment.
        self.log_start_offset = self.log_start_offset.max(self.segments[n].base_offset());
        let removed: Vec<LogSegment> = self.segments.drain(..n).collect();
        let mut renamed = Vec::new();
        for seg in removed {
            renamed.extend(Self::rename_segment_files(&seg, DELETED_SUFFIX)?);
            info!(dir = %self.dir.display(), base_offset = seg.base_offset(), "deleting segment (retention)");
        }
        fsync_dir(&self.dir)?;
        Ok(renamed)
    }

    /// Renames a segment's three files with `suffix` appended; returns the
    /// new paths of those that existed.
    fn rename_segment_files(seg: &LogSegment, suffix: &str) -> Result<Vec<PathBuf>, StorageError> {
        let mut out = Vec::new();
        for p in [
            seg.log_path(),
            seg.offset_index().path(),
            seg.time_index().path(),
        ] {
            let mut target = p.as_os_str().to_owned();
            target.push(suffix);
            let target = PathBuf::from(target);
            match fs::rename(p, &target) {
                Ok(()) => out.push(target),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(p, "rename segment file", e)),
            }
        }
        Ok(out)
    }

    /// The cleaner's view of the non-active segments, oldest first; the
    /// shared file handles let it read them without the lock.
    pub fn cleaner_segments(&self) -> Vec<CleanerSegment> {
        let last = self.segments.len() - 1;
        self.segments[..last]
            .iter()
            .map(|s| CleanerSegment {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                size: s.size(),
                file: Arc::clone(s.log_file()),
                path: s.log_path().to_path_buf(),
                index_bytes: s.offset_index().entries() as u64 * 8,
                largest_timestamp: s.largest_timestamp(),
                first_batch_timestamp: s.rolling_based_timestamp(),
            })
            .collect()
    }

    /// Swaps in a cleaned segment written as `<base>.{log,index,timeindex}.cleaned`
    /// (base = first replaced segment) for the consecutive non-active
    /// segments `replaced` (base, size). Returns `None`, touching nothing,
    /// if those segments are no longer exactly there (retention or
    /// DeleteRecords removed some meanwhile). Kafka's order: `.cleaned` →
    /// `.swap` (the log file's rename commits), old files → `.deleted`,
    /// `.swap` → final names; see `cleaner::complete_interrupted_swaps`
    /// for the crash cases.
    pub fn replace_with_cleaned(
        &mut self,
        replaced: &[(i64, u64)],
        now_ms: i64,
    ) -> Result<Option<Vec<PathBuf>>, StorageError> {
        let Some(&(base, _)) = replaced.first() else {
            return Ok(None);
        };
        let Some(start) = self.segments.iter().position(|s| s.base_offset() == base) else {
            return Ok(None);
        };
        let end = start + replaced.len();
        if end >= self.segments.len() {
            return Ok(None); // would include the active segment
        }
        let unchanged = replaced
            .iter()
            .zip(&self.segments[start..end])
            .all(|(&(b, size), s)| s.base_offset() == b && s.size() == size);
        if !unchanged {
            return Ok(None);
        }
        let cleaned = |suffix: &str| cleaner::suffixed(&self.dir, base, suffix, CLEANED_SUFFIX);
        let swap = |suffix: &str| cleaner::suffixed(&self.dir, base, suffix, SWAP_SUFFIX);
        // Indexes first: the log file's rename is the commit point.
        for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX] {
            fs::rename(cleaned(suffix), swap(suffix))
                .map_err(|e| StorageError::io(cleaned(suffix), "rename cleaned segment", e))?;
        }
        fsync_dir(&self.dir)?;
        let mut deleted = Vec::new();
        for seg in &self.segments[start..end] {
            deleted.extend(Self::rename_segment_files(seg, DELETED_SUFFIX)?);
        }
        for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX] {
            let target = self.dir.join(segment_file_name(base, suffix));
            fs::rename(swap(suffix), &target)
                .map_err(|e| StorageError::io(swap(suffix), "rename swap segment", e))?;
        }
        fsync_dir(&self.dir)?;
        let seg = LogSegment::open(&self.dir, base, &self.config, now_ms)?;
        self.segments.splice(start..end, [seg]);
        info!(dir = %self.dir.display(), base_offset = base, replaced = replaced.len(), "swapped in cleaned segment");
        Ok(Some(deleted))
    }
}

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Log>();
    is_send::<ReadPlan>();
    is_send::<FlushPlan>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::batch::{compute_crc, CRC_OFFSET, LAST_OFFSET_DELTA_OFFSET};
    use crate::record::{BatchBuilder, BatchHeader};

    const T0: i64 = 1_700_000_000_000;

    fn small_cfg() -> LogConfig {
        LogConfig {
            segment_bytes: 2048,
            index_interval_bytes: 256,
            segment_index_bytes: 1024,
            ..LogConfig::default()
        }
    }

    /// A batch of `n` records of ~50 bytes each, timestamps ts, ts+1, ...
    fn batch(n: usize, ts: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new(ts);
        for i in 0..n {
            b = b.push(Some(b"key"), Some(&[b'v'; 40]), &[], ts + i as i64);
        }
        b.build().to_vec()
    }

    fn append(log: &mut Log, n: usize, ts: i64) -> AppendResult {
        let mut b = batch(n, ts);
        log.append(&mut b, ts).unwrap()
    }

    fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
        iter_batches(bytes).map(|(_, h)| h).collect()
    }

    fn read_all(log: &Log, offset: i64, max: usize, min_one: bool, hw: i64) -> Vec<BatchHeader> {
        let plan = log.read_plan(offset, max, min_one, hw).unwrap();
        let bytes = plan.read().unwrap();
        assert_eq!(bytes.len(), plan.len);
        let hs = headers(&bytes);
        assert_eq!(
            hs.iter().map(|h| h.total_size()).sum::<usize>(),
            bytes.len(),
            "whole batches only"
        );
        hs
    }

    #[test]
    fn append_assigns_offsets_and_reopen_restores_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topic-0");
        let mut log = Log::open(&path, small_cfg(), false).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        let r = append(&mut log, 3, T0);
        assert_eq!((r.first_offset, r.last_offset, r.position), (0, 2, 0));
        assert_eq!(r.max_timestamp, T0 + 2);
        let r = append(&mut log, 2, T0 + 10);
        assert_eq!((r.first_offset, r.last_offset), (3, 4));
        assert_eq!(log.log_end_offset(), 5);
        log.close().unwrap();
        assert!(path.join("00000000000000000000.log").exists());
        let idx_len = fs::metadata(path.join("00000000000000000000.index"))
            .unwrap()
            .len();
        assert!(idx_len < 1024, "index trimmed on close");

        let mut log = Log::open(&path, small_cfg(), false).unwrap();
        assert_eq!(log.log_end_offset(), 5);
        let r = append(&mut log, 1, T0 + 20);
        assert_eq!(r.first_offset, 5);
        let hs = read_all(&log, 0, 1 << 20, false, i64::MAX);
        assert_eq!(
            hs.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
            vec![0, 3, 5]
        );
    }

    #[test]
    fn rolls_by_size_and_reads_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
        for i in 0..40 {
            append(&mut log, 4, T0 + i * 10);
        }
        assert!(log.segments_count() > 3, "{}", log.segments_count());
        let bases = log.segment_base_offsets();
        assert_eq!(bases[0], 0);
        assert!(bases.windows(2).all(|w| w[0] < w[1]));
        for seg in &log.segments {
            assert!(seg.size() <= 2048);
        }
        // Fetch at a segment's base returns data from that segment only.
        let hs = read_all(&log, bases[1], 1 << 20, false, i64::MAX);
        assert_eq!(hs[0].base_offset, bases[1]);
        assert_eq!(hs.last().unwrap().next_offset(), bases[2]);
        // Every offset is readable and returns the batch containing it.
        for off in 0..log.log_end_offset() {
            let hs = read_all(&log, off, 1, true, i64::MAX);
            assert_eq!(hs.len(), 1);
            assert!(hs[0].base_offset <= off && off <= hs[0].last_offset());
        }
        log.close().unwrap();
        let log = Log::open(dir.path(), small_cfg(), false).unwrap();
        assert_eq!(log.log_end_offset(), 160);
        assert_eq!(log.segment_base_offsets(), bases);
    }

    #[test]
    fn rolls_on_relative_offset_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
        append(&mut log, 1, T0);
        // A batch claiming i32::MAX + 1 offsets: its last offset cannot be
        // stored relative to base 0.
        let mut b = batch(1, T0);
        b[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
            .copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = compute_crc(&b);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        let r = log.append(&mut b, T0).unwrap();
        assert_eq!(r.first_offset, 1);
        assert_eq!(r.segment_base_offset, 1);
        assert_eq!(log.segments_count(), 2);
        assert_eq!(log.log_end_offset(), 1 + i64::from(i32::MAX) + 1);
    }

    #[test]
    fn rolls_by_segment_ms() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_ms: 1000,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path(), cfg, false).unwrap();
        append(&mut log, 1, T0);
        append(&mut log, 1, T0 + 500);
        assert_eq!(log.segments_count(), 1);
        append(&mut log, 1, T0 + 1001);
        assert_eq!(log.segments_count(), 2);
        assert_eq!(log.segment_base_offsets(), vec![0, 2]);
    }

    #[test]
    fn read_plan_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
        for i in 0..5 {
            append(&mut log, 3, T0 + i);
        } // batches at 0,3,6,9,12; log end 15; all in one segment
        assert_eq!(log.segments_count(), 1);
        let one = batch(3, T0).len();

        // max_bytes limits to whole batches.
        let hs = read_all(&log, 0, 2 * one + one / 2, false, i64::MAX);
        assert_eq!(hs.len(), 2);
        // Too small for a batch: nothing unless min_one_batch.
        assert!(read_all(&log, 0, one - 1, false, i64::MAX).is_empty());
        let hs = read_all(&log, 0, 1, true, i64::MAX);
        assert_eq!(hs.len(), 1);
        // Mid-batch offset returns the whole containing batch.
        let hs = read_all(&log, 7, 1 << 20, false, i64::MAX);
        assert_eq!(hs[0].base_offset, 6);
        assert_eq!(hs.len(), 3);
        // High watermark cut: batches reaching it are excluded.
        let hs = read_all(&log, 0, 1 << 20, false, 9);
        assert_eq!(
            hs.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
            vec![0, 3, 6]
        );
        let hs = read_all(&log, 0, 1 << 20, true, 10);
        assert_eq!(
            hs.last().unwrap().base_offset,
            6,
            "batch 9..11 straddles hw 10"
        );
        assert!(read_all(&log, 9, 1 << 20, true, 9).is_empty());
        assert!(
            read_all(&log, 12, 1 << 20, true, 9).is_empty(),
            "between hw and log end: empty"
        );
        // At log end: empty; beyond / below: out of range.
        assert!(log.read_plan(15, 100, true, i64::MAX).unwrap().is_empty());
        assert!(matches!(
            log.read_plan(16, 100, true, i64::MAX),
            Err(StorageError::OffsetOutOfRange { offset: 16, .. })
        ));
        assert!(matches!(
            log.read_plan(-1, 100, true, i64::MAX),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        let plan = log.read_plan(3, 1 << 20, false, i64::MAX).unwrap();
        assert_eq!(plan.first_offset, 3);
        assert_eq!(plan.position, one as u64);
    }

    #[test]
    fn read_continues_past_segment_with_nothing_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
        append(&mut log, 2, T0);
        log.roll(T0).unwrap();
        append(&mut log, 2, T0);
        // Gap: the first segment ends at 2 but we ask from the second's data.
        let hs = read_all(&log, 2, 1 << 20, false, i64::MAX);
        assert_eq!(hs[0].base_offset, 2);
        // Offset inside a gap between segments (log start moved into a hole).
        let dir2 = tempfile::tempdir().unwrap();
        let mut log2 = Log::open(dir2.path(), LogConfig::default(), false).unwrap();
        append(&mut log2, 2, T0);
        log2.set_log_start_offset(10).unwrap(); // past log end: restart at 10
        assert_eq!((log2.log_start_offset(), log2.log_end_offset()), (10, 10));
        append(&mut log2, 1, T0);
        assert_eq!(
            read_all(&log2, 10, 1 << 20, false, i64::MAX)[0].base_offset,
            10
        );
        assert!(log2.read_plan(5, 1, true, i64::MAX).is_err());
    }

    fn last_segment_path(log: &Log) -> PathBuf {
        log.segments.last().unwrap().log_path().to_path_buf()
    }

    /// Appends 10 batches of 3 (offsets 0..30), damages the tail with `damage`,
    /// reopens with recovery and checks the log end and further appends.
    fn torn_tail_case(damage: impl Fn(&Path, u64), expected_end: i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg_big_segments(), false).unwrap();
        let mut last_pos = 0;
        for i in 0..10 {
            last_pos = append(&mut log, 3, T0 + i).position;
        }
        log.flush_all().unwrap();
        let seg_path = last_segment_path(&log);
        drop(log); // unclean: no close
        damage(&seg_path, last_pos);
        let mut log = Log::open(dir.path(), small_cfg_big_segments(), true).unwrap();
        assert_eq!(log.log_end_offset(), expected_end);
        let seg = log.segments.last().unwrap();
        assert!(seg.offset_index().entries() > 0, "index rebuilt");
        assert_eq!(
            seg.size() as usize,
            (expected_end / 3) as usize * batch(3, T0).len()
        );
        // Everything left is readable and lookups work.
        let hs = read_all(&log, 0, 1 << 20, false, i64::MAX);
        assert_eq!(hs.last().unwrap().next_offset(), expected_end);
        let t = log.offset_for_timestamp(T0 + 2).unwrap().unwrap();
        assert_eq!(
            t,
            TimestampOffset {
                timestamp: T0 + 2,
                offset: 2
            }
        );
        let r = append(&mut log, 2, T0 + 100);
        assert_eq!(r.first_offset, expected_end);
        assert_eq!(
            read_all(&log, expected_end, 1 << 20, false, i64::MAX).len(),
            1
        );
        log.close().unwrap();
        let log = Log::open(dir.path(), small_cfg_big_segments(), false).unwrap();
        assert_eq!(log.log_end_offset(), expected_end + 2);
    }

    fn small_cfg_big_segments() -> LogConfig {
        LogConfig {
            index_interval_bytes: 256,
            segment_index_bytes: 1024,
            ..LogConfig::default()
        }
    }

    #[test]
    fn recovery_truncates_garbage_tail() {
        torn_tail_case(
            |p, _| {
                let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
                std::io::Write::write_all(&mut f, &[0xAB; 100]).unwrap();
            },
            30,
        );
    }

    #[test]
    fn recovery_truncates_mid_batch() {
        torn_tail_case(
            |p, last_pos| {
                let f = fs::OpenOptions::new().write(true).open(p).unwrap();
                f.set_len(last_pos + 30).unwrap();
            },
            27,
        );
    }

    #[test]
    fn recovery_drops_batch_with_bad_crc() {
        torn_tail_case(
            |p, last_pos| {
                let f = fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(p)
                    .unwrap();
                let at = last_pos + 70;
                let mut b = [0u8; 1];
                f.read_exact_at(&mut b, at).unwrap();
                f.write_all_at(&[b[0] ^ 0xff], at).unwrap();
            },
            27,
        );
    }

    #[test]
    fn recovery_of_zeroed_preallocated_tail() {
        // A filesystem may leave zeros after a crash: treat like garbage.
        torn_tail_case(
            |p, _| {
                let f = fs::OpenOptions::new().write(true).open(p).unwrap();
                let len = f.metadata().unwrap().len();
                f.set_len(len + 4096).unwrap();
            },
            30,
        );
    }

    #[test]
    fn unclean_shutdown_without_recovery_flag_rebuilds_untrimmed_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg_big_segments(), false).unwrap();
        for i in 0..10 {
            append(&mut log, 3, T0 + i);
        }
        drop(log); // indexes left preallocated (zero tail)
        let log = Log::open(dir.path(), small_cfg_big_segments(), false).unwrap();
        assert_eq!(log.log_end_offset(), 30);
        let hs = read_all(&log, 17, 1, true, i64::MAX);
        assert_eq!(hs[0].base_offset, 15);
    }

    #[test]
    fn corrupt_index_of_old_segment_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
        for i in 0..30 {
            append(&mut log, 4, T0 + i);
        }
        let bases = log.segment_base_offsets();
        log.close().unwrap();
        let idx = dir.path().join(format!("{:020}.index", bases[0]));
        let good = fs::read(&idx).unwrap();
        assert!(good.len() >= 16);
        let mut bad = good.clone();
        bad.truncate(bad.len() - 3); // not a multiple of 8
        fs::write(&idx, &bad).unwrap();
        let tidx = dir.path().join(format!("{:020}.timeindex", bases[1]));
        fs::write(&tidx, [0xffu8; 24]).unwrap(); // decreasing garbage
        fs::remove_file(dir.path().join(format!("{:020}.timeindex", bases[2]))).unwrap();
        let log = Log::open(dir.path(), small_cfg(), false).unwrap();
        assert_eq!(
            fs::read(&idx).unwrap(),
            good,
            "rebuilt identically and trimmed"
        );
        assert_eq!(log.log_end_offset(), 120);
        for off in [0, 5, bases[1] + 1, bases[2] + 3, 119] {
            let hs = read_all(&log, off, 1, true, i64::MAX);
            assert!(hs[0].base_offset <= off && off <= hs[0].last_offset());
        }
    }

    #[test]
    fn stray_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
        append(&mut log, 1, T0);
        log.close().unwrap();
        for name in [
            "00000000000000000000.log.deleted",
            "00000000000000000005.log.cleaned",
            "00000000000000000005.log.swap",
            "00000000000000000009.index",
            "foo.tmp",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::write(dir.path().join("leader-epoch-checkpoint"), b"0\n").unwrap();
        let log = Log::open(dir.path(), small_cfg(), false).unwrap();
        assert_eq!(log.log_end_offset(), 1);
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "00000000000000000000.index",
                "00000000000000000000.log",
                "00000000000000000000.timeindex",
                "leader-epoch-checkpoint"
            ]
        );
    }

    #[test]
    fn timestamp_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
        // Each batch: 4 records, timestamps i*100 .. i*100+3.
        for i in 0..30 {
            append(&mut log, 4, T0 + i * 100);
        }
        assert!(log.segments_count() > 2);
        assert_eq!(
            log.offset_for_timestamp(T0).unwrap(),
            Some(TimestampOffset {
                timestamp: T0,
                offset: 0
            })
        );
        // Record-level inside a batch.
        assert_eq!(
            log.offset_for_timestamp(T0 + 1702).unwrap(),
            Some(TimestampOffset {
                timestamp: T0 + 1702,
                offset: 17 * 4 + 2
            })
        );
        // Between batches: the next batch's first record.
        assert_eq!(
            log.offset_for_timestamp(T0 + 1750).unwrap(),
            Some(TimestampOffset {
                timestamp: T0 + 1800,
                offset: 18 * 4
            })
        );
        assert_eq!(log.offset_for_timestamp(T0 + 10_000).unwrap(), None);
        assert_eq!(
            log.max_timestamp_and_offset().unwrap(),
            Some(TimestampOffset {
                timestamp: T0 + 2903,
                offset: 119
            })
        );
        // Out-of-order producer timestamps: the max is in an early record.
        let dir2 = tempfile::tempdir().unwrap();
        let mut log2 = Log::open(dir2.path(), small_cfg(), false).unwrap();
        let mut b = BatchBuilder::new(T0)
            .push(None, Some(b"a"), &[], T0)
            .push(None, Some(b"b"), &[], T0 + 50)
            .push(None, Some(b"c"), &[], T0 + 10)
            .build();
        log2.append(&mut b, T0).unwrap();
        assert_eq!(
            log2.max_timestamp_and_offset().unwrap(),
            Some(TimestampOffset {
                timestamp: T0 + 50,
                offset: 1
            })
        );
        assert_eq!(
            log2.offset_for_timestamp(T0 + 20).unwrap(),
            Some(TimestampOffset {
                timestamp: T0 + 50,
                offset: 1
            })
        );
        // LogAppendTime batch: every record carries the batch's max timestamp.
        let mut b = batch(3, T0);
        crate::record::set_log_append_time(&mut b, T0 + 999).unwrap();
        log2.append(&mut b, T0).unwrap();
        assert_eq!(
            log2.offset_for_timestamp(T0 + 60).unwrap(),
            Some(TimestampOffset {
                timestamp: T0 + 999,
                offset: 3
            })
        );
        assert_eq!(
            log2.max_timestamp_and_offset().unwrap(),
            Some(TimestampOffset {
                timestamp: T0 + 999,
                offset: 3
            })
        );
        // Time index survives reopen.
        log.close().unwrap();
        let log = Log::open(dir.path(), small_cfg(), false).unwrap();
        assert_eq!(
            log.offset_for_timestamp(T0 + 2301).unwrap(),
            Some(TimestampOffset {
                timestamp: T0 + 2301,
                offset: 23 * 4 + 1
            })
        );
    }

    #[test]
    fn flush_plan_and_mark_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
        assert!(log.unflushed_files().files.is_empty());
        append(&mut log, 2, T0);
        let plan = log.unflushed_files();
        assert_eq!(plan.up_to, 2);
        // The data file only: indexes are rebuilt by recovery.
        assert_eq!(plan.files.len(), 1);
        plan.sync().unwrap();
        log.mark_flushed(plan.up_to);
        assert!(log.unflushed_files().files.is_empty());
        // Data spread over a roll: both segments are reported.
        for i in 0..20 {
            append(&mut log, 4, T0 + i);
        }
        let plan = log.unflushed_files();
        assert!(plan.files.len() >= 2);
        log.flush_all().unwrap();
        assert_eq!(log.flushed_offset(), log.log_end_offset());
    }

    #[test]
    fn log_start_offset_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t-3");
        let mut log = Log::open(&path, small_cfg(), false).unwrap();
        for i in 0..30 {
            append(&mut log, 4, T0 + i);
        }
        let bases = log.segment_base_offsets();
        log.set_log_start_offset(bases[2] + 1).unwrap();
        assert_eq!(log.log_start_offset(), bases[2] + 1);
        assert_eq!(log.segment_base_offsets()[0], bases[2]);
        assert!(!path.join(format!("{:020}.log", bases[0])).exists());
        assert!(log.read_plan(bases[2], 1, true, i64::MAX).is_err());
        assert_eq!(read_all(&log, bases[2] + 1, 1, true, i64::MAX).len(), 1);
        assert!(log.size_bytes() > 0);
        log.delete().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn failed_append_does_not_advance_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
        append(&mut log, 2, T0);
        let mut junk = batch(2, T0);
        junk.push(1); // trailing partial batch
        assert!(log.append(&mut junk, T0).is_err());
        assert!(log.append(&mut [], T0).is_err());
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(read_all(&log, 0, 1 << 20, false, i64::MAX).len(), 1);
    }
}
