//! A cluster broker's transaction coordinator follows the leadership of
//! `__transaction_state` (Kafka's `TransactionCoordinator.onElection` /
//! `onResignation`, called by the `BrokerMetadataPublisher`): it
//! coordinates exactly the transactional ids of the partitions it leads.
//! On election a partition loads (its ids answer
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile) once the new leader's high
//! watermark covers its log end, with the partition's leader epoch as the
//! coordinator epoch; then the transactions it finds prepared are
//! completed (their markers sent), as Kafka does after
//! `loadTransactionsForTxnTopicPartition`. On resignation the partition's
//! ids are dropped from memory; requests still writing for them fail with
//! NOT_COORDINATOR and their markers stop. A standalone broker never
//! comes here: it loads everything at start. `check_coordinator` answers,
//! for both, whether and with which coordinator epoch this broker
//! coordinates an id.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::coordinator::{TransactionCoordinator, TxnPartitionLoad};
use super::transaction_log::TXN_TOPIC;
use super::TxnState;
use crate::coordinator::loader::committed_leader;
use kafka_protocol::ResponseError;

impl TransactionCoordinator {
    /// The metadata image changed: `num_partitions` is the partition count
    /// of `__transaction_state` (0 while it does not exist) and `led` the
    /// partitions this broker leads with their leader epochs. Must run
    /// inside the tokio runtime. A standalone coordinator ignores it.
    pub fn on_metadata(self: &Arc<Self>, num_partitions: i32, led: BTreeMap<i32, i32>) {
        let Some(leadership) = &self.leadership else {
            return;
        };
        if num_partitions > 0 {
            self.num_partitions.store(num_partitions, Ordering::Release);
        }
        let mut elected = Vec::new();
        let mut resigned = Vec::new();
        {
            let mut current = leadership.lock().unwrap_or_else(|p| p.into_inner());
            current.retain(|p, l| {
                // A new leader epoch is a new election (Kafka reloads when
                // the coordinator epoch changes).
                let keep = led.get(p) == Some(&l.epoch);
                if !keep {
                    resigned.push(*p);
                }
                keep
            });
            for (&p, &epoch) in &led {
                if let std::collections::btree_map::Entry::Vacant(v) = current.entry(p) {
                    v.insert(TxnPartitionLoad {
                        epoch,
                        loaded: false,
                    });
                    elected.push((p, epoch));
                }
            }
        }
        for p in resigned {
            self.unload_partition(p);
        }
        for (p, epoch) in elected {
            tracing::info!(
                partition = p,
                coordinator_epoch = epoch,
                "transaction coordinator elected for {TXN_TOPIC}-{p}; loading"
            );
            tokio::spawn(self.clone().load_partition(p, epoch));
        }
    }

    /// Whether this broker coordinates `transactional_id` now: Ok, or
    /// NOT_COORDINATOR (its partition is led elsewhere) or
    /// COORDINATOR_LOAD_IN_PROGRESS (Kafka's `getTransactionState` checks);
    /// on a standalone broker NOT_COORDINATOR until its topic exists.
    pub fn check_coordinator(&self, transactional_id: &str) -> Result<i32, ResponseError> {
        let Some(leadership) = &self.leadership else {
            // Standalone: every id, once `__transaction_state` exists
            // (Kafka's `getTransactionState` finds no owned partition
            // before: NOT_COORDINATOR). The coordinator epoch is the partition's leader epoch, as in
            // Kafka: 0 on a fresh node, Kafka's last one on a taken-over
            // volume, so markers are never older than those its partitions
            // already hold (TRANSACTION_COORDINATOR_FENCED otherwise).
            return match self.has_topic() {
                true => Ok(self
                    .log_partition(self.partition_for(transactional_id))
                    .map_or(0, |p| p.leader_epoch())),
                false => Err(ResponseError::NotCoordinator),
            };
        };
        let p = self.partition_for(transactional_id);
        match leadership.lock().unwrap_or_else(|p| p.into_inner()).get(&p) {
            None => Err(ResponseError::NotCoordinator),
            Some(l) if !l.loaded => Err(ResponseError::CoordinatorLoadInProgress),
            Some(l) => Ok(l.epoch),
        }
    }

    /// Whether the election of partition `index` at `epoch` still holds
    /// (always on a standalone broker).
    pub(super) fn is_current(&self, index: i32, epoch: i32) -> bool {
        let Some(leadership) = &self.leadership else {
            return true;
        };
        leadership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&index)
            .is_some_and(|l| l.epoch == epoch)
    }

    fn still_loading(&self, p: i32, epoch: i32) -> bool {
        self.leadership.as_ref().is_some_and(|l| {
            l.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&p)
                .is_some_and(|l| !l.loaded && l.epoch == epoch)
        })
    }

    /// Loads partition `p` for the election at `epoch`, then completes the
    /// transactions it finds prepared, unless the election ends first.
    async fn load_partition(self: Arc<Self>, p: i32, epoch: i32) {
        let started = std::time::Instant::now();
        let Some(partition) = committed_leader(
            TXN_TOPIC,
            p,
            epoch,
            || self.log_partition(p),
            || self.still_loading(p, epoch),
        )
        .await
        else {
            return;
        };
        let replay = partition.clone();
        let latest = tokio::task::spawn_blocking(move || Self::replay_partitions(&[replay])).await;
        let latest = match latest {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                tracing::error!(partition = p, error = %format!("{e:#}"), "loading {TXN_TOPIC} failed; its transactional ids stay unavailable");
                return;
            }
            Err(e) => {
                tracing::error!(partition = p, error = %e, "loading {TXN_TOPIC} failed; its transactional ids stay unavailable");
                return;
            }
        };
        let Some(leadership) = &self.leadership else {
            return;
        };
        let count = {
            // Installed under the leadership lock, so a resignation racing
            // the load either sees the ids (and drops them) or wins first.
            let mut l = leadership.lock().unwrap_or_else(|p| p.into_inner());
            match l.get_mut(&p) {
                Some(load) if load.epoch == epoch && !load.loaded => load.loaded = true,
                _ => return,
            }
            let n = self.num_partitions.load(Ordering::Acquire);
            let ours = latest
                .into_iter()
                .filter(|(id, _)| crate::coordinator::partition_for(id, n) == p)
                .collect();
            self.install(ours)
        };
        tracing::info!(
            partition = p,
            coordinator_epoch = epoch,
            transactional_ids = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded {TXN_TOPIC}-{p}"
        );
        // Kafka completes the transactions a previous coordinator prepared
        // (sends their markers) once the partition is loaded.
        for entry in self.entries() {
            if !self.is_current(p, epoch) {
                return;
            }
            let mut m = entry.lock().await;
            if self.partition_for(&m.transactional_id) != p {
                continue;
            }
            let commit = match m.state {
                TxnState::PrepareCommit => true,
                TxnState::PrepareAbort => false,
                _ => continue,
            };
            tracing::info!(transactional_id = %m.transactional_id, commit, "completing a transaction the previous coordinator prepared");
            if let Err(e) = self.complete(&mut m, commit).await {
                tracing::warn!(transactional_id = %m.transactional_id, error = ?e, "completing a loaded prepared transaction");
            }
        }
    }

    /// Resigns partition `p`: its transactional ids leave memory (the log
    /// keeps them for the next leader).
    fn unload_partition(&self, p: i32) {
        let mut txns = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        let mut producers = self.producers.lock().unwrap_or_else(|p| p.into_inner());
        let before = txns.len();
        txns.retain(|id, _| self.partition_for(id) != p);
        producers.retain(|_, v| self.partition_for(&v.transactional_id) != p);
        tracing::info!(
            partition = p,
            transactional_ids = before - txns.len(),
            "transaction coordinator resigned {TXN_TOPIC}-{p}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::producer_ids::ProducerIdManager;
    use crate::broker::ReplicaManager;
    use crate::config::BrokerConfig;
    use crate::coordinator::txn::marker_channel::{MarkerFuture, TxnMarkerWriter, TxnMarkers};
    use crate::coordinator::txn::TxnConfig;
    use kafka_protocol::ResponseError;
    use std::time::Duration;

    /// These tests end no transaction, so no marker is ever written.
    struct NoMarkers;
    impl TxnMarkerWriter for NoMarkers {
        fn write_markers<'a>(&'a self, _m: TxnMarkers<'a>) -> MarkerFuture<'a> {
            Box::pin(async { Err(ResponseError::CoordinatorNotAvailable) })
        }
    }

    fn open(dir: &std::path::Path) -> Arc<TransactionCoordinator> {
        let (config, _) = BrokerConfig::from_entries(vec![
            ("log.dirs".into(), dir.display().to_string()),
            ("transaction.state.log.num.partitions".into(), "3".into()),
            ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
        ])
        .unwrap();
        let config = Arc::new(config);
        let (_trigger, signal) = crate::util::shutdown::channel();
        std::mem::forget(_trigger);
        let replicas = ReplicaManager::open(config.clone(), false, signal).unwrap();
        replicas
            .create_topic(TXN_TOPIC, 3, 1, TransactionCoordinator::log_topic_configs())
            .unwrap();
        TransactionCoordinator::for_cluster(
            TxnConfig::from_broker(&config),
            replicas,
            Arc::new(ProducerIdManager::load(dir).unwrap()),
            Arc::new(NoMarkers),
        )
    }

    async fn init(c: &TransactionCoordinator) -> Result<(i64, i16), ResponseError> {
        for _ in 0..200 {
            match c.init_producer_id("tx", 60_000, None).await {
                Err(ResponseError::CoordinatorLoadInProgress) => {
                    tokio::time::sleep(Duration::from_millis(10)).await
                }
                other => return other,
            }
        }
        panic!("the partition never loaded");
    }

    #[tokio::test]
    async fn transactional_ids_follow_the_leadership_of_their_partition() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(dir.path());
        let p = c.partition_for("tx");
        let all: BTreeMap<i32, i32> = (0..3).map(|p| (p, 0)).collect();
        // Nothing led: not the coordinator of any transactional id.
        assert_eq!(init(&c).await, Err(ResponseError::NotCoordinator));
        assert_eq!(c.list().await.map(|l| l.len()), Ok(0));

        c.on_metadata(3, all.clone());
        let (pid, epoch) = init(&c).await.unwrap();
        assert_eq!(epoch, 0);
        assert_eq!(c.describe("tx").await.map(|m| m.producer_id), Ok(pid));

        // Resigned: its ids leave memory and answer NOT_COORDINATOR.
        let mut others = all.clone();
        others.remove(&p);
        c.on_metadata(3, others.clone());
        assert_eq!(init(&c).await, Err(ResponseError::NotCoordinator));
        assert_eq!(c.describe("tx").await, Err(ResponseError::NotCoordinator));

        // Elected again: the log brings the producer back (same id, next
        // epoch).
        others.insert(p, 0);
        c.on_metadata(3, others);
        assert_eq!(init(&c).await, Ok((pid, 1)));
        assert_eq!(
            c.describe("nobody").await,
            Err(ResponseError::TransactionalIdNotFound)
        );
    }
}
