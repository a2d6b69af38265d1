//! Kafka's `Throttler`: a token bucket over the cleaner's disk I/O at
//! `log.cleaner.io.max.bytes.per.second`.

use std::time::{Duration, Instant};

/// Token bucket over the cleaner's disk I/O (Kafka's `Throttler` on
/// `log.cleaner.io.max.bytes.per.second`).
pub struct Throttler {
    bytes_per_second: f64,
    window_start: Instant,
    window_bytes: f64,
}

impl Throttler {
    pub fn new(bytes_per_second: f64) -> Self {
        Throttler {
            bytes_per_second,
            window_start: Instant::now(),
            window_bytes: 0.0,
        }
    }

    /// Accounts `n` bytes and sleeps long enough to stay under the rate.
    /// Blocking: only call from the cleaner's own thread.
    pub fn acquire(&mut self, n: usize) {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second <= 0.0 {
            return;
        }
        self.window_bytes += n as f64;
        let due = Duration::from_secs_f64(self.window_bytes / self.bytes_per_second);
        let elapsed = self.window_start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
        // Restart the window now and then so an idle period does not bank
        // credit for a later burst.
        if self.window_start.elapsed() > Duration::from_secs(1) {
            self.window_start = Instant::now();
            self.window_bytes = 0.0;
        }
    }
}
