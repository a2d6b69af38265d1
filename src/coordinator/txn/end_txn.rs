//! EndTxn on the transaction coordinator: transaction version 1 (EndTxn
//! v0-4, markers at the producer's epoch) and version 2 (EndTxn v5, KIP-890
//! part 2: every end bumps the epoch, the markers carry the bumped epoch,
//! the epochs running out hand over to the next producer id), with Kafka's
//! answers to retries, as its `TransactionCoordinator.endTransaction`.

use kafka_protocol::ResponseError;

use crate::coordinator::txn::coordinator::{
    TransactionCoordinator, TxnMetadata, MAX_EPOCH, TV_0, TV_2,
};
use crate::coordinator::txn::TxnState;
use crate::util::now_ms;

impl TransactionCoordinator {
    /// EndTxn: two-phase commit or abort. Returns the producer id and epoch
    /// the client continues with (EndTxn v5's response: bumped, or a new
    /// id at epoch 0).
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        version: i16,
    ) -> Result<(i64, i16), ResponseError> {
        let entry = self.entry(transactional_id)?;
        let mut m = entry.lock().await;
        // Kafka's `transactionVersionForEndTxn`: v5+ is version 2.
        if version > 4 {
            return self.end_txn_v2(&mut m, producer_id, epoch, commit).await;
        }
        Self::check_producer(&m, producer_id, epoch, version)?;
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {}
            // A retry of an end that already happened.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                return Ok((m.producer_id, m.producer_epoch))
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            // Nothing added (Empty) is an invalid transition for commit and
            // abort alike below EndTxn v5 (Kafka's transaction version 1).
            _ => return Err(ResponseError::InvalidTxnState),
        }
        let mut next = m.transit();
        next.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        next.client_tv = TV_0;
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        self.publish(&m);
        // Once Prepare is durable the outcome is decided; if writing the
        // markers fails now, the periodic task finishes the job.
        self.complete(&mut m, commit).await?;
        Ok((m.producer_id, m.producer_epoch))
    }

    /// EndTxn v5 (transaction version 2, Kafka's `endTransaction` with
    /// `supportsEpochBump`): the Prepare record carries the bumped epoch
    /// (and, when the epochs ran out, the next producer id); the markers
    /// are written with it. A retry is recognised by its epoch: one below
    /// the current (the bump it did not hear of), or the previous producer
    /// id at the last epoch after a rotation.
    async fn end_txn_v2(
        &self,
        m: &mut TxnMetadata,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(i64, i16), ResponseError> {
        use TxnState as S;
        let retry_on_overflow =
            m.prev_producer_id == producer_id && epoch == MAX_EPOCH && m.producer_epoch == 0;
        let retry_on_epoch_bump = i32::from(m.producer_epoch) == i32::from(epoch) + 1;
        // The same epoch as the current one is the next end, not a retry.
        let valid_epoch = match m.state {
            S::Ongoing | S::Empty | S::Dead | S::PrepareEpochFence => epoch == m.producer_epoch,
            S::PrepareCommit | S::PrepareAbort => retry_on_epoch_bump,
            S::CompleteCommit | S::CompleteAbort => {
                retry_on_epoch_bump || retry_on_overflow || epoch == m.producer_epoch
            }
        };
        let is_retry = retry_on_epoch_bump || retry_on_overflow;
        if m.producer_id != producer_id && !retry_on_overflow {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        let current = (m.producer_id, m.producer_epoch);
        // (the Prepare state, whether nothing was added: an empty abort)
        let (prepare, empty) = match (m.state, commit) {
            (S::Ongoing, true) => (S::PrepareCommit, false),
            (S::Ongoing, false) => (S::PrepareAbort, false),
            (S::CompleteCommit, true) | (S::CompleteAbort, false) if is_retry => {
                return Ok(current)
            }
            // Version 2 may abort with nothing added (the client cannot
            // know whether a partition joined).
            (S::CompleteCommit | S::CompleteAbort, false) if !is_retry => (S::PrepareAbort, true),
            (S::Empty, false) => (S::PrepareAbort, true),
            (S::PrepareCommit, true) | (S::PrepareAbort, false) => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            _ => return Err(ResponseError::InvalidTxnState),
        };
        // Epochs run out: the next producer id is allocated now, logged
        // with Prepare, and takes over once the markers are written.
        let next_producer_id = if m.producer_epoch >= MAX_EPOCH {
            self.producer_ids.generate()?
        } else {
            -1
        };
        let bumped = m
            .producer_epoch
            .checked_add(1)
            .ok_or(ResponseError::ProducerFenced)?;
        let now = now_ms();
        let mut next = m.transit();
        next.state = prepare;
        next.next_producer_id = next_producer_id;
        next.last_producer_epoch = m.producer_epoch;
        next.producer_epoch = bumped;
        next.client_tv = TV_2;
        if empty {
            next.start_ms = now;
        }
        next.last_update_ms = now;
        self.persist(&next).await?;
        *m = next;
        self.publish(m);
        self.complete(m, commit).await?;
        Ok((m.producer_id, m.producer_epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use crate::broker::producer_ids::ProducerIdManager;
    use crate::broker::ReplicaManager;
    use crate::config::BrokerConfig;
    use crate::coordinator::txn::coordinator::{TV_0, TV_2};
    use crate::coordinator::txn::marker_channel::{MarkerFuture, TxnMarkerWriter, TxnMarkers};
    use crate::coordinator::txn::transaction_log::{self, TxnValue};
    use crate::coordinator::txn::TxnConfig;

    /// Records every marker request that names partitions.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(i64, i16, bool)>>);
    impl TxnMarkerWriter for Recorder {
        fn write_markers<'a>(&'a self, m: TxnMarkers<'a>) -> MarkerFuture<'a> {
            if !m.partitions.is_empty() {
                self.0.lock().unwrap_or_else(|p| p.into_inner()).push((
                    m.producer_id,
                    m.producer_epoch,
                    m.commit,
                ));
            }
            Box::pin(async { Ok(()) })
        }
    }

    impl Recorder {
        fn take(&self) -> Vec<(i64, i16, bool)> {
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
        }
    }

    /// A cluster-mode coordinator leading every `__transaction_state`
    /// partition of a temporary directory.
    async fn open(dir: &std::path::Path, markers: Arc<Recorder>) -> Arc<TransactionCoordinator> {
        let (config, _) = BrokerConfig::from_entries(vec![
            ("log.dirs".into(), dir.display().to_string()),
            ("transaction.state.log.num.partitions".into(), "1".into()),
            ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
        ])
        .unwrap();
        let config = Arc::new(config);
        let (trigger, signal) = crate::util::shutdown::channel();
        std::mem::forget(trigger);
        let replicas = ReplicaManager::open(config.clone(), false, signal).unwrap();
        replicas
            .create_topic(
                transaction_log::TXN_TOPIC,
                1,
                1,
                TransactionCoordinator::log_topic_configs(),
            )
            .unwrap();
        let c = TransactionCoordinator::for_cluster(
            TxnConfig::from_broker(&config),
            replicas,
            Arc::new(ProducerIdManager::load(dir).unwrap()),
            markers,
        );
        c.on_metadata(1, BTreeMap::from([(0, 0)]));
        for _ in 0..200 {
            if c.check_coordinator("tx").is_ok() {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the partition never loaded");
    }

    fn tp() -> Vec<(String, i32)> {
        vec![("t".to_string(), 0)]
    }

    /// The latest logged value of "tx".
    fn logged(c: &TransactionCoordinator) -> TxnValue {
        let p = c.log_partition(0).unwrap();
        let latest = TransactionCoordinator::replay_partitions(&[p]).unwrap();
        latest["tx"].clone().unwrap()
    }

    #[tokio::test]
    async fn v2_end_bumps_the_epoch_and_its_markers_carry_it() {
        let dir = tempfile::tempdir().unwrap();
        let markers = Arc::new(Recorder::default());
        let c = open(dir.path(), markers.clone()).await;
        let (pid, e0) = c.init_producer_id("tx", 60_000, None).await.unwrap();
        assert_eq!(e0, 0);
        // A partition leader adds for a Produce v12 (AddPartitionsToTxn v5).
        c.add_partitions("tx", pid, 0, &tp(), false, 5, TV_2)
            .await
            .unwrap();
        assert_eq!(logged(&c).client_transaction_version, TV_2);
        assert_eq!(c.end_txn("tx", pid, 0, true, 5).await, Ok((pid, 1)));
        assert_eq!(markers.take(), vec![(pid, 1, true)]);
        let v = logged(&c);
        assert_eq!((v.state, v.producer_epoch), (TxnState::CompleteCommit, 1));
        // A retry with the epoch before the bump: answered, nothing again.
        assert_eq!(c.end_txn("tx", pid, 0, true, 5).await, Ok((pid, 1)));
        assert_eq!(
            c.end_txn("tx", pid, 0, false, 5).await,
            Err(ResponseError::InvalidTxnState)
        );
        assert!(markers.take().is_empty());
        // The current epoch committing again is the next end: nothing open.
        assert_eq!(
            c.end_txn("tx", pid, 1, true, 5).await,
            Err(ResponseError::InvalidTxnState)
        );
        // An abort with nothing added is allowed at version 2 and bumps.
        assert_eq!(c.end_txn("tx", pid, 1, false, 5).await, Ok((pid, 2)));
        assert!(markers.take().is_empty(), "no partition, no marker");
        // The old epochs are fenced everywhere.
        assert_eq!(
            c.add_partitions("tx", pid, 1, &tp(), false, 5, TV_2).await,
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            c.end_txn("tx", pid, 0, false, 5).await,
            Err(ResponseError::ProducerFenced)
        );
        assert_eq!(
            c.end_txn("tx", pid + 1, 2, false, 5).await,
            Err(ResponseError::InvalidProducerIdMapping)
        );
        // Transaction version 1 on the same id: markers at the epoch used.
        c.add_partitions("tx", pid, 2, &tp(), false, 3, TV_0)
            .await
            .unwrap();
        assert_eq!(c.end_txn("tx", pid, 2, false, 4).await, Ok((pid, 2)));
        assert_eq!(markers.take(), vec![(pid, 2, false)]);
        assert_eq!(logged(&c).client_transaction_version, TV_0);
    }

    #[tokio::test]
    async fn v2_end_that_uses_up_the_epochs_rolls_to_the_next_producer_id() {
        let dir = tempfile::tempdir().unwrap();
        let markers = Arc::new(Recorder::default());
        let c = open(dir.path(), markers.clone()).await;
        let (pid, _) = c.init_producer_id("tx", 60_000, None).await.unwrap();
        // As if 32766 transactions had ended: the log brings the state.
        let mut v = logged(&c);
        v.producer_epoch = MAX_EPOCH;
        v.state = TxnState::Ongoing;
        v.partitions = tp().into_iter().collect();
        c.install(HashMap::from([("tx".to_string(), Some(v))]));
        let (next, epoch) = c.end_txn("tx", pid, MAX_EPOCH, true, 5).await.unwrap();
        assert_ne!(next, pid);
        assert_eq!(epoch, 0);
        // The markers fence the old id with the one epoch never handed out.
        assert_eq!(markers.take(), vec![(pid, i16::MAX, true)]);
        let v = logged(&c);
        assert_eq!(
            (
                v.producer_id,
                v.previous_producer_id,
                v.next_producer_id,
                v.producer_epoch
            ),
            (next, pid, -1, 0)
        );
        // A retry from the old id at its last epoch gets the new id.
        assert_eq!(
            c.end_txn("tx", pid, MAX_EPOCH, true, 5).await,
            Ok((next, 0))
        );
        // So does an InitProducerId that presents the old id (KIP-360).
        assert_eq!(
            c.init_producer_id("tx", 60_000, Some((pid, MAX_EPOCH)))
                .await,
            Ok((next, 0))
        );
        assert_eq!(
            c.init_producer_id("tx", 60_000, Some((pid, 3))).await,
            Err(ResponseError::ProducerFenced)
        );
        // The old id no longer maps to the transactional id.
        assert_eq!(
            c.verify_partitions("tx", pid, MAX_EPOCH, &tp()),
            Err(ResponseError::InvalidProducerIdMapping)
        );
    }

    #[tokio::test]
    async fn a_loaded_v2_prepare_completes_under_the_next_producer_id() {
        let dir = tempfile::tempdir().unwrap();
        let markers = Arc::new(Recorder::default());
        let c = open(dir.path(), markers.clone()).await;
        let (pid, _) = c.init_producer_id("tx", 60_000, None).await.unwrap();
        let mut v = logged(&c);
        v.state = TxnState::PrepareAbort;
        v.producer_epoch = i16::MAX;
        v.next_producer_id = pid + 100;
        v.client_transaction_version = TV_2;
        v.partitions = tp().into_iter().collect();
        // Through the record encoding, as a restart reads it.
        let bytes = transaction_log::encode_value(&v).unwrap();
        let decoded = transaction_log::decode_value(&bytes).unwrap();
        assert_eq!(decoded, v);
        c.install(HashMap::from([("tx".to_string(), Some(decoded))]));
        let entry = c.entry("tx").unwrap();
        let mut m = entry.lock().await;
        c.complete(&mut m, false).await.unwrap();
        assert_eq!(markers.take(), vec![(pid, i16::MAX, false)]);
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.next_producer_id),
            (pid + 100, 0, -1)
        );
        assert_eq!(logged(&c).previous_producer_id, pid);
    }
}
