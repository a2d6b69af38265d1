//! Black-box tests of compressed record batches against the real `kastle`
//! binary: each codec stored as sent, the zstd/Produce-v7 rule, topic-level
//! `compression.type` re-encoding, rejection of corrupt, truncated and
//! inconsistent compressed batches, decompression bombs (bounded memory,
//! other clients unaffected) and record-exact timestamp look-ups inside
//! compressed batches. Batches are built with the crate's own
//! `BatchBuilder` / `compression` module; everything on the wire is checked
//! independently (CRC-32C recomputed here, header fields compared byte-wise).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::support::admin::api_versions_ok;
use crate::support::fetch::{fetch_batches, latest, list_offset};
use crate::support::produce::{produce, produce_err, produce_ok, produce_v};
use crate::support::topics::create_topic;
use crate::support::transactions::idempotent_producer;
use crate::support::*;
use kastle::record::builder::BatchBuilder;
use kastle::record::compression::{compress, decompress};
use kastle::record::Compression;

const GZIP: u8 = 1;
const SNAPPY: u8 = 2;
const LZ4: u8 = 3;
const ZSTD: u8 = 4;
const CODECS: [u8; 4] = [GZIP, SNAPPY, LZ4, ZSTD];

/// Generous output limit for decompressing what the broker returns.
const BIG: usize = 64 << 20;

// ---------------------------------------------------------------------------
// Request helpers
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Batch helpers
// ---------------------------------------------------------------------------

fn compression(codec: u8) -> Compression {
    Compression::from_id(codec).expect("known codec")
}

/// `b`'s 61-byte header with a new records section: codec bits, batchLength
/// and CRC-32C made consistent, so only the payload itself can be wrong.
fn with_payload(b: &[u8], codec: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = b[..BATCH_HEADER_LEN].to_vec();
    out.extend_from_slice(payload);
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    let attrs = (batch_attributes(b) & !0x07) | i16::from(codec);
    out[21..23].copy_from_slice(&attrs.to_be_bytes());
    fix_crc(&mut out);
    out
}

/// Patch recordsCount and lastOffsetDelta consistently (so the header rules
/// pass and only the record walk can object), then fix the CRC.
fn set_count(b: &mut [u8], count: i32) {
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    fix_crc(b);
}

/// Semi-compressible value bytes.
fn value(i: usize, len: usize) -> Vec<u8> {
    format!("value-{i}-kastle-compression-")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(len)
        .collect()
}

/// A builder with `n` records: keys, values of a few hundred bytes, a null
/// value and headers, timestamps ts, ts+1, ...
fn sample_builder(n: usize, ts: i64) -> BatchBuilder {
    let mut b = BatchBuilder::new(ts);
    for i in 0..n {
        let key = format!("key-{i}");
        let v = value(i, 200 + i * 37);
        let hv = format!("hv-{i}");
        let headers: Vec<(&str, &[u8])> = if i % 2 == 0 {
            vec![("idx", hv.as_bytes()), ("empty", b"")]
        } else {
            vec![]
        };
        let val: Option<&[u8]> = if i == 1 { None } else { Some(&v) };
        b = b.push(Some(key.as_bytes()), val, &headers, ts + i as i64);
    }
    b
}

/// The uncompressed records section of a builder's batch.
fn raw_records(b: &BatchBuilder) -> Vec<u8> {
    b.build()[BATCH_HEADER_LEN..].to_vec()
}

/// Checks a fetched batch that the broker re-encoded from `original`
/// (a batch as produced, any codec) into `codec`: codec bits, batchLength,
/// CRC-32C, every other header field byte-identical, and the records
/// section decompressing to exactly `records`.
fn assert_recompressed(fetched: &[u8], original: &[u8], codec: u8, records: &[u8], what: &str) {
    assert_eq!(batch_codec(fetched), codec, "{what}: codec bits");
    assert_eq!(
        batch_attributes(fetched) & !0x07,
        batch_attributes(original) & !0x07,
        "{what}: other attribute bits"
    );
    let len = i32::from_be_bytes(fetched[8..12].try_into().unwrap()) as usize;
    assert_eq!(len + 12, fetched.len(), "{what}: batchLength");
    assert_eq!(fetched[16], 2, "{what}: magic");
    assert_eq!(
        batch_crc(fetched),
        crc32c::crc32c(&fetched[21..]),
        "{what}: CRC-32C"
    );
    // lastOffsetDelta, base/max timestamp, producer id/epoch, base sequence,
    // recordsCount: all unchanged.
    assert_eq!(fetched[23..61], original[23..61], "{what}: header fields");
    let got = if codec == 0 {
        fetched[BATCH_HEADER_LEN..].to_vec()
    } else {
        decompress(compression(codec), &fetched[BATCH_HEADER_LEN..], BIG)
            .unwrap_or_else(|e| panic!("{what}: stored records do not decompress: {e}"))
    };
    assert!(got == records, "{what}: decompressed records differ");
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// With the default `compression.type=producer` every codec is accepted on
/// Produce v9 and fetched back byte for byte (only the base offset, and the
/// leader epoch the leader may stamp, differ).
#[test]
fn each_codec_stored_as_sent() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "asis", 1, &[]);
    let mut expected_offset = 0;
    let mut produced = Vec::new();
    for (i, codec) in CODECS.into_iter().enumerate() {
        let bb = sample_builder(5 + i, 1_000_000 + i as i64 * 100);
        let batch = bb.build_compressed(codec).to_vec();
        assert_eq!(batch_codec(&batch), codec);
        let off = produce_ok(&mut c, "asis", 0, &batch);
        assert_eq!(off, expected_offset, "codec {codec}: base offset");
        expected_offset += bb.record_count() as i64;
        produced.push((codec, off, batch, raw_records(&bb)));
    }
    // Raw (unframed) snappy, as some clients send it, is fine too.
    let bb = sample_builder(3, 2_000_000);
    let raw_snappy = snap::raw::Encoder::new()
        .compress_vec(&raw_records(&bb))
        .unwrap();
    let batch = with_payload(&bb.build(), SNAPPY, &raw_snappy);
    let off = produce_ok(&mut c, "asis", 0, &batch);
    assert_eq!(off, expected_offset, "raw snappy: base offset");
    expected_offset += 3;
    produced.push((SNAPPY, off, batch, raw_records(&bb)));
    assert_eq!(latest(&mut c, "asis", 0), expected_offset);

    let fetched = fetch_batches(&mut c, "asis", 0, 0);
    assert_eq!(fetched.len(), produced.len(), "number of stored batches");
    for (f, (codec, off, batch, records)) in fetched.iter().zip(&produced) {
        let what = format!("codec {codec} at {off}");
        assert_same_batch(f, batch, *off, 0, &what);
        let got = decompress(compression(*codec), &f[BATCH_HEADER_LEN..], BIG).unwrap();
        assert!(got == *records, "{what}: records");
    }
    // Fetching from an offset inside a compressed batch returns the whole batch.
    let mid = produced[2].1 + 2;
    let f = fetch_batches(&mut c, "asis", 0, mid);
    assert_eq!(
        batch_base_offset(&f[0]),
        produced[2].1,
        "fetch from inside a batch"
    );
}

/// zstd needs Produce v7+ (UNSUPPORTED_COMPRESSION_TYPE before); the other
/// codecs are fine on every version.
#[test]
fn zstd_requires_produce_v7() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "zv", 1, &[]);
    let zbatch = sample_builder(3, 5000).build_compressed(ZSTD).to_vec();
    for v in 3..=6i16 {
        let r = produce_v(&mut c, v, "zv", 0, -1, &zbatch);
        assert_eq!(
            r.error_code,
            E::UnsupportedCompressionType.code(),
            "zstd on Produce v{v}: {:?}",
            r.error_message
        );
        assert_eq!(latest(&mut c, "zv", 0), 0, "nothing appended on v{v}");
    }
    let mut end = 0;
    for v in 3..=6i16 {
        for codec in [GZIP, SNAPPY, LZ4] {
            let bb = sample_builder(2, 6000);
            let r = produce_v(&mut c, v, "zv", 0, -1, &bb.build_compressed(codec));
            assert_eq!(r.error_code, NONE, "codec {codec} on Produce v{v}");
            assert_eq!(r.base_offset, end);
            end += 2;
        }
    }
    for v in [7i16, 9, 11] {
        let r = produce_v(&mut c, v, "zv", 0, -1, &zbatch);
        assert_eq!(
            r.error_code, NONE,
            "zstd on Produce v{v}: {:?}",
            r.error_message
        );
        assert_eq!(r.base_offset, end);
        end += 3;
    }
    assert_eq!(latest(&mut c, "zv", 0), end);
}

/// `compression.type=zstd`: gzip, snappy, lz4 and uncompressed batches are
/// re-encoded with zstd (header fields, producer identity and record bytes
/// kept; fresh CRC), zstd batches are stored as sent, and an idempotent
/// retry of a re-encoded batch is still recognised as a duplicate.
#[test]
fn topic_compression_type_zstd_recompresses() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "tz", 1, &[("compression.type", "zstd")]);
    let (pid, epoch) = idempotent_producer(&mut c);

    let gz = sample_builder(4, 10_000).producer(pid, epoch, 0);
    let gz_batch = gz.build_compressed(GZIP).to_vec();
    let plain = sample_builder(3, 11_000).producer(pid, epoch, 4);
    let plain_batch = plain.build().to_vec();
    let sn = sample_builder(2, 12_000).producer(pid, epoch, 7);
    let sn_batch = sn.build_compressed(SNAPPY).to_vec();
    let lz = sample_builder(2, 13_000).producer(pid, epoch, 9);
    let lz_batch = lz.build_compressed(LZ4).to_vec();
    let zs = sample_builder(2, 14_000).producer(pid, epoch, 11);
    let zs_batch = zs.build_compressed(ZSTD).to_vec();

    assert_eq!(produce_ok(&mut c, "tz", 0, &gz_batch), 0);
    assert_eq!(produce_ok(&mut c, "tz", 0, &plain_batch), 4);
    assert_eq!(produce_ok(&mut c, "tz", 0, &sn_batch), 7);
    assert_eq!(produce_ok(&mut c, "tz", 0, &lz_batch), 9);
    assert_eq!(produce_ok(&mut c, "tz", 0, &zs_batch), 11);
    assert_eq!(latest(&mut c, "tz", 0), 13);

    // A retry of the gzip batch (same producer, same sequence) is a
    // duplicate even though the stored copy is zstd: same offset, nothing new.
    let r = produce(&mut c, "tz", 0, &gz_batch);
    assert_eq!(r.error_code, NONE, "duplicate retry: {:?}", r.error_message);
    assert_eq!(
        r.base_offset, 0,
        "duplicate retry answers the original offset"
    );
    assert_eq!(latest(&mut c, "tz", 0), 13, "duplicate not appended");

    let fetched = fetch_batches(&mut c, "tz", 0, 0);
    assert_eq!(fetched.len(), 5);
    let cases = [
        (&gz_batch, &gz, 0i64, "gzip"),
        (&plain_batch, &plain, 4, "uncompressed"),
        (&sn_batch, &sn, 7, "snappy"),
        (&lz_batch, &lz, 9, "lz4"),
    ];
    for (f, (orig, builder, off, what)) in fetched.iter().zip(cases) {
        assert_eq!(batch_base_offset(f), off, "{what}: base offset");
        assert_recompressed(f, orig, ZSTD, &raw_records(builder), what);
        assert_eq!(
            batch_record_count(f),
            builder.record_count(),
            "{what}: record count"
        );
        let (p, e, s) = batch_producer(f);
        assert_eq!((p, e), (pid, epoch), "{what}: producer id/epoch");
        assert_eq!(s, batch_producer(orig).2, "{what}: base sequence");
    }
    // Already zstd: byte-identical.
    assert_same_batch(&fetched[4], &zs_batch, 11, 0, "zstd as sent");

    // The next sequence continues after the re-encoded batches.
    let next = sample_builder(1, 15_000).producer(pid, epoch, 13);
    assert_eq!(
        produce_ok(&mut c, "tz", 0, &next.build_compressed(GZIP)),
        13
    );
    // And an out-of-order sequence is still refused (state tracked correctly).
    let gap = sample_builder(1, 15_000).producer(pid, epoch, 20);
    let r = produce(&mut c, "tz", 0, &gap.build_compressed(GZIP));
    assert_ne!(r.error_code, NONE, "sequence gap must be refused");
    assert_eq!(latest(&mut c, "tz", 0), 14);
}

/// `compression.type=uncompressed` (and the other codecs) re-encode what
/// they receive; for `uncompressed` the stored batch is exactly what an
/// uncompressed producer would have sent.
#[test]
fn topic_compression_type_other_targets() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "tu", 1, &[("compression.type", "uncompressed")]);
    let lz = sample_builder(6, 20_000);
    let lz_batch = lz.build_compressed(LZ4).to_vec();
    assert_eq!(produce_ok(&mut c, "tu", 0, &lz_batch), 0);
    let zs = sample_builder(3, 21_000);
    // zstd on v7+ into an uncompressed topic.
    let r = produce_v(&mut c, 7, "tu", 0, -1, &zs.build_compressed(ZSTD));
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    let f = fetch_batches(&mut c, "tu", 0, 0);
    assert_eq!(f.len(), 2);
    assert_eq!(batch_codec(&f[0]), 0, "lz4 batch stored uncompressed");
    // Exactly the batch an uncompressed producer would have written.
    assert_same_batch(&f[0], &lz.build(), 0, 0, "lz4 -> uncompressed");
    assert_same_batch(&f[1], &zs.build(), 6, 0, "zstd -> uncompressed");
    assert_recompressed(&f[0], &lz_batch, 0, &raw_records(&lz), "lz4 -> none");

    // Every other target codec.
    for (target, name) in [(GZIP, "gzip"), (SNAPPY, "snappy"), (LZ4, "lz4")] {
        let topic = format!("t-{name}");
        create_topic(&mut c, &topic, 1, &[("compression.type", name)]);
        let plain = sample_builder(4, 30_000);
        let zs = sample_builder(2, 31_000);
        produce_ok(&mut c, &topic, 0, &plain.build());
        produce_ok(&mut c, &topic, 0, &zs.build_compressed(ZSTD));
        let same = sample_builder(2, 32_000);
        let same_batch = same.build_compressed(target).to_vec();
        produce_ok(&mut c, &topic, 0, &same_batch);
        let f = fetch_batches(&mut c, &topic, 0, 0);
        assert_eq!(f.len(), 3, "{name}");
        assert_recompressed(&f[0], &plain.build(), target, &raw_records(&plain), name);
        assert_recompressed(
            &f[1],
            &zs.build_compressed(ZSTD),
            target,
            &raw_records(&zs),
            name,
        );
        assert_same_batch(&f[2], &same_batch, 6, 0, &format!("{name} already {name}"));
    }
}

/// Garbage, bit-flipped and truncated compressed payloads (each with a CRC
/// recomputed over the bad bytes, so the CRC check passes) are refused with
/// INVALID_RECORD and nothing is appended.
#[test]
fn corrupt_compressed_payloads_rejected() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "bad", 1, &[]);
    create_topic(&mut c, "bad-z", 1, &[("compression.type", "zstd")]);
    let good = sample_builder(20, 40_000);
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    // Every case is tried; mismatches are collected and reported together.
    let mut failures: Vec<String> = Vec::new();
    let mut expect_invalid = |c: &mut Client, topic: &str, batch: &[u8], what: String| {
        let before = latest(c, topic, 0);
        let r = produce(c, topic, 0, batch);
        let after = latest(c, topic, 0);
        if r.error_code != E::InvalidRecord.code() || after != before {
            failures.push(format!(
                "{what}: expected INVALID_RECORD (87), got {} ({:?}); log end {before} -> {after}",
                r.error_code, r.error_message
            ));
        }
    };
    let mut end = 0;
    for codec in CODECS {
        let batch = good.build_compressed(codec).to_vec();
        let payload = &batch[BATCH_HEADER_LEN..];
        for topic in ["bad", "bad-z"] {
            let what = |k: &str| format!("codec {codec} on {topic}: {k}");
            // Pure garbage of the same length. (For snappy, whose raw form
            // starts with a varint output length, keep that length small: a
            // huge declared length is the budget case, MESSAGE_TOO_LARGE.)
            let mut junk = rng.bytes(payload.len());
            if codec == SNAPPY {
                junk[0] = 0x40;
            }
            let garbage = with_payload(&batch, codec, &junk);
            expect_invalid(&mut c, topic, &garbage, what("garbage"));
            // Valid gzip framing, damaged body: the gzip trailer's CRC-32
            // catches it. (snappy/lz4/zstd streams as Kafka clients write
            // them carry no content checksum, so a flipped literal byte can
            // decode to different but well-formed records: not checked.)
            if codec == GZIP {
                let mut flipped = payload.to_vec();
                let mid = flipped.len() / 2;
                for x in &mut flipped[mid..mid + 8] {
                    *x ^= 0xA5;
                }
                let flipped = with_payload(&batch, codec, &flipped);
                expect_invalid(&mut c, topic, &flipped, what("bit flips"));
            }
            // Truncated stream: half of it, and its last 1..4 bytes cut (the
            // gzip trailer, the lz4 EndMark, the end of the zstd frame or of
            // the last xerial snappy chunk). Kafka's decoders all fail with
            // a premature end of stream.
            let cut = with_payload(&batch, codec, &payload[..payload.len() / 2]);
            expect_invalid(&mut c, topic, &cut, what("truncated to half"));
            for n in 1..=4 {
                let cut = with_payload(&batch, codec, &payload[..payload.len() - n]);
                expect_invalid(&mut c, topic, &cut, what(&format!("last {n} bytes cut")));
            }
            // Empty records section.
            let empty = with_payload(&batch, codec, &[]);
            expect_invalid(&mut c, topic, &empty, what("empty payload"));
        }
        // The intact batch still goes through.
        let before = latest(&mut c, "bad", 0);
        assert_eq!(produce_ok(&mut c, "bad", 0, &batch), before);
        end = before + 20;
    }
    // Unknown codec ids 5..7 are refused too (Kafka: CORRUPT_MESSAGE or
    // INVALID_RECORD depending on where it is caught; never success).
    for codec in 5u8..=7 {
        let mut x = good.build().to_vec();
        let attrs = (batch_attributes(&x) & !0x07) | i16::from(codec);
        x[21..23].copy_from_slice(&attrs.to_be_bytes());
        fix_crc(&mut x);
        let r = produce(&mut c, "bad", 0, &x);
        assert_ne!(r.error_code, NONE, "codec id {codec} accepted");
    }
    assert_eq!(latest(&mut c, "bad", 0), end);
    b.assert_alive();
    assert!(
        failures.is_empty(),
        "{} corrupt batches not refused:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A compressed batch whose header disagrees with the records inside it is
/// refused: recordsCount (with a matching lastOffsetDelta) larger or
/// smaller than the real number of records, and inner offset deltas that
/// are not 0..n-1.
#[test]
fn compressed_record_count_mismatch_rejected() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "cnt", 1, &[]);
    create_topic(&mut c, "cnt-z", 1, &[("compression.type", "zstd")]);
    for codec in CODECS {
        let bb = sample_builder(3, 50_000);
        let batch = bb.build_compressed(codec).to_vec();
        for topic in ["cnt", "cnt-z"] {
            let what = |k: &str| format!("codec {codec} on {topic}: {k}");
            let mut fewer = batch.clone();
            set_count(&mut fewer, 2);
            produce_err(
                &mut c,
                topic,
                0,
                &fewer,
                E::InvalidRecord.code(),
                &what("count 2 of 3"),
            );
            let mut more = batch.clone();
            set_count(&mut more, 4);
            produce_err(
                &mut c,
                topic,
                0,
                &more,
                E::InvalidRecord.code(),
                &what("count 4 of 3"),
            );
            let mut one = batch.clone();
            set_count(&mut one, 1);
            produce_err(
                &mut c,
                topic,
                0,
                &one,
                E::InvalidRecord.code(),
                &what("count 1 of 3"),
            );
            assert_eq!(latest(&mut c, topic, 0), 0);
        }
        // Offset deltas 0, 2, 1 (lastOffsetDelta 2, count 3): Kafka rebuilds
        // such a batch, kastle stores batches as sent and refuses it
        // (documented in batch::validate_compressed_batch).
        let odd = BatchBuilder::new(50_000)
            .push_record(0, 50_000, Some(b"a"), Some(b"1"), &[])
            .push_record(2, 50_001, Some(b"b"), Some(b"2"), &[])
            .push_record(1, 50_002, Some(b"c"), Some(b"3"), &[])
            .build_compressed(codec);
        produce_err(
            &mut c,
            "cnt",
            0,
            &odd,
            E::InvalidRecord.code(),
            "inner offset deltas 0,2,1",
        );
        // A record whose own length prefix runs past the decompressed data.
        let mut recs = raw_records(&bb);
        recs.truncate(recs.len() - 5);
        let short = with_payload(&batch, codec, &compress(compression(codec), &recs).unwrap());
        produce_err(
            &mut c,
            "cnt",
            0,
            &short,
            E::InvalidRecord.code(),
            "last record cut short",
        );
        // Trailing junk after the last record.
        let mut recs = raw_records(&bb);
        recs.extend_from_slice(b"junk");
        let long = with_payload(&batch, codec, &compress(compression(codec), &recs).unwrap());
        produce_err(
            &mut c,
            "cnt",
            0,
            &long,
            E::InvalidRecord.code(),
            "trailing bytes",
        );
        assert_eq!(latest(&mut c, "cnt", 0), 0);
    }
}

/// zstd: `total` zeros as one streamed frame, never materialised.
fn zstd_bomb(total: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    for _ in 0..total >> 20 {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap()
}

/// gzip: `total` zeros as one streamed member.
fn gzip_bomb(total: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..total >> 20 {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap()
}

/// lz4 frame (64 KiB independent blocks, like Kafka's): `total` zeros.
fn lz4_bomb(total: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max64KB)
        .block_mode(lz4_flex::frame::BlockMode::Independent);
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    for _ in 0..total >> 20 {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap()
}

/// Decompression bombs (payloads far above the decompression budget of
/// 64 × max.message.bytes ≈ 64 MiB) are refused with MESSAGE_TOO_LARGE,
/// nothing is appended, the broker's peak RSS grows far less than the
/// bomb's size and other connections keep being served meanwhile.
#[test]
fn decompression_bombs_refused_with_bounded_memory() {
    const MIB: usize = 1 << 20;
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "bomb", 1, &[]);
    create_topic(&mut c, "bomb-z", 1, &[("compression.type", "zstd")]);
    let header = BatchBuilder::new(60_000)
        .push(Some(b"k"), Some(b"v"), &[], 60_000)
        .build()
        .to_vec();
    let zstd300 = with_payload(&header, ZSTD, &zstd_bomb(300 * MIB));
    let gzip300 = with_payload(&header, GZIP, &gzip_bomb(300 * MIB));
    let lz4_200 = with_payload(&header, LZ4, &lz4_bomb(200 * MIB));
    // A raw snappy block whose varint header claims 2 GiB - 1 of output,
    // followed by a few bytes: must be refused before allocating anything.
    let mut liar = Vec::new();
    put_uvarint(&mut liar, (i32::MAX) as u64);
    liar.extend_from_slice(&[0x00, 0x00, 0xfe, 0xff, 0x0f]);
    let snappy_liar = with_payload(&header, SNAPPY, &liar);
    for (what, bb) in [
        ("zstd", &zstd300),
        ("gzip", &gzip300),
        ("lz4", &lz4_200),
        ("snappy", &snappy_liar),
    ] {
        assert!(
            bb.len() < 1_000_000,
            "{what} bomb batch is {} bytes, over max.message.bytes",
            bb.len()
        );
    }
    // Warm up (allocator arenas, a normal compressed produce + fetch) before
    // taking the baseline.
    let warm = sample_builder(50, 60_000).build_compressed(ZSTD);
    produce_ok(&mut c, "bomb", 0, &warm);
    fetch_batches(&mut c, "bomb", 0, 0);
    let before = b.peak_rss_kib().expect("VmHWM");

    // Meanwhile a second connection keeps asking for ApiVersions.
    let port = b.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let side = std::thread::spawn(move || {
        let mut c2 = Client::connect(port);
        let mut n = 0u32;
        let mut worst = Duration::ZERO;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let t = Instant::now();
            api_versions_ok(&mut c2);
            worst = worst.max(t.elapsed());
            n += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        (n, worst)
    });

    let t0 = Instant::now();
    for round in 0..2 {
        for (what, bb) in [("zstd", &zstd300), ("gzip", &gzip300), ("lz4", &lz4_200)] {
            for topic in ["bomb", "bomb-z"] {
                let t = Instant::now();
                let msg = produce_err(
                    &mut c,
                    topic,
                    0,
                    bb,
                    E::MessageTooLarge.code(),
                    &format!("{what} bomb on {topic} (round {round})"),
                );
                eprintln!(
                    "{what} bomb on {topic}: refused in {:?}: {msg}",
                    t.elapsed()
                );
            }
        }
        for topic in ["bomb", "bomb-z"] {
            let r = produce(&mut c, topic, 0, &snappy_liar);
            assert!(
                r.error_code == E::MessageTooLarge.code()
                    || r.error_code == E::InvalidRecord.code(),
                "snappy block claiming 2 GiB on {topic}: {} {:?}",
                r.error_code,
                r.error_message
            );
        }
    }
    let elapsed = t0.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (pings, worst) = side.join().expect("side connection");
    b.assert_alive();
    let after = b.peak_rss_kib().expect("VmHWM");
    let growth_mib = after.saturating_sub(before) / 1024;
    eprintln!(
        "bombs: {elapsed:?}; VmHWM {} MiB -> {} MiB (+{growth_mib} MiB); \
         {pings} ApiVersions on a parallel connection, slowest {worst:?}",
        before / 1024,
        after / 1024
    );
    assert!(
        growth_mib < 160,
        "peak RSS grew by {growth_mib} MiB while refusing 300 MiB bombs"
    );
    assert!(pings >= 1, "parallel connection never got an answer");
    assert!(
        worst < Duration::from_secs(5),
        "parallel ApiVersions took {worst:?}"
    );
    assert_eq!(
        latest(&mut c, "bomb", 0),
        50,
        "nothing appended by the bombs"
    );
    assert_eq!(
        latest(&mut c, "bomb-z", 0),
        0,
        "nothing appended by the bombs"
    );
    // The connection that sent the bombs is still usable.
    produce_ok(
        &mut c,
        "bomb-z",
        0,
        &sample_builder(2, 61_000).build_compressed(GZIP),
    );
    assert_eq!(latest(&mut c, "bomb-z", 0), 2);
    let mut fresh = b.client();
    api_versions_ok(&mut fresh);
}

/// A batch within the budget but above the 16 MiB floor for a topic with a
/// small max.message.bytes: the budget follows the topic's setting.
#[test]
fn decompression_budget_follows_max_message_bytes() {
    const MIB: usize = 1 << 20;
    let b = Broker::start(&[]);
    let mut c = b.client();
    // 100 KB max.message.bytes: budget = max(64 × 100 KB, 16 MiB) = 16 MiB.
    create_topic(&mut c, "small", 1, &[("max.message.bytes", "100000")]);
    let header = BatchBuilder::new(70_000)
        .push(Some(b"k"), Some(b"v"), &[], 70_000)
        .build()
        .to_vec();
    let over = with_payload(&header, ZSTD, &zstd_bomb(20 * MIB));
    produce_err(
        &mut c,
        "small",
        0,
        &over,
        E::MessageTooLarge.code(),
        "20 MiB into a 16 MiB budget",
    );
    // A real 12 MiB (decompressed) batch of highly compressible records
    // fits the 16 MiB floor and is accepted.
    let big_value = vec![b'a'; 1 << 20];
    let mut bb = BatchBuilder::new(70_000);
    for i in 0..12 {
        bb = bb.push(
            Some(format!("k{i}").as_bytes()),
            Some(&big_value),
            &[],
            70_000,
        );
    }
    let ok = bb.build_compressed(ZSTD);
    assert!(
        ok.len() < 100_000,
        "12 MiB of 'a' is {} bytes as zstd",
        ok.len()
    );
    assert_eq!(produce_ok(&mut c, "small", 0, &ok), 0);
    let f = fetch_batches(&mut c, "small", 0, 0);
    assert_same_batch(&f[0], &ok, 0, 0, "12 MiB zstd batch");
}

/// ListOffsets by timestamp is record-exact inside compressed batches, for
/// every codec, before and after a restart (index rebuilt or reloaded).
#[test]
fn list_offsets_by_timestamp_inside_compressed_batches() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    // (topic, codec, topic config)
    #[allow(clippy::type_complexity)] // a literal table of test cases
    let topics: Vec<(String, u8, Vec<(&str, &str)>)> = vec![
        ("ts-gzip".into(), GZIP, vec![]),
        ("ts-snappy".into(), SNAPPY, vec![]),
        ("ts-lz4".into(), LZ4, vec![]),
        ("ts-zstd".into(), ZSTD, vec![]),
        // Re-encoded on the way in: lookups must use the stored batch.
        (
            "ts-recompressed".into(),
            GZIP,
            vec![("compression.type", "zstd")],
        ),
    ];
    for (topic, codec, cfg) in &topics {
        let mut cfg = cfg.clone();
        cfg.push(("retention.ms", "-1"));
        create_topic(&mut c, topic, 1, &cfg);
        // An uncompressed record first so offsets inside the batch are not 0-based.
        produce_ok(&mut c, topic, 0, &batch(&[Rec::value(b"first", 500)]));
        let bb = BatchBuilder::new(1000)
            .push(Some(b"a"), Some(b"1000"), &[], 1000)
            .push(Some(b"b"), Some(b"2000"), &[], 2000)
            .push(Some(b"c"), Some(b"3000"), &[], 3000);
        assert_eq!(
            produce_ok(&mut c, topic, 0, &bb.build_compressed(*codec)),
            1
        );
        // Out-of-order timestamps inside one compressed batch.
        let bb = BatchBuilder::new(4000)
            .push(Some(b"d"), Some(b"4000"), &[], 4000)
            .push(Some(b"e"), Some(b"4500"), &[], 4500)
            .push(Some(b"f"), Some(b"4100"), &[], 4100);
        assert_eq!(
            produce_ok(&mut c, topic, 0, &bb.build_compressed(*codec)),
            4
        );
    }
    let check = |c: &mut Client, when: &str| {
        for (topic, _, _) in &topics {
            for v in [1i16, 4, 7, 9] {
                let what = |ts: i64| format!("{topic} v{v} ts {ts} ({when})");
                for (ts, want_off, want_ts) in [
                    (0i64, 0i64, 500i64),
                    (1000, 1, 1000),
                    (1500, 2, 2000),
                    (2000, 2, 2000),
                    (2001, 3, 3000),
                    (3000, 3, 3000),
                    (3500, 4, 4000),
                    (4200, 5, 4500),
                    (4500, 5, 4500),
                ] {
                    let r = list_offset(c, v, topic, 0, ts);
                    assert_eq!(r.error_code, NONE, "{}", what(ts));
                    assert_eq!(r.offset, want_off, "{}: offset", what(ts));
                    assert_eq!(r.timestamp, want_ts, "{}: timestamp", what(ts));
                }
                let r = list_offset(c, v, topic, 0, 5000);
                assert_eq!((r.offset, r.timestamp), (-1, -1), "{}", what(5000));
                if v >= 7 {
                    let r = list_offset(c, v, topic, 0, -3);
                    assert_eq!(
                        (r.error_code, r.offset, r.timestamp),
                        (NONE, 5, 4500),
                        "{topic} v{v} MAX_TIMESTAMP ({when})"
                    );
                }
            }
        }
    };
    check(&mut c, "live");
    drop(c);
    b.stop();
    b.restart();
    let mut c = b.client();
    check(&mut c, "after clean restart");
    drop(c);
    b.kill();
    b.restart();
    let mut c = b.client();
    check(&mut c, "after crash restart");
    // The recompressed topic really holds zstd.
    let f = fetch_batches(&mut c, "ts-recompressed", 0, 0);
    assert_eq!(
        f.iter().map(|x| batch_codec(x)).collect::<Vec<_>>(),
        vec![4, 4, 4]
    );
}
