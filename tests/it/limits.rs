//! Limits: open file descriptors (every partition holds one descriptor per
//! segment; indexes are mapped without one, the transaction index opens on
//! first use; the broker raises its soft open-file limit to the hard limit
//! at start, as the JVM does for Kafka), Kafka's connection limits
//! (`max.connections`, `max.connections.per.ip`), and the responses one
//! connection may owe.

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::admin::api_versions_ok;
use crate::support::fetch::{fetch_request, latest, FetchArgs};
use crate::support::produce::produce_request;
use crate::support::topics::create_topic;
use crate::support::*;

#[test]
fn many_partitions_need_one_descriptor_each() {
    let mut b = Broker::start(&[]);
    let pid = b.pid();
    // Squeeze the running broker: 600 descriptors in all. The 100 internal
    // partitions plus 400 new ones fit only at about one descriptor each
    // (four each would need over 2,000).
    let st = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=600:600"])
        .status()
        .expect("run prlimit (util-linux)");
    assert!(st.success(), "prlimit failed");
    let mut c = b.client();
    create_topic(&mut c, "wide", 400, &[]);
    let fds = b.fd_count();
    assert!(fds < 600, "{fds} descriptors open");
    // Still serving, including new connections.
    let mut c2 = b.client();
    create_topic(&mut c2, "one-more", 1, &[]);
    b.assert_alive();
}

#[test]
fn soft_open_file_limit_is_raised_to_the_hard_limit() {
    // prlimit execs the broker, so the child's pid is the broker's.
    let b = Broker::start_wrapped(&["prlimit", "--nofile=256:8192", "--"], &[]);
    assert_eq!(b.open_files_limits(), (8192, 8192));
}

#[test]
fn recovery_after_kill_does_not_fill_preallocated_indexes() {
    // After kill -9 every active segment's two indexes are still at their
    // preallocated size (10 MiB each by default) and must be rebuilt. The
    // 100 internal partitions plus 50 here would dirty 3 GiB if the rebuild
    // zeroed the files through their mappings.
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    create_topic(&mut c, "crashy", 50, &[]);
    drop(c);
    b.kill();
    b.restart();
    let mut c = b.client();
    create_topic(&mut c, "after", 1, &[]);
    let peak = b.peak_rss_kib().expect("VmHWM");
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB during recovery");
    // The rebuilt indexes keep their size but hold no data blocks.
    let idx = b
        .data_dir
        .join("crashy-0")
        .join("00000000000000000000.index");
    let meta = std::fs::metadata(&idx).expect("index file");
    use std::os::unix::fs::MetadataExt;
    assert!(meta.len() >= 1 << 20, "index preallocated: {}", meta.len());
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "index is sparse: {} blocks",
        meta.blocks()
    );
}

/// Whether an ApiVersions request on `c` is answered within `within`.
fn answered_within(c: &mut Client, within: Duration) -> bool {
    c.stream.set_read_timeout(Some(within)).unwrap();
    let corr = c.next_corr();
    c.send(18, 0, corr, &[]);
    let mut len = [0u8; 4];
    let answered = c.stream.read_exact(&mut len).is_ok();
    c.stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    if answered {
        let mut rest = vec![0u8; i32::from_be_bytes(len) as usize];
        c.stream.read_exact(&mut rest).unwrap();
    }
    answered
}

#[test]
fn max_connections_makes_new_clients_wait_for_a_slot() {
    let b = Broker::start(&["max.connections=2"]);
    let mut first = b.client();
    let mut second = b.client();
    api_versions_ok(&mut first);
    api_versions_ok(&mut second);
    // The third connection is accepted by the kernel but not served.
    let mut third = b.client();
    assert!(
        !answered_within(&mut third, Duration::from_millis(1500)),
        "a connection past max.connections was served"
    );
    // Existing clients are unaffected.
    api_versions_ok(&mut second);
    // A slot frees up: the waiting client is served.
    drop(first);
    assert!(answered_within(&mut third, Duration::from_secs(10)));
}

/// A connection the broker serves: the start-up check's own connection
/// counts against the per-IP limit until the broker has seen it close, so
/// the first ones may still be refused.
fn served_client(b: &Broker) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = b.client();
        if answered_within(&mut c, Duration::from_secs(2)) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no connection served within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn max_connections_per_ip_closes_the_extra_connection() {
    let b = Broker::start(&["max.connections.per.ip=1"]);
    let mut first = served_client(&b);
    let mut second = b.client();
    second.expect_closed("a second connection from 127.0.0.1");
    api_versions_ok(&mut first);
    // The address's own override wins over the default.
    let b = Broker::start(&[
        "max.connections.per.ip=1",
        "max.connections.per.ip.overrides=127.0.0.1:2",
    ]);
    let _one = served_client(&b);
    let _two = served_client(&b);
    b.client()
        .expect_closed("a third connection from 127.0.0.1");
}

#[test]
fn at_most_max_in_flight_responses_are_owed_per_connection() {
    // MAX_IN_FLIGHT in src/network/connection.rs.
    const MAX_IN_FLIGHT: i64 = 100;
    let b = Broker::start(&[]);
    let mut admin = b.client();
    create_topic(&mut admin, "quiet", 1, &[]);
    create_topic(&mut admin, "busy", 1, &[]);
    let mut c = b.client();
    // A long poll on an empty partition owes its response for 5 s ...
    let poll = FetchArgs {
        max_wait_ms: 5_000,
        ..FetchArgs::default()
    };
    let corr = c.next_corr();
    c.send(
        1,
        poll.version,
        corr,
        &encode(&fetch_request("quiet", 0, &poll), poll.version),
    );
    // ... while 300 produce requests are pipelined behind it. The broker
    // runs each request's append when it reads it, so the log end tells how
    // many it read: at most MAX_IN_FLIGHT - 1 beside the poll.
    let one = simple_batch(1, 10, now_ms(), 1);
    let req = encode(&produce_request("busy", 0, 1, &one), 9);
    let mut pipelined = Vec::new();
    for _ in 0..300 {
        let corr = c.next_corr();
        pipelined.extend(frame(0, 9, corr, &req));
    }
    c.write_raw(&pipelined).unwrap();
    let started = Instant::now();
    wait_until(
        "the reader to fill its in-flight window",
        Duration::from_secs(4),
        || latest(&mut admin, "busy", 0) >= MAX_IN_FLIGHT - 1,
    );
    std::thread::sleep(Duration::from_millis(500));
    let read = latest(&mut admin, "busy", 0);
    assert!(
        started.elapsed() < Duration::from_millis(4_500),
        "the poll ended before the check; the machine is too slow for this test"
    );
    assert_eq!(
        read,
        MAX_IN_FLIGHT - 1,
        "requests read while the poll holds the head"
    );
    // Once the poll answers, everything is read and answered in order.
    for _ in 0..301 {
        c.recv_frame().expect("every response arrives");
    }
    assert_eq!(latest(&mut admin, "busy", 0), 300);
}
