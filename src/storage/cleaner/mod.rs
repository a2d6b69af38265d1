//! The log cleaner: Kafka's `Cleaner` (log compaction) for one partition's
//! non-active segments. Files: the offset map (`offset_map`), the I/O
//! throttle (`throttler`), what each batch keeps (`filter`), the
//! cleaned-segment writer (`writer`) and the round itself (`round`); the
//! crash-safe swap it ends with is [`crate::storage::swap`].
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
//! Every batch read, in both passes, has its CRC-32C verified first. A
//! mismatch ends the round before anything is swapped (a cleaned copy must
//! never re-encode or re-checksum corrupt bytes as if they were valid), is
//! reported to the log's [`ScrubState`] (fetches stop before the batch, as
//! for a corruption the LogScrubber finds), and the caller marks the
//! partition uncleanable. Kafka's cleaner checks no CRC (its `filterTo`
//! copies a fully retained batch as is and re-checksums a rewritten one);
//! kastle is stricter here so corruption is never laundered.
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
//! then strips `.swap`. [`crate::storage::swap::complete_interrupted_swaps`] finishes or discards
//! an interrupted swap at the next open, so either the old or the new
//! segments survive a crash, never neither.
//!
//! All reads and writes go through a [`Throttler`] (token bucket at
//! `log.cleaner.io.max.bytes.per.second`) and the whole round runs on a
//! blocking thread, so compaction cannot starve produce and fetch.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::error::StorageError;
use super::scrubber::ScrubState;
use super::swap::SegmentSummary;

mod filter;
mod offset_map;
mod round;
mod throttler;
mod writer;

#[cfg(test)]
mod tests;

pub use offset_map::OffsetMap;
pub use round::clean;
pub use throttler::Throttler;

/// Why a cleaning round stopped.
#[derive(Debug)]
pub enum CleanError {
    /// Shutdown, or the log changed under the cleaner (deleted, retention
    /// removed a segment being cleaned): nothing was swapped for the group
    /// in progress and the checkpoint must not move.
    Aborted,
    /// I/O, or records that are malformed or fail their CRC check (Kafka's
    /// `CorruptRecordException`): nothing was swapped for the group in
    /// progress. The caller marks the partition uncleanable, or for an I/O
    /// error takes the log directory offline.
    Storage(StorageError),
}

impl CleanError {
    /// The I/O error behind it, if it is one (Kafka's `IOException` in
    /// `cleanLog`); `None` for bad data and aborts.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            CleanError::Storage(StorageError::Io { source, .. }) => Some(source),
            _ => None,
        }
    }
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

/// Everything one cleaning round needs.
pub struct CleanTask {
    pub dir: PathBuf,
    /// Every non-active segment, oldest first.
    pub segments: Vec<SegmentSummary>,
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
    /// The log's record of corrupt batches: a batch failing its CRC check
    /// is reported there, so fetches stop before it.
    pub scrub: Arc<ScrubState>,
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
