//! SASL authentication of one connection before its request loop (Kafka's
//! `SaslServerAuthenticator`), generic over the transport so it serves
//! plain TCP and TLS alike.
//!
//! Until the client has authenticated only ApiVersions, SaslHandshake and
//! then the mechanism's exchange are served; anything else closes the
//! connection. SaslHandshake v0 is followed by raw size-prefixed SASL
//! tokens, v1 by SaslAuthenticate requests. Frames are bounded by
//! `sasl.server.max.receive.size`. A failed authentication (or an
//! unsupported mechanism) is answered after
//! `connection.failed.authentication.delay.ms`, holding only the small
//! answer meanwhile, and the connection is then closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::handlers::{self, KafkaApis, Reply, RequestContext};
use crate::network::frame::{read_frame, FrameError};
use crate::protocol::header::{parse_request_header, RequestHeader};
use crate::protocol::response::encode_response;
use crate::protocol::versions;
use crate::security::sasl::SUPPORTED_MECHANISMS;
use crate::security::scram::{ScramError, ScramMechanism, ScramServer, Step};
use crate::security::{plain, KafkaPrincipal, SecurityProtocol};

/// The connection a client is authenticating on.
pub struct AuthContext {
    pub apis: Arc<KafkaApis>,
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    pub security_protocol: SecurityProtocol,
}

enum Mechanism {
    Plain,
    Scram(Box<ScramServer>),
}

/// What one client token led to.
enum Outcome {
    Continue(Vec<u8>),
    Done(String, Vec<u8>),
    /// The message the client is shown.
    Failed(String),
}

/// Runs the SASL exchange. Returns the authenticated principal, or why the
/// connection must close (whatever had to be answered has been sent).
pub async fn authenticate<R, W>(
    rd: &mut R,
    wr: &mut W,
    ctx: &AuthContext,
    idle: Duration,
) -> Result<KafkaPrincipal, String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let apis = &ctx.apis;
    let max = usize::try_from(apis.config.int("sasl.server.max.receive.size")).unwrap_or(0);
    let delay = Duration::from_millis(
        u64::try_from(apis.config.int("connection.failed.authentication.delay.ms")).unwrap_or(0),
    );
    let enabled: Vec<String> = apis
        .sasl
        .listeners
        .get(&*ctx.listener)
        .map(|l| l.enabled_mechanisms.clone())
        .unwrap_or_default();
    // Handshake phase: ApiVersions (once answered) and SaslHandshake.
    let mut versions_answered = false;
    let (mechanism_name, headers) = loop {
        let frame = read_bounded(rd, max, idle).await?.freeze();
        let header = parse_request_header(&frame).map_err(|e| e.to_string())?;
        let body = frame.slice(header.len..);
        match ApiKey::try_from(header.api_key) {
            Ok(ApiKey::ApiVersions) => {
                if versions_answered {
                    return Err("unexpected ApiVersions request during SASL handshake".into());
                }
                let supported = versions::is_supported(header.api_key, header.api_version);
                let rctx = RequestContext {
                    apis: apis.clone(),
                    listener: ctx.listener.clone(),
                    peer: ctx.peer,
                    security_protocol: ctx.security_protocol,
                    principal: Arc::new(KafkaPrincipal::anonymous()),
                    throttle: Default::default(),
                };
                match handlers::dispatch(rctx, frame).await.await {
                    Reply::Frame(b) => send(wr, &b).await?,
                    Reply::Close(reason) => return Err(reason),
                    _ => return Err("unexpected ApiVersions answer".into()),
                }
                versions_answered = supported;
            }
            Ok(ApiKey::SaslHandshake)
                if versions::is_supported(header.api_key, header.api_version) =>
            {
                let req: SaslHandshakeRequest = handlers::decode(&header, body)?;
                let mechanism = req.mechanism.to_string();
                // Nothing of the request is held past here (the delay below).
                drop((req, frame));
                let ok = enabled.contains(&mechanism);
                let resp = SaslHandshakeResponse::default()
                    .with_error_code(if ok {
                        0
                    } else {
                        ResponseError::UnsupportedSaslMechanism.code()
                    })
                    .with_mechanisms(
                        enabled
                            .iter()
                            .map(|m| StrBytes::from_string(m.clone()))
                            .collect(),
                    );
                let bytes = encode(&header, &resp)?;
                if !ok {
                    tokio::time::sleep(delay).await;
                    send(wr, &bytes).await?;
                    return Err(format!("Unsupported SASL mechanism {mechanism}"));
                }
                send(wr, &bytes).await?;
                if !SUPPORTED_MECHANISMS.contains(&mechanism.as_str()) {
                    return Err(format!("SASL mechanism {mechanism} is not implemented"));
                }
                break (mechanism, header.api_version >= 1);
            }
            Ok(k) => {
                return Err(format!(
                    "Unexpected Kafka request of type {k:?} during SASL handshake."
                ))
            }
            Err(_) => {
                return Err(format!(
                    "unknown api key {} during SASL handshake",
                    header.api_key
                ))
            }
        }
    };

    let mut mechanism = match ScramMechanism::from_name(&mechanism_name) {
        Some(m) => Mechanism::Scram(Box::new(ScramServer::new(
            m,
            uuid::Uuid::new_v4().simple().to_string(),
        ))),
        None => Mechanism::Plain,
    };
    let listener_sasl = apis.sasl.listeners.get(&*ctx.listener);
    let generic = format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism_name}"
    );
    loop {
        let frame = read_bounded(rd, max, idle).await?.freeze();
        let (header, token): (Option<RequestHeader>, Bytes) = if headers {
            let header = parse_request_header(&frame).map_err(|e| e.to_string())?;
            if header.api_key != ApiKey::SaslAuthenticate as i16 {
                let name = ApiKey::try_from(header.api_key)
                    .map(|k| format!("{k:?}"))
                    .unwrap_or_else(|_| header.api_key.to_string());
                return Err(format!(
                    "Unexpected Kafka request of type {name} during SASL authentication."
                ));
            }
            if !versions::is_supported(header.api_key, header.api_version) {
                return Err(format!(
                    "Version {} is not supported for SaslAuthenticate",
                    header.api_version
                ));
            }
            let req: SaslAuthenticateRequest =
                handlers::decode(&header, frame.slice(header.len..))?;
            (Some(header), req.auth_bytes)
        } else {
            (None, frame.clone())
        };
        let outcome = match &mut mechanism {
            Mechanism::Plain => {
                let users = listener_sasl.map(|l| &l.plain_users);
                let empty = Default::default();
                match plain::authenticate(&token, users.unwrap_or(&empty)) {
                    Ok(user) => Outcome::Done(user, Vec::new()),
                    Err(m) if m.starts_with("Authentication failed:") => Outcome::Failed(m),
                    Err(m) => {
                        tracing::debug!(peer = %ctx.peer, error = %m, "SASL/PLAIN failed");
                        Outcome::Failed(generic.clone())
                    }
                }
            }
            Mechanism::Scram(server) => {
                let step = server.step(&token, |user| {
                    let m = ScramMechanism::from_name(&mechanism_name)?;
                    apis.scram.get(user, m).or_else(|| {
                        apis.sasl
                            .declared_scram
                            .get(&(user.to_string(), m))
                            .cloned()
                    })
                });
                match step {
                    Ok(Step::Challenge(c)) => Outcome::Continue(c),
                    Ok(Step::Done(user, last)) => Outcome::Done(user, last),
                    Err(ScramError::Client(m)) => Outcome::Failed(m),
                    Err(ScramError::Internal(m)) => {
                        tracing::debug!(peer = %ctx.peer, error = %m, "SASL/SCRAM failed");
                        Outcome::Failed(generic.clone())
                    }
                }
            }
        };
        let answer = |code: i16, msg: Option<String>, bytes: Vec<u8>| -> Result<BytesMut, String> {
            match &header {
                Some(h) => encode(
                    h,
                    &SaslAuthenticateResponse::default()
                        .with_error_code(code)
                        .with_error_message(msg.map(StrBytes::from_string))
                        .with_auth_bytes(Bytes::from(bytes))
                        .with_session_lifetime_ms(0),
                ),
                None => {
                    let mut b = BytesMut::with_capacity(4 + bytes.len());
                    b.put_i32(i32::try_from(bytes.len()).map_err(|e| e.to_string())?);
                    b.put_slice(&bytes);
                    Ok(b)
                }
            }
        };
        match outcome {
            Outcome::Continue(c) => send(wr, &answer(0, None, c)?).await?,
            Outcome::Done(user, last) => {
                send(wr, &answer(0, None, last)?).await?;
                tracing::debug!(peer = %ctx.peer, user = %user, mechanism = %mechanism_name, "authenticated");
                return Ok(KafkaPrincipal::user(user));
            }
            Outcome::Failed(msg) => {
                tracing::info!(peer = %ctx.peer, mechanism = %mechanism_name, "failed authentication: {msg}");
                // Only the small answer is held during the delay.
                drop((token, frame));
                tokio::time::sleep(delay).await;
                if header.is_some() {
                    let b = answer(
                        ResponseError::SaslAuthenticationFailed.code(),
                        Some(msg.clone()),
                        Vec::new(),
                    )?;
                    send(wr, &b).await?;
                }
                return Err(msg);
            }
        }
    }
}

/// One frame of at most `max` bytes, within the idle timeout.
async fn read_bounded<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
    idle: Duration,
) -> Result<BytesMut, String> {
    match tokio::time::timeout(idle, read_frame(rd, max)).await {
        Err(_) => Err("idle for connections.max.idle.ms during authentication".to_string()),
        Ok(Ok(f)) => Ok(f),
        Ok(Err(FrameError::TooLarge { size, max })) => Err(format!(
            "SASL frame of {size} bytes exceeds sasl.server.max.receive.size ({max})"
        )),
        Ok(Err(e)) => Err(format!("during SASL authentication: {e}")),
    }
}

fn encode<R: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion>(
    header: &RequestHeader,
    body: &R,
) -> Result<BytesMut, String> {
    encode_response(header.correlation_id, header.api_version, body).map_err(|e| e.to_string())
}

async fn send<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> Result<(), String> {
    wr.write_all(bytes).await.map_err(|e| e.to_string())?;
    wr.flush().await.map_err(|e| e.to_string())
}
