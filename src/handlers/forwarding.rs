//! Admin requests a cluster broker sends on to the active controller
//! (Kafka's `ForwardingManager`). A client's request travels in an Envelope
//! (`protocol::envelope`) carrying the client's principal, client id and
//! address, so that the controller charges its mutation quota to the
//! client; the broker's own requests (auto-created and internal topics)
//! go as they are. The broker authorizes before it forwards. Only in
//! cluster mode; a standalone node decides itself. Controllers are tried in
//! turn until one answers as the active controller or the request timeout
//! passes.
//!
//! The `forward_*` functions are plain async functions over the broker's
//! configuration so that any handler (auto-creation in Metadata, the
//! coordinators' internal topics) can send a request to the controller.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Request as KafkaRequest, StrBytes,
};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::clients::channel_builder::SecuritySource;
use crate::clients::{ChannelBuilders, ClientLimits, ClientSecurity, NetworkClient};
use crate::config::BrokerConfig;
use crate::handlers::envelope::{self, ForwardedOrigin};
use crate::handlers::topics::described_configs;
use crate::handlers::{ready, Pending, Reply, Request};
use crate::security::acl::{AclOperation, ResourceType};

/// The metadata log's topic: never created by a client (Kafka's
/// `Topic.CLUSTER_METADATA_TOPIC_NAME`).
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";

/// How long a forwarded request may look for the active controller.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause before trying the next controller.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// The largest answer accepted from a controller.
const MAX_FORWARDED_RESPONSE: usize = 16 << 20;

/// CreateTopics, decided by the active controller once the broker has
/// authorized it (Kafka's `ControllerApis.createTopics`: duplicates and
/// `__cluster_metadata` refused, CREATE on the cluster or the topic, the
/// configs of a created topic shown only with DESCRIBE_CONFIGS on it).
pub fn create_topics(req: Request, body: Bytes) -> Pending {
    let version = req.version();
    let mut request = match CreateTopicsRequest::decode(&mut body.clone(), version) {
        Ok(r) => r,
        Err(e) => return ready(Reply::Close(format!("undecodable CreateTopics: {e}"))),
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &request.topics {
        *counts.entry(t.name.0.to_string()).or_default() += 1;
    }
    let cluster_create = req.ctx.authorize_cluster(AclOperation::Create);
    let mut refused: Vec<CreatableTopicResult> = Vec::new();
    let mut reported: HashSet<String> = HashSet::new();
    let refuse = |name: &TopicName, code: ResponseError, msg: String| {
        CreatableTopicResult::default()
            .with_name(name.clone())
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(msg)))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_configs((version >= 5).then(Vec::new))
    };
    request.topics.retain(|t| {
        let name = t.name.0.as_str();
        let refusal = if counts.get(name).copied().unwrap_or(0) > 1 {
            Some((
                ResponseError::InvalidRequest,
                "Duplicate topic name.".to_string(),
            ))
        } else if name == CLUSTER_METADATA_TOPIC {
            Some((
                ResponseError::InvalidRequest,
                format!("Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited."),
            ))
        } else if !cluster_create
            && !req
                .ctx
                .authorize(AclOperation::Create, ResourceType::Topic, name)
        {
            Some((
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            ))
        } else {
            None
        };
        match refusal {
            None => true,
            Some((code, msg)) => {
                // One answer per name, as Kafka's (duplicates included).
                if reported.insert(name.to_string()) {
                    refused.push(refuse(&t.name, code, msg));
                }
                false
            }
        }
    });
    Box::pin(async move {
        let config = req.ctx.apis.config.clone();
        let mut resp = if request.topics.is_empty() {
            CreateTopicsResponse::default()
        } else {
            forward_create_topics(&config, Some(&req.forwarded_origin()), &request, version).await
        };
        mute_for_controller_throttle(&req, resp.throttle_time_ms);
        if version >= 5 {
            for t in &mut resp.topics {
                if t.error_code != 0 {
                    continue;
                }
                if !req.ctx.authorize(
                    AclOperation::DescribeConfigs,
                    ResourceType::Topic,
                    &t.name.0,
                ) {
                    // Created, but its configs are not the client's to see.
                    t.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
                    t.num_partitions = -1;
                    t.replication_factor = -1;
                    t.configs = Some(Vec::new());
                } else if t.configs.is_none() {
                    let overrides = request
                        .topics
                        .iter()
                        .find(|r| r.name == t.name)
                        .map(|r| {
                            r.configs
                                .iter()
                                .filter_map(|c| {
                                    Some((c.name.to_string(), c.value.as_ref()?.to_string()))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    t.configs = Some(described_configs(&overrides, &req.ctx.apis.dynamic_config));
                }
            }
        }
        resp.topics.extend(refused);
        req.respond(&resp)
    })
}

/// DeleteTopics, decided by the active controller once the broker has
/// authorized it (Kafka's `ControllerApis.deleteTopics`: `delete.topic.enable`
/// first; DELETE on the cluster or the topic; a topic the client may not
/// describe is refused whether or not it exists, and one named by id keeps
/// its name hidden). Topic ids resolve through this broker's image.
pub fn delete_topics(req: Request, body: Bytes) -> Pending {
    let version = req.version();
    let request = match DeleteTopicsRequest::decode(&mut body.clone(), version) {
        Ok(r) => r,
        Err(e) => return ready(Reply::Close(format!("undecodable DeleteTopics: {e}"))),
    };
    let apis = &req.ctx.apis;
    // (name, id) as asked; v6 names topics by name or id.
    let targets: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.clone()), Uuid::nil()))
            .collect()
    };
    if !apis.config.delete_topic_enable {
        let code = if version < 3 {
            ResponseError::InvalidRequest
        } else {
            ResponseError::TopicDeletionDisabled
        };
        let responses = targets
            .into_iter()
            .map(|(name, id)| {
                DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(id)
                    .with_error_code(code.code())
            })
            .collect();
        return ready(req.respond(&DeleteTopicsResponse::default().with_responses(responses)));
    }
    let image = apis.cluster.as_ref().map(|c| c.image()).unwrap_or_default();
    let cluster_delete = req.ctx.authorize_cluster(AclOperation::Delete);
    let describable = |n: &str| {
        cluster_delete
            || req
                .ctx
                .authorize(AclOperation::Describe, ResourceType::Topic, n)
    };
    let deletable = |n: &str| {
        cluster_delete
            || req
                .ctx
                .authorize(AclOperation::Delete, ResourceType::Topic, n)
    };
    // Each target's local refusal, or `None`: forwarded (the controller
    // answers duplicates, unknown topics and internal topics).
    let mut slots: Vec<Option<DeletableTopicResult>> = Vec::with_capacity(targets.len());
    let mut forwarded = request.clone();
    forwarded.topics.clear();
    forwarded.topic_names.clear();
    for (name, id) in &targets {
        let denied = |name: Option<TopicName>| {
            Some(
                DeletableTopicResult::default()
                    .with_name(name)
                    .with_topic_id(*id)
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
            )
        };
        let slot = match (name, id.is_nil()) {
            (Some(n), true) => {
                // Not describable: refused whether it exists; describable
                // but not deletable: refused once it exists (the
                // controller answers an unknown one).
                let exists = || image.topic_by_name(&n.0).is_some();
                if !describable(&n.0) || (exists() && !deletable(&n.0)) {
                    denied(Some(n.clone()))
                } else {
                    None
                }
            }
            (None, false) => match image.topics.get(id) {
                Some(t) if !deletable(&t.name) => denied(
                    describable(&t.name).then(|| TopicName(StrBytes::from_string(t.name.clone()))),
                ),
                _ => None,
            },
            // Both or neither: the controller's INVALID_REQUEST.
            _ => None,
        };
        if slot.is_none() {
            if version >= 6 {
                forwarded.topics.push(
                    kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                        .with_name(name.clone())
                        .with_topic_id(*id),
                );
            } else if let Some(n) = name {
                forwarded.topic_names.push(n.clone());
            }
        }
        slots.push(slot);
    }
    Box::pin(async move {
        let config = req.ctx.apis.config.clone();
        let any = slots.iter().any(Option::is_none);
        let mut throttle_ms = 0;
        let mut answers = if any {
            let not_controller = |r: &DeleteTopicsResponse| {
                r.responses
                    .iter()
                    .any(|t| t.error_code == ResponseError::NotController.code())
            };
            let origin = req.forwarded_origin();
            match forward_as(&config, Some(&origin), &forwarded, version, not_controller).await {
                Some(r) => {
                    throttle_ms = r.throttle_time_ms;
                    mute_for_controller_throttle(&req, throttle_ms);
                    r.responses.into_iter()
                }
                None => {
                    let timed_out = targets
                        .iter()
                        .zip(&slots)
                        .filter(|(_, s)| s.is_none())
                        .map(|((name, id), _)| {
                            DeletableTopicResult::default()
                                .with_name(name.clone())
                                .with_topic_id(*id)
                                .with_error_code(ResponseError::RequestTimedOut.code())
                        })
                        .collect::<Vec<_>>();
                    timed_out.into_iter()
                }
            }
        } else {
            Vec::new().into_iter()
        };
        // The controller answers the forwarded targets in order.
        let mut responses: Vec<DeletableTopicResult> = slots
            .into_iter()
            .filter_map(|s| s.or_else(|| answers.next()))
            .collect();
        responses.extend(answers);
        req.respond(
            &DeleteTopicsResponse::default()
                .with_responses(responses)
                .with_throttle_time_ms(throttle_ms),
        )
    })
}

/// CreatePartitions, decided by the active controller once the broker has
/// authorized it (Kafka's `ControllerApis.createPartitions`: duplicates
/// refused, ALTER on each topic). validateOnly travels with the request.
pub fn create_partitions(req: Request, body: Bytes) -> Pending {
    let version = req.version();
    let mut request = match CreatePartitionsRequest::decode(&mut body.clone(), version) {
        Ok(r) => r,
        Err(e) => return ready(Reply::Close(format!("undecodable CreatePartitions: {e}"))),
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in &request.topics {
        *counts.entry(t.name.0.to_string()).or_default() += 1;
    }
    let mut refused: Vec<CreatePartitionsTopicResult> = Vec::new();
    let mut reported: HashSet<String> = HashSet::new();
    for (name, n) in &counts {
        if *n > 1 {
            reported.insert(name.clone());
            refused.push(
                CreatePartitionsTopicResult::default()
                    .with_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_static_str("Duplicate topic name."))),
            );
        }
    }
    request.topics.retain(|t| {
        let name = t.name.0.as_str();
        if reported.contains(name) {
            return false;
        }
        if !req
            .ctx
            .authorize(AclOperation::Alter, ResourceType::Topic, name)
        {
            refused.push(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(None),
            );
            return false;
        }
        true
    });
    Box::pin(async move {
        let config = req.ctx.apis.config.clone();
        let mut resp = CreatePartitionsResponse::default();
        resp.results = refused;
        if !request.topics.is_empty() {
            let not_controller = |r: &CreatePartitionsResponse| {
                r.results
                    .iter()
                    .any(|t| t.error_code == ResponseError::NotController.code())
            };
            let origin = req.forwarded_origin();
            match forward_as(&config, Some(&origin), &request, version, not_controller).await {
                Some(r) => {
                    resp.throttle_time_ms = r.throttle_time_ms;
                    mute_for_controller_throttle(&req, r.throttle_time_ms);
                    resp.results.extend(r.results)
                }
                None => resp.results.extend(request.topics.iter().map(|t| {
                    CreatePartitionsTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(ResponseError::RequestTimedOut.code())
                        .with_error_message(None)
                })),
            }
        }
        req.respond(&resp)
    })
}

/// Mutes the client's connection for the throttle the controller's
/// mutation quota put in a forwarded answer (Kafka's
/// `sendForwardedResponse`; the request quota's own throttle, if larger,
/// is applied by the dispatcher).
fn mute_for_controller_throttle(req: &Request, throttle_ms: i32) {
    if throttle_ms > 0 {
        req.ctx.throttle.mute_for(throttle_ms);
    }
}

/// Most topics whose auto-creation may be in flight at once; past it a
/// topic is answered UNKNOWN_TOPIC_OR_PARTITION without a request, and the
/// client asks again.
const MAX_INFLIGHT_AUTO_CREATIONS: usize = 1024;
/// The CreateTopics version auto-creation sends (Kafka 4.x's latest).
const AUTO_CREATE_VERSION: i16 = 7;

/// Auto-creation of topics a Metadata request names (Kafka's
/// `DefaultAutoTopicCreationManager`): CreateTopics with `num.partitions`
/// and `default.replication.factor` sent to the active controller in the
/// background, at most once at a time per topic; the Metadata answer does
/// not wait (UNKNOWN_TOPIC_OR_PARTITION until the image has the topic), and
/// a refusal (too few brokers: INVALID_REPLICATION_FACTOR) is only logged,
/// as Kafka does.
#[derive(Default)]
pub struct AutoTopicCreationManager {
    inflight: Arc<Mutex<HashSet<String>>>,
}

impl AutoTopicCreationManager {
    /// Sends the creation of `name` unless one is already on its way.
    pub fn create_topic(&self, config: &Arc<BrokerConfig>, name: &str) {
        {
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if inflight.len() >= MAX_INFLIGHT_AUTO_CREATIONS || !inflight.insert(name.to_string()) {
                return;
            }
        }
        // Kafka's `defaultReplicationFactor.shortValue`: not capped to the
        // brokers there are; the controller refuses what cannot be placed.
        // (The configured value: `BrokerConfig::default_replication_factor`
        // is the standalone node's, kept at one.)
        let rf = i16::try_from(config.int("default.replication.factor")).unwrap_or(i16::MAX);
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(i32::try_from(config.int("request.timeout.ms")).unwrap_or(30_000))
            .with_topics(vec![
                kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name.to_string())))
                    .with_num_partitions(config.num_partitions)
                    .with_replication_factor(rf),
            ]);
        let (config, inflight, name) = (config.clone(), self.inflight.clone(), name.to_string());
        tokio::spawn(async move {
            let resp = forward_create_topics(&config, None, &request, AUTO_CREATE_VERSION).await;
            for t in &resp.topics {
                let code = t.error_code;
                if code == 0 {
                    tracing::info!(topic = %name, "auto-created topic through the controller");
                } else if code != ResponseError::TopicAlreadyExists.code() {
                    tracing::warn!(topic = %name, error_code = code, message = ?t.error_message, "auto topic creation failed");
                }
            }
            inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        });
    }
}

/// Sends CreateTopics (at `version`) to the active controller and returns
/// its answer; when no controller answered in time, every topic fails with
/// REQUEST_TIMED_OUT (what Kafka's forwarding answers on a timeout).
/// The caller authorizes first: the controller trusts the broker. A
/// client's request names its `origin`; auto-creation sends none.
pub async fn forward_create_topics(
    config: &BrokerConfig,
    origin: Option<&ForwardedOrigin>,
    request: &CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let not_controller = |r: &CreateTopicsResponse| {
        r.topics
            .iter()
            .any(|t| t.error_code == ResponseError::NotController.code())
    };
    match forward_as(config, origin, request, version, not_controller).await {
        Some(resp) => resp,
        None => {
            let mut resp = CreateTopicsResponse::default();
            for t in &request.topics {
                resp.topics.push(
                    CreatableTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(ResponseError::RequestTimedOut.code())
                        .with_num_partitions(-1)
                        .with_replication_factor(-1),
                );
            }
            resp
        }
    }
}

/// How this node reaches controllers: the first of
/// `controller.listener.names`, its protocol in
/// `listener.security.protocol.map`, `sasl.mechanism.controller.protocol`
/// (Kafka's controller channel).
pub fn controller_security(config: &BrokerConfig) -> Result<Arc<ClientSecurity>, String> {
    let k = &config.kraft;
    let Some(listener) = k.controller_listener_names.first() else {
        return Ok(ClientSecurity::plaintext());
    };
    let protocol = k.controller_protocols.get(listener).copied().ok_or_else(|| {
        format!(
            "listener.security.protocol.map: no security protocol for the controller listener {listener}"
        )
    })?;
    let value = |key: &str| config.value(key).map(str::to_string);
    ClientSecurity::build(&SecuritySource {
        listener,
        protocol,
        mechanism_key: "sasl.mechanism.controller.protocol",
        value: &value,
    })
}

/// How this broker reaches other brokers: `inter.broker.listener.name`'s
/// protocol and `sasl.mechanism.inter.broker.protocol`.
pub fn inter_broker_security(config: &BrokerConfig) -> Result<Arc<ClientSecurity>, String> {
    let k = &config.kraft;
    let value = |key: &str| config.value(key).map(str::to_string);
    ClientSecurity::build(&SecuritySource {
        listener: &k.inter_broker_listener_name,
        protocol: k.inter_broker_security_protocol,
        mechanism_key: "sasl.mechanism.inter.broker.protocol",
        value: &value,
    })
}

/// Both purposes' security of a cluster node (the inter-broker one on a
/// node with the broker role; a controller-only node reaches no broker);
/// an error names the key at fault.
pub fn channel_builders(config: &BrokerConfig) -> Result<ChannelBuilders, String> {
    let inter_broker = if config.kraft.roles.broker {
        inter_broker_security(config)?
    } else {
        ClientSecurity::plaintext()
    };
    Ok(ChannelBuilders {
        inter_broker,
        controller: controller_security(config)?,
    })
}

/// Sends the broker's own `request` to each controller in turn until one
/// answers as the active controller; `None` when none did within
/// [`FORWARD_TIMEOUT`].
pub(crate) async fn forward<R: KafkaRequest>(
    config: &BrokerConfig,
    request: &R,
    version: i16,
    not_controller: impl Fn(&R::Response) -> bool,
) -> Option<R::Response> {
    forward_as(config, None, request, version, not_controller).await
}

/// The correlation id of the request an Envelope embeds (one request per
/// connection, so any fixed value pairs them).
const EMBEDDED_CORRELATION_ID: i32 = 1;

/// [`forward`], in an Envelope for `origin` when the request is a client's
/// (Kafka's `ForwardingManager.forwardRequest`). An Envelope answered
/// NOT_CONTROLLER is tried elsewhere; any other Envelope error ends the
/// attempt (`None`) at once, where Kafka answers UNKNOWN_SERVER_ERROR.
pub(crate) async fn forward_as<R: KafkaRequest>(
    config: &BrokerConfig,
    origin: Option<&ForwardedOrigin>,
    request: &R,
    version: i16,
    not_controller: impl Fn(&R::Response) -> bool,
) -> Option<R::Response> {
    let k = &config.kraft;
    let addrs: Vec<String> = if k.voters.is_empty() {
        k.bootstrap_servers.iter().map(|a| a.addr()).collect()
    } else {
        k.voters.values().map(|a| a.addr()).collect()
    };
    if addrs.is_empty() {
        return None;
    }
    let wrapped = match origin
        .map(|o| envelope::wrap(request, version, o, EMBEDDED_CORRELATION_ID))
        .transpose()
    {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("wrapping api {} in an Envelope: {e:#}", R::KEY);
            return None;
        }
    };
    let limits = ClientLimits {
        connect_timeout: Duration::from_secs(2),
        request_timeout: FORWARD_TIMEOUT,
        max_response_bytes: MAX_FORWARDED_RESPONSE,
    };
    let started = Instant::now();
    let client_id = format!("kastle-broker-{}-forwarding", config.node_id);
    // Checked when the node started; an error here is a file changed since.
    let security = match controller_security(config) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("forwarding api {} to the controller: {e}", R::KEY);
            return None;
        }
    };
    for addr in addrs.iter().cycle() {
        if started.elapsed() > FORWARD_TIMEOUT {
            break;
        }
        let mut client =
            NetworkClient::new(addr.clone(), &client_id, limits).with_security(security.clone());
        let answer = match &wrapped {
            None => client.send(request, version).await.map(Attempt::Answered),
            Some(env) => client
                .send(env, ENVELOPE_VERSION)
                .await
                .map(|e| open_envelope::<R>(e, version, addr)),
        };
        match answer {
            Ok(Attempt::Answered(resp)) if !not_controller(&resp) => return Some(resp),
            Ok(Attempt::Refused) => return None,
            Ok(_) => {}
            Err(e) => tracing::debug!("forwarding api {} to {addr}: {e}", R::KEY),
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    None
}

/// The EnvelopeRequest version (Kafka's only one).
const ENVELOPE_VERSION: i16 = 0;

/// What one controller made of a forwarded request.
enum Attempt<T> {
    Answered(T),
    /// Not the active controller: try the next.
    NotController,
    /// An Envelope error other than NOT_CONTROLLER, or an answer that
    /// cannot be read: asking again would not help.
    Refused,
}

/// The embedded answer of an EnvelopeResponse from `addr`.
fn open_envelope<R: KafkaRequest>(
    e: kafka_protocol::messages::EnvelopeResponse,
    version: i16,
    addr: &str,
) -> Attempt<R::Response> {
    if e.error_code == ResponseError::NotController.code() {
        return Attempt::NotController;
    }
    if e.error_code != 0 {
        tracing::warn!(
            "the controller at {addr} refused the Envelope of api {}: error {}",
            R::KEY,
            e.error_code
        );
        return Attempt::Refused;
    }
    let data = e.response_data.unwrap_or_default();
    match envelope::unwrap_response::<R>(&data, version, EMBEDDED_CORRELATION_ID) {
        Ok(r) => Attempt::Answered(r),
        Err(err) => {
            tracing::warn!("the Envelope answer of api {} from {addr}: {err:#}", R::KEY);
            Attempt::Refused
        }
    }
}

/// A request the broker has authorized, sent at `version` and answered
/// with the active controller's answer (encoded at the client's version),
/// or with `timed_out(&request)` when no controller answered within
/// [`FORWARD_TIMEOUT`]. `not_controller` tells an answer from a controller
/// that is not the active one (tried again elsewhere).
pub(crate) fn forward_and_respond<R>(
    req: Request,
    request: R,
    version: i16,
    not_controller: fn(&R::Response) -> bool,
    timed_out: fn(&R) -> R::Response,
) -> Pending
where
    R: KafkaRequest + Send + Sync + 'static,
    R::Response: Encodable + HeaderVersion + Send,
{
    Box::pin(async move {
        let config = req.ctx.apis.config.clone();
        let origin = req.forwarded_origin();
        let resp = forward_as(&config, Some(&origin), &request, version, not_controller)
            .await
            .unwrap_or_else(|| timed_out(&request));
        req.respond(&resp)
    })
}

/// The CreateTopics version internal-topic creation sends.
const INTERNAL_CREATE_TOPICS_VERSION: i16 = 7;

/// Kafka's `AutoTopicCreationManager` for the coordinators' internal
/// topics: FindCoordinator asks for a missing `__consumer_offsets` (or
/// `__transaction_state`) and answers COORDINATOR_NOT_AVAILABLE at once;
/// the active controller creates it (or refuses, e.g. with fewer brokers
/// than its replication factor) in the background. At most one creation
/// per topic is in flight.
#[derive(Default)]
pub struct InternalTopicCreation {
    in_flight: Mutex<BTreeSet<String>>,
}

impl InternalTopicCreation {
    /// Asks the active controller to create `name` unless a request for it
    /// is already in flight. Must run inside the tokio runtime.
    pub fn create(
        self: &Arc<Self>,
        config: &Arc<BrokerConfig>,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: impl IntoIterator<Item = (String, String)>,
    ) {
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            if !in_flight.insert(name.to_string()) {
                return;
            }
        }
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .into_iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k))
                            .with_value(Some(StrBytes::from_string(v)))
                    })
                    .collect(),
            );
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(FORWARD_TIMEOUT.as_millis() as i32);
        let me = self.clone();
        let config = config.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let not_controller = |r: &CreateTopicsResponse| {
                r.topics
                    .iter()
                    .any(|t| t.error_code == ResponseError::NotController.code())
            };
            let answer = forward(
                &config,
                &request,
                INTERNAL_CREATE_TOPICS_VERSION,
                not_controller,
            )
            .await;
            let result = answer.as_ref().and_then(|r| r.topics.first());
            match result.map(|t| (t.error_code, t.error_message.clone())) {
                Some((0, _)) => {
                    tracing::info!(topic = %name, partitions, replication_factor, "internal topic created through the controller")
                }
                Some((code, _)) if code == ResponseError::TopicAlreadyExists.code() => {}
                Some((code, message)) => {
                    tracing::warn!(topic = %name, code, message = ?message.as_deref().map(|m| m.to_string()), "the controller did not create the internal topic")
                }
                None => {
                    tracing::warn!(topic = %name, "no controller answered the internal topic's creation")
                }
            }
            me.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        });
    }
}
