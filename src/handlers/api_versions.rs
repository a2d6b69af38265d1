//! ApiVersions: what this broker speaks (the tables in `protocol::versions`)
//! and the feature levels finalized (`KafkaApis::finalized_features`).

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::controller::feature_control::FinalizedFeatures;
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
        .chain(versions::SUPPORTED_OWN_CODEC.iter().map(|(k, lo, hi)| {
            ApiVersion::default()
                .with_api_key(*k)
                .with_min_version(*lo)
                .with_max_version(*hi)
        }))
        .collect()
}

/// The supported features at request `version`. Below v4 Kafka leaves out
/// those supported from level 0: older Java clients refuse a minimum of 0
/// (KAFKA-17011, fixed with ApiVersions v4).
fn supported_features(version: i16) -> Vec<SupportedFeatureKey> {
    versions::FEATURES
        .iter()
        .filter(|f| version >= 4 || f.min > 0)
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect()
}

/// The finalized features: those at a level above 0.
fn finalized_features(f: &FinalizedFeatures) -> Vec<FinalizedFeatureKey> {
    f.finalized()
        .into_iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_string(name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect()
}

/// Kafka's reply to an ApiVersions request newer than it supports: error
/// UNSUPPORTED_VERSION with the v0 body and header, listing only
/// ApiVersions' own range (KIP-511), for the client to retry within it.
pub fn unsupported_version(req: &Request) -> Reply {
    let own = api_keys()
        .into_iter()
        .filter(|k| k.api_key == ApiKey::ApiVersions as i16)
        .collect();
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(own);
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
    resp.supported_features = supported_features(req.version());
    let features = req.ctx.apis.finalized_features();
    resp.finalized_features = finalized_features(&features);
    resp.finalized_features_epoch = features.epoch;
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

    #[test]
    fn level_0_features_only_from_v4() {
        let names = |v| -> Vec<String> {
            supported_features(v)
                .iter()
                .map(|f| f.name.to_string())
                .collect()
        };
        assert_eq!(names(3), vec!["metadata.version".to_string()]);
        assert!(names(4).contains(&"group.version".to_string()));
        assert!(supported_features(4).iter().any(|f| f.min_version == 0));
        let listed = |f: &FinalizedFeatures| -> Vec<(String, i16)> {
            finalized_features(f)
                .iter()
                .map(|f| (f.name.to_string(), f.max_version_level))
                .collect()
        };
        // A directory or cluster an older kastle formatted: nothing
        // recorded, transaction version 1.
        let unrecorded = FinalizedFeatures {
            recorded: Default::default(),
            epoch: 0,
        };
        let at = |tv: i16| {
            vec![
                ("group.version".to_string(), 1),
                ("metadata.version".to_string(), 33),
                ("transaction.version".to_string(), tv),
            ]
        };
        assert_eq!(listed(&unrecorded), at(1));
        // A new one also has share (KIP-932) and streams (KIP-1071)
        // groups on.
        let at = |tv: i16| {
            let mut l = at(tv);
            l.insert(2, ("share.version".to_string(), 1));
            l.insert(3, ("streams.version".to_string(), 1));
            l
        };
        // A new one: Kafka 4.x's format levels, or version 1 when chosen.
        let new = |chosen: &[(String, i16)]| FinalizedFeatures {
            recorded: crate::protocol::versions::bootstrap_levels(chosen)
                .into_iter()
                .collect(),
            epoch: 0,
        };
        assert_eq!(listed(&new(&[])), at(2));
        assert_eq!(
            listed(&new(&[("transaction.version".to_string(), 1)])),
            at(1)
        );
    }
}
