//! `ReplicationControl`: the controller's decisions on topics, partitions,
//! replicas, leaders and ISR (Kafka's `ReplicationControlManager`). Each
//! function reads the current `MetadataImage` and returns the records to
//! append (one atomic batch) and the response to send; it never changes
//! the image itself: the records do, once committed.
//!
//! CONTRACT (lead, this session): the signatures below are the interface
//! the controller's request handling calls; their bodies are filled in on
//! the `replctl` branch.

use kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse,
};

use crate::metadata::{MetadataImage, RecordAndVersion};

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
}

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
pub fn create_topics(
    image: &MetadataImage,
    request: &CreateTopicsRequest,
    version: i16,
    defaults: &ReplicationDefaults,
) -> Decision<CreateTopicsResponse> {
    let _ = (image, request, version, defaults);
    unimplemented_decision()
}

/// CreatePartitions: new partitions placed as CreateTopics places them.
pub fn create_partitions(
    image: &MetadataImage,
    request: &CreatePartitionsRequest,
    version: i16,
) -> Decision<CreatePartitionsResponse> {
    let _ = (image, request, version);
    unimplemented_decision()
}

/// DeleteTopics: RemoveTopicRecords (and the topic's ConfigRecords gone).
pub fn delete_topics(
    image: &MetadataImage,
    request: &DeleteTopicsRequest,
    version: i16,
) -> Decision<DeleteTopicsResponse> {
    let _ = (image, request, version);
    unimplemented_decision()
}

/// AlterPartition from a partition leader (ISR shrink/expand), validated as
/// Kafka's controller does (broker epoch, leader epoch, partition epoch,
/// ISR members alive and unfenced...).
pub fn alter_partition(
    image: &MetadataImage,
    request: &AlterPartitionRequest,
    version: i16,
) -> Decision<AlterPartitionResponse> {
    let _ = (image, request, version);
    unimplemented_decision()
}

/// A broker missed its session (or asked to be fenced): a FenceBrokerRecord
/// (or BrokerRegistrationChange) plus the PartitionChangeRecords that move
/// leadership off it and take it out of every ISR (never below one member:
/// Kafka keeps the last ISR member and leaves the partition leaderless).
pub fn fence_broker(
    image: &MetadataImage,
    broker_id: i32,
    defaults: &ReplicationDefaults,
) -> Vec<RecordAndVersion> {
    let _ = (image, broker_id, defaults);
    Vec::new()
}

/// A registered broker caught up and is unfenced: the UnfenceBrokerRecord
/// plus elections for leaderless partitions it can lead.
pub fn unfence_broker(
    image: &MetadataImage,
    broker_id: i32,
    defaults: &ReplicationDefaults,
) -> Vec<RecordAndVersion> {
    let _ = (image, broker_id, defaults);
    Vec::new()
}

/// Controlled shutdown (BrokerHeartbeat with want_shut_down): leadership
/// moved away from the broker and it leaves the ISRs, as Kafka's
/// `handleBrokerInControlledShutdown`.
pub fn controlled_shutdown(
    image: &MetadataImage,
    broker_id: i32,
    defaults: &ReplicationDefaults,
) -> Vec<RecordAndVersion> {
    let _ = (image, broker_id, defaults);
    Vec::new()
}

fn unimplemented_decision<R: Default>() -> Decision<R> {
    Decision {
        records: Vec::new(),
        response: R::default(),
    }
}
