//! A classic group (Kafka's `ClassicGroup`): its state machine position,
//! generation, members and committed offsets, plus the pure rules that do
//! not need timers or the log: protocol support and selection, member
//! validation, the durable form.
//!
//! States, as in Kafka:
//! - Empty: no members (may still hold offsets); a join starts a rebalance.
//! - PreparingRebalance: waiting for members to (re)join.
//! - CompletingRebalance: join responses sent, waiting for the leader's
//!   assignment in SyncGroup.
//! - Stable: assignment distributed; heartbeats keep members alive.
//! - Dead: removed (deleted, or expired with nothing left).

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::member::ClassicGroupMember;
use super::offsets::ExpirationBase;
use super::record_serde::{GroupValue, MemberValue};
use super::timers::TimerKey;

pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka reports in ListGroups / DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

pub struct ClassicGroup {
    pub group_id: String,
    pub state: GroupState,
    /// When the group entered its current state (ms); offsets of an Empty
    /// group expire relative to it.
    pub state_timestamp: i64,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// Ordered, so that leader re-election is deterministic.
    pub members: BTreeMap<String, ClassicGroupMember>,
    /// group.instance.id → member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, awaiting the rejoin;
    /// each with its session timer.
    pub pending_members: HashMap<String, TimerKey>,
    /// Members that got their join response but have not synced yet.
    pub pending_sync: HashSet<String>,
    /// A member joined during the initial delayed join.
    pub new_member_added: bool,
    pub join_timer: Option<TimerKey>,
    /// Some while the join timer is the initial delayed join: the budget
    /// left for extending it (Kafka's `InitialDelayedJoin.remainingMs`).
    pub initial_delay_remaining_ms: Option<i64>,
    pub sync_timer: Option<TimerKey>,
    /// Whether a GroupMetadata record was ever written (or loaded): a group
    /// that never was can vanish without a tombstone.
    pub persisted: bool,
}

impl ClassicGroup {
    pub fn new(group_id: String, now: i64) -> ClassicGroup {
        ClassicGroup {
            group_id,
            state: GroupState::Empty,
            state_timestamp: now,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            join_timer: None,
            initial_delay_remaining_ms: None,
            sync_timer: None,
            persisted: false,
        }
    }

    pub fn transition(&mut self, to: GroupState, now: i64) {
        tracing::debug!(group = %self.group_id, from = self.state.name(), to = to.name(), generation = self.generation_id, "group state change");
        self.state = to;
        self.state_timestamp = now;
    }

    /// Empty, without members and never persisted: if it also holds no
    /// offsets (the `OffsetMetadataManager`'s to say), such a group can be
    /// forgotten without a record.
    pub fn holds_nothing(&self) -> bool {
        self.is(GroupState::Empty)
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && !self.persisted
    }

    pub fn is(&self, s: GroupState) -> bool {
        self.state == s
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    /// Every known member has rejoined and no MEMBER_ID_REQUIRED member is
    /// still expected.
    pub fn has_all_members_joined(&self) -> bool {
        self.members.values().all(|m| m.is_awaiting_join()) && self.pending_members.is_empty()
    }

    pub fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Kafka's `acceptJoiningMember`, counting MEMBER_ID_REQUIRED members
    /// too so that a client looping on empty member ids stays bounded by
    /// `group.max.size`.
    pub fn accept_joining_member(&self, member_id: &str, max_size: usize) -> bool {
        let known = self.members.get(member_id);
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                known.is_some_and(|m| m.is_awaiting_join())
                    || self.num_awaiting_join() + self.pending_members.len() < max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                known.is_some() || self.members.len() + self.pending_members.len() < max_size
            }
        }
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> Vec<&str> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            for (n, _) in &m.protocols {
                *counts.entry(n.as_str()).or_default() += 1;
            }
        }
        let n = self.members.len();
        // Keep a stable order: the first member's preference order.
        let mut out: Vec<&str> = Vec::new();
        for m in self.members.values() {
            for (name, _) in &m.protocols {
                if counts.get(name.as_str()) == Some(&n) && !out.contains(&name.as_str()) {
                    out.push(name.as_str());
                }
            }
        }
        out
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty
    /// protocol type with at least one protocol; otherwise the type must
    /// match and one of `protocols` be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let n = self.members.len();
        protocols
            .iter()
            .any(|(p, _)| self.members.values().filter(|m| m.supports(p)).count() == n)
    }

    /// Kafka's `selectProtocol`: among the protocols all members support,
    /// each member votes for its most preferred one; most votes wins.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(&str, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some(v) = m.vote(&candidates) {
                if let Some(e) = votes.iter_mut().find(|(c, _)| *c == v) {
                    e.1 += 1;
                }
            }
        }
        // max_by_key keeps the last maximum; iterate reversed so ties go to
        // the earliest candidate.
        votes
            .iter()
            .rev()
            .max_by_key(|(_, n)| *n)
            .map(|(c, _)| c.to_string())
    }

    /// Kafka's `validateMember`: static identity first, then membership.
    pub fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = group_instance_id {
            match self.static_members.get(instance) {
                None => return Err(ResponseError::UnknownMemberId),
                Some(existing) if existing != member_id => {
                    return Err(ResponseError::FencedInstanceId)
                }
                Some(_) => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(())
    }

    /// Topics the members subscribe to, when the group uses the consumer
    /// protocol and has members (None: unknown, e.g. another protocol).
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = HashSet::new();
        for m in self.members.values() {
            let meta = m.metadata(protocol)?;
            topics.extend(consumer_subscription_topics(meta)?);
        }
        Some(topics)
    }

    /// Kafka's `isSubscribedToTopic` for OffsetDelete: only a non-empty
    /// consumer group is subscribed to anything.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return false;
        }
        self.subscribed_topics().is_some_and(|t| t.contains(topic))
    }

    pub fn expiration_base(&self) -> ExpirationBase {
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                if self.protocol_type.is_some() {
                    ExpirationBase::StateTimestamp(self.state_timestamp)
                } else {
                    ExpirationBase::CommitTimestamp
                }
            }
            _ => match self.subscribed_topics() {
                Some(t) => ExpirationBase::Unsubscribed(t),
                None => ExpirationBase::Never,
            },
        }
    }

    /// The durable form (GroupMetadataValue) with the members' current
    /// assignments.
    pub fn to_value(&self) -> GroupValue {
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: self
                        .protocol_name
                        .as_deref()
                        .and_then(|p| m.metadata(p).cloned())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its loaded GroupMetadataValue: Stable with its
    /// members if it had any, Empty otherwise (as Kafka loads it).
    pub fn from_value(group_id: String, v: GroupValue, now: i64) -> ClassicGroup {
        let mut g = ClassicGroup::new(group_id, now);
        g.generation_id = v.generation;
        g.protocol_type = Some(v.protocol_type).filter(|t| !t.is_empty());
        g.protocol_name = v.protocol;
        g.state_timestamp = if v.current_state_timestamp >= 0 {
            v.current_state_timestamp
        } else {
            now
        };
        g.persisted = true;
        for m in v.members {
            let protocols = match &g.protocol_name {
                Some(p) => vec![(p.clone(), m.subscription.clone())],
                None => Vec::new(),
            };
            if let Some(i) = &m.group_instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                ClassicGroupMember {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    protocols,
                    assignment: m.assignment,
                    join_waiter: None,
                    sync_waiter: None,
                    heartbeat_timer: None,
                },
            );
        }
        g.leader_id = v
            .leader
            .filter(|l| g.members.contains_key(l))
            .or_else(|| g.members.keys().next().cloned());
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }
}

/// Topics of a ConsumerProtocolSubscription (any version: they all start
/// with version i16 then the topic array). None if malformed.
pub fn consumer_subscription_topics(meta: &[u8]) -> Option<Vec<String>> {
    let mut pos = 2usize;
    let count = i32::from_be_bytes(meta.get(pos..pos + 4)?.try_into().ok()?);
    pos += 4;
    if count < 0 || count as usize > meta.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = i16::from_be_bytes(meta.get(pos..pos + 2)?.try_into().ok()?);
        pos += 2;
        let len = usize::try_from(len).ok()?;
        let s = meta.get(pos..pos + len)?;
        pos += len;
        out.push(String::from_utf8(s.to_vec()).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> ClassicGroupMember {
        ClassicGroupMember {
            member_id: id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            heartbeat_timer: None,
        }
    }

    #[test]
    fn protocol_selection_votes_among_common_protocols() {
        let mut g = ClassicGroup::new("g".into(), 0);
        g.protocol_type = Some("consumer".into());
        g.members
            .insert("a".into(), member("a", &["range", "roundrobin"]));
        g.members
            .insert("b".into(), member("b", &["roundrobin", "range", "sticky"]));
        g.members
            .insert("c".into(), member("c", &["roundrobin", "range"]));
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        let only_sticky = vec![("sticky".to_string(), Bytes::new())];
        assert!(!g.supports_protocols("consumer", &only_sticky));
        let range = vec![("range".to_string(), Bytes::new())];
        assert!(g.supports_protocols("consumer", &range));
        assert!(!g.supports_protocols("connect", &range));
    }

    #[test]
    fn subscription_topics_parse() {
        let mut m = vec![0u8, 1, 0, 0, 0, 2];
        for t in ["a", "bc"] {
            m.extend_from_slice(&(t.len() as i16).to_be_bytes());
            m.extend_from_slice(t.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            consumer_subscription_topics(&m),
            Some(vec!["a".to_string(), "bc".to_string()])
        );
        assert_eq!(consumer_subscription_topics(&m[..7]), None);
    }
}
