//! `kastle consume -g GROUP`: the CLI as a KIP-848 group member. It reads
//! from the group's committed offsets, commits what it read, shares the
//! partitions with other members, and commits and leaves on Ctrl-C.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::support::{find_coordinators, wait_until, Broker};

fn kastle(b: &Broker, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kastle"));
    c.args(args)
        .env("KASTLE_BOOTSTRAP", format!("127.0.0.1:{}", b.port))
        .env_remove("KASTLE_PROFILE")
        .env("KASTLE_CONFIG_DIR", "/nonexistent/kastle-test-config");
    c
}

#[track_caller]
fn ok(b: &Broker, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = kastle(b, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kastle cli");
    let mut pipe = child.stdin.take().expect("stdin pipe");
    pipe.write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(pipe);
    let out = child.wait_with_output().expect("wait for kastle cli");
    assert!(
        out.status.success(),
        "kastle {args:?}: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn produce(b: &Broker, topic: &str, from: usize, to: usize) {
    let lines: String = (from..to).map(|i| format!("k{i}:v{i}\n")).collect();
    ok(b, &["produce", topic, "--key-separator", ":"], Some(&lines));
}

fn values(out: &str) -> Vec<String> {
    out.lines().map(str::to_string).collect()
}

fn expected(from: usize, to: usize) -> BTreeSet<String> {
    (from..to).map(|i| format!("v{i}")).collect()
}

/// (sum of the group's committed offsets, its total lag).
fn committed_and_lag(b: &Broker, group: &str) -> (i64, i64) {
    let out = ok(b, &["group", "describe", group, "--json"], None);
    let d: Value = serde_json::from_str(out.trim()).expect("describe json");
    let parts = d["partitions"].as_array().expect("partitions");
    let sum = parts
        .iter()
        .map(|p| p["current_offset"].as_i64().unwrap_or(0))
        .sum();
    (sum, d["total_lag"].as_i64().unwrap_or(-1))
}

/// A `consume -g -f` child whose stdout lines are collected as they come.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Follower {
    fn start(b: &Broker, topic: &str, group: &str) -> Follower {
        let mut child = kastle(
            b,
            &["consume", topic, "-g", group, "-f", "--format", "value"],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn follower");
        let stdout = child.stdout.take().expect("stdout pipe");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        Follower { child, lines }
    }

    fn seen(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Ctrl-C, then the exit status must be success.
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let st = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill -INT");
        assert!(st.success());
        let status = self.child.wait().expect("wait follower");
        assert!(status.success(), "follower after Ctrl-C: {status:?}");
    }
}

#[test]
fn consume_as_a_group_member_commits_shares_and_leaves() {
    let b = Broker::start(&[]);
    find_coordinators(&b);
    ok(&b, &["topic", "create", "gm", "-p", "3"], None);
    produce(&b, "gm", 0, 30);

    // A new group starts where -o says (default: the start) and commits
    // what it read.
    let out = ok(
        &b,
        &["consume", "gm", "-g", "once", "--format", "value"],
        None,
    );
    let got = values(&out);
    assert_eq!(got.len(), 30, "{got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected(0, 30));
    assert_eq!(committed_and_lag(&b, "once"), (30, 0));

    // The next run reads only what came since.
    produce(&b, "gm", 30, 36);
    let out = ok(
        &b,
        &["consume", "gm", "-g", "once", "--format", "value"],
        None,
    );
    assert_eq!(
        values(&out).into_iter().collect::<BTreeSet<_>>(),
        expected(30, 36)
    );
    assert_eq!(committed_and_lag(&b, "once"), (36, 0));
    // -p has no meaning for a member.
    let st = kastle(&b, &["consume", "gm", "-g", "once", "-p", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(st.code(), Some(2));

    // Two followers share the partitions: together they see every new
    // record once, and each reads some.
    let group = "pair";
    let a = Follower::start(&b, "gm", group);
    let c = Follower::start(&b, "gm", group);
    // Both own partitions before the new records come (the first to join
    // gives some up at its next heartbeat); -o start also reads the first 36.
    wait_until(
        "both members own partitions",
        Duration::from_secs(30),
        || {
            let out = ok(&b, &["group", "describe", group, "--json"], None);
            let d: Value = serde_json::from_str(out.trim()).expect("json");
            let owning = d["members"].as_array().map_or(0, |ms| {
                ms.iter()
                    .filter(|m| m["assignment"].as_array().is_some_and(|a| !a.is_empty()))
                    .count()
            });
            owning == 2
        },
    );
    wait_until(
        "the pair reads the backlog",
        Duration::from_secs(30),
        || a.seen().len() + c.seen().len() >= 36,
    );
    produce(&b, "gm", 36, 96);
    wait_until(
        "the pair reads every record",
        Duration::from_secs(30),
        || a.seen().len() + c.seen().len() >= 96,
    );
    let (sa, sc) = (a.seen(), c.seen());
    let all: BTreeSet<String> = sa.iter().chain(&sc).cloned().collect();
    assert_eq!(all, expected(0, 96));
    assert_eq!(sa.len() + sc.len(), 96, "a record was read twice");
    assert!(
        !sa.is_empty() && !sc.is_empty(),
        "one member read nothing: {} / {}",
        sa.len(),
        sc.len()
    );
    // Ctrl-C commits and leaves: no lag, no members.
    a.interrupt();
    c.interrupt();
    assert_eq!(committed_and_lag(&b, group), (96, 0));
    let out = ok(&b, &["group", "describe", group, "--json"], None);
    let d: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(d["members"], Value::Array(vec![]), "{d}");
}
