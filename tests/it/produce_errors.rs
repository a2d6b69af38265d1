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
