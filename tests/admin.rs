//! Black-box tests of the admin APIs over the raw protocol: DescribeConfigs,
//! AlterConfigs, IncrementalAlterConfigs (persisted and live), CreatePartitions,
//! DeleteRecords, DescribeCluster, DescribeLogDirs, OffsetForLeaderEpoch,
//! ElectLeaders, partition reassignments, client quotas and the ACL APIs,
//! each with its Kafka 4.x error paths.

mod common;

use bytes::Bytes;
use common::configs::*;
use common::*;
use kafka_protocol::messages::alter_client_quotas_request::{
    EntityData as AqEntity, EntryData as AqEntry, OpData,
};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncResource, AlterableConfig as IncConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const POLICY_VIOLATION: i16 = 44;
const SECURITY_DISABLED: i16 = 54;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;
const ELECTION_NOT_NEEDED: i16 = 84;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

/// kastle's default node.id.
const NODE: i32 = 1;

fn create(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(tn(name))
            .with_num_partitions(partitions)
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
            )]);
    let r = c.call(7, &req);
    assert_eq!(
        r.topics[0].error_code, NONE,
        "{:?}",
        r.topics[0].error_message
    );
}

fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: &[u8],
) -> PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(tn(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(records.to_vec())))])]);
    let mut resp = c.call(9, &req);
    resp.responses.remove(0).partition_responses.remove(0)
}

fn produce_ok(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: &[u8],
) -> PartitionProduceResponse {
    let r = produce(c, topic, partition, records);
    assert_eq!(r.error_code, NONE, "produce: {:?}", r.error_message);
    r
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------------------
// DescribeConfigs
// ---------------------------------------------------------------------------

#[test]
fn describe_configs_topic_and_broker() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create(
        &mut c,
        "dc",
        1,
        &[("retention.ms", "1234"), ("internal.segment.bytes", "4096")],
    );

    for v in 1..=4 {
        let r = describe(&mut c, v, TOPIC, "dc", None);
        assert_eq!(r.error_code, NONE);
        assert_eq!(r.resource_name.as_str(), "dc");
        // Internal keys are hidden, as Kafka hides them.
        assert!(r.configs.iter().all(|e| !e.name.starts_with("internal.")));
        let ret = config(&r, "retention.ms");
        assert_eq!(ret.value.as_deref(), Some("1234"));
        assert_eq!(ret.config_source, 1, "DYNAMIC_TOPIC_CONFIG");
        assert!(!ret.read_only && !ret.is_sensitive);
        // Synonyms: the topic override, then the chain of its broker
        // synonym log.retention.ms, which is not set anywhere (Kafka leaves
        // out log.retention.hours, a synonym of lower precedence).
        let names: Vec<(&str, i8)> = ret
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.source))
            .collect();
        assert_eq!(names, vec![("retention.ms", 1)]);
        let mm = config(&r, "max.message.bytes");
        assert_eq!(mm.value.as_deref(), Some("1048588"));
        assert_eq!(mm.config_source, 5, "DEFAULT_CONFIG");
        assert_eq!(mm.synonyms[0].name.as_str(), "message.max.bytes");
        if v >= 3 {
            assert_eq!(ret.config_type, 5, "LONG");
            assert_eq!(mm.config_type, 3, "INT");
            assert_eq!(config(&r, "cleanup.policy").config_type, 7, "LIST");
            assert!(ret.documentation.as_ref().is_some_and(|d| !d.is_empty()));
        }
    }

    // The key filter returns only the named keys (unknown ones are skipped).
    let r = describe(
        &mut c,
        4,
        TOPIC,
        "dc",
        Some(&["segment.bytes", "no.such.key"]),
    );
    assert_eq!(r.configs.len(), 1);
    assert_eq!(
        config(&r, "segment.bytes").value.as_deref(),
        Some("1073741824")
    );

    let r = describe(&mut c, 4, TOPIC, "missing", None);
    assert_eq!(r.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert!(r.configs.is_empty());
    assert_eq!(
        describe(&mut c, 4, TOPIC, "bad/name", None).error_code,
        INVALID_TOPIC_EXCEPTION
    );

    // The broker itself: read-only static configs.
    let r = describe(&mut c, 4, BROKER, &NODE.to_string(), None);
    assert_eq!(r.error_code, NONE);
    let dirs = config(&r, "log.dirs");
    assert_eq!(dirs.value.as_deref(), Some(b.data_dir.to_str().unwrap()));
    assert_eq!(dirs.config_source, 4, "STATIC_BROKER_CONFIG");
    assert!(dirs.read_only);
    let np = config(&r, "num.partitions");
    assert_eq!((np.value.as_deref(), np.config_source), (Some("1"), 5));
    let r = describe(
        &mut c,
        4,
        BROKER,
        &NODE.to_string(),
        Some(&["message.max.bytes"]),
    );
    assert_eq!(r.configs.len(), 1);
    // Cluster default resource: the min.insync.replicas a new Kafka 4.4
    // cluster starts with (eligible leader replicas on).
    let r = describe(&mut c, 4, BROKER, "", None);
    assert_eq!((r.error_code, r.configs.len()), (NONE, 1));
    let mir = config(&r, "min.insync.replicas");
    assert_eq!((mir.value.as_deref(), mir.config_source), (Some("1"), 3));
    let r = describe(&mut c, 4, BROKER, "7", None);
    assert_eq!(r.error_code, INVALID_REQUEST);
    assert!(r.error_message.unwrap().contains("Unexpected broker id"));
    assert_eq!(
        describe(&mut c, 4, BROKER, "x", None).error_code,
        INVALID_REQUEST
    );

    // An unknown resource type fails every resource of the request.
    let req = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(sb("dc")),
        DescribeConfigsResource::default()
            .with_resource_type(99)
            .with_resource_name(sb("x")),
    ]);
    let r = c.call(4, &req);
    assert!(r.results.iter().all(|x| x.error_code == INVALID_REQUEST));
}

// ---------------------------------------------------------------------------
// IncrementalAlterConfigs / AlterConfigs
// ---------------------------------------------------------------------------

#[test]
fn incremental_alter_configs_operations_and_errors() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create(&mut c, "ia", 1, &[]);

    // validate_only changes nothing.
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "ia",
            &[("retention.ms", SET, Some("5000"))],
            true
        )
        .0,
        NONE
    );
    assert_eq!(
        described(&mut c, TOPIC, "ia", "retention.ms"),
        (Some("604800000".into()), 5)
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "ia",
            &[("retention.ms", SET, Some("5000"))],
            false
        )
        .0,
        NONE
    );
    assert_eq!(
        described(&mut c, TOPIC, "ia", "retention.ms"),
        (Some("5000".into()), 1)
    );

    // APPEND / SUBTRACT on a list key start from its default.
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "ia",
            &[("cleanup.policy", APPEND, Some("compact"))],
            false
        )
        .0,
        NONE
    );
    assert_eq!(
        described(&mut c, TOPIC, "ia", "cleanup.policy")
            .0
            .as_deref(),
        Some("delete,compact")
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "ia",
            &[("cleanup.policy", SUBTRACT, Some("compact"))],
            false
        )
        .0,
        NONE
    );
    assert_eq!(
        described(&mut c, TOPIC, "ia", "cleanup.policy")
            .0
            .as_deref(),
        Some("delete")
    );
    let (code, msg) = inc_alter(
        &mut c,
        TOPIC,
        "ia",
        &[("retention.ms", APPEND, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.unwrap().contains("is not LIST"));

    // DELETE returns a key to its default; other keys stay.
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "ia",
            &[("cleanup.policy", DELETE, None)],
            false
        )
        .0,
        NONE
    );
    assert_eq!(
        described(&mut c, TOPIC, "ia", "cleanup.policy"),
        (Some("delete".into()), 5)
    );
    assert_eq!(
        described(&mut c, TOPIC, "ia", "retention.ms").0.as_deref(),
        Some("5000")
    );

    // Every value is validated; a failing change applies nothing.
    for (k, v) in [
        ("no.such.key", "1"),
        ("max.message.bytes", "abc"),
        ("segment.bytes", "10"),
        ("cleanup.policy", "shred"),
    ] {
        let (code, _) = inc_alter(
            &mut c,
            TOPIC,
            "ia",
            &[("retention.ms", SET, Some("7")), (k, SET, Some(v))],
            false,
        );
        assert_eq!(code, INVALID_CONFIG, "{k}={v}");
    }
    assert_eq!(
        described(&mut c, TOPIC, "ia", "retention.ms").0.as_deref(),
        Some("5000")
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "missing",
            &[("retention.ms", SET, Some("1"))],
            false
        )
        .0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        inc_alter(&mut c, TOPIC, "ia", &[("retention.ms", SET, None)], false).0,
        INVALID_REQUEST
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "ia",
            &[
                ("retention.ms", SET, Some("1")),
                ("retention.ms", DELETE, None)
            ],
            false
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "ia",
            &[("retention.ms", 9, Some("1"))],
            false
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC,
            "",
            &[("retention.ms", SET, Some("1"))],
            false
        )
        .0,
        INVALID_REQUEST
    );

    // A resource named twice fails in both places.
    let res = IncResource::default()
        .with_resource_type(TOPIC)
        .with_resource_name(sb("ia"))
        .with_configs(vec![IncConfig::default()
            .with_name(sb("retention.ms"))
            .with_config_operation(SET)
            .with_value(Some(sb("9")))]);
    let r = c.call(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![res.clone(), res]),
    );
    assert!(r.responses.iter().all(|x| x.error_code == INVALID_REQUEST));

    // Read-only broker configs are refused as Kafka refuses them (dynamic
    // ones are in tests/configs.rs).
    let (code, msg) = inc_alter(
        &mut c,
        BROKER,
        &NODE.to_string(),
        &[("log.dirs", SET, Some("/elsewhere"))],
        false,
    );
    assert_eq!(code, INVALID_REQUEST);
    assert_eq!(
        msg.as_deref(),
        Some("Cannot update these configs dynamically: [log.dirs]")
    );
    assert_eq!(
        inc_alter(
            &mut c,
            BROKER,
            "",
            &[("num.partitions", SET, Some("3"))],
            false
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(
        inc_alter(
            &mut c,
            BROKER,
            &NODE.to_string(),
            &[("num.partitions", DELETE, None)],
            false
        )
        .0,
        NONE
    );
    let (code, msg) = inc_alter(
        &mut c,
        BROKER,
        "7",
        &[("num.partitions", SET, Some("3"))],
        false,
    );
    assert_eq!(code, INVALID_REQUEST);
    assert!(msg.unwrap().contains("Unexpected broker id"));
}

#[test]
fn legacy_alter_configs_replaces_the_whole_set() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create(&mut c, "la", 1, &[("retention.ms", "1000")]);
    assert_eq!(
        legacy_alter(&mut c, TOPIC, "la", &[("segment.ms", Some("60000"))]).0,
        NONE
    );
    assert_eq!(
        described(&mut c, TOPIC, "la", "segment.ms"),
        (Some("60000".into()), 1)
    );
    // retention.ms was not in the new set: back to its default.
    assert_eq!(described(&mut c, TOPIC, "la", "retention.ms").1, 5);
    assert_eq!(
        legacy_alter(&mut c, TOPIC, "la", &[("bogus", Some("1"))]).0,
        INVALID_CONFIG
    );
    assert_eq!(
        legacy_alter(&mut c, TOPIC, "la", &[("segment.ms", None)]).0,
        INVALID_REQUEST
    );
    assert_eq!(
        legacy_alter(&mut c, TOPIC, "nope", &[("segment.ms", Some("1"))]).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        legacy_alter(
            &mut c,
            BROKER,
            &NODE.to_string(),
            &[("num.partitions", Some("2"))]
        )
        .0,
        INVALID_REQUEST
    );
    assert_eq!(legacy_alter(&mut c, BROKER, &NODE.to_string(), &[]).0, NONE);
    assert_eq!(
        described(&mut c, TOPIC, "la", "segment.ms").0.as_deref(),
        Some("60000")
    );
}

#[test]
fn altered_configs_take_effect_and_survive_restart() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create(&mut c, "live", 1, &[]);
    produce_ok(&mut c, "live", 0, &simple_batch(1, 2000, now_ms(), 1));

    let ops = [
        ("max.message.bytes", SET, Some("1000")),
        ("message.timestamp.type", SET, Some("LogAppendTime")),
    ];
    assert_eq!(inc_alter(&mut c, TOPIC, "live", &ops, false).0, NONE);
    // Live: the next produce sees the new limits.
    assert_eq!(
        produce(&mut c, "live", 0, &simple_batch(1, 2000, now_ms(), 2)).error_code,
        MESSAGE_TOO_LARGE
    );
    let before = now_ms();
    let r = produce_ok(&mut c, "live", 0, &simple_batch(1, 10, 1000, 3));
    assert!(
        r.log_append_time_ms >= before,
        "append time {}",
        r.log_append_time_ms
    );

    drop(c);
    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(
        described(&mut c, TOPIC, "live", "max.message.bytes"),
        (Some("1000".into()), 1)
    );
    assert_eq!(
        described(&mut c, TOPIC, "live", "message.timestamp.type")
            .0
            .as_deref(),
        Some("LogAppendTime")
    );
    assert_eq!(
        produce(&mut c, "live", 0, &simple_batch(1, 2000, now_ms(), 4)).error_code,
        MESSAGE_TOO_LARGE
    );
    let before = now_ms();
    let r = produce_ok(&mut c, "live", 0, &simple_batch(1, 10, 1000, 5));
    assert!(r.log_append_time_ms >= before);
    // The stored batch carries the LogAppendTime attribute and timestamp.
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(tn("live"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(r.base_offset)
                .with_partition_max_bytes(1 << 20)])]);
    let f = c.call(12, &req);
    let data = f.responses[0].partitions[0].records.clone().unwrap();
    let batches = split_batches(&data);
    let last = batches.last().unwrap();
    let attributes = i16::from_be_bytes(last[21..23].try_into().unwrap());
    assert_ne!(attributes & 0x08, 0, "timestamp type bit");
    let max_ts = i64::from_be_bytes(last[35..43].try_into().unwrap());
    assert!(max_ts >= before);
}

// ---------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------

fn create_partitions(
    c: &mut Client,
    topics: Vec<CreatePartitionsTopic>,
    validate_only: bool,
) -> Vec<(String, i16, Option<String>)> {
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(5000)
        .with_validate_only(validate_only)
        .with_topics(topics);
    c.call(3, &req)
        .results
        .into_iter()
        .map(|r| {
            (
                r.name.0.to_string(),
                r.error_code,
                r.error_message.map(|m| m.to_string()),
            )
        })
        .collect()
}

fn grow(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
    CreatePartitionsTopic::default()
        .with_name(tn(name))
        .with_count(count)
        .with_assignments(assignments.map(|a| {
            a.into_iter()
                .map(|ids| {
                    CreatePartitionsAssignment::default()
                        .with_broker_ids(ids.into_iter().map(BrokerId).collect())
                })
                .collect()
        }))
}

fn partition_count(c: &mut Client, topic: &str) -> usize {
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(tn(topic))),
    ]));
    let m = c.call(12, &req);
    m.topics[0].partitions.len()
}

#[test]
fn create_partitions_grows_and_refuses_like_kafka() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create(&mut c, "cp", 1, &[]);

    let r = create_partitions(&mut c, vec![grow("cp", 3, None)], true);
    assert_eq!(r[0].1, NONE);
    assert_eq!(
        partition_count(&mut c, "cp"),
        1,
        "validate_only adds nothing"
    );
    let r = create_partitions(&mut c, vec![grow("cp", 3, None)], false);
    assert_eq!((r[0].1, r[0].2.clone()), (NONE, None));
    assert_eq!(partition_count(&mut c, "cp"), 3);
    produce_ok(&mut c, "cp", 2, &simple_batch(2, 10, now_ms(), 1));

    let r = create_partitions(&mut c, vec![grow("cp", 3, None)], false);
    assert_eq!(r[0].1, INVALID_PARTITIONS);
    assert_eq!(r[0].2.as_deref(), Some("Topic already has 3 partition(s)."));
    assert_eq!(
        create_partitions(&mut c, vec![grow("cp", 2, None)], false)[0].1,
        INVALID_PARTITIONS
    );
    assert_eq!(
        create_partitions(&mut c, vec![grow("nope", 2, None)], false)[0].1,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let r = create_partitions(
        &mut c,
        vec![grow("cp", 4, None), grow("cp", 5, None)],
        false,
    );
    assert!(r
        .iter()
        .all(|x| x.1 == INVALID_REQUEST && x.2.as_deref() == Some("Duplicate topic in request.")));

    // Manual assignments: only this broker exists.
    let r = create_partitions(&mut c, vec![grow("cp", 4, Some(vec![vec![5]]))], false);
    assert_eq!(r[0].1, INVALID_REPLICA_ASSIGNMENT);
    assert_eq!(
        r[0].2.as_deref(),
        Some(
            "The manual partition assignment includes broker 5, but no such broker is registered."
        )
    );
    let r = create_partitions(&mut c, vec![grow("cp", 5, Some(vec![vec![NODE]]))], false);
    assert_eq!(
        (r[0].1, r[0].2.as_deref()),
        (INVALID_REPLICA_ASSIGNMENT, Some("Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."))
    );
    assert_eq!(
        create_partitions(
            &mut c,
            vec![grow("cp", 4, Some(vec![vec![NODE, NODE]]))],
            false
        )[0]
        .1,
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(partition_count(&mut c, "cp"), 3);
    let r = create_partitions(
        &mut c,
        vec![grow("cp", 5, Some(vec![vec![NODE], vec![NODE]]))],
        false,
    );
    assert_eq!(r[0].1, NONE);
    assert_eq!(partition_count(&mut c, "cp"), 5);
    // Older versions work too.
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![grow("cp", 6, None)]);
    assert_eq!(c.call(0, &req).results[0].error_code, NONE);
    assert_eq!(partition_count(&mut c, "cp"), 6);
}

// ---------------------------------------------------------------------------
// DeleteRecords
// ---------------------------------------------------------------------------

fn delete_records(c: &mut Client, topic: &str, parts: &[(i32, i64)]) -> Vec<(i16, i64)> {
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(tn(topic))
            .with_partitions(
                parts
                    .iter()
                    .map(|(p, o)| {
                        DeleteRecordsPartition::default()
                            .with_partition_index(*p)
                            .with_offset(*o)
                    })
                    .collect(),
            )]);
    c.call(2, &req).topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.low_watermark))
        .collect()
}

fn earliest(c: &mut Client, topic: &str) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(tn(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-2)])]);
    c.call(7, &req).topics[0].partitions[0].offset
}

#[test]
fn delete_records_moves_the_low_watermark() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create(&mut c, "dr", 1, &[]);
    for i in 0..5 {
        produce_ok(&mut c, "dr", 0, &simple_batch(2, 10, now_ms(), i));
    }
    assert_eq!(delete_records(&mut c, "dr", &[(0, 4)]), vec![(NONE, 4)]);
    assert_eq!(earliest(&mut c, "dr"), 4);
    // Moving backwards is a no-op that reports the current low watermark.
    assert_eq!(delete_records(&mut c, "dr", &[(0, 2)]), vec![(NONE, 4)]);
    assert_eq!(
        delete_records(&mut c, "dr", &[(0, 11)]),
        vec![(OFFSET_OUT_OF_RANGE, -1)]
    );
    assert_eq!(
        delete_records(&mut c, "dr", &[(0, -5)]),
        vec![(OFFSET_OUT_OF_RANGE, -1)]
    );
    assert_eq!(
        delete_records(&mut c, "dr", &[(1, 0)]),
        vec![(UNKNOWN_TOPIC_OR_PARTITION, -1)]
    );
    assert_eq!(
        delete_records(&mut c, "nope", &[(0, 0)]),
        vec![(UNKNOWN_TOPIC_OR_PARTITION, -1)]
    );
    // -1 means the high watermark.
    assert_eq!(delete_records(&mut c, "dr", &[(0, -1)]), vec![(NONE, 10)]);
    drop(c);
    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(earliest(&mut c, "dr"), 10);
    // A compacted topic refuses, as Kafka's policy check does.
    create(&mut c, "drc", 1, &[("cleanup.policy", "compact")]);
    assert_eq!(
        delete_records(&mut c, "drc", &[(0, 0)]),
        vec![(POLICY_VIOLATION, -1)]
    );
    assert_eq!(
        delete_records(&mut c, "__consumer_offsets", &[(0, 0)]),
        vec![(INVALID_TOPIC_EXCEPTION, -1)]
    );
}

// ---------------------------------------------------------------------------
// DescribeCluster, DescribeLogDirs, OffsetForLeaderEpoch
// ---------------------------------------------------------------------------

#[test]
fn describe_cluster_reports_this_broker() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let md = c.call(12, &MetadataRequest::default().with_topics(Some(vec![])));
    for v in 0..=2 {
        let r = c.call(
            v,
            &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        );
        assert_eq!(r.error_code, NONE);
        assert_eq!(Some(r.cluster_id.clone()), md.cluster_id);
        assert_eq!(r.controller_id, BrokerId(NODE));
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(
            (
                r.brokers[0].broker_id,
                r.brokers[0].host.as_str(),
                r.brokers[0].port
            ),
            (BrokerId(NODE), "127.0.0.1", b.port as i32)
        );
        assert!(r.cluster_authorized_operations > 0);
        let r = c.call(v, &DescribeClusterRequest::default());
        assert_eq!(r.cluster_authorized_operations, i32::MIN);
    }
    let r = c.call(1, &DescribeClusterRequest::default().with_endpoint_type(2));
    assert_eq!(r.error_code, MISMATCHED_ENDPOINT_TYPE);
    let r = c.call(2, &DescribeClusterRequest::default().with_endpoint_type(9));
    assert_eq!(r.error_code, UNSUPPORTED_ENDPOINT_TYPE);
}

#[test]
fn describe_log_dirs_lists_partitions_and_space() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create(&mut c, "ld", 2, &[]);
    produce_ok(&mut c, "ld", 1, &simple_batch(3, 100, now_ms(), 1));
    for v in 1..=4 {
        let r = c.call(v, &DescribeLogDirsRequest::default().with_topics(None));
        assert_eq!(r.results.len(), 1);
        let d = &r.results[0];
        assert_eq!(d.error_code, NONE);
        assert_eq!(
            std::path::Path::new(d.log_dir.as_str()),
            b.data_dir.as_path()
        );
        let t = d
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == "ld")
            .expect("topic listed");
        assert_eq!(t.partitions.len(), 2);
        let p1 = t
            .partitions
            .iter()
            .find(|p| p.partition_index == 1)
            .unwrap();
        assert!(p1.partition_size > 300, "size {}", p1.partition_size);
        assert_eq!((p1.offset_lag, p1.is_future_key), (0, false));
        if v >= 4 {
            assert!(d.total_bytes > 0 && d.usable_bytes > 0 && d.usable_bytes <= d.total_bytes);
        }
    }
    // A filter names partitions; unknown ones are left out.
    let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default()
            .with_topic(tn("ld"))
            .with_partitions(vec![1, 7]),
        DescribableLogDirTopic::default()
            .with_topic(tn("nope"))
            .with_partitions(vec![0]),
    ]));
    let r = c.call(4, &req);
    let topics = &r.results[0].topics;
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].partitions.len(), 1);
    assert_eq!(topics[0].partitions[0].partition_index, 1);
}

#[test]
fn offset_for_leader_epoch_answers_epoch_zero() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create(&mut c, "ofe", 1, &[]);
    produce_ok(&mut c, "ofe", 0, &simple_batch(3, 10, now_ms(), 1));
    let ask = |c: &mut Client, v: i16, topic: &str, current: i32, epoch: i32| {
        let req = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(tn(topic))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(epoch)])]);
        let r = c.call(v, &req);
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    };
    for v in 2..=4 {
        assert_eq!(ask(&mut c, v, "ofe", 0, 0), (NONE, 0, 3));
        assert_eq!(ask(&mut c, v, "ofe", -1, 0), (NONE, 0, 3));
        assert_eq!(ask(&mut c, v, "ofe", 0, 5), (NONE, -1, -1));
        assert_eq!(ask(&mut c, v, "ofe", 1, 0).0, UNKNOWN_LEADER_EPOCH);
        assert_eq!(ask(&mut c, v, "ofe", -2, 0).0, FENCED_LEADER_EPOCH);
        assert_eq!(
            ask(&mut c, v, "nope", 0, 0),
            (UNKNOWN_TOPIC_OR_PARTITION, -1, -1)
        );
    }
}

// ---------------------------------------------------------------------------
// ElectLeaders, reassignments
// ---------------------------------------------------------------------------

#[test]
fn elections_and_reassignments_on_one_node() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create(&mut c, "el", 2, &[]);
    for v in 0..=2 {
        let req = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(tn("el"))
                .with_partitions(vec![0, 1, 9])]));
        let r = c.call(v, &req);
        assert_eq!(r.error_code, NONE);
        let codes: Vec<i16> = r.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            vec![
                ELECTION_NOT_NEEDED,
                ELECTION_NOT_NEEDED,
                UNKNOWN_TOPIC_OR_PARTITION
            ]
        );
    }
    // All partitions: those that need no election are left out.
    let r = c.call(
        2,
        &ElectLeadersRequest::default().with_topic_partitions(None),
    );
    assert!(r
        .replica_election_results
        .iter()
        .all(|t| t.partition_result.is_empty()));

    let reassign = |c: &mut Client, topic: &str, p: i32, replicas: Option<Vec<i32>>| {
        let req = AlterPartitionReassignmentsRequest::default().with_topics(vec![
            ReassignableTopic::default()
                .with_name(tn(topic))
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(p)
                    .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))]),
        ]);
        let r = c.call(0, &req);
        assert_eq!(r.error_code, NONE);
        r.responses[0].partitions[0].error_code
    };
    assert_eq!(reassign(&mut c, "el", 0, Some(vec![NODE])), NONE);
    assert_eq!(
        reassign(&mut c, "el", 0, Some(vec![NODE, 2])),
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        reassign(&mut c, "el", 0, Some(vec![])),
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        reassign(&mut c, "el", 0, Some(vec![NODE, NODE])),
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(reassign(&mut c, "el", 0, None), NO_REASSIGNMENT_IN_PROGRESS);
    assert_eq!(
        reassign(&mut c, "el", 5, Some(vec![NODE])),
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        reassign(&mut c, "nope", 0, Some(vec![NODE])),
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let r = c.call(
        0,
        &ListPartitionReassignmentsRequest::default().with_topics(None),
    );
    assert_eq!((r.error_code, r.topics.len()), (NONE, 0));
}

// ---------------------------------------------------------------------------
// Client quotas, ACLs, ApiVersions
// ---------------------------------------------------------------------------

fn alter_quota(
    c: &mut Client,
    entity: &[(&str, Option<&str>)],
    ops: &[(&str, f64, bool)],
    validate_only: bool,
) -> i16 {
    let req = AlterClientQuotasRequest::default()
        .with_validate_only(validate_only)
        .with_entries(vec![AqEntry::default()
            .with_entity(
                entity
                    .iter()
                    .map(|(t, n)| {
                        AqEntity::default()
                            .with_entity_type(sb(t))
                            .with_entity_name(n.map(sb))
                    })
                    .collect(),
            )
            .with_ops(
                ops.iter()
                    .map(|(k, v, rm)| {
                        OpData::default()
                            .with_key(sb(k))
                            .with_value(*v)
                            .with_remove(*rm)
                    })
                    .collect(),
            )]);
    c.call(1, &req).entries[0].error_code
}

fn describe_quotas(
    c: &mut Client,
    components: Vec<ComponentData>,
    strict: bool,
) -> DescribeClientQuotasResponse {
    c.call(
        1,
        &DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict),
    )
}

fn exact(t: &str, n: &str) -> ComponentData {
    ComponentData::default()
        .with_entity_type(sb(t))
        .with_match_type(0)
        .with_match(Some(sb(n)))
}

#[test]
fn client_quotas_are_stored_and_described() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", Some("alice"))],
            &[("producer_byte_rate", 1024.0, false)],
            false
        ),
        NONE
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", None)],
            &[("request_percentage", 12.5, false)],
            false
        ),
        NONE
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", Some("bob"))],
            &[("consumer_byte_rate", 1.0, false)],
            true
        ),
        NONE
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", Some("alice"))],
            &[("bogus_rate", 1.0, false)],
            false
        ),
        INVALID_REQUEST
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", Some("alice"))],
            &[("producer_byte_rate", 1.5, false)],
            false
        ),
        INVALID_REQUEST
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", Some("a")), ("ip", Some("1.2.3.4"))],
            &[("producer_byte_rate", 1.0, false)],
            false
        ),
        INVALID_REQUEST
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("group", Some("g"))],
            &[("producer_byte_rate", 1.0, false)],
            false
        ),
        INVALID_REQUEST
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("ip", Some("10.0.0.1"))],
            &[("connection_creation_rate", 5.0, false)],
            false
        ),
        NONE
    );

    let r = describe_quotas(&mut c, vec![exact("user", "alice")], false);
    assert_eq!(r.error_code, NONE);
    let entries = r.entries.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].values[0].key.as_str(),
            entries[0].values[0].value
        ),
        ("producer_byte_rate", 1024.0)
    );
    // No filter, not strict: everything (bob's validate-only change was not stored).
    assert_eq!(
        describe_quotas(&mut c, vec![], false)
            .entries
            .unwrap()
            .len(),
        3
    );
    let r = describe_quotas(
        &mut c,
        vec![ComponentData::default()
            .with_entity_type(sb("user"))
            .with_match_type(1)
            .with_match(None)],
        true,
    );
    assert_eq!(r.entries.unwrap()[0].entity[0].entity_name, None);
    let r = describe_quotas(
        &mut c,
        vec![exact("user", "a"), exact("ip", "1.2.3.4")],
        false,
    );
    assert_eq!(r.error_code, INVALID_REQUEST);

    drop(c);
    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(
        describe_quotas(&mut c, vec![], false)
            .entries
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", Some("alice"))],
            &[("producer_byte_rate", 0.0, true)],
            false
        ),
        NONE
    );
    assert!(describe_quotas(&mut c, vec![exact("user", "alice")], false)
        .entries
        .unwrap()
        .is_empty());
}

#[test]
fn acl_apis_answer_security_disabled() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let r = c.call(
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_operation(1)
            .with_permission_type(1)
            .with_pattern_type_filter(1),
    );
    assert_eq!(
        (r.error_code, r.error_message.as_deref()),
        (SECURITY_DISABLED, Some("No Authorizer is configured."))
    );
    let r = c.call(
        3,
        &CreateAclsRequest::default().with_creations(vec![Default::default(), Default::default()]),
    );
    assert_eq!(r.results.len(), 2);
    assert!(r.results.iter().all(|x| x.error_code == SECURITY_DISABLED));
    let r = c.call(
        1,
        &DeleteAclsRequest::default().with_filters(vec![Default::default()]),
    );
    assert_eq!(r.filter_results[0].error_code, SECURITY_DISABLED);
}

#[test]
fn api_versions_advertise_the_admin_apis() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let r = c.call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("kastle-tests"))
            .with_client_software_version(sb("1.0")),
    );
    let range = |k: ApiKey| {
        r.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(range(ApiKey::DescribeConfigs), Some((1, 4)));
    assert_eq!(range(ApiKey::IncrementalAlterConfigs), Some((0, 1)));
    assert_eq!(range(ApiKey::DescribeLogDirs), Some((1, 4)));
    assert_eq!(range(ApiKey::OffsetForLeaderEpoch), Some((2, 4)));
    assert_eq!(range(ApiKey::DescribeCluster), Some((0, 2)));
    assert_eq!(range(ApiKey::CreateAcls), Some((1, 3)));
}
