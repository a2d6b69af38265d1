//! The server-side assignors of KIP-848 consumer groups
//! (`group.consumer.assignors`): Kafka's `UniformAssignor` ("uniform", the
//! default) and `RangeAssignor` ("range"), and the target assignment
//! builder's input (Kafka's `GroupSpec`: each member's subscribed topic ids
//! and current target).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use super::member::{count, Assignment};

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

/// One member as an assignor sees it.
#[derive(Debug, Clone, Default)]
pub struct MemberSpec {
    pub instance_id: Option<String>,
    /// Subscribed topics that exist.
    pub topics: BTreeSet<Uuid>,
    /// Its current target.
    pub assignment: Assignment,
}

/// The group as an assignor sees it; `partitions` gives each subscribed
/// topic's partition count.
pub struct GroupSpec<'a> {
    pub members: &'a BTreeMap<String, MemberSpec>,
    pub homogeneous: bool,
    pub partitions: &'a HashMap<Uuid, i32>,
}

/// Runs the assignor `name` (one of [`UNIFORM`], [`RANGE`]).
pub fn assign(name: &str, spec: &GroupSpec<'_>) -> BTreeMap<String, Assignment> {
    if spec.members.is_empty() {
        return BTreeMap::new();
    }
    match name {
        RANGE => range(spec),
        _ if spec.homogeneous => uniform_homogeneous(spec),
        _ => uniform_heterogeneous(spec),
    }
}

fn partitions_of(spec: &GroupSpec<'_>, t: &Uuid) -> i32 {
    spec.partitions.get(t).copied().unwrap_or(0).max(0)
}

/// Kafka's `UniformHomogeneousAssignmentBuilder`: every member gets
/// `total / members` partitions, the first `total % members` one more;
/// members keep what they had up to their quota, the rest is handed out
/// to members under quota.
fn uniform_homogeneous(spec: &GroupSpec<'_>) -> BTreeMap<String, Assignment> {
    let Some(first) = spec.members.values().next() else {
        return BTreeMap::new();
    };
    let topics = &first.topics;
    if topics.is_empty() {
        return spec
            .members
            .keys()
            .map(|m| (m.clone(), Assignment::new()))
            .collect();
    }
    let assigned: BTreeSet<(Uuid, i32)> = spec
        .members
        .values()
        .flat_map(|m| {
            m.assignment
                .iter()
                .filter(|(t, _)| topics.contains(t))
                .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
        })
        .filter(|(t, p)| *p < partitions_of(spec, t))
        .collect();
    let mut unassigned: Vec<(Uuid, i32)> = Vec::new();
    let mut total = 0usize;
    for t in topics {
        let n = partitions_of(spec, t);
        total += n as usize;
        unassigned.extend((0..n).map(|p| (*t, p)).filter(|tp| !assigned.contains(tp)));
    }
    let members = spec.members.len();
    let min_quota = total / members;
    let mut extra = total % members;
    let mut out: BTreeMap<String, Assignment> = BTreeMap::new();
    let mut unfilled: Vec<(String, usize)> = Vec::new();
    for (index, (id, m)) in spec.members.iter().enumerate() {
        let mut quota = min_quota;
        let mut has_extra = false;
        if extra > 0 {
            quota += 1;
            has_extra = true;
        }
        let mut kept = Assignment::new();
        for (t, ps) in &m.assignment {
            if !topics.contains(t) {
                continue;
            }
            let n = partitions_of(spec, t);
            for p in ps.iter().filter(|p| **p < n) {
                if quota > 0 {
                    quota -= 1;
                    kept.entry(*t).or_default().insert(*p);
                } else {
                    unassigned.push((*t, *p));
                }
            }
        }
        if quota > 0 && has_extra && members - index > extra {
            quota -= 1;
            has_extra = false;
        }
        if quota > 0 {
            unfilled.push((id.clone(), quota));
        }
        if has_extra {
            extra -= 1;
        }
        out.insert(id.clone(), kept);
    }
    let mut next = unassigned.into_iter();
    for (id, quota) in unfilled {
        let Some(a) = out.get_mut(&id) else { continue };
        for (t, p) in next.by_ref().take(quota) {
            a.entry(t).or_default().insert(p);
        }
    }
    // Kafka fails the assignment if anything is left ("Partitions were
    // left unassigned"); with quotas summing to the total nothing is.
    out
}

/// Heterogeneous subscriptions: members keep the partitions of topics
/// they still subscribe to, free partitions go to the subscriber holding
/// the fewest, then partitions move from a member to a subscriber with at
/// least two fewer until none can. (Kafka's heterogeneous builder balances
/// the same way but is not reproduced step for step.)
fn uniform_heterogeneous(spec: &GroupSpec<'_>) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = BTreeMap::new();
    let mut owner: HashMap<(Uuid, i32), String> = HashMap::new();
    for (id, m) in spec.members {
        let mut kept = Assignment::new();
        for (t, ps) in &m.assignment {
            if !m.topics.contains(t) {
                continue;
            }
            let n = partitions_of(spec, t);
            for p in ps.iter().filter(|p| **p < n) {
                if let std::collections::hash_map::Entry::Vacant(e) = owner.entry((*t, *p)) {
                    e.insert(id.clone());
                    kept.entry(*t).or_default().insert(*p);
                }
            }
        }
        out.insert(id.clone(), kept);
    }
    let all_topics: BTreeSet<Uuid> = spec
        .members
        .values()
        .flat_map(|m| m.topics.iter().copied())
        .collect();
    let subscribers = |t: &Uuid| -> Vec<&String> {
        spec.members
            .iter()
            .filter(|(_, m)| m.topics.contains(t))
            .map(|(id, _)| id)
            .collect()
    };
    for t in &all_topics {
        let subs = subscribers(t);
        for p in 0..partitions_of(spec, t) {
            if owner.contains_key(&(*t, p)) {
                continue;
            }
            let Some(to) = subs
                .iter()
                .min_by_key(|id| (out.get(**id).map(count).unwrap_or(0), (**id).clone()))
            else {
                continue;
            };
            owner.insert((*t, p), (*to).clone());
            out.entry((*to).clone())
                .or_default()
                .entry(*t)
                .or_default()
                .insert(p);
        }
    }
    // Balance: bounded by the number of partitions times members.
    let bound = owner.len().saturating_mul(spec.members.len()).max(1);
    for _ in 0..bound {
        let mut moved = false;
        for t in &all_topics {
            let subs = subscribers(t);
            for p in 0..partitions_of(spec, t) {
                let Some(from) = owner.get(&(*t, p)).cloned() else {
                    continue;
                };
                let from_n = out.get(&from).map(count).unwrap_or(0);
                let Some(to) = subs
                    .iter()
                    .min_by_key(|id| (out.get(**id).map(count).unwrap_or(0), (**id).clone()))
                    .map(|s| (*s).clone())
                else {
                    continue;
                };
                if out.get(&to).map(count).unwrap_or(0) + 1 < from_n {
                    if let Some(ps) = out.get_mut(&from).and_then(|a| a.get_mut(t)) {
                        ps.remove(&p);
                    }
                    if let Some(a) = out.get_mut(&from) {
                        a.retain(|_, ps| !ps.is_empty());
                    }
                    out.entry(to.clone())
                        .or_default()
                        .entry(*t)
                        .or_default()
                        .insert(p);
                    owner.insert((*t, p), to);
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    out
}

/// Kafka's `RangeAssignor`: per topic, its subscribers sorted (static
/// members by instance id first, then by member id) get consecutive
/// ranges, the first `partitions % subscribers` one partition more.
fn range(spec: &GroupSpec<'_>) -> BTreeMap<String, Assignment> {
    let mut ids: Vec<&String> = spec.members.keys().collect();
    ids.sort_by(|a, b| {
        let ia = spec.members.get(*a).and_then(|m| m.instance_id.as_ref());
        let ib = spec.members.get(*b).and_then(|m| m.instance_id.as_ref());
        match (ia, ib) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(b),
        }
    });
    // topic -> (partitions, subscribers, extra left, next range start)
    let mut topics: HashMap<Uuid, (i32, i32, i32, i32)> = HashMap::new();
    for id in &ids {
        if let Some(m) = spec.members.get(*id) {
            for t in &m.topics {
                let e = topics
                    .entry(*t)
                    .or_insert((partitions_of(spec, t), 0, -1, 0));
                e.1 += 1;
            }
        }
    }
    let mut out = BTreeMap::new();
    for id in ids {
        let mut a = Assignment::new();
        if let Some(m) = spec.members.get(id) {
            for t in &m.topics {
                let Some(e) = topics.get_mut(t) else { continue };
                let (n, subs, _, start) = *e;
                if e.2 < 0 {
                    e.2 = n % subs.max(1);
                }
                let mut quota = n / subs.max(1);
                if e.2 > 0 {
                    quota += 1;
                    e.2 -= 1;
                }
                let end = (start + quota).min(n);
                e.3 = end;
                if start < end {
                    a.insert(*t, (start..end).collect());
                }
            }
        }
        out.insert(id.clone(), a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_members(n: usize, t: Uuid) -> BTreeMap<String, MemberSpec> {
        (0..n)
            .map(|i| {
                (
                    format!("m{i}"),
                    MemberSpec {
                        topics: [t].into_iter().collect(),
                        ..MemberSpec::default()
                    },
                )
            })
            .collect()
    }

    fn check_disjoint_cover(out: &BTreeMap<String, Assignment>, t: Uuid, n: i32) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for p in a.get(&t).into_iter().flatten() {
                assert!(seen.insert(*p), "partition {p} assigned twice: {out:?}");
            }
        }
        assert_eq!(seen, (0..n).collect());
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let t = Uuid::from_u128(9);
        let parts: HashMap<Uuid, i32> = [(t, 6)].into_iter().collect();
        let mut members = spec_members(3, t);
        let out = assign(
            UNIFORM,
            &GroupSpec {
                members: &members,
                homogeneous: true,
                partitions: &parts,
            },
        );
        check_disjoint_cover(&out, t, 6);
        assert!(out.values().all(|a| count(a) == 2));
        // A fourth member: each old member keeps at least one of its own.
        for (id, a) in &out {
            if let Some(m) = members.get_mut(id) {
                m.assignment = a.clone();
            }
        }
        members.insert(
            "m3".into(),
            MemberSpec {
                topics: [t].into_iter().collect(),
                ..MemberSpec::default()
            },
        );
        let out2 = assign(
            UNIFORM,
            &GroupSpec {
                members: &members,
                homogeneous: true,
                partitions: &parts,
            },
        );
        check_disjoint_cover(&out2, t, 6);
        for id in ["m0", "m1", "m2"] {
            let before = &out[id][&t];
            let after = out2[id].get(&t).cloned().unwrap_or_default();
            assert!(
                after.is_subset(before) && !after.is_empty(),
                "{id}: {before:?} -> {after:?}"
            );
        }
        let mut sizes: Vec<usize> = out2.values().map(count).collect();
        sizes.sort();
        assert_eq!(sizes, vec![1, 1, 2, 2]);
    }

    #[test]
    fn heterogeneous_uniform_covers_each_topic_among_its_subscribers() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let parts: HashMap<Uuid, i32> = [(a, 4), (b, 2)].into_iter().collect();
        let members: BTreeMap<String, MemberSpec> =
            [("x", vec![a, b]), ("y", vec![a]), ("z", vec![b])]
                .into_iter()
                .map(|(id, ts)| {
                    (
                        id.to_string(),
                        MemberSpec {
                            topics: ts.into_iter().collect(),
                            ..MemberSpec::default()
                        },
                    )
                })
                .collect();
        let out = assign(
            UNIFORM,
            &GroupSpec {
                members: &members,
                homogeneous: false,
                partitions: &parts,
            },
        );
        check_disjoint_cover(&out, a, 4);
        check_disjoint_cover(&out, b, 2);
        assert!(!out["y"].contains_key(&b) && !out["z"].contains_key(&a));
        assert!(out.values().all(|x| count(x) == 2), "{out:?}");
    }

    #[test]
    fn range_gives_consecutive_ranges() {
        let t = Uuid::from_u128(9);
        let parts: HashMap<Uuid, i32> = [(t, 7)].into_iter().collect();
        let members = spec_members(3, t);
        let out = assign(
            RANGE,
            &GroupSpec {
                members: &members,
                homogeneous: true,
                partitions: &parts,
            },
        );
        assert_eq!(out["m0"][&t], (0..3).collect());
        assert_eq!(out["m1"][&t], (3..5).collect());
        assert_eq!(out["m2"][&t], (5..7).collect());
    }
}
