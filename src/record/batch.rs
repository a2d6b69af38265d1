//! Record batch v2 (Kafka's `DefaultRecordBatch`): the header layout and
//! its constants, the header view, CRC-32C, iteration over the batches of a
//! byte range and over a batch's records section (decompressed when
//! needed), and the in-place rewrites the leader applies before appending
//! (offsets, LogAppendTime, partition leader epoch). Produce validation is
//! in [`super::validator`], one record's layout in [`super::default_record`].
//!
//! Layout of a v2 batch (all big-endian):
//! ```text
//! baseOffset i64 @0 | batchLength i32 @8 | partitionLeaderEpoch i32 @12 | magic i8 @16
//! crc u32 @17 (CRC-32C of bytes 21..end) | attributes i16 @21 | lastOffsetDelta i32 @23
//! baseTimestamp i64 @27 | maxTimestamp i64 @35 | producerId i64 @43 | producerEpoch i16 @51
//! baseSequence i32 @53 | recordsCount i32 @57 | records @61
//! ```

use std::borrow::Cow;

use super::compression::{self, MAX_DECOMPRESSION_BUDGET};
use super::default_record::read_record;
use super::error::RecordError;

pub const BASE_OFFSET_OFFSET: usize = 0;
pub const BATCH_LENGTH_OFFSET: usize = 8;
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
pub const MAGIC_OFFSET: usize = 16;
pub const CRC_OFFSET: usize = 17;
pub const ATTRIBUTES_OFFSET: usize = 21;
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
pub const PRODUCER_ID_OFFSET: usize = 43;
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
pub const BASE_SEQUENCE_OFFSET: usize = 53;
pub const RECORDS_COUNT_OFFSET: usize = 57;
pub const RECORDS_OFFSET: usize = 61;

/// baseOffset + batchLength: the part of a batch not counted in batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Size of a v2 batch header, i.e. a batch with zero records.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// Smallest legal batchLength (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32;
pub const CURRENT_MAGIC: i8 = 2;
pub const NO_TIMESTAMP: i64 = -1;
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_SEQUENCE: i32 = -1;

pub const COMPRESSION_CODEC_MASK: i16 = 0x07;
pub const TIMESTAMP_TYPE_MASK: i16 = 0x08;
pub const TRANSACTIONAL_FLAG_MASK: i16 = 0x10;
pub const CONTROL_FLAG_MASK: i16 = 0x20;
pub const DELETE_HORIZON_FLAG_MASK: i16 = 0x40;

#[inline]
pub(super) fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
pub(super) fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
pub(super) fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Compression codec from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Compression {
    pub fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// A decoded v2 batch header. Cheap to copy; the bytes stay where they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the 61-byte header at the start of `buf`. Only the length of
    /// `buf` is checked; field semantics are left to the callers, which
    /// differ in how strict they must be (produce vs. recovery vs. fetch).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, RecordError> {
        if buf.len() < RECORD_BATCH_OVERHEAD {
            return Err(RecordError::PartialBatch {
                batch_index: 0,
                position: 0,
                needed: RECORD_BATCH_OVERHEAD,
                available: buf.len(),
            });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_OFFSET),
            batch_length: be_i32(buf, BATCH_LENGTH_OFFSET),
            partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: be_u32(buf, CRC_OFFSET),
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_OFFSET),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(buf, PRODUCER_ID_OFFSET),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_OFFSET),
            base_sequence: be_i32(buf, BASE_SEQUENCE_OFFSET),
            records_count: be_i32(buf, RECORDS_COUNT_OFFSET),
        })
    }

    /// The header as stored with `prefix` in place of the batch's own first
    /// bytes ([`leader_prefixes`]).
    pub fn with_leader_prefix(mut self, prefix: &LeaderPrefix) -> BatchHeader {
        self.base_offset = be_i64(prefix, BASE_OFFSET_OFFSET);
        self.partition_leader_epoch = be_i32(prefix, PARTITION_LEADER_EPOCH_OFFSET);
        self
    }

    /// The codec, or `UnknownCompression` for an unknown id 5..=7.
    pub fn codec(&self) -> Result<Compression, RecordError> {
        self.compression_type()
            .ok_or(RecordError::UnknownCompression {
                batch_index: 0,
                codec: self.compression(),
            })
    }
    /// Raw codec id (attributes & 7); may be an unknown id 5..=7.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_CODEC_MASK) as u8
    }
    pub fn compression_type(&self) -> Option<Compression> {
        Compression::from_id(self.compression())
    }
    pub fn is_compressed(&self) -> bool {
        self.compression() != 0
    }
    pub fn timestamp_type_is_log_append(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_MASK != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG_MASK != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG_MASK != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id > NO_PRODUCER_ID
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
    /// Bytes the batch occupies in a log, including the 12-byte log overhead.
    /// A negative batchLength (only possible on unvalidated input) yields the
    /// overhead alone so that arithmetic on it can never wrap.
    pub fn total_size(&self) -> usize {
        self.batch_length.max(0) as usize + LOG_OVERHEAD
    }
}

/// CRC-32C over attributes..end, as stored at byte 17.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// True if `batch` (exactly one batch) carries a matching CRC-32C.
pub fn verify_crc(batch: &[u8]) -> bool {
    batch.len() >= RECORD_BATCH_OVERHEAD && be_u32(batch, CRC_OFFSET) == compute_crc(batch)
}

/// Frames the next batch at `pos`: returns its size. Used where a partial or
/// malformed batch is an error rather than a tail to ignore.
pub(crate) fn frame_batch(
    buf: &[u8],
    pos: usize,
    batch_index: usize,
) -> Result<usize, RecordError> {
    let rest = &buf[pos..];
    if rest.len() < LOG_OVERHEAD {
        return Err(RecordError::PartialBatch {
            batch_index,
            position: pos,
            needed: LOG_OVERHEAD,
            available: rest.len(),
        });
    }
    let batch_length = be_i32(rest, BATCH_LENGTH_OFFSET);
    if batch_length < MIN_BATCH_LENGTH {
        return Err(RecordError::BatchTooSmall {
            batch_index,
            batch_length,
        });
    }
    let size = batch_length as usize + LOG_OVERHEAD;
    if rest.len() <= MAGIC_OFFSET {
        return Err(RecordError::PartialBatch {
            batch_index,
            position: pos,
            needed: size,
            available: rest.len(),
        });
    }
    let magic = rest[MAGIC_OFFSET] as i8;
    if !(0..=CURRENT_MAGIC).contains(&magic) {
        return Err(RecordError::InvalidMagic { batch_index, magic });
    }
    if size > rest.len() {
        return Err(RecordError::PartialBatch {
            batch_index,
            position: pos,
            needed: size,
            available: rest.len(),
        });
    }
    if magic != CURRENT_MAGIC {
        return Err(RecordError::UnsupportedMagic { batch_index, magic });
    }
    Ok(size)
}

/// Decompressed (or borrowed, when uncompressed) records section of one
/// whole batch, within `budget` bytes.
pub fn batch_records(batch: &[u8], budget: usize) -> Result<Cow<'_, [u8]>, RecordError> {
    let h = BatchHeader::parse(batch)?;
    if h.total_size() != batch.len() || h.batch_length < MIN_BATCH_LENGTH {
        return Err(RecordError::PartialBatch {
            batch_index: 0,
            position: 0,
            needed: h.total_size(),
            available: batch.len(),
        });
    }
    let codec = h.codec()?;
    if codec == Compression::None {
        return Ok(Cow::Borrowed(&batch[RECORDS_OFFSET..]));
    }
    compression::decompress(codec, &batch[RECORDS_OFFSET..], budget)
        .map(Cow::Owned)
        .map_err(|e| RecordError::from_compression(e, 0, h.compression()))
}

/// Checks that `buf` is a whole number of v2 batches and returns their
/// (position, size) pairs lazily; used by the rewrites so they are
/// all-or-nothing.
fn frame_all(buf: &[u8]) -> Result<usize, RecordError> {
    let mut pos = 0;
    let mut idx = 0;
    while pos < buf.len() {
        pos += frame_batch(buf, pos, idx)?;
        idx += 1;
    }
    Ok(idx)
}

/// The bytes of a batch a leader rewrites when it appends: baseOffset,
/// batchLength (kept) and partitionLeaderEpoch, all before the CRC-covered
/// range (@21..), so rewriting them leaves the CRC valid.
pub const LEADER_PREFIX_LEN: usize = MAGIC_OFFSET;

/// One batch's first [`LEADER_PREFIX_LEN`] bytes as the leader stores them.
pub type LeaderPrefix = [u8; LEADER_PREFIX_LEN];

/// The leader's offset assignment without writing to `buf`: for each batch,
/// its first bytes with baseOffset set consecutively from `first_offset`
/// and, if given, partitionLeaderEpoch set to `epoch`; returned with the
/// last offset assigned. A writer stores each prefix in place of the
/// batch's own, so a request's buffer can be written as it arrived, shared
/// and uncopied. The buffer is framed first: a malformed one gets nothing.
pub fn leader_prefixes(
    buf: &[u8],
    first_offset: i64,
    epoch: Option<i32>,
) -> Result<(Vec<LeaderPrefix>, i64), RecordError> {
    let count = frame_all(buf)?;
    let mut prefixes = Vec::with_capacity(count);
    let mut next = first_offset;
    let mut pos = 0;
    while pos < buf.len() {
        let size = be_i32(buf, pos + BATCH_LENGTH_OFFSET) as usize + LOG_OVERHEAD;
        let delta = be_i32(buf, pos + LAST_OFFSET_DELTA_OFFSET);
        let mut prefix: LeaderPrefix = [0; LEADER_PREFIX_LEN];
        prefix.copy_from_slice(&buf[pos..pos + LEADER_PREFIX_LEN]);
        prefix[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&next.to_be_bytes());
        if let Some(epoch) = epoch {
            prefix[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
                .copy_from_slice(&epoch.to_be_bytes());
        }
        prefixes.push(prefix);
        next = next.wrapping_add(i64::from(delta)).wrapping_add(1);
        pos += size;
    }
    Ok((prefixes, next - 1))
}

/// Sets each batch's baseOffset consecutively starting at `first_offset`
/// and returns the last offset assigned ([`leader_prefixes`], written back
/// into `buf`). A malformed buffer is left untouched.
pub fn assign_offsets(buf: &mut [u8], first_offset: i64) -> Result<i64, RecordError> {
    let (prefixes, last) = leader_prefixes(buf, first_offset, None)?;
    let mut pos = 0;
    for prefix in &prefixes {
        let size = be_i32(buf, pos + BATCH_LENGTH_OFFSET) as usize + LOG_OVERHEAD;
        buf[pos..pos + LEADER_PREFIX_LEN].copy_from_slice(prefix);
        pos += size;
    }
    Ok(last)
}

/// Leader-side rewrite for topics with `message.timestamp.type=LogAppendTime`:
/// like Kafka's `setMaxTimestamp(LOG_APPEND_TIME, now)` it sets attribute
/// bit 3 and maxTimestamp, leaves baseTimestamp and the record deltas alone
/// (readers substitute maxTimestamp for every record), and recomputes the CRC.
pub fn set_log_append_time(buf: &mut [u8], now_ms: i64) -> Result<(), RecordError> {
    frame_all(buf)?;
    let mut pos = 0;
    while pos < buf.len() {
        let size = be_i32(buf, pos + BATCH_LENGTH_OFFSET) as usize + LOG_OVERHEAD;
        let batch = &mut buf[pos..pos + size];
        let attrs = be_i16(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_MASK;
        batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
        batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&now_ms.to_be_bytes());
        let crc = compute_crc(batch);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        pos += size;
    }
    Ok(())
}

/// Stamps the leader epoch on every batch. partitionLeaderEpoch (@12) is
/// before the CRC-covered range (@21..), so the CRC stays valid. Tests
/// only: a leader's append stamps it as it writes (`leader_prefixes`).
#[cfg(test)]
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) -> Result<(), RecordError> {
    frame_all(buf)?;
    let mut pos = 0;
    while pos < buf.len() {
        let size = be_i32(buf, pos + BATCH_LENGTH_OFFSET) as usize + LOG_OVERHEAD;
        buf[pos + PARTITION_LEADER_EPOCH_OFFSET..pos + PARTITION_LEADER_EPOCH_OFFSET + 4]
            .copy_from_slice(&epoch.to_be_bytes());
        pos += size;
    }
    Ok(())
}

/// Iterator over (position, header) of the batches in a stored byte range.
/// Stops, without error, at the first partial or implausible batch (fewer
/// bytes than declared, batchLength below the header size, magic != 2); the
/// caller inspects [`BatchIter::position`] to learn where the valid prefix
/// ends. CRCs are not checked here (see [`verify_crc`]).
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub fn iter_batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter { buf, pos: 0 }
}

impl BatchIter<'_> {
    /// Byte position just past the last batch yielded so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// True when every byte of the input was covered by yielded batches.
    pub fn is_exhausted(&self) -> bool {
        self.pos == self.buf.len()
    }
}

impl Iterator for BatchIter<'_> {
    type Item = (usize, BatchHeader);

    fn next(&mut self) -> Option<(usize, BatchHeader)> {
        let rest = &self.buf[self.pos..];
        let h = BatchHeader::parse(rest).ok()?;
        if h.batch_length < MIN_BATCH_LENGTH || h.magic != CURRENT_MAGIC {
            return None;
        }
        let size = h.total_size();
        if size > rest.len() {
            return None;
        }
        let at = self.pos;
        self.pos += size;
        Some((at, h))
    }
}

/// Per-record facts needed for ListOffsets by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    pub offset_delta: i32,
    /// Effective timestamp: maxTimestamp for LogAppendTime batches.
    pub timestamp: i64,
}

/// Record-level view of one batch.
pub enum RecordTimestamps<'a> {
    Records(RecordTimestampIter<'a>),
    /// Compressed batch whose records cannot be decoded (undecodable stream,
    /// or larger than [`MAX_DECOMPRESSION_BUDGET`], which produce validation
    /// never lets in); callers fall back to batch-level answers.
    NotAvailable,
}

/// Walks (offset delta, timestamp) of a batch's records: borrowed for an
/// uncompressed batch, decompressed for a compressed one. Yields an error
/// once and then stops if the records are malformed.
pub struct RecordTimestampIter<'a> {
    records: Cow<'a, [u8]>,
    pos: usize,
    index: i32,
    count: i32,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

/// Record-level iteration over exactly one batch (`batch` must hold the
/// whole batch as framed by its batchLength). Compressed batches are
/// decompressed within [`MAX_DECOMPRESSION_BUDGET`]: every batch produce
/// validation accepted decompressed within a budget no larger than that, so
/// the cap never hides a batch we stored, while stored data from before
/// validation existed cannot blow up a ListOffsets. A batch that does not
/// decode yields `NotAvailable` rather than an error, so a lookup degrades to
/// batch-level precision instead of failing.
pub fn record_timestamps(batch: &[u8]) -> Result<RecordTimestamps<'_>, RecordError> {
    record_timestamps_within(batch, MAX_DECOMPRESSION_BUDGET)
}

/// [`record_timestamps`] with a smaller decompression budget: the same
/// reader, for callers (the `record_batch` fuzz target) that must not pay
/// for a 256 MiB expansion on every input.
pub fn record_timestamps_within(
    batch: &[u8],
    budget: usize,
) -> Result<RecordTimestamps<'_>, RecordError> {
    let h = BatchHeader::parse(batch)?;
    let records = match batch_records(batch, budget) {
        Ok(r) => r,
        Err(
            RecordError::Decompression { .. }
            | RecordError::DecompressedTooLarge { .. }
            | RecordError::UnknownCompression { .. },
        ) => return Ok(RecordTimestamps::NotAvailable),
        Err(e) => return Err(e),
    };
    Ok(RecordTimestamps::Records(RecordTimestampIter {
        records,
        pos: 0,
        index: 0,
        count: h.records_count.max(0),
        base_timestamp: h.base_timestamp,
        log_append_time: h.timestamp_type_is_log_append().then_some(h.max_timestamp),
        failed: false,
    }))
}

impl Iterator for RecordTimestampIter<'_> {
    type Item = Result<RecordInfo, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.index >= self.count {
            return None;
        }
        let i = self.index;
        self.index += 1;
        match read_record(&self.records, &mut self.pos) {
            Ok(m) => Some(Ok(RecordInfo {
                offset_delta: m.offset_delta,
                timestamp: self
                    .log_append_time
                    .unwrap_or_else(|| self.base_timestamp.wrapping_add(m.timestamp_delta)),
            })),
            Err(reason) => {
                self.failed = true;
                Some(Err(RecordError::InvalidRecord {
                    batch_index: 0,
                    record_index: i,
                    reason,
                }))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::builder::BatchBuilder;

    pub(crate) const NOW: i64 = 1_700_000_000_000;

    pub(crate) fn batch(n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new(NOW);
        for i in 0..n {
            b = b.push(
                Some(b"k"),
                Some(format!("v{i}").as_bytes()),
                &[("h", b"x")],
                NOW + i as i64,
            );
        }
        b.build().to_vec()
    }

    #[test]
    fn header_parse_and_helpers() {
        let b = batch(3);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.magic, 2);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.total_size(), b.len());
        assert_eq!(h.max_timestamp, NOW + 2);
        assert_eq!(h.compression(), 0);
        assert!(!h.is_transactional() && !h.is_control() && !h.timestamp_type_is_log_append());
        assert!(verify_crc(&b));
        assert!(BatchHeader::parse(&b[..60]).is_err());
    }

    #[test]
    fn assign_offsets_rewrites_base_offsets() {
        let mut buf = batch(3);
        buf.extend_from_slice(&batch(2));
        let last = assign_offsets(&mut buf, 100).unwrap();
        assert_eq!(last, 104);
        let hs: Vec<_> = iter_batches(&buf).map(|(_, h)| h).collect();
        assert_eq!(hs[0].base_offset, 100);
        assert_eq!(hs[1].base_offset, 103);
        assert!(verify_crc(&buf[..hs[0].total_size()]));
        // Malformed input is left untouched.
        let mut bad = batch(1);
        bad.push(0);
        let before = bad.clone();
        assert!(assign_offsets(&mut bad, 5).is_err());
        assert_eq!(bad, before);
    }

    #[test]
    fn log_append_time_rewrite_keeps_crc_valid() {
        let mut b = batch(3);
        set_log_append_time(&mut b, NOW + 99).unwrap();
        let h = BatchHeader::parse(&b).unwrap();
        assert!(h.timestamp_type_is_log_append());
        assert_eq!(h.max_timestamp, NOW + 99);
        assert_eq!(h.base_timestamp, NOW);
        assert!(verify_crc(&b));
        let RecordTimestamps::Records(it) = record_timestamps(&b).unwrap() else {
            panic!("uncompressed")
        };
        let ts: Vec<_> = it.map(|r| r.unwrap().timestamp).collect();
        assert_eq!(ts, vec![NOW + 99; 3]);
        set_partition_leader_epoch(&mut b, 7).unwrap();
        assert_eq!(BatchHeader::parse(&b).unwrap().partition_leader_epoch, 7);
        assert!(verify_crc(&b));
    }

    #[test]
    fn record_iteration_and_batch_iteration_tail() {
        let b = batch(4);
        let RecordTimestamps::Records(it) = record_timestamps(&b).unwrap() else {
            panic!("uncompressed")
        };
        let recs: Vec<_> = it.map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 4);
        assert_eq!(
            recs[3],
            RecordInfo {
                offset_delta: 3,
                timestamp: NOW + 3
            }
        );

        let mut buf = batch(1);
        let first = buf.len();
        buf.extend_from_slice(&batch(2));
        let full = buf.len();
        buf.extend_from_slice(&batch(2)[..30]);
        let mut it = iter_batches(&buf);
        assert_eq!(it.next().map(|(p, _)| p), Some(0));
        assert_eq!(it.next().map(|(p, _)| p), Some(first));
        assert!(it.next().is_none());
        assert_eq!(it.position(), full);
        assert!(!it.is_exhausted());
    }
}
