//! The Prometheus exporter: an HTTP endpoint ([`http`]) serving the scrape
//! ([`collect`]): the counters of `metrics` plus gauges read from the broker's
//! and the group coordinator's state at scrape time. Off unless
//! `metrics.prometheus.listener=HOST:PORT` is set; optionally over TLS and
//! behind HTTP basic authentication ([`security`]).

pub mod collect;
pub mod http;
pub mod security;

use std::sync::Arc;

use crate::broker::quotas::ClientQuotaManager;
use crate::broker::ReplicaManager;
use crate::config::BrokerConfig;
use crate::coordinator::group::GroupCoordinator;
use crate::metrics::BrokerMetrics;

/// The broker key that enables the endpoint (`HOST:PORT`); unset = off.
pub const LISTENER_KEY: &str = "metrics.prometheus.listener";

/// What a scrape reads.
pub struct Sources {
    pub replicas: Arc<ReplicaManager>,
    pub groups: Arc<GroupCoordinator>,
    pub metrics: Arc<BrokerMetrics>,
    /// Client quota sensors.
    pub quotas: Arc<ClientQuotaManager>,
    /// KIP-227 fetch sessions.
    pub fetch_sessions: Arc<crate::broker::fetch_session::FetchSessionCache>,
}

/// The endpoint's `HOST:PORT` if the broker is configured to serve it.
pub fn listener_spec(config: &BrokerConfig) -> Option<&str> {
    config
        .metrics_prometheus_listener
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_comes_from_env_and_overrides_and_is_off_by_default() {
        let (c, _) = BrokerConfig::load(None, Vec::new(), &[]).unwrap();
        assert_eq!(listener_spec(&c), None);
        let env = vec![(
            "KAFKA_METRICS_PROMETHEUS_LISTENER".to_string(),
            "0.0.0.0:9404".to_string(),
        )];
        let (c, warnings) = BrokerConfig::load(None, env, &[]).unwrap();
        assert_eq!(listener_spec(&c), Some("0.0.0.0:9404"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let o = ["metrics.prometheus.listener= ".to_string()];
        let (c, _) = BrokerConfig::load(None, Vec::new(), &o).unwrap();
        assert_eq!(listener_spec(&c), None, "an empty value means off");
    }
}
