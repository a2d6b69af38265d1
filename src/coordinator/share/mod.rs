//! The share coordinator (KIP-932, Kafka's `ShareCoordinatorShard` and
//! `DefaultStatePersister` in one): the durable state of every share
//! partition (start offset, state epoch, leader epoch, the delivery
//! state and count of the in-flight records) in `__share_group_state`,
//! keyed by group, topic id and partition (Kafka's `SharePartitionKey`,
//! whose `group:topicId:partition` string picks the partition). A write
//! is a ShareUpdate record with the batches that changed, or a
//! ShareSnapshot with the whole state on the first write and after
//! `share.coordinator.snapshot.update.records.per.snapshot` updates; the
//! caller answers its client only once the write is durable
//! ([`DurableWait`]). At start-up the topic is replayed (snapshots
//! replace, updates merge as Kafka's `PersisterStateBatchCombiner` does).
//!
//! Standalone only, like the share partitions' own state: the topic is
//! created on the first write (as Kafka creates it on first need). A
//! cluster broker keeps share-partition state in memory (no share
//! coordinator RPCs between brokers yet).

pub mod record_serde;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use self::record_serde::{SnapshotValue, UpdateValue, SHARE_SNAPSHOT, SHARE_UPDATE};
use crate::broker::share::partition::{PersistedState, StateBatch};
use crate::broker::share::TopicIdPartition;
use crate::broker::topics::{topic_id_string, Topic};
use crate::config::BrokerConfig;
use crate::coordinator::group::writer::{CoordRecord, CoordinatorWriter, DurableWait};
use crate::coordinator::loader::{self, LoadedBatch};
use crate::record::records;
use crate::util::now_ms;

pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

/// Kafka's `ShareCoordinatorConfig` keys kastle reads.
#[derive(Debug, Clone)]
pub struct ShareStateConfig {
    /// `share.coordinator.state.topic.num.partitions`.
    pub num_partitions: i32,
    /// `share.coordinator.snapshot.update.records.per.snapshot`.
    pub updates_per_snapshot: u32,
    /// `share.coordinator.write.timeout.ms`: how long a write may take
    /// to become durable.
    pub write_timeout_ms: i64,
    segment_bytes: i64,
    min_isr: i64,
}

impl ShareStateConfig {
    pub fn from_broker(c: &BrokerConfig) -> ShareStateConfig {
        ShareStateConfig {
            num_partitions: c
                .int("share.coordinator.state.topic.num.partitions")
                .clamp(1, 10_000) as i32,
            updates_per_snapshot: u32::try_from(
                c.int("share.coordinator.snapshot.update.records.per.snapshot"),
            )
            .unwrap_or(500),
            write_timeout_ms: c.int("share.coordinator.write.timeout.ms").max(1),
            segment_bytes: c.int("share.coordinator.state.topic.segment.bytes"),
            min_isr: c.int("share.coordinator.state.topic.min.isr"),
        }
    }

    /// The configs `__share_group_state` is created with (Kafka's
    /// `ShareCoordinatorService.shareGroupStateTopicConfigs`: delete
    /// policy with no retention limit, the producer's compression).
    pub fn topic_configs(&self) -> BTreeMap<String, String> {
        [
            ("cleanup.policy", "delete".to_string()),
            ("compression.type", "producer".to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
            ("min.insync.replicas", self.min_isr.to_string()),
            ("retention.ms", "-1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Kafka's `ShareGroupOffset`: what the coordinator holds of one share
/// partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroupOffset {
    pub snapshot_epoch: i32,
    pub state_epoch: i32,
    pub leader_epoch: i32,
    pub start_offset: i64,
    pub create_timestamp: i64,
    pub write_timestamp: i64,
    pub batches: Vec<StateBatch>,
    /// ShareUpdate records since the last ShareSnapshot.
    updates_since_snapshot: u32,
}

impl ShareGroupOffset {
    fn from_snapshot(v: SnapshotValue) -> ShareGroupOffset {
        ShareGroupOffset {
            snapshot_epoch: v.snapshot_epoch,
            state_epoch: v.state_epoch,
            leader_epoch: v.leader_epoch,
            start_offset: v.start_offset,
            create_timestamp: v.create_timestamp,
            write_timestamp: v.write_timestamp,
            batches: v.batches,
            updates_since_snapshot: 0,
        }
    }

    /// Kafka's `merge` of a ShareUpdate into the state so far.
    fn merge(&mut self, u: &UpdateValue) {
        if u.start_offset != -1 {
            self.start_offset = u.start_offset;
        }
        if u.leader_epoch != -1 {
            self.leader_epoch = u.leader_epoch;
        }
        self.batches = combine(&self.batches, &u.batches, self.start_offset);
        self.updates_since_snapshot = self.updates_since_snapshot.saturating_add(1);
    }

    pub fn persisted(&self) -> PersistedState {
        PersistedState {
            start_offset: self.start_offset,
            batches: self.batches.clone(),
        }
    }
}

/// (group id, topic id, partition): Kafka's `SharePartitionKey`.
type Key = (String, Uuid, i32);

/// Kafka's `SharePartitionKey.asCoordinatorKey`: what picks the
/// partition of `__share_group_state`.
pub fn coordinator_key(group: &str, topic_id: &Uuid, partition: i32) -> String {
    format!("{group}:{}:{partition}", topic_id_string(topic_id))
}

/// `new` batches over `old` (a newer state wins where they overlap),
/// cut at `start_offset`, sorted and with equal neighbours joined (Kafka's
/// `PersisterStateBatchCombiner`).
pub fn combine(old: &[StateBatch], new: &[StateBatch], start_offset: i64) -> Vec<StateBatch> {
    let mut out: Vec<StateBatch> = Vec::with_capacity(old.len() + new.len());
    for o in old {
        let mut pieces = vec![*o];
        for n in new {
            pieces = pieces
                .into_iter()
                .flat_map(|p| {
                    if n.last_offset < p.first_offset || n.first_offset > p.last_offset {
                        return vec![p];
                    }
                    let mut left = Vec::with_capacity(2);
                    if p.first_offset < n.first_offset {
                        left.push(StateBatch {
                            last_offset: n.first_offset - 1,
                            ..p
                        });
                    }
                    if p.last_offset > n.last_offset {
                        left.push(StateBatch {
                            first_offset: n.last_offset + 1,
                            ..p
                        });
                    }
                    left
                })
                .collect();
        }
        out.extend(pieces);
    }
    out.extend(new.iter().copied());
    let mut out: Vec<StateBatch> = out
        .into_iter()
        .filter(|b| b.last_offset >= start_offset)
        .map(|b| StateBatch {
            first_offset: b.first_offset.max(start_offset),
            ..b
        })
        .collect();
    out.sort_by_key(|b| b.first_offset);
    let mut joined: Vec<StateBatch> = Vec::with_capacity(out.len());
    for b in out {
        match joined.last_mut() {
            Some(j)
                if j.last_offset + 1 == b.first_offset
                    && j.delivery_state == b.delivery_state
                    && j.delivery_count == b.delivery_count =>
            {
                j.last_offset = b.last_offset;
            }
            _ => joined.push(b),
        }
    }
    joined
}

/// Applies one `__share_group_state` record to `states` (Kafka's
/// `ShareCoordinatorShard.replay`). Malformed records are skipped.
fn replay_record(states: &mut HashMap<Key, ShareGroupOffset>, key: &[u8], value: Option<&[u8]>) {
    let k = match record_serde::decode_key(key) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "skipping a malformed {SHARE_STATE_TOPIC} key");
            return;
        }
    };
    let id: Key = (k.group_id, k.topic_id, k.partition);
    match (k.record_type, value) {
        (SHARE_SNAPSHOT, None) => {
            states.remove(&id);
        }
        (SHARE_SNAPSHOT, Some(v)) => match record_serde::decode_snapshot_value(v) {
            Ok(v) => {
                states.insert(id, ShareGroupOffset::from_snapshot(v));
            }
            Err(e) => tracing::warn!(error = %e, "skipping a malformed ShareSnapshot value"),
        },
        (SHARE_UPDATE, Some(v)) => match record_serde::decode_update_value(v) {
            // An update without a snapshot before it has nothing to apply
            // to (Kafka takes it as the state; it never writes one first).
            Ok(u) => match states.get_mut(&id) {
                Some(s) => s.merge(&u),
                None => {
                    states.insert(
                        id,
                        ShareGroupOffset {
                            snapshot_epoch: u.snapshot_epoch,
                            state_epoch: 0,
                            leader_epoch: u.leader_epoch,
                            start_offset: u.start_offset,
                            create_timestamp: -1,
                            write_timestamp: -1,
                            batches: combine(&[], &u.batches, u.start_offset),
                            updates_since_snapshot: 0,
                        },
                    );
                }
            },
            Err(e) => tracing::warn!(error = %e, "skipping a malformed ShareUpdate value"),
        },
        _ => {}
    }
}

/// Replays one batch of `__share_group_state` partition `index`.
fn replay_batch(states: &mut HashMap<Key, ShareGroupOffset>, b: LoadedBatch<'_>, index: i32) {
    let LoadedBatch::Records { header, section } = b else {
        return;
    };
    for r in records(section, header.records_count) {
        match r {
            Ok(r) => {
                if let Some(k) = r.key {
                    replay_record(states, k, r.value);
                }
            }
            Err(e) => {
                tracing::warn!(partition = index, offset = header.base_offset, error = %e, "malformed record in {SHARE_STATE_TOPIC}");
                break;
            }
        }
    }
}

/// Every share partition's durable state on this broker.
pub struct ShareCoordinator {
    pub config: ShareStateConfig,
    writer: CoordinatorWriter,
    /// Held while a write is built and appended, so that the records of
    /// one share partition reach the log in the order their states were
    /// taken.
    states: Mutex<HashMap<Key, ShareGroupOffset>>,
    adopting: Mutex<()>,
}

impl ShareCoordinator {
    /// A standalone broker's coordinator before `__share_group_state`
    /// exists (no share partition has state yet).
    pub fn standalone_without_topic(config: ShareStateConfig) -> Arc<ShareCoordinator> {
        let n = config.num_partitions;
        Arc::new(ShareCoordinator {
            config,
            writer: CoordinatorWriter::standalone_without_topic(n),
            states: Mutex::new(HashMap::new()),
            adopting: Mutex::new(()),
        })
    }

    /// A restart: every share partition's state loads from `topic`.
    pub fn load(config: ShareStateConfig, topic: Arc<Topic>) -> anyhow::Result<Arc<Self>> {
        let c = Self::standalone_without_topic(config);
        c.adopt_topic(topic)?;
        Ok(c)
    }

    pub fn has_topic(&self) -> bool {
        self.writer.has_topic()
    }

    /// Standalone: `topic` (just created, or found at start) is replayed
    /// and becomes the log. A no-op once there is one.
    pub fn adopt_topic(&self, topic: Arc<Topic>) -> anyhow::Result<()> {
        let _adopting = self.adopting.lock().unwrap_or_else(|p| p.into_inner());
        if self.writer.has_topic() {
            return Ok(());
        }
        let mut loaded = HashMap::new();
        for p in &topic.partitions {
            loader::replay(p, |b| replay_batch(&mut loaded, b, p.index))?;
        }
        tracing::info!(
            share_partitions = loaded.len(),
            "loaded {SHARE_STATE_TOPIC}"
        );
        *self.lock() = loaded;
        self.writer.set_local_topic(topic);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, ShareGroupOffset>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Kafka's ReadShareGroupState: the persisted state of a share
    /// partition, if it has any.
    pub fn read(&self, group: &str, tp: TopicIdPartition) -> Option<PersistedState> {
        self.lock()
            .get(&(group.to_string(), tp.0, tp.1))
            .map(ShareGroupOffset::persisted)
    }

    /// The state of every share partition of `group`.
    pub fn group_states(&self, group: &str) -> BTreeMap<TopicIdPartition, ShareGroupOffset> {
        self.lock()
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), s)| ((*t, *p), s.clone()))
            .collect()
    }

    /// Kafka's WriteShareGroupState: persists what `state` returns (taken
    /// under this coordinator's lock, so writes of one share partition
    /// are ordered) when it differs from what is persisted. `None`: nothing
    /// to write; else the wait that makes the write durable.
    pub fn write(
        &self,
        group: &str,
        tp: TopicIdPartition,
        leader_epoch: i32,
        state: impl FnOnce() -> Option<PersistedState>,
    ) -> Result<Option<DurableWait>, ResponseError> {
        let mut states = self.lock();
        let Some(view) = state() else {
            return Ok(None);
        };
        let id: Key = (group.to_string(), tp.0, tp.1);
        let now = now_ms();
        let current = states.get(&id);
        if current.is_some_and(|c| c.start_offset == view.start_offset && c.batches == view.batches)
        {
            return Ok(None);
        }
        let snapshot = |snapshot_epoch: i32, state_epoch: i32, create: i64| ShareGroupOffset {
            snapshot_epoch,
            state_epoch,
            leader_epoch,
            start_offset: view.start_offset,
            create_timestamp: create,
            write_timestamp: now,
            batches: view.batches.clone(),
            updates_since_snapshot: 0,
        };
        let next = match current {
            None => snapshot(0, 0, now),
            Some(c) if c.updates_since_snapshot >= self.config.updates_per_snapshot => {
                snapshot(c.snapshot_epoch + 1, c.state_epoch, now)
            }
            Some(c) => {
                let had: HashSet<&StateBatch> = c.batches.iter().collect();
                let changed: Vec<StateBatch> = view
                    .batches
                    .iter()
                    .filter(|b| !had.contains(b))
                    .copied()
                    .collect();
                let update = UpdateValue {
                    snapshot_epoch: c.snapshot_epoch,
                    leader_epoch,
                    start_offset: view.start_offset,
                    batches: changed,
                };
                let mut merged = c.clone();
                merged.merge(&update);
                if merged.batches == view.batches {
                    let rec =
                        self.record(SHARE_UPDATE, &id, Some(record_serde::update_value(&update)))?;
                    let wait = self.append(&id, rec)?;
                    states.insert(id, merged);
                    return Ok(Some(wait));
                }
                // The update would not say what the state is (the
                // persisted batches left the share partition's shape):
                // a snapshot does.
                snapshot(c.snapshot_epoch + 1, c.state_epoch, c.create_timestamp)
            }
        };
        let rec = self.record(
            SHARE_SNAPSHOT,
            &id,
            Some(record_serde::snapshot_value(&snapshot_value(&next))),
        )?;
        let wait = self.append(&id, rec)?;
        states.insert(id, next);
        Ok(Some(wait))
    }

    /// Replaces a share partition's state with a new start offset and no
    /// batches, one state epoch on (Kafka's InitializeShareGroupState as
    /// AlterShareGroupOffsets sends it). The leader epoch is 0, as Kafka's
    /// `ShareGroupOffset.fromRequest` sets it for an initialization.
    pub fn initialize(
        &self,
        group: &str,
        tp: TopicIdPartition,
        start_offset: i64,
    ) -> Result<DurableWait, ResponseError> {
        let mut states = self.lock();
        let id: Key = (group.to_string(), tp.0, tp.1);
        let now = now_ms();
        let next = match states.get(&id) {
            Some(c) => ShareGroupOffset {
                snapshot_epoch: c.snapshot_epoch + 1,
                state_epoch: c.state_epoch + 1,
                leader_epoch: 0,
                start_offset,
                create_timestamp: now,
                write_timestamp: now,
                batches: Vec::new(),
                updates_since_snapshot: 0,
            },
            None => ShareGroupOffset {
                snapshot_epoch: 0,
                state_epoch: 0,
                leader_epoch: 0,
                start_offset,
                create_timestamp: now,
                write_timestamp: now,
                batches: Vec::new(),
                updates_since_snapshot: 0,
            },
        };
        let rec = self.record(
            SHARE_SNAPSHOT,
            &id,
            Some(record_serde::snapshot_value(&snapshot_value(&next))),
        )?;
        let wait = self.append(&id, rec)?;
        states.insert(id, next);
        Ok(wait)
    }

    /// Kafka's DeleteShareGroupState: a tombstone for the share
    /// partition's state. `None` when it had none.
    pub fn delete(
        &self,
        group: &str,
        tp: TopicIdPartition,
    ) -> Result<Option<DurableWait>, ResponseError> {
        let mut states = self.lock();
        let id: Key = (group.to_string(), tp.0, tp.1);
        if !states.contains_key(&id) {
            return Ok(None);
        }
        let rec = self.record(SHARE_SNAPSHOT, &id, None)?;
        let wait = self.append(&id, rec)?;
        states.remove(&id);
        Ok(Some(wait))
    }

    fn record(
        &self,
        record_type: i16,
        id: &Key,
        value: Option<Result<Vec<u8>, record_serde::FieldTooLong>>,
    ) -> Result<CoordRecord, ResponseError> {
        let fail = |e: record_serde::FieldTooLong| {
            tracing::warn!(error = %e, "a {SHARE_STATE_TOPIC} record cannot be serialized");
            ResponseError::UnknownServerError
        };
        let key = record_serde::key(record_type, &id.0, id.1, id.2).map_err(fail)?;
        Ok((key, value.transpose().map_err(fail)?))
    }

    fn append(&self, id: &Key, rec: CoordRecord) -> Result<DurableWait, ResponseError> {
        if !self.writer.has_topic() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.writer
            .append(&coordinator_key(&id.0, &id.1, id.2), &[rec])
    }

    /// Replays raw log bytes of a `__share_group_state` partition, as
    /// loading reads them (a fuzz entry point): the share partitions'
    /// states.
    #[doc(hidden)]
    pub fn replay_log(log: &[u8], partition: i32) -> usize {
        let mut states = HashMap::new();
        let budget = crate::record::compression::decompression_budget(1 << 20);
        let mut next = 0;
        loader::replay_chunk(
            log,
            budget,
            &mut next,
            SHARE_STATE_TOPIC,
            partition,
            &mut |b| replay_batch(&mut states, b, partition),
        );
        states.len()
    }
}

fn snapshot_value(s: &ShareGroupOffset) -> SnapshotValue {
    SnapshotValue {
        snapshot_epoch: s.snapshot_epoch,
        state_epoch: s.state_epoch,
        leader_epoch: s.leader_epoch,
        start_offset: s.start_offset,
        create_timestamp: s.create_timestamp,
        write_timestamp: s.write_timestamp,
        batches: s.batches.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::share::partition::{PERSISTED_ACKNOWLEDGED, PERSISTED_AVAILABLE};

    fn b(first: i64, last: i64, state: i8, count: i16) -> StateBatch {
        StateBatch {
            first_offset: first,
            last_offset: last,
            delivery_state: state,
            delivery_count: count,
        }
    }

    #[test]
    fn newer_batches_win_and_the_start_cuts() {
        let old = vec![b(0, 9, PERSISTED_AVAILABLE, 1)];
        let new = vec![b(3, 4, PERSISTED_ACKNOWLEDGED, 1)];
        assert_eq!(
            combine(&old, &new, 2),
            vec![
                b(2, 2, PERSISTED_AVAILABLE, 1),
                b(3, 4, PERSISTED_ACKNOWLEDGED, 1),
                b(5, 9, PERSISTED_AVAILABLE, 1)
            ]
        );
        // Equal neighbours join.
        let old = vec![
            b(0, 1, PERSISTED_ACKNOWLEDGED, 1),
            b(3, 4, PERSISTED_ACKNOWLEDGED, 1),
        ];
        let new = vec![b(2, 2, PERSISTED_ACKNOWLEDGED, 1)];
        assert_eq!(
            combine(&old, &new, 0),
            vec![b(0, 4, PERSISTED_ACKNOWLEDGED, 1)]
        );
    }

    #[test]
    fn snapshots_and_updates_replay_to_the_state() {
        let t = Uuid::from_u128(9);
        let mut states = HashMap::new();
        let key = |ty| record_serde::key(ty, "g", t, 0).unwrap();
        let snap = record_serde::snapshot_value(&SnapshotValue {
            snapshot_epoch: 0,
            state_epoch: 0,
            leader_epoch: 0,
            start_offset: 0,
            create_timestamp: 1,
            write_timestamp: 1,
            batches: vec![b(1, 3, PERSISTED_AVAILABLE, 1)],
        })
        .unwrap();
        replay_record(&mut states, &key(SHARE_SNAPSHOT), Some(&snap));
        let upd = record_serde::update_value(&UpdateValue {
            snapshot_epoch: 0,
            leader_epoch: -1,
            start_offset: 2,
            batches: vec![b(3, 3, PERSISTED_ACKNOWLEDGED, 1)],
        })
        .unwrap();
        replay_record(&mut states, &key(SHARE_UPDATE), Some(&upd));
        let s = &states[&("g".to_string(), t, 0)];
        assert_eq!(s.start_offset, 2);
        assert_eq!(s.leader_epoch, 0, "-1 leaves the leader epoch");
        assert_eq!(
            s.batches,
            vec![
                b(2, 2, PERSISTED_AVAILABLE, 1),
                b(3, 3, PERSISTED_ACKNOWLEDGED, 1)
            ]
        );
        replay_record(&mut states, &key(SHARE_SNAPSHOT), None);
        assert!(states.is_empty(), "a tombstone deletes the state");
        replay_record(&mut states, b"\x00", Some(&snap));
        assert!(states.is_empty(), "a malformed key is skipped");
    }

    #[test]
    fn coordinator_keys_are_kafkas() {
        assert_eq!(
            coordinator_key("g", &Uuid::nil(), 3),
            "g:AAAAAAAAAAAAAAAAAAAAAA:3"
        );
    }
}
