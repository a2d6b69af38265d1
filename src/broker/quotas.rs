//! `ClientQuotaManager`: the client quotas of Describe/AlterClientQuotas,
//! validated as Kafka's `ClientQuotaControlManager` validates them
//! (`controller::client_quota_control`) and, standalone, persisted in the
//! log directory (`client-quotas.properties`). In a cluster it holds no
//! file and follows the metadata image's ClientQuotaRecords.
//!
//! User and client-id quotas are enforced by [`QuotaManagers`], which sees
//! every change as it is made and the stored quotas at start-up.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kafka_protocol::ResponseError;

use crate::broker::quota_managers::QuotaManagers;
use crate::config::BrokerConfig;
use crate::util::fs::write_atomically;

const QUOTAS_FILE: &str = "client-quotas.properties";

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// An entity: (type, name) pairs sorted by type; `None` names the default
/// entity of that type.
pub type Entity = Vec<(String, Option<String>)>;
/// Every entity's quota values by key.
pub type QuotaMap = BTreeMap<Entity, BTreeMap<String, f64>>;

/// One change of AlterClientQuotas: set `key` to `value`, or remove it.
pub struct QuotaOp {
    pub key: String,
    pub value: f64,
    pub remove: bool,
}

/// A DescribeClientQuotas filter: exact names (None = default entity) and
/// types that must merely be present.
#[derive(Debug, Default)]
pub struct QuotaFilter {
    pub exact: BTreeMap<String, Option<String>>,
    pub typed: HashSet<String>,
}

/// A DescribeClientQuotas filter component as it arrives on the wire.
pub struct FilterComponent {
    pub entity_type: String,
    /// 0 exact, 1 default, 2 specified (Kafka's `MATCH_TYPE_*`).
    pub match_type: i8,
    pub matched: Option<String>,
}

pub struct ClientQuotaManager {
    /// The file a standalone node keeps; `None` in a cluster, where the
    /// quotas follow the metadata image.
    path: Option<PathBuf>,
    quotas: Mutex<QuotaMap>,
    /// Enforcement: the sensors and the limits in force.
    pub managers: QuotaManagers,
}

impl ClientQuotaManager {
    /// Loads the quotas a previous run persisted in `log_dir`.
    pub fn load(log_dir: &Path, config: &BrokerConfig) -> anyhow::Result<ClientQuotaManager> {
        let path = log_dir.join(QUOTAS_FILE);
        let quotas = match std::fs::read_to_string(&path) {
            Ok(text) => {
                parse_quotas(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => QuotaMap::new(),
            Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
        };
        let managers = QuotaManagers::new(config);
        managers.update(&quotas);
        Ok(ClientQuotaManager {
            path: Some(path),
            quotas: Mutex::new(quotas),
            managers,
        })
    }

    /// A cluster broker's quotas: no file, none until the first metadata
    /// image (the quotas are the cluster's, in its metadata log).
    pub fn for_cluster(config: &BrokerConfig) -> ClientQuotaManager {
        ClientQuotaManager {
            path: None,
            quotas: Mutex::new(QuotaMap::new()),
            managers: QuotaManagers::new(config),
        }
    }

    /// Takes the quotas of a new metadata image and puts them in force
    /// (cluster mode; Kafka's `ClientQuotaMetadataManager`).
    pub fn follow_image(&self, image: &crate::metadata::MetadataImage) {
        let next = image.client_quotas.0.clone();
        let mut quotas = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
        self.managers.update(&next);
        *quotas = next;
    }

    /// Applies AlterClientQuotas entries in order: each entity's outcome
    /// (a validation message on failure), then whether persisting the
    /// changes failed (`Err(message)` applies to every valid entry).
    pub fn alter(
        &self,
        entries: Vec<(Entity, Vec<QuotaOp>)>,
        validate_only: bool,
    ) -> (Vec<Result<(), String>>, Result<(), String>) {
        let mut quotas = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = false;
        let mut outcomes = Vec::with_capacity(entries.len());
        for (mut entity, ops) in entries {
            entity.sort();
            let outcome = validate_alteration(&entity, &ops);
            if outcome.is_ok() && !validate_only {
                let values = quotas.entry(entity.clone()).or_default();
                for o in ops {
                    if o.remove {
                        changed |= values.remove(&o.key).is_some();
                    } else {
                        changed = true;
                        values.insert(o.key, o.value);
                    }
                }
                if values.is_empty() {
                    quotas.remove(&entity);
                }
            }
            outcomes.push(outcome);
        }
        if changed {
            // In force at once, as Kafka applies a quota record.
            self.managers.update(&quotas);
        }
        let persisted = match &self.path {
            _ if !changed => Ok(()),
            None => {
                Err("client quotas are the cluster's: alter them through the controller".into())
            }
            Some(path) => write_atomically(path, render_quotas(&quotas).as_bytes())
                .map_err(|e| format!("writing {}: {e}", path.display())),
        };
        (outcomes, persisted)
    }

    /// The entities (and their values) a DescribeClientQuotas filter selects.
    pub fn describe(
        &self,
        filter: &QuotaFilter,
        strict: bool,
    ) -> Vec<(Entity, Vec<(String, f64)>)> {
        let quotas = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
        quotas
            .iter()
            .filter(|(e, _)| matches(e, filter, strict))
            .map(|(e, values)| {
                let values = values.iter().map(|(k, v)| (k.clone(), *v)).collect();
                (e.clone(), values)
            })
            .collect()
    }
}

/// The config type of a quota key in Kafka's `QuotaConfig` definitions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Double,
    Int,
    Long,
}

/// The keys an entity of these types may set (Kafka's `ipConfigs` for an
/// ip entity, `userAndClientQuotaConfigs` otherwise).
fn key_type(has_ip: bool, key: &str) -> Option<KeyType> {
    if has_ip {
        return (key == "connection_creation_rate").then_some(KeyType::Int);
    }
    match key {
        "producer_byte_rate" | "consumer_byte_rate" => Some(KeyType::Long),
        "request_percentage" | "controller_mutation_rate" => Some(KeyType::Double),
        _ => None,
    }
}

/// Kafka's `ClientQuotaEntity.toString`, for messages.
pub fn entity_string(entity: &Entity) -> String {
    let entries: Vec<String> = entity
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("null")))
        .collect();
    format!("ClientQuotaEntity(entries={{{}}})", entries.join(", "))
}

/// Kafka's `validateEntity` and `configKeysForEntityType`: whether the
/// entity names known types once each, with non-empty names, in an allowed
/// combination; `Ok(has_ip)`.
fn validate_entity(entity: &Entity) -> Result<bool, String> {
    if entity.is_empty() {
        return Err("Invalid empty client quota entity".into());
    }
    let mut seen = HashSet::new();
    for (t, n) in entity {
        if !seen.insert(t.as_str()) {
            return Err(format!(
                "Invalid client quota entity, duplicate entity entry {t}"
            ));
        }
        if t != USER && t != CLIENT_ID && t != IP {
            return Err(format!("Unhandled client quota entity type: {t}"));
        }
        if n.as_deref() == Some("") {
            return Err(format!("Empty {t} not supported"));
        }
    }
    let has_ip = seen.contains(IP);
    if has_ip && seen.len() > 1 {
        return Err(
            "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
                .into(),
        );
    }
    if let Some((_, Some(ip))) = entity.iter().find(|(t, _)| t == IP) {
        // Kafka also accepts resolvable host names; kastle does not
        // resolve names inside a request.
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("{ip} is not a valid IP or resolvable host."));
        }
    }
    Ok(has_ip)
}

/// Kafka's `validateQuotaKeyValue`.
fn validate_key_value(has_ip: bool, key: &str, value: f64) -> Result<(), String> {
    let Some(kind) = key_type(has_ip, key) else {
        return Err(format!("Invalid configuration key {key}"));
    };
    if value <= 0.0 {
        return Err(format!("Quota {key} must be greater than 0"));
    }
    let too_large = match kind {
        KeyType::Double => return Ok(()),
        KeyType::Int => (value > f64::from(i32::MAX)).then_some("an INT"),
        KeyType::Long => (value > i64::MAX as f64).then_some("a LONG"),
    };
    if let Some(what) = too_large {
        return Err(format!("Proposed value for {key} is too large for {what}."));
    }
    // Kafka's remainder test; a NaN is no whole number either.
    if value.is_nan() || (value % 1.0).abs() > 1e-6 {
        return Err(format!("{key} cannot be a fractional value."));
    }
    Ok(())
}

/// The request's entries as (entity, operations).
pub fn entries_of(
    req: &kafka_protocol::messages::AlterClientQuotasRequest,
) -> Vec<(Entity, Vec<QuotaOp>)> {
    req.entries
        .iter()
        .map(|e| {
            let entity = e
                .entity
                .iter()
                .map(|d| {
                    (
                        d.entity_type.to_string(),
                        d.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect();
            let ops = e
                .ops
                .iter()
                .map(|o| QuotaOp {
                    key: o.key.to_string(),
                    value: o.value,
                    remove: o.remove,
                })
                .collect();
            (entity, ops)
        })
        .collect()
}

/// One entity's alteration as Kafka's controller checks it: the entity,
/// then each key set (removals need no check). A key named twice is refused.
pub fn validate_alteration(entity: &Entity, ops: &[QuotaOp]) -> Result<(), String> {
    let mut keys = HashSet::new();
    for o in ops {
        if !keys.insert(o.key.as_str()) {
            return Err(format!(
                "Duplicate quota key {} not updating quota for this entity {}",
                o.key,
                entity_string(entity)
            ));
        }
    }
    let has_ip = validate_entity(entity)?;
    for o in ops.iter().filter(|o| !o.remove) {
        validate_key_value(has_ip, &o.key, o.value)?;
    }
    Ok(())
}

/// Checks a DescribeClientQuotas filter as Kafka does: the error code and
/// message to answer with when it is refused.
pub fn parse_filter(
    components: impl IntoIterator<Item = FilterComponent>,
) -> Result<QuotaFilter, (ResponseError, String)> {
    let invalid = |m: String| (ResponseError::InvalidRequest, m);
    let mut f = QuotaFilter::default();
    for c in components {
        let t = c.entity_type;
        if t.is_empty() {
            return Err(invalid("Invalid empty entity type.".into()));
        }
        if f.exact.contains_key(&t) || f.typed.contains(&t) {
            return Err(invalid(format!(
                "Entity type {t} cannot appear more than once in the filter."
            )));
        }
        if t != USER && t != CLIENT_ID && t != IP {
            return Err((
                ResponseError::UnsupportedVersion,
                format!("Unsupported entity type {t}"),
            ));
        }
        match c.match_type {
            0 => {
                let Some(m) = c.matched else {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                    ));
                };
                f.exact.insert(t, Some(m));
            }
            1 => {
                if c.matched.is_some() {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                            .into(),
                    ));
                }
                f.exact.insert(t, None);
            }
            2 => {
                if c.matched.is_some() {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                            .into(),
                    ));
                }
                f.typed.insert(t);
            }
            other => return Err(invalid(format!("Unknown match type {other}"))),
        }
    }
    let has = |t: &str| f.exact.contains_key(t) || f.typed.contains(t);
    if has(IP) && (has(USER) || has(CLIENT_ID)) {
        return Err(invalid(
            "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.".into(),
        ));
    }
    Ok(f)
}

fn matches(entity: &Entity, f: &QuotaFilter, strict: bool) -> bool {
    let get = |t: &str| entity.iter().find(|(et, _)| et == t);
    let exact_ok = f
        .exact
        .iter()
        .all(|(t, n)| get(t).is_some_and(|(_, en)| en == n));
    // A "specified" component matches any entity with that type, as in
    // Kafka's ClientQuotasImage.
    let typed_ok = f.typed.iter().all(|t| get(t).is_some());
    let strict_ok = !strict || entity.len() == f.exact.len() + f.typed.len();
    exact_ok && typed_ok && strict_ok
}

/// Percent-encodes everything outside `[A-Za-z0-9._-]`, so names survive
/// the line format whatever they contain.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn dec(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// One line per quota: `<type>[=<name>],... <key> <value>`; a type without
/// `=` is that type's default entity.
fn render_quotas(q: &QuotaMap) -> String {
    let mut s = String::from("# kastle client quotas\n");
    for (entity, values) in q {
        let e: Vec<String> = entity
            .iter()
            .map(|(t, n)| match n {
                Some(n) => format!("{}={}", enc(t), enc(n)),
                None => enc(t),
            })
            .collect();
        for (k, v) in values {
            s.push_str(&format!("{} {} {v}\n", e.join(","), enc(k)));
        }
    }
    s
}

fn parse_quotas(text: &str) -> Result<QuotaMap, String> {
    let mut q = QuotaMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("line {}: {line:?}", i + 1);
        let mut fields = line.split(' ');
        let (Some(e), Some(k), Some(v), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad());
        };
        let mut entity = Entity::new();
        for part in e.split(',') {
            let (t, n) = match part.split_once('=') {
                Some((t, n)) => (dec(t).ok_or_else(bad)?, Some(dec(n).ok_or_else(bad)?)),
                None => (dec(part).ok_or_else(bad)?, None),
            };
            entity.push((t, n));
        }
        entity.sort();
        let value: f64 = v.parse().map_err(|_| bad())?;
        q.entry(entity)
            .or_default()
            .insert(dec(k).ok_or_else(bad)?, value);
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_file_round_trips_odd_names() {
        let mut q = QuotaMap::new();
        q.entry(vec![
            ("client-id".to_string(), Some("a b,c=d%".to_string())),
            ("user".to_string(), None),
        ])
        .or_default()
        .insert("producer_byte_rate".into(), 1024.0);
        q.entry(vec![("ip".to_string(), Some("10.0.0.1".to_string()))])
            .or_default()
            .insert("connection_creation_rate".into(), 0.5);
        let text = render_quotas(&q);
        assert_eq!(parse_quotas(&text).unwrap(), q);
        assert!(parse_quotas("garbage").is_err());
    }

    #[test]
    fn filters_match_like_kafka() {
        let e: Entity = vec![("user".into(), Some("alice".into()))];
        let d: Entity = vec![("user".into(), None)];
        let mut f = QuotaFilter::default();
        assert!(matches(&e, &f, false) && !matches(&e, &f, true));
        f.exact.insert("user".into(), None);
        assert!(matches(&d, &f, true) && !matches(&e, &f, true));
        f.exact.clear();
        f.typed.insert("user".into());
        assert!(matches(&d, &f, true) && matches(&e, &f, true));
    }

    #[test]
    fn altered_quotas_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (config, _) = BrokerConfig::load(None, Vec::new(), &[]).unwrap();
        let m = ClientQuotaManager::load(dir.path(), &config).unwrap();
        let op = |k: &str, v: f64| QuotaOp {
            key: k.into(),
            value: v,
            remove: false,
        };
        let alice: Entity = vec![(USER.into(), Some("alice".into()))];
        let (outcomes, persisted) = m.alter(
            vec![
                (alice.clone(), vec![op("producer_byte_rate", 1024.0)]),
                (alice.clone(), vec![op("producer_byte_rate", 0.5)]),
            ],
            false,
        );
        assert!(persisted.is_ok());
        assert!(outcomes[0].is_ok());
        assert_eq!(
            outcomes[1].as_ref().unwrap_err(),
            "producer_byte_rate cannot be a fractional value."
        );
        let again = ClientQuotaManager::load(dir.path(), &config).unwrap();
        let all = again.describe(&QuotaFilter::default(), false);
        assert_eq!(
            all,
            vec![(alice, vec![("producer_byte_rate".into(), 1024.0)])]
        );
    }
}
