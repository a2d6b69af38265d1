//! ShareFetch and ShareAcknowledge v2 over the raw protocol, as Kafka 4.4
//! serves them: RENEW acknowledgements (KIP-1222) restart a record's
//! acquisition lock for the same member, a renew-only ShareFetch must ask
//! for nothing, ack type 4 is refused at v1 and without IsRenewAck, and
//! ShareFetch's record-limit acquire mode (KIP-1206) stops at MaxRecords
//! exactly where the batch-optimized mode takes whole batches; any other
//! acquire mode fails the fetch as Kafka's does.

use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError as E;
use kastle::protocol::share_v2::{BATCH_OPTIMIZED, RECORD_LIMIT};
use uuid::Uuid;

use crate::support::groups::set_group_config;
use crate::support::produce::produce_ok;
use crate::support::share::{
    ack_errors, acknowledge, acquired, fetch_at, Ask, ACCEPT, FETCH, RELEASE, RENEW, RENEW_ONLY,
};
use crate::support::simple_batch;
use crate::support::topics::create_topic;
use crate::support::{find_coordinators, Broker, Client, NONE};

/// Long enough that a loaded machine's pauses stay well inside the
/// margins `renew_restarts_the_acquisition_lock` leaves (half a lock).
const LOCK_MS: u64 = 5000;

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

/// RENEW restarts the holder's lock. The timing is checked against
/// deadlines half a lock (2.5 s) apart, and a pass is only claimed when
/// the exchange that decides it ran inside its window: a RENEW that did
/// nothing would let b take 0-4 (not 3-4) once a's first lock ran out.
#[test]
fn renew_restarts_the_acquisition_lock() {
    let b = start();
    let mut c = b.client();
    let id = setup(&mut c, "rn", "rg", 1);
    // The lock runs from before the answer (the first fetch creates the
    // share state topic first), so it ends before t0 + lock.
    let r = fetch_at(&mut c, 2, "rg", "a", 0, id, &[], FETCH);
    let t0 = Instant::now();
    assert_eq!(acquired(&r), vec![(0, 4, 1)], "{r:?}");
    assert_eq!(r.acquisition_lock_timeout_ms, LOCK_MS as i32);
    // Halfway through the lock, a renews 0-2 with a renew-only fetch: its
    // acknowledgement succeeds and nothing is fetched. The renewed lock
    // ends after renewed_at + lock.
    let lock = Duration::from_millis(LOCK_MS);
    sleep_until(t0 + lock / 2);
    let renewed_at = Instant::now();
    let r = fetch_at(&mut c, 2, "rg", "a", 1, id, &[(0, 2, RENEW)], RENEW_ONLY);
    assert_eq!(r.error_code, NONE, "{r:?}");
    assert_eq!(ack_errors(&r), vec![(0, NONE)], "{r:?}");
    assert!(
        acquired(&r).is_empty(),
        "a renew-only fetch fetches nothing"
    );
    // Past the original timeout, before the renewed one: 3-4 went back,
    // 0-2 are still a's.
    sleep_until(t0 + lock + Duration::from_millis(200));
    let r = fetch_at(&mut c, 2, "rg", "b", 0, id, &[], FETCH);
    assert!(
        Instant::now() < renewed_at + lock,
        "inconclusive: the machine stalled past the renewed lock"
    );
    assert_eq!(acquired(&r), vec![(3, 4, 2)], "{r:?}");
    // ShareAcknowledge v2 renews too and reports the lock duration; the
    // renewal is not a delivery.
    let (err, lock_ms, parts) = acknowledge(&mut c, 2, ("rg", "b", 1), id, &[(3, 4, RENEW)], true);
    assert_eq!(
        (err, lock_ms, parts),
        (NONE, Some(LOCK_MS as i32), vec![NONE])
    );
    // Past the renewed timeout, 0-2 go to b with delivery count 2.
    sleep_until(renewed_at + lock + Duration::from_millis(300));
    let r = fetch_at(&mut c, 2, "rg", "b", 2, id, &[], FETCH);
    assert_eq!(acquired(&r), vec![(0, 2, 2)], "{r:?}");
    // A member renews only what it holds.
    let r = fetch_at(&mut c, 2, "rg", "a", 2, id, &[(0, 0, RENEW)], RENEW_ONLY);
    assert_eq!(ack_errors(&r), vec![(0, E::InvalidRecordState.code())]);
    // A group that turned renewals off refuses them as Kafka does.
    set_group_config(&mut c, "rg", "share.renew.acknowledge.enable", "false");
    let r = fetch_at(&mut c, 2, "rg", "b", 3, id, &[(0, 0, RENEW)], RENEW_ONLY);
    assert_eq!(ack_errors(&r), vec![(0, E::InvalidRecordState.code())]);
    // ACCEPT still works on the renewed records.
    let (err, _, parts) = acknowledge(&mut c, 2, ("rg", "b", 4), id, &[(0, 4, ACCEPT)], false);
    assert_eq!((err, parts), (NONE, vec![NONE]));
}

#[test]
fn renew_acknowledgements_are_validated() {
    let b = start();
    let mut c = b.client();
    let id = setup(&mut c, "rv", "vg", 1);
    let r = fetch_at(&mut c, 2, "vg", "a", 0, id, &[], FETCH);
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
        let r = fetch_at(&mut c, 2, "vg", "a", 1, id, &[(0, 0, RENEW)], ask);
        assert_eq!(r.error_code, E::InvalidRequest.code(), "{r:?}");
        assert!(r.responses.is_empty());
    }
    // Type 4 without IsRenewAck, or at v1: the partition's INVALID_REQUEST.
    let r = fetch_at(&mut c, 2, "vg", "a", 1, id, &[(0, 0, RENEW)], FETCH);
    assert_eq!(r.error_code, NONE);
    assert_eq!(ack_errors(&r), vec![(0, E::InvalidRequest.code())]);
    let r = fetch_at(&mut c, 1, "vg", "a", 2, id, &[(0, 0, RENEW)], FETCH);
    assert_eq!(ack_errors(&r), vec![(0, E::InvalidRequest.code())]);
    let (err, lock, parts) = acknowledge(&mut c, 1, ("vg", "a", 3), id, &[(0, 0, RENEW)], false);
    assert_eq!(
        (err, lock, parts),
        (NONE, None, vec![E::InvalidRequest.code()])
    );
    let (err, lock, parts) = acknowledge(&mut c, 2, ("vg", "a", 4), id, &[(0, 0, RENEW)], false);
    assert_eq!(
        (err, lock, parts),
        (NONE, Some(LOCK_MS as i32), vec![E::InvalidRequest.code()])
    );
    // Types past 4 are refused at v2 too; nothing above was applied.
    let (_, _, parts) = acknowledge(&mut c, 2, ("vg", "a", 5), id, &[(0, 0, 5)], true);
    assert_eq!(parts, vec![E::InvalidRequest.code()]);
    let (_, _, parts) = acknowledge(&mut c, 2, ("vg", "a", 6), id, &[(0, 4, ACCEPT)], false);
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
    let r = fetch_at(&mut c, 2, "lg", "a", 0, id, &[], limit(RECORD_LIMIT));
    assert_eq!(acquired(&r), vec![(0, 2, 1)], "{r:?}");
    let r = fetch_at(&mut c, 2, "lg", "a", 1, id, &[], limit(RECORD_LIMIT));
    // 3-4 were in flight, 5 is new: two ranges, as Kafka answers them.
    assert_eq!(acquired(&r), vec![(3, 4, 1), (5, 5, 1)], "{r:?}");
    // Batch-optimized: the batch once started is taken whole.
    let r = fetch_at(&mut c, 2, "lg", "a", 2, id, &[], limit(BATCH_OPTIMIZED));
    assert_eq!(acquired(&r), vec![(6, 9, 1)], "{r:?}");
    // The same at v1 (no acquire mode: batch-optimized).
    let (_, _, parts) = acknowledge(&mut c, 2, ("lg", "a", 3), id, &[(0, 9, RELEASE)], false);
    assert_eq!(parts, vec![NONE], "released");
    let r = fetch_at(&mut c, 1, "lg", "b", 0, id, &[], limit(RECORD_LIMIT));
    assert_eq!(acquired(&r), vec![(0, 4, 2)], "{r:?}");
    let r = fetch_at(&mut c, 2, "lg", "a", 4, id, &[], limit(RECORD_LIMIT));
    assert_eq!(acquired(&r), vec![(5, 7, 2)], "{r:?}");
}

/// An acquire mode that is neither batch-optimized nor record-limit:
/// Kafka's `ShareAcquireMode.forId` throws once there is a partition to
/// fetch, so the request answers UNKNOWN_SERVER_ERROR (nothing acquired,
/// its acknowledgements applied and the session moved on all the same).
#[test]
fn an_unknown_acquire_mode_fails_the_fetch() {
    let b = start();
    let mut c = b.client();
    let id = setup(&mut c, "um", "ug", 2);
    let r = fetch_at(
        &mut c,
        2,
        "ug",
        "a",
        0,
        id,
        &[],
        Ask {
            max_records: 5,
            ..FETCH
        },
    );
    assert_eq!(acquired(&r), vec![(0, 4, 1)], "{r:?}");
    let unknown = Ask { mode: 7, ..FETCH };
    let r = fetch_at(&mut c, 2, "ug", "a", 1, id, &[(0, 4, ACCEPT)], unknown);
    assert_eq!(r.error_code, E::UnknownServerError.code(), "{r:?}");
    assert!(r.responses.is_empty(), "{r:?}");
    // The acknowledgement was applied and the epoch moved to 2: the next
    // fetch gets 5-9 only.
    let r = fetch_at(&mut c, 2, "ug", "a", 2, id, &[], FETCH);
    assert_eq!(acquired(&r), vec![(5, 9, 1)], "{r:?}");
    // With nothing to fetch (a renew-only request) the mode is not read.
    let renew = Ask {
        mode: 7,
        ..RENEW_ONLY
    };
    let r = fetch_at(&mut c, 2, "ug", "a", 3, id, &[(5, 5, RENEW)], renew);
    assert_eq!(r.error_code, NONE, "{r:?}");
    assert_eq!(ack_errors(&r), vec![(0, NONE)], "{r:?}");
}
