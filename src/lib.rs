//! kastle: a Kafka-compatible broker.
//!
//! A tour, top to bottom (each layer uses only the layers below it; the
//! `layering` test in `tests/tidy.rs` checks the imports against
//! ARCHITECTURE.md):
//!
//! - [`server`]: `BrokerServer` wires everything and runs start-up and
//!   shutdown; the Prometheus exporter.
//! - [`network`]: listeners, connections, framing.
//! - [`handlers`]: `KafkaApis`, one module per API family.
//! - [`coordinator`]: the group and transaction coordinators.
//! - [`broker`]: `ReplicaManager`, partitions, topics, log maintenance,
//!   producer ids, quotas.
//! - [`storage`]: Kafka's on-disk log: segments, indexes, producer state,
//!   the cleaner.
//!
//! Leaves any layer may use: [`protocol`] (wire format), [`record`] (the v2
//! record batch format), [`config`] (server.properties keys), [`metrics`]
//! (counters), [`util`] (clock, crash-safe files, the shutdown signal),
//! [`metadata`] (Kafka's cluster metadata records and image). [`raft`] is
//! the controller quorum's storage on openraft (beside `storage`).
//! [`health`] is the `kastle health` client; [`cli`] the client command
//! line (`kastle topic|produce|consume|group|cluster|config`).

pub mod broker;
pub mod cli;
pub mod clients;
pub mod config;
pub mod controller;
pub mod coordinator;
#[doc(hidden)]
pub mod fuzz_api;
pub mod handlers;
pub mod health;
pub mod metadata;
pub mod metrics;
pub mod network;
pub mod protocol;
pub mod raft;
pub mod record;
pub mod security;
pub mod server;
pub mod storage;
pub mod util;
