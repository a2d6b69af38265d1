//! The follower's append (Kafka's `appendAsFollower`): batches whose offsets
//! and leader epochs the leader assigned are checked and written as they
//! are: no offset assignment, no recompression, no re-stamping. What a
//! follower fetched must be whole v2 batches with valid CRCs, offsets
//! increasing from at or after the log end, and leader epochs that never go
//! down; every new epoch is recorded in the leader epoch checkpoint before
//! the bytes are written.

use crate::record::{iter_batches, verify_crc, RecordError};
use crate::storage::error::StorageError;

use super::{AppendResult, Log};

#[cfg(test)]
mod tests;

impl Log {
    /// Appends replicated batches at the offsets they carry. On error
    /// nothing is written (the epoch cache is taken back to the log end).
    pub fn append_as_follower(
        &mut self,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendResult, StorageError> {
        let log_end = self.log_end_offset();
        let invalid = |offset: i64, reason: String| StorageError::InvalidRecords {
            path: Some(self.dir.clone()),
            offset,
            reason,
        };
        if records.is_empty() {
            return Err(StorageError::Record(RecordError::NoBatches));
        }
        let mut first_offset = None;
        let mut last_offset = log_end - 1;
        let mut max_timestamp = -1i64;
        let mut offset_of_max_timestamp = log_end;
        let mut epoch_floor = self.epochs.latest_epoch().unwrap_or(-1);
        let mut new_epochs = Vec::new();
        let mut it = iter_batches(records);
        for (index, (pos, h)) in (&mut it).enumerate() {
            let bytes = &records[pos..pos + h.total_size()];
            if !verify_crc(bytes) {
                return Err(StorageError::Record(RecordError::CrcMismatch {
                    batch_index: index,
                    stored: h.crc,
                    computed: crate::record::batch::compute_crc(bytes),
                }));
            }
            if h.last_offset_delta < 0 || h.base_offset <= last_offset {
                return Err(invalid(
                    h.base_offset,
                    format!(
                        "replicated batch at offset {} does not follow offset {last_offset} (log end offset {log_end})",
                        h.base_offset
                    ),
                ));
            }
            if h.partition_leader_epoch < epoch_floor {
                return Err(invalid(
                    h.base_offset,
                    format!(
                        "replicated batch has leader epoch {} below {epoch_floor}",
                        h.partition_leader_epoch
                    ),
                ));
            }
            // Only the first batch of each epoch can start a cache entry.
            if first_offset.is_none() || h.partition_leader_epoch > epoch_floor {
                new_epochs.push((h.partition_leader_epoch, h.base_offset));
            }
            epoch_floor = h.partition_leader_epoch;
            first_offset.get_or_insert(h.base_offset);
            last_offset = h.last_offset();
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
        let Some(first_offset) = first_offset else {
            return Err(StorageError::Record(RecordError::NoBatches));
        };
        // Before the bytes: the checkpoint must never miss an epoch the log has.
        for (epoch, offset) in new_epochs {
            if self.epochs.needs_assign(epoch, offset) {
                if let Err(e) = self.epochs.assign(epoch, offset) {
                    let _ = self.epochs.truncate_from_end(log_end);
                    return Err(e);
                }
            }
        }
        self.write_batches(
            records,
            &[],
            (first_offset, last_offset),
            (max_timestamp, offset_of_max_timestamp),
            now_ms,
        )
    }
}
