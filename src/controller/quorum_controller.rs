//! `QuorumController`: the active controller's request handling over the
//! openraft quorum (Kafka's `QuorumController` and, for broker
//! registrations, `ClusterControlManager`). Writes are serialized through
//! one lock (Kafka's single event queue): read the committed image, decide
//! (`replication_control` for topics, partitions and liveness), append the
//! records as one batch with `client_write`, answer once it is committed
//! and applied. A controller that is not the Raft leader answers
//! NOT_CONTROLLER so brokers move to the leader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, BrokerHeartbeatRequest,
    BrokerHeartbeatResponse, BrokerRegistrationRequest, BrokerRegistrationResponse,
    ElectLeadersRequest, ElectLeadersResponse,
};
use kafka_protocol::ResponseError;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};

use super::broker_heartbeat_manager::BrokerHeartbeatManager;
use super::replication_control::{self, ReplicationDefaults};
use super::{elect_leaders, feature_control, producer_id_control};
use crate::clients::private_apis::{MetadataFetchRequest, MetadataFetchResponse};
use crate::metadata::records::{BrokerEndpoint, BrokerFeature, RegisterBrokerRecord};
use crate::metadata::{MetadataImage, MetadataRecord, RecordAndVersion};
use crate::raft::replica_states::{now_ms, ReplicaStates};
use crate::raft::{MetadataBatch, MetadataStateMachine, NodeId, TypeConfig};

/// The longest a broker's metadata fetch may wait for news.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(5);
/// RegisterBrokerRecord's version written (Kafka 4.x's, without cordoned
/// log dirs).
const REGISTER_BROKER_VERSION: i16 = 3;

/// Why a write did not happen.
#[derive(Debug)]
pub enum WriteError {
    /// This node is not the active controller (the leader's id if known).
    NotController(Option<i32>),
    /// The quorum failed the write (shutting down, storage error...).
    Failed(String),
}

impl WriteError {
    pub fn error(&self) -> ResponseError {
        match self {
            WriteError::NotController(_) => ResponseError::NotController,
            WriteError::Failed(_) => ResponseError::UnknownServerError,
        }
    }
}

pub struct ControllerSettings {
    pub node_id: i32,
    pub cluster_id: String,
    pub session_timeout: Duration,
    pub defaults: ReplicationDefaults,
    /// The replicas' fetch times DescribeQuorum reports (shared with the
    /// quorum's transport).
    pub replica_states: Arc<ReplicaStates>,
    /// The feature levels a new cluster starts at
    /// (`protocol::versions::bootstrap_levels`), written before its first
    /// record as Kafka's controller writes its bootstrap metadata.
    pub bootstrap_features: Vec<(String, i16)>,
}

pub struct QuorumController {
    pub raft: Raft<TypeConfig>,
    state: MetadataStateMachine,
    settings: ControllerSettings,
    sessions: BrokerHeartbeatManager,
    /// One decision at a time (Kafka's controller event queue).
    writes: tokio::sync::Mutex<()>,
}

impl QuorumController {
    pub fn new(
        raft: Raft<TypeConfig>,
        state: MetadataStateMachine,
        settings: ControllerSettings,
    ) -> Arc<QuorumController> {
        Arc::new(QuorumController {
            raft,
            state,
            sessions: BrokerHeartbeatManager::new(settings.session_timeout),
            settings,
            writes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn node_id(&self) -> i32 {
        self.settings.node_id
    }

    /// Every voter calls this with the same membership; a quorum that
    /// already has one keeps it.
    pub async fn initialize(&self, voters: BTreeMap<i32, String>) -> anyhow::Result<()> {
        let members: BTreeMap<NodeId, BasicNode> = voters
            .into_iter()
            .map(|(id, addr)| (id as NodeId, BasicNode { addr }))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("initializing the controller quorum: {e}")),
        }
    }

    /// The active controller's id as this node knows it.
    pub fn leader_id(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(|l| l as i32)
    }

    fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The committed image (as applied on this node).
    pub fn image(&self) -> MetadataImage {
        self.state.image()
    }

    /// Runs `decide` over the committed image as the active controller and
    /// appends its records as one batch. `decide` gets the log offset the
    /// batch will most likely take (the next index; a broker epoch).
    pub async fn write<R>(
        &self,
        decide: impl FnOnce(&MetadataImage, i64) -> (Vec<RecordAndVersion>, R),
    ) -> Result<R, WriteError> {
        let _one_at_a_time = self.writes.lock().await;
        // Applies everything committed before this leader's term began, so
        // the image decided on is the latest.
        if let Err(e) = self.raft.ensure_linearizable().await {
            return Err(match e {
                RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f)) => {
                    WriteError::NotController(f.leader_id.map(|l| l as i32))
                }
                other => WriteError::Failed(other.to_string()),
            });
        }
        let next = self
            .raft
            .metrics()
            .borrow()
            .last_log_index
            .map_or(0, |i| i + 1) as i64;
        let image = self.state.image();
        let (records, response) = decide(&image, next);
        if records.is_empty() {
            return Ok(response);
        }
        // A new cluster's first batch starts with the levels it is formatted
        // at. A cluster an older kastle created holds records (its brokers'
        // registrations at least) and no levels: it keeps the unrecorded
        // ones, as Kafka keeps an upgraded cluster's.
        let bootstrap = if image == MetadataImage::default() {
            feature_control::level_records(&self.settings.bootstrap_features)
        } else {
            Vec::new()
        };
        let mut batch = MetadataBatch {
            records: Vec::with_capacity(bootstrap.len() + records.len()),
        };
        for r in bootstrap.iter().chain(&records) {
            batch
                .records
                .push(r.encode().map_err(|e| WriteError::Failed(e.0))?);
        }
        match self.raft.client_write(batch).await {
            Ok(w) => match w.data.error {
                None => Ok(response),
                Some(e) => Err(WriteError::Failed(format!(
                    "the image refused the batch: {e}"
                ))),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(WriteError::NotController(f.leader_id.map(|l| l as i32)))
            }
            Err(e) => Err(WriteError::Failed(e.to_string())),
        }
    }

    /// BrokerRegistration (Kafka's `ClusterControlManager.registerBroker`).
    pub async fn register_broker(
        &self,
        req: &BrokerRegistrationRequest,
    ) -> BrokerRegistrationResponse {
        let mut resp = BrokerRegistrationResponse::default().with_broker_epoch(-1);
        if req.cluster_id.as_str() != self.settings.cluster_id {
            return resp.with_error_code(ResponseError::InconsistentClusterId.code());
        }
        let id = req.broker_id.0;
        let term = self.term();
        let sessions = &self.sessions;
        let outcome = self
            .write(|image, next| {
                if let Some(existing) = image.brokers.get(&id) {
                    if existing.incarnation_id == req.incarnation_id {
                        // A retried registration: the same answer.
                        return (Vec::new(), Ok(existing.epoch));
                    }
                    if !existing.fenced && sessions.has_valid_session(term, id) {
                        return (Vec::new(), Err(ResponseError::DuplicateBrokerRegistration));
                    }
                }
                let record = RegisterBrokerRecord {
                    broker_id: id,
                    is_migrating_zk_broker: false,
                    incarnation_id: req.incarnation_id,
                    broker_epoch: next,
                    end_points: req
                        .listeners
                        .iter()
                        .map(|l| BrokerEndpoint {
                            name: l.name.to_string(),
                            host: l.host.to_string(),
                            port: l.port,
                            security_protocol: l.security_protocol,
                        })
                        .collect(),
                    features: req
                        .features
                        .iter()
                        .map(|f| BrokerFeature {
                            name: f.name.to_string(),
                            min_supported_version: f.min_supported_version,
                            max_supported_version: f.max_supported_version,
                        })
                        .collect(),
                    rack: req.rack.as_ref().map(|r| r.to_string()),
                    fenced: true,
                    in_controlled_shutdown: false,
                    log_dirs: req.log_dirs.clone(),
                    cordoned_log_dirs: None,
                };
                let rec = RecordAndVersion {
                    record: MetadataRecord::RegisterBroker(record),
                    version: REGISTER_BROKER_VERSION,
                };
                (vec![rec], Ok(next))
            })
            .await;
        match outcome {
            Ok(Ok(epoch)) => {
                self.sessions.touch(term, id);
                tracing::info!(broker = id, epoch, "broker registered");
                resp.broker_epoch = epoch;
            }
            Ok(Err(e)) => resp.error_code = e.code(),
            Err(e) => resp.error_code = e.error().code(),
        }
        resp
    }

    /// BrokerHeartbeat: keeps the session, unfences a caught-up broker,
    /// runs a controlled shutdown (Kafka's `processBrokerHeartbeat`).
    pub async fn heartbeat(&self, req: &BrokerHeartbeatRequest) -> BrokerHeartbeatResponse {
        let mut resp = BrokerHeartbeatResponse::default().with_is_fenced(true);
        let id = req.broker_id.0;
        let term = self.term();
        let defaults = &self.settings.defaults;
        let sessions = &self.sessions;
        let outcome = self
            .write(|image, _| {
                let Some(b) = image.brokers.get(&id) else {
                    return (Vec::new(), Err(ResponseError::BrokerIdNotRegistered));
                };
                if b.epoch != req.broker_epoch {
                    return (Vec::new(), Err(ResponseError::StaleBrokerEpoch));
                }
                sessions.touch(term, id);
                let caught_up = req.current_metadata_offset >= b.epoch;
                let mut records = Vec::new();
                let mut fenced = b.fenced;
                if b.fenced && caught_up && !req.want_fence && !req.want_shut_down {
                    records = replication_control::unfence_broker(image, id, defaults);
                    fenced = false;
                } else if !b.fenced && req.want_fence {
                    records = replication_control::fence_broker(image, id, defaults);
                    fenced = true;
                } else if req.want_shut_down && !b.in_controlled_shutdown && !b.fenced {
                    records = replication_control::controlled_shutdown(image, id, defaults);
                }
                (records, Ok((caught_up, fenced)))
            })
            .await;
        match outcome {
            Ok(Ok((caught_up, fenced))) => {
                resp.is_caught_up = caught_up;
                resp.is_fenced = fenced;
                if req.want_shut_down {
                    // Committed: leadership has moved off the broker, or it
                    // led nothing.
                    let image = self.state.image();
                    resp.should_shut_down = !image
                        .topics
                        .values()
                        .flat_map(|t| t.partitions.values())
                        .any(|p| p.leader == id);
                }
            }
            Ok(Err(e)) => resp.error_code = e.code(),
            Err(e) => resp.error_code = e.error().code(),
        }
        resp
    }

    /// AllocateProducerIds (Kafka's `QuorumController.allocateProducerIds`):
    /// the next producer-id block for the broker, answered once the record
    /// reserving it is committed.
    pub async fn allocate_producer_ids(
        &self,
        req: &AllocateProducerIdsRequest,
    ) -> AllocateProducerIdsResponse {
        let resp = AllocateProducerIdsResponse::default();
        let (id, epoch) = (req.broker_id.0, req.broker_epoch);
        let outcome = self
            .write(|image, _| {
                match producer_id_control::generate_next_producer_id(image, id, epoch) {
                    Ok((records, block)) => (records, Ok(block)),
                    Err(e) => (Vec::new(), Err(e)),
                }
            })
            .await;
        match outcome {
            Ok(Ok(block)) => {
                tracing::debug!(
                    broker = id,
                    first = block.first,
                    "producer id block allocated"
                );
                resp.with_producer_id_start(kafka_protocol::messages::ProducerId(block.first))
                    .with_producer_id_len(block.len)
            }
            Ok(Err(e)) => resp.with_error_code(e.code()),
            Err(e) => resp.with_error_code(e.error().code()),
        }
    }

    /// ElectLeaders (Kafka's `QuorumController.electLeaders`), answered once
    /// the elections' records are committed.
    pub async fn elect_leaders(
        &self,
        req: &ElectLeadersRequest,
        version: i16,
    ) -> ElectLeadersResponse {
        let outcome = self
            .write(|image, _| {
                let d = elect_leaders::elect_leaders(image, req, version);
                (d.records, d.response)
            })
            .await;
        outcome
            .unwrap_or_else(|e| ElectLeadersResponse::default().with_error_code(e.error().code()))
    }

    /// The controller's periodic elections, on the active controller only:
    /// the auto leader rebalance every `rebalance_every` when
    /// `auto.leader.rebalance.enable` is on (Kafka's
    /// `maybeScheduleNextBalancePartitionLeaders`), and unclean elections
    /// of leaderless partitions that allow them every `unclean_every`
    /// (`maybeScheduleNextElectUncleanLeaders`). A pass that hit its limit
    /// runs again at once.
    pub async fn run_periodic_elections(
        self: Arc<Self>,
        rebalance_every: Option<Duration>,
        unclean_every: Duration,
    ) {
        let mut unclean = tokio::time::interval(unclean_every);
        unclean.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A timer that never fires when the rebalance is off.
        let mut rebalance =
            tokio::time::interval(rebalance_every.unwrap_or(Duration::from_secs(u32::MAX as u64)));
        rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first ticks are immediate: skip them, as Kafka schedules the
        // first pass one interval after it became active.
        unclean.tick().await;
        rebalance.tick().await;
        loop {
            let balance = tokio::select! {
                _ = unclean.tick() => false,
                _ = rebalance.tick() => rebalance_every.is_some(),
            };
            loop {
                if self.leader_id() != Some(self.node_id()) {
                    break;
                }
                let defaults = &self.settings.defaults;
                let more = self
                    .write(|image, _| {
                        if balance {
                            elect_leaders::balance_partition_leaders(
                                image,
                                elect_leaders::MAX_ELECTIONS_PER_IMBALANCE,
                            )
                        } else {
                            elect_leaders::elect_unclean_leaders(
                                image,
                                defaults,
                                elect_leaders::MAX_ELECTIONS_PER_IMBALANCE,
                            )
                        }
                    })
                    .await;
                match more {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::debug!(?e, balance, "periodic leader elections");
                        break;
                    }
                }
            }
        }
    }

    /// Fences every unfenced broker whose session expired; runs on the
    /// leader every `tick` until the process ends.
    pub async fn run_session_checks(self: Arc<Self>, tick: Duration) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if self.leader_id() != Some(self.node_id()) {
                continue;
            }
            let term = self.term();
            let image = self.state.image();
            let unfenced = image.brokers.values().filter(|b| !b.fenced).map(|b| b.id);
            for id in self.sessions.expired(term, unfenced) {
                let defaults = &self.settings.defaults;
                let result = self
                    .write(|image, _| match image.brokers.get(&id) {
                        Some(b) if !b.fenced => {
                            (replication_control::fence_broker(image, id, defaults), ())
                        }
                        _ => (Vec::new(), ()),
                    })
                    .await;
                match result {
                    Ok(()) => {
                        tracing::info!(broker = id, "broker session expired: fenced");
                        self.sessions.remove(term, id);
                    }
                    Err(e) => tracing::debug!(broker = id, ?e, "fencing an expired broker"),
                }
            }
        }
    }

    /// The private metadata fetch: the whole committed image once it moved
    /// past what the broker has, waiting up to `max_wait_ms` for news.
    pub async fn fetch_metadata(&self, req: &MetadataFetchRequest) -> MetadataFetchResponse {
        let leader = self.leader_id();
        let mut resp = MetadataFetchResponse {
            error_code: 0,
            leader_id: leader.unwrap_or(-1),
            offset: req.after_offset,
            records: None,
        };
        if leader != Some(self.node_id()) {
            resp.error_code = ResponseError::NotController.code();
            return resp;
        }
        let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_FETCH_WAIT);
        // Brokers are the metadata log's observers (DescribeQuorum).
        let applied_now = self.state.last_applied().map_or(-1, |l| l.index as i64);
        self.settings.replica_states.observer_fetched(
            req.broker_id,
            self.term(),
            req.after_offset,
            applied_now,
            now_ms(),
        );
        let mut metrics = self.raft.metrics();
        let applied = |m: &openraft::RaftMetrics<NodeId, BasicNode>| {
            m.last_applied.map_or(-1, |l| l.index as i64)
        };
        let _ =
            tokio::time::timeout(wait, metrics.wait_for(|m| applied(m) > req.after_offset)).await;
        // The offset first, then the image: the image is at least as new as
        // the offset the broker will ask after next.
        let offset = self.state.last_applied().map_or(-1, |l| l.index as i64);
        if offset <= req.after_offset {
            return resp;
        }
        let image = self.state.image();
        let mut records = Vec::new();
        for r in image.to_records() {
            match r.encode() {
                Ok(bytes) => records.push(bytes),
                Err(e) => {
                    tracing::error!("encoding the metadata image: {e}");
                    resp.error_code = ResponseError::UnknownServerError.code();
                    return resp;
                }
            }
        }
        resp.offset = offset;
        resp.records = Some(records);
        resp
    }

    pub fn cluster_id(&self) -> &str {
        &self.settings.cluster_id
    }

    /// The replicas' fetch times (DescribeQuorum).
    pub fn replica_states(&self) -> &ReplicaStates {
        &self.settings.replica_states
    }

    pub fn defaults(&self) -> &ReplicationDefaults {
        &self.settings.defaults
    }

    /// The quorum's voters (Kafka's `isControllerId`: a BROKER config
    /// resource may name a controller).
    pub fn voter_ids(&self) -> std::collections::BTreeSet<i32> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .map(|v| v as i32)
            .collect()
    }
}
