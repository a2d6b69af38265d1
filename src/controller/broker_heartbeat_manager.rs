//! `BrokerHeartbeatManager`: the active controller's view of broker
//! sessions (Kafka's class of the same name). Only the leader tracks them,
//! in memory; a new leader gives every registered broker a fresh session
//! (as Kafka's new active controller does), so a leader change never
//! fences a live broker.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct BrokerHeartbeatManager {
    session_timeout: Duration,
    inner: Mutex<Sessions>,
}

#[derive(Default)]
struct Sessions {
    /// The Raft term these sessions were seen in: a new term (a new
    /// leader, perhaps this node again) starts them afresh.
    term: u64,
    last_contact: HashMap<i32, Instant>,
}

impl BrokerHeartbeatManager {
    pub fn new(session_timeout: Duration) -> BrokerHeartbeatManager {
        BrokerHeartbeatManager {
            session_timeout,
            inner: Mutex::new(Sessions::default()),
        }
    }

    fn sessions(&self, term: u64) -> std::sync::MutexGuard<'_, Sessions> {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if s.term != term {
            s.term = term;
            s.last_contact.clear();
        }
        s
    }

    /// A heartbeat or registration from `broker` in `term`.
    pub fn touch(&self, term: u64, broker: i32) {
        self.sessions(term)
            .last_contact
            .insert(broker, Instant::now());
    }

    /// Whether `broker` heartbeated within its session (Kafka's
    /// `hasValidSession`).
    pub fn has_valid_session(&self, term: u64, broker: i32) -> bool {
        self.sessions(term)
            .last_contact
            .get(&broker)
            .is_some_and(|t| t.elapsed() < self.session_timeout)
    }

    /// Of `unfenced` brokers, those whose session expired. A broker this
    /// leader has not heard from yet starts its session now.
    pub fn expired(&self, term: u64, unfenced: impl Iterator<Item = i32>) -> Vec<i32> {
        let mut s = self.sessions(term);
        let now = Instant::now();
        let mut out = Vec::new();
        for id in unfenced {
            let last = *s.last_contact.entry(id).or_insert(now);
            if now.duration_since(last) >= self.session_timeout {
                out.push(id);
            }
        }
        out
    }

    /// Forgets a fenced broker: its next heartbeat starts a new session.
    pub fn remove(&self, term: u64, broker: i32) {
        self.sessions(term).last_contact.remove(&broker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_restart_with_a_new_term() {
        let m = BrokerHeartbeatManager::new(Duration::from_millis(30));
        m.touch(1, 7);
        assert!(m.has_valid_session(1, 7));
        assert!(m.expired(1, [7, 8].into_iter()).is_empty());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(m.expired(1, [7, 8].into_iter()), vec![7, 8]);
        // A new leader's term: everyone starts afresh.
        assert!(m.expired(2, [7, 8].into_iter()).is_empty());
        assert!(!m.has_valid_session(2, 9));
    }
}
