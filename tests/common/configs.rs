//! Helpers for the config APIs (DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs) shared by the admin and config tests.

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncResource, AlterableConfig as IncConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use super::{sb, Client};

/// Config resource types.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const GROUP: i8 = 32;
/// IncrementalAlterConfigs operations.
pub const SET: i8 = 0;
pub const DELETE: i8 = 1;
pub const APPEND: i8 = 2;
pub const SUBTRACT: i8 = 3;

/// DescribeConfigs of one resource (with synonyms; documentation from v3).
pub fn describe(
    c: &mut Client,
    version: i16,
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResult {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(version >= 3)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(sb(name))
            .with_configuration_keys(
                keys.map(|ks| ks.iter().map(|k| sb(k)).collect()),
            )]);
    let mut r = c.call(version, &req);
    assert_eq!(r.results.len(), 1);
    r.results.remove(0)
}

/// The described entry of `key`.
pub fn config<'a>(r: &'a DescribeConfigsResult, key: &str) -> &'a DescribeConfigsResourceResult {
    r.configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} not described"))
}

/// (value, source) of one key of a resource.
pub fn described(c: &mut Client, resource_type: i8, name: &str, key: &str) -> (Option<String>, i8) {
    let r = describe(c, 4, resource_type, name, Some(&[key]));
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let e = config(&r, key);
    (e.value.as_ref().map(|v| v.to_string()), e.config_source)
}

/// The synonyms of an entry as (name, value, source).
pub fn synonyms(e: &DescribeConfigsResourceResult) -> Vec<(String, Option<String>, i8)> {
    e.synonyms
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.value.as_ref().map(|v| v.to_string()),
                s.source,
            )
        })
        .collect()
}

/// IncrementalAlterConfigs of one resource: (error code, message).
pub fn inc_alter(
    c: &mut Client,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let req = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![IncResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(sb(name))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        IncConfig::default()
                            .with_name(sb(k))
                            .with_config_operation(*op)
                            .with_value(v.map(sb))
                    })
                    .collect(),
            )]);
    let r = c.call(1, &req);
    let x = &r.responses[0];
    (
        x.error_code,
        x.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// AlterConfigs (the legacy, replace-everything API) of one resource.
pub fn legacy_alter(
    c: &mut Client,
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
) -> (i16, Option<String>) {
    let req = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(sb(name))
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    AlterableConfig::default()
                        .with_name(sb(k))
                        .with_value(v.map(sb))
                })
                .collect(),
        )]);
    let r = c.call(2, &req);
    let x = &r.responses[0];
    (
        x.error_code,
        x.error_message.as_ref().map(|m| m.to_string()),
    )
}
