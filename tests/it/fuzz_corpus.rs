//! The test command's share of fuzzing (docs/fuzzing.md): every committed
//! corpus input of every cargo-fuzz target through the same entry point
//! the target calls (`kastle::fuzz_api`), under the `checked` profile's
//! overflow checks and debug assertions. The libFuzzer runs are
//! `scripts/fuzz_campaign.sh`: their build takes 13-22 minutes on the
//! 2-core machine, more than the test command can give.

use kastle::fuzz_api::{
    controller_frame, coordinator_log, record_batches, request_frame, storage_file,
};

type Target = (&'static str, fn(&[u8]));

#[test]
fn every_corpus_input_replays_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let targets: [Target; 4] = [
        ("request_frame", |d| {
            let _ = request_frame(d);
            let _ = controller_frame(d);
        }),
        ("record_batch", record_batches),
        ("coordinator_log", coordinator_log),
        ("storage_file", storage_file),
    ];
    for (name, run) in targets {
        let dir = root.join(name);
        let mut inputs = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus directory") {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus input");
            run(&data);
            inputs += 1;
        }
        assert!(inputs > 0, "{name}: no corpus inputs in {dir:?}");
    }
}
