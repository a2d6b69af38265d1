//! Consumer groups with Kafka's classic rebalance protocol.
//!
//! - `coordinator`: the GroupCoordinator (requests, timers, durability).
//! - `group`: the ClassicGroup state and its pure rules.
//! - `member`: ClassicGroupMember.
//! - `offsets`: committed offsets and their expiration.
//! - `persistence`: `__consumer_offsets` record schemas and the group → partition map.

pub mod coordinator;
#[allow(clippy::module_inception)]
pub mod group;
pub mod member;
pub mod offsets;
pub mod persistence;

pub use coordinator::{GroupConfig, GroupCoordinator};
pub use persistence::OFFSETS_TOPIC;
