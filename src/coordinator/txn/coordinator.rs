//! TransactionCoordinator: the state machine behind InitProducerId (with a
//! transactional id), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! DescribeTransactions and ListTransactions, as Kafka's (transaction
//! version 1: markers carry the producer's epoch; the epoch is bumped when a
//! producer is fenced or a transaction times out).
//!
//! Every state change is written to `__transaction_state` and made durable
//! before it is acted on or acknowledged. Ending a transaction is two-phase:
//! PrepareCommit/PrepareAbort is logged, markers are written to every
//! partition of the transaction and become durable, then
//! CompleteCommit/CompleteAbort is logged. A restart finds a Prepare state
//! in the log and finishes it; an Ongoing transaction is aborted once its
//! timeout passes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use crate::broker::producer_ids::ProducerIdManager;
use crate::broker::topics::Topic;
use crate::config::BrokerConfig;
use crate::coordinator::loader::{self, LoadedBatch};
use crate::coordinator::partition_for;
use crate::coordinator::txn::marker_channel::{TxnMarkerWriter, TxnMarkers};
use crate::coordinator::txn::transaction_log::{self, TxnValue};
use crate::coordinator::txn::TxnState;
use crate::record::records;
use crate::util::now_ms;
use crate::util::shutdown::ShutdownSignal;

/// Epochs stop one short of i16::MAX; past that a new producer id is issued.
const MAX_EPOCH: i16 = i16::MAX - 1;
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
}

impl TxnMetadata {
    fn value(&self, previous_producer_id: i64) -> TxnValue {
        TxnValue {
            producer_id: self.producer_id,
            previous_producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self.partitions.clone(),
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }
}

/// What produce-time verification needs to know of a producer's
/// transaction, readable without the per-transaction lock.
#[derive(Debug, Clone)]
struct ProducerView {
    transactional_id: String,
    epoch: i16,
    state: TxnState,
    partitions: BTreeSet<(String, i32)>,
}

pub struct TransactionCoordinator {
    config: TxnConfig,
    log_topic: Arc<Topic>,
    producer_ids: Arc<ProducerIdManager>,
    markers: Arc<dyn TxnMarkerWriter>,
    txns: Mutex<HashMap<String, Arc<AsyncMutex<TxnMetadata>>>>,
    producers: Mutex<HashMap<i64, ProducerView>>,
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

    /// Loads every transactional id from `log_topic` (`__transaction_state`).
    /// Producer ids come from `producer_ids`; markers go through `markers`.
    pub fn load(
        config: TxnConfig,
        log_topic: Arc<Topic>,
        producer_ids: Arc<ProducerIdManager>,
        markers: Arc<dyn TxnMarkerWriter>,
    ) -> anyhow::Result<Arc<Self>> {
        let coordinator = Arc::new(TransactionCoordinator {
            config: TxnConfig {
                num_partitions: i32::try_from(log_topic.partitions.len()).unwrap_or(i32::MAX),
                ..config
            },
            log_topic,
            producer_ids,
            markers,
            txns: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
        });
        coordinator.load_state()?;
        Ok(coordinator)
    }

    pub fn log_topic(&self) -> &Arc<Topic> {
        &self.log_topic
    }

    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.config.num_partitions)
    }

    fn load_state(&self) -> anyhow::Result<()> {
        let mut latest: HashMap<String, Option<TxnValue>> = HashMap::new();
        for p in &self.log_topic.partitions {
            loader::replay(p, |b| {
                // Markers do not concern the transaction log itself.
                let LoadedBatch::Records { header, section } = b else {
                    return;
                };
                for r in records(section, header.records_count) {
                    let r = match r {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::warn!(partition = p.index, offset = header.base_offset, error = %e, "malformed record in __transaction_state");
                            break;
                        }
                    };
                    let Some(id) = r.key.and_then(transaction_log::decode_key) else {
                        continue;
                    };
                    latest.insert(id, r.value.and_then(transaction_log::decode_value));
                }
            })?;
        }
        let mut txns = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        let mut producers = self.producers.lock().unwrap_or_else(|p| p.into_inner());
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
            };
            producers.insert(meta.producer_id, view_of(&meta));
            txns.insert(id, Arc::new(AsyncMutex::new(meta)));
        }
        tracing::info!(transactional_ids = txns.len(), "loaded transaction state");
        Ok(())
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

    fn entries(&self) -> Vec<Arc<AsyncMutex<TxnMetadata>>> {
        self.txns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn entry(&self, id: &str) -> Option<Arc<AsyncMutex<TxnMetadata>>> {
        self.txns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
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

    fn publish(&self, m: &TxnMetadata) {
        self.producers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(m.producer_id, view_of(m));
    }

    /// Appends the transaction's new state to its `__transaction_state`
    /// partition and waits until it is durable.
    async fn persist(&self, m: &TxnMetadata) -> Result<(), ResponseError> {
        self.persist_as(m, m.producer_id).await
    }

    /// [`Self::persist`] of a transition away from `previous_producer_id`
    /// (another id than `m`'s only when InitProducerId rotates it).
    async fn persist_as(
        &self,
        m: &TxnMetadata,
        previous_producer_id: i64,
    ) -> Result<(), ResponseError> {
        let partition = self
            .log_topic
            .partition(self.partition_for(&m.transactional_id))
            .ok_or(ResponseError::CoordinatorNotAvailable)?
            .clone();
        let (key, value) = transaction_log::encode_key(&m.transactional_id)
            .and_then(|k| {
                Ok((
                    k,
                    transaction_log::encode_value(&m.value(previous_producer_id))?,
                ))
            })
            .map_err(|e| {
                // Unreachable through the protocol (strings are bounded
                // there); Kafka's serialization exception is the model.
                tracing::warn!(error = %e, "transaction state cannot be serialized");
                ResponseError::UnknownServerError
            })?;
        let out = partition.append_records(&[(key, Some(value))], None).map_err(|e| {
            tracing::warn!(transactional_id = %m.transactional_id, error = %e, "writing transaction state");
            ResponseError::CoordinatorNotAvailable
        })?;
        let deadline = Instant::now() + Duration::from_millis(self.config.write_timeout_ms);
        partition
            .wait_for_high_watermark(out.last_offset + 1, deadline)
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable)
    }

    /// Writes markers to every partition of the transaction, then logs the
    /// Complete state. `m` is in a Prepare state (already durable).
    async fn complete(&self, m: &mut TxnMetadata, commit: bool) -> Result<(), ResponseError> {
        self.markers
            .write_markers(TxnMarkers {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                commit,
                coordinator_epoch: 0,
                partitions: &m.partitions,
                timeout_ms: self.config.write_timeout_ms,
            })
            .await?;
        let mut next = m.clone();
        next.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        self.publish(m);
        Ok(())
    }

    /// Bumps the epoch (fencing the current producer) and logs PrepareAbort
    /// for the open transaction (Kafka's `prepareFenceProducerEpoch`, then
    /// `endTransaction` with ABORT on the coordinator's behalf). Once this
    /// returns the abort is decided; [`Self::complete`] writes its markers.
    async fn fence(&self, m: &mut TxnMetadata) -> Result<(), ResponseError> {
        let mut next = m.clone();
        if next.producer_epoch < MAX_EPOCH {
            next.producer_epoch += 1;
        }
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
        if let Some((pid, _)) = expected {
            if known && pid != m.producer_id {
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
        if let Some((_, epoch)) = expected {
            if known && epoch != m.producer_epoch {
                return Err(ResponseError::ProducerFenced);
            }
        }
        let mut next = m.clone();
        if next.producer_epoch >= MAX_EPOCH {
            next.producer_id = self.producer_ids.generate()?;
            next.producer_epoch = 0;
        } else {
            next.producer_epoch += 1;
        }
        next.timeout_ms = timeout_ms;
        next.state = TxnState::Empty;
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms();
        // The record names the producer id this transition leaves (Kafka's
        // PreviousProducerId): the same one unless the epochs ran out.
        self.persist_as(&next, m.producer_id).await?;
        if next.producer_id != m.producer_id {
            // The old producer id no longer maps to this transactional id.
            self.producers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&m.producer_id);
        }
        *m = next;
        self.publish(&m);
        Ok((m.producer_id, m.producer_epoch))
    }

    /// Checks that a client request belongs to the current producer of the
    /// transaction.
    fn check_producer(
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
    /// changes: the partitions must already be part of it.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        verify_only: bool,
        version: i16,
    ) -> Result<(), ResponseError> {
        let entry = self
            .entry(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
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
        let mut next = m.clone();
        if next.state != TxnState::Ongoing {
            next.state = TxnState::Ongoing;
            next.start_ms = now_ms();
        }
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        self.publish(&m);
        Ok(())
    }

    /// EndTxn: two-phase commit or abort.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        version: i16,
    ) -> Result<(), ResponseError> {
        let entry = self
            .entry(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        let mut m = entry.lock().await;
        Self::check_producer(&m, producer_id, epoch, version)?;
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {}
            // A retry of an end that already happened.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => return Ok(()),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            // Nothing added (Empty) is an invalid transition for commit and
            // abort alike below EndTxn v5 (Kafka's transaction version 1).
            _ => return Err(ResponseError::InvalidTxnState),
        }
        let mut next = m.clone();
        next.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        next.last_update_ms = now_ms();
        self.persist(&next).await?;
        *m = next;
        self.publish(&m);
        // Once Prepare is durable the outcome is decided; if writing the
        // markers fails now, the periodic task finishes the job.
        self.complete(&mut m, commit).await
    }

    /// KIP-890 verification of a transactional write (a Produce batch, a
    /// TxnOffsetCommit), answered as Kafka's coordinator answers the
    /// broker's verify-only AddPartitionsToTxn
    /// (`handleVerifyPartitionsInTransaction`) after
    /// `AddPartitionsToTxnManager`'s translation: the producer id must be
    /// the transactional id's current one (INVALID_PRODUCER_ID_MAPPING), at
    /// its epoch (PRODUCER_FENCED, answered INVALID_PRODUCER_EPOCH), the
    /// transaction must not be ending (CONCURRENT_TRANSACTIONS), and the
    /// partition must be in it (TRANSACTION_ABORTABLE, which callers turn
    /// into INVALID_TXN_STATE for request versions that predate it).
    /// `transactional_id` is the request's, when it names one.
    pub fn verify_partition(
        &self,
        transactional_id: Option<&str>,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ResponseError> {
        let producers = self.producers.lock().unwrap_or_else(|p| p.into_inner());
        let Some(v) = producers.get(&producer_id) else {
            return Err(ResponseError::InvalidProducerIdMapping);
        };
        if transactional_id.is_some_and(|t| t != v.transactional_id) {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch != v.epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        if matches!(v.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if v.state != TxnState::Ongoing || !v.partitions.contains(&(topic.to_string(), partition)) {
            return Err(ResponseError::TransactionAbortable);
        }
        Ok(())
    }

    pub async fn describe(&self, transactional_id: &str) -> Option<TxnMetadata> {
        let entry = self.entry(transactional_id)?;
        let m = entry.lock().await;
        Some(m.clone())
    }

    pub async fn list(&self) -> Vec<TxnMetadata> {
        let mut out = Vec::new();
        for e in self.entries() {
            out.push(e.lock().await.clone());
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// Whether `partition` hosts this coordinator's log (for FindCoordinator).
    pub fn owns(&self, _transactional_id: &str) -> bool {
        true
    }
}

fn view_of(m: &TxnMetadata) -> ProducerView {
    ProducerView {
        transactional_id: m.transactional_id.clone(),
        epoch: m.producer_epoch,
        state: m.state,
        partitions: m.partitions.clone(),
    }
}
