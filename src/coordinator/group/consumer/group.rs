//! A KIP-848 consumer group's state (Kafka's `ConsumerGroup`): the group
//! epoch, the target assignment and its epoch, the members with their
//! current assignments, and what is derived from them (state, static
//! members, which member epoch owns each partition). The state changes
//! only by replaying records ([`ConsumerGroup::replay`]), on load and after
//! each write alike, so what is in memory is what `__consumer_offsets`
//! says.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::member::{Assignment, ConsumerGroupMember, LEAVE_GROUP_MEMBER_EPOCH};
use super::records::ConsumerRecord;
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
}

#[derive(Debug, Default, Clone)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    /// The subscribed topics' hash the group epoch was computed at.
    pub metadata_hash: i64,
    pub assignment_epoch: i32,
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
    pub timers: HashMap<String, MemberTimers>,
}

impl ConsumerGroup {
    pub fn new(group_id: &str) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_string(),
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

    /// Every topic name some member subscribes to, with `old` replaced by
    /// `new` (either may be absent).
    pub fn subscribed_topic_names(
        &self,
        old: Option<&ConsumerGroupMember>,
        new: Option<&ConsumerGroupMember>,
    ) -> BTreeSet<String> {
        let skip = old.map(|m| m.member_id.as_str());
        self.members
            .values()
            .filter(|m| Some(m.member_id.as_str()) != skip)
            .chain(new)
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .collect()
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

    /// Whether the members subscribe to one same set of topics (Kafka's
    /// HOMOGENEOUS subscription type), with `old` replaced by `new`.
    pub fn is_homogeneous(
        &self,
        old: Option<&ConsumerGroupMember>,
        new: Option<&ConsumerGroupMember>,
    ) -> bool {
        let skip = old.map(|m| m.member_id.as_str());
        let mut subs = self
            .members
            .values()
            .filter(|m| Some(m.member_id.as_str()) != skip)
            .chain(new)
            .map(|m| &m.subscribed_topic_names);
        match subs.next() {
            None => true,
            Some(first) => subs.all(|s| s == first),
        }
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
                self.update_member(m);
            }
            R::MemberMetadata(_, id, None) => self.remove_member(id),
            R::TargetAssignmentMetadata(_, Some(epoch)) => self.assignment_epoch = *epoch,
            R::TargetAssignmentMetadata(_, None) => self.assignment_epoch = -1,
            R::TargetAssignmentMember(_, id, Some(a)) => {
                self.target_assignment.insert(id.clone(), a.clone());
            }
            R::TargetAssignmentMember(_, id, None) => {
                self.target_assignment.remove(id);
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
        if !transactional && api_version < 9 {
            return Err(ResponseError::UnsupportedVersion);
        }
        if member_epoch != m.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
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

    /// Whether some member subscribes to `topic` (OffsetDelete refuses
    /// to delete the offsets of subscribed topics).
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.members
            .values()
            .any(|m| m.subscribed_topic_names.iter().any(|t| t == topic))
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
        out.push(ConsumerRecord::PartitionMetadata(g.clone()));
        out.push(ConsumerRecord::GroupMetadata(g.clone(), None));
        out
    }
}
