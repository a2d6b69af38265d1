//! Classic members of a consumer group: JoinGroup, SyncGroup, Heartbeat
//! and LeaveGroup served by the consumer group (Kafka's
//! `classicGroupJoinToConsumerGroup`, `classicGroupSyncToConsumerGroup`,
//! `classicGroupHeartbeatToConsumerGroup`, `classicGroupLeaveToConsumerGroup`
//! and the join and sync timeouts). A classic member's member epoch is its
//! generation; its JoinGroup is answered at once with its reconciled
//! assignment's epoch, its SyncGroup with its current assignment serialized
//! as a ConsumerProtocolAssignment, and its Heartbeat says
//! REBALANCE_IN_PROGRESS when the group moved on (a new epoch, partitions
//! to revoke, or partitions released for it), so that it rejoins.

use kafka_protocol::ResponseError;

use super::group::ConsumerGroup;
use super::heartbeat::{fail, replace_member, write, Fail, RebalanceTimer};
use super::member::{ClassicMemberMetadata, ConsumerGroupMember, MemberState};
use super::migration::{
    decode_subscription, encode_assignment, member_protocol_version, owned_partitions,
    subscribed_topics,
};
use super::records::ConsumerRecord;
use super::TopicResolver;
use crate::broker::topics::{new_topic_id, topic_id_string};
use crate::coordinator::group::api::{JoinOutcome, JoinParams, SyncOutcome, SyncParams};
use crate::coordinator::group::classic_group::CONSUMER_PROTOCOL_TYPE;
use crate::coordinator::group::group_metadata_manager::{Cx, GroupMetadataManager};
use crate::coordinator::group::timers::Timer;

/// Kafka's `validateConsumerGroupMember`: the member by instance id (a
/// static member) or by member id.
fn validate_member<'a>(
    g: &'a ConsumerGroup,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<&'a ConsumerGroupMember, Fail> {
    match instance_id {
        None => g.member(member_id).map_err(|(e, m)| fail(e, m)),
        Some(inst) => {
            let m = g.static_member(inst).ok_or_else(|| {
                fail(
                    ResponseError::UnknownMemberId,
                    format!(
                        "Member with instance id {inst} is not a member of group {}.",
                        g.group_id
                    ),
                )
            })?;
            if m.member_id != member_id {
                return Err(fail(
                    ResponseError::FencedInstanceId,
                    format!(
                        "Static member {member_id} with instance id {inst} was fenced by member {}.",
                        m.member_id
                    ),
                ));
            }
            Ok(m)
        }
    }
}

/// Kafka's `throwIfMemberDoesNotUseClassicProtocol` and
/// `throwIfGenerationIdUnmatched`.
fn check_classic_generation(m: &ConsumerGroupMember, generation_id: i32) -> Result<(), Fail> {
    if !m.uses_classic_protocol() {
        return Err(fail(
            ResponseError::UnknownMemberId,
            format!("Member {} does not use the classic protocol.", m.member_id),
        ));
    }
    if m.member_epoch != generation_id {
        return Err(fail(
            ResponseError::IllegalGeneration,
            format!(
                "The request generation id {generation_id} is not equal to the member epoch {} of member {}.",
                m.member_epoch, m.member_id
            ),
        ));
    }
    Ok(())
}

impl GroupMetadataManager {
    /// JoinGroup of a classic member to the (non-empty) consumer group
    /// `p.group_id`.
    pub fn classic_join_to_consumer_group(
        &mut self,
        cx: &Cx,
        p: JoinParams,
        topics: &dyn TopicResolver,
    ) -> JoinOutcome {
        let is_unknown = p.member_id.is_empty();
        let member_id = if is_unknown {
            topic_id_string(&new_topic_id())
        } else {
            p.member_id.clone()
        };
        match self.classic_join(cx, &p, &member_id, is_unknown, topics) {
            Ok(o) => o,
            Err((error, message)) => {
                if let Some(m) = message {
                    tracing::debug!(group = %p.group_id, member = %member_id, error, "classic join to the consumer group refused: {m}");
                }
                // An unknown member's answer carries the id it was given
                // only with MEMBER_ID_REQUIRED.
                let id = if error == ResponseError::MemberIdRequired.code() {
                    member_id.as_str()
                } else {
                    p.member_id.as_str()
                };
                JoinOutcome::error_code(error, id)
            }
        }
    }

    fn classic_join(
        &mut self,
        cx: &Cx,
        p: &JoinParams,
        member_id: &str,
        is_unknown: bool,
        topics: &dyn TopicResolver,
    ) -> Result<JoinOutcome, Fail> {
        let gid = p.group_id.clone();
        let Some(g) = self.consumer_groups.get(&gid) else {
            return Err((ResponseError::UnknownMemberId.code(), None));
        };
        let max = cx.config.consumer_max_size;
        if g.members.len() >= max && !g.members.contains_key(member_id) {
            return Err(fail(
                ResponseError::GroupMaxSizeReached,
                format!("The consumer group has reached its maximum capacity of {max} members."),
            ));
        }
        let names: Vec<&str> = p.protocols.iter().map(|(n, _)| n.as_str()).collect();
        if !g.supports_classic_protocols(&p.protocol_type, &names) {
            return Err(fail(
                ResponseError::InconsistentGroupProtocol,
                format!("Member {member_id}'s protocols are not supported."),
            ));
        }
        if p.require_known_member_id && is_unknown && p.group_instance_id.is_none() {
            tracing::info!(group = %gid, member = %member_id, "dynamic member with unknown member id joins the consumer group: asked to rejoin with its new member id");
            return Err((ResponseError::MemberIdRequired.code(), None));
        }
        // Kafka's step 4, decided on the group as it was: a static member
        // replacing the last consumer-protocol member downgrades the group.
        let downgrade = p
            .group_instance_id
            .as_ref()
            .and_then(|inst| g.static_member(inst))
            .is_some_and(|old| self.may_downgrade_replacing(cx, g, &old.member_id));
        let mut g = g.clone();
        let mut recs: Vec<ConsumerRecord> = Vec::new();

        // The member: existing, new, or replacing a static member's previous
        // incarnation.
        let member = match &p.group_instance_id {
            None => {
                if !g.members.contains_key(member_id) {
                    tracing::info!(group = %gid, member = %member_id, "member joins the consumer group using the classic protocol");
                }
                g.members
                    .get(member_id)
                    .cloned()
                    .unwrap_or_else(|| ConsumerGroupMember::new(member_id))
            }
            Some(inst) => match g.static_member(inst).cloned() {
                None if is_unknown => {
                    tracing::info!(group = %gid, member = %member_id, instance = %inst, "static member joins the consumer group using the classic protocol");
                    g.members
                        .get(member_id)
                        .cloned()
                        .unwrap_or_else(|| ConsumerGroupMember::new(member_id))
                }
                None => {
                    return Err(fail(
                        ResponseError::UnknownMemberId,
                        format!("Instance id {inst} is unknown."),
                    ))
                }
                Some(old) if is_unknown => {
                    let mut new = old.clone();
                    new.member_id = member_id.to_string();
                    new.member_epoch = 0;
                    new.previous_member_epoch = 0;
                    replace_member(&mut g, &mut recs, &old, &new);
                    tracing::info!(group = %gid, instance = %inst, member = %member_id, replaced = %old.member_id, "static member re-joins the consumer group using the classic protocol");
                    new
                }
                Some(old) => {
                    if old.member_id != member_id {
                        return Err(fail(
                            ResponseError::FencedInstanceId,
                            format!(
                                "Static member {member_id} with instance id {inst} was fenced by member {}.",
                                old.member_id
                            ),
                        ));
                    }
                    old
                }
            },
        };

        let Some((protocol_name, metadata)) = p.protocols.first() else {
            return Err((ResponseError::InconsistentGroupProtocol.code(), None));
        };
        let subscription = decode_subscription(metadata).map_err(|e| {
            tracing::warn!(group = %gid, member = %member_id, error = %e, "malformed embedded consumer protocol in subscription deserialization");
            (ResponseError::UnknownServerError.code(), None)
        })?;
        let mut updated = member.clone();
        if p.group_instance_id.is_some() {
            updated.instance_id = p.group_instance_id.clone();
        }
        if let Some(rack) = &subscription.rack_id {
            updated.rack_id = Some(rack.to_string());
        }
        if p.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = p.rebalance_timeout_ms;
        }
        updated.subscribed_topic_names = subscribed_topics(&subscription);
        updated.client_id = p.client_id.clone();
        updated.client_host = p.client_host.clone();
        updated.classic = Some(ClassicMemberMetadata {
            session_timeout_ms: p.session_timeout_ms,
            supported_protocols: p.protocols.clone(),
        });
        let owned = owned_partitions(&subscription, topics);
        let (current, rebalance) = self.update_and_reconcile(
            cx,
            &mut g,
            &mut recs,
            &member,
            &updated,
            Some(&owned),
            topics,
            cx.config.consumer_assignment_interval_ms,
        )?;

        let mut wait = write(cx, &gid, false, &recs)?;
        let t = g.timers.entry(member_id.to_string()).or_default();
        self.timers.cancel(t.join.take());
        self.timers.cancel(t.session.take());
        t.session = Some(self.timers.schedule(
            i64::from(p.session_timeout_ms),
            Timer::ConsumerSession {
                group: gid.clone(),
                member: member_id.to_string(),
            },
        ));
        // It must sync within its rebalance timeout.
        self.timers.cancel(t.sync.take());
        t.sync = Some(self.timers.schedule(
            i64::from(p.rebalance_timeout_ms),
            Timer::ConsumerClassicSync {
                group: gid.clone(),
                member: member_id.to_string(),
            },
        ));
        let t = *t;
        self.apply_rebalance_timer(&mut g, member_id, t.rebalance, rebalance);
        self.consumer_groups.insert(gid.clone(), g);
        if downgrade {
            // The classic group takes every member as it is now, the joiner
            // included, and stays Stable: the joiner syncs into it.
            match self.convert_to_classic_group(cx, &gid, &[], false) {
                Some(Ok(converted)) => wait = converted.or(wait),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        Ok(JoinOutcome {
            error: 0,
            generation_id: current.member_epoch,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_string()),
            protocol_name: Some(protocol_name.clone()),
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
            wait,
        })
    }

    /// Starts, keeps or stops a member's rebalance timeout.
    pub(super) fn apply_rebalance_timer(
        &mut self,
        g: &mut ConsumerGroup,
        member_id: &str,
        running: Option<crate::coordinator::group::timers::TimerKey>,
        rebalance: RebalanceTimer,
    ) {
        let key = match rebalance {
            RebalanceTimer::Keep => return,
            RebalanceTimer::Cancel => {
                self.timers.cancel(running);
                None
            }
            RebalanceTimer::Schedule { epoch, timeout_ms } => {
                self.timers.cancel(running);
                Some(self.timers.schedule(
                    i64::from(timeout_ms),
                    Timer::ConsumerRebalance {
                        group: g.group_id.clone(),
                        member: member_id.to_string(),
                        epoch,
                    },
                ))
            }
        };
        g.timers.entry(member_id.to_string()).or_default().rebalance = key;
    }

    /// SyncGroup of a classic member of the consumer group `p.group_id`.
    pub fn classic_sync_to_consumer_group(
        &mut self,
        p: &SyncParams,
        topics: &dyn TopicResolver,
    ) -> SyncOutcome {
        match self.classic_sync(p, topics) {
            Ok(o) => o,
            Err((e, m)) => {
                if let Some(m) = m {
                    tracing::debug!(group = %p.group_id, member = %p.member_id, error = e, "classic sync to the consumer group refused: {m}");
                }
                SyncOutcome::error_code(e)
            }
        }
    }

    fn classic_sync(
        &mut self,
        p: &SyncParams,
        topics: &dyn TopicResolver,
    ) -> Result<SyncOutcome, Fail> {
        let Some(g) = self.consumer_groups.get_mut(p.group_id) else {
            return Err((ResponseError::UnknownMemberId.code(), None));
        };
        let m = validate_member(g, p.member_id, p.group_instance_id)?;
        check_classic_generation(m, p.generation_id)?;
        let name = m.classic_protocol_name().unwrap_or_default().to_string();
        if p.protocol_type.is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE) {
            return Err(fail(
                ResponseError::InconsistentGroupProtocol,
                format!(
                    "The protocol type {} from member {} request is not equal to the group protocol type {CONSUMER_PROTOCOL_TYPE}.",
                    p.protocol_type.unwrap_or_default(),
                    m.member_id
                ),
            ));
        }
        if p.protocol_name.is_some_and(|n| n != name) {
            return Err(fail(
                ResponseError::InconsistentGroupProtocol,
                format!(
                    "The protocol name {} from member {} request is not equal to the protocol name {name} returned in the join response.",
                    p.protocol_name.unwrap_or_default(),
                    m.member_id
                ),
            ));
        }
        let member_id = m.member_id.clone();
        // A new rebalance started since its join: it must rejoin first
        // (unless it is still revoking: it finishes that first).
        if g.group_epoch > m.member_epoch && m.state != MemberState::UnrevokedPartitions {
            let rebalance_timeout_ms = m.rebalance_timeout_ms;
            schedule_join_timeout_if_absent(&mut self.timers, g, &member_id, rebalance_timeout_ms);
            return Err(fail(
                ResponseError::RebalanceInProgress,
                format!(
                    "A new rebalance is triggered in group {} and member {member_id} should rejoin to catch up.",
                    p.group_id
                ),
            ));
        }
        let version = member_protocol_version(m);
        let session = m.classic.as_ref().map_or(0, |c| c.session_timeout_ms);
        let assignment =
            encode_assignment(&m.assigned_partitions, &|id| topics.name_of(id), version);
        let t = g.timers.entry(member_id.clone()).or_default();
        self.timers.cancel(t.sync.take());
        self.timers.cancel(t.session.take());
        t.session = Some(self.timers.schedule(
            i64::from(session),
            Timer::ConsumerSession {
                group: p.group_id.to_string(),
                member: member_id,
            },
        ));
        Ok(SyncOutcome {
            error: 0,
            protocol_type: p.protocol_type.map(str::to_string),
            protocol_name: p.protocol_name.map(str::to_string),
            assignment,
            wait: None,
        })
    }

    /// Heartbeat of a classic member of the consumer group `group_id`.
    pub fn classic_heartbeat_to_consumer_group(
        &mut self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> i16 {
        let Some(g) = self.consumer_groups.get_mut(group_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        let m = match validate_member(g, member_id, instance_id)
            .and_then(|m| check_classic_generation(m, generation_id).map(|()| m))
        {
            Ok(m) => m,
            Err((e, _)) => return e,
        };
        let member_id = m.member_id.clone();
        let session = m.classic.as_ref().map_or(0, |c| c.session_timeout_ms);
        // It rejoins when the group epoch moved past it, when it must
        // revoke, or when the partitions it waits for were released.
        let rejoin = m.member_epoch < g.group_epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions
                && !g.waiting_on_unreleased_partition(m));
        let rebalance_timeout_ms = m.rebalance_timeout_ms;
        let t = g.timers.entry(member_id.clone()).or_default();
        self.timers.cancel(t.session.take());
        t.session = Some(self.timers.schedule(
            i64::from(session),
            Timer::ConsumerSession {
                group: group_id.to_string(),
                member: member_id.clone(),
            },
        ));
        if rejoin {
            schedule_join_timeout_if_absent(&mut self.timers, g, &member_id, rebalance_timeout_ms);
            return ResponseError::RebalanceInProgress.code();
        }
        0
    }

    /// LeaveGroup to the consumer group `group_id`: every valid member
    /// (either protocol) is fenced together, which may downgrade the
    /// group. Per member: (member id, instance id, error).
    pub fn classic_leave_to_consumer_group(
        &mut self,
        cx: &Cx,
        group_id: &str,
        leaving: Vec<(String, Option<String>)>,
    ) -> Vec<(String, Option<String>, i16)> {
        let Some(g) = self.consumer_groups.get(group_id) else {
            let unknown = ResponseError::UnknownMemberId.code();
            return leaving.into_iter().map(|(m, i)| (m, i, unknown)).collect();
        };
        let mut results = Vec::with_capacity(leaving.len());
        let mut fenced: Vec<String> = Vec::new();
        for (member_id, instance) in leaving {
            let found = match &instance {
                None => g
                    .member(&member_id)
                    .map(|m| m.member_id.clone())
                    .map_err(|(e, _)| e.code()),
                Some(inst) => match g.static_member(inst) {
                    None => Err(ResponseError::UnknownMemberId.code()),
                    // An admin removes a static member by instance id alone.
                    Some(m) if !member_id.is_empty() && m.member_id != member_id => {
                        Err(ResponseError::FencedInstanceId.code())
                    }
                    Some(m) => Ok(m.member_id.clone()),
                },
            };
            match found {
                Ok(id) => {
                    tracing::info!(group = %group_id, member = %id, instance = ?instance, "member left the consumer group through LeaveGroup");
                    if !fenced.contains(&id) {
                        fenced.push(id);
                    }
                    results.push((member_id, instance, 0));
                }
                Err(e) => results.push((member_id, instance, e)),
            }
        }
        let ids: Vec<&str> = fenced.iter().map(String::as_str).collect();
        if let Err((e, _)) = self.fence_consumer_members(cx, group_id, &ids) {
            // The members stay: each answer says why.
            for r in results.iter_mut().filter(|r| r.2 == 0) {
                r.2 = e;
            }
        }
        results
    }
}

/// Kafka's `scheduleConsumerGroupJoinTimeoutIfAbsent`: a classic member
/// told to rejoin is fenced unless it joins within its rebalance timeout.
fn schedule_join_timeout_if_absent(
    timers: &mut crate::coordinator::group::timers::Timers,
    g: &mut ConsumerGroup,
    member_id: &str,
    rebalance_timeout_ms: i32,
) {
    let gid = g.group_id.clone();
    let t = g.timers.entry(member_id.to_string()).or_default();
    if t.join.is_none() {
        t.join = Some(timers.schedule(
            i64::from(rebalance_timeout_ms),
            Timer::ConsumerClassicJoin {
                group: gid,
                member: member_id.to_string(),
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_members_answer_with_kafkas_generation_errors() {
        let mut m = ConsumerGroupMember::new("m");
        m.member_epoch = 4;
        let e = check_classic_generation(&m, 4).unwrap_err();
        assert_eq!(e.0, ResponseError::UnknownMemberId.code());
        assert_eq!(
            e.1.as_deref(),
            Some("Member m does not use the classic protocol.")
        );
        m.classic = Some(ClassicMemberMetadata::default());
        assert!(check_classic_generation(&m, 4).is_ok());
        let e = check_classic_generation(&m, 3).unwrap_err();
        assert_eq!(e.0, ResponseError::IllegalGeneration.code());
        assert_eq!(
            e.1.as_deref(),
            Some("The request generation id 3 is not equal to the member epoch 4 of member m.")
        );
    }
}
