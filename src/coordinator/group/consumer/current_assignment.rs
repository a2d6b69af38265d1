//! Kafka's `CurrentAssignmentBuilder`: moves one member's current
//! assignment towards its target, one step per heartbeat. Partitions the
//! member must give up are revoked first (UNREVOKED_PARTITIONS, same
//! epoch) until its heartbeat no longer reports them; then it moves to the
//! target epoch with the new partitions that no other member still owns
//! (UNRELEASED_PARTITIONS while some are still owned, STABLE otherwise).

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::member::{Assignment, ConsumerGroupMember, MemberState};

/// The next state of `member` towards `target` at `target_epoch`;
/// `partition_epoch(t, p)` is the epoch of the member owning a partition
/// (-1: free) and `owned` what the member's heartbeat reported (None: not
/// sent). Errors are FENCED_MEMBER_EPOCH with Kafka's message.
pub fn build(
    member: &ConsumerGroupMember,
    target_epoch: i32,
    target: &Assignment,
    partition_epoch: &dyn Fn(Uuid, i32) -> i32,
    owned: Option<&Assignment>,
) -> Result<ConsumerGroupMember, (ResponseError, String)> {
    let b = Builder {
        member,
        target_epoch,
        target,
        partition_epoch,
        owned,
    };
    match member.state {
        MemberState::Stable => {
            if member.member_epoch != target_epoch {
                Ok(b.next(member.member_epoch))
            } else {
                Ok(member.clone())
            }
        }
        MemberState::UnrevokedPartitions => {
            if b.owns_any(&member.partitions_pending_revocation) {
                Ok(member.clone())
            } else {
                Ok(b.next(member.member_epoch + 1))
            }
        }
        MemberState::UnreleasedPartitions => Ok(b.next(member.member_epoch)),
        MemberState::Unknown => {
            if owned.is_none_or(|o| !o.is_empty()) {
                return Err((
                    ResponseError::FencedMemberEpoch,
                    "The consumer group member is in a unknown state. The member must abandon all its partitions and rejoin.".into(),
                ));
            }
            Ok(b.next(target_epoch))
        }
    }
}

struct Builder<'a> {
    member: &'a ConsumerGroupMember,
    target_epoch: i32,
    target: &'a Assignment,
    partition_epoch: &'a dyn Fn(Uuid, i32) -> i32,
    owned: Option<&'a Assignment>,
}

impl Builder<'_> {
    /// Whether the member still reports any of `pending` (not reporting
    /// at all counts as owning them).
    fn owns_any(&self, pending: &Assignment) -> bool {
        let Some(owned) = self.owned else {
            return true;
        };
        owned.iter().any(|(t, ps)| {
            pending
                .get(t)
                .is_some_and(|rev| ps.iter().any(|p| rev.contains(p)))
        })
    }

    /// Kafka's `computeNextAssignment`.
    fn next(&self, member_epoch: i32) -> ConsumerGroupMember {
        let current = &self.member.assigned_partitions;
        let mut assigned = Assignment::new();
        let mut revoke = Assignment::new();
        let mut pending_assign = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<Uuid> = self.target.keys().chain(current.keys()).copied().collect();
        let empty = BTreeSet::new();
        for t in topics {
            let target = self.target.get(&t).unwrap_or(&empty);
            let cur = current.get(&t).unwrap_or(&empty);
            let kept: BTreeSet<i32> = cur.intersection(target).copied().collect();
            let revoked: BTreeSet<i32> = cur.difference(&kept).copied().collect();
            let mut to_assign: BTreeSet<i32> = target.difference(&kept).copied().collect();
            let before = to_assign.len();
            to_assign.retain(|p| (self.partition_epoch)(t, *p) == -1);
            unreleased |= to_assign.len() != before;
            if !kept.is_empty() {
                assigned.insert(t, kept);
            }
            if !revoked.is_empty() {
                revoke.insert(t, revoked);
            }
            if !to_assign.is_empty() {
                pending_assign.insert(t, to_assign);
            }
        }
        let mut m = self.member.clone();
        if !revoke.is_empty() && self.owns_any(&revoke) {
            m.state = MemberState::UnrevokedPartitions;
            m.update_member_epoch(member_epoch);
            m.assigned_partitions = assigned;
            m.partitions_pending_revocation = revoke;
            return m;
        }
        for (t, ps) in pending_assign.iter() {
            assigned.entry(*t).or_default().extend(ps.iter().copied());
        }
        m.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        m.update_member_epoch(self.target_epoch);
        m.assigned_partitions = assigned;
        m.partitions_pending_revocation = Assignment::new();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(t: Uuid, ps: &[i32]) -> Assignment {
        [(t, ps.iter().copied().collect())].into_iter().collect()
    }

    #[test]
    fn revocation_comes_before_assignment() {
        let t = Uuid::from_u128(7);
        let mut m = ConsumerGroupMember::new("m");
        m.member_epoch = 10;
        m.previous_member_epoch = 9;
        m.assigned_partitions = a(t, &[0, 1, 2]);
        let free = |_: Uuid, _: i32| -1;
        // Target at 11 drops 2 and adds 3: revoke first, epoch stays 10.
        let target = a(t, &[0, 1, 3]);
        let owned = a(t, &[0, 1, 2]);
        let n = build(&m, 11, &target, &free, Some(&owned)).unwrap();
        assert_eq!(n.state, MemberState::UnrevokedPartitions);
        assert_eq!(n.member_epoch, 10);
        assert_eq!(n.assigned_partitions, a(t, &[0, 1]));
        assert_eq!(n.partitions_pending_revocation, a(t, &[2]));
        // Still reporting 2: no progress.
        let again = build(&n, 11, &target, &free, Some(&owned)).unwrap();
        assert_eq!(again, n);
        // Revoked: epoch 11 with 3 added.
        let n2 = build(&n, 11, &target, &free, Some(&a(t, &[0, 1]))).unwrap();
        assert_eq!(n2.state, MemberState::Stable);
        assert_eq!((n2.member_epoch, n2.previous_member_epoch), (11, 10));
        assert_eq!(n2.assigned_partitions, a(t, &[0, 1, 3]));
    }

    #[test]
    fn partitions_owned_elsewhere_are_unreleased() {
        let t = Uuid::from_u128(7);
        let m = ConsumerGroupMember::new("m");
        let owned_by_other = |_: Uuid, p: i32| if p == 1 { 4 } else { -1 };
        let n = build(
            &m,
            5,
            &a(t, &[0, 1]),
            &owned_by_other,
            Some(&Assignment::new()),
        )
        .unwrap();
        assert_eq!(n.state, MemberState::UnreleasedPartitions);
        assert_eq!(n.member_epoch, 5);
        assert_eq!(n.assigned_partitions, a(t, &[0]));
        // Released later: the next heartbeat assigns it.
        let free = |_: Uuid, _: i32| -1;
        let n2 = build(&n, 5, &a(t, &[0, 1]), &free, Some(&a(t, &[0]))).unwrap();
        assert_eq!(n2.state, MemberState::Stable);
        assert_eq!(n2.assigned_partitions, a(t, &[0, 1]));
    }
}
