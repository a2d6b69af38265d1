//! KIP-227 incremental fetch sessions against the real binary, with raw
//! Fetch requests: a full fetch opens a session, incremental fetches add,
//! change and forget partitions and are answered with only the partitions
//! that have something new, long polls still wait on a session, and the
//! session errors (unknown id, wrong epoch, topic-id mismatch) and the
//! `max.incremental.fetch.session.cache.slots` bound are Kafka's.

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::ResponseError as E;
use uuid::Uuid;

use crate::support::produce::*;
use crate::support::topics::*;
use crate::support::*;

/// A Fetch of `parts` (partition, fetch offset) of one topic on a session.
fn session_fetch(
    topic: &str,
    id: Uuid,
    parts: &[(i32, i64)],
    session_id: i32,
    epoch: i32,
) -> FetchRequest {
    let topics = if parts.is_empty() {
        Vec::new()
    } else {
        vec![FetchTopic::default()
            .with_topic(tn(topic))
            .with_topic_id(id)
            .with_partitions(
                parts
                    .iter()
                    .map(|&(p, offset)| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]
    };
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(topics)
}

/// (partition, record bytes) of every partition in the response, in order.
fn answered(r: &FetchResponse) -> Vec<(i32, usize)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.records.as_ref().map_or(0, |b| b.len())))
        .collect()
}

#[test]
fn full_then_incremental_fetches_carry_only_news() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "fs", 3, &[]);
    produce_ok(&mut c, "fs", 0, &simple_batch(1, 10, 1, 1));
    produce_ok(&mut c, "fs", 1, &simple_batch(1, 10, 1, 2));
    let all = [(0, 0), (1, 0), (2, 0)];

    // Full fetch, epoch 0: a session, every partition answered.
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &all, 0, 0));
    assert_eq!(r.error_code, NONE);
    let sid = r.session_id;
    assert_ne!(sid, 0, "a full fetch at epoch 0 opens a session");
    let got = answered(&r);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(got[0].1 > 0 && got[1].1 > 0 && got[2].1 == 0, "{got:?}");

    // Epoch 1: the consumer moves its offsets; nothing new anywhere.
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &[(0, 1), (1, 1)], sid, 1));
    assert_eq!((r.error_code, r.session_id), (NONE, sid));
    assert_eq!(answered(&r), vec![], "no partition has news");

    // Epoch 2: data on partition 2 only, with an empty request.
    produce_ok(&mut c, "fs", 2, &simple_batch(1, 10, 1, 3));
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &[], sid, 2));
    let got = answered(&r);
    assert_eq!(got.len(), 1, "only partition 2: {got:?}");
    assert_eq!(got[0].0, 2);
    assert!(got[0].1 > 0);

    // Epoch 3: a long poll on the session waits for data and wakes on it.
    let port = b.port;
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut p = Client::connect(port);
        produce_ok(&mut p, "fs", 0, &simple_batch(1, 10, 2, 4))
    });
    let t = Instant::now();
    let r: FetchResponse = c.call(
        12,
        &session_fetch("fs", id, &[(2, 1)], sid, 3).with_max_wait_ms(5000),
    );
    let el = t.elapsed();
    assert_eq!(producer.join().unwrap(), 1);
    let got = answered(&r);
    assert_eq!(got.len(), 1, "only partition 0: {got:?}");
    assert_eq!(got[0].0, 0);
    assert!(got[0].1 > 0);
    assert!(
        el >= Duration::from_millis(250) && el < Duration::from_millis(4000),
        "long poll took {el:?}"
    );

    // Epoch 4: no news: the full max_wait, then an empty answer.
    let t = Instant::now();
    let r: FetchResponse = c.call(
        12,
        &session_fetch("fs", id, &[(0, 2)], sid, 4).with_max_wait_ms(300),
    );
    let el = t.elapsed();
    assert_eq!((r.error_code, answered(&r)), (NONE, vec![]));
    assert!(
        el >= Duration::from_millis(250),
        "returned before max_wait: {el:?}"
    );

    // Epoch 5: forget partition 0; data there no longer comes back.
    let forget = ForgottenTopic::default()
        .with_topic(tn("fs"))
        .with_topic_id(id)
        .with_partitions(vec![0]);
    let r: FetchResponse = c.call(
        12,
        &session_fetch("fs", id, &[], sid, 5).with_forgotten_topics_data(vec![forget]),
    );
    assert_eq!((r.error_code, answered(&r)), (NONE, vec![]));
    produce_ok(&mut c, "fs", 0, &simple_batch(1, 10, 3, 5));
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &[], sid, 6));
    assert_eq!(
        (r.error_code, answered(&r)),
        (NONE, vec![]),
        "forgotten partition"
    );

    // Epoch 7: an earlier epoch again is refused, the session stays.
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &[], sid, 6));
    assert_eq!(
        (r.error_code, r.session_id, r.responses.len()),
        (E::InvalidFetchSessionEpoch.code(), 0, 0)
    );
    // A v13 request on a session of names: FETCH_SESSION_TOPIC_ID_ERROR.
    let r: FetchResponse = c.call(13, &session_fetch("fs", id, &[], sid, 7));
    assert_eq!(r.error_code, E::FetchSessionTopicIdError.code());
    // Adding partition 0 back answers it with its data.
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &[(0, 2)], sid, 7));
    let got = answered(&r);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].0 == 0 && got[0].1 > 0, "{got:?}");

    // Epoch -1 closes the session: a sessionless full answer...
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &all, sid, -1));
    assert_eq!(
        (r.error_code, r.session_id, answered(&r).len()),
        (NONE, 0, 3)
    );
    // ...after which the session is unknown.
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &[], sid, 8));
    assert_eq!(
        (r.error_code, r.session_id),
        (E::FetchSessionIdNotFound.code(), 0)
    );
    // An epoch without a session id names session 0, which never exists.
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &all, 0, 5));
    assert_eq!(r.error_code, E::FetchSessionIdNotFound.code());

    // A full fetch at epoch 0 naming a session replaces it by a new one.
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &all, 0, 0));
    let first = r.session_id;
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &all, first, 0));
    assert!(r.session_id != 0 && r.session_id != first);
    let r: FetchResponse = c.call(12, &session_fetch("fs", id, &[], first, 1));
    assert_eq!(r.error_code, E::FetchSessionIdNotFound.code());
    // Forgetting every partition ends the session: answered sessionless.
    let forget = ForgottenTopic::default()
        .with_topic(tn("fs"))
        .with_partitions(vec![0, 1, 2]);
    let fresh = r_session(&mut c, id);
    let r: FetchResponse = c.call(
        12,
        &session_fetch("fs", id, &[], fresh, 1).with_forgotten_topics_data(vec![forget]),
    );
    assert_eq!((r.error_code, r.session_id), (NONE, 0));
}

/// A fresh session over partitions 0..3 of "fs" (v12).
fn r_session(c: &mut Client, id: Uuid) -> i32 {
    let r: FetchResponse = c.call(
        12,
        &session_fetch("fs", id, &[(0, 0), (1, 0), (2, 0)], 0, 0),
    );
    assert_ne!(r.session_id, 0);
    r.session_id
}

#[test]
fn topic_id_sessions_and_unknown_ids() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "ids", 2, &[]);
    produce_ok(&mut c, "ids", 1, &simple_batch(1, 10, 1, 1));
    let r: FetchResponse = c.call(16, &session_fetch("", id, &[(0, 0), (1, 1)], 0, 0));
    let sid = r.session_id;
    assert_ne!(sid, 0);
    assert_eq!(r.responses[0].topic_id, id);
    // A v12 request on a topic-id session.
    let r: FetchResponse = c.call(12, &session_fetch("ids", id, &[], sid, 1));
    assert_eq!(r.error_code, E::FetchSessionTopicIdError.code());
    // An unknown topic id added to the session is answered with
    // UNKNOWN_TOPIC_ID (every time: errors always go out).
    let ghost = Uuid::new_v4();
    for epoch in [1, 2] {
        let r: FetchResponse = c.call(16, &session_fetch("", ghost, &[(0, 0)], sid, epoch));
        assert_eq!(r.error_code, NONE);
        assert_eq!(r.responses.len(), 1, "{r:?}");
        assert_eq!(r.responses[0].topic_id, ghost);
        assert_eq!(
            r.responses[0].partitions[0].error_code,
            E::UnknownTopicId.code()
        );
    }
    // Data produced on a known partition comes back by topic id.
    produce_ok(&mut c, "ids", 0, &simple_batch(1, 10, 1, 2));
    let r: FetchResponse = c.call(16, &session_fetch("", id, &[(1, 1)], sid, 3));
    let mine: Vec<_> = r.responses.iter().filter(|t| t.topic_id == id).collect();
    assert_eq!(mine.len(), 1, "{r:?}");
    let parts: Vec<i32> = mine[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(parts, vec![0], "only partition 0 has news");
}

#[test]
fn the_cache_slots_bound_sessions() {
    // Kafka splits the slots over 8 shards: 8 slots, one session a shard.
    let b = Broker::start(&["max.incremental.fetch.session.cache.slots=8"]);
    let mut c = b.client();
    let id = create_topic(&mut c, "slots", 1, &[]);
    let ids: Vec<i32> = (0..9)
        .map(|_| {
            let r: FetchResponse = c.call(12, &session_fetch("slots", id, &[(0, 0)], 0, 0));
            assert_eq!(r.error_code, NONE);
            r.session_id
        })
        .collect();
    assert!(ids[..8].iter().all(|&s| s != 0), "{ids:?}");
    assert_eq!(ids[8], 0, "a ninth young session finds no room: {ids:?}");
    // Every cached session still answers incrementally.
    for s in &ids[..8] {
        let r: FetchResponse = c.call(12, &session_fetch("slots", id, &[], *s, 1));
        assert_eq!((r.error_code, r.session_id), (NONE, *s));
    }
    drop(b);

    // No slots: no sessions at all, full answers as before.
    let b = Broker::start(&["max.incremental.fetch.session.cache.slots=0"]);
    let mut c = b.client();
    let id = create_topic(&mut c, "slots", 1, &[]);
    let r: FetchResponse = c.call(12, &session_fetch("slots", id, &[(0, 0)], 0, 0));
    assert_eq!(
        (r.error_code, r.session_id, r.responses.len()),
        (NONE, 0, 1)
    );
}

#[test]
fn session_metrics_are_scraped() {
    let (b, port) = crate::metrics::start_with_metrics();
    let mut c = b.client();
    let id = create_topic(&mut c, "m", 2, &[]);
    let r: FetchResponse = c.call(12, &session_fetch("m", id, &[(0, 0), (1, 0)], 0, 0));
    let sid = r.session_id;
    assert_ne!(sid, 0);
    let _: FetchResponse = c.call(12, &session_fetch("m", id, &[], sid, 1));
    let m = crate::metrics::scrape(port);
    assert_eq!(
        crate::metrics::get(&m, "kastle_incremental_fetch_sessions"),
        1.0
    );
    assert_eq!(
        crate::metrics::get(&m, "kastle_incremental_fetch_partitions_cached"),
        2.0
    );
    assert_eq!(
        crate::metrics::get(&m, "kastle_incremental_fetch_responses_total"),
        1.0
    );
    assert_eq!(
        crate::metrics::get(&m, "kastle_incremental_fetch_session_evictions_total"),
        0.0
    );
}
