//! CreateTopics and DeleteTopics.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::config_helper::created_topic_configs;
use crate::broker::dynamic_config::DynamicBrokerConfig;
use crate::broker::topic_config::topic_key;
use crate::broker::topics::{new_topic_id, validate_manual_assignment, TopicError};
use crate::handlers::{decode_or_close, Reply, Request};
use crate::security::acl::{AclOperation, ResourceType};

/// Topic configs as CreateTopics v5+ reports them (Kafka hides internal
/// keys): each key's value and where it comes from, as the controller
/// resolves them.
pub fn described_configs(
    overrides: &BTreeMap<String, String>,
    dynamic: &DynamicBrokerConfig,
) -> Vec<CreatableTopicConfigs> {
    created_topic_configs(overrides, dynamic)
        .into_iter()
        .map(|(name, value, source)| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(value.map(StrBytes::from_string))
                .with_read_only(false)
                .with_config_source(source)
                .with_is_sensitive(false)
        })
        .collect()
}

/// The versions from which the controller mutation quota refuses
/// mutations instead of only throttling them (KIP-599).
const CREATE_TOPICS_STRICT_SINCE: i16 = 6;
const DELETE_TOPICS_STRICT_SINCE: i16 = 5;

/// A mutation refused by the strict controller mutation quota.
pub fn throttling_quota_exceeded() -> TopicError {
    TopicError {
        code: ResponseError::ThrottlingQuotaExceeded,
        message: crate::controller::replication_control::THROTTLING_QUOTA_EXCEEDED_MESSAGE
            .to_string(),
    }
}

pub fn create_topics(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, CreateTopicsRequest);
    let apis = &req.ctx.apis;
    let cfg = &apis.config;
    let version = req.version();

    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.to_string()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    let mut quota = req.mutation_quota(CREATE_TOPICS_STRICT_SINCE);
    for t in request.topics {
        let name = t.name.0.to_string();
        // No message unless the topic fails, as Kafka answers.
        let mut result = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_message(None);
        let fail = |mut r: CreatableTopicResult, code: ResponseError, msg: String| {
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(msg));
            r.num_partitions = -1;
            r.replication_factor = -1;
            // v5+: a failed topic has no configs, an empty array as in Kafka.
            r.configs = (version >= 5).then(Vec::new);
            r
        };
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            results.push(fail(
                result,
                ResponseError::InvalidRequest,
                format!("Duplicate topic name: {name}"),
            ));
            continue;
        }
        // CREATE on the cluster or on the topic.
        if !req.ctx.authorize_cluster(AclOperation::Create)
            && !req
                .ctx
                .authorize(AclOperation::Create, ResourceType::Topic, &name)
        {
            results.push(fail(
                result,
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            ));
            continue;
        }
        // Manual assignments replace the partition count and replication
        // factor: Kafka's ReplicationControlManager checks them in this
        // order, partition by partition.
        let (num_partitions, replication_factor) = if !t.assignments.is_empty() {
            let manual = |what: &str| {
                format!(
                    "A manual partition assignment was specified, but {what} was not set to -1."
                )
            };
            let bad = if t.replication_factor != -1 {
                Some((ResponseError::InvalidRequest, manual("replication factor")))
            } else if t.num_partitions != -1 {
                Some((ResponseError::InvalidRequest, manual("numPartitions")))
            } else {
                let mut rf = None;
                t.assignments.iter().enumerate().find_map(|(i, a)| {
                    if i32::try_from(i).ok() != Some(a.partition_index) {
                        return Some((
                            ResponseError::InvalidReplicaAssignment,
                            "partitions should be a consecutive 0-based integer sequence"
                                .to_string(),
                        ));
                    }
                    let ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
                    let checked = validate_manual_assignment(&ids, |b| b == cfg.node_id, rf);
                    rf = Some(ids.len());
                    checked
                        .err()
                        .map(|m| (ResponseError::InvalidReplicaAssignment, m))
                })
            };
            if let Some((code, msg)) = bad {
                results.push(fail(result, code, msg));
                continue;
            }
            // Valid assignments name this node once per partition.
            let (Ok(np), Ok(rf)) = (
                i32::try_from(t.assignments.len()),
                i16::try_from(t.assignments[0].broker_ids.len()),
            ) else {
                results.push(fail(
                    result,
                    ResponseError::InvalidReplicaAssignment,
                    "too many partitions or replicas".into(),
                ));
                continue;
            };
            (np, rf)
        } else {
            let np = if t.num_partitions == -1 {
                cfg.num_partitions
            } else {
                t.num_partitions
            };
            let rf = if t.replication_factor == -1 {
                cfg.default_replication_factor.clamp(1, i16::MAX as i32) as i16
            } else {
                t.replication_factor
            };
            (np, rf)
        };
        let mut configs = BTreeMap::new();
        let mut config_error = None;
        for c in &t.configs {
            let key = c.name.to_string();
            match &c.value {
                Some(v) => {
                    configs.insert(key, v.to_string());
                }
                None => {
                    config_error = Some(if topic_key(&key).is_some() {
                        format!("Null value not supported for topic configs: {key}")
                    } else {
                        format!("Unknown topic config name: {key}")
                    })
                }
            }
        }
        if let Some(msg) = config_error {
            results.push(fail(result, ResponseError::InvalidConfig, msg));
            continue;
        }
        // The controller mutation quota (KIP-599) is charged the topic's
        // partitions once every other check has passed, as Kafka's
        // ReplicationControlManager does, validateOnly or not.
        let outcome = apis
            .replicas
            .topics
            .check_create(&name, num_partitions, replication_factor, &configs)
            .and_then(|_| {
                quota
                    .record(f64::from(num_partitions.max(0)))
                    .map_err(|_| throttling_quota_exceeded())
            })
            .and_then(|_| {
                if request.validate_only {
                    Ok(None)
                } else {
                    apis.replicas
                        .create_topic(&name, num_partitions, replication_factor, configs.clone())
                        .map(|t| Some(t.id))
                }
            });
        match outcome {
            Ok(id) => {
                // validateOnly: Kafka's controller still draws a fresh id.
                result.topic_id = id.unwrap_or_else(new_topic_id);
                result.num_partitions = num_partitions;
                result.replication_factor = replication_factor;
                if version >= 5 {
                    if req
                        .ctx
                        .authorize(AclOperation::DescribeConfigs, ResourceType::Topic, &name)
                    {
                        result.configs = Some(described_configs(&configs, &apis.dynamic_config));
                    } else {
                        // Created, but its configs are not the client's to
                        // see: Kafka hides them and the counts.
                        result.topic_config_error_code =
                            ResponseError::TopicAuthorizationFailed.code();
                        result.num_partitions = -1;
                        result.replication_factor = -1;
                        result.configs = Some(Vec::new());
                    }
                }
            }
            Err(e) => {
                result = fail(result, e.code, e.message);
            }
        }
        results.push(result);
    }
    let throttle = req.finish_mutation_quota(&quota);
    req.respond(
        &CreateTopicsResponse::default()
            .with_topics(results)
            .with_throttle_time_ms(throttle),
    )
}

pub fn delete_topics(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DeleteTopicsRequest);
    let apis = &req.ctx.apis;
    let version = req.version();
    // v6 names topics by name or id; earlier versions by name only.
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    let mut quota = req.mutation_quota(DELETE_TOPICS_STRICT_SINCE);
    let mut deleted = Vec::new();
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default().with_topic_id(id);
        r.name = name.clone().map(|n| TopicName(StrBytes::from_string(n)));
        // DELETE on the cluster or the topic, decided by name before
        // existence (Kafka's controller checks the cluster first).
        let cluster_delete = req.ctx.authorize_cluster(AclOperation::Delete);
        if !cluster_delete
            && name.as_ref().is_some_and(|n| {
                !req.ctx
                    .authorize(AclOperation::Delete, ResourceType::Topic, n)
            })
        {
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
            responses.push(r);
            continue;
        }
        let resolved = match &name {
            Some(n) => apis
                .replicas
                .topics
                .get(n)
                .ok_or(ResponseError::UnknownTopicOrPartition),
            None => apis
                .replicas
                .topics
                .get_by_id(&id)
                .ok_or(ResponseError::UnknownTopicId),
        };
        let topic = match resolved {
            Ok(t) => t,
            Err(code) => {
                // Kafka's default text for the code (v5+ carries it).
                r.error_code = code.code();
                r.error_message = Some(StrBytes::from_static_str(
                    if code == ResponseError::UnknownTopicId {
                        "This server does not host this topic ID."
                    } else {
                        "This server does not host this topic-partition."
                    },
                ));
                responses.push(r);
                continue;
            }
        };
        r.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
        r.topic_id = topic.id;
        if name.is_none()
            && !cluster_delete
            && !req
                .ctx
                .authorize(AclOperation::Delete, ResourceType::Topic, &topic.name)
        {
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
        } else if !apis.config.delete_topic_enable {
            r.error_code = ResponseError::TopicDeletionDisabled.code();
        } else if topic.internal {
            r.error_code = ResponseError::InvalidRequest.code();
            r.error_message = Some(StrBytes::from_string(format!(
                "Cannot delete internal topic {}",
                topic.name
            )));
        } else if quota.record(topic.partitions.len() as f64).is_err() {
            let e = throttling_quota_exceeded();
            r.error_code = e.code.code();
            r.error_message = Some(StrBytes::from_string(e.message));
        } else if let Err(e) = apis.replicas.topics.delete(&topic.name) {
            r.error_code = e.code.code();
            r.error_message = Some(StrBytes::from_string(e.message));
        } else {
            deleted.push(topic.name.clone());
        }
        responses.push(r);
    }
    // The groups' offsets of the deleted topics go with them (Kafka's
    // coordinator does this on the metadata update).
    if !deleted.is_empty() {
        apis.groups.on_topics_deleted(&deleted);
    }
    let throttle = req.finish_mutation_quota(&quota);
    req.respond(
        &DeleteTopicsResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(throttle),
    )
}
