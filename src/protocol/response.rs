//! Response framing: size prefix, response header, body encoded by the
//! `kafka-protocol` crate at the request's version.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// Encodes a complete response frame (4-byte size, header, body).
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    api_version: i16,
    body: &R,
) -> anyhow::Result<BytesMut> {
    let header_version = R::header_version(api_version);
    encode_with_header_version(correlation_id, header_version, api_version, body)
}

pub fn encode_with_header_version<R: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body_version: i16,
    body: &R,
) -> anyhow::Result<BytesMut> {
    let body_size = body.compute_size(body_version)?;
    let header_size = if header_version >= 1 { 5 } else { 4 };
    let mut buf = BytesMut::with_capacity(4 + header_size + body_size);
    buf.put_i32((header_size + body_size) as i32);
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        // Empty tagged-field section.
        buf.put_u8(0);
    }
    body.encode(&mut buf, body_version)?;
    anyhow::ensure!(
        buf.len() == 4 + header_size + body_size,
        "encoded response size {} differs from computed {}",
        buf.len(),
        4 + header_size + body_size
    );
    Ok(buf)
}

/// The response header version for an API; ApiVersions always answers with
/// header v0 so that a client of any version can read the error.
pub fn response_header_version(key: ApiKey, api_version: i16) -> i16 {
    key.response_header_version(api_version)
}
