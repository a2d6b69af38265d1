//! Unit tests of the fetch session cache: Kafka's eviction order, the
//! slots split over shards, the epoch rules of `newContext`, and incremental
//! add / change / forget with the response selection.

use super::*;
use bytes::Bytes;

fn part(topic: &str, p: i32, offset: i64) -> CachedPartition {
    CachedPartition::requested(
        topic.to_string(),
        Uuid::nil(),
        p,
        offset,
        -1,
        1 << 20,
        -1,
        -1,
    )
}

fn parts(n: i32) -> Vec<CachedPartition> {
    (0..n).map(|p| part("t", p, 0)).collect()
}

const EVICT: i64 = MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS;

#[test]
fn next_epoch_wraps_to_one_and_keeps_final() {
    assert_eq!(next_epoch(0), 1);
    assert_eq!(next_epoch(7), 8);
    assert_eq!(next_epoch(i32::MAX), 1);
    assert_eq!(next_epoch(-1), FINAL_EPOCH);
    assert_eq!(next_epoch(-5), FINAL_EPOCH);
}

#[test]
fn a_full_shard_refuses_until_a_session_is_stale() {
    let mut shard = FetchSessionCacheShard::new(2, EVICT, i32::MAX, 0);
    let a = shard.maybe_create_session(0, false, false, parts(3));
    let b = shard.maybe_create_session(10, false, false, parts(3));
    assert!(a != INVALID_SESSION_ID && b != INVALID_SESSION_ID && a != b);
    assert_eq!(shard.get(a).map(|s| s.epoch), Some(1));
    // Full, nothing stale, no session older than the bound: refused.
    assert_eq!(
        shard.maybe_create_session(20, false, false, parts(10)),
        INVALID_SESSION_ID
    );
    assert_eq!((shard.size(), shard.total_partitions()), (2, 6));
    // a unused for longer than the bound: evicted for the newcomer.
    let c = shard.maybe_create_session(EVICT + 1, false, false, parts(1));
    assert_ne!(c, INVALID_SESSION_ID);
    assert!(shard.get(a).is_none() && shard.get(b).is_some());
    assert_eq!(
        (shard.size(), shard.total_partitions(), shard.evictions()),
        (2, 4, 1)
    );
}

#[test]
fn eviction_prefers_smaller_and_non_privileged_sessions() {
    let mut shard = FetchSessionCacheShard::new(2, EVICT, i32::MAX, 0);
    let small = shard.maybe_create_session(0, false, false, parts(2));
    let big = shard.maybe_create_session(0, false, false, parts(5));
    // Both used recently but created long ago: evictable by all.
    shard.touch(small, EVICT + 5);
    shard.touch(big, EVICT + 5);
    // A newcomer smaller than every session cannot evict.
    assert_eq!(
        shard.maybe_create_session(EVICT + 6, false, false, parts(1)),
        INVALID_SESSION_ID
    );
    // One at least as big as the smallest evicts it.
    let c = shard.maybe_create_session(EVICT + 6, false, false, parts(3));
    assert_ne!(c, INVALID_SESSION_ID);
    assert!(shard.get(small).is_none() && shard.get(big).is_some());
}

#[test]
fn followers_evict_young_consumer_sessions_consumers_do_not() {
    let mut shard = FetchSessionCacheShard::new(1, EVICT, i32::MAX, 0);
    let consumer = shard.maybe_create_session(0, false, false, parts(50));
    // A young consumer session is safe from another consumer...
    assert_eq!(
        shard.maybe_create_session(1, false, false, parts(100)),
        INVALID_SESSION_ID
    );
    // ...but not from a follower, whatever the sizes.
    let follower = shard.maybe_create_session(2, true, false, parts(1));
    assert_ne!(follower, INVALID_SESSION_ID);
    assert!(shard.get(consumer).is_none());
    // A young follower session is safe from everyone.
    assert_eq!(
        shard.maybe_create_session(3, true, false, parts(100)),
        INVALID_SESSION_ID
    );
    assert_eq!(
        shard.maybe_create_session(3, false, false, parts(100)),
        INVALID_SESSION_ID
    );
    // Once older than the bound, a privileged newcomer may evict it
    // (same privilege, more partitions), a consumer may not
    // (privileged sessions sort after non-privileged ones).
    shard.touch(follower, EVICT + 3);
    assert_eq!(
        shard.maybe_create_session(EVICT + 4, false, false, parts(100)),
        INVALID_SESSION_ID
    );
    assert_eq!(
        shard.maybe_create_session(EVICT + 4, true, false, parts(1)),
        INVALID_SESSION_ID
    );
    assert_ne!(
        shard.maybe_create_session(EVICT + 4, true, false, parts(2)),
        INVALID_SESSION_ID
    );
    assert!(shard.get(follower).is_none());
}

#[test]
fn zero_slots_give_no_sessions() {
    let cache = FetchSessionCache::new(0, EVICT);
    let resp = PartitionData::default();
    let id = cache.create_session(0, false, false, vec![(part("t", 0, 0), &resp)]);
    assert_eq!(id, INVALID_SESSION_ID);
    // Kafka splits the slots over 8 shards: 7 slots are none per shard.
    let cache = FetchSessionCache::new(7, EVICT);
    assert_eq!(
        cache.create_session(0, false, false, vec![(part("t", 0, 0), &resp)]),
        0
    );
    let cache = FetchSessionCache::new(8, EVICT);
    let ids: Vec<i32> = (0..9)
        .map(|_| cache.create_session(0, false, false, vec![(part("t", 0, 0), &resp)]))
        .collect();
    assert!(ids[..8].iter().all(|&id| id != 0), "{ids:?}");
    assert_eq!(ids[8], 0, "the ninth session finds its shard full");
    assert_eq!((cache.num_sessions(), cache.num_partitions()), (8, 8));
    // Each id lies in its shard's range.
    for (i, id) in ids[..8].iter().enumerate() {
        assert_eq!(cache.shard_of(*id), i);
    }
}

fn data(hw: i64, lso: i64, records: usize) -> PartitionData {
    PartitionData::default()
        .with_high_watermark(hw)
        .with_log_start_offset(lso)
        .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
        .with_records(Some(Bytes::from(vec![0u8; records])))
}

fn incremental(
    cache: &FetchSessionCache,
    id: i32,
    epoch: i32,
    add: &[CachedPartition],
    forget: &[PartitionKey],
) -> FetchContext {
    cache.new_context(
        12,
        FetchMetadata {
            session_id: id,
            epoch,
        },
        false,
        add,
        forget,
        0,
    )
}

#[test]
fn contexts_follow_kafkas_epoch_rules() {
    let cache = FetchSessionCache::new(1000, EVICT);
    let meta = |session_id, epoch| FetchMetadata { session_id, epoch };
    assert!(matches!(
        cache.new_context(12, meta(0, -1), false, &[], &[], 0),
        FetchContext::Sessionless
    ));
    assert!(matches!(
        cache.new_context(12, meta(0, 0), false, &[], &[], 0),
        FetchContext::Full {
            uses_topic_ids: false,
            privileged: false
        }
    ));
    assert!(matches!(
        cache.new_context(13, meta(0, 0), true, &[], &[], 0),
        FetchContext::Full {
            uses_topic_ids: true,
            privileged: true
        }
    ));
    // Epoch > 0 without a session, or with an unknown one.
    for m in [meta(0, 1), meta(12345, 1), meta(12345, -2)] {
        assert!(matches!(
            cache.new_context(12, m, false, &[], &[], 0),
            FetchContext::SessionError(ResponseError::FetchSessionIdNotFound)
        ));
    }
    let d = data(10, 0, 0);
    let id = cache.create_session(
        0,
        false,
        false,
        vec![(part("t", 0, 0), &d), (part("t", 1, 0), &d)],
    );
    assert_ne!(id, 0);
    // Wrong epoch, wrong topic-id mode.
    assert!(matches!(
        incremental(&cache, id, 2, &[], &[]),
        FetchContext::SessionError(ResponseError::InvalidFetchSessionEpoch)
    ));
    assert!(matches!(
        cache.new_context(13, meta(id, 1), false, &[], &[], 0),
        FetchContext::SessionError(ResponseError::FetchSessionTopicIdError)
    ));
    // Epoch 1 is right; the next one is 2, and 1 again is refused.
    assert!(matches!(
        incremental(&cache, id, 1, &[], &[]),
        FetchContext::Incremental {
            expected_epoch: 2,
            ..
        }
    ));
    assert!(matches!(
        incremental(&cache, id, 1, &[], &[]),
        FetchContext::SessionError(ResponseError::InvalidFetchSessionEpoch)
    ));
    // A full fetch naming the session closes it (epoch 0 opens anew).
    assert!(matches!(
        cache.new_context(12, meta(id, 0), false, &[], &[], 0),
        FetchContext::Full { .. }
    ));
    assert!(matches!(
        incremental(&cache, id, 2, &[], &[]),
        FetchContext::SessionError(ResponseError::FetchSessionIdNotFound)
    ));
    assert_eq!(cache.num_sessions(), 0);
    // Epoch -1 closes without opening.
    let id = cache.create_session(0, false, false, vec![(part("t", 0, 0), &d)]);
    assert!(matches!(
        cache.new_context(12, meta(id, -1), false, &[], &[], 0),
        FetchContext::Sessionless
    ));
    assert_eq!(cache.num_sessions(), 0);
}

#[test]
fn incremental_add_change_forget_and_pruning() {
    let cache = FetchSessionCache::new(1000, EVICT);
    let d = data(10, 0, 0);
    let id = cache.create_session(
        0,
        false,
        false,
        vec![(part("t", 0, 0), &d), (part("t", 1, 0), &d)],
    );
    // Add t-2, change t-0's offset.
    let ctx = incremental(&cache, id, 1, &[part("t", 2, 0), part("t", 0, 5)], &[]);
    let FetchContext::Incremental {
        partitions,
        expected_epoch,
        ..
    } = ctx
    else {
        panic!("incremental expected: {ctx:?}");
    };
    let got: Vec<(i32, i64)> = partitions
        .iter()
        .map(|p| (p.partition, p.fetch_offset))
        .collect();
    assert_eq!(got, vec![(0, 5), (1, 0), (2, 0)]);
    assert_eq!(cache.num_partitions(), 3);
    // t-0 has records, t-1 is unchanged, t-2 is new (no hw known).
    let (r0, r1, r2) = (data(10, 0, 100), data(10, 0, 0), data(10, 0, 0));
    let keys: Vec<PartitionKey> = (0..3).map(|p| PartitionKey::Name("t".into(), p)).collect();
    let resp = vec![
        (keys[0].clone(), &r0),
        (keys[1].clone(), &r1),
        (keys[2].clone(), &r2),
    ];
    // Sizing does not update: asking twice gives the same answer.
    assert_eq!(
        cache.select_incremental(id, expected_epoch, &resp, false),
        Some(vec![true, false, true])
    );
    assert_eq!(
        cache.select_incremental(id, expected_epoch, &resp, true),
        Some(vec![true, false, true])
    );
    // A stale epoch is refused.
    assert_eq!(cache.select_incremental(id, 1, &resp, true), None);
    // t-0 returned records: it now comes last. Forget t-1.
    let ctx = incremental(&cache, id, 2, &[], &[keys[1].clone()]);
    let FetchContext::Incremental {
        partitions,
        expected_epoch,
        ..
    } = ctx
    else {
        panic!("incremental expected: {ctx:?}");
    };
    let order: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
    assert_eq!(order, vec![2, 0]);
    // Nothing changed now: nothing to send; an error always goes out,
    // and a log start offset change too.
    let same = data(10, 0, 0);
    let err = data(-1, -1, 0).with_error_code(ResponseError::NotLeaderOrFollower.code());
    let resp = vec![(keys[2].clone(), &same), (keys[0].clone(), &same)];
    assert_eq!(
        cache.select_incremental(id, expected_epoch, &resp, true),
        Some(vec![false, false])
    );
    let FetchContext::Incremental { expected_epoch, .. } = incremental(&cache, id, 3, &[], &[])
    else {
        panic!("incremental expected");
    };
    let moved = data(10, 4, 0);
    let resp = vec![(keys[2].clone(), &err), (keys[0].clone(), &moved)];
    assert_eq!(
        cache.select_incremental(id, expected_epoch, &resp, true),
        Some(vec![true, true])
    );
    // Forgetting every partition closes the session: sessionless.
    assert!(matches!(
        incremental(&cache, id, 4, &[], &keys),
        FetchContext::Sessionless
    ));
    assert_eq!((cache.num_sessions(), cache.num_partitions()), (0, 0));
}
