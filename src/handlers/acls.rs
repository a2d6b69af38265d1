//! CreateAcls, DescribeAcls, DeleteAcls, answered as a Kafka 4.x KRaft
//! broker with `StandardAuthorizer` answers them: CLUSTER ALTER to create
//! or delete, CLUSTER DESCRIBE to describe; each creation validated on its
//! own; a filter with an UNKNOWN part closes the connection (Kafka refuses
//! to parse such a request). Without an authorizer: SECURITY_DISABLED.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::authorizer::Authorizer;
use crate::controller::acl_control::{self, AclError};
use crate::controller::quorum_controller::QuorumController;
use crate::handlers::forwarding::forward_and_respond;
use crate::handlers::{decode, decode_or_close, malformed, ready, Pending, Reply, Request};
use crate::security::acl::{
    self, AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, PatternType,
    PermissionType, ResourcePattern, ResourceType,
};

/// Kafka's messages without an authorizer: CreateAcls and DeleteAcls, and
/// (worded differently in Kafka 4.4's `AclApis`) DescribeAcls.
const NO_AUTHORIZER: &str = "No Authorizer is configured.";
const NO_AUTHORIZER_DESCRIBE: &str = "No Authorizer is configured on the broker";

fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Kafka's message for a request refused by the cluster check.
fn not_authorized(req: &Request) -> String {
    format!(
        "Request {} (principal {}, host {}) is not authorized.",
        req.header.api_key,
        req.ctx.principal,
        req.ctx.peer.ip()
    )
}

pub(crate) fn binding(c: &AclCreation) -> AclBinding {
    AclBinding {
        pattern: ResourcePattern {
            resource_type: ResourceType::from_code(c.resource_type),
            name: c.resource_name.to_string(),
            pattern_type: PatternType::from_code(c.resource_pattern_type),
        },
        entry: AccessControlEntry {
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: AclOperation::from_code(c.operation),
            permission: PermissionType::from_code(c.permission_type),
        },
    }
}

/// The checks a broker makes before it decides or forwards a CreateAcls:
/// the request (closing the connection when a creation has an UNKNOWN
/// part), CLUSTER ALTER, an authorizer, and bindings Kafka can build. `Err`
/// is the answer.
#[allow(clippy::result_large_err)]
fn check_create(
    req: &Request,
    body: Bytes,
) -> Result<(CreateAclsRequest, Vec<AclBinding>, &Authorizer), Reply> {
    let request = decode::<CreateAclsRequest>(&req.header, body).map_err(|e| malformed(req, e))?;
    let all_with = |code: ResponseError, msg: String| {
        let results = request
            .creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(code.code())
                    .with_error_message(Some(sb(msg.clone())))
            })
            .collect();
        CreateAclsResponse::default().with_results(results)
    };
    let bindings: Vec<AclBinding> = request.creations.iter().map(binding).collect();
    if bindings.iter().any(|b| {
        b.pattern.resource_type == ResourceType::Unknown
            || b.pattern.pattern_type == PatternType::Unknown
            || b.entry.operation == AclOperation::Unknown
            || b.entry.permission == PermissionType::Unknown
    }) {
        return Err(malformed(
            req,
            "CreatableAcls contain unknown elements".to_string(),
        ));
    }
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        return Err(req.respond(&all_with(
            ResponseError::ClusterAuthorizationFailed,
            not_authorized(req),
        )));
    }
    let Some(authorizer) = req.ctx.apis.authorizer.as_deref() else {
        return Err(req.respond(&all_with(
            ResponseError::SecurityDisabled,
            NO_AUTHORIZER.to_string(),
        )));
    };
    // ANY or MATCH where a stored ACL needs a definite value: Kafka cannot
    // even build the binding and fails the whole request, without a message.
    if bindings.iter().any(|b| {
        b.pattern.resource_type == ResourceType::Any
            || matches!(
                b.pattern.pattern_type,
                PatternType::Any | PatternType::Match
            )
            || b.entry.operation == AclOperation::Any
            || b.entry.permission == PermissionType::Any
    }) {
        let results = bindings
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(ResponseError::UnknownServerError.code())
                    .with_error_message(None)
            })
            .collect();
        return Err(req.respond(&CreateAclsResponse::default().with_results(results)));
    }
    Ok((request, bindings, authorizer))
}

pub fn create_acls(req: &Request, body: Bytes) -> Reply {
    let (bindings, authorizer) = match check_create(req, body) {
        Ok((_, b, a)) => (b, a),
        Err(reply) => return reply,
    };
    let checks: Vec<Result<(), String>> = bindings.iter().map(acl::validate_new).collect();
    let valid: Vec<AclBinding> = bindings
        .iter()
        .zip(&checks)
        .filter(|(_, c)| c.is_ok())
        .map(|(b, _)| b.clone())
        .collect();
    let stored = authorizer.create(&valid);
    if let Err(e) = &stored {
        tracing::error!(error = %e, "storing ACLs failed");
    }
    let results = checks
        .into_iter()
        .map(|c| match (c, &stored) {
            (Err(msg), _) => AclCreationResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(sb(msg))),
            (Ok(()), Err(e)) => AclCreationResult::default()
                .with_error_code(ResponseError::UnknownServerError.code())
                .with_error_message(Some(sb(e.clone()))),
            (Ok(()), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    req.respond(&CreateAclsResponse::default().with_results(results))
}

pub fn describe_acls(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DescribeAclsRequest);
    let filter = AclBindingFilter {
        resource_type: ResourceType::from_code(request.resource_type_filter),
        name: request.resource_name_filter.as_ref().map(|s| s.to_string()),
        pattern_type: PatternType::from_code(request.pattern_type_filter),
        principal: request.principal_filter.as_ref().map(|s| s.to_string()),
        host: request.host_filter.as_ref().map(|s| s.to_string()),
        operation: AclOperation::from_code(request.operation),
        permission: PermissionType::from_code(request.permission_type),
    };
    if filter.is_unknown() {
        return malformed(
            req,
            "DescribeAcls filter contains UNKNOWN elements".to_string(),
        );
    }
    if !req.ctx.authorize_cluster(AclOperation::Describe) {
        return req.respond(
            &DescribeAclsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(sb(not_authorized(req)))),
        );
    }
    let Some(authorizer) = &req.ctx.apis.authorizer else {
        return req.respond(
            &DescribeAclsResponse::default()
                .with_error_code(ResponseError::SecurityDisabled.code())
                .with_error_message(Some(sb(NO_AUTHORIZER_DESCRIBE))),
        );
    };
    let mut by_resource: BTreeMap<ResourcePattern, Vec<AclDescription>> = BTreeMap::new();
    for b in authorizer.describe(&filter) {
        let e = &b.entry;
        by_resource.entry(b.pattern.clone()).or_default().push(
            AclDescription::default()
                .with_principal(sb(e.principal.clone()))
                .with_host(sb(e.host.clone()))
                .with_operation(e.operation.code())
                .with_permission_type(e.permission.code()),
        );
    }
    let resources = by_resource
        .into_iter()
        .map(|(p, acls)| {
            DescribeAclsResource::default()
                .with_resource_type(p.resource_type.code())
                .with_resource_name(sb(p.name))
                .with_pattern_type(p.pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    req.respond(&DescribeAclsResponse::default().with_resources(resources))
}

pub(crate) fn filter_of(f: &DeleteAclsFilter) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: ResourceType::from_code(f.resource_type_filter),
        name: f.resource_name_filter.as_ref().map(|s| s.to_string()),
        pattern_type: PatternType::from_code(f.pattern_type_filter),
        principal: f.principal_filter.as_ref().map(|s| s.to_string()),
        host: f.host_filter.as_ref().map(|s| s.to_string()),
        operation: AclOperation::from_code(f.operation),
        permission: PermissionType::from_code(f.permission_type),
    }
}

/// The checks a broker makes before it decides or forwards a DeleteAcls
/// (a filter with an UNKNOWN part closes the connection, CLUSTER ALTER, an
/// authorizer). `Err` is the answer.
#[allow(clippy::result_large_err)]
fn check_delete(
    req: &Request,
    body: Bytes,
) -> Result<(DeleteAclsRequest, Vec<AclBindingFilter>, &Authorizer), Reply> {
    let request = decode::<DeleteAclsRequest>(&req.header, body).map_err(|e| malformed(req, e))?;
    let filters: Vec<AclBindingFilter> = request.filters.iter().map(filter_of).collect();
    if filters.iter().any(AclBindingFilter::is_unknown) {
        return Err(malformed(
            req,
            "DeleteAcls filters contain UNKNOWN elements".to_string(),
        ));
    }
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        return Err(req.respond(&delete_all_with(
            filters.len(),
            ResponseError::ClusterAuthorizationFailed,
            not_authorized(req),
        )));
    }
    let Some(authorizer) = req.ctx.apis.authorizer.as_deref() else {
        return Err(req.respond(&delete_all_with(
            filters.len(),
            ResponseError::SecurityDisabled,
            NO_AUTHORIZER.to_string(),
        )));
    };
    Ok((request, filters, authorizer))
}

/// Every filter failing with `code`.
fn delete_all_with(filters: usize, code: ResponseError, msg: String) -> DeleteAclsResponse {
    let results = (0..filters)
        .map(|_| {
            DeleteAclsFilterResult::default()
                .with_error_code(code.code())
                .with_error_message(Some(sb(msg.clone())))
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

/// The DeleteAcls answer: per filter, the ACLs it matched.
fn deleted_response(deleted: Vec<Vec<AclBinding>>) -> DeleteAclsResponse {
    let results = deleted
        .into_iter()
        .map(|acls| {
            DeleteAclsFilterResult::default()
                .with_error_message(None)
                .with_matching_acls(matching(acls))
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching(acls: Vec<AclBinding>) -> Vec<DeleteAclsMatchingAcl> {
    acls.into_iter()
        .map(|b| {
            DeleteAclsMatchingAcl::default()
                .with_error_message(None)
                .with_resource_type(b.pattern.resource_type.code())
                .with_resource_name(sb(b.pattern.name))
                .with_pattern_type(b.pattern.pattern_type.code())
                .with_principal(sb(b.entry.principal))
                .with_host(sb(b.entry.host))
                .with_operation(b.entry.operation.code())
                .with_permission_type(b.entry.permission.code())
        })
        .collect()
}

pub fn delete_acls(req: &Request, body: Bytes) -> Reply {
    let (filters, authorizer) = match check_delete(req, body) {
        Ok((_, f, a)) => (f, a),
        Err(reply) => return reply,
    };
    let deleted = match authorizer.delete(&filters) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "storing ACLs failed");
            return req.respond(&delete_all_with(
                filters.len(),
                ResponseError::UnknownServerError,
                e,
            ));
        }
    };
    req.respond(&deleted_response(deleted))
}

/// CreateAcls on a cluster broker: checked and authorized here, then
/// decided by the active controller (Kafka forwards it), whose answer the
/// client gets. REQUEST_TIMED_OUT for every creation when no controller
/// answered in time.
pub fn forward_create_acls(req: Request, body: Bytes) -> Pending {
    let request = match check_create(&req, body) {
        Ok((r, _, _)) => r,
        Err(reply) => return ready(reply),
    };
    let version = req.version();
    forward_and_respond(
        req,
        request,
        version,
        |r| {
            r.results
                .iter()
                .any(|c| c.error_code == ResponseError::NotController.code())
        },
        |request| {
            create_all_with(
                request.creations.len(),
                ResponseError::RequestTimedOut,
                None,
            )
        },
    )
}

/// DeleteAcls on a cluster broker: checked and authorized here, then
/// decided by the active controller.
pub fn forward_delete_acls(req: Request, body: Bytes) -> Pending {
    let request = match check_delete(&req, body) {
        Ok((r, _, _)) => r,
        Err(reply) => return ready(reply),
    };
    let version = req.version();
    forward_and_respond(
        req,
        request,
        version,
        |r| {
            r.filter_results
                .iter()
                .any(|f| f.error_code == ResponseError::NotController.code())
        },
        |request| {
            delete_all_with(
                request.filters.len(),
                ResponseError::RequestTimedOut,
                "No controller answered the forwarded request in time.".to_string(),
            )
        },
    )
}

/// Every creation failing with `code`.
fn create_all_with(n: usize, code: ResponseError, msg: Option<String>) -> CreateAclsResponse {
    let results = (0..n)
        .map(|_| {
            AclCreationResult::default()
                .with_error_code(code.code())
                .with_error_message(msg.clone().map(sb))
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// CreateAcls as the active controller decides it (`ControllerApis`
/// `handleCreateAcls` over `AclControlManager.createAcls`), committed
/// before the answer. The broker that forwarded it has authorized it.
pub async fn controller_create_acls(
    c: &QuorumController,
    request: &CreateAclsRequest,
) -> CreateAclsResponse {
    let bindings: Vec<AclBinding> = request.creations.iter().map(binding).collect();
    let decided = c
        .write(|image, _| {
            let d = acl_control::create_acls(image, &bindings, uuid::Uuid::new_v4);
            (d.records, d.results)
        })
        .await;
    match decided {
        Ok(Ok(results)) => CreateAclsResponse::default().with_results(
            results
                .into_iter()
                .map(|r| match r {
                    Ok(()) => AclCreationResult::default(),
                    Err(AclError { code, message }) => AclCreationResult::default()
                        .with_error_code(code.code())
                        .with_error_message(Some(sb(message))),
                })
                .collect(),
        ),
        Ok(Err(AclError { code, message })) => {
            create_all_with(request.creations.len(), code, Some(message))
        }
        Err(e) => create_all_with(request.creations.len(), e.error(), None),
    }
}

/// DeleteAcls as the active controller decides it
/// (`AclControlManager.deleteAcls`), committed before the answer.
pub async fn controller_delete_acls(
    c: &QuorumController,
    request: &DeleteAclsRequest,
) -> DeleteAclsResponse {
    let filters: Vec<AclBindingFilter> = request.filters.iter().map(filter_of).collect();
    let decided = c
        .write(|image, _| {
            let d = acl_control::delete_acls(image, &filters);
            (d.records, d.results)
        })
        .await;
    match decided {
        Ok(Ok(results)) => DeleteAclsResponse::default().with_filter_results(
            results
                .into_iter()
                .map(|r| match r {
                    Ok(acls) => DeleteAclsFilterResult::default()
                        .with_error_message(None)
                        .with_matching_acls(matching(acls)),
                    Err(AclError { code, message }) => DeleteAclsFilterResult::default()
                        .with_error_code(code.code())
                        .with_error_message(Some(sb(message))),
                })
                .collect(),
        ),
        Ok(Err(AclError { code, message })) => {
            delete_all_with(request.filters.len(), code, message)
        }
        Err(e) => {
            let message = format!("{e:?}");
            delete_all_with(request.filters.len(), e.error(), message)
        }
    }
}
