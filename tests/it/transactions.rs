//! Kafka transactions over the raw protocol, checked against Apache Kafka
//! 4.x (transaction version 1: Produce ≤ v11, EndTxn ≤ v4): InitProducerId
//! with a transactional id, AddPartitionsToTxn, transactional produce and
//! its KIP-890 verification, EndTxn markers, read_committed Fetch (last
//! stable offset, aborted transactions) and ListOffsets isolation, fencing,
//! the timeout abort, recovery after kill -9, DescribeTransactions and
//! ListTransactions.

use std::time::{Duration, Instant};

use crate::support::fetch::*;
use crate::support::produce::{
    produce_err, produce_ok, produce_request, produce_txn_err, produce_txn_ok, single_partition,
};
use crate::support::topics::create_topic;
use crate::support::transactions::*;
use crate::support::*;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn aborted_of(p: &PartitionData) -> Option<Vec<(i64, i64)>> {
    p.aborted_transactions.as_ref().map(|v| {
        v.iter()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect()
    })
}

/// (base offset, record count, transactional, control type or -1, producer id, epoch)
fn summary(batches: &[Vec<u8>]) -> Vec<(i64, i32, bool, i16, i64, i16)> {
    batches
        .iter()
        .map(|b| {
            let (pid, epoch, _) = batch_producer(b);
            (
                batch_base_offset(b),
                batch_record_count(b),
                is_transactional(b),
                if is_control(b) { control_type(b) } else { -1 },
                pid,
                epoch,
            )
        })
        .collect()
}

fn listed(r: &ListTransactionsResponse) -> Vec<(String, i64, String)> {
    let mut v: Vec<_> = r
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.0.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// InitProducerId
// ---------------------------------------------------------------------------

#[test]
fn init_producer_id_with_transactional_id() {
    let b = txn_broker(&["transaction.max.timeout.ms=60000"]);
    let mut c = b.client();
    let r0 = init_producer_id(&mut c, 4, Some("tx-init"), 30_000);
    assert_eq!(r0.error_code, NONE);
    assert_eq!(r0.producer_epoch, 0, "first InitProducerId epoch");
    assert!(r0.producer_id.0 >= 0);
    let r1 = init_producer_id(&mut c, 4, Some("tx-init"), 30_000);
    assert_eq!(r1.error_code, NONE);
    assert_eq!(
        (r1.producer_id.0, r1.producer_epoch),
        (r0.producer_id.0, 1),
        "second InitProducerId: same id, epoch bumped"
    );
    // Another transactional id gets another producer id.
    let r2 = init_producer_id(&mut c, 4, Some("tx-init-2"), 30_000);
    assert_eq!(r2.error_code, NONE);
    assert_ne!(r2.producer_id.0, r0.producer_id.0);
    assert_eq!(r2.producer_epoch, 0);

    // Above transaction.max.timeout.ms, and non-positive: INVALID_TRANSACTION_TIMEOUT.
    for t in [60_001, 0, -5] {
        let r = init_producer_id(&mut c, 4, Some("tx-init"), t);
        assert_eq!(
            r.error_code,
            E::InvalidTransactionTimeout.code(),
            "timeout {t}"
        );
        assert_eq!((r.producer_id.0, r.producer_epoch), (-1, -1), "timeout {t}");
    }
    // Exactly the maximum is fine, and the failures above did not bump the epoch.
    let r = init_producer_id(&mut c, 4, Some("tx-init"), 60_000);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.producer_epoch, 2);

    // An empty transactional id: INVALID_REQUEST.
    let r = init_producer_id(&mut c, 4, Some(""), 30_000);
    assert_eq!(
        r.error_code,
        E::InvalidRequest.code(),
        "empty transactional id"
    );

    // The state: Empty, with the last epoch and timeout.
    let d = describe_txn(&mut c, "tx-init");
    assert_eq!(d.error_code, NONE);
    assert_eq!(d.transaction_state.as_str(), "Empty");
    assert_eq!((d.producer_id.0, d.producer_epoch), (r0.producer_id.0, 2));
    assert_eq!(d.transaction_timeout_ms, 60_000);
    assert!(d.topics.is_empty());
}

// ---------------------------------------------------------------------------
// Commit, abort, LSO, isolation
// ---------------------------------------------------------------------------

#[test]
fn commit_abort_and_read_committed_fetch() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "t", 1, &[]);
    // Two plain records first, so the LSO of the open transaction is not 0.
    assert_eq!(
        produce_ok(&mut c, "t", 0, &simple_batch(2, 10, now_ms(), 1)),
        0
    );

    let pid = init_txn(&mut c, "tx-c", 60_000);
    add_partitions_ok(&mut c, "tx-c", pid, &[("t", 0)]);
    let d = describe_txn(&mut c, "tx-c");
    assert_eq!(d.transaction_state.as_str(), "Ongoing");
    assert_eq!(d.topics.len(), 1);
    assert_eq!(d.topics[0].topic.0.as_str(), "t");
    assert_eq!(d.topics[0].partitions, vec![0]);
    assert!(d.transaction_start_time_ms > 0);

    let t1 = txn_batch(pid, 0, 3, "c1");
    assert_eq!(produce_txn_ok(&mut c, "tx-c", "t", 0, &t1), 2);

    // Open transaction: LSO = 2 (its first offset), HW = 5.
    let rc = fetch_isolated(&mut c, "t", 0, 0, READ_COMMITTED);
    assert_eq!(rc.high_watermark, 5);
    assert_eq!(rc.last_stable_offset, 2, "LSO while a transaction is open");
    assert_eq!(
        summary(&batches_of(&rc)),
        vec![(0, 2, false, -1, -1, -1)],
        "read_committed stops at the LSO"
    );
    assert_eq!(aborted_of(&rc), Some(vec![]));
    // Fetching at the LSO: nothing yet.
    let rc = fetch_isolated(&mut c, "t", 0, 2, READ_COMMITTED);
    assert!(batches_of(&rc).is_empty(), "read_committed at the LSO");
    assert_eq!(rc.last_stable_offset, 2);
    // read_uncommitted sees the open transaction and has null aborted transactions.
    let ru = fetch_isolated(&mut c, "t", 0, 0, READ_UNCOMMITTED);
    assert_eq!(ru.high_watermark, 5);
    assert_eq!(ru.last_stable_offset, 2);
    assert_eq!(batches_of(&ru).len(), 2);
    assert_eq!(
        aborted_of(&ru),
        None,
        "read_uncommitted aborted_transactions"
    );
    assert_eq!(
        latest_isolated(&mut c, "t", 0, READ_COMMITTED),
        2,
        "ListOffsets latest, read_committed"
    );
    assert_eq!(
        latest_isolated(&mut c, "t", 0, READ_UNCOMMITTED),
        5,
        "ListOffsets latest, read_uncommitted"
    );

    // A second batch in the same transaction, then commit.
    let t2 = txn_batch(pid, 3, 2, "c2");
    assert_eq!(produce_txn_ok(&mut c, "tx-c", "t", 0, &t2), 5);
    end_txn(&mut c, "tx-c", pid, true);
    assert_eq!(
        describe_txn(&mut c, "tx-c").transaction_state.as_str(),
        "CompleteCommit"
    );

    let rc = fetch_isolated(&mut c, "t", 0, 0, READ_COMMITTED);
    assert_eq!(rc.high_watermark, 8);
    assert_eq!(rc.last_stable_offset, 8, "LSO after commit");
    assert_eq!(
        summary(&batches_of(&rc)),
        vec![
            (0, 2, false, -1, -1, -1),
            (2, 3, true, -1, pid.0, pid.1),
            (5, 2, true, -1, pid.0, pid.1),
            (7, 1, true, COMMIT, pid.0, pid.1),
        ]
    );
    assert_eq!(
        aborted_of(&rc),
        Some(vec![]),
        "committed: no aborted transactions"
    );
    assert_eq!(latest_isolated(&mut c, "t", 0, READ_COMMITTED), 8);
    assert_eq!(latest_isolated(&mut c, "t", 0, READ_UNCOMMITTED), 8);
    // A retried commit is answered with success; an abort now is not.
    assert_eq!(
        end_txn_v(&mut c, 3, "tx-c", pid, true),
        NONE,
        "retried EndTxn commit"
    );
    assert_eq!(
        end_txn_v(&mut c, 3, "tx-c", pid, false),
        E::InvalidTxnState.code(),
        "abort after commit"
    );

    // Second transaction of the same producer (sequences continue): abort it.
    add_partitions_ok(&mut c, "tx-c", pid, &[("t", 0)]);
    let t3 = txn_batch(pid, 5, 4, "a1");
    assert_eq!(produce_txn_ok(&mut c, "tx-c", "t", 0, &t3), 8);
    assert_eq!(latest_isolated(&mut c, "t", 0, READ_COMMITTED), 8);
    end_txn(&mut c, "tx-c", pid, false);
    assert_eq!(
        describe_txn(&mut c, "tx-c").transaction_state.as_str(),
        "CompleteAbort"
    );

    let rc = fetch_isolated(&mut c, "t", 0, 0, READ_COMMITTED);
    assert_eq!((rc.high_watermark, rc.last_stable_offset), (13, 13));
    let s = summary(&batches_of(&rc));
    assert_eq!(s.len(), 6);
    assert_eq!(
        s[4],
        (8, 4, true, -1, pid.0, pid.1),
        "aborted data is returned"
    );
    assert_eq!(s[5], (12, 1, true, ABORT, pid.0, pid.1), "ABORT marker");
    assert_eq!(
        aborted_of(&rc),
        Some(vec![(pid.0, 8)]),
        "aborted_transactions lists the aborted transaction"
    );
    // From inside the aborted transaction, too.
    let rc = fetch_isolated(&mut c, "t", 0, 10, READ_COMMITTED);
    assert_eq!(aborted_of(&rc), Some(vec![(pid.0, 8)]));
    // Fetching past it: not listed.
    let rc = fetch_isolated(&mut c, "t", 0, 13, READ_COMMITTED);
    assert_eq!(aborted_of(&rc), Some(vec![]));
    let ru = fetch_isolated(&mut c, "t", 0, 0, READ_UNCOMMITTED);
    assert_eq!(aborted_of(&ru), None);
    assert_eq!(batches_of(&ru).len(), 6);

    // Non-transactional data after the transactions is committed data.
    assert_eq!(
        produce_ok(&mut c, "t", 0, &simple_batch(1, 5, now_ms(), 2)),
        13
    );
    assert_eq!(latest_isolated(&mut c, "t", 0, READ_COMMITTED), 14);
}

#[test]
fn lso_is_the_first_offset_of_the_earliest_open_transaction() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "m", 1, &[]);
    let a = init_txn(&mut c, "tx-a", 60_000);
    let bb = init_txn(&mut c, "tx-b", 60_000);
    add_partitions_ok(&mut c, "tx-a", a, &[("m", 0)]);
    add_partitions_ok(&mut c, "tx-b", bb, &[("m", 0)]);
    assert_eq!(
        produce_txn_ok(&mut c, "tx-a", "m", 0, &txn_batch(a, 0, 2, "a")),
        0
    );
    assert_eq!(
        produce_txn_ok(&mut c, "tx-b", "m", 0, &txn_batch(bb, 0, 2, "b")),
        2
    );
    assert_eq!(
        produce_txn_ok(&mut c, "tx-a", "m", 0, &txn_batch(a, 2, 1, "a2")),
        4
    );
    assert_eq!(latest_isolated(&mut c, "m", 0, READ_COMMITTED), 0);
    // B commits first: A still holds the LSO at 0.
    end_txn(&mut c, "tx-b", bb, true);
    assert_eq!(latest_isolated(&mut c, "m", 0, READ_COMMITTED), 0);
    let rc = fetch_isolated(&mut c, "m", 0, 0, READ_COMMITTED);
    assert_eq!((rc.last_stable_offset, rc.high_watermark), (0, 6));
    assert!(batches_of(&rc).is_empty());
    // A aborts: everything is stable.
    end_txn(&mut c, "tx-a", a, false);
    let rc = fetch_isolated(&mut c, "m", 0, 0, READ_COMMITTED);
    assert_eq!((rc.last_stable_offset, rc.high_watermark), (7, 7));
    assert_eq!(aborted_of(&rc), Some(vec![(a.0, 0)]));
    assert_eq!(
        summary(&batches_of(&rc))
            .iter()
            .map(|s| (s.0, s.3, s.4))
            .collect::<Vec<_>>(),
        vec![
            (0, -1, a.0),
            (2, -1, bb.0),
            (4, -1, a.0),
            (5, COMMIT, bb.0),
            (6, ABORT, a.0)
        ]
    );
}

// ---------------------------------------------------------------------------
// Produce verification
// ---------------------------------------------------------------------------

#[test]
fn transactional_produce_requires_the_partition_in_the_transaction() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "v", 2, &[]);
    let pid = init_txn(&mut c, "tx-v", 60_000);

    // No transaction open at all.
    produce_txn_err(
        &mut c,
        "tx-v",
        "v",
        0,
        &txn_batch(pid, 0, 1, "x"),
        E::InvalidTxnState.code(),
        "no txn",
    );
    assert_eq!(
        latest_isolated(&mut c, "v", 0, READ_UNCOMMITTED),
        0,
        "nothing appended"
    );

    add_partitions_ok(&mut c, "tx-v", pid, &[("v", 0)]);
    // Partition 1 was not added.
    produce_txn_err(
        &mut c,
        "tx-v",
        "v",
        1,
        &txn_batch(pid, 0, 1, "x"),
        E::InvalidTxnState.code(),
        "partition not added",
    );
    assert_eq!(
        latest_isolated(&mut c, "v", 1, READ_UNCOMMITTED),
        0,
        "nothing appended to v-1"
    );

    // Partition 0 was.
    assert_eq!(
        produce_txn_ok(&mut c, "tx-v", "v", 0, &txn_batch(pid, 0, 2, "ok")),
        0
    );
    // A non-transactional batch of the same producer while its transaction
    // is open on the partition: INVALID_TXN_STATE.
    produce_err(
        &mut c,
        "v",
        0,
        &producer_batch(pid.0, pid.1, 2, 1, now_ms(), "plain"),
        E::InvalidTxnState.code(),
        "non-transactional write inside an open transaction",
    );
    assert_eq!(
        latest_isolated(&mut c, "v", 0, READ_UNCOMMITTED),
        2,
        "nothing appended"
    );
    // The transaction continues normally.
    assert_eq!(
        produce_txn_ok(&mut c, "tx-v", "v", 0, &txn_batch(pid, 2, 1, "ok2")),
        2
    );
    end_txn(&mut c, "tx-v", pid, true);
    // After the commit the partition is no longer part of a transaction.
    produce_txn_err(
        &mut c,
        "tx-v",
        "v",
        0,
        &txn_batch(pid, 3, 1, "late"),
        E::InvalidTxnState.code(),
        "after commit",
    );
    assert_eq!(latest_isolated(&mut c, "v", 0, READ_UNCOMMITTED), 4);

    // AddPartitionsToTxn of an unknown partition fails the whole request.
    let codes = add_partitions(&mut c, 3, "tx-v", pid, &[("v", 1), ("v", 7)]);
    assert_eq!(
        codes,
        vec![
            E::OperationNotAttempted.code(),
            E::UnknownTopicOrPartition.code()
        ]
    );
    assert_eq!(
        describe_txn(&mut c, "tx-v").transaction_state.as_str(),
        "CompleteCommit"
    );
    // Unknown transactional id / wrong producer id.
    let codes = add_partitions(&mut c, 3, "tx-nope", pid, &[("v", 1)]);
    assert_eq!(codes, vec![E::InvalidProducerIdMapping.code()]);
    let codes = add_partitions(&mut c, 3, "tx-v", (pid.0 + 1000, pid.1), &[("v", 1)]);
    assert_eq!(codes, vec![E::InvalidProducerIdMapping.code()]);
}

/// A transactional batch needs the request's transactional id: Kafka
/// refuses the whole request with TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
/// with or without an authorizer (`hasTransactionalRecords`).
#[test]
fn transactional_batch_without_a_transactional_id_is_refused() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "n", 1, &[]);
    let pid = init_txn(&mut c, "tx-n", 60_000);
    add_partitions_ok(&mut c, "tx-n", pid, &[("n", 0)]);
    produce_err(
        &mut c,
        "n",
        0,
        &txn_batch(pid, 0, 1, "x"),
        E::TransactionalIdAuthorizationFailed.code(),
        "no transactional id",
    );
    assert_eq!(latest_isolated(&mut c, "n", 0, READ_UNCOMMITTED), 0);
    let with_id = produce_txn_ok(&mut c, "tx-n", "n", 0, &txn_batch(pid, 0, 1, "x"));
    assert_eq!(with_id, 0);
}

/// KIP-890 verification of a transactional Produce, answered as Kafka 4.4
/// answers it (ReplicaManager's translation of the coordinator's verdict),
/// with log start offset -1: a partition not in the transaction is
/// TRANSACTION_ABORTABLE from v11 (INVALID_TXN_STATE with Kafka's message
/// before); a producer id that is not the transactional id's
/// INVALID_PRODUCER_ID_MAPPING; an epoch other than the current one
/// INVALID_PRODUCER_EPOCH.
#[test]
fn transactional_produce_verification_by_version() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "pv", 2, &[]);
    let pid = init_txn(&mut c, "tx-pv", 60_000);
    add_partitions_ok(&mut c, "tx-pv", pid, &[("pv", 0)]);
    let send = |c: &mut Client, version: i16, txn_id: &str, partition: i32, records: &[u8]| {
        let req = produce_request("pv", partition, -1, records)
            .with_transactional_id(Some(TransactionalId(sb(txn_id))));
        single_partition(c.call(version, &req))
    };
    let answer = |r: &produce_response::PartitionProduceResponse| {
        (
            r.error_code,
            r.base_offset,
            r.log_start_offset,
            r.error_message.as_ref().map(|m| m.to_string()),
        )
    };
    let not_added = txn_batch(pid, 0, 1, "x");
    for v in [3, 9, 10] {
        // The message field exists from v8.
        let message = (v >= 8).then(|| "Partition was not added to the transaction".to_string());
        assert_eq!(
            answer(&send(&mut c, v, "tx-pv", 1, &not_added)),
            (E::InvalidTxnState.code(), -1, -1, message),
            "v{v}, partition not added"
        );
    }
    assert_eq!(
        answer(&send(&mut c, 11, "tx-pv", 1, &not_added)),
        (E::TransactionAbortable.code(), -1, -1, None),
        "v11, partition not added"
    );
    for v in [9, 11] {
        assert_eq!(
            answer(&send(
                &mut c,
                v,
                "tx-pv",
                0,
                &txn_batch((pid.0, pid.1 + 1), 0, 1, "ahead")
            )),
            (E::InvalidProducerEpoch.code(), -1, -1, None),
            "v{v}, an epoch ahead of the coordinator's"
        );
        assert_eq!(
            answer(&send(&mut c, v, "tx-other", 0, &txn_batch(pid, 0, 1, "x"))),
            (E::InvalidProducerIdMapping.code(), -1, -1, None),
            "v{v}, another transactional id"
        );
        assert_eq!(
            answer(&send(
                &mut c,
                v,
                "tx-pv",
                0,
                &txn_batch((pid.0 + 100, pid.1), 0, 1, "x")
            )),
            (E::InvalidProducerIdMapping.code(), -1, -1, None),
            "v{v}, another producer id"
        );
    }
    assert_eq!(latest_isolated(&mut c, "pv", 0, READ_UNCOMMITTED), 0);
    assert_eq!(latest_isolated(&mut c, "pv", 1, READ_UNCOMMITTED), 0);
    // The partition that was added takes the batch at every version.
    let r = send(&mut c, 11, "tx-pv", 0, &txn_batch(pid, 0, 2, "ok"));
    assert_eq!((r.error_code, r.base_offset), (NONE, 0));
}

/// The OUT_OF_ORDER_SEQUENCE_NUMBER loop KIP-890 verification must not
/// cause, as Kafka 4.4 prevents it (its `VerificationStateEntry` keeps the
/// lowest sequence it has seen): a producer's first batch (sequence 0)
/// fails verification, the next in-flight batch (sequence 1) is verified a
/// moment later; it is refused OUT_OF_ORDER_SEQUENCE_NUMBER while the first
/// is not written, so the retried first batch lands, then the second.
/// Without that, the second landed (a producer with no state here starts
/// anywhere) and every retry of the first was out of order.
#[test]
fn a_batch_that_failed_verification_lands_before_the_next_one() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "sq", 1, &[]);
    let pid = init_txn(&mut c, "tx-sq", 60_000);
    // Sequence 0 before the partition is in the transaction: its
    // verification fails.
    produce_txn_err(
        &mut c,
        "tx-sq",
        "sq",
        0,
        &txn_batch(pid, 0, 2, "first"),
        E::InvalidTxnState.code(),
        "sequence 0, partition not added yet",
    );
    add_partitions_ok(&mut c, "tx-sq", pid, &[("sq", 0)]);
    // Sequence 2 is verified, but may not overtake sequence 0 (at v9 and
    // v11, which answer a failed verification differently).
    for v in [9, 11] {
        let req = produce_request("sq", 0, -1, &txn_batch(pid, 2, 1, "second"))
            .with_transactional_id(Some(TransactionalId(sb("tx-sq"))));
        let r = single_partition(c.call(v, &req));
        assert_eq!(
            (r.error_code, r.base_offset),
            (E::OutOfOrderSequenceNumber.code(), -1),
            "v{v}: sequence 2 ahead of the unwritten sequence 0"
        );
    }
    assert_eq!(
        latest_isolated(&mut c, "sq", 0, READ_UNCOMMITTED),
        0,
        "nothing appended"
    );
    // The retried first batch lands, then the second, in order.
    assert_eq!(
        produce_txn_ok(&mut c, "tx-sq", "sq", 0, &txn_batch(pid, 0, 2, "first")),
        0
    );
    assert_eq!(
        produce_txn_ok(&mut c, "tx-sq", "sq", 0, &txn_batch(pid, 2, 1, "second")),
        2
    );
    end_txn(&mut c, "tx-sq", pid, true);
    let sequences: Vec<(i32, bool)> = fetch_all_batches(&mut c, "sq", 0, 0)
        .iter()
        .map(|b| (batch_producer(b).2, is_control(b)))
        .collect();
    assert_eq!(sequences, vec![(0, false), (2, false), (-1, true)]);
}

// ---------------------------------------------------------------------------
// Fencing
// ---------------------------------------------------------------------------

#[test]
fn second_producer_fences_and_aborts_the_first() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "f", 1, &[]);
    let old = init_txn(&mut c, "tx-f", 60_000);
    assert_eq!(old.1, 0);
    add_partitions_ok(&mut c, "tx-f", old, &[("f", 0)]);
    assert_eq!(
        produce_txn_ok(&mut c, "tx-f", "f", 0, &txn_batch(old, 0, 3, "old")),
        0
    );

    // A new incarnation: Kafka fences (epoch 1), aborts the open transaction,
    // answers CONCURRENT_TRANSACTIONS, and the retry gets epoch 2.
    // The first answer is CONCURRENT_TRANSACTIONS, never an epoch.
    let first = init_producer_id(&mut c, 4, Some("tx-f"), 60_000);
    assert_eq!(
        (first.error_code, first.producer_id.0, first.producer_epoch),
        (E::ConcurrentTransactions.code(), -1, -1),
        "InitProducerId while a transaction is Ongoing"
    );
    let (npid, nepoch, _) = init_txn_retrying(&mut c, "tx-f", 60_000);
    assert_eq!(npid, old.0, "same producer id");
    assert_eq!(
        nepoch, 2,
        "epoch after fencing (bumped for the abort, then for the new producer)"
    );
    let new = (npid, nepoch);

    // The open transaction was aborted with an ABORT marker at the fenced epoch.
    let ru = fetch_isolated(&mut c, "f", 0, 0, READ_UNCOMMITTED);
    assert_eq!(
        summary(&batches_of(&ru)),
        vec![(0, 3, true, -1, old.0, 0), (3, 1, true, ABORT, old.0, 1)]
    );
    let rc = fetch_isolated(&mut c, "f", 0, 0, READ_COMMITTED);
    assert_eq!(rc.last_stable_offset, 4);
    assert_eq!(aborted_of(&rc), Some(vec![(old.0, 0)]));

    // The old producer is fenced everywhere.
    produce_txn_err(
        &mut c,
        "tx-f",
        "f",
        0,
        &txn_batch(old, 3, 1, "zombie"),
        E::InvalidProducerEpoch.code(),
        "old produce",
    );
    assert_eq!(
        end_txn_v(&mut c, 3, "tx-f", old, true),
        E::ProducerFenced.code(),
        "old EndTxn v3"
    );
    assert_eq!(
        end_txn_v(&mut c, 2, "tx-f", old, false),
        E::ProducerFenced.code(),
        "old EndTxn v2"
    );
    assert_eq!(
        end_txn_v(&mut c, 1, "tx-f", old, true),
        E::InvalidProducerEpoch.code(),
        "old EndTxn v1"
    );
    assert_eq!(
        add_partitions(&mut c, 3, "tx-f", old, &[("f", 0)]),
        vec![E::ProducerFenced.code()],
        "old AddPartitionsToTxn v3"
    );
    assert_eq!(
        add_partitions(&mut c, 1, "tx-f", old, &[("f", 0)]),
        vec![E::InvalidProducerEpoch.code()],
        "old AddPartitionsToTxn v1"
    );
    assert_eq!(
        latest_isolated(&mut c, "f", 0, READ_UNCOMMITTED),
        4,
        "nothing appended by the zombie"
    );

    // The new producer works.
    add_partitions_ok(&mut c, "tx-f", new, &[("f", 0)]);
    assert_eq!(
        produce_txn_ok(&mut c, "tx-f", "f", 0, &txn_batch(new, 0, 2, "new")),
        4
    );
    end_txn(&mut c, "tx-f", new, true);
    let rc = fetch_isolated(&mut c, "f", 0, 0, READ_COMMITTED);
    assert_eq!(rc.last_stable_offset, 7);
    assert_eq!(aborted_of(&rc), Some(vec![(old.0, 0)]));
    assert_eq!(summary(&batches_of(&rc))[3], (6, 1, true, COMMIT, new.0, 2));
}

// ---------------------------------------------------------------------------
// Timeout
// ---------------------------------------------------------------------------

#[test]
fn timed_out_transaction_is_aborted() {
    let b = txn_broker(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]);
    let mut c = b.client();
    create_topic(&mut c, "to", 1, &[]);
    let pid = init_txn(&mut c, "tx-to", 1_000);
    add_partitions_ok(&mut c, "tx-to", pid, &[("to", 0)]);
    assert_eq!(
        produce_txn_ok(&mut c, "tx-to", "to", 0, &txn_batch(pid, 0, 5, "late")),
        0
    );
    assert_eq!(latest_isolated(&mut c, "to", 0, READ_COMMITTED), 0);
    let l = list_txns(&mut c, 0, &["Ongoing"], &[], -1);
    assert_eq!(
        listed(&l),
        vec![("tx-to".to_string(), pid.0, "Ongoing".to_string())]
    );

    let t0 = Instant::now();
    let d = wait_txn_state(&mut c, "tx-to", "CompleteAbort", Duration::from_secs(6));
    eprintln!("aborted after {:?}", t0.elapsed());
    assert_eq!(
        (d.producer_id.0, d.producer_epoch),
        (pid.0, 1),
        "epoch bumped by the timeout abort"
    );
    assert!(d.topics.is_empty());

    let rc = fetch_isolated(&mut c, "to", 0, 0, READ_COMMITTED);
    assert_eq!((rc.last_stable_offset, rc.high_watermark), (6, 6));
    assert_eq!(aborted_of(&rc), Some(vec![(pid.0, 0)]));
    assert_eq!(summary(&batches_of(&rc))[1], (5, 1, true, ABORT, pid.0, 1));
    assert_eq!(latest_isolated(&mut c, "to", 0, READ_COMMITTED), 6);

    let l = list_txns(&mut c, 0, &[], &[], -1);
    assert_eq!(
        listed(&l),
        vec![("tx-to".to_string(), pid.0, "CompleteAbort".to_string())]
    );
    let l = list_txns(&mut c, 0, &["CompleteAbort"], &[pid.0], -1);
    assert_eq!(listed(&l).len(), 1);

    // The timed-out producer is fenced.
    produce_txn_err(
        &mut c,
        "tx-to",
        "to",
        0,
        &txn_batch(pid, 5, 1, "zombie"),
        E::InvalidProducerEpoch.code(),
        "zombie produce",
    );
    assert_eq!(
        end_txn_v(&mut c, 3, "tx-to", pid, true),
        E::ProducerFenced.code(),
        "zombie EndTxn"
    );
    // A new InitProducerId continues from the bumped epoch.
    assert_eq!(init_txn(&mut c, "tx-to", 1_000), (pid.0, 2));
}

// ---------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------

#[test]
fn transactions_survive_kill_9() {
    // No timeout abort before the first kill (a check every hour); every
    // 200 ms after the restart.
    let mut b =
        txn_broker(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=3600000"]);
    let mut c = b.client();
    create_topic(&mut c, "r", 3, &[]);
    // A committed transaction on r-0.
    let cp = init_txn(&mut c, "tx-committed", 60_000);
    add_partitions_ok(&mut c, "tx-committed", cp, &[("r", 0)]);
    assert_eq!(
        produce_txn_ok(&mut c, "tx-committed", "r", 0, &txn_batch(cp, 0, 3, "c")),
        0
    );
    end_txn(&mut c, "tx-committed", cp, true);
    // An aborted one on r-0.
    add_partitions_ok(&mut c, "tx-committed", cp, &[("r", 0)]);
    assert_eq!(
        produce_txn_ok(&mut c, "tx-committed", "r", 0, &txn_batch(cp, 3, 2, "a")),
        4
    );
    end_txn(&mut c, "tx-committed", cp, false);
    // An open one on r-1 whose timeout (10 minutes) cannot pass during the
    // test, however slow the restart.
    let op = init_txn(&mut c, "tx-open", 600_000);
    add_partitions_ok(&mut c, "tx-open", op, &[("r", 1)]);
    assert_eq!(
        produce_txn_ok(&mut c, "tx-open", "r", 1, &txn_batch(op, 0, 4, "o")),
        0
    );
    // An open one on r-2 whose timeout (1 s) passes while the broker is down
    // or soon after: only the restarted broker can abort it.
    let ep = init_txn(&mut c, "tx-expiring", 1_000);
    add_partitions_ok(&mut c, "tx-expiring", ep, &[("r", 2)]);
    assert_eq!(
        produce_txn_ok(&mut c, "tx-expiring", "r", 2, &txn_batch(ep, 0, 2, "e")),
        0
    );
    assert_eq!(
        describe_txn(&mut c, "tx-expiring")
            .transaction_state
            .as_str(),
        "Ongoing",
        "before the kill"
    );

    b.kill();
    b.restart_with(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]);
    let mut c = b.client();

    // Committed and aborted stay so.
    let d = describe_txn(&mut c, "tx-committed");
    assert_eq!(d.transaction_state.as_str(), "CompleteAbort");
    assert_eq!((d.producer_id.0, d.producer_epoch), cp);
    let rc = fetch_isolated(&mut c, "r", 0, 0, READ_COMMITTED);
    assert_eq!(
        (rc.last_stable_offset, rc.high_watermark),
        (7, 7),
        "r-0 LSO = HW after restart"
    );
    assert_eq!(aborted_of(&rc), Some(vec![(cp.0, 4)]));
    assert_eq!(
        summary(&batches_of(&rc))
            .iter()
            .map(|s| (s.0, s.3))
            .collect::<Vec<_>>(),
        vec![(0, -1), (3, COMMIT), (4, -1), (6, ABORT)]
    );
    assert_eq!(latest_isolated(&mut c, "r", 0, READ_COMMITTED), 7);

    // The open transaction is still open.
    let d = describe_txn(&mut c, "tx-open");
    assert_eq!(d.error_code, NONE);
    assert_eq!(
        d.transaction_state.as_str(),
        "Ongoing",
        "open transaction after restart"
    );
    assert_eq!((d.producer_id.0, d.producer_epoch), op);
    assert_eq!(d.topics.len(), 1);
    assert_eq!(d.topics[0].partitions, vec![1]);
    let rc = fetch_isolated(&mut c, "r", 1, 0, READ_COMMITTED);
    assert_eq!(
        (rc.last_stable_offset, rc.high_watermark),
        (0, 4),
        "r-1 LSO after restart"
    );
    assert!(batches_of(&rc).is_empty());
    assert_eq!(latest_isolated(&mut c, "r", 1, READ_COMMITTED), 0);
    // Its producer may continue after the restart.
    assert_eq!(
        produce_txn_ok(&mut c, "tx-open", "r", 1, &txn_batch(op, 4, 1, "o2")),
        4
    );

    // The expiring one is aborted by its timeout, with a bumped epoch.
    let d = wait_txn_state(
        &mut c,
        "tx-expiring",
        "CompleteAbort",
        Duration::from_secs(10),
    );
    assert_eq!((d.producer_id.0, d.producer_epoch), (ep.0, ep.1 + 1));
    let rc = fetch_isolated(&mut c, "r", 2, 0, READ_COMMITTED);
    assert_eq!((rc.last_stable_offset, rc.high_watermark), (3, 3));
    assert_eq!(aborted_of(&rc), Some(vec![(ep.0, 0)]));
    assert_eq!(
        summary(&batches_of(&rc))[1],
        (2, 1, true, ABORT, ep.0, ep.1 + 1)
    );
    // The open one is still open (its own timeout is far away).
    assert_eq!(
        describe_txn(&mut c, "tx-open").transaction_state.as_str(),
        "Ongoing"
    );

    // A new producer for tx-open fences it: CONCURRENT_TRANSACTIONS while
    // its transaction is aborted, then the epoch bumped twice.
    let (pid, epoch, saw_concurrent) = init_txn_retrying(&mut c, "tx-open", 600_000);
    assert!(
        saw_concurrent,
        "fencing answered CONCURRENT_TRANSACTIONS first"
    );
    assert_eq!((pid, epoch), (op.0, op.1 + 2));
    let rc = fetch_isolated(&mut c, "r", 1, 0, READ_COMMITTED);
    assert_eq!((rc.last_stable_offset, rc.high_watermark), (6, 6));
    assert_eq!(aborted_of(&rc), Some(vec![(op.0, 0)]));
    let last = batches_of(&rc).pop().unwrap();
    assert_eq!(control_type(&last), ABORT);
    assert_eq!(
        batch_producer(&last).1,
        op.1 + 1,
        "marker at the fencing epoch"
    );

    // And all of it survives a second kill -9.
    b.kill();
    b.restart();
    let mut c = b.client();
    let states: Vec<String> = ["tx-committed", "tx-open", "tx-expiring"]
        .iter()
        .map(|t| describe_txn(&mut c, t).transaction_state.to_string())
        .collect();
    assert_eq!(states, vec!["CompleteAbort", "Empty", "CompleteAbort"]);
    let rc = fetch_isolated(&mut c, "r", 1, 0, READ_COMMITTED);
    assert_eq!((rc.last_stable_offset, rc.high_watermark), (6, 6));
    assert_eq!(aborted_of(&rc), Some(vec![(op.0, 0)]));
    assert_eq!(latest_isolated(&mut c, "r", 0, READ_COMMITTED), 7);
    assert_eq!(latest_isolated(&mut c, "r", 2, READ_COMMITTED), 3);
    // New epochs continue from the stored ones.
    assert_eq!(init_txn(&mut c, "tx-open", 6_000), (op.0, op.1 + 3));
    assert_eq!(init_txn(&mut c, "tx-committed", 6_000), (cp.0, cp.1 + 1));
    assert_eq!(init_txn(&mut c, "tx-expiring", 6_000), (ep.0, ep.1 + 2));
}

// ---------------------------------------------------------------------------
// DescribeTransactions / ListTransactions
// ---------------------------------------------------------------------------

#[test]
fn describe_and_list_transactions() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "d", 3, &[]);

    let d = describe_txn(&mut c, "no-such-txn");
    assert_eq!(d.error_code, E::TransactionalIdNotFound.code());
    assert_eq!(d.transactional_id.0.as_str(), "no-such-txn");

    // Several ids in one request, answered in order.
    let r = c.call(
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(sb("x1")), TransactionalId(sb("x2"))]),
    );
    assert_eq!(
        r.transaction_states
            .iter()
            .map(|s| (s.transactional_id.0.to_string(), s.error_code))
            .collect::<Vec<_>>(),
        vec![
            ("x1".to_string(), E::TransactionalIdNotFound.code()),
            ("x2".to_string(), E::TransactionalIdNotFound.code())
        ]
    );

    let empty = init_txn(&mut c, "l-empty", 60_000);
    let ongoing = init_txn(&mut c, "l-ongoing", 45_000);
    add_partitions_ok(&mut c, "l-ongoing", ongoing, &[("d", 2), ("d", 0)]);
    let committed = init_txn(&mut c, "l-committed", 60_000);
    add_partitions_ok(&mut c, "l-committed", committed, &[("d", 1)]);
    end_txn(&mut c, "l-committed", committed, true);

    let d = describe_txn(&mut c, "l-ongoing");
    assert_eq!(d.error_code, NONE);
    assert_eq!(d.transaction_state.as_str(), "Ongoing");
    assert_eq!(d.transaction_timeout_ms, 45_000);
    assert_eq!((d.producer_id.0, d.producer_epoch), ongoing);
    assert_eq!(d.topics.len(), 1);
    let mut parts = d.topics[0].partitions.clone();
    parts.sort();
    assert_eq!(parts, vec![0, 2]);
    let start_ms = d.transaction_start_time_ms;
    assert!(
        (now_ms() - start_ms).abs() < 60_000,
        "start time {start_ms}"
    );
    assert_eq!(
        describe_txn(&mut c, "l-empty").transaction_state.as_str(),
        "Empty"
    );
    assert_eq!(
        describe_txn(&mut c, "l-committed")
            .transaction_state
            .as_str(),
        "CompleteCommit"
    );

    let all = vec![
        (
            "l-committed".to_string(),
            committed.0,
            "CompleteCommit".to_string(),
        ),
        ("l-empty".to_string(), empty.0, "Empty".to_string()),
        ("l-ongoing".to_string(), ongoing.0, "Ongoing".to_string()),
    ];
    for v in [0, 1] {
        let r = list_txns(&mut c, v, &[], &[], -1);
        assert_eq!(listed(&r), all, "ListTransactions v{v}, no filter");
        assert!(r.unknown_state_filters.is_empty());
    }
    let r = list_txns(&mut c, 0, &["Ongoing"], &[], -1);
    assert_eq!(listed(&r), vec![all[2].clone()]);
    let r = list_txns(&mut c, 0, &["CompleteCommit", "Empty"], &[], -1);
    assert_eq!(listed(&r), vec![all[0].clone(), all[1].clone()]);
    // Unknown filters are echoed back; known ones still apply.
    let r = list_txns(&mut c, 0, &["Ongoing", "Bogus"], &[], -1);
    assert_eq!(listed(&r), vec![all[2].clone()]);
    assert_eq!(
        r.unknown_state_filters
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        vec!["Bogus".to_string()]
    );
    // Only unknown filters: Kafka matches no state (filterStateNames is non-empty).
    let r = list_txns(&mut c, 0, &["Bogus"], &[], -1);
    assert!(
        listed(&r).is_empty(),
        "only unknown state filters: {:?}",
        listed(&r)
    );
    assert_eq!(r.unknown_state_filters.len(), 1);
    // Producer id filter.
    let r = list_txns(&mut c, 0, &[], &[empty.0, committed.0], -1);
    assert_eq!(listed(&r), vec![all[0].clone(), all[1].clone()]);
    let r = list_txns(&mut c, 0, &["Ongoing"], &[empty.0], -1);
    assert!(listed(&r).is_empty());
    // Duration filter (v1): transactions running longer than the filter.
    std::thread::sleep(Duration::from_millis(30));
    let r = list_txns(&mut c, 1, &["Ongoing"], &[], 0);
    assert_eq!(listed(&r), vec![all[2].clone()]);
    let r = list_txns(&mut c, 1, &["Ongoing"], &[], 3_600_000);
    assert!(listed(&r).is_empty());
}

// ---------------------------------------------------------------------------
// ListOffsets by timestamp with read_committed
// ---------------------------------------------------------------------------

#[track_caller]
fn list_offset_at(
    c: &mut Client,
    topic: &str,
    partition: i32,
    ts: i64,
    isolation: i8,
) -> (i64, i64) {
    let p = list_offsets(c, 7, topic, partition, ts, isolation);
    assert_eq!(p.error_code, NONE, "ListOffsets {ts}");
    (p.timestamp, p.offset)
}

/// Kafka (Partition.fetchOffsetForTimestamp) only answers a timestamp
/// lookup, MAX_TIMESTAMP included, with an offset below the last fetchable
/// offset: the LSO for read_committed, the HW for read_uncommitted.
#[test]
fn list_offsets_by_timestamp_respects_the_lso() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "ts", 1, &[]);
    let base = now_ms() - 10_000;
    // A plain batch (no producer id, not transactional) before the
    // transaction: visible to both isolation levels.
    let plain = batch(&[Rec::value(b"p", base)]);
    assert_eq!(batch_producer(&plain), (-1, -1, -1));
    assert!(!is_transactional(&plain));
    assert_eq!(produce_ok(&mut c, "ts", 0, &plain), 0);
    let pid = init_txn(&mut c, "tx-ts", 60_000);
    add_partitions_ok(&mut c, "tx-ts", pid, &[("ts", 0)]);
    let mut t = batch(&[
        Rec::value(b"a", base + 5_000),
        Rec::value(b"b", base + 6_000),
    ]);
    set_producer(&mut t, pid.0, pid.1, 0);
    set_transactional(&mut t);
    assert_eq!(produce_txn_ok(&mut c, "tx-ts", "ts", 0, &t), 1);

    assert_eq!(
        list_offset_at(&mut c, "ts", 0, base + 1_000, READ_UNCOMMITTED),
        (base + 5_000, 1)
    );
    assert_eq!(
        list_offset_at(&mut c, "ts", 0, -3, READ_UNCOMMITTED),
        (base + 6_000, 2)
    );
    // Inside the open transaction: nothing for read_committed.
    assert_eq!(
        list_offset_at(&mut c, "ts", 0, base + 1_000, READ_COMMITTED),
        (-1, -1),
        "timestamp lookup past the LSO, read_committed"
    );
    assert_eq!(
        list_offset_at(&mut c, "ts", 0, -3, READ_COMMITTED),
        (-1, -1),
        "MAX_TIMESTAMP past the LSO, read_committed"
    );
    assert_eq!(
        list_offset_at(&mut c, "ts", 0, base, READ_COMMITTED),
        (base, 0)
    );
    end_txn(&mut c, "tx-ts", pid, true);
    assert_eq!(
        list_offset_at(&mut c, "ts", 0, base + 1_000, READ_COMMITTED),
        (base + 5_000, 1)
    );
    // The COMMIT marker (offset 3) carries the coordinator's clock, later
    // than the records' timestamps; Kafka's segment max timestamp includes
    // markers too, so either the last record or the marker may answer.
    let max = list_offset_at(&mut c, "ts", 0, -3, READ_COMMITTED).1;
    assert!(max == 2 || max == 3, "MAX_TIMESTAMP after commit: {max}");
}

// ---------------------------------------------------------------------------
// kill -9 while EndTxn is in progress
// ---------------------------------------------------------------------------

/// EndTxn is sent and the broker killed at once (at increasing delays), so
/// the kill lands before, during or after the two-phase commit. After a
/// restart every transaction must end the same way on all its partitions
/// (completed from PrepareCommit, or aborted by its timeout if the
/// PrepareCommit was never durable), matching the coordinator's final state.
#[test]
fn end_txn_interrupted_by_kill_9_is_all_or_nothing() {
    let mut b = txn_broker(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]);
    let mut c = b.client();
    create_topic(&mut c, "k", 3, &[]);
    let mut rounds = Vec::new();
    for round in 0..8u64 {
        let id = format!("tx-k{round}");
        let pid = init_txn(&mut c, &id, 1_500);
        add_partitions_ok(&mut c, &id, pid, &[("k", 0), ("k", 1), ("k", 2)]);
        for p in 0..3 {
            produce_txn_ok(&mut c, &id, "k", p, &txn_batch(pid, 0, 2, &id));
        }
        c.send_only(3, &end_txn_request(&id, pid, true));
        std::thread::sleep(Duration::from_micros(round * 400));
        b.kill();
        b.restart();
        c = b.client();
        rounds.push((id, pid));
    }
    let mut outcomes = Vec::new();
    for (id, pid) in &rounds {
        let deadline = Instant::now() + Duration::from_secs(10);
        let d = loop {
            let d = describe_txn(&mut c, id);
            assert_eq!(d.error_code, NONE, "{id}");
            let s = d.transaction_state.to_string();
            if s == "CompleteCommit" || s == "CompleteAbort" {
                break d;
            }
            assert!(Instant::now() < deadline, "{id} still {s}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let want = if d.transaction_state.as_str() == "CompleteCommit" {
            COMMIT
        } else {
            ABORT
        };
        outcomes.push((id.clone(), d.transaction_state.to_string()));
        for p in 0..3 {
            let ru = fetch_isolated(&mut c, "k", p, 0, READ_UNCOMMITTED);
            let markers: Vec<i16> = batches_of(&ru)
                .iter()
                .filter(|bt| is_control(bt) && batch_producer(bt).0 == pid.0)
                .map(|bt| control_type(bt))
                .collect();
            assert!(
                !markers.is_empty() && markers.iter().all(|&m| m == want),
                "{id} ({}): partition {p} markers {markers:?}",
                d.transaction_state
            );
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    for p in 0..3 {
        let rc = fetch_isolated(&mut c, "k", p, 0, READ_COMMITTED);
        assert_eq!(rc.last_stable_offset, rc.high_watermark, "k-{p} stable");
    }
}
