//! Hostile-load helpers for the overload tests: the broker's resident set
//! from /proc, the test's own open-file limit raised, the scale factor of
//! the longer runs (`KASTLE_OVERLOAD_SCALE`), raw connections that send
//! without ever reading, and the well-behaved client whose produce and
//! fetch latencies a scenario checks while the load runs.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::fetch::{fetch_with, FetchArgs};
use super::produce::produce_ok;
use super::{now_ms, simple_batch, Broker, Client};

/// How many times the default size each scenario runs at
/// (`KASTLE_OVERLOAD_SCALE`, default 1).
pub fn scale() -> usize {
    std::env::var("KASTLE_OVERLOAD_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n >= 1)
        .unwrap_or(1)
}

/// The broker's resident set in KiB (Linux `VmRSS`).
pub fn rss_kib(b: &Broker) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{}/status", b.pid())).expect("/proc status");
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("VmRSS line")
}

/// Raises this process's soft open-file limit to its hard limit (as the
/// broker does for itself) and returns it.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid, owned struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

/// A connection that sends what the test says and never reads.
pub fn raw_connection(b: &Broker) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", b.port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Writes all of `bytes`, or as much as the peer takes within 200 ms (a
/// connection that never reads stops taking them): whether all went out.
pub fn write_some(s: &mut TcpStream, bytes: &[u8]) -> bool {
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .expect("write timeout");
    s.write_all(bytes).is_ok()
}

/// The well-behaved client: one produce (acks=all) and one fetch of what it
/// produced on its own topic, each timed.
pub struct Probe {
    client: Client,
    topic: String,
    next: i64,
    /// The slowest produce and fetch seen so far.
    pub worst_produce: Duration,
    pub worst_fetch: Duration,
}

impl Probe {
    /// A probe on `topic`, which must exist with one partition.
    pub fn new(b: &Broker, topic: &str) -> Probe {
        Probe {
            client: b.client(),
            topic: topic.to_string(),
            next: 0,
            worst_produce: Duration::ZERO,
            worst_fetch: Duration::ZERO,
        }
    }

    /// Produces one small batch and fetches it back.
    #[track_caller]
    pub fn once(&mut self) {
        let batch = simple_batch(1, 100, now_ms(), 7);
        let t = Instant::now();
        let offset = produce_ok(&mut self.client, &self.topic, 0, &batch);
        self.worst_produce = self.worst_produce.max(t.elapsed());
        assert_eq!(offset, self.next, "probe offsets");
        self.next += 1;
        let t = Instant::now();
        let args = FetchArgs {
            offset,
            ..FetchArgs::default()
        };
        let p = fetch_with(&mut self.client, &self.topic, 0, &args);
        self.worst_fetch = self.worst_fetch.max(t.elapsed());
        assert_eq!(p.error_code, 0, "probe fetch");
        assert!(
            p.records.as_ref().is_some_and(|r| !r.is_empty()),
            "probe fetch returned its record"
        );
    }

    /// Runs [`Probe::once`] for `d`, every 100 ms.
    #[track_caller]
    pub fn run_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.once();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Insists every produce and fetch was answered within `bound`.
    #[track_caller]
    pub fn assert_served_within(&self, bound: Duration) {
        assert!(
            self.worst_produce <= bound && self.worst_fetch <= bound,
            "well-behaved client: slowest produce {:?}, fetch {:?} (bound {bound:?})",
            self.worst_produce,
            self.worst_fetch
        );
    }
}
