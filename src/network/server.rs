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
use crate::network::connection;
use crate::network::connection_quotas::ConnectionQuotas;
use crate::util::shutdown::ShutdownSignal;

/// A bound client listener and its name (Metadata answers with the
/// advertised address of the listener a client came through).
pub type BoundListener = (Arc<str>, TcpListener);

/// Binds every configured (non-controller) listener.
pub async fn bind(config: &BrokerConfig) -> anyhow::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for l in &config.listeners {
        if config.advertised_for(&l.name).is_none() {
            // A controller listener: no client traffic on it here.
            continue;
        }
        let addr = l.bind_addr().map_err(|e| anyhow::anyhow!(e.0))?;
        let sock = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding listener {} on {addr}", l.name))?;
        tracing::info!(listener = %l.name, addr = %sock.local_addr()?, "listening");
        out.push((Arc::from(l.name.as_str()), sock));
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
    for (name, listener) in listeners {
        accept_tasks.spawn(accept_loop(
            name,
            listener,
            apis.clone(),
            quotas.clone(),
            shutdown.clone(),
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
    apis: Arc<KafkaApis>,
    quotas: Arc<ConnectionQuotas>,
    shutdown: ShutdownSignal,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // At the broker or listener limit this waits, and the
                    // acceptor with it, as Kafka's does.
                    let slot = tokio::select! {
                        _ = shutdown.wait() => break,
                        slot = quotas.acquire(&name, peer.ip()) => slot,
                    };
                    match slot {
                        Ok(slot) => {
                            conns.spawn(connection::serve(stream, peer, name.clone(), apis.clone(), slot, shutdown.clone()));
                        }
                        Err(e) => tracing::info!(listener = %name, %peer, "{e}; closing the connection"),
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
