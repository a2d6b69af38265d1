//! Broker liveness (fence, unfence, controlled shutdown) and AlterPartition
//! decisions, applied to a copy of the image and compared with Kafka's.

use kafka_protocol::messages::alter_partition_request::{
    BrokerState, PartitionData as AlterData, TopicData as AlterTopic,
};
use kafka_protocol::messages::{AlterPartitionRequest, BrokerId};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::*;
use crate::controller::partition_change::RECOVERING;
use crate::controller::tests::{apply, cluster, defaults, part, with_partitions};
use crate::metadata::records::{MetadataRecord, NO_LEADER_CHANGE};

fn three() -> (MetadataImage, Uuid) {
    let image = cluster(&[None, None, None]);
    with_partitions(
        &image,
        "t",
        &[
            (&[1, 2, 3], &[1, 2, 3], 1), // 1 leads
            (&[2, 1, 3], &[2, 1, 3], 2), // 1 follows
            (&[1, 2], &[1], 1),          // 1 is the last ISR member
            (&[2, 3], &[2, 3], 2),       // 1 is no replica
        ],
    )
}

fn changes(records: &[RecordAndVersion]) -> Vec<&crate::metadata::records::PartitionChangeRecord> {
    records
        .iter()
        .filter_map(|r| match &r.record {
            MetadataRecord::PartitionChange(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn fencing_moves_leadership_and_shrinks_isrs() {
    let (image, _) = three();
    let records = fence_broker(&image, 1, &defaults());
    // Partition changes first, then the registration change (v0, fenced=1).
    let last = records.last().unwrap();
    assert_eq!(last.version, 0);
    let MetadataRecord::BrokerRegistrationChange(c) = &last.record else {
        panic!("{last:?}");
    };
    assert_eq!(
        (
            c.broker_id,
            c.broker_epoch,
            c.fenced,
            c.in_controlled_shutdown
        ),
        (1, 11, 1, 0)
    );
    assert_eq!(
        changes(&records).len(),
        3,
        "partition 3 does not involve broker 1"
    );
    let after = apply(&image, &records);
    assert!(after.brokers[&1].fenced);
    // Leader moves to the next live ISR member in replica order.
    let p0 = part(&after, "t", 0);
    assert_eq!(
        (
            p0.leader,
            p0.isr.clone(),
            p0.leader_epoch,
            p0.partition_epoch
        ),
        (2, vec![2, 3], 6, 8)
    );
    // A follower leaves the ISR: no leader epoch bump (Kafka 3.6+).
    let p1 = part(&after, "t", 1);
    assert_eq!(
        (
            p1.leader,
            p1.isr.clone(),
            p1.leader_epoch,
            p1.partition_epoch
        ),
        (2, vec![2, 3], 5, 8)
    );
    // The last ISR member stays; the partition is leaderless.
    let p2 = part(&after, "t", 2);
    assert_eq!(
        (p2.leader, p2.isr.clone(), p2.leader_epoch),
        (-1, vec![1], 6)
    );
    assert_eq!(part(&after, "t", 3), part(&image, "t", 3));
    // Fencing a fenced or unknown broker writes nothing.
    assert!(fence_broker(&after, 1, &defaults()).is_empty());
    assert!(fence_broker(&after, 9, &defaults()).is_empty());
}

#[test]
fn unfencing_elects_the_broker_where_it_is_in_the_isr() {
    let (image, _) = three();
    let fenced = apply(&image, &fence_broker(&image, 1, &defaults()));
    let records = unfence_broker(&fenced, 1, &defaults());
    let MetadataRecord::BrokerRegistrationChange(c) = &records[0].record else {
        panic!("{:?}", records[0]);
    };
    assert_eq!((c.fenced, records[0].version), (-1, 0));
    // Only the leaderless partition 2 changes: 1 is its ISR.
    assert_eq!(changes(&records).len(), 1);
    let after = apply(&fenced, &records);
    assert!(!after.brokers[&1].fenced);
    let p2 = part(&after, "t", 2);
    assert_eq!(
        (p2.leader, p2.isr.clone(), p2.leader_epoch),
        (1, vec![1], 7)
    );
    // Elsewhere it comes back as a follower, and through AlterPartition.
    assert_eq!(part(&after, "t", 0).leader, 2);
    assert!(unfence_broker(&after, 1, &defaults()).is_empty());
}

#[test]
fn unclean_election_only_when_enabled() {
    let image = cluster(&[None, None]);
    let (image, _) = with_partitions(&image, "u", &[(&[1, 2], &[1], 1)]);
    // Off (the default): leaderless, ISR kept.
    let off = apply(&image, &fence_broker(&image, 1, &defaults()));
    assert_eq!(part(&off, "u", 0).leader, -1);
    // On by the cluster default: 2 leads alone, RECOVERING.
    let mut d = defaults();
    d.unclean_leader_election = true;
    let on = apply(&image, &fence_broker(&image, 1, &d));
    let p = part(&on, "u", 0);
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_recovery_state),
        (2, vec![2], RECOVERING)
    );
    // The topic's config overrides the cluster default.
    let cfg = RecordAndVersion {
        record: MetadataRecord::Config(crate::metadata::records::ConfigRecord {
            resource_type: 2,
            resource_name: "u".into(),
            name: "unclean.leader.election.enable".into(),
            value: Some("false".into()),
        }),
        version: 0,
    };
    let image = apply(&image, &[cfg]);
    let off = apply(&image, &fence_broker(&image, 1, &d));
    assert_eq!(part(&off, "u", 0).leader, -1);
}

#[test]
fn controlled_shutdown_moves_leadership_once() {
    let (image, _) = three();
    let records = controlled_shutdown(&image, 1, &defaults());
    let MetadataRecord::BrokerRegistrationChange(c) = &records[0].record else {
        panic!("{:?}", records[0]);
    };
    assert_eq!(
        (c.in_controlled_shutdown, c.fenced, records[0].version),
        (1, 0, 1)
    );
    let after = apply(&image, &records);
    assert!(after.brokers[&1].in_controlled_shutdown);
    assert_eq!(part(&after, "t", 0).leader, 2);
    assert!(!part(&after, "t", 1).isr.contains(&1));
    assert_eq!(part(&after, "t", 2).leader, -1);
    // Heartbeats repeat the wish: no second registration change, nothing left.
    assert!(controlled_shutdown(&after, 1, &defaults()).is_empty());
}

fn alter(
    topic: Uuid,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: &[(i32, i64)],
) -> AlterPartitionRequest {
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(1))
        .with_broker_epoch(11)
        .with_topics(vec![AlterTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![AlterData::default()
                .with_partition_index(0)
                .with_leader_epoch(leader_epoch)
                .with_partition_epoch(partition_epoch)
                .with_new_isr_with_epochs(
                    isr.iter()
                        .map(|(b, e)| {
                            BrokerState::default()
                                .with_broker_id(BrokerId(*b))
                                .with_broker_epoch(*e)
                        })
                        .collect(),
                )])])
}

fn code(d: &Decision<AlterPartitionResponse>) -> Option<ResponseError> {
    let c = d.response.topics[0].partitions[0].error_code;
    (c != 0).then(|| ResponseError::try_from_code(c).unwrap())
}

#[test]
fn alter_partition_shrinks_and_expands() {
    let (image, id) = three();
    let d = alter_partition(&image, &alter(id, 5, 7, &[(1, 11), (3, 13)]), 3);
    assert_eq!(code(&d), None);
    let r = &d.response.topics[0].partitions[0];
    assert_eq!(
        (r.leader_id.0, r.leader_epoch, r.partition_epoch),
        (1, 5, 8)
    );
    assert_eq!(r.isr.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 3]);
    let after = apply(&image, &d.records);
    let p = part(&after, "t", 0);
    assert_eq!(
        (p.isr.clone(), p.leader_epoch, p.partition_epoch),
        (vec![1, 3], 5, 8)
    );
    // v2: the ISR as plain ids, back to all three.
    let mut req = alter(id, 5, 8, &[]);
    req.topics[0].partitions[0].new_isr = vec![BrokerId(1), BrokerId(3), BrokerId(2)];
    let d = alter_partition(&after, &req, 2);
    assert_eq!(code(&d), None);
    assert_eq!(part(&apply(&after, &d.records), "t", 0).isr, [1, 3, 2]);
    // An unchanged ISR writes nothing and answers the current state.
    let d = alter_partition(&image, &alter(id, 5, 7, &[(1, 11), (2, 12), (3, 13)]), 3);
    assert!(d.records.is_empty());
    assert_eq!(d.response.topics[0].partitions[0].partition_epoch, 7);
}

#[test]
fn alter_partition_refusals_are_kafkas() {
    let (image, id) = three();
    let image = apply(&image, &fence_broker(&image, 3, &defaults()));
    // p0 after fencing 3: ISR [1,2], leader 1, epochs (5, 8).
    let ok = [(1, 11), (2, 12)];
    let cases: Vec<(AlterPartitionRequest, ResponseError)> = vec![
        (alter(id, 6, 8, &ok), ResponseError::NotController),
        (alter(id, 5, 9, &ok), ResponseError::NotController),
        (alter(id, 4, 8, &ok), ResponseError::FencedLeaderEpoch),
        (alter(id, 5, 7, &ok), ResponseError::InvalidUpdateVersion),
        (alter(id, 5, 8, &[(2, 12)]), ResponseError::InvalidRequest),
        (
            alter(id, 5, 8, &[(1, 11), (4, 14)]),
            ResponseError::InvalidRequest,
        ),
        (
            alter(id, 5, 8, &[(1, 11), (1, 11)]),
            ResponseError::InvalidRequest,
        ),
        (
            alter(id, 5, 8, &[(1, 11), (3, 13)]),
            ResponseError::IneligibleReplica,
        ),
        (
            alter(id, 5, 8, &[(1, 11), (2, 99)]),
            ResponseError::IneligibleReplica,
        ),
        (
            alter(Uuid::from_u128(5), 5, 8, &ok),
            ResponseError::UnknownTopicId,
        ),
    ];
    for (req, want) in cases {
        let d = alter_partition(&image, &req, 3);
        assert!(d.records.is_empty(), "{want:?}");
        assert_eq!(code(&d), Some(want));
    }
    let mut not_leader = alter(id, 5, 8, &ok);
    not_leader.broker_id = BrokerId(2);
    not_leader.broker_epoch = 12;
    assert_eq!(
        code(&alter_partition(&image, &not_leader, 3)),
        Some(ResponseError::InvalidRequest)
    );
    let mut unknown = alter(id, 5, 8, &ok);
    unknown.topics[0].partitions[0].partition_index = 9;
    assert_eq!(
        code(&alter_partition(&image, &unknown, 3)),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    let mut stale = alter(id, 5, 8, &ok);
    stale.broker_epoch = 1;
    let d = alter_partition(&image, &stale, 3);
    assert_eq!(
        d.response.error_code,
        ResponseError::StaleBrokerEpoch.code()
    );
    assert!(d.response.topics.is_empty() && d.records.is_empty());
    let _ = NO_LEADER_CHANGE;
}
