//! TLS and SASL between the nodes of a cluster (issue 17): three combined
//! nodes whose inter-broker listener is SASL_SSL (PLAIN, the keystore and
//! truststore made here with rcgen) and whose controller listener is
//! SASL_PLAINTEXT, with Kafka's `StandardAuthorizer` and `super.users`:
//! an RF 3 topic reaches a full ISR (the followers fetch over TLS and
//! SASL), takes an acks=all produce, is read back, and fails over when its
//! leader is killed. On the controller listener a principal that is not a
//! super user is refused BrokerRegistration (CLUSTER_AUTHORIZATION_FAILED)
//! and has its metadata fetch (a private key) closed, and a client that
//! does not authenticate gets no service; a plaintext client of the
//! SASL_SSL listener gets none either. A broker with a wrong inter-node
//! password never registers and logs that authentication failed.
//!
//! The test drives the brokers through a PLAINTEXT client listener whose
//! User:ANONYMOUS is made a super user for the purpose; the node-to-node
//! listeners never see it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiVersionsRequest, BrokerId, BrokerRegistrationRequest};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::sasl::plain_login;
use crate::support::cluster::{tail, Cluster, CLUSTER_ID};
use crate::support::fetch::{fetch_request, FetchArgs};
use crate::support::produce::{produce_request, single_partition};
use crate::support::topics::{create_topics, md_topic, metadata, topic_spec};
use crate::support::{free_port, simple_batch, Broker, Client, E, NONE};

const FORM: Duration = Duration::from_secs(40);
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// A CA and a certificate for localhost/127.0.0.1 signed by it, written as
/// PEM stores: (keystore, truststore).
fn write_stores(dir: &Path) -> (String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, "kastle internode CA");
    let ca = p.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = p.signed_by(&key, &ca, &ca_key).expect("sign");
    let keystore = dir.join("node.pem");
    std::fs::write(&keystore, format!("{}{}", key.serialize_pem(), cert.pem())).expect("keystore");
    let truststore = dir.join("ca.pem");
    std::fs::write(&truststore, ca.pem()).expect("truststore");
    (
        keystore.display().to_string(),
        truststore.display().to_string(),
    )
}

/// The JAAS entry of a node: its own credentials (`admin` with
/// `password`) and the users its listeners accept.
fn jaas(password: &str) -> String {
    format!(
        "{PLAIN_MODULE} required username=\"admin\" password=\"{password}\" \
         user_admin=\"admin-secret\" user_alice=\"alice-secret\";"
    )
}

/// The secured listeners and authorization of one node. `broker`,
/// `internal` and `controller` are its ports (a broker-only node has no
/// controller listener).
fn secured(
    broker: Option<u16>,
    internal: u16,
    controller: Option<u16>,
    stores: &(String, String),
    password: &str,
) -> Vec<String> {
    let mut listeners = Vec::new();
    let mut advertised = Vec::new();
    if let Some(b) = broker {
        listeners.push(format!("PLAINTEXT://127.0.0.1:{b}"));
        listeners.push(format!("INTERNAL://127.0.0.1:{internal}"));
        advertised.push(format!("PLAINTEXT://127.0.0.1:{b}"));
        // The certificate names localhost: the host name is verified.
        advertised.push(format!("INTERNAL://localhost:{internal}"));
    }
    if let Some(c) = controller {
        listeners.push(format!("CONTROLLER://127.0.0.1:{c}"));
    }
    let mut out = vec![
        format!("listeners={}", listeners.join(",")),
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
            .to_string(),
        "sasl.enabled.mechanisms=PLAIN".to_string(),
        "sasl.mechanism.inter.broker.protocol=PLAIN".to_string(),
        "sasl.mechanism.controller.protocol=PLAIN".to_string(),
        format!("listener.name.internal.plain.sasl.jaas.config={}", jaas(password)),
        format!("listener.name.controller.plain.sasl.jaas.config={}", jaas(password)),
        "listener.name.internal.ssl.keystore.type=PEM".to_string(),
        format!("listener.name.internal.ssl.keystore.location={}", stores.0),
        "listener.name.internal.ssl.truststore.type=PEM".to_string(),
        format!("listener.name.internal.ssl.truststore.location={}", stores.1),
        format!("authorizer.class.name={STANDARD_AUTHORIZER}"),
        "super.users=User:admin;User:ANONYMOUS".to_string(),
    ];
    if broker.is_some() {
        out.push(format!("advertised.listeners={}", advertised.join(",")));
        out.push("inter.broker.listener.name=INTERNAL".to_string());
    }
    out
}

/// (leader, sorted isr) of partition 0 of `topic` as `c`'s node sees it.
fn leader_and_isr(c: &mut Client, topic: &str) -> Option<(i32, Vec<i32>)> {
    let m = metadata(c, 12, Some(&[topic]), false);
    let p = md_topic(&m, topic)?.partitions.first()?.clone();
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort();
    (p.leader_id.0 > 0).then_some((p.leader_id.0, isr))
}

/// Waits until every node in `ids` names the same leader with ISR `isr`.
fn await_leader_with_isr(c: &Cluster, ids: &[i32], topic: &str, isr: &[i32]) -> i32 {
    let deadline = Instant::now() + FORM;
    loop {
        let seen: Vec<_> = ids
            .iter()
            .map(|id| leader_and_isr(&mut Client::connect(c.broker_port(*id)), topic))
            .collect();
        if let Some(Some((l, got))) = seen.first() {
            if got == isr && seen.iter().all(|s| s.as_ref().map(|x| x.0) == Some(*l)) {
                return *l;
            }
        }
        if Instant::now() > deadline {
            let logs: String = c
                .nodes
                .iter()
                .map(|n| format!("--- node {} ---\n{}", n.id, tail(&n.process.stderr(), 30)))
                .collect();
            panic!("no leader with ISR {isr:?} for {topic}: {seen:?}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An acks=all produce to the leader, retried while its replica takes
/// over; returns the base offset.
fn produce_all(c: &mut Client, topic: &str, seed: u8) -> i64 {
    let deadline = Instant::now() + FORM;
    loop {
        let p = single_partition(c.call(
            9,
            &produce_request(topic, 0, -1, &simple_batch(5, 100, 1_700_000_000_000, seed)),
        ));
        if p.error_code == NONE {
            return p.base_offset;
        }
        assert!(
            (p.error_code == E::NotLeaderOrFollower.code()
                || p.error_code == E::NotEnoughReplicas.code())
                && Instant::now() < deadline,
            "produce: {}",
            p.error_code
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// kastle's private metadata fetch (key 32701) from the start.
fn metadata_fetch_body() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&i64::MAX.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body
}

fn registration(id: i32) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(id))
        .with_cluster_id(crate::support::sb(CLUSTER_ID))
}

#[test]
fn replication_and_the_controller_listener_over_tls_and_sasl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stores = write_stores(dir.path());
    let internal: HashMap<i32, u16> = (1..=4).map(|id| (id, free_port())).collect();
    let mut c = Cluster::start_with_ports(3, 0, 0, |id, b, ctl| {
        secured(b, internal[&id], ctl, &stores, "admin-secret")
    });
    for id in 1..=3 {
        c.await_brokers(id, &[1, 2, 3], FORM);
    }

    // Replication over the SASL_SSL inter-broker listener: a full ISR.
    let mut admin = Client::connect(c.broker_port(1));
    let created = create_topics(&mut admin, 7, vec![topic_spec("secured", 1, 3, &[])], false);
    assert_eq!(
        created[0].error_code, NONE,
        "{:?}",
        created[0].error_message
    );
    let leader = await_leader_with_isr(&c, &[1, 2, 3], "secured", &[1, 2, 3]);
    let mut to_leader = Client::connect(c.broker_port(leader));
    assert_eq!(produce_all(&mut to_leader, "secured", 1), 0);
    let a = FetchArgs {
        version: 12,
        ..Default::default()
    };
    let mut f = to_leader.call(12, &fetch_request("secured", 0, &a));
    let p = f.responses.remove(0).partitions.remove(0);
    assert_eq!(
        (p.error_code, p.high_watermark),
        (NONE, 5),
        "acks=all then read back"
    );
    assert!(p.records.is_some_and(|r| !r.is_empty()));

    // The controller listener: alice authenticates but holds no
    // CLUSTER_ACTION.
    let controller_port = c.nodes[0].controller_port.expect("controller port");
    let (mut alice, code, msg) = plain_login(controller_port, "alice", "alice-secret");
    assert_eq!(code, NONE, "{msg:?}");
    let r = alice.call(0, &registration(7));
    assert_eq!(r.error_code, E::ClusterAuthorizationFailed.code());
    // A private key has no error field: the connection is closed.
    let (mut alice, _, _) = plain_login(controller_port, "alice", "alice-secret");
    alice.send(32701, 0, 1, &metadata_fetch_body());
    alice.expect_closed("metadata fetch from a principal without CLUSTER_ACTION");
    // admin (a super user) is served.
    let (mut admin_ctl, code, _) = plain_login(controller_port, "admin", "admin-secret");
    assert_eq!(code, NONE);
    admin_ctl.send(32701, 0, 1, &metadata_fetch_body());
    assert!(
        admin_ctl.recv_frame().is_ok(),
        "a super user's metadata fetch"
    );
    // A client that does not authenticate gets nothing.
    let mut anonymous = Client::connect(controller_port);
    anonymous.send_only(0, &registration(7));
    anonymous.expect_closed("BrokerRegistration without SASL");
    // A plaintext client of the SASL_SSL listener gets no service: at most
    // only a TLS alert record (content type 21) before it closes.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", internal[&1])).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req = crate::support::encode(&ApiVersionsRequest::default(), 3);
    let frame = crate::support::frame(18, 3, 1, &req);
    plain.write_all(&frame).expect("write");
    let mut got = Vec::new();
    plain.read_to_end(&mut got).expect("closed by the listener");
    assert!(
        got.is_empty() || got[0] == 21,
        "not a Kafka answer: {got:?}"
    );

    // A broker whose inter-node password is wrong never registers, and
    // says why.
    let voters: String = c
        .nodes
        .iter()
        .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port.expect("voter")))
        .collect::<Vec<_>>()
        .join(",");
    let port = free_port();
    let mut config = crate::support::cluster::node_config(4, Some(port), None, &voters);
    config.extend(secured(Some(port), internal[&4], None, &stores, "wrong"));
    let mut stranger = Broker::start_node(port, 4, CLUSTER_ID, &config, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = stranger.stderr();
        if log.contains("failed authentication") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(log.contains("failed authentication"), "{}", tail(&log, 40));
    assert!(log.contains("Authentication failed"), "{}", tail(&log, 40));
    assert_eq!(
        c.metadata_brokers(1),
        Some(vec![1, 2, 3]),
        "broker 4 never registered"
    );
    stranger.kill();

    // Failover: the leader's death hands the partition to a follower,
    // which takes acks=all produces with the remaining ISR.
    c.node(leader).process.kill();
    let alive: Vec<i32> = (1..=3).filter(|i| *i != leader).collect();
    for id in &alive {
        c.await_brokers(*id, &alive, FORM);
    }
    let new_leader = await_leader_with_isr(&c, &alive, "secured", &alive);
    assert_ne!(new_leader, leader);
    let mut to_new = Client::connect(c.broker_port(new_leader));
    assert_eq!(produce_all(&mut to_new, "secured", 2), 5);
}
