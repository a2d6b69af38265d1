//! Kafka's `OffsetMetadataManager`: the offsets every group committed, with
//! OffsetCommit, TxnOffsetCommit (pending until the transaction's marker),
//! OffsetFetch (`require_stable`), OffsetDelete, the offsets side of
//! DeleteGroups, and expiration (`offsets.retention.minutes`). Validating the
//! committer against the group's membership is the `GroupMetadataManager`'s
//! part; this one writes the OffsetCommit records and keeps the values.

use std::collections::{BTreeMap, HashMap, HashSet};

use kafka_protocol::ResponseError;

use super::api::{code, CommitPartition, FetchedOffset};
use super::offsets::{self, ExpirationBase, GroupOffsets};
use super::record_serde::{self, OffsetValue};
use super::writer::{map_append_error, record, CoordRecord, CoordinatorWriter, DurableWait};

/// Per-partition codes of a commit (same order as its partitions) and the
/// write to await.
pub type CommitResult = Result<(Vec<i16>, Option<DurableWait>), i16>;

#[derive(Default)]
pub struct OffsetMetadataManager {
    by_group: HashMap<String, GroupOffsets>,
}

impl OffsetMetadataManager {
    pub fn from_loaded(by_group: HashMap<String, GroupOffsets>) -> OffsetMetadataManager {
        OffsetMetadataManager { by_group }
    }

    /// Adds the offsets a partition's load found (cluster mode: one
    /// partition at a time; its groups are on no other partition).
    pub fn insert_loaded(&mut self, group_id: String, offsets: GroupOffsets) {
        self.by_group.insert(group_id, offsets);
    }

    /// Whether `group_id` holds any committed or pending offset.
    pub fn has_group(&self, group_id: &str) -> bool {
        self.by_group.get(group_id).is_some_and(|o| !o.is_empty())
    }

    pub fn group(&self, group_id: &str) -> Option<&GroupOffsets> {
        self.by_group.get(group_id)
    }

    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.by_group.keys()
    }

    /// OffsetCommit (`txn` None) or TxnOffsetCommit (`txn` = producer id and
    /// epoch: a transactional batch whose offsets stay pending until the
    /// marker, see [`Self::complete_txn`]). The committer is validated.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &mut self,
        writer: &CoordinatorWriter,
        max_metadata_bytes: usize,
        group_id: &str,
        parts: &[CommitPartition],
        now: i64,
        expire_timestamp: Option<i64>,
        txn: Option<(i64, i16)>,
    ) -> CommitResult {
        let mut codes = Vec::with_capacity(parts.len());
        let mut records = Vec::new();
        let mut values = Vec::new();
        for p in parts {
            let meta = p.metadata.clone().unwrap_or_default();
            if meta.len() > max_metadata_bytes {
                codes.push(code(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            codes.push(0);
            let v = OffsetValue {
                offset: p.offset,
                leader_epoch: p.leader_epoch,
                metadata: meta,
                commit_timestamp: now,
                expire_timestamp,
            };
            records.push(
                record(
                    record_serde::offset_key(group_id, &p.topic, p.partition),
                    Some(record_serde::offset_value(&v)),
                )
                .map_err(|e| map_append_error(e, true))?,
            );
            values.push(((p.topic.clone(), p.partition), v));
        }
        if records.is_empty() {
            return Ok((codes, None));
        }
        let (wait, base) = writer
            .append_batch(group_id, &records, txn)
            .map_err(|e| map_append_error(e, true))?;
        let offsets = self.by_group.entry(group_id.to_string()).or_default();
        for ((k, v), position) in values.into_iter().zip(base..) {
            match txn {
                Some((producer_id, _)) => offsets.pending.add(producer_id, k, v, position),
                None => offsets.commit(k, v, position),
            }
        }
        if let Some((producer_id, producer_epoch)) = txn {
            tracing::debug!(group = %group_id, producer_id, producer_epoch, offsets = records.len(), "transactional offsets pending");
        }
        Ok((codes, Some(wait)))
    }

    /// The transaction coordinator wrote (and made durable) a COMMIT or
    /// ABORT marker of `producer_id` on `__consumer_offsets` partition
    /// `offsets_partition`: that producer's pending offsets of every group
    /// on it are committed (unless a later regular commit superseded them)
    /// or discarded.
    pub fn complete_txn(
        &mut self,
        writer: &CoordinatorWriter,
        offsets_partition: i32,
        producer_id: i64,
        commit: bool,
    ) {
        let mut settled = 0usize;
        let mut applied = 0usize;
        for (group_id, o) in self.by_group.iter_mut() {
            if !o.pending.has_producer(producer_id)
                || writer.partition_for(group_id) != offsets_partition
            {
                continue;
            }
            settled += 1;
            applied += o.complete_txn(producer_id, commit);
        }
        if settled > 0 {
            tracing::debug!(
                partition = offsets_partition,
                producer_id,
                commit,
                groups = settled,
                offsets = applied,
                "transactional offsets settled"
            );
        }
    }

    /// OffsetFetch for one group: `topics` None = every committed offset.
    /// Returns (topic, partitions) in request order (sorted for "all").
    /// With `require_stable` (v7+), a partition an open transaction holds
    /// an offset for answers UNSTABLE_OFFSET_COMMIT and offset -1, as
    /// Kafka's `fetchOffsets`/`fetchAllOffsets` do.
    pub fn fetch(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Vec<(String, Vec<FetchedOffset>)> {
        let g = self.by_group.get(group_id);
        let missing = |partition: i32| FetchedOffset {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: 0,
        };
        let unstable = |t: &str, partition: i32| {
            require_stable && g.is_some_and(|g| g.pending.has_pending(&(t.to_string(), partition)))
        };
        let found = |v: Option<&OffsetValue>, t: &str, partition: i32| {
            if unstable(t, partition) {
                return FetchedOffset {
                    error: code(ResponseError::UnstableOffsetCommit),
                    ..missing(partition)
                };
            }
            match v {
                Some(v) => FetchedOffset {
                    partition,
                    offset: v.offset,
                    leader_epoch: v.leader_epoch,
                    metadata: v.metadata.clone(),
                    error: 0,
                },
                None => missing(partition),
            }
        };
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(t, parts)| {
                    let out = parts
                        .into_iter()
                        .map(|p| {
                            let v = g.and_then(|g| g.committed.get(&(t.clone(), p)));
                            found(v, &t, p)
                        })
                        .collect();
                    (t, out)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
                if let Some(g) = g {
                    for ((t, p), v) in &g.committed {
                        by_topic
                            .entry(t.clone())
                            .or_default()
                            .push(found(Some(v), t, *p));
                    }
                }
                by_topic
                    .into_iter()
                    .map(|(t, mut v)| {
                        v.sort_by_key(|f| f.partition);
                        (t, v)
                    })
                    .collect()
            }
        }
    }

    /// The tombstones that delete every offset of `group_id`: committed ones
    /// and partitions only an open transaction wrote to (Kafka's
    /// `deleteAllOffsets`).
    pub fn delete_all_records(&self, group_id: &str) -> Result<Vec<CoordRecord>, ResponseError> {
        let Some(g) = self.by_group.get(group_id) else {
            return Ok(Vec::new());
        };
        let pending_only = g
            .pending
            .partitions()
            .into_iter()
            .filter(|k| !g.committed.contains_key(k));
        g.committed
            .keys()
            .cloned()
            .chain(pending_only)
            .map(|(t, p)| record(record_serde::offset_key(group_id, &t, p), None))
            .collect()
    }

    /// Forgets `group_id`'s offsets (their tombstones were written).
    pub fn remove_group(&mut self, group_id: &str) {
        self.by_group.remove(group_id);
    }

    /// OffsetDelete of the partitions of `topics` the group holds offsets
    /// for; topics `subscribed` answer GROUP_SUBSCRIBED_TO_TOPIC. Err is a
    /// top-level code; Ok gives per-topic per-partition codes.
    pub fn delete(
        &mut self,
        writer: &CoordinatorWriter,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
        subscribed: impl Fn(&str) -> bool,
    ) -> Result<(Vec<Vec<i16>>, Option<DurableWait>), i16> {
        let mut codes = Vec::with_capacity(topics.len());
        let mut records = Vec::new();
        let mut keys = Vec::new();
        let g = self.by_group.get(group_id);
        for (t, parts) in topics {
            if subscribed(t) {
                codes.push(vec![
                    code(ResponseError::GroupSubscribedToTopic);
                    parts.len()
                ]);
                continue;
            }
            codes.push(vec![0; parts.len()]);
            for p in parts {
                let k = (t.clone(), *p);
                if g.is_some_and(|g| g.committed.contains_key(&k) || g.pending.has_pending(&k)) {
                    let r = record(record_serde::offset_key(group_id, t, *p), None)
                        .map_err(|e| map_append_error(e, false))?;
                    records.push(r);
                    keys.push(k);
                }
            }
        }
        if records.is_empty() {
            return Ok((codes, None));
        }
        let wait = writer
            .append(group_id, &records)
            .map_err(|e| map_append_error(e, false))?;
        if let Some(g) = self.by_group.get_mut(group_id) {
            for k in &keys {
                g.remove(k);
            }
        }
        Ok((codes, Some(wait)))
    }

    /// The offsets of `group_id` that expired at `now`, given what the
    /// group's state says about expiring them. An offset with a pending
    /// transactional one does not expire yet.
    pub fn expired(
        &self,
        group_id: &str,
        base: &ExpirationBase,
        retention_ms: i64,
        now: i64,
    ) -> Vec<(String, i32)> {
        let Some(g) = self.by_group.get(group_id) else {
            return Vec::new();
        };
        offsets::expired(&g.committed, base, retention_ms, now)
            .into_iter()
            .filter(|k| !g.pending.has_pending(k))
            .collect()
    }

    /// Whether every offset of the group is among `expired` and no
    /// transaction holds one.
    pub fn only_these(&self, group_id: &str, expired: &[(String, i32)]) -> bool {
        self.by_group
            .get(group_id)
            .is_none_or(|g| g.pending.is_empty() && g.committed.len() == expired.len())
    }

    /// Kafka's `OffsetMetadataManager.onTopicsDeleted`: per group, every
    /// partition of the deleted `topics` with a committed or pending
    /// offset, each of which gets a tombstone. kastle keeps no topic id
    /// with an offset, Kafka's "no id" case: a deleted name takes its
    /// offsets along.
    pub fn of_deleted_topics(&self, topics: &HashSet<&str>) -> Vec<(String, Vec<(String, i32)>)> {
        let mut out = Vec::new();
        for (group_id, g) in &self.by_group {
            let deleted = |(t, _): &&(String, i32)| topics.contains(t.as_str());
            let mut keys: Vec<(String, i32)> =
                g.committed.keys().filter(deleted).cloned().collect();
            if !g.pending.is_empty() {
                keys.extend(g.pending.partitions().iter().filter(deleted).cloned());
            }
            keys.sort();
            keys.dedup();
            if !keys.is_empty() {
                out.push((group_id.clone(), keys));
            }
        }
        out
    }

    /// Drops expired offsets whose tombstones were written.
    pub fn remove(&mut self, group_id: &str, keys: &[(String, i32)]) {
        if let Some(g) = self.by_group.get_mut(group_id) {
            for k in keys {
                g.remove(k);
            }
            if g.is_empty() {
                self.by_group.remove(group_id);
            }
        }
    }
}
