//! Black-box tests of the informational APIs as Kafka 4.4 answers them:
//! ApiVersions' features and unsupported-version answer, Metadata's
//! authorized operations, topic-id rules and auto-creation, DescribeTopicPartitions'
//! pages, ListTransactions' v2 pattern, and the error messages and operation
//! bitfields of the admin APIs. Every expected value below is what a real
//! Kafka 4.4 answered to the same request (compat-tests/test_kafka_oracle.py
//! compares the two brokers directly).

use crate::support::topics::create_topic;
use crate::support::*;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest as ProducersTopic,
};
use kafka_protocol::messages::describe_topic_partitions_request::{
    Cursor, DescribeTopicPartitionsRequest, TopicRequest,
};
use kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponse;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::list_config_resources_request::ListConfigResourcesRequest;
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::{GroupId, TransactionalId};
use kafka_protocol::protocol::Decodable;
use uuid::Uuid;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const UNSUPPORTED_VERSION: i16 = 35;
const INVALID_REQUEST: i16 = 42;
const GROUP_ID_NOT_FOUND: i16 = 69;
const UNKNOWN_TOPIC_ID: i16 = 100;
const INVALID_REGULAR_EXPRESSION: i16 = 128;

/// Every operation of a topic (READ .. ALTER_CONFIGS), as Kafka reports them
/// without an authorizer.
const TOPIC_OPS: i32 = 3576;
/// Every operation of the cluster resource (no token operations: those are
/// a USER resource's).
const CLUSTER_OPS: i32 = 8096;
const OPS_NOT_SET: i32 = i32::MIN;

fn api_versions(c: &mut Client, version: i16) -> ApiVersionsResponse {
    c.call(
        version,
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("kastle-meta-test"))
            .with_client_software_version(sb("1")),
    )
}

#[test]
fn api_versions_features_and_unsupported_version() {
    let b = Broker::start(&[]);
    let mut c = b.client();

    // v3: features supported from level 0 are left out (older Java clients
    // refuse a minimum of 0); the finalized ones are there.
    let r = api_versions(&mut c, 3);
    let supported: Vec<(String, i16, i16)> = r
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    assert_eq!(supported, vec![("metadata.version".to_string(), 7, 33)]);
    let mut finalized: Vec<(String, i16, i16)> = r
        .finalized_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
        .collect();
    finalized.sort();
    assert_eq!(
        finalized,
        vec![
            ("group.version".to_string(), 1, 1),
            ("metadata.version".to_string(), 33, 33),
            ("share.version".to_string(), 2, 2),
            ("streams.version".to_string(), 1, 1),
            ("transaction.version".to_string(), 2, 2)
        ]
    );
    assert!(r.finalized_features_epoch >= 0, "a known epoch");

    // v4: every feature, those kastle does not offer at level 0 only.
    let r = api_versions(&mut c, 4);
    let level = |name: &str| {
        r.supported_features
            .iter()
            .find(|f| f.name.as_str() == name)
            .map(|f| (f.min_version, f.max_version))
    };
    assert_eq!(level("metadata.version"), Some((7, 33)));
    assert_eq!(level("transaction.version"), Some((0, 2)));
    // KIP-848 consumer groups: group.version 1.
    assert_eq!(level("group.version"), Some((0, 1)));
    // KIP-932 share groups: share.version 1; 2 adds KIP-1191's
    // dead-letter queue.
    assert_eq!(level("share.version"), Some((0, 2)));
    // KIP-1071 streams groups: streams.version 1.
    assert_eq!(level("streams.version"), Some((0, 1)));
    for off in ["kraft.version", "eligible.leader.replicas.version"] {
        assert_eq!(level(off), Some((0, 0)), "{off}");
    }
    let range = |key: i16| {
        r.api_keys
            .iter()
            .find(|k| k.api_key == key)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(75), Some((0, 0)), "DescribeTopicPartitions");
    // v10 names topics by id (KIP-848).
    assert_eq!(range(8), Some((2, 10)), "OffsetCommit");
    assert_eq!(range(9), Some((1, 10)), "OffsetFetch");
    // v6 names topics by id (KIP-1319).
    assert_eq!(range(28), Some((0, 6)), "TxnOffsetCommit");
    assert_eq!(range(66), Some((0, 2)), "ListTransactions");
    assert_eq!(range(68), Some((0, 1)), "ConsumerGroupHeartbeat");
    assert_eq!(range(69), Some((0, 1)), "ConsumerGroupDescribe");
    for (key, name) in [(76, "ShareGroupHeartbeat"), (77, "ShareGroupDescribe")] {
        assert_eq!(range(key), Some((1, 1)), "{name}");
    }
    // v2: RENEW acknowledgements (KIP-1222), record-limit acquisition
    // (KIP-1206), at share.version 1 as in Kafka 4.4.
    for (key, name) in [(78, "ShareFetch"), (79, "ShareAcknowledge")] {
        assert_eq!(range(key), Some((1, 2)), "{name}");
    }
    // v1 adds each partition's lag (KIP-1226)
    assert_eq!(range(90), Some((0, 1)), "DescribeShareGroupOffsets");
    for (key, name) in [
        (91, "AlterShareGroupOffsets"),
        (92, "DeleteShareGroupOffsets"),
    ] {
        assert_eq!(range(key), Some((0, 0)), "{name}");
    }
    // KIP-1331: version 1 of both, and the topology description update.
    assert_eq!(range(88), Some((0, 1)), "StreamsGroupHeartbeat");
    assert_eq!(range(89), Some((0, 1)), "StreamsGroupDescribe");
    assert_eq!(
        range(93),
        Some((0, 0)),
        "StreamsGroupTopologyDescriptionUpdate"
    );
    // Kafka 4.4's newest versions (all but Produce's past the crate).
    assert_eq!(range(0), Some((0, 13)), "Produce");
    assert_eq!(range(2), Some((1, 11)), "ListOffsets");
    assert_eq!(range(42), Some((0, 3)), "DeleteGroups");
    assert_eq!(range(35), Some((1, 5)), "DescribeLogDirs");

    // Too new a version: the v0 answer lists ApiVersions' own range only.
    let body = encode(
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("x"))
            .with_client_software_version(sb("1")),
        3,
    );
    c.write_raw(&frame_with_header(18, 127, 9, 2, &body))
        .expect("send ApiVersions v127");
    let (corr, mut body) = c.recv_frame().expect("answer to ApiVersions v127");
    assert_eq!(corr, 9);
    let r = ApiVersionsResponse::decode(&mut body, 0).expect("v0 body");
    assert_eq!(r.error_code, UNSUPPORTED_VERSION);
    let listed: Vec<(i16, i16, i16)> = r
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    assert_eq!(listed, vec![(18, 0, 5)]);
}

fn metadata(c: &mut Client, version: i16, topics: Vec<MetadataRequestTopic>) -> MetadataResponse {
    let mut req = MetadataRequest::default()
        .with_topics(Some(topics))
        .with_allow_auto_topic_creation(false);
    if version >= 8 {
        req = req.with_include_topic_authorized_operations(true);
    }
    if (8..=10).contains(&version) {
        req = req.with_include_cluster_authorized_operations(true);
    }
    c.call(version, &req)
}

fn by_name(name: &str) -> MetadataRequestTopic {
    MetadataRequestTopic::default().with_name(Some(tn(name)))
}

fn by_id(id: Uuid) -> MetadataRequestTopic {
    MetadataRequestTopic::default()
        .with_name(None)
        .with_topic_id(id)
}

#[test]
fn metadata_operations_topic_ids_and_auto_creation() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "known", 2, &[]);

    // Operations are computed for every topic named, known or not.
    let m = metadata(
        &mut c,
        10,
        vec![by_name("known"), by_name("missing"), by_name("bad name!")],
    );
    assert_eq!(m.cluster_authorized_operations, CLUSTER_OPS);
    let ops: Vec<(String, i16, i32)> = m
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                t.topic_authorized_operations,
            )
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            ("known".to_string(), NONE, TOPIC_OPS),
            ("missing".to_string(), UNKNOWN_TOPIC_OR_PARTITION, TOPIC_OPS),
            ("bad name!".to_string(), INVALID_TOPIC_EXCEPTION, TOPIC_OPS),
        ]
    );

    // v10-11 cannot look topics up by id: the whole request is refused,
    // a null name answered as "".
    let unknown = Uuid::from_u128(1);
    for v in [10, 11] {
        let m = metadata(&mut c, v, vec![by_id(unknown), by_name("known")]);
        assert!(m.brokers.is_empty() && m.cluster_id.is_none(), "v{v}");
        assert_eq!(m.controller_id.0, -1);
        let topics: Vec<(String, i16, Uuid, i32)> = m
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    t.error_code,
                    t.topic_id,
                    t.topic_authorized_operations,
                )
            })
            .collect();
        assert_eq!(
            topics,
            vec![
                (String::new(), INVALID_REQUEST, unknown, OPS_NOT_SET),
                (
                    "known".to_string(),
                    INVALID_REQUEST,
                    Uuid::nil(),
                    OPS_NOT_SET
                ),
            ],
            "v{v}"
        );
    }
    // v12+: an unknown id is UNKNOWN_TOPIC_ID, with no name and no operations.
    let m = metadata(&mut c, 12, vec![by_id(unknown)]);
    let t = &m.topics[0];
    assert_eq!(
        (
            t.error_code,
            t.name.is_none(),
            t.topic_authorized_operations
        ),
        (UNKNOWN_TOPIC_ID, true, OPS_NOT_SET)
    );

    // Auto-creation answers UNKNOWN_TOPIC_OR_PARTITION, as Kafka does while
    // it creates the topic; the next request finds it.
    let req = MetadataRequest::default()
        .with_topics(Some(vec![by_name("auto")]))
        .with_allow_auto_topic_creation(true)
        .with_include_topic_authorized_operations(true);
    let m = c.call(12, &req);
    let t = &m.topics[0];
    assert_eq!(
        (t.error_code, t.topic_id, t.partitions.len()),
        (UNKNOWN_TOPIC_OR_PARTITION, Uuid::nil(), 0)
    );
    assert_eq!(t.topic_authorized_operations, TOPIC_OPS);
    let m = metadata(&mut c, 12, vec![by_name("auto")]);
    assert_eq!(m.topics[0].error_code, NONE);
    assert_eq!(m.topics[0].partitions.len(), 1);
}

fn describe_partitions(
    c: &mut Client,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    c.call(
        0,
        &DescribeTopicPartitionsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| TopicRequest::default().with_name(tn(t)))
                    .collect(),
            )
            .with_response_partition_limit(limit)
            .with_cursor(cursor.map(|(t, p)| {
                Cursor::default()
                    .with_topic_name(tn(t))
                    .with_partition_index(p)
            })),
    )
}

/// (topic, error, partitions) of a page, and its next cursor.
type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

fn page_of(r: &DescribeTopicPartitionsResponse) -> Page {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let next = r
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.to_string(), c.partition_index));
    (topics, next)
}

#[test]
fn describe_topic_partitions_pages() {
    let b = Broker::start(&[]);
    find_coordinators(&b);
    let mut c = b.client();
    for (t, n) in [("t-a", 3), ("t-b", 2), ("t-c", 1)] {
        create_topic(&mut c, t, n, &[]);
    }
    let all = ["t-c", "t-a", "t-b"];

    // Walk every partition two at a time, as Admin.describeTopics does.
    let mut seen = Vec::new();
    let mut cursor: Option<(String, i32)> = None;
    for _ in 0..10 {
        let r = describe_partitions(
            &mut c,
            &all,
            2,
            cursor.as_ref().map(|(t, p)| (t.as_str(), *p)),
        );
        for t in &r.topics {
            assert_eq!(t.error_code, NONE);
            assert_eq!(t.topic_authorized_operations, TOPIC_OPS);
            assert!(!t.topic_id.is_nil());
            for p in &t.partitions {
                assert_eq!(p.leader_id.0, 1);
                assert_eq!(p.isr_nodes.len(), 1);
                assert_eq!(p.eligible_leader_replicas.as_deref(), Some(&[][..]));
                assert_eq!(p.last_known_elr.as_deref(), Some(&[][..]));
                seen.push((t.name.as_ref().map(|n| n.to_string()), p.partition_index));
            }
        }
        cursor = page_of(&r).1;
        if cursor.is_none() {
            break;
        }
    }
    let expected: Vec<(Option<String>, i32)> = [("t-a", 0), ("t-a", 1), ("t-a", 2), ("t-b", 0)]
        .into_iter()
        .chain([("t-b", 1), ("t-c", 0)])
        .map(|(t, p)| (Some(t.to_string()), p))
        .collect();
    assert_eq!(seen, expected);

    // A page that ends with a topic points at the next topic's start.
    let r = describe_partitions(&mut c, &all, 3, None);
    assert_eq!(
        page_of(&r),
        (
            vec![("t-a".to_string(), NONE, vec![0, 1, 2])],
            Some(("t-b".to_string(), 0))
        )
    );
    // Unknown and invalid topics, in name order.
    let r = describe_partitions(&mut c, &["zz", "t-c", "bad name!"], 100, None);
    assert_eq!(
        page_of(&r).0,
        vec![
            ("bad name!".to_string(), INVALID_TOPIC_EXCEPTION, vec![]),
            ("t-c".to_string(), NONE, vec![0]),
            ("zz".to_string(), UNKNOWN_TOPIC_OR_PARTITION, vec![]),
        ]
    );
    // A cursor on a topic not asked for refuses the request.
    let r = describe_partitions(&mut c, &["t-a", "t-b"], 5, Some(("t-z", 0)));
    assert_eq!(
        page_of(&r),
        (
            vec![
                ("t-a".to_string(), INVALID_REQUEST, vec![]),
                ("t-b".to_string(), INVALID_REQUEST, vec![])
            ],
            None
        )
    );
    assert!(r
        .topics
        .iter()
        .all(|t| t.topic_authorized_operations == OPS_NOT_SET));
    // No topics named: every topic, internal ones included, from the cursor on.
    let r = describe_partitions(&mut c, &[], 2000, None);
    let names: Vec<String> = page_of(&r).0.into_iter().map(|t| t.0).collect();
    assert!(
        names.contains(&"__consumer_offsets".to_string()),
        "{names:?}"
    );
    assert!(r.topics.iter().any(
        |t| t.is_internal && t.name.as_ref().map(|n| n.as_str()) == Some("__consumer_offsets")
    ));
    let r = describe_partitions(&mut c, &[], 2000, Some(("t-b", 1)));
    assert_eq!(
        page_of(&r),
        (
            vec![
                ("t-b".to_string(), NONE, vec![1]),
                ("t-c".to_string(), NONE, vec![0])
            ],
            None
        )
    );
}

fn list_transactions(
    c: &mut Client,
    version: i16,
    pattern: Option<&str>,
    duration: i64,
) -> (i16, Vec<String>) {
    let r = c.call(
        version,
        &ListTransactionsRequest::default()
            .with_duration_filter(duration)
            .with_transactional_id_pattern(pattern.map(sb)),
    );
    let mut ids: Vec<String> = r
        .transaction_states
        .iter()
        .map(|s| s.transactional_id.to_string())
        .collect();
    ids.sort();
    (r.error_code, ids)
}

#[test]
fn list_transactions_pattern_and_duration_filters() {
    let b = Broker::start(&[]);
    find_coordinators(&b);
    let mut c = b.client();
    for id in ["orders.eu-1", "orders.us-2", "payments-1"] {
        let r = c.call(
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(sb(id))))
                .with_transaction_timeout_ms(60_000),
        );
        assert_eq!(r.error_code, NONE, "init {id}");
    }
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // The whole id must match.
    assert_eq!(
        list_transactions(&mut c, 2, Some("orders\\..*"), -1),
        (NONE, ids(&["orders.eu-1", "orders.us-2"]))
    );
    assert_eq!(
        list_transactions(&mut c, 2, Some("orders"), -1),
        (NONE, vec![])
    );
    // Pattern.quote of a prefix, then a digit.
    assert_eq!(
        list_transactions(&mut c, 2, Some("\\Qorders.eu-\\E\\d"), -1),
        (NONE, ids(&["orders.eu-1"]))
    );
    // Empty or null: no filter.
    let everything = ids(&["orders.eu-1", "orders.us-2", "payments-1"]);
    assert_eq!(
        list_transactions(&mut c, 2, Some(""), -1),
        (NONE, everything.clone())
    );
    assert_eq!(
        list_transactions(&mut c, 2, None, -1),
        (NONE, everything.clone())
    );
    // Not RE2: refused.
    for bad in ["(orders", "(?=o)orders.*", "(o)\\1.*"] {
        assert_eq!(
            list_transactions(&mut c, 2, Some(bad), -1),
            (INVALID_REGULAR_EXPRESSION, vec![]),
            "{bad}"
        );
    }
    // v1: ids with no transaction open have no start time, and count as
    // running longer than any duration.
    assert_eq!(
        list_transactions(&mut c, 1, None, 3_600_000),
        (NONE, everything)
    );
}

#[test]
fn admin_messages_and_operations() {
    let b = Broker::start(&[]);
    let mut c = b.client();

    // CreateTopics: no message for a created topic (validated only, too).
    for validate_only in [false, true] {
        let r = c.call(
            7,
            &CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(tn(if validate_only { "v" } else { "t" }))
                    .with_num_partitions(1)
                    .with_replication_factor(1)])
                .with_timeout_ms(10_000)
                .with_validate_only(validate_only),
        );
        assert_eq!(r.topics[0].error_code, NONE);
        assert_eq!(
            r.topics[0].error_message, None,
            "validate only {validate_only}"
        );
    }
    // DeleteTopics v6: unknown names and ids carry Kafka's message.
    let r = c.call(
        6,
        &DeleteTopicsRequest::default()
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(tn("nope"))),
                DeleteTopicState::default()
                    .with_name(None)
                    .with_topic_id(Uuid::from_u128(1)),
            ])
            .with_timeout_ms(10_000),
    );
    let got: Vec<(i16, bool)> = r
        .responses
        .iter()
        .map(|x| (x.error_code, x.error_message.is_some()))
        .collect();
    assert_eq!(
        got,
        vec![(UNKNOWN_TOPIC_OR_PARTITION, true), (UNKNOWN_TOPIC_ID, true)]
    );
    // CreatePartitions: an unknown topic has no message.
    let r = c.call(
        3,
        &CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(tn("nope"))
                .with_count(2)
                .with_assignments(None)])
            .with_timeout_ms(10_000),
    );
    assert_eq!(
        (r.results[0].error_code, r.results[0].error_message.clone()),
        (UNKNOWN_TOPIC_OR_PARTITION, None)
    );
    // FindCoordinator v1-3 carry the error's message, "NONE" on success.
    for v in 1..=3 {
        let r = c.call(
            v,
            &FindCoordinatorRequest::default()
                .with_key(sb("g"))
                .with_key_type(0),
        );
        assert_eq!(r.error_code, NONE);
        assert_eq!(r.error_message.as_deref(), Some("NONE"), "v{v}");
    }
    // DescribeGroups v6: a group that does not exist has no operations.
    let r = c.call(
        6,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(sb("nogroup"))])
            .with_include_authorized_operations(true),
    );
    assert_eq!(
        (r.groups[0].error_code, r.groups[0].authorized_operations),
        (GROUP_ID_NOT_FOUND, OPS_NOT_SET)
    );
    // DescribeProducers: Kafka's text for a topic it does not know, no message
    // for a partition its topic does not have.
    let r = c.call(
        0,
        &DescribeProducersRequest::default().with_topics(vec![
            ProducersTopic::default()
                .with_name(tn("t"))
                .with_partition_indexes(vec![5]),
            ProducersTopic::default()
                .with_name(tn("nope"))
                .with_partition_indexes(vec![0]),
        ]),
    );
    let got: Vec<(i16, Option<String>)> = r
        .topics
        .iter()
        .map(|t| {
            let p = &t.partitions[0];
            (
                p.error_code,
                p.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (UNKNOWN_TOPIC_OR_PARTITION, None),
            (
                UNKNOWN_TOPIC_OR_PARTITION,
                Some("This server does not host this topic-partition.".to_string())
            )
        ]
    );
    // DescribeCluster: the cluster resource's operations.
    let r = c.call(
        0,
        &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    assert_eq!(r.cluster_authorized_operations, CLUSTER_OPS);
}

fn config_resources(c: &mut Client, version: i16, types: &[i8]) -> (i16, Vec<(String, i8)>) {
    let r = c.call(
        version,
        &ListConfigResourcesRequest::default().with_resource_types(types.to_vec()),
    );
    let listed = r
        .config_resources
        .iter()
        .map(|x| (x.resource_name.to_string(), x.resource_type))
        .collect();
    (r.error_code, listed)
}

#[test]
fn list_config_resources() {
    let b = Broker::start(&[]);
    find_coordinators(&b);
    let mut c = b.client();
    create_topic(&mut c, "cfg-t", 1, &[]);
    let node = |t: i8| ("1".to_string(), t);
    // Every type: the broker's loggers, the broker, then every topic.
    let (code, all) = config_resources(&mut c, 1, &[]);
    assert_eq!(code, NONE);
    assert_eq!(&all[..2], &[node(8), node(4)]);
    let topics: Vec<&str> = all[2..]
        .iter()
        .map(|(n, t)| {
            assert_eq!(*t, 2);
            n.as_str()
        })
        .collect();
    assert!(
        topics.contains(&"cfg-t") && topics.contains(&"__consumer_offsets"),
        "{topics:?}"
    );
    assert_eq!(config_resources(&mut c, 1, &[4, 4]), (NONE, vec![node(4)]));
    // No group configs and no client-metrics subscriptions here.
    assert_eq!(config_resources(&mut c, 1, &[32, 16]), (NONE, vec![]));
    // A type Kafka cannot list refuses the request.
    assert_eq!(
        config_resources(&mut c, 1, &[2, 99]),
        (UNSUPPORTED_VERSION, vec![])
    );
    // v0 is KIP-714's ListClientMetricsResources.
    assert_eq!(config_resources(&mut c, 0, &[]), (NONE, vec![]));
}
