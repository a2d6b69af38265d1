//! ListOffsets: earliest, latest, max timestamp, and first offset at or after
//! a timestamp (through the time index).

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use uuid::Uuid;

use crate::broker::partition::Partition;
use crate::handlers::metadata::known_elsewhere;
use crate::handlers::{decode_or_close, Reply, Request};
use crate::security::acl::{AclOperation, ResourceType};

/// Kafka's special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// Kafka's `ListOffsetsRequest.DEBUGGING_REPLICA_ID`: may ask any replica.
const DEBUGGING_REPLICA_ID: i32 = -2;

fn lookup(
    p: &Partition,
    ts: i64,
    read_committed: bool,
    from_follower: bool,
) -> Result<(i64, i64), ResponseError> {
    let state = p.state();
    let err = |e: crate::broker::partition::PartitionError| e.code();
    match ts {
        // A follower's out-of-range handling asks for the log end itself
        // (Kafka's `FetchLogEnd` isolation for replicas).
        LATEST if from_follower => p
            .log_end_offset()
            .map(|end| (-1, end))
            .ok_or(ResponseError::NotLeaderOrFollower),
        LATEST if read_committed => Ok((-1, state.last_stable_offset())),
        LATEST => Ok((-1, state.high_watermark)),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, state.log_start_offset)),
        // No tiered storage: nothing is tiered or pending upload.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok((-1, -1)),
        MAX_TIMESTAMP => Ok(p
            .max_timestamp(read_committed)
            .map_err(err)?
            .unwrap_or((-1, -1))),
        t if t >= 0 => Ok(p
            .offset_for_timestamp(t, read_committed)
            .map_err(err)?
            .unwrap_or((-1, -1))),
        _ => Err(ResponseError::InvalidRequest),
    }
}

pub fn handle(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, ListOffsetsRequest);
    let apis = &req.ctx.apis;
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let topic = apis.replicas.topics.get(&t.name.0);
        let refused = !req
            .ctx
            .authorize(AclOperation::Describe, ResourceType::Topic, &t.name.0);
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let mut r = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let partition = topic.as_ref().and_then(|t| t.partition(p.partition_index));
            let fenced =
                partition.and_then(|part| part.check_leader_epoch(p.current_leader_epoch).err());
            match partition {
                _ if refused => r.error_code = ResponseError::TopicAuthorizationFailed.code(),
                // Another broker's replica in a cluster.
                None if known_elsewhere(req, Some(&t.name.0), Uuid::nil(), p.partition_index) => {
                    r.error_code = ResponseError::NotLeaderOrFollower.code()
                }
                None => r.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(_) if fenced.is_some() => r.error_code = fenced.map_or(0, |e| e.code()),
                Some(part) if !part.is_leader() && request.replica_id.0 != DEBUGGING_REPLICA_ID => {
                    r.error_code = ResponseError::NotLeaderOrFollower.code()
                }
                Some(part) => match lookup(
                    part,
                    p.timestamp,
                    request.isolation_level == 1,
                    request.replica_id.0 >= 0,
                ) {
                    Ok((ts, offset)) => {
                        r.timestamp = ts;
                        r.offset = offset;
                        // The field exists from v4; older versions must leave it at -1.
                        if req.version() >= 4 && offset >= 0 {
                            r.leader_epoch = part.epoch_for_offset(offset).unwrap_or(-1);
                        }
                    }
                    Err(code) => r.error_code = code.code(),
                },
            }
            parts.push(r);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(parts),
        );
    }
    req.respond(&ListOffsetsResponse::default().with_topics(topics))
}
