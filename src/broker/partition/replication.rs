//! The partition's replication primitives (Kafka's `Partition` and
//! `UnifiedLog` entry points the replica fetcher and the controller's
//! decisions call): the leader epoch and the fencing checks on a client's
//! current leader epoch, OffsetForLeaderEpoch, becoming leader or follower,
//! truncation, the follower's append and high watermark, and the flush a
//! fetcher runs before reporting its log end offset.
//!
//! The fetcher's contract in durable mode (`flush.messages` = 1): after
//! `append_as_follower`, call [`Partition::flush_for_fetch`] and send, as
//! the next Fetch's fetch_offset, no more than the offset it returns; the
//! leader counts a follower toward the high watermark only up to that
//! fetch_offset, so an acknowledged `acks=all` write is on every in-sync
//! replica's disk. In page-cache mode the fetcher may report the log end
//! offset at once, as Kafka's does.

use std::sync::atomic::Ordering;

use kafka_protocol::ResponseError;

use crate::broker::log_dir::lower_recovery_point;
use crate::record::control::EndTransactionMarker;
use crate::record::iter_batches;
use crate::storage::producer_state::ProducerStateManager;
use crate::storage::txn_index::TransactionIndex;
use crate::storage::{AppendResult, StorageError};
use crate::util::now_ms;

use super::{Partition, PartitionError, PartitionLog};

/// Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH`: a request field meaning
/// "do not check the leader epoch".
pub const NO_LEADER_EPOCH: i32 = -1;

impl PartitionLog {
    /// Rebuilds what follows the log after a truncation, as Kafka's
    /// `rebuildProducerState` does: producer state from the newest snapshot
    /// at or below the new log end (later snapshots are deleted) plus a
    /// replay, and the transaction index cut to the log.
    fn rebuild_after_truncation(
        &mut self,
        dir: &std::path::Path,
        expiration_ms: i64,
    ) -> Result<(), StorageError> {
        let start = self.log.log_start_offset();
        let end = self.log.log_end_offset();
        self.txn_index = TransactionIndex::open(dir, start, end)?;
        self.producers = ProducerStateManager::load(dir, &self.log, expiration_ms, now_ms())?;
        for aborted in self.producers.take_replayed_aborts() {
            self.txn_index.append(aborted)?;
        }
        Ok(())
    }
}

impl Partition {
    /// The partition leader epoch this replica knows (stamped on every batch
    /// it appends as leader). A single node is leader at epoch 0, as Kafka's
    /// first election makes it.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Acquire)
    }

    /// Kafka's `checkCurrentLeaderEpoch`: a request's current leader epoch
    /// older than ours is fenced, a newer one unknown to us; -1 skips the check.
    pub fn check_leader_epoch(&self, current_leader_epoch: i32) -> Result<(), ResponseError> {
        if current_leader_epoch == NO_LEADER_EPOCH {
            return Ok(());
        }
        let ours = self.leader_epoch();
        if ours > current_leader_epoch {
            Err(ResponseError::FencedLeaderEpoch)
        } else if ours < current_leader_epoch {
            Err(ResponseError::UnknownLeaderEpoch)
        } else {
            Ok(())
        }
    }

    /// Kafka's `Partition.lastOffsetForLeaderEpoch`: the current epoch is
    /// checked first, then (for anyone but a debugging client) leadership;
    /// `Ok(None)` when the epoch is undefined or unknown (answered as -1, -1).
    pub fn last_offset_for_leader_epoch(
        &self,
        current_leader_epoch: i32,
        leader_epoch: i32,
        fetch_only_from_leader: bool,
    ) -> Result<Option<(i32, i64)>, ResponseError> {
        self.check_leader_epoch(current_leader_epoch)?;
        if fetch_only_from_leader && !self.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        let guard = self.lock();
        let plog = guard.as_ref().ok_or(ResponseError::NotLeaderOrFollower)?;
        Ok(plog.log.end_offset_for_epoch(leader_epoch))
    }

    /// Kafka's `Partition.readRecords` check of a Fetch v12+
    /// `last_fetched_epoch` (`None`: not sent): `Some((epoch, end_offset))`
    /// when the fetcher's log diverges from this one (its epoch ends here
    /// before its fetch offset, or this log never had it), answered with no
    /// records; OFFSET_OUT_OF_RANGE when the epoch's end is unknown or the
    /// fetch offset is below the log start.
    pub fn diverging_epoch(
        &self,
        current_leader_epoch: i32,
        last_fetched_epoch: Option<i32>,
        fetch_offset: i64,
    ) -> Result<Option<(i32, i64)>, ResponseError> {
        let Some(fetched) = last_fetched_epoch else {
            return Ok(None);
        };
        let (epoch, end) = self
            .last_offset_for_leader_epoch(current_leader_epoch, fetched, false)?
            .filter(|(e, _)| *e >= 0)
            .ok_or(ResponseError::OffsetOutOfRange)?;
        if fetch_offset < self.state().log_start_offset {
            return Err(ResponseError::OffsetOutOfRange);
        }
        Ok((epoch < fetched || end < fetch_offset).then_some((epoch, end)))
    }

    /// The epoch the record at `offset` was written in (ListOffsets).
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let guard = self.lock();
        guard
            .as_ref()
            .and_then(|p| p.log.leader_epochs().epoch_for_offset(offset))
    }

    /// Kafka's `makeLeader` for the log: from now on appends are stamped
    /// with `leader_epoch`, which starts at the log end offset (recorded in
    /// the leader epoch checkpoint at once, as Kafka's
    /// `maybeAssignEpochStartOffset`). Returns false for a stale epoch.
    pub fn make_leader(&self, leader_epoch: i32) -> Result<bool, PartitionError> {
        if leader_epoch < self.leader_epoch() {
            return Ok(false);
        }
        {
            let mut guard = self.lock();
            let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
            let end = plog.log.log_end_offset();
            plog.log
                .assign_epoch_start_offset(leader_epoch, end)
                .map_err(PartitionError::Storage)?;
            self.leader_epoch.store(leader_epoch, Ordering::Release);
            self.is_leader.store(true, Ordering::Release);
        }
        Ok(true)
    }

    /// Kafka's `makeFollower`: appends from clients are refused
    /// (NOT_LEADER_OR_FOLLOWER) and the high watermark only moves as the
    /// leader reports it. Returns false for a stale epoch. The caller
    /// (the fetcher) truncates by OffsetForLeaderEpoch before fetching.
    ///
    /// Under the log lock, as Kafka's `makeFollower` holds
    /// `leaderIsrUpdateLock`: an append in progress finishes stamped with
    /// the old epoch, and no later one passes the leadership check.
    pub fn make_follower(&self, leader_id: i32, leader_epoch: i32) -> bool {
        if leader_epoch < self.leader_epoch() {
            return false;
        }
        let _appends = self.lock();
        self.leader_epoch.store(leader_epoch, Ordering::Release);
        self.leader_id.store(leader_id, Ordering::Release);
        self.stop_leading_under_lock();
        true
    }

    /// Ends this replica's leadership; the caller holds the log lock.
    pub(super) fn stop_leading_under_lock(&self) {
        if self.is_leader.swap(false, Ordering::AcqRel) {
            self.leadership.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The number of times this replica stopped leading: an append made
    /// while it leads records it, and [`Partition::wait_for_ack`] refuses
    /// the acknowledgement once it changed.
    pub fn leadership(&self) -> u64 {
        self.leadership.load(Ordering::Acquire)
    }

    /// The leader this follower fetches from (-1 while leader itself).
    pub fn leader_id(&self) -> i32 {
        if self.is_leader() {
            -1
        } else {
            self.leader_id.load(Ordering::Acquire)
        }
    }

    /// Cuts the log to `offset` (Kafka's `truncateTo`), rebuilds producer
    /// state and the transaction index, and clamps the high watermark, the
    /// first unstable offset and the log start to the new log. Returns
    /// whether anything was removed.
    pub fn truncate_to(&self, offset: i64) -> Result<bool, PartitionError> {
        self.truncate_with(|log| log.truncate_to(offset))
    }

    /// Empties the log and restarts it at `offset` (Kafka's
    /// `truncateFullyAndStartAt`): a follower far behind the leader's log start.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), PartitionError> {
        self.truncate_with(|log| log.truncate_fully_and_start_at(offset).map(|_| true))
            .map(|_| ())
    }

    fn truncate_with(
        &self,
        cut: impl FnOnce(&mut crate::storage::Log) -> Result<bool, StorageError>,
    ) -> Result<bool, PartitionError> {
        let expiration_ms = self.settings().producer_id_expiration_ms;
        let mut guard = self.lock();
        let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
        if self.state.borrow().failed {
            return Err(PartitionError::Failed);
        }
        let cut = cut(&mut plog.log);
        // Whatever the cut did, producer state must match the log now on disk.
        let rebuilt = plog.rebuild_after_truncation(&self.dir, expiration_ms);
        let truncated = cut.map_err(PartitionError::Storage)?;
        rebuilt.map_err(PartitionError::Storage)?;
        let end = plog.log.log_end_offset();
        let start = plog.log.log_start_offset();
        let first_unstable = self.first_unstable_under_lock(&plog.producers);
        drop(guard);
        if truncated {
            if let Some(log_dir) = self.dir.parent() {
                lower_recovery_point(log_dir, &self.topic, self.index, end).map_err(|e| {
                    PartitionError::Storage(StorageError::io(
                        log_dir,
                        "lower the recovery point checkpoint",
                        e,
                    ))
                })?;
            }
        }
        self.state.send_if_modified(|s| {
            let before = *s;
            s.high_watermark = s.high_watermark.min(end).max(start.min(end));
            s.log_start_offset = start;
            if first_unstable.1 > s.first_unstable_seq {
                (s.first_unstable_offset, s.first_unstable_seq) = first_unstable;
            }
            *s != before
        });
        Ok(truncated)
    }

    /// The follower's append (Kafka's `appendRecordsToFollowerOrFutureReplica`):
    /// the leader's batches at their own offsets and epochs (see
    /// `Log::append_as_follower` for what is checked), producer state and
    /// the transaction index updated from them with no sequence checks (the
    /// leader made them). The high watermark does not move here (see
    /// [`Partition::update_follower_high_watermark`]); the flusher is woken.
    pub fn append_as_follower(&self, records: &[u8]) -> Result<AppendResult, PartitionError> {
        let now = now_ms();
        let mut guard = self.lock();
        let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
        if self.state.borrow().failed {
            return Err(PartitionError::Failed);
        }
        let active_before = plog.log.active_segment_base_offset();
        let result = plog
            .log
            .append_as_follower(records, now)
            .map_err(|e| self.storage_failure(e, "appending as follower to"))?;
        if plog.log.active_segment_base_offset() != active_before {
            if let Err(e) = plog.snapshot(result.first_offset) {
                tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "producer state snapshot failed");
            }
        }
        let mut messages = 0i64;
        for (pos, h) in iter_batches(records) {
            messages += i64::from(h.last_offset_delta) + 1;
            if h.producer_id < 0 {
                continue;
            }
            if h.is_control() {
                match EndTransactionMarker::from_batch(&records[pos..pos + h.total_size()]) {
                    Ok(m) => {
                        if let Some(aborted) =
                            plog.producers
                                .apply_control(&h, m.commit, m.coordinator_epoch)
                        {
                            plog.txn_index
                                .append(aborted)
                                .map_err(PartitionError::Storage)?;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, partition = self.index, offset = h.base_offset, error = %e, "replicated control batch holds no transaction marker");
                    }
                }
            } else {
                plog.producers.apply(&h);
            }
        }
        plog.producers.maybe_remove_expired(now);
        let first_unstable = self.first_unstable_under_lock(&plog.producers);
        drop(guard);
        self.publish_first_unstable(first_unstable);
        let unflushed = self
            .unflushed_messages
            .fetch_add(messages, Ordering::AcqRel)
            + messages;
        let settings = self.settings();
        if settings.durable || unflushed >= settings.flush_messages {
            self.flush_wanted.notify_one();
        }
        self.metrics.appended(records.len(), messages);
        Ok(result)
    }

    /// A follower takes the leader's high watermark from each fetch
    /// response, never beyond its own log end (Kafka's
    /// `updateHighWatermark(min(leaderHW, LEO))`); it never moves back.
    pub fn update_follower_high_watermark(&self, leader_high_watermark: i64) {
        let Some(end) = self.log_end_offset() else {
            return;
        };
        let hw = leader_high_watermark.min(end);
        self.state.send_if_modified(|s| {
            let moved = s.high_watermark < hw;
            s.high_watermark = s.high_watermark.max(hw);
            moved
        });
    }

    /// Fsyncs everything appended so far and returns the offset below
    /// which the log is durable: in durable mode, the most a follower may
    /// report to its leader as its fetch offset.
    pub async fn flush_for_fetch(&self) -> Result<i64, PartitionError> {
        match self.flush_once().await {
            Ok(true) => {}
            Ok(false) => return Err(PartitionError::Closed),
            Err(e) => {
                self.state.send_modify(|s| s.failed = true);
                return Err(self.storage_failure(e, "flushing"));
            }
        }
        let guard = self.lock();
        let plog = guard.as_ref().ok_or(PartitionError::Closed)?;
        Ok(plog.log.flushed_offset())
    }
}
