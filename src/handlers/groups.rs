//! Consumer group APIs: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, TxnOffsetCommit, OffsetFetch (`offset_fetch`),
//! OffsetDelete (ListGroups, DescribeGroups and DeleteGroups are
//! `group_admin`). Each decodes its request, calls the
//! GroupCoordinator and encodes the answer at the request's version.
//!
//! JoinGroup and SyncGroup long-poll: the in-order part registers the
//! member with the coordinator and returns a future that resolves when the
//! rebalance step completes, so the connection keeps reading (heartbeats of
//! the same client may arrive meanwhile on another connection, and Kafka
//! clients do not pipeline behind a join). Answers that follow a write to
//! `__consumer_offsets` wait for its high watermark (the fsync) first.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, SyncGroupRequest, SyncGroupResponse, TopicName, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::coordinator::group::api::{
    Answer, CommitPartition, Committer, JoinOutcome, JoinParams, SyncOutcome, SyncParams,
};
use crate::coordinator::group::writer::DurableWait;
use crate::coordinator::txn::add_partitions_manager::SupportedOperation;
use crate::handlers::metadata::topic_name_by_id;
use crate::handlers::KafkaApis;
use crate::handlers::{decode_or_close, ready, Pending, Reply, Request};
use crate::protocol::offsets_by_id::{
    self, TxnOffsetCommitResponseV6, OFFSETS_BY_ID_SINCE, TXN_OFFSETS_BY_ID_SINCE,
};
use crate::protocol::response::Written;
use crate::security::acl::{AclOperation, ResourceType};

mod offset_fetch;
pub use offset_fetch::offset_fetch;

/// Whether the client may do `op` on the group.
pub(super) fn group_allowed(req: &Request, op: AclOperation, group: &str) -> bool {
    req.ctx.authorize(op, ResourceType::Group, group)
}

/// Whether the client may READ the topic (offsets are committed for
/// topics one may consume).
fn topic_readable(req: &Request, topic: &str) -> bool {
    req.ctx
        .authorize(AclOperation::Read, ResourceType::Topic, topic)
}

pub(super) const GROUP_DENIED: i16 = ResponseError::GroupAuthorizationFailed.code();

pub(super) fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Waits for a long-polled answer: NOT_COORDINATOR if the broker stops
/// first (Kafka's answer when a coordinator unloads), UNKNOWN_MEMBER_ID if
/// the member vanished without an answer.
async fn settle<T>(apis: &KafkaApis, a: Answer<T>, err: impl Fn(ResponseError) -> T) -> T {
    match a {
        Answer::Now(t) => t,
        Answer::Later(rx) => tokio::select! {
            r = rx => r.unwrap_or_else(|_| err(ResponseError::UnknownMemberId)),
            _ = apis.replicas.stopping() => err(ResponseError::NotCoordinator),
        },
    }
}

pub(super) async fn durable(apis: &KafkaApis, wait: Option<DurableWait>) -> Result<(), i16> {
    match wait {
        None => Ok(()),
        Some(w) => w.wait(apis.groups.config.commit_timeout_ms).await,
    }
}

/// Per-partition codes of an offset commit: the coordinator's answer, with
/// a failure to make the write durable replacing the successes.
async fn settle_commit(
    apis: &KafkaApis,
    result: Result<(Vec<i16>, Option<DurableWait>), i16>,
    n: usize,
) -> Vec<i16> {
    match result {
        Err(code) => vec![code; n],
        Ok((per, wait)) => match durable(apis, wait).await {
            Ok(()) => per,
            Err(code) => per
                .into_iter()
                .map(|c| if c == 0 { code } else { c })
                .collect(),
        },
    }
}

// ---------------------------------------------------------------------------
// JoinGroup / SyncGroup / Heartbeat / LeaveGroup
// ---------------------------------------------------------------------------

fn client_host(req: &Request) -> String {
    // Kafka reports InetAddress.toString(): "/<ip>".
    format!("/{}", req.ctx.peer.ip())
}

fn join_response(o: JoinOutcome, version: i16) -> JoinGroupResponse {
    // protocol_name is nullable only from v7.
    let protocol_name = match o.protocol_name {
        None if version < 7 => Some(s("")),
        other => other.map(s),
    };
    JoinGroupResponse::default()
        .with_error_code(o.error)
        .with_generation_id(o.generation_id)
        .with_protocol_type(o.protocol_type.map(s))
        .with_protocol_name(protocol_name)
        .with_leader(s(o.leader))
        // KIP-814's flag exists from v9 only.
        .with_skip_assignment(o.skip_assignment && version >= 9)
        .with_member_id(s(o.member_id))
        .with_members(
            o.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(s(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(s))
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}

pub fn join_group(req: Request, body: Bytes) -> Pending {
    let r: JoinGroupRequest = match crate::handlers::decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    let version = req.version();
    let params = JoinParams {
        group_id: r.group_id.0.to_string(),
        member_id: r.member_id.to_string(),
        group_instance_id: r.group_instance_id.map(|i| i.to_string()),
        session_timeout_ms: r.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version == 0 {
            r.session_timeout_ms
        } else {
            r.rebalance_timeout_ms
        },
        protocol_type: r.protocol_type.to_string(),
        protocols: r
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        client_id: req.header.client_id.clone().unwrap_or_default(),
        client_host: client_host(&req),
        require_known_member_id: version >= 4,
    };
    let member_id = params.member_id.clone();
    if !group_allowed(&req, AclOperation::Read, &params.group_id) {
        let o = JoinOutcome::error(ResponseError::GroupAuthorizationFailed, &member_id);
        return ready(req.respond(&join_response(o, version)));
    }
    let apis = req.ctx.apis.clone();
    let answer = apis.groups.join_group(
        params,
        &crate::handlers::consumer_group::BrokerTopics::new(&apis),
    );
    Box::pin(async move {
        let mut o = settle(&apis, answer, |e| JoinOutcome::error(e, &member_id)).await;
        if o.error == 0 {
            if let Err(code) = durable(&apis, o.wait.take()).await {
                o = JoinOutcome::error_code(code, &o.member_id);
            }
        }
        req.respond(&join_response(o, version))
    })
}

pub fn sync_group(req: Request, body: Bytes) -> Pending {
    let r: SyncGroupRequest = match crate::handlers::decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    if !group_allowed(&req, AclOperation::Read, &r.group_id.0) {
        return ready(req.respond(&SyncGroupResponse::default().with_error_code(GROUP_DENIED)));
    }
    let apis = req.ctx.apis.clone();
    let topics = crate::handlers::consumer_group::BrokerTopics::new(&apis);
    let answer = apis.groups.sync_group(
        SyncParams {
            group_id: &r.group_id.0,
            generation_id: r.generation_id,
            member_id: &r.member_id,
            group_instance_id: r.group_instance_id.as_deref(),
            protocol_type: r.protocol_type.as_deref(),
            protocol_name: r.protocol_name.as_deref(),
            assignments: r
                .assignments
                .into_iter()
                .map(|a| (a.member_id.to_string(), a.assignment))
                .collect(),
        },
        &topics,
    );
    Box::pin(async move {
        let mut o = settle(&apis, answer, SyncOutcome::error).await;
        if o.error == 0 {
            if let Err(code) = durable(&apis, o.wait.take()).await {
                o = SyncOutcome {
                    error: code,
                    ..SyncOutcome::error(ResponseError::UnknownServerError)
                };
            }
        }
        req.respond(
            &SyncGroupResponse::default()
                .with_error_code(o.error)
                .with_protocol_type(o.protocol_type.map(s))
                .with_protocol_name(o.protocol_name.map(s))
                .with_assignment(o.assignment),
        )
    })
}

pub fn heartbeat(req: &Request, body: Bytes) -> Reply {
    let r = decode_or_close!(req, body, HeartbeatRequest);
    if !group_allowed(req, AclOperation::Read, &r.group_id.0) {
        return req.respond(&HeartbeatResponse::default().with_error_code(GROUP_DENIED));
    }
    let code = req.ctx.apis.groups.heartbeat(
        &r.group_id.0,
        r.generation_id,
        &r.member_id,
        r.group_instance_id.as_deref(),
    );
    req.respond(&HeartbeatResponse::default().with_error_code(code))
}

pub fn leave_group(req: &Request, body: Bytes) -> Reply {
    let r = decode_or_close!(req, body, LeaveGroupRequest);
    let version = req.version();
    if !group_allowed(req, AclOperation::Read, &r.group_id.0) {
        return req.respond(&LeaveGroupResponse::default().with_error_code(GROUP_DENIED));
    }
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        r.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(r.member_id.to_string(), None)]
    };
    let (top, results) = req.ctx.apis.groups.leave_group(&r.group_id.0, leaving);
    let resp = if version >= 3 {
        LeaveGroupResponse::default()
            .with_error_code(top)
            .with_members(
                results
                    .into_iter()
                    .map(|(m, i, e)| {
                        MemberResponse::default()
                            .with_member_id(s(m))
                            .with_group_instance_id(i.map(s))
                            .with_error_code(e)
                    })
                    .collect(),
            )
    } else {
        let member_err = results.first().map(|(_, _, e)| *e).unwrap_or(0);
        LeaveGroupResponse::default().with_error_code(if top != 0 { top } else { member_err })
    };
    req.respond(&resp)
}

// ---------------------------------------------------------------------------
// OffsetCommit / TxnOffsetCommit (OffsetFetch is `offset_fetch`)
// ---------------------------------------------------------------------------

/// Kafka's `metadataCache.contains`: a partition of the cluster, whether
/// this broker hosts a replica of it or not.
pub(crate) fn partition_exists(apis: &KafkaApis, topic: &str, partition: i32) -> bool {
    apis.replicas
        .topics
        .get(topic)
        .is_some_and(|t| t.partition(partition).is_some())
        || crate::handlers::metadata::in_cluster_image(
            apis,
            Some(topic),
            uuid::Uuid::nil(),
            partition,
        )
}

pub fn offset_commit(req: Request, body: Bytes) -> Pending {
    let by_id = req.version() >= OFFSETS_BY_ID_SINCE;
    let decoded = if by_id {
        crate::handlers::decode_own(&req, &body, offsets_by_id::read_offset_commit)
    } else {
        crate::handlers::decode(&req.header, body).map_err(|e| crate::handlers::malformed(&req, e))
    };
    let mut r: OffsetCommitRequest = match decoded {
        Ok(r) => r,
        Err(reply) => return ready(reply),
    };
    let apis = req.ctx.apis.clone();
    // v10: an id no topic has is UNKNOWN_TOPIC_ID for its partitions, after
    // the group's authorization and before the topic's (Kafka's order).
    let known: Vec<bool> = r
        .topics
        .iter_mut()
        .map(|t| {
            if !by_id {
                return true;
            }
            topic_name_by_id(&apis, &t.topic_id)
                .map(|n| t.name = TopicName(s(n)))
                .is_some()
        })
        .collect();
    // Response skeleton in request order; None = still to be decided by
    // the coordinator.
    let mut codes: Vec<Vec<Option<i16>>> = Vec::with_capacity(r.topics.len());
    let mut parts = Vec::new();
    let group_ok = group_allowed(&req, AclOperation::Read, &r.group_id.0);
    for (t, known) in r.topics.iter().zip(known) {
        let mut tc = Vec::with_capacity(t.partitions.len());
        let topic_ok = known && topic_readable(&req, &t.name.0);
        for p in &t.partitions {
            if !group_ok {
                tc.push(Some(GROUP_DENIED));
            } else if !known {
                tc.push(Some(ResponseError::UnknownTopicId.code()));
            } else if !topic_ok {
                tc.push(Some(ResponseError::TopicAuthorizationFailed.code()));
            } else if partition_exists(&apis, &t.name.0, p.partition_index) {
                tc.push(None);
                parts.push(CommitPartition {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            } else {
                tc.push(Some(ResponseError::UnknownTopicOrPartition.code()));
            }
        }
        codes.push(tc);
    }
    let result = if parts.is_empty() {
        Ok((Vec::new(), None))
    } else {
        apis.groups.commit_offsets(
            Committer {
                group_id: &r.group_id.0,
                generation_id: r.generation_id_or_member_epoch,
                member_id: &r.member_id,
                group_instance_id: r.group_instance_id.as_deref(),
            },
            r.retention_time_ms,
            req.version(),
            &parts,
        )
    };
    Box::pin(async move {
        let decided = settle_commit(&apis, result, parts.len()).await;
        let mut it = decided.into_iter();
        let topics = r
            .topics
            .iter()
            .zip(codes)
            .map(|(t, tc)| {
                // v10 echoes the request's id (never a name).
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .zip(tc)
                            .map(|(p, c)| {
                                let code = c.unwrap_or_else(|| it.next().unwrap_or(0));
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        req.respond(&OffsetCommitResponse::default().with_topics(topics))
    })
}

/// TxnOffsetCommit: the offsets of a transaction, visible once its
/// COMMIT marker is written. As Kafka: unknown topic partitions get
/// UNKNOWN_TOPIC_OR_PARTITION; an empty group id INVALID_GROUP_ID; then
/// KIP-890 verification with the transaction coordinator (Kafka's
/// `scheduleTransactionalWriteOperation` verifies before the group is
/// looked at): the producer id must be the transactional id's
/// (INVALID_PRODUCER_ID_MAPPING), at its current epoch
/// (INVALID_PRODUCER_EPOCH), and the group's `__consumer_offsets` partition
/// in its open transaction (AddOffsetsToTxn; else TRANSACTION_ABORTABLE,
/// INVALID_TXN_STATE before v4), the error going to every partition; then
/// the coordinator validates the group and writes a transactional batch.
/// v6 (KIP-1319) names topics by id: an id no topic has is
/// UNKNOWN_TOPIC_ID for its partitions, after the transactional id's and
/// the group's authorization and before the topic's (Kafka's
/// `handleTxnOffsetCommitRequest`); the answer echoes the ids.
pub async fn txn_offset_commit(req: Request, body: Bytes) -> Pending {
    let by_id = req.version() >= TXN_OFFSETS_BY_ID_SINCE;
    let decoded = if by_id {
        crate::handlers::decode_own(&req, &body, offsets_by_id::read_txn_offset_commit)
    } else {
        crate::handlers::decode(&req.header, body)
            .map(|r: TxnOffsetCommitRequest| (r, Vec::new()))
            .map_err(|e| crate::handlers::malformed(&req, e))
    };
    let (mut r, ids) = match decoded {
        Ok(r) => r,
        Err(reply) => return ready(reply),
    };
    let apis = req.ctx.apis.clone();
    // v6: each topic's name from its id (`ids` is empty before v6).
    let known: Vec<bool> = r
        .topics
        .iter_mut()
        .enumerate()
        .map(|(i, t)| {
            let Some(id) = ids.get(i) else {
                return true;
            };
            topic_name_by_id(&apis, id)
                .map(|n| t.name = TopicName(s(n)))
                .is_some()
        })
        .collect();
    let mut codes: Vec<Vec<Option<i16>>> = Vec::with_capacity(r.topics.len());
    let mut parts = Vec::new();
    // WRITE on the transactional id, then READ on the group, then READ on
    // each topic.
    let refused_all = if !req.ctx.authorize(
        AclOperation::Write,
        ResourceType::TransactionalId,
        &r.transactional_id.0,
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed.code())
    } else if !group_allowed(&req, AclOperation::Read, &r.group_id.0) {
        Some(GROUP_DENIED)
    } else {
        None
    };
    for (t, known) in r.topics.iter().zip(known) {
        let mut tc = Vec::with_capacity(t.partitions.len());
        let topic_ok = known && topic_readable(&req, &t.name.0);
        for p in &t.partitions {
            if let Some(code) = refused_all {
                tc.push(Some(code));
            } else if !known {
                tc.push(Some(ResponseError::UnknownTopicId.code()));
            } else if !topic_ok {
                tc.push(Some(ResponseError::TopicAuthorizationFailed.code()));
            } else if partition_exists(&apis, &t.name.0, p.partition_index) {
                tc.push(None);
                parts.push(CommitPartition {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            } else {
                tc.push(Some(ResponseError::UnknownTopicOrPartition.code()));
            }
        }
        codes.push(tc);
    }
    let group_id = r.group_id.0.to_string();
    let result = if parts.is_empty() {
        Ok((Vec::new(), None))
    } else if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId.code())
    } else {
        let offsets_partition = apis.groups.partition_for(&group_id);
        // Asked of the transaction coordinator wherever it lives; its
        // TRANSACTION_ABORTABLE reaches clients before v4 as
        // INVALID_TXN_STATE (Kafka's
        // txnOffsetCommitRequestVersionToTransactionSupportedOperation).
        let asked = std::time::Instant::now();
        let unverified = apis
            .txn_verifier
            .verify(
                &r.transactional_id.0,
                r.producer_id.0,
                r.producer_epoch,
                &[(
                    crate::coordinator::group::OFFSETS_TOPIC.to_string(),
                    offsets_partition,
                )],
                SupportedOperation::for_txn_offset_commit(req.version()),
            )
            .await;
        req.note_off_thread(asked.elapsed());
        match unverified.into_values().next().map_or(Ok(()), Err) {
            Err(e) => {
                tracing::debug!(group = %group_id, transactional_id = %r.transactional_id.0, producer_id = r.producer_id.0, error = ?e, "TxnOffsetCommit refused by transaction verification");
                Err(e.code())
            }
            Ok(()) => apis.groups.txn_commit_offsets(
                Committer {
                    group_id: &group_id,
                    generation_id: r.generation_id,
                    member_id: &r.member_id,
                    group_instance_id: r.group_instance_id.as_deref(),
                },
                r.producer_id.0,
                r.producer_epoch,
                &parts,
                req.version(),
            ),
        }
    };
    Box::pin(async move {
        let decided = settle_commit(&apis, result, parts.len()).await;
        let mut it = decided.into_iter();
        if by_id {
            let topics = r
                .topics
                .iter()
                .zip(ids)
                .zip(codes)
                .map(|((t, id), tc)| {
                    let partitions = t.partitions.iter().zip(tc).map(|(p, c)| {
                        let code = c.unwrap_or_else(|| it.next().unwrap_or(0));
                        (p.partition_index, code)
                    });
                    (id, partitions.collect())
                })
                .collect();
            let answer = TxnOffsetCommitResponseV6 {
                throttle_time_ms: 0,
                topics,
            };
            return req.respond(&Written::<1>(answer.to_bytes()));
        }
        let topics = r
            .topics
            .iter()
            .zip(codes)
            .map(|(t, tc)| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .zip(tc)
                            .map(|(p, c)| {
                                let code = c.unwrap_or_else(|| it.next().unwrap_or(0));
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        req.respond(&TxnOffsetCommitResponse::default().with_topics(topics))
    })
}

// ---------------------------------------------------------------------------
// OffsetDelete
// ---------------------------------------------------------------------------

/// OffsetDelete, as Kafka's `handleOffsetDeleteRequest`: GROUP DELETE for the
/// request, TOPIC READ per topic; a topic that does not exist gets UNKNOWN_TOPIC_OR_PARTITION for each of its partitions, and
/// so does each partition the topic does not have; the rest goes to the
/// coordinator, whose group-level error (if any) is the whole answer.
pub fn offset_delete(req: Request, body: Bytes) -> Pending {
    let r: OffsetDeleteRequest = match crate::handlers::decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    if !group_allowed(&req, AclOperation::Delete, &r.group_id.0) {
        return ready(req.respond(&OffsetDeleteResponse::default().with_error_code(GROUP_DENIED)));
    }
    let apis: Arc<KafkaApis> = req.ctx.apis.clone();
    // Topics the client may not READ get TOPIC_AUTHORIZATION_FAILED for each
    // partition, without looking them up.
    let denied: Vec<bool> = r
        .topics
        .iter()
        .map(|t| {
            !req.ctx
                .authorize(AclOperation::Read, ResourceType::Topic, &t.name.0)
        })
        .collect();
    // Per requested partition: does it exist (and may the client read it)?
    let exists: Vec<Vec<bool>> = r
        .topics
        .iter()
        .zip(&denied)
        .map(|(t, denied)| {
            t.partitions
                .iter()
                .map(|p| !denied && partition_exists(&apis, &t.name.0, p.partition_index))
                .collect()
        })
        .collect();
    let asked: Vec<(String, Vec<i32>)> = r
        .topics
        .iter()
        .zip(&exists)
        .filter(|(_, e)| e.iter().any(|x| *x))
        .map(|(t, e)| {
            (
                t.name.0.to_string(),
                t.partitions
                    .iter()
                    .zip(e)
                    .filter(|(_, x)| **x)
                    .map(|(p, _)| p.partition_index)
                    .collect(),
            )
        })
        .collect();
    let result = apis.groups.delete_offsets(&r.group_id.0, &asked);
    Box::pin(async move {
        let (top, per_topic) = match result {
            Err(code) => (code, None),
            Ok((codes, wait)) => match durable(&apis, wait).await {
                Ok(()) => (0, Some(codes)),
                Err(code) => (code, None),
            },
        };
        if top != 0 {
            return req.respond(&OffsetDeleteResponse::default().with_error_code(top));
        }
        // The coordinator answers the asked topics in order, each with the
        // codes of its existing partitions in order.
        let mut asked_codes = per_topic.unwrap_or_default().into_iter();
        let topics = r
            .topics
            .iter()
            .zip(exists)
            .zip(denied)
            .map(|((t, e), denied)| {
                let missing = if denied {
                    ResponseError::TopicAuthorizationFailed.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                };
                let mut codes = if e.iter().any(|x| *x) {
                    asked_codes.next().unwrap_or_default().into_iter()
                } else {
                    Vec::new().into_iter()
                };
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .zip(e)
                            .map(|(p, exists)| {
                                let code = if exists {
                                    codes.next().unwrap_or(0)
                                } else {
                                    missing
                                };
                                OffsetDeleteResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        req.respond(&OffsetDeleteResponse::default().with_topics(topics))
    })
}
