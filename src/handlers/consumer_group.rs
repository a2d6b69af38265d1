//! The KIP-848 consumer group APIs: ConsumerGroupHeartbeat (68) and
//! ConsumerGroupDescribe (69). Each checks the client's rights as Kafka's
//! `KafkaApis` does, calls the GroupCoordinator and encodes the answer; a
//! heartbeat that wrote records waits for them to be durable first.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions as DescribedTps,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as HeartbeatAssignment, TopicPartitions as HeartbeatTps,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::coordinator::group::consumer::heartbeat::{HeartbeatOutcome, HeartbeatParams};
use crate::coordinator::group::consumer::member::{Assignment, ConsumerGroupMember};
use crate::coordinator::group::consumer::TopicResolver;
use crate::handlers::{decode_or_close, ready, KafkaApis, Pending, Request, RequestContext};
use crate::metadata::image::MetadataImage;
use crate::security::acl::{AclOperation, ResourceType};

/// What every client may do to a group without an authorizer (as
/// DescribeGroups reports it).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
const OPS_NOT_REQUESTED: i32 = i32::MIN;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// The broker's topics as a consumer group sees them: a cluster broker's
/// metadata image, a standalone broker's own topics.
pub struct BrokerTopics<'a> {
    apis: &'a KafkaApis,
    image: Option<Arc<MetadataImage>>,
    /// The metadata offset of `image` (cluster mode).
    offset: i64,
    /// The client a regular expression's topics are authorized for.
    client: Option<&'a RequestContext>,
}

impl<'a> BrokerTopics<'a> {
    pub fn new(apis: &'a KafkaApis) -> BrokerTopics<'a> {
        // The offset first: the image read after it is at least as new.
        let offset = apis.cluster.as_ref().map_or(-1, |c| c.offset());
        BrokerTopics {
            apis,
            image: apis.cluster.as_ref().map(|c| c.image()),
            offset,
            client: None,
        }
    }

    /// The topics as `ctx`'s client may see them.
    pub fn for_client(ctx: &'a RequestContext) -> BrokerTopics<'a> {
        BrokerTopics {
            client: Some(ctx),
            ..BrokerTopics::new(&ctx.apis)
        }
    }
}

impl TopicResolver for BrokerTopics<'_> {
    fn by_name(&self, name: &str) -> Option<(Uuid, i32)> {
        match &self.image {
            Some(i) => i
                .topic_by_name(name)
                .map(|t| (t.id, i32::try_from(t.partitions.len()).unwrap_or(i32::MAX))),
            None => self
                .apis
                .replicas
                .topics
                .get(name)
                .map(|t| (t.id, i32::try_from(t.partitions.len()).unwrap_or(i32::MAX))),
        }
    }

    fn name_of(&self, id: &Uuid) -> Option<String> {
        match &self.image {
            Some(i) => i.topics.get(id).map(|t| t.name.clone()),
            None => self
                .apis
                .replicas
                .topics
                .get_by_id(id)
                .map(|t| t.name.clone()),
        }
    }

    fn topic_names(&self) -> Vec<String> {
        match &self.image {
            Some(i) => i.topic_ids.keys().cloned().collect(),
            None => self
                .apis
                .replicas
                .topics
                .list()
                .iter()
                .map(|t| t.name.clone())
                .collect(),
        }
    }

    fn topics_version(&self) -> i64 {
        match &self.image {
            Some(_) => self.offset,
            None => self.apis.replicas.topics.created_version(),
        }
    }

    fn may_describe(&self, topic: &str) -> bool {
        self.client
            .is_none_or(|c| c.authorize(AclOperation::Describe, ResourceType::Topic, topic))
    }
}

/// The group's `consumer.session.timeout.ms` / `consumer.heartbeat.interval.ms`
/// (its GROUP configs), else the broker's.
fn group_timeouts(apis: &KafkaApis, group: &str) -> (i32, i32) {
    let configs = apis.group_configs.group_configs(group);
    let c = &apis.groups.config;
    let get = |k: &str, d: i32| {
        configs
            .get(k)
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(d)
    };
    (
        get("consumer.session.timeout.ms", c.consumer_session_timeout_ms),
        get(
            "consumer.heartbeat.interval.ms",
            c.consumer_heartbeat_interval_ms,
        ),
    )
}

/// A `group_type` group's (`consumer`, `streams`) KIP-1251 assignment
/// interval: its group config `<type>.assignment.interval.ms`, else the
/// broker's dynamic `group.<type>.assignment.interval.ms`, clamped to
/// `group.<type>.{min,max}.assignment.interval.ms` (Kafka's
/// `consumerGroupAssignmentIntervalMs`/`streamsGroupAssignmentIntervalMs`
/// and their dynamic-config clamping).
pub(crate) fn assignment_interval_ms(apis: &KafkaApis, group: &str, group_type: &str) -> i32 {
    let broker = apis.replicas.current_config();
    let bound = |k: &str| i32::try_from(broker.int(k)).unwrap_or(i32::MAX);
    let (min, max) = (
        bound(&format!("group.{group_type}.min.assignment.interval.ms")),
        bound(&format!("group.{group_type}.max.assignment.interval.ms")),
    );
    let interval = apis
        .group_configs
        .group_configs(group)
        .get(&format!("{group_type}.assignment.interval.ms"))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or_else(|| bound(&format!("group.{group_type}.assignment.interval.ms")));
    interval.clamp(min, max.max(min))
}

fn heartbeat_response(o: HeartbeatOutcome) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(o.error)
        .with_error_message(o.message.map(s))
        .with_member_id(o.member_id.map(s))
        .with_member_epoch(o.member_epoch)
        .with_heartbeat_interval_ms(o.heartbeat_interval_ms)
        .with_assignment(o.assignment.map(|a| {
            HeartbeatAssignment::default().with_topic_partitions(
                a.into_iter()
                    .map(|(t, ps)| {
                        HeartbeatTps::default()
                            .with_topic_id(t)
                            .with_partitions(ps.into_iter().collect())
                    })
                    .collect(),
            )
        }))
}

pub fn consumer_group_heartbeat(req: Request, body: Bytes) -> Pending {
    let r: ConsumerGroupHeartbeatRequest = match crate::handlers::decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    let apis = req.ctx.apis.clone();
    let group = r.group_id.0.to_string();
    if !apis.finalized_features().consumer_protocol_enabled() {
        // group.version 0: Kafka's `isConsumerGroupProtocolEnabled`.
        let o = HeartbeatOutcome::error((ResponseError::UnsupportedVersion.code(), None));
        return ready(req.respond(&heartbeat_response(o)));
    }
    if !req
        .ctx
        .authorize(AclOperation::Read, ResourceType::Group, &group)
    {
        let o = HeartbeatOutcome::error((ResponseError::GroupAuthorizationFailed.code(), None));
        return ready(req.respond(&heartbeat_response(o)));
    }
    if let Some(names) = &r.subscribed_topic_names {
        // Clients may not learn of topics they may not describe.
        if names.iter().any(|t| {
            !req.ctx
                .authorize(AclOperation::Describe, ResourceType::Topic, &t.0)
        }) {
            let o = HeartbeatOutcome::error((ResponseError::TopicAuthorizationFailed.code(), None));
            return ready(req.respond(&heartbeat_response(o)));
        }
    }
    let (session_timeout_ms, heartbeat_interval_ms) = group_timeouts(&apis, &group);
    let assignment_interval_ms = assignment_interval_ms(&apis, &group, "consumer");
    let params = HeartbeatParams {
        api_version: req.version(),
        group_id: group,
        member_id: r.member_id.to_string(),
        member_epoch: r.member_epoch,
        instance_id: r.instance_id.map(|i| i.to_string()),
        rack_id: r.rack_id.map(|i| i.to_string()),
        rebalance_timeout_ms: r.rebalance_timeout_ms,
        subscribed_topic_names: r
            .subscribed_topic_names
            .map(|ns| ns.into_iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: r.subscribed_topic_regex.map(|x| x.to_string()),
        server_assignor: r.server_assignor.map(|x| x.to_string()),
        owned: r.topic_partitions.map(|tps| {
            tps.into_iter()
                .map(|tp| (tp.topic_id, tp.partitions))
                .collect()
        }),
        client_id: req.header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", req.ctx.peer.ip()),
        session_timeout_ms,
        heartbeat_interval_ms,
        assignment_interval_ms,
    };
    let mut o = apis
        .groups
        .consumer_group_heartbeat(params, &BrokerTopics::for_client(&req.ctx));
    let Some(wait) = o.wait.take() else {
        return ready(req.respond(&heartbeat_response(o)));
    };
    Box::pin(async move {
        if let Err(code) = wait.wait(apis.groups.config.commit_timeout_ms).await {
            o = HeartbeatOutcome::error((code, None));
        }
        req.respond(&heartbeat_response(o))
    })
}

/// A member's assigned partitions with those pending revocation.
fn owned_now(m: &ConsumerGroupMember) -> Assignment {
    let mut a = m.assigned_partitions.clone();
    for (t, ps) in &m.partitions_pending_revocation {
        a.entry(*t).or_default().extend(ps.iter().copied());
    }
    a
}

fn described(a: &Assignment, topics: &BrokerTopics<'_>) -> DescribedAssignment {
    DescribedAssignment::default().with_topic_partitions(
        a.iter()
            .map(|(t, ps)| {
                DescribedTps::default()
                    .with_topic_id(*t)
                    .with_topic_name(TopicName(s(topics.name_of(t).unwrap_or_default())))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub fn consumer_group_describe(req: &Request, body: Bytes) -> crate::handlers::Reply {
    let r = decode_or_close!(req, body, ConsumerGroupDescribeRequest);
    let apis = &req.ctx.apis;
    let topics = BrokerTopics::new(apis);
    let enabled = apis.finalized_features().consumer_protocol_enabled();
    let groups = r
        .group_ids
        .iter()
        .map(|id| {
            let base = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(OPS_NOT_REQUESTED);
            if !enabled {
                return base.with_error_code(ResponseError::UnsupportedVersion.code());
            }
            if !req.ctx.authorize(AclOperation::Describe, ResourceType::Group, &id.0) {
                return base.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let d = match apis.groups.consumer_group_describe(&id.0) {
                Ok(d) => d,
                Err((code, message)) => {
                    return base.with_error_code(code).with_error_message(message.map(s))
                }
            };
            let members: Vec<Member> = d
                .members
                .iter()
                .map(|(m, target)| {
                    Member::default()
                        .with_member_id(s(m.member_id.clone()))
                        .with_instance_id(m.instance_id.clone().map(s))
                        .with_rack_id(m.rack_id.clone().map(s))
                        .with_member_epoch(m.member_epoch)
                        .with_client_id(s(m.client_id.clone()))
                        .with_client_host(s(m.client_host.clone()))
                        .with_subscribed_topic_names(
                            m.subscribed_topic_names
                                .iter()
                                .map(|n| TopicName(s(n.clone())))
                                .collect(),
                        )
                        // Kafka's member keeps "" for no regex (its
                        // builder's default), and describes that
                        .with_subscribed_topic_regex(Some(s(m
                            .subscribed_topic_regex
                            .clone()
                            .unwrap_or_default())))
                        // what the member owns: its assigned partitions and
                        // those it has yet to revoke (Kafka's
                        // asConsumerGroupDescribeMember)
                        .with_assignment(described(&owned_now(m), &topics))
                        .with_target_assignment(described(target, &topics))
                        // Kafka's MemberType: 0 classic protocol, 1 consumer.
                        .with_member_type(if m.uses_classic_protocol() { 0 } else { 1 })
                })
                .collect();
            // Clients may not learn of topics they may not describe.
            let hidden = members.iter().any(|m| {
                m.assignment
                    .topic_partitions
                    .iter()
                    .chain(m.target_assignment.topic_partitions.iter())
                    .any(|tp| {
                        !req.ctx
                            .authorize(AclOperation::Describe, ResourceType::Topic, &tp.topic_name.0)
                    })
            });
            if hidden {
                return base
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(s(
                        "The group has described topic(s) that the client is not authorized to describe.",
                    )));
            }
            let ops = if r.include_authorized_operations {
                req.ctx
                    .authorized_operations(ResourceType::Group, &id.0, GROUP_OPERATIONS)
            } else {
                OPS_NOT_REQUESTED
            };
            base.with_group_state(s(d.state.name()))
                .with_group_epoch(d.group_epoch)
                .with_assignment_epoch(d.assignment_epoch)
                .with_assignor_name(s(d.assignor))
                .with_members(members)
                .with_authorized_operations(ops)
        })
        .collect();
    req.respond(&ConsumerGroupDescribeResponse::default().with_groups(groups))
}
