//! `ReplicationControl`: the controller's decisions on topics, partitions,
//! replicas, leaders and ISR (Kafka's `ReplicationControlManager`). Each
//! function reads the current `MetadataImage` and returns the records to
//! append (one atomic batch) and the response to send; it never changes
//! the image itself: the records do, once committed. Topic creation lives
//! in [`super::topic_creation`], elections in [`super::partition_change`].

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_response::{
    PartitionData as AlterPartitionResult, TopicData as AlterPartitionTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, BrokerId, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::partition_change::{
    is_active, leader_acceptor, Election, PartitionChangeBuilder, NO_LEADER,
    PARTITION_CHANGE_RECORD_VERSION, RECOVERED, RECOVERING,
};
use crate::config::BrokerConfig;
use crate::metadata::image::CONFIG_RESOURCE_TOPIC;
use crate::metadata::records::{BrokerRegistrationChangeRecord, MetadataRecord};
use crate::metadata::{MetadataImage, PartitionRegistration, RecordAndVersion};

/// The cluster defaults CreateTopics falls back on (broker configs of the
/// controller: `num.partitions`, `default.replication.factor`) and the
/// settings elections read.
#[derive(Debug, Clone)]
pub struct ReplicationDefaults {
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    /// `unclean.leader.election.enable` (cluster default; topic configs in
    /// the image override it).
    pub unclean_leader_election: bool,
    /// `min.insync.replicas` cluster default (topic configs override).
    pub min_insync_replicas: i32,
    /// The controller's static configuration: topic configs are validated
    /// against it and CreateTopics v5+ reports the effective values from it
    /// (Kafka's `ConfigurationControlManager` reads the controller's).
    pub broker_config: Arc<BrokerConfig>,
}

impl ReplicationDefaults {
    /// The defaults a node's configuration gives.
    pub fn from_config(config: Arc<BrokerConfig>) -> Self {
        ReplicationDefaults {
            num_partitions: config.num_partitions,
            // The configured value (`BrokerConfig::default_replication_factor`
            // is a standalone node's, kept at one).
            default_replication_factor: config.int("default.replication.factor").clamp(1, 32767)
                as i16,
            unclean_leader_election: config.boolean("unclean.leader.election.enable"),
            min_insync_replicas: i32::try_from(config.int("min.insync.replicas")).unwrap_or(1),
            broker_config: config,
        }
    }
}

/// Kafka's `ControllerRequestContext.applyPartitionChangeQuota`: charges
/// `n` partition mutations to the requesting client; `Err(throttle_ms)`
/// refuses them (a strict quota already exhausted).
pub type PartitionChangeQuota<'a> = dyn FnMut(i32) -> Result<(), i32> + 'a;

/// A quota that charges nothing (a broker's own requests; tests).
pub fn unbounded(_partitions: i32) -> Result<(), i32> {
    Ok(())
}

/// The message of a mutation refused by the quota (Kafka's
/// `Errors.THROTTLING_QUOTA_EXCEEDED.message()`).
pub const THROTTLING_QUOTA_EXCEEDED_MESSAGE: &str = "The throttling quota has been exceeded.";

/// Records to append as one batch, and the response for the request.
pub struct Decision<R> {
    pub records: Vec<RecordAndVersion>,
    pub response: R,
}

/// CreateTopics at `version`: validates names, counts and manual
/// assignments against the image, places replicas over the unfenced
/// brokers (rack-aware, striped as Kafka's `StripedReplicaPlacer`), elects
/// the first live replica leader, and returns TopicRecord + PartitionRecords
/// (+ ConfigRecords for the topic configs) for every topic that succeeds.
/// Each valid topic's partitions are charged to `quota` (validate_only
/// too, as Kafka's `createTopic` does).
pub fn create_topics(
    image: &MetadataImage,
    request: &CreateTopicsRequest,
    version: i16,
    defaults: &ReplicationDefaults,
    quota: &mut PartitionChangeQuota<'_>,
) -> Decision<CreateTopicsResponse> {
    super::topic_creation::create_topics(image, request, version, defaults, quota)
}

/// CreatePartitions: new partitions placed as CreateTopics places them,
/// the added ones charged to `quota`.
pub fn create_partitions(
    image: &MetadataImage,
    request: &CreatePartitionsRequest,
    version: i16,
    quota: &mut PartitionChangeQuota<'_>,
) -> Decision<CreatePartitionsResponse> {
    super::topic_creation::create_partitions(image, request, version, quota)
}

/// DeleteTopics: RemoveTopicRecords (the image drops the topic's configs
/// with it). Topics by name (v0-5) or by name or id (v6+); duplicates,
/// unknown topics and internal topics refused as Kafka's `ControllerApis`;
/// each deleted topic's partitions are charged to `quota`.
pub fn delete_topics(
    image: &MetadataImage,
    request: &DeleteTopicsRequest,
    version: i16,
    quota: &mut PartitionChangeQuota<'_>,
) -> Decision<DeleteTopicsResponse> {
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let count = |key: &(Option<String>, Uuid)| {
        targets
            .iter()
            .filter(|t| match (&key.0, &t.0) {
                (Some(a), Some(b)) => a == b,
                (None, None) => key.1 == t.1,
                _ => false,
            })
            .count()
    };
    let mut records = Vec::new();
    let mut responses = Vec::with_capacity(targets.len());
    for target in &targets {
        let (name, id) = target;
        let mut r = DeletableTopicResult::default().with_topic_id(*id);
        r.name = name.clone().map(|n| TopicName(StrBytes::from_string(n)));
        let fail = |mut r: DeletableTopicResult, code: ResponseError, msg: String| {
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(msg));
            r
        };
        if name.is_some() && !id.is_nil() {
            responses.push(fail(
                r,
                ResponseError::InvalidRequest,
                "You may not specify both topic name and topic id.".into(),
            ));
            continue;
        }
        if name.is_none() && id.is_nil() {
            responses.push(fail(
                r,
                ResponseError::InvalidRequest,
                "Neither topic name nor id were specified.".into(),
            ));
            continue;
        }
        if count(target) > 1 {
            let msg = match name {
                Some(_) => "Duplicate topic name.",
                None => "Duplicate topic id.",
            };
            responses.push(fail(r, ResponseError::InvalidRequest, msg.into()));
            continue;
        }
        let topic = match name {
            Some(n) => image
                .topic_by_name(n)
                .ok_or(ResponseError::UnknownTopicOrPartition),
            None => image.topics.get(id).ok_or(ResponseError::UnknownTopicId),
        };
        let topic = match topic {
            Ok(t) => t,
            Err(code) => {
                let msg = if code == ResponseError::UnknownTopicId {
                    "This server does not host this topic ID."
                } else {
                    "This server does not host this topic-partition."
                };
                responses.push(fail(r, code, msg.into()));
                continue;
            }
        };
        r.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
        r.topic_id = topic.id;
        if crate::broker::topics::is_internal_topic(&topic.name) {
            let msg = format!("Cannot delete internal topic {}", topic.name);
            responses.push(fail(r, ResponseError::InvalidRequest, msg));
            continue;
        }
        if quota(topic.partitions.len() as i32).is_err() {
            let msg = THROTTLING_QUOTA_EXCEEDED_MESSAGE.to_string();
            responses.push(fail(r, ResponseError::ThrottlingQuotaExceeded, msg));
            continue;
        }
        records.push(RecordAndVersion {
            record: MetadataRecord::RemoveTopic { topic_id: topic.id },
            version: 0,
        });
        responses.push(r);
    }
    Decision {
        records,
        response: DeleteTopicsResponse::default().with_responses(responses),
    }
}

/// Kafka's `ConfigurationControlManager.uncleanLeaderElectionEnabledForTopic`:
/// the topic's config, else the cluster default.
pub fn unclean_election_enabled(
    image: &MetadataImage,
    topic: &str,
    defaults: &ReplicationDefaults,
) -> bool {
    image
        .configs
        .get(&(CONFIG_RESOURCE_TOPIC, topic.to_string()))
        .and_then(|c| c.get("unclean.leader.election.enable"))
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
        .unwrap_or(defaults.unclean_leader_election)
}

fn change_record(c: crate::metadata::records::PartitionChangeRecord) -> RecordAndVersion {
    RecordAndVersion {
        record: MetadataRecord::PartitionChange(c),
        version: PARTITION_CHANGE_RECORD_VERSION,
    }
}

/// AlterPartition from a partition leader (ISR shrink/expand), validated as
/// Kafka's `ReplicationControlManager.alterPartition` (v2+: topics by id;
/// v3 carries each new ISR member's broker epoch).
pub fn alter_partition(
    image: &MetadataImage,
    request: &AlterPartitionRequest,
    version: i16,
) -> Decision<AlterPartitionResponse> {
    let broker_id = request.broker_id.0;
    // clusterControl.checkBrokerEpoch: the whole request is refused.
    let stale = match image.brokers.get(&broker_id) {
        None => true,
        Some(b) => b.epoch != request.broker_epoch,
    };
    if stale {
        return Decision {
            records: Vec::new(),
            response: AlterPartitionResponse::default()
                .with_error_code(ResponseError::StaleBrokerEpoch.code()),
        };
    }
    let mut records = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in &request.topics {
        let mut out = AlterPartitionTopicResult::default().with_topic_id(t.topic_id);
        let Some(topic) = image
            .topics
            .get(&t.topic_id)
            .filter(|_| !t.topic_id.is_nil())
        else {
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    AlterPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(ResponseError::UnknownTopicId.code())
                })
                .collect();
            topics.push(out);
            continue;
        };
        for pd in &t.partitions {
            let new_isr: Vec<(i32, i64)> = if version < 3 {
                pd.new_isr.iter().map(|b| (b.0, -1)).collect()
            } else {
                pd.new_isr_with_epochs
                    .iter()
                    .map(|s| (s.broker_id.0, s.broker_epoch))
                    .collect()
            };
            let error_only = |code: ResponseError| {
                AlterPartitionResult::default()
                    .with_partition_index(pd.partition_index)
                    .with_error_code(code.code())
            };
            let partition = topic.partitions.get(&pd.partition_index);
            if let Err(code) = validate_alter(image, broker_id, partition, pd, &new_isr) {
                out.partitions.push(error_only(code));
                continue;
            }
            let Some(partition) = partition else {
                continue;
            };
            let acceptor = leader_acceptor(image, partition, |b| is_active(image, b));
            let mut builder =
                PartitionChangeBuilder::new(partition, topic.id, pd.partition_index, acceptor)
                    .target_isr(new_isr.iter().map(|(b, _)| *b).collect())
                    .target_leader_recovery_state(pd.leader_recovery_state);
            if unclean_by_topic_config(image, &topic.name) {
                builder = builder.election(Election::Unclean);
            }
            let mut current = partition.clone();
            if let Some(change) = builder.build() {
                let leader = change.leader;
                current = merged(partition, &change);
                records.push(change_record(change));
                if leader != broker_id && leader != crate::metadata::records::NO_LEADER_CHANGE {
                    out.partitions
                        .push(error_only(ResponseError::NewLeaderElected));
                    continue;
                }
            }
            out.partitions.push(
                AlterPartitionResult::default()
                    .with_partition_index(pd.partition_index)
                    .with_leader_id(BrokerId(current.leader))
                    .with_isr(current.isr.iter().map(|b| BrokerId(*b)).collect())
                    .with_leader_recovery_state(current.leader_recovery_state)
                    .with_leader_epoch(current.leader_epoch)
                    .with_partition_epoch(current.partition_epoch),
            );
        }
        topics.push(out);
    }
    Decision {
        records,
        response: AlterPartitionResponse::default().with_topics(topics),
    }
}

/// AlterPartition elections use the topic's own setting only when the
/// image has one (Kafka reads the effective value; the cluster default is
/// not in this request's inputs, and a leader never changes through an
/// ISR update of its own partition anyway).
fn unclean_by_topic_config(image: &MetadataImage, topic: &str) -> bool {
    image
        .configs
        .get(&(CONFIG_RESOURCE_TOPIC, topic.to_string()))
        .and_then(|c| c.get("unclean.leader.election.enable"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The registration after `change`, as the image will merge it.
fn merged(
    p: &PartitionRegistration,
    c: &crate::metadata::records::PartitionChangeRecord,
) -> PartitionRegistration {
    let mut n = p.clone();
    if let Some(isr) = &c.isr {
        n.isr = isr.clone();
    }
    if let Some(elr) = &c.eligible_leader_replicas {
        n.elr = elr.clone();
    }
    if c.leader != crate::metadata::records::NO_LEADER_CHANGE {
        n.leader = c.leader;
        n.leader_epoch = p.leader_epoch.saturating_add(1);
    }
    if c.leader_recovery_state != -1 {
        n.leader_recovery_state = c.leader_recovery_state;
    }
    n.partition_epoch = p.partition_epoch.saturating_add(1);
    n
}

/// `validateAlterPartitionData`, in Kafka's order.
fn validate_alter(
    image: &MetadataImage,
    broker_id: i32,
    partition: Option<&PartitionRegistration>,
    pd: &kafka_protocol::messages::alter_partition_request::PartitionData,
    new_isr: &[(i32, i64)],
) -> Result<(), ResponseError> {
    let Some(p) = partition else {
        return Err(ResponseError::UnknownTopicOrPartition);
    };
    // A leader ahead of us: this controller is probably not the active one.
    if pd.leader_epoch > p.leader_epoch || pd.partition_epoch > p.partition_epoch {
        return Err(ResponseError::NotController);
    }
    if pd.leader_epoch < p.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if broker_id != p.leader {
        return Err(ResponseError::InvalidRequest);
    }
    if pd.partition_epoch < p.partition_epoch {
        return Err(ResponseError::InvalidUpdateVersion);
    }
    // Replicas.validateIsr: distinct members, all replicas.
    let mut seen = std::collections::BTreeSet::new();
    if !new_isr
        .iter()
        .all(|(b, _)| p.replicas.contains(b) && seen.insert(*b))
    {
        return Err(ResponseError::InvalidRequest);
    }
    if !new_isr.iter().any(|(b, _)| *b == p.leader) {
        return Err(ResponseError::InvalidRequest);
    }
    if pd.leader_recovery_state == RECOVERING && new_isr.len() > 1 {
        return Err(ResponseError::InvalidRequest);
    }
    if p.leader_recovery_state == RECOVERED && pd.leader_recovery_state == RECOVERING {
        return Err(ResponseError::InvalidRequest);
    }
    if !matches!(pd.leader_recovery_state, RECOVERED | RECOVERING) {
        return Err(ResponseError::InvalidRequest);
    }
    let ineligible = new_isr.iter().any(|(b, epoch)| match image.brokers.get(b) {
        None => true,
        Some(r) => r.in_controlled_shutdown || r.fenced || (*epoch != -1 && r.epoch != *epoch),
    });
    if ineligible {
        return Err(ResponseError::IneligibleReplica);
    }
    Ok(())
}

/// `generateLeaderAndIsrUpdates` over every partition `select` picks:
/// `remove` leaves the ISRs and leadership, `add` may lead even while the
/// image still shows it fenced.
fn leader_and_isr_updates(
    image: &MetadataImage,
    remove: i32,
    add: i32,
    defaults: &ReplicationDefaults,
    select: impl Fn(&PartitionRegistration) -> bool,
) -> Vec<RecordAndVersion> {
    let mut out = Vec::new();
    for topic in image.topics.values() {
        let unclean = unclean_election_enabled(image, &topic.name, defaults);
        for (id, p) in topic.partitions.iter().filter(|(_, p)| select(p)) {
            let acceptable = |r: i32| r != remove && (r == add || is_active(image, r));
            let acceptor = leader_acceptor(image, p, acceptable);
            let target: Vec<i32> = p.isr.iter().copied().filter(|r| *r != remove).collect();
            let mut builder =
                PartitionChangeBuilder::new(p, topic.id, *id, acceptor).target_isr(target);
            if unclean {
                builder = builder.election(Election::Unclean);
            }
            if let Some(change) = builder.build() {
                out.push(change_record(change));
            }
        }
    }
    out
}

/// A broker missed its session (or asked to be fenced): the
/// PartitionChangeRecords that move leadership off it and take it out of
/// every ISR (never below one member: Kafka keeps the last ISR member and
/// leaves the partition leaderless), then the BrokerRegistrationChangeRecord
/// with fenced=1 (v0), as Kafka 4.x's `handleBrokerFenced`. Nothing for an
/// unknown or already fenced broker.
pub fn fence_broker(
    image: &MetadataImage,
    broker_id: i32,
    defaults: &ReplicationDefaults,
) -> Vec<RecordAndVersion> {
    let Some(b) = image.brokers.get(&broker_id).filter(|b| !b.fenced) else {
        return Vec::new();
    };
    let mut records = leader_and_isr_updates(image, broker_id, NO_LEADER, defaults, |p| {
        p.isr.contains(&broker_id)
    });
    records.push(registration_change(broker_id, b.epoch, 1, 0, 0));
    records
}

fn registration_change(
    broker_id: i32,
    broker_epoch: i64,
    fenced: i8,
    in_controlled_shutdown: i8,
    version: i16,
) -> RecordAndVersion {
    RecordAndVersion {
        record: MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id,
            broker_epoch,
            fenced,
            in_controlled_shutdown,
            log_dirs: Vec::new(),
            cordoned_log_dirs: None,
        }),
        version,
    }
}

/// A registered broker caught up and is unfenced: the
/// BrokerRegistrationChangeRecord with fenced=-1, then elections for every
/// leaderless partition (the broker may lead where it is in the ISR, or
/// anywhere it is a replica when unclean election is on), as Kafka's
/// `handleBrokerUnfenced`. Nothing for an unknown or unfenced broker.
pub fn unfence_broker(
    image: &MetadataImage,
    broker_id: i32,
    defaults: &ReplicationDefaults,
) -> Vec<RecordAndVersion> {
    let Some(b) = image.brokers.get(&broker_id).filter(|b| b.fenced) else {
        return Vec::new();
    };
    let mut records = vec![registration_change(broker_id, b.epoch, -1, 0, 0)];
    records.extend(leader_and_isr_updates(
        image,
        NO_LEADER,
        broker_id,
        defaults,
        |p| p.leader == NO_LEADER,
    ));
    records
}

/// Controlled shutdown (BrokerHeartbeat with want_shut_down): the
/// BrokerRegistrationChangeRecord with inControlledShutdown=1 (v1) unless
/// already shutting down, then leadership moved away from the broker and
/// the broker out of the ISRs, as Kafka's `handleBrokerInControlledShutdown`.
pub fn controlled_shutdown(
    image: &MetadataImage,
    broker_id: i32,
    defaults: &ReplicationDefaults,
) -> Vec<RecordAndVersion> {
    let Some(b) = image.brokers.get(&broker_id) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    if !b.in_controlled_shutdown {
        records.push(registration_change(broker_id, b.epoch, 0, 1, 1));
    }
    records.extend(leader_and_isr_updates(
        image,
        broker_id,
        NO_LEADER,
        defaults,
        |p| p.isr.contains(&broker_id),
    ));
    records
}

#[cfg(test)]
mod tests;
