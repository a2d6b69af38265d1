//! The controller quorum's glue to openraft (Kafka's KRaft role, on an
//! existing Raft library rather than a home-made one): the type config,
//! the durable log and vote storage ([`log_store`]), and the state machine
//! that applies Kafka metadata records to a `MetadataImage` and snapshots
//! it ([`state_machine`]).
//!
//! An entry's application data is a batch of metadata records in Kafka's
//! own framing (`MetadataRecordSerde`), applied all or nothing: the
//! controller writes, for example, a TopicRecord with its PartitionRecords
//! as one batch, as Kafka's controller appends one atomic batch.

pub mod log_store;
pub mod network;
pub mod replica_states;
pub mod state_machine;
#[cfg(test)]
mod tests;

// The macro names the default snapshot type `Cursor<Vec<u8>>` unqualified.
use std::io::Cursor;

use serde::{Deserialize, Serialize};

pub use log_store::DurableLogStore;
pub use state_machine::MetadataStateMachine;

/// One atomic batch of framed metadata records (Kafka's bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataBatch {
    pub records: Vec<Vec<u8>>,
}

/// What applying a batch did: `error` names the record refused (the
/// batch then changed nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyResult {
    pub error: Option<String>,
}

openraft::declare_raft_types!(
    /// kastle's quorum: node ids are Kafka node ids, nodes their
    /// controller listener's address.
    pub TypeConfig:
        D = MetadataBatch,
        R = ApplyResult,
);

pub type NodeId = u64;
pub type StorageError = openraft::StorageError<NodeId>;
