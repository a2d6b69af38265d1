//! The broker's metadata publisher diff (Kafka's `BrokerMetadataPublisher`
//! with `TopicsDelta.localChanges`): from the image before and after a
//! batch of metadata records, the partitions whose replica on this node
//! must change: created or updated (leader, follower, epochs, ISR) or
//! deleted (no longer a replica, or the topic removed). Pure: the
//! `ReplicaManager` applies the result.

use std::collections::BTreeMap;

use crate::broker::replica_manager::LocalReplicaChange;
use crate::metadata::image::{BrokerRegistration, CONFIG_RESOURCE_TOPIC};
use crate::metadata::{MetadataImage, PartitionRegistration, TopicImage};

/// "host:port" of `broker`'s endpoint on `listener`.
pub fn endpoint_of(broker: &BrokerRegistration, listener: &str) -> Option<String> {
    broker
        .listeners
        .iter()
        .find(|e| e.name == listener)
        .map(|e| {
            if e.host.contains(':') {
                format!("[{}]:{}", e.host, e.port)
            } else {
                format!("{}:{}", e.host, e.port)
            }
        })
}

/// Where this node fetches `p` from: the leader's inter-broker endpoint in
/// `image`, unless this node leads or nobody does.
fn leader_endpoint(
    image: &MetadataImage,
    p: &PartitionRegistration,
    node_id: i32,
    listener: &str,
) -> Option<String> {
    if p.leader < 0 || p.leader == node_id {
        return None;
    }
    image
        .brokers
        .get(&p.leader)
        .and_then(|b| endpoint_of(b, listener))
}

fn topic_configs(image: &MetadataImage, topic: &str) -> BTreeMap<String, String> {
    image
        .configs
        .get(&(CONFIG_RESOURCE_TOPIC, topic.to_string()))
        .cloned()
        .unwrap_or_default()
}

fn removed(topic: &TopicImage, partition: i32) -> LocalReplicaChange {
    LocalReplicaChange {
        topic: topic.name.clone(),
        topic_id: topic.id,
        partition,
        registration: None,
        leader_endpoint: None,
        topic_configs: BTreeMap::new(),
    }
}

/// One change per partition whose registration changed and where `node_id`
/// is or was a replica: `registration: None` when it stopped being one or
/// the topic is gone. A followed partition whose leader now has another
/// inter-broker endpoint (it re-registered) changes too, so the fetcher
/// reconnects. Removals come first, then topics and partitions in id order.
pub fn local_changes(
    old: &MetadataImage,
    new: &MetadataImage,
    node_id: i32,
    inter_broker_listener: &str,
) -> Vec<LocalReplicaChange> {
    let mut deletes = Vec::new();
    let mut updates = Vec::new();
    for (id, old_topic) in &old.topics {
        let new_topic = new.topics.get(id);
        for (pid, old_p) in &old_topic.partitions {
            let still = new_topic
                .and_then(|t| t.partitions.get(pid))
                .is_some_and(|p| p.replicas.contains(&node_id));
            if old_p.replicas.contains(&node_id) && !still {
                deletes.push(removed(old_topic, *pid));
            }
        }
    }
    for (id, topic) in &new.topics {
        let old_topic = old.topics.get(id);
        let mut configs = None;
        for (pid, p) in &topic.partitions {
            if !p.replicas.contains(&node_id) {
                continue;
            }
            let endpoint = leader_endpoint(new, p, node_id, inter_broker_listener);
            let unchanged = old_topic
                .and_then(|t| t.partitions.get(pid))
                .is_some_and(|o| {
                    o == p && leader_endpoint(old, o, node_id, inter_broker_listener) == endpoint
                });
            if unchanged {
                continue;
            }
            let configs = configs.get_or_insert_with(|| topic_configs(new, &topic.name));
            updates.push(LocalReplicaChange {
                topic: topic.name.clone(),
                topic_id: topic.id,
                partition: *pid,
                registration: Some(p.clone()),
                leader_endpoint: endpoint,
                topic_configs: configs.clone(),
            });
        }
    }
    deletes.extend(updates);
    deletes
}

#[cfg(test)]
mod tests;
