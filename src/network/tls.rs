//! TLS on a client listener (SSL, and the transport of SASL_SSL): the
//! server handshake, bounded in time, the client's principal from its
//! certificate, and file regions written through the encrypted stream.
//! sendfile(2) cannot encrypt, so on TLS a fetch's file region is read
//! into memory a bounded chunk at a time and written like any other bytes;
//! plaintext listeners keep sendfile.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::network::connection::Transport;
use crate::protocol::response::FileRegion;
use crate::security::ssl_principal::SslPrincipalMapper;
use crate::security::tls::TlsServer;
use crate::security::{KafkaPrincipal, SecurityProtocol};

/// Longest a TLS handshake may take (less when `connections.max.idle.ms`
/// is shorter): a client that stalls or sends garbage is closed without
/// holding anything but its own connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of a file region read per step when it goes through TLS.
const REGION_CHUNK: usize = 256 * 1024;

/// A TLS listener's acceptor and principal mapping rules.
pub struct TlsListener {
    acceptor: TlsAcceptor,
    /// The certificate mapping (SSL listeners); `None` on SASL_SSL, where
    /// SASL names the client and Kafka's principal builder ignores the
    /// certificate.
    mapper: Option<Arc<SslPrincipalMapper>>,
}

impl TlsListener {
    pub fn new(server: TlsServer, protocol: SecurityProtocol) -> TlsListener {
        TlsListener {
            acceptor: TlsAcceptor::from(server.config),
            mapper: (!protocol.uses_sasl()).then_some(server.principal_mapper),
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
        let tls = match tokio::time::timeout(limit, self.acceptor.accept(stream)).await {
            Err(_) => return Err(format!("TLS handshake not finished within {limit:?}")),
            Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
            Ok(Ok(tls)) => tls,
        };
        let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
        let principal = match (cert, &self.mapper) {
            (Some(cert), Some(mapper)) => mapper
                .principal(cert.as_ref())
                .map_err(|e| format!("client certificate refused: {e}"))?,
            _ => KafkaPrincipal::anonymous(),
        };
        tracing::debug!(%peer, %principal, "TLS handshake done");
        Ok((tls, principal))
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
