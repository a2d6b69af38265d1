//! `__transaction_state`: the transaction coordinator's log, with Kafka's
//! record schemas (TransactionLogKey v0, TransactionLogValue v0), so a
//! restart restores every transactional id's producer id, epoch, state and
//! partitions.

use std::collections::BTreeSet;

use crate::coordinator::txn::TxnState;

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

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + transactional_id.len());
    k.extend_from_slice(&0i16.to_be_bytes());
    put_string(&mut k, transactional_id);
    k
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Names are bounded well below i16::MAX by the protocol's own fields.
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as i16).to_be_bytes());
    out.extend_from_slice(bytes);
}

pub fn encode_value(v: &TxnValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&v.producer_id.to_be_bytes());
    out.extend_from_slice(&v.producer_epoch.to_be_bytes());
    out.extend_from_slice(&v.timeout_ms.to_be_bytes());
    out.push(v.state as u8);
    // Partitions grouped by topic, as Kafka writes them.
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &v.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => topics.push((t.as_str(), vec![*p])),
        }
    }
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for (t, ps) in topics {
        put_string(&mut out, t);
        out.extend_from_slice(&(ps.len() as i32).to_be_bytes());
        for p in ps {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&v.last_update_ms.to_be_bytes());
    out.extend_from_slice(&v.start_ms.to_be_bytes());
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn i8(&mut self) -> Option<i8> {
        self.bytes(1).map(|b| b[0] as i8)
    }
    fn i16(&mut self) -> Option<i16> {
        self.bytes(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.bytes(4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.bytes(8)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_be_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.i16()?;
        if n < 0 {
            return None;
        }
        self.bytes(n as usize)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    /// A non-negative array count no larger than the bytes left.
    fn count(&mut self) -> Option<usize> {
        let n = self.i32()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.buf.len() - self.pos)
    }
    fn unsigned_varint(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for i in 0..5 {
            let b = self.bytes(1)?[0];
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn compact_string(&mut self) -> Option<String> {
        let n = self.unsigned_varint()?.checked_sub(1)?;
        self.bytes(n as usize)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn compact_count(&mut self) -> Option<usize> {
        let n = self.unsigned_varint()?.checked_sub(1)? as usize;
        (n <= self.buf.len() - self.pos).then_some(n)
    }
}

pub fn decode_key(key: &[u8]) -> Option<String> {
    let mut r = Reader { buf: key, pos: 0 };
    match r.i16()? {
        0 => r.string(),
        _ => None,
    }
}

/// Decodes TransactionLogValue v0 and v1 (v1 is flexible: compact strings
/// and arrays, tagged fields that we skip).
pub fn decode_value(value: &[u8]) -> Option<TxnValue> {
    let mut r = Reader { buf: value, pos: 0 };
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return None;
    }
    let flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_code(r.i8()?)?;
    let mut partitions = BTreeSet::new();
    let topics = if flexible {
        r.compact_count()?
    } else {
        r.count()?
    };
    for _ in 0..topics {
        let topic = if flexible {
            r.compact_string()?
        } else {
            r.string()?
        };
        let n = if flexible {
            r.compact_count()?
        } else {
            r.count()?
        };
        for _ in 0..n {
            partitions.insert((topic.clone(), r.i32()?));
        }
        if flexible {
            skip_tagged(&mut r)?;
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Some(TxnValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
    })
}

fn skip_tagged(r: &mut Reader<'_>) -> Option<()> {
    let n = r.unsigned_varint()?;
    for _ in 0..n {
        r.unsigned_varint()?;
        let size = r.unsigned_varint()? as usize;
        r.bytes(size)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip() {
        assert_eq!(decode_key(&encode_key("tx-1")).as_deref(), Some("tx-1"));
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
        let bytes = encode_value(&v);
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
