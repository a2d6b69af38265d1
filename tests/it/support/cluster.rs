//! A cluster of real `kastle` processes on 127.0.0.1: combined nodes
//! (broker and controller) or separate controllers and brokers, each with
//! its own ports and data directory formatted with one cluster id, and
//! small timeouts so elections and fencing happen within seconds.

use std::time::{Duration, Instant};

use super::broker::{free_port, Broker};

pub const CLUSTER_ID: &str = "q1c2l3u4s5t6e7r8i9d0AA";
/// The timing every node gets: a broker is fenced after 1.5 s without a
/// heartbeat; a controller starts an election after 600 ms without one.
const TIMING: &[&str] = &[
    "broker.heartbeat.interval.ms=200",
    "broker.session.timeout.ms=1500",
    "controller.quorum.fetch.timeout.ms=600",
    "controller.quorum.election.timeout.ms=300",
];

pub struct Node {
    pub id: i32,
    pub broker_port: Option<u16>,
    pub controller_port: Option<u16>,
    pub process: Broker,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
}

fn voters(ports: &[(i32, u16)]) -> String {
    ports
        .iter()
        .map(|(id, p)| format!("{id}@127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The overrides of one node.
pub fn node_config(
    id: i32,
    broker_port: Option<u16>,
    controller_port: Option<u16>,
    voters: &str,
) -> Vec<String> {
    let mut listeners = Vec::new();
    let mut roles = Vec::new();
    if let Some(p) = broker_port {
        listeners.push(format!("PLAINTEXT://127.0.0.1:{p}"));
        roles.push("broker");
    }
    if let Some(p) = controller_port {
        listeners.push(format!("CONTROLLER://127.0.0.1:{p}"));
        roles.push("controller");
    }
    let mut out = vec![
        format!("node.id={id}"),
        format!("process.roles={}", roles.join(",")),
        format!("listeners={}", listeners.join(",")),
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string(),
        "controller.listener.names=CONTROLLER".to_string(),
        format!("controller.quorum.voters={voters}"),
    ];
    if let Some(p) = broker_port {
        out.push(format!("advertised.listeners=PLAINTEXT://127.0.0.1:{p}"));
        out.push("inter.broker.listener.name=PLAINTEXT".to_string());
    }
    out.extend(TIMING.iter().map(|s| s.to_string()));
    out
}

impl Cluster {
    /// `combined` nodes with both roles, then `controllers` controller-only
    /// nodes and `brokers` broker-only nodes; ids from 1 in that order.
    pub fn start(combined: usize, controllers: usize, brokers: usize) -> Cluster {
        Cluster::start_with(combined, controllers, brokers, |_| Vec::new())
    }

    /// [`Cluster::start`] with `extra(id)` added to each node's overrides.
    pub fn start_with(
        combined: usize,
        controllers: usize,
        brokers: usize,
        extra: impl Fn(i32) -> Vec<String>,
    ) -> Cluster {
        Cluster::start_with_ports(combined, controllers, brokers, |id, _, _| extra(id))
    }

    /// [`Cluster::start_with`], `extra` also given the node's broker and
    /// controller ports (to name its listeners itself).
    pub fn start_with_ports(
        combined: usize,
        controllers: usize,
        brokers: usize,
        extra: impl Fn(i32, Option<u16>, Option<u16>) -> Vec<String>,
    ) -> Cluster {
        let mut plan = Vec::new();
        let mut id = 0;
        for _ in 0..combined {
            id += 1;
            plan.push((id, Some(free_port()), Some(free_port())));
        }
        for _ in 0..controllers {
            id += 1;
            plan.push((id, None, Some(free_port())));
        }
        for _ in 0..brokers {
            id += 1;
            plan.push((id, Some(free_port()), None));
        }
        let voter_ports: Vec<(i32, u16)> = plan
            .iter()
            .filter_map(|(id, _, c)| c.map(|c| (*id, c)))
            .collect();
        let voters = voters(&voter_ports);
        // Every process first (a voter waits for the others to elect).
        let mut nodes: Vec<Node> = plan
            .into_iter()
            .map(|(id, b, c)| {
                let port = b.or(c).expect("a role");
                let mut config = node_config(id, b, c, &voters);
                config.extend(extra(id, b, c));
                let process = Broker::start_node(port, id, CLUSTER_ID, &config, false);
                Node {
                    id,
                    broker_port: b,
                    controller_port: c,
                    process,
                }
            })
            .collect();
        for n in &mut nodes {
            n.process.await_ready();
        }
        Cluster { nodes }
    }

    /// The broker listener's port of node `id`.
    pub fn broker_port(&self, id: i32) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.broker_port)
            .expect("a broker node")
    }

    pub fn node(&mut self, id: i32) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).expect("node id")
    }

    /// The broker ids Metadata on `id`'s broker listener lists, sorted.
    pub fn metadata_brokers(&self, id: i32) -> Option<Vec<i32>> {
        let n = self.nodes.iter().find(|n| n.id == id)?;
        let port = n.broker_port?;
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let mut c = super::client::Client::connect(port);
        let m = super::topics::metadata(&mut c, 12, Some(&[]), false);
        let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id.0).collect();
        ids.sort();
        Some(ids)
    }

    /// The quorum leader as controller `id` knows it (kastle's private
    /// metadata fetch, key 32701, names it), -1 if none yet.
    pub fn leader_seen_by(&self, id: i32) -> Option<i32> {
        let n = self.nodes.iter().find(|n| n.id == id)?;
        let port = n.controller_port?;
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let mut c = super::client::Client::connect(port);
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&i64::MAX.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        c.send(32701, 0, 1, &body);
        let (_, b) = c.recv_frame().ok()?;
        Some(i32::from_be_bytes([b[2], b[3], b[4], b[5]]))
    }

    /// Waits until some controller names a leader.
    #[track_caller]
    pub fn await_leader(&self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for n in &self.nodes {
                if let Some(l) = self.leader_seen_by(n.id).filter(|l| *l > 0) {
                    return l;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no quorum leader within {timeout:?}");
    }

    /// Waits until Metadata on `id` lists exactly `want`.
    #[track_caller]
    pub fn await_brokers(&self, id: i32, want: &[i32], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.metadata_brokers(id);
            if last.as_deref() == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let logs: String = self
            .nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, tail(&n.process.stderr(), 40)))
            .collect();
        panic!("node {id} lists brokers {last:?}, not {want:?}, after {timeout:?}\n{logs}");
    }
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n") + "\n"
}
