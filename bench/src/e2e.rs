//! `kastle-perf e2e`: end-to-end latency at a fixed rate below saturation.
//!
//! Kafka's EndToEndLatency sends one record, waits for it to come back, and
//! repeats; that measures an idle broker. Here records go out at `--rate`
//! per second (acks=all and linger.ms=0 unless overridden) while a consumer
//! in the same process reads them back; each payload carries its send time,
//! so latency = time the consumer sees the record - time it was sent
//! (same monotonic clock, no clock skew). The consumer is assigned every
//! partition at its high watermark before the first send, so it sees exactly
//! this run's records; other records (a payload without this run's tag) are
//! counted and ignored.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::args::Args;
use crate::common::{client_config, create_topics, payload, r3};
use crate::hist::Histogram;

const KNOWN: &[&str] = &[
    "bootstrap-server",
    "topic",
    "num-records",
    "record-size",
    "rate",
    "acks",
    "producer-props",
    "consumer-props",
    "timeout",
    "json",
];
/// Payload header: run tag (8 bytes) + send time in ns since t0 (8 bytes).
const HEADER: usize = 16;

struct PCtx {
    errors: AtomicU64,
}

impl ClientContext for PCtx {}

impl ProducerContext for PCtx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if self.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("delivery failed: {e}");
            }
        }
    }
}

struct ConsumerResult {
    hist: Histogram,
    foreign: u64,
    errors: u64,
}

pub fn run(argv: &[String]) -> Result<i32, String> {
    let a = Args::parse("e2e", argv, KNOWN)?;
    let bootstrap = a.str("bootstrap-server")?;
    let topic = a.str("topic")?;
    let n: u64 = a.get("num-records")?;
    let record_size: usize = a.get_or("record-size", 100)?;
    let rate: f64 = a.get("rate")?;
    let acks = a.get_or("acks", "all".to_string())?;
    let pprops = a.props("producer-props")?;
    let cprops = a.props("consumer-props")?;
    let timeout = Duration::from_millis(a.get_or("timeout", 30_000u64)?);
    let json = a.has("json");
    if n == 0 || rate.is_nan() || rate <= 0.0 {
        return Err("e2e: --num-records and --rate must be positive".into());
    }
    if !(HEADER..=64 << 20).contains(&record_size) {
        return Err(format!("e2e: --record-size must be {HEADER}..=64 MiB"));
    }

    // the consumer: every partition from its current end
    let consumer: BaseConsumer = client_config(
        Some(&bootstrap),
        &[
            ("group.id", "kastle-perf-e2e"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
            // the broker's long poll answers as soon as data arrives; the
            // cap bounds what a broker without that wake-up adds
            ("fetch.wait.max.ms", "100"),
        ],
        &cprops,
    )
    .create()
    .map_err(|e| format!("creating consumer: {e}"))?;
    let meta_timeout = Duration::from_secs(10);
    let mut partitions = partition_count(&consumer, &topic, meta_timeout)?;
    if partitions == 0 {
        println!("Topic \"{topic}\" does not exist. Will create topic with 1 partition(s) and replication factor = 1");
        create_topics(&bootstrap, &[(topic.clone(), 1)], 1, meta_timeout)?;
        partitions = partition_count(&consumer, &topic, meta_timeout)?;
        if partitions == 0 {
            return Err(format!(
                "e2e: topic {topic} has no partitions after creation"
            ));
        }
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(&topic, p, meta_timeout)
            .map_err(|e| format!("ListOffsets {topic}-{p}: {e}"))?;
        tpl.add_partition_offset(&topic, p, Offset::Offset(high))
            .map_err(|e| format!("assign {topic}-{p}: {e}"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("assign {topic}: {e}"))?;

    let t0 = Instant::now();
    let tag: u64 = 0x6b70_6532_6500_0000 ^ u64::from(std::process::id());
    let done = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let consumer_done = done.clone();
    let reader = thread::spawn(move || {
        let mut res = ConsumerResult {
            hist: Histogram::new(),
            foreign: 0,
            errors: 0,
        };
        // poll for a second first so connections and fetch sessions exist
        // before the first record is sent
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs(1) {
            let _ = consumer.poll(Duration::from_millis(50));
        }
        let _ = ready_tx.send(());
        let mut last = Instant::now();
        while res.hist.count() < n {
            if consumer_done.load(Ordering::Relaxed) && last.elapsed() > timeout {
                break;
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let now_ns = t0.elapsed().as_nanos() as u64;
                    last = Instant::now();
                    match m.payload().and_then(parse_header) {
                        Some((t, sent_ns)) if t == tag => {
                            res.hist.record(now_ns.saturating_sub(sent_ns) / 1000)
                        }
                        _ => res.foreign += 1,
                    }
                }
                Some(Err(e)) => {
                    res.errors += 1;
                    if res.errors <= 5 {
                        eprintln!("consumer error: {e}");
                    }
                }
                None => {}
            }
        }
        res
    });
    ready_rx
        .recv()
        .map_err(|_| "e2e: consumer thread ended before it was ready".to_string())?;

    let producer: ThreadedProducer<PCtx> = client_config(
        Some(&bootstrap),
        &[("acks", &acks), ("linger.ms", "0")],
        &pprops,
    )
    .create_with_context(PCtx {
        errors: AtomicU64::new(0),
    })
    .map_err(|e| format!("creating producer: {e}"))?;
    let mut value = payload(record_size, 0x0065_3265);
    value[..8].copy_from_slice(&tag.to_be_bytes());
    let start = Instant::now();
    for i in 0..n {
        let due = Duration::from_secs_f64(i as f64 / rate);
        let elapsed = start.elapsed();
        if due > elapsed {
            thread::sleep(due - elapsed);
        }
        value[8..HEADER].copy_from_slice(&(t0.elapsed().as_nanos() as u64).to_be_bytes());
        let mut rec: BaseRecord<'_, (), [u8], ()> = BaseRecord::to(&topic).payload(&value[..]);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    thread::sleep(Duration::from_micros(200));
                }
                Err((e, _)) => {
                    done.store(true, Ordering::Relaxed);
                    return Err(format!("send to {topic}: {e}"));
                }
            }
        }
    }
    let send_secs = start.elapsed().as_secs_f64().max(1e-9);
    let flushed = producer.flush(timeout);
    done.store(true, Ordering::Relaxed);
    let res = reader
        .join()
        .map_err(|_| "e2e: consumer thread panicked".to_string())?;
    let perrors = producer.context().errors.load(Ordering::Relaxed);

    let h = &res.hist;
    println!("Avg latency: {:.4} ms", h.avg_ms());
    println!(
        "Percentiles: 50th = {}, 95th = {}, 99th = {}, 99.9th = {}",
        h.percentile_ms(0.5) as u64,
        h.percentile_ms(0.95) as u64,
        h.percentile_ms(0.99) as u64,
        h.percentile_ms(0.999) as u64
    );
    println!(
        "{} of {n} records received, target rate {rate:.0}/s, achieved send rate {:.0}/s, max {:.2} ms",
        h.count(),
        n as f64 / send_secs,
        h.max_ms()
    );
    if json {
        let j = serde_json::json!({
            "tool": "e2e",
            "topic": topic,
            "records": h.count(),
            "expected": n,
            "record_size": record_size,
            "acks": acks,
            "rate": rate,
            "achieved_rate": r3(n as f64 / send_secs),
            "produce_errors": perrors,
            "consume_errors": res.errors,
            "foreign_records": res.foreign,
            "avg_ms": r3(h.avg_ms()),
            "p50_ms": r3(h.percentile_ms(0.5)),
            "p95_ms": r3(h.percentile_ms(0.95)),
            "p99_ms": r3(h.percentile_ms(0.99)),
            "p999_ms": r3(h.percentile_ms(0.999)),
            "max_ms": r3(h.max_ms()),
        });
        println!("{j}");
    }
    if flushed.is_err() || perrors > 0 || h.count() < n {
        eprintln!(
            "e2e: {} of {n} records came back ({perrors} delivery failures)",
            h.count()
        );
        return Ok(1);
    }
    Ok(0)
}

fn parse_header(p: &[u8]) -> Option<(u64, u64)> {
    let tag = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let sent = u64::from_be_bytes(p.get(8..HEADER)?.try_into().ok()?);
    Some((tag, sent))
}

/// Partition count of `topic` from Metadata; 0 when the topic is unknown.
fn partition_count(c: &BaseConsumer, topic: &str, timeout: Duration) -> Result<i32, String> {
    let md = c
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("Metadata for {topic}: {e}"))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len() as i32)
        .unwrap_or(0))
}
