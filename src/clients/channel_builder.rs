//! `ChannelBuilders` (Kafka's name): the client side of a node's
//! connections to other nodes, secured as the listener they reach.
//! Inter-broker connections (the replica fetcher, transaction markers,
//! KIP-890 verification) use the security protocol of
//! `inter.broker.listener.name` and `sasl.mechanism.inter.broker.protocol`;
//! connections to controllers (registration, heartbeats, metadata fetches,
//! forwarding, Raft between voters) use the protocol of the first of
//! `controller.listener.names` and `sasl.mechanism.controller.protocol`.
//!
//! As Kafka, a key is read with the listener's prefix first
//! (`listener.name.<listener>.<key>`, then `<key>`). TLS trusts the PEM
//! truststore, checks the host name unless
//! `ssl.endpoint.identification.algorithm` is empty, and presents the
//! keystore when one is set (`security::tls::build_client`). SASL speaks
//! PLAIN and SCRAM-SHA-256/512 with the `username`/`password` options of
//! the mechanism's JAAS login module:
//! `listener.name.<listener>.<mechanism>.sasl.jaas.config`, then
//! `sasl.jaas.config`, then the JAAS file's `<listener>.KafkaServer` or
//! `KafkaServer` section (the file `KAFKA_OPTS` names). OAUTHBEARER and
//! GSSAPI are refused at start with an error naming the key. The SASL
//! exchange itself runs in `NetworkClient` right after connecting.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::security::jaas::{self, JaasEntry, PLAIN_LOGIN_MODULE, SCRAM_LOGIN_MODULE};
use crate::security::scram::ScramMechanism;
use crate::security::{tls, SecurityProtocol};

/// The credentials a node authenticates to another node's SASL listener
/// with.
#[derive(Clone)]
pub enum SaslCredentials {
    Plain {
        user: String,
        password: String,
    },
    Scram {
        mechanism: ScramMechanism,
        user: String,
        password: String,
    },
}

impl SaslCredentials {
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslCredentials::Plain { .. } => "PLAIN",
            SaslCredentials::Scram { mechanism, .. } => mechanism.name(),
        }
    }
}

impl std::fmt::Debug for SaslCredentials {
    /// Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaslCredentials::Plain { user, .. } | SaslCredentials::Scram { user, .. } => {
                write!(f, "{} as {user}", self.mechanism())
            }
        }
    }
}

/// How connections for one purpose are secured: the listener they reach,
/// its protocol, the TLS client and the SASL credentials it needs.
pub struct ClientSecurity {
    listener: String,
    protocol: SecurityProtocol,
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<SaslCredentials>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("listener", &self.listener)
            .field("protocol", &self.protocol)
            .field("sasl", &self.sasl)
            .finish()
    }
}

/// Both purposes' security, resolved once when a cluster node starts.
#[derive(Debug, Clone)]
pub struct ChannelBuilders {
    pub inter_broker: Arc<ClientSecurity>,
    pub controller: Arc<ClientSecurity>,
}

/// What one purpose's security is read from: the listener it reaches, its
/// protocol, the key naming the SASL mechanism, and the node's
/// configuration (`value` gives a key's value, `None` when unset).
pub struct SecuritySource<'a> {
    pub listener: &'a str,
    pub protocol: SecurityProtocol,
    pub mechanism_key: &'static str,
    pub value: &'a dyn Fn(&str) -> Option<String>,
}

impl ClientSecurity {
    pub fn plaintext() -> Arc<ClientSecurity> {
        Arc::new(ClientSecurity {
            listener: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        })
    }

    /// The security `source` describes; an error names the key at fault.
    pub fn build(source: &SecuritySource<'_>) -> Result<Arc<ClientSecurity>, String> {
        build(source)
    }

    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol
    }

    pub fn listener(&self) -> &str {
        &self.listener
    }

    pub fn sasl(&self) -> Option<&SaslCredentials> {
        self.sasl.as_ref()
    }

    /// The transport over a fresh connection to `addr` ("host:port"): the
    /// TCP stream itself, or TLS after its handshake (the host part is the
    /// name checked against the certificate).
    pub async fn wrap(&self, tcp: TcpStream, addr: &str) -> Result<Stream, String> {
        let Some(config) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let host = host_of(addr);
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
        let tls = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("SSL handshake failed: {e}"))?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// The host of "host:port" (an IPv6 address without its brackets).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn build(source: &SecuritySource<'_>) -> Result<Arc<ClientSecurity>, String> {
    let (listener, protocol, value) = (source.listener, source.protocol, source.value);
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let get = |key: &str| value(&format!("{prefix}{key}")).or_else(|| value(key));
    let tls = if protocol.uses_tls() {
        Some(tls::build_client(listener, &get)?)
    } else {
        None
    };
    let sasl = if protocol.uses_sasl() {
        let mechanism = value(source.mechanism_key)
            .unwrap_or_else(|| "GSSAPI".into())
            .trim()
            .to_string();
        Some(credentials(
            value,
            listener,
            source.mechanism_key,
            &mechanism,
        )?)
    } else {
        None
    };
    Ok(Arc::new(ClientSecurity {
        listener: listener.to_string(),
        protocol,
        tls,
        sasl,
    }))
}

/// The credentials of `mechanism` for connections to `listener`.
fn credentials(
    value: &dyn Fn(&str) -> Option<String>,
    listener: &str,
    mechanism_key: &str,
    mechanism: &str,
) -> Result<SaslCredentials, String> {
    let scram = ScramMechanism::from_name(mechanism);
    let module = match (mechanism, scram) {
        ("PLAIN", _) => PLAIN_LOGIN_MODULE,
        (_, Some(_)) => SCRAM_LOGIN_MODULE,
        ("OAUTHBEARER" | "GSSAPI", _) => {
            return Err(format!(
                "{mechanism_key}={mechanism}: kastle's nodes authenticate to each other with \
                 PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 only ({mechanism} is not supported \
                 between nodes; listener {listener} uses SASL)"
            ))
        }
        _ => {
            return Err(format!(
                "{mechanism_key}={mechanism}: not a SASL mechanism kastle knows (PLAIN, \
                 SCRAM-SHA-256, SCRAM-SHA-512)"
            ))
        }
    };
    let (source, entries) = jaas_entries(value, listener, mechanism)?;
    let entry = entries
        .iter()
        .find(|e| e.login_module == module)
        .ok_or_else(|| format!("{source}: no {module} entry for {mechanism_key}={mechanism}"))?;
    let option = |name: &str| {
        entry.options.get(name).cloned().ok_or_else(|| {
            format!(
                "{source}: the {module} entry has no {name} option (the credentials this \
                 node authenticates to listener {listener} with)"
            )
        })
    };
    let (user, password) = (option("username")?, option("password")?);
    Ok(match scram {
        Some(mechanism) => SaslCredentials::Scram {
            mechanism,
            user,
            password,
        },
        None => SaslCredentials::Plain { user, password },
    })
}

/// The JAAS entries for `mechanism` on `listener`, and where they came
/// from.
fn jaas_entries(
    value: &dyn Fn(&str) -> Option<String>,
    listener: &str,
    mechanism: &str,
) -> Result<(String, Vec<JaasEntry>), String> {
    let prefixed = format!(
        "listener.name.{}.{}.sasl.jaas.config",
        listener.to_ascii_lowercase(),
        mechanism.to_ascii_lowercase()
    );
    for key in [prefixed.as_str(), "sasl.jaas.config"] {
        if let Some(v) = value(key).filter(|v| !v.trim().is_empty()) {
            let entries = jaas::parse_jaas_config(&v).map_err(|e| format!("{key}: {e}"))?;
            return Ok((key.to_string(), entries));
        }
    }
    let file = std::env::var("KAFKA_OPTS")
        .ok()
        .and_then(|o| jaas::jaas_file_from_jvm_opts(&o));
    if let Some(path) = file {
        let sections = jaas::read_jaas_file(std::path::Path::new(&path))?;
        let scoped = format!("{}.KafkaServer", listener.to_ascii_lowercase());
        for name in [scoped.as_str(), "KafkaServer"] {
            if let Some(entries) = sections.get(name) {
                return Ok((format!("{path} ({name})"), entries.clone()));
            }
        }
    }
    Err(format!(
        "{prefixed}: listener {listener} uses SASL/{mechanism} and this node has no credentials \
         for it (set {prefixed} or sasl.jaas.config with a login module's username and password)"
    ))
}

/// A connection's transport: plain TCP or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("node-1:9093"), "node-1");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }
}
