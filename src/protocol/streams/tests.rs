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
    for version in [0, 1] {
        assert_eq!(
            StreamsGroupDescribeResponse::decode(&resp.write(version), version).ok(),
            Some(resp.clone())
        );
    }
}

fn node(name: &str, node_type: i8) -> TopologyDescriptionNode {
    TopologyDescriptionNode {
        name: name.into(),
        node_type,
        source_topics: vec!["in".into()],
        sink_topic: (node_type == 3).then(|| "out".to_string()),
        stores: vec!["s".into()],
        successors: vec!["next".into()],
    }
}

fn description() -> TopologyDescription {
    TopologyDescription {
        subtopologies: vec![TopologyDescriptionSubtopology {
            subtopology_id: "0".into(),
            nodes: vec![node("KSTREAM-SOURCE-0", 1), node("KSTREAM-SINK-1", 3)],
        }],
        global_stores: vec![TopologyDescriptionGlobalStore {
            source: node("g-src", 1),
            processor: node("g-proc", 2),
        }],
    }
}

/// Version 1 adds three fields to each described group; version 0 writes
/// none of them (the v0 body is the v1 body without them).
#[test]
fn describe_response_v1_fields() {
    let mut g = DescribedGroup {
        group_id: "app".into(),
        group_state: "Empty".into(),
        authorized_operations: i32::MIN,
        topology_description: Some(description()),
        topology_description_status: 3,
        assignor_name: Some("sticky".into()),
        ..DescribedGroup::default()
    };
    let resp = StreamsGroupDescribeResponse {
        throttle_time_ms: 0,
        groups: vec![g.clone()],
    };
    let v1 = resp.write(1);
    assert_eq!(
        StreamsGroupDescribeResponse::decode(&v1, 1).ok(),
        Some(resp.clone())
    );
    let v0 = resp.write(0);
    g.topology_description = None;
    g.topology_description_status = 0;
    g.assignor_name = None;
    let plain = StreamsGroupDescribeResponse {
        throttle_time_ms: 0,
        groups: vec![g.clone()],
    };
    assert_eq!(v0, plain.write(0));
    assert_eq!(
        StreamsGroupDescribeResponse::decode(&v0, 0).ok(),
        Some(plain.clone())
    );
    // Null description, status 1, null assignor: 3 bytes more than v0
    // (-1, 1, varint 0) before the group's tagged fields.
    g.topology_description_status = 1;
    let not_stored = StreamsGroupDescribeResponse {
        throttle_time_ms: 0,
        groups: vec![g],
    };
    let v1 = not_stored.write(1);
    assert_eq!(v1.len(), v0.len() + 3);
    assert_eq!(&v1[v1.len() - 5..v1.len() - 2], &[0xff, 1, 0]);
}

#[test]
fn describe_request_flag_only_from_v1() {
    let req = StreamsGroupDescribeRequest {
        group_ids: vec!["a".into()],
        include_authorized_operations: true,
        include_topology_description: true,
    };
    let v1 = req.encode(1);
    assert_eq!(
        StreamsGroupDescribeRequest::decode(&v1, 1).ok(),
        Some(req.clone())
    );
    let v0 = req.encode(0);
    assert_eq!(v0.len() + 1, v1.len());
    assert_eq!(
        StreamsGroupDescribeRequest::decode(&v0, 0).ok(),
        Some(StreamsGroupDescribeRequest {
            include_topology_description: false,
            ..req
        })
    );
}

/// The v1 heartbeat response: no int32 after HeartbeatIntervalMs, the
/// int64 lag after TaskOffsetIntervalMs, the bool after WarmupTasks.
#[test]
fn heartbeat_response_layout_by_version() {
    let resp = StreamsGroupHeartbeatResponse {
        member_id: "m".into(),
        member_epoch: 3,
        heartbeat_interval_ms: 5000,
        acceptable_recovery_lag_legacy: 7,
        task_offset_interval_ms: 60_000,
        acceptable_recovery_lag: 10_000,
        topology_description_required: true,
        endpoint_information_epoch: 2,
        ..StreamsGroupHeartbeatResponse::default()
    };
    let v1 = resp.write(1);
    let mut want = Vec::new();
    want.extend_from_slice(&0i32.to_be_bytes()); // throttle
    want.extend_from_slice(&0i16.to_be_bytes()); // error
    want.push(0); // null message
    want.extend_from_slice(&[2, b'm']);
    want.extend_from_slice(&3i32.to_be_bytes());
    want.extend_from_slice(&5000i32.to_be_bytes());
    want.extend_from_slice(&60_000i32.to_be_bytes());
    want.extend_from_slice(&10_000i64.to_be_bytes());
    want.push(1); // Status [] (not null)
    want.extend_from_slice(&[0, 0, 0]); // null task lists
    want.push(1); // TopologyDescriptionRequired
    want.extend_from_slice(&2i32.to_be_bytes());
    want.push(0); // null PartitionsByUserEndpoint
    want.push(0); // tags
    assert_eq!(v1, want);
    assert_eq!(
        StreamsGroupHeartbeatResponse::decode(&v1, 1).ok(),
        Some(StreamsGroupHeartbeatResponse {
            acceptable_recovery_lag_legacy: 0,
            ..resp.clone()
        })
    );
    let v0 = resp.write(0);
    // v0: int32 legacy lag, no int64, no bool.
    assert_eq!(v0.len(), v1.len() + 4 - 8 - 1);
    assert_eq!(&v0[17..21], &7i32.to_be_bytes());
    assert_eq!(
        StreamsGroupHeartbeatResponse::decode(&v0, 0).ok(),
        Some(StreamsGroupHeartbeatResponse {
            acceptable_recovery_lag: -1,
            topology_description_required: false,
            ..resp
        })
    );
}

#[test]
fn topology_description_update_round_trips() {
    let req = StreamsGroupTopologyDescriptionUpdateRequest {
        group_id: "app".into(),
        member_id: "m".into(),
        topology_epoch: 4,
        topology_description: description(),
    };
    let bytes = req.encode();
    assert_eq!(
        StreamsGroupTopologyDescriptionUpdateRequest::decode(&bytes).ok(),
        Some(req)
    );
    for n in 0..bytes.len() {
        assert!(StreamsGroupTopologyDescriptionUpdateRequest::decode(&bytes[..n]).is_err());
    }
    let resp = StreamsGroupTopologyDescriptionUpdateResponse {
        throttle_time_ms: 0,
        error_code: 35,
        error_message: Some("x".into()),
    };
    assert_eq!(
        StreamsGroupTopologyDescriptionUpdateResponse::decode(&resp.write()).ok(),
        Some(resp)
    );
}
