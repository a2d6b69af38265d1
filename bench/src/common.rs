//! Helpers shared by the subcommands: librdkafka client configuration,
//! payload generation, topic creation through the Admin API, and output
//! formatting (Kafka's tools use MB = 2^20 bytes and UTC timestamps here).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

pub const MB: f64 = 1024.0 * 1024.0;

/// A librdkafka configuration from `bootstrap` plus user `k=v` pairs; the
/// user's pairs win, so any default set here can be overridden.
pub fn client_config(
    bootstrap: Option<&str>,
    defaults: &[(&str, &str)],
    user: &[(String, String)],
) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    if let Some(b) = bootstrap {
        cfg.set("bootstrap.servers", b);
    }
    for (k, v) in defaults {
        cfg.set(*k, *v);
    }
    for (k, v) in user {
        cfg.set(k, v);
    }
    cfg
}

/// `record_size` bytes of pseudo-random upper-case letters (what Kafka's
/// producer perf tool sends when no payload file is given). Built once and
/// reused for every record.
pub fn payload(record_size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..record_size)
        .map(|_| {
            // xorshift64: cheap, deterministic, good enough for filler bytes
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

/// Creates `topics` (name, partitions) with `replication_factor` replicas
/// each. A topic that already exists is not an error; any other per-topic
/// error is.
pub fn create_topics(
    bootstrap: &str,
    topics: &[(String, i32)],
    replication_factor: i32,
    timeout: Duration,
) -> Result<(), String> {
    // librdkafka also times a request out after socket.timeout.ms (60 s by
    // default, 300 s at most); large CreateTopics can take longer than that
    let socket_ms = timeout.as_millis().clamp(10, 300_000).to_string();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", socket_ms)
        .create()
        .map_err(|e| format!("creating admin client for {bootstrap}: {e}"))?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, p)| NewTopic::new(name, *p, TopicReplication::Fixed(replication_factor)))
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let results = rt
        .block_on(admin.create_topics(new.iter(), &opts))
        .map_err(|e| format!("CreateTopics to {bootstrap}: {e}"))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("CreateTopics {name}: {code}")),
        }
    }
    wait_for_leaders(bootstrap, topics, timeout)
}

/// Waits until the metadata names a leader for every partition of `topics`.
/// CreateTopics answers once the controller has the topic; a broker may
/// still be electing and opening a thousand partitions' logs after that
/// (Apache Kafka takes seconds), and a run that starts meanwhile measures
/// the retries, not the broker.
fn wait_for_leaders(
    bootstrap: &str,
    topics: &[(String, i32)],
    timeout: Duration,
) -> Result<(), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("creating metadata client for {bootstrap}: {e}"))?;
    let deadline = std::time::Instant::now() + timeout;
    for (name, _) in topics {
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let led =
                match consumer.fetch_metadata(Some(name), left.max(Duration::from_millis(100))) {
                    Ok(md) => md.topics().iter().any(|t| {
                        t.name() == name
                            && t.error().is_none()
                            && !t.partitions().is_empty()
                            && t.partitions()
                                .iter()
                                .all(|p| p.error().is_none() && p.leader() >= 0)
                    }),
                    Err(_) => false,
                };
            if led {
                break;
            }
            if left.is_zero() {
                return Err(format!(
                    "{name}: not every partition has a leader after {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Wall-clock time as Kafka's consumer perf tool prints it
/// (`yyyy-MM-dd HH:mm:ss:SSS`), in UTC.
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02} {:02}:{:02}:{:02}:{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's well-known algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Rounds to 3 decimals for the JSON lines (keeps them short and stable).
pub fn r3(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(format_time(t), "2026-11-18 11:06:40:123");
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01 00:00:00:000");
    }

    #[test]
    fn payload_is_letters_of_requested_size() {
        let p = payload(1000, 7);
        assert_eq!(p.len(), 1000);
        assert!(p.iter().all(u8::is_ascii_uppercase));
    }
}
