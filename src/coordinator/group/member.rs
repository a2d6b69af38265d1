//! A member of a classic group (Kafka's `ClassicGroupMember`): its identity,
//! timeouts, supported protocols, current assignment and the long-poll
//! waiters of its in-flight JoinGroup / SyncGroup.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::api::{JoinOutcome, SyncOutcome};
use super::timers::TimerKey;

pub struct ClassicGroupMember {
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// A JoinGroup waiting for the join phase to complete.
    pub join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    /// A SyncGroup waiting for the leader's assignment.
    pub sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
    /// The session timer (heartbeat expiration).
    pub heartbeat_timer: Option<TimerKey>,
}

impl ClassicGroupMember {
    pub fn is_awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.sync_waiter.is_some()
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m)
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    /// Same protocols, same metadata, same order: a rejoin that changes
    /// nothing (Kafka's `ClassicGroupMember.matches`).
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// The first of `candidates` in this member's order of preference: its
    /// vote in protocol selection.
    pub fn vote<'a>(&self, candidates: &[&'a str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .find_map(|(n, _)| candidates.iter().find(|c| **c == n.as_str()).copied())
    }
}
