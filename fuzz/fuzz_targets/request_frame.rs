//! Fuzz target `request_frame`: a request frame (no size prefix) through a
//! broker listener's dispatch (header, version check, schema walker, the
//! request's decoder, a Produce request's batch validation) and through a
//! controller listener's (its own APIs, Envelope and the embedded request).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kastle::fuzz_api::request_frame(data);
    let _ = kastle::fuzz_api::controller_frame(data);
});
