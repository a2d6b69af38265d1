//! Kafka's `TransactionLog`: `__transaction_state`, the transaction coordinator's log, with Kafka's
//! record schemas (TransactionLogKey v0, TransactionLogValue v0), so a
//! restart restores every transactional id's producer id, epoch, state and
//! partitions.

use std::collections::BTreeSet;

use crate::coordinator::txn::TxnState;
use crate::protocol::fields::{DecodeError, FieldReader, FieldTooLong, FieldWriter};

pub const TXN_TOPIC: &str = "__transaction_state";

/// What a TransactionLogValue holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

pub fn encode_key(transactional_id: &str) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(4 + transactional_id.len());
    w.i16(0);
    w.string("transactionalId", transactional_id)?;
    Ok(w.finish())
}

/// TransactionLogValue v0.
pub fn encode_value(v: &TxnValue) -> Result<Vec<u8>, FieldTooLong> {
    let mut w = FieldWriter::with_capacity(64);
    w.i16(0);
    w.i64(v.producer_id);
    w.i16(v.producer_epoch);
    w.i32(v.timeout_ms);
    w.i8(v.state as i8);
    // Partitions grouped by topic, as Kafka writes them.
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &v.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => topics.push((t.as_str(), vec![*p])),
        }
    }
    w.count("transactionPartitions", topics.len())?;
    for (t, ps) in topics {
        w.string("topic", t)?;
        w.count("partitionIds", ps.len())?;
        for p in ps {
            w.i32(p);
        }
    }
    w.i64(v.last_update_ms);
    w.i64(v.start_ms);
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
    r.skip_tagged()?;
    Ok(TxnValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
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
            producer_epoch: 3,
            timeout_ms: 60000,
            state: TxnState::Ongoing,
            partitions,
            last_update_ms: 5,
            start_ms: 4,
        };
        let bytes = encode_value(&v).unwrap();
        assert_eq!(decode_value(&bytes), Some(v));
        for cut in 0..bytes.len() {
            assert_eq!(decode_value(&bytes[..cut]), None);
        }
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
