//! The classic rebalance state machine (Kafka's `GroupMetadataManager`
//! classic-group paths and `ClassicGroup` transitions): members joining,
//! static members replacing their old incarnation, the join phase and its
//! initial delay, completing a generation, the leader's assignment, and
//! what expired sessions and missed syncs do to a group. Everything here
//! runs under the coordinator's lock, called from `GroupMetadataManager`.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::api::{Answer, JoinMember, JoinOutcome, JoinParams, SyncOutcome};
use super::classic_group::{ClassicGroup, GroupState};
use super::group_metadata_manager::Cx;
use super::member::ClassicGroupMember;
use super::offset_metadata_manager::OffsetMetadataManager;
use super::record_serde;
use super::timers::{Timer, TimerKey, Timers};
use super::writer::{map_append_error, record, DurableWait};
use crate::protocol::schema::MAX_STRING_LEN;
use crate::util::now_ms;

impl Cx<'_> {
    /// Writes the group's GroupMetadata record.
    pub(super) fn store_group(&self, g: &mut ClassicGroup) -> Result<DurableWait, ResponseError> {
        let r = record(
            record_serde::group_key(&g.group_id),
            Some(record_serde::group_value(&g.to_value())),
        )?;
        let w = self.writer.append(&g.group_id, &[r])?;
        g.persisted = true;
        Ok(w)
    }

    pub(super) fn join_new_member(
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
        if new_id.len() > MAX_STRING_LEN {
            // A 32,767-byte client or instance id leaves no room for the
            // suffix: Kafka fails to serialize such a member id and answers
            // UNKNOWN_SERVER_ERROR; it must never be cut short instead.
            return Answer::Now(JoinOutcome::error(ResponseError::UnknownServerError, ""));
        }
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

    pub(super) fn join_existing_member(
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

    pub(super) fn current_join_outcome(
        &self,
        g: &ClassicGroup,
        member_id: &str,
        skip: bool,
    ) -> JoinOutcome {
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

    pub(super) fn add_member(
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

    pub(super) fn update_member(
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
    pub(super) fn update_static_member(
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

    pub(super) fn maybe_prepare_rebalance_or_complete_join(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
    ) {
        if g.can_rebalance() {
            self.prepare_rebalance(g, timers);
        } else {
            self.maybe_complete_join(g, timers);
        }
    }

    pub(super) fn prepare_rebalance(&self, g: &mut ClassicGroup, timers: &mut Timers) {
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

    pub(super) fn maybe_complete_join(&self, g: &mut ClassicGroup, timers: &mut Timers) {
        if g.is(GroupState::PreparingRebalance)
            && g.initial_delay_remaining_ms.is_none()
            && g.has_all_members_joined()
        {
            self.complete_join(g, timers);
        }
    }

    pub(super) fn on_join_timer(&self, g: &mut ClassicGroup, timers: &mut Timers) {
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
    pub(super) fn complete_join(&self, g: &mut ClassicGroup, timers: &mut Timers) {
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
    pub(super) fn remove_member_and_update(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
        member_id: &str,
    ) {
        remove_member(g, timers, member_id);
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(g, timers)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(g, timers),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub(super) fn apply_leader_assignment(
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
                        let _ = w.send(SyncOutcome::error_code(err));
                    }
                }
                self.prepare_rebalance(g, timers);
            }
        }
    }

    pub(super) fn on_heartbeat_expired(
        &self,
        groups: &mut HashMap<String, ClassicGroup>,
        timers: &mut Timers,
        offsets: &OffsetMetadataManager,
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
        if g.holds_nothing() && !offsets.has_group(group) && g.join_timer.is_none() {
            groups.remove(group);
        }
    }

    /// Kafka's pending-sync expiration: members that got their join
    /// response but never synced are removed, and the group rebalances.
    pub(super) fn on_sync_expired(
        &self,
        g: &mut ClassicGroup,
        timers: &mut Timers,
        generation: i32,
    ) {
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
}

pub(super) fn reschedule_heartbeat(
    timers: &mut Timers,
    group_id: &str,
    m: &mut ClassicGroupMember,
) {
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
pub(super) fn remove_member(g: &mut ClassicGroup, timers: &mut Timers, member_id: &str) {
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
pub(super) fn current_member_metadata(g: &ClassicGroup) -> Vec<JoinMember> {
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
