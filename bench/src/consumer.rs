//! `kastle-perf consumer`: the equivalent of Kafka's kafka-consumer-perf-test
//! (ConsumerPerformance) on librdkafka.
//!
//! Joins a consumer group (`--group`, default `perf-consumer-<random>`),
//! reads `--messages` records from the earliest offset and prints Kafka's
//! header and summary line (`start.time, end.time, data.consumed.in.MB,
//! MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms,
//! fetch.MB.sec, fetch.nMsg.sec`), then with `--json` one machine-readable
//! line. Unlike Kafka's tool it exits with status 1 when it stops before
//! `--messages` records (the `--timeout` between records ran out), so scripts
//! can assert on the count.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};

use crate::args::Args;
use crate::common::{client_config, format_time, r3, MB};

const KNOWN: &[&str] = &[
    "bootstrap-server",
    "topic",
    "messages",
    "group",
    "timeout",
    "consumer-props",
    "hide-header",
    "json",
    "max-seconds",
];
const MAX_PRINTED_ERRORS: u64 = 5;

/// Records when the group first hands this consumer partitions, which is
/// Kafka's `rebalance.time.ms` (join time) for a single consumer.
struct Ctx {
    started: Instant,
    joined: Mutex<Option<Duration>>,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if tpl.count() > 0 {
                if let Ok(mut j) = self.joined.lock() {
                    j.get_or_insert_with(|| self.started.elapsed());
                }
            }
        }
    }
}

pub fn run(argv: &[String]) -> Result<i32, String> {
    let a = Args::parse("consumer", argv, KNOWN)?;
    let bootstrap = a.str("bootstrap-server")?;
    let topic = a.str("topic")?;
    let messages: u64 = a.get("messages")?;
    let group = match a.opt_str("group")? {
        Some(g) => g,
        None => format!("perf-consumer-{}", std::process::id() % 100_000),
    };
    let timeout = Duration::from_millis(a.get_or("timeout", 10_000u64)?);
    let props = a.props("consumer-props")?;
    let json = a.has("json");
    // not in Kafka's tool: an overall bound, for brokers that trickle
    let max_time = a.opt::<f64>("max-seconds")?.map(Duration::from_secs_f64);

    let cfg = client_config(
        Some(&bootstrap),
        &[
            ("group.id", &group),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
        ],
        &props,
    );
    let start_wall = SystemTime::now();
    let start = Instant::now();
    let consumer: BaseConsumer<Ctx> = cfg
        .create_with_context(Ctx {
            started: start,
            joined: Mutex::new(None),
        })
        .map_err(|e| format!("creating consumer: {e}"))?;
    consumer
        .subscribe(&[&topic])
        .map_err(|e| format!("subscribe {topic}: {e}"))?;

    if !a.has("hide-header") {
        println!("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
    }
    let mut read = 0u64;
    let mut bytes = 0u64;
    let mut errors = 0u64;
    let mut last_record = Instant::now();
    while read < messages && last_record.elapsed() <= timeout {
        if max_time.is_some_and(|m| start.elapsed() >= m) {
            println!("WARNING: stopping after --max-seconds");
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                read += 1;
                bytes += (m.key_len() + m.payload_len()) as u64;
                last_record = Instant::now();
            }
            Some(Err(e)) => {
                errors += 1;
                if errors <= MAX_PRINTED_ERRORS {
                    eprintln!("consumer error: {e}");
                }
            }
            None => {}
        }
    }
    let end_wall = SystemTime::now();
    let elapsed_ms = start.elapsed().as_millis() as u64;
    if read < messages {
        println!("WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded. You can use the --timeout option to increase the timeout.", timeout.as_millis());
    }
    let join_ms = consumer
        .context()
        .joined
        .lock()
        .ok()
        .and_then(|j| *j)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let fetch_ms = elapsed_ms.saturating_sub(join_ms).max(1);
    let secs = (elapsed_ms.max(1)) as f64 / 1000.0;
    let fetch_secs = fetch_ms as f64 / 1000.0;
    let mb = bytes as f64 / MB;
    println!(
        "{}, {}, {:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
        format_time(start_wall),
        format_time(end_wall),
        mb,
        mb / secs,
        read,
        read as f64 / secs,
        join_ms,
        fetch_ms,
        mb / fetch_secs,
        read as f64 / fetch_secs,
    );
    if json {
        let j = serde_json::json!({
            "tool": "consumer",
            "topic": topic,
            "records": read,
            "expected": messages,
            "errors": errors,
            "bytes": bytes,
            "elapsed_s": r3(secs),
            "rebalance_ms": join_ms,
            "fetch_ms": fetch_ms,
            "mb_per_sec": r3(mb / secs),
            "records_per_sec": r3(read as f64 / secs),
            "fetch_mb_per_sec": r3(mb / fetch_secs),
            "fetch_records_per_sec": r3(read as f64 / fetch_secs),
        });
        println!("{j}");
    }
    Ok(if read < messages { 1 } else { 0 })
}
