//! First throughput benchmark for kastle: starts the real broker binary on a
//! free loopback port with a fresh data directory, produces and fetches with
//! pipelined raw Kafka requests, and measures a same-machine reference (plain
//! file writes / preads in the same directory) in the same run.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example bench -- --mode durable --partitions 1,6
//! cargo run --release --example bench -- --mode pagecache --partitions 6
//! ```
//!
//! Prints Markdown table rows on stdout; progress goes to stderr.
//! MB = 10^6 bytes. Bytes counted are record-batch bytes (what the broker
//! stores), not request framing.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};

const PRODUCE_V: i16 = 9;
const FETCH_V: i16 = 12;
const CREATE_V: i16 = 7;

// ---------------------------------------------------------------- options

#[derive(Clone, Debug)]
struct Opts {
    broker_bin: PathBuf,
    mode: String, // durable | pagecache
    partitions: Vec<i32>,
    connections: usize,
    inflight: usize,
    records_per_batch: usize,
    record_size: usize,
    volume: u64,
    duration: Option<Duration>,
    fetch: bool,
    reference: bool,
    tmp_parent: Option<PathBuf>,
    header: bool,
    label: String,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        broker_bin: PathBuf::from("target/release/kastle"),
        mode: "durable".into(),
        partitions: vec![1, 6],
        connections: 4,
        inflight: 5,
        records_per_batch: 100,
        record_size: 1024,
        volume: 1 << 30,
        duration: None,
        fetch: true,
        reference: true,
        tmp_parent: None,
        header: true,
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--broker-bin" => o.broker_bin = val()?.into(),
            "--mode" => {
                o.mode = val()?;
                if o.mode != "durable" && o.mode != "pagecache" {
                    bail!("--mode is durable or pagecache");
                }
            }
            "--partitions" => {
                o.partitions = val()?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--connections" => o.connections = val()?.parse()?,
            "--inflight" => o.inflight = val()?.parse()?,
            "--records-per-batch" => o.records_per_batch = val()?.parse()?,
            "--record-size" => o.record_size = val()?.parse()?,
            "--volume-mib" => o.volume = val()?.parse::<u64>()? << 20,
            "--duration-secs" => o.duration = Some(Duration::from_secs_f64(val()?.parse()?)),
            "--no-fetch" => o.fetch = false,
            "--no-reference" => o.reference = false,
            "--no-header" => o.header = false,
            "--tmp-dir" => o.tmp_parent = Some(val()?.into()),
            "--label" => o.label = val()?,
            "-h" | "--help" => {
                eprintln!(
                    "bench [--broker-bin target/release/kastle] [--mode durable|pagecache] \
                     [--partitions 1,6] [--connections 4] [--inflight 5] [--records-per-batch 100] \
                     [--record-size 1024] [--volume-mib 1024 | --duration-secs S] [--no-fetch] \
                     [--no-reference] [--no-header] [--tmp-dir DIR] [--label TEXT]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown option {other:?} (see --help)"),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------- record batch v2 encoder

fn put_varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64; // zigzag
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// One uncompressed v2 batch of `values` (null keys, no headers).
fn encode_batch(values: &[Vec<u8>], timestamp: i64) -> Vec<u8> {
    let mut records = Vec::new();
    let mut rec = Vec::new();
    for (i, v) in values.iter().enumerate() {
        rec.clear();
        rec.push(0); // attributes
        put_varint(&mut rec, 0); // timestampDelta
        put_varint(&mut rec, i as i64); // offsetDelta
        put_varint(&mut rec, -1); // key: null
        put_varint(&mut rec, v.len() as i64);
        rec.extend_from_slice(v);
        put_varint(&mut rec, 0); // headers
        put_varint(&mut records, rec.len() as i64);
        records.extend_from_slice(&rec);
    }
    let mut b = Vec::with_capacity(61 + records.len());
    b.put_i64(0); // baseOffset (the broker assigns)
    b.put_i32(0); // batchLength, patched below
    b.put_i32(-1); // partitionLeaderEpoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, patched below
    b.put_i16(0); // attributes: no compression, CreateTime
    b.put_i32(values.len() as i32 - 1); // lastOffsetDelta
    b.put_i64(timestamp); // baseTimestamp
    b.put_i64(timestamp); // maxTimestamp
    b.put_i64(-1); // producerId
    b.put_i16(-1); // producerEpoch
    b.put_i32(-1); // baseSequence
    b.put_i32(values.len() as i32); // recordsCount
    b.extend_from_slice(&records);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Counts complete batches' records in a fetched records blob; returns
/// (records, bytes of complete batches, next offset after the last batch).
fn scan_batches(mut data: &[u8]) -> Result<(u64, u64, Option<i64>)> {
    let (mut n, mut bytes, mut next) = (0u64, 0u64, None);
    while data.len() >= 61 {
        let base = i64::from_be_bytes(data[0..8].try_into().unwrap());
        let len = i32::from_be_bytes(data[8..12].try_into().unwrap());
        if len < 49 {
            bail!("bad batchLength {len} at offset {base}");
        }
        let total = 12 + len as usize;
        if data.len() < total {
            break; // partial batch at the end of the response: fetched again next time
        }
        if data[16] != 2 {
            bail!("unexpected magic {} at offset {base}", data[16]);
        }
        let last_delta = i32::from_be_bytes(data[23..27].try_into().unwrap());
        let count = i32::from_be_bytes(data[57..61].try_into().unwrap());
        n += count as u64;
        bytes += total as u64;
        next = Some(base + last_delta as i64 + 1);
        data = &data[total..];
    }
    Ok((n, bytes, next))
}

// ---------------------------------------------------------------- framing

fn frame<R: Encodable + HeaderVersion>(
    key: ApiKey,
    version: i16,
    corr: i32,
    req: &R,
) -> Result<Vec<u8>> {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = corr;
    header.client_id = Some(StrBytes::from_static_str("kastle-bench"));
    let mut body = BytesMut::new();
    header.encode(&mut body, R::header_version(version))?;
    req.encode(&mut body, version)?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads one response frame into `buf` (reusing its allocation when possible)
/// and returns it frozen.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S, buf: &mut BytesMut) -> Result<Bytes> {
    let size = s.read_i32().await.context("reading response size")?;
    if size < 4 {
        bail!("bad response size {size}");
    }
    let size = size as usize;
    buf.clear();
    buf.reserve(size);
    while buf.len() < size {
        let want = (size - buf.len()) as u64;
        let n = (&mut *s).take(want).read_buf(buf).await?;
        if n == 0 {
            bail!("connection closed mid-response");
        }
    }
    Ok(buf.split_to(size).freeze())
}

fn decode_response<T: Decodable + HeaderVersion>(
    mut b: Bytes,
    version: i16,
    corr: i32,
) -> Result<T> {
    let h = ResponseHeader::decode(&mut b, T::header_version(version))?;
    if h.correlation_id != corr {
        bail!("correlation id {} != expected {corr}", h.correlation_id);
    }
    T::decode(&mut b, version)
}

async fn call<Req, Resp>(addr: &str, key: ApiKey, version: i16, req: &Req) -> Result<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&frame(key, version, 1, req)?).await?;
    let mut buf = BytesMut::new();
    let b = read_frame(&mut s, &mut buf).await?;
    decode_response(b, version, 1)
}

// ---------------------------------------------------------------- broker process

struct Broker {
    child: Child,
    addr: String,
    data_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Broker {
    fn start(o: &Opts) -> Result<Broker> {
        let tmp = match &o.tmp_parent {
            Some(p) => tempfile::Builder::new()
                .prefix("kastle-bench")
                .tempdir_in(p)?,
            None => tempfile::Builder::new().prefix("kastle-bench").tempdir()?,
        };
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir)?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(&o.broker_bin);
        cmd.arg("--override")
            .arg(format!("listeners=PLAINTEXT://{addr}"))
            .arg("--override")
            .arg(format!("advertised.listeners=PLAINTEXT://{addr}"))
            .arg("--override")
            .arg(format!("log.dirs={}", data_dir.display()));
        if o.mode == "pagecache" {
            cmd.arg("--override")
                .arg("log.flush.interval.messages=9223372036854775807");
        }
        let log = File::create(tmp.path().join("broker.log"))?;
        cmd.stdout(Stdio::null()).stderr(log);
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting {} (build it with cargo build --release)",
                o.broker_bin.display()
            )
        })?;
        let mut b = Broker {
            child,
            addr,
            data_dir,
            _tmp: tmp,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(&b.addr).is_ok() {
                break;
            }
            if let Some(st) = b.child.try_wait()? {
                bail!("broker exited at start-up ({st}); log:\n{}", b.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "broker did not listen on {} within 20 s; log:\n{}",
                    b.addr,
                    b.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(b)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._tmp.path().join("broker.log")).unwrap_or_default()
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            bail!("broker died ({st}); log tail:\n{}", tail(&self.log(), 40));
        }
        Ok(())
    }

    fn stop(mut self) -> Result<()> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                eprintln!("broker ignored SIGTERM for 30 s; killing");
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

/// CPU seconds (user+system) of a process from /proc/PID/stat.
fn proc_cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let get = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (get(11) + get(12)) / tick // utime, stime (fields 14, 15)
}

/// (broker CPU s, bench CPU s) snapshot.
fn cpu_snapshot(broker_pid: u32) -> (f64, f64) {
    (proc_cpu(broker_pid), proc_cpu(std::process::id()))
}

fn cpu_cell(before: (f64, f64), after: (f64, f64), el: Duration) -> String {
    let s = el.as_secs_f64();
    format!(
        "{:.2} / {:.2}",
        (after.0 - before.0) / s,
        (after.1 - before.1) / s
    )
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------- produce

struct ProduceResult {
    bytes: u64,
    records: u64,
    requests: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    per_partition: Vec<u64>,
    request_batch_bytes: usize,
}

async fn create_topic(addr: &str, topic: &str, partitions: i32) -> Result<()> {
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 30_000;
    let resp: CreateTopicsResponse = call(addr, ApiKey::CreateTopics, CREATE_V, &req).await?;
    for t in &resp.topics {
        if t.error_code != 0 {
            bail!(
                "CreateTopics {topic}: error {} {:?}",
                t.error_code,
                t.error_message
            );
        }
    }
    Ok(())
}

async fn produce(o: &Opts, addr: &str, topic: &str, partitions: i32) -> Result<ProduceResult> {
    // Random-ish values (xorshift), different per record so nothing compresses by accident.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let values: Vec<Vec<u8>> = (0..o.records_per_batch)
        .map(|_| {
            (0..o.record_size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect()
        })
        .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let batch = Bytes::from(encode_batch(&values, now_ms));
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic.to_string()));
    td.partition_data = (0..partitions)
        .map(|p| {
            let mut pd = PartitionProduceData::default();
            pd.index = p;
            pd.records = Some(batch.clone());
            pd
        })
        .collect();
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 30_000;
    req.topic_data = vec![td];
    let template = frame(ApiKey::Produce, PRODUCE_V, 0, &req)?;
    let request_batch_bytes = batch.len() * partitions as usize;
    let total_requests = (o.volume / request_batch_bytes as u64).max(1);
    let sent = Arc::new(AtomicU64::new(0));
    let deadline = o.duration.map(|d| Instant::now() + d);

    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.connections {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (mut rd, mut wr) = s.into_split();
        let mut frame_buf = template.clone();
        let sent = sent.clone();
        let sem = Arc::new(Semaphore::new(o.inflight));
        let (tx, mut rx) = mpsc::unbounded_channel::<(i32, Instant)>();
        let sem_w = sem.clone();
        let writer = tokio::spawn(async move {
            let mut corr = 0i32;
            loop {
                sem_w.acquire().await?.forget();
                if deadline.is_some_and(|d| Instant::now() >= d)
                    || sent.fetch_add(1, Ordering::Relaxed) >= total_requests
                {
                    break;
                }
                corr += 1;
                frame_buf[8..12].copy_from_slice(&corr.to_be_bytes());
                let _ = tx.send((corr, Instant::now()));
                wr.write_all(&frame_buf).await?;
            }
            anyhow::Ok(wr) // keep the write half open until the reader is done
        });
        let reader = tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut per_partition = vec![0u64; partitions as usize];
            let mut buf = BytesMut::new();
            while let Some((corr, t0)) = rx.recv().await {
                let b = read_frame(&mut rd, &mut buf).await?;
                lat.push(t0.elapsed());
                let resp: ProduceResponse = decode_response(b, PRODUCE_V, corr)?;
                let mut n = 0;
                for t in &resp.responses {
                    for p in &t.partition_responses {
                        if p.error_code != 0 {
                            bail!(
                                "Produce response corr {corr} partition {} error_code {} message {:?}",
                                p.index,
                                p.error_code,
                                p.error_message
                            );
                        }
                        per_partition[p.index as usize] += 1;
                        n += 1;
                    }
                }
                if n != partitions {
                    bail!("Produce response corr {corr} has {n} partition responses, expected {partitions}");
                }
                sem.add_permits(1);
            }
            anyhow::Ok((lat, per_partition))
        });
        tasks.push((writer, reader));
    }
    let mut latencies = Vec::new();
    let mut per_partition = vec![0u64; partitions as usize];
    for (w, r) in tasks {
        let (lat, pp) = r.await??;
        w.await??;
        latencies.extend(lat);
        for (a, b) in per_partition.iter_mut().zip(pp) {
            *a += b;
        }
    }
    let elapsed = start.elapsed();
    let requests = latencies.len() as u64;
    latencies.sort();
    Ok(ProduceResult {
        bytes: requests * request_batch_bytes as u64,
        records: requests * (o.records_per_batch as u64) * partitions as u64,
        requests,
        elapsed,
        latencies,
        per_partition: per_partition
            .iter()
            .map(|n| n * o.records_per_batch as u64)
            .collect(),
        request_batch_bytes,
    })
}

// ---------------------------------------------------------------- fetch

/// Reads partitions `parts` from offset 0 until each has `expected[p]`
/// records; returns (records, batch bytes).
async fn fetch_conn(addr: String, topic: String, parts: Vec<(i32, u64)>) -> Result<(u64, u64)> {
    let mut s = TcpStream::connect(&addr).await?;
    s.set_nodelay(true)?;
    let mut next: Vec<i64> = vec![0; parts.len()];
    let mut got: Vec<u64> = vec![0; parts.len()];
    let mut bytes = 0u64;
    let mut buf = BytesMut::new();
    let mut corr = 0;
    let name = TopicName(StrBytes::from_string(topic));
    let mut empty_rounds = 0;
    loop {
        let pending: Vec<usize> = (0..parts.len()).filter(|&i| got[i] < parts[i].1).collect();
        if pending.is_empty() {
            break;
        }
        let mut ft = FetchTopic::default();
        ft.topic = name.clone();
        ft.partitions = pending
            .iter()
            .map(|&i| {
                let mut fp = FetchPartition::default();
                fp.partition = parts[i].0;
                fp.fetch_offset = next[i];
                fp.partition_max_bytes = 10 << 20;
                fp
            })
            .collect();
        let mut req = FetchRequest::default();
        req.max_wait_ms = 100;
        req.min_bytes = 1;
        req.max_bytes = 50 << 20;
        req.topics = vec![ft];
        corr += 1;
        s.write_all(&frame(ApiKey::Fetch, FETCH_V, corr, &req)?)
            .await?;
        let b = read_frame(&mut s, &mut buf).await?;
        let resp: FetchResponse = decode_response(b, FETCH_V, corr)?;
        if resp.error_code != 0 {
            bail!(
                "Fetch corr {corr}: top-level error_code {}",
                resp.error_code
            );
        }
        let mut progressed = false;
        for t in &resp.responses {
            for p in &t.partitions {
                if p.error_code != 0 {
                    bail!(
                        "Fetch corr {corr} partition {} offset {:?}: error_code {}",
                        p.partition_index,
                        parts
                            .iter()
                            .position(|x| x.0 == p.partition_index)
                            .map(|i| next[i]),
                        p.error_code
                    );
                }
                let i = parts
                    .iter()
                    .position(|x| x.0 == p.partition_index)
                    .ok_or_else(|| {
                        anyhow!("Fetch returned unrequested partition {}", p.partition_index)
                    })?;
                if let Some(r) = &p.records {
                    let (n, nb, nx) = scan_batches(r)?;
                    got[i] += n;
                    bytes += nb;
                    if let Some(nx) = nx {
                        next[i] = nx;
                        progressed = true;
                    }
                }
            }
        }
        drop(resp);
        empty_rounds = if progressed { 0 } else { empty_rounds + 1 };
        if empty_rounds > 50 {
            bail!("Fetch made no progress for 50 rounds: next offsets {next:?}, records {got:?}, expected {parts:?}");
        }
    }
    for (i, (p, want)) in parts.iter().enumerate() {
        if got[i] != *want {
            bail!("partition {p}: fetched {} records, produced {want}", got[i]);
        }
    }
    Ok((got.iter().sum(), bytes))
}

async fn fetch(
    addr: &str,
    topic: &str,
    expected: &[u64],
    conns: usize,
) -> Result<(u64, u64, Duration)> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let parts: Vec<(i32, u64)> = (0..expected.len())
            .filter(|p| p % conns == c)
            .map(|p| (p as i32, expected[p]))
            .collect();
        tasks.push(tokio::spawn(fetch_conn(
            addr.to_string(),
            topic.to_string(),
            parts,
        )));
    }
    let (mut recs, mut bytes) = (0, 0);
    for t in tasks {
        let (r, b) = t.await??;
        recs += r;
        bytes += b;
    }
    Ok((recs, bytes, start.elapsed()))
}

// ---------------------------------------------------------------- references

/// Appends `total` bytes in `chunk`-sized writes to a new file in `dir`,
/// fdatasync after each chunk if `sync`. Returns elapsed time.
fn ref_write(dir: &Path, chunk: usize, total: u64, sync: bool) -> Result<Duration> {
    let path = dir.join("bench-reference.tmp");
    let data: Vec<u8> = (0..chunk).map(|i| (i * 31 + 7) as u8).collect();
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let n = (total / chunk as u64).max(1);
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&data)?;
        if sync {
            f.sync_data()?;
        }
    }
    let el = start.elapsed();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(el)
}

/// pread of every segment file of `topic` in 1 MiB chunks. Returns (bytes, elapsed).
fn ref_pread(data_dir: &Path, topic: &str) -> Result<(u64, Duration)> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(data_dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(rest) = name.strip_prefix(&format!("{topic}-")) {
            if rest.parse::<u32>().is_ok() {
                for f in std::fs::read_dir(e.path())? {
                    let f = f?.path();
                    if f.extension().is_some_and(|x| x == "log") {
                        files.push(f);
                    }
                }
            }
        }
    }
    if files.is_empty() {
        bail!("no segment files for {topic} under {}", data_dir.display());
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let start = Instant::now();
    for p in files {
        let f = File::open(&p)?;
        let mut off = 0u64;
        loop {
            let n = f.read_at(&mut buf, off)?;
            if n == 0 {
                break;
            }
            off += n as u64;
        }
        total += off;
    }
    Ok((total, start.elapsed()))
}

/// Pushes `total` bytes through a loopback TCP connection (1 MiB writes and
/// reads, one thread each side): the transport ceiling for fetch. MB/s.
fn ref_loopback(total: u64) -> Result<f64> {
    use std::io::Read;
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let reader = std::thread::spawn(move || -> Result<u64> {
        let (mut s, _) = l.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let r = s.read(&mut buf)?;
            if r == 0 {
                return Ok(n);
            }
            n += r as u64;
        }
    });
    let mut s = std::net::TcpStream::connect(addr)?;
    let buf = vec![7u8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        s.write_all(&buf)?;
        sent += buf.len() as u64;
    }
    drop(s);
    let got = reader.join().map_err(|_| anyhow!("reader panicked"))??;
    Ok(mbps(got, start.elapsed()))
}

// ---------------------------------------------------------------- report

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1e3
}

#[allow(clippy::too_many_arguments)]
fn row(
    scenario: &str,
    mb: f64,
    recs: f64,
    p50: Option<f64>,
    p99: Option<f64>,
    cpu: &str,
    reference: &str,
    ref_mb: Option<f64>,
) {
    let f = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{v:.1}"));
    let ratio = ref_mb.map_or("–".to_string(), |r| format!("{:.2}", mb / r));
    println!(
        "| {scenario} | {mb:.1} | {recs:.0} | {} | {} | {cpu} | {reference} | {} | {ratio} |",
        f(p50),
        f(p99),
        f(ref_mb)
    );
}

fn main() -> Result<()> {
    let o = parse_opts()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut broker = Broker::start(&o)?;
    eprintln!(
        "broker {} pid {} data {}",
        broker.addr,
        broker.child.id(),
        broker.data_dir.display()
    );
    if o.header {
        println!("| scenario | kastle MB/s | records/s | p50 ms | p99 ms | CPU cores broker / bench | reference (same run) | reference MB/s | ratio |");
        println!("|---|---:|---:|---:|---:|---:|---|---:|---:|");
    }
    let res = (|| -> Result<()> {
        for &parts in &o.partitions {
            let topic = format!("bench-{}-p{parts}", o.mode);
            rt.block_on(create_topic(&broker.addr, &topic, parts))?;
            let label = if o.label.is_empty() {
                String::new()
            } else {
                format!(" {}", o.label)
            };
            let scen = format!(
                "produce {} P={parts} C={} inflight={}{label}",
                o.mode, o.connections, o.inflight
            );
            eprintln!("{scen}: producing...");
            let c0 = cpu_snapshot(broker.child.id());
            let pr = rt.block_on(produce(&o, &broker.addr, &topic, parts));
            let c1 = cpu_snapshot(broker.child.id());
            broker.check_alive()?;
            let pr = pr?;
            let mb = mbps(pr.bytes, pr.elapsed);
            let rps = pr.records as f64 / pr.elapsed.as_secs_f64();
            eprintln!(
                "  {} requests ({} batch bytes each), {} records, {:.2} s",
                pr.requests,
                pr.request_batch_bytes,
                pr.records,
                pr.elapsed.as_secs_f64()
            );
            let (p50, p99) = (
                Some(pct(&pr.latencies, 0.50)),
                Some(pct(&pr.latencies, 0.99)),
            );
            let cpu = cpu_cell(c0, c1, pr.elapsed);
            if o.reference {
                let sync = ref_write(&broker.data_dir, pr.request_batch_bytes, pr.bytes, true)?;
                let wonly = ref_write(&broker.data_dir, pr.request_batch_bytes, pr.bytes, false)?;
                let chunk_kib = pr.request_batch_bytes / 1024;
                if o.mode == "durable" {
                    row(
                        &scen,
                        mb,
                        rps,
                        p50,
                        p99,
                        &cpu,
                        &format!("write+fdatasync per {chunk_kib} KiB chunk"),
                        Some(mbps(pr.bytes, sync)),
                    );
                    row(
                        &scen,
                        mb,
                        rps,
                        p50,
                        p99,
                        &cpu,
                        "write only (page cache)",
                        Some(mbps(pr.bytes, wonly)),
                    );
                } else {
                    row(
                        &scen,
                        mb,
                        rps,
                        p50,
                        p99,
                        &cpu,
                        "write only (page cache)",
                        Some(mbps(pr.bytes, wonly)),
                    );
                    row(
                        &scen,
                        mb,
                        rps,
                        p50,
                        p99,
                        &cpu,
                        &format!("write+fdatasync per {chunk_kib} KiB chunk"),
                        Some(mbps(pr.bytes, sync)),
                    );
                }
            } else {
                row(&scen, mb, rps, p50, p99, &cpu, "–", None);
            }
            if !o.fetch {
                continue;
            }
            let mut conn_variants = vec![1];
            if parts > 1 && o.connections > 1 {
                conn_variants.push(o.connections.min(parts as usize));
            }
            let reference = if o.reference {
                Some(ref_pread(&broker.data_dir, &topic)?)
            } else {
                None
            };
            let tcp_ref = if o.reference {
                Some(ref_loopback(pr.bytes)?)
            } else {
                None
            };
            for c in conn_variants {
                let scen = format!("fetch {} P={parts} C={c}{label}", o.mode);
                eprintln!("{scen}: fetching...");
                let c0 = cpu_snapshot(broker.child.id());
                let fr = rt.block_on(fetch(&broker.addr, &topic, &pr.per_partition, c));
                let c1 = cpu_snapshot(broker.child.id());
                broker.check_alive()?;
                let (recs, bytes, el) = fr?;
                if recs != pr.records {
                    bail!("fetched {recs} records, produced {}", pr.records);
                }
                eprintln!("  {recs} records, {bytes} bytes, {:.2} s", el.as_secs_f64());
                let refr = reference.map(|(b, d)| mbps(b, d));
                let cpu = cpu_cell(c0, c1, el);
                row(
                    &scen,
                    mbps(bytes, el),
                    recs as f64 / el.as_secs_f64(),
                    None,
                    None,
                    &cpu,
                    "pread 1 MiB chunks of the segment files",
                    refr,
                );
                if let Some(tcp) = tcp_ref {
                    row(
                        &scen,
                        mbps(bytes, el),
                        recs as f64 / el.as_secs_f64(),
                        None,
                        None,
                        &cpu,
                        "loopback TCP, same bytes, 1 MiB writes",
                        Some(tcp),
                    );
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = &res {
        eprintln!(
            "error: {e:#}\nbroker log tail:\n{}",
            tail(&broker.log(), 30)
        );
    }
    broker.stop()?;
    res
}
