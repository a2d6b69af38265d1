//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for TOPIC,
//! BROKER, BROKER_LOGGER and GROUP resources, following Kafka 4.x's
//! `ConfigHelper`, `ConfigAdminManager` and the controller's
//! `ConfigurationControlManager`.
//!
//! The handler decodes, checks what Kafka checks per request (duplicate
//! resources and keys, null values, resource names) and encodes; the
//! services do the rest: topic configs (`TopicManager`), dynamic broker
//! configs (`DynamicBrokerConfig`), group configs (`GroupConfigManager`),
//! and how each is described (`broker::config_helper`). In a cluster,
//! TOPIC, BROKER and GROUP changes go to the controller
//! (`handlers::config_forwarding`) and topics and groups are described
//! from the metadata image.

use std::collections::HashSet;
use std::sync::Mutex;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::config_helper::{self, ConfigEntry};
use crate::broker::config_repository::Configs;
use crate::broker::dynamic_config::{apply_alter_ops, op, AlterOp, Alteration, ConfigChangeError};
use crate::broker::topic_config::{topic_key, validate_topic_configs};
use crate::broker::topics::validate_topic_name;
use crate::controller::configuration_control::{incremental_response, legacy_response};
use crate::handlers::KafkaApis;
use crate::handlers::{decode_or_close, Reply, Request};
use crate::security::acl::{AclOperation, ResourceType};

/// Kafka's `ConfigResource.Type` ids.
pub mod resource_type {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    pub const CLIENT_METRICS: i8 = 16;
    pub const GROUP: i8 = 32;
}

fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn type_name(t: i8) -> &'static str {
    match t {
        resource_type::TOPIC => "TOPIC",
        resource_type::BROKER => "BROKER",
        resource_type::BROKER_LOGGER => "BROKER_LOGGER",
        resource_type::CLIENT_METRICS => "CLIENT_METRICS",
        resource_type::GROUP => "GROUP",
        _ => "UNKNOWN",
    }
}

/// An error for one resource: Kafka's code plus its message.
#[derive(Debug)]
pub(crate) struct ApiErr {
    pub(crate) code: ResponseError,
    pub(crate) message: String,
}

pub(crate) fn err(code: ResponseError, message: impl Into<String>) -> ApiErr {
    ApiErr {
        code,
        message: message.into(),
    }
}

impl From<ConfigChangeError> for ApiErr {
    fn from(e: ConfigChangeError) -> ApiErr {
        err(e.code, e.message)
    }
}

/// Kafka's largest config value (`ConfigurationControlManager`).
const MAX_VALUE_BYTES: usize = 32767;

// ---------------------------------------------------------------------------
// Describing configs
// ---------------------------------------------------------------------------

fn to_result(
    e: ConfigEntry,
    include_synonyms: bool,
    include_doc: bool,
) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        e.synonyms
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(sb(s.name))
                    .with_value(s.value.map(sb))
                    .with_source(s.source)
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(sb(e.name))
        .with_value(e.value.map(sb))
        .with_read_only(e.read_only)
        .with_config_source(e.source)
        .with_is_sensitive(e.sensitive)
        .with_synonyms(synonyms)
        .with_config_type(e.config_type)
        .with_documentation(include_doc.then(|| sb(e.documentation)))
}

/// A broker resource names a node; its id must parse.
pub(crate) fn parse_broker_id(name: &str, describe: bool) -> Result<i32, ApiErr> {
    name.parse::<i32>().map_err(|_| {
        let msg = if describe {
            format!("Broker id must be an integer, but it is: {name}")
        } else {
            format!("Node id must be an integer, but it is: {name}")
        };
        err(ResponseError::InvalidRequest, msg)
    })
}

/// Whether the client may do `op` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on
/// a config resource: a topic or group by name, the broker and its loggers
/// through the cluster.
pub(crate) fn config_access(
    req: &Request,
    kind: i8,
    name: &str,
    op: AclOperation,
) -> Result<(), ApiErr> {
    let (allowed, code, text) = match kind {
        resource_type::TOPIC => (
            req.ctx.authorize(op, ResourceType::Topic, name),
            ResponseError::TopicAuthorizationFailed,
            "Topic authorization failed.",
        ),
        resource_type::GROUP => (
            req.ctx.authorize(op, ResourceType::Group, name),
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.",
        ),
        _ => (
            req.ctx.authorize_cluster(op),
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        ),
    };
    if allowed {
        Ok(())
    } else {
        Err(err(code, text))
    }
}

fn describe_resource(
    apis: &KafkaApis,
    r: &DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, ApiErr> {
    let name = r.resource_name.as_str();
    let node_id = apis.config.node_id;
    // An absent or empty key list means every key; unknown keys are skipped.
    let keys: Option<HashSet<&str>> = r
        .configuration_keys
        .as_ref()
        .filter(|k| !k.is_empty())
        .map(|k| k.iter().map(|s| s.as_str()).collect());
    let wanted = |k: &str| keys.as_ref().is_none_or(|s| s.contains(k));
    let dynamic = &apis.dynamic_config;
    match r.resource_type {
        resource_type::TOPIC => {
            validate_topic_name(name).map_err(|m| err(ResponseError::InvalidTopicException, m))?;
            // A cluster broker answers from its metadata image (every
            // topic, whether or not it holds a replica).
            if let Some(cache) = &apis.cluster {
                let image = cache.image();
                if image.topic_by_name(name).is_none() {
                    return Err(err(ResponseError::UnknownTopicOrPartition, ""));
                }
                let configs = image
                    .configs
                    .get(&(resource_type::TOPIC, name.to_string()))
                    .cloned()
                    .unwrap_or_default();
                return Ok(config_helper::describe_topic(&configs, dynamic, &wanted));
            }
            // Kafka answers an unknown topic with an empty message.
            let topic = apis
                .replicas
                .topics
                .get(name)
                .ok_or_else(|| err(ResponseError::UnknownTopicOrPartition, ""))?;
            Ok(config_helper::describe_topic(
                &topic.configs,
                dynamic,
                &wanted,
            ))
        }
        resource_type::BROKER => {
            if name.is_empty() {
                return Ok(config_helper::describe_broker_default(dynamic, &wanted));
            }
            if parse_broker_id(name, true)? != node_id {
                return Err(err(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {node_id} or empty string, but received {name}"
                    ),
                ));
            }
            Ok(config_helper::describe_broker(dynamic, &wanted))
        }
        resource_type::BROKER_LOGGER => {
            if name.is_empty() {
                return Err(err(
                    ResponseError::InvalidRequest,
                    "Broker id must not be empty",
                ));
            }
            if parse_broker_id(name, true)? != node_id {
                return Err(err(
                    ResponseError::InvalidRequest,
                    format!("Unexpected broker id, expected {node_id} but received {name}"),
                ));
            }
            // kastle's log levels come from RUST_LOG; there are no
            // runtime-adjustable loggers to list.
            Ok(Vec::new())
        }
        resource_type::GROUP => Ok(apis.group_configs.describe(name, &wanted)?),
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
                None => config_access(
                    req,
                    r.resource_type,
                    r.resource_name.as_str(),
                    AclOperation::DescribeConfigs,
                )
                .and_then(|()| describe_resource(apis, r)),
            };
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match outcome {
                Ok(configs) => base.with_configs(
                    configs
                        .into_iter()
                        .map(|e| {
                            to_result(e, request.include_synonyms, request.include_documentation)
                        })
                        .collect(),
                ),
                Err(e) => base
                    .with_error_code(e.code.code())
                    .with_error_message(Some(sb(e.message))),
            }
        })
        .collect();
    req.respond(&DescribeConfigsResponse::default().with_results(results))
}

// ---------------------------------------------------------------------------
// Altering configs
// ---------------------------------------------------------------------------

pub(crate) struct AlterResource {
    pub(crate) resource_type: i8,
    pub(crate) name: String,
    /// Legacy AlterConfigs: every change is a SET of the complete new set.
    pub(crate) ops: Vec<AlterOp>,
}

impl AlterResource {
    pub(crate) fn alteration<'a>(&'a self, incremental: bool, full: &'a Configs) -> Alteration<'a> {
        if incremental {
            Alteration::Incremental(&self.ops)
        } else {
            Alteration::Replace(full)
        }
    }
}

/// Serialises config read-modify-write cycles of topics and groups, so
/// that two concurrent incremental changes cannot lose each other's keys
/// (broker configs have their own lock).
static ALTER_LOCK: Mutex<()> = Mutex::new(());

/// The new explicit configs of a topic after the operations (the
/// controller's `incrementalAlterConfigResource`).
fn apply_topic_ops(configs: Configs, ops: &[AlterOp]) -> Result<Configs, ApiErr> {
    apply_alter_ops(
        configs,
        ops,
        |o, what| {
            // Kafka starts from the key's own default, not the broker's.
            let key = topic_key(&o.name)
                .filter(|k| k.kind.is_list())
                .ok_or_else(|| {
                    err(
                        ResponseError::InvalidConfig,
                        format!(
                            "Can't {what} to key {} because its type is not LIST.",
                            o.name
                        ),
                    )
                })?;
            Ok(key.default.to_string())
        },
        |other| {
            err(
                ResponseError::InvalidRequest,
                format!("Unknown alter configuration operation type {other}"),
            )
        },
    )
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
    let topics = &apis.replicas.topics;
    let current = topics
        .get(name)
        .map(|t| t.configs.clone())
        .unwrap_or_default();
    let new = if incremental {
        apply_topic_ops(current, &r.ops)?
    } else {
        r.ops
            .iter()
            .map(|c| (c.name.clone(), c.value.clone().unwrap_or_default()))
            .collect()
    };
    // Kafka validates the resulting configs before checking that the topic
    // exists.
    validate_topic_configs(&new, &topics.broker_config())
        .map_err(|e| err(ResponseError::InvalidConfig, e.0))?;
    topics
        .alter_configs(name, new, validate_only)
        .map(|_| ())
        .map_err(|e| err(e.code, e.message))
}

/// What Kafka's `ConfigAdminManager` refuses in one resource's keys
/// before anything else: a key named twice, a null value (except an
/// incremental DELETE's).
pub(crate) fn check_keys(r: &AlterResource, incremental: bool) -> Result<(), ApiErr> {
    let mut seen = HashSet::new();
    if r.ops.iter().any(|c| !seen.insert(c.name.as_str())) {
        return Err(err(
            ResponseError::InvalidRequest,
            "Error due to duplicate config keys",
        ));
    }
    let nulls: Vec<&str> = r
        .ops
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
    Ok(())
}

pub(crate) fn alter_resource(
    apis: &KafkaApis,
    r: &AlterResource,
    incremental: bool,
    validate_only: bool,
) -> Result<(), ApiErr> {
    check_keys(r, incremental)?;
    let full: Configs = r
        .ops
        .iter()
        .map(|c| (c.name.clone(), c.value.clone().unwrap_or_default()))
        .collect();
    // The controller's limit (broker values are checked by the broker's
    // own validation first).
    if matches!(r.resource_type, resource_type::TOPIC | resource_type::GROUP)
        && r.ops
            .iter()
            .any(|c| c.value.as_ref().is_some_and(|v| v.len() > MAX_VALUE_BYTES))
    {
        return Err(err(
            ResponseError::InvalidConfig,
            format!("The configuration value cannot be added because it exceeds the maximum value size of {MAX_VALUE_BYTES} bytes."),
        ));
    }
    match r.resource_type {
        resource_type::BROKER => {
            let node_id = apis.config.node_id;
            if !r.name.is_empty() {
                let id = parse_broker_id(&r.name, false)?;
                if id != node_id {
                    return Err(err(
                        ResponseError::InvalidRequest,
                        format!(
                            "Unexpected broker id, expected {node_id}, but received {}",
                            r.name
                        ),
                    ));
                }
            }
            if incremental {
                if let Some(c) = r
                    .ops
                    .iter()
                    .find(|c| !(op::SET..=op::SUBTRACT).contains(&c.op))
                {
                    return Err(err(
                        ResponseError::InvalidRequest,
                        format!("Unknown operations type {}", c.op),
                    ));
                }
            }
            apis.dynamic_config
                .alter(
                    !r.name.is_empty(),
                    r.alteration(incremental, &full),
                    validate_only,
                )
                .map_err(ApiErr::from)
        }
        resource_type::TOPIC => alter_topic(apis, r, incremental, validate_only),
        resource_type::GROUP => {
            let _guard = ALTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            apis.group_configs
                .alter(&r.name, r.alteration(incremental, &full), validate_only)
                .map_err(ApiErr::from)
        }
        resource_type::BROKER_LOGGER if incremental => Err(err(
            ResponseError::InvalidRequest,
            "kastle has no runtime-adjustable loggers; set log levels with RUST_LOG",
        )),
        resource_type::CLIENT_METRICS => Err(err(
            ResponseError::InvalidRequest,
            "kastle does not support CLIENT_METRICS config resources",
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
    req: &Request,
    resources: &[AlterResource],
    incremental: bool,
    validate_only: bool,
) -> Vec<Result<(), ApiErr>> {
    let mut counts: std::collections::HashMap<(i8, &str), usize> = Default::default();
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
            config_access(req, r.resource_type, &r.name, AclOperation::AlterConfigs)?;
            let outcome = alter_resource(&req.ctx.apis, r, incremental, validate_only);
            if let Err(e) = &outcome {
                tracing::info!(
                    resource_type = type_name(r.resource_type),
                    resource = %r.name,
                    code = ?e.code,
                    message = %e.message,
                    "config change refused"
                );
            }
            outcome
        })
        .collect()
}

/// (error code, message) of one resource: Kafka sends a null message when
/// nothing went wrong.
pub(crate) fn outcome_fields(o: Result<(), ApiErr>) -> (i16, Option<StrBytes>) {
    match o {
        Ok(()) => (0, None),
        Err(e) => (e.code.code(), Some(sb(e.message))),
    }
}

/// The resources of an IncrementalAlterConfigs request, one operation a
/// config as the client sent it.
pub(crate) fn incremental_resources(
    request: &IncrementalAlterConfigsRequest,
) -> Vec<AlterResource> {
    request
        .resources
        .iter()
        .map(|r| AlterResource {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            ops: r
                .configs
                .iter()
                .map(|c| AlterOp {
                    name: c.name.to_string(),
                    op: c.config_operation,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
        })
        .collect()
}

/// The resources of a legacy AlterConfigs request: every config a SET of
/// the complete new set.
pub(crate) fn legacy_resources(request: &AlterConfigsRequest) -> Vec<AlterResource> {
    request
        .resources
        .iter()
        .map(|r| AlterResource {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            ops: r
                .configs
                .iter()
                .map(|c| AlterOp {
                    name: c.name.to_string(),
                    op: op::SET,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
        })
        .collect()
}

pub fn alter_configs(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, AlterConfigsRequest);
    let resources = legacy_resources(&request);
    let outcomes = alter_all(req, &resources, false, request.validate_only);
    req.respond(&legacy_response(
        &request,
        outcomes.into_iter().map(outcome_fields),
    ))
}

pub fn incremental_alter_configs(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, IncrementalAlterConfigsRequest);
    let resources = incremental_resources(&request);
    let outcomes = alter_all(req, &resources, true, request.validate_only);
    req.respond(&incremental_response(
        &request,
        outcomes.into_iter().map(outcome_fields),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys::list_items;

    fn ops(list: &[(&str, i8, Option<&str>)]) -> Vec<AlterOp> {
        list.iter()
            .map(|(n, o, v)| AlterOp {
                name: n.to_string(),
                op: *o,
                value: v.map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn topic_list_operations_start_from_the_topic_default() {
        let c = apply_topic_ops(
            Configs::new(),
            &ops(&[("cleanup.policy", op::APPEND, Some("compact"))]),
        )
        .unwrap();
        assert_eq!(c["cleanup.policy"], "delete,compact");
        let c =
            apply_topic_ops(c, &ops(&[("cleanup.policy", op::SUBTRACT, Some("delete"))])).unwrap();
        assert_eq!(list_items(&c["cleanup.policy"]), vec!["compact"]);
        let c = apply_topic_ops(
            Configs::new(),
            &ops(&[(
                "leader.replication.throttled.replicas",
                op::APPEND,
                Some("0:1"),
            )]),
        )
        .unwrap();
        assert_eq!(c["leader.replication.throttled.replicas"], "0:1");
        let e = apply_topic_ops(
            Configs::new(),
            &ops(&[("retention.ms", op::APPEND, Some("5"))]),
        )
        .unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidConfig);
        assert_eq!(
            e.message,
            "Can't APPEND to key retention.ms because its type is not LIST."
        );
    }
}
