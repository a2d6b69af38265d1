//! CreateTopics and CreatePartitions as Kafka's controller decides them
//! (`ReplicationControlManager.createTopics` / `createPartitions`): name
//! checks, counts, manual assignments or striped placement over the usable
//! brokers, ISR = the active replicas, leader = the first of them, epochs
//! 0, and the TopicRecord, ConfigRecords and PartitionRecords to append.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::partition_change::{default_dir, is_active, PARTITION_RECORD_VERSION};
use super::replica_placer::{place, seed_for};
use super::replication_control::{
    Decision, PartitionChangeQuota, ReplicationDefaults, THROTTLING_QUOTA_EXCEEDED_MESSAGE,
};
use crate::broker::config_helper::config_source;
use crate::broker::topic_config::{effective, topic_key, validate_topic_configs, TOPIC_KEYS};
use crate::broker::topics::{new_topic_id, validate_manual_assignment, validate_topic_name};
use crate::config::keys::broker_config_synonyms;
use crate::config::BrokerConfig;
use crate::metadata::image::CONFIG_RESOURCE_TOPIC;
use crate::metadata::records::{ConfigRecord, MetadataRecord, PartitionRecord, TopicRecord};
use crate::metadata::{MetadataImage, RecordAndVersion};

/// Kafka's `MAX_PARTITIONS_PER_BATCH`: a CreateTopics asking for more is
/// refused whole.
pub const MAX_PARTITIONS_PER_BATCH: i64 = 10_000;

type Refusal = (ResponseError, String);
/// A topic that passed: its id, partitions and configs.
type Accepted = (Uuid, Vec<NewPartition>, BTreeMap<String, String>);

fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

/// The replicas and ISR of one new partition.
struct NewPartition {
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

fn partition_record(
    image: &MetadataImage,
    topic_id: Uuid,
    partition_id: i32,
    p: &NewPartition,
) -> RecordAndVersion {
    RecordAndVersion {
        record: MetadataRecord::Partition(PartitionRecord {
            partition_id,
            topic_id,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            removing_replicas: Vec::new(),
            adding_replicas: Vec::new(),
            leader: p.isr[0],
            leader_recovery_state: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            directories: p.replicas.iter().map(|r| default_dir(image, *r)).collect(),
            eligible_leader_replicas: None,
            last_known_elr: None,
        }),
        version: PARTITION_RECORD_VERSION,
    }
}

/// `validateManualPartitionAssignment` over the image's registered brokers.
fn validate_manual(
    image: &MetadataImage,
    replicas: &[i32],
    replication_factor: Option<usize>,
) -> Result<(), String> {
    validate_manual_assignment(
        replicas,
        |b| image.brokers.contains_key(&b),
        replication_factor,
    )
}

/// The effective configs of a new topic as CreateTopics v5+ reports them:
/// its own value (DYNAMIC_TOPIC_CONFIG), else the controller's static
/// config (STATIC_BROKER_CONFIG), else Kafka's default (DEFAULT_CONFIG).
fn reported_configs(
    overrides: &BTreeMap<String, String>,
    config: &BrokerConfig,
) -> Vec<CreatableTopicConfigs> {
    let statics = config.originals();
    TOPIC_KEYS
        .iter()
        .filter(|k| !k.internal)
        .map(|k| {
            let source = if overrides.contains_key(k.name) {
                config_source::DYNAMIC_TOPIC_CONFIG
            } else if k.broker_synonym.is_some_and(|b| {
                broker_config_synonyms(b, false)
                    .iter()
                    .any(|n| statics.contains_key(n))
            }) {
                config_source::STATIC_BROKER_CONFIG
            } else {
                config_source::DEFAULT_CONFIG
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(k.name))
                .with_value(effective(k.name, overrides, config).map(StrBytes::from_string))
                .with_read_only(false)
                .with_config_source(source)
                .with_is_sensitive(false)
        })
        .collect()
}

/// One topic's partitions (`createTopic`'s assignment part).
fn assign(
    image: &MetadataImage,
    t: &CreatableTopic,
    name: &str,
    defaults: &ReplicationDefaults,
) -> Result<Vec<NewPartition>, Refusal> {
    if !t.assignments.is_empty() {
        let manual = |what: &str| {
            format!("A manual partition assignment was specified, but {what} was not set to -1.")
        };
        if t.replication_factor != -1 {
            return Err((ResponseError::InvalidRequest, manual("replication factor")));
        }
        if t.num_partitions != -1 {
            return Err((ResponseError::InvalidRequest, manual("numPartitions")));
        }
        let mut parts: BTreeMap<i32, NewPartition> = BTreeMap::new();
        let mut rf = None;
        for a in &t.assignments {
            let bad = |m: String| (ResponseError::InvalidReplicaAssignment, m);
            if parts.contains_key(&a.partition_index) {
                return Err(bad(format!(
                    "Found multiple manual partition assignments for partition {}",
                    a.partition_index
                )));
            }
            let replicas: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
            validate_manual(image, &replicas, rf).map_err(bad)?;
            rf = Some(replicas.len());
            let isr: Vec<i32> = replicas
                .iter()
                .copied()
                .filter(|r| is_active(image, *r))
                .collect();
            if isr.is_empty() {
                return Err(bad(format!(
                    "All brokers specified in the manual partition assignment for partition {} are fenced or in controlled shutdown.",
                    a.partition_index
                )));
            }
            parts.insert(a.partition_index, NewPartition { replicas, isr });
        }
        if parts
            .keys()
            .enumerate()
            .any(|(i, k)| i32::try_from(i).ok() != Some(*k))
        {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                "partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        return Ok(parts.into_values().collect());
    }
    if t.replication_factor < -1 || t.replication_factor == 0 {
        return Err((
            ResponseError::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.".into(),
        ));
    }
    if t.num_partitions < -1 || t.num_partitions == 0 {
        return Err((
            ResponseError::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.".into(),
        ));
    }
    let num_partitions = if t.num_partitions == -1 {
        defaults.num_partitions
    } else {
        t.num_partitions
    };
    let rf = if t.replication_factor == -1 {
        defaults.default_replication_factor
    } else {
        t.replication_factor
    };
    place_new(image, name, 0, num_partitions, rf)
}

/// Striped placement of `count` partitions from `start`, ISR = the active
/// replicas (never empty, or INVALID_REPLICATION_FACTOR as Kafka).
fn place_new(
    image: &MetadataImage,
    name: &str,
    start: i32,
    count: i32,
    rf: i16,
) -> Result<Vec<NewPartition>, Refusal> {
    let unable = |why: &str| {
        (
            ResponseError::InvalidReplicationFactor,
            format!("Unable to replicate the partition {rf} time(s): {why}"),
        )
    };
    let placed = place(
        image,
        usize::try_from(count).unwrap_or(0),
        usize::try_from(rf).unwrap_or(0),
        seed_for(name, start),
    )
    .map_err(|e| unable(&e.0))?;
    placed
        .into_iter()
        .map(|replicas| {
            let isr: Vec<i32> = replicas
                .iter()
                .copied()
                .filter(|r| is_active(image, *r))
                .collect();
            if isr.is_empty() {
                return Err(unable(
                    "All brokers are currently fenced or in controlled shutdown.",
                ));
            }
            Ok(NewPartition { replicas, isr })
        })
        .collect()
}

pub fn create_topics(
    image: &MetadataImage,
    request: &CreateTopicsRequest,
    version: i16,
    defaults: &ReplicationDefaults,
    quota: &mut PartitionChangeQuota<'_>,
) -> Decision<CreateTopicsResponse> {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.topics.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.as_str()).or_default() += 1;
    }
    // validateTotalNumberOfPartitions: an upper bound, the request refused whole.
    let total: i64 = request
        .topics
        .iter()
        .map(|t| match (t.assignments.is_empty(), t.num_partitions) {
            (false, _) => t.assignments.len() as i64,
            (true, -1) => i64::from(defaults.num_partitions),
            (true, n) => i64::from(n.max(0)),
        })
        .sum();
    // Names that collide with existing topics once '.' and '_' are unified.
    let mut collisions: HashMap<String, &str> = HashMap::new();
    for n in image.topic_ids.keys() {
        if n.contains('.') || n.contains('_') {
            collisions.entry(unify_collision_chars(n)).or_insert(n);
        }
    }
    for t in &request.topics {
        let name = t.name.0.to_string();
        let mut result = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_error_message(None);
        let outcome = (|| -> Result<Accepted, Refusal> {
            if total > MAX_PARTITIONS_PER_BATCH {
                return Err((
                    ResponseError::PolicyViolation,
                    "Excessively large number of partitions per request.".into(),
                ));
            }
            if seen.get(name.as_str()).copied().unwrap_or(0) > 1 {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("Duplicate topic name: {name}"),
                ));
            }
            validate_topic_name(&name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
            if image.topic_ids.contains_key(&name) {
                return Err((
                    ResponseError::TopicAlreadyExists,
                    format!("Topic '{name}' already exists."),
                ));
            }
            if name.contains('.') || name.contains('_') {
                if let Some(other) = collisions.get(&unify_collision_chars(&name)) {
                    return Err((
                        ResponseError::InvalidTopicException,
                        format!("Topic '{name}' collides with existing topic: {other}"),
                    ));
                }
            }
            let mut configs = BTreeMap::new();
            for c in &t.configs {
                let key = c.name.to_string();
                match &c.value {
                    Some(v) => {
                        configs.insert(key, v.to_string());
                    }
                    None if topic_key(&key).is_some() => {
                        return Err((
                            ResponseError::InvalidConfig,
                            format!("Null value not supported for topic configs: {key}"),
                        ))
                    }
                    None => {
                        return Err((
                            ResponseError::InvalidConfig,
                            format!("Unknown topic config name: {key}"),
                        ))
                    }
                }
            }
            validate_topic_configs(&configs, &defaults.broker_config)
                .map_err(|e| (ResponseError::InvalidConfig, e.0))?;
            let parts = assign(image, t, &name, defaults)?;
            quota(parts.len() as i32).map_err(|_| throttled())?;
            Ok((new_topic_id(), parts, configs))
        })();
        match outcome {
            Ok((topic_id, parts, configs)) => {
                result.topic_id = topic_id;
                result.num_partitions = parts.len() as i32;
                result.replication_factor = parts[0].replicas.len() as i16;
                if version >= 5 {
                    result.configs = Some(reported_configs(&configs, &defaults.broker_config));
                }
                if !request.validate_only {
                    records.push(RecordAndVersion {
                        record: MetadataRecord::Topic(TopicRecord {
                            name: name.clone(),
                            topic_id,
                        }),
                        version: 0,
                    });
                    // ConfigRecords after the TopicRecord, before the partitions.
                    for (k, v) in configs {
                        records.push(RecordAndVersion {
                            record: MetadataRecord::Config(ConfigRecord {
                                resource_type: CONFIG_RESOURCE_TOPIC,
                                resource_name: name.clone(),
                                name: k,
                                value: Some(v),
                            }),
                            version: 0,
                        });
                    }
                    for (i, p) in parts.iter().enumerate() {
                        records.push(partition_record(image, topic_id, i as i32, p));
                    }
                }
            }
            Err((code, msg)) => {
                result.error_code = code.code();
                result.error_message = Some(StrBytes::from_string(msg));
                result.num_partitions = -1;
                result.replication_factor = -1;
                result.configs = (version >= 5).then(Vec::new);
            }
        }
        results.push(result);
    }
    Decision {
        records,
        response: CreateTopicsResponse::default().with_topics(results),
    }
}

/// A mutation the client's controller mutation quota refuses.
fn throttled() -> Refusal {
    (
        ResponseError::ThrottlingQuotaExceeded,
        THROTTLING_QUOTA_EXCEEDED_MESSAGE.into(),
    )
}

pub fn create_partitions(
    image: &MetadataImage,
    request: &CreatePartitionsRequest,
    _version: i16,
    quota: &mut PartitionChangeQuota<'_>,
) -> Decision<CreatePartitionsResponse> {
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.topics.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.as_str()).or_default() += 1;
    }
    for t in &request.topics {
        let name = t.name.0.as_str();
        let outcome = (|| -> Result<Vec<RecordAndVersion>, Refusal> {
            if seen.get(name).copied().unwrap_or(0) > 1 {
                return Err((
                    ResponseError::InvalidRequest,
                    "Duplicate topic in request.".into(),
                ));
            }
            let Some(topic) = image.topic_by_name(name) else {
                return Err((
                    ResponseError::UnknownTopicOrPartition,
                    "This server does not host this topic-partition.".into(),
                ));
            };
            let current = topic.partitions.len() as i32;
            let invalid = |m: String| (ResponseError::InvalidPartitions, m);
            if t.count == current {
                return Err(invalid(format!(
                    "Topic already has {current} partition(s)."
                )));
            }
            if t.count < current {
                return Err(invalid(format!(
                    "The topic {name} currently has {current} partition(s); {} would not be an increase.",
                    t.count
                )));
            }
            let additional = t.count - current;
            if let Some(a) = &t.assignments {
                if a.len() as i64 != i64::from(additional) {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                            a.len()
                        ),
                    ));
                }
            }
            quota(additional).map_err(|_| throttled())?;
            let Some(first) = topic.partitions.values().next() else {
                return Err((
                    ResponseError::UnknownServerError,
                    format!("Invalid state: topic {name} appears to have no partitions."),
                ));
            };
            let rf = first.replicas.len();
            let parts = match &t.assignments {
                Some(assignments) => {
                    let mut parts = Vec::with_capacity(assignments.len());
                    for (i, a) in assignments.iter().enumerate() {
                        let bad = |m: String| (ResponseError::InvalidReplicaAssignment, m);
                        let replicas: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
                        validate_manual(image, &replicas, Some(rf)).map_err(bad)?;
                        let isr: Vec<i32> = replicas
                            .iter()
                            .copied()
                            .filter(|r| is_active(image, *r))
                            .collect();
                        if isr.is_empty() {
                            return Err(bad(format!(
                                "All brokers specified in the manual partition assignment for partition {} are fenced or in controlled shutdown.",
                                current + i as i32
                            )));
                        }
                        parts.push(NewPartition { replicas, isr });
                    }
                    parts
                }
                None => place_new(image, name, current, additional, rf as i16)?,
            };
            Ok(parts
                .iter()
                .enumerate()
                .map(|(i, p)| partition_record(image, topic.id, current + i as i32, p))
                .collect())
        })();
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        match outcome {
            Ok(new) => {
                if !request.validate_only {
                    records.extend(new);
                }
            }
            Err((code, msg)) => {
                r.error_code = code.code();
                r.error_message = Some(StrBytes::from_string(msg));
            }
        }
        results.push(r);
    }
    Decision {
        records,
        response: CreatePartitionsResponse::default().with_results(results),
    }
}
