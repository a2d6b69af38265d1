//! Black-box protocol tests for kastle: each test starts the real `kastle`
//! binary on a free port with a temporary data directory and talks to it over
//! TCP with hand-framed requests (bodies encoded and decoded with the
//! `kafka-protocol` crate), checking behaviour against Apache Kafka 4.x.

use std::collections::HashMap;

use bytes::Buf;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::admin::api_versions_ok;
use crate::support::fetch::*;
use crate::support::produce::*;
use crate::support::topics::*;
use crate::support::*;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::Decodable;
use uuid::Uuid;

// Kafka error codes used below.

// ---------------------------------------------------------------------------
// Request helpers
// ---------------------------------------------------------------------------

fn fresh_connection_works(b: &mut Broker) {
    b.assert_alive();
    let mut c = b.client();
    api_versions_ok(&mut c);
}

// ---------------------------------------------------------------------------
// 1. ApiVersions
// ---------------------------------------------------------------------------

#[test]
fn api_versions_ranges_and_errors() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    let expected: &[(i16, i16, i16)] = &[
        (0, 0, 13),
        (1, 4, 18),
        (2, 1, 11),
        (3, 0, 13),
        (18, 0, 5),
        (19, 2, 7),
        (20, 1, 6),
    ];
    for v in 0..=4i16 {
        let mut req = ApiVersionsRequest::default();
        if v >= 3 {
            req = req
                .with_client_software_name(sb("kastle-tests"))
                .with_client_software_version(sb("1.0.0"));
        }
        let r: ApiVersionsResponse = c.call(v, &req);
        assert_eq!(r.error_code, NONE, "v{v}");
        let got: HashMap<i16, (i16, i16)> = r
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        for &(key, min, max) in expected {
            assert_eq!(
                got.get(&key),
                Some(&(min, max)),
                "ApiVersions v{v}: range for api key {key}"
            );
        }
    }

    // v6: newer than supported. Kafka answers with a v0 body (header v0),
    // UNSUPPORTED_VERSION, and still lists the ApiVersions range.
    let body = encode(
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("x"))
            .with_client_software_version(sb("1")),
        4,
    );
    let f = frame_with_header(18, 6, 777, 2, &body);
    c.write_raw(&f).unwrap();
    let (corr, mut body) = c.recv_frame().expect("response to ApiVersions v5");
    assert_eq!(corr, 777);
    let r = ApiVersionsResponse::decode(&mut body, 0).expect("v0 body");
    assert_eq!(r.error_code, E::UnsupportedVersion.code());
    let av = r
        .api_keys
        .iter()
        .find(|k| k.api_key == 18)
        .expect("ApiVersions listed in the v6 error response");
    assert_eq!((av.min_version, av.max_version), (0, 5));

    // The connection stays usable after that.
    api_versions_ok(&mut c);

    // v3 with an invalid client software name -> INVALID_REQUEST.
    let r = c.call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("-bad"))
            .with_client_software_version(sb("1.0")),
    );
    assert_eq!(
        r.error_code,
        E::InvalidRequest.code(),
        "client_software_name \"-bad\""
    );
    let r = c.call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("good"))
            .with_client_software_version(sb("1.0-")),
    );
    assert_eq!(
        r.error_code,
        E::InvalidRequest.code(),
        "client_software_version \"1.0-\""
    );
    b.assert_alive();
}

/// An ApiVersions v5 body (KIP-1242), by hand: the crate stops at v4.
fn api_versions_v5_body(cluster_id: Option<&str>, node_id: i32) -> Vec<u8> {
    let compact = |out: &mut Vec<u8>, s: Option<&str>| match s {
        None => out.push(0),
        Some(s) => {
            out.push(s.len() as u8 + 1); // one-byte varint: short strings only
            out.extend_from_slice(s.as_bytes());
        }
    };
    let mut b = Vec::new();
    compact(&mut b, Some("kastle-tests"));
    compact(&mut b, Some("1.0.0"));
    compact(&mut b, cluster_id);
    b.extend_from_slice(&node_id.to_be_bytes());
    b.push(0); // no tagged fields
    b
}

/// ApiVersions v5 (KIP-1242): a client that names the cluster and node it
/// means to reach gets REBOOTSTRAP_REQUIRED (129) from any other, as from
/// Kafka 4.4, and INVALID_REQUEST when it names only one of the two; the
/// answer has v4's layout and a v0 header.
#[test]
fn api_versions_v5_checks_the_cluster_and_node_named() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    let md: MetadataResponse = c.call(12, &MetadataRequest::default().with_topics(Some(vec![])));
    let cluster = md.cluster_id.expect("cluster id").to_string();
    let node = md.controller_id.0;
    for (i, (cluster_id, node_id, code)) in [
        (None, -1, NONE),
        (None, node, E::InvalidRequest.code()), // both or neither
        (Some(cluster.as_str()), -1, E::InvalidRequest.code()),
        (Some(cluster.as_str()), node, NONE),
        (Some(cluster.as_str()), node + 5, 129),
        (Some("another-cluster"), node, 129),
    ]
    .into_iter()
    .enumerate()
    {
        let corr = 900 + i as i32;
        let f = frame_with_header(18, 5, corr, 2, &api_versions_v5_body(cluster_id, node_id));
        c.write_raw(&f).unwrap();
        let (got, mut body) = c.recv_frame().expect("response to ApiVersions v5");
        assert_eq!(got, corr);
        let r = ApiVersionsResponse::decode(&mut body, 4).expect("v4 layout");
        assert!(!body.has_remaining(), "case {i}: bytes left after the body");
        assert_eq!(
            r.error_code, code,
            "case {i}: {cluster_id:?} node {node_id}"
        );
        assert_eq!(r.api_keys.is_empty(), code != NONE, "case {i}");
    }
    api_versions_ok(&mut c);
    b.assert_alive();
}

// ---------------------------------------------------------------------------
// 2. Framing limits
// ---------------------------------------------------------------------------

#[test]
fn framing_limits() {
    let mut b = Broker::start(&["socket.request.max.bytes=1000"]);
    let mut early = b.client();
    api_versions_ok(&mut early);

    for (size, what) in [
        (2000i32, "2000 > 1000"),
        (i32::MAX, "2^31-1"),
        (-1, "-1"),
        (i32::MIN, "i32::MIN"),
    ] {
        let mut c = b.client();
        c.write_raw(&size.to_be_bytes()).unwrap();
        c.expect_closed(&format!("frame size {what}"));
    }
    // A request just under the limit is fine: Metadata v1 with padding topic names.
    let mut c = b.client();
    let names: Vec<String> = (0..10)
        .map(|i| format!("no-such-topic-{i:03}-{}", "x".repeat(60)))
        .collect();
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let body = encode(
        &MetadataRequest::default().with_topics(Some(
            refs.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(tn(t))))
                .collect(),
        )),
        1,
    );
    let f = frame(3, 1, 5, &body);
    assert!(
        f.len() - 4 <= 1000 && f.len() - 4 > 800,
        "frame size {}",
        f.len()
    );
    c.write_raw(&f).unwrap();
    let (corr, _) = c.recv(3, 1);
    assert_eq!(corr, 5);

    api_versions_ok(&mut early);
    fresh_connection_works(&mut b);
}

// ---------------------------------------------------------------------------
// 3. Allocation bombs
// ---------------------------------------------------------------------------

#[test]
fn huge_claimed_counts_do_not_allocate() {
    let mut b = Broker::start(&[]);
    let before = b.peak_rss_kib().expect("VmHWM");

    // Metadata v1: topics array claims 2^31-1 entries.
    let mut c = b.client();
    c.send(3, 1, 1, &i32::MAX.to_be_bytes());
    c.expect_closed("Metadata v1 with 2^31-1 topics");
    b.assert_alive();

    // Metadata v12 (flexible): compact array length varint 2^31-1.
    let mut body = Vec::new();
    put_uvarint(&mut body, i32::MAX as u64);
    let mut c = b.client();
    c.send(3, 12, 2, &body);
    c.expect_closed("Metadata v12 with 2^31-2 topics");
    b.assert_alive();

    // Produce v9 (flexible): one topic, partition array claims 2^31-2 entries.
    let mut body = vec![0u8]; // null transactional id
    put_i16(&mut body, -1);
    put_i32(&mut body, 1000);
    put_uvarint(&mut body, 2); // one topic
    put_uvarint(&mut body, 3);
    body.extend_from_slice(b"t1");
    put_uvarint(&mut body, i32::MAX as u64);
    let mut c = b.client();
    c.send(0, 9, 3, &body);
    c.expect_closed("Produce v9 with huge partition count");
    b.assert_alive();

    // Produce v3 (non-flexible) same idea.
    let mut body = Vec::new();
    put_i16(&mut body, -1); // null transactional id
    put_i16(&mut body, -1);
    put_i32(&mut body, 1000);
    put_i32(&mut body, 1);
    put_i16(&mut body, 2);
    body.extend_from_slice(b"t1");
    put_i32(&mut body, i32::MAX);
    let mut c = b.client();
    c.send(0, 3, 4, &body);
    c.expect_closed("Produce v3 with huge partition count");
    b.assert_alive();

    // A huge string length inside a small frame.
    let mut body = Vec::new();
    put_i32(&mut body, 1);
    put_i16(&mut body, i16::MAX);
    let mut c = b.client();
    c.send(3, 1, 5, &body);
    c.expect_closed("Metadata v1 with a 32767-byte topic name in 6 bytes");

    fresh_connection_works(&mut b);
    let after = b.peak_rss_kib().expect("VmHWM");
    assert!(
        after < before + 256 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
}

// ---------------------------------------------------------------------------
// 4. Unknown keys and unsupported versions
// ---------------------------------------------------------------------------

#[test]
fn unknown_api_and_unsupported_versions_close() {
    let mut b = Broker::start(&[]);
    let body = [0u8; 16];
    for (key, version, what) in [
        (999i16, 0i16, "api key 999"),
        (0, 2, "Produce v2"),
        (1, 3, "Fetch v3"),
        (3, 14, "Metadata v14"),
        (2, 0, "ListOffsets v0"),
        (19, 1, "CreateTopics v1"),
        (38, 1, "CreateDelegationToken (not implemented)"),
    ] {
        let mut c = b.client();
        c.send(key, version, 42, &body);
        c.expect_closed(what);
        b.assert_alive();
    }
    fresh_connection_works(&mut b);
}

// ---------------------------------------------------------------------------
// 5. Truncated frames and garbage
// ---------------------------------------------------------------------------

#[test]
fn truncated_frames_and_garbage() {
    let mut b = Broker::start(&[]);
    {
        // 100 bytes promised, 20 sent, then disconnect.
        let mut s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
        s.write_all(&100i32.to_be_bytes()).unwrap();
        s.write_all(&[1u8; 20]).unwrap();
    }
    {
        // Partial size prefix then disconnect.
        let mut s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
        s.write_all(&[0u8, 0]).unwrap();
    }
    // A 3-byte frame cannot hold a request header.
    let mut c = b.client();
    c.write_raw(&[0, 0, 0, 3, 0, 18, 0]).unwrap();
    c.expect_closed("3-byte frame");
    // Header claiming a client id longer than the frame.
    let mut c = b.client();
    let mut f = Vec::new();
    put_i32(&mut f, 10);
    put_i16(&mut f, 18);
    put_i16(&mut f, 3);
    put_i32(&mut f, 1);
    put_i16(&mut f, 500);
    c.write_raw(&f).unwrap();
    c.expect_closed("client id longer than the frame");
    b.assert_alive();

    // Seeded random frames: random sizes, random bodies, valid headers with random bodies.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let apis: [(i16, i16, i16); 7] = [
        (0, 3, 13),
        (1, 4, 18),
        (2, 1, 11),
        (3, 0, 13),
        (18, 0, 5),
        (19, 2, 7),
        (20, 1, 6),
    ];
    for i in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
        let bytes = match rng.below(3) {
            0 => {
                let n = rng.below(64) as usize;
                rng.bytes(n)
            }
            1 => {
                let n = rng.below(200) as usize;
                let mut f = (n as i32).to_be_bytes().to_vec();
                f.extend(rng.bytes(n));
                f
            }
            _ => {
                let (key, min, max) = apis[rng.below(apis.len() as u64) as usize];
                let v = min + rng.below((max - min + 1) as u64) as i16;
                let n = rng.below(120) as usize;
                let body = rng.bytes(n);
                frame(key, v, i, &body)
            }
        };
        let _ = s.write_all(&bytes);
        if i % 50 == 49 {
            b.assert_alive();
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    fresh_connection_works(&mut b);
}

// ---------------------------------------------------------------------------
// 6. Pipelining
// ---------------------------------------------------------------------------

#[test]
fn pipelined_requests_answer_in_order() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "pipe", 1, &[]);
    let mut all = Vec::new();
    let mut kinds = Vec::new();
    for i in 0..50 {
        let corr = 1000 + i;
        if i % 2 == 0 {
            all.extend(frame(
                18,
                3,
                corr,
                &encode(
                    &ApiVersionsRequest::default()
                        .with_client_software_name(sb("p"))
                        .with_client_software_version(sb("1")),
                    3,
                ),
            ));
            kinds.push((18i16, 3i16));
        } else {
            let v = if i % 4 == 1 { 12 } else { 1 };
            all.extend(frame(
                3,
                v,
                corr,
                &encode(&MetadataRequest::default().with_topics(None), v),
            ));
            kinds.push((3, v));
        }
    }
    c.write_raw(&all).unwrap();
    for (i, (key, v)) in kinds.into_iter().enumerate() {
        let (corr, mut body) = c.recv(key, v);
        assert_eq!(corr, 1000 + i as i32, "response {i} out of order");
        if key == 18 {
            let r = ApiVersionsResponse::decode(&mut body, v).unwrap();
            assert_eq!(r.error_code, NONE);
        } else {
            let r = MetadataResponse::decode(&mut body, v).unwrap();
            assert!(md_topic(&r, "pipe").is_some(), "response {i}: topic listed");
        }
    }
}

// ---------------------------------------------------------------------------
// 7. CreateTopics, DeleteTopics, Metadata
// ---------------------------------------------------------------------------

#[test]
fn create_topics_validation() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let r = try_create_topic(&mut c, "t1", 3, &[]);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    assert!(!r.topic_id.is_nil(), "v7 returns a topic id");
    assert_eq!(r.num_partitions, 3);
    let t1_id = r.topic_id;

    assert_eq!(
        try_create_topic(&mut c, "t1", 3, &[]).error_code,
        E::TopicAlreadyExists.code()
    );
    assert_eq!(
        try_create_topic(&mut c, "bad/name", 1, &[]).error_code,
        E::InvalidTopicException.code()
    );
    assert_eq!(
        try_create_topic(&mut c, &"x".repeat(250), 1, &[]).error_code,
        E::InvalidTopicException.code(),
        "250-char name"
    );
    assert_eq!(
        try_create_topic(&mut c, ".", 1, &[]).error_code,
        E::InvalidTopicException.code(),
        "\".\""
    );
    assert_eq!(
        try_create_topic(&mut c, "..", 1, &[]).error_code,
        E::InvalidTopicException.code(),
        "\"..\""
    );
    // 249 chars is the maximum legal length.
    assert_eq!(
        try_create_topic(&mut c, &"y".repeat(249), 1, &[]).error_code,
        NONE,
        "249-char name"
    );

    let r = create_topics(&mut c, 7, vec![topic_spec("rf3", 1, 3, &[])], false);
    assert_eq!(r[0].error_code, E::InvalidReplicationFactor.code());
    assert_eq!(
        try_create_topic(&mut c, "zero", 0, &[]).error_code,
        E::InvalidPartitions.code()
    );
    assert_eq!(
        try_create_topic(&mut c, "neg", -5, &[]).error_code,
        E::InvalidPartitions.code()
    );
    assert_eq!(
        try_create_topic(&mut c, "badcfg", 1, &[("made.up.config", "1")]).error_code,
        E::InvalidConfig.code()
    );
    assert_eq!(
        try_create_topic(&mut c, "badval", 1, &[("retention.ms", "soon")]).error_code,
        E::InvalidConfig.code()
    );
    for n in ["rf3", "zero", "neg", "badcfg", "badval"] {
        assert_eq!(
            topic_error(&mut c, n),
            E::UnknownTopicOrPartition.code(),
            "{n} must not exist after a failed create"
        );
    }

    // validate_only: success but nothing created.
    let r = create_topics(&mut c, 7, vec![topic_spec("dry", 2, 1, &[])], true);
    assert_eq!(r[0].error_code, NONE);
    assert_eq!(
        topic_error(&mut c, "dry"),
        E::UnknownTopicOrPartition.code(),
        "validate_only must not create"
    );

    // Collision of '.' and '_'.
    assert_eq!(try_create_topic(&mut c, "a.b", 1, &[]).error_code, NONE);
    assert_eq!(
        try_create_topic(&mut c, "a_b", 1, &[]).error_code,
        E::InvalidTopicException.code(),
        "a_b collides with a.b"
    );

    // Older versions: v2 (no topic id) still works.
    let r = create_topics(&mut c, 2, vec![topic_spec("old", 2, 1, &[])], false);
    assert_eq!(r[0].error_code, NONE);
    let m = metadata(&mut c, 12, Some(&["t1", "old"]), false);
    let t1 = md_topic(&m, "t1").unwrap();
    assert_eq!(t1.error_code, NONE);
    assert_eq!(t1.topic_id, t1_id, "metadata topic id equals CreateTopics'");
    assert_eq!(t1.partitions.len(), 3);
    assert_eq!(md_topic(&m, "old").unwrap().partitions.len(), 2);
}

#[test]
fn delete_topics() {
    let b = Broker::start(&[]);
    let mut c = b.client();

    let r = c.call(
        6,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(tn("missing")))
            ]),
    );
    assert_eq!(
        r.responses[0].error_code,
        E::UnknownTopicOrPartition.code(),
        "delete missing (v6 by name)"
    );
    let r = c.call(
        4,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topic_names(vec![tn("missing")]),
    );
    assert_eq!(
        r.responses[0].error_code,
        E::UnknownTopicOrPartition.code(),
        "delete missing (v4)"
    );
    let r = c.call(
        6,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                DeleteTopicState::default().with_topic_id(Uuid::new_v4())
            ]),
    );
    assert_eq!(
        r.responses[0].error_code,
        E::UnknownTopicId.code(),
        "delete unknown topic id"
    );

    // Delete by id.
    let id = create_topic(&mut c, "byid", 2, &[]);
    let r = c.call(
        6,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![DeleteTopicState::default().with_topic_id(id)]),
    );
    assert_eq!(r.responses.len(), 1);
    assert_eq!(
        r.responses[0].error_code, NONE,
        "delete by id: {:?}",
        r.responses[0].error_message
    );
    assert_eq!(r.responses[0].topic_id, id);
    assert_eq!(
        r.responses[0].name.as_ref().map(|n| n.0.as_str()),
        Some("byid"),
        "v6 response names the topic"
    );
    assert_eq!(
        topic_error(&mut c, "byid"),
        E::UnknownTopicOrPartition.code()
    );
    wait_until(
        "partition directory removed",
        Duration::from_secs(5),
        || !b.data_dir.join("byid-0").exists(),
    );

    // Delete by name (v1), then recreate: a new, empty topic.
    let old = create_topic(&mut c, "again", 1, &[]);
    produce_ok(&mut c, "again", 0, &simple_batch(3, 10, 1000, 1));
    let r = c.call(
        1,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topic_names(vec![tn("again")]),
    );
    assert_eq!(r.responses[0].error_code, NONE);
    assert_eq!(
        topic_error(&mut c, "again"),
        E::UnknownTopicOrPartition.code()
    );
    let new = create_topic(&mut c, "again", 1, &[]);
    assert_ne!(old, new, "recreated topic gets a new id");
    assert_eq!(latest(&mut c, "again", 0), 0, "recreated topic is empty");
    assert_eq!(
        produce_ok(&mut c, "again", 0, &simple_batch(1, 10, 1000, 2)),
        0
    );
}

#[test]
fn metadata_basics_and_restart() {
    let mut b = Broker::start(&["num.partitions=2"]);
    let mut c = b.client();
    let id = create_topic(&mut c, "m1", 3, &[]);
    let mut cluster = None;
    for v in [0i16, 1, 4, 9, 10, 12, 13] {
        let m = metadata(&mut c, v, Some(&["m1"]), false);
        assert_eq!(m.brokers.len(), 1, "v{v}");
        assert_eq!(m.brokers[0].node_id, BrokerId(1), "v{v} node id");
        assert_eq!(
            m.brokers[0].host.as_str(),
            "127.0.0.1",
            "v{v} advertised host"
        );
        assert_eq!(m.brokers[0].port, b.port as i32, "v{v} advertised port");
        if v >= 1 {
            assert_eq!(m.controller_id, BrokerId(1), "v{v} controller id");
        }
        if v >= 2 {
            let cid = m.cluster_id.clone().expect("cluster id");
            assert!(!cid.as_str().is_empty());
            cluster = Some(cid.as_str().to_string());
        }
        let t = md_topic(&m, "m1").expect("m1 listed");
        assert_eq!(t.error_code, NONE);
        assert_eq!(t.partitions.len(), 3);
        let mut idx: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2]);
        for p in &t.partitions {
            assert_eq!(p.error_code, NONE);
            assert_eq!(p.leader_id, BrokerId(1));
            assert_eq!(p.replica_nodes, vec![BrokerId(1)]);
            assert_eq!(p.isr_nodes, vec![BrokerId(1)]);
        }
        if v >= 10 {
            assert_eq!(t.topic_id, id, "v{v} topic id");
        }
    }
    // All topics (null list) includes m1.
    let m = metadata(&mut c, 12, None, false);
    assert!(md_topic(&m, "m1").is_some());

    // Auto-creation (enabled by default): the topic is created, and
    // answered as Kafka answers while it creates one (the client asks again).
    let m = metadata(&mut c, 12, Some(&["auto1"]), true);
    let e = md_topic(&m, "auto1").unwrap().error_code;
    assert_eq!(
        e,
        E::UnknownTopicOrPartition.code(),
        "auto-create first response error {e}"
    );
    let m = metadata(&mut c, 12, Some(&["auto1"]), false);
    let t = md_topic(&m, "auto1").unwrap();
    assert_eq!(t.error_code, NONE, "auto-created topic exists");
    assert_eq!(t.partitions.len(), 2, "auto-created with num.partitions");
    assert_eq!(
        topic_error(&mut c, "noauto"),
        E::UnknownTopicOrPartition.code(),
        "allow_auto_topic_creation=false"
    );
    // Metadata v1 (no flag) auto-creates too.
    metadata(&mut c, 1, Some(&["auto2"]), true);
    assert_eq!(topic_error(&mut c, "auto2"), NONE);

    // Cluster id stable across restart; topic id too.
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    let m = metadata(&mut c, 12, Some(&["m1"]), false);
    assert_eq!(
        m.cluster_id.as_ref().map(|s| s.as_str().to_string()),
        cluster,
        "cluster id after restart"
    );
    assert_eq!(
        md_topic(&m, "m1").unwrap().topic_id,
        id,
        "topic id after restart"
    );
    assert_eq!(md_topic(&m, "m1").unwrap().partitions.len(), 3);
}

#[test]
fn metadata_auto_create_disabled() {
    let b = Broker::start(&["auto.create.topics.enable=false"]);
    let mut c = b.client();
    let m = metadata(&mut c, 12, Some(&["nope"]), true);
    assert_eq!(
        md_topic(&m, "nope").unwrap().error_code,
        E::UnknownTopicOrPartition.code()
    );
    let m = metadata(&mut c, 1, Some(&["nope"]), true);
    assert_eq!(
        md_topic(&m, "nope").unwrap().error_code,
        E::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        topic_error(&mut c, "nope"),
        E::UnknownTopicOrPartition.code()
    );
    // Produce to an unknown topic does not create it either.
    let r = produce(&mut c, "nope", 0, &simple_batch(1, 5, 1000, 0));
    assert_eq!(r.error_code, E::UnknownTopicOrPartition.code());
}

// ---------------------------------------------------------------------------
// 8. Produce / Fetch semantics
// ---------------------------------------------------------------------------

#[test]
fn produce_fetch_roundtrip() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "t1", 1, &[]);
    let m = metadata(&mut c, 12, Some(&["t1"]), false);
    let leader_epoch = md_topic(&m, "t1").unwrap().partitions[0].leader_epoch;

    let batches: Vec<Vec<u8>> = (0..3)
        .map(|i| simple_batch(5, 40, 1_700_000_000_000 + i, i as u8))
        .collect();
    for (i, bt) in batches.iter().enumerate() {
        let r = produce(&mut c, "t1", 0, bt);
        assert_eq!(r.error_code, NONE);
        assert_eq!(r.base_offset, 5 * i as i64, "base offset of batch {i}");
        assert_eq!(r.log_start_offset, 0);
    }
    // Produce v11 (v12 differs only for transactional batches: KIP-890 part 2).
    let extra = simple_batch(2, 8, 1_700_000_000_100, 9);
    let r = produce_v(&mut c, 11, "t1", 0, -1, &extra);
    assert_eq!(r.error_code, NONE, "produce v11");
    assert_eq!(r.base_offset, 15);
    let mut all = batches.clone();
    all.push(extra);
    let offsets = [0i64, 5, 10, 15];

    for v in [4i16, 11, 12, 13, 16, 18] {
        let p = fetch_with(
            &mut c,
            "t1",
            0,
            &FetchArgs {
                topic_id: id,
                version: v,
                ..Default::default()
            },
        );
        assert_eq!(p.error_code, NONE, "fetch v{v}");
        assert_eq!(p.high_watermark, 17, "fetch v{v} high watermark");
        assert_eq!(p.last_stable_offset, 17, "fetch v{v} last stable offset");
        if v >= 5 {
            assert_eq!(p.log_start_offset, 0, "fetch v{v} log start offset");
        }
        let got = split_batches(&records(&p));
        assert_eq!(got.len(), 4, "fetch v{v}: batch count");
        for (i, g) in got.iter().enumerate() {
            assert_same_batch(
                g,
                &all[i],
                offsets[i],
                leader_epoch,
                &format!("fetch v{v} batch {i}"),
            );
        }
    }
    // From the middle of a batch: the containing batch comes back.
    let p = fetch_with(
        &mut c,
        "t1",
        0,
        &FetchArgs {
            topic_id: id,
            offset: 7,
            ..Default::default()
        },
    );
    let got = split_batches(&records(&p));
    assert_eq!(
        batch_base_offset(&got[0]),
        5,
        "fetch from offset 7 starts at the containing batch"
    );

    // At the end: empty, not null.
    for v in [12i16, 13] {
        let p = fetch_with(
            &mut c,
            "t1",
            0,
            &FetchArgs {
                topic_id: id,
                version: v,
                offset: 17,
                ..Default::default()
            },
        );
        assert_eq!(p.error_code, NONE);
        assert_eq!(
            p.records.as_ref().map(|r| r.len()),
            Some(0),
            "fetch v{v} at end: empty records, not null"
        );
        assert_eq!(p.high_watermark, 17);
    }
    // Beyond the end.
    let p = fetch_with(
        &mut c,
        "t1",
        0,
        &FetchArgs {
            topic_id: id,
            offset: 100,
            ..Default::default()
        },
    );
    assert_eq!(
        p.error_code,
        E::OffsetOutOfRange.code(),
        "fetch offset 100 of 17"
    );
    // Kafka's answer to a failed read (ReplicaManager.readFromLog) knows no
    // offsets and no aborted-transactions list.
    assert_eq!(
        (
            p.high_watermark,
            p.last_stable_offset,
            p.log_start_offset,
            p.aborted_transactions.is_none()
        ),
        (-1, -1, -1, true),
        "offsets and aborted transactions of an out-of-range read"
    );
    assert_eq!(p.records.as_ref().map(|r| r.len()), Some(0));
    let p = fetch_with(
        &mut c,
        "t1",
        0,
        &FetchArgs {
            topic_id: id,
            offset: -5,
            ..Default::default()
        },
    );
    assert_eq!(p.error_code, E::OffsetOutOfRange.code(), "fetch offset -5");

    // Unknown topic / partition.
    let p = fetch_with(&mut c, "nosuch", 0, &FetchArgs::default());
    assert_eq!(
        p.error_code,
        E::UnknownTopicOrPartition.code(),
        "fetch v12 unknown topic"
    );
    let p = fetch_with(
        &mut c,
        "t1",
        7,
        &FetchArgs {
            topic_id: id,
            ..Default::default()
        },
    );
    assert_eq!(
        p.error_code,
        E::UnknownTopicOrPartition.code(),
        "fetch v12 unknown partition"
    );
    // Refused before any read (FetchResponse.partitionResponse): offsets -1
    // and an empty aborted-transactions list.
    assert_eq!(
        (
            p.high_watermark,
            p.log_start_offset,
            p.aborted_transactions.as_ref().map(Vec::len)
        ),
        (-1, -1, Some(0)),
        "unknown partition's offsets and aborted transactions"
    );
    let r = fetch_response(
        &mut c,
        "",
        0,
        &FetchArgs {
            topic_id: Uuid::new_v4(),
            version: 13,
            ..Default::default()
        },
    );
    let code = if r.error_code != NONE {
        r.error_code
    } else {
        r.responses[0].partitions[0].error_code
    };
    assert_eq!(code, E::UnknownTopicId.code(), "fetch v13 unknown topic id");

    // Corrupt CRC: rejected, nothing appended.
    let mut bad = simple_batch(3, 20, 1_700_000_000_000, 7);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let r = produce(&mut c, "t1", 0, &bad);
    assert_eq!(
        r.error_code,
        E::CorruptMessage.code(),
        "flipped byte in a batch"
    );
    assert_eq!(
        latest(&mut c, "t1", 0),
        17,
        "nothing appended after a corrupt batch"
    );

    // Invalid acks.
    let r = produce_v(&mut c, 9, "t1", 0, 5, &simple_batch(1, 5, 1, 1));
    assert_eq!(r.error_code, E::InvalidRequiredAcks.code(), "acks=5");
    assert_eq!(latest(&mut c, "t1", 0), 17);

    // Produce to an unknown partition.
    let r = produce(&mut c, "t1", 9, &simple_batch(1, 5, 1, 1));
    assert_eq!(
        r.error_code,
        E::UnknownTopicOrPartition.code(),
        "produce to partition 9 of 1"
    );

    // max.message.bytes per topic.
    create_topic(&mut c, "small", 1, &[("max.message.bytes", "1000")]);
    let r = produce(&mut c, "small", 0, &simple_batch(1, 2000, 1, 1));
    assert_eq!(
        r.error_code,
        E::MessageTooLarge.code(),
        "2 KB batch into max.message.bytes=1000"
    );
    assert_eq!(latest(&mut c, "small", 0), 0);
    let r = produce(&mut c, "small", 0, &simple_batch(1, 500, 1, 1));
    assert_eq!(r.error_code, NONE, "small batch fits");
}

/// A Produce v13 request (topics named by id, KIP-516) of one record set
/// per (topic id, partition), with `acks`.
fn produce_by_id(
    c: &mut Client,
    acks: i16,
    targets: &[(Uuid, i32)],
    records: &[u8],
) -> kafka_protocol::messages::ProduceResponse {
    use kafka_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    let topics = targets
        .iter()
        .map(|(id, p)| {
            TopicProduceData::default()
                .with_topic_id(*id)
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(*p)
                    .with_records(Some(bytes::Bytes::copy_from_slice(records)))])
        })
        .collect();
    c.call(
        13,
        &ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(10_000)
            .with_topic_data(topics),
    )
}

/// The (topic id, partition, error code) of every partition's answer.
fn answers_by_id(r: &kafka_protocol::messages::ProduceResponse) -> Vec<(Uuid, i32, i16)> {
    r.responses
        .iter()
        .flat_map(|t| {
            assert_eq!(t.name.0.as_str(), "", "a v13 answer names no topic");
            t.partition_responses
                .iter()
                .map(|p| (t.topic_id, p.index, p.error_code))
        })
        .collect()
}

#[test]
fn produce_v13_names_topics_by_id() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "byid", 2, &[]);
    let one = simple_batch(3, 10, 1_700_000_000_000, 1);

    // A known id: appended, and read back by id.
    let r = produce_by_id(&mut c, -1, &[(id, 1)], &one);
    assert_eq!(answers_by_id(&r), vec![(id, 1, NONE)]);
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 0);
    let m = metadata(&mut c, 12, Some(&["byid"]), false);
    let epoch = md_topic(&m, "byid")
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 1))
        .map(|p| p.leader_epoch)
        .expect("partition 1 in the metadata");
    let got = fetch_all_v13(&mut c, "byid", id, 1);
    assert_eq!(got.len(), 1, "one batch by id");
    assert_same_batch(&got[0], &one, 0, epoch, "produced by id");

    // Kafka's answers by id: a known topic without the partition, an
    // unknown id, the zero id (UNKNOWN_TOPIC_ID, never a name lookup).
    let unknown = Uuid::new_v4();
    let r = produce_by_id(&mut c, -1, &[(id, 7)], &one);
    assert_eq!(
        answers_by_id(&r),
        vec![(id, 7, E::UnknownTopicOrPartition.code())]
    );
    let r = produce_by_id(&mut c, -1, &[(unknown, 0)], &one);
    assert_eq!(
        answers_by_id(&r),
        vec![(unknown, 0, E::UnknownTopicId.code())]
    );
    let r = produce_by_id(&mut c, -1, &[(Uuid::nil(), 0)], &one);
    assert_eq!(
        answers_by_id(&r),
        vec![(Uuid::nil(), 0, E::UnknownTopicId.code())]
    );
    // One request mixing them: each partition answered on its own.
    let r = produce_by_id(&mut c, -1, &[(id, 0), (unknown, 0), (id, 9)], &one);
    let mut got = answers_by_id(&r);
    got.sort();
    let mut want = vec![
        (id, 0, NONE),
        (unknown, 0, E::UnknownTopicId.code()),
        (id, 9, E::UnknownTopicOrPartition.code()),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        latest(&mut c, "byid", 0),
        3,
        "only the known partition took it"
    );

    // Invalid acks come after the topic and partition checks
    // (`ReplicaManager.appendRecords`), at every version.
    let r = produce_by_id(&mut c, 2, &[(unknown, 0), (id, 9), (id, 0)], &one);
    let mut got = answers_by_id(&r);
    got.sort();
    let mut want = vec![
        (unknown, 0, E::UnknownTopicId.code()),
        (id, 9, E::UnknownTopicOrPartition.code()),
        (id, 0, E::InvalidRequiredAcks.code()),
    ];
    want.sort();
    assert_eq!(got, want, "acks=2");
    let r = produce_v(&mut c, 12, "nosuch", 0, 2, &one);
    assert_eq!(
        r.error_code,
        E::UnknownTopicOrPartition.code(),
        "v12 acks=2"
    );
    assert_eq!(latest(&mut c, "byid", 0), 3, "nothing appended with acks=2");

    // A deleted and recreated topic: its old id is unknown, the new one
    // takes records.
    delete_topic(&mut c, "byid");
    let new_id = create_topic(&mut c, "byid", 2, &[]);
    assert_ne!(new_id, id);
    let r = produce_by_id(&mut c, -1, &[(id, 0)], &one);
    assert_eq!(answers_by_id(&r), vec![(id, 0, E::UnknownTopicId.code())]);
    let r = produce_by_id(&mut c, -1, &[(new_id, 0)], &one);
    assert_eq!(answers_by_id(&r), vec![(new_id, 0, NONE)]);
    assert_eq!(latest(&mut c, "byid", 0), 3);
}

#[test]
fn produce_acks_zero() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "z", 1, &[]);
    let bt = simple_batch(4, 30, 1_700_000_000_000, 3);
    let produce_corr = c.send_only(9, &produce_request("z", 0, 0, &bt));
    // The next response on this connection must be the fetch's: acks=0 gets none.
    let fetch_corr = c.next_corr();
    let a = FetchArgs {
        topic_id: id,
        max_wait_ms: 3000,
        ..Default::default()
    };
    c.send(1, 12, fetch_corr, &encode(&fetch_request("z", 0, &a), 12));
    let (corr, mut body) = c.recv(1, 12);
    assert_ne!(corr, produce_corr, "acks=0 produce must not be answered");
    assert_eq!(corr, fetch_corr);
    let r = FetchResponse::decode(&mut body, 12).unwrap();
    let got = split_batches(r.responses[0].partitions[0].records.as_ref().unwrap());
    assert_eq!(got.len(), 1, "acks=0 data arrived");
    assert_same_batch(&got[0], &bt, 0, 0, "acks=0 batch");

    // acks=0 with a corrupt batch: Kafka closes the connection.
    let mut bad = simple_batch(2, 30, 1_700_000_000_000, 4);
    let n = bad.len();
    bad[n - 3] ^= 0x55;
    c.send_only(9, &produce_request("z", 0, 0, &bad));
    c.expect_closed("acks=0 produce with a corrupt batch");
    let mut c2 = b.client();
    assert_eq!(
        latest(&mut c2, "z", 0),
        4,
        "corrupt acks=0 batch not appended"
    );
}

// ---------------------------------------------------------------------------
// 9. Byte limits
// ---------------------------------------------------------------------------

#[test]
fn fetch_byte_limits_return_whole_batches() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "big", 1, &[]);
    let batches: Vec<Vec<u8>> = (0..10)
        .map(|i| simple_batch(1, 1000, 1_700_000_000_000, i as u8))
        .collect();
    for (i, bt) in batches.iter().enumerate() {
        assert_eq!(produce_ok(&mut c, "big", 0, bt), i as i64);
    }
    let blen = batches[0].len();
    assert!(2 * blen <= 3000 && 3 * blen > 3000, "batch length {blen}");

    // Response limit of 1 byte: still exactly one whole batch (KIP-74).
    let p = fetch_with(
        &mut c,
        "big",
        0,
        &FetchArgs {
            topic_id: id,
            max_bytes: 1,
            ..Default::default()
        },
    );
    let got = split_batches(&records(&p));
    assert_eq!(got.len(), 1, "max_bytes=1 returns one batch");
    assert_same_batch(&got[0], &batches[0], 0, 0, "max_bytes=1");

    // Partition limit 1 byte: one whole batch as well.
    let p = fetch_with(
        &mut c,
        "big",
        0,
        &FetchArgs {
            topic_id: id,
            offset: 4,
            partition_max_bytes: 1,
            ..Default::default()
        },
    );
    let got = split_batches(&records(&p));
    assert_eq!(got.len(), 1, "partition_max_bytes=1 returns one batch");
    assert_eq!(batch_base_offset(&got[0]), 4);

    // Partition limit 3000: two whole batches, no partial third.
    let p = fetch_with(
        &mut c,
        "big",
        0,
        &FetchArgs {
            topic_id: id,
            partition_max_bytes: 3000,
            ..Default::default()
        },
    );
    let raw = records(&p);
    let got = split_batches(&raw);
    assert_eq!(
        got.len(),
        2,
        "partition_max_bytes=3000 returns 2 whole batches (got {} bytes)",
        raw.len()
    );
    assert_eq!(raw.len(), 2 * blen);

    // Response limit 3000: same.
    let p = fetch_with(
        &mut c,
        "big",
        0,
        &FetchArgs {
            topic_id: id,
            offset: 3,
            max_bytes: 3000,
            ..Default::default()
        },
    );
    let got = split_batches(&records(&p));
    assert_eq!(got.len(), 2, "max_bytes=3000");
    assert_eq!(batch_base_offset(&got[0]), 3);
}

// ---------------------------------------------------------------------------
// 10. Long poll
// ---------------------------------------------------------------------------

/// The copy path kept for the sendfile A/B (`KASTLE_FETCH_SEND=pread`):
/// regions larger than its 256 KiB step, and several in one response,
/// arrive byte for byte, and the connection stays usable after them.
#[test]
fn fetch_through_the_pread_path_delivers_the_same_bytes() {
    let b = Broker::start_wrapped(&["env", "KASTLE_FETCH_SEND=pread"], &[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "copied", 2, &[]);
    let first = simple_batch(300, 2000, now_ms(), 1);
    let second = simple_batch(50, 100, now_ms(), 2);
    assert_eq!(produce_ok(&mut c, "copied", 0, &first), 0);
    assert_eq!(produce_ok(&mut c, "copied", 0, &second), 300);
    assert_eq!(produce_ok(&mut c, "copied", 1, &second), 0);
    for round in 0..2 {
        let p = fetch_with(
            &mut c,
            "copied",
            0,
            &FetchArgs {
                topic_id: id,
                ..Default::default()
            },
        );
        let got = split_batches(&records(&p));
        assert_eq!(got.len(), 2, "round {round}");
        assert_same_batch(&got[0], &first, 0, 0, "600 KB batch through pread");
        assert_same_batch(&got[1], &second, 300, 0, "small batch after it");
        let p = fetch_ok(&mut c, "copied", 1, 0);
        let got = split_batches(&records(&p));
        assert_eq!(got.len(), 1, "round {round}");
        assert_same_batch(&got[0], &second, 0, 0, "second partition");
    }
    api_versions_ok(&mut c);
}

#[test]
fn fetch_long_poll() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "lp", 1, &[]);
    produce_ok(&mut c, "lp", 0, &simple_batch(1, 10, 1, 1));

    // No data: returns after max_wait.
    let t = Instant::now();
    let p = fetch_with(
        &mut c,
        "lp",
        0,
        &FetchArgs {
            topic_id: id,
            offset: 1,
            max_wait_ms: 300,
            ..Default::default()
        },
    );
    let el = t.elapsed();
    assert_eq!(
        p.records.as_ref().map(|r| r.len()),
        Some(0),
        "empty after max_wait"
    );
    assert!(
        el >= Duration::from_millis(250) && el < Duration::from_secs(2),
        "max_wait 300 took {el:?}"
    );

    // Data arriving while waiting wakes the fetch early.
    let port = b.port;
    let bt = simple_batch(2, 10, 2, 2);
    let bt2 = bt.clone();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut p = Client::connect(port);
        produce_ok(&mut p, "lp", 0, &bt2)
    });
    let t = Instant::now();
    let p = fetch_with(
        &mut c,
        "lp",
        0,
        &FetchArgs {
            topic_id: id,
            offset: 1,
            max_wait_ms: 5000,
            min_bytes: 1,
            ..Default::default()
        },
    );
    let el = t.elapsed();
    assert_eq!(producer.join().unwrap(), 1);
    let got = split_batches(&records(&p));
    assert_eq!(got.len(), 1, "long poll returns the new batch");
    assert_same_batch(&got[0], &bt, 1, 0, "long-poll batch");
    assert!(el < Duration::from_millis(2500), "long poll took {el:?}");
    assert!(
        el >= Duration::from_millis(250),
        "long poll returned before data was produced: {el:?}"
    );
}

// ---------------------------------------------------------------------------
// 11. ListOffsets
// ---------------------------------------------------------------------------

#[test]
fn list_offsets() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "lo", 1, &[]);
    for v in [1i16, 7, 10] {
        let r = list_offset(&mut c, v, "lo", 0, -1);
        assert_eq!((r.error_code, r.offset), (NONE, 0), "v{v} latest of empty");
        let r = list_offset(&mut c, v, "lo", 0, -2);
        assert_eq!(
            (r.error_code, r.offset),
            (NONE, 0),
            "v{v} earliest of empty"
        );
    }
    for ts in [1000i64, 2000, 3000] {
        produce_ok(&mut c, "lo", 0, &batch(&[Rec::value(b"x", ts)]));
    }
    for v in [1i16, 7, 10] {
        let r = list_offset(&mut c, v, "lo", 0, -2);
        assert_eq!((r.error_code, r.offset), (NONE, 0), "v{v} earliest");
        let r = list_offset(&mut c, v, "lo", 0, -1);
        assert_eq!((r.error_code, r.offset), (NONE, 3), "v{v} latest");
        let r = list_offset(&mut c, v, "lo", 0, 1500);
        assert_eq!(
            (r.error_code, r.offset, r.timestamp),
            (NONE, 1, 2000),
            "v{v} ts 1500"
        );
        let r = list_offset(&mut c, v, "lo", 0, 1000);
        assert_eq!(
            (r.error_code, r.offset, r.timestamp),
            (NONE, 0, 1000),
            "v{v} ts 1000"
        );
        let r = list_offset(&mut c, v, "lo", 0, 3000);
        assert_eq!(
            (r.error_code, r.offset, r.timestamp),
            (NONE, 2, 3000),
            "v{v} ts 3000"
        );
        let r = list_offset(&mut c, v, "lo", 0, 5000);
        assert_eq!(
            (r.error_code, r.offset, r.timestamp),
            (NONE, -1, -1),
            "v{v} ts 5000"
        );
        if v >= 7 {
            let r = list_offset(&mut c, v, "lo", 0, -3);
            assert_eq!(
                (r.error_code, r.offset, r.timestamp),
                (NONE, 2, 3000),
                "v{v} MAX_TIMESTAMP"
            );
        }
    }
    // A batch with several timestamps: lookup lands on the record, not the batch.
    produce_ok(
        &mut c,
        "lo",
        0,
        &batch(&[
            Rec::value(b"a", 4000),
            Rec::value(b"b", 4500),
            Rec::value(b"c", 4100),
        ]),
    );
    let r = list_offset(&mut c, 7, "lo", 0, 4200);
    assert_eq!((r.offset, r.timestamp), (4, 4500), "ts 4200 inside a batch");
    let r = list_offset(&mut c, 7, "lo", 0, -3);
    assert_eq!(
        (r.offset, r.timestamp),
        (4, 4500),
        "MAX_TIMESTAMP inside a batch"
    );
    let r = list_offset(&mut c, 7, "lo", 0, -1);
    assert_eq!(r.offset, 6);
    // Unknown topic / partition.
    let r = list_offset(&mut c, 7, "lo", 3, -1);
    assert_eq!(r.error_code, E::UnknownTopicOrPartition.code());
    let r = list_offset(&mut c, 7, "nosuch", 0, -1);
    assert_eq!(r.error_code, E::UnknownTopicOrPartition.code());

    // v11 (KIP-1023): v10's layout; -6 (earliest pending upload) is
    // answered as Kafka does without tiered storage.
    let r = list_offset_v11(&mut c, "lo", 0, -1);
    assert_eq!((r.error_code, r.offset), (NONE, 6), "v11 latest");
    let r = list_offset_v11(&mut c, "lo", 0, 4200);
    assert_eq!(
        (r.error_code, r.offset, r.timestamp),
        (NONE, 4, 4500),
        "v11 by time"
    );
    for ts in [-5i64, -6] {
        let r = list_offset_v11(&mut c, "lo", 0, ts);
        assert_eq!(
            (r.error_code, r.offset, r.timestamp, r.leader_epoch),
            (NONE, -1, -1, -1),
            "v11 {ts}"
        );
    }
    // Each special timestamp from its version on (Kafka's
    // `timestampMinSupportedVersion`), an unknown one never: decided
    // before the partition is looked up.
    let unsupported = E::UnsupportedVersion.code();
    for (v, ts) in [(6i16, -3i64), (7, -4), (8, -5), (10, -6), (10, -7), (1, -8)] {
        assert_eq!(
            list_offset(&mut c, v, "lo", 0, ts).error_code,
            unsupported,
            "v{v} {ts}"
        );
    }
    assert_eq!(list_offset_v11(&mut c, "lo", 0, -7).error_code, unsupported);
    assert_eq!(
        list_offset(&mut c, 10, "nosuch", 0, -6).error_code,
        unsupported
    );
    assert_eq!(list_offset(&mut c, 9, "lo", 0, -5).error_code, NONE);
}

/// Kafka keys ListOffsets answers by partition (`ReplicaManager.fetchOffset`):
/// a partition asked twice is INVALID_REQUEST once, before the timestamp
/// check; a topic listed twice is one response topic.
#[test]
fn list_offsets_answers_each_partition_once() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "dup", 2, &[]);
    produce_ok(&mut c, "dup", 1, &batch(&[Rec::value(b"x", 1000)]));
    let part = |i: i32, ts: i64| {
        ListOffsetsPartition::default()
            .with_partition_index(i)
            .with_timestamp(ts)
    };
    let topic = |name: &str, parts| {
        ListOffsetsTopic::default()
            .with_name(tn(name))
            .with_partitions(parts)
    };
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            topic("dup", vec![part(0, -1), part(0, -7)]),
            topic("dup", vec![part(1, -1)]),
            topic("nosuch", vec![part(3, -1), part(3, -1)]),
        ]);
    let corr = c.next_corr();
    c.send(2, 7, corr, &encode(&req, 7));
    let (got, mut body) = c.recv(2, 7);
    assert_eq!(got, corr);
    let r = ListOffsetsResponse::decode(&mut body, 7).expect("ListOffsets v7 answer");
    let mut seen: Vec<(String, i32, i16, i64)> = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.offset,
                )
            })
        })
        .collect();
    seen.sort();
    let invalid = E::InvalidRequest.code();
    assert_eq!(
        seen,
        vec![
            ("dup".to_string(), 0, invalid, -1),
            ("dup".to_string(), 1, NONE, 1),
            ("nosuch".to_string(), 3, invalid, -1),
        ]
    );
    assert_eq!(r.topics.len(), 2, "one response topic per name: {r:?}");
}

/// ListOffsets v11 of one partition: past the crate, so v10's body (the
/// same layout) under a v11 header, and the answer read as v10's.
fn list_offset_v11(
    c: &mut Client,
    topic: &str,
    partition: i32,
    ts: i64,
) -> kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_timeout_ms(10_000)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(tn(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(ts)])]);
    let corr = c.next_corr();
    c.send(2, 11, corr, &encode(&req, 10));
    let (got, mut body) = c.recv(2, 11);
    assert_eq!(got, corr);
    let mut r = ListOffsetsResponse::decode(&mut body, 10).expect("v11 answer in v10's layout");
    assert_eq!(body.remaining(), 0, "trailing bytes in ListOffsets v11");
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].partitions.len(), 1);
    r.topics.remove(0).partitions.remove(0)
}

// ---------------------------------------------------------------------------
// 12. Restart and crash recovery
// ---------------------------------------------------------------------------

/// The batches of one Fetch v13 (the topic named by id) from offset 0.
fn fetch_all_v13(c: &mut Client, topic: &str, id: Uuid, partition: i32) -> Vec<Vec<u8>> {
    let p = fetch_with(
        c,
        topic,
        partition,
        &FetchArgs {
            topic_id: id,
            version: 13,
            ..Default::default()
        },
    );
    assert_eq!(p.error_code, NONE);
    split_batches(&records(&p))
}

#[test]
fn restart_and_crash_recovery() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "r", 2, &[]);
    let mut p0: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut p1: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut next0 = 0i64;
    for i in 0..3u8 {
        let bt = simple_batch(3, 50, 1_700_000_000_000 + i as i64, i);
        assert_eq!(produce_ok(&mut c, "r", 0, &bt), next0);
        p0.push((next0, bt));
        next0 += 3;
    }
    drop(c);

    // Clean stop.
    let st = b.stop();
    assert_eq!(st.code(), Some(0), "SIGTERM exit status {st}");
    assert!(
        b.data_dir.join(".kafka_cleanshutdown").exists(),
        ".kafka_cleanshutdown after a clean stop"
    );
    assert!(b.data_dir.join("meta.properties").exists());
    b.restart();
    let mut c = b.client();
    let got = fetch_all_v13(&mut c, "r", id, 0);
    assert_eq!(got.len(), p0.len());
    for (g, (o, bt)) in got.iter().zip(&p0) {
        assert_same_batch(g, bt, *o, 0, "after clean restart");
    }
    let bt = simple_batch(2, 50, 1_700_000_000_010, 10);
    assert_eq!(
        produce_ok(&mut c, "r", 0, &bt),
        next0,
        "produce continues after restart"
    );
    p0.push((next0, bt));
    next0 += 2;

    // More acknowledged data on both partitions, then kill -9.
    let mut next1 = 0i64;
    for i in 0..4u8 {
        let bt = simple_batch(2 + i as usize, 70, 1_700_000_000_020 + i as i64, 20 + i);
        let n = 2 + i as i64;
        assert_eq!(produce_ok(&mut c, "r", 1, &bt), next1);
        p1.push((next1, bt));
        next1 += n;
        let bt = simple_batch(1, 30, 1_700_000_000_030 + i as i64, 30 + i);
        assert_eq!(produce_ok(&mut c, "r", 0, &bt), next0);
        p0.push((next0, bt));
        next0 += 1;
    }
    drop(c);
    b.kill();

    // Garbage after p0's last batch; p1's last batch torn in the middle.
    let log0 = b.log_file("r", 0);
    let log1 = b.log_file("r", 1);
    let len0: u64 = p0.iter().map(|(_, b)| b.len() as u64).sum();
    let len1: u64 = p1.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(
        std::fs::metadata(&log0).unwrap().len(),
        len0,
        "p0 log holds exactly the acknowledged batches"
    );
    assert_eq!(
        std::fs::metadata(&log1).unwrap().len(),
        len1,
        "p1 log holds exactly the acknowledged batches"
    );
    let mut rng = Rng(42);
    append_to(&log0, &rng.bytes(100));
    let (last_off, last) = p1.pop().unwrap();
    truncate_to(&log1, len1 - (last.len() as u64) / 2);
    next1 = last_off;

    b.restart();
    let mut c = b.client();
    let got = fetch_all_v13(&mut c, "r", id, 0);
    assert_eq!(got.len(), p0.len(), "p0 batches after crash");
    for (i, (g, (o, bt))) in got.iter().zip(&p0).enumerate() {
        assert_same_batch(g, bt, *o, 0, &format!("p0 batch {i} after crash"));
    }
    let got = fetch_all_v13(&mut c, "r", id, 1);
    assert_eq!(
        got.len(),
        p1.len(),
        "p1 batches after crash (torn batch dropped)"
    );
    for (i, (g, (o, bt))) in got.iter().zip(&p1).enumerate() {
        assert_same_batch(g, bt, *o, 0, &format!("p1 batch {i} after crash"));
    }
    assert_eq!(latest(&mut c, "r", 0), next0);
    assert_eq!(latest(&mut c, "r", 1), next1);
    assert_eq!(
        std::fs::metadata(&log0).unwrap().len(),
        len0,
        "garbage truncated from p0's log"
    );
    assert_eq!(
        produce_ok(&mut c, "r", 0, &simple_batch(1, 5, 1, 1)),
        next0,
        "p0 next offset after crash"
    );
    assert_eq!(
        produce_ok(&mut c, "r", 1, &simple_batch(1, 5, 1, 1)),
        next1,
        "p1 next offset after crash"
    );
    // Timestamp index still works after recovery.
    let r = list_offset(&mut c, 7, "r", 0, -3);
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        r.timestamp, 1_700_000_000_033,
        "max timestamp after recovery"
    );
}

// ---------------------------------------------------------------------------
// 13. Configuration
// ---------------------------------------------------------------------------

#[test]
fn invalid_config_refuses_to_start() {
    let mut b = Broker::spawn_only(&["num.partitions=zero"]);
    let st = b
        .wait_exit(Duration::from_secs(5))
        .expect("broker with num.partitions=zero must exit");
    assert!(!st.success(), "exit status {st}");
    let err = b.stderr();
    assert!(
        err.contains("num.partitions") && err.contains("zero"),
        "stderr must name key and value: {err}"
    );
}

#[test]
fn unknown_config_key_warns() {
    let mut b = Broker::start(&["made.up.key=1"]);
    b.assert_alive();
    fresh_connection_works(&mut b);
    let err = b.stderr();
    assert!(
        err.contains("made.up.key"),
        "stderr must warn about made.up.key: {err}"
    );
}

// ---------------------------------------------------------------------------
// Extra edge cases
// ---------------------------------------------------------------------------

#[test]
fn create_topics_more() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    // Response details (v5+): partitions, replication factor resolved, configs listed.
    let r = try_create_topic(&mut c, "d1", 2, &[("retention.ms", "1000")]);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.num_partitions, 2);
    assert_eq!(
        r.replication_factor, 1,
        "replication factor -1 resolves to 1"
    );
    let cfgs = r.configs.as_ref().expect("v5+ returns configs");
    let ret = cfgs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .expect("retention.ms listed");
    assert_eq!(ret.value.as_ref().map(|v| v.as_str()), Some("1000"));

    // Duplicate names in one request: INVALID_REQUEST for them, the other one created.
    let r = create_topics(
        &mut c,
        7,
        vec![
            topic_spec("dup", 1, 1, &[]),
            topic_spec("dup", 1, 1, &[]),
            topic_spec("solo", 1, 1, &[]),
        ],
        false,
    );
    for t in &r {
        let want = if t.name.0.as_str() == "dup" {
            E::InvalidRequest.code()
        } else {
            NONE
        };
        assert_eq!(t.error_code, want, "{}", t.name.0.as_str());
    }
    assert_eq!(
        topic_error(&mut c, "dup"),
        E::UnknownTopicOrPartition.code()
    );
    assert_eq!(topic_error(&mut c, "solo"), NONE);

    // Manual assignment on broker 1 works; broker 2 does not exist.
    use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    let assign = |ids: &[i32]| -> Vec<CreatableReplicaAssignment> {
        ids.iter()
            .enumerate()
            .map(|(p, b)| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(p as i32)
                    .with_broker_ids(vec![BrokerId(*b)])
            })
            .collect()
    };
    let r = create_topics(
        &mut c,
        7,
        vec![CreatableTopic::default()
            .with_name(tn("man"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assign(&[1, 1]))],
        false,
    );
    assert_eq!(
        r[0].error_code, NONE,
        "manual assignment: {:?}",
        r[0].error_message
    );
    let m = metadata(&mut c, 12, Some(&["man"]), false);
    assert_eq!(md_topic(&m, "man").unwrap().partitions.len(), 2);
    let r = create_topics(
        &mut c,
        7,
        vec![CreatableTopic::default()
            .with_name(tn("man2"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assign(&[2]))],
        false,
    );
    assert_eq!(
        r[0].error_code,
        E::InvalidReplicaAssignment.code(),
        "assignment to broker 2"
    );

    // The broker's own metadata log is not a topic.
    let m = metadata(&mut c, 12, None, false);
    assert!(
        md_topic(&m, "__kastle_topics").is_none(),
        "internal metadata log must not be listed as a topic"
    );
}

#[test]
fn create_topics_manual_assignments_are_checked_as_kafka_does() {
    use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    let b = Broker::start(&[]);
    let mut c = b.client();
    // Checked against Apache Kafka 4.4 (ReplicationControlManager): the
    // codes and messages of each refusal, in its order.
    let create = |c: &mut Client, name: &str, np: i32, rf: i16, parts: Vec<(i32, Vec<i32>)>| {
        let assignments = parts
            .into_iter()
            .map(|(p, ids)| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(p)
                    .with_broker_ids(ids.into_iter().map(BrokerId).collect())
            })
            .collect();
        let t = CreatableTopic::default()
            .with_name(tn(name))
            .with_num_partitions(np)
            .with_replication_factor(rf)
            .with_assignments(assignments);
        let r = create_topics(c, 7, vec![t], false).remove(0);
        (
            r.error_code,
            r.error_message.map(|m| m.to_string()),
            r.num_partitions,
        )
    };
    let twice = "The manual partition assignment includes the broker 1 more than once.";
    // 32,768 and 65,537 replicas of this one broker used to wrap an i16.
    for n in [2, 32_768, 65_537] {
        let (code, msg, np) = create(&mut c, &format!("rep{n}"), -1, -1, vec![(0, vec![1; n])]);
        assert_eq!(code, E::InvalidReplicaAssignment.code(), "{n} replicas");
        assert_eq!(msg.as_deref(), Some(twice));
        assert_eq!(np, -1);
        assert_eq!(
            topic_error(&mut c, &format!("rep{n}")),
            E::UnknownTopicOrPartition.code()
        );
    }
    let (code, msg, _) = create(&mut c, "holes", -1, -1, vec![(1, vec![1])]);
    assert_eq!(code, E::InvalidReplicaAssignment.code());
    assert_eq!(
        msg.as_deref(),
        Some("partitions should be a consecutive 0-based integer sequence")
    );
    let (code, msg, _) = create(&mut c, "empty", -1, -1, vec![(0, vec![1]), (1, vec![])]);
    assert_eq!(code, E::InvalidReplicaAssignment.code());
    assert_eq!(
        msg.as_deref(),
        Some("The manual partition assignment includes an empty replica list.")
    );
    let (code, msg, _) = create(&mut c, "np", 1, -1, vec![(0, vec![1])]);
    assert_eq!(code, E::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some("A manual partition assignment was specified, but numPartitions was not set to -1.")
    );
    let (code, msg, _) = create(&mut c, "rf", 1, 1, vec![(0, vec![1])]);
    assert_eq!(code, E::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some("A manual partition assignment was specified, but replication factor was not set to -1.")
    );
    let (code, _, np) = create(&mut c, "fine", -1, -1, vec![(0, vec![1]), (1, vec![1])]);
    assert_eq!((code, np), (NONE, 2));
}

/// A JoinGroup v9 (flexible) frame whose header carries `client_id`.
fn join_group_v9(corr: i32, client_id: &[u8], group_id: &[u8], member_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    let compact = |out: &mut Vec<u8>, s: &[u8]| {
        put_uvarint(out, s.len() as u64 + 1);
        out.extend_from_slice(s);
    };
    compact(&mut body, group_id);
    put_i32(&mut body, 10_000); // session timeout
    put_i32(&mut body, 10_000); // rebalance timeout
    compact(&mut body, member_id.as_bytes());
    body.push(0); // group instance id: null
    compact(&mut body, b"consumer");
    put_uvarint(&mut body, 2); // one protocol
    compact(&mut body, b"range");
    compact(&mut body, &[0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    body.push(0); // protocol tagged fields
    body.push(0); // reason: null
    body.push(0); // tagged fields
    let mut h = Vec::new();
    put_i16(&mut h, 11);
    put_i16(&mut h, 9);
    put_i32(&mut h, corr);
    put_i16(&mut h, client_id.len() as i16);
    h.extend_from_slice(client_id);
    h.push(0);
    let mut f = Vec::new();
    put_i32(&mut f, (h.len() + body.len()) as i32);
    f.extend(h);
    f.extend(body);
    f
}

#[test]
fn strings_longer_than_32767_bytes_are_refused_never_cut() {
    let b = Broker::start(&[]);
    find_coordinators(&b);
    // A 40,000-byte compact string: Kafka's request parser refuses it ("had
    // invalid length") and closes the connection. Before, kastle took it and
    // stored the group id cut to 32,767 bytes in __consumer_offsets.
    let mut c = b.client();
    c.write_raw(&join_group_v9(1, b"probe", &[b'g'; 40_000], ""))
        .unwrap();
    c.expect_closed("a 40,000-byte group id");
    // A client id of 32,767 bytes leaves no room for the member id's
    // suffix: Kafka fails to serialize such a member id and answers
    // UNKNOWN_SERVER_ERROR with an empty member id, on both joins.
    let mut c = b.client();
    for corr in [2, 3] {
        c.write_raw(&join_group_v9(corr, &[b'c'; 32_767], b"long-client", ""))
            .unwrap();
        let (got, mut body) = c.recv(11, 9);
        assert_eq!(got, corr);
        let _throttle = body.get_i32();
        assert_eq!(body.get_i16(), E::UnknownServerError.code());
        let _generation = body.get_i32();
        for _ in 0..3 {
            // protocol type, protocol name, leader
            let n = get_uvarint(&mut body) as usize;
            body.advance(n.saturating_sub(1));
        }
        let _skip_assignment = body.get_u8();
        let member_len = get_uvarint(&mut body);
        assert_eq!(member_len, 1, "empty member id");
    }
    api_versions_ok(&mut c);
}

#[test]
fn produce_malformed_batches() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "v", 1, &[]);
    let good = simple_batch(3, 20, 1_700_000_000_000, 1);

    // Two batches in one produce request (v3+ requires exactly one): INVALID_RECORD (87).
    let mut two = good.clone();
    two.extend_from_slice(&good);
    let r = produce(&mut c, "v", 0, &two);
    assert_eq!(
        r.error_code,
        E::InvalidRecord.code(),
        "two batches in one partition's records"
    );
    assert_eq!(latest(&mut c, "v", 0), 0);

    // lastOffsetDelta disagreeing with the record count (CRC recomputed).
    let mut lod = good.clone();
    lod[23..27].copy_from_slice(&7i32.to_be_bytes());
    fix_crc(&mut lod);
    let r = produce(&mut c, "v", 0, &lod);
    assert_eq!(
        r.error_code,
        E::InvalidRecord.code(),
        "lastOffsetDelta 7 with 3 records"
    );
    assert_eq!(latest(&mut c, "v", 0), 0, "inconsistent batch not appended");

    // Magic 1 is gone in Kafka 4 (KIP-896).
    let mut m1 = good.clone();
    m1[16] = 1;
    let r = produce(&mut c, "v", 0, &m1);
    assert_eq!(r.error_code, E::InvalidRecord.code(), "magic 1 batch");
    assert_eq!(latest(&mut c, "v", 0), 0);

    // acks=1 works and the response carries log_append_time -1 (CreateTime).
    let r = produce_v(&mut c, 9, "v", 0, 1, &good);
    assert_eq!(
        (r.error_code, r.base_offset, r.log_append_time_ms),
        (NONE, 0, -1)
    );
    fresh_connection_works(&mut b);
}

#[test]
fn log_append_time_topic() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let r = try_create_topic(
        &mut c,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    );
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    let id = r.topic_id;
    let before = now_ms();
    let r = produce(
        &mut c,
        "lat",
        0,
        &batch(&[Rec::value(b"a", 1000), Rec::value(b"b", 2000)]),
    );
    let after = now_ms();
    assert_eq!(r.error_code, NONE);
    assert!(
        r.log_append_time_ms >= before && r.log_append_time_ms <= after,
        "log_append_time_ms {}",
        r.log_append_time_ms
    );
    let p = fetch_with(
        &mut c,
        "lat",
        0,
        &FetchArgs {
            topic_id: id,
            ..Default::default()
        },
    );
    let got = split_batches(&records(&p));
    assert_eq!(
        batch_attributes(&got[0]) & 0x08,
        0x08,
        "timestamp type bit set to LogAppendTime"
    );
    assert_eq!(
        batch_max_timestamp(&got[0]),
        r.log_append_time_ms,
        "maxTimestamp = append time"
    );
    assert_eq!(
        crc32c::crc32c(&got[0][21..]),
        batch_crc(&got[0]),
        "CRC recomputed"
    );
}

#[test]
fn fetch_sessions_and_multi_partition_limits() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "mp", 2, &[]);
    for p in 0..2 {
        for i in 0..3u8 {
            produce_ok(&mut c, "mp", p, &simple_batch(1, 1000, 1, i));
        }
    }
    let blen = simple_batch(1, 1000, 1, 0).len();
    let req = |max_bytes: i32| {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![FetchTopic::default()
                .with_topic(tn("mp"))
                .with_topic_id(id)
                .with_partitions(
                    (0..2)
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(0)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                )])
    };
    let count = |r: &FetchResponse, p: usize| {
        split_batches(r.responses[0].partitions[p].records.as_ref().unwrap()).len()
    };
    let r: FetchResponse = c.call(12, &req(1500));
    assert_eq!(
        (count(&r, 0), count(&r, 1)),
        (1, 0),
        "max_bytes 1500 over two partitions"
    );
    let r: FetchResponse = c.call(12, &req((2 * blen + 60) as i32));
    assert_eq!(
        (count(&r, 0), count(&r, 1)),
        (2, 0),
        "max_bytes for two batches"
    );
    let r: FetchResponse = c.call(12, &req(1 << 20));
    assert_eq!((count(&r, 0), count(&r, 1)), (3, 3), "max_bytes large");

    // A client asking for a new session (id 0, epoch 0) gets a full response.
    let r: FetchResponse = c.call(12, &req(1 << 20).with_session_id(0).with_session_epoch(0));
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        (count(&r, 0), count(&r, 1)),
        (3, 3),
        "full fetch when opening a session"
    );
    // KIP-227: the answer names a new session (tests/it/fetch_sessions.rs
    // covers the sessions themselves).
    assert_ne!(r.session_id, 0, "a fetch session is handed out");
    // An incremental fetch on a session the broker never handed out (an id
    // other than the one just answered).
    let unknown = r.session_id.wrapping_add(123_456);
    let r: FetchResponse = c.call(
        12,
        &req(1 << 20).with_session_id(unknown).with_session_epoch(3),
    );
    assert_eq!(
        (r.error_code, r.session_id, r.responses.len()),
        (E::FetchSessionIdNotFound.code(), 0, 0),
        "unknown fetch session"
    );
    // A session epoch without a session id names session 0, which Kafka
    // never hands out: FETCH_SESSION_ID_NOT_FOUND.
    let r: FetchResponse = c.call(12, &req(1 << 20).with_session_id(0).with_session_epoch(5));
    assert_eq!(
        r.error_code,
        E::FetchSessionIdNotFound.code(),
        "session epoch 5 without a session"
    );
}

/// Kafka's `ByteBufferLogInputStream` yields no batch for records that end
/// before the claimed batch does, so `ProduceRequest.validateRecords` answers
/// INVALID_RECORD ("must have at least one record batch"), not CORRUPT_MESSAGE.
#[test]
fn produce_truncated_records() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "tr", 1, &[]);
    let good = simple_batch(3, 20, 1_700_000_000_000, 1);
    let r = produce(&mut c, "tr", 0, &good[..good.len() - 10]);
    let truncated = r.error_code;
    let r = produce(&mut c, "tr", 0, &good[..30]);
    let short = r.error_code;
    assert_eq!(latest(&mut c, "tr", 0), 0, "nothing appended");
    assert_eq!(
        (truncated, short),
        (E::InvalidRecord.code(), E::InvalidRecord.code()),
        "(batch cut 10 bytes short, 30-byte records)"
    );
}
