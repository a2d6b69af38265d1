//! Tests of the partition log: append, reads, rolls, recovery, timestamps,
//! flushing and the log start offset.

use super::*;
use crate::record::batch::{compute_crc, CRC_OFFSET, LAST_OFFSET_DELTA_OFFSET};
use crate::record::{BatchBuilder, BatchHeader};

const T0: i64 = 1_700_000_000_000;

fn small_cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    }
}

/// A batch of `n` records of ~50 bytes each, timestamps ts, ts+1, ...
fn batch(n: usize, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts);
    for i in 0..n {
        b = b.push(Some(b"key"), Some(&[b'v'; 40]), &[], ts + i as i64);
    }
    b.build().to_vec()
}

fn append(log: &mut Log, n: usize, ts: i64) -> AppendResult {
    let b = batch(n, ts);
    log.append(&b, ts).unwrap()
}

fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    iter_batches(bytes).map(|(_, h)| h).collect()
}

fn read_all(log: &Log, offset: i64, max: usize, min_one: bool, hw: i64) -> Vec<BatchHeader> {
    let plan = log.read_plan(offset, max, min_one, hw).unwrap();
    let bytes = plan.read().unwrap();
    assert_eq!(bytes.len(), plan.len);
    let hs = headers(&bytes);
    assert_eq!(
        hs.iter().map(|h| h.total_size()).sum::<usize>(),
        bytes.len(),
        "whole batches only"
    );
    hs
}

#[test]
fn append_assigns_offsets_and_reopen_restores_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topic-0");
    let mut log = Log::open(&path, small_cfg(), false).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    let r = append(&mut log, 3, T0);
    assert_eq!((r.first_offset, r.last_offset, r.position), (0, 2, 0));
    assert_eq!(r.max_timestamp, T0 + 2);
    let r = append(&mut log, 2, T0 + 10);
    assert_eq!((r.first_offset, r.last_offset), (3, 4));
    // The offset assigned, not the producer's (its batch starts at 0).
    assert_eq!((r.max_timestamp, r.offset_of_max_timestamp), (T0 + 11, 4));
    assert_eq!(log.log_end_offset(), 5);
    log.close().unwrap();
    assert!(path.join("00000000000000000000.log").exists());
    let idx_len = fs::metadata(path.join("00000000000000000000.index"))
        .unwrap()
        .len();
    assert!(idx_len < 1024, "index trimmed on close");

    let mut log = Log::open(&path, small_cfg(), false).unwrap();
    assert_eq!(log.log_end_offset(), 5);
    let r = append(&mut log, 1, T0 + 20);
    assert_eq!(r.first_offset, 5);
    let hs = read_all(&log, 0, 1 << 20, false, i64::MAX);
    assert_eq!(
        hs.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
        vec![0, 3, 5]
    );
}

#[test]
fn rolls_by_size_and_reads_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
    for i in 0..40 {
        append(&mut log, 4, T0 + i * 10);
    }
    assert!(log.segments_count() > 3, "{}", log.segments_count());
    let bases = log.segment_base_offsets();
    assert_eq!(bases[0], 0);
    assert!(bases.windows(2).all(|w| w[0] < w[1]));
    for seg in &log.segments {
        assert!(seg.size() <= 2048);
    }
    // Fetch at a segment's base returns data from that segment only.
    let hs = read_all(&log, bases[1], 1 << 20, false, i64::MAX);
    assert_eq!(hs[0].base_offset, bases[1]);
    assert_eq!(hs.last().unwrap().next_offset(), bases[2]);
    // Every offset is readable and returns the batch containing it.
    for off in 0..log.log_end_offset() {
        let hs = read_all(&log, off, 1, true, i64::MAX);
        assert_eq!(hs.len(), 1);
        assert!(hs[0].base_offset <= off && off <= hs[0].last_offset());
    }
    log.close().unwrap();
    let log = Log::open(dir.path(), small_cfg(), false).unwrap();
    assert_eq!(log.log_end_offset(), 160);
    assert_eq!(log.segment_base_offsets(), bases);
}

#[test]
fn rolls_on_relative_offset_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    append(&mut log, 1, T0);
    // A batch claiming i32::MAX + 1 offsets: its last offset cannot be
    // stored relative to base 0.
    let mut b = batch(1, T0);
    b[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
        .copy_from_slice(&i32::MAX.to_be_bytes());
    let crc = compute_crc(&b);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    let r = log.append(&b, T0).unwrap();
    assert_eq!(r.first_offset, 1);
    assert_eq!(r.segment_base_offset, 1);
    assert_eq!(log.segments_count(), 2);
    assert_eq!(log.log_end_offset(), 1 + i64::from(i32::MAX) + 1);
}

#[test]
fn rolls_by_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), cfg, false).unwrap();
    append(&mut log, 1, T0);
    append(&mut log, 1, T0 + 500);
    assert_eq!(log.segments_count(), 1);
    append(&mut log, 1, T0 + 1001);
    assert_eq!(log.segments_count(), 2);
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn read_plan_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
    for i in 0..5 {
        append(&mut log, 3, T0 + i);
    } // batches at 0,3,6,9,12; log end 15; all in one segment
    assert_eq!(log.segments_count(), 1);
    let one = batch(3, T0).len();

    // max_bytes limits to whole batches.
    let hs = read_all(&log, 0, 2 * one + one / 2, false, i64::MAX);
    assert_eq!(hs.len(), 2);
    // Too small for a batch: nothing unless min_one_batch.
    assert!(read_all(&log, 0, one - 1, false, i64::MAX).is_empty());
    let hs = read_all(&log, 0, 1, true, i64::MAX);
    assert_eq!(hs.len(), 1);
    // Mid-batch offset returns the whole containing batch.
    let hs = read_all(&log, 7, 1 << 20, false, i64::MAX);
    assert_eq!(hs[0].base_offset, 6);
    assert_eq!(hs.len(), 3);
    // High watermark cut: batches reaching it are excluded.
    let hs = read_all(&log, 0, 1 << 20, false, 9);
    assert_eq!(
        hs.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
        vec![0, 3, 6]
    );
    let hs = read_all(&log, 0, 1 << 20, true, 10);
    assert_eq!(
        hs.last().unwrap().base_offset,
        6,
        "batch 9..11 straddles hw 10"
    );
    assert!(read_all(&log, 9, 1 << 20, true, 9).is_empty());
    assert!(
        read_all(&log, 12, 1 << 20, true, 9).is_empty(),
        "between hw and log end: empty"
    );
    // At log end: empty; beyond / below: out of range.
    assert!(log.read_plan(15, 100, true, i64::MAX).unwrap().is_empty());
    assert!(matches!(
        log.read_plan(16, 100, true, i64::MAX),
        Err(StorageError::OffsetOutOfRange { offset: 16, .. })
    ));
    assert!(matches!(
        log.read_plan(-1, 100, true, i64::MAX),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let plan = log.read_plan(3, 1 << 20, false, i64::MAX).unwrap();
    assert_eq!(plan.first_offset, 3);
    assert_eq!(plan.position, one as u64);
}

#[test]
fn read_continues_past_segment_with_nothing_left() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    append(&mut log, 2, T0);
    log.roll(T0).unwrap();
    append(&mut log, 2, T0);
    // Gap: the first segment ends at 2 but we ask from the second's data.
    let hs = read_all(&log, 2, 1 << 20, false, i64::MAX);
    assert_eq!(hs[0].base_offset, 2);
    // Offset inside a gap between segments (log start moved into a hole).
    let dir2 = tempfile::tempdir().unwrap();
    let mut log2 = Log::open(dir2.path(), LogConfig::default(), false).unwrap();
    append(&mut log2, 2, T0);
    log2.set_log_start_offset(10).unwrap(); // past log end: restart at 10
    assert_eq!((log2.log_start_offset(), log2.log_end_offset()), (10, 10));
    append(&mut log2, 1, T0);
    assert_eq!(
        read_all(&log2, 10, 1 << 20, false, i64::MAX)[0].base_offset,
        10
    );
    assert!(log2.read_plan(5, 1, true, i64::MAX).is_err());
}

fn last_segment_path(log: &Log) -> PathBuf {
    log.segments.last().unwrap().log_path().to_path_buf()
}

/// Appends 10 batches of 3 (offsets 0..30), damages the tail with `damage`,
/// reopens with recovery and checks the log end and further appends.
fn torn_tail_case(damage: impl Fn(&Path, u64), expected_end: i64) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg_big_segments(), false).unwrap();
    let mut last_pos = 0;
    for i in 0..10 {
        last_pos = append(&mut log, 3, T0 + i).position;
    }
    log.flush_all().unwrap();
    let seg_path = last_segment_path(&log);
    drop(log); // unclean: no close
    damage(&seg_path, last_pos);
    let mut log = Log::open(dir.path(), small_cfg_big_segments(), true).unwrap();
    assert_eq!(log.log_end_offset(), expected_end);
    let seg = log.segments.last().unwrap();
    assert!(seg.offset_index().entries() > 0, "index rebuilt");
    assert_eq!(
        seg.size() as usize,
        (expected_end / 3) as usize * batch(3, T0).len()
    );
    // Everything left is readable and lookups work.
    let hs = read_all(&log, 0, 1 << 20, false, i64::MAX);
    assert_eq!(hs.last().unwrap().next_offset(), expected_end);
    let t = log.offset_for_timestamp(T0 + 2).unwrap().unwrap();
    assert_eq!(
        t,
        TimestampOffset {
            timestamp: T0 + 2,
            offset: 2
        }
    );
    let r = append(&mut log, 2, T0 + 100);
    assert_eq!(r.first_offset, expected_end);
    assert_eq!(
        read_all(&log, expected_end, 1 << 20, false, i64::MAX).len(),
        1
    );
    log.close().unwrap();
    let log = Log::open(dir.path(), small_cfg_big_segments(), false).unwrap();
    assert_eq!(log.log_end_offset(), expected_end + 2);
}

fn small_cfg_big_segments() -> LogConfig {
    LogConfig {
        index_interval_bytes: 256,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    }
}

#[test]
fn recovery_truncates_garbage_tail() {
    torn_tail_case(
        |p, _| {
            let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
            std::io::Write::write_all(&mut f, &[0xAB; 100]).unwrap();
        },
        30,
    );
}

#[test]
fn recovery_truncates_mid_batch() {
    torn_tail_case(
        |p, last_pos| {
            let f = fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(last_pos + 30).unwrap();
        },
        27,
    );
}

#[test]
fn recovery_drops_batch_with_bad_crc() {
    torn_tail_case(
        |p, last_pos| {
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .unwrap();
            let at = last_pos + 70;
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, at).unwrap();
            f.write_all_at(&[b[0] ^ 0xff], at).unwrap();
        },
        27,
    );
}

#[test]
fn recovery_of_zeroed_preallocated_tail() {
    // A filesystem may leave zeros after a crash: treat like garbage.
    torn_tail_case(
        |p, _| {
            let f = fs::OpenOptions::new().write(true).open(p).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len + 4096).unwrap();
        },
        30,
    );
}

#[test]
fn unclean_shutdown_without_recovery_flag_rebuilds_untrimmed_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg_big_segments(), false).unwrap();
    for i in 0..10 {
        append(&mut log, 3, T0 + i);
    }
    drop(log); // indexes left preallocated (zero tail)
    let log = Log::open(dir.path(), small_cfg_big_segments(), false).unwrap();
    assert_eq!(log.log_end_offset(), 30);
    let hs = read_all(&log, 17, 1, true, i64::MAX);
    assert_eq!(hs[0].base_offset, 15);
}

#[test]
fn corrupt_index_of_old_segment_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
    for i in 0..30 {
        append(&mut log, 4, T0 + i);
    }
    let bases = log.segment_base_offsets();
    log.close().unwrap();
    let idx = dir.path().join(format!("{:020}.index", bases[0]));
    let good = fs::read(&idx).unwrap();
    assert!(good.len() >= 16);
    let mut bad = good.clone();
    bad.truncate(bad.len() - 3); // not a multiple of 8
    fs::write(&idx, &bad).unwrap();
    let tidx = dir.path().join(format!("{:020}.timeindex", bases[1]));
    fs::write(&tidx, [0xffu8; 24]).unwrap(); // decreasing garbage
    fs::remove_file(dir.path().join(format!("{:020}.timeindex", bases[2]))).unwrap();
    let log = Log::open(dir.path(), small_cfg(), false).unwrap();
    assert_eq!(
        fs::read(&idx).unwrap(),
        good,
        "rebuilt identically and trimmed"
    );
    assert_eq!(log.log_end_offset(), 120);
    for off in [0, 5, bases[1] + 1, bases[2] + 3, 119] {
        let hs = read_all(&log, off, 1, true, i64::MAX);
        assert!(hs[0].base_offset <= off && off <= hs[0].last_offset());
    }
}

#[test]
fn stray_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
    append(&mut log, 1, T0);
    log.close().unwrap();
    for name in [
        "00000000000000000000.log.deleted",
        "00000000000000000005.log.cleaned",
        "00000000000000000005.log.swap",
        "00000000000000000009.index",
        "foo.tmp",
    ] {
        fs::write(dir.path().join(name), b"x").unwrap();
    }
    fs::write(dir.path().join("leader-epoch-checkpoint"), b"0\n").unwrap();
    let log = Log::open(dir.path(), small_cfg(), false).unwrap();
    assert_eq!(log.log_end_offset(), 1);
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex",
            "leader-epoch-checkpoint"
        ]
    );
}

#[test]
fn timestamp_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
    // Each batch: 4 records, timestamps i*100 .. i*100+3.
    for i in 0..30 {
        append(&mut log, 4, T0 + i * 100);
    }
    assert!(log.segments_count() > 2);
    assert_eq!(
        log.offset_for_timestamp(T0).unwrap(),
        Some(TimestampOffset {
            timestamp: T0,
            offset: 0
        })
    );
    // Record-level inside a batch.
    assert_eq!(
        log.offset_for_timestamp(T0 + 1702).unwrap(),
        Some(TimestampOffset {
            timestamp: T0 + 1702,
            offset: 17 * 4 + 2
        })
    );
    // Between batches: the next batch's first record.
    assert_eq!(
        log.offset_for_timestamp(T0 + 1750).unwrap(),
        Some(TimestampOffset {
            timestamp: T0 + 1800,
            offset: 18 * 4
        })
    );
    assert_eq!(log.offset_for_timestamp(T0 + 10_000).unwrap(), None);
    assert_eq!(
        log.max_timestamp_and_offset().unwrap(),
        Some(TimestampOffset {
            timestamp: T0 + 2903,
            offset: 119
        })
    );
    // Out-of-order producer timestamps: the max is in an early record.
    let dir2 = tempfile::tempdir().unwrap();
    let mut log2 = Log::open(dir2.path(), small_cfg(), false).unwrap();
    let b = BatchBuilder::new(T0)
        .push(None, Some(b"a"), &[], T0)
        .push(None, Some(b"b"), &[], T0 + 50)
        .push(None, Some(b"c"), &[], T0 + 10)
        .build();
    log2.append(&b, T0).unwrap();
    assert_eq!(
        log2.max_timestamp_and_offset().unwrap(),
        Some(TimestampOffset {
            timestamp: T0 + 50,
            offset: 1
        })
    );
    assert_eq!(
        log2.offset_for_timestamp(T0 + 20).unwrap(),
        Some(TimestampOffset {
            timestamp: T0 + 50,
            offset: 1
        })
    );
    // LogAppendTime batch: every record carries the batch's max timestamp.
    let mut b = batch(3, T0);
    crate::record::set_log_append_time(&mut b, T0 + 999).unwrap();
    log2.append(&b, T0).unwrap();
    assert_eq!(
        log2.offset_for_timestamp(T0 + 60).unwrap(),
        Some(TimestampOffset {
            timestamp: T0 + 999,
            offset: 3
        })
    );
    assert_eq!(
        log2.max_timestamp_and_offset().unwrap(),
        Some(TimestampOffset {
            timestamp: T0 + 999,
            offset: 3
        })
    );
    // Time index survives reopen.
    log.close().unwrap();
    let log = Log::open(dir.path(), small_cfg(), false).unwrap();
    assert_eq!(
        log.offset_for_timestamp(T0 + 2301).unwrap(),
        Some(TimestampOffset {
            timestamp: T0 + 2301,
            offset: 23 * 4 + 1
        })
    );
}

#[test]
fn flush_plan_and_mark_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
    assert!(log.unflushed_files().files.is_empty());
    append(&mut log, 2, T0);
    let plan = log.unflushed_files();
    assert_eq!(plan.up_to, 2);
    // The data file only: indexes are rebuilt by recovery.
    assert_eq!(plan.files.len(), 1);
    plan.sync().unwrap();
    log.mark_flushed(plan.up_to);
    assert!(log.unflushed_files().files.is_empty());
    // Data spread over a roll: both segments are reported.
    for i in 0..20 {
        append(&mut log, 4, T0 + i);
    }
    let plan = log.unflushed_files();
    assert!(plan.files.len() >= 2);
    log.flush_all().unwrap();
    assert_eq!(log.flushed_offset(), log.log_end_offset());
}

#[test]
fn log_start_offset_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-3");
    let mut log = Log::open(&path, small_cfg(), false).unwrap();
    for i in 0..30 {
        append(&mut log, 4, T0 + i);
    }
    let bases = log.segment_base_offsets();
    log.set_log_start_offset(bases[2] + 1).unwrap();
    assert_eq!(log.log_start_offset(), bases[2] + 1);
    assert_eq!(log.segment_base_offsets()[0], bases[2]);
    assert!(!path.join(format!("{:020}.log", bases[0])).exists());
    assert!(log.read_plan(bases[2], 1, true, i64::MAX).is_err());
    assert_eq!(read_all(&log, bases[2] + 1, 1, true, i64::MAX).len(), 1);
    assert!(log.size_bytes() > 0);
    log.delete().unwrap();
    assert!(!path.exists());
}

#[test]
fn failed_append_does_not_advance_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_cfg(), false).unwrap();
    append(&mut log, 2, T0);
    let mut junk = batch(2, T0);
    junk.push(1); // trailing partial batch
    assert!(log.append(&junk, T0).is_err());
    assert!(log.append(&[], T0).is_err());
    assert_eq!(log.log_end_offset(), 2);
    assert_eq!(read_all(&log, 0, 1 << 20, false, i64::MAX).len(), 1);
}

#[test]
fn a_corrupt_batch_in_a_sealed_segment_is_never_served() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = Log::open(&path, small_cfg(), false).unwrap();
    for i in 0..30 {
        append(&mut log, 2, T0 + i * 10);
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3, "{bases:?}");
    let (seg_base, next_base) = (bases[1], bases[2]);
    log.close().unwrap();
    // One bit flipped in the record data of the second batch of a sealed segment.
    let file = path.join(crate::storage::segment::segment_file_name(seg_base, ".log"));
    let bytes = std::fs::read(&file).unwrap();
    let hs = headers(&bytes);
    let at = hs[0].total_size() + hs[1].total_size() - 5;
    let f = fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.write_all_at(&[bytes[at] ^ 0x01], at as u64).unwrap();
    drop(f);

    let log = Log::open(&path, small_cfg(), false).unwrap();
    crate::storage::scrubber::scrub_now(&log.scrub_jobs());
    let bad = hs[1].base_offset;
    // The batch before it is served; the read stops there.
    let got = read_all(&log, seg_base, 1 << 20, true, i64::MAX);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].base_offset, seg_base);
    // At (or past, inside the segment) the corrupt batch: CORRUPT_MESSAGE's error.
    for offset in [bad, bad + 3] {
        match log.read_plan(offset, 1 << 20, true, i64::MAX) {
            Err(StorageError::CorruptRecords {
                offset: o,
                position,
                ..
            }) => {
                assert_eq!((o, position), (bad, hs[0].total_size() as u64));
            }
            other => panic!("fetch at {offset}: {other:?}"),
        }
    }
    // Earlier and later segments read as before.
    assert_eq!(read_all(&log, 0, 1 << 20, true, i64::MAX)[0].base_offset, 0);
    assert_eq!(
        read_all(&log, next_base, 1 << 20, true, i64::MAX)[0].base_offset,
        next_base
    );
    assert!(crate::storage::scrubber::corrupt_segments_total() >= 1);
}

/// Flips one byte in the middle of the `i`th batch of a log of equal batches.
fn flip_byte_in_batch(path: &Path, batch_len: u64, i: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[(batch_len * i + batch_len / 2) as usize] ^= 0xff;
    fs::write(path, bytes).unwrap();
}

#[test]
fn recovery_from_a_point_scans_only_past_it_and_checks_where_it_resumes() {
    let cfg = LogConfig {
        index_interval_bytes: 0, // an index entry per batch
        segment_index_bytes: 4096,
        ..LogConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), cfg.clone(), false).unwrap();
    for i in 0..20 {
        append(&mut log, 3, T0 + 10 * i);
    }
    log.flush_all().unwrap();
    assert_eq!(log.recovery_point(), 60);
    let path = last_segment_path(&log);
    let batch_len = batch(3, T0).len() as u64;
    drop(log); // unclean: indexes left untrimmed
    flip_byte_in_batch(&path, batch_len, 3);
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, &[0xAB; 100]).unwrap();
    drop(f);

    // Below the point nothing is re-read (batch 3 stays); the tail is cut.
    let mut log = Log::load(dir.path(), cfg.clone(), Some(45)).unwrap();
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(fs::metadata(&path).unwrap().len(), 20 * batch_len);
    // What was recovered past the point is not durable yet.
    assert_eq!(log.recovery_point(), 45);
    // Timestamps and index from before the point survive the partial scan.
    let t = log.offset_for_timestamp(T0 + 150).unwrap().unwrap();
    assert_eq!(t.offset, 45);
    let t = log.offset_for_timestamp(T0 + 41).unwrap().unwrap();
    assert_eq!(t.offset, 13);
    assert_eq!(log.active().max_timestamp_so_far(), T0 + 192);
    assert_eq!(
        read_all(&log, 30, 1 << 20, false, i64::MAX)[0].base_offset,
        30
    );
    assert_eq!(append(&mut log, 2, T0 + 500).first_offset, 60);
    drop(log); // unclean again

    // The batch the scan would resume after fails its CRC: the whole
    // segment is scanned instead, and the log ends before batch 3.
    flip_byte_in_batch(&path, batch_len, 14);
    let log = Log::load(dir.path(), cfg.clone(), Some(45)).unwrap();
    assert_eq!(log.log_end_offset(), 9);
    drop(log);

    // A point at or below the active segment's base: a full scan as well.
    let log = Log::load(dir.path(), cfg, Some(0)).unwrap();
    assert_eq!(log.log_end_offset(), 9);
}
