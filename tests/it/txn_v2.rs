//! Transaction version 2 (KIP-890 part 2) over the raw protocol, as Apache
//! Kafka 4.x serves it: Produce v12 adds its partition to the transaction
//! (no AddPartitionsToTxn), TxnOffsetCommit v5 the group's offsets
//! partition (no AddOffsetsToTxn), EndTxn v5 bumps the epoch on every
//! commit and abort, writes the markers with the bumped epoch and answers
//! with it; a retry is answered the same, and late writes of the ended
//! transaction's epoch are fenced.

use crate::support::fetch::*;
use crate::support::groups::offset_fetch;
use crate::support::produce::{produce_request, single_partition};
use crate::support::topics::create_topic;
use crate::support::transactions::*;
use crate::support::*;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;

/// Produce at `version` of one transactional record set: the answer.
fn send(c: &mut Client, version: i16, partition: i32, records: &[u8]) -> PartitionProduceResponse {
    let req = produce_request("v2", partition, -1, records)
        .with_transactional_id(Some(TransactionalId(sb("tx-v2"))));
    single_partition(c.call(version, &req))
}

/// EndTxn v5: (error, producer id, epoch).
fn end_v5(c: &mut Client, pid: (i64, i16), commit: bool) -> (i16, i64, i16) {
    let r = c.call(5, &end_txn_request("tx-v2", pid, commit));
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// The partition's batches as (producer epoch, control type or -1).
fn epochs(c: &mut Client, partition: i32) -> Vec<(i16, i16)> {
    fetch_all_batches(c, "v2", partition, 0)
        .iter()
        .map(|b| {
            let kind = if is_control(b) { control_type(b) } else { -1 };
            (batch_producer(b).1, kind)
        })
        .collect()
}

#[test]
fn produce_v12_joins_and_end_txn_v5_bumps_the_epoch() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "v2", 2, &[]);
    let pid = init_txn(&mut c, "tx-v2", 60_000);
    let (id, e) = pid;

    // Produce v11 only verifies: the partition is not in the transaction.
    let r = send(&mut c, 11, 0, &txn_batch(pid, 0, 2, "a"));
    assert_eq!(r.error_code, E::TransactionAbortable.code(), "v11");
    // Produce v12 adds it, starting the transaction.
    let r = send(&mut c, 12, 0, &txn_batch(pid, 0, 2, "a"));
    assert_eq!((r.error_code, r.base_offset), (NONE, 0), "v12");
    let d = describe_txn(&mut c, "tx-v2");
    assert_eq!(d.transaction_state.as_str(), "Ongoing");
    assert_eq!(
        d.topics
            .iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect::<Vec<_>>(),
        vec![("v2".to_string(), vec![0])]
    );
    // TxnOffsetCommit v5 adds the offsets partition (v4 would need
    // AddOffsetsToTxn first).
    assert_eq!(
        txn_offset_commit(&mut c, 4, "tx-v2", pid, "g-v2", &[("v2", 0, 2)]),
        vec![E::TransactionAbortable.code()]
    );
    assert_eq!(
        txn_offset_commit(&mut c, 5, "tx-v2", pid, "g-v2", &[("v2", 0, 2)]),
        vec![NONE]
    );
    // A producer id or epoch the coordinator does not have is refused
    // before anything is added.
    let r = send(&mut c, 12, 1, &txn_batch((id, e + 1), 0, 1, "x"));
    assert_eq!(r.error_code, E::InvalidProducerEpoch.code(), "epoch ahead");
    let r = send(&mut c, 12, 1, &txn_batch((id + 100, e), 0, 1, "x"));
    assert_eq!(r.error_code, E::InvalidProducerIdMapping.code());

    // Commit: the epoch is bumped, the marker carries the bumped epoch.
    assert_eq!(end_v5(&mut c, pid, true), (NONE, id, e + 1));
    assert_eq!(epochs(&mut c, 0), vec![(e, -1), (e + 1, 1)]);
    assert_eq!(
        describe_txn(&mut c, "tx-v2").producer_epoch,
        e + 1,
        "DescribeTransactions"
    );
    assert_eq!(
        offset_fetch(&mut c, 8, "g-v2", "v2", &[0], true).1,
        vec![(2, NONE)]
    );
    // A retry (the old epoch) gets the same answer; nothing more is written.
    assert_eq!(end_v5(&mut c, pid, true), (NONE, id, e + 1));
    assert_eq!(epochs(&mut c, 0).len(), 2);
    // Late writes of the ended transaction's epoch are fenced, at v12 (the
    // partition refuses before asking the coordinator) and at v11.
    for v in [11, 12] {
        let r = send(&mut c, v, 0, &txn_batch(pid, 2, 1, "late"));
        assert_eq!(r.error_code, E::InvalidProducerEpoch.code(), "late v{v}");
    }
    assert_eq!(latest_isolated(&mut c, "v2", 0, READ_COMMITTED), 3);

    // The next transaction at the bumped epoch (sequences from 0), aborted:
    // bumped again, its marker an ABORT at the new epoch.
    let next = (id, e + 1);
    let r = send(&mut c, 12, 1, &txn_batch(next, 0, 1, "b"));
    assert_eq!((r.error_code, r.base_offset), (NONE, 0));
    let r = send(&mut c, 12, 0, &txn_batch(next, 0, 1, "c"));
    assert_eq!((r.error_code, r.base_offset), (NONE, 3));
    assert_eq!(end_v5(&mut c, next, false), (NONE, id, e + 2));
    assert_eq!(epochs(&mut c, 1), vec![(e + 1, -1), (e + 2, 0)]);
    let rc = fetch_isolated(&mut c, "v2", 1, 0, READ_COMMITTED);
    assert_eq!(rc.last_stable_offset, 2);
    assert_eq!(
        rc.aborted_transactions.as_ref().map(|a| a
            .iter()
            .map(|t| (t.producer_id.0, t.first_offset))
            .collect::<Vec<_>>()),
        Some(vec![(id, 0)])
    );
    // Committing with nothing open is refused; an empty abort bumps.
    let now = (id, e + 2);
    assert_eq!(
        end_v5(&mut c, now, true),
        (E::InvalidTxnState.code(), -1, -1)
    );
    assert_eq!(end_v5(&mut c, now, false), (NONE, id, e + 3));
    // An epoch from before is fenced (not one below the current: no retry).
    assert_eq!(
        end_v5(&mut c, pid, false),
        (E::ProducerFenced.code(), -1, -1)
    );
}

/// Transaction version 2 (Produce v12): as Kafka 4.4's `checkSequence`, a
/// producer with no batches on the partition must start its transaction
/// there at sequence 0, even though Produce v12 added the partition: a
/// batch at sequence 1 (whose sequence-0 batch is still in flight, or was
/// refused) is OUT_OF_ORDER_SEQUENCE_NUMBER, so it cannot land before
/// sequence 0 (whose retry would be out of order forever). The same holds
/// for the next transaction, after the end bumped the epoch.
#[test]
fn produce_v12_starts_a_producer_at_sequence_0() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "v2", 1, &[]);
    let pid = init_txn(&mut c, "tx-v2", 60_000);
    let (id, e) = pid;
    let r = send(&mut c, 12, 0, &txn_batch(pid, 1, 1, "b"));
    assert_eq!(
        (r.error_code, r.base_offset),
        (E::OutOfOrderSequenceNumber.code(), -1),
        "sequence 1 first"
    );
    assert_eq!(latest_isolated(&mut c, "v2", 0, READ_UNCOMMITTED), 0);
    let r = send(&mut c, 12, 0, &txn_batch(pid, 0, 1, "a"));
    assert_eq!((r.error_code, r.base_offset), (NONE, 0), "sequence 0");
    let r = send(&mut c, 12, 0, &txn_batch(pid, 1, 1, "b"));
    assert_eq!((r.error_code, r.base_offset), (NONE, 1), "then 1");
    assert_eq!(end_v5(&mut c, pid, true), (NONE, id, e + 1));
    // The next transaction, at the bumped epoch: from 0 again.
    let next = (id, e + 1);
    let r = send(&mut c, 12, 0, &txn_batch(next, 2, 1, "c"));
    assert_eq!(
        r.error_code,
        E::OutOfOrderSequenceNumber.code(),
        "next transaction, sequence 2"
    );
    let r = send(&mut c, 12, 0, &txn_batch(next, 0, 1, "c"));
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 3),
        "next transaction, 0"
    );
}

/// WriteTxnMarkers v2 (KIP-1228): the marker names its transaction
/// version, which decides the partition's epoch check, as Kafka 4.4's
/// `ProducerAppendInfo.checkProducerEpoch`: under version 2 the end bumped
/// the epoch, so the open transaction's own epoch is stale (a retry of a
/// written marker is not); version 1 (transaction version 0) takes an
/// epoch not below the producer's.
#[test]
fn write_txn_markers_v2_checks_the_epoch_by_transaction_version() {
    use kastle::protocol::write_txn_markers::{
        WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
    };
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "wm", 1, &[]);
    let (id, e) = init_txn(&mut c, "tx-wm", 60_000);
    let req = produce_request("wm", 0, -1, &txn_batch((id, e), 0, 2, "a"))
        .with_transactional_id(Some(TransactionalId(sb("tx-wm"))));
    let r = single_partition(c.call(12, &req));
    assert_eq!(r.error_code, NONE, "a transaction open at epoch {e}");
    let mut marker = |version: i16, epoch: i16, tv: i8| -> i16 {
        let body = WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: id,
                producer_epoch: epoch,
                transaction_result: true,
                topics: vec![WritableTxnMarkerTopic {
                    name: "wm".into(),
                    partition_indexes: vec![0],
                }],
                coordinator_epoch: 0,
                transaction_version: tv,
            }],
        }
        .encode(version);
        let corr = c.next_corr();
        c.write_raw(&frame_with_header(27, version, corr, 2, &body))
            .expect("write request");
        let (got, mut resp) = c.recv_frame().expect("read response");
        assert_eq!(got, corr);
        skip_tagged_fields(&mut resp);
        // The response is the same in versions 1 and 2.
        let r =
            <WriteTxnMarkersResponse as kafka_protocol::protocol::Decodable>::decode(&mut resp, 1)
                .expect("a WriteTxnMarkers response");
        r.markers[0].topics[0].partitions[0].error_code
    };
    let stale = E::InvalidProducerEpoch.code();
    assert_eq!(marker(2, e, 2), stale, "TV2: the open transaction's epoch");
    assert_eq!(marker(2, e + 1, 2), NONE, "TV2: the bumped epoch");
    assert_eq!(
        marker(2, e + 1, 2),
        NONE,
        "TV2: a retry of the written marker"
    );
    assert_eq!(marker(1, e, 0), stale, "v1: below the producer's epoch now");
    assert_eq!(marker(2, e + 1, 0), NONE, "TV0: the producer's epoch");
    // The data and the three markers written, the refused ones nowhere.
    let written: Vec<(i16, bool)> = fetch_all_batches(&mut c, "wm", 0, 0)
        .iter()
        .map(|b| (batch_producer(b).1, is_control(b)))
        .collect();
    assert_eq!(
        written,
        vec![(e, false), (e + 1, true), (e + 1, true), (e + 1, true)]
    );
}
