//! How configs are described (Kafka's `ConfigHelper`): for TOPIC and BROKER
//! resources, every key with its effective value, its source, its synonyms
//! in Kafka's order of precedence (this broker's dynamic configs, the
//! cluster's dynamic defaults, the static configuration, the defaults), its
//! type, whether it can change while the broker runs, and its
//! documentation; and the configs CreateTopics v5+ reports for a new topic
//! (the controller's `KafkaConfigSchema.resolveEffectiveTopicConfigs`).
//! Handlers turn these into DescribeConfigs and CreateTopics responses.

use std::collections::BTreeMap;

use crate::broker::dynamic_config::DynamicBrokerConfig;
use crate::broker::topic_config::{effective, TOPIC_KEYS};
use crate::config::docs;
use crate::config::keys::{
    broker_config_synonyms, broker_key, config_type, listener_prefixed, render,
};
use crate::config::{BrokerConfig, Mode, BROKER_KEYS};

/// Kafka's `DescribeConfigsResponse.ConfigSource` ids.
pub mod config_source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
    pub const GROUP_CONFIG: i8 = 8;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
}

/// One described config.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// The source of the value: the head of `synonyms`, else DEFAULT_CONFIG.
    pub source: i8,
    pub read_only: bool,
    pub sensitive: bool,
    pub config_type: i8,
    /// Always computed; the handler drops them unless asked for.
    pub synonyms: Vec<Synonym>,
    pub documentation: String,
}

impl ConfigEntry {
    pub fn new(
        name: &str,
        value: Option<String>,
        synonyms: Vec<Synonym>,
        read_only: bool,
        sensitive: bool,
        config_type: i8,
    ) -> ConfigEntry {
        ConfigEntry {
            name: name.to_string(),
            source: synonyms
                .first()
                .map_or(config_source::DEFAULT_CONFIG, |s| s.source),
            value: if sensitive { None } else { value },
            read_only,
            sensitive,
            config_type,
            synonyms,
            documentation: docs::doc(name),
        }
    }
}

/// The broker-side layers a synonym chain is read from.
pub struct Layers<'a> {
    pub per_broker: &'a BTreeMap<String, String>,
    pub cluster_default: &'a BTreeMap<String, String>,
    pub static_originals: &'a BTreeMap<String, String>,
}

impl<'a> Layers<'a> {
    pub fn of(
        dynamic: &'a DynamicBrokerConfig,
        per_broker: &'a BTreeMap<String, String>,
        cluster_default: &'a BTreeMap<String, String>,
    ) -> Layers<'a> {
        Layers {
            per_broker,
            cluster_default,
            static_originals: dynamic.static_config().originals(),
        }
    }
}

/// The default of a broker key as Kafka renders it (`KafkaConfig.defaultValues`).
fn broker_default(name: &str) -> Option<String> {
    let def = broker_key(name)?;
    def.default.map(|d| render(def.kind, d))
}

/// Kafka's `ConfigHelper.configSynonyms`: every source of each synonym, by
/// source then by the synonyms' order, starting at `name` itself (a base
/// key's listener overrides are left out).
pub fn config_synonyms(
    name: &str,
    synonyms: &[String],
    layers: &Layers<'_>,
    sensitive: bool,
) -> Vec<Synonym> {
    let mut out = Vec::new();
    let mut add = |map: &dyn Fn(&str) -> Option<String>, source: i8| {
        for s in synonyms {
            if let Some(v) = map(s) {
                out.push(Synonym {
                    name: s.clone(),
                    value: if sensitive { None } else { Some(v) },
                    source,
                });
            }
        }
    };
    add(
        &|s| layers.per_broker.get(s).cloned(),
        config_source::DYNAMIC_BROKER_CONFIG,
    );
    add(
        &|s| layers.cluster_default.get(s).cloned(),
        config_source::DYNAMIC_DEFAULT_BROKER_CONFIG,
    );
    add(
        &|s| layers.static_originals.get(s).cloned(),
        config_source::STATIC_BROKER_CONFIG,
    );
    add(&broker_default, config_source::DEFAULT_CONFIG);
    match out.iter().position(|s| s.name == name) {
        Some(i) => out.split_off(i),
        None => Vec::new(),
    }
}

/// Type of a broker key, its listener-prefixed form included; unknown keys
/// are UNKNOWN, and Kafka treats them as possibly sensitive.
fn broker_type(name: &str) -> (i8, bool) {
    let base = listener_prefixed(name).map_or(name, |(_, b)| b);
    match broker_key(name).or_else(|| broker_key(base)) {
        Some(d) => (d.kind.config_type(), d.kind.is_sensitive()),
        None => (config_type::UNKNOWN, true),
    }
}

fn broker_entry(
    name: &str,
    value: Option<String>,
    layers: &Layers<'_>,
    per_broker: bool,
) -> ConfigEntry {
    let (config_type, sensitive) = broker_type(name);
    let mut synonyms =
        config_synonyms(name, &broker_config_synonyms(name, true), layers, sensitive);
    if !per_broker {
        synonyms.retain(|s| s.source == config_source::DYNAMIC_DEFAULT_BROKER_CONFIG);
    }
    let read_only = broker_key(name).is_none_or(|d| d.mode == Mode::ReadOnly);
    ConfigEntry::new(name, value, synonyms, read_only, sensitive, config_type)
}

/// DescribeConfigs on this broker: every key of Kafka's broker
/// configuration, then the other keys set (custom and listener-prefixed
/// ones), each with its effective value. `wanted` filters by name.
pub fn describe_broker(
    dynamic: &DynamicBrokerConfig,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<ConfigEntry> {
    let current = dynamic.current();
    let (per, default) = (dynamic.per_broker(), dynamic.cluster_default());
    let layers = Layers::of(dynamic, &per, &default);
    let mut out = Vec::new();
    for def in BROKER_KEYS.iter().filter(|d| wanted(d.name)) {
        let value = current.value(def.name).map(|v| render(def.kind, v));
        out.push(broker_entry(def.name, value, &layers, true));
    }
    for (k, v) in current.originals() {
        if broker_key(k).is_none() && wanted(k) {
            out.push(broker_entry(k, Some(v.clone()), &layers, true));
        }
    }
    out
}

/// DescribeConfigs on the cluster-default broker resource: the dynamic
/// defaults only, with their values as set.
pub fn describe_broker_default(
    dynamic: &DynamicBrokerConfig,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<ConfigEntry> {
    let (per, default) = (dynamic.per_broker(), dynamic.cluster_default());
    let layers = Layers::of(dynamic, &per, &default);
    default
        .iter()
        .filter(|(k, _)| wanted(k))
        .map(|(k, v)| broker_entry(k, Some(v.clone()), &layers, false))
        .collect()
}

/// DescribeConfigs on a topic: every client-visible topic key with its
/// effective value; synonyms are the topic override, then the chain of its
/// broker synonym.
pub fn describe_topic(
    overrides: &BTreeMap<String, String>,
    dynamic: &DynamicBrokerConfig,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<ConfigEntry> {
    let current = dynamic.current();
    let (per, default) = (dynamic.per_broker(), dynamic.cluster_default());
    let layers = Layers::of(dynamic, &per, &default);
    TOPIC_KEYS
        .iter()
        .filter(|k| !k.internal && wanted(k.name))
        .map(|k| {
            let value = effective(k.name, overrides, &current);
            let mut synonyms = Vec::new();
            if overrides.contains_key(k.name) {
                synonyms.push(Synonym {
                    name: k.name.to_string(),
                    value: value.clone(),
                    source: config_source::DYNAMIC_TOPIC_CONFIG,
                });
            }
            if let Some(b) = k.broker_synonym {
                synonyms.extend(config_synonyms(
                    b,
                    &broker_config_synonyms(b, true),
                    &layers,
                    false,
                ));
            }
            ConfigEntry::new(k.name, value, synonyms, false, false, k.kind.config_type())
        })
        .collect()
}

/// (name, value, source) of every client-visible key of a topic created
/// with `overrides`, as CreateTopics v5+ reports them: the first of the
/// topic's own value, this broker's dynamic config, the cluster default,
/// the static configuration, Kafka's default.
pub fn created_topic_configs(
    overrides: &BTreeMap<String, String>,
    dynamic: &DynamicBrokerConfig,
) -> Vec<(&'static str, Option<String>, i8)> {
    let current: std::sync::Arc<BrokerConfig> = dynamic.current();
    let (per, default) = (dynamic.per_broker(), dynamic.cluster_default());
    let statics = dynamic.static_config().originals();
    TOPIC_KEYS
        .iter()
        .filter(|k| !k.internal)
        .map(|k| {
            let value = effective(k.name, overrides, &current);
            let source = if overrides.contains_key(k.name) {
                config_source::DYNAMIC_TOPIC_CONFIG
            } else {
                // Every broker key the topic key is read from, in order
                // (`ServerTopicConfigSynonyms.ALL_TOPIC_CONFIG_SYNONYMS`).
                let names = k
                    .broker_synonym
                    .map(|b| broker_config_synonyms(b, false))
                    .unwrap_or_default();
                let found = |m: &BTreeMap<String, String>| names.iter().any(|n| m.contains_key(n));
                if found(&per) {
                    config_source::DYNAMIC_BROKER_CONFIG
                } else if found(&default) {
                    config_source::DYNAMIC_DEFAULT_BROKER_CONFIG
                } else if found(statics) {
                    config_source::STATIC_BROKER_CONFIG
                } else {
                    config_source::DEFAULT_CONFIG
                }
            };
            (k.name, value, source)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::config_repository::ConfigRepository;
    use crate::broker::dynamic_config::{op, AlterOp, Alteration};
    use std::sync::Arc;

    fn service(entries: &[(&str, &str)]) -> (tempfile::TempDir, DynamicBrokerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec![("log.dirs".to_string(), dir.path().display().to_string())];
        all.extend(entries.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (cfg, _) = BrokerConfig::from_entries(all).unwrap();
        let repo = Arc::new(ConfigRepository::load(dir.path(), 1).unwrap());
        (dir, DynamicBrokerConfig::load(Arc::new(cfg), repo).unwrap())
    }

    fn find<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    fn syn(e: &ConfigEntry) -> Vec<(&str, Option<&str>, i8)> {
        e.synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_deref(), s.source))
            .collect()
    }

    #[test]
    fn broker_keys_describe_with_kafka_sources_and_synonyms() {
        let (_d, s) = service(&[("num.partitions", "1"), ("node.id", "1")]);
        let all = describe_broker(&s, &|_| true);
        assert!(all.len() >= 350, "{}", all.len());
        let np = find(&all, "num.partitions");
        assert_eq!(np.source, config_source::STATIC_BROKER_CONFIG);
        assert_eq!(
            syn(np),
            vec![
                ("num.partitions", Some("1"), 4),
                ("num.partitions", Some("1"), 5)
            ]
        );
        assert!(np.read_only);
        let id = find(&all, "broker.id");
        assert_eq!(
            syn(id),
            vec![("broker.id", Some("1"), 4), ("broker.id", Some("-1"), 5)]
        );
        let mir = find(&all, "min.insync.replicas");
        assert_eq!(mir.source, config_source::DYNAMIC_DEFAULT_BROKER_CONFIG);
        assert!(!mir.read_only);
        let ms = find(&all, "log.retention.ms");
        assert_eq!((ms.value.as_deref(), ms.source), (None, 5));
        assert!(ms.synonyms.is_empty());
        let pw = find(&all, "ssl.keystore.password");
        assert!(pw.sensitive && pw.value.is_none());
        assert_eq!(
            find(&all, "log.cleaner.min.cleanable.ratio")
                .value
                .as_deref(),
            Some("0.5")
        );

        let set = |per: bool, k: &str, v: &str| {
            s.alter(
                per,
                Alteration::Incremental(&[AlterOp {
                    name: k.into(),
                    op: op::SET,
                    value: Some(v.into()),
                }]),
                false,
            )
            .unwrap()
        };
        set(false, "log.retention.ms", "100000000");
        set(true, "log.cleaner.backoff.ms", "20000");
        set(true, "listener.name.plaintext.max.connections", "100");
        let all = describe_broker(&s, &|_| true);
        let ms = find(&all, "log.retention.ms");
        assert_eq!(
            syn(ms),
            vec![
                ("log.retention.ms", Some("100000000"), 3),
                ("log.retention.hours", Some("168"), 5)
            ]
        );
        let b = find(&all, "log.cleaner.backoff.ms");
        assert_eq!(
            syn(b),
            vec![
                ("log.cleaner.backoff.ms", Some("20000"), 2),
                ("log.cleaner.backoff.ms", Some("15000"), 5)
            ]
        );
        let l = find(&all, "listener.name.plaintext.max.connections");
        assert!(l.read_only);
        assert_eq!(l.config_type, config_type::INT);
        assert_eq!(
            syn(l),
            vec![
                ("listener.name.plaintext.max.connections", Some("100"), 2),
                ("max.connections", Some("2147483647"), 5)
            ]
        );

        let d = describe_broker_default(&s, &|_| true);
        let names: Vec<&str> = d.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["log.retention.ms", "min.insync.replicas"]);
        assert_eq!(syn(&d[0]), vec![("log.retention.ms", Some("100000000"), 3)]);

        let t = describe_topic(&BTreeMap::new(), &s, &|_| true);
        let r = find(&t, "retention.ms");
        assert_eq!((r.value.as_deref(), r.source), (Some("100000000"), 3));
        let cp = find(&t, "cleanup.policy");
        assert_eq!(syn(cp), vec![("log.cleanup.policy", Some("delete"), 5)]);
        assert!(find(&t, "segment.ms").synonyms.is_empty());
        assert!(t.iter().all(|e| !e.name.starts_with("internal.")));
    }

    #[test]
    fn created_topics_report_where_each_value_comes_from() {
        let (_d, s) = service(&[("log.retention.hours", "5")]);
        let mut o = BTreeMap::new();
        o.insert("cleanup.policy".to_string(), "compact".to_string());
        let c = created_topic_configs(&o, &s);
        let get = |n: &str| c.iter().find(|(k, _, _)| *k == n).cloned().unwrap();
        assert_eq!(get("cleanup.policy").2, config_source::DYNAMIC_TOPIC_CONFIG);
        assert_eq!(
            get("retention.ms"),
            ("retention.ms", Some("18000000".into()), 4)
        );
        assert_eq!(
            get("min.insync.replicas").2,
            config_source::DYNAMIC_DEFAULT_BROKER_CONFIG
        );
        assert_eq!(get("segment.bytes").2, config_source::DEFAULT_CONFIG);
        assert!(c
            .iter()
            .any(|(k, _, _)| *k == "max.decompressed.message.bytes"));
    }
}
