//! What a SASL listener accepts, built once from the broker's keys as Kafka
//! reads them: the enabled mechanisms
//! (`listener.name.<l>.sasl.enabled.mechanisms`, else
//! `sasl.enabled.mechanisms`), PLAIN's users from the JAAS configuration
//! (`listener.name.<l>.plain.sasl.jaas.config`, else the JAAS file's
//! `<l>.KafkaServer` or `KafkaServer` section), and the users the
//! bitnami/kafka image declares in its environment (`KAFKA_CLIENT_USERS`,
//! `KAFKA_CLIENT_PASSWORDS`), which it gives a PLAIN password and SCRAM
//! credentials.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::security::jaas::{self, JaasEntry};
use crate::security::jwks::{self, HttpSettings, JwksEndpoint};
use crate::security::oauthbearer::{self, JwksValidator, OAuthValidator, UnsecuredOptions};
use crate::security::scram::{ScramCredential, ScramMechanism, MIN_ITERATIONS};

/// The mechanisms kastle's server implements.
pub const SUPPORTED_MECHANISMS: [&str; 4] =
    ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// One SASL listener's settings.
#[derive(Debug, Clone, Default)]
pub struct ListenerSasl {
    /// As configured, in order (what SaslHandshake lists).
    pub enabled_mechanisms: Vec<String>,
    /// PLAIN: user name → password.
    pub plain_users: BTreeMap<String, String>,
    /// OAUTHBEARER's token validator, when the mechanism is enabled.
    pub oauth: Option<OAuthValidator>,
    /// KIP-368: `connections.max.reauth.ms` per mechanism
    /// (`listener.name.<l>.<mechanism>.` then `listener.name.<l>.`
    /// prefixed, then the broker's); 0 or less leaves sessions unbounded.
    pub max_reauth_ms: HashMap<String, i64>,
}

/// Every SASL listener's settings, and credentials declared outside the
/// credential store (the bitnami image's users).
#[derive(Debug, Clone, Default)]
pub struct SaslSettings {
    pub listeners: HashMap<String, ListenerSasl>,
    pub declared_scram: BTreeMap<(String, ScramMechanism), ScramCredential>,
}

impl SaslSettings {
    /// Builds the settings of `listeners` (name, uses SASL) from the broker's
    /// keys (`key`), the JAAS file (if any) and the environment (`env`).
    pub fn build(
        listeners: &[(String, bool)],
        key: impl Fn(&str) -> Option<String>,
        jaas_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SaslSettings, String> {
        let sections = match jaas_file {
            Some(p) => jaas::read_jaas_file(p)?,
            None => BTreeMap::new(),
        };
        let bitnami = bitnami_users(&env)?;
        let allowed_urls = jwks::allowed_urls(env("KAFKA_OPTS").as_deref());
        let bitnami_listener = env("KAFKA_CLIENT_LISTENER_NAME");
        let mut out = SaslSettings::default();
        for (name, uses_sasl) in listeners {
            if !uses_sasl {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            let mechanisms = key(&format!("listener.name.{lower}.sasl.enabled.mechanisms"))
                .or_else(|| key("sasl.enabled.mechanisms"))
                .unwrap_or_else(|| "GSSAPI".into());
            let enabled_mechanisms: Vec<String> = mechanisms
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            // A mechanism's JAAS entries: its listener-prefixed
            // `sasl.jaas.config`, else the JAAS file's section.
            let jaas_of = |mechanism: &str| -> Result<Vec<JaasEntry>, String> {
                let k = format!("listener.name.{lower}.{mechanism}.sasl.jaas.config");
                Ok(match key(&k) {
                    Some(v) => jaas::parse_jaas_config(&v).map_err(|e| format!("{k}: {e}"))?,
                    None => sections
                        .get(&format!("{lower}.KafkaServer"))
                        .or_else(|| sections.get("KafkaServer"))
                        .cloned()
                        .unwrap_or_default(),
                })
            };
            let mut plain_users = BTreeMap::new();
            if enabled_mechanisms.iter().any(|m| m == "PLAIN") {
                plain_users = jaas::plain_users(&jaas_of("plain")?);
            }
            // Kafka's listener and mechanism overrides of a key.
            let scoped = |mechanism: &str, k: &str| {
                key(&format!("listener.name.{lower}.{mechanism}.{k}"))
                    .or_else(|| key(&format!("listener.name.{lower}.{k}")))
                    .or_else(|| key(k))
            };
            let oauth = if enabled_mechanisms.iter().any(|m| m == "OAUTHBEARER") {
                Some(oauth_validator(
                    &lower,
                    &jaas_of("oauthbearer")?,
                    &allowed_urls,
                    |k| scoped("oauthbearer", k),
                )?)
            } else {
                None
            };
            let mut max_reauth_ms = HashMap::new();
            for m in &enabled_mechanisms {
                let k = "connections.max.reauth.ms";
                let ms = match scoped(&m.to_ascii_lowercase(), k) {
                    Some(v) => v
                        .trim()
                        .parse::<i64>()
                        .map_err(|e| format!("listener {name}: {k} {v:?}: {e}"))?,
                    None => 0,
                };
                max_reauth_ms.insert(m.clone(), ms);
            }
            let bitnami_here = bitnami_listener
                .as_deref()
                .is_none_or(|l| l.eq_ignore_ascii_case(name));
            if bitnami_here {
                for (u, p) in &bitnami {
                    plain_users.entry(u.clone()).or_insert_with(|| p.clone());
                }
            }
            if let Some(m) = enabled_mechanisms
                .iter()
                .find(|m| !SUPPORTED_MECHANISMS.contains(&m.as_str()))
            {
                tracing::warn!(listener = %name, mechanism = %m, "SASL mechanism not implemented; clients asking for it are refused");
            }
            out.listeners.insert(
                name.clone(),
                ListenerSasl {
                    enabled_mechanisms,
                    plain_users,
                    oauth,
                    max_reauth_ms,
                },
            );
        }
        for (u, p) in &bitnami {
            for m in ScramMechanism::ALL {
                let salt = uuid::Uuid::new_v4().into_bytes();
                out.declared_scram.insert(
                    (u.clone(), m),
                    ScramCredential::from_password(m, p, &salt, MIN_ITERATIONS),
                );
            }
        }
        Ok(out)
    }
}

/// OAUTHBEARER's validator for listener `lower`: the server callback
/// handler class decides (`sasl.server.callback.handler.class`, listener
/// and mechanism prefixed as Kafka reads it). Without one, Kafka's unsecured
/// handler with the `OAuthBearerLoginModule` entry's options.
fn oauth_validator(
    lower: &str,
    entries: &[JaasEntry],
    allowed_urls: &[String],
    key: impl Fn(&str) -> Option<String>,
) -> Result<OAuthValidator, String> {
    let handler = key("sasl.server.callback.handler.class")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let options = entries
        .iter()
        .find(|e| e.login_module == oauthbearer::LOGIN_MODULE)
        .map(|e| e.options.clone())
        .unwrap_or_default();
    match handler.as_deref() {
        None | Some(oauthbearer::UNSECURED_HANDLER) => {
            UnsecuredOptions::from_options(&options)
                .map(OAuthValidator::Unsecured)
                .map_err(|e| format!("listener.name.{lower}.oauthbearer.sasl.jaas.config: {e}"))
        }
        Some(c) if oauthbearer::VALIDATOR_HANDLERS.contains(&c) => {
            let url_key = "sasl.oauthbearer.jwks.endpoint.url";
            let url = key(url_key)
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    format!("The OAuth configuration option {url_key} value is required (listener {lower}, {c})")
                })?;
            jwks::check_url(url_key, &url, allowed_urls)?;
            let jwks = JwksEndpoint::open(&url, jwks_http_settings(&options, &key)?)
                .map_err(|e| format!("listener {lower}: {url_key} {url}: {e}"))?;
            let expected_audience = key("sasl.oauthbearer.expected.audience")
                .unwrap_or_default()
                .split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect();
            let skew = key("sasl.oauthbearer.clock.skew.seconds").unwrap_or_else(|| "30".into());
            let clock_skew_s = skew
                .trim()
                .parse::<u64>()
                .map_err(|e| format!("sasl.oauthbearer.clock.skew.seconds {skew:?}: {e}"))?;
            let claim = |k: &str, default: &str| {
                key(k)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| default.to_string())
            };
            Ok(OAuthValidator::Jwks(Box::new(JwksValidator {
                jwks,
                expected_audience,
                expected_issuer: key("sasl.oauthbearer.expected.issuer")
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty()),
                sub_claim: claim("sasl.oauthbearer.sub.claim.name", "sub"),
                scope_claim: claim("sasl.oauthbearer.scope.claim.name", "scope"),
                clock_skew_s,
            })))
        }
        Some(c) => Err(format!(
            "listener.name.{lower}.oauthbearer.sasl.server.callback.handler.class: {c} is not supported"
        )),
    }
}

/// How an `http(s):` JWKS is refreshed (`sasl.oauthbearer.jwks.endpoint.*`
/// with Kafka's defaults and checks) and which roots its `https:` server is
/// checked against: the OAuthBearerLoginModule entry's `ssl.truststore.*`
/// options, as Kafka's `JaasOptionsUtils.createSSLSocketFactory` takes them.
fn jwks_http_settings(
    options: &BTreeMap<String, String>,
    key: &impl Fn(&str) -> Option<String>,
) -> Result<HttpSettings, String> {
    let ms = |k: &str, default: u64| -> Result<u64, String> {
        match key(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n as u64),
                Ok(_) => Err(format!(
                    "The OAuth configuration option {k} value must be at least 0"
                )),
                Err(e) => Err(format!("{k} {v:?}: {e}")),
            },
        }
    };
    let refresh = ms("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000)?;
    if refresh == 0 {
        return Err("JWKS validation key refresh configuration value retryWaitMs value must be positive (sasl.oauthbearer.jwks.endpoint.refresh.ms)".into());
    }
    let backoff = ms("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", 100)?;
    let backoff_max = ms(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
        10_000,
    )?;
    if backoff_max < backoff {
        return Err(format!(
            "retryBackoffMaxMs value ({backoff_max}) is less than retryBackoffMs value ({backoff})"
        ));
    }
    let opt = |k: &str| {
        options
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if opt("ssl.endpoint.identification.algorithm").is_none()
        && options.contains_key("ssl.endpoint.identification.algorithm")
    {
        return Err("ssl.endpoint.identification.algorithm= in the OAuthBearerLoginModule options: turning off the JWKS endpoint's host name check is not supported".into());
    }
    let roots = crate::security::tls::truststore_certificates(&opt)
        .map_err(|e| format!("the OAuthBearerLoginModule options: {e}"))?
        .map(|(_, certs)| certs);
    // Kafka's `JaasOptionsUtils.createSSLSocketFactory`: the entry's
    // `ssl.*` client options, keystore included, for an https endpoint.
    let client_cert = crate::security::tls::client_keystore(&opt)
        .map_err(|e| format!("the OAuthBearerLoginModule options: {e}"))?
        .map(Arc::new);
    Ok(HttpSettings {
        refresh: Duration::from_millis(refresh),
        retry_backoff: Duration::from_millis(backoff),
        retry_backoff_max: Duration::from_millis(backoff_max),
        roots,
        client_cert,
    })
}

/// bitnami/kafka's `KAFKA_CLIENT_USERS` and `KAFKA_CLIENT_PASSWORDS`:
/// comma-separated, paired by position.
fn bitnami_users(env: &impl Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, String> {
    let Some(users) = env("KAFKA_CLIENT_USERS") else {
        return Ok(Vec::new());
    };
    let passwords = env("KAFKA_CLIENT_PASSWORDS").unwrap_or_default();
    let users: Vec<&str> = users.split(',').map(str::trim).collect();
    let passwords: Vec<&str> = passwords.split(',').map(str::trim).collect();
    if users.len() != passwords.len() {
        return Err(format!(
            "KAFKA_CLIENT_USERS names {} users but KAFKA_CLIENT_PASSWORDS has {} passwords",
            users.len(),
            passwords.len()
        ));
    }
    Ok(users
        .into_iter()
        .zip(passwords)
        .filter(|(u, _)| !u.is_empty())
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_keys_then_global_then_bitnami() {
        let keys: BTreeMap<&str, &str> = [
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"a\";",
            ),
        ]
        .into();
        let env: BTreeMap<&str, &str> = [
            ("KAFKA_CLIENT_USERS", "bob"),
            ("KAFKA_CLIENT_PASSWORDS", "b"),
        ]
        .into();
        let s = SaslSettings::build(
            &[("SASL_PLAINTEXT".into(), true), ("PLAINTEXT".into(), false)],
            |k| keys.get(k).map(|v| v.to_string()),
            None,
            |k| env.get(k).map(|v| v.to_string()),
        )
        .expect("valid");
        let l = &s.listeners["SASL_PLAINTEXT"];
        assert_eq!(l.enabled_mechanisms, ["PLAIN", "SCRAM-SHA-256"]);
        assert_eq!(l.plain_users.len(), 2);
        assert!(!s.listeners.contains_key("PLAINTEXT"));
        assert!(s
            .declared_scram
            .contains_key(&("bob".into(), ScramMechanism::Sha512)));
    }
}
