//! A cluster broker's AlterUserScramCredentials and AlterClientQuotas:
//! authorized here as on a standalone node (ALTER, resp. ALTER_CONFIGS on
//! the cluster), then sent to the active controller, which decides and
//! writes them to the metadata log (`controller::scram_control`,
//! `controller::client_quota_control`). Every broker then applies them
//! from its image; the Describe requests are answered from there.

use bytes::Bytes;
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterUserScramCredentialsRequest};
use kafka_protocol::ResponseError;

use crate::handlers::admin_cluster::{alter_quotas_failed, cluster_refused};
use crate::handlers::forwarding::forward_and_respond;
use crate::handlers::scram_credentials::{alter_failed, alter_refused};
use crate::handlers::{decode, malformed, ready, Pending, Request};
use crate::security::acl::AclOperation;

/// AlterUserScramCredentials in a cluster.
pub fn alter_user_scram_credentials(req: Request, body: Bytes) -> Pending {
    let request = match decode::<AlterUserScramCredentialsRequest>(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        return ready(req.respond(&alter_refused(&request)));
    }
    let version = req.version();
    forward_and_respond(
        req,
        request,
        version,
        |r| {
            r.results
                .iter()
                .any(|u| u.error_code == ResponseError::NotController.code())
        },
        |request| alter_failed(request, ResponseError::RequestTimedOut, None),
    )
}

/// AlterClientQuotas in a cluster.
pub fn alter_client_quotas(req: Request, body: Bytes) -> Pending {
    let request = match decode::<AlterClientQuotasRequest>(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    if !req.ctx.authorize_cluster(AclOperation::AlterConfigs) {
        let resp = alter_quotas_failed(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            Some(cluster_refused(&req)),
        );
        return ready(req.respond(&resp));
    }
    let version = req.version();
    forward_and_respond(
        req,
        request,
        version,
        |r| {
            r.entries
                .iter()
                .any(|e| e.error_code == ResponseError::NotController.code())
        },
        |request| alter_quotas_failed(request, ResponseError::RequestTimedOut, None),
    )
}
