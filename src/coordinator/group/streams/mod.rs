//! KIP-1071 streams groups (the streams rebalance protocol), after Kafka's
//! `streams` package of the group coordinator: the group's topology and
//! epochs, its members, the target assignment of active and standby tasks
//! (`assignor`, after Kafka's sticky assignor; no warm-up tasks, as Kafka
//! 4.4's), reconciliation with revocation before assignment
//! (`CurrentAssignmentBuilder`), and StreamsGroupHeartbeat /
//! StreamsGroupDescribe.
//!
//! A group's state is written to `__consumer_offsets` as Kafka's
//! StreamsGroup* records (`records`: the records are derived from the
//! group before and after each change) and replayed at load, so members
//! carry on with their epochs across a restart. Session and rebalance
//! timeouts are enforced when the group is next touched (any member's
//! heartbeat, a describe), not by a timer.
//!
//! - `topology`: the topology configured against the broker's topics.
//! - `assignor`: the target assignment.
//! - `reconcile`: a member's way to the target.
//! - `batching`: when a new target is computed (initial rebalance delay,
//!   assignment interval).
//! - `records`: the StreamsGroup* records, their derivation and replay.
//! - `service`: the GroupCoordinator's streams entry points.

pub mod assignor;
pub mod batching;
mod reconcile;
pub mod records;
pub mod service;
pub mod topology;

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

use crate::coordinator::group::consumer::{combine_hashes, topic_hash, TopicResolver};
use crate::coordinator::group::timers::{Timer, TimerKey, Timers};
use crate::protocol::streams::{
    status, Endpoint, EndpointToPartitions, KeyValue, Status, StreamsGroupHeartbeatRequest,
    Subtopology, TaskIds, TopicPartition,
};
pub use assignor::TaskSet;
use topology::{ConfiguredTopology, InternalTopic};

/// Most members a streams group takes before GROUP_MAX_SIZE_REACHED (the
/// broker's `group.streams.max.size` is capped by it).
pub const MAX_MEMBERS: usize = 10_000;

/// Tasks by subtopology: the partitions each covers.
pub type Tasks = BTreeMap<String, BTreeSet<i32>>;

fn tasks_from(ids: &[TaskIds]) -> Tasks {
    let mut t = Tasks::new();
    for i in ids {
        t.entry(i.subtopology_id.clone())
            .or_default()
            .extend(i.partitions.iter().copied());
    }
    t.retain(|_, ps| !ps.is_empty());
    t
}

pub fn task_ids(t: &Tasks) -> Vec<TaskIds> {
    t.iter()
        .map(|(s, ps)| TaskIds {
            subtopology_id: s.clone(),
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

fn minus(a: &Tasks, b: &Tasks) -> Tasks {
    let mut out = Tasks::new();
    for (s, ps) in a {
        let rest: BTreeSet<i32> = match b.get(s) {
            Some(bs) => ps.difference(bs).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(s.clone(), rest);
        }
    }
    out
}

fn intersect(a: &Tasks, b: &Tasks) -> Tasks {
    let mut out = Tasks::new();
    for (s, ps) in a {
        if let Some(bs) = b.get(s) {
            let both: BTreeSet<i32> = ps.intersection(bs).copied().collect();
            if !both.is_empty() {
                out.insert(s.clone(), both);
            }
        }
    }
    out
}

fn union_into(a: &mut Tasks, b: Tasks) {
    for (s, ps) in b {
        a.entry(s).or_default().extend(ps);
    }
}

fn contains(t: &Tasks, s: &str, p: i32) -> bool {
    t.get(s).is_some_and(|ps| ps.contains(&p))
}

/// Kafka's streams `MemberState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    #[default]
    Stable,
    UnrevokedTasks,
    UnreleasedTasks,
}

#[derive(Debug, Clone, Default)]
pub struct StreamsGroupMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub topology_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub process_id: String,
    pub user_endpoint: Option<Endpoint>,
    pub client_tags: Vec<KeyValue>,
    /// Active tasks the member owns.
    pub assigned: Tasks,
    /// Active tasks it must give up before the next epoch.
    pub revoking: Tasks,
    /// Standby tasks the member holds.
    pub standby: Tasks,
    /// Standby tasks it must give up before the next epoch.
    pub revoking_standby: Tasks,
    /// The offsets of task state it last reported (`TaskOffsets`), which
    /// rank standby candidates; not durable (Kafka keeps them in memory).
    pub task_offsets: BTreeMap<(String, i32), i64>,
    /// The end offsets of its tasks' changelogs it last reported
    /// (`TaskEndOffsets`), for StreamsGroupDescribe; not durable either.
    pub task_end_offsets: BTreeMap<(String, i32), i64>,
    pub session_deadline_ms: i64,
    /// Set while tasks are being revoked.
    pub rebalance_deadline_ms: Option<i64>,
}

/// Kafka's streams group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamsGroupState {
    Empty,
    NotReady,
    Assigning,
    Reconciling,
    Stable,
}

impl StreamsGroupState {
    pub fn name(self) -> &'static str {
        match self {
            StreamsGroupState::Empty => "Empty",
            StreamsGroupState::NotReady => "NotReady",
            StreamsGroupState::Assigning => "Assigning",
            StreamsGroupState::Reconciling => "Reconciling",
            StreamsGroupState::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StreamsGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub topology_epoch: i32,
    pub subtopologies: Vec<Subtopology>,
    pub configured: ConfiguredTopology,
    pub members: BTreeMap<String, StreamsGroupMember>,
    /// The target assignment by member.
    pub target: BTreeMap<String, TaskSet>,
    /// The assignment configurations the target was last computed with
    /// (Kafka's `LastAssignmentConfigs`: `num.standby.replicas`, and
    /// `rack.aware.assignment.tags` when set); a change bumps the group
    /// epoch.
    pub last_assignment_configs: BTreeMap<String, String>,
    pub endpoint_information_epoch: i32,
    pub shutdown_request_member_id: Option<String>,
    /// The hash of the topology's topics as last configured (Kafka's
    /// `metadataHash`): a change bumps the group epoch.
    pub metadata_hash: i64,
    /// The topology epoch last configured without error, else -1.
    pub validated_topology_epoch: i32,
    /// KIP-1331's StoredDescriptionTopologyEpoch and
    /// FailedDescriptionTopologyEpoch (-1: none): only ever replayed from a
    /// log a Kafka broker with a description plugin wrote, and kept.
    pub stored_description_topology_epoch: i32,
    pub failed_description_topology_epoch: i32,
    /// Replayed from the log and not configured since: `configured` is
    /// not known yet, and the stored `metadata_hash` decides whether the
    /// topics changed meanwhile.
    pub loaded: bool,
    /// When the target assignment was computed (ms; 0: never, or written
    /// by a broker that did not record it): the next one waits for the
    /// group's assignment interval after it (KIP-1251 batching).
    pub assignment_timestamp_ms: i64,
    /// The initial rebalance delay's timer, while it runs (Kafka's
    /// `streamsInitialRebalanceKey`): no target is computed until it fires.
    /// Not durable: a group loaded from the log has none.
    pub initial_rebalance_timer: Option<TimerKey>,
    /// The assignment interval of the group's last heartbeat, for the
    /// target computed when the initial rebalance delay ends (Kafka reads
    /// the group's config then).
    pub last_assignment_interval_ms: i32,
}

impl StreamsGroup {
    /// A new group starts at group epoch 1 with an empty target assignment
    /// at epoch 1 (Kafka 4.4's `StreamsGroup` and its initial
    /// `TargetAssignmentMetadata`): a member joining while the first
    /// assignment is delayed reconciles to epoch 1 with no tasks.
    pub fn new(group_id: &str) -> StreamsGroup {
        StreamsGroup {
            group_id: group_id.to_string(),
            group_epoch: 1,
            assignment_epoch: 1,
            validated_topology_epoch: -1,
            stored_description_topology_epoch: -1,
            failed_description_topology_epoch: -1,
            ..StreamsGroup::default()
        }
    }

    pub fn state(&self) -> StreamsGroupState {
        if self.members.is_empty() {
            StreamsGroupState::Empty
        } else if !self.configured.is_ready() {
            StreamsGroupState::NotReady
        } else if self.group_epoch > self.assignment_epoch {
            StreamsGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.member_epoch != self.assignment_epoch)
        {
            StreamsGroupState::Reconciling
        } else {
            StreamsGroupState::Stable
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The group's `num.standby.replicas` as its target was last computed.
    pub fn num_standby_replicas(&self) -> usize {
        self.last_assignment_configs
            .get(NUM_STANDBY_REPLICAS)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    }

    /// OffsetFetch's member check (Kafka's `StreamsGroup.validateOffsetFetch`):
    /// none without a member id; Err: the error code.
    pub fn validate_offset_fetch(&self, member_id: Option<&str>, epoch: i32) -> Result<(), i16> {
        member_id.map_or(Ok(()), |m| {
            self.validate_member_epoch(m, epoch)
                .map_err(crate::coordinator::group::api::code)
        })
    }

    /// OffsetCommit/OffsetFetch's member check (Kafka's
    /// `StreamsGroup.validateOffsetCommit`): a member's current epoch.
    pub fn validate_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        if epoch < 0 && self.is_empty() {
            // The admin client or a consumer outside the group: only while
            // the group is empty.
            return Ok(());
        }
        let m = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if epoch != m.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Fences members whose session or revocation ran out (Kafka's session
    /// and rebalance timeouts); true if any was.
    pub fn expire_members(&mut self, now: i64) -> bool {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now || m.rebalance_deadline_ms.is_some_and(|d| d <= now)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.group_id, member = %id, "streams group member fenced: session or rebalance timeout");
            self.remove_member(id);
        }
        !expired.is_empty()
    }

    fn remove_member(&mut self, id: &str) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.group_epoch += 1;
        }
    }

    /// The target assignment (`assignor`: Kafka's `StickyTaskAssignor`).
    fn compute_target(&mut self) {
        self.target = assignor::assign(self, self.num_standby_replicas());
    }
}

/// Kafka's assignment configuration key for standby replicas.
pub const NUM_STANDBY_REPLICAS: &str = "num.standby.replicas";

/// What the coordinator needs of a StreamsGroupHeartbeat besides the
/// request.
pub struct HeartbeatContext {
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
    /// The group's `streams.initial.rebalance.delay.ms`, else the broker's
    /// `group.streams.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i32,
    /// The group's `streams.assignment.interval.ms`, else the broker's
    /// `group.streams.assignment.interval.ms`, within its min/max bounds.
    pub assignment_interval_ms: i32,
    /// Kafka's assignment configurations of the group: `num.standby.replicas`
    /// (the group's `streams.num.standby.replicas`, else the broker's
    /// `group.streams.num.standby.replicas`), `rack.aware.assignment.tags`
    /// when set.
    pub assignment_configs: BTreeMap<String, String>,
    /// The request's version: MISSING_CLIENT_TAGS is answered from 1 only.
    pub api_version: i16,
    pub now: i64,
}

/// A heartbeat's answer: the response fields the coordinator decides and
/// the internal topics to create (Kafka's `StreamsGroupHeartbeatResult`).
#[derive(Debug, Default)]
pub struct StreamsHeartbeatOutcome {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub status: Vec<Status>,
    pub active_tasks: Option<Vec<TaskIds>>,
    pub standby_tasks: Option<Vec<TaskIds>>,
    pub warmup_tasks: Option<Vec<TaskIds>>,
    pub endpoint_information_epoch: i32,
    pub partitions_by_user_endpoint: Option<Vec<EndpointToPartitions>>,
    pub to_create: Vec<InternalTopic>,
}

impl StreamsHeartbeatOutcome {
    pub fn error(e: ResponseError, message: Option<String>) -> StreamsHeartbeatOutcome {
        StreamsHeartbeatOutcome {
            error: e.code(),
            message,
            ..StreamsHeartbeatOutcome::default()
        }
    }
}

fn invalid(message: &str) -> String {
    message.to_string()
}

/// Kafka 4.4's request checks (`GroupCoordinatorService`). Static members
/// (an instance id) and warm-up tasks are accepted as Kafka 4.4 accepts
/// them, but kastle keeps no static identity and assigns no warm-up tasks
/// (neither does Kafka 4.4's sticky assignor); task offsets only rank
/// standby candidates (no task end offsets, no lag).
/// Err: the INVALID_REQUEST message.
pub fn validate(r: &StreamsGroupHeartbeatRequest) -> Result<(), String> {
    if let Some(t) = &r.topology {
        if t.subtopologies
            .iter()
            .any(|s| !s.source_topic_regex.is_empty())
        {
            return Err(invalid(
                "Regular expressions for source topics are not supported yet.",
            ));
        }
    }
    if r.member_id.is_empty() {
        return Err(invalid("MemberId can't be empty."));
    }
    if r.group_id.is_empty() {
        return Err(invalid("GroupId can't be empty."));
    }
    if r.instance_id.as_deref() == Some("") {
        return Err(invalid("InstanceId can't be empty."));
    }
    if r.rack_id.as_deref() == Some("") {
        return Err(invalid("RackId can't be empty."));
    }
    if r.member_epoch == 0 {
        if r.rebalance_timeout_ms == -1 {
            return Err(invalid(
                "RebalanceTimeoutMs must be provided in first request.",
            ));
        }
        for (tasks, what) in [
            (&r.active_tasks, "ActiveTasks"),
            (&r.standby_tasks, "StandbyTasks"),
            (&r.warmup_tasks, "WarmupTasks"),
        ] {
            if tasks.as_ref().is_some_and(|t| !t.is_empty()) {
                return Err(invalid(&format!("{what} must be empty when (re-)joining.")));
            }
        }
        if r.topology.is_none() {
            return Err(invalid("Topology must be non-null when (re-)joining."));
        }
    } else if r.member_epoch == -2 && r.instance_id.is_none() {
        return Err(invalid("InstanceId can't be null."));
    } else if r.member_epoch < -2 {
        return Err(invalid(&format!(
            "MemberEpoch is {}, but must be greater than or equal to -2.",
            r.member_epoch
        )));
    }
    let given = [&r.active_tasks, &r.standby_tasks, &r.warmup_tasks]
        .iter()
        .filter(|t| t.is_some())
        .count();
    if given != 0 && given != 3 {
        return Err(invalid(
            "If one task-type is non-null, all must be non-null.",
        ));
    }
    if r.member_epoch != 0 && r.topology.is_some() {
        return Err(invalid("Topology can only be provided when (re-)joining."));
    }
    Ok(())
}

/// StreamsGroupHeartbeat on `groups` (the request was validated).
pub fn heartbeat(
    groups: &mut BTreeMap<String, StreamsGroup>,
    timers: &mut Timers,
    r: &StreamsGroupHeartbeatRequest,
    cx: &HeartbeatContext,
    topics: &dyn TopicResolver,
) -> StreamsHeartbeatOutcome {
    let joining = r.member_epoch == 0;
    if !joining && !groups.contains_key(&r.group_id) {
        return StreamsHeartbeatOutcome::error(
            ResponseError::GroupIdNotFound,
            Some(format!("Streams group {} not found.", r.group_id)),
        );
    }
    // An invalid topology changes nothing (Kafka's write operation fails
    // as a whole).
    if let Some(t) = &r.topology {
        let current = groups.get(&r.group_id).map_or(0, |g| g.topology_epoch);
        if t.epoch > current
            || groups
                .get(&r.group_id)
                .is_none_or(|g| g.subtopologies.is_empty())
        {
            if let Err(message) = topology::configure(&t.subtopologies, topics) {
                return StreamsHeartbeatOutcome::error(
                    ResponseError::StreamsInvalidTopology,
                    Some(message),
                );
            }
        }
    }
    let group = groups
        .entry(r.group_id.clone())
        .or_insert_with(|| StreamsGroup::new(&r.group_id));
    group.last_assignment_interval_ms = cx.assignment_interval_ms;
    if group.expire_members(cx.now) {
        refresh(group, topics, cx.now);
    }

    // Leave (-2: a static member's temporary leave, a leave here).
    if r.member_epoch == -1 || r.member_epoch == -2 {
        if !group.members.contains_key(&r.member_id) {
            return StreamsHeartbeatOutcome::error(
                ResponseError::UnknownMemberId,
                Some(format!(
                    "Member {} is not a member of group {}.",
                    r.member_id, r.group_id
                )),
            );
        }
        group.remove_member(&r.member_id);
        tracing::info!(group = %r.group_id, member = %r.member_id, "streams group member left");
        refresh(group, topics, cx.now);
        return StreamsHeartbeatOutcome {
            member_id: r.member_id.clone(),
            member_epoch: r.member_epoch,
            heartbeat_interval_ms: cx.heartbeat_interval_ms,
            ..StreamsHeartbeatOutcome::default()
        };
    }

    let previous = group.members.get(&r.member_id).cloned();
    // What the member reports it owns (all three lists or none).
    let owned = r.active_tasks.as_deref().map(|a| TaskSet {
        active: tasks_from(a),
        standby: r
            .standby_tasks
            .as_deref()
            .map(tasks_from)
            .unwrap_or_default(),
    });
    let member = match (&previous, joining) {
        (None, false) => {
            return StreamsHeartbeatOutcome::error(
                ResponseError::UnknownMemberId,
                Some(format!(
                    "Member {} is not a member of group {}.",
                    r.member_id, r.group_id
                )),
            )
        }
        (None, true) => {
            if group.members.len() >= cx.max_size.min(MAX_MEMBERS) {
                return StreamsHeartbeatOutcome::error(
                    ResponseError::GroupMaxSizeReached,
                    Some(format!(
                        "The streams group has reached its maximum capacity of {} members.",
                        cx.max_size.min(MAX_MEMBERS)
                    )),
                );
            }
            StreamsGroupMember {
                member_id: r.member_id.clone(),
                member_epoch: 0,
                previous_member_epoch: -1,
                state: MemberState::Stable,
                rack_id: None,
                rebalance_timeout_ms: r.rebalance_timeout_ms,
                topology_epoch: 0,
                client_id: String::new(),
                client_host: String::new(),
                process_id: String::new(),
                user_endpoint: None,
                client_tags: Vec::new(),
                assigned: Tasks::new(),
                revoking: Tasks::new(),
                standby: Tasks::new(),
                revoking_standby: Tasks::new(),
                task_offsets: BTreeMap::new(),
                task_end_offsets: BTreeMap::new(),
                session_deadline_ms: 0,
                rebalance_deadline_ms: None,
            }
        }
        (Some(m), _) => {
            // Kafka's `throwIfStreamsGroupMemberEpochIsInvalid`: a member
            // one epoch behind is accepted if it owns what it was given.
            let owned_within = |o: &TaskSet| {
                minus(&o.active, &m.assigned).is_empty() && minus(&o.standby, &m.standby).is_empty()
            };
            if r.member_epoch > m.member_epoch
                || (r.member_epoch < m.member_epoch
                    && !(r.member_epoch == m.previous_member_epoch
                        && owned.as_ref().is_some_and(owned_within)))
                || (joining && m.member_epoch != 0)
            {
                if joining {
                    // A member rejoining with epoch 0 starts over.
                    group.remove_member(&r.member_id);
                    return heartbeat(groups, timers, r, cx, topics);
                }
                return StreamsHeartbeatOutcome::error(
                    ResponseError::FencedMemberEpoch,
                    Some(format!(
                        "The streams group member has a smaller member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                        r.member_epoch, m.member_epoch
                    )),
                );
            }
            m.clone()
        }
    };

    // 1. The member's metadata.
    let mut updated = member.clone();
    if let Some(rack) = &r.rack_id {
        updated.rack_id = Some(rack.clone());
    }
    if r.rebalance_timeout_ms != -1 {
        updated.rebalance_timeout_ms = r.rebalance_timeout_ms;
    }
    if let Some(t) = &r.topology {
        updated.topology_epoch = t.epoch;
    }
    updated.client_id = cx.client_id.clone();
    updated.client_host = cx.client_host.clone();
    if let Some(p) = &r.process_id {
        updated.process_id = p.clone();
    }
    if let Some(e) = &r.user_endpoint {
        updated.user_endpoint = Some(e.clone());
    }
    if let Some(tags) = &r.client_tags {
        updated.client_tags = tags.clone();
    }
    let by_task = |offsets: &[crate::protocol::streams::TaskOffset]| {
        offsets
            .iter()
            .map(|o| ((o.subtopology_id.clone(), o.partition), o.offset))
            .collect()
    };
    if let Some(offsets) = &r.task_offsets {
        updated.task_offsets = by_task(offsets);
    }
    if let Some(offsets) = &r.task_end_offsets {
        updated.task_end_offsets = by_task(offsets);
    }
    updated.session_deadline_ms = cx.now + i64::from(cx.session_timeout_ms);
    // Kafka 4.4: the first member of an empty group starts the initial
    // rebalance delay (if it is not running already); the target waits
    // for it.
    if group.members.is_empty()
        && cx.initial_rebalance_delay_ms > 0
        && group.initial_rebalance_timer.is_none()
    {
        group.initial_rebalance_timer = Some(timers.schedule(
            i64::from(cx.initial_rebalance_delay_ms),
            Timer::StreamsInitialRebalance {
                group: r.group_id.clone(),
            },
        ));
        tracing::debug!(group = %r.group_id, delay_ms = cx.initial_rebalance_delay_ms, "streams group initial rebalance delay started");
    }
    let metadata_changed = previous.as_ref().is_none_or(|p| {
        p.rack_id != updated.rack_id
            || p.process_id != updated.process_id
            || p.user_endpoint != updated.user_endpoint
            || p.client_tags != updated.client_tags
            || p.topology_epoch != updated.topology_epoch
    });
    group.members.insert(r.member_id.clone(), updated);
    // Kafka bumps the group epoch at most once per heartbeat, whatever
    // changed (member metadata, topology, assignment configs, metadata).
    let mut bump = metadata_changed;

    // 2. The group's topology: the first member's, or a newer epoch.
    let mut status = Vec::new();
    if let Some(t) = &r.topology {
        if (group.subtopologies.is_empty() && group.topology_epoch == 0)
            || t.epoch > group.topology_epoch
        {
            group.topology_epoch = t.epoch;
            group.subtopologies = t.subtopologies.clone();
            bump = true;
        }
    }
    if let Some(m) = group.members.get(&r.member_id) {
        if m.topology_epoch < group.topology_epoch {
            status.push(Status {
                status_code: status::STALE_TOPOLOGY,
                status_detail: format!(
                    "The member's topology epoch {} is behind the group's topology epoch {}.",
                    m.topology_epoch, group.topology_epoch
                ),
            });
        }
    }

    // Kafka 4.4: changed assignment configurations (the group's standby
    // replicas) call for a new target, one epoch bump with the others.
    if group.last_assignment_configs != cx.assignment_configs {
        tracing::info!(group = %r.group_id, configs = ?cx.assignment_configs, "streams group assignment configurations changed");
        group.last_assignment_configs = cx.assignment_configs.clone();
        bump = true;
    }
    if bump {
        group.group_epoch += 1;
    }

    // 3. Internal topics; a changed configuration bumps the group epoch.
    if let Err(message) = refresh_target(group, topics, cx.now, bump, Some(&mut status)) {
        return StreamsHeartbeatOutcome::error(
            ResponseError::StreamsInvalidTopology,
            Some(message),
        );
    }

    // 4-5. Reconcile the member with the target.
    group.reconcile(&r.member_id, owned.as_ref(), cx.now);
    if r.shutdown_application {
        group.shutdown_request_member_id = Some(r.member_id.clone());
    }
    let Some(m) = group.members.get(&r.member_id) else {
        return StreamsHeartbeatOutcome::error(ResponseError::UnknownMemberId, None);
    };
    // Kafka's `hasAssignedTasksChanged` (the tasks, not the member epoch)
    // and `hasUserEndpointChanged`, against the member before this
    // heartbeat (a joining member had none of either).
    let changed = match &previous {
        Some(p) => p.assigned != m.assigned || p.standby != m.standby,
        None => !m.assigned.is_empty() || !m.standby.is_empty(),
    };
    let endpoint_changed =
        previous.as_ref().and_then(|p| p.user_endpoint.as_ref()) != m.user_endpoint.as_ref();
    let mut out = StreamsHeartbeatOutcome {
        member_id: m.member_id.clone(),
        member_epoch: m.member_epoch,
        heartbeat_interval_ms: cx.heartbeat_interval_ms,
        ..StreamsHeartbeatOutcome::default()
    };
    if joining || changed {
        out.active_tasks = Some(task_ids(&m.assigned));
        out.standby_tasks = Some(task_ids(&m.standby));
        // Kafka 4.4's sticky assignor assigns no warm-up tasks.
        out.warmup_tasks = Some(Vec::new());
    }
    // The endpoint information moves when this member's endpoint did, or
    // its tasks did and it has an endpoint to be found at.
    if endpoint_changed || (changed && m.user_endpoint.is_some()) {
        group.endpoint_information_epoch += 1;
    }
    if group.endpoint_information_epoch != r.endpoint_information_epoch {
        out.partitions_by_user_endpoint = Some(endpoint_partitions(group));
    }
    out.endpoint_information_epoch = group.endpoint_information_epoch;
    if let Some(e) = &group.configured.error {
        out.to_create = group.configured.to_create.clone();
        status.push(Status {
            status_code: e.status,
            status_detail: e.detail.clone(),
        });
    }
    if let Some(who) = &group.shutdown_request_member_id {
        status.push(Status {
            status_code: status::SHUTDOWN_APPLICATION,
            status_detail: format!(
                "Streams group member {who} encountered a fatal error and requested a shutdown for the entire application."
            ),
        });
    }
    if let Some(s) = missing_client_tags(cx, m) {
        status.push(s);
    }
    out.status = status;
    out
}

/// Kafka 4.4 (KAFKA-20744): from version 1, a member without a client tag
/// the group's rack-aware assignment tags name hears so (it does not stop
/// its assignment), the missing tags in the configured order.
fn missing_client_tags(cx: &HeartbeatContext, m: &StreamsGroupMember) -> Option<Status> {
    if cx.api_version < 1 {
        return None;
    }
    let tags = cx.assignment_configs.get("rack.aware.assignment.tags")?;
    let missing: Vec<&str> = tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !m.client_tags.iter().any(|kv| kv.key == *t))
        .collect();
    (!missing.is_empty()).then(|| Status {
        status_code: status::MISSING_CLIENT_TAGS,
        status_detail: format!(
            "Missing required client tags for rack-aware standby assignment: [{}]. Configure them via 'client.tag.<tagKey>' in your Streams config.",
            missing.join(", ")
        ),
    })
}

/// Where each member with a user endpoint (Interactive Queries) serves
/// from: the input partitions of its active tasks and of its standby tasks
/// (Kafka's `EndpointToPartitionsManager`).
fn endpoint_partitions(group: &StreamsGroup) -> Vec<EndpointToPartitions> {
    let mut out = Vec::new();
    for m in group.members.values() {
        let Some(endpoint) = &m.user_endpoint else {
            continue;
        };
        out.push(EndpointToPartitions {
            user_endpoint: endpoint.clone(),
            active_partitions: input_partitions(group, &m.assigned),
            standby_partitions: input_partitions(group, &m.standby),
        });
    }
    out
}

/// The input partitions (source and repartition source topics) of
/// `tasks`, by topic.
fn input_partitions(group: &StreamsGroup, tasks: &Tasks) -> Vec<TopicPartition> {
    let mut by_topic: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for s in &group.subtopologies {
        let Some(ps) = tasks.get(&s.subtopology_id) else {
            continue;
        };
        let inputs = s
            .source_topics
            .iter()
            .chain(s.repartition_source_topics.iter().map(|t| &t.name));
        for t in inputs {
            by_topic
                .entry(t.clone())
                .or_default()
                .extend(ps.iter().copied());
        }
    }
    by_topic
        .into_iter()
        .map(|(topic, ps)| TopicPartition {
            topic,
            partitions: ps.into_iter().collect(),
        })
        .collect()
}

/// Kafka's metadata hash of a streams group: every topic its topology
/// reads or keeps state in, as the broker has it now.
fn metadata_hash(subtopologies: &[Subtopology], topics: &dyn TopicResolver) -> i64 {
    let names: BTreeSet<&String> = subtopologies
        .iter()
        .flat_map(|s| {
            s.source_topics
                .iter()
                .chain(s.repartition_source_topics.iter().map(|t| &t.name))
                .chain(s.state_changelog_topics.iter().map(|t| &t.name))
        })
        .collect();
    combine_hashes(
        names
            .into_iter()
            .map(|n| (n, topic_hash(n, topics.by_name(n)))),
    )
}

/// A new target after members were fenced outside a heartbeat (an
/// invalid topology keeps the old configuration).
pub fn refresh(group: &mut StreamsGroup, topics: &dyn TopicResolver, now: i64) {
    if let Err(e) = refresh_target(group, topics, now, false, None) {
        tracing::warn!(group = %group.group_id, error = %e, "streams group topology is invalid");
    }
}

/// Configures the topology against the topics as they are now and, when
/// the group epoch moved past the assignment's, computes a new target.
/// `bumped`: the heartbeat calling has bumped the group epoch already, so
/// changed topic metadata needs no second bump.
fn refresh_target(
    group: &mut StreamsGroup,
    topics: &dyn TopicResolver,
    now: i64,
    bumped: bool,
    status: Option<&mut Vec<Status>>,
) -> Result<(), String> {
    let configured = topology::configure(&group.subtopologies, topics)?;
    let hash = metadata_hash(&group.subtopologies, topics);
    let changed = if group.loaded {
        hash != group.metadata_hash
    } else {
        configured != group.configured
    };
    group.loaded = false;
    group.metadata_hash = hash;
    group.validated_topology_epoch = if configured.is_ready() {
        group.topology_epoch
    } else {
        -1
    };
    group.configured = configured;
    if changed && !bumped {
        group.group_epoch += 1;
    }
    group.maybe_update_target(now, status);
    let ids: Vec<String> = group.members.keys().cloned().collect();
    for id in ids {
        // Others move on as their own heartbeats report; a member only
        // waiting for released tasks can take them now.
        if group
            .members
            .get(&id)
            .is_some_and(|m| m.state == MemberState::UnreleasedTasks)
        {
            group.reconcile(&id, None, now);
        }
    }
    Ok(())
}
