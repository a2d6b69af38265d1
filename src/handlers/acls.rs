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

use crate::handlers::{decode_or_close, malformed, Reply, Request};
use crate::security::acl::{
    self, AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, PatternType,
    PermissionType, ResourcePattern, ResourceType,
};

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

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

fn binding(c: &AclCreation) -> AclBinding {
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

pub fn create_acls(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, CreateAclsRequest);
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
        return malformed(req, "CreatableAcls contain unknown elements".to_string());
    }
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        return req.respond(&all_with(
            ResponseError::ClusterAuthorizationFailed,
            not_authorized(req),
        ));
    }
    let Some(authorizer) = &req.ctx.apis.authorizer else {
        return req.respond(&all_with(
            ResponseError::SecurityDisabled,
            NO_AUTHORIZER.to_string(),
        ));
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
        return req.respond(&CreateAclsResponse::default().with_results(results));
    }
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
                .with_error_message(Some(sb(NO_AUTHORIZER))),
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

fn filter_of(f: &DeleteAclsFilter) -> AclBindingFilter {
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

pub fn delete_acls(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DeleteAclsRequest);
    let filters: Vec<AclBindingFilter> = request.filters.iter().map(filter_of).collect();
    if filters.iter().any(AclBindingFilter::is_unknown) {
        return malformed(
            req,
            "DeleteAcls filters contain UNKNOWN elements".to_string(),
        );
    }
    let all_with = |code: ResponseError, msg: String| {
        let results = filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(code.code())
                    .with_error_message(Some(sb(msg.clone())))
            })
            .collect();
        DeleteAclsResponse::default().with_filter_results(results)
    };
    if !req.ctx.authorize_cluster(AclOperation::Alter) {
        return req.respond(&all_with(
            ResponseError::ClusterAuthorizationFailed,
            not_authorized(req),
        ));
    }
    let Some(authorizer) = &req.ctx.apis.authorizer else {
        return req.respond(&all_with(
            ResponseError::SecurityDisabled,
            NO_AUTHORIZER.to_string(),
        ));
    };
    let deleted = match authorizer.delete(&filters) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "storing ACLs failed");
            return req.respond(&all_with(ResponseError::UnknownServerError, e));
        }
    };
    let results = deleted
        .into_iter()
        .map(|acls| {
            let matching = acls
                .into_iter()
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
                .collect();
            DeleteAclsFilterResult::default()
                .with_error_message(None)
                .with_matching_acls(matching)
        })
        .collect();
    req.respond(&DeleteAclsResponse::default().with_filter_results(results))
}
