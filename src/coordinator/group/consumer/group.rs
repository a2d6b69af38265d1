//! A KIP-848 consumer group's state (Kafka's `ConsumerGroup`): the group
//! epoch, the target assignment and its epoch, the members with their
//! current assignments, and what is derived from them (state, static
//! members, which member epoch owns each partition, the resolved regular
//! expressions the members subscribe to). The state changes
//! only by replaying records ([`ConsumerGroup::replay`]), on load and after
//! each write alike, so what is in memory is what `__consumer_offsets`
//! says.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::member::{Assignment, ConsumerGroupMember, LEAVE_GROUP_MEMBER_EPOCH};
use super::records::{ConsumerRecord, ResolvedRegularExpression};
use crate::coordinator::group::timers::TimerKey;

/// Kafka's `ConsumerGroupState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    /// The name ListGroups and the describe APIs show.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// A member's running timers (not durable).
#[derive(Debug, Default, Clone, Copy)]
pub struct MemberTimers {
    pub session: Option<TimerKey>,
    pub rebalance: Option<TimerKey>,
    /// A classic member's join and sync timeouts.
    pub join: Option<TimerKey>,
    pub sync: Option<TimerKey>,
}

#[derive(Debug, Default, Clone)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    /// The subscribed topics' hash the group epoch was computed at.
    pub metadata_hash: i64,
    pub assignment_epoch: i32,
    /// When the target assignment was computed (ms; 0: not known, e.g.
    /// loaded from a record an older broker wrote): the next one waits for
    /// the group's assignment interval after it (KIP-1251 batching).
    pub assignment_timestamp_ms: i64,
    pub members: BTreeMap<String, ConsumerGroupMember>,
    /// instance id -> member id.
    pub static_members: HashMap<String, String>,
    pub target_assignment: BTreeMap<String, Assignment>,
    /// (topic, partition) -> epoch of the member that owns it (or must
    /// revoke it).
    partition_epochs: HashMap<(Uuid, i32), i32>,
    /// A pre-4.1 partition metadata record was loaded: the next heartbeat
    /// writes its tombstone.
    pub has_partition_metadata_record: bool,
    /// The topics each subscribed regular expression matched (records
    /// type 16); a member subscribes to its topic names plus these.
    pub resolved_regular_expressions: BTreeMap<String, ResolvedRegularExpression>,
    pub timers: HashMap<String, MemberTimers>,
}

/// A member's regular expression; an empty one is none (Kafka's
/// `subscribedTopicRegexOrNull`).
pub fn regex_of(m: &ConsumerGroupMember) -> Option<&str> {
    m.subscribed_topic_regex
        .as_deref()
        .filter(|r| !r.is_empty())
}

impl ConsumerGroup {
    /// A new group starts at group epoch 1 with an empty target assignment
    /// at epoch 1, as Kafka 4.3+ does (KAFKA-20268): a member joining a
    /// group whose first assignment is not computed yet reconciles to epoch
    /// 1, and the first computed assignment is epoch 2.
    pub fn new(group_id: &str) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_string(),
            group_epoch: 1,
            assignment_epoch: 1,
            ..ConsumerGroup::default()
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member, or UNKNOWN_MEMBER_ID with Kafka's message.
    pub fn member(&self, member_id: &str) -> Result<&ConsumerGroupMember, (ResponseError, String)> {
        self.members.get(member_id).ok_or_else(|| {
            (
                ResponseError::UnknownMemberId,
                format!(
                    "Member {member_id} is not a member of group {}.",
                    self.group_id
                ),
            )
        })
    }

    pub fn static_member(&self, instance_id: &str) -> Option<&ConsumerGroupMember> {
        self.static_members
            .get(instance_id)
            .and_then(|id| self.members.get(id))
    }

    /// The epoch of the member owning the partition, -1 if none.
    pub fn current_partition_epoch(&self, topic: Uuid, partition: i32) -> i32 {
        self.partition_epochs
            .get(&(topic, partition))
            .copied()
            .unwrap_or(-1)
    }

    /// The target of `member_id`, or of the static member `instance_id`
    /// replaces (Kafka's `targetAssignment(memberId, instanceId)`).
    pub fn target_of(&self, member_id: &str, instance_id: Option<&str>) -> Assignment {
        let id = match instance_id {
            None => Some(member_id),
            Some(i) => self.static_members.get(i).map(String::as_str),
        };
        id.and_then(|id| self.target_assignment.get(id))
            .cloned()
            .unwrap_or_default()
    }

    /// The members with `old` replaced by `new` (either may be absent).
    fn members_with<'a>(
        &'a self,
        old: Option<&'a ConsumerGroupMember>,
        new: Option<&'a ConsumerGroupMember>,
    ) -> impl Iterator<Item = &'a ConsumerGroupMember> {
        let skip = old.map(|m| m.member_id.as_str());
        self.members
            .values()
            .filter(move |m| Some(m.member_id.as_str()) != skip)
            .chain(new)
    }

    /// The topics a member subscribes to: its names and what its regular
    /// expression resolved to (nothing while it is unresolved).
    pub fn member_topics<'a>(&'a self, m: &'a ConsumerGroupMember) -> BTreeSet<&'a str> {
        let mut out: BTreeSet<&str> = m
            .subscribed_topic_names
            .iter()
            .map(String::as_str)
            .collect();
        if let Some(r) = regex_of(m).and_then(|r| self.resolved_regular_expressions.get(r)) {
            out.extend(r.topics.iter().map(String::as_str));
        }
        out
    }

    /// Every topic some member subscribes to, by name or by a resolved
    /// regular expression, with `old` replaced by `new` (Kafka's
    /// `computeSubscribedTopicNames`).
    pub fn subscribed_topic_names(
        &self,
        old: Option<&ConsumerGroupMember>,
        new: Option<&ConsumerGroupMember>,
    ) -> BTreeSet<String> {
        self.members_with(old, new)
            .flat_map(|m| self.member_topics(m))
            .map(str::to_string)
            .collect()
    }

    /// How many members subscribe to each regular expression (Kafka's
    /// `subscribedRegularExpressions`).
    pub fn subscribed_regular_expressions(&self) -> BTreeMap<String, usize> {
        let mut out: BTreeMap<String, usize> = BTreeMap::new();
        for r in self.members.values().filter_map(regex_of) {
            *out.entry(r.to_string()).or_default() += 1;
        }
        out
    }

    /// How many members subscribe to `regex`.
    pub fn num_subscribed_members(&self, regex: &str) -> usize {
        self.members
            .values()
            .filter(|m| regex_of(m) == Some(regex))
            .count()
    }

    /// When the regular expressions were last resolved (they are resolved
    /// together; `i64::MIN` when none is).
    pub fn last_regex_refresh_ms(&self) -> i64 {
        self.resolved_regular_expressions
            .values()
            .next()
            .map_or(i64::MIN, |r| r.timestamp)
    }

    /// The topics version they were resolved at (0 when none is).
    pub fn last_regex_version(&self) -> i64 {
        self.resolved_regular_expressions
            .values()
            .next()
            .map_or(0, |r| r.version)
    }

    /// The server assignor most members ask for, with `old` replaced by
    /// `new` (Kafka's `computePreferredServerAssignor`; ties go to the
    /// smallest name, Kafka's to whichever its map yields first).
    pub fn preferred_server_assignor(
        &self,
        old: Option<&ConsumerGroupMember>,
        new: Option<&ConsumerGroupMember>,
    ) -> Option<String> {
        let skip = old.map(|m| m.member_id.as_str());
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self
            .members
            .values()
            .filter(|m| Some(m.member_id.as_str()) != skip)
            .chain(new)
        {
            if let Some(a) = &m.server_assignor {
                *counts.entry(a.as_str()).or_default() += 1;
            }
        }
        let max = counts.values().copied().max()?;
        counts
            .into_iter()
            .find(|(_, c)| *c == max)
            .map(|(a, _)| a.to_string())
    }

    /// Kafka's HOMOGENEOUS subscription type (`ConsumerGroup.subscriptionType`),
    /// with `old` replaced by `new`: without regular expressions, every
    /// member subscribes to the same topic names; with them, every member
    /// subscribes to one same regular expression and no member to names.
    pub fn is_homogeneous(
        &self,
        old: Option<&ConsumerGroupMember>,
        new: Option<&ConsumerGroupMember>,
    ) -> bool {
        let members: Vec<&ConsumerGroupMember> = self.members_with(old, new).collect();
        let Some(first) = members.first() else {
            return true;
        };
        if members.iter().all(|m| regex_of(m).is_none()) {
            return members
                .iter()
                .all(|m| m.subscribed_topic_names == first.subscribed_topic_names);
        }
        regex_of(first).is_some()
            && members
                .iter()
                .all(|m| regex_of(m) == regex_of(first) && m.subscribed_topic_names.is_empty())
    }

    // -----------------------------------------------------------------
    // replay
    // -----------------------------------------------------------------

    /// Applies one record of this group (Kafka's `GroupMetadataManager.replay`
    /// for the consumer group records).
    pub fn replay(&mut self, rec: &ConsumerRecord) {
        use ConsumerRecord as R;
        match rec {
            R::GroupMetadata(_, Some((epoch, hash))) => {
                self.group_epoch = *epoch;
                self.metadata_hash = *hash;
            }
            // The manager removes the group itself.
            R::GroupMetadata(_, None) => {}
            R::PartitionMetadata(_) => self.has_partition_metadata_record = false,
            R::MemberMetadata(_, id, Some(v)) => {
                let mut m = self
                    .members
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| ConsumerGroupMember::new(id));
                m.instance_id = v.instance_id.clone();
                m.rack_id = v.rack_id.clone();
                m.client_id = v.client_id.clone();
                m.client_host = v.client_host.clone();
                m.subscribed_topic_names = v.subscribed_topic_names.clone();
                m.subscribed_topic_names.sort();
                m.subscribed_topic_names.dedup();
                m.subscribed_topic_regex = v.subscribed_topic_regex.clone();
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                m.server_assignor = v.server_assignor.clone();
                m.classic = v.classic.clone();
                self.update_member(m);
            }
            R::MemberMetadata(_, id, None) => self.remove_member(id),
            R::TargetAssignmentMetadata(_, Some((epoch, timestamp_ms))) => {
                self.assignment_epoch = *epoch;
                self.assignment_timestamp_ms = *timestamp_ms;
            }
            R::TargetAssignmentMetadata(_, None) => {
                self.assignment_epoch = -1;
                self.assignment_timestamp_ms = 0;
            }
            R::TargetAssignmentMember(_, id, Some(a)) => {
                self.target_assignment.insert(id.clone(), a.clone());
            }
            R::TargetAssignmentMember(_, id, None) => {
                self.target_assignment.remove(id);
            }
            R::RegularExpression(_, regex, Some(v)) => {
                self.resolved_regular_expressions
                    .insert(regex.clone(), v.clone());
            }
            R::RegularExpression(_, regex, None) => {
                self.resolved_regular_expressions.remove(regex);
            }
            R::CurrentMemberAssignment(_, id, Some(v)) => {
                let mut m = self
                    .members
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| ConsumerGroupMember::new(id));
                m.member_epoch = v.member_epoch;
                m.previous_member_epoch = v.previous_member_epoch;
                m.state = v.state;
                m.assigned_partitions = v.assigned_partitions.clone();
                m.partitions_pending_revocation = v.partitions_pending_revocation.clone();
                self.update_member(m);
            }
            R::CurrentMemberAssignment(_, id, None) => {
                if let Some(mut m) = self.members.get(id).cloned() {
                    m.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                    m.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                    m.assigned_partitions.clear();
                    m.partitions_pending_revocation.clear();
                    self.update_member(m);
                }
            }
        }
    }

    fn update_member(&mut self, m: ConsumerGroupMember) {
        if let Some(old) = self.members.get(&m.member_id) {
            let old = old.clone();
            self.drop_partition_epochs(&old);
            if let Some(i) = &old.instance_id {
                if m.instance_id.as_ref() != Some(i)
                    && self.static_members.get(i) == Some(&old.member_id)
                {
                    self.static_members.remove(i);
                }
            }
        }
        for (t, ps) in m
            .assigned_partitions
            .iter()
            .chain(m.partitions_pending_revocation.iter())
        {
            for p in ps {
                self.partition_epochs.insert((*t, *p), m.member_epoch);
            }
        }
        if let Some(i) = &m.instance_id {
            self.static_members.insert(i.clone(), m.member_id.clone());
        }
        self.members.insert(m.member_id.clone(), m);
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(old) = self.members.remove(id) {
            self.drop_partition_epochs(&old);
            if let Some(i) = &old.instance_id {
                if self.static_members.get(i).map(String::as_str) == Some(id) {
                    self.static_members.remove(i);
                }
            }
        }
    }

    fn drop_partition_epochs(&mut self, m: &ConsumerGroupMember) {
        for (t, ps) in m
            .assigned_partitions
            .iter()
            .chain(m.partitions_pending_revocation.iter())
        {
            for p in ps {
                if self.partition_epochs.get(&(*t, *p)) == Some(&m.member_epoch) {
                    self.partition_epochs.remove(&(*t, *p));
                }
            }
        }
    }

    // -----------------------------------------------------------------
    // offsets: Kafka's ConsumerGroup.validateOffsetCommit / Fetch
    // -----------------------------------------------------------------

    /// OffsetCommit / TxnOffsetCommit from `member_id` at `member_epoch`.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        member_epoch: i32,
        transactional: bool,
        api_version: i16,
    ) -> Result<(), ResponseError> {
        // The admin client or a consumer without group management may
        // commit to an empty group.
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        if transactional && member_epoch == -1 && member_id.is_empty() && instance_id.is_none() {
            return Ok(());
        }
        let m = self.member(member_id).map_err(|(e, _)| e)?;
        // A classic member commits with any version, its generation being
        // its member epoch.
        if !transactional && !m.uses_classic_protocol() && api_version < 9 {
            return Err(ResponseError::UnsupportedVersion);
        }
        if member_epoch != m.member_epoch {
            return Err(if m.uses_classic_protocol() {
                ResponseError::IllegalGeneration
            } else {
                ResponseError::StaleMemberEpoch
            });
        }
        Ok(())
    }

    /// Whether a member waiting for partitions still owned by others must
    /// go on waiting (Kafka's `waitingOnUnreleasedPartition`).
    pub fn waiting_on_unreleased_partition(&self, m: &ConsumerGroupMember) -> bool {
        if m.state != super::member::MemberState::UnreleasedPartitions {
            return false;
        }
        let Some(target) = self.target_assignment.get(&m.member_id) else {
            return false;
        };
        target.iter().any(|(t, ps)| {
            let owned = m.assigned_partitions.get(t);
            ps.iter().any(|p| {
                !owned.is_some_and(|o| o.contains(p)) && self.current_partition_epoch(*t, *p) != -1
            })
        })
    }

    /// Whether every member but those in `except` uses the classic
    /// protocol (Kafka's `allMembersUseClassicProtocolExcept`).
    pub fn all_members_use_classic_protocol_except(&self, except: &[&str]) -> bool {
        self.members
            .values()
            .filter(|m| !except.contains(&m.member_id.as_str()))
            .all(ConsumerGroupMember::uses_classic_protocol)
    }

    /// Kafka's `supportsClassicProtocols`: a classic JoinGroup's protocol
    /// type must be `consumer`, and one of its protocols supported by
    /// every classic member.
    pub fn supports_classic_protocols(&self, protocol_type: &str, protocols: &[&str]) -> bool {
        if protocol_type != crate::coordinator::group::classic_group::CONSUMER_PROTOCOL_TYPE {
            return false;
        }
        if self.members.is_empty() {
            return !protocols.is_empty();
        }
        let classic: Vec<&ConsumerGroupMember> = self
            .members
            .values()
            .filter(|m| m.uses_classic_protocol())
            .collect();
        protocols.iter().any(|p| {
            classic.iter().all(|m| {
                m.classic
                    .as_ref()
                    .is_some_and(|c| c.supported_protocols.iter().any(|(n, _)| n == p))
            })
        })
    }

    /// OffsetFetch v9+ from `member_id` at `member_epoch` (no member: the
    /// admin client, accepted).
    pub fn validate_offset_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ResponseError> {
        let Some(member_id) = member_id else {
            return Ok(());
        };
        if member_epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        let m = self.member(member_id).map_err(|(e, _)| e)?;
        if member_epoch != m.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Whether some member subscribes to `topic`, by name or by regular
    /// expression (OffsetDelete refuses to delete the offsets of
    /// subscribed topics).
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.members
            .values()
            .any(|m| self.member_topics(m).contains(topic))
    }

    /// The tombstones that delete this (empty) group, in Kafka's order.
    pub fn tombstones(&self) -> Vec<ConsumerRecord> {
        let g = &self.group_id;
        let mut out: Vec<ConsumerRecord> = self
            .members
            .keys()
            .map(|m| ConsumerRecord::CurrentMemberAssignment(g.clone(), m.clone(), None))
            .collect();
        out.extend(
            self.target_assignment
                .keys()
                .map(|m| ConsumerRecord::TargetAssignmentMember(g.clone(), m.clone(), None)),
        );
        out.push(ConsumerRecord::TargetAssignmentMetadata(g.clone(), None));
        out.extend(
            self.members
                .keys()
                .map(|m| ConsumerRecord::MemberMetadata(g.clone(), m.clone(), None)),
        );
        out.extend(
            self.resolved_regular_expressions
                .keys()
                .map(|r| ConsumerRecord::RegularExpression(g.clone(), r.clone(), None)),
        );
        out.push(ConsumerRecord::PartitionMetadata(g.clone()));
        out.push(ConsumerRecord::GroupMetadata(g.clone(), None));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::MemberMetadata;
    use super::*;

    fn join(g: &mut ConsumerGroup, id: &str, names: &[&str], regex: Option<&str>) {
        let v = MemberMetadata {
            subscribed_topic_names: names.iter().map(|s| s.to_string()).collect(),
            subscribed_topic_regex: regex.map(str::to_string),
            ..MemberMetadata::default()
        };
        g.replay(&ConsumerRecord::MemberMetadata(
            "g".into(),
            id.into(),
            Some(v),
        ));
    }

    #[test]
    fn replayed_regular_expressions_add_to_the_subscription() {
        let mut g = ConsumerGroup::new("g");
        join(&mut g, "m1", &[], Some("t.*"));
        join(&mut g, "m2", &[], Some("t.*"));
        // Unresolved: subscribes to nothing yet.
        assert!(g.subscribed_topic_names(None, None).is_empty());
        assert!(g.is_homogeneous(None, None));
        let resolved = ResolvedRegularExpression {
            topics: ["t1".to_string(), "t2".to_string()].into(),
            version: 1,
            timestamp: 5,
        };
        g.replay(&ConsumerRecord::RegularExpression(
            "g".into(),
            "t.*".into(),
            Some(resolved),
        ));
        assert_eq!(
            g.subscribed_topic_names(None, None),
            ["t1".to_string(), "t2".to_string()].into()
        );
        assert!(g.is_subscribed_to("t2"));
        assert_eq!(g.last_regex_refresh_ms(), 5);
        assert_eq!(g.num_subscribed_members("t.*"), 2);
        // A member by name makes it heterogeneous (Kafka's rule), even
        // with the same topics.
        join(&mut g, "m3", &["t1", "t2"], None);
        assert!(!g.is_homogeneous(None, None));
        assert_eq!(
            g.member_topics(&g.members["m1"]),
            g.member_topics(&g.members["m3"])
        );
        // Deleting the group deletes the resolution too.
        assert!(g.tombstones().contains(&ConsumerRecord::RegularExpression(
            "g".into(),
            "t.*".into(),
            None
        )));
        g.replay(&ConsumerRecord::RegularExpression(
            "g".into(),
            "t.*".into(),
            None,
        ));
        assert!(g.member_topics(&g.members["m1"]).is_empty());
        assert_eq!(g.last_regex_refresh_ms(), i64::MIN);
    }
}
