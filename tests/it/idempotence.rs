//! Black-box tests of kastle's idempotent producer support against the real
//! binary, checked against Apache Kafka 4.x behaviour: InitProducerId without
//! a transactional id, the per-partition producer state (epoch and sequence
//! checks, duplicates answered with the original offsets, the 5-batch window,
//! sequence wrap-around), pipelined retries, durability of that state across
//! graceful and kill -9 restarts (a snapshot keeps a producer's last batch, as
//! Kafka's), and DescribeProducers.

use std::collections::HashSet;

use crate::support::fetch::{fetch_all_batches, latest};
use crate::support::produce::*;
use crate::support::topics::create_topic;
use crate::support::transactions::{
    describe_producers, idempotent_producer, init_producer_id, init_producer_id_request,
};
use crate::support::*;
use kafka_protocol::messages::produce_response::ProduceResponse;
use kafka_protocol::protocol::Decodable;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// (base offset, producer id, epoch, base sequence, record count) of each batch.
fn summarize(batches: &[Vec<u8>]) -> Vec<(i64, i64, i16, i32, i32)> {
    batches
        .iter()
        .map(|b| {
            let (p, e, s) = batch_producer(b);
            (batch_base_offset(b), p, e, s, batch_record_count(b))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// InitProducerId
// ---------------------------------------------------------------------------

#[test]
fn init_producer_id_unique_across_versions_and_restarts() {
    let mut b = Broker::start(&[]);
    let mut seen: HashSet<i64> = HashSet::new();

    // The ids one run hands out: (lowest, highest).
    let collect = |b: &Broker, seen: &mut HashSet<i64>, round: &str| -> (i64, i64) {
        let mut c = b.client();
        let mut ids = Vec::new();
        for v in 0..=5i16 {
            for _ in 0..3 {
                let r = init_producer_id(&mut c, v, None, 60_000);
                assert_eq!(r.error_code, NONE, "{round}: InitProducerId v{v}");
                assert_eq!(r.producer_epoch, 0, "{round}: InitProducerId v{v} epoch");
                let id = r.producer_id.0;
                assert!(id >= 0, "{round}: InitProducerId v{v} id {id}");
                assert!(
                    seen.insert(id),
                    "{round}: InitProducerId v{v} repeated producer id {id}"
                );
                ids.push(id);
            }
        }
        // KIP-360: an idempotent producer may pass its current id and epoch
        // (v3+); without a transactional id Kafka still hands out a brand new
        // id at epoch 0.
        let last = *ids.last().unwrap();
        let r = c.call(4, &init_producer_id_request(None, 60_000, last, 0));
        assert_eq!(
            r.error_code, NONE,
            "{round}: InitProducerId v4 with an existing id/epoch"
        );
        assert_eq!(r.producer_epoch, 0, "{round}: epoch after passing id/epoch");
        assert!(
            seen.insert(r.producer_id.0),
            "{round}: id {} repeated",
            r.producer_id.0
        );
        ids.push(r.producer_id.0);
        (*ids.iter().min().unwrap(), *ids.iter().max().unwrap())
    };

    let (_, max_first) = collect(&b, &mut seen, "first run");
    assert_eq!(seen.len(), 19);

    // Graceful restart: ids come from a block after every id handed out
    // before (Kafka's producer id blocks), so none can come back.
    let st = b.stop();
    assert_eq!(st.code(), Some(0), "SIGTERM exit status");
    b.restart();
    let (min_second, max_second) = collect(&b, &mut seen, "after SIGTERM restart");
    assert_eq!(seen.len(), 38);
    assert!(
        min_second > max_first,
        "ids after a restart ({min_second}..) above those before (..{max_first})"
    );

    // Crash: still no repeats, even of ids handed out just before the kill.
    b.kill();
    b.restart();
    let (min_third, _) = collect(&b, &mut seen, "after kill -9 restart");
    assert_eq!(seen.len(), 57);
    assert!(
        min_third > max_second,
        "ids after kill -9 ({min_third}..) above those before (..{max_second})"
    );
    b.assert_alive();
}

#[test]
fn init_producer_id_with_transactional_id_bumps_the_epoch() {
    // A transactional id keeps its producer id; each InitProducerId bumps the
    // epoch (fencing the previous incarnation).
    let b = Broker::start(&[]);
    find_coordinators(&b);
    let mut c = b.client();
    let first = init_producer_id(&mut c, 4, Some("txn-1"), 60_000);
    assert_eq!(first.error_code, NONE);
    assert!(first.producer_id.0 >= 0);
    assert_eq!(first.producer_epoch, 0);
    let second = init_producer_id(&mut c, 4, Some("txn-1"), 60_000);
    assert_eq!(second.error_code, NONE);
    assert_eq!(second.producer_id, first.producer_id);
    assert_eq!(second.producer_epoch, 1);
    // The connection stays usable and idempotent ids still work.
    idempotent_producer(&mut c);
}

// ---------------------------------------------------------------------------
// Sequence and epoch rules
// ---------------------------------------------------------------------------

#[test]
fn duplicates_gaps_and_epochs() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "idem", 1, &[]);
    let pid = idempotent_producer(&mut c).0;
    let ts = now_ms();

    // seq 0, 3 records → offset 0.
    let b0 = producer_batch(pid, 0, 0, 3, ts, "b0");
    assert_eq!(produce_ok(&mut c, "idem", 0, &b0), 0);
    assert_eq!(latest(&mut c, "idem", 0), 3);

    // The same batch again: success with the original base offset, nothing appended.
    let r = produce(&mut c, "idem", 0, &b0);
    assert_eq!(
        r.error_code, NONE,
        "duplicate of seq 0: {:?}",
        r.error_message
    );
    assert_eq!(
        r.base_offset, 0,
        "duplicate answered with the original base offset"
    );
    assert_eq!(r.log_start_offset, 0, "duplicate log start offset");
    assert_eq!(
        latest(&mut c, "idem", 0),
        3,
        "duplicate must not be appended"
    );
    let got = fetch_all_batches(&mut c, "idem", 0, 0);
    assert_eq!(
        summarize(&got),
        vec![(0, pid, 0, 0, 3)],
        "log holds seq 0 once"
    );
    assert_same_batch(&got[0], &b0, 0, 0, "stored seq 0 batch");

    // Next in sequence: seq 3 (2 records) → offset 3.
    let b1 = producer_batch(pid, 0, 3, 2, ts, "b1");
    assert_eq!(produce_ok(&mut c, "idem", 0, &b1), 3);
    assert_eq!(latest(&mut c, "idem", 0), 5);

    // A gap: seq 9 when 5 is expected.
    let gap = producer_batch(pid, 0, 9, 1, ts, "gap");
    produce_err(
        &mut c,
        "idem",
        0,
        &gap,
        E::OutOfOrderSequenceNumber.code(),
        "seq 9 after last seq 4",
    );
    // A sequence already passed but not a retry of a recorded batch (overlap).
    let overlap = producer_batch(pid, 0, 4, 1, ts, "overlap");
    produce_err(
        &mut c,
        "idem",
        0,
        &overlap,
        E::OutOfOrderSequenceNumber.code(),
        "seq 4 (inside the last batch)",
    );
    assert_eq!(
        latest(&mut c, "idem", 0),
        5,
        "rejected batches not appended"
    );

    // A bumped epoch must start at sequence 0.
    let e1_bad = producer_batch(pid, 1, 5, 1, ts, "e1bad");
    produce_err(
        &mut c,
        "idem",
        0,
        &e1_bad,
        E::OutOfOrderSequenceNumber.code(),
        "epoch 1 starting at seq 5",
    );
    let e1 = producer_batch(pid, 1, 0, 2, ts, "e1");
    assert_eq!(produce_ok(&mut c, "idem", 0, &e1), 5);

    // The old epoch is fenced now, new data and retries alike.
    let old = producer_batch(pid, 0, 5, 1, ts, "old");
    produce_err(
        &mut c,
        "idem",
        0,
        &old,
        E::InvalidProducerEpoch.code(),
        "epoch 0 after epoch 1 wrote",
    );
    produce_err(
        &mut c,
        "idem",
        0,
        &b1,
        E::InvalidProducerEpoch.code(),
        "retry of an epoch-0 batch after epoch 1 wrote",
    );
    // A retry in the new epoch is still a duplicate.
    let r = produce(&mut c, "idem", 0, &e1);
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 5),
        "duplicate of epoch 1 seq 0"
    );
    let e1b = producer_batch(pid, 1, 2, 1, ts, "e1b");
    assert_eq!(produce_ok(&mut c, "idem", 0, &e1b), 7);
    assert_eq!(latest(&mut c, "idem", 0), 8);

    // Idempotent and plain batches interleave; plain ones never dedupe.
    let plain = simple_batch(2, 10, ts, 7);
    assert_eq!(produce_ok(&mut c, "idem", 0, &plain), 8);
    assert_eq!(produce_ok(&mut c, "idem", 0, &plain), 10);
    let e1c = producer_batch(pid, 1, 3, 1, ts, "e1c");
    assert_eq!(produce_ok(&mut c, "idem", 0, &e1c), 12);

    // A producer id with no base sequence is an invalid record (Kafka's LogValidator).
    let noseq = producer_batch(pid, 1, -1, 1, ts, "noseq");
    produce_err(
        &mut c,
        "idem",
        0,
        &noseq,
        E::InvalidRecord.code(),
        "producer id with base sequence -1",
    );

    assert_eq!(latest(&mut c, "idem", 0), 13);
    let got = fetch_all_batches(&mut c, "idem", 0, 0);
    assert_eq!(
        summarize(&got),
        vec![
            (0, pid, 0, 0, 3),
            (3, pid, 0, 3, 2),
            (5, pid, 1, 0, 2),
            (7, pid, 1, 2, 1),
            (8, -1, -1, -1, 2),
            (10, -1, -1, -1, 2),
            (12, pid, 1, 3, 1),
        ],
        "final log"
    );
}

#[test]
fn duplicate_window_is_five_batches() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "win", 1, &[]);
    let pid = idempotent_producer(&mut c).0;
    let ts = now_ms();
    // Eight 2-record batches: seq 0,2,...,14 at offsets 0,2,...,14.
    let batches: Vec<Vec<u8>> = (0..8)
        .map(|i| producer_batch(pid, 0, 2 * i, 2, ts, &format!("w{i}")))
        .collect();
    for (i, bt) in batches.iter().enumerate() {
        assert_eq!(produce_ok(&mut c, "win", 0, bt), 2 * i as i64);
    }
    // The five most recent (3..=7) are duplicates answered with their own offsets.
    for i in (3..8).rev() {
        let r = produce(&mut c, "win", 0, &batches[i]);
        assert_eq!(
            r.error_code, NONE,
            "retry of batch {i}: {:?}",
            r.error_message
        );
        assert_eq!(
            r.base_offset,
            2 * i as i64,
            "retry of batch {i}: original base offset"
        );
    }
    // The 6th most recent has left the window: out of order, not appended.
    produce_err(
        &mut c,
        "win",
        0,
        &batches[2],
        E::OutOfOrderSequenceNumber.code(),
        "retry of the 6th most recent batch",
    );
    produce_err(
        &mut c,
        "win",
        0,
        &batches[0],
        E::OutOfOrderSequenceNumber.code(),
        "retry of the oldest batch",
    );
    // A retry with the same first sequence but a different record count is not a duplicate.
    let odd = producer_batch(pid, 0, 14, 1, ts, "odd");
    produce_err(
        &mut c,
        "win",
        0,
        &odd,
        E::OutOfOrderSequenceNumber.code(),
        "seq 14 with 1 record (batch had 2)",
    );
    assert_eq!(latest(&mut c, "win", 0), 16);
    assert_eq!(
        fetch_all_batches(&mut c, "win", 0, 0).len(),
        8,
        "no batch appended twice"
    );
    // The sequence goes on.
    let next = producer_batch(pid, 0, 16, 1, ts, "next");
    assert_eq!(produce_ok(&mut c, "win", 0, &next), 16);
}

#[test]
fn sequence_wraps_at_int32_max() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "wrap", 1, &[]);
    let pid = idempotent_producer(&mut c).0;
    let ts = now_ms();
    // An unknown producer may start anywhere: seqs MAX-1, MAX, 0.
    let w = producer_batch(pid, 0, i32::MAX - 1, 3, ts, "wrap");
    assert_eq!(produce_ok(&mut c, "wrap", 0, &w), 0);
    // Its retry is a duplicate (last sequence computed with wrap-around).
    let r = produce(&mut c, "wrap", 0, &w);
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 0),
        "retry of the wrapping batch"
    );
    // Next after the wrap: seq 1.
    let n = producer_batch(pid, 0, 1, 2, ts, "after");
    assert_eq!(produce_ok(&mut c, "wrap", 0, &n), 3);
    let n2 = producer_batch(pid, 0, 3, 1, ts, "after2");
    assert_eq!(produce_ok(&mut c, "wrap", 0, &n2), 5);
    // seq 0 would be a gap backwards now.
    let z = producer_batch(pid, 0, 0, 1, ts, "zero");
    produce_err(
        &mut c,
        "wrap",
        0,
        &z,
        E::OutOfOrderSequenceNumber.code(),
        "seq 0 after seq 3",
    );
    assert_eq!(latest(&mut c, "wrap", 0), 6);

    // Exactly reaching MAX then continuing at 0.
    let pid2 = idempotent_producer(&mut c).0;
    let m = producer_batch(pid2, 0, i32::MAX - 1, 2, ts, "max");
    assert_eq!(produce_ok(&mut c, "wrap", 0, &m), 6);
    let z = producer_batch(pid2, 0, 0, 1, ts, "z");
    assert_eq!(produce_ok(&mut c, "wrap", 0, &z), 8);
    assert_eq!(latest(&mut c, "wrap", 0), 9);
}

// ---------------------------------------------------------------------------
// Pipelining
// ---------------------------------------------------------------------------

#[test]
fn pipelined_retries_append_once() {
    let b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "pipe", 1, &[]);
    let pid = idempotent_producer(&mut c).0;
    let ts = now_ms();
    let b0 = producer_batch(pid, 0, 0, 3, ts, "p0");
    let b1 = producer_batch(pid, 0, 3, 2, ts, "p1");
    // Five requests in one write: b0, b0, b1, b0, b1.
    let order = [&b0, &b0, &b1, &b0, &b1];
    let mut bytes = Vec::new();
    for (i, bt) in order.iter().enumerate() {
        let body = encode(&produce_request("pipe", 0, -1, bt), PRODUCE_VERSION);
        bytes.extend(frame(0, PRODUCE_VERSION, 500 + i as i32, &body));
    }
    c.write_raw(&bytes).unwrap();
    let want = [0i64, 0, 3, 0, 3];
    for (i, w) in want.iter().enumerate() {
        let (corr, mut body) = c.recv(0, PRODUCE_VERSION);
        assert_eq!(corr, 500 + i as i32, "response {i} out of order");
        let r = single_partition(ProduceResponse::decode(&mut body, PRODUCE_VERSION).unwrap());
        assert_eq!(
            r.error_code, NONE,
            "pipelined request {i}: {:?}",
            r.error_message
        );
        assert_eq!(r.base_offset, *w, "pipelined request {i}: base offset");
    }
    assert_eq!(latest(&mut c, "pipe", 0), 5);
    assert_eq!(
        summarize(&fetch_all_batches(&mut c, "pipe", 0, 0)),
        vec![(0, pid, 0, 0, 3), (3, pid, 0, 3, 2)],
        "log holds each batch once"
    );

    // The same retry racing on two connections.
    let b2 = producer_batch(pid, 0, 5, 4, ts, "p2");
    let body = encode(&produce_request("pipe", 0, -1, &b2), PRODUCE_VERSION);
    let mut c2 = b.client();
    c.write_raw(&frame(0, PRODUCE_VERSION, 900, &body)).unwrap();
    c2.write_raw(&frame(0, PRODUCE_VERSION, 901, &body))
        .unwrap();
    for (cl, corr) in [(&mut c, 900), (&mut c2, 901)] {
        let (got, mut rb) = cl.recv(0, PRODUCE_VERSION);
        assert_eq!(got, corr);
        let r = single_partition(ProduceResponse::decode(&mut rb, PRODUCE_VERSION).unwrap());
        assert_eq!(
            (r.error_code, r.base_offset),
            (NONE, 5),
            "racing retry on connection {corr}"
        );
    }
    assert_eq!(latest(&mut c, "pipe", 0), 9);
    assert_eq!(fetch_all_batches(&mut c, "pipe", 0, 0).len(), 3);
}

// ---------------------------------------------------------------------------
// Durability of producer state
// ---------------------------------------------------------------------------

/// Writes `n` 2-record batches seq 0,2,.. for `pid`; returns them with offsets.
#[allow(clippy::too_many_arguments)] // mirrors the batch header fields a test sets
fn write_seq(
    c: &mut Client,
    topic: &str,
    pid: i64,
    from_seq: i32,
    n: usize,
    ts: i64,
    pad: usize,
    expect_base: &mut i64,
) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..n {
        let seq = from_seq + 2 * i as i32;
        let bt = producer_batch(
            pid,
            0,
            seq,
            2,
            ts,
            &format!("{pid}-{seq}-{}", "x".repeat(pad)),
        );
        let r = produce(c, topic, 0, &bt);
        assert_eq!(
            r.error_code, NONE,
            "pid {pid} seq {seq}: {:?}",
            r.error_message
        );
        let off = r.base_offset;
        assert_eq!(off, *expect_base, "pid {pid} seq {seq}: base offset");
        *expect_base += 2;
        out.push((off, bt));
    }
    out
}

fn assert_duplicate(c: &mut Client, topic: &str, bt: &[u8], offset: i64, what: &str) {
    let before = latest(c, topic, 0);
    let r = produce(c, topic, 0, bt);
    assert_eq!(
        r.error_code, NONE,
        "{what}: retry refused: {:?}",
        r.error_message
    );
    assert_eq!(
        r.base_offset, offset,
        "{what}: retry must be answered with the original base offset"
    );
    assert_eq!(
        latest(c, topic, 0),
        before,
        "{what}: retry must not be appended"
    );
}

/// Offset of the newest producer state snapshot of `topic`-0 (0 without one:
/// the whole log is replayed at start-up).
fn newest_snapshot_offset(b: &Broker, topic: &str) -> i64 {
    files_ending(&b.partition_dir(topic, 0), ".snapshot")
        .iter()
        .filter_map(|n| n.strip_suffix(".snapshot")?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// What a restarted broker knows of a producer, as Kafka 4.4: a snapshot
/// keeps each producer's last batch only, the replay of the log after the
/// newest snapshot (at `snapshot`) adds the batches it meets, and at most the
/// last five are kept. Each of the last six batches of `written` is then a
/// duplicate answered with its offset if known, out of order if not.
fn assert_known_after_restart(
    c: &mut Client,
    topic: &str,
    written: &[(i64, Vec<u8>)],
    snapshot: i64,
    when: &str,
) {
    let first_replayed = written
        .iter()
        .position(|(o, _)| *o >= snapshot)
        .unwrap_or(written.len());
    let oldest_known = first_replayed
        .saturating_sub(1)
        .max(written.len().saturating_sub(5));
    for i in written.len().saturating_sub(6)..written.len() {
        let (off, bt) = &written[i];
        let what = format!("{when}: {} most recent batch", written.len() - i);
        if i >= oldest_known {
            assert_duplicate(c, topic, bt, *off, &what);
        } else {
            produce_err(c, topic, 0, bt, E::OutOfOrderSequenceNumber.code(), &what);
        }
    }
}

#[test]
fn producer_state_survives_kill_9_and_graceful_restart() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "dur", 1, &[]);
    let pid = idempotent_producer(&mut c).0;
    let ts = now_ms();
    let mut next = 0i64;
    let mut written = write_seq(&mut c, "dur", pid, 0, 8, ts, 0, &mut next);
    drop(c);

    // kill -9: no snapshot; the state comes from replaying the log, which
    // meets the last five batches.
    b.kill();
    assert_eq!(newest_snapshot_offset(&b, "dur"), 0);
    b.restart();
    let mut c = b.client();
    assert_known_after_restart(&mut c, "dur", &written, 0, "after kill -9");
    let gap = producer_batch(pid, 0, 100, 1, ts, "gap");
    produce_err(
        &mut c,
        "dur",
        0,
        &gap,
        E::OutOfOrderSequenceNumber.code(),
        "after kill -9: gap",
    );
    written.extend(write_seq(&mut c, "dur", pid, 16, 3, ts, 0, &mut next));
    assert_eq!(latest(&mut c, "dur", 0), next);
    drop(c);

    // Graceful restart: the snapshot taken at shutdown is the state; as in
    // Kafka it holds the producer's last batch only, so an older retry is
    // out of order.
    let st = b.stop();
    assert_eq!(st.code(), Some(0));
    assert_eq!(
        newest_snapshot_offset(&b, "dur"),
        next,
        "a clean shutdown leaves a producer state snapshot at the log end of dur-0"
    );
    b.restart();
    let mut c = b.client();
    assert_known_after_restart(&mut c, "dur", &written, next, "after SIGTERM");
    // Bump the epoch, then crash again: the old epoch stays fenced.
    let e1 = producer_batch(pid, 1, 0, 1, ts, "e1");
    assert_eq!(produce_ok(&mut c, "dur", 0, &e1), next);
    next += 1;
    drop(c);
    b.kill();
    b.restart();
    let mut c = b.client();
    assert_duplicate(
        &mut c,
        "dur",
        &e1,
        next - 1,
        "after second kill -9: epoch 1 batch",
    );
    produce_err(
        &mut c,
        "dur",
        0,
        &written.last().unwrap().1,
        E::InvalidProducerEpoch.code(),
        "after second kill -9: epoch 0 retry",
    );
    let e1b = producer_batch(pid, 1, 1, 1, ts, "e1b");
    assert_eq!(produce_ok(&mut c, "dur", 0, &e1b), next);
    next += 1;
    assert_eq!(latest(&mut c, "dur", 0), next);
    let all = fetch_all_batches(&mut c, "dur", 0, 0);
    assert_eq!(all.len(), written.len() + 2, "every batch exactly once");
    for (i, (o, bt)) in written.iter().enumerate() {
        assert_same_batch(&all[i], bt, *o, 0, &format!("batch {i}"));
    }
}

#[test]
fn producer_state_survives_kill_9_with_rolled_segments() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "roll", 1, &[("internal.segment.bytes", "2000")]);
    let ts = now_ms();
    let a = idempotent_producer(&mut c).0;
    let bp = idempotent_producer(&mut c).0;
    let mut next = 0i64;
    // Producer A writes a few batches early, then falls silent: its state
    // lives only in segments that roll away (and in the roll snapshots).
    let a_batches = write_seq(&mut c, "roll", a, 0, 6, ts, 150, &mut next);
    // Producer B writes a lot: many rolls.
    let mut b_batches = write_seq(&mut c, "roll", bp, 0, 60, ts, 150, &mut next);
    let segments = files_ending(&b.partition_dir("roll", 0), ".log").len();
    assert!(
        segments >= 5,
        "internal.segment.bytes=2000 should roll often, have {segments} segments"
    );
    assert!(
        !files_ending(&b.partition_dir("roll", 0), ".snapshot").is_empty(),
        "segment rolls take producer state snapshots"
    );
    drop(c);

    b.kill();
    // The state comes from the newest roll snapshot and the replay after it:
    // A's batches are all before it, so only A's last is still known.
    let snapshot = newest_snapshot_offset(&b, "roll");
    assert!(snapshot > a_batches.last().unwrap().0);
    b.restart();
    let mut c = b.client();
    assert_eq!(latest(&mut c, "roll", 0), next);
    assert_known_after_restart(&mut c, "roll", &a_batches, snapshot, "after kill -9: A");
    assert_known_after_restart(&mut c, "roll", &b_batches, snapshot, "after kill -9: B");
    // Both go on in sequence.
    let a_next = producer_batch(a, 0, 12, 1, ts, "a-next");
    let a_next_off = next;
    assert_eq!(produce_ok(&mut c, "roll", 0, &a_next), a_next_off);
    next += 1;
    b_batches.extend(write_seq(&mut c, "roll", bp, 120, 20, ts, 150, &mut next));
    drop(c);

    // Once more, crash right after more rolls, with the newest snapshot
    // damaged: the state must come from an older snapshot or the log itself.
    b.kill();
    let snaps = files_ending(&b.partition_dir("roll", 0), ".snapshot");
    assert!(!snaps.is_empty(), "snapshots after more rolls");
    let newest = b.data_dir.join("roll-0").join(snaps.last().unwrap());
    let mut data = std::fs::read(&newest).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&newest, &data).unwrap();
    b.restart();
    let mut c = b.client();
    let (off, last_b) = b_batches.last().unwrap().clone();
    assert_duplicate(
        &mut c,
        "roll",
        &last_b,
        off,
        "after 2nd kill -9: B's last batch",
    );
    assert_duplicate(
        &mut c,
        "roll",
        &a_next,
        a_next_off,
        "after 2nd kill -9: A's last batch",
    );
    drop(c);
    assert_eq!(b.stop().code(), Some(0));
    b.restart();
    let mut c = b.client();
    assert_duplicate(
        &mut c,
        "roll",
        &last_b,
        off,
        "after SIGTERM: B's last batch",
    );
    assert_duplicate(
        &mut c,
        "roll",
        &a_next,
        a_next_off,
        "after SIGTERM: A's last batch",
    );
    assert_eq!(latest(&mut c, "roll", 0), next);
    let all = fetch_all_batches(&mut c, "roll", 0, 0);
    assert_eq!(
        all.len(),
        a_batches.len() + b_batches.len() + 1,
        "every batch exactly once"
    );
}

/// A producer state snapshot in the format kastle wrote before it wrote
/// Kafka's (magic `KPS1`): every producer with up to five batches.
fn former_kastle_snapshot(pid: i64, written: &[(i64, Vec<u8>)], ts: i64) -> Vec<u8> {
    let mut out = b"KPS1".to_vec();
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&pid.to_be_bytes());
    out.extend_from_slice(&0i16.to_be_bytes()); // epoch
    out.extend_from_slice(&(-1i32).to_be_bytes()); // coordinator epoch
    out.extend_from_slice(&(-1i64).to_be_bytes()); // no open transaction
    out.extend_from_slice(&ts.to_be_bytes());
    let last5 = &written[written.len() - 5..];
    out.push(last5.len() as u8);
    for (off, _) in last5 {
        let seq = *off as i32; // write_seq: sequence = offset, 2 records a batch
        for v in [seq, seq + 1] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&off.to_be_bytes());
        out.extend_from_slice(&(off + 1).to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn corrupt_and_former_format_snapshots_at_start_up() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "snap", 1, &[]);
    let pid = idempotent_producer(&mut c).0;
    let ts = now_ms();
    let mut next = 0i64;
    let written = write_seq(&mut c, "snap", pid, 0, 8, ts, 0, &mut next);
    drop(c);
    assert_eq!(b.stop().code(), Some(0));
    let snapshot = b
        .partition_dir("snap", 0)
        .join(format!("{next:020}.snapshot"));
    let data = std::fs::read(&snapshot).unwrap();
    assert_eq!(&data[..2], &[0, 1], "Kafka's format, version 1");

    // A truncated snapshot: the broker starts, deletes it and rebuilds the
    // state from the whole log, which knows the last five batches again.
    std::fs::write(&snapshot, &data[..5]).unwrap();
    b.restart();
    assert!(
        !snapshot.exists(),
        "the corrupt snapshot is deleted at start-up"
    );
    let mut c = b.client();
    assert_known_after_restart(&mut c, "snap", &written, 0, "after a truncated snapshot");
    drop(c);
    assert_eq!(b.stop().code(), Some(0));

    // A snapshot kastle wrote before (KPS1, five batches) still loads ...
    std::fs::write(&snapshot, former_kastle_snapshot(pid, &written, ts)).unwrap();
    b.restart();
    let mut c = b.client();
    let (off, fifth) = &written[written.len() - 5];
    assert_duplicate(
        &mut c,
        "snap",
        fifth,
        *off,
        "5th most recent, from a KPS1 snapshot",
    );
    drop(c);
    // ... and the clean shutdown rewrites it in Kafka's format.
    assert_eq!(b.stop().code(), Some(0));
    assert_eq!(&std::fs::read(&snapshot).unwrap()[..2], &[0, 1]);
    b.restart();
    let mut c = b.client();
    assert_known_after_restart(&mut c, "snap", &written, next, "after the rewrite");
}

// ---------------------------------------------------------------------------
// DescribeProducers
// ---------------------------------------------------------------------------

#[test]
fn describe_producers_lists_state() {
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "dp", 2, &[]);
    let ts = now_ms();
    let p1 = idempotent_producer(&mut c).0;
    let p2 = idempotent_producer(&mut c).0;
    produce_ok(&mut c, "dp", 0, &producer_batch(p1, 0, 0, 3, ts, "a"));
    produce_ok(&mut c, "dp", 0, &producer_batch(p1, 0, 3, 4, ts + 5, "b"));
    produce_ok(&mut c, "dp", 0, &producer_batch(p2, 0, 0, 1, ts, "c"));
    produce_ok(&mut c, "dp", 0, &producer_batch(p2, 2, 0, 2, ts + 7, "d"));
    produce_ok(&mut c, "dp", 0, &simple_batch(2, 5, ts, 1));

    let check = |c: &mut Client, what: &str| {
        let parts = describe_producers(c, "dp", &[0, 1, 7]);
        let p0 = &parts[0];
        assert_eq!(
            (p0.partition_index, p0.error_code),
            (0, NONE),
            "{what}: partition 0"
        );
        let mut active: Vec<_> = p0
            .active_producers
            .iter()
            .map(|p| {
                (
                    p.producer_id.0,
                    p.producer_epoch,
                    p.last_sequence,
                    p.last_timestamp,
                    p.coordinator_epoch,
                    p.current_txn_start_offset,
                )
            })
            .collect();
        active.sort();
        assert_eq!(
            active,
            vec![(p1, 0, 6, ts + 5, -1, -1), (p2, 2, 1, ts + 7, -1, -1)],
            "{what}: active producers of dp-0 (id, epoch, last seq, last timestamp, coordinator epoch, txn start)"
        );
        assert_eq!(
            (parts[1].partition_index, parts[1].error_code),
            (1, NONE),
            "{what}: partition 1"
        );
        assert!(
            parts[1].active_producers.is_empty(),
            "{what}: dp-1 has no producers"
        );
        assert_eq!(
            (parts[2].partition_index, parts[2].error_code),
            (7, E::UnknownTopicOrPartition.code()),
            "{what}: nonexistent partition 7"
        );
    };
    check(&mut c, "live");

    let unknown = describe_producers(&mut c, "no-such-topic", &[0]);
    assert_eq!(unknown[0].partition_index, 0);
    assert_eq!(
        unknown[0].error_code,
        E::UnknownTopicOrPartition.code(),
        "unknown topic"
    );
    assert!(unknown[0].active_producers.is_empty());

    drop(c);
    b.kill();
    b.restart();
    let mut c = b.client();
    check(&mut c, "after kill -9");
    drop(c);
    assert_eq!(b.stop().code(), Some(0));
    b.restart();
    let mut c = b.client();
    check(&mut c, "after SIGTERM restart");
}
