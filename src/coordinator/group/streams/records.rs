//! The KIP-1071 streams group records of `__consumer_offsets`, in Kafka
//! 4.4's byte layouts (kafka-group-coordinator's `StreamsGroup*Key/Value.json`):
//! the key is its record type as an INT16 (17 group metadata, 19 member
//! metadata, 20 target assignment metadata, 21 target assignment member,
//! 22 current member assignment, 23 topology) followed by the group id
//! (and the member id for 19, 21, 22); the value an INT16 version (0) and
//! a flexible body (compact strings, tagged fields). A null value is a
//! tombstone. Warm-up task lists are written empty: kastle, as Kafka 4.4's
//! sticky assignor, assigns active and standby tasks only.

use std::collections::BTreeMap;

use super::{MemberState, StreamsGroup, StreamsGroupMember, TaskSet, Tasks};
use crate::coordinator::group::consumer::records::{read_tagged_i64_0, tagged_i64_0};
use crate::protocol::fields::{DecodeError, FieldReader, FieldTooLong, FieldWriter};
use crate::protocol::streams::{CopartitionGroup, Endpoint, KeyValue, Subtopology, TopicInfo};

pub const GROUP_METADATA: i16 = 17;
pub const MEMBER_METADATA: i16 = 19;
pub const TARGET_ASSIGNMENT_METADATA: i16 = 20;
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 21;
pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 22;
pub const TOPOLOGY: i16 = 23;

/// Whether a streams record key of type `kind` carries a member id.
pub fn has_member(kind: i16) -> bool {
    matches!(
        kind,
        MEMBER_METADATA | TARGET_ASSIGNMENT_MEMBER | CURRENT_MEMBER_ASSIGNMENT
    )
}

/// Whether `kind` is a streams group record type kastle reads.
pub fn is_streams(kind: i16) -> bool {
    matches!(kind, GROUP_METADATA | 19..=23)
}

/// StreamsGroupMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadata {
    pub epoch: i32,
    pub metadata_hash: i64,
    /// Tagged field 0; -1 when no topology epoch was validated.
    pub validated_topology_epoch: i32,
    /// Tagged field 1 (LastAssignmentConfigs); not written when empty.
    pub last_assignment_configs: BTreeMap<String, String>,
    /// Tagged fields 2 and 3 (KIP-1331's StoredDescriptionTopologyEpoch and
    /// FailedDescriptionTopologyEpoch), -1 when not set. kastle has no
    /// description plugin and never changes them, but keeps what a Kafka
    /// broker with one wrote through its own rewrites of the record.
    pub stored_description_topology_epoch: i32,
    pub failed_description_topology_epoch: i32,
}

/// StreamsGroupMemberMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub topology_epoch: i32,
    pub process_id: String,
    pub user_endpoint: Option<Endpoint>,
    pub client_tags: Vec<KeyValue>,
}

/// StreamsGroupCurrentMemberAssignmentValue (warm-up lists read and
/// dropped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub active: Tasks,
    pub standby: Tasks,
    pub active_pending_revocation: Tasks,
    pub standby_pending_revocation: Tasks,
}

/// One streams group record (None values are tombstones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamsRecord {
    GroupMetadata(String, Option<GroupMetadata>),
    /// (topology epoch, subtopologies).
    Topology(String, Option<(i32, Vec<Subtopology>)>),
    MemberMetadata(String, String, Option<MemberMetadata>),
    /// (the target assignment epoch, when it was computed in ms).
    TargetAssignmentMetadata(String, Option<(i32, i64)>),
    /// A member's target active and standby tasks.
    TargetAssignmentMember(String, String, Option<TaskSet>),
    CurrentMemberAssignment(String, String, Option<CurrentAssignment>),
}

impl MemberState {
    /// Kafka's `MemberState.value()`.
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 1,
            MemberState::UnrevokedTasks => 2,
            MemberState::UnreleasedTasks => 3,
        }
    }

    fn from_value(v: i8) -> Result<MemberState, DecodeError> {
        match v {
            1 => Ok(MemberState::Stable),
            2 => Ok(MemberState::UnrevokedTasks),
            3 => Ok(MemberState::UnreleasedTasks),
            v => Err(DecodeError(format!("unknown streams member state {v}"))),
        }
    }
}

impl StreamsRecord {
    pub fn group_id(&self) -> &str {
        use StreamsRecord as R;
        match self {
            R::GroupMetadata(g, _)
            | R::Topology(g, _)
            | R::MemberMetadata(g, _, _)
            | R::TargetAssignmentMetadata(g, _)
            | R::TargetAssignmentMember(g, _, _)
            | R::CurrentMemberAssignment(g, _, _) => g,
        }
    }

    /// Serialized key and value (None: tombstone).
    pub fn encode(&self) -> Result<(Vec<u8>, Option<Vec<u8>>), FieldTooLong> {
        use StreamsRecord as R;
        let (kind, group, member) = match self {
            R::GroupMetadata(g, _) => (GROUP_METADATA, g, None),
            R::Topology(g, _) => (TOPOLOGY, g, None),
            R::MemberMetadata(g, m, _) => (MEMBER_METADATA, g, Some(m)),
            R::TargetAssignmentMetadata(g, _) => (TARGET_ASSIGNMENT_METADATA, g, None),
            R::TargetAssignmentMember(g, m, _) => (TARGET_ASSIGNMENT_MEMBER, g, Some(m)),
            R::CurrentMemberAssignment(g, m, _) => (CURRENT_MEMBER_ASSIGNMENT, g, Some(m)),
        };
        let mut k = FieldWriter::with_capacity(8 + group.len());
        k.i16(kind);
        k.string("groupId", group)?;
        if let Some(m) = member {
            k.string("memberId", m)?;
        }
        let mut w = FieldWriter::with_capacity(128);
        w.i16(0);
        match self {
            R::GroupMetadata(_, Some(v)) => {
                w.i32(v.epoch);
                w.i64(v.metadata_hash);
                // Tagged fields 0 (ValidatedTopologyEpoch), 1
                // (LastAssignmentConfigs), 2 and 3 (the description
                // epochs), in tag order, when not their defaults.
                let validated = v.validated_topology_epoch != -1;
                let configs = !v.last_assignment_configs.is_empty();
                let stored = v.stored_description_topology_epoch != -1;
                let failed = v.failed_description_topology_epoch != -1;
                w.uvarint(
                    u32::from(validated)
                        + u32::from(configs)
                        + u32::from(stored)
                        + u32::from(failed),
                );
                if validated {
                    w.uvarint(0);
                    w.uvarint(4);
                    w.i32(v.validated_topology_epoch);
                }
                if configs {
                    let mut c = FieldWriter::with_capacity(64);
                    c.compact_len(
                        "lastAssignmentConfigs",
                        Some(v.last_assignment_configs.len()),
                    )?;
                    for (k, val) in &v.last_assignment_configs {
                        c.compact_string("key", k)?;
                        c.compact_string("value", val)?;
                        c.no_tagged_fields();
                    }
                    let c = c.finish();
                    w.uvarint(1);
                    let len = u32::try_from(c.len()).map_err(|_| FieldTooLong {
                        field: "lastAssignmentConfigs",
                        len: c.len(),
                    })?;
                    w.uvarint(len);
                    w.out.extend_from_slice(&c);
                }
                for (tag, set, epoch) in [
                    (2, stored, v.stored_description_topology_epoch),
                    (3, failed, v.failed_description_topology_epoch),
                ] {
                    if set {
                        w.uvarint(tag);
                        w.uvarint(4);
                        w.i32(epoch);
                    }
                }
            }
            R::Topology(_, Some((epoch, subs))) => {
                w.i32(*epoch);
                w.compact_len("subtopologies", Some(subs.len()))?;
                for s in subs {
                    subtopology(&mut w, s)?;
                }
                w.no_tagged_fields();
            }
            R::MemberMetadata(_, _, Some(v)) => member_value(&mut w, v)?,
            R::TargetAssignmentMetadata(_, Some((epoch, timestamp_ms))) => {
                w.i32(*epoch);
                // Tagged field 0: AssignmentTimestamp (KIP-1263), when set.
                tagged_i64_0(&mut w, *timestamp_ms);
            }
            R::TargetAssignmentMember(_, _, Some(t)) => {
                task_ids(&mut w, &t.active)?;
                task_ids(&mut w, &t.standby)?;
                task_ids(&mut w, &Tasks::new())?;
                w.no_tagged_fields();
            }
            R::CurrentMemberAssignment(_, _, Some(v)) => {
                w.i32(v.member_epoch);
                w.i32(v.previous_member_epoch);
                w.i8(v.state.value());
                let none = Tasks::new();
                for t in [
                    &v.active,
                    &v.standby,
                    &none,
                    &v.active_pending_revocation,
                    &v.standby_pending_revocation,
                    &none,
                ] {
                    task_ids(&mut w, t)?;
                }
                w.no_tagged_fields();
            }
            _ => return Ok((k.finish(), None)),
        }
        Ok((k.finish(), Some(w.finish())))
    }

    /// The record of key type `kind` (17, 19-23) for `group`/`member` with
    /// the stored `value` (None: tombstone).
    pub fn decode(
        kind: i16,
        group: String,
        member: Option<String>,
        value: Option<&[u8]>,
    ) -> Result<StreamsRecord, DecodeError> {
        use StreamsRecord as R;
        let member = || {
            member
                .clone()
                .ok_or_else(|| DecodeError(format!("record type {kind} without a member id")))
        };
        let Some(v) = value else {
            return Ok(match kind {
                GROUP_METADATA => R::GroupMetadata(group, None),
                TOPOLOGY => R::Topology(group, None),
                MEMBER_METADATA => R::MemberMetadata(group, member()?, None),
                TARGET_ASSIGNMENT_METADATA => R::TargetAssignmentMetadata(group, None),
                TARGET_ASSIGNMENT_MEMBER => R::TargetAssignmentMember(group, member()?, None),
                CURRENT_MEMBER_ASSIGNMENT => R::CurrentMemberAssignment(group, member()?, None),
                k => return Err(DecodeError(format!("not a streams record type: {k}"))),
            });
        };
        let mut r = FieldReader::new(v);
        let version = r.i16()?;
        if version != 0 {
            return Err(DecodeError(format!(
                "unknown version {version} of streams group record type {kind}"
            )));
        }
        r.flexible = true;
        let rec = match kind {
            GROUP_METADATA => {
                let epoch = r.i32()?;
                let metadata_hash = r.i64()?;
                let mut validated_topology_epoch = -1;
                let mut last_assignment_configs = BTreeMap::new();
                let mut stored_description_topology_epoch = -1;
                let mut failed_description_topology_epoch = -1;
                let n = r.uvarint()?;
                for _ in 0..n {
                    let tag = r.uvarint()?;
                    let len = r.uvarint()? as usize;
                    if tag == 0 && len == 4 {
                        validated_topology_epoch = r.i32()?;
                    } else if tag == 2 && len == 4 {
                        stored_description_topology_epoch = r.i32()?;
                    } else if tag == 3 && len == 4 {
                        failed_description_topology_epoch = r.i32()?;
                    } else if tag == 1 {
                        last_assignment_configs = read_configs(&mut r.sub(len)?)?;
                    } else {
                        r.skip(len)?;
                    }
                }
                return Ok(R::GroupMetadata(
                    group,
                    Some(GroupMetadata {
                        epoch,
                        metadata_hash,
                        validated_topology_epoch,
                        last_assignment_configs,
                        stored_description_topology_epoch,
                        failed_description_topology_epoch,
                    }),
                ));
            }
            TOPOLOGY => {
                let epoch = r.i32()?;
                let n = r.count()?;
                let mut subs = Vec::with_capacity(n);
                for _ in 0..n {
                    subs.push(read_subtopology(&mut r)?);
                }
                R::Topology(group, Some((epoch, subs)))
            }
            MEMBER_METADATA => R::MemberMetadata(group, member()?, Some(read_member(&mut r)?)),
            TARGET_ASSIGNMENT_METADATA => {
                let epoch = r.i32()?;
                let timestamp_ms = read_tagged_i64_0(&mut r)?;
                return Ok(R::TargetAssignmentMetadata(
                    group,
                    Some((epoch, timestamp_ms)),
                ));
            }
            TARGET_ASSIGNMENT_MEMBER => {
                let active = read_task_ids(&mut r)?;
                let standby = read_task_ids(&mut r)?;
                read_task_ids(&mut r)?;
                R::TargetAssignmentMember(group, member()?, Some(TaskSet { active, standby }))
            }
            CURRENT_MEMBER_ASSIGNMENT => {
                let member_epoch = r.i32()?;
                let previous_member_epoch = r.i32()?;
                let state = MemberState::from_value(r.i8()?)?;
                let active = read_task_ids(&mut r)?;
                let standby = read_task_ids(&mut r)?;
                read_task_ids(&mut r)?;
                let active_pending_revocation = read_task_ids(&mut r)?;
                let standby_pending_revocation = read_task_ids(&mut r)?;
                read_task_ids(&mut r)?;
                R::CurrentMemberAssignment(
                    group,
                    member()?,
                    Some(CurrentAssignment {
                        member_epoch,
                        previous_member_epoch,
                        state,
                        active,
                        standby,
                        active_pending_revocation,
                        standby_pending_revocation,
                    }),
                )
            }
            k => return Err(DecodeError(format!("not a streams record type: {k}"))),
        };
        r.skip_tagged()?;
        Ok(rec)
    }
}

impl MemberMetadata {
    pub fn of(m: &StreamsGroupMember) -> MemberMetadata {
        MemberMetadata {
            // kastle keeps no static identity (see `validate`).
            instance_id: None,
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            topology_epoch: m.topology_epoch,
            process_id: m.process_id.clone(),
            user_endpoint: m.user_endpoint.clone(),
            client_tags: m.client_tags.clone(),
        }
    }
}

impl CurrentAssignment {
    pub fn of(m: &StreamsGroupMember) -> CurrentAssignment {
        CurrentAssignment {
            member_epoch: m.member_epoch,
            previous_member_epoch: m.previous_member_epoch,
            state: m.state,
            active: m.assigned.clone(),
            standby: m.standby.clone(),
            active_pending_revocation: m.revoking.clone(),
            standby_pending_revocation: m.revoking_standby.clone(),
        }
    }
}

impl GroupMetadata {
    pub fn of(g: &StreamsGroup) -> GroupMetadata {
        GroupMetadata {
            epoch: g.group_epoch,
            metadata_hash: g.metadata_hash,
            validated_topology_epoch: g.validated_topology_epoch,
            last_assignment_configs: g.last_assignment_configs.clone(),
            stored_description_topology_epoch: g.stored_description_topology_epoch,
            failed_description_topology_epoch: g.failed_description_topology_epoch,
        }
    }
}

/// The tombstones that take a member out (Kafka's order: current
/// assignment, target assignment, metadata).
fn member_tombstones(out: &mut Vec<StreamsRecord>, gid: &str, id: &str) {
    let (g, m) = (gid.to_string(), id.to_string());
    out.push(StreamsRecord::CurrentMemberAssignment(
        g.clone(),
        m.clone(),
        None,
    ));
    out.push(StreamsRecord::TargetAssignmentMember(
        g.clone(),
        m.clone(),
        None,
    ));
    out.push(StreamsRecord::MemberMetadata(g, m, None));
}

/// The records that turn the stored `before` into `after` (None: no
/// group), in the order Kafka's heartbeat writes them: members' metadata,
/// the group epoch, the topology, the target assignment, the members'
/// current assignments. A deleted group ends with its metadata tombstone.
pub fn diff(
    gid: &str,
    before: Option<&StreamsGroup>,
    after: Option<&StreamsGroup>,
) -> Vec<StreamsRecord> {
    let mut out = Vec::new();
    let g = || gid.to_string();
    let Some(a) = after else {
        let Some(b) = before else {
            return out;
        };
        for id in b.members.keys() {
            member_tombstones(&mut out, gid, id);
        }
        for id in b.target.keys().filter(|id| !b.members.contains_key(*id)) {
            out.push(StreamsRecord::TargetAssignmentMember(g(), id.clone(), None));
        }
        out.push(StreamsRecord::TargetAssignmentMetadata(g(), None));
        out.push(StreamsRecord::Topology(g(), None));
        out.push(StreamsRecord::GroupMetadata(g(), None));
        return out;
    };
    let empty = StreamsGroup::default();
    let b = before.unwrap_or(&empty);
    for id in b.members.keys().filter(|id| !a.members.contains_key(*id)) {
        member_tombstones(&mut out, gid, id);
    }
    for id in b.target.keys() {
        if !a.target.contains_key(id) && a.members.contains_key(id) {
            out.push(StreamsRecord::TargetAssignmentMember(g(), id.clone(), None));
        }
    }
    for (id, m) in &a.members {
        let now = MemberMetadata::of(m);
        if b.members.get(id).map(MemberMetadata::of).as_ref() != Some(&now) {
            out.push(StreamsRecord::MemberMetadata(g(), id.clone(), Some(now)));
        }
    }
    if before.is_none() || GroupMetadata::of(b) != GroupMetadata::of(a) {
        out.push(StreamsRecord::GroupMetadata(
            g(),
            Some(GroupMetadata::of(a)),
        ));
    }
    if (b.topology_epoch, &b.subtopologies) != (a.topology_epoch, &a.subtopologies) {
        out.push(StreamsRecord::Topology(
            g(),
            Some((a.topology_epoch, a.subtopologies.clone())),
        ));
    }
    for (id, t) in &a.target {
        if b.target.get(id) != Some(t) {
            out.push(StreamsRecord::TargetAssignmentMember(
                g(),
                id.clone(),
                Some(t.clone()),
            ));
        }
    }
    if before.is_none()
        || (b.assignment_epoch, b.assignment_timestamp_ms)
            != (a.assignment_epoch, a.assignment_timestamp_ms)
    {
        out.push(StreamsRecord::TargetAssignmentMetadata(
            g(),
            Some((a.assignment_epoch, a.assignment_timestamp_ms)),
        ));
    }
    for (id, m) in &a.members {
        let now = CurrentAssignment::of(m);
        if b.members.get(id).map(CurrentAssignment::of).as_ref() != Some(&now) {
            out.push(StreamsRecord::CurrentMemberAssignment(
                g(),
                id.clone(),
                Some(now),
            ));
        }
    }
    out
}

impl StreamsGroup {
    /// Applies one of the group's records as loading reads it (Kafka's
    /// `GroupMetadataManager.replay` for streams records). A group
    /// metadata tombstone is the loader's to apply: it removes the group.
    pub fn replay(&mut self, rec: &StreamsRecord) {
        use StreamsRecord as R;
        let member = |g: &mut StreamsGroup, id: &str| -> StreamsGroupMember {
            g.members.remove(id).unwrap_or_else(|| StreamsGroupMember {
                member_id: id.to_string(),
                previous_member_epoch: -1,
                rebalance_timeout_ms: -1,
                ..StreamsGroupMember::default()
            })
        };
        match rec {
            R::GroupMetadata(_, Some(v)) => {
                self.group_epoch = v.epoch;
                self.metadata_hash = v.metadata_hash;
                self.validated_topology_epoch = v.validated_topology_epoch;
                self.last_assignment_configs = v.last_assignment_configs.clone();
                self.stored_description_topology_epoch = v.stored_description_topology_epoch;
                self.failed_description_topology_epoch = v.failed_description_topology_epoch;
            }
            R::GroupMetadata(_, None) => {}
            R::Topology(_, v) => {
                let (epoch, subs) = v.clone().unwrap_or_default();
                self.topology_epoch = epoch;
                self.subtopologies = subs;
            }
            R::MemberMetadata(_, id, Some(v)) => {
                let mut m = member(self, id);
                m.rack_id = v.rack_id.clone();
                m.client_id = v.client_id.clone();
                m.client_host = v.client_host.clone();
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                m.topology_epoch = v.topology_epoch;
                m.process_id = v.process_id.clone();
                m.user_endpoint = v.user_endpoint.clone();
                m.client_tags = v.client_tags.clone();
                self.members.insert(id.clone(), m);
            }
            R::MemberMetadata(_, id, None) => {
                self.members.remove(id);
            }
            R::TargetAssignmentMetadata(_, v) => {
                (self.assignment_epoch, self.assignment_timestamp_ms) = v.unwrap_or((0, 0));
            }
            R::TargetAssignmentMember(_, id, Some(t)) => {
                self.target.insert(id.clone(), t.clone());
            }
            R::TargetAssignmentMember(_, id, None) => {
                self.target.remove(id);
            }
            R::CurrentMemberAssignment(_, id, v) => {
                if v.is_none() && !self.members.contains_key(id) {
                    return;
                }
                let mut m = member(self, id);
                let v = v.clone().unwrap_or_default();
                m.member_epoch = v.member_epoch;
                m.previous_member_epoch = v.previous_member_epoch;
                m.state = v.state;
                m.assigned = v.active;
                m.standby = v.standby;
                m.revoking = v.active_pending_revocation;
                m.revoking_standby = v.standby_pending_revocation;
                self.members.insert(id.clone(), m);
            }
        }
    }
}

fn compact_nullable(
    w: &mut FieldWriter,
    field: &'static str,
    s: Option<&str>,
) -> Result<(), FieldTooLong> {
    match s {
        Some(s) => w.compact_string(field, s),
        None => w.compact_len(field, None),
    }
}

fn strings(w: &mut FieldWriter, field: &'static str, v: &[String]) -> Result<(), FieldTooLong> {
    w.compact_len(field, Some(v.len()))?;
    for s in v {
        w.compact_string(field, s)?;
    }
    Ok(())
}

fn read_strings(r: &mut FieldReader<'_>) -> Result<Vec<String>, DecodeError> {
    let n = r.count()?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.string()?);
    }
    Ok(v)
}

fn int16s(w: &mut FieldWriter, field: &'static str, v: &[i16]) -> Result<(), FieldTooLong> {
    w.compact_len(field, Some(v.len()))?;
    for i in v {
        w.i16(*i);
    }
    Ok(())
}

fn read_int16s(r: &mut FieldReader<'_>) -> Result<Vec<i16>, DecodeError> {
    let n = r.count()?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.i16()?);
    }
    Ok(v)
}

fn key_values(
    w: &mut FieldWriter,
    field: &'static str,
    v: &[KeyValue],
) -> Result<(), FieldTooLong> {
    w.compact_len(field, Some(v.len()))?;
    for kv in v {
        w.compact_string(field, &kv.key)?;
        w.compact_string(field, &kv.value)?;
        w.no_tagged_fields();
    }
    Ok(())
}

fn read_key_values(r: &mut FieldReader<'_>) -> Result<Vec<KeyValue>, DecodeError> {
    let n = r.count()?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.string()?;
        let value = r.string()?;
        r.skip_tagged()?;
        v.push(KeyValue { key, value });
    }
    Ok(v)
}

fn topic_infos(
    w: &mut FieldWriter,
    field: &'static str,
    v: &[TopicInfo],
) -> Result<(), FieldTooLong> {
    w.compact_len(field, Some(v.len()))?;
    for t in v {
        w.compact_string(field, &t.name)?;
        w.i32(t.partitions);
        w.i16(t.replication_factor);
        key_values(w, "topicConfigs", &t.topic_configs)?;
        w.no_tagged_fields();
    }
    Ok(())
}

fn read_topic_infos(r: &mut FieldReader<'_>) -> Result<Vec<TopicInfo>, DecodeError> {
    let n = r.count()?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let partitions = r.i32()?;
        let replication_factor = r.i16()?;
        let topic_configs = read_key_values(r)?;
        r.skip_tagged()?;
        v.push(TopicInfo {
            name,
            partitions,
            replication_factor,
            topic_configs,
        });
    }
    Ok(v)
}

fn subtopology(w: &mut FieldWriter, s: &Subtopology) -> Result<(), FieldTooLong> {
    w.compact_string("subtopologyId", &s.subtopology_id)?;
    strings(w, "sourceTopics", &s.source_topics)?;
    strings(w, "sourceTopicRegex", &s.source_topic_regex)?;
    topic_infos(w, "stateChangelogTopics", &s.state_changelog_topics)?;
    strings(w, "repartitionSinkTopics", &s.repartition_sink_topics)?;
    topic_infos(w, "repartitionSourceTopics", &s.repartition_source_topics)?;
    w.compact_len("copartitionGroups", Some(s.copartition_groups.len()))?;
    for c in &s.copartition_groups {
        int16s(w, "sourceTopics", &c.source_topics)?;
        int16s(w, "sourceTopicRegex", &c.source_topic_regex)?;
        int16s(w, "repartitionSourceTopics", &c.repartition_source_topics)?;
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    Ok(())
}

fn read_subtopology(r: &mut FieldReader<'_>) -> Result<Subtopology, DecodeError> {
    let subtopology_id = r.string()?;
    let source_topics = read_strings(r)?;
    let source_topic_regex = read_strings(r)?;
    let state_changelog_topics = read_topic_infos(r)?;
    let repartition_sink_topics = read_strings(r)?;
    let repartition_source_topics = read_topic_infos(r)?;
    let n = r.count()?;
    let mut copartition_groups = Vec::with_capacity(n);
    for _ in 0..n {
        let source_topics = read_int16s(r)?;
        let source_topic_regex = read_int16s(r)?;
        let repartition_source_topics = read_int16s(r)?;
        r.skip_tagged()?;
        copartition_groups.push(CopartitionGroup {
            source_topics,
            source_topic_regex,
            repartition_source_topics,
        });
    }
    r.skip_tagged()?;
    Ok(Subtopology {
        subtopology_id,
        source_topics,
        source_topic_regex,
        state_changelog_topics,
        repartition_sink_topics,
        repartition_source_topics,
        copartition_groups,
    })
}

fn member_value(w: &mut FieldWriter, v: &MemberMetadata) -> Result<(), FieldTooLong> {
    compact_nullable(w, "instanceId", v.instance_id.as_deref())?;
    compact_nullable(w, "rackId", v.rack_id.as_deref())?;
    w.compact_string("clientId", &v.client_id)?;
    w.compact_string("clientHost", &v.client_host)?;
    w.i32(v.rebalance_timeout_ms);
    w.i32(v.topology_epoch);
    w.compact_string("processId", &v.process_id)?;
    match &v.user_endpoint {
        // A nullable struct: INT8 -1 for null, 1 before a present one.
        None => w.i8(-1),
        Some(e) => {
            w.i8(1);
            w.compact_string("host", &e.host)?;
            w.i16(e.port as i16);
            w.no_tagged_fields();
        }
    }
    key_values(w, "clientTags", &v.client_tags)?;
    w.no_tagged_fields();
    Ok(())
}

fn read_member(r: &mut FieldReader<'_>) -> Result<MemberMetadata, DecodeError> {
    let instance_id = r.nullable_string()?;
    let rack_id = r.nullable_string()?;
    let client_id = r.string()?;
    let client_host = r.string()?;
    let rebalance_timeout_ms = r.i32()?;
    let topology_epoch = r.i32()?;
    let process_id = r.string()?;
    let user_endpoint = if r.i8()? < 0 {
        None
    } else {
        let host = r.string()?;
        let port = r.i16()? as u16;
        r.skip_tagged()?;
        Some(Endpoint { host, port })
    };
    let client_tags = read_key_values(r)?;
    Ok(MemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        rebalance_timeout_ms,
        topology_epoch,
        process_id,
        user_endpoint,
        client_tags,
    })
}

/// `[]TaskIds` of (SubtopologyId, []int32 Partitions), each with its own
/// tagged fields (AssignmentEpochs, tag 0, is left at its null default).
fn task_ids(w: &mut FieldWriter, t: &Tasks) -> Result<(), FieldTooLong> {
    w.compact_len("taskIds", Some(t.len()))?;
    for (s, ps) in t {
        w.compact_string("subtopologyId", s)?;
        w.compact_len("partitions", Some(ps.len()))?;
        for p in ps {
            w.i32(*p);
        }
        w.no_tagged_fields();
    }
    Ok(())
}

/// LastAssignmentConfigs (tagged field 1): `[]` of (Key, Value) compact
/// strings; a null list is no configurations.
fn read_configs(r: &mut FieldReader<'_>) -> Result<BTreeMap<String, String>, DecodeError> {
    let mut out = BTreeMap::new();
    for _ in 0..r.count()? {
        let k = r.string()?;
        let v = r.string()?;
        r.skip_tagged()?;
        out.insert(k, v);
    }
    Ok(out)
}

fn read_task_ids(r: &mut FieldReader<'_>) -> Result<Tasks, DecodeError> {
    let n = r.count()?;
    let mut t = Tasks::new();
    for _ in 0..n {
        let s = r.string()?;
        let k = r.count()?;
        let mut ps = Vec::with_capacity(k);
        for _ in 0..k {
            ps.push(r.i32()?);
        }
        r.skip_tagged()?;
        if !ps.is_empty() {
            t.entry(s).or_default().extend(ps);
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::record_serde::{decode_key, CoordinatorKey};

    fn round_trip(rec: StreamsRecord) {
        let (k, v) = rec.encode().unwrap();
        let CoordinatorKey::Streams {
            kind,
            group,
            member,
        } = decode_key(&k).unwrap()
        else {
            panic!("not a streams key: {k:?}");
        };
        let back = StreamsRecord::decode(kind, group, member, v.as_deref()).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn every_record_round_trips() {
        let g = || "app".to_string();
        let m = || "m1".to_string();
        let mut tasks = Tasks::new();
        tasks.entry("0".into()).or_default().extend([0, 2]);
        tasks.entry("1".into()).or_default().insert(1);
        let sub = Subtopology {
            subtopology_id: "0".into(),
            source_topics: vec!["in".into()],
            source_topic_regex: vec![],
            state_changelog_topics: vec![TopicInfo {
                name: "app-store-changelog".into(),
                partitions: 0,
                replication_factor: 0,
                topic_configs: vec![KeyValue {
                    key: "cleanup.policy".into(),
                    value: "compact".into(),
                }],
            }],
            repartition_sink_topics: vec!["app-rep".into()],
            repartition_source_topics: vec![],
            copartition_groups: vec![CopartitionGroup {
                source_topics: vec![0],
                source_topic_regex: vec![],
                repartition_source_topics: vec![1],
            }],
        };
        for rec in [
            StreamsRecord::GroupMetadata(
                g(),
                Some(GroupMetadata {
                    epoch: 4,
                    metadata_hash: -7,
                    validated_topology_epoch: 1,
                    last_assignment_configs: BTreeMap::from([(
                        "num.standby.replicas".to_string(),
                        "1".to_string(),
                    )]),
                    stored_description_topology_epoch: 1,
                    failed_description_topology_epoch: 2,
                }),
            ),
            StreamsRecord::GroupMetadata(
                g(),
                Some(GroupMetadata {
                    epoch: 4,
                    metadata_hash: 9,
                    validated_topology_epoch: -1,
                    last_assignment_configs: BTreeMap::new(),
                    // -2: an interrupted plugin operation (Kafka's "uncertain").
                    stored_description_topology_epoch: -2,
                    failed_description_topology_epoch: -1,
                }),
            ),
            StreamsRecord::GroupMetadata(
                g(),
                Some(GroupMetadata {
                    epoch: 4,
                    metadata_hash: 9,
                    validated_topology_epoch: -1,
                    last_assignment_configs: BTreeMap::new(),
                    stored_description_topology_epoch: -1,
                    failed_description_topology_epoch: -1,
                }),
            ),
            StreamsRecord::GroupMetadata(g(), None),
            StreamsRecord::Topology(g(), Some((2, vec![sub]))),
            StreamsRecord::Topology(g(), None),
            StreamsRecord::MemberMetadata(
                g(),
                m(),
                Some(MemberMetadata {
                    instance_id: None,
                    rack_id: Some("r".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    topology_epoch: 2,
                    process_id: "p".into(),
                    user_endpoint: Some(Endpoint {
                        host: "h".into(),
                        port: 65_000,
                    }),
                    client_tags: vec![KeyValue {
                        key: "zone".into(),
                        value: "a".into(),
                    }],
                }),
            ),
            StreamsRecord::MemberMetadata(g(), m(), Some(MemberMetadata::default())),
            StreamsRecord::MemberMetadata(g(), m(), None),
            StreamsRecord::TargetAssignmentMetadata(g(), Some((5, 0))),
            StreamsRecord::TargetAssignmentMetadata(g(), Some((6, 1_764_000_000_000))),
            StreamsRecord::TargetAssignmentMetadata(g(), None),
            StreamsRecord::TargetAssignmentMember(
                g(),
                m(),
                Some(TaskSet {
                    active: tasks.clone(),
                    standby: Tasks::from([("2".to_string(), [3].into())]),
                }),
            ),
            StreamsRecord::TargetAssignmentMember(g(), m(), None),
            StreamsRecord::CurrentMemberAssignment(
                g(),
                m(),
                Some(CurrentAssignment {
                    member_epoch: 5,
                    previous_member_epoch: 4,
                    state: MemberState::UnrevokedTasks,
                    active: tasks.clone(),
                    standby: Tasks::from([("2".to_string(), [3].into())]),
                    active_pending_revocation: tasks.clone(),
                    standby_pending_revocation: Tasks::from([("2".to_string(), [4].into())]),
                }),
            ),
            StreamsRecord::CurrentMemberAssignment(g(), m(), None),
        ] {
            round_trip(rec);
        }
    }

    /// A StreamsGroupMetadataValue as a Kafka 4.4 broker with a topology
    /// description plugin writes it (tags 0-3): read, and written back
    /// byte for byte, so a rewrite keeps the description epochs.
    #[test]
    fn group_metadata_keeps_the_description_epochs() {
        let mut v = vec![0, 0]; // value version 0
        v.extend_from_slice(&5i32.to_be_bytes());
        v.extend_from_slice(&77i64.to_be_bytes());
        v.push(4); // four tagged fields
                   // ValidatedTopologyEpoch 2
        v.extend_from_slice(&[0, 4, 0, 0, 0, 2]);
        // LastAssignmentConfigs [{"num.standby.replicas", "1"}]
        let mut configs = vec![2, 21];
        configs.extend_from_slice(b"num.standby.replicas");
        configs.extend_from_slice(&[2, b'1', 0]);
        v.extend_from_slice(&[1, u8::try_from(configs.len()).unwrap()]);
        v.extend_from_slice(&configs);
        v.extend_from_slice(&[2, 4, 0, 0, 0, 2]); // StoredDescriptionTopologyEpoch 2
        v.extend_from_slice(&[3, 4, 0xff, 0xff, 0xff, 0xfe]); // Failed… -2
        let rec = StreamsRecord::decode(GROUP_METADATA, "g".into(), None, Some(&v)).unwrap();
        let StreamsRecord::GroupMetadata(_, Some(m)) = &rec else {
            panic!("{rec:?}");
        };
        assert_eq!(
            (
                m.validated_topology_epoch,
                m.stored_description_topology_epoch,
                m.failed_description_topology_epoch
            ),
            (2, 2, -2)
        );
        let mut g = StreamsGroup::new("g");
        g.replay(&rec);
        assert_eq!(GroupMetadata::of(&g), *m);
        assert_eq!(rec.encode().unwrap().1.as_deref(), Some(&v[..]));
    }

    /// Kafka's byte layout of StreamsGroupTargetAssignmentMetadataValue
    /// with AssignmentTimestamp (tag 0, added in 4.3) is read; an unknown
    /// member state is an error, not a panic.
    #[test]
    fn kafka_tagged_fields_are_skipped_and_bad_states_refused() {
        let v = [0, 0, 0, 0, 0, 7, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42];
        let rec = StreamsRecord::decode(20, "g".into(), None, Some(&v)).unwrap();
        assert_eq!(
            rec,
            StreamsRecord::TargetAssignmentMetadata("g".into(), Some((7, 42)))
        );
        let bad = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 9];
        assert!(StreamsRecord::decode(22, "g".into(), Some("m".into()), Some(&bad)).is_err());
    }

    fn member(id: &str, epoch: i32, tasks: &Tasks) -> StreamsGroupMember {
        StreamsGroupMember {
            member_id: id.into(),
            member_epoch: epoch,
            previous_member_epoch: epoch - 1,
            rebalance_timeout_ms: 30_000,
            topology_epoch: 1,
            client_id: "c".into(),
            process_id: format!("p-{id}"),
            assigned: tasks.clone(),
            ..StreamsGroupMember::default()
        }
    }

    /// What the records keep of a group (not its timers, configured
    /// topology or endpoint epoch).
    fn stored(g: &StreamsGroup) -> String {
        let members: Vec<_> = g
            .members
            .values()
            .map(|m| (MemberMetadata::of(m), CurrentAssignment::of(m)))
            .collect();
        format!(
            "{:?}",
            (
                GroupMetadata::of(g),
                g.assignment_epoch,
                g.topology_epoch,
                &g.subtopologies,
                &g.target,
                members
            )
        )
    }

    fn replay_all(into: &mut StreamsGroup, recs: &[StreamsRecord]) {
        for r in recs {
            // Through the bytes, as the loader reads them.
            let (k, v) = r.encode().unwrap();
            let CoordinatorKey::Streams {
                kind,
                group,
                member,
            } = decode_key(&k).unwrap()
            else {
                panic!("not a streams key");
            };
            into.replay(&StreamsRecord::decode(kind, group, member, v.as_deref()).unwrap());
        }
    }

    /// Replaying the records `diff` derives rebuilds what was stored: a new
    /// group, then a change that removes a member and moves its tasks.
    #[test]
    fn diff_then_replay_rebuilds_the_group() {
        let mut t1 = Tasks::new();
        t1.entry("0".into()).or_default().extend([0, 1]);
        let mut t2 = Tasks::new();
        t2.entry("1".into()).or_default().insert(0);
        let mut g = StreamsGroup {
            group_id: "app".into(),
            group_epoch: 3,
            assignment_epoch: 3,
            topology_epoch: 1,
            subtopologies: vec![Subtopology {
                subtopology_id: "0".into(),
                source_topics: vec!["in".into()],
                ..Subtopology::default()
            }],
            metadata_hash: 12,
            validated_topology_epoch: 1,
            ..StreamsGroup::default()
        };
        g.members.insert("a".into(), member("a", 3, &t1));
        g.members.insert("b".into(), member("b", 3, &t2));
        if let Some(a) = g.members.get_mut("a") {
            a.standby = t2.clone();
        }
        g.last_assignment_configs
            .insert("num.standby.replicas".into(), "1".into());
        g.target.insert(
            "a".into(),
            TaskSet {
                active: t1.clone(),
                standby: t2.clone(),
            },
        );
        g.target.insert(
            "b".into(),
            TaskSet {
                active: t2.clone(),
                standby: t1.clone(),
            },
        );

        let created = diff("app", None, Some(&g));
        let mut loaded = StreamsGroup::default();
        replay_all(&mut loaded, &created);
        assert_eq!(stored(&loaded), stored(&g));
        assert!(diff("app", Some(&g), Some(&g)).is_empty());

        let mut next = g.clone();
        next.members.remove("b");
        next.target.remove("b");
        next.group_epoch = 4;
        next.assignment_epoch = 4;
        let mut both = t1.clone();
        both.extend(t2.clone());
        next.target.insert(
            "a".into(),
            TaskSet {
                active: both,
                standby: Tasks::new(),
            },
        );
        if let Some(a) = next.members.get_mut("a") {
            a.state = MemberState::UnreleasedTasks;
        }
        let changed = diff("app", Some(&g), Some(&next));
        // Only what moved: b's three tombstones, the epoch, a's target,
        // the assignment epoch, a's current assignment.
        assert_eq!(changed.len(), 7, "{changed:?}");
        replay_all(&mut loaded, &changed);
        assert_eq!(stored(&loaded), stored(&next));

        // Deleting the group ends with its metadata tombstone.
        let gone = diff("app", Some(&next), None);
        assert_eq!(
            gone.last(),
            Some(&StreamsRecord::GroupMetadata("app".into(), None))
        );
        assert!(gone.iter().all(|r| r.encode().unwrap().1.is_none()));
    }
}
