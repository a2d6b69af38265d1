//! Per-topic configuration: Kafka 4.4's topic-level keys (`LogConfig`), each
//! with its type, bounds, default and the broker key it defaults from (its
//! synonym, `ServerTopicConfigSynonyms`); their validation
//! (`LogConfig.validate`); and `TopicSettings`, the typed view the data path
//! reads.
//!
//! A topic stores only the keys set explicitly for it; everything else is read
//! through to the broker configuration (static, then dynamic) when settings
//! are resolved, so a change of a broker default reaches every topic that did
//! not override it (`TopicManager::set_broker_config` re-resolves them).

use std::collections::BTreeMap;

use crate::broker::replication_quota_manager::ThrottledReplicas;
use crate::config::keys::{list_items, render, validate_kind};
use crate::config::{BrokerConfig, Kind};
use crate::record::validator::{TimestampType, ValidationConfig};

pub struct TopicKey {
    pub name: &'static str,
    pub kind: Kind,
    /// Kafka's default, as DescribeConfigs renders it.
    pub default: &'static str,
    /// The broker key this topic key defaults from.
    pub broker_synonym: Option<&'static str>,
    /// Kafka keeps `internal.*` keys from clients.
    pub internal: bool,
}

const fn t(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    broker_synonym: Option<&'static str>,
) -> TopicKey {
    TopicKey {
        name,
        kind,
        default,
        broker_synonym,
        internal: false,
    }
}

const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;
/// Java's largest array length (`Records.SOFT_MAX_ARRAY_LENGTH`).
const SOFT_MAX_ARRAY_LENGTH: i64 = i32::MAX as i64 - 8;

/// Kafka 4.4 topic configuration keys, in name order.
#[rustfmt::skip]
pub static TOPIC_KEYS: &[TopicKey] = &[
    t("cleanup.policy", Kind::ListOf(&["compact", "delete"]), "delete", Some("log.cleanup.policy")),
    t("compression.gzip.level", Kind::GzipLevel, "-1", Some("compression.gzip.level")),
    t("compression.lz4.level", Kind::Int(1, 17), "9", Some("compression.lz4.level")),
    t("compression.type", Kind::Choice(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), "producer", Some("compression.type")),
    t("compression.zstd.level", Kind::Int(-131072, 22), "3", Some("compression.zstd.level")),
    t("delete.retention.ms", Kind::Long(0, I64), "86400000", Some("log.cleaner.delete.retention.ms")),
    // KIP-1191: share groups may write undeliverable records to a DLQ topic.
    t("errors.deadletterqueue.group.enable", Kind::Bool, "false", None),
    t("file.delete.delay.ms", Kind::Long(0, I64), "60000", Some("log.segment.delete.delay.ms")),
    // kastle default: 1 (fsync before acknowledging); Kafka's is Long.MAX_VALUE.
    t("flush.messages", Kind::Long(1, I64), "1", Some("log.flush.interval.messages")),
    t("flush.ms", Kind::Long(0, I64), "9223372036854775807", Some("log.flush.interval.ms")),
    t("follower.replication.throttled.replicas", Kind::List, "", None),
    t("index.interval.bytes", Kind::Int(0, I32), "4096", Some("log.index.interval.bytes")),
    // KIP-1030: `segment.bytes` is at least 1 MiB; this lifts the floor for
    // tests, as in Kafka.
    TopicKey { name: "internal.segment.bytes", kind: Kind::Int(14, I32), default: "1073741824", broker_synonym: None, internal: true },
    t("leader.replication.throttled.replicas", Kind::List, "", None),
    t("local.retention.bytes", Kind::Long(-2, I64), "-2", Some("log.local.retention.bytes")),
    t("local.retention.ms", Kind::Long(-2, I64), "-2", Some("log.local.retention.ms")),
    t("max.compaction.lag.ms", Kind::Long(1, I64), "9223372036854775807", Some("log.cleaner.max.compaction.lag.ms")),
    t("max.decompressed.message.bytes", Kind::Int(1, SOFT_MAX_ARRAY_LENGTH), "2147483639", Some("max.decompressed.message.bytes")),
    t("max.message.bytes", Kind::Int(0, I32), "1048588", Some("message.max.bytes")),
    t("message.timestamp.after.max.ms", Kind::Long(0, I64), "3600000", Some("log.message.timestamp.after.max.ms")),
    t("message.timestamp.before.max.ms", Kind::Long(0, I64), "9223372036854775807", Some("log.message.timestamp.before.max.ms")),
    t("message.timestamp.type", Kind::Choice(&["CreateTime", "LogAppendTime"]), "CreateTime", Some("log.message.timestamp.type")),
    t("min.cleanable.dirty.ratio", Kind::Double(0.0, 1.0), "0.5", Some("log.cleaner.min.cleanable.ratio")),
    t("min.compaction.lag.ms", Kind::Long(0, I64), "0", Some("log.cleaner.min.compaction.lag.ms")),
    t("min.insync.replicas", Kind::Int(1, I32), "1", Some("min.insync.replicas")),
    t("preallocate", Kind::Bool, "false", Some("log.preallocate")),
    t("remote.copy.lag.bytes", Kind::Long(-1, I64), "-1", Some("log.remote.copy.lag.bytes")),
    t("remote.copy.lag.ms", Kind::Long(-1, I64), "0", Some("log.remote.copy.lag.ms")),
    t("remote.log.copy.disable", Kind::Bool, "false", None),
    t("remote.log.delete.on.disable", Kind::Bool, "false", None),
    t("remote.storage.enable", Kind::Bool, "false", None),
    t("retention.bytes", Kind::Long(i64::MIN, I64), "-1", Some("log.retention.bytes")),
    t("retention.ms", Kind::Long(-1, I64), "604800000", Some("log.retention.ms")),
    t("segment.bytes", Kind::Int(1_048_576, I32), "1073741824", Some("log.segment.bytes")),
    t("segment.index.bytes", Kind::Int(4, I32), "10485760", Some("log.index.size.max.bytes")),
    t("segment.jitter.ms", Kind::Long(0, I64), "0", Some("log.roll.jitter.ms")),
    t("segment.ms", Kind::Long(1, I64), "604800000", Some("log.roll.ms")),
    t("unclean.leader.election.enable", Kind::Bool, "false", Some("unclean.leader.election.enable")),
];

pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// The topic key a broker key is the default of (DescribeConfigs on a
/// broker lists its synonyms).
pub fn topic_key_of_broker(broker_key: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS
        .iter()
        .find(|k| k.broker_synonym == Some(broker_key))
}

/// Why a topic configuration was refused (Kafka answers INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigError(pub String);

/// Checks a topic's explicit configs as a whole (`LogConfig.validate`):
/// names, values, then the rules between keys, against the broker
/// configuration they default from.
pub fn validate_topic_configs(
    configs: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Result<(), TopicConfigError> {
    for (k, v) in configs {
        let key = topic_key(k)
            .ok_or_else(|| TopicConfigError(format!("Unknown topic config name: {k}")))?;
        validate_kind(k, key.kind, v).map_err(|e| TopicConfigError(e.0))?;
        if k.ends_with(".replication.throttled.replicas") {
            validate_throttled_replicas(k, v)?;
        }
    }
    let long = |k: &str| -> i64 {
        effective(k, configs, broker)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let (min_lag, max_lag) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"));
    if min_lag > max_lag {
        return Err(TopicConfigError(format!(
            "conflict topic config setting min.compaction.lag.ms ({min_lag}) > max.compaction.lag.ms ({max_lag})"
        )));
    }
    let remote = effective("remote.storage.enable", configs, broker)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if remote && !broker.boolean("remote.log.storage.system.enable") {
        // kastle has no tiered storage: remote.log.storage.system.enable is
        // never honoured, and Kafka refuses such topics while it is off.
        return Err(TopicConfigError(
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.".into(),
        ));
    }
    Ok(())
}

/// Kafka's `ThrottledReplicaListValidator`: `*`, or `partition:broker` pairs.
fn validate_throttled_replicas(key: &str, v: &str) -> Result<(), TopicConfigError> {
    let items = list_items(v);
    let pair = |s: &str| {
        s.split_once(':').is_some_and(|(p, b)| {
            !p.is_empty()
                && !b.is_empty()
                && p.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
    };
    if items == ["*"] || items.iter().all(|s| pair(s)) {
        return Ok(());
    }
    Err(TopicConfigError(format!(
        "Invalid value {v} for configuration {key}: {key} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
    )))
}

/// The value the broker gives a topic key it defaults (Kafka's
/// `KafkaConfig.extractLogConfigMap`), before rendering.
fn broker_default(synonym: &str, broker: &BrokerConfig) -> Option<String> {
    Some(match synonym {
        "log.retention.ms" => broker.log_retention_ms.to_string(),
        "log.roll.ms" => broker.log_roll_ms.to_string(),
        "log.roll.jitter.ms" => broker
            .opt_int("log.roll.jitter.ms")
            .unwrap_or_else(|| {
                broker
                    .int("log.roll.jitter.hours")
                    .saturating_mul(3_600_000)
            })
            .to_string(),
        "log.flush.interval.ms" => broker
            .log_flush_interval_ms
            .unwrap_or_else(|| broker.int("log.flush.scheduler.interval.ms"))
            .to_string(),
        other => broker.value(other)?.to_string(),
    })
}

/// The value a topic sees for a key, as Kafka renders it: its own override,
/// else the broker's synonym, else Kafka's default.
pub fn effective(
    key: &str,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Option<String> {
    let tk = topic_key(key)?;
    let raw = overrides
        .get(key)
        .cloned()
        .or_else(|| tk.broker_synonym.and_then(|s| broker_default(s, broker)))
        .unwrap_or_else(|| tk.default.to_string());
    Some(render(tk.kind, &raw))
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
    /// `leader.replication.throttled.replicas` for this broker.
    pub leader_throttled: ThrottledReplicas,
    /// `follower.replication.throttled.replicas` for this broker.
    pub follower_throttled: ThrottledReplicas,
}

impl TopicSettings {
    /// How a producer's batch for this topic is validated (one batch, as
    /// Produce v3+ sends): the same checks for clients and for the broker's
    /// own producer-like writes (the share groups' dead-letter queue).
    pub fn produce_validation(&self) -> ValidationConfig {
        ValidationConfig {
            max_message_bytes: self.max_message_bytes.max(0) as usize,
            timestamp_type: if self.log_append_time {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            timestamp_before_max_ms: self.timestamp_before_max_ms,
            timestamp_after_max_ms: self.timestamp_after_max_ms,
            compacted: self.compacted,
            single_batch: true,
        }
    }

    pub fn resolve(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> TopicSettings {
        let get = |k: &str| effective(k, overrides, broker).unwrap_or_default();
        // The effective value always exists (override, broker synonym, or
        // the table's default), so the fallback only guards a table typo.
        let default = |k: &str| topic_key(k).map_or("0", |t| t.default);
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
        let policy = get("cleanup.policy");
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
            compacted: list_items(&policy).contains(&"compact"),
            cleanup_delete: list_items(&policy).contains(&"delete"),
            retention_ms: int("retention.ms"),
            retention_bytes: int("retention.bytes"),
            delete_retention_ms: int("delete.retention.ms"),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .trim()
                .parse::<f64>()
                .unwrap_or(0.5),
            min_compaction_lag_ms: int("min.compaction.lag.ms"),
            max_compaction_lag_ms: int("max.compaction.lag.ms"),
            file_delete_delay_ms: int("file.delete.delay.ms"),
            leader_throttled: ThrottledReplicas::parse(
                &get("leader.replication.throttled.replicas"),
                broker.node_id,
            ),
            follower_throttled: ThrottledReplicas::parse(
                &get("follower.replication.throttled.replicas"),
                broker.node_id,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(entries: &[(&str, &str)]) -> BrokerConfig {
        BrokerConfig::from_entries(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn validation_names_unknown_and_bad_values() {
        let b = broker(&[]);
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "1000".to_string());
        assert!(validate_topic_configs(&c, &b).is_ok());
        c.insert("cleanup.policy".to_string(), "compact,delete".to_string());
        assert!(validate_topic_configs(&c, &b).is_ok());
        c.insert("cleanup.policy".to_string(), "shred".to_string());
        assert!(validate_topic_configs(&c, &b).is_err());
        c.remove("cleanup.policy");
        c.insert("no.such.key".to_string(), "1".to_string());
        assert_eq!(
            validate_topic_configs(&c, &b).unwrap_err().0,
            "Unknown topic config name: no.such.key"
        );
        let mut c = BTreeMap::new();
        c.insert("segment.bytes".to_string(), "1000".to_string());
        assert!(validate_topic_configs(&c, &b).is_err());
    }

    #[test]
    fn kafka_4_4_keys_and_rules_between_keys() {
        let b = broker(&[]);
        let ok = |pairs: &[(&str, &str)]| {
            let c: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            validate_topic_configs(&c, &b)
        };
        assert!(ok(&[("max.decompressed.message.bytes", "1048576")]).is_ok());
        assert!(ok(&[("max.decompressed.message.bytes", "0")]).is_err());
        assert!(ok(&[
            ("remote.copy.lag.ms", "-1"),
            ("remote.copy.lag.bytes", "-1")
        ])
        .is_ok());
        assert!(ok(&[("errors.deadletterqueue.group.enable", "true")]).is_ok());
        assert!(ok(&[("remote.log.copy.disable", "maybe")]).is_err());
        assert!(ok(&[("leader.replication.throttled.replicas", "0:1,1:1")]).is_ok());
        assert!(ok(&[("leader.replication.throttled.replicas", "*")]).is_ok());
        assert!(ok(&[("leader.replication.throttled.replicas", "x")]).is_err());
        let e = ok(&[
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "5"),
        ]);
        assert!(e.unwrap_err().0.contains("min.compaction.lag.ms (10)"));
        let e = ok(&[("remote.storage.enable", "true")]).unwrap_err();
        assert!(
            e.0.starts_with("Tiered Storage functionality is disabled"),
            "{e:?}"
        );
    }

    #[test]
    fn effective_values_fall_back_to_broker_synonyms() {
        let b = broker(&[
            ("message.max.bytes", "2000"),
            ("log.retention.hours", "1"),
            ("log.cleanup.policy", "compact, delete"),
        ]);
        let mut o = BTreeMap::new();
        assert_eq!(
            effective("max.message.bytes", &o, &b).as_deref(),
            Some("2000")
        );
        assert_eq!(
            effective("retention.ms", &o, &b).as_deref(),
            Some("3600000")
        );
        assert_eq!(
            effective("cleanup.policy", &o, &b).as_deref(),
            Some("compact,delete")
        );
        assert_eq!(
            effective("min.cleanable.dirty.ratio", &o, &b).as_deref(),
            Some("0.5")
        );
        assert_eq!(
            effective("flush.ms", &o, &b).as_deref(),
            Some("9223372036854775807")
        );
        o.insert("max.message.bytes".to_string(), "10".to_string());
        assert_eq!(TopicSettings::resolve(&o, &b).max_message_bytes, 10);
        assert!(TopicSettings::resolve(&o, &b).durable);
        assert!(TopicSettings::resolve(&o, &b).compacted);
    }

    #[test]
    fn every_broker_synonym_is_a_broker_key_and_defaults_are_valid() {
        for k in TOPIC_KEYS {
            if let Some(s) = k.broker_synonym {
                assert!(
                    crate::config::keys::broker_key(s).is_some(),
                    "{} -> {s}",
                    k.name
                );
            }
            validate_kind(k.name, k.kind, k.default)
                .unwrap_or_else(|e| panic!("default of {}: {e}", k.name));
        }
    }
}
