//! The broker process guard: starts the real `kastle` binary on a free port
//! with a temporary data directory, stops it (SIGTERM) or kills it (SIGKILL),
//! restarts it on the same directory and port, and shows its stderr when a
//! test fails.

use std::fs::OpenOptions;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::client::Client;

pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    /// Keeps the temporary directory alive; removed on drop.
    _tmp: tempfile::TempDir,
    /// `log.dirs` of the broker.
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

impl Broker {
    /// Start a broker on a free port with a fresh data directory, plus
    /// `extra` overrides (`key=value`).
    pub fn start(extra: &[&str]) -> Broker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let stderr_path = tmp.path().join("stderr.log");
        let mut b = Broker {
            child: None,
            port: free_port(),
            data_dir,
            stderr_path,
            _tmp: tmp,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        b.spawn();
        b.wait_ready();
        b
    }

    /// Spawn without waiting for the port; for start-up failure tests.
    pub fn spawn_only(extra: &[&str]) -> Broker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let stderr_path = tmp.path().join("stderr.log");
        let mut b = Broker {
            child: None,
            port: free_port(),
            data_dir,
            stderr_path,
            _tmp: tmp,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kastle"));
        let l = format!("PLAINTEXT://127.0.0.1:{}", self.port);
        cmd.arg("--override")
            .arg(format!("listeners={l}"))
            .arg("--override")
            .arg(format!("advertised.listeners={l}"))
            .arg("--override")
            .arg(format!("log.dirs={}", self.data_dir.display()));
        for e in &self.extra {
            cmd.arg("--override").arg(e);
        }
        // Keep the environment from leaking KAFKA_* settings into the broker.
        for (k, _) in std::env::vars() {
            if k.starts_with("KAFKA_") {
                cmd.env_remove(k);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        self.child = Some(cmd.spawn().expect("spawn kastle"));
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
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
                    "kastle did not accept on port {} within 10 s\n--- stderr ---\n{}",
                    self.port,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// Start again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart while running");
        self.spawn();
        self.wait_ready();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// Peak resident set size of the broker in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
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
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- kastle stderr (port {}) ---\n{}\n--- end stderr ---",
                self.port,
                self.stderr()
            );
        }
    }
}
