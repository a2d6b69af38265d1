//! Codecs of the v2 record batch: decompression and compression of the
//! records section (the bytes after the 61-byte batch header) for the four
//! codecs named by attribute bits 0-2, with the wire framings real clients
//! use:
//!
//! | id | codec  | framing on the wire |
//! | -- | ------ | ------------------- |
//! | 1  | gzip   | RFC 1952 gzip member(s) (Java `GZIPInputStream` reads concatenated members) |
//! | 2  | snappy | xerial `SnappyOutputStream` framing (Java client, librdkafka); raw snappy accepted too |
//! | 3  | lz4    | standard LZ4 frame (Kafka's `Lz4BlockInputStream`); v2 batches use the correct header checksum |
//! | 4  | zstd   | standard zstd frame(s) |
//!
//! Decompression is always bounded: the caller passes an output budget and
//! the decoders run as streams (or, for snappy, check each block's declared
//! length against what is left of the budget *before* allocating), so a
//! decompression bomb is refused after producing at most `budget + 1` bytes.
//! No size written in a compressed header is ever trusted for allocation.

use std::fmt;
use std::io::{self, Read, Write};

use super::batch::Compression;

/// xerial snappy-java stream header: magic, then version and
/// min-compatible-version as big-endian i32 (SnappyCodec, 16 bytes total).
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// What `SnappyOutputStream` writes (SnappyCodec.DEFAULT_VERSION and
/// MINIMUM_COMPATIBLE_VERSION are both 1).
const XERIAL_VERSION: i32 = 1;
const XERIAL_MIN_COMPATIBLE_VERSION: i32 = 1;
/// `SnappyOutputStream`'s default block size (32 KiB of input per chunk).
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// Kafka's default zstd level (`compression.zstd.level` default 3).
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// zstd's own default decoder window limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT),
/// which is also what Kafka's zstd-jni decoder uses.
const ZSTD_MAX_WINDOW_LOG: u32 = 27;
/// Small enough windows are always allowed, whatever the budget.
const ZSTD_MIN_WINDOW_LOG: u32 = 20;

/// Floor and ceiling of [`decompression_budget`].
pub const MIN_DECOMPRESSION_BUDGET: usize = 16 << 20;
pub const MAX_DECOMPRESSION_BUDGET: usize = 256 << 20;
/// Allowed expansion of a batch's compressed size.
pub const DECOMPRESSION_RATIO_ALLOWANCE: usize = 64;

/// Why a codec operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompressionError {
    /// Attribute codec id 5..=7, or 0 where a real codec is required.
    UnknownCodec(u8),
    /// Decompressed output would exceed the budget; decoding stopped there.
    BudgetExceeded { budget: usize },
    /// The compressed bytes are not a valid stream of the codec (garbage,
    /// truncated, bad checksum, unsupported framing version...).
    Corrupt { codec: Compression, reason: String },
    /// Compression itself failed (only on encoder I/O errors, which writing
    /// to a `Vec` does not produce in practice).
    Encode { codec: Compression, reason: String },
}

impl fmt::Display for CompressionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressionError::UnknownCodec(c) => write!(f, "unknown compression codec id {c}"),
            CompressionError::BudgetExceeded { budget } => write!(
                f,
                "decompressed records exceed the broker's limit of {budget} bytes"
            ),
            CompressionError::Corrupt { codec, reason } => {
                write!(
                    f,
                    "failed to decompress {} record stream: {reason}",
                    codec.name()
                )
            }
            CompressionError::Encode { codec, reason } => {
                write!(
                    f,
                    "failed to compress records with {}: {reason}",
                    codec.name()
                )
            }
        }
    }
}

impl std::error::Error for CompressionError {}

impl Compression {
    /// The `compression.type` spelling of the codec.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Decompression budget for a topic with the given `max.message.bytes`.
///
/// Kafka itself has no explicit bound: it streams records out of the
/// decompressor one by one, so a bomb costs it CPU but not memory. We
/// validate a batch by decompressing it into one buffer, so we need a cap.
/// Policy: 64× the largest batch the topic accepts, at least 16 MiB, at most
/// 256 MiB.
/// - 64× is far above what record data compresses to in practice (JSON/logs
///   with zstd: 5-20×) and producers bound batches by *uncompressed* size
///   anyway (librdkafka `message.max.bytes`, Java `batch.size` estimates), so
///   honest producers never get near it.
/// - The 16 MiB floor keeps topics with a tiny `max.message.bytes` usable
///   with highly compressible data.
/// - The 256 MiB ceiling bounds the memory one in-flight produce request can
///   pin, whatever `max.message.bytes` is set to.
pub fn decompression_budget(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(DECOMPRESSION_RATIO_ALLOWANCE)
        .clamp(MIN_DECOMPRESSION_BUDGET, MAX_DECOMPRESSION_BUDGET)
}

/// Kafka's `ProduceRequest.validateRecords`: ZSTD batches need produce v7+
/// (UNSUPPORTED_COMPRESSION_TYPE otherwise); every other codec is fine on
/// every produce version Kafka 4 accepts (v3+).
pub fn codec_allowed_for_produce_version(codec: u8, version: i16) -> bool {
    match Compression::from_id(codec) {
        Some(Compression::Zstd) => version >= 7,
        Some(_) => true,
        None => false,
    }
}

/// Decompresses a records section. Fails with `BudgetExceeded` as soon as
/// the output would be larger than `max_output`, having produced at most
/// `max_output + 1` bytes. `Compression::None` returns a copy, also bounded.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_output: usize,
) -> Result<Vec<u8>, CompressionError> {
    let corrupt = |e: io::Error| CompressionError::Corrupt {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(CompressionError::BudgetExceeded { budget: max_output });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(
            flate2::read::MultiGzDecoder::new(input),
            input.len(),
            max_output,
        )
        .map_err(|e| e.into_error(corrupt)),
        Compression::Snappy => decompress_snappy(input, max_output),
        // An empty input is zero frames to lz4_flex but "Stream ended
        // prematurely" to Kafka's Lz4BlockInputStream, which needs one frame
        // header (magic + FLG + BD + HC = 7 bytes).
        Compression::Lz4 if input.len() < 7 => Err(CompressionError::Corrupt {
            codec,
            reason: "LZ4 stream ended prematurely (no frame header)".to_string(),
        }),
        Compression::Lz4 => {
            // lz4_flex treats input ending where a block size should be as a
            // clean end; Kafka's Lz4BlockInputStream demands the EndMark.
            lz4_frame_is_complete(input).map_err(|reason| CompressionError::Corrupt {
                codec,
                reason: reason.to_string(),
            })?;
            read_bounded(
                lz4_flex::frame::FrameDecoder::new(input),
                input.len(),
                max_output,
            )
            .map_err(|e| e.into_error(corrupt))
        }
        Compression::Zstd => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
            // The decoder allocates its window from the frame header, so a
            // hostile header could make it reserve up to 2^27 bytes outside
            // our output budget. Limit the window to the budget (rounded up to
            // a power of two), never below 1 MiB and never above zstd's
            // default limit (which is what Kafka's zstd-jni enforces).
            let window_log =
                usize::BITS - max_output.max(1).next_power_of_two().leading_zeros() - 1;
            let window_log = window_log.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG);
            dec.window_log_max(window_log).map_err(corrupt)?;
            read_bounded(dec, input.len(), max_output).map_err(|e| e.into_error(corrupt))
        }
    }
}

/// Compresses a records section with the codec's Kafka-default settings:
/// gzip level 6 (`Deflater.DEFAULT_COMPRESSION`), LZ4 fast compressor with
/// 64 KiB independent blocks and no content checksum (what
/// `Lz4BlockOutputStream` writes by default), snappy in xerial framing with
/// 32 KiB blocks (`SnappyOutputStream`), zstd level 3.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let enc_err = |e: io::Error| CompressionError::Encode {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(input.len() / 2 + 64),
                flate2::Compression::default(),
            );
            enc.write_all(input).map_err(enc_err)?;
            enc.finish().map_err(enc_err)
        }
        Compression::Snappy => Ok(compress_snappy_xerial(input)),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(input.len() / 2 + 64),
            );
            enc.write_all(input).map_err(enc_err)?;
            enc.finish().map_err(|e| CompressionError::Encode {
                codec,
                reason: e.to_string(),
            })
        }
        Compression::Zstd => zstd::bulk::compress(input, ZSTD_DEFAULT_LEVEL).map_err(enc_err),
    }
}

/// Failure of [`read_bounded`]: either the budget or a decoder error.
enum BoundedReadError {
    Budget(usize),
    Io(io::Error),
}

impl BoundedReadError {
    fn into_error(self, corrupt: impl Fn(io::Error) -> CompressionError) -> CompressionError {
        match self {
            BoundedReadError::Budget(budget) => CompressionError::BudgetExceeded { budget },
            BoundedReadError::Io(e) => corrupt(e),
        }
    }
}

/// Reads a decoder to its end, never holding more than `max + 1` bytes: the
/// buffer starts at a guess derived from the compressed size and doubles,
/// capped at `max + 1`; reading one byte past `max` proves the budget is
/// exceeded without inflating the rest.
fn read_bounded<R: Read>(
    mut r: R,
    compressed_len: usize,
    max: usize,
) -> Result<Vec<u8>, BoundedReadError> {
    let limit = max.saturating_add(1);
    let mut out: Vec<u8> = Vec::new();
    let mut filled = 0usize;
    let mut cap = compressed_len
        .saturating_mul(4)
        .clamp(4096, 64 << 20)
        .min(limit);
    loop {
        if filled == out.len() {
            if out.len() >= limit {
                return Err(BoundedReadError::Budget(max));
            }
            if !out.is_empty() {
                cap = out.len().saturating_mul(2).min(limit);
            }
            out.resize(cap, 0);
        }
        match r.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BoundedReadError::Io(e)),
        }
    }
    if filled > max {
        return Err(BoundedReadError::Budget(max));
    }
    out.truncate(filled);
    Ok(out)
}

/// Snappy as Kafka clients send it. Mirrors xerial `SnappyInputStream`:
/// when the first 16 bytes are a valid xerial header the rest is a sequence
/// of `[i32 BE length][raw snappy block]` chunks; otherwise (short input,
/// other magic) the whole input is one raw snappy block. Like the Java
/// stream, 1-3 trailing bytes that cannot hold a chunk length end the stream.
fn decompress_snappy(input: &[u8], max: usize) -> Result<Vec<u8>, CompressionError> {
    let corrupt = |reason: String| CompressionError::Corrupt {
        codec: Compression::Snappy,
        reason,
    };
    let mut out = Vec::new();
    let mut dec = snap::raw::Decoder::new();
    let mut block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), CompressionError> {
        // The declared length is checked against the remaining budget
        // before the output grows, so it is never trusted beyond the budget.
        let n = snap::raw::decompress_len(block).map_err(|e| corrupt(e.to_string()))?;
        if n > max - out.len() {
            return Err(CompressionError::BudgetExceeded { budget: max });
        }
        let start = out.len();
        out.resize(start + n, 0);
        let got = dec
            .decompress(block, &mut out[start..])
            .map_err(|e| corrupt(e.to_string()))?;
        if got != n {
            return Err(corrupt(format!(
                "snappy block declared {n} bytes but produced {got}"
            )));
        }
        Ok(())
    };
    if input.len() < XERIAL_HEADER_LEN || input[..8] != XERIAL_MAGIC {
        block(input, &mut out)?;
        return Ok(out);
    }
    let version = i32::from_be_bytes([input[8], input[9], input[10], input[11]]);
    if version < XERIAL_MIN_COMPATIBLE_VERSION {
        return Err(corrupt(format!(
            "xerial snappy stream version {version} is older than the minimum {XERIAL_MIN_COMPATIBLE_VERSION}"
        )));
    }
    let mut pos = XERIAL_HEADER_LEN;
    while input.len() - pos >= 4 {
        let len = i32::from_be_bytes([input[pos], input[pos + 1], input[pos + 2], input[pos + 3]]);
        pos += 4;
        if len < 0 || len as usize > input.len() - pos {
            return Err(corrupt(format!(
                "xerial snappy chunk of {len} bytes at byte {} exceeds the input",
                pos - 4
            )));
        }
        let end = pos + len as usize;
        block(&input[pos..end], &mut out)?;
        pos = end;
    }
    Ok(out)
}

/// xerial framing as `SnappyOutputStream` writes it: header, then one chunk
/// per 32 KiB of input. It is what Java producers store and what every
/// consumer reads (Java natively, librdkafka and others via their xerial
/// support), so recompressed batches look like a Java producer's.
fn compress_snappy_xerial(input: &[u8]) -> Vec<u8> {
    let chunks = input.len().div_ceil(XERIAL_BLOCK_SIZE);
    let mut out = Vec::with_capacity(
        XERIAL_HEADER_LEN + chunks * (4 + snap::raw::max_compress_len(XERIAL_BLOCK_SIZE)),
    );
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_MIN_COMPATIBLE_VERSION.to_be_bytes());
    let mut enc = snap::raw::Encoder::new();
    for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        let max = snap::raw::max_compress_len(chunk.len());
        out.resize(at + 4 + max, 0);
        // A 32 KiB chunk always fits max_compress_len, so this cannot fail.
        let n = enc
            .compress(chunk, &mut out[at + 4..])
            .expect("snappy output buffer sized by max_compress_len");
        out.truncate(at + 4 + n);
        out[at..at + 4].copy_from_slice(&(n as i32).to_be_bytes());
    }
    out
}

/// Walks the block structure of one LZ4 frame (header, sized blocks with
/// optional checksums, the zero EndMark, optional content checksum) without
/// decoding it, so a frame cut short anywhere is refused as Kafka refuses it.
fn lz4_frame_is_complete(input: &[u8]) -> Result<(), &'static str> {
    const MAGIC: u32 = 0x184D_2204;
    let u32_at = |at: usize| {
        input
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u32_at(0) != Some(MAGIC) {
        return Err("not an LZ4 frame (bad magic)");
    }
    let flg = *input.get(4).ok_or("LZ4 frame header cut short")?;
    let block_checksum = flg & 0x10 != 0;
    let content_size = flg & 0x08 != 0;
    let content_checksum = flg & 0x04 != 0;
    let dict_id = flg & 0x01 != 0;
    // FLG, BD, optional content size and dictionary id, header checksum.
    let mut pos = 4 + 2 + if content_size { 8 } else { 0 } + if dict_id { 4 } else { 0 } + 1;
    loop {
        let size = u32_at(pos).ok_or("LZ4 stream ended prematurely (missing EndMark)")?;
        pos += 4;
        if size == 0 {
            break;
        }
        let len = (size & 0x7FFF_FFFF) as usize + if block_checksum { 4 } else { 0 };
        pos = pos
            .checked_add(len)
            .filter(|p| *p <= input.len())
            .ok_or("LZ4 block extends past the stream")?;
    }
    if content_checksum {
        pos += 4;
    }
    if pos > input.len() {
        return Err("LZ4 content checksum cut short");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const CODECS: [Compression; 4] = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Semi-compressible bytes: words from a small vocabulary.
    fn sample(n: usize) -> Vec<u8> {
        let words: [&[u8]; 8] = [
            b"kafka ", b"broker ", b"record ", b"batch ", b"offset ", b"topic ", b"zstd ", b"log ",
        ];
        let mut out = Vec::with_capacity(n + 8);
        let mut x: u32 = 12345;
        while out.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            out.extend_from_slice(words[(x >> 16) as usize % words.len()]);
            out.push((x >> 8) as u8);
        }
        out.truncate(n);
        out
    }

    #[test]
    fn round_trip_each_codec() {
        for size in [0usize, 1, 100, 40_000, 300_000] {
            let data = sample(size);
            for c in CODECS {
                let z = compress(c, &data).unwrap();
                let back = decompress(c, &z, data.len()).unwrap();
                assert_eq!(back, data, "{c:?} size {size}");
                if size > 0 {
                    // Exactly at the budget passes; one byte less fails.
                    assert_eq!(
                        decompress(c, &z, data.len() - 1),
                        Err(CompressionError::BudgetExceeded {
                            budget: data.len() - 1
                        }),
                        "{c:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn snappy_output_is_xerial_framed() {
        let data = sample(70_000);
        let z = compress(Compression::Snappy, &data).unwrap();
        assert_eq!(&z[..8], &XERIAL_MAGIC);
        assert_eq!(&z[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        // 70,000 bytes = three 32 KiB chunks.
        let mut pos = 16;
        let mut chunks = 0;
        while pos < z.len() {
            let len = i32::from_be_bytes(z[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 4 + len;
            chunks += 1;
        }
        assert_eq!((pos, chunks), (z.len(), 3));
    }

    #[test]
    fn lz4_frame_header_is_what_kafka_writes_and_reads() {
        // Lz4BlockOutputStream's defaults: FLG = version 1 + independent
        // blocks, no checksums, no content size (0x60); BD = 64 KiB (0x40);
        // HC over FLG..BD only (the v0 "broken checksum" quirk does not apply
        // to v2 batches). Java's FLG.validate rejects dependent blocks.
        let z = compress(Compression::Lz4, &sample(200_000)).unwrap();
        assert_eq!(&z[..4], &[0x04, 0x22, 0x4D, 0x18]);
        assert_eq!((z[4], z[5]), (0x60, 0x40));
        let hc = (xxhash32(&z[4..6]) >> 8) as u8;
        assert_eq!(z[6], hc);
    }

    /// XXH32 with seed 0 for inputs under 16 bytes, enough to check an LZ4
    /// header checksum without another dependency.
    fn xxhash32(data: &[u8]) -> u32 {
        const P1: u32 = 2_654_435_761;
        const P2: u32 = 2_246_822_519;
        const P3: u32 = 3_266_489_917;
        const P4: u32 = 668_265_263;
        const P5: u32 = 374_761_393;
        assert!(data.len() < 16);
        let mut h = P5.wrapping_add(data.len() as u32);
        let mut words = data.chunks_exact(4);
        for w in &mut words {
            let k = u32::from_le_bytes(w.try_into().unwrap());
            h = h
                .wrapping_add(k.wrapping_mul(P3))
                .rotate_left(17)
                .wrapping_mul(P4);
        }
        for &b in words.remainder() {
            h = h
                .wrapping_add(u32::from(b).wrapping_mul(P5))
                .rotate_left(11)
                .wrapping_mul(P1);
        }
        h ^= h >> 15;
        h = h.wrapping_mul(P2);
        h ^= h >> 13;
        h = h.wrapping_mul(P3);
        h ^ (h >> 16)
    }

    #[test]
    fn snappy_hand_built_xerial_frame_and_raw_fallback() {
        let a = b"hello hello hello hello ".repeat(10);
        let b = b"second chunk".to_vec();
        let mut enc = snap::raw::Encoder::new();
        let za = enc.compress_vec(&a).unwrap();
        let zb = enc.compress_vec(&b).unwrap();
        let mut frame = XERIAL_MAGIC.to_vec();
        frame.extend_from_slice(&1i32.to_be_bytes());
        frame.extend_from_slice(&1i32.to_be_bytes());
        for z in [&za, &zb] {
            frame.extend_from_slice(&(z.len() as i32).to_be_bytes());
            frame.extend_from_slice(z);
        }
        let mut want = a.clone();
        want.extend_from_slice(&b);
        assert_eq!(
            decompress(Compression::Snappy, &frame, 1 << 20).unwrap(),
            want
        );
        // Raw snappy (no xerial magic) is accepted, like SnappyInputStream's fallback.
        assert_eq!(decompress(Compression::Snappy, &za, 1 << 20).unwrap(), a);
        // Version 0 is refused, as by SnappyCodec's minimum compatible version.
        let mut old = frame.clone();
        old[8..12].copy_from_slice(&0i32.to_be_bytes());
        assert!(matches!(
            decompress(Compression::Snappy, &old, 1 << 20),
            Err(CompressionError::Corrupt { .. })
        ));
        // A chunk length running past the input is corrupt.
        let cut = &frame[..frame.len() - 3];
        assert!(matches!(
            decompress(Compression::Snappy, cut, 1 << 20),
            Err(CompressionError::Corrupt { .. })
        ));
        // A block that declares more than the budget is refused before allocation.
        let big = enc.compress_vec(&vec![0u8; 1 << 20]).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &big, 1000),
            Err(CompressionError::BudgetExceeded { budget: 1000 })
        );
    }

    #[test]
    fn truncated_and_garbage_payloads_fail() {
        let data = sample(50_000);
        for c in CODECS {
            let z = compress(c, &data).unwrap();
            let cut = &z[..z.len() / 2];
            assert!(
                matches!(
                    decompress(c, cut, 1 << 20),
                    Err(CompressionError::Corrupt { .. })
                ),
                "{c:?} truncated"
            );
            let garbage: Vec<u8> = (0..500u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            assert!(
                matches!(
                    decompress(c, &garbage, 1 << 20),
                    Err(CompressionError::Corrupt { .. })
                ),
                "{c:?} garbage"
            );
            assert!(
                matches!(
                    decompress(c, &[], 1 << 20),
                    Err(CompressionError::Corrupt { .. })
                ),
                "{c:?} empty"
            );
        }
    }

    const GIB: u64 = 1 << 30;

    /// 1 GiB of zeros as a zstd stream, built streaming (never materialised).
    fn zstd_bomb() -> Vec<u8> {
        let zeros = vec![0u8; 1 << 20];
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        for _ in 0..(GIB >> 20) {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap()
    }

    /// 1 GiB of zeros as gzip: one member of 1 MiB of zeros repeated 1024
    /// times (Java's GZIPInputStream and our MultiGzDecoder read
    /// concatenated members as one stream). Deflate cannot beat ~1000:1, so
    /// this is as small as a 1 GiB gzip bomb gets, about 1 MiB.
    fn gzip_bomb() -> Vec<u8> {
        let member = compress(Compression::Gzip, &vec![0u8; 1 << 20]).unwrap();
        member.repeat((GIB >> 20) as usize)
    }

    #[test]
    fn bombs_are_refused_quickly() {
        let budget = 4 << 20;
        for (codec, bomb) in [
            (Compression::Zstd, zstd_bomb()),
            (Compression::Gzip, gzip_bomb()),
        ] {
            assert!(
                bomb.len() < 2 << 20,
                "{codec:?} bomb is {} bytes",
                bomb.len()
            );
            let t = Instant::now();
            assert_eq!(
                decompress(codec, &bomb, budget),
                Err(CompressionError::BudgetExceeded { budget })
            );
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{codec:?} took {:?}",
                t.elapsed()
            );
        }
        // The read loop's buffer never exceeds budget + 1 whatever the
        // compressed size suggests.
        let mut zeros = io::repeat(0).take(GIB);
        let err = read_bounded(&mut zeros, 1 << 30, 1000).err().unwrap();
        assert!(matches!(err, BoundedReadError::Budget(1000)));
    }

    #[test]
    fn zstd_huge_window_refused_under_small_budget() {
        // A frame whose header asks for a 2^27 window is refused when the
        // budget is 1 MiB: the decoder must not reserve 128 MiB for it.
        let data = sample(1 << 16);
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
        enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
            .unwrap();
        enc.write_all(&data).unwrap();
        let z = enc.finish().unwrap();
        assert!(matches!(
            decompress(Compression::Zstd, &z, 1 << 20),
            Err(CompressionError::Corrupt { .. })
        ));
        assert_eq!(decompress(Compression::Zstd, &z, 256 << 20).unwrap(), data);
    }

    #[test]
    fn budget_policy_and_produce_versions() {
        assert_eq!(decompression_budget(1_048_588), 1_048_588 * 64);
        assert_eq!(decompression_budget(1000), MIN_DECOMPRESSION_BUDGET);
        assert_eq!(decompression_budget(usize::MAX), MAX_DECOMPRESSION_BUDGET);
        assert!(!codec_allowed_for_produce_version(4, 6));
        assert!(codec_allowed_for_produce_version(4, 7));
        assert!(codec_allowed_for_produce_version(1, 3));
        assert!(codec_allowed_for_produce_version(0, 3));
        assert!(!codec_allowed_for_produce_version(5, 12));
    }
}
