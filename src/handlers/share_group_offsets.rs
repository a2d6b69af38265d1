//! The KIP-932 share-group offset admin APIs (`kafka-share-groups.sh
//! --describe/--reset-offsets/--delete-offsets`):
//! DescribeShareGroupOffsets (90, versions 0-1 with KIP-1226's lag, kastle's
//! own codec), AlterShareGroupOffsets (91) and
//! DeleteShareGroupOffsets (92), with Kafka's authorization (GROUP
//! DESCRIBE, READ or DELETE; TOPIC DESCRIBE or READ) and error codes. The
//! start offsets are the share coordinator's (`__share_group_state`);
//! altering or deleting them needs an empty group (NON_EMPTY_GROUP) and
//! drops the share partitions' in-memory state so the next fetch starts
//! from what was written.
//!
//! A share group's membership is in memory only: after a restart a group
//! id with persisted share state counts as an existing, empty share group.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::share::partition::delivery_complete_count;
use crate::broker::share::TopicIdPartition;
use crate::coordinator::group::writer::{map_append_error, DurableWait};
use crate::handlers::share_group::share_enabled;
use crate::handlers::share_state::ensure_share_state_topic;
use crate::handlers::{ready, KafkaApis, Pending, Request};
use crate::protocol::response::Written;
use crate::protocol::share_group_offsets::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, ResponseGroup,
    ResponsePartition, ResponseTopic, UNKNOWN_LAG,
};
use crate::security::acl::{AclOperation, ResourceType};

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Kafka's `PartitionFactory`: no start offset yet, and its leader epoch.
const UNINITIALIZED_START_OFFSET: i64 = -1;
const DEFAULT_LEADER_EPOCH: i32 = 0;

/// What DescribeShareGroupOffsets reports of one share partition with
/// state (Kafka's `PartitionStateSummaryData`).
#[derive(Clone, Copy)]
struct Summary {
    start_offset: i64,
    leader_epoch: i32,
    /// KIP-1226's delivery-complete count.
    delivery_complete: i32,
}

/// Each share partition of `group` with state: the share coordinator's on
/// a standalone broker, the share partitions' in memory in a cluster.
fn group_offsets(apis: &KafkaApis, group: &str) -> BTreeMap<TopicIdPartition, Summary> {
    if apis.cluster.is_none() {
        apis.share_state
            .group_states(group)
            .into_iter()
            .map(|(tp, st)| {
                let s = Summary {
                    start_offset: st.start_offset,
                    leader_epoch: st.leader_epoch,
                    delivery_complete: delivery_complete_count(&st.batches, st.start_offset),
                };
                (tp, s)
            })
            .collect()
    } else {
        apis.share
            .group_start_offsets(group)
            .into_iter()
            .map(|(tp, (start_offset, delivery_complete))| {
                let s = Summary {
                    start_offset,
                    leader_epoch: DEFAULT_LEADER_EPOCH,
                    delivery_complete,
                };
                (tp, s)
            })
            .collect()
    }
}

/// Kafka 4.4's share-partition lag (`GroupCoordinatorService`'s
/// `computeShareGroupLagAndBuildResponse`): the partition's latest offset
/// (ListOffsets LATEST, read_uncommitted: the high watermark) minus the
/// start offset minus the records at or above it whose delivery is
/// complete; unknown (-1) without a start offset, or when this broker does
/// not have the partition.
fn lag(apis: &KafkaApis, tp: &TopicIdPartition, s: &Summary) -> i64 {
    if s.start_offset == UNINITIALIZED_START_OFFSET || s.delivery_complete < 0 {
        return UNKNOWN_LAG;
    }
    let Some(p) = apis
        .replicas
        .topics
        .get_by_id(&tp.0)
        .and_then(|t| t.partition(tp.1).cloned())
    else {
        return UNKNOWN_LAG;
    };
    p.state()
        .high_watermark
        .saturating_sub(s.start_offset)
        .saturating_sub(i64::from(s.delivery_complete))
}

/// Whether `group` may have its offsets altered (`create`: Kafka 4.4 then
/// creates an absent share group) or deleted: Err(code, message) when it is
/// no share group or has members.
pub(crate) fn check_empty_share_group(
    apis: &KafkaApis,
    group: &str,
    create: bool,
) -> Result<(), (i16, Option<String>)> {
    let found = if create {
        apis.groups.share_group_for_offsets_alter(group)
    } else {
        apis.groups.share_group_describe(group)
    };
    match found {
        Ok(g) if g.members.is_empty() => Ok(()),
        Ok(_) => Err((
            ResponseError::NonEmptyGroup.code(),
            Some(kafka_message(ResponseError::NonEmptyGroup).to_string()),
        )),
        Err((code, message)) => {
            let not_found = code == ResponseError::GroupIdNotFound.code();
            if not_found && !group_offsets(apis, group).is_empty() {
                // Its members are gone with a restart; its state is not.
                return Ok(());
            }
            Err((code, message))
        }
    }
}

pub fn describe_share_group_offsets(req: &Request, body: Bytes) -> crate::handlers::Reply {
    let r = match crate::handlers::decode_own(req, &body, DescribeShareGroupOffsetsRequest::decode)
    {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let apis = &req.ctx.apis;
    let on = share_enabled(apis);
    let topic_ok = |name: &str| {
        req.ctx
            .authorize(AclOperation::Describe, ResourceType::Topic, name)
    };
    let groups = r
        .groups
        .iter()
        .map(|g| {
            let base = |error_code: i16| ResponseGroup {
                group_id: g.group_id.clone(),
                error_code,
                ..Default::default()
            };
            if !on {
                return base(ResponseError::UnsupportedVersion.code());
            }
            if !req
                .ctx
                .authorize(AclOperation::Describe, ResourceType::Group, &g.group_id)
            {
                return base(ResponseError::GroupAuthorizationFailed.code());
            }
            let offsets = group_offsets(apis, &g.group_id);
            let partition = |tp: TopicIdPartition, at: Option<&Summary>| match at {
                Some(s) => ResponsePartition {
                    partition_index: tp.1,
                    start_offset: s.start_offset,
                    leader_epoch: s.leader_epoch,
                    lag: lag(apis, &tp, s),
                    ..Default::default()
                },
                None => ResponsePartition {
                    partition_index: tp.1,
                    start_offset: UNINITIALIZED_START_OFFSET,
                    leader_epoch: DEFAULT_LEADER_EPOCH,
                    ..Default::default()
                },
            };
            let Some(requested) = &g.topics else {
                // Every share partition with state, of topics the client
                // may describe.
                let mut by_topic: BTreeMap<Uuid, Vec<ResponsePartition>> = BTreeMap::new();
                for (tp, at) in &offsets {
                    by_topic
                        .entry(tp.0)
                        .or_default()
                        .push(partition(*tp, Some(at)));
                }
                let topics = by_topic
                    .into_iter()
                    .filter_map(|(id, partitions)| {
                        let name = apis.replicas.topics.get_by_id(&id)?.name.to_string();
                        topic_ok(&name).then_some(ResponseTopic {
                            topic_name: name,
                            topic_id: id,
                            partitions,
                        })
                    })
                    .collect();
                return ResponseGroup { topics, ..base(0) };
            };
            let mut topics = Vec::with_capacity(requested.len());
            let mut denied = Vec::new();
            for t in requested {
                let name = t.topic_name.as_str();
                if !topic_ok(name) {
                    denied.push(ResponseTopic {
                        topic_name: t.topic_name.clone(),
                        topic_id: Uuid::nil(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| ResponsePartition {
                                partition_index: *p,
                                start_offset: UNINITIALIZED_START_OFFSET,
                                error_code: ResponseError::TopicAuthorizationFailed.code(),
                                error_message: Some("Topic authorization failed.".into()),
                                ..Default::default()
                            })
                            .collect(),
                    });
                    continue;
                }
                // A topic that does not exist has no offsets, which is
                // no error (as OffsetFetch answers).
                let id = apis.replicas.topics.get(name).map_or(Uuid::nil(), |t| t.id);
                topics.push(ResponseTopic {
                    topic_name: t.topic_name.clone(),
                    topic_id: id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| {
                            let at = (!id.is_nil()).then(|| offsets.get(&(id, *p))).flatten();
                            partition((id, *p), at)
                        })
                        .collect(),
                });
            }
            topics.extend(denied);
            ResponseGroup { topics, ..base(0) }
        })
        .collect();
    let answer = DescribeShareGroupOffsetsResponse {
        throttle_time_ms: 0,
        groups,
    };
    // Flexible in every version: response header v1.
    req.respond(&Written::<1>(answer.write(req.version())))
}

/// Waits for each write; the first failure's code per key.
async fn durable<K: Ord>(apis: &KafkaApis, waits: Vec<(K, DurableWait)>) -> BTreeMap<K, i16> {
    let mut failed = BTreeMap::new();
    for (k, w) in waits {
        if let Err(code) = w.wait(apis.share_state.config.write_timeout_ms).await {
            failed.entry(k).or_insert(code);
        }
    }
    failed
}

pub fn alter_share_group_offsets(req: Request, body: Bytes) -> Pending {
    let r: AlterShareGroupOffsetsRequest = match crate::handlers::decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    let apis = req.ctx.apis.clone();
    let group = r.group_id.0.to_string();
    let top = |e: ResponseError, message: Option<String>| {
        AlterShareGroupOffsetsResponse::default()
            .with_error_code(e.code())
            .with_error_message(message.map(s))
    };
    if !share_enabled(&apis) {
        return ready(req.respond(&top(ResponseError::UnsupportedVersion, None)));
    }
    if !req
        .ctx
        .authorize(AclOperation::Read, ResourceType::Group, &group)
    {
        return ready(req.respond(&top(ResponseError::GroupAuthorizationFailed, None)));
    }
    let partition_result = |index: i32, e: Option<ResponseError>| {
        AlterShareGroupOffsetsResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(e.map_or(0, |e| e.code()))
            .with_error_message(e.map(|e| s(kafka_message(e))))
    };
    // The topics the client may not READ, or that do not exist, are
    // answered per partition whatever the group's state.
    let mut responses = Vec::with_capacity(r.topics.len());
    let mut allowed = Vec::new();
    for t in &r.topics {
        let name = t.topic_name.0.as_str();
        let err = if !req
            .ctx
            .authorize(AclOperation::Read, ResourceType::Topic, name)
        {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if apis.replicas.topics.get(name).is_none() {
            Some(ResponseError::UnknownTopicOrPartition)
        } else {
            None
        };
        match err {
            Some(e) => responses.push(
                AlterShareGroupOffsetsResponseTopic::default()
                    .with_topic_name(t.topic_name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| partition_result(p.partition_index, Some(e)))
                            .collect(),
                    ),
            ),
            None => allowed.push(t),
        }
    }
    if group.is_empty() {
        let e = ResponseError::InvalidGroupId;
        return ready(req.respond(&top(e, Some(kafka_message(e).to_string()))));
    }
    if allowed.is_empty() {
        return ready(
            req.respond(&AlterShareGroupOffsetsResponse::default().with_responses(responses)),
        );
    }
    if let Err((code, message)) = check_empty_share_group(&apis, &group, true) {
        return ready(
            req.respond(
                &AlterShareGroupOffsetsResponse::default()
                    .with_error_code(code)
                    .with_error_message(message.map(s)),
            ),
        );
    }
    if apis.cluster.is_none() {
        if let Err(e) = ensure_share_state_topic(&apis) {
            return ready(req.respond(&top(e, None)));
        }
    }
    let mut waits: Vec<((usize, i32), DurableWait)> = Vec::new();
    let mut initialized = Vec::new();
    for t in allowed {
        let Some(topic) = apis.replicas.topics.get(&t.topic_name.0) else {
            continue;
        };
        let at = responses.len();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            if topic.partition(p.partition_index).is_none() {
                partitions.push(partition_result(
                    p.partition_index,
                    Some(ResponseError::UnknownTopicOrPartition),
                ));
                continue;
            }
            let tp = (topic.id, p.partition_index);
            let mut code = 0;
            if apis.cluster.is_none() {
                match apis.share_state.initialize(&group, tp, p.start_offset) {
                    Ok(w) => waits.push(((at, p.partition_index), w)),
                    Err(e) => code = map_append_error(e, false),
                }
            }
            apis.share.forget_partitions(&group, |x| *x == tp);
            if code == 0 {
                initialized.push((topic.id, topic.name.clone(), p.partition_index));
            }
            partitions.push(
                AlterShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        responses.push(
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(t.topic_name.clone())
                .with_topic_id(topic.id)
                .with_partitions(partitions),
        );
    }
    apis.groups
        .share_partitions_initialized(&group, &initialized);
    Box::pin(async move {
        let failed = durable(&apis, waits).await;
        for ((at, index), code) in failed {
            if let Some(p) = responses
                .get_mut(at)
                .and_then(|t| t.partitions.iter_mut().find(|p| p.partition_index == index))
            {
                p.error_code = code;
            }
        }
        req.respond(&AlterShareGroupOffsetsResponse::default().with_responses(responses))
    })
}

/// Kafka's default message of an error (`Errors.message()`), for the
/// errors these APIs answer with one: partition results, and the group's
/// own refusals (an empty id, members).
fn kafka_message(e: ResponseError) -> &'static str {
    match e {
        ResponseError::TopicAuthorizationFailed => "Topic authorization failed.",
        ResponseError::UnknownTopicOrPartition => "This server does not host this topic-partition.",
        ResponseError::InvalidGroupId => "The group id is invalid.",
        ResponseError::NonEmptyGroup => "The group is not empty.",
        _ => "",
    }
}

pub fn delete_share_group_offsets(req: Request, body: Bytes) -> Pending {
    let r: DeleteShareGroupOffsetsRequest = match crate::handlers::decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    let apis = req.ctx.apis.clone();
    let group = r.group_id.0.to_string();
    let top = |code: i16, message: Option<String>| {
        DeleteShareGroupOffsetsResponse::default()
            .with_error_code(code)
            .with_error_message(message.map(s))
    };
    if !share_enabled(&apis) {
        return ready(req.respond(&top(ResponseError::UnsupportedVersion.code(), None)));
    }
    if !req
        .ctx
        .authorize(AclOperation::Delete, ResourceType::Group, &group)
    {
        return ready(req.respond(&top(ResponseError::GroupAuthorizationFailed.code(), None)));
    }
    let topic_result = |name: &TopicName, id: Uuid, e: Option<(ResponseError, &str)>| {
        DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(name.clone())
            .with_topic_id(id)
            .with_error_code(e.map_or(0, |e| e.0.code()))
            .with_error_message(e.map(|e| s(e.1)))
    };
    let mut responses = Vec::new();
    let mut allowed = Vec::new();
    for t in &r.topics {
        if req
            .ctx
            .authorize(AclOperation::Read, ResourceType::Topic, &t.topic_name.0)
        {
            allowed.push(t);
        } else {
            responses.push(topic_result(
                &t.topic_name,
                Uuid::nil(),
                Some((
                    ResponseError::TopicAuthorizationFailed,
                    kafka_message(ResponseError::TopicAuthorizationFailed),
                )),
            ));
        }
    }
    if allowed.is_empty() {
        return ready(
            req.respond(&DeleteShareGroupOffsetsResponse::default().with_responses(responses)),
        );
    }
    if group.is_empty() {
        let e = ResponseError::InvalidGroupId;
        return ready(req.respond(&top(e.code(), Some(kafka_message(e).to_string()))));
    }
    if let Err((code, message)) = check_empty_share_group(&apis, &group, false) {
        return ready(req.respond(&top(code, message)));
    }
    let offsets = group_offsets(&apis, &group);
    let mut waits: Vec<(usize, DurableWait)> = Vec::new();
    for t in allowed {
        let Some(topic) = apis.replicas.topics.get(&t.topic_name.0) else {
            responses.push(topic_result(
                &t.topic_name,
                Uuid::nil(),
                Some((
                    ResponseError::UnknownTopicOrPartition,
                    kafka_message(ResponseError::UnknownTopicOrPartition),
                )),
            ));
            continue;
        };
        let held: Vec<TopicIdPartition> = offsets
            .keys()
            .filter(|(id, _)| *id == topic.id)
            .copied()
            .collect();
        if held.is_empty() {
            responses.push(topic_result(
                &t.topic_name,
                Uuid::nil(),
                Some((
                    ResponseError::UnknownTopicOrPartition,
                    "There is no offset information to delete.",
                )),
            ));
            continue;
        }
        let at = responses.len();
        let mut code = 0;
        for tp in &held {
            if apis.cluster.is_none() {
                match apis.share_state.delete(&group, *tp) {
                    Ok(Some(w)) => waits.push((at, w)),
                    Ok(None) => {}
                    Err(e) => code = map_append_error(e, false),
                }
            }
        }
        apis.share
            .forget_partitions(&group, |(id, _)| *id == topic.id);
        apis.groups.share_topic_uninitialized(&group, &topic.id);
        responses.push(topic_result(&t.topic_name, topic.id, None).with_error_code(code));
    }
    Box::pin(async move {
        let failed = durable(&apis, waits).await;
        for (at, code) in failed {
            if let Some(t) = responses.get_mut(at) {
                t.error_code = code;
            }
        }
        req.respond(&DeleteShareGroupOffsetsResponse::default().with_responses(responses))
    })
}

/// DeleteGroups of a share group (Kafka deletes its share state first,
/// DeleteShareGroupState, then the group): the state of every share
/// partition of `group` is deleted. The waits to await before answering.
pub(crate) fn delete_share_group_state(
    apis: &KafkaApis,
    group: &str,
) -> Result<Vec<DurableWait>, i16> {
    let mut waits = Vec::new();
    if apis.cluster.is_none() {
        for tp in apis.share_state.group_states(group).keys() {
            match apis.share_state.delete(group, *tp) {
                Ok(Some(w)) => waits.push(w),
                Ok(None) => {}
                Err(e) => return Err(map_append_error(e, false)),
            }
        }
    }
    apis.share.forget_partitions(group, |_| true);
    Ok(waits)
}
