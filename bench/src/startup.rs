//! `kastle-perf startup`: time from spawning a kastle binary to its first
//! successful ApiVersions answer, with `--partitions` partitions on disk.
//!
//! Starts the broker once on a fresh data directory, creates the partitions
//! through the Admin API (topics of at most `--topic-partitions` each), stops
//! it with SIGTERM (a clean shutdown, so restarts measure a normal start, not
//! crash recovery), then restarts it `--restarts` times and times each start.
//! The probe is a raw ApiVersions v0 request, so the clock stops at the first
//! moment a client could be served. Also reports the resident set size right
//! after the start (idle RSS).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::args::Args;
use crate::common::{create_topics, r3};

const KNOWN: &[&str] = &[
    "bin",
    "partitions",
    "restarts",
    "topic-partitions",
    "override",
    "dir",
    "log",
    "json",
];
const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(argv: &[String]) -> Result<i32, String> {
    let a = Args::parse("startup", argv, KNOWN)?;
    let bin = PathBuf::from(a.str("bin")?);
    let partitions: u32 = a.get("partitions")?;
    let restarts: u32 = a.get_or("restarts", 3)?;
    let per_topic: u32 = a.get_or("topic-partitions", 1000)?;
    let json = a.has("json");
    let overrides = a.props("override")?;
    if per_topic == 0 || restarts == 0 || restarts > 100 {
        return Err("startup: --topic-partitions must be > 0 and --restarts 1..=100".into());
    }
    let base = match a.opt_str("dir")? {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir(),
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let dir = base.join(format!(
        "kastle-perf-startup-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // the broker's output of every start, appended; kept only with --log
    let log = match a.opt_str("log")? {
        Some(l) => PathBuf::from(l),
        None => dir.join("broker.log"),
    };
    let result = measure(
        &bin, &dir, &log, partitions, per_topic, restarts, &overrides,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let m = result?;

    let mut sorted = m.restarts_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "{partitions} partitions: first start {:.1} ms, partitions created in {:.1} ms, restarts {} ms (median {median:.1} ms), stops {} ms, idle RSS {} KiB",
        m.first_ms,
        m.create_ms,
        m.restarts_ms
            .iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        m.stops_ms
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        m.idle_rss_kib
    );
    if json {
        let j = serde_json::json!({
            "tool": "startup",
            "partitions": partitions,
            "first_start_ms": r3(m.first_ms),
            "create_ms": r3(m.create_ms),
            "restarts_ms": m.restarts_ms.iter().map(|x| r3(*x)).collect::<Vec<_>>(),
            "median_ms": r3(median),
            "min_ms": r3(sorted[0]),
            "stops_ms": m.stops_ms.iter().map(|x| r3(*x)).collect::<Vec<_>>(),
            "idle_rss_kib": m.idle_rss_kib,
        });
        println!("{j}");
    }
    Ok(0)
}

struct Measured {
    first_ms: f64,
    create_ms: f64,
    restarts_ms: Vec<f64>,
    /// SIGTERM -> exit, for every stop (the first one right after creation)
    stops_ms: Vec<f64>,
    idle_rss_kib: u64,
}

fn measure(
    bin: &Path,
    dir: &Path,
    log: &Path,
    partitions: u32,
    per_topic: u32,
    restarts: u32,
    overrides: &[(String, String)],
) -> Result<Measured, String> {
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let data = dir.join("data");
    let log = log.to_path_buf();

    let (mut child, first_ms) = start(bin, &data, &log, addr, overrides)?;
    let created = Instant::now();
    let mut topics = Vec::new();
    let mut left = partitions;
    while left > 0 {
        let p = left.min(per_topic);
        topics.push((format!("startup-{}", topics.len()), p as i32));
        left -= p;
    }
    // one CreateTopics per topic: a single request for 10,000 partitions can
    // outlast any client timeout, and this shows how far it got
    let made = topics.iter().try_for_each(|t| {
        create_topics(
            &addr.to_string(),
            std::slice::from_ref(t),
            1,
            Duration::from_secs(300),
        )
        .map_err(|e| format!("{e} (after {:.1} s)", created.elapsed().as_secs_f64()))
    });
    let create_ms = created.elapsed().as_secs_f64() * 1000.0;
    let mut stops_ms = vec![stop(&mut child, &log)?];
    made?;

    let mut restarts_ms = Vec::new();
    let mut idle_rss_kib = 0;
    for _ in 0..restarts {
        let (mut child, ms) = start(bin, &data, &log, addr, overrides)?;
        restarts_ms.push(ms);
        // RSS right after serving starts; the last restart's value is kept
        idle_rss_kib = rss_kib(child.id()).unwrap_or(0);
        stops_ms.push(stop(&mut child, &log)?);
    }
    Ok(Measured {
        first_ms,
        create_ms,
        restarts_ms,
        stops_ms,
        idle_rss_kib,
    })
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// Spawns the broker and returns it with the milliseconds until its first
/// ApiVersions answer.
fn start(
    bin: &Path,
    data: &Path,
    log: &Path,
    addr: SocketAddr,
    overrides: &[(String, String)],
) -> Result<(Child, f64), String> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cloning {}: {e}", log.display()))?;
    let mut cmd = Command::new(bin);
    for kv in [
        format!("listeners=PLAINTEXT://{addr}"),
        format!("advertised.listeners=PLAINTEXT://{addr}"),
        format!("log.dirs={}", data.display()),
    ] {
        cmd.arg("--override").arg(kv);
    }
    for (k, v) in overrides {
        cmd.arg("--override").arg(format!("{k}={v}"));
    }
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let t = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
    loop {
        if api_versions_ok(addr) {
            return Ok((child, t.elapsed().as_secs_f64() * 1000.0));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "broker exited with {status} before serving; log:\n{}",
                tail(log)
            ));
        }
        if t.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "broker not serving after {START_TIMEOUT:?}; log:\n{}",
                tail(log)
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Stops the broker with SIGTERM; returns the milliseconds until it exited.
fn stop(child: &mut Child, log: &Path) -> Result<f64, String> {
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| format!("pid: {e}"))?;
    // SIGTERM: the broker's graceful shutdown (flush, clean-shutdown marker)
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let t = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if !status.success() {
                    // a broker that was already gone, or died on SIGTERM,
                    // did not shut down cleanly: the next start recovers
                    eprintln!("startup: broker exited with {status} after SIGTERM ({ms:.0} ms)");
                }
                return Ok(ms);
            }
            Ok(None) if t.elapsed() < STOP_TIMEOUT => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "broker did not stop within {STOP_TIMEOUT:?} of SIGTERM; log:\n{}",
                    tail(log)
                ));
            }
        }
    }
}

/// One ApiVersions v0 round trip; true when it answers with error code 0.
fn api_versions_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let client_id = b"kastle-perf";
    let mut req = Vec::with_capacity(32);
    let body_len = 2 + 2 + 4 + 2 + client_id.len();
    req.extend_from_slice(&(body_len as i32).to_be_bytes());
    req.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    req.extend_from_slice(&0i16.to_be_bytes()); // v0
    req.extend_from_slice(&0x6b70i32.to_be_bytes()); // correlation id
    req.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    req.extend_from_slice(client_id);
    if s.write_all(&req).is_err() {
        return false;
    }
    // size (4) + correlation id (4) + error code (2): all that is needed
    let mut head = [0u8; 10];
    if s.read_exact(&mut head).is_err() {
        return false;
    }
    let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let corr = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let code = i16::from_be_bytes([head[8], head[9]]);
    size >= 6 && corr == 0x6b70 && code == 0
}

/// VmRSS of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The last 2 KiB of the broker's log, for error messages.
fn tail(log: &Path) -> String {
    let s = std::fs::read(log).unwrap_or_default();
    let from = s.len().saturating_sub(2048);
    String::from_utf8_lossy(&s[from..]).into_owned()
}
