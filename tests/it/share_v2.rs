//! ShareFetch and ShareAcknowledge v2 over the raw protocol, as Kafka 4.4
//! serves them: RENEW acknowledgements (KIP-1222) restart a record's
//! acquisition lock for the same member, a renew-only ShareFetch must ask
//! for nothing, ack type 4 is refused at v1 and without IsRenewAck, and
//! ShareFetch's record-limit acquire mode (KIP-1206) stops at MaxRecords
//! exactly where the batch-optimized mode takes whole batches.

use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError as E;
use kastle::protocol::share_v2::{
    write_share_acknowledge, write_share_fetch, ShareFetchV2Fields, BATCH_OPTIMIZED, RECORD_LIMIT,
};
use uuid::Uuid;

use crate::support::groups::set_group_config;
use crate::support::produce::produce_ok;
use crate::support::simple_batch;
use crate::support::topics::create_topic;
use crate::support::{find_coordinators, sb, Broker, Client, NONE};

const LOCK_MS: u64 = 2000;
const RENEW: i8 = 4;

fn start() -> Broker {
    let b = Broker::start(&[
        "group.share.min.record.lock.duration.ms=1000",
        &format!("group.share.record.lock.duration.ms={LOCK_MS}"),
        "group.share.delivery.count.limit=3",
        "group.share.assignment.interval.ms=0",
    ]);
    find_coordinators(&b);
    b
}

/// What a ShareFetch asks besides its session and acknowledgements.
#[derive(Clone, Copy)]
struct Ask {
    max_wait_ms: i32,
    max_bytes: i32,
    max_records: i32,
    mode: i8,
    renew: bool,
}

const FETCH: Ask = Ask {
    max_wait_ms: 0,
    max_bytes: 1 << 20,
    max_records: 500,
    mode: BATCH_OPTIMIZED,
    renew: false,
};

/// A renew-only ShareFetch: everything 0.
const RENEW_ONLY: Ask = Ask {
    max_wait_ms: 0,
    max_bytes: 0,
    max_records: 0,
    mode: BATCH_OPTIMIZED,
    renew: true,
};

/// A ShareFetch of partition 0 of `topic` at `version` (v2 through
/// kastle's own codec; its response is v1's layout).
#[allow(clippy::too_many_arguments)]
fn fetch_at(
    c: &mut Client,
    version: i16,
    group: &str,
    member: &str,
    epoch: i32,
    topic: Uuid,
    acks: &[(i64, i64, i8)],
    ask: Ask,
) -> ShareFetchResponse {
    let part = FetchPartition::default()
        .with_partition_index(0)
        .with_acknowledgement_batches(
            acks.iter()
                .map(|(f, l, t)| {
                    AcknowledgementBatch::default()
                        .with_first_offset(*f)
                        .with_last_offset(*l)
                        .with_acknowledge_types(vec![*t])
                })
                .collect(),
        );
    let req = ShareFetchRequest::default()
        .with_group_id(Some(GroupId(sb(group))))
        .with_member_id(Some(sb(member)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(ask.max_wait_ms)
        .with_max_bytes(ask.max_bytes)
        .with_max_records(ask.max_records)
        .with_batch_size(ask.max_records)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![part])]);
    if version < 2 {
        return c.call(version, &req);
    }
    let fields = ShareFetchV2Fields {
        share_acquire_mode: ask.mode,
        is_renew_ack: ask.renew,
    };
    let body = write_share_fetch(&req, fields).expect("a v2 body");
    let corr = c.next_corr();
    c.send(78, 2, corr, &body);
    let (got, mut resp) = c.recv(78, 2);
    assert_eq!(got, corr, "correlation id");
    ShareFetchResponse::decode(&mut resp, 1).expect("v2's response is v1's layout")
}

fn fetch(
    c: &mut Client,
    group: &str,
    member: &str,
    epoch: i32,
    topic: Uuid,
    acks: &[(i64, i64, i8)],
    ask: Ask,
) -> ShareFetchResponse {
    fetch_at(c, 2, group, member, epoch, topic, acks, ask)
}

fn acquired(r: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .flat_map(|p| p.acquired_records.iter())
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

/// (partition, acknowledge error) of every partition answered.
fn ack_errors(r: &ShareFetchResponse) -> Vec<(i32, i16)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.acknowledge_error_code))
        .collect()
}

/// A ShareAcknowledge of partition 0 at `version`: (top-level error,
/// AcquisitionLockTimeoutMs (v2), partition errors).
fn acknowledge(
    c: &mut Client,
    version: i16,
    (group, member, epoch): (&str, &str, i32),
    topic: Uuid,
    (first, last, t): (i64, i64, i8),
    renew: bool,
) -> (i16, Option<i32>, Vec<i16>) {
    let req = ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(sb(group))))
        .with_member_id(Some(sb(member)))
        .with_share_session_epoch(epoch)
        .with_topics(vec![AcknowledgeTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![AcknowledgePartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(vec![AckBatch::default()
                    .with_first_offset(first)
                    .with_last_offset(last)
                    .with_acknowledge_types(vec![t])])])]);
    let errors = |r: &ShareAcknowledgeResponse| -> Vec<i16> {
        r.responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    };
    if version < 2 {
        let r: ShareAcknowledgeResponse = c.call(version, &req);
        return (r.error_code, None, errors(&r));
    }
    let body = write_share_acknowledge(&req, renew).expect("a v2 body");
    let corr = c.next_corr();
    c.send(79, 2, corr, &body);
    let (got, resp) = c.recv(79, 2);
    assert_eq!(got, corr, "correlation id");
    // ThrottleTimeMs, ErrorCode, ErrorMessage (null here), then v2's
    // AcquisitionLockTimeoutMs; the rest is v1's layout.
    assert_eq!(resp[6], 0, "a null error message");
    let lock = i32::from_be_bytes([resp[7], resp[8], resp[9], resp[10]]);
    let mut v1 = bytes::Bytes::from([&resp[..7], &resp[11..]].concat());
    let r = ShareAcknowledgeResponse::decode(&mut v1, 1).expect("v1's layout around the lock");
    (r.error_code, Some(lock), errors(&r))
}

fn setup(c: &mut Client, topic: &str, group: &str, batches: usize) -> Uuid {
    let id = create_topic(c, topic, 1, &[]);
    set_group_config(c, group, "share.auto.offset.reset", "earliest");
    for i in 0..batches {
        produce_ok(c, topic, 0, &simple_batch(5, 10, 1, i as u8));
    }
    id
}

fn sleep_until(t: Instant) {
    thread::sleep(t.saturating_duration_since(Instant::now()));
}

#[test]
fn renew_restarts_the_acquisition_lock() {
    let b = start();
    let mut c = b.client();
    let id = setup(&mut c, "rn", "rg", 1);
    let r = fetch(&mut c, "rg", "a", 0, id, &[], FETCH);
    // The lock runs from before the answer (the first fetch creates the
    // share state topic first).
    let t0 = Instant::now();
    assert_eq!(acquired(&r), vec![(0, 4, 1)], "{r:?}");
    assert_eq!(r.acquisition_lock_timeout_ms, LOCK_MS as i32);
    // Halfway through the lock, a renews 0-2 with a renew-only fetch: its
    // acknowledgement succeeds and nothing is fetched.
    let lock = Duration::from_millis(LOCK_MS);
    sleep_until(t0 + lock / 2);
    let renewed_at = Instant::now();
    let r = fetch(&mut c, "rg", "a", 1, id, &[(0, 2, RENEW)], RENEW_ONLY);
    assert_eq!(r.error_code, NONE, "{r:?}");
    assert_eq!(ack_errors(&r), vec![(0, NONE)], "{r:?}");
    assert!(
        acquired(&r).is_empty(),
        "a renew-only fetch fetches nothing"
    );
    // Past the original timeout: 3-4 went back, 0-2 are still a's.
    sleep_until(t0 + lock + Duration::from_millis(300));
    assert!(renewed_at + lock > Instant::now() + Duration::from_millis(200));
    let r = fetch(&mut c, "rg", "b", 0, id, &[], FETCH);
    assert_eq!(acquired(&r), vec![(3, 4, 2)], "{r:?}");
    // ShareAcknowledge v2 renews too and reports the lock duration; the
    // renewal is not a delivery.
    let (err, lock_ms, parts) = acknowledge(&mut c, 2, ("rg", "b", 1), id, (3, 4, RENEW), true);
    assert_eq!(
        (err, lock_ms, parts),
        (NONE, Some(LOCK_MS as i32), vec![NONE])
    );
    // Past the renewed timeout, 0-2 go to b with delivery count 2.
    sleep_until(renewed_at + lock + Duration::from_millis(300));
    let r = fetch(&mut c, "rg", "b", 2, id, &[], FETCH);
    assert_eq!(acquired(&r), vec![(0, 2, 2)], "{r:?}");
    // A member renews only what it holds.
    let r = fetch(&mut c, "rg", "a", 2, id, &[(0, 0, RENEW)], RENEW_ONLY);
    assert_eq!(ack_errors(&r), vec![(0, E::InvalidRecordState.code())]);
    // A group that turned renewals off refuses them as Kafka does.
    set_group_config(&mut c, "rg", "share.renew.acknowledge.enable", "false");
    let r = fetch(&mut c, "rg", "b", 3, id, &[(0, 0, RENEW)], RENEW_ONLY);
    assert_eq!(ack_errors(&r), vec![(0, E::InvalidRecordState.code())]);
    // ACCEPT still works on the renewed records.
    let (err, _, parts) = acknowledge(&mut c, 2, ("rg", "b", 4), id, (0, 4, 1), false);
    assert_eq!((err, parts), (NONE, vec![NONE]));
}

#[test]
fn renew_acknowledgements_are_validated() {
    let b = start();
    let mut c = b.client();
    let id = setup(&mut c, "rv", "vg", 1);
    let r = fetch(&mut c, "vg", "a", 0, id, &[], FETCH);
    assert_eq!(acquired(&r), vec![(0, 4, 1)]);
    // A renew-only fetch must ask for nothing: the whole request fails.
    for ask in [
        Ask {
            max_bytes: 1,
            ..RENEW_ONLY
        },
        Ask {
            max_records: 1,
            ..RENEW_ONLY
        },
        Ask {
            max_wait_ms: 1,
            ..RENEW_ONLY
        },
        Ask {
            renew: true,
            ..FETCH
        },
    ] {
        let r = fetch(&mut c, "vg", "a", 1, id, &[(0, 0, RENEW)], ask);
        assert_eq!(r.error_code, E::InvalidRequest.code(), "{r:?}");
        assert!(r.responses.is_empty());
    }
    // Type 4 without IsRenewAck, or at v1: the partition's INVALID_REQUEST.
    let r = fetch(&mut c, "vg", "a", 1, id, &[(0, 0, RENEW)], FETCH);
    assert_eq!(r.error_code, NONE);
    assert_eq!(ack_errors(&r), vec![(0, E::InvalidRequest.code())]);
    let r = fetch_at(&mut c, 1, "vg", "a", 2, id, &[(0, 0, RENEW)], FETCH);
    assert_eq!(ack_errors(&r), vec![(0, E::InvalidRequest.code())]);
    let (err, lock, parts) = acknowledge(&mut c, 1, ("vg", "a", 3), id, (0, 0, RENEW), false);
    assert_eq!(
        (err, lock, parts),
        (NONE, None, vec![E::InvalidRequest.code()])
    );
    let (err, lock, parts) = acknowledge(&mut c, 2, ("vg", "a", 4), id, (0, 0, RENEW), false);
    assert_eq!(
        (err, lock, parts),
        (NONE, Some(LOCK_MS as i32), vec![E::InvalidRequest.code()])
    );
    // Types past 4 are refused at v2 too; nothing above was applied.
    let (_, _, parts) = acknowledge(&mut c, 2, ("vg", "a", 5), id, (0, 0, 5), true);
    assert_eq!(parts, vec![E::InvalidRequest.code()]);
    let (_, _, parts) = acknowledge(&mut c, 2, ("vg", "a", 6), id, (0, 4, 1), false);
    assert_eq!(parts, vec![NONE], "0-4 were still a's to accept");
}

#[test]
fn record_limit_acquires_max_records_exactly() {
    let b = start();
    let mut c = b.client();
    // Two batches of five: offsets 0-4 and 5-9.
    let id = setup(&mut c, "rl", "lg", 2);
    let limit = |mode: i8| Ask {
        max_records: 3,
        mode,
        ..FETCH
    };
    // Record-limit: 3 records, the first batch split.
    let r = fetch(&mut c, "lg", "a", 0, id, &[], limit(RECORD_LIMIT));
    assert_eq!(acquired(&r), vec![(0, 2, 1)], "{r:?}");
    let r = fetch(&mut c, "lg", "a", 1, id, &[], limit(RECORD_LIMIT));
    assert_eq!(acquired(&r), vec![(3, 5, 1)], "{r:?}");
    // Batch-optimized: the batch once started is taken whole.
    let r = fetch(&mut c, "lg", "a", 2, id, &[], limit(BATCH_OPTIMIZED));
    assert_eq!(acquired(&r), vec![(6, 9, 1)], "{r:?}");
    // The same at v1 (no acquire mode: batch-optimized).
    let (_, _, parts) = acknowledge(&mut c, 2, ("lg", "a", 3), id, (0, 9, 2), false);
    assert_eq!(parts, vec![NONE], "released");
    let r = fetch_at(&mut c, 1, "lg", "b", 0, id, &[], limit(RECORD_LIMIT));
    assert_eq!(acquired(&r), vec![(0, 4, 2)], "{r:?}");
    let r = fetch(&mut c, "lg", "a", 4, id, &[], limit(RECORD_LIMIT));
    assert_eq!(acquired(&r), vec![(5, 7, 2)], "{r:?}");
}
