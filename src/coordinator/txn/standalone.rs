//! A standalone broker's transaction coordinator and its
//! `__transaction_state`: the topic is created on first need, as Kafka
//! creates it (the first FindCoordinator for a transactional id, or
//! Metadata auto-creating the name), not at start. Until then every
//! transactional id answers NOT_COORDINATOR (Kafka's `getTransactionState`
//! without an owned partition) while InitProducerId without one works; the
//! topic is then handed over, replayed and published. A restart with the
//! topic on disk loads it at start instead (`TransactionCoordinator::load`).
//! A cluster broker never comes here: it follows leadership (`leadership`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::coordinator::{TransactionCoordinator, TxnLog};
use super::marker_channel::TxnMarkerWriter;
use super::TxnConfig;
use crate::broker::producer_ids::ProducerIdManager;
use crate::broker::topics::Topic;

impl TransactionCoordinator {
    /// A standalone broker's coordinator before `__transaction_state`
    /// exists: InitProducerId without a transactional id works (it needs
    /// no log, as in Kafka); every transactional id answers NOT_COORDINATOR,
    /// which sends clients to FindCoordinator, whose first transactional
    /// key creates the topic and hands it over with [`Self::adopt_topic`].
    pub fn standalone_without_topic(
        config: TxnConfig,
        producer_ids: Arc<ProducerIdManager>,
        markers: Arc<dyn TxnMarkerWriter>,
    ) -> Arc<Self> {
        let n = config.num_partitions.max(1);
        Arc::new(TransactionCoordinator {
            config,
            log: TxnLog::Local(OnceLock::new()),
            num_partitions: AtomicI32::new(n),
            producer_ids,
            markers,
            txns: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
            leadership: None,
            adopting: Mutex::new(()),
        })
    }

    /// Whether this broker has its `__transaction_state` (always in a
    /// cluster, where each partition's leadership decides instead).
    pub fn has_topic(&self) -> bool {
        match &self.log {
            TxnLog::Local(cell) => cell.get().is_some(),
            TxnLog::Replicas(_) => true,
        }
    }

    /// Standalone: `log_topic` was created on first need; its transactional
    /// ids are loaded (none, unless something wrote it before it was
    /// handed over; a prepared one is completed by the periodic check of
    /// [`Self::start`]) and from now on this broker coordinates every id.
    /// A no-op when the coordinator has its topic already.
    pub fn adopt_topic(&self, log_topic: Arc<Topic>) -> anyhow::Result<()> {
        let TxnLog::Local(cell) = &self.log else {
            return Ok(());
        };
        let _adopting = self.adopting.lock().unwrap_or_else(|p| p.into_inner());
        if cell.get().is_some() {
            return Ok(());
        }
        let latest = Self::replay_partitions(&log_topic.partitions)?;
        let n = i32::try_from(log_topic.partitions.len()).unwrap_or(i32::MAX);
        self.num_partitions.store(n, Ordering::Release);
        self.install(latest);
        // Published last: until now every id answered NOT_COORDINATOR.
        let _ = cell.set(log_topic);
        Ok(())
    }
}
