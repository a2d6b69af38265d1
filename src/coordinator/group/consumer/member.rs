//! A member of a KIP-848 consumer group (Kafka's `ConsumerGroupMember` and
//! `MemberState`): its subscription, its epochs, and the partitions it owns
//! or must revoke. Plain data; the rules that move it are in
//! `current_assignment` (reconciliation) and `heartbeat`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use uuid::Uuid;

/// Partitions by topic id (Kafka's `Map<Uuid, Set<Integer>>`).
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The member epoch a leaving member sends (and a fenced member has).
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The member epoch a static member sends when it leaves temporarily.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Kafka's `MemberState`, with its record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// Owns exactly what its epoch's target gives it.
    #[default]
    Stable,
    /// Must revoke partitions before getting the next epoch.
    UnrevokedPartitions,
    /// Waits for partitions other members still own.
    UnreleasedPartitions,
    /// A value this broker does not know (a newer coordinator wrote it).
    Unknown,
}

impl MemberState {
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    pub fn from_value(v: i8) -> MemberState {
        match v {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// One member. `PartialEq` is Kafka's `equals`: a changed member is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub client_id: String,
    pub client_host: String,
    /// Sorted, as Kafka keeps them in a set.
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub assigned_partitions: Assignment,
    pub partitions_pending_revocation: Assignment,
    /// Set while the member uses the classic protocol (JoinGroup, SyncGroup,
    /// Heartbeat) in this consumer group (KIP-848's online migration).
    pub classic: Option<ClassicMemberMetadata>,
}

/// A classic member's JoinGroup facts a consumer group keeps (Kafka's
/// `ConsumerGroupMemberMetadataValue.ClassicMemberMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicMemberMetadata {
    pub session_timeout_ms: i32,
    /// (name, metadata) in the member's order of preference; the first is
    /// the protocol its JoinGroup and SyncGroup answers name.
    pub supported_protocols: Vec<(String, Bytes)>,
}

impl ConsumerGroupMember {
    /// A member not in the group yet (Kafka's `Builder(memberId).build()`).
    pub fn new(member_id: &str) -> ConsumerGroupMember {
        ConsumerGroupMember {
            member_id: member_id.to_string(),
            rebalance_timeout_ms: -1,
            ..ConsumerGroupMember::default()
        }
    }

    /// Sets the epoch, remembering the one before (Kafka's `updateMemberEpoch`).
    pub fn update_member_epoch(&mut self, epoch: i32) {
        self.previous_member_epoch = self.member_epoch;
        self.member_epoch = epoch;
    }

    /// Whether the member uses the classic protocol (Kafka's `useClassicProtocol`).
    pub fn uses_classic_protocol(&self) -> bool {
        self.classic.is_some()
    }

    /// The first supported classic protocol's name (what its JoinGroup
    /// answer and SyncGroup check name).
    pub fn classic_protocol_name(&self) -> Option<&str> {
        self.classic
            .as_ref()
            .and_then(|c| c.supported_protocols.first())
            .map(|(n, _)| n.as_str())
    }

    /// Whether the member is at `target_epoch` and owns its target.
    pub fn is_reconciled_to(&self, target_epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == target_epoch
    }
}

/// How many partitions an assignment holds.
pub fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// Whether every owned partition is in `target` (Kafka's `isSubset`);
/// `None` (owned partitions not sent) is not.
pub fn is_subset(owned: Option<&Assignment>, target: &Assignment) -> bool {
    let Some(owned) = owned else { return false };
    owned.iter().all(|(t, ps)| {
        target
            .get(t)
            .is_some_and(|tp| ps.iter().all(|p| tp.contains(p)))
    })
}
