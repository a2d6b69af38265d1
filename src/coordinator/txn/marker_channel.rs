//! How the transaction coordinator settles a transaction on its partitions:
//! Kafka's `TransactionMarkerChannelManager` sends WriteTxnMarkers to each
//! partition's leader, whose request handler appends the COMMIT/ABORT
//! control batch and, on `__consumer_offsets`, completes the transaction's
//! pending offset commits. The coordinator sees only this trait; the broker's
//! side (`handlers::write_txn_markers`) implements it, so the coordinator
//! needs neither the partitions of user topics nor the group coordinator.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use kafka_protocol::ResponseError;

/// One WriteTxnMarkers request: a producer's outcome on a set of partitions.
#[derive(Debug, Clone)]
pub struct TxnMarkers<'a> {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    pub partitions: &'a BTreeSet<(String, i32)>,
    pub timeout_ms: u64,
}

pub type MarkerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ResponseError>> + Send + 'a>>;

pub trait TxnMarkerWriter: Send + Sync {
    /// Writes the markers and resolves once every one is durable (and the
    /// transaction's offsets are settled). Partitions that no longer exist
    /// are skipped, as Kafka skips partitions it no longer hosts.
    fn write_markers<'a>(&'a self, markers: TxnMarkers<'a>) -> MarkerFuture<'a>;
}
