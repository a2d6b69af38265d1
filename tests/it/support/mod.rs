//! Shared harness of the integration tests, split by concern. Re-exported
//! here for every test module: the broker process guard (`broker`), the raw
//! client (`client`), record batches (`batch`) and the small helpers below.
//! One module per Kafka API family, imported by the test modules that use
//! it: `topics` (CreateTopics, DeleteTopics, Metadata), `produce`, `fetch`
//! (Fetch, ListOffsets), `groups` (the classic group APIs and offsets),
//! `transactions` (InitProducerId, DescribeProducers and the transaction
//! APIs) and `admin` (configs, partitions, records, quotas, ApiVersions);
//! `load` holds the overload tests' tools (RSS, raw senders, the timed
//! well-behaved client).
//! Helpers that insist on an outcome for the test (`create_topic`,
//! `produce_ok`, `fetch_ok`, `end_txn`, ...) are `#[track_caller]`: a failure
//! names the test's line.

mod batch;
mod broker;
mod client;

pub mod admin;
pub mod cluster;
pub mod fetch;
pub mod groups;
pub mod load;
pub mod produce;
pub mod share;
pub mod topics;
pub mod transactions;

pub use batch::*;
pub use broker::*;
pub use client::*;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kafka error codes come from the protocol crate:
/// `E::UnknownTopicOrPartition.code()`.
pub use kafka_protocol::ResponseError as E;

/// The error code of success, which `ResponseError` has no variant for.
pub const NONE: i16 = 0;

/// A protocol string.
pub fn sb(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

/// A topic name.
pub fn tn(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(sb(s))
}

/// Wall-clock time in milliseconds since the epoch (Kafka timestamps).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Polls `f` every 100 ms until it holds; panics after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sorted file names in `dir` (none if it cannot be read).
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The sorted names of the files in `dir` whose name ends with `suffix`.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v = file_names(dir);
    v.retain(|n| n.ends_with(suffix));
    v
}

/// Append bytes to a file (for crash-recovery tests).
pub fn append_to(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

pub fn truncate_to(path: &Path, len: u64) {
    let f = File::options()
        .write(true)
        .open(path)
        .expect("open for truncate");
    f.set_len(len).unwrap();
    f.sync_all().unwrap();
}

/// Deterministic xorshift64* PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// FindCoordinator for a group and for a transactional id, as clients ask
/// before their first group or transaction request: a standalone broker
/// creates `__consumer_offsets` and `__transaction_state` on that first
/// need, so tests that send group or transaction requests straight away
/// call this first.
#[track_caller]
pub fn find_coordinators(b: &Broker) {
    use kafka_protocol::messages::FindCoordinatorRequest;
    let mut c = b.client();
    for key_type in [0i8, 1] {
        let r = c.call(
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(key_type)
                .with_coordinator_keys(vec![sb("k")]),
        );
        assert_eq!(
            r.coordinators[0].error_code, NONE,
            "FindCoordinator key type {key_type}"
        );
    }
}
