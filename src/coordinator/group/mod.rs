//! Consumer groups with Kafka's classic rebalance protocol, laid out as
//! Kafka 4's group coordinator is:
//!
//! - `coordinator`: `GroupCoordinator`, the facade the handlers call: one
//!   lock over the shard, the timer and expiration tasks.
//! - `group_metadata_manager`: classic membership and rebalances
//!   (`GroupMetadataManager`).
//! - `consumer`: KIP-848 consumer groups (ConsumerGroupHeartbeat,
//!   ConsumerGroupDescribe, their records, assignors and reconciliation),
//!   kept by the same `GroupMetadataManager` beside the classic groups.
//! - `share`: KIP-932 share groups' membership (ShareGroupHeartbeat,
//!   ShareGroupDescribe, the simple assignor), in memory beside the others.
//! - `offset_metadata_manager`: committed and transactional offsets
//!   (`OffsetMetadataManager`).
//! - `classic_rebalance`: the classic rebalance state machine.
//! - `classic_group` / `member`: `ClassicGroup` and `ClassicGroupMember`,
//!   the state and its pure rules. `offsets`: one group's offsets and their
//!   expiration rules.
//! - `timers`: the deadline-ordered timers. `writer`: appends to
//!   `__consumer_offsets` and the durable wait. `loader`: replays it at
//!   start-up, one record at a time.
//! - `record_serde`: `__consumer_offsets` key/value schemas
//!   (`GroupCoordinatorRecordSerde`) and the group → partition map.
//! - `api`: the operations' parameters and outcomes.
//! - `leadership`: a cluster broker coordinates the groups of the
//!   `__consumer_offsets` partitions it leads (load on election, unload on
//!   resignation).
//! - `group_config`: `GroupConfigManager`, the GROUP config resource
//!   (KIP-848 group configs, keys in `broker::group_config`): persisted
//!   (standalone) or taken from the metadata image (cluster), and
//!   described; consumer groups read their session timeout and heartbeat
//!   interval from them.
//! - `streams`: KIP-1071 streams groups (StreamsGroupHeartbeat,
//!   StreamsGroupDescribe), in memory only.

pub mod api;
pub mod classic_group;
pub mod classic_rebalance;
pub mod consumer;
pub mod coordinator;
pub mod group_config;
pub mod group_metadata_manager;
pub mod leadership;
pub mod loader;
pub mod member;
pub mod offset_metadata_manager;
pub mod offsets;
pub mod record_serde;
pub mod share;
pub mod standalone;
pub mod streams;
pub mod timers;
pub mod writer;

pub use coordinator::{GroupConfig, GroupCoordinator};
pub use record_serde::OFFSETS_TOPIC;
