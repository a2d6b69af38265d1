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
use crate::protocol::streams::Reader;
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

/// The newest ApiVersions the `kafka-protocol` crate decodes; v5 adds two
/// request fields and leaves the response's layout as v4's.
const CRATE_MAX: i16 = 4;

/// ApiVersions v5's request (KIP-1242): v4's fields, then the cluster and
/// node the client means to reach (null and -1 when it does not know yet).
struct RequestV5 {
    v4: ApiVersionsRequest,
    cluster_id: Option<String>,
    node_id: i32,
}

/// Reads a v5 body the schema walker has accepted (so every length in it is
/// bounded by the frame). Its tagged fields carry nothing kastle reads.
fn read_v5(body: &[u8]) -> Result<RequestV5, String> {
    let mut r = Reader::new(body, "ApiVersionsRequest v5");
    let name = r.str().map_err(|e| e.to_string())?;
    let version = r.str().map_err(|e| e.to_string())?;
    let cluster_id = r.nstr().map_err(|e| e.to_string())?;
    let node_id = r.i32().map_err(|e| e.to_string())?;
    r.tags().map_err(|e| e.to_string())?;
    Ok(RequestV5 {
        v4: ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_string(name))
            .with_client_software_version(StrBytes::from_string(version)),
        cluster_id,
        node_id,
    })
}

/// Kafka's `ApiVersionsRequest.isValid` for v5: the cluster id and the node
/// id come together or not at all.
fn named_together(r: &RequestV5) -> bool {
    r.cluster_id.is_some() == (r.node_id != -1)
}

/// Kafka's KIP-1242 check: a client that names the cluster it means to
/// reach must have reached it, and the node too (the node id is compared
/// only when a cluster id is given, as Kafka does).
fn meant_elsewhere(r: &RequestV5, cluster_id: &str, node_id: i32) -> bool {
    r.cluster_id
        .as_ref()
        .is_some_and(|c| c != cluster_id || r.node_id != node_id)
}

pub fn handle(req: &Request, body: Bytes) -> Reply {
    let mut rebootstrap = false;
    let mut valid = true;
    let request = if req.version() > CRATE_MAX {
        match crate::handlers::decode_own(req, &body, read_v5) {
            Ok(r) => {
                let apis = &req.ctx.apis;
                valid = named_together(&r);
                rebootstrap = meant_elsewhere(&r, &apis.cluster_id, apis.config.node_id);
                r.v4
            }
            Err(reply) => return reply,
        }
    } else {
        decode_or_close!(req, body, ApiVersionsRequest)
    };
    let mut resp = ApiVersionsResponse::default();
    // Kafka's order: an invalid request before a client meant elsewhere
    let software_valid = req.version() < 3
        || (valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version));
    if !valid || !software_valid {
        resp.error_code = ResponseError::InvalidRequest.code();
        return respond(req, &resp);
    }
    if rebootstrap {
        resp.error_code = ResponseError::RebootstrapRequired.code();
        return respond(req, &resp);
    }
    resp.api_keys = api_keys();
    resp.supported_features = supported_features(req.version());
    let features = req.ctx.apis.finalized_features();
    resp.finalized_features = finalized_features(&features);
    resp.finalized_features_epoch = features.epoch;
    respond(req, &resp)
}

/// The answer at the request's version, v5 in v4's layout (the same bytes);
/// ApiVersions' response header is always v0.
fn respond(req: &Request, resp: &ApiVersionsResponse) -> Reply {
    if req.version() <= CRATE_MAX {
        return req.respond(resp);
    }
    match response::encode_with_header_version(req.header.correlation_id, 0, CRATE_MAX, resp) {
        Ok(buf) => Reply::Frame(buf),
        Err(e) => Reply::Close(format!("encoding ApiVersions: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::schema;

    fn v5(cluster_id: Option<&str>, node_id: i32) -> RequestV5 {
        RequestV5 {
            v4: ApiVersionsRequest::default(),
            cluster_id: cluster_id.map(str::to_string),
            node_id,
        }
    }

    #[test]
    fn a_v5_body_is_walked_and_read() {
        let mut body = vec![5];
        body.extend_from_slice(b"java");
        body.push(6);
        body.extend_from_slice(b"4.4.0");
        body.push(3);
        body.extend_from_slice(b"c1");
        body.extend_from_slice(&7i32.to_be_bytes());
        // one tagged field (tag 9, 2 bytes): walked and skipped
        body.extend_from_slice(&[1, 9, 2, 0xab, 0xcd]);
        assert_eq!(schema::check_request_body(18, 5, &body), Ok(body.len()));
        let r = read_v5(&body).expect("v5 body");
        assert_eq!(r.v4.client_software_name.as_str(), "java");
        assert_eq!(r.v4.client_software_version.as_str(), "4.4.0");
        assert_eq!(r.cluster_id.as_deref(), Some("c1"));
        assert_eq!(r.node_id, 7);
        // a null cluster id
        let mut null = body[..11].to_vec(); // the two software fields
        null.push(0);
        null.extend_from_slice(&(-1i32).to_be_bytes());
        null.push(0);
        assert_eq!(schema::check_request_body(18, 5, &null), Ok(null.len()));
        assert_eq!(read_v5(&null).expect("v5 body").cluster_id, None);
        // cut short: the walker refuses it before any read
        assert!(schema::check_request_body(18, 5, &body[..body.len() - 6]).is_err());
    }

    #[test]
    fn kip_1242_rebootstrap_only_for_a_named_other_cluster_or_node() {
        assert!(!meant_elsewhere(&v5(None, -1), "c1", 1));
        // Kafka compares the node only when a cluster is named
        assert!(!meant_elsewhere(&v5(None, 7), "c1", 1));
        assert!(!meant_elsewhere(&v5(Some("c1"), 1), "c1", 1));
        assert!(meant_elsewhere(&v5(Some("c1"), 2), "c1", 1));
        assert!(meant_elsewhere(&v5(Some("c2"), 1), "c1", 1));
        assert!(meant_elsewhere(&v5(Some("c1"), -1), "c1", 1));
        // ... but Kafka answers INVALID_REQUEST before that when only one
        // of the two is given
        assert!(named_together(&v5(None, -1)));
        assert!(named_together(&v5(Some("c1"), 1)));
        assert!(!named_together(&v5(None, 7)));
        assert!(!named_together(&v5(Some("c1"), -1)));
    }

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
            l.insert(2, ("share.version".to_string(), 2));
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
