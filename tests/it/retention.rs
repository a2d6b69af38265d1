//! Black-box tests of log retention and log compaction against the real
//! `kastle` binary over the raw protocol: time- and size-based retention
//! deleting whole segments and moving the log start offset (ListOffsets
//! earliest, OFFSET_OUT_OF_RANGE below it), compaction keeping the latest
//! value per key with strictly increasing original offsets, tombstones going
//! after `delete.retention.ms`, and kill -9 at random points while the
//! cleaner runs losing no key's latest value.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::support::fetch::{batches_of, earliest, fetch_all_batches, fetch_with, FetchArgs};
use crate::support::produce::produce_ok;
use crate::support::topics::create_topic;
use crate::support::*;
use kastle::record::builder::BatchBuilder;

/// One batch of keyed records (`None` value = tombstone), all at `ts`.
fn kv_batch(records: &[(String, Option<String>)], ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts);
    for (k, v) in records {
        b = b.push(Some(k.as_bytes()), v.as_deref().map(str::as_bytes), &[], ts);
    }
    b.build().to_vec()
}

/// Every record (offset, key, value) in uncompressed batches from `from` on.
fn read_all(c: &mut Client, topic: &str, from: i64) -> Vec<(i64, String, Option<String>)> {
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    fetch_all_batches(c, topic, 0, from)
        .iter()
        .flat_map(|b| records_in(b))
        .filter(|r| r.offset >= from)
        .map(|r| {
            assert!(r.headers.is_empty(), "record {} has headers", r.offset);
            (r.offset, text(r.key.expect("key")), r.value.map(text))
        })
        .collect()
}

/// (file name, size) of the segment files in `dir`.
fn segment_sizes(dir: &Path) -> Vec<(String, u64)> {
    files_ending(dir, ".log")
        .into_iter()
        .map(|n| {
            let len = std::fs::metadata(dir.join(&n))
                .map(|m| m.len())
                .unwrap_or(0);
            (n, len)
        })
        .collect()
}

const RETENTION_OVERRIDES: &[&str] = &[
    "log.retention.check.interval.ms=200",
    "log.segment.delete.delay.ms=100",
];

#[test]
fn time_retention_deletes_old_segments_and_moves_log_start() {
    let b = Broker::start(RETENTION_OVERRIDES);
    let mut c = b.client();
    let topic = "ret-time";
    create_topic(
        &mut c,
        topic,
        1,
        &[("internal.segment.bytes", "2000"), ("retention.ms", "1000")],
    );
    let dir = b.data_dir.join(format!("{topic}-0"));
    let old = now_ms() - 600_000;
    for i in 0..30 {
        let recs: Vec<_> = (0..5)
            .map(|j| {
                (
                    format!("k{j}"),
                    Some(format!("old-{i}-{j}-{}", "x".repeat(40))),
                )
            })
            .collect();
        produce_ok(&mut c, topic, 0, &kv_batch(&recs, old + i));
    }
    let end = 150;
    // Everything is past retention, the active segment included: Kafka rolls
    // and deletes it too, so the log start reaches the log end.
    wait_until(
        "log start to reach the log end",
        Duration::from_secs(20),
        || earliest(&mut c, topic, 0) == end,
    );
    // Fetching below it is out of range; as in Kafka the answer carries no
    // offsets (ListOffsets above tells the log start).
    let p = fetch_with(&mut c, topic, 0, &FetchArgs::default());
    assert_eq!(p.error_code, E::OffsetOutOfRange.code());
    assert_eq!(p.log_start_offset, -1);
    wait_until("old segment files to go", Duration::from_secs(10), || {
        let names = file_names(&dir);
        !names.iter().any(|n| n.ends_with(".deleted"))
            && names.iter().filter(|n| n.ends_with(".log")).count() == 1
    });
    assert!(
        dir.join(format!("{end:020}.log")).exists(),
        "{:?}",
        file_names(&dir)
    );
    // Fresh data is kept and readable from the new start.
    let base = produce_ok(
        &mut c,
        topic,
        0,
        &kv_batch(&[("k".into(), Some("new".into()))], now_ms()),
    );
    assert_eq!(base, end);
    std::thread::sleep(Duration::from_millis(600));
    let recs = read_all(&mut c, topic, end);
    assert_eq!(recs, vec![(end, "k".to_string(), Some("new".to_string()))]);
    assert_eq!(earliest(&mut c, topic, 0), end);
}

#[test]
fn size_retention_keeps_the_newest_bytes() {
    let b = Broker::start(RETENTION_OVERRIDES);
    let mut c = b.client();
    let topic = "ret-size";
    let limit = 5000u64;
    create_topic(
        &mut c,
        topic,
        1,
        &[
            ("internal.segment.bytes", "2000"),
            ("retention.bytes", "5000"),
        ],
    );
    let dir = b.data_dir.join(format!("{topic}-0"));
    for i in 0..60 {
        let recs = vec![(format!("k{i}"), Some("v".repeat(200)))];
        produce_ok(&mut c, topic, 0, &kv_batch(&recs, now_ms()));
    }
    wait_until("size retention", Duration::from_secs(20), || {
        let sizes = segment_sizes(&dir);
        let total: u64 = sizes.iter().map(|s| s.1).sum();
        // Kafka deletes while what remains stays at or above the limit.
        earliest(&mut c, topic, 0) > 0 && total - sizes[0].1 < limit
    });
    let sizes = segment_sizes(&dir);
    let total: u64 = sizes.iter().map(|s| s.1).sum();
    assert!(total >= limit, "never below retention.bytes: {sizes:?}");
    let start = earliest(&mut c, topic, 0);
    assert_eq!(
        sizes[0].0,
        format!("{start:020}.log"),
        "log start is the first segment's base"
    );
    let a = FetchArgs {
        offset: start - 1,
        ..Default::default()
    };
    let p = fetch_with(&mut c, topic, 0, &a);
    assert_eq!(p.error_code, E::OffsetOutOfRange.code());
    let recs = read_all(&mut c, topic, start);
    assert_eq!(recs.first().map(|r| r.0), Some(start));
    assert_eq!(recs.last().map(|r| r.0), Some(59));
}

const COMPACTION_OVERRIDES: &[&str] = &[
    "log.cleaner.backoff.ms=100",
    "log.segment.delete.delay.ms=100",
    "log.retention.check.interval.ms=200",
];

fn compacted_topic(c: &mut Client, topic: &str) {
    create_topic(
        c,
        topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("internal.segment.bytes", "1500"),
            ("delete.retention.ms", "1000"),
        ],
    );
}

/// One produce per key, values tagged with `round`; records the latest.
fn produce_round(
    c: &mut Client,
    topic: &str,
    prefix: &str,
    keys: usize,
    round: usize,
    latest: &mut HashMap<String, Option<String>>,
) {
    for k in 0..keys {
        let (key, value) = (format!("{prefix}{k}"), format!("v{round}-{k}"));
        produce_ok(
            c,
            topic,
            0,
            &kv_batch(&[(key.clone(), Some(value.clone()))], now_ms()),
        );
        latest.insert(key, Some(value));
    }
}

fn latest_of(recs: &[(i64, String, Option<String>)]) -> HashMap<String, Option<String>> {
    recs.iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect()
}

fn checkpoint(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("cleaner-offset-checkpoint")).ok()?;
    text.lines().nth(2)?.split_whitespace().last()?.parse().ok()
}

fn assert_compacted(recs: &[(i64, String, Option<String>)], cleaned_below: i64) {
    assert!(
        recs.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets strictly increasing"
    );
    let mut seen = HashMap::new();
    for (o, k, _) in recs.iter().filter(|r| r.0 < cleaned_below) {
        if let Some(prev) = seen.insert(k.clone(), *o) {
            panic!("key {k} twice below the cleaned offset {cleaned_below}: {prev} and {o}");
        }
    }
}

#[test]
fn compaction_keeps_latest_value_per_key_and_drops_tombstones() {
    let b = Broker::start(COMPACTION_OVERRIDES);
    let mut c = b.client();
    let topic = "compacted";
    compacted_topic(&mut c, topic);
    let dir = b.data_dir.join(format!("{topic}-0"));
    let mut latest = HashMap::new();
    for round in 0..30 {
        produce_round(&mut c, topic, "k", 10, round, &mut latest);
    }
    wait_until(
        "a cleaning pass over most of the log",
        Duration::from_secs(30),
        || checkpoint(&dir).is_some_and(|cp| cp >= 200),
    );
    let recs = read_all(&mut c, topic, 0);
    assert_compacted(&recs, checkpoint(&dir).unwrap_or(0));
    assert_eq!(latest_of(&recs), latest);
    assert!(
        recs.len() < 150,
        "compaction removed records: {}",
        recs.len()
    );
    assert_eq!(recs.last().unwrap().0, 299, "log end untouched");

    // Tombstones for k0..k4, then filler so they leave the active segment.
    for k in 0..5 {
        let key = format!("k{k}");
        produce_ok(
            &mut c,
            topic,
            0,
            &kv_batch(&[(key.clone(), None)], now_ms()),
        );
        latest.remove(&key);
    }
    let mut filler = HashMap::new();
    let mut round = 0;
    wait_until("deleted keys to disappear", Duration::from_secs(40), || {
        // Keep rolling segments so the cleaner has dirty data to act on
        // once delete.retention.ms has passed.
        produce_round(&mut c, topic, "f", 5, round, &mut filler);
        round += 1;
        let recs = read_all(&mut c, topic, 0);
        (0..5).all(|k| !recs.iter().any(|r| r.1 == format!("k{k}")))
    });
    let recs = read_all(&mut c, topic, 0);
    assert_compacted(&recs, checkpoint(&dir).unwrap_or(0));
    let got = latest_of(&recs);
    for (k, v) in latest.iter().chain(filler.iter()) {
        assert_eq!(got.get(k), Some(v), "latest value of {k}");
    }
    // Replaced segment files are removed after file.delete.delay.ms.
    wait_until(".deleted files to go", Duration::from_secs(10), || {
        !file_names(&dir).iter().any(|n| n.ends_with(".deleted"))
    });
}

#[test]
fn kill_9_during_compaction_loses_no_latest_value() {
    let mut b = Broker::start(&[
        "log.cleaner.backoff.ms=20",
        "log.segment.delete.delay.ms=100",
    ]);
    let topic = "compacted-crash";
    {
        let mut c = b.client();
        compacted_topic(&mut c, topic);
    }
    let dir = b.data_dir.join(format!("{topic}-0"));
    let mut latest = HashMap::new();
    let mut rng = Rng(0x5eed_1234);
    let mut round = 0;
    for _ in 0..6 {
        let mut c = b.client();
        for _ in 0..8 {
            produce_round(&mut c, topic, "k", 20, round, &mut latest);
            round += 1;
        }
        // The cleaner runs every few ms: kill it somewhere in a pass.
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        b.kill();
        b.restart();
        let mut c = b.client();
        let recs = read_all(&mut c, topic, 0);
        assert_eq!(latest_of(&recs), latest, "after kill -9 at round {round}");
        assert!(recs.windows(2).all(|w| w[0].0 < w[1].0));
    }
    let mut c = b.client();
    wait_until("a final cleaning pass", Duration::from_secs(30), || {
        checkpoint(&dir).is_some_and(|cp| cp >= 20 * round as i64 - 200)
    });
    let recs = read_all(&mut c, topic, 0);
    assert_eq!(latest_of(&recs), latest);
    assert_compacted(&recs, checkpoint(&dir).unwrap_or(0));
}

/// The series of `name` whatever its labels (one log directory: one series).
fn labelled_gauge(port: u16, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{");
    crate::metrics::scrape(port)
        .into_iter()
        .find(|(series, _)| series.starts_with(&prefix))
        .map(|(_, v)| v)
}

/// Offsets a fetch serves from 0, and the error code that stopped it.
fn read_until_error(c: &mut Client, topic: &str) -> (Vec<i64>, i16) {
    let mut offset = 0;
    let mut served = Vec::new();
    loop {
        let a = FetchArgs {
            offset,
            ..Default::default()
        };
        let p = fetch_with(c, topic, 0, &a);
        if p.error_code != 0 {
            return (served, p.error_code);
        }
        let batches = batches_of(&p);
        if batches.is_empty() {
            return (served, 0);
        }
        for b in batches {
            served.extend(records_in(&b).iter().map(|r| r.offset));
            offset = batch_base_offset(&b) + i64::from(batch_last_offset_delta(&b)) + 1;
        }
    }
}

/// Issue 19: a byte flipped inside a sealed segment of one compacted
/// partition. The cleaner's CRC check refuses that partition without
/// swapping anything (Kafka's "Marking its partition ... as uncleanable",
/// counted in `uncleanable-partitions-count`), goes on cleaning the other
/// compacted partition, and fetches stop before the corrupt batch
/// (CORRUPT_MESSAGE at it), as for a corruption the scrubber finds.
#[test]
fn a_corrupt_batch_makes_only_its_partition_uncleanable() {
    let port = free_port();
    let metrics = format!("metrics.prometheus.listener=127.0.0.1:{port}");
    let mut args = vec!["log.cleaner.enable=false", metrics.as_str()];
    args.extend_from_slice(COMPACTION_OVERRIDES);
    let mut b = Broker::start(&args);
    let (bad, good) = ("uncleanable-bad", "uncleanable-good");
    let (mut latest_bad, mut latest_good) = (HashMap::new(), HashMap::new());
    {
        let mut c = b.client();
        compacted_topic(&mut c, bad);
        compacted_topic(&mut c, good);
        for round in 0..10 {
            produce_round(&mut c, bad, "k", 10, round, &mut latest_bad);
            produce_round(&mut c, good, "k", 10, round, &mut latest_good);
        }
    }
    b.stop();

    // Flip the last byte (record data) of the first batch of the second segment.
    let bad_dir = b.partition_dir(bad, 0);
    let mut logs = files_ending(&bad_dir, ".log");
    logs.sort();
    assert!(logs.len() >= 4, "sealed segments: {logs:?}");
    let seg = bad_dir.join(&logs[1]);
    let mut bytes = std::fs::read(&seg).unwrap();
    let corrupt_base = i64::from_be_bytes(bytes[0..8].try_into().unwrap());
    let first_len = 12 + i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    bytes[first_len - 1] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let bad_files = segment_sizes(&bad_dir);

    b.restart_with(&["log.cleaner.enable=true"]);
    let good_dir = b.partition_dir(good, 0);
    wait_until(
        "the good partition cleaned and the bad one uncleanable",
        Duration::from_secs(20),
        || {
            checkpoint(&good_dir).is_some_and(|cp| cp > 0)
                && labelled_gauge(port, "kastle_uncleanable_partitions_count") == Some(1.0)
        },
    );
    let log = b.stderr();
    let marked = format!("Marking its partition ({bad}-0) as uncleanable");
    assert!(log.contains(&marked), "{log}");
    assert!(log.contains("CRC-32C mismatch"), "{log}");
    assert!(labelled_gauge(port, "kastle_uncleanable_bytes").is_some_and(|v| v > 0.0));
    assert_eq!(
        checkpoint(&bad_dir),
        None,
        "the bad partition was never cleaned"
    );
    assert_eq!(segment_sizes(&bad_dir), bad_files, "nothing swapped");

    // Consumers get every record before the corrupt batch, then CORRUPT_MESSAGE.
    let mut c = b.client();
    let (served, error) = read_until_error(&mut c, bad);
    assert_eq!(error, 2, "CORRUPT_MESSAGE at the corrupt batch");
    assert_eq!(served.last().copied(), Some(corrupt_base - 1));
    assert_eq!(served, (0..corrupt_base).collect::<Vec<_>>());

    // Later rounds keep cleaning the good partition and skip the bad one.
    let before = checkpoint(&good_dir).unwrap_or(0);
    let mut round = 10;
    wait_until(
        "another cleaning of the good partition",
        Duration::from_secs(20),
        || {
            produce_round(&mut c, good, "k", 10, round, &mut latest_good);
            produce_round(&mut c, bad, "k", 10, round, &mut latest_bad);
            round += 1;
            checkpoint(&good_dir).is_some_and(|cp| cp > before)
        },
    );
    assert_eq!(
        b.stderr().matches(&marked).count(),
        1,
        "marked once, never retried"
    );
    assert_eq!(
        labelled_gauge(port, "kastle_uncleanable_partitions_count"),
        Some(1.0)
    );
    let recs = read_all(&mut c, good, 0);
    assert_compacted(&recs, checkpoint(&good_dir).unwrap_or(0));
    assert_eq!(latest_of(&recs), latest_good);
    b.assert_alive();
}
