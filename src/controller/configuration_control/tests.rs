//! Unit tests of `ConfigurationControlManager`: the records each request
//! yields (applied to a copy of the image through Kafka's framing) and the
//! errors Kafka 4.1's controller answers.

use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncResource, AlterableConfig as IncConfig,
};
use kafka_protocol::messages::{AlterConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::*;
use crate::broker::dynamic_config::op;
use crate::controller::tests::{apply, cluster, defaults};
use crate::metadata::records::{FeatureLevelRecord, TopicRecord};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Brokers 1..=3 and topic "t" with `retention.ms=100`.
fn image() -> MetadataImage {
    let base = cluster(&[None, None, None]);
    apply(
        &base,
        &[
            RecordAndVersion {
                record: MetadataRecord::Topic(TopicRecord {
                    name: "t".into(),
                    topic_id: Uuid::from_u128(7),
                }),
                version: 0,
            },
            RecordAndVersion {
                record: MetadataRecord::Config(ConfigRecord {
                    resource_type: TOPIC,
                    resource_name: "t".into(),
                    name: "retention.ms".into(),
                    value: Some("100".into()),
                }),
                version: 0,
            },
        ],
    )
}

fn inc(
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![IncResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(
                ops.iter()
                    .map(|(k, o, v)| {
                        IncConfig::default()
                            .with_name(s(k))
                            .with_config_operation(*o)
                            .with_value(v.map(s))
                    })
                    .collect(),
            )])
}

fn no_controllers(_: i32) -> bool {
    false
}

/// Runs an incremental request: (records applied image, error code, message).
fn run_inc(
    img: &MetadataImage,
    req: &IncrementalAlterConfigsRequest,
) -> (MetadataImage, i16, Option<String>, usize) {
    let d = incremental_alter_configs(img, req, &defaults(), &no_controllers);
    let r = &d.response.responses[0];
    (
        apply(img, &d.records),
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
        d.records.len(),
    )
}

fn topic_configs(img: &MetadataImage) -> Configs {
    img.configs
        .get(&(TOPIC, "t".to_string()))
        .cloned()
        .unwrap_or_default()
}

#[test]
fn incremental_set_delete_append_subtract_on_a_topic() {
    let img = image();
    let req = inc(
        TOPIC,
        "t",
        &[
            ("max.message.bytes", op::SET, Some("2048")),
            ("retention.ms", op::DELETE, None),
            ("cleanup.policy", op::APPEND, Some("compact")),
        ],
        false,
    );
    let (next, code, msg, n) = run_inc(&img, &req);
    assert_eq!((code, msg), (0, None));
    assert_eq!(n, 3);
    let c = topic_configs(&next);
    assert_eq!(c.get("max.message.bytes").map(String::as_str), Some("2048"));
    assert!(!c.contains_key("retention.ms"));
    assert_eq!(
        c.get("cleanup.policy").map(String::as_str),
        Some("delete,compact")
    );
    let req = inc(
        TOPIC,
        "t",
        &[("cleanup.policy", op::SUBTRACT, Some("delete"))],
        false,
    );
    let (next, code, _, _) = run_inc(&next, &req);
    assert_eq!(code, 0);
    assert_eq!(topic_configs(&next)["cleanup.policy"], "compact");
}

#[test]
fn an_unchanged_topic_key_writes_nothing_but_a_broker_key_always_does() {
    let img = image();
    let (_, code, _, n) = run_inc(
        &img,
        &inc(TOPIC, "t", &[("retention.ms", op::SET, Some("100"))], false),
    );
    assert_eq!((code, n), (0, 0));
    let req = inc(
        BROKER,
        "",
        &[("log.cleaner.threads", op::SET, Some("1"))],
        false,
    );
    let (next, code, _, n) = run_inc(&img, &req);
    assert_eq!((code, n), (0, 1));
    let (_, code, _, n) = run_inc(&next, &req);
    assert_eq!((code, n), (0, 1));
}

#[test]
fn validate_only_writes_nothing() {
    let img = image();
    let (next, code, _, n) = run_inc(
        &img,
        &inc(TOPIC, "t", &[("retention.ms", op::SET, Some("5"))], true),
    );
    assert_eq!((code, n), (0, 0));
    assert_eq!(next, img);
}

#[test]
fn refusals_carry_kafkas_codes_and_messages() {
    let img = image();
    let cases: Vec<(IncrementalAlterConfigsRequest, ResponseError, &str)> = vec![
        (
            inc(TOPIC, "nope", &[("retention.ms", op::SET, Some("5"))], false),
            ResponseError::UnknownTopicOrPartition,
            "The topic 'nope' does not exist.",
        ),
        (
            inc(TOPIC, "t", &[("retention.ms", op::SET, Some("abc"))], false),
            ResponseError::InvalidConfig,
            "",
        ),
        (
            inc(TOPIC, "t", &[("no.such.key", op::SET, Some("1"))], false),
            ResponseError::InvalidConfig,
            "Unknown topic config name: no.such.key",
        ),
        (
            inc(TOPIC, "t", &[("retention.ms", op::APPEND, Some("1"))], false),
            ResponseError::InvalidConfig,
            "Can't APPEND to key retention.ms because its type is not LIST.",
        ),
        (
            inc(TOPIC, "", &[("retention.ms", op::SET, Some("1"))], false),
            ResponseError::InvalidRequest,
            "Default topic resources are not allowed.",
        ),
        (
            inc(BROKER, "x", &[("log.cleaner.threads", op::SET, Some("1"))], false),
            ResponseError::InvalidRequest,
            "Unable to parse broker name as a base 10 number.",
        ),
        (
            inc(BROKER, "-1", &[("log.cleaner.threads", op::SET, Some("1"))], false),
            ResponseError::InvalidRequest,
            "Invalid negative broker ID.",
        ),
        (
            inc(BROKER, "9", &[("log.cleaner.threads", op::SET, Some("1"))], false),
            ResponseError::BrokerIdNotRegistered,
            "No node with id 9 found.",
        ),
        (
            inc(BROKER, "", &[("log.cleaner.threads", op::SET, Some("x"))], false),
            ResponseError::InvalidRequest,
            "",
        ),
        (
            inc(BROKER, "", &[("broker.id", op::SET, Some("3"))], false),
            ResponseError::InvalidRequest,
            "Cannot update these configs dynamically: [broker.id]",
        ),
        (
            inc(
                TOPIC,
                "t",
                &[("retention.ms", op::SET, Some(&"9".repeat(40000)))],
                false,
            ),
            ResponseError::InvalidConfig,
            "The configuration value cannot be added because it exceeds the maximum value size of 32767 bytes.",
        ),
        (
            inc(8, "1", &[("x", op::SET, Some("1"))], false),
            ResponseError::InvalidRequest,
            "Unknown resource type 8",
        ),
    ];
    for (req, code, message) in cases {
        let (next, got, msg, n) = run_inc(&img, &req);
        assert_eq!(got, code.code(), "{req:?}: {msg:?}");
        if !message.is_empty() {
            assert_eq!(msg.as_deref(), Some(message), "{req:?}");
        }
        assert_eq!((next, n), (img.clone(), 0), "{req:?} changed nothing");
    }
}

#[test]
fn a_controller_id_is_a_valid_broker_resource() {
    let img = image();
    let req = inc(
        BROKER,
        "9",
        &[("log.cleaner.threads", op::SET, Some("1"))],
        false,
    );
    let d = incremental_alter_configs(&img, &req, &defaults(), &|id| id == 9);
    assert_eq!(d.response.responses[0].error_code, 0);
    assert_eq!(d.records.len(), 1);
}

#[test]
fn elr_rules_apply_only_with_elr_on() {
    let img = image();
    let per_broker = inc(
        BROKER,
        "1",
        &[("min.insync.replicas", op::SET, Some("2"))],
        false,
    );
    assert_eq!(run_inc(&img, &per_broker).1, 0);
    let elr = apply(
        &img,
        &[RecordAndVersion {
            record: MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "eligible.leader.replicas.version".into(),
                feature_level: 1,
            }),
            version: 0,
        }],
    );
    let (_, code, msg, _) = run_inc(&elr, &per_broker);
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert_eq!(
        msg.as_deref(),
        Some("Broker-level min.insync.replicas cannot be altered while ELR is enabled.")
    );
    let remove = inc(
        BROKER,
        "",
        &[("min.insync.replicas", op::DELETE, None)],
        false,
    );
    let (_, code, msg, _) = run_inc(&elr, &remove);
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert_eq!(
        msg.as_deref(),
        Some("Cluster-level min.insync.replicas cannot be removed while ELR is enabled.")
    );
}

#[test]
fn legacy_alter_configs_replaces_the_whole_set() {
    let img = image();
    let req = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(TOPIC)
        .with_resource_name(s("t"))
        .with_configs(vec![AlterableConfig::default()
            .with_name(s("segment.bytes"))
            .with_value(Some(s("1048576")))])]);
    let d = legacy_alter_configs(&img, &req, &defaults(), &no_controllers);
    assert_eq!(d.response.responses[0].error_code, 0);
    // segment.bytes set, retention.ms implicitly deleted.
    assert_eq!(d.records.len(), 2);
    let next = apply(&img, &d.records);
    let c = topic_configs(&next);
    assert_eq!(c.len(), 1);
    assert_eq!(c["segment.bytes"], "1048576");
}

#[test]
fn a_duplicate_resource_is_refused_in_both_places() {
    let img = image();
    let mut req = inc(TOPIC, "t", &[("retention.ms", op::SET, Some("5"))], false);
    let again = req.resources[0].clone();
    req.resources.push(again);
    let d = incremental_alter_configs(&img, &req, &defaults(), &no_controllers);
    assert!(d.records.is_empty());
    for r in &d.response.responses {
        assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
        assert_eq!(r.error_message.as_deref(), Some("Duplicate resource."));
    }
}

#[test]
fn one_failing_resource_does_not_stop_the_others() {
    let img = image();
    let mut req = inc(TOPIC, "t", &[("retention.ms", op::SET, Some("5"))], false);
    req.resources.push(
        inc(
            TOPIC,
            "nope",
            &[("retention.ms", op::SET, Some("5"))],
            false,
        )
        .resources[0]
            .clone(),
    );
    let d = incremental_alter_configs(&img, &req, &defaults(), &no_controllers);
    let codes: Vec<i16> = d.response.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![0, ResponseError::UnknownTopicOrPartition.code()]
    );
    assert_eq!(topic_configs(&apply(&img, &d.records))["retention.ms"], "5");
}

fn group_configs(img: &MetadataImage, group: &str) -> Option<Configs> {
    img.configs.get(&(GROUP, group.to_string())).cloned()
}

#[test]
fn group_configs_are_written_for_any_group_name_and_deleted_again() {
    let img = image();
    let set = inc(
        GROUP,
        "g",
        &[
            ("consumer.session.timeout.ms", op::SET, Some("50000")),
            ("share.auto.offset.reset", op::SET, Some("earliest")),
        ],
        false,
    );
    // No group "g" exists anywhere: Kafka checks no group's existence.
    let (next, code, msg, n) = run_inc(&img, &set);
    assert_eq!((code, msg, n), (0, None, 2));
    let c = group_configs(&next, "g").expect("the group's configs in the image");
    assert_eq!(c["consumer.session.timeout.ms"], "50000");
    assert_eq!(c["share.auto.offset.reset"], "earliest");
    // Unchanged: nothing to write.
    let (_, code, _, n) = run_inc(&next, &set);
    assert_eq!((code, n), (0, 0));
    let delete = inc(
        GROUP,
        "g",
        &[
            ("consumer.session.timeout.ms", op::DELETE, None),
            ("share.auto.offset.reset", op::DELETE, None),
        ],
        false,
    );
    let (gone, code, _, n) = run_inc(&next, &delete);
    assert_eq!((code, n), (0, 2));
    assert_eq!(group_configs(&gone, "g"), None);
    // A snapshot carries the group's configs.
    let records = next.to_records();
    assert!(records.iter().any(|r| matches!(
        &r.record,
        MetadataRecord::Config(c) if c.resource_type == GROUP && c.resource_name == "g"
    )));
}

#[test]
fn group_configs_are_validated_with_the_controllers_group_coordinator_bounds() {
    let img = image();
    let cases: Vec<(IncrementalAlterConfigsRequest, ResponseError, &str)> = vec![
        (
            inc(GROUP, "g", &[("foo", op::SET, Some("1"))], false),
            ResponseError::InvalidConfig,
            "Unknown group config name: foo",
        ),
        (
            inc(
                GROUP,
                "g",
                &[("consumer.session.timeout.ms", op::SET, Some("1000"))],
                false,
            ),
            ResponseError::InvalidConfig,
            "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.",
        ),
        (
            inc(
                GROUP,
                "g",
                &[("consumer.heartbeat.interval.ms", op::SET, Some("abc"))],
                false,
            ),
            ResponseError::InvalidConfig,
            "Invalid value abc for configuration consumer.heartbeat.interval.ms: Not a number of type INT",
        ),
        (
            inc(
                GROUP,
                "",
                &[("consumer.session.timeout.ms", op::SET, Some("50000"))],
                false,
            ),
            ResponseError::InvalidRequest,
            "Default group resources are not allowed.",
        ),
        (
            inc(
                GROUP,
                "g",
                &[("streams.rack.aware.assignment.tags", op::APPEND, Some("zone"))],
                false,
            ),
            ResponseError::InvalidConfig,
            "Can't APPEND to key streams.rack.aware.assignment.tags because its type is not LIST.",
        ),
    ];
    for (req, code, message) in cases {
        let (next, got, msg, n) = run_inc(&img, &req);
        assert_eq!(got, code.code(), "{msg:?}");
        assert_eq!(msg.as_deref(), Some(message));
        assert_eq!((n, next), (0, img.clone()));
    }
}

#[test]
fn group_configs_validate_only_and_legacy_replace() {
    let img = image();
    let (next, code, _, n) = run_inc(
        &img,
        &inc(
            GROUP,
            "g",
            &[("consumer.session.timeout.ms", op::SET, Some("50000"))],
            true,
        ),
    );
    assert_eq!((code, n), (0, 0));
    assert_eq!(next, img);
    let (next, code, _, _) = run_inc(
        &img,
        &inc(
            GROUP,
            "g",
            &[("consumer.session.timeout.ms", op::SET, Some("50000"))],
            false,
        ),
    );
    assert_eq!(code, 0);
    // The legacy request's set replaces the group's whole set.
    let req = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(GROUP)
        .with_resource_name(s("g"))
        .with_configs(vec![AlterableConfig::default()
            .with_name(s("share.delivery.count.limit"))
            .with_value(Some(s("4")))])]);
    let d = legacy_alter_configs(&next, &req, &defaults(), &no_controllers);
    assert_eq!(d.response.responses[0].error_code, 0);
    assert_eq!(d.records.len(), 2);
    let c = group_configs(&apply(&next, &d.records), "g").unwrap_or_default();
    assert_eq!(c.len(), 1);
    assert_eq!(c["share.delivery.count.limit"], "4");
}
