//! Fetch: reads up to the high watermark (the last stable offset for
//! read_committed), Kafka's byte limits with the at-least-one-batch rule, and
//! long polling woken by high-watermark changes rather than a timer.
//!
//! Fetch sessions (KIP-227) as Kafka keeps them (`broker::fetch_session`):
//! a full fetch at epoch 0 opens a session when the cache has room, epoch -1
//! closes it (sessionless), and an incremental fetch reads every partition of
//! the session with its cached offsets and answers only those with records,
//! a changed high watermark or log start offset, or an error. Long polling
//! waits on all the session's partitions. Followers (replica fetches) send
//! sessionless fetches; a follower's session, if it asks for one, is
//! privileged in eviction.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select_all;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::time::Instant;
use uuid::Uuid;

use crate::broker::fetch_session::{
    CachedPartition, FetchContext, FetchMetadata, PartitionKey, FINAL_EPOCH, INVALID_SESSION_ID,
};
use crate::broker::partition::{FetchRead, Partition, PartitionError, NO_LEADER_EPOCH};
use crate::broker::quota_managers::QuotaType;
use crate::broker::topics::Topic;
use crate::broker::ReplicaManager;
use crate::handlers::{decode, malformed, ready, Pending, Request};
use crate::metrics::BrokerMetrics;
use crate::protocol::response::{placeholder, FileRegion, RecordSource, MIN_SHARED_CHUNK};
use crate::security::acl::{AclOperation, ResourceType};

const READ_COMMITTED: i8 = 1;

struct PartitionTarget {
    index: i32,
    fetch_offset: i64,
    partition_max_bytes: i32,
    current_leader_epoch: i32,
    /// v12+: the epoch of the fetcher's last fetched batch (`None`: -1 or
    /// an older version).
    last_fetched_epoch: Option<i32>,
    /// The follower's log start offset (replica fetches).
    log_start_offset: i64,
}

/// A follower's fetch (Kafka's `FetchParams.isFromFollower`): replica id
/// ≥ 0 (v<15) or a ReplicaState (v15+).
#[derive(Clone, Copy)]
struct FollowerFetch {
    replica_id: i32,
    broker_epoch: i64,
}

struct TopicTarget {
    name: TopicName,
    id: Uuid,
    topic: Option<Arc<Topic>>,
    /// The client may not READ the topic (TOPIC_AUTHORIZATION_FAILED).
    refused: bool,
    partitions: Vec<PartitionTarget>,
}

/// A partition Kafka refuses before reading (unknown topic, topic id or
/// partition: `FetchResponse.partitionResponse`): offsets -1, an empty
/// aborted-transactions list.
fn error_partition(index: i32, code: ResponseError) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_preferred_read_replica(BrokerId(-1))
        // librdkafka rejects a null record set, even on errors.
        .with_records(Some(Bytes::new()))
}

/// A partition whose read failed (offset out of range, leader epoch,
/// storage), as Kafka's `ReplicaManager.readFromLog` answers it: offsets
/// -1 (Kafka's LogReadResult for an exception knows none) and no
/// aborted-transactions list at all (null).
fn read_error_partition(index: i32, code: ResponseError) -> PartitionData {
    error_partition(index, code).with_aborted_transactions(None)
}

mod preferred_replica;
use preferred_replica::{preferred_read_replica, ClientMetadata};

struct ReadPass {
    topics: Vec<FetchableTopicResponse>,
    /// The non-empty record sets in response order, for the chunked encoder.
    records: Vec<RecordSource>,
    bytes: usize,
    /// Any partition answered with an error, a diverging epoch or a
    /// preferred read replica: Kafka responds at once.
    error: bool,
    /// KIP-951: the leaders named in `current_leader` hints (v16+).
    node_endpoints: Vec<NodeEndpoint>,
}

/// KIP-951 (Fetch v16+): a client refused by a non-leader learns the leader
/// this replica knows and where it listens.
fn add_leader_hint(
    data: PartitionData,
    partition: &crate::broker::partition::Partition,
    endpoints: &mut Vec<NodeEndpoint>,
) -> PartitionData {
    let Some(hint) = partition.leader_hint() else {
        return data;
    };
    if !endpoints.iter().any(|n| n.node_id.0 == hint.leader_id) {
        endpoints.push(
            NodeEndpoint::default()
                .with_node_id(BrokerId(hint.leader_id))
                .with_host(StrBytes::from_string(hint.host))
                .with_port(hint.port),
        );
    }
    data.with_current_leader(
        LeaderIdAndEpoch::default()
            .with_leader_id(BrokerId(hint.leader_id))
            .with_leader_epoch(hint.leader_epoch),
    )
}

/// What every read pass of one Fetch request shares.
struct ReadScope<'a> {
    replicas: &'a ReplicaManager,
    targets: &'a [TopicTarget],
    read_committed: bool,
    by_id: bool,
    follower: Option<FollowerFetch>,
    version: i16,
    client: Option<ClientMetadata>,
}

fn read_pass(scope: &ReadScope<'_>, max_bytes: usize) -> ReadPass {
    let (replicas, targets, read_committed, by_id, follower, version) = (
        scope.replicas,
        scope.targets,
        scope.read_committed,
        scope.by_id,
        scope.follower,
        scope.version,
    );
    let mut total = 0usize;
    // A preferred read replica or a diverging epoch is answered at once
    // (Kafka's `hasPreferredReadReplica`, `hasDivergingEpoch`).
    let mut immediate = false;
    let mut node_endpoints = Vec::new();
    let mut error = false;
    let mut topics = Vec::with_capacity(targets.len());
    let mut records = Vec::new();
    for t in targets {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for pt in &t.partitions {
            if t.refused {
                error = true;
                parts.push(error_partition(
                    pt.index,
                    ResponseError::TopicAuthorizationFailed,
                ));
                continue;
            }
            let partition = match t.topic.as_ref() {
                None => {
                    error = true;
                    let code = if by_id {
                        ResponseError::UnknownTopicId
                    } else {
                        ResponseError::UnknownTopicOrPartition
                    };
                    parts.push(error_partition(pt.index, code));
                    continue;
                }
                Some(topic) => match topic.partition(pt.index) {
                    Some(p) => p,
                    None => {
                        error = true;
                        parts.push(error_partition(
                            pt.index,
                            ResponseError::UnknownTopicOrPartition,
                        ));
                        continue;
                    }
                },
            };
            if let Err(code) = partition.check_leader_epoch(pt.current_leader_epoch) {
                error = true;
                parts.push(read_error_partition(pt.index, code));
                continue;
            }
            // Kafka's `Partition.readRecords`: a diverging fetcher gets the
            // epoch to truncate to and no records (a follower's fetch state
            // is then not updated).
            // A v11+ consumer may read from a follower (Kafka's
            // `fetchOnlyLeader` is false once client metadata is present).
            let from_follower_ok = follower.is_none() && scope.client.is_some();
            let diverging = if follower.is_some() || partition.is_leader() || from_follower_ok {
                partition.diverging_epoch(
                    pt.current_leader_epoch,
                    pt.last_fetched_epoch,
                    pt.fetch_offset,
                )
            } else {
                Ok(None)
            };
            match diverging {
                Ok(None) => {}
                Ok(Some((epoch, end_offset))) => {
                    parts.push(
                        offsets_only(partition, pt.index).with_diverging_epoch(
                            EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset),
                        ),
                    );
                    immediate = true;
                    continue;
                }
                Err(code) => {
                    error = true;
                    parts.push(read_error_partition(pt.index, code));
                    continue;
                }
            }
            if let Some(f) = follower {
                if let Err(code) = replicas.record_follower_fetch(
                    partition,
                    f.replica_id,
                    pt.fetch_offset,
                    pt.log_start_offset,
                    f.broker_epoch,
                    pt.current_leader_epoch != NO_LEADER_EPOCH,
                ) {
                    error = true;
                    parts.push(read_error_partition(pt.index, code));
                    continue;
                }
            } else if let Some(preferred) = scope
                .client
                .as_ref()
                .filter(|_| partition.is_leader())
                .and_then(|c| preferred_read_replica(partition, c, pt.fetch_offset))
            {
                // The closest replica serves this consumer: no records, the
                // offsets it needs, and where to go.
                parts.push(
                    offsets_only(partition, pt.index)
                        .with_preferred_read_replica(BrokerId(preferred)),
                );
                immediate = true;
                continue;
            } else if !partition.is_leader() && !from_follower_ok {
                // Before Fetch v11 (no client metadata) only the leader
                // serves consumers.
                error = true;
                let data = read_error_partition(pt.index, ResponseError::NotLeaderOrFollower);
                parts.push(if version >= 16 {
                    add_leader_hint(data, partition, &mut node_endpoints)
                } else {
                    data
                });
                continue;
            }
            let remaining = max_bytes.saturating_sub(total);
            let limit = (pt.partition_max_bytes.max(0) as usize).min(remaining);
            // KIP-74: the first partition with data returns at least one
            // batch even if it exceeds the limits, so consumers never stall.
            let min_one = total == 0;
            let read = if let Some(f) = follower {
                let read = partition.fetch_for_follower(pt.fetch_offset, limit, min_one);
                if should_leader_throttle(replicas, partition, f.replica_id) {
                    // Kafka answers a throttled partition with no records.
                    read.map(|r| FetchRead { plan: None, ..r })
                } else {
                    read
                }
            } else {
                partition.fetch_isolated(pt.fetch_offset, limit, min_one, read_committed)
            };
            let data = match read {
                Ok(read) => match record_source(&read) {
                    Ok((field, source)) => {
                        total += field.len();
                        if let Some(source) = source {
                            records.push(source);
                        }
                        PartitionData::default()
                            .with_partition_index(pt.index)
                            .with_high_watermark(read.high_watermark)
                            .with_last_stable_offset(read.last_stable_offset)
                            .with_log_start_offset(read.log_start_offset)
                            .with_preferred_read_replica(BrokerId(-1))
                            .with_aborted_transactions(read_committed.then(|| {
                                read.aborted
                                    .iter()
                                    .map(|a| {
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(a.producer_id))
                                            .with_first_offset(a.first_offset)
                                    })
                                    .collect()
                            }))
                            .with_records(Some(field))
                    }
                    Err(e) => {
                        error = true;
                        tracing::error!(topic = %partition.topic, partition = pt.index, error = %e, "reading log");
                        read_error_partition(pt.index, ResponseError::KafkaStorageError)
                    }
                },
                Err(e) => {
                    error = true;
                    if !matches!(e, PartitionError::OffsetOutOfRange { .. }) {
                        tracing::warn!(topic = %partition.topic, partition = pt.index, error = %e, "fetch failed");
                    }
                    read_error_partition(pt.index, e.code())
                }
            };
            parts.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(t.name.clone())
                .with_topic_id(t.id)
                .with_partitions(parts),
        );
    }
    ReadPass {
        topics,
        records,
        bytes: total,
        error: error || immediate,
        node_endpoints,
    }
}

/// What a partition's record set looks like in the response body, and where
/// its bytes come from: a file region sent with sendfile (the body holds a
/// same-length placeholder), or, for small or oversized sets, bytes read
/// into memory now.
fn record_source(read: &FetchRead) -> std::io::Result<(Bytes, Option<RecordSource>)> {
    let Some(plan) = read.plan.as_ref().filter(|p| !p.is_empty()) else {
        return Ok((Bytes::new(), None));
    };
    if plan.len >= MIN_SHARED_CHUNK {
        if let Some(stand_in) = placeholder(plan.len) {
            let region = FileRegion {
                file: plan.file.clone(),
                position: plan.position,
                len: plan.len,
            };
            return Ok((stand_in, Some(RecordSource::File(region))));
        }
    }
    let bytes = plan.read()?;
    Ok((bytes.clone(), Some(RecordSource::Mem(bytes))))
}

/// Answers with the pass's data; record sets go out by reference.
/// Counts a Fetch response: record bytes out per partition and the
/// per-partition error codes. `targets` are the requested topics in the
/// response's order.
fn count_fetch(
    metrics: &BrokerMetrics,
    targets: &[TopicTarget],
    response: &[FetchableTopicResponse],
) {
    for (target, t) in targets.iter().zip(response) {
        for p in &t.partitions {
            metrics.fetch_errors.add(p.error_code);
            let bytes = p.records.as_ref().map_or(0, |r| r.len());
            let part = target
                .topic
                .as_ref()
                .and_then(|topic| topic.partition(p.partition_index));
            if let Some(part) = part {
                part.metrics.fetched(bytes);
            }
        }
    }
}

/// Kafka's `shouldLeaderThrottle`: a follower not in the ISR, fetching a
/// partition whose leader replica here is throttled, while the leader
/// replication quota is exceeded.
fn should_leader_throttle(replicas: &ReplicaManager, partition: &Partition, replica: i32) -> bool {
    partition
        .settings()
        .leader_throttled
        .contains(partition.index)
        && replicas.replication_quotas.leader.is_quota_exceeded()
        && !partition.replica_set().1.contains(&replica)
}

/// Records the bytes of throttled partitions a follower is sent against
/// the leader replication quota (Kafka's `sizeOfThrottledPartitions`).
fn record_leader_replication(
    req: &Request,
    targets: &[TopicTarget],
    topics: &[FetchableTopicResponse],
) {
    let mut bytes = 0;
    for (t, r) in targets.iter().zip(topics) {
        let Some(topic) = t.topic.as_ref() else {
            continue;
        };
        for p in &r.partitions {
            let throttled = topic
                .partition(p.partition_index)
                .is_some_and(|part| part.settings().leader_throttled.contains(p.partition_index));
            if throttled {
                bytes += p.records.as_ref().map_or(0, |b| b.len());
            }
        }
    }
    if bytes > 0 {
        req.ctx
            .apis
            .replicas
            .replication_quotas
            .leader
            .record(bytes);
    }
}

/// How the answer relates to a fetch session (what is left of Kafka's
/// `FetchContext` once the partitions to read are known).
enum Answer {
    /// No session: every partition read, session id 0.
    Sessionless,
    /// Every partition read; not throttled, the answer opens a session
    /// with `reads` (the partitions in response order) if the cache has
    /// room.
    Full {
        uses_topic_ids: bool,
        privileged: bool,
        reads: Vec<CachedPartition>,
    },
    /// Only the partitions Kafka's `CachedPartition.maybeUpdateResponseData`
    /// selects go out.
    Incremental {
        session_id: i32,
        expected_epoch: i32,
        uses_topic_ids: bool,
    },
}

/// The response's top-level error, session id and topics for `answer`.
/// With `update` (the response really goes out) a full fetch opens its
/// session and an incremental one updates the session's cached state;
/// without, nothing changes (Kafka's `getResponseSize`).
fn session_answer(
    apis: &crate::handlers::KafkaApis,
    answer: &Answer,
    topics: Vec<FetchableTopicResponse>,
    update: bool,
) -> (i16, i32, Vec<FetchableTopicResponse>) {
    match answer {
        Answer::Sessionless => (0, INVALID_SESSION_ID, topics),
        Answer::Full {
            uses_topic_ids,
            privileged,
            reads,
        } => {
            if !update {
                return (0, INVALID_SESSION_ID, topics);
            }
            let cached = reads
                .iter()
                .cloned()
                .zip(topics.iter().flat_map(|t| t.partitions.iter()))
                .collect();
            let id = apis.fetch_sessions.create_session(
                crate::util::now_ms(),
                *privileged,
                *uses_topic_ids,
                cached,
            );
            (0, id, topics)
        }
        Answer::Incremental {
            session_id,
            expected_epoch,
            uses_topic_ids,
        } => {
            let keys: Vec<(PartitionKey, &PartitionData)> = topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        let key = PartitionKey::new(
                            *uses_topic_ids,
                            t.topic_id,
                            &t.topic.0,
                            p.partition_index,
                        );
                        (key, p)
                    })
                })
                .collect();
            let Some(keep) =
                apis.fetch_sessions
                    .select_incremental(*session_id, *expected_epoch, &keys, update)
            else {
                // The session moved on while this request waited.
                return (
                    ResponseError::InvalidFetchSessionEpoch.code(),
                    *session_id,
                    Vec::new(),
                );
            };
            let mut keep = keep.into_iter();
            let topics = topics
                .into_iter()
                .filter_map(|mut t| {
                    t.partitions.retain(|_| keep.next().unwrap_or(true));
                    (!t.partitions.is_empty()).then_some(t)
                })
                .collect();
            (0, *session_id, topics)
        }
    }
}

/// The empty throttled answer (Kafka's `getThrottledResponse`): an
/// incremental session's own id (INVALID_FETCH_SESSION_EPOCH if the session
/// moved on meanwhile), else no session.
fn throttled_response(
    apis: &crate::handlers::KafkaApis,
    answer: &Answer,
    throttle: i32,
) -> FetchResponse {
    let response = FetchResponse::default().with_throttle_time_ms(throttle);
    match answer {
        Answer::Incremental {
            session_id,
            expected_epoch,
            ..
        } => {
            let error = if apis
                .fetch_sessions
                .epoch_unchanged(*session_id, *expected_epoch)
            {
                0
            } else {
                ResponseError::InvalidFetchSessionEpoch.code()
            };
            response.with_session_id(*session_id).with_error_code(error)
        }
        _ => response.with_session_id(INVALID_SESSION_ID),
    }
}

/// Answers with the pass's data, unless the client's fetch quota is
/// exceeded: then, as Kafka, the size is taken back off the quota and the
/// answer is empty, carrying the throttle time. A follower's fetch is not
/// under the client fetch quota. An incremental session's answer carries
/// only the partitions with something new.
fn respond(
    req: &Request,
    targets: &[TopicTarget],
    pass: ReadPass,
    from_follower: bool,
    answer: &Answer,
) -> crate::handlers::Reply {
    if from_follower {
        record_leader_replication(req, targets, &pass.topics);
    }
    let apis = &req.ctx.apis;
    let build = |error: i16, session_id: i32, topics: Vec<FetchableTopicResponse>| {
        FetchResponse::default()
            .with_error_code(error)
            .with_session_id(session_id)
            .with_node_endpoints(pass.node_endpoints.clone())
            .with_responses(topics)
    };
    if !from_follower && req.quotas_enabled() {
        let (error, session_id, topics) = session_answer(apis, answer, pass.topics.clone(), false);
        let records: &[RecordSource] = if topics.is_empty() {
            &[]
        } else {
            &pass.records
        };
        let reply = req.respond_sharing(&build(error, session_id, topics), records);
        if let crate::handlers::Reply::Chunks(chunks) = &reply {
            // Kafka records the whole response's size.
            let size = chunks.iter().map(|c| c.len()).sum::<usize>() as f64;
            let throttle = req.record_quota(QuotaType::Fetch, size);
            if throttle > 0 {
                req.unrecord_quota(QuotaType::Fetch, size);
                req.throttle(QuotaType::Fetch, throttle);
                return req.respond(&throttled_response(apis, answer, throttle));
            }
        }
        if matches!(answer, Answer::Sessionless) {
            count_fetch(&apis.metrics, targets, &pass.topics);
            return reply;
        }
    }
    count_fetch(&apis.metrics, targets, &pass.topics);
    let (error, session_id, topics) = session_answer(apis, answer, pass.topics, true);
    let records: &[RecordSource] = if topics.is_empty() {
        &[]
    } else {
        &pass.records
    };
    req.respond_sharing(&build(error, session_id, topics), records)
}

/// The fetch's answer, and whether it comes from a follower (Kafka's
/// `FetchRequest.isFromFollower`: replica id ≥ 0 at v<15, the ReplicaState's
/// at v15+), whose answer Kafka sends exempt from the request quota and
/// without the client fetch quota (replication has its own throttle).
pub fn handle(req: Request, body: Bytes) -> (Pending, bool) {
    let request: FetchRequest = match decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return (ready(malformed(&req, e)), false),
    };
    let follower = follower_of(&request, req.version());
    (handle_decoded(req, request, follower), follower.is_some())
}

fn follower_of(request: &FetchRequest, version: i16) -> Option<FollowerFetch> {
    if version >= 15 {
        (request.replica_state.replica_id.0 >= 0).then_some(FollowerFetch {
            replica_id: request.replica_state.replica_id.0,
            broker_epoch: request.replica_state.replica_epoch,
        })
    } else {
        (request.replica_id.0 >= 0).then_some(FollowerFetch {
            replica_id: request.replica_id.0,
            broker_epoch: -1,
        })
    }
}

/// The partitions a request names, flattened in request order, each with
/// its topic's name (by id at v13+: empty when the id is unknown).
fn requested_partitions(
    apis: &crate::handlers::KafkaApis,
    request: &FetchRequest,
    by_id: bool,
) -> Vec<CachedPartition> {
    let mut out = Vec::new();
    for t in &request.topics {
        let name = if by_id {
            apis.replicas
                .topics
                .get_by_id(&t.topic_id)
                .map(|x| x.name.clone())
                .unwrap_or_default()
        } else {
            t.topic.0.to_string()
        };
        for p in &t.partitions {
            out.push(CachedPartition::requested(
                name.clone(),
                t.topic_id,
                p.partition,
                p.fetch_offset,
                p.log_start_offset,
                p.partition_max_bytes,
                p.current_leader_epoch,
                p.last_fetched_epoch,
            ));
        }
    }
    out
}

/// The partitions to read as topics: consecutive partitions of one topic
/// make one topic (as Kafka's `FetchResponse.of` groups them), each
/// resolved against the topic registry and checked for READ.
fn topic_targets(req: &Request, reads: &[CachedPartition], by_id: bool) -> Vec<TopicTarget> {
    let apis = &req.ctx.apis;
    let mut targets: Vec<TopicTarget> = Vec::new();
    for p in reads {
        let same = targets.last().is_some_and(|t| {
            if by_id {
                t.id == p.topic_id
            } else {
                t.name.0.as_str() == p.topic
            }
        });
        if !same {
            let topic = if by_id {
                apis.replicas.topics.get_by_id(&p.topic_id)
            } else {
                apis.replicas.topics.get(&p.topic)
            };
            // READ on the topic, by name (an unknown id stays unknown).
            let name = if by_id {
                topic.as_ref().map(|x| x.name.clone())
            } else {
                Some(p.topic.clone())
            };
            let refused = name.is_some_and(|n| {
                !req.ctx
                    .authorize(AclOperation::Read, ResourceType::Topic, &n)
            });
            targets.push(TopicTarget {
                name: TopicName(StrBytes::from_string(p.topic.clone())),
                id: p.topic_id,
                topic,
                refused,
                partitions: Vec::new(),
            });
        }
        if let Some(t) = targets.last_mut() {
            t.partitions.push(PartitionTarget {
                index: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.max_bytes,
                current_leader_epoch: p.leader_epoch,
                last_fetched_epoch: (p.last_fetched_epoch >= 0).then_some(p.last_fetched_epoch),
                log_start_offset: p.fetcher_log_start_offset,
            });
        }
    }
    targets
}

fn handle_decoded(req: Request, request: FetchRequest, follower: Option<FollowerFetch>) -> Pending {
    let version = req.version();
    let by_id = version >= 13;
    let apis = req.ctx.apis.clone();
    // Before v7 there are no sessions (Kafka's `FetchMetadata.LEGACY`).
    let metadata = if version >= 7 {
        FetchMetadata {
            session_id: request.session_id,
            epoch: request.session_epoch,
        }
    } else {
        FetchMetadata {
            session_id: INVALID_SESSION_ID,
            epoch: FINAL_EPOCH,
        }
    };
    let requested = requested_partitions(&apis, &request, by_id);
    let to_forget: Vec<PartitionKey> = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |&p| PartitionKey::new(by_id, t.topic_id, &t.topic.0, p))
        })
        .collect();
    let context = apis.fetch_sessions.new_context(
        version,
        metadata,
        follower.is_some(),
        &requested,
        &to_forget,
        crate::util::now_ms(),
    );
    let (reads, answer) = match context {
        FetchContext::SessionError(code) => {
            return ready(
                req.respond(
                    &FetchResponse::default()
                        .with_error_code(code.code())
                        .with_session_id(INVALID_SESSION_ID),
                ),
            );
        }
        FetchContext::Sessionless => (requested, Answer::Sessionless),
        FetchContext::Full {
            uses_topic_ids,
            privileged,
        } => (
            requested.clone(),
            Answer::Full {
                uses_topic_ids,
                privileged,
                reads: requested,
            },
        ),
        FetchContext::Incremental {
            session_id,
            expected_epoch,
            uses_topic_ids,
            partitions,
        } => (
            partitions,
            Answer::Incremental {
                session_id,
                expected_epoch,
                uses_topic_ids,
            },
        ),
    };
    let targets = topic_targets(&req, &reads, by_id);
    let read_committed = request.isolation_level == READ_COMMITTED;
    // Kafka authorizes a follower's fetch as CLUSTER_ACTION on the cluster
    // only (`KafkaApis.handleFetchRequest`): not READ on each topic.
    let targets: Vec<TopicTarget> = if follower.is_some() {
        let refused = !req.ctx.authorize_cluster(AclOperation::ClusterAction);
        targets
            .into_iter()
            .map(|t| TopicTarget { refused, ..t })
            .collect()
    } else {
        targets
    };
    // Kafka caps a response at the broker's fetch.max.bytes whatever the
    // client asks (the at-least-one-batch rule still applies).
    let mut max_bytes = (request.max_bytes.max(0) as usize).min(apis.config.fetch_max_bytes);
    // Nor more than the fetch quota allows on an idle window, which would
    // be throttled whatever else the client did (Kafka's
    // `getMaxValueInQuotaWindow`); a follower is not under it.
    if follower.is_none() {
        if let Some(cap) = req.max_value_in_quota_window(QuotaType::Fetch) {
            max_bytes = max_bytes.min(cap as usize);
        }
    }
    let min_bytes = request.min_bytes.max(0) as usize;
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);

    let client = (follower.is_none() && version >= 11).then(|| ClientMetadata {
        rack: request.rack_id.to_string(),
        listener: req.ctx.listener.clone(),
        rack_aware: apis.rack_aware_reads,
        // The image only matters to a selector.
        image: apis
            .cluster
            .as_ref()
            .filter(|_| apis.rack_aware_reads)
            .map(|c| c.image()),
    });

    Box::pin(async move {
        let scope = ReadScope {
            replicas: &apis.replicas,
            targets: &targets,
            read_committed,
            by_id,
            follower,
            version,
            client,
        };
        loop {
            // Subscribe before reading so an append between the read and
            // the wait still wakes us.
            let mut watches: Vec<_> = targets
                .iter()
                .filter_map(|t| t.topic.as_ref().map(|topic| (topic, &t.partitions)))
                .flat_map(|(topic, parts)| {
                    parts
                        .iter()
                        .filter_map(|p| topic.partition(p.index).map(|x| x.subscribe()))
                })
                .collect();
            let pass = read_pass(&scope, max_bytes);
            if pass.bytes >= min_bytes
                || pass.error
                || Instant::now() >= deadline
                || watches.is_empty()
            {
                return respond(&req, &targets, pass, follower.is_some(), &answer);
            }
            let any_change = select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
            let woken = tokio::select! {
                r = tokio::time::timeout_at(deadline, any_change) => r.is_ok(),
                _ = apis.replicas.stopping() => false,
            };
            if !woken {
                // Deadline or shutdown: answer with whatever is there now.
                let pass = read_pass(&scope, max_bytes);
                return respond(&req, &targets, pass, follower.is_some(), &answer);
            }
        }
    })
}

/// A partition's answer without records: its offsets only, for a consumer
/// sent elsewhere (a diverging epoch, a preferred read replica).
fn offsets_only(partition: &Partition, index: i32) -> PartitionData {
    let s = partition.state();
    PartitionData::default()
        .with_partition_index(index)
        .with_high_watermark(s.high_watermark)
        .with_last_stable_offset(s.last_stable_offset())
        .with_log_start_offset(s.log_start_offset)
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(Some(Bytes::new()))
}
