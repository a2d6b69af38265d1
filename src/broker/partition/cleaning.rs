//! What the log cleaner takes from and gives back to a partition: a
//! brief view of its segments under the lock, and the swap of a cleaned
//! segment.

use std::path::PathBuf;

use crate::storage::{LogConfig, StorageError};
use crate::util::now_ms;

use super::Partition;

impl Partition {
    /// What the log cleaner needs, taken briefly under the lock: the
    /// non-active segments, offsets bounding the cleanable section, and the
    /// last data offset of each producer still tracked.
    pub fn cleaner_view(&self) -> Option<CleanerView> {
        let guard = self.lock();
        let plog = guard.as_ref()?;
        let state = *self.state.borrow();
        Some(CleanerView {
            segments: plog.log.cleaner_segments(),
            active_base_offset: plog.log.active_segment_base_offset(),
            log_start_offset: plog.log.log_start_offset(),
            log_end_offset: plog.log.log_end_offset(),
            high_watermark: state.high_watermark,
            first_unstable_offset: plog.producers.first_unstable_offset(),
            producer_last_offsets: plog
                .producers
                .producers()
                .filter_map(|p| p.batches.back().map(|b| (p.producer_id, b.last_offset)))
                .collect(),
            config: plog.log.config().clone(),
            scrub: plog.log.scrub_state(),
        })
    }

    /// Swaps a cleaned segment in (see `Log::replace_with_cleaned`); the lock
    /// is held only for the renames and the new segment's index load.
    pub fn install_cleaned(
        &self,
        replaced: &[(i64, u64)],
    ) -> Result<Option<Vec<PathBuf>>, StorageError> {
        let mut guard = self.lock();
        let Some(plog) = guard.as_mut() else {
            return Ok(None);
        };
        if self.state.borrow().failed {
            return Ok(None);
        }
        plog.log.replace_with_cleaned(replaced, now_ms())
    }
}

/// See [`Partition::cleaner_view`].
pub struct CleanerView {
    pub segments: Vec<crate::storage::swap::SegmentSummary>,
    pub active_base_offset: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub first_unstable_offset: Option<i64>,
    pub producer_last_offsets: std::collections::HashMap<i64, i64>,
    pub config: LogConfig,
    pub scrub: std::sync::Arc<crate::storage::scrubber::ScrubState>,
}
