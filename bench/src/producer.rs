//! `kastle-perf producer`: the equivalent of Kafka's kafka-producer-perf-test
//! (ProducerPerformance) on librdkafka.
//!
//! Records of `--record-size` bytes go out as fast as the client accepts them
//! (or at `--throughput` records/s). Latency per record is the time from
//! `send` to its delivery report, measured on librdkafka's polling thread so a
//! report is timed when it arrives, not when the sender next looks. Output:
//! a window line every 5 s and the summary line in Kafka's format, then with
//! `--json` one machine-readable line. `--stall-ms T` (not in Kafka's tool)
//! also prints one `stall` line per run of records slower than T ms, with
//! their send times on CLOCK_MONOTONIC (the clock `perf record -k
//! CLOCK_MONOTONIC` stamps events with), to line stalls up with a trace.

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::args::Args;
use crate::common::{client_config, payload, r3, MB};
use crate::hist::Histogram;

const KNOWN: &[&str] = &[
    "topic",
    "num-records",
    "record-size",
    "throughput",
    "producer-props",
    "bootstrap-server",
    "print-metrics",
    "json",
    "flush-timeout-ms",
    "max-seconds",
    "stall-ms",
];

const WINDOW: Duration = Duration::from_secs(5);
/// Delivery errors printed in full; the rest are only counted.
const MAX_PRINTED_ERRORS: u64 = 5;

struct Window {
    start: Instant,
    count: u64,
    bytes: u64,
    lat_sum_us: u64,
    lat_max_us: u64,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            start: now,
            count: 0,
            bytes: 0,
            lat_sum_us: 0,
            lat_max_us: 0,
        }
    }
}

struct Stats {
    hist: Histogram,
    bytes: u64,
    errors: u64,
    window: Window,
    stall: Option<Stall>,
}

/// Consecutive deliveries slower than the `--stall-ms` threshold.
struct Stall {
    first_sent_ns: u64,
    last_sent_ns: u64,
    records: u64,
    max_us: u64,
}

/// CLOCK_MONOTONIC now, in nanoseconds.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

fn print_stall(s: &Stall, t0_mono_ns: u64) {
    let at = |ns: u64| (t0_mono_ns + ns) as f64 / 1e9;
    eprintln!(
        "stall: sent {:.6}..{:.6} (CLOCK_MONOTONIC s), {} records, max {:.1} ms",
        at(s.first_sent_ns),
        at(s.last_sent_ns),
        s.records,
        s.max_us as f64 / 1000.0
    );
}

struct Ctx {
    t0: Instant,
    /// `t0` on CLOCK_MONOTONIC.
    t0_mono_ns: u64,
    /// `--stall-ms` in microseconds (0: off).
    stall_us: u64,
    record_bytes: u64,
    stats: Mutex<Stats>,
    last_stats_json: Mutex<Option<String>>,
}

impl ClientContext for Ctx {
    fn stats_raw(&self, statistics: &[u8]) {
        // keep only the latest snapshot: bounded whatever the run length
        if let Ok(mut s) = self.last_stats_json.lock() {
            *s = Some(String::from_utf8_lossy(statistics).into_owned());
        }
    }
}

impl ProducerContext for Ctx {
    /// Send time in nanoseconds since `t0` (no allocation per record).
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now = Instant::now();
        let lat_us =
            (now.duration_since(self.t0).as_nanos() as u64).saturating_sub(sent_ns as u64) / 1000;
        let Ok(mut st) = self.stats.lock() else {
            return;
        };
        match result {
            Ok(_) => {
                st.hist.record(lat_us);
                if self.stall_us > 0 {
                    let sent = sent_ns as u64;
                    if lat_us >= self.stall_us {
                        let s = st.stall.get_or_insert(Stall {
                            first_sent_ns: sent,
                            last_sent_ns: sent,
                            records: 0,
                            max_us: 0,
                        });
                        s.last_sent_ns = sent;
                        s.records += 1;
                        s.max_us = s.max_us.max(lat_us);
                    } else if let Some(s) = st.stall.take() {
                        print_stall(&s, self.t0_mono_ns);
                    }
                }
                st.bytes += self.record_bytes;
                let w = &mut st.window;
                w.count += 1;
                w.bytes += self.record_bytes;
                w.lat_sum_us += lat_us;
                w.lat_max_us = w.lat_max_us.max(lat_us);
                if now.duration_since(w.start) >= WINDOW {
                    print_window(w, now);
                    *w = Window::new(now);
                }
            }
            Err((e, _)) => {
                st.errors += 1;
                if st.errors <= MAX_PRINTED_ERRORS {
                    eprintln!("delivery failed: {e}");
                }
            }
        }
    }
}

fn print_window(w: &Window, now: Instant) {
    let secs = now.duration_since(w.start).as_secs_f64().max(1e-9);
    let avg = if w.count > 0 {
        w.lat_sum_us as f64 / w.count as f64 / 1000.0
    } else {
        0.0
    };
    println!(
        "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
        w.count,
        w.count as f64 / secs,
        w.bytes as f64 / MB / secs,
        avg,
        w.lat_max_us as f64 / 1000.0
    );
}

pub fn run(argv: &[String]) -> Result<i32, String> {
    let a = Args::parse("producer", argv, KNOWN)?;
    let topic = a.str("topic")?;
    let num_records: u64 = a.get("num-records")?;
    let record_size: usize = a.get("record-size")?;
    let throughput: f64 = a.get("throughput")?;
    let props = a.props("producer-props")?;
    let bootstrap = a.opt_str("bootstrap-server")?;
    let print_metrics = a.has("print-metrics");
    let json = a.has("json");
    let flush_timeout = Duration::from_millis(a.get_or("flush-timeout-ms", 120_000u64)?);
    // not in Kafka's tool: stop sending after this long, so one workload
    // takes about the same time on a fast and a slow broker
    let max_time = a.opt::<f64>("max-seconds")?.map(Duration::from_secs_f64);
    let stall_ms: f64 = a.get_or("stall-ms", 0.0)?;
    if num_records == 0 {
        return Err("producer: --num-records should be greater than zero".into());
    }
    if record_size == 0 || record_size > 64 << 20 {
        return Err("producer: --record-size must be between 1 and 64 MiB".into());
    }
    if bootstrap.is_none() && !props.iter().any(|(k, _)| k == "bootstrap.servers") {
        return Err(
            "producer: give --bootstrap-server or bootstrap.servers in --producer-props".into(),
        );
    }

    let mut cfg = client_config(bootstrap.as_deref(), &[], &props);
    if print_metrics && cfg.get("statistics.interval.ms").is_none() {
        cfg.set("statistics.interval.ms", "1000");
    }
    let t0 = Instant::now();
    let ctx = Ctx {
        t0,
        t0_mono_ns: monotonic_ns(),
        stall_us: (stall_ms * 1000.0).max(0.0) as u64,
        record_bytes: record_size as u64,
        stats: Mutex::new(Stats {
            hist: Histogram::new(),
            bytes: 0,
            errors: 0,
            window: Window::new(t0),
            stall: None,
        }),
        last_stats_json: Mutex::new(None),
    };
    let producer: ThreadedProducer<Ctx> = cfg
        .create_with_context(ctx)
        .map_err(|e| format!("creating producer: {e}"))?;

    let value = payload(record_size, 0x6b61_7374_6c65);
    let start = Instant::now();
    let mut sent = 0u64;
    for i in 0..num_records {
        if let Some(max) = max_time {
            if i % 64 == 0 && start.elapsed() >= max {
                break;
            }
        }
        if throughput > 0.0 {
            // stay on the schedule start + i/throughput; sleep only when
            // ahead by a millisecond or more so the sleep granularity does
            // not cap the rate
            let due = Duration::from_secs_f64(i as f64 / throughput);
            let elapsed = start.elapsed();
            if due > elapsed + Duration::from_millis(1) {
                thread::sleep(due - elapsed);
            }
        }
        let sent_ns = t0.elapsed().as_nanos() as usize;
        let mut rec: BaseRecord<'_, (), [u8], usize> =
            BaseRecord::with_opaque_to(&topic, sent_ns).payload(&value[..]);
        loop {
            match producer.send(rec) {
                Ok(()) => {
                    sent += 1;
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // the client's queue is full: wait for deliveries
                    rec = back;
                    thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => return Err(format!("send to {topic}: {e}")),
            }
        }
    }
    let flushed = producer.flush(flush_timeout);
    let elapsed = t0.elapsed().as_secs_f64().max(1e-9);
    let unflushed = producer.in_flight_count();

    let ctx = producer.context();
    let st = ctx
        .stats
        .lock()
        .map_err(|_| "producer stats lock poisoned".to_string())?;
    if let Some(s) = &st.stall {
        print_stall(s, ctx.t0_mono_ns);
    }
    let h = &st.hist;
    let count = h.count();
    println!(
        "{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
        count,
        count as f64 / elapsed,
        st.bytes as f64 / MB / elapsed,
        h.avg_ms(),
        h.max_ms(),
        h.percentile_ms(0.5) as u64,
        h.percentile_ms(0.95) as u64,
        h.percentile_ms(0.99) as u64,
        h.percentile_ms(0.999) as u64,
    );
    if print_metrics {
        if let Ok(s) = ctx.last_stats_json.lock() {
            println!(
                "librdkafka statistics: {}",
                s.as_deref().unwrap_or("(none received)")
            );
        }
    }
    if json {
        let j = serde_json::json!({
            "tool": "producer",
            "topic": topic,
            "records": count,
            "sent": sent,
            "errors": st.errors,
            "unflushed": unflushed,
            "record_size": record_size,
            "bytes": st.bytes,
            "elapsed_s": r3(elapsed),
            "records_per_sec": r3(count as f64 / elapsed),
            "mb_per_sec": r3(st.bytes as f64 / MB / elapsed),
            "avg_ms": r3(h.avg_ms()),
            "max_ms": r3(h.max_ms()),
            "p50_ms": r3(h.percentile_ms(0.5)),
            "p95_ms": r3(h.percentile_ms(0.95)),
            "p99_ms": r3(h.percentile_ms(0.99)),
            "p999_ms": r3(h.percentile_ms(0.999)),
        });
        println!("{j}");
    }
    if let Err(e) = flushed {
        eprintln!("producer: flush did not finish within {flush_timeout:?}: {e} ({unflushed} records not delivered)");
        return Ok(1);
    }
    if st.errors > 0 || count != sent {
        eprintln!(
            "producer: {} of {sent} records delivered, {} failed",
            count, st.errors
        );
        return Ok(1);
    }
    Ok(0)
}
