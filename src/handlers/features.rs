//! UpdateFeatures (API 57, KIP-584), what `kafka-features.sh upgrade` and
//! `downgrade` and `Admin.updateFeatures` send: ALTER on the cluster, then
//! decided by `controller::feature_control` over the levels in force. A
//! standalone broker writes the change to its own store before answering;
//! a cluster broker forwards the request to the active controller, which
//! writes FeatureLevelRecords (Kafka's broker forwards it too). The levels
//! are read back through ApiVersions (`Admin.describeFeatures`).

use bytes::Bytes;
use kafka_protocol::messages::UpdateFeaturesRequest;
use kafka_protocol::ResponseError;

use crate::controller::feature_control::{self, Supporters};
use crate::handlers::admin_cluster::cluster_refused;
use crate::handlers::forwarding::forward_and_respond;
use crate::handlers::{decode, malformed, ready, Pending, Request};
use crate::security::acl::AclOperation;

pub fn update_features(req: Request, body: Bytes) -> Pending {
    let request = match decode::<UpdateFeaturesRequest>(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(malformed(&req, e)),
    };
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        let resp = feature_control::refused(
            ResponseError::ClusterAuthorizationFailed,
            Some(cluster_refused(&req)),
        );
        return ready(req.respond(&resp));
    }
    let version = req.version();
    if req.ctx.apis.cluster.is_some() {
        return forward_and_respond(
            req,
            request,
            version,
            |r| r.error_code == ResponseError::NotController.code(),
            |_| feature_control::refused(ResponseError::RequestTimedOut, None),
        );
    }
    let Some(store) = req.ctx.apis.features.clone() else {
        let resp = feature_control::refused(ResponseError::UnknownServerError, None);
        return ready(req.respond(&resp));
    };
    let who = Supporters {
        local_node: req.ctx.apis.config.node_id,
        brokers: Vec::new(),
    };
    let resp = match feature_control::decide(&store.current(), &request, version, &who) {
        Ok(changes) if changes.is_empty() => feature_control::response(&request, version, Ok(())),
        Ok(changes) => match store.apply(&changes) {
            Ok(()) => {
                for (name, level) in &changes {
                    tracing::info!(feature = %name, level, "finalized feature level changed");
                }
                feature_control::response(&request, version, Ok(()))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the finalized feature levels");
                feature_control::refused(
                    ResponseError::KafkaStorageError,
                    Some(format!("cannot write the finalized feature levels: {e}")),
                )
            }
        },
        Err(message) => feature_control::response(&request, version, Err(message)),
    };
    ready(req.respond(&resp))
}
