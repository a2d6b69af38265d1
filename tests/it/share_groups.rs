//! KIP-932 share groups over the raw protocol: ShareGroupHeartbeat (join,
//! assignment of a partition to every member, leave, Kafka's validation
//! messages, the group-id namespace shared with consumer groups),
//! ShareGroupDescribe, ShareFetch share sessions and their errors,
//! acquisition (one member at a time), ACCEPT/RELEASE/REJECT, the
//! acquisition lock timeout and the delivery count limit.

use std::time::Duration;

use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError as E;
use uuid::Uuid;

use crate::support::produce::produce_ok;
use crate::support::simple_batch;
use crate::support::topics::create_topic;
use crate::support::{find_coordinators, sb, tn, Broker, Client, NONE};

fn start() -> Broker {
    let b = Broker::start(&[
        "group.share.min.record.lock.duration.ms=1000",
        "group.share.record.lock.duration.ms=1000",
        "group.share.delivery.count.limit=2",
        "group.share.min.delivery.count.limit=2",
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

/// A ShareFetch of partition 0 of `topic`, with optional acknowledgements.
fn fetch(
    c: &mut Client,
    group: &str,
    member: &str,
    epoch: i32,
    topic: Uuid,
    acks: Vec<(i64, i64, i8)>,
) -> ShareFetchResponse {
    let part = FetchPartition::default()
        .with_partition_index(0)
        .with_acknowledgement_batches(
            acks.into_iter()
                .map(|(f, l, t)| {
                    AcknowledgementBatch::default()
                        .with_first_offset(f)
                        .with_last_offset(l)
                        .with_acknowledge_types(vec![t])
                })
                .collect(),
        );
    let req = ShareFetchRequest::default()
        .with_group_id(Some(GroupId(sb(group))))
        .with_member_id(Some(sb(member)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(200)
        .with_max_bytes(1 << 20)
        .with_max_records(500)
        .with_batch_size(500)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![part])]);
    c.call(1, &req)
}

/// (first, last, delivery count) of partition 0's acquired records.
fn acquired(r: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .flat_map(|p| p.acquired_records.iter())
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

fn ack_error(r: &ShareFetchResponse) -> i16 {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.acknowledge_error_code)
        .find(|c| *c != 0)
        .unwrap_or(0)
}

fn set_earliest(c: &mut Client, group: &str) {
    use kafka_protocol::messages::incremental_alter_configs_request::*;
    let r: IncrementalAlterConfigsResponse = c.call(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(sb(group))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(sb("share.auto.offset.reset"))
                    .with_config_operation(0)
                    .with_value(Some(sb("earliest")))]),
        ]),
    );
    assert_eq!(r.responses[0].error_code, NONE, "{r:?}");
}

#[test]
fn heartbeat_rules_and_assignment() {
    let b = start();
    let mut c = b.client();
    let id = create_topic(&mut c, "st", 1, &[]);
    let invalid = E::InvalidRequest.code();
    for (req, msg) in [
        (hb("g", "", 0, Some(&["st"])), "MemberId can't be empty."),
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
    // Two members share the one partition.
    let a = beat(&mut c, &hb("g", "a", 0, Some(&["st"])));
    assert_eq!((a.error_code, a.member_epoch), (NONE, 1));
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
    let ack = |first: i64, last: i64, t: i8| {
        AcknowledgeTopic::default()
            .with_topic_id(id)
            .with_partitions(vec![AcknowledgePartition::default()
                .with_partition_index(0)
                .with_acknowledgement_batches(vec![AckBatch::default()
                    .with_first_offset(first)
                    .with_last_offset(last)
                    .with_acknowledge_types(vec![t])])])
    };
    let sa = |epoch: i32, topics: Vec<AcknowledgeTopic>| {
        ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(sb("sg"))))
            .with_member_id(Some(sb("a")))
            .with_share_session_epoch(epoch)
            .with_topics(topics)
    };
    let r: ShareAcknowledgeResponse = c.call(1, &sa(0, vec![ack(0, 3, 1)]));
    assert_eq!(r.error_code, E::InvalidShareSessionEpoch.code());
    let r: ShareAcknowledgeResponse =
        c.call(1, &sa(1, vec![ack(0, 3, 1), ack(4, 5, 2), ack(6, 9, 3)]));
    assert_eq!(r.error_code, NONE);
    assert!(
        r.responses
            .iter()
            .flat_map(|t| &t.partitions)
            .all(|p| p.error_code == NONE),
        "{r:?}"
    );
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
        acquired(&fetch(&mut c, "sg", "a", 2, id, vec![])),
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
