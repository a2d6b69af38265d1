//! Black-box tests of KIP-848's online migration over the raw protocol: a
//! classic group upgraded by a ConsumerGroupHeartbeat (Kafka's refusals and
//! messages), classic members served by the consumer group (JoinGroup
//! answered at once with the member epoch, REBALANCE_IN_PROGRESS on their
//! Heartbeat, SyncGroup with the reconciled assignment, OffsetCommit with
//! the epoch as generation), a restart in the middle, and the downgrade
//! when the last consumer-protocol member leaves.

use std::collections::BTreeSet;
use std::thread;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use crate::support::groups::*;
use crate::support::topics::create_topic;
use crate::support::{find_coordinators, sb, tn, Broker, Client, E, NONE};

const HB: i16 = 1;

fn start(extra: &[&str]) -> Broker {
    let mut conf = vec![
        "offsets.topic.num.partitions=3",
        "group.initial.rebalance.delay.ms=0",
        "group.min.session.timeout.ms=100",
        "group.consumer.min.session.timeout.ms=500",
        "group.consumer.session.timeout.ms=5000",
        "group.consumer.min.heartbeat.interval.ms=100",
        "group.consumer.heartbeat.interval.ms=200",
        // Each step's assignment at once (KIP-1251 batching is
        // consumer_groups::assignments_are_batched_by_the_assignment_interval).
        "group.consumer.assignment.interval.ms=0",
    ];
    conf.extend_from_slice(extra);
    let b = Broker::start(&conf);
    find_coordinators(&b);
    b
}

/// ConsumerProtocolAssignment v0 of `topic`'s `partitions`.
fn assignment(topic: &str, partitions: &[i32]) -> Vec<u8> {
    let mut m = vec![0u8, 0, 0, 0, 0, 1];
    m.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    m.extend_from_slice(topic.as_bytes());
    m.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
    for p in partitions {
        m.extend_from_slice(&p.to_be_bytes());
    }
    m.extend_from_slice(&(-1i32).to_be_bytes());
    m
}

/// The partitions of a SyncGroup answer's ConsumerProtocolAssignment.
fn partitions_of(bytes: &Bytes) -> BTreeSet<i32> {
    let mut buf = bytes.clone();
    let version = buf.get_i16();
    let a = ConsumerProtocolAssignment::decode(&mut buf, version).unwrap();
    a.assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().copied())
        .collect()
}

fn cg_join(group: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(&uuid::Uuid::new_v4().to_string()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(5000)
        .with_subscribed_topic_names(Some(topics.iter().map(|t| tn(t)).collect()))
        .with_topic_partitions(Some(Vec::new()))
}

fn cg_describe(c: &mut Client, group: &str) -> consumer_group_describe_response::DescribedGroup {
    let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(sb(group))]);
    c.call(1, &req).groups.remove(0)
}

/// A classic group with one member (generation 1) owning `partitions`.
fn classic_group(
    c: &mut Client,
    group: &str,
    meta: &[u8],
    topic: &str,
    partitions: &[i32],
) -> String {
    let mut j = Joiner::new(group, meta);
    let r = join(c, &mut j);
    assert_eq!((r.error_code, r.generation_id), (NONE, 1), "{group}");
    let a = assignment(topic, partitions);
    let s = sync(c, group, 1, &j.member, None, &[(&j.member, &a)]);
    assert_eq!(s.error_code, NONE);
    j.member
}

/// A classic rejoin of a known member: (error, generation).
fn rejoin(c: &mut Client, group: &str, member: &str, meta: &[u8]) -> (i16, i32) {
    let mut j = Joiner::new(group, meta);
    j.member = member.to_string();
    let r = c.call(7, &crate::support::groups::join_req(&j));
    (r.error_code, r.generation_id)
}

#[test]
fn classic_group_upgrades_serves_classic_members_and_downgrades() {
    let mut b = start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "mig", 4, &[]);
    let meta = consumer_subscription(&["mig"]);

    // The upgrade's refusals, with Kafka's messages.
    classic_group(&mut c, "mig-bad", b"x", "mig", &[0]);
    let r = c.call(HB, &cg_join("mig-bad", &["mig"]));
    assert_eq!(r.error_code, E::GroupIdNotFound.code());
    assert_eq!(
        r.error_message.as_deref(),
        Some("Cannot upgrade classic group mig-bad to consumer group because the embedded consumer protocol is malformed.")
    );
    let mut j = Joiner::new("mig-connect", &meta);
    let r = c.call(
        7,
        &crate::support::groups::join_req(&j).with_protocol_type(sb("connect")),
    );
    j.member = r.member_id.to_string();
    let r = c.call(
        7,
        &crate::support::groups::join_req(&j).with_protocol_type(sb("connect")),
    );
    assert_eq!(r.error_code, NONE);
    let r = c.call(HB, &cg_join("mig-connect", &["mig"]));
    assert_eq!(
        r.error_message.as_deref(),
        Some("Cannot upgrade classic group mig-connect to consumer group because the group does not use the consumer embedded protocol.")
    );

    // A classic group of one member owning everything; a consumer joins.
    let a = classic_group(&mut c, "mig", &meta, "mig", &[0, 1, 2, 3]);
    assert_eq!(
        offset_commit(&mut c, 8, "mig", 1, &a, &[("mig", 0, 10)]),
        vec![NONE]
    );
    let mut bm = cg_join("mig", &["mig"]);
    let r = c.call(HB, &bm);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    assert_eq!(r.member_epoch, 2);
    bm = bm.with_member_epoch(2).with_rebalance_timeout_ms(-1);
    let d = cg_describe(&mut c, "mig");
    assert_eq!((d.error_code, d.group_epoch), (NONE, 2));
    let types: BTreeSet<(String, i8)> = d
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_type))
        .collect();
    assert!(types.contains(&(a.clone(), 0)), "{types:?}");
    let l = c.call(
        5,
        &ListGroupsRequest::default().with_types_filter(vec![sb("consumer")]),
    );
    let listed: Vec<String> = l.groups.iter().map(|g| g.group_id.to_string()).collect();
    assert_eq!(listed, vec!["mig".to_string()]);

    // The classic member learns of the rebalance on its heartbeat (its sync
    // too) and rejoins, answered at once: owning nothing any more (an eager
    // member: no owned partitions in its v0 subscription), it is at the new
    // epoch with half the partitions.
    let rip = E::RebalanceInProgress.code();
    assert_eq!(heartbeat(&mut c, "mig", 1, &a), rip);
    assert_eq!(sync(&mut c, "mig", 1, &a, None, &[]).error_code, rip);
    assert_eq!(rejoin(&mut c, "mig", &a, &meta), (NONE, 2));
    let s = sync(&mut c, "mig", 2, &a, None, &[]);
    assert_eq!(s.error_code, NONE);
    let mine = partitions_of(&s.assignment);
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(heartbeat(&mut c, "mig", 2, &a), NONE);
    assert_eq!(heartbeat(&mut c, "mig", 1, &a), E::IllegalGeneration.code());
    // The consumer member gets the other half.
    let r = c.call(HB, &bm);
    assert_eq!(r.error_code, NONE);
    let theirs: usize = r
        .assignment
        .map(|a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum())
        .unwrap_or(0);
    assert_eq!(theirs, 2);
    // Commits with the member epoch as generation.
    assert_eq!(
        offset_commit(&mut c, 8, "mig", 2, &a, &[("mig", 0, 11)]),
        vec![NONE]
    );
    assert_eq!(
        offset_commit(&mut c, 8, "mig", 1, &a, &[("mig", 0, 12)]),
        vec![E::IllegalGeneration.code()]
    );

    // A restart keeps the classic member's metadata.
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    let d = cg_describe(&mut c, "mig");
    assert_eq!((d.group_epoch, d.group_state.as_str()), (2, "Stable"));
    assert_eq!(d.members.iter().filter(|m| m.member_type == 0).count(), 1);
    assert_eq!(heartbeat(&mut c, "mig", 2, &a), NONE);
    let s = sync(&mut c, "mig", 2, &a, None, &[]);
    assert_eq!(partitions_of(&s.assignment), mine);

    // A new classic member joins the consumer group.
    let mut cj = Joiner::new("mig", &meta);
    let r = c.call(7, &crate::support::groups::join_req(&cj));
    assert_eq!(r.error_code, E::MemberIdRequired.code());
    cj.member = r.member_id.to_string();
    let r = c.call(7, &crate::support::groups::join_req(&cj));
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.generation_id, 3);
    assert_eq!(
        (r.leader.as_str(), r.protocol_name.as_deref()),
        ("", Some("range"))
    );
    // Not the classic protocol's member: the consumer member.
    let bid = bm.member_id.to_string();
    assert_eq!(heartbeat(&mut c, "mig", 3, &bid), E::UnknownMemberId.code());

    // The consumer member leaves: only classic members are left, the group
    // becomes a classic group preparing a rebalance, which both rejoin.
    let r = c.call(HB, &bm.clone().with_member_epoch(-1));
    assert_eq!(r.error_code, NONE);
    let g = describe_group(&mut c, "mig");
    assert_eq!(
        (g.error_code, g.group_state.as_str()),
        (NONE, "PreparingRebalance")
    );
    assert_eq!(g.members.len(), 2);
    let d = cg_describe(&mut c, "mig");
    assert_eq!(
        d.error_message.as_deref(),
        Some("Group mig is not a consumer group.")
    );
    let addr_meta = meta.clone();
    let (group_a, port) = (a.clone(), b.port);
    let other = thread::spawn(move || {
        let mut c2 = Client::connect(port);
        rejoin(&mut c2, "mig", &group_a, &addr_meta)
    });
    let (e, gen) = rejoin(&mut c, "mig", &cj.member, &meta);
    assert_eq!(e, NONE);
    assert_eq!(other.join().unwrap(), (NONE, gen));
    assert_eq!(
        describe_group(&mut c, "mig").group_state.as_str(),
        "CompletingRebalance"
    );
    assert_eq!(committed_offsets(&mut c, 8, "mig", "mig", &[0]), vec![11]);
}

#[test]
fn the_migration_policy_can_refuse_the_upgrade() {
    let b = start(&["group.consumer.migration.policy=downgrade"]);
    let mut c = b.client();
    create_topic(&mut c, "mig-p", 1, &[]);
    let meta = consumer_subscription(&["mig-p"]);
    classic_group(&mut c, "mig-p", &meta, "mig-p", &[0]);
    let r = c.call(HB, &cg_join("mig-p", &["mig-p"]));
    assert_eq!(r.error_code, E::GroupIdNotFound.code());
    assert_eq!(
        r.error_message.as_deref(),
        Some("Cannot upgrade classic group mig-p to consumer group because online upgrade is disabled.")
    );
    // The classic group goes on.
    assert_eq!(
        describe_group(&mut c, "mig-p").group_state.as_str(),
        "Stable"
    );
}

/// Kafka's `validateOnlineDowngradeWithReplacedMember`: a classic static
/// member that takes the place of the group's last consumer-protocol member
/// (the same instance id restarted with a classic client) turns the group
/// into a classic group at once, Stable, with no rebalance; it syncs into
/// it and gets its partitions. With another consumer-protocol member left,
/// the group stays a consumer group.
#[test]
fn a_classic_static_member_replacing_the_last_consumer_member_downgrades() {
    let b = start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "mig-s", 2, &[]);
    let meta = consumer_subscription(&["mig-s"]);
    let static_join = |group: &str| cg_join(group, &["mig-s"]).with_instance_id(Some(sb("inst")));

    // Not the last one: another consumer-protocol member stays.
    assert_eq!(c.call(HB, &static_join("mig-s2")).error_code, NONE);
    assert_eq!(c.call(HB, &cg_join("mig-s2", &["mig-s"])).error_code, NONE);
    let mut j = Joiner::new("mig-s2", &meta);
    j.instance = Some("inst");
    let r = c.call(7, &crate::support::groups::join_req(&j));
    assert_eq!(r.error_code, NONE);
    let d = cg_describe(&mut c, "mig-s2");
    assert_eq!(d.error_code, NONE, "{:?}", d.error_message);
    let types: Vec<i8> = d.members.iter().map(|m| m.member_type).collect();
    assert_eq!(types.len(), 2);
    assert!(types.contains(&0) && types.contains(&1), "{types:?}");

    // The last one: the group becomes classic.
    let r = c.call(HB, &static_join("mig-s"));
    assert_eq!(r.error_code, NONE);
    let mut j = Joiner::new("mig-s", &meta);
    j.instance = Some("inst");
    let r = c.call(7, &crate::support::groups::join_req(&j));
    assert_eq!(r.error_code, NONE);
    let (member, generation) = (r.member_id.to_string(), r.generation_id);
    let g = describe_group(&mut c, "mig-s");
    assert_eq!(
        (
            g.error_code,
            g.group_state.as_str(),
            g.protocol_type.as_str()
        ),
        (NONE, "Stable", "consumer")
    );
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.members[0].member_id.as_str(), member);
    let d = cg_describe(&mut c, "mig-s");
    assert_eq!(
        d.error_message.as_deref(),
        Some("Group mig-s is not a consumer group.")
    );
    let s = sync(&mut c, "mig-s", generation, &member, Some("inst"), &[]);
    assert_eq!(s.error_code, NONE);
    assert_eq!(partitions_of(&s.assignment), BTreeSet::from([0, 1]));
    assert_eq!(heartbeat(&mut c, "mig-s", generation, &member), NONE);
}
