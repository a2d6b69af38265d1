//! KIP-848 consumer groups (the consumer rebalance protocol), laid out as
//! Kafka 4's `modern/consumer` package and the consumer-group half of its
//! `GroupMetadataManager`:
//!
//! - `member`: `ConsumerGroupMember`, `MemberState`, assignments.
//! - `group`: `ConsumerGroup`: epochs, members, target assignment, state;
//!   changed only by replaying records.
//! - `records`: the consumer group records of `__consumer_offsets`.
//! - `current_assignment`: `CurrentAssignmentBuilder` (reconciliation).
//! - `assignors`: the uniform and range server assignors.
//! - `regex`: regular-expression subscriptions (validation, resolution,
//!   when to refresh).
//! - `migration`: online upgrade of a classic group, downgrade back
//!   (`group.consumer.migration.policy`), the embedded consumer protocol.
//! - `classic_members`: JoinGroup, SyncGroup, Heartbeat and LeaveGroup of
//!   classic members in a consumer group.
//! - `heartbeat`: ConsumerGroupHeartbeat (join, heartbeat, leave, static
//!   members, target assignment, fencing on session and rebalance
//!   timeouts) and ConsumerGroupDescribe.

pub mod assignors;
pub mod classic_members;
pub mod current_assignment;
pub mod group;
pub mod heartbeat;
pub mod member;
pub mod migration;
pub mod records;
pub mod regex;

use uuid::Uuid;

/// The topics a consumer group may subscribe to, as the broker knows them
/// (a standalone broker's topics, a cluster broker's metadata image).
pub trait TopicResolver {
    /// (topic id, partition count) of a topic by name.
    fn by_name(&self, name: &str) -> Option<(Uuid, i32)>;
    /// A topic's name by id.
    fn name_of(&self, id: &Uuid) -> Option<String>;
    /// Every topic's name (regular expressions are resolved against them;
    /// Kafka does not leave internal topics out).
    fn topic_names(&self) -> Vec<String>;
    /// A version that grows when topics are created (Kafka's
    /// `lastMetadataImageWithNewTopics`).
    fn topics_version(&self) -> i64;
    /// Whether the client whose heartbeat resolves the group's regular
    /// expressions may DESCRIBE `topic` (topics it may not are left out).
    fn may_describe(&self, topic: &str) -> bool;
}

/// A hash of one topic's metadata the group's epoch depends on (name, id,
/// partition count); 0 when the topic does not exist. FNV-1a; Kafka's
/// KIP-1101 hash (Murmur3 with racks) is not reproduced.
pub fn topic_hash(name: &str, topic: Option<(Uuid, i32)>) -> i64 {
    let Some((id, partitions)) = topic else {
        return 0;
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(name.as_bytes());
    feed(&[0]);
    feed(id.as_bytes());
    feed(&partitions.to_be_bytes());
    h as i64
}

/// The group's metadata hash: its subscribed topics' hashes combined in
/// name order (0 for no topics).
pub fn combine_hashes<'a>(hashes: impl Iterator<Item = (&'a String, i64)>) -> i64 {
    let mut sorted: Vec<(&String, i64)> = hashes.collect();
    sorted.sort();
    sorted
        .into_iter()
        .fold(0i64, |acc, (_, h)| acc.wrapping_mul(31).wrapping_add(h))
}

/// No topics at all (unit tests of paths that resolve none).
#[cfg(test)]
pub struct NoTopics;

#[cfg(test)]
impl TopicResolver for NoTopics {
    fn by_name(&self, _: &str) -> Option<(Uuid, i32)> {
        None
    }
    fn name_of(&self, _: &Uuid) -> Option<String> {
        None
    }
    fn topic_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn topics_version(&self) -> i64 {
        0
    }
    fn may_describe(&self, _: &str) -> bool {
        true
    }
}
