//! Operating-system limits: open file descriptors. Every partition holds
//! one descriptor per segment (indexes are mapped without one, the
//! transaction index opens on first use), and the broker raises its soft
//! open-file limit to the hard limit at start, as the JVM does for Kafka.

use std::process::Command;

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
