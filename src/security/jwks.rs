//! The JSON Web Key Set `sasl.oauthbearer.jwks.endpoint.url` names, kept
//! current as Kafka's key resolvers keep it: a `file:` JWKS is read again
//! when its modification time changes (`JwksFileVerificationKeyResolver`);
//! an `http:`/`https:` one is fetched at start (a failure stops the broker,
//! as Kafka's `configure` does), then by a background thread every
//! `sasl.oauthbearer.jwks.endpoint.refresh.ms`, each refresh retried with
//! exponential backoff from `...retry.backoff.ms` within
//! `...retry.backoff.max.ms`, and at once when a token names a key id the
//! set lacks (`RefreshingHttpsJwks.maybeExpediteRefresh`: a missing id is
//! looked up again at most once a minute, 16 ids remembered, ids over 1000
//! characters never). A failed refresh keeps the keys there were.
//!
//! Kafka 4.x reaches a JWKS URL only when the JVM system property
//! `org.apache.kafka.sasl.oauthbearer.allowed.urls` lists it; kastle reads
//! that property from `KAFKA_OPTS` (`-D...=url1,url2`), as the images pass
//! it, and refuses to start otherwise, with Kafka's message.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::Jwk;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

/// The JVM system property naming the JWKS (and token) URLs Kafka may use.
pub const ALLOWED_URLS_PROPERTY: &str = "org.apache.kafka.sasl.oauthbearer.allowed.urls";
/// The most a JWKS response body may take (a provider's set is a few KiB).
pub const MAX_JWKS_BYTES: u64 = 1 << 20;
/// Connect and whole-request timeout of one JWKS fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// `RefreshingHttpsJwks`'s missing-key-id cache: entries, and how long a
/// missing id waits before it may trigger another refresh.
const MISSING_KID_CACHE_ENTRIES: usize = 16;
const MISSING_KID_RECHECK: Duration = Duration::from_secs(60);
/// Key ids longer than this are taken as malformed and never looked up.
const MISSING_KID_MAX_LEN: usize = 1000;

/// A client certificate chain and its private key.
pub type ClientKeystore = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// How an `http(s):` JWKS is fetched and refreshed.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub refresh: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    /// Trusted roots for `https:` (the OAuthBearerLoginModule entry's
    /// `ssl.truststore.*` options); `None`: the bundled Mozilla roots, as
    /// Java falls back to its own `cacerts`.
    pub roots: Option<Vec<CertificateDer<'static>>>,
    /// The client certificate chain and key an endpoint requiring mutual
    /// TLS is shown (the entry's `ssl.keystore.*` options).
    pub client_cert: Option<Arc<ClientKeystore>>,
}

/// The URLs `KAFKA_OPTS` allows (`-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=`),
/// trimmed; empty when the property is absent (Kafka's default allows none).
pub fn allowed_urls(kafka_opts: Option<&str>) -> Vec<String> {
    let prefix = format!("-D{ALLOWED_URLS_PROPERTY}=");
    kafka_opts
        .and_then(|o| {
            o.split_whitespace()
                .find_map(|opt| opt.strip_prefix(&prefix).map(|v| v.trim_matches('"')))
        })
        .map(|v| v.split(',').map(|u| u.trim().to_string()).collect())
        .unwrap_or_default()
}

/// Kafka's `ConfigurationUtils.validateUrl` checks: a scheme among http,
/// https and file, and the URL allowed.
pub fn check_url(key: &str, url: &str, allowed: &[String]) -> Result<(), String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https" | "file") => {}
        Some(s) if !s.is_empty() && !s.contains('/') => {
            return Err(format!(
                "The OAuth configuration option {key} contains a URL ({url}) that contains an invalid protocol ({s}); only \"http\", \"https\", and \"file\" protocol are supported"
            ))
        }
        _ => {
            return Err(format!(
                "The OAuth configuration option {key} contains a URL ({url}) that is malformed: no protocol"
            ))
        }
    }
    if !allowed.iter().any(|a| a == url) {
        return Err(format!(
            "Invalid value {url} for configuration {key}: The URL cannot be accessed due to restrictions. Update the system property '{ALLOWED_URLS_PROPERTY}' to allow the URL to be accessed."
        ));
    }
    Ok(())
}

/// A JWKS and how it is kept current.
pub struct JwksEndpoint {
    url: String,
    keys: RwLock<Arc<Vec<Jwk>>>,
    source: Source,
}

enum Source {
    File {
        path: PathBuf,
        modified: Mutex<Option<SystemTime>>,
    },
    Http {
        refresher: Arc<Refresher>,
    },
}

/// Shared by the endpoint and its refresh thread: the wake-up and the
/// missing key ids.
struct Refresher {
    state: Mutex<RefreshState>,
    wake: Condvar,
}

#[derive(Default)]
struct RefreshState {
    expedite: bool,
    closed: bool,
    /// Key id → when it may trigger a refresh again (oldest first).
    missing: Vec<(String, Instant)>,
}

impl std::fmt::Debug for JwksEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksEndpoint")
            .field("url", &self.url)
            .field("keys", &self.keys().len())
            .finish()
    }
}

impl JwksEndpoint {
    /// Opens the JWKS at `url`: a `file:` URL is read now, an `http(s):`
    /// one fetched now and then refreshed as `http` says.
    pub fn open(url: &str, http: HttpSettings) -> Result<Arc<JwksEndpoint>, String> {
        if let Some(path) = url
            .strip_prefix("file://")
            .or_else(|| url.strip_prefix("file:"))
        {
            let path = PathBuf::from(path);
            let (keys, modified) = read_file(&path)?;
            return Ok(Arc::new(JwksEndpoint {
                url: url.to_string(),
                keys: RwLock::new(Arc::new(keys)),
                source: Source::File {
                    path,
                    modified: Mutex::new(modified),
                },
            }));
        }
        let agent = agent(&http)?;
        let keys = fetch(&agent, url).map_err(|e| format!("Could not refresh JWKS: {e}"))?;
        tracing::info!(
            url,
            keys = keys.len(),
            refresh_ms = http.refresh.as_millis() as u64,
            "JWKS fetched; refresh thread starting"
        );
        let refresher = Arc::new(Refresher {
            state: Mutex::new(RefreshState::default()),
            wake: Condvar::new(),
        });
        let endpoint = Arc::new(JwksEndpoint {
            url: url.to_string(),
            keys: RwLock::new(Arc::new(keys)),
            source: Source::Http {
                refresher: refresher.clone(),
            },
        });
        let weak = Arc::downgrade(&endpoint);
        std::thread::Builder::new()
            .name("jwks-refresh".into())
            .spawn(move || refresh_loop(weak, refresher, agent, http))
            .map_err(|e| format!("cannot start the JWKS refresh thread: {e}"))?;
        Ok(endpoint)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The current keys (a `file:` JWKS re-read first if it changed).
    pub fn keys(&self) -> Arc<Vec<Jwk>> {
        if let Source::File { path, modified } = &self.source {
            let now = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let mut seen = modified.lock().unwrap_or_else(|p| p.into_inner());
            if now != *seen {
                match read_file(path) {
                    Ok((keys, at)) => {
                        tracing::info!(url = %self.url, keys = keys.len(), "JWKS file changed; keys reloaded");
                        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
                        *seen = at;
                    }
                    // Mid-write or removed: keep the keys there were and
                    // try again on the next token.
                    Err(e) => {
                        tracing::warn!(url = %self.url, error = %e, "JWKS file unreadable; keeping the previous keys")
                    }
                }
            }
        }
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A token named `kid`, which no key matched: an `http(s):` JWKS is
    /// refreshed at once unless this id did so within the last minute.
    /// Whether a refresh was asked for.
    pub fn missing_key_id(&self, kid: &str) -> bool {
        let Source::Http { refresher } = &self.source else {
            return false;
        };
        if kid.len() > MISSING_KID_MAX_LEN {
            tracing::warn!(kid = %kid.chars().take(64).collect::<String>(), len = kid.len(), "key id too long to look up");
            return false;
        }
        let now = Instant::now();
        let mut st = refresher.state.lock().unwrap_or_else(|p| p.into_inner());
        let pos = st.missing.iter().position(|(k, _)| k == kid);
        if let Some(i) = pos {
            if st.missing[i].1 > now {
                return false;
            }
            st.missing.remove(i);
        }
        st.missing
            .push((kid.to_string(), now + MISSING_KID_RECHECK));
        if st.missing.len() > MISSING_KID_CACHE_ENTRIES {
            st.missing.remove(0);
        }
        st.expedite = true;
        refresher.wake.notify_all();
        true
    }
}

impl Drop for JwksEndpoint {
    fn drop(&mut self) {
        if let Source::Http { refresher } = &self.source {
            refresher
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .closed = true;
            refresher.wake.notify_all();
        }
    }
}

fn agent(http: &HttpSettings) -> Result<ureq::Agent, String> {
    let roots = match &http.roots {
        Some(certs) => ureq::tls::RootCerts::new_with_certs(
            &certs
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect::<Vec<_>>(),
        ),
        None => ureq::tls::RootCerts::WebPki,
    };
    let client_cert = http
        .client_cert
        .as_deref()
        .map(|(chain, key)| -> Result<ureq::tls::ClientCert, String> {
            // ureq takes a key as PEM (its key kinds are not public).
            use base64::Engine;
            let label = match key {
                PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
                PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
                _ => "PRIVATE KEY",
            };
            let b64 = base64::engine::general_purpose::STANDARD.encode(key.secret_der());
            let pem = format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n");
            let key = ureq::tls::PrivateKey::from_pem(pem.as_bytes())
                .map_err(|e| format!("the JWKS client key (ssl.keystore.*): {e}"))?;
            Ok(ureq::tls::ClientCert::new_with_certs(
                &chain
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                    .collect::<Vec<_>>(),
                key,
            ))
        })
        .transpose()?;
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .timeout_connect(Some(FETCH_TIMEOUT))
        // Java's HTTP client ignores the *_PROXY variables; so does this.
        .proxy(None)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(roots)
                .client_cert(client_cert)
                .build(),
        )
        .build()
        .into())
}

/// One GET of the JWKS: a 2xx answer of at most [`MAX_JWKS_BYTES`].
fn fetch(agent: &ureq::Agent, url: &str) -> Result<Vec<Jwk>, String> {
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_JWKS_BYTES)
        .read_to_vec()
        .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
    parse(&body).map_err(|e| format!("GET {url}: {e}"))
}

fn read_file(path: &std::path::Path) -> Result<(Vec<Jwk>, Option<SystemTime>), String> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?;
    let keys = parse(&text).map_err(|e| format!("the JWKS file {}: {e}", path.display()))?;
    if keys.is_empty() {
        return Err(format!("the JWKS file {} has no keys", path.display()));
    }
    Ok((keys, modified))
}

/// A JSON Web Key Set; keys of a type or algorithm the validator does not
/// know are skipped (as jose4j skips them), not the whole set.
pub fn parse(body: &[u8]) -> Result<Vec<Jwk>, String> {
    let set: Value =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
    let Some(Value::Array(keys)) = set.get("keys") else {
        return Err("not a JSON Web Key Set: no \"keys\" array".into());
    };
    Ok(keys
        .iter()
        .filter_map(|k| match serde_json::from_value::<Jwk>(k.clone()) {
            Ok(jwk) => Some(jwk),
            Err(e) => {
                tracing::warn!(kid = ?k.get("kid"), error = %e, "JWK skipped");
                None
            }
        })
        .collect())
}

/// The refresh thread: every `refresh` (fixed rate, from the start fetch)
/// and whenever a missing key id asks; ends when the endpoint is dropped.
fn refresh_loop(
    endpoint: Weak<JwksEndpoint>,
    refresher: Arc<Refresher>,
    agent: ureq::Agent,
    http: HttpSettings,
) {
    let mut next = Instant::now() + http.refresh;
    loop {
        {
            let mut st = refresher.state.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if st.closed {
                    return;
                }
                if st.expedite {
                    st.expedite = false;
                    break;
                }
                let now = Instant::now();
                if now >= next {
                    while next <= now {
                        next += http.refresh;
                    }
                    break;
                }
                st = refresher
                    .wake
                    .wait_timeout(st, next - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let Some(url) = endpoint.upgrade().map(|e| e.url.clone()) else {
            return;
        };
        match fetch_with_retry(&agent, &url, &http) {
            Ok(keys) => {
                let Some(e) = endpoint.upgrade() else {
                    return;
                };
                {
                    let mut st = refresher.state.lock().unwrap_or_else(|p| p.into_inner());
                    st.missing.retain(|(kid, _)| {
                        !keys.iter().any(|k| k.common.key_id.as_deref() == Some(kid))
                    });
                }
                tracing::info!(url = %url, keys = keys.len(), "JWKS refreshed");
                *e.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
            }
            Err(err) => {
                tracing::warn!(url = %url, error = %err, "JWKS refresh failed; keeping the previous keys")
            }
        }
    }
}

/// Kafka's `Retry`: attempts until `retry_backoff_max` has passed, waiting
/// `retry_backoff * 2^(n-1)` (bounded by what is left) between them.
fn fetch_with_retry(
    agent: &ureq::Agent,
    url: &str,
    http: &HttpSettings,
) -> Result<Vec<Jwk>, String> {
    let end = Instant::now() + http.retry_backoff_max;
    let mut attempt: u32 = 0;
    let mut first_error = None;
    loop {
        attempt += 1;
        match fetch(agent, url) {
            Ok(keys) => return Ok(keys),
            Err(e) => {
                tracing::warn!(url, attempt, error = %e, "JWKS fetch failed");
                first_error.get_or_insert(e);
            }
        }
        let wait = http
            .retry_backoff
            .saturating_mul(2u32.saturating_pow(attempt - 1))
            .min(end.saturating_duration_since(Instant::now()));
        if wait.is_zero() {
            break;
        }
        std::thread::sleep(wait);
    }
    Err(first_error.unwrap_or_else(|| "no attempt made".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A plain-HTTP server answering every request with the body `serve`
    /// holds at the time; counts the requests.
    struct Server {
        url: String,
        serve: Arc<Mutex<String>>,
        hits: Arc<AtomicUsize>,
    }

    fn server(body: String) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
        let serve = Arc::new(Mutex::new(body));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (serve.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let body = s.lock().unwrap().clone();
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Server { url, serve, hits }
    }

    fn set(kids: &[&str]) -> String {
        let keys: Vec<Value> = kids
            .iter()
            .map(|k| serde_json::json!({"kty": "RSA", "kid": k, "alg": "RS256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"}))
            .collect();
        serde_json::json!({"keys": keys}).to_string()
    }

    fn kids(e: &JwksEndpoint) -> Vec<String> {
        e.keys()
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect()
    }

    fn settings(refresh_ms: u64) -> HttpSettings {
        HttpSettings {
            refresh: Duration::from_millis(refresh_ms),
            retry_backoff: Duration::from_millis(10),
            retry_backoff_max: Duration::from_millis(100),
            roots: None,
            client_cert: None,
        }
    }

    fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn allowed_urls_come_from_kafka_opts_and_gate_every_url() {
        let opts =
            format!("-Xmx1g -D{ALLOWED_URLS_PROPERTY}=https://idp/jwks,file:///k.json -Dx=y");
        let allowed = allowed_urls(Some(&opts));
        assert_eq!(allowed, ["https://idp/jwks", "file:///k.json"]);
        let key = "sasl.oauthbearer.jwks.endpoint.url";
        assert_eq!(check_url(key, "https://idp/jwks", &allowed), Ok(()));
        assert_eq!(check_url(key, "file:///k.json", &allowed), Ok(()));
        let refused = check_url(key, "https://other/jwks", &allowed).unwrap_err();
        assert!(
            refused.contains("cannot be accessed due to restrictions"),
            "{refused}"
        );
        assert!(check_url(key, "file:///k.json", &allowed_urls(None)).is_err());
        let ftp = check_url(key, "ftp://idp/jwks", &allowed).unwrap_err();
        assert!(ftp.contains("invalid protocol (ftp)"), "{ftp}");
    }

    #[test]
    fn http_jwks_is_refreshed_on_schedule() {
        let s = server(set(&["k1"]));
        let e = JwksEndpoint::open(&s.url, settings(200)).expect("open");
        assert_eq!(kids(&e), ["k1"]);
        *s.serve.lock().unwrap() = set(&["k2", "k3"]);
        eventually("the scheduled refresh", || kids(&e) == ["k2", "k3"]);
        // A set the validator cannot read does not replace the keys.
        *s.serve.lock().unwrap() = "{not json".into();
        let hits = s.hits.load(Ordering::SeqCst);
        eventually("a failed refresh", || {
            s.hits.load(Ordering::SeqCst) > hits + 1
        });
        assert_eq!(kids(&e), ["k2", "k3"]);
    }

    #[test]
    fn an_unknown_key_id_refreshes_at_once_then_waits() {
        let s = server(set(&["k1"]));
        let e = JwksEndpoint::open(&s.url, settings(3_600_000)).expect("open");
        *s.serve.lock().unwrap() = set(&["k1", "k2"]);
        assert!(e.missing_key_id("k2"));
        eventually("the expedited refresh", || kids(&e) == ["k1", "k2"]);
        // Another id not in the set: looked up once, then not again for a
        // minute; an absurdly long id never.
        assert!(e.missing_key_id("nope"));
        assert!(!e.missing_key_id("nope"));
        assert!(!e.missing_key_id(&"x".repeat(MISSING_KID_MAX_LEN + 1)));
        let hits = s.hits.load(Ordering::SeqCst);
        drop(e);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            s.hits.load(Ordering::SeqCst) <= hits + 1,
            "refresh thread outlived its endpoint"
        );
    }

    #[test]
    fn an_oversized_or_unreachable_jwks_fails_the_start() {
        let s = server(format!(
            "{{\"keys\": [], \"pad\": \"{}\"}}",
            "x".repeat(MAX_JWKS_BYTES as usize)
        ));
        let err = JwksEndpoint::open(&s.url, settings(1000)).unwrap_err();
        assert!(err.contains("Could not refresh JWKS"), "{err}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        assert!(
            JwksEndpoint::open(&format!("http://127.0.0.1:{port}/jwks"), settings(1000)).is_err()
        );
    }

    #[test]
    fn a_file_jwks_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, set(&["f1"])).expect("write");
        let e = JwksEndpoint::open(&format!("file://{}", path.display()), settings(1000))
            .expect("open");
        assert_eq!(kids(&e), ["f1"]);
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::write(&path, set(&["f2"])).expect("write");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        assert_eq!(kids(&e), ["f2"]);
        assert!(!e.missing_key_id("f3"), "a file JWKS is not fetched");
    }
}
