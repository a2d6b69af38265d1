//! Black-box tests of the Prometheus endpoint (`metrics.prometheus.listener`):
//! the real binary is driven over the Kafka protocol and scraped over HTTP,
//! and each figure must move by exactly what the test did (bytes and records
//! produced, bytes fetched, requests per API, errors, lag, partitions,
//! connections). Also: the endpoint is off by default, bad HTTP gets an
//! error status without hurting the broker, and a bad listener value stops
//! start-up.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::fetch::{fetch_with, FetchArgs};
use crate::support::groups::commit_offsets;
use crate::support::produce::produce;
use crate::support::topics::{create_topic, delete_topic};
use crate::support::{
    find_coordinators, free_port, simple_batch, wait_until, Broker, Client, E, NONE,
};

// ---------------------------------------------------------------------------
// HTTP and scrape helpers
// ---------------------------------------------------------------------------

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect_http(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads one response; the body by Content-Length (HEAD: `head_only`).
fn read_response(s: &mut TcpStream, head_only: bool) -> HttpResponse {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read response head");
        assert!(
            n == 1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("UTF-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').expect("header colon");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut r = HttpResponse {
        status,
        headers,
        body: String::new(),
    };
    if !head_only {
        let len: usize = r
            .header("content-length")
            .expect("content-length")
            .parse()
            .unwrap();
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).expect("read body");
        r.body = String::from_utf8(body).expect("UTF-8 body");
    }
    r
}

fn http(port: u16, raw: &[u8]) -> HttpResponse {
    let mut s = connect_http(port);
    s.write_all(raw).unwrap();
    read_response(&mut s, raw.starts_with(b"HEAD"))
}

/// Every sample of a scrape: `name{labels}` → value.
pub(crate) fn scrape(port: u16) -> BTreeMap<String, f64> {
    let r = http(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers
    );
    assert!(r.body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    parse_samples(&r.body)
}

fn parse_samples(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        assert!(
            out.insert(series.to_string(), v).is_none(),
            "duplicate series {series}"
        );
    }
    out
}

pub(crate) fn get(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in scrape"))
}

fn get_or_zero(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

pub(crate) fn start_with_metrics() -> (Broker, u16) {
    let port = free_port();
    let b = Broker::start(&[&format!("metrics.prometheus.listener=127.0.0.1:{port}")]);
    (b, port)
}

// ---------------------------------------------------------------------------
// Kafka helpers
// ---------------------------------------------------------------------------

/// Fetch v12 of one partition from `offset`: (error code, record bytes).
fn fetch(c: &mut Client, topic: &str, partition: i32, offset: i64) -> (i16, usize) {
    let a = FetchArgs {
        offset,
        ..Default::default()
    };
    let p = fetch_with(c, topic, partition, &a);
    (p.error_code, p.records.as_ref().map_or(0, |r| r.len()))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn figures_move_by_what_clients_did() {
    let (b, mport) = start_with_metrics();
    let mut c = b.client();
    // The client's connect returns once the kernel completes the handshake;
    // the broker counts the connection when its accept loop takes it.
    wait_until(
        "the broker counts the open connection",
        Duration::from_secs(10),
        || get(&scrape(mport), "kastle_connections_open") >= 1.0,
    );
    let before = scrape(mport);
    let accepted_before = get(&before, "kastle_connections_accepted_total");
    assert_eq!(
        get(&before, "kastle_partitions"),
        0.0,
        "the internal topics come on first need"
    );
    find_coordinators(&b);
    assert_eq!(
        get(&scrape(mport), "kastle_partitions"),
        100.0,
        "the two internal topics"
    );

    create_topic(&mut c, "m-orders", 2, &[]);
    // Five batches of 1..=5 records to partition 0, two batches to 1.
    let mut bytes_p0 = 0usize;
    let mut records_p0 = 0i64;
    for n in 1..=5usize {
        let batch = simple_batch(n, 40 + n, 1_700_000_000_000, n as u8);
        assert_eq!(produce(&mut c, "m-orders", 0, &batch).error_code, NONE);
        bytes_p0 += batch.len();
        records_p0 += n as i64;
    }
    let mut bytes_p1 = 0usize;
    for seed in 0..2u8 {
        let batch = simple_batch(3, 100, 1_700_000_000_000, seed);
        assert_eq!(produce(&mut c, "m-orders", 1, &batch).error_code, NONE);
        bytes_p1 += batch.len();
    }
    // Two failed produces: a partition that does not exist, a topic that
    // does not exist.
    let stray = simple_batch(2, 10, 1_700_000_000_000, 9);
    assert_eq!(
        produce(&mut c, "m-orders", 7, &stray).error_code,
        E::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce(&mut c, "m-nowhere", 0, &stray).error_code,
        E::UnknownTopicOrPartition.code()
    );

    // Read partition 0 from the start and from offset 12 (a batch boundary:
    // 1+2+3+4+5 records), then past the end.
    let (code, read_all) = fetch(&mut c, "m-orders", 0, 0);
    assert_eq!(code, NONE);
    assert_eq!(read_all, bytes_p0, "a fetch returns the stored batches");
    let (code, read_tail) = fetch(&mut c, "m-orders", 0, 10);
    assert_eq!(code, NONE);
    assert!(read_tail > 0 && read_tail < bytes_p0);
    let (code, _) = fetch(&mut c, "m-orders", 0, 1_000);
    assert_eq!(code, E::OffsetOutOfRange.code());

    commit_offsets(&mut c, "m-group", &[("m-orders", 0, 3), ("m-orders", 1, 1)]);

    let after = scrape(mport);
    let topic = |name: &str| format!("{name}{{topic=\"m-orders\"}}");
    assert_eq!(
        get(&after, &topic("kastle_topic_bytes_in_total")),
        (bytes_p0 + bytes_p1) as f64
    );
    assert_eq!(
        get(&after, &topic("kastle_topic_messages_in_total")),
        (records_p0 + 6) as f64
    );
    assert_eq!(
        get(&after, &topic("kastle_topic_bytes_out_total")),
        (read_all + read_tail) as f64
    );
    assert_eq!(get(&after, &topic("kastle_topic_partitions")), 2.0);
    assert_eq!(get(&after, "kastle_partitions"), 102.0);
    assert!(
        get(
            &after,
            "kastle_topic_bytes_in_total{topic=\"__consumer_offsets\"}"
        ) > 0.0,
        "the commit was written to __consumer_offsets"
    );

    let part = |name: &str, p: i32| format!("{name}{{topic=\"m-orders\",partition=\"{p}\"}}");
    assert_eq!(
        get(&after, &part("kastle_partition_log_size_bytes", 0)),
        bytes_p0 as f64
    );
    assert_eq!(
        get(&after, &part("kastle_partition_log_size_bytes", 1)),
        bytes_p1 as f64
    );
    assert_eq!(
        get(&after, &part("kastle_partition_high_watermark", 0)),
        15.0
    );
    assert_eq!(
        get(&after, &part("kastle_partition_high_watermark", 1)),
        6.0
    );
    assert_eq!(
        get(&after, &part("kastle_partition_log_start_offset", 0)),
        0.0
    );

    let group = |name: &str, p: i32| {
        format!("{name}{{group=\"m-group\",topic=\"m-orders\",partition=\"{p}\"}}")
    };
    assert_eq!(
        get(&after, &group("kastle_consumer_group_committed_offset", 0)),
        3.0
    );
    assert_eq!(get(&after, &group("kastle_consumer_group_lag", 0)), 12.0);
    assert_eq!(get(&after, &group("kastle_consumer_group_lag", 1)), 5.0);
    assert_eq!(get(&after, "kastle_consumer_group_lag_series_dropped"), 0.0);

    let requests = |m: &BTreeMap<String, f64>, api: &str| {
        get_or_zero(
            m,
            &format!("kastle_request_duration_seconds_count{{api=\"{api}\"}}"),
        )
    };
    assert_eq!(
        requests(&after, "Produce") - requests(&before, "Produce"),
        9.0
    );
    assert_eq!(requests(&after, "Fetch") - requests(&before, "Fetch"), 3.0);
    assert_eq!(
        requests(&after, "OffsetCommit") - requests(&before, "OffsetCommit"),
        1.0
    );
    assert_eq!(
        requests(&after, "CreateTopics") - requests(&before, "CreateTopics"),
        1.0
    );
    let inf = get(
        &after,
        "kastle_request_duration_seconds_bucket{le=\"+Inf\",api=\"Produce\"}",
    );
    assert_eq!(
        inf,
        requests(&after, "Produce"),
        "+Inf bucket equals the count"
    );
    assert!(
        get(
            &after,
            "kastle_request_duration_seconds_sum{api=\"Produce\"}"
        ) > 0.0
    );

    assert_eq!(
        get(
            &after,
            "kastle_request_errors_total{api=\"Produce\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}"
        ),
        2.0
    );
    assert_eq!(
        get(
            &after,
            "kastle_request_errors_total{api=\"Fetch\",error=\"OFFSET_OUT_OF_RANGE\"}"
        ),
        1.0
    );

    // A second connection shows in both connection figures.
    let mut c2 = b.client();
    assert_eq!(fetch(&mut c2, "m-orders", 1, 0).0, NONE);
    let with_two = scrape(mport);
    assert!(get(&with_two, "kastle_connections_open") >= 2.0);
    assert!(get(&with_two, "kastle_connections_accepted_total") >= accepted_before + 1.0);
    drop(c2);

    // A deleted topic vanishes from the scrape, lag included.
    delete_topic(&mut c, "m-orders");
    let gone = scrape(mport);
    assert!(
        !gone.keys().any(|k| k.contains("\"m-orders\"")),
        "deleted topic still scraped: {:?}",
        gone.keys()
            .filter(|k| k.contains("m-orders"))
            .collect::<Vec<_>>()
    );
    assert_eq!(get(&gone, "kastle_partitions"), 100.0);
}

#[test]
fn endpoint_is_off_by_default() {
    let mut b = Broker::start(&[]);
    let ports = b.listening_ports();
    assert_eq!(
        ports,
        HashSet::from([b.port]),
        "without the key the broker listens only for Kafka clients"
    );
    assert!(!b.stderr().contains("Prometheus"));
    b.assert_alive();

    let (b, mport) = start_with_metrics();
    assert_eq!(b.listening_ports(), HashSet::from([b.port, mport]));
}

#[test]
fn bad_http_gets_an_error_and_the_broker_carries_on() {
    let (mut b, mport) = start_with_metrics();

    // A head past 8 KiB without its blank line: 431, then closed.
    let mut s = connect_http(mport);
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
    big.resize(20 * 1024, b'a');
    let _ = s.write_all(&big);
    let r = read_response(&mut s, false);
    assert_eq!(r.status, 431);
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0, "closed after 431");

    // Binary garbage (a TLS ClientHello start): 400.
    let r = http(
        mport,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    );
    assert_eq!(r.status, 400);
    // Other methods, other paths, other versions.
    let r = http(
        mport,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_eq!(r.status, 405);
    let r = http(mport, b"GET /secrets HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 404);
    let r = http(mport, b"GET /metrics HTTP/3.0\r\n\r\n");
    assert_eq!(r.status, 505);
    // HEAD: headers only.
    let r = http(
        mport,
        b"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 100
    );

    // A client that connects and sends nothing, and one that sends half a
    // head and vanishes, do not stop scrapes.
    let _silent = connect_http(mport);
    {
        let mut half = connect_http(mport);
        half.write_all(b"GET /metr").unwrap();
    }

    // Keep-alive: two scrapes on one connection.
    let mut s = connect_http(mport);
    for _ in 0..2 {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let r = read_response(&mut s, false);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        // A fresh broker: no topic yet, not even an internal one.
        assert!(r.body.contains("kastle_partitions 0"));
    }

    // The Kafka side is untouched.
    b.assert_alive();
    let mut c = b.client();
    create_topic(&mut c, "m-after", 1, &[]);
    assert_eq!(
        produce(
            &mut c,
            "m-after",
            0,
            &simple_batch(1, 5, 1_700_000_000_000, 1)
        )
        .error_code,
        NONE
    );
    let m = scrape(mport);
    assert_eq!(
        get(&m, "kastle_topic_messages_in_total{topic=\"m-after\"}"),
        1.0
    );
}

#[test]
fn a_bad_listener_value_stops_start_up() {
    let mut b = Broker::spawn_only(&["metrics.prometheus.listener=no-port-here"]);
    let status = b.wait_exit(Duration::from_secs(20)).expect("broker exits");
    assert!(!status.success());
    let err = b.stderr();
    assert!(err.contains("metrics.prometheus.listener"), "{err}");
}

#[test]
fn connections_past_the_bound_wait_for_a_free_slot() {
    // Mirrors MAX_CONNECTIONS and READ_TIMEOUT in src/metrics/http.rs.
    const MAX_CONNECTIONS: usize = 32;
    const READ_TIMEOUT: Duration = Duration::from_secs(10);
    let (mut b, mport) = start_with_metrics();
    // Each silent connection holds a slot until its head times out.
    let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| connect_http(mport)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let r = http(mport, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    let waited = started.elapsed();
    assert_eq!(r.status, 200);
    assert!(
        waited >= READ_TIMEOUT - Duration::from_secs(2),
        "the 33rd connection was served after {waited:?}, before any slot freed"
    );
    drop(silent);
    // Kafka clients were never affected.
    b.assert_alive();
    let mut c = b.client();
    create_topic(&mut c, "m-bound", 1, &[]);
    // And with the slots free again a scrape is immediate.
    let started = std::time::Instant::now();
    let m = scrape(mport);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(get(&m, "kastle_topic_partitions{topic=\"m-bound\"}"), 1.0);
}
