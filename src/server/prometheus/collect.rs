//! The scrape: turns the broker's counters and its current state (topics,
//! partitions, log sizes and offsets, consumer group lag, connections) into
//! OpenMetrics text via the `prometheus-client` crate's encoder.
//!
//! Gauges are computed here, at scrape time, from the topic registry, each
//! partition's published state and the GroupCoordinator's committed offsets,
//! so nothing on the request path maintains them. Consumer lag follows
//! `kafka-consumer-groups.sh`: the partition's high watermark (what
//! ListOffsets "latest" returns to a read_uncommitted consumer) minus the
//! group's committed offset, never below zero.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::broker::quota_managers::SensorSnapshot;
use crate::broker::replication_quota_manager::ReplicationQuotas;
use crate::broker::topics::Topic;
use crate::metrics::{api_name, error_name, PartitionMetrics, API_SLOTS};

use super::Sources;

/// At most this many consumer-lag series per scrape: groups × partitions
/// grow with client input, the scrape must not. Past the bound the series
/// are dropped and `kastle_consumer_group_lag_series_dropped` says how many.
pub const MAX_LAG_SERIES: usize = 20_000;

/// Encodes the whole scrape for `broker` as OpenMetrics text.
pub fn render(broker: &Arc<Sources>) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape {
        broker: broker.clone(),
    }));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

struct Scrape {
    broker: Arc<Sources>,
}

// The collector trait wants Debug; the broker is not worth printing.
impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrape")
    }
}

fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        m.encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
    }
    Ok(())
}

fn gauges<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, i64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        m.encode_family(&labels)?.encode_gauge(&v)?;
    }
    Ok(())
}

fn scalar_gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn scalar_counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

type TopicLabel<'a> = [(&'static str, &'a str); 1];
type PartitionLabels<'a> = ([(&'static str, &'a str); 1], [(&'static str, i32); 1]);

/// One committed offset turned into a lag figure.
#[derive(Debug, Clone, PartialEq)]
pub struct LagRow {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub lag: i64,
}

/// Every group's committed offsets as (group, topic, partition, offset).
fn committed_offsets(broker: &Sources) -> impl Iterator<Item = (String, String, i32, i64)> + '_ {
    broker.groups.list_groups().into_iter().flat_map(move |g| {
        broker
            .groups
            .fetch_offsets(&g.group_id, None, false)
            .unwrap_or_default()
            .into_iter()
            .flat_map(move |(topic, offsets)| {
                let group = g.group_id.clone();
                offsets
                    .into_iter()
                    .map(move |o| (group.clone(), topic.clone(), o.partition, o.offset))
            })
    })
}

/// Lag rows for committed offsets on partitions that exist (`high_watermark`
/// answers `None` for the others), at most `limit` of them; returns the
/// rows and how many were left out.
pub fn lag_rows(
    committed: impl Iterator<Item = (String, String, i32, i64)>,
    high_watermark: impl Fn(&str, i32) -> Option<i64>,
    limit: usize,
) -> (Vec<LagRow>, usize) {
    let mut rows = Vec::new();
    let mut dropped = 0usize;
    for (group, topic, partition, committed) in committed {
        if committed < 0 {
            continue;
        }
        let Some(hw) = high_watermark(&topic, partition) else {
            continue;
        };
        if rows.len() >= limit {
            dropped += 1;
            continue;
        }
        rows.push(LagRow {
            group,
            topic,
            partition,
            committed,
            lag: (hw - committed).max(0),
        });
    }
    (rows, dropped)
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let b = &self.broker;
        let m = &b.metrics;
        let topics: Vec<Arc<Topic>> = b.replicas.topics.list();
        let per_topic = |f: fn(&PartitionMetrics) -> u64| {
            topics.iter().map(move |t| -> (TopicLabel, u64) {
                let total = t.partitions.iter().map(|p| f(&p.metrics)).sum();
                ([("topic", t.name.as_str())], total)
            })
        };
        counters(
            &mut enc,
            "kastle_topic_bytes_in",
            "Bytes appended to the topic's log (produce and coordinator writes).",
            per_topic(PartitionMetrics::bytes_in),
        )?;
        counters(
            &mut enc,
            "kastle_topic_messages_in",
            "Records appended to the topic's log (counted from batch headers).",
            per_topic(PartitionMetrics::messages_in),
        )?;
        counters(
            &mut enc,
            "kastle_topic_bytes_out",
            "Record bytes sent to clients in fetch responses.",
            per_topic(PartitionMetrics::bytes_out),
        )?;
        gauges(
            &mut enc,
            "kastle_topic_partitions",
            "Partitions of the topic.",
            topics.iter().map(|t| -> (TopicLabel, i64) {
                ([("topic", t.name.as_str())], t.partitions.len() as i64)
            }),
        )?;
        scalar_gauge(
            &mut enc,
            "kastle_partitions",
            "Partitions on this broker, internal topics included.",
            topics.iter().map(|t| t.partitions.len() as i64).sum(),
        )?;
        scalar_counter(
            &mut enc,
            "kastle_log_corrupt_segments",
            "Sealed log segments the LogScrubber found holding a corrupt record batch (fetches stop before it).",
            crate::storage::scrubber::corrupt_segments_total(),
        )?;
        // Kafka's LogCleanerManager and LogManager gauges, tagged as Kafka
        // tags them with the log directory's absolute path.
        let log_dir = b.replicas.config.log_dir.as_path();
        let log_dir_abs = std::path::absolute(log_dir).unwrap_or_else(|_| log_dir.to_path_buf());
        let dir_label: [(&str, String); 1] = [("logDirectory", log_dir_abs.display().to_string())];
        gauges(
            &mut enc,
            "kastle_uncleanable_partitions_count",
            "Partitions the log cleaner marked uncleanable after an error cleaning them, such as a record batch failing its CRC (Kafka's LogCleanerManager uncleanable-partitions-count).",
            [(dir_label.clone(), b.replicas.uncleanable.list().len() as i64)],
        )?;
        let uncleanable_bytes = b
            .replicas
            .uncleanable
            .uncleanable_bytes(crate::util::now_ms());
        gauges(
            &mut enc,
            "kastle_uncleanable_bytes",
            "Cleanable bytes of the uncleanable partitions (Kafka's LogCleanerManager uncleanable-bytes).",
            [(dir_label, i64::try_from(uncleanable_bytes).unwrap_or(i64::MAX))],
        )?;
        scalar_gauge(
            &mut enc,
            "kastle_offline_log_directory_count",
            "Log directories offline after an I/O error (Kafka's LogManager OfflineLogDirectoryCount); the broker halts when its only one fails.",
            crate::broker::log_dir_failure::offline_log_directory_count(log_dir) as i64,
        )?;

        // One pass over the partitions for the per-partition gauges.
        let mut sizes = Vec::new();
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        for t in &topics {
            for p in &t.partitions {
                let labels: PartitionLabels =
                    ([("topic", t.name.as_str())], [("partition", p.index)]);
                let s = p.state();
                if let Some(size) = p.size_bytes() {
                    sizes.push((labels, i64::try_from(size).unwrap_or(i64::MAX)));
                }
                starts.push((labels, s.log_start_offset));
                ends.push((labels, s.high_watermark));
            }
        }
        gauges(
            &mut enc,
            "kastle_partition_log_size_bytes",
            "Bytes of the partition's log segments on disk.",
            sizes,
        )?;
        gauges(
            &mut enc,
            "kastle_partition_log_start_offset",
            "First offset of the partition's log.",
            starts,
        )?;
        gauges(
            &mut enc,
            "kastle_partition_high_watermark",
            "The partition's high watermark (the end offset consumers see).",
            ends,
        )?;

        let by_name: HashMap<&str, &Arc<Topic>> =
            topics.iter().map(|t| (t.name.as_str(), t)).collect();
        let hw = |topic: &str, partition: i32| {
            by_name
                .get(topic)
                .and_then(|t| t.partition(partition))
                .map(|p| p.state().high_watermark)
        };
        let (lag, dropped) = lag_rows(committed_offsets(b), hw, MAX_LAG_SERIES);
        let lag_labels = |r: &LagRow| {
            (
                [("group", r.group.clone()), ("topic", r.topic.clone())],
                [("partition", r.partition)],
            )
        };
        gauges(
            &mut enc,
            "kastle_consumer_group_committed_offset",
            "The group's committed offset for the partition.",
            lag.iter().map(|r| (lag_labels(r), r.committed)),
        )?;
        gauges(
            &mut enc,
            "kastle_consumer_group_lag",
            "High watermark minus the group's committed offset.",
            lag.iter().map(|r| (lag_labels(r), r.lag)),
        )?;
        scalar_gauge(
            &mut enc,
            "kastle_consumer_group_lag_series_dropped",
            &format!("Lag series left out of this scrape past its bound of {MAX_LAG_SERIES}."),
            i64::try_from(dropped).unwrap_or(i64::MAX),
        )?;

        let mut durations = enc.encode_descriptor(
            "kastle_request_duration_seconds",
            "Time from a request's frame being read to its response being ready, by API.",
            None,
            MetricType::Histogram,
        )?;
        for key in 0..API_SLOTS as i16 {
            let (Some(h), Some(api)) = (m.requests(key), api_name(key)) else {
                continue;
            };
            let (sum, count, buckets) = h.snapshot();
            if count == 0 {
                continue;
            }
            durations
                .encode_family(&[("api", api)])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        let errors = [("Produce", &m.produce_errors), ("Fetch", &m.fetch_errors)];
        counters(
            &mut enc,
            "kastle_request_errors",
            "Per-partition errors in Produce and Fetch responses, by Kafka error name.",
            errors.iter().flat_map(|(api, counts)| {
                counts.nonzero().into_iter().map(move |(code, n)| {
                    ([("api", api.to_string()), ("error", error_name(code))], n)
                })
            }),
        )?;

        scalar_gauge(
            &mut enc,
            "kastle_connections_open",
            "Client connections currently open.",
            m.connections_open(),
        )?;
        scalar_counter(
            &mut enc,
            "kastle_connections_accepted",
            "Client connections accepted since start.",
            m.connections_accepted(),
        )?;
        let fs = &b.fetch_sessions;
        scalar_gauge(
            &mut enc,
            "kastle_incremental_fetch_sessions",
            "Incremental fetch sessions cached (Kafka's NumIncrementalFetchSessions).",
            fs.num_sessions() as i64,
        )?;
        scalar_gauge(
            &mut enc,
            "kastle_incremental_fetch_partitions_cached",
            "Partitions in cached fetch sessions (Kafka's NumIncrementalFetchPartitionsCached).",
            fs.num_partitions(),
        )?;
        scalar_counter(
            &mut enc,
            "kastle_incremental_fetch_session_evictions",
            "Fetch sessions evicted to make room (Kafka's IncrementalFetchSessionEvictionsPerSec).",
            fs.evictions(),
        )?;
        scalar_counter(
            &mut enc,
            "kastle_incremental_fetch_responses",
            "Fetch responses sent on an incremental fetch session.",
            fs.incremental_responses(),
        )?;
        client_quotas(&mut enc, &b.quotas.managers.snapshot())?;
        replication_quotas(&mut enc, &b.replicas.replication_quotas)
    }
}

/// Kafka's `LeaderReplication` and `FollowerReplication` `byte-rate`
/// sensors: the bytes/s of throttled replicas, and the throttle in force.
fn replication_quotas(enc: &mut DescriptorEncoder, q: &ReplicationQuotas) -> fmt::Result {
    let sides = [&q.leader, &q.follower];
    let mut m = enc.encode_descriptor(
        "kastle_replication_quota_byte_rate",
        "Bytes/s of throttled replicas' replication (Kafka's LeaderReplication and FollowerReplication byte-rate).",
        None,
        MetricType::Gauge,
    )?;
    for s in sides {
        m.encode_family(&[("quota_type", s.kind().name())])?
            .encode_gauge(&s.byte_rate())?;
    }
    let mut m = enc.encode_descriptor(
        "kastle_replication_quota_limit",
        "leader.replication.throttled.rate / follower.replication.throttled.rate in force, bytes/s.",
        None,
        MetricType::Gauge,
    )?;
    for s in sides {
        if let Some(limit) = s.bound() {
            m.encode_family(&[("quota_type", s.kind().name())])?
                .encode_gauge(&limit)?;
        }
    }
    Ok(())
}

/// Kafka's per user/client-id quota sensors (`Produce`, `Fetch`,
/// `Request`, `ControllerMutation` groups): the rate measured over the
/// quota window, the quota in force, and the throttling it caused.
fn client_quotas(enc: &mut DescriptorEncoder, sensors: &[SensorSnapshot]) -> fmt::Result {
    fn labels(s: &SensorSnapshot) -> [(&'static str, &str); 3] {
        [
            ("quota_type", s.quota_type.name()),
            ("user", s.user.as_str()),
            ("client_id", s.client_id.as_str()),
        ]
    }
    let mut m = enc.encode_descriptor(
        "kastle_client_quota_rate",
        "Rate over the quota window: bytes/s (Produce, Fetch), percent of a thread (Request), partition mutations/s (ControllerMutation).",
        None,
        MetricType::Gauge,
    )?;
    for s in sensors {
        m.encode_family(&labels(s))?.encode_gauge(&s.rate)?;
    }
    let mut m = enc.encode_descriptor(
        "kastle_client_quota_limit",
        "The quota in force for the sensor's user/client-id, in the rate's unit.",
        None,
        MetricType::Gauge,
    )?;
    for s in sensors {
        if let Some(limit) = s.limit {
            m.encode_family(&labels(s))?.encode_gauge(&limit)?;
        }
    }
    counters(
        enc,
        "kastle_client_quota_throttle_time_ms",
        "Milliseconds the client was throttled for (responses' throttle_time_ms, connection muted).",
        sensors.iter().map(|s| (labels(s), s.throttle_ms_total)),
    )?;
    counters(
        enc,
        "kastle_client_quota_throttled",
        "Responses throttled by the quota.",
        sensors.iter().map(|s| (labels(s), s.throttled)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(g: &str, t: &str, p: i32, o: i64) -> (String, String, i32, i64) {
        (g.to_string(), t.to_string(), p, o)
    }

    #[test]
    fn lag_is_high_watermark_minus_committed_and_bounded() {
        let hw = |t: &str, p: i32| (t == "t" && (0..2).contains(&p)).then_some(10 + i64::from(p));
        let committed = vec![
            row("a", "t", 0, 4),
            row("a", "t", 1, 20),   // ahead of the log (truncated): lag 0
            row("a", "gone", 0, 1), // topic deleted: no row
            row("a", "t", 5, 1),    // partition does not exist: no row
            row("b", "t", 0, -1),   // nothing committed: no row
            row("b", "t", 1, 11),
            row("c", "t", 0, 0),
        ];
        let (rows, dropped) = lag_rows(committed.clone().into_iter(), hw, 100);
        let lags: Vec<(&str, i32, i64)> = rows
            .iter()
            .map(|r| (r.group.as_str(), r.partition, r.lag))
            .collect();
        assert_eq!(
            lags,
            vec![("a", 0, 6), ("a", 1, 0), ("b", 1, 0), ("c", 0, 10)]
        );
        assert_eq!(dropped, 0);
        let (rows, dropped) = lag_rows(committed.into_iter(), hw, 2);
        assert_eq!(rows.len(), 2);
        assert_eq!(dropped, 2, "rows past the bound are counted, not kept");
    }
}
