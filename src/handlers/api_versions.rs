//! ApiVersions: what this broker speaks, from the one table in
//! `protocol::versions`.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use crate::handlers::{decode_or_close, Reply, Request};
use crate::protocol::{response, versions};

fn api_keys() -> Vec<ApiVersion> {
    versions::SUPPORTED
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.advertised_min)
                .with_max_version(s.max)
        })
        .collect()
}

/// Kafka's reply to an ApiVersions request newer than it supports: error
/// UNSUPPORTED_VERSION with the v0 body and header, listing what it supports.
pub fn unsupported_version(req: &Request) -> Reply {
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    match response::encode_with_header_version(req.header.correlation_id, 0, 0, &body) {
        Ok(buf) => Reply::Frame(buf),
        Err(e) => Reply::Close(format!("encoding ApiVersions: {e}")),
    }
}

/// Kafka's rule for client software names and versions (KIP-511).
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

pub fn handle(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, ApiVersionsRequest);
    let mut resp = ApiVersionsResponse::default();
    if req.version() >= 3
        && (!valid_software_field(&request.client_software_name)
            || !valid_software_field(&request.client_software_version))
    {
        resp.error_code = ResponseError::InvalidRequest.code();
        return req.respond(&resp);
    }
    resp.api_keys = api_keys();
    resp.finalized_features_epoch = -1;
    req.respond(&resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_names_follow_kip_511() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("apache-kafka-java"));
        assert!(valid_software_field("2.3.0"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("x."));
        assert!(!valid_software_field("a b"));
    }
}
