//! Jittered exponential backoff with a cap (the "full jitter" of linkerd2-proxy's exp-backoff):
//! the agent's reconnects and the collector's notifier retries.

use std::time::Duration;

/// Retry delays: attempt n waits a random time in [base·2ⁿ / 2, base·2ⁿ], capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt; grows with each call until [`Backoff::reset`].
    pub fn next_delay(&mut self) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// Starts again from `base` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let mut prev_cap = Duration::ZERO;
        for _ in 0..5 {
            let d = b.next_delay();
            assert!(d >= prev_cap / 2, "delays grow");
            prev_cap = d;
        }
        // 100 ms * 2^5 exceeds the cap: from here every delay is in [cap/2, cap].
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d <= Duration::from_secs(2) && d >= Duration::from_secs(1),
                "{d:?}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
