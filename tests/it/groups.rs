//! Black-box tests of the consumer group APIs (classic rebalance protocol)
//! over the raw Kafka protocol: FindCoordinator, the JoinGroup/SyncGroup/
//! Heartbeat state machine with its error codes and timers, static
//! membership, offsets and their durability across restarts, and the admin
//! APIs (ListGroups, DescribeGroups, DeleteGroups, OffsetDelete).

use std::thread;
use std::time::{Duration, Instant};

use crate::support::groups::*;
use crate::support::topics::{create_topic, delete_topic};
use crate::support::{find_coordinators, sb, Broker, Client, E, NONE};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::*;

fn start() -> Broker {
    let b = Broker::start(&[
        "group.min.session.timeout.ms=100",
        "group.initial.rebalance.delay.ms=0",
        "offsets.topic.num.partitions=5",
    ]);
    find_coordinators(&b);
    b
}

#[test]
fn find_coordinator_every_version() {
    let b = start();
    let mut c = b.client();
    for v in 0..=3i16 {
        let mut req = FindCoordinatorRequest::default().with_key(sb("g1"));
        if v >= 1 {
            req = req.with_key_type(1);
        }
        let r = c.call(v, &req);
        assert_eq!(r.error_code, NONE, "v{v}");
        assert_eq!(r.node_id.0, 1, "v{v}");
        assert_eq!(r.host.as_str(), "127.0.0.1");
        assert_eq!(r.port, i32::from(b.port));
    }
    for v in 4..=6i16 {
        for key_type in [0i8, 1] {
            let req = FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![sb("a"), sb("b"), sb("c")]);
            let r = c.call(v, &req);
            assert_eq!(r.coordinators.len(), 3, "v{v}");
            for (co, k) in r.coordinators.iter().zip(["a", "b", "c"]) {
                assert_eq!(co.key.as_str(), k);
                assert_eq!(co.error_code, NONE);
                assert_eq!(co.node_id.0, 1);
                assert_eq!(co.port, i32::from(b.port));
            }
        }
        let bad = FindCoordinatorRequest::default()
            .with_key_type(7)
            .with_coordinator_keys(vec![sb("a")]);
        assert_eq!(
            c.call(v, &bad).coordinators[0].error_code,
            E::InvalidRequest.code()
        );
    }
    // __consumer_offsets exists and is internal.
    let md = c.call(12, &MetadataRequest::default().with_topics(None));
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("__consumer_offsets"))
        .expect("__consumer_offsets in metadata");
    assert!(t.is_internal);
    assert_eq!(t.partitions.len(), 5);
}

#[test]
fn member_id_required_then_join_and_sync() {
    let b = start();
    let mut c = b.client();
    let mut j = Joiner::new("g-single", b"meta-a");
    let first = c.call(7, &join_req(&j));
    assert_eq!(first.error_code, E::MemberIdRequired.code());
    assert!(first.member_id.starts_with(crate::support::CLIENT_ID));
    j.member = first.member_id.to_string();
    let r = c.call(7, &join_req(&j));
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1);
    assert_eq!(&r.members[0].metadata[..], b"meta-a");
    let sr = sync(
        &mut c,
        "g-single",
        1,
        &j.member,
        None,
        &[(&j.member, b"asg-a")],
    );
    assert_eq!(sr.error_code, NONE);
    assert_eq!(&sr.assignment[..], b"asg-a");
    assert_eq!(heartbeat(&mut c, "g-single", 1, &j.member), NONE);
    let d = describe_group(&mut c, "g-single");
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.protocol_data.as_str(), "range");
    assert_eq!(&d.members[0].member_assignment[..], b"asg-a");
    assert_eq!(d.members[0].client_host.as_str(), "/127.0.0.1");

    // Version 3 and below: no MEMBER_ID_REQUIRED round trip.
    let old = c.call(3, &join_req(&Joiner::new("g-old", b"x")));
    assert_eq!(old.error_code, NONE);
    assert_eq!(old.generation_id, 1);

    // Bad input.
    let mut bad = Joiner {
        session_ms: 50,
        ..Joiner::new("g-bad", b"x")
    };
    assert_eq!(
        c.call(7, &join_req(&bad)).error_code,
        E::InvalidSessionTimeout.code()
    );
    bad.session_ms = 10_000;
    bad.member = "nobody".into();
    assert_eq!(
        c.call(7, &join_req(&bad)).error_code,
        E::UnknownMemberId.code()
    );
    let wrong_type = join_req(&Joiner::new("g-single", b"x")).with_protocol_type(sb("connect"));
    assert_eq!(
        c.call(7, &wrong_type).error_code,
        E::InconsistentGroupProtocol.code()
    );
    let huge = join_req(&Joiner::new("g-huge", &vec![0u8; 2 * 1024 * 1024]));
    assert_eq!(c.call(7, &huge).error_code, E::InvalidRequest.code());
}

/// Two members: the second join makes the first rejoin (heartbeat says
/// REBALANCE_IN_PROGRESS); the leader's assignment reaches both; a third
/// join starts another rebalance; stale generations and unknown members
/// get their errors.
#[test]
fn rebalance_with_leader_assignment() {
    let b = start();
    let group = "g-two";
    let mut ca = b.client();
    create_topic(&mut ca, "t-two", 1, &[]);
    let mut a = Joiner::new(group, b"meta-a");
    let ja = join(&mut ca, &mut a);
    assert_eq!(ja.generation_id, 1);
    assert_eq!(
        sync(&mut ca, group, 1, &a.member, None, &[(&a.member, b"all")]).error_code,
        NONE
    );

    let port = b.port;
    let hb = thread::spawn(move || {
        let mut cb = Client::connect(port);
        let mut bj = Joiner::new(group, b"meta-b");
        let jb = join(&mut cb, &mut bj);
        let sb = sync(&mut cb, group, jb.generation_id, &bj.member, None, &[]);
        (jb, sb, bj.member, cb)
    });
    // A learns of the rebalance through its heartbeat.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = heartbeat(&mut ca, group, 1, &a.member);
        if e == E::RebalanceInProgress.code() {
            break;
        }
        assert_eq!(e, NONE);
        assert!(Instant::now() < deadline, "no REBALANCE_IN_PROGRESS");
        thread::sleep(Duration::from_millis(20));
    }
    // Commits with the current generation are still accepted meanwhile.
    assert_eq!(
        offset_commit(&mut ca, 8, group, 1, &a.member, &[("t-two", 0, 1)]),
        vec![NONE]
    );
    let ja2 = join(&mut ca, &mut a);
    assert_eq!(ja2.error_code, NONE);
    assert_eq!(ja2.generation_id, 2);
    assert_eq!(ja2.leader, ja2.member_id, "the first member stays leader");
    assert_eq!(ja2.members.len(), 2);
    let b_id = ja2
        .members
        .iter()
        .find(|m| m.member_id != ja2.member_id)
        .map(|m| m.member_id.to_string())
        .unwrap();
    assert!(ja2.members.iter().any(|m| &m.metadata[..] == b"meta-b"));
    // Stale generation.
    assert_eq!(
        heartbeat(&mut ca, group, 1, &a.member),
        E::IllegalGeneration.code()
    );
    let sa = sync(
        &mut ca,
        group,
        2,
        &a.member,
        None,
        &[(&a.member, b"part-a"), (&b_id, b"part-b")],
    );
    assert_eq!(sa.error_code, NONE);
    assert_eq!(&sa.assignment[..], b"part-a");
    let (jb, sb, b_member, mut cb) = hb.join().unwrap();
    assert_eq!(jb.generation_id, 2);
    assert!(jb.members.is_empty(), "followers get no member list");
    assert_eq!(sb.error_code, NONE);
    assert_eq!(&sb.assignment[..], b"part-b");
    assert_eq!(heartbeat(&mut ca, group, 2, &a.member), NONE);
    assert_eq!(heartbeat(&mut cb, group, 2, &b_member), NONE);
    assert_eq!(
        heartbeat(&mut ca, group, 2, "bogus"),
        E::UnknownMemberId.code()
    );
    assert_eq!(
        heartbeat(&mut ca, "no-such-group", 2, "bogus"),
        E::UnknownMemberId.code()
    );
    assert_eq!(
        sync(&mut ca, group, 1, &a.member, None, &[]).error_code,
        E::IllegalGeneration.code()
    );

    // A third member: both existing members see REBALANCE_IN_PROGRESS.
    let port = b.port;
    let third = thread::spawn(move || {
        let mut cc = Client::connect(port);
        let mut cj = Joiner::new(group, b"meta-c");
        join(&mut cc, &mut cj)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while heartbeat(&mut ca, group, 2, &a.member) != E::RebalanceInProgress.code() {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        heartbeat(&mut cb, group, 2, &b_member),
        E::RebalanceInProgress.code()
    );
    let d = describe_group(&mut ca, group);
    assert_eq!(d.group_state.as_str(), "PreparingRebalance");
    // Both rejoin; the join completes for all three.
    let port = b.port;
    let b_member2 = b_member.clone();
    let rb = thread::spawn(move || {
        let mut bj = Joiner {
            member: b_member2,
            ..Joiner::new(group, b"meta-b")
        };
        join(&mut Client::connect(port), &mut bj)
    });
    let ja3 = join(&mut ca, &mut a);
    assert_eq!(ja3.generation_id, 3);
    assert_eq!(ja3.members.len(), 3);
    assert_eq!(rb.join().unwrap().generation_id, 3);
    assert_eq!(third.join().unwrap().generation_id, 3);
}

#[test]
fn session_timeout_removes_silent_member() {
    let b = start();
    let group = "g-expire";
    let mut ca = b.client();
    let mut a = Joiner::new(group, b"a");
    join(&mut ca, &mut a);
    sync(&mut ca, group, 1, &a.member, None, &[]);
    // B joins with a short session and then goes silent after syncing.
    let port = b.port;
    let t = thread::spawn(move || {
        let mut cb = Client::connect(port);
        let mut bj = Joiner {
            session_ms: 500,
            ..Joiner::new(group, b"b")
        };
        let r = join(&mut cb, &mut bj);
        let _ = sync(&mut cb, group, r.generation_id, &bj.member, None, &[]);
        bj.member
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while heartbeat(&mut ca, group, 1, &a.member) != E::RebalanceInProgress.code() {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(20));
    }
    let j2 = join(&mut ca, &mut a);
    assert_eq!(j2.generation_id, 2);
    assert_eq!(
        sync(&mut ca, group, 2, &a.member, None, &[]).error_code,
        NONE
    );
    let b_member = t.join().unwrap();
    // Keep A alive while B's session (500 ms) lapses.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = heartbeat(&mut ca, group, 2, &a.member);
        if e == E::RebalanceInProgress.code() {
            break;
        }
        assert!(Instant::now() < deadline, "B never expired");
        thread::sleep(Duration::from_millis(50));
    }
    let j3 = join(&mut ca, &mut a);
    assert_eq!(j3.generation_id, 3);
    assert_eq!(j3.members.len(), 1);
    let mut cb = b.client();
    assert_eq!(
        heartbeat(&mut cb, group, 2, &b_member),
        E::UnknownMemberId.code()
    );

    // A MEMBER_ID_REQUIRED member that never rejoins is forgotten.
    let mut p = Joiner {
        session_ms: 200,
        ..Joiner::new("g-pending", b"p")
    };
    let r = cb.call(7, &join_req(&p));
    assert_eq!(r.error_code, E::MemberIdRequired.code());
    thread::sleep(Duration::from_millis(600));
    p.member = r.member_id.to_string();
    assert_eq!(
        cb.call(7, &join_req(&p)).error_code,
        E::UnknownMemberId.code()
    );
}

#[test]
fn static_member_rejoin_keeps_assignment() {
    let b = start();
    let group = "g-static";
    let mut c = b.client();
    let mut j = Joiner {
        instance: Some("inst-1"),
        ..Joiner::new(group, b"s")
    };
    // Static members skip MEMBER_ID_REQUIRED.
    let r = c.call(7, &join_req(&j));
    assert_eq!(r.error_code, NONE);
    assert!(r.member_id.starts_with("inst-1-"));
    j.member = r.member_id.to_string();
    assert_eq!(
        sync(
            &mut c,
            group,
            1,
            &j.member,
            Some("inst-1"),
            &[(&j.member, b"mine")]
        )
        .error_code,
        NONE
    );
    let old = j.member.clone();
    // The "restarted" instance joins with an empty member id.
    j.member = String::new();
    let mut c2 = b.client();
    let r2 = c2.call(7, &join_req(&j));
    assert_eq!(r2.error_code, NONE);
    assert_eq!(r2.generation_id, 1, "no rebalance for a static rejoin");
    assert_ne!(r2.member_id.as_str(), old);
    let s2 = sync(&mut c2, group, 1, &r2.member_id, Some("inst-1"), &[]);
    assert_eq!(s2.error_code, NONE);
    assert_eq!(&s2.assignment[..], b"mine");
    // The old incarnation is fenced.
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id(1)
        .with_member_id(sb(&old))
        .with_group_instance_id(Some(sb("inst-1")));
    assert_eq!(c.call(4, &hb).error_code, E::FencedInstanceId.code());
    assert_eq!(describe_group(&mut c, group).group_state.as_str(), "Stable");
    // Leaving by instance id (v3+ batch form).
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_members(vec![MemberIdentity::default()
            .with_member_id(sb(""))
            .with_group_instance_id(Some(sb("inst-1")))]);
    let lr = c.call(4, &leave);
    assert_eq!(lr.error_code, NONE);
    assert_eq!(lr.members[0].error_code, NONE);
    let deadline = Instant::now() + Duration::from_secs(5);
    while describe_group(&mut c, group).group_state.as_str() != "Empty" {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(20));
    }
}

fn offsets_survive(kill: bool) {
    let mut b = start();
    let mut c = b.client();
    create_topic(&mut c, "t-off", 3, &[]);
    // A simple consumer: generation -1, no member id.
    let codes = offset_commit(
        &mut c,
        8,
        "g-simple",
        -1,
        "",
        &[("t-off", 0, 10), ("t-off", 2, 30)],
    );
    assert_eq!(codes, vec![NONE, NONE]);
    let codes = offset_commit(&mut c, 2, "g-simple", -1, "", &[("t-off", 1, 20)]);
    assert_eq!(codes, vec![NONE]);
    let codes = offset_commit(&mut c, 8, "g-simple", -1, "", &[("no-such-topic", 0, 1)]);
    assert_eq!(codes, vec![E::UnknownTopicOrPartition.code()]);
    for v in 1..=9 {
        assert_eq!(
            committed_offsets(&mut c, v, "g-simple", "t-off", &[0, 1, 2, 3]),
            vec![10, 20, 30, -1],
            "v{v}"
        );
    }
    // A member-managed group with committed offsets.
    let mut j = Joiner::new("g-managed", b"m");
    let r = join(&mut c, &mut j);
    sync(
        &mut c,
        "g-managed",
        r.generation_id,
        &j.member,
        None,
        &[(&j.member, b"x")],
    );
    assert_eq!(
        offset_commit(&mut c, 8, "g-managed", 1, &j.member, &[("t-off", 0, 7)]),
        vec![NONE]
    );
    assert_eq!(
        offset_commit(&mut c, 8, "g-managed", 5, &j.member, &[("t-off", 0, 8)]),
        vec![E::IllegalGeneration.code()]
    );
    assert_eq!(
        offset_commit(&mut c, 8, "g-managed", -1, "", &[("t-off", 0, 8)]),
        vec![E::UnknownMemberId.code()]
    );
    assert_eq!(
        offset_commit(&mut c, 8, "g-nope", 3, "m", &[("t-off", 0, 8)]),
        vec![E::IllegalGeneration.code()]
    );
    assert_eq!(
        offset_commit(&mut c, 9, "g-nope", 3, "m", &[("t-off", 0, 8)]),
        vec![E::GroupIdNotFound.code()]
    );
    drop(c);
    if kill {
        b.kill();
    } else {
        assert!(b.stop().success());
    }
    b.restart();
    let mut c = b.client();
    assert_eq!(
        committed_offsets(&mut c, 9, "g-simple", "t-off", &[0, 1, 2, 3]),
        vec![10, 20, 30, -1]
    );
    assert_eq!(
        committed_offsets(&mut c, 5, "g-managed", "t-off", &[0]),
        vec![7]
    );
    // The managed group came back with its member (Stable, generation 1).
    let d = describe_group(&mut c, "g-managed");
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.members.len(), 1);
    assert_eq!(heartbeat(&mut c, "g-managed", 1, &j.member), NONE);
    // Fetch-all (null topics).
    let all = c.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(sb("g-simple")))
            .with_topics(None),
    );
    assert_eq!(all.topics.len(), 1);
    assert_eq!(all.topics[0].partitions.len(), 3);
    assert_eq!(all.topics[0].partitions[0].metadata.as_deref(), Some("m"));
}

#[test]
fn offsets_survive_graceful_restart() {
    offsets_survive(false);
}

#[test]
fn offsets_survive_kill_9() {
    offsets_survive(true);
}

/// Every committed offset of `group` (OffsetFetch v7, all topics), sorted.
fn all_committed(c: &mut Client, group: &str) -> Vec<(String, i32, i64)> {
    let all = c.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_topics(None),
    );
    assert_eq!(all.error_code, NONE, "fetch all of {group}");
    let mut out: Vec<(String, i32, i64)> = all
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
        })
        .collect();
    out.sort();
    out
}

/// Kafka's `onTopicsDeleted`: a deleted topic's offsets get tombstones in
/// every group, so a fetch of all offsets no longer lists them and a topic
/// created again under the name starts with none, after a restart too.
#[test]
fn a_deleted_topics_offsets_go_with_it() {
    let mut b = start();
    let mut c = b.client();
    create_topic(&mut c, "t-gone", 2, &[]);
    create_topic(&mut c, "t-kept", 1, &[]);
    commit_offsets(
        &mut c,
        "g-del",
        &[("t-gone", 0, 5), ("t-gone", 1, 7), ("t-kept", 0, 3)],
    );
    commit_offsets(&mut c, "g-del-2", &[("t-gone", 0, 1)]);
    delete_topic(&mut c, "t-gone");
    let kept = vec![("t-kept".to_string(), 0, 3)];
    assert_eq!(all_committed(&mut c, "g-del"), kept);
    assert_eq!(all_committed(&mut c, "g-del-2"), vec![]);
    create_topic(&mut c, "t-gone", 2, &[]);
    assert_eq!(
        committed_offsets(&mut c, 9, "g-del", "t-gone", &[0, 1]),
        vec![-1, -1]
    );
    drop(c);
    b.kill();
    b.restart();
    let mut c = b.client();
    assert_eq!(all_committed(&mut c, "g-del"), kept);
    assert_eq!(all_committed(&mut c, "g-del-2"), vec![]);
}

#[test]
fn list_describe_delete_and_offset_delete() {
    let b = start();
    let mut c = b.client();
    create_topic(&mut c, "t-adm", 2, &[]);
    offset_commit(
        &mut c,
        8,
        "g-empty",
        -1,
        "",
        &[("t-adm", 0, 1), ("t-adm", 1, 2)],
    );
    let subscription = consumer_subscription(&["t-adm"]);
    let mut j = Joiner::new("g-live", &subscription);
    let r = join(&mut c, &mut j);
    sync(&mut c, "g-live", r.generation_id, &j.member, None, &[]);
    offset_commit(
        &mut c,
        8,
        "g-live",
        r.generation_id,
        &j.member,
        &[("t-adm", 0, 5)],
    );

    let lr = c.call(5, &ListGroupsRequest::default());
    let mut names: Vec<(String, String, String)> = lr
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.0.to_string(),
                g.group_state.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("g-empty".into(), "Empty".into(), "classic".into()),
            ("g-live".into(), "Stable".into(), "classic".into())
        ]
    );
    let stable = c.call(
        4,
        &ListGroupsRequest::default().with_states_filter(vec![sb("stable")]),
    );
    assert_eq!(stable.groups.len(), 1);
    assert_eq!(stable.groups[0].protocol_type.as_str(), "consumer");
    let consumer_type = c.call(
        5,
        &ListGroupsRequest::default().with_types_filter(vec![sb("consumer")]),
    );
    assert!(consumer_type.groups.is_empty());
    assert_eq!(c.call(0, &ListGroupsRequest::default()).groups.len(), 2);

    let dr = c.call(
        6,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(sb("g-live")), GroupId(sb("missing"))])
            .with_include_authorized_operations(true),
    );
    assert_eq!(dr.groups[0].error_code, NONE);
    assert_eq!(dr.groups[0].members.len(), 1);
    assert!(dr.groups[0].authorized_operations > 0);
    assert_eq!(dr.groups[1].error_code, E::GroupIdNotFound.code());
    let old = c.call(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("missing"))]),
    );
    assert_eq!(old.groups[0].error_code, NONE);
    assert_eq!(old.groups[0].group_state.as_str(), "Dead");

    // OffsetDelete: the live group is subscribed to t-adm.
    let od = |g: &str, t: &str| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(sb(g)))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(sb(t)))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ])])
    };
    let r = c.call(0, &od("g-live", "t-adm"));
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        E::GroupSubscribedToTopic.code()
    );
    let r = c.call(0, &od("g-empty", "t-adm"));
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.topics[0].partitions[0].error_code, NONE);
    assert_eq!(
        committed_offsets(&mut c, 8, "g-empty", "t-adm", &[0, 1]),
        vec![-1, 2]
    );
    let r = c.call(0, &od("g-missing", "t-adm"));
    assert_eq!(r.error_code, E::GroupIdNotFound.code());
    let r = c.call(0, &od("g-empty", "nope"));
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        E::UnknownTopicOrPartition.code()
    );
    // A partition the topic does not have is unknown too (Kafka checks each
    // partition before the coordinator sees the request), next to the
    // coordinator's answers for the others.
    let od_parts = |g: &str, parts: &[i32]| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(sb(g)))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(sb("t-adm")))
                .with_partitions(
                    parts
                        .iter()
                        .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                        .collect(),
                )])
    };
    let codes = |r: &OffsetDeleteResponse| -> Vec<(i32, i16)> {
        r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code))
            .collect()
    };
    let r = c.call(0, &od_parts("g-live", &[9, 0]));
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        codes(&r),
        vec![
            (9, E::UnknownTopicOrPartition.code()),
            (0, E::GroupSubscribedToTopic.code())
        ]
    );
    let r = c.call(0, &od_parts("g-empty", &[1, 9]));
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        codes(&r),
        vec![(1, NONE), (9, E::UnknownTopicOrPartition.code())]
    );
    assert_eq!(
        committed_offsets(&mut c, 8, "g-empty", "t-adm", &[0, 1]),
        vec![-1, -1],
        "partition 1's offset deleted beside the unknown partition"
    );
    let r = c.call(0, &od_parts("g-empty", &[9]));
    assert_eq!(
        (r.error_code, codes(&r)),
        (NONE, vec![(9, E::UnknownTopicOrPartition.code())])
    );
    // A group-level error is the whole answer, unknown partitions or not.
    let r = c.call(0, &od_parts("g-missing", &[9]));
    assert_eq!(
        (r.error_code, r.topics.len()),
        (E::GroupIdNotFound.code(), 0)
    );

    // DeleteGroups.
    let del = c.call(
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![
            GroupId(sb("g-empty")),
            GroupId(sb("g-live")),
            GroupId(sb("g-missing")),
        ]),
    );
    let codes: Vec<i16> = del.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![NONE, E::NonEmptyGroup.code(), E::GroupIdNotFound.code()]
    );
    assert_eq!(
        committed_offsets(&mut c, 8, "g-empty", "t-adm", &[0, 1]),
        vec![-1, -1]
    );
    // A name given twice is answered once (Kafka's `distinct`), at every
    // version.
    let del = c.call(
        2,
        &DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(sb("g-missing")), GroupId(sb("g-missing"))]),
    );
    let got: Vec<(&str, i16)> = del
        .results
        .iter()
        .map(|r| (r.group_id.0.as_str(), r.error_code))
        .collect();
    assert_eq!(got, vec![("g-missing", E::GroupIdNotFound.code())]);
    // v3 (past the crate: v2's request) adds a message per group, null
    // for every code kastle answers, as for Kafka's coordinator's own.
    let body = crate::support::encode(
        &DeleteGroupsRequest::default().with_groups_names(vec![
            GroupId(sb("g-live")),
            GroupId(sb("g-missing")),
            GroupId(sb("g-live")),
        ]),
        2,
    );
    let corr = c.next_corr();
    c.send(42, 3, corr, &body);
    let (got_corr, answer) = c.recv(42, 3);
    assert_eq!(got_corr, corr);
    let (_, results) =
        kastle::protocol::delete_groups::read_v3(&answer).expect("a v3 DeleteGroups answer");
    let got: Vec<(&str, i16, Option<&str>)> = results
        .iter()
        .map(|r| {
            (
                r.group_id.as_str(),
                r.error_code,
                r.error_message.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("g-live", E::NonEmptyGroup.code(), None),
            ("g-missing", E::GroupIdNotFound.code(), None),
        ]
    );

    // LeaveGroup v0 then delete works.
    let lr = c.call(
        0,
        &LeaveGroupRequest::default()
            .with_group_id(GroupId(sb("g-live")))
            .with_member_id(sb(&j.member)),
    );
    assert_eq!(lr.error_code, NONE);
    let deadline = Instant::now() + Duration::from_secs(5);
    while describe_group(&mut c, "g-live").group_state.as_str() != "Empty" {
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(20));
    }
    let del = c.call(
        0,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("g-live"))]),
    );
    assert_eq!(del.results[0].error_code, NONE);
    assert!(c.call(5, &ListGroupsRequest::default()).groups.is_empty());
}

/// OffsetCommit and OffsetFetch v10 (KIP-848) name topics by id, as Kafka
/// 4.4's `handleOffsetCommitRequest`/`handleOffsetFetchRequest`: an id no
/// topic has (the zero id among them) is UNKNOWN_TOPIC_ID for its
/// partitions, the known topics of the same request are committed; a
/// commit by id is one by name (v9 reads it); the answers echo the ids.
#[test]
fn offset_commit_and_fetch_v10_by_topic_id() {
    let b = start();
    let mut c = b.client();
    let id = create_topic(&mut c, "t-id", 2, &[]);
    let stranger = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let zero = uuid::Uuid::nil();
    let unknown_id = E::UnknownTopicId.code();
    assert_eq!(
        offset_commit_v10(&mut c, "g-id", &[(id, 0, 5), (id, 1, 7)]),
        vec![(id, vec![(0, NONE), (1, NONE)])]
    );
    assert_eq!(
        committed_offsets(&mut c, 9, "g-id", "t-id", &[0, 1]),
        vec![5, 7],
        "a commit by id is the topic's, read by name"
    );
    for bad in [stranger, zero] {
        assert_eq!(
            offset_commit_v10(&mut c, "g-id", &[(bad, 0, 1), (bad, 1, 1)]),
            vec![(bad, vec![(0, unknown_id), (1, unknown_id)])],
            "{bad}"
        );
    }
    // Mixed: a known topic (one partition it lacks), an unknown one.
    assert_eq!(
        offset_commit_v10(&mut c, "g-id", &[(id, 0, 9), (stranger, 0, 1), (id, 7, 1)]),
        vec![
            (id, vec![(0, NONE), (7, E::UnknownTopicOrPartition.code())]),
            (stranger, vec![(0, unknown_id)]),
        ]
    );
    // Fetch by id: a partition without an offset is -1 (no error); an
    // unknown id comes after the known topics with offset -1.
    let asked: &[(uuid::Uuid, &[i32])] = &[(stranger, &[0]), (id, &[0, 1, 5]), (zero, &[3])];
    assert_eq!(
        offset_fetch_v10(&mut c, "g-id", Some(asked)),
        (
            NONE,
            vec![
                (id, vec![(0, 9, NONE), (1, 7, NONE), (5, -1, NONE)]),
                (stranger, vec![(0, -1, unknown_id)]),
                (zero, vec![(3, -1, unknown_id)]),
            ]
        )
    );
    // All offsets: by id; a deleted topic's offsets went with it.
    create_topic(&mut c, "t-gone", 1, &[]);
    commit_offsets(&mut c, "g-id", &[("t-gone", 0, 3)]);
    delete_topic(&mut c, "t-gone");
    assert_eq!(
        offset_fetch_v10(&mut c, "g-id", None),
        (NONE, vec![(id, vec![(0, 9, NONE), (1, 7, NONE)])])
    );
    // A group without offsets: no topics, by id or not.
    assert_eq!(offset_fetch_v10(&mut c, "g-none", None), (NONE, vec![]));
}
