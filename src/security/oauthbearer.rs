//! SASL/OAUTHBEARER (RFC 7628, KIP-255) as Kafka's server checks it: the
//! client's initial response (`n,[a=authzid],\x01auth=Bearer <jwt>\x01
//! [key=value\x01]*\x01`), and the token's validation by one of Kafka's two
//! server callback handlers: the default unsecured one
//! (`OAuthBearerUnsecuredValidatorCallbackHandler`: `alg: none` JWS, its
//! options from the `OAuthBearerLoginModule` JAAS entry) or
//! `OAuthBearerValidatorCallbackHandler` (signed JWTs checked against a
//! JWKS, kept current by `security::jwks`, with the `jsonwebtoken` crate;
//! `sasl.oauthbearer.*` keys). A
//! rejected token is answered with RFC 7628's JSON error challenge.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::security::jwks::JwksEndpoint;
use base64::Engine;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

pub const LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
/// Kafka 4.x's validating handler, and its pre-3.x location.
pub const VALIDATOR_HANDLERS: [&str; 2] = [
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];
/// The default (unsecured) handler, when named explicitly.
pub const UNSECURED_HANDLER: &str = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

/// What the client sent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInitial {
    /// Empty when the client named none.
    pub authzid: String,
    pub token: String,
}

/// A token the validator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub principal: String,
    /// The `exp` claim, in epoch milliseconds: the credential's expiry
    /// (KIP-368 bounds the session by it).
    pub expiry_ms: i64,
}

/// Why a token was refused: RFC 7628's error status (and scope), and the
/// reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: &'static str,
    pub scope: Option<String>,
    pub reason: String,
}

impl Rejection {
    fn invalid(reason: impl Into<String>) -> Rejection {
        Rejection {
            status: "invalid_token",
            scope: None,
            reason: reason.into(),
        }
    }

    /// The server's error challenge, formatted as Kafka's
    /// `OAuthBearerSaslServer.jsonErrorResponse` does.
    pub fn challenge(&self) -> String {
        let mut s = format!("{{\"status\":\"{}\"", self.status);
        if let Some(scope) = &self.scope {
            s.push_str(&format!(", \"scope\":\"{scope}\""));
        }
        s.push('}');
        s
    }
}

/// Parses the client's initial response as Kafka's
/// `OAuthBearerClientInitialResponse` does. Errors are Kafka's messages
/// (never shown to the client).
pub fn parse_client_initial(msg: &[u8]) -> Result<ClientInitial, String> {
    const INVALID: &str = "Invalid OAUTHBEARER client first message";
    let text = std::str::from_utf8(msg).map_err(|_| INVALID.to_string())?;
    let rest = text.strip_prefix("n,").ok_or(INVALID)?;
    let (authzid, rest) = match rest.strip_prefix("a=") {
        Some(r) => {
            let end = r.find(',').ok_or(INVALID)?;
            let name = &r[..end];
            if !valid_saslname(name) {
                return Err(INVALID.into());
            }
            (name.to_string(), &r[end..])
        }
        None => (String::new(), rest),
    };
    let pairs = rest
        .strip_prefix(",\u{1}")
        .and_then(|r| r.strip_suffix('\u{1}'))
        .ok_or(INVALID)?;
    let mut properties = BTreeMap::new();
    if !pairs.is_empty() {
        let body = pairs.strip_suffix('\u{1}').ok_or(INVALID)?;
        for pair in body.split('\u{1}') {
            let (k, v) = pair.split_once('=').ok_or(INVALID)?;
            let key_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic());
            let value_ok = !v.is_empty()
                && v.bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b));
            if !key_ok || !value_ok {
                return Err(INVALID.into());
            }
            properties.insert(k.to_string(), v.to_string());
        }
    }
    let auth = properties
        .get("auth")
        .ok_or("Invalid OAUTHBEARER client first message: 'auth' not specified")?;
    let invalid_auth = "Invalid OAUTHBEARER client first message: invalid 'auth' format";
    let (scheme, token) = auth.split_once(' ').ok_or(invalid_auth)?;
    let token = token.trim_start_matches(' ');
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    let body = token.trim_end_matches('=');
    let token_ok = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_~+/.".contains(&b));
    if !scheme_ok || !token_ok {
        return Err(invalid_auth.into());
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "Invalid scheme in OAUTHBEARER client first message: {scheme}"
        ));
    }
    Ok(ClientInitial {
        authzid,
        token: token.to_string(),
    })
}

/// RFC 7628's saslname: ASCII 0x01-0x7F but `=` and `,`, which appear
/// only as `=2C` and `=3D`.
fn valid_saslname(name: &str) -> bool {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'=' => {
                if !matches!(b.get(i + 1..i + 3), Some(b"2C") | Some(b"3D")) {
                    return false;
                }
                i += 3;
            }
            b',' | 0 | 0x80.. => return false,
            _ => i += 1,
        }
    }
    !b.is_empty()
}

/// The unsecured handler's options (`unsecuredValidator*` JAAS options).
#[derive(Debug, Clone)]
pub struct UnsecuredOptions {
    pub principal_claim: String,
    pub scope_claim: String,
    pub required_scope: Vec<String>,
    pub clock_skew_ms: i64,
}

impl UnsecuredOptions {
    /// From the `OAuthBearerLoginModule` entry's options; blank options
    /// take Kafka's defaults.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<UnsecuredOptions, String> {
        let opt = |k: &str| options.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let clock_skew_ms = match opt("unsecuredValidatorAllowableClockSkewMs") {
            None => 0,
            Some(v) => v
                .parse::<i32>()
                .map_err(|e| format!("unsecuredValidatorAllowableClockSkewMs {v:?}: {e}"))?,
        };
        if clock_skew_ms < 0 {
            return Err(format!(
                "Allowable clock skew millis must not be negative: {clock_skew_ms}"
            ));
        }
        Ok(UnsecuredOptions {
            principal_claim: opt("unsecuredValidatorPrincipalClaimName")
                .unwrap_or("sub")
                .to_string(),
            scope_claim: opt("unsecuredValidatorScopeClaimName")
                .unwrap_or("scope")
                .to_string(),
            required_scope: opt("unsecuredValidatorRequiredScope")
                .map(|s| {
                    s.split(' ')
                        .filter(|x| !x.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            clock_skew_ms: i64::from(clock_skew_ms),
        })
    }
}

/// `OAuthBearerValidatorCallbackHandler`'s settings.
#[derive(Clone)]
pub struct JwksValidator {
    pub jwks: Arc<JwksEndpoint>,
    pub expected_audience: Vec<String>,
    pub expected_issuer: Option<String>,
    pub sub_claim: String,
    pub scope_claim: String,
    pub clock_skew_s: u64,
}

impl std::fmt::Debug for JwksValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksValidator")
            .field("jwks", &self.jwks)
            .field("expected_audience", &self.expected_audience)
            .field("expected_issuer", &self.expected_issuer)
            .finish_non_exhaustive()
    }
}

/// A listener's token validator.
#[derive(Debug, Clone)]
pub enum OAuthValidator {
    Unsecured(UnsecuredOptions),
    Jwks(Box<JwksValidator>),
}

impl OAuthValidator {
    /// Validates `token` at `now_ms` (epoch milliseconds).
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<Token, Rejection> {
        match self {
            OAuthValidator::Unsecured(o) => validate_unsecured(o, token, now_ms),
            OAuthValidator::Jwks(v) => validate_signed(v, token),
        }
    }
}

fn decode_part(part: &str) -> Result<Map<String, Value>, Rejection> {
    let trimmed = part.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|_| Rejection::invalid("malformed Base64 URL encoded value"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Rejection::invalid("malformed JSON")),
    }
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| {
            Rejection::invalid(format!("The value of claim {name} is not of type Number"))
        }),
    }
}

/// A scope claim: one space-delimited string or an array of strings.
fn scope_of(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// `OAuthBearerUnsecuredValidatorCallbackHandler`'s checks, in its order.
fn validate_unsecured(o: &UnsecuredOptions, token: &str, now_ms: i64) -> Result<Token, Rejection> {
    let mut parts: Vec<&str> = token.split('.').collect();
    if token.ends_with('.') && parts.last() != Some(&"") {
        parts.push("");
    }
    if parts.len() != 3 {
        return Err(Rejection::invalid(
            "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values",
        ));
    }
    let header = decode_part(parts[0])?;
    let claims = decode_part(parts[1])?;
    if header.get("alg").and_then(Value::as_str) != Some("none") {
        return Err(Rejection::invalid(
            "Unsecured JWS must have 'none' for an algorithm",
        ));
    }
    if !parts[2].is_empty() {
        return Err(Rejection::invalid(
            "Unsecured JWS must not contain a digital signature",
        ));
    }
    let principal = match claims.get(&o.principal_claim) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(Rejection::invalid(format!(
                "The value of claim {} is not of type String",
                o.principal_claim
            )))
        }
        None => {
            return Err(Rejection::invalid(format!(
                "Required claim missing: {}",
                o.principal_claim
            )))
        }
    };
    let iat = number(&claims, "iat")?;
    let exp = number(&claims, "exp")?;
    let skew = o.clock_skew_ms as f64;
    if let Some(iat) = iat {
        if 1000.0 * iat > now_ms as f64 + skew {
            return Err(Rejection::invalid(format!(
                "The Issued At value ({iat} seconds) was after the indicated time ({now_ms} ms) plus allowable clock skew ({} ms)",
                o.clock_skew_ms
            )));
        }
    }
    let Some(exp) = exp else {
        return Err(Rejection::invalid("Required claim missing: exp"));
    };
    if now_ms as f64 - skew >= 1000.0 * exp {
        return Err(Rejection::invalid(format!(
            "The indicated time ({now_ms} ms) minus allowable clock skew ({} ms) was on or after the Expiration Time value ({exp} seconds)",
            o.clock_skew_ms
        )));
    }
    if let Some(iat) = iat {
        if exp <= iat {
            return Err(Rejection::invalid(format!(
                "The Expiration Time time ({exp} seconds) was not after the Issued At time ({iat} seconds)"
            )));
        }
    }
    let scope = scope_of(&claims, &o.scope_claim);
    if let Some(missing) = o.required_scope.iter().find(|r| !scope.contains(r)) {
        return Err(Rejection {
            status: "insufficient_scope",
            scope: Some(format!("[{}]", o.required_scope.join(", "))),
            reason: format!(
                "The provided scope ([{}]) was missing a required scope ({missing}).  All required scope elements: [{}]",
                scope.join(", "),
                o.required_scope.join(", ")
            ),
        });
    }
    Ok(Token {
        principal,
        expiry_ms: (exp * 1000.0).round() as i64,
    })
}

/// `OAuthBearerValidatorCallbackHandler`'s checks (jose4j there,
/// `jsonwebtoken` here): a signature by a key of the JWKS (by `kid`, else
/// any that fits), never `alg: none`, `exp` and `iat` required, the
/// expected audience and issuer, then the subject and scope claims.
fn validate_signed(v: &JwksValidator, token: &str) -> Result<Token, Rejection> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| Rejection::invalid(format!("Could not validate the access token: {e}")))?;
    let alg_name = format!("{:?}", header.alg);
    let keys = v.jwks.keys();
    let candidates: Vec<_> = keys
        .iter()
        .filter(|k| {
            let kid_ok = match (&header.kid, &k.common.key_id) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            };
            let alg_ok = k
                .common
                .key_algorithm
                .is_none_or(|a| format!("{a:?}") == alg_name);
            kid_ok && alg_ok
        })
        .collect();
    if candidates.is_empty() {
        // Kafka's `RefreshingHttpsJwksVerificationKeyResolver`: the token
        // is refused, and the JWKS looked up again for the next one.
        if let Some(kid) = &header.kid {
            v.jwks.missing_key_id(kid);
        }
    }
    let mut validation = Validation::new(header.alg);
    validation.leeway = v.clock_skew_s;
    validation.set_required_spec_claims(&["exp"]);
    if !v.expected_audience.is_empty() {
        validation.set_audience(&v.expected_audience);
    }
    if let Some(iss) = &v.expected_issuer {
        validation.set_issuer(&[iss]);
    }
    let mut last = format!(
        "no key of the JWKS matches kid {:?} and alg {alg_name}",
        header.kid
    );
    let mut claims = None;
    for jwk in candidates {
        let key = match DecodingKey::from_jwk(jwk) {
            Ok(k) => k,
            Err(e) => {
                last = format!("unusable JWK: {e}");
                continue;
            }
        };
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let Some(claims) = claims else {
        return Err(Rejection::invalid(format!(
            "Could not validate the access token: {last}"
        )));
    };
    if number(&claims, "iat")?.is_none() {
        return Err(Rejection::invalid(
            "Could not validate the access token: No Issued At (iat) claim present.",
        ));
    }
    let exp = number(&claims, "exp")?.unwrap_or(0.0);
    let sub = match claims.get(&v.sub_claim) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            return Err(Rejection::invalid(format!(
                "{} value must be non-null and non-empty",
                v.sub_claim
            )))
        }
    };
    Ok(Token {
        principal: sub,
        expiry_ms: (exp * 1000.0).round() as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    }

    fn unsecured(claims: &str) -> String {
        format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(claims))
    }

    #[test]
    fn parses_initial_responses_as_kafka() {
        let t = parse_client_initial(b"n,,\x01auth=Bearer abc.def.\x01\x01").expect("valid");
        assert_eq!(t.token, "abc.def.");
        assert_eq!(t.authzid, "");
        let t = parse_client_initial(b"n,a=alice,\x01auth=bearer x\x01traceId=7\x01\x01")
            .expect("valid");
        assert_eq!((t.authzid.as_str(), t.token.as_str()), ("alice", "x"));
        for bad in [
            &b"n,,\x01\x01"[..],
            b"n,,\x01auth=Bearer x\x01",
            b"y,,\x01auth=Bearer x\x01\x01",
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"n,,\x01au-th=x\x01auth=Bearer x\x01\x01",
            b"\x01",
        ] {
            assert!(parse_client_initial(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checks_unsecured_tokens() {
        let o = UnsecuredOptions::from_options(
            &[(
                "unsecuredValidatorRequiredScope".to_string(),
                "write".to_string(),
            )]
            .into(),
        )
        .expect("valid");
        let now = 1_700_000_000_000;
        let ok =
            unsecured(r#"{"sub":"alice","iat":1699999999,"exp":1700000100,"scope":"read write"}"#);
        let v = OAuthValidator::Unsecured(o);
        assert_eq!(
            v.validate(&ok, now),
            Ok(Token {
                principal: "alice".into(),
                expiry_ms: 1_700_000_100_000
            })
        );
        let expired = unsecured(r#"{"sub":"alice","exp":1699999999,"scope":"write"}"#);
        assert_eq!(
            v.validate(&expired, now).unwrap_err().status,
            "invalid_token"
        );
        let no_scope = unsecured(r#"{"sub":"alice","exp":1700000100,"scope":"read"}"#);
        let r = v.validate(&no_scope, now).unwrap_err();
        assert_eq!(
            r.challenge(),
            r#"{"status":"insufficient_scope", "scope":"[write]"}"#
        );
        let no_sub = unsecured(r#"{"exp":1700000100,"scope":"write"}"#);
        assert!(v.validate(&no_sub, now).is_err());
        let signed = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"none"}"#),
            b64(r#"{"sub":"a","exp":1700000100,"scope":"write"}"#)
        );
        assert!(v.validate(&signed, now).is_err());
        let hs = format!(
            "{}.{}.",
            b64(r#"{"alg":"HS256"}"#),
            b64(r#"{"sub":"a","exp":1700000100,"scope":"write"}"#)
        );
        assert_eq!(
            v.validate(&hs, now).unwrap_err().challenge(),
            r#"{"status":"invalid_token"}"#
        );
    }
}
