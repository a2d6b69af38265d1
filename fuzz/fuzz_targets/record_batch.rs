//! Fuzz target `record_batch`: produce-side record batch validation,
//! decompression (gzip, snappy, lz4, zstd), recompression and the readers of
//! stored batches; the first byte picks the topic config and target codec.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kastle::fuzz_api::record_batches(data);
});
