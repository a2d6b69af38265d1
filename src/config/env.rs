//! Broker settings from the environment, in the conventions of the three
//! common Kafka images (apache/kafka, bitnami/kafka, confluentinc/cp-kafka),
//! and the cluster id they carry.

use super::keys::{key_def, not_needed_reason};
use super::{err, ConfigError};

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

/// Image variables kastle's SASL set-up reads itself: bitnami's client
/// users and the JVM options naming a JAAS file.
const SASL_VARS: &[&str] = &[
    "KAFKA_CLIENT_USERS",
    "KAFKA_CLIENT_PASSWORDS",
    "KAFKA_CLIENT_LISTENER_NAME",
    "KAFKA_OPTS",
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
pub(super) fn resolve_env_key(rest: &str, known: impl Fn(&str) -> bool) -> String {
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
            // Read by the SASL set-up (`security::sasl`), not as broker keys.
            if !SASL_VARS.contains(&var.as_str()) {
                out.ignored.push(var);
            }
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
