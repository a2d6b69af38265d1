//! Control records (Kafka's `ControlRecordType`) and the transaction
//! markers they carry (Kafka's `EndTransactionMarker`): the one place that
//! encodes and decodes them. A control batch (attribute bit 5) holds one
//! record whose key is `(version i16, type i16)`; for COMMIT and ABORT the
//! value is `(version i16, coordinatorEpoch i32)`. All big-endian.
//!
//! Versions are read the way Kafka reads them: a key version below zero is
//! corrupt data, a newer key or value version is parsed as version 0 (both
//! schemas may only grow at the end), and a type this broker does not know
//! is [`ControlRecordType::Unknown`], to be ignored, never a transaction
//! marker.

use std::fmt;

use super::batch::batch_records;
use super::default_record::{records, Record};

/// Key schema version this broker writes.
pub const CURRENT_CONTROL_KEY_VERSION: i16 = 0;
/// Bytes of a version 0 key: version and type.
pub const CONTROL_KEY_SIZE: usize = 4;
/// Value schema version of the transaction markers this broker writes.
pub const CURRENT_END_TXN_MARKER_VERSION: i16 = 0;
/// Bytes of a version 0 marker value: version and coordinator epoch.
pub const END_TXN_MARKER_VALUE_SIZE: usize = 6;
/// Decompression bound for reading a marker out of a control batch (Kafka
/// never compresses them; one marker record is a few dozen bytes).
const CONTROL_BATCH_BUDGET: usize = 1 << 20;

/// The type in a control record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    Abort,
    Commit,
    /// KRaft quorum records; never written by this broker.
    LeaderChange,
    SnapshotHeader,
    SnapshotFooter,
    KRaftVersion,
    KRaftVoters,
    /// A type id this broker does not know: readers skip the record.
    Unknown(i16),
}

/// Why a control record or transaction marker does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRecordError {
    /// A null key or one shorter than [`CONTROL_KEY_SIZE`].
    KeyTooShort(Option<usize>),
    /// Kafka takes a negative key version as corruption.
    NegativeKeyVersion(i16),
    /// Only ABORT and COMMIT records are transaction markers.
    NotATransactionMarker(ControlRecordType),
    /// A null marker value or one shorter than [`END_TXN_MARKER_VALUE_SIZE`].
    ValueTooShort(Option<usize>),
    /// The control batch itself, or its records section, does not decode.
    Batch(String),
}

impl fmt::Display for ControlRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |n: &Option<usize>| n.map_or("null".to_string(), |n| format!("{n} bytes"));
        match self {
            ControlRecordError::KeyTooShort(n) => write!(
                f,
                "control record key must have at least {CONTROL_KEY_SIZE} bytes, found {}",
                len(n)
            ),
            ControlRecordError::NegativeKeyVersion(v) => {
                write!(f, "invalid control record key version {v}")
            }
            ControlRecordError::NotATransactionMarker(t) => {
                write!(f, "control record of type {t:?} is not a transaction marker")
            }
            ControlRecordError::ValueTooShort(n) => write!(
                f,
                "end transaction marker value must have at least {END_TXN_MARKER_VALUE_SIZE} bytes, found {}",
                len(n)
            ),
            ControlRecordError::Batch(reason) => write!(f, "control batch: {reason}"),
        }
    }
}

impl std::error::Error for ControlRecordError {}

impl ControlRecordType {
    pub fn from_type_id(id: i16) -> ControlRecordType {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            2 => ControlRecordType::LeaderChange,
            3 => ControlRecordType::SnapshotHeader,
            4 => ControlRecordType::SnapshotFooter,
            5 => ControlRecordType::KRaftVersion,
            6 => ControlRecordType::KRaftVoters,
            other => ControlRecordType::Unknown(other),
        }
    }

    pub fn type_id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::LeaderChange => 2,
            ControlRecordType::SnapshotHeader => 3,
            ControlRecordType::SnapshotFooter => 4,
            ControlRecordType::KRaftVersion => 5,
            ControlRecordType::KRaftVoters => 6,
            ControlRecordType::Unknown(id) => id,
        }
    }

    /// Reads a control record's key (Kafka's `ControlRecordType.parse`).
    pub fn parse(key: Option<&[u8]>) -> Result<ControlRecordType, ControlRecordError> {
        let key = match key {
            Some(k) if k.len() >= CONTROL_KEY_SIZE => k,
            other => return Err(ControlRecordError::KeyTooShort(other.map(<[u8]>::len))),
        };
        let version = i16::from_be_bytes([key[0], key[1]]);
        if version < 0 {
            return Err(ControlRecordError::NegativeKeyVersion(version));
        }
        Ok(ControlRecordType::from_type_id(i16::from_be_bytes([
            key[2], key[3],
        ])))
    }

    /// The version 0 key for this type.
    pub fn key(self) -> [u8; CONTROL_KEY_SIZE] {
        let mut key = [0u8; CONTROL_KEY_SIZE];
        key[..2].copy_from_slice(&CURRENT_CONTROL_KEY_VERSION.to_be_bytes());
        key[2..].copy_from_slice(&self.type_id().to_be_bytes());
        key
    }
}

/// A COMMIT or ABORT marker, as the transaction coordinator writes it to
/// each partition of a finished transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTransactionMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl EndTransactionMarker {
    pub fn new(commit: bool, coordinator_epoch: i32) -> EndTransactionMarker {
        EndTransactionMarker {
            commit,
            coordinator_epoch,
        }
    }

    pub fn control_type(&self) -> ControlRecordType {
        if self.commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        }
    }

    /// The marker record's key.
    pub fn key(&self) -> [u8; CONTROL_KEY_SIZE] {
        self.control_type().key()
    }

    /// The marker record's value (version 0).
    pub fn value(&self) -> [u8; END_TXN_MARKER_VALUE_SIZE] {
        let mut value = [0u8; END_TXN_MARKER_VALUE_SIZE];
        value[..2].copy_from_slice(&CURRENT_END_TXN_MARKER_VERSION.to_be_bytes());
        value[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        value
    }

    /// Decodes a marker from its record's key and value (Kafka's
    /// `EndTransactionMarker.deserialize`). The value's version is not
    /// checked: Kafka 4 reads every version as version 0, whose only field
    /// is the coordinator epoch.
    pub fn decode(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<EndTransactionMarker, ControlRecordError> {
        let commit = match ControlRecordType::parse(key)? {
            ControlRecordType::Commit => true,
            ControlRecordType::Abort => false,
            other => return Err(ControlRecordError::NotATransactionMarker(other)),
        };
        let value = match value {
            Some(v) if v.len() >= END_TXN_MARKER_VALUE_SIZE => v,
            other => return Err(ControlRecordError::ValueTooShort(other.map(<[u8]>::len))),
        };
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Ok(EndTransactionMarker::new(commit, coordinator_epoch))
    }

    /// The marker of one control record.
    pub fn from_record(record: &Record<'_>) -> Result<EndTransactionMarker, ControlRecordError> {
        EndTransactionMarker::decode(record.key, record.value)
    }

    /// The marker carried by a whole control batch: its first record.
    pub fn from_batch(batch: &[u8]) -> Result<EndTransactionMarker, ControlRecordError> {
        let bad = |reason: String| ControlRecordError::Batch(reason);
        let count = super::batch::BatchHeader::parse(batch)
            .map_err(|e| bad(e.to_string()))?
            .records_count;
        let section = batch_records(batch, CONTROL_BATCH_BUDGET).map_err(|e| bad(e.to_string()))?;
        let record = records(&section, count)
            .next()
            .ok_or_else(|| bad("no record".into()))?
            .map_err(|e| bad(e.to_string()))?;
        EndTransactionMarker::from_record(&record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::BatchBuilder;

    #[test]
    fn marker_round_trip() {
        for (commit, epoch) in [(true, 0), (false, 7), (true, i32::MAX), (false, -1)] {
            let m = EndTransactionMarker::new(commit, epoch);
            assert_eq!(
                EndTransactionMarker::decode(Some(&m.key()), Some(&m.value())),
                Ok(m)
            );
            let batch = BatchBuilder::new(0)
                .producer(9, 1, -1)
                .transactional(true)
                .control(true)
                .push(Some(&m.key()), Some(&m.value()), &[], 0)
                .build();
            assert_eq!(EndTransactionMarker::from_batch(&batch), Ok(m));
        }
        // The bytes Kafka writes: version 0, ABORT = 0, COMMIT = 1.
        assert_eq!(EndTransactionMarker::new(false, 5).key(), [0, 0, 0, 0]);
        assert_eq!(EndTransactionMarker::new(true, 5).key(), [0, 0, 0, 1]);
        assert_eq!(
            EndTransactionMarker::new(true, 0x0102_0304).value(),
            [0, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn control_types_as_kafka_parses_them() {
        for id in 0..=6 {
            let t = ControlRecordType::from_type_id(id);
            assert_ne!(t, ControlRecordType::Unknown(id));
            assert_eq!(t.type_id(), id);
            assert_eq!(ControlRecordType::parse(Some(&t.key())), Ok(t));
        }
        assert_eq!(
            ControlRecordType::parse(Some(&[0, 0, 0, 2])),
            Ok(ControlRecordType::LeaderChange)
        );
        // Unknown types are not errors: readers ignore them.
        assert_eq!(
            ControlRecordType::parse(Some(&[0, 0, 0, 42])),
            Ok(ControlRecordType::Unknown(42))
        );
        assert_eq!(
            ControlRecordType::parse(Some(&[0, 0, 0xff, 0xff])),
            Ok(ControlRecordType::Unknown(-1))
        );
        // A newer key version is read as version 0; extra bytes are fine.
        assert_eq!(
            ControlRecordType::parse(Some(&[0, 3, 0, 1, 9, 9])),
            Ok(ControlRecordType::Commit)
        );
        // A negative version, a short key, a null key: corrupt.
        assert_eq!(
            ControlRecordType::parse(Some(&[0x80, 0, 0, 1])),
            Err(ControlRecordError::NegativeKeyVersion(i16::MIN))
        );
        assert_eq!(
            ControlRecordType::parse(Some(&[0, 0, 1])),
            Err(ControlRecordError::KeyTooShort(Some(3)))
        );
        assert_eq!(
            ControlRecordType::parse(None),
            Err(ControlRecordError::KeyTooShort(None))
        );
    }

    #[test]
    fn markers_only_from_commit_and_abort() {
        let value = EndTransactionMarker::new(true, 3).value();
        for key in [[0u8, 0, 0, 2], [0, 0, 0, 42]] {
            assert!(matches!(
                EndTransactionMarker::decode(Some(&key), Some(&value)),
                Err(ControlRecordError::NotATransactionMarker(_))
            ));
        }
        // Any value version is read as version 0 (Kafka 4's EndTxnMarker
        // reader does not check it); the value must hold the epoch.
        let commit = [0u8, 0, 0, 1];
        assert_eq!(
            EndTransactionMarker::decode(Some(&commit), Some(&[0, 1, 0, 0, 0, 4, 7])),
            Ok(EndTransactionMarker::new(true, 4))
        );
        assert_eq!(
            EndTransactionMarker::decode(Some(&commit), Some(&[0xff, 0xff, 0, 0, 0, 4])),
            Ok(EndTransactionMarker::new(true, 4))
        );
        assert_eq!(
            EndTransactionMarker::decode(Some(&commit), Some(&[0, 0, 0, 0, 4])),
            Err(ControlRecordError::ValueTooShort(Some(5)))
        );
        assert_eq!(
            EndTransactionMarker::decode(Some(&commit), None),
            Err(ControlRecordError::ValueTooShort(None))
        );
        // A batch without a record, or a truncated one.
        let empty = BatchBuilder::new(0).control(true).build();
        assert!(matches!(
            EndTransactionMarker::from_batch(&empty),
            Err(ControlRecordError::Batch(_))
        ));
        assert!(EndTransactionMarker::from_batch(&empty[..20]).is_err());
    }
}
