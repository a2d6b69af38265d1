//! Cluster and partition administration: CreatePartitions, DeleteRecords,
//! DescribeCluster, DescribeLogDirs, OffsetForLeaderEpoch, ElectLeaders,
//! Describe/AlterClientQuotas, ListConfigResources (reassignments are in
//! `reassignments`), answered as a single-node Kafka 4.x
//! cluster answers them.
//!
//! kastle is its own controller with one replica per partition, so leader
//! elections are never needed, the only valid replica set is `[node.id]`,
//! and every partition's leader epoch is 0.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    alter_client_quotas_response, describe_client_quotas_response, AlterClientQuotasRequest,
    AlterClientQuotasResponse, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, DescribeClusterRequest, DescribeClusterResponse,
    DescribeLogDirsRequest, DescribeLogDirsResponse, ElectLeadersRequest, ElectLeadersResponse,
    ListConfigResourcesRequest, ListConfigResourcesResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::quotas::{parse_filter, FilterComponent};
use crate::broker::topic_config::effective;
use crate::broker::topics::validate_manual_assignment;
use crate::handlers::forwarding::forward_and_respond;
use crate::handlers::metadata::cluster_authorized_operations;
use crate::handlers::{decode_or_close, ready, Pending, Reply, Request};
use crate::protocol::describe_log_dirs;
use crate::security::acl::{AclOperation, ResourceType};

/// The message of a request refused by its cluster check (Kafka's names
/// the request).
/// The cluster's authorized operations as Kafka reports them: none unless
/// the client may DESCRIBE the cluster.
pub fn cluster_operations(req: &Request, all: i32) -> i32 {
    if req.ctx.authorize_cluster(AclOperation::Describe) {
        req.ctx.authorized_operations(
            ResourceType::Cluster,
            crate::security::acl::CLUSTER_NAME,
            all,
        )
    } else {
        0
    }
}

pub(crate) fn cluster_refused(req: &Request) -> String {
    format!(
        "Request {} (principal {}) is not authorized.",
        req.header.api_key, req.ctx.principal
    )
}

pub(crate) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}

/// Kafka's `ListOffsetsRequest.DEBUGGING_REPLICA_ID`.
const DEBUGGING_REPLICA_ID: i32 = -2;

// ---------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------

pub fn create_partitions(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, CreatePartitionsRequest);
    let apis = &req.ctx.apis;
    let node_id = apis.config.node_id;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *counts.entry(t.name.0.as_str()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    // Strict (THROTTLING_QUOTA_EXCEEDED) from v3, as Kafka.
    let mut quota = req.mutation_quota(3);
    for t in &request.topics {
        let name = t.name.0.as_str();
        let outcome = (|| -> Result<(), (ResponseError, String)> {
            if counts.get(name).copied().unwrap_or(0) > 1 {
                return Err((
                    ResponseError::InvalidRequest,
                    "Duplicate topic in request.".into(),
                ));
            }
            if !req
                .ctx
                .authorize(AclOperation::Alter, ResourceType::Topic, name)
            {
                return Err((
                    ResponseError::TopicAuthorizationFailed,
                    "The topic authorization is failed.".into(),
                ));
            }
            // Counts first (unknown topic, not an increase), as Kafka does,
            // then the manual assignments.
            let topic = apis
                .replicas
                .create_partitions(name, t.count, true)
                .map_err(|e| (e.code, e.message))?;
            if let Some(assignments) = &t.assignments {
                // `count` was checked above to be above the current count.
                let added = usize::try_from(t.count)
                    .unwrap_or(0)
                    .saturating_sub(topic.partitions.len());
                if assignments.len() != added {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                            assignments.len()
                        ),
                    ));
                }
                // Every kastle topic has replication factor 1.
                for a in assignments {
                    let ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
                    validate_manual_assignment(&ids, |b| b == node_id, Some(1))
                        .map_err(|m| (ResponseError::InvalidReplicaAssignment, m))?;
                }
            }
            // The partitions added, charged to the controller mutation
            // quota once the request is otherwise valid (KIP-599).
            let added = usize::try_from(t.count)
                .unwrap_or(0)
                .saturating_sub(topic.partitions.len());
            quota.record(added as f64).map_err(|_| {
                let e = super::topics::throttling_quota_exceeded();
                (e.code, e.message)
            })?;
            if !request.validate_only {
                apis.replicas
                    .create_partitions(name, t.count, false)
                    .map_err(|e| (e.code, e.message))?;
            }
            Ok(())
        })();
        let mut r = CreatePartitionsTopicResult::default()
            .with_name(t.name.clone())
            .with_error_message(None);
        if let Err((code, msg)) = outcome {
            r.error_code = code.code();
            // Kafka's controller answers an unknown topic without a message.
            if code != ResponseError::UnknownTopicOrPartition {
                r.error_message = Some(sb(msg));
            }
        }
        results.push(r);
    }
    let throttle = req.finish_mutation_quota(&quota);
    req.respond(
        &CreatePartitionsResponse::default()
            .with_results(results)
            .with_throttle_time_ms(throttle),
    )
}

// ---------------------------------------------------------------------------
// DeleteRecords
// ---------------------------------------------------------------------------

pub fn delete_records(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DeleteRecordsRequest);
    let apis = &req.ctx.apis;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let topic = apis.replicas.topics.get(t.name.0.as_str());
            let deletable =
                req.ctx
                    .authorize(AclOperation::Delete, ResourceType::Topic, t.name.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if !deletable {
                        return base.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some((topic, part)) = topic
                        .as_ref()
                        .and_then(|t| t.partition(p.partition_index).map(|part| (t, part)))
                    else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    // Kafka's ReplicaManager refuses internal topics first.
                    if topic.internal {
                        return base.with_error_code(ResponseError::InvalidTopicException.code());
                    }
                    // Kafka refuses to delete records of a topic whose
                    // cleanup policy does not include delete.
                    let policy =
                        effective("cleanup.policy", &topic.configs, &apis.replicas.topics.broker_config())
                            .unwrap_or_default();
                    if !policy.split(',').any(|p| p.trim() == "delete") {
                        return base.with_error_code(ResponseError::PolicyViolation.code());
                    }
                    match part.delete_records(p.offset) {
                        Ok(low) => base.with_low_watermark(low),
                        Err(e) => {
                            tracing::info!(topic = %topic.name, partition = p.partition_index, offset = p.offset, error = %e, "delete records refused");
                            base.with_error_code(e.code().code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    req.respond(&DeleteRecordsResponse::default().with_topics(topics))
}

// ---------------------------------------------------------------------------
// DescribeCluster
// ---------------------------------------------------------------------------

/// Kafka's `EndpointType` (KIP-919).
const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

pub fn describe_cluster(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DescribeClusterRequest);
    let apis = &req.ctx.apis;
    let cfg = &apis.config;
    let version = req.version();
    // Clients reach kastle on a broker listener, so a request for the
    // controller endpoints is a mismatch, as on a Kafka broker.
    let endpoint_error = match request.endpoint_type {
        ENDPOINT_BROKER => None,
        ENDPOINT_CONTROLLER => Some((
            ResponseError::MismatchedEndpointType,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".to_string(),
        )),
        other => Some((
            ResponseError::UnsupportedEndpointType,
            format!("Unsupported endpoint type {other}"),
        )),
    };
    if let Some((code, msg)) = endpoint_error {
        let code = if version == 0 {
            ResponseError::InvalidRequest
        } else {
            code
        };
        return req.respond(
            &DescribeClusterResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(sb(msg))),
        );
    }
    let (brokers, controller) = match &apis.cluster {
        // A cluster: the unfenced brokers on this listener (Kafka lists the
        // fenced ones too only when include_fenced_brokers asks).
        Some(cache) => (
            cache
                .alive_brokers(&req.ctx.listener)
                .into_iter()
                .map(|(b, host, port)| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.id))
                        .with_host(sb(host))
                        .with_port(i32::from(port))
                        .with_rack(b.rack.map(sb))
                        .with_is_fenced(false)
                })
                .collect::<Vec<_>>(),
            cache.reported_controller_id(),
        ),
        None => {
            let brokers = match cfg.advertised_for(&req.ctx.listener) {
                Some(adv) => vec![DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(cfg.node_id))
                    .with_host(sb(adv.host.clone()))
                    .with_port(i32::from(adv.port))
                    .with_rack(None)
                    .with_is_fenced(false)],
                None => Vec::new(),
            };
            let controller = if brokers.is_empty() { -1 } else { cfg.node_id };
            (brokers, controller)
        }
    };
    let resp = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKER)
        .with_cluster_id(sb(apis.cluster_id.clone()))
        .with_controller_id(BrokerId(controller))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            cluster_operations(req, cluster_authorized_operations())
        } else {
            i32::MIN
        });
    req.respond(&resp)
}

// ---------------------------------------------------------------------------
// DescribeLogDirs
// ---------------------------------------------------------------------------

/// (total, usable) bytes of the file system holding `dir`, as Java's
/// `FileStore.getTotalSpace`/`getUsableSpace` report them.
fn disk_space(dir: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a
    // valid NUL-terminated string for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    let total = (st.f_blocks as u64).saturating_mul(frsize);
    let usable = (st.f_bavail as u64).saturating_mul(frsize);
    Some((
        i64::try_from(total).unwrap_or(i64::MAX),
        i64::try_from(usable).unwrap_or(i64::MAX),
    ))
}

pub fn describe_log_dirs(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DescribeLogDirsRequest);
    let apis = &req.ctx.apis;
    if !req.ctx.authorize_cluster(AclOperation::Describe) {
        // Nothing listed; the error exists from v3.
        return req.respond_past_crate(
            describe_log_dirs::CRATE_MAX,
            &DescribeLogDirsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
            describe_log_dirs::write_v5,
        );
    }
    let dir = apis.replicas.topics.log_dir();
    // Kafka reports `File.getAbsolutePath`: absolute, not canonical.
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    // None = every partition; otherwise only the named ones that exist here.
    let wanted: Option<HashMap<&str, HashSet<i32>>> = request.topics.as_ref().map(|ts| {
        let mut m: HashMap<&str, HashSet<i32>> = HashMap::new();
        for t in ts {
            m.entry(t.topic.0.as_str())
                .or_default()
                .extend(t.partitions.iter().copied());
        }
        m
    });
    let mut all = apis.replicas.topics.list();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let mut topics = Vec::new();
    for t in all {
        let selected: Option<&HashSet<i32>> = match &wanted {
            None => None,
            Some(m) => match m.get(t.name.as_str()) {
                Some(s) => Some(s),
                None => continue,
            },
        };
        let partitions: Vec<DescribeLogDirsPartition> = t
            .partitions
            .iter()
            .filter(|p| selected.is_none_or(|s| s.contains(&p.index)))
            .filter_map(|p| {
                let size = p.size_bytes()?;
                Some(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p.index)
                        .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                )
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(tn(&t.name))
                    .with_partitions(partitions),
            );
        }
    }
    let (total, usable) = disk_space(dir).unwrap_or((-1, -1));
    let result = DescribeLogDirsResult::default()
        .with_log_dir(sb(abs.to_string_lossy().into_owned()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable);
    // v5 adds IsCordoned: false, no directory is cordoned.
    req.respond_past_crate(
        describe_log_dirs::CRATE_MAX,
        &DescribeLogDirsResponse::default().with_results(vec![result]),
        describe_log_dirs::write_v5,
    )
}

// ---------------------------------------------------------------------------
// OffsetForLeaderEpoch
// ---------------------------------------------------------------------------

pub fn offset_for_leader_epoch(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, OffsetForLeaderEpochRequest);
    let apis = &req.ctx.apis;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let topic = apis.replicas.topics.get(t.topic.0.as_str());
            let describable = req.ctx.authorize(
                AclOperation::Describe,
                ResourceType::Topic,
                t.topic.0.as_str(),
            );
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if !describable {
                        return base
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(part) = topic.as_ref().and_then(|t| t.partition(p.partition)) else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    // Kafka's Partition.lastOffsetForLeaderEpoch, answered
                    // from the leader epoch cache; only a debugging client
                    // (replica id -2) may ask a follower.
                    let from_leader_only = request.replica_id.0 != DEBUGGING_REPLICA_ID;
                    match part.last_offset_for_leader_epoch(
                        p.current_leader_epoch,
                        p.leader_epoch,
                        from_leader_only,
                    ) {
                        Ok(Some((epoch, end))) => {
                            base.with_leader_epoch(epoch).with_end_offset(end)
                        }
                        Ok(None) => base,
                        Err(code) => base.with_error_code(code.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    req.respond(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}

// ---------------------------------------------------------------------------
// ElectLeaders
// ---------------------------------------------------------------------------

/// ElectLeaders refused as a whole: `code` at the top and for every
/// requested partition (Kafka's `ElectLeadersRequest.getErrorResponse`).
fn elect_refused(
    request: &ElectLeadersRequest,
    code: ResponseError,
    msg: Option<String>,
) -> ElectLeadersResponse {
    let results = request
        .topic_partitions
        .iter()
        .flatten()
        .map(|tp| {
            ReplicaElectionResult::default()
                .with_topic(tp.topic.clone())
                .with_partition_result(
                    tp.partitions
                        .iter()
                        .map(|&p| {
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(code.code())
                                .with_error_message(msg.clone().map(sb))
                        })
                        .collect(),
                )
        })
        .collect();
    ElectLeadersResponse::default()
        .with_error_code(code.code())
        .with_replica_election_results(results)
}

/// A cluster broker's ElectLeaders: authorized here, decided by the active
/// controller (`controller::elect_leaders`). Always sent as v2: v0 differs
/// only in having no election type (PREFERRED) and no top-level error,
/// which the broker needs to tell a NOT_CONTROLLER answer.
pub fn forward_elect_leaders(req: Request, body: Bytes) -> Pending {
    let request = match crate::handlers::decode::<ElectLeadersRequest>(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        let msg = cluster_refused(&req);
        let resp = elect_refused(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            Some(msg),
        );
        return ready(req.respond(&resp));
    }
    forward_and_respond(
        req,
        request,
        ELECT_LEADERS_FORWARD_VERSION,
        |r| r.error_code == ResponseError::NotController.code(),
        |request| elect_refused(request, ResponseError::RequestTimedOut, None),
    )
}

/// The ElectLeaders version a cluster broker sends on.
const ELECT_LEADERS_FORWARD_VERSION: i16 = 2;

pub fn elect_leaders(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, ElectLeadersRequest);
    let apis = &req.ctx.apis;
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        let msg = cluster_refused(req);
        let resp = elect_refused(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            Some(msg),
        );
        return req.respond(&resp);
    }
    // 0 = preferred, 1 = unclean; anything else fails the whole request.
    let bad_type = !(0..=1).contains(&request.election_type);
    let mut results = Vec::new();
    let mut top_error = 0;
    match &request.topic_partitions {
        None if !bad_type => {
            // Kafka leaves out partitions whose election is not needed, which
            // with one broker is all of them.
            let mut all = apis.replicas.topics.list();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            for t in all {
                results.push(ReplicaElectionResult::default().with_topic(tn(&t.name)));
            }
        }
        None => top_error = ResponseError::InvalidRequest.code(),
        Some(list) => {
            for tp in list {
                let topic = apis.replicas.topics.get(tp.topic.0.as_str());
                let partition_result = tp
                    .partitions
                    .iter()
                    .map(|&p| {
                        let r = PartitionResult::default().with_partition_id(p);
                        if bad_type {
                            return r
                                .with_error_code(ResponseError::InvalidRequest.code())
                                .with_error_message(Some(sb(format!(
                                    "Unknown election type {}",
                                    request.election_type
                                ))));
                        }
                        match &topic {
                            None => r
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                                .with_error_message(Some(sb(format!(
                                    "No such topic as {}",
                                    tp.topic.0.as_str()
                                )))),
                            Some(t) if t.partition(p).is_none() => r
                                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                                .with_error_message(Some(sb(format!(
                                    "No such partition as {}-{p}",
                                    t.name
                                )))),
                            // The only replica is the preferred replica and
                            // already leads.
                            Some(_) => r
                                .with_error_code(ResponseError::ElectionNotNeeded.code())
                                .with_error_message(Some(sb(
                                    "Leader election not needed for topic partition.",
                                ))),
                        }
                    })
                    .collect();
                results.push(
                    ReplicaElectionResult::default()
                        .with_topic(tp.topic.clone())
                        .with_partition_result(partition_result),
                );
            }
            if bad_type {
                top_error = ResponseError::InvalidRequest.code();
            }
        }
    }
    req.respond(
        &ElectLeadersResponse::default()
            .with_error_code(top_error)
            .with_replica_election_results(results),
    )
}

// ---------------------------------------------------------------------------
// Client quotas (stored by `broker::quotas`, enforced by `broker::quota_managers`)
// ---------------------------------------------------------------------------

pub fn alter_client_quotas(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, AlterClientQuotasRequest);
    let entries = crate::broker::quotas::entries_of(&request);
    if !req.ctx.authorize_cluster(AclOperation::AlterConfigs) {
        // Every entry refused, nothing changed.
        let resp = alter_quotas_failed(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            Some(cluster_refused(req)),
        );
        return req.respond(&resp);
    }
    let (outcomes, persisted) = req.ctx.apis.quotas.alter(entries, request.validate_only);
    let persist_error = persisted.err().inspect(|e| {
        tracing::error!(error = %e, "client quotas not persisted");
    });
    let entries = request
        .entries
        .into_iter()
        .zip(outcomes)
        .map(|(e, outcome)| {
            let entity = e
                .entity
                .into_iter()
                .map(|d| {
                    alter_client_quotas_response::EntityData::default()
                        .with_entity_type(d.entity_type)
                        .with_entity_name(d.entity_name)
                })
                .collect();
            let r = alter_client_quotas_response::EntryData::default()
                .with_entity(entity)
                .with_error_message(None);
            match (&outcome, &persist_error) {
                (Err(m), _) => r
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(sb(m.clone()))),
                (Ok(()), Some(m)) => r
                    .with_error_code(ResponseError::KafkaStorageError.code())
                    .with_error_message(Some(sb(m.clone()))),
                (Ok(()), None) => r,
            }
        })
        .collect();
    req.respond(&AlterClientQuotasResponse::default().with_entries(entries))
}

/// Every entry of an AlterClientQuotas failed with `code`, nothing changed.
pub(crate) fn alter_quotas_failed(
    request: &AlterClientQuotasRequest,
    code: ResponseError,
    message: Option<String>,
) -> AlterClientQuotasResponse {
    let entries = request
        .entries
        .iter()
        .map(|e| {
            alter_client_quotas_response::EntryData::default()
                .with_entity(
                    e.entity
                        .iter()
                        .map(|d| {
                            alter_client_quotas_response::EntityData::default()
                                .with_entity_type(d.entity_type.clone())
                                .with_entity_name(d.entity_name.clone())
                        })
                        .collect(),
                )
                .with_error_code(code.code())
                .with_error_message(message.clone().map(sb))
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

pub fn describe_client_quotas(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DescribeClientQuotasRequest);
    if !req.ctx.authorize_cluster(AclOperation::DescribeConfigs) {
        return req.respond(
            &DescribeClientQuotasResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(None)
                .with_entries(None),
        );
    }
    let components = request.components.iter().map(|c| FilterComponent {
        entity_type: c.entity_type.to_string(),
        match_type: c.match_type,
        matched: c._match.as_ref().map(|m| m.to_string()),
    });
    let resp = match parse_filter(components) {
        Ok(filter) => {
            let entries = req
                .ctx
                .apis
                .quotas
                .describe(&filter, request.strict)
                .into_iter()
                .map(|(entity, values)| {
                    describe_client_quotas_response::EntryData::default()
                        .with_entity(
                            entity
                                .into_iter()
                                .map(|(t, n)| {
                                    describe_client_quotas_response::EntityData::default()
                                        .with_entity_type(sb(t))
                                        .with_entity_name(n.map(sb))
                                })
                                .collect(),
                        )
                        .with_values(
                            values
                                .into_iter()
                                .map(|(k, v)| {
                                    describe_client_quotas_response::ValueData::default()
                                        .with_key(sb(k))
                                        .with_value(v)
                                })
                                .collect(),
                        )
                })
                .collect();
            DescribeClientQuotasResponse::default().with_entries(Some(entries))
        }
        Err((code, msg)) => DescribeClientQuotasResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(sb(msg)))
            .with_entries(None),
    };
    req.respond(&resp)
}

// ---------------------------------------------------------------------------
// ListConfigResources
// ---------------------------------------------------------------------------

/// Kafka's ConfigResource type codes, in the order Kafka lists them.
mod resource_type {
    pub const GROUP: i8 = 32;
    pub const CLIENT_METRICS: i8 = 16;
    pub const BROKER_LOGGER: i8 = 8;
    pub const BROKER: i8 = 4;
    pub const TOPIC: i8 = 2;
    pub const LISTED: [i8; 5] = [GROUP, CLIENT_METRICS, BROKER_LOGGER, BROKER, TOPIC];
}

/// The resources that have configs (KIP-1142): v1 by type (none asked: all
/// types), v0 (KIP-714's ListClientMetricsResources) the client-metrics
/// subscriptions. kastle has no client-metrics subscriptions (KIP-714), so
/// it lists the groups that have configs, the broker, its loggers and every
/// topic.
pub fn list_config_resources(req: &Request, body: Bytes) -> Reply {
    use resource_type::*;
    let request = decode_or_close!(req, body, ListConfigResourcesRequest);
    let apis = &req.ctx.apis;
    let types: Vec<i8> = if req.version() == 0 {
        vec![CLIENT_METRICS]
    } else if request.resource_types.is_empty() {
        LISTED.to_vec()
    } else {
        request.resource_types.clone()
    };
    // Kafka refuses a type it cannot list with UNSUPPORTED_VERSION.
    if types.iter().any(|t| !LISTED.contains(t)) {
        return req.respond(
            &ListConfigResourcesResponse::default()
                .with_error_code(ResponseError::UnsupportedVersion.code()),
        );
    }
    if !req.ctx.authorize_cluster(AclOperation::DescribeConfigs) {
        return req.respond(
            &ListConfigResourcesResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    let node = apis.config.node_id.to_string();
    let mut resources = Vec::new();
    for t in LISTED.iter().filter(|t| types.contains(t)) {
        let resource = |name: &str| {
            ConfigResource::default()
                .with_resource_name(sb(name))
                .with_resource_type(*t)
        };
        match *t {
            GROUP => resources.extend(apis.group_configs.group_ids().iter().map(|n| resource(n))),
            BROKER_LOGGER | BROKER => resources.push(resource(&node)),
            TOPIC => {
                let mut names: Vec<String> = apis
                    .replicas
                    .topics
                    .list()
                    .iter()
                    .map(|t| t.name.clone())
                    .collect();
                names.sort();
                resources.extend(names.iter().map(|n| resource(n)));
            }
            _ => {}
        }
    }
    req.respond(&ListConfigResourcesResponse::default().with_config_resources(resources))
}
