//! A TLS listener's server side from Kafka's `ssl.*` keys: the PEM
//! keystore (file or inline, the key optionally encrypted PKCS#8), the PEM
//! truststore for client certificates, `ssl.client.auth`, the enabled
//! protocol versions and cipher suites, and the principal mapping rules.
//! Built once at start-up; any problem is an error naming the key (and
//! file) so that the broker refuses to start, as Kafka's `SslFactory` does.
//! Only PEM stores are read: JKS and PKCS12 are refused with a message
//! saying so. A rebuilt server (dynamic listener configs) is checked
//! against the running one as Kafka's `SslFactory` checks a reconfigured
//! keystore ([`ensure_compatible`]), and notes its files' modification
//! times so that setting the same path again reloads a changed file.

use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ssl_principal::SslPrincipalMapper;
use super::SecurityProtocol;

/// What a TLS listener needs to accept clients.
#[derive(Debug, Clone)]
pub struct TlsServer {
    pub config: Arc<ServerConfig>,
    pub principal_mapper: Arc<SslPrincipalMapper>,
    /// The keystore's certificate as Kafka compares it on reconfiguration.
    pub identity: KeystoreIdentity,
    pub has_truststore: bool,
    /// The store files read and their modification times then (Kafka's
    /// `FileBasedStore.modified`).
    pub files: Vec<(String, Option<SystemTime>)>,
}

/// The subject and subject alternative names of a keystore's certificate
/// (Kafka's `SslFactory.CertificateEntries`; a PEM keystore has one entry,
/// aliased `kafka`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeystoreIdentity {
    /// RFC 2253 (`X500Principal.getName()`).
    pub dn: String,
    /// As Java lists them: `[type, value]`, e.g. `[2, localhost]`.
    pub sans: Vec<String>,
}

impl TlsServer {
    /// Whether a store file changed (or vanished) since it was read.
    pub fn files_modified(&self) -> bool {
        self.files.iter().any(|(path, at)| modified_at(path) != *at)
    }
}

fn modified_at(path: &str) -> Option<SystemTime> {
    std::fs::metadata(path.trim())
        .and_then(|m| m.modified())
        .ok()
}

/// Kafka's checks of a reconfigured listener's stores
/// (`SslFactory.createNewSslEngineFactory` and
/// `CertificateEntries.ensureCompatible`): the certificate keeps its
/// distinguished name unless `allow_dn_changes`, keeps every subject
/// alternative name unless `allow_san_changes`, and a truststore cannot be
/// added where none was. The message is Kafka's `ConfigException`'s.
pub fn ensure_compatible(
    old: &TlsServer,
    new: &TlsServer,
    allow_dn_changes: bool,
    allow_san_changes: bool,
) -> Result<(), String> {
    let (o, n) = (&old.identity, &new.identity);
    if !allow_dn_changes && !o.dn.eq_ignore_ascii_case(&n.dn) {
        return Err(format!(
            "Keystore DistinguishedName does not match:  existing={{alias=kafka, DN={}}}, new={{alias=kafka, DN={}}}",
            o.dn, n.dn
        ));
    }
    if !allow_san_changes && !o.sans.iter().all(|s| n.sans.contains(s)) {
        return Err(format!(
            "Keystore SubjectAltNames do not match:  existing={{alias=kafka, SAN=[{}]}}, new={{alias=kafka, SAN=[{}]}}",
            o.sans.join(", "),
            n.sans.join(", ")
        ));
    }
    if !old.has_truststore && new.has_truststore {
        return Err("Cannot add SSL truststore to an existing listener for which no truststore was configured.".into());
    }
    Ok(())
}

/// The subject and SANs of a DER certificate.
fn identity(cert_der: &[u8]) -> Result<KeystoreIdentity, String> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::FromDer;
    let dn = super::ssl_principal::subject_dn(cert_der)?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der)
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            sans.push(match name {
                GeneralName::RFC822Name(v) => format!("[1, {v}]"),
                GeneralName::DNSName(v) => format!("[2, {v}]"),
                GeneralName::URI(v) => format!("[6, {v}]"),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => format!("[7, {}.{}.{}.{}]", b[0], b[1], b[2], b[3]),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        format!("[7, {}]", std::net::Ipv6Addr::from(a))
                    }
                    _ => format!("[7, {b:?}]"),
                },
                other => format!("{other:?}"),
            });
        }
    }
    Ok(KeystoreIdentity { dn, sans })
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// Builds the TLS server of listener `listener` (protocol `protocol`).
/// `get` gives a key's effective value for this listener (its
/// `listener.name.<listener>.` override, else the broker's value or
/// default).
pub fn build_server(
    listener: &str,
    protocol: SecurityProtocol,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<TlsServer, String> {
    let at = |key: &str, why: String| format!("listener {listener}: {key}: {why}");
    let set = |key: &str| get(key).filter(|v| !v.trim().is_empty());
    let provider = provider(get).map_err(|e| at("ssl.cipher.suites", e))?;
    let versions = versions(get).map_err(|e| at("ssl.enabled.protocols", e))?;
    // Modification times are taken before the files are read: a change
    // racing the read is seen as a change next time.
    let files: Vec<(String, Option<SystemTime>)> =
        ["ssl.keystore.location", "ssl.truststore.location"]
            .iter()
            .filter_map(|k| set(k))
            .map(|p| {
                let at = modified_at(&p);
                (p, at)
            })
            .collect();
    let (chain, key) = keystore(&set).map_err(|e| format!("listener {listener}: {e}"))?;
    let identity = chain
        .first()
        .map(|c| identity(c.as_ref()))
        .transpose()
        .map_err(|e| at("ssl.keystore.location", e))?
        .ok_or_else(|| at("ssl.keystore.location", "no certificate".into()))?;
    // Kafka applies `ssl.client.auth` to a SASL_SSL listener only when set
    // with the listener's prefix (KIP-684); SSL listeners read either.
    let client_auth_value = if protocol == SecurityProtocol::SaslSsl {
        set(&format!(
            "listener.name.{}.ssl.client.auth",
            listener.to_ascii_lowercase()
        ))
    } else {
        set("ssl.client.auth")
    };
    let client_auth = match client_auth_value
        .as_deref()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("none") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(other) => {
            return Err(at(
                "ssl.client.auth",
                format!("{other} is not one of required, requested, none"),
            ))
        }
    };
    let roots = truststore(&set).map_err(|e| format!("listener {listener}: {e}"))?;
    let has_truststore = roots.is_some();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| at("ssl.enabled.protocols", e.to_string()))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Requested | ClientAuth::Required => {
            let Some(roots) = roots else {
                return Err(at(
                    "ssl.client.auth",
                    "client certificates need a PEM truststore: set ssl.truststore.location \
                     or ssl.truststore.certificates (with ssl.truststore.type=PEM)"
                        .into(),
                ));
            };
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| at("ssl.truststore.location", e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| at("ssl.keystore.location", format!("key and certificate: {e}")))?;
    // Kafka's clients speak no ALPN; none is offered.
    config.alpn_protocols.clear();
    let rules = get("ssl.principal.mapping.rules").unwrap_or_else(|| "DEFAULT".into());
    let principal_mapper =
        SslPrincipalMapper::from_rules(&rules).map_err(|e| at("ssl.principal.mapping.rules", e))?;
    Ok(TlsServer {
        config: Arc::new(config),
        principal_mapper: Arc::new(principal_mapper),
        identity,
        has_truststore,
        files,
    })
}

/// The ring provider, its cipher suites cut to `ssl.cipher.suites` when
/// set (IANA names, as Java takes them; names rustls does not implement,
/// such as CBC suites, are skipped, but at least one must remain).
fn provider(get: &dyn Fn(&str) -> Option<String>) -> Result<Arc<CryptoProvider>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    let wanted: Vec<String> = get("ssl.cipher.suites")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if !wanted.is_empty() {
        provider.cipher_suites.retain(|s| {
            let name = format!("{:?}", s.suite()).replace("TLS13_", "TLS_");
            wanted.contains(&name)
        });
        if provider.cipher_suites.is_empty() {
            let known: Vec<String> = rustls::crypto::ring::default_provider()
                .cipher_suites
                .iter()
                .map(|s| format!("{:?}", s.suite()).replace("TLS13_", "TLS_"))
                .collect();
            return Err(format!(
                "none of {} is supported; kastle supports {}",
                wanted.join(","),
                known.join(",")
            ));
        }
    }
    Ok(Arc::new(provider))
}

/// `ssl.enabled.protocols`: TLSv1.2 and TLSv1.3 (older versions are not
/// offered; at least one of the two must be listed).
fn versions(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let list = get("ssl.enabled.protocols").unwrap_or_else(|| "TLSv1.2,TLSv1.3".into());
    let mut out = Vec::new();
    for p in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match p {
            "TLSv1.3" => out.push(&rustls::version::TLS13),
            "TLSv1.2" => out.push(&rustls::version::TLS12),
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{list:?} enables no protocol kastle speaks (TLSv1.2, TLSv1.3)"
        ));
    }
    Ok(out)
}

/// A store type other than PEM is refused (Kafka's default is JKS).
fn require_pem(type_key: &str, set: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    let t = set(type_key).unwrap_or_else(|| "JKS".into());
    if t.trim().eq_ignore_ascii_case("PEM") {
        Ok(())
    } else {
        Err(format!(
            "{type_key}={}: kastle reads PEM stores only; set {type_key}=PEM and give PEM \
             files (convert a JKS or PKCS12 store with keytool and openssl)",
            t.trim()
        ))
    }
}

fn read_file(key: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path.trim()).map_err(|e| format!("{key}: cannot read {}: {e}", path.trim()))
}

/// A client's certificate chain and key from the same keys as a
/// listener's keystore (the OAuthBearerLoginModule's `ssl.keystore.*`
/// options for the JWKS endpoint); `None` when none is set.
pub fn client_keystore(
    set: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    if [
        "ssl.keystore.location",
        "ssl.keystore.certificate.chain",
        "ssl.keystore.key",
    ]
    .iter()
    .all(|k| set(k).is_none())
    {
        return Ok(None);
    }
    keystore(set).map(Some)
}

/// The certificate chain and private key: `ssl.keystore.location` (one PEM
/// file holding both) or `ssl.keystore.certificate.chain` with
/// `ssl.keystore.key`.
fn keystore(
    set: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let location = set("ssl.keystore.location");
    let inline_chain = set("ssl.keystore.certificate.chain");
    let inline_key = set("ssl.keystore.key");
    if location.is_none() && inline_chain.is_none() && inline_key.is_none() {
        return Err(
            "a TLS listener needs a keystore: set ssl.keystore.type=PEM and ssl.keystore.location \
             (a PEM file with the private key and certificate chain), or \
             ssl.keystore.certificate.chain and ssl.keystore.key"
                .into(),
        );
    }
    require_pem("ssl.keystore.type", set)?;
    if set("ssl.keystore.password").is_some() {
        return Err(
            "ssl.keystore.password: a PEM keystore has no store password; \
                    an encrypted key's password is ssl.key.password"
                .into(),
        );
    }
    let password = set("ssl.key.password");
    let (chain_key, chain_pem, key_key, key_pem) = match (location, inline_chain, inline_key) {
        (Some(path), None, None) => {
            let pem = read_file("ssl.keystore.location", &path)?;
            let what = format!("ssl.keystore.location ({})", path.trim());
            (what.clone(), pem.clone(), what, pem)
        }
        (None, Some(chain), Some(key)) => (
            "ssl.keystore.certificate.chain".to_string(),
            chain.into_bytes(),
            "ssl.keystore.key".to_string(),
            key.into_bytes(),
        ),
        (Some(_), _, _) => {
            return Err(
                "ssl.keystore.location and ssl.keystore.certificate.chain/ssl.keystore.key \
                        are both set; give one keystore"
                    .into(),
            )
        }
        _ => {
            return Err(
                "ssl.keystore.certificate.chain and ssl.keystore.key must be set together".into(),
            )
        }
    };
    let chain = certificates(&chain_pem).map_err(|e| format!("{chain_key}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{chain_key}: no CERTIFICATE in the PEM data"));
    }
    let key = private_key(&key_pem, password.as_deref()).map_err(|e| format!("{key_key}: {e}"))?;
    Ok((chain, key))
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM certificate: {e}"))
}

/// The private key of PEM data: an `ENCRYPTED PRIVATE KEY` (PKCS#8, PBES2)
/// decrypted with `ssl.key.password`, or a plain PKCS#8, PKCS#1 or SEC1
/// key.
fn private_key(pem: &[u8], password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let text = String::from_utf8_lossy(pem);
    if let Some(der) = pem_block(&text, "ENCRYPTED PRIVATE KEY")? {
        let Some(password) = password else {
            return Err("the private key is encrypted; set ssl.key.password".into());
        };
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| format!("invalid encrypted private key: {e}"))?;
        let plain = info
            .decrypt(password.as_bytes())
            .map_err(|e| format!("cannot decrypt the private key with ssl.key.password: {e}"))?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    if password.is_some() {
        return Err(
            "ssl.key.password is set but the private key is not encrypted (expected an \
                    ENCRYPTED PRIVATE KEY)"
                .into(),
        );
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no usable PRIVATE KEY: {e}"))
}

/// The DER bytes of the first PEM block labelled `label`.
fn pem_block(text: &str, label: &str) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        return Ok(None);
    };
    let body = &text[start + begin.len()..];
    let Some(stop) = body.find(&end) else {
        return Err(format!("{begin} without {end}"));
    };
    let b64: String = body[..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(Some)
        .map_err(|e| format!("invalid base64 in {label}: {e}"))
}

/// The trusted roots: `ssl.truststore.location` or
/// `ssl.truststore.certificates` (PEM); `None` when neither is set.
fn truststore(set: &dyn Fn(&str) -> Option<String>) -> Result<Option<RootCertStore>, String> {
    let Some((key, certs)) = truststore_certificates(set)? else {
        return Ok(None);
    };
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("{key}: unusable certificate: {e}"))?;
    }
    Ok(Some(roots))
}

/// The certificates of a PEM truststore (`ssl.truststore.location` or
/// `ssl.truststore.certificates`, `ssl.truststore.type=PEM`), with the key
/// they came from; `None` when neither is set.
pub fn truststore_certificates(
    set: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, Vec<CertificateDer<'static>>)>, String> {
    let (key, pem) = match (
        set("ssl.truststore.location"),
        set("ssl.truststore.certificates"),
    ) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(
                "ssl.truststore.location and ssl.truststore.certificates are both set".into(),
            )
        }
        (Some(path), None) => (
            format!("ssl.truststore.location ({})", path.trim()),
            read_file("ssl.truststore.location", &path)?,
        ),
        (None, Some(pem)) => ("ssl.truststore.certificates".to_string(), pem.into_bytes()),
    };
    require_pem("ssl.truststore.type", set)?;
    if set("ssl.truststore.password").is_some() {
        return Err("ssl.truststore.password: a PEM truststore has no password".into());
    }
    let certs = certificates(&pem).map_err(|e| format!("{key}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{key}: no CERTIFICATE in the PEM data"));
    }
    Ok(Some((key, certs)))
}

/// The TLS client one node connects to another node's listener with
/// (Kafka's `SslFactory` in client mode, from the listener's `ssl.*` keys):
/// the peer is verified against the PEM truststore, its host name checked
/// when `ssl.endpoint.identification.algorithm` is `https` (the default)
/// and not when it is empty, and the keystore, when the listener sets one,
/// is sent as the client certificate (Kafka's brokers present theirs).
/// `get` gives a key's effective value for the listener.
pub fn build_client(
    listener: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::client::WebPkiServerVerifier;
    let at = |key: &str, why: String| format!("listener {listener}: {key}: {why}");
    let set = |key: &str| get(key).filter(|v| !v.trim().is_empty());
    let provider = provider(get).map_err(|e| at("ssl.cipher.suites", e))?;
    let versions = versions(get).map_err(|e| at("ssl.enabled.protocols", e))?;
    let roots = truststore(&set)
        .map_err(|e| format!("listener {listener}: {e}"))?
        .ok_or_else(|| {
            at(
                "ssl.truststore.location",
                "a node connecting to a TLS listener needs a PEM truststore (kastle has no \
                 default trust store): set ssl.truststore.location or \
                 ssl.truststore.certificates with ssl.truststore.type=PEM"
                    .into(),
            )
        })?;
    let algorithm = get("ssl.endpoint.identification.algorithm").unwrap_or_else(|| "https".into());
    let verify_host = match algorithm.trim().to_ascii_lowercase().as_str() {
        "" => false,
        "https" => true,
        other => {
            return Err(at(
                "ssl.endpoint.identification.algorithm",
                format!("{other} is not supported (https, or empty for none)"),
            ))
        }
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| at("ssl.truststore.location", e.to_string()))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| at("ssl.enabled.protocols", e.to_string()))?;
    let builder = if verify_host {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameVerification(verifier)))
    };
    let mut config = match client_keystore(&set).map_err(|e| format!("listener {listener}: {e}"))? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| at("ssl.keystore.location", format!("key and certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

/// The truststore's chain verification without the host name check
/// (`ssl.endpoint.identification.algorithm` empty): the webpki verifier
/// checks the chain before the name, so only a name mismatch is forgiven.
#[derive(Debug)]
struct NoHostnameVerification(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for NoHostnameVerification {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
