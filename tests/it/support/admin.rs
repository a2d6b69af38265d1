//! Configs and the other admin APIs: DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs, CreatePartitions, DeleteRecords, client quotas,
//! and the ApiVersions check that a connection is served.

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncResource, AlterableConfig as IncConfig,
};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterConfigsRequest, ApiVersionsRequest, BrokerId,
    CreatePartitionsRequest, DeleteRecordsRequest, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use super::{sb, tn, Client, NONE};

/// Config resource types.
pub const TOPIC_RESOURCE: i8 = 2;
pub const BROKER_RESOURCE: i8 = 4;
pub const GROUP_RESOURCE: i8 = 32;

/// IncrementalAlterConfigs operations.
pub const SET: i8 = 0;
pub const DELETE: i8 = 1;
pub const APPEND: i8 = 2;
pub const SUBTRACT: i8 = 3;

/// kastle's default node.id.
pub const NODE: i32 = 1;

/// ApiVersions v3 answers without error and lists APIs.
pub fn api_versions_ok(c: &mut Client) {
    let r = c.call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(sb("kastle-tests"))
            .with_client_software_version(sb("1.0")),
    );
    assert_eq!(r.error_code, NONE);
    assert!(!r.api_keys.is_empty());
}

/// DescribeConfigs of one resource (synonyms, and documentation from v3).
pub fn describe_configs(
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

/// The entry for `key` in a DescribeConfigs result.
#[track_caller]
pub fn config<'a>(r: &'a DescribeConfigsResult, key: &str) -> &'a DescribeConfigsResourceResult {
    r.configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} not described"))
}

/// (value, config source) of one key of a resource, by DescribeConfigs v4.
#[track_caller]
pub fn described(c: &mut Client, resource_type: i8, name: &str, key: &str) -> (Option<String>, i8) {
    let r = describe_configs(c, 4, resource_type, name, Some(&[key]));
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    let e = config(&r, key);
    (e.value.as_ref().map(|v| v.to_string()), e.config_source)
}

/// A topic config's (value, config source) by DescribeConfigs v4.
#[track_caller]
pub fn topic_config(c: &mut Client, topic: &str, key: &str) -> (Option<String>, i8) {
    described(c, TOPIC_RESOURCE, topic, key)
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

/// IncrementalAlterConfigs v1 of one resource with (key, operation, value)
/// changes: (error code, message).
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

/// AlterConfigs v2 (the whole set) of one resource: (error code, message).
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

/// CreatePartitions v3: (topic, error code, message) per topic.
pub fn create_partitions(
    c: &mut Client,
    topics: Vec<CreatePartitionsTopic>,
    validate_only: bool,
) -> Vec<(String, i16, Option<String>)> {
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(5000)
        .with_validate_only(validate_only)
        .with_topics(topics);
    c.call(3, &req)
        .results
        .into_iter()
        .map(|r| {
            (
                r.name.0.to_string(),
                r.error_code,
                r.error_message.map(|m| m.to_string()),
            )
        })
        .collect()
}

/// One topic of a CreatePartitions request: grow to `count`, with optional
/// manual assignments (broker ids per new partition).
pub fn grow(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
    CreatePartitionsTopic::default()
        .with_name(tn(name))
        .with_count(count)
        .with_assignments(assignments.map(|a| {
            a.into_iter()
                .map(|ids| {
                    CreatePartitionsAssignment::default()
                        .with_broker_ids(ids.into_iter().map(BrokerId).collect())
                })
                .collect()
        }))
}

/// DeleteRecords v2 of (partition, offset) pairs of one topic:
/// (error code, low watermark) per partition.
pub fn delete_records(c: &mut Client, topic: &str, parts: &[(i32, i64)]) -> Vec<(i16, i64)> {
    let req = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(tn(topic))
            .with_partitions(
                parts
                    .iter()
                    .map(|(p, o)| {
                        DeleteRecordsPartition::default()
                            .with_partition_index(*p)
                            .with_offset(*o)
                    })
                    .collect(),
            )]);
    c.call(2, &req).topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.low_watermark))
        .collect()
}

/// AlterClientQuotas v1 of one entity ((type, name) pairs) with
/// (key, value, remove) ops: its error code.
pub fn alter_quota(
    c: &mut Client,
    entity: &[(&str, Option<&str>)],
    ops: &[(&str, f64, bool)],
    validate_only: bool,
) -> i16 {
    let req = AlterClientQuotasRequest::default()
        .with_validate_only(validate_only)
        .with_entries(vec![EntryData::default()
            .with_entity(
                entity
                    .iter()
                    .map(|(t, n)| {
                        EntityData::default()
                            .with_entity_type(sb(t))
                            .with_entity_name(n.map(sb))
                    })
                    .collect(),
            )
            .with_ops(
                ops.iter()
                    .map(|(k, v, rm)| {
                        OpData::default()
                            .with_key(sb(k))
                            .with_value(*v)
                            .with_remove(*rm)
                    })
                    .collect(),
            )]);
    c.call(1, &req).entries[0].error_code
}

/// DescribeClientQuotas v1.
pub fn describe_quotas(
    c: &mut Client,
    components: Vec<ComponentData>,
    strict: bool,
) -> DescribeClientQuotasResponse {
    c.call(
        1,
        &DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict),
    )
}

/// A quota filter component matching entity `t` named exactly `n`.
pub fn exact(t: &str, n: &str) -> ComponentData {
    ComponentData::default()
        .with_entity_type(sb(t))
        .with_match_type(0)
        .with_match(Some(sb(n)))
}
