//! Clients this node uses to talk to other nodes (Kafka's `NetworkClient`
//! and the channels built on it): the controllers' Raft traffic, a broker's
//! registration and heartbeats, its metadata fetches, AlterPartition, and
//! the replica fetcher all send Kafka-framed requests through
//! [`network_client::NetworkClient`], secured as the listener they reach
//! says ([`channel_builder`]). No file system, no broker state.

pub mod channel_builder;
pub mod network_client;
pub mod private_apis;

pub use channel_builder::{ChannelBuilders, ClientSecurity};
pub use network_client::{ClientError, ClientLimits, NetworkClient};
