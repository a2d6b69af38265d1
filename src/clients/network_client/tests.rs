//! The client against a peer that speaks the framing by hand: a round trip
//! decodes, an oversize size prefix and a silent peer fail with their
//! errors, and the next request reconnects.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{ClientError, ClientLimits, NetworkClient};

/// How the fake peer answers each request it reads.
#[derive(Clone, Copy)]
enum Peer {
    Answer,
    Oversize,
    Silent,
}

async fn read_request(s: &mut TcpStream) -> Option<RequestHeader> {
    let size = s.read_i32().await.ok()?;
    let mut buf = BytesMut::zeroed(size as usize);
    s.read_exact(&mut buf).await.ok()?;
    let mut buf = buf.freeze();
    // ApiVersions v3 uses request header v2.
    RequestHeader::decode(&mut buf, 2).ok()
}

async fn serve(listener: TcpListener, behaviours: Vec<Peer>) {
    let mut behaviours = behaviours.into_iter();
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        while let Some(h) = read_request(&mut s).await {
            match behaviours.next().unwrap_or(Peer::Answer) {
                Peer::Answer => {
                    let mut body = BytesMut::new();
                    body.put_i32(h.correlation_id); // response header v0
                    ApiVersionsResponse::default()
                        .with_throttle_time_ms(7)
                        .encode(&mut body, 3)
                        .expect("encode");
                    let mut out = BytesMut::new();
                    out.put_i32(body.len() as i32);
                    out.put(body);
                    if s.write_all(&out).await.is_err() {
                        break;
                    }
                }
                Peer::Oversize => {
                    let _ = s.write_i32(i32::MAX).await;
                }
                Peer::Silent => {}
            }
        }
    }
}

fn request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("kastle"))
        .with_client_software_version(StrBytes::from_static_str("test"))
}

#[tokio::test]
async fn round_trip_errors_and_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(serve(
        listener,
        vec![Peer::Answer, Peer::Oversize, Peer::Silent, Peer::Answer],
    ));
    let limits = ClientLimits {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_millis(500),
        max_response_bytes: 1024,
    };
    let mut c = NetworkClient::new(addr, "kastle-test", limits);

    let r = c.send(&request(), 3).await.expect("first answer");
    assert_eq!(r.throttle_time_ms, 7);
    assert!(c.is_connected());

    match c.send(&request(), 3).await {
        Err(ClientError::TooLarge { size, limit, .. }) => {
            assert_eq!((size, limit), (i32::MAX as i64, 1024));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(!c.is_connected(), "an oversize frame drops the connection");

    match c.send(&request(), 3).await {
        Err(ClientError::Timeout { timeout_ms, .. }) => assert_eq!(timeout_ms, 500),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(!c.is_connected());

    let r = c
        .send(&request(), 3)
        .await
        .expect("answer after reconnecting");
    assert_eq!(r.throttle_time_ms, 7);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let mut c = NetworkClient::new(addr.clone(), "kastle-test", ClientLimits::default());
    match c.send(&request(), 3).await {
        Err(e @ ClientError::Connect { .. }) => assert!(e.to_string().contains(&addr)),
        other => panic!("expected a connect error, got {other:?}"),
    }
}
