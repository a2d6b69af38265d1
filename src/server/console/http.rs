//! The console's HTTP/1.1 server: the request plumbing of the Prometheus
//! endpoint (bounded heads, read and write timeouts, keep-alive, lingering
//! close), its own connection bound ([`MAX_CONNECTIONS`]), and the routes:
//! the UI's three assets (built into the binary) and the JSON endpoints.
//! Only GET and HEAD are served: the console cannot change anything. Each
//! API request runs off the async workers (partition reads, locks); a bad
//! request gets a 4xx with a JSON message, never a panic.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use super::super::prometheus::http::{
    accept_bounded, next_request, resolve_for, send, Method, RequestHead,
};
use super::api::{self, ApiError, Params};
use super::auth::Viewer;
use super::messages;
use super::{Console, LISTENER_KEY};

/// Connections served at once (more wait in the listen backlog).
pub const MAX_CONNECTIONS: usize = 16;
/// Largest JSON answer; a bigger one is refused rather than built further
/// into the connection (the lists grow with the cluster).
pub const MAX_RESPONSE_BYTES: usize = 32 << 20;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Scripts and styles only from the console itself; no framing.
const SECURITY_HEADERS: &str = "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store\r\n";

/// Binds the console if `console.listener` is set, starts the sampler and
/// serves until the broker begins shutting down. Returns the bound address.
pub async fn start(apis: &Arc<crate::handlers::KafkaApis>) -> anyhow::Result<Option<SocketAddr>> {
    let Some(spec) = super::listener_spec(&apis.config) else {
        return Ok(None);
    };
    let addr = resolve_for(LISTENER_KEY, spec)?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {LISTENER_KEY}={spec} ({addr})"))?;
    let local = listener.local_addr()?;
    let console = Arc::new(Console {
        apis: apis.clone(),
        started_ms: crate::util::now_ms(),
        samples: Default::default(),
    });
    tracing::info!(addr = %local, "serving the web console");
    tokio::spawn(super::sample_forever(console.clone()));
    tokio::spawn(serve(listener, console));
    Ok(Some(local))
}

async fn serve(listener: TcpListener, console: Arc<Console>) {
    let replicas = console.apis.replicas.clone();
    accept_bounded(
        listener,
        MAX_CONNECTIONS,
        "console",
        &replicas,
        |stream, peer| {
            let console = console.clone();
            async move { handle_connection(stream, peer.ip(), &console).await }
        },
    )
    .await
}

/// One answer.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    /// A 401 asks for basic credentials.
    challenge: bool,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.into(),
            challenge: false,
        }
    }

    fn error(e: ApiError) -> Reply {
        Reply {
            status: e.status,
            content_type: "application/json",
            body: json!({ "error": e.message }).to_string().into_bytes(),
            challenge: e.status == 401,
        }
    }
}

fn status_line(status: u16) -> &'static str {
    match status {
        200 => "200 OK",
        400 => "400 Bad Request",
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        405 => "405 Method Not Allowed",
        503 => "503 Service Unavailable",
        _ => "500 Internal Server Error",
    }
}

async fn handle_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: IpAddr,
    console: &Arc<Console>,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    while let Some(head) = next_request(&mut stream, &mut buf).await? {
        let keep_alive = head.keep_alive;
        let is_head = head.method == Method::Head;
        let gave_credentials = head.authorization.is_some();
        let c = console.clone();
        let reply = match tokio::task::spawn_blocking(move || route(&c, &head, peer)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "console request failed");
                Reply::error(ApiError {
                    status: 500,
                    message: "internal error".into(),
                })
            }
        };
        if reply.status == 401 && gave_credentials {
            // As Kafka delays a failed SASL authentication's answer
            // (`connection.failed.authentication.delay.ms`): guessing
            // passwords costs time.
            let delay = console
                .apis
                .config
                .int("connection.failed.authentication.delay.ms");
            tokio::time::sleep(Duration::from_millis(u64::try_from(delay).unwrap_or(0))).await;
        }
        let challenge = if reply.challenge {
            "WWW-Authenticate: Basic realm=\"kastle console\", charset=\"UTF-8\"\r\n"
        } else {
            ""
        };
        let response_head = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{SECURITY_HEADERS}{challenge}Connection: {}\r\n\r\n",
            status_line(reply.status),
            reply.content_type,
            reply.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        let body = if is_head { &[][..] } else { &reply.body[..] };
        send(&mut stream, &response_head, body, !keep_alive).await?;
        if !keep_alive {
            return Ok(());
        }
    }
    Ok(())
}

/// Answers one request: authentication first (assets too, so that the
/// browser asks for credentials once), then the path.
fn route(console: &Console, head: &RequestHead, peer: IpAddr) -> Reply {
    if head.method == Method::Other {
        return Reply::error(ApiError {
            status: 405,
            message: "the console is read-only: only GET and HEAD".into(),
        });
    }
    let Some(viewer) = Viewer::authenticate(&console.apis, head.authorization.as_deref(), peer)
    else {
        return Reply::error(ApiError {
            status: 401,
            message: "authentication required: a SASL/PLAIN or SCRAM user of this broker".into(),
        });
    };
    match head.path.as_str() {
        "/" | "/index.html" => return Reply::ok("text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => return Reply::ok("text/javascript; charset=utf-8", APP_JS),
        "/app.css" => return Reply::ok("text/css; charset=utf-8", APP_CSS),
        _ => {}
    }
    match api_answer(console, &viewer, &head.path, &head.query) {
        Ok(v) => {
            let body = v.to_string().into_bytes();
            if body.len() > MAX_RESPONSE_BYTES {
                return Reply::error(ApiError::unavailable(format!(
                    "the answer exceeds the console's bound of {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            Reply::ok("application/json", body)
        }
        Err(e) => Reply::error(e),
    }
}

fn api_answer(
    console: &Console,
    viewer: &Viewer<'_>,
    path: &str,
    query: &str,
) -> Result<serde_json::Value, ApiError> {
    let params = Params::parse(query)?;
    let segments: Vec<&str> = path
        .strip_prefix("/api/")
        .ok_or_else(|| ApiError::not_found(format!("no page {path:?}")))?
        .split('/')
        .collect();
    let no_params = |p: &Params| p.only(&[]);
    match segments.as_slice() {
        ["overview"] => {
            no_params(&params)?;
            Ok(api::overview(console, viewer))
        }
        ["topics"] => {
            no_params(&params)?;
            Ok(api::topics(console, viewer))
        }
        ["topics", name] => {
            no_params(&params)?;
            api::topic(console, viewer, &api::percent_decode(name, false)?)
        }
        ["groups"] => {
            no_params(&params)?;
            Ok(api::groups(console, viewer))
        }
        ["groups", id] => {
            no_params(&params)?;
            api::group(console, viewer, &api::percent_decode(id, false)?)
        }
        ["messages"] => {
            let q = messages::Query::parse(&params)?;
            messages::browse(&console.apis, viewer, &q)
        }
        _ => Err(ApiError::not_found(format!("no endpoint {path:?}"))),
    }
}
