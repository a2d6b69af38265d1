//! Record batch v2 header layout, produce-side validation (Kafka's
//! `ProduceRequest.validateRecords` + `UnifiedLog.analyzeAndValidateRecords` +
//! `LogValidator` rules), the in-place rewrites the leader applies before
//! appending, and iteration over batches / records without copying.
//!
//! Layout of a v2 batch (all big-endian):
//! ```text
//! baseOffset i64 @0 | batchLength i32 @8 | partitionLeaderEpoch i32 @12 | magic i8 @16
//! crc u32 @17 (CRC-32C of bytes 21..end) | attributes i16 @21 | lastOffsetDelta i32 @23
//! baseTimestamp i64 @27 | maxTimestamp i64 @35 | producerId i64 @43 | producerEpoch i16 @51
//! baseSequence i32 @53 | recordsCount i32 @57 | records @61
//! ```

use std::borrow::Cow;
use std::fmt;

use bytes::BytesMut;

use super::compression::{self, CompressionError, MAX_DECOMPRESSION_BUDGET};
use super::default_record::{read_record, records};

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

/// Kafka error codes this module can produce.
pub mod error_codes {
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TIMESTAMP: i16 = 32;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const INVALID_RECORD: i16 = 87;
}

#[inline]
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn be_i64(b: &[u8], at: usize) -> i64 {
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

/// The topic's `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
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

/// Why a batch buffer was rejected. Carries the batch (and record) index so
/// the produce response can fill `record_errors`/`error_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Produce data for a partition contained no batch at all.
    NoBatches,
    /// The buffer ends inside a batch (or inside its header).
    PartialBatch {
        batch_index: usize,
        position: usize,
        needed: usize,
        available: usize,
    },
    /// batchLength smaller than a bare v2 header.
    BatchTooSmall {
        batch_index: usize,
        batch_length: i32,
    },
    /// Magic byte that is not any known message format (< 0 or > 2).
    InvalidMagic {
        batch_index: usize,
        magic: i8,
    },
    /// Message format v0/v1: rejected on produce v3+ (Kafka 4 accepts nothing else).
    UnsupportedMagic {
        batch_index: usize,
        magic: i8,
    },
    CrcMismatch {
        batch_index: usize,
        stored: u32,
        computed: u32,
    },
    UnknownCompression {
        batch_index: usize,
        codec: u8,
    },
    MessageTooLarge {
        batch_index: usize,
        size: usize,
        max: usize,
    },
    /// A batch-level rule of Kafka's LogValidator was violated.
    InvalidBatch {
        batch_index: usize,
        reason: &'static str,
        value: i64,
    },
    /// The record structure inside an uncompressed batch is malformed.
    InvalidRecord {
        batch_index: usize,
        record_index: i32,
        reason: &'static str,
    },
    InvalidTimestamp {
        batch_index: usize,
        record_index: i32,
        timestamp: i64,
        reason: &'static str,
    },
    /// The records section of a compressed batch does not decode (garbage,
    /// truncated stream, bad codec checksum).
    Decompression {
        batch_index: usize,
        codec: u8,
        reason: String,
    },
    /// Decompressing the batch would exceed the broker's budget
    /// ([`compression::decompression_budget`]); decoding stopped there.
    DecompressedTooLarge {
        batch_index: usize,
        budget: usize,
    },
    /// A codec the request version may not use (ZSTD before produce v7).
    UnsupportedCompressionType {
        batch_index: usize,
        codec: u8,
    },
}

impl RecordError {
    /// Kafka error code for the produce response partition entry.
    pub fn kafka_error_code(&self) -> i16 {
        use error_codes::*;
        match self {
            // Kafka's ProduceRequest.validateRecords sees no whole batch in
            // a truncated buffer and rejects it as INVALID_RECORD.
            RecordError::NoBatches
            | RecordError::PartialBatch { .. }
            | RecordError::UnsupportedMagic { .. }
            | RecordError::InvalidBatch { .. }
            | RecordError::InvalidRecord { .. } => INVALID_RECORD,
            RecordError::BatchTooSmall { .. }
            | RecordError::InvalidMagic { .. }
            | RecordError::CrcMismatch { .. }
            | RecordError::UnknownCompression { .. } => CORRUPT_MESSAGE,
            RecordError::MessageTooLarge { .. } => MESSAGE_TOO_LARGE,
            RecordError::InvalidTimestamp { .. } => INVALID_TIMESTAMP,
            // Kafka 4 surfaces an undecodable stream as a bare KafkaException
            // ("Failed to decompress record stream", DefaultRecordBatch's
            // compressed iterator), which ReplicaManager's catch-all turns
            // into UNKNOWN_SERVER_ERROR; a stream that ends early becomes
            // InvalidRecordException ("premature EOF") = INVALID_RECORD. We
            // answer INVALID_RECORD for both: same non-retriable outcome for
            // clients as Kafka's, with a meaningful code. Not CORRUPT_MESSAGE:
            // that one is retriable and the producer would resend the same
            // bytes (the CRC matched, so the producer made them) until
            // delivery.timeout.ms.
            RecordError::Decompression { .. } => INVALID_RECORD,
            // Kafka has no explicit bound. MESSAGE_TOO_LARGE says what
            // happened and makes the Java producer split the batch and retry
            // (Sender.canSplit), which is the right remedy; librdkafka fails
            // the messages permanently, also right for a bomb.
            RecordError::DecompressedTooLarge { .. } => MESSAGE_TOO_LARGE,
            RecordError::UnsupportedCompressionType { .. } => UNSUPPORTED_COMPRESSION_TYPE,
        }
    }

    /// Maps a codec failure on batch `batch_index` (codec id `codec`).
    pub fn from_compression(e: CompressionError, batch_index: usize, codec: u8) -> RecordError {
        match e {
            CompressionError::BudgetExceeded { budget } => RecordError::DecompressedTooLarge {
                batch_index,
                budget,
            },
            CompressionError::UnknownCodec(codec) => {
                RecordError::UnknownCompression { batch_index, codec }
            }
            other => RecordError::Decompression {
                batch_index,
                codec,
                reason: other.to_string(),
            },
        }
    }

    /// Index of the offending record inside its batch, for `record_errors`.
    pub fn record_index(&self) -> Option<i32> {
        match self {
            RecordError::InvalidRecord { record_index, .. }
            | RecordError::InvalidTimestamp { record_index, .. } => Some(*record_index),
            _ => None,
        }
    }

    fn with_batch_index(mut self, idx: usize) -> RecordError {
        match &mut self {
            RecordError::NoBatches => {}
            RecordError::PartialBatch { batch_index, .. }
            | RecordError::BatchTooSmall { batch_index, .. }
            | RecordError::InvalidMagic { batch_index, .. }
            | RecordError::UnsupportedMagic { batch_index, .. }
            | RecordError::CrcMismatch { batch_index, .. }
            | RecordError::UnknownCompression { batch_index, .. }
            | RecordError::MessageTooLarge { batch_index, .. }
            | RecordError::InvalidBatch { batch_index, .. }
            | RecordError::InvalidRecord { batch_index, .. }
            | RecordError::InvalidTimestamp { batch_index, .. }
            | RecordError::Decompression { batch_index, .. }
            | RecordError::DecompressedTooLarge { batch_index, .. }
            | RecordError::UnsupportedCompressionType { batch_index, .. } => *batch_index = idx,
        }
        self
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::NoBatches => write!(f, "produce data must contain at least one record batch"),
            RecordError::PartialBatch { batch_index, position, needed, available } => write!(
                f,
                "batch {batch_index} at byte {position} is truncated: needs {needed} bytes, {available} available"
            ),
            RecordError::BatchTooSmall { batch_index, batch_length } => write!(
                f,
                "batch {batch_index}: batchLength {batch_length} is smaller than the minimum {MIN_BATCH_LENGTH}"
            ),
            RecordError::InvalidMagic { batch_index, magic } => {
                write!(f, "batch {batch_index}: invalid magic {magic}")
            }
            RecordError::UnsupportedMagic { batch_index, magic } => write!(
                f,
                "batch {batch_index}: produce requests may only contain record batches with magic 2, found {magic}"
            ),
            RecordError::CrcMismatch { batch_index, stored, computed } => write!(
                f,
                "batch {batch_index} is corrupt (stored crc = {stored:#010x}, computed crc = {computed:#010x})"
            ),
            RecordError::UnknownCompression { batch_index, codec } => {
                write!(f, "batch {batch_index}: unknown compression codec id {codec}")
            }
            RecordError::MessageTooLarge { batch_index, size, max } => write!(
                f,
                "batch {batch_index} is {size} bytes which exceeds the maximum configured value of {max}"
            ),
            RecordError::InvalidBatch { batch_index, reason, value } => {
                write!(f, "batch {batch_index}: {reason} (value {value})")
            }
            RecordError::InvalidRecord { batch_index, record_index, reason } => {
                write!(f, "batch {batch_index}, record {record_index}: {reason}")
            }
            RecordError::InvalidTimestamp { batch_index, record_index, timestamp, reason } => write!(
                f,
                "batch {batch_index}, record {record_index}: timestamp {timestamp} {reason}"
            ),
            RecordError::Decompression { batch_index, reason, .. } => {
                write!(f, "batch {batch_index}: {reason}")
            }
            RecordError::DecompressedTooLarge { batch_index, budget } => write!(
                f,
                "batch {batch_index}: decompressed records exceed the broker's limit of {budget} bytes"
            ),
            RecordError::UnsupportedCompressionType { batch_index, codec } => write!(
                f,
                "batch {batch_index}: compression codec {codec} is not allowed for this produce request version"
            ),
        }
    }
}

impl std::error::Error for RecordError {}

/// Per-topic knobs for produce validation.
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// `max.message.bytes`: limit on a batch's total size (incl. log overhead).
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms` (KIP-937), default Long.MAX.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`, default 1 hour since Kafka 4.0.
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy` contains `compact`: records must have keys.
    pub compacted: bool,
    /// Produce v3+ allows exactly one batch per partition
    /// (`ProduceRequest.validateRecords`). Off for callers that append
    /// several batches, e.g. tests or internal writers.
    pub single_batch: bool,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            compacted: false,
            single_batch: true,
        }
    }
}

/// What validation learned about one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// Byte position of the batch inside the validated buffer.
    pub position: usize,
    pub header: BatchHeader,
    /// Max record timestamp, from the records themselves (compressed
    /// batches are decompressed for it).
    pub max_timestamp: i64,
    /// Offset delta (within this batch) of the first record holding
    /// `max_timestamp`.
    pub offset_delta_of_max_timestamp: i32,
    /// True when the records were walked; produce validation now always
    /// walks them (compressed batches after decompression).
    pub records_validated: bool,
}

/// Result of [`validate_produce_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedRecords {
    pub batches: Vec<BatchSummary>,
    pub record_count: i64,
    /// Largest timestamp seen across all batches, `NO_TIMESTAMP` if none.
    pub max_timestamp: i64,
    /// Offset of `max_timestamp` relative to the first offset that will be
    /// assigned to this buffer.
    pub offset_delta_of_max_timestamp: i64,
    pub total_bytes: usize,
    /// Codec of the first compressed batch, `None` when all are uncompressed.
    pub source_compression: Compression,
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
fn frame_batch(buf: &[u8], pos: usize, batch_index: usize) -> Result<usize, RecordError> {
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

/// Validates produce data for one partition before anything is appended.
///
/// Check order follows Kafka so the first reported error matches:
/// request-level framing/magic/one-batch rule, then per batch baseOffset,
/// size, CRC, the LogValidator batch rules, then record-level rules.
pub fn validate_produce_records(
    records: &[u8],
    now_ms: i64,
    cfg: &ValidationConfig,
) -> Result<ValidatedRecords, RecordError> {
    if records.is_empty() {
        return Err(RecordError::NoBatches);
    }
    let mut out = ValidatedRecords {
        batches: Vec::with_capacity(1),
        record_count: 0,
        max_timestamp: NO_TIMESTAMP,
        offset_delta_of_max_timestamp: -1,
        total_bytes: records.len(),
        source_compression: Compression::None,
    };
    let mut pos = 0usize;
    let mut batch_index = 0usize;
    while pos < records.len() {
        let size = frame_batch(records, pos, batch_index)?;
        if batch_index > 0 && cfg.single_batch {
            return Err(RecordError::InvalidBatch {
                batch_index,
                reason: "produce requests may contain exactly one record batch per partition",
                value: batch_index as i64 + 1,
            });
        }
        let batch = &records[pos..pos + size];
        let summary =
            validate_batch(batch, pos, now_ms, cfg).map_err(|e| e.with_batch_index(batch_index))?;
        if summary.max_timestamp > out.max_timestamp {
            out.max_timestamp = summary.max_timestamp;
            out.offset_delta_of_max_timestamp =
                out.record_count + i64::from(summary.offset_delta_of_max_timestamp);
        }
        out.record_count += i64::from(summary.header.records_count);
        if out.source_compression == Compression::None {
            if let Some(c) = summary.header.compression_type() {
                out.source_compression = c;
            }
        }
        out.batches.push(summary);
        pos += size;
        batch_index += 1;
    }
    Ok(out)
}

fn validate_batch(
    batch: &[u8],
    position: usize,
    now_ms: i64,
    cfg: &ValidationConfig,
) -> Result<BatchSummary, RecordError> {
    let h = BatchHeader::parse(batch)?;
    let bad = |reason: &'static str, value: i64| RecordError::InvalidBatch {
        batch_index: 0,
        reason,
        value,
    };
    // The leader assigns offsets, so a client must send baseOffset 0 (UnifiedLog).
    if h.base_offset != 0 {
        return Err(bad(
            "baseOffset of a produced batch must be 0",
            h.base_offset,
        ));
    }
    if batch.len() > cfg.max_message_bytes {
        return Err(RecordError::MessageTooLarge {
            batch_index: 0,
            size: batch.len(),
            max: cfg.max_message_bytes,
        });
    }
    let computed = compute_crc(batch);
    if computed != h.crc {
        return Err(RecordError::CrcMismatch {
            batch_index: 0,
            stored: h.crc,
            computed,
        });
    }
    let codec = h.compression();
    if Compression::from_id(codec).is_none() {
        return Err(RecordError::UnknownCompression {
            batch_index: 0,
            codec,
        });
    }
    // LogValidator.validateBatch (client origin, magic 2).
    let count_from_offsets = i64::from(h.last_offset_delta) + 1;
    if count_from_offsets <= 0 {
        return Err(bad("batch has an invalid offset range", count_from_offsets));
    }
    if h.records_count <= 0 {
        return Err(bad("invalid reported record count", h.records_count.into()));
    }
    if count_from_offsets != i64::from(h.records_count) {
        return Err(bad(
            "lastOffsetDelta + 1 does not match the record count",
            count_from_offsets,
        ));
    }
    if h.is_control() {
        return Err(bad("clients are not allowed to write control records", 0));
    }
    if h.has_producer_id() && h.base_sequence < 0 {
        return Err(bad(
            "invalid sequence number for idempotent batch",
            h.base_sequence.into(),
        ));
    }
    let (max_ts, delta_of_max) = if h.is_compressed() {
        validate_compressed_batch(batch, &h, now_ms, cfg)?
    } else {
        walk_records(&batch[RECORDS_OFFSET..], &h, now_ms, cfg)?
    };
    Ok(BatchSummary {
        position,
        header: h,
        max_timestamp: max_ts,
        offset_delta_of_max_timestamp: delta_of_max,
        records_validated: true,
    })
}

/// Record timestamp range check shared by the record walk and the
/// compressed-batch hook. Mirrors LogValidator.validateTimestamp: under
/// CreateTime a real timestamp must be inside [now - before, now + after];
/// otherwise a producer may not claim LogAppendTime.
fn check_timestamp(
    h: &BatchHeader,
    ts: i64,
    record_index: i32,
    now_ms: i64,
    cfg: &ValidationConfig,
) -> Result<(), RecordError> {
    if cfg.timestamp_type == TimestampType::CreateTime && ts != NO_TIMESTAMP {
        // i128 so that before/after = Long.MAX never overflow.
        let diff = i128::from(now_ms) - i128::from(ts);
        if diff > i128::from(cfg.timestamp_before_max_ms) {
            return Err(RecordError::InvalidTimestamp {
                batch_index: 0,
                record_index,
                timestamp: ts,
                reason: "is older than message.timestamp.before.max.ms allows",
            });
        }
        if -diff > i128::from(cfg.timestamp_after_max_ms) {
            return Err(RecordError::InvalidTimestamp {
                batch_index: 0,
                record_index,
                timestamp: ts,
                reason: "is further in the future than message.timestamp.after.max.ms allows",
            });
        }
    } else if h.timestamp_type_is_log_append() {
        return Err(RecordError::InvalidTimestamp {
            batch_index: 0,
            record_index,
            timestamp: ts,
            reason: "comes from a batch whose producer set the LogAppendTime type",
        });
    }
    Ok(())
}

/// Full validation of a compressed batch (header and CRC already checked):
/// decompress the records section within
/// `decompression_budget(cfg.max_message_bytes)` and walk the records with
/// the same rules as an uncompressed batch (count, exact lengths, offset
/// deltas 0..n-1, keys on compacted topics, per-record timestamps).
/// Returns (max record timestamp, offset delta of its first holder).
///
/// Offset deltas: Kafka's LogValidator does not reject non-consecutive
/// inner offsets of a compressed v2 batch, it rebuilds the batch with fresh
/// offsets (`inPlaceAssignment = false`). kastle stores batches as sent, so
/// it rejects them with INVALID_RECORD exactly as for uncompressed batches;
/// no real client produces such batches.
pub fn validate_compressed_batch(
    batch: &[u8],
    h: &BatchHeader,
    now_ms: i64,
    cfg: &ValidationConfig,
) -> Result<(i64, i32), RecordError> {
    let codec = h
        .compression_type()
        .ok_or(RecordError::UnknownCompression {
            batch_index: 0,
            codec: h.compression(),
        })?;
    let budget = compression::decompression_budget(cfg.max_message_bytes);
    let records = compression::decompress(codec, &batch[RECORDS_OFFSET..], budget)
        .map_err(|e| RecordError::from_compression(e, 0, h.compression()))?;
    walk_records(&records, h, now_ms, cfg)
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
    let codec = h
        .compression_type()
        .ok_or(RecordError::UnknownCompression {
            batch_index: 0,
            codec: h.compression(),
        })?;
    if codec == Compression::None {
        return Ok(Cow::Borrowed(&batch[RECORDS_OFFSET..]));
    }
    compression::decompress(codec, &batch[RECORDS_OFFSET..], budget)
        .map(Cow::Owned)
        .map_err(|e| RecordError::from_compression(e, 0, h.compression()))
}

/// Re-encodes one complete, validated v2 batch with `target_codec`
/// (0 = uncompressed) for topics whose `compression.type` names a codec.
/// Everything in the header is kept (baseOffset, partitionLeaderEpoch,
/// producer id/epoch, baseSequence, transactional bit, timestamp type,
/// base/max timestamp, lastOffsetDelta, recordsCount); the record bytes are
/// kept byte for byte and only the codec bits, batchLength and CRC-32C
/// change. A batch already in the target codec, and a control batch (Kafka
/// never recompresses those), come back unchanged. `budget` bounds the
/// decompression of the source as in validation.
pub fn recompress_batch(
    batch: &[u8],
    target_codec: u8,
    budget: usize,
) -> Result<BytesMut, RecordError> {
    let target = Compression::from_id(target_codec).ok_or(RecordError::UnknownCompression {
        batch_index: 0,
        codec: target_codec,
    })?;
    let h = BatchHeader::parse(batch)?;
    if h.compression() == target_codec || h.is_control() {
        if h.total_size() != batch.len() {
            return Err(RecordError::PartialBatch {
                batch_index: 0,
                position: 0,
                needed: h.total_size(),
                available: batch.len(),
            });
        }
        return Ok(BytesMut::from(batch));
    }
    let records = batch_records(batch, budget)?;
    let encoded = compression::compress(target, &records)
        .map_err(|e| RecordError::from_compression(e, 0, target_codec))?;
    let total = RECORD_BATCH_OVERHEAD + encoded.len();
    let batch_length =
        i32::try_from(total - LOG_OVERHEAD).map_err(|_| RecordError::MessageTooLarge {
            batch_index: 0,
            size: total,
            max: i32::MAX as usize,
        })?;
    let mut out = BytesMut::with_capacity(total);
    out.extend_from_slice(&batch[..RECORDS_OFFSET]);
    out.extend_from_slice(&encoded);
    out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attrs = (h.attributes & !COMPRESSION_CODEC_MASK) | i16::from(target_codec);
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    let crc = compute_crc(&out);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Walks the records section of a batch (as stored, or decompressed): count
/// and byte lengths must match the header exactly, offset deltas must be
/// 0..count (we assign offsets in place and never rewrite records, so a
/// client's deltas are what consumers will see), keys present on compacted
/// topics, timestamps in range. Returns (max record timestamp, offset delta
/// of its first holder).
fn walk_records(
    section: &[u8],
    h: &BatchHeader,
    now_ms: i64,
    cfg: &ValidationConfig,
) -> Result<(i64, i32), RecordError> {
    let mut max_ts = NO_TIMESTAMP;
    let mut delta_of_max = 0i32;
    let invalid = |record_index: i32, reason: &'static str| RecordError::InvalidRecord {
        batch_index: 0,
        record_index,
        reason,
    };
    for (i, r) in (0..).zip(records(section, h.records_count)) {
        let r = r.map_err(|e| invalid(e.index, e.reason))?;
        if r.offset_delta != i {
            return Err(invalid(
                i,
                "record offset delta does not match its position in the batch",
            ));
        }
        if cfg.compacted && r.key.is_none() {
            return Err(invalid(
                i,
                "compacted topic cannot accept a record without a key",
            ));
        }
        let ts = if h.timestamp_type_is_log_append() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(r.timestamp_delta)
        };
        check_timestamp(h, ts, i, now_ms, cfg)?;
        if ts > max_ts {
            max_ts = ts;
            delta_of_max = i;
        }
    }
    Ok((max_ts, delta_of_max))
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

/// Sets each batch's baseOffset consecutively starting at `first_offset`
/// and returns the last offset assigned. baseOffset lies outside the CRC,
/// so nothing is recomputed. The buffer is framed first so a malformed
/// buffer is left untouched.
pub fn assign_offsets(buf: &mut [u8], first_offset: i64) -> Result<i64, RecordError> {
    frame_all(buf)?;
    let mut next = first_offset;
    let mut pos = 0;
    while pos < buf.len() {
        let size = be_i32(buf, pos + BATCH_LENGTH_OFFSET) as usize + LOG_OVERHEAD;
        let delta = be_i32(buf, pos + LAST_OFFSET_DELTA_OFFSET);
        buf[pos..pos + 8].copy_from_slice(&next.to_be_bytes());
        next = next.wrapping_add(i64::from(delta)).wrapping_add(1);
        pos += size;
    }
    Ok(next - 1)
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
/// before the CRC-covered range (@21..), so the CRC stays valid.
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
    let h = BatchHeader::parse(batch)?;
    let records = match batch_records(batch, MAX_DECOMPRESSION_BUDGET) {
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
mod tests {
    use super::*;
    use crate::record::builder::BatchBuilder;

    const NOW: i64 = 1_700_000_000_000;

    fn batch(n: usize) -> Vec<u8> {
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

    fn multi_cfg() -> ValidationConfig {
        ValidationConfig {
            single_batch: false,
            ..ValidationConfig::default()
        }
    }

    fn code(r: Result<ValidatedRecords, RecordError>) -> i16 {
        r.expect_err("should fail").kafka_error_code()
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
    fn validates_good_batches() {
        let mut buf = batch(3);
        buf.extend_from_slice(&batch(2));
        let v = validate_produce_records(&buf, NOW, &multi_cfg()).unwrap();
        assert_eq!(v.batches.len(), 2);
        assert_eq!(v.record_count, 5);
        assert_eq!(v.max_timestamp, NOW + 2);
        assert_eq!(v.offset_delta_of_max_timestamp, 2);
        assert_eq!(v.batches[1].position, batch(3).len());
        assert!(v.batches.iter().all(|b| b.records_validated));
    }

    #[test]
    fn single_batch_rule_for_produce() {
        let mut buf = batch(1);
        buf.extend_from_slice(&batch(1));
        assert_eq!(
            code(validate_produce_records(
                &buf,
                NOW,
                &ValidationConfig::default()
            )),
            87
        );
        assert_eq!(
            code(validate_produce_records(
                &[],
                NOW,
                &ValidationConfig::default()
            )),
            87
        );
    }

    #[test]
    fn crc_flip_is_corrupt_message() {
        let mut b = batch(2);
        let last = b.len() - 1;
        b[last] ^= 0x01;
        let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
        assert!(matches!(err, RecordError::CrcMismatch { .. }));
        assert_eq!(err.kafka_error_code(), 2);
    }

    #[test]
    fn partial_trailing_batch_rejected() {
        let mut buf = batch(2);
        let second = batch(2);
        buf.extend_from_slice(&second[..second.len() - 5]);
        let err = validate_produce_records(&buf, NOW, &multi_cfg()).unwrap_err();
        assert!(
            matches!(err, RecordError::PartialBatch { batch_index: 1, .. }),
            "{err}"
        );
        assert_eq!(err.kafka_error_code(), 87);
        // A few stray bytes that do not even hold a length.
        let mut buf = batch(1);
        buf.extend_from_slice(&[0, 0, 0]);
        assert_eq!(code(validate_produce_records(&buf, NOW, &multi_cfg())), 87);
    }

    #[test]
    fn magic_and_size_errors() {
        let mut b = batch(1);
        b[MAGIC_OFFSET] = 1;
        let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
        assert!(matches!(
            err,
            RecordError::UnsupportedMagic { magic: 1, .. }
        ));
        assert_eq!(err.kafka_error_code(), 87);
        b[MAGIC_OFFSET] = 7;
        assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 2);
        let mut b = batch(1);
        b[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(
            validate_produce_records(&b, NOW, &multi_cfg()),
            Err(RecordError::BatchTooSmall { .. })
        ));
    }

    #[test]
    fn message_too_large() {
        let b = batch(10);
        let cfg = ValidationConfig {
            max_message_bytes: b.len() - 1,
            ..multi_cfg()
        };
        let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
        assert_eq!(err.kafka_error_code(), 10);
        let cfg = ValidationConfig {
            max_message_bytes: b.len(),
            ..multi_cfg()
        };
        assert!(validate_produce_records(&b, NOW, &cfg).is_ok());
    }

    /// Rewrites a field and fixes the CRC so only the intended check fires.
    fn patch(b: &mut [u8], at: usize, bytes: &[u8]) {
        b[at..at + bytes.len()].copy_from_slice(bytes);
        let crc = compute_crc(b);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn record_walk_count_and_length_mismatch() {
        // Count says 4, only 3 records present.
        let mut b = batch(3);
        patch(&mut b, RECORDS_COUNT_OFFSET, &4i32.to_be_bytes());
        patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &3i32.to_be_bytes());
        let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::InvalidRecord {
                    record_index: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.kafka_error_code(), 87);
        // Count says 2, 3 present: bytes remain.
        let mut b = batch(3);
        patch(&mut b, RECORDS_COUNT_OFFSET, &2i32.to_be_bytes());
        patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &1i32.to_be_bytes());
        let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
        assert!(matches!(err, RecordError::InvalidRecord { .. }), "{err}");
        // lastOffsetDelta inconsistent with count.
        let mut b = batch(3);
        patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &5i32.to_be_bytes());
        assert!(matches!(
            validate_produce_records(&b, NOW, &multi_cfg()),
            Err(RecordError::InvalidBatch { .. })
        ));
        // Zero records.
        let mut b = batch(1);
        patch(&mut b, RECORDS_COUNT_OFFSET, &0i32.to_be_bytes());
        assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
        // First record's length prefix grown by one: it now swallows a byte of the next.
        let mut b = batch(2);
        let mut p = 0;
        let len = crate::record::varint::read_varint(&b[RECORDS_OFFSET..], &mut p).unwrap();
        assert!(len < 63);
        patch(&mut b, RECORDS_OFFSET, &[((len + 1) * 2) as u8]);
        assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
    }

    #[test]
    fn offset_delta_must_match_index() {
        let b = BatchBuilder::new(NOW)
            .push_record(0, NOW, Some(b"a"), Some(b"1"), &[])
            .push_record(5, NOW, Some(b"b"), Some(b"2"), &[])
            .build();
        let mut b = b.to_vec();
        patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &1i32.to_be_bytes());
        let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::InvalidRecord {
                    record_index: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn batch_level_rules() {
        let mut b = batch(1);
        patch(&mut b, BASE_OFFSET_OFFSET, &7i64.to_be_bytes());
        assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
        let b = BatchBuilder::new(NOW)
            .control(true)
            .push(None, None, &[], NOW)
            .build();
        assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
        let b = BatchBuilder::new(NOW)
            .producer(42, 0, -1)
            .push(None, Some(b"v"), &[], NOW)
            .build();
        assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
        let mut b = batch(1).to_vec();
        patch(&mut b, ATTRIBUTES_OFFSET, &6i16.to_be_bytes());
        assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 2);
        let cfg = ValidationConfig {
            compacted: true,
            ..multi_cfg()
        };
        let b = BatchBuilder::new(NOW)
            .push(None, Some(b"v"), &[], NOW)
            .build();
        assert_eq!(code(validate_produce_records(&b, NOW, &cfg)), 87);
    }

    #[test]
    fn timestamps() {
        let cfg = multi_cfg();
        let future = BatchBuilder::new(NOW)
            .push(None, Some(b"v"), &[], NOW + 3_600_001)
            .build();
        let err = validate_produce_records(&future, NOW, &cfg).unwrap_err();
        assert_eq!(err.kafka_error_code(), 32);
        assert_eq!(err.record_index(), Some(0));
        let ok = BatchBuilder::new(NOW)
            .push(None, Some(b"v"), &[], NOW + 3_600_000)
            .build();
        assert!(validate_produce_records(&ok, NOW, &cfg).is_ok());
        // Long.MAX "before" default: ancient timestamps are fine.
        let old = BatchBuilder::new(0).push(None, Some(b"v"), &[], 0).build();
        assert!(validate_produce_records(&old, NOW, &cfg).is_ok());
        let strict = ValidationConfig {
            timestamp_before_max_ms: 1000,
            ..multi_cfg()
        };
        assert_eq!(code(validate_produce_records(&old, NOW, &strict)), 32);
        // NO_TIMESTAMP is never range-checked.
        let none = BatchBuilder::new(-1)
            .push(None, Some(b"v"), &[], -1)
            .build();
        assert!(validate_produce_records(&none, NOW, &strict).is_ok());
        // Producer claiming LogAppendTime on a LogAppendTime topic.
        let mut lat = ok.to_vec();
        set_log_append_time(&mut lat, NOW).unwrap();
        let topic_lat = ValidationConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..multi_cfg()
        };
        assert_eq!(code(validate_produce_records(&lat, NOW, &topic_lat)), 32);
        // Future timestamps are fine on a LogAppendTime topic.
        assert!(validate_produce_records(&future, NOW, &topic_lat).is_ok());
    }

    fn compressed(n: usize) -> BatchBuilder {
        let mut b = BatchBuilder::new(NOW)
            .producer(7, 3, 11)
            .transactional(true);
        for i in 0..n {
            // Max timestamp on record 2, twice, so the first holder counts.
            let ts = NOW + [5, 1, 9, 9, 0][i % 5];
            b = b.push(
                Some(format!("k{i}").as_bytes()),
                Some(format!("value {i} ").repeat(20).as_bytes()),
                &[("h", b"x")],
                ts,
            );
        }
        b
    }

    #[test]
    fn compressed_batches_are_fully_validated() {
        for codec in 1..=4u8 {
            let b = compressed(5).build_compressed(codec);
            assert!(b.len() < compressed(5).build().len(), "codec {codec}");
            let v = validate_produce_records(&b, NOW, &multi_cfg()).unwrap();
            let s = v.batches[0];
            assert!(s.records_validated);
            assert_eq!(
                (s.max_timestamp, s.offset_delta_of_max_timestamp),
                (NOW + 9, 2)
            );
            assert_eq!(
                (v.max_timestamp, v.offset_delta_of_max_timestamp),
                (NOW + 9, 2)
            );
            assert_eq!(v.source_compression, Compression::from_id(codec).unwrap());
            let RecordTimestamps::Records(it) = record_timestamps(&b).unwrap() else {
                panic!("codec {codec}: records should be available")
            };
            let ts: Vec<_> = it.map(|r| r.unwrap().timestamp - NOW).collect();
            assert_eq!(ts, vec![5, 1, 9, 9, 0]);
        }
    }

    /// Replaces a compressed batch's records section and fixes
    /// batchLength and CRC, so only the record-level check can fire.
    fn with_records(b: &[u8], records: &[u8]) -> Vec<u8> {
        let mut out = b[..RECORDS_OFFSET].to_vec();
        out.extend_from_slice(records);
        let len = (out.len() - LOG_OVERHEAD) as i32;
        out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&len.to_be_bytes());
        let crc = compute_crc(&out);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn compressed_record_rules() {
        let cfg = multi_cfg();
        // Header says 4 records, stream holds 3.
        let mut b = compressed(3).build_compressed(4).to_vec();
        patch(&mut b, RECORDS_COUNT_OFFSET, &4i32.to_be_bytes());
        patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &3i32.to_be_bytes());
        let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::InvalidRecord {
                    record_index: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.kafka_error_code(), 87);
        // Header says 2, stream holds 3: bytes remain.
        let mut b = compressed(3).build_compressed(1).to_vec();
        patch(&mut b, RECORDS_COUNT_OFFSET, &2i32.to_be_bytes());
        patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &1i32.to_be_bytes());
        assert_eq!(code(validate_produce_records(&b, NOW, &cfg)), 87);
        // Inner offsets must be 0..n-1.
        let mut b = BatchBuilder::new(NOW)
            .push_record(0, NOW, Some(b"a"), Some(b"1"), &[])
            .push_record(2, NOW, Some(b"b"), Some(b"2"), &[])
            .build_compressed(2)
            .to_vec();
        patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &1i32.to_be_bytes());
        let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::InvalidRecord {
                    record_index: 1,
                    ..
                }
            ),
            "{err}"
        );
        // Keys on compacted topics.
        let b = BatchBuilder::new(NOW)
            .push(Some(b"k"), Some(b"v"), &[], NOW)
            .push(None, Some(b"v"), &[], NOW)
            .build_compressed(3);
        let compacted = ValidationConfig {
            compacted: true,
            ..multi_cfg()
        };
        let err = validate_produce_records(&b, NOW, &compacted).unwrap_err();
        assert_eq!((err.kafka_error_code(), err.record_index()), (87, Some(1)));
        assert!(validate_produce_records(&b, NOW, &cfg).is_ok());
        // Per-record timestamps, not just the header's.
        let b = BatchBuilder::new(NOW)
            .push(None, Some(b"v"), &[], NOW)
            .push(None, Some(b"v"), &[], NOW + 3_600_001)
            .push(None, Some(b"v"), &[], NOW)
            .build_compressed(4);
        let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
        assert_eq!((err.kafka_error_code(), err.record_index()), (32, Some(1)));
    }

    #[test]
    fn undecodable_compressed_payloads() {
        let cfg = multi_cfg();
        for codec in 1..=4u8 {
            let good = compressed(5).build_compressed(codec);
            // Truncated stream, CRC recomputed so it is the codec that fails.
            let records = &good[RECORDS_OFFSET..];
            let cut = with_records(&good, &records[..records.len() / 2]);
            let err = validate_produce_records(&cut, NOW, &cfg).unwrap_err();
            assert_eq!(err.kafka_error_code(), 87, "codec {codec}: {err}");
            // Garbage.
            let junk: Vec<u8> = (0..300u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
                .collect();
            let bad = with_records(&good, &junk);
            let err = validate_produce_records(&bad, NOW, &cfg).unwrap_err();
            assert!(
                matches!(err, RecordError::Decompression { .. }),
                "codec {codec}: {err}"
            );
            assert_eq!(err.kafka_error_code(), 87);
            // ListOffsets falls back to batch level instead of failing.
            assert!(matches!(
                record_timestamps(&bad).unwrap(),
                RecordTimestamps::NotAvailable
            ));
        }
        // A batch whose records only carry the codec bits is not a stream either.
        let b = BatchBuilder::new(NOW)
            .compression_codec(4)
            .push(Some(b"k"), Some(b"v"), &[], NOW)
            .build();
        assert_eq!(code(validate_produce_records(&b, NOW, &cfg)), 87);
    }

    #[test]
    fn compressed_batch_over_budget_is_message_too_large() {
        // 20 MiB of records, a few KiB compressed; max.message.bytes 100 kB
        // gives the 16 MiB budget floor.
        let zeros = vec![0u8; 1 << 20];
        let mut b = BatchBuilder::new(NOW);
        for _ in 0..20 {
            b = b.push(None, Some(&zeros), &[], NOW);
        }
        let b = b.build_compressed(4);
        assert!(b.len() < 100_000);
        let cfg = ValidationConfig {
            max_message_bytes: 100_000,
            ..multi_cfg()
        };
        let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
        assert!(
            matches!(
                err,
                RecordError::DecompressedTooLarge {
                    budget: 16_777_216,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.kafka_error_code(), 10);
        // With the default max.message.bytes (64 MiB budget) it is fine.
        assert!(validate_produce_records(&b, NOW, &multi_cfg()).is_ok());
    }

    #[test]
    fn recompress_preserves_everything_but_codec() {
        let src = compressed(5).build_compressed(1);
        let sh = BatchHeader::parse(&src).unwrap();
        let src_records = batch_records(&src, 1 << 20).unwrap().into_owned();
        for target in [4u8, 0, 2, 3] {
            let out = recompress_batch(&src, target, 1 << 20).unwrap();
            let h = BatchHeader::parse(&out).unwrap();
            assert!(verify_crc(&out), "target {target}");
            assert_eq!(h.total_size(), out.len());
            assert_eq!(h.compression(), target);
            assert_eq!(
                (
                    h.base_offset,
                    h.partition_leader_epoch,
                    h.producer_id,
                    h.producer_epoch
                ),
                (
                    sh.base_offset,
                    sh.partition_leader_epoch,
                    sh.producer_id,
                    sh.producer_epoch
                )
            );
            assert_eq!(
                (h.base_sequence, h.last_offset_delta, h.records_count),
                (sh.base_sequence, sh.last_offset_delta, sh.records_count)
            );
            assert_eq!(
                (h.base_timestamp, h.max_timestamp),
                (sh.base_timestamp, sh.max_timestamp)
            );
            assert_eq!(
                h.attributes & !COMPRESSION_CODEC_MASK,
                sh.attributes & !COMPRESSION_CODEC_MASK
            );
            assert!(h.is_transactional());
            assert_eq!(batch_records(&out, 1 << 20).unwrap(), src_records);
            let v = validate_produce_records(&out, NOW, &multi_cfg()).unwrap();
            assert_eq!(v.record_count, 5);
        }
        // Same codec: unchanged bytes.
        assert_eq!(recompress_batch(&src, 1, 1 << 20).unwrap(), src);
        // Control batches pass through untouched.
        let ctl = BatchBuilder::new(NOW)
            .control(true)
            .push(None, None, &[], NOW)
            .build();
        assert_eq!(recompress_batch(&ctl, 4, 1 << 20).unwrap(), ctl);
        // Budget applies to the source; unknown target refused.
        assert_eq!(
            recompress_batch(&src, 4, 10)
                .unwrap_err()
                .kafka_error_code(),
            10
        );
        assert!(matches!(
            recompress_batch(&src, 6, 1 << 20),
            Err(RecordError::UnknownCompression { codec: 6, .. })
        ));
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
