//! Black-box tests of the admin APIs over the raw protocol: DescribeConfigs,
//! AlterConfigs, IncrementalAlterConfigs (persisted and live), CreatePartitions,
//! DeleteRecords, DescribeCluster, DescribeLogDirs, OffsetForLeaderEpoch,
//! ElectLeaders, partition reassignments, client quotas and the ACL APIs,
//! each with its Kafka 4.x error paths.

use crate::support::admin::*;
use crate::support::fetch::{earliest, fetch_batches};
use crate::support::produce::{produce, produce_ok};
use crate::support::topics::{create_topic, metadata, partition_count};
use crate::support::*;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncResource, AlterableConfig as IncConfig,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;

// ---------------------------------------------------------------------------
// DescribeConfigs
// ---------------------------------------------------------------------------

#[test]
fn describe_configs_topic_and_broker() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(
        &mut c,
        "dc",
        1,
        &[("retention.ms", "1234"), ("internal.segment.bytes", "4096")],
    );

    for v in 1..=4 {
        let r = describe_configs(&mut c, v, TOPIC_RESOURCE, "dc", None);
        assert_eq!(r.error_code, NONE);
        assert_eq!(r.resource_name.as_str(), "dc");
        // Internal keys are hidden, as Kafka hides them.
        assert!(r.configs.iter().all(|e| !e.name.starts_with("internal.")));
        let ret = config(&r, "retention.ms");
        assert_eq!(ret.value.as_deref(), Some("1234"));
        assert_eq!(ret.config_source, 1, "DYNAMIC_TOPIC_CONFIG");
        assert!(!ret.read_only && !ret.is_sensitive);
        // Synonyms: the topic override only, as Kafka 4.4 lists them
        // (no broker key is set).
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
    let r = describe_configs(
        &mut c,
        4,
        TOPIC_RESOURCE,
        "dc",
        Some(&["segment.bytes", "no.such.key"]),
    );
    assert_eq!(r.configs.len(), 1);
    assert_eq!(
        config(&r, "segment.bytes").value.as_deref(),
        Some("1073741824")
    );

    let r = describe_configs(&mut c, 4, TOPIC_RESOURCE, "missing", None);
    assert_eq!(r.error_code, E::UnknownTopicOrPartition.code());
    assert!(r.configs.is_empty());
    assert_eq!(
        describe_configs(&mut c, 4, TOPIC_RESOURCE, "bad/name", None).error_code,
        E::InvalidTopicException.code()
    );

    // The broker itself: read-only static configs.
    let r = describe_configs(&mut c, 4, BROKER_RESOURCE, &NODE.to_string(), None);
    assert_eq!(r.error_code, NONE);
    let dirs = config(&r, "log.dirs");
    assert_eq!(dirs.value.as_deref(), Some(b.data_dir.to_str().unwrap()));
    assert_eq!(dirs.config_source, 4, "STATIC_BROKER_CONFIG");
    assert!(dirs.read_only);
    let np = config(&r, "num.partitions");
    assert_eq!((np.value.as_deref(), np.config_source), (Some("1"), 5));
    let r = describe_configs(
        &mut c,
        4,
        BROKER_RESOURCE,
        &NODE.to_string(),
        Some(&["message.max.bytes"]),
    );
    assert_eq!(r.configs.len(), 1);
    // Cluster default resource: the min.insync.replicas a new Kafka 4.4
    // cluster starts with (eligible leader replicas on).
    let r = describe_configs(&mut c, 4, BROKER_RESOURCE, "", None);
    assert_eq!((r.error_code, r.configs.len()), (NONE, 1));
    let mir = config(&r, "min.insync.replicas");
    assert_eq!((mir.value.as_deref(), mir.config_source), (Some("1"), 3));
    let r = describe_configs(&mut c, 4, BROKER_RESOURCE, "7", None);
    assert_eq!(r.error_code, E::InvalidRequest.code());
    assert!(r.error_message.unwrap().contains("Unexpected broker id"));
    assert_eq!(
        describe_configs(&mut c, 4, BROKER_RESOURCE, "x", None).error_code,
        E::InvalidRequest.code()
    );

    // An unknown resource type fails every resource of the request.
    let req = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(sb("dc")),
        DescribeConfigsResource::default()
            .with_resource_type(99)
            .with_resource_name(sb("x")),
    ]);
    let r = c.call(4, &req);
    assert!(r
        .results
        .iter()
        .all(|x| x.error_code == E::InvalidRequest.code()));
}

// ---------------------------------------------------------------------------
// IncrementalAlterConfigs / AlterConfigs
// ---------------------------------------------------------------------------

#[test]
fn incremental_alter_configs_operations_and_errors() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "ia", 1, &[]);

    // validate_only changes nothing.
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "ia",
            &[("retention.ms", SET, Some("5000"))],
            true
        )
        .0,
        NONE
    );
    assert_eq!(
        topic_config(&mut c, "ia", "retention.ms"),
        (Some("604800000".into()), 5)
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "ia",
            &[("retention.ms", SET, Some("5000"))],
            false
        )
        .0,
        NONE
    );
    assert_eq!(
        topic_config(&mut c, "ia", "retention.ms"),
        (Some("5000".into()), 1)
    );

    // APPEND / SUBTRACT on a list key start from its default.
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "ia",
            &[("cleanup.policy", APPEND, Some("compact"))],
            false
        )
        .0,
        NONE
    );
    assert_eq!(
        topic_config(&mut c, "ia", "cleanup.policy").0.as_deref(),
        Some("delete,compact")
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "ia",
            &[("cleanup.policy", SUBTRACT, Some("compact"))],
            false
        )
        .0,
        NONE
    );
    assert_eq!(
        topic_config(&mut c, "ia", "cleanup.policy").0.as_deref(),
        Some("delete")
    );
    let (code, msg) = inc_alter(
        &mut c,
        TOPIC_RESOURCE,
        "ia",
        &[("retention.ms", APPEND, Some("1"))],
        false,
    );
    assert_eq!(code, E::InvalidConfig.code());
    assert!(msg.unwrap().contains("is not LIST"));

    // DELETE returns a key to its default; other keys stay.
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "ia",
            &[("cleanup.policy", DELETE, None)],
            false
        )
        .0,
        NONE
    );
    assert_eq!(
        topic_config(&mut c, "ia", "cleanup.policy"),
        (Some("delete".into()), 5)
    );
    assert_eq!(
        topic_config(&mut c, "ia", "retention.ms").0.as_deref(),
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
            TOPIC_RESOURCE,
            "ia",
            &[("retention.ms", SET, Some("7")), (k, SET, Some(v))],
            false,
        );
        assert_eq!(code, E::InvalidConfig.code(), "{k}={v}");
    }
    assert_eq!(
        topic_config(&mut c, "ia", "retention.ms").0.as_deref(),
        Some("5000")
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "missing",
            &[("retention.ms", SET, Some("1"))],
            false
        )
        .0,
        E::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "ia",
            &[("retention.ms", SET, None)],
            false
        )
        .0,
        E::InvalidRequest.code()
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "ia",
            &[
                ("retention.ms", SET, Some("1")),
                ("retention.ms", DELETE, None)
            ],
            false
        )
        .0,
        E::InvalidRequest.code()
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "ia",
            &[("retention.ms", 9, Some("1"))],
            false
        )
        .0,
        E::InvalidRequest.code()
    );
    assert_eq!(
        inc_alter(
            &mut c,
            TOPIC_RESOURCE,
            "",
            &[("retention.ms", SET, Some("1"))],
            false
        )
        .0,
        E::InvalidRequest.code()
    );

    // A resource named twice fails in both places.
    let res = IncResource::default()
        .with_resource_type(TOPIC_RESOURCE)
        .with_resource_name(sb("ia"))
        .with_configs(vec![IncConfig::default()
            .with_name(sb("retention.ms"))
            .with_config_operation(SET)
            .with_value(Some(sb("9")))]);
    let r = c.call(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![res.clone(), res]),
    );
    assert!(r
        .responses
        .iter()
        .all(|x| x.error_code == E::InvalidRequest.code()));

    // Broker configs are static: refused like Kafka's non-dynamic keys.
    let (code, msg) = inc_alter(
        &mut c,
        BROKER_RESOURCE,
        &NODE.to_string(),
        &[("log.dirs", SET, Some("/elsewhere"))],
        false,
    );
    assert_eq!(code, E::InvalidRequest.code());
    assert_eq!(
        msg.as_deref(),
        Some("Cannot update these configs dynamically: [log.dirs]")
    );
    assert_eq!(
        inc_alter(
            &mut c,
            BROKER_RESOURCE,
            "",
            &[("num.partitions", SET, Some("3"))],
            false
        )
        .0,
        E::InvalidRequest.code()
    );
    assert_eq!(
        inc_alter(
            &mut c,
            BROKER_RESOURCE,
            &NODE.to_string(),
            &[("num.partitions", DELETE, None)],
            false
        )
        .0,
        NONE
    );
    let (code, msg) = inc_alter(
        &mut c,
        BROKER_RESOURCE,
        "7",
        &[("num.partitions", SET, Some("3"))],
        false,
    );
    assert_eq!(code, E::InvalidRequest.code());
    assert!(msg.unwrap().contains("Unexpected broker id"));
}

#[test]
fn legacy_alter_configs_replaces_the_whole_set() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "la", 1, &[("retention.ms", "1000")]);
    assert_eq!(
        legacy_alter(
            &mut c,
            TOPIC_RESOURCE,
            "la",
            &[("segment.ms", Some("60000"))]
        )
        .0,
        NONE
    );
    assert_eq!(
        topic_config(&mut c, "la", "segment.ms"),
        (Some("60000".into()), 1)
    );
    // retention.ms was not in the new set: back to its default.
    assert_eq!(topic_config(&mut c, "la", "retention.ms").1, 5);
    assert_eq!(
        legacy_alter(&mut c, TOPIC_RESOURCE, "la", &[("bogus", Some("1"))]).0,
        E::InvalidConfig.code()
    );
    assert_eq!(
        legacy_alter(&mut c, TOPIC_RESOURCE, "la", &[("segment.ms", None)]).0,
        E::InvalidRequest.code()
    );
    assert_eq!(
        legacy_alter(&mut c, TOPIC_RESOURCE, "nope", &[("segment.ms", Some("1"))]).0,
        E::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        legacy_alter(
            &mut c,
            BROKER_RESOURCE,
            &NODE.to_string(),
            &[("num.partitions", Some("2"))]
        )
        .0,
        E::InvalidRequest.code()
    );
    assert_eq!(
        legacy_alter(&mut c, BROKER_RESOURCE, &NODE.to_string(), &[]).0,
        NONE
    );
    assert_eq!(
        topic_config(&mut c, "la", "segment.ms").0.as_deref(),
        Some("60000")
    );
}

#[test]
fn altered_configs_take_effect_and_survive_restart() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "live", 1, &[]);
    produce_ok(&mut c, "live", 0, &simple_batch(1, 2000, now_ms(), 1));

    let ops = [
        ("max.message.bytes", SET, Some("1000")),
        ("message.timestamp.type", SET, Some("LogAppendTime")),
    ];
    assert_eq!(
        inc_alter(&mut c, TOPIC_RESOURCE, "live", &ops, false).0,
        NONE
    );
    // Live: the next produce sees the new limits.
    assert_eq!(
        produce(&mut c, "live", 0, &simple_batch(1, 2000, now_ms(), 2)).error_code,
        E::MessageTooLarge.code()
    );
    let before = now_ms();
    let r = produce(&mut c, "live", 0, &simple_batch(1, 10, 1000, 3));
    assert_eq!(r.error_code, NONE, "produce: {:?}", r.error_message);
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
        topic_config(&mut c, "live", "max.message.bytes"),
        (Some("1000".into()), 1)
    );
    assert_eq!(
        topic_config(&mut c, "live", "message.timestamp.type")
            .0
            .as_deref(),
        Some("LogAppendTime")
    );
    assert_eq!(
        produce(&mut c, "live", 0, &simple_batch(1, 2000, now_ms(), 4)).error_code,
        E::MessageTooLarge.code()
    );
    let before = now_ms();
    let r = produce(&mut c, "live", 0, &simple_batch(1, 10, 1000, 5));
    assert_eq!(r.error_code, NONE, "produce: {:?}", r.error_message);
    assert!(r.log_append_time_ms >= before);
    // The stored batch carries the LogAppendTime attribute and timestamp.
    let batches = fetch_batches(&mut c, "live", 0, r.base_offset);
    let last = batches.last().unwrap();
    assert_ne!(batch_attributes(last) & 0x08, 0, "timestamp type bit");
    assert!(batch_max_timestamp(last) >= before);
}

// ---------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------

#[test]
fn create_partitions_grows_and_refuses_like_kafka() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "cp", 1, &[]);

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
    assert_eq!(r[0].1, E::InvalidPartitions.code());
    assert_eq!(r[0].2.as_deref(), Some("Topic already has 3 partition(s)."));
    assert_eq!(
        create_partitions(&mut c, vec![grow("cp", 2, None)], false)[0].1,
        E::InvalidPartitions.code()
    );
    assert_eq!(
        create_partitions(&mut c, vec![grow("nope", 2, None)], false)[0].1,
        E::UnknownTopicOrPartition.code()
    );
    let r = create_partitions(
        &mut c,
        vec![grow("cp", 4, None), grow("cp", 5, None)],
        false,
    );
    assert!(r.iter().all(|x| x.1 == E::InvalidRequest.code()
        && x.2.as_deref() == Some("Duplicate topic in request.")));

    // Manual assignments: only this broker exists.
    let r = create_partitions(&mut c, vec![grow("cp", 4, Some(vec![vec![5]]))], false);
    assert_eq!(r[0].1, E::InvalidReplicaAssignment.code());
    assert_eq!(
        r[0].2.as_deref(),
        Some(
            "The manual partition assignment includes broker 5, but no such broker is registered."
        )
    );
    let r = create_partitions(&mut c, vec![grow("cp", 5, Some(vec![vec![NODE]]))], false);
    assert_eq!(
        (r[0].1, r[0].2.as_deref()),
        (E::InvalidReplicaAssignment.code(), Some("Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."))
    );
    assert_eq!(
        create_partitions(
            &mut c,
            vec![grow("cp", 4, Some(vec![vec![NODE, NODE]]))],
            false
        )[0]
        .1,
        E::InvalidReplicaAssignment.code()
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

#[test]
fn delete_records_moves_the_low_watermark() {
    let mut b = Broker::start(&[]);
    find_coordinators(&b);
    let mut c = b.client();
    create_topic(&mut c, "dr", 1, &[]);
    for i in 0..5 {
        produce_ok(&mut c, "dr", 0, &simple_batch(2, 10, now_ms(), i));
    }
    assert_eq!(delete_records(&mut c, "dr", &[(0, 4)]), vec![(NONE, 4)]);
    assert_eq!(earliest(&mut c, "dr", 0), 4);
    // Moving backwards is a no-op that reports the current low watermark.
    assert_eq!(delete_records(&mut c, "dr", &[(0, 2)]), vec![(NONE, 4)]);
    assert_eq!(
        delete_records(&mut c, "dr", &[(0, 11)]),
        vec![(E::OffsetOutOfRange.code(), -1)]
    );
    assert_eq!(
        delete_records(&mut c, "dr", &[(0, -5)]),
        vec![(E::OffsetOutOfRange.code(), -1)]
    );
    assert_eq!(
        delete_records(&mut c, "dr", &[(1, 0)]),
        vec![(E::UnknownTopicOrPartition.code(), -1)]
    );
    assert_eq!(
        delete_records(&mut c, "nope", &[(0, 0)]),
        vec![(E::UnknownTopicOrPartition.code(), -1)]
    );
    // -1 means the high watermark.
    assert_eq!(delete_records(&mut c, "dr", &[(0, -1)]), vec![(NONE, 10)]);
    drop(c);
    b.stop();
    b.restart();
    let mut c = b.client();
    assert_eq!(earliest(&mut c, "dr", 0), 10);
    // A compacted topic refuses, as Kafka's policy check does.
    create_topic(&mut c, "drc", 1, &[("cleanup.policy", "compact")]);
    assert_eq!(
        delete_records(&mut c, "drc", &[(0, 0)]),
        vec![(E::PolicyViolation.code(), -1)]
    );
    assert_eq!(
        delete_records(&mut c, "__consumer_offsets", &[(0, 0)]),
        vec![(E::InvalidTopicException.code(), -1)]
    );
}

// ---------------------------------------------------------------------------
// DescribeCluster, DescribeLogDirs, OffsetForLeaderEpoch
// ---------------------------------------------------------------------------

#[test]
fn describe_cluster_reports_this_broker() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let md = metadata(&mut c, 12, Some(&[]), true);
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
    assert_eq!(r.error_code, E::MismatchedEndpointType.code());
    let r = c.call(2, &DescribeClusterRequest::default().with_endpoint_type(9));
    assert_eq!(r.error_code, E::UnsupportedEndpointType.code());
}

#[test]
fn describe_log_dirs_lists_partitions_and_space() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "ld", 2, &[]);
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

    // v5 (past the crate: v4's request) adds IsCordoned, false: kastle
    // cordons no directory.
    let corr = c.next_corr();
    c.send(35, 5, corr, &encode(&req, 4));
    let (got, body) = c.recv(35, 5);
    assert_eq!(got, corr);
    let (_, error, dirs) =
        kastle::protocol::describe_log_dirs::read_v5(&body).expect("a v5 DescribeLogDirs answer");
    assert_eq!((error, dirs.len()), (NONE, 1));
    let d = &dirs[0];
    assert_eq!(d.error_code, NONE);
    assert_eq!(std::path::Path::new(&d.log_dir), b.data_dir.as_path());
    assert!(!d.is_cordoned);
    assert!(d.total_bytes > 0 && d.usable_bytes > 0 && d.usable_bytes <= d.total_bytes);
    let parts: Vec<(&str, i32)> = d
        .topics
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.as_str(), p.partition_index)))
        .collect();
    assert_eq!(parts, vec![("ld", 1)]);
    assert!(d.topics[0].1[0].partition_size > 300);
}

#[test]
fn offset_for_leader_epoch_answers_epoch_zero() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "ofe", 1, &[]);
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
        assert_eq!(ask(&mut c, v, "ofe", 1, 0).0, E::UnknownLeaderEpoch.code());
        assert_eq!(ask(&mut c, v, "ofe", -2, 0).0, E::FencedLeaderEpoch.code());
        assert_eq!(
            ask(&mut c, v, "nope", 0, 0),
            (E::UnknownTopicOrPartition.code(), -1, -1)
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
    create_topic(&mut c, "el", 2, &[]);
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
                E::ElectionNotNeeded.code(),
                E::ElectionNotNeeded.code(),
                E::UnknownTopicOrPartition.code()
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
        E::InvalidReplicaAssignment.code()
    );
    assert_eq!(
        reassign(&mut c, "el", 0, Some(vec![])),
        E::InvalidReplicaAssignment.code()
    );
    assert_eq!(
        reassign(&mut c, "el", 0, Some(vec![NODE, NODE])),
        E::InvalidReplicaAssignment.code()
    );
    assert_eq!(
        reassign(&mut c, "el", 0, None),
        E::NoReassignmentInProgress.code()
    );
    assert_eq!(
        reassign(&mut c, "el", 5, Some(vec![NODE])),
        E::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        reassign(&mut c, "nope", 0, Some(vec![NODE])),
        E::UnknownTopicOrPartition.code()
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
        E::InvalidRequest.code()
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", Some("alice"))],
            &[("producer_byte_rate", 1.5, false)],
            false
        ),
        E::InvalidRequest.code()
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("user", Some("a")), ("ip", Some("1.2.3.4"))],
            &[("producer_byte_rate", 1.0, false)],
            false
        ),
        E::InvalidRequest.code()
    );
    assert_eq!(
        alter_quota(
            &mut c,
            &[("group", Some("g"))],
            &[("producer_byte_rate", 1.0, false)],
            false
        ),
        E::InvalidRequest.code()
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
    assert_eq!(r.error_code, E::InvalidRequest.code());

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
        (
            E::SecurityDisabled.code(),
            Some("No Authorizer is configured on the broker")
        )
    );
    // Valid codes: a creation or filter with an UNKNOWN part cannot be
    // parsed, and Kafka closes the connection (as kastle does).
    let creation = kafka_protocol::messages::create_acls_request::AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(sb("t"))
        .with_resource_pattern_type(3)
        .with_principal(sb("User:a"))
        .with_host(sb("*"))
        .with_operation(3)
        .with_permission_type(3);
    let r = c.call(
        3,
        &CreateAclsRequest::default().with_creations(vec![creation.clone(), creation]),
    );
    assert_eq!(r.results.len(), 2);
    assert!(r
        .results
        .iter()
        .all(|x| x.error_code == E::SecurityDisabled.code()));
    let r = c.call(
        1,
        &DeleteAclsRequest::default().with_filters(vec![
            kafka_protocol::messages::delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ]),
    );
    assert_eq!(r.filter_results[0].error_code, E::SecurityDisabled.code());
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
    assert_eq!(range(ApiKey::DescribeLogDirs), Some((1, 5)));
    assert_eq!(range(ApiKey::OffsetForLeaderEpoch), Some((2, 4)));
    assert_eq!(range(ApiKey::DescribeCluster), Some((0, 2)));
    assert_eq!(range(ApiKey::CreateAcls), Some((1, 3)));
}
