//! The web console (kastle's own; Kafka has none): a read-only HTTP
//! listener, off unless `console.listener=HOST:PORT` is set, serving a small
//! single-page UI built into the binary ([`http`]: `assets/`) and the JSON
//! it reads ([`api`], [`messages`]): the cluster and its brokers, topics and
//! partitions with offsets, sizes and configs, consumer groups with members,
//! assignments and lag, and a bounded message browser. Charts draw from an
//! in-memory ring of samples ([`samples`]). When the broker has security on,
//! every request authenticates against the broker's own SASL credentials and
//! sees only what its principal may see ([`auth`]). Nothing here writes.

pub mod api;
pub mod auth;
pub mod http;
pub mod messages;
pub mod samples;

use std::sync::Arc;
use std::time::Duration;

use crate::config::BrokerConfig;
use crate::handlers::KafkaApis;

/// The broker key that enables the console (`HOST:PORT`); unset = off.
pub const LISTENER_KEY: &str = "console.listener";
/// How often throughput and lag are sampled for the charts.
pub const SAMPLE_INTERVAL_KEY: &str = "console.sample.interval.ms";

/// What the console reads.
pub struct Console {
    pub apis: Arc<KafkaApis>,
    /// When the console started (with the broker), for the uptime shown.
    pub started_ms: i64,
    pub samples: samples::SampleRing,
}

/// The console's `HOST:PORT` if the broker is configured to serve it.
pub fn listener_spec(config: &BrokerConfig) -> Option<&str> {
    config
        .value(LISTENER_KEY)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Samples the broker every `console.sample.interval.ms` until it stops.
async fn sample_forever(console: Arc<Console>) {
    let every = console.apis.config.int(SAMPLE_INTERVAL_KEY).max(100) as u64;
    let mut tick = tokio::time::interval(Duration::from_millis(every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = console.apis.replicas.stopping() => return,
            _ = tick.tick() => {}
        }
        let c = console.clone();
        // Group offsets and partition states take locks: off the workers.
        match tokio::task::spawn_blocking(move || api::sample(&c.apis)).await {
            Ok(s) => console.samples.push(s),
            Err(e) => tracing::warn!(error = %e, "console sample failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_comes_from_env_and_overrides_and_is_off_by_default() {
        let (c, _) = BrokerConfig::load(None, Vec::new(), &[]).unwrap();
        assert_eq!(listener_spec(&c), None);
        assert_eq!(c.int(SAMPLE_INTERVAL_KEY), 10_000);
        let env = vec![(
            "KAFKA_CONSOLE_LISTENER".to_string(),
            "0.0.0.0:8080".to_string(),
        )];
        let (c, warnings) = BrokerConfig::load(None, env, &[]).unwrap();
        assert_eq!(listener_spec(&c), Some("0.0.0.0:8080"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let o = ["console.listener= ".to_string()];
        let (c, _) = BrokerConfig::load(None, Vec::new(), &o).unwrap();
        assert_eq!(listener_spec(&c), None, "an empty value means off");
        let o = ["console.sample.interval.ms=5".to_string()];
        assert!(
            BrokerConfig::load(None, Vec::new(), &o).is_err(),
            "below the key's minimum"
        );
    }
}
