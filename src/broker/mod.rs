//! Broker services: the state a request may read or change, behind methods
//! that keep its invariants. Handlers call in here; only here calls storage.

pub mod log_manager;
pub mod parallel;
pub mod partition;
pub mod producer_ids;
pub mod topic_config;
pub mod topics;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};

use crate::config::BrokerConfig;
use topics::{Topic, TopicError, TopicManager};

/// Kafka's marker for a clean shutdown: when present at start-up the logs
/// need no recovery scan.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const META_PROPERTIES: &str = "meta.properties";

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct Broker {
    pub config: Arc<BrokerConfig>,
    pub cluster_id: String,
    pub topics: TopicManager,
    pub producer_ids: producer_ids::ProducerIdManager,
    /// Consumer groups and committed offsets (`__consumer_offsets`).
    pub groups: Arc<crate::coordinator::group::GroupCoordinator>,
    /// Transactional ids and two-phase commit (`__transaction_state`).
    pub txns: Arc<crate::coordinator::txn::TransactionCoordinator>,
    pub metrics: Arc<crate::metrics::BrokerMetrics>,
    /// Set once shutdown begins, so long polls answer at once instead of
    /// holding the shutdown up.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Held for the broker's lifetime: one broker per log directory.
    _dir_lock: fs::File,
}

impl Broker {
    /// Opens the log directory (lock, meta.properties, recovery decision),
    /// loads every topic and starts the partitions' flushers. Must run inside
    /// the tokio runtime.
    pub fn open(config: BrokerConfig) -> anyhow::Result<Arc<Broker>> {
        let config = Arc::new(config);
        let dir = config.log_dir.clone();
        fs::create_dir_all(&dir)
            .with_context(|| format!("creating log directory {}", dir.display()))?;
        let dir_lock = lock_dir(&dir)?;
        let cluster_id = load_or_create_meta(&dir, config.node_id, config.cluster_id.as_deref())?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        let needs_recovery = !clean;
        let started = std::time::Instant::now();
        let topics = TopicManager::load(config.clone(), needs_recovery)?;
        if clean {
            // From here on a crash must trigger recovery again.
            fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
            fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing {}", dir.display()))?;
        }
        tracing::info!(
            log_dir = %dir.display(),
            topics = topics.list().len(),
            recovered = needs_recovery,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded logs"
        );
        let producer_ids = producer_ids::ProducerIdManager::load(&dir)?;
        let groups = crate::coordinator::group::GroupCoordinator::open(&topics, &config)?;
        let txns = crate::coordinator::txn::TransactionCoordinator::open(&topics, &config)?;
        let broker = Arc::new(Broker {
            metrics: Arc::new(crate::metrics::BrokerMetrics::new(
                crate::metrics::listener_spec(&config).is_some(),
            )),
            config,
            cluster_id,
            topics,
            producer_ids,
            groups,
            txns,
            stopping: tokio::sync::watch::channel(false).0,
            _dir_lock: dir_lock,
        });
        for t in broker.topics.list() {
            broker.start_flushers(&t);
        }
        broker.groups.start();
        // Retention, segment deletion and the log cleaner; they stop when
        // shutdown begins.
        log_manager::start(&broker);
        broker.txns.start(Arc::downgrade(&broker));
        Ok(broker)
    }

    fn start_flushers(&self, topic: &Topic) {
        for p in &topic.partitions {
            tokio::spawn(p.clone().run_flusher());
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
        self.start_flushers(&topic);
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

    /// Tells long-polling requests to answer now.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
        self.groups.begin_shutdown();
    }

    /// Resolves once shutdown has begun.
    pub async fn stopping(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Flushes and closes every log, then records the clean shutdown.
    pub fn shutdown(&self) {
        let clean = self.topics.close_all();
        if !clean {
            tracing::error!("some logs failed to close; the next start will run recovery");
            return;
        }
        let dir = self.topics.log_dir();
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let written = fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .and_then(|_| fs::File::open(dir)?.sync_all());
        match written {
            Ok(()) => tracing::info!("logs closed cleanly"),
            Err(e) => tracing::error!(error = %e, "writing the clean shutdown marker"),
        }
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
/// start. `wanted` (`CLUSTER_ID` in the environment) chooses the id of a new
/// directory; a formatted one keeps its own, as the Kafka images' format step
/// skips an already formatted directory.
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
        None => topics::topic_id_string(&uuid::Uuid::new_v4()),
    };
    let directory_id = topics::topic_id_string(&uuid::Uuid::new_v4());
    let text = format!(
        "#\n#{}\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\ndirectory.id={directory_id}\n",
        now_ms()
    );
    topics::write_atomically(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(cluster_id)
}
