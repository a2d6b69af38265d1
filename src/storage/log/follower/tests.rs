//! Tests of the follower's append: a leader's batches copied byte for
//! byte with their offsets and epochs, and every malformed fetch refused
//! without writing anything.

use crate::record::batch::CRC_OFFSET;
use crate::record::BatchBuilder;
use crate::storage::log::Log;
use crate::storage::{LogConfig, StorageError};

const T0: i64 = 1_700_000_000_000;

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 500,
        index_interval_bytes: 100,
        segment_index_bytes: 1024,
        ..LogConfig::default()
    }
}

fn batch(n: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(T0);
    for i in 0..n {
        b = b.push(Some(b"k"), Some(&[b'v'; 30]), &[], T0 + i as i64);
    }
    b.build().to_vec()
}

/// The leader's log bytes from `from` (whole batches).
fn leader_bytes(leader: &Log, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < leader.log_end_offset() {
        let plan = leader.read_plan(offset, 1 << 20, true, i64::MAX).unwrap();
        let bytes = plan.read().unwrap();
        let mut last = offset;
        for (_, h) in crate::record::iter_batches(&bytes) {
            last = h.last_offset();
        }
        out.extend_from_slice(&bytes);
        offset = last + 1;
    }
    out
}

fn epochs(log: &Log) -> Vec<(i32, i64)> {
    log.leader_epochs()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

#[test]
fn follower_copies_the_leaders_batches_offsets_and_epochs() {
    let ld = tempfile::tempdir().unwrap();
    let fd = tempfile::tempdir().unwrap();
    let mut leader = Log::open(ld.path(), cfg(), false).unwrap();
    for (i, epoch) in [0, 0, 2, 2, 2, 4, 4, 9].into_iter().enumerate() {
        leader
            .append_as_leader(&batch(1 + i % 3), T0, epoch)
            .unwrap();
    }
    let all = leader_bytes(&leader, 0);
    let mut follower = Log::open(fd.path(), cfg(), false).unwrap();
    // Fetched in two pieces split at a batch boundary.
    let split = crate::record::iter_batches(&all).nth(3).unwrap().0;
    let r = follower.append_as_follower(&all[..split], T0).unwrap();
    assert_eq!(r.first_offset, 0);
    follower.append_as_follower(&all[split..], T0).unwrap();
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(leader_bytes(&follower, 0), all, "stored byte for byte");
    assert_eq!(epochs(&follower), epochs(&leader));
    assert_eq!(epochs(&follower), vec![(0, 0), (2, 3), (4, 9), (9, 13)]);
    assert!(follower.segments_count() > 1);
    drop(follower);
    let follower = Log::open(fd.path(), cfg(), true).unwrap();
    assert_eq!(epochs(&follower), epochs(&leader));
    assert_eq!(leader_bytes(&follower, 0), all);
}

#[test]
fn follower_accepts_a_gap_from_compaction() {
    let fd = tempfile::tempdir().unwrap();
    let mut follower = Log::open(fd.path(), cfg(), false).unwrap();
    let mut b = batch(2);
    crate::record::assign_offsets(&mut b, 10).unwrap();
    crate::record::set_partition_leader_epoch(&mut b, 1).unwrap();
    let r = follower.append_as_follower(&b, T0).unwrap();
    assert_eq!((r.first_offset, r.last_offset), (10, 11));
    assert_eq!(follower.log_end_offset(), 12);
    assert_eq!(epochs(&follower), vec![(1, 10)]);
}

#[test]
fn follower_refuses_bad_batches_and_writes_nothing() {
    let fd = tempfile::tempdir().unwrap();
    let mut follower = Log::open(fd.path(), cfg(), false).unwrap();
    let mut first = batch(3);
    crate::record::set_partition_leader_epoch(&mut first, 5).unwrap();
    follower.append_as_follower(&first, T0).unwrap();
    assert_eq!(follower.log_end_offset(), 3);
    let at = |offset: i64, epoch: i32| {
        let mut b = batch(1);
        crate::record::assign_offsets(&mut b, offset).unwrap();
        crate::record::set_partition_leader_epoch(&mut b, epoch).unwrap();
        b
    };
    // Overlapping what the log has.
    assert!(matches!(
        follower.append_as_follower(&at(2, 5), T0),
        Err(StorageError::InvalidRecords { .. })
    ));
    // An epoch going down.
    assert!(matches!(
        follower.append_as_follower(&at(3, 4), T0),
        Err(StorageError::InvalidRecords { .. })
    ));
    // Offsets not increasing inside one fetch, with a new epoch first.
    let mut two = at(3, 6);
    two.extend_from_slice(&at(3, 6));
    assert!(follower.append_as_follower(&two, T0).is_err());
    // A corrupt CRC.
    let mut bad = at(3, 6);
    bad[CRC_OFFSET] ^= 0xff;
    assert!(matches!(
        follower.append_as_follower(&bad, T0),
        Err(StorageError::Record(_))
    ));
    // A torn batch.
    let good = at(3, 6);
    assert!(follower
        .append_as_follower(&good[..good.len() - 1], T0)
        .is_err());
    assert!(follower.append_as_follower(&[], T0).is_err());
    assert_eq!(follower.log_end_offset(), 3);
    assert_eq!(epochs(&follower), vec![(5, 0)]);
    // The valid one goes in.
    follower.append_as_follower(&good, T0).unwrap();
    assert_eq!(epochs(&follower), vec![(5, 0), (6, 3)]);
}
