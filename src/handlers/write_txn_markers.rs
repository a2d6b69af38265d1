//! The broker's side of WriteTxnMarkers (Kafka's
//! `KafkaApis.handleWriteTxnMarkersRequest`): appends a producer's COMMIT or
//! ABORT marker to each partition, waits until every marker is durable, and
//! completes the transaction's pending offset commits on the
//! `__consumer_offsets` partitions it touched. The transaction coordinator
//! calls it in-process through `TxnMarkerWriter` for the partitions this
//! broker leads; in a cluster other brokers' coordinators send it as the
//! WriteTxnMarkers request ([`handle`], versions 1-2: version 2 names the
//! transaction version, which decides each partition's producer-epoch
//! check, KIP-1228).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::time::Instant;

/// A marker's end offset and the leadership it was appended in
/// (`Partition::append_txn_marker`).
type Appended = (i64, u64);

use crate::broker::partition::Partition;
use crate::broker::partition::PartitionError;
use crate::broker::ReplicaManager;
use crate::coordinator::group::{GroupCoordinator, OFFSETS_TOPIC};
use crate::coordinator::txn::marker_channel::{MarkerFuture, TxnMarkerWriter, TxnMarkers};
use crate::handlers::{decode_own, ready, Pending, Request};
use crate::protocol::same_as::SameAsVersion;
use crate::protocol::write_txn_markers::WriteTxnMarkersRequest;
use crate::security::acl::AclOperation;
use crate::storage::producer_state::ProducerError;

/// How long a marker may take to reach the ISR (Kafka's
/// `request.timeout.ms` for the coordinator's append).
const MARKER_APPEND_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LocalTxnMarkerWriter {
    pub replicas: Arc<ReplicaManager>,
    pub groups: Arc<GroupCoordinator>,
}

impl TxnMarkerWriter for LocalTxnMarkerWriter {
    fn write_markers<'a>(&'a self, m: TxnMarkers<'a>) -> MarkerFuture<'a> {
        Box::pin(async move {
            let mut waits: Vec<(Arc<Partition>, Appended)> = Vec::with_capacity(m.partitions.len());
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
                let end = match p.append_txn_marker(
                    m.producer_id,
                    m.producer_epoch,
                    m.commit,
                    m.coordinator_epoch,
                    m.transaction_version,
                ) {
                    Ok(end) => end,
                    // Kafka's coordinator gives up on a marker the
                    // partition refuses for its epoch: the producer (or
                    // the coordinator) moved on.
                    Err(
                        e @ PartitionError::Producer(
                            ProducerError::InvalidProducerEpoch { .. }
                            | ProducerError::CoordinatorFenced { .. },
                        ),
                    ) => {
                        tracing::warn!(topic = %topic, partition = index, error = %e, "transaction marker refused; abandoning it");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic, partition = index, error = %e, "writing transaction marker");
                        return Err(ResponseError::CoordinatorNotAvailable);
                    }
                };
                waits.push((p, end));
            }
            let deadline = Instant::now() + Duration::from_millis(m.timeout_ms);
            for (p, (end, leadership)) in &waits {
                p.wait_for_ack(*end, *leadership, -1, deadline)
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

/// WriteTxnMarkers from another broker's transaction coordinator: each
/// partition's marker is appended if this broker leads it
/// (NOT_LEADER_OR_FOLLOWER / UNKNOWN_TOPIC_OR_PARTITION otherwise, which
/// the sender retries at the new leader) and answered once the ISR has it
/// (acks=all); the transaction's offset commits are settled on the
/// `__consumer_offsets` partitions. Needs CLUSTER_ACTION on the cluster.
pub fn handle(req: Request, body: Bytes) -> Pending {
    let version = req.header.api_version;
    let request = match decode_own(&req, &body, |b| WriteTxnMarkersRequest::decode(b, version)) {
        Ok(r) => r,
        Err(reply) => return ready(reply),
    };
    let allowed = req.ctx.authorize_cluster(AclOperation::ClusterAction);
    Box::pin(async move {
        let apis = req.ctx.apis.clone();
        let deadline = Instant::now() + MARKER_APPEND_TIMEOUT;
        let mut results = Vec::with_capacity(request.markers.len());
        for marker in request.markers {
            let producer_id = marker.producer_id;
            let mut topics = Vec::with_capacity(marker.topics.len());
            // Appended first, all of them; then waited for together.
            let mut waits: Vec<(usize, usize, Arc<Partition>, Appended)> = Vec::new();
            for (ti, t) in marker.topics.iter().enumerate() {
                let mut partitions = Vec::with_capacity(t.partition_indexes.len());
                for (pi, index) in t.partition_indexes.iter().enumerate() {
                    let code = if !allowed {
                        ResponseError::ClusterAuthorizationFailed.code()
                    } else {
                        match apis
                            .replicas
                            .topics
                            .get(&t.name)
                            .and_then(|topic| topic.partition(*index).cloned())
                        {
                            None => ResponseError::UnknownTopicOrPartition.code(),
                            Some(p) if !p.is_leader() => ResponseError::NotLeaderOrFollower.code(),
                            Some(p) => match p.append_txn_marker(
                                producer_id,
                                marker.producer_epoch,
                                marker.transaction_result,
                                marker.coordinator_epoch,
                                marker.transaction_version,
                            ) {
                                Ok(appended) => {
                                    waits.push((ti, pi, p, appended));
                                    0
                                }
                                Err(e @ PartitionError::Producer(_)) => {
                                    tracing::warn!(topic = %t.name, partition = index, error = %e, "a transaction marker refused");
                                    e.code().code()
                                }
                                Err(e) => {
                                    tracing::warn!(topic = %t.name, partition = index, error = %e, "writing a transaction marker");
                                    ResponseError::NotLeaderOrFollower.code()
                                }
                            },
                        }
                    };
                    partitions.push(
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(*index)
                            .with_error_code(code),
                    );
                }
                topics.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                        .with_partitions(partitions),
                );
            }
            for (ti, pi, p, (end, leadership)) in waits {
                let code = match p.wait_for_ack(end, leadership, -1, deadline).await {
                    Ok(()) => {
                        if &*p.topic == OFFSETS_TOPIC {
                            apis.groups.complete_txn(
                                p.index,
                                producer_id,
                                marker.transaction_result,
                            );
                        }
                        0
                    }
                    Err(e) => e.code(),
                };
                if let Some(r) = topics.get_mut(ti).and_then(|t| t.partitions.get_mut(pi)) {
                    r.error_code = code;
                }
            }
            results.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(ProducerId(marker.producer_id))
                    .with_topics(topics),
            );
        }
        // Versions 1 and 2 of the response are the same.
        req.respond(&SameAsVersion::<1, _>(
            WriteTxnMarkersResponse::default().with_markers(results),
        ))
    })
}
