//! KIP-848's online migration between the classic and the consumer
//! protocol (Kafka's `GroupMetadataManager.validateOnlineUpgrade`,
//! `convertToConsumerGroup` with `ConsumerGroup.fromClassicGroup`,
//! `validateOnlineDowngradeWithFencedMembers`, `convertToClassicGroup` with
//! `ClassicGroup.fromConsumerGroup`), as `group.consumer.migration.policy`
//! allows, and the embedded consumer protocol (ConsumerProtocolSubscription
//! and ConsumerProtocolAssignment) both directions read and write.
//!
//! Upgrade: a ConsumerGroupHeartbeat joining a non-empty classic group of
//! protocol type `consumer` turns it into a consumer group whose members
//! keep their subscriptions and assignments (epoch = the generation) and
//! go on using the classic protocol (`classic_members`). Downgrade: when
//! the last member using the consumer protocol is fenced (leaves, expires)
//! the classic members left become a classic group, which rebalances.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::group::ConsumerGroup;
use super::heartbeat::{fail, push, Fail};
use super::member::{Assignment, ClassicMemberMetadata, ConsumerGroupMember, MemberState};
use super::records::{ConsumerRecord, CurrentAssignment, MemberMetadata};
use super::{combine_hashes, topic_hash, TopicResolver};
use crate::coordinator::group::api::{JoinOutcome, SyncOutcome};
use crate::coordinator::group::classic_group::{ClassicGroup, GroupState, CONSUMER_PROTOCOL_TYPE};
use crate::coordinator::group::classic_rebalance::reschedule_heartbeat;
use crate::coordinator::group::group_metadata_manager::{Cx, GroupMetadataManager};
use crate::coordinator::group::member::ClassicGroupMember;
use crate::coordinator::group::record_serde;
use crate::coordinator::group::timers::Timer;
use crate::coordinator::group::writer::{map_append_error, record, CoordRecord, DurableWait};
use crate::util::now_ms;

/// The highest ConsumerProtocolSubscription / Assignment version (Kafka
/// 4.x writes at most this; a newer one is read as this one).
const MAX_CONSUMER_PROTOCOL_VERSION: i16 = 3;

/// Kafka's `ConsumerGroupMigrationPolicy` (`group.consumer.migration.policy`,
/// default `bidirectional`; an unknown value is `disabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationPolicy {
    pub upgrade: bool,
    pub downgrade: bool,
}

impl MigrationPolicy {
    pub fn parse(s: &str) -> MigrationPolicy {
        let (upgrade, downgrade) = match s.trim().to_ascii_lowercase().as_str() {
            "bidirectional" => (true, true),
            "upgrade" => (true, false),
            "downgrade" => (false, true),
            _ => (false, false),
        };
        MigrationPolicy { upgrade, downgrade }
    }
}

impl Default for MigrationPolicy {
    fn default() -> MigrationPolicy {
        MigrationPolicy::parse("bidirectional")
    }
}

// ---------------------------------------------------------------------
// the embedded consumer protocol
// ---------------------------------------------------------------------

/// The version an embedded consumer protocol message starts with
/// (Kafka's `ConsumerProtocol.deserializeVersion`), capped at the highest
/// known.
pub fn protocol_version(bytes: &[u8]) -> Result<i16, String> {
    let v = bytes
        .get(..2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "missing version".to_string())?;
    if v < 0 {
        return Err(format!("unsupported version {v}"));
    }
    Ok(v.min(MAX_CONSUMER_PROTOCOL_VERSION))
}

/// A ConsumerProtocolSubscription (a classic consumer's JoinGroup metadata).
pub fn decode_subscription(bytes: &[u8]) -> Result<ConsumerProtocolSubscription, String> {
    let version = protocol_version(bytes)?;
    let mut buf = Bytes::copy_from_slice(&bytes[2..]);
    ConsumerProtocolSubscription::decode(&mut buf, version).map_err(|e| e.to_string())
}

/// A ConsumerProtocolAssignment; None for an empty one (a member that never
/// synced).
pub fn decode_assignment(bytes: &[u8]) -> Result<Option<ConsumerProtocolAssignment>, String> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let version = protocol_version(bytes)?;
    let mut buf = Bytes::copy_from_slice(&bytes[2..]);
    let a = ConsumerProtocolAssignment::decode(&mut buf, version).map_err(|e| e.to_string())?;
    Ok(Some(a))
}

/// `assignment` serialized as a ConsumerProtocolAssignment of `version`
/// (Kafka's `ConsumerProtocol.serializeAssignment`); topics the broker no
/// longer knows are left out.
pub fn encode_assignment(
    assignment: &Assignment,
    topics: &dyn Fn(&Uuid) -> Option<String>,
    version: i16,
) -> Bytes {
    let assigned_partitions = assignment
        .iter()
        .filter_map(|(id, ps)| {
            let name = topics(id)?;
            Some(
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name)))
                    .with_partitions(ps.iter().copied().collect()),
            )
        })
        .collect();
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(assigned_partitions);
    let version = version.clamp(0, MAX_CONSUMER_PROTOCOL_VERSION);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    if let Err(e) = a.encode(&mut buf, version) {
        // Only an oversized field fails, which an assignment by topic
        // names the broker knows cannot have.
        tracing::warn!(error = %e, "a consumer protocol assignment cannot be serialized");
        return Bytes::new();
    }
    buf.freeze()
}

/// The version a member's first protocol's metadata is in (its SyncGroup
/// answer is serialized with it); 0 when unreadable.
pub fn member_protocol_version(m: &ConsumerGroupMember) -> i16 {
    m.classic
        .as_ref()
        .and_then(|c| c.supported_protocols.first())
        .and_then(|(_, meta)| protocol_version(meta).ok())
        .unwrap_or(0)
}

/// Partitions by topic name resolved to topic ids (unknown topics left
/// out, as Kafka's `toTopicPartitionMap` does).
fn assignment_by_id<'a>(
    named: impl Iterator<Item = (&'a str, &'a [i32])>,
    topics: &dyn TopicResolver,
) -> Assignment {
    let mut out = Assignment::new();
    for (name, ps) in named {
        if let Some((id, _)) = topics.by_name(name) {
            out.entry(id).or_default().extend(ps.iter().copied());
        }
    }
    out
}

/// The owned partitions a classic member's subscription reports.
pub fn owned_partitions(
    s: &ConsumerProtocolSubscription,
    topics: &dyn TopicResolver,
) -> Assignment {
    assignment_by_id(
        s.owned_partitions
            .iter()
            .map(|t: &OwnedTopic| (t.topic.0.as_str(), t.partitions.as_slice())),
        topics,
    )
}

/// The subscription's topic names, sorted and without duplicates.
pub fn subscribed_topics(s: &ConsumerProtocolSubscription) -> Vec<String> {
    let mut names: Vec<String> = s.topics.iter().map(|t| t.to_string()).collect();
    names.sort();
    names.dedup();
    names
}

fn cannot_upgrade(gid: &str, why: &str) -> Fail {
    fail(
        ResponseError::GroupIdNotFound,
        format!("Cannot upgrade classic group {gid} to consumer group because {why}."),
    )
}

impl GroupMetadataManager {
    /// Kafka's `validateOnlineUpgrade`, then `convertToConsumerGroup`: the
    /// classic group `gid` as a consumer group, with the records that
    /// create it (each replayed on it). Nothing changes here: the caller
    /// writes the records (after the classic group's tombstone) and then
    /// calls [`Self::finish_upgrade`].
    pub(super) fn convert_to_consumer_group(
        &mut self,
        cx: &Cx,
        gid: &str,
        topics: &dyn TopicResolver,
    ) -> Result<(ConsumerGroup, Vec<ConsumerRecord>), Fail> {
        let Some(c) = self.groups.get(gid) else {
            return Err(fail(
                ResponseError::GroupIdNotFound,
                format!("Consumer group {gid} not found."),
            ));
        };
        if !cx.config.consumer_migration_policy.upgrade {
            tracing::info!(group = %gid, "cannot upgrade the classic group: online upgrade is disabled");
            return Err(cannot_upgrade(gid, "online upgrade is disabled"));
        }
        if c.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return Err(cannot_upgrade(
                gid,
                "the group does not use the consumer embedded protocol",
            ));
        }
        if c.members.len() > cx.config.consumer_max_size {
            return Err(cannot_upgrade(
                gid,
                "the group size exceeds the consumer group maximum size",
            ));
        }
        let malformed = || cannot_upgrade(gid, "the embedded consumer protocol is malformed");
        let generation = c.generation_id;
        let mut members: Vec<ConsumerGroupMember> = Vec::with_capacity(c.members.len());
        for cm in c.members.values() {
            let assigned = match decode_assignment(&cm.assignment).map_err(|e| {
                tracing::warn!(group = %gid, member = %cm.member_id, error = %e, "cannot upgrade: malformed assignment");
                malformed()
            })? {
                None => Assignment::new(),
                Some(a) => {
                    if a.user_data.as_ref().is_some_and(|u| u.has_remaining()) {
                        // A custom assignor's user data would be lost.
                        return Err(fail(
                            ResponseError::GroupIdNotFound,
                            format!("Cannot upgrade classic group {gid} to consumer group because an unsupported custom assignor is in use. Please refer to the documentation or switch to a default assignor before re-attempting the upgrade."),
                        ));
                    }
                    assignment_by_id(
                        a.assigned_partitions
                            .iter()
                            .map(|t| (t.topic.0.as_str(), t.partitions.as_slice())),
                        topics,
                    )
                }
            };
            // The selected protocol's metadata (a group still in its first
            // rebalance has none selected: the member's first).
            let meta = c
                .protocol_name
                .as_deref()
                .and_then(|p| cm.metadata(p))
                .or_else(|| cm.protocols.first().map(|(_, m)| m))
                .ok_or_else(malformed)?;
            let sub = decode_subscription(meta).map_err(|e| {
                tracing::warn!(group = %gid, member = %cm.member_id, error = %e, "cannot upgrade: malformed subscription");
                malformed()
            })?;
            members.push(ConsumerGroupMember {
                member_id: cm.member_id.clone(),
                member_epoch: generation,
                previous_member_epoch: generation,
                state: MemberState::Stable,
                instance_id: cm.group_instance_id.clone(),
                rack_id: sub.rack_id.as_ref().map(|r| r.to_string()),
                rebalance_timeout_ms: cm.rebalance_timeout_ms,
                client_id: cm.client_id.clone(),
                client_host: cm.client_host.clone(),
                subscribed_topic_names: subscribed_topics(&sub),
                subscribed_topic_regex: None,
                server_assignor: None,
                assigned_partitions: assigned,
                partitions_pending_revocation: Assignment::new(),
                classic: Some(ClassicMemberMetadata {
                    session_timeout_ms: cm.session_timeout_ms,
                    supported_protocols: cm.protocols.clone(),
                }),
            });
        }
        // The subscribed topics' hash the group epoch is at.
        let mut names: Vec<&String> = members
            .iter()
            .flat_map(|m| m.subscribed_topic_names.iter())
            .collect();
        names.sort();
        names.dedup();
        let mut hashes = Vec::with_capacity(names.len());
        for n in names {
            let t = topics.by_name(n);
            if let Some((id, _)) = t {
                self.topic_names.insert(id, n.clone());
            }
            let h = topic_hash(n, t);
            self.topic_hashes.insert(n.clone(), h);
            hashes.push((n, h));
        }
        let hash = combine_hashes(hashes.into_iter());

        // Kafka's createConsumerGroupRecords order.
        let g_id = gid.to_string();
        let mut g = ConsumerGroup::new(gid);
        let mut recs = Vec::with_capacity(members.len() * 3 + 2);
        for m in &members {
            let r = ConsumerRecord::MemberMetadata(
                g_id.clone(),
                m.member_id.clone(),
                Some(MemberMetadata::of(m)),
            );
            push(&mut g, &mut recs, r);
        }
        push(
            &mut g,
            &mut recs,
            ConsumerRecord::GroupMetadata(g_id.clone(), Some((generation, hash))),
        );
        for m in &members {
            let r = ConsumerRecord::TargetAssignmentMember(
                g_id.clone(),
                m.member_id.clone(),
                Some(m.assigned_partitions.clone()),
            );
            push(&mut g, &mut recs, r);
        }
        push(
            &mut g,
            &mut recs,
            ConsumerRecord::TargetAssignmentMetadata(g_id.clone(), Some((generation, 0))),
        );
        for m in &members {
            let r = ConsumerRecord::CurrentMemberAssignment(
                g_id.clone(),
                m.member_id.clone(),
                Some(CurrentAssignment::of(m)),
            );
            push(&mut g, &mut recs, r);
        }
        Ok((g, recs))
    }

    /// After the upgrade's records are appended: the classic group goes
    /// (its waiting joins and syncs learn REBALANCE_IN_PROGRESS, so they
    /// rejoin the consumer group; its timers stop) and every converted
    /// member's session runs with its classic session timeout.
    pub(super) fn finish_upgrade(&mut self, g: &mut ConsumerGroup) {
        let gid = g.group_id.clone();
        if let Some(mut c) = self.groups.remove(&gid) {
            self.timers.cancel(c.join_timer.take());
            self.timers.cancel(c.sync_timer.take());
            for (_, key) in c.pending_members.drain() {
                self.timers.cancel(Some(key));
            }
            for m in c.members.values_mut() {
                self.timers.cancel(m.heartbeat_timer.take());
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(JoinOutcome::error(
                        ResponseError::RebalanceInProgress,
                        &m.member_id,
                    ));
                }
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        for m in g.members.values() {
            let Some(classic) = &m.classic else { continue };
            let t = g.timers.entry(m.member_id.clone()).or_default();
            self.timers.cancel(t.session.take());
            t.session = Some(self.timers.schedule(
                i64::from(classic.session_timeout_ms),
                Timer::ConsumerSession {
                    group: gid.clone(),
                    member: m.member_id.clone(),
                },
            ));
        }
        tracing::info!(group = %gid, "converted the classic group to a consumer group");
    }

    /// Kafka's `validateOnlineDowngradeWithFencedMembers`: fencing `leaving`
    /// leaves only classic members (at least one, at most
    /// `group.max.size`) and the policy allows a downgrade.
    pub(super) fn may_downgrade(&self, cx: &Cx, g: &ConsumerGroup, leaving: &[&str]) -> bool {
        if !g.all_members_use_classic_protocol_except(leaving) {
            return false;
        }
        let remaining = g
            .members
            .keys()
            .filter(|id| !leaving.contains(&id.as_str()))
            .count();
        if remaining == 0 {
            return false;
        }
        if !cx.config.consumer_migration_policy.downgrade {
            tracing::info!(group = %g.group_id, "cannot downgrade the consumer group: online downgrade is disabled");
            return false;
        }
        if remaining > cx.config.max_size {
            tracing::info!(group = %g.group_id, "cannot downgrade the consumer group: its size is greater than the classic group max size");
            return false;
        }
        true
    }

    /// Kafka's `validateOnlineDowngradeWithReplacedMember`: a classic static
    /// member joining in place of `replaced` (same instance id) leaves only
    /// classic members, the policy allows a downgrade, and the group is no
    /// larger than a classic group may be.
    pub(super) fn may_downgrade_replacing(
        &self,
        cx: &Cx,
        g: &ConsumerGroup,
        replaced: &str,
    ) -> bool {
        if !g.all_members_use_classic_protocol_except(&[replaced]) {
            return false;
        }
        if !cx.config.consumer_migration_policy.downgrade {
            tracing::info!(group = %g.group_id, "cannot downgrade the consumer group: online downgrade is disabled");
            return false;
        }
        if g.members.len() > cx.config.max_size {
            tracing::info!(group = %g.group_id, "cannot downgrade the consumer group: its size is greater than the classic group max size");
            return false;
        }
        true
    }

    /// Kafka's `convertToClassicGroup` for fenced members: the consumer
    /// group's tombstones and the classic group's record are appended
    /// together; the classic members left make a Stable classic group at
    /// the group epoch, each with its target assignment, which then
    /// prepares a rebalance (`rebalance`: not when a joining static member
    /// triggered it, which syncs into the Stable group). None when no
    /// protocol is common to the members left (the caller goes on as usual).
    pub(super) fn convert_to_classic_group(
        &mut self,
        cx: &Cx,
        gid: &str,
        leaving: &[&str],
        rebalance: bool,
    ) -> Option<Result<Option<DurableWait>, Fail>> {
        let cg = self.consumer_groups.get(gid)?;
        let now = now_ms();
        let mut c = ClassicGroup::new(gid.to_string(), now);
        c.state = GroupState::Stable;
        c.generation_id = cg.group_epoch;
        c.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
        for m in cg.members.values() {
            if leaving.contains(&m.member_id.as_str()) {
                continue;
            }
            let classic = m.classic.clone().unwrap_or_default();
            if let Some(i) = &m.instance_id {
                c.static_members.insert(i.clone(), m.member_id.clone());
            }
            if c.leader_id.is_none() {
                c.leader_id = Some(m.member_id.clone());
            }
            c.members.insert(
                m.member_id.clone(),
                ClassicGroupMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: classic.session_timeout_ms,
                    protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
                    protocols: classic.supported_protocols,
                    assignment: Bytes::new(),
                    join_waiter: None,
                    sync_waiter: None,
                    heartbeat_timer: None,
                },
            );
        }
        let protocol = c.select_protocol()?;
        let names = &self.topic_names;
        for m in c.members.values_mut() {
            let version = m
                .metadata(&protocol)
                .and_then(|meta| protocol_version(meta).ok())
                .unwrap_or(0);
            let target = cg
                .target_assignment
                .get(&m.member_id)
                .cloned()
                .unwrap_or_default();
            m.assignment = encode_assignment(&target, &|id| names.get(id).cloned(), version);
        }
        c.protocol_name = Some(protocol);

        let mut raw: Vec<CoordRecord> = Vec::new();
        for r in cg.tombstones() {
            match r.encode() {
                Ok(kv) => raw.push(kv),
                Err(e) => {
                    tracing::warn!(group = %gid, error = %e, "a consumer group record cannot be serialized");
                    return Some(Err((ResponseError::UnknownServerError.code(), None)));
                }
            }
        }
        let classic_record = record(
            record_serde::group_key(gid),
            Some(record_serde::group_value(&c.to_value())),
        );
        match classic_record {
            Ok(r) => raw.push(r),
            Err(e) => return Some(Err((e.code(), None))),
        }
        let wait = match cx.writer.append(gid, &raw) {
            Ok(w) => w,
            Err(e) => return Some(Err((map_append_error(e, false), None))),
        };
        c.persisted = true;
        if let Some(old) = self.consumer_groups.remove(gid) {
            for t in old.timers.values() {
                self.cancel_member_timers(t);
            }
        }
        for m in c.members.values_mut() {
            reschedule_heartbeat(&mut self.timers, gid, m);
        }
        if rebalance {
            cx.prepare_rebalance(&mut c, &mut self.timers);
        }
        self.groups.insert(gid.to_string(), c);
        tracing::info!(group = %gid, "converted the consumer group to a classic group");
        Some(Ok(Some(wait)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_values_follow_kafka() {
        assert_eq!(
            MigrationPolicy::parse("BIDIRECTIONAL"),
            MigrationPolicy {
                upgrade: true,
                downgrade: true
            }
        );
        assert!(MigrationPolicy::parse("upgrade").upgrade);
        assert!(!MigrationPolicy::parse("upgrade").downgrade);
        assert!(!MigrationPolicy::parse("downgrade").upgrade);
        assert_eq!(
            MigrationPolicy::parse("nonsense"),
            MigrationPolicy {
                upgrade: false,
                downgrade: false
            }
        );
    }

    #[test]
    fn assignments_round_trip_in_the_members_version() {
        let id = Uuid::from_u128(7);
        let mut a = Assignment::new();
        a.entry(id).or_default().extend([0, 2]);
        for version in [0, 1, 3] {
            let bytes = encode_assignment(&a, &|t| (*t == id).then(|| "t".to_string()), version);
            assert_eq!(protocol_version(&bytes), Ok(version));
            let back = decode_assignment(&bytes).unwrap().unwrap();
            assert_eq!(back.assigned_partitions.len(), 1);
            assert_eq!(back.assigned_partitions[0].topic.0.as_str(), "t");
            assert_eq!(back.assigned_partitions[0].partitions, vec![0, 2]);
        }
        // A topic the broker no longer knows is left out.
        let bytes = encode_assignment(&a, &|_| None, 1);
        assert!(decode_assignment(&bytes)
            .unwrap()
            .unwrap()
            .assigned_partitions
            .is_empty());
        assert_eq!(decode_assignment(&[]), Ok(None));
        assert!(decode_subscription(&[0]).is_err());
    }
}
