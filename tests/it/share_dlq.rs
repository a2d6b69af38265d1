//! KIP-1191: share groups' dead-letter queue over the raw protocol, as
//! Kafka 4.4 serves it at `share.version` 2. A REJECTed record, one
//! released at the delivery-count limit and one whose lock timed out at
//! the limit land in the group's DLQ topic with Kafka's `__dlq.errors.*`
//! headers (the original key and value with copy.record); the DLQ topic's
//! rules (a `__` name refused when set; the prefix, the topic's
//! `errors.deadletterqueue.group.enable` and auto-creation checked when
//! written); `share.version` 1 writes nothing.

use std::time::Duration;

use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::ResponseError as E;
use kastle::record::batch::{batch_records, BatchHeader};
use kastle::record::default_record::records;
use uuid::Uuid;

use crate::support::admin::{inc_alter, topic_config};
use crate::support::fetch::fetch_all_batches;
use crate::support::groups::set_group_config;
use crate::support::produce::produce_ok;
use crate::support::share::{acknowledge, acquired, fetch_waiting, REJECT, RELEASE};
use crate::support::simple_batch;
use crate::support::topics::{create_topic, md_topic, metadata};
use crate::support::{find_coordinators, sb, wait_until, Broker, Client, NONE};

fn start(extra: &[&str]) -> Broker {
    let mut cfg = vec![
        "group.share.min.record.lock.duration.ms=1000",
        "group.share.record.lock.duration.ms=1000",
        "group.share.delivery.count.limit=2",
        "group.share.min.delivery.count.limit=2",
        "group.share.assignment.interval.ms=0",
        "errors.deadletterqueue.auto.create.topics.enable=true",
    ];
    cfg.extend_from_slice(extra);
    let b = Broker::start(&cfg);
    find_coordinators(&b);
    b
}

/// One DLQ record: its key, value and headers (as text).
#[derive(Debug, PartialEq)]
struct Dead {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
}

/// Every record of partition 0 of `topic`.
fn read_all(c: &mut Client, topic: &str) -> Vec<Dead> {
    let mut out = Vec::new();
    for b in fetch_all_batches(c, topic, 0, 0) {
        let h = BatchHeader::parse(&b).expect("a batch");
        let section = batch_records(&b, 1 << 20).expect("records");
        for r in records(&section, h.records_count) {
            let r = r.expect("a record");
            out.push(Dead {
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect(),
            });
        }
    }
    out
}

fn wait_for(c: &mut Client, topic: &str, n: usize) -> Vec<Dead> {
    wait_until(
        &format!("{n} records in {topic}"),
        Duration::from_secs(10),
        || {
            md_topic(&metadata(c, 12, Some(&[topic]), false), topic)
                .is_some_and(|t| t.error_code == NONE)
        },
    );
    let mut got = Vec::new();
    wait_until(
        &format!("{n} records in {topic}"),
        Duration::from_secs(10),
        || {
            got = read_all(c, topic);
            got.len() >= n
        },
    );
    got
}

fn kafka_headers(
    topic: &str,
    offset: i64,
    group: &str,
    count: i16,
    rejected: bool,
) -> Vec<(String, String)> {
    let message = if rejected {
        "Offset rejected by client."
    } else {
        "Offset delivery count exceeded the threshold."
    };
    [
        ("__dlq.errors.topic", topic.to_string()),
        ("__dlq.errors.partition", "0".to_string()),
        ("__dlq.errors.offset", offset.to_string()),
        ("__dlq.errors.group", group.to_string()),
        ("__dlq.errors.delivery.count", count.to_string()),
        ("__dlq.errors.message", message.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn fetch(
    c: &mut Client,
    group: &str,
    member: &str,
    epoch: i32,
    topic: Uuid,
) -> Vec<(i64, i64, i16)> {
    acquired(&fetch_waiting(c, group, member, epoch, topic, &[]))
}

fn setup(c: &mut Client, topic: &str, group: &str, dlq: &str) -> Uuid {
    let id = create_topic(c, topic, 1, &[]);
    set_group_config(c, group, "share.auto.offset.reset", "earliest");
    set_group_config(c, group, "errors.deadletterqueue.topic.name", dlq);
    produce_ok(c, topic, 0, &simple_batch(5, 10, 1, 7));
    id
}

/// A member rejects 0-1 and releases 2-4; acquired again (delivery 2), it
/// releases 2-3 at the limit and lets 4's lock time out.
fn reject_release_and_time_out(c: &mut Client, group: &str, id: Uuid) {
    assert_eq!(fetch(c, group, "a", 0, id), vec![(0, 4, 1)]);
    let acks = [(0, 1, REJECT), (2, 4, RELEASE)];
    let r = acknowledge(c, 1, (group, "a", 1), id, &acks, false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    assert_eq!(fetch(c, group, "a", 2, id), vec![(2, 4, 2)]);
    let r = acknowledge(c, 1, (group, "a", 3), id, &[(2, 3, RELEASE)], false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    std::thread::sleep(Duration::from_millis(1100));
    // The next fetch finds 4's lock expired at the limit: archived.
    assert!(fetch(c, group, "a", 4, id).is_empty());
}

#[test]
fn rejected_and_limit_archived_records_land_in_the_dlq() {
    let b = start(&[]);
    let mut c = b.client();
    let id = setup(&mut c, "src", "g", "dlq.g");
    set_group_config(
        &mut c,
        "g",
        "errors.deadletterqueue.copy.record.enable",
        "true",
    );
    reject_release_and_time_out(&mut c, "g", id);
    let got = wait_for(&mut c, "dlq.g", 5);
    let originals = read_all(&mut c, "src");
    let expected: Vec<Dead> = [
        (0, 1, true),
        (1, 1, true),
        (2, 2, false),
        (3, 2, false),
        (4, 2, false),
    ]
    .into_iter()
    .map(|(o, count, rejected)| Dead {
        key: originals[o as usize].key.clone(),
        value: originals[o as usize].value.clone(),
        headers: kafka_headers("src", o, "g", count, rejected),
    })
    .collect();
    assert_eq!(got, expected);
    assert!(got[0].key.is_some(), "the original record is copied");
    // The created topic is Kafka's: DLQ-enabled, CreateTime.
    let t = md_topic(&metadata(&mut c, 12, Some(&["dlq.g"]), false), "dlq.g")
        .map(|t| t.partitions.len());
    assert_eq!(t, Some(1));
    for (key, value) in [
        ("errors.deadletterqueue.group.enable", "true"),
        ("message.timestamp.type", "CreateTime"),
    ] {
        let (got, _) = topic_config(&mut c, "dlq.g", key);
        assert_eq!(got.as_deref(), Some(value), "{key}");
    }
    // Without copy.record, headers only.
    let id2 = setup(&mut c, "src2", "g2", "dlq.g");
    assert_eq!(fetch(&mut c, "g2", "a", 0, id2), vec![(0, 4, 1)]);
    let r = acknowledge(&mut c, 1, ("g2", "a", 1), id2, &[(3, 3, REJECT)], false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    let got = wait_for(&mut c, "dlq.g", 6);
    assert_eq!(
        got[5],
        Dead {
            key: None,
            value: None,
            headers: kafka_headers("src2", 3, "g2", 1, true),
        }
    );
}

fn alter_group(c: &mut Client, group: &str, key: &str, value: &str) -> (i16, Option<String>) {
    inc_alter(c, 32, group, &[(key, 0, Some(value))], false)
}

/// The DLQ topic's rules: a `__` name is refused when set; a name
/// without the prefix, a topic without `errors.deadletterqueue.group.enable`
/// and a missing topic with auto-creation off are only refused when a
/// record would be written (nothing is). The writer is first in, first
/// out: once a later valid record is written, the refused ones were done.
#[test]
fn dlq_topic_rules() {
    let b = start(&[]);
    let mut c = b.client();
    assert_eq!(
        alter_group(&mut c, "g", "errors.deadletterqueue.topic.name", "__dlq"),
        (
            E::InvalidConfig.code(),
            Some(
                "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'".into()
            )
        )
    );
    assert_eq!(
        alter_group(
            &mut c,
            "g",
            "errors.deadletterqueue.copy.record.enable",
            "maybe"
        )
        .0,
        E::InvalidConfig.code()
    );
    // Not the prefix: accepted, but no record is written.
    let id = setup(&mut c, "s1", "g1", "nodlq");
    // An existing topic not enabled for DLQ use.
    create_topic(&mut c, "dlq.plain", 1, &[]);
    let id2 = setup(&mut c, "s2", "g2", "dlq.plain");
    for (g, id) in [("g1", id), ("g2", id2)] {
        assert_eq!(fetch(&mut c, g, "a", 0, id), vec![(0, 4, 1)]);
        let r = acknowledge(&mut c, 1, (g, "a", 1), id, &[(0, 0, REJECT)], false);
        assert_eq!(r, (NONE, None, vec![NONE]));
    }
    // An existing enabled topic takes the next one.
    create_topic(
        &mut c,
        "dlq.on",
        1,
        &[("errors.deadletterqueue.group.enable", "true")],
    );
    let id3 = setup(&mut c, "s3", "g3", "dlq.on");
    assert_eq!(fetch(&mut c, "g3", "a", 0, id3), vec![(0, 4, 1)]);
    let r = acknowledge(&mut c, 1, ("g3", "a", 1), id3, &[(1, 1, REJECT)], false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    let got = wait_for(&mut c, "dlq.on", 1);
    assert_eq!(got[0].headers, kafka_headers("s3", 1, "g3", 1, true));
    assert_eq!(
        md_topic(&metadata(&mut c, 12, Some(&["nodlq"]), false), "nodlq").map(|t| t.error_code),
        Some(E::UnknownTopicOrPartition.code()),
        "a name without the prefix is not created"
    );
    assert!(read_all(&mut c, "dlq.plain").is_empty());
}

#[test]
fn a_missing_topic_is_not_created_without_auto_creation() {
    let b = start(&["errors.deadletterqueue.auto.create.topics.enable=false"]);
    let mut c = b.client();
    let id = setup(&mut c, "s", "g", "dlq.missing");
    assert_eq!(fetch(&mut c, "g", "a", 0, id), vec![(0, 4, 1)]);
    let r = acknowledge(&mut c, 1, ("g", "a", 1), id, &[(0, 0, REJECT)], false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    // Then the group points at an enabled topic: its record comes after.
    create_topic(
        &mut c,
        "dlq.on",
        1,
        &[("errors.deadletterqueue.group.enable", "true")],
    );
    set_group_config(&mut c, "g", "errors.deadletterqueue.topic.name", "dlq.on");
    let r = acknowledge(&mut c, 1, ("g", "a", 2), id, &[(1, 1, REJECT)], false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    let got = wait_for(&mut c, "dlq.on", 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers, kafka_headers("s", 1, "g", 1, true));
    assert_eq!(
        md_topic(
            &metadata(&mut c, 12, Some(&["dlq.missing"]), false),
            "dlq.missing"
        )
        .map(|t| t.error_code),
        Some(E::UnknownTopicOrPartition.code())
    );
}

/// `share.version` 1 keeps KIP-932's behaviour: archived, no DLQ record.
/// Raised to 2, the next rejection is written, and only it.
#[test]
fn share_version_one_has_no_dlq() {
    let b = start(&["kastle.format.features=share.version=1"]);
    let mut c = b.client();
    let id = setup(&mut c, "s", "g", "dlq.g");
    assert_eq!(fetch(&mut c, "g", "a", 0, id), vec![(0, 4, 1)]);
    let r = acknowledge(&mut c, 1, ("g", "a", 1), id, &[(0, 0, REJECT)], false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    let up: UpdateFeaturesResponse = c.call(
        1,
        &UpdateFeaturesRequest::default()
            .with_timeout_ms(10_000)
            .with_feature_updates(vec![FeatureUpdateKey::default()
                .with_feature(sb("share.version"))
                .with_max_version_level(2)
                .with_upgrade_type(1)]),
    );
    assert_eq!(up.error_code, NONE, "{up:?}");
    let r = acknowledge(&mut c, 1, ("g", "a", 2), id, &[(1, 1, REJECT)], false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    let got = wait_for(&mut c, "dlq.g", 1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].headers, kafka_headers("s", 1, "g", 1, true));
}
