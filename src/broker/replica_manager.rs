//! `ReplicaManager`: the partitions this broker hosts and the operations on
//! them as a whole: loading every log at start-up, creating topics and
//! partitions (starting their flushers), background log maintenance, and
//! closing every log at shutdown. Handlers and coordinators reach a
//! partition through its `topics` registry.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::broker::alter_partition::{AlterPartitionManager, IsrProposal};
use crate::broker::dynamic_config::Reconfigurable;
use crate::broker::log_dir::{recovery_points_lock, write_recovery_points, RecoveryPoints};
use crate::broker::log_manager;
use crate::broker::partition::{removal, Partition};
use crate::broker::replica_fetcher_manager::{FetchState, ReplicaFetcherManager};
use crate::broker::replication_quota_manager::ReplicationQuotas;
use crate::broker::topics::{Topic, TopicError, TopicManager};
use crate::config::BrokerConfig;
use crate::metadata::PartitionRegistration;
use crate::storage::offset_checkpoint::{OffsetCheckpointFile, Offsets};
use crate::util::shutdown::ShutdownSignal;

pub struct ReplicaManager {
    /// The configuration as the broker started; [`ReplicaManager::config`]
    /// is the current one.
    pub config: Arc<BrokerConfig>,
    pub topics: TopicManager,
    shutdown: ShutdownSignal,
    /// This broker's epoch from its registration (-1 until registered);
    /// followers send it in Fetch's ReplicaState.
    broker_epoch: Arc<AtomicI64>,
    /// The controller channel for ISR changes (cluster mode only).
    alter_partition: RwLock<Option<Arc<dyn AlterPartitionManager>>>,
    pub fetchers: ReplicaFetcherManager,
    /// The leader and follower replication throttles.
    pub replication_quotas: Arc<ReplicationQuotas>,
    /// A cluster broker's: high watermarks are checkpointed.
    in_cluster: AtomicBool,
    /// The recovery points last written, so an idle broker rewrites nothing.
    written_recovery_points: Mutex<Option<Offsets>>,
    /// Partitions the log cleaner gave up on (Kafka's `LogCleanerManager`
    /// uncleanable partitions), read by the metrics exporter.
    pub uncleanable: log_manager::UncleanablePartitions,
}

/// Kafka's `ReplicaManager.HighWatermarkFilename`.
const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";

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
        if !config.kraft.standalone {
            removal::remove_leftover_deletions(&config.log_dir);
        }
        let points = needs_recovery.then(|| RecoveryPoints::read(&config.log_dir));
        let topics = TopicManager::load(config.clone(), points.as_ref())?;
        tracing::info!(
            log_dir = %config.log_dir.display(),
            topics = topics.list().len(),
            recovered = needs_recovery,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded logs"
        );
        let broker_epoch = Arc::new(AtomicI64::new(-1));
        let replication_quotas = Arc::new(ReplicationQuotas::new(&config));
        let fetchers = ReplicaFetcherManager::new(
            &config,
            broker_epoch.clone(),
            replication_quotas.clone(),
            shutdown.clone(),
        );
        Ok(Arc::new(ReplicaManager {
            config,
            topics,
            shutdown,
            broker_epoch,
            alter_partition: RwLock::new(None),
            fetchers,
            replication_quotas,
            in_cluster: AtomicBool::new(false),
            written_recovery_points: Mutex::new(None),
            uncleanable: Default::default(),
        }))
    }

    /// Starts every partition's flusher, retention and the log cleaner.
    /// Must run inside the tokio runtime.
    pub fn start(self: &Arc<Self>) {
        for t in self.topics.list() {
            start_flushers(&t);
        }
        log_manager::start(self);
        self.start_isr_expiration();
        self.start_recovery_point_checkpoints();
    }

    /// Writes every open log's recovery point to the log directory's
    /// `recovery-point-offset-checkpoint` (Kafka's
    /// `checkpointLogRecoveryOffsets`), unless none changed since the last
    /// write. An unclean start scans each active segment only from there.
    pub fn checkpoint_recovery_points(&self) {
        let _guard = recovery_points_lock();
        let mut offsets = Offsets::new();
        for t in self.topics.list() {
            for p in &t.partitions {
                if let Some(point) = p.recovery_point() {
                    offsets.insert((t.name.clone(), p.index), point);
                }
            }
        }
        let mut written = self
            .written_recovery_points
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if written.as_ref() == Some(&offsets) {
            return;
        }
        match write_recovery_points(&self.config.log_dir, &offsets) {
            Ok(()) => *written = Some(offsets),
            Err(e) => tracing::error!(error = %e, "writing the recovery point checkpoint"),
        }
    }

    /// The periodic recovery point checkpoint, every
    /// `log.flush.offset.checkpoint.interval.ms` until shutdown.
    fn start_recovery_point_checkpoints(self: &Arc<Self>) {
        self.spawn_periodic_checkpoint(
            "log.flush.offset.checkpoint.interval.ms",
            ReplicaManager::checkpoint_recovery_points,
        );
    }

    /// Runs the blocking `checkpoint` every `interval_key` milliseconds until
    /// shutdown, off the async workers (it writes and syncs a file).
    fn spawn_periodic_checkpoint(self: &Arc<Self>, interval_key: &str, checkpoint: fn(&Self)) {
        let every = self.config.int(interval_key).max(1) as u64;
        let this = self.clone();
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(every));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait() => return,
                }
                let r = this.clone();
                let _ = tokio::task::spawn_blocking(move || checkpoint(&r)).await;
            }
        });
    }

    /// Returns the internal topic `name`, creating it with `partitions`
    /// partitions and `configs` when it does not exist yet (a standalone
    /// broker's `__consumer_offsets` and `__transaction_state`, on their
    /// first need). Blocking: creating a topic writes (and syncs) each
    /// partition's directory. Runs after [`ReplicaManager::start`], so a
    /// new topic's flushers start here; of two racing callers the second
    /// gets the first one's topic.
    pub fn get_or_create_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> anyhow::Result<Arc<Topic>> {
        if let Some(t) = self.topics.get(name) {
            return Ok(t);
        }
        let started = std::time::Instant::now();
        match self.topics.create(name, partitions, 1, configs) {
            Ok(t) => {
                start_flushers(&t);
                tracing::info!(
                    partitions,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "created {name}"
                );
                Ok(t)
            }
            Err(e) if e.code == ResponseError::TopicAlreadyExists => self
                .topics
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("creating {name}: {}", e.message)),
            Err(e) => Err(anyhow::anyhow!("creating {name}: {}", e.message)),
        }
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
        self.fetchers.shutdown();
        if self.in_cluster.load(Ordering::Acquire) {
            self.checkpoint_high_watermarks();
        }
        self.topics.close_all()
    }
}

/// A dynamic broker config changed: topics without an override follow the
/// new broker defaults (Kafka's `DynamicLogConfig`); log maintenance reads
/// the cleaner's settings on its next round.
impl Reconfigurable for ReplicaManager {
    fn reconfigure(&self, new: &Arc<BrokerConfig>) {
        self.topics.set_broker_config(new.clone());
        self.replication_quotas.reconfigure(new);
    }
}

/// What the metadata image now says about one partition this node is, or
/// was, a replica of (Kafka's `ReplicaManager.applyDelta` input), built by
/// `metadata_publisher::local_changes`.
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
        let node_id = self.config.node_id;
        // The partitions each topic needs locally: its log is created (or
        // grown) once per batch.
        let mut needed: BTreeMap<&str, (uuid::Uuid, i32, &BTreeMap<String, String>)> =
            BTreeMap::new();
        for c in &changes {
            if c.registration
                .as_ref()
                .is_some_and(|r| r.replicas.contains(&node_id))
            {
                let e = needed
                    .entry(c.topic.as_str())
                    .or_insert((c.topic_id, 0, &c.topic_configs));
                e.1 = e.1.max(c.partition.saturating_add(1));
            }
        }
        let mut errors = Vec::new();
        for (name, (id, count, configs)) in needed {
            if let Err(e) = self.ensure_local_log(name, id, count, configs) {
                errors.push(format!("{name}: {e}"));
            }
        }
        for c in &changes {
            if let Err(e) = self.apply_change(c, node_id) {
                errors.push(format!("{}-{}: {e}", c.topic, c.partition));
            }
        }
        anyhow::ensure!(
            errors.is_empty(),
            "applying partition changes: {}",
            errors.join("; ")
        );
        Ok(())
    }

    /// The local log of a topic the image places a replica of here, with
    /// the controller's topic id: a log under that name with another id is
    /// a deleted topic's and goes first. New partitions serve nothing until
    /// their own change makes them leader or follower.
    fn ensure_local_log(
        &self,
        name: &str,
        id: uuid::Uuid,
        count: i32,
        configs: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        let lag = self.config.int("replica.lag.time.max.ms");
        if let Some(t) = self.topics.get(name) {
            if t.id == id {
                if (t.partitions.len() as i32) < count {
                    let (_, added) = self
                        .topics
                        .create_partitions(name, count, false)
                        .map_err(|e| anyhow::anyhow!("growing the local log: {}", e.message))?;
                    for p in added {
                        p.stop_serving();
                        p.set_replica_lag_time_max_ms(lag);
                        tokio::spawn(p.run_flusher());
                    }
                }
                return Ok(());
            }
            for p in &t.partitions {
                self.fetchers.remove_partition(&(p.topic.clone(), p.index));
                p.stop_serving();
            }
            self.topics
                .delete(name)
                .map_err(|e| anyhow::anyhow!("deleting the old topic's log: {}", e.message))?;
        }
        let t = self
            .topics
            .create_with_id(name, id, count, configs.clone())
            .map_err(|e| anyhow::anyhow!("creating the local log: {}", e.message))?;
        for p in &t.partitions {
            p.stop_serving();
            p.set_replica_lag_time_max_ms(lag);
        }
        start_flushers(&t);
        tracing::info!(topic = name, partitions = count, "created local log");
        Ok(())
    }

    fn apply_change(&self, c: &LocalReplicaChange, node_id: i32) -> anyhow::Result<()> {
        let key = (Arc::<str>::from(c.topic.as_str()), c.partition);
        let reg = match &c.registration {
            Some(r) if r.replicas.contains(&node_id) => r,
            _ => return self.remove_replica(c, &key),
        };
        let topic = self
            .topics
            .get(&c.topic)
            .filter(|t| t.id == c.topic_id)
            .ok_or_else(|| anyhow::anyhow!("no local log with topic id {}", c.topic_id))?;
        let p = topic
            .partition(c.partition)
            .ok_or_else(|| anyhow::anyhow!("no local partition"))?
            .clone();
        // A replica removed earlier and assigned here again starts empty.
        if p.reattach_empty()
            .map_err(|e| anyhow::anyhow!("recreating the local log: {e}"))?
        {
            p.stop_serving();
            p.set_replica_lag_time_max_ms(self.config.int("replica.lag.time.max.ms"));
            tokio::spawn(p.clone().run_flusher());
        }
        if reg.leader == node_id {
            self.fetchers.remove_partition(&key);
            if !p
                .become_leader(node_id, c.topic_id, reg)
                .map_err(|e| anyhow::anyhow!("becoming leader: {e}"))?
            {
                tracing::debug!(topic = %c.topic, partition = c.partition, leader_epoch = reg.leader_epoch, "stale leader epoch ignored");
            } else {
                tracing::info!(topic = %c.topic, partition = c.partition, leader_epoch = reg.leader_epoch, isr = ?reg.isr, "leader");
            }
            return Ok(());
        }
        let Some(changed) = p.become_follower(node_id, c.topic_id, reg, c.leader_endpoint.clone())
        else {
            tracing::debug!(topic = %c.topic, partition = c.partition, leader_epoch = reg.leader_epoch, "stale leader epoch ignored");
            return Ok(());
        };
        match (&c.leader_endpoint, reg.leader >= 0) {
            (Some(endpoint), true) => {
                let fetching = matches!(
                    self.fetchers.state_of(&key),
                    Some(FetchState::Truncating | FetchState::Fetching(_))
                );
                if changed || !fetching {
                    tracing::info!(topic = %c.topic, partition = c.partition, leader = reg.leader, leader_epoch = reg.leader_epoch, "follower");
                    self.fetchers.add_partition(
                        reg.leader,
                        endpoint.clone(),
                        p,
                        c.topic_id,
                        reg.leader_epoch,
                    );
                }
            }
            // No leader (or no address for it): nothing to fetch from.
            _ => self.fetchers.remove_partition(&key),
        }
        Ok(())
    }

    /// No longer a replica: stop serving and fetching; the topic's local
    /// log goes once none of its partitions is hosted here.
    fn remove_replica(&self, c: &LocalReplicaChange, key: &(Arc<str>, i32)) -> anyhow::Result<()> {
        self.fetchers.remove_partition(key);
        let Some(t) = self.topics.get(&c.topic).filter(|t| t.id == c.topic_id) else {
            return Ok(());
        };
        if let Some(p) = t.partition(c.partition) {
            p.stop_serving();
        }
        if t.partitions.iter().all(|p| !p.is_hosted()) {
            self.topics
                .delete(&c.topic)
                .map_err(|e| anyhow::anyhow!("deleting the local log: {}", e.message))?;
        } else if let Some(p) = t.partition(c.partition) {
            // The topic stays: only this replica's log goes (Kafka's
            // `LogManager.asyncDelete`).
            if let Some(renamed) = p
                .detach_log()
                .map_err(|e| anyhow::anyhow!("removing the local log: {e}"))?
            {
                tracing::info!(topic = %c.topic, partition = c.partition, "removed replica's log scheduled for deletion");
                tokio::task::spawn_blocking(move || removal::remove_renamed(&renamed));
            }
        }
        Ok(())
    }

    /// The broker epoch from this broker's registration (quorum calls it).
    pub fn set_broker_epoch(&self, epoch: i64) {
        self.broker_epoch.store(epoch, Ordering::Release);
    }

    /// The controller channel for ISR changes (quorum calls it at wiring).
    pub fn set_alter_partition_manager(&self, manager: Arc<dyn AlterPartitionManager>) {
        *self
            .alter_partition
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(manager);
    }

    /// A follower's fetch of `partition` (see `Partition::record_follower_fetch`);
    /// an ISR expansion it makes possible is proposed to the controller.
    pub fn record_follower_fetch(
        &self,
        partition: &Arc<Partition>,
        replica_id: i32,
        fetch_offset: i64,
        log_start_offset: i64,
        broker_epoch: i64,
        has_current_epoch: bool,
    ) -> Result<(), ResponseError> {
        if let Some(proposal) = partition.record_follower_fetch(
            replica_id,
            fetch_offset,
            log_start_offset,
            broker_epoch,
            has_current_epoch,
        )? {
            self.submit_isr_change(partition.clone(), proposal);
        }
        Ok(())
    }

    /// Sends an ISR proposal through the `AlterPartitionManager`; its answer
    /// is applied to the partition when it comes.
    fn submit_isr_change(&self, partition: Arc<Partition>, proposal: IsrProposal) {
        let manager = self
            .alter_partition
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(manager) = manager else {
            tracing::debug!(topic = %partition.topic, partition = partition.index, "no controller channel: ISR change not proposed");
            partition.complete_isr_change(Err(ResponseError::RequestTimedOut));
            return;
        };
        tracing::info!(topic = %partition.topic, partition = partition.index, new_isr = ?proposal.new_isr, "proposing ISR change");
        let future = manager.submit(proposal);
        tokio::spawn(async move {
            let answer = future.await;
            partition.complete_isr_change(answer);
        });
    }

    /// Kafka's `isr-expiration` task: every half `replica.lag.time.max.ms`,
    /// each replicated leader proposes dropping followers that fell behind.
    fn start_isr_expiration(self: &Arc<Self>) {
        let lag = self.config.int("replica.lag.time.max.ms").max(2);
        let period = Duration::from_millis((lag / 2) as u64);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = me.stopping() => return,
                }
                for t in me.topics.list() {
                    for p in &t.partitions {
                        if let Some(proposal) = p.maybe_shrink_isr() {
                            me.submit_isr_change(p.clone(), proposal);
                        }
                        // A caught-up follower outside the ISR holds the
                        // high watermark back only for the lag time; when
                        // it stops fetching nothing else would recompute it.
                        p.maybe_increment_high_watermark();
                    }
                }
            }
        });
    }
}

fn start_flushers(topic: &Topic) {
    for p in &topic.partitions {
        tokio::spawn(p.clone().run_flusher());
    }
}

impl ReplicaManager {
    /// Cluster mode, before the first metadata image is applied: the logs
    /// loaded from disk serve nothing (clients get NOT_LEADER_OR_FOLLOWER)
    /// until `apply_delta` makes each one leader or follower, so a
    /// restarted broker never answers as a leader it no longer is. The
    /// server's cluster wiring calls it right after `open`; a standalone
    /// node never does.
    /// The brokers that may be in an ISR now (registered, unfenced, not in
    /// controlled shutdown, with their epochs), from each new metadata
    /// image, handed to every partition (Kafka's leader asks its
    /// `MetadataCache` in `isReplicaIsrEligible`).
    pub fn set_eligible_replicas(&self, eligible: BTreeMap<i32, i64>) {
        let eligible = Arc::new(eligible);
        for t in self.topics.list() {
            for p in &t.partitions {
                p.set_eligible_replicas(eligible.clone());
            }
        }
    }

    /// A cluster broker's start: its logs serve nothing until the image
    /// makes them leaders or followers, and their high watermarks are the
    /// checkpointed ones (a malformed checkpoint counts as none: the high
    /// watermarks start at the log start, hiding nothing that is lost).
    pub fn await_metadata(&self) {
        self.in_cluster.store(true, Ordering::Release);
        let checkpoint = self.high_watermark_checkpoint();
        let restored = checkpoint.read().unwrap_or_else(|e| {
            tracing::error!("{e}; high watermarks restart at the log start offsets");
            Offsets::new()
        });
        for t in self.topics.list() {
            for p in &t.partitions {
                p.stop_serving();
                p.set_replica_lag_time_max_ms(self.config.int("replica.lag.time.max.ms"));
                p.restore_high_watermark(restored.get(&(t.name.clone(), p.index)).copied());
            }
        }
    }

    fn high_watermark_checkpoint(&self) -> OffsetCheckpointFile {
        OffsetCheckpointFile::new(&self.config.log_dir, HIGH_WATERMARK_CHECKPOINT)
    }

    /// Writes every open log's high watermark (Kafka's
    /// `checkpointHighWatermarks`): every
    /// `replica.high.watermark.checkpoint.interval.ms` and at shutdown.
    pub fn checkpoint_high_watermarks(&self) {
        let mut offsets = Offsets::new();
        for t in self.topics.list() {
            for p in &t.partitions {
                if p.log_end_offset().is_some() {
                    offsets.insert((t.name.clone(), p.index), p.state().high_watermark);
                }
            }
        }
        if let Err(e) = self.high_watermark_checkpoint().write(&offsets) {
            tracing::error!(error = %e, "writing the high watermark checkpoint");
        }
    }

    /// The periodic high watermark checkpoint of a cluster broker, until
    /// shutdown (which writes the last one).
    pub fn start_high_watermark_checkpoints(self: &Arc<Self>) {
        self.spawn_periodic_checkpoint(
            "replica.high.watermark.checkpoint.interval.ms",
            ReplicaManager::checkpoint_high_watermarks,
        );
    }
}
