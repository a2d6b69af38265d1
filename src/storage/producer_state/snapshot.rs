//! Producer state snapshot files (`<offset>.snapshot`) in Kafka's format, the
//! one Kafka 4.4's ProducerStateManager writes and reads and kafka-dump-log
//! prints, plus the reader of the format earlier kastle versions wrote
//! (magic `KPS1`), so their data directories still load.
//!
//! Kafka's layout (the `ProducerSnapshot` message, version 1; big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | version: int16 = 1 |
//! | 2..6 | crc: uint32, CRC-32C of every byte from offset 6 to the end |
//! | 6..10 | number of producer entries: int32 |
//! | 46 each | producer_id int64, epoch int16, last_sequence int32, last_offset int64, offset_delta int32, timestamp int64, coordinator_epoch int32, current_txn_first_offset int64 (-1: none) |
//!
//! Only the last batch of a producer is in a snapshot (`last_sequence`,
//! `last_offset`, `offset_delta`; `last_offset` is -1 for a producer with no
//! data batch), so after a restart a producer's older batches are known only
//! if the log replay after the snapshot's offset meets them again. A file
//! Kafka cannot parse, whose version is not 1 or whose CRC does not match is
//! corrupt: the caller deletes it and rebuilds the state from an older
//! snapshot or from the log, as Kafka does with a `CorruptSnapshotException`.

use std::collections::VecDeque;
use std::fs;
use std::io::Read;
use std::path::Path;

use super::{BatchMetadata, ProducerStateEntry};

/// The only snapshot version Kafka 4.4 writes and accepts.
pub const PRODUCER_SNAPSHOT_VERSION: i16 = 1;
const CRC_OFFSET: usize = 2;
const PRODUCER_ENTRIES_OFFSET: usize = 6;
const ENTRY_SIZE: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
/// Kafka's generated message readers refuse a collection larger than this
/// ("Tried to read a collection of size N, which exceeds the maximum allowed
/// size of 1000000"), so Kafka cannot load a snapshot of more producers.
const MAX_COLLECTION_SIZE: i32 = 1_000_000;

/// The format of earlier kastle versions: magic, u32 producer count, then per
/// producer its id, epoch, coordinator epoch, open transaction, last
/// timestamp and up to five batches; CRC-32C of everything before it last.
const LEGACY_MAGIC: &[u8; 4] = b"KPS1";
const LEGACY_MAX_BATCHES: usize = 5;
/// Smallest legacy producer record (no batches), to bound the count.
const LEGACY_MIN_ENTRY_SIZE: usize = 8 + 2 + 4 + 8 + 8 + 1;

/// Which format a snapshot file was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotFormat {
    Kafka,
    /// Written by kastle before it wrote Kafka's format.
    LegacyKastle,
}

/// A snapshot that cannot be used (Kafka's `CorruptSnapshotException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptSnapshot(pub String);

impl std::fmt::Display for CorruptSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
pub enum ReadError {
    /// Deleted by the caller, which then falls back as Kafka does.
    Corrupt(CorruptSnapshot),
    /// The file could not be read at all (Kafka lets the IOException fail
    /// the log's load).
    Io(std::io::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSnapshot {
    pub entries: Vec<ProducerStateEntry>,
    pub format: SnapshotFormat,
}

pub fn read_snapshot(path: &Path) -> Result<LoadedSnapshot, ReadError> {
    let data = fs::read(path).map_err(ReadError::Io)?;
    decode_snapshot(&data).map_err(ReadError::Corrupt)
}

/// Whether the file at `path` starts as a Kafka-format snapshot does (an
/// unreadable file counts as not).
pub fn is_kafka_format(path: &Path) -> bool {
    let mut head = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| i16::from_be_bytes(head) == PRODUCER_SNAPSHOT_VERSION)
}

/// Kafka's `DefaultRecordBatch.decrementSequence`, in Java's int arithmetic.
pub fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    if sequence < decrement {
        i32::MAX
            .wrapping_sub(decrement.wrapping_sub(sequence))
            .wrapping_add(1)
    } else {
        sequence.wrapping_sub(decrement)
    }
}

/// Kafka's snapshot of `entries`, as `ProducerStateManager.writeSnapshot`
/// lays it out: each producer's epoch, its last batch, last timestamp,
/// coordinator epoch and open transaction.
pub fn encode_snapshot<'a>(entries: impl Iterator<Item = &'a ProducerStateEntry>) -> Vec<u8> {
    let entries: Vec<_> = entries.collect();
    let mut out = Vec::with_capacity(PRODUCER_ENTRIES_OFFSET + 4 + entries.len() * ENTRY_SIZE);
    out.extend_from_slice(&PRODUCER_SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // the CRC, filled in below
                                    // The entry count of a Java array: never above i32::MAX in practice.
    let count = i32::try_from(entries.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for e in entries.into_iter().take(count as usize) {
        let last = e.batches.back();
        // Kafka's lastDataOffset / lastOffsetDelta of an entry without batches.
        let last_offset = last.map_or(-1, |b| b.last_offset);
        // A batch's offset delta is an int32 on the wire, so this always fits.
        let offset_delta = last.map_or(0, |b| {
            i32::try_from(b.last_offset - b.first_offset).unwrap_or(i32::MAX)
        });
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.epoch.to_be_bytes());
        out.extend_from_slice(&e.last_seq().to_be_bytes());
        out.extend_from_slice(&last_offset.to_be_bytes());
        out.extend_from_slice(&offset_delta.to_be_bytes());
        out.extend_from_slice(&e.last_timestamp.to_be_bytes());
        out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[PRODUCER_ENTRIES_OFFSET..]);
    out[CRC_OFFSET..PRODUCER_ENTRIES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Reads a snapshot in Kafka's format or, by its magic, in the legacy one.
pub fn decode_snapshot(data: &[u8]) -> Result<LoadedSnapshot, CorruptSnapshot> {
    let (entries, format) = if data.starts_with(LEGACY_MAGIC) {
        (decode_legacy(data)?, SnapshotFormat::LegacyKastle)
    } else {
        let entries = decode_kafka(data).map_err(|e| match e {
            KafkaReadError::Schema(m) => {
                CorruptSnapshot(format!("Snapshot failed schema validation: {m}"))
            }
            KafkaReadError::Crc { stored, computed } => CorruptSnapshot(format!(
                "Snapshot is corrupt (CRC is no longer valid). Stored crc: {stored}. Computed crc: {computed}"
            )),
        })?;
        (entries, SnapshotFormat::Kafka)
    };
    Ok(LoadedSnapshot { entries, format })
}

enum KafkaReadError {
    Schema(String),
    Crc { stored: u32, computed: u32 },
}

/// In Kafka's order of checks: the version, the message's structure (bytes
/// after the last entry are not read, but are under the CRC), the CRC.
fn decode_kafka(data: &[u8]) -> Result<Vec<ProducerStateEntry>, KafkaReadError> {
    let schema = |m: String| KafkaReadError::Schema(m);
    let mut r = Reader { buf: data, pos: 0 };
    let version = r.i16().map_err(schema)?;
    if version != PRODUCER_SNAPSHOT_VERSION {
        return Err(schema(format!(
            "Snapshot contained an unknown file version {version}"
        )));
    }
    let stored = r.u32().map_err(schema)?;
    let count = r.i32().map_err(schema)?;
    if count < 0 {
        return Err(schema(
            "non-nullable field producerEntries was serialized as null".into(),
        ));
    }
    let remaining = data.len() - r.pos;
    if count as usize > remaining {
        return Err(schema(format!(
            "Tried to allocate a collection of size {count}, but there are only {remaining} bytes remaining."
        )));
    }
    if count > MAX_COLLECTION_SIZE {
        return Err(schema(format!(
            "Tried to read a collection of size {count}, which exceeds the maximum allowed size of {MAX_COLLECTION_SIZE}."
        )));
    }
    let mut entries = Vec::with_capacity((count as usize).min(remaining / ENTRY_SIZE));
    for _ in 0..count {
        entries.push(read_kafka_entry(&mut r).map_err(schema)?);
    }
    let computed = crc32c::crc32c(&data[PRODUCER_ENTRIES_OFFSET..]);
    if computed != stored {
        return Err(KafkaReadError::Crc { stored, computed });
    }
    Ok(entries)
}

/// One producer as Kafka's `readSnapshot` rebuilds it: the entry, and its
/// last batch when it had one (`last_offset >= 0`), whose first sequence
/// and first offset are the last ones minus the offset delta.
fn read_kafka_entry(r: &mut Reader<'_>) -> Result<ProducerStateEntry, String> {
    let producer_id = r.i64()?;
    let epoch = r.i16()?;
    let last_seq = r.i32()?;
    let last_offset = r.i64()?;
    let offset_delta = r.i32()?;
    let timestamp = r.i64()?;
    let coordinator_epoch = r.i32()?;
    let txn_first_offset = r.i64()?;
    let mut batches = VecDeque::new();
    if last_offset >= 0 {
        batches.push_back(BatchMetadata {
            first_seq: decrement_sequence(last_seq, offset_delta),
            last_seq,
            first_offset: last_offset.wrapping_sub(i64::from(offset_delta)),
            last_offset,
            timestamp,
        });
    }
    Ok(ProducerStateEntry {
        producer_id,
        epoch,
        batches,
        last_timestamp: timestamp,
        coordinator_epoch,
        current_txn_first_offset: (txn_first_offset >= 0).then_some(txn_first_offset),
    })
}

fn decode_legacy(data: &[u8]) -> Result<Vec<ProducerStateEntry>, CorruptSnapshot> {
    let corrupt = |m: &str| CorruptSnapshot(format!("kastle (KPS1) snapshot: {m}"));
    if data.len() < LEGACY_MAGIC.len() + 8 {
        return Err(corrupt("truncated"));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32c::crc32c(body);
    if computed != stored {
        return Err(corrupt(&format!(
            "CRC mismatch (stored {stored}, computed {computed})"
        )));
    }
    let mut r = Reader {
        buf: body,
        pos: LEGACY_MAGIC.len(),
    };
    let count = r.u32().map_err(|e| corrupt(&e))? as usize;
    if count > body.len() / LEGACY_MIN_ENTRY_SIZE {
        return Err(corrupt(&format!("implausible producer count {count}")));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(read_legacy_entry(&mut r).map_err(|e| corrupt(&e))?);
    }
    if r.pos != body.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

fn read_legacy_entry(r: &mut Reader<'_>) -> Result<ProducerStateEntry, String> {
    let producer_id = r.i64()?;
    let epoch = r.i16()?;
    let coordinator_epoch = r.i32()?;
    let txn = r.i64()?;
    let last_timestamp = r.i64()?;
    let n = r.take::<1>()?[0] as usize;
    if n > LEGACY_MAX_BATCHES {
        return Err(format!("{n} batches for producer {producer_id}"));
    }
    let mut batches = VecDeque::with_capacity(n);
    for _ in 0..n {
        batches.push_back(BatchMetadata {
            first_seq: r.i32()?,
            last_seq: r.i32()?,
            first_offset: r.i64()?,
            last_offset: r.i64()?,
            timestamp: r.i64()?,
        });
    }
    Ok(ProducerStateEntry {
        producer_id,
        epoch,
        batches,
        last_timestamp,
        coordinator_epoch,
        current_txn_first_offset: (txn >= 0).then_some(txn),
    })
}

/// Encodes `entries` in the legacy format, for the upgrade tests.
#[cfg(test)]
pub fn encode_legacy<'a>(entries: impl Iterator<Item = &'a ProducerStateEntry>) -> Vec<u8> {
    let entries: Vec<_> = entries.collect();
    let mut out = Vec::new();
    out.extend_from_slice(LEGACY_MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&e.producer_id.to_be_bytes());
        out.extend_from_slice(&e.epoch.to_be_bytes());
        out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        out.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        out.extend_from_slice(&e.last_timestamp.to_be_bytes());
        out.push(e.batches.len() as u8);
        for b in &e.batches {
            out.extend_from_slice(&b.first_seq.to_be_bytes());
            out.extend_from_slice(&b.last_seq.to_be_bytes());
            out.extend_from_slice(&b.first_offset.to_be_bytes());
            out.extend_from_slice(&b.last_offset.to_be_bytes());
            out.extend_from_slice(&b.timestamp.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.buf.get(self.pos..self.pos + N).ok_or_else(|| {
            format!(
                "{N} bytes wanted at {} of a {}-byte file",
                self.pos,
                self.buf.len()
            )
        })?;
        self.pos += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.take::<8>().map(i64::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, String> {
        self.take::<4>().map(u32::from_be_bytes)
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.take::<2>().map(i16::from_be_bytes)
    }
}
