//! Protocol dispatch (Kafka's `KafkaApis`): one module per API family. A
//! handler decodes its request (after the schema walker has vetted it), calls
//! the broker's services or a coordinator and encodes the response; it never
//! touches storage directly.

pub mod acls;
pub mod admin_cluster;
pub mod admin_configs;
pub mod api_versions;
pub mod config_forwarding;
pub mod consumer_group;
pub mod controller_apis;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod envelope;
pub mod features;
pub mod fetch;
pub mod find_coordinator;
pub mod forward_scram_quotas;
pub mod forwarding;
pub mod group_admin;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod producers;
pub mod reassignments;
pub mod request_quota;
pub mod scram_credentials;
pub mod share_group;
pub mod share_group_offsets;
pub mod share_state;
pub mod streams_group;
pub mod topics;
pub mod transactions;
pub mod write_txn_markers;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::broker::authorizer::Authorizer;
use crate::broker::dynamic_config::DynamicBrokerConfig;
use crate::broker::producer_ids::ProducerIdManager;
use crate::broker::quota_managers::{ControllerMutationQuota, QuotaType};
use crate::broker::quotas::ClientQuotaManager;
use crate::broker::scram_credentials::ScramCredentialStore;
use crate::broker::ReplicaManager;
use crate::config::BrokerConfig;
use crate::coordinator::group::group_config::GroupConfigManager;
use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::txn::TransactionCoordinator;
use crate::metrics::BrokerMetrics;
use crate::protocol::header::{parse_request_header, RequestHeader};
use crate::protocol::{response, schema, versions};
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use crate::security::sasl::SaslSettings;
use crate::security::{KafkaPrincipal, SecurityProtocol};

/// What the connection does once a request is complete.
pub enum Reply {
    Frame(BytesMut),
    /// A frame in several chunks: fetch responses keep their record sets
    /// by reference, as buffers or as file regions sent with sendfile.
    Chunks(Vec<response::Chunk>),
    /// acks=0 produce: the client expects no response.
    None,
    /// Kafka closes the connection (undecodable request, acks=0 failure...).
    Close(String),
}

/// The part of a request that may wait (fsync, long poll) after its in-order
/// part has run.
pub type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

pub fn ready(reply: Reply) -> Pending {
    Box::pin(std::future::ready(reply))
}

/// The services requests are answered from (Kafka's `KafkaApis` is built
/// with the same): wired once by the server.
pub struct KafkaApis {
    /// The configuration as the broker started (with the dynamic configs
    /// stored then); keys that change at run time are read through
    /// `dynamic_config`.
    pub config: Arc<BrokerConfig>,
    /// Dynamic broker configs (AlterConfigs on BROKER resources).
    pub dynamic_config: Arc<DynamicBrokerConfig>,
    /// GROUP config resources.
    pub group_configs: Arc<GroupConfigManager>,
    pub cluster_id: String,
    pub replicas: Arc<ReplicaManager>,
    /// KIP-227 incremental fetch sessions (Kafka's `FetchManager`).
    pub fetch_sessions: Arc<crate::broker::fetch_session::FetchSessionCache>,
    /// KIP-932 share partitions and share sessions.
    pub share: Arc<crate::broker::share::SharePartitionManager>,
    /// The share partitions' durable state (`__share_group_state`,
    /// standalone).
    pub share_state: Arc<crate::coordinator::share::ShareCoordinator>,
    /// Consumer groups and committed offsets (`__consumer_offsets`).
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids and two-phase commit (`__transaction_state`).
    pub txns: Arc<TransactionCoordinator>,
    /// KIP-890 verification of transactional writes with the transaction
    /// coordinator, wherever it lives (Kafka's `AddPartitionsToTxnManager`).
    pub txn_verifier:
        Arc<crate::coordinator::txn::add_partitions_manager::AddPartitionsToTxnManager>,
    pub producer_ids: Arc<ProducerIdManager>,
    pub quotas: Arc<ClientQuotaManager>,
    pub metrics: Arc<BrokerMetrics>,
    /// What each SASL listener accepts (mechanisms, PLAIN users).
    pub sasl: Arc<SaslSettings>,
    /// SCRAM credentials (Describe/AlterUserScramCredentials).
    pub scram: Arc<ScramCredentialStore>,
    /// The ACLs and their decision (`authorizer.class.name`); without one
    /// every request is allowed and the ACL APIs answer SECURITY_DISABLED.
    pub authorizer: Option<Arc<Authorizer>>,
    /// KIP-392: `replica.selector.class` names Kafka's
    /// `RackAwareReplicaSelector`, so leaders point consumers at the
    /// replica in their `client.rack`.
    pub rack_aware_reads: bool,
    /// A standalone broker's finalized feature levels (`None` in a
    /// cluster: see [`KafkaApis::finalized_features`]).
    pub features: Option<Arc<crate::broker::finalized_features::FinalizedFeatureStore>>,
    /// In a cluster: the committed metadata Metadata and DescribeCluster
    /// answer brokers from. `None` on a standalone node.
    pub cluster: Option<Arc<crate::broker::metadata_cache::MetadataCache>>,
    /// In a cluster: Metadata's auto-creations on their way to the
    /// controller.
    pub auto_topic_creation: forwarding::AutoTopicCreationManager,
    /// In a cluster: the internal topics FindCoordinator has the
    /// controller create.
    pub internal_topics: Arc<forwarding::InternalTopicCreation>,
}

impl KafkaApis {
    /// The feature levels in force: a cluster's from its metadata image
    /// (epoch: the image's metadata offset, as Kafka's), a standalone
    /// broker's from its own store.
    pub fn finalized_features(&self) -> crate::controller::feature_control::FinalizedFeatures {
        use crate::controller::feature_control::{from_image, FinalizedFeatures};
        match (&self.cluster, &self.features) {
            (Some(c), _) => from_image(&c.image(), c.offset().max(0)),
            (None, Some(f)) => f.current(),
            (None, None) => FinalizedFeatures {
                recorded: Default::default(),
                epoch: 0,
            },
        }
    }
}

/// A connection's quota mute (KIP-219): a throttled client gets its
/// response at once, then the network layer reads nothing more from the
/// connection until the throttle time has passed.
pub struct ChannelThrottle {
    epoch: Instant,
    /// Milliseconds after `epoch` until which the connection is muted.
    until_ms: AtomicU64,
}

impl Default for ChannelThrottle {
    fn default() -> Self {
        ChannelThrottle {
            epoch: Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }
}

impl ChannelThrottle {
    /// Mutes the connection for `ms` from now (the longest mute wins).
    pub fn mute_for(&self, ms: i32) {
        if ms > 0 {
            let until = self.epoch.elapsed().as_millis() as u64 + ms as u64;
            self.until_ms.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// How long the connection stays muted, if it is.
    pub fn remaining(&self) -> Option<Duration> {
        let until = self.until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return None;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        (until > now).then(|| Duration::from_millis(until - now))
    }
}

pub struct RequestContext {
    pub apis: Arc<KafkaApis>,
    /// Name of the listener the client connected to (Metadata advertises it).
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    /// How the listener protects the connection.
    pub security_protocol: SecurityProtocol,
    /// Who the client authenticated as (`User:ANONYMOUS` without
    /// authentication); what authorization decides on.
    pub principal: Arc<KafkaPrincipal>,
    /// The connection's quota mute.
    pub throttle: Arc<ChannelThrottle>,
    /// This broker's id of the connection (Kafka's connection id): share
    /// sessions belong to the connection that opened them.
    pub connection_id: u64,
}

impl RequestContext {
    fn host(&self) -> std::net::IpAddr {
        self.peer.ip().to_canonical()
    }

    /// Whether the client may do `op` on the resource (always, without
    /// an authorizer).
    pub fn authorize(&self, op: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        self.apis
            .authorizer
            .as_ref()
            .is_none_or(|a| a.authorize(&self.principal, self.host(), op, resource_type, name))
    }

    /// Whether the client may do `op` on the cluster.
    pub fn authorize_cluster(&self, op: AclOperation) -> bool {
        self.authorize(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the client may do `op` on some resource of the type.
    pub fn authorize_by_resource_type(
        &self,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        self.apis.authorizer.as_ref().is_none_or(|a| {
            a.authorize_by_resource_type(&self.principal, self.host(), op, resource_type)
        })
    }

    /// The authorized-operations bitfield of a resource; `all` (every
    /// operation the resource supports) without an authorizer.
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str, all: i32) -> i32 {
        match &self.apis.authorizer {
            None => all,
            Some(a) => a.authorized_operations(&self.principal, self.host(), resource_type, name),
        }
    }
}

/// A decoded request header plus the connection it arrived on.
pub struct Request {
    pub ctx: RequestContext,
    pub header: RequestHeader,
    /// Set while the request quota measures this request: the nanoseconds
    /// its handler spent waiting on another broker (KIP-890 verification),
    /// which Kafka spends off its request threads and does not charge.
    off_thread_nanos: Option<Arc<AtomicU64>>,
}

impl Request {
    pub fn version(&self) -> i16 {
        self.header.api_version
    }

    /// The client id quotas are kept by ("" when the header has none).
    fn quota_client_id(&self) -> &str {
        self.header.client_id.as_deref().unwrap_or("")
    }

    /// Counts `waited` as time off the request thread (not charged to the
    /// request quota).
    pub fn note_off_thread(&self, waited: Duration) {
        if let Some(n) = &self.off_thread_nanos {
            let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            n.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// Whether any user/client-id quota is configured (one atomic load).
    pub fn quotas_enabled(&self) -> bool {
        self.ctx.apis.quotas.managers.enabled()
    }

    /// Records `value` against the client's `q` quota; the throttle time
    /// (0 without a quota, at the cost of one atomic load).
    pub fn record_quota(&self, q: QuotaType, value: f64) -> i32 {
        let m = &self.ctx.apis.quotas.managers;
        if !m.enabled() {
            return 0;
        }
        m.record(q, &self.ctx.principal.name, self.quota_client_id(), value)
    }

    /// Takes back a value `record_quota` recorded.
    pub fn unrecord_quota(&self, q: QuotaType, value: f64) {
        let m = &self.ctx.apis.quotas.managers;
        m.unrecord(q, &self.ctx.principal.name, self.quota_client_id(), value)
    }

    /// The most one response may carry under the client's `q` quota.
    pub fn max_value_in_quota_window(&self, q: QuotaType) -> Option<f64> {
        let m = &self.ctx.apis.quotas.managers;
        m.max_value_in_window(q, &self.ctx.principal.name, self.quota_client_id())
    }

    /// Throttles the client for `ms` on account of its `q` quota: counts it
    /// on the sensor and mutes the connection once the response is out.
    pub fn throttle(&self, q: QuotaType, ms: i32) {
        if ms > 0 {
            let m = &self.ctx.apis.quotas.managers;
            m.throttled(q, &self.ctx.principal.name, self.quota_client_id(), ms);
            self.ctx.throttle.mute_for(ms);
        }
    }

    /// The client this request came from, as an Envelope names it when the
    /// request is forwarded to the controller.
    pub fn forwarded_origin(&self) -> crate::handlers::envelope::ForwardedOrigin {
        crate::handlers::envelope::ForwardedOrigin {
            principal: (*self.ctx.principal).clone(),
            client_id: self.quota_client_id().to_string(),
            client_address: self.ctx.peer.ip(),
        }
    }

    /// The request's controller mutation quota, strict from `strict_since`.
    pub fn mutation_quota(&self, strict_since: i16) -> ControllerMutationQuota<'_> {
        self.ctx.apis.quotas.managers.mutation_quota(
            &self.ctx.principal.name,
            self.quota_client_id(),
            self.version() >= strict_since,
        )
    }

    /// The throttle a mutation request's response carries; mutes the
    /// connection for it.
    pub fn finish_mutation_quota(&self, quota: &ControllerMutationQuota<'_>) -> i32 {
        let ms = quota.throttle_time_ms();
        if ms > 0 {
            quota.count_throttle(ms);
            self.ctx.throttle.mute_for(ms);
        }
        ms
    }

    /// Encodes a response whose `records` are written by reference.
    pub fn respond_sharing<R: Encodable + HeaderVersion>(
        &self,
        body: &R,
        records: &[response::RecordSource],
    ) -> Reply {
        match response::encode_response_chunked(
            self.header.correlation_id,
            self.header.api_version,
            body,
            records,
        ) {
            Ok(chunks) => Reply::Chunks(chunks),
            Err(e) => {
                tracing::error!(peer = %self.ctx.peer, api_key = self.header.api_key, error = %e, "encoding response failed");
                Reply::Close(format!("could not encode response: {e}"))
            }
        }
    }

    /// Encodes a response the crate encodes up to `crate_max`; above it
    /// `own` writes the body (every version past the crate is flexible:
    /// response header v1).
    pub fn respond_past_crate<R: Encodable + HeaderVersion>(
        &self,
        crate_max: i16,
        body: &R,
        own: fn(&R) -> Vec<u8>,
    ) -> Reply {
        if self.version() <= crate_max {
            return self.respond(body);
        }
        self.respond(&response::Written::<1>(own(body)))
    }

    /// Encodes a response at the request's version.
    pub fn respond<R: Encodable + HeaderVersion>(&self, body: &R) -> Reply {
        match response::encode_response(self.header.correlation_id, self.header.api_version, body) {
            Ok(buf) => Reply::Frame(buf),
            Err(e) => {
                tracing::error!(
                    peer = %self.ctx.peer,
                    api_key = self.header.api_key,
                    version = self.header.api_version,
                    error = %e,
                    "encoding response failed"
                );
                Reply::Close(format!("could not encode response: {e}"))
            }
        }
    }
}

/// Decodes a request body: the schema walker bounds every length first, so
/// the crate's decoder never allocates more than the frame justifies. A
/// version past the crate with an older version's layout
/// (`versions::SAME_REQUEST_AS`) is read as that version.
pub fn decode<T: Decodable>(header: &RequestHeader, mut body: Bytes) -> Result<T, String> {
    schema::check_request_body(header.api_key, header.api_version, &body)
        .map_err(|e| e.to_string())?;
    let version = versions::request_layout(header.api_key, header.api_version);
    T::decode(&mut body, version).map_err(|e| e.to_string())
}

/// Decodes a request with kastle's own codec (versions past the crate):
/// the schema walker first, as [`decode`] does before the crate's; either
/// failure answers as a malformed request.
pub fn decode_own<T, E: std::fmt::Display>(
    req: &Request,
    body: &[u8],
    decode: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, Reply> {
    schema::check_request_body(req.header.api_key, req.header.api_version, body)
        .map_err(|e| malformed(req, e.to_string()))?;
    decode(body).map_err(|e| malformed(req, e.to_string()))
}

/// Runs the in-order part of one request and returns what remains to await.
pub async fn dispatch(ctx: RequestContext, frame: Bytes) -> Pending {
    let header = match parse_request_header(&frame) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(peer = %ctx.peer, error = %e, "undecodable request header");
            return ready(Reply::Close(e.to_string()));
        }
    };
    let body = frame.slice(header.len..);
    let api_key = header.api_key;
    let version = header.api_version;
    let mut req = Request {
        ctx,
        header,
        off_thread_nanos: None,
    };

    if api_key == ApiKey::ApiVersions as i16 && !versions::is_supported(api_key, version) {
        // Kafka answers a too-new ApiVersions with its own range, so that
        // the client can retry at a version both sides speak.
        return ready(api_versions::unsupported_version(&req));
    }
    if !versions::is_supported(api_key, version) {
        let reason = match ApiKey::try_from(api_key) {
            Ok(k) => format!("unsupported version {version} of {k:?}"),
            Err(_) => format!("unknown api key {api_key}"),
        };
        tracing::warn!(peer = %req.ctx.peer, correlation_id = req.header.correlation_id, reason = %reason, "closing connection");
        return ready(Reply::Close(reason));
    }
    // KIP-1071's APIs, which the kafka-protocol crate has no key for (not
    // measured by the request quota).
    match api_key {
        crate::protocol::streams::STREAMS_GROUP_HEARTBEAT => {
            return streams_group::streams_group_heartbeat(req, body)
        }
        crate::protocol::streams::STREAMS_GROUP_DESCRIBE => {
            return ready(streams_group::streams_group_describe(&req, body))
        }
        crate::protocol::streams::STREAMS_GROUP_TOPOLOGY_DESCRIPTION_UPDATE => {
            return ready(streams_group::streams_group_topology_description_update(
                &req, body,
            ))
        }
        _ => {}
    }
    let key = match ApiKey::try_from(api_key) {
        Ok(k) => k,
        Err(_) => return ready(Reply::Close(format!("unknown api key {api_key}"))),
    };
    // The request quota (`request_percentage`): the handler's time on this
    // thread (its in-order part), measured only while some quota is
    // configured; exempt APIs are not measured.
    if !req.quotas_enabled() || request_quota::exempt(key) {
        return handle(key, req, body).await;
    }
    let principal = req.ctx.principal.name.clone();
    let client_id = req.quota_client_id().to_string();
    let throttle = req.ctx.throttle.clone();
    let apis = req.ctx.apis.clone();
    let off_thread = Arc::new(AtomicU64::new(0));
    req.off_thread_nanos = Some(off_thread.clone());
    let start = Instant::now();
    let pending = if key == ApiKey::Fetch {
        // Kafka sends a follower's fetch response exempt from throttling
        // (whether or not the follower may CLUSTER_ACTION).
        let (pending, from_follower) = fetch::handle(req, body);
        if from_follower {
            return pending;
        }
        pending
    } else {
        handle(key, req, body).await
    };
    let on_thread = start
        .elapsed()
        .as_nanos()
        .saturating_sub(u128::from(off_thread.load(Ordering::Relaxed)));
    let percent = request_quota::nanos_to_percentage(on_thread);
    Box::pin(async move {
        let reply = pending.await;
        // acks=0 produce (no response) is exempt, as in Kafka; a closed
        // connection answers nothing to throttle.
        if matches!(reply, Reply::None | Reply::Close(_)) {
            return reply;
        }
        let m = &apis.quotas.managers;
        let ms = m.record(QuotaType::Request, &principal, &client_id, percent);
        if ms <= 0 {
            return reply;
        }
        m.throttled(QuotaType::Request, &principal, &client_id, ms);
        throttle.mute_for(ms);
        request_quota::with_throttle(reply, key, version, ms)
    })
}

/// The API's handler.
async fn handle(key: ApiKey, req: Request, body: Bytes) -> Pending {
    match key {
        ApiKey::ApiVersions => ready(api_versions::handle(&req, body)),
        ApiKey::Metadata => ready(metadata::handle(&req, body)),
        ApiKey::CreateTopics if req.ctx.apis.cluster.is_some() => {
            forwarding::create_topics(req, body)
        }
        ApiKey::CreateTopics => ready(topics::create_topics(&req, body)),
        ApiKey::DeleteTopics if req.ctx.apis.cluster.is_some() => {
            forwarding::delete_topics(req, body)
        }
        ApiKey::DeleteTopics => ready(topics::delete_topics(&req, body)),
        ApiKey::Produce => produce::handle(req, body).await,
        ApiKey::Fetch => fetch::handle(req, body).0,
        ApiKey::ListOffsets => ready(list_offsets::handle(&req, body)),
        ApiKey::InitProducerId => producers::init_producer_id(req, body),
        ApiKey::AddPartitionsToTxn => transactions::add_partitions_to_txn(req, body),
        ApiKey::AddOffsetsToTxn => transactions::add_offsets_to_txn(req, body),
        ApiKey::EndTxn => transactions::end_txn(req, body),
        ApiKey::WriteTxnMarkers => write_txn_markers::handle(req, body),
        ApiKey::DescribeTransactions => transactions::describe_transactions(req, body),
        ApiKey::ListTransactions => transactions::list_transactions(req, body),
        ApiKey::DescribeProducers => ready(producers::describe_producers(&req, body)),
        ApiKey::FindCoordinator => find_coordinator::find_coordinator(req, body),
        ApiKey::JoinGroup => groups::join_group(req, body),
        ApiKey::SyncGroup => groups::sync_group(req, body),
        ApiKey::Heartbeat => ready(groups::heartbeat(&req, body)),
        ApiKey::LeaveGroup => ready(groups::leave_group(&req, body)),
        ApiKey::OffsetCommit => groups::offset_commit(req, body),
        ApiKey::TxnOffsetCommit => groups::txn_offset_commit(req, body).await,
        ApiKey::OffsetFetch => ready(groups::offset_fetch(&req, body)),
        ApiKey::ListGroups => ready(group_admin::list_groups(&req, body)),
        ApiKey::DescribeGroups => ready(group_admin::describe_groups(&req, body)),
        ApiKey::DeleteGroups => group_admin::delete_groups(req, body),
        ApiKey::OffsetDelete => groups::offset_delete(req, body),
        ApiKey::ConsumerGroupHeartbeat => consumer_group::consumer_group_heartbeat(req, body),
        ApiKey::ConsumerGroupDescribe => ready(consumer_group::consumer_group_describe(&req, body)),
        ApiKey::ShareGroupHeartbeat => ready(share_group::share_group_heartbeat(&req, body)),
        ApiKey::ShareGroupDescribe => ready(share_group::share_group_describe(&req, body)),
        ApiKey::ShareFetch => share_group::share_fetch(req, body),
        ApiKey::ShareAcknowledge => share_group::share_acknowledge(req, body),
        ApiKey::DescribeShareGroupOffsets => ready(
            share_group_offsets::describe_share_group_offsets(&req, body),
        ),
        ApiKey::AlterShareGroupOffsets => share_group_offsets::alter_share_group_offsets(req, body),
        ApiKey::DeleteShareGroupOffsets => {
            share_group_offsets::delete_share_group_offsets(req, body)
        }
        ApiKey::DescribeConfigs => ready(admin_configs::describe_configs(&req, body)),
        ApiKey::AlterConfigs if req.ctx.apis.cluster.is_some() => {
            config_forwarding::alter_configs(req, body)
        }
        ApiKey::AlterConfigs => ready(admin_configs::alter_configs(&req, body)),
        ApiKey::IncrementalAlterConfigs if req.ctx.apis.cluster.is_some() => {
            config_forwarding::incremental_alter_configs(req, body)
        }
        ApiKey::IncrementalAlterConfigs => {
            ready(admin_configs::incremental_alter_configs(&req, body))
        }
        ApiKey::CreatePartitions if req.ctx.apis.cluster.is_some() => {
            forwarding::create_partitions(req, body)
        }
        ApiKey::CreatePartitions => ready(admin_cluster::create_partitions(&req, body)),
        ApiKey::DeleteRecords => ready(admin_cluster::delete_records(&req, body)),
        ApiKey::DescribeCluster => ready(admin_cluster::describe_cluster(&req, body)),
        ApiKey::UpdateFeatures => features::update_features(req, body),
        ApiKey::DescribeQuorum => describe_quorum::describe_quorum(req, body),
        ApiKey::DescribeTopicPartitions => ready(describe_topic_partitions::handle(&req, body)),
        ApiKey::ListConfigResources => ready(admin_cluster::list_config_resources(&req, body)),
        ApiKey::DescribeLogDirs => ready(admin_cluster::describe_log_dirs(&req, body)),
        ApiKey::OffsetForLeaderEpoch => ready(admin_cluster::offset_for_leader_epoch(&req, body)),
        ApiKey::ElectLeaders if req.ctx.apis.cluster.is_some() => {
            admin_cluster::forward_elect_leaders(req, body)
        }
        ApiKey::ElectLeaders => ready(admin_cluster::elect_leaders(&req, body)),
        ApiKey::AlterPartitionReassignments if req.ctx.apis.cluster.is_some() => {
            reassignments::forward_alter_partition_reassignments(req, body)
        }
        ApiKey::ListPartitionReassignments if req.ctx.apis.cluster.is_some() => {
            reassignments::forward_list_partition_reassignments(req, body)
        }
        ApiKey::AlterPartitionReassignments => {
            ready(reassignments::alter_partition_reassignments(&req, body))
        }
        ApiKey::ListPartitionReassignments => {
            ready(reassignments::list_partition_reassignments(&req, body))
        }
        ApiKey::DescribeClientQuotas => ready(admin_cluster::describe_client_quotas(&req, body)),
        ApiKey::AlterClientQuotas if req.ctx.apis.cluster.is_some() => {
            forward_scram_quotas::alter_client_quotas(req, body)
        }
        ApiKey::AlterClientQuotas => ready(admin_cluster::alter_client_quotas(&req, body)),
        ApiKey::CreateAcls if req.ctx.apis.cluster.is_some() => {
            acls::forward_create_acls(req, body)
        }
        ApiKey::CreateAcls => ready(acls::create_acls(&req, body)),
        ApiKey::DescribeAcls => ready(acls::describe_acls(&req, body)),
        ApiKey::DeleteAcls if req.ctx.apis.cluster.is_some() => {
            acls::forward_delete_acls(req, body)
        }
        ApiKey::DeleteAcls => ready(acls::delete_acls(&req, body)),
        ApiKey::SaslHandshake => ready(scram_credentials::sasl_handshake_after_auth(&req, body)),
        ApiKey::SaslAuthenticate => {
            ready(scram_credentials::sasl_authenticate_after_auth(&req, body))
        }
        ApiKey::DescribeUserScramCredentials => ready(
            scram_credentials::describe_user_scram_credentials(&req, body),
        ),
        ApiKey::AlterUserScramCredentials if req.ctx.apis.cluster.is_some() => {
            forward_scram_quotas::alter_user_scram_credentials(req, body)
        }
        ApiKey::AlterUserScramCredentials => {
            ready(scram_credentials::alter_user_scram_credentials(&req, body))
        }
        other => ready(Reply::Close(format!("{other:?} is not implemented"))),
    }
}

/// Logs an undecodable body and closes the connection, as Kafka does.
pub fn malformed(req: &Request, error: String) -> Reply {
    tracing::warn!(
        peer = %req.ctx.peer,
        api_key = req.header.api_key,
        version = req.header.api_version,
        correlation_id = req.header.correlation_id,
        error = %error,
        "malformed request"
    );
    Reply::Close(format!("malformed request: {error}"))
}

/// Shorthand for handlers: decode or close.
macro_rules! decode_or_close {
    ($req:expr, $body:expr, $ty:ty) => {
        match $crate::handlers::decode::<$ty>(&$req.header, $body) {
            Ok(r) => r,
            Err(e) => return $crate::handlers::malformed(&$req, e),
        }
    };
}
pub(crate) use decode_or_close;
