//! Topic admin requests a cluster broker sends on to the active controller
//! (Kafka's `ForwardingManager`; Kafka wraps them in an Envelope, kastle
//! sends them as they are on the controller listener, where the controller
//! decides and answers). Only in cluster mode; a standalone node decides
//! itself. Controllers are tried in turn until one answers as the active
//! controller or the request timeout passes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::protocol::{Decodable, Request as KafkaRequest};
use kafka_protocol::ResponseError;

use crate::clients::{ClientLimits, NetworkClient};
use crate::config::BrokerConfig;
use crate::handlers::{ready, Pending, Reply, Request};

/// How long a forwarded request may look for the active controller.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause before trying the next controller.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// The largest answer accepted from a controller.
const MAX_FORWARDED_RESPONSE: usize = 16 << 20;

/// CreateTopics, decided by the active controller.
pub fn create_topics(req: Request, body: Bytes) -> Pending {
    let version = req.version();
    let request = match CreateTopicsRequest::decode(&mut body.clone(), version) {
        Ok(r) => r,
        Err(e) => return ready(Reply::Close(format!("undecodable CreateTopics: {e}"))),
    };
    Box::pin(async move {
        let config = req.ctx.apis.config.clone();
        let not_controller = |r: &CreateTopicsResponse| {
            r.topics
                .iter()
                .any(|t| t.error_code == ResponseError::NotController.code())
        };
        match forward(&config, &request, version, not_controller).await {
            Some(resp) => req.respond(&resp),
            None => {
                let mut resp = CreateTopicsResponse::default();
                for t in &request.topics {
                    resp.topics.push(
                        kafka_protocol::messages::create_topics_response::CreatableTopicResult::default()
                            .with_name(t.name.clone())
                            .with_error_code(ResponseError::RequestTimedOut.code())
                            .with_num_partitions(-1)
                            .with_replication_factor(-1),
                    );
                }
                req.respond(&resp)
            }
        }
    })
}

/// Sends `request` to each controller in turn until one answers as the
/// active controller; `None` when none did within [`FORWARD_TIMEOUT`].
async fn forward<R: KafkaRequest>(
    config: &BrokerConfig,
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
    let limits = ClientLimits {
        connect_timeout: Duration::from_secs(2),
        request_timeout: FORWARD_TIMEOUT,
        max_response_bytes: MAX_FORWARDED_RESPONSE,
    };
    let started = Instant::now();
    let client_id = format!("kastle-broker-{}-forwarding", config.node_id);
    for addr in addrs.iter().cycle() {
        if started.elapsed() > FORWARD_TIMEOUT {
            break;
        }
        let mut client = NetworkClient::new(addr.clone(), &client_id, limits);
        match client.send(request, version).await {
            Ok(resp) if !not_controller(&resp) => return Some(resp),
            Ok(_) => {}
            Err(e) => tracing::debug!("forwarding api {} to {addr}: {e}", R::KEY),
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    None
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
