//! A replica that leaves this broker while its topic stays (Kafka's
//! `ReplicaManager.stopPartitions` with deletion and `LogManager.asyncDelete`):
//! the log is closed (no file handle stays open), its directory renamed to
//! `<topic>-<partition>.<uuid>-delete` (Kafka's `UnifiedLog.logDeleteDirName`)
//! and removed in the background. The `Partition` stays in its topic,
//! detached (no log, no directory); a broker restarted later opens it
//! detached again (`TopicManager::load` in a cluster), so the replica is
//! not resurrected, and a reassignment back here gives it a fresh, empty
//! log ([`Partition::reattach_empty`]) that the follower fills from the
//! leader.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::{watch, Notify};

use super::{leader, Partition, PartitionState};
use crate::broker::topic_config::TopicSettings;
use crate::storage::StorageError;

/// Kafka's `LogFileUtils.DELETE_DIR_SUFFIX`.
pub const DELETE_DIR_SUFFIX: &str = "-delete";

/// Where a removed log's directory goes before it is deleted.
pub fn delete_dir_name(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    dir.with_file_name(format!("{name}.{unique}{DELETE_DIR_SUFFIX}"))
}

/// Removes a renamed directory (blocking; run it off the async threads).
pub fn remove_renamed(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => tracing::info!(dir = %dir.display(), "deleted removed replica's log"),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "deleting removed replica's log")
        }
    }
}

/// Directories a crash left renamed for deletion (Kafka's `loadLogs`
/// deletes them at start-up): removed now.
pub fn remove_leftover_deletions(log_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let renamed = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(DELETE_DIR_SUFFIX) && n.contains('.'));
        if renamed && path.is_dir() {
            remove_renamed(&path);
        }
    }
}

impl Partition {
    /// A partition of a local topic with no local replica: no log, no
    /// directory (see the module doc).
    pub fn detached(
        topic: Arc<str>,
        index: i32,
        dir: &Path,
        settings: TopicSettings,
    ) -> Arc<Partition> {
        let state = PartitionState {
            high_watermark: 0,
            log_start_offset: 0,
            first_unstable_offset: i64::MAX,
            first_unstable_seq: 0,
            failed: false,
            local_end: 0,
        };
        let (tx, _) = watch::channel(state);
        Arc::new_cyclic(|me| Partition {
            topic,
            index,
            dir: dir.to_path_buf(),
            settings: RwLock::new(Arc::new(settings)),
            log: Mutex::new(None),
            state: tx,
            flush_wanted: Notify::new(),
            unflushed_messages: AtomicI64::new(0),
            first_unstable_seq: AtomicU64::new(0),
            metrics: Default::default(),
            leader_epoch: AtomicI32::new(0),
            is_leader: AtomicBool::new(false),
            leader_id: AtomicI32::new(-1),
            leadership: AtomicU64::new(0),
            replicated: AtomicBool::new(false),
            assignment: Mutex::new(leader::Assignment::default()),
            replica_lag_ms: AtomicI64::new(30_000),
            me: me.clone(),
            flush_queued: AtomicBool::new(false),
            flusher: OnceLock::new(),
            device: OnceLock::new(),
        })
    }

    /// Whether this broker holds a log for the partition.
    pub fn has_log(&self) -> bool {
        self.lock().is_some()
    }

    /// Closes the log (its flusher stops, waiting requests fail fast) and
    /// renames its directory for deletion; the renamed directory is
    /// returned for the caller to remove in the background (`None` when
    /// there was no log).
    pub fn detach_log(&self) -> Result<Option<PathBuf>, StorageError> {
        let Some(plog) = self.lock().take() else {
            return Ok(None);
        };
        self.flush_wanted.notify_one();
        self.state.send_modify(|s| s.failed = true);
        // Every segment, index and snapshot file is closed here.
        drop(plog);
        let renamed = delete_dir_name(&self.dir);
        std::fs::rename(&self.dir, &renamed)
            .map_err(|e| StorageError::io(&self.dir, "rename removed replica's log", e))?;
        if let Some(parent) = self.dir.parent() {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| StorageError::io(parent, "fsync log directory", e))?;
        }
        Ok(Some(renamed))
    }

    /// A fresh, empty log for a partition assigned to this broker again;
    /// the caller starts its flusher. A partition that has a log keeps it.
    pub fn reattach_empty(&self) -> Result<bool, StorageError> {
        if self.has_log() {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| StorageError::io(&self.dir, "create log directory", e))?;
        let fresh = Partition::open(
            self.topic.clone(),
            self.index,
            &self.dir,
            (*self.settings()).clone(),
            None,
        )?;
        let plog = fresh.lock().take();
        let state = *fresh.state.borrow();
        let epoch = fresh.leader_epoch();
        *self.lock() = plog;
        self.leader_epoch
            .store(epoch, std::sync::atomic::Ordering::Release);
        self.state.send_modify(|s| *s = state);
        Ok(true)
    }
}
