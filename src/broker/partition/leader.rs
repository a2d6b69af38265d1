//! The partition's replica set as the metadata image gives it, and the
//! leader's half of replication (Kafka's `Partition` leader paths and
//! `Replica`): each follower's fetch state, the high watermark as the
//! minimum over the (maximal) ISR, the in-sync checks that decide ISR
//! expansion and shrinking, and the pending-ISR rules of KIP-497 (while an
//! AlterPartition is in flight the high watermark uses the larger set).
//!
//! A partition with one replica never enters this file's paths: its high
//! watermark moves on flush (durable) or append (page-cache) as before.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::alter_partition::{CommittedIsr, IsrProposal};
use crate::metadata::PartitionRegistration;
use crate::util::now_ms;

use super::{Partition, PartitionError};

/// Kafka's `UnifiedLog.UnknownOffset`: a follower not heard from at this
/// leader epoch.
const UNKNOWN_OFFSET: i64 = -1;

/// One follower as its leader sees it (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaState {
    /// The fetch offset of its last fetch at the current leader epoch.
    pub log_end_offset: i64,
    pub log_start_offset: i64,
    pub last_fetch_leader_log_end_offset: i64,
    pub last_fetch_time_ms: i64,
    pub last_caught_up_time_ms: i64,
    /// The broker epoch of its last fetch (-1: not sent).
    pub broker_epoch: i64,
}

impl ReplicaState {
    fn reset(now: i64, in_sync: bool) -> ReplicaState {
        ReplicaState {
            log_end_offset: UNKNOWN_OFFSET,
            log_start_offset: UNKNOWN_OFFSET,
            last_fetch_leader_log_end_offset: UNKNOWN_OFFSET,
            last_fetch_time_ms: 0,
            // An ISR member gets a full lag period to fetch from a new
            // leader before it is out of sync (Kafka's `resetReplicaState`).
            last_caught_up_time_ms: if in_sync { now } else { 0 },
            broker_epoch: -1,
        }
    }

    /// Kafka's `ReplicaState.isCaughtUp`.
    fn is_caught_up(&self, leader_end_offset: i64, now: i64, max_lag_ms: i64) -> bool {
        leader_end_offset == self.log_end_offset
            || now.saturating_sub(self.last_caught_up_time_ms) <= max_lag_ms
    }
}

/// The replica set of one partition and, on the leader, its followers.
#[derive(Debug, Default)]
pub struct Assignment {
    /// False until the metadata image names this node a replica (and again
    /// once it no longer does); only used in cluster mode.
    pub hosted: bool,
    pub topic_id: Uuid,
    pub local_id: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
    /// The ISR proposed to the controller and not yet answered; the high
    /// watermark counts the union of it and `isr` (the maximal ISR).
    pub pending_isr: Option<Vec<i32>>,
    pub followers: BTreeMap<i32, ReplicaState>,
    /// The leader's id and inter-broker address when another node leads.
    pub leader_endpoint: Option<(i32, String)>,
    /// The log end when this node became leader at its epoch (Kafka's
    /// `leaderEpochStartOffsetOpt`): a follower below it is not in sync.
    pub epoch_start_offset: i64,
    /// The brokers that may be in an ISR, with their broker epochs (Kafka's
    /// `isReplicaIsrEligible`: registered, not fenced, not shutting down);
    /// `None` until the metadata image is known (everyone is eligible).
    pub eligible: Option<Arc<BTreeMap<i32, i64>>>,
}

impl Assignment {
    /// Kafka's `isReplicaIsrEligible`: a follower that is fenced, shutting
    /// down, or fetching with another broker epoch than its registration's
    /// (KIP-903: it restarted) must not join the ISR nor hold the high
    /// watermark back as a caught-up replica about to join.
    fn is_eligible(&self, id: i32, fetched_broker_epoch: i64) -> bool {
        match &self.eligible {
            None => true,
            Some(m) => m
                .get(&id)
                .is_some_and(|e| fetched_broker_epoch == -1 || *e == fetched_broker_epoch),
        }
    }

    fn maximal_isr(&self) -> Vec<i32> {
        let mut all = self.isr.clone();
        if let Some(p) = &self.pending_isr {
            for r in p {
                if !all.contains(r) {
                    all.push(*r);
                }
            }
        }
        all
    }

    /// Kafka's `effectiveMinIsr`: never more than the replicas there are.
    fn effective_min_isr(&self, min_insync_replicas: i32) -> usize {
        (min_insync_replicas.max(1) as usize).min(self.replicas.len().max(1))
    }
}

/// What a follower's fetch did to the leader: an ISR expansion to propose.
pub type FetchOutcome = Option<IsrProposal>;

impl Partition {
    fn assignment(&self) -> std::sync::MutexGuard<'_, Assignment> {
        self.assignment.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// KIP-392: the in-sync followers a consumer fetching at
    /// `fetch_offset` could read from instead (their log holds the offset),
    /// as (broker id, log end offset, ms since last caught up); `None`
    /// unless this replica leads a replicated partition (Kafka's
    /// `findPreferredReadReplica` candidates).
    pub fn read_replica_candidates(
        &self,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<Vec<(i32, i64, i64)>> {
        if !self.is_leader() || !self.replicated.load(Ordering::Acquire) {
            return None;
        }
        let a = self.assignment();
        Some(
            a.followers
                .iter()
                .filter(|(id, s)| {
                    a.isr.contains(id)
                        && s.log_end_offset >= fetch_offset
                        && s.log_start_offset != UNKNOWN_OFFSET
                        && s.log_start_offset <= fetch_offset
                })
                .map(|(id, s)| {
                    (
                        *id,
                        s.log_end_offset,
                        now_ms.saturating_sub(s.last_caught_up_time_ms),
                    )
                })
                .collect(),
        )
    }

    /// Kafka's check before an acks=all append: fewer in-sync replicas
    /// than min.insync.replicas, capped at the replica count (Kafka 4.1's
    /// `Partition.effectiveMinIsr`), so a single replica is never below it.
    pub fn below_min_isr(&self, min_insync_replicas: i32) -> bool {
        if !self.replicated.load(Ordering::Acquire) {
            return false;
        }
        let a = self.assignment();
        a.isr.len() < a.effective_min_isr(min_insync_replicas)
    }

    /// Waits for what acknowledges an append ending at `end_offset`, made
    /// in `leadership` (`AppendOutcome::leadership`): on a replicated leader,
    /// acks=all waits for the high watermark (then checks the ISR did not
    /// fall below min.insync.replicas meanwhile) and acks=1 for the local
    /// log only; a single replica waits for the high watermark as it always
    /// has. Once this replica stopped leading after the append, even if it
    /// leads again, the answer is NOT_LEADER_OR_FOLLOWER (Kafka completes a
    /// delayed produce with it when the partition becomes a follower): the
    /// records may have been truncated away, and the high watermark moves
    /// on with the new leader's log.
    pub async fn wait_for_ack(
        &self,
        end_offset: i64,
        leadership: u64,
        acks: i16,
        deadline: tokio::time::Instant,
    ) -> Result<(), ResponseError> {
        let lost = || !self.is_leader() || self.leadership() != leadership;
        let replicated = self.replicated.load(Ordering::Acquire);
        let local_only = replicated && acks != -1;
        let mut rx = self.state.subscribe();
        let waited = tokio::time::timeout_at(
            deadline,
            rx.wait_for(|s| {
                s.failed
                    || lost()
                    || if local_only {
                        s.local_end >= end_offset
                    } else {
                        s.high_watermark >= end_offset
                    }
            }),
        )
        .await;
        match waited {
            Ok(Ok(s)) if s.failed => Err(ResponseError::KafkaStorageError),
            Ok(Ok(_)) if lost() => Err(ResponseError::NotLeaderOrFollower),
            Ok(Ok(_)) if replicated && !local_only => self.check_enough_replicas_after_append(),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ResponseError::NotLeaderOrFollower),
            Err(_) => Err(ResponseError::RequestTimedOut),
        }
    }

    /// The ISR, replicas and partition epoch (empty outside cluster mode).
    pub fn replica_set(&self) -> (Vec<i32>, Vec<i32>, i32) {
        let a = self.assignment();
        (a.replicas.clone(), a.isr.clone(), a.partition_epoch)
    }

    pub fn topic_id(&self) -> Uuid {
        self.assignment().topic_id
    }

    /// The leader's id and address for KIP-951 hints, when another node leads.
    pub fn leader_endpoint(&self) -> Option<(i32, String)> {
        self.assignment().leader_endpoint.clone()
    }

    /// This node is no longer a replica (or not yet): clients and
    /// followers are answered NOT_LEADER_OR_FOLLOWER.
    pub fn stop_serving(&self) {
        {
            let _appends = self.lock();
            self.stop_leading_under_lock();
        }
        self.leader_id.store(-1, Ordering::Release);
        self.replicated.store(false, Ordering::Release);
        let mut a = self.assignment();
        a.hosted = false;
        a.followers.clear();
        a.pending_isr = None;
        a.leader_endpoint = None;
        drop(a);
        // Waiting acknowledgements see the lost leadership.
        self.state.send_modify(|_| {});
    }

    pub fn is_hosted(&self) -> bool {
        self.assignment().hosted
    }

    /// Kafka's `Partition.makeLeader` from a registration: the epoch is
    /// stamped on later appends, the followers' state reset when the epoch
    /// is new, the replica set and ISR taken. Returns false for a stale
    /// leader epoch (nothing changes); idempotent for the same input.
    pub fn become_leader(
        &self,
        local_id: i32,
        topic_id: Uuid,
        reg: &PartitionRegistration,
    ) -> Result<bool, PartitionError> {
        let was_leader = self.is_leader() && self.is_hosted();
        let new_epoch = !was_leader || reg.leader_epoch > self.leader_epoch();
        if reg.leader_epoch < self.leader_epoch() {
            return Ok(false);
        }
        {
            let a = self.assignment();
            if !new_epoch && a.partition_epoch > reg.partition_epoch {
                return Ok(false);
            }
        }
        if new_epoch && !self.make_leader(reg.leader_epoch)? {
            return Ok(false);
        }
        let end = self.log_end_offset().ok_or(PartitionError::Closed)?;
        let now = now_ms();
        {
            let mut a = self.assignment();
            a.hosted = true;
            a.topic_id = topic_id;
            a.local_id = local_id;
            a.replicas = reg.replicas.clone();
            a.isr = reg.isr.clone();
            a.partition_epoch = reg.partition_epoch;
            a.pending_isr = None;
            a.leader_endpoint = None;
            if new_epoch {
                a.epoch_start_offset = end;
                a.followers.clear();
            }
            let followers: Vec<i32> = reg
                .replicas
                .iter()
                .copied()
                .filter(|r| *r != local_id)
                .collect();
            a.followers.retain(|id, _| followers.contains(id));
            for f in &followers {
                let in_sync = reg.isr.contains(f);
                a.followers
                    .entry(*f)
                    .or_insert_with(|| ReplicaState::reset(now, in_sync));
            }
            self.replicated
                .store(!followers.is_empty(), Ordering::Release);
            if followers.is_empty() {
                // The only replica: everything it has (fsynced, in durable
                // mode) is committed, whatever a restart restored.
                self.state.send_if_modified(|s| {
                    let moved = s.high_watermark < s.local_end;
                    s.high_watermark = s.high_watermark.max(s.local_end);
                    moved
                });
            }
        }
        self.maybe_increment_high_watermark();
        Ok(true)
    }

    /// A cluster replica's high watermark at start, from the
    /// replication-offset checkpoint (Kafka's `highWatermarkCheckpoints`;
    /// none: the log start), within the log: what lies above it is served
    /// to consumers only once the ISR has it again. Before the image makes
    /// the replica a leader or follower.
    pub fn restore_high_watermark(&self, checkpointed: Option<i64>) {
        self.state.send_modify(|s| {
            let hw = checkpointed.unwrap_or(s.log_start_offset);
            s.high_watermark = hw.max(s.log_start_offset).min(s.local_end);
        });
    }

    /// Kafka's `Partition.makeFollower` from a registration. Returns
    /// whether the leader or its epoch changed (the fetcher must truncate
    /// and start over), `None` for a stale epoch.
    pub fn become_follower(
        &self,
        local_id: i32,
        topic_id: Uuid,
        reg: &PartitionRegistration,
        leader_endpoint: Option<String>,
    ) -> Option<bool> {
        let hosted = self.is_hosted();
        let changed = !hosted
            || self.is_leader()
            || self.leader_id() != reg.leader
            || self.leader_epoch() != reg.leader_epoch;
        if !self.make_follower(reg.leader, reg.leader_epoch) {
            return None;
        }
        self.replicated.store(false, Ordering::Release);
        let mut a = self.assignment();
        a.hosted = true;
        a.topic_id = topic_id;
        a.local_id = local_id;
        a.replicas = reg.replicas.clone();
        a.isr = reg.isr.clone();
        a.partition_epoch = reg.partition_epoch;
        a.pending_isr = None;
        a.followers.clear();
        a.leader_endpoint = leader_endpoint.map(|e| (reg.leader, e));
        drop(a);
        if changed {
            // Waiting acknowledgements see the lost leadership.
            self.state.send_modify(|_| {});
        }
        Some(changed)
    }

    /// A follower's fetch (Kafka's `updateFollowerFetchState`): its fetch
    /// offset becomes its log end offset at this leader epoch. Refused with
    /// NOT_LEADER_OR_FOLLOWER when this node does not lead, UNKNOWN_LEADER_EPOCH
    /// (or NOT_LEADER_OR_FOLLOWER without a current epoch) when the replica is
    /// not assigned, NOT_LEADER_OR_FOLLOWER for a stale broker epoch. May
    /// return an ISR expansion to propose.
    pub fn record_follower_fetch(
        &self,
        replica_id: i32,
        fetch_offset: i64,
        follower_log_start: i64,
        broker_epoch: i64,
        has_current_epoch: bool,
    ) -> Result<FetchOutcome, ResponseError> {
        if !self.is_leader() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        let leader_end = self
            .log_end_offset()
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        let hw = self.state().high_watermark;
        let now = now_ms();
        let leader_epoch = self.leader_epoch();
        let (proposal, moved) = {
            let mut a = self.assignment();
            let epoch_start = a.epoch_start_offset;
            let Some(r) = a.followers.get_mut(&replica_id) else {
                return Err(if has_current_epoch {
                    ResponseError::UnknownLeaderEpoch
                } else {
                    ResponseError::NotLeaderOrFollower
                });
            };
            if broker_epoch != -1 && broker_epoch < r.broker_epoch {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            let before = r.log_end_offset;
            r.last_caught_up_time_ms = if fetch_offset >= leader_end {
                r.last_caught_up_time_ms.max(now)
            } else if fetch_offset >= r.last_fetch_leader_log_end_offset {
                r.last_caught_up_time_ms.max(r.last_fetch_time_ms)
            } else {
                r.last_caught_up_time_ms
            };
            r.log_end_offset = fetch_offset;
            r.log_start_offset = follower_log_start;
            r.last_fetch_leader_log_end_offset = leader_end;
            r.last_fetch_time_ms = now;
            r.broker_epoch = broker_epoch;
            let leo = r.log_end_offset;
            // Kafka's `isFollowerInSync`, proposed only with no change in flight.
            let expand = a.pending_isr.is_none()
                && !a.isr.contains(&replica_id)
                && leo >= hw
                && leo >= epoch_start
                && a.is_eligible(replica_id, broker_epoch);
            let proposal = expand.then(|| {
                let mut new_isr = a.isr.clone();
                new_isr.push(replica_id);
                a.pending_isr = Some(new_isr.clone());
                IsrProposal {
                    topic_id: a.topic_id,
                    partition: self.index,
                    leader_epoch,
                    partition_epoch: a.partition_epoch,
                    new_isr,
                }
            });
            (proposal, before != leo)
        };
        if moved || proposal.is_some() {
            self.maybe_increment_high_watermark();
        }
        Ok(proposal)
    }

    /// Kafka's `maybeIncrementLeaderHW`: the smallest log end over the
    /// maximal ISR and the caught-up followers about to join it, the
    /// leader's own counted only as far as it is durable; never while under
    /// min.insync.replicas; never backwards.
    pub fn maybe_increment_high_watermark(&self) {
        if !self.is_leader() || !self.replicated.load(Ordering::Acquire) {
            return;
        }
        let Some(leader_end) = self.log_end_offset() else {
            return;
        };
        let local = self.state().local_end.min(leader_end);
        let now = now_ms();
        let lag = self.replica_lag_time_max_ms();
        let new_hw = {
            let min = self.settings().min_insync_replicas;
            let a = self.assignment();
            if a.isr.len() < a.effective_min_isr(min) {
                return;
            }
            let maximal = a.maximal_isr();
            let mut hw = local;
            for (id, r) in &a.followers {
                let counts = maximal.contains(id)
                    || (r.is_caught_up(leader_end, now, lag) && a.is_eligible(*id, r.broker_epoch));
                if counts && r.log_end_offset < hw {
                    hw = r.log_end_offset;
                }
            }
            hw
        };
        self.state.send_if_modified(|s| {
            let moved = s.high_watermark < new_hw;
            s.high_watermark = s.high_watermark.max(new_hw);
            moved
        });
    }

    /// New broker registrations from the metadata image: who may be in an
    /// ISR. A fenced broker that was holding the high watermark back as a
    /// caught-up follower stops doing so at once.
    pub fn set_eligible_replicas(&self, eligible: Arc<BTreeMap<i32, i64>>) {
        self.assignment().eligible = Some(eligible);
        self.maybe_increment_high_watermark();
    }

    fn replica_lag_time_max_ms(&self) -> i64 {
        self.replica_lag_ms.load(Ordering::Relaxed)
    }

    pub fn set_replica_lag_time_max_ms(&self, ms: i64) {
        self.replica_lag_ms.store(ms, Ordering::Relaxed);
    }

    /// Kafka's `getOutOfSyncReplicas` turned into a shrink proposal: ISR
    /// followers that have not caught up within `replica.lag.time.max.ms`,
    /// none while a change is in flight.
    pub fn maybe_shrink_isr(&self) -> Option<IsrProposal> {
        if !self.is_leader() || !self.replicated.load(Ordering::Acquire) {
            return None;
        }
        let leader_end = self.log_end_offset()?;
        let now = now_ms();
        let lag = self.replica_lag_time_max_ms();
        let leader_epoch = self.leader_epoch();
        let mut a = self.assignment();
        if a.pending_isr.is_some() {
            return None;
        }
        let local = a.local_id;
        let out: Vec<i32> = a
            .isr
            .iter()
            .copied()
            .filter(|id| *id != local)
            .filter(|id| {
                a.followers
                    .get(id)
                    .is_none_or(|r| !r.is_caught_up(leader_end, now, lag))
            })
            .collect();
        if out.is_empty() {
            return None;
        }
        let new_isr: Vec<i32> = a.isr.iter().copied().filter(|r| !out.contains(r)).collect();
        // The committed ISR stays the maximal one while the shrink is in flight.
        a.pending_isr = Some(Vec::new());
        tracing::info!(topic = %self.topic, partition = self.index, isr = ?a.isr, out_of_sync = ?out, "shrinking ISR");
        Some(IsrProposal {
            topic_id: a.topic_id,
            partition: self.index,
            leader_epoch,
            partition_epoch: a.partition_epoch,
            new_isr,
        })
    }

    /// The controller's answer to a proposal: a committed ISR at this
    /// leader epoch replaces ours (when newer); any answer ends the
    /// in-flight state so the next check may propose again.
    pub fn complete_isr_change(&self, answer: Result<CommittedIsr, ResponseError>) {
        {
            let mut a = self.assignment();
            a.pending_isr = None;
            match &answer {
                Ok(c)
                    if c.leader_epoch == self.leader_epoch()
                        && c.partition_epoch > a.partition_epoch =>
                {
                    tracing::info!(topic = %self.topic, partition = self.index, isr = ?c.isr, partition_epoch = c.partition_epoch, "ISR updated");
                    a.isr = c.isr.clone();
                    a.partition_epoch = c.partition_epoch;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(topic = %self.topic, partition = self.index, error = ?e, "ISR change not made");
                }
            }
        }
        self.maybe_increment_high_watermark();
    }

    /// Kafka's `checkEnoughReplicasReachOffset` once the high watermark has
    /// passed an acks=all append: NOT_ENOUGH_REPLICAS_AFTER_APPEND when the
    /// maximal ISR fell below min.insync.replicas meanwhile.
    pub fn check_enough_replicas_after_append(&self) -> Result<(), ResponseError> {
        if !self.replicated.load(Ordering::Acquire) {
            return Ok(());
        }
        let min = self.settings().min_insync_replicas;
        let a = self.assignment();
        if a.maximal_isr().len() < a.effective_min_isr(min) {
            Err(ResponseError::NotEnoughReplicasAfterAppend)
        } else {
            Ok(())
        }
    }

    pub fn is_replicated(&self) -> bool {
        self.replicated.load(Ordering::Acquire)
    }

    /// The followers' state (tests and DescribeQuorum-like views).
    pub fn follower_states(&self) -> BTreeMap<i32, ReplicaState> {
        self.assignment().followers.clone()
    }
}

impl Partition {
    /// The latest epoch in the local leader-epoch cache (the fetcher's
    /// OffsetForLeaderEpoch question); `None` for an empty cache.
    pub fn latest_local_epoch(&self) -> Option<i32> {
        self.lock()
            .as_ref()
            .and_then(|p| p.log.leader_epochs().latest_epoch())
    }
}

/// KIP-951's new-leader hint for a NOT_LEADER_OR_FOLLOWER answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderHint {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub host: String,
    pub port: i32,
}

impl Partition {
    /// The leader this follower knows, with its address, if any.
    pub fn leader_hint(&self) -> Option<LeaderHint> {
        let (leader_id, endpoint) = self.leader_endpoint()?;
        let (host, port) = endpoint.rsplit_once(':')?;
        Some(LeaderHint {
            leader_id,
            leader_epoch: self.leader_epoch(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: port.parse().ok()?,
        })
    }
}
