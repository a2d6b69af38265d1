//! SASL on a SASL_PLAINTEXT listener: SaslHandshake (v0 raw tokens, v1
//! SaslAuthenticate), PLAIN against JAAS users, SCRAM-SHA-256/512 against
//! credentials set with AlterUserScramCredentials (the SCRAM client side
//! is computed here with the hmac/sha2/pbkdf2 crates), what is refused
//! before authentication, and the KIP-554 admin APIs' edge cases.

use std::io::Read;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, ApiVersionsRequest,
    DescribeUserScramCredentialsRequest, MetadataRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use sha2::{Digest, Sha256, Sha512};

use crate::support::*;

pub(crate) const JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";";

/// A broker with PLAINTEXT on `b.port` and SASL_PLAINTEXT on the returned
/// port, PLAIN and both SCRAM mechanisms enabled.
pub(crate) fn sasl_broker(extra: &[&str]) -> (Broker, u16) {
    sasl_broker_wrapped(&[], extra)
}

/// [`sasl_broker`] run under `wrapper` (`env KAFKA_OPTS=...`).
pub(crate) fn sasl_broker_wrapped(wrapper: &[&str], extra: &[&str]) -> (Broker, u16) {
    let sasl_port = free_port();
    let port_plain = free_port();
    let l = format!("PLAINTEXT://127.0.0.1:{port_plain},SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let listeners = format!("listeners={l}");
    let advertised = format!("advertised.listeners={l}");
    let mut args = vec![
        listeners.as_str(),
        advertised.as_str(),
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        JAAS,
    ];
    args.extend_from_slice(extra);
    let mut b = Broker::spawn_only_wrapped(wrapper, &args);
    b.port = port_plain;
    wait_until("the listeners", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port_plain)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", sasl_port)).is_ok()
    });
    (b, sasl_port)
}

pub(crate) fn handshake(c: &mut Client, mechanism: &str, version: i16) -> (i16, Vec<String>) {
    let r = c.call(
        version,
        &SaslHandshakeRequest::default().with_mechanism(sb(mechanism)),
    );
    (
        r.error_code,
        r.mechanisms.iter().map(|m| m.to_string()).collect(),
    )
}

pub(crate) fn authenticate(c: &mut Client, token: &[u8]) -> (i16, Option<String>, Vec<u8>) {
    let r = c.call(
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
    );
    (
        r.error_code,
        r.error_message.map(|m| m.to_string()),
        r.auth_bytes.to_vec(),
    )
}

pub(crate) fn plain_login(port: u16, user: &str, password: &str) -> (Client, i16, Option<String>) {
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
    let (code, msg, _) = authenticate(&mut c, format!("\0{user}\0{password}").as_bytes());
    (c, code, msg)
}

pub(crate) fn metadata_ok(c: &mut Client) {
    let r = c.call(12, &MetadataRequest::default().with_topics(None));
    assert_eq!(r.brokers.len(), 1);
}

#[test]
fn plain_authenticates_and_then_serves_requests() {
    let (_b, port) = sasl_broker(&[]);
    let mut c = Client::connect(port);
    // ApiVersions first, as clients do; it lists the SASL APIs.
    let v = c.call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("kastle-tests"))
            .with_client_software_version(sb("1")),
    );
    assert_eq!(v.error_code, NONE);
    for k in [ApiKey::SaslHandshake, ApiKey::SaslAuthenticate] {
        assert!(v.api_keys.iter().any(|a| a.api_key == k as i16));
    }
    let (code, mechanisms) = handshake(&mut c, "PLAIN", 1);
    assert_eq!(code, NONE);
    assert_eq!(mechanisms, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    let (code, msg, _) = authenticate(&mut c, b"\0alice\0alice-secret");
    assert_eq!((code, msg), (NONE, None));
    metadata_ok(&mut c);
    // Authenticated: a second handshake is an illegal SASL state.
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, E::IllegalSaslState.code());
    metadata_ok(&mut c);
}

#[test]
fn plain_with_raw_tokens_after_handshake_v0() {
    let (_b, port) = sasl_broker(&[]);
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "PLAIN", 0).0, NONE);
    let token = b"\0admin\0admin-secret";
    let mut f = (token.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(token);
    c.write_raw(&f).expect("write token");
    // An empty size-prefixed answer: PLAIN has no server message.
    let mut size = [0u8; 4];
    c.stream.read_exact(&mut size).expect("read");
    assert_eq!(i32::from_be_bytes(size), 0);
    metadata_ok(&mut c);
}

#[test]
fn plain_wrong_password_fails_with_kafkas_message_after_the_delay_and_closes() {
    let (_b, port) = sasl_broker(&["connection.failed.authentication.delay.ms=300"]);
    let started = Instant::now();
    let (mut c, code, msg) = plain_login(port, "alice", "wrong");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(code, E::SaslAuthenticationFailed.code());
    assert_eq!(
        msg.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    c.expect_closed("after a failed authentication");
    let (mut c, code, _) = plain_login(port, "mallory", "alice-secret");
    assert_eq!(code, E::SaslAuthenticationFailed.code());
    c.expect_closed("after a failed authentication");
}

#[test]
fn unsupported_mechanism_lists_the_enabled_ones_and_closes() {
    let (_b, port) = sasl_broker(&[]);
    let mut c = Client::connect(port);
    let (code, mechanisms) = handshake(&mut c, "GSSAPI", 1);
    assert_eq!(code, E::UnsupportedSaslMechanism.code());
    assert_eq!(mechanisms, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    c.expect_closed("after an unsupported mechanism");
}

#[test]
fn no_request_but_api_versions_and_sasl_handshake_before_authentication() {
    let (b, port) = sasl_broker(&[]);
    let mut c = Client::connect(port);
    let corr = c.next_corr();
    c.send(
        3,
        12,
        corr,
        &encode(&MetadataRequest::default().with_topics(None), 12),
    );
    c.expect_closed("Metadata before authentication");
    // SaslAuthenticate before a handshake.
    let mut c = Client::connect(port);
    let corr = c.next_corr();
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0a\0b"));
    c.send(36, 2, corr, &encode(&req, 2));
    c.expect_closed("SaslAuthenticate before SaslHandshake");
    // After the handshake, only SaslAuthenticate: Metadata gets its error
    // response (all topics: none named, no top-level error before v13).
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
    let r = c.call(12, &MetadataRequest::default().with_topics(None));
    assert!(r.topics.is_empty() && r.brokers.is_empty());
    c.expect_closed("Metadata during SASL authentication");
    // The PLAINTEXT listener of the same broker needs none of this.
    let mut p = b.client();
    metadata_ok(&mut p);
}

#[test]
fn pre_authentication_frames_are_bounded_by_sasl_server_max_receive_size() {
    let (_b, port) = sasl_broker(&["sasl.server.max.receive.size=1024"]);
    let mut c = Client::connect(port);
    let mut f = 2048i32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0u8; 64]);
    c.write_raw(&f).expect("write");
    c.expect_closed("a frame above sasl.server.max.receive.size");
    // Within the bound, authentication proceeds.
    let (mut c, code, _) = plain_login(port, "alice", "alice-secret");
    assert_eq!(code, NONE);
    metadata_ok(&mut c);
}

// --- SCRAM ----------------------------------------------------------------

#[derive(Clone, Copy)]
pub(crate) enum Sha {
    S256,
    S512,
}

impl Sha {
    fn code(self) -> i8 {
        match self {
            Sha::S256 => 1,
            Sha::S512 => 2,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Sha::S256 => "SCRAM-SHA-256",
            Sha::S512 => "SCRAM-SHA-512",
        }
    }
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Sha::S256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Sha::S512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }
    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Sha::S256 => Sha256::digest(data).to_vec(),
            Sha::S512 => Sha512::digest(data).to_vec(),
        }
    }
    fn salted(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Sha::S256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2::<Hmac<Sha256>>(password.as_bytes(), salt, iterations, &mut out)
                    .unwrap();
                out
            }
            Sha::S512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2::<Hmac<Sha512>>(password.as_bytes(), salt, iterations, &mut out)
                    .unwrap();
                out
            }
        }
    }
}

pub(crate) fn upsertion(
    user: &str,
    sha: Sha,
    password: &str,
    iterations: i32,
) -> ScramCredentialUpsertion {
    let salt = b"kastle-test-salt".to_vec();
    ScramCredentialUpsertion::default()
        .with_name(sb(user))
        .with_mechanism(sha.code())
        .with_iterations(iterations)
        .with_salted_password(Bytes::from(sha.salted(password, &salt, iterations as u32)))
        .with_salt(Bytes::from(salt))
}

/// The whole SCRAM exchange as a client; Ok(()) when the server proved
/// itself too, else the SaslAuthenticate error.
fn scram_login(c: &mut Client, sha: Sha, user: &str, password: &str) -> Result<(), (i16, String)> {
    scram_exchange(c, sha, user, password, None).map(|_| ())
}

/// [`scram_login`], sending `replay` as the client-final message instead
/// of the one this exchange calls for; Ok(the final message sent).
fn scram_exchange(
    c: &mut Client,
    sha: Sha,
    user: &str,
    password: &str,
    replay: Option<&str>,
) -> Result<String, (i16, String)> {
    assert_eq!(handshake(c, sha.name(), 1).0, NONE);
    let client_nonce = "fyko+d2lbbFgONRv9qkxdawL";
    let bare = format!("n={user},r={client_nonce}");
    let (code, msg, server_first) = authenticate(c, format!("n,,{bare}").as_bytes());
    if code != NONE {
        return Err((code, msg.unwrap_or_default()));
    }
    let server_first = String::from_utf8(server_first).unwrap();
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0u32;
    for a in server_first.split(',') {
        match a.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = B64.decode(v).unwrap(),
            ("i=", v) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    assert!(nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len());
    let salted = sha.salted(password, &salt, iterations);
    let client_key = sha.hmac(&salted, b"Client Key");
    let stored_key = sha.hash(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let signature = sha.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let fin = match replay {
        Some(old) => old.to_string(),
        None => format!("{without_proof},p={}", B64.encode(proof)),
    };
    let (code, msg, server_final) = authenticate(c, fin.as_bytes());
    if code != NONE {
        return Err((code, msg.unwrap_or_default()));
    }
    let server_key = sha.hmac(&salted, b"Server Key");
    let expected = format!(
        "v={}",
        B64.encode(sha.hmac(&server_key, auth_message.as_bytes()))
    );
    assert_eq!(String::from_utf8(server_final).unwrap(), expected);
    Ok(fin)
}

/// A client-final message recorded from a successful SCRAM login and
/// replayed on another connection (same client nonce, a new server nonce)
/// is refused and the connection closed; the first client is unaffected.
#[test]
fn a_replayed_scram_final_message_is_refused() {
    let (b, port) = sasl_broker(&["connection.failed.authentication.delay.ms=0"]);
    let r = b.client().call(
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion(
            "alice",
            Sha::S256,
            "alice-scram",
            4096,
        )]),
    );
    assert!(r.results.iter().all(|x| x.error_code == NONE), "{r:?}");
    let mut c = Client::connect(port);
    let fin = scram_exchange(&mut c, Sha::S256, "alice", "alice-scram", None).expect("login");
    metadata_ok(&mut c);
    let mut replay = Client::connect(port);
    let err = scram_exchange(&mut replay, Sha::S256, "alice", "alice-scram", Some(&fin))
        .expect_err("a replayed proof authenticated");
    assert_eq!(err.0, E::SaslAuthenticationFailed.code(), "{err:?}");
    replay.expect_closed("after a replayed SCRAM proof");
    metadata_ok(&mut c);
}

#[test]
fn scram_credentials_authenticate_and_survive_a_restart() {
    let (mut b, port) = sasl_broker(&[]);
    let mut admin = b.client();
    let r = admin.call(
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            upsertion("alice", Sha::S256, "alice-scram", 8192),
            upsertion("bob", Sha::S512, "bob-scram", 4096),
        ]),
    );
    assert!(r.results.iter().all(|x| x.error_code == NONE), "{r:?}");
    for (sha, user, password) in [
        (Sha::S256, "alice", "alice-scram"),
        (Sha::S512, "bob", "bob-scram"),
    ] {
        let mut c = Client::connect(port);
        scram_login(&mut c, sha, user, password).expect("SCRAM login");
        metadata_ok(&mut c);
    }
    // A wrong password: Kafka's generic message, then the connection closes.
    let mut c = Client::connect(port);
    let err = scram_login(&mut c, Sha::S256, "alice", "nope").unwrap_err();
    assert_eq!(
        err,
        (
            E::SaslAuthenticationFailed.code(),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256".to_string()
        )
    );
    c.expect_closed("after a failed SCRAM authentication");
    // A mechanism the user has no credential for fails at the first message.
    let mut c = Client::connect(port);
    let err = scram_login(&mut c, Sha::S512, "alice", "alice-scram").unwrap_err();
    assert_eq!(err.0, E::SaslAuthenticationFailed.code());

    b.stop();
    b.restart();
    wait_until("the SASL listener", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut c = Client::connect(port);
    scram_login(&mut c, Sha::S256, "alice", "alice-scram").expect("SCRAM login after restart");
    let d = b.client().call(
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(None),
    );
    let users: Vec<(String, Vec<(i8, i32)>)> = d
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.credential_infos
                    .iter()
                    .map(|i| (i.mechanism, i.iterations))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("alice".to_string(), vec![(1, 8192)]),
            ("bob".to_string(), vec![(2, 4096)])
        ]
    );
    // Deleted, the credential no longer authenticates.
    let r = b.client().call(
        0,
        &AlterUserScramCredentialsRequest::default().with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(sb("alice"))
                .with_mechanism(1),
        ]),
    );
    assert_eq!(r.results[0].error_code, NONE);
    let mut c = Client::connect(port);
    assert!(scram_login(&mut c, Sha::S256, "alice", "alice-scram").is_err());
}

#[test]
fn scram_admin_edge_cases_answer_as_kafka() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    let r = c.call(
        0,
        &AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![ScramCredentialDeletion::default()
                .with_name(sb("ghost"))
                .with_mechanism(1)])
            .with_upsertions(vec![
                upsertion("ok", Sha::S256, "p", 4096),
                upsertion("few", Sha::S256, "p", 4095),
                upsertion("many", Sha::S512, "p", 16385),
                upsertion("twice", Sha::S256, "p", 4096),
                upsertion("twice", Sha::S512, "p", 4096),
                upsertion("", Sha::S256, "p", 4096),
                upsertion("mech", Sha::S256, "p", 4096).with_mechanism(0),
            ]),
    );
    let got = |u: &str| {
        let x = r.results.iter().find(|x| x.user.as_str() == u).expect(u);
        (
            x.error_code,
            x.error_message.as_ref().map(|m| m.to_string()),
        )
    };
    assert_eq!(got("ok"), (NONE, None));
    assert_eq!(
        got("ghost"),
        (
            E::ResourceNotFound.code(),
            Some("Attempt to delete a user credential that does not exist".into())
        )
    );
    assert_eq!(
        got("few"),
        (
            E::UnacceptableCredential.code(),
            Some("Too few iterations".into())
        )
    );
    assert_eq!(
        got("many"),
        (
            E::UnacceptableCredential.code(),
            Some("Too many iterations".into())
        )
    );
    assert_eq!(
        got("twice"),
        (
            E::DuplicateResource.code(),
            Some("A user credential cannot be altered twice in the same request".into())
        )
    );
    assert_eq!(
        got(""),
        (
            E::UnacceptableCredential.code(),
            Some("Username must not be empty".into())
        )
    );
    assert_eq!(
        got("mech"),
        (
            E::UnsupportedSaslMechanism.code(),
            Some("Unknown SCRAM mechanism".into())
        )
    );
    assert_eq!(r.results.len(), 7);

    let names = |v: &[&str]| {
        Some(
            v.iter()
                .map(|n| UserName::default().with_name(sb(n)))
                .collect(),
        )
    };
    let d = c.call(
        0,
        &DescribeUserScramCredentialsRequest::default()
            .with_users(names(&["ok", "nobody", "ok2", "ok2"])),
    );
    let rows: Vec<(String, i16, Option<String>)> = d
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("ok".to_string(), NONE, None),
            (
                "nobody".to_string(),
                E::ResourceNotFound.code(),
                Some("Attempt to describe a user credential that does not exist: nobody".into())
            ),
            (
                "ok2".to_string(),
                E::DuplicateResource.code(),
                Some("Cannot describe SCRAM credentials for the same user twice in a single request: ok2".into())
            ),
        ]
    );
    let all = c.call(
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![])),
    );
    assert_eq!(all.results.len(), 1);
    // SASL requests on a listener without SASL: an illegal SASL state.
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, E::IllegalSaslState.code());
    let (code, _, _) = authenticate(&mut c, b"x");
    assert_eq!(code, E::IllegalSaslState.code());
}

// --- container conventions ---------------------------------------------------

fn env_vars(v: &[(&str, String)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// A broker configured by environment alone (PLAINTEXT on the first port,
/// SASL_PLAINTEXT on the second), plus `extra` variables.
fn env_broker(tmp: &std::path::Path, extra: &[(&str, String)]) -> (Broker, u16) {
    let (plain, sasl) = (free_port(), free_port());
    let l = format!("PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}");
    let mut v = vec![
        ("KAFKA_LISTENERS", l.clone()),
        ("KAFKA_ADVERTISED_LISTENERS", l),
        ("KAFKA_LOG_DIRS", tmp.join("data").display().to_string()),
    ];
    v.extend(extra.iter().cloned());
    let b = Broker::start_env(&env_vars(&v), tmp, plain);
    wait_until("the SASL listener", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", sasl)).is_ok()
    });
    (b, sasl)
}

#[test]
fn apache_image_listener_jaas_variable_and_cp_kafka_jaas_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (_b, port) = env_broker(
        tmp.path(),
        &[
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN".into()),
            (
                "KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_erin=\"erin-secret\";".into(),
            ),
        ],
    );
    let (mut c, code, _) = plain_login(port, "erin", "erin-secret");
    assert_eq!(code, NONE);
    metadata_ok(&mut c);

    let tmp = tempfile::tempdir().unwrap();
    let jaas = tmp.path().join("kafka_server_jaas.conf");
    std::fs::write(
        &jaas,
        "KafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n  username=\"admin\" password=\"a\"\n  user_frank=\"frank-secret\";\n};\n",
    )
    .unwrap();
    let (_b, port) = env_broker(
        tmp.path(),
        &[
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN".into()),
            (
                "KAFKA_OPTS",
                format!("-Djava.security.auth.login.config={}", jaas.display()),
            ),
        ],
    );
    let (_c, code, _) = plain_login(port, "frank", "frank-secret");
    assert_eq!(code, NONE);
    let (_c, code, _) = plain_login(port, "frank", "nope");
    assert_eq!(code, E::SaslAuthenticationFailed.code());
}

#[test]
fn bitnami_client_users_get_plain_and_scram() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, port) = env_broker(
        tmp.path(),
        &[
            (
                "KAFKA_CFG_SASL_ENABLED_MECHANISMS",
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".into(),
            ),
            ("KAFKA_CLIENT_USERS", "gina,hal".into()),
            ("KAFKA_CLIENT_PASSWORDS", "gina-secret,hal-secret".into()),
        ],
    );
    let (_c, code, _) = plain_login(port, "hal", "hal-secret");
    assert_eq!(code, NONE);
    let mut c = Client::connect(port);
    scram_login(&mut c, Sha::S512, "gina", "gina-secret").expect("bitnami user over SCRAM");
    metadata_ok(&mut c);
    assert!(!b.stderr().contains("KAFKA_CLIENT_USERS"), "{}", b.stderr());
}
