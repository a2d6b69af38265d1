//! The broker process guard: starts the real `kastle` binary (on a free port
//! with a temporary data directory, or from a container-style environment,
//! optionally under a wrapper such as `prlimit`), stops it (SIGTERM) or kills
//! it (SIGKILL), restarts it the same way, shows its stderr when a test
//! fails, and reads what tests check of the process from /proc.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::client::Client;

/// How long a start may take before the port must accept.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How the process is started, again on every restart.
struct Launch {
    /// A command the broker runs under (`prlimit ... --`), or empty.
    wrapper: Vec<String>,
    args: Vec<String>,
    /// `None`: the test's environment minus `KAFKA_*` variables. `Some`:
    /// only these variables (plus PATH, RUST_LOG=info, NO_COLOR), as a
    /// container gets them.
    env: Option<Vec<(String, String)>>,
    cwd: Option<PathBuf>,
}

pub struct Broker {
    child: Option<Child>,
    /// The port the broker is ready on and clients connect to.
    pub port: u16,
    /// Keeps the temporary directory alive; removed on drop.
    _tmp: Option<tempfile::TempDir>,
    /// `log.dirs` of the broker (for a broker started from an
    /// environment: its working directory).
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
    launch: Launch,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

impl Broker {
    /// Start a broker on a free port with a fresh data directory, plus
    /// `extra` overrides (`key=value`).
    pub fn start(extra: &[&str]) -> Broker {
        Broker::start_wrapped(&[], extra)
    }

    /// [`Broker::start`] with the broker run under `wrapper` (a command
    /// that ends by executing its arguments, so its pid is the broker's).
    pub fn start_wrapped(wrapper: &[&str], extra: &[&str]) -> Broker {
        let mut b = Broker::with_overrides(wrapper, extra);
        b.spawn();
        b.wait_ready();
        b
    }

    /// Spawn without waiting for the port; for start-up failure tests.
    pub fn spawn_only(extra: &[&str]) -> Broker {
        Broker::spawn_only_wrapped(&[], extra)
    }

    /// [`Broker::spawn_only`] under `wrapper` (e.g. `env KAFKA_OPTS=...`).
    pub fn spawn_only_wrapped(wrapper: &[&str], extra: &[&str]) -> Broker {
        let mut b = Broker::with_overrides(wrapper, extra);
        b.spawn();
        b
    }

    /// [`Broker::start`] on `port` (chosen by the test, so that `extra`
    /// can name it, e.g. in listeners of other security protocols).
    pub fn start_on(port: u16, extra: &[&str]) -> Broker {
        let mut b = Broker::with_overrides_on(&[], port, extra);
        b.spawn();
        b.wait_ready();
        b
    }

    /// [`Broker::spawn_only`] on `port`.
    pub fn spawn_only_on(port: u16, extra: &[&str]) -> Broker {
        let mut b = Broker::with_overrides_on(&[], port, extra);
        b.spawn();
        b
    }

    /// Start a broker configured by `env` alone (as a container would be)
    /// in `dir`, and wait for `port`, one of its listeners. Its stderr is a
    /// new file in `dir`.
    pub fn start_env(env: &[(String, String)], dir: &Path, port: u16) -> Broker {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let mut b = Broker {
            child: None,
            port,
            _tmp: None,
            data_dir: dir.to_path_buf(),
            stderr_path: dir.join(format!("stderr-{n}.log")),
            launch: Launch {
                wrapper: vec![],
                args: vec![],
                env: Some(env.to_vec()),
                cwd: Some(dir.to_path_buf()),
            },
        };
        b.spawn();
        b.wait_ready();
        b
    }

    /// A node started with exactly `overrides` plus `log.dirs` (a fresh
    /// data directory, formatted with `cluster_id` as `kafka-storage
    /// format` would), waiting for `port` when `wait`. For cluster nodes,
    /// whose listeners the test names.
    pub fn start_node(
        port: u16,
        node_id: i32,
        cluster_id: &str,
        overrides: &[String],
        wait: bool,
    ) -> Broker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        std::fs::write(
            data_dir.join("meta.properties"),
            format!("version=1\nnode.id={node_id}\ncluster.id={cluster_id}\n"),
        )
        .expect("meta.properties");
        let mut args = vec![format!("log.dirs={}", data_dir.display())];
        args.extend(overrides.iter().cloned());
        let mut b = Broker {
            child: None,
            port,
            stderr_path: tmp.path().join("stderr.log"),
            data_dir,
            _tmp: Some(tmp),
            launch: Launch {
                wrapper: vec![],
                args: args
                    .into_iter()
                    .flat_map(|a| ["--override".to_string(), a])
                    .collect(),
                env: None,
                cwd: None,
            },
        };
        b.spawn();
        if wait {
            b.wait_ready();
        }
        b
    }

    /// A broker on a free port with a fresh data directory, not started.
    fn with_overrides(wrapper: &[&str], extra: &[&str]) -> Broker {
        Broker::with_overrides_on(wrapper, free_port(), extra)
    }

    fn with_overrides_on(wrapper: &[&str], port: u16, extra: &[&str]) -> Broker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let l = format!("PLAINTEXT://127.0.0.1:{port}");
        let mut args = vec![
            format!("listeners={l}"),
            format!("advertised.listeners={l}"),
            format!("log.dirs={}", data_dir.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Broker {
            child: None,
            port,
            stderr_path: tmp.path().join("stderr.log"),
            data_dir,
            _tmp: Some(tmp),
            launch: Launch {
                wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
                args: args
                    .into_iter()
                    .flat_map(|a| ["--override".to_string(), a])
                    .collect(),
                env: None,
                cwd: None,
            },
        }
    }

    fn spawn(&mut self) {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("stderr file");
        let kastle = env!("CARGO_BIN_EXE_kastle");
        let l = &self.launch;
        let mut cmd = match l.wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(kastle);
                cmd
            }
            None => Command::new(kastle),
        };
        cmd.args(&l.args);
        match &l.env {
            // Keep the environment from leaking KAFKA_* settings into the broker.
            None => {
                for (k, _) in std::env::vars() {
                    if k.starts_with("KAFKA_") {
                        cmd.env_remove(k);
                    }
                }
            }
            Some(vars) => {
                cmd.env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("RUST_LOG", "info")
                    .env("NO_COLOR", "1")
                    .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            }
        }
        if let Some(dir) = &l.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        self.child = Some(cmd.spawn().expect("spawn kastle"));
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(st) = self.try_wait() {
                panic!(
                    "kastle exited during start-up with {st}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "kastle did not accept on port {} within {START_TIMEOUT:?}\n--- stderr ---\n{}",
                    self.port,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the port of a node spawned without waiting.
    pub fn await_ready(&mut self) {
        self.wait_ready();
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("broker not running").id() as i32
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    /// Panics (with stderr) unless the process is still running.
    pub fn assert_alive(&mut self) {
        if let Some(st) = self.try_wait() {
            panic!("kastle died: {st}\n--- stderr ---\n{}", self.stderr());
        }
    }

    /// Wait for the child for at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM and wait (up to 15 s) for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.pid();
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        match self.wait_exit(Duration::from_secs(15)) {
            Some(st) => st,
            None => panic!(
                "kastle did not exit within 15 s of SIGTERM\n--- stderr ---\n{}",
                self.stderr()
            ),
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }

    /// Start again the same way: same port, data directory, arguments and
    /// environment.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart while running");
        self.spawn();
        self.wait_ready();
    }

    /// [`Broker::restart`] without waiting for the port (for tests that
    /// time the start themselves).
    pub fn respawn_only(&mut self) {
        assert!(self.child.is_none(), "restart while running");
        self.spawn();
    }

    /// [`Broker::restart`] with `extra` overrides (`key=value`) added after
    /// the original ones (so they win), for this start and later ones.
    pub fn restart_with(&mut self, extra: &[&str]) {
        for e in extra {
            self.launch.args.push("--override".to_string());
            self.launch.args.push(e.to_string());
        }
        self.restart();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// The directory of `topic`-`partition` in the data directory.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// The first segment's log file of `topic`-`partition`.
    pub fn log_file(&self, topic: &str, partition: i32) -> PathBuf {
        self.partition_dir(topic, partition)
            .join("00000000000000000000.log")
    }

    /// Peak resident set size of the broker in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// How many file descriptors the broker has open.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }

    /// The broker's (soft, hard) open-file limits.
    pub fn open_files_limits(&self) -> (u64, u64) {
        let limits =
            std::fs::read_to_string(format!("/proc/{}/limits", self.pid())).expect("limits");
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

    /// The TCP ports the broker listens on.
    pub fn listening_ports(&self) -> HashSet<u16> {
        let pid = self.pid();
        let mut inodes = HashSet::new();
        for e in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc fd dir") {
            if let Ok(target) = std::fs::read_link(e.unwrap().path()) {
                let t = target.to_string_lossy().to_string();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(inode.to_string());
                }
            }
        }
        let mut ports = HashSet::new();
        for table in ["tcp", "tcp6"] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                // local_address is column 1 (hex ip:port), st column 3 (0A = LISTEN), inode column 9.
                if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                    let port = cols[1].rsplit(':').next().unwrap();
                    ports.insert(u16::from_str_radix(port, 16).unwrap());
                }
            }
        }
        ports
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- kastle stderr (port {}) ---\n{}\n--- end stderr ---",
                self.port,
                self.stderr()
            );
        }
    }
}
