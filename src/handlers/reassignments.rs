//! AlterPartitionReassignments and ListPartitionReassignments (CLUSTER
//! ALTER / DESCRIBE). In a cluster both go to the active controller
//! (`controller::reassignment` decides; Kafka's brokers forward them too).
//! A standalone broker has one replica per partition: the only valid target
//! is the current assignment, so a reassignment completes as it is accepted
//! and none is ever ongoing.

use bytes::Bytes;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::ResponseError;

use crate::broker::topics::validate_manual_assignment;
use crate::handlers::admin_cluster::{cluster_refused, sb};
use crate::handlers::forwarding::forward_and_respond;
use crate::handlers::{decode_or_close, ready, Pending, Reply, Request};
use crate::security::acl::AclOperation;

/// Every requested partition with `code` (a refusal of the whole request).
fn alter_refused(
    request: &AlterPartitionReassignmentsRequest,
    code: ResponseError,
    msg: Option<String>,
) -> AlterPartitionReassignmentsResponse {
    let msg = msg.map(sb);
    let responses = request
        .topics
        .iter()
        .map(|t| {
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code.code())
                                .with_error_message(msg.clone())
                        })
                        .collect(),
                )
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_error_code(code.code())
        .with_error_message(msg)
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses)
}

/// A cluster broker's AlterPartitionReassignments: authorized here, decided
/// by the active controller.
pub fn forward_alter_partition_reassignments(req: Request, body: Bytes) -> Pending {
    let request =
        match crate::handlers::decode::<AlterPartitionReassignmentsRequest>(&req.header, body) {
            Ok(r) => r,
            Err(e) => return ready(crate::handlers::malformed(&req, e)),
        };
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        let msg = cluster_refused(&req);
        let resp = alter_refused(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            Some(msg),
        );
        return ready(req.respond(&resp));
    }
    let version = req.version();
    forward_and_respond(
        req,
        request,
        version,
        |r| r.error_code == ResponseError::NotController.code(),
        |request| alter_refused(request, ResponseError::RequestTimedOut, None),
    )
}

/// A cluster broker's ListPartitionReassignments: authorized here,
/// answered by the active controller.
pub fn forward_list_partition_reassignments(req: Request, body: Bytes) -> Pending {
    let request =
        match crate::handlers::decode::<ListPartitionReassignmentsRequest>(&req.header, body) {
            Ok(r) => r,
            Err(e) => return ready(crate::handlers::malformed(&req, e)),
        };
    if !req.ctx.authorize_cluster(AclOperation::Describe) {
        return ready(req.respond(&list_refused(&req, &request)));
    }
    let version = req.version();
    forward_and_respond(
        req,
        request,
        version,
        |r| r.error_code == ResponseError::NotController.code(),
        |_| {
            ListPartitionReassignmentsResponse::default()
                .with_error_code(ResponseError::RequestTimedOut.code())
                .with_error_message(None)
        },
    )
}

pub fn alter_partition_reassignments(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, AlterPartitionReassignmentsRequest);
    let apis = &req.ctx.apis;
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        // Kafka's error response names every requested partition
        let msg = cluster_refused(req);
        let resp = alter_refused(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            Some(msg),
        );
        return req.respond(&resp);
    }
    let node_id = apis.config.node_id;
    let responses = request
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.as_str();
            let topic = apis.replicas.topics.get(name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let fail = |code: ResponseError, msg: String| {
                        r.clone()
                            .with_error_code(code.code())
                            .with_error_message(Some(sb(msg)))
                    };
                    let Some(topic) = &topic else {
                        return fail(
                            ResponseError::UnknownTopicOrPartition,
                            format!("Unable to find a topic named {name}."),
                        );
                    };
                    if topic.partition(p.partition_index).is_none() {
                        return fail(
                            ResponseError::UnknownTopicOrPartition,
                            format!("Unable to find partition {name}:{}.", p.partition_index),
                        );
                    }
                    match &p.replicas {
                        // Cancelling: nothing is ever in progress here
                        // (Kafka's controller gives no message for it).
                        None => r
                            .clone()
                            .with_error_code(ResponseError::NoReassignmentInProgress.code())
                            .with_error_message(None),
                        Some(replicas) => {
                            let ids: Vec<i32> = replicas.iter().map(|b| b.0).collect();
                            // The only valid target, [node.id], is the current
                            // assignment: accepted and complete at once.
                            match validate_manual_assignment(&ids, |b| b == node_id, None) {
                                Ok(()) => r.with_error_message(None),
                                Err(m) => fail(ResponseError::InvalidReplicaAssignment, m),
                            }
                        }
                    }
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    req.respond(
        &AlterPartitionReassignmentsResponse::default()
            .with_error_message(None)
            .with_allow_replication_factor_change(request.allow_replication_factor_change)
            .with_responses(responses),
    )
}

pub fn list_partition_reassignments(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, ListPartitionReassignmentsRequest);
    if !req.ctx.authorize_cluster(AclOperation::Describe) {
        return req.respond(&list_refused(req, &request));
    }
    // Reassignments complete as they are accepted, so none is ever ongoing;
    // Kafka lists only ongoing ones and skips unknown topics.
    req.respond(&ListPartitionReassignmentsResponse::default().with_error_message(None))
}

/// Kafka's refusal of ListPartitionReassignments: the requested partitions
/// echoed, with no replicas.
fn list_refused(
    req: &Request,
    request: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let topics = request
        .topics
        .iter()
        .flatten()
        .map(|t| {
            OngoingTopicReassignment::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|&p| OngoingPartitionReassignment::default().with_partition_index(p))
                        .collect(),
                )
        })
        .collect();
    ListPartitionReassignmentsResponse::default()
        .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
        .with_error_message(Some(sb(cluster_refused(req))))
        .with_topics(topics)
}
