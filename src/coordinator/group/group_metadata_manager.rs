//! Kafka's `GroupMetadataManager` for classic groups: membership and the
//! rebalance protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), static
//! membership, the timers that drive rebalances and expire sessions, and
//! ListGroups / DescribeGroups. It owns every group's `ClassicGroup` state;
//! committed offsets are the `OffsetMetadataManager`'s. KIP-848 consumer
//! groups and share groups will be managed beside the classic path here.
//!
//! Every operation runs under the coordinator's lock and may append the
//! group's new state (GroupMetadata record) through the `CoordinatorWriter`
//! before answering; answers that depend on it carry a `DurableWait`.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::api::{
    code, Answer, Committer, DescribedMember, GroupDescription, GroupListing, JoinOutcome,
    JoinParams, SyncOutcome, SyncParams, MAX_PROTOCOL_METADATA_BYTES,
};
use super::classic_group::{ClassicGroup, GroupState, CONSUMER_PROTOCOL_TYPE};
use super::classic_rebalance::reschedule_heartbeat;
use super::consumer::group::ConsumerGroup;
use super::consumer::TopicResolver;
use super::coordinator::GroupConfig;
use super::offset_metadata_manager::OffsetMetadataManager;
use super::offsets::ExpirationBase;
use super::record_serde;
use super::streams::StreamsGroup;
use super::timers::{Timer, Timers};
use super::writer::{map_append_error, record, CoordRecord, CoordinatorWriter};
use crate::util::now_ms;

/// The first TxnOffsetCommit version whose clients know GROUP_ID_NOT_FOUND
/// and STALE_MEMBER_EPOCH (Kafka's `TxnOffsetCommitRequest`
/// `supportsGroupIdNotFoundError` and `supportsStaleMemberEpochError`).
const TXN_GROUP_ERRORS_SINCE: i16 = 6;

/// What the membership code reads besides the groups: the coordinator's
/// settings, and the writer that makes group state durable.
pub struct Cx<'a> {
    pub config: &'a GroupConfig,
    pub writer: &'a CoordinatorWriter,
}

/// Whether a group subscribes to a topic (OffsetDelete's check).
pub type SubscribedTo<'a> = Box<dyn Fn(&str) -> bool + 'a>;

/// Every group on this coordinator (a group id is either a classic or a
/// consumer group) and their timers.
#[derive(Default)]
pub struct GroupMetadataManager {
    pub groups: HashMap<String, ClassicGroup>,
    /// KIP-848 consumer groups (see `consumer::heartbeat`).
    pub consumer_groups: HashMap<String, ConsumerGroup>,
    /// KIP-932 share groups (see `share`), in memory only.
    pub share_groups: super::share::ShareGroups,
    /// KIP-1071 streams groups (see `streams`), in memory only.
    pub streams_groups: BTreeMap<String, StreamsGroup>,
    /// The last hash computed per subscribed topic (Kafka's
    /// `topicHashCache`), for the group hash after a member is fenced.
    pub topic_hashes: HashMap<String, i64>,
    /// Topic names by id as the last join or heartbeat resolved them: a
    /// downgrade names its members' assignments with them.
    pub topic_names: HashMap<uuid::Uuid, String>,
    pub timers: Timers,
}

impl GroupMetadataManager {
    // -----------------------------------------------------------------
    // JoinGroup
    // -----------------------------------------------------------------

    /// JoinGroup. `offsets` tells whether a group holds committed offsets
    /// (such a group must not be forgotten when a join fails).
    pub fn join_group(
        &mut self,
        cx: &Cx,
        offsets: &OffsetMetadataManager,
        p: JoinParams,
        topics: &dyn TopicResolver,
    ) -> Answer<JoinOutcome> {
        if p.group_id.is_empty() {
            return Answer::Now(JoinOutcome::error(
                ResponseError::InvalidGroupId,
                &p.member_id,
            ));
        }
        if p.session_timeout_ms < cx.config.min_session_timeout_ms
            || p.session_timeout_ms > cx.config.max_session_timeout_ms
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
        if self.share_groups.groups.contains_key(&p.group_id) {
            // Kafka: a classic member cannot join a share group.
            return Answer::Now(JoinOutcome::error(
                ResponseError::InconsistentGroupProtocol,
                &p.member_id,
            ));
        }
        if let Some(sg) = self.streams_groups.get(&p.group_id) {
            if !sg.is_empty() {
                // Kafka 4.4's classicGroupJoin: no member id given back.
                return Answer::Now(JoinOutcome::error(
                    ResponseError::InconsistentGroupProtocol,
                    "",
                ));
            }
            // An empty streams group becomes a classic group (Kafka 4.4):
            // its records are deleted first (offsets stay).
            let records: Result<Vec<_>, _> =
                super::streams::records::diff(&p.group_id, Some(sg), None)
                    .iter()
                    .map(|r| r.encode())
                    .collect();
            let written = match records {
                Ok(records) => cx
                    .writer
                    .append(&p.group_id, &records)
                    .map_err(|e| map_append_error(e, false)),
                Err(e) => {
                    tracing::warn!(group = %p.group_id, error = %e, "a streams group record cannot be serialized");
                    Err(code(ResponseError::UnknownServerError))
                }
            };
            if let Err(e) = written {
                return Answer::Now(JoinOutcome::error_code(e, &p.member_id));
            }
            tracing::info!(group = %p.group_id, "converted the empty streams group to a classic group");
            self.remove_group(&p.group_id, now_ms());
        }
        if let Some(cg) = self.consumer_groups.get(&p.group_id) {
            if !cg.is_empty() {
                // The classic member joins the consumer group (KIP-848's
                // online migration).
                return Answer::Now(self.classic_join_to_consumer_group(cx, p, topics));
            }
            // An empty consumer group becomes a classic group, as in
            // Kafka: its records are deleted first (offsets stay).
            let records: Result<Vec<_>, _> = cg.tombstones().iter().map(|r| r.encode()).collect();
            let written = match records {
                Ok(records) => cx
                    .writer
                    .append(&p.group_id, &records)
                    .map_err(|e| map_append_error(e, false)),
                Err(e) => {
                    tracing::warn!(group = %p.group_id, error = %e, "a consumer group record cannot be serialized");
                    Err(code(ResponseError::UnknownServerError))
                }
            };
            if let Err(e) = written {
                return Answer::Now(JoinOutcome::error_code(e, &p.member_id));
            }
            tracing::info!(group = %p.group_id, "converted the empty consumer group to a classic group");
            self.remove_group(&p.group_id, now_ms());
        }
        let Self { groups, timers, .. } = self;
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
        let answer = if !g.accept_joining_member(&p.member_id, cx.config.max_size) {
            Answer::Now(JoinOutcome::error(
                ResponseError::GroupMaxSizeReached,
                &p.member_id,
            ))
        } else if is_unknown {
            cx.join_new_member(g, timers, p)
        } else {
            cx.join_existing_member(g, timers, p)
        };
        // A group created for a join that failed holds nothing: drop it.
        let gid = g.group_id.clone();
        if g.holds_nothing() && !offsets.has_group(&gid) {
            groups.remove(&gid);
        }
        answer
    }

    // -----------------------------------------------------------------
    // SyncGroup
    // -----------------------------------------------------------------

    pub fn sync_group(
        &mut self,
        cx: &Cx,
        p: SyncParams,
        topics: &dyn TopicResolver,
    ) -> Answer<SyncOutcome> {
        if self.consumer_groups.contains_key(p.group_id) {
            return Answer::Now(self.classic_sync_to_consumer_group(&p, topics));
        }
        let SyncParams {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
            protocol_type,
            protocol_name,
            assignments,
        } = p;
        if group_id.is_empty() {
            return Answer::Now(SyncOutcome::error(ResponseError::InvalidGroupId));
        }
        let Self { groups, timers, .. } = self;
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
                    cx.apply_leader_assignment(g, timers, assignments);
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
        answer
    }

    // -----------------------------------------------------------------
    // Heartbeat / LeaveGroup
    // -----------------------------------------------------------------

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> i16 {
        if group_id.is_empty() {
            return code(ResponseError::InvalidGroupId);
        }
        if self.consumer_groups.contains_key(group_id) {
            return self.classic_heartbeat_to_consumer_group(
                group_id,
                generation_id,
                member_id,
                group_instance_id,
            );
        }
        let Self { groups, timers, .. } = self;
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
        &mut self,
        cx: &Cx,
        group_id: &str,
        leaving: Vec<(String, Option<String>)>,
    ) -> (i16, Vec<(String, Option<String>, i16)>) {
        if group_id.is_empty() {
            return (code(ResponseError::InvalidGroupId), Vec::new());
        }
        if self.consumer_groups.contains_key(group_id) {
            return (
                0,
                self.classic_leave_to_consumer_group(cx, group_id, leaving),
            );
        }
        let Self { groups, timers, .. } = self;
        let Some(g) = groups.get_mut(group_id) else {
            // as Kafka 4.4: no top-level error, every member unknown
            let unknown = code(ResponseError::UnknownMemberId);
            let results = leaving.into_iter().map(|(m, i)| (m, i, unknown)).collect();
            return (0, results);
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
                        cx.remove_member_and_update(g, timers, &existing);
                        0
                    }
                },
                None => {
                    if let Some(key) = g.pending_members.remove(&member_id) {
                        timers.cancel(Some(key));
                        cx.maybe_complete_join(g, timers);
                        0
                    } else if g.members.contains_key(&member_id) {
                        tracing::info!(group = %group_id, member = %member_id, "member left the group");
                        cx.remove_member_and_update(g, timers, &member_id);
                        0
                    } else {
                        code(ResponseError::UnknownMemberId)
                    }
                }
            };
            results.push((member_id, instance, err));
        }
        (0, results)
    }

    // -----------------------------------------------------------------
    // admin: ListGroups, DescribeGroups, DeleteGroups, OffsetDelete
    // -----------------------------------------------------------------

    pub fn list_groups(&self) -> Vec<GroupListing> {
        let mut out: Vec<GroupListing> = self
            .groups
            .values()
            .filter(|g| !g.is(GroupState::Dead))
            .map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
                group_type: "classic",
            })
            .chain(self.consumer_groups.values().map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
                state: g.state().name(),
                group_type: "consumer",
            }))
            .chain(self.share_groups.groups.values().map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: "share".to_string(),
                state: g.state(),
                group_type: "share",
            }))
            .chain(self.streams_groups.values().map(|g| GroupListing {
                group_id: g.group_id.clone(),
                // Kafka lists a streams group with the protocol type "streams".
                protocol_type: "streams".to_string(),
                state: g.state().name(),
                group_type: "streams",
            }))
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DescribeGroups of one group; Err: Kafka's message why there is no
    /// such classic group.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, String> {
        if self.consumer_groups.contains_key(group_id) || self.streams_groups.contains_key(group_id)
        {
            return Err(format!("Group {group_id} is not a classic group."));
        }
        let g = self
            .groups
            .get(group_id)
            .filter(|g| !g.is(GroupState::Dead))
            .ok_or_else(|| format!("Group {group_id} not found."))?;
        let stable = g.is(GroupState::Stable);
        let protocol = g.protocol_name.clone().unwrap_or_default();
        Ok(GroupDescription {
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

    // -----------------------------------------------------------------
    // the group's side of offset commits and deletions
    // -----------------------------------------------------------------

    /// ClassicGroup.validateOffsetCommit for OffsetCommit. A commit without
    /// a generation to an unknown group creates the "simple" group that
    /// holds such offsets, as Kafka does; a member's commit extends its
    /// session.
    pub fn validate_offset_commit(
        &mut self,
        c: &Committer,
        api_version: i16,
        now: i64,
    ) -> Result<(), i16> {
        if let Some(g) = self.streams_groups.get(c.group_id) {
            return g
                .validate_member_epoch(c.member_id, c.generation_id)
                .map_err(code);
        }
        if let Some(g) = self.consumer_groups.get(c.group_id) {
            return g
                .validate_offset_commit(
                    c.member_id,
                    c.group_instance_id,
                    c.generation_id,
                    false,
                    api_version,
                )
                .map_err(code);
        }
        let Self { groups, timers, .. } = self;
        if !groups.contains_key(c.group_id) {
            if c.generation_id < 0 {
                // A simple consumer or the admin client.
                groups.insert(
                    c.group_id.to_string(),
                    ClassicGroup::new(c.group_id.to_string(), now),
                );
            } else if api_version >= 9 {
                return Err(code(ResponseError::GroupIdNotFound));
            } else {
                return Err(code(ResponseError::IllegalGeneration));
            }
        }
        let Some(g) = groups.get_mut(c.group_id) else {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        };
        if g.is(GroupState::Dead) {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        if !(c.generation_id < 0 && g.is(GroupState::Empty)) {
            if c.generation_id >= 0 || !c.member_id.is_empty() || c.group_instance_id.is_some() {
                g.validate_member(c.member_id, c.group_instance_id)
                    .map_err(code)?;
                if c.generation_id != g.generation_id {
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
            if let Some(m) = g.members.get_mut(c.member_id) {
                reschedule_heartbeat(timers, &gid, m);
            }
        }
        Ok(())
    }

    /// For TxnOffsetCommit: an unknown group gets a simple group when the
    /// commit has no generation (true: created), else ILLEGAL_GENERATION,
    /// from v6 GROUP_ID_NOT_FOUND (Kafka's `supportsGroupIdNotFoundError`).
    pub fn get_or_create_simple_group(
        &mut self,
        c: &Committer,
        now: i64,
        api_version: i16,
    ) -> Result<bool, i16> {
        if self.groups.contains_key(c.group_id)
            || self.consumer_groups.contains_key(c.group_id)
            || self.streams_groups.contains_key(c.group_id)
        {
            return Ok(false);
        }
        if c.generation_id >= 0 {
            return Err(code(if api_version >= TXN_GROUP_ERRORS_SINCE {
                ResponseError::GroupIdNotFound
            } else {
                ResponseError::IllegalGeneration
            }));
        }
        self.groups.insert(
            c.group_id.to_string(),
            ClassicGroup::new(c.group_id.to_string(), now),
        );
        Ok(true)
    }

    /// ClassicGroup.validateOffsetCommit with isTransactional: no member
    /// check for requests without member and generation (v0-2), and no
    /// REBALANCE_IN_PROGRESS; the session is not extended. A streams or
    /// consumer group member's stale epoch is ILLEGAL_GENERATION before v6,
    /// STALE_MEMBER_EPOCH from v6 (Kafka's `supportsStaleMemberEpochError`).
    pub fn validate_txn_offset_commit(&self, c: &Committer, api_version: i16) -> Result<(), i16> {
        let stale = |e: ResponseError| match e {
            ResponseError::StaleMemberEpoch if api_version < TXN_GROUP_ERRORS_SINCE => {
                code(ResponseError::IllegalGeneration)
            }
            e => code(e),
        };
        if let Some(g) = self.streams_groups.get(c.group_id) {
            return g
                .validate_member_epoch(c.member_id, c.generation_id)
                .map_err(stale);
        }
        if let Some(g) = self.consumer_groups.get(c.group_id) {
            return g
                .validate_offset_commit(
                    c.member_id,
                    c.group_instance_id,
                    c.generation_id,
                    true,
                    api_version,
                )
                .map_err(stale);
        }
        let Some(g) = self.groups.get(c.group_id) else {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        };
        if g.is(GroupState::Dead) {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        let simple = c.generation_id < 0 && g.is(GroupState::Empty);
        let identified =
            c.generation_id >= 0 || !c.member_id.is_empty() || c.group_instance_id.is_some();
        if !simple && identified {
            g.validate_member(c.member_id, c.group_instance_id)
                .map_err(code)?;
            if c.generation_id != g.generation_id {
                return Err(code(ResponseError::IllegalGeneration));
            }
        }
        Ok(())
    }

    /// Drops a group that holds nothing (the caller checked it has no
    /// offsets either).
    pub fn forget_if_unused(&mut self, group_id: &str) {
        if self.groups.get(group_id).is_some_and(|g| g.holds_nothing()) {
            self.groups.remove(group_id);
        }
    }

    /// A group that exists and is not Dead (GROUP_ID_NOT_FOUND otherwise).
    fn live_group(&self, group_id: &str) -> Result<&ClassicGroup, i16> {
        self.groups
            .get(group_id)
            .filter(|g| !g.is(GroupState::Dead))
            .ok_or(code(ResponseError::GroupIdNotFound))
    }

    /// DeleteGroups: only an Empty group may go.
    pub fn check_deletable(&self, group_id: &str) -> Result<(), i16> {
        if let Some(g) = self.streams_groups.get(group_id) {
            return if g.is_empty() {
                Ok(())
            } else {
                Err(code(ResponseError::NonEmptyGroup))
            };
        }
        if let Some(g) = self.consumer_groups.get(group_id) {
            return if g.is_empty() {
                Ok(())
            } else {
                Err(code(ResponseError::NonEmptyGroup))
            };
        }
        if let Some(g) = self.share_groups.groups.get(group_id) {
            // Kafka's `ShareGroup.validateDeleteGroup`: Empty only.
            return if g.members.is_empty() {
                Ok(())
            } else {
                Err(code(ResponseError::NonEmptyGroup))
            };
        }
        let g = self.live_group(group_id)?;
        if g.is(GroupState::Empty) {
            Ok(())
        } else {
            Err(code(ResponseError::NonEmptyGroup))
        }
    }

    /// Removes a deleted or expired group (its tombstone was written): its
    /// timers go, and it is Dead to anyone still holding it.
    pub fn remove_group(&mut self, group_id: &str, now: i64) {
        self.streams_groups.remove(group_id);
        if let Some(g) = self.consumer_groups.remove(group_id) {
            for t in g.timers.values() {
                self.timers.cancel(t.session);
                self.timers.cancel(t.rebalance);
            }
        }
        if let Some(mut g) = self.groups.remove(group_id) {
            for (_, k) in g.pending_members.drain() {
                self.timers.cancel(Some(k));
            }
            self.timers.cancel(g.join_timer.take());
            self.timers.cancel(g.sync_timer.take());
            g.transition(GroupState::Dead, now);
        }
    }

    /// OffsetDelete: the topics whose offsets may not be deleted because
    /// the group subscribes to them (a non-empty classic group only if it
    /// uses the consumer protocol, whose subscriptions are known; a
    /// consumer group always).
    pub fn check_offset_delete(&self, group_id: &str) -> Result<SubscribedTo<'_>, i16> {
        if let Some(g) = self.streams_groups.get(group_id) {
            // Kafka's StreamsGroup: a topic is in use while the group has
            // members and its topology reads it.
            return Ok(Box::new(|t: &str| {
                !g.is_empty()
                    && g.subtopologies.iter().any(|s| {
                        s.source_topics.iter().any(|x| x == t)
                            || s.repartition_source_topics.iter().any(|x| x.name == t)
                    })
            }));
        }
        if let Some(g) = self.consumer_groups.get(group_id) {
            return Ok(Box::new(|t: &str| g.is_subscribed_to(t)));
        }
        let g = self.live_group(group_id)?;
        if !g.is(GroupState::Empty) && g.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return Err(code(ResponseError::NonEmptyGroup));
        }
        Ok(Box::new(|t: &str| g.is_subscribed_to(t)))
    }

    /// Kafka's `cleanupGroupMetadata` for consumer groups
    /// (`OffsetMetadataManager.cleanupExpiredOffsets`, `maybeDeleteGroup`):
    /// offsets of topics no member subscribes to expire from their commit,
    /// and an empty group whose offsets all expired (or that has none) is
    /// deleted with its records' tombstones, after the offsets' ones.
    pub fn expire_consumer_groups(
        &mut self,
        writer: &CoordinatorWriter,
        offsets: &mut OffsetMetadataManager,
        retention_ms: i64,
        now: i64,
    ) {
        let mut dead = Vec::new();
        for g in self.consumer_groups.values() {
            let subscribed = g.subscribed_topic_names(None, None).into_iter().collect();
            let base = ExpirationBase::Unsubscribed(subscribed);
            let expired = offsets.expired(&g.group_id, &base, retention_ms, now);
            let delete = g.is_empty() && offsets.only_these(&g.group_id, &expired);
            let tombstones = if delete { g.tombstones() } else { Vec::new() };
            let records: Result<Vec<CoordRecord>, ResponseError> = expired
                .iter()
                .map(|(t, p)| record(record_serde::offset_key(&g.group_id, t, *p), None))
                .chain(
                    tombstones
                        .iter()
                        .map(|r| record(r.encode().map(|(k, _)| k), None)),
                )
                .collect();
            if records.as_ref().is_ok_and(|r| r.is_empty()) {
                continue;
            }
            match records.and_then(|records| writer.append(&g.group_id, &records)) {
                Ok(_) => {
                    offsets.remove(&g.group_id, &expired);
                    if !expired.is_empty() {
                        tracing::info!(group = %g.group_id, removed = expired.len(), "expired committed offsets");
                    }
                    if delete {
                        tracing::info!(group = %g.group_id, "deleted the empty consumer group: its offsets expired");
                        dead.push(g.group_id.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %g.group_id, error = ?e, "writing offset expiration failed")
                }
            }
        }
        for id in dead {
            self.remove_group(&id, now);
            offsets.remove_group(&id);
        }
    }

    /// Fires every due timer; returns the next deadline. `offsets` as for
    /// [`Self::join_group`].
    pub fn fire_expired_timers(
        &mut self,
        cx: &Cx,
        offsets: &OffsetMetadataManager,
    ) -> Option<Instant> {
        let now = Instant::now();
        loop {
            let (key, timer) = match self.timers.pop_due(now) {
                Ok(due) => due,
                Err(next) => return next,
            };
            let Self { groups, timers, .. } = self;
            match timer {
                Timer::ConsumerSession { .. }
                | Timer::ConsumerRebalance { .. }
                | Timer::ConsumerClassicJoin { .. }
                | Timer::ConsumerClassicSync { .. } => self.on_consumer_timer(cx, key, timer),
                Timer::StreamsInitialRebalance { group } => {
                    super::streams::service::on_initial_rebalance_timer(
                        cx.writer,
                        &mut self.streams_groups,
                        &group,
                        key,
                    )
                }
                Timer::Heartbeat { group, member } => {
                    cx.on_heartbeat_expired(groups, timers, offsets, &group, &member, key)
                }
                Timer::Join { group } => {
                    if let Some(g) = groups.get_mut(&group) {
                        if g.join_timer == Some(key) {
                            cx.on_join_timer(g, timers);
                        }
                    }
                }
                Timer::Sync { group, generation } => {
                    if let Some(g) = groups.get_mut(&group) {
                        if g.sync_timer == Some(key) {
                            g.sync_timer = None;
                            cx.on_sync_expired(g, timers, generation);
                        }
                    }
                }
            }
        }
    }
}
