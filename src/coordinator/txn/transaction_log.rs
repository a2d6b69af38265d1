//! Kafka's `TransactionLog`: `__transaction_state`, the transaction coordinator's log, with Kafka's
//! record schemas (TransactionLogKey v0, TransactionLogValue v1 written,
//! v0 and v1 read), so a restart restores every transactional id's producer
//! id, epoch, state and partitions.
//!
//! Which value version: Kafka writes `TransactionVersion.transactionLogValueVersion()`
//! of the finalized `transaction.version`, which is 1 from level 1 (only
//! level 0 writes v0). kastle finalizes level 1, so it writes v1: the v0
//! fields in the flexible encoding (compact strings and arrays, a null
//! partition list for Empty, tagged-field sections) plus, as Kafka 4.4 does
//! at level 1, the tagged field PreviousProducerId (tag 0: the producer id
//! before the transition, on every record). Transaction version 2 adds
//! NextProducerId (tag 1: the producer id an EndTxn v5 that ran out of
//! epochs hands over to once its markers are written) and
//! ClientTransactionVersion (tag 2: the version the transaction was begun
//! or ended with, 2 for Produce v12 / AddPartitionsToTxn v4+ / EndTxn v5).
//! Kafka writes a tagged field only when it differs from its default
//! (-1, -1, 0); NextProducerEpoch (tag 3, two-phase commit) is skipped.

use std::collections::BTreeSet;

use crate::coordinator::txn::TxnState;
use crate::protocol::fields::{DecodeError, FieldReader, FieldTooLong, FieldWriter};

pub const TXN_TOPIC: &str = "__transaction_state";

/// TransactionLogValue v1's tags of PreviousProducerId, NextProducerId and
/// ClientTransactionVersion.
const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;

/// What a TransactionLogValue holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    /// The producer id the transactional id had before the transition this
    /// record logs (tagged field PreviousProducerId of v1; -1 when absent):
    /// `producer_id` itself unless InitProducerId rotated it.
    pub previous_producer_id: i64,
    /// NextProducerId: the producer id a transaction version 2 end hands
    /// over to when the epochs ran out (-1: none).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
    /// ClientTransactionVersion (0, 1 or 2).
    pub client_transaction_version: i16,
}

pub fn encode_key(transactional_id: &str) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(4 + transactional_id.len());
    w.i16(0);
    w.string("transactionalId", transactional_id)?;
    Ok(w.finish())
}

/// TransactionLogValue v1 (flexible), as Kafka writes it at
/// `transaction.version` 1: partitions grouped by topic, null when Empty.
pub fn encode_value(v: &TxnValue) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(64);
    w.i16(1);
    w.i64(v.producer_id);
    w.i16(v.producer_epoch);
    w.i32(v.timeout_ms);
    w.i8(v.state as i8);
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &v.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => topics.push((t.as_str(), vec![*p])),
        }
    }
    // Kafka's valueToBytes leaves the list null for Empty (which never
    // holds partitions).
    let listed = (v.state != TxnState::Empty).then_some(topics.len());
    w.compact_len("transactionPartitions", listed)?;
    if listed.is_some() {
        for (t, ps) in topics {
            w.compact_string("topic", t)?;
            w.compact_len("partitionIds", Some(ps.len()))?;
            for p in ps {
                w.i32(p);
            }
            w.no_tagged_fields();
        }
    }
    w.i64(v.last_update_ms);
    w.i64(v.start_ms);
    // Tagged fields in tag order, each only when not at its default.
    let previous = (v.previous_producer_id != -1).then_some(v.previous_producer_id);
    let next = (v.next_producer_id != -1).then_some(v.next_producer_id);
    let client = (v.client_transaction_version != 0).then_some(v.client_transaction_version);
    let count = [previous.is_some(), next.is_some(), client.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    w.uvarint(count as u32);
    for (tag, id) in [
        (TAG_PREVIOUS_PRODUCER_ID, previous),
        (TAG_NEXT_PRODUCER_ID, next),
    ] {
        if let Some(id) = id {
            w.uvarint(tag);
            w.uvarint(8);
            w.i64(id);
        }
    }
    if let Some(c) = client {
        w.uvarint(TAG_CLIENT_TRANSACTION_VERSION);
        w.uvarint(2);
        w.i16(c);
    }
    Ok(w.finish())
}

pub fn decode_key(key: &[u8]) -> Option<String> {
    let mut r = FieldReader::new(key);
    match r.i16().ok()? {
        0 => r.string().ok(),
        _ => None,
    }
}

/// Decodes TransactionLogValue v0 and v1 (v1 is flexible: compact strings
/// and arrays, tagged fields that we skip).
pub fn decode_value(value: &[u8]) -> Option<TxnValue> {
    decode_value_checked(value).ok()
}

fn decode_value_checked(value: &[u8]) -> Result<TxnValue, DecodeError> {
    let mut r = FieldReader::new(value);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(DecodeError(format!(
            "unknown TransactionLogValue version {version}"
        )));
    }
    r.flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_code(r.i8()?)
        .ok_or_else(|| DecodeError("unknown transaction state".into()))?;
    let mut partitions = BTreeSet::new();
    for _ in 0..r.count()? {
        let topic = r.string()?;
        for _ in 0..r.count()? {
            partitions.insert((topic.clone(), r.i32()?));
        }
        r.skip_tagged()?;
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    let mut previous_producer_id = -1;
    let mut next_producer_id = -1;
    let mut client_transaction_version = 0;
    if r.flexible {
        for _ in 0..r.uvarint()? {
            let tag = r.uvarint()?;
            let size = r.uvarint()? as usize;
            match (tag, size) {
                (TAG_PREVIOUS_PRODUCER_ID, 8) => previous_producer_id = r.i64()?,
                (TAG_NEXT_PRODUCER_ID, 8) => next_producer_id = r.i64()?,
                (TAG_CLIENT_TRANSACTION_VERSION, 2) => client_transaction_version = r.i16()?,
                _ => r.skip(size)?,
            }
        }
    }
    Ok(TxnValue {
        producer_id,
        previous_producer_id,
        next_producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
        client_transaction_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip() {
        assert_eq!(
            decode_key(&encode_key("tx-1").unwrap()).as_deref(),
            Some("tx-1")
        );
        assert!(encode_key(&"t".repeat(32_768)).is_err(), "never truncated");
        let mut partitions = BTreeSet::new();
        partitions.insert(("a".to_string(), 0));
        partitions.insert(("a".to_string(), 2));
        partitions.insert(("b".to_string(), 1));
        let v = TxnValue {
            producer_id: 42,
            previous_producer_id: 41,
            next_producer_id: -1,
            producer_epoch: 3,
            timeout_ms: 60000,
            state: TxnState::Ongoing,
            partitions,
            last_update_ms: 5,
            start_ms: 4,
            client_transaction_version: 0,
        };
        let bytes = encode_value(&v).unwrap();
        assert_eq!(decode_value(&bytes), Some(v.clone()));
        for cut in 0..bytes.len() {
            assert_eq!(decode_value(&bytes[..cut]), None);
        }
        let empty = TxnValue {
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            ..v
        };
        assert_eq!(decode_value(&encode_value(&empty).unwrap()), Some(empty));
    }

    /// The bytes Kafka 4.4's `TransactionLog.valueToBytes` produces at
    /// transaction.version 1 (value version 1, no tagged fields), written
    /// out by hand from TransactionLogValue.json.
    #[test]
    fn value_v1_is_kafkas_encoding() {
        let mut partitions = BTreeSet::new();
        partitions.insert(("tx".to_string(), 0));
        partitions.insert(("tx".to_string(), 1));
        let v = TxnValue {
            producer_id: 7,
            previous_producer_id: 7,
            next_producer_id: -1,
            producer_epoch: 2,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions,
            last_update_ms: 1_700_000_000_123,
            start_ms: 1_700_000_000_100,
            client_transaction_version: 0,
        };
        let mut want = Vec::new();
        want.extend_from_slice(&1i16.to_be_bytes()); // value version 1
        want.extend_from_slice(&7i64.to_be_bytes());
        want.extend_from_slice(&2i16.to_be_bytes());
        want.extend_from_slice(&60_000i32.to_be_bytes());
        want.push(1); // Ongoing
        want.push(2); // one topic (compact array: n + 1)
        want.extend_from_slice(&[3, b't', b'x']); // compact string "tx"
        want.push(3); // two partition ids
        want.extend_from_slice(&0i32.to_be_bytes());
        want.extend_from_slice(&1i32.to_be_bytes());
        want.push(0); // the topic entry's tagged fields
        want.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_100i64.to_be_bytes());
        want.extend_from_slice(&[1, 0, 8]); // one tagged field: tag 0, 8 bytes
        want.extend_from_slice(&7i64.to_be_bytes()); // PreviousProducerId
        assert_eq!(encode_value(&v).unwrap(), want);
        assert_eq!(decode_value(&want), Some(v.clone()));

        // Empty: a null partition list (compact length 0).
        let empty = TxnValue {
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            ..v
        };
        let bytes = encode_value(&empty).unwrap();
        assert_eq!(bytes[17], 0, "null transactionPartitions");
        assert_eq!(bytes.len(), 2 + 8 + 2 + 4 + 1 + 1 + 8 + 8 + 3 + 8);

        // Without a previous producer id: an empty tagged-field section.
        // Unknown tags are skipped.
        let bare = TxnValue {
            previous_producer_id: -1,
            ..v
        };
        let mut bytes = encode_value(&bare).unwrap();
        assert_eq!(bytes.last(), Some(&0));
        assert_eq!(decode_value(&bytes), Some(bare.clone()));
        bytes.pop();
        bytes.extend_from_slice(&[1, 5, 2, 0xab, 0xcd]); // tag 5, 2 bytes
        assert_eq!(decode_value(&bytes), Some(bare));
    }

    /// What Kafka 4.4 wrote at transaction.version 1 for InitProducerId of
    /// a new transactional id (producer id 1, epoch 0, Empty), read from
    /// its `__transaction_state` segment; the timestamps are its clock.
    #[test]
    fn kafkas_own_value_is_read() {
        let kafka = [
            0x00, 0x01, // version 1
            0, 0, 0, 0, 0, 0, 0, 1, // producer id 1
            0, 0, // epoch 0
            0, 0, 0xea, 0x60, // timeout 60000
            0,    // Empty
            0,    // null partitions
            0, 0, 0x01, 0xa2, 0x3a, 0x98, 0xdc, 0x01, // last update
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // start -1
            1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, // PreviousProducerId 1
        ];
        let v = decode_value(&kafka).unwrap();
        assert_eq!(
            (
                v.producer_id,
                v.previous_producer_id,
                v.producer_epoch,
                v.state
            ),
            (1, 1, 0, TxnState::Empty)
        );
        assert_eq!(
            encode_value(&v).unwrap(),
            kafka.to_vec(),
            "kastle writes the same bytes"
        );
    }

    /// Values a previous kastle wrote (v0) still load.
    #[test]
    fn value_v0_is_still_read() {
        let mut v0 = Vec::new();
        v0.extend_from_slice(&0i16.to_be_bytes());
        v0.extend_from_slice(&9i64.to_be_bytes());
        v0.extend_from_slice(&3i16.to_be_bytes());
        v0.extend_from_slice(&1000i32.to_be_bytes());
        v0.push(4); // CompleteCommit
        v0.extend_from_slice(&0i32.to_be_bytes()); // no partitions
        v0.extend_from_slice(&5i64.to_be_bytes());
        v0.extend_from_slice(&4i64.to_be_bytes());
        let v = decode_value(&v0).unwrap();
        assert_eq!(
            (v.producer_id, v.producer_epoch, v.timeout_ms, v.state),
            (9, 3, 1000, TxnState::CompleteCommit)
        );
        assert!(v.partitions.is_empty());
    }

    #[test]
    fn hostile_counts_are_refused() {
        let mut v = Vec::new();
        v.extend_from_slice(&0i16.to_be_bytes());
        v.extend_from_slice(&1i64.to_be_bytes());
        v.extend_from_slice(&0i16.to_be_bytes());
        v.extend_from_slice(&1000i32.to_be_bytes());
        v.push(1);
        v.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_value(&v), None);
    }
}
