//! FindCoordinator: on a standalone broker every group and transactional
//! id is coordinated by this broker, at the address advertised for the
//! client's listener. In a cluster a group's coordinator is the leader of
//! its `__consumer_offsets` partition (a transactional id's, of its
//! `__transaction_state` partition), at that broker's endpoint on the
//! client's listener (Kafka's `KafkaApis.getCoordinator`): a missing topic
//! is created through the controller and, like a partition without an
//! alive leader, answers COORDINATOR_NOT_AVAILABLE meanwhile. A key the
//! client may not DESCRIBE is refused (GROUP_ / TRANSACTIONAL_ID_
//! AUTHORIZATION_FAILED, with Kafka's empty message).

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::metadata_cache::MetadataCache;
use crate::coordinator::group::coordinator::offsets_topic_spec;
use crate::coordinator::group::OFFSETS_TOPIC;
use crate::coordinator::partition_for;
use crate::coordinator::txn::transaction_log::TXN_TOPIC;
use crate::coordinator::txn::TransactionCoordinator;
use crate::handlers::{decode_or_close, Reply, Request};
use crate::security::acl::{AclOperation, ResourceType};

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn group_allowed(req: &Request, op: AclOperation, group: &str) -> bool {
    req.ctx.authorize(op, ResourceType::Group, group)
}

/// A cluster broker's answer for a group (key type 0) or transactional
/// id (1): the leader of its `__consumer_offsets` / `__transaction_state`
/// partition as (node id, host, port) on the client's listener; `None`
/// (COORDINATOR_NOT_AVAILABLE) while the topic is being created, the
/// partition has no leader, or the leader is fenced or has no such
/// listener.
fn coordinator_in_cluster(
    req: &Request,
    cache: &MetadataCache,
    key_type: i8,
    key: &str,
) -> Option<(i32, String, u16)> {
    let apis = &req.ctx.apis;
    let image = cache.image();
    let name = if key_type == 0 {
        OFFSETS_TOPIC
    } else {
        TXN_TOPIC
    };
    let Some(topic) = image.topic_by_name(name) else {
        let (partitions, replication_factor, configs) = if key_type == 0 {
            let (partitions, configs) = offsets_topic_spec(&apis.config);
            let replication_factor =
                i16::try_from(apis.config.int("offsets.topic.replication.factor")).unwrap_or(3);
            (partitions, replication_factor, configs)
        } else {
            TransactionCoordinator::cluster_log_topic_spec(&apis.config)
        };
        apis.internal_topics
            .create(&apis.config, name, partitions, replication_factor, configs);
        return None;
    };
    let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let registration = topic.partitions.get(&partition_for(key, count))?;
    let leader = image
        .brokers
        .get(&registration.leader)
        .filter(|b| !b.fenced)?;
    let endpoint = leader
        .listeners
        .iter()
        .find(|e| *e.name == *req.ctx.listener)?;
    Some((leader.id, endpoint.host.clone(), endpoint.port))
}

pub fn find_coordinator(req: &Request, body: Bytes) -> Reply {
    let r = decode_or_close!(req, body, FindCoordinatorRequest);
    let apis = &req.ctx.apis;
    let version = req.version();
    let key_type = if version == 0 { 0 } else { r.key_type };
    let advertised = apis.config.advertised_for(&req.ctx.listener);
    let node_id = apis.config.node_id;
    // One answer per key; every key is coordinated by this broker.
    let answer = |key: &StrBytes| -> Coordinator {
        let base = Coordinator::default().with_key(key.clone());
        if !matches!(key_type, 0 | 1) {
            return base
                .with_node_id(BrokerId(-1))
                .with_host(s(""))
                .with_port(-1)
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(s(format!("Unsupported key type {key_type}"))));
        }
        // Kafka answers a refused key with an empty message.
        let (op_ok, denied) = if key_type == 0 {
            (
                group_allowed(req, AclOperation::Describe, key),
                ResponseError::GroupAuthorizationFailed,
            )
        } else {
            (
                req.ctx
                    .authorize(AclOperation::Describe, ResourceType::TransactionalId, key),
                ResponseError::TransactionalIdAuthorizationFailed,
            )
        };
        if !op_ok {
            return base
                .with_node_id(BrokerId(-1))
                .with_host(s(""))
                .with_port(-1)
                .with_error_code(denied.code())
                .with_error_message(Some(s("")));
        }
        let not_available = |base: Coordinator| {
            base.with_node_id(BrokerId(-1))
                .with_host(s(""))
                .with_port(-1)
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                .with_error_message(Some(s("The coordinator is not available.")))
        };
        if let Some(cache) = &apis.cluster {
            return match coordinator_in_cluster(req, cache, key_type, key) {
                Some((id, host, port)) => base
                    .with_node_id(BrokerId(id))
                    .with_host(s(host))
                    .with_port(i32::from(port)),
                None => not_available(base),
            };
        }
        match advertised {
            Some(l) => base
                .with_node_id(BrokerId(node_id))
                .with_host(s(l.host.clone()))
                .with_port(i32::from(l.port)),
            None => not_available(base),
        }
    };
    let resp = if version >= 4 {
        FindCoordinatorResponse::default()
            .with_coordinators(r.coordinator_keys.iter().map(answer).collect())
    } else {
        let c = answer(&r.key);
        // v1-3 carry the error's message, which for NONE is its name.
        let message = if c.error_code == 0 {
            Some(s("NONE"))
        } else {
            c.error_message
        };
        FindCoordinatorResponse::default()
            .with_error_code(c.error_code)
            .with_error_message(message)
            .with_node_id(c.node_id)
            .with_host(c.host)
            .with_port(c.port)
    };
    req.respond(&resp)
}
