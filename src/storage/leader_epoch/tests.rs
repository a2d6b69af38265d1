//! Tests of the leader epoch cache: Kafka's assignment, end-offset and
//! truncation rules, and the checkpoint file's exact format.

use super::*;

fn cache() -> (tempfile::TempDir, LeaderEpochFileCache) {
    let dir = tempfile::tempdir().unwrap();
    let c = LeaderEpochFileCache::load(dir.path()).unwrap();
    (dir, c)
}

fn pairs(c: &LeaderEpochFileCache) -> Vec<(i32, i64)> {
    c.entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

#[test]
fn writes_kafkas_checkpoint_format_and_reloads_it() {
    let (dir, mut c) = cache();
    c.assign(0, 0).unwrap();
    c.assign(2, 10).unwrap();
    c.assign(5, 27).unwrap();
    let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
    assert_eq!(text, "0\n3\n0 0\n2 10\n5 27\n");
    let again = LeaderEpochFileCache::load(dir.path()).unwrap();
    assert_eq!(pairs(&again), vec![(0, 0), (2, 10), (5, 27)]);
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn same_epoch_later_offset_is_not_reassigned_and_negative_epochs_are_ignored() {
    let (dir, mut c) = cache();
    c.assign(1, 5).unwrap();
    c.assign(1, 9).unwrap();
    c.assign(-1, 12).unwrap();
    assert_eq!(pairs(&c), vec![(1, 5)]);
    assert!(!c.needs_assign(1, 20));
    assert!(c.needs_assign(2, 20));
    assert!(!c.needs_assign(-1, 20));
    // The same epoch at a lower offset replaces the entry (Kafka's rule).
    c.assign(1, 3).unwrap();
    assert_eq!(pairs(&c), vec![(1, 3)]);
    drop(dir);
}

#[test]
fn non_monotonic_assignment_truncates_conflicting_entries() {
    let (_dir, mut c) = cache();
    c.assign(2, 6).unwrap();
    c.assign(3, 8).unwrap();
    c.assign(4, 11).unwrap();
    // A lower epoch at a later offset removes the higher epochs.
    c.assign(3, 9).unwrap();
    assert_eq!(pairs(&c), vec![(2, 6), (3, 9)]);
    // A higher epoch at an offset below existing entries removes them.
    c.assign(5, 7).unwrap();
    assert_eq!(pairs(&c), vec![(2, 6), (5, 7)]);
}

#[test]
fn end_offset_for_follows_kafka() {
    let (_dir, mut c) = cache();
    assert_eq!(
        c.end_offset_for(0, 100),
        (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
    );
    c.assign(2, 6).unwrap();
    c.assign(4, 11).unwrap();
    c.assign(7, 15).unwrap();
    let leo = 20;
    assert_eq!(c.end_offset_for(UNDEFINED_EPOCH, leo), (-1, -1));
    // The latest epoch ends at the log end offset.
    assert_eq!(c.end_offset_for(7, leo), (7, leo));
    // An epoch in the cache ends where the next one starts.
    assert_eq!(c.end_offset_for(2, leo), (2, 11));
    assert_eq!(c.end_offset_for(4, leo), (4, 15));
    // A missing epoch between two: the floor epoch, ending at the next start.
    assert_eq!(c.end_offset_for(3, leo), (2, 11));
    assert_eq!(c.end_offset_for(6, leo), (4, 15));
    // Below every epoch: itself, ending where the first known starts.
    assert_eq!(c.end_offset_for(1, leo), (1, 6));
    // Above every epoch: undefined.
    assert_eq!(c.end_offset_for(8, leo), (-1, -1));
}

#[test]
fn truncate_from_end_and_start() {
    let (dir, mut c) = cache();
    c.assign(2, 6).unwrap();
    c.assign(3, 8).unwrap();
    c.assign(4, 11).unwrap();
    c.truncate_from_end(9).unwrap();
    assert_eq!(pairs(&c), vec![(2, 6), (3, 8)]);
    c.truncate_from_end(8).unwrap();
    assert_eq!(pairs(&c), vec![(2, 6)]);
    c.assign(3, 8).unwrap();
    c.assign(4, 11).unwrap();
    // Exclusive: the epoch covering the new start moves to it.
    c.truncate_from_start(9).unwrap();
    assert_eq!(pairs(&c), vec![(3, 9), (4, 11)]);
    c.truncate_from_start(11).unwrap();
    assert_eq!(pairs(&c), vec![(4, 11)]);
    let again = LeaderEpochFileCache::load(dir.path()).unwrap();
    assert_eq!(pairs(&again), vec![(4, 11)]);
    assert_eq!(c.epoch_for_offset(10), None);
    assert_eq!(c.epoch_for_offset(11), Some(4));
    assert_eq!(c.epoch_for_offset(50), Some(4));
    c.clear().unwrap();
    assert!(LeaderEpochFileCache::load(dir.path())
        .unwrap()
        .entries()
        .is_empty());
}

#[test]
fn corrupt_checkpoints_load_as_an_empty_cache() {
    for bad in [
        "",
        "1\n0\n",
        "0\n2\n0 0\n",
        "0\n1\n0 x\n",
        "0\n1\n0 0 0\n",
        "0\n99999999\n",
    ] {
        assert!(parse_checkpoint(bad).is_err(), "{bad:?}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), bad).unwrap();
        let c = LeaderEpochFileCache::load(dir.path()).unwrap();
        assert!(c.entries().is_empty(), "{bad:?}");
    }
    // Kafka's reader splits on any whitespace.
    assert_eq!(
        parse_checkpoint("0\n2\n1  4\n3\t9\n").unwrap(),
        vec![
            EpochEntry {
                epoch: 1,
                start_offset: 4
            },
            EpochEntry {
                epoch: 3,
                start_offset: 9
            }
        ]
    );
}

#[test]
fn loading_an_unchanged_cache_writes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let (dir, mut c) = cache();
    c.assign(0, 0).unwrap();
    let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
    let inode = std::fs::metadata(&path).unwrap().ino();
    // An empty partition: the loader drops the entry at its log end in
    // memory, then the leader assigns the same entry again.
    let mut again = LeaderEpochFileCache::load(dir.path()).unwrap();
    assert!(again.truncate_from_end_in_memory(0));
    assert!(again.entries().is_empty());
    again.assign(0, 0).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "rewritten");
    // A real change is written (atomically: a new file).
    again.assign(1, 5).unwrap();
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), inode);
    let reread = LeaderEpochFileCache::load(dir.path()).unwrap();
    assert_eq!(pairs(&reread), vec![(0, 0), (1, 5)]);
    // Truncated in memory only, a crash leaves the file as it was; the
    // next load truncates the same way.
    let mut t = LeaderEpochFileCache::load(dir.path()).unwrap();
    assert!(t.truncate_from_end_in_memory(3));
    drop(t);
    let mut t = LeaderEpochFileCache::load(dir.path()).unwrap();
    assert_eq!(pairs(&t), vec![(0, 0), (1, 5)]);
    assert!(t.truncate_from_end_in_memory(3));
    assert_eq!(pairs(&t), vec![(0, 0)]);
}
