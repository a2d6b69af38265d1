//! Why record bytes are rejected: [`RecordError`], with the batch (and
//! record) it concerns and the Kafka error code a produce response carries
//! for it (Kafka's `InvalidRecordException`, `CorruptRecordException`,
//! `RecordTooLargeException`, ... mapped to their codes).

use std::fmt;

use super::batch::MIN_BATCH_LENGTH;
use super::compression::CompressionError;

/// Kafka error codes this module can produce.
pub mod error_codes {
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
