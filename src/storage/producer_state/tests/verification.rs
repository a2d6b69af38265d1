//! Unit tests of the KIP-890 verification entries (Kafka's
//! `VerificationStateEntry`): the guard a transaction's first batch here
//! presents, the bound and expiry, the lowest sequence a verification has
//! seen and the sequence rules it brings, and which markers end it.

use super::*;

#[test]
fn a_transaction_starts_here_only_with_its_current_verification() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let first = txn_header(7, 0, 0, 0);
    // Nothing verified: neither the sentinel nor an invented guard admits it.
    assert!(!m.check_verification(&first, VerificationGuard::Sentinel));
    assert!(!m.check_verification(&first, VerificationGuard::Guard(1)));
    let g = m
        .maybe_create_verification_state(7, 0, 0, false, 10)
        .unwrap();
    // A second request of the same producer joins the same verification.
    assert_eq!(
        m.maybe_create_verification_state(7, 0, 0, false, 11),
        Some(g)
    );
    assert!(m.check_verification(&first, VerificationGuard::Guard(g)));
    assert!(!m.check_verification(&first, VerificationGuard::Guard(g + 1)));
    // The first batch lands: the entry goes, the transaction is ongoing and
    // later batches need no verification.
    m.apply(&first);
    assert_eq!(m.verification_state(7), None);
    assert!(m.check_verification(&txn_header(7, 0, 1, 1), VerificationGuard::Sentinel));
    // Its marker ends it; a verification begun before the marker is stale.
    let stale = m
        .maybe_create_verification_state(7, 2, 0, false, 12)
        .unwrap();
    m.apply_control(&marker_header(7, 0, 2, 1000), true, 0);
    assert!(!m.check_verification(&txn_header(7, 0, 2, 3), VerificationGuard::Guard(stale)));
    // A fresh verification gets a new guard.
    let fresh = m
        .maybe_create_verification_state(7, 2, 0, false, 13)
        .unwrap();
    assert_ne!(fresh, stale);
    assert!(m.check_verification(&txn_header(7, 0, 2, 3), VerificationGuard::Guard(fresh)));
    // Non-transactional batches are never held back.
    assert!(m.check_verification(&header(8, 0, 0, 1, 4), VerificationGuard::Sentinel));
}

#[test]
fn verifications_in_progress_are_bounded_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    for pid in 0..MAX_VERIFICATION_STATES as i64 {
        assert!(m
            .maybe_create_verification_state(pid, 0, 0, false, 0)
            .is_some());
    }
    assert_eq!(
        m.maybe_create_verification_state(-5, 0, 0, false, 0),
        None,
        "over the limit"
    );
    m.expiration_ms = 1_000;
    m.remove_expired(1_000);
    assert_eq!(m.verification_state(0), None, "expired with the producers");
    assert!(m
        .maybe_create_verification_state(-5, 0, 0, false, 1_000)
        .is_some());
}

/// Kafka's `VerificationStateEntry.maybeUpdateLowestSequenceAndEpoch`: the
/// lowest first sequence at the newest epoch; the guard and whether the
/// entry is of transaction version 2 stay as created.
#[test]
fn a_verification_keeps_the_lowest_sequence_at_its_newest_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let g = m
        .maybe_create_verification_state(7, 5, 0, false, 10)
        .unwrap();
    let lowest = |m: &ProducerStateManager| {
        let v = m.verification_state(7).unwrap();
        (v.guard, v.epoch, v.lowest_sequence, v.supports_epoch_bump)
    };
    assert_eq!(lowest(&m), (g, 0, 5, false));
    // A lower sequence at the same epoch lowers it, a higher one does not.
    assert_eq!(
        m.maybe_create_verification_state(7, 3, 0, true, 11),
        Some(g)
    );
    assert_eq!(lowest(&m), (g, 0, 3, false), "the flag is the creator's");
    m.maybe_create_verification_state(7, 8, 0, false, 12);
    assert_eq!(lowest(&m), (g, 0, 3, false));
    // A newer epoch restarts the sequences: its sequence, even a higher one.
    m.maybe_create_verification_state(7, 9, 1, false, 13);
    assert_eq!(lowest(&m), (g, 1, 9, false));
    // An older epoch changes nothing.
    m.maybe_create_verification_state(7, 0, 0, false, 14);
    assert_eq!(lowest(&m), (g, 1, 9, false));
    m.maybe_create_verification_state(7, 2, 1, false, 15);
    assert_eq!(lowest(&m), (g, 1, 2, false));
    // Another producer's verification begins at its own sequence.
    let other = m
        .maybe_create_verification_state(8, 4, 2, true, 16)
        .unwrap();
    assert_ne!(other, g);
    let v = m.verification_state(8).unwrap();
    assert_eq!(
        (v.epoch, v.lowest_sequence, v.supports_epoch_bump),
        (2, 4, true)
    );
}

/// The OUT_OF_ORDER_SEQUENCE loop Kafka's verification entry prevents: the
/// first batch (sequence 0) failed its verification (retriably), the next
/// in-flight batch of the producer passes its own; it may not land before
/// the first, whose retry would then be out of order forever.
#[test]
fn a_batch_above_the_verified_lowest_sequence_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    // Both requests began the same verification (transaction version 1).
    let g = m
        .maybe_create_verification_state(7, 0, 0, false, 10)
        .unwrap();
    assert_eq!(
        m.maybe_create_verification_state(7, 1, 0, false, 11),
        Some(g)
    );
    let second = txn_header(7, 0, 1, 0);
    let err = m
        .check_verified(&second, Some(VerificationGuard::Guard(g)))
        .unwrap_err();
    assert_eq!(
        err,
        ProducerError::AheadOfVerifiedSequence {
            producer_id: 7,
            first_seq: 1,
            lowest_seq: 0
        }
    );
    assert_eq!(err.kafka_error_code(), 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    // Whether or not the append presents a verification.
    assert!(m.check(&second).is_err());
    // Unverified comes first (Kafka's order): INVALID_TXN_STATE.
    assert_eq!(
        m.check_verified(&second, Some(VerificationGuard::Guard(g + 1))),
        Err(ProducerError::UnverifiedTransaction { producer_id: 7 })
    );
    // The retried first batch lands; the entry goes with it, and the
    // second batch follows in order.
    let first = txn_header(7, 0, 0, 0);
    assert_eq!(
        m.check_verified(&first, Some(VerificationGuard::Guard(g))),
        Ok(ProducerCheck::Append)
    );
    m.apply(&first);
    assert_eq!(m.verification_state(7), None);
    assert_eq!(
        m.check_verified(&txn_header(7, 0, 1, 1), Some(VerificationGuard::Sentinel)),
        Ok(ProducerCheck::Append)
    );
    // A duplicate is still answered as one.
    assert!(matches!(
        m.check_verified(&first, Some(VerificationGuard::Sentinel)),
        Ok(ProducerCheck::Duplicate(_))
    ));

    // The entry holds every batch of the producer back, a non-transactional
    // one too, and only those above its lowest sequence: a producer with
    // no state here otherwise starts anywhere.
    m.maybe_create_verification_state(8, 2, 0, false, 12);
    assert!(matches!(
        m.check(&header(8, 0, 3, 1, 2)),
        Err(ProducerError::AheadOfVerifiedSequence { lowest_seq: 2, .. })
    ));
    assert_eq!(m.check(&header(8, 0, 2, 1, 2)), Ok(ProducerCheck::Append));
    assert_eq!(m.check(&header(9, 0, 3, 1, 2)), Ok(ProducerCheck::Append));
    // An older epoch is INVALID_PRODUCER_EPOCH before any sequence rule.
    m.apply(&header(10, 1, 0, 1, 3));
    m.maybe_create_verification_state(10, 0, 1, true, 13);
    assert!(matches!(
        m.check(&header(10, 0, 4, 1, 4)),
        Err(ProducerError::InvalidProducerEpoch { current: 1, .. })
    ));
}

/// Kafka's `checkSequence` for a transaction version 2 verification (Produce
/// v12+): a producer with no batches here must start at sequence 0, even
/// at the lowest sequence the verification has seen; with batches here
/// the usual rules apply.
#[test]
fn a_transaction_version_2_producer_without_batches_here_starts_at_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    let g = m
        .maybe_create_verification_state(7, 2, 0, true, 10)
        .unwrap();
    let ahead = txn_header(7, 0, 2, 0);
    let err = m
        .check_verified(&ahead, Some(VerificationGuard::Guard(g)))
        .unwrap_err();
    assert_eq!(
        err,
        ProducerError::FirstSequenceNotZero {
            producer_id: 7,
            first_seq: 2
        }
    );
    assert_eq!(err.kafka_error_code(), 45);
    // Transaction version 1 takes it (nothing known of the producer here).
    let g1 = m
        .maybe_create_verification_state(8, 2, 0, false, 10)
        .unwrap();
    assert_eq!(
        m.check_verified(&txn_header(8, 0, 2, 0), Some(VerificationGuard::Guard(g1))),
        Ok(ProducerCheck::Append)
    );
    // A producer with batches here: its next sequence, as always.
    m.apply(&header(9, 0, 0, 3, 0));
    let g9 = m
        .maybe_create_verification_state(9, 3, 0, true, 11)
        .unwrap();
    assert_eq!(
        m.check_verified(&txn_header(9, 0, 3, 3), Some(VerificationGuard::Guard(g9))),
        Ok(ProducerCheck::Append)
    );
    // An ended transaction version 2 transaction left the producer at the
    // bumped epoch without batches: the next one starts at 0.
    m.apply(&txn_header(11, 0, 0, 4));
    m.apply_control(&marker_header(11, 1, 5, 1000), true, 0);
    let g11 = m
        .maybe_create_verification_state(11, 1, 1, true, 12)
        .unwrap();
    assert!(matches!(
        m.check_verified(
            &txn_header(11, 1, 1, 6),
            Some(VerificationGuard::Guard(g11))
        ),
        Err(ProducerError::FirstSequenceNotZero { .. })
    ));
    m.maybe_create_verification_state(11, 0, 1, true, 13);
    assert_eq!(
        m.check_verified(
            &txn_header(11, 1, 0, 6),
            Some(VerificationGuard::Guard(g11))
        ),
        Ok(ProducerCheck::Append)
    );
}

/// Kafka's `updateProducers`: a marker clears the producer's verification,
/// except a transaction version 2 verification at the marker's epoch (the
/// end bumped the epoch to it: that verification is of the next
/// transaction, begun before the marker arrived).
#[test]
fn a_transaction_version_2_marker_keeps_the_next_transactions_verification() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = empty_mgr(dir.path());
    m.apply(&txn_header(5, 3, 0, 0));
    let next = m
        .maybe_create_verification_state(5, 0, 4, true, 10)
        .unwrap();
    m.apply_control(&marker_header(5, 4, 1, 1000), true, 0);
    assert_eq!(m.verification_state(5).map(|v| v.guard), Some(next));
    assert!(m.check_verification(&txn_header(5, 4, 0, 2), VerificationGuard::Guard(next)));
    // Transaction version 1: the marker ends the verification.
    m.apply(&txn_header(6, 0, 0, 3));
    m.maybe_create_verification_state(6, 0, 0, false, 11);
    m.apply_control(&marker_header(6, 0, 4, 1000), true, 0);
    assert_eq!(m.verification_state(6), None);
    // Version 2 at another epoch than the marker's: ended too.
    m.maybe_create_verification_state(7, 0, 3, true, 12);
    m.apply_control(&marker_header(7, 4, 5, 1000), true, 0);
    assert_eq!(m.verification_state(7), None);
}
