//! Fuzz target `storage_file`: the on-disk parsers (offset and leader-epoch
//! checkpoints, producer snapshots, properties and topic files, metadata
//! records, the controller's raft log), the first byte choosing which.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kastle::fuzz_api::storage_file(data);
});
