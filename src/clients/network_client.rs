//! `NetworkClient`: one connection to one node, sending Kafka-framed
//! requests and reading their responses (the size prefix, the request and
//! response headers of the message's version, the body). One request is in
//! flight at a time: its owner (a fetcher, the lifecycle manager, a Raft
//! peer) drives it from a single task, so it needs no lock.
//!
//! Failures drop the connection; the next request reconnects. A request
//! abandoned mid-exchange (its future dropped on a timeout or shutdown)
//! leaves the stream at an unknown position, so it is dropped too.
//!
//! A connection is secured as its [`ClientSecurity`] says (plain TCP by
//! default): TLS, then SASL (SaslHandshake v1 and SaslAuthenticate v2,
//! Kafka's `SaslClientAuthenticator`) once, right after connecting and
//! within the connect timeout. An authentication failure is
//! [`ClientError::Authentication`]; a session the server bounds (KIP-368)
//! is ended before it expires and the next request authenticates anew.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::channel_builder::{ClientSecurity, SaslCredentials, Stream};
use crate::security::scram_client::ScramClient;

/// The SASL request versions a node sends (Kafka 4's clients send the same).
const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 2;

/// The bounds of one client's exchanges.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    pub connect_timeout: Duration,
    /// From writing the request to reading the whole response (Kafka's
    /// `request.timeout.ms` for the channel).
    pub request_timeout: Duration,
    /// The largest response frame accepted; a bigger size prefix closes the
    /// connection instead of allocating it (a peer cannot make us OOM).
    pub max_response_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 100 * 1024 * 1024,
        }
    }
}

/// Why a request got no response; each names the peer and the API key.
#[derive(Debug)]
pub enum ClientError {
    Connect {
        addr: String,
        message: String,
    },
    /// The TLS handshake or SASL authentication failed (Kafka's
    /// `AuthenticationException`); the message says why.
    Authentication {
        addr: String,
        message: String,
    },
    Timeout {
        addr: String,
        api: i16,
        timeout_ms: u64,
    },
    Io {
        addr: String,
        api: i16,
        message: String,
    },
    TooLarge {
        addr: String,
        api: i16,
        size: i64,
        limit: usize,
    },
    Protocol {
        addr: String,
        api: i16,
        message: String,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connect { addr, message } => write!(f, "connecting to {addr}: {message}"),
            ClientError::Authentication { addr, message } => write!(
                f,
                "connection to {addr} failed authentication due to: {message}"
            ),
            ClientError::Timeout {
                addr,
                api,
                timeout_ms,
            } => write!(f, "api {api} to {addr} timed out after {timeout_ms} ms"),
            ClientError::Io { addr, api, message }
            | ClientError::Protocol { addr, api, message } => {
                write!(f, "api {api} to {addr}: {message}")
            }
            ClientError::TooLarge {
                addr,
                api,
                size,
                limit,
            } => write!(
                f,
                "api {api} to {addr}: a response of {size} bytes exceeds the limit of {limit}"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

pub struct NetworkClient {
    addr: String,
    client_id: StrBytes,
    limits: ClientLimits,
    security: Arc<ClientSecurity>,
    stream: Option<Stream>,
    /// When the server's SASL session ends (KIP-368): the connection is
    /// dropped before then and the next request authenticates again.
    session_ends: Option<Instant>,
    /// Set while an exchange runs; still set at the next call means the
    /// last one was abandoned half-way and the stream must be dropped.
    in_flight: bool,
    next_correlation_id: i32,
}

impl NetworkClient {
    /// A client of the node at `addr` ("host:port") over plain TCP;
    /// connects lazily.
    pub fn new(addr: impl Into<String>, client_id: &str, limits: ClientLimits) -> NetworkClient {
        NetworkClient {
            addr: addr.into(),
            client_id: StrBytes::from_string(client_id.to_string()),
            limits,
            security: ClientSecurity::plaintext(),
            stream: None,
            session_ends: None,
            in_flight: false,
            next_correlation_id: 0,
        }
    }

    /// Secures its connections as `security` says (the listener it
    /// reaches: inter-broker or controller).
    pub fn with_security(mut self, security: Arc<ClientSecurity>) -> NetworkClient {
        self.security = security;
        self.stream = None;
        self
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Drops the connection (the next request reconnects).
    pub fn disconnect(&mut self) {
        self.stream = None;
    }

    /// Sends `req` at `version` and decodes its response.
    pub async fn send<R: Request>(
        &mut self,
        req: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let mut body = BytesMut::new();
        req.encode(&mut body, version)
            .map_err(|e| self.protocol(R::KEY, format!("encoding v{version}: {e}")))?;
        let mut resp = self
            .send_raw(
                R::KEY,
                version,
                R::header_version(version),
                <R::Response as HeaderVersion>::header_version(version),
                &body,
            )
            .await?;
        let decoded = R::Response::decode(&mut resp, version)
            .map_err(|e| self.protocol(R::KEY, format!("decoding the v{version} response: {e}")))?;
        Ok(decoded)
    }

    /// Sends one request whose body is already encoded and returns the
    /// response body (after its header). For kastle's private API keys,
    /// whose bodies the protocol crate does not know.
    pub async fn send_raw(
        &mut self,
        api_key: i16,
        version: i16,
        request_header_version: i16,
        response_header_version: i16,
        body: &[u8],
    ) -> Result<Bytes, ClientError> {
        if self.in_flight {
            self.stream = None;
        }
        let (frame, correlation_id) = self.frame(api_key, version, request_header_version, body)?;

        self.in_flight = true;
        let timeout = self.limits.request_timeout;
        let result = tokio::time::timeout(timeout, self.exchange(api_key, &frame)).await;
        self.in_flight = false;
        let mut resp = match result {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                self.stream = None;
                return Err(e);
            }
            Err(_) => {
                self.stream = None;
                return Err(ClientError::Timeout {
                    addr: self.addr.clone(),
                    api: api_key,
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
        };
        let header = ResponseHeader::decode(&mut resp, response_header_version).map_err(|e| {
            self.stream = None;
            self.protocol(api_key, format!("decoding the response header: {e}"))
        })?;
        if header.correlation_id != correlation_id {
            self.stream = None;
            return Err(self.protocol(
                api_key,
                format!(
                    "correlation id {} answered request {correlation_id}",
                    header.correlation_id
                ),
            ));
        }
        Ok(resp)
    }

    async fn exchange(&mut self, api_key: i16, frame: &[u8]) -> Result<Bytes, ClientError> {
        if self.session_ends.is_some_and(|t| Instant::now() >= t) {
            self.stream = None;
        }
        if self.stream.is_none() {
            let timeout = self.limits.connect_timeout;
            let stream = match tokio::time::timeout(timeout, self.connect()).await {
                Ok(Err(e @ ClientError::Authentication { .. })) => {
                    // Kafka's NetworkClient logs these at ERROR: a
                    // misconfigured node must be visible.
                    tracing::error!(listener = %self.security.listener(), "{e}");
                    return Err(e);
                }
                Ok(r) => r?,
                Err(_) => return Err(self.connect_error("timed out".into())),
            };
            self.stream = Some(stream);
        }
        let (addr, limit) = (self.addr.clone(), self.limits.max_response_bytes);
        let Some(stream) = self.stream.as_mut() else {
            return Err(self.connect_error("no connection".into()));
        };
        round_trip(stream, frame, api_key, &addr, limit).await
    }

    /// A new connection, secured and authenticated.
    async fn connect(&mut self) -> Result<Stream, ClientError> {
        self.session_ends = None;
        let tcp = TcpStream::connect(&self.addr)
            .await
            .map_err(|e| self.connect_error(e.to_string()))?;
        // Small control-plane requests must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let mut stream = self
            .security
            .wrap(tcp, &self.addr)
            .await
            .map_err(|message| self.authentication_error(message))?;
        if let Some(credentials) = self.security.sasl().cloned() {
            self.authenticate(&mut stream, &credentials).await?;
        }
        Ok(stream)
    }

    /// The SASL exchange (Kafka's `SaslClientAuthenticator` after
    /// ApiVersions): SaslHandshake naming the mechanism, then the
    /// mechanism's tokens in SaslAuthenticate requests.
    async fn authenticate(
        &mut self,
        stream: &mut Stream,
        credentials: &SaslCredentials,
    ) -> Result<(), ClientError> {
        let mechanism = credentials.mechanism();
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        let resp = self
            .send_on(stream, &handshake, SASL_HANDSHAKE_VERSION)
            .await?;
        if resp.error_code != 0 {
            let enabled: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(self.authentication_error(format!(
                "Client SASL mechanism '{mechanism}' not enabled in the server, enabled mechanisms are {enabled:?}"
            )));
        }
        let lifetime_ms = match credentials {
            SaslCredentials::Plain { user, password } => {
                let token = format!("\0{user}\0{password}").into_bytes();
                self.sasl_token(stream, token).await?.1
            }
            SaslCredentials::Scram {
                mechanism,
                user,
                password,
            } => {
                let nonce = uuid::Uuid::new_v4().simple().to_string();
                let mut scram = ScramClient::new(*mechanism, user, password, nonce);
                let (server_first, _) = self.sasl_token(stream, scram.first_message()).await?;
                let last = scram
                    .final_message(&server_first)
                    .map_err(|m| self.authentication_error(m))?;
                let (server_final, lifetime_ms) = self.sasl_token(stream, last).await?;
                scram
                    .verify_server_final(&server_final)
                    .map_err(|m| self.authentication_error(m))?;
                lifetime_ms
            }
        };
        // KIP-368: end the session a little before the server does.
        if lifetime_ms > 0 {
            let margin = (lifetime_ms / 10).clamp(1, 5_000);
            let ms = u64::try_from(lifetime_ms - margin).unwrap_or(0);
            self.session_ends = Some(Instant::now() + Duration::from_millis(ms));
        }
        tracing::debug!(addr = %self.addr, mechanism, listener = %self.security.listener(), "authenticated");
        Ok(())
    }

    /// One SaslAuthenticate round: the server's token and the session
    /// lifetime it granted.
    async fn sasl_token(
        &mut self,
        stream: &mut Stream,
        token: Vec<u8>,
    ) -> Result<(Bytes, i64), ClientError> {
        let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let resp = self
            .send_on(stream, &req, SASL_AUTHENTICATE_VERSION)
            .await?;
        if resp.error_code != 0 {
            let message = resp
                .error_message
                .map(|m| m.to_string())
                .unwrap_or_else(|| format!("error code {}", resp.error_code));
            return Err(self.authentication_error(message));
        }
        Ok((resp.auth_bytes, resp.session_lifetime_ms))
    }

    /// One request on a stream being set up (not yet `self.stream`).
    async fn send_on<R: Request>(
        &mut self,
        stream: &mut Stream,
        req: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let mut body = BytesMut::new();
        req.encode(&mut body, version)
            .map_err(|e| self.protocol(R::KEY, format!("encoding v{version}: {e}")))?;
        let (frame, correlation_id) =
            self.frame(R::KEY, version, R::header_version(version), &body)?;
        let limit = self.limits.max_response_bytes;
        let mut resp = round_trip(stream, &frame, R::KEY, &self.addr, limit).await?;
        let header = ResponseHeader::decode(
            &mut resp,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .map_err(|e| self.protocol(R::KEY, format!("decoding the response header: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol(
                R::KEY,
                format!(
                    "correlation id {} answered request {correlation_id}",
                    header.correlation_id
                ),
            ));
        }
        R::Response::decode(&mut resp, version)
            .map_err(|e| self.protocol(R::KEY, format!("decoding the v{version} response: {e}")))
    }

    /// The size-prefixed request frame and its correlation id.
    fn frame(
        &mut self,
        api_key: i16,
        version: i16,
        request_header_version: i16,
        body: &[u8],
    ) -> Result<(BytesMut, i32), ClientError> {
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let correlation_id = self.next_correlation_id;
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = BytesMut::with_capacity(64 + body.len());
        frame.put_i32(0);
        header
            .encode(&mut frame, request_header_version)
            .map_err(|e| self.protocol(api_key, format!("encoding the header: {e}")))?;
        frame.put_slice(body);
        let size = i32::try_from(frame.len() - 4)
            .map_err(|_| self.protocol(api_key, format!("a request of {} bytes", frame.len())))?;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        Ok((frame, correlation_id))
    }

    fn authentication_error(&self, message: String) -> ClientError {
        ClientError::Authentication {
            addr: self.addr.clone(),
            message,
        }
    }

    fn connect_error(&self, message: String) -> ClientError {
        ClientError::Connect {
            addr: self.addr.clone(),
            message,
        }
    }

    fn protocol(&self, api: i16, message: String) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            api,
            message,
        }
    }
}

/// Writes one frame and reads its response frame (at most `limit` bytes).
async fn round_trip(
    stream: &mut Stream,
    frame: &[u8],
    api_key: i16,
    addr: &str,
    limit: usize,
) -> Result<Bytes, ClientError> {
    let io = |e: std::io::Error| ClientError::Io {
        addr: addr.to_string(),
        api: api_key,
        message: e.to_string(),
    };
    stream.write_all(frame).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let size = stream.read_i32().await.map_err(io)?;
    if size < 0 || size as usize > limit {
        return Err(ClientError::TooLarge {
            addr: addr.to_string(),
            api: api_key,
            size: size as i64,
            limit,
        });
    }
    let mut buf = BytesMut::zeroed(size as usize);
    stream.read_exact(&mut buf).await.map_err(io)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests;
