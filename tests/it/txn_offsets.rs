//! TxnOffsetCommit over the raw protocol: offsets committed inside a
//! transaction stay invisible to OffsetFetch (and make `require_stable`
//! fetches answer UNSTABLE_OFFSET_COMMIT) until the transaction commits;
//! an abort discards them; both survive a restart.

use crate::support::{Broker, Client, E, NONE};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn start() -> Broker {
    Broker::start(&[
        "offsets.topic.num.partitions=3",
        "transaction.state.log.num.partitions=3",
    ])
}

fn create_topic(c: &mut Client, name: &str, partitions: i32) {
    crate::support::topics::create_topic(c, name, partitions, &[]);
}

fn init_producer(c: &mut Client, txn_id: &str) -> (i64, i16) {
    let r = c.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(txn_id))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(r.error_code, NONE, "InitProducerId");
    (r.producer_id.0, r.producer_epoch)
}

fn add_offsets(c: &mut Client, txn_id: &str, pid: (i64, i16), group: &str) {
    let r = c.call(
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s(txn_id)))
            .with_producer_id(ProducerId(pid.0))
            .with_producer_epoch(pid.1)
            .with_group_id(GroupId(s(group))),
    );
    assert_eq!(r.error_code, NONE, "AddOffsetsToTxn");
}

fn end_txn(c: &mut Client, txn_id: &str, pid: (i64, i16), commit: bool) {
    let r = c.call(
        3,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(txn_id)))
            .with_producer_id(ProducerId(pid.0))
            .with_producer_epoch(pid.1)
            .with_committed(commit),
    );
    assert_eq!(r.error_code, NONE, "EndTxn");
}

fn txn_commit(
    c: &mut Client,
    version: i16,
    txn_id: &str,
    pid: (i64, i16),
    group: &str,
    parts: &[(&str, i32, i64)],
) -> Vec<i16> {
    let topics = parts
        .iter()
        .map(|(t, p, o)| {
            TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)
                    .with_committed_metadata(Some(s("meta")))])
        })
        .collect();
    let r = c.call(
        version,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s(txn_id)))
            .with_group_id(GroupId(s(group)))
            .with_producer_id(ProducerId(pid.0))
            .with_producer_epoch(pid.1)
            .with_topics(topics),
    );
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

fn commit(c: &mut Client, group: &str, topic: &str, partition: i32, offset: i64) {
    let r = c.call(
        8,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(offset)])]),
    );
    assert_eq!(r.topics[0].partitions[0].error_code, NONE);
}

/// (offset, error) per partition, OffsetFetch v8 (v7 layout when asked).
fn fetch(
    c: &mut Client,
    version: i16,
    group: &str,
    topic: &str,
    parts: &[i32],
    stable: bool,
) -> Vec<(i64, i16)> {
    if version >= 8 {
        let r = c.call(
            version,
            &OffsetFetchRequest::default()
                .with_require_stable(stable)
                .with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s(group)))
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(TopicName(s(topic)))
                        .with_partition_indexes(parts.to_vec())]))]),
        );
        return r.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| (p.committed_offset, p.error_code))
            .collect();
    }
    let r = c.call(
        version,
        &OffsetFetchRequest::default()
            .with_require_stable(stable)
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_indexes(parts.to_vec()),
            ])),
    );
    r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.committed_offset, p.error_code))
        .collect()
}

#[test]
fn txn_offsets_visible_only_after_commit() {
    let mut b = start();
    let mut c = b.client();
    create_topic(&mut c, "t", 2);
    commit(&mut c, "g", "t", 0, 5);
    let pid = init_producer(&mut c, "tx1");

    // Without AddOffsetsToTxn the offsets partition is not in the
    // transaction (KIP-890 verification).
    assert_eq!(
        txn_commit(&mut c, 3, "tx1", pid, "g", &[("t", 0, 10)]),
        vec![E::InvalidTxnState.code()]
    );

    add_offsets(&mut c, "tx1", pid, "g");
    assert_eq!(
        txn_commit(
            &mut c,
            3,
            "tx1",
            pid,
            "g",
            &[("t", 0, 10), ("t", 1, 20), ("nope", 0, 1), ("t", 9, 1)]
        ),
        vec![
            NONE,
            NONE,
            E::UnknownTopicOrPartition.code(),
            E::UnknownTopicOrPartition.code()
        ]
    );
    assert_eq!(
        fetch(&mut c, 8, "g", "t", &[0, 1], false),
        vec![(5, NONE), (-1, NONE)]
    );
    assert_eq!(
        fetch(&mut c, 8, "g", "t", &[0, 1], true),
        vec![
            (-1, E::UnstableOffsetCommit.code()),
            (-1, E::UnstableOffsetCommit.code())
        ]
    );
    assert_eq!(
        fetch(&mut c, 7, "g", "t", &[0], true),
        vec![(-1, E::UnstableOffsetCommit.code())]
    );
    assert_eq!(fetch(&mut c, 6, "g", "t", &[0], false), vec![(5, NONE)]);

    end_txn(&mut c, "tx1", pid, true);
    assert_eq!(
        fetch(&mut c, 8, "g", "t", &[0, 1], true),
        vec![(10, NONE), (20, NONE)]
    );

    // Durable across a restart.
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    assert_eq!(
        fetch(&mut c, 8, "g", "t", &[0, 1], true),
        vec![(10, NONE), (20, NONE)]
    );
}

#[test]
fn txn_offsets_discarded_on_abort() {
    let mut b = start();
    let mut c = b.client();
    create_topic(&mut c, "t", 1);
    let pid = init_producer(&mut c, "tx2");
    add_offsets(&mut c, "tx2", pid, "g2");
    assert_eq!(
        txn_commit(&mut c, 0, "tx2", pid, "g2", &[("t", 0, 42)]),
        vec![NONE]
    );
    assert_eq!(
        txn_commit(&mut c, 3, "tx2", pid, "", &[("t", 0, 42)]),
        vec![E::InvalidGroupId.code()]
    );
    end_txn(&mut c, "tx2", pid, false);
    assert_eq!(fetch(&mut c, 8, "g2", "t", &[0], true), vec![(-1, NONE)]);
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    assert_eq!(fetch(&mut c, 8, "g2", "t", &[0], true), vec![(-1, NONE)]);
}
