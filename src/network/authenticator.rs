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
//!
//! KIP-368: a session lasts at most `connections.max.reauth.ms` (per
//! listener and mechanism) and the credential's own expiry (OAUTHBEARER's
//! `exp`); SaslAuthenticate v1+ tells the client, which re-authenticates on
//! the open connection with the same mechanism and principal. The
//! connection runs that exchange through this same code (`Reauth`), its
//! answers queued behind the responses it already owes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::broker::scram_credentials::ScramCredentialStore;
use crate::config::BrokerConfig;
use crate::handlers::controller_apis::ControllerApis;
use crate::handlers::{self, KafkaApis, Reply, RequestContext};
use crate::network::frame::{read_frame, FrameError};
use crate::protocol::header::{parse_request_header, RequestHeader};
use crate::protocol::response::encode_response;
use crate::protocol::versions;
use crate::security::oauthbearer;
use crate::security::sasl::SaslSettings;
use crate::security::sasl::SUPPORTED_MECHANISMS;
use crate::security::scram::{ScramError, ScramMechanism, ScramServer, Step};
use crate::security::{plain, KafkaPrincipal, SecurityProtocol};
use crate::util::time::now_ms;

/// Who answers the ApiVersions a client sends before authenticating: a
/// broker's `KafkaApis`, or a controller listener's `ControllerApis`.
#[derive(Clone)]
pub enum AuthServer {
    Broker(Arc<KafkaApis>),
    Controller(Arc<ControllerApis>),
}

/// The connection a client is authenticating on.
pub struct AuthContext {
    pub server: AuthServer,
    pub config: Arc<BrokerConfig>,
    pub sasl: Arc<SaslSettings>,
    pub scram: Arc<ScramCredentialStore>,
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    pub security_protocol: SecurityProtocol,
}

/// Where the authenticator's answers go: straight to the socket before the
/// request loop, behind the owed responses when re-authenticating.
pub trait AuthWriter {
    fn send(&mut self, bytes: BytesMut) -> impl Future<Output = Result<(), String>> + Send;
}

/// The socket itself (the first authentication).
pub struct Socket<'a, W>(pub &'a mut W);

impl<W: AsyncWrite + Unpin + Send> AuthWriter for Socket<'_, W> {
    async fn send(&mut self, bytes: BytesMut) -> Result<(), String> {
        self.0.write_all(&bytes).await.map_err(|e| e.to_string())?;
        self.0.flush().await.map_err(|e| e.to_string())
    }
}

/// An authenticated session.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: KafkaPrincipal,
    pub mechanism: String,
    /// When the session ends unless the client re-authenticates (KIP-368);
    /// `None`: never.
    pub expires: Option<Instant>,
}

/// A re-authentication: the session it renews and the SaslHandshake frame
/// that began it (read by the connection's request loop).
pub struct Reauth {
    pub previous: Session,
    pub handshake: Bytes,
}

enum Mechanism {
    Plain,
    Scram(Box<ScramServer>),
    /// The error challenge sent, awaiting the client's `\x01`.
    OAuth(Option<String>),
}

/// What one client token led to.
enum Outcome {
    Continue(Vec<u8>),
    /// The user, the last server message, and the credential's expiry
    /// (epoch ms) if it has one.
    Done(String, Vec<u8>, Option<i64>),
    /// The message the client is shown.
    Failed(String),
}

/// Kafka's `ReauthInfo.calcCompletionTimesAndReturnSessionLifetimeMs`: the
/// lesser of the credential's remaining life and `connections.max.reauth.ms`
/// (when positive), never negative; `None` when neither bounds it.
pub fn session_lifetime_ms(
    credential_expiry_ms: Option<i64>,
    max_reauth_ms: i64,
    now_ms: i64,
) -> Option<i64> {
    let left = credential_expiry_ms.map(|e| e.saturating_sub(now_ms).max(0));
    match (left, max_reauth_ms > 0) {
        (None, false) => None,
        (None, true) => Some(max_reauth_ms),
        (Some(l), false) => Some(l),
        (Some(l), true) => Some(l.min(max_reauth_ms)),
    }
}

/// Runs the SASL exchange (or, with `reauth`, a re-authentication). Returns
/// the session, or why the connection must close (whatever had to be
/// answered has been sent).
pub async fn authenticate<R, S>(
    rd: &mut R,
    out: &mut S,
    ctx: &AuthContext,
    idle: Duration,
    reauth: Option<Reauth>,
) -> Result<Session, String>
where
    R: AsyncRead + Unpin,
    S: AuthWriter,
{
    let (previous, mut first) = match reauth {
        Some(r) => (Some(r.previous), Some(r.handshake)),
        None => (None, None),
    };
    let during = if previous.is_some() {
        "re-authentication"
    } else {
        "authentication"
    };
    let max = usize::try_from(ctx.config.int("sasl.server.max.receive.size")).unwrap_or(0);
    let delay = Duration::from_millis(
        u64::try_from(ctx.config.int("connection.failed.authentication.delay.ms")).unwrap_or(0),
    );
    let enabled: Vec<String> = ctx
        .sasl
        .listeners
        .get(&*ctx.listener)
        .map(|l| l.enabled_mechanisms.clone())
        .unwrap_or_default();
    // Handshake phase: ApiVersions (once answered) and SaslHandshake.
    // Re-authentication begins at the SaslHandshake: no ApiVersions.
    let mut versions_answered = previous.is_some();
    let (mechanism_name, headers) = loop {
        let frame = match first.take() {
            Some(f) => f,
            None => read_bounded(rd, max, idle).await?.freeze(),
        };
        let header = parse_request_header(&frame).map_err(|e| e.to_string())?;
        let body = frame.slice(header.len..);
        match ApiKey::try_from(header.api_key) {
            Ok(ApiKey::ApiVersions) => {
                if versions_answered {
                    return Err("unexpected ApiVersions request during SASL handshake".into());
                }
                let supported = versions::is_supported(header.api_key, header.api_version);
                match &ctx.server {
                    AuthServer::Broker(apis) => {
                        let rctx = RequestContext {
                            apis: apis.clone(),
                            listener: ctx.listener.clone(),
                            peer: ctx.peer,
                            security_protocol: ctx.security_protocol,
                            principal: Arc::new(KafkaPrincipal::anonymous()),
                            throttle: Default::default(),
                            // ApiVersions only: no state is tied to it
                            connection_id: 0,
                        };
                        match handlers::dispatch(rctx, frame).await.await {
                            Reply::Frame(b) => out.send(b).await?,
                            Reply::Close(reason) => return Err(reason),
                            _ => return Err("unexpected ApiVersions answer".into()),
                        }
                    }
                    AuthServer::Controller(apis) => {
                        let caller =
                            crate::handlers::controller_apis::Caller::anonymous(ctx.peer.ip());
                        let b = apis
                            .handle(frame, &caller)
                            .await
                            .map_err(|e| format!("{e:#}"))?;
                        out.send(b).await?
                    }
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
                    out.send(bytes).await?;
                    return Err(format!("Unsupported SASL mechanism {mechanism}"));
                }
                out.send(bytes).await?;
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

    // Kafka answers the handshake of a re-authentication that changes the
    // mechanism, then fails on the client's next message.
    if let Some(p) = previous.as_ref().filter(|p| p.mechanism != mechanism_name) {
        let msg = format!(
            "SASL mechanism '{mechanism_name}' requested by client is not supported for re-authentication of mechanism '{}'",
            p.mechanism
        );
        drop(read_bounded(rd, max, idle).await?);
        tokio::time::sleep(delay).await;
        return Err(msg);
    }
    let mut mechanism = match ScramMechanism::from_name(&mechanism_name) {
        Some(m) => Mechanism::Scram(Box::new(ScramServer::new(
            m,
            uuid::Uuid::new_v4().simple().to_string(),
        ))),
        None if mechanism_name == "OAUTHBEARER" => Mechanism::OAuth(None),
        None => Mechanism::Plain,
    };
    let listener_sasl = ctx.sasl.listeners.get(&*ctx.listener);
    let generic = format!(
        "Authentication failed during {during} due to invalid credentials with SASL mechanism {mechanism_name}"
    );
    loop {
        let frame = read_bounded(rd, max, idle).await?.freeze();
        let (header, token): (Option<RequestHeader>, Bytes) = if headers {
            let header = parse_request_header(&frame).map_err(|e| e.to_string())?;
            if header.api_key != ApiKey::SaslAuthenticate as i16 {
                // Kafka answers it with ILLEGAL_SASL_STATE (where kastle
                // can build that answer) and closes, as for any failed
                // authentication.
                let name = ApiKey::try_from(header.api_key)
                    .map(|k| format!("{k:?}"))
                    .unwrap_or_else(|_| header.api_key.to_string());
                let msg =
                    format!("Unexpected Kafka request of type {name} during SASL authentication.");
                let answer = illegal_sasl_state(&header, frame.slice(header.len..));
                drop(frame);
                tokio::time::sleep(delay).await;
                if let Some(b) = answer {
                    out.send(b).await?;
                }
                return Err(msg);
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
                    Ok(user) => Outcome::Done(user, Vec::new(), None),
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
                    ctx.scram
                        .get(user, m)
                        .or_else(|| ctx.sasl.declared_scram.get(&(user.to_string(), m)).cloned())
                });
                match step {
                    Ok(Step::Challenge(c)) => Outcome::Continue(c),
                    Ok(Step::Done(user, last)) => Outcome::Done(user, last, None),
                    Err(ScramError::Client(m)) => Outcome::Failed(m),
                    Err(ScramError::Internal(m)) => {
                        tracing::debug!(peer = %ctx.peer, error = %m, "SASL/SCRAM failed");
                        Outcome::Failed(generic.clone())
                    }
                }
            }
            Mechanism::OAuth(challenged) => {
                let validator = listener_sasl.and_then(|l| l.oauth.as_ref());
                oauth_step(challenged, &token, validator, &generic, ctx)
            }
        };
        let answer = |code: i16,
                      msg: Option<String>,
                      bytes: Vec<u8>,
                      lifetime: i64|
         -> Result<BytesMut, String> {
            match &header {
                Some(h) => encode(
                    h,
                    &SaslAuthenticateResponse::default()
                        .with_error_code(code)
                        .with_error_message(msg.map(StrBytes::from_string))
                        .with_auth_bytes(Bytes::from(bytes))
                        // Only v1+ carries it.
                        .with_session_lifetime_ms(if h.api_version >= 1 { lifetime } else { 0 }),
                ),
                None => {
                    let mut b = BytesMut::with_capacity(4 + bytes.len());
                    b.put_i32(i32::try_from(bytes.len()).map_err(|e| e.to_string())?);
                    b.put_slice(&bytes);
                    Ok(b)
                }
            }
        };
        // A re-authentication must name the same principal.
        let outcome = match (outcome, &previous) {
            (Outcome::Done(user, _, _), Some(p))
                if p.principal != KafkaPrincipal::user(user.as_str()) =>
            {
                Outcome::Failed(format!(
                    "Cannot change principals during re-authentication from {}.{}: User.{user}",
                    p.principal.principal_type, p.principal.name
                ))
            }
            (o, _) => o,
        };
        match outcome {
            Outcome::Continue(c) => out.send(answer(0, None, c, 0)?).await?,
            Outcome::Done(user, last, credential_expiry) => {
                let max_reauth = listener_sasl
                    .and_then(|l| l.max_reauth_ms.get(&mechanism_name))
                    .copied()
                    .unwrap_or(0);
                let lifetime = session_lifetime_ms(credential_expiry, max_reauth, now_ms());
                let expires = lifetime.map(|ms| Instant::now() + Duration::from_millis(ms as u64));
                out.send(answer(0, None, last, lifetime.unwrap_or(0))?)
                    .await?;
                tracing::debug!(peer = %ctx.peer, user = %user, mechanism = %mechanism_name, ?lifetime, "{during} done");
                return Ok(Session {
                    principal: KafkaPrincipal::user(user),
                    mechanism: mechanism_name,
                    expires,
                });
            }
            Outcome::Failed(msg) => {
                tracing::info!(peer = %ctx.peer, mechanism = %mechanism_name, "failed {during}: {msg}");
                // Only the small answer is held during the delay.
                drop((token, frame));
                tokio::time::sleep(delay).await;
                if header.is_some() {
                    let b = answer(
                        ResponseError::SaslAuthenticationFailed.code(),
                        Some(msg.clone()),
                        Vec::new(),
                        0,
                    )?;
                    out.send(b).await?;
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

/// One OAUTHBEARER message (Kafka's `OAuthBearerSaslServer`): the client's
/// initial response, or its `\x01` after an error challenge, which fails
/// the exchange with the challenge as the message.
fn oauth_step(
    challenged: &mut Option<String>,
    token: &[u8],
    validator: Option<&oauthbearer::OAuthValidator>,
    generic: &str,
    ctx: &AuthContext,
) -> Outcome {
    if token == [1u8] {
        if let Some(challenge) = challenged.take() {
            return Outcome::Failed(challenge);
        }
    }
    *challenged = None;
    let initial = match oauthbearer::parse_client_initial(token) {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!(peer = %ctx.peer, error = %e, "SASL/OAUTHBEARER failed");
            return Outcome::Failed(generic.to_string());
        }
    };
    let Some(validator) = validator else {
        return Outcome::Failed(generic.to_string());
    };
    match validator.validate(&initial.token, now_ms()) {
        Err(rejection) => {
            tracing::info!(peer = %ctx.peer, reason = %rejection.reason, "OAUTHBEARER token refused");
            let challenge = rejection.challenge();
            *challenged = Some(challenge.clone());
            Outcome::Continue(challenge.into_bytes())
        }
        Ok(t) if !initial.authzid.is_empty() && initial.authzid != t.principal => Outcome::Failed(format!(
            "Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({})",
            initial.authzid, t.principal
        )),
        Ok(t) => Outcome::Done(t.principal, Vec::new(), Some(t.expiry_ms)),
    }
}

/// Kafka's error response (ILLEGAL_SASL_STATE, its request's
/// `getErrorResponse`) to a request that is not SaslAuthenticate after a v1
/// SaslHandshake, for SaslHandshake, ApiVersions and Metadata (what
/// clients send at that point); `None` for the others, closed without an
/// answer.
fn illegal_sasl_state(header: &RequestHeader, body: Bytes) -> Option<BytesMut> {
    let code = ResponseError::IllegalSaslState.code();
    if !versions::is_supported(header.api_key, header.api_version) {
        return None;
    }
    match ApiKey::try_from(header.api_key).ok()? {
        ApiKey::SaslHandshake => encode(
            header,
            &SaslHandshakeResponse::default().with_error_code(code),
        )
        .ok(),
        ApiKey::ApiVersions => encode(
            header,
            &kafka_protocol::messages::ApiVersionsResponse::default().with_error_code(code),
        )
        .ok(),
        ApiKey::Metadata => {
            use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
            use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
            let req: MetadataRequest = handlers::decode(header, body).ok()?;
            // Each named topic fails; v13+ also at the top level.
            let topics = req
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(Some(t.name.unwrap_or_default()))
                        .with_topic_id(t.topic_id)
                        .with_error_code(code)
                })
                .collect();
            let mut resp = MetadataResponse::default().with_topics(topics);
            if header.api_version >= 13 {
                resp = resp.with_error_code(code);
            }
            encode(header, &resp).ok()
        }
        _ => None,
    }
}
