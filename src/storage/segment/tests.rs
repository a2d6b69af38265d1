//! Tests of one segment: append, offset and timestamp look-ups, reopen and
//! index rebuild, roll rules.

use super::*;
use crate::record::{assign_offsets, BatchBuilder};

fn cfg() -> LogConfig {
    LogConfig {
        index_interval_bytes: 100,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

fn append_batches(seg: &mut LogSegment, n: usize, records_per: usize, ts0: i64) {
    for i in 0..n {
        let mut b = BatchBuilder::new(ts0);
        for r in 0..records_per {
            b = b.push(
                Some(b"key"),
                Some(&[7u8; 40]),
                &[],
                ts0 + (i * records_per + r) as i64,
            );
        }
        let mut bytes = b.build();
        let last = assign_offsets(&mut bytes, seg.next_offset()).unwrap();
        seg.append(last, &bytes).unwrap();
    }
}

#[test]
fn append_translate_read_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = LogSegment::create(dir.path(), 10, &cfg(), 0).unwrap();
    append_batches(&mut seg, 20, 3, 1000);
    assert_eq!(seg.next_offset(), 70);
    assert!(seg.offset_index().entries() > 3);
    assert!(seg.time_index().entries() > 3);
    let (pos, h) = seg.translate_offset(35, 0).unwrap().unwrap();
    assert_eq!(h.base_offset, 34);
    assert!(pos > 0);
    assert!(seg.translate_offset(70, 0).unwrap().is_none());
    let r = seg.read(35, 1, seg.size(), true).unwrap().unwrap();
    assert_eq!(
        (r.position, r.len, r.first_offset),
        (pos, h.total_size(), 34)
    );
    let r = seg.read(35, 1, seg.size(), false).unwrap().unwrap();
    assert_eq!(r.len, 0);
    let t = seg
        .find_offset_by_timestamp(1000 + 25, 10)
        .unwrap()
        .unwrap();
    assert_eq!(
        t,
        TimestampOffset {
            timestamp: 1025,
            offset: 35
        }
    );
    assert!(seg.find_offset_by_timestamp(5000, 10).unwrap().is_none());
    let m = seg.max_timestamp_and_offset().unwrap().unwrap();
    assert_eq!(
        m,
        TimestampOffset {
            timestamp: 1059,
            offset: 69
        }
    );
}

#[test]
fn reopen_after_close_and_rebuild_on_missing_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = LogSegment::create(dir.path(), 0, &cfg(), 0).unwrap();
    append_batches(&mut seg, 10, 2, 500);
    let entries = seg.offset_index().entries();
    seg.close().unwrap();
    drop(seg);
    let seg = LogSegment::open(dir.path(), 0, &cfg(), 0).unwrap();
    assert_eq!(seg.next_offset(), 20);
    assert_eq!(seg.max_timestamp_so_far(), 519);
    assert_eq!(seg.offset_index().entries(), entries);
    drop(seg);
    std::fs::remove_file(dir.path().join(segment_file_name(0, INDEX_FILE_SUFFIX))).unwrap();
    let seg = LogSegment::open(dir.path(), 0, &cfg(), 0).unwrap();
    assert_eq!(seg.next_offset(), 20);
    assert_eq!(seg.offset_index().entries(), entries);
}

#[test]
fn should_roll_rules() {
    let dir = tempfile::tempdir().unwrap();
    let c = LogConfig {
        segment_bytes: 1000,
        segment_ms: 100,
        ..cfg()
    };
    let mut seg = LogSegment::create(dir.path(), 0, &c, 0).unwrap();
    assert!(
        !seg.should_roll(&c, 5000, 0, 0, 1_000_000),
        "empty segment never rolls by time/size"
    );
    append_batches(&mut seg, 1, 1, 1000);
    assert!(!seg.should_roll(&c, 10, 1050, 1, 0));
    assert!(
        seg.should_roll(&c, 10, 1101, 1, 0),
        "segment.ms by timestamps"
    );
    assert!(seg.should_roll(&c, 1000, 1000, 1, 0), "segment.bytes");
    assert!(
        seg.should_roll(&c, 10, 1000, i64::from(i32::MAX) + 1, 0),
        "offset overflow"
    );
}

/// The leader's append writes each batch with its prefix in place of its
/// own first bytes, leaving the caller's buffer as it was: the file must
/// hold exactly what an in-place rewrite would have produced, across more
/// slices than one `pwritev` takes, and the indexes must see the offsets
/// written, not the ones in the buffer.
#[test]
fn append_with_prefixes_stores_the_rewritten_batches_and_leaves_the_input_alone() {
    let dir = tempfile::tempdir().unwrap();
    let c = LogConfig {
        segment_index_bytes: 1 << 20,
        ..cfg()
    };
    let mut seg = LogSegment::create(dir.path(), 100, &c, 0).unwrap();
    let batches = MAX_WRITE_SLICES; // two slices each: two calls and more
    let mut input = Vec::new();
    for i in 0..batches {
        let ts = 2000 + i as i64;
        let b = BatchBuilder::new(ts)
            .push(Some(b"k"), Some(&[i as u8; 30]), &[], ts)
            .push(None, Some(b"second"), &[], ts);
        input.extend_from_slice(&b.build());
    }
    let before = input.clone();
    let (prefixes, last) = crate::record::leader_prefixes(&input, 100, Some(7)).unwrap();
    assert_eq!(prefixes.len(), batches);
    assert_eq!(last, 100 + 2 * batches as i64 - 1);
    seg.append_with_prefixes(last, &input, &prefixes).unwrap();
    assert_eq!(input, before, "the caller's buffer is not rewritten");

    let mut expected = before;
    assert_eq!(assign_offsets(&mut expected, 100).unwrap(), last);
    crate::record::set_partition_leader_epoch(&mut expected, 7).unwrap();
    let stored = std::fs::read(dir.path().join(segment_file_name(100, LOG_FILE_SUFFIX))).unwrap();
    assert_eq!(stored.len(), expected.len());
    assert!(
        stored == expected,
        "stored bytes differ from the in-place rewrite"
    );
    for (_, h) in iter_batches(&stored) {
        assert_eq!(h.partition_leader_epoch, 7);
    }
    assert_eq!(seg.next_offset(), last + 1);
    assert!(seg.offset_index().entries() > 100);
    let (_, h) = seg
        .translate_offset(101 + batches as i64, 0)
        .unwrap()
        .unwrap();
    assert_eq!(h.base_offset, 100 + batches as i64);
    assert_eq!(h.partition_leader_epoch, 7);
}
