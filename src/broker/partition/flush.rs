//! How a partition's appends become durable: in durable mode it queues
//! itself on the broker's [`LogFlusher`] and publishes what a pass made
//! durable; in page-cache mode (and for a follower's `flush_for_fetch`) its
//! own flusher task fsyncs its segments on `flush.messages` / `flush.ms`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::Partition;
use crate::broker::log_flusher::LogFlusher;
use crate::storage::{FlushPlan, StorageError};

impl Partition {
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
    pub(super) async fn flush_once(&self) -> Result<bool, StorageError> {
        let Some(plan) = self.flush_plan() else {
            return Ok(false);
        };
        let up_to = plan.up_to;
        if !plan.files.is_empty() {
            tokio::task::spawn_blocking(move || plan.sync())
                .await
                .map_err(|e| {
                    StorageError::io(&self.dir, "fsync", std::io::Error::other(e.to_string()))
                })?
                .map_err(|e| StorageError::io(&self.dir, "fsync", e))?;
        }
        if self.lock().is_none() {
            return Ok(false);
        }
        self.flushed(up_to);
        Ok(true)
    }

    /// Queues this partition on the [`LogFlusher`] unless it is queued.
    pub(super) fn request_durable_flush(&self) {
        if self.flush_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        match self.me.upgrade() {
            Some(me) => self.log_flusher().enqueue(me),
            // Being dropped: nothing left to acknowledge.
            None => self.flush_queued.store(false, Ordering::Release),
        }
    }

    fn log_flusher(&self) -> &Arc<LogFlusher> {
        self.flusher
            .get_or_init(|| Arc::clone(LogFlusher::global()))
    }

    /// Durable flushes of this partition go to `flusher` instead of the
    /// process's (tests: a flusher with a small pass limit). Only before
    /// the first durable append; later calls change nothing.
    pub fn use_log_flusher(&self, flusher: Arc<LogFlusher>) {
        let _ = self.flusher.set(flusher);
    }

    /// Called by the flusher as it takes the partition from its queue.
    pub(crate) fn clear_flush_queued(&self) {
        self.flush_queued.store(false, Ordering::Release);
    }

    /// The files to sync and the offset they cover; `None` once closed.
    pub(crate) fn flush_plan(&self) -> Option<FlushPlan> {
        let guard = self.lock();
        let plan = guard.as_ref()?.log.unflushed_files();
        self.unflushed_messages.store(0, Ordering::Release);
        Some(plan)
    }

    /// The filesystem (device id) of the partition directory.
    pub(crate) fn device(&self) -> u64 {
        *self.device.get_or_init(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&self.dir).map(|m| m.dev()).unwrap_or(0)
        })
    }

    /// Everything below `up_to` is durable: the log's recovery point moves,
    /// and in durable mode the local end and (single replica) the high
    /// watermark follow; a replicated leader's follows its ISR, a
    /// follower's is the leader's to move.
    pub(crate) fn flushed(&self, up_to: i64) {
        {
            let mut guard = self.lock();
            match guard.as_mut() {
                Some(plog) => plog.log.mark_flushed(up_to),
                None => return,
            }
        }
        if self.settings().durable {
            let single = self.is_leader() && !self.replicated.load(Ordering::Acquire);
            self.state.send_if_modified(|s| {
                let moved = s.local_end < up_to || (single && s.high_watermark < up_to);
                s.local_end = s.local_end.max(up_to);
                if single {
                    s.high_watermark = s.high_watermark.max(up_to);
                }
                moved
            });
            if self.replicated.load(Ordering::Acquire) {
                self.maybe_increment_high_watermark();
            }
        }
    }

    /// A flush failed: the data's durability is unknown, so the partition
    /// goes offline (Kafka takes the log directory offline).
    pub(crate) fn flush_failed(&self, e: std::io::Error) {
        crate::broker::log_dir_failure::maybe_add_offline_log_dir(
            crate::broker::log_dir_failure::log_dir_of(&self.dir),
            &format!(
                "Error while flushing log for {}-{} in dir {}",
                self.topic,
                self.index,
                self.dir.display()
            ),
            &e,
        );
        let e = StorageError::io(&self.dir, "fsync", e);
        tracing::error!(topic = %self.topic, partition = self.index, error = %e, "flush failed; partition taken offline");
        self.state.send_modify(|s| s.failed = true);
    }
}
