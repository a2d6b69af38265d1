//! What a Produce partition answer carries besides its error code, as Kafka
//! 4.4 answers it: every refused record of a batch in `record_errors` (v8+,
//! KIP-467) with Kafka's texts and summary message; the log start offset
//! where Kafka reports it (-1 where it fails the partition before its log is
//! involved); no message where Kafka has none; and a retried idempotent
//! batch acknowledged with the timestamp its original was recorded with.

use crate::support::admin::delete_records;
use crate::support::fetch::latest;
use crate::support::produce::{produce, produce_ok, produce_request, produce_v};
use crate::support::topics::create_topic;
use crate::support::transactions::{idempotent_producer, txn_broker};
use crate::support::*;

/// A record with a key.
fn keyed(k: &str, v: &str, ts: i64) -> Rec {
    Rec {
        key: Some(k.as_bytes().to_vec()),
        ..Rec::value(v.as_bytes(), ts)
    }
}

/// (batch index, message) of each `record_errors` entry.
fn record_errors(
    r: &kafka_protocol::messages::produce_response::PartitionProduceResponse,
) -> Vec<(i32, String)> {
    r.record_errors
        .iter()
        .map(|e| {
            (
                e.batch_index,
                e.batch_index_error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn every_refused_record_is_listed() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "c", 1, &[("cleanup.policy", "compact,delete")]);
    let ts = now_ms();
    // Something to delete, so that the log start offset is not 0.
    for i in 0..3 {
        produce_ok(&mut c, "c", 0, &batch(&[keyed("k", &i.to_string(), ts)]));
    }
    assert_eq!(delete_records(&mut c, "c", &[(0, 2)]), vec![(NONE, 2)]);

    // Records 0, 2 and 3 have no key; record 1 has one.
    let refused = batch(&[
        Rec::value(b"a", ts),
        keyed("k", "b", ts),
        Rec::value(b"c", ts),
        Rec::value(b"d", ts),
    ]);
    let why = "Compacted topic cannot accept message without key in topic partition c-0";
    let r = produce(&mut c, "c", 0, &refused);
    assert_eq!(
        (r.error_code, r.base_offset, r.log_start_offset),
        (E::InvalidRecord.code(), -1, 2),
        "refused batch: code, base offset, log start offset"
    );
    assert_eq!(
        record_errors(&r),
        vec![(0, why.into()), (2, why.into()), (3, why.into())]
    );
    assert_eq!(
        r.error_message.as_deref(),
        Some(
            format!(
                "One or more records have been rejected due to 3 record errors in total, and only \
                 showing the first three errors at most: [RecordError(batchIndex=0, message='{why}'), \
                 RecordError(batchIndex=2, message='{why}'), RecordError(batchIndex=3, message='{why}')]"
            )
            .as_str()
        )
    );
    // Before v8 the answer has no room for them; the log start offset is
    // there from v5.
    let r = produce_v(&mut c, 7, "c", 0, -1, &refused);
    assert_eq!(
        (r.error_code, r.log_start_offset, r.record_errors.len()),
        (E::InvalidRecord.code(), 2, 0)
    );
    assert_eq!(latest(&mut c, "c", 0), 3, "nothing appended");

    // A bad timestamp makes the whole answer INVALID_TIMESTAMP; each record
    // is refused for one reason, its key first.
    create_topic(&mut c, "ts", 1, &[("cleanup.policy", "compact")]);
    let future = now_ms() + 2 * 3_600_000;
    let r = produce(
        &mut c,
        "ts",
        0,
        &batch(&[
            keyed("k", "a", future),
            Rec::value(b"b", future),
            keyed("k", "c", now_ms()),
        ]),
    );
    assert_eq!(
        (r.error_code, r.log_start_offset),
        (E::InvalidTimestamp.code(), 0)
    );
    assert_eq!(
        r.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    let errors = record_errors(&r);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, 0);
    let prefix = format!("Timestamp {future} of message with offset 0 is out of range. The timestamp should be within [");
    assert!(errors[0].1.starts_with(&prefix), "{}", errors[0].1);
    assert_eq!(
        errors[1],
        (
            1,
            "Compacted topic cannot accept message without key in topic partition ts-0".into()
        )
    );
    assert_eq!(latest(&mut c, "ts", 0), 0, "nothing appended");
}

#[test]
fn batch_errors_carry_no_message() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "e", 1, &[]);
    create_topic(&mut c, "small", 1, &[("max.message.bytes", "1000")]);
    let ts = now_ms();
    for i in 0..4 {
        produce_ok(&mut c, "e", 0, &batch(&[Rec::value(&[i], ts)]));
    }
    assert_eq!(delete_records(&mut c, "e", &[(0, 3)]), vec![(NONE, 3)]);
    let good = batch(&[Rec::value(b"v", ts)]);
    let check = |c: &mut Client, topic: &str, records: &[u8], want: (i16, i64), what: &str| {
        let r = produce(c, topic, 0, records);
        assert_eq!(
            (r.error_code, r.log_start_offset, r.base_offset),
            (want.0, want.1, -1),
            "{what}: code, log start offset, base offset"
        );
        assert_eq!(r.error_message, None, "{what}: message");
        assert!(r.record_errors.is_empty(), "{what}: record errors");
    };

    // Refused before the log is involved: log start offset -1.
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    check(
        &mut c,
        "e",
        &bad_crc,
        (E::CorruptMessage.code(), -1),
        "bad CRC",
    );
    let big = batch(&[Rec::value(&[7; 2000], ts)]);
    check(
        &mut c,
        "small",
        &big,
        (E::MessageTooLarge.code(), -1),
        "above max.message.bytes",
    );
    let mut two = good.clone();
    two.extend_from_slice(&good);
    check(
        &mut c,
        "e",
        &two,
        (E::InvalidRecord.code(), -1),
        "two batches",
    );
    let mut magic1 = good.clone();
    magic1[16] = 1;
    check(
        &mut c,
        "e",
        &magic1,
        (E::InvalidRecord.code(), -1),
        "magic 1",
    );

    // Refused by the log's own rules: the log start offset.
    let mut base7 = good.clone();
    base7[0..8].copy_from_slice(&7i64.to_be_bytes());
    check(
        &mut c,
        "e",
        &base7,
        (E::InvalidRecord.code(), 3),
        "baseOffset 7",
    );
    let mut lod = good.clone();
    lod[23..27].copy_from_slice(&4i32.to_be_bytes());
    fix_crc(&mut lod);
    check(
        &mut c,
        "e",
        &lod,
        (E::InvalidRecord.code(), 3),
        "lastOffsetDelta 4 of 1 record",
    );
    let pid = idempotent_producer(&mut c);
    assert_eq!(
        produce_ok(&mut c, "e", 0, &producer_batch(pid.0, pid.1, 0, 2, ts, "s")),
        4
    );
    check(
        &mut c,
        "e",
        &producer_batch(pid.0, pid.1, 5, 1, ts, "gap"),
        (E::OutOfOrderSequenceNumber.code(), 3),
        "sequence gap",
    );
    assert_eq!(
        latest(&mut c, "e", 0),
        6,
        "nothing appended but the sequence 0 batch"
    );
}

#[test]
fn min_insync_replicas_above_the_replica_count_is_capped_like_kafka() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "isr", 1, &[("min.insync.replicas", "2")]);
    // Kafka 4.1+ caps min.insync.replicas at the replica count
    // (`Partition.effectiveMinIsr`): one replica takes acks=all (the
    // differential oracle's produce scenario checks it against Kafka 4.4).
    let r = produce(&mut c, "isr", 0, &batch(&[Rec::value(b"v", now_ms())]));
    assert_eq!((r.error_code, r.base_offset), (NONE, 0));
    let r = produce_v(
        &mut c,
        9,
        "isr",
        0,
        1,
        &batch(&[Rec::value(b"v", now_ms())]),
    );
    assert_eq!((r.error_code, r.base_offset), (NONE, 1));
}

#[test]
fn a_duplicate_is_acknowledged_with_its_original_timestamp() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "d", 1, &[]);
    create_topic(
        &mut c,
        "dl",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    let pid = idempotent_producer(&mut c);
    let ts = now_ms() - 5_000;

    // CreateTime: the first answer has no append time; the duplicate's is
    // the batch's max timestamp, as Kafka's producer state recorded it.
    let mut first = batch(&[Rec::value(b"a", ts), Rec::value(b"b", ts + 7)]);
    set_producer(&mut first, pid.0, pid.1, 0);
    let r = produce(&mut c, "d", 0, &first);
    assert_eq!(
        (r.error_code, r.base_offset, r.log_append_time_ms),
        (NONE, 0, -1)
    );
    let r = produce(&mut c, "d", 0, &first);
    assert_eq!(
        (
            r.error_code,
            r.base_offset,
            r.log_append_time_ms,
            r.log_start_offset
        ),
        (NONE, 0, ts + 7, 0),
        "duplicate of a CreateTime batch"
    );
    assert_eq!(latest(&mut c, "d", 0), 2, "the duplicate was not appended");

    // LogAppendTime: the duplicate gets the original append time.
    let mut first = batch(&[Rec::value(b"a", ts)]);
    set_producer(&mut first, pid.0, pid.1, 0);
    let r = produce(&mut c, "dl", 0, &first);
    assert_eq!(r.error_code, NONE);
    let appended_at = r.log_append_time_ms;
    assert!(appended_at > ts, "append time {appended_at}");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r = produce(&mut c, "dl", 0, &first);
    assert_eq!(
        (r.error_code, r.base_offset, r.log_append_time_ms),
        (NONE, 0, appended_at),
        "duplicate on a LogAppendTime topic"
    );
}

/// Kafka's two whole-request refusals of record data: a partition's first
/// batch its iterator refuses (a length below 14: CORRUPT_MESSAGE with the
/// iterator's message on every partition), and a batch too short for the
/// producer id Kafka reads before the acks (UNKNOWN_SERVER_ERROR, no
/// message). Either way nothing of the request is appended, the good
/// partition's batch included.
#[test]
fn a_batch_kafka_cannot_frame_fails_the_whole_request() {
    use kafka_protocol::messages::produce_request::PartitionProduceData;
    use kafka_protocol::messages::ProduceResponse;
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "w", 2, &[]);
    let good = batch(&[Rec::value(b"g", now_ms())]);
    let cut = |length: usize| {
        let mut raw = good[..12 + length].to_vec();
        raw[8..12].copy_from_slice(&(length as i32).to_be_bytes());
        raw
    };
    let two = |second: &[u8]| {
        let mut req = produce_request("w", 0, -1, &good);
        req.topic_data[0].partition_data.push(
            PartitionProduceData::default()
                .with_index(1)
                .with_records(Some(bytes::Bytes::copy_from_slice(second))),
        );
        req
    };
    let answers = |r: ProduceResponse| -> Vec<(i16, Option<String>)> {
        r.responses[0]
            .partition_responses
            .iter()
            .map(|p| {
                (
                    p.error_code,
                    p.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect()
    };
    let message = Some("Record size 13 is less than the minimum record overhead (14)".to_string());
    let corrupt = E::CorruptMessage.code();
    assert_eq!(
        answers(c.call(9, &two(&cut(13)))),
        vec![(corrupt, message.clone()), (corrupt, message)]
    );
    let unknown = E::UnknownServerError.code();
    assert_eq!(
        answers(c.call(9, &two(&cut(20)))),
        vec![(unknown, None), (unknown, None)]
    );
    // Length 39 holds the producer id: the partition's own refusal, from
    // its log (the good partition is appended).
    assert_eq!(
        answers(c.call(9, &two(&cut(39)))),
        vec![(NONE, None), (corrupt, None)]
    );
    assert_eq!(latest(&mut c, "w", 0), 1, "only the last request appended");
}

/// The answers of a request whose partitions are all of topic `w`, by index.
fn answers_by_index(
    r: &kafka_protocol::messages::ProduceResponse,
) -> Vec<(i32, i16, i64, Option<String>)> {
    let mut out: Vec<_> = r
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .map(|p| {
            (
                p.index,
                p.error_code,
                p.log_start_offset,
                p.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    out.sort();
    out
}

/// A request with one batch per partition of topic `topic`.
fn produce_parts(
    topic: &str,
    acks: i16,
    transactional_id: Option<&str>,
    parts: &[(i32, &[u8])],
) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::PartitionProduceData;
    let mut req = produce_request(topic, parts[0].0, acks, parts[0].1);
    for (index, records) in &parts[1..] {
        req.topic_data[0].partition_data.push(
            PartitionProduceData::default()
                .with_index(*index)
                .with_records(Some(bytes::Bytes::copy_from_slice(records))),
        );
    }
    req.with_transactional_id(
        transactional_id.map(|t| kafka_protocol::messages::TransactionalId(sb(t))),
    )
}

/// An unknown codec id (5..=7): Kafka reads it in `validateRecords` only
/// below Produce v7, where `CompressionType.forId` throws and the whole
/// request is UNKNOWN_SERVER_ERROR (whatever the acks); from v7 its log
/// refuses the partition, UNKNOWN_SERVER_ERROR with the log start offset,
/// after the acks.
#[test]
fn an_unknown_codec_fails_as_kafka_by_version() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "w", 2, &[]);
    let good = batch(&[Rec::value(b"g", now_ms())]);
    let mut codec6 = good.clone();
    let attrs = batch_attributes(&codec6) | 6;
    codec6[21..23].copy_from_slice(&attrs.to_be_bytes());
    fix_crc(&mut codec6);
    let unknown = E::UnknownServerError.code();
    let req = |acks| produce_parts("w", acks, None, &[(0, &good), (1, &codec6)]);
    for acks in [-1, 2] {
        assert_eq!(
            answers_by_index(&c.call(6, &req(acks))),
            vec![(0, unknown, -1, None), (1, unknown, -1, None)],
            "v6, acks {acks}"
        );
    }
    assert_eq!(latest(&mut c, "w", 0), 0, "nothing appended below v7");
    assert_eq!(
        answers_by_index(&c.call(7, &req(-1))),
        vec![(0, NONE, 0, None), (1, unknown, 0, None)]
    );
    let invalid_acks = E::InvalidRequiredAcks.code();
    assert_eq!(
        answers_by_index(&c.call(9, &req(2))),
        vec![(0, invalid_acks, -1, None), (1, invalid_acks, -1, None)]
    );
    assert_eq!(latest(&mut c, "w", 0), 1);
}

/// A batch length whose size (length + 12) passes 2^31-1: Kafka's batch
/// iterator turns it negative and throws at its first look, failing the
/// whole request UNKNOWN_SERVER_ERROR; nothing is allocated for it. One
/// less is a batch the data does not hold (INVALID_RECORD).
#[test]
fn a_batch_size_beyond_i32_fails_the_whole_request() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "w", 2, &[]);
    let good = batch(&[Rec::value(b"g", now_ms())]);
    let with_length = |length: i32| {
        let mut raw = good.clone();
        raw[8..12].copy_from_slice(&length.to_be_bytes());
        raw
    };
    let unknown = E::UnknownServerError.code();
    for (length, acks) in [(i32::MAX, -1), (i32::MAX - 11, -1), (i32::MAX, 2)] {
        let huge = with_length(length);
        assert_eq!(
            answers_by_index(&c.call(
                9,
                &produce_parts("w", acks, None, &[(0, &good), (1, &huge)])
            )),
            vec![(0, unknown, -1, None), (1, unknown, -1, None)],
            "length {length}, acks {acks}"
        );
    }
    let huge = with_length(i32::MAX - 12);
    assert_eq!(
        answers_by_index(&c.call(9, &produce_parts("w", -1, None, &[(0, &good), (1, &huge)]))),
        vec![(0, NONE, 0, None), (1, E::InvalidRecord.code(), -1, None)]
    );
    assert_eq!(latest(&mut c, "w", 0), 1, "only the last request appended");
}

/// Kafka reads a transactional batch's producer id, epoch and base sequence
/// for its verification even when the batch is too short for its header
/// (lengths 45..48): it is verified before the acks and the log, and a
/// partition not in the transaction is refused so, not CORRUPT_MESSAGE.
/// So is a control batch.
#[test]
fn a_short_transactional_batch_is_verified_first() {
    use crate::support::transactions::init_txn;
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "w", 1, &[]);
    let pid = init_txn(&mut c, "tx-short", 60_000);
    let full = txn_batch(pid, 0, 1, "s");
    let not_added = (
        E::InvalidTxnState.code(),
        -1,
        Some("Partition was not added to the transaction".to_string()),
    );
    for length in [45usize, 48] {
        let mut short = full[..12 + length].to_vec();
        short[8..12].copy_from_slice(&(length as i32).to_be_bytes());
        for acks in [-1, 2] {
            let r = c.call(
                9,
                &produce_parts("w", acks, Some("tx-short"), &[(0, &short)]),
            );
            assert_eq!(
                answers_by_index(&r),
                vec![(0, not_added.0, not_added.1, not_added.2.clone())],
                "length {length}, acks {acks}"
            );
        }
    }
    // A transactional control batch is verified as any transactional batch
    // (Kafka's `hasProducerId && isTransactional`); the log would refuse it
    // (INVALID_RECORD) only after.
    let mut control = full.clone();
    let attrs = batch_attributes(&control) | 0x20;
    control[21..23].copy_from_slice(&attrs.to_be_bytes());
    fix_crc(&mut control);
    let r = c.call(
        9,
        &produce_parts("w", -1, Some("tx-short"), &[(0, &control)]),
    );
    assert_eq!(
        answers_by_index(&r),
        vec![(0, not_added.0, not_added.1, not_added.2)]
    );
    assert_eq!(latest(&mut c, "w", 0), 0);
}

/// Transactional batches of more than one producer id (or epoch) in one
/// request: Kafka's `handleProduceAppend` throws before verification and
/// the acks, and every partition of the request (one of an unknown topic
/// too) is answered INVALID_PRODUCER_ID_MAPPING with its message.
#[test]
fn transactional_batches_of_two_producers_fail_the_whole_request() {
    use crate::support::transactions::init_txn;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "w", 2, &[]);
    let pid = init_txn(&mut c, "tx-two", 60_000);
    let mixed = E::InvalidProducerIdMapping.code();
    let message = Some("Transactional records contained more than one producer ID".to_string());
    for (other, acks) in [
        ((pid.0 + 1, pid.1), -1),
        ((pid.0, pid.1 + 1), -1),
        ((pid.0 + 1, pid.1), 2),
    ] {
        let first = txn_batch(pid, 0, 1, "a");
        let second = txn_batch(other, 0, 1, "b");
        let mut req = produce_parts("w", acks, Some("tx-two"), &[(0, &first), (1, &second)]);
        req.topic_data.push(
            TopicProduceData::default()
                .with_name(tn("nowhere"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::from(batch(&[Rec::value(
                        b"n",
                        now_ms(),
                    )]))))]),
        );
        let r = c.call(9, &req);
        assert_eq!(
            answers_by_index(&r),
            vec![
                (0, mixed, -1, message.clone()),
                (0, mixed, -1, message.clone()),
                (1, mixed, -1, message.clone())
            ],
            "{other:?}, acks {acks}"
        );
    }
    assert_eq!(latest(&mut c, "w", 0), 0);
}
