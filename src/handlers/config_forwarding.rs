//! AlterConfigs and IncrementalAlterConfigs on a cluster broker (Kafka's
//! `KafkaApis.handle(Incremental)AlterConfigsRequest` with
//! `ConfigAdminManager.preprocess`): the broker checks what it checks
//! itself (each resource at most once, no duplicate keys, no null values,
//! a BROKER resource names this node or the cluster default and its change
//! passes this broker's `DynamicBrokerConfig` validation), answers
//! BROKER_LOGGER itself, authorizes the rest (kastle forwards without an
//! Envelope: the broker authorizes, then forwards) and sends TOPIC, BROKER
//! and GROUP resources to the active controller, which decides and writes
//! ConfigRecords (`controller::configuration_control`). CLIENT_METRICS
//! resources are still answered by the broker itself, as on a standalone
//! node. The answers are put back in request order.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use crate::broker::dynamic_config::op;
use crate::controller::configuration_control::{incremental_response, legacy_response};
use crate::handlers::admin_configs::{
    alter_resource, check_keys, config_access, err, incremental_resources, legacy_resources,
    outcome_fields, parse_broker_id, resource_type, type_name, AlterResource, ApiErr,
};
use crate::handlers::forwarding::forward;
use crate::handlers::{ready, Pending, Reply, Request};
use crate::security::acl::AclOperation;

/// What the broker does with one resource.
enum Route {
    /// Answered here (refused, or a resource the broker keeps itself).
    Answered(Result<(), ApiErr>),
    /// Sent to the controller.
    Forward,
}

/// `ConfigAdminManager.validateResourceNameIsCurrentNodeId`.
fn check_current_node(name: &str, node_id: i32) -> Result<(), ApiErr> {
    let id = parse_broker_id(name, false)?;
    if id != node_id {
        return Err(err(
            ResponseError::InvalidRequest,
            format!("Unexpected broker id, expected {node_id}, but received {name}"),
        ));
    }
    Ok(())
}

/// The broker's preprocessing of one resource, then (for what goes to the
/// controller) its authorization.
fn route(
    req: &Request,
    r: &AlterResource,
    duplicated: bool,
    incremental: bool,
    validate_only: bool,
) -> Route {
    let preprocess = || -> Result<bool, ApiErr> {
        if duplicated {
            return Err(err(
                ResponseError::InvalidRequest,
                "Each resource must appear at most once.",
            ));
        }
        check_keys(r, incremental)?;
        match r.resource_type {
            resource_type::BROKER => {
                let apis = &req.ctx.apis;
                if !r.name.is_empty() {
                    check_current_node(&r.name, apis.config.node_id)?;
                }
                if let Some(c) = r
                    .ops
                    .iter()
                    .find(|c| !(op::SET..=op::SUBTRACT).contains(&c.op))
                {
                    return Err(err(
                        ResponseError::InvalidRequest,
                        format!("Unknown operations type {}", c.op),
                    ));
                }
                let full = r
                    .ops
                    .iter()
                    .map(|c| (c.name.clone(), c.value.clone().unwrap_or_default()))
                    .collect();
                apis.dynamic_config
                    .validate_change(!r.name.is_empty(), r.alteration(incremental, &full))
                    .map_err(|e| err(e.code, e.message))?;
                Ok(true)
            }
            resource_type::TOPIC | resource_type::GROUP => Ok(true),
            resource_type::BROKER_LOGGER if !incremental => Err(err(
                ResponseError::InvalidRequest,
                format!("Unknown resource type {}", r.resource_type),
            )),
            resource_type::BROKER_LOGGER | resource_type::CLIENT_METRICS => Ok(false),
            other => Err(err(
                ResponseError::InvalidRequest,
                format!("Unknown resource type {other}"),
            )),
        }
    };
    let outcome = match preprocess() {
        Ok(true) => config_access(req, r.resource_type, &r.name, AclOperation::AlterConfigs)
            .map(|()| Route::Forward),
        Ok(false) => Ok(Route::Answered(
            config_access(req, r.resource_type, &r.name, AclOperation::AlterConfigs)
                .and_then(|()| alter_resource(&req.ctx.apis, r, incremental, validate_only)),
        )),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(route) => route,
        Err(e) => {
            tracing::info!(
                resource_type = type_name(r.resource_type),
                resource = %r.name,
                code = ?e.code,
                message = %e.message,
                "config change refused"
            );
            Route::Answered(Err(e))
        }
    }
}

/// Routes every resource (a resource named twice is refused in both
/// places).
fn routes(
    req: &Request,
    resources: &[AlterResource],
    incremental: bool,
    validate_only: bool,
) -> Vec<Route> {
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for r in resources {
        *counts
            .entry((r.resource_type, r.name.as_str()))
            .or_default() += 1;
    }
    resources
        .iter()
        .map(|r| {
            let duplicated = counts
                .get(&(r.resource_type, r.name.as_str()))
                .is_some_and(|n| *n > 1);
            route(req, r, duplicated, incremental, validate_only)
        })
        .collect()
}

/// The controller's outcome for a forwarded resource, by (type, name).
type Answers = HashMap<(i8, String), (i16, Option<StrBytes>)>;
/// One resource's answer: (type, name, error code, message).
type AnswerRow = (i8, String, i16, Option<StrBytes>);

/// The controller's answers to the resources routed to it (`forwarded`
/// holds only those; none routed: nothing to ask), by resource; `None`
/// when no controller answered in time. `rows` lists an answer's
/// (type, name, error code, message) per resource.
async fn forwarded_answers<R: kafka_protocol::protocol::Request>(
    req: &Request,
    forwarded: &R,
    any: bool,
    version: i16,
    rows: fn(&R::Response) -> Vec<AnswerRow>,
) -> Option<Answers> {
    if !any {
        return Some(Answers::new());
    }
    let config = req.ctx.apis.config.clone();
    let not_controller = |r: &R::Response| {
        rows(r)
            .iter()
            .any(|(_, _, code, _)| *code == ResponseError::NotController.code())
    };
    forward(&config, forwarded, version, not_controller)
        .await
        .map(|resp| {
            rows(&resp)
                .into_iter()
                .map(|(t, n, code, msg)| ((t, n), (code, msg)))
                .collect()
        })
}

/// One resource's final (code, message): the broker's own, the
/// controller's, or REQUEST_TIMED_OUT when no controller answered.
fn outcome(route: Route, r: &AlterResource, answers: &Option<Answers>) -> (i16, Option<StrBytes>) {
    match route {
        Route::Answered(o) => outcome_fields(o),
        Route::Forward => answers
            .as_ref()
            .and_then(|a| a.get(&(r.resource_type, r.name.clone())).cloned())
            .unwrap_or((ResponseError::RequestTimedOut.code(), None)),
    }
}

pub fn incremental_alter_configs(req: Request, body: Bytes) -> Pending {
    let version = req.version();
    let request = match IncrementalAlterConfigsRequest::decode(&mut body.clone(), version) {
        Ok(r) => r,
        Err(e) => {
            return ready(Reply::Close(format!(
                "undecodable IncrementalAlterConfigs: {e}"
            )))
        }
    };
    let resources = incremental_resources(&request);
    let routes = routes(&req, &resources, true, request.validate_only);
    let mut forwarded = request.clone();
    forwarded.resources = request
        .resources
        .iter()
        .zip(&routes)
        .filter(|(_, r)| matches!(r, Route::Forward))
        .map(|(x, _)| x.clone())
        .collect();
    Box::pin(async move {
        let any = !forwarded.resources.is_empty();
        let answers = forwarded_answers(
            &req,
            &forwarded,
            any,
            version,
            |resp: &IncrementalAlterConfigsResponse| {
                resp.responses
                    .iter()
                    .map(|x| {
                        let name = x.resource_name.to_string();
                        (x.resource_type, name, x.error_code, x.error_message.clone())
                    })
                    .collect()
            },
        )
        .await;
        let outcomes = routes
            .into_iter()
            .zip(&resources)
            .map(|(route, r)| outcome(route, r, &answers));
        req.respond(&incremental_response(&request, outcomes))
    })
}

pub fn alter_configs(req: Request, body: Bytes) -> Pending {
    let version = req.version();
    let request = match AlterConfigsRequest::decode(&mut body.clone(), version) {
        Ok(r) => r,
        Err(e) => return ready(Reply::Close(format!("undecodable AlterConfigs: {e}"))),
    };
    let resources = legacy_resources(&request);
    let routes = routes(&req, &resources, false, request.validate_only);
    let mut forwarded = request.clone();
    forwarded.resources = request
        .resources
        .iter()
        .zip(&routes)
        .filter(|(_, r)| matches!(r, Route::Forward))
        .map(|(x, _)| x.clone())
        .collect();
    Box::pin(async move {
        let any = !forwarded.resources.is_empty();
        let answers = forwarded_answers(
            &req,
            &forwarded,
            any,
            version,
            |resp: &AlterConfigsResponse| {
                resp.responses
                    .iter()
                    .map(|x| {
                        let name = x.resource_name.to_string();
                        (x.resource_type, name, x.error_code, x.error_message.clone())
                    })
                    .collect()
            },
        )
        .await;
        let outcomes = routes
            .into_iter()
            .zip(&resources)
            .map(|(route, r)| outcome(route, r, &answers));
        req.respond(&legacy_response(&request, outcomes))
    })
}
