//! Tests of the cleaning round, the swap protocol and crash recovery.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::offset_map::BYTES_PER_MAP_ENTRY;
use super::*;
use crate::record::{batch_records, iter_batches, BatchBuilder};
use crate::storage::segment::{INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX};
use crate::storage::swap::{
    suffixed, CLEANED_SUFFIX, DELETED_SUFFIX, SEGMENT_SUFFIXES, SWAP_SUFFIX,
};
use crate::storage::{Log, LogConfig};

const T0: i64 = 1_700_000_000_000;

type Records = Vec<(i64, String, Option<String>)>;

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

fn append(log: &mut Log, records: &[(&str, Option<&str>)], ts: i64) {
    let mut b = BatchBuilder::new(ts);
    for (i, (k, v)) in records.iter().enumerate() {
        b = b.push(Some(k.as_bytes()), v.map(str::as_bytes), &[], ts + i as i64);
    }
    let bytes = b.build().to_vec();
    log.append(&bytes, ts).unwrap();
}

/// (offset, key, value) of every record from the log start.
fn records(log: &Log) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let plan = log.read_plan(offset, 1 << 20, true, i64::MAX).unwrap();
        if plan.is_empty() {
            break;
        }
        let bytes = plan.read().unwrap();
        for (p, h) in iter_batches(&bytes) {
            let batch = &bytes[p..p + h.total_size()];
            assert!(
                crate::record::verify_crc(batch),
                "CRC of batch at {}",
                h.base_offset
            );
            let recs = batch_records(batch, 1 << 20).unwrap();
            for r in crate::record::records(&recs, h.records_count) {
                let r = r.unwrap();
                let o = h.base_offset + i64::from(r.offset_delta);
                let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                let value = r.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                if o >= offset {
                    out.push((o, key, value));
                }
            }
            offset = h.next_offset();
        }
    }
    out
}

fn task(log: &Log, checkpoint: i64, now: i64, delete_retention_ms: i64) -> CleanTask {
    let segments = log.cleaner_segments();
    CleanTask {
        dir: log.dir().to_path_buf(),
        first_dirty_offset: checkpoint.max(log.log_start_offset()),
        first_uncleanable_offset: log.active_segment_base_offset(),
        segments,
        segment_bytes: log.config().segment_bytes,
        segment_index_bytes: log.config().segment_index_bytes,
        index_interval_bytes: log.config().index_interval_bytes,
        delete_retention_ms,
        now_ms: now,
        producer_last_offsets: HashMap::new(),
        scrub: log.scrub_state(),
    }
}

fn run_clean(log: &mut Log, checkpoint: i64, now: i64, drm: i64) -> CleanResult {
    let t = task(log, checkpoint, now, drm);
    let mut map = OffsetMap::with_buffer_size(1 << 20);
    let mut io = Throttler::new(f64::INFINITY);
    let stop = AtomicBool::new(false);
    let mut swap = |r: &[(i64, u64)]| log.replace_with_cleaned(r, now);
    clean(&t, &mut map, &mut io, &stop, &mut swap).unwrap()
}

/// Flips the last byte (record data) of the last batch of the first sealed
/// segment after the oldest that holds two batches or more; returns that
/// segment's base offset and the batch's.
fn flip_byte_in_a_sealed_segment(log: &Log) -> (i64, i64) {
    use std::os::unix::fs::FileExt;
    for seg in log.cleaner_segments().into_iter().skip(1) {
        let bytes = fs::read(&seg.path).unwrap();
        let batches: Vec<_> = iter_batches(&bytes).collect();
        if batches.len() < 2 {
            continue;
        }
        let (p, h) = batches[batches.len() - 1];
        let at = p + h.total_size() - 1;
        let f = fs::OpenOptions::new().write(true).open(&seg.path).unwrap();
        f.write_at(&[bytes[at] ^ 0x20], at as u64).unwrap();
        return (seg.base_offset, h.base_offset);
    }
    panic!("no sealed segment with two batches");
}

fn try_clean(log: &mut Log, checkpoint: i64, now: i64) -> Result<CleanResult, CleanError> {
    let t = task(log, checkpoint, now, 86_400_000);
    let mut map = OffsetMap::with_buffer_size(1 << 20);
    let mut io = Throttler::new(f64::INFINITY);
    let stop = AtomicBool::new(false);
    let mut swap = |r: &[(i64, u64)]| log.replace_with_cleaned(r, now);
    clean(&t, &mut map, &mut io, &stop, &mut swap)
}

fn segment_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A CRC mismatch in the dirty section (offset-map pass) or in an already
/// clean segment (rewrite pass) ends the round with nothing swapped, and
/// fetches then stop before the corrupt batch.
#[test]
fn a_batch_failing_its_crc_is_never_cleaned_and_fences_reads() {
    for already_clean in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(), false).unwrap();
        fill(&mut log, 8);
        let mut checkpoint = 0;
        if already_clean {
            checkpoint = run_clean(&mut log, 0, T0, 86_400_000).end_offset;
            fill(&mut log, 4);
        }
        let (target, bad_base) = flip_byte_in_a_sealed_segment(&log);
        let files_before = segment_files(dir.path());
        let err = try_clean(&mut log, checkpoint, T0).expect_err("corrupt batch refused");
        assert!(err.io_error().is_none());
        assert!(
            err.to_string().contains("CRC-32C mismatch"),
            "already_clean={already_clean}: {err}"
        );
        assert_eq!(segment_files(dir.path()), files_before, "nothing swapped");
        assert!(
            !fs::read_dir(dir.path()).unwrap().any(|e| e
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".cleaned")),
            "no cleaned leftovers"
        );
        // Reads stop at the corrupt batch, as after the scrubber found it.
        let plan = log.read_plan(target, 1 << 20, true, i64::MAX).unwrap();
        let served = plan.read().unwrap();
        let last = iter_batches(&served).last().map(|(_, h)| h.next_offset());
        assert_eq!(last, Some(bad_base), "served up to the corrupt batch");
        assert!(matches!(
            log.read_plan(bad_base, 1 << 20, true, i64::MAX),
            Err(crate::storage::StorageError::CorruptRecords { offset, .. }) if offset == bad_base
        ));
        // A second round finds the same batch again and still changes nothing.
        assert!(try_clean(&mut log, checkpoint, T0).is_err());
        assert_eq!(segment_files(dir.path()), files_before);
    }
}

/// Ten keys written `rounds` times; the last round lands in the active segment.
fn fill(log: &mut Log, rounds: usize) {
    for round in 0..rounds {
        for k in 0..10 {
            let (key, value) = (format!("k{k}"), format!("v{round}-{k}"));
            append(log, &[(&key, Some(&value))], T0 + round as i64);
        }
    }
}

fn latest_values(recs: &[(i64, String, Option<String>)]) -> HashMap<String, Option<String>> {
    recs.iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn keeps_latest_per_key_with_original_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(), false).unwrap();
    fill(&mut log, 8);
    let before = records(&log);
    let active_base = log.active_segment_base_offset();
    let active_before: Vec<_> = before
        .iter()
        .filter(|r| r.0 >= active_base)
        .cloned()
        .collect();
    assert!(log.segments_count() > 3);
    let res = run_clean(&mut log, 0, T0, 86_400_000);
    assert_eq!(res.end_offset, active_base);
    assert!(res.groups_swapped >= 1 && res.records_removed > 0);
    let after = records(&log);
    // Offsets strictly increasing, each one original.
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
    for r in &after {
        assert!(before.contains(r), "{r:?} was not in the log before");
    }
    // Cleaned part: one record per key, the latest below the active segment.
    let cleaned: Vec<_> = after.iter().filter(|r| r.0 < active_base).collect();
    let mut keys: Vec<_> = cleaned.iter().map(|r| r.1.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), cleaned.len(), "one record per key: {cleaned:?}");
    // Active segment untouched; latest value per key unchanged.
    assert_eq!(
        after
            .iter()
            .filter(|r| r.0 >= active_base)
            .cloned()
            .collect::<Vec<_>>(),
        active_before
    );
    assert_eq!(latest_values(&after), latest_values(&before));
    assert_eq!(log.log_end_offset(), 80);
    // Survives a reopen, and the .deleted files are there for the caller.
    assert!(res.deleted_files.iter().all(|f| f.exists()));
    log.close().unwrap();
    let log = Log::open(dir.path(), cfg(), false).unwrap();
    assert_eq!(records(&log), after);
    assert!(
        res.deleted_files.iter().all(|f| !f.exists()),
        "removed at open"
    );
}

#[test]
fn tombstones_survive_until_delete_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(), false).unwrap();
    fill(&mut log, 3);
    append(&mut log, &[("k3", None)], T0 + 10);
    fill(&mut log, 3);
    // k3 rewritten after the tombstone above: only k4's tombstone stays the latest.
    append(&mut log, &[("k4", None)], T0 + 20);
    log.roll(T0 + 20).unwrap();
    append(&mut log, &[("x", Some("active"))], T0 + 30);
    let drm = 1000;
    run_clean(&mut log, 0, T0 + 100, drm);
    let recs = records(&log);
    assert!(
        recs.iter().any(|r| r.1 == "k4" && r.2.is_none()),
        "tombstone kept before the horizon"
    );
    assert!(
        !recs.iter().any(|r| r.1 == "k3" && r.2.is_none()),
        "superseded tombstone dropped"
    );
    // Still before the horizon (first clean + delete.retention.ms): kept.
    run_clean(&mut log, 0, T0 + 100 + drm - 1, drm);
    assert!(records(&log).iter().any(|r| r.1 == "k4" && r.2.is_none()));
    // Past it: gone, and so is every other k4 record.
    run_clean(&mut log, 0, T0 + 100 + drm, drm);
    let recs = records(&log);
    assert!(!recs.iter().any(|r| r.1 == "k4"), "{recs:?}");
    assert!(recs.iter().any(|r| r.1 == "x"));
    assert!(recs.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn map_full_cleans_only_what_was_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(), false).unwrap();
    fill(&mut log, 6);
    let before = records(&log);
    let t = task(&log, 0, T0, 1000);
    let mut map = OffsetMap::with_buffer_size(5 * BYTES_PER_MAP_ENTRY);
    let mut io = Throttler::new(f64::INFINITY);
    let stop = AtomicBool::new(false);
    let mut swap = |r: &[(i64, u64)]| log.replace_with_cleaned(r, T0);
    let res = clean(&t, &mut map, &mut io, &stop, &mut swap).unwrap();
    assert_eq!(res.end_offset, 5, "five keys mapped: offsets 0..=4");
    let after = records(&log);
    assert_eq!(latest_values(&after), latest_values(&before));
    // Nothing past the mapped range was removed.
    assert_eq!(
        after.iter().filter(|r| r.0 >= 5).count(),
        before.iter().filter(|r| r.0 >= 5).count()
    );
}

#[test]
fn idempotent_producers_last_batch_kept_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(), false).unwrap();
    let b = BatchBuilder::new(T0)
        .producer(7, 0, 0)
        .push(Some(b"a"), Some(b"1"), &[], T0)
        .push(Some(b"b"), Some(b"1"), &[], T0)
        .build()
        .to_vec();
    log.append(&b, T0).unwrap();
    append(&mut log, &[("a", Some("2")), ("b", Some("2"))], T0);
    log.roll(T0).unwrap();
    append(&mut log, &[("z", Some("z"))], T0);
    let mut t = task(&log, 0, T0, 1000);
    t.producer_last_offsets.insert(7, 1);
    let mut map = OffsetMap::with_buffer_size(1 << 16);
    let mut io = Throttler::new(f64::INFINITY);
    let stop = AtomicBool::new(false);
    let mut swap = |r: &[(i64, u64)]| log.replace_with_cleaned(r, T0);
    clean(&t, &mut map, &mut io, &stop, &mut swap).unwrap();
    let plan = log.read_plan(0, 1 << 20, true, i64::MAX).unwrap();
    let bytes = plan.read().unwrap();
    let hs: Vec<_> = iter_batches(&bytes).map(|(_, h)| h).collect();
    assert_eq!(hs[0].base_offset, 0);
    assert_eq!(hs[0].last_offset(), 1, "lastOffsetDelta preserved");
    assert_eq!(hs[0].records_count, 0);
    assert_eq!((hs[0].producer_id, hs[0].base_sequence), (7, 0));
    assert_eq!(records(&log).len(), 3);
}

#[test]
fn compressed_batch_rewritten_with_same_codec() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(), false).unwrap();
    let b = BatchBuilder::new(T0)
        .push(Some(b"a"), Some(b"old"), &[("h", b"x")], T0)
        .push(Some(b"b"), Some(b"keep"), &[], T0 + 5)
        .build_compressed(4)
        .to_vec();
    log.append(&b, T0).unwrap();
    append(&mut log, &[("a", Some("new"))], T0 + 9);
    log.roll(T0).unwrap();
    append(&mut log, &[("z", Some("z"))], T0);
    run_clean(&mut log, 0, T0, 1000);
    let plan = log.read_plan(0, 1 << 20, true, i64::MAX).unwrap();
    let bytes = plan.read().unwrap();
    let (_, h) = iter_batches(&bytes).next().unwrap();
    assert_eq!(h.compression(), 4);
    assert_eq!(
        (h.base_offset, h.last_offset_delta, h.records_count),
        (0, 1, 1)
    );
    assert_eq!((h.base_timestamp, h.max_timestamp), (T0 + 5, T0 + 5));
    let recs = records(&log);
    assert_eq!(recs[0], (1, "b".into(), Some("keep".into())));
}

/// Cleans with a swap step that stops after `steps` of the protocol,
/// "crashes" (drops the log unclosed) and reopens.
fn crash_case(steps: usize) -> (Records, Records) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(), false).unwrap();
    fill(&mut log, 8);
    log.flush_all().unwrap();
    let before = records(&log);
    let t = task(&log, 0, T0, 1000);
    let d = dir.path().to_path_buf();
    let mut map = OffsetMap::with_buffer_size(1 << 20);
    let mut io = Throttler::new(f64::INFINITY);
    let stop = AtomicBool::new(false);
    // Walks Kafka's order by hand on the first group, then stops.
    let mut swap = |r: &[(i64, u64)]| -> Result<Option<Vec<PathBuf>>, StorageError> {
        let base = r[0].0;
        let mut done = 0;
        let mut step = |f: &mut dyn FnMut()| {
            if done < steps {
                f();
                done += 1;
            }
        };
        for s in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX] {
            step(&mut || {
                fs::rename(
                    suffixed(&d, base, s, CLEANED_SUFFIX),
                    suffixed(&d, base, s, SWAP_SUFFIX),
                )
                .unwrap()
            });
        }
        for &(b, _) in r {
            for s in SEGMENT_SUFFIXES {
                step(&mut || {
                    fs::rename(suffixed(&d, b, s, ""), suffixed(&d, b, s, DELETED_SUFFIX)).unwrap()
                });
            }
        }
        for s in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX] {
            step(&mut || {
                fs::rename(
                    suffixed(&d, base, s, SWAP_SUFFIX),
                    suffixed(&d, base, s, ""),
                )
                .unwrap()
            });
        }
        // "Crash": stop here, leaving this group's files as they are
        // (a later group's files are discarded by the abort).
        stop.store(true, Ordering::Relaxed);
        Ok(Some(Vec::new()))
    };
    let res = clean(&t, &mut map, &mut io, &stop, &mut swap);
    assert!(matches!(res, Err(CleanError::Aborted) | Ok(_)));
    drop(log);
    let log = Log::open(dir.path(), cfg(), true).unwrap();
    (before, records(&log))
}

#[test]
fn crash_at_every_step_of_the_swap_keeps_old_or_new_data() {
    for steps in 0..=15 {
        let (before, after) = crash_case(steps);
        // Never neither: every key's latest value is still there...
        assert_eq!(
            latest_values(&after),
            latest_values(&before),
            "steps {steps}"
        );
        // ...offsets still increase and come from the original log...
        assert!(after.windows(2).all(|w| w[0].0 < w[1].0), "steps {steps}");
        for r in &after {
            assert!(before.contains(r), "steps {steps}: {r:?}");
        }
        // ...and the log is either the old one or has the cleaned group.
        if steps < 3 {
            assert_eq!(after, before, "not committed at step {steps}");
        } else {
            assert!(after.len() < before.len(), "committed at step {steps}");
        }
    }
}

#[test]
fn leftover_cleaned_files_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg(), false).unwrap();
    fill(&mut log, 4);
    let before = records(&log);
    let bases = log.segment_base_offsets();
    drop(log);
    // A crash while writing: a partial cleaned copy of the first segment.
    fs::write(
        suffixed(dir.path(), bases[0], LOG_FILE_SUFFIX, CLEANED_SUFFIX),
        b"partial",
    )
    .unwrap();
    fs::write(
        suffixed(dir.path(), bases[0], INDEX_FILE_SUFFIX, SWAP_SUFFIX),
        b"",
    )
    .unwrap();
    let log = Log::open(dir.path(), cfg(), true).unwrap();
    assert_eq!(records(&log), before);
    let leftovers = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name().into_string().unwrap();
            n.ends_with(CLEANED_SUFFIX) || n.ends_with(SWAP_SUFFIX)
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn throttler_bounds_the_rate() {
    let mut t = Throttler::new(1_000_000.0);
    let start = Instant::now();
    for _ in 0..10 {
        t.acquire(20_000);
    }
    // 200 kB at 1 MB/s: about 200 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(180),
        "{:?}",
        start.elapsed()
    );
}
