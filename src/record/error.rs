//! Why record bytes are rejected: [`RecordError`], with the batch (and
//! record) it concerns and the Kafka error code a produce response carries
//! for it (Kafka's `InvalidRecordException`, `CorruptRecordException`,
//! `RecordTooLargeException`, ... mapped to their codes); and
//! [`RecordFault`], what is wrong with one record of an otherwise sound
//! batch (Kafka's per-record `RecordError`s of KIP-467, with their texts).

use std::fmt;

use super::batch::MIN_BATCH_LENGTH;
use super::compression::CompressionError;

/// Kafka error codes this module can produce.
pub mod error_codes {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TIMESTAMP: i16 = 32;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const INVALID_RECORD: i16 = 87;
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
    InvalidMagic { batch_index: usize, magic: i8 },
    /// Message format v0/v1: rejected on produce v3+ (Kafka 4 accepts nothing else).
    UnsupportedMagic { batch_index: usize, magic: i8 },
    CrcMismatch {
        batch_index: usize,
        stored: u32,
        computed: u32,
    },
    /// Compression codec id 5..=7, which no codec has.
    UnknownCompression { batch_index: usize, codec: u8 },
    /// A batchLength whose batch size (length + 12) passes `i32::MAX`:
    /// Kafka's batch iterator computes that size in an `int`, which turns
    /// negative, and fails on it with an unexpected exception.
    BatchSizeOverflow {
        batch_index: usize,
        batch_length: i32,
    },
    MessageTooLarge {
        batch_index: usize,
        size: usize,
        max: usize,
    },
    /// Produce v3+ carries exactly one batch per partition
    /// (`ProduceRequest.validateRecords`); this one has `count`.
    NotOneBatch { batch_index: usize, count: usize },
    /// A batch-level rule of Kafka's LogValidator was violated.
    InvalidBatch {
        batch_index: usize,
        reason: &'static str,
        value: i64,
    },
    /// The record structure inside a batch is malformed (lengths, counts,
    /// offset deltas): the batch cannot be read as records at all.
    InvalidRecord {
        batch_index: usize,
        record_index: i32,
        reason: &'static str,
    },
    /// Records that are well formed but refused (keyless on a compacted
    /// topic, timestamp out of range): every such record of the batch, by
    /// its index, as Kafka's `RecordValidationException` lists them.
    InvalidRecords {
        batch_index: usize,
        faults: Vec<(i32, RecordFault)>,
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
    DecompressedTooLarge { batch_index: usize, budget: usize },
    /// A codec the request version may not use (ZSTD before produce v7).
    UnsupportedCompressionType { batch_index: usize, codec: u8 },
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
            | RecordError::NotOneBatch { .. }
            | RecordError::InvalidBatch { .. }
            | RecordError::InvalidRecord { .. } => INVALID_RECORD,
            // LogValidator.processRecordErrors: INVALID_TIMESTAMP as soon
            // as one record has a bad timestamp.
            RecordError::InvalidRecords { faults, .. } => {
                if faults.iter().any(|(_, f)| f.is_timestamp()) {
                    INVALID_TIMESTAMP
                } else {
                    INVALID_RECORD
                }
            }
            RecordError::BatchTooSmall { .. }
            | RecordError::InvalidMagic { .. }
            | RecordError::CrcMismatch { .. } => CORRUPT_MESSAGE,
            // Kafka's `CompressionType.forId` and its batch iterator throw
            // exceptions no error code names.
            RecordError::UnknownCompression { .. } | RecordError::BatchSizeOverflow { .. } => {
                UNKNOWN_SERVER_ERROR
            }
            RecordError::MessageTooLarge { .. } => MESSAGE_TOO_LARGE,
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

    /// The refused records (index in the batch, why), for a produce
    /// response's `record_errors`; empty for errors of the batch as a whole.
    pub fn record_faults(&self) -> &[(i32, RecordFault)] {
        match self {
            RecordError::InvalidRecords { faults, .. } => faults,
            _ => &[],
        }
    }

    /// Kafka's `errorMessage` for refused records on `topic`-`partition`
    /// (`LogValidator.processRecordErrors`); None for other errors, whose
    /// produce answer carries no message in Kafka.
    pub fn kafka_record_errors_message(&self, topic: &str, partition: i32) -> Option<String> {
        let faults = self.record_faults();
        if faults.is_empty() {
            return None;
        }
        if faults.iter().any(|(_, f)| f.is_timestamp()) {
            return Some("One or more records have been rejected due to invalid timestamp".into());
        }
        let shown: Vec<String> = faults
            .iter()
            .take(3)
            .map(|(i, f)| {
                format!(
                    "RecordError(batchIndex={i}, message='{}')",
                    f.kafka_message(topic, partition)
                )
            })
            .collect();
        Some(format!(
            "One or more records have been rejected due to {} record errors in total, and only \
             showing the first three errors at most: [{}]",
            faults.len(),
            shown.join(", ")
        ))
    }

    /// The same error, attributed to batch `idx` of the request.
    pub(crate) fn with_batch_index(mut self, idx: usize) -> RecordError {
        match &mut self {
            RecordError::NoBatches => {}
            RecordError::PartialBatch { batch_index, .. }
            | RecordError::BatchTooSmall { batch_index, .. }
            | RecordError::InvalidMagic { batch_index, .. }
            | RecordError::UnsupportedMagic { batch_index, .. }
            | RecordError::CrcMismatch { batch_index, .. }
            | RecordError::UnknownCompression { batch_index, .. }
            | RecordError::BatchSizeOverflow { batch_index, .. }
            | RecordError::MessageTooLarge { batch_index, .. }
            | RecordError::NotOneBatch { batch_index, .. }
            | RecordError::InvalidBatch { batch_index, .. }
            | RecordError::InvalidRecord { batch_index, .. }
            | RecordError::InvalidRecords { batch_index, .. }
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
            RecordError::BatchSizeOverflow { batch_index, batch_length } => write!(
                f,
                "batch {batch_index}: batchLength {batch_length} makes a batch size beyond 2^31-1"
            ),
            RecordError::MessageTooLarge { batch_index, size, max } => write!(
                f,
                "batch {batch_index} is {size} bytes which exceeds the maximum configured value of {max}"
            ),
            RecordError::NotOneBatch { batch_index, count } => write!(
                f,
                "batch {batch_index}: produce requests may contain exactly one record batch per partition, found {count}"
            ),
            RecordError::InvalidBatch { batch_index, reason, value } => {
                write!(f, "batch {batch_index}: {reason} (value {value})")
            }
            RecordError::InvalidRecord { batch_index, record_index, reason } => {
                write!(f, "batch {batch_index}, record {record_index}: {reason}")
            }
            RecordError::InvalidRecords { batch_index, faults } => {
                write!(f, "batch {batch_index}: {} invalid records:", faults.len())?;
                for (i, fault) in faults.iter().take(3) {
                    write!(f, " record {i}: {fault};")?;
                }
                Ok(())
            }
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

/// What is wrong with one well-formed record (Kafka's
/// `LogValidator.validateRecord`: the key first, then the timestamp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFault {
    /// A record without a key on a compacted topic.
    MissingKey,
    /// A CreateTime timestamp outside `[lower, upper]` = `[now -
    /// message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]`
    /// (computed with Java's wrapping arithmetic, as Kafka prints it).
    /// `offset` is the record's offset before assignment (Kafka's
    /// `record.offset()`, base offset 0 plus its delta).
    TimestampOutOfRange {
        timestamp: i64,
        offset: i64,
        lower: i64,
        upper: i64,
    },
    /// The producer marked its batch LogAppendTime, which only the broker may.
    LogAppendTimeType {
        offset: i64,
        timestamp: i64,
        key_len: usize,
        value_len: usize,
    },
}

impl RecordFault {
    pub fn is_timestamp(&self) -> bool {
        !matches!(self, RecordFault::MissingKey)
    }

    /// Kafka's text for this record's `record_errors` entry on partition
    /// `topic`-`partition`.
    pub fn kafka_message(&self, topic: &str, partition: i32) -> String {
        match self {
            RecordFault::MissingKey => format!(
                "Compacted topic cannot accept message without key in topic partition {topic}-{partition}"
            ),
            RecordFault::TimestampOutOfRange { timestamp, offset, lower, upper } => format!(
                "Timestamp {timestamp} of message with offset {offset} is out of range. \
                 The timestamp should be within [{lower}, {upper}]"
            ),
            RecordFault::LogAppendTimeType { offset, timestamp, key_len, value_len } => format!(
                "Invalid timestamp type in message DefaultRecord(offset={offset}, timestamp={timestamp}, \
                 key={key_len} bytes, value={value_len} bytes). Producer should not set timestamp type to LogAppendTime."
            ),
        }
    }
}

impl fmt::Display for RecordFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordFault::MissingKey => {
                f.write_str("compacted topic cannot accept a record without a key")
            }
            RecordFault::TimestampOutOfRange {
                timestamp,
                lower,
                upper,
                ..
            } => {
                write!(f, "timestamp {timestamp} is outside [{lower}, {upper}]")
            }
            RecordFault::LogAppendTimeType { .. } => {
                f.write_str("the producer set the LogAppendTime timestamp type")
            }
        }
    }
}
