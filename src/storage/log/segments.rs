//! Removing and replacing a log's segments: moving the log start offset
//! (DeleteRecords, checkpoints), retention's deletion of the oldest
//! segments, and installing a cleaned segment through the swap protocol of
//! [`crate::storage::swap`]. Removed files are renamed `.deleted` for the
//! caller to delete after `file.delete.delay.ms`.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::info;

use crate::storage::error::StorageError;
use crate::storage::retention::{deletable_segment_count, RetentionPolicy, SegmentInfo};
use crate::storage::segment::LogSegment;
use crate::storage::swap::{self, SegmentSummary, DELETED_SUFFIX};

use super::{fsync_dir, Log};

impl Log {
    /// Sets the log start offset (from the caller's checkpoint, or
    /// DeleteRecords/retention). Never moves below the first segment's base.
    /// Moving past the log end offset empties the log and restarts it there,
    /// like Kafka's truncateFullyAndStartAt. Segments wholly below the new
    /// start are deleted.
    pub fn set_log_start_offset(&mut self, offset: i64) -> Result<(), StorageError> {
        let first_base = self.segments[0].base_offset();
        let offset = offset.max(first_base);
        if offset > self.log_end_offset() {
            return self.truncate_fully_and_start_at(offset);
        }
        // Keep the segment containing `offset` and everything after it.
        let keep_from = self.segment_index_for(offset);
        if keep_from > 0 {
            let removed: Vec<LogSegment> = self.segments.drain(..keep_from).collect();
            for seg in removed {
                Self::remove_segment_files(seg)?;
            }
            fsync_dir(&self.dir)?;
        }
        self.log_start_offset = offset;
        self.epochs.truncate_from_start(offset)?;
        Ok(())
    }

    pub(super) fn remove_segment_files(seg: LogSegment) -> Result<(), StorageError> {
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
        self.epochs.truncate_from_start(self.log_start_offset)?;
        let removed: Vec<LogSegment> = self.segments.drain(..n).collect();
        let mut renamed = Vec::new();
        for seg in removed {
            renamed.extend(swap::rename_segment_files(&seg, DELETED_SUFFIX)?);
            info!(dir = %self.dir.display(), base_offset = seg.base_offset(), "deleting segment (retention)");
        }
        fsync_dir(&self.dir)?;
        Ok(renamed)
    }

    /// The cleaner's view of the non-active segments, oldest first; the
    /// shared file handles let it read them without the lock.
    pub fn cleaner_segments(&self) -> Vec<SegmentSummary> {
        let last = self.segments.len() - 1;
        self.segments[..last]
            .iter()
            .map(|s| SegmentSummary {
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
    /// `.swap` → final names; see `swap::complete_interrupted_swaps`
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
        let deleted = swap::swap_in_cleaned(&self.dir, base, &self.segments[start..end])?;
        let seg = LogSegment::open(&self.dir, base, &self.config, now_ms)?;
        self.segments.splice(start..end, [seg]);
        info!(dir = %self.dir.display(), base_offset = base, replaced = replaced.len(), "swapped in cleaned segment");
        Ok(Some(deleted))
    }
}
