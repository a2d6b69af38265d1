//! Request header parsing (header versions 1 and 2).
//!
//! We parse the header ourselves rather than through the crate: it is small,
//! its layout depends on whether the *body* version is flexible, and a request
//! with an API version we do not support must still yield its correlation id
//! so that ApiVersions can answer UNSUPPORTED_VERSION.

use std::fmt;

use kafka_protocol::messages::ApiKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// Bytes the header occupies; the body starts here.
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than the 8 fixed bytes: not even a correlation id to answer.
    TooShort(usize),
    /// The fixed part parsed, the rest did not.
    Malformed {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
        reason: &'static str,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::TooShort(n) => write!(f, "request of {n} bytes is shorter than a request header"),
            HeaderError::Malformed { api_key, api_version, correlation_id, reason } => write!(
                f,
                "malformed request header (api key {api_key}, version {api_version}, correlation id {correlation_id}): {reason}"
            ),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Header version 2 (with tagged fields) goes with flexible body versions.
/// For versions newer than the crate knows, the newest layout applies, which
/// is flexible for every API Kafka 4.x still serves.
pub fn header_is_flexible(api_key: i16, api_version: i16) -> bool {
    match ApiKey::try_from(api_key) {
        Ok(key) => {
            let range = key.valid_versions();
            let v = api_version.clamp(range.min, range.max);
            key.request_header_version(v) >= 2
        }
        // kastle's own codecs: flexible in every version.
        Err(_) => crate::protocol::versions::SUPPORTED_OWN_CODEC
            .iter()
            .any(|(k, _, _)| *k == api_key),
    }
}

pub fn parse_request_header(frame: &[u8]) -> Result<RequestHeader, HeaderError> {
    if frame.len() < 8 {
        return Err(HeaderError::TooShort(frame.len()));
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let malformed = |reason| HeaderError::Malformed {
        api_key,
        api_version,
        correlation_id,
        reason,
    };
    let mut pos = 8;
    if frame.len() < pos + 2 {
        return Err(malformed("truncated client id"));
    }
    let id_len = i16::from_be_bytes([frame[pos], frame[pos + 1]]);
    pos += 2;
    let client_id = if id_len < 0 {
        if id_len != -1 {
            return Err(malformed("negative client id length"));
        }
        None
    } else {
        let end = pos + id_len as usize;
        let bytes = frame
            .get(pos..end)
            .ok_or_else(|| malformed("truncated client id"))?;
        pos = end;
        // Kafka decodes client ids leniently; so do we.
        Some(String::from_utf8_lossy(bytes).into_owned())
    };
    if header_is_flexible(api_key, api_version) {
        let count =
            read_uvarint(frame, &mut pos).ok_or_else(|| malformed("bad tagged field count"))?;
        for _ in 0..count {
            read_uvarint(frame, &mut pos).ok_or_else(|| malformed("bad tag"))?;
            let size = read_uvarint(frame, &mut pos)
                .ok_or_else(|| malformed("bad tagged field size"))? as usize;
            if frame.len() - pos < size {
                return Err(malformed("truncated tagged field"));
            }
            pos += size;
        }
    }
    Ok(RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id,
        len: pos,
    })
}

/// Unsigned varint of the flexible protocol versions (tagged fields here).
/// Not the record format's zig-zag varints (`record::varint`), and the
/// protocol (layer 0) cannot use `record` (layer 1) anyway.
fn read_uvarint(buf: &[u8], pos: &mut usize) -> Option<u32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if i == 4 && b > 0x0f {
            return None;
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: i16, version: i16, client: Option<&str>, flexible_tail: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&key.to_be_bytes());
        v.extend_from_slice(&version.to_be_bytes());
        v.extend_from_slice(&42i32.to_be_bytes());
        match client {
            Some(c) => {
                v.extend_from_slice(&(c.len() as i16).to_be_bytes());
                v.extend_from_slice(c.as_bytes());
            }
            None => v.extend_from_slice(&(-1i16).to_be_bytes()),
        }
        v.extend_from_slice(flexible_tail);
        v
    }

    #[test]
    fn parses_v1_and_v2_headers() {
        // Metadata v8 is not flexible: no tagged fields.
        let h = parse_request_header(&header(3, 8, Some("abc"), &[])).unwrap();
        assert_eq!(
            (
                h.api_key,
                h.api_version,
                h.correlation_id,
                h.client_id.as_deref(),
                h.len
            ),
            (3, 8, 42, Some("abc"), 13)
        );
        // Metadata v12 is flexible: a tagged-field section follows the client id.
        let h = parse_request_header(&header(3, 12, None, &[1, 5, 2, 0xaa, 0xbb, 9])).unwrap();
        assert_eq!(h.len, 10 + 5);
        assert_eq!(h.client_id, None);
    }

    #[test]
    fn rejects_truncated_and_malformed_headers() {
        assert_eq!(
            parse_request_header(&[0, 3, 0]),
            Err(HeaderError::TooShort(3))
        );
        assert!(matches!(
            parse_request_header(&header(3, 8, Some("abc"), &[])[..11]),
            Err(HeaderError::Malformed {
                correlation_id: 42,
                ..
            })
        ));
        assert!(parse_request_header(&header(3, 12, None, &[1, 5, 9, 0])).is_err());
        assert!(
            parse_request_header(&header(3, 12, None, &[0xff, 0xff, 0xff, 0xff, 0xff])).is_err()
        );
        let mut bad = header(3, 8, None, &[]);
        bad[8] = 0x80;
        assert!(parse_request_header(&bad).is_err());
    }

    #[test]
    fn newer_than_known_versions_use_the_flexible_header() {
        assert!(header_is_flexible(18, 9));
        assert!(!header_is_flexible(18, 2));
        assert!(header_is_flexible(18, 3));
    }
}
