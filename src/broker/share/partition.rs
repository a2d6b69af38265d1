//! Kafka's `SharePartition`: the state of one topic-partition as one share
//! group consumes it. Offsets below the share-partition start offset
//! (SPSO) are done; between it and the end offset the in-flight records
//! each have a state (Available, Acquired by a member until its
//! acquisition lock expires, Acknowledged, Archived) and a delivery count.
//! Records acquired `delivery_count_limit` times and then released or
//! timed out are archived, never delivered again; those and REJECTed
//! records are noted for the group's dead-letter queue (`dlq`, KIP-1191).
//!
//! Pure state: the manager (`broker::share`) reads the log and passes the
//! batches' offsets in; locks are expired lazily, on each access.

use std::collections::BTreeMap;

use super::dlq::Cause;

/// Kafka's `RecordState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired,
    Acknowledged,
    Archived,
}

/// Kafka's `AcknowledgeType`: the wire's acknowledge types.
pub const ACK_GAP: i8 = 0;
pub const ACK_ACCEPT: i8 = 1;
pub const ACK_RELEASE: i8 = 2;
pub const ACK_REJECT: i8 = 3;
/// KIP-1222 (ShareFetch/ShareAcknowledge v2): the record stays acquired by
/// the same member, its delivery count unchanged, and its acquisition lock
/// starts again.
pub const ACK_RENEW: i8 = 4;

#[derive(Debug, Clone)]
struct InFlight {
    state: RecordState,
    delivery_count: i16,
    member: String,
    lock_until_ms: i64,
}

/// One acknowledgement batch: first and last offset, and one type for
/// the whole range or one per offset.
pub type AckBatch = (i64, i64, Vec<i8>);

/// One acquired range, as ShareFetch's AcquiredRecords reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

/// One batch of a read: its offsets and whether it is a control batch.
#[derive(Debug, Clone, Copy)]
pub struct ReadBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub control: bool,
}

/// The limits of one acquisition.
#[derive(Debug, Clone, Copy)]
pub struct AcquireLimits {
    pub lock_duration_ms: i64,
    pub delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks`: in-flight records at most.
    pub max_in_flight: i64,
    pub max_records: i64,
    /// KIP-1206's record-limit acquire mode: exactly `max_records` at most,
    /// a batch split where the limit falls; else (batch-optimized) a batch
    /// once started is taken whole.
    pub record_limit: bool,
}

/// Why an acknowledgement was refused (the partition's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckError {
    /// INVALID_RECORD_STATE.
    InvalidRecordState(String),
    /// INVALID_REQUEST.
    InvalidRequest(String),
}

/// Kafka's `PersisterStateBatch`: a range of offsets in one persisted
/// delivery state (0 available, 2 acknowledged, 4 archived) with one
/// delivery count. Acquired records are persisted as what they were
/// before their acquisition (available, one delivery fewer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_state: i8,
    pub delivery_count: i16,
}

/// Kafka's persisted delivery states.
pub const PERSISTED_AVAILABLE: i8 = 0;
pub const PERSISTED_ACKNOWLEDGED: i8 = 2;
pub const PERSISTED_ARCHIVED: i8 = 4;

/// What `__share_group_state` keeps of a share partition: its start
/// offset and the state batches at or above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedState {
    pub start_offset: i64,
    pub batches: Vec<StateBatch>,
}

/// KIP-1226's delivery-complete count: the offsets at or above the start
/// offset whose delivery is complete (acknowledged or archived), what the
/// share coordinator records and DescribeShareGroupOffsets v1's lag
/// subtracts.
pub fn delivery_complete_count(batches: &[StateBatch], start_offset: i64) -> i32 {
    let n: i64 = batches
        .iter()
        .filter(|b| {
            matches!(
                b.delivery_state,
                PERSISTED_ACKNOWLEDGED | PERSISTED_ARCHIVED
            )
        })
        .map(|b| (b.last_offset - b.first_offset.max(start_offset) + 1).max(0))
        .sum();
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// How far above its start offset a share partition restored from
/// `__share_group_state` may have records in flight; Kafka bounds the
/// in-flight records by `group.share.partition.max.record.locks` (at most
/// 10000 per its validator), so a stored batch reaching further is
/// corrupt and is cut here rather than sizing the state.
pub const MAX_RESTORED_IN_FLIGHT: i64 = 100_000;

#[derive(Debug, Clone)]
pub struct SharePartition {
    /// SPSO: every offset below is acknowledged or archived.
    pub start_offset: i64,
    /// One past the last offset ever acquired (Kafka's SPEO + 1).
    pub end_offset: i64,
    records: BTreeMap<i64, InFlight>,
    /// The start offset the next state write carries: Kafka's share
    /// partition writes its state with the start offset it had before the
    /// change being written and moves its cached start offset only once
    /// the write is done (`rollbackOrProcessStateUpdates`), so what
    /// `__share_group_state` (and DescribeShareGroupOffsets) holds lags
    /// one change behind.
    persisted_start: i64,
    /// The records done between `persisted_start` and `start_offset`
    /// (no longer in `records`), written with it, coalesced.
    completed: Vec<StateBatch>,
    /// Records archived by REJECT or at the delivery-count limit since the
    /// manager last took them: (offset, delivery count, why), candidates
    /// for the group's dead-letter queue (KIP-1191).
    dead: Vec<(i64, i16, Cause)>,
}

impl SharePartition {
    pub fn new(start_offset: i64) -> SharePartition {
        SharePartition {
            start_offset,
            end_offset: start_offset,
            records: BTreeMap::new(),
            persisted_start: start_offset,
            completed: Vec::new(),
            dead: Vec::new(),
        }
    }

    /// A share partition as `__share_group_state` left it (Kafka's
    /// `maybeInitialize` from ReadShareGroupState): acknowledged and
    /// archived records stay done, available ones keep their delivery
    /// counts, and offsets between the batches are available and never
    /// delivered.
    pub fn from_persisted(state: &PersistedState) -> SharePartition {
        let start = state.start_offset;
        let cap = start.saturating_add(MAX_RESTORED_IN_FLIGHT);
        let mut p = SharePartition::new(start);
        for b in &state.batches {
            let last = b.last_offset.min(cap - 1);
            if last < start || last < b.first_offset {
                continue;
            }
            if b.last_offset > last {
                tracing::warn!(
                    first = b.first_offset,
                    last = b.last_offset,
                    "a persisted share state batch reaches too far; cut"
                );
            }
            let state = match b.delivery_state {
                PERSISTED_ACKNOWLEDGED => RecordState::Acknowledged,
                PERSISTED_ARCHIVED => RecordState::Archived,
                _ => RecordState::Available,
            };
            for o in b.first_offset.max(start)..=last {
                p.records.insert(
                    o,
                    InFlight {
                        state,
                        delivery_count: b.delivery_count.max(0),
                        member: String::new(),
                        lock_until_ms: 0,
                    },
                );
            }
            p.end_offset = p.end_offset.max(last + 1);
        }
        // The offsets no batch covers were never delivered.
        for o in start..p.end_offset {
            p.records.entry(o).or_insert_with(|| InFlight {
                state: RecordState::Available,
                delivery_count: 0,
                member: String::new(),
                lock_until_ms: 0,
            });
        }
        p.advance_start();
        // Kafka moves the cached start offset once the state is read: the
        // next write carries the moved one.
        p.begin_change();
        p
    }

    /// The state to persist: the start offset and the in-flight records'
    /// states, coalesced into batches. Records delivered nowhere yet need
    /// no batch; an acquired record counts as available with the
    /// delivery count it had before (Kafka persists no acquisition).
    pub fn persisted(&self) -> PersistedState {
        let mut batches: Vec<StateBatch> = self.completed.clone();
        for (o, r) in &self.records {
            let (state, count) = match r.state {
                RecordState::Available => (PERSISTED_AVAILABLE, r.delivery_count),
                RecordState::Acquired => (PERSISTED_AVAILABLE, r.delivery_count - 1),
                RecordState::Acknowledged => (PERSISTED_ACKNOWLEDGED, r.delivery_count),
                RecordState::Archived => (PERSISTED_ARCHIVED, r.delivery_count),
            };
            if state == PERSISTED_AVAILABLE && count <= 0 {
                continue;
            }
            push_coalesced(&mut batches, *o, state, count);
        }
        PersistedState {
            start_offset: self.persisted_start,
            batches,
        }
    }

    /// A change the share partition writes to `__share_group_state` is
    /// about to be made: its write carries the start offset as it is now.
    fn begin_change(&mut self) {
        self.persisted_start = self.start_offset;
        self.completed.clear();
    }

    /// Acquired records whose lock expired become available again (or
    /// archived, past the delivery limit).
    pub fn expire_locks(&mut self, now_ms: i64, delivery_count_limit: i16) {
        let expired = |r: &InFlight| r.state == RecordState::Acquired && r.lock_until_ms <= now_ms;
        if self.records.values().any(expired) {
            self.begin_change();
        }
        for (o, r) in self.records.iter_mut() {
            if r.state == RecordState::Acquired && r.lock_until_ms <= now_ms {
                release(r, delivery_count_limit, *o, &mut self.dead);
            }
        }
        self.advance_start();
    }

    /// The offset a read should start at: the first available in-flight
    /// record, else the end.
    pub fn next_fetch_offset(&self) -> i64 {
        self.records
            .iter()
            .find(|(_, r)| r.state == RecordState::Available)
            .map_or(self.end_offset, |(o, _)| *o)
    }

    /// The log starts above the start offset (retention, DeleteRecords):
    /// what is gone is archived.
    pub fn move_start_to(&mut self, log_start: i64) {
        if log_start > self.start_offset {
            self.records = self.records.split_off(&log_start);
            self.start_offset = log_start;
            self.end_offset = self.end_offset.max(log_start);
            self.begin_change();
        }
    }

    /// Acquires for `member` the available records of the batches read.
    pub fn acquire(
        &mut self,
        member: &str,
        batches: &[ReadBatch],
        limits: AcquireLimits,
        now_ms: i64,
    ) -> Vec<Acquired> {
        let mut out: Vec<Acquired> = Vec::new();
        let mut taken = 0i64;
        // Whether `out`'s last range is of records new to the share
        // partition: Kafka answers records already in flight and newly
        // read ones as separate ranges, never one.
        let mut last_fresh = false;
        let lock_until = now_ms.saturating_add(limits.lock_duration_ms);
        for b in batches {
            // Kafka aligns acquisition on batch boundaries: a batch is
            // taken whole once started.
            if taken >= limits.max_records {
                break;
            }
            for o in b.base_offset.max(self.start_offset)..=b.last_offset {
                if limits.record_limit && taken >= limits.max_records {
                    // Kafka keeps the whole batch it split in flight: the
                    // rest stays available there.
                    if !b.control {
                        for rest in o.max(self.end_offset)..=b.last_offset {
                            self.records.insert(rest, available());
                            self.end_offset = rest + 1;
                        }
                    }
                    break;
                }
                let fresh = o >= self.end_offset;
                if fresh {
                    if self.end_offset - self.start_offset >= limits.max_in_flight {
                        break;
                    }
                    // Offsets skipped in the log (compaction) are gaps.
                    self.end_offset = o + 1;
                    if b.control {
                        self.records.insert(o, archived());
                        continue;
                    }
                    self.records.insert(o, available());
                }
                let Some(r) = self.records.get_mut(&o) else {
                    continue;
                };
                if r.state != RecordState::Available {
                    continue;
                }
                r.state = RecordState::Acquired;
                r.delivery_count = r.delivery_count.saturating_add(1);
                r.member = member.to_string();
                r.lock_until_ms = lock_until;
                taken += 1;
                match out.last_mut() {
                    Some(a)
                        if a.last_offset + 1 == o
                            && a.delivery_count == r.delivery_count
                            && fresh == last_fresh =>
                    {
                        a.last_offset = o;
                    }
                    _ => out.push(Acquired {
                        first_offset: o,
                        last_offset: o,
                        delivery_count: r.delivery_count,
                    }),
                }
                last_fresh = fresh;
            }
        }
        self.advance_start();
        out
    }

    /// Applies `member`'s acknowledgements: (first, last, types) each, one
    /// type for the whole range or one per offset. All or nothing. A RENEW
    /// moves the record's lock to `renewed_lock_until`; `None` where the
    /// group disabled renewals (`share.renew.acknowledge.enable`), which
    /// Kafka refuses as an invalid record state.
    pub fn acknowledge(
        &mut self,
        member: &str,
        batches: &[AckBatch],
        delivery_count_limit: i16,
        renewed_lock_until: Option<i64>,
    ) -> Result<(), AckError> {
        let mut plan: Vec<(i64, i8)> = Vec::new();
        for (first, last, types) in batches {
            if last < first {
                return Err(AckError::InvalidRequest(format!(
                    "Last offset {last} is lower than the first offset {first}"
                )));
            }
            let span = last - first + 1;
            if types.len() != 1 && i64::try_from(types.len()).ok() != Some(span) {
                return Err(AckError::InvalidRequest(
                    "Acknowledge types do not match the batch's offsets".to_string(),
                ));
            }
            // Kafka's `fetchSubMapForAcknowledgementBatch`: the batch must lie
            // in what was acquired so far.
            if self.records.is_empty() {
                return Err(AckError::InvalidRecordState(
                    "Batch record not found. The request batch offsets are not found in the cache."
                        .to_string(),
                ));
            }
            if *first >= self.end_offset {
                return Err(AckError::InvalidRequest(
                    "Batch record not found. The first offset in request is past acquired records."
                        .to_string(),
                ));
            }
            if *last >= self.end_offset {
                return Err(AckError::InvalidRequest(
                    "Batch record not found. The last offset in request is past acquired records."
                        .to_string(),
                ));
            }
            for (i, o) in (*first..=*last).enumerate() {
                let t = if types.len() == 1 { types[0] } else { types[i] };
                if !(ACK_GAP..=ACK_RENEW).contains(&t) {
                    return Err(AckError::InvalidRequest(format!(
                        "Invalid acknowledge type {t}"
                    )));
                }
                // Below the start offset everything is done already: Kafka
                // skips such offsets without an error.
                if o < self.start_offset {
                    continue;
                }
                match self.records.get(&o) {
                    Some(r) if r.state == RecordState::Acquired && r.member == member => {}
                    // A gap need not be in flight.
                    _ if t == ACK_GAP => {}
                    _ => {
                        return Err(AckError::InvalidRecordState(format!(
                            "The record at offset {o} is not acquired by member {member}"
                        )))
                    }
                }
                if t == ACK_RENEW && renewed_lock_until.is_none() {
                    return Err(AckError::InvalidRecordState(
                        "Renewing acquisition locks is not enabled for the group.".to_string(),
                    ));
                }
                plan.push((o, t));
            }
        }
        // Kafka writes no state for a renewal alone.
        if plan.iter().any(|(_, t)| *t != ACK_RENEW) {
            self.begin_change();
        }
        for (o, t) in plan {
            let Some(r) = self.records.get_mut(&o) else {
                continue;
            };
            if r.state != RecordState::Acquired {
                continue;
            }
            match t {
                ACK_ACCEPT => r.state = RecordState::Acknowledged,
                ACK_RELEASE => release(r, delivery_count_limit, o, &mut self.dead),
                ACK_RENEW => {
                    if let Some(until) = renewed_lock_until {
                        r.lock_until_ms = until;
                    }
                }
                ACK_REJECT => {
                    r.state = RecordState::Archived;
                    self.dead.push((o, r.delivery_count, Cause::ClientReject));
                }
                // GAP: archived, nothing to dead-letter.
                _ => r.state = RecordState::Archived,
            }
        }
        self.advance_start();
        Ok(())
    }

    /// Releases every record `member` holds (its share session closed).
    pub fn release_member(&mut self, member: &str, delivery_count_limit: i16) {
        if self
            .records
            .values()
            .any(|r| r.state == RecordState::Acquired && r.member == member)
        {
            self.begin_change();
        }
        for (o, r) in self.records.iter_mut() {
            if r.state == RecordState::Acquired && r.member == member {
                release(r, delivery_count_limit, *o, &mut self.dead);
            }
        }
        self.advance_start();
    }

    /// The records archived by REJECT or at the delivery-count limit since
    /// the last call (the dead-letter queue's candidates).
    pub fn take_dead(&mut self) -> Vec<(i64, i16, Cause)> {
        std::mem::take(&mut self.dead)
    }

    /// Records in flight and not yet done (for tests and describe).
    pub fn count(&self, state: RecordState) -> usize {
        self.records.values().filter(|r| r.state == state).count()
    }

    fn advance_start(&mut self) {
        while self.start_offset < self.end_offset {
            match self.records.get(&self.start_offset) {
                Some(r)
                    if !matches!(r.state, RecordState::Acknowledged | RecordState::Archived) =>
                {
                    break
                }
                r => {
                    // An offset never in flight (a gap) is archived.
                    let (state, count) = match r {
                        Some(r) if r.state == RecordState::Acknowledged => {
                            (PERSISTED_ACKNOWLEDGED, r.delivery_count)
                        }
                        Some(r) => (PERSISTED_ARCHIVED, r.delivery_count),
                        None => (PERSISTED_ARCHIVED, 0),
                    };
                    push_coalesced(&mut self.completed, self.start_offset, state, count);
                    self.records.remove(&self.start_offset);
                    self.start_offset += 1;
                }
            }
        }
    }
}

/// Appends offset `o` to `batches`, extending the last batch when `o`
/// follows it in the same state and delivery count.
fn push_coalesced(batches: &mut Vec<StateBatch>, o: i64, state: i8, count: i16) {
    match batches.last_mut() {
        Some(b)
            if b.last_offset + 1 == o && b.delivery_state == state && b.delivery_count == count =>
        {
            b.last_offset = o;
        }
        _ => batches.push(StateBatch {
            first_offset: o,
            last_offset: o,
            delivery_state: state,
            delivery_count: count,
        }),
    }
}

/// A record in flight that no member holds.
fn available() -> InFlight {
    InFlight {
        state: RecordState::Available,
        delivery_count: 0,
        member: String::new(),
        lock_until_ms: 0,
    }
}

fn archived() -> InFlight {
    InFlight {
        state: RecordState::Archived,
        delivery_count: 0,
        member: String::new(),
        lock_until_ms: 0,
    }
}

/// A released record (RELEASE, lock timeout, session end) is available
/// again, or archived at the delivery-count limit (noted in `dead`).
fn release(r: &mut InFlight, delivery_count_limit: i16, o: i64, dead: &mut Vec<(i64, i16, Cause)>) {
    r.member.clear();
    r.state = if r.delivery_count >= delivery_count_limit {
        dead.push((o, r.delivery_count, Cause::DeliveryCountExceeded));
        RecordState::Archived
    } else {
        RecordState::Available
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: AcquireLimits = AcquireLimits {
        lock_duration_ms: 1_000,
        delivery_count_limit: 2,
        max_in_flight: 100,
        max_records: 500,
        record_limit: false,
    };

    fn batch(base: i64, last: i64) -> ReadBatch {
        ReadBatch {
            base_offset: base,
            last_offset: last,
            control: false,
        }
    }

    #[test]
    fn records_go_to_one_member_at_a_time() {
        let mut p = SharePartition::new(0);
        let a = p.acquire("a", &[batch(0, 4)], LIMITS, 0);
        assert_eq!(
            a,
            vec![Acquired {
                first_offset: 0,
                last_offset: 4,
                delivery_count: 1
            }]
        );
        assert!(p.acquire("b", &[batch(0, 4)], LIMITS, 0).is_empty());
        assert_eq!(p.next_fetch_offset(), 5);
    }

    #[test]
    fn accept_release_reject() {
        let mut p = SharePartition::new(0);
        p.acquire("a", &[batch(0, 2)], LIMITS, 0);
        p.acknowledge(
            "a",
            &[(0, 2, vec![ACK_ACCEPT, ACK_RELEASE, ACK_REJECT])],
            2,
            None,
        )
        .unwrap();
        assert_eq!(p.start_offset, 1, "offset 0 is done");
        assert_eq!(p.next_fetch_offset(), 1, "the released record is available");
        let again = p.acquire("b", &[batch(0, 2)], LIMITS, 0);
        assert_eq!(
            again,
            vec![Acquired {
                first_offset: 1,
                last_offset: 1,
                delivery_count: 2
            }]
        );
        assert_eq!(p.take_dead(), vec![(2, 1, Cause::ClientReject)]);
        // Released at the limit: archived, and the start moves past it.
        p.acknowledge("b", &[(1, 1, vec![ACK_RELEASE])], 2, None)
            .unwrap();
        assert_eq!(p.start_offset, 3);
        assert_eq!(p.take_dead(), vec![(1, 2, Cause::DeliveryCountExceeded)]);
        assert!(p.take_dead().is_empty(), "taken once");
    }

    /// Kafka's `fetchSubMapForAcknowledgementBatch`: nothing in flight is
    /// an invalid record state, past what was acquired an invalid request,
    /// and below the start offset nothing to do.
    #[test]
    fn a_state_write_carries_the_start_offset_before_its_change() {
        let mut p = SharePartition::new(0);
        p.acquire("a", &[batch(0, 4)], LIMITS, 0);
        let acked = |first, last| StateBatch {
            first_offset: first,
            last_offset: last,
            delivery_state: PERSISTED_ACKNOWLEDGED,
            delivery_count: 1,
        };
        p.acknowledge("a", &[(0, 1, vec![ACK_ACCEPT])], 2, None)
            .unwrap();
        assert_eq!(p.start_offset, 2, "acquisition starts past the accepted");
        let s = p.persisted();
        assert_eq!(
            s.start_offset, 0,
            "written as Kafka writes: before the move"
        );
        assert_eq!(s.batches[0], acked(0, 1));
        assert_eq!(delivery_complete_count(&s.batches, s.start_offset), 2);
        // The next change carries the moved start offset; a renewal alone
        // is no change.
        p.acknowledge("a", &[(2, 2, vec![ACK_RENEW])], 2, Some(10))
            .unwrap();
        assert_eq!(p.persisted().start_offset, 0);
        p.acknowledge("a", &[(2, 4, vec![ACK_ACCEPT])], 2, None)
            .unwrap();
        let s = p.persisted();
        assert_eq!((s.start_offset, s.batches.clone()), (2, vec![acked(2, 4)]));
        // Restored, the start offset has moved past what is done.
        let q = SharePartition::from_persisted(&s);
        assert_eq!((q.start_offset, q.persisted().start_offset), (5, 5));
    }

    #[test]
    fn acknowledgements_must_lie_in_what_was_acquired() {
        let mut p = SharePartition::new(0);
        let e = p.acknowledge("a", &[(0, 0, vec![ACK_ACCEPT])], 2, None);
        assert!(matches!(e, Err(AckError::InvalidRecordState(_))));
        p.acquire("a", &[batch(0, 4)], LIMITS, 0);
        for (first, last) in [(5, 6), (3, 5)] {
            let e = p.acknowledge("a", &[(first, last, vec![ACK_ACCEPT])], 2, None);
            assert!(
                matches!(e, Err(AckError::InvalidRequest(_))),
                "{first}-{last}"
            );
        }
        p.acknowledge("a", &[(0, 1, vec![ACK_ACCEPT])], 2, None)
            .unwrap();
        assert_eq!(p.start_offset, 2);
        p.acknowledge("a", &[(0, 0, vec![ACK_ACCEPT])], 2, None)
            .unwrap();
        assert_eq!(p.count(RecordState::Acquired), 3, "2-4 untouched");
    }

    #[test]
    fn only_the_holder_may_acknowledge() {
        let mut p = SharePartition::new(0);
        p.acquire("a", &[batch(0, 1)], LIMITS, 0);
        let e = p
            .acknowledge("b", &[(0, 1, vec![ACK_ACCEPT])], 2, None)
            .unwrap_err();
        assert!(matches!(e, AckError::InvalidRecordState(_)));
        assert_eq!(p.count(RecordState::Acquired), 2, "nothing applied");
        let e = p
            .acknowledge("a", &[(0, 1, vec![1, 1, 1])], 2, None)
            .unwrap_err();
        assert!(matches!(e, AckError::InvalidRequest(_)));
    }

    #[test]
    fn expired_locks_release_records() {
        let mut p = SharePartition::new(0);
        p.acquire("a", &[batch(0, 0)], LIMITS, 0);
        p.expire_locks(999, 2);
        assert_eq!(p.count(RecordState::Acquired), 1);
        p.expire_locks(1_000, 2);
        assert_eq!(p.count(RecordState::Available), 1);
        p.acquire("b", &[batch(0, 0)], LIMITS, 1_000);
        assert!(p.take_dead().is_empty(), "a first timeout archives nothing");
        p.expire_locks(5_000, 2);
        assert_eq!(p.start_offset, 1, "second timeout hit the delivery limit");
        assert_eq!(p.take_dead(), vec![(0, 2, Cause::DeliveryCountExceeded)]);
    }

    #[test]
    fn persisted_state_round_trips() {
        let mut p = SharePartition::new(10);
        p.acquire("a", &[batch(10, 15)], LIMITS, 0);
        p.acknowledge(
            "a",
            &[(11, 13, vec![ACK_ACCEPT, ACK_RELEASE, ACK_REJECT])],
            2,
            None,
        )
        .unwrap();
        let s = p.persisted();
        assert_eq!(s.start_offset, 10, "offset 10 is still acquired");
        assert_eq!(
            s.batches,
            vec![
                StateBatch {
                    first_offset: 11,
                    last_offset: 11,
                    delivery_state: PERSISTED_ACKNOWLEDGED,
                    delivery_count: 1
                },
                StateBatch {
                    first_offset: 12,
                    last_offset: 12,
                    delivery_state: PERSISTED_AVAILABLE,
                    delivery_count: 1
                },
                StateBatch {
                    first_offset: 13,
                    last_offset: 13,
                    delivery_state: PERSISTED_ARCHIVED,
                    delivery_count: 1
                },
            ],
            "acquired offsets 10, 14 and 15 were never delivered as far as the state goes"
        );
        let mut q = SharePartition::from_persisted(&s);
        assert_eq!(q.start_offset, 10);
        assert_eq!(q.next_fetch_offset(), 10);
        assert_eq!(q.persisted(), s, "restoring changes nothing");
        let got = q.acquire("b", &[batch(10, 15)], LIMITS, 0);
        assert_eq!(
            got,
            vec![
                Acquired {
                    first_offset: 10,
                    last_offset: 10,
                    delivery_count: 1
                },
                Acquired {
                    first_offset: 12,
                    last_offset: 12,
                    delivery_count: 2
                },
                Acquired {
                    first_offset: 14,
                    last_offset: 15,
                    delivery_count: 1
                },
            ],
            "the accepted and rejected records are not delivered again"
        );
        let far = PersistedState {
            start_offset: 0,
            batches: vec![StateBatch {
                first_offset: 0,
                last_offset: i64::MAX,
                delivery_state: PERSISTED_ARCHIVED,
                delivery_count: 1,
            }],
        };
        assert_eq!(
            SharePartition::from_persisted(&far).start_offset,
            MAX_RESTORED_IN_FLIGHT
        );
    }

    #[test]
    fn renew_restarts_the_lock_and_keeps_the_delivery_count() {
        let mut p = SharePartition::new(0);
        p.acquire("a", &[batch(0, 1)], LIMITS, 0);
        // Renewed at 900: the lock now ends at 1_900, not 1_000.
        p.acknowledge("a", &[(0, 0, vec![ACK_RENEW])], 2, Some(1_900))
            .unwrap();
        p.expire_locks(1_000, 2);
        assert_eq!(p.count(RecordState::Acquired), 1, "offset 0 is still held");
        assert!(p.acquire("b", &[batch(0, 1)], LIMITS, 1_000)[0].first_offset == 1);
        p.expire_locks(1_900, 2);
        let again = p.acquire("b", &[batch(0, 0)], LIMITS, 1_900);
        assert_eq!(
            again,
            vec![Acquired {
                first_offset: 0,
                last_offset: 0,
                delivery_count: 2
            }],
            "a renewal is not a delivery"
        );
        // Only the holder renews; a renewal the group disabled is refused.
        let e = p.acknowledge("a", &[(0, 0, vec![ACK_RENEW])], 2, Some(9_000));
        assert!(matches!(e, Err(AckError::InvalidRecordState(_))));
        let e = p.acknowledge("b", &[(0, 0, vec![ACK_RENEW])], 2, None);
        assert!(matches!(e, Err(AckError::InvalidRecordState(_))));
        p.acknowledge("b", &[(0, 0, vec![ACK_ACCEPT])], 2, None)
            .unwrap();
        assert!(p
            .acknowledge("b", &[(1, 1, vec![5])], 2, Some(9_000))
            .is_err());
    }

    #[test]
    fn record_limit_splits_batches_batch_optimized_does_not() {
        let limits = AcquireLimits {
            max_records: 3,
            ..LIMITS
        };
        let mut p = SharePartition::new(0);
        let a = p.acquire("a", &[batch(0, 4), batch(5, 9)], limits, 0);
        assert_eq!((a[0].first_offset, a[0].last_offset), (0, 4), "whole batch");
        let exact = AcquireLimits {
            record_limit: true,
            ..limits
        };
        let b = p.acquire("b", &[batch(5, 9)], exact, 0);
        assert_eq!((b[0].first_offset, b[0].last_offset), (5, 7), "exactly 3");
        assert_eq!(p.next_fetch_offset(), 8);
        let c = p.acquire("c", &[batch(5, 9)], exact, 0);
        assert_eq!((c[0].first_offset, c[0].last_offset), (8, 9));
    }

    #[test]
    fn in_flight_records_are_bounded() {
        let mut p = SharePartition::new(0);
        let limits = AcquireLimits {
            max_in_flight: 3,
            ..LIMITS
        };
        let a = p.acquire("a", &[batch(0, 9)], limits, 0);
        assert_eq!(a[0].last_offset, 2);
        p.acknowledge("a", &[(0, 0, vec![ACK_ACCEPT])], 2, None)
            .unwrap();
        let b = p.acquire("a", &[batch(0, 9)], limits, 0);
        assert_eq!((b[0].first_offset, b[0].last_offset), (3, 3));
    }
}
