//! `ReplicaFetcherManager`: which follower partition is fetched by which
//! fetcher (Kafka's `AbstractFetcherManager`). A fetcher task is keyed by
//! its source broker and a fetcher index (`num.replica.fetchers`, a
//! partition picks one by hashing, as Kafka's `getFetcherId`); it stops
//! when its last partition leaves.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::broker::partition::Partition;
use crate::broker::replica_fetcher::{self, FetcherSettings};
use crate::broker::replication_quota_manager::ReplicationQuotas;
use crate::clients::ClientSecurity;
use crate::config::BrokerConfig;
use crate::util::shutdown::ShutdownSignal;

/// Where a follower partition is in Kafka's fetch states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchState {
    /// Truncating by OffsetForLeaderEpoch before the first fetch.
    Truncating,
    Fetching(i64),
    /// Fenced (FENCED_LEADER_EPOCH): nothing is fetched until the next
    /// metadata change makes this node follower again.
    Fenced,
}

#[derive(Clone)]
pub struct FetchPartition {
    pub partition: Arc<Partition>,
    pub topic_id: Uuid,
    pub leader_epoch: i32,
    pub state: FetchState,
    /// Retried no sooner than this after a retriable error.
    pub delayed_until: Option<Instant>,
}

pub type PartitionKey = (Arc<str>, i32);

/// One fetcher task's share: its partitions and its wake-up.
pub struct FetcherHandle {
    pub leader_id: i32,
    pub endpoint: String,
    pub partitions: Mutex<BTreeMap<PartitionKey, FetchPartition>>,
    pub wake: Notify,
    pub stopped: AtomicBool,
    /// How the leader is reached (the inter-broker listener's security).
    pub security: Arc<ClientSecurity>,
}

impl FetcherHandle {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PartitionKey, FetchPartition>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct ReplicaFetcherManager {
    node_id: i32,
    num_fetchers: u64,
    settings: FetcherSettings,
    broker_epoch: Arc<AtomicI64>,
    quotas: Arc<ReplicationQuotas>,
    /// How fetchers reach leaders: the inter-broker listener's security
    /// (plain TCP until a cluster node sets it).
    security: RwLock<Arc<ClientSecurity>>,
    fetchers: Mutex<HashMap<(i32, u64), Arc<FetcherHandle>>>,
    shutdown: ShutdownSignal,
}

impl ReplicaFetcherManager {
    pub fn new(
        config: &BrokerConfig,
        broker_epoch: Arc<AtomicI64>,
        quotas: Arc<ReplicationQuotas>,
        shutdown: ShutdownSignal,
    ) -> ReplicaFetcherManager {
        ReplicaFetcherManager {
            node_id: config.node_id,
            num_fetchers: config.int("num.replica.fetchers").max(1) as u64,
            settings: FetcherSettings::from_config(config),
            broker_epoch,
            quotas,
            security: RwLock::new(ClientSecurity::plaintext()),
            fetchers: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// The inter-broker listener's security, for fetchers started from now
    /// on (set before the broker registers).
    pub fn set_client_security(&self, security: Arc<ClientSecurity>) {
        *self.security.write().unwrap_or_else(|p| p.into_inner()) = security;
    }

    fn fetchers(&self) -> std::sync::MutexGuard<'_, HashMap<(i32, u64), Arc<FetcherHandle>>> {
        self.fetchers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fetcher_id(&self, key: &PartitionKey) -> u64 {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        h.finish() % self.num_fetchers
    }

    /// Starts fetching `partition` from `leader_id` at `endpoint`, from
    /// truncation (Kafka's `addFetcherForPartitions`); moves it off any
    /// other fetcher first.
    pub fn add_partition(
        &self,
        leader_id: i32,
        endpoint: String,
        partition: Arc<Partition>,
        topic_id: Uuid,
        leader_epoch: i32,
    ) {
        let key: PartitionKey = (partition.topic.clone(), partition.index);
        self.remove_partition(&key);
        let slot = (leader_id, self.fetcher_id(&key));
        let mut fetchers = self.fetchers();
        let stale = fetchers.get(&slot).is_some_and(|f| f.endpoint != endpoint);
        if stale {
            // The leader moved to another address: a new connection.
            if let Some(old) = fetchers.remove(&slot) {
                old.stop();
            }
        }
        let handle = fetchers
            .entry(slot)
            .or_insert_with(|| {
                let handle = Arc::new(FetcherHandle {
                    leader_id,
                    endpoint: endpoint.clone(),
                    partitions: Mutex::new(BTreeMap::new()),
                    wake: Notify::new(),
                    stopped: AtomicBool::new(false),
                    security: self
                        .security
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                });
                tokio::spawn(replica_fetcher::run(
                    handle.clone(),
                    self.node_id,
                    slot.1,
                    self.settings,
                    self.broker_epoch.clone(),
                    self.quotas.clone(),
                    self.shutdown.clone(),
                ));
                tracing::info!(leader = leader_id, endpoint = %endpoint, fetcher = slot.1, "started replica fetcher");
                handle
            })
            .clone();
        drop(fetchers);
        handle.lock().insert(
            key,
            FetchPartition {
                partition,
                topic_id,
                leader_epoch,
                state: FetchState::Truncating,
                delayed_until: None,
            },
        );
        handle.wake.notify_one();
    }

    /// Stops fetching a partition (Kafka's `removeFetcherForPartitions`);
    /// a fetcher left with nothing stops.
    pub fn remove_partition(&self, key: &PartitionKey) {
        let mut fetchers = self.fetchers();
        let mut empty = Vec::new();
        for (slot, f) in fetchers.iter() {
            let mut parts = f.lock();
            if parts.remove(key).is_some() && parts.is_empty() {
                empty.push(*slot);
            }
        }
        for slot in empty {
            if let Some(f) = fetchers.remove(&slot) {
                f.stop();
                tracing::info!(
                    leader = f.leader_id,
                    fetcher = slot.1,
                    "stopped replica fetcher"
                );
            }
        }
    }

    /// Whether `key` is being fetched, and in which state (tests, logs).
    pub fn state_of(&self, key: &PartitionKey) -> Option<FetchState> {
        self.fetchers()
            .values()
            .find_map(|f| f.lock().get(key).map(|p| p.state))
    }

    pub fn shutdown(&self) {
        for (_, f) in self.fetchers().drain() {
            f.stop();
        }
    }
}

impl FetcherHandle {
    fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }
}
