//! The log directory itself: the lock that keeps a second process out,
//! Kafka's `meta.properties` (cluster id, node id, directory id), the
//! clean-shutdown marker that decides whether the next start recovers, and
//! Kafka's `recovery-point-offset-checkpoint` that says from where.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context};

use crate::storage::offset_checkpoint::{OffsetCheckpointFile, Offsets};
use crate::util::fs::{sync_dir, write_atomically};
use crate::util::now_ms;

/// Kafka's marker for a clean shutdown: when present at start-up the logs
/// need no recovery scan.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const META_PROPERTIES: &str = "meta.properties";
/// Kafka's `LogManager.RecoveryPointCheckpointFile`: each partition's
/// recovery point (offsets below it were on disk when it was written).
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";

/// The recovery points an unclean start may use, from the log directory's
/// checkpoint.
#[derive(Default)]
pub struct RecoveryPoints {
    offsets: Offsets,
    /// When the checkpoint was written (its modification time).
    written: Option<SystemTime>,
}

impl RecoveryPoints {
    /// Reads the checkpoint; a missing or malformed one gives no points
    /// (every active segment is then scanned from its start).
    pub fn read(log_dir: &Path) -> RecoveryPoints {
        let file = OffsetCheckpointFile::new(log_dir, RECOVERY_POINT_CHECKPOINT);
        let written = fs::metadata(log_dir.join(RECOVERY_POINT_CHECKPOINT))
            .and_then(|m| m.modified())
            .ok();
        match file.read() {
            Ok(offsets) => RecoveryPoints { offsets, written },
            Err(e) => {
                tracing::warn!(error = %e, "ignoring the recovery point checkpoint");
                RecoveryPoints::default()
            }
        }
    }

    /// The recovery point of `topic`-`partition` whose log is in `dir`, 0
    /// when unknown. An entry counts only for a directory created before the
    /// checkpoint was written: a topic deleted and created again since has
    /// a new log under the same name, and its own data may be unsynced.
    pub fn get(&self, topic: &str, partition: i32, dir: &Path) -> i64 {
        let Some(&point) = self.offsets.get(&(topic.to_string(), partition)) else {
            return 0;
        };
        let created = fs::metadata(dir).and_then(|m| m.created()).ok();
        match (created, self.written) {
            (Some(created), Some(written)) if created < written => point.max(0),
            _ => 0,
        }
    }
}

/// Serializes the recovery point checkpoint's writers: the periodic writer
/// holds it from collecting the points to the write, so a truncation's
/// lowering is never overwritten by a value collected before the cut.
static RECOVERY_POINTS_LOCK: Mutex<()> = Mutex::new(());

/// Held around collecting and writing the recovery points.
pub fn recovery_points_lock() -> MutexGuard<'static, ()> {
    RECOVERY_POINTS_LOCK
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Replaces the log directory's recovery point checkpoint; the caller holds
/// [`recovery_points_lock`].
pub fn write_recovery_points(log_dir: &Path, offsets: &Offsets) -> std::io::Result<()> {
    OffsetCheckpointFile::new(log_dir, RECOVERY_POINT_CHECKPOINT).write(offsets)
}

/// After a truncation to `offset`: the checkpoint must not keep a point
/// above it, or a crash before the next periodic write would trust the
/// unsynced data appended there since (Kafka checkpoints the directory's
/// recovery points right after truncating too).
pub fn lower_recovery_point(
    log_dir: &Path,
    topic: &str,
    partition: i32,
    offset: i64,
) -> std::io::Result<()> {
    let _guard = recovery_points_lock();
    let file = OffsetCheckpointFile::new(log_dir, RECOVERY_POINT_CHECKPOINT);
    let mut offsets = file.read().map_err(std::io::Error::other)?;
    match offsets.get_mut(&(topic.to_string(), partition)) {
        Some(point) if *point > offset => *point = offset,
        _ => return Ok(()),
    }
    file.write(&offsets)
}

/// An opened, locked log directory.
pub struct LogDir {
    pub path: PathBuf,
    pub cluster_id: String,
    /// `directory.id` of `meta.properties` (Kafka's `MetaProperties`), when
    /// the file has one.
    pub directory_id: Option<String>,
    /// The last run did not stop cleanly: every log's tail must be checked.
    pub needs_recovery: bool,
    /// Held for the broker's lifetime: one broker per log directory.
    _lock: fs::File,
}

impl LogDir {
    /// Creates (if needed) and locks `path`, reads or writes its
    /// `meta.properties`, and notes whether the last stop was clean.
    /// `wanted_cluster_id` (`CLUSTER_ID` in the environment) names a new
    /// directory's cluster; a formatted one keeps its own. `format` runs
    /// only for a new directory (no `meta.properties`), before
    /// `meta.properties` is written: what it writes is there whenever the
    /// directory counts as formatted, as Kafka's `format` writes the
    /// bootstrap metadata with it.
    pub fn open(
        path: &Path,
        node_id: i32,
        wanted_cluster_id: Option<&str>,
        format: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<LogDir> {
        fs::create_dir_all(path)
            .with_context(|| format!("creating log directory {}", path.display()))?;
        let lock = lock_dir(path)?;
        let (cluster_id, directory_id) =
            load_or_create_meta(path, node_id, wanted_cluster_id, format)?;
        let needs_recovery = !path.join(CLEAN_SHUTDOWN_FILE).exists();
        Ok(LogDir {
            path: path.to_path_buf(),
            cluster_id,
            directory_id,
            needs_recovery,
            _lock: lock,
        })
    }

    /// Removes the clean-shutdown marker once the logs are open: from here
    /// on a crash must trigger recovery again.
    pub fn mark_running(&self) -> anyhow::Result<()> {
        let marker = self.path.join(CLEAN_SHUTDOWN_FILE);
        if marker.exists() {
            fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
            sync_dir(&self.path).with_context(|| format!("syncing {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Records a clean shutdown, after every log was flushed and closed.
    pub fn mark_clean_shutdown(&self) -> std::io::Result<()> {
        fs::File::create(self.path.join(CLEAN_SHUTDOWN_FILE)).and_then(|f| f.sync_all())?;
        sync_dir(&self.path)
    }
}

fn lock_dir(dir: &Path) -> anyhow::Result<fs::File> {
    use std::os::unix::io::AsRawFd;
    let path = dir.join(".lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a valid, owned descriptor has no memory effects.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        bail!(
            "log directory {} is in use by another process (could not lock {})",
            dir.display(),
            path.display()
        );
    }
    Ok(f)
}

/// Reads Kafka's `meta.properties` (cluster id, node id), creating it on first
/// start. `wanted` chooses the id of a new directory; a formatted one keeps
/// its own, as the Kafka images' format step skips an already formatted
/// directory; `format` runs first for a new one.
fn load_or_create_meta(
    dir: &Path,
    node_id: i32,
    wanted: Option<&str>,
    format: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<(String, Option<String>)> {
    let path = dir.join(META_PROPERTIES);
    if path.exists() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let entries = crate::config::parse_properties(&text)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let get = |k: &str| {
            entries
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        // Kafka's `MetaPropertiesVersion`: 0 (ZooKeeper era) and 1 (KRaft);
        // another is a layout this broker cannot know the meaning of.
        if let Some(v) = get("version").filter(|v| !matches!(v.trim(), "0" | "1")) {
            bail!(
                "{}: meta.properties version {} is not one kastle reads (0 or 1); the directory is left as it is",
                path.display(),
                v.trim()
            );
        }
        if let Some(stored) = get("node.id") {
            if stored.trim() != node_id.to_string() {
                bail!(
                    "{} belongs to node.id {} but this broker is configured with node.id {node_id}",
                    path.display(),
                    stored.trim()
                );
            }
        }
        let stored =
            get("cluster.id").ok_or_else(|| anyhow!("{} has no cluster.id", path.display()))?;
        if let Some(w) = wanted.filter(|w| *w != stored.trim()) {
            tracing::warn!(
                "cluster id {w} from the environment differs from {} in {}; keeping the stored id",
                stored.trim(),
                path.display()
            );
        }
        return Ok((stored, get("directory.id").map(|d| d.trim().to_string())));
    }
    format(dir)?;
    let cluster_id = match wanted {
        Some(id) => id.to_string(),
        None => super::topics::topic_id_string(&uuid::Uuid::new_v4()),
    };
    let directory_id = super::topics::topic_id_string(&uuid::Uuid::new_v4());
    let text = format!(
        "#\n#{}\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\ndirectory.id={directory_id}\n",
        now_ms()
    );
    write_atomically(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((cluster_id, Some(directory_id)))
}
