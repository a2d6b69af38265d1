//! The KIP-1071 streams group APIs: StreamsGroupHeartbeat (88) and
//! StreamsGroupDescribe (89), versions 0-1, with Kafka's checks
//! (`KafkaApis`): the `streams.version` feature, GROUP READ/DESCRIBE, no
//! Kafka-internal or invalid topic in a topology, TOPIC DESCRIBE on every
//! topic it names, and CREATE (on the cluster or each topic) before the
//! broker creates the internal topics the coordinator asks for. And
//! KIP-1331's StreamsGroupTopologyDescriptionUpdate (93), answered as a
//! Kafka 4.4 broker without `group.streams.topology.description.plugin.class`
//! answers it: the feature is off, so no member is ever asked for its
//! description and describe reports none stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::topics::{is_internal_topic, validate_topic_name};
use crate::coordinator::group::streams::topology::InternalTopic;
use crate::coordinator::group::streams::{
    task_ids, HeartbeatContext, StreamsHeartbeatOutcome, NUM_STANDBY_REPLICAS,
};
use crate::coordinator::group::writer::DurableWait;
use crate::handlers::consumer_group::BrokerTopics;
use crate::handlers::{ready, KafkaApis, Pending, Reply, Request};
use crate::protocol::response::Written;
use crate::protocol::streams::{
    description_status, status, DescribedAssignment, DescribedGroup, DescribedMember,
    DescribedSubtopology, DescribedTopology, Status, StreamsGroupDescribeRequest,
    StreamsGroupDescribeResponse, StreamsGroupHeartbeatRequest, StreamsGroupHeartbeatResponse,
    StreamsGroupTopologyDescriptionUpdateRequest, StreamsGroupTopologyDescriptionUpdateResponse,
    TaskOffset,
};
use crate::security::acl::{AclOperation, ResourceType};
use crate::util::now_ms;

/// What every client may do to a group without an authorizer (as
/// DescribeGroups reports it).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
const OPS_NOT_REQUESTED: i32 = i32::MIN;
/// Kafka's defaults for the heartbeat's `AcceptableRecoveryLag` and
/// `TaskOffsetIntervalMs` (the internal broker keys
/// `group.streams.acceptable.recovery.lag`,
/// `group.streams.task.offset.interval.ms`); kastle assigns no warm-up
/// tasks, the client uses the lag for its own offset reports.
const ACCEPTABLE_RECOVERY_LAG: i64 = 10_000;
const TASK_OFFSET_INTERVAL_MS: i32 = 60_000;
/// Kafka 4.4's only task assignor (`StickyTaskAssignor`), the default of
/// `group.streams.assignors`.
const STICKY_ASSIGNOR: &str = "sticky";
/// Kafka's answer to StreamsGroupTopologyDescriptionUpdate without a
/// description plugin (`GroupCoordinatorService`).
const NO_DESCRIPTION_PLUGIN: &str =
    "The broker has no streams group topology description plugin configured.";

fn streams_enabled(apis: &KafkaApis) -> bool {
    apis.finalized_features()
        .level(crate::protocol::versions::STREAMS_VERSION)
        >= 1
}

fn respond(req: &Request, body: Vec<u8>) -> Reply {
    req.respond(&Written::<1>(body))
}

fn error_response(req: &Request, e: ResponseError, message: Option<String>) -> Reply {
    let r = StreamsGroupHeartbeatResponse {
        error_code: e.code(),
        error_message: message,
        ..StreamsGroupHeartbeatResponse::default()
    };
    respond(req, r.write(req.header.api_version))
}

/// The group's `streams.acceptable.recovery.lag` and
/// `streams.task.offset.interval.ms` (its GROUP configs), else the
/// broker's (internal) defaults.
fn recovery_lag_and_offset_interval(apis: &KafkaApis, group: &str) -> (i64, i32) {
    let configs = apis.group_configs.group_configs(group);
    let broker = |k: &str| {
        crate::broker::group_config::broker_value(&apis.config, k)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let lag = configs
        .get("streams.acceptable.recovery.lag")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or_else(|| broker("group.streams.acceptable.recovery.lag"))
        .unwrap_or(ACCEPTABLE_RECOVERY_LAG);
    let interval = configs
        .get("streams.task.offset.interval.ms")
        .and_then(|v| v.trim().parse::<i32>().ok())
        .or_else(|| {
            broker("group.streams.task.offset.interval.ms").and_then(|v| i32::try_from(v).ok())
        })
        .unwrap_or(TASK_OFFSET_INTERVAL_MS);
    (lag, interval)
}

/// The assignor the group's next assignment uses (Kafka's
/// `streamsGroupAssignor(groupId).name()`): the group's
/// `streams.assignor.name` if the broker registers it
/// (`group.streams.assignors`), else the default, sticky.
fn assignor_name(apis: &KafkaApis, group: &str) -> String {
    let configured = apis
        .group_configs
        .group_configs(group)
        .get("streams.assignor.name")
        .map(|v| v.trim().to_string());
    let registered = apis.config.string("group.streams.assignors");
    match configured {
        Some(name) if registered.split(',').any(|r| r.trim() == name) => name,
        _ => STICKY_ASSIGNOR.to_string(),
    }
}

/// The group's `streams.session.timeout.ms` / `streams.heartbeat.interval.ms`
/// (its GROUP configs), else the broker's.
fn group_timeouts(apis: &KafkaApis, group: &str) -> (i32, i32) {
    let configs = apis.group_configs.group_configs(group);
    let broker = |k: &str, d: i64| {
        i32::try_from(apis.config.int(k)).unwrap_or(i32::try_from(d).unwrap_or(i32::MAX))
    };
    let get = |k: &str, d: i32| {
        configs
            .get(k)
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(d)
    };
    (
        get(
            "streams.session.timeout.ms",
            broker("group.streams.session.timeout.ms", 45_000),
        ),
        get(
            "streams.heartbeat.interval.ms",
            broker("group.streams.heartbeat.interval.ms", 5_000),
        ),
    )
}

/// Kafka 4.4's assignment configurations of a streams group
/// (`streamsGroupAssignmentConfigs`): `num.standby.replicas` from the
/// group's `streams.num.standby.replicas`, else the broker's
/// `group.streams.num.standby.replicas`; `rack.aware.assignment.tags` from
/// the group's `streams.rack.aware.assignment.tags`, else the broker's,
/// when not empty.
fn assignment_configs(apis: &KafkaApis, group: &str) -> BTreeMap<String, String> {
    let configs = apis.group_configs.group_configs(group);
    let standbys = configs
        .get("streams.num.standby.replicas")
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or_else(|| {
            i32::try_from(apis.config.int("group.streams.num.standby.replicas")).unwrap_or(0)
        });
    let mut out = BTreeMap::from([(NUM_STANDBY_REPLICAS.to_string(), standbys.to_string())]);
    let tags = configs
        .get("streams.rack.aware.assignment.tags")
        .cloned()
        .unwrap_or_else(|| {
            apis.config
                .string("group.streams.rack.aware.assignment.tags")
                .to_string()
        });
    let tags: Vec<&str> = tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if !tags.is_empty() {
        out.insert("rack.aware.assignment.tags".to_string(), tags.join(","));
    }
    out
}

/// The group's `streams.initial.rebalance.delay.ms`, else the broker's
/// `group.streams.initial.rebalance.delay.ms` (Kafka's
/// `streamsGroupInitialRebalanceDelayMs`).
fn initial_rebalance_delay_ms(apis: &KafkaApis, group: &str) -> i32 {
    apis.group_configs
        .group_configs(group)
        .get("streams.initial.rebalance.delay.ms")
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or_else(|| {
            i32::try_from(apis.config.int("group.streams.initial.rebalance.delay.ms"))
                .unwrap_or(i32::MAX)
        })
}

/// Creates the internal topics a heartbeat asked for: in place on a
/// standalone broker, through the active controller in a cluster (in the
/// background, as Kafka's `createStreamsInternalTopics`).
fn create_internal_topics(apis: &Arc<KafkaApis>, topics: &[InternalTopic]) {
    if apis.cluster.is_some() {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(i32::try_from(apis.config.int("request.timeout.ms")).unwrap_or(30_000))
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let config = apis.config.clone();
        tokio::spawn(async move {
            let resp =
                crate::handlers::forwarding::forward_create_topics(&config, None, &request, 7)
                    .await;
            for t in &resp.topics {
                if t.error_code != 0 && t.error_code != ResponseError::TopicAlreadyExists.code() {
                    tracing::warn!(topic = %t.name.0, error_code = t.error_code, "creating a streams internal topic failed");
                }
            }
        });
        return;
    }
    for t in topics {
        let rf = if t.replication_factor < 1 {
            i16::try_from(
                apis.config
                    .default_replication_factor
                    .clamp(1, i32::from(i16::MAX)),
            )
            .unwrap_or(1)
        } else {
            t.replication_factor
        };
        let configs: BTreeMap<String, String> = t.configs.iter().cloned().collect();
        match apis
            .replicas
            .create_topic(&t.name, t.partitions, rf, configs)
        {
            Ok(_) => {
                tracing::info!(topic = %t.name, partitions = t.partitions, "created streams internal topic")
            }
            Err(e) if e.code == ResponseError::TopicAlreadyExists => {}
            Err(e) => {
                tracing::warn!(topic = %t.name, error = %e.message, "creating a streams internal topic failed")
            }
        }
    }
}

/// StreamsGroupHeartbeat; an answer that depends on the group's records
/// waits for their write (Kafka's coordinator answers once it is
/// committed).
pub fn streams_group_heartbeat(req: Request, body: Bytes) -> Pending {
    match heartbeat(&req, body) {
        Ok(reply) => ready(reply),
        Err(waiting) => Box::pin(async move {
            let (wait, response) = *waiting;
            let timeout = req.ctx.apis.groups.config.commit_timeout_ms;
            let response = match wait.wait(timeout).await {
                Ok(()) => response,
                Err(code) => StreamsGroupHeartbeatResponse {
                    error_code: code,
                    ..StreamsGroupHeartbeatResponse::default()
                },
            };
            respond(&req, response.write(req.header.api_version))
        }),
    }
}

/// The heartbeat up to its answer: Ok(the reply), or Err(the write to wait
/// for, the answer after it).
fn heartbeat(
    req: &Request,
    body: Bytes,
) -> Result<Reply, Box<(DurableWait, StreamsGroupHeartbeatResponse)>> {
    let r = match crate::handlers::decode_own(req, &body, StreamsGroupHeartbeatRequest::decode) {
        Ok(r) => r,
        Err(reply) => return Ok(reply),
    };
    let apis = &req.ctx.apis;
    if !streams_enabled(apis) {
        return Ok(error_response(req, ResponseError::UnsupportedVersion, None));
    }
    if !req
        .ctx
        .authorize(AclOperation::Read, ResourceType::Group, &r.group_id)
    {
        return Ok(error_response(
            req,
            ResponseError::GroupAuthorizationFailed,
            None,
        ));
    }
    if let Some(t) = &r.topology {
        let mut required: Vec<&str> = Vec::new();
        for s in &t.subtopologies {
            required.extend(s.source_topics.iter().map(String::as_str));
            required.extend(s.repartition_sink_topics.iter().map(String::as_str));
            required.extend(s.repartition_source_topics.iter().map(|x| x.name.as_str()));
            required.extend(s.state_changelog_topics.iter().map(|x| x.name.as_str()));
        }
        let mut seen = std::collections::BTreeSet::new();
        required.retain(|t| seen.insert(*t));
        let prohibited: Vec<&str> = required
            .iter()
            .copied()
            .filter(|t| is_internal_topic(t))
            .collect();
        if !prohibited.is_empty() {
            return Ok(error_response(
                req,
                ResponseError::StreamsInvalidTopology,
                Some(format!(
                    "Use of Kafka internal topics {} in a Kafka Streams topology is prohibited.",
                    prohibited.join(",")
                )),
            ));
        }
        let invalid: Vec<&str> = required
            .iter()
            .copied()
            .filter(|t| validate_topic_name(t).is_err())
            .collect();
        if !invalid.is_empty() {
            return Ok(error_response(
                req,
                ResponseError::StreamsInvalidTopology,
                Some(format!(
                    "Topic names {} are not valid topic names.",
                    invalid.join(",")
                )),
            ));
        }
        if required.iter().any(|t| {
            !req.ctx
                .authorize(AclOperation::Describe, ResourceType::Topic, t)
        }) {
            return Ok(error_response(
                req,
                ResponseError::TopicAuthorizationFailed,
                None,
            ));
        }
    }
    let (session_timeout_ms, heartbeat_interval_ms) = group_timeouts(apis, &r.group_id);
    let cx = HeartbeatContext {
        client_id: req.header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", req.ctx.peer.ip()),
        session_timeout_ms,
        heartbeat_interval_ms,
        max_size: usize::try_from(apis.config.int("group.streams.max.size")).unwrap_or(usize::MAX),
        initial_rebalance_delay_ms: initial_rebalance_delay_ms(apis, &r.group_id),
        assignment_interval_ms: super::consumer_group::assignment_interval_ms(
            apis,
            &r.group_id,
            "streams",
        ),
        assignment_configs: assignment_configs(apis, &r.group_id),
        api_version: req.header.api_version,
        now: now_ms(),
    };
    let (o, wait) = apis
        .groups
        .streams_group_heartbeat(&r, &cx, &BrokerTopics::new(apis));
    let mut status_list = o.status.clone();
    if !o.to_create.is_empty() {
        let unauthorized: Vec<&str> = if req.ctx.authorize_cluster(AclOperation::Create) {
            Vec::new()
        } else {
            o.to_create
                .iter()
                .map(|t| t.name.as_str())
                .filter(|t| {
                    !req.ctx
                        .authorize(AclOperation::Create, ResourceType::Topic, t)
                })
                .collect()
        };
        if unauthorized.is_empty() {
            create_internal_topics(apis, &o.to_create);
        } else {
            let detail = format!(
                "Unauthorized to CREATE on topics {}.",
                unauthorized.join(", ")
            );
            match status_list
                .iter_mut()
                .find(|s| s.status_code == status::MISSING_INTERNAL_TOPICS)
            {
                Some(s) => s.status_detail = format!("{}; {detail}", s.status_detail),
                None => status_list.push(Status {
                    status_code: status::MISSING_INTERNAL_TOPICS,
                    status_detail: detail,
                }),
            }
        }
    }
    let response = heartbeat_response(
        o,
        status_list,
        recovery_lag_and_offset_interval(apis, &r.group_id),
    );
    match wait {
        None => Ok(respond(req, response.write(req.header.api_version))),
        Some(wait) => Err(Box::new((wait, response))),
    }
}

/// The answer to a heartbeat. As Kafka 4.4: Status is `[]`, never null,
/// when there is none; a leave (member epoch -1 or -2) carries only the
/// member id and epoch (intervals 0, AcceptableRecoveryLag -1); the v0
/// int32 lag stays 0 (Kafka 4.4 never sets it); TopologyDescriptionRequired
/// stays false (no description plugin).
fn heartbeat_response(
    o: StreamsHeartbeatOutcome,
    status: Vec<Status>,
    (acceptable_recovery_lag, task_offset_interval_ms): (i64, i32),
) -> StreamsGroupHeartbeatResponse {
    if o.error != 0 {
        return StreamsGroupHeartbeatResponse {
            error_code: o.error,
            error_message: o.message,
            ..StreamsGroupHeartbeatResponse::default()
        };
    }
    if o.member_epoch < 0 {
        return StreamsGroupHeartbeatResponse {
            member_id: o.member_id,
            member_epoch: o.member_epoch,
            ..StreamsGroupHeartbeatResponse::default()
        };
    }
    StreamsGroupHeartbeatResponse {
        member_id: o.member_id,
        member_epoch: o.member_epoch,
        heartbeat_interval_ms: o.heartbeat_interval_ms,
        task_offset_interval_ms,
        acceptable_recovery_lag,
        status: Some(status),
        active_tasks: o.active_tasks,
        standby_tasks: o.standby_tasks,
        warmup_tasks: o.warmup_tasks,
        endpoint_information_epoch: o.endpoint_information_epoch,
        partitions_by_user_endpoint: o.partitions_by_user_endpoint,
        ..StreamsGroupHeartbeatResponse::default()
    }
}

pub fn streams_group_describe(req: &Request, body: Bytes) -> Reply {
    let version = req.header.api_version;
    let r = match crate::handlers::decode_own(req, &body, |b| {
        StreamsGroupDescribeRequest::decode(b, version)
    }) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let apis = &req.ctx.apis;
    let enabled = streams_enabled(apis);
    let topics = BrokerTopics::new(apis);
    let groups = r
        .group_ids
        .iter()
        .map(|id| {
            let base = DescribedGroup {
                group_id: id.clone(),
                authorized_operations: OPS_NOT_REQUESTED,
                ..DescribedGroup::default()
            };
            if !enabled {
                return DescribedGroup {
                    error_code: ResponseError::UnsupportedVersion.code(),
                    ..base
                };
            }
            if !req.ctx.authorize(AclOperation::Describe, ResourceType::Group, id) {
                return DescribedGroup {
                    error_code: ResponseError::GroupAuthorizationFailed.code(),
                    ..base
                };
            }
            let g = match apis.groups.streams_group_describe(id, &topics) {
                Ok(g) => g,
                Err((code, message)) => {
                    return DescribedGroup {
                        error_code: code,
                        error_message: message,
                        ..base
                    }
                }
            };
            let subtopologies = g.configured.is_ready().then(|| {
                g.subtopologies
                    .iter()
                    .map(|s| DescribedSubtopology {
                        subtopology_id: s.subtopology_id.clone(),
                        source_topics: s.source_topics.clone(),
                        repartition_sink_topics: s.repartition_sink_topics.clone(),
                        state_changelog_topics: s.state_changelog_topics.clone(),
                        repartition_source_topics: s.repartition_source_topics.clone(),
                    })
                    .collect::<Vec<_>>()
            });
            // Clients may not learn of topics they may not describe.
            let hidden = g.subtopologies.iter().any(|s| {
                s.source_topics
                    .iter()
                    .chain(s.repartition_sink_topics.iter())
                    .chain(s.repartition_source_topics.iter().map(|t| &t.name))
                    .chain(s.state_changelog_topics.iter().map(|t| &t.name))
                    .any(|t| !req.ctx.authorize(AclOperation::Describe, ResourceType::Topic, t))
            });
            if hidden {
                return DescribedGroup {
                    error_code: ResponseError::TopicAuthorizationFailed.code(),
                    error_message: Some(
                        "The described group uses topics that the client is not authorized to describe."
                            .to_string(),
                    ),
                    ..base
                };
            }
            let members = g
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    member_epoch: m.member_epoch,
                    instance_id: None,
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    topology_epoch: m.topology_epoch,
                    process_id: m.process_id.clone(),
                    user_endpoint: m.user_endpoint.clone(),
                    client_tags: m.client_tags.clone(),
                    task_offsets: task_offsets(&m.task_offsets),
                    task_end_offsets: task_offsets(&m.task_end_offsets),
                    assignment: DescribedAssignment {
                        active_tasks: task_ids(&m.assigned),
                        standby_tasks: task_ids(&m.standby),
                        warmup_tasks: Vec::new(),
                    },
                    target_assignment: g
                        .target
                        .get(&m.member_id)
                        .map(|t| DescribedAssignment {
                            active_tasks: task_ids(&t.active),
                            standby_tasks: task_ids(&t.standby),
                            warmup_tasks: Vec::new(),
                        })
                        .unwrap_or_default(),
                    is_classic: false,
                })
                .collect();
            let authorized_operations = if r.include_authorized_operations {
                req.ctx
                    .authorized_operations(ResourceType::Group, id, GROUP_OPERATIONS)
            } else {
                OPS_NOT_REQUESTED
            };
            // Without a description plugin nothing is ever stored
            // (Kafka's `attachTopologyDescriptions`): error entries keep 0.
            let topology_description_status = if r.include_topology_description {
                description_status::NOT_STORED
            } else {
                description_status::NOT_REQUESTED
            };
            DescribedGroup {
                group_state: g.state().name().to_string(),
                group_epoch: g.group_epoch,
                assignment_epoch: g.assignment_epoch,
                topology: Some(DescribedTopology {
                    epoch: g.topology_epoch,
                    subtopologies,
                }),
                members,
                authorized_operations,
                topology_description_status,
                assignor_name: Some(assignor_name(apis, id)),
                ..base
            }
        })
        .collect();
    respond(
        req,
        StreamsGroupDescribeResponse {
            throttle_time_ms: 0,
            groups,
        }
        .write(version),
    )
}

/// StreamsGroupTopologyDescriptionUpdate as Kafka 4.4 answers it without
/// a description plugin: after `KafkaApis`' checks (the feature, GROUP
/// READ; both without a message), UNSUPPORTED_VERSION with the coordinator
/// service's message, before any look at the group or member.
pub fn streams_group_topology_description_update(req: &Request, body: Bytes) -> Reply {
    let r = match crate::handlers::decode_own(
        req,
        &body,
        StreamsGroupTopologyDescriptionUpdateRequest::decode,
    ) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let answer = |e: ResponseError, message: Option<&str>| {
        respond(
            req,
            StreamsGroupTopologyDescriptionUpdateResponse {
                throttle_time_ms: 0,
                error_code: e.code(),
                error_message: message.map(str::to_string),
            }
            .write(),
        )
    };
    if !streams_enabled(&req.ctx.apis) {
        return answer(ResponseError::UnsupportedVersion, None);
    }
    if !req
        .ctx
        .authorize(AclOperation::Read, ResourceType::Group, &r.group_id)
    {
        return answer(ResponseError::GroupAuthorizationFailed, None);
    }
    answer(
        ResponseError::UnsupportedVersion,
        Some(NO_DESCRIPTION_PLUGIN),
    )
}

/// A member's reported offsets per task, as StreamsGroupDescribe lists them.
fn task_offsets(offsets: &BTreeMap<(String, i32), i64>) -> Vec<TaskOffset> {
    offsets
        .iter()
        .map(|((subtopology_id, partition), offset)| TaskOffset {
            subtopology_id: subtopology_id.clone(),
            partition: *partition,
            offset: *offset,
        })
        .collect()
}
