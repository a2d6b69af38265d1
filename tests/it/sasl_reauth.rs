//! KIP-368 re-authentication on a SASL_PLAINTEXT listener, over the raw
//! protocol: SaslAuthenticate's `session_lifetime_ms` from
//! `connections.max.reauth.ms`, a re-authentication on the open connection,
//! the close of a connection whose session expired, and the refused
//! re-authentications (another principal, another mechanism). Also what
//! Kafka answers to a request other than SaslAuthenticate after a v1
//! SaslHandshake.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, SaslAuthenticateRequest, TopicName};

use crate::sasl::{handshake, metadata_ok, sasl_broker};
use crate::support::*;

/// SaslAuthenticate v2 with a PLAIN message: (error, message, lifetime).
fn plain(c: &mut Client, user: &str, password: &str) -> (i16, Option<String>, i64) {
    let r = c.call(
        2,
        &SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(format!("\0{user}\0{password}"))),
    );
    (
        r.error_code,
        r.error_message.map(|m| m.to_string()),
        r.session_lifetime_ms,
    )
}

fn login(port: u16, user: &str, password: &str) -> (Client, i64) {
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
    let (code, msg, lifetime) = plain(&mut c, user, password);
    assert_eq!((code, msg), (NONE, None));
    (c, lifetime)
}

#[test]
fn sessions_are_renewed_in_place_or_closed_when_expired() {
    let (_b, port) = sasl_broker(&[
        "listener.name.sasl_plaintext.plain.connections.max.reauth.ms=1500",
        "connection.failed.authentication.delay.ms=0",
    ]);
    // Re-authenticated in time: the connection serves on.
    let (mut c, lifetime) = login(port, "alice", "alice-secret");
    assert_eq!(lifetime, 1500);
    metadata_ok(&mut c);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
    assert_eq!(plain(&mut c, "alice", "alice-secret"), (NONE, None, 1500));
    std::thread::sleep(Duration::from_millis(1000));
    metadata_ok(&mut c);
    // Not re-authenticated: the next request past the end closes it.
    std::thread::sleep(Duration::from_millis(700));
    let corr = c.next_corr();
    c.send(
        3,
        12,
        corr,
        &encode(&MetadataRequest::default().with_topics(None), 12),
    );
    c.expect_closed("a request after the session expired");

    // Another principal on re-authentication.
    let (mut c, _) = login(port, "alice", "alice-secret");
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
    let (code, msg, _) = plain(&mut c, "admin", "admin-secret");
    assert_eq!(code, E::SaslAuthenticationFailed.code());
    assert_eq!(
        msg.as_deref(),
        Some("Cannot change principals during re-authentication from User.alice: User.admin")
    );
    c.expect_closed("after a re-authentication as another principal");

    // Another mechanism: the handshake is answered, the exchange is not.
    let (mut c, _) = login(port, "alice", "alice-secret");
    assert_eq!(handshake(&mut c, "SCRAM-SHA-256", 1).0, NONE);
    let corr = c.next_corr();
    let req =
        SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"n,,n=alice,r=abc"));
    c.send(36, 2, corr, &encode(&req, 2));
    c.expect_closed("a re-authentication with another mechanism");
}

#[test]
fn without_a_session_limit_a_second_handshake_is_an_illegal_state() {
    let (_b, port) = sasl_broker(&[]);
    let (mut c, lifetime) = login(port, "alice", "alice-secret");
    assert_eq!(lifetime, 0);
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, E::IllegalSaslState.code());
    metadata_ok(&mut c);
}

#[test]
fn requests_other_than_sasl_authenticate_after_a_v1_handshake_get_illegal_sasl_state() {
    let (_b, port) = sasl_broker(&["connection.failed.authentication.delay.ms=0"]);
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
    let topic = MetadataRequestTopic::default().with_name(Some(TopicName(sb("t"))));
    let r = c.call(
        12,
        &MetadataRequest::default().with_topics(Some(vec![topic])),
    );
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, E::IllegalSaslState.code());
    c.expect_closed("after Metadata during SASL authentication");
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, E::IllegalSaslState.code());
    c.expect_closed("after a second SaslHandshake");
}
