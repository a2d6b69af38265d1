//! Leader elections on request and on the controller's timers (Kafka's
//! `ReplicationControlManager.electLeaders`, `maybeBalancePartitionLeaders`
//! and `maybeElectUncleanLeaders`): ElectLeaders with PREFERRED or UNCLEAN
//! elections, the auto leader rebalance (`auto.leader.rebalance.enable`:
//! in KRaft every partition not led by its preferred replica is a
//! candidate; `leader.imbalance.per.broker.percentage` is not consulted),
//! and unclean elections for leaderless partitions of topics that allow
//! them. At most `MAX_ELECTIONS_PER_IMBALANCE` elections per pass.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::partition_change::{
    is_active, leader_acceptor, Election, PartitionChangeBuilder, NO_LEADER,
    PARTITION_CHANGE_RECORD_VERSION,
};
use super::replication_control::{unclean_election_enabled, Decision, ReplicationDefaults};
use crate::metadata::records::MetadataRecord;
use crate::metadata::{MetadataImage, RecordAndVersion};

/// Kafka's `MAX_ELECTIONS_PER_IMBALANCE`.
pub const MAX_ELECTIONS_PER_IMBALANCE: usize = 1_000;

/// `ElectionType`: 0 preferred, 1 unclean.
pub const ELECTION_PREFERRED: i8 = 0;
pub const ELECTION_UNCLEAN: i8 = 1;

/// One partition's election (`electLeader`): the record to append, or the
/// error Kafka answers with its default message.
fn elect_one(
    image: &MetadataImage,
    topic: &str,
    partition_id: i32,
    unclean: bool,
) -> Result<RecordAndVersion, (ResponseError, String)> {
    let Some(t) = image.topic_by_name(topic) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("No such topic as {topic}"),
        ));
    };
    let Some(p) = t.partitions.get(&partition_id) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("No such partition as {topic}-{partition_id}"),
        ));
    };
    let has_preferred = p.replicas.first() == Some(&p.leader);
    if (!unclean && has_preferred) || (unclean && p.leader != NO_LEADER) {
        return Err((
            ResponseError::ElectionNotNeeded,
            "Leader election not needed for topic partition.".into(),
        ));
    }
    let acceptor = leader_acceptor(image, p, |b| is_active(image, b));
    let election = if unclean {
        Election::Unclean
    } else {
        Election::Preferred
    };
    match PartitionChangeBuilder::new(p, t.id, partition_id, acceptor)
        .election(election)
        .build()
    {
        Some(change) => Ok(RecordAndVersion {
            record: MetadataRecord::PartitionChange(change),
            version: PARTITION_CHANGE_RECORD_VERSION,
        }),
        None if unclean => Err((
            ResponseError::EligibleLeadersNotAvailable,
            "Eligible topic partition leaders are not available.".into(),
        )),
        None => Err((
            ResponseError::PreferredLeaderNotAvailable,
            "The preferred leader was not available.".into(),
        )),
    }
}

fn result(
    partition_id: i32,
    outcome: &Result<RecordAndVersion, (ResponseError, String)>,
) -> PartitionResult {
    let r = PartitionResult::default().with_partition_id(partition_id);
    match outcome {
        Ok(_) => r.with_error_code(0).with_error_message(None),
        Err((code, msg)) => r
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(msg.clone()))),
    }
}

/// ElectLeaders (v0 is always PREFERRED). `topic_partitions` null means
/// every partition, and then partitions that need no election are left
/// out of the answer, as Kafka does. An unknown election type refuses the
/// request (INVALID_REQUEST).
pub fn elect_leaders(
    image: &MetadataImage,
    request: &ElectLeadersRequest,
    version: i16,
) -> Decision<ElectLeadersResponse> {
    let election_type = if version == 0 {
        ELECTION_PREFERRED
    } else {
        request.election_type
    };
    if !matches!(election_type, ELECTION_PREFERRED | ELECTION_UNCLEAN) {
        return Decision {
            records: Vec::new(),
            response: ElectLeadersResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code()),
        };
    }
    let unclean = election_type == ELECTION_UNCLEAN;
    let mut records = Vec::new();
    let mut results = Vec::new();
    match &request.topic_partitions {
        None => {
            for (name, id) in &image.topic_ids {
                let mut out = ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(name.clone())));
                if let Some(t) = image.topics.get(id) {
                    for pid in t.partitions.keys() {
                        let outcome = elect_one(image, name, *pid, unclean);
                        if matches!(&outcome, Err((ResponseError::ElectionNotNeeded, _))) {
                            continue;
                        }
                        out.partition_result.push(result(*pid, &outcome));
                        if let Ok(r) = outcome {
                            records.push(r);
                        }
                    }
                }
                results.push(out);
            }
        }
        Some(topics) => {
            for tp in topics {
                let mut out = ReplicaElectionResult::default().with_topic(tp.topic.clone());
                for pid in &tp.partitions {
                    let outcome = elect_one(image, tp.topic.0.as_str(), *pid, unclean);
                    out.partition_result.push(result(*pid, &outcome));
                    if let Ok(r) = outcome {
                        records.push(r);
                    }
                }
                results.push(out);
            }
        }
    }
    Decision {
        records,
        response: ElectLeadersResponse::default().with_replica_election_results(results),
    }
}

/// The auto leader rebalance (`maybeBalancePartitionLeaders`): preferred
/// elections for partitions not led by their first replica, at most `max`;
/// the flag says more may remain (run again at once).
pub fn balance_partition_leaders(
    image: &MetadataImage,
    max: usize,
) -> (Vec<RecordAndVersion>, bool) {
    let mut records = Vec::new();
    'topics: for t in image.topics.values() {
        for (pid, p) in &t.partitions {
            if records.len() >= max {
                break 'topics;
            }
            if p.replicas.first() == Some(&p.leader) {
                continue;
            }
            let acceptor = leader_acceptor(image, p, |b| is_active(image, b));
            if let Some(change) = PartitionChangeBuilder::new(p, t.id, *pid, acceptor)
                .election(Election::Preferred)
                .build()
            {
                records.push(RecordAndVersion {
                    record: MetadataRecord::PartitionChange(change),
                    version: PARTITION_CHANGE_RECORD_VERSION,
                });
            }
        }
    }
    let more = records.len() >= max;
    (records, more)
}

/// `maybeElectUncleanLeaders`: unclean elections for leaderless partitions
/// of topics where `unclean.leader.election.enable` is on, at most `max`.
pub fn elect_unclean_leaders(
    image: &MetadataImage,
    defaults: &ReplicationDefaults,
    max: usize,
) -> (Vec<RecordAndVersion>, bool) {
    let mut records = Vec::new();
    'topics: for t in image.topics.values() {
        if !unclean_election_enabled(image, &t.name, defaults) {
            continue;
        }
        for (pid, p) in &t.partitions {
            if records.len() >= max {
                break 'topics;
            }
            if p.leader != NO_LEADER {
                continue;
            }
            if let Ok(r) = elect_one(image, &t.name, *pid, true) {
                records.push(r);
            }
        }
    }
    let more = records.len() >= max;
    (records, more)
}

#[cfg(test)]
mod tests;
