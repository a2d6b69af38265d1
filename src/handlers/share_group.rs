//! The KIP-932 share group APIs: ShareGroupHeartbeat (76),
//! ShareGroupDescribe (77), ShareFetch (78) and ShareAcknowledge (79).
//! Each answers UNSUPPORTED_VERSION while `share.version` is 0 and checks
//! the client's rights as Kafka's `KafkaApis` does (GROUP READ; TOPIC READ
//! per fetched or acknowledged partition; GROUP DESCRIBE to describe).
//! ShareFetch and ShareAcknowledge v2 (`protocol::share_v2`) add RENEW
//! acknowledgements (KIP-1222) and ShareFetch's record-limit acquire mode
//! (KIP-1206); both are served from share.version 1, as in Kafka 4.4.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::share_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions as DescribedTps,
};
use kafka_protocol::messages::share_group_heartbeat_response::{
    Assignment as HeartbeatAssignment, TopicPartitions as HeartbeatTps,
};
use kafka_protocol::messages::{
    ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse,
    ShareGroupDescribeRequest, ShareGroupDescribeResponse, ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::share::partition::{AckBatch, AckError, AcquireLimits, ACK_REJECT, ACK_RENEW};
use crate::broker::share::{AutoOffsetReset, ShareSettings, TopicIdPartition, FINAL_EPOCH};
use crate::coordinator::group::consumer::TopicResolver;
use crate::coordinator::group::share::{
    ShareAssignment, ShareHeartbeatOutcome, ShareHeartbeatParams,
};
use crate::handlers::consumer_group::BrokerTopics;
use crate::handlers::share_state::{ensure_share_state_topic, persist_share_state};
use crate::handlers::{decode_or_close, ready, KafkaApis, Pending, Reply, Request};
use crate::protocol::response::Written;
use crate::protocol::same_as::SameAsVersion;
use crate::protocol::share_v2::{
    self, ShareFetchV2Fields, BATCH_OPTIMIZED, RECORD_LIMIT, SHARE_V2,
};
use crate::security::acl::{AclOperation, ResourceType};
use crate::util::now_ms;

/// What every client may do to a group without an authorizer.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
const OPS_NOT_REQUESTED: i32 = i32::MIN;
/// How often a ShareFetch that acquired nothing looks again while it
/// waits (up to its MaxWaitMs) for records or expired locks.
const SHARE_FETCH_POLL: Duration = Duration::from_millis(50);

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Kafka's `isMemberIdValid` for the share APIs' member ids: set,
/// not empty, and at most 36 characters (a UUID's string; Java counts
/// UTF-16 units).
const MAX_MEMBER_ID_CHARS: usize = 36;

/// The member id of a ShareFetch or ShareAcknowledge if Kafka takes it,
/// else `None` (the request's INVALID_REQUEST).
fn valid_member_id(member: &Option<StrBytes>) -> Option<String> {
    member
        .as_deref()
        .filter(|m| member_id_valid(m))
        .map(str::to_string)
}

fn member_id_valid(member: &str) -> bool {
    !member.is_empty() && member.encode_utf16().count() <= MAX_MEMBER_ID_CHARS
}

/// Kafka's checks before a ShareFetch's or ShareAcknowledge's session
/// step, in its order: a group id (INVALID_REQUEST when null), GROUP READ,
/// then a valid member id (INVALID_REQUEST). The group and member ids, or
/// the request's error.
fn checked_ids(
    req: &Request,
    group: &Option<kafka_protocol::messages::GroupId>,
    member: &Option<StrBytes>,
) -> Result<(String, String), i16> {
    let group = group
        .as_ref()
        .map(|g| g.0.to_string())
        .ok_or(ResponseError::InvalidRequest.code())?;
    if !req
        .ctx
        .authorize(AclOperation::Read, ResourceType::Group, &group)
    {
        return Err(ResponseError::GroupAuthorizationFailed.code());
    }
    let member = valid_member_id(member).ok_or(ResponseError::InvalidRequest.code())?;
    Ok((group, member))
}

/// `share.version` ≥ 1: Kafka's `isShareGroupProtocolEnabled`.
pub(crate) fn share_enabled(apis: &KafkaApis) -> bool {
    enabled(apis)
}

fn enabled(apis: &KafkaApis) -> bool {
    apis.finalized_features()
        .level(crate::protocol::versions::SHARE_VERSION)
        >= 1
}

/// A group config, else the broker config it defaults to.
fn setting(apis: &KafkaApis, group: &str, key: &str, broker_key: &str) -> i64 {
    apis.group_configs
        .group_configs(group)
        .get(key)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| apis.dynamic_config.current().int(broker_key))
}

pub(crate) fn share_settings(apis: &KafkaApis, group: &str, max_records: i32) -> ShareSettings {
    let configs = apis.group_configs.group_configs(group);
    let reset = configs.get("share.auto.offset.reset").cloned();
    // Kafka's `isRenewAcknowledgeEnabled`: on unless the group turned it off.
    let renew_enabled = configs
        .get("share.renew.acknowledge.enable")
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
    ShareSettings {
        renew_enabled,
        reset: AutoOffsetReset::parse(reset.as_deref()),
        limits: AcquireLimits {
            lock_duration_ms: setting(
                apis,
                group,
                "share.record.lock.duration.ms",
                "group.share.record.lock.duration.ms",
            ),
            delivery_count_limit: i16::try_from(setting(
                apis,
                group,
                "share.delivery.count.limit",
                "group.share.delivery.count.limit",
            ))
            .unwrap_or(i16::MAX),
            max_in_flight: setting(
                apis,
                group,
                "share.partition.max.record.locks",
                "group.share.partition.max.record.locks",
            ),
            max_records: i64::from(max_records.max(1)),
            record_limit: false,
        },
    }
}

fn heartbeat_response(o: ShareHeartbeatOutcome) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse::default()
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

pub fn share_group_heartbeat(req: &Request, body: Bytes) -> crate::handlers::Reply {
    let r = decode_or_close!(req, body, ShareGroupHeartbeatRequest);
    let apis = &req.ctx.apis;
    let group = r.group_id.0.to_string();
    let err = |e: ResponseError| {
        req.respond(&heartbeat_response(ShareHeartbeatOutcome::error((
            e.code(),
            None,
        ))))
    };
    if !enabled(apis) {
        return err(ResponseError::UnsupportedVersion);
    }
    if !req
        .ctx
        .authorize(AclOperation::Read, ResourceType::Group, &group)
    {
        return err(ResponseError::GroupAuthorizationFailed);
    }
    // Kafka checks the member id here, before the group coordinator: its
    // INVALID_REQUEST carries no message.
    if !member_id_valid(&r.member_id) {
        return err(ResponseError::InvalidRequest);
    }
    if let Some(names) = &r.subscribed_topic_names {
        if names.iter().any(|t| {
            !req.ctx
                .authorize(AclOperation::Describe, ResourceType::Topic, &t.0)
        }) {
            return err(ResponseError::TopicAuthorizationFailed);
        }
    }
    let cfg = apis.dynamic_config.current();
    let group_int =
        |k: &str, b: &str| i32::try_from(setting(apis, &group, k, b)).unwrap_or(i32::MAX);
    let params = ShareHeartbeatParams {
        group_id: group.clone(),
        member_id: r.member_id.to_string(),
        member_epoch: r.member_epoch,
        rack_id: r.rack_id.map(|x| x.to_string()),
        subscribed_topic_names: r
            .subscribed_topic_names
            .map(|ns| ns.into_iter().map(|n| n.0.to_string()).collect()),
        client_id: req.header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", req.ctx.peer.ip()),
        session_timeout_ms: group_int("share.session.timeout.ms", "group.share.session.timeout.ms"),
        heartbeat_interval_ms: group_int(
            "share.heartbeat.interval.ms",
            "group.share.heartbeat.interval.ms",
        ),
        assignment_interval_ms: super::consumer_group::assignment_interval_ms(
            apis, &group, "share",
        ),
        max_size: usize::try_from(cfg.int("group.share.max.size"))
            .unwrap_or(1)
            .max(1),
        now_ms: now_ms(),
    };
    let o = apis
        .groups
        .share_group_heartbeat(params, &BrokerTopics::for_client(&req.ctx));
    req.respond(&heartbeat_response(o))
}

fn described(a: &ShareAssignment, topics: &BrokerTopics<'_>) -> DescribedAssignment {
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

pub fn share_group_describe(req: &Request, body: Bytes) -> crate::handlers::Reply {
    let r = decode_or_close!(req, body, ShareGroupDescribeRequest);
    let apis = &req.ctx.apis;
    let topics = BrokerTopics::new(apis);
    let on = enabled(apis);
    let groups = r
        .group_ids
        .iter()
        .map(|id| {
            let base = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(OPS_NOT_REQUESTED);
            if !on {
                return base.with_error_code(ResponseError::UnsupportedVersion.code());
            }
            if !req.ctx.authorize(AclOperation::Describe, ResourceType::Group, &id.0) {
                return base.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let g = match apis.groups.share_group_describe(&id.0) {
                Ok(g) => g,
                Err((code, message)) => {
                    return base.with_error_code(code).with_error_message(message.map(s))
                }
            };
            let members: Vec<Member> = g
                .members
                .values()
                .map(|m| {
                    Member::default()
                        .with_member_id(s(m.member_id.clone()))
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
                        .with_assignment(described(&m.assigned, &topics))
                })
                .collect();
            let hidden = members.iter().any(|m| {
                m.assignment.topic_partitions.iter().any(|tp| {
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
            base.with_group_state(s(g.state()))
                .with_group_epoch(g.group_epoch)
                .with_assignment_epoch(g.assignment_epoch)
                .with_assignor_name(s("simple"))
                .with_members(members)
                .with_authorized_operations(ops)
        })
        .collect();
    req.respond(&ShareGroupDescribeResponse::default().with_groups(groups))
}

/// A partition's topic name and whether the client may READ it; `None`
/// when the topic id is unknown.
fn topic_read(req: &Request, tp: &TopicIdPartition) -> Option<(String, bool)> {
    let name = req.ctx.apis.replicas.topics.get_by_id(&tp.0)?.name.clone();
    let ok = req
        .ctx
        .authorize(AclOperation::Read, ResourceType::Topic, &name);
    Some((name.to_string(), ok))
}

/// Kafka's `validateAcknowledgementBatches`: whether a partition's
/// acknowledgement batches are well formed (else the partition's
/// INVALID_REQUEST, without a message). Types run 0..3 (Gap, Accept,
/// Release, Reject) before version 2 and 0..4 (Renew) from it; a Renew
/// needs the request's IsRenewAck.
fn ack_batches_valid(batches: &[AckBatch], version: i16, is_renew_ack: bool) -> bool {
    let max_type = if version >= SHARE_V2 {
        ACK_RENEW
    } else {
        ACK_REJECT
    };
    let mut previous_last = -1i64;
    for (first, last, types) in batches {
        let span_ok = types.len() == 1
            || i64::try_from(types.len()).is_ok_and(|n| last.checked_sub(*first) == Some(n - 1));
        if first > last
            || *first < previous_last
            || types.is_empty()
            || !span_ok
            || types.iter().any(|t| !(0..=max_type).contains(t))
            || (!is_renew_ack && types.contains(&ACK_RENEW))
        {
            return false;
        }
        previous_last = *last;
    }
    true
}

/// How a request's acknowledgements are checked: its version and
/// IsRenewAck.
#[derive(Debug, Clone, Copy)]
struct AckRequest {
    version: i16,
    is_renew_ack: bool,
}

/// The error acknowledging `tp` ends in (0 when applied).
fn acknowledge_one(
    req: &Request,
    group: &str,
    member: &str,
    tp: TopicIdPartition,
    batches: &[AckBatch],
    settings: &ShareSettings,
    how: AckRequest,
) -> (i16, Option<String>) {
    // Kafka's order (`handleAcknowledgements`): an unknown topic id, then
    // malformed batches, then TOPIC READ, then a partition the topic lacks.
    let Some((name, can_read)) = topic_read(req, &tp) else {
        return (ResponseError::UnknownTopicId.code(), None);
    };
    if !ack_batches_valid(batches, how.version, how.is_renew_ack) {
        return (ResponseError::InvalidRequest.code(), None);
    }
    if !can_read {
        return (ResponseError::TopicAuthorizationFailed.code(), None);
    }
    if !super::groups::partition_exists(&req.ctx.apis, &name, tp.1) {
        return (ResponseError::UnknownTopicOrPartition.code(), None);
    }
    if batches.is_empty() {
        return (0, None);
    }
    match req
        .ctx
        .apis
        .share
        .acknowledge(group, tp, member, batches, settings, now_ms())
    {
        Ok(()) => (0, None),
        Err(AckError::InvalidRecordState(m)) => (ResponseError::InvalidRecordState.code(), Some(m)),
        Err(AckError::InvalidRequest(m)) => (ResponseError::InvalidRequest.code(), Some(m)),
    }
}

/// A ShareFetch response at the request's version (v2's is v1's layout).
fn respond_fetch(req: &Request, resp: ShareFetchResponse) -> Reply {
    req.respond(&SameAsVersion::<1, _>(resp))
}

/// Kafka's check of a renew-only ShareFetch (v2, IsRenewAck): it fetches
/// nothing, so MaxBytes, MinBytes, MaxRecords and MaxWaitMs must all be 0.
/// The fields that are not, as Kafka words it, else `None`.
fn renew_only_violation(r: &ShareFetchRequest) -> Option<String> {
    let mut msg = String::new();
    for (name, v) in [
        ("maxBytes", r.max_bytes),
        ("minBytes", r.min_bytes),
        ("maxRecords", r.max_records),
        ("maxWaitMs", r.max_wait_ms),
    ] {
        if v != 0 {
            msg.push_str(name);
            msg.push_str(" must be set to 0,");
        }
    }
    (!msg.is_empty()).then(|| msg + "if isRenewAck is true.")
}

pub fn share_fetch(req: Request, body: Bytes) -> Pending {
    let version = req.version();
    let decoded = if version >= SHARE_V2 {
        crate::handlers::decode_own(&req, &body, share_v2::read_share_fetch)
    } else {
        crate::handlers::decode::<ShareFetchRequest>(&req.header, body)
            .map(|r| (r, ShareFetchV2Fields::default()))
            .map_err(|e| crate::handlers::malformed(&req, e))
    };
    let (r, v2) = match decoded {
        Ok(d) => d,
        Err(reply) => return ready(reply),
    };
    let apis = req.ctx.apis.clone();
    let top = |e: i16| ShareFetchResponse::default().with_error_code(e);
    if !enabled(&apis) {
        return ready(respond_fetch(
            &req,
            top(ResponseError::UnsupportedVersion.code()),
        ));
    }
    let (group, member) = match checked_ids(&req, &r.group_id, &r.member_id) {
        Ok(ids) => ids,
        Err(code) => return ready(respond_fetch(&req, top(code))),
    };
    if v2.is_renew_ack {
        if let Some(msg) = renew_only_violation(&r) {
            tracing::debug!(group, member, "renew-only ShareFetch refused: {msg}");
            return ready(respond_fetch(
                &req,
                top(ResponseError::InvalidRequest.code()),
            ));
        }
    }
    let how = AckRequest {
        version,
        is_renew_ack: v2.is_renew_ack,
    };
    let mut add: Vec<TopicIdPartition> = Vec::new();
    let mut acks: Vec<(TopicIdPartition, Vec<AckBatch>)> = Vec::new();
    for t in &r.topics {
        for p in &t.partitions {
            add.push((t.topic_id, p.partition_index));
            if !p.acknowledgement_batches.is_empty() {
                acks.push((
                    (t.topic_id, p.partition_index),
                    p.acknowledgement_batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                        .collect(),
                ));
            }
        }
    }
    let forget: Vec<TopicIdPartition> = r
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    let epoch = r.share_session_epoch;
    let session = apis.share.fetch_session(
        &group,
        &member,
        epoch,
        &add,
        &forget,
        !acks.is_empty(),
        req.ctx.connection_id,
    );
    let partitions = match session {
        Ok(p) => p,
        Err(e) => return ready(respond_fetch(&req, top(e.code()))),
    };
    let mut settings = share_settings(&apis, &group, r.max_records);
    settings.limits.record_limit = v2.share_acquire_mode == RECORD_LIMIT;
    let lock_ms = i32::try_from(settings.limits.lock_duration_ms).unwrap_or(i32::MAX);
    let mut out: BTreeMap<TopicIdPartition, PartitionData> = BTreeMap::new();
    for (tp, batches) in &acks {
        let (code, msg) = acknowledge_one(&req, &group, &member, *tp, batches, &settings, how);
        out.entry(*tp)
            .or_insert_with(|| PartitionData::default().with_partition_index(tp.1))
            .acknowledge_error_code = code;
        if let Some(p) = out.get_mut(tp) {
            p.acknowledge_error_message = msg.map(s);
        }
    }
    let acked: Vec<TopicIdPartition> = acks.iter().map(|(tp, _)| *tp).collect();
    if epoch == FINAL_EPOCH {
        let held = apis.share.session_partitions(&group, &member);
        apis.share
            .release_session(&group, &member, settings.limits.delivery_count_limit);
        return Box::pin(async move {
            let failed = persist_share_state(&apis, &group, acked.into_iter().chain(held)).await;
            set_ack_errors(&mut out, &failed);
            respond_fetch(&req, fetch_response(out, lock_ms))
        });
    }
    // A renew-only request acknowledges and fetches nothing.
    if v2.is_renew_ack {
        return Box::pin(async move {
            let failed = persist_share_state(&apis, &group, acked).await;
            set_ack_errors(&mut out, &failed);
            respond_fetch(&req, fetch_response(out, lock_ms))
        });
    }
    // Kafka's `ShareAcquireMode.forId` throws for an id other than 0 and 1
    // once the request has a partition to fetch (known and readable): the
    // request's UNKNOWN_SERVER_ERROR, its session step and acknowledgements
    // done all the same.
    let known_mode = matches!(v2.share_acquire_mode, BATCH_OPTIMIZED | RECORD_LIMIT);
    if !known_mode
        && partitions
            .iter()
            .any(|tp| matches!(topic_read(&req, tp), Some((_, true))))
    {
        return Box::pin(async move {
            persist_share_state(&apis, &group, acked).await;
            respond_fetch(&req, top(ResponseError::UnknownServerError.code()))
        });
    }
    // `__share_group_state` is created before anything is acquired: its
    // creation (a directory per partition) must not eat into the locks.
    if apis.cluster.is_none() {
        let _ = ensure_share_state_topic(&apis);
    }
    let max_bytes = usize::try_from(r.max_bytes.max(0)).unwrap_or(0);
    let deadline =
        Instant::now() + Duration::from_millis(u64::try_from(r.max_wait_ms.max(0)).unwrap_or(0));
    Box::pin(async move {
        loop {
            let mut got = false;
            let mut budget = max_bytes;
            // MaxRecords bounds the whole response (Kafka's
            // `ShareFetchUtils`: each partition acquires what the ones
            // before it left).
            let mut records_left = settings.limits.max_records;
            for tp in &partitions {
                let entry = out
                    .entry(*tp)
                    .or_insert_with(|| PartitionData::default().with_partition_index(tp.1));
                if !entry.acquired_records.is_empty() || entry.error_code != 0 {
                    continue;
                }
                match topic_read(&req, tp) {
                    None => {
                        entry.error_code = ResponseError::UnknownTopicId.code();
                        continue;
                    }
                    Some((_, false)) => {
                        entry.error_code = ResponseError::TopicAuthorizationFailed.code();
                        continue;
                    }
                    Some(_) => {}
                }
                if budget == 0 || records_left <= 0 {
                    continue;
                }
                let mut left = settings;
                left.limits.max_records = records_left;
                let f = apis.share.fetch(
                    &apis.replicas.topics,
                    &group,
                    *tp,
                    &member,
                    &left,
                    budget,
                    &|| apis.share_state.read(&group, *tp),
                );
                entry.error_code = f.error;
                if !f.acquired.is_empty() {
                    got = true;
                    budget = budget.saturating_sub(f.records.len());
                    let n: i64 = f
                        .acquired
                        .iter()
                        .map(|a| a.last_offset - a.first_offset + 1)
                        .sum();
                    records_left = records_left.saturating_sub(n);
                    entry.records = Some(f.records);
                    entry.acquired_records = f
                        .acquired
                        .iter()
                        .map(|a| {
                            AcquiredRecords::default()
                                .with_first_offset(a.first_offset)
                                .with_last_offset(a.last_offset)
                                .with_delivery_count(a.delivery_count)
                        })
                        .collect();
                }
            }
            let errors = out.values().any(|p| p.error_code != 0);
            if got || errors || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(
                SHARE_FETCH_POLL.min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        // The acknowledgements are durable before they are answered; a
        // fetch may have created the share partition's state or moved its
        // start (acquisitions are not persisted).
        let touched: Vec<TopicIdPartition> = acked
            .iter()
            .copied()
            .chain(partitions.iter().copied())
            .collect();
        let failed = persist_share_state(&apis, &group, touched).await;
        set_ack_errors(&mut out, &failed);
        respond_fetch(&req, fetch_response(out, lock_ms))
    })
}

/// An acknowledgement whose state could not be made durable fails with
/// the write's error.
fn set_ack_errors(
    out: &mut BTreeMap<TopicIdPartition, PartitionData>,
    failed: &BTreeMap<TopicIdPartition, i16>,
) {
    for (tp, code) in failed {
        if let Some(p) = out.get_mut(tp) {
            if p.acknowledge_error_code == 0 {
                p.acknowledge_error_code = *code;
            }
        }
    }
}

/// The partitions with records, an error or an acknowledgement result,
/// grouped by topic.
fn fetch_response(
    out: BTreeMap<TopicIdPartition, PartitionData>,
    lock_ms: i32,
) -> ShareFetchResponse {
    let mut topics: Vec<ShareFetchableTopicResponse> = Vec::new();
    for ((t, _), mut p) in out {
        if p.records.is_none() {
            p.records = Some(Bytes::new());
        }
        match topics.last_mut() {
            Some(last) if last.topic_id == t => last.partitions.push(p),
            _ => topics.push(
                ShareFetchableTopicResponse::default()
                    .with_topic_id(t)
                    .with_partitions(vec![p]),
            ),
        }
    }
    ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(lock_ms)
        .with_responses(topics)
}

/// A ShareAcknowledge response at the request's version; v2 carries the
/// group's acquisition lock duration (0 on a top-level error, as Kafka's
/// error response leaves it), written by kastle's own codec.
fn respond_ack(req: &Request, body: ShareAcknowledgeResponse, lock_ms: i32) -> Reply {
    if req.version() < SHARE_V2 {
        return req.respond(&body);
    }
    match share_v2::write_share_acknowledge_response(&body, lock_ms) {
        Ok(bytes) => req.respond(&Written::<1>(bytes)),
        Err(e) => {
            tracing::error!(peer = %req.ctx.peer, error = %e, "encoding ShareAcknowledge v2 failed");
            Reply::Close(format!("could not encode response: {e}"))
        }
    }
}

pub fn share_acknowledge(req: Request, body: Bytes) -> Pending {
    let version = req.version();
    let decoded = if version >= SHARE_V2 {
        crate::handlers::decode_own(&req, &body, share_v2::read_share_acknowledge)
    } else {
        crate::handlers::decode::<ShareAcknowledgeRequest>(&req.header, body)
            .map(|r| (r, false))
            .map_err(|e| crate::handlers::malformed(&req, e))
    };
    let (r, is_renew_ack) = match decoded {
        Ok(d) => d,
        Err(reply) => return ready(reply),
    };
    let apis = req.ctx.apis.clone();
    let top = |e: i16| ShareAcknowledgeResponse::default().with_error_code(e);
    if !enabled(&apis) {
        return ready(respond_ack(
            &req,
            top(ResponseError::UnsupportedVersion.code()),
            0,
        ));
    }
    let (group, member) = match checked_ids(&req, &r.group_id, &r.member_id) {
        Ok(ids) => ids,
        Err(code) => return ready(respond_ack(&req, top(code), 0)),
    };
    if let Err(e) = apis
        .share
        .acknowledge_session(&group, &member, r.share_session_epoch)
    {
        return ready(respond_ack(&req, top(e.code()), 0));
    }
    let settings = share_settings(&apis, &group, 1);
    let lock_ms = i32::try_from(settings.limits.lock_duration_ms).unwrap_or(i32::MAX);
    let how = AckRequest {
        version,
        is_renew_ack,
    };
    let mut topics: Vec<ShareAcknowledgeTopicResponse> = r
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let batches: Vec<AckBatch> = p
                        .acknowledgement_batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                        .collect();
                    let (code, msg) = acknowledge_one(
                        &req,
                        &group,
                        &member,
                        (t.topic_id, p.partition_index),
                        &batches,
                        &settings,
                        how,
                    );
                    AckPartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(msg.map(s))
                })
                .collect();
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    let mut touched: Vec<TopicIdPartition> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic_id, p.partition_index))
        })
        .collect();
    if r.share_session_epoch == FINAL_EPOCH {
        touched.extend(apis.share.session_partitions(&group, &member));
        apis.share
            .release_session(&group, &member, settings.limits.delivery_count_limit);
    }
    Box::pin(async move {
        let failed = persist_share_state(&apis, &group, touched).await;
        for t in &mut topics {
            for p in &mut t.partitions {
                match failed.get(&(t.topic_id, p.partition_index)) {
                    Some(code) if p.error_code == 0 => p.error_code = *code,
                    _ => {}
                }
            }
        }
        respond_ack(
            &req,
            ShareAcknowledgeResponse::default().with_responses(topics),
            lock_ms,
        )
    })
}
