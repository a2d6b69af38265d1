//! `ConfigurationControlManager`: the active controller's decision on
//! AlterConfigs (legacy, the complete new set of each resource) and
//! IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT per key) for
//! TOPIC, BROKER and GROUP resources, as Kafka 4.x's
//! `ConfigurationControlManager`, `ControllerConfigurationValidator` and
//! `ControllerApis` decide them: computed over the metadata image,
//! validated (ELR's `min.insync.replicas` rules when ELR is on, the value
//! size, topic names and topic configs with `validate_topic_configs`,
//! broker names and dynamic broker configs with `validate_configs`, group
//! names and group configs with `validate_group_configs` against the
//! controller's group-coordinator bounds, then the resource's existence:
//! any group name exists), and written as
//! one `ConfigRecord` per changed key (a null value deletes it; a BROKER
//! key is written even when unchanged, so brokers reload, KAFKA-14136).
//! `validate_only` answers without records. Pure: no I/O.

use std::collections::HashSet;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::replication_control::ReplicationDefaults;
use crate::broker::config_repository::Configs;
use crate::broker::dynamic_config::{apply_alter_ops, validate_configs, AlterOp};
use crate::broker::group_config::validate_group_configs;
use crate::broker::topic_config::{topic_key, validate_topic_configs};
use crate::broker::topics::validate_topic_name;
use crate::config::keys::{broker_key, listener_prefixed};
use crate::metadata::records::ConfigRecord;
use crate::metadata::{MetadataImage, MetadataRecord, RecordAndVersion};

/// `ConfigResource.Type` ids the controller keeps configs for.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const GROUP: i8 = 32;
/// ConfigRecord's version written.
const CONFIG_RECORD_VERSION: i16 = 0;
/// Kafka's largest config value (`Short.MAX_VALUE`).
const MAX_VALUE_BYTES: usize = 32767;
/// The feature that turns eligible leader replicas on (KIP-966).
const ELR_FEATURE: &str = "eligible.leader.replicas.version";
const MIN_ISR: &str = "min.insync.replicas";

/// Kafka's error for one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ResponseError,
    pub message: String,
}

fn error(code: ResponseError, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        message: message.into(),
    }
}

/// What one resource asks for.
#[derive(Clone, Copy)]
pub enum Change<'a> {
    /// AlterConfigs: the complete new set.
    Replace(&'a Configs),
    /// IncrementalAlterConfigs: operations on the current set.
    Incremental(&'a [AlterOp]),
}

/// The controller's answer: records to commit (empty when validating only
/// or when nothing changed) and one outcome per resource, in request order.
pub struct ConfigDecision<R> {
    pub records: Vec<RecordAndVersion>,
    pub response: R,
}

/// The image's ids of the nodes a BROKER resource may name: registered
/// brokers, and the controllers (`is_controller`).
fn node_exists(image: &MetadataImage, id: i32, is_controller: &dyn Fn(i32) -> bool) -> bool {
    image.brokers.contains_key(&id) || is_controller(id)
}

fn elr_enabled(image: &MetadataImage) -> bool {
    image.features.get(ELR_FEATURE).is_some_and(|v| *v >= 1)
}

/// Kafka's `ControllerConfigurationValidator.validate` for the resulting
/// configs of a resource (before the existence check).
fn validate_resource(
    resource_type: i8,
    name: &str,
    all: &Configs,
    defaults: &ReplicationDefaults,
) -> Result<(), ApiError> {
    match resource_type {
        TOPIC => {
            if name.is_empty() {
                return Err(error(
                    ResponseError::InvalidRequest,
                    "Default topic resources are not allowed.",
                ));
            }
            validate_topic_name(name)
                .map_err(|m| error(ResponseError::InvalidTopicException, m))?;
            validate_topic_configs(all, &defaults.broker_config)
                .map_err(|e| error(ResponseError::InvalidConfig, e.0))
        }
        BROKER => {
            if !name.is_empty() {
                let id: i32 = name.parse().map_err(|_| {
                    error(
                        ResponseError::InvalidRequest,
                        "Unable to parse broker name as a base 10 number.",
                    )
                })?;
                if id < 0 {
                    return Err(error(
                        ResponseError::InvalidRequest,
                        "Invalid negative broker ID.",
                    ));
                }
            }
            // The values by type, as the receiving broker checked them
            // (kastle's `DynamicBrokerConfig` rules, one function for both).
            validate_configs(all, !name.is_empty()).map_err(|e| error(e.code, e.message))
        }
        GROUP => {
            if name.is_empty() {
                return Err(error(
                    ResponseError::InvalidRequest,
                    "Default group resources are not allowed.",
                ));
            }
            validate_group_configs(all, &defaults.broker_config)
                .map_err(|e| error(e.code, e.message))
        }
        other => Err(error(
            ResponseError::InvalidRequest,
            format!("Unknown resource type {other}"),
        )),
    }
}

/// Kafka's `ConfigResourceExistenceChecker`.
fn check_exists(
    image: &MetadataImage,
    resource_type: i8,
    name: &str,
    is_controller: &dyn Fn(i32) -> bool,
) -> Result<(), ApiError> {
    match resource_type {
        TOPIC if image.topic_by_name(name).is_none() => Err(error(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        )),
        BROKER if !name.is_empty() => {
            let id: i32 = name.parse().map_err(|_| {
                error(
                    ResponseError::InvalidRequest,
                    format!("Invalid broker name {name}"),
                )
            })?;
            if node_exists(image, id, is_controller) {
                Ok(())
            } else {
                Err(error(
                    ResponseError::BrokerIdNotRegistered,
                    format!("No node with id {id} found."),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// The default a list key's APPEND / SUBTRACT starts from, or Kafka's
/// controller error for a key that is not a list.
fn list_default(resource_type: i8, o: &AlterOp, what: &str) -> Result<String, ApiError> {
    let default = match resource_type {
        TOPIC => topic_key(&o.name)
            .filter(|k| k.kind.is_list())
            .map(|k| k.default.to_string()),
        BROKER => broker_key(listener_prefixed(&o.name).map_or(&o.name, |(_, b)| b))
            .filter(|k| k.kind.is_list())
            .map(|k| k.default.unwrap_or_default().to_string()),
        _ => None,
    };
    default.ok_or_else(|| {
        error(
            ResponseError::InvalidConfig,
            format!(
                "Can't {what} to key {} because its type is not LIST.",
                o.name
            ),
        )
    })
}

/// The records of one resource's change (Kafka's
/// `incrementalAlterConfigResource` / `legacyAlterConfigResource` with
/// `validateAlterConfig`), or why it is refused.
pub fn alter_resource(
    image: &MetadataImage,
    resource_type: i8,
    name: &str,
    change: Change<'_>,
    defaults: &ReplicationDefaults,
    is_controller: &dyn Fn(i32) -> bool,
) -> Result<Vec<ConfigRecord>, ApiError> {
    if !matches!(resource_type, TOPIC | BROKER | GROUP) {
        return Err(error(
            ResponseError::InvalidRequest,
            format!("Unknown resource type {resource_type}"),
        ));
    }
    let current: Configs = image
        .configs
        .get(&(resource_type, name.to_string()))
        .cloned()
        .unwrap_or_default();
    // (key, new value) for every key the request touches, explicit first.
    let touched: Vec<(String, Option<String>)> = match change {
        Change::Incremental(ops) => {
            // The controller keeps the last operation of a repeated key.
            let ops: Vec<AlterOp> = ops
                .iter()
                .enumerate()
                .filter(|(i, o)| !ops[i + 1..].iter().any(|l| l.name == o.name))
                .map(|(_, o)| o.clone())
                .collect();
            let new = apply_alter_ops(
                current.clone(),
                &ops,
                |o, what| list_default(resource_type, o, what),
                |other| {
                    error(
                        ResponseError::InvalidRequest,
                        format!("Unknown alter configuration operation type {other}"),
                    )
                },
            )?;
            ops.iter()
                .map(|o| (o.name.clone(), new.get(&o.name).cloned()))
                .collect()
        }
        Change::Replace(configs) => configs
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .chain(
                current
                    .keys()
                    .filter(|k| !configs.contains_key(*k))
                    .map(|k| (k.clone(), None)),
            )
            .collect(),
    };
    let records: Vec<ConfigRecord> = touched
        .into_iter()
        .filter(|(k, v)| resource_type == BROKER || current.get(k) != v.as_ref())
        .map(|(k, v)| ConfigRecord {
            resource_type,
            resource_name: name.to_string(),
            name: k,
            value: v,
        })
        .collect();
    let elr = elr_enabled(image);
    let mut all = current;
    for r in &records {
        if elr && r.name == MIN_ISR && r.resource_type == BROKER {
            if !r.resource_name.is_empty() {
                return Err(error(
                    ResponseError::InvalidConfig,
                    "Broker-level min.insync.replicas cannot be altered while ELR is enabled.",
                ));
            }
            if r.value.is_none() {
                return Err(error(
                    ResponseError::InvalidConfig,
                    "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.",
                ));
            }
        }
        match &r.value {
            None => {
                all.remove(&r.name);
            }
            Some(v) if v.len() > MAX_VALUE_BYTES => {
                return Err(error(
                    ResponseError::InvalidConfig,
                    format!("The configuration value cannot be added because it exceeds the maximum value size of {MAX_VALUE_BYTES} bytes."),
                ))
            }
            Some(v) => {
                all.insert(r.name.clone(), v.clone());
            }
        }
    }
    validate_resource(resource_type, name, &all, defaults)?;
    check_exists(image, resource_type, name, is_controller)?;
    Ok(records)
}

/// One resource of a request, as the controller reads it.
struct Resource<'a> {
    resource_type: i8,
    name: &'a str,
    change: Change<'a>,
}

/// Decides every resource in request order; a resource named twice is
/// refused ("Duplicate resource.") and changes nothing. Records of the
/// resources that passed are returned unless `validate_only`.
fn decide(
    image: &MetadataImage,
    resources: &[Resource<'_>],
    validate_only: bool,
    defaults: &ReplicationDefaults,
    is_controller: &dyn Fn(i32) -> bool,
) -> (Vec<RecordAndVersion>, Vec<Result<(), ApiError>>) {
    let mut seen = HashSet::new();
    let duplicates: HashSet<(i8, &str)> = resources
        .iter()
        .filter(|r| !seen.insert((r.resource_type, r.name)))
        .map(|r| (r.resource_type, r.name))
        .collect();
    let mut records = Vec::new();
    let outcomes = resources
        .iter()
        .map(|r| {
            if duplicates.contains(&(r.resource_type, r.name)) {
                return Err(error(ResponseError::InvalidRequest, "Duplicate resource."));
            }
            let out = alter_resource(
                image,
                r.resource_type,
                r.name,
                r.change,
                defaults,
                is_controller,
            )?;
            if !validate_only {
                records.extend(out.into_iter().map(|c| RecordAndVersion {
                    record: MetadataRecord::Config(c),
                    version: CONFIG_RECORD_VERSION,
                }));
            }
            Ok(())
        })
        .collect();
    (records, outcomes)
}

fn fields(o: Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match o {
        Ok(()) => (0, None),
        Err(e) => (e.code.code(), Some(StrBytes::from_string(e.message))),
    }
}

/// An IncrementalAlterConfigs answer: one (error code, message) per
/// resource of `request`, in its order (the controller's and a broker's).
pub fn incremental_response(
    request: &IncrementalAlterConfigsRequest,
    outcomes: impl IntoIterator<Item = (i16, Option<StrBytes>)>,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, (code, message))| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// A legacy AlterConfigs answer: one (error code, message) per resource of
/// `request`, in its order (the controller's and a broker's).
pub fn legacy_response(
    request: &AlterConfigsRequest,
    outcomes: impl IntoIterator<Item = (i16, Option<StrBytes>)>,
) -> AlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, (code, message))| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs as the active controller decides it.
pub fn incremental_alter_configs(
    image: &MetadataImage,
    request: &IncrementalAlterConfigsRequest,
    defaults: &ReplicationDefaults,
    is_controller: &dyn Fn(i32) -> bool,
) -> ConfigDecision<IncrementalAlterConfigsResponse> {
    let ops: Vec<Vec<AlterOp>> = request
        .resources
        .iter()
        .map(|r| {
            r.configs
                .iter()
                .map(|c| AlterOp {
                    name: c.name.to_string(),
                    op: c.config_operation,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect()
        })
        .collect();
    let resources: Vec<Resource<'_>> = request
        .resources
        .iter()
        .zip(&ops)
        .map(|(r, o)| Resource {
            resource_type: r.resource_type,
            name: r.resource_name.as_str(),
            change: Change::Incremental(o),
        })
        .collect();
    let (records, outcomes) = decide(
        image,
        &resources,
        request.validate_only,
        defaults,
        is_controller,
    );
    ConfigDecision {
        records,
        response: incremental_response(request, outcomes.into_iter().map(fields)),
    }
}

/// AlterConfigs (the complete new set per resource) as the active
/// controller decides it.
pub fn legacy_alter_configs(
    image: &MetadataImage,
    request: &AlterConfigsRequest,
    defaults: &ReplicationDefaults,
    is_controller: &dyn Fn(i32) -> bool,
) -> ConfigDecision<AlterConfigsResponse> {
    let sets: Vec<Configs> = request
        .resources
        .iter()
        .map(|r| {
            r.configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .collect();
    let resources: Vec<Resource<'_>> = request
        .resources
        .iter()
        .zip(&sets)
        .map(|(r, s)| Resource {
            resource_type: r.resource_type,
            name: r.resource_name.as_str(),
            change: Change::Replace(s),
        })
        .collect();
    let (records, outcomes) = decide(
        image,
        &resources,
        request.validate_only,
        defaults,
        is_controller,
    );
    ConfigDecision {
        records,
        response: legacy_response(request, outcomes.into_iter().map(fields)),
    }
}

#[cfg(test)]
mod tests;
