//! Client quota enforcement (Kafka's `QuotaFactory.QuotaManagers`): the
//! produce and fetch byte rates, request time and controller mutations of
//! each user/client-id, measured by sensors as Kafka's `ClientQuotaManager`,
//! `ClientRequestQuotaManager` and `ControllerMutationQuotaManager` measure
//! them, and the throttle time a violation costs.
//!
//! Which quota applies follows Kafka's `DefaultQuotaCallback`: the most
//! specific of user+client-id, user+default client-id, user, default
//! user+client-id, default user+default client-id, default user, client-id,
//! default client-id. Clients sharing the matched entity share one sensor.
//! With no user/client-id quota configured at all, every call returns after
//! one atomic load.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::broker::quotas::{QuotaMap, CLIENT_ID, IP, USER};
use crate::config::BrokerConfig;
use crate::metrics::stats::{Rate, SampleConfig, TokenBucket};

/// The quota kinds, each with its own limits and sensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaType {
    Produce,
    Fetch,
    Request,
    ControllerMutation,
}

impl QuotaType {
    pub const ALL: [QuotaType; 4] = [
        QuotaType::Produce,
        QuotaType::Fetch,
        QuotaType::Request,
        QuotaType::ControllerMutation,
    ];

    /// The client quota key that bounds it.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => "producer_byte_rate",
            QuotaType::Fetch => "consumer_byte_rate",
            QuotaType::Request => "request_percentage",
            QuotaType::ControllerMutation => "controller_mutation_rate",
        }
    }

    /// Kafka's sensor group name (`QuotaType.toString`).
    pub fn name(self) -> &'static str {
        match self {
            QuotaType::Produce => "Produce",
            QuotaType::Fetch => "Fetch",
            QuotaType::Request => "Request",
            QuotaType::ControllerMutation => "ControllerMutation",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The `ip` entity's quota key (KIP-612).
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// Sensors a broker keeps at most; past this the least recently used one
/// is dropped (Kafka expires a sensor after an hour without use).
pub const MAX_QUOTA_SENSORS: usize = 10_000;
/// Kafka's `InactiveSensorExpirationTimeSeconds`.
const SENSOR_EXPIRY: Duration = Duration::from_secs(3600);

/// A user or client-id part of a quota entity: absent, the default
/// (`<default>`), or a name.
type Part = Option<Option<String>>;

/// One quota type's limits by (user, client-id) entity.
type Limits = HashMap<(Part, Part), f64>;

/// (type, user tag, client-id tag): Kafka's sensor identity, where an empty
/// tag means the matched entity does not name that part.
type SensorKey = (QuotaType, String, String);

#[derive(Default)]
struct Sensor {
    rate: Rate,
    bucket: TokenBucket,
    throttle_ms_total: u64,
    throttled: u64,
    last_used: Option<Instant>,
}

#[derive(Default)]
struct State {
    limits: [Limits; 4],
    sensors: HashMap<SensorKey, Sensor>,
}

/// One sensor as the exporter shows it.
pub struct SensorSnapshot {
    pub quota_type: QuotaType,
    pub user: String,
    pub client_id: String,
    /// Bytes/s (Produce, Fetch), percent of one thread (Request),
    /// partition mutations/s (ControllerMutation).
    pub rate: f64,
    pub limit: Option<f64>,
    pub throttle_ms_total: u64,
    pub throttled: u64,
}

pub struct QuotaManagers {
    /// Any user/client-id quota at all: the fast path's one check.
    enabled: AtomicBool,
    /// `connection_creation_rate` of `ip` entities (`None` = the default
    /// ip entity), read by the acceptors.
    ip_rates: Mutex<HashMap<Option<IpAddr>, f64>>,
    any_ip_rate: AtomicBool,
    config: SampleConfig,
    epoch: Instant,
    state: Mutex<State>,
}

impl QuotaManagers {
    pub fn new(config: &BrokerConfig) -> QuotaManagers {
        let samples = config.int("quota.window.num").clamp(1, 1000) as usize;
        let window_s = config.int("quota.window.size.seconds").clamp(1, 3600) as u64;
        QuotaManagers {
            enabled: AtomicBool::new(false),
            ip_rates: Mutex::new(HashMap::new()),
            any_ip_rate: AtomicBool::new(false),
            config: SampleConfig {
                samples,
                window_ms: window_s * 1000,
            },
            epoch: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any user/client-id quota is configured.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Takes the user/client-id quotas of `quotas` (ip quotas are the
    /// connection limiter's) as the limits from now on; sensors keep their
    /// history, as Kafka's do when a quota changes.
    pub fn update(&self, quotas: &QuotaMap) {
        let mut limits: [Limits; 4] = Default::default();
        let mut ip_rates = HashMap::new();
        for (entity, values) in quotas {
            if let [(t, name)] = entity.as_slice() {
                if t == IP {
                    let ip = name.as_deref().and_then(|n| n.parse::<IpAddr>().ok());
                    if let (Some(v), true) = (
                        values.get(CONNECTION_CREATION_RATE),
                        name.is_none() || ip.is_some(),
                    ) {
                        ip_rates.insert(ip.map(|i| i.to_canonical()), *v);
                    }
                    continue;
                }
            }
            let mut user: Part = None;
            let mut client: Part = None;
            for (t, n) in entity {
                match t.as_str() {
                    USER => user = Some(n.clone()),
                    CLIENT_ID => client = Some(n.clone()),
                    _ => {}
                }
            }
            if user.is_none() && client.is_none() {
                continue;
            }
            for q in QuotaType::ALL {
                if let Some(v) = values.get(q.key()) {
                    limits[q.index()].insert((user.clone(), client.clone()), *v);
                }
            }
        }
        self.any_ip_rate
            .store(!ip_rates.is_empty(), Ordering::Relaxed);
        *self.ip_rates.lock().unwrap_or_else(|p| p.into_inner()) = ip_rates;
        let any = limits.iter().any(|l| !l.is_empty());
        self.lock().limits = limits;
        self.enabled.store(any, Ordering::Relaxed);
    }

    /// The `connection_creation_rate` quota of an address: its own, else the
    /// default ip entity's (Kafka's `connectionRateForIp`).
    pub fn connection_rate_for_ip(&self, ip: IpAddr) -> Option<f64> {
        if !self.any_ip_rate.load(Ordering::Relaxed) {
            return None;
        }
        let rates = self.ip_rates.lock().unwrap_or_else(|p| p.into_inner());
        rates
            .get(&Some(ip.to_canonical()))
            .or_else(|| rates.get(&None))
            .copied()
    }

    /// Records `value` for the client and returns the throttle time in ms
    /// (Kafka's `maybeRecordAndGetThrottleTimeMs`); 0 when quotas are off.
    pub fn record(&self, q: QuotaType, user: &str, client_id: &str, value: f64) -> i32 {
        if !self.enabled() {
            return 0;
        }
        let now = self.now_ms();
        let config = self.config;
        let mut state = self.lock();
        let (key, limit) = resolve(&state.limits[q.index()], q, user, client_id);
        let sensor = sensor(&mut state, key);
        let ms = sensor
            .rate
            .record_and_throttle_ms(config, value, now, limit);
        ms.min(i32::MAX as u64) as i32
    }

    /// Takes back a recorded value (a throttled fetch answers empty).
    pub fn unrecord(&self, q: QuotaType, user: &str, client_id: &str, value: f64) {
        if !self.enabled() {
            return;
        }
        let now = self.now_ms();
        let config = self.config;
        let mut state = self.lock();
        let (key, _) = resolve(&state.limits[q.index()], q, user, client_id);
        sensor(&mut state, key).rate.record(config, -value, now);
    }

    /// The most a single response may carry without being throttled on an
    /// otherwise idle window (Kafka's `getMaxValueInQuotaWindow`).
    pub fn max_value_in_window(&self, q: QuotaType, user: &str, client_id: &str) -> Option<f64> {
        if !self.enabled() {
            return None;
        }
        let state = self.lock();
        let (_, limit) = resolve(&state.limits[q.index()], q, user, client_id);
        let window_s = self.config.window_ms as f64 / 1000.0;
        limit.map(|l| l * (self.config.samples.saturating_sub(1)) as f64 * window_s)
    }

    /// Counts a throttle applied to the client (Kafka's throttle-time
    /// sensor), for the sensor whose quota caused it.
    pub fn throttled(&self, q: QuotaType, user: &str, client_id: &str, ms: i32) {
        if ms <= 0 || !self.enabled() {
            return;
        }
        let mut state = self.lock();
        let (key, _) = resolve(&state.limits[q.index()], q, user, client_id);
        let s = sensor(&mut state, key);
        s.throttle_ms_total += ms as u64;
        s.throttled += 1;
    }

    /// A request's controller mutation quota (KIP-599): strict (refuses
    /// once exhausted) from the versions Kafka makes it strict, permissive
    /// (only throttles) below.
    pub fn mutation_quota(
        &self,
        user: &str,
        client_id: &str,
        strict: bool,
    ) -> ControllerMutationQuota<'_> {
        let bound = if self.enabled() {
            let state = self.lock();
            let q = QuotaType::ControllerMutation;
            let (key, limit) = resolve(&state.limits[q.index()], q, user, client_id);
            limit.map(|l| (key, l))
        } else {
            None
        };
        ControllerMutationQuota {
            managers: self,
            bound,
            strict,
            last_throttle_ms: 0,
            recorded_at_ms: 0,
        }
    }

    /// A mutation quota that charges nothing (a request no client quota
    /// applies to: a broker's own).
    pub fn unbounded_mutation_quota(&self) -> ControllerMutationQuota<'_> {
        ControllerMutationQuota {
            managers: self,
            bound: None,
            strict: false,
            last_throttle_ms: 0,
            recorded_at_ms: 0,
        }
    }

    /// Every live sensor, for the exporter.
    pub fn snapshot(&self) -> Vec<SensorSnapshot> {
        if !self.enabled() && self.lock().sensors.is_empty() {
            return Vec::new();
        }
        let now = self.now_ms();
        let config = self.config;
        let mut state = self.lock();
        let State { limits, sensors } = &mut *state;
        sensors
            .iter_mut()
            .map(|((q, user, client), s)| {
                let limit = quota_limit(&limits[q.index()], user, client);
                let rate = s.rate.measure(config, now);
                SensorSnapshot {
                    quota_type: *q,
                    user: user.clone(),
                    client_id: client.clone(),
                    rate,
                    limit,
                    throttle_ms_total: s.throttle_ms_total,
                    throttled: s.throttled,
                }
            })
            .collect()
    }
}

/// The sensor for `key`, made if new; a full table first drops sensors
/// unused for an hour, then the least recently used one.
fn sensor(state: &mut State, key: SensorKey) -> &mut Sensor {
    if !state.sensors.contains_key(&key) && state.sensors.len() >= MAX_QUOTA_SENSORS {
        let now = Instant::now();
        state
            .sensors
            .retain(|_, s| s.last_used.is_some_and(|t| now - t < SENSOR_EXPIRY));
        if state.sensors.len() >= MAX_QUOTA_SENSORS {
            let oldest = state
                .sensors
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                state.sensors.remove(&k);
            }
        }
    }
    let s = state.sensors.entry(key).or_default();
    s.last_used = Some(Instant::now());
    s
}

fn named(n: &str) -> Part {
    Some(Some(n.to_string()))
}

const DEFAULT: Part = Some(None);

/// The sensor a client's usage goes to and the quota bounding it, as
/// Kafka's `DefaultQuotaCallback.quotaMetricTags` then `quotaLimit`.
fn resolve(limits: &Limits, q: QuotaType, user: &str, client_id: &str) -> (SensorKey, Option<f64>) {
    let has = |u: Part, c: Part| limits.contains_key(&(u, c));
    let (u, c) = if has(named(user), named(client_id)) || has(named(user), DEFAULT) {
        (user, client_id)
    } else if has(named(user), None) {
        (user, "")
    } else if has(DEFAULT, named(client_id)) || has(DEFAULT, DEFAULT) {
        (user, client_id)
    } else if has(DEFAULT, None) {
        (user, "")
    } else {
        ("", client_id)
    };
    let limit = quota_limit(limits, u, c);
    ((q, sanitize(u), c.to_string()), limit)
}

/// Kafka's `DefaultQuotaCallback.quotaLimit` for a sensor's tags.
fn quota_limit(limits: &Limits, user: &str, client_id: &str) -> Option<f64> {
    // Sensor tags hold the sanitized user name; entities the raw one.
    let user = desanitize(user);
    let get = |u: Part, c: Part| limits.get(&(u, c)).copied();
    if !user.is_empty() && !client_id.is_empty() {
        get(named(&user), named(client_id))
            .or_else(|| get(named(&user), DEFAULT))
            .or_else(|| get(DEFAULT, named(client_id)))
            .or_else(|| get(DEFAULT, DEFAULT))
    } else if !user.is_empty() {
        get(named(&user), None).or_else(|| get(DEFAULT, None))
    } else if !client_id.is_empty() {
        get(None, named(client_id)).or_else(|| get(None, DEFAULT))
    } else {
        None
    }
}

/// Kafka's `Sanitizer.sanitize`: URL-encoding as `URLEncoder` (UTF-8) does,
/// with `*` and spaces as `%2A` and `%20`.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn desanitize(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request's controller mutation quota (Kafka's
/// `Strict`/`PermissiveControllerMutationQuota`).
pub struct ControllerMutationQuota<'a> {
    managers: &'a QuotaManagers,
    /// The sensor and its mutations/s; `None` = unbounded.
    bound: Option<(SensorKey, f64)>,
    strict: bool,
    last_throttle_ms: u64,
    recorded_at_ms: u64,
}

impl ControllerMutationQuota<'_> {
    /// Records `permits` partition mutations. A strict quota refuses them
    /// (`Err(throttle_ms)`, THROTTLING_QUOTA_EXCEEDED) once the bucket is
    /// already empty; a mutation that empties it is still accepted.
    pub fn record(&mut self, permits: f64) -> Result<(), i32> {
        let Some((key, quota)) = self.bound.clone() else {
            return Ok(());
        };
        let m = self.managers;
        let now = m.now_ms();
        let config = m.config;
        let mut state = m.lock();
        let s = sensor(&mut state, key);
        if self.strict {
            let t = s.bucket.throttle_ms(config, quota, now);
            if t > 0 {
                self.last_throttle_ms = t;
                self.recorded_at_ms = now;
                return Err(t.min(i32::MAX as u64) as i32);
            }
            s.bucket.record(config, quota, permits, now);
            s.rate.record(config, permits, now);
        } else {
            s.bucket.record(config, quota, permits, now);
            s.rate.record(config, permits, now);
            let t = s.bucket.throttle_ms(config, quota, now);
            if t > 0 {
                self.last_throttle_ms = t;
                self.recorded_at_ms = now;
            }
        }
        Ok(())
    }

    /// The throttle the response carries: the last violation's, less the
    /// time since (Kafka's `AbstractControllerMutationQuota.throttleTime`).
    pub fn throttle_time_ms(&self) -> i32 {
        let elapsed = self.managers.now_ms().saturating_sub(self.recorded_at_ms);
        self.last_throttle_ms
            .saturating_sub(elapsed)
            .min(i32::MAX as u64) as i32
    }

    /// The sensor to count the throttle on, if bounded.
    pub fn count_throttle(&self, ms: i32) {
        if let (Some(((_, u, c), _)), true) = (&self.bound, ms > 0) {
            let mut state = self.managers.lock();
            let key = (QuotaType::ControllerMutation, u.clone(), c.clone());
            let s = sensor(&mut state, key);
            s.throttle_ms_total += ms as u64;
            s.throttled += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(entries: &[(Part, Part)]) -> Limits {
        entries.iter().map(|e| (e.clone(), 100.0)).collect()
    }

    #[test]
    fn resolution_follows_kafkas_default_callback() {
        let p = QuotaType::Produce;
        let key = |l: &Limits| resolve(l, p, "alice", "app").0;
        let k = |u: &str, c: &str| (p, u.to_string(), c.to_string());
        assert_eq!(key(&limits(&[])), k("", "app"));
        assert_eq!(resolve(&limits(&[]), p, "alice", "app").1, None);
        assert_eq!(key(&limits(&[(None, DEFAULT)])), k("", "app"));
        assert_eq!(key(&limits(&[(DEFAULT, None)])), k("alice", ""));
        assert_eq!(key(&limits(&[(DEFAULT, DEFAULT)])), k("alice", "app"));
        assert_eq!(key(&limits(&[(named("alice"), None)])), k("alice", ""));
        let both = limits(&[(named("alice"), named("app")), (None, named("app"))]);
        assert_eq!(key(&both), k("alice", "app"));
        assert_eq!(resolve(&both, p, "bob", "app").0, k("", "app"));
        assert_eq!(resolve(&both, p, "bob", "app").1, Some(100.0));
    }

    #[test]
    fn user_names_are_sanitized_as_kafka() {
        assert_eq!(sanitize("CN=a b,O=*"), "CN%3Da%20b%2CO%3D%2A");
        assert_eq!(desanitize(&sanitize("CN=a b,O=*")), "CN=a b,O=*");
        let l = limits(&[(named("a b"), None)]);
        let (key, limit) = resolve(&l, QuotaType::Fetch, "a b", "x");
        assert_eq!((key.1.as_str(), limit), ("a%20b", Some(100.0)));
    }
}
