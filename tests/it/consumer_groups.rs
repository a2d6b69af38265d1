//! Black-box tests of KIP-848 consumer groups over the raw protocol:
//! ConsumerGroupHeartbeat (join, reconciliation with revocation before
//! assignment, leave, static members, session and rebalance timeouts),
//! its error codes and Kafka's messages, ConsumerGroupDescribe,
//! ListGroups/DescribeGroups, OffsetCommit/OffsetFetch member checks,
//! regular-expression subscriptions, and the group surviving a restart
//! from `__consumer_offsets`.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::support::groups::*;
use crate::support::topics::create_topic;
use crate::support::{find_coordinators, sb, tn, Broker, Client, E, NONE};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::*;
use uuid::Uuid;

const HB: i16 = 1;

fn start() -> Broker {
    let b = Broker::start(&[
        "offsets.topic.num.partitions=3",
        "group.consumer.min.session.timeout.ms=500",
        "group.consumer.session.timeout.ms=1500",
        "group.consumer.min.heartbeat.interval.ms=100",
        "group.consumer.heartbeat.interval.ms=200",
        "group.consumer.max.size=3",
        // Protocol rules step by step: each change computes its assignment
        // at once (Kafka's request tests turn batching off the same way);
        // `assignments_are_batched_by_the_assignment_interval` covers it.
        "group.consumer.assignment.interval.ms=0",
    ]);
    find_coordinators(&b);
    b
}

type Owned = BTreeMap<Uuid, BTreeSet<i32>>;

struct Member {
    group: String,
    id: String,
    epoch: i32,
    instance: Option<String>,
    topics: Vec<String>,
    /// A SubscribedTopicRegex instead of the topic names.
    regex: Option<String>,
    /// What the member owns (what the coordinator last assigned).
    owned: Owned,
}

impl Member {
    fn new(group: &str, topics: &[&str]) -> Member {
        Member {
            group: group.into(),
            id: Uuid::new_v4().to_string(),
            epoch: 0,
            instance: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            regex: None,
            owned: Owned::new(),
        }
    }

    fn with_regex(group: &str, regex: &str) -> Member {
        Member {
            regex: Some(regex.to_string()),
            ..Member::new(group, &[])
        }
    }

    fn request(&self) -> ConsumerGroupHeartbeatRequest {
        let owned = self
            .owned
            .iter()
            .map(|(t, ps)| {
                TopicPartitions::default()
                    .with_topic_id(*t)
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect();
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb(&self.group)))
            .with_member_id(sb(&self.id))
            .with_member_epoch(self.epoch)
            .with_instance_id(self.instance.as_deref().map(sb))
            .with_rebalance_timeout_ms(if self.epoch == 0 { 5000 } else { -1 })
            .with_subscribed_topic_names(
                (self.epoch == 0 && self.regex.is_none())
                    .then(|| self.topics.iter().map(|t| tn(t)).collect()),
            )
            .with_subscribed_topic_regex(self.regex.as_deref().filter(|_| self.epoch == 0).map(sb))
            .with_topic_partitions(Some(owned))
    }

    /// One heartbeat; the member takes what it is given at once (revokes
    /// what is no longer assigned, owns what is).
    fn beat(&mut self, c: &mut Client) -> ConsumerGroupHeartbeatResponse {
        let r = c.call(HB, &self.request());
        if r.error_code == NONE {
            self.epoch = r.member_epoch;
            if let Some(a) = &r.assignment {
                self.owned = a
                    .topic_partitions
                    .iter()
                    .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
                    .collect();
            }
        }
        r
    }

    fn count(&self) -> usize {
        self.owned.values().map(BTreeSet::len).sum()
    }
}

fn hb_error(c: &mut Client, req: &ConsumerGroupHeartbeatRequest) -> (i16, Option<String>) {
    let r = c.call(HB, req);
    (r.error_code, r.error_message.map(|m| m.to_string()))
}

fn join_req(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_member_id(sb(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(5000)
        .with_subscribed_topic_names(Some(topics.iter().map(|t| tn(t)).collect()))
        .with_topic_partitions(Some(vec![]))
}

/// Heartbeats every member until all are at one epoch and own disjoint
/// partitions covering `partitions`, or the deadline passes.
fn converge(c: &mut Client, members: &mut [&mut Member], partitions: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for m in members.iter_mut() {
            let r = m.beat(c);
            assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
        }
        let epochs: BTreeSet<i32> = members.iter().map(|m| m.epoch).collect();
        let mut all = BTreeSet::new();
        let mut total = 0;
        for m in members.iter() {
            for (t, ps) in &m.owned {
                for p in ps {
                    all.insert((*t, *p));
                    total += 1;
                }
            }
        }
        if epochs.len() == 1 && total == partitions && all.len() == partitions {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence: epochs {epochs:?}, {total} owned"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn describe(c: &mut Client, group: &str) -> consumer_group_describe_response::DescribedGroup {
    let r = c.call(
        1,
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(sb(group))]),
    );
    r.groups.into_iter().next().expect("one group")
}

#[test]
fn invalid_requests_are_refused_with_kafkas_messages() {
    let b = start();
    let mut c = b.client();
    let ok = join_req("g", "m1", &["t"]);
    let invalid = E::InvalidRequest.code();
    let cases: Vec<(ConsumerGroupHeartbeatRequest, i16, &str)> = vec![
        (ok.clone().with_member_id(sb("")), invalid, "MemberId can't be empty."),
        (ok.clone().with_group_id(GroupId(sb(""))), invalid, "GroupId can't be empty."),
        (ok.clone().with_instance_id(Some(sb(""))), invalid, "InstanceId can't be empty."),
        (ok.clone().with_rack_id(Some(sb(""))), invalid, "RackId can't be empty."),
        (
            ok.clone().with_rebalance_timeout_ms(-1),
            invalid,
            "RebalanceTimeoutMs must be provided in first request.",
        ),
        (
            ok.clone().with_topic_partitions(None),
            invalid,
            "TopicPartitions must be empty when (re-)joining.",
        ),
        (
            ok.clone().with_subscribed_topic_names(None),
            invalid,
            "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
        ),
        (ok.clone().with_member_epoch(-2), invalid, "InstanceId can't be null."),
        (ok.clone().with_member_epoch(-3), invalid, "MemberEpoch is invalid."),
        (
            ok.clone().with_server_assignor(Some(sb("sticky"))),
            E::UnsupportedAssignor.code(),
            "ServerAssignor sticky is not supported. Supported assignors: uniform, range.",
        ),
        (
            ok.clone().with_member_epoch(3),
            E::GroupIdNotFound.code(),
            "Consumer group g not found.",
        ),
        (ok.clone().with_member_epoch(-1), E::GroupIdNotFound.code(), "Group g not found."),
    ];
    for (req, code, msg) in cases {
        assert_eq!(
            hb_error(&mut c, &req),
            (code, Some(msg.to_string())),
            "{req:?}"
        );
    }
    // v0 lets the coordinator pick the member id.
    let r = c.call(0, &join_req("g0", "", &["t"]));
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.member_id.as_ref().map(|m| m.len()), Some(22));
}

#[test]
fn members_share_partitions_and_reconcile_by_revoking_first() {
    let b = start();
    let mut c = b.client();
    let t = create_topic(&mut c, "cg-six", 6, &[]);
    let mut a = Member::new("cg", &["cg-six"]);
    let r = a.beat(&mut c);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    assert_eq!(
        r.member_epoch, 2,
        "a new group is at epoch 1, its first assignment at 2"
    );
    assert_eq!(r.heartbeat_interval_ms, 200);
    assert_eq!(a.count(), 6);
    assert_eq!(a.owned[&t], (0..6).collect());

    // A second member: a gets a new target at epoch 3 without 3 partitions
    // and must revoke them first (it stays at epoch 2 until it does).
    let mut bm = Member::new("cg", &["cg-six"]);
    let r = bm.beat(&mut c);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.member_epoch, 3);
    // Its partitions are still a's: nothing yet (UNRELEASED_PARTITIONS).
    assert_eq!(bm.count(), 0);
    let held = a.owned.clone();
    let r = c.call(HB, &a.request());
    assert_eq!(r.member_epoch, 2, "revocation first, same epoch");
    let kept: Owned = r
        .assignment
        .as_ref()
        .map(|x| {
            x.topic_partitions
                .iter()
                .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(kept.values().map(BTreeSet::len).sum::<usize>(), 3);
    // Still reporting the revoked partitions: no progress.
    a.owned = held;
    let r = a.beat(&mut c);
    assert_eq!(r.member_epoch, 2);
    // Revoked: epoch 3.
    a.owned = kept;
    let r = a.beat(&mut c);
    assert_eq!(r.member_epoch, 3);
    converge(&mut c, &mut [&mut a, &mut bm], 6);
    assert_eq!((a.count(), bm.count()), (3, 3));

    let d = describe(&mut c, "cg");
    assert_eq!(d.error_code, NONE);
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!((d.group_epoch, d.assignment_epoch), (3, 3));
    assert_eq!(d.assignor_name.as_str(), "uniform");
    assert_eq!(d.members.len(), 2);
    for m in &d.members {
        assert_eq!(m.member_type, 1);
        assert_eq!(
            m.assignment.topic_partitions[0].topic_name.as_str(),
            "cg-six"
        );
        assert_eq!(m.assignment, m.target_assignment);
    }

    // Offsets: member id and epoch checked (OffsetCommit v9).
    assert_eq!(
        offset_commit(&mut c, 9, "cg", a.epoch, &a.id, &[("cg-six", 0, 5)]),
        vec![NONE]
    );
    assert_eq!(
        offset_commit(&mut c, 9, "cg", a.epoch - 1, &a.id, &[("cg-six", 0, 5)]),
        vec![E::StaleMemberEpoch.code()]
    );
    assert_eq!(
        offset_commit(&mut c, 9, "cg", a.epoch, "nobody", &[("cg-six", 0, 5)]),
        vec![E::UnknownMemberId.code()]
    );
    assert_eq!(
        offset_commit(&mut c, 8, "cg", a.epoch, &a.id, &[("cg-six", 0, 5)]),
        vec![E::UnsupportedVersion.code()]
    );
    // OffsetFetch v9: a member gives its current epoch; the admin client none.
    let fetch = |c: &mut Client, member: Option<&str>, epoch: i32| {
        let g = offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(sb("cg")))
            .with_member_id(member.map(sb))
            .with_member_epoch(epoch)
            .with_topics(None);
        c.call(9, &OffsetFetchRequest::default().with_groups(vec![g]))
            .groups[0]
            .error_code
    };
    assert_eq!(fetch(&mut c, Some(&a.id), a.epoch), NONE);
    assert_eq!(
        fetch(&mut c, Some(&a.id), a.epoch - 1),
        E::StaleMemberEpoch.code()
    );
    assert_eq!(fetch(&mut c, Some("nobody"), 1), E::UnknownMemberId.code());
    assert_eq!(fetch(&mut c, None, -1), NONE);
    // The admin client (no member, epoch -1) may not commit to a live group.
    assert_eq!(
        offset_commit(&mut c, 9, "cg", -1, "", &[("cg-six", 0, 5)]),
        vec![E::UnknownMemberId.code()]
    );

    // ListGroups v5 shows its type; DescribeGroups says it is not classic.
    let l = c.call(
        5,
        &ListGroupsRequest::default().with_types_filter(vec![sb("consumer")]),
    );
    let g: Vec<_> = l
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.0.as_str(),
                g.group_type.as_str(),
                g.group_state.as_str(),
                g.protocol_type.as_str(),
            )
        })
        .collect();
    assert_eq!(g, vec![("cg", "consumer", "Stable", "consumer")]);
    let l = c.call(
        5,
        &ListGroupsRequest::default().with_types_filter(vec![sb("classic")]),
    );
    assert!(l.groups.is_empty());
    let dg = c.call(
        6,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("cg"))]),
    );
    assert_eq!(dg.groups[0].error_code, E::GroupIdNotFound.code());
    assert_eq!(
        dg.groups[0].error_message.as_deref(),
        Some("Group cg is not a classic group.")
    );
    // A classic member of another protocol type cannot join it.
    let j = Joiner::new("cg", b"x");
    let r = c.call(
        7,
        &crate::support::groups::join_req(&j).with_protocol_type(sb("connect")),
    );
    assert_eq!(r.error_code, E::InconsistentGroupProtocol.code());

    // b leaves: a gets everything back.
    let leave = bm.request().with_member_epoch(-1);
    let r = c.call(HB, &leave);
    assert_eq!((r.error_code, r.member_epoch), (NONE, -1));
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.count() != 6 {
        assert!(Instant::now() < deadline);
        a.beat(&mut c);
    }
    assert_eq!(a.epoch, 4);
    // Fenced epochs.
    let mut stale = a.request().with_member_epoch(a.epoch + 1);
    assert_eq!(hb_error(&mut c, &stale).0, E::FencedMemberEpoch.code());
    stale = a.request().with_member_epoch(1);
    assert_eq!(hb_error(&mut c, &stale).0, E::FencedMemberEpoch.code());
    let unknown = bm.request().with_member_epoch(3);
    assert_eq!(
        hb_error(&mut c, &unknown),
        (
            E::UnknownMemberId.code(),
            Some(format!("Member {} is not a member of group cg.", bm.id))
        )
    );
}

#[test]
fn group_survives_a_restart() {
    let mut b = start();
    let mut c = b.client();
    create_topic(&mut c, "cg-r", 4, &[]);
    let mut a = Member::new("cg-r", &["cg-r"]);
    let mut m2 = Member::new("cg-r", &["cg-r"]);
    a.beat(&mut c);
    m2.beat(&mut c);
    converge(&mut c, &mut [&mut a, &mut m2], 4);
    assert_eq!(
        offset_commit(&mut c, 9, "cg-r", a.epoch, &a.id, &[("cg-r", 1, 42)]),
        vec![NONE]
    );
    let before = describe(&mut c, "cg-r");
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    let after = describe(&mut c, "cg-r");
    assert_eq!(after.group_epoch, before.group_epoch);
    assert_eq!(after.assignment_epoch, before.assignment_epoch);
    assert_eq!(after.group_state.as_str(), "Stable");
    let mut ids_before: Vec<_> = before
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.member_epoch,
                m.assignment.clone(),
            )
        })
        .collect();
    let mut ids_after: Vec<_> = after
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.member_epoch,
                m.assignment.clone(),
            )
        })
        .collect();
    ids_before.sort_by(|x, y| x.0.cmp(&y.0));
    ids_after.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(ids_before, ids_after);
    // The members carry on at their epochs.
    assert_eq!(a.beat(&mut c).error_code, NONE);
    assert_eq!(committed_offsets(&mut c, 9, "cg-r", "cg-r", &[1]), vec![42]);
    // Once empty, the group may go back to the classic protocol (its
    // records are deleted, its offsets stay), and stays so after a restart.
    for m in [&a, &m2] {
        let r = c.call(HB, &m.request().with_member_epoch(-1));
        assert_eq!(r.error_code, NONE);
    }
    assert_eq!(describe(&mut c, "cg-r").group_state.as_str(), "Empty");
    let mut j = Joiner::new("cg-r", b"x");
    let r = c.call(7, &crate::support::groups::join_req(&j));
    assert_eq!(r.error_code, E::MemberIdRequired.code());
    j.member = r.member_id.to_string();
    assert_eq!(
        c.call(7, &crate::support::groups::join_req(&j)).error_code,
        NONE
    );
    assert_eq!(
        describe(&mut c, "cg-r").error_code,
        E::GroupIdNotFound.code()
    );
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    let d = describe(&mut c, "cg-r");
    assert_eq!(
        d.error_message.as_deref(),
        Some("Group cg-r is not a consumer group.")
    );
    assert_eq!(committed_offsets(&mut c, 9, "cg-r", "cg-r", &[1]), vec![42]);
}

/// The topic names a described member is assigned.
fn assigned_names(m: &consumer_group_describe_response::Member) -> BTreeSet<String> {
    m.assignment
        .topic_partitions
        .iter()
        .map(|tp| tp.topic_name.to_string())
        .collect()
}

#[test]
fn regex_subscriptions_resolve_refresh_and_survive_a_restart() {
    let mut b = start();
    let mut c = b.client();
    create_topic(&mut c, "rx-a", 2, &[]);
    create_topic(&mut c, "rx-b", 1, &[]);
    create_topic(&mut c, "other-rx-a", 1, &[]);
    // An invalid regular expression: RE2J's description in Kafka's message.
    let bad = Member::with_regex("cg-rx", "rx-(");
    assert_eq!(
        hb_error(&mut c, &bad.request()),
        (
            E::InvalidRegularExpression.code(),
            Some(
                "SubscribedTopicRegex `rx-(` is not a valid regular expression: missing closing )."
                    .into()
            )
        )
    );
    // A whole-name match: "other-rx-a" is not matched.
    let mut m = Member::with_regex("cg-rx", "rx-.*");
    let mut n = Member::new("cg-rx", &["rx-b"]);
    // The first resolution happens at this join. The broker gates refreshes
    // on the wall clock (Kafka's `time.milliseconds()`), so the test measures
    // with it too: a VM's wall clock can step away from the monotonic one.
    let joined = SystemTime::now();
    m.beat(&mut c);
    n.beat(&mut c);
    converge(&mut c, &mut [&mut m, &mut n], 3);
    let d = describe(&mut c, "cg-rx");
    let dm = d
        .members
        .iter()
        .find(|x| x.member_id.as_str() == m.id)
        .expect("the regex member");
    assert_eq!(dm.subscribed_topic_regex.as_deref(), Some("rx-.*"));
    assert!(dm.subscribed_topic_names.is_empty());
    assert!(assigned_names(dm).is_subset(&["rx-a".to_string(), "rx-b".to_string()].into()));
    assert_eq!(m.count() + n.count(), 3);
    // A topic created later is matched at the next refresh (at most every
    // 10 s, Kafka's REGEX_BATCH_REFRESH_MIN_INTERVAL_MS), restart or not.
    create_topic(&mut c, "rx-c", 2, &[]);
    drop(c);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    let after = describe(&mut c, "cg-rx");
    assert_eq!(after.group_epoch, d.group_epoch);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for x in [&mut m, &mut n] {
            let r = x.beat(&mut c);
            assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
        }
        if m.count() + n.count() == 5 && m.epoch == n.epoch {
            break;
        }
        assert!(Instant::now() < deadline, "rx-c never assigned");
        thread::sleep(Duration::from_millis(100));
    }
    let waited = SystemTime::now()
        .duration_since(joined)
        .unwrap_or(Duration::ZERO);
    assert!(
        waited >= Duration::from_secs(10),
        "refreshed {waited:?} after the first resolution"
    );
    let d = describe(&mut c, "cg-rx");
    let dm = d
        .members
        .iter()
        .find(|x| x.member_id.as_str() == m.id)
        .expect("the regex member");
    assert!(assigned_names(dm).contains("rx-c"));
    assert!(!assigned_names(dm).contains("other-rx-a"));
    // The regex member leaves: its topics are no longer subscribed.
    let r = c.call(HB, &m.request().with_member_epoch(-1));
    assert_eq!(r.error_code, NONE);
    converge(&mut c, &mut [&mut n], 1);
}

#[test]
fn static_members_session_and_size_limits() {
    let b = start();
    let mut c = b.client();
    create_topic(&mut c, "cg-s", 2, &[]);
    let mut s1 = Member::new("cg-s", &["cg-s"]);
    s1.instance = Some("i1".into());
    assert_eq!(s1.beat(&mut c).error_code, NONE);
    // Another member with the same instance id while s1 holds it.
    let mut other = Member::new("cg-s", &["cg-s"]);
    other.instance = Some("i1".into());
    assert_eq!(
        hb_error(&mut c, &other.request()),
        (
            E::UnreleasedInstanceId.code(),
            Some(format!(
                "Static member {} with instance id i1 cannot join the group because the instance id is owned by {} member.",
                other.id, s1.id
            ))
        )
    );
    // A wrong member id for the instance.
    let fenced = other.request().with_member_epoch(s1.epoch);
    assert_eq!(hb_error(&mut c, &fenced).0, E::FencedInstanceId.code());
    // s1 leaves temporarily (-2), then its replacement takes its partitions.
    let r = c.call(HB, &s1.request().with_member_epoch(-2));
    assert_eq!((r.error_code, r.member_epoch), (NONE, -2));
    let r = other.beat(&mut c);
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    assert_eq!(other.count(), 2);
    let d = describe(&mut c, "cg-s");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), other.id);
    assert_eq!(d.members[0].instance_id.as_deref(), Some("i1"));

    // group.consumer.max.size=3.
    let mut more: Vec<Member> = (0..2).map(|_| Member::new("cg-s", &["cg-s"])).collect();
    for m in more.iter_mut() {
        assert_eq!(m.beat(&mut c).error_code, NONE);
    }
    let mut fourth = Member::new("cg-s", &["cg-s"]);
    assert_eq!(
        hb_error(&mut c, &fourth.request()),
        (
            E::GroupMaxSizeReached.code(),
            Some("The consumer group has reached its maximum capacity of 3 members.".into())
        )
    );
    // The session (1.5 s) of silent members expires: they are fenced and
    // the group epoch moves on.
    let epoch = describe(&mut c, "cg-s").group_epoch;
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        other.beat(&mut c);
        let d = describe(&mut c, "cg-s");
        if d.members.len() == 1 {
            assert!(d.group_epoch >= epoch + 2);
            break;
        }
        assert!(Instant::now() < deadline, "sessions did not expire");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fourth.beat(&mut c).error_code, NONE);
    // A fenced member must rejoin.
    assert_eq!(more[0].beat(&mut c).error_code, E::UnknownMemberId.code());
    // DeleteGroups refuses a non-empty group; describe of a missing one.
    let g = describe(&mut c, "nope");
    assert_eq!(g.error_code, E::GroupIdNotFound.code());
    assert_eq!(g.error_message.as_deref(), Some("Group nope not found."));
}

#[test]
fn empty_consumer_groups_without_offsets_are_deleted() {
    let b = Broker::start(&[
        "offsets.topic.num.partitions=3",
        "offsets.retention.check.interval.ms=200",
    ]);
    find_coordinators(&b);
    let mut c = b.client();
    create_topic(&mut c, "cg-x", 1, &[]);
    let mut gone = Member::new("cg-x1", &["cg-x"]);
    let mut kept = Member::new("cg-x2", &["cg-x"]);
    gone.beat(&mut c);
    kept.beat(&mut c);
    converge(&mut c, &mut [&mut kept], 1);
    // An offset within offsets.retention.minutes keeps its empty group.
    assert_eq!(
        offset_commit(&mut c, 9, "cg-x2", kept.epoch, &kept.id, &[("cg-x", 0, 7)]),
        vec![NONE]
    );
    for m in [&gone, &kept] {
        assert_eq!(
            c.call(HB, &m.request().with_member_epoch(-1)).error_code,
            NONE
        );
    }
    // A non-empty group is not touched; an empty one without offsets is
    // deleted at the next retention check (Kafka's cleanupGroupMetadata).
    let deadline = Instant::now() + Duration::from_secs(5);
    while describe(&mut c, "cg-x1").error_code == NONE {
        assert!(Instant::now() < deadline, "cg-x1 was not deleted");
        thread::sleep(Duration::from_millis(50));
    }
    let d = describe(&mut c, "cg-x1");
    assert_eq!(d.error_code, E::GroupIdNotFound.code());
    assert_eq!(d.error_message.as_deref(), Some("Group cg-x1 not found."));
    thread::sleep(Duration::from_millis(500));
    assert_eq!(describe(&mut c, "cg-x2").group_state.as_str(), "Empty");
    assert_eq!(committed_offsets(&mut c, 9, "cg-x2", "cg-x", &[0]), vec![7]);
}

/// KIP-1251 batching (Kafka 4.3+): a target assignment is computed at most
/// once per `group.consumer.assignment.interval.ms`; a member joining
/// sooner reconciles towards the last one (its epoch, nothing new), and the
/// first heartbeat after the interval computes the next.
#[test]
fn assignments_are_batched_by_the_assignment_interval() {
    let b = Broker::start(&[
        "offsets.topic.num.partitions=3",
        "group.consumer.min.heartbeat.interval.ms=100",
        "group.consumer.heartbeat.interval.ms=200",
        "group.consumer.assignment.interval.ms=1500",
    ]);
    find_coordinators(&b);
    let mut c = b.client();
    create_topic(&mut c, "cg-batch", 4, &[]);
    let mut a = Member::new("cg-batch", &["cg-batch"]);
    let r = a.beat(&mut c);
    assert_eq!(
        (r.error_code, r.member_epoch),
        (NONE, 2),
        "the first assignment is at once"
    );
    assert_eq!(a.count(), 4);
    let computed = Instant::now();

    let mut bm = Member::new("cg-batch", &["cg-batch"]);
    let r = bm.beat(&mut c);
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        r.member_epoch, 2,
        "within the interval: the last target's epoch"
    );
    assert_eq!(bm.count(), 0);
    let d = describe(&mut c, "cg-batch");
    assert_eq!((d.group_epoch, d.assignment_epoch), (3, 2));
    assert_eq!(d.group_state.as_str(), "Assigning");
    // Heartbeats inside the interval change nothing.
    let r = a.beat(&mut c);
    assert_eq!((r.member_epoch, a.count()), (2, 4));
    assert!(
        computed.elapsed() < Duration::from_millis(1500),
        "the machine was too slow to check the interval"
    );

    thread::sleep(Duration::from_millis(1500).saturating_sub(computed.elapsed()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while (a.epoch, bm.epoch, a.count(), bm.count()) != (3, 3, 2, 2) {
        assert!(
            Instant::now() < deadline,
            "no epoch-3 assignment: a {} with {}, b {} with {}",
            a.epoch,
            a.count(),
            bm.epoch,
            bm.count()
        );
        a.beat(&mut c);
        bm.beat(&mut c);
    }
    let d = describe(&mut c, "cg-batch");
    assert_eq!((d.group_epoch, d.assignment_epoch), (3, 3));
}

/// Kafka's ConsumerGroupDescribe member: its assignment is what it owns,
/// partitions it has yet to revoke included, and a member subscribed by
/// names reports the regex "" (Kafka's member default), not null.
#[test]
fn describe_shows_partitions_pending_revocation_and_an_empty_regex() {
    let b = start();
    let mut c = b.client();
    let t = create_topic(&mut c, "cg-pending", 2, &[]);
    let mut a = Member::new("cg-pending", &["cg-pending"]);
    a.beat(&mut c);
    assert_eq!(a.count(), 2);
    let mut bm = Member::new("cg-pending", &["cg-pending"]);
    assert_eq!(bm.beat(&mut c).error_code, NONE);
    // a is told to revoke one partition; it has not yet said it did.
    let r = c.call(HB, &a.request());
    assert_eq!(r.error_code, NONE);
    let d = describe(&mut c, "cg-pending");
    let da = d
        .members
        .iter()
        .find(|m| m.member_id.as_str() == a.id)
        .expect("member a");
    assert_eq!(da.assignment.topic_partitions.len(), 1);
    assert_eq!(da.assignment.topic_partitions[0].topic_id, t);
    assert_eq!(
        da.assignment.topic_partitions[0].partitions.len(),
        2,
        "the partition pending revocation is still a's"
    );
    assert_eq!(da.target_assignment.topic_partitions[0].partitions.len(), 1);
    for m in &d.members {
        assert_eq!(m.subscribed_topic_regex.as_deref(), Some(""));
    }
}

/// Kafka's consumerGroupFenceMembers: when the last member leaves, the
/// group's (empty) target assignment is at the new group epoch at once; a
/// change of the assignor the members prefer is a new group epoch
/// (hasPreferredServerAssignorChanged), a new rack or rebalance timeout
/// is not.
#[test]
fn group_epochs_follow_the_assignor_and_the_last_leave() {
    let b = start();
    let mut c = b.client();
    create_topic(&mut c, "cg-epochs", 2, &[]);
    let mut a = Member::new("cg-epochs", &["cg-epochs"]);
    a.beat(&mut c);
    assert_eq!(a.epoch, 2);
    let beat =
        |c: &mut Client,
         a: &Member,
         f: &dyn Fn(ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatRequest| {
            let r = c.call(HB, &f(a.request()));
            assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
            r.member_epoch
        };
    assert_eq!(beat(&mut c, &a, &|r| r.with_rack_id(Some(sb("rack-1")))), 2);
    assert_eq!(beat(&mut c, &a, &|r| r.with_rebalance_timeout_ms(9000)), 2);
    assert_eq!(
        beat(&mut c, &a, &|r| r.with_server_assignor(Some(sb("range")))),
        3,
        "the range assignor: a new epoch and target"
    );
    let d = describe(&mut c, "cg-epochs");
    assert_eq!(d.assignor_name.as_str(), "range");
    assert_eq!((d.group_epoch, d.assignment_epoch), (3, 3));
    // the same assignor again changes nothing
    assert_eq!(
        beat(&mut c, &a, &|r| r.with_server_assignor(Some(sb("range")))),
        3
    );

    let leave = a.request().with_member_epoch(-1);
    assert_eq!(c.call(HB, &leave).error_code, NONE);
    let d = describe(&mut c, "cg-epochs");
    assert_eq!(d.group_state.as_str(), "Empty");
    assert_eq!((d.group_epoch, d.assignment_epoch), (4, 4));
}
