//! Writes the seed corpus of each fuzz target (`fuzz/corpus/<target>/`)
//! from real encoders: request frames of every API kastle serves at every
//! version (kafka-protocol's encoders, the clients' own), record batches in
//! each codec (kastle's `BatchBuilder`), coordinator records (kastle's
//! `__consumer_offsets` and `__transaction_state` serdes) and the on-disk
//! files kastle writes. Usage: `cargo run --release --example fuzz_seeds
//! [DIR]` (default `fuzz/corpus`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kastle::coordinator::group::consumer::member::MemberState;
use kastle::coordinator::group::consumer::records::{
    ConsumerRecord, CurrentAssignment, MemberMetadata,
};
use kastle::coordinator::group::record_serde::{self, GroupValue, MemberValue, OffsetValue};
use kastle::coordinator::group::streams::records as streams_records;
use kastle::coordinator::group::streams::records::StreamsRecord;
use kastle::coordinator::group::streams::MemberState as StreamsMemberState;
use kastle::coordinator::txn::transaction_log::{self, TxnValue};
use kastle::coordinator::txn::TxnState;
use kastle::metadata::records::{FeatureLevelRecord, TopicRecord};
use kastle::metadata::{MetadataRecord, RecordAndVersion};
use kastle::protocol::streams::{Endpoint, KeyValue, Subtopology, TopicInfo};
use kastle::protocol::versions;
use kastle::record::builder::BatchBuilder;
use kastle::record::control::EndTransactionMarker;
use kastle::storage::producer_state::snapshot::encode_snapshot;
use kastle::storage::producer_state::{BatchMetadata, ProducerStateEntry};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A request frame (header + body, no size prefix) at `version`.
fn frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Result<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("fuzz-seed")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, key.request_header_version(version))?;
    body.encode(&mut buf, version)?;
    Ok(buf.to_vec())
}

/// A small uncompressed or compressed batch of `n` records.
fn batch(codec: u8, n: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_700_000_000_000).producer(1000, 0, 0);
    for i in 0..n {
        let key = format!("key-{i}");
        b = b.push(
            Some(key.as_bytes()),
            Some(b"value value value"),
            &[("h", b"v")],
            1_700_000_000_000 + i as i64,
        );
    }
    if codec == 0 {
        b.build().to_vec()
    } else {
        b.build_compressed(codec).to_vec()
    }
}

fn requests(dir: &Path) -> Result<usize> {
    let topic = TopicName(s("orders"));
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic.clone())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(batch(0, 2)))),
            ])]);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic.clone())
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(5)
                .with_partition_max_bytes(1 << 20)])]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic.clone())),
    ]));
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g1")))
        .with_session_timeout_ms(45_000)
        .with_rebalance_timeout_ms(60_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(&[
            0, 1, 0, 0, 0, 1, 0, 6, b'o', b'r', b'd', b'e', b'r', b's',
        ]))]);
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g1")))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic.clone())
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42)
                        .with_committed_metadata(Some(s("meta"))),
                ]),
        ]);
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(topic.clone())
            .with_num_partitions(3)
            .with_replication_factor(1)
            .with_configs(vec![
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("compact"))),
            ])]);
    let mut n = 0;
    for api in versions::SUPPORTED {
        for v in api.min..=api.max {
            let name = format!("{:?}-v{v}", api.key);
            macro_rules! put {
                ($($k:ident => $body:expr),* $(,)?) => {
                    match api.key {
                        $(ApiKey::$k => frame(api.key, v, &$body),)*
                        _ => continue,
                    }
                };
            }
            let bytes = put! {
                Produce => produce, Fetch => fetch, Metadata => metadata,
                JoinGroup => join, OffsetCommit => commit, CreateTopics => create,
                ListOffsets => ListOffsetsRequest::default(),
                ApiVersions => ApiVersionsRequest::default()
                    .with_client_software_name(s("kastle-fuzz"))
                    .with_client_software_version(s("1.0")),
                DeleteTopics => DeleteTopicsRequest::default(),
                InitProducerId => InitProducerIdRequest::default(),
                DescribeProducers => DescribeProducersRequest::default(),
                AddPartitionsToTxn => AddPartitionsToTxnRequest::default(),
                AddOffsetsToTxn => AddOffsetsToTxnRequest::default(),
                EndTxn => EndTxnRequest::default(),
                WriteTxnMarkers => WriteTxnMarkersRequest::default(),
                DescribeTransactions => DescribeTransactionsRequest::default(),
                ListTransactions => ListTransactionsRequest::default(),
                FindCoordinator => FindCoordinatorRequest::default().with_key(s("g1")),
                SyncGroup => SyncGroupRequest::default(),
                Heartbeat => HeartbeatRequest::default(),
                LeaveGroup => LeaveGroupRequest::default(),
                TxnOffsetCommit => TxnOffsetCommitRequest::default(),
                OffsetFetch => OffsetFetchRequest::default(),
                ListGroups => ListGroupsRequest::default(),
                DescribeGroups => DescribeGroupsRequest::default(),
                DeleteGroups => DeleteGroupsRequest::default(),
                OffsetDelete => OffsetDeleteRequest::default(),
                ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::default(),
                ConsumerGroupDescribe => ConsumerGroupDescribeRequest::default(),
                ShareGroupHeartbeat => ShareGroupHeartbeatRequest::default(),
                ShareGroupDescribe => ShareGroupDescribeRequest::default(),
                ShareFetch => ShareFetchRequest::default(),
                ShareAcknowledge => ShareAcknowledgeRequest::default(),
                DescribeShareGroupOffsets => DescribeShareGroupOffsetsRequest::default(),
                AlterShareGroupOffsets => AlterShareGroupOffsetsRequest::default(),
                DeleteShareGroupOffsets => DeleteShareGroupOffsetsRequest::default(),
                DescribeConfigs => DescribeConfigsRequest::default(),
                AlterConfigs => AlterConfigsRequest::default(),
                IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default(),
                CreatePartitions => CreatePartitionsRequest::default(),
                DeleteRecords => DeleteRecordsRequest::default(),
                DescribeCluster => DescribeClusterRequest::default(),
                UpdateFeatures => UpdateFeaturesRequest::default(),
                DescribeQuorum => DescribeQuorumRequest::default(),
                DescribeTopicPartitions => DescribeTopicPartitionsRequest::default(),
                ListConfigResources => ListConfigResourcesRequest::default(),
                DescribeLogDirs => DescribeLogDirsRequest::default(),
                OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::default(),
                ElectLeaders => ElectLeadersRequest::default(),
                AlterPartitionReassignments => AlterPartitionReassignmentsRequest::default(),
                ListPartitionReassignments => ListPartitionReassignmentsRequest::default(),
                CreateAcls => CreateAclsRequest::default(),
                DeleteAcls => DeleteAclsRequest::default(),
                DescribeAcls => DescribeAclsRequest::default(),
                DescribeClientQuotas => DescribeClientQuotasRequest::default(),
                AlterClientQuotas => AlterClientQuotasRequest::default(),
                DescribeUserScramCredentials => DescribeUserScramCredentialsRequest::default(),
                AlterUserScramCredentials => AlterUserScramCredentialsRequest::default(),
                SaslHandshake => SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
                SaslAuthenticate => SaslAuthenticateRequest::default()
                    .with_auth_bytes(Bytes::from_static(b"\0user\0secret")),
            };
            // A default body may not encode at every version (a field the
            // version lacks set): such seeds are skipped.
            if let Ok(bytes) = bytes {
                write(dir, &name, &bytes)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

fn record_batches(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for codec in 0..=4u8 {
        for flags in [0x80u8, 0x88, 0x85, 0x96 | (codec << 4) & 0x70] {
            let mut data = vec![flags];
            data.extend(batch(codec, 3));
            write(dir, &format!("codec{codec}-flags{flags:02x}"), &data)?;
            n += 1;
        }
    }
    let marker = EndTransactionMarker::new(true, 3);
    let control = BatchBuilder::new(1_700_000_000_000)
        .producer(1000, 0, -1)
        .transactional(true)
        .control(true)
        .push(
            Some(&marker.key()),
            Some(&marker.value()),
            &[],
            1_700_000_000_000,
        )
        .build();
    let mut data = vec![0x80];
    data.extend_from_slice(&control);
    write(dir, "commit-marker", &data)?;
    let mut two = vec![0x80];
    two.extend(batch(0, 1));
    two.extend(batch(1, 2));
    write(dir, "two-batches", &two)?;
    Ok(n + 2)
}

/// A batch of (key, value) records as a coordinator writes them.
fn records_batch(recs: &[(Vec<u8>, Option<Vec<u8>>)], txn: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_700_000_000_000);
    if txn {
        b = b.producer(2000, 0, 0).transactional(true);
    }
    for (k, v) in recs {
        b = b.push(Some(k), v.as_deref(), &[], 1_700_000_000_000);
    }
    b.build().to_vec()
}

fn coordinator_logs(dir: &Path) -> Result<usize> {
    let offset = OffsetValue {
        offset: 42,
        leader_epoch: 3,
        metadata: "m".into(),
        commit_timestamp: 1_700_000_000_000,
        expire_timestamp: None,
    };
    let group = GroupValue {
        protocol_type: "consumer".into(),
        generation: 2,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        current_state_timestamp: 1_700_000_000_000,
        members: vec![MemberValue {
            member_id: "m-1".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 60_000,
            session_timeout_ms: 45_000,
            subscription: Bytes::from_static(&[0, 1, 0, 0, 0, 0]),
            assignment: Bytes::from_static(&[0, 1, 0, 0, 0, 0]),
        }],
    };
    let classic = vec![
        (
            record_serde::group_key("g1")?,
            Some(record_serde::group_value(&group)?),
        ),
        (
            record_serde::offset_key("g1", "orders", 0)?,
            Some(record_serde::offset_value(&offset)?),
        ),
        (record_serde::offset_key("g1", "orders", 1)?, None),
    ];
    let tid = uuid::Uuid::from_u128(0x1234);
    let assignment: BTreeMap<uuid::Uuid, BTreeSet<i32>> =
        [(tid, [0, 1].into_iter().collect())].into_iter().collect();
    let consumer = [
        ConsumerRecord::GroupMetadata("cg".into(), Some((3, 77))),
        ConsumerRecord::MemberMetadata(
            "cg".into(),
            "mem".into(),
            Some(MemberMetadata {
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["orders".into()],
                rebalance_timeout_ms: 60_000,
                server_assignor: Some("uniform".into()),
                ..Default::default()
            }),
        ),
        ConsumerRecord::TargetAssignmentMetadata("cg".into(), Some((3, 1_764_000_000_000))),
        ConsumerRecord::TargetAssignmentMember("cg".into(), "mem".into(), Some(assignment.clone())),
        ConsumerRecord::CurrentMemberAssignment(
            "cg".into(),
            "mem".into(),
            Some(CurrentAssignment {
                member_epoch: 3,
                previous_member_epoch: 2,
                state: MemberState::Stable,
                assigned_partitions: assignment,
                partitions_pending_revocation: BTreeMap::new(),
            }),
        ),
        ConsumerRecord::PartitionMetadata("cg".into()),
    ]
    .iter()
    .map(|r| r.encode())
    .collect::<std::result::Result<Vec<_>, _>>()?;
    let marker = EndTransactionMarker::new(true, 0);
    let commit = BatchBuilder::new(1_700_000_000_000)
        .producer(2000, 0, -1)
        .transactional(true)
        .control(true)
        .push(
            Some(&marker.key()),
            Some(&marker.value()),
            &[],
            1_700_000_000_000,
        )
        .build()
        .to_vec();
    let mut groups = vec![0u8];
    groups.extend(records_batch(&classic, false));
    groups.extend(records_batch(&consumer, false));
    write(dir, "groups", &groups)?;
    // A streams group: every record type, then a member's tombstones.
    let tasks: BTreeMap<String, BTreeSet<i32>> = [("0".to_string(), [0, 1].into_iter().collect())]
        .into_iter()
        .collect();
    let topology = vec![Subtopology {
        subtopology_id: "0".into(),
        source_topics: vec!["orders".into()],
        state_changelog_topics: vec![TopicInfo {
            name: "app-store-changelog".into(),
            topic_configs: vec![KeyValue {
                key: "cleanup.policy".into(),
                value: "compact".into(),
            }],
            ..TopicInfo::default()
        }],
        ..Subtopology::default()
    }];
    let sg = || "sg".to_string();
    let sm = || "smem".to_string();
    let streams = [
        StreamsRecord::MemberMetadata(
            sg(),
            sm(),
            Some(streams_records::MemberMetadata {
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 60_000,
                topology_epoch: 1,
                process_id: "p".into(),
                user_endpoint: Some(Endpoint {
                    host: "localhost".into(),
                    port: 8080,
                }),
                ..Default::default()
            }),
        ),
        StreamsRecord::GroupMetadata(
            sg(),
            Some(streams_records::GroupMetadata {
                epoch: 2,
                metadata_hash: 99,
                validated_topology_epoch: 1,
                last_assignment_configs: [("num.standby.replicas".into(), "1".into())].into(),
                stored_description_topology_epoch: 1,
                failed_description_topology_epoch: -1,
            }),
        ),
        StreamsRecord::Topology(sg(), Some((1, topology))),
        StreamsRecord::TargetAssignmentMember(
            sg(),
            sm(),
            Some(kastle::coordinator::group::streams::TaskSet {
                active: tasks.clone(),
                standby: tasks.clone(),
            }),
        ),
        StreamsRecord::TargetAssignmentMetadata(sg(), Some((2, 1_700_000_000_000))),
        StreamsRecord::CurrentMemberAssignment(
            sg(),
            sm(),
            Some(streams_records::CurrentAssignment {
                member_epoch: 2,
                previous_member_epoch: 1,
                state: StreamsMemberState::UnrevokedTasks,
                active: tasks.clone(),
                standby: tasks.clone(),
                active_pending_revocation: tasks.clone(),
                standby_pending_revocation: tasks,
            }),
        ),
    ]
    .iter()
    .map(|r| r.encode())
    .collect::<std::result::Result<Vec<_>, _>>()?;
    let streams_leave = [
        StreamsRecord::CurrentMemberAssignment(sg(), sm(), None),
        StreamsRecord::TargetAssignmentMember(sg(), sm(), None),
        StreamsRecord::MemberMetadata(sg(), sm(), None),
    ]
    .iter()
    .map(|r| r.encode())
    .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut streams_log = vec![0u8];
    streams_log.extend(records_batch(&streams, false));
    streams_log.extend(records_batch(&classic[1..2], false));
    streams_log.extend(records_batch(&streams_leave, false));
    write(dir, "streams-groups", &streams_log)?;
    let mut txn_offsets = vec![0u8];
    txn_offsets.extend(records_batch(&classic[1..2], true));
    txn_offsets.extend(commit);
    write(dir, "txn-offsets", &txn_offsets)?;
    let txn = TxnValue {
        producer_id: 2000,
        previous_producer_id: -1,
        next_producer_id: 2001,
        producer_epoch: 1,
        timeout_ms: 60_000,
        state: TxnState::Ongoing,
        partitions: [("orders".to_string(), 0)].into_iter().collect(),
        last_update_ms: 1_700_000_000_000,
        start_ms: 1_700_000_000_000,
        client_transaction_version: 2,
    };
    let mut txns = vec![1u8];
    txns.extend(records_batch(
        &[
            (
                transaction_log::encode_key("tx-1")?,
                Some(transaction_log::encode_value(&txn)?),
            ),
            (transaction_log::encode_key("tx-2")?, None),
        ],
        false,
    ));
    write(dir, "txns", &txns)?;
    Ok(4)
}

fn storage_files(dir: &Path) -> Result<usize> {
    let with = |kind: u8, body: &[u8]| {
        let mut v = vec![kind];
        v.extend_from_slice(body);
        v
    };
    write(
        dir,
        "offset-checkpoint",
        &with(0, b"0\n2\norders 0 42\n__consumer_offsets 7 0\n"),
    )?;
    write(
        dir,
        "leader-epoch-checkpoint",
        &with(1, b"0\n2\n0 0\n3 120\n"),
    )?;
    let entry = ProducerStateEntry {
        producer_id: 1000,
        epoch: 2,
        batches: VecDeque::from([BatchMetadata {
            first_seq: 0,
            last_seq: 4,
            first_offset: 10,
            last_offset: 14,
            timestamp: 1_700_000_000_000,
        }]),
        last_timestamp: 1_700_000_000_000,
        coordinator_epoch: 0,
        current_txn_first_offset: Some(10),
    };
    write(
        dir,
        "producer-snapshot",
        &with(2, &encode_snapshot([entry].iter())),
    )?;
    write(
        dir,
        "meta-properties",
        &with(3, b"#\n#1700000000000\nversion=1\nnode.id=1\ncluster.id=5L6g3nShT-eMCtK--X86sw\ndirectory.id=abc\n"),
    )?;
    write(
        dir,
        "topic-file",
        &with(4, b"# kastle topic metadata\ntopic.name=orders\ntopic.id=5c2e5e0a-2b1e-4d8a-9c1e-0d3f2a1b4c5d\npartitions=3\nconfig.cleanup.policy=compact\nconfig.x=a\\nb\n"),
    )?;
    let recs = [
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            topic_id: uuid::Uuid::from_u128(0x1234),
        }),
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version".into(),
            feature_level: 27,
        }),
    ];
    for (i, r) in recs.into_iter().enumerate() {
        let bytes = RecordAndVersion {
            record: r,
            version: 0,
        }
        .encode()?;
        write(dir, &format!("metadata-record-{i}"), &with(5, &bytes))?;
        // The same record in a segment of Kafka's metadata log.
        let segment = records_batch(&[(Vec::new(), Some(bytes))], false);
        write(
            dir,
            &format!("kafka-metadata-segment-{i}"),
            &with(8, &segment),
        )?;
    }
    Ok(9)
}

fn main() -> Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let n = requests(&root.join("request_frame"))?;
    let b = record_batches(&root.join("record_batch"))?;
    let c = coordinator_logs(&root.join("coordinator_log"))?;
    let f = storage_files(&root.join("storage_file"))?;
    println!("seeds: request_frame {n}, record_batch {b}, coordinator_log {c}, storage_file {f}");
    Ok(())
}
