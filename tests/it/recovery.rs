//! Crash recovery from the recovery point: after kill -9 the active segment
//! is re-validated only past `recovery-point-offset-checkpoint` (Kafka's
//! file, written every `log.flush.offset.checkpoint.interval.ms`), so a torn
//! tail is cut while the batches below the recovery point are not re-read;
//! without the checkpoint the whole active segment is scanned.

use std::time::{Duration, Instant};

use crate::support::fetch::latest;
use crate::support::produce::produce_ok;
use crate::support::topics::create_topic;
use crate::support::*;

/// Waits for the checkpoint to hold `line` (`topic partition offset`).
fn await_checkpoint(b: &Broker, line: &str) {
    let path = b.data_dir.join("recovery-point-offset-checkpoint");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.starts_with("0\n") && text.lines().any(|l| l == line) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held {line:?}: {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unclean_start_rescans_the_active_segment_only_past_the_recovery_point() {
    // An index entry per batch, so the scan can resume right at the point.
    let mut b = Broker::start(&[
        "log.flush.offset.checkpoint.interval.ms=50",
        "log.index.interval.bytes=0",
    ]);
    let mut c = b.client();
    create_topic(&mut c, "rp", 1, &[]);
    let mut lens = Vec::new();
    for i in 0..10u8 {
        let bt = simple_batch(3, 100, 1_700_000_000_000 + i64::from(i), i);
        assert_eq!(produce_ok(&mut c, "rp", 0, &bt), 3 * i64::from(i));
        lens.push(bt.len() as u64);
    }
    drop(c);
    // Durable mode: everything acknowledged was fsynced, so the point is 30.
    await_checkpoint(&b, "rp 0 30");
    b.kill();

    // A byte flipped inside batch 2 (below the point) and a torn tail.
    let log = b.log_file("rp", 0);
    let len: u64 = lens.iter().sum();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len);
    let flip_at = lens[0] + lens[1] + lens[2] / 2;
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[flip_at as usize] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    append_to(&log, &[0x5a; 100]);

    b.restart();
    let mut c = b.client();
    // The tail past the point was re-validated and cut; batch 2 was not read.
    assert_eq!(latest(&mut c, "rp", 0), 30);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len);
    drop(c);
    b.kill();

    // Without a checkpoint the whole active segment is scanned: its CRC
    // check finds batch 2 and the log ends before it.
    std::fs::remove_file(b.data_dir.join("recovery-point-offset-checkpoint")).unwrap();
    b.restart();
    let mut c = b.client();
    assert_eq!(latest(&mut c, "rp", 0), 6);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), lens[0] + lens[1]);
}
