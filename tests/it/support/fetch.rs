//! Fetch and ListOffsets helpers: one partition fetched with the limits a
//! test chooses (or the defaults below), its batches, a whole partition read
//! batch by batch, and the earliest / latest / by-timestamp offsets.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchResponse, PartitionData};
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::BrokerId;
use uuid::Uuid;

use super::{batch_base_offset, batch_last_offset_delta, split_batches, tn, Client, NONE};

/// Isolation levels of Fetch and ListOffsets.
pub const READ_UNCOMMITTED: i8 = 0;
pub const READ_COMMITTED: i8 = 1;

/// What a one-partition Fetch asks for. The defaults (v12, no wait, 50 MiB
/// per response, 8 MiB per partition) are far above the logs tests fetch
/// unless a test is about those limits.
pub struct FetchArgs {
    pub version: i16,
    pub offset: i64,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub isolation_level: i8,
    /// Sent from v13 on (where the topic is named by id only).
    pub topic_id: Uuid,
}

impl Default for FetchArgs {
    fn default() -> Self {
        FetchArgs {
            version: 12,
            offset: 0,
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 50 << 20,
            partition_max_bytes: 8 << 20,
            isolation_level: READ_UNCOMMITTED,
            topic_id: Uuid::nil(),
        }
    }
}

pub fn fetch_request(topic: &str, partition: i32, a: &FetchArgs) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(a.max_wait_ms)
        .with_min_bytes(a.min_bytes)
        .with_max_bytes(a.max_bytes)
        .with_isolation_level(a.isolation_level)
        .with_topics(vec![FetchTopic::default()
            .with_topic(tn(topic))
            .with_topic_id(a.topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(a.offset)
                .with_partition_max_bytes(a.partition_max_bytes)])])
}

/// The whole Fetch response, nothing checked.
pub fn fetch_response(c: &mut Client, topic: &str, partition: i32, a: &FetchArgs) -> FetchResponse {
    c.call(a.version, &fetch_request(topic, partition, a))
}

/// Fetch one partition: its data, with the top-level error checked and
/// exactly one partition in the answer; the partition's error code is the
/// caller's to check.
#[track_caller]
pub fn fetch_with(c: &mut Client, topic: &str, partition: i32, a: &FetchArgs) -> PartitionData {
    let r = fetch_response(c, topic, partition, a);
    assert_eq!(r.error_code, NONE, "fetch top-level error");
    assert_eq!(r.responses.len(), 1, "fetch topics");
    let mut t = r.responses.into_iter().next().unwrap();
    assert_eq!(t.partitions.len(), 1, "fetch partitions");
    t.partitions.remove(0)
}

/// Fetch v12 from `offset` at `isolation`, insisting on no error.
#[track_caller]
pub fn fetch_isolated(
    c: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> PartitionData {
    let a = FetchArgs {
        offset,
        isolation_level: isolation,
        ..Default::default()
    };
    let p = fetch_with(c, topic, partition, &a);
    assert_eq!(
        p.error_code, NONE,
        "fetch {topic}-{partition}@{offset} error"
    );
    p
}

/// Fetch v12 (read_uncommitted) from `offset`, insisting on no error.
#[track_caller]
pub fn fetch_ok(c: &mut Client, topic: &str, partition: i32, offset: i64) -> PartitionData {
    fetch_isolated(c, topic, partition, offset, READ_UNCOMMITTED)
}

/// The record bytes of a fetched partition, which must not be null.
pub fn records(p: &PartitionData) -> Vec<u8> {
    p.records
        .as_ref()
        .expect("records must not be null")
        .to_vec()
}

/// The batches of a fetched partition (null records: none).
pub fn batches_of(p: &PartitionData) -> Vec<Vec<u8>> {
    split_batches(p.records.as_deref().unwrap_or(&[]))
}

/// The batches one fetch from `offset` returns.
#[track_caller]
pub fn fetch_batches(c: &mut Client, topic: &str, partition: i32, offset: i64) -> Vec<Vec<u8>> {
    batches_of(&fetch_ok(c, topic, partition, offset))
}

/// Every batch of the partition holding offsets from `from` on: fetches
/// until the high watermark.
pub fn fetch_all_batches(c: &mut Client, topic: &str, partition: i32, from: i64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let p = fetch_ok(c, topic, partition, offset);
        let batches = batches_of(&p);
        if batches.is_empty() {
            assert!(
                offset >= p.high_watermark,
                "empty fetch below the high watermark"
            );
            return out;
        }
        for b in batches {
            let last = batch_base_offset(&b) + i64::from(batch_last_offset_delta(&b));
            if last >= offset {
                offset = last + 1;
                out.push(b);
            }
        }
        if offset >= p.high_watermark {
            return out;
        }
    }
}

/// ListOffsets of one partition for `ts` (-1 latest, -2 earliest, -3 max
/// timestamp, else by timestamp) at `isolation`; the partition's answer.
pub fn list_offsets(
    c: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    ts: i64,
    isolation: i8,
) -> ListOffsetsPartitionResponse {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(tn(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(ts)])]);
    let r = c.call(version, &req);
    assert_eq!(r.topics.len(), 1, "ListOffsets topics");
    let mut t = r.topics.into_iter().next().unwrap();
    assert_eq!(t.partitions.len(), 1, "ListOffsets partitions");
    t.partitions.remove(0)
}

/// ListOffsets, read_uncommitted.
pub fn list_offset(
    c: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    ts: i64,
) -> ListOffsetsPartitionResponse {
    list_offsets(c, version, topic, partition, ts, READ_UNCOMMITTED)
}

/// The latest offset (ListOffsets v7, -1) at `isolation`.
#[track_caller]
pub fn latest_isolated(c: &mut Client, topic: &str, partition: i32, isolation: i8) -> i64 {
    let p = list_offsets(c, 7, topic, partition, -1, isolation);
    assert_eq!(
        p.error_code, NONE,
        "ListOffsets latest of {topic}-{partition}"
    );
    p.offset
}

/// The latest offset (the high watermark), read_uncommitted.
#[track_caller]
pub fn latest(c: &mut Client, topic: &str, partition: i32) -> i64 {
    latest_isolated(c, topic, partition, READ_UNCOMMITTED)
}

/// The earliest offset (the log start offset; ListOffsets v7, -2).
#[track_caller]
pub fn earliest(c: &mut Client, topic: &str, partition: i32) -> i64 {
    let p = list_offsets(c, 7, topic, partition, -2, READ_UNCOMMITTED);
    assert_eq!(
        p.error_code, NONE,
        "ListOffsets earliest of {topic}-{partition}"
    );
    p.offset
}
