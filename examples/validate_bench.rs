//! Cost of produce-side validation per compression codec.
//!
//! Builds one ~1 MiB batch of 1 KiB records of semi-compressible text
//! (random words from a small vocabulary plus random digits), encodes it with
//! each codec, and measures `validate_produce_records` on it: CRC-32C,
//! decompression within the budget, and the full record walk. The raw
//! CRC-32C of the uncompressed batch bytes is the reference: it is what
//! validating an uncompressed batch cannot go below.
//!
//! ```sh
//! cargo run --release --example validate_bench
//! ```
//!
//! Prints a Markdown table on stdout. MB = 10^6 bytes; "MB/s (records)"
//! counts the uncompressed batch size, so codecs are compared on the same
//! payload; "MB/s (wire)" counts the bytes actually received.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kastle::record::{validate_produce_records, BatchBuilder, ValidationConfig};

const RECORD_SIZE: usize = 1024;
const RECORDS: usize = 1024;
const MIN_TIME: Duration = Duration::from_millis(1500);

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn record_value(rng: &mut Rng) -> Vec<u8> {
    const WORDS: [&str; 32] = [
        "order",
        "user",
        "id",
        "status",
        "shipped",
        "pending",
        "amount",
        "currency",
        "EUR",
        "USD",
        "timestamp",
        "region",
        "eu-west",
        "us-east",
        "item",
        "sku",
        "quantity",
        "price",
        "true",
        "false",
        "null",
        "session",
        "click",
        "view",
        "cart",
        "checkout",
        "payment",
        "refund",
        "warehouse",
        "carrier",
        "tracking",
        "event",
    ];
    let mut v = Vec::with_capacity(RECORD_SIZE + 16);
    while v.len() < RECORD_SIZE {
        let r = rng.next();
        v.extend_from_slice(WORDS[(r % 32) as usize].as_bytes());
        v.push(b'=');
        // A random number makes the text only partly compressible.
        v.extend_from_slice(((r >> 8) % 100_000).to_string().as_bytes());
        v.push(b' ');
    }
    v.truncate(RECORD_SIZE);
    v
}

/// Runs `f` repeatedly for at least MIN_TIME; returns seconds per call.
fn time_it(mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < MIN_TIME {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn main() {
    let now = 1_700_000_000_000i64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut builder = BatchBuilder::new(now);
    for i in 0..RECORDS {
        let key = format!("key-{i}");
        builder = builder.push(
            Some(key.as_bytes()),
            Some(&record_value(&mut rng)),
            &[],
            now,
        );
    }
    let plain = builder.build();
    let cfg = ValidationConfig {
        max_message_bytes: 8 << 20,
        ..ValidationConfig::default()
    };
    let payload = plain.len() as f64;

    let crc = time_it(|| {
        black_box(crc32c::crc32c(black_box(&plain)));
    });

    println!(
        "Validation of one {:.2} MB batch ({RECORDS} records of {RECORD_SIZE} B, semi-compressible text):\n",
        payload / 1e6
    );
    println!("| codec | wire size | ratio | validate MB/s (records) | validate MB/s (wire) | µs per batch | vs raw CRC-32C |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| raw CRC-32C (reference) | {} | 1.00 | {:.0} | {:.0} | {:.0} | 1.00× |",
        plain.len(),
        payload / crc / 1e6,
        payload / crc / 1e6,
        crc * 1e6
    );
    for (codec, name) in [
        (0u8, "none"),
        (1, "gzip"),
        (2, "snappy"),
        (3, "lz4"),
        (4, "zstd"),
    ] {
        let batch = if codec == 0 {
            plain.clone()
        } else {
            builder.build_compressed(codec)
        };
        validate_produce_records(&batch, now, &cfg).expect("valid batch");
        let t = time_it(|| {
            black_box(validate_produce_records(black_box(&batch), now, &cfg).unwrap());
        });
        println!(
            "| {name} | {} | {:.2} | {:.0} | {:.0} | {:.0} | {:.1}× slower |",
            batch.len(),
            payload / batch.len() as f64,
            payload / t / 1e6,
            batch.len() as f64 / t / 1e6,
            t * 1e6,
            t / crc
        );
    }
}
