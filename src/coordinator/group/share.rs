//! KIP-932 share groups' membership (the share-group half of Kafka's
//! `GroupMetadataManager`, its `ShareGroup`, `ShareGroupMember` and
//! `SimpleAssignor`): ShareGroupHeartbeat (join, heartbeat, leave, session
//! expiry), the target assignment, ShareGroupDescribe.
//!
//! A share group shares the group-id namespace with classic and consumer
//! groups. Its members take their target assignment at once (share groups
//! have no revocation: several members may hold one partition). A target
//! covers only the group's initialized share partitions (Kafka's
//! `ShareGroupStatePartitionMetadata`: a subscribed topic is initialized
//! after the heartbeat that subscribed it, so a new group's first target is
//! empty) and is computed at most once per `share.assignment.interval.ms`
//! (KIP-1251, the consumer group's rule). The state is in memory only: no
//! ShareGroup* records are written to `__consumer_offsets`, so members
//! rejoin after a restart (members do so on their own on UNKNOWN_MEMBER_ID).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::consumer::heartbeat::can_compute_next_target_assignment;
use super::consumer::{combine_hashes, topic_hash, TopicResolver};

/// Topic id → partitions.
pub type ShareAssignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// An error code and Kafka's message.
pub type ShareFail = (i16, Option<String>);

fn fail(e: ResponseError, msg: impl Into<String>) -> ShareFail {
    (e.code(), Some(msg.into()))
}

#[derive(Debug, Clone, Default)]
pub struct ShareMember {
    pub member_id: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted, deduplicated.
    pub subscribed_topic_names: Vec<String>,
    pub assigned: ShareAssignment,
    /// When the member's session expires (Kafka's session timer).
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ShareGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub metadata_hash: i64,
    pub members: BTreeMap<String, ShareMember>,
    /// The target assignment of `assignment_epoch`, by member.
    pub target: BTreeMap<String, ShareAssignment>,
    /// When the target was last computed (0: never), for KIP-1251's
    /// assignment interval (Kafka's `ShareGroupTargetAssignmentMetadata`
    /// `AssignmentTimestamp`, kept in memory like the rest).
    pub assignment_timestamp_ms: i64,
    /// The share partitions whose state is initialized, by topic id, with
    /// the topic's name (Kafka's `initializedTopics`): only these are
    /// assigned.
    pub initialized: BTreeMap<Uuid, (String, BTreeSet<i32>)>,
}

impl ShareGroup {
    /// Kafka's `ShareGroup.ShareGroupState`: Empty or Stable.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .collect()
    }

    fn metadata_hash_now(&self, topics: &dyn TopicResolver) -> i64 {
        let subscribed = self.subscribed_topics();
        let hashes: Vec<(&String, i64)> = subscribed
            .iter()
            .map(|t| (t, topic_hash(t, topics.by_name(t))))
            .collect();
        combine_hashes(hashes.into_iter())
    }

    /// Kafka's `initializedAssignmentPending`: a subscribed topic has
    /// initialized partitions the target does not cover yet.
    fn initialized_assignment_pending(&self) -> bool {
        if self.members.is_empty() || self.initialized.is_empty() {
            return false;
        }
        let subscribed = self.subscribed_topics();
        let mut targeted: BTreeMap<Uuid, BTreeSet<i32>> = BTreeMap::new();
        for a in self.target.values() {
            for (t, ps) in a {
                targeted.entry(*t).or_default().extend(ps);
            }
        }
        self.initialized
            .iter()
            .filter(|(_, (name, _))| subscribed.contains(name))
            .any(|(id, (_, ps))| targeted.get(id) != Some(ps))
    }

    /// The subscribed topics' partitions initialized (what Kafka's
    /// InitializeShareGroupState after a heartbeat records): every
    /// partition each subscribed topic has now.
    fn initialize_subscribed(&mut self, topics: &dyn TopicResolver) {
        // A deleted or recreated topic's old id can never be assigned again;
        // kept, it would leave `initialized_assignment_pending` true and bump
        // the group epoch on every heartbeat.
        self.initialized
            .retain(|id, (name, _)| topics.by_name(name).is_some_and(|(now, _)| now == *id));
        for name in self.subscribed_topics() {
            if let Some((id, n)) = topics.by_name(&name) {
                self.initialized.insert(id, (name, (0..n).collect()));
            }
        }
    }

    /// Fences members whose session expired; true when any was.
    pub fn expire_sessions(&mut self, now_ms: i64) -> bool {
        let before = self.members.len();
        self.members.retain(|_, m| m.expires_at_ms > now_ms);
        let expired = self.members.len() != before;
        if expired {
            self.group_epoch += 1;
        }
        expired
    }
}

/// What a ShareGroupHeartbeat carries (after the handler's checks).
pub struct ShareHeartbeatParams {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub rack_id: Option<String>,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    /// The group's `share.assignment.interval.ms` (KIP-1251), clamped.
    pub assignment_interval_ms: i32,
    pub max_size: usize,
    pub now_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ShareHeartbeatOutcome {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    pub assignment: Option<ShareAssignment>,
}

impl ShareHeartbeatOutcome {
    pub fn error((error, message): ShareFail) -> Self {
        ShareHeartbeatOutcome {
            error,
            message,
            ..Default::default()
        }
    }
}

/// Kafka's `throwIfShareGroupHeartbeatRequestIsInvalid` (checked before
/// the group is looked up).
pub fn validate(p: &ShareHeartbeatParams) -> Result<(), ShareFail> {
    let invalid = |m: &str| Err(fail(ResponseError::InvalidRequest, m));
    if p.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if p.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if p.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    if p.member_epoch == 0 {
        if p.subscribed_topic_names.as_ref().is_none_or(Vec::is_empty) {
            return invalid("SubscribedTopicNames must be set in first request.");
        }
    } else if p.member_epoch < -1 {
        return invalid("MemberEpoch is invalid.");
    }
    Ok(())
}

/// The share groups of one coordinator.
#[derive(Default)]
pub struct ShareGroups {
    pub groups: BTreeMap<String, ShareGroup>,
}

impl ShareGroups {
    /// ShareGroupHeartbeat. `other_group` tells whether the id names a
    /// classic or consumer group.
    pub fn heartbeat(
        &mut self,
        p: ShareHeartbeatParams,
        other_group: bool,
        topics: &dyn TopicResolver,
    ) -> ShareHeartbeatOutcome {
        match self.try_heartbeat(p, other_group, topics) {
            Ok(o) => o,
            Err(f) => ShareHeartbeatOutcome::error(f),
        }
    }

    fn try_heartbeat(
        &mut self,
        p: ShareHeartbeatParams,
        other_group: bool,
        topics: &dyn TopicResolver,
    ) -> Result<ShareHeartbeatOutcome, ShareFail> {
        let gid = p.group_id.clone();
        if other_group {
            return Err(fail(
                ResponseError::GroupIdNotFound,
                format!("Group {gid} is not a share group."),
            ));
        }
        let create = p.member_epoch == 0;
        if p.member_epoch == -1 {
            return self.leave(&gid, &p.member_id);
        }
        let mut g = match self.groups.get(&gid) {
            Some(g) => g.clone(),
            None if create => ShareGroup {
                group_id: gid.clone(),
                ..Default::default()
            },
            None => {
                return Err(fail(
                    ResponseError::GroupIdNotFound,
                    format!("Share group {gid} not found."),
                ))
            }
        };
        g.expire_sessions(p.now_ms);
        if g.members.len() >= p.max_size && !g.members.contains_key(&p.member_id) {
            return Err(fail(
                ResponseError::GroupMaxSizeReached,
                format!(
                    "The share group has reached its maximum capacity of {} members.",
                    p.max_size
                ),
            ));
        }
        let old = match g.members.get(&p.member_id) {
            Some(m) => m.clone(),
            None if create => ShareMember {
                member_id: p.member_id.clone(),
                ..Default::default()
            },
            None => {
                return Err(fail(
                    ResponseError::UnknownMemberId,
                    format!("Member {} is not a member of group {gid}.", p.member_id),
                ))
            }
        };
        // Kafka's `throwIfShareGroupMemberEpochIsInvalid`.
        if p.member_epoch > old.member_epoch {
            return Err(fail(
                ResponseError::FencedMemberEpoch,
                format!(
                    "The share group member has a greater member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    p.member_epoch, old.member_epoch
                ),
            ));
        }
        if p.member_epoch < old.member_epoch && p.member_epoch != old.previous_member_epoch {
            return Err(fail(
                ResponseError::FencedMemberEpoch,
                format!(
                    "The share group member has a smaller member epoch ({}) than the one known by the group coordinator ({}), and it does not match the previous member epoch ({}). The member must abandon all its partitions and rejoin.",
                    p.member_epoch, old.member_epoch, old.previous_member_epoch
                ),
            ));
        }
        // Kafka checks whether initialized partitions wait for a target
        // only when the target is current (before this member's update).
        let init_pending =
            g.assignment_epoch >= g.group_epoch && g.initialized_assignment_pending();
        let mut member = old.clone();
        if let Some(r) = &p.rack_id {
            member.rack_id = Some(r.clone());
        }
        if let Some(names) = &p.subscribed_topic_names {
            let mut n = names.clone();
            n.sort();
            n.dedup();
            member.subscribed_topic_names = n;
        }
        member.client_id = p.client_id.clone();
        member.client_host = p.client_host.clone();
        member.expires_at_ms = p.now_ms.saturating_add(i64::from(p.session_timeout_ms));
        let changed = member.subscribed_topic_names != old.subscribed_topic_names
            || !g.members.contains_key(&p.member_id)
            || init_pending;
        g.members.insert(p.member_id.clone(), member);
        let hash = g.metadata_hash_now(topics);
        if changed || hash != g.metadata_hash {
            g.group_epoch += 1;
            g.metadata_hash = hash;
        }
        // Kafka's `maybeUpdateTargetAssignment`: a new target when the
        // group epoch moved past it and the assignment interval has passed
        // since the last one; until then members stay at the last target.
        if g.group_epoch > g.assignment_epoch
            && can_compute_next_target_assignment(
                g.assignment_timestamp_ms,
                p.assignment_interval_ms,
                p.now_ms,
            )
        {
            g.target = simple_assign(&g, topics);
            g.assignment_epoch = g.group_epoch;
            g.assignment_timestamp_ms = p.now_ms;
        }
        // Share groups reconcile at once: no partition is revoked first.
        let target = g.target.get(&p.member_id).cloned().unwrap_or_default();
        let Some(m) = g.members.get_mut(&p.member_id) else {
            return Err(fail(ResponseError::UnknownServerError, "member vanished"));
        };
        if m.member_epoch != g.assignment_epoch {
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = g.assignment_epoch;
        }
        let assignment_changed = m.assigned != target;
        m.assigned = target;
        let out = ShareHeartbeatOutcome {
            member_id: Some(m.member_id.clone()),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: p.heartbeat_interval_ms,
            assignment: (create || p.subscribed_topic_names.is_some() || assignment_changed)
                .then(|| m.assigned.clone()),
            ..Default::default()
        };
        // After the answer Kafka initializes the subscribed topics' share
        // state; the next heartbeat sees them (`init_pending` above).
        g.initialize_subscribed(topics);
        self.groups.insert(gid, g);
        Ok(out)
    }

    /// Member epoch -1 (Kafka's `shareGroupLeave`).
    fn leave(&mut self, gid: &str, member_id: &str) -> Result<ShareHeartbeatOutcome, ShareFail> {
        let Some(g) = self.groups.get_mut(gid) else {
            return Err(fail(
                ResponseError::GroupIdNotFound,
                format!("Group {gid} not found."),
            ));
        };
        if g.members.remove(member_id).is_none() {
            return Err(fail(
                ResponseError::UnknownMemberId,
                format!("Member {member_id} is not a member of group {gid}."),
            ));
        }
        g.target.remove(member_id);
        g.group_epoch += 1;
        // The last member gone, Kafka's target (empty) is current at once.
        if g.members.is_empty() {
            g.assignment_epoch = g.group_epoch;
        }
        Ok(ShareHeartbeatOutcome {
            member_id: Some(member_id.to_string()),
            member_epoch: -1,
            ..Default::default()
        })
    }

    /// ShareGroupDescribe of one group (sessions expired first).
    pub fn describe(
        &mut self,
        gid: &str,
        other_group: bool,
        now_ms: i64,
    ) -> Result<ShareGroup, ShareFail> {
        if other_group {
            return Err(fail(
                ResponseError::GroupIdNotFound,
                format!("Group {gid} is not a share group."),
            ));
        }
        match self.groups.get_mut(gid) {
            Some(g) => {
                g.expire_sessions(now_ms);
                Ok(g.clone())
            }
            None => Err(fail(
                ResponseError::GroupIdNotFound,
                format!("Group {gid} not found."),
            )),
        }
    }

    /// Kafka 4.4's `getOrMaybeCreateShareGroup(groupId, true)`, as
    /// AlterShareGroupOffsets calls it: the group, created empty when no
    /// group of any type has the id.
    pub fn get_or_create(
        &mut self,
        gid: &str,
        other_group: bool,
        now_ms: i64,
    ) -> Result<ShareGroup, ShareFail> {
        if !other_group && !self.groups.contains_key(gid) {
            self.groups.insert(
                gid.to_string(),
                ShareGroup {
                    group_id: gid.to_string(),
                    ..Default::default()
                },
            );
        }
        self.describe(gid, other_group, now_ms)
    }

    /// AlterShareGroupOffsets initialized `partitions` (topic id, name,
    /// partition) for share group `gid` (Kafka records them initialized);
    /// any not initialized before moves the group epoch once, as Kafka's
    /// completed initialization does.
    pub fn mark_initialized(&mut self, gid: &str, partitions: &[(Uuid, String, i32)]) {
        let Some(g) = self.groups.get_mut(gid) else {
            return;
        };
        let mut added = false;
        for (id, name, partition) in partitions {
            added |= g
                .initialized
                .entry(*id)
                .or_insert_with(|| (name.clone(), BTreeSet::new()))
                .1
                .insert(*partition);
        }
        if added {
            g.group_epoch += 1;
        }
    }

    /// DeleteShareGroupOffsets deleted topic `id`'s share state of share
    /// group `gid`: it is no longer initialized.
    pub fn uninitialize(&mut self, gid: &str, id: &Uuid) {
        if let Some(g) = self.groups.get_mut(gid) {
            g.initialized.remove(id);
        }
    }

    /// Whether `member_id` is a live member of share group `gid`.
    pub fn is_member(&self, gid: &str, member_id: &str, now_ms: i64) -> bool {
        self.groups
            .get(gid)
            .and_then(|g| g.members.get(member_id))
            .is_some_and(|m| m.expires_at_ms > now_ms)
    }
}

/// Java's `String.hashCode` (UTF-16 code units), which the simple
/// assignor hashes member ids with.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `SimpleAssignor` for share groups: each member is hashed onto
/// one of its subscribed partitions, members keep current partitions up
/// to the balanced count, and partitions still without a member go round
/// robin. Members are taken in member-id order (Kafka's order is its hash
/// set's).
pub fn simple_assign(
    g: &ShareGroup,
    topics: &dyn TopicResolver,
) -> BTreeMap<String, ShareAssignment> {
    type Tp = (Uuid, i32);
    let members: Vec<&ShareMember> = g.members.values().collect();
    let mut out: BTreeMap<String, BTreeSet<Tp>> = BTreeMap::new();
    if members.is_empty() {
        return BTreeMap::new();
    }
    // Only initialized partitions of topics that still exist (Kafka's
    // `topicAssignablePartitionsMap`).
    let partitions_of = |m: &ShareMember| -> Vec<Tp> {
        let mut v = Vec::new();
        for t in &m.subscribed_topic_names {
            if let Some((id, n)) = topics.by_name(t) {
                if let Some((_, ready)) = g.initialized.get(&id) {
                    v.extend(ready.iter().filter(|p| **p < n).map(|p| (id, *p)));
                }
            }
        }
        v
    };
    let subscribed: BTreeMap<&str, Vec<Tp>> = members
        .iter()
        .map(|m| (m.member_id.as_str(), partitions_of(m)))
        .collect();
    let all: BTreeSet<Tp> = subscribed.values().flatten().copied().collect();
    let n_members = members
        .iter()
        .filter(|m| !subscribed[m.member_id.as_str()].is_empty())
        .count()
        .max(1);
    let desired = all.len().div_ceil(n_members);
    let mut by_partition: BTreeMap<Tp, BTreeSet<String>> = BTreeMap::new();
    // 1. Hashing: one partition per member.
    let mut hashed: BTreeSet<Tp> = BTreeSet::new();
    for m in &members {
        let parts = &subscribed[m.member_id.as_str()];
        if parts.is_empty() {
            continue;
        }
        let len = i32::try_from(parts.len()).unwrap_or(i32::MAX);
        let idx = (java_hash(&m.member_id) % len).unsigned_abs() as usize;
        let tp = parts[idx];
        hashed.insert(tp);
        out.entry(m.member_id.clone()).or_default().insert(tp);
        by_partition
            .entry(tp)
            .or_default()
            .insert(m.member_id.clone());
    }
    // 2. Current assignments still subscribed, up to the desired count.
    for m in &members {
        let parts: BTreeSet<Tp> = subscribed[m.member_id.as_str()].iter().copied().collect();
        for (t, ps) in &m.assigned {
            for p in ps {
                let tp = (*t, *p);
                let mine = out.entry(m.member_id.clone()).or_default();
                if parts.contains(&tp) && mine.len() < desired && !hashed.contains(&tp) {
                    mine.insert(tp);
                    by_partition
                        .entry(tp)
                        .or_default()
                        .insert(m.member_id.clone());
                }
            }
        }
    }
    // 3. Round robin for partitions without a member, over the members
    // subscribed to each.
    let unassigned: Vec<Tp> = all
        .iter()
        .filter(|tp| !by_partition.contains_key(*tp))
        .copied()
        .collect();
    let mut cursor = 0usize;
    for tp in unassigned {
        let candidates: Vec<&str> = members
            .iter()
            .map(|m| m.member_id.as_str())
            .filter(|m| subscribed[m].contains(&tp))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        // The first candidate from the cursor not above the desired count
        // (Kafka allows one more than desired).
        let pick = (0..candidates.len())
            .map(|i| candidates[(cursor + i) % candidates.len()])
            .find(|m| out.get(*m).map_or(0, BTreeSet::len) <= desired)
            .unwrap_or(candidates[cursor % candidates.len()]);
        cursor = cursor.wrapping_add(1);
        out.entry(pick.to_string()).or_default().insert(tp);
    }
    out.into_iter()
        .map(|(m, tps)| {
            let mut a = ShareAssignment::new();
            for (t, p) in tps {
                a.entry(t).or_default().insert(p);
            }
            (m, a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Topics(BTreeMap<String, (Uuid, i32)>);
    impl TopicResolver for Topics {
        fn by_name(&self, name: &str) -> Option<(Uuid, i32)> {
            self.0.get(name).copied()
        }
        fn name_of(&self, id: &Uuid) -> Option<String> {
            self.0
                .iter()
                .find(|(_, v)| v.0 == *id)
                .map(|(k, _)| k.clone())
        }
        fn topic_names(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
        fn topics_version(&self) -> i64 {
            0
        }
        fn may_describe(&self, _: &str) -> bool {
            true
        }
    }

    fn params(member: &str, epoch: i32, topics: Option<&[&str]>) -> ShareHeartbeatParams {
        ShareHeartbeatParams {
            group_id: "g".into(),
            member_id: member.into(),
            member_epoch: epoch,
            rack_id: None,
            subscribed_topic_names: topics.map(|t| t.iter().map(|s| s.to_string()).collect()),
            client_id: "c".into(),
            client_host: "/h".into(),
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            assignment_interval_ms: 0,
            max_size: 200,
            now_ms: 1_000,
        }
    }

    #[test]
    fn targets_wait_for_initialization_and_the_assignment_interval() {
        let id = Uuid::from_u128(5);
        let topics = Topics(BTreeMap::from([("t".to_string(), (id, 2))]));
        let mut s = ShareGroups::default();
        let at =
            |member: &str, epoch: i32, sub: Option<&[&str]>, now_ms: i64| ShareHeartbeatParams {
                assignment_interval_ms: 1_000,
                now_ms,
                ..params(member, epoch, sub)
            };
        // The first target is computed at once, over no initialized
        // partition: epoch 1, an empty assignment.
        let a = s.heartbeat(at("a", 0, Some(&["t"]), 10_000), false, &topics);
        assert_eq!((a.error, a.member_epoch), (0, 1));
        assert_eq!(a.assignment, Some(ShareAssignment::new()));
        assert_eq!(s.groups["g"].initialized[&id].1, BTreeSet::from([0, 1]));
        // The initialized partitions bump the group epoch, but the next
        // target waits for the interval.
        let a = s.heartbeat(at("a", 1, None, 10_500), false, &topics);
        assert_eq!((a.member_epoch, a.assignment), (1, None));
        let g = &s.groups["g"];
        assert_eq!((g.group_epoch, g.assignment_epoch), (2, 1));
        let a = s.heartbeat(at("a", 1, None, 11_000), false, &topics);
        assert_eq!(a.member_epoch, 2);
        assert_eq!(
            a.assignment,
            Some(ShareAssignment::from([(id, BTreeSet::from([0, 1]))]))
        );
        // A second member within the interval: the last target's epoch and
        // nothing for it yet.
        let b = s.heartbeat(at("b", 0, Some(&["t"]), 11_100), false, &topics);
        assert_eq!(b.member_epoch, 2);
        assert_eq!(b.assignment, Some(ShareAssignment::new()));
        let b = s.heartbeat(at("b", 2, None, 12_000), false, &topics);
        assert_eq!(b.member_epoch, 3);
        assert!(b.assignment.is_some_and(|x| !x.is_empty()));
    }

    #[test]
    fn a_recreated_topic_leaves_no_stale_initialized_partitions() {
        let (old, new) = (Uuid::from_u128(5), Uuid::from_u128(6));
        let before = Topics(BTreeMap::from([("t".to_string(), (old, 2))]));
        let after = Topics(BTreeMap::from([("t".to_string(), (new, 2))]));
        let mut s = ShareGroups::default();
        let mut epoch = s
            .heartbeat(params("a", 0, Some(&["t"])), false, &before)
            .member_epoch;
        epoch = s
            .heartbeat(params("a", epoch, None), false, &before)
            .member_epoch;
        assert!(s.groups["g"].initialized.contains_key(&old));
        // t is deleted and created again under a new id
        for _ in 0..4 {
            epoch = s
                .heartbeat(params("a", epoch, None), false, &after)
                .member_epoch;
        }
        let settled = s.groups["g"].group_epoch;
        for _ in 0..3 {
            epoch = s
                .heartbeat(params("a", epoch, None), false, &after)
                .member_epoch;
        }
        let g = &s.groups["g"];
        assert_eq!(g.group_epoch, settled, "the group epoch settles");
        assert!(!g.initialized.contains_key(&old));
        assert_eq!(g.target["a"][&new], BTreeSet::from([0, 1]));
    }

    #[test]
    fn java_string_hash_matches_java() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash(""), 0);
    }

    #[test]
    fn every_member_of_a_one_partition_topic_shares_it() {
        let id = Uuid::from_u128(7);
        let topics = Topics(BTreeMap::from([("t".to_string(), (id, 1))]));
        let mut s = ShareGroups::default();
        let a = s.heartbeat(params("m1", 0, Some(&["t"])), false, &topics);
        assert_eq!(a.error, 0);
        assert_eq!(a.member_epoch, 1);
        let b = s.heartbeat(params("m2", 0, Some(&["t"])), false, &topics);
        assert_eq!(b.member_epoch, 2);
        assert_eq!(b.assignment.unwrap()[&id], BTreeSet::from([0]));
        // m1's next heartbeat moves it to epoch 2, still holding p0.
        let a2 = s.heartbeat(params("m1", 1, None), false, &topics);
        assert_eq!(a2.member_epoch, 2);
        let g = s.describe("g", false, 1_000).unwrap();
        assert!(g.members.values().all(|m| m.assigned[&id].contains(&0)));
    }

    #[test]
    fn epochs_and_membership_are_checked() {
        let topics = Topics(BTreeMap::from([("t".to_string(), (Uuid::from_u128(1), 2))]));
        let mut s = ShareGroups::default();
        s.heartbeat(params("m1", 0, Some(&["t"])), false, &topics);
        let e = s.heartbeat(params("m1", 5, None), false, &topics);
        assert_eq!(e.error, ResponseError::FencedMemberEpoch.code());
        let u = s.heartbeat(params("zz", 1, None), false, &topics);
        assert_eq!(u.error, ResponseError::UnknownMemberId.code());
        let o = s.heartbeat(params("m1", 0, Some(&["t"])), true, &topics);
        assert_eq!(o.error, ResponseError::GroupIdNotFound.code());
        let l = s.heartbeat(params("m1", -1, None), false, &topics);
        assert_eq!((l.error, l.member_epoch), (0, -1));
        assert_eq!(s.describe("g", false, 1_000).unwrap().state(), "Empty");
    }

    #[test]
    fn partitions_are_spread_over_members() {
        let id = Uuid::from_u128(3);
        let topics = Topics(BTreeMap::from([("t".to_string(), (id, 4))]));
        let mut s = ShareGroups::default();
        for m in ["a", "b"] {
            s.heartbeat(params(m, 0, Some(&["t"])), false, &topics);
        }
        let g = s.groups["g"].clone();
        let all: BTreeSet<i32> = g
            .target
            .values()
            .flat_map(|a| a[&id].iter().copied())
            .collect();
        assert_eq!(
            all,
            BTreeSet::from([0, 1, 2, 3]),
            "every partition assigned"
        );
        assert!(g.target.values().all(|a| a[&id].len() <= 3));
    }
}
