//! Clients that stall mid-SASL on a SASL_PLAINTEXT listener: silent after
//! connecting, silent after SaslHandshake (v1 and v0), or stopped halfway
//! through a SaslAuthenticate frame. As Kafka's Selector does with
//! `connections.max.idle.ms`, each is closed once idle that long, while
//! holding at most `sasl.server.max.receive.size` per connection, and an
//! authenticated client on the same listener is served without delay all
//! the while.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::sasl::{handshake, metadata_ok, plain_login, sasl_broker};
use crate::support::*;

/// `None` while open, `Some(())` once the broker closed it.
fn closed(s: &TcpStream) -> Option<()> {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    let r = match (&*s).read(&mut buf) {
        Ok(0) => Some(()),
        Ok(n) => panic!("a stalled client was sent {n} bytes"),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(_) => Some(()),
    };
    s.set_nonblocking(false).unwrap();
    r
}

/// A SaslAuthenticate v2 frame claiming `size` bytes, of which only the
/// size, the request header and `sent` bytes of body are returned.
fn partial_authenticate(size: i32, sent: usize) -> Vec<u8> {
    let mut f = size.to_be_bytes().to_vec();
    f.extend_from_slice(&request_header(36, 2, 99, req_header_version(36, 2)));
    f.extend(std::iter::repeat_n(b'x', sent));
    f
}

#[test]
fn stalled_sasl_clients_are_closed_when_idle_without_slowing_others() {
    const MAX: i32 = 64 * 1024;
    let max_arg = format!("sasl.server.max.receive.size={MAX}");
    let (mut b, port) = sasl_broker(&["connections.max.idle.ms=2000", &max_arg]);
    let (mut good, code, _) = plain_login(port, "alice", "alice-secret");
    assert_eq!(code, NONE);
    metadata_ok(&mut good);
    let rss_before = b.peak_rss_kib().expect("VmHWM");

    let mut stalled: Vec<(&str, TcpStream)> = Vec::new();
    // Connected, never a byte.
    stalled.push(("silent", Client::connect(port).stream));
    // SaslHandshake v1 answered, then nothing.
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "SCRAM-SHA-256", 1).0, NONE);
    stalled.push(("after SaslHandshake v1", c.stream));
    // SaslHandshake v0 (raw tokens follow), then half a token.
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "PLAIN", 0).0, NONE);
    let mut half_token = 40i32.to_be_bytes().to_vec();
    half_token.extend_from_slice(b"\0alice\0");
    c.write_raw(&half_token).unwrap();
    stalled.push(("half a v0 token", c.stream));
    // Many halves of SaslAuthenticate frames just within the bound: each
    // holds at most sasl.server.max.receive.size until it is closed.
    const HALVES: usize = 32;
    for _ in 0..HALVES {
        let mut c = Client::connect(port);
        assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
        c.write_raw(&partial_authenticate(MAX, MAX as usize / 2))
            .unwrap();
        stalled.push(("half a SaslAuthenticate", c.stream));
    }
    let stalled_at = Instant::now();

    // The authenticated client is served promptly until every stalled one
    // is closed.
    let mut closed_after: Vec<Option<Duration>> = vec![None; stalled.len()];
    let mut slowest = Duration::ZERO;
    while closed_after.iter().any(Option::is_none) {
        assert!(
            stalled_at.elapsed() < Duration::from_secs(10),
            "still open after 10 s: {:?}",
            stalled
                .iter()
                .zip(&closed_after)
                .filter(|(_, c)| c.is_none())
                .map(|((w, _), _)| *w)
                .collect::<Vec<_>>()
        );
        for (i, (_, s)) in stalled.iter().enumerate() {
            if closed_after[i].is_none() && closed(s).is_some() {
                closed_after[i] = Some(stalled_at.elapsed());
            }
        }
        let t = Instant::now();
        metadata_ok(&mut good);
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        slowest < Duration::from_millis(500),
        "slowest Metadata took {slowest:?}"
    );
    // None before the idle bound (2 s, less the setup time of the last).
    for ((what, _), after) in stalled.iter().zip(&closed_after) {
        let after = after.unwrap_or_default();
        assert!(
            after >= Duration::from_millis(900),
            "{what}: closed after {after:?}"
        );
    }
    // Bounded memory: the halves cost at most their bound each (plus the
    // broker's ordinary slack), not more.
    let rss_after = b.peak_rss_kib().expect("VmHWM");
    let bound_kib = (HALVES as u64) * (MAX as u64 / 1024) + 16 * 1024;
    assert!(
        rss_after.saturating_sub(rss_before) <= bound_kib,
        "peak RSS grew {rss_before} -> {rss_after} KiB"
    );

    // The listener still authenticates newcomers; the old client goes on.
    let (mut again, code, _) = plain_login(port, "alice", "alice-secret");
    assert_eq!(code, NONE);
    metadata_ok(&mut again);
    metadata_ok(&mut good);
    b.assert_alive();
}

#[test]
fn a_sasl_frame_above_the_bound_after_the_handshake_is_closed_at_once() {
    let (mut b, port) = sasl_broker(&[
        "connections.max.idle.ms=60000",
        "sasl.server.max.receive.size=4096",
    ]);
    let mut c = Client::connect(port);
    assert_eq!(handshake(&mut c, "PLAIN", 1).0, NONE);
    let t = Instant::now();
    c.write_raw(&partial_authenticate(4097, 16)).unwrap();
    c.expect_closed("a SaslAuthenticate frame above sasl.server.max.receive.size");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        t.elapsed()
    );
    b.assert_alive();
}
