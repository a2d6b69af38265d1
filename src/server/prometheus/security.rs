//! Protecting the Prometheus endpoint (kastle's own keys, Kafka has no
//! exporter): TLS when `metrics.prometheus.ssl.keystore.location` (a PEM
//! file with the certificate chain and the private key) is set, read with
//! the listeners' TLS code so every `metrics.prometheus.ssl.*` key means what
//! Kafka's `ssl.*` key means; HTTP basic authentication when
//! `metrics.prometheus.basic.auth.user` and `.password` are set, the
//! credentials compared in constant time.

use std::sync::Arc;

use base64::Engine;
use subtle::ConstantTimeEq;
use tokio_rustls::TlsAcceptor;

use crate::config::BrokerConfig;
use crate::security::tls::build_server;
use crate::security::SecurityProtocol;

const SSL_PREFIX: &str = "metrics.prometheus.ssl.";
pub const BASIC_USER_KEY: &str = "metrics.prometheus.basic.auth.user";
pub const BASIC_PASSWORD_KEY: &str = "metrics.prometheus.basic.auth.password";

/// The endpoint's TLS acceptor and basic-auth credentials, if configured.
#[derive(Clone, Default)]
pub struct EndpointSecurity {
    pub tls: Option<TlsAcceptor>,
    /// `user:password`, as a client's `Authorization: Basic` decodes to.
    credentials: Option<Arc<[u8]>>,
}

impl EndpointSecurity {
    /// Reads the keys; a half-configured or unreadable setting is an error
    /// naming the key, so that the broker refuses to start.
    pub fn from_config(config: &BrokerConfig) -> Result<EndpointSecurity, String> {
        let set = |key: &str| {
            config
                .value(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let tls = if set("metrics.prometheus.ssl.keystore.location").is_some() {
            let get = |key: &str| match key.strip_prefix("ssl.") {
                Some(rest) => set(&format!("{SSL_PREFIX}{rest}"))
                    .or_else(|| (rest == "keystore.type").then(|| "PEM".to_string())),
                None => None,
            };
            let server = build_server("metrics.prometheus", SecurityProtocol::Ssl, &get)
                .map_err(|e| e.replace(" ssl.", " metrics.prometheus.ssl."))?;
            Some(TlsAcceptor::from(server.config))
        } else {
            None
        };
        let credentials = match (set(BASIC_USER_KEY), config.value(BASIC_PASSWORD_KEY)) {
            (None, None) => None,
            (Some(user), Some(password)) => {
                if user.contains(':') {
                    return Err(format!("{BASIC_USER_KEY}: a user name cannot contain ':'"));
                }
                Some(Arc::from(format!("{user}:{password}").into_bytes()))
            }
            _ => {
                return Err(format!(
                    "{BASIC_USER_KEY} and {BASIC_PASSWORD_KEY} must be set together"
                ))
            }
        };
        Ok(EndpointSecurity { tls, credentials })
    }

    /// Whether a request with this `Authorization` header value may scrape.
    pub fn authorized(&self, authorization: Option<&str>) -> bool {
        let Some(expected) = &self.credentials else {
            return true;
        };
        let Some(value) = authorization.map(str::trim) else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        match base64::engine::general_purpose::STANDARD.decode(token.trim()) {
            Ok(given) => bool::from(given.as_slice().ct_eq(expected)),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(entries: &[(&str, &str)]) -> Result<EndpointSecurity, String> {
        let o: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (c, _) = BrokerConfig::load(None, Vec::new(), &o).map_err(|e| e.to_string())?;
        EndpointSecurity::from_config(&c)
    }

    #[test]
    fn basic_auth_checks_the_credentials() {
        let s = security(&[(BASIC_USER_KEY, "prom"), (BASIC_PASSWORD_KEY, "s3:cret")]).unwrap();
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        assert!(s.authorized(Some(&format!("Basic {}", b64("prom:s3:cret")))));
        assert!(s.authorized(Some(&format!("basic  {}", b64("prom:s3:cret")))));
        assert!(!s.authorized(Some(&format!("Basic {}", b64("prom:wrong")))));
        assert!(!s.authorized(Some("Bearer x")));
        assert!(!s.authorized(Some("Basic !!!")));
        assert!(!s.authorized(None));
        assert!(security(&[]).unwrap().authorized(None));
        assert!(security(&[(BASIC_USER_KEY, "prom")]).is_err());
    }

    #[test]
    fn a_missing_keystore_file_is_named() {
        let e = security(&[(
            "metrics.prometheus.ssl.keystore.location",
            "/nonexistent.pem",
        )])
        .err()
        .unwrap();
        assert!(
            e.contains("metrics.prometheus.ssl.keystore.location"),
            "{e}"
        );
    }
}
