//! The `__consumer_offsets` record formats and the reading/writing helpers the
//! GroupCoordinator uses to make group state durable.
//!
//! Kafka stores two kinds of records in that compacted topic, told apart by
//! the key's version: OffsetCommitKey (key version 0/1: group, topic,
//! partition) and GroupMetadataKey (key version 2: group). Values carry their
//! own version: OffsetCommitValue v0-v4, GroupMetadataValue v0-v4 (v4 is the
//! flexible encoding). A null value is a tombstone. Keeping Kafka's byte
//! layouts means a data directory stays readable by Kafka's tools
//! (`kafka-dump-log --offsets-decoder`) and by us after a restart.
//!
//! We write OffsetCommitValue v3 (v1 when a v2-v4 OffsetCommit asked for an
//! explicit retention, the only version with an expire timestamp) and
//! GroupMetadataValue v3, as Kafka 4.x does. Key types 3-8 and 16 are the
//! KIP-848 consumer group records (`consumer::records` reads their values),
//! 17 and 19-23 the KIP-1071 streams group records (`streams::records`);
//! other types (share groups) are skipped on load.

use bytes::Bytes;

pub use crate::protocol::fields::{DecodeError, FieldTooLong};
use crate::protocol::fields::{FieldReader, FieldWriter};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub use crate::coordinator::partition_for;

/// One committed offset as stored in OffsetCommitValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 when unknown (value versions < 3).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Only value version 1 carries one: a v2-v4 OffsetCommit's retention.
    pub expire_timestamp: Option<i64>,
}

/// One member as stored in GroupMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A classic group's durable state: what GroupMetadataValue holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// A decoded `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A KIP-848 consumer group record (key types 3-8 and 16; see
    /// `consumer::records`), with its member id for types 5, 7 and 8 (the
    /// regular expression for 16).
    Consumer {
        kind: i16,
        group: String,
        member: Option<String>,
    },
    /// A KIP-1071 streams group record (key types 17, 19-23; see
    /// `streams::records`), with its member id for types 19, 21 and 22.
    Streams {
        kind: i16,
        group: String,
        member: Option<String>,
    },
    /// A record kind this broker does not load (share groups...).
    Other(i16),
}

// ---------------------------------------------------------------------------
// encoding (a STRING over 32767 bytes fails, as Kafka's writers do)
// ---------------------------------------------------------------------------

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(8 + group.len() + topic.len());
    w.i16(1);
    w.string("group", group)?;
    w.string("topic", topic)?;
    w.i32(partition);
    Ok(w.finish())
}

pub fn group_key(group: &str) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(4 + group.len());
    w.i16(2);
    w.string("group", group)?;
    Ok(w.finish())
}

pub fn offset_value(v: &OffsetValue) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(32 + v.metadata.len());
    match v.expire_timestamp {
        Some(expire) => {
            w.i16(1);
            w.i64(v.offset);
            w.string("metadata", &v.metadata)?;
            w.i64(v.commit_timestamp);
            w.i64(expire);
        }
        None => {
            w.i16(3);
            w.i64(v.offset);
            w.i32(v.leader_epoch);
            w.string("metadata", &v.metadata)?;
            w.i64(v.commit_timestamp);
        }
    }
    Ok(w.finish())
}

pub fn group_value(v: &GroupValue) -> Result<Vec<u8>, FieldTooLong> {
    let size: usize = v
        .members
        .iter()
        .map(|m| 64 + m.member_id.len() + m.subscription.len() + m.assignment.len())
        .sum();
    let mut w = FieldWriter::with_capacity(64 + size);
    w.i16(3);
    w.string("protocolType", &v.protocol_type)?;
    w.i32(v.generation);
    w.nullable_string("protocol", v.protocol.as_deref())?;
    w.nullable_string("leader", v.leader.as_deref())?;
    w.i64(v.current_state_timestamp);
    w.count("members", v.members.len())?;
    for m in &v.members {
        w.string("memberId", &m.member_id)?;
        w.nullable_string("groupInstanceId", m.group_instance_id.as_deref())?;
        w.string("clientId", &m.client_id)?;
        w.string("clientHost", &m.client_host)?;
        w.i32(m.rebalance_timeout_ms);
        w.i32(m.session_timeout_ms);
        w.bytes("subscription", &m.subscription)?;
        w.bytes("assignment", &m.assignment)?;
    }
    Ok(w.finish())
}

// ---------------------------------------------------------------------------
// decoding: every read is bounds-checked; a malformed record is an error,
// never a panic.
// ---------------------------------------------------------------------------

pub fn decode_key(key: &[u8]) -> Result<CoordinatorKey, DecodeError> {
    let mut r = FieldReader::new(key);
    let version = r.i16()?;
    match version {
        0 | 1 => Ok(CoordinatorKey::Offset {
            group: r.string()?,
            topic: r.string()?,
            partition: r.i32()?,
        }),
        2 => Ok(CoordinatorKey::Group { group: r.string()? }),
        3 | 4 | 6 => Ok(CoordinatorKey::Consumer {
            kind: version,
            group: r.string()?,
            member: None,
        }),
        // 16: the second string is the regular expression.
        5 | 7 | 8 | 16 => Ok(CoordinatorKey::Consumer {
            kind: version,
            group: r.string()?,
            member: Some(r.string()?),
        }),
        v if crate::coordinator::group::streams::records::is_streams(v) => {
            let group = r.string()?;
            let member = if crate::coordinator::group::streams::records::has_member(v) {
                Some(r.string()?)
            } else {
                None
            };
            Ok(CoordinatorKey::Streams {
                kind: v,
                group,
                member,
            })
        }
        v => Ok(CoordinatorKey::Other(v)),
    }
}

pub fn decode_offset_value(value: &[u8]) -> Result<OffsetValue, DecodeError> {
    let mut r = FieldReader::new(value);
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(DecodeError(format!(
            "unknown OffsetCommitValue version {version}"
        )));
    }
    r.flexible = version >= 4;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp = r.i64()?;
    let expire_timestamp = if version == 1 { Some(r.i64()?) } else { None };
    r.skip_tagged()?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp: expire_timestamp.filter(|e| *e >= 0),
    })
}

pub fn decode_group_value(value: &[u8]) -> Result<GroupValue, DecodeError> {
    let mut r = FieldReader::new(value);
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(DecodeError(format!(
            "unknown GroupMetadataValue version {version}"
        )));
    }
    r.flexible = version >= 4;
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let n = r.count()?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        r.skip_tagged()?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.skip_tagged()?;
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_partitioning() {
        // "".hashCode() == 0; "a".hashCode() == 97.
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 97 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE -> abs is 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // "test-group".hashCode() == -1274006462 (computed with Java).
        let h: i32 = "test-group"
            .encode_utf16()
            .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
        assert_eq!(partition_for("test-group", 50), h.abs() % 50);
    }

    #[test]
    fn offset_value_round_trip() {
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp: 1000,
            expire_timestamp: None,
        };
        assert_eq!(decode_offset_value(&offset_value(&v).unwrap()).unwrap(), v);
        let v1 = OffsetValue {
            leader_epoch: -1,
            expire_timestamp: Some(5000),
            ..v
        };
        assert_eq!(
            decode_offset_value(&offset_value(&v1).unwrap()).unwrap(),
            v1
        );
        assert!(decode_offset_value(&[0, 3, 1]).is_err());
    }

    #[test]
    fn group_value_round_trip() {
        let v = GroupValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 123,
            members: vec![MemberValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300000,
                session_timeout_ms: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group_value(&group_value(&v).unwrap()).unwrap(), v);
        assert_eq!(
            decode_key(&group_key("g").unwrap()).unwrap(),
            CoordinatorKey::Group { group: "g".into() }
        );
        assert_eq!(
            decode_key(&offset_key("g", "t", 4).unwrap()).unwrap(),
            CoordinatorKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 4
            }
        );
        // A huge member count in a short record is an error, not an allocation.
        let mut bad = group_value(&GroupValue {
            members: vec![],
            ..v
        })
        .unwrap();
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_group_value(&bad).is_err());
    }
}
