//! ConsumerGroupHeartbeat and ConsumerGroupDescribe: the consumer-group
//! half of Kafka's `GroupMetadataManager` (`consumerGroupHeartbeat`,
//! `consumerGroupLeave`, `consumerGroupFenceMember`, the session and
//! rebalance timeouts). A heartbeat works on a copy of its group: every
//! record it produces is replayed on the copy at once, so each step sees
//! the state the records before it made; when the records are appended
//! the copy replaces the group, and when the append fails nothing changed.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::assignors::{self, GroupSpec, MemberSpec};
use super::current_assignment;
use super::group::{ConsumerGroup, ConsumerGroupState, MemberTimers};
use super::member::{
    Assignment, ConsumerGroupMember, MemberState, LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};
use super::records::{ConsumerRecord, CurrentAssignment, MemberMetadata};
use super::{combine_hashes, topic_hash, TopicResolver};
use crate::broker::topics::{new_topic_id, topic_id_string};
use crate::coordinator::group::classic_group::GroupState;
use crate::coordinator::group::group_metadata_manager::{Cx, GroupMetadataManager};
use crate::coordinator::group::record_serde;
use crate::coordinator::group::timers::{Timer, TimerKey};
use crate::coordinator::group::writer::{map_append_error, record, CoordRecord, DurableWait};

/// What a ConsumerGroupHeartbeat carries, plus the group's configured
/// session timeout and heartbeat interval.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatParams {
    pub api_version: i16,
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The owned partitions as sent (None: not sent).
    pub owned: Option<Vec<(Uuid, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    /// The group's `consumer.assignment.interval.ms`, else the broker's
    /// `group.consumer.assignment.interval.ms`, within its min/max bounds.
    pub assignment_interval_ms: i32,
}

/// Kafka's `canComputeNextTargetAssignment` (KIP-1251 assignment batching):
/// a group's next target assignment waits until `interval_ms` after the
/// previous one was computed; 0 (never computed, or not recorded) or an
/// interval of 0 never waits.
pub fn can_compute_next_target_assignment(last_ms: i64, interval_ms: i32, now_ms: i64) -> bool {
    last_ms == 0 || interval_ms == 0 || now_ms >= last_ms.saturating_add(i64::from(interval_ms))
}

#[derive(Clone, Default)]
pub struct HeartbeatOutcome {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<Assignment>,
    pub wait: Option<DurableWait>,
}

/// An error code and Kafka's message for it.
pub type Fail = (i16, Option<String>);

pub(super) fn fail(e: ResponseError, msg: impl Into<String>) -> Fail {
    (e.code(), Some(msg.into()))
}

impl HeartbeatOutcome {
    pub fn error((error, message): Fail) -> HeartbeatOutcome {
        HeartbeatOutcome {
            error,
            message,
            ..HeartbeatOutcome::default()
        }
    }
}

/// One described consumer group (ConsumerGroupDescribe).
pub struct ConsumerGroupDescription {
    pub state: ConsumerGroupState,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    /// Each member with its target assignment.
    pub members: Vec<(ConsumerGroupMember, Assignment)>,
}

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
pub fn validate(p: &HeartbeatParams, assignors: &[String]) -> Result<(), Fail> {
    let invalid = |m: &str| Err(fail(ResponseError::InvalidRequest, m));
    if (p.api_version >= 1 || p.member_epoch > 0 || p.member_epoch == LEAVE_GROUP_MEMBER_EPOCH)
        && p.member_id.is_empty()
    {
        return invalid("MemberId can't be empty.");
    }
    if p.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if p.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if p.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    if p.member_epoch == 0 {
        if p.rebalance_timeout_ms == -1 {
            return invalid("RebalanceTimeoutMs must be provided in first request.");
        }
        if p.owned.as_ref().is_none_or(|o| !o.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining.");
        }
        if p.subscribed_topic_names.is_none() && p.subscribed_topic_regex.is_none() {
            return invalid(
                "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
            );
        }
    } else if p.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        if p.instance_id.is_none() {
            return invalid("InstanceId can't be null.");
        }
    } else if p.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
        return invalid("MemberEpoch is invalid.");
    }
    if let Some(a) = &p.server_assignor {
        if !assignors.iter().any(|x| x == a) {
            return Err(fail(
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: {}.",
                    assignors.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn owned_assignment(owned: &Option<Vec<(Uuid, Vec<i32>)>>) -> Option<Assignment> {
    owned.as_ref().map(|o| {
        let mut a = Assignment::new();
        for (t, ps) in o {
            a.entry(*t).or_default().extend(ps.iter().copied());
        }
        a
    })
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`.
fn check_member_epoch(
    m: &ConsumerGroupMember,
    received: i32,
    owned: Option<&Assignment>,
) -> Result<(), Fail> {
    if received > m.member_epoch {
        return Err(fail(
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a greater member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                m.member_epoch
            ),
        ));
    }
    if received < m.member_epoch
        && (received != m.previous_member_epoch
            || !super::member::is_subset(owned, &m.assigned_partitions))
    {
        return Err(fail(
            ResponseError::FencedMemberEpoch,
            format!(
                "The consumer group member has a smaller member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                m.member_epoch
            ),
        ));
    }
    Ok(())
}

/// Replays `r` on the working copy and keeps it for the write.
pub(super) fn push(g: &mut ConsumerGroup, recs: &mut Vec<ConsumerRecord>, r: ConsumerRecord) {
    g.replay(&r);
    recs.push(r);
}

/// The tombstones that take a member out of the group (Kafka's
/// `removeMember`): its current assignment, its target assignment, its
/// metadata, in that order.
pub(super) fn remove_member(
    g: &mut ConsumerGroup,
    recs: &mut Vec<ConsumerRecord>,
    gid: &str,
    member: &str,
) {
    let (gid, member) = (gid.to_string(), member.to_string());
    let cur = ConsumerRecord::CurrentMemberAssignment(gid.clone(), member.clone(), None);
    push(g, recs, cur);
    let target = ConsumerRecord::TargetAssignmentMember(gid.clone(), member.clone(), None);
    push(g, recs, target);
    push(g, recs, ConsumerRecord::MemberMetadata(gid, member, None));
}

/// A static member's new incarnation `new` takes `old`'s place, its
/// target assignment and its partitions (Kafka's `replaceMember`).
pub(super) fn replace_member(
    g: &mut ConsumerGroup,
    recs: &mut Vec<ConsumerRecord>,
    old: &ConsumerGroupMember,
    new: &ConsumerGroupMember,
) {
    let gid = g.group_id.clone();
    let target = g.target_assignment.get(&old.member_id).cloned();
    remove_member(g, recs, &gid, &old.member_id);
    let n = new.member_id.clone();
    let meta =
        ConsumerRecord::MemberMetadata(gid.clone(), n.clone(), Some(MemberMetadata::of(new)));
    push(g, recs, meta);
    let target = ConsumerRecord::TargetAssignmentMember(
        gid.clone(),
        n.clone(),
        Some(target.unwrap_or_default()),
    );
    push(g, recs, target);
    let current = ConsumerRecord::CurrentMemberAssignment(gid, n, Some(CurrentAssignment::of(new)));
    push(g, recs, current);
}

/// Serializes the records (a classic group's tombstone first, if any)
/// and appends them for `gid`.
pub(super) fn write(
    cx: &Cx,
    gid: &str,
    classic_tombstone: bool,
    recs: &[ConsumerRecord],
) -> Result<Option<DurableWait>, Fail> {
    let mut raw: Vec<CoordRecord> = Vec::with_capacity(recs.len() + 1);
    let unknown = |e: ResponseError| (e.code(), None);
    if classic_tombstone {
        raw.push(record(record_serde::group_key(gid), None).map_err(unknown)?);
    }
    for r in recs {
        let (k, v) = r.encode().map_err(|e| {
            tracing::warn!(group = %gid, error = %e, "a consumer group record cannot be serialized");
            (ResponseError::UnknownServerError.code(), None)
        })?;
        raw.push((k, v));
    }
    if raw.is_empty() {
        return Ok(None);
    }
    cx.writer
        .append(gid, &raw)
        .map(Some)
        .map_err(|e| (map_append_error(e, false), None))
}

pub(super) enum RebalanceTimer {
    Keep,
    Schedule { epoch: i32, timeout_ms: i32 },
    Cancel,
}

impl GroupMetadataManager {
    /// ConsumerGroupHeartbeat (Kafka's `consumerGroupHeartbeat`).
    pub fn consumer_group_heartbeat(
        &mut self,
        cx: &Cx,
        p: HeartbeatParams,
        topics: &dyn TopicResolver,
    ) -> HeartbeatOutcome {
        if let Err(f) = validate(&p, &cx.config.consumer_assignors) {
            return HeartbeatOutcome::error(f);
        }
        let out = if p.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || p.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            self.consumer_group_leave(cx, &p)
        } else {
            self.consumer_group_join_or_heartbeat(cx, p, topics)
        };
        out.unwrap_or_else(HeartbeatOutcome::error)
    }

    fn consumer_group_join_or_heartbeat(
        &mut self,
        cx: &Cx,
        p: HeartbeatParams,
        topics: &dyn TopicResolver,
    ) -> Result<HeartbeatOutcome, Fail> {
        let gid = p.group_id.clone();
        let create = p.member_epoch == 0;
        let mut classic_tombstone = false;
        let mut upgraded = false;
        let mut recs: Vec<ConsumerRecord> = Vec::new();
        let mut g = match self.consumer_groups.get(&gid) {
            Some(g) => g.clone(),
            None => {
                if self.share_groups.groups.contains_key(&gid)
                    || self.streams_groups.contains_key(&gid)
                {
                    return Err(fail(
                        ResponseError::GroupIdNotFound,
                        format!("Group {gid} is not a consumer group."),
                    ));
                }
                match self.groups.get(&gid) {
                    // An empty classic group (offsets only) becomes a
                    // consumer group.
                    Some(c) if create && c.is(GroupState::Empty) && c.members.is_empty() => {
                        classic_tombstone = true;
                        ConsumerGroup::new(&gid)
                    }
                    // A live one is upgraded online, its members carried
                    // over (Kafka's `getOrMaybeCreateConsumerGroup`).
                    Some(_) if create => {
                        let (converted, conversion) =
                            self.convert_to_consumer_group(cx, &gid, topics)?;
                        recs = conversion;
                        classic_tombstone = true;
                        upgraded = true;
                        converted
                    }
                    Some(_) => {
                        return Err(fail(
                            ResponseError::GroupIdNotFound,
                            format!("Group {gid} is not a consumer group."),
                        ))
                    }
                    None if !create => {
                        return Err(fail(
                            ResponseError::GroupIdNotFound,
                            format!("Consumer group {gid} not found."),
                        ))
                    }
                    None => ConsumerGroup::new(&gid),
                }
            }
        };
        let max = cx.config.consumer_max_size;
        if g.members.len() >= max
            && (p.member_id.is_empty() || !g.members.contains_key(&p.member_id))
        {
            return Err(fail(
                ResponseError::GroupMaxSizeReached,
                format!("The consumer group has reached its maximum capacity of {max} members."),
            ));
        }
        let member_id = if p.member_id.is_empty() {
            topic_id_string(&new_topic_id())
        } else {
            p.member_id.clone()
        };
        let owned = owned_assignment(&p.owned);

        // The member: existing, new, or a static member replacing its
        // previous incarnation.
        let member = match &p.instance_id {
            None => match g.members.get(&member_id) {
                Some(m) => {
                    check_member_epoch(m, p.member_epoch, owned.as_ref())?;
                    m.clone()
                }
                None if create => {
                    tracing::info!(group = %gid, member = %member_id, "member joins the consumer group using the consumer protocol");
                    ConsumerGroupMember::new(&member_id)
                }
                None => {
                    return Err(fail(
                        ResponseError::UnknownMemberId,
                        format!("Member {member_id} is not a member of group {gid}."),
                    ))
                }
            },
            Some(inst) => {
                let existing = g.static_member(inst).cloned();
                match existing {
                    None if create => {
                        tracing::info!(group = %gid, member = %member_id, instance = %inst, "static member joins the consumer group using the consumer protocol");
                        match g.members.get(&member_id) {
                            Some(m) => {
                                check_member_epoch(m, p.member_epoch, owned.as_ref())?;
                                m.clone()
                            }
                            None => ConsumerGroupMember::new(&member_id),
                        }
                    }
                    None => {
                        return Err(fail(
                            ResponseError::UnknownMemberId,
                            format!("Instance id {inst} is unknown."),
                        ))
                    }
                    Some(old) if create => {
                        // A classic member's instance is taken over without
                        // waiting for its leave (Kafka checks the release
                        // only between consumer-protocol members).
                        if !old.uses_classic_protocol()
                            && old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH
                        {
                            return Err(fail(
                                ResponseError::UnreleasedInstanceId,
                                format!(
                                    "Static member {member_id} with instance id {inst} cannot join the group because the instance id is owned by {} member.",
                                    old.member_id
                                ),
                            ));
                        }
                        let mut new = old.clone();
                        new.member_id = member_id.clone();
                        new.member_epoch = 0;
                        new.previous_member_epoch = 0;
                        replace_member(&mut g, &mut recs, &old, &new);
                        tracing::info!(group = %gid, instance = %inst, member = %member_id, replaced = %old.member_id, "static member re-joins the consumer group");
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
                        check_member_epoch(&old, p.member_epoch, owned.as_ref())?;
                        old
                    }
                }
            }
        };

        // 1. The member's new metadata; a subscription change bumps the epoch.
        let mut updated = member.clone();
        if p.instance_id.is_some() {
            updated.instance_id = p.instance_id.clone();
        }
        if p.rack_id.is_some() {
            updated.rack_id = p.rack_id.clone();
        }
        if p.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = p.rebalance_timeout_ms;
        }
        if p.server_assignor.is_some() {
            updated.server_assignor = p.server_assignor.clone();
        }
        if let Some(names) = &p.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            updated.subscribed_topic_names = names;
        }
        if p.subscribed_topic_regex.is_some() {
            updated.subscribed_topic_regex = p.subscribed_topic_regex.clone();
        }
        updated.client_id = p.client_id.clone();
        updated.client_host = p.client_host.clone();
        // It uses the consumer protocol now.
        updated.classic = None;

        let (current, rebalance) = self.update_and_reconcile(
            cx,
            &mut g,
            &mut recs,
            &member,
            &updated,
            owned.as_ref(),
            topics,
            p.assignment_interval_ms,
        )?;

        let wait = write(cx, &gid, classic_tombstone, &recs)?;
        if upgraded {
            self.finish_upgrade(&mut g);
        } else if classic_tombstone {
            self.groups.remove(&gid);
            tracing::info!(group = %gid, "converted the empty classic group to a consumer group");
        }
        let t = g.timers.entry(member_id.clone()).or_default();
        self.timers.cancel(t.session.take());
        t.session = Some(self.timers.schedule(
            i64::from(p.session_timeout_ms),
            Timer::ConsumerSession {
                group: gid.clone(),
                member: member_id.clone(),
            },
        ));
        match rebalance {
            RebalanceTimer::Keep => {}
            RebalanceTimer::Cancel => self.timers.cancel(t.rebalance.take()),
            RebalanceTimer::Schedule { epoch, timeout_ms } => {
                self.timers.cancel(t.rebalance.take());
                t.rebalance = Some(self.timers.schedule(
                    i64::from(timeout_ms),
                    Timer::ConsumerRebalance {
                        group: gid.clone(),
                        member: member_id.clone(),
                        epoch,
                    },
                ));
            }
        }
        self.consumer_groups.insert(gid, g);

        let full = p.rebalance_timeout_ms != -1
            && (p.subscribed_topic_names.is_some() || p.subscribed_topic_regex.is_some())
            && p.owned.is_some();
        let assignment = (p.member_epoch == 0
            || full
            || member.assigned_partitions != current.assigned_partitions)
            .then(|| current.assigned_partitions.clone());
        Ok(HeartbeatOutcome {
            error: 0,
            message: None,
            member_id: Some(member_id),
            member_epoch: current.member_epoch,
            heartbeat_interval_ms: p.heartbeat_interval_ms,
            assignment,
            wait,
        })
    }

    /// Steps 1-3 of a member's join or heartbeat, whichever protocol it
    /// uses (Kafka's `consumerGroupHeartbeat` and
    /// `classicGroupJoinToConsumerGroup` share them): the member's new
    /// metadata (`updated`, replacing `member`) and the group epoch bump it
    /// or the subscribed topics cause, a new target assignment when the
    /// epoch moved past it, and the member reconciled towards its target.
    /// Every record is replayed on `g` and kept in `recs`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn update_and_reconcile(
        &mut self,
        cx: &Cx,
        g: &mut ConsumerGroup,
        recs: &mut Vec<ConsumerRecord>,
        member: &ConsumerGroupMember,
        updated: &ConsumerGroupMember,
        owned: Option<&Assignment>,
        topics: &dyn TopicResolver,
        assignment_interval_ms: i32,
    ) -> Result<(ConsumerGroupMember, RebalanceTimer), Fail> {
        let gid = g.group_id.clone();
        let member_id = updated.member_id.clone();

        let mut bump = false;
        // The assignor the group uses changes with the one its members
        // prefer most: that is a new target assignment, so a new epoch
        // (Kafka's `hasPreferredServerAssignorChanged`), decided on the
        // group before the member's new metadata.
        let default_assignor = || {
            cx.config
                .consumer_assignors
                .first()
                .cloned()
                .unwrap_or_else(|| assignors::UNIFORM.to_string())
        };
        let assignor_before = g
            .preferred_server_assignor(None, None)
            .unwrap_or_else(default_assignor);
        let assignor_after = g
            .preferred_server_assignor(Some(member), Some(updated))
            .unwrap_or_else(default_assignor);
        if assignor_before != assignor_after {
            tracing::debug!(group = %gid, from = %assignor_before, to = %assignor_after, "the group's preferred server assignor changed");
            bump = true;
        }
        // Regular expressions, decided on the group before the member's
        // new metadata (Kafka's `maybeUpdateRegularExpressions`).
        let now_ms = crate::util::time::now_ms();
        let topics_version = topics.topics_version();
        let regex_update = super::regex::maybe_update(g, member, updated, now_ms, topics_version)?;
        if updated != member || !g.members.contains_key(&member_id) {
            push(
                g,
                recs,
                ConsumerRecord::MemberMetadata(
                    gid.clone(),
                    member_id.clone(),
                    Some(MemberMetadata::of(updated)),
                ),
            );
            if updated.subscribed_topic_names != member.subscribed_topic_names {
                tracing::debug!(group = %gid, member = %member_id, topics = ?updated.subscribed_topic_names, "member updated its subscribed topics");
                bump = true;
            }
        }
        if let Some(regex) = regex_update.tombstone {
            tracing::debug!(group = %gid, regex = %regex, "no member subscribes to the regular expression any more");
            push(
                g,
                recs,
                ConsumerRecord::RegularExpression(gid.clone(), regex, None),
            );
        }
        bump |= regex_update.bump;
        if let Some(regexes) = regex_update.refresh {
            let resolved = super::regex::resolve(
                &gid,
                &regexes,
                &topics.topic_names(),
                &|t| topics.may_describe(t),
                topics_version,
                now_ms,
            );
            let (regex_recs, changed) = super::regex::result_records(g, resolved);
            for r in regex_recs {
                push(g, recs, r);
            }
            if changed {
                tracing::info!(group = %gid, "the group's regular expressions resolve to other topics");
                bump = true;
            }
        }
        // The subscribed topics' metadata (KIP-1101's hash): a new topic,
        // a deleted one or more partitions bump the epoch too.
        let names = g.subscribed_topic_names(None, None);
        let mut resolved: HashMap<String, (Uuid, i32)> = HashMap::new();
        let mut hashes: Vec<(&String, i64)> = Vec::with_capacity(names.len());
        for n in &names {
            let t = topics.by_name(n);
            if let Some(t) = t {
                resolved.insert(n.clone(), t);
                self.topic_names.insert(t.0, n.clone());
            }
            let h = topic_hash(n, t);
            self.topic_hashes.insert(n.clone(), h);
            hashes.push((n, h));
        }
        let hash = combine_hashes(hashes.into_iter());
        if hash != g.metadata_hash {
            bump = true;
        }
        if bump {
            let epoch = g.group_epoch + 1;
            push(
                g,
                recs,
                ConsumerRecord::GroupMetadata(gid.clone(), Some((epoch, hash))),
            );
            tracing::info!(group = %gid, epoch, "bumped the consumer group epoch");
        }
        if g.has_partition_metadata_record {
            push(g, recs, ConsumerRecord::PartitionMetadata(gid.clone()));
        }

        // 2. A new target assignment when the group epoch moved past it.
        // 2. A new target assignment when the group epoch moved past it
        // and the group's assignment interval has passed since the last
        // one; until then members reconcile towards the last one (and the
        // next heartbeat after the interval computes it, as in Kafka).
        let (target_epoch, target) = if g.group_epoch > g.assignment_epoch
            && can_compute_next_target_assignment(
                g.assignment_timestamp_ms,
                assignment_interval_ms,
                now_ms,
            ) {
            let epoch = g.group_epoch;
            let assignor = g
                .preferred_server_assignor(None, None)
                .or_else(|| cx.config.consumer_assignors.first().cloned())
                .unwrap_or_else(|| assignors::UNIFORM.to_string());
            let specs: BTreeMap<String, MemberSpec> = g
                .members
                .iter()
                .map(|(id, m)| {
                    let spec = MemberSpec {
                        instance_id: m.instance_id.clone(),
                        topics: g
                            .member_topics(m)
                            .into_iter()
                            .filter_map(|n| resolved.get(n).map(|t| t.0))
                            .collect(),
                        assignment: g.target_assignment.get(id).cloned().unwrap_or_default(),
                    };
                    (id.clone(), spec)
                })
                .collect();
            let partitions: HashMap<Uuid, i32> = resolved.values().copied().collect();
            let new = assignors::assign(
                &assignor,
                &GroupSpec {
                    members: &specs,
                    homogeneous: g.is_homogeneous(None, None),
                    partitions: &partitions,
                },
            );
            let ids: Vec<String> = g.members.keys().cloned().collect();
            for id in ids {
                let a = new.get(&id).cloned().unwrap_or_default();
                if g.target_assignment.get(&id) != Some(&a) {
                    push(
                        g,
                        recs,
                        ConsumerRecord::TargetAssignmentMember(gid.clone(), id, Some(a)),
                    );
                }
            }
            push(
                g,
                recs,
                ConsumerRecord::TargetAssignmentMetadata(gid.clone(), Some((epoch, now_ms))),
            );
            tracing::info!(group = %gid, epoch, assignor = %assignor, "computed a new target assignment");
            (epoch, new.get(&member_id).cloned().unwrap_or_default())
        } else {
            (g.assignment_epoch, g.target_of(&member_id, None))
        };

        // 3. Reconcile the member towards its target.
        let mut current = g
            .members
            .get(&member_id)
            .cloned()
            .unwrap_or_else(|| updated.clone());
        let mut rebalance = RebalanceTimer::Keep;
        if !current.is_reconciled_to(target_epoch) {
            let next = current_assignment::build(
                &current,
                target_epoch,
                &target,
                &|t, part| g.current_partition_epoch(t, part),
                owned,
            )
            .map_err(|(e, m)| fail(e, m))?;
            if next != current {
                push(
                    g,
                    recs,
                    ConsumerRecord::CurrentMemberAssignment(
                        gid.clone(),
                        member_id.clone(),
                        Some(CurrentAssignment::of(&next)),
                    ),
                );
                rebalance = if next.state == MemberState::UnrevokedPartitions {
                    RebalanceTimer::Schedule {
                        epoch: next.member_epoch,
                        timeout_ms: next.rebalance_timeout_ms,
                    }
                } else {
                    RebalanceTimer::Cancel
                };
            }
            current = next;
        }
        Ok((current, rebalance))
    }

    /// Kafka's `consumerGroupLeave`: -1 leaves (the member is fenced), -2
    /// is a static member leaving for now (it keeps its partitions until
    /// its session expires or it rejoins).
    fn consumer_group_leave(
        &mut self,
        cx: &Cx,
        p: &HeartbeatParams,
    ) -> Result<HeartbeatOutcome, Fail> {
        let gid = &p.group_id;
        let Some(g) = self.consumer_groups.get(gid) else {
            let msg = if self.groups.contains_key(gid) || self.streams_groups.contains_key(gid) {
                format!("Group {gid} is not a consumer group.")
            } else {
                format!("Group {gid} not found.")
            };
            return Err(fail(ResponseError::GroupIdNotFound, msg));
        };
        let left = |wait| HeartbeatOutcome {
            member_id: Some(p.member_id.clone()),
            member_epoch: p.member_epoch,
            wait,
            ..HeartbeatOutcome::default()
        };
        match &p.instance_id {
            None => {
                g.member(&p.member_id).map_err(|(e, m)| fail(e, m))?;
                tracing::info!(group = %gid, member = %p.member_id, "member left the consumer group");
                let wait = self.fence_consumer_member(cx, gid, &p.member_id)?;
                Ok(left(wait))
            }
            Some(inst) => {
                let Some(m) = g.static_member(inst).cloned() else {
                    return Err(fail(
                        ResponseError::UnknownMemberId,
                        format!("Instance id {inst} is unknown."),
                    ));
                };
                if m.member_id != p.member_id {
                    return Err(fail(
                        ResponseError::FencedInstanceId,
                        format!(
                            "Static member {} with instance id {inst} was fenced by member {}.",
                            p.member_id, m.member_id
                        ),
                    ));
                }
                if p.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    tracing::info!(group = %gid, member = %m.member_id, instance = %inst, "static member temporarily left the consumer group");
                    let mut leaving = m.clone();
                    leaving.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                    leaving.partitions_pending_revocation.clear();
                    let mut g = g.clone();
                    let mut recs = Vec::new();
                    push(
                        &mut g,
                        &mut recs,
                        ConsumerRecord::CurrentMemberAssignment(
                            gid.clone(),
                            m.member_id.clone(),
                            Some(CurrentAssignment::of(&leaving)),
                        ),
                    );
                    let wait = write(cx, gid, false, &recs)?;
                    self.consumer_groups.insert(gid.clone(), g);
                    Ok(HeartbeatOutcome {
                        member_id: Some(m.member_id),
                        member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
                        wait,
                        ..HeartbeatOutcome::default()
                    })
                } else {
                    tracing::info!(group = %gid, member = %m.member_id, instance = %inst, "static member left the consumer group");
                    let wait = self.fence_consumer_member(cx, gid, &m.member_id)?;
                    Ok(left(wait))
                }
            }
        }
    }

    /// Kafka's `consumerGroupFenceMember`: the member's records are
    /// deleted and the group epoch bumped, so the others get a new target.
    pub fn fence_consumer_member(
        &mut self,
        cx: &Cx,
        gid: &str,
        member_id: &str,
    ) -> Result<Option<DurableWait>, Fail> {
        self.fence_consumer_members(cx, gid, &[member_id])
    }

    /// Kafka's `consumerGroupFenceMembers`: when only classic members would
    /// be left and the policy allows, the group becomes a classic group
    /// (`convert_to_classic_group`); otherwise the members' records are
    /// deleted (and the resolutions of regular expressions nobody
    /// subscribes to any more) and the group epoch bumped once.
    pub fn fence_consumer_members(
        &mut self,
        cx: &Cx,
        gid: &str,
        members: &[&str],
    ) -> Result<Option<DurableWait>, Fail> {
        let Some(g) = self.consumer_groups.get(gid) else {
            return Ok(None);
        };
        let members: Vec<&str> = members
            .iter()
            .copied()
            .filter(|m| g.members.contains_key(*m))
            .collect();
        if members.is_empty() {
            return Ok(None);
        }
        let mut g = g.clone();
        if self.may_downgrade(cx, &g, &members) {
            if let Some(done) = self.convert_to_classic_group(cx, gid, &members, true) {
                return done;
            }
        }
        let mut recs = Vec::new();
        let regexes: Vec<String> = members
            .iter()
            .filter_map(|id| g.members.get(*id))
            .filter_map(|m| super::group::regex_of(m).map(str::to_string))
            .collect();
        for member_id in &members {
            remove_member(&mut g, &mut recs, gid, member_id);
        }
        // The last subscriber of a regular expression is gone (Kafka's
        // `maybeDeleteResolvedRegularExpressions`).
        let mut deleted = Vec::new();
        for r in regexes {
            if g.num_subscribed_members(&r) == 0 && !deleted.contains(&r) {
                deleted.push(r.clone());
                push(
                    &mut g,
                    &mut recs,
                    ConsumerRecord::RegularExpression(gid.to_string(), r, None),
                );
            }
        }
        let names = g.subscribed_topic_names(None, None);
        let hash = combine_hashes(
            names
                .iter()
                .map(|n| (n, self.topic_hashes.get(n).copied().unwrap_or(0))),
        );
        let epoch = g.group_epoch + 1;
        push(
            &mut g,
            &mut recs,
            ConsumerRecord::GroupMetadata(gid.to_string(), Some((epoch, hash))),
        );
        if g.members.is_empty() {
            // Nobody is left to assign to: the (empty) target assignment
            // is at the new epoch at once, with no computation time
            // (Kafka's consumerGroupFenceMembers when every member goes).
            push(
                &mut g,
                &mut recs,
                ConsumerRecord::TargetAssignmentMetadata(gid.to_string(), Some((epoch, 0))),
            );
        }
        let wait = write(cx, gid, false, &recs)?;
        tracing::info!(group = %gid, members = ?members, epoch, "bumped the consumer group epoch after removing members");
        for member_id in &members {
            if let Some(t) = g.timers.remove(*member_id) {
                self.cancel_member_timers(&t);
            }
        }
        self.consumer_groups.insert(gid.to_string(), g);
        Ok(wait)
    }

    /// Stops every timer of a member.
    pub(super) fn cancel_member_timers(&mut self, t: &MemberTimers) {
        self.timers.cancel(t.session);
        self.timers.cancel(t.rebalance);
        self.timers.cancel(t.join);
        self.timers.cancel(t.sync);
    }

    /// A consumer group timer fired: the session expired, or the member
    /// did not revoke in its rebalance timeout (still at `epoch`).
    pub fn on_consumer_timer(&mut self, cx: &Cx, key: TimerKey, timer: Timer) {
        let (group, member, reason) = match &timer {
            Timer::ConsumerSession { group, member } => {
                let live = self
                    .consumer_groups
                    .get(group)
                    .and_then(|g| g.timers.get(member))
                    .is_some_and(|t| t.session == Some(key));
                if !live {
                    return;
                }
                (group, member, "the member session expired")
            }
            Timer::ConsumerRebalance {
                group,
                member,
                epoch,
            } => {
                let live = self.consumer_groups.get(group).is_some_and(|g| {
                    g.timers
                        .get(member)
                        .is_some_and(|t| t.rebalance == Some(key))
                        && g.members
                            .get(member)
                            .is_some_and(|m| m.member_epoch == *epoch)
                });
                if !live {
                    return;
                }
                (
                    group,
                    member,
                    "it failed to revoke its partitions within its rebalance timeout",
                )
            }
            Timer::ConsumerClassicJoin { group, member } => {
                let live = self
                    .consumer_groups
                    .get(group)
                    .and_then(|g| g.timers.get(member))
                    .is_some_and(|t| t.join == Some(key));
                if !live {
                    return;
                }
                (
                    group,
                    member,
                    "the classic member failed to join within the rebalance timeout",
                )
            }
            Timer::ConsumerClassicSync { group, member } => {
                let live = self
                    .consumer_groups
                    .get(group)
                    .and_then(|g| g.timers.get(member))
                    .is_some_and(|t| t.sync == Some(key));
                if !live {
                    return;
                }
                (group, member, "the member failed to sync within timeout")
            }
            _ => return,
        };
        tracing::info!(group = %group, member = %member, "member fenced from the consumer group because {reason}");
        if let Err((e, _)) = self.fence_consumer_member(cx, group, member) {
            tracing::warn!(group = %group, member = %member, error = e, "writing the fencing of a consumer group member failed");
        }
    }

    /// ConsumerGroupDescribe of one group.
    pub fn consumer_group_describe(
        &self,
        gid: &str,
        default_assignor: &str,
    ) -> Result<ConsumerGroupDescription, Fail> {
        let Some(g) = self.consumer_groups.get(gid) else {
            let msg = if self.groups.contains_key(gid) || self.streams_groups.contains_key(gid) {
                format!("Group {gid} is not a consumer group.")
            } else {
                format!("Group {gid} not found.")
            };
            return Err(fail(ResponseError::GroupIdNotFound, msg));
        };
        Ok(ConsumerGroupDescription {
            state: g.state(),
            group_epoch: g.group_epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g
                .preferred_server_assignor(None, None)
                .unwrap_or_else(|| default_assignor.to_string()),
            members: g
                .members
                .values()
                .map(|m| {
                    (
                        m.clone(),
                        g.target_assignment
                            .get(&m.member_id)
                            .cloned()
                            .unwrap_or_default(),
                    )
                })
                .collect(),
        })
    }
}
