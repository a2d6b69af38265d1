//! TLS listeners: a broker with an SSL listener (certificates made by the
//! test with rcgen) beside its PLAINTEXT one, driven by a rustls client:
//! ApiVersions, Metadata, produce and fetch through TLS (fetched record
//! sets, which plaintext sends with sendfile, arrive byte for byte), client
//! certificates required and mapped to principals, garbage and stalled
//! handshakes closed without disturbing other clients, and start-up
//! refusals of bad keystores.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::support::admin::api_versions_ok;
use crate::support::fetch::{fetch_request, FetchArgs};
use crate::support::produce::{produce_request, single_partition, PRODUCE_VERSION};
use crate::support::topics::create_topic;
use crate::support::*;

/// A test CA, the broker's certificate (for localhost and 127.0.0.1) and
/// client certificates signed by the CA.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

/// A certificate with its key, as PEM.
struct Issued {
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, "kastle test CA");
        let ca = p.self_signed(&ca_key).expect("CA certificate");
        Pki { ca, ca_key }
    }

    /// A certificate with subject `dn` (RDNs as listed, most general
    /// first) and these subject alternative names.
    fn issue(&self, dn: &[(DnType, &str)], sans: &[&str]) -> Issued {
        let key = KeyPair::generate().expect("key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            p.distinguished_name.push(t.clone(), *v);
        }
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).expect("sign");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn server(&self) -> Issued {
        self.issue(
            &[(DnType::CommonName, "localhost")],
            &["localhost", "127.0.0.1"],
        )
    }

    /// `CN=<cn>,OU=test,O=kastle` in RFC 2253 order.
    fn client(&self, cn: &str) -> Issued {
        self.issue(
            &[
                (DnType::OrganizationName, "kastle"),
                (DnType::OrganizationalUnitName, "test"),
                (DnType::CommonName, cn),
            ],
            &[],
        )
    }
}

/// Writes the broker's keystore (key and chain in one PEM file) and the
/// truststore (the CA) into `dir`; returns their paths.
fn write_stores(pki: &Pki, dir: &Path) -> (String, String) {
    let server = pki.server();
    let keystore = dir.join("broker.pem");
    std::fs::write(&keystore, format!("{}{}", server.key_pem, server.cert_pem)).unwrap();
    let truststore = dir.join("ca.pem");
    std::fs::write(&truststore, pki.ca.pem()).unwrap();
    (
        keystore.display().to_string(),
        truststore.display().to_string(),
    )
}

/// A broker with PLAINTEXT on `port` and SSL on `ssl_port`, plus `extra`.
fn start_tls_broker(dir: &Path, pki: &Pki, extra: &[String]) -> (Broker, u16) {
    let (keystore, truststore) = write_stores(pki, dir);
    let port = free_port();
    let ssl_port = free_port();
    let mut args = vec![
        format!("listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{ssl_port}"),
        format!("advertised.listeners=PLAINTEXT://127.0.0.1:{port},SSL://localhost:{ssl_port}"),
        "ssl.keystore.type=PEM".to_string(),
        format!("ssl.keystore.location={keystore}"),
        "ssl.truststore.type=PEM".to_string(),
        format!("ssl.truststore.location={truststore}"),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let broker = Broker::start_on(port, &args);
    // The harness waits for the first listener; the SSL one is bound just
    // after it (its keystore read first), so wait for it too.
    wait_until("the SSL listener", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", ssl_port)).is_ok()
    });
    (broker, ssl_port)
}

/// A blocking Kafka client over rustls.
struct TlsClient {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    next_corr: i32,
}

impl TlsClient {
    fn config(pki: &Pki, client: Option<&Issued>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(pki.ca.der().to_vec()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let cfg = match client {
            None => b.with_no_client_auth(),
            Some(c) => {
                let chain: Vec<CertificateDer<'static>> =
                    vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()];
                let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap();
                b.with_client_auth_cert(chain, key).unwrap()
            }
        };
        Arc::new(cfg)
    }

    /// Connects and completes the handshake (an error if the broker
    /// refuses it).
    fn connect(port: u16, pki: &Pki, client: Option<&Issued>) -> std::io::Result<TlsClient> {
        let sock = TcpStream::connect(("127.0.0.1", port))?;
        sock.set_read_timeout(Some(Duration::from_secs(15)))?;
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Self::config(pki, client), name)
            .map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(TlsClient { tls, next_corr: 1 })
    }

    /// Sends `req` and reads its response; an I/O error when the broker
    /// closes the connection instead.
    fn try_call<R: Request>(&mut self, version: i16, req: &R) -> std::io::Result<R::Response> {
        let corr = self.next_corr;
        self.next_corr += 1;
        self.tls
            .write_all(&frame(R::KEY, version, corr, &encode(req, version)))?;
        self.tls.flush()?;
        let mut len = [0u8; 4];
        self.tls.read_exact(&mut len)?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.tls.read_exact(&mut buf)?;
        let mut b = Bytes::from(buf);
        assert_eq!(b.get_i32(), corr, "correlation id");
        if resp_header_version(R::KEY, version) >= 1 {
            skip_tagged_fields(&mut b);
        }
        let resp = R::Response::decode(&mut b, version).expect("decode response");
        assert_eq!(b.remaining(), 0, "trailing bytes");
        Ok(resp)
    }

    #[track_caller]
    fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        self.try_call(version, req).expect("response over TLS")
    }

    fn api_versions_ok(&mut self) {
        let r = self.call(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("kastle-tls-test"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        );
        assert_eq!(r.error_code, NONE);
        assert!(!r.api_keys.is_empty());
    }
}

/// Whether a handshake or the first request on it fails: the broker
/// refused the client (TLS 1.3 reports a refused client certificate on the
/// client's first read).
fn refused(port: u16, pki: &Pki, client: Option<&Issued>) -> bool {
    match TlsClient::connect(port, pki, client) {
        Err(_) => true,
        Ok(mut c) => c.try_call(3, &ApiVersionsRequest::default()).is_err(),
    }
}

#[test]
fn ssl_listener_serves_metadata_produce_and_fetch_through_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (b, ssl_port) = start_tls_broker(tmp.path(), &pki, &[]);
    let mut c = TlsClient::connect(ssl_port, &pki, None).expect("TLS handshake");
    c.api_versions_ok();
    // Metadata through the SSL listener advertises the SSL address.
    let md = c.call(12, &MetadataRequest::default().with_topics(Some(vec![])));
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(md.brokers[0].host.as_str(), "localhost");
    assert_eq!(md.brokers[0].port, ssl_port as i32);

    create_topic(&mut b.client(), "tls-data", 1, &[]);
    // Record sets of several hundred KiB: fetched as file regions, which
    // go through TLS in chunks.
    let first = simple_batch(300, 2000, now_ms(), 1);
    let second = simple_batch(50, 100, now_ms(), 2);
    let mut offsets = Vec::new();
    for records in [&first, &second] {
        let p = single_partition(c.call(
            PRODUCE_VERSION,
            &produce_request("tls-data", 0, -1, records),
        ));
        assert_eq!(p.error_code, NONE);
        offsets.push(p.base_offset);
    }
    assert_eq!(offsets, vec![0, 300]);
    let r = c.call(12, &fetch_request("tls-data", 0, &FetchArgs::default()));
    let data = &r.responses[0].partitions[0];
    assert_eq!(data.error_code, NONE);
    assert_eq!(data.high_watermark, 350);
    let records = data.records.clone().expect("records");
    let batches = split_batches(&records);
    assert_eq!(batches.len(), 2);
    assert_same_batch(&batches[0], &first, 0, 0, "first batch through TLS");
    assert_same_batch(&batches[1], &second, 300, 0, "second batch through TLS");
    // The same bytes as plaintext (sendfile) delivers.
    let mut plain = b.client();
    let pr = plain.call(12, &fetch_request("tls-data", 0, &FetchArgs::default()));
    assert_eq!(pr.responses[0].partitions[0].records, Some(records));
    // The connection stays usable after large responses.
    c.api_versions_ok();
}

#[test]
fn required_client_certificates_and_principal_mapping() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    // The listener's prefixed key wins over the broker-wide one; only
    // clients named by the rule are authenticated (no DEFAULT rule).
    let (b, ssl_port) = start_tls_broker(
        tmp.path(),
        &pki,
        &[
            "ssl.client.auth=none".into(),
            "listener.name.ssl.ssl.client.auth=required".into(),
            "ssl.principal.mapping.rules=RULE:^CN=(alice),OU=test,O=kastle$/$1/U".into(),
        ],
    );
    assert!(
        refused(ssl_port, &pki, None),
        "a client without a certificate must be refused"
    );
    let alice = pki.client("alice");
    let mut c = TlsClient::connect(ssl_port, &pki, Some(&alice)).expect("mTLS handshake");
    c.api_versions_ok();
    // A certificate of the same CA whose subject no rule maps is not
    // authenticated: the connection closes.
    let bob = pki.client("bob");
    assert!(
        refused(ssl_port, &pki, Some(&bob)),
        "a certificate no mapping rule applies to must be refused"
    );
    // The rules saw the subject in RFC 2253 form, most specific first.
    wait_until("the refusal logged", Duration::from_secs(5), || {
        b.stderr()
            .contains("No rules apply to CN=bob,OU=test,O=kastle")
    });
    // A certificate from another CA fails the handshake.
    let other = Pki::new();
    let stranger = other.client("alice");
    assert!(refused(ssl_port, &pki, Some(&stranger)));
    c.api_versions_ok();
}

#[test]
fn requested_client_certificates_are_optional() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (_b, ssl_port) = start_tls_broker(tmp.path(), &pki, &["ssl.client.auth=requested".into()]);
    TlsClient::connect(ssl_port, &pki, None)
        .expect("no certificate")
        .api_versions_ok();
    TlsClient::connect(ssl_port, &pki, Some(&pki.client("carol")))
        .expect("with a certificate")
        .api_versions_ok();
}

/// Reads until the broker closes the connection; panics if it does not
/// within `limit`.
#[track_caller]
fn assert_closed_within(s: &mut TcpStream, limit: Duration, what: &str) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            // A TLS alert may come before the close.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return start.elapsed()
            }
            Err(e) => panic!("{what}: not closed within {limit:?}: {e}"),
        }
    }
}

#[test]
fn garbage_and_stalled_handshakes_are_closed_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (mut b, ssl_port) =
        start_tls_broker(tmp.path(), &pki, &["connections.max.idle.ms=2000".into()]);
    let mut good = TlsClient::connect(ssl_port, &pki, None).expect("TLS handshake");
    good.api_versions_ok();
    // A plaintext Kafka request instead of a ClientHello.
    let mut garbage = TcpStream::connect(("127.0.0.1", ssl_port)).unwrap();
    garbage.write_all(&frame(18, 3, 1, &[0u8; 8])).unwrap();
    assert_closed_within(&mut garbage, Duration::from_secs(5), "plaintext on TLS");
    // Random bytes, then a ClientHello-looking record with a huge length.
    let mut rng = Rng(7);
    let mut noise = TcpStream::connect(("127.0.0.1", ssl_port)).unwrap();
    let _ = noise.write_all(&rng.bytes(64 * 1024));
    assert_closed_within(&mut noise, Duration::from_secs(5), "random bytes");
    let mut huge = TcpStream::connect(("127.0.0.1", ssl_port)).unwrap();
    let _ = huge.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff]);
    assert_closed_within(
        &mut huge,
        Duration::from_secs(5),
        "oversized handshake record",
    );
    // A client that connects and says nothing is closed after the
    // handshake bound (here connections.max.idle.ms, 2 s), while the
    // established client goes on being served (and so is never idle).
    let mut silent = TcpStream::connect(("127.0.0.1", ssl_port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let took = loop {
        match silent.read(&mut buf) {
            Ok(0) => break start.elapsed(),
            Ok(n) => panic!("silent client got {n} bytes"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(
                    start.elapsed() < Duration::from_secs(9),
                    "silent client not closed"
                );
                good.api_versions_ok();
            }
            Err(_) => break start.elapsed(),
        }
    };
    assert!(took >= Duration::from_millis(1500), "closed after {took:?}");
    // The established client never noticed; new ones still connect.
    good.api_versions_ok();
    TlsClient::connect(ssl_port, &pki, None)
        .expect("TLS handshake after the garbage")
        .api_versions_ok();
    api_versions_ok(&mut b.client());
    b.assert_alive();
}

/// Starts a broker with an SSL listener and `extra`; returns its stderr
/// once it has exited (it must refuse to start).
fn refused_start(extra: &[String]) -> String {
    let port = free_port();
    let mut args = vec![
        format!("listeners=SSL://127.0.0.1:{port}"),
        format!("advertised.listeners=SSL://127.0.0.1:{port}"),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut b = Broker::spawn_only_on(port, &args);
    let st = b.wait_exit(Duration::from_secs(20));
    assert!(
        st.is_some_and(|s| !s.success()),
        "kastle must refuse to start with {extra:?}"
    );
    b.stderr()
}

#[test]
fn bad_keystores_refuse_the_start_naming_key_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.pem").display().to_string();
    let e = refused_start(&[
        "ssl.keystore.type=PEM".into(),
        format!("ssl.keystore.location={missing}"),
    ]);
    assert!(
        e.contains("ssl.keystore.location") && e.contains(&missing),
        "{e}"
    );
    // Kafka's default store type (JKS) is refused, naming PEM.
    let pki = Pki::new();
    let (keystore, _) = write_stores(&pki, tmp.path());
    let e = refused_start(&[format!("ssl.keystore.location={keystore}")]);
    assert!(e.contains("ssl.keystore.type") && e.contains("PEM"), "{e}");
    // No keystore at all.
    let e = refused_start(&[]);
    assert!(e.contains("keystore"), "{e}");
    // A file without a key.
    let certs_only = tmp.path().join("certs.pem");
    std::fs::write(&certs_only, pki.ca.pem()).unwrap();
    let e = refused_start(&[
        "ssl.keystore.type=PEM".into(),
        format!("ssl.keystore.location={}", certs_only.display()),
    ]);
    assert!(e.contains("ssl.keystore.location"), "{e}");
    // Required client certificates without a truststore.
    let e = refused_start(&[
        "ssl.keystore.type=PEM".into(),
        format!("ssl.keystore.location={keystore}"),
        "ssl.client.auth=required".into(),
    ]);
    assert!(e.contains("truststore"), "{e}");
    // An invalid mapping rule.
    let e = refused_start(&[
        "ssl.keystore.type=PEM".into(),
        format!("ssl.keystore.location={keystore}"),
        "ssl.principal.mapping.rules=RULE:broken".into(),
    ]);
    assert!(e.contains("ssl.principal.mapping.rules"), "{e}");
}

#[test]
fn inline_pem_keystore_and_truststore() {
    let pki = Pki::new();
    let server = pki.server();
    let port = free_port();
    // Inline PEM, as in a properties file or an environment variable.
    let chain = format!("ssl.keystore.certificate.chain={}", server.cert_pem);
    let key = format!("ssl.keystore.key={}", server.key_pem);
    let trust = format!("ssl.truststore.certificates={}", pki.ca.pem());
    let listeners = format!("listeners=SSL://127.0.0.1:{port}");
    let advertised = format!("advertised.listeners=SSL://localhost:{port}");
    let _b = Broker::start_on(
        port,
        &[
            &listeners,
            &advertised,
            "ssl.keystore.type=PEM",
            "ssl.truststore.type=PEM",
            &chain,
            &key,
            &trust,
            "ssl.client.auth=required",
        ],
    );
    TlsClient::connect(port, &pki, Some(&pki.client("dave")))
        .expect("handshake")
        .api_versions_ok();
    assert!(refused(port, &pki, None));
}

// ---------------------------------------------------------------------------
// Certificate reload (dynamic listener configs)
// ---------------------------------------------------------------------------

/// The certificate the broker presented to `c`, as DER.
fn peer_cert(c: &TlsClient) -> Vec<u8> {
    c.tls.conn.peer_certificates().expect("server certificate")[0].to_vec()
}

fn der_of(issued: &Issued) -> Vec<u8> {
    CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
        .expect("PEM certificate")
        .to_vec()
}

fn write_keystore(path: &Path, issued: &Issued) {
    std::fs::write(path, format!("{}{}", issued.key_pem, issued.cert_pem)).unwrap();
}

#[test]
fn keystore_reload_through_incremental_alter_configs() {
    use crate::support::admin::{described, inc_alter, BROKER_RESOURCE, SET};
    const INVALID_REQUEST: i16 = 42;
    const KEY: &str = "listener.name.ssl.ssl.keystore.location";
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (mut b, ssl_port) = start_tls_broker(tmp.path(), &pki, &[]);
    let mut c = b.client();
    let mut before = TlsClient::connect(ssl_port, &pki, None).expect("handshake");
    let first = peer_cert(&before);

    // A new certificate for the same name: new connections present it, the
    // established one carries on.
    let second = pki.server();
    let path = tmp.path().join("broker-2.pem");
    write_keystore(&path, &second);
    let path_s = path.display().to_string();
    let (code, msg) = inc_alter(
        &mut c,
        BROKER_RESOURCE,
        "1",
        &[(KEY, SET, Some(&path_s))],
        false,
    );
    assert_eq!((code, msg.as_deref()), (NONE, None));
    let mut after = TlsClient::connect(ssl_port, &pki, None).expect("handshake");
    assert_eq!(peer_cert(&after), der_of(&second));
    assert_ne!(peer_cert(&after), first);
    after.api_versions_ok();
    before.api_versions_ok();
    assert_eq!(peer_cert(&before), first);

    // Refused as Kafka's SslFactory refuses them, changing nothing: another
    // distinguished name, a lost subject alternative name, a missing file.
    let other_dn = pki.issue(
        &[(DnType::CommonName, "elsewhere")],
        &["localhost", "127.0.0.1"],
    );
    let fewer_sans = pki.issue(&[(DnType::CommonName, "localhost")], &["localhost"]);
    for (name, issued, needle) in [
        (
            "dn.pem",
            Some(&other_dn),
            "Keystore DistinguishedName does not match",
        ),
        (
            "san.pem",
            Some(&fewer_sans),
            "Keystore SubjectAltNames do not match",
        ),
        ("missing.pem", None, "cannot read"),
    ] {
        let p = tmp.path().join(name);
        if let Some(issued) = issued {
            write_keystore(&p, issued);
        }
        let p = p.display().to_string();
        let (code, msg) = inc_alter(&mut c, BROKER_RESOURCE, "1", &[(KEY, SET, Some(&p))], false);
        let msg = msg.unwrap_or_default();
        assert_eq!(code, INVALID_REQUEST, "{name}: {msg}");
        assert!(
            msg.starts_with("Invalid value org.apache.kafka.common.config.ConfigException: Validation of dynamic config update of SSLFactory failed: ")
                && msg.contains(needle)
                && msg.ends_with(" for configuration Invalid dynamic configuration"),
            "{name}: {msg}"
        );
        let c2 = TlsClient::connect(ssl_port, &pki, None).expect("handshake");
        assert_eq!(peer_cert(&c2), der_of(&second), "{name}");
    }
    assert_eq!(
        described(&mut c, BROKER_RESOURCE, "1", KEY).0,
        Some(path_s.clone())
    );

    // The same path set again reloads a file changed in place (Kafka
    // compares its modification time).
    let third = pki.server();
    write_keystore(&path, &third);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let (code, _) = inc_alter(
        &mut c,
        BROKER_RESOURCE,
        "1",
        &[(KEY, SET, Some(&path_s))],
        false,
    );
    assert_eq!(code, NONE);
    let c3 = TlsClient::connect(ssl_port, &pki, None).expect("handshake");
    assert_eq!(peer_cert(&c3), der_of(&third));

    // The change is stored: after a restart the listener reads that path,
    // not the static ssl.keystore.location.
    drop((before, after, c3, c));
    b.stop();
    b.restart();
    let c4 = TlsClient::connect(ssl_port, &pki, None).expect("handshake after restart");
    assert_eq!(peer_cert(&c4), der_of(&third));
}
