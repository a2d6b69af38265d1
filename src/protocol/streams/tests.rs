//! Round trips of the streams group messages through kastle's codec.

use super::*;

#[test]
fn heartbeat_request_round_trips() {
    let req = StreamsGroupHeartbeatRequest {
        group_id: "app".into(),
        member_id: "m".into(),
        rebalance_timeout_ms: 300_000,
        topology: Some(Topology {
            epoch: 1,
            subtopologies: vec![Subtopology {
                subtopology_id: "0".into(),
                source_topics: vec!["in".into()],
                state_changelog_topics: vec![TopicInfo {
                    name: "app-store-changelog".into(),
                    topic_configs: vec![KeyValue {
                        key: "cleanup.policy".into(),
                        value: "compact".into(),
                    }],
                    ..TopicInfo::default()
                }],
                copartition_groups: vec![CopartitionGroup {
                    source_topics: vec![0],
                    ..CopartitionGroup::default()
                }],
                ..Subtopology::default()
            }],
        }),
        active_tasks: Some(vec![TaskIds {
            subtopology_id: "0".into(),
            partitions: vec![0, 2],
        }]),
        process_id: Some("p".into()),
        user_endpoint: Some(Endpoint {
            host: "h".into(),
            port: 65_000,
        }),
        ..StreamsGroupHeartbeatRequest::default()
    };
    let bytes = req.encode();
    assert_eq!(StreamsGroupHeartbeatRequest::decode(&bytes).ok(), Some(req));
    // Cut short anywhere, it is an error, never a panic.
    for n in 0..bytes.len() {
        assert!(StreamsGroupHeartbeatRequest::decode(&bytes[..n]).is_err());
    }
}

#[test]
fn describe_response_round_trips() {
    let resp = StreamsGroupDescribeResponse {
        throttle_time_ms: 0,
        groups: vec![DescribedGroup {
            group_id: "app".into(),
            group_state: "Stable".into(),
            topology: Some(DescribedTopology {
                epoch: 1,
                subtopologies: Some(vec![DescribedSubtopology {
                    subtopology_id: "0".into(),
                    source_topics: vec!["in".into()],
                    ..DescribedSubtopology::default()
                }]),
            }),
            members: vec![DescribedMember {
                member_id: "m".into(),
                assignment: DescribedAssignment {
                    active_tasks: vec![TaskIds {
                        subtopology_id: "0".into(),
                        partitions: vec![1],
                    }],
                    ..DescribedAssignment::default()
                },
                ..DescribedMember::default()
            }],
            authorized_operations: i32::MIN,
            ..DescribedGroup::default()
        }],
    };
    assert_eq!(
        StreamsGroupDescribeResponse::decode(&resp.write()).ok(),
        Some(resp)
    );
}
