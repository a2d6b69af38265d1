//! Fetching from the closest replica (KIP-392, issue 17): with
//! `replica.selector.class` set to Kafka's `RackAwareReplicaSelector` and
//! each broker in its own `broker.rack`, a leader answers a v11+ consumer
//! in another rack with `preferred_read_replica` (no records), and that
//! follower serves the consumer up to its high watermark. Consumers
//! without client metadata (before v11) still read from the leader only.

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_response::PartitionData;

use crate::support::cluster::Cluster;
use crate::support::fetch::{fetch_request, FetchArgs};
use crate::support::produce::{produce_request, single_partition};
use crate::support::topics::{create_topics, md_topic, metadata, topic_spec};
use crate::support::{sb, simple_batch, Client, E, NONE};

const FORM: Duration = Duration::from_secs(30);
const SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// (leader, isr) of partition 0 of `topic` as node `c` sees it.
fn leader_and_isr(c: &mut Client, topic: &str) -> Option<(i32, Vec<i32>)> {
    let m = metadata(c, 12, Some(&[topic]), false);
    let p = md_topic(&m, topic)?.partitions.first()?.clone();
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort();
    (p.leader_id.0 > 0).then_some((p.leader_id.0, isr))
}

/// Fetch of partition 0 at `version` with the client's rack: the partition.
fn fetch_from(c: &mut Client, version: i16, rack: &str) -> PartitionData {
    let a = FetchArgs {
        version,
        ..Default::default()
    };
    let req = fetch_request("rr", 0, &a).with_rack_id(sb(rack));
    let mut r = c.call(version, &req);
    assert_eq!(r.error_code, NONE);
    r.responses.remove(0).partitions.remove(0)
}

fn records_len(p: &PartitionData) -> usize {
    p.records.as_ref().map_or(0, |r| r.len())
}

#[test]
fn a_consumer_is_pointed_at_the_replica_in_its_rack_and_reads_there() {
    let c = Cluster::start_with(3, 0, 0, |id| {
        vec![
            format!("broker.rack=r{id}"),
            format!("replica.selector.class={SELECTOR}"),
        ]
    });
    for id in 1..=3 {
        c.await_brokers(id, &[1, 2, 3], FORM);
    }
    let mut clients: Vec<Client> = (1..=3)
        .map(|id| Client::connect(c.broker_port(id)))
        .collect();
    let created = create_topics(&mut clients[0], 7, vec![topic_spec("rr", 1, 3, &[])], false);
    assert_eq!(
        created[0].error_code, NONE,
        "{:?}",
        created[0].error_message
    );
    // Every node agrees on the leader and a full ISR.
    let deadline = Instant::now() + FORM;
    let leader = loop {
        let seen: Vec<_> = clients
            .iter_mut()
            .map(|c| leader_and_isr(c, "rr"))
            .collect();
        if let Some(Some((l, isr))) = seen.first() {
            if isr.len() == 3 && seen.iter().all(|s| s.as_ref().map(|x| x.0) == Some(*l)) {
                break *l;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader and ISR: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let at = |id: i32| (id - 1) as usize;

    // The leader's replica may take a moment to act on the image that
    // names it (NOT_LEADER_OR_FOLLOWER meanwhile, retried as clients do).
    let deadline = Instant::now() + FORM;
    loop {
        let produced = single_partition(clients[at(leader)].call(
            9,
            &produce_request("rr", 0, -1, &simple_batch(5, 100, 1_700_000_000_000, 1)),
        ));
        if produced.error_code == NONE {
            break;
        }
        assert!(
            produced.error_code == E::NotLeaderOrFollower.code() && Instant::now() < deadline,
            "produce: {}",
            produced.error_code
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The leader points a consumer of the follower's rack there: no records.
    let deadline = Instant::now() + FORM;
    let pointed = loop {
        let p = fetch_from(&mut clients[at(leader)], 12, &format!("r{follower}"));
        assert_eq!(p.error_code, NONE);
        // Until the follower has fetched the records it is no candidate.
        if p.preferred_read_replica.0 != -1 || Instant::now() >= deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(pointed.preferred_read_replica.0, follower);
    assert_eq!(
        records_len(&pointed),
        0,
        "no records with a preferred replica"
    );
    assert_eq!(pointed.high_watermark, 5);

    // The follower serves the consumer, up to its high watermark.
    let deadline = Instant::now() + FORM;
    let served = loop {
        let p = fetch_from(&mut clients[at(follower)], 12, &format!("r{follower}"));
        assert_eq!(p.error_code, NONE, "a follower serves v11+ consumers");
        if p.high_watermark == 5 || Instant::now() >= deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(served.high_watermark, 5);
    assert_eq!(served.preferred_read_replica.0, -1);
    assert!(
        records_len(&served) > 0,
        "the follower returned the records"
    );

    // The leader's own rack, an unknown rack or none: the leader serves.
    for rack in [format!("r{leader}"), "elsewhere".to_string(), String::new()] {
        let p = fetch_from(&mut clients[at(leader)], 12, &rack);
        assert_eq!(
            (p.error_code, p.preferred_read_replica.0),
            (NONE, -1),
            "rack {rack:?}"
        );
        assert!(
            records_len(&p) > 0,
            "rack {rack:?}: records from the leader"
        );
    }
    // Without client metadata (Fetch v10) only the leader serves.
    let old = fetch_from(&mut clients[at(follower)], 10, "");
    assert_eq!(old.error_code, E::NotLeaderOrFollower.code());
}

#[test]
fn an_unknown_replica_selector_is_refused_at_start() {
    let port = crate::support::free_port();
    let mut b = crate::support::Broker::start_node(
        port,
        1,
        crate::support::cluster::CLUSTER_ID,
        &[
            format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
            "replica.selector.class=com.example.Mine".to_string(),
        ],
        false,
    );
    let status = b
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("kept running\n{}", b.stderr()));
    assert!(!status.success());
    assert!(
        b.stderr()
            .contains("replica.selector.class: com.example.Mine is not supported"),
        "{}",
        b.stderr()
    );
}
