//! FindCoordinator: on a standalone broker every group and transactional
//! id is coordinated by this broker, at the address advertised for the
//! client's listener; the first key of a type creates its internal topic
//! (`__consumer_offsets`, `__transaction_state`), as Kafka creates them on
//! first need rather than at start-up. In a cluster a group's coordinator is the leader of
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
use crate::coordinator::txn::TxnConfig;
use crate::handlers::{decode, malformed, ready, KafkaApis, Pending, Reply, Request};
use crate::security::acl::{AclOperation, ResourceType};

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn group_allowed(req: &Request, op: AclOperation, group: &str) -> bool {
    req.ctx.authorize(op, ResourceType::Group, group)
}

/// Whether the client may DESCRIBE `key` of `key_type` (0: a group, 1: a
/// transactional id), which Kafka checks before anything else.
fn key_allowed(req: &Request, key_type: i8, key: &str) -> bool {
    if key_type == 0 {
        group_allowed(req, AclOperation::Describe, key)
    } else {
        req.ctx
            .authorize(AclOperation::Describe, ResourceType::TransactionalId, key)
    }
}

/// Whether a standalone broker's coordinator of `key_type` has its
/// internal topic.
fn has_local_topic(apis: &KafkaApis, key_type: i8) -> bool {
    if key_type == 0 {
        apis.groups.has_topic()
    } else {
        apis.txns.has_topic()
    }
}

/// Standalone: makes sure the internal topic of `key_type` (0:
/// `__consumer_offsets`, 1: `__transaction_state`) exists and that its
/// coordinator has it, creating it now with its internal specs (Kafka's
/// `AutoTopicCreationManager.creatableTopic`: the configured partition
/// count, compacted) and loading it into the coordinator. Blocking when it
/// creates (each partition's directory is written and synced).
pub(crate) fn ensure_local_coordinator_topic(apis: &KafkaApis, key_type: i8) -> anyhow::Result<()> {
    if has_local_topic(apis, key_type) {
        return Ok(());
    }
    if key_type == 0 {
        let (partitions, configs) = offsets_topic_spec(&apis.config);
        let topic =
            apis.replicas
                .get_or_create_internal_topic(OFFSETS_TOPIC, partitions, configs)?;
        apis.groups.adopt_topic(topic)
    } else {
        let partitions = TxnConfig::from_broker(&apis.config).num_partitions;
        let topic = apis.replicas.get_or_create_internal_topic(
            TXN_TOPIC,
            partitions,
            TransactionCoordinator::log_topic_configs(),
        )?;
        apis.txns.adopt_topic(topic)
    }
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

pub fn find_coordinator(req: Request, body: Bytes) -> Pending {
    let r: FindCoordinatorRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    let key_type = if req.version() == 0 { 0 } else { r.key_type };
    let keys: Vec<&StrBytes> = if req.version() >= 4 {
        r.coordinator_keys.iter().collect()
    } else {
        vec![&r.key]
    };
    // Kafka answers COORDINATOR_NOT_AVAILABLE while the controller creates
    // a missing internal topic, and the client asks again after its
    // backoff (100 ms by default). A standalone broker creates it locally
    // in tens of milliseconds, so it answers once the topic exists, with
    // the coordinator: the answer Kafka gives on the retry, which every
    // client takes, one round trip and one backoff sooner. Only a key the
    // client may describe creates it, as in Kafka.
    let create = req.ctx.apis.cluster.is_none()
        && matches!(key_type, 0 | 1)
        && !has_local_topic(&req.ctx.apis, key_type)
        && keys.iter().any(|k| key_allowed(&req, key_type, k));
    if !create {
        return ready(answer(&req, &r));
    }
    Box::pin(async move {
        let apis = req.ctx.apis.clone();
        let created =
            tokio::task::spawn_blocking(move || ensure_local_coordinator_topic(&apis, key_type))
                .await;
        // On failure the keys answer COORDINATOR_NOT_AVAILABLE (the topic
        // is still missing) and the client asks again.
        match created {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(key_type, error = %format!("{e:#}"), "creating the coordinator's internal topic failed")
            }
            Err(e) => {
                tracing::error!(key_type, error = %e, "creating the coordinator's internal topic failed")
            }
        }
        answer(&req, &r)
    })
}

fn answer(req: &Request, r: &FindCoordinatorRequest) -> Reply {
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
        let denied = if key_type == 0 {
            ResponseError::GroupAuthorizationFailed
        } else {
            ResponseError::TransactionalIdAuthorizationFailed
        };
        if !key_allowed(req, key_type, key) {
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
        if !has_local_topic(apis, key_type) {
            return not_available(base);
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
