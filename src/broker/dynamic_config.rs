//! `DynamicBrokerConfig`: broker configs changed while kastle runs, as Kafka
//! 4.4 handles AlterConfigs / IncrementalAlterConfigs on a BROKER resource
//! (the broker's `ConfigAdminManager` and `DynamicBrokerConfig`, then the
//! controller's `ConfigurationControlManager`): per broker (resource name =
//! this node id) or as the cluster-wide default (empty name).
//!
//! A change is checked as Kafka checks it: only dynamic keys
//! ([`Mode`]), security keys only with a listener prefix, per-broker keys
//! only per broker, values by type; then the whole resulting configuration
//! (what `new KafkaConfig` and the reconfigurables would refuse), then the
//! controller's rules (ELR's `min.insync.replicas`, value size). It is then
//! persisted ([`ConfigRepository`]), layered over the static configuration
//! (`BrokerConfig::with_dynamic`) and handed to every [`Reconfigurable`]:
//! the topic registry re-resolves topic settings, the cleaner and the
//! connection limits read the new values. Keys kastle does not act on are
//! persisted and described all the same.
//!
//! As on a freshly formatted Kafka 4.4 cluster (eligible leader replicas on,
//! KIP-966), the cluster default carries `min.insync.replicas` from the
//! first start, and it can then be changed but not removed, nor set per
//! broker.

use std::sync::{Arc, Mutex, RwLock};

use kafka_protocol::ResponseError;

use crate::broker::config_repository::{ConfigRepository, ConfigResource, Configs};
use crate::config::keys::{broker_key, list_items, listener_prefixed, validate_kind};
use crate::config::{BrokerConfig, Mode};

/// Something that acts on broker configs and must hear of changes (Kafka's
/// `BrokerReconfigurable`).
pub trait Reconfigurable: Send + Sync {
    /// Refuses a configuration it cannot run with (Kafka's
    /// `validateReconfiguration`); the message says why.
    fn validate_reconfiguration(&self, _new: &BrokerConfig) -> Result<(), String> {
        Ok(())
    }
    fn reconfigure(&self, new: &Arc<BrokerConfig>);
    /// After a change of this broker's own configs: reload files whose
    /// path is unchanged but whose content may have changed (Kafka's
    /// `reloadUpdatedFilesWithoutConfigChange`, for keystores and
    /// truststores); failures are logged, not answered.
    fn reload_files(&self, _current: &Arc<BrokerConfig>) {}
}

/// A refused change: Kafka's error code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigChangeError {
    pub code: ResponseError,
    pub message: String,
}

fn invalid_request(message: impl Into<String>) -> ConfigChangeError {
    ConfigChangeError {
        code: ResponseError::InvalidRequest,
        message: message.into(),
    }
}

fn invalid_config(message: impl Into<String>) -> ConfigChangeError {
    ConfigChangeError {
        code: ResponseError::InvalidConfig,
        message: message.into(),
    }
}

/// IncrementalAlterConfigs operations (`AlterConfigOp.OpType`).
pub mod op {
    pub const SET: i8 = 0;
    pub const DELETE: i8 = 1;
    pub const APPEND: i8 = 2;
    pub const SUBTRACT: i8 = 3;
}

/// One requested change of IncrementalAlterConfigs.
#[derive(Debug, Clone)]
pub struct AlterOp {
    pub name: String,
    pub op: i8,
    pub value: Option<String>,
}

/// What a request asks for one resource.
pub enum Alteration<'a> {
    /// AlterConfigs: the complete new set.
    Replace(&'a Configs),
    /// IncrementalAlterConfigs: changes to the current set.
    Incremental(&'a [AlterOp]),
}

/// Kafka's largest config value (`ConfigurationControlManager`).
const MAX_VALUE_BYTES: usize = 32767;

/// SSL keys a broker only takes per listener (`SslConfigs.RECONFIGURABLE_CONFIGS`).
pub const DYNAMIC_SECURITY_CONFIGS: &[&str] = &[
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
];

/// Listener keys that are cluster-wide even with a listener prefix.
const CLUSTER_LEVEL_LISTENER_CONFIGS: &[&str] = &[
    "max.connections",
    "max.connection.creation.rate",
    "num.network.threads",
];

struct Layers {
    per_broker: Configs,
    cluster_default: Configs,
}

pub struct DynamicBrokerConfig {
    static_config: Arc<BrokerConfig>,
    repository: Arc<ConfigRepository>,
    /// Held across a whole change: validation, persistence, reconfiguration.
    layers: Mutex<Layers>,
    current: RwLock<Arc<BrokerConfig>>,
    reconfigurables: Mutex<Vec<Arc<dyn Reconfigurable>>>,
}

impl DynamicBrokerConfig {
    /// The static configuration with the persisted dynamic configs over it.
    /// A stored value the current kastle refuses is dropped with an error
    /// line (Kafka ignores invalid dynamic configs the same way at start).
    pub fn load(
        static_config: Arc<BrokerConfig>,
        repository: Arc<ConfigRepository>,
    ) -> anyhow::Result<DynamicBrokerConfig> {
        let mut cluster_default = repository.get(&ConfigResource::BrokerDefault);
        if !cluster_default.contains_key("min.insync.replicas") {
            // What Kafka's controller writes when a cluster starts with
            // eligible leader replicas enabled.
            let v = static_config.int("min.insync.replicas").to_string();
            cluster_default.insert("min.insync.replicas".into(), v);
            repository
                .put(&ConfigResource::BrokerDefault, cluster_default.clone())
                .map_err(|e| anyhow::anyhow!("persisting the cluster default configs: {e}"))?;
        }
        let layers = Layers {
            per_broker: usable(repository.get(&ConfigResource::Broker), true),
            cluster_default: usable(cluster_default, false),
        };
        let current = match static_config.with_dynamic(&layers.cluster_default, &layers.per_broker)
        {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!(error = %e, "the dynamic broker configs do not apply; starting with the static configuration");
                static_config.clone()
            }
        };
        Ok(DynamicBrokerConfig {
            static_config,
            repository,
            layers: Mutex::new(layers),
            current: RwLock::new(current),
            reconfigurables: Mutex::new(Vec::new()),
        })
    }

    /// The configuration as started (file, environment, overrides).
    pub fn static_config(&self) -> &Arc<BrokerConfig> {
        &self.static_config
    }

    /// The effective configuration: static, then dynamic defaults, then
    /// this broker's dynamic configs.
    pub fn current(&self) -> Arc<BrokerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// This broker's dynamic configs.
    pub fn per_broker(&self) -> Configs {
        self.lock().per_broker.clone()
    }

    /// The cluster-wide dynamic defaults.
    pub fn cluster_default(&self) -> Configs {
        self.lock().cluster_default.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Layers> {
        self.layers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_reconfigurable(&self, r: Arc<dyn Reconfigurable>) {
        self.reconfigurables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r);
    }

    /// A cluster broker's dynamic configs: none until the metadata image
    /// brings them ([`DynamicBrokerConfig::apply_image`]); the files of
    /// `__kastle_configs` are not read for the broker's own configs.
    pub fn for_cluster(
        static_config: Arc<BrokerConfig>,
        repository: Arc<ConfigRepository>,
    ) -> DynamicBrokerConfig {
        DynamicBrokerConfig {
            current: RwLock::new(static_config.clone()),
            static_config,
            repository,
            layers: Mutex::new(Layers {
                per_broker: Configs::new(),
                cluster_default: Configs::new(),
            }),
            reconfigurables: Mutex::new(Vec::new()),
        }
    }

    /// The broker's half of a change (Kafka's `ConfigAdminManager`
    /// preprocessing, then `DynamicBrokerConfig.validate`): the new set of
    /// the resource and the whole configuration it leads to, which every
    /// reconfigurable accepts. Returns the new set and the configuration.
    fn prepare(
        &self,
        layers: &Layers,
        per_broker: bool,
        alteration: &Alteration<'_>,
    ) -> Result<(Configs, BrokerConfig), ConfigChangeError> {
        let stored = if per_broker {
            &layers.per_broker
        } else {
            &layers.cluster_default
        };
        let new = match alteration {
            Alteration::Replace(configs) => (*configs).clone(),
            Alteration::Incremental(ops) => apply_ops(stored, ops)?,
        };
        validate_configs(&new, per_broker)?;
        let (cluster_default, broker) = if per_broker {
            (&layers.cluster_default, &new)
        } else {
            (&new, &layers.per_broker)
        };
        let candidate = self
            .static_config
            .with_dynamic(cluster_default, broker)
            .map_err(|e| invalid_request(e.0))?;
        validate_whole(&candidate, &self.current())?;
        for r in self.reconfigurables() {
            r.validate_reconfiguration(&candidate).map_err(|e| {
                invalid_request(format!(
                    "Invalid value org.apache.kafka.common.config.ConfigException: {e} for configuration Invalid dynamic configuration"
                ))
            })?;
        }
        Ok((new, candidate))
    }

    /// What a cluster broker checks before it forwards a BROKER resource to
    /// the controller (Kafka's `ConfigAdminManager.validateBrokerConfigChange`):
    /// the broker's half only; the controller decides the rest.
    pub fn validate_change(
        &self,
        per_broker: bool,
        alteration: Alteration<'_>,
    ) -> Result<(), ConfigChangeError> {
        let layers = self.lock();
        self.prepare(&layers, per_broker, &alteration).map(|_| ())
    }

    /// A cluster broker's dynamic configs as the metadata image has them
    /// (Kafka's `DynamicConfigPublisher`): the cluster default and this
    /// broker's own, layered over the static configuration and handed to
    /// every reconfigurable. Values this kastle refuses are dropped with an
    /// error line, as at a standalone start. Nothing happens when neither
    /// layer changed.
    pub fn apply_image(&self, cluster_default: Configs, per_broker: Configs) {
        let mut layers = self.lock();
        let cluster_default = usable(cluster_default, false);
        let per_broker = usable(per_broker, true);
        if layers.cluster_default == cluster_default && layers.per_broker == per_broker {
            return;
        }
        let own_changed = layers.per_broker != per_broker;
        let candidate = match self
            .static_config
            .with_dynamic(&cluster_default, &per_broker)
        {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!(error = %e, "the dynamic broker configs of the metadata image do not apply; keeping the current configuration");
                return;
            }
        };
        layers.cluster_default = cluster_default;
        layers.per_broker = per_broker;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = candidate.clone();
        drop(layers);
        tracing::info!("dynamic broker configs changed in the metadata image");
        for r in self.reconfigurables() {
            r.reconfigure(&candidate);
            if own_changed {
                r.reload_files(&candidate);
            }
        }
    }

    /// Applies AlterConfigs / IncrementalAlterConfigs to this broker
    /// (`per_broker`) or to the cluster default: validated, persisted, then
    /// in effect. `validate_only` stops after validation.
    pub fn alter(
        &self,
        per_broker: bool,
        alteration: Alteration<'_>,
        validate_only: bool,
    ) -> Result<(), ConfigChangeError> {
        let mut layers = self.lock();
        let (new, candidate) = self.prepare(&layers, per_broker, &alteration)?;
        let stored = if per_broker {
            &layers.per_broker
        } else {
            &layers.cluster_default
        };
        // The controller's half (ConfigurationControlManager).
        let touched: Vec<(&str, Option<&str>)> = match &alteration {
            Alteration::Replace(configs) => configs
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                .chain(
                    stored
                        .keys()
                        .filter(|k| !configs.contains_key(*k))
                        .map(|k| (k.as_str(), None)),
                )
                .collect(),
            Alteration::Incremental(ops) => ops
                .iter()
                .map(|o| (o.name.as_str(), new.get(&o.name).map(String::as_str)))
                .collect(),
        };
        for (name, value) in touched {
            if name == "min.insync.replicas" {
                if per_broker {
                    return Err(invalid_config(
                        "Broker-level min.insync.replicas cannot be altered while ELR is enabled.",
                    ));
                }
                if value.is_none() {
                    return Err(invalid_config(
                        "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.",
                    ));
                }
            }
            if value.is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
                return Err(invalid_config(format!(
                    "The configuration value cannot be added because it exceeds the maximum value size of {MAX_VALUE_BYTES} bytes."
                )));
            }
        }
        if validate_only {
            return Ok(());
        }
        let resource = if per_broker {
            ConfigResource::Broker
        } else {
            ConfigResource::BrokerDefault
        };
        self.repository
            .put(&resource, new.clone())
            .map_err(|e| ConfigChangeError {
                code: ResponseError::KafkaStorageError,
                message: format!("persisting the dynamic broker configs: {e}"),
            })?;
        if per_broker {
            layers.per_broker = new;
        } else {
            layers.cluster_default = new;
        }
        let candidate = Arc::new(candidate);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = candidate.clone();
        tracing::info!(
            resource = if per_broker {
                "this broker"
            } else {
                "cluster default"
            },
            "dynamic broker configs changed"
        );
        for r in self.reconfigurables() {
            r.reconfigure(&candidate);
            if per_broker {
                r.reload_files(&candidate);
            }
        }
        Ok(())
    }

    fn reconfigurables(&self) -> Vec<Arc<dyn Reconfigurable>> {
        self.reconfigurables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Stored configs without what this kastle refuses (Kafka's
/// `fromPersistentProps`).
fn usable(mut stored: Configs, per_broker: bool) -> Configs {
    let bad: Vec<String> = stored
        .iter()
        .filter(|(k, v)| {
            let mut one = Configs::new();
            one.insert((*k).clone(), (*v).clone());
            validate_configs(&one, per_broker).is_err()
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in &bad {
        tracing::error!(key = %k, "a stored dynamic broker config is not valid here and is ignored");
        stored.remove(k);
    }
    stored
}

/// Applies IncrementalAlterConfigs operations to `configs` (Kafka's
/// `ConfigAdminManager.prepareIncrementalConfigs` and the controller's
/// `incrementalAlterConfigResource`, which agree on this part): SET and
/// DELETE as written; APPEND adds the list items not present yet and
/// SUBTRACT removes the given ones, starting from the key's current value,
/// else from what `list_default` returns for it; `list_default`'s error
/// refuses a key that takes no list (each resource type words that error
/// its own way).
pub fn apply_alter_ops<E>(
    mut configs: Configs,
    ops: &[AlterOp],
    list_default: impl Fn(&AlterOp, &str) -> Result<String, E>,
    unknown_op: impl Fn(i8) -> E,
) -> Result<Configs, E> {
    for o in ops {
        match o.op {
            op::SET => {
                configs.insert(o.name.clone(), o.value.clone().unwrap_or_default());
            }
            op::DELETE => {
                configs.remove(&o.name);
            }
            op::APPEND | op::SUBTRACT => {
                let what = if o.op == op::APPEND {
                    "APPEND"
                } else {
                    "SUBTRACT"
                };
                // Called whether or not the key is set: it is also the
                // check that the key takes a list at all.
                let default = list_default(o, what)?;
                let current = configs.get(&o.name).cloned().unwrap_or(default);
                let mut parts: Vec<String> = list_items(&current)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                for v in list_items(o.value.as_deref().unwrap_or_default()) {
                    if o.op == op::APPEND {
                        if !parts.iter().any(|p| p == v) {
                            parts.push(v.to_string());
                        }
                    } else {
                        parts.retain(|p| p != v);
                    }
                }
                configs.insert(o.name.clone(), parts.join(","));
            }
            other => return Err(unknown_op(other)),
        }
    }
    Ok(configs)
}

/// Broker resources: APPEND and SUBTRACT start from the key's default.
fn apply_ops(stored: &Configs, ops: &[AlterOp]) -> Result<Configs, ConfigChangeError> {
    apply_alter_ops(
        stored.clone(),
        ops,
        |o, _| {
            let base = broker_key(listener_prefixed(&o.name).map_or(&o.name, |(_, b)| b));
            let def = base.filter(|d| d.kind.is_list()).ok_or_else(|| {
                let what = if o.op == op::APPEND {
                    "append"
                } else {
                    "subtract"
                };
                invalid_config(format!(
                    "Config value {what} is not allowed for config key: {}",
                    o.name
                ))
            })?;
            Ok(def.default.unwrap_or_default().to_string())
        },
        |other| invalid_request(format!("Unknown operations type {other}")),
    )
}

/// `DynamicBrokerConfig.validateConfigs`: only dynamic keys, security keys
/// only per listener, values by type (unknown keys are custom and allowed),
/// and per-broker keys only per broker.
pub fn validate_configs(configs: &Configs, per_broker: bool) -> Result<(), ConfigChangeError> {
    let count = configs.len();
    let non_dynamic: Vec<&str> = configs
        .keys()
        .map(String::as_str)
        .filter(|k| broker_key(k).is_some_and(|d| d.mode == Mode::ReadOnly))
        .collect();
    if !non_dynamic.is_empty() {
        return Err(invalid_request(format!(
            "Cannot update these configs dynamically: {}",
            java_set(&non_dynamic, count)
        )));
    }
    let security: Vec<&str> = DYNAMIC_SECURITY_CONFIGS
        .iter()
        .copied()
        .filter(|k| configs.contains_key(*k))
        .collect();
    if !security.is_empty() {
        return Err(invalid_request(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: {}",
            java_set(&security, security.len())
        )));
    }
    for (k, v) in configs {
        let base = listener_prefixed(k).map_or(k.as_str(), |(_, b)| b);
        if let Some(def) = broker_key(base).filter(|d| d.mode != Mode::ReadOnly) {
            validate_kind(base, def.kind, v).map_err(|e| invalid_request(e.0))?;
        }
    }
    if !per_broker {
        let per_broker_keys: Vec<&str> = configs
            .keys()
            .map(String::as_str)
            .filter(|k| match listener_prefixed(k) {
                Some((_, base)) => !CLUSTER_LEVEL_LISTENER_CONFIGS.contains(&base),
                None => broker_key(k).is_some_and(|d| d.mode == Mode::PerBroker),
            })
            .collect();
        if !per_broker_keys.is_empty() {
            return Err(invalid_request(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                java_set(&per_broker_keys, per_broker_keys.len())
            )));
        }
    }
    Ok(())
}

/// What Kafka's `KafkaConfig` constructor and its reconfigurables refuse in
/// a whole configuration that dynamic configs can reach.
fn validate_whole(new: &BrokerConfig, old: &BrokerConfig) -> Result<(), ConfigChangeError> {
    let require = |ok: bool, msg: &str| {
        if ok {
            Ok(())
        } else {
            Err(invalid_request(format!("requirement failed: {msg}")))
        }
    };
    let threads = new.int("log.cleaner.threads").max(1);
    require(
        new.int("log.cleaner.dedupe.buffer.size") / threads > 1024 * 1024,
        "log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread.",
    )?;
    require(
        new.int("max.connections.per.ip") != 0
            || !new.string("max.connections.per.ip.overrides").trim().is_empty(),
        "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set.",
    )?;
    require(
        new.log_roll_ms >= 1,
        "log.roll.ms must be greater than or equal to 1",
    )?;
    require(
        new.log_retention_ms >= 1 || new.log_retention_ms == -1,
        "log.retention.ms must be unlimited (-1) or, greater than or equal to 1",
    )?;
    let queued = new.int("queued.max.request.bytes");
    require(
        queued < 0 || queued >= new.int("socket.request.max.bytes"),
        "queued.max.request.bytes must be larger or equal to socket.request.max.bytes",
    )?;
    let reconfig = |msg: String| {
        invalid_request(format!(
            "Invalid value org.apache.kafka.common.config.ConfigException: {msg} for configuration Invalid dynamic configuration"
        ))
    };
    // LogCleaner.validateReconfiguration.
    let (old_t, new_t) = (
        old.int("log.cleaner.threads"),
        new.int("log.cleaner.threads"),
    );
    if new_t < 1 {
        return Err(reconfig("Log cleaner threads should be at least 1".into()));
    }
    if new_t < old_t / 2 {
        return Err(reconfig(format!(
            "Log cleaner threads cannot be reduced to less than half the current value {old_t}"
        )));
    }
    if new_t > old_t.saturating_mul(2) {
        return Err(reconfig(format!(
            "Log cleaner threads cannot be increased to more than double the current value {old_t}"
        )));
    }
    // DynamicThreadPool.validateReconfiguration.
    for key in [
        "num.io.threads",
        "num.replica.fetchers",
        "num.recovery.threads.per.data.dir",
        "background.threads",
    ] {
        let (o, n) = (old.int(key), new.int(key));
        let why = if n <= 0 {
            Some(format!("{key}, value should be at least 1"))
        } else if n < o / 2 {
            Some(format!(
                "{key}, value should be at least half the current value {o}"
            ))
        } else if n > o.saturating_mul(2) {
            Some(format!(
                "{key}, value should not be greater than double the current value {o}"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(invalid_request(format!(
                "Invalid value org.apache.kafka.common.config.ConfigException: Dynamic thread count update validation failed for {key}={n} for configuration Invalid dynamic configuration: {why}"
            )));
        }
    }
    // DynamicLogConfig.validateReconfiguration.
    let retention_ms = new.log_retention_ms;
    let local_ms = new.int("log.local.retention.ms");
    if retention_ms != -1 && local_ms != -2 {
        if local_ms == -1 {
            return Err(reconfig(format!("Invalid value -1 for configuration log.local.retention.ms: Value must not be -1 as log.retention.ms value is set as {retention_ms}.")));
        }
        if local_ms > retention_ms {
            return Err(reconfig(format!("Invalid value {local_ms} for configuration log.local.retention.ms: Value must not be more than log.retention.ms property value: {retention_ms}")));
        }
    }
    let retention_bytes = new.int("log.retention.bytes");
    let local_bytes = new.int("log.local.retention.bytes");
    if retention_bytes > -1 && local_bytes != -2 {
        if local_bytes == -1 {
            return Err(reconfig(format!("Invalid value -1 for configuration log.local.retention.bytes: Value must not be -1 as log.retention.bytes value is set as {retention_bytes}.")));
        }
        if local_bytes > retention_bytes {
            return Err(reconfig(format!("Invalid value {local_bytes} for configuration log.local.retention.bytes: Value must not be more than log.retention.bytes property value: {retention_bytes}")));
        }
    }
    Ok(())
}

/// A set of names as Java's `HashSet.toString` prints it (Kafka's messages
/// embed one): in hash-bucket order of a table sized for `count` entries,
/// names of one bucket in the order given (their insertion order).
fn java_set(names: &[&str], count: usize) -> String {
    // HashSet(Collection) sizes its table for the collection it copies.
    let wanted = ((count as f64 / 0.75) as usize + 1).max(16);
    let cap = wanted.next_power_of_two();
    let bucket = |s: &str| {
        let h = s
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
        let spread = (h ^ ((h as u32) >> 16) as i32) as u32;
        spread as usize & (cap - 1)
    };
    let mut sorted: Vec<&str> = names.to_vec();
    sorted.sort_by_key(|s| bucket(s));
    format!("[{}]", sorted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> (tempfile::TempDir, DynamicBrokerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, _) = BrokerConfig::from_entries(vec![
            ("log.dirs".into(), dir.path().display().to_string()),
            ("num.partitions".into(), "1".into()),
            ("log.retention.hours".into(), "5".into()),
        ])
        .unwrap();
        let repo = Arc::new(ConfigRepository::load(dir.path(), 1).unwrap());
        let d = DynamicBrokerConfig::load(Arc::new(cfg), repo).unwrap();
        (dir, d)
    }

    fn set(name: &str, value: &str) -> AlterOp {
        AlterOp {
            name: name.into(),
            op: op::SET,
            value: Some(value.into()),
        }
    }

    #[test]
    fn java_set_order_matches_hash_set_to_string() {
        // From Java 17: new HashSet<>(List.of(...)).toString().
        let names = [
            "num.partitions",
            "log.dirs",
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            "g",
            "h",
            "i",
            "j",
            "k",
            "l",
        ];
        assert_eq!(
            java_set(&names, names.len()),
            "[a, num.partitions, b, c, d, e, f, g, h, i, j, k, l, log.dirs]"
        );
    }

    #[test]
    fn the_first_start_writes_min_insync_replicas_at_the_cluster_level() {
        let (_d, s) = service();
        assert_eq!(
            s.cluster_default()
                .get("min.insync.replicas")
                .map(String::as_str),
            Some("1")
        );
        let e = s
            .alter(
                true,
                Alteration::Incremental(&[set("min.insync.replicas", "1")]),
                false,
            )
            .unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidConfig);
        let del = AlterOp {
            name: "min.insync.replicas".into(),
            op: op::DELETE,
            value: None,
        };
        let e = s
            .alter(false, Alteration::Incremental(&[del]), false)
            .unwrap_err();
        assert!(e.message.starts_with("Cluster-level"), "{e:?}");
        s.alter(
            false,
            Alteration::Incremental(&[set("min.insync.replicas", "2")]),
            false,
        )
        .unwrap();
        assert_eq!(s.current().int("min.insync.replicas"), 2);
    }

    #[test]
    fn kafka_refusals_with_kafka_messages() {
        let (_d, s) = service();
        let refuse = |per_broker: bool, ops: &[AlterOp]| {
            s.alter(per_broker, Alteration::Incremental(ops), false)
                .unwrap_err()
        };
        let e = refuse(true, &[set("num.partitions", "3"), set("log.dirs", "/x")]);
        assert_eq!(e.code, ResponseError::InvalidRequest);
        assert_eq!(
            e.message,
            "Cannot update these configs dynamically: [num.partitions, log.dirs]"
        );
        let e = refuse(false, &[set("listeners", "PLAINTEXT://:9092")]);
        assert_eq!(e.message, "Cannot update these configs at default cluster level, broker id must be specified: [listeners]");
        let e = refuse(true, &[set("ssl.keystore.location", "/x")]);
        assert!(e.message.starts_with("These security configs"), "{e:?}");
        let e = refuse(true, &[set("log.cleaner.backoff.ms", "abc")]);
        assert_eq!(
            e.message,
            "Invalid value abc for configuration log.cleaner.backoff.ms: Not a number of type LONG"
        );
        let e = refuse(true, &[set("log.cleaner.threads", "5")]);
        assert!(
            e.message
                .contains("cannot be increased to more than double the current value 1"),
            "{e:?}"
        );
        let e = refuse(true, &[set("log.cleaner.dedupe.buffer.size", "1000")]);
        assert_eq!(e.message, "requirement failed: log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread.");
        let e = refuse(
            true,
            &[AlterOp {
                name: "log.cleaner.backoff.ms".into(),
                op: op::APPEND,
                value: Some("5".into()),
            }],
        );
        assert_eq!(
            e.message,
            "Config value append is not allowed for config key: log.cleaner.backoff.ms"
        );
        let e = refuse(true, &[set("log.local.retention.ms", "-1")]);
        assert!(
            e.message
                .contains("Value must not be -1 as log.retention.ms value is set as 18000000."),
            "{e:?}"
        );
        // Nothing was stored by the refusals.
        assert!(s.per_broker().is_empty());
    }

    #[test]
    fn changes_layer_over_static_configs_persist_and_reach_reconfigurables() {
        struct Seen(Mutex<Vec<i64>>);
        impl Reconfigurable for Seen {
            fn reconfigure(&self, new: &Arc<BrokerConfig>) {
                self.0.lock().unwrap().push(new.log_retention_ms);
            }
        }
        let (dir, s) = service();
        let seen = Arc::new(Seen(Mutex::new(Vec::new())));
        s.add_reconfigurable(seen.clone());
        assert_eq!(s.current().log_retention_ms, 5 * 3_600_000);
        // A dynamic default log.retention.ms hides the static hours.
        s.alter(
            false,
            Alteration::Incremental(&[set("log.retention.ms", "1000")]),
            false,
        )
        .unwrap();
        assert_eq!(s.current().log_retention_ms, 1000);
        // validate_only changes nothing.
        s.alter(
            true,
            Alteration::Incremental(&[set("log.retention.ms", "2000")]),
            true,
        )
        .unwrap();
        assert_eq!(s.current().log_retention_ms, 1000);
        // Per broker wins over the cluster default.
        s.alter(
            true,
            Alteration::Incremental(&[set("log.retention.ms", "3000")]),
            false,
        )
        .unwrap();
        assert_eq!(s.current().log_retention_ms, 3000);
        let append = AlterOp {
            name: "log.cleanup.policy".into(),
            op: op::APPEND,
            value: Some("compact".into()),
        };
        s.alter(true, Alteration::Incremental(&[append]), false)
            .unwrap();
        assert_eq!(s.current().string("log.cleanup.policy"), "delete,compact");
        assert_eq!(*seen.0.lock().unwrap(), vec![1000, 3000, 3000]);
        // AlterConfigs replaces the broker's whole set.
        let mut only = Configs::new();
        only.insert("log.cleaner.backoff.ms".into(), "16000".into());
        s.alter(true, Alteration::Replace(&only), false).unwrap();
        assert_eq!(s.per_broker(), only);
        assert_eq!(s.current().log_retention_ms, 1000);

        // A restart finds the same layers.
        let (cfg, _) = BrokerConfig::from_entries(vec![
            ("log.dirs".into(), dir.path().display().to_string()),
            ("log.retention.hours".into(), "5".into()),
        ])
        .unwrap();
        let repo = Arc::new(ConfigRepository::load(dir.path(), 1).unwrap());
        let again = DynamicBrokerConfig::load(Arc::new(cfg), repo).unwrap();
        assert_eq!(again.current().log_retention_ms, 1000);
        assert_eq!(again.current().int("log.cleaner.backoff.ms"), 16000);
    }
}
