//! ListOffsets: earliest, latest, max timestamp, and first offset at or after
//! a timestamp (through the time index). Each special timestamp from the
//! version that introduced it; v11 (KIP-1023, past the `kafka-protocol`
//! crate) is v10's layout, read and answered as v10.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, TopicName};
use kafka_protocol::ResponseError;

use uuid::Uuid;

use crate::broker::partition::Partition;
use crate::broker::topics::Topic;
use crate::handlers::metadata::known_elsewhere;
use crate::handlers::{decode_or_close, Reply, Request};
use crate::protocol::same_as::SameAsVersion;
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

/// The newest version the crate has; v11 is its layout.
const CRATE_MAX: i16 = 10;

/// The first version a special timestamp may be asked at (Kafka's
/// `ReplicaManager.timestampMinSupportedVersion`); `None` for a negative
/// timestamp Kafka does not know.
fn special_since(ts: i64) -> Option<i16> {
    match ts {
        LATEST | EARLIEST => Some(1),
        MAX_TIMESTAMP => Some(7),
        EARLIEST_LOCAL => Some(8),
        LATEST_TIERED => Some(9),
        EARLIEST_PENDING_UPLOAD => Some(11),
        _ => None,
    }
}

/// Kafka's `isListOffsetsTimestampUnsupported`: a special timestamp below
/// its version, or one Kafka does not know, is UNSUPPORTED_VERSION for the
/// partition, decided after authorization and before the partition is
/// looked up.
fn timestamp_unsupported(ts: i64, version: i16) -> bool {
    ts < 0 && special_since(ts).is_none_or(|since| version < since)
}

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
        // No tiered storage: nothing is tiered or pending upload (Kafka's
        // answer without remote storage: timestamp, offset and epoch -1).
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok((-1, -1)),
        MAX_TIMESTAMP => Ok(p
            .max_timestamp(read_committed)
            .map_err(err)?
            .unwrap_or((-1, -1))),
        t if t >= 0 => Ok(p
            .offset_for_timestamp(t, read_committed)
            .map_err(err)?
            .unwrap_or((-1, -1))),
        // Refused before (`timestamp_unsupported`).
        _ => Err(ResponseError::UnsupportedVersion),
    }
}

pub fn handle(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, ListOffsetsRequest);
    let apis = &req.ctx.apis;
    let duplicated = duplicate_partitions(&request.topics);
    // Kafka (`ReplicaManager.fetchOffset`) keys the answers of the
    // authorized topics by partition: one response topic per name and one
    // answer per partition, however often either is listed. Each refused
    // topic is answered as listed, after the authorized ones.
    let mut answered: Vec<ListOffsetsTopicResponse> = Vec::with_capacity(request.topics.len());
    let mut slot_of: HashMap<TopicName, usize> = HashMap::new();
    let mut refused_topics = Vec::new();
    for t in &request.topics {
        if !req
            .ctx
            .authorize(AclOperation::Describe, ResourceType::Topic, &t.name.0)
        {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    unanswered(p.partition_index)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                })
                .collect();
            refused_topics.push(
                ListOffsetsTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(parts),
            );
            continue;
        }
        let topic = apis.replicas.topics.get(&t.name.0);
        let slot = *slot_of.entry(t.name.clone()).or_insert_with(|| {
            answered.push(ListOffsetsTopicResponse::default().with_name(t.name.clone()));
            answered.len() - 1
        });
        for p in &t.partitions {
            let index = p.partition_index;
            let r = if duplicated.contains(&(t.name.0.as_str(), index)) {
                // Asked again: already answered INVALID_REQUEST once.
                if answered[slot]
                    .partitions
                    .iter()
                    .any(|r| r.partition_index == index)
                {
                    continue;
                }
                unanswered(index).with_error_code(ResponseError::InvalidRequest.code())
            } else {
                answer(req, &request, topic.as_deref(), &t.name.0, p)
            };
            answered[slot].partitions.push(r);
        }
    }
    answered.append(&mut refused_topics);
    req.respond(&SameAsVersion::<CRATE_MAX, _>(
        ListOffsetsResponse::default().with_topics(answered),
    ))
}

/// Kafka's `ListOffsetsRequest.duplicatePartitions`: every partition
/// listed more than once, across all topic entries.
fn duplicate_partitions(topics: &[ListOffsetsTopic]) -> HashSet<(&str, i32)> {
    let mut seen = HashSet::new();
    let mut duplicated = HashSet::new();
    for t in topics {
        for p in &t.partitions {
            let key = (t.name.0.as_str(), p.partition_index);
            if !seen.insert(key) {
                duplicated.insert(key);
            }
        }
    }
    duplicated
}

fn unanswered(index: i32) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default()
        .with_partition_index(index)
        .with_timestamp(-1)
        .with_offset(-1)
        .with_leader_epoch(-1)
}

/// One authorized partition asked for once.
fn answer(
    req: &Request,
    request: &ListOffsetsRequest,
    topic: Option<&Topic>,
    name: &str,
    p: &ListOffsetsPartition,
) -> ListOffsetsPartitionResponse {
    let mut r = unanswered(p.partition_index);
    let partition = topic.and_then(|t| t.partition(p.partition_index));
    let fenced = partition.and_then(|part| part.check_leader_epoch(p.current_leader_epoch).err());
    match partition {
        _ if timestamp_unsupported(p.timestamp, req.version()) => {
            r.error_code = ResponseError::UnsupportedVersion.code()
        }
        // Another broker's replica in a cluster.
        None if known_elsewhere(req, Some(name), Uuid::nil(), p.partition_index) => {
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
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_timestamps_from_their_version() {
        // Kafka's table: -1/-2 from v1, -3 v7, -4 v8, -5 v9, -6 v11.
        for (ts, since) in [(-1, 1), (-2, 1), (-3, 7), (-4, 8), (-5, 9), (-6, 11)] {
            assert!(
                timestamp_unsupported(ts, since - 1),
                "{ts} at v{}",
                since - 1
            );
            assert!(!timestamp_unsupported(ts, since), "{ts} at v{since}");
            assert!(!timestamp_unsupported(ts, 11), "{ts} at v11");
        }
        for ts in [-7, -100, i64::MIN] {
            assert!(timestamp_unsupported(ts, 11), "{ts}");
        }
        for ts in [0, 1, i64::MAX] {
            assert!(!timestamp_unsupported(ts, 1), "{ts}");
        }
    }
}
