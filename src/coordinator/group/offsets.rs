//! Committed offsets of one group (`GroupOffsets`: committed, where their
//! records sit, and open transactions' pending ones) and their expiration
//! (`offsets.retention.minutes`), following Kafka's rules: offsets of an
//! Empty group expire `retention` after the group became Empty (after the
//! commit itself for a group that never had members); while a consumer
//! group has members, only offsets of topics it no longer subscribes to
//! expire, `retention` after their commit. An explicit expire timestamp
//! (OffsetCommit v2-v4 `retention_time_ms`) wins.

use std::collections::HashMap;

use super::record_serde::OffsetValue;

/// (topic, partition) → committed offset.
pub type OffsetMap = HashMap<(String, i32), OffsetValue>;

/// What the group's state says about expiring its offsets.
pub enum ExpirationBase {
    /// Empty group with members once: retention counts from this moment.
    StateTimestamp(i64),
    /// Simple group (never had members): from each commit.
    CommitTimestamp,
    /// Non-empty consumer group: unsubscribed topics expire from their
    /// commit, subscribed ones never.
    Unsubscribed(std::collections::HashSet<String>),
    /// Non-empty group of another protocol: nothing expires.
    Never,
}

/// Keys of the offsets that have expired at `now`.
pub fn expired(
    offsets: &OffsetMap,
    base: &ExpirationBase,
    retention_ms: i64,
    now: i64,
) -> Vec<(String, i32)> {
    offsets
        .iter()
        .filter(|((topic, _), v)| {
            if let Some(expire) = v.expire_timestamp {
                if !matches!(base, ExpirationBase::Never) {
                    return now >= expire;
                }
            }
            let since = match base {
                ExpirationBase::StateTimestamp(ts) => (*ts).max(0),
                ExpirationBase::CommitTimestamp => v.commit_timestamp,
                ExpirationBase::Unsubscribed(subscribed) => {
                    if subscribed.contains(topic) {
                        return false;
                    }
                    v.commit_timestamp
                }
                ExpirationBase::Never => return false,
            };
            now.saturating_sub(since) >= retention_ms
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// (topic, partition) → log position (offset in `__consumer_offsets`) of
/// the record that produced the committed offset. A transaction's offsets
/// only replace a committed offset written before them (Kafka's
/// `replayEndTransactionMarker` compares record offsets), so the outcome
/// does not depend on when the marker is applied, nor on compaction.
pub type PositionMap = HashMap<(String, i32), i64>;

/// An offset committed inside a transaction, not visible until the
/// transaction commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffset {
    pub value: OffsetValue,
    /// Offset of its record in `__consumer_offsets`.
    pub record_offset: i64,
}

/// One group's transactional offsets awaiting their transaction's marker
/// (Kafka's `pendingTransactionalOffsets` + `openTransactions`, per group),
/// keyed by producer id.
#[derive(Debug, Default, Clone)]
pub struct PendingTxnOffsets {
    by_producer: HashMap<i64, HashMap<(String, i32), PendingOffset>>,
}

impl PendingTxnOffsets {
    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }

    /// Records a transactional offset commit; a later one of the same
    /// producer for the same partition replaces the earlier.
    pub fn add(
        &mut self,
        producer_id: i64,
        key: (String, i32),
        value: OffsetValue,
        record_offset: i64,
    ) {
        self.by_producer.entry(producer_id).or_default().insert(
            key,
            PendingOffset {
                value,
                record_offset,
            },
        );
    }

    /// Whether any open transaction holds an offset for `key` (OffsetFetch
    /// with `require_stable` answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending(&self, key: &(String, i32)) -> bool {
        self.by_producer.values().any(|m| m.contains_key(key))
    }

    pub fn has_producer(&self, producer_id: i64) -> bool {
        self.by_producer.contains_key(&producer_id)
    }

    /// Partitions with an offset in some open transaction.
    pub fn partitions(&self) -> std::collections::HashSet<(String, i32)> {
        self.by_producer
            .values()
            .flat_map(|m| m.keys().cloned())
            .collect()
    }

    /// A tombstone for `key` (OffsetDelete, expiration, group deletion)
    /// also drops every pending offset of that partition, as Kafka's replay
    /// of an OffsetCommit tombstone does.
    pub fn remove_partition(&mut self, key: &(String, i32)) {
        self.by_producer.retain(|_, m| {
            m.remove(key);
            !m.is_empty()
        });
    }

    pub fn pending(&self, producer_id: i64, key: &(String, i32)) -> Option<&PendingOffset> {
        self.by_producer.get(&producer_id)?.get(key)
    }

    /// The producer's transaction ended. On commit its offsets become the
    /// committed ones, except where a committed offset was written after
    /// them (a higher record offset), which wins. On abort they are
    /// dropped. Returns how many offsets were materialized.
    pub fn complete(
        &mut self,
        producer_id: i64,
        commit: bool,
        committed: &mut OffsetMap,
        positions: &mut PositionMap,
    ) -> usize {
        let Some(pending) = self.by_producer.remove(&producer_id) else {
            return 0;
        };
        if !commit {
            return 0;
        }
        let mut applied = 0;
        for (key, p) in pending {
            let newer = match positions.get(&key) {
                Some(existing) if committed.contains_key(&key) => p.record_offset > *existing,
                _ => true,
            };
            if newer {
                positions.insert(key.clone(), p.record_offset);
                committed.insert(key, p.value);
                applied += 1;
            }
        }
        applied
    }
}

/// Everything one group has committed: its offsets, where their records
/// sit, and offsets of open transactions.
#[derive(Default)]
pub struct GroupOffsets {
    pub committed: OffsetMap,
    pub positions: PositionMap,
    pub pending: PendingTxnOffsets,
}

impl GroupOffsets {
    pub fn is_empty(&self) -> bool {
        self.committed.is_empty() && self.pending.is_empty()
    }

    /// A committed offset whose record sits at `position`.
    pub fn commit(&mut self, key: (String, i32), value: OffsetValue, position: i64) {
        self.positions.insert(key.clone(), position);
        self.committed.insert(key, value);
    }

    /// Drops a committed offset (its tombstone was written) and any pending
    /// transactional offset of that partition.
    pub fn remove(&mut self, key: &(String, i32)) {
        self.committed.remove(key);
        self.positions.remove(key);
        self.pending.remove_partition(key);
    }

    /// The producer's transaction ended (see [`PendingTxnOffsets::complete`]).
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) -> usize {
        let GroupOffsets {
            committed,
            positions,
            pending,
        } = self;
        pending.complete(producer_id, commit, committed, positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn off(ts: i64) -> OffsetValue {
        OffsetValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: ts,
            expire_timestamp: None,
        }
    }

    #[test]
    fn expiry_rules() {
        let mut m = OffsetMap::new();
        m.insert(("a".into(), 0), off(0));
        m.insert(("b".into(), 0), off(900));
        assert_eq!(
            expired(&m, &ExpirationBase::CommitTimestamp, 500, 1000).len(),
            1
        );
        assert_eq!(
            expired(&m, &ExpirationBase::StateTimestamp(100), 500, 1000).len(),
            2
        );
        assert_eq!(
            expired(&m, &ExpirationBase::StateTimestamp(600), 500, 1000).len(),
            0
        );
        let subscribed = ["a".to_string()].into_iter().collect();
        assert!(
            expired(&m, &ExpirationBase::Unsubscribed(subscribed), 50, 1000)
                == vec![("b".to_string(), 0)]
        );
        assert!(expired(&m, &ExpirationBase::Never, 0, 1000).is_empty());
    }

    fn val(offset: i64) -> OffsetValue {
        OffsetValue { offset, ..off(0) }
    }

    fn key(t: &str, p: i32) -> (String, i32) {
        (t.to_string(), p)
    }

    #[test]
    fn pending_commit_materializes_and_abort_discards() {
        let mut pending = PendingTxnOffsets::default();
        let mut committed = OffsetMap::new();
        let mut positions = PositionMap::new();
        pending.add(7, key("t", 0), val(10), 100);
        pending.add(7, key("t", 1), val(20), 100);
        pending.add(8, key("t", 0), val(30), 101);
        assert!(pending.has_pending(&key("t", 0)));
        assert!(!pending.has_pending(&key("t", 2)));
        // Abort of 8 drops only its offsets.
        assert_eq!(
            pending.complete(8, false, &mut committed, &mut positions),
            0
        );
        assert!(committed.is_empty());
        assert!(pending.has_pending(&key("t", 0)));
        // Commit of 7 makes them visible.
        assert_eq!(pending.complete(7, true, &mut committed, &mut positions), 2);
        assert_eq!(committed[&key("t", 0)].offset, 10);
        assert_eq!(committed[&key("t", 1)].offset, 20);
        assert_eq!(positions[&key("t", 0)], 100);
        assert!(pending.is_empty());
        // A marker for a producer with nothing pending is a no-op.
        assert_eq!(pending.complete(7, true, &mut committed, &mut positions), 0);
    }

    #[test]
    fn later_regular_commit_wins_over_earlier_transactional_one() {
        let mut pending = PendingTxnOffsets::default();
        let mut committed = OffsetMap::new();
        let mut positions = PositionMap::new();
        // txn offset at record 100, then a regular commit at record 105.
        pending.add(7, key("t", 0), val(10), 100);
        committed.insert(key("t", 0), val(50));
        positions.insert(key("t", 0), 105);
        // and a partition whose regular commit came before the txn one.
        pending.add(7, key("t", 1), val(11), 100);
        committed.insert(key("t", 1), val(5));
        positions.insert(key("t", 1), 90);
        assert_eq!(pending.complete(7, true, &mut committed, &mut positions), 1);
        assert_eq!(committed[&key("t", 0)].offset, 50);
        assert_eq!(committed[&key("t", 1)].offset, 11);
        assert_eq!(positions[&key("t", 1)], 100);
    }

    #[test]
    fn tombstone_drops_pending_of_every_producer() {
        let mut pending = PendingTxnOffsets::default();
        pending.add(1, key("t", 0), val(1), 1);
        pending.add(2, key("t", 0), val(2), 2);
        pending.add(2, key("t", 1), val(3), 2);
        pending.remove_partition(&key("t", 0));
        assert!(!pending.has_pending(&key("t", 0)));
        assert!(!pending.has_producer(1));
        assert!(pending.has_producer(2));
        assert_eq!(pending.partitions().len(), 1);
        // Latest write of a producer for a partition wins.
        pending.add(2, key("t", 1), val(4), 3);
        assert_eq!(pending.pending(2, &key("t", 1)).unwrap().value.offset, 4);
    }
}
