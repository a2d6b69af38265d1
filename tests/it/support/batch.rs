//! Record batches (magic v2) as tests build and read them: an encoder for
//! plain, idempotent and transactional batches, header field accessors,
//! splitting a fetched record set into batches, a decoder for the records of
//! an uncompressed batch (control records included) and a byte-wise
//! comparison of a stored batch with the one produced.
//!
//! Header layout (offsets into a batch): baseOffset 0, batchLength 8,
//! partitionLeaderEpoch 12, magic 16, crc 17, attributes 21,
//! lastOffsetDelta 23, baseTimestamp 27, maxTimestamp 35, producerId 43,
//! producerEpoch 51, baseSequence 53, recordsCount 57, records 61.

use bytes::Buf;

use super::client::{get_uvarint, put_varint, put_varlong};
use super::now_ms;

#[derive(Clone, Debug, Default)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Absolute timestamp (ms).
    pub timestamp: i64,
}

impl Rec {
    pub fn value(v: &[u8], timestamp: i64) -> Rec {
        Rec {
            key: None,
            value: Some(v.to_vec()),
            headers: vec![],
            timestamp,
        }
    }
}

pub const BATCH_HEADER_LEN: usize = 61;

/// A length-prefixed byte string (-1: null), as record fields are written.
fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(v) => {
            put_varint(out, v.len() as i32);
            out.extend_from_slice(v);
        }
        None => put_varint(out, -1),
    }
}

/// Encode a v2 record batch (no compression, CreateTime, no producer id).
pub fn batch(records: &[Rec]) -> Vec<u8> {
    assert!(!records.is_empty());
    let base_ts = records.iter().map(|r| r.timestamp).min().unwrap();
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap();
    let mut recs = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut body = Vec::new();
        body.push(0u8); // attributes
        put_varlong(&mut body, r.timestamp - base_ts);
        put_varint(&mut body, i as i32);
        put_bytes(&mut body, r.key.as_deref());
        put_bytes(&mut body, r.value.as_deref());
        put_varint(&mut body, r.headers.len() as i32);
        for (hk, hv) in &r.headers {
            put_bytes(&mut body, Some(hk.as_bytes()));
            put_bytes(&mut body, hv.as_deref());
        }
        put_varint(&mut recs, body.len() as i32);
        recs.extend_from_slice(&body);
    }
    // Everything from attributes to the end: covered by the CRC.
    let mut tail = Vec::new();
    tail.extend_from_slice(&0i16.to_be_bytes()); // attributes
    tail.extend_from_slice(&((records.len() - 1) as i32).to_be_bytes()); // lastOffsetDelta
    tail.extend_from_slice(&base_ts.to_be_bytes());
    tail.extend_from_slice(&max_ts.to_be_bytes());
    tail.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    tail.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    tail.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    tail.extend_from_slice(&(records.len() as i32).to_be_bytes());
    tail.extend_from_slice(&recs);
    let crc = crc32c::crc32c(&tail);
    let mut out = Vec::with_capacity(21 + tail.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    out.extend_from_slice(&((4 + 1 + 4 + tail.len()) as i32).to_be_bytes()); // batchLength
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    out.push(2); // magic
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&tail);
    out
}

/// A batch of `n` records with values of `value_size` bytes, all at `ts`.
pub fn simple_batch(n: usize, value_size: usize, ts: i64, seed: u8) -> Vec<u8> {
    let recs: Vec<Rec> = (0..n)
        .map(|i| Rec {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(
                (0..value_size)
                    .map(|j| seed.wrapping_add((i * 31 + j) as u8))
                    .collect(),
            ),
            headers: if i == 0 {
                vec![("h".into(), Some(b"v".to_vec()))]
            } else {
                vec![]
            },
            timestamp: ts,
        })
        .collect();
    batch(&recs)
}

/// Split a record set into its batches (each with its 12-byte prefix).
/// Panics on a partial batch.
pub fn split_batches(records: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        assert!(
            records.len() - pos >= 12,
            "partial batch header at {pos} of {}",
            records.len()
        );
        let len = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap()) as usize;
        assert!(
            pos + 12 + len <= records.len(),
            "partial batch at {pos}: needs {} bytes, {} left",
            12 + len,
            records.len() - pos
        );
        out.push(records[pos..pos + 12 + len].to_vec());
        pos += 12 + len;
    }
    out
}

pub fn batch_base_offset(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[0..8].try_into().unwrap())
}

pub fn batch_record_count(b: &[u8]) -> i32 {
    i32::from_be_bytes(b[57..61].try_into().unwrap())
}

pub fn batch_attributes(b: &[u8]) -> i16 {
    i16::from_be_bytes(b[21..23].try_into().unwrap())
}

/// The codec id in the attributes (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
pub fn batch_codec(b: &[u8]) -> u8 {
    (batch_attributes(b) & 0x07) as u8
}

pub fn batch_last_offset_delta(b: &[u8]) -> i32 {
    i32::from_be_bytes(b[23..27].try_into().unwrap())
}

pub fn batch_base_timestamp(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[27..35].try_into().unwrap())
}

pub fn batch_max_timestamp(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[35..43].try_into().unwrap())
}

/// The CRC-32C the batch carries.
pub fn batch_crc(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[17..21].try_into().unwrap())
}

/// Recomputes the CRC-32C (over attributes to the end) after an edit.
pub fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Attributes bit 4: part of a transaction.
pub fn is_transactional(b: &[u8]) -> bool {
    batch_attributes(b) & 0x10 != 0
}

/// Attributes bit 5: a control batch (transaction marker).
pub fn is_control(b: &[u8]) -> bool {
    batch_attributes(b) & 0x20 != 0
}

/// Compare a fetched batch with the one produced: identical except the base
/// offset (must be `offset`) and the partition leader epoch (which a leader
/// may stamp: must be the produced -1 or `leader_epoch`).
pub fn assert_same_batch(
    fetched: &[u8],
    produced: &[u8],
    offset: i64,
    leader_epoch: i32,
    what: &str,
) {
    assert_eq!(
        fetched.len(),
        produced.len(),
        "{what}: batch length differs"
    );
    assert_eq!(batch_base_offset(fetched), offset, "{what}: base offset");
    assert_eq!(fetched[8..12], produced[8..12], "{what}: batchLength bytes");
    let ple = i32::from_be_bytes(fetched[12..16].try_into().unwrap());
    assert!(
        ple == -1 || ple == leader_epoch,
        "{what}: partitionLeaderEpoch {ple}"
    );
    assert!(
        fetched[16..] == produced[16..],
        "{what}: batch bytes from magic on differ"
    );
}

/// Stamp producerId, producerEpoch and baseSequence into a v2 batch (as
/// produced by [`batch`]) and recompute its CRC; attributes stay unchanged.
pub fn set_producer(b: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    assert!(b.len() >= BATCH_HEADER_LEN && b[16] == 2, "not a v2 batch");
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    fix_crc(b);
}

/// Marks a batch transactional (attributes bit 4) and recomputes its CRC.
pub fn set_transactional(b: &mut [u8]) {
    let attrs = batch_attributes(b) | 0x10;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    fix_crc(b);
}

/// A v2 batch of `n` records (values `<tag>-<i>`, timestamp `ts`) carrying
/// the given producer id, epoch and base sequence.
pub fn producer_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    n: usize,
    ts: i64,
    tag: &str,
) -> Vec<u8> {
    let recs: Vec<Rec> = (0..n)
        .map(|i| Rec {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("{tag}-{i}").into_bytes()),
            headers: vec![],
            timestamp: ts,
        })
        .collect();
    let mut b = batch(&recs);
    set_producer(&mut b, producer_id, epoch, base_sequence);
    b
}

/// A transactional batch of `n` records for producer `pid` (id, epoch) from
/// sequence `seq`, stamped now.
pub fn txn_batch(pid: (i64, i16), seq: i32, n: usize, tag: &str) -> Vec<u8> {
    let mut b = producer_batch(pid.0, pid.1, seq, n, now_ms(), tag);
    set_transactional(&mut b);
    b
}

/// (producerId, producerEpoch, baseSequence) of a v2 batch.
pub fn batch_producer(b: &[u8]) -> (i64, i16, i32) {
    (
        i64::from_be_bytes(b[43..51].try_into().unwrap()),
        i16::from_be_bytes(b[51..53].try_into().unwrap()),
        i32::from_be_bytes(b[53..57].try_into().unwrap()),
    )
}

// ---------------------------------------------------------------------------
// Records of an uncompressed batch
// ---------------------------------------------------------------------------

/// One record as stored, with its absolute offset and timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A zig-zag varint (or varlong), advancing `cur` past it.
fn read_varint(cur: &mut &[u8]) -> i64 {
    let raw = get_uvarint(cur);
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

/// A length-prefixed byte string (-1: null), advancing `cur` past it.
fn read_bytes(cur: &mut &[u8]) -> Option<Vec<u8>> {
    let len = read_varint(cur);
    (len >= 0).then(|| {
        let v = cur[..len as usize].to_vec();
        cur.advance(len as usize);
        v
    })
}

/// Every record of an uncompressed batch.
pub fn records_in(b: &[u8]) -> Vec<Record> {
    assert_eq!(batch_codec(b), 0, "records_in reads uncompressed batches");
    let base = batch_base_offset(b);
    let base_ts = batch_base_timestamp(b);
    let mut cur = &b[BATCH_HEADER_LEN..];
    (0..batch_record_count(b))
        .map(|_| {
            let _len = read_varint(&mut cur);
            cur.advance(1); // attributes
            let ts_delta = read_varint(&mut cur);
            let offset_delta = read_varint(&mut cur);
            let key = read_bytes(&mut cur);
            let value = read_bytes(&mut cur);
            let headers = (0..read_varint(&mut cur))
                .map(|_| {
                    let k = read_bytes(&mut cur).expect("header key");
                    (String::from_utf8(k).unwrap(), read_bytes(&mut cur))
                })
                .collect();
            Record {
                offset: base + offset_delta,
                timestamp: base_ts + ts_delta,
                key,
                value,
                headers,
            }
        })
        .collect()
}

/// Control record types (the key's second i16).
pub const ABORT: i16 = 0;
pub const COMMIT: i16 = 1;

/// The control type (ABORT / COMMIT) of a control batch.
pub fn control_type(b: &[u8]) -> i16 {
    assert!(is_control(b), "not a control batch");
    assert_eq!(batch_record_count(b), 1, "control batch record count");
    let key = records_in(b).remove(0).key.expect("control key");
    assert_eq!(key.len(), 4, "control key length");
    let version = i16::from_be_bytes([key[0], key[1]]);
    assert_eq!(version, 0, "control key version");
    i16::from_be_bytes([key[2], key[3]])
}
