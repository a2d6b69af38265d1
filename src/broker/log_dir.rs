//! The log directory itself: the lock that keeps a second process out,
//! Kafka's `meta.properties` (cluster id, node id, directory id), and the
//! clean-shutdown marker that decides whether the next start recovers.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};

use crate::util::fs::{sync_dir, write_atomically};
use crate::util::now_ms;

/// Kafka's marker for a clean shutdown: when present at start-up the logs
/// need no recovery scan.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const META_PROPERTIES: &str = "meta.properties";

/// An opened, locked log directory.
pub struct LogDir {
    pub path: PathBuf,
    pub cluster_id: String,
    /// The last run did not stop cleanly: every log's tail must be checked.
    pub needs_recovery: bool,
    /// Held for the broker's lifetime: one broker per log directory.
    _lock: fs::File,
}

impl LogDir {
    /// Creates (if needed) and locks `path`, reads or writes its
    /// `meta.properties`, and notes whether the last stop was clean.
    /// `wanted_cluster_id` (`CLUSTER_ID` in the environment) names a new
    /// directory's cluster; a formatted one keeps its own.
    pub fn open(
        path: &Path,
        node_id: i32,
        wanted_cluster_id: Option<&str>,
    ) -> anyhow::Result<LogDir> {
        fs::create_dir_all(path)
            .with_context(|| format!("creating log directory {}", path.display()))?;
        let lock = lock_dir(path)?;
        let cluster_id = load_or_create_meta(path, node_id, wanted_cluster_id)?;
        let needs_recovery = !path.join(CLEAN_SHUTDOWN_FILE).exists();
        Ok(LogDir {
            path: path.to_path_buf(),
            cluster_id,
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
/// directory.
fn load_or_create_meta(dir: &Path, node_id: i32, wanted: Option<&str>) -> anyhow::Result<String> {
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
        return Ok(stored);
    }
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
    Ok(cluster_id)
}
