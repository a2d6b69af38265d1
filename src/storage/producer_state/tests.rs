//! Tests of the producer state: sequence and epoch checks, the log replay,
//! and snapshots in Kafka's format and kastle's legacy one (KIP-890
//! verification entries: [`verification`]).

use super::*;
use crate::record::builder::BatchBuilder;
use crate::record::control::EndTransactionMarker;
use crate::storage::LogConfig;

mod verification;

fn header(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
    let mut b = BatchBuilder::new(1000).producer(pid, epoch, seq);
    for _ in 0..count {
        b = b.push(None, Some(b"v"), &[], 1000);
    }
    let mut bytes = b.build();
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
    BatchHeader::parse(&bytes).unwrap()
}

fn empty_mgr(dir: &Path) -> ProducerStateManager {
    ProducerStateManager {
        dir: dir.to_path_buf(),
        producers: BTreeMap::new(),
        ongoing: BTreeMap::new(),
        replayed_aborts: Vec::new(),
        expiration_ms: 86_400_000,
        last_expiry_check_ms: 0,
        verification_states: BTreeMap::new(),
        next_verification_guard: 1,
    }
}

/// A transactional data batch (timestamp 1000) at `base_offset`.
fn txn_header(pid: i64, epoch: i16, seq: i32, base_offset: i64) -> BatchHeader {
    let mut bytes = BatchBuilder::new(1000)
        .producer(pid, epoch, seq)
        .transactional(true)
        .push(None, Some(b"t"), &[], 1000)
        .build();
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
    BatchHeader::parse(&bytes).unwrap()
}

/// A COMMIT marker's batch at `offset`, written at `timestamp`.
fn marker_header(pid: i64, epoch: i16, offset: i64, timestamp: i64) -> BatchHeader {
    let m = EndTransactionMarker::new(true, 0);
    let mut bytes = BatchBuilder::new(timestamp)
        .producer(pid, epoch, -1)
        .transactional(true)
        .control(true)
        .push(Some(&m.key()), Some(&m.value()), &[], timestamp)
        .build();
    bytes[0..8].copy_from_slice(&offset.to_be_bytes());
    BatchHeader::parse(&bytes).unwrap()
}

/// Appends a batch of `count` records of producer `pid` to the log, now.
fn append(log: &mut Log, pid: i64, epoch: i16, seq: i32, count: i32) {
    let now = crate::util::now_ms();
    let mut b = BatchBuilder::new(now).producer(pid, epoch, seq);
    for _ in 0..count {
        b = b.push(None, Some(b"x"), &[], now);
    }
    log.append(&b.build(), now).unwrap();
}

fn load(dir: &Path, log: &Log) -> ProducerStateManager {
    ProducerStateManager::load(dir, log, 86_400_000, crate::util::now_ms()).unwrap()
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.snapshot"))
}

#[test]
fn duplicates_gaps_and_stale_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let b0 = header(7, 0, 0, 3, 0);
    assert_eq!(m.check(&b0), Ok(ProducerCheck::Append));
    m.apply(&b0);
    // The same batch again is a duplicate carrying its original offsets.
    match m.check(&b0) {
        Ok(ProducerCheck::Duplicate(meta)) => {
            assert_eq!((meta.first_offset, meta.last_offset), (0, 2))
        }
        other => panic!("{other:?}"),
    }
    // Next in sequence.
    let b1 = header(7, 0, 3, 2, 3);
    assert_eq!(m.check(&b1), Ok(ProducerCheck::Append));
    m.apply(&b1);
    // A gap.
    assert!(matches!(
        m.check(&header(7, 0, 9, 1, 0)),
        Err(ProducerError::OutOfOrderSequence { .. })
    ));
    // A new epoch must restart at 0.
    assert!(matches!(
        m.check(&header(7, 1, 5, 1, 0)),
        Err(ProducerError::OutOfOrderSequence { .. })
    ));
    let b2 = header(7, 1, 0, 1, 5);
    assert_eq!(m.check(&b2), Ok(ProducerCheck::Append));
    m.apply(&b2);
    // The old epoch is now fenced.
    let e = m.check(&header(7, 0, 5, 1, 0)).unwrap_err();
    assert_eq!(e.kafka_error_code(), 47);
    // An unknown producer may start at any sequence (its state may have expired).
    assert_eq!(m.check(&header(8, 3, 42, 1, 0)), Ok(ProducerCheck::Append));
    // Non-idempotent batches always append.
    assert_eq!(
        m.check(&header(-1, -1, -1, 1, 0)),
        Ok(ProducerCheck::Append)
    );
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    for i in 0..7 {
        m.apply(&header(1, 0, i, 1, i as i64));
    }
    assert_eq!(
        m.check(&header(1, 0, 6, 1, 0)),
        Ok(ProducerCheck::Duplicate(BatchMetadata {
            first_seq: 6,
            last_seq: 6,
            first_offset: 6,
            last_offset: 6,
            timestamp: 1000
        }))
    );
    assert!(matches!(
        m.check(&header(1, 0, 2, 1, 0)),
        Ok(ProducerCheck::Duplicate(_))
    ));
    // Batch 1 fell out of the window: no longer a duplicate, and out of order.
    assert!(matches!(
        m.check(&header(1, 0, 1, 1, 0)),
        Err(ProducerError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn sequence_wraps_at_int32_max() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let b = header(3, 0, i32::MAX - 1, 2, 0);
    assert_eq!(last_sequence(&b), i32::MAX);
    m.apply(&b);
    assert_eq!(m.check(&header(3, 0, 0, 1, 2)), Ok(ProducerCheck::Append));
    let wrapping = header(3, 0, i32::MAX, 3, 0);
    assert_eq!(last_sequence(&wrapping), 1);
}

#[test]
fn load_replays_the_log_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    append(&mut log, 5, 0, 0, 1);
    append(&mut log, 5, 0, 1, 1);
    let mut m = load(dir.path(), &log);
    assert_eq!(m.producers[&5].last_seq(), 1);
    m.take_snapshot(log.log_end_offset()).unwrap();
    append(&mut log, 5, 0, 2, 1);
    append(&mut log, 6, 0, 0, 1);
    let m = load(dir.path(), &log);
    assert_eq!(m.producers[&5].last_seq(), 2);
    // The snapshot kept only the batch at offset 1 (Kafka's format keeps a
    // producer's last batch), the replay added the one at offset 2.
    let firsts: Vec<i64> = m.producers[&5]
        .batches
        .iter()
        .map(|b| b.first_offset)
        .collect();
    assert_eq!(firsts, [1, 2]);
    assert_eq!(m.producers[&6].last_seq(), 0);
    // A batch retried after the restart is still recognised.
    let retry = header(5, 0, 2, 1, 0);
    assert!(
        matches!(m.check(&retry), Ok(ProducerCheck::Duplicate(meta)) if meta.first_offset == 2)
    );
}

#[test]
fn after_a_restart_only_the_snapshots_last_batch_is_a_duplicate() {
    // Kafka 4.4 after loading its snapshot: the producer's last batch is
    // answered as a duplicate with its original offsets; an older one of the
    // five it kept in memory is no longer known, so its retry is out of order
    // (OUT_OF_ORDER_SEQUENCE_NUMBER), as ProducerAppendInfo.checkSequence
    // finds; the next batch appends.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    for seq in 0..5 {
        append(&mut log, 5, 0, seq * 2, 2);
    }
    let mut m = load(dir.path(), &log);
    assert_eq!(m.producers[&5].batches.len(), 5);
    assert!(matches!(
        m.check(&header(5, 0, 6, 2, 0)),
        Ok(ProducerCheck::Duplicate(_))
    ));
    m.take_snapshot(log.log_end_offset()).unwrap();
    let m = load(dir.path(), &log);
    match m.check(&header(5, 0, 8, 2, 0)) {
        Ok(ProducerCheck::Duplicate(meta)) => assert_eq!(
            meta,
            BatchMetadata {
                first_seq: 8,
                last_seq: 9,
                first_offset: 8,
                last_offset: 9,
                timestamp: meta.timestamp
            }
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        m.check(&header(5, 0, 6, 2, 0)),
        Err(ProducerError::OutOfOrderSequence { last_seq: 9, .. })
    ));
    assert_eq!(m.check(&header(5, 0, 10, 1, 0)), Ok(ProducerCheck::Append));
}

#[test]
fn snapshot_is_kafkas_layout_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    // Producer 7: two batches; the snapshot holds the second (offsets 3-4,
    // sequences 3-4).
    m.apply(&header(7, 3, 0, 3, 0));
    m.apply(&header(7, 3, 3, 2, 3));
    // Producer 9: a transaction open since offset 5.
    m.apply(&txn_header(9, 1, 0, 5));
    // Producer 11: only a marker, so no data batch (last offset -1).
    m.apply_control(&marker_header(11, 4, 6, 2000), true, 17);
    m.take_snapshot(7).unwrap();
    let data = fs::read(snapshot_path(dir.path(), 7)).unwrap();
    assert_eq!(data.len(), 2 + 4 + 4 + 3 * 46);
    assert_eq!(&data[0..2], &[0, 1], "version 1");
    let crc = u32::from_be_bytes(data[2..6].try_into().unwrap());
    assert_eq!(crc, crc32c::crc32c(&data[6..]), "CRC-32C of all after it");
    assert_eq!(&data[6..10], &3i32.to_be_bytes());
    let entry = |i: usize| &data[10 + i * 46..10 + (i + 1) * 46];
    let mut want = Vec::new();
    want.extend_from_slice(&7i64.to_be_bytes()); // producer id
    want.extend_from_slice(&3i16.to_be_bytes()); // epoch
    want.extend_from_slice(&4i32.to_be_bytes()); // last sequence
    want.extend_from_slice(&4i64.to_be_bytes()); // last offset
    want.extend_from_slice(&1i32.to_be_bytes()); // offset delta
    want.extend_from_slice(&1000i64.to_be_bytes()); // timestamp
    want.extend_from_slice(&(-1i32).to_be_bytes()); // coordinator epoch
    want.extend_from_slice(&(-1i64).to_be_bytes()); // no open transaction
    assert_eq!(entry(0), &want[..]);
    assert_eq!(&entry(1)[0..8], &9i64.to_be_bytes());
    assert_eq!(
        &entry(1)[38..46],
        &5i64.to_be_bytes(),
        "transaction open at 5"
    );
    let mut want = Vec::new();
    want.extend_from_slice(&11i64.to_be_bytes());
    want.extend_from_slice(&4i16.to_be_bytes());
    want.extend_from_slice(&(-1i32).to_be_bytes()); // no sequence
    want.extend_from_slice(&(-1i64).to_be_bytes()); // no data offset
    want.extend_from_slice(&0i32.to_be_bytes());
    want.extend_from_slice(&2000i64.to_be_bytes()); // the marker's timestamp
    want.extend_from_slice(&17i32.to_be_bytes());
    want.extend_from_slice(&(-1i64).to_be_bytes());
    assert_eq!(entry(2), &want[..]);
    // Read back: each producer with its last batch only.
    let loaded = snapshot::decode_snapshot(&data).unwrap();
    assert_eq!(loaded.format, SnapshotFormat::Kafka);
    let p7 = &loaded.entries[0];
    assert_eq!(p7.batches.len(), 1);
    assert_eq!(p7.batches[0], *m.producers[&7].batches.back().unwrap());
    assert_eq!(loaded.entries[1], m.producers[&9]);
    assert_eq!(loaded.entries[2], m.producers[&11]);
}

#[test]
fn coordinator_written_batches_are_the_producers_last_data() {
    // Kafka's appendDataBatch records a batch without sequence (a
    // transactional offset commit) too: its offsets are the producer's last
    // data offset, in the snapshot and for the cleaner.
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let h = header(4, 2, -1, 3, 10);
    assert_eq!(m.check(&h), Ok(ProducerCheck::Append));
    m.apply(&h);
    let p = &m.producers[&4];
    assert_eq!(
        (p.last_seq(), p.batches.back().map(|b| b.last_offset)),
        (-1, Some(12))
    );
    // No sequence, so never a duplicate.
    assert_eq!(m.check(&h), Ok(ProducerCheck::Append));
    let loaded = snapshot::decode_snapshot(&snapshot::encode_snapshot(m.producers())).unwrap();
    let b = loaded.entries[0].batches[0];
    assert_eq!((b.last_seq, b.first_offset, b.last_offset), (-1, 10, 12));
}

#[test]
fn sequences_wrap_through_the_snapshot() {
    // A batch of 3 from Int32.MAX - 1 ends at sequence 1; its first sequence
    // is rebuilt from the last one and the offset delta as Kafka's
    // decrementSequence does.
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let h = header(3, 0, i32::MAX - 1, 3, 40);
    m.apply(&h);
    let loaded = snapshot::decode_snapshot(&snapshot::encode_snapshot(m.producers())).unwrap();
    assert_eq!(loaded.entries[0], m.producers[&3]);
    assert_eq!(loaded.entries[0].batches[0].first_seq, i32::MAX - 1);
    assert_eq!(snapshot::decrement_sequence(1, 2), i32::MAX);
    assert_eq!(snapshot::decrement_sequence(5, 2), 3);
    assert_eq!(snapshot::decrement_sequence(-1, 0), i32::MAX);
}

/// A Kafka-format snapshot of producer 5 with its last batch at offset 3
/// (sequence 3), made by kastle's writer.
fn good_snapshot() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    m.apply(&header(5, 0, 3, 1, 3));
    snapshot::encode_snapshot(m.producers())
}

/// The same bytes with the CRC recomputed, as a writer would have.
fn with_crc(mut data: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&data[6..]);
    data[2..6].copy_from_slice(&crc.to_be_bytes());
    data
}

#[test]
fn corrupt_snapshots_are_reported_as_kafka_does() {
    let good = good_snapshot();
    let err = |data: &[u8]| snapshot::decode_snapshot(data).unwrap_err().0;
    let mut v2 = good.clone();
    v2[1] = 2;
    assert_eq!(
        err(&v2),
        "Snapshot failed schema validation: Snapshot contained an unknown file version 2"
    );
    // kastle's former magic read as a version is what kafka-dump-log
    // reported for it.
    let mut kp = good.clone();
    kp[0..2].copy_from_slice(b"KP");
    assert_eq!(
        err(&kp),
        "Snapshot failed schema validation: Snapshot contained an unknown file version 19280"
    );
    let mut flipped = good.clone();
    flipped[20] ^= 0x10;
    assert!(
        err(&flipped).starts_with("Snapshot is corrupt (CRC is no longer valid). Stored crc: "),
        "{}",
        err(&flipped)
    );
    for cut in [0, 1, 2, 5, 6, 9, 10, 30, good.len() - 1] {
        assert!(
            err(&good[..cut]).starts_with("Snapshot failed schema validation: "),
            "cut at {cut}"
        );
    }
    let mut null = good.clone();
    null[6..10].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(err(&with_crc(null)).contains("serialized as null"));
    let mut many = good.clone();
    many[6..10].copy_from_slice(&47i32.to_be_bytes());
    assert!(err(&with_crc(many)).contains("there are only 46 bytes remaining"));
    // Kafka's readers refuse collections over 1,000,000 entries.
    let mut huge = good[..10].to_vec();
    huge[6..10].copy_from_slice(&1_000_001i32.to_be_bytes());
    huge.resize(10 + 1_000_001, 0);
    assert!(err(&with_crc(huge)).contains("exceeds the maximum allowed size of 1000000"));
}

#[test]
fn bytes_after_the_entries_are_ignored_under_a_valid_crc() {
    // Kafka's reader stops after the last entry but computes the CRC over
    // the whole file.
    let good = good_snapshot();
    let mut longer = good.clone();
    longer.extend_from_slice(b"tail");
    assert!(snapshot::decode_snapshot(&longer).is_err());
    let loaded = snapshot::decode_snapshot(&with_crc(longer)).unwrap();
    assert_eq!(loaded, snapshot::decode_snapshot(&good).unwrap());
}

#[test]
fn a_corrupt_snapshot_is_deleted_and_the_state_rebuilt_from_the_log() {
    // Whatever is wrong with the newest snapshot, loading neither fails nor
    // panics: as Kafka's loadFromSnapshot, the file is deleted and the state
    // comes from the log (here no older snapshot: the whole log).
    let good = good_snapshot();
    let mut bad_crc = good.clone();
    bad_crc[12] ^= 1;
    let mut version = good.clone();
    version[1] = 7;
    let mut legacy_bad_crc = snapshot::encode_legacy(std::iter::empty());
    *legacy_bad_crc.last_mut().unwrap() ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated header", good[..5].to_vec()),
        ("truncated entry", good[..good.len() - 3].to_vec()),
        ("bad CRC", bad_crc),
        ("unknown version", version),
        ("KPS1 with a bad CRC", legacy_bad_crc),
        ("truncated KPS1", b"KPS1\0\0".to_vec()),
        ("garbage", b"not a snapshot at all".to_vec()),
    ];
    for (name, data) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
        for seq in 0..3 {
            append(&mut log, 5, 0, seq, 1);
        }
        let path = snapshot_path(dir.path(), 3);
        fs::write(&path, &data).unwrap();
        let m = load(dir.path(), &log);
        assert!(!path.exists(), "{name}: the corrupt snapshot is deleted");
        let p = &m.producers[&5];
        assert_eq!((p.last_seq(), p.batches.len()), (2, 3), "{name}");
    }
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_to_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    append(&mut log, 5, 0, 0, 1);
    let mut m = load(dir.path(), &log);
    // State only the older snapshot knows (a coordinator epoch): proof that
    // it, not the log alone, was loaded.
    m.producers.get_mut(&5).unwrap().coordinator_epoch = 9;
    m.take_snapshot(1).unwrap();
    append(&mut log, 5, 0, 1, 1);
    append(&mut log, 5, 0, 2, 1);
    fs::write(snapshot_path(dir.path(), 3), b"\0\x01 broken").unwrap();
    let m = load(dir.path(), &log);
    assert!(!snapshot_path(dir.path(), 3).exists());
    assert!(snapshot_path(dir.path(), 1).exists());
    let p = &m.producers[&5];
    assert_eq!(p.coordinator_epoch, 9);
    let firsts: Vec<i64> = p.batches.iter().map(|b| b.first_offset).collect();
    assert_eq!(
        firsts,
        [0, 1, 2],
        "offset 0 from the snapshot, 1 and 2 replayed"
    );
}

#[test]
fn a_kastle_kps1_snapshot_still_loads_and_is_rewritten_in_kafkas_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    for seq in 0..5 {
        append(&mut log, 5, 0, seq, 1);
    }
    // What kastle before this format change wrote at its clean shutdown:
    // the last five batches, and a coordinator epoch no replay could know.
    let mut m = load(dir.path(), &log);
    m.producers.get_mut(&5).unwrap().coordinator_epoch = 6;
    let legacy = snapshot::encode_legacy(m.producers());
    let path = snapshot_path(dir.path(), 5);
    fs::write(&path, &legacy).unwrap();
    assert!(!snapshot::is_kafka_format(&path));
    let mut m = load(dir.path(), &log);
    let p = &m.producers[&5];
    assert_eq!(
        (p.coordinator_epoch, p.batches.len()),
        (6, 5),
        "all it holds is kept"
    );
    // An older batch is still a duplicate after this upgrade.
    assert!(matches!(
        m.check(&header(5, 0, 1, 1, 0)),
        Ok(ProducerCheck::Duplicate(meta)) if meta.first_offset == 1
    ));
    // Nothing appended since, but the snapshot at the log end is rewritten,
    // in Kafka's format.
    m.take_snapshot(5).unwrap();
    assert!(snapshot::is_kafka_format(&path));
    let m = load(dir.path(), &log);
    let p = &m.producers[&5];
    assert_eq!((p.coordinator_epoch, p.batches.len()), (6, 1));
    // And a snapshot in Kafka's format at the same offset is left alone.
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    let mut m = m;
    m.take_snapshot(5).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
}

#[test]
fn an_unreadable_snapshot_is_an_io_error_not_corruption() {
    // Kafka lets an IOException fail the log's load instead of deleting the
    // file; a directory is not even listed as a snapshot.
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_path(dir.path(), 0);
    fs::create_dir(&path).unwrap();
    assert!(matches!(
        snapshot::read_snapshot(&path),
        Err(snapshot::ReadError::Io(_))
    ));
    let log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    let m = load(dir.path(), &log);
    assert_eq!(m.producers().count(), 0);
    assert!(path.is_dir());
}

#[test]
fn producers_expired_while_down_are_dropped_at_load() {
    // Kafka's loadFromSnapshot skips producers idle for
    // producer.id.expiration.ms; one with an open transaction stays.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    let mut m = empty_mgr(dir.path());
    m.apply(&header(1, 0, 0, 1, 0)); // timestamp 1000
    m.apply(&txn_header(2, 0, 0, 1));
    m.take_snapshot(0).unwrap();
    let m = ProducerStateManager::load(dir.path(), &log, 500, 1499).unwrap();
    assert_eq!(m.producers().count(), 2);
    let m = ProducerStateManager::load(dir.path(), &log, 500, 1500).unwrap();
    let left: Vec<i64> = m.producers().map(|p| p.producer_id).collect();
    assert_eq!(left, [2]);
}

#[test]
fn replayed_markers_keep_their_coordinator_epoch() {
    // The replay used to pass -1 for every marker, so DescribeProducers
    // lost the coordinator epoch of markers written after the last
    // snapshot when the broker restarted.
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default(), false).unwrap();
    let now = crate::util::now_ms();
    let txn = |log: &mut Log, marker: Option<EndTransactionMarker>| {
        let b = BatchBuilder::new(now)
            .producer(5, 2, -1)
            .transactional(true);
        let b = match marker {
            None => b.push(None, Some(b"x"), &[], now).build(),
            Some(m) => b
                .control(true)
                .push(Some(&m.key()), Some(&m.value()), &[], now)
                .build(),
        };
        log.append(&b, now).unwrap();
    };
    txn(&mut log, None);
    txn(&mut log, Some(EndTransactionMarker::new(false, 3)));
    txn(&mut log, None);
    // A control batch that is not a transaction marker is skipped.
    let other = BatchBuilder::new(now)
        .producer(5, 2, -1)
        .transactional(true)
        .control(true)
        .push(Some(&[0, 0, 0, 42]), Some(b"?"), &[], now)
        .build();
    log.append(&other, now).unwrap();
    txn(&mut log, Some(EndTransactionMarker::new(true, 4)));
    let mut m = ProducerStateManager::load(dir.path(), &log, 86_400_000, now).unwrap();
    let p = &m.producers[&5];
    assert_eq!((p.epoch, p.coordinator_epoch), (2, 4));
    assert_eq!(
        p.current_txn_first_offset, None,
        "committed by the last marker"
    );
    let aborts = m.take_replayed_aborts();
    assert_eq!(aborts.len(), 1);
    assert_eq!((aborts[0].first_offset, aborts[0].last_offset), (0, 1));
}

#[test]
fn expired_producers_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    // As a dynamic producer.id.expiration.ms sets it.
    m.set_expiration_ms(1000);
    m.apply(&header(1, 0, 0, 1, 0));
    m.remove_expired(1999);
    assert_eq!(m.producers().count(), 1);
    // Kafka's isProducerExpired: idle for at least the expiration.
    m.remove_expired(2000);
    assert_eq!(m.producers().count(), 0);
}

/// The partition and snapshot a real Kafka 4.4 wrote, and what its
/// kafka-dump-log printed for the snapshot
/// (`compat-tests/gen_kafka_producer_snapshot.py` made them).
const KAFKA_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kafka-producer-snapshot"
);
const KAFKA_SNAPSHOT: &str = "00000000000000000010.snapshot";

/// kafka-dump-log's lines, `key: value` pairs separated by spaces.
fn kafka_dump() -> Vec<std::collections::HashMap<String, String>> {
    let text = fs::read_to_string(Path::new(KAFKA_FIXTURE).join("kafka-dump-log.txt")).unwrap();
    text.lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words
                .chunks(2)
                .map(|kv| (kv[0].trim_end_matches(':').to_string(), kv[1].to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn reads_the_snapshot_kafka_wrote() {
    // An idempotent producer (batches of 1, 2, 3 records), a committed
    // transaction, and a transaction still open at the clean shutdown.
    let data = fs::read(Path::new(KAFKA_FIXTURE).join(KAFKA_SNAPSHOT)).unwrap();
    let loaded = snapshot::decode_snapshot(&data).unwrap();
    assert_eq!(loaded.format, SnapshotFormat::Kafka);
    let dump = kafka_dump();
    assert_eq!(dump.len(), 3);
    assert_eq!(loaded.entries.len(), dump.len());
    for (e, d) in loaded.entries.iter().zip(&dump) {
        let n = |k: &str| -> i64 { d[k].parse().unwrap() };
        let b = e.batches.back().unwrap();
        let txn = match e.current_txn_first_offset {
            Some(o) => format!("OptionalLong[{o}]"),
            None => "OptionalLong.empty".into(),
        };
        assert_eq!(
            (
                e.producer_id,
                i64::from(e.epoch),
                i64::from(e.coordinator_epoch)
            ),
            (n("producerId"), n("producerEpoch"), n("coordinatorEpoch")),
        );
        assert_eq!(txn, d["currentTxnFirstOffset"]);
        assert_eq!(e.last_timestamp, n("lastTimestamp"));
        assert_eq!(
            (i64::from(b.first_seq), i64::from(b.last_seq), b.last_offset),
            (n("firstSequence"), n("lastSequence"), n("lastOffset")),
        );
        assert_eq!(
            (b.last_offset - b.first_offset, b.timestamp),
            (n("offsetDelta"), n("timestamp"))
        );
    }
}

#[test]
fn kastle_takes_over_kafkas_partition_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["00000000000000000000.log", KAFKA_SNAPSHOT] {
        fs::copy(Path::new(KAFKA_FIXTURE).join(f), dir.path().join(f)).unwrap();
    }
    let log = Log::open(dir.path(), LogConfig::default(), true).unwrap();
    assert_eq!(log.log_end_offset(), 10);
    // Expiry aside (the fixture's producers are old by now).
    let from_kafka = ProducerStateManager::load(dir.path(), &log, i64::MAX, 0).unwrap();
    assert_eq!(
        from_kafka.first_unstable_offset(),
        Some(9),
        "the open transaction"
    );
    // The idempotent producer's last batch (sequences 3-5) is a duplicate;
    // the next one appends.
    assert!(matches!(
        from_kafka.check(&header(0, 0, 3, 3, 0)),
        Ok(ProducerCheck::Duplicate(meta)) if (meta.first_offset, meta.last_offset) == (3, 5)
    ));
    assert_eq!(
        from_kafka.check(&header(0, 0, 6, 1, 0)),
        Ok(ProducerCheck::Append)
    );
    // kastle's own replay of Kafka's log, snapshotted, is byte for byte the
    // snapshot Kafka wrote: same fields, same values, same CRC.
    fs::remove_file(dir.path().join(KAFKA_SNAPSHOT)).unwrap();
    let mut replayed = ProducerStateManager::load(dir.path(), &log, i64::MAX, 0).unwrap();
    // (A snapshot has one timestamp per producer, its last: a batch read
    // from one carries it, in Kafka as here, while a replayed batch keeps
    // its own, older than the COMMIT marker's of the committed producer.)
    let last_batch = |p: &ProducerStateEntry| {
        p.batches
            .back()
            .map(|b| (b.first_seq, b.last_seq, b.first_offset, b.last_offset))
    };
    assert_eq!(replayed.producers().count(), 3);
    for (a, b) in replayed.producers().zip(from_kafka.producers()) {
        assert_eq!(last_batch(a), last_batch(b));
        assert_eq!(
            (
                a.epoch,
                a.coordinator_epoch,
                a.last_timestamp,
                a.current_txn_first_offset
            ),
            (
                b.epoch,
                b.coordinator_epoch,
                b.last_timestamp,
                b.current_txn_first_offset
            )
        );
    }
    replayed.take_snapshot(10).unwrap();
    assert_eq!(
        fs::read(dir.path().join(KAFKA_SNAPSHOT)).unwrap(),
        fs::read(Path::new(KAFKA_FIXTURE).join(KAFKA_SNAPSHOT)).unwrap()
    );
}

/// KIP-1228: a marker's epoch check by its transaction version (Kafka's
/// `ProducerAppendInfo.checkProducerEpoch` for markers).
#[test]
fn marker_epochs_are_checked_by_transaction_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let stale =
        |r: Result<(), ProducerError>| matches!(r, Err(ProducerError::InvalidProducerEpoch { .. }));
    // An unknown producer: any epoch.
    assert!(m.check_marker(5, 0, 0, 2).is_ok());
    // Producer 5 has a transaction open at epoch 3.
    m.apply(&txn_header(5, 3, 0, 0));
    // Before transaction version 2 the marker carries the producer's epoch.
    assert!(m.check_marker(5, 3, 0, 0).is_ok());
    assert!(m.check_marker(5, 3, 0, 1).is_ok());
    assert!(stale(m.check_marker(5, 2, 0, 0)));
    // Transaction version 2 ended it with the epoch bumped: the same epoch
    // with the transaction still open is stale.
    assert!(stale(m.check_marker(5, 3, 0, 2)));
    assert!(stale(m.check_marker(5, 2, 0, 2)));
    assert!(m.check_marker(5, 4, 0, 2).is_ok());
    // Written: a retry of the same marker is allowed, an older one not.
    m.apply_control(&marker_header(5, 4, 1, 2000), true, 0);
    assert!(m.check_marker(5, 4, 0, 2).is_ok());
    assert!(stale(m.check_marker(5, 3, 0, 2)));
}

/// Kafka's `checkCoordinatorEpoch`: once a marker of coordinator epoch 3
/// is written for a producer, a marker from an older coordinator is
/// TRANSACTION_COORDINATOR_FENCED; the same or a newer one passes.
#[test]
fn markers_from_an_older_coordinator_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let fenced = |r: Result<(), ProducerError>| {
        matches!(r, Err(ProducerError::CoordinatorFenced { current: 3, .. }))
    };
    assert!(m.check_marker(5, 0, 0, 0).is_ok(), "unknown producer");
    m.apply(&txn_header(5, 1, 0, 0));
    m.apply_control(&marker_header(5, 1, 1, 2000), true, 3);
    assert!(fenced(m.check_marker(5, 1, 2, 0)));
    assert_eq!(
        m.check_marker(5, 1, 2, 0).unwrap_err().kafka_error_code(),
        52
    );
    assert!(m.check_marker(5, 1, 3, 0).is_ok());
    assert!(m.check_marker(5, 1, 4, 0).is_ok());
    // The epoch is checked first, as Kafka does.
    assert!(matches!(
        m.check_marker(5, 0, 2, 0),
        Err(ProducerError::InvalidProducerEpoch { .. })
    ));
}

/// Kafka checks a batch's sequence before refusing a non-transactional
/// write inside the producer's open transaction (`appendDataBatch`).
#[test]
fn a_non_transactional_write_in_a_transaction_is_checked_in_sequence_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    m.apply(&txn_header(5, 0, 0, 0));
    assert!(matches!(
        m.check(&header(5, 0, 7, 1, 1)),
        Err(ProducerError::OutOfOrderSequence { .. })
    ));
    assert!(matches!(
        m.check(&header(5, 0, 1, 1, 1)),
        Err(ProducerError::InvalidTxnState {
            txn_first_offset: 0,
            ..
        })
    ));
}
