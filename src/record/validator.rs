//! Produce-side validation (Kafka's `LogValidator`, with the request-level
//! checks of `ProduceRequest.validateRecords` and
//! `UnifiedLog.analyzeAndValidateRecords`): framing, magic, CRC-32C, the
//! batch rules, every record (compressed batches are decompressed within a
//! budget first) and timestamps; and the re-encoding a topic's
//! `compression.type` asks for. Nothing is appended before a partition's
//! data passed all of it.

use bytes::BytesMut;

use super::batch::{
    batch_records, be_i16, be_i32, be_i64, compute_crc, frame_batch, BatchHeader, Compression,
    ATTRIBUTES_OFFSET, BASE_SEQUENCE_OFFSET, BATCH_LENGTH_OFFSET, COMPRESSION_CODEC_MASK,
    CRC_OFFSET, CURRENT_MAGIC, LOG_OVERHEAD, MAGIC_OFFSET, NO_TIMESTAMP, PRODUCER_EPOCH_OFFSET,
    PRODUCER_ID_OFFSET, RECORDS_OFFSET, RECORD_BATCH_OVERHEAD, TRANSACTIONAL_FLAG_MASK,
};
use super::compression;
use super::default_record::{records, Record};
use super::error::{RecordError, RecordFault};

/// The topic's `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

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

/// Kafka's `ProduceRequest.validateRecords`: the request-level rule
/// KafkaApis applies to each partition's data before the acks and the log
/// are looked at. At least one whole batch, the first of magic 2, zstd only
/// from Produce v7, and no second whole batch (a trailing partial batch is
/// not one: Kafka's batch iterator stops before it). Framed as Kafka's
/// iterator frames (`iterated_batch_size`), looser than the log's
/// `frame_batch`: a batch too short for its header passes here and is
/// CORRUPT_MESSAGE in the log's validation, after the acks.
///
/// The codec is read only below v7 (for the zstd rule), where an unknown id
/// (5..=7) throws an exception that fails the whole request
/// (`UnknownCompression`, see [`fails_whole_request`]); from v7 the log
/// refuses it. A second batch whose size overflows fails the whole request
/// too (`BatchSizeOverflow`).
pub fn validate_produce_shape(records: &[u8], version: i16) -> Result<(), RecordError> {
    let Some(size) = iterated_batch_size(records, 0, 0)? else {
        return Err(RecordError::NoBatches);
    };
    let magic = records[MAGIC_OFFSET] as i8;
    if magic != CURRENT_MAGIC {
        return Err(RecordError::UnsupportedMagic {
            batch_index: 0,
            magic,
        });
    }
    // The iterator's smallest batch (26 bytes) holds the attributes.
    let codec = (be_i16(records, ATTRIBUTES_OFFSET) & COMPRESSION_CODEC_MASK) as u8;
    if version < 7 {
        if Compression::from_id(codec).is_none() {
            return Err(RecordError::UnknownCompression {
                batch_index: 0,
                codec,
            });
        }
        if !compression::codec_allowed_for_produce_version(codec, version) {
            return Err(RecordError::UnsupportedCompressionType {
                batch_index: 0,
                codec,
            });
        }
    }
    match iterated_batch_size(records, size, 1)? {
        None => Ok(()),
        Some(_) => Err(RecordError::NotOneBatch {
            batch_index: 1,
            count: 2,
        }),
    }
}

/// Whether record data refused by [`validate_produce_shape`] fails the whole
/// request rather than its partition: Kafka evaluates it outside its
/// per-partition handling, so an exception that is no `ApiException` (an
/// unknown codec id below v7, a batch size that overflows) is answered
/// UNKNOWN_SERVER_ERROR, without message, for every partition.
pub fn fails_whole_request(e: &RecordError) -> bool {
    matches!(
        e,
        RecordError::UnknownCompression { .. } | RecordError::BatchSizeOverflow { .. }
    )
}

/// Why Kafka's first look ([`first_batches_transactional`]) fails a whole
/// produce request: its error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeRequestRefusal {
    pub code: i16,
    pub message: Option<String>,
}

/// Kafka's `RequestUtils.hasTransactionalRecords`, its first look at a
/// produce request: the first batch of each partition's data, in request
/// order, until one is transactional. Framing happens here, outside any
/// per-partition handling, so the iterator's refusal (a length below 14,
/// an unknown magic) fails the whole request, CORRUPT_MESSAGE with its
/// message, and so does a length whose batch size overflows an `int`
/// (UNKNOWN_SERVER_ERROR, no message).
pub fn first_batches_transactional<'a>(
    data: impl IntoIterator<Item = &'a [u8]>,
) -> Result<bool, WholeRequestRefusal> {
    let corrupt = |message: String| WholeRequestRefusal {
        code: super::error::error_codes::CORRUPT_MESSAGE,
        message: Some(message),
    };
    for records in data {
        match iterated_batch_size(records, 0, 0) {
            Ok(Some(_)) if be_i16(records, ATTRIBUTES_OFFSET) & TRANSACTIONAL_FLAG_MASK != 0 => {
                return Ok(true)
            }
            Ok(_) => {}
            Err(RecordError::BatchTooSmall { batch_length, .. }) => {
                return Err(corrupt(format!(
                    "Record size {batch_length} is less than the minimum record overhead (14)"
                )))
            }
            Err(RecordError::InvalidMagic { magic, .. }) => {
                return Err(corrupt(format!("Invalid magic found in record: {magic}")))
            }
            Err(e) => {
                return Err(WholeRequestRefusal {
                    code: e.kafka_error_code(),
                    message: None,
                })
            }
        }
    }
    Ok(false)
}

/// The producer of a transactional batch, as its KIP-890 verification
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionalProducer {
    pub producer_id: i64,
    pub epoch: i16,
    /// The batch's base sequence (Kafka's `records.firstBatch.baseSequence`),
    /// which the partition's verification notes.
    pub base_sequence: i32,
}

/// The producer id, epoch and base sequence of a transactional first batch
/// that carries a producer id (Kafka's `handleProduceAppend`:
/// `hasProducerId && isTransactional`, control batches included), read as
/// Kafka reads them: from the batch its iterator frames, which may be
/// shorter than a batch header (the fields must be there, see
/// [`producer_fields_unreadable`]). These batches are verified with the
/// transaction coordinator, and all of a request's must share one producer
/// id and epoch.
pub fn transactional_producer(records: &[u8]) -> Option<TransactionalProducer> {
    let Ok(Some(size)) = iterated_batch_size(records, 0, 0) else {
        return None;
    };
    if size < BASE_SEQUENCE_OFFSET + 4 {
        return None;
    }
    let producer_id = be_i64(records, PRODUCER_ID_OFFSET);
    (be_i16(records, ATTRIBUTES_OFFSET) & TRANSACTIONAL_FLAG_MASK != 0 && producer_id >= 0).then(
        || TransactionalProducer {
            producer_id,
            epoch: be_i16(records, PRODUCER_EPOCH_OFFSET),
            base_sequence: be_i32(records, BASE_SEQUENCE_OFFSET),
        },
    )
}

/// Whether the first batch of data `validate_produce_shape` accepted is too
/// short for the fields Kafka reads of every partition before the acks
/// (`ReplicaManager.handleProduceAppend`): the producer id (`hasProducerId`),
/// and for a transactional batch with one its epoch and base sequence. Past
/// the buffer's end that throws, and the whole request is answered
/// UNKNOWN_SERVER_ERROR.
pub fn producer_fields_unreadable(records: &[u8]) -> bool {
    let Ok(Some(size)) = iterated_batch_size(records, 0, 0) else {
        return false;
    };
    if size < PRODUCER_ID_OFFSET + 8 {
        return true;
    }
    let transactional = be_i16(records, ATTRIBUTES_OFFSET) & TRANSACTIONAL_FLAG_MASK != 0;
    transactional && be_i64(records, PRODUCER_ID_OFFSET) >= 0 && size < BASE_SEQUENCE_OFFSET + 4
}

/// Kafka's `ByteBufferLogInputStream.nextBatch` over a produce request's
/// records: the whole size of the batch at `pos`, or `None` where the
/// iterator stops (too few bytes for the batch it announces). A length
/// below the legacy record overhead (14) or an unknown magic is corrupt; a
/// length whose size (length + 12) passes `i32::MAX` makes Kafka's `int`
/// size negative, which its iterator fails on (`BatchSizeOverflow`).
fn iterated_batch_size(
    records: &[u8],
    pos: usize,
    batch_index: usize,
) -> Result<Option<usize>, RecordError> {
    /// `LegacyRecord.RECORD_OVERHEAD_V0`: the shortest length the iterator takes.
    const MIN_ITERATED_LENGTH: i32 = 14;
    let rest = &records[pos..];
    if rest.len() < LOG_OVERHEAD {
        return Ok(None);
    }
    let batch_length = be_i32(rest, BATCH_LENGTH_OFFSET);
    if batch_length < MIN_ITERATED_LENGTH {
        return Err(RecordError::BatchTooSmall {
            batch_index,
            batch_length,
        });
    }
    if rest.len() <= MAGIC_OFFSET {
        return Ok(None);
    }
    let magic = rest[MAGIC_OFFSET] as i8;
    if !(0..=CURRENT_MAGIC).contains(&magic) {
        return Err(RecordError::InvalidMagic { batch_index, magic });
    }
    if batch_length > i32::MAX - LOG_OVERHEAD as i32 {
        return Err(RecordError::BatchSizeOverflow {
            batch_index,
            batch_length,
        });
    }
    let size = batch_length as usize + LOG_OVERHEAD;
    Ok((size <= rest.len()).then_some(size))
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
            return Err(RecordError::NotOneBatch {
                batch_index,
                count: batch_index + 1,
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

/// What is wrong with one well-formed record, if anything (Kafka's
/// `LogValidator.validateRecord`): on a compacted topic the key, then the
/// timestamp (LogValidator.validateTimestamp): under CreateTime a real
/// timestamp must be inside [now - before, now + after]; otherwise a
/// producer may not claim LogAppendTime. `ts` is the record's timestamp,
/// `offset_delta` its position.
fn record_fault(
    h: &BatchHeader,
    r: &Record<'_>,
    ts: i64,
    now_ms: i64,
    cfg: &ValidationConfig,
) -> Option<RecordFault> {
    if cfg.compacted && r.key.is_none() {
        return Some(RecordFault::MissingKey);
    }
    if cfg.timestamp_type == TimestampType::CreateTime && ts != NO_TIMESTAMP {
        // i128 so that before/after = Long.MAX never overflow.
        let diff = i128::from(now_ms) - i128::from(ts);
        if diff > i128::from(cfg.timestamp_before_max_ms)
            || -diff > i128::from(cfg.timestamp_after_max_ms)
        {
            return Some(RecordFault::TimestampOutOfRange {
                timestamp: ts,
                offset: i64::from(r.offset_delta),
                lower: now_ms.wrapping_sub(cfg.timestamp_before_max_ms),
                upper: now_ms.wrapping_add(cfg.timestamp_after_max_ms),
            });
        }
    } else if h.timestamp_type_is_log_append() {
        return Some(RecordFault::LogAppendTimeType {
            offset: i64::from(r.offset_delta),
            timestamp: ts,
            key_len: r.key.map_or(0, <[u8]>::len),
            value_len: r.value.map_or(0, <[u8]>::len),
        });
    }
    None
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
    let codec = h.codec()?;
    let budget = compression::decompression_budget(cfg.max_message_bytes);
    let records = compression::decompress(codec, &batch[RECORDS_OFFSET..], budget)
        .map_err(|e| RecordError::from_compression(e, 0, h.compression()))?;
    walk_records(&records, h, now_ms, cfg)
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
/// client's deltas are what consumers will see): a record that breaks these
/// ends the walk at once. Records that are well formed but refused (keyless
/// on a compacted topic, timestamp out of range) are all collected, as
/// Kafka lists each in `record_errors`; the list is only allocated once a
/// record is refused. Returns (max record timestamp, offset delta of its
/// first holder).
fn walk_records(
    section: &[u8],
    h: &BatchHeader,
    now_ms: i64,
    cfg: &ValidationConfig,
) -> Result<(i64, i32), RecordError> {
    let mut max_ts = NO_TIMESTAMP;
    let mut delta_of_max = 0i32;
    let mut faults: Vec<(i32, RecordFault)> = Vec::new();
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
        let ts = if h.timestamp_type_is_log_append() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(r.timestamp_delta)
        };
        if let Some(fault) = record_fault(h, &r, ts, now_ms, cfg) {
            faults.push((i, fault));
            continue;
        }
        if ts > max_ts {
            max_ts = ts;
            delta_of_max = i;
        }
    }
    if !faults.is_empty() {
        return Err(RecordError::InvalidRecords {
            batch_index: 0,
            faults,
        });
    }
    Ok((max_ts, delta_of_max))
}

#[cfg(test)]
mod tests;
