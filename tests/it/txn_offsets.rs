//! TxnOffsetCommit over the raw protocol: offsets committed inside a
//! transaction stay invisible to OffsetFetch (and make `require_stable`
//! fetches answer UNSTABLE_OFFSET_COMMIT) until the transaction commits;
//! an abort discards them; both survive a restart. v6 (KIP-1319) names
//! topics by id and gets the group errors older clients do not know.

use crate::support::groups::{commit_offsets, offset_fetch};
use crate::support::topics::create_topic;
use crate::support::transactions::{
    add_offsets, end_txn, end_txn_v, init_txn, txn_broker, txn_offset_commit,
    txn_offset_commit_request, txn_offset_commit_v6,
};
use crate::support::{sb, tn, E, NONE};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, GroupId};
use uuid::Uuid;

#[test]
fn txn_offsets_visible_only_after_commit() {
    let mut b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "t", 2, &[]);
    commit_offsets(&mut c, "g", &[("t", 0, 5)]);
    let pid = init_txn(&mut c, "tx1", 60_000);

    // Without AddOffsetsToTxn the offsets partition is not in the
    // transaction (KIP-890 verification).
    assert_eq!(
        txn_offset_commit(&mut c, 3, "tx1", pid, "g", &[("t", 0, 10)]),
        vec![E::InvalidTxnState.code()]
    );

    add_offsets(&mut c, "tx1", pid, "g");
    assert_eq!(
        txn_offset_commit(
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
        offset_fetch(&mut c, 8, "g", "t", &[0, 1], false).1,
        vec![(5, NONE), (-1, NONE)]
    );
    assert_eq!(
        offset_fetch(&mut c, 8, "g", "t", &[0, 1], true).1,
        vec![
            (-1, E::UnstableOffsetCommit.code()),
            (-1, E::UnstableOffsetCommit.code())
        ]
    );
    assert_eq!(
        offset_fetch(&mut c, 7, "g", "t", &[0], true).1,
        vec![(-1, E::UnstableOffsetCommit.code())]
    );
    assert_eq!(
        offset_fetch(&mut c, 6, "g", "t", &[0], false).1,
        vec![(5, NONE)]
    );

    end_txn(&mut c, "tx1", pid, true);
    assert_eq!(
        offset_fetch(&mut c, 8, "g", "t", &[0, 1], true).1,
        vec![(10, NONE), (20, NONE)]
    );

    // Durable across a restart.
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    assert_eq!(
        offset_fetch(&mut c, 8, "g", "t", &[0, 1], true).1,
        vec![(10, NONE), (20, NONE)]
    );
}

#[test]
fn txn_offsets_discarded_on_abort() {
    let mut b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "t", 1, &[]);
    let pid = init_txn(&mut c, "tx2", 60_000);
    add_offsets(&mut c, "tx2", pid, "g2");
    assert_eq!(
        txn_offset_commit(&mut c, 0, "tx2", pid, "g2", &[("t", 0, 42)]),
        vec![NONE]
    );
    assert_eq!(
        txn_offset_commit(&mut c, 3, "tx2", pid, "", &[("t", 0, 42)]),
        vec![E::InvalidGroupId.code()]
    );
    end_txn(&mut c, "tx2", pid, false);
    assert_eq!(
        offset_fetch(&mut c, 8, "g2", "t", &[0], true).1,
        vec![(-1, NONE)]
    );
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    assert_eq!(
        offset_fetch(&mut c, 8, "g2", "t", &[0], true).1,
        vec![(-1, NONE)]
    );
}

/// TxnOffsetCommit is verified with the transaction coordinator first, as
/// Kafka 4.4 does (AddPartitionsToTxnManager's answers): the group's offsets
/// partition not in the transaction is INVALID_TXN_STATE before v4 and
/// TRANSACTION_ABORTABLE from v4; an epoch other than the current one
/// INVALID_PRODUCER_EPOCH (Kafka's PRODUCER_FENCED, translated), at every
/// version; a producer id that is not the transactional id's
/// INVALID_PRODUCER_ID_MAPPING. Nothing refused is committed.
#[test]
fn txn_offset_commit_verification_by_version() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    create_topic(&mut c, "t", 1, &[]);
    let pid = init_txn(&mut c, "tx3", 60_000);
    for v in 0..=4 {
        let want = if v < 4 {
            E::InvalidTxnState.code()
        } else {
            E::TransactionAbortable.code()
        };
        assert_eq!(
            txn_offset_commit(&mut c, v, "tx3", pid, "g3", &[("t", 0, 1)]),
            vec![want],
            "v{v}: offsets partition not in the transaction"
        );
    }
    add_offsets(&mut c, "tx3", pid, "g3");
    assert_eq!(
        txn_offset_commit(&mut c, 3, "tx3", pid, "g3", &[("t", 0, 7)]),
        vec![NONE]
    );
    for v in 0..=4 {
        assert_eq!(
            txn_offset_commit(&mut c, v, "tx3", (pid.0, pid.1 + 3), "g3", &[("t", 0, 99)]),
            vec![E::InvalidProducerEpoch.code()],
            "v{v}: wrong epoch"
        );
        assert_eq!(
            txn_offset_commit(&mut c, v, "tx-other", pid, "g3", &[("t", 0, 99)]),
            vec![E::InvalidProducerIdMapping.code()],
            "v{v}: another transactional id"
        );
        assert_eq!(
            txn_offset_commit(
                &mut c,
                v,
                "tx3",
                (pid.0 + 100, pid.1),
                "g3",
                &[("t", 0, 99)]
            ),
            vec![E::InvalidProducerIdMapping.code()],
            "v{v}: another producer id"
        );
    }
    end_txn(&mut c, "tx3", pid, true);
    assert_eq!(
        offset_fetch(&mut c, 8, "g3", "t", &[0], true).1,
        vec![(7, NONE)],
        "only the verified commit counts"
    );
}

/// TxnOffsetCommit v6 names topics by id, as Kafka 4.4's
/// `handleTxnOffsetCommitRequest`: an id no topic has (the zero id among
/// them) is UNKNOWN_TOPIC_ID for its partitions, a known id's missing
/// partition UNKNOWN_TOPIC_OR_PARTITION, the rest is committed; the answer
/// echoes the ids in request order. v6 is transaction version 2: the
/// offsets partition joins the transaction without AddOffsetsToTxn.
#[test]
fn txn_offset_commit_v6_by_topic_id() {
    let mut b = txn_broker(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "t6", 2, &[]);
    let pid = init_txn(&mut c, "tx6", 60_000);
    let stranger = Uuid::from_u128(0x77);
    let unknown_id = E::UnknownTopicId.code();
    assert_eq!(
        txn_offset_commit_v6(
            &mut c,
            "tx6",
            pid,
            "g6",
            (-1, ""),
            &[
                (id, 0, 4),
                (stranger, 0, 1),
                (Uuid::nil(), 1, 1),
                (id, 9, 1),
                (id, 1, 6)
            ]
        ),
        vec![
            (id, vec![(0, NONE)]),
            (stranger, vec![(0, unknown_id)]),
            (Uuid::nil(), vec![(1, unknown_id)]),
            (id, vec![(9, E::UnknownTopicOrPartition.code())]),
            (id, vec![(1, NONE)]),
        ]
    );
    assert_eq!(
        offset_fetch(&mut c, 8, "g6", "t6", &[0, 1], true).1,
        vec![
            (-1, E::UnstableOffsetCommit.code()),
            (-1, E::UnstableOffsetCommit.code())
        ],
        "pending until the transaction ends"
    );
    assert_eq!(end_txn_v(&mut c, 5, "tx6", pid, true), NONE);
    assert_eq!(
        offset_fetch(&mut c, 8, "g6", "t6", &[0, 1], true).1,
        vec![(4, NONE), (6, NONE)],
        "committed by id"
    );
    assert!(b.stop().success());
    b.restart();
    let mut c = b.client();
    assert_eq!(
        offset_fetch(&mut c, 8, "g6", "t6", &[0, 1], true).1,
        vec![(4, NONE), (6, NONE)]
    );
}

/// The group errors TxnOffsetCommit v6 brings (Kafka 4.4's
/// `OffsetMetadataManager.validateTransactionalOffsetCommit`): a generation
/// for a group that does not exist is GROUP_ID_NOT_FOUND, and a consumer
/// group member's stale epoch STALE_MEMBER_EPOCH; before v6 both are
/// ILLEGAL_GENERATION. Nothing refused is committed.
#[test]
fn txn_offset_commit_v6_group_errors() {
    let b = txn_broker(&[]);
    let mut c = b.client();
    let id = create_topic(&mut c, "t7", 1, &[]);
    let pid = init_txn(&mut c, "tx7", 60_000);
    let commit_v5 = |c: &mut crate::support::Client, group: &str, member: (i32, &str)| {
        let r = c.call(
            5,
            &txn_offset_commit_request("tx7", pid, group, &[("t7", 0, 9)])
                .with_generation_id(member.0)
                .with_member_id(sb(member.1)),
        );
        r.topics[0].partitions[0].error_code
    };
    let commit_v6 = |c: &mut crate::support::Client, group: &str, member: (i32, &str)| {
        txn_offset_commit_v6(c, "tx7", pid, group, member, &[(id, 0, 9)])[0].1[0].1
    };
    // A generation for no group.
    assert_eq!(
        commit_v6(&mut c, "nogroup", (5, "")),
        E::GroupIdNotFound.code()
    );
    assert_eq!(
        commit_v5(&mut c, "nogroup", (5, "")),
        E::IllegalGeneration.code()
    );
    // A KIP-848 member at its epoch commits; one past it is stale.
    let hb = c.call(
        1,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(sb("cg7")))
            .with_member_id(sb("m7"))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(5000)
            .with_subscribed_topic_names(Some(vec![tn("t7")]))
            .with_topic_partitions(Some(vec![])),
    );
    assert_eq!(hb.error_code, NONE, "{hb:?}");
    let epoch = hb.member_epoch;
    assert_eq!(
        commit_v6(&mut c, "cg7", (epoch + 1, "m7")),
        E::StaleMemberEpoch.code()
    );
    assert_eq!(
        commit_v5(&mut c, "cg7", (epoch + 1, "m7")),
        E::IllegalGeneration.code()
    );
    assert_eq!(commit_v6(&mut c, "cg7", (epoch, "m7")), NONE);
    assert_eq!(end_txn_v(&mut c, 5, "tx7", pid, true), NONE);
    assert_eq!(
        offset_fetch(&mut c, 8, "cg7", "t7", &[0], true).1,
        vec![(9, NONE)]
    );
    assert_eq!(
        offset_fetch(&mut c, 8, "nogroup", "t7", &[0], true).1,
        vec![(-1, NONE)]
    );
}
