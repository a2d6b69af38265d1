//! The group coordinator's timers (Kafka's `CoordinatorTimer`): session
//! timeouts, the join phase's rebalance timeout and initial delay, and the
//! pending-sync timeout, the KIP-848 members' session and rebalance
//! timeouts, a streams group's initial rebalance delay, as entries of one map ordered by deadline and served
//! by one task. An owner keeps its timer's key, so a heartbeat reschedules by
//! removing and re-inserting, and a fired key that no longer matches its
//! owner's is stale and ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// A timer's identity: its deadline plus a sequence number for uniqueness.
pub type TimerKey = (Instant, u64);

#[derive(Debug, Clone)]
pub enum Timer {
    /// A member's (or MEMBER_ID_REQUIRED pending member's) session.
    Heartbeat { group: String, member: String },
    /// The join phase: rebalance timeout, or the initial delayed join.
    Join { group: String },
    /// Members that got their join response must sync in time.
    Sync { group: String, generation: i32 },
    /// A KIP-848 consumer group member's session.
    ConsumerSession { group: String, member: String },
    /// A consumer group member must revoke partitions (leave `epoch`)
    /// within its rebalance timeout.
    ConsumerRebalance {
        group: String,
        member: String,
        epoch: i32,
    },
    /// A classic member of a consumer group told to rejoin must send its
    /// JoinGroup within its rebalance timeout.
    ConsumerClassicJoin { group: String, member: String },
    /// A classic member of a consumer group that joined must send its
    /// SyncGroup within its rebalance timeout.
    ConsumerClassicSync { group: String, member: String },
    /// A streams group's initial rebalance delay ended: its first target
    /// assignment is computed.
    StreamsInitialRebalance { group: String },
}

#[derive(Default)]
pub struct Timers {
    map: BTreeMap<TimerKey, Timer>,
    seq: u64,
}

impl Timers {
    pub fn schedule(&mut self, after_ms: i64, t: Timer) -> TimerKey {
        self.seq += 1;
        let key = (
            Instant::now() + Duration::from_millis(after_ms.max(0) as u64),
            self.seq,
        );
        self.map.insert(key, t);
        key
    }

    pub fn cancel(&mut self, key: Option<TimerKey>) {
        if let Some(k) = key {
            self.map.remove(&k);
        }
    }

    /// Removes and returns the earliest timer if it is due at `now`;
    /// otherwise the next deadline (`Err(None)`: no timer at all).
    pub fn pop_due(&mut self, now: Instant) -> Result<(TimerKey, Timer), Option<Instant>> {
        let Some((&key, _)) = self.map.first_key_value() else {
            return Err(None);
        };
        if key.0 > now {
            return Err(Some(key.0));
        }
        match self.map.remove(&key) {
            Some(t) => Ok((key, t)),
            None => Err(Some(key.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_pop_in_deadline_order_and_cancelled_ones_never() {
        let mut t = Timers::default();
        let late = t.schedule(60_000, Timer::Join { group: "g".into() });
        let a = t.schedule(0, Timer::Join { group: "a".into() });
        let b = t.schedule(0, Timer::Join { group: "b".into() });
        t.cancel(Some(b));
        let now = Instant::now();
        let (key, _) = t.pop_due(now).unwrap();
        assert_eq!(key, a);
        assert_eq!(t.pop_due(now).unwrap_err(), Some(late.0));
        t.cancel(Some(late));
        assert_eq!(t.pop_due(now).unwrap_err(), None);
    }
}
