//! KIP-890 verification across brokers (issue 17): a partition leader that
//! is not the transactional id's coordinator asks the coordinator (a
//! verify-only AddPartitionsToTxn on the inter-broker listener) before the
//! first transactional batch of a transaction lands on its partition, and a
//! group coordinator does the same before a transactional offset commit.
//! Until the partition or the group's offsets partition is in the
//! transaction, the write is refused; once it is, it succeeds, and the
//! transaction commits across the three brokers.

use std::time::{Duration, Instant};

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::MetadataResponse;

use crate::support::cluster::Cluster;
use crate::support::fetch::{latest_isolated, READ_COMMITTED, READ_UNCOMMITTED};
use crate::support::groups::{commit_offsets, committed_offsets};
use crate::support::produce;
use crate::support::topics::{create_topics, delete_topic, md_topic, metadata, topic_spec};
use crate::support::transactions::{
    add_offsets, add_partitions_ok, end_txn, init_producer_id, txn_offset_commit,
};
use crate::support::{sb, txn_batch, Client, E, NONE};

const FORM: Duration = Duration::from_secs(30);
const TXN: &str = "tx-remote";

/// Produce v9 (acks=all) of a transactional batch, as a transactional
/// producer sends it (with its transactional id): the error code once it
/// is not NOT_ENOUGH_REPLICAS. Produce v9 reports a verification the
/// coordinator could not answer (CONCURRENT_TRANSACTIONS, a coordinator
/// loading or not available, a network error on the inter-broker link) as
/// that retriable code (Kafka's `ReplicaManager`): retried, as a client
/// does (the sequence makes a retry of a written batch a duplicate).
fn produce_txn(c: &mut Client, topic: &str, partition: i32, records: &[u8]) -> i16 {
    let deadline = Instant::now() + FORM;
    loop {
        let code = produce::produce_txn(c, TXN, topic, partition, records).error_code;
        if code != E::NotEnoughReplicas.code() {
            return code;
        }
        assert!(
            Instant::now() < deadline,
            "Produce to {topic}-{partition}: NOT_ENOUGH_REPLICAS for {FORM:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// FindCoordinator v4 of one key (0 = group, 1 = transaction), retried
/// while the internal topic is created and its leaders load.
fn coordinator(c: &mut Client, key_type: i8, key: &str) -> i32 {
    let deadline = Instant::now() + FORM;
    loop {
        let req = FindCoordinatorRequest::default()
            .with_key_type(key_type)
            .with_coordinator_keys(vec![sb(key)]);
        let r = c.call(4, &req);
        let found = &r.coordinators[0];
        if found.error_code == NONE {
            return found.node_id.0;
        }
        assert!(
            Instant::now() < deadline,
            "FindCoordinator {key}: error {}",
            found.error_code
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The leaders of `topic`'s partitions as one node sees them (empty until
/// every partition has one).
fn leaders_seen(c: &mut Client, topic: &str, partitions: usize) -> Vec<i32> {
    let m: MetadataResponse = metadata(c, 12, Some(&[topic]), false);
    let Some(t) = md_topic(&m, topic) else {
        return Vec::new();
    };
    let mut ls: Vec<(i32, i32)> = t
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect();
    ls.sort();
    if ls.len() != partitions || ls.iter().any(|(_, l)| *l < 0) {
        return Vec::new();
    }
    ls.into_iter().map(|(_, l)| l).collect()
}

/// The leaders of `topic`'s partitions once every node agrees on them (so
/// a leader knows it leads before it is written to).
fn leaders(clients: &mut [Client], topic: &str, partitions: usize) -> Vec<i32> {
    let deadline = Instant::now() + FORM;
    loop {
        let seen: Vec<Vec<i32>> = clients
            .iter_mut()
            .map(|c| leaders_seen(c, topic, partitions))
            .collect();
        if !seen[0].is_empty() && seen.iter().all(|s| *s == seen[0]) {
            return seen[0].clone();
        }
        assert!(Instant::now() < deadline, "{topic}: leaders {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn writes_on_other_brokers_are_verified_with_the_transaction_coordinator() {
    let c = Cluster::start(3, 0, 0);
    for id in 1..=3 {
        c.await_brokers(id, &[1, 2, 3], FORM);
    }
    let port = |id: i32| c.broker_port(id);
    let mut any = Client::connect(port(1));
    let created = create_topics(&mut any, 7, vec![topic_spec("vt", 3, 3, &[])], false);
    assert_eq!(
        created[0].error_code, NONE,
        "{:?}",
        created[0].error_message
    );
    let mut every: Vec<Client> = (1..=3).map(|id| Client::connect(port(id))).collect();
    let vt_leaders = leaders(&mut every, "vt", 3);

    // As a client does: find the coordinator again while the one named
    // is not ready to answer (its partition still loading, or its first
    // write not yet replicated: COORDINATOR_NOT_AVAILABLE, Kafka's mapping
    // of a timed-out append to `__transaction_state`).
    let deadline = Instant::now() + FORM;
    let (txn, mut coord, pid) = loop {
        let txn = coordinator(&mut any, 1, TXN);
        let mut coord = Client::connect(port(txn));
        let r = init_producer_id(&mut coord, 4, Some(TXN), 60_000);
        if r.error_code == NONE {
            break (txn, coord, (r.producer_id.0, r.producer_epoch));
        }
        assert!(
            Instant::now() < deadline
                && [
                    E::NotCoordinator,
                    E::CoordinatorLoadInProgress,
                    E::CoordinatorNotAvailable,
                    E::ConcurrentTransactions
                ]
                .iter()
                .any(|e| e.code() == r.error_code),
            "InitProducerId {TXN}: {}",
            r.error_code
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let p = vt_leaders
        .iter()
        .position(|l| *l != txn)
        .expect("a partition led by another broker") as i32;
    let leader = vt_leaders[p as usize];
    let mut on_leader = Client::connect(port(leader));

    // Not in the transaction: the leader asks the coordinator and refuses
    // (Produce v9: INVALID_TXN_STATE), writing nothing.
    assert_eq!(
        produce_txn(&mut on_leader, "vt", p, &txn_batch(pid, 0, 1, "x")),
        E::InvalidTxnState.code(),
        "a partition not added, verified remotely"
    );
    assert_eq!(
        latest_isolated(&mut on_leader, "vt", p, READ_UNCOMMITTED),
        0
    );

    add_partitions_ok(&mut coord, TXN, pid, &[("vt", p)]);
    assert_eq!(
        produce_txn(&mut on_leader, "vt", p, &txn_batch(pid, 0, 2, "a")),
        NONE
    );
    // The transaction is open there now: no further question needed.
    assert_eq!(
        produce_txn(&mut on_leader, "vt", p, &txn_batch(pid, 2, 2, "b")),
        NONE
    );

    // A group whose coordinator is not the transaction's.
    let group = (0..200)
        .map(|i| format!("g-remote-{i}"))
        .find(|g| coordinator(&mut any, 0, g) != txn)
        .expect("a group coordinated elsewhere");
    let mut on_group = Client::connect(port(coordinator(&mut any, 0, &group)));
    let offsets = [("vt", p, 4i64)];
    // Before AddOffsetsToTxn: v3 answers INVALID_TXN_STATE, v4
    // TRANSACTION_ABORTABLE (the coordinator's answer, translated by version).
    assert_eq!(
        txn_offset_commit(&mut on_group, 3, TXN, pid, &group, &offsets),
        vec![E::InvalidTxnState.code()]
    );
    assert_eq!(
        txn_offset_commit(&mut on_group, 4, TXN, pid, &group, &offsets),
        vec![E::TransactionAbortable.code()]
    );
    // A stale epoch is the coordinator's PRODUCER_FENCED, answered as
    // INVALID_PRODUCER_EPOCH.
    assert_eq!(
        txn_offset_commit(&mut on_group, 3, TXN, (pid.0, pid.1 - 1), &group, &offsets),
        vec![E::InvalidProducerEpoch.code()]
    );
    add_offsets(&mut coord, TXN, pid, &group);
    // The group coordinator may still be loading its new partition, or
    // its write time out while the partition's followers catch up
    // (retriable, as for any client).
    let deadline = Instant::now() + FORM;
    loop {
        let codes = txn_offset_commit(&mut on_group, 3, TXN, pid, &group, &offsets);
        if codes == vec![NONE] {
            break;
        }
        assert!(
            Instant::now() < deadline
                && [
                    E::NotCoordinator,
                    E::CoordinatorLoadInProgress,
                    E::CoordinatorNotAvailable
                ]
                .iter()
                .any(|e| codes == vec![e.code()]),
            "TxnOffsetCommit after AddOffsetsToTxn: {codes:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    end_txn(&mut coord, TXN, pid, true);
    // The COMMIT marker reaches the remote leader: the records are stable.
    let deadline = Instant::now() + FORM;
    while latest_isolated(&mut on_leader, "vt", p, READ_COMMITTED) < 5 {
        assert!(
            Instant::now() < deadline,
            "the commit never reached the leader"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A new transaction must be verified again on that partition.
    assert_eq!(
        produce_txn(&mut on_leader, "vt", p, &txn_batch(pid, 4, 1, "late")),
        E::InvalidTxnState.code(),
        "after the commit, not added again"
    );

    // Kafka's `onTopicsDeleted` in a cluster: the group's coordinator (not
    // the broker asked to delete) drops the offsets of a topic the image no
    // longer has.
    let committed = |c: &mut Client| committed_offsets(c, 7, &group, "vt", &[p]);
    let deadline = Instant::now() + FORM;
    while committed(&mut on_group) != vec![4] {
        assert!(
            Instant::now() < deadline,
            "the committed offset never showed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = (1..=3)
        .find(|id| *id != coordinator(&mut any, 0, &group))
        .expect("a broker other than the group's coordinator");
    delete_topic(&mut Client::connect(port(asked)), "vt");
    let deadline = Instant::now() + FORM;
    while committed(&mut on_group) != vec![-1] {
        assert!(
            Instant::now() < deadline,
            "the deleted topic's offsets stayed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // An offset of a partition with no replica on the group's coordinator
    // is the cluster's (Kafka's `metadataCache.contains`), not unknown.
    let created = create_topics(&mut any, 7, vec![topic_spec("one", 3, 1, &[])], false);
    assert_eq!(created[0].error_code, NONE);
    let group_broker = coordinator(&mut any, 0, &group);
    let p = leaders(&mut every, "one", 3)
        .iter()
        .position(|l| *l != group_broker)
        .expect("a partition hosted elsewhere") as i32;
    commit_offsets(&mut on_group, &group, &[("one", p, 11)]);
    assert_eq!(
        committed_offsets(&mut on_group, 7, &group, "one", &[p]),
        vec![11]
    );
}
