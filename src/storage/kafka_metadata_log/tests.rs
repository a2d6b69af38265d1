//! Tests of the Kafka metadata log reader: snapshots framed by header and
//! footer, metadata transactions, torn tails, refusals, and garbage.

use super::*;
use crate::metadata::records::{FeatureLevelRecord, TopicRecord};
use crate::metadata::MetadataRecord;
use crate::record::builder::BatchBuilder;
use uuid::Uuid;

fn framed(record: MetadataRecord) -> Vec<u8> {
    RecordAndVersion { record, version: 0 }
        .encode()
        .expect("encodable")
}

fn topic(name: &str) -> Vec<u8> {
    framed(MetadataRecord::Topic(TopicRecord {
        name: name.to_string(),
        topic_id: Uuid::from_u128(7),
    }))
}

/// A value of a type kastle handles without decoding (version 0, empty).
fn bare(api_key: u8) -> Vec<u8> {
    vec![1, api_key, 0, 0]
}

fn batch(base_offset: i64, values: &[Vec<u8>]) -> Vec<u8> {
    let mut b = BatchBuilder::new(0);
    b.base_offset = base_offset;
    for v in values {
        b = b.push(None, Some(v), &[], 0);
    }
    b.build().to_vec()
}

fn control(base_offset: i64, t: ControlRecordType, value: &[u8]) -> Vec<u8> {
    let mut b = BatchBuilder::new(0).control(true);
    b.base_offset = base_offset;
    b.push(Some(&t.key()), Some(value), &[], 0).build().to_vec()
}

fn names(c: &MetadataLogContents) -> Vec<String> {
    c.records
        .iter()
        .filter_map(|r| match &r.record {
            MetadataRecord::Topic(t) => Some(t.name.clone()),
            _ => None,
        })
        .collect()
}

fn snapshot() -> Vec<u8> {
    let mut s = control(0, ControlRecordType::SnapshotHeader, &[0, 0]);
    // one voter: version 0, compact array of 1
    s.extend(control(1, ControlRecordType::KRaftVoters, &[0, 0, 2]));
    s.extend(batch(
        2,
        &[
            topic("a"),
            framed(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".into(),
                feature_level: 33,
            })),
        ],
    ));
    s.extend(control(4, ControlRecordType::SnapshotFooter, &[0, 0]));
    s
}

#[test]
fn a_snapshot_is_read_whole_and_refused_when_incomplete() {
    let s = snapshot();
    let c = read_snapshot_bytes(&s).expect("snapshot");
    assert_eq!(names(&c), ["a"]);
    assert_eq!(c.records.len(), 2);
    assert_eq!(c.voters, Some(1));
    // Without its footer, or cut anywhere, a snapshot is refused.
    let footer_at = s.len() - control(4, ControlRecordType::SnapshotFooter, &[0, 0]).len();
    assert!(read_snapshot_bytes(&s[..footer_at])
        .expect_err("no footer")
        .message
        .contains("SnapshotFooter"));
    for cut in 1..s.len() {
        assert!(read_snapshot_bytes(&s[..cut]).is_err(), "cut at {cut}");
    }
    // Records before the header are not a snapshot.
    let mut no_header = batch(0, &[topic("x")]);
    no_header.extend(&s);
    assert!(read_snapshot_bytes(&no_header).is_err());
}

#[test]
fn metadata_transactions_commit_or_vanish_and_open_ones_are_not_read() {
    let mut seg = batch(0, &[bare(23), topic("kept"), bare(24)]);
    seg.extend(batch(3, &[bare(23), topic("aborted"), bare(25)]));
    seg.extend(batch(6, &[bare(20), topic("plain"), bare(27)]));
    seg.extend(batch(9, &[bare(23), topic("open")]));
    let c = read_segment_bytes(&seg).expect("segment");
    assert_eq!(names(&c), ["kept", "plain"]);
    assert_eq!(c.next_offset, 11);
    // An end without a begin is not a log Kafka writes.
    assert!(read_segment_bytes(&batch(0, &[bare(24)])).is_err());
}

#[test]
fn a_torn_tail_ends_the_log_but_an_unknown_record_is_refused() {
    let mut seg = batch(0, &[topic("a")]);
    let whole = seg.len();
    seg.extend(batch(1, &[topic("b")]));
    // kill -9 mid-append: the last batch cut, or its bytes zeroed.
    for cut in whole..seg.len() {
        let c = read_segment_bytes(&seg[..cut]).expect("torn tail tolerated");
        assert_eq!(names(&c), ["a"], "cut at {cut}");
    }
    let mut zeroed = seg[..whole].to_vec();
    zeroed.extend(vec![0u8; 100]);
    assert_eq!(names(&read_segment_bytes(&zeroed).expect("zeroes")), ["a"]);
    // A record type kastle does not read, or a version beyond what it
    // knows, is an error naming it.
    let unknown = batch(0, &[vec![1, 99, 0, 0]]);
    let e = read_segment_bytes(&unknown).expect_err("unknown type");
    assert!(e.message.contains("type 99"), "{e}");
    let future = batch(0, &[vec![1, 2, 9, 0]]);
    assert!(read_segment_bytes(&future).is_err());
    // So is a record type kastle cannot carry over (DelegationTokenRecord).
    assert!(read_segment_bytes(&batch(0, &[bare(10)])).is_err());
}

#[test]
fn the_newest_snapshot_and_the_segments_after_it_are_read_from_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(!is_kafka_metadata_log(dir.path()));
    std::fs::write(
        dir.path()
            .join("00000000000000000005-0000000001.checkpoint"),
        snapshot(),
    )
    .expect("write");
    let mut seg = batch(0, &[topic("before-snapshot")]);
    seg.extend(control(1, ControlRecordType::LeaderChange, &[0, 0]));
    seg.extend(batch(4, &[topic("straddles"), topic("after")]));
    std::fs::write(dir.path().join("00000000000000000000.log"), seg).expect("write");
    assert!(is_kafka_metadata_log(dir.path()));
    let c = read(dir.path()).expect("read");
    assert_eq!(c.snapshot, Some((5, 1)));
    assert_eq!(names(&c), ["a", "after"]);
    assert_eq!(c.next_offset, 6);
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    let mut seg = snapshot();
    seg.extend(batch(5, &[bare(23), topic("t"), bare(24)]));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..2000 {
        let mut bytes = seg.clone();
        for _ in 0..1 + round % 4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % bytes.len();
            bytes[at] ^= (state >> 32) as u8 | 1;
        }
        let _ = read_snapshot_bytes(&bytes);
        let _ = read_segment_bytes(&bytes);
    }
}
