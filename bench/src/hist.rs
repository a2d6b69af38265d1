//! Fixed-size latency histogram (microseconds) for percentiles over any
//! number of records.
//!
//! Kafka's ProducerPerformance keeps a sampled array of latencies; here the
//! memory is fixed instead (about 115 KiB per histogram, whatever the record
//! count): values below 512 µs are exact, larger ones fall into buckets of
//! 1/256 of their power of two, so a reported percentile is within 0.4 % of
//! the true value.

const SUB: u64 = 256;
// indexes run up to index(u64::MAX) = 56 * SUB + 255
const BUCKETS: usize = (64 - 7) * SUB as usize;

pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_us: u128,
    max_us: u64,
}

fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros() as u64; // >= 9 here
    let shift = msb - 8;
    ((shift + 1) * SUB + ((v >> shift) - SUB)) as usize
}

/// Middle of the range of values that map to bucket `i`.
fn value(i: usize) -> f64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i as f64;
    }
    let shift = i / SUB - 1;
    let low = (i % SUB + SUB) << shift;
    low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum_us: 0,
            max_us: 0,
        }
    }

    pub fn record(&mut self, us: u64) {
        // index() of u64::MAX is BUCKETS - 1, so this never goes out of range
        self.counts[index(us).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.sum_us += us as u128;
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn avg_ms(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.sum_us as f64 / self.total as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }

    /// The value at quantile `q` (0..=1) in milliseconds; 0 when empty.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        // nearest-rank: the smallest value with at least q*total at or below it
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (value(i) / 1000.0).min(self.max_ms());
            }
        }
        self.max_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bounded() {
        let mut prev = index(0);
        for v in 1..200_000u64 {
            let i = index(v);
            assert!(i == prev || i == prev + 1, "gap at {v}");
            prev = i;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_within_error() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
            let got = h.percentile_ms(q) * 1000.0;
            assert!((got - want).abs() / want < 0.004, "q={q}: {got} vs {want}");
        }
        assert_eq!(h.max_ms(), 100.0);
        assert!((h.avg_ms() - 50.0005).abs() < 1e-9);
        assert_eq!(Histogram::new().percentile_ms(0.5), 0.0);
    }
}
