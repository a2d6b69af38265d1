//! KIP-932 share consumption on the partition leader (Kafka's
//! `SharePartitionManager` and `ShareSessionCache`): one
//! [`partition::SharePartition`] per (share group, topic-partition), the
//! share sessions ShareFetch and ShareAcknowledge run in, and the reads of
//! the log that records are acquired from.
//!
//! A share partition is created on its first fetch from the state the
//! share coordinator kept (`coordinator::share`, `__share_group_state`),
//! else from `share.auto.offset.reset`; the handlers persist
//! [`SharePartitionManager::persisted_state`] after each change, and hand
//! the records archived for the dead-letter queue
//! ([`SharePartitionManager::take_dead_letters`]) to [`dlq`].

pub mod dlq;
pub mod partition;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use self::partition::{
    AckBatch, AckError, AcquireLimits, Acquired, PersistedState, ReadBatch, SharePartition,
};
use crate::broker::partition::PartitionError;
use crate::broker::topics::TopicManager;
use crate::record::batch::iter_batches;

/// Kafka's share session epochs.
pub const INITIAL_EPOCH: i32 = 0;
pub const FINAL_EPOCH: i32 = -1;

/// (topic id, partition).
pub type TopicIdPartition = (Uuid, i32);

/// One share session (Kafka's `ShareSession`), keyed by group and member.
#[derive(Debug, Clone)]
struct ShareSession {
    /// The epoch the next request must carry.
    epoch: i32,
    partitions: BTreeSet<TopicIdPartition>,
    /// The connection that opened it: the session ends with it.
    connection: u64,
}

/// How a share partition starts (`share.auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    /// `by_duration:<ISO-8601 duration>`: records newer than this many ms.
    ByDurationMs(i64),
}

impl AutoOffsetReset {
    /// Parses the group config's value (validated when set); Kafka's
    /// default is `latest`.
    pub fn parse(v: Option<&str>) -> AutoOffsetReset {
        match v.map(str::trim) {
            Some("earliest") => AutoOffsetReset::Earliest,
            Some(d) if d.starts_with("by_duration:") => {
                parse_iso_duration_ms(&d["by_duration:".len()..])
                    .map_or(AutoOffsetReset::Latest, AutoOffsetReset::ByDurationMs)
            }
            _ => AutoOffsetReset::Latest,
        }
    }
}

/// The subset of ISO-8601 durations Java's `Duration.parse` reads:
/// `PnDTnHnMn.nS`.
fn parse_iso_duration_ms(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p'))?;
    let (days, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut ms: f64 = 0.0;
    if !days.is_empty() {
        ms += days.strip_suffix(['D', 'd'])?.parse::<f64>().ok()? * 86_400_000.0;
    }
    let mut num = String::new();
    for c in time.chars() {
        let unit = match c.to_ascii_uppercase() {
            'H' => 3_600_000.0,
            'M' => 60_000.0,
            'S' => 1_000.0,
            _ => {
                num.push(c);
                continue;
            }
        };
        ms += num.parse::<f64>().ok()? * unit;
        num.clear();
    }
    (num.is_empty() && ms >= 0.0).then_some(ms as i64)
}

/// A group's settings for its share partitions.
#[derive(Debug, Clone, Copy)]
pub struct ShareSettings {
    pub reset: AutoOffsetReset,
    pub limits: AcquireLimits,
    /// `share.renew.acknowledge.enable` (KIP-1222): whether a RENEW
    /// acknowledgement may restart a record's acquisition lock.
    pub renew_enabled: bool,
}

/// One partition's answer to a fetch.
#[derive(Debug, Clone, Default)]
pub struct ShareFetched {
    pub error: i16,
    pub records: Bytes,
    pub acquired: Vec<Acquired>,
}

/// Why a session request was refused (the whole request's error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    NotFound,
    InvalidEpoch,
    LimitReached,
    InvalidRequest,
}

impl SessionError {
    pub fn code(self) -> i16 {
        match self {
            SessionError::NotFound => ResponseError::ShareSessionNotFound.code(),
            SessionError::InvalidEpoch => ResponseError::InvalidShareSessionEpoch.code(),
            SessionError::LimitReached => ResponseError::ShareSessionLimitReached.code(),
            SessionError::InvalidRequest => ResponseError::InvalidRequest.code(),
        }
    }
}

/// Largest bytes one share partition reads per fetch (a request's
/// MaxBytes bounds the whole response).
pub const MAX_PARTITION_READ_BYTES: usize = 1024 * 1024;

/// Dead letters waiting for the handlers to take them at most (they take
/// them after every change); past it the oldest are dropped.
pub const MAX_PENDING_DEAD_LETTERS: usize = 10_000;

#[derive(Default)]
struct State {
    partitions: HashMap<(String, Uuid, i32), SharePartition>,
    sessions: HashMap<(String, String), ShareSession>,
    dead: Vec<dlq::DeadLetter>,
}

impl State {
    /// Moves the dead-letter candidates of `group`'s share partition `tp`
    /// into the manager's list.
    fn collect_dead(&mut self, group: &str, tp: TopicIdPartition) {
        let Some(sp) = self.partitions.get_mut(&(group.to_string(), tp.0, tp.1)) else {
            return;
        };
        for (offset, delivery_count, cause) in sp.take_dead() {
            self.dead.push(dlq::DeadLetter {
                group: group.to_string(),
                tp,
                offset,
                delivery_count,
                cause,
            });
        }
        if self.dead.len() > MAX_PENDING_DEAD_LETTERS {
            let over = self.dead.len() - MAX_PENDING_DEAD_LETTERS;
            tracing::warn!(over, "share dead letters not taken; dropped");
            self.dead.drain(..over);
        }
    }
}

/// Every share partition and share session on this broker.
pub struct SharePartitionManager {
    state: Mutex<State>,
    /// `group.share.max.share.sessions`.
    pub max_sessions: usize,
    /// The writer's queue of KIP-1191 dead letters.
    pub dlq: dlq::DeadLetterQueue,
}

/// Ends a member's share session and releases the records it holds on the
/// session's partitions; returns those partitions (none without a session).
fn end_session(
    st: &mut State,
    group: &str,
    member: &str,
    delivery_count_limit: i16,
) -> Vec<TopicIdPartition> {
    let Some(s) = st.sessions.remove(&(group.to_string(), member.to_string())) else {
        return Vec::new();
    };
    for (t, p) in &s.partitions {
        if let Some(sp) = st.partitions.get_mut(&(group.to_string(), *t, *p)) {
            sp.release_member(member, delivery_count_limit);
        }
        st.collect_dead(group, (*t, *p));
    }
    s.partitions.into_iter().collect()
}

impl SharePartitionManager {
    pub fn new(max_sessions: usize) -> SharePartitionManager {
        SharePartitionManager {
            state: Mutex::new(State::default()),
            max_sessions,
            dlq: dlq::DeadLetterQueue::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// ShareFetch's session step (Kafka's `newContext`): returns the
    /// session's partitions to fetch (none for the final epoch).
    #[allow(clippy::too_many_arguments)]
    pub fn fetch_session(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        add: &[TopicIdPartition],
        forget: &[TopicIdPartition],
        has_acks: bool,
        connection: u64,
    ) -> Result<Vec<TopicIdPartition>, SessionError> {
        let mut st = self.lock();
        let key = (group.to_string(), member.to_string());
        match epoch {
            FINAL_EPOCH => match st.sessions.contains_key(&key) {
                true => Ok(Vec::new()),
                false => Err(SessionError::NotFound),
            },
            INITIAL_EPOCH => {
                if has_acks {
                    return Err(SessionError::InvalidRequest);
                }
                st.sessions.remove(&key);
                if st.sessions.len() >= self.max_sessions {
                    return Err(SessionError::LimitReached);
                }
                let partitions: BTreeSet<TopicIdPartition> = add.iter().copied().collect();
                let out = partitions.iter().copied().collect();
                st.sessions.insert(
                    key,
                    ShareSession {
                        epoch: 1,
                        partitions,
                        connection,
                    },
                );
                Ok(out)
            }
            _ => {
                let s = st.sessions.get_mut(&key).ok_or(SessionError::NotFound)?;
                if s.epoch != epoch {
                    return Err(SessionError::InvalidEpoch);
                }
                s.partitions.extend(add.iter().copied());
                for f in forget {
                    s.partitions.remove(f);
                }
                s.epoch = next_epoch(s.epoch);
                Ok(s.partitions.iter().copied().collect())
            }
        }
    }

    /// ShareAcknowledge's session step (Kafka's `acknowledgeSessionUpdate`).
    pub fn acknowledge_session(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
    ) -> Result<(), SessionError> {
        if epoch == INITIAL_EPOCH {
            return Err(SessionError::InvalidEpoch);
        }
        let mut st = self.lock();
        let key = (group.to_string(), member.to_string());
        let s = st.sessions.get_mut(&key).ok_or(SessionError::NotFound)?;
        if epoch == FINAL_EPOCH {
            return Ok(());
        }
        if s.epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        s.epoch = next_epoch(s.epoch);
        Ok(())
    }

    /// Closes the member's session (final epoch) and releases the records
    /// it holds on the session's partitions.
    pub fn release_session(&self, group: &str, member: &str, delivery_count_limit: i16) {
        end_session(&mut self.lock(), group, member, delivery_count_limit);
    }

    /// Whether any share session is open (a closed connection need not
    /// look further).
    pub fn has_sessions(&self) -> bool {
        !self.lock().sessions.is_empty()
    }

    /// The (group, member) of each share session `connection` opened.
    pub fn connection_sessions(&self, connection: u64) -> Vec<(String, String)> {
        self.lock()
            .sessions
            .iter()
            .filter(|(_, s)| s.connection == connection)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Ends the member's session if `connection` still owns it (the
    /// member may have opened a new one elsewhere) and releases the records
    /// it holds; returns the share partitions whose state changed.
    pub fn release_connection_session(
        &self,
        group: &str,
        member: &str,
        connection: u64,
        delivery_count_limit: i16,
    ) -> Vec<TopicIdPartition> {
        let mut st = self.lock();
        let key = (group.to_string(), member.to_string());
        if st.sessions.get(&key).map(|s| s.connection) != Some(connection) {
            return Vec::new();
        }
        end_session(&mut st, group, member, delivery_count_limit)
    }

    /// Applies acknowledgements to one share partition.
    pub fn acknowledge(
        &self,
        group: &str,
        tp: TopicIdPartition,
        member: &str,
        batches: &[AckBatch],
        settings: &ShareSettings,
        now_ms: i64,
    ) -> Result<(), AckError> {
        let mut st = self.lock();
        let Some(sp) = st.partitions.get_mut(&(group.to_string(), tp.0, tp.1)) else {
            return Err(AckError::InvalidRecordState(
                "The share partition has no records in flight".to_string(),
            ));
        };
        sp.expire_locks(now_ms, settings.limits.delivery_count_limit);
        // A renewed lock runs the group's lock duration from now (Kafka's
        // `scheduleAcquisitionLockTimeout`).
        let renewed = settings
            .renew_enabled
            .then(|| now_ms.saturating_add(settings.limits.lock_duration_ms));
        let out = sp.acknowledge(
            member,
            batches,
            settings.limits.delivery_count_limit,
            renewed,
        );
        st.collect_dead(group, tp);
        out
    }

    /// The records archived for the dead-letter queue since the last call
    /// (KIP-1191): the handlers decide, per group, whether they are written.
    pub fn take_dead_letters(&self) -> Vec<dlq::DeadLetter> {
        std::mem::take(&mut self.lock().dead)
    }

    /// Reads the partition from the share partition's next fetch offset
    /// and acquires what is available for `member` (locked from now). A
    /// share partition this broker has no state for yet starts from
    /// `persisted` (called without this manager's lock held), else from
    /// the group's `share.auto.offset.reset`.
    #[allow(clippy::too_many_arguments)]
    pub fn fetch(
        &self,
        topics: &TopicManager,
        group: &str,
        tp: TopicIdPartition,
        member: &str,
        settings: &ShareSettings,
        max_bytes: usize,
        persisted: &dyn Fn() -> Option<PersistedState>,
    ) -> ShareFetched {
        let now_ms = crate::util::now_ms();
        let err = |e: ResponseError| ShareFetched {
            error: e.code(),
            ..Default::default()
        };
        let Some(topic) = topics.get_by_id(&tp.0) else {
            return err(ResponseError::UnknownTopicId);
        };
        let Some(partition) = topic.partition(tp.1).cloned() else {
            return err(ResponseError::UnknownTopicOrPartition);
        };
        let key = (group.to_string(), tp.0, tp.1);
        let limit = settings.limits.delivery_count_limit;
        let known = self.lock().partitions.contains_key(&key);
        let restored = if known { None } else { persisted() };
        let offset = {
            let mut st = self.lock();
            if let (false, Some(s)) = (st.partitions.contains_key(&key), &restored) {
                st.partitions
                    .insert(key.clone(), SharePartition::from_persisted(s));
            }
            if !st.partitions.contains_key(&key) {
                let state = partition.state();
                let start = match settings.reset {
                    AutoOffsetReset::Earliest => state.log_start_offset,
                    AutoOffsetReset::Latest => state.high_watermark,
                    AutoOffsetReset::ByDurationMs(d) => partition
                        .offset_for_timestamp(now_ms.saturating_sub(d), false)
                        .ok()
                        .flatten()
                        .map_or(state.high_watermark, |(_, o)| o),
                };
                st.partitions
                    .insert(key.clone(), SharePartition::new(start));
            }
            let Some(sp) = st.partitions.get_mut(&key) else {
                return err(ResponseError::UnknownServerError);
            };
            sp.expire_locks(now_ms, limit);
            let next = sp.next_fetch_offset();
            st.collect_dead(group, tp);
            next
        };
        // The log is read outside the lock; acquisition re-checks states.
        let read = match partition.fetch(offset, max_bytes.min(MAX_PARTITION_READ_BYTES), true) {
            Ok(r) => r,
            Err(PartitionError::OffsetOutOfRange { log_start, .. }) => {
                let mut st = self.lock();
                if let Some(sp) = st.partitions.get_mut(&key) {
                    sp.move_start_to(log_start);
                }
                return ShareFetched::default();
            }
            Err(e) => return err(e.code()),
        };
        let bytes = match read.read() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(topic = %topic.name, partition = tp.1, error = %e, "share fetch read failed");
                return err(ResponseError::KafkaStorageError);
            }
        };
        let batches: Vec<ReadBatch> = iter_batches(&bytes)
            .map(|(_, h)| ReadBatch {
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                control: h.is_control(),
            })
            .collect();
        let acquired = {
            let mut st = self.lock();
            let Some(sp) = st.partitions.get_mut(&key) else {
                return err(ResponseError::UnknownServerError);
            };
            sp.move_start_to(read.log_start_offset);
            sp.acquire(member, &batches, settings.limits, now_ms)
        };
        if acquired.is_empty() {
            return ShareFetched::default();
        }
        // Only the batches holding acquired records are sent.
        let first = acquired.first().map_or(0, |a| a.first_offset);
        let last = acquired.last().map_or(0, |a| a.last_offset);
        let mut from = None;
        let mut to = 0;
        for (at, h) in iter_batches(&bytes) {
            if h.last_offset() < first || h.base_offset > last {
                continue;
            }
            from.get_or_insert(at);
            to = at + h.total_size();
        }
        let records = from.map_or_else(Bytes::new, |f| bytes.slice(f..to));
        ShareFetched {
            error: 0,
            records,
            acquired,
        }
    }

    /// What `__share_group_state` should hold of a share partition, if
    /// this broker has state for it.
    pub fn persisted_state(&self, group: &str, tp: TopicIdPartition) -> Option<PersistedState> {
        self.lock()
            .partitions
            .get(&(group.to_string(), tp.0, tp.1))
            .map(SharePartition::persisted)
    }

    /// Forgets the state of `group`'s share partitions that `which` picks
    /// (AlterShareGroupOffsets, DeleteShareGroupOffsets, DeleteGroups of
    /// an empty group: the next fetch starts from what was persisted).
    pub fn forget_partitions(&self, group: &str, which: impl Fn(&TopicIdPartition) -> bool) {
        self.lock()
            .partitions
            .retain(|(g, t, p), _| g != group || !which(&(*t, *p)));
    }

    /// The share partitions a member's session holds.
    pub fn session_partitions(&self, group: &str, member: &str) -> Vec<TopicIdPartition> {
        self.lock()
            .sessions
            .get(&(group.to_string(), member.to_string()))
            .map(|s| s.partitions.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A share partition's start offset, if it has state (for tests and
    /// describe).
    pub fn start_offset(&self, group: &str, tp: TopicIdPartition) -> Option<i64> {
        self.lock()
            .partitions
            .get(&(group.to_string(), tp.0, tp.1))
            .map(|p| p.start_offset)
    }

    /// Every share partition of `group`: its start offset and KIP-1226
    /// delivery-complete count, as its last state write carried them.
    pub fn group_start_offsets(&self, group: &str) -> BTreeMap<TopicIdPartition, (i64, i32)> {
        self.lock()
            .partitions
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), sp)| {
                let state = sp.persisted();
                let complete =
                    partition::delivery_complete_count(&state.batches, state.start_offset);
                ((*t, *p), (state.start_offset, complete))
            })
            .collect()
    }
}

/// Kafka's `ShareRequestMetadata.nextEpoch`: wraps to 1, never 0.
fn next_epoch(epoch: i32) -> i32 {
    if epoch < 0 {
        epoch
    } else if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_epochs_follow_kafka() {
        let m = SharePartitionManager::new(2);
        let tp = (Uuid::from_u128(1), 0);
        assert_eq!(
            m.fetch_session("g", "m", 1, &[tp], &[], false, 1),
            Err(SessionError::NotFound)
        );
        assert_eq!(
            m.fetch_session("g", "m", 0, &[tp], &[], true, 1),
            Err(SessionError::InvalidRequest)
        );
        assert_eq!(
            m.fetch_session("g", "m", 0, &[tp], &[], false, 1),
            Ok(vec![tp])
        );
        assert_eq!(
            m.fetch_session("g", "m", 2, &[], &[], false, 1),
            Err(SessionError::InvalidEpoch)
        );
        assert_eq!(
            m.fetch_session("g", "m", 1, &[], &[], false, 1),
            Ok(vec![tp])
        );
        assert_eq!(m.acknowledge_session("g", "m", 2), Ok(()));
        assert_eq!(
            m.acknowledge_session("g", "m", 0),
            Err(SessionError::InvalidEpoch)
        );
        assert_eq!(
            m.fetch_session("g", "m", 3, &[], &[tp], false, 1),
            Ok(vec![])
        );
        assert_eq!(
            m.fetch_session("g", "m", -1, &[], &[], false, 1),
            Ok(vec![])
        );
        m.fetch_session("g", "m2", 0, &[], &[], false, 1).unwrap();
        assert_eq!(
            m.fetch_session("g", "m3", 0, &[], &[], false, 1),
            Err(SessionError::LimitReached)
        );
    }

    #[test]
    fn durations_parse_as_java_does() {
        assert_eq!(parse_iso_duration_ms("PT1H"), Some(3_600_000));
        assert_eq!(
            parse_iso_duration_ms("P1DT2M3.5S"),
            Some(86_400_000 + 120_000 + 3_500)
        );
        assert_eq!(
            AutoOffsetReset::parse(Some("earliest")),
            AutoOffsetReset::Earliest
        );
        assert_eq!(AutoOffsetReset::parse(None), AutoOffsetReset::Latest);
    }
}
