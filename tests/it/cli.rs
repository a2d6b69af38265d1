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

const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The (resource type, name, pattern, principal, operation, permission)
/// of each ACL in `kastle acl ... --json` output.
fn acl_rows(v: &Value) -> Vec<[String; 6]> {
    let s = |a: &Value, k: &str| {
        a[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {a}"))
            .to_string()
    };
    let mut rows: Vec<[String; 6]> = v
        .as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|a| {
            [
                s(a, "resource_type"),
                s(a, "name"),
                s(a, "pattern"),
                s(a, "principal"),
                s(a, "operation"),
                s(a, "permission"),
            ]
        })
        .collect();
    rows.sort();
    rows
}

fn row(t: &str, n: &str, p: &str, who: &str, op: &str, perm: &str) -> [String; 6] {
    [t, n, p, who, op, perm].map(str::to_string)
}

#[test]
fn acl_create_list_delete_round_trip() {
    let b = Broker::start(&[AUTHORIZER, "super.users=User:ANONYMOUS"]);
    // Two principals times two operations: four ACLs in one request.
    let created = json(
        &b,
        &[
            "acl",
            "create",
            "topic",
            "orders",
            "--principal",
            "User:alice",
            "--principal",
            "User:bob",
            "--operation",
            "read",
            "--operation",
            "Describe",
        ],
    );
    assert_eq!(created.as_array().map(Vec::len), Some(4), "{created}");
    assert!(created
        .as_array()
        .is_some_and(|a| a.iter().all(|x| x["status"] == "OK")));
    let table = ok(
        &b,
        &[
            "acl",
            "create",
            "topic",
            "ord",
            "--pattern",
            "prefixed",
            "--principal",
            "User:carol",
            "--operation",
            "write",
            "--permission",
            "deny",
            "--host",
            "10.0.0.1",
        ],
        None,
    );
    assert!(
        table.starts_with("RESOURCE_TYPE") && table.contains("PREFIXED"),
        "{table}"
    );
    ok(
        &b,
        &[
            "acl",
            "create",
            "cluster",
            "--principal",
            "User:alice",
            "--operation",
            "idempotent-write",
        ],
        None,
    );
    ok(
        &b,
        &[
            "acl",
            "create",
            "transactional-id",
            "tx",
            "--principal",
            "User:alice",
            "--operation",
            "write",
        ],
        None,
    );

    let all = acl_rows(&json(&b, &["acl", "list"]));
    assert_eq!(all.len(), 7, "{all:?}");
    assert!(all.contains(&row(
        "CLUSTER",
        "kafka-cluster",
        "LITERAL",
        "User:alice",
        "IDEMPOTENT_WRITE",
        "ALLOW"
    )));
    assert!(all.contains(&row(
        "TOPIC",
        "ord",
        "PREFIXED",
        "User:carol",
        "WRITE",
        "DENY"
    )));
    // A LITERAL filter by name (the default) and a MATCH filter, which also
    // finds the prefixed ACL applying to "orders".
    assert_eq!(
        acl_rows(&json(&b, &["acl", "list", "topic", "orders"])).len(),
        4
    );
    assert_eq!(
        acl_rows(&json(
            &b,
            &["acl", "list", "topic", "orders", "--pattern", "match"]
        ))
        .len(),
        5
    );
    assert_eq!(
        acl_rows(&json(
            &b,
            &[
                "acl",
                "list",
                "--principal",
                "User:bob",
                "--operation",
                "read"
            ]
        )),
        vec![row(
            "TOPIC", "orders", "LITERAL", "User:bob", "READ", "ALLOW"
        )]
    );

    // Refused before anything is sent: READ on the cluster (usage, exit 2).
    let (code, _, err) = cli(
        &b,
        &[
            "acl",
            "create",
            "cluster",
            "--principal",
            "User:x",
            "--operation",
            "read",
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("only supports operations"), "{err}");
    // Refused by the broker: a principal without a type (exit 1, Kafka's error).
    let (code, out, err) = cli(
        &b,
        &[
            "acl",
            "create",
            "topic",
            "t",
            "--principal",
            "alice",
            "--operation",
            "read",
        ],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("INVALID_REQUEST"), "{err}");

    // Delete prints what it deleted; the rest stays.
    let deleted = acl_rows(&json(
        &b,
        &[
            "acl",
            "delete",
            "topic",
            "orders",
            "--principal",
            "User:alice",
        ],
    ));
    assert_eq!(
        deleted,
        vec![
            row(
                "TOPIC",
                "orders",
                "LITERAL",
                "User:alice",
                "DESCRIBE",
                "ALLOW"
            ),
            row("TOPIC", "orders", "LITERAL", "User:alice", "READ", "ALLOW"),
        ]
    );
    let left = acl_rows(&json(&b, &["acl", "list"]));
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(!left
        .iter()
        .any(|r| r[1] == "orders" && r[3] == "User:alice"));
    // Nothing matches: nothing deleted, still a success.
    assert_eq!(
        acl_rows(&json(&b, &["acl", "delete", "group", "none"])),
        Vec::<[String; 6]>::new()
    );
    let table = ok(&b, &["acl", "delete", "any"], None);
    assert_eq!(table.lines().count(), 6, "{table}");
    assert_eq!(acl_rows(&json(&b, &["acl", "list"])).len(), 0);
    // Delete needs at least the resource type.
    assert_eq!(cli(&b, &["acl", "delete"], None).0, 2);
}

/// A client properties file logging in as `user` with SCRAM `mechanism`.
fn scram_config(dir: &std::path::Path, mechanism: &str, user: &str, password: &str) -> String {
    let path = dir.join(format!("{mechanism}-{user}-{password}.properties"));
    let text = format!(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
         username=\"{user}\" password=\"{password}\";\n"
    );
    std::fs::write(&path, text).expect("write client properties");
    path.to_string_lossy().into_owned()
}

#[test]
fn user_create_login_and_delete_and_acls_without_authorizer() {
    let (b, sasl_port) = crate::sasl::sasl_broker(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let sasl = format!("127.0.0.1:{sasl_port}");
    let login = |mechanism: &str, password: &str| {
        let config = scram_config(dir.path(), mechanism, "dana", password);
        cli(
            &b,
            &["cluster", "info", "-b", &sasl, "--command-config", &config],
            None,
        )
    };

    // The password from --password, and from stdin.
    let out = ok(
        &b,
        &[
            "user",
            "create",
            "dana",
            "-m",
            "SCRAM-SHA-512",
            "--iterations",
            "8192",
            "--password",
            "s3cret",
        ],
        None,
    );
    assert!(
        out.contains("SCRAM-SHA-512") && out.contains("UPSERTED"),
        "{out}"
    );
    ok(
        &b,
        &["user", "create", "dana", "-m", "scram-sha-256"],
        Some("s3cret\n"),
    );
    assert_eq!(
        json(&b, &["user", "describe", "dana"]),
        serde_json::json!([
            {"user": "dana", "mechanism": "SCRAM-SHA-256", "iterations": 4096},
            {"user": "dana", "mechanism": "SCRAM-SHA-512", "iterations": 8192},
        ])
    );
    let listed = ok(&b, &["user", "list"], None);
    assert!(
        listed.starts_with("USER") && listed.contains("dana"),
        "{listed}"
    );

    // Both credentials log in; a wrong password does not.
    for m in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let (code, out, err) = login(m, "s3cret");
        assert_eq!(code, 0, "{m}: {out}{err}");
    }
    let (code, _, err) = login("SCRAM-SHA-256", "wrong");
    assert_eq!(code, 1);
    assert!(err.contains("authentication"), "{err}");

    // The broker's refusal, with Kafka's name and message: exit 1.
    let (code, _, err) = cli(
        &b,
        &[
            "user",
            "create",
            "dana",
            "--iterations",
            "100",
            "--password",
            "x",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("UNACCEPTABLE_CREDENTIAL"), "{err}");
    // No password at all: usage.
    assert_eq!(cli(&b, &["user", "create", "erin"], Some("")).0, 2);

    // Delete one mechanism, then the rest (every mechanism the user has).
    ok(&b, &["user", "delete", "dana", "-m", "SCRAM-SHA-512"], None);
    assert_eq!(login("SCRAM-SHA-512", "s3cret").0, 1);
    assert_eq!(login("SCRAM-SHA-256", "s3cret").0, 0);
    // Both mechanisms in one command: one request each (Kafka refuses a
    // user twice in one request).
    ok(
        &b,
        &[
            "user",
            "create",
            "dana",
            "-m",
            "SCRAM-SHA-256",
            "-m",
            "SCRAM-SHA-512",
            "--password",
            "again",
        ],
        None,
    );
    assert_eq!(login("SCRAM-SHA-512", "again").0, 0);
    assert_eq!(login("SCRAM-SHA-256", "s3cret").0, 1);
    let deleted = json(&b, &["user", "delete", "dana"]);
    assert_eq!(
        deleted,
        serde_json::json!([
            {"user": "dana", "mechanism": "SCRAM-SHA-256", "status": "DELETED"},
            {"user": "dana", "mechanism": "SCRAM-SHA-512", "status": "DELETED"},
        ])
    );
    assert_eq!(login("SCRAM-SHA-256", "again").0, 1);
    assert_eq!(login("SCRAM-SHA-512", "again").0, 1);
    let (code, _, err) = cli(&b, &["user", "describe", "dana"], None);
    assert_eq!(code, 1);
    assert!(err.contains("RESOURCE_NOT_FOUND"), "{err}");

    // No authorizer: the ACL commands fail with Kafka's error and message.
    let (code, _, err) = cli(&b, &["acl", "list"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("SECURITY_DISABLED: No Authorizer is configured on the broker"),
        "{err}"
    );
    let (code, _, err) = cli(
        &b,
        &[
            "acl",
            "create",
            "topic",
            "t",
            "--principal",
            "User:a",
            "--operation",
            "read",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("SECURITY_DISABLED: No Authorizer is configured."),
        "{err}"
    );
}

/// The bash script completes commands, subcommands, flags and their values
/// when bash runs it.
#[test]
fn bash_completion_completes() {
    let out = Command::new(env!("CARGO_BIN_EXE_kastle"))
        .args(["completion", "bash"])
        .output()
        .expect("kastle completion bash");
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("kastle.bash");
    std::fs::write(&script, &out.stdout).expect("write the script");
    let complete = |words: &str| -> Vec<String> {
        let words: Vec<String> = words.split(' ').map(|w| format!("'{w}'")).collect();
        let prog = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; _kastle; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words.join(" "),
            words.len() - 1
        );
        let out = Command::new("bash")
            .args(["-c", &prog])
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(complete("kastle ac"), ["acl"]);
    assert_eq!(complete("kastle acl c"), ["create"]);
    assert_eq!(complete("kastle acl create tr"), ["transactional-id"]);
    assert_eq!(complete("kastle acl list --pat"), ["--pattern"]);
    assert_eq!(
        complete("kastle acl create topic t --operation describe"),
        ["describe", "describe-configs", "describe-tokens"]
    );
    assert_eq!(
        complete("kastle user create u -m SCRAM-SHA-5"),
        ["SCRAM-SHA-512"]
    );
    assert_eq!(
        complete("kastle topic create t --repl"),
        ["--replicas", "--replication-factor"]
    );
    assert_eq!(complete("kastle consume t --format j"), ["json"]);
    assert_eq!(complete("kastle config get b"), ["broker"]);
    assert_eq!(complete("kastle completion z"), ["zsh"]);
    // A value flag without fixed values offers nothing, not flags.
    assert!(complete("kastle topic create t -p ").is_empty());
}
