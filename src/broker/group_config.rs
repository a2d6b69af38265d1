//! Kafka's `GroupConfig` (the GROUP config resource of Kafka 4.x, KIP-848
//! era): the group keys with their types, defaults and broker synonyms,
//! and their validation against the broker's group-coordinator bounds
//! (`GroupConfig.validate`). Shared by the group coordinator's
//! `GroupConfigManager` (standalone: describes and alters them; cluster:
//! describes them from the metadata image) and the controller's
//! `ConfigurationControlManager`, which validates GROUP ConfigRecords with
//! its own bounds before writing them.

use kafka_protocol::ResponseError;

use crate::broker::config_repository::Configs;
use crate::broker::dynamic_config::ConfigChangeError;
use crate::config::keys::{broker_key, list_items, render, validate_kind};
use crate::config::{BrokerConfig, Kind};

pub struct GroupKey {
    pub name: &'static str,
    pub kind: Kind,
    /// The default when the broker has no synonym (Kafka's `GroupConfig` default).
    pub default: Option<&'static str>,
    /// The broker key whose value is the default.
    pub broker_synonym: Option<&'static str>,
    /// Kafka lists internal keys only when they are set.
    pub internal: bool,
    pub doc: &'static str,
}

const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;

const fn g(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    broker_synonym: Option<&'static str>,
    internal: bool,
    doc: &'static str,
) -> GroupKey {
    GroupKey {
        name,
        kind,
        default,
        broker_synonym,
        internal,
        doc,
    }
}

/// Kafka 4.4 group configuration keys, in name order.
#[rustfmt::skip]
pub static GROUP_KEYS: &[GroupKey] = &[
    g("consumer.assignment.interval.ms", Kind::Int(0, I32), Some("1000"), Some("group.consumer.assignment.interval.ms"), false, "Interval between assignment updates of a KIP-848 consumer group."),
    g("consumer.assignor.offload.enable", Kind::Bool, Some("true"), Some("group.consumer.assignor.offload.enable"), true, "Whether a consumer group's assignment runs off the coordinator thread."),
    g("consumer.heartbeat.interval.ms", Kind::Int(1, I32), Some("5000"), Some("group.consumer.heartbeat.interval.ms"), false, "Heartbeat interval given to the members of a KIP-848 consumer group."),
    g("consumer.session.timeout.ms", Kind::Int(1, I32), Some("45000"), Some("group.consumer.session.timeout.ms"), false, "Session timeout of the members of a KIP-848 consumer group."),
    g("errors.deadletterqueue.copy.record.enable", Kind::Bool, Some("false"), None, false, "Whether a share group's dead-letter records carry the original record."),
    g("errors.deadletterqueue.topic.name", Kind::Str, Some(""), None, false, "Dead-letter topic of a share group."),
    g("share.assignment.interval.ms", Kind::Int(0, I32), Some("1000"), Some("group.share.assignment.interval.ms"), false, "Interval between assignment updates of a share group."),
    g("share.assignor.offload.enable", Kind::Bool, Some("true"), Some("group.share.assignor.offload.enable"), true, "Whether a share group's assignment runs off the coordinator thread."),
    g("share.auto.offset.reset", Kind::Str, Some("latest"), None, false, "Where a share group starts: earliest, latest or by_duration:<ISO-8601 duration>."),
    g("share.delivery.count.limit", Kind::Int(2, I32), Some("5"), Some("group.share.delivery.count.limit"), false, "Delivery attempts of a record to a share group."),
    g("share.heartbeat.interval.ms", Kind::Int(1, I32), Some("5000"), Some("group.share.heartbeat.interval.ms"), false, "Heartbeat interval given to the members of a share group."),
    g("share.isolation.level", Kind::Choice(&["read_committed", "read_uncommitted"]), Some("read_uncommitted"), None, false, "Whether a share group reads transactional records committed only."),
    g("share.partition.max.record.locks", Kind::Int(100, I32), Some("2000"), Some("group.share.partition.max.record.locks"), false, "In-flight record locks per share-partition."),
    g("share.record.lock.duration.ms", Kind::Int(1000, I32), Some("30000"), Some("group.share.record.lock.duration.ms"), false, "How long a share group member holds an acquired record."),
    g("share.renew.acknowledge.enable", Kind::Bool, Some("true"), None, false, "Whether share group members may renew acquisition locks."),
    g("share.session.timeout.ms", Kind::Int(1, I32), Some("45000"), Some("group.share.session.timeout.ms"), false, "Session timeout of the members of a share group."),
    g("streams.acceptable.recovery.lag", Kind::Long(0, I64), Some("10000"), Some("group.streams.acceptable.recovery.lag"), true, "Lag below which a streams task counts as caught up."),
    g("streams.assignment.interval.ms", Kind::Int(0, I32), Some("1000"), Some("group.streams.assignment.interval.ms"), false, "Interval between assignment updates of a streams group."),
    g("streams.assignor.name", Kind::Str, None, Some("group.streams.assignors"), false, "Task assignor of a streams group, by name."),
    g("streams.assignor.offload.enable", Kind::Bool, Some("true"), Some("group.streams.assignor.offload.enable"), true, "Whether a streams group's assignment runs off the coordinator thread."),
    g("streams.heartbeat.interval.ms", Kind::Int(1, I32), Some("5000"), Some("group.streams.heartbeat.interval.ms"), false, "Heartbeat interval given to the members of a streams group."),
    g("streams.initial.rebalance.delay.ms", Kind::Int(0, I32), Some("3000"), Some("group.streams.initial.rebalance.delay.ms"), false, "How long a new streams group waits for more members."),
    g("streams.num.standby.replicas", Kind::Int(0, I32), Some("0"), Some("group.streams.num.standby.replicas"), false, "Standby replicas of each streams task."),
    g("streams.num.warmup.replicas", Kind::Int(0, I32), Some("2"), Some("group.streams.num.warmup.replicas"), true, "Warm-up replicas of a streams group."),
    g("streams.rack.aware.assignment.tags", Kind::List, Some(""), Some("group.streams.rack.aware.assignment.tags"), false, "Client tags standby replicas are spread over."),
    g("streams.session.timeout.ms", Kind::Int(1, I32), Some("45000"), Some("group.streams.session.timeout.ms"), false, "Session timeout of the members of a streams group."),
    g("streams.task.offset.interval.ms", Kind::Int(1, I32), Some("60000"), Some("group.streams.task.offset.interval.ms"), true, "How often streams members report task offsets."),
];

pub fn group_key(name: &str) -> Option<&'static GroupKey> {
    GROUP_KEYS.iter().find(|k| k.name == name)
}

/// Kafka's internal broker keys behind internal group keys (not in the
/// broker key table, which lists what clients see): their defaults.
fn internal_broker_default(name: &str) -> Option<&'static str> {
    Some(match name {
        "group.consumer.assignor.offload.enable"
        | "group.share.assignor.offload.enable"
        | "group.streams.assignor.offload.enable" => "true",
        "group.streams.acceptable.recovery.lag" => "10000",
        "group.streams.num.warmup.replicas" => "2",
        "group.streams.task.offset.interval.ms" => "60000",
        "group.streams.max.warmup.replicas" => "20",
        "group.streams.min.task.offset.interval.ms" => "15000",
        _ => return None,
    })
}

/// A broker key's current value, internal ones included.
pub fn broker_value(broker: &BrokerConfig, name: &str) -> Option<String> {
    match broker_key(name) {
        Some(d) => broker.value(name).map(|v| render(d.kind, v)),
        None => internal_broker_default(name).map(str::to_string),
    }
}

fn broker_int(broker: &BrokerConfig, name: &str) -> i64 {
    broker_value(broker, name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn bad_config(message: impl Into<String>) -> ConfigChangeError {
    ConfigChangeError {
        code: ResponseError::InvalidConfig,
        message: message.into(),
    }
}

/// `share.auto.offset.reset`: earliest, latest or `by_duration:` and a
/// non-negative ISO-8601 duration (`PnDTnHnMn.nS`).
fn valid_auto_offset_reset(v: &str) -> bool {
    let v = v.trim();
    if v.eq_ignore_ascii_case("earliest") || v.eq_ignore_ascii_case("latest") {
        return true;
    }
    let Some(d) = v.strip_prefix("by_duration:") else {
        return false;
    };
    let d = d.trim().to_ascii_uppercase();
    let Some(rest) = d.strip_prefix('P') else {
        return false;
    };
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) => (days, Some(time)),
        None => (rest, None),
    };
    let mut any = false;
    let number = |s: &str, frac: bool| {
        !s.is_empty()
            && s.split_once('.')
                .map_or(s.bytes().all(|b| b.is_ascii_digit()), |(a, b)| {
                    frac && !a.is_empty()
                        && a.bytes().all(|c| c.is_ascii_digit())
                        && b.bytes().all(|c| c.is_ascii_digit())
                })
    };
    if !days.is_empty() {
        match days.strip_suffix('D') {
            Some(n) if number(n, false) => any = true,
            _ => return false,
        }
    }
    if let Some(mut time) = time {
        if time.is_empty() {
            return false;
        }
        for unit in ['H', 'M', 'S'] {
            if let Some(i) = time.find(unit) {
                if !number(&time[..i], unit == 'S') {
                    return false;
                }
                any = true;
                time = &time[i + 1..];
            }
        }
        if !time.is_empty() {
            return false;
        }
    }
    any
}

/// Kafka's `GroupConfig.validate`: names, types, then the keys that were
/// given against the broker's bounds.
pub fn validate_group_configs(
    configs: &Configs,
    broker: &BrokerConfig,
) -> Result<(), ConfigChangeError> {
    for k in configs.keys() {
        if group_key(k).is_none() {
            return Err(bad_config(format!("Unknown group config name: {k}")));
        }
    }
    if let Some(tags) = configs.get("streams.rack.aware.assignment.tags") {
        let items = list_items(tags);
        let mut seen = std::collections::HashSet::new();
        if items.iter().any(|t| !seen.insert(*t)) {
            return Err(bad_config(
                "streams.rack.aware.assignment.tags must not contain duplicate tag keys.",
            ));
        }
    }
    for (k, v) in configs {
        if let Some(key) = group_key(k) {
            validate_kind(k, key.kind, v).map_err(|e| bad_config(e.0))?;
        }
    }
    if let Some(v) = configs.get("share.auto.offset.reset") {
        if !valid_auto_offset_reset(v) {
            return Err(bad_config(format!(
                "Invalid value {v} for configuration share.auto.offset.reset: Invalid value `{v}` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."
            )));
        }
    }
    let given = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let range = |k: &str, lo: &str, hi: &str| -> Result<(), ConfigChangeError> {
        let (lo, hi) = (broker_int(broker, lo), broker_int(broker, hi));
        match given(k) {
            Some(v) if v < lo || v > hi => Err(bad_config(format!(
                "{k} must be in the range {lo} to {hi} inclusive."
            ))),
            _ => Ok(()),
        }
    };
    for family in ["consumer", "share", "streams"] {
        let g = |s: &str| format!("group.{family}.{s}");
        range(
            &format!("{family}.heartbeat.interval.ms"),
            &g("min.heartbeat.interval.ms"),
            &g("max.heartbeat.interval.ms"),
        )?;
        range(
            &format!("{family}.session.timeout.ms"),
            &g("min.session.timeout.ms"),
            &g("max.session.timeout.ms"),
        )?;
        range(
            &format!("{family}.assignment.interval.ms"),
            &g("min.assignment.interval.ms"),
            &g("max.assignment.interval.ms"),
        )?;
    }
    range(
        "share.record.lock.duration.ms",
        "group.share.min.record.lock.duration.ms",
        "group.share.max.record.lock.duration.ms",
    )?;
    range(
        "share.delivery.count.limit",
        "group.share.min.delivery.count.limit",
        "group.share.max.delivery.count.limit",
    )?;
    range(
        "share.partition.max.record.locks",
        "group.share.min.partition.max.record.locks",
        "group.share.max.partition.max.record.locks",
    )?;
    let at_most = |k: &str, max_key: &str| match given(k) {
        Some(v) if v > broker_int(broker, max_key) => Err(bad_config(format!(
            "{k} must be less than or equal to {}",
            broker_int(broker, max_key)
        ))),
        _ => Ok(()),
    };
    at_most(
        "streams.num.standby.replicas",
        "group.streams.max.standby.replicas",
    )?;
    if let Some(v) = given("streams.task.offset.interval.ms") {
        let min = broker_int(broker, "group.streams.min.task.offset.interval.ms");
        if v < min {
            return Err(bad_config(format!(
                "streams.task.offset.interval.ms must be greater than or equal to {min}"
            )));
        }
    }
    at_most(
        "streams.num.warmup.replicas",
        "group.streams.max.warmup.replicas",
    )?;
    if let Some(name) = configs.get("streams.assignor.name") {
        let registered = broker_value(broker, "group.streams.assignors").unwrap_or_default();
        let names = list_items(&registered);
        if !names.contains(&name.trim()) {
            return Err(bad_config(format!(
                "streams.assignor.name '{name}' is not a registered task assignor. Registered assignors are: [{}].",
                names.join(", ")
            )));
        }
    }
    for family in ["consumer", "share", "streams"] {
        let (s, h) = (
            format!("{family}.session.timeout.ms"),
            format!("{family}.heartbeat.interval.ms"),
        );
        if given(&s).is_some() || given(&h).is_some() {
            let session = given(&s).unwrap_or_else(|| {
                broker_int(broker, &format!("group.{family}.session.timeout.ms"))
            });
            let heartbeat = given(&h).unwrap_or_else(|| {
                broker_int(broker, &format!("group.{family}.heartbeat.interval.ms"))
            });
            if session <= heartbeat {
                return Err(bad_config(format!("{s} must be greater than {h}")));
            }
        }
    }
    if let Some(t) = configs.get("errors.deadletterqueue.topic.name") {
        if t.starts_with("__") {
            return Err(bad_config(
                "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        for ok in [
            "earliest",
            "latest",
            "by_duration:PT1H",
            "by_duration:P1DT2H3M4.5S",
            "by_duration:P3D",
        ] {
            assert!(valid_auto_offset_reset(ok), "{ok}");
        }
        for bad in [
            "middle",
            "by_duration:",
            "by_duration:1H",
            "by_duration:PT",
            "by_duration:P-1D",
        ] {
            assert!(!valid_auto_offset_reset(bad), "{bad}");
        }
    }
}
