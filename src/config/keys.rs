//! The broker key table: every key kastle knows with its type, bounds and
//! Kafka 4.x default (the one place defaults are written), value validation,
//! and the keys a single node accepts but has no use for.

use super::ConfigError;

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
pub const DEFAULT_LISTENERS: &str = "PLAINTEXT://:9092";
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
    key("max.connections.per.ip", Kind::Int(0, I32), Some("2147483647")),
    // `host:count,...`; hosts are resolved at start-up.
    key("max.connections.per.ip.overrides", Kind::List, Some("")),
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

/// The table's default of `name`.
pub fn default_of(name: &str) -> Option<&'static str> {
    key_def(name).and_then(|k| k.default)
}

/// Keys a listener may override as `listener.name.<listener>.<key>`.
const PER_LISTENER_KEYS: &[&str] = &["max.connections"];

pub fn key_def(name: &str) -> Option<&'static KeyDef> {
    let base = per_listener_key(name).map_or(name, |(_, key)| key);
    BROKER_KEYS.iter().find(|k| k.name == base)
}

/// `listener.name.<listener>.<key>` → (listener, key) for the keys a
/// listener may override (Kafka's listener-prefixed configs).
pub fn per_listener_key(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("listener.name.")?;
    let (listener, key) = rest.split_once('.')?;
    (!listener.is_empty() && PER_LISTENER_KEYS.contains(&key)).then_some((listener, key))
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

/// A value as it may appear in a log line: secrets (passwords, JAAS
/// configurations, licences, tokens) are hidden, as Kafka hides its
/// password-typed settings.
pub fn shown<'a>(key: &str, value: &'a str) -> &'a str {
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
pub fn not_needed_reason(key: &str, value: &str) -> Option<&'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_valid_for_its_kind_and_every_key_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for k in BROKER_KEYS {
            assert!(seen.insert(k.name), "{} listed twice", k.name);
            if let Some(d) = k.default {
                validate(k, d).unwrap_or_else(|e| panic!("default of {}: {e}", k.name));
            }
        }
    }
}
