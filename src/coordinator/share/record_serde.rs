//! The `__share_group_state` record formats (Kafka's share coordinator
//! `ShareSnapshotKey`/`ShareSnapshotValue`, record type 0, and
//! `ShareUpdateKey`/`ShareUpdateValue`, type 1): a key is the record type
//! then group id, topic id and partition (non-flexible); a value is its
//! version (0) then flexible fields, with Kafka 4.2's tagged
//! `DeliveryCompleteCount` (KIP-1226). A null value (tombstone) of a
//! ShareSnapshot key deletes the share partition's state.

use uuid::Uuid;

use crate::broker::share::partition::{delivery_complete_count, StateBatch};
pub use crate::protocol::fields::{DecodeError, FieldTooLong};
use crate::protocol::fields::{FieldReader, FieldWriter};

/// Kafka's `CoordinatorRecordType` ids of the share coordinator.
pub const SHARE_SNAPSHOT: i16 = 0;
pub const SHARE_UPDATE: i16 = 1;

/// A decoded key: record type, group, topic id, partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareKey {
    pub record_type: i16,
    pub group_id: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// ShareSnapshotValue: the whole state of a share partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotValue {
    pub snapshot_epoch: i32,
    pub state_epoch: i32,
    pub leader_epoch: i32,
    pub start_offset: i64,
    pub create_timestamp: i64,
    pub write_timestamp: i64,
    pub batches: Vec<StateBatch>,
}

/// ShareUpdateValue: the batches that changed since the last record;
/// start offset and leader epoch -1 when unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateValue {
    pub snapshot_epoch: i32,
    pub leader_epoch: i32,
    pub start_offset: i64,
    pub batches: Vec<StateBatch>,
}

pub fn key(
    record_type: i16,
    group_id: &str,
    topic_id: Uuid,
    partition: i32,
) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(26 + group_id.len());
    w.i16(record_type);
    w.string("groupId", group_id)?;
    let (hi, lo) = topic_id.as_u64_pair();
    w.i64(hi as i64);
    w.i64(lo as i64);
    w.i32(partition);
    Ok(w.finish())
}

pub fn decode_key(bytes: &[u8]) -> Result<ShareKey, DecodeError> {
    let mut r = FieldReader::new(bytes);
    let record_type = r.i16()?;
    if record_type != SHARE_SNAPSHOT && record_type != SHARE_UPDATE {
        return Err(DecodeError(format!(
            "unknown share coordinator record type {record_type}"
        )));
    }
    let group_id = r.string()?;
    let hi = r.i64()? as u64;
    let lo = r.i64()? as u64;
    Ok(ShareKey {
        record_type,
        group_id,
        topic_id: Uuid::from_u64_pair(hi, lo),
        partition: r.i32()?,
    })
}

fn write_batches(w: &mut FieldWriter, batches: &[StateBatch]) -> Result<(), FieldTooLong> {
    w.compact_len("stateBatches", Some(batches.len()))?;
    for b in batches {
        w.i64(b.first_offset);
        w.i64(b.last_offset);
        w.i8(b.delivery_state);
        w.i16(b.delivery_count);
        w.no_tagged_fields();
    }
    Ok(())
}

/// The trailing tagged fields: DeliveryCompleteCount (tag 0).
fn write_complete_count(w: &mut FieldWriter, count: i32) {
    w.uvarint(1);
    w.uvarint(0);
    w.uvarint(4);
    w.i32(count);
}

pub fn snapshot_value(v: &SnapshotValue) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(48 + 20 * v.batches.len());
    w.i16(0);
    w.i32(v.snapshot_epoch);
    w.i32(v.state_epoch);
    w.i32(v.leader_epoch);
    w.i64(v.start_offset);
    w.i64(v.create_timestamp);
    w.i64(v.write_timestamp);
    write_batches(&mut w, &v.batches)?;
    write_complete_count(&mut w, delivery_complete_count(&v.batches, v.start_offset));
    Ok(w.finish())
}

pub fn update_value(v: &UpdateValue) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(32 + 20 * v.batches.len());
    w.i16(0);
    w.i32(v.snapshot_epoch);
    w.i32(v.leader_epoch);
    w.i64(v.start_offset);
    write_batches(&mut w, &v.batches)?;
    // Kafka leaves the count at its default (-1, not written) when the
    // update does not know it.
    w.no_tagged_fields();
    Ok(w.finish())
}

fn read_batches(r: &mut FieldReader<'_>) -> Result<Vec<StateBatch>, DecodeError> {
    let n = r.count()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let b = StateBatch {
            first_offset: r.i64()?,
            last_offset: r.i64()?,
            delivery_state: r.i8()?,
            delivery_count: r.i16()?,
        };
        r.skip_tagged()?;
        if b.last_offset < b.first_offset {
            return Err(DecodeError(format!(
                "state batch {}..{} ends before it starts",
                b.first_offset, b.last_offset
            )));
        }
        out.push(b);
    }
    Ok(out)
}

fn value_reader<'a>(bytes: &'a [u8], what: &str) -> Result<FieldReader<'a>, DecodeError> {
    let mut r = FieldReader::new(bytes);
    let version = r.i16()?;
    if version != 0 {
        return Err(DecodeError(format!("unknown {what} version {version}")));
    }
    r.flexible = true;
    Ok(r)
}

pub fn decode_snapshot_value(bytes: &[u8]) -> Result<SnapshotValue, DecodeError> {
    let mut r = value_reader(bytes, "ShareSnapshotValue")?;
    let v = SnapshotValue {
        snapshot_epoch: r.i32()?,
        state_epoch: r.i32()?,
        leader_epoch: r.i32()?,
        start_offset: r.i64()?,
        create_timestamp: r.i64()?,
        write_timestamp: r.i64()?,
        batches: read_batches(&mut r)?,
    };
    r.skip_tagged()?;
    Ok(v)
}

pub fn decode_update_value(bytes: &[u8]) -> Result<UpdateValue, DecodeError> {
    let mut r = value_reader(bytes, "ShareUpdateValue")?;
    let v = UpdateValue {
        snapshot_epoch: r.i32()?,
        leader_epoch: r.i32()?,
        start_offset: r.i64()?,
        batches: read_batches(&mut r)?,
    };
    r.skip_tagged()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::share::partition::{
        PERSISTED_ACKNOWLEDGED, PERSISTED_ARCHIVED, PERSISTED_AVAILABLE,
    };

    fn b(first: i64, last: i64, state: i8, count: i16) -> StateBatch {
        StateBatch {
            first_offset: first,
            last_offset: last,
            delivery_state: state,
            delivery_count: count,
        }
    }

    #[test]
    fn records_round_trip_in_kafkas_layout() {
        let t = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let k = key(SHARE_SNAPSHOT, "g", t, 7).unwrap();
        // type, "g" as a STRING, 16 uuid bytes, the partition.
        assert_eq!(&k[..5], &[0, 0, 0, 1, b'g']);
        assert_eq!(&k[5..21], t.as_bytes());
        assert_eq!(&k[21..], &[0, 0, 0, 7]);
        assert_eq!(
            decode_key(&k).unwrap(),
            ShareKey {
                record_type: SHARE_SNAPSHOT,
                group_id: "g".into(),
                topic_id: t,
                partition: 7
            }
        );
        assert!(decode_key(&key(2, "g", t, 0).unwrap()).is_err());

        let snap = SnapshotValue {
            snapshot_epoch: 3,
            state_epoch: 1,
            leader_epoch: 5,
            start_offset: 10,
            create_timestamp: 100,
            write_timestamp: 200,
            batches: vec![
                b(10, 12, PERSISTED_ACKNOWLEDGED, 1),
                b(13, 13, PERSISTED_AVAILABLE, 2),
            ],
        };
        let bytes = snapshot_value(&snap).unwrap();
        assert_eq!(decode_snapshot_value(&bytes).unwrap(), snap);
        // Tagged DeliveryCompleteCount 3 at the end: one field, tag 0, 4 bytes.
        assert_eq!(&bytes[bytes.len() - 7..], &[1, 0, 4, 0, 0, 0, 3]);

        let upd = UpdateValue {
            snapshot_epoch: 3,
            leader_epoch: -1,
            start_offset: 11,
            batches: vec![b(11, 11, PERSISTED_ARCHIVED, 2)],
        };
        assert_eq!(
            decode_update_value(&update_value(&upd).unwrap()).unwrap(),
            upd
        );
        assert!(
            decode_update_value(&[0, 1]).is_err(),
            "version 1 is unknown"
        );
        assert!(decode_snapshot_value(&bytes[..bytes.len() - 10]).is_err());
    }
}
