//! Replication throttles (KIP-73, Kafka's `ReplicationQuotaManager`): the
//! broker's `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` (dynamic, per broker or the
//! cluster default) bound the bytes of throttled replicas, those a topic
//! names in `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` ([`ThrottledReplicas`]).
//!
//! As in Kafka the quota only decides whether to send at all: a leader
//! leaves a throttled partition out of a follower's fetch answer (and a
//! follower out of its fetch request) while the measured rate is above the
//! bound; in-sync replicas are never held back. The rate is Kafka's
//! `SimpleRate` over `replication.quota.window.num` samples of
//! `replication.quota.window.size.seconds`, exported as the
//! `LeaderReplication` / `FollowerReplication` `byte-rate`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::config::BrokerConfig;
use crate::metrics::stats::{Rate, SampleConfig};

/// Kafka's `QuotaConfig.QUOTA_BYTES_PER_SECOND_DEFAULT`: unthrottled.
const UNBOUNDED: i64 = i64::MAX;

/// The replicas of one topic a throttle applies to on this broker (Kafka's
/// `ConfigHandler.parseThrottledPartitions`): `*` is every partition,
/// `partition:broker` pairs name the partitions whose replica on `broker`
/// (this one) is throttled.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ThrottledReplicas {
    #[default]
    None,
    All,
    Partitions(Vec<i32>),
}

impl ThrottledReplicas {
    /// Parses a validated list for broker `node_id`; malformed pairs are
    /// ignored (the value was checked when it was set).
    pub fn parse(value: &str, node_id: i32) -> ThrottledReplicas {
        let v = value.trim();
        if v.is_empty() {
            return ThrottledReplicas::None;
        }
        if v == "*" {
            return ThrottledReplicas::All;
        }
        let parts: Vec<i32> = v
            .split(',')
            .filter_map(|pair| {
                let (p, b) = pair.trim().split_once(':')?;
                (b.trim().parse::<i32>().ok()? == node_id).then_some(p.trim().parse().ok()?)
            })
            .collect();
        ThrottledReplicas::Partitions(parts)
    }

    /// Kafka's `isThrottled`.
    pub fn contains(&self, partition: i32) -> bool {
        match self {
            ThrottledReplicas::None => false,
            ThrottledReplicas::All => true,
            ThrottledReplicas::Partitions(p) => p.contains(&partition),
        }
    }
}

/// Which side of replication a quota bounds (Kafka's `QuotaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationType {
    Leader,
    Follower,
}

impl ReplicationType {
    /// The broker config bounding it.
    pub fn rate_key(self) -> &'static str {
        match self {
            ReplicationType::Leader => "leader.replication.throttled.rate",
            ReplicationType::Follower => "follower.replication.throttled.rate",
        }
    }

    /// Kafka's metric group (`QuotaType.toString`).
    pub fn name(self) -> &'static str {
        match self {
            ReplicationType::Leader => "LeaderReplication",
            ReplicationType::Follower => "FollowerReplication",
        }
    }
}

/// One side's quota: its bound and the measured rate of throttled bytes.
pub struct ReplicationQuotaManager {
    kind: ReplicationType,
    sample: SampleConfig,
    /// Bytes/s, [`UNBOUNDED`] when unset.
    bound: AtomicU64,
    rate: Mutex<Rate>,
    epoch: Instant,
}

impl ReplicationQuotaManager {
    pub fn new(kind: ReplicationType, config: &BrokerConfig) -> ReplicationQuotaManager {
        let m = ReplicationQuotaManager {
            kind,
            sample: SampleConfig {
                samples: config.int("replication.quota.window.num").max(1) as usize,
                window_ms: config.int("replication.quota.window.size.seconds").max(1) as u64 * 1000,
            },
            bound: AtomicU64::new(UNBOUNDED as u64),
            rate: Mutex::new(Rate::default()),
            epoch: Instant::now(),
        };
        m.update_quota(config);
        m
    }

    pub fn kind(&self) -> ReplicationType {
        self.kind
    }

    /// Takes the bound from the (dynamic) configuration (Kafka's
    /// `BrokerConfigHandler`: per broker, else the cluster default, else
    /// unbounded).
    pub fn update_quota(&self, config: &BrokerConfig) {
        let v = config
            .opt_int(self.kind.rate_key())
            .filter(|v| *v >= 0)
            .unwrap_or(UNBOUNDED);
        self.bound.store(v as u64, Ordering::Relaxed);
    }

    /// The bound in bytes/s, `None` when unthrottled.
    pub fn bound(&self) -> Option<i64> {
        let b = self.bound.load(Ordering::Relaxed) as i64;
        (b != UNBOUNDED).then_some(b)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Kafka's `isQuotaExceeded`: the measured rate is above the bound.
    pub fn is_quota_exceeded(&self) -> bool {
        let Some(bound) = self.bound() else {
            return false;
        };
        let now = self.now_ms();
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        rate.measure_simple(self.sample, now) > bound as f64
    }

    /// Kafka's `record`: counts throttled bytes whether or not the quota is
    /// exceeded.
    pub fn record(&self, bytes: usize) {
        let now = self.now_ms();
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        rate.record(self.sample, bytes as f64, now);
    }

    /// The `byte-rate` metric.
    pub fn byte_rate(&self) -> f64 {
        let now = self.now_ms();
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        rate.measure_simple(self.sample, now)
    }
}

/// The leader and follower quotas of one broker (the replication part of
/// Kafka's `QuotaManagers`).
pub struct ReplicationQuotas {
    pub leader: ReplicationQuotaManager,
    pub follower: ReplicationQuotaManager,
}

impl ReplicationQuotas {
    pub fn new(config: &BrokerConfig) -> ReplicationQuotas {
        ReplicationQuotas {
            leader: ReplicationQuotaManager::new(ReplicationType::Leader, config),
            follower: ReplicationQuotaManager::new(ReplicationType::Follower, config),
        }
    }

    /// A dynamic config change.
    pub fn reconfigure(&self, config: &BrokerConfig) {
        self.leader.update_quota(config);
        self.follower.update_quota(config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_lists_parse_as_kafka_for_this_broker() {
        assert_eq!(ThrottledReplicas::parse("", 1), ThrottledReplicas::None);
        assert_eq!(ThrottledReplicas::parse(" * ", 1), ThrottledReplicas::All);
        let t = ThrottledReplicas::parse("0:1, 1:2,2:1", 1);
        assert_eq!(t, ThrottledReplicas::Partitions(vec![0, 2]));
        assert!(t.contains(2) && !t.contains(1));
        assert!(!ThrottledReplicas::None.contains(0));
    }

    #[test]
    fn the_quota_is_exceeded_only_above_its_bound() {
        let config = BrokerConfig::from_entries(vec![(
            "leader.replication.throttled.rate".into(),
            "1000".into(),
        )])
        .unwrap()
        .0;
        let q = ReplicationQuotas::new(&config);
        assert_eq!(q.leader.bound(), Some(1000));
        assert_eq!(q.follower.bound(), None);
        assert!(!q.leader.is_quota_exceeded());
        // Within one window the rate is over at least the window (1 s).
        q.leader.record(900);
        assert!(!q.leader.is_quota_exceeded());
        q.leader.record(200);
        assert!(q.leader.is_quota_exceeded());
        // The follower is unbounded: never exceeded.
        q.follower.record(1 << 30);
        assert!(!q.follower.is_quota_exceeded());
    }
}
