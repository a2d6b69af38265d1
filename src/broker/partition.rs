//! One topic-partition on this broker: its log behind the single-writer lock,
//! its high watermark, and the group-commit flusher that makes appends durable.
//!
//! Durable mode (`flush.messages` = 1, kastle's default): an append only
//! reaches consumers and acknowledgements once a flush has covered it, and one
//! fsync covers every append that arrived while the previous fsync ran
//! (group commit). Page-cache mode (`flush.messages` > 1, Kafka's default
//! behaviour): the high watermark moves on append and the flusher runs every
//! `flush.messages` messages or `flush.ms`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::{watch, Notify};

use crate::broker::now_ms;
use crate::broker::topics::write_atomically;
use crate::broker::topic_config::TopicSettings;
use crate::record::batch::ValidatedRecords;
use crate::storage::producer_state::{
    ProducerCheck, ProducerError, ProducerStateEntry, ProducerStateManager,
};
use crate::storage::{Log, LogConfig, ReadPlan, StorageError};

/// What readers may see of the partition; published on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// A flush failed: the data's durability is unknown, so the partition
    /// refuses further appends (Kafka takes the log directory offline).
    pub failed: bool,
}

#[derive(Debug)]
pub enum PartitionError {
    /// Deleted or shut down.
    Closed,
    Storage(StorageError),
    Failed,
    Producer(ProducerError),
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
}

impl PartitionError {
    pub fn code(&self) -> ResponseError {
        match self {
            PartitionError::Closed => ResponseError::NotLeaderOrFollower,
            PartitionError::Storage(StorageError::OffsetOutOfRange { .. }) => {
                ResponseError::OffsetOutOfRange
            }
            PartitionError::Storage(_) | PartitionError::Failed => ResponseError::KafkaStorageError,
            PartitionError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            PartitionError::Producer(e) => ResponseError::try_from_code(e.kafka_error_code())
                .unwrap_or(ResponseError::UnknownServerError),
        }
    }
}

impl std::fmt::Display for PartitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartitionError::Closed => f.write_str("partition is closed"),
            PartitionError::Storage(e) => write!(f, "{e}"),
            PartitionError::Failed => f.write_str("partition is offline after a failed flush"),
            PartitionError::Producer(e) => write!(f, "{e}"),
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
}

/// A fetch's view of one partition: the bytes to send plus the offsets the
/// response reports. The bytes are read after the log lock is released.
pub struct FetchRead {
    pub plan: Option<ReadPlan>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
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
}

/// What the single-writer lock guards: the log and the producer state that
/// must change in step with it.
pub struct PartitionLog {
    pub log: Log,
    pub producers: ProducerStateManager,
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
        needs_recovery: bool,
    ) -> Result<Arc<Partition>, StorageError> {
        let mut log = Log::open(dir, log_config(&settings), needs_recovery)?;
        if let Some(start) = read_log_start_checkpoint(dir) {
            if start > log.log_start_offset() {
                log.set_log_start_offset(start)?;
            }
        }
        let producers =
            ProducerStateManager::load(dir, &log, settings.producer_id_expiration_ms, now_ms())?;
        let end = log.log_end_offset();
        let state = PartitionState {
            high_watermark: end,
            log_start_offset: log.log_start_offset(),
            failed: false,
        };
        let (tx, _) = watch::channel(state);
        Ok(Arc::new(Partition {
            topic,
            index,
            dir: dir.to_path_buf(),
            settings: RwLock::new(Arc::new(settings)),
            log: Mutex::new(Some(PartitionLog { log, producers })),
            state: tx,
            flush_wanted: Notify::new(),
            unflushed_messages: AtomicI64::new(0),
        }))
    }

    pub fn settings(&self) -> Arc<TopicSettings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies changed topic configs: later appends, rolls and flushes use
    /// them; nothing already written changes.
    pub fn update_settings(&self, settings: TopicSettings) {
        if let Some(plog) = self.lock().as_mut() {
            plog.log.set_config(log_config(&settings));
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

    /// Appends validated batches, assigning offsets in place. The caller has
    /// validated `records`; this is the only place offsets are assigned.
    pub fn append(
        &self,
        records: &mut [u8],
        validated: &ValidatedRecords,
    ) -> Result<AppendOutcome, PartitionError> {
        let now = now_ms();
        let mut guard = self.lock();
        let plog = guard.as_mut().ok_or(PartitionError::Closed)?;
        if self.state.borrow().failed {
            return Err(PartitionError::Failed);
        }
        // Produce v3+ carries one batch per partition; idempotence is
        // checked against it before anything is written.
        let first = validated.batches.first().map(|b| b.header);
        if let Some(h) = &first {
            match plog.producers.check(h).map_err(PartitionError::Producer)? {
                ProducerCheck::Append => {}
                ProducerCheck::Duplicate(meta) => {
                    tracing::debug!(topic = %self.topic, partition = self.index, producer_id = h.producer_id, first_seq = h.base_sequence, "duplicate batch");
                    return Ok(AppendOutcome {
                        base_offset: meta.first_offset,
                        last_offset: meta.last_offset,
                        log_start_offset: plog.log.log_start_offset(),
                        duplicate: true,
                    });
                }
            }
        }
        let active_before = plog.log.active_segment_base_offset();
        let result = plog
            .log
            .append(records, now)
            .map_err(PartitionError::Storage)?;
        if plog.log.active_segment_base_offset() != active_before {
            // Kafka snapshots producer state at each roll, so recovery only
            // replays the active segment.
            if let Err(e) = plog.producers.take_snapshot(result.first_offset) {
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
        drop(guard);
        let settings = self.settings();
        let count = validated.record_count.max(1);
        let unflushed = self.unflushed_messages.fetch_add(count, Ordering::AcqRel) + count;
        if settings.durable {
            self.flush_wanted.notify_one();
        } else {
            self.state.send_if_modified(|s| {
                let moved = s.high_watermark < end;
                s.high_watermark = s.high_watermark.max(end);
                moved
            });
            if unflushed >= settings.flush_messages {
                self.flush_wanted.notify_one();
            }
        }
        Ok(AppendOutcome {
            base_offset: result.first_offset,
            last_offset: result.last_offset,
            log_start_offset: log_start,
            duplicate: false,
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
            return Err(PartitionError::OffsetOutOfRange { offset, log_start, log_end: hw });
        }
        if target > log_start {
            write_atomically(&self.dir.join(LOG_START_CHECKPOINT), format!("{target}\n").as_bytes())
                .map_err(|e| PartitionError::Storage(StorageError::io(&self.dir, "write log start checkpoint", e)))?;
            plog.log.set_log_start_offset(target).map_err(PartitionError::Storage)?;
        }
        let start = plog.log.log_start_offset();
        drop(guard);
        self.state.send_if_modified(|s| {
            let moved = s.log_start_offset != start;
            s.log_start_offset = start;
            moved
        });
        Ok(start)
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
    pub fn fetch(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<FetchRead, PartitionError> {
        let guard = self.lock();
        let log = &guard.as_ref().ok_or(PartitionError::Closed)?.log;
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
        let plan = if offset < hw {
            Some(
                log.read_plan(offset, max_bytes, min_one_batch, hw)
                    .map_err(PartitionError::Storage)?,
            )
        } else {
            None
        };
        Ok(FetchRead {
            plan,
            high_watermark: hw,
            last_stable_offset: hw,
            log_start_offset: log_start,
        })
    }

    /// First offset whose record timestamp is ≥ `ts`, below the high watermark.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, PartitionError> {
        let guard = self.lock();
        let log = &guard.as_ref().ok_or(PartitionError::Closed)?.log;
        let hw = self.state.borrow().high_watermark;
        let found = log
            .offset_for_timestamp(ts)
            .map_err(PartitionError::Storage)?;
        Ok(found
            .filter(|f| f.offset < hw)
            .map(|f| (f.timestamp, f.offset)))
    }

    /// Timestamp and offset of the record with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, PartitionError> {
        let guard = self.lock();
        let log = &guard.as_ref().ok_or(PartitionError::Closed)?.log;
        let hw = self.state.borrow().high_watermark;
        let found = log
            .max_timestamp_and_offset()
            .map_err(PartitionError::Storage)?;
        Ok(found
            .filter(|f| f.offset < hw)
            .map(|f| (f.timestamp, f.offset)))
    }

    pub fn log_end_offset(&self) -> Option<i64> {
        self.lock().as_ref().map(|l| l.log.log_end_offset())
    }

    /// The flusher: one per partition, for the partition's lifetime.
    pub async fn run_flusher(self: Arc<Self>) {
        loop {
            let flush_ms = self.settings().flush_ms;
            let period = if flush_ms <= 0 || flush_ms == i64::MAX {
                None
            } else {
                Some(Duration::from_millis(flush_ms as u64))
            };
            match period {
                Some(p) => {
                    let _ = tokio::time::timeout(p, self.flush_wanted.notified()).await;
                }
                None => self.flush_wanted.notified().await,
            }
            match self.flush_once().await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(topic = %self.topic, partition = self.index, error = %e, "flush failed; partition taken offline");
                    self.state.send_modify(|s| s.failed = true);
                    return;
                }
            }
        }
    }

    /// Flushes whatever is unflushed. Ok(false) once the log is closed.
    async fn flush_once(&self) -> Result<bool, StorageError> {
        let plan = {
            let guard = self.lock();
            match guard.as_ref() {
                Some(plog) => plog.log.unflushed_files(),
                None => return Ok(false),
            }
        };
        let up_to = plan.up_to;
        self.unflushed_messages.store(0, Ordering::Release);
        if !plan.files.is_empty() {
            tokio::task::spawn_blocking(move || plan.sync())
                .await
                .map_err(|e| {
                    StorageError::io(&self.dir, "fsync", std::io::Error::other(e.to_string()))
                })?
                .map_err(|e| StorageError::io(&self.dir, "fsync", e))?;
        }
        {
            let mut guard = self.lock();
            match guard.as_mut() {
                Some(plog) => plog.log.mark_flushed(up_to),
                None => return Ok(false),
            }
        }
        if self.settings().durable {
            self.state.send_if_modified(|s| {
                let moved = s.high_watermark < up_to;
                s.high_watermark = s.high_watermark.max(up_to);
                moved
            });
        }
        Ok(true)
    }

    /// Flushes and closes the log; later appends and reads see `Closed`.
    pub fn close(&self) -> Result<(), StorageError> {
        let log = self.lock().take();
        self.flush_wanted.notify_one();
        match log {
            Some(mut plog) => {
                // A snapshot at the log end lets the next start skip the
                // producer-state replay.
                plog.producers.take_snapshot(plog.log.log_end_offset())?;
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
}
