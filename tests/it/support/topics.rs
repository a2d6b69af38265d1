//! Topic helpers: CreateTopics, DeleteTopics and Metadata requests as the
//! tests send them, and look-ups in a Metadata response.

use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::{MetadataResponse, MetadataResponseTopic};
use uuid::Uuid;

use super::{sb, tn, Client, NONE};

/// The timeout CreateTopics and DeleteTopics carry (kastle answers at once
/// and does not read it).
const TIMEOUT_MS: i32 = 10_000;

/// One topic of a CreateTopics request, with `configs` as key/value pairs.
pub fn topic_spec(
    name: &str,
    partitions: i32,
    rf: i16,
    configs: &[(&str, &str)],
) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                })
                .collect(),
        )
}

/// CreateTopics of `topics` at `version`: the per-topic results.
pub fn create_topics(
    c: &mut Client,
    version: i16,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> Vec<CreatableTopicResult> {
    let req = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(TIMEOUT_MS)
        .with_validate_only(validate_only);
    c.call(version, &req).topics
}

/// Creates one topic with CreateTopics v7 (default replication factor) and
/// returns its result; the error code is the caller's to check.
#[track_caller]
pub fn try_create_topic(
    c: &mut Client,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> CreatableTopicResult {
    let mut r = create_topics(c, 7, vec![topic_spec(name, partitions, -1, configs)], false);
    assert_eq!(r.len(), 1, "create {name}: one result");
    let r = r.remove(0);
    assert_eq!(r.name.0.as_str(), name);
    r
}

/// Creates a topic (CreateTopics v7, default replication factor) with
/// explicit configs, insists it was created and returns its id.
#[track_caller]
pub fn create_topic(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) -> Uuid {
    let r = try_create_topic(c, name, partitions, configs);
    assert_eq!(
        r.error_code, NONE,
        "create {name} {configs:?}: {:?}",
        r.error_message
    );
    assert!(!r.topic_id.is_nil(), "create {name}: v7 returns a topic id");
    r.topic_id
}

/// Deletes a topic by name (DeleteTopics v4) and insists on success.
#[track_caller]
pub fn delete_topic(c: &mut Client, topic: &str) {
    let req = DeleteTopicsRequest::default()
        .with_topic_names(vec![tn(topic)])
        .with_timeout_ms(TIMEOUT_MS);
    let r = c.call(4, &req);
    assert_eq!(r.responses[0].error_code, NONE, "delete {topic}");
}

/// Metadata at `version` for `topics` (`None`: all topics).
/// `allow_auto_topic_creation` exists from v4; older versions always allow.
pub fn metadata(
    c: &mut Client,
    version: i16,
    topics: Option<&[&str]>,
    allow_auto: bool,
) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(tn(t))))
                .collect()
        }))
        .with_allow_auto_topic_creation(allow_auto || version < 4);
    c.call(version, &req)
}

/// The topic named `name` in a Metadata response.
pub fn md_topic<'a>(m: &'a MetadataResponse, name: &str) -> Option<&'a MetadataResponseTopic> {
    m.topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name))
}

/// Metadata v12 for one topic without auto-creation: its error code.
pub fn topic_error(c: &mut Client, name: &str) -> i16 {
    let m = metadata(c, 12, Some(&[name]), false);
    md_topic(&m, name)
        .expect("topic in metadata response")
        .error_code
}

/// The number of partitions Metadata v12 lists for an existing topic.
pub fn partition_count(c: &mut Client, topic: &str) -> usize {
    let m = metadata(c, 12, Some(&[topic]), true);
    m.topics[0].partitions.len()
}
