//! `BrokerLifecycleManager`: a broker's life with the controller quorum
//! (Kafka's class of the same name). It registers (node id, a random
//! incarnation id per start, the cluster id, advertised listeners, rack,
//! supported features), heartbeats every `broker.heartbeat.interval.ms`
//! with the metadata offset it has applied (the controller unfences it
//! once that reaches its registration), re-registers when the controller
//! no longer knows its epoch, and on shutdown asks for a controlled
//! shutdown and waits (bounded) for the controller's go. Beside it the
//! metadata fetcher long-polls the active controller for committed
//! metadata and keeps the `MetadataCache`.
//!
//! The broker serves clients only once the controller says it caught up
//! ([`BrokerLifecycleManager::initial_catch_up`], Kafka's
//! `initialCatchUpFuture`): the metadata it has applied reaches its
//! registration, so its first answers already know the cluster.
//!
//! Controllers are tried in turn; a NOT_CONTROLLER answer (or its leader
//! hint) moves the broker to the active one. The same channel carries the
//! partition leaders' AlterPartition and the producer-id manager's
//! AllocateProducerIds. All of them share one idea of the active
//! controller, and a failure moves it on only from the controller that
//! failed: dozens of ISR proposals failing against a controller cut off by
//! a network partition must not spin the choice past the new active one
//! that the heartbeat or the metadata fetcher just found (they did: the
//! new controller fenced live brokers that never reached it).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::broker_registration_request::{Feature, Listener};
use kafka_protocol::messages::{
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerId, BrokerRegistrationRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, AlterPartitionRequest,
};

use super::alter_partition::{AlterPartitionManager, CommittedIsr, IsrFuture, IsrProposal};
use super::metadata_cache::MetadataCache;
use super::rpc_producer_id_manager::ProducerIdsChannel;
use crate::clients::private_apis::{
    MetadataFetchRequest, MetadataFetchResponse, METADATA_FETCH_KEY, REQUEST_HEADER_VERSION,
    RESPONSE_HEADER_VERSION,
};
use crate::clients::{ClientLimits, ClientSecurity, NetworkClient};
use crate::metadata::{MetadataImage, RecordAndVersion};

const REGISTRATION_VERSION: i16 = 4;
const HEARTBEAT_VERSION: i16 = 1;
/// How long a metadata fetch waits at the controller for news.
const FETCH_WAIT_MS: i32 = 500;
/// The largest metadata answer a broker accepts (the whole image).
const MAX_METADATA_RESPONSE: usize = 64 << 20;

/// What the broker tells the controller about itself.
pub struct BrokerIdentity {
    pub node_id: i32,
    pub cluster_id: String,
    pub listeners: Vec<(String, String, u16, i16)>,
    pub rack: Option<String>,
}

/// The controllers a broker may reach, as (id or -1, host:port).
pub struct ControllerSet {
    nodes: Vec<(i32, String)>,
    /// Index of the one believed active.
    current: Mutex<usize>,
}

impl ControllerSet {
    pub fn new(nodes: Vec<(i32, String)>) -> ControllerSet {
        ControllerSet {
            nodes,
            current: Mutex::new(0),
        }
    }

    fn current(&self) -> String {
        let i = *self.current.lock().unwrap_or_else(|p| p.into_inner());
        self.nodes.get(i).map(|n| n.1.clone()).unwrap_or_default()
    }

    /// After `tried` failed (no answer, NOT_CONTROLLER): moves to the
    /// named leader if known, else to the controller after `tried` — but
    /// only if `tried` is still the one believed active. Another caller may
    /// have moved on already (perhaps to the active controller, learned
    /// from a leader hint or a success); its choice stands.
    fn move_on(&self, tried: &str, leader: Option<i32>) {
        let mut i = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let tried_pos = self.nodes.iter().position(|n| n.1 == tried);
        match leader.and_then(|l| self.nodes.iter().position(|n| n.0 == l)) {
            Some(pos) if Some(pos) != tried_pos => *i = pos,
            _ if tried_pos == Some(*i) => *i = (*i + 1) % self.nodes.len().max(1),
            _ => {}
        }
    }
}

pub struct BrokerLifecycleManager {
    identity: BrokerIdentity,
    /// The controller listener's security.
    security: Arc<ClientSecurity>,
    incarnation_id: Uuid,
    controllers: ControllerSet,
    heartbeat_interval: Duration,
    request_timeout: Duration,
    cache: Arc<MetadataCache>,
    epoch: AtomicI64,
    /// The offset of the last image applied (published and acted on):
    /// what heartbeats report.
    applied_offset: AtomicI64,
    /// Set by the first heartbeat answer that says the broker caught up.
    caught_up: tokio::sync::watch::Sender<bool>,
}

fn limits(request_timeout: Duration, max: usize) -> ClientLimits {
    ClientLimits {
        connect_timeout: request_timeout.min(Duration::from_secs(2)),
        request_timeout,
        max_response_bytes: max,
    }
}

impl BrokerLifecycleManager {
    pub fn new(
        identity: BrokerIdentity,
        controllers: ControllerSet,
        heartbeat_interval: Duration,
        request_timeout: Duration,
        cache: Arc<MetadataCache>,
        security: Arc<ClientSecurity>,
    ) -> Arc<BrokerLifecycleManager> {
        Arc::new(BrokerLifecycleManager {
            security,
            identity,
            incarnation_id: Uuid::new_v4(),
            controllers,
            heartbeat_interval,
            request_timeout,
            cache,
            epoch: AtomicI64::new(-1),
            applied_offset: AtomicI64::new(-1),
            caught_up: tokio::sync::watch::channel(false).0,
        })
    }

    /// Resolves once a heartbeat answer said the broker caught up with the
    /// metadata log (at once after that).
    pub async fn initial_catch_up(&self) {
        let mut rx = self.caught_up.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// The broker epoch from the last registration (-1 before).
    pub fn broker_epoch(&self) -> i64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn client(&self) -> NetworkClient {
        NetworkClient::new(
            self.controllers.current(),
            &format!("kastle-broker-{}", self.identity.node_id),
            limits(self.request_timeout, 1 << 20),
        )
        .with_security(self.security.clone())
    }

    /// Registers until the controller accepts; an INCONSISTENT_CLUSTER_ID
    /// refusal is final (the broker belongs to another cluster).
    pub async fn register(&self) -> anyhow::Result<i64> {
        let id = &self.identity;
        let req = BrokerRegistrationRequest::default()
            .with_broker_id(BrokerId(id.node_id))
            .with_cluster_id(StrBytes::from_string(id.cluster_id.clone()))
            .with_incarnation_id(self.incarnation_id)
            .with_listeners(
                id.listeners
                    .iter()
                    .map(|(name, host, port, proto)| {
                        Listener::default()
                            .with_name(StrBytes::from_string(name.clone()))
                            .with_host(StrBytes::from_string(host.clone()))
                            .with_port(*port)
                            .with_security_protocol(*proto)
                    })
                    .collect(),
            )
            .with_features(
                crate::protocol::versions::FEATURES
                    .iter()
                    .map(|f| {
                        Feature::default()
                            .with_name(StrBytes::from_static_str(f.name))
                            .with_min_supported_version(f.min)
                            .with_max_supported_version(f.max)
                    })
                    .collect(),
            )
            .with_rack(id.rack.clone().map(StrBytes::from_string))
            .with_previous_broker_epoch(self.broker_epoch());
        loop {
            let mut client = self.client();
            match client.send(&req, REGISTRATION_VERSION).await {
                Ok(resp) if resp.error_code == 0 => {
                    self.epoch.store(resp.broker_epoch, Ordering::Release);
                    tracing::info!(
                        epoch = resp.broker_epoch,
                        controller = client.addr(),
                        "registered with the controller"
                    );
                    return Ok(resp.broker_epoch);
                }
                Ok(resp) => {
                    let code = resp.error_code;
                    if code == ResponseError::InconsistentClusterId.code() {
                        anyhow::bail!(
                            "the controller at {} refused the registration: INCONSISTENT_CLUSTER_ID (this broker's cluster id is {})",
                            client.addr(),
                            id.cluster_id
                        );
                    }
                    tracing::info!(
                        code,
                        controller = client.addr(),
                        "registration refused; retrying"
                    );
                    if code == ResponseError::NotController.code() {
                        self.controllers.move_on(client.addr(), None);
                    }
                }
                Err(e) => {
                    tracing::debug!("registration: {e}");
                    self.controllers.move_on(client.addr(), None);
                }
            }
            tokio::time::sleep(self.heartbeat_interval.min(Duration::from_millis(500))).await;
        }
    }

    async fn heartbeat_once(
        &self,
        client: &mut NetworkClient,
        want_shut_down: bool,
    ) -> Option<BrokerHeartbeatResponse> {
        let req = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(self.identity.node_id))
            .with_broker_epoch(self.broker_epoch())
            .with_current_metadata_offset(self.applied_offset.load(Ordering::Acquire))
            .with_want_shut_down(want_shut_down);
        match client.send(&req, HEARTBEAT_VERSION).await {
            Ok(resp) => Some(resp),
            Err(e) => {
                tracing::debug!("heartbeat: {e}");
                None
            }
        }
    }

    /// Heartbeats until the process ends, re-registering when needed.
    pub async fn run_heartbeats(self: Arc<Self>) {
        let mut client = self.client();
        let mut was_fenced = true;
        let mut pause = self.heartbeat_interval;
        loop {
            tokio::time::sleep(pause).await;
            // After a failure the next controller is tried at once: the
            // session does not wait for the interval.
            pause = self.heartbeat_interval.min(Duration::from_millis(50));
            match self.heartbeat_once(&mut client, false).await {
                Some(r) if r.error_code == 0 => {
                    pause = self.heartbeat_interval;
                    if was_fenced && !r.is_fenced {
                        tracing::info!("the controller unfenced this broker");
                    }
                    was_fenced = r.is_fenced;
                    if r.is_caught_up && !*self.caught_up.borrow() {
                        tracing::info!("caught up with the metadata log; serving clients");
                        self.caught_up.send_replace(true);
                    }
                }
                Some(r)
                    if r.error_code == ResponseError::StaleBrokerEpoch.code()
                        || r.error_code == ResponseError::BrokerIdNotRegistered.code() =>
                {
                    if let Err(e) = self.register().await {
                        tracing::error!("{e:#}");
                    }
                    client = self.client();
                }
                other => {
                    if other.is_some_and(|r| r.error_code != ResponseError::NotController.code()) {
                        tracing::debug!("heartbeat refused; retrying");
                    }
                    self.controllers.move_on(client.addr(), None);
                    client = self.client();
                }
            }
        }
    }

    /// Controlled shutdown: heartbeats with want_shut_down until the
    /// controller says the broker may go, or `timeout` passes.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut client = self.client();
        while tokio::time::Instant::now() < deadline {
            match self.heartbeat_once(&mut client, true).await {
                Some(r) if r.error_code == 0 && r.should_shut_down => {
                    tracing::info!("controlled shutdown complete");
                    return;
                }
                Some(r) if r.error_code == 0 => {}
                _ => {
                    self.controllers.move_on(client.addr(), None);
                    client = self.client();
                }
            }
            tokio::time::sleep(self.heartbeat_interval.min(Duration::from_millis(200))).await;
        }
        tracing::warn!("controlled shutdown not confirmed within {timeout:?}; stopping anyway");
    }

    /// Long-polls the active controller for committed metadata and
    /// installs each newer image in the cache; `on_image(old, new)` runs
    /// after each install.
    pub async fn run_metadata_fetcher(
        self: Arc<Self>,
        on_image: impl Fn(&MetadataImage, &MetadataImage) + Send + 'static,
    ) {
        let mut client = self.fetch_client();
        loop {
            let req = MetadataFetchRequest {
                broker_id: self.identity.node_id,
                after_offset: self.cache.offset(),
                max_wait_ms: FETCH_WAIT_MS,
            };
            let answer = client
                .send_raw(
                    METADATA_FETCH_KEY,
                    0,
                    REQUEST_HEADER_VERSION,
                    RESPONSE_HEADER_VERSION,
                    &req.encode(),
                )
                .await;
            let resp = match answer.map(|b| MetadataFetchResponse::decode(&b)) {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::warn!("metadata fetch: {e}");
                    client = self.next_fetch_client(&client, None).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!("metadata fetch: {e}");
                    client = self.next_fetch_client(&client, None).await;
                    continue;
                }
            };
            if resp.error_code != 0 {
                let hint = (resp.leader_id >= 0).then_some(resp.leader_id);
                client = self.next_fetch_client(&client, hint).await;
                continue;
            }
            let Some(records) = resp.records else {
                continue;
            };
            match build_image(&records) {
                Ok(image) => {
                    let old = self.cache.publish(image, resp.offset);
                    on_image(&old, &self.cache.image());
                    self.applied_offset.store(resp.offset, Ordering::Release);
                }
                Err(e) => {
                    tracing::error!("metadata fetch: an image that does not apply: {e}");
                    tokio::time::sleep(self.heartbeat_interval).await;
                }
            }
        }
    }

    fn fetch_client(&self) -> NetworkClient {
        let timeout = self.request_timeout + Duration::from_millis(FETCH_WAIT_MS as u64);
        NetworkClient::new(
            self.controllers.current(),
            &format!("kastle-broker-{}-metadata", self.identity.node_id),
            limits(timeout, MAX_METADATA_RESPONSE),
        )
        .with_security(self.security.clone())
    }

    async fn next_fetch_client(&self, tried: &NetworkClient, leader: Option<i32>) -> NetworkClient {
        self.controllers.move_on(tried.addr(), leader);
        if leader.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.fetch_client()
    }
}

fn build_image(records: &[Vec<u8>]) -> anyhow::Result<MetadataImage> {
    let mut image = MetadataImage::default();
    for r in records {
        let r = RecordAndVersion::decode(r).map_err(|e| anyhow::anyhow!(e.0))?;
        image.apply(&r.record).map_err(|e| anyhow::anyhow!(e.0))?;
    }
    Ok(image)
}

/// The leader's ISR proposals sent as AlterPartition (v3: each member with
/// its broker epoch, read from the metadata image) to the active
/// controller, retried on NOT_CONTROLLER within the request timeout.
pub struct ControllerAlterPartition(pub Arc<BrokerLifecycleManager>);

impl AlterPartitionManager for ControllerAlterPartition {
    fn submit(&self, proposal: IsrProposal) -> IsrFuture {
        let m = self.0.clone();
        Box::pin(async move { m.alter_partition(proposal).await })
    }
}

const ALTER_PARTITION_VERSION: i16 = 3;

impl BrokerLifecycleManager {
    async fn alter_partition(&self, p: IsrProposal) -> Result<CommittedIsr, ResponseError> {
        let image = self.cache.image();
        let members = p
            .new_isr
            .iter()
            .map(|&id| {
                BrokerState::default()
                    .with_broker_id(BrokerId(id))
                    .with_broker_epoch(image.brokers.get(&id).map_or(-1, |b| b.epoch))
            })
            .collect();
        let req = AlterPartitionRequest::default()
            .with_broker_id(BrokerId(self.identity.node_id))
            .with_broker_epoch(self.broker_epoch())
            .with_topics(vec![TopicData::default()
                .with_topic_id(p.topic_id)
                .with_partitions(vec![PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_leader_epoch(p.leader_epoch)
                    .with_new_isr_with_epochs(members)
                    .with_partition_epoch(p.partition_epoch)])]);
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        while tokio::time::Instant::now() < deadline {
            let mut client = self.client();
            match client.send(&req, ALTER_PARTITION_VERSION).await {
                Ok(resp) if resp.error_code == ResponseError::NotController.code() => {}
                Ok(resp) if resp.error_code != 0 => {
                    return Err(ResponseError::try_from_code(resp.error_code)
                        .unwrap_or(ResponseError::UnknownServerError));
                }
                Ok(resp) => {
                    let part = resp
                        .topics
                        .iter()
                        .filter(|t| t.topic_id == p.topic_id)
                        .flat_map(|t| t.partitions.iter())
                        .find(|x| x.partition_index == p.partition);
                    let Some(part) = part else {
                        return Err(ResponseError::UnknownTopicOrPartition);
                    };
                    if part.error_code == ResponseError::NotController.code() {
                        self.controllers.move_on(client.addr(), None);
                        continue;
                    }
                    if part.error_code != 0 {
                        return Err(ResponseError::try_from_code(part.error_code)
                            .unwrap_or(ResponseError::UnknownServerError));
                    }
                    return Ok(CommittedIsr {
                        leader: part.leader_id.0,
                        leader_epoch: part.leader_epoch,
                        partition_epoch: part.partition_epoch,
                        isr: part.isr.iter().map(|b| b.0).collect(),
                    });
                }
                Err(e) => tracing::debug!("AlterPartition: {e}"),
            }
            self.controllers.move_on(client.addr(), None);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ResponseError::RequestTimedOut)
    }
}

/// The producer-id manager's AllocateProducerIds (v0, the broker's id and
/// current epoch) to the active controller, retried on the next controller
/// after NOT_CONTROLLER or no answer, within the request timeout.
pub struct ControllerProducerIds(pub Arc<BrokerLifecycleManager>);

impl ProducerIdsChannel for ControllerProducerIds {
    fn allocate_producer_ids(
        &self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<AllocateProducerIdsResponse, String>> + Send>,
    > {
        let m = self.0.clone();
        Box::pin(async move { m.allocate_producer_ids().await })
    }
}

const ALLOCATE_PRODUCER_IDS_VERSION: i16 = 0;

impl BrokerLifecycleManager {
    async fn allocate_producer_ids(&self) -> Result<AllocateProducerIdsResponse, String> {
        let req = AllocateProducerIdsRequest::default()
            .with_broker_id(BrokerId(self.identity.node_id))
            .with_broker_epoch(self.broker_epoch());
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut last = String::from("no controller tried");
        while tokio::time::Instant::now() < deadline {
            let mut client = self.client();
            match client.send(&req, ALLOCATE_PRODUCER_IDS_VERSION).await {
                Ok(resp) if resp.error_code == ResponseError::NotController.code() => {
                    last = format!("{} is not the active controller", client.addr());
                }
                Ok(resp) => return Ok(resp),
                Err(e) => last = e.to_string(),
            }
            self.controllers.move_on(client.addr(), None);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "no active controller answered within {:?}: {last}",
            self.request_timeout
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::ControllerSet;

    fn set() -> ControllerSet {
        ControllerSet::new(vec![
            (1, "c1:9093".into()),
            (2, "c2:9093".into()),
            (3, "c3:9093".into()),
        ])
    }

    #[test]
    fn a_failure_moves_on_from_the_controller_that_failed() {
        let s = set();
        s.move_on("c1:9093", None);
        assert_eq!(s.current(), "c2:9093");
        s.move_on("c2:9093", None);
        s.move_on("c3:9093", None);
        assert_eq!(s.current(), "c1:9093", "wraps around");
    }

    #[test]
    fn a_stale_failure_does_not_move_past_the_controller_another_caller_found() {
        let s = set();
        // The metadata fetcher learns that 2 is active (a leader hint) ...
        s.move_on("c1:9093", Some(2));
        assert_eq!(s.current(), "c2:9093");
        // ... while ISR proposals and the heartbeat that had tried the old
        // controller 1 (or 3) fail only now: 2 stays.
        for _ in 0..20 {
            s.move_on("c1:9093", None);
            s.move_on("c3:9093", None);
        }
        assert_eq!(s.current(), "c2:9093");
    }

    #[test]
    fn a_hint_naming_the_controller_that_failed_is_ignored() {
        let s = set();
        s.move_on("c1:9093", Some(1));
        assert_eq!(s.current(), "c2:9093");
        s.move_on("c1:9093", Some(3));
        assert_eq!(s.current(), "c3:9093", "a hint moves even from elsewhere");
    }
}
