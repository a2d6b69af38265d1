//! Reassignment decisions applied to a copy of the image, step by step,
//! compared with what Kafka's controller records.

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::alter_partition_request::{
    BrokerState, PartitionData as AlterData, TopicData as AlterTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{AlterPartitionRequest, BrokerId};

use super::*;
use crate::controller::replication_control::alter_partition;
use crate::controller::tests::{apply, cluster, defaults, name, part, with_partitions};

fn request(
    parts: &[(i32, Option<&[i32]>)],
    allow_rf_change: bool,
) -> AlterPartitionReassignmentsRequest {
    AlterPartitionReassignmentsRequest::default()
        .with_allow_replication_factor_change(allow_rf_change)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(name("t"))
            .with_partitions(
                parts
                    .iter()
                    .map(|(p, r)| {
                        ReassignablePartition::default()
                            .with_partition_index(*p)
                            .with_replicas(r.map(|r| r.iter().map(|b| BrokerId(*b)).collect()))
                    })
                    .collect(),
            )])
}

fn codes(d: &Decision<AlterPartitionReassignmentsResponse>) -> Vec<i16> {
    d.response.responses[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// The leader's AlterPartition putting `isr` in the ISR.
fn expand(image: &MetadataImage, topic: Uuid, leader: i32, isr: &[i32]) -> AlterPartitionRequest {
    let p = part(image, "t", 0);
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(leader))
        .with_broker_epoch(10 + i64::from(leader))
        .with_topics(vec![AlterTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![AlterData::default()
                .with_partition_index(0)
                .with_leader_epoch(p.leader_epoch)
                .with_partition_epoch(p.partition_epoch)
                .with_new_isr_with_epochs(
                    isr.iter()
                        .map(|b| {
                            BrokerState::default()
                                .with_broker_id(BrokerId(*b))
                                .with_broker_epoch(10 + i64::from(*b))
                        })
                        .collect(),
                )])])
}

#[test]
fn a_move_adds_first_and_removes_once_the_new_replica_is_in_sync() {
    let image = cluster(&[None, None, None, None]);
    let (image, id) = with_partitions(&image, "t", &[(&[1, 2, 3], &[1, 2, 3], 1)]);
    let before = part(&image, "t", 0);
    let d = alter_partition_reassignments(
        &image,
        &request(&[(0, Some(&[2, 3, 4]))], false),
        &defaults(),
    );
    assert_eq!(codes(&d), vec![0]);
    let image = apply(&image, &d.records);
    let p = part(&image, "t", 0);
    // Target first, then the replicas being removed; no leader change.
    assert_eq!(p.replicas, vec![2, 3, 4, 1]);
    assert_eq!(
        (p.adding_replicas.clone(), p.removing_replicas.clone()),
        (vec![4], vec![1])
    );
    assert_eq!((p.leader, p.leader_epoch), (1, before.leader_epoch));
    assert_eq!(p.directories.len(), 4);
    assert!(in_progress(&p));

    // The leader brings 4 into the ISR: the reassignment completes, 1 leaves
    // and leadership moves to the first target replica in the ISR.
    let d = alter_partition(&image, &expand(&image, id, 1, &[1, 2, 3, 4]), 3);
    let code = d.response.topics[0].partitions[0].error_code;
    assert_eq!(code, ResponseError::NewLeaderElected.code());
    let image = apply(&image, &d.records);
    let p = part(&image, "t", 0);
    assert_eq!(p.replicas, vec![2, 3, 4]);
    assert_eq!(p.isr, vec![2, 3, 4]);
    assert_eq!((p.leader, p.leader_epoch), (2, before.leader_epoch + 1));
    assert!(!in_progress(&p));
    assert_eq!(p.directories.len(), 3);
}

#[test]
fn a_follower_move_keeps_the_leader_and_bumps_its_epoch_on_completion() {
    let image = cluster(&[None, None, None, None]);
    let (image, id) = with_partitions(&image, "t", &[(&[1, 2, 3], &[1, 2, 3], 1)]);
    let epoch = part(&image, "t", 0).leader_epoch;
    let d = alter_partition_reassignments(
        &image,
        &request(&[(0, Some(&[1, 2, 4]))], false),
        &defaults(),
    );
    let image = apply(&image, &d.records);
    let d = alter_partition(&image, &expand(&image, id, 1, &[1, 2, 3, 4]), 3);
    assert_eq!(d.response.topics[0].partitions[0].error_code, 0);
    let image = apply(&image, &d.records);
    let p = part(&image, "t", 0);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone()),
        (vec![1, 2, 4], vec![1, 2, 4])
    );
    // A replica left: the leader epoch moves so it cannot act on the old one.
    assert_eq!((p.leader, p.leader_epoch), (1, epoch + 1));
}

#[test]
fn reordering_completes_at_once_and_cancelling_reverts() {
    let image = cluster(&[None, None, None, None]);
    let (image, _) = with_partitions(
        &image,
        "t",
        &[(&[1, 2, 3], &[1, 2, 3], 1), (&[1, 2, 3], &[1, 2, 3], 1)],
    );
    let d = alter_partition_reassignments(
        &image,
        &request(&[(0, Some(&[3, 2, 1])), (1, Some(&[1, 2, 4]))], false),
        &defaults(),
    );
    assert_eq!(codes(&d), vec![0, 0]);
    let image = apply(&image, &d.records);
    let p0 = part(&image, "t", 0);
    assert_eq!(
        (p0.replicas.clone(), in_progress(&p0), p0.leader),
        (vec![3, 2, 1], false, 1)
    );

    let listed =
        list_partition_reassignments(&image, &ListPartitionReassignmentsRequest::default());
    assert_eq!(listed.topics.len(), 1);
    let ongoing = &listed.topics[0].partitions;
    assert_eq!(ongoing.len(), 1);
    assert_eq!(ongoing[0].partition_index, 1);
    assert_eq!(ongoing[0].adding_replicas, vec![BrokerId(4)]);
    assert_eq!(ongoing[0].removing_replicas, vec![BrokerId(3)]);
    assert_eq!(ongoing[0].replicas.len(), 4);
    let named = ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
        ListPartitionReassignmentsTopics::default()
            .with_name(name("t"))
            .with_partition_indexes(vec![0, 1, 7]),
        ListPartitionReassignmentsTopics::default()
            .with_name(name("nope"))
            .with_partition_indexes(vec![0]),
    ]));
    let listed = list_partition_reassignments(&image, &named);
    assert_eq!(listed.topics.len(), 1);
    assert_eq!(listed.topics[0].partitions.len(), 1);

    // Cancel partition 1: back to [1, 2, 3]; cancelling 0 finds nothing.
    let d = alter_partition_reassignments(
        &image,
        &request(&[(1, None), (0, None)], false),
        &defaults(),
    );
    assert_eq!(
        codes(&d),
        vec![0, ResponseError::NoReassignmentInProgress.code()]
    );
    let image = apply(&image, &d.records);
    let p1 = part(&image, "t", 1);
    assert_eq!(
        (p1.replicas.clone(), p1.isr.clone(), in_progress(&p1)),
        (vec![1, 2, 3], vec![1, 2, 3], false)
    );
}

#[test]
fn refusals_name_kafkas_errors() {
    let image = cluster(&[None, None, None]);
    let (image, _) = with_partitions(&image, "t", &[(&[1, 2], &[1, 2], 1)]);
    let d = alter_partition_reassignments(
        &image,
        &request(
            &[
                (5, Some(&[1, 2])),
                (0, Some(&[1, 9])),
                (0, Some(&[1, 1])),
                (0, Some(&[1, 2, 3])),
            ],
            false,
        ),
        &defaults(),
    );
    assert!(d.records.is_empty());
    assert_eq!(
        codes(&d),
        vec![
            ResponseError::UnknownTopicOrPartition.code(),
            ResponseError::InvalidReplicaAssignment.code(),
            ResponseError::InvalidReplicaAssignment.code(),
            ResponseError::InvalidReplicationFactor.code(),
        ]
    );
    let msgs: Vec<_> = d.response.responses[0]
        .partitions
        .iter()
        .map(|p| p.error_message.as_ref().map(|m| m.to_string()))
        .collect();
    assert_eq!(msgs[0].as_deref(), Some("Unable to find partition t:5."));
    assert_eq!(
        msgs[3].as_deref(),
        Some("The replication factor is changed from 2 to 3")
    );
    // KIP-860: allowed when the request says so.
    let d = alter_partition_reassignments(
        &image,
        &request(&[(0, Some(&[1, 2, 3]))], true),
        &defaults(),
    );
    assert_eq!(codes(&d), vec![0]);
    assert!(d.response.allow_replication_factor_change);
    let mut unknown = request(&[(0, Some(&[1]))], false);
    unknown.topics[0].name = name("nope");
    let d = alter_partition_reassignments(&image, &unknown, &defaults());
    assert_eq!(
        codes(&d),
        vec![ResponseError::UnknownTopicOrPartition.code()]
    );
}
