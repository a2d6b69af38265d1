//! Drop-in for docker-compose, black-box: the real binary started with the
//! environment a compose file gives the Kafka images (two client listeners,
//! a controller listener, KRaft and replication settings), checked over the
//! wire; and `kastle health` against a live broker, a dead port, a port that
//! answers garbage and one that never answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::topics::{create_topic, metadata};
use crate::support::{free_port, sb, Broker, Client, NONE};
use kafka_protocol::messages::{DescribeClusterRequest, FindCoordinatorRequest};

const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";

fn vars(v: &[(&str, String)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// The apache/kafka documentation's single-node compose environment with
/// its three listeners, on free ports: PLAINTEXT advertised as `localhost`
/// (the in-network name in a real file), PLAINTEXT_HOST as `127.0.0.1`.
fn compose_env(internal: u16, host: u16, controller: u16, data: &Path) -> Vec<(String, String)> {
    vars(&[
        ("KAFKA_NODE_ID", "1".into()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".into()),
        (
            "KAFKA_LISTENERS",
            format!(
                "PLAINTEXT://0.0.0.0:{internal},CONTROLLER://0.0.0.0:{controller},PLAINTEXT_HOST://0.0.0.0:{host}"
            ),
        ),
        (
            "KAFKA_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://localhost:{internal},PLAINTEXT_HOST://127.0.0.1:{host}"),
        ),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
        ),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
        (
            "KAFKA_CONTROLLER_QUORUM_VOTERS",
            format!("1@localhost:{controller}"),
        ),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".into()),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".into()),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
        ("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true".into()),
        ("KAFKA_LOG_DIRS", data.display().to_string()),
        ("KAFKA_HEAP_OPTS", "-Xmx512M".into()),
        ("CLUSTER_ID", CLUSTER_ID.into()),
    ])
}

/// `host:port` of every broker a Metadata v12 answer lists on this port.
fn metadata_brokers(port: u16) -> Vec<String> {
    let mut c = Client::connect(port);
    let r = metadata(&mut c, 12, Some(&[]), true);
    r.brokers
        .iter()
        .map(|b| format!("{}:{}", b.host.as_str(), b.port))
        .collect()
}

fn describe_cluster(port: u16) -> (String, Vec<String>) {
    let mut c = Client::connect(port);
    let r = c.call(0, &DescribeClusterRequest::default());
    assert_eq!(r.error_code, NONE);
    let brokers = r
        .brokers
        .iter()
        .map(|b| format!("{}:{}", b.host.as_str(), b.port))
        .collect();
    (r.cluster_id.as_str().to_string(), brokers)
}

/// `host:port` of the group coordinator FindCoordinator v4 names on this port.
fn group_coordinator(port: u16) -> String {
    let mut c = Client::connect(port);
    let req = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![sb("dropin-group")]);
    let r = c.call(4, &req);
    assert_eq!(r.coordinators.len(), 1);
    let co = &r.coordinators[0];
    assert_eq!(co.error_code, NONE);
    format!("{}:{}", co.host.as_str(), co.port)
}

/// Runs `kastle health ARGS` with `env` only; returns the output and how
/// long it took.
fn health(args: &[&str], env: &[(String, String)]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_kastle"))
        .arg("health")
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("run kastle health");
    (out, started.elapsed())
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn compose_environment_serves_each_listener_with_its_own_advertised_address() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (internal, host, controller) = (free_port(), free_port(), free_port());
    let env = compose_env(internal, host, controller, &data);
    let mut b = Broker::start_env(&env, tmp.path(), internal);
    // The other client listener is up too; the controller one is not bound.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", host)).is_err() {
        assert!(Instant::now() < deadline, "PLAINTEXT_HOST not listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", controller)).is_err());

    // Each client is told the address of the listener it came in on.
    assert_eq!(
        metadata_brokers(internal),
        [format!("localhost:{internal}")]
    );
    assert_eq!(metadata_brokers(host), [format!("127.0.0.1:{host}")]);
    let (id, brokers) = describe_cluster(host);
    assert_eq!(id, CLUSTER_ID);
    assert_eq!(brokers, [format!("127.0.0.1:{host}")]);
    let (_, brokers) = describe_cluster(internal);
    assert_eq!(brokers, [format!("localhost:{internal}")]);
    assert_eq!(group_coordinator(internal), format!("localhost:{internal}"));
    assert_eq!(group_coordinator(host), format!("127.0.0.1:{host}"));

    // CLUSTER_ID became the cluster id on this first start.
    let meta = std::fs::read_to_string(data.join("meta.properties")).unwrap();
    assert!(meta.contains(&format!("cluster.id={CLUSTER_ID}")), "{meta}");

    // One line lists the KRaft settings a single node does not need, one the
    // image variables; no warnings about unknown keys.
    let log = b.stderr();
    let not_needed: Vec<&str> = log.lines().filter(|l| l.contains("not needed")).collect();
    assert_eq!(not_needed.len(), 1, "{log}");
    for k in [
        "process.roles",
        "controller.quorum.voters",
        "inter.broker.listener.name",
    ] {
        assert!(not_needed[0].contains(k), "{k}: {}", not_needed[0]);
    }
    assert!(log.contains("KAFKA_HEAP_OPTS"), "{log}");
    assert!(!log.contains("unknown configuration key"), "{log}");

    // The health check: explicit address, and the default taken from the
    // same environment (first client listener, 0.0.0.0 -> 127.0.0.1).
    let (o, _) = health(&["--bootstrap-server", &format!("127.0.0.1:{host}")], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("healthy"),
        "{}",
        text(&o)
    );
    let (o, _) = health(&[], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("127.0.0.1:{internal}")),
        "{}",
        text(&o)
    );

    // A second start with another CLUSTER_ID keeps the stored one, as the
    // images do (their format step skips a formatted directory).
    b.stop();
    let mut env2 = env.clone();
    for (k, v) in env2.iter_mut() {
        if k == "CLUSTER_ID" {
            *v = "abcdefghijklmnopqrstuv".into();
        }
    }
    let mut b = Broker::start_env(&env2, tmp.path(), internal);
    let (id, _) = describe_cluster(internal);
    assert_eq!(id, CLUSTER_ID);
    assert!(
        b.stderr().contains("keeping the stored id"),
        "{}",
        b.stderr()
    );
    b.stop();
}

/// cp-kafka and apache/kafka derive `listeners` from the advertised
/// listeners when KAFKA_LISTENERS is absent; ZooKeeper-era variables and a
/// cluster's replication factors do not stop the broker.
#[test]
fn listeners_derived_from_advertised_listeners() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b_port) = (free_port(), free_port());
    let env = vars(&[
        ("KAFKA_BROKER_ID", "1".into()),
        ("KAFKA_ZOOKEEPER_CONNECT", "zookeeper:2181".into()),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT,SSL:SSL".into(),
        ),
        (
            "KAFKA_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://localhost:{a},PLAINTEXT_HOST://127.0.0.1:{b_port}"),
        ),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3".into()),
        ("KAFKA_DEFAULT_REPLICATION_FACTOR", "3".into()),
        ("KAFKA_JMX_PORT", "9101".into()),
        ("CONFLUENT_METRICS_ENABLE", "false".into()),
        (
            "KAFKA_LOG_DIRS",
            tmp.path().join("data").display().to_string(),
        ),
    ]);
    let mut b = Broker::start_env(&env, tmp.path(), a);
    assert_eq!(metadata_brokers(a), [format!("localhost:{a}")]);
    assert_eq!(metadata_brokers(b_port), [format!("127.0.0.1:{b_port}")]);
    // default.replication.factor=3 on one node: topics are still created.
    let mut c = Client::connect(a);
    create_topic(&mut c, "derived", 1, &[]);
    let log = b.stderr();
    assert!(log.contains("listening on PLAINTEXT://0.0.0.0:"), "{log}");
    assert!(log.contains("zookeeper.connect=zookeeper:2181"), "{log}");
    b.stop();
}

#[test]
fn health_fails_fast_on_a_dead_port() {
    let port = free_port();
    let (o, took) = health(&["--bootstrap-server", &format!("127.0.0.1:{port}")], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("unhealthy"),
        "{}",
        text(&o)
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// A server for one connection: reads whatever comes, then answers with
/// `reply`, or stays silent for 3 s.
fn fake_server(reply: Option<Vec<u8>>) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 256];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut buf);
            match &reply {
                Some(r) => {
                    let _ = s.write_all(r);
                    std::thread::sleep(Duration::from_millis(200));
                }
                None => std::thread::sleep(Duration::from_secs(3)),
            }
        }
    });
    (port, h)
}

#[test]
fn health_rejects_a_port_that_answers_garbage() {
    // An HTTP server where a broker should be.
    let (port, h) = fake_server(Some(
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ));
    let (o, took) = health(&["--bootstrap-server", &format!("127.0.0.1:{port}")], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // "HTTP" read as a frame size is far above the 1 MiB bound.
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("frame size"),
        "{}",
        text(&o)
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    h.join().unwrap();

    // Well framed, wrong correlation id.
    let mut frame = 10i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    let (port, h) = fake_server(Some(frame));
    let (o, _) = health(&["--bootstrap-server", &format!("127.0.0.1:{port}")], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("correlation"),
        "{}",
        text(&o)
    );
    h.join().unwrap();
}

#[test]
fn health_times_out_on_a_silent_port() {
    let (port, h) = fake_server(None);
    let (o, took) = health(
        &[
            "--bootstrap-server",
            &format!("127.0.0.1:{port}"),
            "--timeout-ms",
            "500",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("within 500 ms"),
        "{}",
        text(&o)
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(2500),
        "took {took:?}"
    );
    h.join().unwrap();
}
