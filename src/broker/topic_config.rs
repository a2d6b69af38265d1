//! Per-topic configuration: Kafka's topic-level keys, each with the broker key
//! it defaults from (its "synonym"), its type and bounds.
//!
//! A topic stores only the keys set explicitly for it; everything else is read
//! through to the broker configuration at use, so a broker default change
//! applies to every topic that did not override it.

use std::collections::BTreeMap;

use crate::config::{self, BrokerConfig, KeyDef, Kind};

pub struct TopicKey {
    pub def: KeyDef,
    /// The broker key this topic key defaults from.
    pub broker_key: Option<&'static str>,
}

const fn tkey(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    broker_key: Option<&'static str>,
) -> TopicKey {
    TopicKey {
        def: KeyDef {
            name,
            kind,
            default: Some(default),
        },
        broker_key,
    }
}

const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;

/// Kafka 4.x topic configuration keys.
pub static TOPIC_KEYS: &[TopicKey] = &[
    tkey(
        "cleanup.policy",
        Kind::List,
        "delete",
        Some("log.cleanup.policy"),
    ),
    tkey(
        "compression.type",
        Kind::Choice(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "producer",
        Some("compression.type"),
    ),
    // -1 is zlib's default level (6), Kafka's default too.
    tkey("compression.gzip.level", Kind::Int(-1, 9), "-1", None),
    tkey("compression.lz4.level", Kind::Int(1, 17), "9", None),
    tkey("compression.zstd.level", Kind::Int(-131072, 22), "3", None),
    tkey(
        "delete.retention.ms",
        Kind::Int(0, I64),
        "86400000",
        Some("log.cleaner.delete.retention.ms"),
    ),
    tkey(
        "file.delete.delay.ms",
        Kind::Int(0, I64),
        "60000",
        Some("log.segment.delete.delay.ms"),
    ),
    tkey(
        "flush.messages",
        Kind::Int(1, I64),
        "1",
        Some("log.flush.interval.messages"),
    ),
    tkey(
        "flush.ms",
        Kind::Int(0, I64),
        "9223372036854775807",
        Some("log.flush.interval.ms"),
    ),
    tkey(
        "index.interval.bytes",
        Kind::Int(0, I32),
        "4096",
        Some("log.index.interval.bytes"),
    ),
    tkey(
        "max.compaction.lag.ms",
        Kind::Int(1, I64),
        "9223372036854775807",
        Some("log.cleaner.max.compaction.lag.ms"),
    ),
    tkey(
        "max.message.bytes",
        Kind::Int(0, I32),
        "1048588",
        Some("message.max.bytes"),
    ),
    tkey(
        "message.timestamp.type",
        Kind::Choice(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
        Some("log.message.timestamp.type"),
    ),
    tkey(
        "message.timestamp.before.max.ms",
        Kind::Int(0, I64),
        "9223372036854775807",
        Some("log.message.timestamp.before.max.ms"),
    ),
    tkey(
        "message.timestamp.after.max.ms",
        Kind::Int(0, I64),
        "3600000",
        Some("log.message.timestamp.after.max.ms"),
    ),
    tkey(
        "min.cleanable.dirty.ratio",
        Kind::Double(0.0, 1.0),
        "0.5",
        Some("log.cleaner.min.cleanable.ratio"),
    ),
    tkey(
        "min.compaction.lag.ms",
        Kind::Int(0, I64),
        "0",
        Some("log.cleaner.min.compaction.lag.ms"),
    ),
    tkey(
        "min.insync.replicas",
        Kind::Int(1, I32),
        "1",
        Some("min.insync.replicas"),
    ),
    tkey("preallocate", Kind::Bool, "false", Some("log.preallocate")),
    tkey(
        "retention.bytes",
        Kind::Int(i64::MIN, I64),
        "-1",
        Some("log.retention.bytes"),
    ),
    tkey("retention.ms", Kind::Int(-1, I64), "604800000", None),
    // KIP-1030: at least 1 MiB; `internal.segment.bytes` lifts the floor for tests, as in Kafka.
    tkey(
        "segment.bytes",
        Kind::Int(1_048_576, I32),
        "1073741824",
        Some("log.segment.bytes"),
    ),
    tkey(
        "internal.segment.bytes",
        Kind::Int(14, I32),
        "1073741824",
        None,
    ),
    tkey(
        "segment.index.bytes",
        Kind::Int(4, I32),
        "10485760",
        Some("log.index.size.max.bytes"),
    ),
    tkey("segment.jitter.ms", Kind::Int(0, I64), "0", None),
    tkey("segment.ms", Kind::Int(1, I64), "604800000", None),
    tkey(
        "unclean.leader.election.enable",
        Kind::Bool,
        "false",
        Some("unclean.leader.election.enable"),
    ),
    tkey("local.retention.bytes", Kind::Int(-2, I64), "-2", None),
    tkey("local.retention.ms", Kind::Int(-2, I64), "-2", None),
    tkey("remote.storage.enable", Kind::Bool, "false", None),
    tkey(
        "follower.replication.throttled.replicas",
        Kind::List,
        "",
        None,
    ),
    tkey(
        "leader.replication.throttled.replicas",
        Kind::List,
        "",
        None,
    ),
];

pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.def.name == name)
}

/// Why a topic configuration was refused (Kafka answers INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigError(pub String);

/// Checks explicit topic configs as given in CreateTopics.
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), TopicConfigError> {
    for (k, v) in configs {
        let key = topic_key(k)
            .ok_or_else(|| TopicConfigError(format!("Unknown topic config name: {k}")))?;
        config::validate(&key.def, v).map_err(|e| TopicConfigError(e.0))?;
        if k == "cleanup.policy" {
            for p in v.split(',').map(str::trim) {
                if p != "delete" && p != "compact" {
                    return Err(TopicConfigError(format!("Invalid value {v} for configuration cleanup.policy: String must be one of: compact, delete")));
                }
            }
        }
    }
    Ok(())
}

/// The value a topic sees for a key: its own override, else the broker's
/// synonym, else Kafka's default.
pub fn effective(
    key: &str,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Option<String> {
    if let Some(v) = overrides.get(key) {
        return Some(v.clone());
    }
    match key {
        // Derived broker keys with more than one spelling.
        "retention.ms" => return Some(broker.log_retention_ms.to_string()),
        "segment.ms" => return Some(broker.log_roll_ms.to_string()),
        "flush.ms" => {
            return Some(broker.log_flush_interval_ms.unwrap_or(i64::MAX).to_string());
        }
        _ => {}
    }
    let tk = topic_key(key)?;
    if let Some(bk) = tk.broker_key {
        if let Some(v) = broker.value(bk) {
            return Some(v.to_string());
        }
    }
    tk.def.default.map(str::to_string)
}

/// Typed view of the topic configs the data path consults.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    pub max_message_bytes: i32,
    pub log_append_time: bool,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `flush.messages == 1`: fsync before acknowledging (group commit).
    pub durable: bool,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub segment_bytes: i64,
    pub segment_ms: i64,
    pub segment_index_bytes: i32,
    pub index_interval_bytes: i32,
    pub min_insync_replicas: i32,
    /// `compression.type`: `None` for `producer` (store as sent), else the
    /// codec id batches are re-encoded with (0 = uncompressed).
    pub compression_codec: Option<u8>,
    /// Broker-wide `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: i64,
    /// `cleanup.policy` includes `compact`: records need keys.
    pub compacted: bool,
    /// `cleanup.policy` includes `delete`: time and size retention apply.
    pub cleanup_delete: bool,
    /// `retention.ms` (-1: unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` (negative: unlimited).
    pub retention_bytes: i64,
    /// `delete.retention.ms`: how long tombstones survive once cleaned.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `file.delete.delay.ms`: delay before `.deleted` segment files go.
    pub file_delete_delay_ms: i64,
}

impl TopicSettings {
    pub fn resolve(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> TopicSettings {
        let get = |k: &str| effective(k, overrides, broker).unwrap_or_default();
        // The effective value always exists (override, broker synonym, or
        // the table's default), so the fallback only guards a table typo.
        let default = |k: &str| topic_key(k).and_then(|t| t.def.default).unwrap_or("0");
        let int = |k: &str| -> i64 {
            get(k)
                .trim()
                .parse()
                .unwrap_or_else(|_| default(k).parse().unwrap_or(0))
        };
        let flush_messages = int("flush.messages");
        let segment_bytes = if overrides.contains_key("internal.segment.bytes") {
            int("internal.segment.bytes")
        } else {
            int("segment.bytes")
        };
        TopicSettings {
            max_message_bytes: int("max.message.bytes") as i32,
            log_append_time: get("message.timestamp.type").eq_ignore_ascii_case("LogAppendTime"),
            timestamp_before_max_ms: int("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: int("message.timestamp.after.max.ms"),
            durable: flush_messages <= 1,
            flush_messages,
            flush_ms: int("flush.ms"),
            segment_bytes,
            segment_ms: int("segment.ms"),
            segment_index_bytes: int("segment.index.bytes") as i32,
            index_interval_bytes: int("index.interval.bytes") as i32,
            min_insync_replicas: int("min.insync.replicas") as i32,
            compression_codec: match get("compression.type").trim().to_ascii_lowercase().as_str() {
                "uncompressed" | "none" => Some(0),
                "gzip" => Some(1),
                "snappy" => Some(2),
                "lz4" => Some(3),
                "zstd" => Some(4),
                _ => None,
            },
            producer_id_expiration_ms: broker.int("producer.id.expiration.ms"),
            compacted: get("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "compact"),
            cleanup_delete: get("cleanup.policy")
                .split(',')
                .any(|p| p.trim() == "delete"),
            retention_ms: int("retention.ms"),
            retention_bytes: int("retention.bytes"),
            delete_retention_ms: int("delete.retention.ms"),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .trim()
                .parse::<f64>()
                .unwrap_or_else(|_| default("min.cleanable.dirty.ratio").parse().unwrap_or(0.5)),
            min_compaction_lag_ms: int("min.compaction.lag.ms"),
            max_compaction_lag_ms: int("max.compaction.lag.ms"),
            file_delete_delay_ms: int("file.delete.delay.ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_unknown_and_bad_values() {
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "1000".to_string());
        assert!(validate_topic_configs(&c).is_ok());
        c.insert("cleanup.policy".to_string(), "compact,delete".to_string());
        assert!(validate_topic_configs(&c).is_ok());
        c.insert("cleanup.policy".to_string(), "shred".to_string());
        assert!(validate_topic_configs(&c).is_err());
        c.remove("cleanup.policy");
        c.insert("no.such.key".to_string(), "1".to_string());
        assert!(validate_topic_configs(&c)
            .unwrap_err()
            .0
            .contains("no.such.key"));
        let mut c = BTreeMap::new();
        c.insert("segment.bytes".to_string(), "1000".to_string());
        assert!(validate_topic_configs(&c).is_err());
    }

    #[test]
    fn effective_values_fall_back_to_broker_synonyms() {
        let (broker, _) = BrokerConfig::from_entries(vec![
            ("message.max.bytes".into(), "2000".into()),
            ("log.retention.hours".into(), "1".into()),
        ])
        .unwrap();
        let mut o = BTreeMap::new();
        assert_eq!(
            effective("max.message.bytes", &o, &broker).as_deref(),
            Some("2000")
        );
        assert_eq!(
            effective("retention.ms", &o, &broker).as_deref(),
            Some("3600000")
        );
        o.insert("max.message.bytes".to_string(), "10".to_string());
        assert_eq!(TopicSettings::resolve(&o, &broker).max_message_bytes, 10);
        assert!(TopicSettings::resolve(&o, &broker).durable);
    }
}
