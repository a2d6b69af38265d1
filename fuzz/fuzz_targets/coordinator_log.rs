//! Fuzz target `coordinator_log`: the coordinators' loaders, `__consumer_offsets`
//! and `__transaction_state` log bytes replayed as at start-up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kastle::fuzz_api::coordinator_log(data);
});
