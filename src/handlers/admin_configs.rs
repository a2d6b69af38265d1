//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs, for topic and
//! broker resources, following Kafka 4.x's `ConfigHelper`,
//! `ConfigAdminManager` and the controller's `ConfigurationControlManager`.
//!
//! Topic configs are the explicit per-topic overrides kept by
//! `TopicManager`; a change is validated as a whole, persisted, then applied
//! to the live partitions. Broker configs come from `server.properties`,
//! `KAFKA_*` and `--override` and cannot change while kastle runs, so they
//! are described as read-only and every attempt to set one is refused the
//! way Kafka refuses a key that is not dynamically updatable.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::topic_config::{
    effective, topic_key, validate_topic_configs, TopicKey, TOPIC_KEYS,
};
use crate::broker::topics::validate_topic_name;
use crate::config::{BrokerConfig, Kind, BROKER_KEYS};
use crate::handlers::topics::config_source;
use crate::handlers::KafkaApis;
use crate::handlers::{decode_or_close, Reply, Request};

/// Kafka's `ConfigResource.Type` ids.
pub mod resource_type {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    pub const CLIENT_METRICS: i8 = 16;
    pub const GROUP: i8 = 32;
}

/// Kafka's `DescribeConfigsResponse.ConfigType` ids (DescribeConfigs v3+).
mod config_type {
    pub const UNKNOWN: i8 = 0;
    pub const BOOLEAN: i8 = 1;
    pub const STRING: i8 = 2;
    pub const INT: i8 = 3;
    pub const LONG: i8 = 5;
    pub const DOUBLE: i8 = 6;
    pub const LIST: i8 = 7;
}

/// IncrementalAlterConfigs operations (`AlterConfigOp.OpType`).
mod op {
    pub const SET: i8 = 0;
    pub const DELETE: i8 = 1;
    pub const APPEND: i8 = 2;
    pub const SUBTRACT: i8 = 3;
}

fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn type_name(t: i8) -> &'static str {
    match t {
        resource_type::TOPIC => "TOPIC",
        resource_type::BROKER => "BROKER",
        resource_type::BROKER_LOGGER => "BROKER_LOGGER",
        resource_type::CLIENT_METRICS => "CLIENT_METRICS",
        resource_type::GROUP => "GROUP",
        _ => "UNKNOWN",
    }
}

/// An error for one resource: Kafka's code plus its message (Kafka leaves
/// some messages null, e.g. an unknown topic in DescribeConfigs).
#[derive(Debug)]
struct ApiErr {
    code: ResponseError,
    message: Option<String>,
}

fn err(code: ResponseError, message: impl Into<String>) -> ApiErr {
    ApiErr {
        code,
        message: Some(message.into()),
    }
}

// ---------------------------------------------------------------------------
// Describing configs
// ---------------------------------------------------------------------------

fn kind_type(kind: Kind) -> i8 {
    match kind {
        Kind::Bool => config_type::BOOLEAN,
        Kind::Int(lo, hi) if lo >= i32::MIN as i64 && hi <= i32::MAX as i64 => config_type::INT,
        Kind::Int(..) => config_type::LONG,
        Kind::Str | Kind::Choice(_) => config_type::STRING,
        Kind::List => config_type::LIST,
        Kind::Double(..) => config_type::DOUBLE,
        Kind::Ignored => config_type::UNKNOWN,
    }
}

fn broker_default(name: &str) -> Option<&'static str> {
    crate::config::keys::default_of(name)
}

/// A broker key counts as set in the static configuration when its value
/// differs from Kafka's default (kastle keeps effective values only, so a
/// key set to exactly its default reads as the default).
fn statically_set<'a>(cfg: &'a BrokerConfig, name: &str) -> Option<&'a str> {
    cfg.value(name).filter(|v| Some(*v) != broker_default(name))
}

/// The broker keys a topic key falls back to, in Kafka's order of
/// precedence (`ServerTopicConfigSynonyms`).
fn topic_broker_synonyms(tk: &TopicKey) -> Vec<&'static str> {
    let names: &[&'static str] = match tk.def.name {
        "retention.ms" => &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        "segment.ms" => &["log.roll.ms", "log.roll.hours"],
        "segment.jitter.ms" => &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        "flush.ms" => &["log.flush.interval.ms"],
        _ => match &tk.broker_key {
            Some(k) => std::slice::from_ref(k),
            None => &[],
        },
    };
    names
        .iter()
        .copied()
        .filter(|n| BROKER_KEYS.iter().any(|k| k.name == *n))
        .collect()
}

fn synonym(name: &str, value: Option<&str>, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(sb(name))
        .with_value(value.map(sb))
        .with_source(source)
}

/// Kafka's synonym chain for broker keys: statically set values first,
/// then the defaults.
fn broker_chain(names: &[&str], cfg: &BrokerConfig) -> Vec<DescribeConfigsSynonym> {
    let mut out = Vec::new();
    for n in names {
        if let Some(v) = statically_set(cfg, n) {
            out.push(synonym(n, Some(v), config_source::STATIC_BROKER_CONFIG));
        }
    }
    for n in names {
        if let Some(d) = broker_default(n) {
            out.push(synonym(n, Some(d), config_source::DEFAULT_CONFIG));
        }
    }
    out
}

fn entry(
    name: &str,
    value: Option<String>,
    chain: Vec<DescribeConfigsSynonym>,
    read_only: bool,
    kind: i8,
    include_synonyms: bool,
    documentation: Option<String>,
) -> DescribeConfigsResourceResult {
    // The source of a value is the head of its synonym chain.
    let source = chain
        .first()
        .map(|s| s.source)
        .unwrap_or(config_source::DEFAULT_CONFIG);
    DescribeConfigsResourceResult::default()
        .with_name(sb(name))
        .with_value(value.map(sb))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_is_sensitive(false)
        .with_synonyms(if include_synonyms { chain } else { Vec::new() })
        .with_config_type(kind)
        .with_documentation(documentation.map(sb))
}

fn topic_doc(name: &str) -> String {
    let text = match name {
        "cleanup.policy" => "How old log segments are discarded: delete, compact or both.",
        "compression.type" => {
            "Codec the topic's batches are stored with; 'producer' keeps the producer's codec."
        }
        "compression.gzip.level" => "Compression level when compression.type is gzip.",
        "compression.lz4.level" => "Compression level when compression.type is lz4.",
        "compression.zstd.level" => "Compression level when compression.type is zstd.",
        "delete.retention.ms" => "How long delete tombstones are kept on compacted topics.",
        "file.delete.delay.ms" => "Delay before a deleted segment's files are removed.",
        "flush.messages" => "Messages written between fsyncs; 1 fsyncs before acknowledging.",
        "flush.ms" => "Longest time a message stays unflushed.",
        "index.interval.bytes" => "Bytes between offset index entries.",
        "max.compaction.lag.ms" => "Longest a record stays uncompacted.",
        "max.message.bytes" => "Largest record batch the topic accepts.",
        "message.timestamp.type" => {
            "CreateTime (producer's timestamp) or LogAppendTime (broker's clock)."
        }
        "message.timestamp.before.max.ms" => "How far in the past a CreateTime timestamp may be.",
        "message.timestamp.after.max.ms" => "How far in the future a CreateTime timestamp may be.",
        "min.cleanable.dirty.ratio" => "Dirty ratio above which the log is compacted.",
        "min.compaction.lag.ms" => "Shortest time a record stays uncompacted.",
        "min.insync.replicas" => "Replicas that must acknowledge an acks=all write.",
        "preallocate" => "Whether segment files are preallocated.",
        "retention.bytes" => {
            "Largest size a partition may grow to before old segments go; -1 for no limit."
        }
        "retention.ms" => "How long records are kept; -1 for ever.",
        "segment.bytes" => "Size at which a log segment is rolled.",
        "segment.index.bytes" => "Size of each segment's offset index.",
        "segment.jitter.ms" => "Random jitter subtracted from segment.ms.",
        "segment.ms" => "Age at which a log segment is rolled.",
        "unclean.leader.election.enable" => "Whether an out-of-sync replica may become leader.",
        "local.retention.bytes" => "Local retention size with tiered storage.",
        "local.retention.ms" => "Local retention time with tiered storage.",
        "remote.storage.enable" => "Whether the topic uses tiered storage.",
        "follower.replication.throttled.replicas" => "Replicas throttled on the follower side.",
        "leader.replication.throttled.replicas" => "Replicas throttled on the leader side.",
        _ => "Topic configuration.",
    };
    text.to_string()
}

fn broker_doc(name: &str) -> String {
    format!(
        "Broker configuration {name}: read at start-up from server.properties, KAFKA_* environment variables or --override; kastle cannot change it at runtime."
    )
}

/// Every non-internal topic key with its effective value (Kafka hides
/// `internal.*` keys from clients).
fn topic_entries(
    overrides: &BTreeMap<String, String>,
    cfg: &BrokerConfig,
    include_synonyms: bool,
    include_doc: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    TOPIC_KEYS
        .iter()
        .filter(|k| !k.def.name.starts_with("internal.") && wanted(k.def.name))
        .map(|k| {
            let name = k.def.name;
            let mut chain = Vec::new();
            if let Some(v) = overrides.get(name) {
                chain.push(synonym(name, Some(v), config_source::DYNAMIC_TOPIC_CONFIG));
            }
            chain.extend(broker_chain(&topic_broker_synonyms(k), cfg));
            entry(
                name,
                effective(name, overrides, cfg),
                chain,
                false,
                kind_type(k.def.kind),
                include_synonyms,
                include_doc.then(|| topic_doc(name)),
            )
        })
        .collect()
}

/// The broker's own configuration: every key kastle knows (keys it accepts
/// only for compatibility when set), plus unknown keys that were set, as
/// Kafka lists its originals.
fn broker_entries(
    cfg: &BrokerConfig,
    include_synonyms: bool,
    include_doc: bool,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    let mut out = Vec::new();
    for def in BROKER_KEYS {
        let value = cfg.value(def.name);
        if (matches!(def.kind, Kind::Ignored) && value.is_none()) || !wanted(def.name) {
            continue;
        }
        out.push(entry(
            def.name,
            value.map(str::to_string),
            broker_chain(&[def.name], cfg),
            true,
            kind_type(def.kind),
            include_synonyms,
            include_doc.then(|| broker_doc(def.name)),
        ));
    }
    for (k, v) in cfg.values() {
        if BROKER_KEYS.iter().any(|d| d.name == k) || !wanted(k) {
            continue;
        }
        out.push(entry(
            k,
            Some(v.clone()),
            vec![synonym(k, Some(v), config_source::STATIC_BROKER_CONFIG)],
            true,
            config_type::UNKNOWN,
            include_synonyms,
            None,
        ));
    }
    out
}

/// A broker resource names this node (or, where allowed, is empty for the
/// cluster default).
fn parse_broker_id(name: &str, describe: bool) -> Result<i32, ApiErr> {
    name.parse::<i32>().map_err(|_| {
        let msg = if describe {
            format!("Broker id must be an integer, but it is: {name}")
        } else {
            format!("Node id must be an integer, but it is: {name}")
        };
        err(ResponseError::InvalidRequest, msg)
    })
}

fn describe_resource(
    apis: &KafkaApis,
    r: &DescribeConfigsResource,
    include_synonyms: bool,
    include_doc: bool,
) -> Result<Vec<DescribeConfigsResourceResult>, ApiErr> {
    let name = r.resource_name.as_str();
    let cfg = &apis.config;
    // An absent or empty key list means every key; unknown keys are skipped.
    let keys: Option<HashSet<&str>> = r
        .configuration_keys
        .as_ref()
        .filter(|k| !k.is_empty())
        .map(|k| k.iter().map(|s| s.as_str()).collect());
    let wanted = |k: &str| keys.as_ref().is_none_or(|s| s.contains(k));
    match r.resource_type {
        resource_type::TOPIC => {
            validate_topic_name(name).map_err(|m| err(ResponseError::InvalidTopicException, m))?;
            let topic = apis.replicas.topics.get(name).ok_or(ApiErr {
                code: ResponseError::UnknownTopicOrPartition,
                message: None,
            })?;
            Ok(topic_entries(
                &topic.configs,
                cfg,
                include_synonyms,
                include_doc,
                &wanted,
            ))
        }
        resource_type::BROKER => {
            if name.is_empty() {
                // The cluster-wide default resource lists dynamic defaults,
                // and kastle has none.
                return Ok(Vec::new());
            }
            if parse_broker_id(name, true)? != cfg.node_id {
                return Err(err(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {} or empty string, but received {name}",
                        cfg.node_id
                    ),
                ));
            }
            Ok(broker_entries(cfg, include_synonyms, include_doc, &wanted))
        }
        resource_type::BROKER_LOGGER => {
            if name.is_empty() {
                return Err(err(
                    ResponseError::InvalidRequest,
                    "Broker id must not be empty",
                ));
            }
            if parse_broker_id(name, true)? != cfg.node_id {
                return Err(err(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {} but received {name}",
                        cfg.node_id
                    ),
                ));
            }
            // kastle's log levels come from RUST_LOG; there are no
            // runtime-adjustable loggers to list.
            Ok(Vec::new())
        }
        other => Err(err(
            ResponseError::InvalidRequest,
            format!("Unsupported resource type: {}", type_name(other)),
        )),
    }
}

pub fn describe_configs(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DescribeConfigsRequest);
    let apis = &req.ctx.apis;
    let known = |t: i8| {
        matches!(
            t,
            resource_type::TOPIC
                | resource_type::BROKER
                | resource_type::BROKER_LOGGER
                | resource_type::CLIENT_METRICS
                | resource_type::GROUP
        )
    };
    // Kafka fails the whole request when one resource type is unknown.
    let whole_request_error = request
        .resources
        .iter()
        .find(|r| !known(r.resource_type))
        .map(|r| {
            format!(
                "Unexpected resource type UNKNOWN for resource {}",
                r.resource_name.as_str()
            )
        });
    let results = request
        .resources
        .iter()
        .map(|r| {
            let outcome = match &whole_request_error {
                Some(msg) => Err(err(ResponseError::InvalidRequest, msg.clone())),
                None => describe_resource(
                    apis,
                    r,
                    request.include_synonyms,
                    request.include_documentation,
                ),
            };
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match outcome {
                Ok(configs) => base.with_configs(configs),
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(e.message.map(sb)),
            }
        })
        .collect();
    req.respond(&DescribeConfigsResponse::default().with_results(results))
}

// ---------------------------------------------------------------------------
// Altering configs
// ---------------------------------------------------------------------------

/// One requested change; legacy AlterConfigs is all SETs of a full set.
struct Change {
    name: String,
    op: i8,
    value: Option<String>,
}

struct AlterResource {
    resource_type: i8,
    name: String,
    changes: Vec<Change>,
}

/// Serialises config read-modify-write cycles, so that two concurrent
/// incremental changes to one topic cannot lose each other's keys.
static ALTER_LOCK: Mutex<()> = Mutex::new(());

/// Scala's rendering of a set, which Kafka's message embeds.
fn scala_set(names: &[&str]) -> String {
    format!("Set({})", names.join(", "))
}

fn alter_broker(apis: &KafkaApis, r: &AlterResource, incremental: bool) -> Result<(), ApiErr> {
    if !r.name.is_empty() {
        let id = parse_broker_id(&r.name, false)?;
        if id != apis.config.node_id {
            return Err(err(
                ResponseError::InvalidRequest,
                format!(
                    "Unexpected broker id, expected {}, but received {}",
                    apis.config.node_id, r.name
                ),
            ));
        }
    }
    if incremental {
        if let Some(c) = r
            .changes
            .iter()
            .find(|c| !(op::SET..=op::SUBTRACT).contains(&c.op))
        {
            return Err(err(
                ResponseError::InvalidRequest,
                format!("Unknown operations type {}", c.op),
            ));
        }
    }
    // Deleting a dynamic value that does not exist changes nothing, as in
    // Kafka; anything else would need a dynamic broker config, and every
    // kastle broker config is static.
    let mut set: Vec<&str> = r
        .changes
        .iter()
        .filter(|c| !incremental || c.op != op::DELETE)
        .map(|c| c.name.as_str())
        .collect();
    set.sort_unstable();
    if set.is_empty() {
        return Ok(());
    }
    Err(err(
        ResponseError::InvalidRequest,
        format!(
            "Cannot update these configs dynamically: {}",
            scala_set(&set)
        ),
    ))
}

/// The list value a key starts from for APPEND/SUBTRACT: its override, else
/// its default (Kafka uses the config's own default, not the broker's).
fn list_parts(current: Option<&String>, key: &str) -> Vec<String> {
    let base = match current {
        Some(v) => Some(v.as_str()),
        None => topic_key(key).and_then(|k| k.def.default),
    };
    base.map(|v| {
        v.split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn alter_topic(
    apis: &KafkaApis,
    r: &AlterResource,
    incremental: bool,
    validate_only: bool,
) -> Result<(), ApiErr> {
    let name = r.name.as_str();
    if name.is_empty() {
        return Err(err(
            ResponseError::InvalidRequest,
            "Default topic resources are not allowed.",
        ));
    }
    validate_topic_name(name).map_err(|m| err(ResponseError::InvalidTopicException, m))?;
    let _guard = ALTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let current = apis
        .replicas
        .topics
        .get(name)
        .map(|t| t.configs.clone())
        .unwrap_or_default();
    let new = if incremental {
        let mut new = current;
        for c in &r.changes {
            match c.op {
                op::SET => {
                    new.insert(c.name.clone(), c.value.clone().unwrap_or_default());
                }
                op::DELETE => {
                    new.remove(&c.name);
                }
                op::APPEND | op::SUBTRACT => {
                    let is_list =
                        topic_key(&c.name).is_some_and(|k| matches!(k.def.kind, Kind::List));
                    let op_name = if c.op == op::APPEND {
                        "APPEND"
                    } else {
                        "SUBTRACT"
                    };
                    if !is_list {
                        return Err(err(
                            ResponseError::InvalidConfig,
                            format!(
                                "Can't {op_name} to key {} because its type is not LIST.",
                                c.name
                            ),
                        ));
                    }
                    let mut parts = list_parts(new.get(&c.name), &c.name);
                    let value = c.value.clone().unwrap_or_default();
                    for v in value.split(',') {
                        if c.op == op::APPEND {
                            if !parts.iter().any(|p| p == v) {
                                parts.push(v.to_string());
                            }
                        } else if let Some(i) = parts.iter().position(|p| p == v) {
                            parts.remove(i);
                        }
                    }
                    new.insert(c.name.clone(), parts.join(","));
                }
                other => {
                    return Err(err(
                        ResponseError::InvalidRequest,
                        format!("Unknown alter configuration operation type {other}"),
                    ))
                }
            }
        }
        new
    } else {
        r.changes
            .iter()
            .map(|c| (c.name.clone(), c.value.clone().unwrap_or_default()))
            .collect()
    };
    // Kafka validates the resulting configs before checking that the topic
    // exists.
    validate_topic_configs(&new).map_err(|e| err(ResponseError::InvalidConfig, e.0))?;
    apis.replicas
        .topics
        .alter_configs(name, new, validate_only)
        .map(|_| ())
        .map_err(|e| err(e.code, e.message))
}

fn alter_resource(
    apis: &KafkaApis,
    r: &AlterResource,
    incremental: bool,
    validate_only: bool,
) -> Result<(), ApiErr> {
    let mut seen = HashSet::new();
    if r.changes.iter().any(|c| !seen.insert(c.name.as_str())) {
        return Err(err(
            ResponseError::InvalidRequest,
            "Error due to duplicate config keys",
        ));
    }
    let nulls: Vec<&str> = r
        .changes
        .iter()
        .filter(|c| c.value.is_none() && !(incremental && c.op == op::DELETE))
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(err(
            ResponseError::InvalidRequest,
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    match r.resource_type {
        resource_type::BROKER => alter_broker(apis, r, incremental),
        resource_type::TOPIC => alter_topic(apis, r, incremental, validate_only),
        resource_type::BROKER_LOGGER if incremental => Err(err(
            ResponseError::InvalidRequest,
            "kastle has no runtime-adjustable loggers; set log levels with RUST_LOG",
        )),
        t @ (resource_type::CLIENT_METRICS | resource_type::GROUP) => Err(err(
            ResponseError::InvalidRequest,
            format!("kastle does not support {} config resources", type_name(t)),
        )),
        other => Err(err(
            ResponseError::InvalidRequest,
            format!("Unknown resource type {other}"),
        )),
    }
}

/// Runs every resource of an (Incremental)AlterConfigs request; a resource
/// named twice fails in both places and changes nothing.
fn alter_all(
    apis: &KafkaApis,
    resources: &[AlterResource],
    incremental: bool,
    validate_only: bool,
) -> Vec<Result<(), ApiErr>> {
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for r in resources {
        *counts
            .entry((r.resource_type, r.name.as_str()))
            .or_default() += 1;
    }
    resources
        .iter()
        .map(|r| {
            if counts
                .get(&(r.resource_type, r.name.as_str()))
                .copied()
                .unwrap_or(0)
                > 1
            {
                return Err(err(
                    ResponseError::InvalidRequest,
                    "Each resource must appear at most once.",
                ));
            }
            let outcome = alter_resource(apis, r, incremental, validate_only);
            if let Err(e) = &outcome {
                tracing::info!(
                    resource_type = type_name(r.resource_type),
                    resource = %r.name,
                    code = ?e.code,
                    message = e.message.as_deref().unwrap_or(""),
                    "config change refused"
                );
            }
            outcome
        })
        .collect()
}

pub fn alter_configs(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, AlterConfigsRequest);
    let resources: Vec<AlterResource> = request
        .resources
        .iter()
        .map(|r| AlterResource {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            changes: r
                .configs
                .iter()
                .map(|c| Change {
                    name: c.name.to_string(),
                    op: op::SET,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
        })
        .collect();
    let outcomes = alter_all(&req.ctx.apis, &resources, false, request.validate_only);
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, o)| {
            let base = alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match o {
                Ok(()) => base,
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(e.message.map(sb)),
            }
        })
        .collect();
    req.respond(&AlterConfigsResponse::default().with_responses(responses))
}

pub fn incremental_alter_configs(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, IncrementalAlterConfigsRequest);
    let resources: Vec<AlterResource> = request
        .resources
        .iter()
        .map(|r| AlterResource {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            changes: r
                .configs
                .iter()
                .map(|c| Change {
                    name: c.name.to_string(),
                    op: c.config_operation,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
        })
        .collect();
    let outcomes = alter_all(&req.ctx.apis, &resources, true, request.validate_only);
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, o)| {
            let base = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match o {
                Ok(()) => base,
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(e.message.map(sb)),
            }
        })
        .collect();
    req.respond(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parts_start_from_the_topic_default() {
        assert_eq!(list_parts(None, "cleanup.policy"), vec!["delete"]);
        let v = "compact,delete".to_string();
        assert_eq!(
            list_parts(Some(&v), "cleanup.policy"),
            vec!["compact", "delete"]
        );
        assert!(list_parts(None, "leader.replication.throttled.replicas").is_empty());
    }

    #[test]
    fn topic_keys_map_to_kafka_broker_synonyms() {
        let tk = topic_key("retention.ms").unwrap();
        assert_eq!(
            topic_broker_synonyms(tk),
            vec![
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours"
            ]
        );
        let tk = topic_key("max.message.bytes").unwrap();
        assert_eq!(topic_broker_synonyms(tk), vec!["message.max.bytes"]);
        assert_eq!(
            kind_type(topic_key("retention.ms").unwrap().def.kind),
            config_type::LONG
        );
        assert_eq!(
            kind_type(topic_key("max.message.bytes").unwrap().def.kind),
            config_type::INT
        );
    }

    #[test]
    fn scala_set_rendering() {
        assert_eq!(scala_set(&["a", "b"]), "Set(a, b)");
    }
}
