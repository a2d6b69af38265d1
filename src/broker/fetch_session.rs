//! Incremental fetch sessions (KIP-227), as Kafka 4.x keeps them
//! (`kafka.server.FetchSession`): the `FetchSessionCache` of
//! `FetchSessionCacheShard`s, each a bounded number of `FetchSession`s with
//! Kafka's eviction rules, and the `FetchManager` that turns a request's
//! session id and epoch into a `FetchContext` (Full, Incremental,
//! Sessionless or SessionError).
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions,
//! split evenly over [`NUM_FETCH_SESSION_CACHE_SHARDS`] shards (Kafka's
//! `NumFetchSessionCacheShards`; a session id names its shard). A full
//! cache makes room by evicting a session unused for longer than
//! [`MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`], else the least valuable
//! session (non-privileged before follower sessions, then fewer
//! partitions, then lower id) that is itself older than that bound, or any
//! non-privileged session when the new one is a follower's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::ResponseError;
use uuid::Uuid;

/// The session id of "no session" (Kafka's `FetchMetadata.INVALID_SESSION_ID`).
pub const INVALID_SESSION_ID: i32 = 0;
/// A full fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// A full fetch that closes its session and asks for none.
pub const FINAL_EPOCH: i32 = -1;
/// Kafka's `KafkaBroker.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`: a
/// session is safe from eviction by a more valuable one this long after
/// its creation, and stale this long after its last use.
pub const MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS: i64 = 120_000;
/// Kafka's `KafkaBroker.NumFetchSessionCacheShards`.
pub const NUM_FETCH_SESSION_CACHE_SHARDS: usize = 8;

/// Kafka's `FetchMetadata.nextEpoch`.
pub fn next_epoch(prev: i32) -> i32 {
    if prev < 0 {
        FINAL_EPOCH
    } else if prev == i32::MAX {
        1
    } else {
        prev + 1
    }
}

/// A request's session id and epoch (Kafka's `FetchMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchMetadata {
    pub session_id: i32,
    pub epoch: i32,
}

impl FetchMetadata {
    /// A full fetch: a new session (epoch 0) or none (epoch -1).
    pub fn is_full(&self) -> bool {
        self.epoch == INITIAL_EPOCH || self.epoch == FINAL_EPOCH
    }
}

/// How a session names a partition: by topic id (Fetch v13+) or by topic
/// name (v7–v12), as Kafka's `CachedPartition.equals` does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PartitionKey {
    Id(Uuid, i32),
    Name(String, i32),
}

impl PartitionKey {
    pub fn new(uses_topic_ids: bool, topic_id: Uuid, topic: &str, partition: i32) -> PartitionKey {
        if uses_topic_ids {
            PartitionKey::Id(topic_id, partition)
        } else {
            PartitionKey::Name(topic.to_string(), partition)
        }
    }
}

/// A partition of a session: what the fetcher asked for last, and what it
/// was last told (Kafka's `CachedPartition`).
#[derive(Clone, Debug, PartialEq)]
pub struct CachedPartition {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub max_bytes: i32,
    pub fetch_offset: i64,
    pub high_watermark: i64,
    pub leader_epoch: i32,
    pub fetcher_log_start_offset: i64,
    pub local_log_start_offset: i64,
    pub last_fetched_epoch: i32,
}

impl CachedPartition {
    /// A partition as a request names it (no response data yet).
    #[allow(clippy::too_many_arguments)]
    pub fn requested(
        topic: String,
        topic_id: Uuid,
        partition: i32,
        fetch_offset: i64,
        fetcher_log_start_offset: i64,
        max_bytes: i32,
        leader_epoch: i32,
        last_fetched_epoch: i32,
    ) -> CachedPartition {
        CachedPartition {
            topic,
            topic_id,
            partition,
            max_bytes,
            fetch_offset,
            high_watermark: -1,
            leader_epoch,
            fetcher_log_start_offset,
            local_log_start_offset: -1,
            last_fetched_epoch,
        }
    }

    pub fn key(&self, uses_topic_ids: bool) -> PartitionKey {
        PartitionKey::new(uses_topic_ids, self.topic_id, &self.topic, self.partition)
    }

    /// Kafka's `updateRequestParams`.
    fn update_request_params(&mut self, req: &CachedPartition) {
        self.max_bytes = req.max_bytes;
        self.fetch_offset = req.fetch_offset;
        self.fetcher_log_start_offset = req.fetcher_log_start_offset;
        self.leader_epoch = req.leader_epoch;
        self.last_fetched_epoch = req.last_fetched_epoch;
    }

    /// Kafka's `maybeUpdateResponseData`: whether an incremental response
    /// must carry this partition (records, a changed high watermark or log
    /// start offset, a preferred read replica, an error, a diverging
    /// epoch); with `update`, remembers what it is told.
    pub fn maybe_update_response_data(&mut self, resp: &PartitionData, update: bool) -> bool {
        let mut must_respond = resp.records.as_ref().is_some_and(|r| !r.is_empty());
        if self.high_watermark != resp.high_watermark {
            must_respond = true;
            if update {
                self.high_watermark = resp.high_watermark;
            }
        }
        if self.local_log_start_offset != resp.log_start_offset {
            must_respond = true;
            if update {
                self.local_log_start_offset = resp.log_start_offset;
            }
        }
        if resp.preferred_read_replica.0 != -1 {
            must_respond = true;
        }
        if resp.error_code != 0 {
            // Re-sent once the error goes away.
            if update {
                self.high_watermark = -1;
            }
            must_respond = true;
        }
        if resp.diverging_epoch.epoch != -1 || resp.diverging_epoch.end_offset != -1 {
            must_respond = true;
        }
        must_respond
    }
}

/// A session's partitions in their order (Kafka's
/// `ImplicitLinkedHashCollection`): a partition that returned records moves
/// to the end, so the next response starts with the others.
#[derive(Default, Debug)]
struct PartitionMap {
    by_key: HashMap<PartitionKey, (u64, CachedPartition)>,
    order: BTreeMap<u64, PartitionKey>,
    next_seq: u64,
}

impl PartitionMap {
    fn len(&self) -> usize {
        self.by_key.len()
    }

    fn get_mut(&mut self, key: &PartitionKey) -> Option<&mut CachedPartition> {
        self.by_key.get_mut(key).map(|(_, p)| p)
    }

    /// Adds at the end; false if the partition is already there.
    fn add(&mut self, key: PartitionKey, p: CachedPartition) -> bool {
        if self.by_key.contains_key(&key) {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.by_key.insert(key, (seq, p));
        true
    }

    fn remove(&mut self, key: &PartitionKey) -> Option<CachedPartition> {
        let (seq, p) = self.by_key.remove(key)?;
        self.order.remove(&seq);
        Some(p)
    }

    fn move_to_end(&mut self, key: &PartitionKey) {
        if let Some(p) = self.remove(key) {
            self.add(key.clone(), p);
        }
    }

    fn in_order(&self) -> Vec<CachedPartition> {
        self.order
            .values()
            .filter_map(|k| self.by_key.get(k).map(|(_, p)| p.clone()))
            .collect()
    }
}

/// One incremental fetch session (Kafka's `FetchSession`).
#[derive(Debug)]
pub struct FetchSession {
    pub id: i32,
    /// A follower's session, which may evict consumers' ones.
    pub privileged: bool,
    partitions: PartitionMap,
    pub uses_topic_ids: bool,
    pub creation_ms: i64,
    pub last_used_ms: i64,
    pub epoch: i32,
    /// The size the cache last accounted for (-1: not in the cache).
    cached_size: i32,
}

impl FetchSession {
    pub fn size(&self) -> usize {
        self.partitions.len()
    }

    fn evictable_key(&self) -> EvictableKey {
        (self.privileged, self.cached_size, self.id)
    }

    /// Kafka's `FetchSession.update`: adds new partitions, updates the
    /// request parameters of known ones, removes the forgotten ones.
    /// Returns (added, updated, removed).
    fn update(
        &mut self,
        fetch_data: &[CachedPartition],
        to_forget: &[PartitionKey],
    ) -> (usize, usize, usize) {
        let (mut added, mut updated, mut removed) = (0, 0, 0);
        for req in fetch_data {
            let key = req.key(self.uses_topic_ids);
            match self.partitions.get_mut(&key) {
                Some(cached) => {
                    cached.update_request_params(req);
                    updated += 1;
                }
                None => {
                    self.partitions.add(key, req.clone());
                    added += 1;
                }
            }
        }
        for key in to_forget {
            if self.partitions.remove(key).is_some() {
                removed += 1;
            }
        }
        (added, updated, removed)
    }
}

/// (privileged, size, id): the least valuable session sorts first.
type EvictableKey = (bool, i32, i32);

/// One shard of the cache (Kafka's `FetchSessionCacheShard`): its sessions
/// and the orderings eviction picks from.
#[derive(Debug)]
pub struct FetchSessionCacheShard {
    max_entries: usize,
    eviction_ms: i64,
    session_id_range: i32,
    shard_num: i32,
    num_partitions: i64,
    sessions: HashMap<i32, FetchSession>,
    /// (last used ms, id).
    last_used: BTreeSet<(i64, i32)>,
    /// Sessions older than `eviction_ms`: any new session may evict them.
    evictable_by_all: BTreeSet<EvictableKey>,
    /// Those plus every non-privileged session: a follower's new session
    /// may evict them.
    evictable_by_privileged: BTreeSet<EvictableKey>,
    evictions: u64,
}

impl FetchSessionCacheShard {
    pub fn new(
        max_entries: usize,
        eviction_ms: i64,
        session_id_range: i32,
        shard_num: i32,
    ) -> FetchSessionCacheShard {
        FetchSessionCacheShard {
            max_entries,
            eviction_ms,
            session_id_range,
            shard_num,
            num_partitions: 0,
            sessions: HashMap::new(),
            last_used: BTreeSet::new(),
            evictable_by_all: BTreeSet::new(),
            evictable_by_privileged: BTreeSet::new(),
            evictions: 0,
        }
    }

    pub fn get(&self, id: i32) -> Option<&FetchSession> {
        self.sessions.get(&id)
    }

    pub fn size(&self) -> usize {
        self.sessions.len()
    }

    pub fn total_partitions(&self) -> i64 {
        self.num_partitions
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// A fresh id in this shard's range, never 0 nor one in use.
    fn new_session_id(&self) -> i32 {
        let low = (self.shard_num.saturating_mul(self.session_id_range)).max(1) as i64;
        let high = (self.shard_num as i64 + 1) * self.session_id_range as i64;
        let span = (high - low).max(1) as u128;
        loop {
            let r = Uuid::new_v4().as_u128() % span;
            let id = (low + r as i64) as i32;
            if id != INVALID_SESSION_ID && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Kafka's `maybeCreateSession`: a new session if there is room or
    /// room can be made, else [`INVALID_SESSION_ID`].
    pub fn maybe_create_session(
        &mut self,
        now: i64,
        privileged: bool,
        uses_topic_ids: bool,
        partitions: Vec<CachedPartition>,
    ) -> i32 {
        let size = partitions.len().min(i32::MAX as usize) as i32;
        if self.sessions.len() >= self.max_entries
            && !self.try_evict(privileged, (privileged, size, 0), now)
        {
            return INVALID_SESSION_ID;
        }
        let mut map = PartitionMap::default();
        for p in partitions {
            let key = p.key(uses_topic_ids);
            match map.get_mut(&key) {
                Some(cached) => cached.update_request_params(&p),
                None => {
                    map.add(key, p);
                }
            }
        }
        let session = FetchSession {
            id: self.new_session_id(),
            privileged,
            partitions: map,
            uses_topic_ids,
            creation_ms: now,
            last_used_ms: now,
            epoch: next_epoch(INITIAL_EPOCH),
            cached_size: -1,
        };
        let id = session.id;
        self.sessions.insert(id, session);
        self.touch(id, now);
        id
    }

    /// Kafka's `tryEvict`: a stale session first, else the least valuable
    /// evictable one if it is worth less than `key`.
    fn try_evict(&mut self, privileged: bool, key: EvictableKey, now: i64) -> bool {
        let Some(&(last_used, id)) = self.last_used.first() else {
            return false;
        };
        if now - last_used > self.eviction_ms {
            self.remove(id);
            self.evictions += 1;
            return true;
        }
        let map = if privileged {
            &self.evictable_by_privileged
        } else {
            &self.evictable_by_all
        };
        match map.first().copied() {
            Some(first) if key >= first => {
                self.remove(first.2);
                self.evictions += 1;
                true
            }
            _ => false,
        }
    }

    pub fn remove(&mut self, id: i32) -> Option<FetchSession> {
        let session = self.sessions.remove(&id)?;
        self.last_used.remove(&(session.last_used_ms, id));
        let key = session.evictable_key();
        self.evictable_by_all.remove(&key);
        self.evictable_by_privileged.remove(&key);
        if session.cached_size > 0 {
            self.num_partitions -= session.cached_size as i64;
        }
        Some(session)
    }

    /// Kafka's `touch`: marks the session used now and re-files it under
    /// its current size.
    fn touch(&mut self, id: i32, now: i64) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        self.last_used.remove(&(session.last_used_ms, id));
        session.last_used_ms = now;
        self.last_used.insert((now, id));
        if session.cached_size != -1 {
            let old = session.evictable_key();
            self.evictable_by_privileged.remove(&old);
            self.evictable_by_all.remove(&old);
            self.num_partitions -= session.cached_size as i64;
        }
        session.cached_size = session.size().min(i32::MAX as usize) as i32;
        let key = session.evictable_key();
        let old_enough = now - session.creation_ms > self.eviction_ms;
        if !session.privileged || old_enough {
            self.evictable_by_privileged.insert(key);
        }
        if old_enough {
            self.evictable_by_all.insert(key);
        }
        self.num_partitions += session.cached_size as i64;
    }
}

/// Kafka's `FetchSessionCache`: the shards, new sessions dealt round-robin.
#[derive(Debug)]
pub struct FetchSessionCache {
    shards: Vec<Mutex<FetchSessionCacheShard>>,
    session_id_range: i32,
    counter: AtomicU32,
    /// Incremental fetch responses sent (kastle's own counter).
    incremental_responses: AtomicU64,
}

impl FetchSessionCache {
    /// `max_slots` (`max.incremental.fetch.session.cache.slots`) split
    /// over the shards as Kafka's `BrokerServer` does (integer division).
    pub fn new(max_slots: usize, eviction_ms: i64) -> FetchSessionCache {
        let n = NUM_FETCH_SESSION_CACHE_SHARDS;
        let range = i32::MAX / n as i32;
        FetchSessionCache {
            shards: (0..n)
                .map(|i| {
                    Mutex::new(FetchSessionCacheShard::new(
                        max_slots / n,
                        eviction_ms,
                        range,
                        i as i32,
                    ))
                })
                .collect(),
            session_id_range: range,
            counter: AtomicU32::new(0),
            incremental_responses: AtomicU64::new(0),
        }
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, FetchSessionCacheShard> {
        // A poisoned shard only means a panic elsewhere; its maps are
        // still consistent between calls.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The shard a session id belongs to.
    fn shard_of(&self, session_id: i32) -> usize {
        ((session_id.max(0) / self.session_id_range) as usize).min(self.shards.len() - 1)
    }

    /// Sessions cached (Kafka's `NumIncrementalFetchSessions`).
    pub fn num_sessions(&self) -> usize {
        (0..self.shards.len()).map(|i| self.lock(i).size()).sum()
    }

    /// Partitions cached (Kafka's `NumIncrementalFetchPartitionsCached`).
    pub fn num_partitions(&self) -> i64 {
        (0..self.shards.len())
            .map(|i| self.lock(i).total_partitions())
            .sum()
    }

    /// Sessions evicted (Kafka's `IncrementalFetchSessionEvictionsPerSec`
    /// meter, as a counter).
    pub fn evictions(&self) -> u64 {
        (0..self.shards.len())
            .map(|i| self.lock(i).evictions())
            .sum()
    }

    /// Incremental fetch responses sent.
    pub fn incremental_responses(&self) -> u64 {
        self.incremental_responses.load(Relaxed)
    }

    /// Kafka's `FetchManager.newContext`.
    pub fn new_context(
        &self,
        version: i16,
        metadata: FetchMetadata,
        is_follower: bool,
        fetch_data: &[CachedPartition],
        to_forget: &[PartitionKey],
        now: i64,
    ) -> FetchContext {
        let uses_topic_ids = version >= 13;
        if metadata.is_full() {
            if metadata.session_id != INVALID_SESSION_ID {
                // A full fetch closes the session it names.
                let shard = self.shard_of(metadata.session_id);
                self.lock(shard).remove(metadata.session_id);
            }
            return if metadata.epoch == FINAL_EPOCH {
                FetchContext::Sessionless
            } else {
                FetchContext::Full {
                    uses_topic_ids,
                    privileged: is_follower,
                }
            };
        }
        let shard_num = self.shard_of(metadata.session_id);
        let mut shard = self.lock(shard_num);
        let Some(session) = shard.sessions.get_mut(&metadata.session_id) else {
            return FetchContext::SessionError(ResponseError::FetchSessionIdNotFound);
        };
        if session.epoch != metadata.epoch {
            return FetchContext::SessionError(ResponseError::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != uses_topic_ids {
            return FetchContext::SessionError(ResponseError::FetchSessionTopicIdError);
        }
        session.update(fetch_data, to_forget);
        if session.size() == 0 {
            shard.remove(metadata.session_id);
            return FetchContext::Sessionless;
        }
        session.epoch = next_epoch(session.epoch);
        let partitions = session.partitions.in_order();
        shard.touch(metadata.session_id, now);
        FetchContext::Incremental {
            session_id: metadata.session_id,
            expected_epoch: next_epoch(metadata.epoch),
            uses_topic_ids,
            partitions,
        }
    }

    /// A full fetch's answer: the new session's id (or 0 when the cache
    /// has no room), its partitions remembered with what the response told.
    pub fn create_session(
        &self,
        now: i64,
        privileged: bool,
        uses_topic_ids: bool,
        partitions: Vec<(CachedPartition, &PartitionData)>,
    ) -> i32 {
        let partitions = partitions
            .into_iter()
            .map(|(mut p, resp)| {
                p.high_watermark = resp.high_watermark;
                p.local_log_start_offset = resp.log_start_offset;
                p
            })
            .collect();
        let n = self.shards.len();
        let shard = (self.counter.fetch_add(1, Relaxed) as usize) % n;
        self.lock(shard)
            .maybe_create_session(now, privileged, uses_topic_ids, partitions)
    }

    /// Whether an incremental session is still at the epoch its request
    /// moved it to (a session evicted meanwhile counts as unchanged).
    pub fn epoch_unchanged(&self, session_id: i32, expected_epoch: i32) -> bool {
        let shard = self.lock(self.shard_of(session_id));
        shard
            .get(session_id)
            .is_none_or(|s| s.epoch == expected_epoch)
    }

    /// An incremental fetch's answer (Kafka's
    /// `IncrementalFetchContext.updateAndGenerateResponseData` with
    /// `update`, `getResponseSize` without): which of `responses` (the
    /// session's partitions as read) the response carries, or None if
    /// the session moved on since the request (INVALID_FETCH_SESSION_EPOCH).
    /// A session evicted meanwhile keeps every partition.
    pub fn select_incremental(
        &self,
        session_id: i32,
        expected_epoch: i32,
        responses: &[(PartitionKey, &PartitionData)],
        update: bool,
    ) -> Option<Vec<bool>> {
        let mut shard = self.lock(self.shard_of(session_id));
        let Some(session) = shard.sessions.get_mut(&session_id) else {
            return Some(vec![true; responses.len()]);
        };
        if session.epoch != expected_epoch {
            return None;
        }
        let mut keep = Vec::with_capacity(responses.len());
        for (key, resp) in responses {
            let Some(cached) = session.partitions.get_mut(key) else {
                keep.push(true);
                continue;
            };
            let must = if update {
                cached.maybe_update_response_data(resp, true)
            } else {
                cached.clone().maybe_update_response_data(resp, false)
            };
            if must && update && resp.records.as_ref().is_some_and(|r| !r.is_empty()) {
                session.partitions.move_to_end(key);
            }
            keep.push(must);
        }
        if update {
            self.incremental_responses.fetch_add(1, Relaxed);
        }
        Some(keep)
    }
}

/// What a fetch request is answered from (Kafka's `FetchContext` kinds).
#[derive(Debug)]
pub enum FetchContext {
    /// The session is unknown, at another epoch, or names topics the
    /// other way: the error and nothing else.
    SessionError(ResponseError),
    /// The request's partitions, no session (epoch -1, or a session
    /// emptied by its forgotten topics).
    Sessionless,
    /// The request's partitions; the answer opens a session if the cache
    /// has room.
    Full {
        uses_topic_ids: bool,
        privileged: bool,
    },
    /// The session's partitions (after this request's changes), in the
    /// session's order.
    Incremental {
        session_id: i32,
        expected_epoch: i32,
        uses_topic_ids: bool,
        partitions: Vec<CachedPartition>,
    },
}

#[cfg(test)]
mod tests;
