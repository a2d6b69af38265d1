//! Tests of truncation: Kafka's `truncateTo` / `truncateFullyAndStartAt`
//! results, and a crash after every step of each recovering to a
//! consistent log that the repeated truncation then finishes.

use std::path::Path;

use crate::record::{iter_batches, verify_crc, BatchBuilder};
use crate::storage::log::Log;
use crate::storage::LogConfig;

const T0: i64 = 1_700_000_000_000;

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 100,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    }
}

/// 30 batches of 2 records (offsets 0..60) in several segments; leader
/// epochs 0 for offsets 0..20, 3 for 20..40, 5 for 40..60.
fn build(dir: &Path) -> Log {
    let mut log = Log::open(dir, cfg(), false).unwrap();
    for i in 0..30i64 {
        let b = BatchBuilder::new(T0 + i)
            .push(Some(b"k"), Some(&[b'v'; 60]), &[], T0 + i)
            .push(Some(b"k"), Some(&[b'w'; 60]), &[], T0 + i)
            .build()
            .to_vec();
        let epoch = match i {
            0..10 => 0,
            10..20 => 3,
            _ => 5,
        };
        log.append_as_leader(&b, T0, epoch).unwrap();
    }
    assert!(log.segments_count() > 4, "{}", log.segments_count());
    log
}

fn epochs(log: &Log) -> Vec<(i32, i64)> {
    log.leader_epochs()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

/// Reads every batch from the log start: offsets must be increasing,
/// CRCs valid, the last batch must end at the log end offset, and the
/// epoch cache must know nothing past it.
fn assert_consistent(log: &Log) {
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    let mut last = offset - 1;
    while offset < end {
        let plan = log.read_plan(offset, 1 << 20, true, i64::MAX).unwrap();
        let bytes = plan.read().unwrap();
        if bytes.is_empty() {
            // A gap (as compaction leaves): only up to an empty active
            // segment starting at the log end.
            assert_eq!(log.active_segment_base_offset(), end, "nothing at {offset}");
            last = end - 1;
            break;
        }
        for (pos, h) in iter_batches(&bytes) {
            assert!(verify_crc(&bytes[pos..pos + h.total_size()]));
            assert!(
                h.base_offset > last,
                "offset {} after {last}",
                h.base_offset
            );
            last = h.last_offset();
        }
        offset = last + 1;
    }
    assert_eq!(last + 1, end.max(log.log_start_offset()));
    for e in log.leader_epochs().entries() {
        assert!(e.start_offset < end, "epoch entry {e:?} past log end {end}");
    }
}

#[test]
fn truncate_to_cuts_segments_indexes_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = build(dir.path());
    assert_eq!(epochs(&log), vec![(0, 0), (3, 20), (5, 40)]);
    // Offset 31 is inside the batch 30..31: that batch goes whole.
    assert!(log.truncate_to(31).unwrap());
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(epochs(&log), vec![(0, 0), (3, 20)]);
    assert_consistent(&log);
    // Reads and look-ups in the cut segment see only what is left.
    assert!(log.read_plan(31, 1000, true, i64::MAX).is_err());
    assert_eq!(
        log.offset_for_timestamp(T0 + 29).unwrap().map(|t| t.offset),
        None
    );
    assert_eq!(
        log.offset_for_timestamp(T0 + 14).unwrap().map(|t| t.offset),
        Some(28)
    );
    // The truncated log takes appends at the new end, in a new epoch.
    let b = BatchBuilder::new(T0)
        .push(None, Some(b"x"), &[], T0)
        .build()
        .to_vec();
    assert_eq!(log.append_as_leader(&b, T0, 7).unwrap().first_offset, 30);
    assert_eq!(epochs(&log), vec![(0, 0), (3, 20), (7, 30)]);
    // Truncating at or past the end changes nothing but stale epochs.
    assert!(!log.truncate_to(31).unwrap());
    assert!(!log.truncate_to(100).unwrap());
    assert_eq!(log.log_end_offset(), 31);
    drop(log);
    for recovery in [false, true] {
        let log = Log::open(dir.path(), cfg(), recovery).unwrap();
        assert_eq!(log.log_end_offset(), 31);
        assert_eq!(epochs(&log), vec![(0, 0), (3, 20), (7, 30)]);
        assert_consistent(&log);
    }
}

#[test]
fn truncate_to_a_segment_base_and_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = build(dir.path());
    let bases = log.segment_base_offsets();
    let base = bases[2];
    assert!(log.truncate_to(base).unwrap());
    assert_eq!(log.log_end_offset(), base);
    assert_eq!(log.segment_base_offsets(), bases[..3].to_vec());
    assert_consistent(&log);
    assert!(log.truncate_to(0).unwrap());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert!(epochs(&log).is_empty());
    assert_consistent(&log);
}

#[test]
fn truncate_fully_and_start_at_every_position() {
    for (target, start_before) in [(100, 0), (37, 0), (0, 0), (5, 20)] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = build(dir.path());
        if start_before > 0 {
            log.set_log_start_offset(start_before).unwrap();
        }
        log.truncate_fully_and_start_at(target).unwrap();
        assert_eq!(log.log_start_offset(), target);
        assert_eq!(log.log_end_offset(), target);
        assert_eq!(log.segment_base_offsets(), vec![target]);
        assert!(epochs(&log).is_empty());
        let b = BatchBuilder::new(T0)
            .push(None, Some(b"x"), &[], T0)
            .build()
            .to_vec();
        assert_eq!(
            log.append_as_leader(&b, T0, 9).unwrap().first_offset,
            target
        );
        drop(log);
        let log = Log::open(dir.path(), cfg(), true).unwrap();
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (target, target + 1)
        );
        assert_eq!(epochs(&log), vec![(9, target)]);
        assert_consistent(&log);
    }
}

/// kill -9 after every step: the reopened (recovered) log is consistent,
/// and repeating the truncation reaches exactly the uninterrupted result.
#[test]
fn a_crash_at_any_step_of_a_truncation_recovers_to_a_consistent_log() {
    type Op = fn(&mut Log) -> Result<(), crate::storage::StorageError>;
    let ops: [(&str, Op); 5] = [
        ("truncate_to(27)", |l| l.truncate_to(27).map(|_| ())),
        ("truncate_to(2)", |l| l.truncate_to(2).map(|_| ())),
        ("fully(100)", |l| l.truncate_fully_and_start_at(100)),
        ("fully(33)", |l| l.truncate_fully_and_start_at(33)),
        ("fully(0)", |l| l.truncate_fully_and_start_at(0)),
    ];
    let template = tempfile::tempdir().unwrap();
    build(template.path()).close().unwrap();
    let copy = || {
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(template.path()).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
        dir
    };
    for (name, op) in ops {
        let want = {
            let dir = copy();
            let mut log = Log::open(dir.path(), cfg(), false).unwrap();
            op(&mut log).unwrap();
            (
                log.log_start_offset(),
                log.log_end_offset(),
                epochs(&log),
                log.segment_base_offsets(),
            )
        };
        let mut steps = 0;
        loop {
            let dir = copy();
            let mut log = Log::open(dir.path(), cfg(), false).unwrap();
            log.crash_after(steps);
            let done = op(&mut log).is_ok();
            drop(log); // no close: the process died here
            let mut log = Log::open(dir.path(), cfg(), true).unwrap();
            assert_consistent(&log);
            op(&mut log).unwrap();
            let got = (
                log.log_start_offset(),
                log.log_end_offset(),
                epochs(&log),
                log.segment_base_offsets(),
            );
            assert_eq!(got, want, "{name} crashed after {steps} steps");
            if done {
                break;
            }
            steps += 1;
            assert!(steps < 50);
        }
    }
}
