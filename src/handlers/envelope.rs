//! The Envelope (API 58, KIP-590) a broker wraps a forwarded client request
//! in: the client's request (header and body), its principal in Kafka's
//! `DefaultKafkaPrincipalBuilder` serialization (a version-prefixed
//! `DefaultPrincipalData`) and its address, so that the controller charges
//! the controller mutation quota to the client, not to the broker. Both
//! halves live here: the broker's wrapping and unwrapping and the
//! controller's parsing of what it received.

use std::net::IpAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{DefaultPrincipalData, RequestHeader as KafkaRequestHeader};
use kafka_protocol::messages::{EnvelopeRequest, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::security::KafkaPrincipal;

/// The `DefaultPrincipalData` version kastle writes (Kafka's highest, 0).
const PRINCIPAL_DATA_VERSION: i16 = 0;

/// Who sent a forwarded request, as the controller learns it from the
/// Envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedOrigin {
    pub principal: KafkaPrincipal,
    /// The client id of the embedded request's header ("" without one).
    pub client_id: String,
    pub client_address: IpAddr,
}

/// Kafka's `DefaultKafkaPrincipalBuilder.serialize`: a big-endian version
/// (0) and `DefaultPrincipalData` at that version.
pub fn serialize_principal(principal: &KafkaPrincipal) -> anyhow::Result<Bytes> {
    let data = DefaultPrincipalData::default()
        .with_type(StrBytes::from_string(principal.principal_type.clone()))
        .with_name(StrBytes::from_string(principal.name.clone()))
        .with_token_authenticated(false);
    let mut buf = BytesMut::with_capacity(2 + data.compute_size(PRINCIPAL_DATA_VERSION)?);
    buf.put_i16(PRINCIPAL_DATA_VERSION);
    data.encode(&mut buf, PRINCIPAL_DATA_VERSION)?;
    Ok(buf.freeze())
}

/// Kafka's `DefaultKafkaPrincipalBuilder.deserialize`; `Err` is what Kafka
/// answers PRINCIPAL_DESERIALIZATION_FAILURE for.
pub fn deserialize_principal(bytes: &[u8]) -> Result<KafkaPrincipal, String> {
    let mut buf = bytes;
    if buf.remaining() < 2 {
        return Err("the principal is shorter than its version".into());
    }
    let version = buf.get_i16();
    if version != PRINCIPAL_DATA_VERSION {
        return Err(format!("unknown DefaultPrincipalData version {version}"));
    }
    let data = DefaultPrincipalData::decode(&mut buf, version)
        .map_err(|e| format!("undecodable DefaultPrincipalData: {e}"))?;
    if buf.has_remaining() {
        return Err(format!(
            "{} bytes after the DefaultPrincipalData",
            buf.remaining()
        ));
    }
    Ok(KafkaPrincipal {
        principal_type: data._type.to_string(),
        name: data.name.to_string(),
    })
}

/// Kafka's `InetAddress.getByAddress`: 4 bytes (IPv4) or 16 (IPv6).
pub fn parse_client_address(bytes: &[u8]) -> Result<IpAddr, String> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Ok(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Ok(IpAddr::from(v6))
    } else {
        Err(format!(
            "a client address of {} bytes is neither IPv4 nor IPv6",
            bytes.len()
        ))
    }
}

fn address_bytes(ip: IpAddr) -> Bytes {
    match ip {
        IpAddr::V4(a) => Bytes::copy_from_slice(&a.octets()),
        IpAddr::V6(a) => Bytes::copy_from_slice(&a.octets()),
    }
}

/// An Envelope around `request` at `version`, as the client with `origin`
/// sent it (its header carries the client's id; the correlation id only
/// pairs the embedded answer with it).
pub fn wrap<R: Request>(
    request: &R,
    version: i16,
    origin: &ForwardedOrigin,
    correlation_id: i32,
) -> anyhow::Result<EnvelopeRequest> {
    let header = KafkaRequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(origin.client_id.clone())));
    let header_version = R::header_version(version);
    let mut data = BytesMut::with_capacity(
        header.compute_size(header_version)? + request.compute_size(version)?,
    );
    header.encode(&mut data, header_version)?;
    request.encode(&mut data, version)?;
    Ok(EnvelopeRequest::default()
        .with_request_data(data.freeze())
        .with_request_principal(Some(serialize_principal(&origin.principal)?))
        .with_client_host_address(address_bytes(origin.client_address)))
}

/// The embedded answer of an EnvelopeResponse to a request wrapped with
/// `correlation_id` at `version`.
pub fn unwrap_response<R: Request>(
    data: &[u8],
    version: i16,
    correlation_id: i32,
) -> anyhow::Result<R::Response> {
    let mut buf = data;
    let header = ResponseHeader::decode(
        &mut buf,
        <R::Response as HeaderVersion>::header_version(version),
    )?;
    anyhow::ensure!(
        header.correlation_id == correlation_id,
        "the embedded response answers correlation id {}, not {correlation_id}",
        header.correlation_id
    );
    let response = R::Response::decode(&mut buf, version)?;
    anyhow::ensure!(
        !buf.has_remaining(),
        "{} bytes after the embedded response",
        buf.remaining()
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

    #[test]
    fn principal_round_trips_in_kafkas_serialization() {
        let p = KafkaPrincipal::user("alice");
        let bytes = serialize_principal(&p).expect("serializes");
        // Version 0, then compact strings "User" and "alice", false, no tags.
        assert_eq!(
            &bytes[..],
            &[0, 0, 5, b'U', b's', b'e', b'r', 6, b'a', b'l', b'i', b'c', b'e', 0, 0]
        );
        assert_eq!(deserialize_principal(&bytes), Ok(p));
    }

    #[test]
    fn bad_principals_and_addresses_are_refused() {
        assert!(deserialize_principal(&[]).is_err());
        assert!(deserialize_principal(&[0, 1, 0]).is_err());
        assert!(deserialize_principal(&[0, 0, 200]).is_err());
        let mut trailing = serialize_principal(&KafkaPrincipal::user("a"))
            .expect("serializes")
            .to_vec();
        trailing.push(0);
        assert!(deserialize_principal(&trailing).is_err());
        assert_eq!(
            parse_client_address(&[127, 0, 0, 1]),
            Ok("127.0.0.1".parse().expect("ip"))
        );
        assert!(parse_client_address(&[1, 2, 3]).is_err());
        assert_eq!(
            parse_client_address(&[0; 16]),
            Ok("::".parse().expect("ip"))
        );
    }

    #[test]
    fn wrapped_request_carries_the_clients_header() {
        let origin = ForwardedOrigin {
            principal: KafkaPrincipal::user("bob"),
            client_id: "app-1".into(),
            client_address: "10.0.0.7".parse().expect("ip"),
        };
        let req = CreateTopicsRequest::default().with_timeout_ms(1234);
        let env = wrap(&req, 7, &origin, 42).expect("wraps");
        let header =
            crate::protocol::parse_request_header(&env.request_data).expect("parses the header");
        assert_eq!(header.api_key, 19);
        assert_eq!(header.api_version, 7);
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.client_id.as_deref(), Some("app-1"));
        let mut body = env.request_data.slice(header.len..);
        let back = CreateTopicsRequest::decode(&mut body, 7).expect("decodes");
        assert_eq!(back.timeout_ms, 1234);
        assert_eq!(&env.client_host_address[..], &[10, 0, 0, 7]);

        let resp = CreateTopicsResponse::default().with_throttle_time_ms(9);
        let framed = crate::protocol::response::encode_response(42, 7, &resp).expect("encodes");
        let answer = unwrap_response::<CreateTopicsRequest>(&framed[4..], 7, 42).expect("unwraps");
        assert_eq!(answer.throttle_time_ms, 9);
        assert!(unwrap_response::<CreateTopicsRequest>(&framed[4..], 7, 43).is_err());
    }
}
