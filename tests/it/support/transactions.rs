//! Producer ids and transactions: InitProducerId (idempotent and
//! transactional, retrying CONCURRENT_TRANSACTIONS as clients do),
//! DescribeProducers, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
//! DescribeTransactions and ListTransactions, and the broker set-up the
//! transaction tests share.

use std::time::{Duration, Instant};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_producers_request::{
    DescribeProducersRequest, TopicRequest,
};
use kafka_protocol::messages::describe_producers_response::PartitionResponse;
use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    GroupId, InitProducerIdRequest, InitProducerIdResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TransactionalId, TxnOffsetCommitRequest,
};

use super::{find_coordinators, sb, tn, Broker, Client, E, NONE};

/// A broker with three partitions for each internal topic (fewer files
/// and coordinator loads than the default 50), plus `extra` overrides;
/// both internal topics exist (see [`find_coordinators`]).
pub fn txn_broker(extra: &[&str]) -> Broker {
    let b = txn_broker_without_internal_topics(extra);
    find_coordinators(&b);
    b
}

/// [`txn_broker`] before any client asked for a coordinator: neither
/// internal topic exists yet.
pub fn txn_broker_without_internal_topics(extra: &[&str]) -> Broker {
    let mut args = vec![
        "offsets.topic.num.partitions=3",
        "transaction.state.log.num.partitions=3",
    ];
    args.extend_from_slice(extra);
    Broker::start(&args)
}

fn txn_id(id: &str) -> TransactionalId {
    TransactionalId(sb(id))
}

/// InitProducerId with an optional transactional id, passing the current
/// producer id and epoch (-1 / -1 for none; sent from v3 on).
pub fn init_producer_id_request(
    transactional_id: Option<&str>,
    timeout_ms: i32,
    producer_id: i64,
    epoch: i16,
) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(txn_id))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}

/// InitProducerId at `version` for a new producer: the whole answer.
pub fn init_producer_id(
    c: &mut Client,
    version: i16,
    transactional_id: Option<&str>,
    timeout_ms: i32,
) -> InitProducerIdResponse {
    c.call(
        version,
        &init_producer_id_request(transactional_id, timeout_ms, -1, -1),
    )
}

/// A fresh idempotent producer (InitProducerId v4, no transactional id):
/// (producer id, epoch 0).
#[track_caller]
pub fn idempotent_producer(c: &mut Client) -> (i64, i16) {
    let r = init_producer_id(c, 4, None, 60_000);
    assert_eq!(r.error_code, NONE, "InitProducerId");
    assert_eq!(r.producer_epoch, 0, "InitProducerId epoch");
    assert!(
        r.producer_id.0 >= 0,
        "InitProducerId id {}",
        r.producer_id.0
    );
    (r.producer_id.0, r.producer_epoch)
}

/// DescribeProducers v0 of one topic's partitions: one answer per partition
/// asked for, in order.
pub fn describe_producers(
    c: &mut Client,
    topic: &str,
    partitions: &[i32],
) -> Vec<PartitionResponse> {
    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(tn(topic))
        .with_partition_indexes(partitions.to_vec())]);
    let r = c.call(0, &req);
    assert_eq!(r.topics.len(), 1, "DescribeProducers topics");
    assert_eq!(r.topics[0].name.0.as_str(), topic);
    let parts = r.topics[0].partitions.clone();
    assert_eq!(
        parts.len(),
        partitions.len(),
        "DescribeProducers partitions"
    );
    parts
}

/// InitProducerId v4 for `transactional_id`, retrying CONCURRENT_TRANSACTIONS
/// (which Kafka answers while it fences a previous producer) like every
/// client does. Returns (producer id, epoch, whether CONCURRENT_TRANSACTIONS
/// was seen).
#[track_caller]
pub fn init_txn_retrying(
    c: &mut Client,
    transactional_id: &str,
    timeout_ms: i32,
) -> (i64, i16, bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw_concurrent = false;
    loop {
        let r = init_producer_id(c, 4, Some(transactional_id), timeout_ms);
        if r.error_code == E::ConcurrentTransactions.code() && Instant::now() < deadline {
            saw_concurrent = true;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(r.error_code, NONE, "InitProducerId {transactional_id}");
        return (r.producer_id.0, r.producer_epoch, saw_concurrent);
    }
}

/// A transactional producer: (producer id, epoch).
#[track_caller]
pub fn init_txn(c: &mut Client, transactional_id: &str, timeout_ms: i32) -> (i64, i16) {
    let (pid, epoch, _) = init_txn_retrying(c, transactional_id, timeout_ms);
    (pid, epoch)
}

/// AddPartitionsToTxn (v3 and below layout): the error code of every
/// partition, in order.
pub fn add_partitions(
    c: &mut Client,
    version: i16,
    transactional_id: &str,
    pid: (i64, i16),
    parts: &[(&str, i32)],
) -> Vec<i16> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, p) in parts {
        match topics.iter_mut().find(|x| x.name.0.as_str() == *t) {
            Some(x) => x.partitions.push(*p),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(tn(t))
                    .with_partitions(vec![*p]),
            ),
        }
    }
    let r = c.call(
        version,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(transactional_id))
            .with_v3_and_below_producer_id(ProducerId(pid.0))
            .with_v3_and_below_producer_epoch(pid.1)
            .with_v3_and_below_topics(topics),
    );
    let mut out = Vec::new();
    for (t, p) in parts {
        let code = r
            .results_by_topic_v3_and_below
            .iter()
            .find(|x| x.name.0.as_str() == *t)
            .and_then(|x| {
                x.results_by_partition
                    .iter()
                    .find(|y| y.partition_index == *p)
            })
            .unwrap_or_else(|| panic!("AddPartitionsToTxn: no result for {t}-{p}"))
            .partition_error_code;
        out.push(code);
    }
    out
}

/// AddPartitionsToTxn v3, insisting on success for every partition.
#[track_caller]
pub fn add_partitions_ok(
    c: &mut Client,
    transactional_id: &str,
    pid: (i64, i16),
    parts: &[(&str, i32)],
) {
    let codes = add_partitions(c, 3, transactional_id, pid, parts);
    assert!(
        codes.iter().all(|&x| x == NONE),
        "AddPartitionsToTxn {transactional_id} {parts:?}: {codes:?}"
    );
}

/// AddOffsetsToTxn v3 of `group`, insisting on success.
#[track_caller]
pub fn add_offsets(c: &mut Client, transactional_id: &str, pid: (i64, i16), group: &str) {
    let r = c.call(
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn_id(transactional_id))
            .with_producer_id(ProducerId(pid.0))
            .with_producer_epoch(pid.1)
            .with_group_id(GroupId(sb(group))),
    );
    assert_eq!(r.error_code, NONE, "AddOffsetsToTxn");
}

pub fn end_txn_request(transactional_id: &str, pid: (i64, i16), commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(txn_id(transactional_id))
        .with_producer_id(ProducerId(pid.0))
        .with_producer_epoch(pid.1)
        .with_committed(commit)
}

/// EndTxn at `version`: its error code.
pub fn end_txn_v(
    c: &mut Client,
    version: i16,
    transactional_id: &str,
    pid: (i64, i16),
    commit: bool,
) -> i16 {
    c.call(version, &end_txn_request(transactional_id, pid, commit))
        .error_code
}

/// EndTxn v3, insisting on success.
#[track_caller]
pub fn end_txn(c: &mut Client, transactional_id: &str, pid: (i64, i16), commit: bool) {
    assert_eq!(
        end_txn_v(c, 3, transactional_id, pid, commit),
        NONE,
        "EndTxn {transactional_id} commit={commit}"
    );
}

/// A TxnOffsetCommit of (topic, partition, offset) triples (one request
/// topic each, metadata "meta"), outside any generation.
pub fn txn_offset_commit_request(
    transactional_id: &str,
    pid: (i64, i16),
    group: &str,
    parts: &[(&str, i32, i64)],
) -> TxnOffsetCommitRequest {
    let topics = parts
        .iter()
        .map(|(t, p, o)| {
            TxnOffsetCommitRequestTopic::default()
                .with_name(tn(t))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)
                    .with_committed_metadata(Some(sb("meta")))])
        })
        .collect();
    TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id(transactional_id))
        .with_group_id(GroupId(sb(group)))
        .with_producer_id(ProducerId(pid.0))
        .with_producer_epoch(pid.1)
        .with_topics(topics)
}

/// TxnOffsetCommit at `version` (up to 5) of (topic, partition, offset)
/// triples, as [`txn_offset_commit_request`]: the error code of every
/// partition.
pub fn txn_offset_commit(
    c: &mut Client,
    version: i16,
    transactional_id: &str,
    pid: (i64, i16),
    group: &str,
    parts: &[(&str, i32, i64)],
) -> Vec<i16> {
    let r = c.call(
        version,
        &txn_offset_commit_request(transactional_id, pid, group, parts),
    );
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// TxnOffsetCommit v6 (KIP-1319: topics by id) of (topic id, partition,
/// offset) triples, one request topic each, as `member` (generation or
/// member epoch, member id): per answered topic its id and (partition,
/// error code).
pub fn txn_offset_commit_v6(
    c: &mut Client,
    transactional_id: &str,
    pid: (i64, i16),
    group: &str,
    member: (i32, &str),
    parts: &[(uuid::Uuid, i32, i64)],
) -> Vec<(uuid::Uuid, Vec<(i32, i16)>)> {
    use kastle::protocol::offsets_by_id::{write_txn_offset_commit, TxnOffsetCommitResponseV6};
    let named: Vec<(&str, i32, i64)> = parts.iter().map(|(_, p, o)| ("", *p, *o)).collect();
    let req = txn_offset_commit_request(transactional_id, pid, group, &named)
        .with_generation_id(member.0)
        .with_member_id(sb(member.1));
    let ids: Vec<uuid::Uuid> = parts.iter().map(|(id, _, _)| *id).collect();
    let corr = c.next_corr();
    c.send(28, 6, corr, &write_txn_offset_commit(&req, &ids));
    let (got, resp) = c.recv(28, 6);
    assert_eq!(got, corr, "correlation id");
    TxnOffsetCommitResponseV6::decode(&resp)
        .expect("a TxnOffsetCommit v6 response")
        .topics
}

/// DescribeTransactions v0 of one transactional id.
pub fn describe_txn(c: &mut Client, transactional_id: &str) -> TransactionState {
    let mut r = c.call(
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![txn_id(transactional_id)]),
    );
    assert_eq!(r.transaction_states.len(), 1);
    r.transaction_states.remove(0)
}

/// Polls DescribeTransactions every 50 ms until `transactional_id` is in
/// `state`; panics after `within`.
#[track_caller]
pub fn wait_txn_state(
    c: &mut Client,
    transactional_id: &str,
    state: &str,
    within: Duration,
) -> TransactionState {
    let deadline = Instant::now() + within;
    loop {
        let d = describe_txn(c, transactional_id);
        assert_eq!(
            d.error_code, NONE,
            "DescribeTransactions {transactional_id}"
        );
        if d.transaction_state.as_str() == state {
            return d;
        }
        if Instant::now() > deadline {
            panic!(
                "{transactional_id}: still {} after {within:?}, expected {state} ({d:?})",
                d.transaction_state
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ListTransactions with state, producer id and (v1) duration filters,
/// insisting on no error.
#[track_caller]
pub fn list_txns(
    c: &mut Client,
    version: i16,
    states: &[&str],
    pids: &[i64],
    duration: i64,
) -> ListTransactionsResponse {
    let r = c.call(
        version,
        &ListTransactionsRequest::default()
            .with_state_filters(states.iter().map(|s| sb(s)).collect())
            .with_producer_id_filters(pids.iter().map(|p| ProducerId(*p)).collect())
            .with_duration_filter(duration),
    );
    assert_eq!(r.error_code, NONE, "ListTransactions");
    r
}
