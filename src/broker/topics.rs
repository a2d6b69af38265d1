//! The topic registry: which topics exist, their ids, partitions and explicit
//! configs; Kafka's naming rules; creation and deletion; persistence.
//!
//! Each topic's metadata lives in `<log.dirs>/__kastle_topics/<topic-id>.properties`,
//! written atomically (temp file, fsync, rename, fsync directory). That file
//! is the commit point: a topic exists iff its file does. Partition
//! directories that no topic owns (a crash mid-create or mid-delete) are
//! reported at start-up but left alone, since they might be an operator's
//! data; creating a topic of that name replaces them. Each partition
//! directory also carries Kafka's `partition.metadata` file with the topic id.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::log_dir::RecoveryPoints;
use crate::broker::partition::Partition;
use crate::broker::topic_config::{validate_topic_configs, TopicSettings};
use crate::config::properties::escape;
use crate::config::BrokerConfig;
use crate::util::fs::write_atomically;

pub const TOPICS_DIR: &str = "__kastle_topics";
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// A bound on partitions per topic, so one request cannot ask for millions
/// of directories and file handles.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub internal: bool,
    pub partitions: Vec<Arc<Partition>>,
    /// Configs set explicitly for this topic.
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// Kafka's error for a topic operation, with its message.
#[derive(Debug, Clone)]
pub struct TopicError {
    pub code: ResponseError,
    pub message: String,
}

impl TopicError {
    fn new(code: ResponseError, message: impl Into<String>) -> Self {
        TopicError {
            code,
            message: message.into(),
        }
    }
}

#[derive(Default)]
struct Registry {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
}

pub struct TopicManager {
    log_dir: PathBuf,
    /// The broker configuration topic settings default from: static, with
    /// the dynamic broker configs over it (replaced by `set_broker_config`).
    config: RwLock<Arc<BrokerConfig>>,
    registry: RwLock<Registry>,
    /// Serialises create/delete (filesystem work) without blocking readers.
    admin: Mutex<()>,
    /// When (ms) a topic was last created here, or the load time: a
    /// version that grows with new topics (consumer groups resolve their
    /// regular expressions again after it moves).
    created_ms: AtomicI64,
}

/// Kafka's topic name rules (`Topic.validate`).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Names that differ only in '.' versus '_' collide in metric names.
fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

pub fn is_internal_topic(name: &str) -> bool {
    matches!(
        name,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

/// Kafka prints topic ids as URL-safe base64 without padding.
pub fn topic_id_string(id: &Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// A fresh topic id, as Kafka's controller draws them.
pub fn new_topic_id() -> Uuid {
    loop {
        let id = Uuid::new_v4();
        // Kafka avoids ids whose string form starts with '-' (it reads as a
        // command-line flag) and the reserved zero/one ids.
        if !topic_id_string(&id).starts_with('-') && id.as_u128() > 1 {
            return id;
        }
    }
}

pub fn partition_dir(log_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    log_dir.join(format!("{topic}-{partition}"))
}

/// Kafka's `validateManualPartitionAssignment`: the messages and their
/// order are Kafka's. `registered` says whether a broker id is registered
/// (a standalone node: only itself; a controller: the image's brokers).
pub fn validate_manual_assignment(
    replicas: &[i32],
    registered: impl Fn(i32) -> bool,
    replication_factor: Option<usize>,
) -> Result<(), String> {
    if replicas.is_empty() {
        return Err("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for b in sorted {
        if !registered(b) {
            return Err(format!(
                "The manual partition assignment includes broker {b}, but no such broker is registered."
            ));
        }
        if previous == Some(b) {
            return Err(format!(
                "The manual partition assignment includes the broker {b} more than once."
            ));
        }
        previous = Some(b);
    }
    if let Some(rf) = replication_factor {
        if replicas.len() != rf {
            return Err(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
                replicas.len()
            ));
        }
    }
    Ok(())
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> TopicError {
    move |e| TopicError::new(ResponseError::KafkaStorageError, format!("{context}: {e}"))
}

impl TopicManager {
    /// Loads every persisted topic and opens its partition logs; `recovery`
    /// (after an unclean shutdown) says from where each recovers.
    pub fn load(
        config: Arc<BrokerConfig>,
        recovery: Option<&RecoveryPoints>,
    ) -> anyhow::Result<TopicManager> {
        let log_dir = config.log_dir.clone();
        let meta_dir = log_dir.join(TOPICS_DIR);
        fs::create_dir_all(&meta_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", meta_dir.display()))?;
        let mut registry = Registry::default();
        let mut entries: Vec<PathBuf> = fs::read_dir(&meta_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        struct Loaded {
            name: String,
            id: Uuid,
            configs: BTreeMap<String, String>,
            settings: TopicSettings,
            name_arc: Arc<str>,
            count: i32,
        }
        let mut topics = Vec::new();
        for path in entries {
            match path.extension().and_then(|e| e.to_str()) {
                Some("properties") => {}
                Some("tmp") => {
                    // An interrupted write: its rename never happened.
                    let _ = fs::remove_file(&path);
                    continue;
                }
                _ => continue,
            }
            let text = fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let (name, id, count, configs) =
                parse_topic_file(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let settings = TopicSettings::resolve(&configs, &config);
            topics.push(Loaded {
                name_arc: Arc::from(name.as_str()),
                name,
                id,
                configs,
                settings,
                count,
            });
        }
        // Every partition of every topic, opened on a few threads at once.
        let work: Vec<(usize, i32)> = topics
            .iter()
            .enumerate()
            .flat_map(|(t, l)| (0..l.count).map(move |p| (t, p)))
            .collect();
        let opened = super::parallel::map(&work, |&(t, p)| {
            let l = &topics[t];
            let dir = partition_dir(&log_dir, &l.name, p);
            // A cluster broker's replica removed from here has no directory
            // (`partition::removal`): it stays gone.
            if !config.kraft.standalone && !dir.exists() {
                let settings = l.settings.clone();
                return Ok(Partition::detached(l.name_arc.clone(), p, &dir, settings));
            }
            fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
            Partition::open(
                l.name_arc.clone(),
                p,
                &dir,
                l.settings.clone(),
                recovery.map(|points| points.get(&l.name, p, &dir)),
            )
            .map_err(|e| anyhow::anyhow!("opening partition {}-{p}: {e}", l.name))
        });
        let mut opened = opened.into_iter();
        for l in topics {
            let mut partitions = Vec::with_capacity(l.count as usize);
            for _ in 0..l.count {
                let part = opened.next().ok_or_else(|| {
                    anyhow::anyhow!("partition count mismatch loading {}", l.name)
                })??;
                partitions.push(part);
            }
            let topic = Arc::new(Topic {
                internal: is_internal_topic(&l.name),
                name: l.name.clone(),
                id: l.id,
                partitions,
                configs: l.configs,
            });
            registry.by_id.insert(l.id, topic.clone());
            registry.by_name.insert(l.name, topic);
        }
        warn_about_orphan_partition_dirs(&log_dir, &registry);
        Ok(TopicManager {
            log_dir,
            config: RwLock::new(config),
            registry: RwLock::new(registry),
            admin: Mutex::new(()),
            created_ms: AtomicI64::new(crate::util::time::now_ms()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The broker configuration topics default from.
    pub fn broker_config(&self) -> Arc<BrokerConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Installs a new broker configuration (a dynamic broker config changed)
    /// and re-resolves every topic's settings from it, so topics without an
    /// override follow the new defaults at once (Kafka's
    /// `DynamicLogConfig.updateLogsConfig`).
    pub fn set_broker_config(&self, config: Arc<BrokerConfig>) {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config.clone();
        for topic in self.list() {
            let settings = TopicSettings::resolve(&topic.configs, &config);
            for p in &topic.partitions {
                p.update_settings(settings.clone());
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().by_name.get(name).cloned()
    }

    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read().by_id.get(id).cloned()
    }

    /// A version that grows each time a topic is created (the time of the
    /// last creation, in ms).
    pub fn created_version(&self) -> i64 {
        self.created_ms.load(Ordering::Acquire)
    }

    /// All topics, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.read().by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Checks a creation without performing it (also `validate_only`).
    pub fn check_create(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        validate_topic_name(name)
            .map_err(|m| TopicError::new(ResponseError::InvalidTopicException, m))?;
        let reg = self.read();
        if reg.by_name.contains_key(name) {
            return Err(TopicError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        let unified = unify_collision_chars(name);
        if let Some(other) = reg
            .by_name
            .keys()
            .find(|k| unify_collision_chars(k) == unified)
        {
            return Err(TopicError::new(
                ResponseError::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic: {other}"),
            ));
        }
        drop(reg);
        if num_partitions <= 0 {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions was set to an invalid non-positive value: {num_partitions}."),
            ));
        }
        if num_partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions {num_partitions} exceeds this broker's limit of {MAX_PARTITIONS_PER_TOPIC}."),
            ));
        }
        if replication_factor <= 0 {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        }
        if replication_factor > 1 {
            return Err(TopicError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only 1 broker(s) are registered."
                ),
            ));
        }
        validate_topic_configs(configs, &self.broker_config())
            .map_err(|e| TopicError::new(ResponseError::InvalidConfig, e.0))?;
        Ok(())
    }

    pub fn create(
        &self,
        name: &str,
        num_partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        self.check_create(name, num_partitions, replication_factor, &configs)?;
        self.create_locked(name, new_topic_id(), num_partitions, configs)
    }

    /// Creates the local log of a topic the controller created (cluster
    /// mode): the id is the controller's, so a topic recreated under the
    /// same name with a new id is a different log (Kafka's
    /// `partition.metadata`). The replication factor is the controller's
    /// business, so it is not checked here.
    pub fn create_with_id(
        &self,
        name: &str,
        id: Uuid,
        num_partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        self.check_create(name, num_partitions, 1, &configs)?;
        self.create_locked(name, id, num_partitions, configs)
    }

    fn create_locked(
        &self,
        name: &str,
        id: Uuid,
        num_partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let settings = TopicSettings::resolve(&configs, &self.broker_config());
        let name_arc: Arc<str> = Arc::from(name);
        let mut partitions = Vec::with_capacity(num_partitions as usize);
        let mut created_dirs = Vec::new();
        let result = (|| -> Result<(), TopicError> {
            for p in 0..num_partitions {
                let dir = partition_dir(&self.log_dir, name, p);
                if dir.exists() {
                    // Left over from an earlier topic of that name: not ours.
                    fs::remove_dir_all(&dir)
                        .map_err(io_err(format!("removing stale {}", dir.display())))?;
                }
                fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
                created_dirs.push(dir.clone());
                write_atomically(
                    &dir.join("partition.metadata"),
                    format!("version: 0\ntopic_id: {}\n", topic_id_string(&id)).as_bytes(),
                )
                .map_err(io_err(format!(
                    "writing {}/partition.metadata",
                    dir.display()
                )))?;
                let part = Partition::open(name_arc.clone(), p, &dir, settings.clone(), None)
                    .map_err(|e| {
                        TopicError::new(ResponseError::KafkaStorageError, e.to_string())
                    })?;
                partitions.push(part);
            }
            fs::File::open(&self.log_dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(format!("syncing {}", self.log_dir.display())))?;
            let file = self
                .log_dir
                .join(TOPICS_DIR)
                .join(format!("{id}.properties"));
            write_atomically(
                &file,
                render_topic_file(name, &id, num_partitions, &configs).as_bytes(),
            )
            .map_err(io_err(format!("writing {}", file.display())))
        })();
        if let Err(e) = result {
            for p in &partitions {
                let _ = p.delete();
            }
            for d in created_dirs {
                let _ = fs::remove_dir_all(d);
            }
            return Err(e);
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            internal: is_internal_topic(name),
            partitions,
            configs,
        });
        let mut reg = self.registry.write().unwrap_or_else(|p| p.into_inner());
        reg.by_id.insert(id, topic.clone());
        reg.by_name.insert(name.to_string(), topic.clone());
        drop(reg);
        // Strictly growing even when two creations share a millisecond.
        let now = crate::util::time::now_ms();
        let _ = self
            .created_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(now.max(v.saturating_add(1)))
            });
        tracing::info!(topic = name, topic_id = %topic_id_string(&id), partitions = num_partitions, "created topic");
        Ok(topic)
    }

    fn topic_file(&self, id: &Uuid) -> PathBuf {
        self.log_dir
            .join(TOPICS_DIR)
            .join(format!("{id}.properties"))
    }

    fn replace(&self, topic: Arc<Topic>) {
        let mut reg = self.registry.write().unwrap_or_else(|p| p.into_inner());
        reg.by_id.insert(topic.id, topic.clone());
        reg.by_name.insert(topic.name.clone(), topic);
    }

    /// Replaces a topic's explicit configs (AlterConfigs semantics; callers
    /// implementing incremental changes compute the full set first). The new
    /// configs persist before they apply, and apply without a restart.
    pub fn alter_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.get(name).ok_or_else(|| {
            TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic {name} does not exist."),
            )
        })?;
        validate_topic_configs(&configs, &self.broker_config())
            .map_err(|e| TopicError::new(ResponseError::InvalidConfig, e.0))?;
        if validate_only {
            return Ok(topic);
        }
        self.install_configs(topic, configs)
    }

    /// A cluster broker's topic configs as the metadata image has them (the
    /// controller validated them): persisted with the local log, then in
    /// effect on every local partition, as an altered config on a
    /// standalone node. Nothing happens when they are unchanged.
    pub fn apply_image_configs(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let Some(topic) = self.get(name) else {
            return Ok(());
        };
        if &topic.configs == configs {
            return Ok(());
        }
        self.install_configs(topic, configs.clone()).map(|_| ())
    }

    /// Persists `configs` as the topic's explicit configs and applies them
    /// (the caller holds the admin lock and has validated them).
    fn install_configs(
        &self,
        topic: Arc<Topic>,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let name = topic.name.as_str();
        let file = self.topic_file(&topic.id);
        write_atomically(
            &file,
            render_topic_file(name, &topic.id, topic.partitions.len() as i32, &configs).as_bytes(),
        )
        .map_err(io_err(format!("writing {}", file.display())))?;
        let settings = TopicSettings::resolve(&configs, &self.broker_config());
        for p in &topic.partitions {
            p.update_settings(settings.clone());
        }
        let updated = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            internal: topic.internal,
            partitions: topic.partitions.clone(),
            configs,
        });
        self.replace(updated.clone());
        tracing::info!(topic = name, "altered topic configs");
        Ok(updated)
    }

    /// CreatePartitions: grows a topic to `total` partitions (never shrinks).
    /// Returns the topic and its new partitions (whose flushers the caller
    /// starts).
    pub fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(Arc<Topic>, Vec<Arc<Partition>>), TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.get(name).ok_or_else(|| {
            TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{name}' does not exist."),
            )
        })?;
        let current = topic.partitions.len() as i32;
        if total < current {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("The topic {name} currently has {current} partition(s); {total} would not be an increase."),
            ));
        }
        if total == current {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("Topic already has {current} partition(s)."),
            ));
        }
        if total > MAX_PARTITIONS_PER_TOPIC {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("Number of partitions {total} exceeds this broker's limit of {MAX_PARTITIONS_PER_TOPIC}."),
            ));
        }
        if validate_only {
            return Ok((topic, Vec::new()));
        }
        let settings = TopicSettings::resolve(&topic.configs, &self.broker_config());
        let mut added = Vec::new();
        let result = (|| -> Result<(), TopicError> {
            for p in current..total {
                let dir = partition_dir(&self.log_dir, name, p);
                if dir.exists() {
                    fs::remove_dir_all(&dir)
                        .map_err(io_err(format!("removing stale {}", dir.display())))?;
                }
                fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
                write_atomically(
                    &dir.join("partition.metadata"),
                    format!("version: 0\ntopic_id: {}\n", topic_id_string(&topic.id)).as_bytes(),
                )
                .map_err(io_err(format!(
                    "writing {}/partition.metadata",
                    dir.display()
                )))?;
                let part = Partition::open(Arc::from(name), p, &dir, settings.clone(), None)
                    .map_err(|e| {
                        TopicError::new(ResponseError::KafkaStorageError, e.to_string())
                    })?;
                added.push(part);
            }
            fs::File::open(&self.log_dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(format!("syncing {}", self.log_dir.display())))?;
            let file = self.topic_file(&topic.id);
            write_atomically(
                &file,
                render_topic_file(name, &topic.id, total, &topic.configs).as_bytes(),
            )
            .map_err(io_err(format!("writing {}", file.display())))
        })();
        if let Err(e) = result {
            for p in &added {
                let _ = p.delete();
            }
            return Err(e);
        }
        let mut partitions = topic.partitions.clone();
        partitions.extend(added.iter().cloned());
        let updated = Arc::new(Topic {
            name: topic.name.clone(),
            id: topic.id,
            internal: topic.internal,
            partitions,
            configs: topic.configs.clone(),
        });
        self.replace(updated.clone());
        tracing::info!(topic = name, from = current, to = total, "added partitions");
        Ok((updated, added))
    }

    /// Deletes a topic: unregisters it, removes its metadata file (the commit
    /// point), then its partition directories.
    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = {
            let mut reg = self.registry.write().unwrap_or_else(|p| p.into_inner());
            let topic = reg.by_name.remove(name).ok_or_else(|| {
                TopicError::new(
                    ResponseError::UnknownTopicOrPartition,
                    "This server does not host this topic-partition.",
                )
            })?;
            reg.by_id.remove(&topic.id);
            topic
        };
        let file = self
            .log_dir
            .join(TOPICS_DIR)
            .join(format!("{}.properties", topic.id));
        if let Err(e) = fs::remove_file(&file)
            .and_then(|_| fs::File::open(self.log_dir.join(TOPICS_DIR))?.sync_all())
        {
            tracing::error!(topic = name, error = %e, "removing topic metadata file");
        }
        for p in &topic.partitions {
            if let Err(e) = p.delete() {
                tracing::warn!(topic = name, partition = p.index, error = %e, "removing partition directory");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Flushes and closes every partition log (clean shutdown).
    pub fn close_all(&self) -> bool {
        let topics = self.list();
        let parts: Vec<&Arc<Partition>> = topics.iter().flat_map(|t| t.partitions.iter()).collect();
        let results = super::parallel::map(&parts, |p| match p.close() {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "closing log");
                false
            }
        });
        results.into_iter().all(|ok| ok)
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }
}

/// Writes one topic's file as [`TopicManager::load`] reads it (how
/// `broker::kafka_import` registers topics before the registry opens).
pub fn write_topic_file(
    log_dir: &Path,
    name: &str,
    id: &Uuid,
    partitions: i32,
    configs: &BTreeMap<String, String>,
) -> std::io::Result<()> {
    let dir = log_dir.join(TOPICS_DIR);
    fs::create_dir_all(&dir)?;
    write_atomically(
        &dir.join(format!("{id}.properties")),
        render_topic_file(name, id, partitions, configs).as_bytes(),
    )
}

/// The topic files in `log_dir` (empty when there are none).
pub fn topic_files(log_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = log_dir.join(TOPICS_DIR);
    let entries = match fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        r => r?,
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "properties"))
        .collect();
    out.sort();
    Ok(out)
}

fn render_topic_file(
    name: &str,
    id: &Uuid,
    partitions: i32,
    configs: &BTreeMap<String, String>,
) -> String {
    let mut s = format!(
        "# kastle topic metadata\ntopic.name={name}\ntopic.id={id}\npartitions={partitions}\n"
    );
    for (k, v) in configs {
        s.push_str(&format!("config.{k}={}\n", escape(v, false)));
    }
    s
}

type TopicRecord = (String, Uuid, i32, BTreeMap<String, String>);

pub fn parse_topic_file(text: &str) -> Result<TopicRecord, String> {
    let entries = crate::config::parse_properties(text).map_err(|e| e.0)?;
    let mut name = None;
    let mut id = None;
    let mut partitions = None;
    let mut configs = BTreeMap::new();
    for (k, v) in entries {
        match k.as_str() {
            "topic.name" => name = Some(v),
            "topic.id" => {
                id = Some(Uuid::parse_str(&v).map_err(|e| format!("bad topic.id {v:?}: {e}"))?)
            }
            "partitions" => {
                partitions = Some(
                    v.parse::<i32>()
                        .map_err(|e| format!("bad partitions {v:?}: {e}"))?,
                )
            }
            other => {
                if let Some(key) = other.strip_prefix("config.") {
                    configs.insert(key.to_string(), v);
                }
            }
        }
    }
    let name = name.ok_or("missing topic.name")?;
    validate_topic_name(&name)?;
    let partitions = partitions.ok_or("missing partitions")?;
    if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
        return Err(format!("partition count {partitions} out of range"));
    }
    Ok((name, id.ok_or("missing topic.id")?, partitions, configs))
}

/// Reports `<topic>-<n>` directories that no registered topic owns.
fn warn_about_orphan_partition_dirs(log_dir: &Path, registry: &Registry) {
    let Ok(entries) = fs::read_dir(log_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Some(fname) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some((topic, part)) = fname.rsplit_once('-') else {
            continue;
        };
        let Ok(part) = part.parse::<i32>() else {
            continue;
        };
        if validate_topic_name(topic).is_err() {
            continue;
        }
        let owned = registry
            .by_name
            .get(topic)
            .is_some_and(|t| part >= 0 && (part as usize) < t.partitions.len());
        if !owned {
            tracing::warn!(dir = %path.display(), "partition directory belongs to no known topic; ignored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_messages_follow_kafka() {
        assert!(validate_manual_assignment(&[1], |b| b == 1, Some(1)).is_ok());
        assert!(validate_manual_assignment(&[], |b| b == 1, None)
            .unwrap_err()
            .contains("empty replica list"));
        assert!(validate_manual_assignment(&[1, 7], |b| b == 1, None)
            .unwrap_err()
            .contains("broker 7, but no such broker is registered"));
        assert!(validate_manual_assignment(&[1, 1], |b| b == 1, None)
            .unwrap_err()
            .contains("broker 1 more than once"));
    }

    #[test]
    fn kafka_topic_name_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("bad/name").is_err());
        assert!(validate_topic_name("bad name").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn topic_file_round_trips() {
        let id = new_topic_id();
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "10".to_string());
        c.insert("weird".to_string(), "a=b\\c".to_string());
        let text = render_topic_file("t.1", &id, 3, &c);
        let (n, i, p, cfg) = parse_topic_file(&text).unwrap();
        assert_eq!((n.as_str(), i, p), ("t.1", id, 3));
        assert_eq!(cfg, c);
    }

    #[test]
    fn topic_ids_never_print_with_a_leading_dash() {
        for _ in 0..1000 {
            assert!(!topic_id_string(&new_topic_id()).starts_with('-'));
        }
    }
}
