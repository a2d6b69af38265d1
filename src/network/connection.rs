//! One client connection: frames in, responses out, in request order.
//!
//! The reader runs each request's synchronous part (validation, appends,
//! metadata changes) strictly in arrival order, so pipelined produce requests
//! append in the order they were sent, while the writer waits on what the
//! oldest request waits for (an fsync, a long-poll fetch) and sends responses
//! in request order. At most [`MAX_IN_FLIGHT`] responses may be owed per
//! connection; past that the reader stops reading and TCP pushes back on the
//! client.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::broker::Broker;
use crate::handlers::{self, Pending, Reply, RequestContext};
use crate::network::frame::{read_frame, FrameError};

/// Responses a connection may owe at once. librdkafka and the Java client
/// pipeline up to 5 produce requests by default; 100 leaves room for
/// metadata and fetches beside them.
pub const MAX_IN_FLIGHT: usize = 100;
/// How long a shutting-down connection may take to send what it owes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_responses(wr, rx, peer));
    let max_frame = broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms.max(1) as u64);
    tracing::debug!(%peer, listener = %listener, "connection opened");
    let _counted = broker.metrics.connection_opened();
    let reason: String = loop {
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => break "broker shutting down".into(),
            _ = tx.closed() => break "writer closed the connection".into(),
            r = tokio::time::timeout(idle, read_frame(&mut rd, max_frame)) => match r {
                Err(_) => break "idle for connections.max.idle.ms".into(),
                Ok(Ok(frame)) => frame,
                Ok(Err(FrameError::Closed)) => break "closed by peer".into(),
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break e.to_string();
                }
            },
        };
        let ctx = RequestContext {
            broker: broker.clone(),
            listener: listener.clone(),
            peer,
        };
        let timer = broker.metrics.request_timer(&frame);
        let pending = timer.wrap(handlers::dispatch(ctx, frame.freeze()).await);
        if tx.send(pending).await.is_err() {
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
}

async fn write_responses(
    wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Pending>,
    peer: SocketAddr,
) {
    let mut wr = BufWriter::with_capacity(64 * 1024, wr);
    // Responses owed, oldest first. Only the head is polled: responses go
    // out in request order anyway, and polling one at a time (as Kafka
    // serves one request per connection at a time) keeps at most one
    // response's data in memory per connection.
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut reader_done = false;
    loop {
        let mut head = match queue.pop_front() {
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
                        msg = rx.recv(), if !reader_done && queue.len() < MAX_IN_FLIGHT => match msg {
                            Some(p) => queue.push_back(p),
                            None => reader_done = true,
                        },
                    }
                }
            }
        };
        let written = match reply {
            Reply::Frame(bytes) => wr.write_all(&bytes).await,
            Reply::Chunks(chunks) => {
                let mut r = Ok(());
                for c in chunks {
                    r = wr.write_all(&c).await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
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
