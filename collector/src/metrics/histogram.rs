//! [`Histogram`]: durations counted into fixed buckets with atomics, so the writer thread and
//! the rules loop record without a lock and a scrape reads a [`Buckets`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::text::Buckets;

/// Upper bounds (seconds) for the collector's latencies: a synced RocksDB write takes about a
/// millisecond on an SSD and tens on a slow disk; a rules evaluation well under that.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Durations by bucket, and their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more than `bounds` (`+Inf`).
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new(LATENCY_BOUNDS)
    }
}

impl Histogram {
    /// An empty histogram over `bounds` (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Counts one duration.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self.bounds.partition_point(|b| *b < s);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    /// What was counted so far. Read without a lock: a scrape during an observation may see
    /// its count without its sum, which the next scrape corrects.
    pub fn snapshot(&self) -> Buckets {
        let mut total = 0;
        let cumulative = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Relaxed);
                total
            })
            .collect();
        Buckets {
            bounds: self.bounds.to_vec(),
            cumulative,
            sum: self.sum_ns.load(Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fall_in_their_bucket_cumulatively() {
        static BOUNDS: &[f64] = &[0.001, 0.01];
        let h = Histogram::new(BOUNDS);
        for ms in [0, 1, 5, 10, 2000] {
            h.observe(Duration::from_millis(ms));
        }
        let b = h.snapshot();
        // 0 and 1 ms at or below 0.001; 5 and 10 ms at or below 0.01; 2 s above.
        assert_eq!(b.cumulative, vec![2, 4, 5]);
        assert!((b.sum - 2.016).abs() < 1e-9, "{}", b.sum);
    }
}
