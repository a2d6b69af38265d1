//! `ConnectionQuotas`: Kafka's connection limits. `max.connections` bounds
//! the connections of the whole broker and `listener.name.<l>.max.connections`
//! those of one listener: when either is reached the listener's acceptor
//! holds the connection it just accepted (and accepts no more) until
//! another connection closes, so new clients wait and existing ones are
//! unaffected. `max.connections.per.ip` (with `max.connections.per.ip.overrides`)
//! bounds the connections from one address: one more is closed at once
//! ("Too many connections from ... (maximum = ...)").
//!
//! Connection creation rates (KIP-612) are measured as Kafka's
//! `ConnectionQuotas` measures them (a `Rate` over `quota.window.num`
//! samples): over `max.connection.creation.rate` (broker) or
//! `listener.name.<l>.max.connection.creation.rate` the acceptor waits the
//! throttle time (at most one quota window) before taking the connection;
//! over an address's `connection_creation_rate` client quota (`ip` entity,
//! or its default) the connection is held, unread, for the throttle time
//! and then closed (Kafka's `ConnectionThrottledException` path). As in
//! Kafka's `ConnectionQuotas.inc`, the IP rate is checked once the
//! connection has its slot and before the address's count: an address over
//! both is throttled, and a connection refused for the count still counts
//! towards the rate.
//!
//! These keys are dynamic broker configs: a change applies to the next
//! connection accepted (connections already open stay), as in Kafka.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::broker::dynamic_config::Reconfigurable;
use crate::config::{BrokerConfig, ConfigError};
use crate::metrics::stats::{Rate, SampleConfig};

/// Addresses whose connection rate is tracked at once; past this the least
/// recently seen is forgotten (Kafka expires an IP's sensor after an hour).
pub const MAX_IP_RATE_SENSORS: usize = 10_000;
/// Kafka's `IP_CONNECTION_RATE_DEFAULT` and `max.connection.creation.rate`
/// default: no limit.
const UNLIMITED_RATE: f64 = i32::MAX as f64;

/// The measured connection creation rates.
#[derive(Default)]
struct Rates {
    broker: Rate,
    per_listener: HashMap<Arc<str>, Rate>,
    per_ip: HashMap<IpAddr, (Rate, Instant)>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_listener: HashMap<Arc<str>, usize>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The limits in force.
struct Limits {
    broker_max: usize,
    per_listener_max: HashMap<String, usize>,
    per_ip_default: usize,
    per_ip_overrides: HashMap<IpAddr, usize>,
    /// `max.connection.creation.rate` (connections/s).
    broker_rate: f64,
    /// `listener.name.<l>.max.connection.creation.rate`.
    per_listener_rate: HashMap<String, f64>,
    window: SampleConfig,
}

pub struct ConnectionQuotas {
    limits: Mutex<Limits>,
    rates: Mutex<Rates>,
    epoch: Instant,
    counts: Mutex<Counts>,
    /// Woken whenever a connection closes.
    released: Notify,
}

/// A counted connection; closing it (dropping this) frees its slot.
pub struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    listener: Arc<str>,
    ip: IpAddr,
}

/// A connection refused by `max.connections.per.ip`.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyConnections {
    pub ip: IpAddr,
    pub max: usize,
}

impl std::fmt::Display for TooManyConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Too many connections from {} (maximum = {})",
            self.ip, self.max
        )
    }
}

/// Why the acceptor does not take a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Over `max.connections.per.ip`: closed at once.
    TooMany(TooManyConnections),
    /// Over the address's `connection_creation_rate`: held, unread, this
    /// long, then closed.
    Throttled(Duration),
}

fn to_usize(v: i64) -> usize {
    usize::try_from(v).unwrap_or(0)
}

impl Limits {
    /// The limits `config` sets. `strict` (start-up): an override naming an
    /// unresolvable host refuses start, as in Kafka; later (a dynamic
    /// change) it is skipped with a warning.
    fn from_config(config: &BrokerConfig, strict: bool) -> Result<Limits, ConfigError> {
        let broker_max = to_usize(config.int("max.connections"));
        let per_ip_default = to_usize(config.int("max.connections.per.ip"));
        let mut per_ip_overrides = HashMap::new();
        for (host, count) in parse_overrides(config.string("max.connections.per.ip.overrides"))? {
            let ip = match host.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => match (host.as_str(), 0)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip())
                {
                    Some(ip) => ip,
                    None if strict => {
                        return Err(ConfigError(format!(
                            "max.connections.per.ip.overrides: cannot resolve host {host:?}"
                        )))
                    }
                    None => {
                        tracing::warn!(host = %host, "max.connections.per.ip.overrides: cannot resolve host; entry skipped");
                        continue;
                    }
                },
            };
            per_ip_overrides.insert(ip, count);
        }
        if per_ip_default == 0 && per_ip_overrides.is_empty() && strict {
            return Err(ConfigError(
                "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set".into(),
            ));
        }
        let broker_rate = config.int("max.connection.creation.rate") as f64;
        let per_listener_rate = config
            .listeners
            .iter()
            .filter_map(|l| {
                let key = format!(
                    "listener.name.{}.max.connection.creation.rate",
                    l.name.to_ascii_lowercase()
                );
                config.opt_int(&key).map(|v| (l.name.clone(), v as f64))
            })
            .collect();
        let window = SampleConfig {
            samples: config.int("quota.window.num").clamp(1, 1000) as usize,
            window_ms: config.int("quota.window.size.seconds").clamp(1, 3600) as u64 * 1000,
        };
        let per_listener_max = config
            .listeners
            .iter()
            .map(|l| {
                let key = format!(
                    "listener.name.{}.max.connections",
                    l.name.to_ascii_lowercase()
                );
                let max = config.opt_int(&key).map_or(broker_max, to_usize);
                (l.name.clone(), max)
            })
            .collect();
        Ok(Limits {
            broker_max,
            per_listener_max,
            per_ip_default,
            per_ip_overrides,
            broker_rate,
            per_listener_rate,
            window,
        })
    }
}

/// `host:count,...` entries of `max.connections.per.ip.overrides`.
fn parse_overrides(v: &str) -> Result<Vec<(String, usize)>, ConfigError> {
    let mut out = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || {
            ConfigError(format!(
                "max.connections.per.ip.overrides: invalid entry {entry:?} (expected host:count)"
            ))
        };
        let (host, count) = entry.rsplit_once(':').ok_or_else(bad)?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        out.push((host.to_string(), count));
    }
    Ok(out)
}

impl ConnectionQuotas {
    /// The limits `config` sets; an override naming an unresolvable host, or
    /// a per-IP limit of 0 without overrides, refuses start (as Kafka does).
    pub fn new(config: &BrokerConfig) -> Result<ConnectionQuotas, ConfigError> {
        Ok(ConnectionQuotas {
            limits: Mutex::new(Limits::from_config(config, true)?),
            rates: Mutex::new(Rates::default()),
            epoch: Instant::now(),
            counts: Mutex::new(Counts::default()),
            released: Notify::new(),
        })
    }

    fn limits(&self) -> MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot_available(limits: &Limits, c: &Counts, listener: &str) -> bool {
        let listener_max = limits
            .per_listener_max
            .get(listener)
            .copied()
            .unwrap_or(limits.broker_max);
        c.per_listener.get(listener).copied().unwrap_or(0) < listener_max
            && c.total < limits.broker_max
    }

    /// Counts a connection just accepted on `listener` from `ip`, first
    /// waiting for a free slot under the broker and listener limits, then
    /// recording it against the address's creation rate quota `ip_rate`.
    /// Err when the address is over its rate or its own count limit: the
    /// caller closes the connection (after the throttle time for the rate).
    pub async fn acquire(
        self: &Arc<Self>,
        listener: &Arc<str>,
        ip: IpAddr,
        ip_rate: Option<f64>,
    ) -> Result<ConnectionSlot, Refused> {
        loop {
            // Registered before checking, so a release in between is not lost.
            let released = self.released.notified();
            {
                let limits = self.limits();
                let mut c = self.lock();
                if Self::slot_available(&limits, &c, listener) {
                    if let Some(delay) =
                        self.record_ip_connection(limits.window, listener, ip, ip_rate)
                    {
                        return Err(Refused::Throttled(delay));
                    }
                    let max = limits
                        .per_ip_overrides
                        .get(&ip)
                        .copied()
                        .unwrap_or(limits.per_ip_default);
                    let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
                    if from_ip >= max {
                        return Err(Refused::TooMany(TooManyConnections { ip, max }));
                    }
                    c.total += 1;
                    *c.per_listener.entry(listener.clone()).or_default() += 1;
                    *c.per_ip.entry(ip).or_default() += 1;
                    return Ok(ConnectionSlot {
                        quotas: self.clone(),
                        listener: listener.clone(),
                        ip,
                    });
                }
            }
            released.await;
        }
    }

    fn rates(&self) -> MutexGuard<'_, Rates> {
        self.rates.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Records a connection accepted on `listener` against the broker's and
    /// the listener's creation rates; how long the acceptor must wait before
    /// taking it (Kafka's `recordConnectionAndGetThrottleTimeMs`, bounded by
    /// one quota window).
    pub fn record_connection(&self, listener: &Arc<str>) -> Duration {
        let (broker_rate, listener_rate, window) = {
            let l = self.limits();
            let lr = l.per_listener_rate.get(&**listener).copied();
            (l.broker_rate, lr, l.window)
        };
        let now = self.now_ms();
        let bound = |r: f64| (r < UNLIMITED_RATE).then_some(r);
        let mut rates = self.rates();
        let broker = rates
            .broker
            .record_and_throttle_ms(window, 1.0, now, bound(broker_rate));
        let listener = rates
            .per_listener
            .entry(listener.clone())
            .or_default()
            .record_and_throttle_ms(window, 1.0, now, listener_rate.and_then(bound));
        Duration::from_millis(broker.max(listener).min(window.window_ms))
    }

    /// Records a connection from `ip` against its `connection_creation_rate`
    /// (`limit`); over it, takes the connection back off every rate and
    /// returns how long to hold it before closing it.
    fn record_ip_connection(
        &self,
        window: SampleConfig,
        listener: &Arc<str>,
        ip: IpAddr,
        limit: Option<f64>,
    ) -> Option<Duration> {
        let limit = limit.filter(|l| *l < UNLIMITED_RATE)?;
        let now = self.now_ms();
        let mut rates = self.rates();
        if !rates.per_ip.contains_key(&ip) && rates.per_ip.len() >= MAX_IP_RATE_SENSORS {
            let oldest = rates
                .per_ip
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(ip, _)| *ip);
            if let Some(o) = oldest {
                rates.per_ip.remove(&o);
            }
        }
        let (rate, seen) = rates
            .per_ip
            .entry(ip)
            .or_insert_with(|| (Rate::default(), Instant::now()));
        *seen = Instant::now();
        let ms = rate
            .record_and_throttle_ms(window, 1.0, now, Some(limit))
            .min(window.window_ms);
        if ms == 0 {
            return None;
        }
        rate.record(window, -1.0, now);
        rates.broker.record(window, -1.0, now);
        if let Some(r) = rates.per_listener.get_mut(listener) {
            r.record(window, -1.0, now);
        }
        Some(Duration::from_millis(ms))
    }

    /// Connections counted now (for tests and metrics).
    pub fn total(&self) -> usize {
        self.lock().total
    }
}

/// `max.connections`, `listener.name.<l>.max.connections` and the per-IP
/// limits are dynamic broker configs.
impl Reconfigurable for ConnectionQuotas {
    fn validate_reconfiguration(&self, new: &BrokerConfig) -> Result<(), String> {
        parse_overrides(new.string("max.connections.per.ip.overrides"))
            .map(|_| ())
            .map_err(|e| e.0)
    }

    fn reconfigure(&self, new: &Arc<BrokerConfig>) {
        match Limits::from_config(new, false) {
            Ok(limits) => {
                *self.limits() = limits;
                // Acceptors held by a lower limit re-check.
                self.released.notify_waiters();
            }
            Err(e) => tracing::warn!(error = %e, "connection limits unchanged"),
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        {
            let mut c = self.quotas.lock();
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.per_listener.get_mut(&self.listener) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = c.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    c.per_ip.remove(&self.ip);
                }
            }
        }
        // Every waiting acceptor re-checks its own limits.
        self.quotas.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn quotas(entries: &[(&str, &str)]) -> Result<Arc<ConnectionQuotas>, ConfigError> {
        let mut all = vec![(
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0,OTHER://127.0.0.1:0".to_string(),
        )];
        all.push((
            "listener.security.protocol.map".to_string(),
            "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT".to_string(),
        ));
        all.extend(entries.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (c, _) = BrokerConfig::from_entries(all)?;
        ConnectionQuotas::new(&c).map(Arc::new)
    }

    #[tokio::test]
    async fn the_broker_limit_makes_new_connections_wait_for_a_slot() {
        let q = quotas(&[("max.connections", "2")]).unwrap();
        let l: Arc<str> = Arc::from("PLAINTEXT");
        let a = q.acquire(&l, [127, 0, 0, 1].into(), None).await.unwrap();
        let _b = q.acquire(&l, [127, 0, 0, 2].into(), None).await.unwrap();
        let waiting = tokio::spawn({
            let (q, l) = (q.clone(), l.clone());
            async move { q.acquire(&l, [127, 0, 0, 3].into(), None).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a third connection must wait");
        drop(a);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released slot is taken")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn per_ip_limits_and_overrides_close_the_extra_connection() {
        let q = quotas(&[
            ("max.connections.per.ip", "1"),
            ("max.connections.per.ip.overrides", "127.0.0.9:3"),
        ])
        .unwrap();
        let l: Arc<str> = Arc::from("PLAINTEXT");
        let one: IpAddr = [127, 0, 0, 1].into();
        let _a = q.acquire(&l, one, None).await.unwrap();
        assert_eq!(
            q.acquire(&l, one, None).await.err(),
            Some(Refused::TooMany(TooManyConnections { ip: one, max: 1 }))
        );
        assert_eq!(q.total(), 1, "a refused connection is not counted");
        let nine: IpAddr = [127, 0, 0, 9].into();
        let _held: Vec<_> =
            futures_util::future::join_all((0..3).map(|_| q.acquire(&l, nine, None)))
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
        assert!(q.acquire(&l, nine, None).await.is_err());
    }

    #[tokio::test]
    async fn the_ip_rate_is_checked_before_the_ip_count_as_in_kafka() {
        let q = quotas(&[("max.connections.per.ip", "1")]).unwrap();
        let l: Arc<str> = Arc::from("PLAINTEXT");
        let one: IpAddr = [127, 0, 0, 1].into();
        let _a = q.acquire(&l, one, Some(1000.0)).await.unwrap();
        // Over the count but not the rate: refused for the count, and
        // still recorded against the rate.
        for _ in 0..3 {
            assert!(matches!(
                q.acquire(&l, one, Some(1000.0)).await,
                Err(Refused::TooMany(_))
            ));
        }
        // Now over both: throttled (Kafka's ConnectionThrottledException),
        // not refused for the count.
        assert!(matches!(
            q.acquire(&l, one, Some(0.1)).await,
            Err(Refused::Throttled(d)) if !d.is_zero()
        ));
        assert_eq!(q.total(), 1);
    }

    #[tokio::test]
    async fn a_listener_limit_holds_only_that_listener() {
        let q = quotas(&[("listener.name.plaintext.max.connections", "1")]).unwrap();
        let p: Arc<str> = Arc::from("PLAINTEXT");
        let o: Arc<str> = Arc::from("OTHER");
        let _a = q.acquire(&p, [127, 0, 0, 1].into(), None).await.unwrap();
        let _b = q.acquire(&o, [127, 0, 0, 1].into(), None).await.unwrap();
        let held = tokio::time::timeout(
            Duration::from_millis(50),
            q.acquire(&p, [127, 0, 0, 2].into(), None),
        )
        .await;
        assert!(held.is_err(), "the second PLAINTEXT connection waits");
    }

    #[tokio::test]
    async fn a_raised_limit_lets_a_waiting_connection_in() {
        let q = quotas(&[("max.connections", "1")]).unwrap();
        let l: Arc<str> = Arc::from("PLAINTEXT");
        let _a = q.acquire(&l, [127, 0, 0, 1].into(), None).await.unwrap();
        let waiting = tokio::spawn({
            let (q, l) = (q.clone(), l.clone());
            async move { q.acquire(&l, [127, 0, 0, 2].into(), None).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second connection waits");
        let (raised, _) = BrokerConfig::from_entries(vec![
            ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
            ("max.connections".into(), "2".into()),
        ])
        .unwrap();
        q.reconfigure(&Arc::new(raised));
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the raised limit admits it")
            .unwrap()
            .unwrap();
    }

    #[test]
    fn bad_settings_refuse_start() {
        assert!(quotas(&[("max.connections.per.ip", "0")]).is_err());
        assert!(quotas(&[
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip.overrides", "127.0.0.1:5")
        ])
        .is_ok());
        assert!(quotas(&[("max.connections.per.ip.overrides", "nocount")]).is_err());
    }
}
