//! Black-box tests of the web console (`console.listener`): off by
//! default; its JSON endpoints show what the test produced and committed
//! (offsets, sizes, configs, lag, records in each format, throughput and
//! lag over time); bad queries get 400 and the broker carries on; with
//! security on, HTTP basic logins are checked against the broker's PLAIN
//! and SCRAM users and what a user sees follows the ACLs.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kafka_protocol::messages::AlterUserScramCredentialsRequest;
use serde_json::Value;

use crate::acls::{create_acls, creation};
use crate::sasl::{sasl_broker, upsertion, Sha};

use crate::support::groups::commit_offsets;
use crate::support::produce::produce;
use crate::support::topics::create_topic;
use crate::support::{
    batch, find_coordinators, free_port, simple_batch, wait_until, Broker, Rec, NONE,
};

const AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.status, self.body))
    }
}

/// One request on its own connection; `auth` as HTTP basic credentials.
fn request(port: u16, method: &str, path: &str, auth: Option<(&str, &str)>) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the console");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let authorization = auth
        .map(|(u, p)| {
            format!(
                "Authorization: Basic {}\r\n",
                B64.encode(format!("{u}:{p}"))
            )
        })
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{authorization}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn get(port: u16, path: &str) -> Value {
    let a = request(port, "GET", path, None);
    assert_eq!(a.status, 200, "GET {path}: {}", a.body);
    a.json()
}

fn start_with_console(extra: &[&str]) -> (Broker, u16) {
    let port = free_port();
    let listener = format!("console.listener=127.0.0.1:{port}");
    let mut args = vec![listener.as_str(), "console.sample.interval.ms=200"];
    args.extend_from_slice(extra);
    (Broker::start(&args), port)
}

fn topic_of<'a>(topics: &'a Value, name: &str) -> &'a Value {
    topics["topics"]
        .as_array()
        .expect("a topic list")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no topic {name} in {topics}"))
}

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t[field].as_str().expect("a name").to_string())
        .filter(|n| !n.starts_with("__"))
        .collect()
}

#[test]
fn console_is_off_by_default_and_a_bad_listener_stops_start_up() {
    let mut b = Broker::start(&[]);
    assert_eq!(b.listening_ports(), HashSet::from([b.port]));
    assert!(!b.stderr().contains("web console"));
    b.assert_alive();
    let mut b = Broker::spawn_only(&["console.listener=no-port-here"]);
    let status = b.wait_exit(Duration::from_secs(20)).expect("broker exits");
    assert!(!status.success());
    assert!(b.stderr().contains("console.listener"), "{}", b.stderr());
}

#[test]
fn endpoints_show_what_was_produced_and_committed() {
    let (b, port) = start_with_console(&[]);
    let mut c = b.client();
    create_topic(&mut c, "c-orders", 2, &[("retention.ms", "123456")]);
    // Partition 0: 5 records keyed k0..k4; partition 1: three records with
    // JSON values, a header and timestamps a second apart.
    assert_eq!(
        produce(
            &mut c,
            "c-orders",
            0,
            &simple_batch(5, 30, 1_700_000_000_000, 1)
        )
        .error_code,
        NONE
    );
    let base = 1_700_000_100_000i64;
    let recs: Vec<Rec> = (0..3)
        .map(|i| Rec {
            key: Some(format!("order-{i}").into_bytes()),
            value: Some(format!("{{\"id\":{i},\"items\":[\"a\"]}}").into_bytes()),
            headers: vec![("source".into(), Some(b"test".to_vec()))],
            timestamp: base + i * 1000,
        })
        .collect();
    assert_eq!(
        produce(&mut c, "c-orders", 1, &batch(&recs)).error_code,
        NONE
    );
    find_coordinators(&b);
    commit_offsets(&mut c, "c-group", &[("c-orders", 0, 2), ("c-orders", 1, 1)]);

    let o = get(port, "/api/overview");
    assert_eq!(o["version"], env!("CARGO_PKG_VERSION"));
    assert!(!o["cluster_id"].as_str().unwrap().is_empty());
    assert_eq!(o["brokers"][0]["id"], o["node_id"]);
    assert!(o["principal"].is_null(), "no security, no principal");
    assert!(o["broker_configs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "log.retention.hours" && e["value"] == "168"));

    let topics = get(port, "/api/topics");
    let t = topic_of(&topics, "c-orders");
    assert_eq!(t["partition_count"], 2);
    assert_eq!(t["messages"], 8);
    assert_eq!(t["partitions"][0]["high_watermark"], 5);
    assert_eq!(t["partitions"][1]["high_watermark"], 3);
    assert_eq!(t["partitions"][1]["log_start_offset"], 0);
    assert!(t["size_bytes"].as_i64().unwrap() > 0);
    assert_eq!(o["topic_count"], topics["topics"].as_array().unwrap().len());

    let d = get(port, "/api/topics/c-orders");
    let retention = d["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "retention.ms")
        .expect("retention.ms described");
    assert_eq!(retention["value"], "123456");
    assert_eq!(retention["source"], "DYNAMIC_TOPIC_CONFIG");

    let groups = get(port, "/api/groups");
    let g = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == "c-group")
        .expect("c-group listed");
    assert_eq!(g["lag"], 3 + 2);
    let g = get(port, "/api/groups/c-group");
    let lag_of = |g: &Value, p: i64| {
        g["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["partition"] == p)
            .map(|o| (o["committed_offset"].clone(), o["lag"].clone()))
    };
    assert_eq!(lag_of(&g, 0), Some((2.into(), 3.into())));
    assert_eq!(lag_of(&g, 1), Some((1.into(), 2.into())));

    // The group consumes more: the lag and its history follow.
    let history = || get(port, "/api/groups/c-group")["lag_history"].clone();
    wait_until("a sample of the lag", Duration::from_secs(10), || {
        history().as_array().unwrap().iter().any(|p| p["lag"] == 5)
    });
    commit_offsets(&mut c, "c-group", &[("c-orders", 0, 5), ("c-orders", 1, 3)]);
    assert_eq!(get(port, "/api/groups/c-group")["lag"], 0);
    wait_until("a sample of the new lag", Duration::from_secs(10), || {
        history()
            .as_array()
            .unwrap()
            .last()
            .is_some_and(|p| p["lag"] == 0)
    });

    // Throughput: a produce between two samples makes a positive point.
    assert_eq!(
        produce(
            &mut c,
            "c-orders",
            0,
            &simple_batch(4, 100, 1_700_000_000_000, 2)
        )
        .error_code,
        NONE
    );
    wait_until("a throughput point", Duration::from_secs(10), || {
        get(port, "/api/topics/c-orders")["throughput"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["messages_per_sec"].as_f64().unwrap_or(0.0) > 0.0)
    });

    // Messages: by offset, in each format.
    let m = get(
        port,
        "/api/messages?topic=c-orders&partition=0&offset=1&limit=2",
    );
    let offsets: Vec<i64> = m["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, vec![1, 2]);
    assert_eq!(m["records"][0]["key"]["text"], "k1");
    assert_eq!(m["next_offset"], 3);
    let m = get(
        port,
        "/api/messages?topic=c-orders&partition=0&offset=1&limit=1&format=hex",
    );
    assert_eq!(m["records"][0]["key"]["text"], "6b 31");
    let m = get(port, "/api/messages?topic=c-orders&partition=1&format=json");
    assert_eq!(m["records"].as_array().unwrap().len(), 3);
    let r = &m["records"][2];
    assert_eq!(r["value"]["json"], true);
    assert_eq!(
        r["value"]["text"],
        "{\n  \"id\": 2,\n  \"items\": [\n    \"a\"\n  ]\n}"
    );
    assert_eq!(r["headers"][0]["key"], "source");
    assert_eq!(r["headers"][0]["value"]["text"], "test");
    assert_eq!(r["timestamp"], base + 2000);
    // By timestamp: the first record at or after it.
    let m = get(
        port,
        &format!(
            "/api/messages?topic=c-orders&partition=1&timestamp={}",
            base + 1
        ),
    );
    assert_eq!(m["records"][0]["offset"], 1);
    assert_eq!(m["records"][0]["key"]["text"], "order-1");
    let m = get(
        port,
        &format!(
            "/api/messages?topic=c-orders&partition=1&timestamp={}",
            base + 9_000
        ),
    );
    assert_eq!(m["records"].as_array().unwrap().len(), 0);

    // The UI and its assets.
    let page = request(port, "GET", "/", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<script src=\"/app.js\">"));
    assert!(page.head.contains("Content-Security-Policy"));
    assert_eq!(request(port, "GET", "/app.js", None).status, 200);
    assert_eq!(request(port, "HEAD", "/api/topics", None).body, "");
}

#[test]
fn bad_queries_get_400_and_the_broker_carries_on() {
    let (mut b, port) = start_with_console(&[]);
    let mut c = b.client();
    create_topic(&mut c, "c-bad", 1, &[]);
    assert_eq!(
        produce(
            &mut c,
            "c-bad",
            0,
            &simple_batch(2, 10, 1_700_000_000_000, 1)
        )
        .error_code,
        NONE
    );
    for path in [
        "/api/messages",
        "/api/messages?topic=",
        "/api/messages?topic=bad/name",
        "/api/messages?topic=c-bad&partition=-1",
        "/api/messages?topic=c-bad&partition=x",
        "/api/messages?topic=c-bad&offset=abc",
        "/api/messages?topic=c-bad&offset=99",
        "/api/messages?topic=c-bad&offset=1&timestamp=1",
        "/api/messages?topic=c-bad&limit=0",
        "/api/messages?topic=c-bad&limit=1000000",
        "/api/messages?topic=c-bad&format=xml",
        "/api/messages?topic=c-bad&nonsense=1",
        "/api/messages?topic=c-bad&topic=c-bad",
        "/api/messages?topic=%zz",
        "/api/topics?x=1",
        "/api/topics/%ff",
        "/api/topics/bad%2Fname",
    ] {
        let a = request(port, "GET", path, None);
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert!(
            a.json()["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}"
        );
    }
    for path in [
        "/api/topics/c-nowhere",
        "/api/groups/nobody",
        "/api/messages?topic=c-bad&partition=7",
        "/api/nothing",
        "/nothing",
    ] {
        assert_eq!(request(port, "GET", path, None).status, 404, "{path}");
    }
    assert_eq!(request(port, "POST", "/api/topics", None).status, 405);
    assert_eq!(
        request(port, "DELETE", "/api/topics/c-bad", None).status,
        405
    );
    b.assert_alive();
    assert_eq!(get(port, "/api/topics/c-bad")["messages"], 2);
}

#[test]
fn with_security_on_logins_are_checked_and_acls_filter() {
    let console = free_port();
    let listener = format!("console.listener=127.0.0.1:{console}");
    let (b, _sasl) = sasl_broker(&[
        AUTHORIZER,
        "super.users=User:admin;User:ANONYMOUS",
        listener.as_str(),
    ]);
    let mut c = b.client(); // PLAINTEXT: ANONYMOUS, a super user
    create_topic(&mut c, "c-open", 1, &[]);
    create_topic(&mut c, "c-secret", 1, &[]);
    assert_eq!(
        produce(
            &mut c,
            "c-open",
            0,
            &simple_batch(2, 10, 1_700_000_000_000, 1)
        )
        .error_code,
        NONE
    );
    find_coordinators(&b);
    commit_offsets(&mut c, "c-g", &[("c-open", 0, 1), ("c-secret", 0, 0)]);
    let r = c.call(
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion(
            "carol",
            Sha::S256,
            "carol-scram",
            4096,
        )]),
    );
    assert!(r.results.iter().all(|x| x.error_code == NONE), "{r:?}");
    // alice may read c-open and describe group c-g; carol nothing.
    const TOPIC: i8 = 2;
    const GROUP: i8 = 3;
    const LITERAL: i8 = 3;
    const READ: i8 = 3;
    const DESCRIBE: i8 = 8;
    const ALLOW: i8 = 3;
    let results = create_acls(
        &mut c,
        vec![
            creation(TOPIC, "c-open", LITERAL, "User:alice", READ, ALLOW),
            creation(GROUP, "c-g", LITERAL, "User:alice", DESCRIBE, ALLOW),
        ],
    );
    assert!(results.iter().all(|(code, _)| *code == NONE), "{results:?}");

    // Logins: none, a wrong password, an unknown user → 401 with a
    // challenge; PLAIN and SCRAM users → 200.
    let a = request(console, "GET", "/api/overview", None);
    assert_eq!(a.status, 401);
    assert!(a.head.contains("WWW-Authenticate: Basic"), "{}", a.head);
    assert_eq!(request(console, "GET", "/", None).status, 401);
    for (u, p) in [
        ("alice", "wrong"),
        ("carol", "alice-secret"),
        ("mallory", "x"),
    ] {
        let started = std::time::Instant::now();
        let a = request(console, "GET", "/api/topics", Some((u, p)));
        assert_eq!(a.status, 401, "{u}:{p}");
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "a failed login is answered after connection.failed.authentication.delay.ms"
        );
    }
    let as_user = |u: &str, p: &str, path: &str| request(console, "GET", path, Some((u, p)));
    let alice = |path: &str| as_user("alice", "alice-secret", path);
    let admin = |path: &str| as_user("admin", "admin-secret", path);
    let carol = |path: &str| as_user("carol", "carol-scram", path);

    let o = alice("/api/overview");
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.json()["principal"], "User:alice");
    assert!(
        o.json()["broker_configs"].is_null(),
        "no DESCRIBE_CONFIGS on the cluster"
    );
    assert!(admin("/api/overview").json()["broker_configs"].is_array());

    // Topics: alice sees c-open only, admin both, carol none.
    assert_eq!(
        names(&alice("/api/topics").json(), "topics", "name"),
        ["c-open"]
    );
    assert_eq!(
        names(&admin("/api/topics").json(), "topics", "name"),
        ["c-open", "c-secret"]
    );
    assert!(names(&carol("/api/topics").json(), "topics", "name").is_empty());
    assert_eq!(alice("/api/topics/c-secret").status, 403);
    assert_eq!(
        alice("/api/topics/c-unknown").status,
        403,
        "as Kafka: no hint it exists"
    );
    assert_eq!(alice("/api/topics/c-open").status, 200);
    assert_eq!(
        alice("/api/messages?topic=c-open").json()["records"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(alice("/api/messages?topic=c-secret").status, 403);
    assert_eq!(carol("/api/messages?topic=c-open").status, 403);

    // Groups: alice sees c-g with only the partitions of c-open.
    assert_eq!(
        names(&alice("/api/groups").json(), "groups", "group_id"),
        ["c-g"]
    );
    assert!(names(&carol("/api/groups").json(), "groups", "group_id").is_empty());
    assert_eq!(carol("/api/groups/c-g").status, 403);
    let g = alice("/api/groups/c-g").json();
    let topics: Vec<&str> = g["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["c-open"]);
    assert_eq!(g["lag"], 1);
    assert_eq!(
        admin("/api/groups/c-g").json()["offsets"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
