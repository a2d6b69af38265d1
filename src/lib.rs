//! kastle: a Kafka-compatible broker.
//!
//! Data flows one way: `network` (framing, connections) → `handlers`
//! (protocol dispatch, one module per API family) → `broker` (topics,
//! partitions, durability) → `storage` (segments and indexes on disk).
//! `protocol` and `record` are leaf modules describing the wire and batch
//! formats; `config` reads Kafka's server.properties keys.

pub mod broker;
pub mod config;
pub mod coordinator;
pub mod handlers;
pub mod health;
pub mod metrics;
pub mod network;
pub mod protocol;
pub mod record;
pub mod storage;
