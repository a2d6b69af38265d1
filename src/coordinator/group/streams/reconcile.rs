//! Reconciliation of a streams group member with the target (Kafka 4.4's
//! streams `CurrentAssignmentBuilder`): revocation before assignment of
//! active and standby tasks, tasks granted only once released (no other
//! member running the task, no other member of the process holding it),
//! and a task changing role on one member without a revocation.

use super::{contains, intersect, minus, union_into, MemberState, StreamsGroup, TaskSet, Tasks};

impl StreamsGroup {
    /// Whether some member other than `except` owns or is revoking the
    /// active task.
    fn owned_elsewhere(&self, except: &str, s: &str, p: i32) -> bool {
        self.members.values().any(|m| {
            m.member_id != except && (contains(&m.assigned, s, p) || contains(&m.revoking, s, p))
        })
    }

    /// Whether another member of `process` holds (or is giving up) the
    /// task as a standby.
    fn standby_on_process(&self, except: &str, process: &str, s: &str, p: i32) -> bool {
        self.members.values().any(|m| {
            m.member_id != except
                && m.process_id == process
                && (contains(&m.standby, s, p) || contains(&m.revoking_standby, s, p))
        })
    }

    /// Kafka's `isUnreleasedActiveTask`: another member still runs the
    /// task, or another member of this process still keeps it as a standby.
    fn active_unreleased(&self, id: &str, process: &str, s: &str, p: i32) -> bool {
        self.owned_elsewhere(id, s, p) || self.standby_on_process(id, process, s, p)
    }

    /// Kafka's `isUnreleasedStandbyTask`: another member of this process
    /// still runs the task or keeps it as a standby.
    fn standby_unreleased(&self, id: &str, process: &str, s: &str, p: i32) -> bool {
        self.members.values().any(|m| {
            m.member_id != id
                && m.process_id == process
                && (contains(&m.assigned, s, p) || contains(&m.revoking, s, p))
        }) || self.standby_on_process(id, process, s, p)
    }

    /// Kafka's `CurrentAssignmentBuilder` for streams: owned tasks (active
    /// or standby) the target drops are revoked first (the member keeps
    /// its epoch until it reports them gone); then it moves to the target
    /// epoch with the target's tasks that are released: an active task no
    /// other member runs and no other member of its process keeps as a
    /// standby, a standby task no other member of its process holds. A
    /// task changing role on the member is not revoked: an active task the
    /// target demotes is its standby at once, a standby the target promotes
    /// stays until the active task is granted.
    pub(super) fn reconcile(&mut self, id: &str, owned: Option<&TaskSet>, now: i64) {
        let target_epoch = self.assignment_epoch;
        let target = self.target.get(id).cloned().unwrap_or_default();
        let Some(mut m) = self.members.get(id).cloned() else {
            return;
        };
        if m.state == MemberState::UnrevokedTasks {
            // Still owns tasks it must give up: wait for its report.
            let done = owned.is_some_and(|o| {
                intersect(&o.active, &m.revoking).is_empty()
                    && intersect(&o.standby, &m.revoking_standby).is_empty()
            });
            if !done {
                return;
            }
            m.revoking.clear();
            m.revoking_standby.clear();
            m.rebalance_deadline_ms = None;
        } else if m.state == MemberState::Stable && m.member_epoch == target_epoch {
            return;
        }
        let kept = intersect(&m.assigned, &target.active);
        let revoke = minus(&m.assigned, &target.active);
        let promoted = intersect(&m.standby, &target.active);
        let mut standby = intersect(&m.standby, &target.standby);
        let revoke_standby = minus(&minus(&m.standby, &target.standby), &target.active);
        // Demoted active tasks become standbys at once.
        let mut unreleased = false;
        let mut new_standby = Tasks::new();
        for (s, ps) in minus(&target.standby, &m.standby) {
            for p in ps {
                if contains(&m.assigned, &s, p) {
                    standby.entry(s.clone()).or_default().insert(p);
                } else if self.standby_unreleased(id, &m.process_id, &s, p) {
                    unreleased = true;
                } else {
                    new_standby.entry(s.clone()).or_default().insert(p);
                }
            }
        }
        if !revoke.is_empty() || !revoke_standby.is_empty() {
            m.assigned = kept;
            m.revoking = revoke;
            m.standby = standby;
            union_into(&mut m.standby, promoted);
            m.revoking_standby = revoke_standby;
            m.state = MemberState::UnrevokedTasks;
            m.rebalance_deadline_ms = Some(now + i64::from(m.rebalance_timeout_ms.max(0)));
            self.members.insert(id.to_string(), m);
            return;
        }
        let mut assigned = kept;
        for (s, ps) in minus(&target.active, &m.assigned) {
            for p in ps {
                if self.active_unreleased(id, &m.process_id, &s, p) {
                    unreleased = true;
                } else {
                    assigned.entry(s.clone()).or_default().insert(p);
                }
            }
        }
        // A promoted standby stays until its active task is granted.
        union_into(&mut standby, minus(&promoted, &assigned));
        union_into(&mut standby, new_standby);
        m.previous_member_epoch = m.member_epoch;
        m.member_epoch = target_epoch;
        m.assigned = assigned;
        m.standby = standby;
        m.state = if unreleased {
            MemberState::UnreleasedTasks
        } else {
            MemberState::Stable
        };
        self.members.insert(id.to_string(), m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::streams::StreamsGroupMember;

    fn one(s: &str, p: i32) -> Tasks {
        Tasks::from([(s.to_string(), [p].into())])
    }

    fn member(id: &str, process: &str) -> StreamsGroupMember {
        StreamsGroupMember {
            member_id: id.into(),
            process_id: process.into(),
            member_epoch: 1,
            rebalance_timeout_ms: 1_000,
            ..StreamsGroupMember::default()
        }
    }

    /// Task 0_0 swaps roles: a (active) is demoted to its standby at once
    /// while it revokes the active task; b keeps its standby until a has
    /// let the active task go, then runs it.
    #[test]
    fn demotion_and_promotion_keep_the_state_until_the_active_task_moves() {
        let mut g = StreamsGroup::new("app");
        g.assignment_epoch = 2;
        let mut a = member("a", "p1");
        a.assigned = one("0", 0);
        let mut b = member("b", "p2");
        b.standby = one("0", 0);
        g.members.insert("a".into(), a);
        g.members.insert("b".into(), b);
        g.target.insert(
            "a".into(),
            TaskSet {
                active: Tasks::new(),
                standby: one("0", 0),
            },
        );
        g.target.insert(
            "b".into(),
            TaskSet {
                active: one("0", 0),
                standby: Tasks::new(),
            },
        );
        let owned = |active: Tasks, standby: Tasks| TaskSet { active, standby };

        g.reconcile("b", Some(&owned(Tasks::new(), one("0", 0))), 0);
        let b = &g.members["b"];
        assert_eq!(b.state, MemberState::UnreleasedTasks);
        assert!(b.assigned.is_empty());
        assert_eq!(
            b.standby,
            one("0", 0),
            "kept until the active task is granted"
        );

        g.reconcile("a", Some(&owned(one("0", 0), Tasks::new())), 0);
        let a = &g.members["a"];
        assert_eq!(a.state, MemberState::UnrevokedTasks);
        assert_eq!(a.member_epoch, 1);
        assert_eq!(a.revoking, one("0", 0));
        assert_eq!(a.standby, one("0", 0), "demoted at once");

        g.reconcile("a", Some(&owned(Tasks::new(), one("0", 0))), 0);
        let a = &g.members["a"];
        assert_eq!((a.state, a.member_epoch), (MemberState::Stable, 2));
        assert_eq!(a.standby, one("0", 0));

        g.reconcile("b", None, 0);
        let b = &g.members["b"];
        assert_eq!((b.state, b.member_epoch), (MemberState::Stable, 2));
        assert_eq!(b.assigned, one("0", 0));
        assert!(b.standby.is_empty());
    }
}
