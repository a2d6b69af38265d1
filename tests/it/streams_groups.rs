//! Black-box tests of KIP-1071 streams groups over the raw protocol:
//! StreamsGroupHeartbeat (topology validation statuses, internal topic
//! creation, task assignment, revocation before assignment, epochs,
//! fencing, leave), StreamsGroupDescribe, ListGroups, OffsetCommit member
//! checks and DeleteGroups; KIP-1331's version 1 of both and
//! StreamsGroupTopologyDescriptionUpdate, as Kafka 4.4 without a topology
//! description plugin answers them.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::groups::{offset_commit, set_group_config};
use crate::support::topics::create_topic;
use crate::support::{find_coordinators, sb, tn, Broker, Client, NONE};
use crate::support::{frame_with_header, skip_tagged_fields};
use kafka_protocol::messages::*;
use kastle::protocol::streams::*;

const UNKNOWN_MEMBER_ID: i16 = 25;
const UNSUPPORTED_VERSION: i16 = 35;
const INVALID_REQUEST: i16 = 42;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const FENCED_MEMBER_EPOCH: i16 = 110;
const STALE_MEMBER_EPOCH: i16 = 113;
const STREAMS_INVALID_TOPOLOGY: i16 = 130;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const NO_PLUGIN: &str = "The broker has no streams group topology description plugin configured.";

fn call_raw(c: &mut Client, key: i16, version: i16, body: &[u8]) -> bytes::Bytes {
    let corr = c.next_corr();
    c.write_raw(&frame_with_header(key, version, corr, 2, body))
        .expect("write request");
    let (got, mut b) = c.recv_frame().expect("read response");
    assert_eq!(got, corr);
    skip_tagged_fields(&mut b);
    b
}

fn heartbeat(c: &mut Client, r: &StreamsGroupHeartbeatRequest) -> StreamsGroupHeartbeatResponse {
    heartbeat_at(c, r, 0)
}

/// A heartbeat at `version` (the request is the same in 0 and 1; the
/// answer is decoded at that version, to its last byte).
fn heartbeat_at(
    c: &mut Client,
    r: &StreamsGroupHeartbeatRequest,
    version: i16,
) -> StreamsGroupHeartbeatResponse {
    let b = call_raw(c, STREAMS_GROUP_HEARTBEAT, version, &r.encode());
    StreamsGroupHeartbeatResponse::decode(&b, version).expect("heartbeat response")
}

fn describe(c: &mut Client, group: &str) -> DescribedGroup {
    describe_at(c, &[group], false, 0).remove(0)
}

fn describe_at(
    c: &mut Client,
    groups: &[&str],
    include_topology_description: bool,
    version: i16,
) -> Vec<DescribedGroup> {
    let req = StreamsGroupDescribeRequest {
        group_ids: groups.iter().map(|g| g.to_string()).collect(),
        include_authorized_operations: false,
        include_topology_description,
    };
    let b = call_raw(c, STREAMS_GROUP_DESCRIBE, version, &req.encode(version));
    StreamsGroupDescribeResponse::decode(&b, version)
        .expect("describe response")
        .groups
}

fn description_update(
    c: &mut Client,
    group: &str,
    member: &str,
    epoch: i32,
) -> StreamsGroupTopologyDescriptionUpdateResponse {
    let req = StreamsGroupTopologyDescriptionUpdateRequest {
        group_id: group.into(),
        member_id: member.into(),
        topology_epoch: epoch,
        topology_description: TopologyDescription {
            subtopologies: vec![TopologyDescriptionSubtopology {
                subtopology_id: "0".into(),
                nodes: vec![TopologyDescriptionNode {
                    name: "KSTREAM-SOURCE-0000000000".into(),
                    node_type: 1,
                    source_topics: vec!["in".into()],
                    ..TopologyDescriptionNode::default()
                }],
            }],
            global_stores: Vec::new(),
        },
    };
    let b = call_raw(
        c,
        STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE,
        0,
        &req.encode(),
    );
    StreamsGroupTopologyDescriptionUpdateResponse::decode(&b).expect("update response")
}

fn info(name: &str, configs: &[(&str, &str)]) -> TopicInfo {
    TopicInfo {
        name: name.into(),
        topic_configs: configs
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        ..TopicInfo::default()
    }
}

/// A word-count shape: subtopology 0 reads `input` and writes the
/// repartition topic; subtopology 1 reads it into a store with a changelog.
fn topology(app: &str, input: &str) -> Topology {
    let repartition = format!("{app}-counts-repartition");
    Topology {
        epoch: 1,
        subtopologies: vec![
            Subtopology {
                subtopology_id: "0".into(),
                source_topics: vec![input.into()],
                repartition_sink_topics: vec![repartition.clone()],
                ..Subtopology::default()
            },
            // As Kafka Streams sends it: the repartition topic is a
            // repartition source topic, not a source topic.
            Subtopology {
                subtopology_id: "1".into(),
                repartition_source_topics: vec![info(&repartition, &[])],
                state_changelog_topics: vec![info(
                    &format!("{app}-counts-changelog"),
                    &[("cleanup.policy", "compact")],
                )],
                ..Subtopology::default()
            },
        ],
    }
}

type Tasks = BTreeMap<String, BTreeSet<i32>>;

fn tasks(ids: &[TaskIds]) -> Tasks {
    ids.iter()
        .map(|t| {
            (
                t.subtopology_id.clone(),
                t.partitions.iter().copied().collect(),
            )
        })
        .filter(|(_, ps): &(String, BTreeSet<i32>)| !ps.is_empty())
        .collect()
}

fn ids(t: &Tasks) -> Vec<TaskIds> {
    t.iter()
        .map(|(s, ps)| TaskIds {
            subtopology_id: s.clone(),
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

fn count(t: &Tasks) -> usize {
    t.values().map(BTreeSet::len).sum()
}

struct Member {
    group: String,
    id: String,
    epoch: i32,
    owned: Tasks,
    standby: Tasks,
    topology: Topology,
    endpoint: Option<Endpoint>,
}

impl Member {
    fn new(group: &str, topology: Topology) -> Member {
        Member {
            group: group.into(),
            id: uuid::Uuid::new_v4().to_string(),
            epoch: 0,
            owned: Tasks::new(),
            standby: Tasks::new(),
            topology,
            endpoint: None,
        }
    }

    fn request(&self) -> StreamsGroupHeartbeatRequest {
        let joining = self.epoch == 0;
        StreamsGroupHeartbeatRequest {
            group_id: self.group.clone(),
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            rebalance_timeout_ms: if joining { 30_000 } else { -1 },
            topology: joining.then(|| self.topology.clone()),
            active_tasks: Some(ids(&self.owned)),
            standby_tasks: Some(ids(&self.standby)),
            warmup_tasks: Some(Vec::new()),
            process_id: joining.then(|| format!("process-{}", self.id)),
            user_endpoint: self.endpoint.clone(),
            ..StreamsGroupHeartbeatRequest::default()
        }
    }

    /// One heartbeat; the member takes what it is given at once (a real
    /// client reports revoked tasks gone on its next heartbeat).
    fn beat(&mut self, c: &mut Client) -> StreamsGroupHeartbeatResponse {
        let r = heartbeat(c, &self.request());
        assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
        self.epoch = r.member_epoch;
        if let Some(a) = &r.active_tasks {
            self.owned = tasks(a);
        }
        if let Some(s) = &r.standby_tasks {
            self.standby = tasks(s);
        }
        r
    }
}

fn statuses(r: &StreamsGroupHeartbeatResponse) -> Vec<i8> {
    r.status.iter().flatten().map(|s| s.status_code).collect()
}

fn partitions_of(c: &mut Client, topic: &str) -> Option<usize> {
    let r = c.call(
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(tn(topic)))]))
            .with_allow_auto_topic_creation(false),
    );
    let t = &r.topics[0];
    (t.error_code == NONE).then_some(t.partitions.len())
}

/// A broker whose streams groups assign at once (no initial rebalance
/// delay, no assignment interval); the delay and interval have their own
/// test.
fn start() -> Broker {
    let b = Broker::start(&[
        "offsets.topic.num.partitions=1",
        "group.streams.initial.rebalance.delay.ms=0",
        "group.streams.assignment.interval.ms=0",
    ]);
    find_coordinators(&b);
    b
}

#[test]
fn topology_statuses_internal_topics_and_tasks() {
    let b = start();
    let mut c = b.client();
    let mut m = Member::new("app", topology("app", "words"));

    // The source topic does not exist: MISSING_SOURCE_TOPICS, no tasks.
    let r = m.beat(&mut c);
    assert_eq!(statuses(&r), vec![status::MISSING_SOURCE_TOPICS]);
    let detail = &r.status.as_ref().unwrap()[0].status_detail;
    assert_eq!(detail, "Source topics words are missing.");
    assert!(m.epoch >= 1);
    assert!(m.owned.is_empty());
    assert_eq!(describe(&mut c, "app").group_state, "NotReady");

    // The internal topics are created as the coordinator asks, sized from
    // the source topic; the answer says they were missing.
    create_topic(&mut c, "words", 3, &[]);
    let r = m.beat(&mut c);
    assert_eq!(statuses(&r), vec![status::MISSING_INTERNAL_TOPICS]);
    assert_eq!(partitions_of(&mut c, "app-counts-repartition"), Some(3));
    assert_eq!(partitions_of(&mut c, "app-counts-changelog"), Some(3));

    // Then the member gets every task of both subtopologies.
    let r = m.beat(&mut c);
    assert_eq!(statuses(&r), Vec::<i8>::new());
    let r = if m.owned.is_empty() {
        m.beat(&mut c)
    } else {
        r
    };
    assert_eq!(r.error_code, NONE);
    let want: Tasks = [("0", 3), ("1", 3)]
        .iter()
        .map(|(s, n)| (s.to_string(), (0..*n).collect()))
        .collect();
    assert_eq!(m.owned, want);
    let d = describe(&mut c, "app");
    assert_eq!(d.error_code, NONE);
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.members.len(), 1);
    assert_eq!(tasks(&d.members[0].assignment.active_tasks), want);
    let topo = d.topology.expect("topology");
    assert_eq!(topo.epoch, 1);
    assert_eq!(topo.subtopologies.map(|s| s.len()), Some(2));

    // An existing internal topic with the wrong partition count.
    create_topic(&mut c, "other", 2, &[]);
    create_topic(&mut c, "bad-counts-changelog", 5, &[]);
    let mut bad = Member::new("bad", topology("bad", "other"));
    let r = bad.beat(&mut c);
    assert_eq!(statuses(&r), vec![status::INCORRECTLY_PARTITIONED_TOPICS]);
    assert_eq!(
        r.status.unwrap()[0].status_detail,
        "Existing topic bad-counts-changelog has different number of partitions: expected 2, found 5"
    );
}

#[test]
fn tasks_move_with_revocation_first_and_back_on_leave() {
    let b = start();
    let mut c = b.client();
    create_topic(&mut c, "in", 2, &[]);
    let mut m1 = Member::new("g", topology("g", "in"));
    for _ in 0..4 {
        m1.beat(&mut c);
    }
    assert_eq!(count(&m1.owned), 4);
    let e1 = m1.epoch;

    // A second member: its share is still m1's, so it gets none yet.
    let mut m2 = Member::new("g", topology("g", "in"));
    m2.beat(&mut c);
    assert!(m2.owned.is_empty(), "{:?}", m2.owned);
    let e2 = m2.epoch;
    assert!(e2 > e1);

    // m1 must give up half before it moves to the new epoch.
    let r = m1.beat(&mut c);
    assert_eq!(r.member_epoch, e1, "epoch kept while revoking");
    assert_eq!(count(&m1.owned), 2);
    assert_eq!(describe(&mut c, "g").group_state, "Reconciling");
    // It reports the revoked tasks gone: new epoch.
    let r = m1.beat(&mut c);
    assert_eq!(r.member_epoch, e2);
    // m2 now gets the released tasks.
    m2.beat(&mut c);
    assert_eq!(count(&m2.owned), 2);
    let all: BTreeSet<(String, i32)> = m1
        .owned
        .iter()
        .chain(m2.owned.iter())
        .flat_map(|(s, ps)| ps.iter().map(move |p| (s.clone(), *p)))
        .collect();
    assert_eq!(all.len(), 4, "every task owned exactly once");
    assert_eq!(describe(&mut c, "g").group_state, "Stable");

    // A stale epoch is fenced; an unknown member is unknown.
    let mut stale = m1.request();
    stale.member_epoch = m1.epoch + 5;
    assert_eq!(heartbeat(&mut c, &stale).error_code, FENCED_MEMBER_EPOCH);
    let mut unknown = m1.request();
    unknown.member_id = "nobody".into();
    assert_eq!(heartbeat(&mut c, &unknown).error_code, UNKNOWN_MEMBER_ID);

    // OffsetCommit with the member epoch; a stale one is refused.
    let errs = offset_commit(&mut c, 9, "g", m2.epoch, &m2.id, &[("in", 0, 5)]);
    assert_eq!(errs, vec![NONE]);
    let errs = offset_commit(&mut c, 9, "g", m2.epoch - 1, &m2.id, &[("in", 0, 5)]);
    assert_eq!(errs, vec![STALE_MEMBER_EPOCH]);

    // ListGroups shows the type; DescribeGroups refuses a streams group.
    let l = c.call(5, &ListGroupsRequest::default());
    let g = l.groups.iter().find(|g| g.group_id.0.as_str() == "g");
    assert_eq!(g.map(|g| g.group_type.as_str()), Some("streams"));
    assert_eq!(g.map(|g| g.group_state.as_str()), Some("Stable"));
    let d = c.call(
        6,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("g"))]),
    );
    assert_eq!(d.groups[0].error_code, GROUP_ID_NOT_FOUND);

    // DeleteGroups: not while members remain.
    let del = |c: &mut Client| {
        c.call(
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("g"))]),
        )
        .results[0]
            .error_code
    };
    assert_eq!(del(&mut c), NON_EMPTY_GROUP);

    // m1 leaves: m2 takes everything.
    let mut leave = m1.request();
    leave.member_epoch = -1;
    let r = heartbeat(&mut c, &leave);
    assert_eq!((r.error_code, r.member_epoch), (NONE, -1));
    m2.beat(&mut c);
    assert_eq!(count(&m2.owned), 4);
    let mut leave = m2.request();
    leave.member_epoch = -1;
    assert_eq!(heartbeat(&mut c, &leave).error_code, NONE);
    assert_eq!(describe(&mut c, "g").group_state, "Empty");
    assert_eq!(del(&mut c), NONE);
    assert_eq!(describe(&mut c, "g").error_code, GROUP_ID_NOT_FOUND);
}

#[test]
fn request_rules_and_invalid_topologies() {
    let b = start();
    let mut c = b.client();
    let m = Member::new("rules", topology("rules", "src"));
    let mut r = m.request();
    r.topology = None;
    let resp = heartbeat(&mut c, &r);
    assert_eq!(resp.error_code, INVALID_REQUEST);
    assert_eq!(
        resp.error_message.as_deref(),
        Some("Topology must be non-null when (re-)joining.")
    );
    let mut r = m.request();
    r.rebalance_timeout_ms = -1;
    assert_eq!(
        heartbeat(&mut c, &r).error_message.as_deref(),
        Some("RebalanceTimeoutMs must be provided in first request.")
    );
    // Kafka-internal topics may not be in a topology.
    let m = Member::new("rules", topology("rules", "__consumer_offsets"));
    let resp = heartbeat(&mut c, &m.request());
    assert_eq!(resp.error_code, STREAMS_INVALID_TOPOLOGY);
    // A repartition topic nobody writes.
    create_topic(&mut c, "src", 1, &[]);
    let mut t = topology("loop", "src");
    t.subtopologies[0].repartition_sink_topics.clear();
    let m = Member::new("loop", t);
    let resp = heartbeat(&mut c, &m.request());
    assert_eq!(resp.error_code, STREAMS_INVALID_TOPOLOGY, "{resp:?}");
    // A heartbeat to a group that does not exist.
    let mut r = Member::new("nope", topology("nope", "src")).request();
    r.member_epoch = 3;
    r.topology = None;
    assert_eq!(heartbeat(&mut c, &r).error_code, GROUP_ID_NOT_FOUND);
    // An empty classic group (offsets only) becomes a streams group when a
    // member joins (Kafka 4.4); its offsets stay.
    crate::support::groups::commit_offsets(&mut c, "classic", &[("src", 0, 1)]);
    let resp = heartbeat(
        &mut c,
        &Member::new("classic", topology("classic", "src")).request(),
    );
    assert_eq!(resp.error_code, NONE, "{:?}", resp.error_message);
    assert_eq!(describe(&mut c, "classic").members.len(), 1);
}

#[test]
fn off_at_streams_version_zero() {
    let b = Broker::start(&["kastle.format.features=streams.version=0"]);
    find_coordinators(&b);
    let mut c = b.client();
    let m = Member::new("off", topology("off", "x"));
    assert_eq!(
        heartbeat(&mut c, &m.request()).error_code,
        UNSUPPORTED_VERSION
    );
    assert_eq!(describe(&mut c, "off").error_code, UNSUPPORTED_VERSION);
    let d = describe_at(&mut c, &["off"], true, 1).remove(0);
    assert_eq!(
        (d.error_code, d.topology_description_status, d.assignor_name),
        (UNSUPPORTED_VERSION, 0, None)
    );
    let r = heartbeat_at(&mut c, &m.request(), 1);
    assert_eq!(
        (r.error_code, r.acceptable_recovery_lag),
        (UNSUPPORTED_VERSION, -1)
    );
    // The update API too, without the plugin message (KafkaApis' check).
    let u = description_update(&mut c, "off", &m.id, 1);
    assert_eq!((u.error_code, u.error_message), (UNSUPPORTED_VERSION, None));
}

/// StreamsGroupHeartbeat v1 (KIP-1331): the int64 AcceptableRecoveryLag
/// from the group's `streams.acceptable.recovery.lag` (else 10000) and
/// TaskOffsetIntervalMs from its `streams.task.offset.interval.ms` (else
/// 60000); TopologyDescriptionRequired false (no plugin). At v0 the int32
/// lag is 0, as Kafka 4.4 sends it. Status is `[]`, never null; a leave
/// carries no intervals and lag -1.
#[test]
fn heartbeat_v1_recovery_lag_and_offset_interval() {
    let b = start();
    let mut c = b.client();
    create_topic(&mut c, "lag-in", 2, &[]);
    let mut m = Member::new("lag", topology("lag", "lag-in"));
    let r = heartbeat_at(&mut c, &m.request(), 1);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    assert_eq!(
        (
            r.acceptable_recovery_lag,
            r.task_offset_interval_ms,
            r.topology_description_required
        ),
        (10_000, 60_000, false)
    );
    m.epoch = r.member_epoch;
    // Until the internal topics exist and the tasks are assigned.
    for _ in 0..3 {
        m.beat(&mut c);
    }
    let r = m.beat(&mut c);
    assert_eq!(r.status, Some(Vec::new()), "v0: [] when no status");
    assert_eq!(
        (r.acceptable_recovery_lag_legacy, r.task_offset_interval_ms),
        (0, 60_000)
    );
    set_group_config(&mut c, "lag", "streams.acceptable.recovery.lag", "5");
    set_group_config(&mut c, "lag", "streams.task.offset.interval.ms", "20000");
    let r = heartbeat_at(&mut c, &m.request(), 1);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    assert_eq!(r.status, Some(Vec::new()), "v1: [] when no status");
    assert_eq!(
        (
            r.acceptable_recovery_lag,
            r.task_offset_interval_ms,
            r.heartbeat_interval_ms
        ),
        (5, 20_000, 5_000)
    );
    let r = heartbeat_at(&mut c, &m.request(), 0);
    assert_eq!(
        (r.acceptable_recovery_lag_legacy, r.task_offset_interval_ms),
        (0, 20_000)
    );
    // An error answer: lag -1, Status [].
    let mut unknown = m.request();
    unknown.member_id = "nobody".into();
    let r = heartbeat_at(&mut c, &unknown, 1);
    assert_eq!(
        (r.error_code, r.acceptable_recovery_lag, r.status),
        (UNKNOWN_MEMBER_ID, -1, Some(Vec::new()))
    );
    let mut leave = m.request();
    leave.member_epoch = -1;
    let r = heartbeat_at(&mut c, &leave, 1);
    assert_eq!(
        (
            r.error_code,
            r.member_epoch,
            r.acceptable_recovery_lag,
            r.task_offset_interval_ms,
            r.heartbeat_interval_ms,
            r.status
        ),
        (NONE, -1, -1, 0, 0, Some(Vec::new()))
    );
}

/// KAFKA-20744: a member without a client tag the group's
/// `streams.rack.aware.assignment.tags` names hears MISSING_CLIENT_TAGS
/// (6), from version 1 only; it keeps its assignment.
#[test]
fn missing_client_tags_only_from_v1() {
    let b = start();
    let mut c = b.client();
    create_topic(&mut c, "tags-in", 1, &[]);
    set_group_config(
        &mut c,
        "tags",
        "streams.rack.aware.assignment.tags",
        "zone,rack",
    );
    let m = Member::new("tags", topology("tags", "tags-in"));
    let mut req = m.request();
    req.client_tags = Some(vec![KeyValue {
        key: "zone".into(),
        value: "a".into(),
    }]);
    let r = heartbeat_at(&mut c, &req, 1);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    let want = "Missing required client tags for rack-aware standby assignment: [rack]. \
                Configure them via 'client.tag.<tagKey>' in your Streams config.";
    assert_eq!(statuses(&r).last(), Some(&status::MISSING_CLIENT_TAGS));
    assert_eq!(status_details(&r).last().map(String::as_str), Some(want));
    let mut next = req.clone();
    next.member_epoch = r.member_epoch;
    next.topology = None;
    next.rebalance_timeout_ms = -1;
    next.process_id = None;
    next.client_tags = None;
    let r = heartbeat_at(&mut c, &next, 0);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    assert!(
        !statuses(&r).contains(&status::MISSING_CLIENT_TAGS),
        "{r:?}"
    );
    next.member_epoch = r.member_epoch;
    let r = heartbeat_at(&mut c, &next, 1);
    assert_eq!(statuses(&r).last(), Some(&status::MISSING_CLIENT_TAGS));
    // Neither tag: both, in the configured order.
    next.member_epoch = r.member_epoch;
    next.client_tags = Some(Vec::new());
    let r = heartbeat_at(&mut c, &next, 1);
    assert!(
        status_details(&r)
            .iter()
            .any(|d| d.contains(": [zone, rack].")),
        "{r:?}"
    );
    // Every tag: no status 6.
    next.member_epoch = r.member_epoch;
    next.client_tags = Some(
        ["zone", "rack"]
            .iter()
            .map(|k| KeyValue {
                key: k.to_string(),
                value: "x".into(),
            })
            .collect(),
    );
    let r = heartbeat_at(&mut c, &next, 1);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    assert!(
        !statuses(&r).contains(&status::MISSING_CLIENT_TAGS),
        "{r:?}"
    );
}

/// StreamsGroupDescribe v1: AssignorName "sticky" for a found group, null
/// for an error entry; TopologyDescriptionStatus 0 (not requested) or, when
/// requested, 1 (NOT_STORED: no plugin stores one), never a description.
/// Version 0 writes none of the three fields.
#[test]
fn describe_v1_assignor_and_description_status() {
    let b = start();
    let mut c = b.client();
    create_topic(&mut c, "dv-in", 1, &[]);
    let mut m = Member::new("dv", topology("dv", "dv-in"));
    m.beat(&mut c);
    let d = describe_at(&mut c, &["dv", "dv-missing"], false, 1);
    assert_eq!(
        (
            d[0].error_code,
            d[0].topology_description_status,
            d[0].assignor_name.as_deref()
        ),
        (NONE, 0, Some("sticky"))
    );
    assert_eq!(
        (
            d[1].error_code,
            d[1].topology_description_status,
            d[1].assignor_name.as_deref()
        ),
        (GROUP_ID_NOT_FOUND, 0, None)
    );
    let d = describe_at(&mut c, &["dv", "dv-missing"], true, 1);
    assert_eq!(
        (
            d[0].topology_description_status,
            d[0].topology_description.is_none()
        ),
        (description_status::NOT_STORED, true)
    );
    assert_eq!(d[0].assignor_name.as_deref(), Some("sticky"));
    assert_eq!(
        (d[1].error_code, d[1].topology_description_status),
        (GROUP_ID_NOT_FOUND, 0)
    );
    // v0: the answer decodes at v0 to its last byte (no v1 fields).
    let d = describe_at(&mut c, &["dv"], false, 0);
    assert_eq!(
        (d[0].error_code, d[0].assignor_name.as_deref()),
        (NONE, None)
    );
}

/// StreamsGroupTopologyDescriptionUpdate (93) without a description plugin
/// (Kafka 4.4's default): UNSUPPORTED_VERSION with Kafka's message, before
/// the group, member, epoch or member id are looked at.
#[test]
fn topology_description_update_without_plugin() {
    let b = start();
    let mut c = b.client();
    create_topic(&mut c, "up-in", 1, &[]);
    let mut m = Member::new("up", topology("up", "up-in"));
    m.beat(&mut c);
    for (group, member, epoch) in [
        ("up", m.id.as_str(), 1),
        ("up", "nobody", 1),
        ("up", "", 1),
        ("up", m.id.as_str(), 7),
        ("up-missing", "x", 1),
        ("", "x", 1),
    ] {
        let u = description_update(&mut c, group, member, epoch);
        assert_eq!(
            (u.error_code, u.error_message.as_deref()),
            (UNSUPPORTED_VERSION, Some(NO_PLUGIN)),
            "{group:?} {member:?} {epoch}"
        );
    }
    // The connection is still usable (the request was answered, not
    // dropped as an unknown key).
    assert_eq!(describe(&mut c, "up").error_code, NONE);
}

/// StreamsGroupTopologyDescriptionUpdate needs READ on the group (Kafka's
/// `KafkaApis`): without it GROUP_AUTHORIZATION_FAILED, no message.
#[test]
fn topology_description_update_needs_group_read() {
    use crate::acls::{create_acls, creation};
    let mut b = Broker::start(&[
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:ANONYMOUS",
    ]);
    let mut c = b.client();
    // GROUP READ (3) on the literal (3) group "granted", allowed (3).
    let r = create_acls(
        &mut c,
        vec![creation(3, "granted", 3, "User:ANONYMOUS", 3, 3)],
    );
    assert!(r.iter().all(|x| x.0 == NONE), "{r:?}");
    b.stop();
    b.restart_with(&["super.users="]);
    let mut c = b.client();
    let u = description_update(&mut c, "denied", "m", 1);
    assert_eq!(
        (u.error_code, u.error_message),
        (GROUP_AUTHORIZATION_FAILED, None)
    );
    let u = description_update(&mut c, "granted", "m", 1);
    assert_eq!(
        (u.error_code, u.error_message.as_deref()),
        (UNSUPPORTED_VERSION, Some(NO_PLUGIN))
    );
}

/// The group's records are in `__consumer_offsets`: after a restart the
/// group has its epochs, topology and assignment, and its members carry on
/// heartbeating with their epochs (Kafka's replay of the StreamsGroup*
/// records). Then a member's leave and the group's deletion are durable too.
#[test]
fn group_survives_a_restart() {
    let mut b = start();
    let mut c = b.client();
    create_topic(&mut c, "rs-in", 2, &[]);
    let mut m1 = Member::new("rs", topology("rs", "rs-in"));
    let mut m2 = Member::new("rs", topology("rs", "rs-in"));
    for _ in 0..4 {
        m1.beat(&mut c);
        m2.beat(&mut c);
    }
    assert_eq!(count(&m1.owned) + count(&m2.owned), 4);
    let before = describe(&mut c, "rs");
    assert_eq!(before.group_state, "Stable");
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();

    let after = describe(&mut c, "rs");
    assert_eq!(after.error_code, NONE, "{:?}", after.error_message);
    assert_eq!(after.group_state, "Stable");
    assert_eq!(after.group_epoch, before.group_epoch);
    assert_eq!(after.assignment_epoch, before.assignment_epoch);
    assert_eq!(after.topology, before.topology);
    let view = |d: &DescribedGroup| -> BTreeMap<String, (i32, Tasks, String)> {
        d.members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    (
                        m.member_epoch,
                        tasks(&m.assignment.active_tasks),
                        m.process_id.clone(),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(view(&after), view(&before));

    // The members heartbeat on with their epochs and keep their tasks.
    let (e1, owned1) = (m1.epoch, m1.owned.clone());
    let r = m1.beat(&mut c);
    assert_eq!(r.member_epoch, e1);
    assert_eq!(m1.owned, owned1);
    let e2 = m2.epoch;
    assert_eq!(m2.beat(&mut c).member_epoch, e2);
    // OffsetCommit checks the epoch the log gave back.
    let errs = offset_commit(&mut c, 9, "rs", m1.epoch, &m1.id, &[("rs-in", 0, 7)]);
    assert_eq!(errs, vec![NONE]);

    // m2 leaves; both gone, the group is deleted: so it stays after
    // another restart.
    let mut leave = m2.request();
    leave.member_epoch = -1;
    assert_eq!(heartbeat(&mut c, &leave).error_code, NONE);
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    let d = describe(&mut c, "rs");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id, m1.id);
    let mut leave = m1.request();
    leave.member_epoch = -1;
    assert_eq!(heartbeat(&mut c, &leave).error_code, NONE);
    let del = c.call(
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("rs"))]),
    );
    assert_eq!(del.results[0].error_code, NONE);
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    assert_eq!(describe(&mut c, "rs").error_code, GROUP_ID_NOT_FOUND);
}

/// Kafka 4.4's rules between group types: a classic JoinGroup on a live
/// streams group is INCONSISTENT_GROUP_PROTOCOL, on an empty one converts
/// it; ConsumerGroupHeartbeat on a streams group and StreamsGroupHeartbeat
/// on a consumer group or a live classic group are GROUP_ID_NOT_FOUND.
#[test]
fn group_type_conflicts() {
    use crate::support::groups::{join, Joiner};
    let b = Broker::start(&[
        "offsets.topic.num.partitions=1",
        "group.initial.rebalance.delay.ms=0",
        "group.streams.initial.rebalance.delay.ms=0",
        "group.streams.assignment.interval.ms=0",
    ]);
    find_coordinators(&b);
    let mut c = b.client();
    create_topic(&mut c, "gt-in", 1, &[]);
    let mut m = Member::new("gt", topology("gt", "gt-in"));
    m.beat(&mut c);

    let mut j = Joiner::new("gt", b"meta");
    let r = join(&mut c, &mut j);
    assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(r.member_id.as_str(), "");
    let cg = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb("gt")))
        .with_member_id(sb(&uuid::Uuid::new_v4().to_string()))
        .with_rebalance_timeout_ms(5000)
        .with_subscribed_topic_names(Some(vec![tn("gt-in")]))
        .with_topic_partitions(Some(vec![]));
    let r = c.call(0, &cg);
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND);
    assert_eq!(
        r.error_message.map(|s| s.to_string()).as_deref(),
        Some("Group gt is not a consumer group.")
    );

    // A consumer group's id is not a streams group's.
    let r = c.call(0, &cg.clone().with_group_id(GroupId(sb("gt-cg"))));
    assert_eq!(r.error_code, NONE);
    let r = heartbeat(
        &mut c,
        &Member::new("gt-cg", topology("gt-cg", "gt-in")).request(),
    );
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND);
    assert_eq!(
        r.error_message.as_deref(),
        Some("Group gt-cg is not a streams group.")
    );
    // Nor is a classic group with members.
    let mut j = Joiner::new("gt-classic", b"meta");
    assert_eq!(join(&mut c, &mut j).error_code, NONE);
    let r = heartbeat(
        &mut c,
        &Member::new("gt-classic", topology("gt-classic", "gt-in")).request(),
    );
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND);

    // Once the streams group is empty, a classic member takes the id over.
    let mut leave = m.request();
    leave.member_epoch = -1;
    assert_eq!(heartbeat(&mut c, &leave).error_code, NONE);
    let mut j = Joiner::new("gt", b"meta");
    assert_eq!(join(&mut c, &mut j).error_code, NONE);
    assert_eq!(describe(&mut c, "gt").error_code, GROUP_ID_NOT_FOUND);
}

fn status_details(r: &StreamsGroupHeartbeatResponse) -> Vec<String> {
    r.status
        .iter()
        .flatten()
        .map(|s| s.status_detail.clone())
        .collect()
}

/// Kafka 4.4's initial rebalance delay and assignment interval: the first
/// member of a new group reconciles to epoch 1 with no tasks and
/// ASSIGNMENT_DELAYED until `group.streams.initial.rebalance.delay.ms`
/// ends; the coordinator's timer then computes the target (describe shows
/// it without a heartbeat) and members joining meanwhile share it. A
/// member joining later waits out `group.streams.assignment.interval.ms`
/// after the last target. The group config
/// `streams.initial.rebalance.delay.ms` overrides the broker's.
#[test]
fn initial_rebalance_delay_and_assignment_interval() {
    let b = Broker::start(&[
        "offsets.topic.num.partitions=1",
        "group.streams.initial.rebalance.delay.ms=1200",
        "group.streams.assignment.interval.ms=1500",
    ]);
    find_coordinators(&b);
    let mut c = b.client();
    create_topic(&mut c, "dl-in", 4, &[]);
    // The internal topics first, so the only status is the delay's.
    let mut m1 = Member::new("dl", topology("dl", "dl-in"));
    let started = std::time::Instant::now();
    let r = m1.beat(&mut c);
    let _ = m1.beat(&mut c);
    assert!(partitions_of(&mut c, "dl-counts-changelog").is_some());
    let initial = "Assignment delayed due to the configured initial rebalance delay.";
    assert!(statuses(&r).contains(&status::ASSIGNMENT_DELAYED), "{r:?}");
    assert!(status_details(&r).iter().any(|d| d == initial));
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.active_tasks.as_ref().map(Vec::len), Some(0));
    let mut m2 = Member::new("dl", topology("dl", "dl-in"));
    let r = m2.beat(&mut c);
    assert_eq!(statuses(&r), vec![status::ASSIGNMENT_DELAYED]);
    assert_eq!(status_details(&r), vec![initial.to_string()]);
    let d = describe(&mut c, "dl");
    assert_eq!(d.group_state, "Assigning");
    assert_eq!(d.assignment_epoch, 1);
    assert!(d
        .members
        .iter()
        .all(|m| m.member_epoch == 1 && m.assignment.active_tasks.is_empty()));
    assert!(
        started.elapsed().as_millis() < 1200,
        "the test ran too slowly"
    );

    // The timer computes the target when the delay ends, heartbeat or not.
    std::thread::sleep(std::time::Duration::from_millis(1300));
    let d = describe(&mut c, "dl");
    assert_eq!(d.assignment_epoch, d.group_epoch);
    let target: usize = d
        .members
        .iter()
        .map(|m| count(&tasks(&m.target_assignment.active_tasks)))
        .sum();
    assert_eq!(target, 8, "{d:?}");
    let r1 = m1.beat(&mut c);
    let r2 = m2.beat(&mut c);
    assert!(statuses(&r1).is_empty() && statuses(&r2).is_empty());
    assert_eq!((count(&m1.owned), count(&m2.owned)), (4, 4));

    // A third member within the assignment interval: delayed, no tasks.
    let mut m3 = Member::new("dl", topology("dl", "dl-in"));
    let r = m3.beat(&mut c);
    assert_eq!(statuses(&r), vec![status::ASSIGNMENT_DELAYED]);
    assert_eq!(
        status_details(&r),
        vec!["Assignment delayed due to the configured assignment interval.".to_string()]
    );
    assert!(m3.owned.is_empty());
    // After it, the next heartbeat computes the new target.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let r = m3.beat(&mut c);
    assert!(statuses(&r).is_empty(), "{r:?}");
    let d = describe(&mut c, "dl");
    assert_eq!(d.assignment_epoch, d.group_epoch);
    assert!(d
        .members
        .iter()
        .all(|m| !m.target_assignment.active_tasks.is_empty()));

    // The group config overrides the broker's delay: 0 assigns at once.
    set_group_config(&mut c, "dl0", "streams.initial.rebalance.delay.ms", "0");
    let mut m = Member::new("dl0", topology("dl", "dl-in"));
    let r = m.beat(&mut c);
    assert!(!statuses(&r).contains(&status::ASSIGNMENT_DELAYED), "{r:?}");
    assert_eq!(count(&m.owned), 8);
}

/// One stateful subtopology (a store with a changelog) reading `input`.
fn stateful_topology(app: &str, input: &str) -> Topology {
    Topology {
        epoch: 1,
        subtopologies: vec![Subtopology {
            subtopology_id: "0".into(),
            source_topics: vec![input.into()],
            state_changelog_topics: vec![info(
                &format!("{app}-store-changelog"),
                &[("cleanup.policy", "compact")],
            )],
            ..Subtopology::default()
        }],
    }
}

/// Standby tasks (Kafka 4.4's `streams.num.standby.replicas`, here the
/// group's config): with one replica each member keeps the state of the
/// other's active tasks, moves there through revocation (a demoted active
/// task becomes a standby at once), is told where (heartbeat, describe,
/// the endpoint-to-partitions map), and keeps it across a restart (the
/// target and current assignment records). Back at zero replicas, the
/// standbys are revoked.
#[test]
fn standby_tasks_on_the_other_member_and_after_a_restart() {
    let mut b = start();
    let mut c = b.client();
    create_topic(&mut c, "sb-in", 4, &[]);
    set_group_config(&mut c, "sb", "streams.num.standby.replicas", "1");
    let mut m1 = Member::new("sb", stateful_topology("sb", "sb-in"));
    m1.endpoint = Some(Endpoint {
        host: "m1.example".into(),
        port: 7001,
    });
    for _ in 0..3 {
        m1.beat(&mut c);
    }
    // One process: no other place for a standby.
    assert_eq!(count(&m1.owned), 4);
    assert!(m1.standby.is_empty(), "{:?}", m1.standby);

    let mut m2 = Member::new("sb", stateful_topology("sb", "sb-in"));
    let mut last = m1.beat(&mut c);
    for _ in 0..4 {
        m2.beat(&mut c);
        last = m1.beat(&mut c);
    }
    assert_eq!(count(&m1.owned), 2, "{:?}", m1.owned);
    assert_eq!(count(&m2.owned), 2, "{:?}", m2.owned);
    assert_eq!(m1.standby, m2.owned, "m1 keeps m2's tasks' state");
    assert_eq!(m2.standby, m1.owned, "m2 keeps m1's tasks' state");
    let d = describe(&mut c, "sb");
    assert_eq!(d.group_state, "Stable");
    for m in [&m1, &m2] {
        let dm = d
            .members
            .iter()
            .find(|x| x.member_id == m.id)
            .expect("member described");
        assert_eq!(tasks(&dm.assignment.standby_tasks), m.standby);
        assert_eq!(tasks(&dm.target_assignment.standby_tasks), m.standby);
        assert_eq!(tasks(&dm.target_assignment.active_tasks), m.owned);
        assert!(dm.assignment.warmup_tasks.is_empty());
    }
    // Interactive Queries: m1's endpoint serves its standbys' partitions.
    let eps = last.partitions_by_user_endpoint.expect("endpoint map");
    let e1 = eps
        .iter()
        .find(|e| e.user_endpoint.port == 7001)
        .expect("m1's endpoint");
    let standby_parts: BTreeSet<i32> = m1.standby["0"].clone();
    assert_eq!(
        e1.standby_partitions
            .iter()
            .map(|t| (t.topic.clone(), t.partitions.iter().copied().collect()))
            .collect::<Vec<(String, BTreeSet<i32>)>>(),
        vec![("sb-in".to_string(), standby_parts)]
    );

    // The standbys are in the group's records.
    let view = |d: &DescribedGroup| -> BTreeMap<String, (Tasks, Tasks, Tasks)> {
        d.members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    (
                        tasks(&m.assignment.active_tasks),
                        tasks(&m.assignment.standby_tasks),
                        tasks(&m.target_assignment.standby_tasks),
                    ),
                )
            })
            .collect()
    };
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    let after = describe(&mut c, "sb");
    assert_eq!(after.error_code, NONE, "{:?}", after.error_message);
    assert_eq!(view(&after), view(&d));
    assert_eq!(after.group_epoch, d.group_epoch);
    let e = m1.epoch;
    assert_eq!(
        m1.beat(&mut c).member_epoch,
        e,
        "no new epoch after the replay"
    );

    // Zero replicas: a new target without standbys; each member gives its
    // standbys up before it moves on.
    set_group_config(&mut c, "sb", "streams.num.standby.replicas", "0");
    for _ in 0..3 {
        m1.beat(&mut c);
        m2.beat(&mut c);
    }
    assert!(m1.standby.is_empty() && m2.standby.is_empty());
    assert!(m1.epoch > e);
    assert_eq!(count(&m1.owned) + count(&m2.owned), 4);
    assert_eq!(describe(&mut c, "sb").group_state, "Stable");
}
