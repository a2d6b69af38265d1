//! A KRaft metadata snapshot as Apache Kafka's `RecordsSnapshotWriter`
//! lays it out, for handing a directory back to Kafka: v2 record batches
//! from offset 0, the first a control batch opening with a SnapshotHeader
//! (then the KRaftVersion and KRaftVoters records when the quorum keeps
//! its voters in the log), then the metadata records, and a control batch
//! with the SnapshotFooter last. Every batch carries the snapshot's epoch
//! as its partition leader epoch. The file is named
//! `<end offset, 20 digits>-<epoch, 10 digits>.checkpoint`.

use std::path::{Path, PathBuf};

use crate::metadata::codec::Writer;
use crate::metadata::{MetadataError, RecordAndVersion};
use crate::record::builder::BatchBuilder;
use crate::record::control::ControlRecordType;
use crate::util::fs::write_atomically;

/// The most bytes of records in one metadata batch: far below Kafka's
/// `MAX_BATCH_SIZE_BYTES` (8 MiB) its snapshot reader accepts.
pub const MAX_SNAPSHOT_BATCH_BYTES: usize = 256 << 10;
/// The most bytes a record's framing adds to its value (length, attributes,
/// timestamp and offset deltas, key and value lengths, header count).
const RECORD_FRAMING_BYTES: usize = 28;

/// The file name of snapshot (`end_offset`, `epoch`).
pub fn snapshot_file_name(end_offset: i64, epoch: i32) -> String {
    format!("{end_offset:020}-{epoch:010}.checkpoint")
}

/// A KRaftVersion control record's value at `level` (version 0).
pub fn kraft_version_value(level: i16) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(0);
    w.i16(level);
    w.uvarint(0);
    w.buf
}

/// A KRaftVoters control record's value naming one voter: `node_id` with
/// the directory id of its metadata log directory, reachable on the
/// controller listener `listener` at `host:port`, supporting kraft.version
/// 0 to 1 (version 0 of the record).
pub fn single_voter_value(
    node_id: i32,
    directory_id: uuid::Uuid,
    listener: &str,
    host: &str,
    port: u16,
) -> Result<Vec<u8>, MetadataError> {
    let mut w = Writer::default();
    w.i16(0);
    w.array_len(1, "Voters")?;
    w.i32(node_id);
    w.uuid(directory_id);
    w.array_len(1, "Endpoints")?;
    w.string(listener, "Endpoints.Name")?;
    w.string(host, "Endpoints.Host")?;
    w.u16(port);
    w.uvarint(0);
    // KRaftVersionFeature: min and max supported
    w.i16(0);
    w.i16(1);
    w.uvarint(0);
    w.uvarint(0);
    w.uvarint(0);
    Ok(w.buf)
}

fn header_value(last_contained_timestamp: i64) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(0);
    w.i64(last_contained_timestamp);
    w.uvarint(0);
    w.buf
}

fn footer_value() -> Vec<u8> {
    vec![0, 0, 0]
}

/// The bytes of a snapshot holding `records`, its batches at `epoch`.
/// `controls`: the KRaftVersion and KRaftVoters values to carry, if any.
pub fn snapshot_bytes(
    epoch: i32,
    timestamp: i64,
    kraft_version: Option<&[u8]>,
    voters: Option<&[u8]>,
    records: &[RecordAndVersion],
) -> Result<Vec<u8>, MetadataError> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    let control = |base: i64| {
        let mut b = BatchBuilder::new(timestamp).control(true);
        b.base_offset = base;
        b.partition_leader_epoch = epoch;
        b
    };
    let mut head = control(offset).push(
        Some(&ControlRecordType::SnapshotHeader.key()),
        Some(&header_value(timestamp)),
        &[],
        timestamp,
    );
    if let Some(v) = kraft_version {
        head = head.push(
            Some(&ControlRecordType::KRaftVersion.key()),
            Some(v),
            &[],
            timestamp,
        );
    }
    if let Some(v) = voters {
        head = head.push(
            Some(&ControlRecordType::KRaftVoters.key()),
            Some(v),
            &[],
            timestamp,
        );
    }
    offset += i64::from(head.record_count());
    out.extend_from_slice(&head.build());
    let mut batch: Option<(BatchBuilder, usize)> = None;
    let flush = |b: BatchBuilder, out: &mut Vec<u8>, offset: &mut i64| {
        *offset += i64::from(b.record_count());
        out.extend_from_slice(&b.build());
    };
    for r in records {
        let value = r.encode()?;
        let size = value.len() + RECORD_FRAMING_BYTES;
        let (b, bytes) = match batch.take() {
            Some((b, bytes)) if bytes + size <= MAX_SNAPSHOT_BATCH_BYTES => (b, bytes),
            full => {
                if let Some((b, _)) = full {
                    flush(b, &mut out, &mut offset);
                }
                let mut b = BatchBuilder::new(timestamp);
                b.base_offset = offset;
                b.partition_leader_epoch = epoch;
                (b, 0)
            }
        };
        batch = Some((b.push(None, Some(&value), &[], timestamp), bytes + size));
    }
    if let Some((b, _)) = batch {
        flush(b, &mut out, &mut offset);
    }
    let foot = control(offset).push(
        Some(&ControlRecordType::SnapshotFooter.key()),
        Some(&footer_value()),
        &[],
        timestamp,
    );
    out.extend_from_slice(&foot.build());
    Ok(out)
}

/// Writes `bytes` as snapshot (`end_offset`, `epoch`) in the metadata log
/// directory `dir`: under a temporary name first, fsynced, then renamed
/// (a crash leaves no partial `.checkpoint`). Returns its path.
pub fn write_snapshot(
    dir: &Path,
    end_offset: i64,
    epoch: i32,
    bytes: &[u8],
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(snapshot_file_name(end_offset, epoch));
    write_atomically(&path, bytes)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::{FeatureLevelRecord, TopicRecord};
    use crate::metadata::MetadataRecord;
    use crate::record::batch::RECORD_BATCH_OVERHEAD;
    use crate::storage::kafka_metadata_log::{read, read_snapshot_bytes};

    fn records(n: usize) -> Vec<RecordAndVersion> {
        let mut out = vec![RecordAndVersion {
            record: MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: "metadata.version".into(),
                feature_level: 33,
            }),
            version: 0,
        }];
        for i in 0..n {
            out.push(RecordAndVersion {
                record: MetadataRecord::Topic(TopicRecord {
                    name: format!("topic-{i}-{}", "x".repeat(200)),
                    topic_id: uuid::Uuid::from_u128(i as u128 + 1),
                }),
                version: 0,
            });
        }
        out
    }

    #[test]
    fn a_written_snapshot_reads_back_whole() {
        let recs = records(3000);
        let voters = single_voter_value(1, uuid::Uuid::from_u128(9), "CONTROLLER", "h", 9093)
            .expect("voters");
        let kv = kraft_version_value(1);
        let bytes = snapshot_bytes(4, 1234, Some(&kv), Some(&voters), &recs).expect("bytes");
        let c = read_snapshot_bytes(&bytes).expect("reads back");
        assert_eq!(c.records, recs);
        assert_eq!(c.voters, Some(1));
        assert_eq!(c.voters_value.as_deref(), Some(&voters[..]));
        assert_eq!(c.kraft_version_value.as_deref(), Some(&kv[..]));
        // Batches were split (3000 records of ~230 bytes), offsets dense.
        let mut pos = 0;
        let mut next = 0;
        let mut batches = 0;
        while pos < bytes.len() {
            let h = crate::record::batch::BatchHeader::parse(&bytes[pos..]).expect("header");
            assert_eq!(h.base_offset, next);
            assert_eq!(h.partition_leader_epoch, 4);
            assert!(h.total_size() <= MAX_SNAPSHOT_BATCH_BYTES + RECORD_BATCH_OVERHEAD);
            next = h.next_offset();
            pos += h.total_size();
            batches += 1;
        }
        assert!(batches > 3, "{batches} batches");
        // Cut anywhere, it no longer reads as a snapshot.
        assert!(read_snapshot_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn the_newest_snapshot_file_wins_and_sets_the_offset_and_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = snapshot_bytes(0, 1, None, None, &records(1)).expect("bytes");
        write_snapshot(dir.path(), 5, 0, &old).expect("write");
        let recs = records(2);
        let new = snapshot_bytes(3, 2, Some(&kraft_version_value(1)), None, &recs).expect("bytes");
        let path = write_snapshot(dir.path(), 17, 3, &new).expect("write");
        assert!(path.ends_with("00000000000000000017-0000000003.checkpoint"));
        let c = read(dir.path()).expect("read");
        assert_eq!(c.records, recs);
        assert_eq!(c.snapshot, Some((17, 3)));
        assert_eq!(c.next_offset, 17);
        assert_eq!(c.last_epoch, 3);
    }
}
