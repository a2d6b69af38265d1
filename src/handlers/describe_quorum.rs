//! DescribeQuorum (API 55), what `kafka-metadata-quorum describe` asks: on a
//! controller listener it is answered by the quorum's leader from openraft's
//! metrics and `raft::replica_states` (Kafka's `ControllerApis.handleDescribeQuorum`
//! into `KafkaRaftClient`); a cluster broker authorizes DESCRIBE on the
//! cluster and forwards it to the active controller (Kafka's broker
//! forwards it too; kastle forwards without an envelope, so the broker
//! authorizes). A standalone node is its own single-voter quorum with an
//! empty metadata log (high watermark 0, epoch 1: the one election it won).
//!
//! Also DescribeCluster on a controller listener (Kafka's
//! `ControllerApis.handleDescribeCluster`, KIP-919): how an admin client
//! bootstrapped with `--bootstrap-controller` finds the controllers and the
//! active one.

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest,
    DescribeQuorumResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::controller::quorum_controller::QuorumController;
use crate::handlers::admin_cluster::cluster_refused;
use crate::handlers::forwarding::forward_and_respond;
use crate::handlers::{ready, Pending, Request};
use crate::raft::replica_states::{
    now_ms, top_level_error, QuorumView, ReplicaStates, METADATA_PARTITION,
};
use crate::security::acl::AclOperation;

/// DescribeCluster's endpoint types (Kafka's `EndpointType`).
const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

/// A broker's DescribeQuorum: DESCRIBE on the cluster, then the active
/// controller's answer (a cluster) or this node's own (standalone).
pub fn describe_quorum(req: Request, body: Bytes) -> Pending {
    let request = match crate::handlers::decode::<DescribeQuorumRequest>(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    let version = req.version();
    if !req.ctx.authorize_cluster(AclOperation::Describe) {
        let msg = cluster_refused(&req);
        let code = ResponseError::ClusterAuthorizationFailed;
        return ready(req.respond(&top_level_error(code, Some(msg), version)));
    }
    if req.ctx.apis.cluster.is_none() {
        let node_id = req.ctx.apis.config.node_id;
        let view = QuorumView {
            leader_id: node_id,
            term: 1,
            high_watermark: 0,
            voters: [(node_id, 0)].into(),
        };
        let states = ReplicaStates::default();
        return ready(req.respond(&states.describe(&request, Some(&view), version, now_ms())));
    }
    forward_and_respond(req, request, version, not_leader, |_| {
        top_level_error(ResponseError::RequestTimedOut, None, 0)
    })
}

/// An answer from a controller that does not lead the quorum.
fn not_leader(r: &DescribeQuorumResponse) -> bool {
    r.topics.iter().flat_map(|t| t.partitions.iter()).any(|p| {
        p.partition_index == METADATA_PARTITION
            && p.error_code == ResponseError::NotLeaderOrFollower.code()
    })
}

/// A controller listener's DescribeQuorum.
pub fn controller_describe_quorum(
    c: &QuorumController,
    request: &DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    let view = QuorumView::from_metrics(&c.raft.metrics().borrow(), c.node_id());
    c.replica_states()
        .describe(request, view.as_ref(), version, now_ms())
}

/// A controller listener's DescribeCluster: the voters on the controller
/// listener and the active controller's id (-1 unknown).
pub fn controller_describe_cluster(
    c: &QuorumController,
    request: &DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let cluster_id = c.cluster_id();
    let refused = |code: ResponseError, msg: String| {
        let code = if version == 0 {
            ResponseError::InvalidRequest
        } else {
            code
        };
        DescribeClusterResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(msg)))
    };
    match request.endpoint_type {
        ENDPOINT_CONTROLLER => {}
        ENDPOINT_BROKER => {
            return refused(
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type CONTROLLER, but we wanted an endpoint of type BROKER".into(),
            )
        }
        other => {
            return refused(
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {other}"),
            )
        }
    }
    let brokers: Vec<DescribeClusterBroker> = c
        .replica_states()
        .endpoints()
        .iter()
        .map(|(id, e)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(*id))
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(i32::from(e.port))
                .with_rack(None)
        })
        .collect();
    let leader = c.leader_id().unwrap_or(-1);
    let controller_id = if brokers.iter().any(|b| b.broker_id.0 == leader) {
        leader
    } else {
        -1
    };
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(cluster_id.to_string()))
        .with_controller_id(BrokerId(controller_id))
        .with_brokers(brokers);
    if version >= 1 {
        resp.endpoint_type = ENDPOINT_CONTROLLER;
    }
    if request.include_cluster_authorized_operations {
        // The controller listener does not authenticate: kastle's brokers
        // authorize (see the module doc); report no operations rather
        // than claim any.
        resp.cluster_authorized_operations = 0;
    }
    resp
}
