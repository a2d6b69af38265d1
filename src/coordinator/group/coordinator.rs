//! The GroupCoordinator: Kafka's classic rebalance protocol for every group
//! on this broker, the committed offsets, and their durability in
//! `__consumer_offsets`. This file is the facade the handlers call (Kafka's
//! `GroupCoordinatorService` with one shard): it takes the lock, hands the
//! request to the `GroupMetadataManager` (membership) and/or the
//! `OffsetMetadataManager` (offsets), and runs the timer and expiration
//! tasks.
//!
//! All group state lives behind one mutex. Every request runs its state
//! change synchronously under it (including the append of the records that
//! make the change durable, so records of one group reach the log in the
//! order the changes happened) and returns either an answer or a oneshot
//! receiver; JoinGroup and SyncGroup long-poll on those receivers outside
//! the lock. Answers that depend on a write carry a [`DurableWait`]: the
//! handler awaits the high watermark (i.e. the fsync) before responding.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::api::{
    code, Answer, CommitPartition, Committer, FetchedOffset, GroupDescription, GroupListing,
    JoinOutcome, JoinParams, SyncOutcome, SyncParams,
};
use super::classic_group::GroupState;
use super::consumer::heartbeat::{ConsumerGroupDescription, HeartbeatOutcome, HeartbeatParams};
use super::consumer::TopicResolver;
use super::group_metadata_manager::{Cx, GroupMetadataManager};
use super::loader::GroupLoader;
use super::offset_metadata_manager::{CommitResult, OffsetMetadataManager};
use super::record_serde;
use super::share::{ShareFail, ShareGroup, ShareHeartbeatOutcome, ShareHeartbeatParams};
use super::writer::{map_append_error, record, CoordRecord, CoordinatorWriter, DurableWait};
use crate::broker::topics::Topic;
use crate::config::BrokerConfig;
use crate::util::now_ms;

/// Broker settings the coordinator obeys.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i64,
    pub max_size: usize,
    pub offsets_retention_ms: i64,
    pub retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: usize,
    pub commit_timeout_ms: i64,
    /// KIP-848 consumer groups: `group.consumer.session.timeout.ms`,
    /// `group.consumer.heartbeat.interval.ms` (a group's own configs
    /// override both), `group.consumer.max.size`, `group.consumer.assignors`
    /// (the first is the default).
    pub consumer_session_timeout_ms: i32,
    pub consumer_heartbeat_interval_ms: i32,
    pub consumer_max_size: usize,
    pub consumer_assignors: Vec<String>,
    /// KIP-1071 streams groups: `group.streams.session.timeout.ms` (what
    /// members replayed from the log get before their first heartbeat).
    pub streams_session_timeout_ms: i32,
    /// `group.consumer.assignment.interval.ms` within its min/max bounds
    /// as configured at start: what classic members joining a consumer
    /// group use (a heartbeat reads the group's own and the dynamic value).
    pub consumer_assignment_interval_ms: i32,
    /// `group.consumer.migration.policy`.
    pub consumer_migration_policy: super::consumer::migration::MigrationPolicy,
}

impl GroupConfig {
    pub fn from_broker(c: &BrokerConfig) -> GroupConfig {
        // Each key's table bounds keep these casts exact.
        GroupConfig {
            min_session_timeout_ms: c.int("group.min.session.timeout.ms") as i32,
            max_session_timeout_ms: c.int("group.max.session.timeout.ms") as i32,
            initial_rebalance_delay_ms: c.int("group.initial.rebalance.delay.ms"),
            max_size: c.int("group.max.size").max(1) as usize,
            offsets_retention_ms: c.int("offsets.retention.minutes").saturating_mul(60_000),
            retention_check_interval_ms: c.int("offsets.retention.check.interval.ms").max(1),
            offset_metadata_max_bytes: c.int("offset.metadata.max.bytes").max(0) as usize,
            commit_timeout_ms: c.int("offsets.commit.timeout.ms").max(1),
            consumer_session_timeout_ms: c.int("group.consumer.session.timeout.ms") as i32,
            consumer_heartbeat_interval_ms: c.int("group.consumer.heartbeat.interval.ms") as i32,
            consumer_max_size: c.int("group.consumer.max.size").max(1) as usize,
            streams_session_timeout_ms: c.int("group.streams.session.timeout.ms") as i32,
            consumer_assignors: c
                .string("group.consumer.assignors")
                .split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect(),
            consumer_assignment_interval_ms: (c.int("group.consumer.assignment.interval.ms")
                as i32)
                .clamp(
                    c.int("group.consumer.min.assignment.interval.ms") as i32,
                    (c.int("group.consumer.max.assignment.interval.ms") as i32)
                        .max(c.int("group.consumer.min.assignment.interval.ms") as i32),
                ),
            consumer_migration_policy: super::consumer::migration::MigrationPolicy::parse(
                c.string("group.consumer.migration.policy"),
            ),
        }
    }
}

/// The state one lock guards (Kafka's `GroupCoordinatorShard`).
#[derive(Default)]
pub struct GroupCoordinatorShard {
    pub groups: GroupMetadataManager,
    pub offsets: OffsetMetadataManager,
    /// Cluster mode: the `__consumer_offsets` partitions this broker
    /// leads, loading or loaded (see `leadership`); `None` on a standalone
    /// broker, which coordinates every group.
    pub leadership: Option<BTreeMap<i32, PartitionLoad>>,
}

/// One led `__consumer_offsets` partition (Kafka's coordinator context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLoad {
    /// The leader epoch the election was at.
    pub epoch: i32,
    /// False while the partition's groups are loading.
    pub loaded: bool,
}

pub struct GroupCoordinator {
    pub(super) shard: Mutex<GroupCoordinatorShard>,
    pub config: GroupConfig,
    pub(super) writer: CoordinatorWriter,
    pub(super) timer_wake: Notify,
    pub(super) stopping: watch::Sender<bool>,
}

impl GroupCoordinator {
    /// Replays `__consumer_offsets` into memory. Runs once at start-up,
    /// before any client is served.
    pub fn load(config: GroupConfig, offsets_topic: Arc<Topic>) -> anyhow::Result<Arc<Self>> {
        let started = std::time::Instant::now();
        let loaded = GroupLoader::load(&offsets_topic)?;
        let records = loaded.records;
        let (groups, offsets, open_txns) = loaded.finish(
            now_ms(),
            config.consumer_session_timeout_ms,
            config.streams_session_timeout_ms,
        );
        tracing::info!(
            groups = groups.groups.len(),
            groups_with_open_txn_offsets = open_txns,
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded consumer groups from __consumer_offsets"
        );
        Ok(Arc::new(GroupCoordinator {
            shard: Mutex::new(GroupCoordinatorShard {
                groups,
                offsets,
                leadership: None,
            }),
            config,
            writer: CoordinatorWriter::new(offsets_topic),
            timer_wake: Notify::new(),
            stopping: watch::channel(false).0,
        }))
    }

    /// Starts the timer task and the offset-expiration task. Must run
    /// inside the tokio runtime.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(self.clone().run_timers());
        tokio::spawn(self.clone().run_expiration());
    }

    /// Stops the timers; pending long polls are answered by their handlers
    /// (NOT_COORDINATOR) once the broker is stopping.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
        self.timer_wake.notify_one();
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, GroupCoordinatorShard> {
        self.shard.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cx(&self) -> Cx<'_> {
        Cx {
            config: &self.config,
            writer: &self.writer,
        }
    }

    pub fn num_offsets_partitions(&self) -> i32 {
        self.writer.num_partitions()
    }

    pub fn partition_for(&self, group_id: &str) -> i32 {
        self.writer.partition_for(group_id)
    }

    /// Whether this broker coordinates `group_id` now (Kafka's runtime:
    /// NOT_COORDINATOR for a partition it does not lead,
    /// COORDINATOR_LOAD_IN_PROGRESS while it loads). A standalone broker
    /// coordinates every group once its `__consumer_offsets` exists.
    pub(super) fn check_coordinator(
        &self,
        shard: &GroupCoordinatorShard,
        group_id: &str,
    ) -> Result<(), i16> {
        let Some(led) = &shard.leadership else {
            // Standalone: every group, once `__consumer_offsets` exists
            // (Kafka's coordinator runtime has no shard for a partition of
            // a topic not created yet: NOT_COORDINATOR).
            return match self.writer.has_topic() {
                true => Ok(()),
                false => Err(code(ResponseError::NotCoordinator)),
            };
        };
        match led.get(&self.partition_for(group_id)) {
            None => Err(code(ResponseError::NotCoordinator)),
            Some(l) if !l.loaded => Err(code(ResponseError::CoordinatorLoadInProgress)),
            Some(_) => Ok(()),
        }
    }

    // -----------------------------------------------------------------
    // membership (GroupMetadataManager)
    // -----------------------------------------------------------------

    pub fn join_group(&self, p: JoinParams, topics: &dyn TopicResolver) -> Answer<JoinOutcome> {
        let answer = {
            let mut shard = self.lock();
            if let Err(e) = self.check_coordinator(&shard, &p.group_id) {
                return Answer::Now(JoinOutcome::error_code(e, &p.member_id));
            }
            let GroupCoordinatorShard {
                groups, offsets, ..
            } = &mut *shard;
            groups.join_group(&self.cx(), offsets, p, topics)
        };
        self.timer_wake.notify_one();
        answer
    }

    pub fn sync_group(&self, p: SyncParams, topics: &dyn TopicResolver) -> Answer<SyncOutcome> {
        let answer = {
            let mut shard = self.lock();
            if let Err(e) = self.check_coordinator(&shard, p.group_id) {
                return Answer::Now(SyncOutcome::error_code(e));
            }
            shard.groups.sync_group(&self.cx(), p, topics)
        };
        self.timer_wake.notify_one();
        answer
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> i16 {
        let mut shard = self.lock();
        match self.check_coordinator(&shard, group_id) {
            // Kafka answers a heartbeat blindly while its group loads.
            Err(e) if e == code(ResponseError::CoordinatorLoadInProgress) => 0,
            Err(e) => e,
            Ok(()) => shard
                .groups
                .heartbeat(group_id, generation_id, member_id, group_instance_id),
        }
    }

    /// LeaveGroup: (top-level error, per-member (member id, instance id, error)).
    pub fn leave_group(
        &self,
        group_id: &str,
        leaving: Vec<(String, Option<String>)>,
    ) -> (i16, Vec<(String, Option<String>, i16)>) {
        let out = {
            let mut shard = self.lock();
            if let Err(e) = self.check_coordinator(&shard, group_id) {
                return (e, Vec::new());
            }
            shard.groups.leave_group(&self.cx(), group_id, leaving)
        };
        self.timer_wake.notify_one();
        out
    }

    pub fn list_groups(&self) -> Vec<GroupListing> {
        self.lock().groups.list_groups()
    }

    /// DescribeGroups for one group: Err(code) when this broker does not
    /// coordinate it (now); Ok(Err(message)) when there is no such classic
    /// group.
    pub fn describe_group(&self, group_id: &str) -> Result<Result<GroupDescription, String>, i16> {
        let shard = self.lock();
        self.check_coordinator(&shard, group_id)?;
        Ok(shard.groups.describe_group(group_id))
    }

    // -----------------------------------------------------------------
    // KIP-848 consumer groups
    // -----------------------------------------------------------------

    /// ConsumerGroupHeartbeat; the outcome carries the write to await.
    pub fn consumer_group_heartbeat(
        &self,
        p: HeartbeatParams,
        topics: &dyn TopicResolver,
    ) -> HeartbeatOutcome {
        // Kafka checks the request before it looks for the group's shard.
        if let Err(f) = super::consumer::heartbeat::validate(&p, &self.config.consumer_assignors) {
            return HeartbeatOutcome::error(f);
        }
        let out = {
            let mut shard = self.lock();
            if let Err(e) = self.check_coordinator(&shard, &p.group_id) {
                return HeartbeatOutcome::error((e, None));
            }
            shard.groups.consumer_group_heartbeat(&self.cx(), p, topics)
        };
        self.timer_wake.notify_one();
        out
    }

    /// ConsumerGroupDescribe of one group: Err((code, message)).
    pub fn consumer_group_describe(
        &self,
        group_id: &str,
    ) -> Result<ConsumerGroupDescription, (i16, Option<String>)> {
        let shard = self.lock();
        self.check_coordinator(&shard, group_id)
            .map_err(|e| (e, None))?;
        let default = self
            .config
            .consumer_assignors
            .first()
            .map(String::as_str)
            .unwrap_or("uniform");
        shard.groups.consumer_group_describe(group_id, default)
    }

    // -----------------------------------------------------------------
    // KIP-932 share groups
    // -----------------------------------------------------------------

    /// ShareGroupHeartbeat.
    pub fn share_group_heartbeat(
        &self,
        p: ShareHeartbeatParams,
        topics: &dyn TopicResolver,
    ) -> ShareHeartbeatOutcome {
        if let Err(f) = super::share::validate(&p) {
            return ShareHeartbeatOutcome::error(f);
        }
        let mut shard = self.lock();
        if let Err(e) = self.check_coordinator(&shard, &p.group_id) {
            return ShareHeartbeatOutcome::error((e, None));
        }
        let gmm = &mut shard.groups;
        let other = gmm.groups.contains_key(&p.group_id)
            || gmm.consumer_groups.contains_key(&p.group_id)
            || gmm.streams_groups.contains_key(&p.group_id);
        gmm.share_groups.heartbeat(p, other, topics)
    }

    /// ShareGroupDescribe of one group: Err((code, message)).
    pub fn share_group_describe(&self, group_id: &str) -> Result<ShareGroup, ShareFail> {
        self.share_group(group_id, false)
    }

    /// AlterShareGroupOffsets' group: created empty when no group has the
    /// id (Kafka 4.4), GROUP_ID_NOT_FOUND for a group of another type.
    pub fn share_group_for_offsets_alter(&self, group_id: &str) -> Result<ShareGroup, ShareFail> {
        self.share_group(group_id, true)
    }

    /// AlterShareGroupOffsets initialized share partitions (topic id, name,
    /// partition) of `group` (its members may be assigned them).
    pub fn share_partitions_initialized(&self, group: &str, partitions: &[(Uuid, String, i32)]) {
        self.lock()
            .groups
            .share_groups
            .mark_initialized(group, partitions);
    }

    /// DeleteShareGroupOffsets deleted a topic's share state of `group`.
    pub fn share_topic_uninitialized(&self, group: &str, id: &Uuid) {
        self.lock().groups.share_groups.uninitialize(group, id);
    }

    /// A share group by id (`create`: made empty when no group has the id).
    fn share_group(&self, group_id: &str, create: bool) -> Result<ShareGroup, ShareFail> {
        let mut shard = self.lock();
        self.check_coordinator(&shard, group_id)
            .map_err(|e| (e, None))?;
        let gmm = &mut shard.groups;
        let other = gmm.groups.contains_key(group_id)
            || gmm.consumer_groups.contains_key(group_id)
            || gmm.streams_groups.contains_key(group_id);
        if create {
            gmm.share_groups.get_or_create(group_id, other, now_ms())
        } else {
            gmm.share_groups.describe(group_id, other, now_ms())
        }
    }

    /// OffsetFetch v9+'s member check: a consumer group's member must
    /// give its current epoch (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID).
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), i16> {
        let shard = self.lock();
        if let Some(g) = shard.groups.streams_groups.get(group_id) {
            return g.validate_offset_fetch(member_id, member_epoch);
        }
        match shard.groups.consumer_groups.get(group_id) {
            Some(g) => g
                .validate_offset_fetch(member_id, member_epoch)
                .map_err(|e| e.code()),
            None => Ok(()),
        }
    }

    // -----------------------------------------------------------------
    // offsets (OffsetMetadataManager)
    // -----------------------------------------------------------------

    /// OffsetCommit: Err(code) applies to every partition; Ok gives
    /// per-partition codes (same order as `parts`) and the write to await.
    pub fn commit_offsets(
        &self,
        committer: Committer,
        retention_time_ms: i64,
        api_version: i16,
        parts: &[CommitPartition],
    ) -> CommitResult {
        let group_id = committer.group_id;
        if group_id.is_empty() {
            return Err(code(ResponseError::InvalidGroupId));
        }
        let now = now_ms();
        let result = {
            let mut shard = self.lock();
            self.check_coordinator(&shard, group_id)?;
            shard
                .groups
                .validate_offset_commit(&committer, api_version, now)?;
            let expire = (retention_time_ms != -1).then(|| now.saturating_add(retention_time_ms));
            shard.offsets.commit(
                &self.writer,
                self.config.offset_metadata_max_bytes,
                group_id,
                parts,
                now,
                expire,
                None,
            )
        };
        self.timer_wake.notify_one();
        result
    }

    /// TxnOffsetCommit (Kafka's `commitTransactionalOffset`): validates as
    /// a transactional commit, writes the offsets as a transactional batch
    /// of `producer_id`/`producer_epoch` and keeps them pending until the
    /// transaction's marker ([`Self::complete_txn`]). Err(code) applies to
    /// every partition; Ok gives per-partition codes (same order as
    /// `parts`) and the write to await. The request's `api_version` picks
    /// the group errors (v6 knows GROUP_ID_NOT_FOUND and STALE_MEMBER_EPOCH).
    pub fn txn_commit_offsets(
        &self,
        committer: Committer,
        producer_id: i64,
        producer_epoch: i16,
        parts: &[CommitPartition],
        api_version: i16,
    ) -> CommitResult {
        let group_id = committer.group_id;
        if group_id.is_empty() {
            return Err(code(ResponseError::InvalidGroupId));
        }
        let now = now_ms();
        let mut shard = self.lock();
        self.check_coordinator(&shard, group_id)?;
        let GroupCoordinatorShard {
            groups, offsets, ..
        } = &mut *shard;
        let created = groups.get_or_create_simple_group(&committer, now, api_version)?;
        let result = groups
            .validate_txn_offset_commit(&committer, api_version)
            .and_then(|()| {
                offsets.commit(
                    &self.writer,
                    self.config.offset_metadata_max_bytes,
                    group_id,
                    parts,
                    now,
                    None,
                    Some((producer_id, producer_epoch)),
                )
            });
        if created && !offsets.has_group(group_id) {
            groups.forget_if_unused(group_id);
        }
        result
    }

    /// The transaction coordinator wrote (and made durable) a COMMIT or
    /// ABORT marker of `producer_id` on `__consumer_offsets` partition
    /// `offsets_partition`: see [`OffsetMetadataManager::complete_txn`].
    pub fn complete_txn(&self, offsets_partition: i32, producer_id: i64, commit: bool) {
        self.lock()
            .offsets
            .complete_txn(&self.writer, offsets_partition, producer_id, commit);
    }

    /// OffsetFetch for one group: see [`OffsetMetadataManager::fetch`];
    /// Err(code) when this broker does not coordinate it (now).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Result<Vec<(String, Vec<FetchedOffset>)>, i16> {
        let shard = self.lock();
        self.check_coordinator(&shard, group_id)?;
        Ok(shard.offsets.fetch(group_id, topics, require_stable))
    }

    // -----------------------------------------------------------------
    // both: DeleteGroups, OffsetDelete, expiration
    // -----------------------------------------------------------------

    /// DeleteGroups for one group: the error code, plus the write to await.
    pub fn delete_group(&self, group_id: &str) -> (i16, Option<DurableWait>) {
        let mut shard = self.lock();
        if let Err(e) = self.check_coordinator(&shard, group_id) {
            return (e, None);
        }
        let GroupCoordinatorShard {
            groups, offsets, ..
        } = &mut *shard;
        if let Some(g) = groups.share_groups.groups.get_mut(group_id) {
            // Members whose sessions ran out are gone first.
            g.expire_sessions(now_ms());
        }
        if let Err(e) = groups.check_deletable(group_id) {
            return (e, None);
        }
        // A share group keeps nothing in `__consumer_offsets` (its
        // membership is in memory; its share state the caller deletes).
        if groups.share_groups.groups.remove(group_id).is_some() {
            tracing::info!(group = %group_id, "share group deleted");
            return (0, None);
        }
        let consumer_tombstones = groups.consumer_groups.get(group_id).map(|g| g.tombstones());
        // A streams group's records are deleted with it (Kafka's
        // `createGroupTombstoneRecords`); its id has no classic record.
        let streams_tombstones = groups.streams_groups.get(group_id).map(|g| {
            super::streams::records::diff(group_id, Some(g), None)
                .iter()
                .map(|r| r.encode().map(|(k, _)| (k, None)))
                .collect::<Result<Vec<CoordRecord>, _>>()
        });
        let records = offsets
            .delete_all_records(group_id)
            .and_then(|mut records| match &consumer_tombstones {
                None if streams_tombstones.is_some() => {
                    if let Some(t) = streams_tombstones {
                        records.extend(t.map_err(|e| {
                            tracing::warn!(group = %group_id, error = %e, "a streams group record cannot be serialized");
                            ResponseError::UnknownServerError
                        })?);
                    }
                    Ok(records)
                }
                None => {
                    records.push(record(record_serde::group_key(group_id), None)?);
                    Ok(records)
                }
                Some(tombs) => {
                    for t in tombs {
                        let (k, v) = t.encode().map_err(|e| {
                            tracing::warn!(group = %group_id, error = %e, "a consumer group record cannot be serialized");
                            ResponseError::UnknownServerError
                        })?;
                        records.push((k, v));
                    }
                    Ok(records)
                }
            });
        match records.and_then(|records| self.writer.append(group_id, &records)) {
            Ok(wait) => {
                groups.remove_group(group_id, now_ms());
                offsets.remove_group(group_id);
                tracing::info!(group = %group_id, "group deleted");
                (0, Some(wait))
            }
            Err(e) => (map_append_error(e, false), None),
        }
    }

    /// OffsetDelete: Err(top-level code) or per-topic per-partition codes.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<(Vec<Vec<i16>>, Option<DurableWait>), i16> {
        let mut shard = self.lock();
        self.check_coordinator(&shard, group_id)?;
        let GroupCoordinatorShard {
            groups, offsets, ..
        } = &mut *shard;
        let subscribed = groups.check_offset_delete(group_id)?;
        offsets.delete(&self.writer, group_id, topics, |t| subscribed(t))
    }

    /// Kafka's `onTopicsDeleted`: the committed and pending offsets of
    /// deleted topics get tombstones in every group this coordinator holds,
    /// so a fetch of all offsets no longer lists them and a topic created
    /// again under the name starts with none.
    pub fn on_topics_deleted(&self, names: &[String]) {
        let deleted: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut shard = self.lock();
        let offsets = &mut shard.offsets;
        for (group_id, keys) in offsets.of_deleted_topics(&deleted) {
            let records: Result<Vec<CoordRecord>, _> = keys
                .iter()
                .map(|(t, p)| record(record_serde::offset_key(&group_id, t, *p), None))
                .collect();
            match records.and_then(|records| self.writer.append(&group_id, &records)) {
                Ok(_) => {
                    offsets.remove(&group_id, &keys);
                    tracing::info!(group = %group_id, removed = keys.len(), "removed the offsets of deleted topics");
                }
                Err(e) => {
                    tracing::warn!(group = %group_id, error = ?e, "writing the deleted topics' offset tombstones failed")
                }
            }
        }
    }

    /// Kafka's cleanupGroupMetadata: drop expired offsets (tombstones),
    /// then Empty groups left with no offsets.
    pub fn expire_offsets(&self, now: i64) {
        let mut shard = self.lock();
        let GroupCoordinatorShard {
            groups, offsets, ..
        } = &mut *shard;
        let retention = self.config.offsets_retention_ms;
        let mut dead = Vec::new();
        for g in groups.groups.values_mut() {
            let expired = offsets.expired(&g.group_id, &g.expiration_base(), retention, now);
            let empty_after = g.is(GroupState::Empty)
                && g.pending_members.is_empty()
                && offsets.only_these(&g.group_id, &expired);
            let records: Result<Vec<CoordRecord>, _> = expired
                .iter()
                .map(|(t, p)| record(record_serde::offset_key(&g.group_id, t, *p), None))
                .chain(empty_after.then(|| record(record_serde::group_key(&g.group_id), None)))
                .collect();
            if records.as_ref().is_ok_and(|r| r.is_empty()) {
                continue;
            }
            match records.and_then(|records| self.writer.append(&g.group_id, &records)) {
                Ok(_) => {
                    offsets.remove(&g.group_id, &expired);
                    if !expired.is_empty() {
                        tracing::info!(group = %g.group_id, removed = expired.len(), "expired committed offsets");
                    }
                    if empty_after {
                        dead.push(g.group_id.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %g.group_id, error = ?e, "writing offset expiration failed")
                }
            }
        }
        for id in dead {
            groups.remove_group(&id, now);
            offsets.remove_group(&id);
        }
        groups.expire_consumer_groups(&self.writer, offsets, retention, now);
    }

    // -----------------------------------------------------------------
    // background tasks
    // -----------------------------------------------------------------

    async fn run_timers(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        loop {
            if *stopping.borrow() {
                return;
            }
            let next = {
                let mut shard = self.lock();
                let GroupCoordinatorShard {
                    groups, offsets, ..
                } = &mut *shard;
                groups.fire_expired_timers(&self.cx(), offsets)
            };
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.timer_wake.notified() => {}
                _ = stopping.changed() => {}
            }
        }
    }

    async fn run_expiration(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        let period = Duration::from_millis(self.config.retention_check_interval_ms as u64);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stopping.changed() => return,
            }
            self.expire_offsets(now_ms());
        }
    }
}

pub use super::standalone::offsets_topic_spec;

#[cfg(test)]
mod txn_tests {
    use super::*;
    use crate::broker::topics::TopicManager;
    use crate::coordinator::group::api::code;
    use crate::coordinator::group::classic_group::{ClassicGroup, GroupState};
    use crate::coordinator::group::member::ClassicGroupMember;
    use bytes::Bytes;

    const PID: i64 = 1000;
    const UNSTABLE_OFFSET_COMMIT: i16 = 88;

    fn open(dir: &std::path::Path) -> (TopicManager, Arc<GroupCoordinator>) {
        let (config, _) = BrokerConfig::from_entries(vec![
            ("log.dirs".into(), dir.display().to_string()),
            ("offsets.topic.num.partitions".into(), "3".into()),
            ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
        ])
        .unwrap();
        let topics = TopicManager::load(Arc::new(config.clone()), None).unwrap();
        let (partitions, configs) = offsets_topic_spec(&config);
        let topic = match topics.get(record_serde::OFFSETS_TOPIC) {
            Some(t) => t,
            None => topics
                .create(record_serde::OFFSETS_TOPIC, partitions, 1, configs)
                .unwrap(),
        };
        let coord = GroupCoordinator::load(GroupConfig::from_broker(&config), topic).unwrap();
        (topics, coord)
    }

    fn committer<'a>(
        group_id: &'a str,
        generation_id: i32,
        member_id: &'a str,
        group_instance_id: Option<&'a str>,
    ) -> Committer<'a> {
        Committer {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
        }
    }

    /// A commit without a member or generation (a simple consumer, v0-2).
    fn simple(group_id: &str) -> Committer<'_> {
        committer(group_id, -1, "", None)
    }

    fn part(t: &str, p: i32, offset: i64) -> CommitPartition {
        CommitPartition {
            topic: t.into(),
            partition: p,
            offset,
            leader_epoch: -1,
            metadata: Some("m".into()),
        }
    }

    /// (offset, error) of one partition, as OffsetFetch reports it.
    fn fetch(c: &GroupCoordinator, g: &str, t: &str, p: i32, stable: bool) -> (i64, i16) {
        let out = c
            .fetch_offsets(g, Some(vec![(t.to_string(), vec![p])]), stable)
            .unwrap();
        let f = &out[0].1[0];
        (f.offset, f.error)
    }

    fn commit(c: &GroupCoordinator, g: &str, parts: &[CommitPartition]) {
        let (codes, _) = c.commit_offsets(simple(g), -1, 9, parts).unwrap();
        assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    }

    fn txn_commit(
        c: &GroupCoordinator,
        g: &str,
        pid: i64,
        parts: &[CommitPartition],
    ) -> Result<Vec<i16>, i16> {
        c.txn_commit_offsets(simple(g), pid, 0, parts, 5)
            .map(|(codes, _)| codes)
    }

    /// Writes the marker as the transaction coordinator does, then tells
    /// the group coordinator.
    fn end_txn(c: &GroupCoordinator, g: &str, pid: i64, commit: bool) {
        let p = c.partition_for(g);
        c.writer
            .partition(p)
            .unwrap()
            .append_txn_marker(pid, 0, commit, 0, 0)
            .unwrap();
        c.complete_txn(p, pid, commit);
    }

    #[test]
    fn pending_until_commit_marker() {
        let dir = tempfile::tempdir().unwrap();
        let (_t, c) = open(dir.path());
        commit(&c, "g", &[part("t", 0, 5)]);
        assert_eq!(
            txn_commit(&c, "g", PID, &[part("t", 0, 10), part("t", 1, 20)]),
            Ok(vec![0, 0])
        );
        // Invisible, and unstable for require_stable readers.
        assert_eq!(fetch(&c, "g", "t", 0, false), (5, 0));
        assert_eq!(fetch(&c, "g", "t", 0, true), (-1, UNSTABLE_OFFSET_COMMIT));
        assert_eq!(fetch(&c, "g", "t", 1, true), (-1, UNSTABLE_OFFSET_COMMIT));
        assert_eq!(fetch(&c, "g", "t", 2, true), (-1, 0));
        // Fetch-all lists committed partitions only, flagged when unstable.
        let all = c.fetch_offsets("g", None, true).unwrap();
        assert_eq!(all[0].1.len(), 1);
        assert_eq!(all[0].1[0].error, UNSTABLE_OFFSET_COMMIT);
        // A marker on another partition or of another producer is no-op.
        c.complete_txn((c.partition_for("g") + 1) % 3, PID, true);
        c.complete_txn(c.partition_for("g"), PID + 1, true);
        assert_eq!(fetch(&c, "g", "t", 0, false), (5, 0));
        end_txn(&c, "g", PID, true);
        assert_eq!(fetch(&c, "g", "t", 0, true), (10, 0));
        assert_eq!(fetch(&c, "g", "t", 1, true), (20, 0));
    }

    #[test]
    fn abort_discards_and_unknown_group_is_simple() {
        let dir = tempfile::tempdir().unwrap();
        let (_t, c) = open(dir.path());
        // No such group, generation -1: a simple group holds the pending offsets.
        assert_eq!(
            txn_commit(&c, "fresh", PID, &[part("t", 0, 10)]),
            Ok(vec![0])
        );
        end_txn(&c, "fresh", PID, false);
        assert_eq!(fetch(&c, "fresh", "t", 0, true), (-1, 0));
        // No such group with a generation: ILLEGAL_GENERATION, from v6
        // GROUP_ID_NOT_FOUND.
        for (v, want) in [
            (5, ResponseError::IllegalGeneration),
            (6, ResponseError::GroupIdNotFound),
        ] {
            let nope = committer("nope", 3, "m", None);
            let got = c.txn_commit_offsets(nope, PID, 0, &[part("t", 0, 1)], v);
            assert_eq!(got.err(), Some(code(want)), "v{v}");
        }
        assert!(c.describe_group("nope").unwrap().is_err());
        assert_eq!(
            c.txn_commit_offsets(simple(""), PID, 0, &[part("t", 0, 1)], 5)
                .err(),
            Some(code(ResponseError::InvalidGroupId))
        );
        // Oversized metadata is refused per partition.
        let mut big = part("t", 1, 1);
        big.metadata = Some("x".repeat(5000));
        assert_eq!(
            txn_commit(&c, "fresh", PID + 1, &[big, part("t", 2, 2)]),
            Ok(vec![code(ResponseError::OffsetMetadataTooLarge), 0])
        );
    }

    #[test]
    fn later_regular_commit_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (_t, c) = open(dir.path());
        assert_eq!(
            txn_commit(&c, "g", PID, &[part("t", 0, 10), part("t", 1, 11)]),
            Ok(vec![0, 0])
        );
        // A regular commit after the transactional one, same partition.
        commit(&c, "g", &[part("t", 0, 50)]);
        end_txn(&c, "g", PID, true);
        assert_eq!(fetch(&c, "g", "t", 0, true), (50, 0));
        assert_eq!(fetch(&c, "g", "t", 1, true), (11, 0));
        // Replaying the log gives the same answer.
        drop(c);
        drop(_t);
        let (_t2, c2) = open(dir.path());
        assert_eq!(fetch(&c2, "g", "t", 0, true), (50, 0));
        assert_eq!(fetch(&c2, "g", "t", 1, true), (11, 0));
    }

    #[test]
    fn load_replays_markers_and_keeps_open_transactions_pending() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_t, c) = open(dir.path());
            commit(&c, "g", &[part("t", 0, 1)]);
            // committed, aborted and still open transactions of three producers.
            assert_eq!(txn_commit(&c, "g", PID, &[part("t", 0, 10)]), Ok(vec![0]));
            assert_eq!(
                txn_commit(&c, "g", PID + 1, &[part("t", 1, 20)]),
                Ok(vec![0])
            );
            assert_eq!(
                txn_commit(&c, "g", PID + 2, &[part("t", 2, 30)]),
                Ok(vec![0])
            );
            end_txn(&c, "g", PID, true);
            end_txn(&c, "g", PID + 1, false);
            c.begin_shutdown();
        }
        let (_t, c) = open(dir.path());
        assert_eq!(fetch(&c, "g", "t", 0, true), (10, 0));
        assert_eq!(fetch(&c, "g", "t", 1, true), (-1, 0));
        assert_eq!(fetch(&c, "g", "t", 2, false), (-1, 0));
        assert_eq!(fetch(&c, "g", "t", 2, true), (-1, UNSTABLE_OFFSET_COMMIT));
        // The marker written after the restart settles it.
        end_txn(&c, "g", PID + 2, true);
        assert_eq!(fetch(&c, "g", "t", 2, true), (30, 0));
    }

    #[test]
    fn member_checks_follow_transactional_rules() {
        let dir = tempfile::tempdir().unwrap();
        let (_t, c) = open(dir.path());
        {
            let mut st = c.lock();
            let mut g = ClassicGroup::new("g".into(), 0);
            g.generation_id = 4;
            g.protocol_type = Some("consumer".into());
            g.members.insert(
                "m1".into(),
                ClassicGroupMember {
                    member_id: "m1".into(),
                    group_instance_id: Some("i1".into()),
                    client_id: "c".into(),
                    client_host: "h".into(),
                    rebalance_timeout_ms: 1000,
                    session_timeout_ms: 1000,
                    protocol_type: "consumer".into(),
                    protocols: Vec::new(),
                    assignment: Bytes::new(),
                    join_waiter: None,
                    sync_waiter: None,
                    heartbeat_timer: None,
                },
            );
            g.static_members.insert("i1".into(), "m1".into());
            g.state = GroupState::CompletingRebalance;
            st.groups.groups.insert("g".into(), g);
        }
        let p = [part("t", 0, 1)];
        let txn = |pid: i64, gen: i32, member: &str, inst: Option<&str>| {
            c.txn_commit_offsets(committer("g", gen, member, inst), pid, 0, &p, 5)
                .map(|(codes, _)| codes)
        };
        // v0-2 (no member, generation -1): accepted on a non-empty group,
        // and CompletingRebalance does not matter for transactions.
        assert_eq!(txn(PID, -1, "", None), Ok(vec![0]));
        assert_eq!(
            txn(PID, 3, "m1", Some("i1")),
            Err(code(ResponseError::IllegalGeneration))
        );
        assert_eq!(
            txn(PID, 4, "zz", None),
            Err(code(ResponseError::UnknownMemberId))
        );
        assert_eq!(
            txn(PID, 4, "zz", Some("i1")),
            Err(code(ResponseError::FencedInstanceId))
        );
        assert_eq!(
            txn(PID, 4, "m1", Some("i9")),
            Err(code(ResponseError::UnknownMemberId))
        );
        assert_eq!(txn(PID + 1, 4, "m1", Some("i1")), Ok(vec![0]));
    }

    #[test]
    fn tombstones_drop_pending_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (_t, c) = open(dir.path());
        assert_eq!(txn_commit(&c, "g", PID, &[part("t", 0, 10)]), Ok(vec![0]));
        // OffsetDelete of a partition with only a pending offset writes a
        // tombstone and drops it: the commit marker then has nothing to apply.
        let (codes, wait) = c.delete_offsets("g", &[("t".into(), vec![0])]).unwrap();
        assert_eq!(codes, vec![vec![0]]);
        assert!(wait.is_some());
        assert_eq!(fetch(&c, "g", "t", 0, true), (-1, 0));
        end_txn(&c, "g", PID, true);
        assert_eq!(fetch(&c, "g", "t", 0, true), (-1, 0));
    }

    /// A producer commits offsets in several transactions (and several
    /// times in one): each is a new transactional batch with base sequence
    /// -1, which the partition must accept (Kafka skips sequence and
    /// duplicate checks for coordinator-written batches). Ignored until
    /// `ProducerStateManager::check` does: today the second batch matches
    /// the first's (-1, -1) sequence range and is taken for a duplicate,
    /// and after an epoch bump seq -1 is OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[test]
    fn same_producer_commits_repeatedly() {
        let dir = tempfile::tempdir().unwrap();
        let (_t, c) = open(dir.path());
        assert_eq!(txn_commit(&c, "g", PID, &[part("t", 0, 10)]), Ok(vec![0]));
        assert_eq!(txn_commit(&c, "g", PID, &[part("t", 0, 11)]), Ok(vec![0]));
        end_txn(&c, "g", PID, true);
        assert_eq!(fetch(&c, "g", "t", 0, true), (11, 0));
        assert_eq!(txn_commit(&c, "g", PID, &[part("t", 0, 12)]), Ok(vec![0]));
        end_txn(&c, "g", PID, true);
        assert_eq!(fetch(&c, "g", "t", 0, true), (12, 0));
        // A bumped epoch (fenced/re-initialized producer) too.
        assert_eq!(
            c.txn_commit_offsets(simple("g"), PID, 1, &[part("t", 0, 13)], 5)
                .map(|r| r.0),
            Ok(vec![0])
        );
    }
}
