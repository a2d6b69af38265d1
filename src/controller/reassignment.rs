//! Partition reassignments, decided by the controller (Kafka's
//! `ReplicationControlManager.alterPartitionReassignments` and
//! `listPartitionReassignments`). A reassignment goes in steps:
//! 1. one PartitionChangeRecord makes the replica list the target plus the
//!    replicas being removed, and names the adding and removing replicas;
//! 2. the leader adds the new replicas to the ISR as they catch up
//!    (AlterPartition), exactly as for any follower;
//! 3. the change that brings the last target replica into the ISR also
//!    drops the removing replicas and ends the reassignment
//!    (`PartitionChangeBuilder`'s completion, so any ISR change, fencing or
//!    election completes it as soon as it can).
//!
//! A target that only reorders the replicas completes at once. Cancelling
//! reverts to the original replicas.

use kafka_protocol::messages::alter_partition_reassignments_request::ReassignablePartition;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::partition_change::{
    default_dir, is_active, leader_acceptor, Election, PartitionChangeBuilder,
    PARTITION_CHANGE_RECORD_VERSION,
};
use super::replication_control::{unclean_election_enabled, Decision, ReplicationDefaults};
use crate::broker::topics::validate_manual_assignment;
use crate::metadata::records::{MetadataRecord, PartitionChangeRecord};
use crate::metadata::{MetadataImage, PartitionRegistration, RecordAndVersion};

/// A refusal of one partition's reassignment: Kafka's error and message.
type Refusal = (ResponseError, Option<String>);

/// Whether a partition is being reassigned (`isReassignmentInProgress`).
pub fn in_progress(p: &PartitionRegistration) -> bool {
    !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()
}

/// AlterPartitionReassignments: each partition is decided on its own; the
/// records of all accepted ones form one batch.
pub fn alter_partition_reassignments(
    image: &MetadataImage,
    request: &AlterPartitionReassignmentsRequest,
    defaults: &ReplicationDefaults,
) -> Decision<AlterPartitionReassignmentsResponse> {
    // v1+ (KIP-860): the replication factor may change only when asked.
    let allow_rf_change = request.allow_replication_factor_change;
    let mut records = Vec::new();
    let mut responses = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let name = t.name.0.as_str();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for target in &t.partitions {
            let mut r = ReassignablePartitionResponse::default()
                .with_partition_index(target.partition_index)
                .with_error_message(None);
            match alter_one(image, name, target, allow_rf_change, defaults) {
                Ok(Some(change)) => records.push(RecordAndVersion {
                    record: MetadataRecord::PartitionChange(change),
                    version: PARTITION_CHANGE_RECORD_VERSION,
                }),
                Ok(None) => {}
                Err((code, message)) => {
                    tracing::info!(topic = name, partition = target.partition_index, error = ?code, message = ?message, "partition reassignment refused");
                    r.error_code = code.code();
                    r.error_message = message.map(StrBytes::from_string);
                }
            }
            partitions.push(r);
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    Decision {
        records,
        response: AlterPartitionReassignmentsResponse::default()
            .with_error_message(None)
            .with_allow_replication_factor_change(allow_rf_change)
            .with_responses(responses),
    }
}

fn alter_one(
    image: &MetadataImage,
    name: &str,
    target: &ReassignablePartition,
    allow_rf_change: bool,
    defaults: &ReplicationDefaults,
) -> Result<Option<PartitionChangeRecord>, Refusal> {
    let Some(topic) = image.topic_by_name(name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            Some(format!("Unable to find a topic named {name}.")),
        ));
    };
    let Some(part) = topic.partitions.get(&target.partition_index) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            Some(format!(
                "Unable to find partition {name}:{}.",
                target.partition_index
            )),
        ));
    };
    match &target.replicas {
        None => cancel(
            image,
            name,
            topic.id,
            target.partition_index,
            part,
            defaults,
        ),
        Some(replicas) => {
            let replicas: Vec<i32> = replicas.iter().map(|b: &BrokerId| b.0).collect();
            change(
                image,
                topic.id,
                target.partition_index,
                part,
                &replicas,
                allow_rf_change,
            )
        }
    }
}

/// `cancelPartitionReassignment`: back to the original replicas, the
/// adding ones out of the ISR (an unclean election if nothing else is in
/// it, allowed only where unclean elections are).
fn cancel(
    image: &MetadataImage,
    name: &str,
    topic_id: Uuid,
    partition_id: i32,
    part: &PartitionRegistration,
    defaults: &ReplicationDefaults,
) -> Result<Option<PartitionChangeRecord>, Refusal> {
    if !in_progress(part) {
        return Err((ResponseError::NoReassignmentInProgress, None));
    }
    let replicas: Vec<i32> = part
        .replicas
        .iter()
        .copied()
        .filter(|r| !part.adding_replicas.contains(r))
        .collect();
    let mut isr: Vec<i32> = part
        .isr
        .iter()
        .copied()
        .filter(|r| !part.adding_replicas.contains(r))
        .collect();
    let unclean_allowed = unclean_election_enabled(image, name, defaults);
    if isr.is_empty() {
        let Some(first) = replicas.first() else {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                Some("Invalid replica assignment: addingReplicas contains all replicas.".into()),
            ));
        };
        if !unclean_allowed {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                Some(format!(
                    "Unable to revert partition assignment for {name}:{partition_id} because it would require an unclean leader election."
                )),
            ));
        }
        isr.push(*first);
    }
    let acceptor = leader_acceptor(image, part, |b| is_active(image, b));
    let mut builder = PartitionChangeBuilder::new(part, topic_id, partition_id, acceptor)
        .target_isr(isr)
        .target_replicas(replicas)
        .target_removing(Vec::new())
        .target_adding(Vec::new())
        .default_dirs(|b| default_dir(image, b));
    if unclean_allowed {
        builder = builder.election(Election::Unclean);
    }
    Ok(builder.build())
}

/// `changePartitionReassignment`: the target validated as a manual
/// assignment, then the first step (or the whole move when the ISR
/// already allows it).
fn change(
    image: &MetadataImage,
    topic_id: Uuid,
    partition_id: i32,
    part: &PartitionRegistration,
    target: &[i32],
    allow_rf_change: bool,
) -> Result<Option<PartitionChangeRecord>, Refusal> {
    validate_manual_assignment(target, |b| image.brokers.contains_key(&b), None)
        .map_err(|m| (ResponseError::InvalidReplicaAssignment, Some(m)))?;
    if !allow_rf_change {
        // The replica count the partition is heading to: the target of a
        // reassignment in progress, else its replicas.
        let current = if in_progress(part) {
            part.replicas
                .iter()
                .chain(&part.adding_replicas)
                .filter(|r| !part.removing_replicas.contains(r))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        } else {
            part.replicas.len()
        };
        if current != target.len() {
            return Err((
                ResponseError::InvalidReplicationFactor,
                Some(format!(
                    "The replication factor is changed from {current} to {}",
                    target.len()
                )),
            ));
        }
    }
    // PartitionReassignmentReplicas(current, target): the target first,
    // then the current replicas it drops.
    let removing: Vec<i32> = sorted_difference(&part.replicas, target);
    let adding: Vec<i32> = sorted_difference(target, &part.replicas);
    let mut replicas = target.to_vec();
    replicas.extend(&removing);
    let acceptor = leader_acceptor(image, part, |b| is_active(image, b));
    let mut builder = PartitionChangeBuilder::new(part, topic_id, partition_id, acceptor)
        .default_dirs(|b| default_dir(image, b));
    if replicas != part.replicas {
        builder = builder.target_replicas(replicas);
    }
    if !removing.is_empty() {
        builder = builder.target_removing(removing);
    }
    if !adding.is_empty() {
        builder = builder.target_adding(adding);
    }
    Ok(builder.build())
}

/// The members of `a` not in `b`, ascending (Kafka's TreeSet difference).
fn sorted_difference(a: &[i32], b: &[i32]) -> Vec<i32> {
    let set: std::collections::BTreeSet<i32> =
        a.iter().copied().filter(|r| !b.contains(r)).collect();
    set.into_iter().collect()
}

/// ListPartitionReassignments: every partition in progress, or those of
/// the named topics and partitions (unknown ones are skipped).
pub fn list_partition_reassignments(
    image: &MetadataImage,
    request: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let ongoing = |p: i32, reg: &PartitionRegistration| {
        in_progress(reg).then(|| {
            OngoingPartitionReassignment::default()
                .with_partition_index(p)
                .with_replicas(reg.replicas.iter().map(|b| BrokerId(*b)).collect())
                .with_adding_replicas(reg.adding_replicas.iter().map(|b| BrokerId(*b)).collect())
                .with_removing_replicas(
                    reg.removing_replicas.iter().map(|b| BrokerId(*b)).collect(),
                )
        })
    };
    let mut topics = Vec::new();
    match &request.topics {
        None => {
            for t in image.topics.values() {
                let partitions: Vec<_> = t
                    .partitions
                    .iter()
                    .filter_map(|(p, reg)| ongoing(*p, reg))
                    .collect();
                if !partitions.is_empty() {
                    topics.push(
                        OngoingTopicReassignment::default()
                            .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                                t.name.clone(),
                            )))
                            .with_partitions(partitions),
                    );
                }
            }
        }
        Some(wanted) => {
            for w in wanted {
                let Some(t) = image.topic_by_name(w.name.0.as_str()) else {
                    continue;
                };
                let partitions: Vec<_> = w
                    .partition_indexes
                    .iter()
                    .filter_map(|p| t.partitions.get(p).and_then(|reg| ongoing(*p, reg)))
                    .collect();
                if !partitions.is_empty() {
                    topics.push(
                        OngoingTopicReassignment::default()
                            .with_name(w.name.clone())
                            .with_partitions(partitions),
                    );
                }
            }
        }
    }
    ListPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_topics(topics)
}

#[cfg(test)]
mod tests;
