//! Topic admin requests a cluster broker sends on to the active controller
//! (Kafka's `ForwardingManager`; Kafka wraps them in an Envelope, kastle
//! sends them as they are on the controller listener, where the controller
//! decides and answers). Only in cluster mode; a standalone node decides
//! itself. Controllers are tried in turn until one answers as the active
//! controller or the request timeout passes.
//!
//! The `forward_*` functions are plain async functions over the broker's
//! configuration so that any handler (auto-creation in Metadata, the
//! coordinators' internal topics) can send a request to the controller.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::{Decodable, Request as KafkaRequest};
use kafka_protocol::ResponseError;

use crate::clients::{ClientLimits, NetworkClient};
use crate::config::BrokerConfig;
use crate::handlers::{ready, Pending, Reply, Request};

/// How long a forwarded request may look for the active controller.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
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
        let resp = forward_create_topics(&config, &request, version).await;
        req.respond(&resp)
    })
}

/// Sends CreateTopics (at `version`) to the active controller and returns
/// its answer; when no controller answered in time, every topic fails with
/// REQUEST_TIMED_OUT (what Kafka's forwarding answers on a timeout).
/// The caller authorizes first: the controller trusts the broker.
pub async fn forward_create_topics(
    config: &BrokerConfig,
    request: &CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let not_controller = |r: &CreateTopicsResponse| {
        r.topics
            .iter()
            .any(|t| t.error_code == ResponseError::NotController.code())
    };
    match forward(config, request, version, not_controller).await {
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
