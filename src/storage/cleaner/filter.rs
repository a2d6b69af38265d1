//! What the cleaner keeps of each batch (Kafka's `Cleaner.shouldRetainRecord`,
//! `checkBatchRetention` and `MemoryRecords.filterTo`): entering a batch's
//! keys in the offset map, deciding per record, and re-encoding a batch that
//! lost records (`buildRetainedRecordsInto`) or gained a delete horizon.

use std::collections::HashMap;

use crate::record::batch::{
    compute_crc, ATTRIBUTES_OFFSET, COMPRESSION_CODEC_MASK, CRC_OFFSET, CURRENT_MAGIC,
    DELETE_HORIZON_FLAG_MASK, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD, TIMESTAMP_TYPE_MASK,
};
use crate::record::compression::{compress, MAX_DECOMPRESSION_BUDGET};
use crate::record::varint::{write_varint, write_varlong};
use crate::record::{
    batch_records, records, BatchHeader, Compression, MalformedRecord, Record, LOG_OVERHEAD,
};
use crate::storage::error::StorageError;

use super::offset_map::OffsetMap;

/// Smallest encoding of a record: length, attributes, both deltas, key and
/// value lengths, header count; one byte each.
const MIN_RECORD_SIZE: usize = 7;

fn malformed(h: &BatchHeader, e: MalformedRecord) -> StorageError {
    StorageError::InvalidRecords {
        path: None,
        offset: h.base_offset,
        reason: format!("cleaner: malformed records ({e})"),
    }
}

/// Adds a data batch's keyed records at or after `from` to the map.
/// Returns false when the map filled up (Kafka stops there, mid-batch).
pub(super) fn map_batch(
    batch: &[u8],
    h: &BatchHeader,
    from: i64,
    map: &mut OffsetMap,
) -> Result<bool, StorageError> {
    if h.is_control() || h.is_transactional() {
        return Ok(true);
    }
    let section = batch_records(batch, MAX_DECOMPRESSION_BUDGET)?;
    for r in records(&section, h.records_count) {
        let r = r.map_err(|e| malformed(h, e))?;
        let offset = h.base_offset + i64::from(r.offset_delta);
        if offset < from {
            continue;
        }
        if let Some(k) = r.key {
            if !map.put(k, offset) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// What happens to one batch.
pub(super) enum Outcome {
    Keep,
    Drop,
    Rewrite(Vec<u8>, u64),
}

pub(super) struct FilterCtx<'a> {
    pub(super) map: &'a OffsetMap,
    pub(super) now_ms: i64,
    pub(super) delete_retention_ms: i64,
    pub(super) producer_last_offsets: &'a HashMap<i64, i64>,
}

/// Kafka's `shouldRetainRecord` + `checkBatchRetention` + `filterTo` for one batch.
pub(super) fn filter_batch(
    batch: &[u8],
    h: &BatchHeader,
    ctx: &FilterCtx<'_>,
) -> Result<Outcome, StorageError> {
    if h.is_control() || h.is_transactional() {
        return Ok(Outcome::Keep);
    }
    let section = batch_records(batch, MAX_DECOMPRESSION_BUDGET)?;
    let horizon = (h.attributes & DELETE_HORIZON_FLAG_MASK != 0).then_some(h.base_timestamp);
    // A record takes at least MIN_RECORD_SIZE bytes: a corrupt count cannot
    // reserve more than the section could hold.
    let capacity = (h.records_count.max(0) as usize).min(section.len() / MIN_RECORD_SIZE);
    let mut retained = Vec::with_capacity(capacity);
    let mut contains_tombstones = false;
    let mut total = 0usize;
    for r in records(&section, h.records_count) {
        let r = r.map_err(|e| malformed(h, e))?;
        total += 1;
        let offset = h.base_offset + i64::from(r.offset_delta);
        let keep = if offset > ctx.map.latest_offset() {
            true
        } else {
            match r.key {
                // Kafka counts a keyless record on a compacted log as invalid and drops it.
                None => false,
                Some(k) => {
                    let latest = offset >= ctx.map.get(k).unwrap_or(-1);
                    let retain_delete = horizon.is_none_or(|hz| ctx.now_ms < hz);
                    latest && (r.value.is_some() || retain_delete)
                }
            }
        };
        if keep {
            contains_tombstones |= r.value.is_none();
            retained.push(r);
        }
    }
    let removed = (total - retained.len()) as u64;
    if retained.is_empty() {
        let last_of_producer = h.has_producer_id()
            && ctx.producer_last_offsets.get(&h.producer_id) == Some(&h.last_offset());
        return Ok(if last_of_producer {
            Outcome::Rewrite(empty_batch(h), removed)
        } else {
            Outcome::Drop
        });
    }
    let need_horizon = contains_tombstones && horizon.is_none();
    if removed == 0 && !need_horizon {
        return Ok(Outcome::Keep);
    }
    let new_horizon = if need_horizon {
        Some(ctx.now_ms.saturating_add(ctx.delete_retention_ms))
    } else {
        horizon
    };
    Ok(Outcome::Rewrite(
        rebuild_batch(h, &retained, new_horizon)?,
        removed,
    ))
}

/// Kafka's `DefaultRecordBatch.writeEmptyHeader`: no records, no codec, base
/// timestamp -1, everything else (offsets, producer fields) kept.
fn empty_batch(h: &BatchHeader) -> Vec<u8> {
    let attributes = h.attributes & TIMESTAMP_TYPE_MASK;
    encode_batch(h, attributes, NO_TIMESTAMP, h.max_timestamp, 0, &[])
}

fn encode_batch(
    h: &BatchHeader,
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
    records: &[u8],
) -> Vec<u8> {
    let total = RECORD_BATCH_OVERHEAD + records.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    out.extend_from_slice(&((total - LOG_OVERHEAD) as i32).to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(CURRENT_MAGIC as u8);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(records);
    debug_assert_eq!(
        &out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2],
        &attributes.to_be_bytes()
    );
    let crc = compute_crc(&out);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Kafka's `buildRetainedRecordsInto`: same base offset, codec, producer
/// fields and lastOffsetDelta; base timestamp is the delete horizon when
/// set, else the first retained record's timestamp; record offsets and
/// timestamps are unchanged (deltas re-expressed against the new base).
fn rebuild_batch(
    h: &BatchHeader,
    retained: &[Record<'_>],
    horizon: Option<i64>,
) -> Result<Vec<u8>, StorageError> {
    let ts = |r: &Record<'_>| h.base_timestamp.wrapping_add(r.timestamp_delta);
    let base_timestamp = horizon.unwrap_or_else(|| retained.first().map_or(h.base_timestamp, ts));
    let log_append_time = h.timestamp_type_is_log_append();
    let mut max_timestamp = NO_TIMESTAMP;
    let mut plain = Vec::new();
    let mut body = Vec::new();
    for r in retained {
        let t = ts(r);
        max_timestamp = max_timestamp.max(t);
        body.clear();
        body.push(r.attributes);
        write_varlong(&mut body, t.wrapping_sub(base_timestamp));
        write_varint(&mut body, r.offset_delta);
        body.extend_from_slice(r.key_value_and_headers());
        write_varint(&mut plain, body.len() as i32);
        plain.extend_from_slice(&body);
    }
    if log_append_time {
        max_timestamp = h.max_timestamp;
    }
    let codec = h
        .compression_type()
        .ok_or_else(|| StorageError::InvalidRecords {
            path: None,
            offset: h.base_offset,
            reason: format!("cleaner: unknown codec {}", h.compression()),
        })?;
    let records = if codec == Compression::None {
        plain
    } else {
        compress(codec, &plain).map_err(|e| StorageError::InvalidRecords {
            path: None,
            offset: h.base_offset,
            reason: format!("cleaner: re-compression failed: {e}"),
        })?
    };
    let mut attributes = h.attributes & !DELETE_HORIZON_FLAG_MASK;
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_FLAG_MASK;
    }
    debug_assert_eq!(
        attributes & COMPRESSION_CODEC_MASK,
        h.attributes & COMPRESSION_CODEC_MASK
    );
    Ok(encode_batch(
        h,
        attributes,
        base_timestamp,
        max_timestamp,
        retained.len() as i32,
        &records,
    ))
}
