//! `kastle produce TOPIC`: Kafka's `kafka-console-producer.sh`. Reads
//! records from stdin, one per line (a key before `--key-separator` when
//! given, else `-k KEY` or none), adds the `-H key=value` headers, and sends
//! them as v2 record batches ([`BatchBuilder`]) in Produce requests to
//! each partition's leader. The partition is `-p`, else Kafka's default
//! partitioner: murmur2 of the key, or for keyless records one partition
//! per batch of lines read together, in turn. Lines that arrive together
//! (a pipe) go out together; a line typed alone goes out at once.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use serde_json::json;

use super::client::{topic_name, Client};
use super::{flag, key_value, print_json, print_table, Args, CliError, Flag};
use crate::record::builder::BatchBuilder;

pub const SPEC: &[Flag] = &[
    flag(&["-k", "--key"], true),
    flag(&["-H", "--header"], true),
    flag(&["-p", "--partition"], true),
    flag(&["--key-separator"], true),
    flag(&["--acks"], true),
];

/// Lines sent in one request at most (per chunk read).
const MAX_CHUNK_RECORDS: usize = 5_000;
const MAX_CHUNK_BYTES: usize = 1 << 20;
/// Retries of a partition whose leader moved or is not yet there.
const MAX_RETRIES: usize = 10;

/// Kafka's `Utils.murmur2`, the default partitioner's hash of a key.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The default partitioner's partition of a keyed record.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    let positive = (murmur2(key) & 0x7fff_ffff) as usize;
    (positive % partitions.max(1)) as i32
}

/// What was produced to one partition.
#[derive(Default)]
struct Produced {
    records: u64,
    first_offset: Option<i64>,
    last_offset: i64,
}

pub async fn run(argv: &[String]) -> Result<(), CliError> {
    let args = Args::parse(argv, SPEC)?;
    let common = args.common()?;
    let topic = args.positional(0, "topic")?.to_string();
    let fixed_partition: Option<i32> = args.number("-p")?;
    let acks: i16 = args.number("--acks")?.unwrap_or(-1);
    if acks != -1 && acks != 1 {
        return Err(CliError::Usage(
            "--acks: -1 (all) or 1 (leader); acks=0 gets no answer to report".into(),
        ));
    }
    let headers = args
        .values("-H")
        .iter()
        .map(|h| key_value(h, "-H"))
        .collect::<Result<Vec<_>, _>>()?;
    let fixed_key = args.value("-k").map(|k| k.as_bytes().to_vec());
    let separator = args.value("--key-separator").map(str::to_string);
    if separator.as_deref() == Some("") {
        return Err(CliError::Usage("--key-separator must not be empty".into()));
    }

    let mut client = Client::connect(&common).await?;
    let mut leaders = client.leaders(&topic).await?;
    if let Some(p) = fixed_partition {
        if !leaders.contains_key(&p) {
            return Err(CliError::kafka(
                format!("partition {topic}-{p}"),
                3,
                Some(format!("topic {topic} has {} partitions", leaders.len())),
            ));
        }
    }

    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(MAX_CHUNK_RECORDS);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });

    let mut produced: BTreeMap<i32, Produced> = BTreeMap::new();
    let mut next_keyless = 0usize;
    while let Some(first) = rx.recv().await {
        let mut lines = vec![first.map_err(|e| CliError::Other(format!("reading stdin: {e}")))?];
        let mut bytes = lines[0].len();
        while lines.len() < MAX_CHUNK_RECORDS && bytes < MAX_CHUNK_BYTES {
            match rx.try_recv() {
                Ok(line) => {
                    let line = line.map_err(|e| CliError::Other(format!("reading stdin: {e}")))?;
                    bytes += line.len();
                    lines.push(line);
                }
                Err(_) => break,
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let count = leaders.len();
        let keyless = (next_keyless % count.max(1)) as i32;
        next_keyless += 1;
        let mut batches: BTreeMap<i32, BatchBuilder> = BTreeMap::new();
        let header_refs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        for line in &lines {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let (key, value): (Option<&[u8]>, &[u8]) = match &separator {
                Some(sep) => match line.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(k.as_bytes()), v.as_bytes()),
                    None => {
                        return Err(CliError::Usage(format!(
                            "line {line:?} has no key separator {sep:?}"
                        )))
                    }
                },
                None => (fixed_key.as_deref(), line.as_bytes()),
            };
            let partition = match (fixed_partition, key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, count),
                (None, None) => keyless,
            };
            let b = batches
                .remove(&partition)
                .unwrap_or_else(|| BatchBuilder::new(now));
            batches.insert(partition, b.push(key, Some(value), &header_refs, now));
        }
        let mut pending: BTreeMap<i32, (bytes::Bytes, u64)> = batches
            .into_iter()
            .map(|(p, b)| (p, (b.build().freeze(), b.record_count() as u64)))
            .collect();
        for attempt in 0..=MAX_RETRIES {
            let retry = send(
                &mut client,
                &topic,
                &leaders,
                acks,
                &common,
                &pending,
                &mut produced,
            )
            .await?;
            pending.retain(|p, _| retry.contains(p));
            if pending.is_empty() {
                break;
            }
            if attempt == MAX_RETRIES {
                return Err(CliError::Other(format!(
                    "producing to {topic}: partitions {:?} had no leader after {MAX_RETRIES} retries",
                    pending.keys().collect::<Vec<_>>()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            leaders = client.leaders(&topic).await?;
        }
    }

    let total: u64 = produced.values().map(|p| p.records).sum();
    if common.json {
        let parts: Vec<_> = produced
            .iter()
            .map(|(p, s)| json!({"partition": p, "records": s.records, "first_offset": s.first_offset, "last_offset": s.last_offset}))
            .collect();
        print_json(&json!({"topic": topic, "records": total, "partitions": parts}));
    } else {
        let rows: Vec<Vec<String>> = produced
            .iter()
            .map(|(p, s)| {
                vec![
                    p.to_string(),
                    s.records.to_string(),
                    s.first_offset.map_or("-".into(), |o| o.to_string()),
                    s.last_offset.to_string(),
                ]
            })
            .collect();
        print_table(
            &["PARTITION", "RECORDS", "FIRST_OFFSET", "LAST_OFFSET"],
            &rows,
        );
    }
    Ok(())
}

/// One Produce request per leader; returns the partitions to retry (their
/// leader moved or is not ready). Any other error fails the command.
async fn send(
    client: &mut Client,
    topic: &str,
    leaders: &BTreeMap<i32, i32>,
    acks: i16,
    common: &super::Common,
    pending: &BTreeMap<i32, (bytes::Bytes, u64)>,
    produced: &mut BTreeMap<i32, Produced>,
) -> Result<Vec<i32>, CliError> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    let mut retry = Vec::new();
    for p in pending.keys() {
        match leaders.get(p) {
            Some(l) if *l >= 0 => by_leader.entry(*l).or_default().push(*p),
            _ => retry.push(*p),
        }
    }
    for (leader, parts) in by_leader {
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(common.timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(
                    parts
                        .iter()
                        .filter_map(|p| {
                            let (records, _) = pending.get(p)?;
                            Some(
                                PartitionProduceData::default()
                                    .with_index(*p)
                                    .with_records(Some(records.clone())),
                            )
                        })
                        .collect(),
                )]);
        let resp = match client.send_node(leader, &req, 9).await {
            Ok((resp, _)) => resp,
            Err(e) if attempt_again(&e) => {
                retry.extend(parts);
                continue;
            }
            Err(e) => return Err(e),
        };
        for t in resp.responses {
            for p in t.partition_responses {
                let Some((_, count)) = pending.get(&p.index) else {
                    continue;
                };
                match p.error_code {
                    0 => {
                        let s = produced.entry(p.index).or_default();
                        s.records += count;
                        s.first_offset.get_or_insert(p.base_offset);
                        s.last_offset = p.base_offset + *count as i64 - 1;
                    }
                    // NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE,
                    // UNKNOWN_TOPIC_OR_PARTITION (metadata not there yet),
                    // NOT_ENOUGH_REPLICAS*, REQUEST_TIMED_OUT
                    6 | 5 | 3 | 19 | 20 | 7 => retry.push(p.index),
                    code => {
                        let message =
                            p.error_message.as_ref().map(|m| m.to_string()).or_else(|| {
                                p.record_errors
                                    .first()
                                    .and_then(|r| r.batch_index_error_message.as_ref())
                                    .map(|m| m.to_string())
                            });
                        return Err(CliError::kafka(
                            format!("producing to {topic}-{}", p.index),
                            code,
                            message,
                        ));
                    }
                }
            }
        }
    }
    Ok(retry)
}

/// A broker that is gone (its leadership moves): try its partitions again.
fn attempt_again(e: &CliError) -> bool {
    matches!(e, CliError::Other(m) if m.starts_with("connecting to"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
