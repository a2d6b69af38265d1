//! Broker configuration: Kafka's own `server.properties` keys, read from a file,
//! from `KAFKA_*` environment variables (the apache/kafka image convention) and
//! from `--override key=value`, in that order of precedence (last wins).
//!
//! Every key the broker acts on is declared once in [`BROKER_KEYS`] with its
//! type, default and bounds; an invalid value refuses start-up naming the key
//! and the value, an unknown key only warns (Kafka does the same).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What kind of value a key holds, with its bounds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    /// Inclusive bounds.
    Int(i64, i64),
    Str,
    /// One of a fixed set of strings (case-insensitive where Kafka is).
    Choice(&'static [&'static str]),
    List,
    /// Inclusive bounds.
    Double(f64, f64),
    /// Accepted for compatibility with existing server.properties files; the
    /// value is not used by a single-node broker.
    Ignored,
}

pub struct KeyDef {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
}

const fn key(name: &'static str, kind: Kind, default: Option<&'static str>) -> KeyDef {
    KeyDef {
        name,
        kind,
        default,
    }
}

const I32: i64 = i32::MAX as i64;
const DEFAULT_LISTENERS: &str = "PLAINTEXT://:9092";
const I64: i64 = i64::MAX;

/// Every broker key kastle knows, with Kafka 4.x defaults unless noted.
pub static BROKER_KEYS: &[KeyDef] = &[
    key("listeners", Kind::List, Some(DEFAULT_LISTENERS)),
    key("advertised.listeners", Kind::List, None),
    key(
        "listener.security.protocol.map",
        Kind::List,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"),
    ),
    key("inter.broker.listener.name", Kind::Str, None),
    key("controller.listener.names", Kind::List, None),
    key("controller.quorum.voters", Kind::Ignored, None),
    key("controller.quorum.bootstrap.servers", Kind::Ignored, None),
    key("process.roles", Kind::List, Some("broker,controller")),
    key("node.id", Kind::Int(0, I32), None),
    key("broker.id", Kind::Int(-1, I32), None),
    // kastle's default keeps data next to the binary's working directory, so
    // the README's first command works without a config file.
    key("log.dirs", Kind::List, None),
    key("log.dir", Kind::Str, Some("./data")),
    key("num.partitions", Kind::Int(1, I32), Some("1")),
    key("default.replication.factor", Kind::Int(1, I32), Some("1")),
    key("auto.create.topics.enable", Kind::Bool, Some("true")),
    key("delete.topic.enable", Kind::Bool, Some("true")),
    // KIP-1030 (Kafka 4.0): at least 1 MiB.
    key("log.segment.bytes", Kind::Int(1_048_576, I32), Some("1073741824")),
    key("log.roll.ms", Kind::Int(1, I64), None),
    key("log.roll.hours", Kind::Int(1, I32), Some("168")),
    key("log.retention.ms", Kind::Int(-1, I64), None),
    key("log.retention.minutes", Kind::Int(-1, I32), None),
    key("log.retention.hours", Kind::Int(-1, I32), Some("168")),
    key("log.retention.bytes", Kind::Int(-1, I64), Some("-1")),
    key("log.retention.check.interval.ms", Kind::Int(1, I64), Some("300000")),
    key("log.cleanup.policy", Kind::List, Some("delete")),
    key("log.cleaner.delete.retention.ms", Kind::Int(0, I64), Some("86400000")),
    key("log.cleaner.min.cleanable.ratio", Kind::Double(0.0, 1.0), Some("0.5")),
    key("log.cleaner.min.compaction.lag.ms", Kind::Int(0, I64), Some("0")),
    key("log.cleaner.max.compaction.lag.ms", Kind::Int(1, I64), Some("9223372036854775807")),
    key("log.cleaner.enable", Kind::Bool, Some("true")),
    key("log.cleaner.backoff.ms", Kind::Int(0, I64), Some("15000")),
    key("log.cleaner.dedupe.buffer.size", Kind::Int(0, I64), Some("134217728")),
    // kastle default: 50 MiB/s. Kafka's default (Double.MAX_VALUE) means
    // unthrottled, which lets one big compaction starve produce and fetch of
    // disk bandwidth; set it that high to get Kafka's behaviour back.
    key("log.cleaner.io.max.bytes.per.second", Kind::Double(0.0, f64::MAX), Some("52428800")),
    key("log.preallocate", Kind::Bool, Some("false")),
    key("log.roll.jitter.ms", Kind::Int(0, I64), None),
    key("log.roll.jitter.hours", Kind::Int(0, I32), Some("0")),
    key("unclean.leader.election.enable", Kind::Bool, Some("false")),
    key("log.index.size.max.bytes", Kind::Int(4, I32), Some("10485760")),
    key("log.index.interval.bytes", Kind::Int(0, I32), Some("4096")),
    key("log.segment.delete.delay.ms", Kind::Int(0, I64), Some("60000")),
    // kastle default: 1 (fsync before acknowledging, with group commit).
    // Kafka's default (Long.MAX_VALUE) restores page-cache mode.
    key("log.flush.interval.messages", Kind::Int(1, I64), Some("1")),
    key("log.flush.interval.ms", Kind::Int(0, I64), None),
    key("log.flush.scheduler.interval.ms", Kind::Int(0, I64), Some("9223372036854775807")),
    key("log.message.timestamp.type", Kind::Choice(&["CreateTime", "LogAppendTime"]), Some("CreateTime")),
    key("log.message.timestamp.before.max.ms", Kind::Int(0, I64), Some("9223372036854775807")),
    key("log.message.timestamp.after.max.ms", Kind::Int(0, I64), Some("3600000")),
    key("message.max.bytes", Kind::Int(0, I32), Some("1048588")),
    key("compression.type", Kind::Choice(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), Some("producer")),
    key("min.insync.replicas", Kind::Int(1, I32), Some("1")),
    key("socket.request.max.bytes", Kind::Int(1, I32), Some("104857600")),
    key("fetch.max.bytes", Kind::Int(1024, I32), Some("57671680")),
    key("socket.send.buffer.bytes", Kind::Int(-1, I32), Some("102400")),
    key("socket.receive.buffer.bytes", Kind::Int(-1, I32), Some("102400")),
    key("queued.max.requests", Kind::Int(1, I32), Some("500")),
    key("queued.max.request.bytes", Kind::Int(-1, I64), Some("-1")),
    key("connections.max.idle.ms", Kind::Int(0, I64), Some("600000")),
    key("max.connections", Kind::Int(0, I32), Some("2147483647")),
    key("num.network.threads", Kind::Ignored, None),
    key("num.io.threads", Kind::Ignored, None),
    key("num.recovery.threads.per.data.dir", Kind::Ignored, None),
    key("num.replica.fetchers", Kind::Ignored, None),
    key("background.threads", Kind::Ignored, None),
    key("offsets.topic.num.partitions", Kind::Int(1, I32), Some("50")),
    key("offsets.topic.replication.factor", Kind::Int(1, 32767), Some("3")),
    key("offsets.retention.minutes", Kind::Int(1, I32), Some("10080")),
    key("offsets.retention.check.interval.ms", Kind::Int(1, I64), Some("600000")),
    key("offsets.commit.timeout.ms", Kind::Int(1, I32), Some("5000")),
    key("offsets.topic.segment.bytes", Kind::Int(1, I32), Some("104857600")),
    key("offset.metadata.max.bytes", Kind::Int(0, I32), Some("4096")),
    key("transaction.state.log.replication.factor", Kind::Int(1, 32767), Some("3")),
    key("transaction.state.log.min.isr", Kind::Int(1, I32), Some("2")),
    key("transaction.state.log.num.partitions", Kind::Int(1, I32), Some("50")),
    key("transaction.max.timeout.ms", Kind::Int(1, I32), Some("900000")),
    key("transaction.abort.timed.out.transaction.cleanup.interval.ms", Kind::Int(1, I32), Some("10000")),
    key("group.initial.rebalance.delay.ms", Kind::Int(0, I32), Some("3000")),
    key("group.min.session.timeout.ms", Kind::Int(0, I32), Some("6000")),
    key("group.max.session.timeout.ms", Kind::Int(0, I32), Some("1800000")),
    key("group.max.size", Kind::Int(1, I32), Some("2147483647")),
    key("producer.id.expiration.ms", Kind::Int(1, I32), Some("86400000")),
    key("share.coordinator.state.topic.replication.factor", Kind::Ignored, None),
    key("share.coordinator.state.topic.min.isr", Kind::Ignored, None),
    key("zookeeper.connect", Kind::Ignored, None),
    // kastle: HOST:PORT of the Prometheus endpoint (GET /metrics); unset = off.
    key("metrics.prometheus.listener", Kind::Str, None),
];

fn key_def(name: &str) -> Option<&'static KeyDef> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

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

/// Parses Java `.properties` text: `key=value` or `key: value`, `#`/`!`
/// comments, backslash line continuations and escapes.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut lines = text.lines().peekable();
    while let Some(raw) = lines.next() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        // An odd number of trailing backslashes continues the line.
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            if lines.peek().is_some() {
                continue;
            }
        } else {
            logical.push_str(line);
        }
        let entry = std::mem::take(&mut logical);
        let (k, v) = split_entry(&entry);
        let k = unescape(k.trim_end());
        if k.is_empty() {
            return err(format!("invalid properties line without a key: {raw:?}"));
        }
        out.push((k, unescape(v.trim())));
    }
    Ok(out)
}

fn split_entry(entry: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in entry.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => return (&entry[..i], &entry[i + 1..]),
            c if c.is_whitespace() => {
                let rest = entry[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                return (&entry[..i], rest);
            }
            _ => {}
        }
    }
    (entry, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Variables the Kafka images read themselves (JVM, JMX, logging, image
/// switches, paths, credentials for SASL/TLS set-up) rather than turn into
/// broker keys: apache/kafka, confluentinc/cp-kafka and bitnami/kafka. kastle
/// accepts and ignores them, and lists the ones it saw in one log line.
const IMAGE_VARS: &[&str] = &[
    // apache/kafka and confluentinc/cp-kafka
    "KAFKA_VERSION",
    "KAFKA_HOME",
    "KAFKA_OPTS",
    "KAFKA_HEAP_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JMX_PORT",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_DEBUG",
    "KAFKA_LOG_DIRS_PREFIX",
    "KAFKA_DATA_DIRS",
    "KAFKA_CUB_ZK_TIMEOUT",
    // bitnami/kafka (kafka-env.sh)
    "KAFKA_ENABLE_KRAFT",
    "KAFKA_SKIP_KRAFT_STORAGE_INIT",
    "KAFKA_INITIAL_CONTROLLERS",
    "KAFKA_CLIENT_LISTENER_NAME",
    "KAFKA_MOUNTED_CONF_DIR",
    "KAFKA_INTER_BROKER_USER",
    "KAFKA_INTER_BROKER_PASSWORD",
    "KAFKA_CONTROLLER_USER",
    "KAFKA_CONTROLLER_PASSWORD",
    "KAFKA_CERTIFICATE_PASSWORD",
    "KAFKA_TLS_TRUSTSTORE_FILE",
    "KAFKA_TLS_TYPE",
    "KAFKA_TLS_CLIENT_AUTH",
    "KAFKA_CLIENT_USERS",
    "KAFKA_CLIENT_PASSWORDS",
    "KAFKA_ZOOKEEPER_PROTOCOL",
    "KAFKA_ZOOKEEPER_USER",
    "KAFKA_ZOOKEEPER_PASSWORD",
    "KAFKA_ZOOKEEPER_TLS_KEYSTORE_PASSWORD",
    "KAFKA_ZOOKEEPER_TLS_TRUSTSTORE_PASSWORD",
    "KAFKA_ZOOKEEPER_TLS_TRUSTSTORE_FILE",
    "KAFKA_ZOOKEEPER_TLS_VERIFY_HOSTNAME",
    "KAFKA_ZOOKEEPER_TLS_TYPE",
    "KAFKA_PORT_NUMBER",
    "KAFKA_DAEMON_USER",
    "KAFKA_DAEMON_GROUP",
    "KAFKA_BASE_DIR",
    "KAFKA_VOLUME_DIR",
    "KAFKA_DATA_DIR",
    "KAFKA_CONF_DIR",
    "KAFKA_CONF_FILE",
    "KAFKA_CERTS_DIR",
    "KAFKA_INITSCRIPTS_DIR",
    "KAFKA_BROKER_USER",
    "KAFKA_BROKER_PASSWORD",
    "KAFKA_CLIENT_LISTENER",
    "ALLOW_PLAINTEXT_LISTENER",
    "BITNAMI_DEBUG",
    "JAVA_TOOL_OPTIONS",
];

/// bitnami/kafka's legacy names that do not follow the `KAFKA_` + key rule
/// (libkafka.sh aliases them to `KAFKA_CFG_*`).
const BITNAMI_ALIASES: &[(&str, &str)] = &[
    ("KAFKA_LOGS_DIRS", "log.dirs"),
    ("KAFKA_SEGMENT_BYTES", "log.segment.bytes"),
    ("KAFKA_MAX_MESSAGE_BYTES", "message.max.bytes"),
    (
        "KAFKA_ZOOKEEPER_CONNECT_TIMEOUT_MS",
        "zookeeper.connection.timeout.ms",
    ),
];

/// bitnami/kafka's rule for `KAFKA_CFG_*` (libkafka.sh): lower case, every
/// `_` a `.`, except in the protocol names `sasl_ssl` and `sasl_plaintext`.
fn bitnami_key(rest: &str) -> String {
    rest.to_ascii_lowercase()
        .replace('_', ".")
        .replace("sasl.ssl", "sasl_ssl")
        .replace("sasl.plaintext", "sasl_plaintext")
}

/// Variables that carry the cluster id, in order of preference: `CLUSTER_ID`
/// (apache/kafka, cp-kafka), `KAFKA_CLUSTER_ID` (bitnami 4.x),
/// `KAFKA_KRAFT_CLUSTER_ID` (bitnami 3.x).
const CLUSTER_ID_VARS: &[&str] = &["CLUSTER_ID", "KAFKA_CLUSTER_ID", "KAFKA_KRAFT_CLUSTER_ID"];

/// `KAFKA_ADVERTISED_LISTENERS` → `advertised.listeners`; `___` → `-`,
/// `__` → `_`, `_` → `.` (the apache/kafka image convention). `None` for
/// variables that are not broker keys.
pub fn env_to_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("KAFKA_")?;
    if IMAGE_VARS.contains(&var) || CLUSTER_ID_VARS.contains(&var) || rest.is_empty() {
        return None;
    }
    Some(unescape_env(rest, "-", "_"))
}

/// Lower-cases and turns `_` into `.`, `___` into `triple` and `__` into
/// `double`. The apache/kafka reading is (`-`, `_`); the one older
/// Confluent documentation gave is (`_`, `-`).
fn unescape_env(rest: &str, triple: &str, double: &str) -> String {
    rest.to_ascii_lowercase()
        .replace("___", "\u{1}")
        .replace("__", "\u{2}")
        .replace('_', ".")
        .replace('\u{1}', triple)
        .replace('\u{2}', double)
}

/// Picks the key a `KAFKA_*` name (prefix removed) means. The apache/kafka
/// reading comes first; when it names no key kastle knows but the older
/// Confluent reading (`__` for `-`, `___` for `_`) does, that one is taken.
fn resolve_env_key(rest: &str, known: impl Fn(&str) -> bool) -> String {
    let apache = unescape_env(rest, "-", "_");
    if rest.contains("__") && !known(&apache) {
        let confluent = unescape_env(rest, "_", "-");
        if known(&confluent) {
            return confluent;
        }
    }
    apache
}

/// What the environment contributes to the configuration.
#[derive(Debug, Default)]
pub struct EnvConfig {
    /// Broker keys, in the order they apply (bitnami's `KAFKA_CFG_*` after
    /// plain `KAFKA_*`, so the image-specific form wins a conflict).
    pub entries: Vec<(String, String)>,
    /// `(variable, value)` of the cluster id, if one was given.
    pub cluster_id: Option<(String, String)>,
    /// Image variables seen and ignored (names only).
    pub ignored: Vec<String>,
}

/// Reads broker settings from the environment in the conventions of the
/// three common Kafka images:
/// - apache/kafka: `KAFKA_` + key with `.` as `_`, `_` as `__`, `-` as `___`;
///   `CLUSTER_ID`.
/// - bitnami/kafka: `KAFKA_CFG_` + the key with every `.` written `_` (see
///   [`bitnami_key`]), empty values skipped; a few legacy names
///   ([`BITNAMI_ALIASES`]); `KAFKA_KRAFT_CLUSTER_ID` or `KAFKA_CLUSTER_ID`;
///   image switches such as `ALLOW_PLAINTEXT_LISTENER`.
/// - confluentinc/cp-kafka: like apache/kafka (older releases documented `-`
///   as `__` and `_` as `___`; see [`resolve_env_key`]); `CONFLUENT_*`
///   variables configure Confluent's own add-ons and are ignored.
pub fn read_env(env: impl IntoIterator<Item = (String, String)>) -> EnvConfig {
    let mut vars: Vec<(String, String)> = env.into_iter().collect();
    vars.sort();
    let mut out = EnvConfig::default();
    let mut cfg_entries = Vec::new();
    let mut cluster_rank = usize::MAX;
    let known = |k: &str| key_def(k).is_some() || not_needed_reason(k, "").is_some();
    for (var, value) in vars {
        if let Some(rank) = CLUSTER_ID_VARS.iter().position(|v| *v == var) {
            if rank < cluster_rank && !value.trim().is_empty() {
                cluster_rank = rank;
                out.cluster_id = Some((var, value.trim().to_string()));
            }
            continue;
        }
        let base = var.strip_suffix("_FILE").unwrap_or(&var);
        if IMAGE_VARS.contains(&var.as_str())
            || IMAGE_VARS.contains(&base)
            || var.starts_with("CONFLUENT_")
        {
            out.ignored.push(var);
            continue;
        }
        if let Some(rest) = var.strip_prefix("KAFKA_CFG_") {
            // bitnami skips empty values.
            if !rest.is_empty() && !value.trim().is_empty() {
                cfg_entries.push((bitnami_key(rest), value));
            }
            continue;
        }
        if let Some((_, key)) = BITNAMI_ALIASES.iter().find(|(v, _)| *v == var) {
            out.entries.push((key.to_string(), value));
            continue;
        }
        if let Some(rest) = var.strip_prefix("KAFKA_") {
            if !rest.is_empty() {
                out.entries.push((resolve_env_key(rest, known), value));
            }
        }
    }
    out.entries.extend(cfg_entries);
    out
}

/// Checks a cluster id the way Kafka's storage tool does: a base64url UUID,
/// 22 characters (or 24 with `==` padding) decoding to 16 bytes.
pub fn validate_cluster_id(id: &str) -> Result<(), ConfigError> {
    let body = if id.len() == 24 {
        id.strip_suffix("==").unwrap_or(id)
    } else {
        id
    };
    let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if body.len() == 22 && body.chars().all(alphabet) {
        return Ok(());
    }
    err(format!(
        "cluster id {id:?} is not a valid base64 UUID (22 characters of A-Z a-z 0-9 - _, \
         as printed by `kafka-storage random-uuid`)"
    ))
}

/// A value as it may appear in a log line: secrets (passwords, JAAS
/// configurations, licences, tokens) are hidden, as Kafka hides its
/// password-typed settings.
fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    const SECRET: &[&str] = &[
        "password",
        "secret",
        "jaas",
        "license",
        "token",
        "credential",
    ];
    if SECRET.iter().any(|s| key.contains(s)) {
        "[hidden]"
    } else {
        value
    }
}

/// Prefixes of keys only a KRaft controller, ZooKeeper, replication or a
/// vendor add-on uses.
const NOT_NEEDED_PREFIXES: &[&str] = &[
    "controller.",
    "zookeeper.",
    "confluent.",
    "metadata.log.",
    "replica.",
    "leader.imbalance.",
    "broker.heartbeat.",
    "broker.session.",
    "inter.broker.",
];

/// Exact keys of the same kind.
const NOT_NEEDED_KEYS: &[&str] = &[
    "process.roles",
    "broker.rack",
    "initial.broker.registration.timeout.ms",
    "auto.leader.rebalance.enable",
    "num.replica.fetchers",
];

/// Why a key set in the configuration does nothing on a single node, or
/// `None` when it matters. `value` is only looked at for replication factors.
fn not_needed_reason(key: &str, value: &str) -> Option<&'static str> {
    if NOT_NEEDED_KEYS.contains(&key) || NOT_NEEDED_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return Some(
            "only a controller quorum, ZooKeeper, replicas or Confluent add-ons use these",
        );
    }
    if key.ends_with(".replication.factor") {
        return match value.trim().parse::<i64>() {
            Ok(n) if n <= 1 => None,
            _ => Some("a single node keeps one replica"),
        };
    }
    if key.ends_with(".min.isr") {
        return Some("a single node keeps one replica");
    }
    None
}

/// A listener from `listeners` / `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    fn parse(s: &str) -> Result<Listener, ConfigError> {
        let bad = || ConfigError(format!("invalid listener {s:?}: expected NAME://host:port"));
        let (name, addr) = s.split_once("://").ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if name.is_empty() {
            return Err(bad());
        }
        Ok(Listener {
            name: name.to_ascii_uppercase(),
            host,
            port,
        })
    }

    /// Address to bind: an empty host binds every interface, as in Kafka.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        let joined = if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        };
        use std::net::ToSocketAddrs;
        joined
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ConfigError(format!("listener {}: cannot resolve {joined}", self.name)))
    }
}

/// The broker's settled configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Effective value of every key set or defaulted (strings as written).
    values: BTreeMap<String, String>,
    pub node_id: i32,
    pub listeners: Vec<Listener>,
    /// Advertised address per listener name.
    pub advertised: Vec<Listener>,
    pub log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub auto_create_topics: bool,
    pub delete_topic_enable: bool,
    pub socket_request_max_bytes: usize,
    /// Upper bound on the data of one Fetch response (Kafka's `fetch.max.bytes`).
    pub fetch_max_bytes: usize,
    pub queued_max_requests: usize,
    pub message_max_bytes: i32,
    pub log_segment_bytes: i64,
    pub log_roll_ms: i64,
    pub log_index_size_max_bytes: i32,
    pub log_index_interval_bytes: i32,
    pub log_flush_interval_messages: i64,
    pub log_flush_interval_ms: Option<i64>,
    pub log_message_timestamp_type: String,
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_cleanup_policy: String,
    pub compression_type: String,
    pub min_insync_replicas: i32,
    pub connections_max_idle_ms: i64,
    /// Cluster id for a first start (from `CLUSTER_ID` and friends, see
    /// [`read_env`]); an existing `meta.properties` keeps its own.
    pub cluster_id: Option<String>,
    /// Informational start-up lines: settings accepted but not needed by a
    /// single node, image variables ignored. Logged once by the binary.
    pub notes: Vec<String>,
    pub metrics_prometheus_listener: Option<String>,
}

impl BrokerConfig {
    /// Builds the configuration from layered `(key, value)` sources, later
    /// entries overriding earlier ones. Unknown keys are returned as warnings.
    pub fn from_entries(
        entries: Vec<(String, String)>,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        let mut warnings = Vec::new();
        for (k, v) in entries {
            match key_def(&k) {
                Some(def) => {
                    validate(def, &v)?;
                    values.insert(k, v);
                }
                None => {
                    if not_needed_reason(&k, &v).is_none() {
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
        let listeners_set = values.contains_key("listeners");
        for def in BROKER_KEYS {
            if let Some(d) = def.default {
                values
                    .entry(def.name.to_string())
                    .or_insert_with(|| d.to_string());
            }
        }
        let get = |k: &str| values.get(k).map(String::as_str);
        let int = |k: &str| -> Option<i64> { get(k).and_then(|v| v.trim().parse().ok()) };
        let boolean = |k: &str| {
            get(k)
                .map(|v| v.trim().eq_ignore_ascii_case("true"))
                .unwrap_or(false)
        };

        let node_id = match (int("node.id"), int("broker.id")) {
            (Some(n), Some(b)) if b >= 0 && n != b => {
                return err(format!(
                    "node.id ({n}) and broker.id ({b}) must be equal when both are set"
                ))
            }
            (Some(n), _) => n as i32,
            (None, Some(b)) if b >= 0 => b as i32,
            _ => 1,
        };
        let advertised_given = parse_listeners(
            get("advertised.listeners").unwrap_or(""),
            "advertised.listeners",
        )?;
        // As the apache/kafka and cp-kafka images do: without `listeners`
        // from any source, listen on every interface at the advertised ports.
        let mut derived_listeners = None;
        let listeners = if !listeners_set && !advertised_given.is_empty() {
            let derived: Vec<Listener> = advertised_given
                .iter()
                .map(|a| Listener {
                    name: a.name.clone(),
                    host: "0.0.0.0".to_string(),
                    port: a.port,
                })
                .collect();
            derived_listeners = Some(
                derived
                    .iter()
                    .map(|l| format!("{}://0.0.0.0:{}", l.name, l.port))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            derived
        } else {
            parse_listeners(get("listeners").unwrap_or(""), "listeners")?
        };
        if listeners.is_empty() {
            return err("listeners must name at least one listener");
        }
        let controller_names: Vec<String> = get("controller.listener.names")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_uppercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let protocol_map = parse_protocol_map(get("listener.security.protocol.map").unwrap_or(""))?;
        // Only listeners that serve clients must be PLAINTEXT: SSL/SASL
        // entries for unused names, or a controller listener (never bound
        // here), do not stop the broker.
        for l in listeners
            .iter()
            .filter(|l| !controller_names.contains(&l.name))
        {
            let proto = protocol_map
                .get(&l.name)
                .map(String::as_str)
                .or(match l.name.as_str() {
                    "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL" => Some(l.name.as_str()),
                    _ => None,
                });
            match proto {
                Some("PLAINTEXT") => {}
                Some(other) => {
                    return err(format!(
                        "listener {} uses security protocol {other}, which kastle does not support yet (only PLAINTEXT)",
                        l.name
                    ))
                }
                None => {
                    return err(format!(
                        "listener {} has no entry in listener.security.protocol.map",
                        l.name
                    ))
                }
            }
        }
        for a in &advertised_given {
            if a.host == "0.0.0.0" || a.host == "::" {
                return err(format!(
                    "advertised.listeners: listener {} advertises the non-routable address {}; \
                     clients need a host name or address they can reach",
                    a.name, a.host
                ));
            }
        }
        // With neither key set, advertise localhost as Kafka's shipped
        // server.properties does, so the no-config quick start works from
        // this machine; an explicit listener on every interface advertises
        // the host name, as Kafka's broker default does.
        let quick_start =
            get("listeners") == Some(DEFAULT_LISTENERS) && advertised_given.is_empty();
        let mut advertised = Vec::new();
        for l in &listeners {
            if controller_names.contains(&l.name) {
                continue;
            }
            let adv = advertised_given
                .iter()
                .find(|a| a.name == l.name)
                .cloned()
                .map(|mut a| {
                    // An empty advertised host means this machine's name,
                    // as in Kafka.
                    if a.host.is_empty() {
                        a.host = default_hostname();
                    }
                    a
                })
                .unwrap_or_else(|| {
                    let host = if quick_start {
                        "localhost".to_string()
                    } else if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
                        default_hostname()
                    } else {
                        l.host.clone()
                    };
                    Listener {
                        name: l.name.clone(),
                        host,
                        port: l.port,
                    }
                });
            advertised.push(adv);
        }
        for a in &advertised_given {
            if !listeners.iter().any(|l| l.name == a.name) {
                return err(format!(
                    "advertised.listeners names {} which is not in listeners",
                    a.name
                ));
            }
        }

        let log_dir = match get("log.dirs") {
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
            _ => PathBuf::from(get("log.dir").unwrap_or("./data")),
        };
        let hour = 3_600_000i64;
        let log_roll_ms =
            int("log.roll.ms").unwrap_or_else(|| int("log.roll.hours").unwrap_or(168) * hour);
        let log_retention_ms = int("log.retention.ms")
            .or_else(|| int("log.retention.minutes").map(|m| if m < 0 { -1 } else { m * 60_000 }))
            .unwrap_or_else(|| {
                let h = int("log.retention.hours").unwrap_or(168);
                if h < 0 {
                    -1
                } else {
                    h * hour
                }
            });
        let cfg = BrokerConfig {
            node_id,
            listeners,
            advertised,
            log_dir,
            num_partitions: int("num.partitions").unwrap_or(1) as i32,
            // One node holds one replica; a compose file written for a
            // cluster (default.replication.factor=3) still creates topics.
            default_replication_factor: 1,
            auto_create_topics: boolean("auto.create.topics.enable"),
            delete_topic_enable: boolean("delete.topic.enable"),
            fetch_max_bytes: int("fetch.max.bytes").unwrap_or(57_671_680) as usize,
            socket_request_max_bytes: int("socket.request.max.bytes").unwrap_or(104_857_600)
                as usize,
            queued_max_requests: int("queued.max.requests").unwrap_or(500) as usize,
            message_max_bytes: int("message.max.bytes").unwrap_or(1_048_588) as i32,
            log_segment_bytes: int("log.segment.bytes").unwrap_or(1 << 30),
            log_roll_ms,
            log_index_size_max_bytes: int("log.index.size.max.bytes").unwrap_or(10_485_760) as i32,
            log_index_interval_bytes: int("log.index.interval.bytes").unwrap_or(4096) as i32,
            log_flush_interval_messages: int("log.flush.interval.messages").unwrap_or(1),
            log_flush_interval_ms: int("log.flush.interval.ms"),
            log_message_timestamp_type: get("log.message.timestamp.type")
                .unwrap_or("CreateTime")
                .to_string(),
            log_message_timestamp_before_max_ms: int("log.message.timestamp.before.max.ms")
                .unwrap_or(i64::MAX),
            log_message_timestamp_after_max_ms: int("log.message.timestamp.after.max.ms")
                .unwrap_or(3_600_000),
            log_retention_ms,
            log_retention_bytes: int("log.retention.bytes").unwrap_or(-1),
            log_cleanup_policy: get("log.cleanup.policy").unwrap_or("delete").to_string(),
            compression_type: get("compression.type").unwrap_or("producer").to_string(),
            min_insync_replicas: int("min.insync.replicas").unwrap_or(1) as i32,
            connections_max_idle_ms: int("connections.max.idle.ms").unwrap_or(600_000),
            cluster_id: None,
            notes: Vec::new(),
            metrics_prometheus_listener: get("metrics.prometheus.listener").map(str::to_string),
            values,
        };
        let mut cfg = cfg;
        if let Some(derived) = derived_listeners {
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
        Ok((cfg, warnings))
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

    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// Advertised address for the listener with this name.
    pub fn advertised_for(&self, listener: &str) -> Option<&Listener> {
        self.advertised.iter().find(|l| l.name == listener)
    }
}

fn default_hostname() -> String {
    // Kafka advertises the canonical host name; without DNS tools here the
    // kernel's node name is the closest equivalent.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn parse_listeners(v: &str, key: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let l = Listener::parse(part).map_err(|e| ConfigError(format!("{key}: {e}")))?;
        if out.iter().any(|o| o.name == l.name) {
            return err(format!("{key}: listener name {} appears twice", l.name));
        }
        out.push(l);
    }
    Ok(out)
}

fn parse_protocol_map(v: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, proto) = part.split_once(':').ok_or_else(|| {
            ConfigError(format!(
                "listener.security.protocol.map: invalid entry {part:?}"
            ))
        })?;
        map.insert(
            name.trim().to_ascii_uppercase(),
            proto.trim().to_ascii_uppercase(),
        );
    }
    Ok(map)
}

pub fn validate(def: &KeyDef, v: &str) -> Result<(), ConfigError> {
    let bad = |why: String| {
        ConfigError(format!(
            "invalid value {v:?} for configuration {}: {why}",
            def.name
        ))
    };
    let t = v.trim();
    match def.kind {
        Kind::Bool => {
            if !t.eq_ignore_ascii_case("true") && !t.eq_ignore_ascii_case("false") {
                return Err(bad("expected true or false".into()));
            }
        }
        Kind::Int(lo, hi) => {
            let n: i64 = t
                .parse()
                .map_err(|_| bad("expected a whole number".into()))?;
            if n < lo || n > hi {
                return Err(bad(format!("must be in [{lo}, {hi}]")));
            }
        }
        Kind::Choice(options) => {
            if !options.iter().any(|o| o.eq_ignore_ascii_case(t)) {
                return Err(bad(format!("must be one of {}", options.join(", "))));
            }
        }
        Kind::Double(lo, hi) => {
            let n: f64 = t.parse().map_err(|_| bad("expected a number".into()))?;
            if !(lo..=hi).contains(&n) {
                return Err(bad(format!("must be in [{lo}, {hi}]")));
            }
        }
        Kind::Str | Kind::List | Kind::Ignored => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(entries: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_entries(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .map(|r| r.0)
    }

    #[test]
    fn properties_parsing_handles_comments_separators_and_continuations() {
        let text = "# comment\n! also\nlisteners = PLAINTEXT://:9092\nlog.dirs:/tmp/a\nnum.partitions 3\nadvertised.listeners=PLAINTEXT://a:1,\\\n   OTHER://b:2\nkey\\=x=y\n";
        let p = parse_properties(text).unwrap();
        assert_eq!(
            p,
            vec![
                ("listeners".into(), "PLAINTEXT://:9092".into()),
                ("log.dirs".into(), "/tmp/a".into()),
                ("num.partitions".into(), "3".into()),
                (
                    "advertised.listeners".into(),
                    "PLAINTEXT://a:1,OTHER://b:2".into()
                ),
                ("key=x".into(), "y".into()),
            ]
        );
    }

    #[test]
    fn env_names_follow_the_apache_kafka_image_convention() {
        assert_eq!(
            env_to_key("KAFKA_ADVERTISED_LISTENERS").as_deref(),
            Some("advertised.listeners")
        );
        assert_eq!(env_to_key("KAFKA_LOG_DIRS").as_deref(), Some("log.dirs"));
        assert_eq!(env_to_key("KAFKA_A__B___C_D").as_deref(), Some("a_b-c.d"));
        assert_eq!(env_to_key("KAFKA_HEAP_OPTS"), None);
        assert_eq!(env_to_key("PATH"), None);
    }

    #[test]
    fn defaults_and_invalid_values() {
        let c = load(&[]).unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.advertised_for("PLAINTEXT").unwrap().host, "localhost");
        assert_eq!(c.log_dir, PathBuf::from("./data"));
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.log_roll_ms, 168 * 3_600_000);
        let e = load(&[("num.partitions", "zero")]).unwrap_err();
        assert!(
            e.0.contains("num.partitions") && e.0.contains("zero"),
            "{e}"
        );
        let e = load(&[("auto.create.topics.enable", "yes")]).unwrap_err();
        assert!(e.0.contains("auto.create.topics.enable"), "{e}");
        let e = load(&[("listeners", "nonsense")]).unwrap_err();
        assert!(e.0.contains("nonsense"), "{e}");
    }

    #[test]
    fn unknown_keys_warn_and_later_sources_win() {
        let (c, warnings) = BrokerConfig::from_entries(vec![
            ("num.partitions".into(), "2".into()),
            ("made.up".into(), "1".into()),
            ("num.partitions".into(), "5".into()),
        ])
        .unwrap();
        assert_eq!(c.num_partitions, 5);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("made.up"));
    }

    #[test]
    fn advertised_listeners_fall_back_to_listeners() {
        let c = load(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9000,CONTROLLER://127.0.0.1:9093",
            ),
            ("controller.listener.names", "CONTROLLER"),
        ])
        .unwrap();
        assert_eq!(c.advertised.len(), 1);
        assert_eq!(c.advertised_for("PLAINTEXT").unwrap().host, "127.0.0.1");
        let c = load(&[
            ("listeners", "PLAINTEXT://:9000"),
            ("advertised.listeners", "PLAINTEXT://kastle:19000"),
        ])
        .unwrap();
        assert_eq!(c.advertised_for("PLAINTEXT").unwrap().port, 19000);
        assert!(load(&[("listeners", "SSL://:9000")]).is_err());
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_env(vars: &[(&str, &str)]) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        BrokerConfig::load(None, env(vars), &[])
    }

    fn adv(c: &BrokerConfig, name: &str) -> String {
        let a = c.advertised_for(name).expect(name);
        format!("{}:{}", a.host, a.port)
    }

    /// The single-node example of the apache/kafka image's documentation
    /// (docker/examples), variable for variable.
    #[test]
    fn apache_kafka_compose_example() {
        let (c, warnings) = load_env(&[
            ("KAFKA_NODE_ID", "1"),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
            ),
            (
                "KAFKA_ADVERTISED_LISTENERS",
                "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092",
            ),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@broker:29093"),
            (
                "KAFKA_LISTENERS",
                "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092",
            ),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            (
                "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
                "1",
            ),
            ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1"),
            ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true"),
            ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
            ("KAFKA_HEAP_OPTS", "-Xmx512M"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.node_id, 1);
        assert_eq!(c.cluster_id.as_deref(), Some("4L6g3nShT-eMCtK--X86sw"));
        assert_eq!(c.log_dir, PathBuf::from("/tmp/kraft-combined-logs"));
        assert_eq!(c.value("group.initial.rebalance.delay.ms"), Some("0"));
        assert!(c.auto_create_topics);
        // Two client listeners, each with its own advertised address; the
        // controller listener is not served.
        assert_eq!(c.advertised.len(), 2);
        assert_eq!(adv(&c, "PLAINTEXT_HOST"), "localhost:9092");
        assert_eq!(adv(&c, "PLAINTEXT"), "broker:19092");
        assert!(c.advertised_for("CONTROLLER").is_none());
        let notes = c.notes.join("\n");
        for k in [
            "process.roles",
            "controller.quorum.voters",
            "controller.listener.names",
            "inter.broker.listener.name",
            "transaction.state.log.min.isr",
        ] {
            assert!(notes.contains(k), "{k} missing from {notes}");
        }
        assert!(
            !notes.contains("offsets.topic.replication.factor"),
            "{notes}"
        );
        assert!(notes.contains("KAFKA_HEAP_OPTS"), "{notes}");
        assert_eq!(
            c.notes.iter().filter(|n| n.contains("not needed")).count(),
            1,
            "one line lists every key that is not needed: {notes}"
        );
    }

    /// bitnami/kafka's own docker-compose.yml plus the older image switches
    /// (KAFKA_KRAFT_CLUSTER_ID, ALLOW_PLAINTEXT_LISTENER, ...).
    #[test]
    fn bitnami_compose_example() {
        let (c, warnings) = load_env(&[
            ("KAFKA_CFG_NODE_ID", "0"),
            ("KAFKA_CFG_PROCESS_ROLES", "controller,broker"),
            (
                "KAFKA_CFG_LISTENERS",
                "PLAINTEXT://:9092,CONTROLLER://:9093",
            ),
            ("KAFKA_CFG_ADVERTISED_LISTENERS", "PLAINTEXT://:9092"),
            (
                "KAFKA_CFG_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ),
            ("KAFKA_CFG_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_CFG_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            ("KAFKA_CFG_CONTROLLER_QUORUM_VOTERS", "0@kafka:9093"),
            ("KAFKA_CFG_AUTO_CREATE_TOPICS_ENABLE", "false"),
            ("KAFKA_CFG_NUM_PARTITIONS", "3"),
            ("KAFKA_KRAFT_CLUSTER_ID", "abcdefghijklmnopqrstuv"),
            ("KAFKA_ENABLE_KRAFT", "yes"),
            ("ALLOW_PLAINTEXT_LISTENER", "yes"),
            ("KAFKA_HEAP_OPTS", "-Xmx1024m -Xms1024m"),
            ("BITNAMI_DEBUG", "true"),
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.node_id, 0);
        assert_eq!(c.num_partitions, 3);
        assert!(!c.auto_create_topics);
        assert_eq!(c.cluster_id.as_deref(), Some("abcdefghijklmnopqrstuv"));
        assert_eq!(c.listeners.len(), 2);
        // An empty advertised host means this machine's name, as in Kafka.
        let a = c.advertised_for("PLAINTEXT").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port),
            (default_hostname().as_str(), 9092)
        );
        let notes = c.notes.join("\n");
        for v in [
            "KAFKA_ENABLE_KRAFT",
            "ALLOW_PLAINTEXT_LISTENER",
            "KAFKA_HEAP_OPTS",
            "BITNAMI_DEBUG",
        ] {
            assert!(notes.contains(v), "{v} missing from {notes}");
        }
        // bitnami's own rule: every `_` is a `.`, except in the SASL
        // protocol names; empty values are skipped; legacy aliases.
        let e = read_env(env(&[
            ("KAFKA_CFG_LOG_RETENTION_HOURS", "24"),
            (
                "KAFKA_CFG_LISTENER_NAME_SASL_SSL_SSL_CLIENT_AUTH",
                "required",
            ),
            ("KAFKA_CFG_LOG_SEGMENT_BYTES", ""),
            ("KAFKA_LOGS_DIRS", "/bitnami/kafka/data"),
        ]));
        assert_eq!(
            e.entries,
            env(&[
                ("log.dirs", "/bitnami/kafka/data"),
                ("listener.name.sasl_ssl.ssl.client.auth", "required"),
                ("log.retention.hours", "24"),
            ])
        );
        // The image-specific prefix wins over a plain KAFKA_ variable.
        let (c, _) = load_env(&[
            ("KAFKA_CFG_NUM_PARTITIONS", "4"),
            ("KAFKA_NUM_PARTITIONS", "2"),
        ])
        .unwrap();
        assert_eq!(c.num_partitions, 4);
    }

    /// A confluentinc/cp-kafka compose file of the ZooKeeper era
    /// (cp-all-in-one style): no KAFKA_LISTENERS, ZooKeeper, JMX, Confluent
    /// metrics variables, replication factors written for a cluster.
    #[test]
    fn cp_kafka_compose_example() {
        let (c, warnings) = load_env(&[
            ("KAFKA_BROKER_ID", "1"),
            ("KAFKA_ZOOKEEPER_CONNECT", "zookeeper:2181"),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
            ),
            (
                "KAFKA_ADVERTISED_LISTENERS",
                "PLAINTEXT://broker:29092,PLAINTEXT_HOST://localhost:9092",
            ),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "3"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "2"),
            ("KAFKA_DEFAULT_REPLICATION_FACTOR", "3"),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
            ("KAFKA_JMX_PORT", "9101"),
            ("KAFKA_JMX_HOSTNAME", "localhost"),
            ("KAFKA_CONFLUENT_LICENSE_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_CONFLUENT_BALANCER_TOPIC_REPLICATION_FACTOR", "1"),
            (
                "CONFLUENT_METRICS_REPORTER_BOOTSTRAP_SERVERS",
                "broker:29092",
            ),
            ("CONFLUENT_METRICS_ENABLE", "true"),
            ("CONFLUENT_SUPPORT_CUSTOMER_ID", "anonymous"),
            ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.node_id, 1);
        // listeners derived from the advertised listeners on every interface.
        let bound: Vec<String> = c
            .listeners
            .iter()
            .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
            .collect();
        assert_eq!(
            bound,
            ["PLAINTEXT://0.0.0.0:29092", "PLAINTEXT_HOST://0.0.0.0:9092"]
        );
        assert_eq!(
            c.value("listeners"),
            Some("PLAINTEXT://0.0.0.0:29092,PLAINTEXT_HOST://0.0.0.0:9092")
        );
        assert_eq!(adv(&c, "PLAINTEXT"), "broker:29092");
        assert_eq!(adv(&c, "PLAINTEXT_HOST"), "localhost:9092");
        // A cluster's replication factor is served with one replica.
        assert_eq!(c.default_replication_factor, 1);
        let notes = c.notes.join("\n");
        for k in [
            "zookeeper.connect=zookeeper:2181",
            "offsets.topic.replication.factor=3",
            "default.replication.factor=3",
            "transaction.state.log.min.isr=2",
            "confluent.balancer.topic.replication.factor",
            "KAFKA_JMX_PORT",
            "KAFKA_JMX_HOSTNAME",
            "CONFLUENT_METRICS_ENABLE",
            "listeners not set",
        ] {
            assert!(notes.contains(k), "{k} missing from {notes}");
        }
    }

    #[test]
    fn old_confluent_escaping_is_used_only_when_it_names_a_known_key() {
        let known = |k: &str| k == "listener.name.plaintext_host.max.connections" || k == "a_b";
        // Older cp-kafka documentation: `_` written `___`, `-` written `__`.
        assert_eq!(
            resolve_env_key("LISTENER_NAME_PLAINTEXT___HOST_MAX_CONNECTIONS", known),
            "listener.name.plaintext_host.max.connections"
        );
        // The apache reading wins whenever it names a known key.
        assert_eq!(resolve_env_key("A__B", known), "a_b");
        // Neither known: the apache reading (its unknown-key warning names it).
        assert_eq!(resolve_env_key("X___Y", known), "x-y");
        // Without doubled underscores both readings agree.
        assert_eq!(
            resolve_env_key("LOG_RETENTION_HOURS", |_| false),
            "log.retention.hours"
        );
        // Through the real key table: a plain variable is unaffected.
        let e = read_env(env(&[("KAFKA_LOG_SEGMENT_BYTES", "1048576")]));
        assert_eq!(e.entries, env(&[("log.segment.bytes", "1048576")]));
    }

    #[test]
    fn nothing_a_compose_file_sets_refuses_start_unless_invalid() {
        // A broker-only node, a security map with TLS/SASL entries for
        // names no listener uses, a controller listener mapped to SSL.
        let (c, _) = load_env(&[
            ("KAFKA_PROCESS_ROLES", "broker"),
            (
                "KAFKA_LISTENERS",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://:9093",
            ),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL,EXTERNAL:SASL_SSL,SSL:SSL",
            ),
            (
                "KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS",
                "controller:9093",
            ),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
            ("KAFKA_METADATA_LOG_DIR", "/var/lib/kafka/meta"),
        ])
        .unwrap();
        assert_eq!(c.advertised.len(), 1);
        // Secrets in ignored settings stay out of the log lines.
        let (c, warnings) = load_env(&[
            ("KAFKA_CONFLUENT_LICENSE", "eyJsaWNlbnNl"),
            (
                "KAFKA_SASL_JAAS_CONFIG",
                "PlainLoginModule password=\"s3cret\";",
            ),
        ])
        .unwrap();
        let logged = format!("{warnings:?} {:?}", c.notes);
        assert!(logged.contains("confluent.license=[hidden]"), "{logged}");
        assert!(logged.contains("sasl.jaas.config"), "{logged}");
        assert!(
            !logged.contains("s3cret") && !logged.contains("eyJsaWNlbnNl"),
            "{logged}"
        );
        // Empty listener variables count as unset.
        let (c, _) = load_env(&[
            ("KAFKA_LISTENERS", ""),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka:19092"),
        ])
        .unwrap();
        assert_eq!(c.value("listeners"), Some("PLAINTEXT://0.0.0.0:19092"));
        let (c, _) =
            load_env(&[("KAFKA_LISTENERS", " "), ("KAFKA_ADVERTISED_LISTENERS", "")]).unwrap();
        assert_eq!(c.value("listeners"), Some(DEFAULT_LISTENERS));
        // An actual client listener on SSL is refused, naming it.
        let e = load_env(&[
            ("KAFKA_LISTENERS", "PLAINTEXT://:9092,EXTERNAL://:9094"),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "PLAINTEXT:PLAINTEXT,EXTERNAL:SASL_SSL",
            ),
        ])
        .unwrap_err();
        assert!(e.0.contains("EXTERNAL") && e.0.contains("SASL_SSL"), "{e}");
        // Invalid values still refuse, naming the variable or key.
        let e = load_env(&[("CLUSTER_ID", "my-kafka-cluster")]).unwrap_err();
        assert!(
            e.0.contains("CLUSTER_ID") && e.0.contains("my-kafka-cluster"),
            "{e}"
        );
        let e = load_env(&[("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "three")]).unwrap_err();
        assert!(e.0.contains("offsets.topic.replication.factor"), "{e}");
        let e =
            load_env(&[("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://0.0.0.0:9092")]).unwrap_err();
        assert!(e.0.contains("0.0.0.0"), "{e}");
    }

    #[test]
    fn cluster_ids_follow_kafkas_base64_uuid_rule() {
        for ok in [
            "MkU3OEVBNTcwNTJENDM2Qk",
            "5L6g3nShT-eMCtK--X86sw",
            "abcdefghijklmnopqrstuv",
            "kafka-docker-cluster-1",
            "MkU3OEVBNTcwNTJENDM2Qk==",
        ] {
            assert!(validate_cluster_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "short",
            "370e4e9e-9f85-4ab4-b509-342b7682c91a",
            "MkU3OEVBNTcwNTJENDM2Q!",
            "MkU3OEVBNTcwNTJENDM2QkA",
        ] {
            assert!(validate_cluster_id(bad).is_err(), "{bad}");
        }
        // CLUSTER_ID wins over bitnami's names; an empty one is not an id.
        let e = read_env(env(&[
            ("KAFKA_KRAFT_CLUSTER_ID", "abcdefghijklmnopqrstuv"),
            ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
        ]));
        assert_eq!(
            e.cluster_id,
            Some(("CLUSTER_ID".into(), "MkU3OEVBNTcwNTJENDM2Qk".into()))
        );
        assert!(read_env(env(&[("CLUSTER_ID", " ")])).cluster_id.is_none());
        assert!(e.entries.is_empty(), "{:?}", e.entries);
    }
}
