//! One cleaning round over a partition's non-active segments (Kafka's
//! `Cleaner.doClean`/`cleanSegments`): fill the offset map over the dirty
//! section, then rewrite the segments below its end group by group and hand
//! each cleaned group to the swap. See the module doc of [`super`].

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::record::batch::{CURRENT_MAGIC, MIN_BATCH_LENGTH};
use crate::record::{iter_batches, verify_crc, BatchHeader};
use crate::storage::error::StorageError;
use crate::storage::scrubber::{CorruptBatch, ScrubState};
use crate::storage::swap::{discard_cleaned, SegmentSummary};

use super::filter::{filter_batch, map_batch, FilterCtx, Outcome};
use super::offset_map::OffsetMap;
use super::throttler::Throttler;
use super::writer::CleanedWriter;
use super::{CleanError, CleanResult, CleanTask, SwapFn};

/// Bytes read per pread while scanning a segment.
const READ_CHUNK: usize = 1 << 20;

/// Reads every whole batch of `seg` in order, throttled, verifying each
/// one's CRC-32C before `f` sees it. A mismatch is reported to `scrub`
/// (fetches stop at the batch) and ends the round.
fn for_each_batch(
    seg: &SegmentSummary,
    scrub: &ScrubState,
    io: &mut Throttler,
    stop: &AtomicBool,
    bytes_read: &mut u64,
    mut f: impl FnMut(&[u8], &BatchHeader, &mut Throttler) -> Result<(), CleanError>,
) -> Result<(), CleanError> {
    let path = &seg.path;
    let corrupt = |pos: u64, reason: &str| {
        CleanError::Storage(StorageError::InvalidRecords {
            path: Some(path.to_path_buf()),
            offset: seg.base_offset,
            reason: format!("cleaner: {reason} at position {pos}"),
        })
    };
    // Offset after the last batch verified: the first one not to serve.
    let mut good_end = seg.base_offset;
    let mut verified = |batch: &[u8], h: &BatchHeader, pos: u64| {
        if verify_crc(batch) {
            good_end = h.next_offset();
            return Ok(());
        }
        let c = CorruptBatch {
            file: Arc::downgrade(&seg.file),
            path: path.clone(),
            segment_base: seg.base_offset,
            position: pos,
            offset: good_end,
        };
        scrub.report(c);
        Err(CleanError::Storage(StorageError::InvalidRecords {
            path: Some(path.clone()),
            offset: good_end,
            reason: format!(
                "cleaner: CRC-32C mismatch in the batch at position {pos} (header base offset {})",
                h.base_offset
            ),
        }))
    };
    let mut buf = Vec::new();
    let mut pos = 0u64;
    while pos < seg.size {
        if stop.load(Ordering::Relaxed) {
            return Err(CleanError::Aborted);
        }
        let want = (seg.size - pos).min(READ_CHUNK as u64) as usize;
        buf.resize(want, 0);
        io.acquire(want);
        seg.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| StorageError::io(path, "read segment for cleaning", e))?;
        *bytes_read += want as u64;
        let mut it = iter_batches(&buf);
        for (p, h) in &mut it {
            let batch = &buf[p..p + h.total_size()];
            verified(batch, &h, pos + p as u64)?;
            f(batch, &h, io)?;
        }
        let consumed = it.position();
        if consumed > 0 {
            pos += consumed as u64;
            continue;
        }
        // Nothing whole in the chunk: one batch larger than the chunk.
        let h = BatchHeader::parse(&buf).map_err(|_| corrupt(pos, "partial batch header"))?;
        let total = h.total_size() as u64;
        if h.batch_length < MIN_BATCH_LENGTH
            || h.magic != CURRENT_MAGIC
            || total <= want as u64
            || pos + total > seg.size
        {
            return Err(corrupt(pos, "invalid batch"));
        }
        buf.resize(total as usize, 0);
        io.acquire(total as usize);
        seg.file
            .read_exact_at(&mut buf, pos)
            .map_err(|e| StorageError::io(path, "read segment for cleaning", e))?;
        *bytes_read += total;
        verified(&buf, &h, pos)?;
        f(&buf, &h, io)?;
        pos += total;
    }
    Ok(())
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose total log
/// size, index size and offset span fit one segment.
fn group_segments(segs: &[SegmentSummary], max_size: u64, max_index: u64) -> Vec<Vec<usize>> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        let head = i;
        let mut size = segs[i].size;
        let mut index = segs[i].index_bytes;
        let mut group = vec![i];
        i += 1;
        while i < segs.len()
            && size + segs[i].size <= max_size
            && index + segs[i].index_bytes <= max_index
            && segs[i].next_offset - 1 - segs[head].base_offset <= i64::from(i32::MAX)
        {
            size += segs[i].size;
            index += segs[i].index_bytes;
            group.push(i);
            i += 1;
        }
        groups.push(group);
    }
    groups
}

/// One cleaning round (steps 1-4 of the module doc). Blocking: run it on a
/// dedicated or `spawn_blocking` thread, never under the partition lock.
pub fn clean(
    task: &CleanTask,
    map: &mut OffsetMap,
    io: &mut Throttler,
    stop: &AtomicBool,
    swap: &mut SwapFn<'_>,
) -> Result<CleanResult, CleanError> {
    let mut result = CleanResult::default();
    // 1. Offset map over the dirty section.
    let mut full = false;
    for seg in &task.segments {
        if seg.base_offset >= task.first_uncleanable_offset {
            break;
        }
        if seg.next_offset <= task.first_dirty_offset || full {
            continue;
        }
        for_each_batch(
            seg,
            &task.scrub,
            io,
            stop,
            &mut result.bytes_read,
            |batch, h, _| {
                if full || h.last_offset() < task.first_dirty_offset {
                    return Ok(());
                }
                if !map_batch(batch, h, task.first_dirty_offset, map)? {
                    full = true;
                    return Ok(());
                }
                map.latest_offset = map.latest_offset.max(h.last_offset());
                Ok(())
            },
        )?;
    }
    result.end_offset = if full {
        map.latest_offset() + 1
    } else {
        task.first_uncleanable_offset
    }
    .max(task.first_dirty_offset);

    // 2-4. Rewrite every segment below the end offset, group by group.
    let to_clean: Vec<SegmentSummary> = task
        .segments
        .iter()
        .filter(|s| s.base_offset < result.end_offset)
        .cloned()
        .collect();
    let ctx = FilterCtx {
        map: &*map,
        now_ms: task.now_ms,
        delete_retention_ms: task.delete_retention_ms,
        producer_last_offsets: &task.producer_last_offsets,
    };
    for group in group_segments(
        &to_clean,
        task.segment_bytes,
        u64::from(task.segment_index_bytes),
    ) {
        let segs: Vec<&SegmentSummary> = group.iter().map(|&i| &to_clean[i]).collect();
        let base = segs[0].base_offset;
        let outcome = clean_group(task, &segs, &ctx, io, stop, &mut result);
        let changed = match outcome {
            Ok(changed) => changed,
            Err(e) => {
                discard_cleaned(&task.dir, base);
                return Err(e);
            }
        };
        if !changed && segs.len() == 1 {
            // Nothing to gain from swapping an identical copy.
            discard_cleaned(&task.dir, base);
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            discard_cleaned(&task.dir, base);
            return Err(CleanError::Aborted);
        }
        let replaced: Vec<(i64, u64)> = segs.iter().map(|s| (s.base_offset, s.size)).collect();
        match swap(&replaced) {
            Ok(Some(deleted)) => {
                result.groups_swapped += 1;
                result.deleted_files.extend(deleted);
            }
            Ok(None) => {
                discard_cleaned(&task.dir, base);
                return Err(CleanError::Aborted);
            }
            Err(e) => {
                discard_cleaned(&task.dir, base);
                return Err(e.into());
            }
        }
    }
    Ok(result)
}

/// Writes the cleaned copy of one group; true if anything changed.
fn clean_group(
    task: &CleanTask,
    segs: &[&SegmentSummary],
    ctx: &FilterCtx<'_>,
    io: &mut Throttler,
    stop: &AtomicBool,
    result: &mut CleanResult,
) -> Result<bool, CleanError> {
    let mut writer = CleanedWriter::create(
        &task.dir,
        segs[0].base_offset,
        task.segment_index_bytes,
        task.index_interval_bytes,
    )?;
    let mut changed = false;
    let mut bytes_read = 0;
    for seg in segs {
        for_each_batch(
            seg,
            &task.scrub,
            io,
            stop,
            &mut bytes_read,
            |batch, h, io| {
                match filter_batch(batch, h, ctx)? {
                    Outcome::Keep => writer.append(batch, h, io)?,
                    Outcome::Drop => {
                        changed = true;
                        result.records_removed += h.records_count.max(0) as u64;
                    }
                    Outcome::Rewrite(bytes, removed) => {
                        changed = true;
                        result.records_removed += removed;
                        let nh = BatchHeader::parse(&bytes).map_err(StorageError::from)?;
                        writer.append(&bytes, &nh, io)?;
                    }
                }
                Ok(())
            },
        )?;
    }
    result.bytes_read += bytes_read;
    result.bytes_written += writer.finish(io)?;
    Ok(changed)
}
