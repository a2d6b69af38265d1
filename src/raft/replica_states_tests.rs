//! DescribeQuorum's answer from the leader's replica states (Kafka's
//! `RaftUtil.singletonDescribeQuorumResponse` and the request checks of
//! `KafkaRaftClient.handleDescribeQuorumRequest`).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_quorum_request::{
    DescribeQuorumRequest, PartitionData, TopicData,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::*;

fn request(topic: &str, partitions: &[i32]) -> DescribeQuorumRequest {
    DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partitions(
            partitions
                .iter()
                .map(|&p| PartitionData::default().with_partition_index(p))
                .collect(),
        )])
}

fn states() -> ReplicaStates {
    let endpoints = (1..=3)
        .map(|id| {
            (
                id,
                VoterEndpoint {
                    host: "localhost".into(),
                    port: 9090 + id as u16,
                },
            )
        })
        .collect();
    ReplicaStates::new("CONTROLLER".into(), endpoints)
}

fn view(term: u64) -> QuorumView {
    QuorumView {
        leader_id: 1,
        term,
        high_watermark: 10,
        voters: BTreeMap::from([(1, 10), (2, 10), (3, -1)]),
    }
}

#[test]
fn leader_answers_voters_observers_and_nodes() {
    let s = states();
    s.voter_fetched(2, 4, Some(9), Some(9), 1_000);
    s.voter_fetched(2, 4, Some(9), Some(12), 1_500); // behind the commit index
    s.observer_fetched(7, 4, 9, 9, 1_200);
    s.observer_fetched(1, 4, 9, 9, 1_200); // a combined node is a voter only
    let resp = s.describe(&request(METADATA_TOPIC, &[0]), Some(&view(4)), 2, 2_000);
    assert_eq!(resp.error_code, 0);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(resp.topics[0].topic_name.0.as_str(), METADATA_TOPIC);
    assert_eq!(
        (p.error_code, p.leader_id, p.leader_epoch, p.high_watermark),
        (0, BrokerId(1), 4, 10)
    );
    let voters: Vec<_> = p
        .current_voters
        .iter()
        .map(|r| {
            (
                r.replica_id.0,
                r.log_end_offset,
                r.last_fetch_timestamp,
                r.last_caught_up_timestamp,
            )
        })
        .collect();
    // The leader's times are now (Kafka's `toReplicaState`); voter 2
    // fetched at 1500 but last caught up at 1000; voter 3 never answered.
    assert_eq!(
        voters,
        vec![
            (1, 10, 2_000, 2_000),
            (2, 10, 1_500, 1_000),
            (3, -1, -1, -1)
        ]
    );
    assert!(p
        .current_voters
        .iter()
        .all(|r| r.replica_directory_id == Uuid::nil()));
    let observers: Vec<_> = p
        .observers
        .iter()
        .map(|r| (r.replica_id.0, r.log_end_offset, r.last_caught_up_timestamp))
        .collect();
    assert_eq!(observers, vec![(7, 10, 1_200)]);
    assert_eq!(resp.nodes.len(), 3);
    let l = &resp.nodes[1].listeners[0];
    assert_eq!(
        (
            resp.nodes[1].node_id.0,
            l.name.as_str(),
            l.host.as_str(),
            l.port
        ),
        (2, "CONTROLLER", "localhost", 9092)
    );
}

#[test]
fn times_start_over_with_a_new_term_and_idle_observers_expire() {
    let s = states();
    s.voter_fetched(2, 4, Some(9), Some(9), 1_000);
    s.observer_fetched(7, 4, 9, 9, 1_000);
    let resp = s.describe(&request(METADATA_TOPIC, &[0]), Some(&view(5)), 1, 2_000);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.current_voters[1].last_fetch_timestamp, -1);
    assert!(p.observers.is_empty());
    s.observer_fetched(7, 5, 9, 9, 1_000);
    let later = 1_000 + OBSERVER_SESSION_TIMEOUT.as_millis() as i64 + 1;
    let resp = s.describe(&request(METADATA_TOPIC, &[0]), Some(&view(5)), 1, later);
    assert!(resp.topics[0].partitions[0].observers.is_empty());
}

#[test]
fn v0_and_v1_answers_encode_without_v2_fields() {
    let s = states();
    for version in 0..=2 {
        let resp = s.describe(&request(METADATA_TOPIC, &[0]), Some(&view(1)), version, 5);
        let mut buf = bytes::BytesMut::new();
        resp.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(resp.nodes.is_empty(), version < 2);
        let err = top_level_error(ResponseError::ClusterAuthorizationFailed, None, version);
        err.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        let err = partition_level_error(
            &request("other", &[0, 1]),
            ResponseError::UnknownTopicOrPartition,
            version,
        );
        err.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
    }
}

#[test]
fn only_the_metadata_partition_is_described() {
    let s = states();
    for req in [
        request("other", &[0]),
        request(METADATA_TOPIC, &[1]),
        request(METADATA_TOPIC, &[0, 0]),
        DescribeQuorumRequest::default(),
    ] {
        let resp = s.describe(&req, Some(&view(1)), 2, 5);
        let codes: Vec<i16> = resp
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect();
        let want = req.topics.iter().map(|t| t.partitions.len()).sum::<usize>();
        assert_eq!(codes.len(), want);
        assert!(codes
            .iter()
            .all(|c| *c == ResponseError::UnknownTopicOrPartition.code()));
    }
    // A follower: NOT_LEADER_OR_FOLLOWER on the metadata partition.
    let resp = s.describe(&request(METADATA_TOPIC, &[0]), None, 2, 5);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, ResponseError::NotLeaderOrFollower.code());
    assert_eq!(
        p.error_message.as_ref().map(|m| m.as_str()),
        Some(ResponseError::NotLeaderOrFollower.to_string().as_str())
    );
}
