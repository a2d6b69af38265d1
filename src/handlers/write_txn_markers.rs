//! The broker's side of WriteTxnMarkers (Kafka's
//! `KafkaApis.handleWriteTxnMarkersRequest`): appends a producer's COMMIT or
//! ABORT marker to each partition, waits until every marker is durable, and
//! completes the transaction's pending offset commits on the
//! `__consumer_offsets` partitions it touched. The transaction coordinator
//! calls it in-process through `TxnMarkerWriter`; there is no wire API for it
//! on a single node.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::time::Instant;

use crate::broker::partition::Partition;
use crate::broker::ReplicaManager;
use crate::coordinator::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::coordinator::txn::marker_channel::{MarkerFuture, TxnMarkerWriter, TxnMarkers};

pub struct LocalTxnMarkerWriter {
    pub replicas: Arc<ReplicaManager>,
    pub groups: Arc<GroupCoordinator>,
}

impl TxnMarkerWriter for LocalTxnMarkerWriter {
    fn write_markers<'a>(&'a self, m: TxnMarkers<'a>) -> MarkerFuture<'a> {
        Box::pin(async move {
            let mut waits: Vec<(Arc<Partition>, i64)> = Vec::with_capacity(m.partitions.len());
            for (topic, index) in m.partitions {
                let Some(p) = self
                    .replicas
                    .topics
                    .get(topic)
                    .and_then(|t| t.partition(*index).cloned())
                else {
                    tracing::warn!(topic = %topic, partition = index, "transaction partition no longer exists; skipping its marker");
                    continue;
                };
                let end = p
                    .append_txn_marker(m.producer_id, m.producer_epoch, m.commit, m.coordinator_epoch)
                    .map_err(|e| {
                        tracing::warn!(topic = %topic, partition = index, error = %e, "writing transaction marker");
                        ResponseError::CoordinatorNotAvailable
                    })?;
                waits.push((p, end));
            }
            let deadline = Instant::now() + Duration::from_millis(m.timeout_ms);
            for (p, end) in &waits {
                p.wait_for_high_watermark(*end, deadline)
                    .await
                    .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
            }
            for (p, _) in &waits {
                if &*p.topic == OFFSETS_TOPIC {
                    self.groups.complete_txn(p.index, m.producer_id, m.commit);
                }
            }
            Ok(())
        })
    }
}
