//! Black-box tests of configuration as Kafka 4.4 handles it: dynamic broker
//! configs (per broker and cluster-wide, validated, persisted across
//! restarts, described with Kafka's sources and synonyms, and in effect for
//! topics without an override and for connection limits), GROUP_RESOURCE config
//! resources, and the configs CreateTopics v5+ reports.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::admin::*;
use crate::support::produce::produce;
use crate::support::topics::create_topic;
use crate::support::*;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::*;

const MESSAGE_TOO_LARGE: i16 = E::MessageTooLarge.code();
const INVALID_CONFIG: i16 = E::InvalidConfig.code();
const INVALID_REQUEST: i16 = E::InvalidRequest.code();

/// kastle's default node.id, as a resource name.
const NODE_NAME: &str = "1";

/// Produce v9 (acks=all) of one batch to partition 0: its error code.
fn produce_code(c: &mut Client, topic: &str, records: &[u8]) -> i16 {
    produce(c, topic, 0, records).error_code
}

fn syn(list: &[(&str, &str, i8)]) -> Vec<(String, Option<String>, i8)> {
    list.iter()
        .map(|(n, v, s)| (n.to_string(), Some(v.to_string()), *s))
        .collect()
}

#[test]
fn static_keys_are_static_and_dynamic_keys_are_updatable() {
    let b = Broker::start(&["num.partitions=1"]);
    let mut c = b.client();
    let r = describe_configs(&mut c, 4, BROKER_RESOURCE, NODE_NAME, None);
    assert_eq!(r.error_code, NONE);
    // Every key of Kafka 4.4's broker configuration is listed.
    assert!(r.configs.len() >= 350, "{}", r.configs.len());
    let np = config(&r, "num.partitions");
    // Set in the configuration, even to the default: STATIC_BROKER_CONFIG.
    assert_eq!(np.config_source, 4);
    assert_eq!(
        synonyms(np),
        syn(&[("num.partitions", "1", 4), ("num.partitions", "1", 5)])
    );
    assert!(np.read_only);
    assert!(!config(&r, "message.max.bytes").read_only);
    assert!(!config(&r, "log.cleaner.backoff.ms").read_only);
    assert!(config(&r, "log.dirs").read_only);
    let pw = config(&r, "ssl.keystore.password");
    assert!(pw.is_sensitive && pw.value.is_none());
    assert_eq!(
        config(&r, "ssl.keystore.password").config_type,
        9,
        "PASSWORD"
    );
    // A fresh Kafka 4.4 cluster carries min.insync.replicas as a
    // cluster-wide dynamic default (eligible leader replicas).
    let mir = config(&r, "min.insync.replicas");
    assert_eq!(mir.config_source, 3);
    assert_eq!(
        synonyms(mir),
        syn(&[
            ("min.insync.replicas", "1", 3),
            ("min.insync.replicas", "1", 5)
        ])
    );
}

#[test]
fn broker_configs_change_validate_and_persist_like_kafka() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();

    // SET, described as DYNAMIC_BROKER_CONFIG over the default; DELETE
    // restores the default.
    let set = [("log.cleaner.backoff.ms", SET, Some("20000"))];
    assert_eq!(
        inc_alter(&mut c, BROKER_RESOURCE, NODE_NAME, &set, false),
        (NONE, None)
    );
    let r = describe_configs(
        &mut c,
        4,
        BROKER_RESOURCE,
        NODE_NAME,
        Some(&["log.cleaner.backoff.ms"]),
    );
    let e = config(&r, "log.cleaner.backoff.ms");
    assert_eq!((e.value.as_deref(), e.config_source), (Some("20000"), 2));
    assert_eq!(
        synonyms(e),
        syn(&[
            ("log.cleaner.backoff.ms", "20000", 2),
            ("log.cleaner.backoff.ms", "15000", 5)
        ])
    );
    let del = [("log.cleaner.backoff.ms", DELETE, None)];
    assert_eq!(
        inc_alter(&mut c, BROKER_RESOURCE, NODE_NAME, &del, false).0,
        NONE
    );
    assert_eq!(
        described(&mut c, BROKER_RESOURCE, NODE_NAME, "log.cleaner.backoff.ms"),
        (Some("15000".into()), 5)
    );

    // validateOnly checks and changes nothing.
    let mmb = [("message.max.bytes", SET, Some("2000000"))];
    assert_eq!(
        inc_alter(&mut c, BROKER_RESOURCE, NODE_NAME, &mmb, true).0,
        NONE
    );
    assert_eq!(
        described(&mut c, BROKER_RESOURCE, NODE_NAME, "message.max.bytes").1,
        5
    );

    // Kafka's refusals, with its errors and messages.
    let refused = |c: &mut Client, name: &str, ops: &[(&str, i8, Option<&str>)]| {
        inc_alter(c, BROKER_RESOURCE, name, ops, false)
    };
    assert_eq!(
        refused(&mut c, NODE_NAME, &[("log.dirs", SET, Some("/elsewhere"))]),
        (
            INVALID_REQUEST,
            Some("Cannot update these configs dynamically: [log.dirs]".into())
        )
    );
    assert_eq!(
        refused(&mut c, "", &[("listeners", SET, Some("PLAINTEXT://:9092"))]),
        (INVALID_REQUEST, Some("Cannot update these configs at default cluster level, broker id must be specified: [listeners]".into()))
    );
    assert_eq!(
        refused(
            &mut c,
            NODE_NAME,
            &[("log.cleaner.backoff.ms", SET, Some("soon"))]
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(
        refused(
            &mut c,
            NODE_NAME,
            &[("ssl.keystore.location", SET, Some("/k"))]
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(
        refused(
            &mut c,
            NODE_NAME,
            &[("min.insync.replicas", SET, Some("1"))]
        ),
        (
            INVALID_CONFIG,
            Some("Broker-level min.insync.replicas cannot be altered while ELR is enabled.".into())
        )
    );
    assert_eq!(
        refused(&mut c, "", &[("min.insync.replicas", DELETE, None)]).0,
        INVALID_CONFIG
    );
    assert_eq!(
        refused(&mut c, "2", &[("message.max.bytes", SET, Some("1"))]).0,
        INVALID_REQUEST
    );
    assert_eq!(
        refused(
            &mut c,
            NODE_NAME,
            &[("log.cleaner.backoff.ms", APPEND, Some("1"))]
        )
        .0,
        INVALID_CONFIG
    );
    // APPEND to a list key starts from its default, as in Kafka.
    let append = [("log.cleanup.policy", APPEND, Some("compact"))];
    assert_eq!(
        inc_alter(&mut c, BROKER_RESOURCE, NODE_NAME, &append, false).0,
        NONE
    );
    assert_eq!(
        described(&mut c, BROKER_RESOURCE, NODE_NAME, "log.cleanup.policy"),
        (Some("delete,compact".into()), 2)
    );

    // Cluster-wide default, then a per-broker value above it; both survive
    // a restart.
    let d = [("log.retention.ms", SET, Some("100000000"))];
    assert_eq!(inc_alter(&mut c, BROKER_RESOURCE, "", &d, false).0, NONE);
    let r = describe_configs(&mut c, 4, BROKER_RESOURCE, "", None);
    let names: Vec<&str> = r.configs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["log.retention.ms", "min.insync.replicas"]);
    drop(c);
    b.stop();
    b.restart();
    let mut c = b.client();
    let r = describe_configs(
        &mut c,
        4,
        BROKER_RESOURCE,
        NODE_NAME,
        Some(&["log.retention.ms", "log.cleanup.policy"]),
    );
    let e = config(&r, "log.retention.ms");
    assert_eq!(
        synonyms(e),
        syn(&[
            ("log.retention.ms", "100000000", 3),
            ("log.retention.hours", "168", 5)
        ])
    );
    assert_eq!(config(&r, "log.cleanup.policy").config_source, 2);
    // AlterConfigs replaces this broker's whole set.
    assert_eq!(
        legacy_alter(&mut c, BROKER_RESOURCE, NODE_NAME, &[]).0,
        NONE
    );
    assert_eq!(
        described(&mut c, BROKER_RESOURCE, NODE_NAME, "log.cleanup.policy"),
        (Some("delete".into()), 5)
    );
}

#[test]
fn topics_follow_dynamic_broker_defaults_at_once() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "plain", 1, &[]);
    create_topic(&mut c, "own", 1, &[("max.message.bytes", "2000000")]);
    let batch = simple_batch(1, 3000, now_ms(), 1);
    assert_eq!(produce_code(&mut c, "plain", &batch), NONE);

    // The cluster default shrinks message.max.bytes: the topic without an
    // override follows it at once, the other keeps its own.
    let d = [("message.max.bytes", SET, Some("1000"))];
    assert_eq!(inc_alter(&mut c, BROKER_RESOURCE, "", &d, false).0, NONE);
    assert_eq!(produce_code(&mut c, "plain", &batch), MESSAGE_TOO_LARGE);
    assert_eq!(produce_code(&mut c, "own", &batch), NONE);
    let r = describe_configs(
        &mut c,
        4,
        TOPIC_RESOURCE,
        "plain",
        Some(&["max.message.bytes"]),
    );
    let e = config(&r, "max.message.bytes");
    assert_eq!((e.value.as_deref(), e.config_source), (Some("1000"), 3));

    // This broker's own value wins over the cluster default.
    let n = [("message.max.bytes", SET, Some("5000"))];
    assert_eq!(
        inc_alter(&mut c, BROKER_RESOURCE, NODE_NAME, &n, false).0,
        NONE
    );
    assert_eq!(produce_code(&mut c, "plain", &batch), NONE);

    // Topics created later, and the next start, see the same.
    drop(c);
    b.stop();
    b.restart();
    let mut c = b.client();
    create_topic(&mut c, "later", 1, &[]);
    assert_eq!(produce_code(&mut c, "later", &batch), NONE);
    let big = simple_batch(1, 6000, now_ms(), 2);
    assert_eq!(produce_code(&mut c, "plain", &big), MESSAGE_TOO_LARGE);
    let del = [("message.max.bytes", DELETE, None)];
    assert_eq!(
        inc_alter(&mut c, BROKER_RESOURCE, NODE_NAME, &del, false).0,
        NONE
    );
    assert_eq!(produce_code(&mut c, "later", &batch), MESSAGE_TOO_LARGE);
}

/// ApiVersions v0 answered within `wait` on a fresh connection?
fn answered(port: u16, wait: Duration) -> Option<std::net::TcpStream> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(&frame(18, 0, 1, &[])).unwrap();
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => Some(s),
        Err(_) => None,
    }
}

#[test]
fn connection_limits_are_dynamic() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    // The admin connection is the one connection allowed.
    let one = [("max.connections", SET, Some("1"))];
    assert_eq!(inc_alter(&mut c, BROKER_RESOURCE, "", &one, false).0, NONE);
    let held = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    held.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut held = held;
    held.write_all(&frame(18, 0, 1, &[])).unwrap();
    let mut len = [0u8; 4];
    assert!(
        held.read_exact(&mut len).is_err(),
        "a second connection waits while max.connections=1"
    );
    // Raising the limit lets the waiting connection in.
    let more = [("max.connections", SET, Some("10"))];
    assert_eq!(inc_alter(&mut c, BROKER_RESOURCE, "", &more, false).0, NONE);
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    held.read_exact(&mut len)
        .expect("answered once the limit is raised");
    assert!(answered(b.port, Duration::from_secs(10)).is_some());
}

#[test]
fn group_configs_validate_persist_and_describe() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    let r = describe_configs(&mut c, 4, GROUP_RESOURCE, "g", None);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.configs.len(), 21);
    let s = config(&r, "consumer.session.timeout.ms");
    assert_eq!((s.value.as_deref(), s.config_source), (Some("45000"), 5));
    assert_eq!(
        synonyms(s),
        syn(&[("group.consumer.session.timeout.ms", "45000", 5)])
    );
    assert!(!s.read_only);

    let ok = [("consumer.session.timeout.ms", SET, Some("50000"))];
    assert_eq!(
        inc_alter(&mut c, GROUP_RESOURCE, "g", &ok, false),
        (NONE, None)
    );
    assert_eq!(
        described(&mut c, GROUP_RESOURCE, "g", "consumer.session.timeout.ms"),
        (Some("50000".into()), 8)
    );
    assert_eq!(
        inc_alter(
            &mut c,
            GROUP_RESOURCE,
            "g",
            &[("consumer.session.timeout.ms", SET, Some("1000"))],
            false
        ),
        (
            INVALID_CONFIG,
            Some(
                "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.".into()
            )
        )
    );
    assert_eq!(
        inc_alter(
            &mut c,
            GROUP_RESOURCE,
            "g",
            &[("foo", SET, Some("1"))],
            false
        ),
        (
            INVALID_CONFIG,
            Some("Unknown group config name: foo".into())
        )
    );
    assert_eq!(
        inc_alter(&mut c, GROUP_RESOURCE, "", &ok, false).0,
        INVALID_REQUEST
    );
    assert_eq!(
        describe_configs(&mut c, 4, GROUP_RESOURCE, "", None).error_code,
        INVALID_REQUEST
    );

    drop(c);
    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(
        described(&mut c, GROUP_RESOURCE, "g", "consumer.session.timeout.ms"),
        (Some("50000".into()), 8)
    );
    // AlterConfigs replaces the group's set.
    assert_eq!(
        legacy_alter(
            &mut c,
            GROUP_RESOURCE,
            "g",
            &[("consumer.heartbeat.interval.ms", Some("6000"))]
        )
        .0,
        NONE
    );
    assert_eq!(
        described(&mut c, GROUP_RESOURCE, "g", "consumer.session.timeout.ms").1,
        5
    );
    // ListConfigResources lists the groups that have configs (Kafka's
    // `GroupConfigManager.groupIds`), as kafka-configs looks them up.
    let listed = |c: &mut Client| -> Vec<(String, i8)> {
        let r: ListConfigResourcesResponse = c.call(
            1,
            &ListConfigResourcesRequest::default().with_resource_types(vec![GROUP_RESOURCE]),
        );
        assert_eq!(r.error_code, NONE);
        r.config_resources
            .iter()
            .map(|x| (x.resource_name.to_string(), x.resource_type))
            .collect()
    };
    assert_eq!(listed(&mut c), vec![("g".to_string(), GROUP_RESOURCE)]);
    assert_eq!(legacy_alter(&mut c, GROUP_RESOURCE, "g", &[]).0, NONE);
    assert_eq!(listed(&mut c), vec![]);
}

fn create_req(topics: Vec<CreatableTopic>, validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
        .with_topics(topics)
}

fn topic(name: &str, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(1)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                })
                .collect(),
        )
}

#[test]
fn create_topics_reports_kafka_4_4_configs() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let r = c.call(
        7,
        &create_req(vec![topic("t", &[("cleanup.policy", "compact")])], false),
    );
    let t = &r.topics[0];
    assert_eq!(t.error_code, NONE);
    let configs = t.configs.as_ref().unwrap();
    let get = |n: &str| {
        configs
            .iter()
            .find(|c| c.name.as_str() == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(get("cleanup.policy").config_source, 1);
    assert_eq!(get("min.insync.replicas").config_source, 3);
    assert_eq!(
        get("max.decompressed.message.bytes").value.as_deref(),
        Some("2147483639")
    );
    for k in [
        "errors.deadletterqueue.group.enable",
        "remote.copy.lag.bytes",
        "remote.copy.lag.ms",
        "remote.log.copy.disable",
        "remote.log.delete.on.disable",
    ] {
        assert_eq!(get(k).config_source, 5, "{k}");
    }

    // A failed topic carries an empty config list from v5 (Kafka's []).
    let bad = vec![topic("bad", &[("retention.ms", "soon")])];
    let r = c.call(5, &create_req(bad.clone(), false));
    assert_eq!(r.topics[0].error_code, INVALID_CONFIG);
    assert_eq!(r.topics[0].configs.as_deref(), Some(&[][..]));
    // Tiered storage is off, as on a default Kafka broker.
    let r = c.call(
        7,
        &create_req(
            vec![topic("tiered", &[("remote.storage.enable", "true")])],
            false,
        ),
    );
    assert_eq!(r.topics[0].error_code, INVALID_CONFIG);

    // validateOnly answers a fresh topic id, as Kafka's controller draws one.
    let r1 = c.call(7, &create_req(vec![topic("v", &[])], true));
    let r2 = c.call(7, &create_req(vec![topic("v", &[])], true));
    assert_eq!(r1.topics[0].error_code, NONE);
    assert!(!r1.topics[0].topic_id.is_nil());
    assert_ne!(r1.topics[0].topic_id, r2.topics[0].topic_id);
}
