//! TLS on a client listener (SSL, and the transport of SASL_SSL): the
//! server handshake, bounded in time, the client's principal from its
//! certificate, and file regions written through the encrypted stream.
//! sendfile(2) cannot encrypt, so on TLS a fetch's file region is read
//! into memory a bounded chunk at a time and written like any other bytes;
//! plaintext listeners keep sendfile. The listener's stores are
//! reconfigurable at run time (dynamic `listener.name.<l>.ssl.*` configs).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::broker::dynamic_config::{Reconfigurable, DYNAMIC_SECURITY_CONFIGS};
use crate::config::BrokerConfig;
use crate::network::connection::Transport;
use crate::protocol::response::FileRegion;
use crate::security::tls::TlsServer;
use crate::security::{self, KafkaPrincipal, SecurityProtocol};

/// Longest a TLS handshake may take (less when `connections.max.idle.ms`
/// is shorter): a client that stalls or sends garbage is closed without
/// holding anything but its own connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of a file region read per step when it goes through TLS.
const REGION_CHUNK: usize = 256 * 1024;

/// A TLS listener's acceptor and principal mapping rules. The acceptor is
/// swapped when the listener's keystore or truststore changes (Kafka's
/// `SslChannelBuilder` as a `ListenerReconfigurable`): each accept reads the
/// current one once, so new connections get the new certificate while
/// established ones keep their session.
pub struct TlsListener {
    name: String,
    protocol: SecurityProtocol,
    /// The configuration the listener started with: the source of every
    /// key that is not reconfigurable (`ssl.client.auth`, protocols,
    /// ciphers, mapping rules, `ssl.allow.dn.changes`, ...).
    base: Arc<BrokerConfig>,
    active: RwLock<Arc<Active>>,
}

struct Active {
    server: TlsServer,
    acceptor: TlsAcceptor,
    /// The reconfigurable keys' values it was built from.
    settings: Vec<Option<String>>,
}

impl TlsListener {
    /// Builds listener `name`'s TLS server from `config`; an error names
    /// the key (and file) at fault.
    pub fn new(name: &str, config: Arc<BrokerConfig>) -> Result<TlsListener, String> {
        let protocol = config.security_protocol_of(name);
        TlsListener::with_protocol(name, protocol, config)
    }

    /// As [`TlsListener::new`] for a listener whose protocol is given (a
    /// controller listener, which is not among the client listeners).
    pub fn with_protocol(
        name: &str,
        protocol: SecurityProtocol,
        config: Arc<BrokerConfig>,
    ) -> Result<TlsListener, String> {
        let active = build(name, protocol, &config, &config)?;
        Ok(TlsListener {
            name: name.to_string(),
            protocol,
            base: config,
            active: RwLock::new(Arc::new(active)),
        })
    }

    fn current(&self) -> Arc<Active> {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A replacement built from `config` and checked against the running
    /// server; `Ok(None)` when nothing is to change. Errors are worded as
    /// Kafka's `SslFactory` words them.
    fn rebuild(&self, config: &BrokerConfig, reload: bool) -> Result<Option<Active>, String> {
        let old = self.current();
        let changed = settings(&self.name, config) != old.settings;
        // Kafka: changed keys rebuild; a per-broker change with these keys
        // unchanged reloads files modified in place.
        if changed == reload || (reload && !old.server.files_modified()) {
            return Ok(None);
        }
        let failed = "Validation of dynamic config update of SSLFactory failed";
        let new = build(&self.name, self.protocol, &self.base, config)
            .map_err(|e| format!("{failed}: org.apache.kafka.common.KafkaException: {e}"))?;
        let flag = |key: &str| {
            self.base
                .listener_value(&self.name, key)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        security::tls::ensure_compatible(
            &old.server,
            &new.server,
            flag("ssl.allow.dn.changes"),
            flag("ssl.allow.san.changes"),
        )
        .map_err(|e| format!("{failed}: org.apache.kafka.common.config.ConfigException: {e}"))?;
        Ok(Some(new))
    }

    fn swap(&self, config: &BrokerConfig, reload: bool) {
        match self.rebuild(config, reload) {
            Ok(None) => {}
            Ok(Some(new)) => {
                tracing::info!(listener = %self.name, dn = %new.server.identity.dn, "TLS keystore/truststore reloaded; new connections use it");
                *self.active.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
            }
            // Validated before it was accepted; a file changed since (or a
            // reload of a file changed in place) keeps the running stores.
            Err(e) => {
                tracing::error!(listener = %self.name, error = %e, "TLS stores not reloaded")
            }
        }
    }

    /// Runs the server handshake within `limit` and names the client: the
    /// mapped subject of its certificate, or `User:ANONYMOUS` without one
    /// (Kafka's `DefaultKafkaPrincipalBuilder`). A certificate no mapping
    /// rule applies to fails on an SSL listener, as its authentication does
    /// in Kafka; on SASL_SSL the certificate does not name the client.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        limit: Duration,
    ) -> Result<(TlsStream<TcpStream>, KafkaPrincipal), String> {
        let active = self.current();
        let tls = match tokio::time::timeout(limit, active.acceptor.accept(stream)).await {
            Err(_) => return Err(format!("TLS handshake not finished within {limit:?}")),
            Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
            Ok(Ok(tls)) => tls,
        };
        let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
        // SASL_SSL: SASL names the client and Kafka's principal builder
        // ignores the certificate.
        let principal = match cert {
            Some(cert) if !self.protocol.uses_sasl() => active
                .server
                .principal_mapper
                .principal(cert.as_ref())
                .map_err(|e| format!("client certificate refused: {e}"))?,
            _ => KafkaPrincipal::anonymous(),
        };
        tracing::debug!(%peer, %principal, "TLS handshake done");
        Ok((tls, principal))
    }
}

/// The reconfigurable keys' values for `listener`.
fn settings(listener: &str, config: &BrokerConfig) -> Vec<Option<String>> {
    DYNAMIC_SECURITY_CONFIGS
        .iter()
        .map(|k| config.listener_value(listener, k).map(str::to_string))
        .collect()
}

/// Listener `name`'s TLS server: `config`'s reconfigurable keys over
/// `base` (the starting configuration).
fn build(
    name: &str,
    protocol: SecurityProtocol,
    base: &BrokerConfig,
    config: &BrokerConfig,
) -> Result<Active, String> {
    let get = |key: &str| {
        let from = if DYNAMIC_SECURITY_CONFIGS.contains(&key) {
            config
        } else {
            base
        };
        from.listener_value(name, key).map(str::to_string)
    };
    let server = security::tls::build_server(name, protocol, &get)?;
    Ok(Active {
        acceptor: TlsAcceptor::from(server.config.clone()),
        server,
        settings: settings(name, config),
    })
}

impl Reconfigurable for TlsListener {
    fn validate_reconfiguration(&self, new: &BrokerConfig) -> Result<(), String> {
        self.rebuild(new, false).map(|_| ())
    }

    fn reconfigure(&self, new: &Arc<BrokerConfig>) {
        self.swap(new, false);
    }

    fn reload_files(&self, current: &Arc<BrokerConfig>) {
        self.swap(current, true);
    }
}

impl Transport for tokio::io::WriteHalf<TlsStream<TcpStream>> {
    fn sendfile_socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// Writes a file region through `wr` (the TLS stream), reading it from the
/// page cache `REGION_CHUNK` bytes at a time on the blocking pool. A file
/// that ends early is an error, as with sendfile: the frame's size is
/// already on the wire.
pub async fn write_region<W: AsyncWrite + Unpin>(
    wr: &mut W,
    region: &FileRegion,
) -> io::Result<()> {
    let mut position = region.position;
    let mut left = region.len;
    // One buffer for the whole region, moved to the blocking pool and back
    // for each chunk: zeroed once, not once per chunk.
    let mut buf = vec![0u8; left.min(REGION_CHUNK)];
    while left > 0 {
        let want = left.min(REGION_CHUNK);
        let file = region.file.clone();
        buf = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut got = 0;
            while got < want {
                let n = file.read_at(&mut buf[got..want], position + got as u64)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "segment file ended inside a fetch response",
                    ));
                }
                got += n;
            }
            Ok(buf)
        })
        .await
        .map_err(io::Error::other)??;
        wr.write_all(&buf[..want]).await?;
        position += want as u64;
        left -= want;
    }
    Ok(())
}
