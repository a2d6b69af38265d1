//! `kastle consume TOPIC`: Kafka's `kafka-console-consumer.sh`. Resolves
//! each partition's start (`-o start|end|OFFSET|-N`, or `--from-timestamp
//! MS` through ListOffsets), then sends Fetch requests to each partition's
//! leader and prints every record (key, value, headers, partition, offset,
//! timestamp) in the chosen `--format`. Without `--follow` it stops at the
//! end offsets the partitions had when it started reading them; `-n COUNT`
//! stops after that many records. With `-g GROUP` it reads what the group
//! assigns it ([`super::group_member`]), from the group's committed offsets.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use serde_json::json;

use super::client::{topic_name, Client, EARLIEST, LATEST};
use super::group_member::{Change, GroupMember, COMMIT_INTERVAL};
use super::{flag, Args, CliError, Flag};
use crate::record::batch::{batch_records, BatchHeader};
use crate::record::default_record::records;

pub const SPEC: &[Flag] = &[
    flag(&["-p", "--partition", "--partitions"], true),
    flag(&["-o", "--offset"], true),
    flag(&["--from-timestamp"], true),
    flag(&["-n", "--num", "--max-messages"], true),
    flag(&["-f", "--follow"], false),
    flag(&["--format"], true),
    flag(&["--read-committed"], false),
    flag(&["-g", "--group"], true),
];

/// Size of a v2 batch header; a fetch's records end with a partial batch
/// when the last one did not fit.
const BATCH_HEADER: usize = 61;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const DECOMPRESSED_BUDGET: usize = 64 << 20;

/// Where a partition starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    Earliest,
    Latest,
    Offset(i64),
    /// N records before the end.
    FromEnd(i64),
    Timestamp(i64),
}

fn parse_start(args: &Args) -> Result<Start, CliError> {
    if let Some(ts) = args.number::<i64>("--from-timestamp")? {
        return Ok(Start::Timestamp(ts));
    }
    Ok(match args.value("-o") {
        None | Some("start" | "beginning" | "earliest" | "oldest") => Start::Earliest,
        Some("end" | "latest" | "newest") => Start::Latest,
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|_| CliError::Usage(format!("-o {v:?}: start, end, an offset or -N")))?;
            if n < 0 {
                Start::FromEnd(-n)
            } else {
                Start::Offset(n)
            }
        }
    })
}

/// How a record is printed.
enum Format {
    Json,
    /// `%t` topic, `%p` partition, `%o` offset, `%T` timestamp, `%k` key,
    /// `%v` value, `%h` headers (`k=v,k=v`), `%%`, `\t`, `\n`.
    Template(String),
}

fn parse_format(args: &Args) -> Format {
    match args.value("--format") {
        Some("json") => Format::Json,
        None if args.has("--json") => Format::Json,
        None | Some("default") => Format::Template(
            "topic=%t partition=%p offset=%o timestamp=%T key=%k headers=%h value=%v\n".into(),
        ),
        Some("value") => Format::Template("%v\n".into()),
        Some("kv") => Format::Template("%k\t%v\n".into()),
        Some(t) => {
            let t = t.replace("\\t", "\t").replace("\\n", "\n");
            Format::Template(if t.ends_with('\n') { t } else { t + "\n" })
        }
    }
}

struct Rec<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

fn text(b: Option<&[u8]>) -> String {
    b.map_or_else(
        || "null".to_string(),
        |b| String::from_utf8_lossy(b).into_owned(),
    )
}

fn render(format: &Format, r: &Rec<'_>) -> String {
    match format {
        Format::Json => {
            let opt = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            let headers: Vec<_> = r
                .headers
                .iter()
                .map(|(k, v)| json!({"key": String::from_utf8_lossy(k), "value": opt(*v)}))
                .collect();
            format!(
                "{}\n",
                json!({
                    "topic": r.topic, "partition": r.partition, "offset": r.offset,
                    "timestamp": r.timestamp, "key": opt(r.key), "value": opt(r.value),
                    "headers": headers,
                })
            )
        }
        Format::Template(t) => {
            let mut out = String::with_capacity(t.len() + 64);
            let mut chars = t.chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('t') => out.push_str(r.topic),
                    Some('p') => out.push_str(&r.partition.to_string()),
                    Some('o') => out.push_str(&r.offset.to_string()),
                    Some('T') => out.push_str(&r.timestamp.to_string()),
                    Some('k') => out.push_str(&text(r.key)),
                    Some('v') => out.push_str(&text(r.value)),
                    Some('h') => {
                        let hs: Vec<String> = r
                            .headers
                            .iter()
                            .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), text(*v)))
                            .collect();
                        out.push_str(&hs.join(","));
                    }
                    Some('%') => out.push('%'),
                    Some(other) => {
                        out.push('%');
                        out.push(other);
                    }
                    None => out.push('%'),
                }
            }
            out
        }
    }
}

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let args = Args::parse(argv, SPEC)?;
    let common = args.common()?;
    let topic = args.positional(0, "topic")?.to_string();
    let start = parse_start(&args)?;
    let format = parse_format(&args);
    let follow = args.has("-f");
    let limit: Option<u64> = args.number("-n")?;
    let isolation: i8 = if args.has("--read-committed") { 1 } else { 0 };

    let mut client = Client::connect(&common).await?;
    let mut leaders = client.leaders(&topic).await?;
    let mut member = match args.value("-g") {
        Some(_) if args.has("-p") => {
            return Err(CliError::Usage(
                "-p and -g: a group member consumes what the group assigns".into(),
            ))
        }
        Some(g) => Some(GroupMember::new(&mut client, g, &topic).await?),
        None => None,
    };
    let partitions: Vec<i32> = match args.value("-p") {
        Some(list) => list
            .split(',')
            .map(|p| {
                p.trim()
                    .parse::<i32>()
                    .map_err(|_| CliError::Usage(format!("-p {p:?}: not a partition")))
            })
            .collect::<Result<_, _>>()?,
        None if member.is_some() => Vec::new(),
        None => leaders.keys().copied().collect(),
    };
    for p in &partitions {
        if !leaders.contains_key(p) {
            return Err(CliError::kafka(format!("partition {topic}-{p}"), 3, None));
        }
    }
    let mut position: BTreeMap<i32, i64> = BTreeMap::new();
    // Without --follow: each partition is done at its end offset when it
    // was first read (for a group member: when it was assigned).
    let mut end: BTreeMap<i32, i64> = BTreeMap::new();
    let committed = BTreeMap::new();
    let spots = Spots {
        topic: &topic,
        start,
        isolation,
    };
    spots
        .resolve(
            &mut client,
            &leaders,
            &partitions,
            &committed,
            &mut position,
            &mut end,
        )
        .await?;
    let interrupted = interrupt_flag(member.is_some());
    let mut last_commit = Instant::now();

    let stdout = std::io::stdout();
    let mut printed = 0u64;
    loop {
        if let Some(m) = member.as_mut() {
            match m.poll(&mut client).await? {
                None => {}
                Some(Change::Fenced) => {
                    // Another member may own these now: no commit.
                    position.clear();
                    end.clear();
                }
                Some(Change::Assigned(assigned)) => {
                    let revoked: BTreeMap<i32, i64> = position
                        .iter()
                        .filter(|(p, _)| !assigned.contains(p))
                        .map(|(p, o)| (*p, *o))
                        .collect();
                    m.commit(&mut client, &revoked).await?;
                    for p in revoked.keys() {
                        position.remove(p);
                        end.remove(p);
                    }
                    let added: Vec<i32> = assigned
                        .iter()
                        .filter(|p| !position.contains_key(p))
                        .copied()
                        .collect();
                    if !added.is_empty() {
                        leaders = client.leaders(&topic).await?;
                        let committed = m.committed(&mut client, &added).await?;
                        spots
                            .resolve(
                                &mut client,
                                &leaders,
                                &added,
                                &committed,
                                &mut position,
                                &mut end,
                            )
                            .await?;
                    }
                    m.reconciled(&assigned);
                }
            }
        }
        let active: Vec<i32> = position
            .iter()
            .filter(|(p, at)| follow || **at < end.get(*p).copied().unwrap_or(0))
            .map(|(p, _)| *p)
            .collect();
        // A member with nothing assigned waits for an assignment, the
        // first one always and any later one with --follow.
        let nothing_to_read = active.is_empty()
            && member
                .as_ref()
                .is_none_or(|m| m.assignment_received && !follow);
        if interrupted.load(Ordering::Relaxed)
            || limit.is_some_and(|n| printed >= n)
            || nothing_to_read
        {
            break;
        }
        if let Some(m) = member.as_mut() {
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                m.commit(&mut client, &position).await?;
                last_commit = Instant::now();
            }
            if active.is_empty() {
                // Nothing assigned (yet): wait for the next heartbeat.
                tokio::time::sleep(m.until_heartbeat().min(Duration::from_millis(500))).await;
                continue;
            }
        }
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in active {
            by_leader
                .entry(leaders.get(&p).copied().unwrap_or(-1))
                .or_default()
                .push(p);
        }
        let mut refresh = false;
        for (leader, parts) in by_leader {
            if leader < 0 {
                refresh = true;
                continue;
            }
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(if follow { 500 } else { 100 })
                .with_min_bytes(1)
                .with_max_bytes(50 << 20)
                .with_isolation_level(isolation)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(topic_name(&topic))
                    .with_partitions(
                        parts
                            .iter()
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(*p)
                                    .with_current_leader_epoch(-1)
                                    .with_fetch_offset(position.get(p).copied().unwrap_or(0))
                                    .with_last_fetched_epoch(-1)
                                    .with_log_start_offset(-1)
                                    .with_partition_max_bytes(PARTITION_MAX_BYTES)
                            })
                            .collect(),
                    )]);
            let (resp, _) = client.send_node(leader, &req, 12).await?;
            if resp.error_code != 0 {
                return Err(CliError::kafka(
                    format!("fetching from {topic}"),
                    resp.error_code,
                    None,
                ));
            }
            let mut out = stdout.lock();
            for t in &resp.responses {
                for pd in &t.partitions {
                    let p = pd.partition_index;
                    match pd.error_code {
                        0 => {}
                        // NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, FENCED/UNKNOWN_LEADER_EPOCH
                        6 | 5 | 74 | 75 => {
                            refresh = true;
                            continue;
                        }
                        code => {
                            return Err(CliError::kafka(
                                format!(
                                    "fetching {topic}-{p} at offset {}",
                                    position.get(&p).copied().unwrap_or(0)
                                ),
                                code,
                                None,
                            ))
                        }
                    }
                    let Some(bytes) = pd.records.as_ref() else {
                        continue;
                    };
                    let stop_at = if follow {
                        i64::MAX
                    } else {
                        end.get(&p).copied().unwrap_or(0)
                    };
                    let mut at = position.get(&p).copied().unwrap_or(0);
                    let mut pos = 0usize;
                    while bytes.len() - pos >= BATCH_HEADER {
                        let buf = &bytes[pos..];
                        let h = BatchHeader::parse(buf)
                            .map_err(|e| CliError::Other(format!("{topic}-{p}: {e}")))?;
                        let size = h.total_size();
                        if size > buf.len() || size < BATCH_HEADER {
                            break; // a partial batch ends the response
                        }
                        let batch = &buf[..size];
                        pos += size;
                        if !h.is_control() {
                            let section = batch_records(batch, DECOMPRESSED_BUDGET)
                                .map_err(|e| CliError::Other(format!("{topic}-{p}: {e}")))?;
                            for r in records(&section, h.records_count) {
                                let r =
                                    r.map_err(|e| CliError::Other(format!("{topic}-{p}: {e}")))?;
                                let offset = h.base_offset + i64::from(r.offset_delta);
                                if offset < at
                                    || offset >= stop_at
                                    || limit.is_some_and(|n| printed >= n)
                                {
                                    continue;
                                }
                                let timestamp = if h.timestamp_type_is_log_append() {
                                    h.max_timestamp
                                } else {
                                    h.base_timestamp + r.timestamp_delta
                                };
                                let rec = Rec {
                                    topic: &topic,
                                    partition: p,
                                    offset,
                                    timestamp,
                                    key: r.key,
                                    value: r.value,
                                    headers: r.headers().collect(),
                                };
                                out.write_all(render(&format, &rec).as_bytes())
                                    .map_err(|e| CliError::Other(format!("writing stdout: {e}")))?;
                                printed += 1;
                            }
                        }
                        at = at.max(h.last_offset() + 1);
                    }
                    position.insert(p, at);
                    if !follow && at < stop_at && pd.high_watermark >= 0 && pd.high_watermark <= at
                    {
                        // The log ended below where it was (truncated): stop there.
                        position.insert(p, stop_at);
                    }
                }
            }
            out.flush()
                .map_err(|e| CliError::Other(format!("writing stdout: {e}")))?;
        }
        if refresh {
            tokio::time::sleep(Duration::from_millis(200)).await;
            leaders = client.leaders(&topic).await?;
        }
    }
    if let Some(mut m) = member {
        m.commit(&mut client, &position).await?;
        m.leave(&mut client).await?;
    }
    Ok(())
}

/// Where newly read partitions start and, without `--follow`, end.
struct Spots<'a> {
    topic: &'a str,
    start: Start,
    isolation: i8,
}

impl Spots<'_> {
    /// Sets the start and end of each of `partitions`: a committed offset
    /// when the group has one, else where `-o`/`--from-timestamp` says.
    async fn resolve(
        &self,
        client: &mut Client,
        leaders: &BTreeMap<i32, i32>,
        partitions: &[i32],
        committed: &BTreeMap<i32, i64>,
        position: &mut BTreeMap<i32, i64>,
        end: &mut BTreeMap<i32, i64>,
    ) -> Result<(), CliError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let (topic, isolation) = (self.topic, self.isolation);
        let earliest = client
            .list_offsets(topic, leaders, partitions, EARLIEST, isolation)
            .await?;
        let latest = client
            .list_offsets(topic, leaders, partitions, LATEST, isolation)
            .await?;
        let stamped = match self.start {
            Start::Timestamp(ts) => Some(
                client
                    .list_offsets(topic, leaders, partitions, ts, isolation)
                    .await?,
            ),
            _ => None,
        };
        for p in partitions {
            let lo = earliest.get(p).map_or(0, |o| o.0);
            let hi = latest.get(p).map_or(0, |o| o.0);
            let at = match (committed.get(p), self.start) {
                // As Kafka's consumer: a committed offset outside the log
                // resets as the start flag says.
                (Some(&c), _) if (lo..=hi).contains(&c) => c,
                (_, Start::Earliest) => lo,
                (_, Start::Latest) => hi,
                (_, Start::Offset(o)) => o,
                (_, Start::FromEnd(n)) => (hi - n).max(lo),
                (_, Start::Timestamp(_)) => match stamped.as_ref().and_then(|s| s.get(p)) {
                    Some((o, _)) if *o >= 0 => *o,
                    _ => hi,
                },
            };
            position.insert(*p, at);
            end.insert(*p, hi);
        }
        Ok(())
    }
}

/// Set when the user interrupts (Ctrl-C), so a group member commits and
/// leaves before exiting; without a group Ctrl-C ends the process as usual.
fn interrupt_flag(group_member: bool) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    if !group_member {
        return flag;
    }
    let set = flag.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            set.store(true, Ordering::Relaxed);
        }
    });
    flag
}
