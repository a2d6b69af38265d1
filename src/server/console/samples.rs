//! The console's history for its charts: every `console.sample.interval.ms`
//! the sampler records each topic's produced bytes and records (the
//! counters the Prometheus endpoint exports) and each group's total lag, in
//! a ring of at most [`MAX_SAMPLES`] samples. Throughput is the difference
//! of two consecutive samples over the time between them. Nothing is kept
//! on disk: a restart starts the charts afresh.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Samples kept (at the default 10 s interval: one hour).
pub const MAX_SAMPLES: usize = 360;
/// Topics and groups recorded per sample; past these the rest are left out
/// of the charts (the tables still show them).
pub const MAX_SAMPLED_TOPICS: usize = 1_000;
pub const MAX_SAMPLED_GROUPS: usize = 1_000;

/// One topic's counters when sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicCounters {
    pub bytes_in: u64,
    pub messages_in: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub ts_ms: i64,
    pub topics: BTreeMap<String, TopicCounters>,
    /// Group id → topic → lag summed over the group's committed
    /// partitions of the topic (kept per topic so that a viewer's history
    /// counts only the topics it may describe).
    pub group_lag: BTreeMap<String, BTreeMap<String, i64>>,
}

/// One point of a throughput chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub ts_ms: i64,
    pub bytes_per_sec: f64,
    pub messages_per_sec: f64,
}

#[derive(Default)]
pub struct SampleRing {
    samples: Mutex<VecDeque<Sample>>,
}

impl SampleRing {
    /// Adds a sample, dropping the oldest past [`MAX_SAMPLES`].
    pub fn push(&self, mut sample: Sample) {
        while sample.topics.len() > MAX_SAMPLED_TOPICS {
            sample.topics.pop_last();
        }
        while sample.group_lag.len() > MAX_SAMPLED_GROUPS {
            sample.group_lag.pop_last();
        }
        let mut ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() >= MAX_SAMPLES {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    pub fn len(&self) -> usize {
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The topic's throughput between consecutive samples that both hold
    /// it. A counter that went down (the topic was deleted and created
    /// again) starts over rather than showing a negative rate.
    pub fn throughput(&self, topic: &str) -> Vec<Rate> {
        let ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        let mut prev: Option<(i64, TopicCounters)> = None;
        for s in ring.iter() {
            let Some(c) = s.topics.get(topic).copied() else {
                prev = None;
                continue;
            };
            if let Some((ts, p)) = prev {
                let secs = (s.ts_ms - ts) as f64 / 1000.0;
                if secs > 0.0 && c.bytes_in >= p.bytes_in && c.messages_in >= p.messages_in {
                    out.push(Rate {
                        ts_ms: s.ts_ms,
                        bytes_per_sec: (c.bytes_in - p.bytes_in) as f64 / secs,
                        messages_per_sec: (c.messages_in - p.messages_in) as f64 / secs,
                    });
                }
            }
            prev = Some((s.ts_ms, c));
        }
        out
    }

    /// The group's lag on the topics `visible` admits, at each sample that
    /// holds the group.
    pub fn lag(&self, group: &str, visible: impl Fn(&str) -> bool) -> Vec<(i64, i64)> {
        let ring = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        ring.iter()
            .filter_map(|s| {
                let per_topic = s.group_lag.get(group)?;
                let total = per_topic
                    .iter()
                    .filter(|(t, _)| visible(t))
                    .map(|(_, l)| *l)
                    .sum();
                Some((s.ts_ms, total))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ts: i64, bytes: u64, lag: i64) -> Sample {
        let mut s = Sample {
            ts_ms: ts,
            ..Sample::default()
        };
        s.topics.insert(
            "t".into(),
            TopicCounters {
                bytes_in: bytes,
                messages_in: bytes / 10,
            },
        );
        let per_topic = [("t".to_string(), lag), ("hidden".to_string(), 100)];
        s.group_lag
            .insert("g".into(), per_topic.into_iter().collect());
        s
    }

    #[test]
    fn rates_come_from_consecutive_samples_and_the_ring_is_bounded() {
        let ring = SampleRing::default();
        ring.push(sample(1_000, 0, 5));
        ring.push(sample(3_000, 2_000, 3));
        ring.push(sample(4_000, 100, 0)); // counter restarted: no point
        ring.push(sample(6_000, 1_100, 0));
        let r = ring.throughput("t");
        assert_eq!(
            r,
            vec![
                Rate {
                    ts_ms: 3_000,
                    bytes_per_sec: 1_000.0,
                    messages_per_sec: 100.0
                },
                Rate {
                    ts_ms: 6_000,
                    bytes_per_sec: 500.0,
                    messages_per_sec: 50.0
                },
            ]
        );
        assert_eq!(
            ring.lag("g", |t| t != "hidden"),
            vec![(1_000, 5), (3_000, 3), (4_000, 0), (6_000, 0)]
        );
        assert_eq!(ring.lag("g", |_| true)[0], (1_000, 105));
        assert!(ring.throughput("other").is_empty());
        for i in 0..(MAX_SAMPLES as i64 + 10) {
            ring.push(sample(10_000 + i, 0, 0));
        }
        assert_eq!(ring.len(), MAX_SAMPLES);
    }
}
