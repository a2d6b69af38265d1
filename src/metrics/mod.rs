//! Broker metrics: the counters hot paths bump. The Prometheus endpoint that
//! reports them, with gauges read at scrape time, is the server's
//! (`server::prometheus`).
//!
//! Hot paths only do relaxed atomic adds on handles they already hold: a
//! partition's [`PartitionMetrics`] (bytes and messages in, bytes out) live on
//! the `Partition` itself, so no map is looked up and no lock is taken per
//! request, and a deleted topic's figures vanish with it. Per-API request
//! latency, per-API error counts and connection counts live in
//! [`BrokerMetrics`], in fixed arrays indexed by API key and error code.
//! Everything else (partition counts, log sizes, offsets, consumer lag) is
//! read at scrape time by the exporter.

pub mod stats;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::produce_response::TopicProduceResponse;
use std::future::Future;

/// One counter on its own cache line, so that producers bumping bytes in and
/// consumers bumping bytes out of the same partition do not contend.
#[derive(Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// Counters of one partition; the scrape sums them per topic.
#[derive(Default)]
pub struct PartitionMetrics {
    bytes_in: Padded,
    messages_in: AtomicU64,
    bytes_out: Padded,
}

impl PartitionMetrics {
    /// A successful append of `bytes` bytes holding `records` records (the
    /// sum of the batch headers' record counts).
    pub fn appended(&self, bytes: usize, records: i64) {
        self.bytes_in.0.fetch_add(bytes as u64, Relaxed);
        self.messages_in.fetch_add(records.max(0) as u64, Relaxed);
    }

    /// Record bytes sent to a client in a fetch response.
    pub fn fetched(&self, bytes: usize) {
        if bytes > 0 {
            self.bytes_out.0.fetch_add(bytes as u64, Relaxed);
        }
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.0.load(Relaxed)
    }

    pub fn messages_in(&self) -> u64 {
        self.messages_in.load(Relaxed)
    }

    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.0.load(Relaxed)
    }
}

/// Upper bounds of the latency histogram's buckets, in microseconds (the
/// last bucket, +Inf, is implicit). Long-poll fetches and join waits land in
/// the upper buckets by design.
pub const LATENCY_BOUNDS_US: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000,
];
const BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// A latency histogram on atomics (the crate's own histogram takes a mutex
/// per observation). The count is the sum of the buckets, so the two always
/// agree in a scrape.
#[derive(Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe_us(&self, us: u64) {
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS - 1);
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// (sum in seconds, count, per-bucket (upper bound in seconds, count)).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(BUCKETS);
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Relaxed);
            count += n;
            let bound = LATENCY_BOUNDS_US
                .get(i)
                .map(|&us| us as f64 / 1e6)
                .unwrap_or(f64::INFINITY);
            buckets.push((bound, n));
        }
        (self.sum_us.load(Relaxed) as f64 / 1e6, count, buckets)
    }
}

/// Kafka API keys run 0..=92 in Kafka 4.x; the table leaves room to grow.
pub const API_SLOTS: usize = 128;
/// Error codes run -1..~130; code `c` lives in slot `c + 1`.
const ERROR_SLOTS: usize = 256;

/// Per-error-code counters of one API (error code 0 is not counted).
pub struct ErrorCounts {
    slots: Box<[AtomicU64]>,
}

impl Default for ErrorCounts {
    fn default() -> Self {
        ErrorCounts {
            slots: (0..ERROR_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl ErrorCounts {
    pub fn add(&self, code: i16) {
        if code == 0 {
            return;
        }
        // A code outside the table counts as UNKNOWN_SERVER_ERROR (-1).
        let slot = usize::try_from(i32::from(code) + 1)
            .ok()
            .filter(|&s| s < ERROR_SLOTS)
            .unwrap_or(0);
        self.slots[slot].fetch_add(1, Relaxed);
    }

    /// Every (error code, count) with a non-zero count.
    pub fn nonzero(&self) -> Vec<(i16, u64)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, n)| {
                let n = n.load(Relaxed);
                (n > 0).then(|| (slot as i16 - 1, n))
            })
            .collect()
    }
}

/// Broker-wide figures the hot paths update.
pub struct BrokerMetrics {
    /// Whether the endpoint is configured; when it is not, requests are not
    /// timed at all.
    enabled: bool,
    requests: Box<[LatencyHistogram]>,
    pub produce_errors: ErrorCounts,
    pub fetch_errors: ErrorCounts,
    connections_open: AtomicI64,
    connections_accepted: AtomicU64,
}

impl BrokerMetrics {
    pub fn new(enabled: bool) -> BrokerMetrics {
        BrokerMetrics {
            enabled,
            requests: (0..API_SLOTS)
                .map(|_| LatencyHistogram::default())
                .collect(),
            produce_errors: ErrorCounts::default(),
            fetch_errors: ErrorCounts::default(),
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Counts a client connection until the guard drops.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections_accepted.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
        ConnectionGuard(self.clone())
    }

    pub fn connections_open(&self) -> i64 {
        self.connections_open.load(Relaxed)
    }

    pub fn connections_accepted(&self) -> u64 {
        self.connections_accepted.load(Relaxed)
    }

    /// The latency histogram of an API key, if the key fits the table.
    pub fn requests(&self, api_key: i16) -> Option<&LatencyHistogram> {
        usize::try_from(api_key)
            .ok()
            .and_then(|k| self.requests.get(k))
    }

    /// Starts timing a request from its frame (the API key is the frame's
    /// first two bytes); a no-op when the endpoint is off.
    pub fn request_timer(self: &Arc<Self>, frame: &[u8]) -> RequestTimer {
        if !self.enabled || frame.len() < 2 {
            return RequestTimer(None);
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        if self.requests(key).is_none() {
            return RequestTimer(None);
        }
        RequestTimer(Some((self.clone(), key, Instant::now())))
    }

    /// Counts the per-partition error codes of a Produce response.
    pub fn count_produce(&self, topics: &[TopicProduceResponse]) {
        for t in topics {
            for p in &t.partition_responses {
                self.produce_errors.add(p.error_code);
            }
        }
    }
}

/// Decrements the open-connections gauge when the connection ends.
pub struct ConnectionGuard(Arc<BrokerMetrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Relaxed);
    }
}

/// Times one request from decoded frame to response ready.
pub struct RequestTimer(Option<(Arc<BrokerMetrics>, i16, Instant)>);

impl RequestTimer {
    /// Whether this request is timed at all (the endpoint is on).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Resolves to what `pending` resolves to, observing the latency when
    /// it completes.
    pub async fn time<F: Future>(self, pending: F) -> F::Output {
        let out = pending.await;
        if let Some((metrics, key, started)) = self.0 {
            if let Some(h) = metrics.requests(key) {
                h.observe_us(started.elapsed().as_micros().min(u64::MAX as u128) as u64);
            }
        }
        out
    }
}

/// `UnknownTopicOrPartition` → `UNKNOWN_TOPIC_OR_PARTITION` (Kafka's
/// `Errors` names, which its ErrorsPerSec metric uses as the label).
pub fn error_name(code: i16) -> String {
    use kafka_protocol::ResponseError;
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_CODE_{c}"),
        Some(e) => screaming_snake(&e.to_string()),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// `Produce`, `Fetch`, ... (Kafka's ApiKeys names, as in its RequestMetrics).
pub fn api_name(key: i16) -> Option<String> {
    kafka_protocol::messages::ApiKey::try_from(key)
        .ok()
        .map(|k| format!("{k:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_count_agree() {
        let h = LatencyHistogram::default();
        h.observe_us(0);
        h.observe_us(500);
        h.observe_us(501);
        h.observe_us(u64::MAX / 2);
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 4);
        assert_eq!(buckets.len(), LATENCY_BOUNDS_US.len() + 1);
        assert_eq!(buckets[0], (0.0005, 2));
        assert_eq!(buckets[1], (0.001, 1));
        assert_eq!(buckets.last().copied(), Some((f64::INFINITY, 1)));
        assert!(sum > 1e6);
    }

    #[test]
    fn error_counts_ignore_none_and_clamp_strange_codes() {
        let e = ErrorCounts::default();
        e.add(0);
        e.add(3);
        e.add(3);
        e.add(-1);
        e.add(i16::MAX);
        e.add(i16::MIN);
        assert_eq!(e.nonzero(), vec![(-1, 3), (3, 2)]);
    }

    #[test]
    fn kafka_error_and_api_names() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(30000), "UNKNOWN_CODE_30000");
        assert_eq!(api_name(0).as_deref(), Some("Produce"));
        assert_eq!(api_name(1).as_deref(), Some("Fetch"));
        assert_eq!(api_name(-5), None);
    }

    #[test]
    fn request_timer_is_a_no_op_when_disabled_or_unknown() {
        let off = Arc::new(BrokerMetrics::new(false));
        assert!(off.request_timer(&[0, 0, 0, 9]).0.is_none());
        let on = Arc::new(BrokerMetrics::new(true));
        assert!(on.request_timer(&[0]).0.is_none());
        assert!(on.request_timer(&[0x7f, 0x7f]).0.is_none());
        assert!(on.request_timer(&[0, 1, 0, 12]).0.is_some());
    }
}
