//! Produce helpers: one record set to one partition, by topic name, and the
//! checks tests make on the partition's answer.

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, ProduceResponse};

use super::{tn, Client, NONE};

/// The Produce version tests use unless they test versions (Kafka 4.x
/// clients' choice for a non-transactional producer).
pub const PRODUCE_VERSION: i16 = 9;

/// A Produce request of one record set to `topic`-`partition`.
pub fn produce_request(topic: &str, partition: i32, acks: i16, records: &[u8]) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(tn(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::copy_from_slice(records)))])])
}

/// The one partition's answer of a one-partition Produce response.
pub fn single_partition(resp: ProduceResponse) -> PartitionProduceResponse {
    assert_eq!(resp.responses.len(), 1, "produce response topics");
    let mut t = resp.responses.into_iter().next().unwrap();
    assert_eq!(
        t.partition_responses.len(),
        1,
        "produce response partitions"
    );
    t.partition_responses.remove(0)
}

/// Produce at `version` with `acks`: the partition's answer.
pub fn produce_v(
    c: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    acks: i16,
    records: &[u8],
) -> PartitionProduceResponse {
    single_partition(c.call(version, &produce_request(topic, partition, acks, records)))
}

/// Produce v9 with acks=all: the partition's answer, errors included.
pub fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: &[u8],
) -> PartitionProduceResponse {
    produce_v(c, PRODUCE_VERSION, topic, partition, -1, records)
}

/// Produce v9 with acks=all, sent with `transactional_id` (which a request
/// carrying transactional batches must name).
pub fn produce_txn(
    c: &mut Client,
    transactional_id: &str,
    topic: &str,
    partition: i32,
    records: &[u8],
) -> PartitionProduceResponse {
    let req = produce_request(topic, partition, -1, records).with_transactional_id(Some(
        kafka_protocol::messages::TransactionalId(super::sb(transactional_id)),
    ));
    single_partition(c.call(PRODUCE_VERSION, &req))
}

/// Produce and insist on success; returns the base offset.
#[track_caller]
pub fn produce_ok(c: &mut Client, topic: &str, partition: i32, records: &[u8]) -> i64 {
    expect_ok(produce(c, topic, partition, records), topic, partition)
}

/// `produce_ok` for transactional batches of `transactional_id`.
#[track_caller]
pub fn produce_txn_ok(
    c: &mut Client,
    transactional_id: &str,
    topic: &str,
    partition: i32,
    records: &[u8],
) -> i64 {
    let r = produce_txn(c, transactional_id, topic, partition, records);
    expect_ok(r, topic, partition)
}

#[track_caller]
fn expect_ok(r: PartitionProduceResponse, topic: &str, partition: i32) -> i64 {
    assert_eq!(
        r.error_code, NONE,
        "produce to {topic}-{partition}: {:?}",
        r.error_message
    );
    r.base_offset
}

/// Produce and insist on error `code` with no offset; returns the error
/// message.
#[track_caller]
pub fn produce_err(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: &[u8],
    code: i16,
    what: &str,
) -> String {
    expect_err(produce(c, topic, partition, records), code, what)
}

/// `produce_err` for transactional batches of `transactional_id`.
#[track_caller]
pub fn produce_txn_err(
    c: &mut Client,
    transactional_id: &str,
    topic: &str,
    partition: i32,
    records: &[u8],
    code: i16,
    what: &str,
) -> String {
    let r = produce_txn(c, transactional_id, topic, partition, records);
    expect_err(r, code, what)
}

#[track_caller]
fn expect_err(r: PartitionProduceResponse, code: i16, what: &str) -> String {
    assert_eq!(
        r.error_code, code,
        "{what}: expected error {code}, got {} (base offset {}, message {:?})",
        r.error_code, r.base_offset, r.error_message
    );
    assert_eq!(r.base_offset, -1, "{what}: base offset of a failed produce");
    r.error_message.map(|m| m.to_string()).unwrap_or_default()
}
