//! Rebuilds the group coordinator's state from `__consumer_offsets` at
//! start-up, one record at a time (Kafka's `GroupCoordinatorShard.replay`):
//! OffsetCommit records (pending while their batch is transactional, until
//! the producer's marker), GroupMetadata records, the KIP-848 consumer
//! group records (replayed into their `ConsumerGroup` as they come), the
//! KIP-1071 streams group records (into their `StreamsGroup`), and
//! tombstones of all.

use std::collections::HashMap;

use super::classic_group::ClassicGroup;
use super::consumer::group::ConsumerGroup;
use super::consumer::member::MemberState;
use super::consumer::records::ConsumerRecord;
use super::group_metadata_manager::GroupMetadataManager;
use super::offset_metadata_manager::OffsetMetadataManager;
use super::offsets::GroupOffsets;
use super::record_serde::{self, CoordinatorKey, GroupValue};
use super::streams::records::StreamsRecord;
use super::streams::{MemberState as StreamsMemberState, StreamsGroup};
use super::timers::Timer;
use crate::broker::partition::Partition;
use crate::broker::topics::Topic;
use crate::coordinator::loader::{self, LoadedBatch};
use crate::record::batch::BatchHeader;
use crate::record::compression::decompression_budget;
use crate::record::{records, Record};

/// What replaying the log has built so far.
#[derive(Default)]
pub struct GroupLoader {
    /// The latest GroupMetadata value per group (None: tombstone).
    groups: HashMap<String, Option<GroupValue>>,
    offsets: HashMap<String, GroupOffsets>,
    /// Consumer groups as replayed so far (a group tombstone removes one).
    consumer_groups: HashMap<String, ConsumerGroup>,
    /// Streams groups as replayed so far (a group tombstone removes one).
    streams_groups: HashMap<String, StreamsGroup>,
    pub records: u64,
}

impl GroupLoader {
    /// Replays every partition of `__consumer_offsets`.
    pub fn load(topic: &Topic) -> anyhow::Result<GroupLoader> {
        let mut l = GroupLoader::default();
        let num_partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        for p in &topic.partitions {
            l.replay_partition(p, num_partitions)?;
        }
        Ok(l)
    }

    /// Replays one partition (a cluster broker that became its leader).
    pub fn load_partition(p: &Partition, num_partitions: i32) -> anyhow::Result<GroupLoader> {
        let mut l = GroupLoader::default();
        l.replay_partition(p, num_partitions)?;
        Ok(l)
    }

    fn replay_partition(&mut self, p: &Partition, num_partitions: i32) -> anyhow::Result<()> {
        loader::replay(p, |b| self.replay_batch(b, p.index, num_partitions))
    }

    /// Replays raw log bytes of `__consumer_offsets` partition `partition`
    /// (batches as stored), as loading that partition would read them: the
    /// entry point of the `coordinator_log` fuzz target (`fuzz/`).
    #[doc(hidden)]
    pub fn replay_log(&mut self, log: &[u8], partition: i32, num_partitions: i32) {
        let budget = decompression_budget(1 << 20);
        let mut next = 0;
        loader::replay_chunk(
            log,
            budget,
            &mut next,
            "__consumer_offsets",
            partition,
            &mut |b| self.replay_batch(b, partition, num_partitions),
        );
    }

    /// One batch of the log: a marker settles pending offsets, a data
    /// batch's records are replayed one at a time.
    fn replay_batch(&mut self, b: LoadedBatch<'_>, partition: i32, num_partitions: i32) {
        match b {
            LoadedBatch::Marker {
                producer_id,
                commit,
            } => self.replay_marker(partition, num_partitions, producer_id, commit),
            LoadedBatch::Records { header, section } => {
                for r in records(section, header.records_count) {
                    match r {
                        Ok(r) => self.replay_record(header, &r),
                        Err(e) => {
                            tracing::warn!(partition, offset = header.base_offset, error = %e, "malformed record in __consumer_offsets");
                        }
                    }
                }
            }
        }
    }

    /// A transaction's COMMIT/ABORT marker on `partition` settles the
    /// pending offsets its producer wrote there.
    fn replay_marker(
        &mut self,
        partition: i32,
        num_partitions: i32,
        producer_id: i64,
        commit: bool,
    ) {
        for (gid, o) in self.offsets.iter_mut() {
            if o.pending.has_producer(producer_id)
                && record_serde::partition_for(gid, num_partitions) == partition
            {
                o.complete_txn(producer_id, commit);
            }
        }
    }

    /// One record of a data batch.
    fn replay_record(&mut self, h: &BatchHeader, r: &Record<'_>) {
        self.records += 1;
        let Some(key) = r.key else { return };
        match record_serde::decode_key(key) {
            Ok(CoordinatorKey::Offset {
                group,
                topic,
                partition,
            }) => {
                let k = (topic, partition);
                match r.value {
                    None => {
                        if let Some(o) = self.offsets.get_mut(&group) {
                            o.remove(&k);
                        }
                    }
                    Some(v) => match record_serde::decode_offset_value(v) {
                        Ok(v) => {
                            let o = self.offsets.entry(group).or_default();
                            let at = h.base_offset + i64::from(r.offset_delta);
                            // Kafka's loader: records of a transactional
                            // batch are pending until their marker.
                            if h.is_transactional() && h.producer_id >= 0 {
                                o.pending.add(h.producer_id, k, v, at);
                            } else {
                                o.commit(k, v, at);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(group = %group, error = %e, "skipping bad OffsetCommitValue")
                        }
                    },
                }
            }
            Ok(CoordinatorKey::Group { group }) => match r.value {
                // A group tombstone follows its offsets' tombstones.
                None => {
                    self.groups.insert(group, None);
                }
                Some(v) => match record_serde::decode_group_value(v) {
                    Ok(v) => {
                        self.groups.insert(group, Some(v));
                    }
                    Err(e) => {
                        tracing::warn!(group = %group, error = %e, "skipping bad GroupMetadataValue")
                    }
                },
            },
            Ok(CoordinatorKey::Consumer {
                kind,
                group,
                member,
            }) => match ConsumerRecord::decode(kind, group.clone(), member, r.value) {
                Ok(ConsumerRecord::GroupMetadata(g, None)) => {
                    self.consumer_groups.remove(&g);
                }
                // A tombstone of a group not (or no longer) there.
                Ok(_) if r.value.is_none() && !self.consumer_groups.contains_key(&group) => {}
                Ok(rec) => {
                    // A classic group's record for the same id was
                    // replaced by the consumer group (Kafka's conversion).
                    self.groups.remove(&group);
                    let g = self
                        .consumer_groups
                        .entry(group.clone())
                        .or_insert_with(|| ConsumerGroup::new(&group));
                    if matches!(rec, ConsumerRecord::PartitionMetadata(_)) && r.value.is_some() {
                        g.has_partition_metadata_record = true;
                    } else {
                        g.replay(&rec);
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "skipping bad consumer group record")
                }
            },
            Ok(CoordinatorKey::Streams {
                kind,
                group,
                member,
            }) => match StreamsRecord::decode(kind, group.clone(), member, r.value) {
                Ok(StreamsRecord::GroupMetadata(g, None)) => {
                    self.streams_groups.remove(&g);
                }
                // A tombstone of a group not (or no longer) there.
                Ok(_) if r.value.is_none() && !self.streams_groups.contains_key(&group) => {}
                Ok(rec) => {
                    self.groups.remove(&group);
                    self.streams_groups
                        .entry(group.clone())
                        .or_insert_with(|| StreamsGroup {
                            group_id: group.clone(),
                            validated_topology_epoch: -1,
                            stored_description_topology_epoch: -1,
                            failed_description_topology_epoch: -1,
                            ..StreamsGroup::default()
                        })
                        .replay(&rec);
                }
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "skipping bad streams group record")
                }
            },
            Ok(CoordinatorKey::Other(_)) => {}
            Err(e) => tracing::warn!(error = %e, "skipping bad __consumer_offsets key"),
        }
    }

    /// The loaded state: groups (every group with offsets has one) with
    /// their members' session timers running, and the offsets. Also how
    /// many groups have offsets of still-open transactions.
    pub fn finish(
        self,
        now: i64,
        session_timeout_ms: i32,
        streams_session_timeout_ms: i32,
    ) -> (GroupMetadataManager, OffsetMetadataManager, usize) {
        let mut gmm = GroupMetadataManager::default();
        let mut omm = OffsetMetadataManager::default();
        let open_txns = self.merge_into(
            &mut gmm,
            &mut omm,
            now,
            session_timeout_ms,
            streams_session_timeout_ms,
        );
        (gmm, omm, open_txns)
    }

    /// Adds the loaded groups and offsets to a coordinator's state (whose
    /// groups are on other partitions), starting the loaded members'
    /// session timers (a consumer group member's: `session_timeout_ms`, a
    /// streams group member's: `streams_session_timeout_ms`). Returns how
    /// many groups have offsets of still-open transactions.
    pub fn merge_into(
        self,
        gmm: &mut GroupMetadataManager,
        omm: &mut OffsetMetadataManager,
        now: i64,
        session_timeout_ms: i32,
        streams_session_timeout_ms: i32,
    ) -> usize {
        let mut loaded = Vec::new();
        let consumer_ids: Vec<String> = self.consumer_groups.keys().cloned().collect();
        for (id, g) in self.consumer_groups {
            gmm.groups.remove(&id);
            gmm.consumer_groups.insert(id, g);
        }
        for (id, mut g) in self.streams_groups {
            // Its configured topology is recomputed on first use; as in
            // Kafka's onLoaded, every member must heartbeat within its
            // session, one revoking tasks finish within its rebalance timeout.
            g.loaded = true;
            for m in g.members.values_mut() {
                m.session_deadline_ms = now + i64::from(streams_session_timeout_ms);
                m.rebalance_deadline_ms = (m.state == StreamsMemberState::UnrevokedTasks)
                    .then(|| now + i64::from(m.rebalance_timeout_ms.max(0)));
            }
            gmm.groups.remove(&id);
            gmm.consumer_groups.remove(&id);
            gmm.streams_groups.insert(id, g);
        }
        for (id, v) in self.groups {
            if gmm.consumer_groups.contains_key(&id) || gmm.streams_groups.contains_key(&id) {
                continue;
            }
            if let Some(v) = v {
                loaded.push(id.clone());
                gmm.groups
                    .insert(id.clone(), ClassicGroup::from_value(id, v, now));
            }
        }
        let mut open_txns = 0usize;
        for (id, o) in self.offsets {
            if o.is_empty() {
                continue;
            }
            // Still-open transactions stay pending: their coordinator
            // writes the marker later (or aborts them on timeout).
            open_txns += usize::from(!o.pending.is_empty());
            if !gmm.consumer_groups.contains_key(&id) && !gmm.streams_groups.contains_key(&id) {
                gmm.groups
                    .entry(id.clone())
                    .or_insert_with(|| ClassicGroup::new(id.clone(), now));
            }
            omm.insert_loaded(id, o);
        }
        // Loaded members must heartbeat within their session, as in Kafka.
        // So must consumer group members; one revoking partitions must
        // finish within its rebalance timeout (Kafka's onLoaded).
        for id in consumer_ids {
            let Some(g) = gmm.consumer_groups.get_mut(&id) else {
                continue;
            };
            for m in g.members.values() {
                // A classic member keeps its JoinGroup's session timeout.
                let session = i64::from(
                    m.classic
                        .as_ref()
                        .map_or(session_timeout_ms, |c| c.session_timeout_ms),
                );
                let t = g.timers.entry(m.member_id.clone()).or_default();
                gmm.timers.cancel(t.session.take());
                t.session = Some(gmm.timers.schedule(
                    session,
                    Timer::ConsumerSession {
                        group: id.clone(),
                        member: m.member_id.clone(),
                    },
                ));
                if m.state == MemberState::UnrevokedPartitions {
                    gmm.timers.cancel(t.rebalance.take());
                    t.rebalance = Some(gmm.timers.schedule(
                        i64::from(m.rebalance_timeout_ms),
                        Timer::ConsumerRebalance {
                            group: id.clone(),
                            member: m.member_id.clone(),
                            epoch: m.member_epoch,
                        },
                    ));
                }
            }
        }
        let GroupMetadataManager { groups, timers, .. } = gmm;
        for id in loaded {
            let Some(g) = groups.get_mut(&id) else {
                continue;
            };
            for m in g.members.values_mut() {
                m.heartbeat_timer = Some(timers.schedule(
                    i64::from(m.session_timeout_ms),
                    Timer::Heartbeat {
                        group: g.group_id.clone(),
                        member: m.member_id.clone(),
                    },
                ));
            }
        }
        open_txns
    }
}
