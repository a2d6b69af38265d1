//! How the transaction coordinator settles a transaction on its partitions:
//! Kafka's `TransactionMarkerChannelManager` sends WriteTxnMarkers to each
//! partition's leader, whose request handler appends the COMMIT/ABORT
//! control batch and, on `__consumer_offsets`, completes the transaction's
//! pending offset commits. The coordinator sees only this trait; the broker's
//! side (`handlers::write_txn_markers`) implements it, so the coordinator
//! needs neither the partitions of user topics nor the group coordinator.
//! In a cluster, [`ClusterTxnMarkerWriter`] sends each partition's marker
//! to its current leader: through the local writer when that is this
//! broker, with WriteTxnMarkers on the inter-broker listener otherwise.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::{ApiVersionsRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use tokio::sync::{Mutex as AsyncMutex, Semaphore};
use tokio::time::Instant;

use crate::broker::metadata_cache::MetadataCache;
use crate::clients::network_client::{ClientLimits, NetworkClient};
use crate::clients::ClientSecurity;
use crate::protocol::write_txn_markers::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest, TRANSACTION_VERSION_SINCE,
    WRITE_TXN_MARKERS,
};

/// One WriteTxnMarkers request: a producer's outcome on a set of partitions.
#[derive(Clone)]
pub struct TxnMarkers<'a> {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
    /// The transaction version the transaction ended under (its
    /// ClientTransactionVersion), which decides the partitions' epoch
    /// check (WriteTxnMarkers v2, KIP-1228).
    pub transaction_version: i8,
    pub partitions: &'a BTreeSet<(String, i32)>,
    pub timeout_ms: u64,
    /// False once the coordinator resigned the transaction's partition:
    /// a cluster writer stops retrying then.
    pub still_coordinator: &'a (dyn Fn() -> bool + Send + Sync),
}

pub type MarkerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ResponseError>> + Send + 'a>>;

pub trait TxnMarkerWriter: Send + Sync {
    /// Writes the markers and resolves once every one is durable (and the
    /// transaction's offsets are settled). Partitions that no longer exist
    /// are skipped, as Kafka skips partitions it no longer hosts.
    fn write_markers<'a>(&'a self, markers: TxnMarkers<'a>) -> MarkerFuture<'a>;
}

/// The WriteTxnMarkers versions sent: 2 (with the transaction version,
/// KIP-1228) to a broker that serves it, else 1 (Kafka 4.x's floor).
const WRITE_TXN_MARKERS_MIN: i16 = 1;
const WRITE_TXN_MARKERS_MAX: i16 = TRANSACTION_VERSION_SINCE;
/// Requests waiting for one broker's connection at a time (Kafka queues
/// markers per destination broker); beyond it a marker waits for a retry.
const MAX_QUEUED_PER_BROKER: usize = 1_000;
/// Pause between rounds while some partition has no reachable leader.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// One destination broker's queue: its connection, one request at a time.
struct BrokerQueue {
    addr: String,
    /// The connection and the WriteTxnMarkers version the broker serves
    /// (asked with ApiVersions on first use, as Kafka's NetworkClient
    /// negotiates it).
    client: AsyncMutex<(NetworkClient, Option<i16>)>,
    permits: Semaphore,
}

/// Kafka's `TransactionMarkerChannelManager` for a cluster broker.
pub struct ClusterTxnMarkerWriter {
    node_id: i32,
    cache: Arc<MetadataCache>,
    inter_broker_listener: String,
    /// This broker's partitions (the broker's own WriteTxnMarkers path).
    local: Arc<dyn TxnMarkerWriter>,
    queues: Mutex<HashMap<i32, Arc<BrokerQueue>>>,
    /// The inter-broker listener's security.
    security: Arc<ClientSecurity>,
}

/// What a round decided for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Led by this broker.
    Local,
    /// Led by this broker id, reachable at this address.
    Remote(i32, String),
    /// The topic or partition is gone from the image: skipped.
    Deleted,
    /// No alive leader (or none with the listener) yet: retried.
    Unknown,
}

/// Where a partition's marker goes in this image (pure; Kafka's
/// `addTxnMarkersToBrokerQueue` lookup).
pub fn route(
    image: &crate::metadata::MetadataImage,
    node_id: i32,
    listener: &str,
    topic: &str,
    partition: i32,
) -> Route {
    let Some(reg) = image
        .topic_by_name(topic)
        .and_then(|t| t.partitions.get(&partition))
    else {
        return Route::Deleted;
    };
    if reg.leader == node_id {
        return Route::Local;
    }
    let endpoint = image
        .brokers
        .get(&reg.leader)
        .filter(|b| !b.fenced)
        .and_then(|b| b.listeners.iter().find(|e| e.name == listener));
    match endpoint {
        Some(e) => Route::Remote(reg.leader, format!("{}:{}", e.host, e.port)),
        None => Route::Unknown,
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The WriteTxnMarkers version to send a broker: the highest of
/// [`WRITE_TXN_MARKERS_MIN`]..=[`WRITE_TXN_MARKERS_MAX`] its ApiVersions
/// advertises.
async fn marker_version(client: &mut NetworkClient) -> Result<i16, BoxError> {
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kastle"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let resp = client.send(&req, 3).await?;
    let max = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == WRITE_TXN_MARKERS)
        .map(|k| k.max_version)
        .ok_or("the broker does not serve WriteTxnMarkers")?;
    if max < WRITE_TXN_MARKERS_MIN {
        return Err(format!("the broker serves WriteTxnMarkers up to v{max} only").into());
    }
    Ok(max.min(WRITE_TXN_MARKERS_MAX))
}

/// Whether a partition's WriteTxnMarkers error means "send it again, to
/// whoever leads then" (Kafka's `TransactionMarkerRequestCompletionHandler`).
fn retriable(code: i16) -> bool {
    use ResponseError as E;
    [
        E::NotLeaderOrFollower,
        E::UnknownTopicOrPartition,
        E::NotEnoughReplicas,
        E::NotEnoughReplicasAfterAppend,
        E::RequestTimedOut,
        E::KafkaStorageError,
        E::CoordinatorNotAvailable,
    ]
    .iter()
    .any(|e| e.code() == code)
}

impl ClusterTxnMarkerWriter {
    pub fn new(
        node_id: i32,
        cache: Arc<MetadataCache>,
        inter_broker_listener: String,
        local: Arc<dyn TxnMarkerWriter>,
        security: Arc<ClientSecurity>,
    ) -> ClusterTxnMarkerWriter {
        ClusterTxnMarkerWriter {
            node_id,
            cache,
            inter_broker_listener,
            local,
            queues: Mutex::new(HashMap::new()),
            security,
        }
    }

    /// A broker's queue: its own connection (secured as the inter-broker
    /// listener is) and its bound on queued markers.
    fn new_queue(&self, addr: &str) -> Arc<BrokerQueue> {
        Arc::new(BrokerQueue {
            addr: addr.to_string(),
            client: AsyncMutex::new((
                NetworkClient::new(
                    addr,
                    &format!("broker-{}-txn-marker-sender", self.node_id),
                    ClientLimits::default(),
                )
                .with_security(self.security.clone()),
                None,
            )),
            permits: Semaphore::new(MAX_QUEUED_PER_BROKER),
        })
    }

    fn queue(&self, broker: i32, addr: &str) -> Arc<BrokerQueue> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let q = queues.entry(broker).or_insert_with(|| self.new_queue(addr));
        if q.addr != addr {
            // The broker came back at another address.
            *q = self.new_queue(addr);
        }
        q.clone()
    }

    /// Sends one broker its partitions' markers; returns those written.
    async fn send_remote(
        &self,
        broker: i32,
        addr: &str,
        m: &TxnMarkers<'_>,
        partitions: &[(String, i32)],
        deadline: Instant,
    ) -> Vec<(String, i32)> {
        let q = self.queue(broker, addr);
        let Ok(_permit) = q.permits.try_acquire() else {
            tracing::warn!(broker, "transaction marker queue full; retrying later");
            return Vec::new();
        };
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        let request = WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                transaction_result: m.commit,
                topics: by_topic
                    .into_iter()
                    .map(|(t, ps)| WritableTxnMarkerTopic {
                        name: t.to_string(),
                        partition_indexes: ps,
                    })
                    .collect(),
                coordinator_epoch: m.coordinator_epoch,
                transaction_version: m.transaction_version,
            }],
        };
        let mut guard = q.client.lock().await;
        let (client, known) = &mut *guard;
        let sent = tokio::time::timeout_at(deadline, async {
            let version = match *known {
                Some(v) => v,
                None => {
                    let v = marker_version(client).await?;
                    *known = Some(v);
                    v
                }
            };
            // Request header v2 and response header v1: flexible in
            // every version served.
            let mut body = client
                .send_raw(WRITE_TXN_MARKERS, version, 2, 1, &request.encode(version))
                .await?;
            // The response is the same in versions 1 and 2.
            WriteTxnMarkersResponse::decode(&mut body, 1)
                .map_err(|e| BoxError::from(format!("decoding the WriteTxnMarkers response: {e}")))
        })
        .await;
        let response: WriteTxnMarkersResponse = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(broker, error = %e, "WriteTxnMarkers failed; retrying");
                // Asked again on the next connection (the broker may have
                // been replaced by another version).
                *known = None;
                return Vec::new();
            }
            Err(_) => {
                client.disconnect();
                *known = None;
                return Vec::new();
            }
        };
        let mut written = Vec::new();
        for result in response.markers {
            for t in result.topics {
                for p in t.partitions {
                    let key = (t.name.0.to_string(), p.partition_index);
                    if p.error_code == 0 {
                        written.push(key);
                    } else if retriable(p.error_code) {
                        tracing::debug!(broker, topic = %key.0, partition = key.1, code = p.error_code, "transaction marker to be retried");
                    } else {
                        // Kafka gives up on the marker (e.g. the producer
                        // epoch or coordinator epoch is stale): another
                        // coordinator owns the transaction now.
                        tracing::warn!(broker, topic = %key.0, partition = key.1, code = p.error_code, "transaction marker refused; abandoning it");
                        written.push(key);
                    }
                }
            }
        }
        written
    }
}

impl TxnMarkerWriter for ClusterTxnMarkerWriter {
    fn write_markers<'a>(&'a self, m: TxnMarkers<'a>) -> MarkerFuture<'a> {
        Box::pin(async move {
            let deadline = Instant::now() + Duration::from_millis(m.timeout_ms);
            let mut pending: BTreeSet<(String, i32)> = m.partitions.clone();
            loop {
                if !(m.still_coordinator)() {
                    return Err(ResponseError::NotCoordinator);
                }
                let image = self.cache.image();
                let mut local = BTreeSet::new();
                let mut remote: BTreeMap<(i32, String), Vec<(String, i32)>> = BTreeMap::new();
                let mut deleted = Vec::new();
                for (t, p) in &pending {
                    match route(&image, self.node_id, &self.inter_broker_listener, t, *p) {
                        Route::Local => {
                            local.insert((t.clone(), *p));
                        }
                        Route::Remote(b, addr) => {
                            remote.entry((b, addr)).or_default().push((t.clone(), *p))
                        }
                        Route::Deleted => {
                            tracing::info!(topic = %t, partition = p, "transaction partition deleted; skipping its marker");
                            deleted.push((t.clone(), *p));
                        }
                        Route::Unknown => {}
                    }
                }
                for k in &deleted {
                    pending.remove(k);
                }
                drop(image);
                let local_done = async {
                    if local.is_empty() {
                        return Vec::new();
                    }
                    let written = self
                        .local
                        .write_markers(TxnMarkers {
                            partitions: &local,
                            timeout_ms: deadline
                                .saturating_duration_since(Instant::now())
                                .as_millis() as u64,
                            ..m.clone()
                        })
                        .await;
                    match written {
                        Ok(()) => local.iter().cloned().collect(),
                        Err(e) => {
                            tracing::debug!(error = ?e, "local transaction markers; retrying");
                            Vec::new()
                        }
                    }
                };
                let remote_done = futures_util::future::join_all(
                    remote
                        .iter()
                        .map(|((b, addr), ps)| self.send_remote(*b, addr, &m, ps, deadline)),
                );
                let (l, r) = tokio::join!(local_done, remote_done);
                for k in l.into_iter().chain(r.into_iter().flatten()) {
                    pending.remove(&k);
                }
                if pending.is_empty() {
                    return Ok(());
                }
                if Instant::now() + RETRY_BACKOFF >= deadline {
                    return Err(ResponseError::CoordinatorNotAvailable);
                }
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::{BrokerRegistration, PartitionRegistration, TopicImage};
    use crate::metadata::records::BrokerEndpoint;
    use crate::metadata::MetadataImage;

    fn broker(id: i32, fenced: bool) -> BrokerRegistration {
        BrokerRegistration {
            id,
            epoch: 1,
            incarnation_id: Default::default(),
            listeners: vec![BrokerEndpoint {
                name: "INTERNAL".into(),
                host: "10.0.0.1".into(),
                port: 9000 + id as u16,
                security_protocol: 0,
            }],
            supported_features: vec![],
            rack: None,
            fenced,
            in_controlled_shutdown: false,
            directories: vec![],
        }
    }

    fn partition(leader: i32) -> PartitionRegistration {
        PartitionRegistration {
            replicas: vec![1, 2, 3],
            directories: vec![],
            isr: vec![1, 2, 3],
            removing_replicas: vec![],
            adding_replicas: vec![],
            elr: vec![],
            last_known_elr: vec![],
            leader,
            leader_recovery_state: 0,
            leader_epoch: 3,
            partition_epoch: 3,
        }
    }

    #[test]
    fn markers_go_to_the_current_leader_on_the_inter_broker_listener() {
        let mut image = MetadataImage::default();
        for (id, fenced) in [(1, false), (2, false), (3, true)] {
            image.brokers.insert(id, broker(id, fenced));
        }
        let id = Default::default();
        image.topic_ids.insert("t".into(), id);
        image.topics.insert(
            id,
            TopicImage {
                name: "t".into(),
                id,
                partitions: [
                    (0, partition(1)),
                    (1, partition(2)),
                    (2, partition(3)),
                    (3, partition(-1)),
                ]
                .into_iter()
                .collect(),
            },
        );
        let r = |t: &str, p: i32, listener: &str| route(&image, 1, listener, t, p);
        assert_eq!(r("t", 0, "INTERNAL"), Route::Local);
        assert_eq!(
            r("t", 1, "INTERNAL"),
            Route::Remote(2, "10.0.0.1:9002".into())
        );
        // A fenced leader, no leader, no such listener: retried later.
        assert_eq!(r("t", 2, "INTERNAL"), Route::Unknown);
        assert_eq!(r("t", 3, "INTERNAL"), Route::Unknown);
        assert_eq!(r("t", 1, "OTHER"), Route::Unknown);
        // A deleted topic or partition: skipped.
        assert_eq!(r("t", 9, "INTERNAL"), Route::Deleted);
        assert_eq!(r("gone", 0, "INTERNAL"), Route::Deleted);
    }

    #[test]
    fn retriable_errors_are_kafkas() {
        assert!(retriable(ResponseError::NotLeaderOrFollower.code()));
        assert!(retriable(ResponseError::UnknownTopicOrPartition.code()));
        assert!(!retriable(ResponseError::InvalidProducerEpoch.code()));
        assert!(!retriable(
            ResponseError::TransactionCoordinatorFenced.code()
        ));
    }
}
