//! Tests of produce validation and recompression.

use super::*;
use crate::record::batch::tests::{batch, NOW};
use crate::record::batch::{
    record_timestamps, set_log_append_time, verify_crc, RecordTimestamps, BASE_OFFSET_OFFSET,
    LAST_OFFSET_DELTA_OFFSET, MAGIC_OFFSET, RECORDS_COUNT_OFFSET,
};
use crate::record::builder::BatchBuilder;
use crate::record::error::RecordFault;
use crate::record::varint::read_varint;

fn multi_cfg() -> ValidationConfig {
    ValidationConfig {
        single_batch: false,
        ..ValidationConfig::default()
    }
}

fn code(r: Result<ValidatedRecords, RecordError>) -> i16 {
    r.expect_err("should fail").kafka_error_code()
}

#[test]
fn validates_good_batches() {
    let mut buf = batch(3);
    buf.extend_from_slice(&batch(2));
    let v = validate_produce_records(&buf, NOW, &multi_cfg()).unwrap();
    assert_eq!(v.batches.len(), 2);
    assert_eq!(v.record_count, 5);
    assert_eq!(v.max_timestamp, NOW + 2);
    assert_eq!(v.offset_delta_of_max_timestamp, 2);
    assert_eq!(v.batches[1].position, batch(3).len());
    assert!(v.batches.iter().all(|b| b.records_validated));
}

#[test]
fn single_batch_rule_for_produce() {
    let mut buf = batch(1);
    buf.extend_from_slice(&batch(1));
    assert_eq!(
        code(validate_produce_records(
            &buf,
            NOW,
            &ValidationConfig::default()
        )),
        87
    );
    assert_eq!(
        code(validate_produce_records(
            &[],
            NOW,
            &ValidationConfig::default()
        )),
        87
    );
}

#[test]
fn crc_flip_is_corrupt_message() {
    let mut b = batch(2);
    let last = b.len() - 1;
    b[last] ^= 0x01;
    let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
    assert!(matches!(err, RecordError::CrcMismatch { .. }));
    assert_eq!(err.kafka_error_code(), 2);
}

#[test]
fn partial_trailing_batch_rejected() {
    let mut buf = batch(2);
    let second = batch(2);
    buf.extend_from_slice(&second[..second.len() - 5]);
    let err = validate_produce_records(&buf, NOW, &multi_cfg()).unwrap_err();
    assert!(
        matches!(err, RecordError::PartialBatch { batch_index: 1, .. }),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 87);
    // A few stray bytes that do not even hold a length.
    let mut buf = batch(1);
    buf.extend_from_slice(&[0, 0, 0]);
    assert_eq!(code(validate_produce_records(&buf, NOW, &multi_cfg())), 87);
}

#[test]
fn magic_and_size_errors() {
    let mut b = batch(1);
    b[MAGIC_OFFSET] = 1;
    let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
    assert!(matches!(
        err,
        RecordError::UnsupportedMagic { magic: 1, .. }
    ));
    assert_eq!(err.kafka_error_code(), 87);
    b[MAGIC_OFFSET] = 7;
    assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 2);
    let mut b = batch(1);
    b[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        validate_produce_records(&b, NOW, &multi_cfg()),
        Err(RecordError::BatchTooSmall { .. })
    ));
}

#[test]
fn message_too_large() {
    let b = batch(10);
    let cfg = ValidationConfig {
        max_message_bytes: b.len() - 1,
        ..multi_cfg()
    };
    let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
    assert_eq!(err.kafka_error_code(), 10);
    let cfg = ValidationConfig {
        max_message_bytes: b.len(),
        ..multi_cfg()
    };
    assert!(validate_produce_records(&b, NOW, &cfg).is_ok());
}

/// Rewrites a field and fixes the CRC so only the intended check fires.
fn patch(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
    let crc = compute_crc(b);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn record_walk_count_and_length_mismatch() {
    // Count says 4, only 3 records present.
    let mut b = batch(3);
    patch(&mut b, RECORDS_COUNT_OFFSET, &4i32.to_be_bytes());
    patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &3i32.to_be_bytes());
    let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::InvalidRecord {
                record_index: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 87);
    // Count says 2, 3 present: bytes remain.
    let mut b = batch(3);
    patch(&mut b, RECORDS_COUNT_OFFSET, &2i32.to_be_bytes());
    patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &1i32.to_be_bytes());
    let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
    assert!(matches!(err, RecordError::InvalidRecord { .. }), "{err}");
    // lastOffsetDelta inconsistent with count.
    let mut b = batch(3);
    patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &5i32.to_be_bytes());
    assert!(matches!(
        validate_produce_records(&b, NOW, &multi_cfg()),
        Err(RecordError::InvalidBatch { .. })
    ));
    // Zero records.
    let mut b = batch(1);
    patch(&mut b, RECORDS_COUNT_OFFSET, &0i32.to_be_bytes());
    assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
    // First record's length prefix grown by one: it now swallows a byte of the next.
    let mut b = batch(2);
    let mut p = 0;
    let len = read_varint(&b[RECORDS_OFFSET..], &mut p).unwrap();
    assert!(len < 63);
    patch(&mut b, RECORDS_OFFSET, &[((len + 1) * 2) as u8]);
    assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
}

#[test]
fn offset_delta_must_match_index() {
    let b = BatchBuilder::new(NOW)
        .push_record(0, NOW, Some(b"a"), Some(b"1"), &[])
        .push_record(5, NOW, Some(b"b"), Some(b"2"), &[])
        .build();
    let mut b = b.to_vec();
    patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &1i32.to_be_bytes());
    let err = validate_produce_records(&b, NOW, &multi_cfg()).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::InvalidRecord {
                record_index: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn batch_level_rules() {
    let mut b = batch(1);
    patch(&mut b, BASE_OFFSET_OFFSET, &7i64.to_be_bytes());
    assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
    let b = BatchBuilder::new(NOW)
        .control(true)
        .push(None, None, &[], NOW)
        .build();
    assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
    let b = BatchBuilder::new(NOW)
        .producer(42, 0, -1)
        .push(None, Some(b"v"), &[], NOW)
        .build();
    assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), 87);
    let mut b = batch(1).to_vec();
    patch(&mut b, ATTRIBUTES_OFFSET, &6i16.to_be_bytes());
    // Kafka's log fails on the unknown codec with an exception no error
    // code names: UNKNOWN_SERVER_ERROR.
    assert_eq!(code(validate_produce_records(&b, NOW, &multi_cfg())), -1);
    let cfg = ValidationConfig {
        compacted: true,
        ..multi_cfg()
    };
    let b = BatchBuilder::new(NOW)
        .push(None, Some(b"v"), &[], NOW)
        .build();
    assert_eq!(code(validate_produce_records(&b, NOW, &cfg)), 87);
}

#[test]
fn timestamps() {
    let cfg = multi_cfg();
    let future = BatchBuilder::new(NOW)
        .push(None, Some(b"v"), &[], NOW + 3_600_001)
        .build();
    let err = validate_produce_records(&future, NOW, &cfg).unwrap_err();
    assert_eq!(err.kafka_error_code(), 32);
    assert_eq!(
        err.record_faults(),
        &[(
            0,
            RecordFault::TimestampOutOfRange {
                timestamp: NOW + 3_600_001,
                offset: 0,
                lower: NOW.wrapping_sub(i64::MAX),
                upper: NOW + 3_600_000,
            }
        )]
    );
    let ok = BatchBuilder::new(NOW)
        .push(None, Some(b"v"), &[], NOW + 3_600_000)
        .build();
    assert!(validate_produce_records(&ok, NOW, &cfg).is_ok());
    // Long.MAX "before" default: ancient timestamps are fine.
    let old = BatchBuilder::new(0).push(None, Some(b"v"), &[], 0).build();
    assert!(validate_produce_records(&old, NOW, &cfg).is_ok());
    let strict = ValidationConfig {
        timestamp_before_max_ms: 1000,
        ..multi_cfg()
    };
    assert_eq!(code(validate_produce_records(&old, NOW, &strict)), 32);
    // NO_TIMESTAMP is never range-checked.
    let none = BatchBuilder::new(-1)
        .push(None, Some(b"v"), &[], -1)
        .build();
    assert!(validate_produce_records(&none, NOW, &strict).is_ok());
    // Producer claiming LogAppendTime on a LogAppendTime topic.
    let mut lat = ok.to_vec();
    set_log_append_time(&mut lat, NOW).unwrap();
    let topic_lat = ValidationConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..multi_cfg()
    };
    assert_eq!(code(validate_produce_records(&lat, NOW, &topic_lat)), 32);
    // Future timestamps are fine on a LogAppendTime topic.
    assert!(validate_produce_records(&future, NOW, &topic_lat).is_ok());
}

fn compressed(n: usize) -> BatchBuilder {
    let mut b = BatchBuilder::new(NOW)
        .producer(7, 3, 11)
        .transactional(true);
    for i in 0..n {
        // Max timestamp on record 2, twice, so the first holder counts.
        let ts = NOW + [5, 1, 9, 9, 0][i % 5];
        b = b.push(
            Some(format!("k{i}").as_bytes()),
            Some(format!("value {i} ").repeat(20).as_bytes()),
            &[("h", b"x")],
            ts,
        );
    }
    b
}

#[test]
fn compressed_batches_are_fully_validated() {
    for codec in 1..=4u8 {
        let b = compressed(5).build_compressed(codec);
        assert!(b.len() < compressed(5).build().len(), "codec {codec}");
        let v = validate_produce_records(&b, NOW, &multi_cfg()).unwrap();
        let s = v.batches[0];
        assert!(s.records_validated);
        assert_eq!(
            (s.max_timestamp, s.offset_delta_of_max_timestamp),
            (NOW + 9, 2)
        );
        assert_eq!(
            (v.max_timestamp, v.offset_delta_of_max_timestamp),
            (NOW + 9, 2)
        );
        assert_eq!(v.source_compression, Compression::from_id(codec).unwrap());
        let RecordTimestamps::Records(it) = record_timestamps(&b).unwrap() else {
            panic!("codec {codec}: records should be available")
        };
        let ts: Vec<_> = it.map(|r| r.unwrap().timestamp - NOW).collect();
        assert_eq!(ts, vec![5, 1, 9, 9, 0]);
    }
}

/// Replaces a compressed batch's records section and fixes
/// batchLength and CRC, so only the record-level check can fire.
fn with_records(b: &[u8], records: &[u8]) -> Vec<u8> {
    let mut out = b[..RECORDS_OFFSET].to_vec();
    out.extend_from_slice(records);
    let len = (out.len() - LOG_OVERHEAD) as i32;
    out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&len.to_be_bytes());
    let crc = compute_crc(&out);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn compressed_record_rules() {
    let cfg = multi_cfg();
    // Header says 4 records, stream holds 3.
    let mut b = compressed(3).build_compressed(4).to_vec();
    patch(&mut b, RECORDS_COUNT_OFFSET, &4i32.to_be_bytes());
    patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &3i32.to_be_bytes());
    let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::InvalidRecord {
                record_index: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 87);
    // Header says 2, stream holds 3: bytes remain.
    let mut b = compressed(3).build_compressed(1).to_vec();
    patch(&mut b, RECORDS_COUNT_OFFSET, &2i32.to_be_bytes());
    patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &1i32.to_be_bytes());
    assert_eq!(code(validate_produce_records(&b, NOW, &cfg)), 87);
    // Inner offsets must be 0..n-1.
    let mut b = BatchBuilder::new(NOW)
        .push_record(0, NOW, Some(b"a"), Some(b"1"), &[])
        .push_record(2, NOW, Some(b"b"), Some(b"2"), &[])
        .build_compressed(2)
        .to_vec();
    patch(&mut b, LAST_OFFSET_DELTA_OFFSET, &1i32.to_be_bytes());
    let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::InvalidRecord {
                record_index: 1,
                ..
            }
        ),
        "{err}"
    );
    // Keys on compacted topics.
    let b = BatchBuilder::new(NOW)
        .push(Some(b"k"), Some(b"v"), &[], NOW)
        .push(None, Some(b"v"), &[], NOW)
        .build_compressed(3);
    let compacted = ValidationConfig {
        compacted: true,
        ..multi_cfg()
    };
    let err = validate_produce_records(&b, NOW, &compacted).unwrap_err();
    assert_eq!(
        (err.kafka_error_code(), err.record_faults()),
        (87, &[(1, RecordFault::MissingKey)][..])
    );
    assert!(validate_produce_records(&b, NOW, &cfg).is_ok());
    // Per-record timestamps, not just the header's.
    let b = BatchBuilder::new(NOW)
        .push(None, Some(b"v"), &[], NOW)
        .push(None, Some(b"v"), &[], NOW + 3_600_001)
        .push(None, Some(b"v"), &[], NOW)
        .build_compressed(4);
    let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
    let indexes: Vec<i32> = err.record_faults().iter().map(|(i, _)| *i).collect();
    assert_eq!((err.kafka_error_code(), indexes), (32, vec![1]));
}

/// Every refused record of a batch is listed (Kafka's
/// RecordValidationException), each once, with the key checked before the
/// timestamp; one bad timestamp makes the whole answer INVALID_TIMESTAMP.
#[test]
fn refused_records_are_all_listed() {
    let compacted = ValidationConfig {
        compacted: true,
        ..multi_cfg()
    };
    let b = BatchBuilder::new(NOW)
        .push(None, Some(b"a"), &[], NOW)
        .push(Some(b"k"), Some(b"b"), &[], NOW)
        .push(None, Some(b"c"), &[], NOW)
        .push(None, None, &[], NOW)
        .build();
    let err = validate_produce_records(&b, NOW, &compacted).unwrap_err();
    assert_eq!(err.kafka_error_code(), 87);
    assert_eq!(
        err.record_faults(),
        &[
            (0, RecordFault::MissingKey),
            (2, RecordFault::MissingKey),
            (3, RecordFault::MissingKey)
        ]
    );
    assert_eq!(
        err.kafka_record_errors_message("t", 0).as_deref(),
        Some(
            "One or more records have been rejected due to 3 record errors in total, and only \
             showing the first three errors at most: [RecordError(batchIndex=0, message='Compacted \
             topic cannot accept message without key in topic partition t-0'), RecordError(batchIndex=2, \
             message='Compacted topic cannot accept message without key in topic partition t-0'), \
             RecordError(batchIndex=3, message='Compacted topic cannot accept message without key in \
             topic partition t-0')]"
        )
    );
    // Compressed batches too.
    let b = BatchBuilder::new(NOW)
        .push(None, Some(b"a"), &[], NOW)
        .push(None, Some(b"b"), &[], NOW)
        .build_compressed(1);
    let err = validate_produce_records(&b, NOW, &compacted).unwrap_err();
    let indexes: Vec<i32> = err.record_faults().iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes, vec![0, 1]);
    // A keyless record with a bad timestamp is refused for its key; another
    // record's bad timestamp makes the answer INVALID_TIMESTAMP.
    let b = BatchBuilder::new(NOW)
        .push(None, Some(b"a"), &[], NOW + 3_600_001)
        .push(Some(b"k"), Some(b"b"), &[], NOW + 3_600_001)
        .push(Some(b"k"), Some(b"c"), &[], NOW)
        .build();
    let err = validate_produce_records(&b, NOW, &compacted).unwrap_err();
    assert_eq!(err.kafka_error_code(), 32);
    assert_eq!(err.record_faults().len(), 2);
    assert_eq!(err.record_faults()[0], (0, RecordFault::MissingKey));
    assert!(matches!(
        err.record_faults()[1],
        (1, RecordFault::TimestampOutOfRange { offset: 1, .. })
    ));
    assert_eq!(
        err.kafka_record_errors_message("t", 0).as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    // A malformed record ends the walk: no per-record list.
    let mut b = BatchBuilder::new(NOW)
        .push(None, Some(b"a"), &[], NOW)
        .push(Some(b"k"), Some(b"b"), &[], NOW)
        .build();
    let n = b.len();
    patch(&mut b, n - 1, &[0x7f]); // the last record's header count
    let err = validate_produce_records(&b, NOW, &compacted).unwrap_err();
    assert!(matches!(err, RecordError::InvalidRecord { .. }), "{err}");
    assert!(err.record_faults().is_empty());
}

#[test]
fn undecodable_compressed_payloads() {
    let cfg = multi_cfg();
    for codec in 1..=4u8 {
        let good = compressed(5).build_compressed(codec);
        // Truncated stream, CRC recomputed so it is the codec that fails.
        let records = &good[RECORDS_OFFSET..];
        let cut = with_records(&good, &records[..records.len() / 2]);
        let err = validate_produce_records(&cut, NOW, &cfg).unwrap_err();
        assert_eq!(err.kafka_error_code(), 87, "codec {codec}: {err}");
        // Garbage.
        let junk: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let bad = with_records(&good, &junk);
        let err = validate_produce_records(&bad, NOW, &cfg).unwrap_err();
        assert!(
            matches!(err, RecordError::Decompression { .. }),
            "codec {codec}: {err}"
        );
        assert_eq!(err.kafka_error_code(), 87);
        // ListOffsets falls back to batch level instead of failing.
        assert!(matches!(
            record_timestamps(&bad).unwrap(),
            RecordTimestamps::NotAvailable
        ));
    }
    // A batch whose records only carry the codec bits is not a stream either.
    let b = BatchBuilder::new(NOW)
        .compression_codec(4)
        .push(Some(b"k"), Some(b"v"), &[], NOW)
        .build();
    assert_eq!(code(validate_produce_records(&b, NOW, &cfg)), 87);
}

#[test]
fn compressed_batch_over_budget_is_message_too_large() {
    // 20 MiB of records, a few KiB compressed; max.message.bytes 100 kB
    // gives the 16 MiB budget floor.
    let zeros = vec![0u8; 1 << 20];
    let mut b = BatchBuilder::new(NOW);
    for _ in 0..20 {
        b = b.push(None, Some(&zeros), &[], NOW);
    }
    let b = b.build_compressed(4);
    assert!(b.len() < 100_000);
    let cfg = ValidationConfig {
        max_message_bytes: 100_000,
        ..multi_cfg()
    };
    let err = validate_produce_records(&b, NOW, &cfg).unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::DecompressedTooLarge {
                budget: 16_777_216,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kafka_error_code(), 10);
    // With the default max.message.bytes (64 MiB budget) it is fine.
    assert!(validate_produce_records(&b, NOW, &multi_cfg()).is_ok());
}

#[test]
fn recompress_preserves_everything_but_codec() {
    let src = compressed(5).build_compressed(1);
    let sh = BatchHeader::parse(&src).unwrap();
    let src_records = batch_records(&src, 1 << 20).unwrap().into_owned();
    for target in [4u8, 0, 2, 3] {
        let out = recompress_batch(&src, target, 1 << 20).unwrap();
        let h = BatchHeader::parse(&out).unwrap();
        assert!(verify_crc(&out), "target {target}");
        assert_eq!(h.total_size(), out.len());
        assert_eq!(h.compression(), target);
        assert_eq!(
            (
                h.base_offset,
                h.partition_leader_epoch,
                h.producer_id,
                h.producer_epoch
            ),
            (
                sh.base_offset,
                sh.partition_leader_epoch,
                sh.producer_id,
                sh.producer_epoch
            )
        );
        assert_eq!(
            (h.base_sequence, h.last_offset_delta, h.records_count),
            (sh.base_sequence, sh.last_offset_delta, sh.records_count)
        );
        assert_eq!(
            (h.base_timestamp, h.max_timestamp),
            (sh.base_timestamp, sh.max_timestamp)
        );
        assert_eq!(
            h.attributes & !COMPRESSION_CODEC_MASK,
            sh.attributes & !COMPRESSION_CODEC_MASK
        );
        assert!(h.is_transactional());
        assert_eq!(batch_records(&out, 1 << 20).unwrap(), src_records);
        let v = validate_produce_records(&out, NOW, &multi_cfg()).unwrap();
        assert_eq!(v.record_count, 5);
    }
    // Same codec: unchanged bytes.
    assert_eq!(recompress_batch(&src, 1, 1 << 20).unwrap(), src);
    // Control batches pass through untouched.
    let ctl = BatchBuilder::new(NOW)
        .control(true)
        .push(None, None, &[], NOW)
        .build();
    assert_eq!(recompress_batch(&ctl, 4, 1 << 20).unwrap(), ctl);
    // Budget applies to the source; unknown target refused.
    assert_eq!(
        recompress_batch(&src, 4, 10)
            .unwrap_err()
            .kafka_error_code(),
        10
    );
    assert!(matches!(
        recompress_batch(&src, 6, 1 << 20),
        Err(RecordError::UnknownCompression { codec: 6, .. })
    ));
}

#[test]
fn produce_shape_is_kafkas_validate_records() {
    let ok = batch(2);
    assert!(validate_produce_shape(&ok, 3).is_ok());
    let shape = |b: &[u8], v| validate_produce_shape(b, v).expect_err("misshapen");
    assert!(matches!(shape(&[], 9), RecordError::NoBatches));
    let mut two = ok.clone();
    two.extend_from_slice(&batch(1));
    assert!(matches!(
        shape(&two, 9),
        RecordError::NotOneBatch { batch_index: 1, .. }
    ));
    // A second batch is one even when the first has a bad CRC: the shape
    // comes first (Kafka checks the CRC in the log).
    let last = ok.len() - 1;
    two[last] ^= 1;
    assert_eq!(shape(&two, 9).kafka_error_code(), 87);
    // A trailing partial batch is not a second batch: Kafka's iterator
    // stops before it.
    let mut trailing = ok.clone();
    trailing.extend_from_slice(&batch(1)[..20]);
    assert!(validate_produce_shape(&trailing, 9).is_ok());
    // Only a partial batch: none at all.
    assert_eq!(shape(&ok[..ok.len() - 1], 9).kafka_error_code(), 87);
    let mut old = ok.clone();
    old[MAGIC_OFFSET] = 1;
    assert!(matches!(
        shape(&old, 9),
        RecordError::UnsupportedMagic { .. }
    ));
    // zstd from Produce v7.
    let zstd = compressed(3).build_compressed(4);
    assert!(matches!(
        shape(&zstd, 6),
        RecordError::UnsupportedCompressionType { codec: 4, .. }
    ));
    assert!(validate_produce_shape(&zstd, 7).is_ok());
    // An unknown codec id (5..=7) is read only below v7, where it fails the
    // whole request; from v7 the log refuses it (UNKNOWN_SERVER_ERROR).
    for codec in 5..=7u8 {
        let mut unknown = ok.clone();
        let attrs =
            i16::from_be_bytes([unknown[ATTRIBUTES_OFFSET], unknown[ATTRIBUTES_OFFSET + 1]]);
        unknown[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
            .copy_from_slice(&(attrs | i16::from(codec)).to_be_bytes());
        let e = shape(&unknown, 6);
        assert!(matches!(e, RecordError::UnknownCompression { .. }), "{e}");
        assert!(fails_whole_request(&e));
        assert!(validate_produce_shape(&unknown, 7).is_ok());
        assert!(validate_produce_shape(&unknown, 13).is_ok());
        assert!(!fails_whole_request(
            &RecordError::UnsupportedCompressionType {
                batch_index: 0,
                codec: 4
            }
        ));
    }
    // Framed as Kafka's iterator frames: a length from 14 is a batch to the
    // shape (the log finds it too short for its header), below 14 corrupt.
    let short = |length: usize| {
        let mut b = ok[..LOG_OVERHEAD + length].to_vec();
        b[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4]
            .copy_from_slice(&(length as i32).to_be_bytes());
        b
    };
    assert!(validate_produce_shape(&short(14), 9).is_ok());
    assert!(validate_produce_shape(&short(48), 9).is_ok());
    assert!(matches!(
        validate_produce_records(&short(20), NOW, &ValidationConfig::default()),
        Err(RecordError::BatchTooSmall {
            batch_length: 20,
            ..
        })
    ));
    assert!(matches!(
        shape(&short(13), 9),
        RecordError::BatchTooSmall {
            batch_length: 13,
            ..
        }
    ));
    // Kafka reads the producer id (bytes 43..51) next: length 39 is the
    // shortest batch that holds it; a transactional batch with a producer
    // id needs its epoch and base sequence too (length 45).
    assert!(producer_fields_unreadable(&short(14)));
    assert!(producer_fields_unreadable(&short(38)));
    assert!(!producer_fields_unreadable(&short(39)));
    assert!(!producer_fields_unreadable(&ok));
    let mut txn = BatchBuilder::new(0)
        .producer(7, 0, 0)
        .transactional(true)
        .build();
    let cut = |b: &[u8], length: usize| {
        let mut b = b[..LOG_OVERHEAD + length].to_vec();
        b[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4]
            .copy_from_slice(&(length as i32).to_be_bytes());
        b
    };
    assert!(producer_fields_unreadable(&cut(&txn, 44)));
    assert!(!producer_fields_unreadable(&cut(&txn, 45)));
    // Its producer is read from there for verification, shorter than a
    // header (49) as it may be.
    let read =
        |b: &[u8]| transactional_producer(b).map(|p| (p.producer_id, p.epoch, p.base_sequence));
    assert_eq!(read(&cut(&txn, 45)), Some((7, 0, 0)));
    assert_eq!(read(&cut(&txn, 48)), Some((7, 0, 0)));
    assert_eq!(read(&txn), Some((7, 0, 0)));
    assert_eq!(read(&cut(&txn, 44)), None);
    // The base sequence comes along: the verification notes it.
    let later = BatchBuilder::new(0)
        .producer(7, 2, 40)
        .transactional(true)
        .build();
    assert_eq!(read(&cut(&later, 45)), Some((7, 2, 40)));
    let idempotent = BatchBuilder::new(0).producer(7, 0, 0).build();
    assert_eq!(read(&idempotent), None);
    assert_eq!(read(&ok), None);
    // without a producer id only the id is read
    txn[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&(-1i64).to_be_bytes());
    assert!(!producer_fields_unreadable(&cut(&txn, 39)));
}

#[test]
fn first_batches_are_kafkas_first_look() {
    let plain = batch(1);
    let txn = BatchBuilder::new(0)
        .producer(7, 0, 0)
        .transactional(true)
        .build();
    assert_eq!(first_batches_transactional([&plain[..]]), Ok(false));
    assert_eq!(
        first_batches_transactional([&plain[..], &txn[..]]),
        Ok(true)
    );
    // Only first batches, and nothing after a transactional one is framed.
    let mut tail = plain.clone();
    tail.extend_from_slice(&txn);
    assert_eq!(first_batches_transactional([&tail[..]]), Ok(false));
    let mut thirteen = plain[..LOG_OVERHEAD + 13].to_vec();
    thirteen[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&13i32.to_be_bytes());
    let corrupt = |message: &str| {
        Err(WholeRequestRefusal {
            code: 2,
            message: Some(message.to_string()),
        })
    };
    assert_eq!(
        first_batches_transactional([&plain[..], &thirteen[..]]),
        corrupt("Record size 13 is less than the minimum record overhead (14)")
    );
    assert_eq!(
        first_batches_transactional([&txn[..], &thirteen[..]]),
        Ok(true)
    );
    let mut magic = plain.clone();
    magic[MAGIC_OFFSET] = 5;
    assert_eq!(
        first_batches_transactional([&magic[..]]),
        corrupt("Invalid magic found in record: 5")
    );
    // A length whose size (length + 12) passes i32::MAX: Kafka's iterator
    // fails on the negative size, UNKNOWN_SERVER_ERROR without message; one
    // below is a batch the buffer does not hold.
    let with_length = |length: i32| {
        let mut b = plain.clone();
        b[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
        b
    };
    for length in [i32::MAX - 11, i32::MAX] {
        assert_eq!(
            first_batches_transactional([&with_length(length)[..]]),
            Err(WholeRequestRefusal {
                code: -1,
                message: None
            })
        );
    }
    assert_eq!(
        first_batches_transactional([&with_length(i32::MAX - 12)[..]]),
        Ok(false)
    );
    // ... and so does it as a second batch, past the first look.
    let mut second = plain.clone();
    second.extend_from_slice(&with_length(i32::MAX));
    let e = validate_produce_shape(&second, 9).expect_err("overflow");
    assert!(matches!(
        e,
        RecordError::BatchSizeOverflow { batch_index: 1, .. }
    ));
    assert!(fails_whole_request(&e));
    // Empty data and a partial batch have no first batch.
    assert_eq!(
        first_batches_transactional([&[][..], &plain[..20]]),
        Ok(false)
    );
}
