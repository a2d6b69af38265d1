//! The client CLI (`kastle topic|produce|consume|group|cluster|config`)
//! run as a separate process against a real broker: topic lifecycle,
//! produce/consume round trips with keys and headers, group lag and
//! offset resets, JSON output, error names and exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::groups::{commit_offsets, consumer_subscription, join, sync, Joiner};
use crate::support::{find_coordinators, Broker};

/// Runs the CLI against `b`: (exit code, stdout, stderr).
fn cli(b: &Broker, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kastle"))
        .args(args)
        .env("KASTLE_BOOTSTRAP", format!("127.0.0.1:{}", b.port))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kastle cli");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for kastle cli");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the CLI, insisting on exit 0; its stdout.
#[track_caller]
fn ok(b: &Broker, args: &[&str], stdin: Option<&str>) -> String {
    let (code, out, err) = cli(b, args, stdin);
    assert_eq!(
        code, 0,
        "kastle {args:?}: exit {code}\nstdout: {out}\nstderr: {err}"
    );
    out
}

#[track_caller]
fn json(b: &Broker, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = ok(b, &args, None);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn topic_lifecycle_configs_and_errors() {
    let b = Broker::start(&[]);
    let out = ok(
        &b,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-c",
            "cleanup.policy=compact",
        ],
        None,
    );
    assert!(out.contains("orders") && out.contains("OK"), "{out}");

    // Exists already: exit 1 with Kafka's error name.
    let (code, _, err) = cli(&b, &["topic", "create", "orders"], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("TOPIC_ALREADY_EXISTS"), "{err}");

    let table = ok(&b, &["topic", "list"], None);
    assert!(
        table.lines().next().is_some_and(|h| h.starts_with("NAME")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["orders", "3", "1"]),
        "{table}"
    );
    let list = json(&b, &["topic", "list"]);
    assert!(
        list.as_array().is_some_and(|ts| ts
            .iter()
            .any(|t| t["topic"] == "orders" && t["partitions"] == 3)),
        "{list}"
    );

    let d = json(&b, &["topic", "describe", "orders"]);
    let parts = d["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 3, "{d}");
    assert_eq!(parts[0]["leader"], 1);
    assert_eq!(parts[0]["replicas"], serde_json::json!([1]));
    assert_eq!(parts[0]["isr"], serde_json::json!([1]));
    assert_eq!(d["configs"]["cleanup.policy"]["value"], "compact", "{d}");
    assert_eq!(
        d["configs"]["cleanup.policy"]["source"],
        "DYNAMIC_TOPIC_CONFIG"
    );
    assert!(
        d["configs"].get("retention.ms").is_none(),
        "defaults are not shown: {d}"
    );
    let text = ok(&b, &["topic", "describe", "orders"], None);
    assert!(
        text.contains("PARTITION") && text.contains("cleanup.policy"),
        "{text}"
    );

    ok(
        &b,
        &[
            "topic",
            "alter",
            "orders",
            "--partitions",
            "5",
            "-c",
            "retention.ms=123456",
        ],
        None,
    );
    let d = json(&b, &["topic", "describe", "orders"]);
    assert_eq!(d["partitions"].as_array().map(Vec::len), Some(5), "{d}");
    assert_eq!(d["configs"]["retention.ms"]["value"], "123456", "{d}");
    // Fewer partitions is Kafka's INVALID_PARTITIONS.
    let (code, _, err) = cli(&b, &["topic", "alter", "orders", "--partitions", "2"], None);
    assert_eq!(code, 1);
    assert!(err.contains("INVALID_PARTITIONS"), "{err}");

    // config get/set on the topic and the broker.
    ok(
        &b,
        &[
            "config",
            "set",
            "topic",
            "orders",
            "retention.ms=999",
            "--delete",
            "cleanup.policy",
        ],
        None,
    );
    let c = json(
        &b,
        &[
            "config",
            "get",
            "topic",
            "orders",
            "retention.ms",
            "cleanup.policy",
        ],
    );
    assert_eq!(c["retention.ms"]["value"], "999", "{c}");
    assert_eq!(c["cleanup.policy"]["value"], "delete", "{c}");
    assert_eq!(c["cleanup.policy"]["source"], "DEFAULT_CONFIG", "{c}");
    let c = json(&b, &["config", "get", "broker", "1", "num.partitions"]);
    assert_eq!(c["num.partitions"]["value"], "1", "{c}");
    let (code, _, err) = cli(
        &b,
        &["config", "set", "topic", "orders", "no.such.key=1"],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("INVALID_CONFIG"), "{err}");

    let info = json(&b, &["cluster", "info"]);
    assert!(
        info["cluster_id"].as_str().is_some_and(|c| !c.is_empty()),
        "{info}"
    );
    assert_eq!(info["brokers"][0]["node_id"], 1);
    assert_eq!(info["brokers"][0]["port"], b.port);

    ok(&b, &["topic", "delete", "orders"], None);
    let (code, _, err) = cli(&b, &["topic", "describe", "orders"], None);
    assert_eq!(code, 1);
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
    let (code, _, err) = cli(&b, &["topic", "delete", "orders"], None);
    assert_eq!(code, 1);
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");

    // Usage errors exit 2; an unreachable broker exits 1.
    assert_eq!(cli(&b, &["topic", "frobnicate"], None).0, 2);
    assert_eq!(cli(&b, &["topic", "create"], None).0, 2);
    assert_eq!(cli(&b, &["consume", "x", "-o", "soon"], None).0, 2);
    let (code, _, err) = cli(&b, &["topic", "list", "-b", "127.0.0.1:1"], None);
    assert_eq!(code, 1);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn produce_consume_round_trip() {
    let b = Broker::start(&[]);
    ok(&b, &["topic", "create", "events", "-p", "3"], None);
    let input: String = (0..12)
        .map(|i| format!("key-{}:value {i}\n", i % 4))
        .collect();
    let p = json_stdin(
        &b,
        &[
            "produce",
            "events",
            "--key-separator",
            ":",
            "-H",
            "source=cli",
            "-H",
            "n=1",
        ],
        &input,
    );
    assert_eq!(p["records"], 12, "{p}");

    let out = ok(&b, &["consume", "events", "--format", "json"], None);
    let recs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(recs.len(), 12, "{out}");
    for r in &recs {
        let key = r["key"].as_str().expect("key");
        // Kafka's default partitioner: murmur2 of the key.
        let want = kastle::cli::produce::partition_for_key(key.as_bytes(), 3);
        assert_eq!(r["partition"], want, "{r}");
        assert_eq!(
            r["headers"],
            serde_json::json!([{"key": "source", "value": "cli"}, {"key": "n", "value": "1"}])
        );
        assert!(r["timestamp"].as_i64().is_some_and(|t| t > 0));
    }
    // Per partition, in offset order, with every value once.
    let mut values: Vec<String> = recs
        .iter()
        .map(|r| r["value"].as_str().unwrap_or_default().to_string())
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..12).map(|i| format!("value {i}")).collect();
    want.sort();
    assert_eq!(values, want);

    // A fixed partition and key; then -o -1 reads only the last record.
    ok(
        &b,
        &["produce", "events", "-p", "1", "-k", "fixed"],
        Some("last one\n"),
    );
    let out = ok(
        &b,
        &[
            "consume", "events", "-p", "1", "-o", "-1", "--format", "%p %k %v",
        ],
        None,
    );
    assert_eq!(out, "1 fixed last one\n");
    let out = ok(
        &b,
        &["consume", "events", "-n", "2", "--format", "value"],
        None,
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    // From a timestamp after everything: nothing; from 0: everything.
    let out = ok(
        &b,
        &["consume", "events", "--from-timestamp", "99999999999999"],
        None,
    );
    assert_eq!(out, "");
    let out = ok(
        &b,
        &[
            "consume",
            "events",
            "--from-timestamp",
            "0",
            "--format",
            "value",
        ],
        None,
    );
    assert_eq!(out.lines().count(), 13, "{out}");
    // The default format names every field.
    let out = ok(&b, &["consume", "events", "-p", "1", "-o", "end"], None);
    assert_eq!(out, "");
    let out = ok(&b, &["consume", "events", "-p", "1", "-o", "-1"], None);
    assert!(
        out.contains("partition=1") && out.contains("key=fixed") && out.contains("value=last one"),
        "{out}"
    );

    // Producing to a partition that does not exist is Kafka's error.
    let (code, _, err) = cli(&b, &["produce", "events", "-p", "7"], Some("x\n"));
    assert_eq!(code, 1);
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");
}

#[track_caller]
fn json_stdin(b: &Broker, args: &[&str], stdin: &str) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = ok(b, &args, Some(stdin));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// The lag of `group` on partition 0 of `topic` and its committed offset.
fn lag(b: &Broker, group: &str) -> (Value, Value) {
    let d = json(b, &["group", "describe", group]);
    let p = &d["partitions"][0];
    (p["current_offset"].clone(), p["lag"].clone())
}

#[test]
fn group_lag_reset_and_delete() {
    let b = Broker::start(&[]);
    find_coordinators(&b);
    ok(&b, &["topic", "create", "jobs", "-p", "1"], None);
    let input: String = (0..10).map(|i| format!("job {i}\n")).collect();
    ok(&b, &["produce", "jobs"], Some(&input));
    let mut c = b.client();
    commit_offsets(&mut c, "workers", &[("jobs", 0, 4)]);

    let d = json(&b, &["group", "describe", "workers"]);
    assert_eq!(d["state"], "Empty", "{d}");
    assert_eq!(d["partitions"][0]["current_offset"], 4, "{d}");
    assert_eq!(d["partitions"][0]["log_end_offset"], 10, "{d}");
    assert_eq!(d["partitions"][0]["lag"], 6, "{d}");
    assert_eq!(d["total_lag"], 6);
    let table = ok(&b, &["group", "describe", "workers"], None);
    assert!(
        table.contains("LOG-END-OFFSET")
            && table
                .lines()
                .any(|l| l.split_whitespace().take(5).collect::<Vec<_>>()
                    == ["jobs", "0", "4", "10", "6"]),
        "{table}"
    );
    let groups = json(&b, &["group", "list"]);
    assert!(
        groups
            .as_array()
            .is_some_and(|gs| gs.iter().any(|g| g["group"] == "workers")),
        "{groups}"
    );

    // Without --execute nothing changes.
    let plan = json(
        &b,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-earliest",
        ],
    );
    assert_eq!(plan["executed"], false);
    assert_eq!(plan["offsets"][0]["new_offset"], 0);
    assert_eq!(lag(&b, "workers"), (4.into(), 6.into()));
    ok(
        &b,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-earliest",
            "--execute",
        ],
        None,
    );
    assert_eq!(lag(&b, "workers"), (0.into(), 10.into()));
    ok(
        &b,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs:0",
            "--to-offset",
            "7",
            "--execute",
        ],
        None,
    );
    assert_eq!(lag(&b, "workers"), (7.into(), 3.into()));
    // Beyond the log end: moved to the end, as Kafka's tool does.
    ok(
        &b,
        &[
            "group",
            "reset-offsets",
            "workers",
            "--topic",
            "jobs",
            "--to-offset",
            "500",
            "--execute",
        ],
        None,
    );
    assert_eq!(lag(&b, "workers"), (10.into(), 0.into()));
    assert_eq!(
        cli(
            &b,
            &["group", "reset-offsets", "workers", "--topic", "jobs"],
            None
        )
        .0,
        2
    );

    // An active member: describe shows it and its assignment; reset refuses.
    let meta = consumer_subscription(&["jobs"]);
    let mut j = Joiner::new("live", &meta);
    let r = join(&mut c, &mut j);
    assert_eq!(r.error_code, 0);
    // ConsumerProtocolAssignment v0: jobs-0.
    let mut assignment = vec![0u8, 0, 0, 0, 0, 1, 0, 4];
    assignment.extend_from_slice(b"jobs");
    assignment.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    let member = j.member.clone();
    let s = sync(
        &mut c,
        "live",
        r.generation_id,
        &member,
        None,
        &[(member.as_str(), &assignment)],
    );
    assert_eq!(s.error_code, 0);
    let d = json(&b, &["group", "describe", "live"]);
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["members"][0]["member_id"], member.as_str(), "{d}");
    assert_eq!(d["partitions"][0]["member_id"], member.as_str(), "{d}");
    assert_eq!(d["partitions"][0]["lag"], Value::Null, "no commit yet: {d}");
    let (code, _, err) = cli(
        &b,
        &[
            "group",
            "reset-offsets",
            "live",
            "--topic",
            "jobs",
            "--to-latest",
            "--execute",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("inactive") && err.contains("Stable"), "{err}");
    let (code, _, err) = cli(&b, &["group", "delete", "live"], None);
    assert_eq!(code, 1);
    assert!(err.contains("NON_EMPTY_GROUP"), "{err}");

    ok(&b, &["group", "delete", "workers"], None);
    let groups = json(&b, &["group", "list"]);
    assert!(
        groups
            .as_array()
            .is_some_and(|gs| !gs.iter().any(|g| g["group"] == "workers")),
        "{groups}"
    );
}

#[test]
fn command_config_authenticates_with_sasl() {
    let (b, sasl_port) = crate::sasl::sasl_broker(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |password: &str| {
        let path = dir.path().join(format!("client-{password}.properties"));
        let text = format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"alice\" password=\"{password}\";\n"
        );
        std::fs::write(&path, text).expect("write client properties");
        path.to_string_lossy().into_owned()
    };
    let bootstrap = format!("127.0.0.1:{sasl_port}");
    let good = config("alice-secret");
    let out = ok(
        &b,
        &[
            "cluster",
            "info",
            "--json",
            "-b",
            &bootstrap,
            "--command-config",
            &good,
        ],
        None,
    );
    let info: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(info["brokers"][0]["port"], sasl_port, "{info}");
    ok(
        &b,
        &[
            "topic",
            "create",
            "secured",
            "-b",
            &bootstrap,
            "--command-config",
            &good,
        ],
        None,
    );

    let bad = config("wrong");
    let (code, _, err) = cli(
        &b,
        &["topic", "list", "-b", &bootstrap, "--command-config", &bad],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("authentication"), "{err}");
    // A missing file is a usage error.
    assert_eq!(
        cli(
            &b,
            &[
                "topic",
                "list",
                "--command-config",
                "/nonexistent/x.properties"
            ],
            None
        )
        .0,
        2
    );
}
