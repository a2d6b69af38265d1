//! The group admin APIs across group types (classic, consumer, share,
//! streams): ListGroups, DescribeGroups and DeleteGroups. Each decodes its
//! request, checks Kafka's ACLs, asks the GroupCoordinator (and, for share
//! groups, their state) and encodes the answer at the request's version.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::ResponseError;

use crate::coordinator::group::writer::DurableWait;
use crate::handlers::groups::{durable, group_allowed, s, GROUP_DENIED};
use crate::handlers::share_group_offsets;
use crate::handlers::{decode_or_close, ready, Pending, Reply, Request};
use crate::protocol::delete_groups;
use crate::security::acl::{AclOperation, ResourceType};

/// DescribeGroups' `authorized_operations` when the client did not ask.
const OPS_NOT_REQUESTED: i32 = i32::MIN;
/// What every client may do to a group without an authorizer: READ(3),
/// DELETE(6), DESCRIBE(8), DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11).
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

pub fn list_groups(req: &Request, body: Bytes) -> Reply {
    let r = decode_or_close!(req, body, ListGroupsRequest);
    let states: Vec<String> = r
        .states_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let types: Vec<String> = r
        .types_filter
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let groups = {
        req.ctx
            .apis
            .groups
            .list_groups()
            .into_iter()
            .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
            .filter(|g| states.is_empty() || states.contains(&g.state.to_ascii_lowercase()))
            // DESCRIBE on the cluster lists every group; otherwise the
            // ones the client may describe.
            .filter(|g| {
                req.ctx.authorize_cluster(AclOperation::Describe)
                    || group_allowed(req, AclOperation::Describe, &g.group_id)
            })
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(s(g.group_id)))
                    .with_protocol_type(s(g.protocol_type))
                    .with_group_state(s(g.state))
                    .with_group_type(s(g.group_type))
            })
            .collect()
    };
    req.respond(&ListGroupsResponse::default().with_groups(groups))
}

pub fn describe_groups(req: &Request, body: Bytes) -> Reply {
    let r = decode_or_close!(req, body, DescribeGroupsRequest);
    let version = req.version();
    let groups = r
        .groups
        .iter()
        .map(|id| {
            if !group_allowed(req, AclOperation::Describe, &id.0) {
                return DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_error_code(GROUP_DENIED)
                    .with_authorized_operations(OPS_NOT_REQUESTED);
            }
            let ops = if r.include_authorized_operations {
                req.ctx
                    .authorized_operations(ResourceType::Group, &id.0, GROUP_OPERATIONS)
            } else {
                OPS_NOT_REQUESTED
            };
            let base = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(ops);
            match req.ctx.apis.groups.describe_group(&id.0) {
                // Not (or not yet) this broker's group: Kafka's groupError.
                Err(e) => DescribedGroup::default()
                    .with_group_id(id.clone())
                    .with_error_code(e)
                    .with_authorized_operations(OPS_NOT_REQUESTED),
                Ok(Ok(d)) => base
                    .with_group_state(s(d.state.name()))
                    .with_protocol_type(s(d.protocol_type))
                    .with_protocol_data(s(d.protocol_data))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(s(m.member_id))
                                    .with_group_instance_id(m.group_instance_id.map(s))
                                    .with_client_id(s(m.client_id))
                                    .with_client_host(s(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment)
                            })
                            .collect(),
                    ),
                // KIP-1043: v6 reports a missing group as GROUP_ID_NOT_FOUND;
                // older versions describe it as Dead.
                // No resource, no operations: Kafka leaves them unset.
                Ok(Err(message)) if version >= 6 => base
                    .with_authorized_operations(OPS_NOT_REQUESTED)
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(s(message)))
                    .with_group_state(s("Dead")),
                Ok(Err(_)) => base.with_group_state(s("Dead")),
            }
        })
        .collect();
    req.respond(&DescribeGroupsResponse::default().with_groups(groups))
}

pub fn delete_groups(req: Request, body: Bytes) -> Pending {
    let r: DeleteGroupsRequest = match crate::handlers::decode(&req.header, body) {
        Ok(r) => r,
        Err(e) => return ready(crate::handlers::malformed(&req, e)),
    };
    let apis = req.ctx.apis.clone();
    // Kafka answers each group once (`distinct`: the response is keyed by
    // group id).
    let mut names = r.groups_names;
    let mut seen = HashSet::with_capacity(names.len());
    names.retain(|g| seen.insert(g.0.to_string()));
    #[allow(clippy::type_complexity)]
    let results: Vec<(GroupId, i16, Option<DurableWait>, Vec<DurableWait>)> = names
        .into_iter()
        .map(|g| {
            if !group_allowed(&req, AclOperation::Delete, &g.0) {
                return (g, GROUP_DENIED, None, Vec::new());
            }
            let share = apis.groups.share_group_describe(&g.0).is_ok();
            let (code, wait) = apis.groups.delete_group(&g.0);
            // A share group's state goes with it; after a restart its id
            // is known by its state only (membership is in memory).
            let stateful = code == ResponseError::GroupIdNotFound.code()
                && !apis.share_state.group_states(&g.0).is_empty()
                && apis.cluster.is_none();
            if (share && code == 0) || stateful {
                return match share_group_offsets::delete_share_group_state(&apis, &g.0) {
                    Ok(waits) => (g, 0, None, waits),
                    Err(c) => (g, c, None, Vec::new()),
                };
            }
            (g, code, wait, Vec::new())
        })
        .collect();
    Box::pin(async move {
        let mut out = Vec::with_capacity(results.len());
        for (g, mut code, wait, share_waits) in results {
            for w in share_waits {
                if let Err(c) = w.wait(apis.share_state.config.write_timeout_ms).await {
                    code = c;
                }
            }
            let code = match durable(&apis, wait).await {
                Ok(()) => code,
                Err(c) => c,
            };
            out.push(
                DeletableGroupResult::default()
                    .with_group_id(g)
                    .with_error_code(code),
            );
        }
        // v3 adds a message per group, null for every code kastle answers.
        req.respond_past_crate(
            delete_groups::CRATE_MAX,
            &DeleteGroupsResponse::default().with_results(out),
            delete_groups::write_v3,
        )
    })
}
