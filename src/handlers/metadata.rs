//! Metadata: brokers (this one, at the address advertised for the listener
//! the client used), cluster id, controller, topics with their partitions;
//! auto-creation of requested topics when allowed.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::topics::{is_internal_topic, validate_topic_name, Topic};
use crate::coordinator::group::OFFSETS_TOPIC;
use crate::handlers::find_coordinator::ensure_local_coordinator_topic;
use crate::handlers::{decode_or_close, Reply, Request};
use crate::metadata::{MetadataImage, PartitionRegistration, TopicImage};
use crate::security::acl::{AclOperation, ResourceType};

/// The name of the topic with id `id`, as Kafka's
/// `metadataCache.getTopicName`: a cluster's image, else the local registry
/// (a standalone broker's, and the internal topics each node creates
/// itself). None for the zero id and an unknown or deleted topic.
pub(crate) fn topic_name_by_id(apis: &crate::handlers::KafkaApis, id: &Uuid) -> Option<String> {
    if id.is_nil() {
        return None;
    }
    let from_image = apis
        .cluster
        .as_ref()
        .and_then(|c| c.image().topics.get(id).map(|t| t.name.clone()));
    from_image.or_else(|| apis.replicas.topics.get_by_id(id).map(|t| t.name.clone()))
}

/// The id of the topic named `name` (Kafka's `metadataCache.getTopicId`),
/// looked up as [`topic_name_by_id`] does; None if there is no such topic.
pub(crate) fn topic_id_by_name(apis: &crate::handlers::KafkaApis, name: &str) -> Option<Uuid> {
    let from_image = apis
        .cluster
        .as_ref()
        .and_then(|c| c.image().topic_by_name(name).map(|t| t.id));
    from_image
        .or_else(|| apis.replicas.topics.get(name).map(|t| t.id))
        .filter(|id| !id.is_nil())
}

/// Kafka's AclOperation codes.
mod acl_op {
    pub const READ: i32 = 3;
    pub const WRITE: i32 = 4;
    pub const CREATE: i32 = 5;
    pub const DELETE: i32 = 6;
    pub const ALTER: i32 = 7;
    pub const DESCRIBE: i32 = 8;
    pub const CLUSTER_ACTION: i32 = 9;
    pub const DESCRIBE_CONFIGS: i32 = 10;
    pub const ALTER_CONFIGS: i32 = 11;
    pub const IDEMPOTENT_WRITE: i32 = 12;
}

/// Without an authorizer Kafka reports every operation the resource supports.
fn bitfield(ops: &[i32]) -> i32 {
    ops.iter().fold(0, |acc, op| acc | (1 << op))
}

pub fn topic_authorized_operations() -> i32 {
    use acl_op::*;
    bitfield(&[
        READ,
        WRITE,
        CREATE,
        DELETE,
        ALTER,
        DESCRIBE,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
    ])
}

/// The cluster resource's operations (Kafka's `AclEntry.supportedOperations`
/// for CLUSTER); the token operations belong to USER resources.
pub fn cluster_authorized_operations() -> i32 {
    use acl_op::*;
    bitfield(&[
        CREATE,
        ALTER,
        DESCRIBE,
        CLUSTER_ACTION,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
        IDEMPOTENT_WRITE,
    ])
}

/// Kafka's "not requested" value for authorized operations.
pub const OPS_NOT_REQUESTED: i32 = i32::MIN;

/// A topic as a cluster broker finds it: from the committed image, or (the
/// internal topics, still created on each node at start-up) a local log.
enum Found<'a> {
    Image(&'a MetadataImage, &'a TopicImage),
    Local(Arc<Topic>),
}

impl Found<'_> {
    fn name(&self) -> &str {
        match self {
            Found::Image(_, t) => &t.name,
            Found::Local(t) => &t.name,
        }
    }
}

/// A topic of the image, each partition as the image has it.
fn image_topic_entry(image: &MetadataImage, t: &TopicImage, ops: i32) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(t.id)
        .with_is_internal(is_internal_topic(&t.name))
        .with_partitions(
            t.partitions
                .iter()
                .map(|(index, reg)| cluster_partition(image, *index, reg))
                .collect(),
        )
        .with_topic_authorized_operations(ops)
}

/// Whether a cluster's image has `partition` of the topic (by name, or by
/// id when `name` is `None`): a broker that hosts no replica of it answers
/// NOT_LEADER_OR_FOLLOWER rather than UNKNOWN_TOPIC_OR_PARTITION, as Kafka's
/// `ReplicaManager.getPartitionOrError` does for a partition it does not host.
pub fn known_elsewhere(req: &Request, name: Option<&str>, id: Uuid, partition: i32) -> bool {
    in_cluster_image(&req.ctx.apis, name, id, partition)
}

/// Whether the cluster's image (none standalone) has `partition` of the
/// topic named `name`, or with `id` when `name` is `None`.
pub fn in_cluster_image(
    apis: &crate::handlers::KafkaApis,
    name: Option<&str>,
    id: Uuid,
    partition: i32,
) -> bool {
    let Some(cache) = &apis.cluster else {
        return false;
    };
    let image = cache.image();
    let topic = match name {
        Some(n) => image.topic_by_name(n),
        None => image.topics.get(&id),
    };
    topic.is_some_and(|t| t.partitions.contains_key(&partition))
}

fn topic_entry(
    topic: &Topic,
    node_id: i32,
    ops: i32,
    image: Option<&MetadataImage>,
) -> MetadataResponseTopic {
    // In a cluster the image says who leads and which replicas are in sync.
    if let Some(t) = image.and_then(|i| i.topic_by_name(&topic.name).map(|t| (i, t))) {
        let (image, t) = t;
        let partitions = t
            .partitions
            .iter()
            .map(|(index, reg)| cluster_partition(image, *index, reg))
            .collect();
        return MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
            .with_topic_id(t.id)
            .with_is_internal(topic.internal)
            .with_partitions(partitions)
            .with_topic_authorized_operations(ops);
    }
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(p.leader_epoch())
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(ops)
}

/// One partition as the metadata image has it (Kafka's
/// `KRaftMetadataCache.partitionMetadata`): no leader is
/// LEADER_NOT_AVAILABLE; replicas on fenced or unknown brokers are offline.
fn cluster_partition(
    image: &MetadataImage,
    index: i32,
    reg: &PartitionRegistration,
) -> MetadataResponsePartition {
    let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
    let offline = image.offline_replicas(reg);
    let error = if reg.leader < 0 {
        ResponseError::LeaderNotAvailable.code()
    } else {
        0
    };
    MetadataResponsePartition::default()
        .with_error_code(error)
        .with_partition_index(index)
        .with_leader_id(BrokerId(reg.leader))
        .with_leader_epoch(reg.leader_epoch)
        .with_replica_nodes(ids(&reg.replicas))
        .with_isr_nodes(ids(&reg.isr))
        .with_offline_replicas(ids(&offline))
}

/// A topic answered with an error. Kafka computes the operations of every
/// topic asked for by name, known or not (without an authorizer: all of a
/// topic's); a topic asked for by an unknown id has no resource to compute.
fn error_entry(
    name: Option<&str>,
    id: Uuid,
    code: ResponseError,
    ops: i32,
) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_string()))))
        .with_topic_id(id)
        .with_topic_authorized_operations(if name.is_some() {
            ops
        } else {
            OPS_NOT_REQUESTED
        })
}

/// Kafka's answer to a Metadata request it refuses as a whole
/// (`MetadataRequest.getErrorResponse`): every topic asked for with the
/// error, a null name written as "", nothing else.
fn whole_request_error(request: &MetadataRequest, code: ResponseError) -> MetadataResponse {
    let topics = request
        .topics
        .iter()
        .flatten()
        .map(|t| {
            MetadataResponseTopic::default()
                .with_error_code(code.code())
                .with_name(Some(
                    t.name
                        .clone()
                        .unwrap_or_else(|| TopicName(StrBytes::default())),
                ))
                .with_topic_id(t.topic_id)
                .with_topic_authorized_operations(OPS_NOT_REQUESTED)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(Vec::new())
        .with_cluster_id(None)
        .with_controller_id(BrokerId(-1))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPS_NOT_REQUESTED)
}

pub fn handle(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, MetadataRequest);
    let apis = &req.ctx.apis;
    let cfg = &apis.config;
    let version = req.version();
    let node_id = cfg.node_id;
    let include_ops = request.include_topic_authorized_operations;
    // A topic's authorized operations, computed only when asked for.
    let ops_of = |name: &str| {
        if include_ops {
            req.ctx
                .authorized_operations(ResourceType::Topic, name, topic_authorized_operations())
        } else {
            OPS_NOT_REQUESTED
        }
    };
    let may_describe = |name: &str| {
        req.ctx
            .authorize(AclOperation::Describe, ResourceType::Topic, name)
    };
    // Creating a topic takes CREATE on the cluster or on the topic.
    let may_create = |name: &str| {
        req.ctx.authorize_cluster(AclOperation::Create)
            || req
                .ctx
                .authorize(AclOperation::Create, ResourceType::Topic, name)
    };
    // v10-11 carry topic ids on the wire but may not use them (a topic's
    // name cannot be null before v12): Kafka refuses the whole request.
    if (10..12).contains(&version)
        && request
            .topics
            .iter()
            .flatten()
            .any(|t| t.name.is_none() || !t.topic_id.is_nil())
    {
        return req.respond(&whole_request_error(
            &request,
            ResponseError::InvalidRequest,
        ));
    }
    // v0-3 always allowed auto-creation; v4+ asks explicitly.
    let allow_auto_create =
        cfg.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);

    let image = apis.cluster.as_ref().map(|c| c.image());
    // In a cluster the image is the truth; a local log counts only for the
    // internal topics each node still creates itself.
    let local = |t: Option<Arc<Topic>>| {
        t.filter(|t| image.is_none() || t.internal)
            .map(Found::Local)
    };
    let by_name = |name: &str| match image.as_deref() {
        Some(i) => i
            .topic_by_name(name)
            .map(|t| Found::Image(i, t))
            .or_else(|| local(apis.replicas.topics.get(name))),
        None => local(apis.replicas.topics.get(name)),
    };
    let by_id = |id: &Uuid| match image.as_deref() {
        Some(i) => i
            .topics
            .get(id)
            .map(|t| Found::Image(i, t))
            .or_else(|| local(apis.replicas.topics.get_by_id(id))),
        None => local(apis.replicas.topics.get_by_id(id)),
    };
    let entry = |found: &Found, ops: i32| match found {
        Found::Image(i, t) => image_topic_entry(i, t, ops),
        Found::Local(t) => topic_entry(t, node_id, ops, image.as_deref()),
    };
    let mut topics = Vec::new();
    let requested = match request.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(list),
    };
    match requested {
        None => {
            // All topics: the ones the client may describe, silently.
            let mut all: BTreeMap<String, Found> = BTreeMap::new();
            if let Some(i) = image.as_deref() {
                for t in i.topics.values() {
                    all.insert(t.name.clone(), Found::Image(i, t));
                }
            }
            for t in apis.replicas.topics.list() {
                if !all.contains_key(&t.name) {
                    if let Some(f) = local(Some(t)) {
                        all.insert(f.name().to_string(), f);
                    }
                }
            }
            for (name, found) in &all {
                if may_describe(name) {
                    topics.push(entry(found, ops_of(name)));
                }
            }
        }
        Some(list) => {
            for rt in list {
                // A topic id wins over the name (Kafka's `useTopicId`: the
                // 4.x consumer sends ids with an empty name).
                let name = rt
                    .name
                    .as_ref()
                    .map(|n| n.0.to_string())
                    .filter(|_| rt.topic_id.is_nil());
                match name {
                    None => {
                        // Look-up by topic id (v12+).
                        match by_id(&rt.topic_id) {
                            Some(f) if may_describe(f.name()) => {
                                topics.push(entry(&f, ops_of(f.name())))
                            }
                            Some(_) => topics.push(error_entry(
                                None,
                                rt.topic_id,
                                ResponseError::TopicAuthorizationFailed,
                                OPS_NOT_REQUESTED,
                            )),
                            None => topics.push(error_entry(
                                None,
                                rt.topic_id,
                                ResponseError::UnknownTopicId,
                                OPS_NOT_REQUESTED,
                            )),
                        }
                    }
                    Some(name) => {
                        if !may_describe(&name) {
                            // No existence leak: refused whether it exists;
                            // Kafka computes no operations for it.
                            topics.push(error_entry(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::TopicAuthorizationFailed,
                                OPS_NOT_REQUESTED,
                            ));
                            continue;
                        }
                        let ops = ops_of(&name);
                        if let Some(f) = by_name(&name) {
                            topics.push(entry(&f, ops));
                            continue;
                        }
                        if validate_topic_name(&name).is_err() {
                            topics.push(error_entry(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::InvalidTopicException,
                                ops,
                            ));
                            continue;
                        }
                        if !allow_auto_create {
                            topics.push(error_entry(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::UnknownTopicOrPartition,
                                ops,
                            ));
                            continue;
                        }
                        if !may_create(&name) {
                            topics.push(error_entry(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::TopicAuthorizationFailed,
                                ops,
                            ));
                            continue;
                        }
                        if image.is_some() {
                            // A cluster: the active controller creates it
                            // and the client asks again until the image has
                            // it. The coordinators' topics are the node's
                            // own, created at start-up with their internal
                            // specs: never one with the defaults here.
                            if !is_internal_topic(&name) {
                                apis.auto_topic_creation.create_topic(&apis.config, &name);
                            }
                            topics.push(error_entry(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::UnknownTopicOrPartition,
                                ops,
                            ));
                            continue;
                        }
                        if is_internal_topic(&name) {
                            // A standalone broker creates a coordinator's
                            // topic with its internal specs and hands it to
                            // the coordinator (Kafka's auto-creation does
                            // the same through `creatableTopic`).
                            let key_type = if name == OFFSETS_TOPIC { 0 } else { 1 };
                            // Answered as every auto-creation is (the
                            // client asks again); a failure only logs.
                            if let Err(e) = ensure_local_coordinator_topic(apis, key_type) {
                                tracing::error!(topic = %name, error = %format!("{e:#}"), "auto-creating an internal topic failed");
                            }
                            topics.push(error_entry(
                                Some(&name),
                                Uuid::nil(),
                                ResponseError::UnknownTopicOrPartition,
                                ops,
                            ));
                            continue;
                        }
                        let rf = cfg.default_replication_factor.clamp(1, i16::MAX as i32) as i16;
                        match apis.replicas.create_topic(
                            &name,
                            cfg.num_partitions,
                            rf,
                            BTreeMap::new(),
                        ) {
                            // Kafka answers UNKNOWN_TOPIC_OR_PARTITION while it
                            // creates the topic, and clients ask again; the
                            // topic is ready by then here (created in place).
                            Ok(_) => {
                                tracing::info!(topic = %name, peer = %req.ctx.peer, "auto-created topic on metadata request");
                                topics.push(error_entry(
                                    Some(&name),
                                    Uuid::nil(),
                                    ResponseError::UnknownTopicOrPartition,
                                    ops,
                                ));
                            }
                            // Raced with another creator: report what exists.
                            Err(e) if e.code == ResponseError::TopicAlreadyExists => {
                                match apis.replicas.topics.get(&name) {
                                    Some(t) => {
                                        topics.push(topic_entry(&t, node_id, ops, image.as_deref()))
                                    }
                                    None => topics.push(error_entry(
                                        Some(&name),
                                        Uuid::nil(),
                                        ResponseError::LeaderNotAvailable,
                                        ops,
                                    )),
                                }
                            }
                            Err(e) => {
                                tracing::warn!(topic = %name, error = %e.message, "auto-creation failed");
                                let code = match e.code {
                                    ResponseError::InvalidReplicationFactor => {
                                        ResponseError::InvalidReplicationFactor
                                    }
                                    ResponseError::InvalidTopicException => {
                                        ResponseError::InvalidTopicException
                                    }
                                    _ => ResponseError::UnknownTopicOrPartition,
                                };
                                topics.push(error_entry(Some(&name), Uuid::nil(), code, ops));
                            }
                        }
                    }
                }
            }
        }
    }

    let (brokers, controller_id) = match &apis.cluster {
        // A cluster: every unfenced broker with an endpoint on this listener.
        Some(cache) => (
            cache
                .alive_brokers(&req.ctx.listener)
                .into_iter()
                .map(|(b, host, port)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.id))
                        .with_host(StrBytes::from_string(host))
                        .with_port(i32::from(port))
                        .with_rack(b.rack.map(StrBytes::from_string))
                })
                .collect(),
            cache.reported_controller_id(),
        ),
        None => match cfg.advertised_for(&req.ctx.listener) {
            Some(adv) => (
                vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(node_id))
                    .with_host(StrBytes::from_string(adv.host.clone()))
                    .with_port(i32::from(adv.port))],
                node_id,
            ),
            None => (Vec::new(), node_id),
        },
    };
    let resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(apis.cluster_id.clone())))
        .with_controller_id(BrokerId(controller_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            crate::handlers::admin_cluster::cluster_operations(req, cluster_authorized_operations())
        } else {
            OPS_NOT_REQUESTED
        });
    req.respond(&resp)
}
