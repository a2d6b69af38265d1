//! `PartitionChangeBuilder`: one partition's next registration (ISR,
//! leader, leader recovery state) as a PartitionChangeRecord, or nothing
//! when nothing changes, with Kafka's leader elections (preferred, online,
//! unclean), and the reassignment steps: a new replica set with its
//! adding/removing replicas, completed once the ISR holds every target
//! replica. Eligible leader replicas (KIP-966) are off
//! (`eligible.leader.replicas.version=0`): a shrink never empties the ISR
//! and a leftover ELR is cleared as Kafka clears it.

use uuid::Uuid;

use crate::metadata::image::BrokerRegistration;
use crate::metadata::records::{PartitionChangeRecord, NO_LEADER_CHANGE};
use crate::metadata::{MetadataImage, PartitionRegistration};

/// No leader (Kafka's `LeaderConstants.NO_LEADER`).
pub const NO_LEADER: i32 = -1;
/// `LeaderRecoveryState.RECOVERED` / `RECOVERING`.
pub const RECOVERED: i8 = 0;
pub const RECOVERING: i8 = 1;
/// The PartitionChangeRecord / PartitionRecord version Kafka 4.x's
/// metadata versions write (`partitionChangeRecordVersion`: ELR-capable).
pub const PARTITION_CHANGE_RECORD_VERSION: i16 = 2;
pub const PARTITION_RECORD_VERSION: i16 = 2;

/// Kafka's `DirectoryId` reserved values.
pub const DIR_MIGRATING: Uuid = Uuid::from_u64_pair(0, 0);
pub const DIR_UNASSIGNED: Uuid = Uuid::from_u64_pair(0, 1);
pub const DIR_LOST: Uuid = Uuid::from_u64_pair(0, 2);

/// Election types (`PartitionChangeBuilder.Election`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The preferred (first) replica when it is in the ISR.
    Preferred,
    /// Any live ISR member, keeping the current leader when it qualifies.
    Online,
    /// ISR members first, else any live replica (may lose data).
    Unclean,
}

/// Kafka's `ClusterControlManager.isActive`: registered, unfenced, not in
/// controlled shutdown.
pub fn is_active(image: &MetadataImage, broker: i32) -> bool {
    image
        .brokers
        .get(&broker)
        .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
}

/// `DirectoryId.isOnline`: reserved directories count as online; a
/// broker that registered no directories is assumed to have them all.
pub fn has_online_dir(b: &BrokerRegistration, dir: Uuid) -> bool {
    if dir == DIR_UNASSIGNED || dir == DIR_MIGRATING {
        return true;
    }
    if dir == DIR_LOST {
        return false;
    }
    b.directories.is_empty() || b.directories.contains(&dir)
}

/// `ClusterControlManager.defaultDir`: where a new replica goes.
pub fn default_dir(image: &MetadataImage, broker: i32) -> Uuid {
    match image.brokers.get(&broker) {
        None => DIR_UNASSIGNED,
        Some(b) if b.directories.is_empty() => DIR_MIGRATING,
        Some(b) if b.directories.len() == 1 => b.directories[0],
        Some(_) => DIR_UNASSIGNED,
    }
}

/// Kafka's `LeaderAcceptor`: `acceptable(broker)` and the replica's
/// directory online on that broker.
pub fn leader_acceptor<'a>(
    image: &'a MetadataImage,
    partition: &'a PartitionRegistration,
    acceptable: impl Fn(i32) -> bool + 'a,
) -> impl Fn(i32) -> bool + 'a {
    move |broker| {
        if !acceptable(broker) {
            return false;
        }
        let dir = partition
            .replicas
            .iter()
            .position(|r| *r == broker)
            .and_then(|i| partition.directories.get(i).copied())
            .unwrap_or(DIR_UNASSIGNED);
        image
            .brokers
            .get(&broker)
            .is_some_and(|b| has_online_dir(b, dir))
    }
}

/// Builds one partition's change.
pub struct PartitionChangeBuilder<'a, F: Fn(i32) -> bool> {
    partition: &'a PartitionRegistration,
    topic_id: Uuid,
    partition_id: i32,
    is_acceptable_leader: F,
    target_isr: Vec<i32>,
    target_replicas: Vec<i32>,
    target_removing: Vec<i32>,
    target_adding: Vec<i32>,
    /// Where a replica new to the partition goes (Kafka's
    /// `DefaultDirProvider`); unassigned without one.
    default_dir: Option<Box<dyn Fn(i32) -> Uuid + 'a>>,
    election: Election,
    target_leader_recovery_state: i8,
}

impl<'a, F: Fn(i32) -> bool> PartitionChangeBuilder<'a, F> {
    pub fn new(
        partition: &'a PartitionRegistration,
        topic_id: Uuid,
        partition_id: i32,
        is_acceptable_leader: F,
    ) -> Self {
        PartitionChangeBuilder {
            partition,
            topic_id,
            partition_id,
            is_acceptable_leader,
            target_isr: partition.isr.clone(),
            target_replicas: partition.replicas.clone(),
            target_removing: partition.removing_replicas.clone(),
            target_adding: partition.adding_replicas.clone(),
            default_dir: None,
            election: Election::Online,
            target_leader_recovery_state: partition.leader_recovery_state,
        }
    }

    pub fn target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    /// The replica list to move to (a reassignment's union of target and
    /// current replicas, or its completion).
    pub fn target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = replicas;
        self
    }

    pub fn target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = removing;
        self
    }

    pub fn target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = adding;
        self
    }

    pub fn default_dirs(mut self, provider: impl Fn(i32) -> Uuid + 'a) -> Self {
        self.default_dir = Some(Box::new(provider));
        self
    }

    pub fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    pub fn target_leader_recovery_state(mut self, state: i8) -> Self {
        self.target_leader_recovery_state = state;
        self
    }

    fn is_valid_new_leader(&self, replica: i32) -> bool {
        // With ELR off only ISR members are clean candidates.
        self.target_isr.contains(&replica) && (self.is_acceptable_leader)(replica)
    }

    /// The elected node and whether the election was unclean.
    pub fn elect_leader(&self) -> (i32, bool) {
        let replicas = &self.target_replicas;
        if self.election == Election::Preferred {
            if let Some(first) = replicas.first() {
                if self.is_valid_new_leader(*first) {
                    return (*first, false);
                }
            }
            if self.is_valid_new_leader(self.partition.leader) {
                return (self.partition.leader, false);
            }
            if let Some(r) = replicas
                .iter()
                .skip(1)
                .find(|r| self.is_valid_new_leader(**r))
            {
                return (*r, false);
            }
            return (NO_LEADER, false);
        }
        if self.is_valid_new_leader(self.partition.leader) {
            return (self.partition.leader, false);
        }
        if let Some(r) = replicas.iter().find(|r| self.is_valid_new_leader(**r)) {
            return (*r, false);
        }
        if self.election == Election::Unclean {
            if let Some(r) = replicas.iter().find(|r| (self.is_acceptable_leader)(**r)) {
                return (*r, true);
            }
        }
        (NO_LEADER, false)
    }

    /// The change, or `None` when the registration would stay as it is
    /// (`PartitionChangeBuilder.build`).
    pub fn build(mut self) -> Option<PartitionChangeRecord> {
        let p = self.partition;
        let mut record = PartitionChangeRecord::new(self.topic_id, self.partition_id);
        self.complete_reassignment_if_needed();
        let (node, unclean) = self.elect_leader();
        if node != p.leader {
            record.leader = node;
            if unclean {
                // The new leader's log is all there is: the ISR is just it.
                record.isr = Some(vec![node]);
                if p.leader_recovery_state != RECOVERING {
                    record.leader_recovery_state = RECOVERING;
                }
            }
        }
        // A replica leaving the partition must not keep acting on the old
        // epoch: the leader epoch moves with it.
        if record.leader == NO_LEADER_CHANGE
            && !p.replicas.iter().all(|r| self.target_replicas.contains(r))
        {
            record.leader = p.leader;
        }
        // ELR disabled: a leftover ELR is cleared (maybeUpdateRecordElr).
        if !p.elr.is_empty() {
            record.eligible_leader_replicas = Some(Vec::new());
        }
        // Without ELR the ISR never becomes empty: the last member stays.
        if record.isr.is_none() && !self.target_isr.is_empty() && self.target_isr != p.isr {
            record.isr = Some(self.target_isr.clone());
        }
        self.set_assignment_changes(&mut record);
        if self.target_leader_recovery_state != p.leader_recovery_state
            && record.leader_recovery_state == -1
        {
            record.leader_recovery_state = self.target_leader_recovery_state;
        }
        let no_op = record.isr.is_none()
            && record.eligible_leader_replicas.is_none()
            && record.last_known_elr.is_none()
            && record.leader == NO_LEADER_CHANGE
            && record.replicas.is_none()
            && record.removing_replicas.is_none()
            && record.adding_replicas.is_none()
            && record.leader_recovery_state == -1
            && record.directories.is_none();
        (!no_op).then_some(record)
    }

    /// Kafka's `completeReassignmentIfNeeded`: once the ISR (less the
    /// removing replicas) holds every target replica, the removing replicas
    /// leave the replica list and the ISR, and the reassignment ends.
    fn complete_reassignment_if_needed(&mut self) {
        let Some((replicas, isr)) = completed_reassignment(
            &self.target_replicas,
            &self.target_removing,
            &self.target_adding,
            &self.target_isr,
        ) else {
            return;
        };
        self.target_replicas = replicas;
        self.target_isr = isr;
        self.target_removing.clear();
        self.target_adding.clear();
    }

    /// Kafka's `setAssignmentChanges`: the replica list (with a directory
    /// per replica: the one it had, else the default for a new one) and
    /// the adding/removing lists, each only when it changes.
    fn set_assignment_changes(&self, record: &mut PartitionChangeRecord) {
        let p = self.partition;
        if !self.target_replicas.is_empty() && self.target_replicas != p.replicas {
            let directories: Vec<Uuid> = self
                .target_replicas
                .iter()
                .map(|r| {
                    p.replicas
                        .iter()
                        .position(|x| x == r)
                        .and_then(|i| p.directories.get(i).copied())
                        .unwrap_or_else(|| match &self.default_dir {
                            Some(f) => f(*r),
                            None => DIR_UNASSIGNED,
                        })
                })
                .collect();
            if directories != p.directories {
                record.directories = Some(directories);
            }
            record.replicas = Some(self.target_replicas.clone());
        }
        if self.target_removing != p.removing_replicas {
            record.removing_replicas = Some(self.target_removing.clone());
        }
        if self.target_adding != p.adding_replicas {
            record.adding_replicas = Some(self.target_adding.clone());
        }
    }
}

/// Kafka's `PartitionReassignmentReplicas.maybeCompleteReassignment`: the
/// replicas and ISR once a reassignment in progress can finish, or `None`.
pub fn completed_reassignment(
    replicas: &[i32],
    removing: &[i32],
    adding: &[i32],
    isr: &[i32],
) -> Option<(Vec<i32>, Vec<i32>)> {
    if removing.is_empty() && adding.is_empty() {
        return None;
    }
    let new_isr: Vec<i32> = isr
        .iter()
        .copied()
        .filter(|r| !removing.contains(r))
        .collect();
    let new_replicas: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| !removing.contains(r))
        .collect();
    if new_isr.is_empty() || new_replicas.is_empty() {
        return None;
    }
    if !new_replicas.iter().all(|r| new_isr.contains(r)) {
        return None;
    }
    Some((new_replicas, new_isr))
}
