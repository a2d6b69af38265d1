//! Listeners and the accept loop; graceful shutdown on SIGINT/SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::network::connection;

/// Binds every configured (non-controller) listener.
pub async fn bind(broker: &Broker) -> anyhow::Result<Vec<(Arc<str>, TcpListener)>> {
    let mut out = Vec::new();
    for l in &broker.config.listeners {
        if broker.config.advertised_for(&l.name).is_none() {
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

/// Serves until `stop` resolves, then closes connections and logs cleanly.
pub async fn run(
    broker: Arc<Broker>,
    listeners: Vec<(Arc<str>, TcpListener)>,
    stop: impl std::future::Future<Output = ()>,
) {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut accept_tasks = JoinSet::new();
    for (name, listener) in listeners {
        let broker = broker.clone();
        let shutdown = shutdown_rx.clone();
        accept_tasks.spawn(accept_loop(name, listener, broker, shutdown));
    }
    stop.await;
    tracing::info!("shutting down");
    broker.begin_shutdown();
    let _ = shutdown_tx.send(true);
    // Accept loops return once every connection they spawned has finished.
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while accept_tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still open after 10 s; closing logs anyway");
    }
    let b = broker.clone();
    let _ = tokio::task::spawn_blocking(move || b.shutdown()).await;
}

async fn accept_loop(
    name: Arc<str>,
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(connection::serve(stream, peer, name.clone(), broker.clone(), shutdown.clone()));
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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install SIGTERM handler");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
