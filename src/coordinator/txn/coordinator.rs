//! TransactionCoordinator: the state machine behind InitProducerId (with a
//! transactional id), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! DescribeTransactions and ListTransactions, as Kafka's. Transaction
//! version 1 (EndTxn v0-4): markers carry the producer's epoch; the epoch is
//! bumped when a producer is fenced or a transaction times out. Transaction
//! version 2 (KIP-890 part 2, EndTxn v5): every commit or abort bumps the
//! epoch, its markers carry the bumped epoch (fencing late writes of the
//! ended transaction) and the client continues with it; when the epochs run
//! out the end allocates the next producer id (NextProducerId), which takes
//! over at epoch 0 once the markers are written. Partitions join a version 2
//! transaction through the partition leaders (Produce v12, TxnOffsetCommit
//! v5), with AddPartitionsToTxn v4+ from the broker.
//!
//! Every state change is written to `__transaction_state` and made durable
//! before it is acted on or acknowledged. Ending a transaction is two-phase:
//! PrepareCommit/PrepareAbort is logged, markers are written to every
//! partition of the transaction and become durable, then
//! CompleteCommit/CompleteAbort is logged. A restart finds a Prepare state
//! in the log and finishes it; an Ongoing transaction is aborted once its
//! timeout passes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use crate::broker::partition::Partition;
use crate::broker::producer_ids::ProducerIdManager;
use crate::broker::topics::Topic;
use crate::broker::ReplicaManager;
use crate::config::BrokerConfig;
use crate::coordinator::loader::{self, LoadedBatch};
use crate::coordinator::partition_for;
use crate::coordinator::txn::marker_channel::{TxnMarkerWriter, TxnMarkers};
use crate::coordinator::txn::transaction_log::{self, TxnValue};
use crate::coordinator::txn::TxnState;
use crate::record::records;
use crate::util::now_ms;
use crate::util::shutdown::ShutdownSignal;

/// Epochs stop one short of i16::MAX; past that a new producer id is issued
/// (i16::MAX is left for fencing, Kafka's `isEpochExhausted`).
pub(super) const MAX_EPOCH: i16 = i16::MAX - 1;
/// Kafka's `TransactionVersion` levels the coordinator tells apart.
pub const TV_0: i16 = 0;
pub const TV_2: i16 = 2;
/// Bound on transactional ids kept in memory.
const MAX_TRANSACTIONAL_IDS: usize = 1_000_000;
/// Bound on partitions one transaction may span.
const MAX_PARTITIONS_PER_TXN: usize = 100_000;

#[derive(Debug, Clone)]
pub struct TxnConfig {
    pub max_timeout_ms: i32,
    pub num_partitions: i32,
    pub abort_check_interval_ms: u64,
    /// How long a state write or marker may take to become durable.
    pub write_timeout_ms: u64,
}

impl TxnConfig {
    pub fn from_broker(c: &BrokerConfig) -> TxnConfig {
        TxnConfig {
            max_timeout_ms: c
                .int("transaction.max.timeout.ms")
                .clamp(1, i64::from(i32::MAX)) as i32,
            num_partitions: c
                .int("transaction.state.log.num.partitions")
                .clamp(1, 10_000) as i32,
            abort_check_interval_ms: c
                .int("transaction.abort.timed.out.transaction.cleanup.interval.ms")
                .max(1) as u64,
            // Kafka's `request.timeout.ms` for marker and state writes.
            write_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
    /// The producer id before the last transition (Kafka's
    /// prevProducerId): another than `producer_id` only after a rotation.
    pub prev_producer_id: i64,
    /// Transaction version 2: the producer id an end that used up the
    /// epochs hands over to once its markers are written (-1: none).
    pub next_producer_id: i64,
    /// The epoch before the last bump a client asked for (Kafka's
    /// lastProducerEpoch, kept in memory only as Kafka does): a retried
    /// InitProducerId presenting it gets the current epoch again.
    pub last_producer_epoch: i16,
    /// The transaction version of the client's last transition
    /// (ClientTransactionVersion: [`TV_0`] or [`TV_2`]).
    pub client_tv: i16,
}

impl TxnMetadata {
    fn value(&self) -> TxnValue {
        TxnValue {
            producer_id: self.producer_id,
            previous_producer_id: self.prev_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self.partitions.clone(),
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
            client_transaction_version: self.client_tv,
        }
    }

    /// The start of a transition: the state as it is, recording the
    /// producer id it leaves (Kafka's `TxnTransitMetadata.prevProducerId`).
    pub(super) fn transit(&self) -> TxnMetadata {
        TxnMetadata {
            prev_producer_id: self.producer_id,
            ..self.clone()
        }
    }
}

/// What produce-time verification needs to know of a producer's
/// transaction, readable without the per-transaction lock.
#[derive(Debug, Clone)]
pub(super) struct ProducerView {
    pub(super) transactional_id: String,
    epoch: i16,
    state: TxnState,
    partitions: BTreeSet<(String, i32)>,
}

/// Where `__transaction_state` is found.
pub(super) enum TxnLog {
    /// A standalone broker's own topic: set at start-up when it exists,
    /// else once it is created on first need (as Kafka creates it).
    Local(OnceLock<Arc<Topic>>),
    /// A cluster broker's local replica of the topic, looked up on each
    /// use (the local log appears, or is replaced, when the image says so).
    Replicas(Arc<ReplicaManager>),
}

/// A cluster coordinator's election for one `__transaction_state`
/// partition: the leader epoch (Kafka's coordinator epoch) and whether its
/// transactions are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TxnPartitionLoad {
    pub epoch: i32,
    pub loaded: bool,
}

pub struct TransactionCoordinator {
    pub(super) config: TxnConfig,
    pub(super) log: TxnLog,
    /// Cluster mode: the partition count of `__transaction_state` in the
    /// metadata image (standalone: the local topic's).
    pub(super) num_partitions: std::sync::atomic::AtomicI32,
    pub(super) producer_ids: Arc<ProducerIdManager>,
    pub(super) markers: Arc<dyn TxnMarkerWriter>,
    pub(super) txns: Mutex<HashMap<String, Arc<AsyncMutex<TxnMetadata>>>>,
    pub(super) producers: Mutex<HashMap<i64, ProducerView>>,
    /// Cluster mode: the `__transaction_state` partitions this broker
    /// leads (None on a standalone broker, which coordinates every id
    /// once its topic exists).
    pub(super) leadership: Option<Mutex<BTreeMap<i32, TxnPartitionLoad>>>,
    /// Standalone: serializes [`Self::adopt_topic`] (its replay and install
    /// happen before the topic is published).
    pub(super) adopting: Mutex<()>,
}

/// Kafka answers PRODUCER_FENCED from EndTxn/AddPartitionsToTxn/AddOffsetsToTxn
/// v2+ and INVALID_PRODUCER_EPOCH to older versions.
pub fn fenced_error(version: i16) -> ResponseError {
    if version >= 2 {
        ResponseError::ProducerFenced
    } else {
        ResponseError::InvalidProducerEpoch
    }
}

impl TransactionCoordinator {
    /// The configs of `__transaction_state` when it has to be created.
    pub fn log_topic_configs() -> std::collections::BTreeMap<String, String> {
        [
            ("cleanup.policy", "compact"),
            ("segment.bytes", "104857600"),
            ("compression.type", "uncompressed"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A cluster's `__transaction_state` as the controller creates it:
    /// partitions, replication factor and configs (Kafka's
    /// `TransactionLog` topic configs: min.insync.replicas from
    /// `transaction.state.log.min.isr`, no unclean election).
    pub fn cluster_log_topic_spec(c: &BrokerConfig) -> (i32, i16, BTreeMap<String, String>) {
        let partitions = c
            .int("transaction.state.log.num.partitions")
            .clamp(1, 10_000) as i32;
        let replication_factor =
            i16::try_from(c.int("transaction.state.log.replication.factor")).unwrap_or(3);
        let configs = [
            ("cleanup.policy", "compact".to_string()),
            (
                "min.insync.replicas",
                c.int("transaction.state.log.min.isr").to_string(),
            ),
            ("unclean.leader.election.enable", "false".to_string()),
            (
                "segment.bytes",
                c.int("transaction.state.log.segment.bytes").to_string(),
            ),
            ("compression.type", "uncompressed".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        (partitions, replication_factor, configs)
    }

    /// Loads every transactional id from `log_topic` (`__transaction_state`).
    /// Producer ids come from `producer_ids`; markers go through `markers`.
    pub fn load(
        config: TxnConfig,
        log_topic: Arc<Topic>,
        producer_ids: Arc<ProducerIdManager>,
        markers: Arc<dyn TxnMarkerWriter>,
    ) -> anyhow::Result<Arc<Self>> {
        let n = i32::try_from(log_topic.partitions.len()).unwrap_or(i32::MAX);
        let coordinator = Arc::new(TransactionCoordinator {
            config: TxnConfig {
                num_partitions: n,
                ..config
            },
            log: TxnLog::Local(OnceLock::from(log_topic.clone())),
            num_partitions: std::sync::atomic::AtomicI32::new(n),
            producer_ids,
            markers,
            txns: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
            leadership: None,
            adopting: Mutex::new(()),
        });
        let latest = Self::replay_partitions(&log_topic.partitions)?;
        coordinator.install(latest);
        Ok(coordinator)
    }

    /// A cluster broker's coordinator: nothing loaded, no transactional id
    /// coordinated until the metadata image makes this broker a leader of
    /// `__transaction_state` partitions (`on_metadata`).
    pub fn for_cluster(
        config: TxnConfig,
        replicas: Arc<ReplicaManager>,
        producer_ids: Arc<ProducerIdManager>,
        markers: Arc<dyn TxnMarkerWriter>,
    ) -> Arc<Self> {
        let n = config.num_partitions;
        Arc::new(TransactionCoordinator {
            config,
            log: TxnLog::Replicas(replicas),
            num_partitions: std::sync::atomic::AtomicI32::new(n),
            producer_ids,
            markers,
            txns: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
            leadership: Some(Mutex::new(BTreeMap::new())),
            adopting: Mutex::new(()),
        })
    }

    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for(
            transactional_id,
            self.num_partitions
                .load(std::sync::atomic::Ordering::Acquire),
        )
    }

    /// The local replica of `__transaction_state` partition `index`.
    pub(super) fn log_partition(&self, index: i32) -> Option<Arc<Partition>> {
        match &self.log {
            TxnLog::Local(cell) => cell.get().and_then(|t| t.partition(index).cloned()),
            TxnLog::Replicas(r) => r
                .topics
                .get(transaction_log::TXN_TOPIC)
                .and_then(|t| t.partition(index).cloned()),
        }
    }

    /// The latest value of every transactional id in `partitions` (None:
    /// a tombstone).
    pub(super) fn replay_partitions(
        partitions: &[Arc<Partition>],
    ) -> anyhow::Result<HashMap<String, Option<TxnValue>>> {
        let mut latest: HashMap<String, Option<TxnValue>> = HashMap::new();
        for p in partitions {
            loader::replay(p, |b| replay_txn_batch(&mut latest, b, p.index))?;
        }
        Ok(latest)
    }

    /// Replays raw log bytes of a `__transaction_state` partition (batches
    /// as stored) into the latest value of each transactional id, as
    /// loading reads them: the entry point of the `coordinator_log` fuzz
    /// target (`fuzz/`).
    #[doc(hidden)]
    pub fn replay_log(log: &[u8], partition: i32) -> HashMap<String, Option<TxnValue>> {
        let mut latest = HashMap::new();
        let budget = crate::record::compression::decompression_budget(1 << 20);
        let mut next = 0;
        loader::replay_chunk(
            log,
            budget,
            &mut next,
            transaction_log::TXN_TOPIC,
            partition,
            &mut |b| replay_txn_batch(&mut latest, b, partition),
        );
        latest
    }

    /// Makes loaded transactional ids current; returns how many.
    pub(super) fn install(&self, latest: HashMap<String, Option<TxnValue>>) -> usize {
        let mut txns = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        let mut producers = self.producers.lock().unwrap_or_else(|p| p.into_inner());
        let mut loaded = 0;
        for (id, v) in latest {
            let Some(v) = v else { continue };
            let meta = TxnMetadata {
                transactional_id: id.clone(),
                producer_id: v.producer_id,
                producer_epoch: v.producer_epoch,
                timeout_ms: v.timeout_ms,
                state: v.state,
                partitions: v.partitions,
                start_ms: v.start_ms,
                last_update_ms: v.last_update_ms,
                prev_producer_id: v.previous_producer_id,
                next_producer_id: v.next_producer_id,
                last_producer_epoch: -1,
                client_tv: v.client_transaction_version,
            };
            producers.insert(meta.producer_id, view_of(&meta));
            txns.insert(id, Arc::new(AsyncMutex::new(meta)));
            loaded += 1;
        }
        if self.leadership.is_none() {
            tracing::info!(transactional_ids = txns.len(), "loaded transaction state");
        }
        loaded
    }

    /// Finishes transactions a previous run left prepared, then aborts
    /// timed-out ones periodically, until shutdown begins.
    pub fn start(self: &Arc<Self>, shutdown: ShutdownSignal) {
        let me = self.clone();
        tokio::spawn(async move {
            for entry in me.entries() {
                if shutdown.is_shutting_down() {
                    return;
                }
                let mut m = entry.lock().await;
                let commit = match m.state {
                    TxnState::PrepareCommit => true,
                    TxnState::PrepareAbort => false,
                    _ => continue,
                };
                tracing::info!(transactional_id = %m.transactional_id, commit, "completing a transaction prepared before restart");
                if let Err(e) = me.complete(&mut m, commit).await {
                    tracing::warn!(transactional_id = %m.transactional_id, error = %e, "completing prepared transaction");
                }
            }
            let period = Duration::from_millis(me.config.abort_check_interval_ms);
            loop {
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(period) => {}
                }
                me.abort_timed_out().await;
            }
        });
    }

    pub(super) fn entries(&self) -> Vec<Arc<AsyncMutex<TxnMetadata>>> {
        self.txns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(super) fn entry(&self, id: &str) -> Result<Arc<AsyncMutex<TxnMetadata>>, ResponseError> {
        self.check_coordinator(id)?;
        self.txns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or(ResponseError::InvalidProducerIdMapping)
    }

    async fn abort_timed_out(&self) {
        let now = now_ms();
        for entry in self.entries() {
            let mut m = entry.lock().await;
            // A decided transaction whose markers could not all be written
            // (a disk stall, a timeout): retry, as Kafka's marker channel does.
            if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                let commit = m.state == TxnState::PrepareCommit;
                if let Err(e) = self.complete(&mut m, commit).await {
                    tracing::warn!(transactional_id = %m.transactional_id, error = %e, "retrying transaction markers");
                }
                continue;
            }
            if m.state != TxnState::Ongoing
                || now < m.start_ms.saturating_add(i64::from(m.timeout_ms))
            {
                continue;
            }
            tracing::info!(transactional_id = %m.transactional_id, producer_id = m.producer_id, "aborting transaction past its timeout");
            // Fence the producer so its late writes are refused.
            if let Err(e) = self.fence_and_abort(&mut m).await {
                tracing::warn!(transactional_id = %m.transactional_id, error = %e, "aborting timed-out transaction");
            }
        }
    }

    pub(super) fn publish(&self, m: &TxnMetadata) {
        self.producers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(m.producer_id, view_of(m));
    }

    /// Appends the transaction's new state to its `__transaction_state`
    /// partition and waits until it is durable.
    pub(super) async fn persist(&self, m: &TxnMetadata) -> Result<(), ResponseError> {
        let index = self.partition_for(&m.transactional_id);
        // Cluster mode: only the coordinator of the id's partition writes,
        // at the coordinator epoch it loaded with.
        let epoch = self.check_coordinator(&m.transactional_id)?;
        let partition = self
            .log_partition(index)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let (key, value) = transaction_log::encode_key(&m.transactional_id)
            .and_then(|k| Ok((k, transaction_log::encode_value(&m.value())?)))
            .map_err(|e| {
                // Unreachable through the protocol (strings are bounded
                // there); Kafka's serialization exception is the model.
                tracing::warn!(error = %e, "transaction state cannot be serialized");
                ResponseError::UnknownServerError
            })?;
        let deadline = Instant::now() + Duration::from_millis(self.config.write_timeout_ms);
        if self.leadership.is_none() {
            let out = partition.append_records(&[(key, Some(value))], None).map_err(|e| {
                tracing::warn!(transactional_id = %m.transactional_id, error = %e, "writing transaction state");
                ResponseError::CoordinatorNotAvailable
            })?;
            return partition
                .wait_for_high_watermark(out.last_offset + 1, deadline)
                .await
                .map_err(|_| ResponseError::CoordinatorNotAvailable);
        }
        // A replicated log: acks=all, with Kafka's mapping of append
        // errors (`TransactionStateManager.appendTransactionToLog`).
        if !partition.is_leader() || partition.leader_epoch() != epoch {
            return Err(ResponseError::NotCoordinator);
        }
        let out = partition
            .append_records(&[(key, Some(value))], None)
            .map_err(map_append_error)?;
        partition
            .wait_for_ack(out.last_offset + 1, out.leadership, -1, deadline)
            .await
            .map_err(map_append_error)?;
        // The election may have ended while the write was in flight.
        match self.check_coordinator(&m.transactional_id) {
            Ok(e) if e == epoch => Ok(()),
            Ok(_) => Err(ResponseError::NotCoordinator),
            Err(e) => Err(e),
        }
    }

    /// Writes markers to every partition of the transaction, then logs the
    /// Complete state. `m` is in a Prepare state (already durable).
    pub(super) async fn complete(
        &self,
        m: &mut TxnMetadata,
        commit: bool,
    ) -> Result<(), ResponseError> {
        // The coordinator epoch (cluster mode: the partition's leader
        // epoch); markers stop once this election is over.
        let coordinator_epoch = self.check_coordinator(&m.transactional_id)?;
        let index = self.partition_for(&m.transactional_id);
        let current = move || self.is_current(index, coordinator_epoch);
        self.markers
            .write_markers(TxnMarkers {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                commit,
                coordinator_epoch,
                transaction_version: i8::try_from(m.client_tv).unwrap_or(0),
                partitions: &m.partitions,
                timeout_ms: self.config.write_timeout_ms,
                still_coordinator: &current,
            })
            .await?;
        let mut next = m.transit();
        next.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.last_update_ms = now_ms();
        // A transaction version 2 end that used up the epochs: the producer
        // continues under the id allocated when it was prepared, at epoch 0
        // (Kafka's `prepareComplete`).
        if next.next_producer_id != -1 {
            next.producer_id = next.next_producer_id;
            next.producer_epoch = 0;
            next.next_producer_id = -1;
        }
        self.persist(&next).await?;
        let retired = (next.producer_id != m.producer_id).then_some(m.producer_id);
        *m = next;
        self.publish(m);
        if let Some(old) = retired {
            self.retire(old);
        }
        Ok(())
    }

    /// The producer id `old` no longer maps to its transactional id.
    fn retire(&self, old: i64) {
        self.producers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&old);
    }

    /// Bumps the epoch (fencing the current producer) and logs PrepareAbort
    /// for the open transaction (Kafka's `prepareFenceProducerEpoch`, then
    /// `endTransaction` with ABORT on the coordinator's behalf). Once this
    /// returns the abort is decided; [`Self::complete`] writes its markers.
    async fn fence(&self, m: &mut TxnMetadata) -> Result<(), ResponseError> {
        let mut next = m.transit();
        // Up to i16::MAX, which no producer is ever given: the fence holds
        // even against the last epoch handed out.
        next.producer_epoch = next.producer_epoch.saturating_add(1);
        next.last_producer_epoch = -1;
        next.next_producer_id = -1;
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        self.publish(m);
        Ok(())
    }

    /// Fences the current producer and aborts the open transaction.
    async fn fence_and_abort(&self, m: &mut TxnMetadata) -> Result<(), ResponseError> {
        self.fence(m).await?;
        self.complete(m, false).await
    }

    /// InitProducerId with a transactional id.
    pub async fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        if transactional_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        self.check_coordinator(transactional_id)?;
        let entry = {
            let mut txns = self.txns.lock().unwrap_or_else(|p| p.into_inner());
            match txns.get(transactional_id) {
                Some(e) => e.clone(),
                None => {
                    if txns.len() >= MAX_TRANSACTIONAL_IDS {
                        return Err(ResponseError::CoordinatorNotAvailable);
                    }
                    let producer_id = self.producer_ids.generate()?;
                    let e = Arc::new(AsyncMutex::new(TxnMetadata {
                        transactional_id: transactional_id.to_string(),
                        producer_id,
                        producer_epoch: -1,
                        timeout_ms,
                        state: TxnState::Empty,
                        partitions: BTreeSet::new(),
                        start_ms: -1,
                        last_update_ms: now_ms(),
                        prev_producer_id: -1,
                        next_producer_id: -1,
                        last_producer_epoch: -1,
                        client_tv: TV_0,
                    }));
                    txns.insert(transactional_id.to_string(), e.clone());
                    e
                }
            }
        };
        let mut m = entry.lock().await;
        // KIP-360: a producer recovering its own id must present the current
        // one (Kafka's isValidProducerId, checked before the state), unless
        // the transactional id has no epoch yet.
        let known = m.producer_epoch != -1;
        if let Some((pid, epoch)) = expected {
            // Also accepted: the previous producer id at its last epoch, a
            // retry after a bump that rotated the id (Kafka's
            // isValidProducerId).
            let rotated_retry = pid == m.prev_producer_id && epoch >= MAX_EPOCH;
            if known && pid != m.producer_id && !rotated_retry {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                // A new incarnation of the producer (Kafka's
                // handleInitProducerId, Ongoing -> PrepareEpochFence): fence
                // the old one with a bumped epoch and abort what it left
                // open, then answer CONCURRENT_TRANSACTIONS; the client's
                // retry bumps the epoch again (or, if the fence used up the
                // epochs, gets a new producer id). kastle answers once the
                // markers are written, as its EndTxn does, so the retry
                // normally finds the abort complete; if they could not be
                // written yet, the periodic task finishes them and retries
                // meanwhile get CONCURRENT_TRANSACTIONS (PrepareAbort).
                self.fence(&mut m).await?;
                if let Err(e) = self.complete(&mut m, false).await {
                    tracing::warn!(transactional_id = %m.transactional_id, error = ?e, "writing the markers of a fenced transaction");
                }
                return Err(ResponseError::ConcurrentTransactions);
            }
            _ => {}
        }
        let mut next = m.transit();
        // Kafka's prepareIncrementProducerEpoch / prepareProducerIdRotation.
        let expected_epoch = expected.map(|(_, e)| e);
        if !known || expected_epoch.is_none_or(|e| e == m.producer_epoch) {
            if next.producer_epoch >= MAX_EPOCH {
                next.producer_id = self.producer_ids.generate()?;
                next.producer_epoch = 0;
                // Recorded only when the producer presented its epoch.
                next.last_producer_epoch = expected_epoch.map_or(-1, |_| m.producer_epoch);
            } else {
                next.producer_epoch += 1;
                next.last_producer_epoch = expected_epoch.map_or(-1, |_| m.producer_epoch);
            }
        } else if expected_epoch == Some(m.last_producer_epoch) {
            // A retry of a bump that succeeded: the current epoch again.
        } else {
            return Err(ResponseError::ProducerFenced);
        }
        next.timeout_ms = timeout_ms;
        next.state = TxnState::Empty;
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms();
        // The record names the producer id this transition leaves (Kafka's
        // PreviousProducerId): the same one unless the epochs ran out.
        self.persist(&next).await?;
        let retired = (next.producer_id != m.producer_id).then_some(m.producer_id);
        *m = next;
        self.publish(&m);
        if let Some(old) = retired {
            self.retire(old);
        }
        Ok((m.producer_id, m.producer_epoch))
    }

    /// Checks that a client request belongs to the current producer of the
    /// transaction.
    pub(super) fn check_producer(
        m: &TxnMetadata,
        producer_id: i64,
        epoch: i16,
        version: i16,
    ) -> Result<(), ResponseError> {
        if m.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch != m.producer_epoch {
            return Err(fenced_error(version));
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds partitions to the open
    /// transaction (opening it if needed). With `verify_only` nothing
    /// changes: the partitions must already be part of it. `client_tv` is
    /// the transaction version the request implies (Kafka's
    /// `transactionVersionForAddPartitionsToTxn`: [`TV_2`] from a broker's
    /// v4+, [`TV_0`] from a client).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        verify_only: bool,
        version: i16,
        client_tv: i16,
    ) -> Result<(), ResponseError> {
        let entry = self.entry(transactional_id)?;
        let mut m = entry.lock().await;
        Self::check_producer(&m, producer_id, epoch, version)?;
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Dead => return Err(ResponseError::InvalidTxnState),
            _ => {}
        }
        let all_present =
            m.state == TxnState::Ongoing && partitions.iter().all(|p| m.partitions.contains(p));
        if all_present {
            return Ok(());
        }
        if verify_only {
            return Err(ResponseError::InvalidTxnState);
        }
        if m.partitions.len() + partitions.len() > MAX_PARTITIONS_PER_TXN {
            return Err(ResponseError::InvalidRequest);
        }
        let mut next = m.transit();
        if next.state != TxnState::Ongoing {
            next.state = TxnState::Ongoing;
            next.start_ms = now_ms();
        }
        next.client_tv = client_tv;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        self.publish(&m);
        Ok(())
    }

    /// The coordinator's side of a broker's verify-only AddPartitionsToTxn
    /// (Kafka's `handleVerifyPartitionsInTransaction`): NOT_COORDINATOR or
    /// COORDINATOR_LOAD_IN_PROGRESS when this broker cannot answer for the
    /// id; INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED or
    /// CONCURRENT_TRANSACTIONS for the whole transaction; else, per
    /// partition, whether it is in the transaction (TRANSACTION_ABORTABLE
    /// when not).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.check_coordinator(transactional_id)?;
        let producers = self.producers.lock().unwrap_or_else(|p| p.into_inner());
        let v = producers
            .get(&producer_id)
            .filter(|v| v.transactional_id == transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if epoch != v.epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if matches!(v.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(partitions
            .iter()
            .map(|p| {
                (v.state != TxnState::Ongoing || !v.partitions.contains(p))
                    .then_some(ResponseError::TransactionAbortable)
            })
            .collect())
    }

    /// DescribeTransactions: NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS
    /// as for every id-keyed request, TRANSACTIONAL_ID_NOT_FOUND when unknown.
    pub async fn describe(&self, transactional_id: &str) -> Result<TxnMetadata, ResponseError> {
        let entry = self.entry(transactional_id).map_err(|e| match e {
            ResponseError::InvalidProducerIdMapping => ResponseError::TransactionalIdNotFound,
            other => other,
        })?;
        let m = entry.lock().await;
        Ok(m.clone())
    }

    /// ListTransactions: what this broker coordinates; while a partition
    /// loads, COORDINATOR_LOAD_IN_PROGRESS (Kafka's `listTransactionStates`).
    pub async fn list(&self) -> Result<Vec<TxnMetadata>, ResponseError> {
        if let Some(l) = &self.leadership {
            if l.lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .any(|l| !l.loaded)
            {
                return Err(ResponseError::CoordinatorLoadInProgress);
            }
        }
        let mut out = Vec::new();
        for e in self.entries() {
            out.push(e.lock().await.clone());
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }
}

/// Kafka's mapping of a failed `__transaction_state` append to what the
/// transactional client sees.
fn map_append_error(e: ResponseError) -> ResponseError {
    use ResponseError as E;
    match e {
        E::UnknownTopicOrPartition
        | E::NotEnoughReplicas
        | E::NotEnoughReplicasAfterAppend
        | E::RequestTimedOut => E::CoordinatorNotAvailable,
        E::NotLeaderOrFollower | E::KafkaStorageError => E::NotCoordinator,
        E::MessageTooLarge | E::RecordListTooLarge => E::UnknownServerError,
        other => other,
    }
}

pub(super) fn view_of(m: &TxnMetadata) -> ProducerView {
    ProducerView {
        transactional_id: m.transactional_id.clone(),
        epoch: m.producer_epoch,
        state: m.state,
        partitions: m.partitions.clone(),
    }
}

/// One batch of `__transaction_state` partition `index`: each record's
/// latest value by transactional id (markers do not concern the log).
fn replay_txn_batch(
    latest: &mut HashMap<String, Option<TxnValue>>,
    b: LoadedBatch<'_>,
    index: i32,
) {
    let LoadedBatch::Records { header, section } = b else {
        return;
    };
    for r in records(section, header.records_count) {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(partition = index, offset = header.base_offset, error = %e, "malformed record in __transaction_state");
                break;
            }
        };
        let Some(id) = r.key.and_then(transaction_log::decode_key) else {
            continue;
        };
        latest.insert(id, r.value.and_then(transaction_log::decode_value));
    }
}
