//! The Prometheus endpoint: a small HTTP/1.1 server on tokio answering
//! `GET /metrics` (and `HEAD`) with the OpenMetrics text of [`super::collect`].
//!
//! It is off unless `metrics.prometheus.listener=HOST:PORT` is set. Every
//! input is bounded: a request head may be at most [`MAX_HEAD_BYTES`] and must
//! arrive within [`READ_TIMEOUT`] (which is also the keep-alive idle time), a
//! response must be taken within [`WRITE_TIMEOUT`],
//! at most [`MAX_CONNECTIONS`] connections are served at once (more wait in
//! the listen backlog), and anything malformed gets a 4xx and a closed
//! connection, never a panic.

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::security::EndpointSecurity;
use super::{Sources, LISTENER_KEY};
use crate::broker::ReplicaManager;

/// Largest request head (request line plus headers) accepted.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Time allowed for a whole request head, and for an idle keep-alive.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for writing one response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a response that closes the connection, input still discarded
/// (time and bytes) so that the close does not reset the connection.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// What the server needs from a request head.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// The path without its query string.
    pub path: String,
    /// The query string after `?` (empty without one), still percent-encoded.
    pub query: String,
    pub keep_alive: bool,
    /// The request announces a body (Content-Length > 0 or chunked); the
    /// connection is closed after answering rather than read past it.
    pub has_body: bool,
    /// Bytes the head took, terminator included.
    pub len: usize,
    /// The `Authorization` header's value.
    pub authorization: Option<String>,
}

/// Why a head was refused; each maps to a status code.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    Malformed(&'static str),
    Version,
}

impl HeadError {
    pub fn status(&self) -> &'static str {
        match self {
            HeadError::TooLarge => "431 Request Header Fields Too Large",
            HeadError::Malformed(_) => "400 Bad Request",
            HeadError::Version => "505 HTTP Version Not Supported",
        }
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)`: incomplete,
/// read more (unless `buf` has reached [`MAX_HEAD_BYTES`]).
pub fn parse_head(buf: &[u8]) -> Result<Option<RequestHead>, HeadError> {
    let end = match find_head_end(buf) {
        Some(e) => e,
        None if buf.len() >= MAX_HEAD_BYTES => return Err(HeadError::TooLarge),
        None => return Ok(None),
    };
    if end > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| HeadError::Malformed("not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(HeadError::Malformed("bad request line")),
    };
    if !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HeadError::Malformed("bad method"));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => return Err(HeadError::Version),
        _ => return Err(HeadError::Malformed("bad version")),
    };
    let mut keep_alive = http11;
    let mut has_body = false;
    let mut authorization = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HeadError::Malformed("header without a colon"))?;
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(HeadError::Malformed("bad header name"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| HeadError::Malformed("bad content-length"))?;
            has_body |= n > 0;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_body = true;
        } else if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_string());
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    Ok(Some(RequestHead {
        method,
        path,
        query,
        keep_alive: keep_alive && !has_body,
        has_body,
        len: end,
        authorization,
    }))
}

/// Offset just past the blank line ending the head (CRLF or bare LF).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let scan = &buf[..buf.len().min(MAX_HEAD_BYTES + 4)];
    for i in 0..scan.len() {
        if scan[i] != b'\n' {
            continue;
        }
        if scan.get(i + 1) == Some(&b'\n') {
            return Some(i + 2);
        }
        if scan.get(i + 1) == Some(&b'\r') && scan.get(i + 2) == Some(&b'\n') {
            return Some(i + 3);
        }
    }
    None
}

/// Binds the endpoint if `metrics.prometheus.listener` is set and serves it
/// until the broker begins shutting down. Returns the bound address.
pub async fn start(broker: &Arc<Sources>) -> anyhow::Result<Option<SocketAddr>> {
    let Some(spec) = super::listener_spec(&broker.replicas.config) else {
        return Ok(None);
    };
    let addr = resolve(spec)?;
    let security =
        EndpointSecurity::from_config(&broker.replicas.config).map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {LISTENER_KEY}={spec} ({addr})"))?;
    let local = listener.local_addr()?;
    let scheme = if security.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(addr = %local, scheme, "serving Prometheus metrics on /metrics");
    tokio::spawn(serve(listener, broker.clone(), security));
    Ok(Some(local))
}

/// `HOST:PORT`, `:PORT` (every interface) or `[v6]:PORT`.
pub(crate) fn resolve(spec: &str) -> anyhow::Result<SocketAddr> {
    resolve_for(LISTENER_KEY, spec)
}

/// [`resolve`] naming `key` in its error (the console's listener too).
pub(crate) fn resolve_for(key: &str, spec: &str) -> anyhow::Result<SocketAddr> {
    let spec = spec.strip_prefix("http://").unwrap_or(spec);
    let joined = match spec.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => spec.to_string(),
    };
    joined
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| format!("{key}={spec:?}: expected HOST:PORT"))
}

async fn serve(listener: TcpListener, broker: Arc<Sources>, security: EndpointSecurity) {
    let security = Arc::new(security);
    accept_bounded(
        listener,
        MAX_CONNECTIONS,
        "metrics",
        &broker.replicas,
        |stream, _peer| {
            let broker = broker.clone();
            let security = security.clone();
            async move {
                match security.tls.clone() {
                    None => handle_connection(stream, &broker, &security).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(READ_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => handle_connection(tls, &broker, &security).await,
                            Ok(Err(e)) => Err(e),
                            Err(_) => Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "TLS handshake took too long",
                            )),
                        }
                    }
                }
            }
        },
    )
    .await
}

/// Serves `listener` until the broker begins shutting down: at most `max`
/// connections at once (more wait in the listen backlog), each given to
/// `serve_one` on a task of its own. `endpoint` names it in the logs. The
/// metrics endpoint and the console share it.
pub(crate) async fn accept_bounded<F, Fut>(
    listener: TcpListener,
    max: usize,
    endpoint: &'static str,
    replicas: &ReplicaManager,
    serve_one: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max));
    loop {
        let permit = tokio::select! {
            _ = replicas.stopping() => return,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = replicas.stopping() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let served = serve_one(stream, peer);
                tokio::spawn(async move {
                    if let Err(e) = served.await {
                        tracing::debug!(%peer, endpoint, error = %e, "HTTP connection ended");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(endpoint, error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The next request head on a keep-alive connection, within
/// [`READ_TIMEOUT`]. A malformed head is answered here (its 4xx, then the
/// connection closes). `None`: the connection is done.
pub(crate) async fn next_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<RequestHead>> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(stream, buf)).await {
        Err(_) | Ok(Ok(None)) => return Ok(None),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Some(Err(e)))) => {
            tracing::debug!(error = ?e, "refusing an HTTP request");
            let body = format!("{}\n", e.status());
            let head = response(e.status(), "text/plain", body.len(), false);
            send(stream, &head, body.as_bytes(), true).await?;
            return Ok(None);
        }
        Ok(Ok(Some(Ok(h)))) => h,
    };
    buf.drain(..head.len);
    Ok(Some(head))
}

async fn handle_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    broker: &Arc<Sources>,
    security: &EndpointSecurity,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    while let Some(head) = next_request(&mut stream, &mut buf).await? {
        if !security.authorized(head.authorization.as_deref()) {
            let body = "401 Unauthorized\n";
            let head = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"kastle metrics\", charset=\"UTF-8\"\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            return send(&mut stream, &head, body.as_bytes(), true).await;
        }
        let (status, content_type, body) = match (head.method, head.path.as_str()) {
            (Method::Get | Method::Head, "/metrics") => {
                let b = broker.clone();
                // Reading sizes takes partition locks: keep it off the
                // async workers.
                match tokio::task::spawn_blocking(move || super::collect::render(&b)).await {
                    Ok(Ok(text)) => ("200 OK", CONTENT_TYPE, text),
                    _ => (
                        "500 Internal Server Error",
                        "text/plain",
                        "scrape failed\n".to_string(),
                    ),
                }
            }
            (Method::Other, _) => (
                "405 Method Not Allowed",
                "text/plain",
                "only GET and HEAD\n".to_string(),
            ),
            _ => ("404 Not Found", "text/plain", "try /metrics\n".to_string()),
        };
        let response_head = response(status, content_type, body.len(), head.keep_alive);
        let body = if head.method == Method::Head {
            &[][..]
        } else {
            body.as_bytes()
        };
        send(&mut stream, &response_head, body, !head.keep_alive).await?;
        if !head.keep_alive {
            return Ok(());
        }
    }
    Ok(())
}

/// Writes a response within [`WRITE_TIMEOUT`] (a client that stops reading
/// must not hold a connection slot), then closes if asked.
pub(crate) async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    head: &str,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        if close {
            stream.shutdown().await?;
        }
        Ok(())
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "metrics client did not read the response in time",
            ))
        }
    }
    if close {
        // Closing with unread input would reset the connection and could
        // destroy the response before the client reads it: discard what the
        // client still sends (bounded) until it closes.
        let mut sink = [0u8; 4096];
        let mut left = LINGER_BYTES;
        let _ = tokio::time::timeout(LINGER, async {
            while left > 0 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
    }
    Ok(())
}

/// Reads until `buf` holds a full head. `Ok(None)`: the peer closed cleanly
/// between requests.
pub(crate) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Result<RequestHead, HeadError>>> {
    let mut chunk = [0u8; 2048];
    loop {
        match parse_head(buf) {
            Ok(None) => {}
            Ok(Some(h)) => return Ok(Some(Ok(h))),
            Err(e) => return Ok(Some(Err(e))),
        }
        let room = MAX_HEAD_BYTES
            .saturating_sub(buf.len())
            .clamp(1, chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Err(HeadError::Malformed("truncated head"))));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub(crate) fn response(status: &str, content_type: &str, len: usize, keep_alive: bool) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: {}\r\n\r\n",
        if keep_alive { "keep-alive" } else { "close" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scrape_request() {
        let req = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nrest";
        let h = parse_head(req).unwrap().unwrap();
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.path, "/metrics");
        assert_eq!(h.query, "x=1");
        assert!(h.keep_alive);
        assert!(!h.has_body);
        assert_eq!(h.len, req.len() - 4);
        let h = parse_head(b"HEAD /metrics HTTP/1.0\n\n").unwrap().unwrap();
        assert_eq!(h.method, Method::Head);
        assert!(!h.keep_alive);
        let h = parse_head(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn incomplete_heads_ask_for_more_until_the_bound() {
        assert_eq!(parse_head(b""), Ok(None));
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: a\r\n"),
            Ok(None)
        );
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse_head(&big), Err(HeadError::TooLarge));
        // A terminator past the bound does not make it acceptable.
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&big), Err(HeadError::TooLarge));
    }

    #[test]
    fn garbage_and_other_methods() {
        for bad in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics FTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nContent-Length: lots\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bad), Err(HeadError::Malformed(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(bad),
                parse_head(bad)
            );
        }
        assert_eq!(
            parse_head(b"GET /metrics HTTP/2.0\r\n\r\n"),
            Err(HeadError::Version)
        );
        let h = parse_head(b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(h.method, Method::Other);
        assert!(h.has_body);
        assert!(
            !h.keep_alive,
            "a request with a body is answered, then closed"
        );
        let h = parse_head(b"DELETE /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.has_body);
    }

    #[test]
    fn listener_addresses() {
        assert_eq!(
            resolve("127.0.0.1:9404").unwrap(),
            "127.0.0.1:9404".parse().unwrap()
        );
        assert_eq!(resolve(":9404").unwrap(), "0.0.0.0:9404".parse().unwrap());
        assert_eq!(
            resolve("[::1]:9404").unwrap(),
            "[::1]:9404".parse().unwrap()
        );
        assert!(resolve("nonsense").is_err());
        assert!(resolve("127.0.0.1:99999").is_err());
    }
}
