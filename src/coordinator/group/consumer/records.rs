//! The KIP-848 consumer group records of `__consumer_offsets`, in Kafka's
//! byte layouts (kafka-group-coordinator's `ConsumerGroup*Key/Value.json`):
//! the key is its record type as an INT16 (3 group metadata, 4 the old
//! partition metadata, 5 member metadata, 6 target assignment metadata, 7
//! target assignment member, 8 current member assignment, 16 a resolved
//! regular expression) followed by the group id (and member id, or the
//! regular expression); the value an INT16 version (0) and a flexible
//! body (compact strings, tagged fields). A null value is a tombstone.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::member::{Assignment, ClassicMemberMetadata, ConsumerGroupMember, MemberState};
use crate::protocol::fields::{DecodeError, FieldReader, FieldTooLong, FieldWriter};

pub const GROUP_METADATA: i16 = 3;
pub const PARTITION_METADATA: i16 = 4;
pub const MEMBER_METADATA: i16 = 5;
pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;
pub const REGULAR_EXPRESSION: i16 = 16;

/// ConsumerGroupRegularExpressionValue (Kafka's `ResolvedRegularExpression`):
/// the topics a regex matched, the metadata version it was resolved at and
/// when (ms).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedRegularExpression {
    pub topics: BTreeSet<String>,
    pub version: i64,
    pub timestamp: i64,
}

/// ConsumerGroupMemberMetadataValue; `classic` is its tagged field 0
/// (ClassicMemberMetadata), set for members using the classic protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    pub classic: Option<ClassicMemberMetadata>,
}

impl MemberMetadata {
    pub fn of(m: &ConsumerGroupMember) -> MemberMetadata {
        MemberMetadata {
            instance_id: m.instance_id.clone(),
            rack_id: m.rack_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            subscribed_topic_names: m.subscribed_topic_names.clone(),
            subscribed_topic_regex: m.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            server_assignor: m.server_assignor.clone(),
            classic: m.classic.clone(),
        }
    }
}

/// ConsumerGroupCurrentMemberAssignmentValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned_partitions: Assignment,
    pub partitions_pending_revocation: Assignment,
}

impl CurrentAssignment {
    pub fn of(m: &ConsumerGroupMember) -> CurrentAssignment {
        CurrentAssignment {
            member_epoch: m.member_epoch,
            previous_member_epoch: m.previous_member_epoch,
            state: m.state,
            assigned_partitions: m.assigned_partitions.clone(),
            partitions_pending_revocation: m.partitions_pending_revocation.clone(),
        }
    }
}

/// One consumer group record (None values are tombstones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecord {
    /// (group epoch, metadata hash).
    GroupMetadata(String, Option<(i32, i64)>),
    /// Only ever a tombstone: Kafka 4.1 replaced it by the metadata hash.
    PartitionMetadata(String),
    MemberMetadata(String, String, Option<MemberMetadata>),
    /// (target assignment epoch, when it was computed in ms: KIP-1251's
    /// AssignmentTimestamp, 0 when unknown).
    TargetAssignmentMetadata(String, Option<(i32, i64)>),
    TargetAssignmentMember(String, String, Option<Assignment>),
    CurrentMemberAssignment(String, String, Option<CurrentAssignment>),
    /// (group, regular expression, its resolution).
    RegularExpression(String, String, Option<ResolvedRegularExpression>),
}

impl ConsumerRecord {
    /// Serialized key and value (None: tombstone).
    pub fn encode(&self) -> Result<(Vec<u8>, Option<Vec<u8>>), FieldTooLong> {
        use ConsumerRecord as R;
        let (kind, group, member) = match self {
            R::GroupMetadata(g, _) => (GROUP_METADATA, g, None),
            R::PartitionMetadata(g) => (PARTITION_METADATA, g, None),
            R::MemberMetadata(g, m, _) => (MEMBER_METADATA, g, Some(m)),
            R::TargetAssignmentMetadata(g, _) => (TARGET_ASSIGNMENT_METADATA, g, None),
            R::TargetAssignmentMember(g, m, _) => (TARGET_ASSIGNMENT_MEMBER, g, Some(m)),
            R::CurrentMemberAssignment(g, m, _) => (CURRENT_MEMBER_ASSIGNMENT, g, Some(m)),
            R::RegularExpression(g, regex, _) => (REGULAR_EXPRESSION, g, Some(regex)),
        };
        let mut k = FieldWriter::with_capacity(8 + group.len());
        k.i16(kind);
        k.string("groupId", group)?;
        if let Some(m) = member {
            let field = if kind == REGULAR_EXPRESSION {
                "regularExpression"
            } else {
                "memberId"
            };
            k.string(field, m)?;
        }
        let value = match self {
            R::GroupMetadata(_, Some((epoch, hash))) => {
                let mut w = value_writer();
                w.i32(*epoch);
                // Tagged field 0: MetadataHash.
                tagged_i64_0(&mut w, *hash);
                Some(w.finish())
            }
            R::MemberMetadata(_, _, Some(v)) => Some(member_value(v)?),
            R::TargetAssignmentMetadata(_, Some((epoch, timestamp_ms))) => {
                let mut w = value_writer();
                w.i32(*epoch);
                // Tagged field 0: AssignmentTimestamp.
                tagged_i64_0(&mut w, *timestamp_ms);
                Some(w.finish())
            }
            R::TargetAssignmentMember(_, _, Some(a)) => {
                let mut w = value_writer();
                topic_partitions(&mut w, a)?;
                w.no_tagged_fields();
                Some(w.finish())
            }
            R::CurrentMemberAssignment(_, _, Some(v)) => {
                let mut w = value_writer();
                w.i32(v.member_epoch);
                w.i32(v.previous_member_epoch);
                w.i8(v.state.value());
                topic_partitions(&mut w, &v.assigned_partitions)?;
                topic_partitions(&mut w, &v.partitions_pending_revocation)?;
                w.no_tagged_fields();
                Some(w.finish())
            }
            R::RegularExpression(_, _, Some(v)) => {
                let mut w = value_writer();
                w.compact_len("topics", Some(v.topics.len()))?;
                for t in &v.topics {
                    w.compact_string("topics", t)?;
                }
                w.i64(v.version);
                w.i64(v.timestamp);
                w.no_tagged_fields();
                Some(w.finish())
            }
            _ => None,
        };
        Ok((k.finish(), value))
    }

    /// The record of key type `kind` (3-8, 16) for `group`/`member` (for
    /// 16: the regular expression) with the
    /// stored `value` (None: tombstone).
    pub fn decode(
        kind: i16,
        group: String,
        member: Option<String>,
        value: Option<&[u8]>,
    ) -> Result<ConsumerRecord, DecodeError> {
        let member = || {
            member
                .clone()
                .ok_or_else(|| DecodeError(format!("record type {kind} without a member id")))
        };
        let Some(v) = value else {
            return Ok(match kind {
                GROUP_METADATA => ConsumerRecord::GroupMetadata(group, None),
                PARTITION_METADATA => ConsumerRecord::PartitionMetadata(group),
                MEMBER_METADATA => ConsumerRecord::MemberMetadata(group, member()?, None),
                TARGET_ASSIGNMENT_METADATA => ConsumerRecord::TargetAssignmentMetadata(group, None),
                TARGET_ASSIGNMENT_MEMBER => {
                    ConsumerRecord::TargetAssignmentMember(group, member()?, None)
                }
                REGULAR_EXPRESSION => ConsumerRecord::RegularExpression(group, member()?, None),
                _ => ConsumerRecord::CurrentMemberAssignment(group, member()?, None),
            });
        };
        let mut r = FieldReader::new(v);
        let version = r.i16()?;
        if version != 0 {
            return Err(DecodeError(format!(
                "unknown version {version} of consumer group record type {kind}"
            )));
        }
        r.flexible = true;
        let rec = match kind {
            GROUP_METADATA => {
                let epoch = r.i32()?;
                let hash = read_tagged_i64_0(&mut r)?;
                return Ok(ConsumerRecord::GroupMetadata(group, Some((epoch, hash))));
            }
            // Its content is not needed: the next heartbeat writes its tombstone.
            PARTITION_METADATA => return Ok(ConsumerRecord::PartitionMetadata(group)),
            MEMBER_METADATA => {
                let instance_id = r.nullable_string()?;
                let rack_id = r.nullable_string()?;
                let client_id = r.string()?;
                let client_host = r.string()?;
                let n = r.count()?;
                let mut subscribed_topic_names = Vec::with_capacity(n);
                for _ in 0..n {
                    subscribed_topic_names.push(r.string()?);
                }
                let subscribed_topic_regex = r.nullable_string()?;
                let rebalance_timeout_ms = r.i32()?;
                let server_assignor = r.nullable_string()?;
                let classic = read_tagged_classic(&mut r)?;
                return Ok(ConsumerRecord::MemberMetadata(
                    group,
                    member()?,
                    Some(MemberMetadata {
                        instance_id,
                        rack_id,
                        client_id,
                        client_host,
                        subscribed_topic_names,
                        subscribed_topic_regex,
                        rebalance_timeout_ms,
                        server_assignor,
                        classic,
                    }),
                ));
            }
            TARGET_ASSIGNMENT_METADATA => {
                let epoch = r.i32()?;
                let timestamp_ms = read_tagged_i64_0(&mut r)?;
                return Ok(ConsumerRecord::TargetAssignmentMetadata(
                    group,
                    Some((epoch, timestamp_ms)),
                ));
            }
            TARGET_ASSIGNMENT_MEMBER => {
                ConsumerRecord::TargetAssignmentMember(group, member()?, Some(read_tps(&mut r)?))
            }
            REGULAR_EXPRESSION => {
                let n = r.count()?;
                let mut topics = BTreeSet::new();
                for _ in 0..n {
                    topics.insert(r.string()?);
                }
                let version = r.i64()?;
                let timestamp = r.i64()?;
                ConsumerRecord::RegularExpression(
                    group,
                    member()?,
                    Some(ResolvedRegularExpression {
                        topics,
                        version,
                        timestamp,
                    }),
                )
            }
            _ => {
                let member_epoch = r.i32()?;
                let previous_member_epoch = r.i32()?;
                let state = MemberState::from_value(r.i8()?);
                let assigned_partitions = read_tps(&mut r)?;
                let partitions_pending_revocation = read_tps(&mut r)?;
                ConsumerRecord::CurrentMemberAssignment(
                    group,
                    member()?,
                    Some(CurrentAssignment {
                        member_epoch,
                        previous_member_epoch,
                        state,
                        assigned_partitions,
                        partitions_pending_revocation,
                    }),
                )
            }
        };
        // Unknown tagged fields (the classic member metadata among them)
        // are skipped.
        r.skip_tagged()?;
        Ok(rec)
    }
}

fn value_writer() -> FieldWriter {
    let mut w = FieldWriter::with_capacity(64);
    w.i16(0);
    w
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

fn member_value(v: &MemberMetadata) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = value_writer();
    compact_nullable(&mut w, "instanceId", v.instance_id.as_deref())?;
    compact_nullable(&mut w, "rackId", v.rack_id.as_deref())?;
    w.compact_string("clientId", &v.client_id)?;
    w.compact_string("clientHost", &v.client_host)?;
    w.compact_len("subscribedTopicNames", Some(v.subscribed_topic_names.len()))?;
    for t in &v.subscribed_topic_names {
        w.compact_string("subscribedTopicNames", t)?;
    }
    compact_nullable(
        &mut w,
        "subscribedTopicRegex",
        v.subscribed_topic_regex.as_deref(),
    )?;
    w.i32(v.rebalance_timeout_ms);
    compact_nullable(&mut w, "serverAssignor", v.server_assignor.as_deref())?;
    match &v.classic {
        None => w.no_tagged_fields(),
        Some(c) => {
            // Tagged field 0: the ClassicMemberMetadata struct (flexible).
            let mut f = FieldWriter::with_capacity(64);
            f.i32(c.session_timeout_ms);
            f.compact_len("supportedProtocols", Some(c.supported_protocols.len()))?;
            for (name, metadata) in &c.supported_protocols {
                f.compact_string("supportedProtocols.name", name)?;
                f.compact_len("supportedProtocols.metadata", Some(metadata.len()))?;
                f.out.extend_from_slice(metadata);
                f.no_tagged_fields();
            }
            f.no_tagged_fields();
            let body = f.finish();
            w.uvarint(1);
            w.uvarint(0);
            let len = u32::try_from(body.len()).map_err(|_| FieldTooLong {
                field: "classicMemberMetadata",
                len: body.len(),
            })?;
            w.uvarint(len);
            w.out.extend_from_slice(&body);
        }
    }
    Ok(w.finish())
}

/// The member value's tagged fields: field 0 is the ClassicMemberMetadata
/// (others are skipped).
fn read_tagged_classic(
    r: &mut FieldReader<'_>,
) -> Result<Option<ClassicMemberMetadata>, DecodeError> {
    let n = r.uvarint()?;
    let mut classic = None;
    for _ in 0..n {
        let tag = r.uvarint()?;
        let len = r.uvarint()? as usize;
        if tag != 0 {
            r.skip(len)?;
            continue;
        }
        let session_timeout_ms = r.i32()?;
        let count = r.count()?;
        let mut supported_protocols = Vec::with_capacity(count);
        for _ in 0..count {
            let name = r.string()?;
            let metadata = r.bytes()?;
            r.skip_tagged()?;
            supported_protocols.push((name, metadata));
        }
        r.skip_tagged()?;
        classic = Some(ClassicMemberMetadata {
            session_timeout_ms,
            supported_protocols,
        });
    }
    Ok(classic)
}

/// `[]TopicPartitions` of (uuid TopicId, []int32 Partitions), each with
/// its own empty tagged fields.
fn topic_partitions(w: &mut FieldWriter, a: &Assignment) -> Result<(), FieldTooLong> {
    w.compact_len("topicPartitions", Some(a.len()))?;
    for (id, ps) in a {
        let (hi, lo) = id.as_u64_pair();
        w.i64(hi as i64);
        w.i64(lo as i64);
        w.compact_len("partitions", Some(ps.len()))?;
        for p in ps {
            w.i32(*p);
        }
        w.no_tagged_fields();
    }
    Ok(())
}

fn read_tps(r: &mut FieldReader<'_>) -> Result<Assignment, DecodeError> {
    let n = r.count()?;
    let mut a = Assignment::new();
    for _ in 0..n {
        let hi = r.i64()? as u64;
        let lo = r.i64()? as u64;
        let id = Uuid::from_u64_pair(hi, lo);
        let k = r.count()?;
        let mut ps = BTreeSet::new();
        for _ in 0..k {
            ps.insert(r.i32()?);
        }
        r.skip_tagged()?;
        if !ps.is_empty() {
            a.entry(id).or_default().extend(ps);
        }
    }
    Ok(a)
}

/// ConsumerGroupMetadataValue's tagged fields: MetadataHash is tag 0.
/// Writes an int64 as tagged field 0 when it is not its default 0 (the
/// MetadataHash and AssignmentTimestamp fields), else no tagged fields.
pub(crate) fn tagged_i64_0(w: &mut FieldWriter, v: i64) {
    if v != 0 {
        w.uvarint(1);
        w.uvarint(0);
        w.uvarint(8);
        w.i64(v);
    } else {
        w.no_tagged_fields();
    }
}

/// Reads the tagged fields, returning the int64 of tag 0 (0 when absent).
pub(crate) fn read_tagged_i64_0(r: &mut FieldReader<'_>) -> Result<i64, DecodeError> {
    let n = r.uvarint()?;
    let mut hash = 0;
    for _ in 0..n {
        let tag = r.uvarint()?;
        let len = r.uvarint()? as usize;
        if tag == 0 && len == 8 {
            hash = r.i64()?;
        } else {
            r.skip(len)?;
        }
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(rec: ConsumerRecord) {
        let (k, v) = rec.encode().unwrap();
        let mut r = FieldReader::new(&k);
        let kind = r.i16().unwrap();
        let group = r.string().unwrap();
        let member = matches!(kind, 5 | 7 | 8 | 16).then(|| r.string().unwrap());
        assert_eq!(
            ConsumerRecord::decode(kind, group, member, v.as_deref()).unwrap(),
            rec
        );
    }

    #[test]
    fn records_round_trip_in_kafka_layouts() {
        let t = Uuid::from_u128(0x1234_5678_9abc_def0_0fed_cba9_8765_4321);
        let a: Assignment = [(t, [0, 2, 5].into_iter().collect())].into_iter().collect();
        round_trip(ConsumerRecord::GroupMetadata("g".into(), Some((3, 0))));
        round_trip(ConsumerRecord::GroupMetadata("g".into(), Some((4, -77))));
        round_trip(ConsumerRecord::GroupMetadata("g".into(), None));
        round_trip(ConsumerRecord::TargetAssignmentMetadata(
            "g".into(),
            Some((4, 0)),
        ));
        round_trip(ConsumerRecord::TargetAssignmentMetadata(
            "g".into(),
            Some((5, 1_764_000_000_123)),
        ));
        round_trip(ConsumerRecord::TargetAssignmentMember(
            "g".into(),
            "m".into(),
            Some(a.clone()),
        ));
        round_trip(ConsumerRecord::CurrentMemberAssignment(
            "g".into(),
            "m".into(),
            Some(CurrentAssignment {
                member_epoch: 5,
                previous_member_epoch: 4,
                state: MemberState::UnrevokedPartitions,
                assigned_partitions: a.clone(),
                partitions_pending_revocation: Assignment::new(),
            }),
        ));
        round_trip(ConsumerRecord::MemberMetadata(
            "g".into(),
            "m".into(),
            Some(MemberMetadata {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
                subscribed_topic_regex: None,
                rebalance_timeout_ms: 300000,
                server_assignor: Some("range".into()),
                classic: None,
            }),
        ));
        // A classic member: ClassicMemberMetadata in tagged field 0, laid
        // out as Kafka's generated ConsumerGroupMemberMetadataValue writes it.
        let classic = MemberMetadata {
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout_ms: 5,
            classic: Some(ClassicMemberMetadata {
                session_timeout_ms: 10,
                supported_protocols: vec![("range".into(), bytes::Bytes::from_static(&[1, 2]))],
            }),
            ..MemberMetadata::default()
        };
        let rec = ConsumerRecord::MemberMetadata("g".into(), "m".into(), Some(classic));
        let (_, v) = rec.encode().unwrap();
        let mut want = vec![0, 0, 0, 0, 2, b'c', 2, b'h', 1, 0, 0, 0, 0, 5, 0];
        want.extend_from_slice(&[1, 0, 16, 0, 0, 0, 10, 2, 6]);
        want.extend_from_slice(b"range");
        want.extend_from_slice(&[3, 1, 2, 0, 0]);
        assert_eq!(v.unwrap(), want);
        round_trip(rec);
        // Kafka's layout of ConsumerGroupMetadataValue v0 {epoch 3}: version,
        // INT32, no tagged fields.
        let (k, v) = ConsumerRecord::GroupMetadata("g".into(), Some((3, 0)))
            .encode()
            .unwrap();
        assert_eq!(k, vec![0, 3, 0, 1, b'g']);
        assert_eq!(v.unwrap(), vec![0, 0, 0, 0, 0, 3, 0]);
        round_trip(ConsumerRecord::RegularExpression(
            "g".into(),
            "t.*".into(),
            Some(ResolvedRegularExpression {
                topics: ["ta".to_string(), "tb".to_string()].into_iter().collect(),
                version: 42,
                timestamp: 1_700_000_000_000,
            }),
        ));
        round_trip(ConsumerRecord::RegularExpression(
            "g".into(),
            "t.*".into(),
            None,
        ));
        // ConsumerGroupRegularExpressionKey v0 (not flexible): INT16 16,
        // STRING group, STRING regex. The value v0 (flexible): compact
        // []string Topics, INT64 Version, INT64 Timestamp, no tagged fields.
        let (k, v) = ConsumerRecord::RegularExpression(
            "g".into(),
            "a+".into(),
            Some(ResolvedRegularExpression {
                topics: ["aa".to_string()].into_iter().collect(),
                version: 7,
                timestamp: 9,
            }),
        )
        .encode()
        .unwrap();
        assert_eq!(k, vec![0, 16, 0, 1, b'g', 0, 2, b'a', b'+']);
        assert_eq!(
            v.unwrap(),
            vec![0, 0, 2, 3, b'a', b'a', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9, 0]
        );
        // A truncated value is an error, not a panic.
        assert!(ConsumerRecord::decode(8, "g".into(), Some("m".into()), Some(&[0, 0, 0])).is_err());
    }
}
