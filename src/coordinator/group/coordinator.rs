//! The GroupCoordinator: Kafka's classic rebalance protocol for every group
//! on this broker, the committed offsets, and their durability in
//! `__consumer_offsets`.
//!
//! All group state lives behind one mutex. Every request runs its state
//! change synchronously under it (including the append of the records that
//! make the change durable, so records of one group reach the log in the
//! order the changes happened) and returns either an answer or a oneshot
//! receiver; JoinGroup and SyncGroup long-poll on those receivers outside
//! the lock. Answers that depend on a write carry a [`DurableWait`]: the
//! handler awaits the high watermark (i.e. the fsync) before responding.
//!
//! Timers (session timeouts, the join phase's rebalance timeout and initial
//! delay, the pending-sync timeout) are entries in one ordered map keyed by
//! deadline, served by one task; an owner keeps its timer's key so a
//! heartbeat reschedules by removing and re-inserting.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::{oneshot, watch, Notify};
use tokio::time::Instant;

use super::group::{ClassicGroup, GroupState};
use super::member::ClassicGroupMember;
use super::offsets;
use super::persistence::{self, CoordinatorKey, OffsetValue};
use crate::broker::partition::Partition;
use crate::broker::topics::Topic;
use crate::config::BrokerConfig;
use crate::record::batch;
use crate::util::now_ms;

/// A timer's identity: its deadline plus a sequence number for uniqueness.
pub type TimerKey = (Instant, u64);

/// Largest metadata accepted per JoinGroup protocol entry; Kafka has no
/// explicit cap but could never store more in one GroupMetadata record.
pub const MAX_PROTOCOL_METADATA_BYTES: usize = 1024 * 1024;

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[derive(Debug, Clone)]
enum Timer {
    /// A member's (or MEMBER_ID_REQUIRED pending member's) session.
    Heartbeat { group: String, member: String },
    /// The join phase: rebalance timeout, or the initial delayed join.
    Join { group: String },
    /// Members that got their join response must sync in time.
    Sync { group: String, generation: i32 },
}

#[derive(Default)]
struct Timers {
    map: BTreeMap<TimerKey, Timer>,
    seq: u64,
}

impl Timers {
    fn schedule(&mut self, after_ms: i64, t: Timer) -> TimerKey {
        self.seq += 1;
        let key = (
            Instant::now() + Duration::from_millis(after_ms.max(0) as u64),
            self.seq,
        );
        self.map.insert(key, t);
        key
    }
    fn cancel(&mut self, key: Option<TimerKey>) {
        if let Some(k) = key {
            self.map.remove(&k);
        }
    }
}

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
}

impl GroupConfig {
    pub fn from_broker(c: &BrokerConfig) -> GroupConfig {
        let int = |k: &str, d: i64| -> i64 {
            c.value(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(d)
        };
        GroupConfig {
            min_session_timeout_ms: int("group.min.session.timeout.ms", 6000) as i32,
            max_session_timeout_ms: int("group.max.session.timeout.ms", 1_800_000) as i32,
            initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms", 3000),
            max_size: int("group.max.size", i64::from(i32::MAX)).max(1) as usize,
            offsets_retention_ms: int("offsets.retention.minutes", 10080).saturating_mul(60_000),
            retention_check_interval_ms: int("offsets.retention.check.interval.ms", 600_000).max(1),
            offset_metadata_max_bytes: int("offset.metadata.max.bytes", 4096).max(0) as usize,
            commit_timeout_ms: int("offsets.commit.timeout.ms", 5000).max(1),
        }
    }
}

/// A write the answer must not precede: the high watermark of `partition`
/// has to reach `end_offset` (durable mode: fsynced).
#[derive(Clone)]
pub struct DurableWait {
    partition: Arc<Partition>,
    end_offset: i64,
}

impl DurableWait {
    /// Ok, or the error code a group response carries (Kafka's mapping of
    /// append errors to coordinator errors).
    pub async fn wait(&self, timeout_ms: i64) -> Result<(), i16> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(1) as u64);
        self.partition
            .wait_for_high_watermark(self.end_offset, deadline)
            .await
            .map_err(|e| map_append_error(e, false))
    }
}

/// Kafka's mapping of a failed `__consumer_offsets` append to what the
/// group client sees.
pub fn map_append_error(e: ResponseError, commit: bool) -> i16 {
    use ResponseError as E;
    let mapped = match e {
        E::UnknownTopicOrPartition
        | E::NotEnoughReplicas
        | E::NotEnoughReplicasAfterAppend
        | E::RequestTimedOut => E::CoordinatorNotAvailable,
        E::NotLeaderOrFollower | E::KafkaStorageError => E::NotCoordinator,
        E::MessageTooLarge | E::RecordListTooLarge | E::InvalidFetchSize => {
            if commit {
                E::InvalidCommitOffsetSize
            } else {
                E::UnknownServerError
            }
        }
        other => other,
    };
    mapped.code()
}

#[derive(Debug, Clone)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Clone)]
pub struct JoinOutcome {
    pub error: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<JoinMember>,
    pub skip_assignment: bool,
    pub wait: Option<DurableWait>,
}

impl JoinOutcome {
    pub fn error(e: ResponseError, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error: code(e),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
            wait: None,
        }
    }
}

#[derive(Clone)]
pub struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
    pub wait: Option<DurableWait>,
}

impl SyncOutcome {
    pub fn error(e: ResponseError) -> SyncOutcome {
        SyncOutcome {
            error: code(e),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
            wait: None,
        }
    }
}

/// An answer now, or later (long poll).
pub enum Answer<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

pub struct JoinParams {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub client_id: String,
    pub client_host: String,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
}

pub struct CommitPartition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

pub struct FetchedOffset {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// UNSTABLE_OFFSET_COMMIT when `require_stable` was asked and an open
    /// transaction holds an offset for the partition.
    pub error: i16,
}

pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}

struct State {
    groups: HashMap<String, ClassicGroup>,
    timers: Timers,
}

pub struct GroupCoordinator {
    state: Mutex<State>,
    pub config: GroupConfig,
    offsets_topic: Arc<Topic>,
    timer_wake: Notify,
    stopping: watch::Sender<bool>,
}

/// Record to append: key, value (None = tombstone).
type CoordRecord = (Vec<u8>, Option<Vec<u8>>);

/// One group's offsets while `__consumer_offsets` is replayed.
#[derive(Default)]
struct LoadedOffsets {
    offsets: offsets::OffsetMap,
    positions: offsets::PositionMap,
    pending: offsets::PendingTxnOffsets,
}

impl GroupCoordinator {
    /// Replays `__consumer_offsets` into memory. Runs once at start-up,
    /// before any client is served.
    pub fn load(config: GroupConfig, offsets_topic: Arc<Topic>) -> anyhow::Result<Arc<Self>> {
        let started = std::time::Instant::now();
        let now = now_ms();
        let mut group_values: HashMap<String, Option<persistence::GroupValue>> = HashMap::new();
        let mut offsets_by_group: HashMap<String, LoadedOffsets> = HashMap::new();
        let mut records = 0u64;
        let num_partitions = offsets_topic.partitions.len() as i32;
        for p in &offsets_topic.partitions {
            let mut next = p.state().log_start_offset;
            loop {
                let read = p
                    .fetch(next, 8 * 1024 * 1024, true)
                    .map_err(|e| anyhow::anyhow!("reading {}-{}: {e}", p.topic, p.index))?;
                if read.plan.is_none() {
                    break;
                }
                let bytes = read
                    .read()
                    .map_err(|e| anyhow::anyhow!("reading {}-{}: {e}", p.topic, p.index))?;
                let before = next;
                for (at, h) in batch::iter_batches(&bytes) {
                    next = next.max(h.next_offset());
                    let whole = &bytes[at..at + h.total_size()];
                    if h.is_control() {
                        // A transaction's COMMIT/ABORT marker settles the
                        // pending offsets its producer wrote here.
                        let Ok(section) = batch::batch_records(whole, 1024 * 1024) else {
                            continue;
                        };
                        let commit = persistence::records(&section, h.records_count)
                            .next()
                            .and_then(|r| r.key.and_then(persistence::control_commit));
                        if let Some(commit) = commit {
                            for (gid, l) in offsets_by_group.iter_mut() {
                                if l.pending.has_producer(h.producer_id)
                                    && persistence::partition_for(gid, num_partitions) == p.index
                                {
                                    l.pending.complete(
                                        h.producer_id,
                                        commit,
                                        &mut l.offsets,
                                        &mut l.positions,
                                    );
                                }
                            }
                        }
                        continue;
                    }
                    // Kafka's coordinator loader: records of a transactional
                    // batch are pending until their marker.
                    let txn_producer =
                        (h.is_transactional() && h.producer_id >= 0).then_some(h.producer_id);
                    let section = match batch::batch_records(whole, 64 * 1024 * 1024) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(partition = p.index, offset = h.base_offset, error = %e, "skipping unreadable __consumer_offsets batch");
                            continue;
                        }
                    };
                    let mut it = persistence::records(&section, h.records_count);
                    for r in it.by_ref() {
                        records += 1;
                        let Some(key) = r.key else { continue };
                        match persistence::decode_key(key) {
                            Ok(CoordinatorKey::Offset {
                                group,
                                topic,
                                partition,
                            }) => match r.value {
                                None => {
                                    if let Some(l) = offsets_by_group.get_mut(&group) {
                                        let k = (topic, partition);
                                        l.offsets.remove(&k);
                                        l.positions.remove(&k);
                                        l.pending.remove_partition(&k);
                                    }
                                }
                                Some(v) => match persistence::decode_offset_value(v) {
                                    Ok(v) => {
                                        let l = offsets_by_group.entry(group).or_default();
                                        let k = (topic, partition);
                                        let at = h.base_offset + i64::from(r.offset_delta);
                                        match txn_producer {
                                            Some(pid) => l.pending.add(pid, k, v, at),
                                            None => {
                                                l.positions.insert(k.clone(), at);
                                                l.offsets.insert(k, v);
                                            }
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(group = %group, error = %e, "skipping bad OffsetCommitValue")
                                    }
                                },
                            },
                            Ok(CoordinatorKey::Group { group }) => match r.value {
                                None => {
                                    group_values.insert(group.clone(), None);
                                    // A group tombstone follows its offsets' tombstones.
                                }
                                Some(v) => match persistence::decode_group_value(v) {
                                    Ok(v) => {
                                        group_values.insert(group, Some(v));
                                    }
                                    Err(e) => {
                                        tracing::warn!(group = %group, error = %e, "skipping bad GroupMetadataValue")
                                    }
                                },
                            },
                            Ok(CoordinatorKey::Other(_)) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "skipping bad __consumer_offsets key")
                            }
                        }
                    }
                    if let Some(e) = it.error {
                        tracing::warn!(partition = p.index, offset = h.base_offset, error = %e, "malformed record in __consumer_offsets");
                    }
                }
                if next <= before {
                    break;
                }
            }
        }
        let mut state = State {
            groups: HashMap::new(),
            timers: Timers::default(),
        };
        for (id, v) in group_values {
            if let Some(v) = v {
                state
                    .groups
                    .insert(id.clone(), ClassicGroup::from_value(id, v, now));
            }
        }
        let mut open_txns = 0usize;
        for (id, l) in offsets_by_group {
            if l.offsets.is_empty() && l.pending.is_empty() {
                continue;
            }
            // Still-open transactions stay pending: their coordinator
            // writes the marker later (or aborts them on timeout).
            open_txns += usize::from(!l.pending.is_empty());
            let g = state
                .groups
                .entry(id.clone())
                .or_insert_with(|| ClassicGroup::new(id, now));
            g.offsets = l.offsets;
            g.offset_positions = l.positions;
            g.pending_txn = l.pending;
        }
        // Loaded members must heartbeat within their session, as in Kafka.
        let State { groups, timers } = &mut state;
        for g in groups.values_mut() {
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
        tracing::info!(
            groups = state.groups.len(),
            groups_with_open_txn_offsets = open_txns,
            records,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded consumer groups from __consumer_offsets"
        );
        let coord = Arc::new(GroupCoordinator {
            state: Mutex::new(state),
            config,
            offsets_topic,
            timer_wake: Notify::new(),
            stopping: watch::channel(false).0,
        });
        Ok(coord)
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

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn num_offsets_partitions(&self) -> i32 {
        self.offsets_topic.partitions.len() as i32
    }

    pub fn partition_for(&self, group_id: &str) -> i32 {
        persistence::partition_for(group_id, self.num_offsets_partitions())
    }

    // -----------------------------------------------------------------
    // writes
    // -----------------------------------------------------------------

    /// Appends `records` for `group_id` to its `__consumer_offsets`
    /// partition as one uncompressed batch. The caller holds the state
    /// lock, which orders the group's records.
    fn append(
        &self,
        group_id: &str,
        records: &[CoordRecord],
    ) -> Result<DurableWait, ResponseError> {
        self.append_batch(group_id, records, None).map(|(w, _)| w)
    }

    /// Like [`Self::append`]; `txn` = Some((producer id, epoch)) writes a
    /// transactional batch without sequence numbers, as Kafka's group
    /// coordinator writes TxnOffsetCommit records. Also returns the offset
    /// of the first record.
    fn append_batch(
        &self,
        group_id: &str,
        records: &[CoordRecord],
        txn: Option<(i64, i16)>,
    ) -> Result<(DurableWait, i64), ResponseError> {
        let partition = self
            .offsets_topic
            .partition(self.partition_for(group_id))
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        let out = partition.append_records(records, txn).inspect_err(|e| {
            tracing::warn!(group = %group_id, error = %e, "appending group records failed");
        })?;
        if out.duplicate {
            // The partition's producer state took the batch for a retry of
            // an earlier one and appended nothing: the records are not in
            // the log, so the write failed.
            tracing::warn!(group = %group_id, producer_id = ?txn.map(|t| t.0), "transactional offset commit taken for a duplicate batch; nothing was written");
            return Err(ResponseError::UnknownServerError);
        }
        Ok((
            DurableWait {
                partition: partition.clone(),
                end_offset: out.last_offset + 1,
            },
            out.base_offset,
        ))
    }

    fn store_group(&self, g: &mut ClassicGroup) -> Result<DurableWait, ResponseError> {
        let value = persistence::group_value(&g.to_value());
        let w = self.append(
            &g.group_id,
            &[(persistence::group_key(&g.group_id), Some(value))],
        )?;
        g.persisted = true;
        Ok(w)
    }

    // -----------------------------------------------------------------
    // JoinGroup
    // -----------------------------------------------------------------

    pub fn join_group(&self, p: JoinParams) -> Answer<JoinOutcome> {
        if p.group_id.is_empty() {
            return Answer::Now(JoinOutcome::error(
                ResponseError::InvalidGroupId,
                &p.member_id,
            ));
        }
        if p.session_timeout_ms < self.config.min_session_timeout_ms
            || p.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Answer::Now(JoinOutcome::error(
                ResponseError::InvalidSessionTimeout,
                &p.member_id,
            ));
        }
        if p.protocols
            .iter()
            .any(|(_, m)| m.len() > MAX_PROTOCOL_METADATA_BYTES)
        {
            return Answer::Now(JoinOutcome::error(
                ResponseError::InvalidRequest,
                &p.member_id,
            ));
        }
        let mut guard = self.lock();
        let State { groups, timers } = &mut *guard;
        let is_unknown = p.member_id.is_empty();
        let now = now_ms();
        if !groups.contains_key(&p.group_id) {
            if !is_unknown {
                return Answer::Now(JoinOutcome::error(
                    ResponseError::UnknownMemberId,
                    &p.member_id,
                ));
            }
            groups.insert(
                p.group_id.clone(),
                ClassicGroup::new(p.group_id.clone(), now),
            );
        }
        let Some(g) = groups.get_mut(&p.group_id) else {
            return Answer::Now(JoinOutcome::error(
                ResponseError::CoordinatorNotAvailable,
                &p.member_id,
            ));
        };
        let answer = if !g.accept_joining_member(&p.member_id, self.config.max_size) {
            Answer::Now(JoinOutcome::error(
                ResponseError::GroupMaxSizeReached,
                &p.member_id,
            ))
        } else if is_unknown {
            self.join_new_member(g, timers, p)
        } else {
            self.join_existing_member(g, timers, p)
        };
        // A group created for a join that failed holds nothing: drop it.
        let gid = g.group_id.clone();
        if g.holds_nothing() {
            groups.remove(&gid);
        }
        drop(guard);
        self.timer_wake.notify_one();
        answer
    }

    fn join_new_member(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
        p: JoinParams,
    ) -> Answer<JoinOutcome> {
        if g.is(GroupState::Dead) {
            return Answer::Now(JoinOutcome::error(
                ResponseError::CoordinatorNotAvailable,
                "",
            ));
        }
        if !g.supports_protocols(&p.protocol_type, &p.protocols) {
            return Answer::Now(JoinOutcome::error(
                ResponseError::InconsistentGroupProtocol,
                "",
            ));
        }
        let prefix = p.group_instance_id.as_deref().unwrap_or(&p.client_id);
        let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = p.group_instance_id.clone() {
            if g.static_members.contains_key(&instance) {
                return self.update_static_member(g, timers, instance, new_id, p);
            }
            return self.add_member(g, timers, new_id, p);
        }
        if p.require_known_member_id {
            // KIP-394: hand out the id; the member counts as pending until
            // it rejoins with it, within its session timeout.
            let key = timers.schedule(
                i64::from(p.session_timeout_ms),
                Timer::Heartbeat {
                    group: g.group_id.clone(),
                    member: new_id.clone(),
                },
            );
            g.pending_members.insert(new_id.clone(), key);
            return Answer::Now(JoinOutcome::error(ResponseError::MemberIdRequired, &new_id));
        }
        self.add_member(g, timers, new_id, p)
    }

    fn join_existing_member(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
        p: JoinParams,
    ) -> Answer<JoinOutcome> {
        let member_id = p.member_id.clone();
        if g.is(GroupState::Dead) {
            return Answer::Now(JoinOutcome::error(
                ResponseError::CoordinatorNotAvailable,
                &member_id,
            ));
        }
        if !g.supports_protocols(&p.protocol_type, &p.protocols) {
            return Answer::Now(JoinOutcome::error(
                ResponseError::InconsistentGroupProtocol,
                &member_id,
            ));
        }
        if let Some(key) = g.pending_members.remove(&member_id) {
            timers.cancel(Some(key));
            return self.add_member(g, timers, member_id, p);
        }
        if let Err(e) = g.validate_member(&member_id, p.group_instance_id.as_deref()) {
            return Answer::Now(JoinOutcome::error(e, &member_id));
        }
        let unchanged = g
            .members
            .get(&member_id)
            .is_some_and(|m| m.matches(&p.protocols));
        match g.state {
            GroupState::PreparingRebalance => self.update_member(g, timers, p),
            GroupState::CompletingRebalance if unchanged => {
                // A resent join: answer with the current generation.
                Answer::Now(self.current_join_outcome(g, &member_id, false))
            }
            GroupState::Stable if unchanged && !g.is_leader(&member_id) => {
                Answer::Now(self.current_join_outcome(g, &member_id, false))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(g, timers, p)
            }
            GroupState::Empty | GroupState::Dead => Answer::Now(JoinOutcome::error(
                ResponseError::UnknownMemberId,
                &member_id,
            )),
        }
    }

    fn current_join_outcome(&self, g: &ClassicGroup, member_id: &str, skip: bool) -> JoinOutcome {
        JoinOutcome {
            error: 0,
            generation_id: g.generation_id,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            leader: g.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if g.is_leader(member_id) {
                current_member_metadata(g)
            } else {
                Vec::new()
            },
            skip_assignment: skip,
            wait: None,
        }
    }

    fn add_member(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
        member_id: String,
        p: JoinParams,
    ) -> Answer<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if g.members.is_empty() {
            g.protocol_type = Some(p.protocol_type.clone());
        }
        if g.leader_id.is_none() {
            g.leader_id = Some(member_id.clone());
        }
        if let Some(i) = &p.group_instance_id {
            g.static_members.insert(i.clone(), member_id.clone());
        }
        let key = timers.schedule(
            i64::from(p.session_timeout_ms),
            Timer::Heartbeat {
                group: g.group_id.clone(),
                member: member_id.clone(),
            },
        );
        g.members.insert(
            member_id.clone(),
            ClassicGroupMember {
                member_id,
                group_instance_id: p.group_instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                rebalance_timeout_ms: p.rebalance_timeout_ms,
                session_timeout_ms: p.session_timeout_ms,
                protocol_type: p.protocol_type,
                protocols: p.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(tx),
                sync_waiter: None,
                heartbeat_timer: Some(key),
            },
        );
        g.new_member_added = true;
        self.maybe_prepare_rebalance_or_complete_join(g, timers);
        Answer::Later(rx)
    }

    fn update_member(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
        p: JoinParams,
    ) -> Answer<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = g.members.get_mut(&p.member_id) {
            m.protocols = p.protocols;
            m.rebalance_timeout_ms = p.rebalance_timeout_ms;
            m.session_timeout_ms = p.session_timeout_ms;
            m.client_id = p.client_id;
            m.client_host = p.client_host;
            if let Some(old) = m.join_waiter.replace(tx) {
                // A join superseded by a newer one from the same member.
                let _ = old.send(JoinOutcome::error(
                    ResponseError::RebalanceInProgress,
                    &p.member_id,
                ));
            }
        }
        self.maybe_prepare_rebalance_or_complete_join(g, timers);
        Answer::Later(rx)
    }

    /// Kafka's replaceStaticMember path: a static member rejoining with an
    /// unknown member id takes over its instance's membership (and
    /// assignment); the old member id is fenced.
    fn update_static_member(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
        instance: String,
        new_id: String,
        p: JoinParams,
    ) -> Answer<JoinOutcome> {
        let Some(old_id) = g.static_members.get(&instance).cloned() else {
            return Answer::Now(JoinOutcome::error(ResponseError::UnknownMemberId, ""));
        };
        let Some(mut m) = g.members.remove(&old_id) else {
            return Answer::Now(JoinOutcome::error(ResponseError::UnknownMemberId, ""));
        };
        timers.cancel(m.heartbeat_timer.take());
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinOutcome::error(ResponseError::FencedInstanceId, &old_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncOutcome::error(ResponseError::FencedInstanceId));
        }
        let old = (
            m.protocols.clone(),
            m.rebalance_timeout_ms,
            m.session_timeout_ms,
        );
        m.member_id = new_id.clone();
        m.protocols = p.protocols;
        m.rebalance_timeout_ms = p.rebalance_timeout_ms;
        m.session_timeout_ms = p.session_timeout_ms;
        m.client_id = p.client_id;
        m.client_host = p.client_host;
        m.heartbeat_timer = Some(timers.schedule(
            i64::from(m.session_timeout_ms),
            Timer::Heartbeat {
                group: g.group_id.clone(),
                member: new_id.clone(),
            },
        ));
        let (tx, rx) = oneshot::channel();
        m.join_waiter = Some(tx);
        g.members.insert(new_id.clone(), m);
        g.static_members.insert(instance.clone(), new_id.clone());
        if g.is_leader(&old_id) {
            g.leader_id = Some(new_id.clone());
        }
        if g.pending_sync.remove(&old_id) {
            g.pending_sync.insert(new_id.clone());
        }
        match g.state {
            GroupState::Stable => {
                let next = g.select_protocol();
                if next.is_some() && next == g.protocol_name {
                    // Same protocol: persist the new member id, no rebalance.
                    match self.store_group(g) {
                        Ok(wait) => {
                            let is_leader = g.is_leader(&new_id);
                            let mut out = self.current_join_outcome(g, &new_id, is_leader);
                            out.wait = Some(wait);
                            if let Some(m) = g.members.get_mut(&new_id) {
                                if let Some(w) = m.join_waiter.take() {
                                    let _ = w.send(out);
                                }
                            }
                        }
                        Err(e) => {
                            // Revert to the old member id, as Kafka does.
                            if let Some(mut m) = g.members.remove(&new_id) {
                                timers.cancel(m.heartbeat_timer.take());
                                m.member_id = old_id.clone();
                                m.protocols = old.0;
                                m.rebalance_timeout_ms = old.1;
                                m.session_timeout_ms = old.2;
                                m.heartbeat_timer = Some(timers.schedule(
                                    i64::from(m.session_timeout_ms),
                                    Timer::Heartbeat {
                                        group: g.group_id.clone(),
                                        member: old_id.clone(),
                                    },
                                ));
                                if let Some(w) = m.join_waiter.take() {
                                    let _ = w.send(JoinOutcome::error_code(
                                        map_append_error(e, false),
                                        &new_id,
                                    ));
                                }
                                g.members.insert(old_id.clone(), m);
                            }
                            g.static_members.insert(instance, old_id.clone());
                            if g.is_leader(&new_id) {
                                g.leader_id = Some(old_id);
                            }
                        }
                    }
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(g, timers);
                }
            }
            GroupState::CompletingRebalance => self.prepare_rebalance(g, timers),
            GroupState::PreparingRebalance => self.maybe_complete_join(g, timers),
            GroupState::Empty | GroupState::Dead => {}
        }
        Answer::Later(rx)
    }

    fn maybe_prepare_rebalance_or_complete_join(&self, g: &mut ClassicGroup, timers: &mut Timers) {
        if g.can_rebalance() {
            self.prepare_rebalance(g, timers);
        } else {
            self.maybe_complete_join(g, timers);
        }
    }

    fn prepare_rebalance(&self, g: &mut ClassicGroup, timers: &mut Timers) {
        if g.is(GroupState::CompletingRebalance) {
            // The assignment being computed is void: every waiting sync
            // learns of the new rebalance.
            for m in g.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        timers.cancel(g.sync_timer.take());
        g.pending_sync.clear();
        timers.cancel(g.join_timer.take());
        let initial = g.is(GroupState::Empty);
        g.transition(GroupState::PreparingRebalance, now_ms());
        let rebalance_timeout = g.max_rebalance_timeout_ms();
        if initial {
            let delay = self.config.initial_rebalance_delay_ms;
            g.initial_delay_remaining_ms = Some((rebalance_timeout - delay).max(0));
            g.new_member_added = false;
            g.join_timer = Some(timers.schedule(
                delay,
                Timer::Join {
                    group: g.group_id.clone(),
                },
            ));
        } else {
            g.initial_delay_remaining_ms = None;
            g.join_timer = Some(timers.schedule(
                rebalance_timeout,
                Timer::Join {
                    group: g.group_id.clone(),
                },
            ));
            self.maybe_complete_join(g, timers);
        }
    }

    fn maybe_complete_join(&self, g: &mut ClassicGroup, timers: &mut Timers) {
        if g.is(GroupState::PreparingRebalance)
            && g.initial_delay_remaining_ms.is_none()
            && g.has_all_members_joined()
        {
            self.complete_join(g, timers);
        }
    }

    fn on_join_timer(&self, g: &mut ClassicGroup, timers: &mut Timers) {
        g.join_timer = None;
        if !g.is(GroupState::PreparingRebalance) {
            return;
        }
        if let Some(remaining) = g.initial_delay_remaining_ms {
            if g.new_member_added && remaining > 0 {
                // InitialDelayedJoin: members keep arriving, wait a bit more.
                g.new_member_added = false;
                let delay = self.config.initial_rebalance_delay_ms.min(remaining);
                g.initial_delay_remaining_ms = Some((remaining - delay).max(0));
                g.join_timer = Some(timers.schedule(
                    delay,
                    Timer::Join {
                        group: g.group_id.clone(),
                    },
                ));
                return;
            }
        }
        self.complete_join(g, timers);
    }

    /// Kafka's onCompleteJoin: drop members that did not rejoin, start the
    /// next generation, answer every waiting join (the leader gets all
    /// members' metadata).
    fn complete_join(&self, g: &mut ClassicGroup, timers: &mut Timers) {
        timers.cancel(g.join_timer.take());
        g.initial_delay_remaining_ms = None;
        let not_rejoined: Vec<String> = g
            .members
            .values()
            .filter(|m| !m.is_awaiting_join())
            .map(|m| m.member_id.clone())
            .collect();
        for id in not_rejoined {
            tracing::info!(group = %g.group_id, member = %id, "member did not rejoin in time; removing it");
            remove_member(g, timers, &id);
        }
        if g.is(GroupState::Dead) {
            return;
        }
        let now = now_ms();
        g.generation_id += 1;
        if g.members.is_empty() {
            g.protocol_name = None;
            g.transition(GroupState::Empty, now);
            if let Err(e) = self.store_group(g) {
                tracing::warn!(group = %g.group_id, error = ?e, "storing the empty group failed");
            }
            return;
        }
        g.protocol_name = g.select_protocol();
        g.transition(GroupState::CompletingRebalance, now);
        tracing::info!(group = %g.group_id, generation = g.generation_id, protocol = ?g.protocol_name, members = g.members.len(), "rebalance: join phase complete");
        let leader_members = current_member_metadata(g);
        let ids: Vec<String> = g.members.keys().cloned().collect();
        for id in &ids {
            let is_leader = g.is_leader(id);
            let out = JoinOutcome {
                error: 0,
                generation_id: g.generation_id,
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol_name.clone(),
                leader: g.leader_id.clone().unwrap_or_default(),
                member_id: id.clone(),
                members: if is_leader {
                    leader_members.clone()
                } else {
                    Vec::new()
                },
                skip_assignment: false,
                wait: None,
            };
            let gid = g.group_id.clone();
            if let Some(m) = g.members.get_mut(id) {
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(out);
                }
                timers.cancel(m.heartbeat_timer.take());
                m.heartbeat_timer = Some(timers.schedule(
                    i64::from(m.session_timeout_ms),
                    Timer::Heartbeat {
                        group: gid,
                        member: id.clone(),
                    },
                ));
            }
            g.pending_sync.insert(id.clone());
        }
        g.sync_timer = Some(timers.schedule(
            g.max_rebalance_timeout_ms(),
            Timer::Sync {
                group: g.group_id.clone(),
                generation: g.generation_id,
            },
        ));
    }

    /// A member left or expired: Kafka's removeMemberAndUpdateClassicGroup.
    fn remove_member_and_update(&self, g: &mut ClassicGroup, timers: &mut Timers, member_id: &str) {
        remove_member(g, timers, member_id);
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(g, timers)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(g, timers),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    // -----------------------------------------------------------------
    // SyncGroup
    // -----------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub fn sync_group(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> Answer<SyncOutcome> {
        if group_id.is_empty() {
            return Answer::Now(SyncOutcome::error(ResponseError::InvalidGroupId));
        }
        let mut guard = self.lock();
        let State { groups, timers } = &mut *guard;
        let Some(g) = groups.get_mut(group_id) else {
            return Answer::Now(SyncOutcome::error(ResponseError::UnknownMemberId));
        };
        if g.is(GroupState::Dead) {
            return Answer::Now(SyncOutcome::error(ResponseError::CoordinatorNotAvailable));
        }
        if let Err(e) = g.validate_member(member_id, group_instance_id) {
            return Answer::Now(SyncOutcome::error(e));
        }
        if generation_id != g.generation_id {
            return Answer::Now(SyncOutcome::error(ResponseError::IllegalGeneration));
        }
        if protocol_type.is_some_and(|t| g.protocol_type.as_deref() != Some(t))
            || protocol_name.is_some_and(|n| g.protocol_name.as_deref() != Some(n))
        {
            return Answer::Now(SyncOutcome::error(ResponseError::InconsistentGroupProtocol));
        }
        let answer = match g.state {
            GroupState::Empty | GroupState::Dead => {
                Answer::Now(SyncOutcome::error(ResponseError::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                Answer::Now(SyncOutcome::error(ResponseError::RebalanceInProgress))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = g.members.get_mut(member_id) {
                    if let Some(old) = m.sync_waiter.replace(tx) {
                        let _ = old.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                    }
                }
                g.pending_sync.remove(member_id);
                if g.is_leader(member_id) {
                    self.apply_leader_assignment(g, timers, assignments);
                }
                Answer::Later(rx)
            }
            GroupState::Stable => {
                g.pending_sync.remove(member_id);
                let gid = g.group_id.clone();
                let out = match g.members.get_mut(member_id) {
                    Some(m) => {
                        reschedule_heartbeat(timers, &gid, m);
                        SyncOutcome {
                            error: 0,
                            protocol_type: g.protocol_type.clone(),
                            protocol_name: g.protocol_name.clone(),
                            assignment: m.assignment.clone(),
                            wait: None,
                        }
                    }
                    None => SyncOutcome::error(ResponseError::UnknownMemberId),
                };
                Answer::Now(out)
            }
        };
        drop(guard);
        self.timer_wake.notify_one();
        answer
    }

    fn apply_leader_assignment(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
        assignments: Vec<(String, Bytes)>,
    ) {
        let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
        for m in g.members.values_mut() {
            m.assignment = by_member.remove(&m.member_id).unwrap_or_default();
        }
        match self.store_group(g) {
            Ok(wait) => {
                g.transition(GroupState::Stable, now_ms());
                tracing::info!(group = %g.group_id, generation = g.generation_id, "rebalance complete: group is stable");
                for m in g.members.values_mut() {
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncOutcome {
                            error: 0,
                            protocol_type: g.protocol_type.clone(),
                            protocol_name: g.protocol_name.clone(),
                            assignment: m.assignment.clone(),
                            wait: Some(wait.clone()),
                        });
                    }
                }
            }
            Err(e) => {
                let err = map_append_error(e, false);
                for m in g.members.values_mut() {
                    m.assignment = Bytes::new();
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncOutcome {
                            error: err,
                            ..SyncOutcome::error(ResponseError::UnknownServerError)
                        });
                    }
                }
                self.prepare_rebalance(g, timers);
            }
        }
    }

    // -----------------------------------------------------------------
    // Heartbeat / LeaveGroup
    // -----------------------------------------------------------------

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> i16 {
        if group_id.is_empty() {
            return code(ResponseError::InvalidGroupId);
        }
        let mut guard = self.lock();
        let State { groups, timers } = &mut *guard;
        let Some(g) = groups.get_mut(group_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        if g.is(GroupState::Dead) {
            return code(ResponseError::CoordinatorNotAvailable);
        }
        if let Err(e) = g.validate_member(member_id, group_instance_id) {
            return code(e);
        }
        if generation_id != g.generation_id {
            return code(ResponseError::IllegalGeneration);
        }
        let state = g.state;
        let gid = g.group_id.clone();
        let Some(m) = g.members.get_mut(member_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        match state {
            GroupState::Empty | GroupState::Dead => code(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => {
                reschedule_heartbeat(timers, &gid, m);
                0
            }
            GroupState::PreparingRebalance => {
                reschedule_heartbeat(timers, &gid, m);
                code(ResponseError::RebalanceInProgress)
            }
        }
    }

    /// LeaveGroup: (top-level error, per-member (member id, instance id, error)).
    pub fn leave_group(
        &self,
        group_id: &str,
        leaving: Vec<(String, Option<String>)>,
    ) -> (i16, Vec<(String, Option<String>, i16)>) {
        if group_id.is_empty() {
            return (code(ResponseError::InvalidGroupId), Vec::new());
        }
        let mut guard = self.lock();
        let State { groups, timers } = &mut *guard;
        let Some(g) = groups.get_mut(group_id) else {
            return (code(ResponseError::UnknownMemberId), Vec::new());
        };
        if g.is(GroupState::Dead) {
            return (code(ResponseError::CoordinatorNotAvailable), Vec::new());
        }
        let mut results = Vec::with_capacity(leaving.len());
        for (member_id, instance) in leaving {
            let err = match &instance {
                Some(i) => match g.static_members.get(i).cloned() {
                    None => code(ResponseError::UnknownMemberId),
                    Some(existing) if !member_id.is_empty() && existing != member_id => {
                        code(ResponseError::FencedInstanceId)
                    }
                    Some(existing) => {
                        tracing::info!(group = %group_id, member = %existing, instance = %i, "static member left the group");
                        self.remove_member_and_update(g, timers, &existing);
                        0
                    }
                },
                None => {
                    if let Some(key) = g.pending_members.remove(&member_id) {
                        timers.cancel(Some(key));
                        self.maybe_complete_join(g, timers);
                        0
                    } else if g.members.contains_key(&member_id) {
                        tracing::info!(group = %group_id, member = %member_id, "member left the group");
                        self.remove_member_and_update(g, timers, &member_id);
                        0
                    } else {
                        code(ResponseError::UnknownMemberId)
                    }
                }
            };
            results.push((member_id, instance, err));
        }
        drop(guard);
        self.timer_wake.notify_one();
        (0, results)
    }

    // -----------------------------------------------------------------
    // offsets
    // -----------------------------------------------------------------

    /// OffsetCommit: Err(code) applies to every partition; Ok gives
    /// per-partition codes (same order as `parts`) and the write to await.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_offsets(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        retention_time_ms: i64,
        api_version: i16,
        parts: &[CommitPartition],
    ) -> Result<(Vec<i16>, Option<DurableWait>), i16> {
        if group_id.is_empty() {
            return Err(code(ResponseError::InvalidGroupId));
        }
        let mut guard = self.lock();
        let State { groups, timers } = &mut *guard;
        let now = now_ms();
        if !groups.contains_key(group_id) {
            if generation_id < 0 {
                // A simple consumer or the admin client: Kafka creates a
                // "simple" group to hold the offsets.
                groups.insert(
                    group_id.to_string(),
                    ClassicGroup::new(group_id.to_string(), now),
                );
            } else if api_version >= 9 {
                return Err(code(ResponseError::GroupIdNotFound));
            } else {
                return Err(code(ResponseError::IllegalGeneration));
            }
        }
        let Some(g) = groups.get_mut(group_id) else {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        };
        // ClassicGroup.validateOffsetCommit.
        if g.is(GroupState::Dead) {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        if !(generation_id < 0 && g.is(GroupState::Empty)) {
            if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
                g.validate_member(member_id, group_instance_id)
                    .map_err(code)?;
                if generation_id != g.generation_id {
                    return Err(code(ResponseError::IllegalGeneration));
                }
            } else if !g.is(GroupState::Empty) {
                return Err(code(ResponseError::UnknownMemberId));
            }
            if g.is(GroupState::CompletingRebalance) {
                return Err(code(ResponseError::RebalanceInProgress));
            }
        }
        if matches!(g.state, GroupState::Stable | GroupState::PreparingRebalance) {
            let gid = g.group_id.clone();
            if let Some(m) = g.members.get_mut(member_id) {
                reschedule_heartbeat(timers, &gid, m);
            }
        }
        let expire = if retention_time_ms == -1 {
            None
        } else {
            Some(now.saturating_add(retention_time_ms))
        };
        let mut codes = Vec::with_capacity(parts.len());
        let mut records = Vec::new();
        let mut values = Vec::new();
        for p in parts {
            let meta = p.metadata.clone().unwrap_or_default();
            if meta.len() > self.config.offset_metadata_max_bytes {
                codes.push(code(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            codes.push(0);
            let v = OffsetValue {
                offset: p.offset,
                leader_epoch: p.leader_epoch,
                metadata: meta,
                commit_timestamp: now,
                expire_timestamp: expire,
            };
            records.push((
                persistence::offset_key(group_id, &p.topic, p.partition),
                Some(persistence::offset_value(&v)),
            ));
            values.push(((p.topic.clone(), p.partition), v));
        }
        if records.is_empty() {
            return Ok((codes, None));
        }
        match self.append_batch(group_id, &records, None) {
            Ok((wait, base)) => {
                for (i, (k, v)) in values.into_iter().enumerate() {
                    g.offset_positions.insert(k.clone(), base + i as i64);
                    g.offsets.insert(k, v);
                }
                drop(guard);
                self.timer_wake.notify_one();
                Ok((codes, Some(wait)))
            }
            Err(e) => Err(map_append_error(e, true)),
        }
    }

    /// TxnOffsetCommit (Kafka's `commitTransactionalOffset`): validates as
    /// a transactional commit, writes the offsets as a transactional batch
    /// of `producer_id`/`producer_epoch` and keeps them pending until the
    /// transaction's marker ([`Self::complete_txn`]). Err(code) applies to
    /// every partition; Ok gives per-partition codes (same order as
    /// `parts`) and the write to await.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit_offsets(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        parts: &[CommitPartition],
    ) -> Result<(Vec<i16>, Option<DurableWait>), i16> {
        if group_id.is_empty() {
            return Err(code(ResponseError::InvalidGroupId));
        }
        let mut guard = self.lock();
        let now = now_ms();
        let created = if guard.groups.contains_key(group_id) {
            false
        } else if generation_id < 0 {
            // A simple group, as for OffsetCommit.
            guard.groups.insert(
                group_id.to_string(),
                ClassicGroup::new(group_id.to_string(), now),
            );
            true
        } else {
            return Err(code(ResponseError::IllegalGeneration));
        };
        let result = self.txn_commit_locked(
            &mut guard,
            group_id,
            producer_id,
            producer_epoch,
            generation_id,
            member_id,
            group_instance_id,
            parts,
            now,
        );
        if created
            && guard
                .groups
                .get(group_id)
                .is_some_and(|g| g.holds_nothing())
        {
            guard.groups.remove(group_id);
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn txn_commit_locked(
        &self,
        state: &mut State,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        parts: &[CommitPartition],
        now: i64,
    ) -> Result<(Vec<i16>, Option<DurableWait>), i16> {
        let Some(g) = state.groups.get_mut(group_id) else {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        };
        // ClassicGroup.validateOffsetCommit with isTransactional: no
        // member check for requests without member and generation (v0-2),
        // and no REBALANCE_IN_PROGRESS; the session is not extended.
        if g.is(GroupState::Dead) {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        let simple = generation_id < 0 && g.is(GroupState::Empty);
        let identified = generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some();
        if !simple && identified {
            g.validate_member(member_id, group_instance_id)
                .map_err(code)?;
            if generation_id != g.generation_id {
                return Err(code(ResponseError::IllegalGeneration));
            }
        }
        let mut codes = Vec::with_capacity(parts.len());
        let mut records = Vec::new();
        let mut values = Vec::new();
        for p in parts {
            let meta = p.metadata.clone().unwrap_or_default();
            if meta.len() > self.config.offset_metadata_max_bytes {
                codes.push(code(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            codes.push(0);
            let v = OffsetValue {
                offset: p.offset,
                leader_epoch: p.leader_epoch,
                metadata: meta,
                commit_timestamp: now,
                expire_timestamp: None,
            };
            records.push((
                persistence::offset_key(group_id, &p.topic, p.partition),
                Some(persistence::offset_value(&v)),
            ));
            values.push(((p.topic.clone(), p.partition), v));
        }
        if records.is_empty() {
            return Ok((codes, None));
        }
        match self.append_batch(group_id, &records, Some((producer_id, producer_epoch))) {
            Ok((wait, base)) => {
                for (i, (k, v)) in values.into_iter().enumerate() {
                    g.pending_txn.add(producer_id, k, v, base + i as i64);
                }
                tracing::debug!(group = %group_id, producer_id, producer_epoch, offsets = records.len(), "transactional offsets pending");
                Ok((codes, Some(wait)))
            }
            Err(e) => Err(map_append_error(e, true)),
        }
    }

    /// The transaction coordinator wrote (and made durable) a COMMIT or
    /// ABORT marker of `producer_id` on `__consumer_offsets` partition
    /// `offsets_partition`: that producer's pending offsets of every group
    /// on it are committed (unless a later regular commit superseded them)
    /// or discarded.
    pub fn complete_txn(&self, offsets_partition: i32, producer_id: i64, commit: bool) {
        let mut guard = self.lock();
        let n = self.num_offsets_partitions();
        let mut settled = 0usize;
        let mut applied = 0usize;
        for g in guard.groups.values_mut() {
            if !g.pending_txn.has_producer(producer_id)
                || persistence::partition_for(&g.group_id, n) != offsets_partition
            {
                continue;
            }
            settled += 1;
            let ClassicGroup {
                pending_txn,
                offsets,
                offset_positions,
                ..
            } = g;
            applied += pending_txn.complete(producer_id, commit, offsets, offset_positions);
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
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        require_stable: bool,
    ) -> Vec<(String, Vec<FetchedOffset>)> {
        let guard = self.lock();
        let g = guard
            .groups
            .get(group_id)
            .filter(|g| !g.is(GroupState::Dead));
        let missing = |partition: i32| FetchedOffset {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: 0,
        };
        let unstable = |t: &str, partition: i32| {
            require_stable
                && g.is_some_and(|g| g.pending_txn.has_pending(&(t.to_string(), partition)))
        };
        let found = |v: &OffsetValue, t: &str, partition: i32| {
            if unstable(t, partition) {
                return FetchedOffset {
                    error: code(ResponseError::UnstableOffsetCommit),
                    ..missing(partition)
                };
            }
            FetchedOffset {
                partition,
                offset: v.offset,
                leader_epoch: v.leader_epoch,
                metadata: v.metadata.clone(),
                error: 0,
            }
        };
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(t, parts)| {
                    let out = parts
                        .into_iter()
                        .map(|p| {
                            if unstable(&t, p) {
                                return FetchedOffset {
                                    error: code(ResponseError::UnstableOffsetCommit),
                                    ..missing(p)
                                };
                            }
                            g.and_then(|g| g.offsets.get(&(t.clone(), p)))
                                .map(|v| found(v, &t, p))
                                .unwrap_or_else(|| missing(p))
                        })
                        .collect();
                    (t, out)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
                if let Some(g) = g {
                    for ((t, p), v) in &g.offsets {
                        by_topic.entry(t.clone()).or_default().push(found(v, t, *p));
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

    // -----------------------------------------------------------------
    // admin: ListGroups, DescribeGroups, DeleteGroups, OffsetDelete
    // -----------------------------------------------------------------

    pub fn list_groups(&self) -> Vec<GroupListing> {
        let guard = self.lock();
        let mut out: Vec<GroupListing> = guard
            .groups
            .values()
            .filter(|g| !g.is(GroupState::Dead))
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    pub fn describe_group(&self, group_id: &str) -> Option<GroupDescription> {
        let guard = self.lock();
        let g = guard
            .groups
            .get(group_id)
            .filter(|g| !g.is(GroupState::Dead))?;
        let stable = g.is(GroupState::Stable);
        let protocol = g.protocol_name.clone().unwrap_or_default();
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            // Kafka shows the protocol and the members' metadata and
            // assignments only once the group is Stable.
            protocol_data: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol).cloned().unwrap_or_default()
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    /// DeleteGroups for one group: the error code, plus the write to await.
    pub fn delete_group(&self, group_id: &str) -> (i16, Option<DurableWait>) {
        let mut guard = self.lock();
        let State { groups, timers } = &mut *guard;
        let Some(g) = groups.get_mut(group_id) else {
            return (code(ResponseError::GroupIdNotFound), None);
        };
        match g.state {
            GroupState::Dead => return (code(ResponseError::GroupIdNotFound), None),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance => return (code(ResponseError::NonEmptyGroup), None),
            GroupState::Empty => {}
        }
        let mut records: Vec<CoordRecord> = g
            .offsets
            .keys()
            .map(|(t, p)| (persistence::offset_key(group_id, t, *p), None))
            .collect();
        // Partitions only an open transaction wrote to need their
        // tombstone too (Kafka's deleteAllOffsets).
        for k in g.pending_txn.partitions() {
            if !g.offsets.contains_key(&k) {
                records.push((persistence::offset_key(group_id, &k.0, k.1), None));
            }
        }
        records.push((persistence::group_key(group_id), None));
        match self.append(group_id, &records) {
            Ok(wait) => {
                if let Some(mut g) = groups.remove(group_id) {
                    for (_, k) in g.pending_members.drain() {
                        timers.cancel(Some(k));
                    }
                    timers.cancel(g.join_timer.take());
                    timers.cancel(g.sync_timer.take());
                    g.transition(GroupState::Dead, now_ms());
                }
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
        let mut guard = self.lock();
        let Some(g) = guard.groups.get_mut(group_id) else {
            return Err(code(ResponseError::GroupIdNotFound));
        };
        match g.state {
            GroupState::Dead => return Err(code(ResponseError::GroupIdNotFound)),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
                if g.protocol_type.as_deref() != Some(super::group::CONSUMER_PROTOCOL_TYPE) =>
            {
                return Err(code(ResponseError::NonEmptyGroup))
            }
            _ => {}
        }
        let mut codes = Vec::with_capacity(topics.len());
        let mut records = Vec::new();
        let mut keys = Vec::new();
        for (t, parts) in topics {
            if g.is_subscribed_to(t) {
                codes.push(vec![
                    code(ResponseError::GroupSubscribedToTopic);
                    parts.len()
                ]);
                continue;
            }
            codes.push(vec![0; parts.len()]);
            for p in parts {
                let k = (t.clone(), *p);
                if g.offsets.contains_key(&k) || g.pending_txn.has_pending(&k) {
                    records.push((persistence::offset_key(group_id, t, *p), None));
                    keys.push(k);
                }
            }
        }
        if records.is_empty() {
            return Ok((codes, None));
        }
        match self.append(group_id, &records) {
            Ok(wait) => {
                for k in keys {
                    g.remove_offset(&k);
                }
                Ok((codes, Some(wait)))
            }
            Err(e) => Err(map_append_error(e, false)),
        }
    }

    // -----------------------------------------------------------------
    // timers and expiration
    // -----------------------------------------------------------------

    async fn run_timers(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        loop {
            if *stopping.borrow() {
                return;
            }
            let next = self.fire_expired_timers();
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

    /// Fires every due timer; returns the next deadline.
    fn fire_expired_timers(&self) -> Option<Instant> {
        let mut guard = self.lock();
        let State { groups, timers } = &mut *guard;
        let now = Instant::now();
        loop {
            let (&key, _) = timers.map.first_key_value()?;
            if key.0 > now {
                return Some(key.0);
            }
            let Some(timer) = timers.map.remove(&key) else {
                continue;
            };
            match timer {
                Timer::Heartbeat { group, member } => {
                    self.on_heartbeat_expired(groups, timers, &group, &member, key)
                }
                Timer::Join { group } => {
                    if let Some(g) = groups.get_mut(&group) {
                        if g.join_timer == Some(key) {
                            self.on_join_timer(g, timers);
                        }
                    }
                }
                Timer::Sync { group, generation } => {
                    if let Some(g) = groups.get_mut(&group) {
                        if g.sync_timer == Some(key) {
                            g.sync_timer = None;
                            self.on_sync_expired(g, timers, generation);
                        }
                    }
                }
            }
        }
    }

    fn on_heartbeat_expired(
        &self,
        groups: &mut HashMap<String, ClassicGroup>,
        timers: &mut Timers,
        group: &str,
        member: &str,
        key: TimerKey,
    ) {
        let Some(g) = groups.get_mut(group) else {
            return;
        };
        if g.pending_members.get(member) == Some(&key) {
            g.pending_members.remove(member);
            tracing::debug!(group = %group, member = %member, "pending member did not rejoin within its session timeout");
            self.maybe_complete_join(g, timers);
        } else if let Some(m) = g.members.get_mut(member) {
            if m.heartbeat_timer != Some(key) {
                return;
            }
            m.heartbeat_timer = None;
            if m.is_awaiting_join() || m.is_awaiting_sync() {
                // A member long-polling on join/sync is alive by definition;
                // the rebalance/sync timers bound that wait.
                let gid = g.group_id.clone();
                reschedule_heartbeat(timers, &gid, m);
                return;
            }
            tracing::info!(group = %group, member = %member, "member session expired; removing it from the group");
            self.remove_member_and_update(g, timers, member);
        } else {
            return;
        }
        // A group that never held anything (e.g. a MEMBER_ID_REQUIRED
        // member that never came back) is forgotten at once.
        if g.holds_nothing() && g.join_timer.is_none() {
            groups.remove(group);
        }
    }

    /// Kafka's pending-sync expiration: members that got their join
    /// response but never synced are removed, and the group rebalances.
    fn on_sync_expired(&self, g: &mut ClassicGroup, timers: &mut Timers, generation: i32) {
        if generation != g.generation_id
            || !matches!(
                g.state,
                GroupState::CompletingRebalance | GroupState::Stable
            )
            || g.pending_sync.is_empty()
        {
            return;
        }
        let laggards: Vec<String> = g.pending_sync.drain().collect();
        for id in &laggards {
            tracing::info!(group = %g.group_id, member = %id, "member did not sync in time; removing it");
            remove_member(g, timers, id);
        }
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(g, timers)
            }
            _ => {}
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

    /// Kafka's cleanupGroupMetadata: drop expired offsets (tombstones),
    /// then Empty groups left with no offsets.
    pub fn expire_offsets(&self, now: i64) {
        let mut guard = self.lock();
        let State { groups, timers } = &mut *guard;
        let retention = self.config.offsets_retention_ms;
        let mut dead = Vec::new();
        for g in groups.values_mut() {
            let base = g.expiration_base();
            // An offset with a pending transactional one does not expire
            // yet, and the group stays while transactions hold offsets.
            let expired: Vec<(String, i32)> = offsets::expired(&g.offsets, &base, retention, now)
                .into_iter()
                .filter(|k| !g.pending_txn.has_pending(k))
                .collect();
            let mut records: Vec<CoordRecord> = expired
                .iter()
                .map(|(t, p)| (persistence::offset_key(&g.group_id, t, *p), None))
                .collect();
            let empty_after = g.is(GroupState::Empty)
                && g.pending_members.is_empty()
                && g.pending_txn.is_empty()
                && g.offsets.len() == expired.len();
            if empty_after {
                records.push((persistence::group_key(&g.group_id), None));
            }
            if records.is_empty() {
                continue;
            }
            match self.append(&g.group_id, &records) {
                Ok(_) => {
                    for k in &expired {
                        g.remove_offset(k);
                    }
                    if !expired.is_empty() {
                        tracing::info!(group = %g.group_id, removed = expired.len(), "expired committed offsets");
                    }
                    if empty_after {
                        g.transition(GroupState::Dead, now);
                        dead.push(g.group_id.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %g.group_id, error = ?e, "writing offset expiration failed")
                }
            }
        }
        for id in dead {
            if let Some(mut g) = groups.remove(&id) {
                timers.cancel(g.join_timer.take());
                timers.cancel(g.sync_timer.take());
            }
        }
    }
}

impl JoinOutcome {
    pub fn error_code(error: i16, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error,
            ..JoinOutcome::error(ResponseError::UnknownServerError, member_id)
        }
    }
}

fn reschedule_heartbeat(timers: &mut Timers, group_id: &str, m: &mut ClassicGroupMember) {
    timers.cancel(m.heartbeat_timer.take());
    m.heartbeat_timer = Some(timers.schedule(
        i64::from(m.session_timeout_ms),
        Timer::Heartbeat {
            group: group_id.to_string(),
            member: m.member_id.clone(),
        },
    ));
}

/// Removes a member: its timers, its static identity, its waiters (which
/// learn UNKNOWN_MEMBER_ID), and leadership (passed to the next member).
fn remove_member(g: &mut ClassicGroup, timers: &mut Timers, member_id: &str) {
    let Some(mut m) = g.members.remove(member_id) else {
        return;
    };
    timers.cancel(m.heartbeat_timer.take());
    if let Some(w) = m.join_waiter.take() {
        let _ = w.send(JoinOutcome::error(
            ResponseError::UnknownMemberId,
            member_id,
        ));
    }
    if let Some(w) = m.sync_waiter.take() {
        let _ = w.send(SyncOutcome::error(ResponseError::UnknownMemberId));
    }
    if let Some(i) = &m.group_instance_id {
        if g.static_members.get(i).map(String::as_str) == Some(member_id) {
            g.static_members.remove(i);
        }
    }
    g.pending_sync.remove(member_id);
    if g.is_leader(member_id) {
        g.leader_id = g.members.keys().next().cloned();
    }
}

/// Every member's metadata for the selected protocol (the leader's view).
fn current_member_metadata(g: &ClassicGroup) -> Vec<JoinMember> {
    let Some(p) = g.protocol_name.as_deref() else {
        return Vec::new();
    };
    g.members
        .values()
        .map(|m| JoinMember {
            member_id: m.member_id.clone(),
            group_instance_id: m.group_instance_id.clone(),
            metadata: m.metadata(p).cloned().unwrap_or_default(),
        })
        .collect()
}

/// How many partitions `__consumer_offsets` gets, and its configs (Kafka's
/// internal topic configs), when it has to be created.
pub fn offsets_topic_spec(
    config: &BrokerConfig,
) -> (i32, std::collections::BTreeMap<String, String>) {
    let partitions = config
        .value("offsets.topic.num.partitions")
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(50);
    let segment_bytes = config
        .value("offsets.topic.segment.bytes")
        .unwrap_or("104857600")
        .trim()
        .to_string();
    let configs = [
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("segment.bytes".to_string(), segment_bytes),
        ("compression.type".to_string(), "producer".to_string()),
    ]
    .into_iter()
    .collect();
    (partitions, configs)
}

#[cfg(test)]
mod txn_tests {
    use super::*;
    use crate::broker::topics::TopicManager;

    const PID: i64 = 1000;
    const UNSTABLE_OFFSET_COMMIT: i16 = 88;

    fn open(dir: &std::path::Path) -> (TopicManager, Arc<GroupCoordinator>) {
        let (config, _) = BrokerConfig::from_entries(vec![
            ("log.dirs".into(), dir.display().to_string()),
            ("offsets.topic.num.partitions".into(), "3".into()),
            ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
        ])
        .unwrap();
        let topics = TopicManager::load(Arc::new(config.clone()), false).unwrap();
        let (partitions, configs) = offsets_topic_spec(&config);
        let topic = match topics.get(persistence::OFFSETS_TOPIC) {
            Some(t) => t,
            None => topics
                .create(persistence::OFFSETS_TOPIC, partitions, 1, configs)
                .unwrap(),
        };
        let coord = GroupCoordinator::load(GroupConfig::from_broker(&config), topic).unwrap();
        (topics, coord)
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
        let out = c.fetch_offsets(g, Some(vec![(t.to_string(), vec![p])]), stable);
        let f = &out[0].1[0];
        (f.offset, f.error)
    }

    fn commit(c: &GroupCoordinator, g: &str, parts: &[CommitPartition]) {
        let (codes, _) = c.commit_offsets(g, -1, "", None, -1, 9, parts).unwrap();
        assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    }

    fn txn_commit(
        c: &GroupCoordinator,
        g: &str,
        pid: i64,
        parts: &[CommitPartition],
    ) -> Result<Vec<i16>, i16> {
        c.txn_commit_offsets(g, pid, 0, -1, "", None, parts)
            .map(|(codes, _)| codes)
    }

    /// Writes the marker as the transaction coordinator does, then tells
    /// the group coordinator.
    fn end_txn(c: &GroupCoordinator, g: &str, pid: i64, commit: bool) {
        let p = c.partition_for(g);
        c.offsets_topic
            .partition(p)
            .unwrap()
            .append_txn_marker(pid, 0, commit, 0)
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
        let all = c.fetch_offsets("g", None, true);
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
        // No such group with a generation: ILLEGAL_GENERATION.
        assert_eq!(
            c.txn_commit_offsets("nope", PID, 0, 3, "m", None, &[part("t", 0, 1)])
                .err(),
            Some(code(ResponseError::IllegalGeneration))
        );
        assert!(c.describe_group("nope").is_none());
        assert_eq!(
            c.txn_commit_offsets("", PID, 0, -1, "", None, &[part("t", 0, 1)])
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
            st.groups.insert("g".into(), g);
        }
        let p = [part("t", 0, 1)];
        let txn = |pid: i64, gen: i32, member: &str, inst: Option<&str>| {
            c.txn_commit_offsets("g", pid, 0, gen, member, inst, &p)
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
            c.txn_commit_offsets("g", PID, 1, -1, "", None, &[part("t", 0, 13)])
                .map(|r| r.0),
            Ok(vec![0])
        );
    }
}
