//! DescribeTopicPartitions (KIP-966): topics and their partitions a page at
//! a time, as the 4.x `Admin.describeTopics` asks for them. Topics come in
//! name order; a response holds at most `response_partition_limit`
//! partitions (capped by Kafka's `max.request.partition.size.limit`
//! default) and names the first partition left out as `next_cursor`.
//!
//! In a cluster topics and partitions come from the metadata image. A
//! standalone node has one broker, one replica per partition: every replica set and ISR is
//! `[node.id]`, no replica is offline, and the eligible leader replica
//! lists (KIP-966) are empty, as Kafka reports them for a partition whose
//! ISR never shrinks.

use std::collections::BTreeSet;

use bytes::Bytes;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::topics::{is_internal_topic, validate_topic_name};
use crate::handlers::metadata::{topic_authorized_operations, OPS_NOT_REQUESTED};
use crate::handlers::{decode_or_close, Reply, Request};
use crate::metadata::MetadataImage;
use crate::security::acl::{AclOperation, ResourceType};

/// Kafka's `max.request.partition.size.limit` default: the most partitions
/// one response carries, whatever the client asks.
pub const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

/// The leader epoch of every kastle partition: one broker, never re-elected.
const LEADER_EPOCH: i32 = 0;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// What a page needs of an existing topic.
#[derive(Debug, Clone, Copy)]
pub struct TopicInfo {
    pub id: Uuid,
    pub internal: bool,
    pub partitions: usize,
}

/// One page: the topics described and where the next page starts.
pub type Page = (
    Vec<DescribeTopicPartitionsResponseTopic>,
    Option<(String, i32)>,
);

/// A page of topics: `lookup` resolves a name to the topic, if it exists.
/// Returns the topics described and the cursor of the next page, or
/// INVALID_REQUEST for a cursor Kafka refuses.
pub fn page(
    requested: &[String],
    all_topics: &[String],
    cursor: Option<(&str, i32)>,
    limit: i32,
    node_id: i32,
    lookup: impl Fn(&str) -> Option<TopicInfo>,
) -> Result<Page, ResponseError> {
    let fetch_all = requested.is_empty();
    let (cursor_topic, cursor_partition) = cursor.unwrap_or(("", 0));
    if cursor_partition < 0 {
        return Err(ResponseError::InvalidRequest);
    }
    // Topics from the cursor's on, deduplicated and in name order.
    let source = if fetch_all { all_topics } else { requested };
    let names: BTreeSet<&str> = source
        .iter()
        .map(String::as_str)
        .filter(|n| *n >= cursor_topic)
        .collect();
    // A cursor must name one of the topics asked for.
    if !fetch_all && cursor.is_some() && !names.contains(cursor_topic) {
        return Err(ResponseError::InvalidRequest);
    }
    let mut remaining = limit.clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut topics = Vec::new();
    let mut next = None;
    for name in names {
        if remaining == 0 {
            // The previous topic filled the page: the next one starts it.
            next = Some((name.to_string(), 0));
            break;
        }
        let Some(topic) = lookup(name) else {
            // Listing every topic skips one deleted in the meantime.
            if !fetch_all {
                let code = if validate_topic_name(name).is_ok() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::InvalidTopicException
                };
                topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(code.code())
                        .with_name(Some(topic_name(name)))
                        .with_topic_id(Uuid::nil())
                        .with_is_internal(is_internal_topic(name))
                        .with_topic_authorized_operations(topic_authorized_operations()),
                );
            }
            continue;
        };
        let count = i32::try_from(topic.partitions).unwrap_or(i32::MAX);
        let start = if name == cursor_topic {
            cursor_partition
        } else {
            0
        };
        let end = count.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..end)
            .map(|p| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(BrokerId(node_id))
                    .with_leader_epoch(LEADER_EPOCH)
                    .with_replica_nodes(vec![BrokerId(node_id)])
                    .with_isr_nodes(vec![BrokerId(node_id)])
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
                    .with_offline_replicas(Vec::new())
            })
            .collect();
        remaining -= i32::try_from(partitions.len()).unwrap_or(remaining);
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(name)))
                .with_topic_id(topic.id)
                .with_is_internal(topic.internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(topic_authorized_operations()),
        );
        if end < count {
            next = Some((name.to_string(), end));
            break;
        }
    }
    Ok((topics, next))
}

/// A page's partitions as the cluster's image has them (Kafka's
/// `KRaftMetadataCache.describeTopicResponse`): leader, epoch, replicas,
/// ISR, eligible leader replicas, and replicas on fenced or unknown brokers
/// offline.
fn cluster_partitions(image: &MetadataImage, topic: &mut DescribeTopicPartitionsResponseTopic) {
    let Some(t) = image.topics.get(&topic.topic_id) else {
        return;
    };
    let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
    for p in &mut topic.partitions {
        let Some(reg) = t.partitions.get(&p.partition_index) else {
            continue;
        };
        let offline = image.offline_replicas(reg);
        p.error_code = if reg.leader < 0 {
            ResponseError::LeaderNotAvailable.code()
        } else {
            0
        };
        p.leader_id = BrokerId(reg.leader);
        p.leader_epoch = reg.leader_epoch;
        p.replica_nodes = ids(&reg.replicas);
        p.isr_nodes = ids(&reg.isr);
        p.eligible_leader_replicas = Some(ids(&reg.elr));
        p.last_known_elr = Some(ids(&reg.last_known_elr));
        p.offline_replicas = ids(&offline);
    }
}

/// Kafka's answer to a request it refuses (`getErrorResponse`): each topic
/// asked for, with the error and nothing else.
fn refused(requested: &[String], code: ResponseError) -> DescribeTopicPartitionsResponse {
    DescribeTopicPartitionsResponse::default().with_topics(
        requested
            .iter()
            .map(|n| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(code.code())
                    .with_name(Some(topic_name(n)))
                    .with_topic_id(Uuid::nil())
                    .with_topic_authorized_operations(OPS_NOT_REQUESTED)
            })
            .collect(),
    )
}

pub fn handle(req: &Request, body: Bytes) -> Reply {
    let request = decode_or_close!(req, body, DescribeTopicPartitionsRequest);
    let apis = &req.ctx.apis;
    // As Kafka: topics the client may not DESCRIBE are left out of "all
    // topics"; asked for by name, they are answered TOPIC_AUTHORIZATION_FAILED
    // without looking them up (no existence leak) and take no room in the page.
    let describable = |name: &str| {
        req.ctx
            .authorize(AclOperation::Describe, ResourceType::Topic, name)
    };
    let requested: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .collect();
    let mut cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.as_str(), c.partition_index));
    if let Some((topic, _)) = cursor {
        if !requested.is_empty() && !requested.iter().any(|n| n == topic) {
            return req.respond(&refused(&requested, ResponseError::InvalidRequest));
        }
    }
    let (authorized, unauthorized): (Vec<String>, Vec<String>) =
        requested.iter().cloned().partition(|n| describable(n));
    let mut authorized: Vec<String> = authorized;
    if let Some((topic, p)) = cursor {
        // a cursor on a refused topic: the page starts after it
        if p >= 0 && !requested.is_empty() && !authorized.iter().any(|n| n == topic) {
            authorized.retain(|n| n.as_str() > topic);
            cursor = None;
        }
    }
    // In a cluster the image holds the topics; a local log counts only for
    // the internal topics each node still creates itself.
    let image = apis.cluster.as_ref().map(|c| c.image());
    let local = |n: &str| {
        apis.replicas
            .topics
            .get(n)
            .filter(|t| image.is_none() || t.internal)
    };
    let all: Vec<String> = if requested.is_empty() {
        let mut names: BTreeSet<String> = image
            .iter()
            .flat_map(|i| i.topic_ids.keys().cloned())
            .collect();
        names.extend(
            apis.replicas
                .topics
                .list()
                .iter()
                .filter(|t| image.is_none() || t.internal)
                .map(|t| t.name.clone()),
        );
        names.into_iter().filter(|n| describable(n)).collect()
    } else {
        Vec::new()
    };
    let resp = if !requested.is_empty() && authorized.is_empty() {
        Ok((Vec::new(), None))
    } else {
        page(
            &authorized,
            &all,
            cursor,
            request.response_partition_limit,
            apis.config.node_id,
            |n| match image.as_deref().and_then(|i| i.topic_by_name(n)) {
                Some(t) => Some(TopicInfo {
                    id: t.id,
                    internal: is_internal_topic(n),
                    partitions: t.partitions.len(),
                }),
                None => local(n).map(|t| TopicInfo {
                    id: t.id,
                    internal: t.internal,
                    partitions: t.partitions.len(),
                }),
            },
        )
    };
    let resp = match resp {
        Ok((mut topics, next)) => {
            for t in &mut topics {
                if let Some(i) = image.as_deref() {
                    cluster_partitions(i, t);
                }
                if let Some(name) = &t.name {
                    t.topic_authorized_operations = req.ctx.authorized_operations(
                        ResourceType::Topic,
                        name.0.as_str(),
                        topic_authorized_operations(),
                    );
                }
            }
            topics.extend(refused(&unauthorized, ResponseError::TopicAuthorizationFailed).topics);
            DescribeTopicPartitionsResponse::default()
                .with_topics(topics)
                .with_next_cursor(next.map(|(t, p)| {
                    Cursor::default()
                        .with_topic_name(topic_name(&t))
                        .with_partition_index(p)
                }))
        }
        Err(code) => refused(&requested, code),
    };
    req.respond(&resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Topics a (3 partitions), b (2), c (1).
    fn lookup(name: &str) -> Option<TopicInfo> {
        let partitions = match name {
            "a" => 3,
            "b" => 2,
            "c" => 1,
            _ => return None,
        };
        Some(TopicInfo {
            id: Uuid::from_u128(partitions as u128),
            internal: false,
            partitions,
        })
    }

    /// (topic, error, partitions) of each topic, and the next cursor.
    type Shape = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

    fn shape(r: Result<Page, ResponseError>) -> Shape {
        let (topics, next) = r.expect("a page");
        let topics = topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                    t.error_code,
                    t.partitions.iter().map(|p| p.partition_index).collect(),
                )
            })
            .collect();
        (topics, next)
    }

    // Each case below is what Kafka 4.4 answered to the same request.
    #[test]
    fn pages_follow_the_partition_limit() {
        let abc = names(&["c", "a", "b"]);
        let (t, next) = shape(page(&abc, &[], None, 2, 1, lookup));
        assert_eq!(t, vec![("a".into(), 0, vec![0, 1])]);
        assert_eq!(next, Some(("a".into(), 2)));
        // A page that ends with a topic points at the next one's start.
        let (t, next) = shape(page(&abc, &[], None, 3, 1, lookup));
        assert_eq!(t, vec![("a".into(), 0, vec![0, 1, 2])]);
        assert_eq!(next, Some(("b".into(), 0)));
        let (t, next) = shape(page(&abc, &[], Some(("a", 2)), 2, 1, lookup));
        assert_eq!(t, vec![("a".into(), 0, vec![2]), ("b".into(), 0, vec![0])]);
        assert_eq!(next, Some(("b".into(), 1)));
        // Past the cursor topic's end: that topic with no partitions.
        let (t, next) = shape(page(&names(&["a", "b"]), &[], Some(("a", 7)), 5, 1, lookup));
        assert_eq!(
            t,
            vec![("a".into(), 0, vec![]), ("b".into(), 0, vec![0, 1])]
        );
        assert_eq!(next, None);
        // A limit below 1 is 1.
        let (t, next) = shape(page(&names(&["a"]), &[], None, 0, 1, lookup));
        assert_eq!(t, vec![("a".into(), 0, vec![0])]);
        assert_eq!(next, Some(("a".into(), 1)));
    }

    #[test]
    fn unknown_and_invalid_topics_are_answered_in_name_order() {
        let asked = names(&["b", "missing", "bad name!", "b"]);
        let (t, next) = shape(page(&asked, &[], None, 100, 1, lookup));
        assert_eq!(
            t,
            vec![
                ("b".into(), 0, vec![0, 1]),
                ("bad name!".into(), 17, vec![]),
                ("missing".into(), 3, vec![]),
            ]
        );
        assert_eq!(next, None);
        // Listing every topic skips one that vanished.
        let (t, _) = shape(page(&[], &names(&["gone", "c"]), None, 100, 1, lookup));
        assert_eq!(t, vec![("c".into(), 0, vec![0])]);
    }

    #[test]
    fn cursors_kafka_refuses() {
        let ab = names(&["a", "b"]);
        assert!(matches!(
            page(&ab, &[], Some(("zzz", 0)), 5, 1, lookup),
            Err(ResponseError::InvalidRequest)
        ));
        assert!(matches!(
            page(&ab, &[], Some(("a", -1)), 5, 1, lookup),
            Err(ResponseError::InvalidRequest)
        ));
        // Listing every topic from a cursor: the topics from it on.
        let (t, next) = shape(page(
            &[],
            &names(&["a", "b", "c"]),
            Some(("b", 1)),
            4,
            1,
            lookup,
        ));
        assert_eq!(t, vec![("b".into(), 0, vec![1]), ("c".into(), 0, vec![0])]);
        assert_eq!(next, None);
    }
}
