//! Shared helpers for kastle's black-box protocol tests: a guard around the
//! broker process (start, SIGTERM, SIGKILL, restart on the same directory and
//! port), a tiny blocking Kafka client that frames requests by hand and uses
//! the `kafka-protocol` crate for bodies, and a v2 record batch encoder.

#![allow(dead_code)]

pub mod configs;

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, Request};

pub const CLIENT_ID: &str = "kastle-protocol-tests";

// ---------------------------------------------------------------------------
// Request helpers
// ---------------------------------------------------------------------------

pub fn sb(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

pub fn tn(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(sb(s))
}

/// Creates a topic (CreateTopics v7, default replication factor) with
/// explicit configs, and asserts it was created.
pub fn create_topic_with(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    use kafka_protocol::messages::create_topics_request::{
        CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
    };
    let topic = CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(10_000);
    let r = c.call(7, &req);
    assert_eq!(r.topics.len(), 1);
    assert_eq!(
        r.topics[0].error_code, 0,
        "create {name} {configs:?}: {:?}",
        r.topics[0].error_message
    );
}

// ---------------------------------------------------------------------------
// Broker process guard
// ---------------------------------------------------------------------------

pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    /// Keeps the temporary directory alive; removed on drop.
    _tmp: tempfile::TempDir,
    /// `log.dirs` of the broker.
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

impl Broker {
    /// Start a broker on a free port with a fresh data directory, plus
    /// `extra` overrides (`key=value`).
    pub fn start(extra: &[&str]) -> Broker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let stderr_path = tmp.path().join("stderr.log");
        let mut b = Broker {
            child: None,
            port: free_port(),
            data_dir,
            stderr_path,
            _tmp: tmp,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        b.spawn();
        b.wait_ready();
        b
    }

    /// Spawn without waiting for the port; for start-up failure tests.
    pub fn spawn_only(extra: &[&str]) -> Broker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let stderr_path = tmp.path().join("stderr.log");
        let mut b = Broker {
            child: None,
            port: free_port(),
            data_dir,
            stderr_path,
            _tmp: tmp,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kastle"));
        let l = format!("PLAINTEXT://127.0.0.1:{}", self.port);
        cmd.arg("--override")
            .arg(format!("listeners={l}"))
            .arg("--override")
            .arg(format!("advertised.listeners={l}"))
            .arg("--override")
            .arg(format!("log.dirs={}", self.data_dir.display()));
        for e in &self.extra {
            cmd.arg("--override").arg(e);
        }
        // Keep the environment from leaking KAFKA_* settings into the broker.
        for (k, _) in std::env::vars() {
            if k.starts_with("KAFKA_") {
                cmd.env_remove(k);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        self.child = Some(cmd.spawn().expect("spawn kastle"));
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.try_wait() {
                panic!(
                    "kastle exited during start-up with {st}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "kastle did not accept on port {} within 10 s\n--- stderr ---\n{}",
                    self.port,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("broker not running").id() as i32
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    /// Panics (with stderr) unless the process is still running.
    pub fn assert_alive(&mut self) {
        if let Some(st) = self.try_wait() {
            panic!("kastle died: {st}\n--- stderr ---\n{}", self.stderr());
        }
    }

    /// Wait for the child for at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM and wait (up to 15 s) for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let pid = self.pid();
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        match self.wait_exit(Duration::from_secs(15)) {
            Some(st) => st,
            None => panic!(
                "kastle did not exit within 15 s of SIGTERM\n--- stderr ---\n{}",
                self.stderr()
            ),
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }

    /// Start again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart while running");
        self.spawn();
        self.wait_ready();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    /// Peak resident set size of the broker in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn log_file(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir
            .join(format!("{topic}-{partition}"))
            .join("00000000000000000000.log")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- kastle stderr (port {}) ---\n{}\n--- end stderr ---",
                self.port,
                self.stderr()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Raw client
// ---------------------------------------------------------------------------

pub struct Client {
    pub stream: TcpStream,
    next_corr: i32,
}

/// Request header bytes (v1 or v2) for the given key/version/correlation.
pub fn request_header(api_key: i16, version: i16, corr: i32, header_version: i16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&corr.to_be_bytes());
    if header_version >= 1 {
        h.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
        h.extend_from_slice(CLIENT_ID.as_bytes());
    }
    if header_version >= 2 {
        h.push(0); // empty tagged fields
    }
    h
}

/// Header version the crate says a request uses; v1 for unknown keys.
pub fn req_header_version(api_key: i16, version: i16) -> i16 {
    match ApiKey::try_from(api_key) {
        Ok(k) => k.request_header_version(version),
        Err(_) => 1,
    }
}

pub fn resp_header_version(api_key: i16, version: i16) -> i16 {
    match ApiKey::try_from(api_key) {
        Ok(k) => k.response_header_version(version),
        Err(_) => 0,
    }
}

/// A whole frame (size prefix included) with a header of the crate's version.
pub fn frame(api_key: i16, version: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    frame_with_header(
        api_key,
        version,
        corr,
        req_header_version(api_key, version),
        body,
    )
}

pub fn frame_with_header(
    api_key: i16,
    version: i16,
    corr: i32,
    header_version: i16,
    body: &[u8],
) -> Vec<u8> {
    let h = request_header(api_key, version, corr, header_version);
    let mut f = Vec::with_capacity(4 + h.len() + body.len());
    f.extend_from_slice(&((h.len() + body.len()) as i32).to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(body);
    f
}

pub fn encode<R: Encodable>(req: &R, version: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    req.encode(&mut b, version).expect("encode request");
    b.to_vec()
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            next_corr: 1,
        }
    }

    pub fn next_corr(&mut self) -> i32 {
        let c = self.next_corr;
        self.next_corr += 1;
        c
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, api_key: i16, version: i16, corr: i32, body: &[u8]) {
        let f = frame(api_key, version, corr, body);
        self.stream.write_all(&f).expect("write request");
    }

    /// Read one response frame: (correlation id, bytes after the correlation id).
    pub fn recv_frame(&mut self) -> std::io::Result<(i32, Bytes)> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        assert!(
            (4..256 * 1024 * 1024).contains(&len),
            "bad response size {len}"
        );
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf)?;
        let mut b = Bytes::from(buf);
        let corr = b.get_i32();
        Ok((corr, b))
    }

    /// Read one response and strip the response header for (`api_key`, `version`).
    pub fn recv(&mut self, api_key: i16, version: i16) -> (i32, Bytes) {
        let (corr, mut b) = self.recv_frame().expect("read response");
        if resp_header_version(api_key, version) >= 1 {
            skip_tagged_fields(&mut b);
        }
        (corr, b)
    }

    /// Encode `req`, send it, read and decode the response.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let corr = self.next_corr();
        self.send(R::KEY, version, corr, &encode(req, version));
        let (got, mut body) = self.recv(R::KEY, version);
        assert_eq!(got, corr, "correlation id mismatch");
        let resp = R::Response::decode(&mut body, version).expect("decode response");
        assert_eq!(
            body.remaining(),
            0,
            "trailing bytes in response to api {} v{version}",
            R::KEY
        );
        resp
    }

    /// Send without reading a response (acks=0 produce).
    pub fn send_only<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let corr = self.next_corr();
        self.send(R::KEY, version, corr, &encode(req, version));
        corr
    }

    /// Assert the broker closes this connection (EOF or reset) within 10 s,
    /// without sending any response bytes first.
    pub fn expect_closed(&mut self, what: &str) {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 256];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!(
                "{what}: expected the connection to close, got {n} bytes: {:?}",
                &buf[..n]
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) => {}
            Err(e) => panic!(
                "{what}: expected the connection to close, got error {e} ({:?})",
                e.kind()
            ),
        }
    }
}

pub fn skip_tagged_fields(b: &mut Bytes) {
    let n = get_uvarint(b);
    for _ in 0..n {
        let _tag = get_uvarint(b);
        let len = get_uvarint(b) as usize;
        b.advance(len);
    }
}

pub fn get_uvarint(b: &mut Bytes) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b.get_u8();
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_uvarint(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

// ---------------------------------------------------------------------------
// Record batches (magic v2)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Absolute timestamp (ms).
    pub timestamp: i64,
}

impl Rec {
    pub fn value(v: &[u8], timestamp: i64) -> Rec {
        Rec {
            key: None,
            value: Some(v.to_vec()),
            headers: vec![],
            timestamp,
        }
    }
}

pub const BATCH_HEADER_LEN: usize = 61;

/// Encode a v2 record batch (no compression, CreateTime, no producer id).
pub fn batch(records: &[Rec]) -> Vec<u8> {
    assert!(!records.is_empty());
    let base_ts = records.iter().map(|r| r.timestamp).min().unwrap();
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap();
    let mut recs = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut body = Vec::new();
        body.push(0u8); // attributes
        put_varlong(&mut body, r.timestamp - base_ts);
        put_varint(&mut body, i as i32);
        match &r.key {
            Some(k) => {
                put_varint(&mut body, k.len() as i32);
                body.extend_from_slice(k);
            }
            None => put_varint(&mut body, -1),
        }
        match &r.value {
            Some(v) => {
                put_varint(&mut body, v.len() as i32);
                body.extend_from_slice(v);
            }
            None => put_varint(&mut body, -1),
        }
        put_varint(&mut body, r.headers.len() as i32);
        for (hk, hv) in &r.headers {
            put_varint(&mut body, hk.len() as i32);
            body.extend_from_slice(hk.as_bytes());
            match hv {
                Some(v) => {
                    put_varint(&mut body, v.len() as i32);
                    body.extend_from_slice(v);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut recs, body.len() as i32);
        recs.extend_from_slice(&body);
    }
    // Everything from attributes to the end: covered by the CRC.
    let mut tail = Vec::new();
    tail.extend_from_slice(&0i16.to_be_bytes()); // attributes
    tail.extend_from_slice(&((records.len() - 1) as i32).to_be_bytes()); // lastOffsetDelta
    tail.extend_from_slice(&base_ts.to_be_bytes());
    tail.extend_from_slice(&max_ts.to_be_bytes());
    tail.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    tail.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    tail.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    tail.extend_from_slice(&(records.len() as i32).to_be_bytes());
    tail.extend_from_slice(&recs);
    let crc = crc32c::crc32c(&tail);
    let mut out = Vec::with_capacity(21 + tail.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    out.extend_from_slice(&((4 + 1 + 4 + tail.len()) as i32).to_be_bytes()); // batchLength
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    out.push(2); // magic
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&tail);
    out
}

/// A batch of `n` records with values of `value_size` bytes, all at `ts`.
pub fn simple_batch(n: usize, value_size: usize, ts: i64, seed: u8) -> Vec<u8> {
    let recs: Vec<Rec> = (0..n)
        .map(|i| Rec {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(
                (0..value_size)
                    .map(|j| seed.wrapping_add((i * 31 + j) as u8))
                    .collect(),
            ),
            headers: if i == 0 {
                vec![("h".into(), Some(b"v".to_vec()))]
            } else {
                vec![]
            },
            timestamp: ts,
        })
        .collect();
    batch(&recs)
}

/// Split a record set into its batches (each with its 12-byte prefix).
/// Panics on a partial batch.
pub fn split_batches(records: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        assert!(
            records.len() - pos >= 12,
            "partial batch header at {pos} of {}",
            records.len()
        );
        let len = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap()) as usize;
        assert!(
            pos + 12 + len <= records.len(),
            "partial batch at {pos}: needs {} bytes, {} left",
            12 + len,
            records.len() - pos
        );
        out.push(records[pos..pos + 12 + len].to_vec());
        pos += 12 + len;
    }
    out
}

pub fn batch_base_offset(b: &[u8]) -> i64 {
    i64::from_be_bytes(b[0..8].try_into().unwrap())
}

pub fn batch_record_count(b: &[u8]) -> i32 {
    i32::from_be_bytes(b[57..61].try_into().unwrap())
}

/// Compare a fetched batch with the one produced: identical except the base
/// offset (must be `offset`) and the partition leader epoch (which a leader
/// may stamp: must be the produced -1 or `leader_epoch`).
pub fn assert_same_batch(
    fetched: &[u8],
    produced: &[u8],
    offset: i64,
    leader_epoch: i32,
    what: &str,
) {
    assert_eq!(
        fetched.len(),
        produced.len(),
        "{what}: batch length differs"
    );
    assert_eq!(batch_base_offset(fetched), offset, "{what}: base offset");
    assert_eq!(fetched[8..12], produced[8..12], "{what}: batchLength bytes");
    let ple = i32::from_be_bytes(fetched[12..16].try_into().unwrap());
    assert!(
        ple == -1 || ple == leader_epoch,
        "{what}: partitionLeaderEpoch {ple}"
    );
    assert!(
        fetched[16..] == produced[16..],
        "{what}: batch bytes from magic on differ"
    );
}

/// Append bytes to a file (for crash-recovery tests).
pub fn append_to(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

pub fn truncate_to(path: &Path, len: u64) {
    let f = File::options()
        .write(true)
        .open(path)
        .expect("open for truncate");
    f.set_len(len).unwrap();
    f.sync_all().unwrap();
}

/// Deterministic xorshift64* PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

pub fn put_i16(v: &mut Vec<u8>, x: i16) {
    v.put_i16(x)
}
pub fn put_i32(v: &mut Vec<u8>, x: i32) {
    v.put_i32(x)
}

// ---------------------------------------------------------------------------
// Idempotent producer batches (tests/idempotence.rs)
// ---------------------------------------------------------------------------

/// Stamp producerId, producerEpoch and baseSequence into a v2 batch (as
/// produced by [`batch`]) and recompute its CRC; attributes stay unchanged.
pub fn set_producer(b: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    assert!(b.len() >= BATCH_HEADER_LEN && b[16] == 2, "not a v2 batch");
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A v2 batch of `n` records (values `<tag>-<i>`, timestamp `ts`) carrying
/// the given producer id, epoch and base sequence.
pub fn producer_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    n: usize,
    ts: i64,
    tag: &str,
) -> Vec<u8> {
    let recs: Vec<Rec> = (0..n)
        .map(|i| Rec {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("{tag}-{i}").into_bytes()),
            headers: vec![],
            timestamp: ts,
        })
        .collect();
    let mut b = batch(&recs);
    set_producer(&mut b, producer_id, epoch, base_sequence);
    b
}

/// (producerId, producerEpoch, baseSequence) of a v2 batch.
pub fn batch_producer(b: &[u8]) -> (i64, i16, i32) {
    (
        i64::from_be_bytes(b[43..51].try_into().unwrap()),
        i16::from_be_bytes(b[51..53].try_into().unwrap()),
        i32::from_be_bytes(b[53..57].try_into().unwrap()),
    )
}
