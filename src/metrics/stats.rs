//! The two measurable stats client quotas are enforced with, computed as
//! Kafka's `org.apache.kafka.common.metrics.stats` computes them: a sampled
//! [`Rate`] (a windowed sum over `quota.window.num` samples of
//! `quota.window.size.seconds` each, plus one overlapping sample) and the
//! [`TokenBucket`] of controller mutations (KIP-599).
//!
//! Times are milliseconds on a monotonic clock chosen by the caller.

/// `quota.window.num` samples of `quota.window.size.seconds` each.
#[derive(Clone, Copy, Debug)]
pub struct SampleConfig {
    pub samples: usize,
    pub window_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    value: f64,
    start_ms: u64,
    last_event_ms: u64,
}

impl Sample {
    fn new(now: u64) -> Sample {
        Sample {
            value: 0.0,
            start_ms: now,
            last_event_ms: now,
        }
    }
}

/// Kafka's `Rate` over a `WindowedSum`: the recorded total of the retained
/// samples divided by the elapsed window, at least `samples - 1` windows
/// long so a fresh sensor does not report a burst as a huge rate.
#[derive(Debug, Default)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    pub fn record(&mut self, c: SampleConfig, value: f64, now: u64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
        }
        let complete = {
            let s = &self.samples[self.current];
            now.saturating_sub(s.start_ms) >= c.window_ms
        };
        if complete {
            // One extra slot holds the sample overlapping the window's start.
            let max = c.samples + 1;
            self.current = (self.current + 1) % max;
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now));
            } else {
                self.samples[self.current] = Sample::new(now);
            }
        }
        let s = &mut self.samples[self.current];
        s.value += value;
        s.last_event_ms = now;
    }

    /// Samples with no event for the whole monitored window start afresh.
    fn purge(&mut self, c: SampleConfig, now: u64) {
        let expire = c.samples as u64 * c.window_ms;
        for s in &mut self.samples {
            if now.saturating_sub(s.last_event_ms) >= expire {
                *s = Sample::new(now);
            }
        }
    }

    /// The window the rate is computed over, in milliseconds (Kafka's
    /// `Rate.windowSize`).
    pub fn window_size_ms(&mut self, c: SampleConfig, now: u64) -> u64 {
        self.purge(c, now);
        let oldest = self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now);
        let mut elapsed = now.saturating_sub(oldest);
        let full = elapsed / c.window_ms.max(1);
        let min_full = c.samples.saturating_sub(1) as u64;
        if full < min_full {
            elapsed += (min_full - full) * c.window_ms;
        }
        elapsed.max(1)
    }

    /// Units per second.
    pub fn measure(&mut self, c: SampleConfig, now: u64) -> f64 {
        let window = self.window_size_ms(c, now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (window as f64 / 1000.0)
    }

    /// Units per second as Kafka's `SimpleRate` (replication quotas)
    /// measures them: over the time since the oldest sample began, at
    /// least one window.
    pub fn measure_simple(&mut self, c: SampleConfig, now: u64) -> f64 {
        self.purge(c, now);
        let oldest = self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now);
        let window = now.saturating_sub(oldest).max(c.window_ms).max(1);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (window as f64 / 1000.0)
    }

    /// Records `value` and, if the rate is now above `bound`, returns how
    /// long to throttle: the time at which the rate would be back at the
    /// bound (Kafka's `QuotaUtils.throttleTime`).
    pub fn record_and_throttle_ms(
        &mut self,
        c: SampleConfig,
        value: f64,
        now: u64,
        bound: Option<f64>,
    ) -> u64 {
        self.record(c, value, now);
        let Some(bound) = bound.filter(|b| *b > 0.0) else {
            return 0;
        };
        let rate = self.measure(c, now);
        if rate <= bound {
            return 0;
        }
        let window = self.window_size_ms(c, now) as f64;
        ((rate - bound) / bound * window).round().max(0.0) as u64
    }
}

/// Kafka's `TokenBucket`: `quota` tokens a second up to a burst of
/// `samples × window × quota`; recording takes tokens, possibly below zero.
#[derive(Debug, Default)]
pub struct TokenBucket {
    tokens: f64,
    last_update_ms: u64,
    /// Kafka's bucket starts at epoch 0 and so is full at first use.
    started: bool,
}

impl TokenBucket {
    fn refill(&mut self, c: SampleConfig, quota: f64, now: u64) {
        let burst = Self::burst(c, quota);
        if !self.started {
            self.started = true;
            self.tokens = burst;
        }
        let elapsed = now.saturating_sub(self.last_update_ms) as f64 / 1000.0;
        self.tokens = burst.min(self.tokens + quota * elapsed);
        self.last_update_ms = now;
    }

    fn burst(c: SampleConfig, quota: f64) -> f64 {
        c.samples as f64 * (c.window_ms as f64 / 1000.0) * quota
    }

    /// The tokens left now.
    pub fn measure(&mut self, c: SampleConfig, quota: f64, now: u64) -> f64 {
        self.refill(c, quota, now);
        self.tokens
    }

    pub fn record(&mut self, c: SampleConfig, quota: f64, value: f64, now: u64) {
        self.refill(c, quota, now);
        self.tokens = Self::burst(c, quota).min(self.tokens - value);
    }

    /// While the bucket is below zero: the time until it is back at zero
    /// (`ControllerMutationQuotaManager.throttleTimeMs`).
    pub fn throttle_ms(&mut self, c: SampleConfig, quota: f64, now: u64) -> u64 {
        let tokens = self.measure(c, quota, now);
        if tokens >= 0.0 || quota <= 0.0 {
            0
        } else {
            (-tokens / quota * 1000.0).round() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: SampleConfig = SampleConfig {
        samples: 11,
        window_ms: 1000,
    };

    #[test]
    fn a_first_burst_is_spread_over_ten_windows() {
        let mut r = Rate::default();
        // 10 000 bytes at once against 500 B/s: the rate is measured over
        // the minimum 10 s window, 1000 B/s, so throttle for another 10 s.
        assert_eq!(
            r.record_and_throttle_ms(C, 10_000.0, 5_000, Some(500.0)),
            10_000
        );
        assert_eq!(r.record_and_throttle_ms(C, 0.0, 5_000, Some(2_000.0)), 0);
    }

    #[test]
    fn samples_roll_and_expire() {
        let mut r = Rate::default();
        for s in 0..30u64 {
            r.record(C, 100.0, s * 1000);
        }
        // 11 samples retained plus the overlapping one; ~100/s.
        let m = r.measure(C, 29_500);
        assert!((90.0..=115.0).contains(&m), "{m}");
        // Silence for longer than the monitored window: nothing left.
        assert_eq!(r.measure(C, 100_000), 0.0);
    }

    #[test]
    fn token_bucket_goes_negative_and_refills() {
        let mut b = TokenBucket::default();
        // Starts full: 10/s, burst 110.
        b.record(C, 10.0, 160.0, 0);
        assert_eq!(b.throttle_ms(C, 10.0, 0), 5_000);
        assert_eq!(b.throttle_ms(C, 10.0, 5_000), 0);
        assert_eq!(b.measure(C, 10.0, 1_000_000), 110.0);
    }
}
