//! Tests of the partition's replication primitives: epochs stamped and
//! fenced, OffsetForLeaderEpoch, a follower copying a leader (producer
//! state and aborted transactions included), its high watermark, and
//! truncation rebuilding producer state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::*;
use crate::config::BrokerConfig;
use crate::record::validator::validate_produce_records;
use crate::record::{iter_batches, BatchBuilder};

const T0: i64 = 1_700_000_000_000;

fn open(dir: &Path, flush_messages: &str) -> Arc<Partition> {
    let (config, _) =
        BrokerConfig::from_entries(vec![("log.dirs".into(), dir.display().to_string())]).unwrap();
    let mut overrides = BTreeMap::new();
    overrides.insert("flush.messages".to_string(), flush_messages.to_string());
    let settings = TopicSettings::resolve(&overrides, &config);
    Partition::open(Arc::from("t"), 0, &dir.join("t-0"), settings, None).unwrap()
}

fn produce(p: &Partition, producer: Option<(i64, i16, i32, bool)>, n: usize) -> AppendOutcome {
    let mut b = BatchBuilder::new(T0);
    if let Some((id, epoch, seq, txn)) = producer {
        b = b.producer(id, epoch, seq).transactional(txn);
    }
    for i in 0..n {
        b = b.push(Some(b"k"), Some(b"value"), &[], T0 + i as i64);
    }
    let bytes = b.build().to_vec();
    let validated = validate_produce_records(&bytes, T0, &ValidationConfig::default()).unwrap();
    p.append(&bytes, &validated).unwrap()
}

/// Everything in the leader's log from `from`, as a follower fetch gets it.
fn leader_bytes(p: &Partition, from: i64) -> Vec<u8> {
    let guard = p.lock();
    let log = &guard.as_ref().unwrap().log;
    let mut out = Vec::new();
    let mut offset = from;
    // Markers carry the wall clock, so `segment.ms` may roll before them.
    while offset < log.log_end_offset() {
        let bytes = log
            .read_plan(offset, 1 << 20, true, i64::MAX)
            .unwrap()
            .read()
            .unwrap();
        for (_, h) in iter_batches(&bytes) {
            offset = h.last_offset() + 1;
        }
        out.extend_from_slice(&bytes);
    }
    out
}

fn epochs(p: &Partition) -> Vec<(i32, i64)> {
    let guard = p.lock();
    guard
        .as_ref()
        .unwrap()
        .log
        .leader_epochs()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

#[test]
fn leader_stamps_its_epoch_and_answers_offset_for_leader_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), "9223372036854775807");
    // A new leader at epoch 0 records it at once, as Kafka's makeLeader.
    assert_eq!(epochs(&p), vec![(0, 0)]);
    assert_eq!(
        p.last_offset_for_leader_epoch(-1, 0, true),
        Ok(Some((0, 0)))
    );
    produce(&p, None, 3);
    assert!(p.make_leader(4).unwrap());
    assert!(!p.make_leader(2).unwrap(), "stale epochs are ignored");
    produce(&p, None, 2);
    let stamped: Vec<i32> = iter_batches(&leader_bytes(&p, 0))
        .map(|(_, h)| h.partition_leader_epoch)
        .collect();
    assert_eq!(stamped, vec![0, 4]);
    assert_eq!(epochs(&p), vec![(0, 0), (4, 3)]);
    // endOffsetFor: the latest epoch ends at the log end; older ones at the
    // next epoch's start; unknown or undefined epochs are (-1, -1).
    assert_eq!(
        p.last_offset_for_leader_epoch(-1, 4, true),
        Ok(Some((4, 5)))
    );
    assert_eq!(p.last_offset_for_leader_epoch(4, 0, true), Ok(Some((0, 3))));
    assert_eq!(p.last_offset_for_leader_epoch(4, 2, true), Ok(Some((0, 3))));
    assert_eq!(p.last_offset_for_leader_epoch(-1, 7, true), Ok(None));
    assert_eq!(p.last_offset_for_leader_epoch(-1, -1, true), Ok(None));
    // The current leader epoch fences older and refuses newer ones.
    assert_eq!(
        p.last_offset_for_leader_epoch(3, 0, true),
        Err(ResponseError::FencedLeaderEpoch)
    );
    assert_eq!(
        p.last_offset_for_leader_epoch(5, 0, true),
        Err(ResponseError::UnknownLeaderEpoch)
    );
    assert_eq!(p.check_leader_epoch(-1), Ok(()));
    assert_eq!(p.check_leader_epoch(4), Ok(()));
    assert_eq!(p.epoch_for_offset(2), Some(0));
    assert_eq!(p.epoch_for_offset(5), Some(4));
    // Reopened, the partition keeps leading at its latest epoch.
    p.close().unwrap();
    let p = open(dir.path(), "9223372036854775807");
    assert_eq!(p.leader_epoch(), 4);
    assert_eq!(epochs(&p), vec![(0, 0), (4, 3)]);
}

#[tokio::test]
async fn follower_copies_the_leader_and_takes_its_high_watermark() {
    let ld = tempfile::tempdir().unwrap();
    let fd = tempfile::tempdir().unwrap();
    let leader = open(ld.path(), "1");
    let follower = open(fd.path(), "1");
    assert!(follower.make_follower(1, 0));
    assert_eq!(follower.leader_id(), 1);
    // Clients cannot append to a follower.
    let b = BatchBuilder::new(T0)
        .push(None, Some(b"x"), &[], T0)
        .build()
        .to_vec();
    let v = validate_produce_records(&b, T0, &ValidationConfig::default()).unwrap();
    assert!(matches!(
        follower.append(&b, &v),
        Err(PartitionError::NotLeader)
    ));
    // An idempotent batch, then a transaction the leader aborts.
    produce(&leader, Some((7, 0, 0, false)), 2);
    produce(&leader, Some((8, 0, 0, true)), 3);
    leader.append_txn_marker(8, 0, false, 1, 0).unwrap();
    let bytes = leader_bytes(&leader, 0);
    let r = follower.append_as_follower(&bytes).unwrap();
    assert_eq!((r.first_offset, r.last_offset), (0, 5));
    assert_eq!(follower.log_end_offset(), Some(6));
    assert_eq!(leader_bytes(&follower, 0), bytes, "byte for byte");
    // The follower's high watermark waits for the leader's.
    assert_eq!(follower.flush_for_fetch().await.unwrap(), 6);
    assert_eq!(follower.state().high_watermark, 0);
    follower.update_follower_high_watermark(4);
    assert_eq!(follower.state().high_watermark, 4);
    follower.update_follower_high_watermark(99);
    assert_eq!(follower.state().high_watermark, 6, "never past its log end");
    follower.update_follower_high_watermark(2);
    assert_eq!(follower.state().high_watermark, 6, "never backwards");
    // Producer state and the aborted transaction came along.
    let ids: Vec<i64> = follower
        .producers()
        .unwrap()
        .iter()
        .map(|e| e.producer_id)
        .collect();
    assert_eq!(ids, vec![7, 8]);
    let read = follower.fetch_isolated(0, 1 << 20, true, true).unwrap();
    assert_eq!(read.aborted.len(), 1);
    assert_eq!(read.aborted[0].first_offset, 2);
    // Promoted, it appends at its log end in its new epoch.
    assert!(follower.make_leader(1).unwrap());
    let out = produce(&follower, Some((7, 0, 2, false)), 1);
    assert_eq!(out.base_offset, 6);
    assert_eq!(epochs(&follower), vec![(0, 0), (1, 6)]);
}

#[test]
fn truncation_rebuilds_producer_state_and_clamps_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), "9223372036854775807");
    produce(&p, Some((5, 0, 0, false)), 2); // 0..1
    produce(&p, Some((5, 0, 2, false)), 2); // 2..3
    produce(&p, Some((6, 0, 0, true)), 2); // 4..5, transaction open
    assert_eq!(p.state().high_watermark, 6);
    assert_eq!(p.state().first_unstable_offset, 4);
    assert!(p.truncate_to(2).unwrap());
    assert_eq!(p.log_end_offset(), Some(2));
    let s = p.state();
    assert_eq!((s.high_watermark, s.first_unstable_offset), (2, i64::MAX));
    // Producer 5's second batch is gone: its retry is new, not a duplicate,
    // and producer 6 is forgotten.
    let out = produce(&p, Some((5, 0, 2, false)), 2);
    assert!(!out.duplicate);
    assert_eq!(out.base_offset, 2);
    let ids: Vec<i64> = p
        .producers()
        .unwrap()
        .iter()
        .map(|e| e.producer_id)
        .collect();
    assert_eq!(ids, vec![5]);
    p.truncate_fully_and_start_at(10).unwrap();
    let s = p.state();
    assert_eq!((s.log_start_offset, s.high_watermark), (10, 10));
    assert!(p.producers().unwrap().is_empty());
    assert!(epochs(&p).is_empty());
}

/// Kafka's `isReplicaIsrEligible` on the leader: a caught-up follower
/// outside the ISR holds the high watermark back (it is about to join)
/// only while it is registered, unfenced and not shutting down; a fenced
/// one neither holds it back nor is proposed for the ISR.
#[tokio::test]
async fn a_fenced_follower_neither_holds_the_high_watermark_nor_joins_the_isr() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), "1");
    let reg = registration(1, 0, vec![1, 2]);
    assert!(p.become_leader(1, uuid::Uuid::nil(), &reg).unwrap());
    assert!(p.is_replicated());
    // Both followers fetch the empty log: follower 3 is caught up.
    assert_eq!(p.record_follower_fetch(2, 0, 0, 10, true), Ok(None));
    let to_isr = p.record_follower_fetch(3, 0, 0, 20, true).unwrap();
    assert!(to_isr.is_some_and(|prop| prop.new_isr == vec![1, 2, 3]));
    p.complete_isr_change(Err(ResponseError::RequestTimedOut));
    produce(&p, None, 3);
    assert_eq!(p.flush_for_fetch().await.unwrap(), 3);
    // The ISR has everything; the caught-up follower 3 does not yet.
    assert_eq!(p.record_follower_fetch(2, 3, 0, 10, true), Ok(None));
    assert_eq!(p.state().high_watermark, 0, "held for caught-up follower 3");
    // Follower 3's broker is fenced: the high watermark moves at once.
    p.set_eligible_replicas(Arc::new(BTreeMap::from([(1, 1), (2, 10)])));
    assert_eq!(p.state().high_watermark, 3);
    // Fetching again while fenced does not propose it for the ISR ...
    assert_eq!(p.record_follower_fetch(3, 3, 0, 20, true), Ok(None));
    // ... nor once unfenced under another broker epoch than it fetches
    // with (KIP-903: a restarted broker's stale fetch) ...
    p.set_eligible_replicas(Arc::new(BTreeMap::from([(1, 1), (2, 10), (3, 21)])));
    assert_eq!(p.record_follower_fetch(3, 3, 0, 20, true), Ok(None));
    // ... but with its registration's epoch it is.
    let to_isr = p.record_follower_fetch(3, 3, 0, 21, true).unwrap();
    assert!(to_isr.is_some_and(|prop| prop.new_isr == vec![1, 2, 3]));
}

#[test]
fn a_fetch_from_a_diverged_log_gets_the_epoch_to_truncate_to() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), "9223372036854775807");
    produce(&p, None, 3); // epoch 0: offsets 0-2
    assert!(p.make_leader(4).unwrap());
    produce(&p, None, 2); // epoch 4: offsets 3-4
                          // No last fetched epoch (Fetch < v12, or -1): nothing to check.
    assert_eq!(p.diverging_epoch(4, None, 9), Ok(None));
    // The fetcher's epoch 0 ends at 3 here: it may fetch from 3 or before.
    assert_eq!(p.diverging_epoch(4, Some(0), 3), Ok(None));
    assert_eq!(p.diverging_epoch(4, Some(4), 5), Ok(None));
    // It has epoch 0 past offset 3 (Kafka's `endOffset < fetchOffset`).
    assert_eq!(p.diverging_epoch(4, Some(0), 4), Ok(Some((0, 3))));
    // It has an epoch this log never had (2): the one before it ends at 3.
    assert_eq!(p.diverging_epoch(4, Some(2), 3), Ok(Some((0, 3))));
    // An epoch newer than any here has no known end.
    assert_eq!(
        p.diverging_epoch(4, Some(7), 5),
        Err(ResponseError::OffsetOutOfRange)
    );
    // The current leader epoch fences first.
    assert_eq!(
        p.diverging_epoch(3, Some(0), 4),
        Err(ResponseError::FencedLeaderEpoch)
    );
    // Below the log start: out of range whether or not the epochs diverge.
    p.delete_records(2).unwrap();
    assert_eq!(
        p.diverging_epoch(4, Some(0), 1),
        Err(ResponseError::OffsetOutOfRange)
    );
}

#[test]
fn a_late_publication_of_the_first_unstable_offset_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), "1");
    // Two appends computed their first unstable offset in this order under
    // the lock (a transaction's data, then its marker); the first thread
    // was preempted and publishes last: the marker's value must stay.
    let data = (5, p.first_unstable_seq.fetch_add(1, Ordering::AcqRel) + 1);
    let marker = (
        i64::MAX,
        p.first_unstable_seq.fetch_add(1, Ordering::AcqRel) + 1,
    );
    p.publish_first_unstable(marker);
    p.publish_first_unstable(data);
    assert_eq!(p.state().first_unstable_offset, i64::MAX);
    // A transactional append through the real path publishes after both.
    produce(&p, Some((9, 0, 0, true)), 1);
    assert_eq!(p.state().first_unstable_offset, 0);
}

/// Replicas 1, 2 and 3 led by `leader` at `leader_epoch` (also the
/// partition epoch) with `isr`.
fn registration(
    leader: i32,
    leader_epoch: i32,
    isr: Vec<i32>,
) -> crate::metadata::PartitionRegistration {
    crate::metadata::PartitionRegistration {
        replicas: vec![1, 2, 3],
        directories: Vec::new(),
        isr,
        removing_replicas: Vec::new(),
        adding_replicas: Vec::new(),
        elr: Vec::new(),
        last_known_elr: Vec::new(),
        leader,
        leader_recovery_state: 0,
        leader_epoch,
        partition_epoch: leader_epoch,
    }
}

/// The cluster soak's lost acknowledgements (docs/soak.md): a leader
/// appends, is made a follower before the acks=all wait is answered,
/// truncates and copies the new leader's log, whose high watermark then
/// passes the old append's end. The old append is gone, so its
/// acknowledgement must fail (NOT_LEADER_OR_FOLLOWER), whether the wait
/// began before the change or after it, and even once this replica leads
/// again; a new append in the new leadership is acknowledged.
#[tokio::test]
async fn an_append_is_not_acknowledged_after_its_leadership_ended() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let p = open(dir.path(), "9223372036854775807");
    assert!(p
        .become_leader(1, uuid::Uuid::nil(), &registration(1, 0, vec![1, 2, 3]))
        .unwrap());
    let out = produce(&p, Some((7, 0, 0, false)), 3); // 0..2, never replicated
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut waiting = Box::pin(p.wait_for_ack(out.last_offset + 1, out.leadership, -1, deadline));
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(5), waiting.as_mut())
            .await
            .is_err(),
        "no follower has the append yet"
    );

    // Broker 2 leads at epoch 1 with another producer's records at 0..4.
    assert_eq!(
        p.become_follower(1, uuid::Uuid::nil(), &registration(2, 1, vec![2, 3]), None),
        Some(true)
    );
    let leader2 = open(other.path(), "9223372036854775807");
    assert!(leader2.make_leader(1).unwrap());
    produce(&leader2, Some((8, 0, 0, false)), 5);
    assert!(p.truncate_to(0).unwrap());
    p.append_as_follower(&leader_bytes(&leader2, 0)).unwrap();
    p.update_follower_high_watermark(5);
    assert_eq!(p.state().high_watermark, 5);
    // A wait that starts only now sees the lost leadership too.
    assert_eq!(
        p.wait_for_ack(out.last_offset + 1, out.leadership, -1, deadline)
            .await,
        Err(ResponseError::NotLeaderOrFollower)
    );
    assert_eq!(
        p.wait_for_ack(out.last_offset + 1, out.leadership, 1, deadline)
            .await,
        Err(ResponseError::NotLeaderOrFollower)
    );

    // Leader again at epoch 2, its high watermark (5) past the old end.
    assert!(p
        .become_leader(1, uuid::Uuid::nil(), &registration(1, 2, vec![1, 2, 3]))
        .unwrap());
    assert_eq!(
        waiting.await,
        Err(ResponseError::NotLeaderOrFollower),
        "the wait begun in the old leadership"
    );
    let again = produce(&p, Some((7, 0, 3, false)), 1);
    assert_eq!(
        again.base_offset, 5,
        "the lost batch's retry is appended anew"
    );
    assert_eq!(p.record_follower_fetch(2, 6, 0, -1, true), Ok(None));
    assert_eq!(p.record_follower_fetch(3, 6, 0, -1, true), Ok(None));
    assert_eq!(
        p.wait_for_ack(again.last_offset + 1, again.leadership, -1, deadline)
            .await,
        Ok(())
    );
}
