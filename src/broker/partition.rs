//! One topic-partition on this broker: its log behind the single-writer lock,
//! its high watermark, and how its appends become durable.
//!
//! Durable mode (`flush.messages` = 1, kastle's default): an append only
//! reaches consumers and acknowledgements once a flush has covered it; the
//! partition queues itself on the broker's [`LogFlusher`], whose one pass
//! covers every append that arrived while the previous pass ran, across
//! partitions (group commit). Page-cache mode (`flush.messages` > 1, Kafka's default
//! behaviour): the high watermark moves on append and the flusher runs every
//! `flush.messages` messages or `flush.ms`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::{watch, Notify};

use crate::broker::log_flusher::LogFlusher;
use crate::broker::topic_config::TopicSettings;
use crate::record::batch::BatchHeader;
use crate::record::builder::BatchBuilder;
use crate::record::validator::{ValidatedRecords, ValidationConfig};
use crate::storage::producer_state::{
    ProducerCheck, ProducerError, ProducerStateEntry, ProducerStateManager, VerificationGuard,
};
use crate::storage::txn_index::{AbortedTxn, TransactionIndex};
use crate::storage::{Log, LogConfig, ReadPlan, StorageError};
use crate::util::fs::write_atomically;
use crate::util::now_ms;

/// What readers may see of the partition; published on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// First offset of the oldest open transaction (`i64::MAX` if none).
    pub first_unstable_offset: i64,
    /// The order, under the partition lock, in which the first unstable
    /// offset was computed: a publication older than the one shown is
    /// dropped, so a thread preempted between releasing the lock and
    /// publishing cannot move the last stable offset back.
    pub first_unstable_seq: u64,
    /// A flush failed: the data's durability is unknown, so the partition
    /// refuses further appends (Kafka takes the log directory offline).
    pub failed: bool,
    /// The local log's end as far as it counts toward acknowledgements:
    /// fsynced in durable mode, appended in page-cache mode. On a single
    /// replica it moves with the high watermark; on a replicated leader
    /// acks=1 waits for it alone.
    pub local_end: i64,
}

#[derive(Debug)]
pub enum PartitionError {
    /// Deleted or shut down.
    Closed,
    /// A client append to a follower.
    NotLeader,
    Storage(StorageError),
    Failed,
    Producer(ProducerError),
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    /// `MAX_VERIFICATION_STATES` transaction verifications are in progress
    /// here; answered as a coordinator that cannot tell yet (retriable).
    TooManyVerifications,
}

impl PartitionError {
    pub fn code(&self) -> ResponseError {
        match self {
            PartitionError::Closed | PartitionError::NotLeader => {
                ResponseError::NotLeaderOrFollower
            }
            PartitionError::Storage(StorageError::OffsetOutOfRange { .. }) => {
                ResponseError::OffsetOutOfRange
            }
            PartitionError::Storage(StorageError::CorruptRecords { .. }) => {
                ResponseError::CorruptMessage
            }
            PartitionError::Storage(_) | PartitionError::Failed => ResponseError::KafkaStorageError,
            PartitionError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            PartitionError::Producer(e) => ResponseError::try_from_code(e.kafka_error_code())
                .unwrap_or(ResponseError::UnknownServerError),
            PartitionError::TooManyVerifications => ResponseError::ConcurrentTransactions,
        }
    }
}

impl std::fmt::Display for PartitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartitionError::Closed => f.write_str("partition is closed"),
            PartitionError::NotLeader => f.write_str("this replica is not the leader"),
            PartitionError::Storage(e) => write!(f, "{e}"),
            PartitionError::Failed => f.write_str("partition is offline after a failed flush"),
            PartitionError::Producer(e) => write!(f, "{e}"),
            PartitionError::TooManyVerifications => {
                f.write_str("too many transaction verifications in progress")
            }
            PartitionError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            } => {
                write!(f, "offset {offset} is outside [{log_start}, {log_end}]")
            }
        }
    }
}

pub struct AppendOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// A retried idempotent batch: nothing was appended, the offsets are the
    /// original append's.
    pub duplicate: bool,
    /// For a duplicate, the max timestamp the original batch was recorded
    /// with (Kafka acknowledges a duplicate with it as logAppendTime);
    /// `NO_TIMESTAMP` (-1) otherwise.
    pub duplicate_timestamp: i64,
    /// The leadership the append was made in (see [`Partition::wait_for_ack`]).
    pub leadership: u64,
}

/// A fetch's view of one partition: the bytes to send plus the offsets the
/// response reports. The bytes are read after the log lock is released.
pub struct FetchRead {
    pub plan: Option<ReadPlan>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Aborted transactions overlapping the range (read_committed only).
    pub aborted: Vec<AbortedTxn>,
}

impl FetchRead {
    pub fn read(&self) -> std::io::Result<Bytes> {
        match &self.plan {
            Some(p) => p.read(),
            None => Ok(Bytes::new()),
        }
    }
}

pub struct Partition {
    pub topic: Arc<str>,
    pub index: i32,
    dir: PathBuf,
    /// Swapped whole when the topic's configs change.
    settings: RwLock<Arc<TopicSettings>>,
    /// `None` once closed or deleted.
    log: Mutex<Option<PartitionLog>>,
    state: watch::Sender<PartitionState>,
    flush_wanted: Notify,
    /// Messages appended since the last flush (page-cache mode trigger).
    unflushed_messages: AtomicI64,
    /// Counts computations of the first unstable offset (see
    /// `PartitionState::first_unstable_seq`).
    first_unstable_seq: AtomicU64,
    pub metrics: crate::metrics::PartitionMetrics,
    /// See `partition/replication.rs`.
    leader_epoch: AtomicI32,
    is_leader: AtomicBool,
    leader_id: AtomicI32,
    /// Counts the times this replica stopped leading, bumped under the log
    /// lock: an append remembers it, and its acknowledgement is refused once
    /// it moved (the records may be truncated away, and a high watermark
    /// learned later as a follower says nothing about them).
    leadership: AtomicU64,
    /// True while this node leads with followers (replication factor > 1):
    /// the high watermark then follows the ISR (`partition/leader.rs`).
    /// False keeps the single-replica path exactly as it always was.
    replicated: AtomicBool,
    /// Replicas, ISR and the followers' fetch state (`partition/leader.rs`).
    assignment: Mutex<leader::Assignment>,
    /// `replica.lag.time.max.ms`, set by the `ReplicaManager`.
    replica_lag_ms: AtomicI64,
    /// This partition, for queueing itself on the [`LogFlusher`].
    me: Weak<Partition>,
    /// Set while queued on the [`LogFlusher`]: queued at most once.
    flush_queued: AtomicBool,
    /// The durable-mode flusher; [`LogFlusher::global`] unless a test
    /// chose another.
    flusher: OnceLock<Arc<LogFlusher>>,
    /// Device of the partition directory's filesystem, found on first
    /// flush (the flusher groups its syncs by filesystem).
    device: OnceLock<u64>,
}

/// What the single-writer lock guards: the log and the producer state that
/// must change in step with it.
pub struct PartitionLog {
    pub log: Log,
    pub producers: ProducerStateManager,
    pub txn_index: TransactionIndex,
}

impl PartitionLog {
    /// Snapshots producer state at `offset`; the transaction index must be
    /// durable first, since replay after the snapshot cannot re-derive the
    /// aborts before it.
    fn snapshot(&mut self, offset: i64) -> Result<(), StorageError> {
        self.txn_index.sync()?;
        self.producers.take_snapshot(offset)
    }
}

impl PartitionState {
    /// Kafka's last stable offset: consumers in read_committed mode see
    /// nothing at or beyond it.
    pub fn last_stable_offset(&self) -> i64 {
        self.high_watermark.min(self.first_unstable_offset)
    }
}

/// Per-partition record of a log start offset moved by DeleteRecords.
const LOG_START_CHECKPOINT: &str = "log-start-offset.checkpoint";

fn read_log_start_checkpoint(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(LOG_START_CHECKPOINT)).ok()?;
    text.trim().parse().ok().filter(|v: &i64| *v >= 0)
}

pub fn log_config(settings: &TopicSettings) -> LogConfig {
    LogConfig {
        segment_bytes: settings.segment_bytes.max(14) as u64,
        segment_ms: settings.segment_ms.max(1) as u64,
        segment_index_bytes: settings.segment_index_bytes.max(8) as u32,
        index_interval_bytes: settings.index_interval_bytes.max(0) as u32,
    }
}

impl Partition {
    pub fn open(
        topic: Arc<str>,
        index: i32,
        dir: &Path,
        settings: TopicSettings,
        recovery_point: Option<i64>,
    ) -> Result<Arc<Partition>, StorageError> {
        // `recovery_point`: `None` after a clean shutdown (see `Log::load`).
        let mut log = Log::load(dir, log_config(&settings), recovery_point)?;
        if let Some(start) = read_log_start_checkpoint(dir) {
            if start > log.log_start_offset() {
                log.set_log_start_offset(start)?;
            }
        }
        // A single node leads every partition at epoch 0 (Kafka's first
        // election); becoming leader records the epoch's start at once.
        let leader_epoch = log.leader_epochs().latest_epoch().unwrap_or(0).max(0);
        log.assign_epoch_start_offset(leader_epoch, log.log_end_offset())?;
        let mut producers =
            ProducerStateManager::load(dir, &log, settings.producer_id_expiration_ms, now_ms())?;
        let end = log.log_end_offset();
        let mut txn_index = TransactionIndex::open(dir, log.log_start_offset(), end)?;
        for aborted in producers.take_replayed_aborts() {
            txn_index.append(aborted)?;
        }
        let state = PartitionState {
            high_watermark: end,
            log_start_offset: log.log_start_offset(),
            first_unstable_offset: producers.first_unstable_offset().unwrap_or(i64::MAX),
            first_unstable_seq: 0,
            failed: false,
            local_end: end,
        };
        let (tx, _) = watch::channel(state);
        Ok(Arc::new_cyclic(|me| Partition {
            topic,
            index,
            dir: dir.to_path_buf(),
            settings: RwLock::new(Arc::new(settings)),
            log: Mutex::new(Some(PartitionLog {
                log,
                producers,
                txn_index,
            })),
            state: tx,
            flush_wanted: Notify::new(),
            unflushed_messages: AtomicI64::new(0),
            first_unstable_seq: AtomicU64::new(0),
            metrics: Default::default(),
            leader_epoch: AtomicI32::new(leader_epoch),
            is_leader: AtomicBool::new(true),
            leader_id: AtomicI32::new(-1),
            leadership: AtomicU64::new(0),
            replicated: AtomicBool::new(false),
            assignment: Mutex::new(leader::Assignment::default()),
            replica_lag_ms: AtomicI64::new(30_000),
            me: me.clone(),
            flush_queued: AtomicBool::new(false),
            flusher: OnceLock::new(),
            device: OnceLock::new(),
        }))
    }

    pub fn settings(&self) -> Arc<TopicSettings> {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies changed topic configs: later appends, rolls and flushes use
    /// them; nothing already written changes.
    pub fn update_settings(&self, settings: TopicSettings) {
        if let Some(plog) = self.lock().as_mut() {
            plog.log.set_config(log_config(&settings));
            plog.producers
                .set_expiration_ms(settings.producer_id_expiration_ms);
        }
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
        // The flusher re-reads its period and mode.
        self.flush_wanted.notify_one();
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Option<PartitionLog>> {
        // A poisoned lock means a panic mid-append; the log's own invariants
        // (offsets, indexes) are re-established on the next recovery, so keep
        // serving rather than cascading the panic to every client.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> PartitionState {
        *self.state.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<PartitionState> {
        self.state.subscribe()
    }

    /// Appends validated batches, assigning their offsets as they are
    /// written (`records` itself is not changed). The caller has validated
    /// `records`; this is the only place offsets are assigned.
    pub fn append(
        &self,
        records: &[u8],
        validated: &ValidatedRecords,
    ) -> Result<AppendOutcome, PartitionError> {
        self.append_verified(records, validated, None)
    }

    /// [`Partition::append`] of a verified producer's batch: with
    /// `verification` set, a transactional batch that does not continue a
    /// transaction open here must present the guard of the current
    /// verification, or it is refused with INVALID_TXN_STATE (the
    /// transaction ended, or its verification went stale, in between).
    /// With or without it, a producer's batch is checked against the
    /// verification in progress for the producer here, if any (its lowest
    /// sequence: `ProducerStateManager::check_verified`).
    pub fn append_verified(
        &self,
        records: &[u8],
        validated: &ValidatedRecords,
        verification: Option<VerificationGuard>,
    ) -> Result<AppendOutcome, PartitionError> {
        let now = now_ms();
        let mut guard = self.lock();
        let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
        self.check_leader_appendable()?;
        // Produce v3+ carries one batch per partition; idempotence is
        // checked against it before anything is written.
        let first = validated.batches.first().map(|b| b.header);
        if let Some(h) = &first {
            match plog
                .producers
                .check_verified(h, verification)
                .map_err(PartitionError::Producer)?
            {
                ProducerCheck::Append => {}
                ProducerCheck::Duplicate(meta) => {
                    tracing::debug!(topic = %self.topic, partition = self.index, producer_id = h.producer_id, first_seq = h.base_sequence, "duplicate batch");
                    return Ok(AppendOutcome {
                        base_offset: meta.first_offset,
                        last_offset: meta.last_offset,
                        log_start_offset: plog.log.log_start_offset(),
                        duplicate: true,
                        duplicate_timestamp: meta.timestamp,
                        leadership: self.leadership(),
                    });
                }
            }
        }
        let active_before = plog.log.active_segment_base_offset();
        let result = plog
            .log
            .append_as_leader(records, now, self.leader_epoch())
            .map_err(|e| self.storage_failure(e, "appending to"))?;
        if plog.log.active_segment_base_offset() != active_before {
            // Kafka snapshots producer state at each roll, so recovery only
            // replays the active segment.
            if let Err(e) = plog.snapshot(result.first_offset) {
                tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "producer state snapshot failed");
            }
        }
        let mut offset = result.first_offset;
        for b in &validated.batches {
            let mut h = b.header;
            h.base_offset = offset;
            plog.producers.apply(&h);
            offset = h.last_offset() + 1;
        }
        plog.producers.maybe_remove_expired(now);
        let end = plog.log.log_end_offset();
        let log_start = plog.log.log_start_offset();
        let first_unstable = self.first_unstable_under_lock(&plog.producers);
        let leadership = self.leadership();
        drop(guard);
        self.publish_first_unstable(first_unstable);
        self.after_append(end, validated.record_count.max(1));
        self.metrics.appended(records.len(), validated.record_count);
        Ok(AppendOutcome {
            base_offset: result.first_offset,
            last_offset: result.last_offset,
            log_start_offset: log_start,
            duplicate: false,
            duplicate_timestamp: -1,
            leadership,
        })
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1 = the high
    /// watermark), deleting whole segments below it. Persisted before any
    /// segment goes, so a crash cannot bring deleted records back.
    pub fn delete_records(&self, offset: i64) -> Result<i64, PartitionError> {
        let mut guard = self.lock();
        let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
        let hw = self.state.borrow().high_watermark;
        let target = if offset == -1 { hw } else { offset };
        let log_start = plog.log.log_start_offset();
        if target < 0 || target > hw {
            return Err(PartitionError::OffsetOutOfRange {
                offset,
                log_start,
                log_end: hw,
            });
        }
        if target > log_start {
            write_atomically(
                &self.dir.join(LOG_START_CHECKPOINT),
                format!("{target}\n").as_bytes(),
            )
            .map_err(|e| {
                PartitionError::Storage(StorageError::io(
                    &self.dir,
                    "write log start checkpoint",
                    e,
                ))
            })?;
            plog.log
                .set_log_start_offset(target)
                .map_err(PartitionError::Storage)?;
        }
        let start = plog.log.log_start_offset();
        drop(guard);
        self.publish_log_start(start);
        Ok(start)
    }

    /// A storage error on this partition's log: an I/O error of the
    /// failed-disk kind takes the log directory offline (Kafka's
    /// `maybeHandleIOException`); every error is answered to the request.
    fn storage_failure(&self, e: StorageError, doing: &str) -> PartitionError {
        if let StorageError::Io { source, .. } = &e {
            crate::broker::log_dir_failure::maybe_add_offline_log_dir(
                crate::broker::log_dir_failure::log_dir_of(&self.dir),
                &format!(
                    "Error while {doing} log for {}-{} in dir {}: {e}",
                    self.topic,
                    self.index,
                    self.dir.display()
                ),
                source,
            );
        }
        PartitionError::Storage(e)
    }

    /// What an append as leader needs besides the open log: the partition
    /// not failed on a storage error, and still the leader.
    fn check_leader_appendable(&self) -> Result<(), PartitionError> {
        if self.state.borrow().failed {
            return Err(PartitionError::Failed);
        }
        if !self.is_leader() {
            return Err(PartitionError::NotLeader);
        }
        Ok(())
    }

    /// Publishes a new log start offset (waiters wake only when it moved).
    /// Called after the partition lock is released.
    fn publish_log_start(&self, start: i64) {
        self.state.send_if_modified(|s| {
            let moved = s.log_start_offset != start;
            s.log_start_offset = start;
            moved
        });
    }

    /// Publishes a new first unstable offset (LSO waiters wake only when it
    /// moved). Called after the partition lock is released.
    fn publish_first_unstable(&self, (first_unstable, seq): (i64, u64)) {
        self.state.send_if_modified(|s| {
            if seq <= s.first_unstable_seq {
                return false;
            }
            s.first_unstable_seq = seq;
            let moved = s.first_unstable_offset != first_unstable;
            s.first_unstable_offset = first_unstable;
            moved
        });
    }

    /// The first unstable offset with its place in the order of
    /// computations; call with the partition lock held.
    pub(super) fn first_unstable_under_lock(&self, producers: &ProducerStateManager) -> (i64, u64) {
        let seq = self.first_unstable_seq.fetch_add(1, Ordering::AcqRel) + 1;
        (producers.first_unstable_offset().unwrap_or(i64::MAX), seq)
    }

    /// Durable mode: queue on the [`LogFlusher`] (the high watermark
    /// follows the fsync). Page-cache mode: the high watermark moves now.
    fn after_append(&self, end: i64, records: i64) {
        let settings = self.settings();
        let unflushed = self.unflushed_messages.fetch_add(records, Ordering::AcqRel) + records;
        if settings.durable {
            self.request_durable_flush();
        } else if self.replicated.load(Ordering::Acquire) {
            self.state.send_if_modified(|s| {
                let moved = s.local_end < end;
                s.local_end = s.local_end.max(end);
                moved
            });
            self.maybe_increment_high_watermark();
            if unflushed >= settings.flush_messages {
                self.flush_wanted.notify_one();
            }
        } else {
            self.state.send_if_modified(|s| {
                let moved = s.high_watermark < end;
                s.high_watermark = s.high_watermark.max(end);
                s.local_end = s.local_end.max(end);
                moved
            });
            if unflushed >= settings.flush_messages {
                self.flush_wanted.notify_one();
            }
        }
    }

    /// The idempotent producers this partition knows (DescribeProducers).
    pub fn producers(&self) -> Result<Vec<ProducerStateEntry>, PartitionError> {
        let guard = self.lock();
        let plog = guard.as_ref().ok_or(PartitionError::Closed)?;
        Ok(plog.producers.producers().cloned().collect())
    }

    /// Waits until `end_offset` (exclusive) is covered by the high watermark,
    /// i.e. flushed in durable mode. Errors with the code to return.
    pub async fn wait_for_high_watermark(
        &self,
        end_offset: i64,
        deadline: tokio::time::Instant,
    ) -> Result<(), ResponseError> {
        let mut rx = self.state.subscribe();
        let waited = tokio::time::timeout_at(
            deadline,
            rx.wait_for(|s| s.failed || s.high_watermark >= end_offset),
        )
        .await;
        match waited {
            Ok(Ok(s)) if s.failed => Err(ResponseError::KafkaStorageError),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ResponseError::NotLeaderOrFollower),
            Err(_) => Err(ResponseError::RequestTimedOut),
        }
    }

    /// Plans a read for a consumer fetch: never past the high watermark.
    /// Plans a read_uncommitted read (up to the high watermark).
    pub fn fetch(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<FetchRead, PartitionError> {
        self.fetch_isolated(offset, max_bytes, min_one_batch, false)
    }

    /// Plans a read up to the high watermark, or for read_committed up to
    /// the last stable offset together with the aborted transactions.
    pub fn fetch_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
    ) -> Result<FetchRead, PartitionError> {
        self.fetch_upto(offset, max_bytes, min_one_batch, read_committed, false)
    }

    /// A follower's fetch reads up to the log end (Kafka's `FetchLogEnd`),
    /// not the high watermark: its fetch offset is what moves the high
    /// watermark.
    pub fn fetch_for_follower(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<FetchRead, PartitionError> {
        self.fetch_upto(offset, max_bytes, min_one_batch, false, true)
    }

    fn fetch_upto(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
        to_log_end: bool,
    ) -> Result<FetchRead, PartitionError> {
        let guard = self.lock();
        let plog = guard.as_ref().ok_or(PartitionError::Closed)?;
        let log = &plog.log;
        let state = *self.state.borrow();
        let log_start = log.log_start_offset();
        let log_end = log.log_end_offset();
        if offset < log_start || offset > log_end {
            return Err(PartitionError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            });
        }
        let hw = state.high_watermark;
        let lso = state.last_stable_offset();
        // read_committed readers stop at the last stable offset.
        let upper = if to_log_end {
            log_end
        } else if read_committed {
            lso
        } else {
            hw
        };
        let plan = if offset < upper {
            Some(
                log.read_plan(offset, max_bytes, min_one_batch, upper)
                    .map_err(PartitionError::Storage)?,
            )
        } else {
            None
        };
        let aborted = if read_committed {
            plog.txn_index.collect(offset, upper)
        } else {
            Vec::new()
        };
        Ok(FetchRead {
            plan,
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log_start,
            aborted,
        })
    }

    /// Appends key/value records the broker writes itself (coordinator
    /// state) as one uncompressed batch, validated as a producer's would be
    /// (sizes, keys on compacted topics). `producer` stamps it as a
    /// transactional batch without sequence numbers, the way Kafka's
    /// coordinators write transactional offset commits.
    pub fn append_records(
        &self,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
        producer: Option<(i64, i16)>,
    ) -> Result<AppendOutcome, ResponseError> {
        let now = now_ms();
        let build = |b: BatchBuilder| {
            records
                .iter()
                .fold(b, |b, (k, v)| b.push(Some(k), v.as_deref(), &[], now))
                .build()
        };
        let mut buf = build(BatchBuilder::new(now));
        let settings = self.settings();
        let vcfg = ValidationConfig {
            max_message_bytes: settings.max_message_bytes.max(0) as usize,
            single_batch: true,
            compacted: settings.compacted,
            ..Default::default()
        };
        // Produce validation refuses a producer id without sequences (only
        // clients must send them), so validate the plain batch, then stamp
        // the transactional header and take it from the bytes appended.
        let mut validated = crate::record::validator::validate_produce_records(&buf, now, &vcfg).map_err(|e| {
            tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "internal records rejected");
            ResponseError::try_from_code(e.kafka_error_code()).unwrap_or(ResponseError::UnknownServerError)
        })?;
        if let Some((producer_id, epoch)) = producer {
            buf = build(
                BatchBuilder::new(now)
                    .producer(producer_id, epoch, -1)
                    .transactional(true),
            );
            let header = BatchHeader::parse(&buf).map_err(|_| ResponseError::UnknownServerError)?;
            if let Some(first) = validated.batches.first_mut() {
                first.header = header;
            }
        }
        self.append(&buf, &validated).map_err(|e| {
            tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "appending internal records");
            e.code()
        })
    }

    /// The offset consumers of this isolation level may not reach.
    fn visible_end(&self, read_committed: bool) -> i64 {
        let s = *self.state.borrow();
        if read_committed {
            s.last_stable_offset()
        } else {
            s.high_watermark
        }
    }

    /// First offset whose record timestamp is ≥ `ts`, below the high
    /// watermark (the last stable offset for read_committed).
    pub fn offset_for_timestamp(
        &self,
        ts: i64,
        read_committed: bool,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let guard = self.lock();
        let log = &guard.as_ref().ok_or(PartitionError::Closed)?.log;
        let end = self.visible_end(read_committed);
        let found = log
            .offset_for_timestamp(ts)
            .map_err(PartitionError::Storage)?;
        Ok(found
            .filter(|f| f.offset < end)
            .map(|f| (f.timestamp, f.offset)))
    }

    /// Timestamp and offset of the record with the largest timestamp, if it
    /// is visible at this isolation level (Kafka answers -1 otherwise).
    pub fn max_timestamp(
        &self,
        read_committed: bool,
    ) -> Result<Option<(i64, i64)>, PartitionError> {
        let guard = self.lock();
        let log = &guard.as_ref().ok_or(PartitionError::Closed)?.log;
        let end = self.visible_end(read_committed);
        let found = log
            .max_timestamp_and_offset()
            .map_err(PartitionError::Storage)?;
        Ok(found
            .filter(|f| f.offset < end)
            .map(|f| (f.timestamp, f.offset)))
    }

    pub fn log_end_offset(&self) -> Option<i64> {
        self.lock().as_ref().map(|l| l.log.log_end_offset())
    }

    /// The log's recovery point (`Log::recovery_point`), if it is open.
    pub fn recovery_point(&self) -> Option<i64> {
        self.lock().as_ref().map(|l| l.log.recovery_point())
    }

    /// Flushes and closes the log; later appends and reads see `Closed`.
    pub fn close(&self) -> Result<(), StorageError> {
        let log = self.lock().take();
        self.flush_wanted.notify_one();
        match log {
            Some(mut plog) => {
                // A snapshot at the log end lets the next start skip the
                // producer-state replay.
                let end = plog.log.log_end_offset();
                plog.snapshot(end)?;
                plog.log.close()
            }
            None => Ok(()),
        }
    }

    /// Closes the log and removes its directory (DeleteTopics).
    pub fn delete(&self) -> Result<(), StorageError> {
        let log = self.lock().take();
        self.flush_wanted.notify_one();
        // Wake waiters so they fail fast instead of timing out.
        self.state.send_modify(|s| s.failed = true);
        match log {
            Some(plog) => plog.log.delete(),
            None => Ok(()),
        }
    }

    /// Bytes of log segments on disk (DescribeLogDirs); `None` once closed.
    pub fn size_bytes(&self) -> Option<u64> {
        self.lock().as_ref().map(|l| l.log.size_bytes())
    }

    /// Retention (Kafka's `deleteOldSegments`) under the lock: only renames
    /// and, when every segment goes, a roll. Returns the `.deleted` files for
    /// the caller to remove after `file.delete.delay.ms`.
    pub fn delete_old_segments(&self, now_ms: i64) -> Result<Vec<PathBuf>, PartitionError> {
        let settings = self.settings();
        let policy = crate::storage::retention::RetentionPolicy {
            delete: settings.cleanup_delete,
            retention_ms: settings.retention_ms,
            retention_bytes: settings.retention_bytes,
        };
        let mut guard = self.lock();
        let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
        let hw = self.state.borrow().high_watermark;
        let active_before = plog.log.active_segment_base_offset();
        let deleted = plog
            .log
            .delete_old_segments(&policy, hw, now_ms)
            .map_err(PartitionError::Storage)?;
        if deleted.is_empty() {
            return Ok(deleted);
        }
        if plog.log.active_segment_base_offset() != active_before {
            // Rolled to delete the old active segment: snapshot as at any roll.
            let end = plog.log.log_end_offset();
            if let Err(e) = plog.snapshot(end) {
                tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "producer state snapshot failed");
            }
        }
        let start = plog.log.log_start_offset();
        if let Err(e) = plog.txn_index.prune_below(start) {
            tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "pruning the transaction index failed");
        }
        drop(guard);
        self.publish_log_start(start);
        Ok(deleted)
    }
}

pub mod leader;
mod replication;
mod transactions;
pub use replication::NO_LEADER_EPOCH;
mod cleaning;
mod flush;
pub mod removal;
#[cfg(test)]
mod tests;
pub use cleaning::CleanerView;
