//! Operating-system limits: open file descriptors. Every partition holds
//! one descriptor per segment (indexes are mapped without one, the
//! transaction index opens on first use), and the broker raises its soft
//! open-file limit to the hard limit at start, as the JVM does for Kafka.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

fn open_files_limits(pid: i32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

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
    crate::support::topics::create_topic(&mut c, "wide", 400, &[]);
    let fds = fd_count(pid);
    assert!(fds < 600, "{fds} descriptors open");
    // Still serving, including new connections.
    let mut c2 = b.client();
    crate::support::topics::create_topic(&mut c2, "one-more", 1, &[]);
    b.assert_alive();
}

#[test]
fn soft_open_file_limit_is_raised_to_the_hard_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let l = format!("PLAINTEXT://127.0.0.1:{port}");
    let mut child = Command::new("prlimit")
        .arg("--nofile=256:8192")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_kastle"))
        .args(["--override", &format!("listeners={l}")])
        .args(["--override", &format!("advertised.listeners={l}")])
        .args([
            "--override",
            &format!("log.dirs={}", tmp.path().join("data").display()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn prlimit -- kastle");
    // prlimit execs the broker, so the child's pid is the broker's.
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not start");
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "broker exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (soft, hard) = open_files_limits(pid);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((soft, hard), (8192, 8192));
}

#[test]
fn recovery_after_kill_does_not_fill_preallocated_indexes() {
    // After kill -9 every active segment's two indexes are still at their
    // preallocated size (10 MiB each by default) and must be rebuilt. The
    // 100 internal partitions plus 50 here would dirty 3 GiB if the rebuild
    // zeroed the files through their mappings.
    let mut b = Broker::start(&[]);
    let mut c = b.client();
    crate::support::topics::create_topic(&mut c, "crashy", 50, &[]);
    drop(c);
    b.kill();
    b.restart();
    let mut c = b.client();
    crate::support::topics::create_topic(&mut c, "after", 1, &[]);
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
