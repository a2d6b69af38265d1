//! `AlterPartitionManager`: how a partition leader asks the controller to
//! change its ISR (Kafka's `AlterPartitionManager`). The leader proposes;
//! only the committed answer (the controller's, through the metadata log)
//! changes the ISR it uses for the high watermark. Implemented over the
//! controller channel by the server's wiring; the data plane only sees
//! this trait.

use std::future::Future;
use std::pin::Pin;

use kafka_protocol::ResponseError;
use uuid::Uuid;

/// The leader's proposal: the ISR it wants, at the epochs it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<i32>,
}

/// The partition as the controller left it after the proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedIsr {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

pub type IsrFuture = Pin<Box<dyn Future<Output = Result<CommittedIsr, ResponseError>> + Send>>;

pub trait AlterPartitionManager: Send + Sync {
    /// Sends one proposal (Kafka batches them; an implementation may too).
    fn submit(&self, proposal: IsrProposal) -> IsrFuture;
}
