//! The controller's decisions checked by applying their records to a copy
//! of the image (each record also round-trips through Kafka's framing) and
//! comparing with what Kafka's `ReplicationControlManager` produces for the
//! same cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::replica_placer::{place, JavaRandom};
use super::replication_control::*;
use crate::config::BrokerConfig;
use crate::metadata::records::*;
use crate::metadata::{MetadataImage, PartitionRegistration, RecordAndVersion};

pub(crate) fn defaults() -> ReplicationDefaults {
    let (cfg, _) = BrokerConfig::load(None, Vec::new(), &[]).expect("default config");
    let mut d = ReplicationDefaults::from_config(Arc::new(cfg));
    d.num_partitions = 1;
    d.default_replication_factor = 1;
    d
}

pub(crate) fn register(id: i32, rack: Option<&str>, fenced: bool) -> RecordAndVersion {
    RecordAndVersion {
        record: MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: id,
            is_migrating_zk_broker: false,
            incarnation_id: Uuid::from_u128(id as u128 + 100),
            broker_epoch: 10 + i64::from(id),
            end_points: vec![BrokerEndpoint {
                name: "INTERNAL".into(),
                host: format!("b{id}"),
                port: 9000 + id as u16,
                security_protocol: 0,
            }],
            features: Vec::new(),
            rack: rack.map(str::to_string),
            fenced,
            in_controlled_shutdown: false,
            log_dirs: Vec::new(),
            cordoned_log_dirs: None,
        }),
        version: 3,
    }
}

/// Applies every record (after a trip through Kafka's framing): a batch
/// must apply cleanly.
pub(crate) fn apply(image: &MetadataImage, records: &[RecordAndVersion]) -> MetadataImage {
    let mut next = image.clone();
    for r in records {
        let bytes = r.encode().expect("encodes");
        let back = RecordAndVersion::decode(&bytes).expect("decodes");
        assert_eq!(&back, r);
        next.apply(&r.record)
            .unwrap_or_else(|e| panic!("{:?} does not apply: {e}", r.record));
    }
    next
}

/// Brokers 1..=n, unfenced, racks as given (None: no rack).
pub(crate) fn cluster(racks: &[Option<&str>]) -> MetadataImage {
    let records: Vec<_> = racks
        .iter()
        .enumerate()
        .map(|(i, r)| register(i as i32 + 1, *r, false))
        .collect();
    apply(&MetadataImage::default(), &records)
}

pub(crate) fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub(crate) fn topic(n: &str, partitions: i32, rf: i16) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(n))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
}

pub(crate) fn create(
    image: &MetadataImage,
    topics: Vec<CreatableTopic>,
) -> (
    MetadataImage,
    Decision<kafka_protocol::messages::CreateTopicsResponse>,
) {
    let req = CreateTopicsRequest::default().with_topics(topics);
    let d = create_topics(image, &req, 7, &defaults(), &mut unbounded);
    (apply(image, &d.records), d)
}

/// A topic with explicit partitions (replicas, isr, leader).
pub(crate) fn with_partitions(
    image: &MetadataImage,
    topic_name: &str,
    parts: &[(&[i32], &[i32], i32)],
) -> (MetadataImage, Uuid) {
    let id = Uuid::from_u128(0xabc0 + image.topics.len() as u128);
    let mut records = vec![RecordAndVersion {
        record: MetadataRecord::Topic(TopicRecord {
            name: topic_name.into(),
            topic_id: id,
        }),
        version: 0,
    }];
    for (i, (replicas, isr, leader)) in parts.iter().enumerate() {
        records.push(RecordAndVersion {
            record: MetadataRecord::Partition(PartitionRecord {
                partition_id: i as i32,
                topic_id: id,
                replicas: replicas.to_vec(),
                isr: isr.to_vec(),
                removing_replicas: Vec::new(),
                adding_replicas: Vec::new(),
                leader: *leader,
                leader_recovery_state: 0,
                leader_epoch: 5,
                partition_epoch: 7,
                directories: Vec::new(),
                eligible_leader_replicas: None,
                last_known_elr: None,
            }),
            version: 1,
        });
    }
    (apply(image, &records), id)
}

pub(crate) fn part(image: &MetadataImage, topic: &str, p: i32) -> PartitionRegistration {
    image.topic_by_name(topic).unwrap().partitions[&p].clone()
}

fn err(code: i16) -> Option<ResponseError> {
    (code != 0).then(|| ResponseError::try_from_code(code).expect("known code"))
}

// ---------------------------------------------------------------- placement

#[test]
fn java_random_matches_java() {
    // new Random(12345L): nextInt(10), nextInt(7), nextInt(16), nextInt(1000)
    // and Collections.shuffle([1..6], new Random(7L)), from a JVM.
    let mut r = JavaRandom::new(12345);
    assert_eq!(
        [
            r.next_int(10),
            r.next_int(7),
            r.next_int(16),
            r.next_int(1000)
        ],
        [1, 2, 14, 828]
    );
    let mut v = vec![1, 2, 3, 4, 5, 6];
    JavaRandom::new(7).shuffle(&mut v);
    assert_eq!(v, [4, 1, 2, 3, 6, 5]);
}

#[test]
fn striped_placement_spreads_leaders_and_racks() {
    let racked = cluster(&[Some("a"), Some("a"), Some("b"), Some("b")]);
    let flat = cluster(&[None, None, None]);
    for seed in 0..20 {
        let placed = place(&racked, 8, 2, seed).unwrap();
        assert_eq!(placed, place(&racked, 8, 2, seed).unwrap(), "deterministic");
        for replicas in &placed {
            let rack = |b: i32| if b <= 2 { "a" } else { "b" };
            assert_ne!(
                rack(replicas[0]),
                rack(replicas[1]),
                "{replicas:?} on one rack"
            );
        }
        // One rack: leaders go round the brokers, replicas are distinct.
        let placed = place(&flat, 6, 3, seed).unwrap();
        let mut leaders = BTreeMap::new();
        for replicas in &placed {
            let mut sorted = replicas.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [1, 2, 3]);
            *leaders.entry(replicas[0]).or_insert(0) += 1;
        }
        assert_eq!(
            leaders.values().copied().collect::<Vec<_>>(),
            [2, 2, 2],
            "{placed:?}"
        );
    }
}

#[test]
fn placement_refusals_are_kafkas() {
    let image = cluster(&[None, None, None]);
    assert_eq!(
        place(&image, 1, 4, 0).unwrap_err().0,
        "The target replication factor of 4 cannot be reached because only 3 broker(s) are registered."
    );
    let fenced = apply(
        &image,
        &[
            register(1, None, true),
            register(2, None, true),
            register(3, None, true),
        ],
    );
    assert_eq!(
        place(&fenced, 1, 1, 0).unwrap_err().0,
        "All brokers are currently fenced."
    );
    // Fenced brokers hold followers only.
    let one_fenced = apply(&image, &[register(3, None, true)]);
    for seed in 0..10 {
        for r in place(&one_fenced, 6, 3, seed).unwrap() {
            assert_ne!(r[0], 3, "a fenced broker was made leader");
            assert_eq!(r.len(), 3);
        }
    }
}

// ------------------------------------------------------------ create_topics

#[test]
fn create_topics_places_and_records_as_kafka() {
    let image = cluster(&[None, None, None]);
    let t = topic("orders", 6, 3).with_configs(vec![CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("retention.ms"))
        .with_value(Some(StrBytes::from_static_str("1000")))]);
    let (after, d) = create(&image, vec![t]);
    let r = &d.response.topics[0];
    assert_eq!(err(r.error_code), None, "{:?}", r.error_message);
    assert_eq!((r.num_partitions, r.replication_factor), (6, 3));
    assert!(!r.topic_id.is_nil());
    let configs = r.configs.as_ref().expect("v5+ has configs");
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.config_source, 1, "DYNAMIC_TOPIC_CONFIG");
    // TopicRecord, then its ConfigRecords, then the PartitionRecords.
    assert!(matches!(d.records[0].record, MetadataRecord::Topic(_)));
    assert!(matches!(d.records[1].record, MetadataRecord::Config(_)));
    assert_eq!(d.records.len(), 2 + 6);
    let t = after.topic_by_name("orders").unwrap();
    assert_eq!(t.id, r.topic_id);
    let mut leaders = BTreeMap::new();
    for p in t.partitions.values() {
        assert_eq!(p.isr, p.replicas);
        assert_eq!(p.leader, p.replicas[0]);
        assert_eq!(
            (p.leader_epoch, p.partition_epoch, p.leader_recovery_state),
            (0, 0, 0)
        );
        // Brokers that registered no directories: MIGRATING (the zero id).
        assert_eq!(p.directories, [Uuid::nil(); 3], "one directory per replica");
        *leaders.entry(p.leader).or_insert(0) += 1;
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
    assert_eq!(
        after.configs[&(2, "orders".to_string())]["retention.ms"],
        "1000"
    );
}

#[test]
fn create_topics_uses_defaults_and_active_brokers() {
    let image = cluster(&[None, None, None]);
    let image = apply(&image, &[register(3, None, true)]);
    let mut defaults = defaults();
    defaults.num_partitions = 4;
    defaults.default_replication_factor = 3;
    let req = CreateTopicsRequest::default().with_topics(vec![topic("d", -1, -1)]);
    let d = create_topics(&image, &req, 4, &defaults, &mut unbounded);
    let r = &d.response.topics[0];
    assert_eq!((r.num_partitions, r.replication_factor), (4, 3));
    assert!(
        r.configs.as_ref().is_none_or(|c| c.is_empty()),
        "v4 has no configs"
    );
    let after = apply(&image, &d.records);
    for p in after.topic_by_name("d").unwrap().partitions.values() {
        assert_eq!(p.replicas.len(), 3);
        assert!(!p.isr.contains(&3), "a fenced broker is not in the ISR");
        assert_ne!(p.leader, 3);
        assert_eq!(p.leader, p.isr[0]);
    }
}

#[test]
fn create_topics_refusals_are_kafkas() {
    let image = cluster(&[None, None, None]);
    let (image, _) = create(&image, vec![topic("my.topic", 1, 1), topic("exists", 1, 1)]);
    let null_config = topic("nullcfg", 1, 1).with_configs(vec![CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("retention.ms"))
        .with_value(None)]);
    let bad_config = topic("badcfg", 1, 1).with_configs(vec![CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("no.such.config"))
        .with_value(Some(StrBytes::from_static_str("1")))]);
    let cases: Vec<(CreatableTopic, ResponseError, &str)> = vec![
        (topic("exists", 1, 1), ResponseError::TopicAlreadyExists, "Topic 'exists' already exists."),
        (topic("my_topic", 1, 1), ResponseError::InvalidTopicException, "Topic 'my_topic' collides with existing topic: my.topic"),
        (topic("bad name", 1, 1), ResponseError::InvalidTopicException, "Topic name \"bad name\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"),
        (topic("rf0", 1, 0), ResponseError::InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value."),
        (topic("p0", 0, 1), ResponseError::InvalidPartitions, "Number of partitions was set to an invalid non-positive value."),
        (topic("rf4", 1, 4), ResponseError::InvalidReplicationFactor, "Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 broker(s) are registered."),
        (null_config, ResponseError::InvalidConfig, "Null value not supported for topic configs: retention.ms"),
        (bad_config, ResponseError::InvalidConfig, "Unknown topic config name: no.such.config"),
    ];
    let req =
        CreateTopicsRequest::default().with_topics(cases.iter().map(|c| c.0.clone()).collect());
    let d = create_topics(&image, &req, 7, &defaults(), &mut unbounded);
    assert!(d.records.is_empty());
    for ((_, code, msg), r) in cases.iter().zip(&d.response.topics) {
        assert_eq!(err(r.error_code), Some(*code), "{:?}", r.name);
        assert_eq!(r.error_message.as_deref(), Some(*msg));
        assert_eq!((r.num_partitions, r.replication_factor), (-1, -1));
        assert_eq!(r.configs.as_deref().map(|c| c.len()), Some(0));
    }
    // Duplicates in one request are both refused.
    let req =
        CreateTopicsRequest::default().with_topics(vec![topic("dup", 1, 1), topic("dup", 1, 1)]);
    let d = create_topics(&image, &req, 7, &defaults(), &mut unbounded);
    assert!(d.records.is_empty());
    assert!(d
        .response
        .topics
        .iter()
        .all(|r| err(r.error_code) == Some(ResponseError::InvalidRequest)));
    // All brokers fenced.
    let fenced = apply(
        &image,
        &[
            register(1, None, true),
            register(2, None, true),
            register(3, None, true),
        ],
    );
    let (_, d) = create(&fenced, vec![topic("f", 1, 1)]);
    assert_eq!(
        d.response.topics[0].error_message.as_deref(),
        Some("Unable to replicate the partition 1 time(s): All brokers are currently fenced.")
    );
}

fn manual(parts: &[(i32, &[i32])]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name("m"))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(
            parts
                .iter()
                .map(|(i, b)| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(*i)
                        .with_broker_ids(b.iter().map(|x| BrokerId(*x)).collect())
                })
                .collect(),
        )
}

#[test]
fn manual_assignments_as_kafka() {
    let image = cluster(&[None, None, None]);
    let image = apply(&image, &[register(3, None, true)]);
    let (after, d) = create(&image, vec![manual(&[(0, &[3, 2]), (1, &[1, 3])])]);
    assert_eq!(err(d.response.topics[0].error_code), None);
    // ISR = the active replicas; leader = the first of them.
    assert_eq!(
        (part(&after, "m", 0).isr, part(&after, "m", 0).leader),
        (vec![2], 2)
    );
    assert_eq!(
        (part(&after, "m", 1).isr, part(&after, "m", 1).leader),
        (vec![1], 1)
    );
    let bad: Vec<(CreatableTopic, ResponseError, &str)> = vec![
        (manual(&[(0, &[1])]).with_replication_factor(2), ResponseError::InvalidRequest, "A manual partition assignment was specified, but replication factor was not set to -1."),
        (manual(&[(0, &[1])]).with_num_partitions(2), ResponseError::InvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1."),
        (manual(&[(0, &[1]), (0, &[2])]), ResponseError::InvalidReplicaAssignment, "Found multiple manual partition assignments for partition 0"),
        (manual(&[(0, &[])]), ResponseError::InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."),
        (manual(&[(0, &[1, 9])]), ResponseError::InvalidReplicaAssignment, "The manual partition assignment includes broker 9, but no such broker is registered."),
        (manual(&[(0, &[2, 2])]), ResponseError::InvalidReplicaAssignment, "The manual partition assignment includes the broker 2 more than once."),
        (manual(&[(0, &[1, 2]), (1, &[1])]), ResponseError::InvalidReplicaAssignment, "The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s)."),
        (manual(&[(0, &[3])]), ResponseError::InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown."),
        (manual(&[(1, &[1])]), ResponseError::InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence"),
    ];
    for (t, code, msg) in bad {
        let (_, d) = create(&image, vec![t]);
        assert!(d.records.is_empty());
        assert_eq!(err(d.response.topics[0].error_code), Some(code), "{msg}");
        assert_eq!(d.response.topics[0].error_message.as_deref(), Some(msg));
    }
}

#[test]
fn validate_only_writes_nothing_but_answers() {
    let image = cluster(&[None, None]);
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic("v", 3, 2)])
        .with_validate_only(true);
    let d = create_topics(&image, &req, 7, &defaults(), &mut unbounded);
    assert!(d.records.is_empty());
    let r = &d.response.topics[0];
    assert_eq!(
        (r.error_code, r.num_partitions, r.replication_factor),
        (0, 3, 2)
    );
    assert!(!r.topic_id.is_nil());
}

// ------------------------------------------------- create_partitions, delete

fn grow(n: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
    CreatePartitionsTopic::default()
        .with_name(name(n))
        .with_count(count)
        .with_assignments(assignments.map(|a| {
            a.into_iter()
                .map(|b| {
                    CreatePartitionsAssignment::default()
                        .with_broker_ids(b.into_iter().map(BrokerId).collect())
                })
                .collect()
        }))
}

#[test]
fn create_partitions_as_kafka() {
    let image = cluster(&[None, None, None]);
    let (image, _) = create(&image, vec![topic("g", 2, 2)]);
    let req = CreatePartitionsRequest::default().with_topics(vec![grow("g", 4, None)]);
    let d = create_partitions(&image, &req, 3, &mut unbounded);
    assert_eq!(d.response.results[0].error_code, 0);
    let after = apply(&image, &d.records);
    let t = after.topic_by_name("g").unwrap();
    assert_eq!(t.partitions.len(), 4);
    assert!(t
        .partitions
        .values()
        .all(|p| p.replicas.len() == 2 && p.isr == p.replicas));
    let cases: Vec<(CreatePartitionsTopic, ResponseError, String)> = vec![
        (grow("g", 2, None), ResponseError::InvalidPartitions, "Topic already has 2 partition(s).".into()),
        (grow("g", 1, None), ResponseError::InvalidPartitions, "The topic g currently has 2 partition(s); 1 would not be an increase.".into()),
        (grow("nope", 3, None), ResponseError::UnknownTopicOrPartition, "This server does not host this topic-partition.".into()),
        (grow("g", 4, Some(vec![vec![1, 2]])), ResponseError::InvalidReplicaAssignment, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.".into()),
        (grow("g", 3, Some(vec![vec![1]])), ResponseError::InvalidReplicaAssignment, "The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s).".into()),
    ];
    for (t, code, msg) in cases {
        let d = create_partitions(
            &image,
            &CreatePartitionsRequest::default().with_topics(vec![t]),
            3,
            &mut unbounded,
        );
        assert!(d.records.is_empty());
        assert_eq!(err(d.response.results[0].error_code), Some(code));
        assert_eq!(
            d.response.results[0].error_message.as_deref(),
            Some(msg.as_str())
        );
    }
    let manual =
        CreatePartitionsRequest::default().with_topics(vec![grow("g", 3, Some(vec![vec![3, 1]]))]);
    let after = apply(
        &image,
        &create_partitions(&image, &manual, 3, &mut unbounded).records,
    );
    assert_eq!(part(&after, "g", 2).replicas, [3, 1]);
    assert_eq!(part(&after, "g", 2).leader, 3);
    let only = manual.with_validate_only(true);
    assert!(create_partitions(&image, &only, 3, &mut unbounded)
        .records
        .is_empty());
}

#[test]
fn delete_topics_as_kafka() {
    let image = cluster(&[None]);
    let t = topic("del", 1, 1).with_configs(vec![CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("retention.ms"))
        .with_value(Some(StrBytes::from_static_str("5")))]);
    let (image, _) = create(&image, vec![t, topic("keep", 1, 1)]);
    let id = image.topic_ids["keep"];
    let req = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(Some(name("del"))),
        DeleteTopicState::default().with_topic_id(id),
        DeleteTopicState::default().with_name(Some(name("gone"))),
        DeleteTopicState::default().with_topic_id(Uuid::from_u128(77)),
    ]);
    let d = delete_topics(&image, &req, 6, &mut unbounded);
    let codes: Vec<_> = d
        .response
        .responses
        .iter()
        .map(|r| err(r.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            None,
            Some(ResponseError::UnknownTopicOrPartition),
            Some(ResponseError::UnknownTopicId)
        ]
    );
    assert_eq!(
        d.response.responses[1].name.as_ref().map(|n| n.0.as_str()),
        Some("keep")
    );
    let after = apply(&image, &d.records);
    assert!(after.topics.is_empty() && after.configs.is_empty());
    // v5 by name; duplicates refused.
    let req = DeleteTopicsRequest::default().with_topic_names(vec![name("del"), name("del")]);
    let d = delete_topics(&image, &req, 5, &mut unbounded);
    assert!(d.records.is_empty());
    assert!(d
        .response
        .responses
        .iter()
        .all(|r| err(r.error_code) == Some(ResponseError::InvalidRequest)));
}

/// A quota that accepts `budget` partition mutations and refuses the rest,
/// recording what it was charged.
fn budget_quota(budget: i32, charged: &mut Vec<i32>) -> impl FnMut(i32) -> Result<(), i32> + '_ {
    let mut left = budget;
    move |n| {
        charged.push(n);
        if left <= 0 {
            return Err(1000);
        }
        left -= n;
        Ok(())
    }
}

#[test]
fn the_mutation_quota_is_charged_per_valid_topic_and_refuses_once_exhausted() {
    let image = cluster(&[None, None, None]);
    let (image, _) = create(&image, vec![topic("exists", 2, 1)]);
    // CreateTopics: the invalid topic is not charged; the second valid one
    // finds the quota exhausted.
    let mut charged = Vec::new();
    let req = CreateTopicsRequest::default().with_topics(vec![
        topic("a", 3, 1),
        topic("exists", 1, 1),
        topic("b", 2, 1),
    ]);
    let d = create_topics(
        &image,
        &req,
        7,
        &defaults(),
        &mut budget_quota(1, &mut charged),
    );
    assert_eq!(charged, [3, 2]);
    let codes: Vec<_> = d
        .response
        .topics
        .iter()
        .map(|t| err(t.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(ResponseError::TopicAlreadyExists),
            Some(ResponseError::ThrottlingQuotaExceeded)
        ]
    );
    assert_eq!(
        d.response.topics[2].error_message.as_deref(),
        Some(THROTTLING_QUOTA_EXCEEDED_MESSAGE)
    );
    let after = apply(&image, &d.records);
    assert!(after.topic_ids.contains_key("a") && !after.topic_ids.contains_key("b"));

    // CreatePartitions: the added partitions are charged.
    let mut charged = Vec::new();
    let req = CreatePartitionsRequest::default().with_topics(vec![grow("exists", 5, None)]);
    let d = create_partitions(&image, &req, 3, &mut budget_quota(0, &mut charged));
    assert_eq!(charged, [3]);
    assert_eq!(
        err(d.response.results[0].error_code),
        Some(ResponseError::ThrottlingQuotaExceeded)
    );
    assert!(d.records.is_empty());

    // DeleteTopics: each existing topic's partitions; unknown ones are not charged.
    let mut charged = Vec::new();
    let req = DeleteTopicsRequest::default().with_topic_names(vec![name("gone"), name("exists")]);
    let d = delete_topics(&image, &req, 5, &mut budget_quota(0, &mut charged));
    assert_eq!(charged, [2]);
    assert_eq!(
        err(d.response.responses[1].error_code),
        Some(ResponseError::ThrottlingQuotaExceeded)
    );
    assert!(d.records.is_empty());
}
