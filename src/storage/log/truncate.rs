//! Truncation (Kafka's `UnifiedLog.truncateTo` and `truncateFullyAndStartAt`):
//! a follower cuts its log back to what the leader's epochs prove, or starts
//! over at the leader's log start. Every step leaves a log that loads as a
//! consistent one after a crash (see the order below and `log/tests_truncate.rs`):
//! whole segments go newest first, so what remains is always a prefix; the
//! segment holding the cut is cut and fsynced, and recovery rescans it as the
//! active segment; the leader epoch checkpoint is rewritten last, and loading
//! cuts any entry past the log end, so it is never behind the log.

use std::sync::Arc;

use tracing::info;

use crate::storage::error::StorageError;
use crate::storage::segment::LogSegment;
use crate::util::now_ms;

use super::{fsync_dir, Log};

#[cfg(test)]
mod tests;

impl Log {
    /// One step of a truncation is done; tests stop there as a crash would.
    #[inline]
    fn crash_point(&mut self) -> Result<(), StorageError> {
        #[cfg(test)]
        if let Some(n) = self.crash_after_steps.as_mut() {
            if *n == 0 {
                return Err(StorageError::InvalidConfig("simulated crash".into()));
            }
            *n -= 1;
        }
        Ok(())
    }

    /// Tests: make the next truncation stop after `steps` steps.
    #[cfg(test)]
    pub(crate) fn crash_after(&mut self, steps: usize) {
        self.crash_after_steps = Some(steps);
    }

    /// Removes every record at or above `target` (the batch holding it goes
    /// whole, so the log end may land below `target`). Returns false, with
    /// only the epoch cache cut to the log end, when `target` is at or past
    /// the log end (Kafka: a leader may have assigned an epoch it never
    /// wrote under). A target below the first segment empties the log and
    /// restarts it there. The log start offset moves down to `target` if
    /// above it. Producer state, the transaction index and the high
    /// watermark are the partition's to rebuild and clamp.
    pub fn truncate_to(&mut self, target: i64) -> Result<bool, StorageError> {
        if target < 0 {
            return Err(StorageError::InvalidRecords {
                path: Some(self.dir.clone()),
                offset: target,
                reason: "cannot truncate to a negative offset".into(),
            });
        }
        let end = self.log_end_offset();
        if target >= end {
            self.epochs.truncate_from_end(end)?;
            return Ok(false);
        }
        if self.segments[0].base_offset() > target {
            self.truncate_fully_and_start_at(target)?;
            return Ok(true);
        }
        info!(dir = %self.dir.display(), target, log_end_offset = end, "truncating log");
        self.cut_segments_to(target)?;
        self.epochs.truncate_from_end(target)?;
        self.log_start_offset = self.log_start_offset.min(target);
        self.flushed_offset = self.flushed_offset.min(self.log_end_offset());
        Ok(true)
    }

    /// Deletes the segments above `target`, newest first, then cuts the
    /// one holding `target` and makes it the active segment (Kafka's
    /// `LocalLog.truncateTo`: a segment starting at `target` stays, empty).
    /// Needs a segment starting at or below `target`.
    fn cut_segments_to(&mut self, target: i64) -> Result<(), StorageError> {
        let mut removed_any = false;
        while self.segments.len() > 1 && self.active().base_offset() > target {
            if let Some(seg) = self.segments.pop() {
                Self::remove_segment_files(seg)?;
                removed_any = true;
            }
            self.crash_point()?;
        }
        if removed_any {
            fsync_dir(&self.dir)?;
        }
        let active = self.active_mut();
        active.truncate_to(target)?;
        active.make_active()?;
        // truncate_to rescanned (and CRC-checked) what is left of it.
        let file = Arc::clone(self.active().log_file());
        self.scrub.forget(&file);
        self.crash_point()
    }

    /// Deletes everything and restarts the log empty at `new_offset`, which
    /// becomes the log start offset (Kafka's `truncateFullyAndStartAt`).
    /// The epoch cache is cleared. Crash-safe order: cut the log below
    /// `new_offset` (a prefix remains), create the new segment (a log with
    /// a gap up to it), then delete the older segments oldest first (a
    /// suffix remains). Never is the directory without a segment at or
    /// past the old data, so a crash cannot restart the log at offset 0.
    pub fn truncate_fully_and_start_at(&mut self, new_offset: i64) -> Result<(), StorageError> {
        if new_offset < 0 {
            return Err(StorageError::InvalidRecords {
                path: Some(self.dir.clone()),
                offset: new_offset,
                reason: "cannot start a log at a negative offset".into(),
            });
        }
        info!(dir = %self.dir.display(), new_offset, "truncating the whole log");
        let first_base = self.segments[0].base_offset();
        if new_offset < self.log_end_offset() && new_offset >= first_base {
            self.cut_segments_to(new_offset)?;
        }
        let reuse = self.active().is_empty() && self.active().base_offset() == new_offset;
        if !reuse {
            let seg = LogSegment::create(&self.dir, new_offset, &self.config, now_ms())?;
            // The sealed segments stay below it unless it starts before them.
            let pos = self
                .segments
                .partition_point(|s| s.base_offset() < new_offset);
            if pos == self.segments.len() {
                self.active_mut().on_become_inactive()?;
            }
            self.segments.insert(pos, seg);
            fsync_dir(&self.dir)?;
            self.crash_point()?;
        }
        // Older segments oldest first (a suffix remains), then any newer
        // ones newest first (a prefix remains).
        while self.segments[0].base_offset() < new_offset {
            let seg = self.segments.remove(0);
            Self::remove_segment_files(seg)?;
            self.crash_point()?;
        }
        while self.segments.len() > 1 {
            if let Some(seg) = self.segments.pop() {
                Self::remove_segment_files(seg)?;
            }
            self.crash_point()?;
        }
        fsync_dir(&self.dir)?;
        self.active_mut().make_active()?;
        self.epochs.clear()?;
        self.log_start_offset = new_offset;
        self.flushed_offset = new_offset;
        Ok(())
    }
}
