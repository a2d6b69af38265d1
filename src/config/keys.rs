//! What a configuration key is: its type and validator (Kafka's `ConfigDef`
//! types and validators), its update mode, value validation with Kafka's
//! messages, the rendering of values as Kafka's DescribeConfigs shows them,
//! and the keys a single node accepts but has no use for. The broker's own
//! key table is [`super::broker_keys::BROKER_KEYS`]; topic keys live in
//! `broker::topic_config` and group keys in `broker::group_config`.

pub use super::broker_keys::BROKER_KEYS;
use super::ConfigError;

/// A key's type with its validator (bounds inclusive).
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    /// Kafka's INT.
    Int(i64, i64),
    /// Kafka's SHORT.
    Short(i64, i64),
    /// Kafka's LONG.
    Long(i64, i64),
    Double(f64, f64),
    Str,
    /// A STRING that may not be empty.
    NonEmptyStr,
    /// A STRING from a fixed set (case-insensitive, as kastle has always
    /// accepted `GZIP` for `gzip`).
    Choice(&'static [&'static str]),
    /// Kafka's `CaseInsensitiveValidString`.
    ChoiceNoCase(&'static [&'static str]),
    List,
    /// A LIST that may not be empty.
    NonEmptyList,
    /// A LIST whose items come from a fixed set (Kafka's `ValidList`).
    ListOf(&'static [&'static str]),
    /// A Java class name.
    Class,
    /// A secret: never shown (Kafka's PASSWORD).
    Password,
    /// `compression.gzip.level`: 1 to 9, or -1 for zlib's default.
    GzipLevel,
}

/// Kafka's `DescribeConfigsResponse.ConfigType` ids.
pub mod config_type {
    pub const UNKNOWN: i8 = 0;
    pub const BOOLEAN: i8 = 1;
    pub const STRING: i8 = 2;
    pub const INT: i8 = 3;
    pub const SHORT: i8 = 4;
    pub const LONG: i8 = 5;
    pub const DOUBLE: i8 = 6;
    pub const LIST: i8 = 7;
    pub const CLASS: i8 = 8;
    pub const PASSWORD: i8 = 9;
}

impl Kind {
    /// The type DescribeConfigs v3+ reports.
    pub fn config_type(&self) -> i8 {
        match self {
            Kind::Bool => config_type::BOOLEAN,
            Kind::Int(..) | Kind::GzipLevel => config_type::INT,
            Kind::Short(..) => config_type::SHORT,
            Kind::Long(..) => config_type::LONG,
            Kind::Double(..) => config_type::DOUBLE,
            Kind::Str | Kind::NonEmptyStr | Kind::Choice(_) | Kind::ChoiceNoCase(_) => {
                config_type::STRING
            }
            Kind::List | Kind::NonEmptyList | Kind::ListOf(_) => config_type::LIST,
            Kind::Class => config_type::CLASS,
            Kind::Password => config_type::PASSWORD,
        }
    }

    pub fn is_list(&self) -> bool {
        self.config_type() == config_type::LIST
    }

    /// Kafka hides the values of PASSWORD keys.
    pub fn is_sensitive(&self) -> bool {
        matches!(self, Kind::Password)
    }
}

/// Whether Kafka can change a broker key while it runs, and at which level
/// (`DynamicBrokerConfig.dynamicConfigUpdateModes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only in the static configuration.
    ReadOnly,
    /// Per broker or as the cluster-wide default.
    ClusterWide,
    /// Per broker only (listeners, security).
    PerBroker,
}

pub struct KeyDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Kafka's default as DescribeConfigs renders it; `None` for null.
    pub default: Option<&'static str>,
    pub mode: Mode,
    /// kastle acts on the key (otherwise it is accepted, validated and
    /// described only).
    pub used: bool,
}

pub const DEFAULT_LISTENERS: &str = "PLAINTEXT://:9092";

/// The table's default of `name`.
pub fn default_of(name: &str) -> Option<&'static str> {
    key_def(name).and_then(|k| k.default)
}

/// Keys a listener may override as `listener.name.<listener>.<key>` at
/// start-up (kastle acts on these).
const PER_LISTENER_KEYS: &[&str] = &[
    "max.connections",
    // KIP-368 session lifetime and OAUTHBEARER validation
    // (`security::sasl`, `security::oauthbearer`).
    "connections.max.reauth.ms",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.server.callback.handler.class",
    // A SASL listener's mechanisms (`security::sasl`).
    "sasl.enabled.mechanisms",
    // A TLS listener's keys (`security::tls`).
    "ssl.cipher.suites",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.endpoint.identification.algorithm",
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.principal.mapping.rules",
    "ssl.protocol",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
];

/// The definition of a broker key; a `listener.name.<l>.<key>` override
/// kastle acts on resolves to its base key.
pub fn key_def(name: &str) -> Option<&'static KeyDef> {
    let base = per_listener_key(name).map_or(name, |(_, key)| key);
    broker_key(base)
}

/// The definition of exactly `name` in the broker key table.
pub fn broker_key(name: &str) -> Option<&'static KeyDef> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

/// `listener.name.<listener>.<key>` → (listener, key) for the keys a
/// listener may override (Kafka's listener-prefixed configs).
pub fn per_listener_key(name: &str) -> Option<(&str, &str)> {
    let (listener, key) = listener_prefixed(name)?;
    if PER_LISTENER_KEYS.contains(&key) {
        return Some((listener, key));
    }
    // `<mechanism>.sasl.jaas.config`: one JAAS configuration per SASL
    // mechanism (PLAIN's users; kastle reads no other mechanism's).
    let (mechanism, base) = key.split_once('.')?;
    (PER_MECHANISM_KEYS.contains(&base)
        && [
            "plain",
            "scram-sha-256",
            "scram-sha-512",
            "gssapi",
            "oauthbearer",
        ]
        .contains(&mechanism))
    .then_some((listener, base))
}

/// Keys a listener may set per SASL mechanism
/// (`listener.name.<l>.<mechanism>.<key>`).
const PER_MECHANISM_KEYS: &[&str] = &[
    "sasl.jaas.config",
    "connections.max.reauth.ms",
    "sasl.server.callback.handler.class",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
];

/// Any `listener.name.<listener>.<key>` → (listener, key).
pub fn listener_prefixed(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("listener.name.")?;
    let (listener, key) = rest.split_once('.')?;
    (!listener.is_empty() && !key.is_empty()).then_some((listener, key))
}

/// The broker keys that set the same thing as `name`, in Kafka's order of
/// precedence (`DynamicBrokerConfig.brokerConfigSynonyms`). With
/// `match_listener_override`, a `listener.name.<l>.<key>` has its base key
/// as a synonym.
pub fn broker_config_synonyms(name: &str, match_listener_override: bool) -> Vec<String> {
    const GROUPS: &[&[&str]] = &[
        &["log.roll.ms", "log.roll.hours"],
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
    ];
    if name == "log.flush.interval.ms" {
        // The flush scheduler interval is its default.
        return vec![name.into(), "log.flush.scheduler.interval.ms".into()];
    }
    if let Some(g) = GROUPS.iter().find(|g| g.contains(&name)) {
        return g.iter().map(|s| s.to_string()).collect();
    }
    if match_listener_override {
        if let Some((_, base)) = listener_prefixed(name) {
            // SASL mechanism configs are `<listener>.<mechanism>.<key>`.
            const MECHANISM_KEYS: &[&str] = &[
                "sasl.jaas.config",
                "sasl.login.callback.handler.class",
                "sasl.login.class",
                "sasl.server.callback.handler.class",
                "connections.max.reauth.ms",
            ];
            let base = MECHANISM_KEYS
                .iter()
                .find(|m| base.ends_with(*m))
                .copied()
                .unwrap_or(base);
            return vec![name.into(), base.into()];
        }
    }
    vec![name.into()]
}

/// Checks a value as Kafka's `ConfigDef` parses and validates it; the error
/// carries Kafka's message ("Invalid value X for configuration Y: why").
pub fn validate(def: &KeyDef, v: &str) -> Result<(), ConfigError> {
    validate_kind(def.name, def.kind, v)
}

pub fn validate_kind(name: &str, kind: Kind, v: &str) -> Result<(), ConfigError> {
    let bad =
        |why: String| ConfigError(format!("Invalid value {v} for configuration {name}: {why}"));
    let t = v.trim();
    let range = |n: i64, lo: i64, hi: i64| -> Result<(), ConfigError> {
        if n < lo {
            Err(bad(format!("Value must be at least {lo}")))
        } else if n > hi {
            Err(bad(format!("Value must be no more than {hi}")))
        } else {
            Ok(())
        }
    };
    match kind {
        Kind::Bool => {
            if !t.eq_ignore_ascii_case("true") && !t.eq_ignore_ascii_case("false") {
                return Err(bad("Expected value to be either true or false".into()));
            }
        }
        Kind::Int(lo, hi) => {
            let n: i32 = t
                .parse()
                .map_err(|_| bad("Not a number of type INT".into()))?;
            range(n.into(), lo, hi)?;
        }
        Kind::Short(lo, hi) => {
            let n: i16 = t
                .parse()
                .map_err(|_| bad("Not a number of type SHORT".into()))?;
            range(n.into(), lo, hi)?;
        }
        Kind::Long(lo, hi) => {
            let n: i64 = t
                .parse()
                .map_err(|_| bad("Not a number of type LONG".into()))?;
            range(n, lo, hi)?;
        }
        Kind::GzipLevel => {
            let n: i32 = t
                .parse()
                .map_err(|_| bad("Not a number of type INT".into()))?;
            if n != -1 && !(1..=9).contains(&n) {
                return Err(bad("Value must be between 1 and 9, or -1".into()));
            }
        }
        Kind::Double(lo, hi) => {
            let n: f64 = t
                .parse()
                .ok()
                .filter(|n: &f64| !n.is_nan())
                .ok_or_else(|| bad("Not a number of type DOUBLE".into()))?;
            if n < lo {
                return Err(bad(format!("Value must be at least {}", java_double(lo))));
            }
            if n > hi {
                return Err(bad(format!(
                    "Value must be no more than {}",
                    java_double(hi)
                )));
            }
        }
        Kind::NonEmptyStr => {
            if t.is_empty() {
                return Err(bad("String may not be empty".into()));
            }
        }
        Kind::Choice(options) | Kind::ChoiceNoCase(options) => {
            if !options.iter().any(|o| o.eq_ignore_ascii_case(t)) {
                let case = if matches!(kind, Kind::ChoiceNoCase(_)) {
                    " (case insensitive)"
                } else {
                    ""
                };
                return Err(bad(format!(
                    "String must be one of{case}: {}",
                    options.join(", ")
                )));
            }
        }
        Kind::NonEmptyList => {
            if list_items(t).is_empty() {
                return Err(bad("Empty list not allowed".into()));
            }
        }
        Kind::ListOf(options) => {
            let items = list_items(t);
            for item in &items {
                if !options.contains(item) {
                    return Err(bad(format!(
                        "String must be one of: {}",
                        options.join(", ")
                    )));
                }
            }
            let mut seen = std::collections::HashSet::new();
            if items.iter().any(|i| !seen.insert(*i)) {
                return Err(ConfigError(format!(
                    "Configuration '{name}' values must not be duplicated."
                )));
            }
        }
        Kind::Str | Kind::List | Kind::Class | Kind::Password => {}
    }
    Ok(())
}

/// The items of a LIST value, trimmed, empty ones dropped.
pub fn list_items(v: &str) -> Vec<&str> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A value as Kafka's DescribeConfigs shows it: parsed by its type and
/// rendered back (`ConfigDef.convertToString`): lists joined with `,`,
/// numbers without spaces, doubles as Java prints them, booleans in lower
/// case. Values that do not parse are shown as written.
pub fn render(kind: Kind, v: &str) -> String {
    let t = v.trim();
    match kind {
        Kind::Bool => t.to_ascii_lowercase(),
        Kind::Int(..) | Kind::Short(..) | Kind::Long(..) | Kind::GzipLevel => t
            .parse::<i64>()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| v.to_string()),
        Kind::Double(..) => t
            .parse::<f64>()
            .map(java_double)
            .unwrap_or_else(|_| v.to_string()),
        Kind::List | Kind::NonEmptyList | Kind::ListOf(_) => list_items(t).join(","),
        Kind::Class => t.to_string(),
        Kind::Str
        | Kind::NonEmptyStr
        | Kind::Choice(_)
        | Kind::ChoiceNoCase(_)
        | Kind::Password => v.to_string(),
    }
}

/// Java's `Double.toString`: plain decimal with at least one fractional
/// digit between 10^-3 and 10^7, else `d.dddE±n`, shortest round-trip digits.
pub fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        // Rust's `{:e}` gives the shortest digits: `1.7976931348623157e308`.
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
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
    if SECRET.iter().any(|s| key.contains(s)) || key_def(key).is_some_and(|d| d.kind.is_sensitive())
    {
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
/// The authorizer's own keys: outside the broker key table (Kafka hands
/// them to its authorizer with the original properties), read when
/// `authorizer.class.name` is set, never warned about.
pub const AUTHORIZER_KEYS: &[&str] = &["super.users", "allow.everyone.if.no.acl.found"];

const NOT_NEEDED_KEYS: &[&str] = &[
    "process.roles",
    "broker.rack",
    "initial.broker.registration.timeout.ms",
    "auto.leader.rebalance.enable",
    "num.replica.fetchers",
    "security.inter.broker.protocol",
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
                // Kafka's empty-list defaults of non-empty-list keys only
                // apply when the key is not set.
                if d.is_empty() && matches!(k.kind, Kind::NonEmptyList | Kind::NonEmptyStr) {
                    continue;
                }
                validate(k, d).unwrap_or_else(|e| panic!("default of {}: {e}", k.name));
            }
        }
        assert!(BROKER_KEYS.len() > 340, "{}", BROKER_KEYS.len());
    }

    #[test]
    fn kafka_messages_for_bad_values() {
        let d = broker_key("log.cleaner.backoff.ms").unwrap();
        assert_eq!(
            validate(d, "abc").unwrap_err().0,
            "Invalid value abc for configuration log.cleaner.backoff.ms: Not a number of type LONG"
        );
        let d = broker_key("log.cleaner.threads").unwrap();
        assert_eq!(
            validate(d, "-1").unwrap_err().0,
            "Invalid value -1 for configuration log.cleaner.threads: Value must be at least 0"
        );
        let d = broker_key("compression.type").unwrap();
        assert!(validate(d, "brotli")
            .unwrap_err()
            .0
            .ends_with("String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"));
        let d = broker_key("message.max.bytes").unwrap();
        assert!(validate(d, "3000000000").is_err(), "beyond INT");
        let d = broker_key("compression.gzip.level").unwrap();
        assert!(validate(d, "-1").is_ok() && validate(d, "0").is_err());
        let d = broker_key("log.cleanup.policy").unwrap();
        assert!(validate(d, "compact, delete").is_ok());
        assert!(validate(d, "compact,compact").is_err());
    }

    #[test]
    fn values_render_as_kafka_shows_them() {
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(0.9), "0.9");
        assert_eq!(java_double(1000.0), "1000.0");
        assert_eq!(java_double(52428800.0), "5.24288E7");
        assert_eq!(java_double(f64::MAX), "1.7976931348623157E308");
        assert_eq!(java_double(1e-4), "1.0E-4");
        assert_eq!(render(Kind::List, " a, b ,,c"), "a,b,c");
        assert_eq!(render(Kind::Bool, "TRUE"), "true");
        assert_eq!(render(Kind::Long(0, 10), " 7 "), "7");
    }

    #[test]
    fn listener_prefixed_keys() {
        assert_eq!(
            listener_prefixed("listener.name.plaintext.max.connections"),
            Some(("plaintext", "max.connections"))
        );
        assert_eq!(
            per_listener_key("listener.name.x.ssl.keystore.type"),
            Some(("x", "ssl.keystore.type"))
        );
        assert_eq!(per_listener_key("listener.name.x.ssl.provider"), None);
        assert!(key_def("listener.name.x.max.connections").is_some());
        assert_eq!(
            shown("listener.name.ssl.ssl.keystore.key", "PEM"),
            "[hidden]"
        );
        assert_eq!(
            shown("listener.name.ssl.ssl.keystore.location", "/k.pem"),
            "/k.pem"
        );
    }
}
