//! Log: one partition's local log (Kafka's UnifiedLog + LocalLog) in its
//! `<topic>-<partition>` directory. Owns the ordered LogSegments, the log
//! start offset and log end offset, append, rolling, reads, timestamp
//! look-ups and flush bookkeeping, with the lock-free-I/O split used by the
//! broker: `read_plan` and `unflushed_files` run under the caller's mutex,
//! while `ReadPlan::read` and `FlushPlan::sync` do the I/O after it is
//! released. Loading and recovery are in `log/load.rs`; removing and
//! replacing segments (log start, retention, the cleaner's swap) in
//! `log/segments.rs`.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tracing::info;

use crate::record::{iter_batches, leader_prefixes, LeaderPrefix, RecordError};

use super::config::LogConfig;
use super::error::StorageError;
use super::leader_epoch::LeaderEpochFileCache;
use super::scrubber::{ScrubJob, ScrubState};
use super::segment::LogSegment;
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
    /// First offset of each partition leader epoch (`leader-epoch-checkpoint`).
    epochs: LeaderEpochFileCache,
    /// The LogScrubber's findings: reads stop before a corrupt batch.
    scrub: Arc<ScrubState>,
    /// Tests stop a truncation after this many steps, as a crash would.
    #[cfg(test)]
    crash_after_steps: Option<usize>,
}

fn fsync_dir(dir: &Path) -> Result<(), StorageError> {
    crate::util::fs::sync_dir(dir).map_err(|e| StorageError::io(dir, "fsync directory", e))
}

impl Log {
    fn active(&self) -> &LogSegment {
        // Invariant: at least one segment.
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Appends as [`Log::append_as_leader`] without stamping a leader epoch
    /// (the batches keep the one they carry): tests and tools.
    pub fn append(&mut self, records: &[u8], now_ms: i64) -> Result<AppendResult, StorageError> {
        self.append_assigning(records, now_ms, None)
    }

    /// The leader's append (Kafka's `appendAsLeader`): whole v2 batches,
    /// already validated, get their offsets from the log end offset and
    /// `leader_epoch` as partitionLeaderEpoch, both outside the CRC-covered
    /// bytes and written in place of each batch's own (`leader_prefixes`:
    /// `records`, often the request's shared buffer, is neither changed nor
    /// copied); a new epoch is recorded in the leader epoch checkpoint
    /// before the bytes are written. Rolls if needed, writes with one
    /// positional write. On error the log end offset is unchanged and
    /// nothing becomes visible to readers.
    pub fn append_as_leader(
        &mut self,
        records: &[u8],
        now_ms: i64,
        leader_epoch: i32,
    ) -> Result<AppendResult, StorageError> {
        self.append_assigning(records, now_ms, Some(leader_epoch))
    }

    fn append_assigning(
        &mut self,
        records: &[u8],
        now_ms: i64,
        leader_epoch: Option<i32>,
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
        let (prefixes, last_offset) = leader_prefixes(records, first_offset, leader_epoch)?;
        let mut max_timestamp = -1i64;
        let mut offset_of_max_timestamp = first_offset;
        let mut it = iter_batches(records);
        // The offsets as stored: `records` keeps the producer's.
        for ((_, h), prefix) in (&mut it).zip(&prefixes) {
            if h.max_timestamp > max_timestamp {
                max_timestamp = h.max_timestamp;
                offset_of_max_timestamp = h.with_leader_prefix(prefix).last_offset();
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
        if let Some(epoch) = leader_epoch {
            if self.epochs.needs_assign(epoch, first_offset) {
                self.epochs.assign(epoch, first_offset)?;
            }
        }
        let max_ts = (max_timestamp, offset_of_max_timestamp);
        self.write_batches(
            records,
            &prefixes,
            (first_offset, last_offset),
            max_ts,
            now_ms,
        )
    }

    /// Rolls if needed and writes batches whose offsets are final (with
    /// `prefixes`, once each batch's first bytes are replaced by its prefix:
    /// `LogSegment::append_with_prefixes`). An entry the epoch cache got
    /// for them is taken back if the write fails.
    fn write_batches(
        &mut self,
        records: &[u8],
        prefixes: &[LeaderPrefix],
        (first_offset, last_offset): (i64, i64),
        (max_timestamp, offset_of_max_timestamp): (i64, i64),
        now_ms: i64,
    ) -> Result<AppendResult, StorageError> {
        let written = (|| {
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
            seg.append_with_prefixes(last_offset, records, prefixes)?;
            Ok::<_, StorageError>((seg.base_offset(), position))
        })();
        let (segment_base_offset, position) = match written {
            Ok(w) => w,
            Err(e) => {
                let end = self.log_end_offset();
                if let Err(t) = self.epochs.truncate_from_end(end) {
                    tracing::warn!(dir = %self.dir.display(), error = %t, "could not take back a leader epoch entry after a failed append");
                }
                return Err(e);
            }
        };
        Ok(AppendResult {
            first_offset,
            last_offset,
            max_timestamp,
            offset_of_max_timestamp,
            segment_base_offset,
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
        let seg = match LogSegment::create(&self.dir, new_base, &self.config, now_ms) {
            Ok(seg) => seg,
            Err(e) => {
                // A full disk fails the roll cleanly: the old segment stays
                // the active one (its indexes grown back if space allows;
                // trimmed, they count as full, so the next append retries
                // the roll) and the append is refused with the error.
                if let Err(r) = self.active_mut().make_active() {
                    tracing::debug!(dir = %self.dir.display(), error = %r, "could not regrow the indexes after a failed roll");
                }
                tracing::warn!(dir = %self.dir.display(), base_offset = new_base, error = %e, "could not roll a new log segment");
                return Err(e);
            }
        };
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
            // Never past a batch the scrubber found corrupt: whole batches
            // before it are served, a fetch inside the corrupt range fails.
            let corrupt = self.scrub.corrupt_in(seg.log_file());
            let max_position = match &corrupt {
                Some(c) if fetch_offset >= c.offset => {
                    if fetch_offset < seg.next_offset() {
                        return Err(StorageError::CorruptRecords {
                            path: c.path.clone(),
                            position: c.position,
                            offset: c.offset,
                        });
                    }
                    continue; // a compaction gap past the segment's end
                }
                Some(c) if max_offset > c.offset => c.position,
                _ => seg.position_of(max_offset)?,
            };
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

    /// What is known corrupt in this log, shared with the log cleaner so a
    /// CRC mismatch it finds fences fetches as the scrubber's would.
    pub fn scrub_state(&self) -> Arc<ScrubState> {
        Arc::clone(&self.scrub)
    }

    /// The sealed segments, oldest first, for the LogScrubber to verify.
    pub fn scrub_jobs(&self) -> Vec<ScrubJob> {
        let last = self.segments.len() - 1;
        self.segments[..last]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| ScrubJob {
                state: Arc::downgrade(&self.scrub),
                file: Arc::downgrade(s.log_file()),
                path: s.log_path().to_path_buf(),
                base_offset: s.base_offset(),
                size: s.size(),
                next_offset: s.next_offset(),
            })
            .collect()
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

    /// Kafka's recovery point as the log directory's checkpoint records it:
    /// offsets below it are on disk, flushed or in a sealed segment (a
    /// segment is fsynced before it stops being the active one). Recovery
    /// after a crash scans the active segment only from here.
    pub fn recovery_point(&self) -> i64 {
        self.flushed_offset
            .max(self.active().base_offset())
            .min(self.log_end_offset())
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

    /// The leader epoch cache (read side: OffsetForLeaderEpoch, ListOffsets).
    pub fn leader_epochs(&self) -> &LeaderEpochFileCache {
        &self.epochs
    }

    /// Records that `leader_epoch` starts at `start_offset` (Kafka's
    /// `assignEpochStartOffset`: a new leader does so at its log end).
    pub fn assign_epoch_start_offset(
        &mut self,
        leader_epoch: i32,
        start_offset: i64,
    ) -> Result<(), StorageError> {
        if self.epochs.needs_assign(leader_epoch, start_offset) {
            self.epochs.assign(leader_epoch, start_offset)?;
        }
        Ok(())
    }

    /// Kafka's `endOffsetForEpoch`: `None` when the epoch is undefined or
    /// unknown, else (epoch, end offset) per `LeaderEpochFileCache::end_offset_for`.
    pub fn end_offset_for_epoch(&self, leader_epoch: i32) -> Option<(i32, i64)> {
        let (epoch, offset) = self
            .epochs
            .end_offset_for(leader_epoch, self.log_end_offset());
        (offset != super::leader_epoch::UNDEFINED_EPOCH_OFFSET).then_some((epoch, offset))
    }
}

mod follower;
mod load;
mod segments;
#[cfg(test)]
mod tests;
mod truncate;

#[allow(dead_code)]
fn assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Log>();
    is_send::<ReadPlan>();
    is_send::<FlushPlan>();
}
