//! The console's JSON endpoints, read from the broker's own state (never
//! through a write path): `/api/overview` (cluster, brokers, counts, bytes,
//! broker configs), `/api/topics`, `/api/topics/{topic}` (partitions,
//! offsets, sizes, configs, throughput), `/api/groups`, `/api/groups/{group}`
//! (state, protocol, members and assignments, committed offsets and lag,
//! lag over time). What a viewer may not DESCRIBE is left out of lists and
//! refused (403) when named, as Kafka's Metadata and OffsetFetch do. Lag
//! is what `kafka-consumer-groups.sh` shows: the high watermark minus the
//! committed offset, never below zero.

use std::collections::BTreeMap;

use bytes::Buf;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;
use serde_json::{json, Value};

use crate::broker::config_helper::{self, config_source, ConfigEntry};
use crate::broker::topics::Topic;
use crate::handlers::KafkaApis;
use crate::security::acl::{AclOperation, ResourceType};

use super::auth::{Viewer, CLUSTER_NAME};
use super::samples::Sample;
use super::Console;

/// Query parameters one request may carry.
pub const MAX_PARAMS: usize = 16;

/// A refusal: an HTTP status and the message shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad(m: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: m.into(),
        }
    }
    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError {
            status: 403,
            message: m.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            message: m.into(),
        }
    }
    pub fn unavailable(m: impl Into<String>) -> ApiError {
        ApiError {
            status: 503,
            message: m.into(),
        }
    }
}

/// Decoded query parameters, each name at most once.
#[derive(Debug, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    pub fn parse(query: &str) -> Result<Params, ApiError> {
        let mut out = BTreeMap::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            if out.len() >= MAX_PARAMS {
                return Err(ApiError::bad(format!("more than {MAX_PARAMS} parameters")));
            }
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let (k, v) = (percent_decode(k, true)?, percent_decode(v, true)?);
            if out.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad(format!("parameter {k:?} given twice")));
            }
        }
        Ok(Params(out))
    }

    /// Refuses names other than `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad(format!(
                "unknown parameter {k:?} (expected one of {})",
                allowed.join(", ")
            ))),
            None => Ok(()),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// An integer parameter within `min..=max`, if given.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::bad(format!(
                "{name}: expected an integer from {min} to {max}, got {v:?}"
            ))),
        }
    }
}

/// `%XX` escapes (and, in a query, `+` for a space) decoded; the result
/// must be UTF-8.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Result<String, ApiError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ApiError::bad(format!("bad percent escape in {s:?}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::bad(format!("{s:?} is not UTF-8 once decoded")))
}

fn source_name(source: i8) -> &'static str {
    match source {
        config_source::DYNAMIC_TOPIC_CONFIG => "DYNAMIC_TOPIC_CONFIG",
        config_source::DYNAMIC_BROKER_CONFIG => "DYNAMIC_BROKER_CONFIG",
        config_source::DYNAMIC_DEFAULT_BROKER_CONFIG => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        config_source::STATIC_BROKER_CONFIG => "STATIC_BROKER_CONFIG",
        config_source::GROUP_CONFIG => "GROUP_CONFIG",
        _ => "DEFAULT_CONFIG",
    }
}

fn configs_json(entries: Vec<ConfigEntry>) -> Value {
    entries
        .into_iter()
        .map(|e| {
            json!({
                "name": e.name,
                // Sensitive values are already None, as DescribeConfigs shows them.
                "value": e.value,
                "source": source_name(e.source),
                "read_only": e.read_only,
                "sensitive": e.sensitive,
            })
        })
        .collect()
}

/// The topics the viewer may describe, by name.
fn visible_topics(apis: &KafkaApis, viewer: &Viewer<'_>) -> Vec<std::sync::Arc<Topic>> {
    let mut topics: Vec<_> = apis
        .replicas
        .topics
        .list()
        .into_iter()
        .filter(|t| viewer.may_describe_topic(&t.name))
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    topics
}

/// One partition's offsets and size.
fn partition_json(apis: &KafkaApis, t: &Topic, index: i32) -> Value {
    let Some(p) = t.partition(index) else {
        return Value::Null;
    };
    let s = p.state();
    let (leader, replicas, isr) = match &apis.cluster {
        Some(cache) => {
            let image = cache.image();
            match image
                .topic_by_name(&t.name)
                .and_then(|ti| ti.partitions.get(&index))
            {
                Some(r) => (r.leader, r.replicas.clone(), r.isr.clone()),
                None => (-1, Vec::new(), Vec::new()),
            }
        }
        None => (
            apis.config.node_id,
            vec![apis.config.node_id],
            vec![apis.config.node_id],
        ),
    };
    json!({
        "partition": index,
        "leader": leader,
        "replicas": replicas,
        "isr": isr,
        "log_start_offset": s.log_start_offset,
        "high_watermark": s.high_watermark,
        "last_stable_offset": s.high_watermark.min(s.first_unstable_offset),
        "messages": (s.high_watermark - s.log_start_offset).max(0),
        "size_bytes": p.size_bytes(),
        "bytes_in": p.metrics.bytes_in(),
        "messages_in": p.metrics.messages_in(),
        "bytes_out": p.metrics.bytes_out(),
    })
}

fn topic_summary(apis: &KafkaApis, t: &Topic) -> Value {
    let partitions: Vec<Value> = (0..t.partitions.len() as i32)
        .map(|i| partition_json(apis, t, i))
        .collect();
    let sum = |k: &str| -> i64 { partitions.iter().filter_map(|p| p[k].as_i64()).sum() };
    json!({
        "name": t.name,
        "id": crate::broker::topics::topic_id_string(&t.id),
        "internal": t.internal,
        "partition_count": t.partitions.len(),
        "size_bytes": sum("size_bytes"),
        "messages": sum("messages"),
        "bytes_in": sum("bytes_in"),
        "messages_in": sum("messages_in"),
        "partitions": partitions,
    })
}

fn throughput_json(console: &Console, topic: &str) -> Value {
    console
        .samples
        .throughput(topic)
        .into_iter()
        .map(|r| json!({"ts": r.ts_ms, "bytes_per_sec": r.bytes_per_sec, "messages_per_sec": r.messages_per_sec}))
        .collect()
}

pub fn overview(console: &Console, viewer: &Viewer<'_>) -> Value {
    let apis = &console.apis;
    let topics = visible_topics(apis, viewer);
    let summaries: Vec<Value> = topics.iter().map(|t| topic_summary(apis, t)).collect();
    let sum = |k: &str| -> i64 { summaries.iter().filter_map(|s| s[k].as_i64()).sum() };
    let brokers: Vec<Value> = match &apis.cluster {
        Some(cache) => cache
            .image()
            .brokers
            .values()
            .map(|b| {
                json!({
                    "id": b.id,
                    "rack": b.rack,
                    "fenced": b.fenced,
                    "endpoints": b.listeners.iter().map(|l| format!("{}://{}:{}", l.name, l.host, l.port)).collect::<Vec<_>>(),
                })
            })
            .collect(),
        None => vec![json!({
            "id": apis.config.node_id,
            "rack": apis.config.value("broker.rack"),
            "fenced": false,
            "endpoints": apis.config.advertised.iter().map(|l| format!("{}://{}:{}", l.name, l.host, l.port)).collect::<Vec<_>>(),
        })],
    };
    let broker_configs = viewer
        .may(
            AclOperation::DescribeConfigs,
            ResourceType::Cluster,
            CLUSTER_NAME,
        )
        .then(|| {
            configs_json(config_helper::describe_broker(
                &apis.dynamic_config,
                &|_| true,
            ))
        });
    let now = crate::util::now_ms();
    json!({
        "cluster_id": apis.cluster_id,
        "node_id": apis.config.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "kraft_mode": if apis.cluster.is_some() { "cluster" } else { "standalone" },
        "started_ms": console.started_ms,
        "uptime_ms": now - console.started_ms,
        "now_ms": now,
        "brokers": brokers,
        "topic_count": topics.len(),
        "partition_count": topics.iter().map(|t| t.partitions.len()).sum::<usize>(),
        "size_bytes": sum("size_bytes"),
        "messages": sum("messages"),
        "bytes_in": sum("bytes_in"),
        "messages_in": sum("messages_in"),
        "connections_open": apis.metrics.connections_open(),
        "group_count": apis.groups.list_groups().iter().filter(|g| viewer.may_describe_group(&g.group_id)).count(),
        "principal": viewer.principal.as_ref().map(|p| format!("{}:{}", p.principal_type, p.name)),
        "broker_configs": broker_configs,
    })
}

pub fn topics(console: &Console, viewer: &Viewer<'_>) -> Value {
    let apis = &console.apis;
    let list: Vec<Value> = visible_topics(apis, viewer)
        .iter()
        .map(|t| {
            let mut s = topic_summary(apis, t);
            s["throughput"] = throughput_json(console, &t.name);
            s
        })
        .collect();
    json!({ "topics": list })
}

pub fn topic(console: &Console, viewer: &Viewer<'_>, name: &str) -> Result<Value, ApiError> {
    let apis = &console.apis;
    crate::broker::topics::validate_topic_name(name).map_err(ApiError::bad)?;
    // Kafka refuses an unauthorized topic whether or not it exists.
    if !viewer.may_describe_topic(name) {
        return Err(ApiError::forbidden(format!(
            "not authorized to describe topic {name}"
        )));
    }
    let t = apis
        .replicas
        .topics
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("no topic {name}")))?;
    let mut out = topic_summary(apis, &t);
    out["throughput"] = throughput_json(console, name);
    out["configs"] = if viewer.may(AclOperation::DescribeConfigs, ResourceType::Topic, name) {
        configs_json(config_helper::describe_topic(
            &t.configs,
            &apis.dynamic_config,
            &|_| true,
        ))
    } else {
        Value::Null
    };
    Ok(out)
}

/// The group's committed offsets with the partition's end and the lag, for
/// topics the viewer may describe: (rows, total lag, lag per topic).
fn offsets_json(
    apis: &KafkaApis,
    viewer: &Viewer<'_>,
    group: &str,
) -> (Vec<Value>, i64, BTreeMap<String, i64>) {
    let committed = apis
        .groups
        .fetch_offsets(group, None, false)
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut total = 0i64;
    let mut per_topic = BTreeMap::new();
    for (topic, offsets) in committed {
        if !viewer.may_describe_topic(&topic) {
            continue;
        }
        let t = apis.replicas.topics.get(&topic);
        for o in offsets {
            if o.offset < 0 {
                continue;
            }
            let end = t
                .as_ref()
                .and_then(|t| t.partition(o.partition))
                .map(|p| p.state().high_watermark);
            let lag = end.map(|e| (e - o.offset).max(0));
            total += lag.unwrap_or(0);
            *per_topic.entry(topic.clone()).or_insert(0) += lag.unwrap_or(0);
            rows.push(json!({
                "topic": topic,
                "partition": o.partition,
                "committed_offset": o.offset,
                "high_watermark": end,
                "lag": lag,
                "metadata": o.metadata,
            }));
        }
    }
    (rows, total, per_topic)
}

pub fn groups(console: &Console, viewer: &Viewer<'_>) -> Value {
    let apis = &console.apis;
    let mut list = apis.groups.list_groups();
    list.retain(|g| viewer.may_describe_group(&g.group_id));
    list.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let groups: Vec<Value> = list
        .iter()
        .map(|g| {
            let (offsets, lag, _) = offsets_json(apis, viewer, &g.group_id);
            json!({
                "group_id": g.group_id,
                "state": g.state,
                "type": g.group_type,
                "protocol_type": g.protocol_type,
                "partitions": offsets.len(),
                "lag": lag,
            })
        })
        .collect();
    json!({ "groups": groups })
}

/// The partitions of a classic consumer protocol assignment; an
/// undecodable one is shown as none.
fn classic_assignment(bytes: &bytes::Bytes) -> Vec<Value> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    match ConsumerProtocolAssignment::decode(&mut buf, version) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| json!({"topic": t.topic.0.to_string(), "partition": p}))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub fn group(console: &Console, viewer: &Viewer<'_>, id: &str) -> Result<Value, ApiError> {
    let apis = &console.apis;
    if id.is_empty() {
        return Err(ApiError::bad("a group id cannot be empty"));
    }
    if !viewer.may_describe_group(id) {
        return Err(ApiError::forbidden(format!(
            "not authorized to describe group {id}"
        )));
    }
    let listing = apis
        .groups
        .list_groups()
        .into_iter()
        .find(|g| g.group_id == id)
        .ok_or_else(|| ApiError::not_found(format!("no group {id}")))?;
    let (state, protocol, members): (String, String, Vec<Value>) = if listing.group_type
        == "consumer"
    {
        let d = apis
            .groups
            .consumer_group_describe(id)
            .map_err(|(code, m)| {
                ApiError::unavailable(format!(
                    "group {id}: error {code} {}",
                    m.unwrap_or_default()
                ))
            })?;
        let members = d
            .members
            .iter()
            .map(|(m, _target)| {
                let assigned: Vec<Value> = m
                    .assigned_partitions
                    .iter()
                    .flat_map(|(topic_id, ps)| {
                        let name = apis
                            .replicas
                            .topics
                            .get_by_id(topic_id)
                            .map_or_else(|| topic_id.to_string(), |t| t.name.clone());
                        ps.iter()
                            .map(move |p| json!({"topic": name.clone(), "partition": p}))
                    })
                    .collect();
                json!({
                    "member_id": m.member_id,
                    "instance_id": m.instance_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "assignment": assigned,
                })
            })
            .collect();
        (d.state.name().to_string(), d.assignor, members)
    } else {
        match apis.groups.describe_group(id) {
            Ok(Ok(d)) => {
                let members = d
                    .members
                    .iter()
                    .map(|m| {
                        json!({
                            "member_id": m.member_id,
                            "instance_id": m.group_instance_id,
                            "client_id": m.client_id,
                            "client_host": m.client_host,
                            "assignment": if d.protocol_type == "consumer" { classic_assignment(&m.assignment) } else { Vec::new() },
                        })
                    })
                    .collect();
                (d.state.name().to_string(), d.protocol_data, members)
            }
            // Offsets committed without membership (a simple consumer):
            // the listing says it all.
            Ok(Err(_)) => (listing.state.to_string(), String::new(), Vec::new()),
            Err(code) => {
                return Err(ApiError::unavailable(format!(
                    "group {id}: this broker does not coordinate it now (error {code})"
                )))
            }
        }
    };
    let (offsets, lag, _) = offsets_json(apis, viewer, id);
    let history: Vec<Value> = console
        .samples
        .lag(id, |t| viewer.may_describe_topic(t))
        .into_iter()
        .map(|(ts, l)| json!({"ts": ts, "lag": l}))
        .collect();
    Ok(json!({
        "group_id": id,
        "state": state,
        "type": listing.group_type,
        "protocol_type": listing.protocol_type,
        "protocol": protocol,
        "members": members,
        "offsets": offsets,
        "lag": lag,
        "lag_history": history,
    }))
}

/// The sampler's reading of the broker now (every topic and group; the
/// viewer filter applies when the history is read).
pub fn sample(apis: &KafkaApis) -> Sample {
    let mut s = Sample {
        ts_ms: crate::util::now_ms(),
        ..Sample::default()
    };
    for t in apis.replicas.topics.list() {
        let mut c = super::samples::TopicCounters::default();
        for p in &t.partitions {
            c.bytes_in += p.metrics.bytes_in();
            c.messages_in += p.metrics.messages_in();
        }
        s.topics.insert(t.name.clone(), c);
    }
    let everyone = Viewer::everyone(apis);
    for g in apis.groups.list_groups() {
        let (_, _, per_topic) = offsets_json(apis, &everyone, &g.group_id);
        s.group_lag.insert(g.group_id, per_topic);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_decode_and_duplicates_are_refused() {
        let p = Params::parse("a=1&b=x%2Fy+z&&c").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("x/y z"));
        assert_eq!(p.get("c"), Some(""));
        assert!(p.only(&["a", "b", "c"]).is_ok());
        assert_eq!(p.only(&["a"]).unwrap_err().status, 400);
        assert_eq!(p.int("a", 0, 5), Ok(Some(1)));
        assert_eq!(p.int("a", 2, 5).unwrap_err().status, 400);
        assert_eq!(p.int("zz", 0, 5), Ok(None));
        for bad in ["a=1&a=2", "a=%zz", "a=%4", "a=%ff"] {
            assert_eq!(Params::parse(bad).unwrap_err().status, 400, "{bad}");
        }
        let many = (0..=MAX_PARAMS)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>();
        assert!(Params::parse(&many.join("&")).is_err());
        assert_eq!(percent_decode("a+b%20c", false).unwrap(), "a+b c");
    }
}
