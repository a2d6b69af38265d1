//! `NetworkClient`: one connection to one node, sending Kafka-framed
//! requests and reading their responses (the size prefix, the request and
//! response headers of the message's version, the body). One request is in
//! flight at a time: its owner (a fetcher, the lifecycle manager, a Raft
//! peer) drives it from a single task, so it needs no lock.
//!
//! Failures drop the connection; the next request reconnects. A request
//! abandoned mid-exchange (its future dropped on a timeout or shutdown)
//! leaves the stream at an unknown position, so it is dropped too.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    stream: Option<TcpStream>,
    /// Set while an exchange runs; still set at the next call means the
    /// last one was abandoned half-way and the stream must be dropped.
    in_flight: bool,
    next_correlation_id: i32,
}

impl NetworkClient {
    /// A client of the node at `addr` ("host:port"); connects lazily.
    pub fn new(addr: impl Into<String>, client_id: &str, limits: ClientLimits) -> NetworkClient {
        NetworkClient {
            addr: addr.into(),
            client_id: StrBytes::from_string(client_id.to_string()),
            limits,
            stream: None,
            in_flight: false,
            next_correlation_id: 0,
        }
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
        if self.stream.is_none() {
            let connect = TcpStream::connect(&self.addr);
            let stream = match tokio::time::timeout(self.limits.connect_timeout, connect).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(self.connect_error(e.to_string())),
                Err(_) => return Err(self.connect_error("timed out".into())),
            };
            // Small control-plane requests must not wait for Nagle.
            let _ = stream.set_nodelay(true);
            self.stream = Some(stream);
        }
        let (addr, limit) = (self.addr.clone(), self.limits.max_response_bytes);
        let io = |e: std::io::Error| ClientError::Io {
            addr: addr.clone(),
            api: api_key,
            message: e.to_string(),
        };
        let Some(stream) = self.stream.as_mut() else {
            return Err(self.connect_error("no connection".into()));
        };
        stream.write_all(frame).await.map_err(io)?;
        let size = stream.read_i32().await.map_err(io)?;
        if size < 0 || size as usize > limit {
            return Err(ClientError::TooLarge {
                addr: addr.clone(),
                api: api_key,
                size: size as i64,
                limit,
            });
        }
        let mut buf = BytesMut::zeroed(size as usize);
        stream.read_exact(&mut buf).await.map_err(io)?;
        Ok(buf.freeze())
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

#[cfg(test)]
mod tests;
