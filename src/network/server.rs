//! Listeners and the accept loop. Serving stops when the broker-wide
//! shutdown signal fires; `serve` resolves once every connection has sent
//! what it owed (or given up).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::BrokerConfig;
use crate::handlers::KafkaApis;
use crate::network::connection::{self, Shared};
use crate::network::connection_quotas::{ConnectionQuotas, Refused};
use crate::network::memory_pool::MemoryPool;
use crate::network::tls::TlsListener;
use crate::util::shutdown::ShutdownSignal;

/// A bound client listener, its name (Metadata answers with the
/// advertised address of the listener a client came through) and, on an
/// SSL or SASL_SSL listener, its TLS acceptor.
pub type BoundListener = (Arc<str>, TcpListener, Option<Arc<TlsListener>>);

/// Binds every configured (non-controller) listener.
pub async fn bind(config: &Arc<BrokerConfig>) -> anyhow::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for l in &config.listeners {
        if config.advertised_for(&l.name).is_none() {
            // A controller listener: no client traffic on it here.
            continue;
        }
        // A TLS listener's keystore is read before anything is bound: a
        // bad one stops the start, naming the key and the file.
        let protocol = config.security_protocol_of(&l.name);
        let tls = if protocol.uses_tls() {
            let listener = TlsListener::new(&l.name, config.clone()).map_err(anyhow::Error::msg)?;
            Some(Arc::new(listener))
        } else {
            None
        };
        let addr = l.bind_addr().map_err(|e| anyhow::anyhow!(e.0))?;
        let sock = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding listener {} on {addr}", l.name))?;
        tracing::info!(listener = %l.name, addr = %sock.local_addr()?, %protocol, "listening");
        out.push((Arc::from(l.name.as_str()), sock, tls));
    }
    anyhow::ensure!(!out.is_empty(), "no client listener configured");
    Ok(out)
}

/// Serves every listener until `shutdown` fires, then waits (at most
/// `drain`) for the connections to finish what they owe.
pub async fn serve(
    apis: Arc<KafkaApis>,
    listeners: Vec<BoundListener>,
    quotas: Arc<ConnectionQuotas>,
    shutdown: ShutdownSignal,
    drain: Duration,
) {
    let mut accept_tasks = JoinSet::new();
    // One pool for every listener, as Kafka's SocketServer has.
    let shared = Shared {
        pool: MemoryPool::new(apis.config.int("queued.max.request.bytes")),
        shutdown: shutdown.clone(),
    };
    for (name, listener, tls) in listeners {
        accept_tasks.spawn(accept_loop(
            name,
            listener,
            tls,
            apis.clone(),
            quotas.clone(),
            shared.clone(),
        ));
    }
    shutdown.wait().await;
    // Accept loops return once every connection they spawned has finished.
    let drained = tokio::time::timeout(drain, async {
        while accept_tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after {drain:?}; closing logs anyway");
    }
}

async fn accept_loop(
    name: Arc<str>,
    listener: TcpListener,
    tls: Option<Arc<TlsListener>>,
    apis: Arc<KafkaApis>,
    quotas: Arc<ConnectionQuotas>,
    shared: Shared,
) {
    let shutdown = shared.shutdown.clone();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Over the broker's or the listener's connection
                    // creation rate the acceptor waits (KIP-612).
                    let throttle = quotas.record_connection(&name);
                    if !throttle.is_zero() {
                        tokio::select! {
                            _ = shutdown.wait() => break,
                            _ = tokio::time::sleep(throttle) => {}
                        }
                    }
                    // At the broker or listener limit this waits, and the
                    // acceptor with it, as Kafka's does; then the address's
                    // creation rate, then its count.
                    let ip_rate = apis.quotas.managers.connection_rate_for_ip(peer.ip());
                    let slot = tokio::select! {
                        _ = shutdown.wait() => break,
                        slot = quotas.acquire(&name, peer.ip(), ip_rate) => slot,
                    };
                    match slot {
                        Ok(slot) => {
                            conns.spawn(connection::serve(stream, peer, name.clone(), apis.clone(), slot, shared.clone(), tls.clone()));
                        }
                        Err(Refused::Throttled(delay)) => {
                            // Kafka's ConnectionThrottledException: held
                            // unread for the throttle time, then closed.
                            tracing::debug!(listener = %name, %peer, ?delay, "connection_creation_rate exceeded; closing the connection after the throttle time");
                            let shutdown = shutdown.clone();
                            conns.spawn(async move {
                                tokio::select! {
                                    _ = shutdown.wait() => {}
                                    _ = tokio::time::sleep(delay) => {}
                                }
                                drop(stream);
                            });
                        }
                        Err(Refused::TooMany(e)) => tracing::info!(listener = %name, %peer, "{e}; closing the connection"),
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off rather than spin.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set stays small.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}
