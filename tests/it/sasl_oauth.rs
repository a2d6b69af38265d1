//! SASL/OAUTHBEARER on a SASL_PLAINTEXT listener: unsecured (`alg: none`)
//! tokens checked as Kafka's default handler checks them, signed JWTs
//! (RS256, ES256, made here with the `jsonwebtoken` crate) checked against
//! a JWKS file by `OAuthBearerValidatorCallbackHandler`, and Kafka's
//! failure flow: the JSON error challenge, the client's `\x01`, then
//! SASL_AUTHENTICATION_FAILED and the close.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kafka_protocol::messages::SaslAuthenticateRequest;

use crate::sasl::{handshake, metadata_ok, sasl_broker, sasl_broker_wrapped};
use crate::support::*;

/// A fixed RSA test key (its modulus below, for the JWKS).
const RSA_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCyRDMkjtcfpunk
fejcSfvJ+5OlkDb7JkZuLag+8PfDel7Ecmfn+5GcWjDg8YhYaPi8wuM7Us9nfVFG
+cnsVzxoqLNMaqOlNWBd/h3xv7igwEqNi2p8HD1XN6qKvQwoG5XCP0BEHGHXrDuq
rZbdDYfEjRThYeo+Z1aWhOGy9s9DZzWpJvjTkOKnDa4Ow3+w6MkmRvdHbkY8AZKW
+XzOWoO6jxZDCZJ9kOQew5ED4eaGAUjKTf2vGQNlYgsxbw7rVLJlXX0X23ZGkdlh
tUCglljjm+JXhfRfHQGyEEV/i9uL7pPXWfNP/weoJX8LGMWlO2lsMj6SyH2EbAdg
1LkhxmxTAgMBAAECggEABoY/Rol0nCb0WbWCzhUzG77GaTSj0bTvHPc00i21k7gp
CCpiKfgBUBlvWO93tjly6Rp+gI+H7oy3apz+MLucoJctpyoiZSVUxC8Zxd0Z38aw
TW/nbM8HyIDNqbHZ/dnMm5H/D/JN+zvFgnpDkqf9HeRGYF1aDZo9baYQlweeqSPQ
bL+qnVr9my7eHPxHPJumZ+zTIPY8Kxw9qeJvyCOQzghjj4vg52INIXTtSwXBk2SJ
N7RB3g5/68LJkCaMfhjentsn2Sr6Huc33VV/DI8s6Az0vTwtO6tXng2Oc4/nEw3z
zjUKeuRYJxcGrLS96K/ZHZrFnvwEvvC+Y7DGGzuo2QKBgQDhtH4qr7I708rCn0eb
thsxgv14nne6g2t5s+wcIWf1ZZUPorJxb1v3ENMlSeodaM/HEWSUzWfN7g6TaTJR
/GbuGCOlITUZ4prTKVauRJjbWtn8nv+e6NbHXFHic6njUagVYdlBoQeN7aCx7yUO
6rE4Sqm5AO/FDmtJ8MB25eMahwKBgQDKMafpoZMSAVbNvOJ53E/isTj9HSbsOy3I
fD2BW8viKDGh4ZGh702GiluKEG83KDIlYEwjEZh+KdRMPk9pNdJ5bbd+vwqXXD6J
PufIw4k2fh7b/PJr7yh742sgkB/uu7wU3Z9b0QgvOmdTktMuY9vyLTivj8Adxb2+
OVTEGdhW1QKBgHGshOqcyIiHN5Rjwh3zTqjWDzDjputh6wxFiMH2NTSLr9JLH9Iv
wsKhT6Z1HpsnQZZB9UVYWlKF9gNaNQTDuVdrAvDU07iwv0dgh46Hb/DyRd2MerOf
EyUfIwKJPGQHqT7zpAcAwhxCNO/IwQJNQ2pVeDt79EZr5686uMRpLcMbAoGAY9Yw
+wN1Ayb2HZBuo41NRLoNUa3bUjnGWYA/Pmh9O6ZtG2mt5y+qMAyRNpL2111ZpWrv
LUG68lDlKuB5hZG1449xU3wxVpuNpWcSO+eREP8lbapwaSsl6kZY1zNTESZRsFve
HBAS4n8MFhAhhn54VBRQMR/h1NGW5x6X5Fx+niECgYEAsj3vOckvWhSJuAP+Gj/N
eEalSaWN3Zf89pLhv8YaqAVA8ZjBatSneTL6pPhVU9pfSGSOTa81qokei87OXfy1
4P4e1Hp8SttekNdd62H1uYqBRMxOqaNIdM9bxpjxVKaB9K0I6Iq2I12Czbuhp13m
neCHkf5rQaVFA/pmDdPmFOA=
-----END PRIVATE KEY-----";
const RSA_N: &str = "skQzJI7XH6bp5H3o3En7yfuTpZA2-yZGbi2oPvD3w3pexHJn5_uRnFow4PGIWGj4vMLjO1LPZ31RRvnJ7Fc8aKizTGqjpTVgXf4d8b-4oMBKjYtqfBw9Vzeqir0MKBuVwj9ARBxh16w7qq2W3Q2HxI0U4WHqPmdWloThsvbPQ2c1qSb405Dipw2uDsN_sOjJJkb3R25GPAGSlvl8zlqDuo8WQwmSfZDkHsORA-HmhgFIyk39rxkDZWILMW8O61SyZV19F9t2RpHZYbVAoJZY45viV4X0Xx0BshBFf4vbi-6T11nzT_8HqCV_CxjFpTtpbDI-ksh9hGwHYNS5IcZsUw";

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn unsecured(claims: &str) -> String {
    format!(
        "{}.{}.",
        B64URL.encode(r#"{"alg":"none"}"#),
        B64URL.encode(claims)
    )
}

fn initial(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// SaslAuthenticate v2: (error, message, auth bytes, session lifetime).
fn sasl_auth(c: &mut Client, token: &[u8]) -> (i16, Option<String>, Vec<u8>, i64) {
    let r = c.call(
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
    );
    (
        r.error_code,
        r.error_message.map(|m| m.to_string()),
        r.auth_bytes.to_vec(),
        r.session_lifetime_ms,
    )
}

fn oauth_login(port: u16, token: &str) -> (Client, (i16, Option<String>, Vec<u8>, i64)) {
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "OAUTHBEARER", 1).0, NONE);
    let r = sasl_auth(&mut c, &initial(token));
    (c, r)
}

/// Kafka's failure flow for a refused token: the challenge, then the
/// client's `\x01` is failed with it as the message, then the close.
fn refused_with(port: u16, token: &str, challenge: &str) {
    let (mut c, (code, msg, bytes, _)) = oauth_login(port, token);
    assert_eq!((code, msg), (NONE, None));
    assert_eq!(String::from_utf8_lossy(&bytes), challenge);
    let (code, msg, _, _) = sasl_auth(&mut c, b"\x01");
    assert_eq!(code, E::SaslAuthenticationFailed.code());
    assert_eq!(msg.as_deref(), Some(challenge));
    c.expect_closed("after the failed OAUTHBEARER exchange");
}

#[test]
fn unsecured_tokens_authenticate_and_bad_ones_get_the_error_challenge() {
    let jaas = "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorRequiredScope=\"kafka\" unsecuredValidatorPrincipalClaimName=\"user\";";
    let (_b, port) = sasl_broker(&[
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=OAUTHBEARER",
        jaas,
        "connection.failed.authentication.delay.ms=0",
    ]);
    let now = now_s();
    let good = unsecured(&format!(
        r#"{{"user":"alice","iat":{now},"exp":{},"scope":"read kafka"}}"#,
        now + 60
    ));
    let (mut c, (code, msg, _, lifetime)) = oauth_login(port, &good);
    assert_eq!((code, msg), (NONE, None));
    // The session ends with the token (no connections.max.reauth.ms).
    assert!((50_000..=60_000).contains(&lifetime), "{lifetime}");
    metadata_ok(&mut c);

    let expired = unsecured(&format!(
        r#"{{"user":"alice","iat":{},"exp":{},"scope":"kafka"}}"#,
        now - 120,
        now - 60
    ));
    refused_with(port, &expired, r#"{"status":"invalid_token"}"#);
    let no_scope = unsecured(&format!(
        r#"{{"user":"alice","exp":{},"scope":"read"}}"#,
        now + 60
    ));
    refused_with(
        port,
        &no_scope,
        r#"{"status":"insufficient_scope", "scope":"[kafka]"}"#,
    );

    // An authorization id other than the token's principal.
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "OAUTHBEARER", 1).0, NONE);
    let msg = format!("n,a=bob,\x01auth=Bearer {good}\x01\x01");
    let (code, msg, _, _) = sasl_auth(&mut c, msg.as_bytes());
    assert_eq!(code, E::SaslAuthenticationFailed.code());
    assert_eq!(
        msg.as_deref(),
        Some("Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)")
    );
    c.expect_closed("after a foreign authorization id");
    // Not an OAUTHBEARER message at all.
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "OAUTHBEARER", 1).0, NONE);
    let (code, msg, _, _) = sasl_auth(&mut c, b"\x01");
    assert_eq!(code, E::SaslAuthenticationFailed.code());
    assert_eq!(
        msg.as_deref(),
        Some("Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER")
    );
    c.expect_closed("after a malformed message");
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &serde_json::Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_string());
    jsonwebtoken::encode(&h, claims, key).expect("sign")
}

#[test]
fn signed_tokens_are_checked_against_the_jwks_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("EC key");
    let point = ec.public_key_raw();
    let (x, y) = (&point[1..33], &point[33..65]);
    let jwks = serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "r1", "alg": "RS256", "use": "sig", "n": RSA_N, "e": "AQAB"},
        {"kty": "EC", "kid": "e1", "crv": "P-256", "x": B64URL.encode(x), "y": B64URL.encode(y)},
    ]});
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string()).expect("write JWKS");
    let file_url = format!("file://{}", path.display());
    let url = format!(
        "listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.jwks.endpoint.url={file_url}"
    );
    let config = [
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=OAUTHBEARER,PLAIN",
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        &url,
        "sasl.oauthbearer.expected.audience=kafka",
        "sasl.oauthbearer.expected.issuer=https://idp.example",
        "connection.failed.authentication.delay.ms=0",
    ];
    // Kafka 4.x reaches a JWKS URL only when the JVM property
    // org.apache.kafka.sasl.oauthbearer.allowed.urls lists it.
    let l = format!(
        "PLAINTEXT://127.0.0.1:{},SASL_PLAINTEXT://127.0.0.1:{}",
        free_port(),
        free_port()
    );
    let (listeners, advertised) = (
        format!("listeners={l}"),
        format!("advertised.listeners={l}"),
    );
    let mut refused =
        Broker::spawn_only(&[&[listeners.as_str(), &advertised], &config[..]].concat());
    let status = refused.wait_exit(std::time::Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| !s.success()),
        "started with an unlisted JWKS URL"
    );
    assert!(
        refused.stderr().contains(
            "Update the system property 'org.apache.kafka.sasl.oauthbearer.allowed.urls'"
        ),
        "{}",
        refused.stderr()
    );
    let opts =
        format!("KAFKA_OPTS=-Xmx1g -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={file_url}");
    let (_b, port) = sasl_broker_wrapped(&["env", &opts], &config);
    let rsa = EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).expect("RSA key");
    let es = EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).expect("EC key");
    let now = now_s();
    let claims = |sub: &str, aud: &str, iss: &str| serde_json::json!({"sub": sub, "aud": aud, "iss": iss, "iat": now, "exp": now + 30});
    let ok = claims("alice", "kafka", "https://idp.example");
    for token in [
        sign(Algorithm::RS256, "r1", &rsa, &ok),
        sign(Algorithm::ES256, "e1", &es, &ok),
    ] {
        let (mut c, (code, msg, _, lifetime)) = oauth_login(port, &token);
        assert_eq!((code, msg), (NONE, None));
        assert!((20_000..=30_000).contains(&lifetime), "{lifetime}");
        metadata_ok(&mut c);
    }
    let invalid = r#"{"status":"invalid_token"}"#;
    for token in [
        // Another audience, another issuer.
        sign(
            Algorithm::RS256,
            "r1",
            &rsa,
            &claims("alice", "other", "https://idp.example"),
        ),
        sign(
            Algorithm::RS256,
            "r1",
            &rsa,
            &claims("alice", "kafka", "https://evil.example"),
        ),
        // Signed by the EC key but naming the RSA key, and vice versa.
        sign(Algorithm::ES256, "r1", &es, &ok),
        sign(Algorithm::RS256, "e1", &rsa, &ok),
        // No iat.
        sign(
            Algorithm::ES256,
            "e1",
            &es,
            &serde_json::json!({"sub": "a", "aud": "kafka", "iss": "https://idp.example", "exp": now + 30}),
        ),
        // Expired beyond the 30 s default clock skew.
        sign(
            Algorithm::ES256,
            "e1",
            &es,
            &serde_json::json!({"sub": "a", "aud": "kafka", "iss": "https://idp.example", "iat": now - 600, "exp": now - 300}),
        ),
        // Unsigned.
        unsecured(&ok.to_string()),
    ] {
        refused_with(port, &token, invalid);
    }
}
