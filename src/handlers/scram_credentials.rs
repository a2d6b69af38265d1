//! Describe/AlterUserScramCredentials (KIP-554) over the broker's
//! `ScramCredentialStore`, and SaslHandshake/SaslAuthenticate arriving
//! after authentication (or on a listener without SASL), which Kafka
//! answers ILLEGAL_SASL_STATE. The exchange itself happens before the
//! request loop, in the network layer's authenticator.

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::scram_credentials::changes_of;
use crate::handlers::{decode_or_close, Reply, Request};
use crate::security::acl::AclOperation;

/// The message of Kafka's `ClusterAuthorizationException` by default.
const CLUSTER_AUTHORIZATION_FAILED: &str = "Cluster authorization failed.";

fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub fn describe_user_scram_credentials(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DescribeUserScramCredentialsRequest);
    // As Kafka: DESCRIBE on the cluster, else the whole request refused.
    // Kafka's error response has one nameless result per requested user, and
    // no message (the error's default one is left out).
    if !req.ctx.authorize_cluster(AclOperation::Describe) {
        let denied = ResponseError::ClusterAuthorizationFailed.code();
        let results = request
            .users
            .iter()
            .flatten()
            .map(|_| {
                DescribeUserScramCredentialsResult::default()
                    .with_error_code(denied)
                    .with_error_message(None)
            })
            .collect();
        return req.respond(
            &DescribeUserScramCredentialsResponse::default()
                .with_error_code(denied)
                .with_error_message(None)
                .with_results(results),
        );
    }
    let users = request
        .users
        .map(|u| u.into_iter().map(|n| n.name.to_string()).collect());
    let results = req
        .ctx
        .apis
        .scram
        .describe(users)
        .into_iter()
        .map(|(user, r)| {
            let row = DescribeUserScramCredentialsResult::default()
                .with_user(sb(user))
                .with_error_message(None);
            match r {
                Ok(infos) => row.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(m, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(m.type_code())
                                .with_iterations(iterations)
                        })
                        .collect(),
                ),
                Err((code, msg)) => row
                    .with_error_code(code.code())
                    .with_error_message(Some(sb(msg))),
            }
        })
        .collect();
    req.respond(
        &DescribeUserScramCredentialsResponse::default()
            .with_error_message(None)
            .with_results(results),
    )
}

pub fn alter_user_scram_credentials(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, AlterUserScramCredentialsRequest);
    // As Kafka: ALTER on the cluster, else every named user refused.
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        return req.respond(&alter_refused(&request));
    }
    let (deletions, upsertions) = changes_of(&request);
    let results = req
        .ctx
        .apis
        .scram
        .alter(deletions, upsertions)
        .into_iter()
        .map(|(user, r)| {
            let row = AlterUserScramCredentialsResult::default()
                .with_user(sb(user))
                .with_error_message(None);
            match r {
                Ok(()) => row,
                Err((code, msg)) => row
                    .with_error_code(code.code())
                    .with_error_message(Some(sb(msg))),
            }
        })
        .collect();
    req.respond(&AlterUserScramCredentialsResponse::default().with_results(results))
}

/// The answer to an AlterUserScramCredentials without ALTER on the
/// cluster: every named user refused, once each.
pub(crate) fn alter_refused(
    request: &AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    alter_failed(
        request,
        ResponseError::ClusterAuthorizationFailed,
        Some(CLUSTER_AUTHORIZATION_FAILED),
    )
}

/// Every user the request names (once each) failed with `code`.
pub(crate) fn alter_failed(
    request: &AlterUserScramCredentialsRequest,
    code: ResponseError,
    message: Option<&str>,
) -> AlterUserScramCredentialsResponse {
    let mut users: Vec<String> = request
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(request.upsertions.iter().map(|u| u.name.to_string()))
        .collect();
    users.sort();
    users.dedup();
    let results = users
        .into_iter()
        .map(|u| {
            AlterUserScramCredentialsResult::default()
                .with_user(sb(u))
                .with_error_code(code.code())
                .with_error_message(message.map(sb))
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// A SaslHandshake once the connection is authenticated (or needs none).
pub fn sasl_handshake_after_auth(req: &Request, body: Bytes) -> Reply {
    let _request = decode_or_close!(req, body, SaslHandshakeRequest);
    req.respond(
        &SaslHandshakeResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_mechanisms(vec![]),
    )
}

/// A SaslAuthenticate once the connection is authenticated (or needs none).
pub fn sasl_authenticate_after_auth(req: &Request, body: Bytes) -> Reply {
    let _request = decode_or_close!(req, body, SaslAuthenticateRequest);
    req.respond(
        &SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(sb(
                "SaslAuthenticate request received after successful authentication",
            ))),
    )
}
