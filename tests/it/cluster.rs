//! A kastle cluster of real processes (issue 17): the controller quorum
//! forms over the controller listeners, brokers register and heartbeat,
//! Metadata lists every unfenced broker, a dead broker is fenced within its
//! session and rejoins after a restart, the quorum elects a new leader when
//! its leader is killed, separate controller and broker roles work, a
//! broker of another cluster is refused, and producer ids are unique across
//! the brokers and restarts (blocks decided by the controller), and a
//! controller closes at once the socket of a client gone mid-request.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{AllocateProducerIdsRequest, BrokerId};
use kastle::clients::private_apis::{MetadataFetchRequest, METADATA_FETCH_KEY};

use crate::support::cluster::{node_config, Cluster};
use crate::support::transactions::init_producer_id;
use crate::support::{Broker, Client, E};

const FORM: Duration = Duration::from_secs(20);
/// Session (1.5 s) plus the session checks, elections and fetches.
const FENCE: Duration = Duration::from_secs(10);

#[test]
fn three_combined_nodes_form_a_cluster_and_survive_their_leaders_death() {
    let mut c = Cluster::start(3, 0, 0);
    for id in 1..=3 {
        c.await_brokers(id, &[1, 2, 3], FORM);
    }
    // Kill whichever node leads the quorum (and so runs the controller);
    // then the next one too would break quorum, so one kill, then a restart.
    let leader = c.await_leader(FORM);
    c.node(leader).process.kill();
    let alive: Vec<i32> = (1..=3).filter(|i| *i != leader).collect();
    for id in &alive {
        c.await_brokers(*id, &alive, FENCE);
    }
    let new_leader = c.await_leader(FORM);
    assert_ne!(new_leader, leader, "a new leader is elected");
    c.node(leader).process.restart();
    for id in 1..=3 {
        c.await_brokers(id, &[1, 2, 3], FORM);
    }
}

#[test]
fn three_controllers_and_two_brokers_register() {
    let mut c = Cluster::start(0, 3, 2);
    c.await_brokers(4, &[4, 5], FORM);
    c.await_brokers(5, &[4, 5], FORM);
    // A broker killed is fenced, and rejoins after restart.
    c.node(5).process.kill();
    c.await_brokers(4, &[4], FENCE);
    c.node(5).process.restart();
    c.await_brokers(4, &[4, 5], FORM);
}

#[test]
fn a_broker_of_another_cluster_is_refused() {
    // One controller (a single combined node would be standalone) and one
    // broker of the cluster.
    let c = Cluster::start(0, 1, 1);
    c.await_brokers(2, &[2], FORM);
    let voters = format!(
        "1@127.0.0.1:{}",
        c.nodes[0].controller_port.expect("controller port")
    );
    let port = crate::support::free_port();
    let mut stranger = Broker::start_node(
        port,
        9,
        "ZZZZZZZZZZZZZZZZZZZZZZ",
        &node_config(9, Some(port), None, &voters),
        false,
    );
    let status = stranger
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("the stranger kept running\n{}", stranger.stderr()));
    assert!(!status.success());
    assert!(
        stranger.stderr().contains("INCONSISTENT_CLUSTER_ID"),
        "{}",
        stranger.stderr()
    );
    c.await_brokers(2, &[2], FORM);
}

/// `n` idempotent producers' ids from node `id`'s broker (InitProducerId v4
/// without a transactional id), each new to `seen`.
#[track_caller]
fn fresh_producer_ids(c: &Cluster, id: i32, n: usize, seen: &mut HashSet<i64>) {
    let port = c
        .nodes
        .iter()
        .find(|x| x.id == id)
        .and_then(|x| x.broker_port)
        .expect("a broker");
    let mut client = Client::connect(port);
    let deadline = Instant::now() + FORM;
    let mut got = 0;
    while got < n {
        let r = init_producer_id(&mut client, 4, None, 60_000);
        // Answered while the broker waits for a block; clients retry it.
        if r.error_code == E::CoordinatorLoadInProgress.code() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(r.error_code, 0, "InitProducerId on broker {id}");
        let pid = r.producer_id.0;
        assert!(pid >= 0, "broker {id} answered producer id {pid}");
        assert!(
            seen.insert(pid),
            "broker {id} handed out producer id {pid} again"
        );
        got += 1;
    }
}

#[test]
fn producer_ids_are_unique_across_brokers_and_restarts() {
    let mut c = Cluster::start(3, 0, 0);
    for id in 1..=3 {
        c.await_brokers(id, &[1, 2, 3], FORM);
    }
    // AllocateProducerIds on the controller listeners: the followers answer
    // NOT_CONTROLLER, the active controller checks the broker's epoch.
    let leader = c.await_leader(FORM);
    for n in &c.nodes {
        let port = n.controller_port.expect("a controller");
        let req = AllocateProducerIdsRequest::default()
            .with_broker_id(BrokerId(1))
            .with_broker_epoch(-5);
        let r = Client::connect(port).call(0, &req);
        let want = if n.id == leader {
            E::StaleBrokerEpoch
        } else {
            E::NotController
        };
        assert_eq!(r.error_code, want.code(), "AllocateProducerIds on {}", n.id);
    }
    let mut seen = HashSet::new();
    // Blocks hold 1000 ids: broker 1 moves on to its second block.
    for (id, n) in [(1, 1100), (2, 150), (3, 150), (1, 50)] {
        fresh_producer_ids(&c, id, n, &mut seen);
    }
    // Every process dies at once; the controllers' log keeps the blocks.
    for n in &mut c.nodes {
        n.process.kill();
    }
    std::thread::scope(|s| {
        for n in &mut c.nodes {
            s.spawn(|| n.process.restart());
        }
    });
    for id in 1..=3 {
        c.await_brokers(id, &[1, 2, 3], FORM);
    }
    for id in 1..=3 {
        fresh_producer_ids(&c, id, 20, &mut seen);
    }
}

/// The controller's end of the TCP connection from `client_port`, as
/// /proc/net/tcp states it (hex, e.g. "08" for CLOSE-WAIT); `None` once
/// it is gone.
fn controller_socket_state(controller_port: u16, client_port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local = format!(":{controller_port:04X}");
    let remote = format!(":{client_port:04X}");
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (l, r, state) = (cols.get(1)?, cols.get(2)?, cols.get(3)?);
        (l.ends_with(&local) && r.ends_with(&remote)).then(|| state.to_string())
    })
}

/// A client that gives up on a request while its in-order part waits
/// (here the private metadata long poll, up to 5 s) has its socket closed
/// at once, not left in CLOSE-WAIT until the wait ends: a loaded
/// controller once held 925 such sockets of brokers that had reconnected.
#[test]
fn a_controller_closes_the_socket_of_a_client_gone_mid_request() {
    let c = Cluster::start(0, 1, 0);
    let port = c.nodes[0].controller_port.expect("controller port");
    let fetch = |after_offset: i64, max_wait_ms: i32| {
        MetadataFetchRequest {
            broker_id: 42,
            after_offset,
            max_wait_ms,
        }
        .encode()
    };
    // Until the lone voter leads: then a fetch past the log's end waits.
    let deadline = Instant::now() + FORM;
    let mut client = loop {
        let mut probe = Client::connect(port);
        probe.send(METADATA_FETCH_KEY, 0, 1, &fetch(-1, 0));
        let (_, body) = probe.recv(METADATA_FETCH_KEY, 0);
        if body.get(..2) == Some(&[0, 0][..]) {
            break probe;
        }
        assert!(Instant::now() < deadline, "the controller never led");
        std::thread::sleep(Duration::from_millis(100));
    };
    client.send(METADATA_FETCH_KEY, 0, 2, &fetch(i64::MAX - 1, 5_000));
    let client_port = client.stream.local_addr().expect("local address").port();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        controller_socket_state(port, client_port).is_some(),
        "the controller's end is listed while it waits"
    );
    drop(client);
    let closed = Instant::now();
    // 08 CLOSE-WAIT: the client's FIN is unread. 09 LAST-ACK or gone: the
    // controller closed its end too.
    loop {
        match controller_socket_state(port, client_port) {
            Some(s) if s == "08" => {
                assert!(
                    closed.elapsed() < Duration::from_millis(2_500),
                    "the controller's end still in CLOSE-WAIT after {:?}",
                    closed.elapsed()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => break,
        }
    }
    // The controller serves on: a new client's fetch is answered.
    let mut next = Client::connect(port);
    next.send(METADATA_FETCH_KEY, 0, 1, &fetch(-1, 0));
    let (_, body) = next.recv(METADATA_FETCH_KEY, 0);
    assert_eq!(body.get(..2), Some(&[0, 0][..]), "error code");
}

/// A controller listener closes a connection silent for
/// `connections.max.idle.ms`, as Kafka's controller does; one that keeps
/// asking stays open.
#[test]
fn a_controller_closes_idle_connections() {
    let c = Cluster::start_with(0, 1, 0, |_| vec!["connections.max.idle.ms=1000".into()]);
    let port = c.nodes[0].controller_port.expect("controller port");
    let mut idle = Client::connect(port);
    let mut busy = Client::connect(port);
    let started = Instant::now();
    // 3 s of a request every 300 ms (ApiVersions: answered without a leader).
    while started.elapsed() < Duration::from_secs(3) {
        let corr = busy.next_corr();
        busy.send(18, 0, corr, &[]);
        let (got, _) = busy.recv(18, 0);
        assert_eq!(got, corr);
        std::thread::sleep(Duration::from_millis(300));
    }
    idle.expect_closed("a connection idle past connections.max.idle.ms");
}
