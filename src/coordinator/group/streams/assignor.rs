//! The target assignment of a streams group: active and standby tasks
//! after Kafka 4.4's `StickyTaskAssignor`.
//!
//! Active tasks: every task goes to one member; a member keeps the tasks
//! it owns while it is under its share, a task nobody kept goes to a member
//! that kept its state as a standby (the least loaded), the rest to the
//! members with the fewest. Standby tasks (`num.standby.replicas` of each
//! task of a stateful subtopology, one with state changelog topics): never
//! on a process (a Streams instance, its `ProcessId`) that already holds the
//! task, active or standby; first to the member that ran it active before,
//! then to members that held it as a standby (or reported offsets for its
//! state, the most caught up first), within a total-task quota; what is
//! left goes to the least loaded process. Kafka 4.4's sticky assignor
//! produces no warm-up tasks, so none are assigned here either.

use std::collections::{BTreeMap, BTreeSet};

use super::{contains, StreamsGroup, Tasks};

/// A task: (subtopology id, partition).
type Task = (String, i32);

/// One member's target: its active and standby tasks (Kafka's
/// `TasksTuple` without warm-up tasks, which kastle never assigns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSet {
    pub active: Tasks,
    pub standby: Tasks,
}

impl TaskSet {
    pub fn is_empty(&self) -> bool {
        self.active.is_empty() && self.standby.is_empty()
    }
}

fn insert(t: &mut Tasks, s: &str, p: i32) {
    t.entry(s.to_string()).or_default().insert(p);
}

fn per_member(tasks: usize, members: usize) -> usize {
    if members == 0 {
        0
    } else {
        tasks.div_ceil(members)
    }
}

/// Kafka's total-task quota (active and standby tasks per member): a
/// member that reaches it leaves the pool and the tasks left are spread
/// over the others (`maybeUpdateTotalTasksPerMember`).
struct Quota {
    remaining: usize,
    members: usize,
    per_member: usize,
}

impl Quota {
    fn new(tasks: usize, members: usize) -> Quota {
        Quota {
            remaining: tasks,
            members,
            per_member: per_member(tasks, members),
        }
    }

    /// A member now holds `count` tasks.
    fn added(&mut self, count: usize) {
        if count == self.per_member {
            self.members = self.members.saturating_sub(1);
            self.remaining = self.remaining.saturating_sub(count);
            self.per_member = per_member(self.remaining, self.members);
        }
    }
}

/// The assignment under construction, by member and by process.
struct State<'a> {
    process_of: BTreeMap<&'a str, &'a str>,
    /// Members of each process.
    members_of: BTreeMap<&'a str, Vec<&'a str>>,
    /// Every task (active or standby) some member of the process holds.
    process_tasks: BTreeMap<&'a str, BTreeSet<Task>>,
    /// Tasks (active and standby) per member.
    counts: BTreeMap<&'a str, usize>,
    /// Active tasks per member.
    active_counts: BTreeMap<&'a str, usize>,
    total: Quota,
    target: BTreeMap<String, TaskSet>,
}

impl<'a> State<'a> {
    fn process_has(&self, process: &str, s: &str, p: i32) -> bool {
        self.process_tasks
            .get(process)
            .is_some_and(|t| t.contains(&(s.to_string(), p)))
    }

    /// A process's load: its tasks per member, compared without division
    /// as (tasks, members).
    fn load(&self, process: &str) -> (usize, usize) {
        let members = self.members_of.get(process).map_or(0, Vec::len);
        let tasks = self
            .members_of
            .get(process)
            .map_or(0, |ms| ms.iter().map(|m| self.count(m)).sum());
        (tasks, members)
    }

    fn count(&self, member: &str) -> usize {
        self.counts.get(member).copied().unwrap_or(0)
    }

    fn add(&mut self, member: &'a str, s: &str, p: i32, active: bool) {
        let t = self.target.entry(member.to_string()).or_default();
        if active {
            insert(&mut t.active, s, p);
            *self.active_counts.entry(member).or_default() += 1;
        } else {
            insert(&mut t.standby, s, p);
        }
        if let Some(process) = self.process_of.get(member).copied() {
            self.process_tasks
                .entry(process)
                .or_default()
                .insert((s.to_string(), p));
        }
        let c = self.counts.entry(member).or_default();
        *c += 1;
        let c = *c;
        self.total.added(c);
    }

    /// Kafka's `findPrevMemberWithLeastLoad`: among `candidates` (in rank
    /// order), skipping processes that hold `task` when one is given, the
    /// first one, replaced only by a later one both on a less loaded
    /// process and with fewer tasks itself.
    fn least_loaded(&self, candidates: &[&'a str], task: Option<(&str, i32)>) -> Option<&'a str> {
        let mut best: Option<(&'a str, (usize, usize), usize)> = None;
        for &m in candidates {
            let Some(process) = self.process_of.get(m).copied() else {
                continue;
            };
            if task.is_some_and(|(s, p)| self.process_has(process, s, p)) {
                continue;
            }
            let load = self.load(process);
            let count = self.count(m);
            let better = match best {
                None => true,
                Some((_, bl, bc)) => less(load, bl) && count < bc,
            };
            if better {
                best = Some((m, load, count));
            }
        }
        best.map(|(m, _, _)| m)
    }
}

/// a < b for loads given as (tasks, members); no members is the lowest
/// load (Kafka's -1).
fn less(a: (usize, usize), b: (usize, usize)) -> bool {
    match (a.1, b.1) {
        (0, 0) => false,
        (0, _) => true,
        (_, 0) => false,
        _ => a.0 * b.1 < b.0 * a.1,
    }
}

/// The members ranked as standby candidates of each task (Kafka's
/// `rankStandbyCandidates`): those holding it as a standby now first, then
/// those that reported offsets for its state; within each, the highest
/// offset sum first (ties by member id).
fn standby_candidates(g: &StreamsGroup) -> BTreeMap<Task, Vec<&str>> {
    let mut ranked: BTreeMap<Task, Vec<(bool, i64, &str)>> = BTreeMap::new();
    for m in g.members.values() {
        for (s, ps) in &m.standby {
            for p in ps {
                let offset = m.task_offsets.get(&(s.clone(), *p)).copied().unwrap_or(0);
                ranked.entry((s.clone(), *p)).or_default().push((
                    true,
                    offset,
                    m.member_id.as_str(),
                ));
            }
        }
        for ((s, p), offset) in &m.task_offsets {
            if !contains(&m.standby, s, *p) {
                ranked.entry((s.clone(), *p)).or_default().push((
                    false,
                    *offset,
                    m.member_id.as_str(),
                ));
            }
        }
    }
    ranked
        .into_iter()
        .map(|(t, mut v)| {
            v.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
            (t, v.into_iter().map(|(_, _, m)| m).collect())
        })
        .collect()
}

/// The target of every member of `g` (configured and with members) with
/// `replicas` standby replicas of each stateful task.
pub(super) fn assign(g: &StreamsGroup, replicas: usize) -> BTreeMap<String, TaskSet> {
    let ids: Vec<&str> = g.members.keys().map(String::as_str).collect();
    let target: BTreeMap<String, TaskSet> = ids
        .iter()
        .map(|m| (m.to_string(), TaskSet::default()))
        .collect();
    if ids.is_empty() || !g.configured.is_ready() {
        return target;
    }
    let all: Vec<Task> = g
        .configured
        .tasks
        .iter()
        .flat_map(|(s, n)| (0..*n).map(move |p| (s.clone(), p)))
        .collect();
    // Kafka's `isStateful`: a subtopology with state changelog topics.
    let stateful: BTreeSet<&str> = g
        .subtopologies
        .iter()
        .filter(|s| !s.state_changelog_topics.is_empty())
        .map(|s| s.subtopology_id.as_str())
        .collect();
    let stateful_tasks: Vec<&Task> = all
        .iter()
        .filter(|(s, _)| stateful.contains(s.as_str()))
        .collect();
    let mut process_of = BTreeMap::new();
    let mut members_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in g.members.values() {
        process_of.insert(m.member_id.as_str(), m.process_id.as_str());
        members_of
            .entry(m.process_id.as_str())
            .or_default()
            .push(m.member_id.as_str());
    }
    // A task has at most one replica per process.
    let replicas = replicas.min(members_of.len().saturating_sub(1));
    let n = ids.len();
    let mut st = State {
        process_of,
        members_of,
        process_tasks: BTreeMap::new(),
        counts: BTreeMap::new(),
        active_counts: BTreeMap::new(),
        total: Quota::new(all.len() + stateful_tasks.len() * replicas, n),
        target,
    };
    let quota = all.len().div_ceil(n);
    let under_quota =
        |st: &State<'_>, m: &str| st.active_counts.get(m).copied().unwrap_or(0) < quota;

    // Active tasks, first to the member that owns them (or is giving them
    // up), within its share.
    let mut unassigned = Vec::new();
    for (s, p) in &all {
        let owner = g
            .members
            .values()
            .find(|m| contains(&m.assigned, s, *p) || contains(&m.revoking, s, *p))
            .map(|m| m.member_id.as_str());
        match owner {
            Some(o) if under_quota(&st, o) => st.add(o, s, *p, true),
            _ => unassigned.push((s.clone(), *p)),
        }
    }
    // Then to a member that kept the task's state as a standby.
    let candidates = standby_candidates(g);
    let mut rest = Vec::new();
    for (s, p) in unassigned {
        let cands = candidates
            .get(&(s.clone(), p))
            .map_or(&[][..], Vec::as_slice);
        match st.least_loaded(cands, None) {
            Some(m) if under_quota(&st, m) => st.add(m, &s, p, true),
            _ => rest.push((s, p)),
        }
    }
    // The rest to the member with the fewest, ties to the smallest id.
    for (s, p) in rest {
        let Some(m) = ids
            .iter()
            .copied()
            .min_by_key(|m| (st.active_counts.get(m).copied().unwrap_or(0), *m))
        else {
            break;
        };
        st.add(m, &s, p, true);
    }
    if replicas == 0 {
        return st.target;
    }

    // Standby tasks, the highest task first (Kafka's order).
    let mut stateful_tasks = stateful_tasks;
    stateful_tasks.sort_by(|a, b| b.cmp(a));
    let mut deferred: Vec<(&Task, usize)> = Vec::new();
    for task in stateful_tasks {
        let (s, p) = task;
        for i in 0..replicas {
            // The member that ran the task active before.
            let prev_active = g
                .members
                .values()
                .find(|m| contains(&m.assigned, s, *p))
                .map(|m| m.member_id.as_str());
            if let Some(m) = prev_active {
                let process = st.process_of.get(m).copied().unwrap_or_default();
                if !st.process_has(process, s, *p) && st.count(m) < st.total.per_member {
                    st.add(m, s, *p, false);
                    continue;
                }
            }
            // A member that held it as a standby or has its state.
            let cands = candidates
                .get(&(s.clone(), *p))
                .map_or(&[][..], Vec::as_slice);
            if let Some(m) = st.least_loaded(cands, Some((s, *p))) {
                if st.count(m) < st.total.per_member {
                    st.add(m, s, *p, false);
                    continue;
                }
            }
            deferred.push((task, replicas - i));
            break;
        }
    }
    // What is left: each replica to the least loaded process without the
    // task, on its member with the fewest tasks.
    deferred.sort_by(|a, b| b.0.cmp(a.0));
    for ((s, p), remaining) in deferred {
        for placed in 0..remaining {
            let mut processes: Vec<&str> = st
                .members_of
                .keys()
                .copied()
                .filter(|pr| !st.process_has(pr, s, *p))
                .collect();
            processes.sort_by(|a, b| {
                let (la, lb) = (st.load(a), st.load(b));
                if less(la, lb) {
                    std::cmp::Ordering::Less
                } else if less(lb, la) {
                    std::cmp::Ordering::Greater
                } else {
                    a.cmp(b)
                }
            });
            let member = processes.first().and_then(|pr| {
                st.members_of
                    .get(pr)
                    .and_then(|ms| ms.iter().copied().min_by_key(|m| (st.count(m), *m)))
            });
            let Some(m) = member else {
                tracing::warn!(group = %g.group_id, subtopology = %s, partition = *p, missing = remaining - placed, "not enough Streams processes for the requested standby replicas");
                break;
            };
            st.add(m, s, *p, false);
        }
    }
    st.target
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::streams::StreamsGroupMember;
    use crate::protocol::streams::{Subtopology, TopicInfo};

    fn group(members: &[(&str, &str)], tasks: &[(&str, i32, bool)]) -> StreamsGroup {
        let mut g = StreamsGroup::new("app");
        for (s, n, stateful) in tasks {
            g.configured.tasks.insert(s.to_string(), *n);
            g.subtopologies.push(Subtopology {
                subtopology_id: s.to_string(),
                state_changelog_topics: if *stateful {
                    vec![TopicInfo {
                        name: format!("app-{s}-changelog"),
                        ..TopicInfo::default()
                    }]
                } else {
                    Vec::new()
                },
                ..Subtopology::default()
            });
        }
        for (m, process) in members {
            g.members.insert(
                m.to_string(),
                StreamsGroupMember {
                    member_id: m.to_string(),
                    process_id: process.to_string(),
                    ..StreamsGroupMember::default()
                },
            );
        }
        g
    }

    fn count(t: &Tasks) -> usize {
        t.values().map(BTreeSet::len).sum()
    }

    /// Every stateful task gets its replicas on other processes than its
    /// active one, spread evenly; stateless tasks get none.
    #[test]
    fn standbys_avoid_the_active_process_and_skip_stateless_tasks() {
        let g = group(
            &[("a", "p1"), ("b", "p2"), ("c", "p3")],
            &[("0", 3, false), ("1", 6, true)],
        );
        let t = assign(&g, 2);
        for (m, ts) in &t {
            assert!(!ts.standby.contains_key("0"), "{m}: {ts:?}");
            // 9 active + 12 standby over 3 members.
            assert_eq!(count(&ts.active) + count(&ts.standby), 7, "{t:?}");
            for (s, ps) in &ts.standby {
                for p in ps {
                    assert!(!contains(&ts.active, s, *p), "{m} has {s}_{p} twice");
                }
            }
        }
        for p in 0..6 {
            let holders = t
                .values()
                .filter(|ts| contains(&ts.standby, "1", p))
                .count();
            assert_eq!(holders, 2, "task 1_{p}: {t:?}");
        }
    }

    /// Two members of one process never split a task between active and
    /// standby; with one process there is no standby at all.
    #[test]
    fn one_process_gets_no_standbys() {
        let g = group(&[("a", "p"), ("b", "p")], &[("0", 4, true)]);
        let t = assign(&g, 1);
        assert!(t.values().all(|ts| ts.standby.is_empty()), "{t:?}");
        assert_eq!(t.values().map(|ts| count(&ts.active)).sum::<usize>(), 4);
    }

    /// Standbys stay where they were; a task nobody kept goes to the
    /// member that has its state (reported offsets) rather than by id.
    #[test]
    fn standbys_are_sticky_and_state_attracts_tasks() {
        let mut g = group(&[("a", "p1"), ("b", "p2")], &[("0", 2, true)]);
        let first = assign(&g, 1);
        for (m, ts) in &first {
            if let Some(x) = g.members.get_mut(m) {
                x.assigned = ts.active.clone();
                x.standby = ts.standby.clone();
            }
        }
        assert_eq!(count(&first["a"].standby), 1, "{first:?}");
        assert_eq!(assign(&g, 1), first);

        let mut g = group(&[("a", "p1"), ("b", "p2"), ("c", "p3")], &[("0", 4, true)]);
        if let Some(a) = g.members.get_mut("a") {
            a.assigned.insert("0".into(), (0..4).collect());
        }
        let t = assign(&g, 0);
        assert_eq!(
            t["b"].active,
            Tasks::from([("0".into(), BTreeSet::from([2]))])
        );
        if let Some(b) = g.members.get_mut("b") {
            b.task_offsets.insert(("0".into(), 3), 100);
        }
        let t = assign(&g, 0);
        assert_eq!(
            t["b"].active,
            Tasks::from([("0".into(), BTreeSet::from([3]))])
        );
        assert_eq!(
            t["c"].active,
            Tasks::from([("0".into(), BTreeSet::from([2]))])
        );
    }
}
