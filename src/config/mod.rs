//! Broker configuration: Kafka's own `server.properties` keys, read from a file,
//! from `KAFKA_*` environment variables (the apache/kafka image convention) and
//! from `--override key=value`, in that order of precedence (last wins).
//!
//! Every key of Kafka's broker configuration is declared once in
//! [`keys::BROKER_KEYS`] with its type, default, bounds and update mode;
//! that table is the one source of defaults (read them through the typed
//! accessors [`BrokerConfig::int`] and friends). An invalid value refuses
//! start-up naming the key and the value; an unknown key only warns (Kafka
//! does the same). The keys as given (Kafka's "originals") are kept apart
//! from the effective values, so DescribeConfigs can tell a key set in the
//! configuration from a default, and dynamic broker configs can be layered
//! over them ([`BrokerConfig::with_dynamic`]).
//!
//! - [`broker_keys`]: the broker key table; [`docs`]: what each key does here.
//! - [`keys`]: the key table, value validation, keys a single node ignores.
//! - [`properties`]: Java `.properties` parsing.
//! - [`env`]: the apache/kafka, bitnami/kafka and cp-kafka environment
//!   conventions.
//! - [`listeners`]: `listeners`, `advertised.listeners` and the protocol map.
//! - [`kraft`]: roles, the controller quorum, inter-broker and controller
//!   listeners, the broker session (Kafka's `KRaftConfigs`).

pub mod broker_keys;
pub mod docs;
pub mod env;
pub mod keys;
pub mod kraft;
pub mod listeners;
pub mod properties;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::security::SecurityProtocol;

pub use env::{env_to_key, read_env, validate_cluster_id, EnvConfig};
pub use keys::{validate, KeyDef, Kind, Mode, BROKER_KEYS};
pub use kraft::{ControllerAddress, KRaftConfig, ProcessRoles};
pub use listeners::Listener;
pub use properties::parse_properties;

use keys::{broker_config_synonyms, key_def, not_needed_reason, shown};

#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// The broker's settled configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Effective value of every key set or defaulted (strings as written).
    values: BTreeMap<String, String>,
    /// The keys as given, known or not (Kafka's `originals`), with
    /// `node.id` and `broker.id` standing in for each other.
    originals: BTreeMap<String, String>,
    pub node_id: i32,
    pub listeners: Vec<Listener>,
    /// Advertised address per client listener name.
    pub advertised: Vec<Listener>,
    /// Security protocol per client listener name.
    pub listener_protocols: BTreeMap<String, SecurityProtocol>,
    pub log_dir: PathBuf,
    pub num_partitions: i32,
    /// Always 1: one node holds one replica, and a compose file written for
    /// a cluster (`default.replication.factor=3`) still creates topics.
    pub default_replication_factor: i32,
    pub auto_create_topics: bool,
    pub delete_topic_enable: bool,
    pub socket_request_max_bytes: usize,
    /// Upper bound on the data of one Fetch response (Kafka's `fetch.max.bytes`).
    pub fetch_max_bytes: usize,
    /// Incremental fetch sessions kept (Kafka's
    /// `max.incremental.fetch.session.cache.slots`).
    pub max_incremental_fetch_session_cache_slots: usize,
    /// `log.roll.ms`, else `log.roll.hours`.
    pub log_roll_ms: i64,
    /// `log.flush.interval.ms` (None: unset, Kafka's "never by time").
    pub log_flush_interval_ms: Option<i64>,
    /// `log.retention.ms`, else `.minutes`, else `.hours` (-1: unlimited).
    pub log_retention_ms: i64,
    pub connections_max_idle_ms: i64,
    /// Cluster id for a first start (from `CLUSTER_ID` and friends, see
    /// [`read_env`]); an existing `meta.properties` keeps its own.
    pub cluster_id: Option<String>,
    /// Informational start-up lines: settings accepted but not needed by a
    /// single node, image variables ignored. Logged once by the binary.
    pub notes: Vec<String>,
    pub metrics_prometheus_listener: Option<String>,
    /// `kastle.format.features`: feature levels a new standalone directory
    /// starts at instead of Kafka's defaults, as `kafka-storage format
    /// --feature` (a cluster does not record levels at creation yet).
    pub format_features: Vec<(String, i16)>,
    /// Roles, the quorum and the broker session ([`kraft`]).
    pub kraft: KRaftConfig,
}

/// kastle's `kafka-storage format --feature name=level,...`.
pub const FORMAT_FEATURES: &str = "kastle.format.features";

impl BrokerConfig {
    /// Builds the configuration from layered `(key, value)` sources, later
    /// entries overriding earlier ones. Unknown keys are returned as warnings.
    pub fn from_entries(
        entries: Vec<(String, String)>,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut unused = Vec::new();
        for (k, v) in entries {
            match key_def(&k) {
                Some(def) => {
                    validate(def, &v)?;
                    // A replication factor of 1 is what one node does anyway.
                    // A listener-prefixed key resolves to its base key's
                    // definition; kastle acts on every one it resolves.
                    if !def.used
                        && k == def.name
                        && not_needed_reason(&k, &v).is_none()
                        && !k.ends_with(".replication.factor")
                        && !unused.contains(&k)
                    {
                        unused.push(k.clone());
                    }
                    values.insert(k, v);
                }
                None => {
                    if not_needed_reason(&k, &v).is_none()
                        && !keys::AUTHORIZER_KEYS.contains(&k.as_str())
                    {
                        warnings.push(format!(
                            "unknown configuration key {k:?} (value {:?}) is ignored",
                            shown(&k, &v)
                        ));
                    }
                    values.insert(k, v);
                }
            }
        }
        // Keys set explicitly that a single node has no use for: one line
        // at start-up instead of a warning each (they are normal in the
        // compose files of the Kafka images).
        let mut not_needed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (k, v) in &values {
            if let Some(why) = not_needed_reason(k, v) {
                not_needed
                    .entry(why)
                    .or_default()
                    .push(format!("{k}={}", shown(k, v)));
            }
        }
        let not_needed: Vec<String> = not_needed
            .into_iter()
            .map(|(why, keys)| format!("{} ({why})", keys.join(", ")))
            .collect();
        // An empty listener list counts as not set, as in the images'
        // scripts (`KAFKA_LISTENERS: ""` in a compose file).
        for k in ["listeners", "advertised.listeners"] {
            if values.get(k).is_some_and(|v| v.trim().is_empty()) {
                values.remove(k);
            }
        }
        // Kafka's `KafkaConfig.populateSynonyms`: either id names the node.
        match (
            values.get("node.id").cloned(),
            values.get("broker.id").cloned(),
        ) {
            (Some(n), None) => {
                values.insert("broker.id".into(), n);
            }
            (None, Some(b)) if b.trim().parse::<i64>().is_ok_and(|b| b >= 0) => {
                values.insert("node.id".into(), b);
            }
            _ => {}
        }
        let originals = values.clone();
        let listeners_set = values.contains_key("listeners");
        for def in BROKER_KEYS {
            if let Some(d) = def.default {
                values
                    .entry(def.name.to_string())
                    .or_insert_with(|| d.to_string());
            }
        }
        // The accessors read the table's defaults from here on.
        let mut cfg = BrokerConfig {
            values,
            originals,
            node_id: 1,
            listeners: Vec::new(),
            advertised: Vec::new(),
            listener_protocols: BTreeMap::new(),
            log_dir: PathBuf::new(),
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics: true,
            delete_topic_enable: true,
            socket_request_max_bytes: 0,
            fetch_max_bytes: 0,
            max_incremental_fetch_session_cache_slots: 0,
            log_roll_ms: 0,
            log_flush_interval_ms: None,
            log_retention_ms: 0,
            connections_max_idle_ms: 0,
            cluster_id: None,
            notes: Vec::new(),
            metrics_prometheus_listener: None,
            format_features: Vec::new(),
            kraft: KRaftConfig::placeholder(),
        };
        cfg.node_id = match (cfg.opt_int("node.id"), cfg.opt_int("broker.id")) {
            (Some(n), Some(b)) if b >= 0 && n != b => {
                return err(format!(
                    "node.id ({n}) and broker.id ({b}) must be equal when both are set"
                ))
            }
            (Some(n), _) => to_i32(n),
            (None, Some(b)) if b >= 0 => to_i32(b),
            _ => 1,
        };
        let resolved = listeners::resolve(
            cfg.string("listeners"),
            listeners_set,
            cfg.string("advertised.listeners"),
            cfg.string("controller.listener.names"),
            cfg.string("listener.security.protocol.map"),
        )?;
        cfg.listeners = resolved.listeners;
        cfg.advertised = resolved.advertised;
        cfg.listener_protocols = resolved.protocols;
        cfg.log_dir = match cfg.value("log.dirs") {
            Some(dirs) if !dirs.trim().is_empty() => {
                let list: Vec<&str> = dirs
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                if list.len() > 1 {
                    return err(format!(
                        "log.dirs={dirs:?}: kastle supports a single log directory for now"
                    ));
                }
                PathBuf::from(list[0])
            }
            _ => PathBuf::from(cfg.string("log.dir")),
        };
        let hour = 3_600_000i64;
        cfg.log_roll_ms = cfg
            .opt_int("log.roll.ms")
            .unwrap_or_else(|| cfg.int("log.roll.hours").saturating_mul(hour));
        cfg.log_retention_ms = cfg
            .opt_int("log.retention.ms")
            .map(|ms| if ms < 0 { -1 } else { ms })
            .or_else(|| {
                cfg.opt_int("log.retention.minutes").map(|m| {
                    if m < 0 {
                        -1
                    } else {
                        m.saturating_mul(60_000)
                    }
                })
            })
            .unwrap_or_else(|| {
                let h = cfg.int("log.retention.hours");
                if h < 0 {
                    -1
                } else {
                    h.saturating_mul(hour)
                }
            });
        cfg.log_flush_interval_ms = cfg.opt_int("log.flush.interval.ms");
        cfg.num_partitions = to_i32(cfg.int("num.partitions"));
        cfg.auto_create_topics = cfg.boolean("auto.create.topics.enable");
        cfg.delete_topic_enable = cfg.boolean("delete.topic.enable");
        cfg.fetch_max_bytes = to_usize(cfg.int("fetch.max.bytes"));
        cfg.max_incremental_fetch_session_cache_slots =
            to_usize(cfg.int("max.incremental.fetch.session.cache.slots"));
        cfg.socket_request_max_bytes = to_usize(cfg.int("socket.request.max.bytes"));
        cfg.connections_max_idle_ms = cfg.int("connections.max.idle.ms");
        // Kafka's KafkaConfig check: the pool must hold the largest request.
        let queued = cfg.int("queued.max.request.bytes");
        if queued > 0 && queued < cfg.int("socket.request.max.bytes") {
            return Err(ConfigError(
                "queued.max.request.bytes must be larger or equal to socket.request.max.bytes"
                    .into(),
            ));
        }
        // KIP-1331: Kafka loads the topology description plugin this names
        // at start-up; kastle has none to load (as an authorizer other than
        // StandardAuthorizer), so it does not start as if the feature were on.
        let plugin = cfg
            .string("group.streams.topology.description.plugin.class")
            .trim();
        if !plugin.is_empty() {
            return Err(ConfigError(format!(
                "group.streams.topology.description.plugin.class: {plugin} is not supported \
                 (kastle has no streams topology description plugin; leave it unset to run \
                 as Kafka does by default, with the feature disabled)"
            )));
        }
        cfg.metrics_prometheus_listener =
            cfg.value("metrics.prometheus.listener").map(str::to_string);
        let format_features = cfg.string(FORMAT_FEATURES).to_string();
        cfg.format_features = crate::protocol::versions::parse_format_features(&format_features)
            .map_err(|why| {
                ConfigError(format!(
                    "Invalid value {format_features} for configuration {FORMAT_FEATURES}: {why}"
                ))
            })?;
        cfg.kraft = KRaftConfig::from_config(&cfg)?;
        if let Some(derived) = resolved.derived {
            cfg.notes.push(format!(
                "listeners not set: listening on {derived} (the advertised ports on every interface)"
            ));
            cfg.values.insert("listeners".to_string(), derived);
        }
        if !not_needed.is_empty() {
            cfg.notes.push(format!(
                "accepted but not needed by a single-node broker: {}",
                not_needed.join("; ")
            ));
        }
        if !unused.is_empty() {
            cfg.notes.push(format!(
                "Kafka settings kastle accepts and does not act on: {}",
                unused.join(", ")
            ));
        }
        Ok((cfg, warnings))
    }

    /// This configuration with dynamic broker configs over it: the
    /// cluster-wide defaults, then this broker's own, each replacing the
    /// synonyms of the keys it sets (Kafka's `DynamicBrokerConfig.overrideProps`:
    /// a dynamic `log.retention.ms` hides a static `log.retention.hours`).
    /// The result's originals are the merged keys; its cluster id is kept.
    pub fn with_dynamic(
        &self,
        cluster_default: &BTreeMap<String, String>,
        per_broker: &BTreeMap<String, String>,
    ) -> Result<BrokerConfig, ConfigError> {
        let mut props = self.originals.clone();
        for layer in [cluster_default, per_broker] {
            for (k, v) in layer {
                for synonym in broker_config_synonyms(k, false) {
                    props.remove(&synonym);
                }
                props.insert(k.clone(), v.clone());
            }
        }
        let (mut cfg, _) = Self::from_entries(props.into_iter().collect())?;
        cfg.cluster_id = self.cluster_id.clone();
        cfg.notes.clear();
        Ok(cfg)
    }

    /// Loads file, then environment, then overrides.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[String],
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut entries = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", path.display()))
            })?;
            entries.extend(parse_properties(&text)?);
        }
        let env = read_env(env);
        entries.extend(env.entries);
        for o in overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| ConfigError(format!("--override {o:?}: expected key=value")))?;
            entries.push((k.trim().to_string(), v.trim().to_string()));
        }
        let (mut cfg, warnings) = Self::from_entries(entries)?;
        if let Some((var, id)) = env.cluster_id {
            validate_cluster_id(&id).map_err(|e| ConfigError(format!("{var}: {e}")))?;
            cfg.cluster_id = Some(id);
        }
        if !env.ignored.is_empty() {
            cfg.notes.push(format!(
                "container image variables not used by kastle: {}",
                env.ignored.join(", ")
            ));
        }
        Ok((cfg, warnings))
    }

    /// The effective string value of a key (set or defaulted).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A key's value as written, or "" when unset without a default.
    pub fn string(&self, key: &str) -> &str {
        self.value(key).unwrap_or("")
    }

    /// A whole-number key: its value, else the table's default. Every key
    /// read this way has a default (`keys::tests` checks that each default
    /// is valid for its kind); a key without one reads 0.
    pub fn int(&self, key: &str) -> i64 {
        self.opt_int(key)
            .or_else(|| keys::default_of(key).and_then(|d| d.trim().parse().ok()))
            .unwrap_or_else(|| {
                debug_assert!(false, "{key} has no default: read it with opt_int");
                0
            })
    }

    /// A whole-number key that may be unset (no default, e.g. `log.roll.ms`).
    pub fn opt_int(&self, key: &str) -> Option<i64> {
        self.value(key).and_then(|v| v.trim().parse().ok())
    }

    /// A boolean key (validated true/false; anything else reads false).
    pub fn boolean(&self, key: &str) -> bool {
        self.value(key)
            .or_else(|| keys::default_of(key))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// A number key, else the table's default.
    pub fn double(&self, key: &str) -> f64 {
        self.value(key)
            .or_else(|| keys::default_of(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// The keys as given (file, environment, overrides; plus dynamic ones
    /// for a configuration built by [`BrokerConfig::with_dynamic`]).
    pub fn originals(&self) -> &BTreeMap<String, String> {
        &self.originals
    }

    /// Advertised address for the listener with this name.
    pub fn advertised_for(&self, listener: &str) -> Option<&Listener> {
        self.advertised.iter().find(|l| l.name == listener)
    }

    /// A key's value for one listener: its `listener.name.<listener>.<key>`
    /// override (Kafka's listener prefix, the name in lower case), else the
    /// broker's value or default.
    pub fn listener_value(&self, listener: &str, key: &str) -> Option<&str> {
        let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        self.value(&prefixed).or_else(|| self.value(key))
    }

    /// The security protocol of a client listener (PLAINTEXT for a name
    /// that is not one).
    pub fn security_protocol_of(&self, listener: &str) -> SecurityProtocol {
        self.listener_protocols
            .get(listener)
            .copied()
            .unwrap_or(SecurityProtocol::Plaintext)
    }
}

/// An i64 from a key bounded to the i32 range by its table entry.
fn to_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

fn to_usize(v: i64) -> usize {
    usize::try_from(v).unwrap_or(if v < 0 { 0 } else { usize::MAX })
}
