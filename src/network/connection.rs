//! One client connection: frames in, responses out, in request order.
//!
//! The reader runs each request's synchronous part (validation, appends,
//! metadata changes) strictly in arrival order, so pipelined produce requests
//! append in the order they were sent, while the writer waits on what the
//! oldest request waits for (an fsync, a long-poll fetch) and sends responses
//! in request order. At most [`MAX_IN_FLIGHT`] responses may be owed per
//! connection (read but not yet written: each holds a permit from the
//! request's read until its response is on the socket); past that the
//! reader stops reading and TCP pushes back on the client. A request's
//! body is read only once the broker-wide request memory pool
//! (`queued.max.request.bytes`) grants its size, and goes back to it when
//! the request's in-order part is done. The idle timer
//! (`connections.max.idle.ms`) restarts with every byte read.
//!
//! A request that exceeds a client quota mutes the connection (Kafka's
//! `ThrottledChannel`): its response goes out at once, and the reader
//! processes nothing more until the throttle time has passed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter, Interest};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::handlers::{self, ChannelThrottle, KafkaApis, Pending, Reply, RequestContext};
use crate::network::authenticator::{
    authenticate, AuthContext, AuthServer, AuthWriter, Reauth, Session, Socket,
};
use crate::network::connection_quotas::ConnectionSlot;
use crate::network::frame::{read_body, read_size, FrameError};
use crate::network::memory_pool::{Lease, MemoryPool};
use crate::network::tls::{self, TlsListener};
use crate::protocol::response::{Chunk, FileRegion};
use crate::security::KafkaPrincipal;
use crate::util::shutdown::ShutdownSignal;
use kafka_protocol::messages::ApiKey;

/// Responses a connection may owe at once. librdkafka and the Java client
/// pipeline up to 5 produce requests by default; 100 leaves room for
/// metadata and fetches beside them.
pub const MAX_IN_FLIGHT: usize = 100;
/// A response owed, with the in-flight permit it holds until written.
type Owed = (Pending, OwnedSemaphorePermit);

/// How long a shutting-down connection may take to send what it owes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Kafka's `KafkaChannel.MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`: a
/// SaslHandshake sooner after the last re-authentication is served as an
/// ordinary request (ILLEGAL_SASL_STATE).
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// A re-authentication's answers: queued behind the responses the
/// connection owes, each holding an in-flight permit like any response.
struct Queued<'a> {
    tx: &'a mpsc::Sender<Owed>,
    in_flight: &'a Arc<Semaphore>,
    /// The permit of the SaslHandshake that began it.
    first: Option<OwnedSemaphorePermit>,
}

impl AuthWriter for Queued<'_> {
    async fn send(&mut self, bytes: BytesMut) -> Result<(), String> {
        let permit = match self.first.take() {
            Some(p) => p,
            None => self
                .in_flight
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| "connection closing".to_string())?,
        };
        self.tx
            .send((handlers::ready(Reply::Frame(bytes)), permit))
            .await
            .map_err(|_| "writer closed the connection".to_string())
    }
}

/// The write half of a connection's transport.
pub trait Transport: AsyncWrite + Unpin + Send + 'static {
    /// The socket file regions go to with sendfile(2); `None` on TLS, where
    /// they are read and written through the encrypted stream.
    fn sendfile_socket(&self) -> Option<&TcpStream>;
}

impl Transport for tokio::net::tcp::OwnedWriteHalf {
    fn sendfile_socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

/// What a connection shares with the others: the broker-wide request
/// memory pool and the shutdown signal.
#[derive(Clone)]
pub struct Shared {
    pub pool: Arc<MemoryPool>,
    pub shutdown: ShutdownSignal,
}

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    apis: Arc<KafkaApis>,
    slot: ConnectionSlot,
    shared: Shared,
    tls: Option<Arc<TlsListener>>,
) {
    let shutdown = shared.shutdown.clone();
    // Counted against the connection limits until this connection ends.
    let _slot = slot;
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        let (rd, wr) = stream.into_split();
        let principal = KafkaPrincipal::anonymous();
        return serve_stream(rd, wr, principal, peer, listener, apis, shared).await;
    };
    let idle = Duration::from_millis(apis.config.connections_max_idle_ms.max(1) as u64);
    let handshake = tokio::select! {
        _ = shutdown.wait() => return,
        h = tls.handshake(stream, peer, idle.min(tls::HANDSHAKE_TIMEOUT)) => h,
    };
    match handshake {
        Ok((stream, principal)) => {
            let (rd, wr) = tokio::io::split(stream);
            serve_stream(rd, wr, principal, peer, listener, apis, shared).await
        }
        Err(e) => tracing::info!(%peer, listener = %listener, "closing connection: {e}"),
    }
}

/// Serves requests over an established transport (plain TCP, or TLS after
/// its handshake) for a client known as `principal`.
async fn serve_stream<R: AsyncRead + Unpin, W: Transport>(
    rd: R,
    mut wr: W,
    principal: KafkaPrincipal,
    peer: SocketAddr,
    listener: Arc<str>,
    apis: Arc<KafkaApis>,
    shared: Shared,
) {
    let Shared { pool, shutdown } = shared;
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let max_frame = apis.config.socket_request_max_bytes;
    let idle = Duration::from_millis(apis.config.connections_max_idle_ms.max(1) as u64);
    let security_protocol = apis.config.security_protocol_of(&listener);
    tracing::debug!(%peer, listener = %listener, "connection opened");
    let _counted = apis.metrics.connection_opened();
    // SASL listeners authenticate before any other request is served.
    let auth = AuthContext {
        server: AuthServer::Broker(apis.clone()),
        config: apis.config.clone(),
        sasl: apis.sasl.clone(),
        scram: apis.scram.clone(),
        listener: listener.clone(),
        peer,
        security_protocol,
    };
    let mut session: Option<Session> = None;
    let principal = if security_protocol.uses_sasl() {
        let mut socket = Socket(&mut wr);
        let outcome = tokio::select! {
            biased;
            _ = shutdown.wait() => Err("broker shutting down".to_string()),
            r = authenticate(&mut rd, &mut socket, &auth, idle, None) => r,
        };
        match outcome {
            Ok(s) => {
                let p = Arc::new(s.principal.clone());
                session = Some(s);
                p
            }
            Err(reason) => {
                let _ = wr.shutdown().await;
                tracing::debug!(%peer, reason = %reason, "connection closed before authentication");
                return;
            }
        }
    } else {
        // From the TLS client certificate, else User:ANONYMOUS.
        Arc::new(principal)
    };
    let mut last_reauth: Option<Instant> = None;
    // The permits bound what is owed; the channel never holds more.
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (tx, rx) = mpsc::channel::<Owed>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_responses(wr, rx, peer));
    let throttle = Arc::new(ChannelThrottle::default());
    let connection_id = NEXT_CONNECTION_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reason: String = loop {
        // Wait for a free in-flight slot before reading the next request.
        let permit = tokio::select! {
            biased;
            _ = shutdown.wait() => break "broker shutting down".into(),
            _ = tx.closed() => break "writer closed the connection".into(),
            p = in_flight.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break "connection closing".into(),
            },
        };
        let (frame, lease) = tokio::select! {
            biased;
            _ = shutdown.wait() => break "broker shutting down".into(),
            _ = tx.closed() => break "writer closed the connection".into(),
            r = read_request(&mut rd, max_frame, idle, &pool) => match r {
                Ok(frame) => frame,
                Err(FrameError::Closed) => break "closed by peer".into(),
                Err(FrameError::Idle) => break FrameError::Idle.to_string(),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break e.to_string();
                }
            },
        };
        // A throttled client (KIP-219): nothing more is processed until
        // its throttle time has passed.
        if let Some(muted) = throttle.remaining() {
            tokio::select! {
                biased;
                _ = shutdown.wait() => break "broker shutting down".into(),
                _ = tokio::time::sleep(muted) => {}
            }
        }
        // KIP-368: past the session's end only a re-authentication begun
        // in time keeps the connection; Kafka closes it, dropping what it
        // owes.
        let expires = session.as_ref().and_then(|s| s.expires);
        if expires.is_some_and(|e| Instant::now() > e) {
            writer.abort();
            tracing::debug!(%peer, "closing connection: SASL session expired without re-authentication");
            return;
        }
        let is_handshake =
            frame.get(..2) == Some(&(ApiKey::SaslHandshake as i16).to_be_bytes()[..]);
        if is_handshake
            && expires.is_some()
            && last_reauth.is_none_or(|t| t.elapsed() >= MIN_REAUTH_INTERVAL)
        {
            let Some(previous) = session.clone() else {
                break "no session to re-authenticate".into();
            };
            last_reauth = Some(Instant::now());
            let mut out = Queued {
                tx: &tx,
                in_flight: &in_flight,
                first: Some(permit),
            };
            let reauth = Reauth {
                previous,
                handshake: frame.freeze(),
            };
            let outcome = tokio::select! {
                biased;
                _ = shutdown.wait() => Err("broker shutting down".to_string()),
                r = authenticate(&mut rd, &mut out, &auth, idle, Some(reauth)) => r,
            };
            match outcome {
                Ok(s) => {
                    session = Some(s);
                    continue;
                }
                Err(reason) => break format!("re-authentication failed: {reason}"),
            }
        }
        let ctx = RequestContext {
            apis: apis.clone(),
            listener: listener.clone(),
            peer,
            security_protocol,
            principal: principal.clone(),
            throttle: throttle.clone(),
            connection_id,
        };
        let timer = apis.metrics.request_timer(&frame);
        let pending = handlers::dispatch(ctx, frame.freeze()).await;
        // The in-order part is done: the request's memory goes back to
        // the pool, as Kafka's handler releases the buffer after handling.
        drop(lease);
        let pending: Pending = if timer.is_on() {
            Box::pin(timer.time(pending))
        } else {
            pending
        };
        if tx.send((pending, permit)).await.is_err() {
            break "writer closed the connection".into();
        }
    };
    // Let the writer send what is owed, then close.
    drop(tx);
    match tokio::time::timeout(DRAIN_TIMEOUT, writer).await {
        Ok(_) => {}
        Err(_) => tracing::warn!(%peer, "gave up sending pending responses"),
    }
    tracing::debug!(%peer, reason = %reason, "connection closed");
    // Kafka's ShareSessionCache listens for disconnects: the share sessions
    // the connection opened end, and their members' records are released
    // at once rather than when their acquisition locks run out.
    if apis.share.has_sessions() {
        tokio::spawn(handlers::share_state::on_connection_closed(
            apis.clone(),
            connection_id,
        ));
    }
}

/// Connection ids, from 1 (0 is no connection's).
static NEXT_CONNECTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Reads one request: its size, then memory for its body from the
/// broker-wide pool (waiting, the body unread, while the pool is empty),
/// then the body. No byte for `idle` ends the connection.
async fn read_request<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
    idle: Duration,
    pool: &Arc<MemoryPool>,
) -> Result<(BytesMut, Lease), FrameError> {
    let size = read_size(rd, max, Some(idle)).await?;
    let lease = pool.allocate(size).await;
    let body = read_body(rd, size, Some(idle)).await?;
    Ok((body, lease))
}

async fn write_responses<W: Transport>(wr: W, mut rx: mpsc::Receiver<Owed>, peer: SocketAddr) {
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    // Only the pread path (`KASTLE_FETCH_SEND=pread`) fills it, up to
    // `PREAD_CHUNK`, kept for the connection's life.
    let mut copy_buf: Vec<u8> = Vec::new();
    // Responses owed, oldest first. Only the head is polled: responses go
    // out in request order anyway, and polling one at a time (as Kafka
    // serves one request per connection at a time) keeps at most one
    // response's data in memory per connection.
    let mut queue: VecDeque<Owed> = VecDeque::new();
    let mut reader_done = false;
    loop {
        let (mut head, _permit) = match queue.pop_front() {
            Some(p) => p,
            None => {
                if reader_done {
                    break;
                }
                // Nothing owed: send what is buffered before waiting.
                if wr.flush().await.is_err() {
                    return;
                }
                match rx.recv().await {
                    Some(p) => p,
                    None => break,
                }
            }
        };
        let reply = match (&mut head).now_or_never() {
            Some(r) => r,
            None => {
                // About to wait (fsync, long poll): flush first, and keep
                // accepting pipelined requests meanwhile.
                if wr.flush().await.is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        biased;
                        r = &mut head => break r,
                        msg = rx.recv(), if !reader_done => match msg {
                            Some(p) => queue.push_back(p),
                            None => reader_done = true,
                        },
                    }
                }
            }
        };
        let written = match reply {
            Reply::Frame(bytes) => wr.write_all(&bytes).await,
            Reply::Chunks(chunks) => write_chunks(&mut wr, chunks, &mut copy_buf).await,
            Reply::None => Ok(()),
            Reply::Close(reason) => {
                tracing::info!(%peer, reason = %reason, "closing connection");
                let _ = wr.flush().await;
                return;
            }
        };
        if let Err(e) = written {
            tracing::debug!(%peer, error = %e, "write failed");
            return;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Writes a chunked frame: buffers through the BufWriter, file regions
/// straight from the page cache to the socket with sendfile(2) on plain
/// TCP, read and written through the stream on TLS.
async fn write_chunks<W: Transport>(
    wr: &mut BufWriter<W>,
    chunks: Vec<Chunk>,
    copy_buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    for c in chunks {
        match c {
            Chunk::Mem(b) => wr.write_all(&b).await?,
            Chunk::File(region) => {
                if wr.get_ref().sendfile_socket().is_none() {
                    tls::write_region(wr, &region).await?;
                    continue;
                }
                if fetch_send() == FetchSend::Pread {
                    pread_region(wr, &region, copy_buf).await?;
                    continue;
                }
                // What is buffered precedes the region on the wire.
                wr.flush().await?;
                if let Some(sock) = wr.get_ref().sendfile_socket() {
                    sendfile_all(sock, &region).await?;
                }
            }
        }
    }
    Ok(())
}

/// How plaintext fetch responses send their file regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchSend {
    /// sendfile(2): the page cache to the socket, no copy in user space.
    Sendfile,
    /// pread(2) into a per-connection buffer, then write(2): the
    /// alternative kept for the broker-level A/B (`scripts/bench_ab.sh` with
    /// `NEW_ENV=KASTLE_FETCH_SEND=pread`).
    Pread,
}

/// `KASTLE_FETCH_SEND=pread` selects the copy path, read once per process;
/// anything else (or nothing) is sendfile. A benchmark switch, not a
/// broker config: BENCHMARKS.md ("sendfile or pread, at the broker") has
/// the measurement that chose the default.
fn fetch_send() -> FetchSend {
    static MODE: std::sync::OnceLock<FetchSend> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("KASTLE_FETCH_SEND").as_deref() {
        Ok("pread") => FetchSend::Pread,
        _ => FetchSend::Sendfile,
    })
}

/// The copy path's chunk: one pread per step, the buffer reused across
/// regions and responses of one connection.
const PREAD_CHUNK: usize = 256 * 1024;

/// Sends a file region by pread into `buf` and write through the stream.
/// Like sendfile, the read runs on the connection's worker (a page-cache
/// miss blocks it the same way); a file that ends early is an error.
async fn pread_region<W: AsyncWrite + Unpin>(
    wr: &mut W,
    region: &FileRegion,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    if buf.len() < PREAD_CHUNK.min(region.len) {
        buf.resize(PREAD_CHUNK.min(region.len), 0);
    }
    let mut position = region.position;
    let mut left = region.len;
    while left > 0 {
        let want = left.min(PREAD_CHUNK);
        let n = region.file.read_at(&mut buf[..want], position)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "segment file ended inside a fetch response",
            ));
        }
        wr.write_all(&buf[..n]).await?;
        position += n as u64;
        left -= n;
    }
    Ok(())
}

/// Sends a whole file region. A file that ends early (truncated under us)
/// is an error: the frame's size is already on the wire, so the connection
/// must close rather than send a short frame.
async fn sendfile_all(sock: &TcpStream, region: &FileRegion) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file_fd = region.file.as_raw_fd();
    let sock_fd = sock.as_raw_fd();
    let mut offset = i64::try_from(region.position)
        .map_err(|_| std::io::Error::other("file region offset out of range"))?;
    let mut left = region.len;
    while left > 0 {
        sock.writable().await?;
        let sent = sock.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the duration of the call
            // (the region holds the file, `sock` the socket); `offset` is a
            // valid, exclusively borrowed off_t.
            let n = unsafe { libc::sendfile(sock_fd, file_fd, &mut offset, left) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "segment file ended inside a fetch response",
                ))
            }
            Ok(n) => left -= n.min(left),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn region_of(bytes: &[u8], position: u64, len: usize) -> FileRegion {
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(bytes).expect("write");
        FileRegion {
            file: Arc::new(f),
            position,
            len,
        }
    }

    /// The copy path sends a region larger than its step, and one inside
    /// the file, byte for byte, through one reused buffer of at most a step.
    #[tokio::test]
    async fn pread_region_sends_the_region_byte_for_byte() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut buf = Vec::new();
        for (position, len) in [(0, data.len()), (12_345, 300_000), (600_000, 100_000)] {
            let region = region_of(&data, position, len);
            let mut out: Vec<u8> = Vec::new();
            pread_region(&mut out, &region, &mut buf)
                .await
                .expect("sent");
            let start = position as usize;
            assert_eq!(out, data[start..start + len], "region at {position}");
            assert_eq!(buf.len(), PREAD_CHUNK);
        }
    }

    /// A file shorter than the region (truncated under the fetch) is an
    /// error, never a short frame.
    #[tokio::test]
    async fn pread_region_refuses_a_file_that_ends_early() {
        let region = region_of(&[1u8; 1000], 10, 2000);
        let mut out: Vec<u8> = Vec::new();
        let err = pread_region(&mut out, &region, &mut Vec::new())
            .await
            .expect_err("short file");
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(out.len(), 990, "what the file had, then the error");
    }
}
