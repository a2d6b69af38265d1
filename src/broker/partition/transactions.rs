//! The partition's side of transactions: the COMMIT/ABORT markers the
//! transaction coordinator writes, whether a producer has a transaction
//! open here, and the start of KIP-890 verification before a
//! transaction's first batch lands here (the guard the append checks).

use crate::record::batch::BatchHeader;
use crate::record::builder::BatchBuilder;
use crate::record::control::EndTransactionMarker;
use crate::storage::producer_state::{ProducerError, VerificationGuard};
use crate::storage::StorageError;
use crate::util::now_ms;

use super::{Partition, PartitionError};

impl Partition {
    /// Begins KIP-890 verification of a producer's transaction before its
    /// batch is appended here (Kafka's `maybeStartTransactionVerification`):
    /// `Sentinel` when the transaction is already open here at this epoch
    /// (nothing to verify), else the guard the append must present once
    /// the coordinator confirmed the partition is in the transaction. The
    /// verification notes the batch's first `sequence` (later batches of
    /// the producer above the lowest one noted are held back until a batch
    /// lands) and, when it begins, whether the request is of transaction
    /// version 2 (`supports_epoch_bump`: Produce v12+).
    pub fn maybe_start_transaction_verification(
        &self,
        producer_id: i64,
        sequence: i32,
        epoch: i16,
        supports_epoch_bump: bool,
    ) -> Result<VerificationGuard, PartitionError> {
        let mut guard = self.lock();
        let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
        if !self.is_leader() {
            return Err(PartitionError::NotLeader);
        }
        if let Some(current) = plog
            .producers
            .producers()
            .find(|e| e.producer_id == producer_id)
            .map(|e| e.epoch)
            .filter(|current| epoch < *current)
        {
            return Err(PartitionError::Producer(
                ProducerError::InvalidProducerEpoch {
                    producer_id,
                    epoch,
                    current,
                },
            ));
        }
        if plog.producers.has_ongoing_txn(producer_id, epoch) {
            return Ok(VerificationGuard::Sentinel);
        }
        plog.producers
            .maybe_create_verification_state(
                producer_id,
                sequence,
                epoch,
                supports_epoch_bump,
                now_ms(),
            )
            .map(VerificationGuard::Guard)
            .ok_or(PartitionError::TooManyVerifications)
    }
    /// Writes a transaction marker (COMMIT or ABORT control batch) for a
    /// producer, as the transaction coordinator's WriteTxnMarkers does,
    /// once its epoch passes the check of its transaction version
    /// (INVALID_PRODUCER_EPOCH or TRANSACTION_COORDINATOR_FENCED otherwise: `check_marker`). Returns the offset after the marker (the marker is durable, and the
    /// transaction's outcome settled on this partition, once the high
    /// watermark reaches it) and the leadership it was written in (see
    /// [`Partition::wait_for_ack`]).
    pub fn append_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        transaction_version: i8,
    ) -> Result<(i64, u64), PartitionError> {
        let now = now_ms();
        let marker = EndTransactionMarker::new(commit, coordinator_epoch);
        let batch = BatchBuilder::new(now)
            .producer(producer_id, producer_epoch, -1)
            .transactional(true)
            .control(true)
            .push(Some(&marker.key()), Some(&marker.value()), &[], now)
            .build();
        let mut guard = self.lock();
        let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
        self.check_leader_appendable()?;
        plog.producers
            .check_marker(
                producer_id,
                producer_epoch,
                coordinator_epoch,
                transaction_version,
            )
            .map_err(PartitionError::Producer)?;
        let active_before = plog.log.active_segment_base_offset();
        let result = plog
            .log
            .append_as_leader(&batch, now, self.leader_epoch())
            .map_err(PartitionError::Storage)?;
        if plog.log.active_segment_base_offset() != active_before {
            if let Err(e) = plog.snapshot(result.first_offset) {
                tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "producer state snapshot failed");
            }
        }
        // The marker as stored: its offset is assigned as it is written,
        // not in `batch`.
        let mut header = BatchHeader::parse(&batch)
            .map_err(|e| PartitionError::Storage(StorageError::Record(e)))?;
        header.base_offset = result.first_offset;
        if let Some(aborted) = plog
            .producers
            .apply_control(&header, commit, coordinator_epoch)
        {
            plog.txn_index
                .append(aborted)
                .map_err(PartitionError::Storage)?;
        }
        let end = plog.log.log_end_offset();
        let first_unstable = self.first_unstable_under_lock(&plog.producers);
        let leadership = self.leadership();
        drop(guard);
        self.publish_first_unstable(first_unstable);
        self.after_append(end, 1);
        Ok((end, leadership))
    }

    /// Whether `producer_id` has a transaction open on this partition.
    pub fn has_ongoing_txn(&self, producer_id: i64) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|p| p.producers.ongoing_txn(producer_id).is_some())
    }
}
