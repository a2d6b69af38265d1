//! KIP-932 share groups over the raw protocol: ShareGroupHeartbeat (join,
//! assignment of a partition to every member, leave, Kafka's validation
//! messages, the group-id namespace shared with consumer groups),
//! ShareGroupDescribe, ShareFetch share sessions and their errors (Kafka's
//! group and member id checks), acquisition (one member at a time),
//! ACCEPT/RELEASE/REJECT, acknowledgements validated before TOPIC READ,
//! the acquisition lock timeout and the delivery count limit, a closed
//! connection's share session ending with it; targets over
//! initialized partitions only, computed once per assignment interval
//! (KIP-1251).

use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as E;
use uuid::Uuid;

use crate::acls::{create_acls, creation};
use crate::support::groups::set_group_config;
use crate::support::produce::produce_ok;
use crate::support::share::{
    ack_errors, acknowledge, acquired, fetch_waiting, Ack, ACCEPT, REJECT, RELEASE,
};
use crate::support::simple_batch;
use crate::support::topics::create_topic;
use crate::support::{
    find_coordinators, frame_with_header, sb, skip_tagged_fields, tn, Broker, Client, NONE,
};

fn start() -> Broker {
    let b = Broker::start(&[
        "group.share.min.record.lock.duration.ms=1000",
        "group.share.record.lock.duration.ms=1000",
        "group.share.delivery.count.limit=2",
        "group.share.min.delivery.count.limit=2",
        // Targets at every heartbeat here (KIP-1251's batching has its own
        // test).
        "group.share.assignment.interval.ms=0",
    ]);
    find_coordinators(&b);
    b
}

fn hb(
    group: &str,
    member: &str,
    epoch: i32,
    topics: Option<&[&str]>,
) -> ShareGroupHeartbeatRequest {
    ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_member_epoch(epoch)
        .with_subscribed_topic_names(topics.map(|t| t.iter().map(|n| tn(n)).collect()))
}

fn beat(c: &mut Client, r: &ShareGroupHeartbeatRequest) -> ShareGroupHeartbeatResponse {
    c.call(1, r)
}

/// A v1 ShareFetch of partition 0 of `topic` that waits up to 200 ms,
/// with optional acknowledgements.
fn fetch(
    c: &mut Client,
    group: &str,
    member: &str,
    epoch: i32,
    topic: Uuid,
    acks: Vec<Ack>,
) -> ShareFetchResponse {
    fetch_waiting(c, group, member, epoch, topic, &acks)
}

/// The first acknowledgement error of the answer (0 when none); the answer
/// must have no top-level error and at least one partition.
fn ack_error(r: &ShareFetchResponse) -> i16 {
    assert_eq!(r.error_code, NONE, "top-level error: {r:?}");
    assert!(!ack_errors(r).is_empty(), "no partition answered: {r:?}");
    ack_errors(r)
        .into_iter()
        .map(|(_, code)| code)
        .find(|c| *c != 0)
        .unwrap_or(0)
}

fn set_earliest(c: &mut Client, group: &str) {
    set_group_config(c, group, "share.auto.offset.reset", "earliest");
}

#[test]
fn heartbeat_rules_and_assignment() {
    let b = start();
    let mut c = b.client();
    let id = create_topic(&mut c, "st", 1, &[]);
    let invalid = E::InvalidRequest.code();
    // Kafka 4.4's KafkaApis refuses a member id it would not take (empty
    // or over 36 characters) without a message, before the coordinator.
    for member in [String::new(), "m".repeat(37)] {
        let r = beat(&mut c, &hb("g", &member, 0, Some(&["st"])));
        assert_eq!((r.error_code, r.error_message), (invalid, None));
    }
    for (req, msg) in [
        (hb("", "m", 0, Some(&["st"])), "GroupId can't be empty."),
        (
            hb("g", "m", 0, None),
            "SubscribedTopicNames must be set in first request.",
        ),
        (hb("g", "m", -2, None), "MemberEpoch is invalid."),
    ] {
        let r = beat(&mut c, &req);
        assert_eq!(
            (r.error_code, r.error_message.as_deref()),
            (invalid, Some(msg))
        );
    }
    let r = beat(&mut c, &hb("g", "m", 3, None));
    assert_eq!(r.error_code, E::GroupIdNotFound.code());
    // Two members share the one partition (none is assigned before its
    // share state is initialized, after the first heartbeat).
    let a = beat(&mut c, &hb("g", "a", 0, Some(&["st"])));
    assert_eq!((a.error_code, a.member_epoch), (NONE, 1));
    assert_eq!(
        a.assignment.map(|x| x.topic_partitions.len()),
        Some(0),
        "nothing initialized yet"
    );
    let bm = beat(&mut c, &hb("g", "b", 0, Some(&["st"])));
    assert_eq!(bm.member_epoch, 2);
    let tps = &bm.assignment.as_ref().expect("assignment").topic_partitions;
    assert_eq!((tps[0].topic_id, tps[0].partitions.clone()), (id, vec![0]));
    let a2 = beat(&mut c, &hb("g", "a", 1, None));
    assert_eq!(a2.member_epoch, 2);
    assert_eq!(
        beat(&mut c, &hb("g", "a", 9, None)).error_code,
        E::FencedMemberEpoch.code()
    );
    assert_eq!(
        beat(&mut c, &hb("g", "zz", 2, None)).error_code,
        E::UnknownMemberId.code()
    );
    // Describe.
    let d: ShareGroupDescribeResponse = c.call(
        1,
        &ShareGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(sb("g")), GroupId(sb("nope"))]),
    );
    let g = &d.groups[0];
    assert_eq!(
        (g.error_code, g.group_state.as_str(), g.group_epoch),
        (NONE, "Stable", 2)
    );
    assert_eq!(g.members.len(), 2);
    assert_eq!(
        g.members[0].assignment.topic_partitions[0]
            .topic_name
            .0
            .as_str(),
        "st"
    );
    assert_eq!(d.groups[1].error_code, E::GroupIdNotFound.code());
    // Leave.
    let l = beat(&mut c, &hb("g", "a", -1, None));
    assert_eq!((l.error_code, l.member_epoch), (NONE, -1));
    // One group-id namespace: a consumer group's id is not a share group's,
    // and a share group's is not a consumer group's.
    let cg: ConsumerGroupHeartbeatResponse = c.call(
        1,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_member_id(sb("x"))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(5000)
            .with_subscribed_topic_names(Some(vec![tn("st")]))
            .with_topic_partitions(Some(vec![])),
    );
    assert_eq!(cg.error_code, E::GroupIdNotFound.code());
    let lg: ListGroupsResponse = c.call(
        5,
        &ListGroupsRequest::default().with_types_filter(vec![sb("share")]),
    );
    assert_eq!(lg.groups.len(), 1);
    assert_eq!(
        (
            lg.groups[0].group_id.0.as_str(),
            lg.groups[0].group_type.as_str()
        ),
        ("g", "share")
    );
}

/// The partitions of a heartbeat's assignment (None: not sent).
fn assigned(r: &ShareGroupHeartbeatResponse) -> Option<Vec<i32>> {
    r.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect()
    })
}

fn describe_epochs(c: &mut Client, group: &str) -> (i32, i32) {
    let d: ShareGroupDescribeResponse = c.call(
        1,
        &ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(sb(group))]),
    );
    (d.groups[0].group_epoch, d.groups[0].assignment_epoch)
}

#[test]
fn assignments_are_batched_by_the_assignment_interval() {
    let b = Broker::start(&["group.share.assignment.interval.ms=1500"]);
    find_coordinators(&b);
    let mut c = b.client();
    create_topic(&mut c, "sb", 2, &[]);
    // The first target is computed at once, before the topic's share
    // state is initialized: epoch 1, nothing assigned.
    let a = beat(&mut c, &hb("sb-g", "a", 0, Some(&["sb"])));
    let computed = Instant::now();
    assert_eq!((a.error_code, a.member_epoch), (NONE, 1));
    assert_eq!(assigned(&a), Some(vec![]));
    // Now initialized, the partitions bump the group epoch; the target
    // waits for the interval.
    let a = beat(&mut c, &hb("sb-g", "a", 1, None));
    assert_eq!(
        (a.error_code, a.member_epoch, assigned(&a)),
        (NONE, 1, None)
    );
    assert_eq!(describe_epochs(&mut c, "sb-g"), (2, 1));
    assert!(
        computed.elapsed() < Duration::from_millis(1500),
        "the machine was too slow to check the interval"
    );
    thread::sleep(Duration::from_millis(1500).saturating_sub(computed.elapsed()));
    let a = beat(&mut c, &hb("sb-g", "a", 1, None));
    assert_eq!((a.member_epoch, assigned(&a)), (2, Some(vec![0, 1])));
    assert_eq!(describe_epochs(&mut c, "sb-g"), (2, 2));

    // The group config overrides the broker's interval.
    set_group_config(&mut c, "sb-h", "share.assignment.interval.ms", "0");
    let h = beat(&mut c, &hb("sb-h", "h", 0, Some(&["sb"])));
    assert_eq!((h.member_epoch, assigned(&h)), (1, Some(vec![])));
    let h = beat(&mut c, &hb("sb-h", "h", 1, None));
    assert_eq!((h.member_epoch, assigned(&h)), (2, Some(vec![0, 1])));
}

#[test]
fn share_sessions_acquisition_and_acknowledgements() {
    let b = start();
    let mut c = b.client();
    let id = create_topic(&mut c, "sf", 1, &[]);
    set_earliest(&mut c, "sg");
    for i in 0..2 {
        produce_ok(&mut c, "sf", 0, &simple_batch(5, 10, 1, i));
    }
    // Session errors.
    assert_eq!(
        fetch(&mut c, "sg", "a", 1, id, vec![]).error_code,
        E::ShareSessionNotFound.code()
    );
    assert_eq!(
        fetch(&mut c, "sg", "a", 0, id, vec![(0, 0, 1)]).error_code,
        E::InvalidRequest.code()
    );
    // Kafka's isMemberIdValid (set, not empty, at most 36 characters) and
    // a group id, before any session: the request's INVALID_REQUEST.
    let too_long = "m".repeat(37);
    for member in ["", too_long.as_str()] {
        let r = fetch(&mut c, "sg", member, 0, id, vec![]);
        assert_eq!(r.error_code, E::InvalidRequest.code(), "{member:?}");
        let (err, _, _) = acknowledge(&mut c, 1, ("sg", member, 1), id, &[(0, 0, ACCEPT)], false);
        assert_eq!(err, E::InvalidRequest.code(), "{member:?}");
    }
    let no_group: ShareFetchResponse = c.call(
        1,
        &ShareFetchRequest::default()
            .with_member_id(Some(sb("a")))
            .with_max_bytes(1 << 20),
    );
    assert_eq!(no_group.error_code, E::InvalidRequest.code());
    // a opens a session and acquires all ten records.
    let r = fetch(&mut c, "sg", "a", 0, id, vec![]);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.acquisition_lock_timeout_ms, 1000);
    assert_eq!(acquired(&r), vec![(0, 9, 1)]);
    assert_eq!(
        fetch(&mut c, "sg", "a", 5, id, vec![]).error_code,
        E::InvalidShareSessionEpoch.code()
    );
    // b gets nothing while a holds them.
    assert!(acquired(&fetch(&mut c, "sg", "b", 0, id, vec![])).is_empty());
    // b may not acknowledge a's records.
    let r = fetch(&mut c, "sg", "b", 1, id, vec![(0, 0, 1)]);
    assert_eq!(ack_error(&r), E::InvalidRecordState.code());
    // a accepts 0-3, releases 4-5, rejects 6-9.
    let (err, _, _) = acknowledge(&mut c, 1, ("sg", "a", 0), id, &[(0, 3, ACCEPT)], false);
    assert_eq!(err, E::InvalidShareSessionEpoch.code());
    let batches = [(0, 3, ACCEPT), (4, 5, RELEASE), (6, 9, REJECT)];
    let r = acknowledge(&mut c, 1, ("sg", "a", 1), id, &batches, false);
    assert_eq!(r, (NONE, None, vec![NONE]));
    // A partition the topic lacks (Kafka's metadataCache.contains).
    let r: ShareAcknowledgeResponse = c.call(
        1,
        &ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(sb("sg"))))
            .with_member_id(Some(sb("a")))
            .with_share_session_epoch(2)
            .with_topics(vec![share_acknowledge_request::AcknowledgeTopic::default()
                .with_topic_id(id)
                .with_partitions(vec![
                    share_acknowledge_request::AcknowledgePartition::default()
                        .with_partition_index(5)
                        .with_acknowledgement_batches(vec![
                            share_acknowledge_request::AcknowledgementBatch::default()
                                .with_last_offset(0)
                                .with_acknowledge_types(vec![ACCEPT]),
                        ]),
                ])]),
    );
    let code = r.responses[0].partitions[0].error_code;
    assert_eq!(code, E::UnknownTopicOrPartition.code());
    // The released records go to b with delivery count 2; the rejected
    // ones to nobody.
    let r = fetch(&mut c, "sg", "b", 2, id, vec![]);
    assert_eq!(acquired(&r), vec![(4, 5, 2)]);
    // b's lock times out: at the delivery limit (2) they are archived.
    std::thread::sleep(Duration::from_millis(1100));
    let r = fetch(&mut c, "sg", "b", 3, id, vec![]);
    assert!(acquired(&r).is_empty(), "{r:?}");
    // New records still flow; a session closed with the final epoch
    // releases what its member held.
    produce_ok(&mut c, "sf", 0, &simple_batch(2, 10, 1, 9));
    assert_eq!(
        acquired(&fetch(&mut c, "sg", "a", 3, id, vec![])),
        vec![(10, 11, 1)]
    );
    let r = fetch(&mut c, "sg", "a", -1, id, vec![]);
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        acquired(&fetch(&mut c, "sg", "b", 4, id, vec![])),
        vec![(10, 11, 2)]
    );
}

#[test]
fn share_version_zero_turns_the_apis_off() {
    let b = Broker::start(&["kastle.format.features=share.version=0"]);
    find_coordinators(&b);
    let mut c = b.client();
    let r = beat(&mut c, &hb("g", "m", 0, Some(&["t"])));
    assert_eq!(r.error_code, E::UnsupportedVersion.code());
    let r = fetch(&mut c, "g", "m", 0, Uuid::new_v4(), vec![]);
    assert_eq!(r.error_code, E::UnsupportedVersion.code());
}

/// `__share_group_state`: what was acknowledged stays acknowledged across
/// a crash (the acknowledgement was answered once durable), released
/// records keep their delivery counts, acquired-but-unacknowledged ones
/// come back as never delivered, and a share partition's start offset
/// (here from `latest`) is kept rather than reset.
#[test]
fn share_state_survives_a_restart() {
    let mut b = start();
    let mut c = b.client();
    let id = create_topic(&mut c, "sr", 1, &[]);
    set_earliest(&mut c, "sg");
    produce_ok(&mut c, "sr", 0, &simple_batch(10, 10, 1, 0));
    assert_eq!(
        acquired(&fetch(&mut c, "sg", "a", 0, id, vec![])),
        vec![(0, 9, 1)]
    );
    // Accept 0-3, release 4-5, reject 6-7; 8-9 stay acquired.
    let r = fetch(
        &mut c,
        "sg",
        "a",
        1,
        id,
        vec![(0, 3, 1), (4, 5, 2), (6, 7, 3)],
    );
    assert_eq!(ack_error(&r), NONE, "{r:?}");
    // A group on `latest` starts at the end (10) on its first fetch.
    assert!(acquired(&fetch(&mut c, "lg", "m", 0, id, vec![])).is_empty());
    b.kill();
    b.restart();
    let mut c = b.client();
    produce_ok(&mut c, "sr", 0, &simple_batch(2, 10, 1, 1));
    assert_eq!(
        acquired(&fetch(&mut c, "sg", "n", 0, id, vec![])),
        vec![(4, 5, 2), (8, 11, 1)],
        "accepted and rejected records are not delivered again"
    );
    assert_eq!(
        acquired(&fetch(&mut c, "lg", "m", 0, id, vec![])),
        vec![(10, 11, 1)],
        "the start offset `latest` chose survives"
    );
    // The state is Kafka's ShareSnapshot/ShareUpdate records.
    assert!(b.partition_dir("__share_group_state", 0).exists());
}

fn describe_offsets(
    c: &mut Client,
    group: &str,
    topics: Option<&[(&str, i32)]>,
) -> DescribeShareGroupOffsetsResponse {
    use kafka_protocol::messages::describe_share_group_offsets_request::*;
    c.call(
        0,
        &DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(sb(group)))
                .with_topics(topics.map(|ts| {
                    ts.iter()
                        .map(|(t, p)| {
                            DescribeShareGroupOffsetsRequestTopic::default()
                                .with_topic_name(tn(t))
                                .with_partitions(vec![*p])
                        })
                        .collect()
                })),
        ]),
    )
}

/// (topic, partition, start offset, error) of a describe's one group.
fn described_offsets(r: &DescribeShareGroupOffsetsResponse) -> Vec<(String, i32, i64, i16)> {
    r.groups[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    t.topic_name.0.to_string(),
                    p.partition_index,
                    p.start_offset,
                    p.error_code,
                )
            })
        })
        .collect()
}

fn alter_offsets(
    c: &mut Client,
    group: &str,
    topic: &str,
    parts: &[(i32, i64)],
) -> AlterShareGroupOffsetsResponse {
    use kafka_protocol::messages::alter_share_group_offsets_request::*;
    c.call(
        0,
        &AlterShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_topics(vec![AlterShareGroupOffsetsRequestTopic::default()
                .with_topic_name(tn(topic))
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, o)| {
                            AlterShareGroupOffsetsRequestPartition::default()
                                .with_partition_index(*p)
                                .with_start_offset(*o)
                        })
                        .collect(),
                )]),
    )
}

fn delete_offsets(c: &mut Client, group: &str, topics: &[&str]) -> DeleteShareGroupOffsetsResponse {
    use kafka_protocol::messages::delete_share_group_offsets_request::*;
    c.call(
        0,
        &DeleteShareGroupOffsetsRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_topics(
                topics
                    .iter()
                    .map(|t| DeleteShareGroupOffsetsRequestTopic::default().with_topic_name(tn(t)))
                    .collect(),
            ),
    )
}

fn delete_group(c: &mut Client, group: &str) -> i16 {
    let r: DeleteGroupsResponse = c.call(
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(group))]),
    );
    r.results[0].error_code
}

/// DescribeShareGroupOffsets, AlterShareGroupOffsets, DeleteShareGroupOffsets
/// and DeleteGroups of a share group, with Kafka's error codes: a group with
/// members is NON_EMPTY_GROUP, unknown topics and partitions
/// UNKNOWN_TOPIC_OR_PARTITION, and an altered start offset is where the
/// next fetch starts.
#[test]
fn share_group_offset_admin_apis() {
    let b = start();
    let mut c = b.client();
    let id = create_topic(&mut c, "sa", 1, &[]);
    set_earliest(&mut c, "ag");
    produce_ok(&mut c, "sa", 0, &simple_batch(6, 10, 1, 0));
    // Nothing yet: no partitions, or an uninitialized start offset.
    assert!(described_offsets(&describe_offsets(&mut c, "ag", None)).is_empty());
    assert_eq!(
        described_offsets(&describe_offsets(
            &mut c,
            "ag",
            Some(&[("sa", 0), ("nope", 0)])
        )),
        vec![("sa".into(), 0, -1, NONE), ("nope".into(), 0, -1, NONE)]
    );
    // Kafka 4.4 creates an absent share group, empty, to alter its offsets
    // (`getOrMaybeCreateShareGroup(groupId, true)`) ...
    let r = alter_offsets(&mut c, "new", "sa", &[(0, 1)]);
    assert_eq!(r.error_code, NONE, "{r:?}");
    assert_eq!(
        described_offsets(&describe_offsets(&mut c, "new", Some(&[("sa", 0)]))),
        vec![("sa".into(), 0, 1, NONE)]
    );
    let lg: ListGroupsResponse = c.call(
        5,
        &ListGroupsRequest::default().with_types_filter(vec![sb("share")]),
    );
    let listed: Vec<(&str, &str)> = lg
        .groups
        .iter()
        .map(|g| (g.group_id.0.as_str(), g.group_state.as_str()))
        .collect();
    assert_eq!(listed, vec![("new", "Empty")]);
    assert_eq!(delete_group(&mut c, "new"), NONE);
    // ... but a group of another type keeps its id: GROUP_ID_NOT_FOUND.
    let cg: ConsumerGroupHeartbeatResponse = c.call(
        1,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb("cg")))
            .with_member_id(sb("x"))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(5000)
            .with_subscribed_topic_names(Some(vec![tn("sa")]))
            .with_topic_partitions(Some(vec![])),
    );
    assert_eq!(cg.error_code, NONE);
    assert_eq!(
        alter_offsets(&mut c, "cg", "sa", &[(0, 1)]).error_code,
        E::GroupIdNotFound.code(),
        "a consumer group's id"
    );
    let m = beat(&mut c, &hb("ag", "m", 0, Some(&["sa"])));
    assert_eq!(m.error_code, NONE);
    assert_eq!(
        acquired(&fetch(&mut c, "ag", "m", 0, id, vec![])),
        vec![(0, 5, 1)]
    );
    let r = fetch(&mut c, "ag", "m", 1, id, vec![(0, 1, 1)]);
    assert_eq!(ack_error(&r), NONE);
    // Written with the start offset before the acknowledgement moved it.
    assert_eq!(
        described_offsets(&describe_offsets(&mut c, "ag", None)),
        vec![("sa".into(), 0, 0, NONE)]
    );
    // A member: nothing may change.
    let non_empty = E::NonEmptyGroup.code();
    let r = alter_offsets(&mut c, "ag", "sa", &[(0, 4)]);
    assert_eq!(
        (r.error_code, r.error_message.as_deref()),
        (non_empty, Some("The group is not empty.")),
        "Kafka's message for it"
    );
    assert_eq!(delete_offsets(&mut c, "ag", &["sa"]).error_code, non_empty);
    assert_eq!(delete_group(&mut c, "ag"), non_empty);
    // Empty: the start offset moves, and the next fetch starts there.
    assert_eq!(fetch(&mut c, "ag", "m", -1, id, vec![]).error_code, NONE);
    assert_eq!(beat(&mut c, &hb("ag", "m", -1, None)).error_code, NONE);
    let r = alter_offsets(&mut c, "ag", "sa", &[(0, 4), (7, 0)]);
    assert_eq!(r.error_code, NONE, "{r:?}");
    let codes: Vec<(i32, i16)> = r.responses[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![(0, NONE), (7, E::UnknownTopicOrPartition.code())]
    );
    assert_eq!(r.responses[0].topic_id, id);
    let r = alter_offsets(&mut c, "ag", "nope", &[(0, 0)]);
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        E::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        described_offsets(&describe_offsets(&mut c, "ag", Some(&[("sa", 0)]))),
        vec![("sa".into(), 0, 4, NONE)]
    );
    assert_eq!(
        acquired(&fetch(&mut c, "ag", "n", 0, id, vec![])),
        vec![(4, 5, 1)]
    );
    assert_eq!(fetch(&mut c, "ag", "n", -1, id, vec![]).error_code, NONE);
    // Deleting the offsets: gone from describe; a topic without any is
    // UNKNOWN_TOPIC_OR_PARTITION.
    let r = delete_offsets(&mut c, "ag", &["sa", "nope"]);
    assert_eq!(r.error_code, NONE, "{r:?}");
    let codes: Vec<(String, i16)> = r
        .responses
        .iter()
        .map(|t| (t.topic_name.0.to_string(), t.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("sa".into(), NONE),
            ("nope".into(), E::UnknownTopicOrPartition.code())
        ]
    );
    assert!(described_offsets(&describe_offsets(&mut c, "ag", None)).is_empty());
    let r = delete_offsets(&mut c, "ag", &["sa"]);
    assert_eq!(r.responses[0].error_code, E::UnknownTopicOrPartition.code());
    // DeleteGroups of the empty share group, then it is gone.
    assert_eq!(delete_group(&mut c, "ag"), NONE);
    assert_eq!(delete_group(&mut c, "ag"), E::GroupIdNotFound.code());
}

/// DescribeShareGroupOffsets v1 (KIP-1226, kastle's own codec): each share
/// partition's lag, Kafka 4.4's rule: the high watermark minus the start
/// offset minus the records above it whose delivery is complete
/// (acknowledged or archived); -1 without a start offset.
#[test]
fn describe_share_group_offsets_v1_reports_the_lag() {
    use kastle::protocol::share_group_offsets::{
        DescribeShareGroupOffsetsRequest as Req, DescribeShareGroupOffsetsResponse as Resp,
        RequestGroup, RequestTopic,
    };
    let b = start();
    let mut c = b.client();
    let id = create_topic(&mut c, "sl", 2, &[]);
    set_earliest(&mut c, "lag");
    produce_ok(&mut c, "sl", 0, &simple_batch(10, 10, 1, 0));
    let lags = |c: &mut Client| -> Vec<(i32, i64, i64)> {
        let req = Req {
            groups: vec![RequestGroup {
                group_id: "lag".into(),
                topics: Some(vec![RequestTopic {
                    topic_name: "sl".into(),
                    partitions: vec![0, 1],
                }]),
            }],
        };
        let corr = c.next_corr();
        c.write_raw(&frame_with_header(90, 1, corr, 2, &req.encode()))
            .expect("write request");
        let (got, mut body) = c.recv_frame().expect("read response");
        assert_eq!(got, corr);
        skip_tagged_fields(&mut body);
        let r = Resp::decode(&body, 1).expect("a v1 response");
        assert_eq!(r.groups[0].error_code, NONE, "{r:?}");
        r.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.start_offset, p.lag))
            .collect()
    };
    let r = alter_offsets(&mut c, "lag", "sl", &[(0, 2)]);
    assert_eq!(r.error_code, NONE, "{r:?}");
    // Partition 1 has no state: no start offset, no lag.
    assert_eq!(lags(&mut c), vec![(0, 2, 8), (1, -1, -1)]);
    // A member accepts 2-3 and rejects 6 (archived). The state written
    // carries the start offset as it was before this acknowledgement moved
    // it (Kafka's write-then-move), 2, and counts 2-3 and 6 as complete:
    // the lag is that of a start offset at 4 with 6 complete.
    assert_eq!(
        beat(&mut c, &hb("lag", "m", 0, Some(&["sl"]))).error_code,
        NONE
    );
    assert_eq!(
        acquired(&fetch(&mut c, "lag", "m", 0, id, vec![])),
        vec![(2, 9, 1)]
    );
    let r = fetch(&mut c, "lag", "m", 1, id, vec![(2, 3, 1), (6, 6, 3)]);
    assert_eq!(ack_error(&r), NONE, "{r:?}");
    assert_eq!(lags(&mut c)[0], (0, 2, 10 - 2 - 3));
    // Version 0 still answers without the lag.
    assert_eq!(
        described_offsets(&describe_offsets(&mut c, "lag", Some(&[("sl", 0)]))),
        vec![("sl".into(), 0, 2, NONE)]
    );
    // The next write carries the moved start offset.
    let r = fetch(&mut c, "lag", "m", 2, id, vec![(4, 4, 1)]);
    assert_eq!(ack_error(&r), NONE, "{r:?}");
    assert_eq!(lags(&mut c)[0], (0, 4, 10 - 4 - 2));
}

/// Kafka's `handleAcknowledgements` checks the batches before TOPIC READ:
/// a malformed acknowledgement of a topic the client may not read is
/// INVALID_REQUEST, a well-formed one TOPIC_AUTHORIZATION_FAILED (in
/// ShareAcknowledge and in ShareFetch alike).
#[test]
fn acknowledgements_are_validated_before_topic_authorization() {
    const AUTHORIZER: &str =
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";
    let (group_type, literal, read, allow) = (3, 3, 3, 3);
    let mut b = Broker::start(&[AUTHORIZER, "super.users=User:ANONYMOUS"]);
    find_coordinators(&b);
    let mut c = b.client();
    let id = create_topic(&mut c, "hidden", 1, &[]);
    let r = create_acls(
        &mut c,
        vec![creation(
            group_type,
            "ag",
            literal,
            "User:ANONYMOUS",
            read,
            allow,
        )],
    );
    assert!(r.iter().all(|x| x.0 == NONE), "{r:?}");
    b.stop();
    b.restart_with(&["super.users="]);
    let mut c = b.client();
    let r = fetch(&mut c, "ag", "a", 0, id, vec![]);
    assert_eq!(r.error_code, NONE, "{r:?}");
    let denied = E::TopicAuthorizationFailed.code();
    let invalid = E::InvalidRequest.code();
    // Out of order, an unknown type, then well formed.
    let (err, _, parts) = acknowledge(
        &mut c,
        1,
        ("ag", "a", 1),
        id,
        &[(3, 3, 1), (0, 0, 1)],
        false,
    );
    assert_eq!((err, parts), (NONE, vec![invalid]));
    let (_, _, parts) = acknowledge(&mut c, 1, ("ag", "a", 2), id, &[(0, 0, 9)], false);
    assert_eq!(parts, vec![invalid]);
    let (_, _, parts) = acknowledge(&mut c, 1, ("ag", "a", 3), id, &[(0, 0, ACCEPT)], false);
    assert_eq!(parts, vec![denied]);
    let r = fetch(&mut c, "ag", "a", 4, id, vec![(0, 0, 9)]);
    assert_eq!(ack_errors(&r), vec![(0, invalid)], "{r:?}");
    let r = fetch(&mut c, "ag", "a", 5, id, vec![(0, 0, ACCEPT)]);
    assert_eq!(ack_errors(&r), vec![(0, denied)], "{r:?}");
}

/// Kafka's `ShareSessionCache` listens for disconnects: the share session a
/// closed connection opened ends, and the records its member holds are
/// released at once rather than when their acquisition lock (30 s here)
/// runs out.
#[test]
fn a_closed_connection_releases_its_sessions_records() {
    let b = Broker::start(&["group.share.assignment.interval.ms=0"]);
    find_coordinators(&b);
    let mut c = b.client();
    let id = create_topic(&mut c, "dc", 1, &[]);
    set_earliest(&mut c, "dg");
    produce_ok(&mut c, "dc", 0, &simple_batch(5, 10, 1, 0));
    let mut holder = b.client();
    assert_eq!(
        acquired(&fetch(&mut holder, "dg", "a", 0, id, vec![])),
        vec![(0, 4, 1)]
    );
    // Held: another member gets nothing ...
    assert!(acquired(&fetch(&mut c, "dg", "b", 0, id, vec![])).is_empty());
    drop(holder);
    // ... until the holder's connection is gone: then all of it, again.
    let deadline = Instant::now() + Duration::from_secs(10);
    for epoch in 1.. {
        let got = acquired(&fetch(&mut c, "dg", "b", epoch, id, vec![]));
        if !got.is_empty() {
            assert_eq!(got, vec![(0, 4, 2)], "redelivered, delivery count 2");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "records still held 10 s after their holder's connection closed"
        );
    }
}
