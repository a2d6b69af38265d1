//! The controller (Kafka's KRaft controller role): what the metadata
//! quorum decides. [`replication_control`] turns requests and broker
//! liveness into metadata records over the current `MetadataImage`
//! (Kafka's `ReplicationControlManager`), with [`topic_creation`],
//! [`partition_change`] (`PartitionChangeBuilder`) and [`replica_placer`]
//! (`StripedReplicaPlacer`), and [`producer_id_control`] hands out
//! producer-id blocks (`ProducerIdControlManager`), [`configuration_control`]
//! decides config changes (`ConfigurationControlManager`); [`scram_control`] and
//! [`client_quota_control`] decide SCRAM credentials and client quotas
//! (`ScramControlManager`, `ClientQuotaControlManager`): pure functions, no I/O. The quorum itself
//! (openraft) lives in `raft`; the controller's request handling and its
//! broker heartbeats are wired above this module.

pub mod acl_control;
pub mod broker_heartbeat_manager;
pub mod client_quota_control;
pub mod configuration_control;
pub mod controller_mutation_quota;
pub mod elect_leaders;
pub mod feature_control;
pub mod partition_change;
pub mod producer_id_control;
pub mod quorum_controller;
pub mod reassignment;
pub mod replica_placer;
pub mod replication_control;
pub mod scram_control;
#[cfg(test)]
mod tests;
pub mod topic_creation;
