//! Coordinators: broker-side state machines that clients address through
//! FindCoordinator, each keeping its state in an internal compacted topic:
//! the group coordinator (`group`, `__consumer_offsets`) and the transaction
//! coordinator (`txn`, `__transaction_state`), and the share coordinator
//! (`share`, `__share_group_state`, the share partitions' durable state).
//! `loader` replays such a topic at start-up for each.

pub mod group;
pub mod loader;
pub mod share;
pub mod txn;

/// `Utils.abs(key.hashCode()) % numPartitions`, with Java's
/// `String.hashCode` over UTF-16 code units, so a group (or transactional id) lands on the same
/// partition as it would in Kafka.
pub fn partition_for(key: &str, num_partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in key.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    // Kafka's Utils.abs maps Integer.MIN_VALUE to 0.
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % num_partitions.max(1)
}
