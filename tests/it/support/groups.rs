//! Consumer group helpers (classic protocol): JoinGroup with its
//! MEMBER_ID_REQUIRED round trip, SyncGroup, Heartbeat, DescribeGroups,
//! OffsetCommit (member-managed and simple) and OffsetFetch; a group's
//! dynamic configs (IncrementalAlterConfigs on the GROUP resource).

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, HeartbeatRequest, IncrementalAlterConfigsResponse,
    JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    SyncGroupResponse,
};

use super::{sb, tn, Client, E, NONE};

/// A member joining a group with protocol type "consumer" and one "range"
/// protocol; `member` is filled in by [`join`].
pub struct Joiner<'a> {
    pub group: &'a str,
    pub member: String,
    pub instance: Option<&'a str>,
    pub session_ms: i32,
    pub meta: &'a [u8],
}

impl<'a> Joiner<'a> {
    /// A new dynamic member (no member id yet) with a 10 s session.
    pub fn new(group: &'a str, meta: &'a [u8]) -> Joiner<'a> {
        Joiner {
            group,
            member: String::new(),
            instance: None,
            session_ms: 10_000,
            meta,
        }
    }
}

pub fn join_req(j: &Joiner) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(sb(j.group)))
        .with_session_timeout_ms(j.session_ms)
        .with_rebalance_timeout_ms(5_000)
        .with_member_id(sb(&j.member))
        .with_group_instance_id(j.instance.map(sb))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            .with_metadata(Bytes::copy_from_slice(j.meta))])
}

/// JoinGroup v7, answering MEMBER_ID_REQUIRED by rejoining with the id.
pub fn join(c: &mut Client, j: &mut Joiner) -> JoinGroupResponse {
    let r = c.call(7, &join_req(j));
    if r.error_code == E::MemberIdRequired.code() {
        j.member = r.member_id.to_string();
        return c.call(7, &join_req(j));
    }
    if r.error_code == NONE {
        j.member = r.member_id.to_string();
    }
    r
}

/// SyncGroup v5; the leader passes (member id, assignment) pairs.
pub fn sync(
    c: &mut Client,
    group: &str,
    gen: i32,
    member: &str,
    instance: Option<&str>,
    assignments: &[(&str, &[u8])],
) -> SyncGroupResponse {
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id(gen)
        .with_member_id(sb(member))
        .with_group_instance_id(instance.map(sb))
        .with_protocol_type(Some(sb("consumer")))
        .with_protocol_name(Some(sb("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(sb(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        );
    c.call(5, &req)
}

/// Heartbeat v4: its error code.
pub fn heartbeat(c: &mut Client, group: &str, gen: i32, member: &str) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id(gen)
        .with_member_id(sb(member));
    c.call(4, &req).error_code
}

/// DescribeGroups v5 of one group.
pub fn describe_group(c: &mut Client, group: &str) -> DescribedGroup {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
    c.call(5, &req).groups.remove(0)
}

/// An OffsetCommit of (topic, partition, offset) triples, one request topic
/// per topic in order of first appearance.
pub fn offset_commit_request(
    group: &str,
    gen: i32,
    member: &str,
    offsets: &[(&str, i32, i64)],
    metadata: Option<&str>,
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o)
            .with_committed_metadata(metadata.map(sb));
        match topics.iter_mut().find(|x| x.name.0.as_str() == *t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(tn(t))
                    .with_partitions(vec![part]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(gen)
        .with_member_id(sb(member))
        .with_retention_time_ms(-1)
        .with_topics(topics)
}

/// OffsetCommit at `version` with metadata "m": the error code of every
/// partition, in order.
pub fn offset_commit(
    c: &mut Client,
    version: i16,
    group: &str,
    gen: i32,
    member: &str,
    offsets: &[(&str, i32, i64)],
) -> Vec<i16> {
    let req = offset_commit_request(group, gen, member, offsets, Some("m"));
    c.call(version, &req)
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// OffsetCommit v8 outside any generation (the standalone / simple
/// consumer path, no metadata), insisting on success.
#[track_caller]
pub fn commit_offsets(c: &mut Client, group: &str, offsets: &[(&str, i32, i64)]) {
    let r = c.call(8, &offset_commit_request(group, -1, "", offsets, None));
    for t in &r.topics {
        for p in &t.partitions {
            assert_eq!(
                p.error_code,
                NONE,
                "commit {group} {}-{}",
                t.name.0.as_str(),
                p.partition_index
            );
        }
    }
}

/// OffsetFetch of one topic's partitions at `version` (the v8 groups layout
/// from v8 on): the group-level error code and (offset, error code) per
/// partition in order.
pub fn offset_fetch(
    c: &mut Client,
    version: i16,
    group: &str,
    topic: &str,
    parts: &[i32],
    require_stable: bool,
) -> (i16, Vec<(i64, i16)>) {
    let req = OffsetFetchRequest::default().with_require_stable(require_stable);
    if version >= 8 {
        let req = req.with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(sb(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(tn(topic))
                .with_partition_indexes(parts.to_vec())]))]);
        let r = c.call(version, &req);
        let g = &r.groups[0];
        let parts = g.topics[0].partitions.iter();
        return (
            g.error_code,
            parts.map(|p| (p.committed_offset, p.error_code)).collect(),
        );
    }
    let req = req.with_group_id(GroupId(sb(group))).with_topics(Some(vec![
        OffsetFetchRequestTopic::default()
            .with_name(tn(topic))
            .with_partition_indexes(parts.to_vec()),
    ]));
    let r = c.call(version, &req);
    let parts = r.topics[0].partitions.iter();
    (
        r.error_code,
        parts.map(|p| (p.committed_offset, p.error_code)).collect(),
    )
}

/// The committed offsets of `parts` (-1: none), insisting on no
/// group-level error.
#[track_caller]
pub fn committed_offsets(
    c: &mut Client,
    version: i16,
    group: &str,
    topic: &str,
    parts: &[i32],
) -> Vec<i64> {
    let (error, offsets) = offset_fetch(c, version, group, topic, parts, false);
    assert_eq!(error, NONE, "OffsetFetch v{version} of {group}");
    offsets.into_iter().map(|(o, _)| o).collect()
}

/// ConsumerProtocolSubscription v0 naming `topics`.
pub fn consumer_subscription(topics: &[&str]) -> Vec<u8> {
    let mut m = vec![0u8, 0];
    m.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        m.extend_from_slice(&(t.len() as i16).to_be_bytes());
        m.extend_from_slice(t.as_bytes());
    }
    m.extend_from_slice(&(-1i32).to_be_bytes());
    m
}

/// Sets one dynamic config of `group` (resource type 32, SET).
pub fn set_group_config(c: &mut Client, group: &str, key: &str, value: &str) {
    use kafka_protocol::messages::incremental_alter_configs_request::*;
    let r: IncrementalAlterConfigsResponse = c.call(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(sb(group))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(sb(key))
                    .with_config_operation(0)
                    .with_value(Some(sb(value)))]),
        ]),
    );
    assert_eq!(r.responses[0].error_code, NONE, "{r:?}");
}

/// Sends a body kastle's own codec wrote (the offset APIs' topic-id
/// versions, past the crate's request encoders) and decodes the answer with
/// the crate at `version`.
pub fn call_own<R: kafka_protocol::protocol::Decodable>(
    c: &mut Client,
    api_key: i16,
    version: i16,
    body: &[u8],
) -> R {
    let corr = c.next_corr();
    c.send(api_key, version, corr, body);
    let (got, mut resp) = c.recv(api_key, version);
    assert_eq!(got, corr, "correlation id");
    R::decode(&mut resp, version).expect("a response the crate decodes")
}

/// OffsetCommit v10 (KIP-848: topics by id) outside any generation, of
/// (topic id, partition, offset) triples, one request topic per id in
/// order of first appearance: per topic, its id and (partition, error code)
/// in order.
pub fn offset_commit_v10(
    c: &mut Client,
    group: &str,
    offsets: &[(uuid::Uuid, i32, i64)],
) -> Vec<(uuid::Uuid, Vec<(i32, i16)>)> {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (id, p, o) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o)
            .with_committed_metadata(Some(sb("m")));
        match topics.iter_mut().find(|x| x.topic_id == *id) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_topic_id(*id)
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(topics);
    let body = kastle::protocol::offsets_by_id::write_offset_commit(&req);
    let r: kafka_protocol::messages::OffsetCommitResponse = call_own(c, 8, 10, &body);
    r.topics
        .iter()
        .map(|t| {
            (
                t.topic_id,
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect(),
            )
        })
        .collect()
}

/// OffsetFetch v10 of one group: `topics` by id (None: all offsets). The
/// group's error code and, per topic in the answer's order, its id and
/// (partition, offset, error code) in order.
#[allow(clippy::type_complexity)]
pub fn offset_fetch_v10(
    c: &mut Client,
    group: &str,
    topics: Option<&[(uuid::Uuid, &[i32])]>,
) -> (i16, Vec<(uuid::Uuid, Vec<(i32, i64, i16)>)>) {
    let req = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(sb(group)))
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|(id, ps)| {
                    OffsetFetchRequestTopics::default()
                        .with_topic_id(*id)
                        .with_partition_indexes(ps.to_vec())
                })
                .collect()
        }))]);
    let body = kastle::protocol::offsets_by_id::write_offset_fetch(&req);
    let r: kafka_protocol::messages::OffsetFetchResponse = call_own(c, 9, 10, &body);
    let g = &r.groups[0];
    let topics = g
        .topics
        .iter()
        .map(|t| {
            let ps = t.partitions.iter();
            (
                t.topic_id,
                ps.map(|p| (p.partition_index, p.committed_offset, p.error_code))
                    .collect(),
            )
        })
        .collect();
    (g.error_code, topics)
}
