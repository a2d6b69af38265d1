//! `ReplicaManager`: the partitions this broker hosts and the operations on
//! them as a whole: loading every log at start-up, creating topics and
//! partitions (starting their flushers), background log maintenance, and
//! closing every log at shutdown. Handlers and coordinators reach a
//! partition through its `topics` registry.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::broker::dynamic_config::Reconfigurable;
use crate::broker::log_manager;
use crate::broker::topics::{Topic, TopicError, TopicManager};
use crate::config::BrokerConfig;
use crate::metadata::PartitionRegistration;
use crate::util::shutdown::ShutdownSignal;

pub struct ReplicaManager {
    /// The configuration as the broker started; [`ReplicaManager::config`]
    /// is the current one.
    pub config: Arc<BrokerConfig>,
    pub topics: TopicManager,
    shutdown: ShutdownSignal,
}

impl ReplicaManager {
    /// Loads every topic of the log directory (recovering each active
    /// segment's tail when `needs_recovery`). Nothing runs in the
    /// background until [`ReplicaManager::start`].
    pub fn open(
        config: Arc<BrokerConfig>,
        needs_recovery: bool,
        shutdown: ShutdownSignal,
    ) -> anyhow::Result<Arc<ReplicaManager>> {
        let started = std::time::Instant::now();
        let topics = TopicManager::load(config.clone(), needs_recovery)?;
        tracing::info!(
            log_dir = %config.log_dir.display(),
            topics = topics.list().len(),
            recovered = needs_recovery,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded logs"
        );
        Ok(Arc::new(ReplicaManager {
            config,
            topics,
            shutdown,
        }))
    }

    /// Starts every partition's flusher, retention and the log cleaner.
    /// Must run inside the tokio runtime.
    pub fn start(self: &Arc<Self>) {
        for t in self.topics.list() {
            start_flushers(&t);
        }
        log_manager::start(self);
    }

    /// Returns the internal topic `name`, creating it with `partitions`
    /// partitions and `configs` when it does not exist yet (the
    /// coordinators' `__consumer_offsets` and `__transaction_state`). Called
    /// while wiring, before [`ReplicaManager::start`] starts its flushers.
    pub fn get_or_create_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> anyhow::Result<Arc<Topic>> {
        if let Some(t) = self.topics.get(name) {
            return Ok(t);
        }
        let t = self
            .topics
            .create(name, partitions, 1, configs)
            .map_err(|e| anyhow::anyhow!("creating {name}: {}", e.message))?;
        tracing::info!(partitions, "created {name}");
        Ok(t)
    }

    pub fn create_topic(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let topic = self
            .topics
            .create(name, num_partitions, replication_factor, configs)?;
        start_flushers(&topic);
        Ok(topic)
    }

    pub fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        let (topic, added) = self.topics.create_partitions(name, total, validate_only)?;
        for p in added {
            tokio::spawn(p.run_flusher());
        }
        Ok(topic)
    }

    /// The current broker configuration (dynamic broker configs applied):
    /// log maintenance reads its settings from here on every round.
    pub fn current_config(&self) -> Arc<BrokerConfig> {
        self.topics.broker_config()
    }

    /// Resolves once shutdown has begun (long polls answer then).
    pub async fn stopping(&self) {
        self.shutdown.wait().await
    }

    pub fn is_stopping(&self) -> bool {
        self.shutdown.is_shutting_down()
    }

    /// Flushes and closes every log; true when all closed cleanly.
    pub fn shutdown(&self) -> bool {
        self.topics.close_all()
    }
}

/// A dynamic broker config changed: topics without an override follow the
/// new broker defaults (Kafka's `DynamicLogConfig`); log maintenance reads
/// the cleaner's settings on its next round.
impl Reconfigurable for ReplicaManager {
    fn reconfigure(&self, new: &Arc<BrokerConfig>) {
        self.topics.set_broker_config(new.clone());
    }
}

/// What the metadata image now says about one partition this node is, or
/// was, a replica of (Kafka's `ReplicaManager.applyDelta` input).
///
/// CONTRACT (lead, this session): the metadata publisher builds these; the
/// body of [`ReplicaManager::apply_delta`] is filled in on the
/// `replication` branch.
#[derive(Debug, Clone)]
pub struct LocalReplicaChange {
    pub topic: String,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    /// `None`: this node is no longer a replica (reassigned away, or the
    /// topic deleted): stop serving it and delete the local log.
    pub registration: Option<PartitionRegistration>,
    /// The leader's inter-broker address ("host:port") when another node
    /// leads it; `None` when this node leads or there is no leader.
    pub leader_endpoint: Option<String>,
    /// The topic's configs from the image (ConfigRecords), for creating the
    /// local log the first time.
    pub topic_configs: BTreeMap<String, String>,
}

impl ReplicaManager {
    /// Applies a batch of changes from the metadata image: creates missing
    /// local logs, makes this node leader or follower at the given epochs
    /// (starting or stopping replica fetchers), or stops and deletes a
    /// replica. Idempotent for an unchanged registration.
    pub fn apply_delta(self: &Arc<Self>, changes: Vec<LocalReplicaChange>) -> anyhow::Result<()> {
        anyhow::ensure!(
            changes.is_empty(),
            "replication is not built yet: {} partition changes refused",
            changes.len()
        );
        Ok(())
    }
}

fn start_flushers(topic: &Topic) {
    for p in &topic.partitions {
        tokio::spawn(p.clone().run_flusher());
    }
}
