//! When the next top-oom scan is due: the CPU budget policy, pure (times are passed in).
//!
//! After each scan its cost `c` (CPU time of the scanning thread) is recorded, and the next scan
//! is due `clamp(c / fraction, min_period, max_period)` after the start of the one just done.
//! Scanning then costs `fraction` of one core on average, whatever the number of processes,
//! until the cap on the period takes over (see the module doc of [`super`]).

use std::time::{Duration, Instant};

/// How early, before its period has fully elapsed, a scan still counts as due. The agent asks
/// [`Budget::due`] on its 1 s tick while the scan records its own start a little after the
/// tick; without this slack a 1 s period would be stretched to 2 s by that jitter. A scan due
/// at most this much early costs at most `slack / period` more than the budget (a quarter of
/// it at the 1 s minimum period, when scans are cheap in absolute terms anyway).
pub const DUE_SLACK: Duration = Duration::from_millis(250);

/// The scan schedule under a CPU budget.
#[derive(Debug, Clone)]
pub struct Budget {
    fraction: f64,
    min_period: Duration,
    max_period: Duration,
    /// Start of the last scan; `None` before the first, which is due at once.
    last_start: Option<Instant>,
    last_cost: Duration,
    period: Duration,
}

impl Budget {
    /// A budget of `fraction` of one core (0.0005 is 0.5 ms per second), scanning no more often
    /// than every `min_period` and no less often than every `max_period`. A `fraction` that is
    /// not a positive number is taken as "always the longest period".
    pub fn new(fraction: f64, min_period: Duration, max_period: Duration) -> Budget {
        let max_period = max_period.max(min_period);
        Budget {
            fraction,
            min_period,
            max_period,
            last_start: None,
            last_cost: Duration::ZERO,
            period: min_period,
        }
    }

    /// The period a scan costing `cost` buys: `cost / fraction`, within the bounds.
    pub fn period_for(&self, cost: Duration) -> Duration {
        if self.fraction.is_nan() || self.fraction <= 0.0 {
            return self.max_period;
        }
        let secs = cost.as_secs_f64() / self.fraction;
        if secs.is_nan() || secs >= self.max_period.as_secs_f64() {
            return self.max_period;
        }
        Duration::from_secs_f64(secs).clamp(self.min_period, self.max_period)
    }

    /// Charges a scan that started at `started` and cost `cost`, and schedules the next one.
    pub fn record(&mut self, started: Instant, cost: Duration) {
        self.last_start = Some(started);
        self.last_cost = cost;
        self.period = self.period_for(cost);
    }

    /// Whether a scan is due at `now` (always before the first scan).
    pub fn due(&self, now: Instant) -> bool {
        match self.last_start {
            None => true,
            Some(t) => now.saturating_duration_since(t) + DUE_SLACK >= self.period,
        }
    }

    /// When the next scan is due; `None` before the first scan.
    pub fn next_due(&self) -> Option<Instant> {
        self.last_start
            .map(|t| t + self.period.saturating_sub(DUE_SLACK))
    }

    /// The cost of the last scan.
    pub fn last_cost(&self) -> Duration {
        self.last_cost
    }

    /// The current period between scans (the minimum before the first scan).
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The budget, as a fraction of one core.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn budget() -> Budget {
        Budget::new(0.0005, S, 60 * S)
    }

    #[test]
    fn period_is_cost_over_fraction_within_bounds() {
        let b = budget();
        assert_eq!(b.period_for(Duration::ZERO), S);
        assert_eq!(
            b.period_for(Duration::from_micros(300)),
            S,
            "cheap: every tick"
        );
        assert_eq!(b.period_for(Duration::from_micros(500)), S);
        assert_eq!(b.period_for(ms(1)), 2 * S);
        assert_eq!(b.period_for(ms(10)), 20 * S);
        assert_eq!(b.period_for(ms(30)), 60 * S);
        assert_eq!(b.period_for(ms(500)), 60 * S, "capped");
        assert_eq!(b.period_for(Duration::MAX), 60 * S);
        assert_eq!(Budget::new(0.0, S, 60 * S).period_for(ms(1)), 60 * S);
        assert_eq!(Budget::new(f64::NAN, S, 60 * S).period_for(ms(1)), 60 * S);
        assert_eq!(Budget::new(0.0005, 2 * S, S).period_for(ms(100)), 2 * S);
    }

    #[test]
    fn due_follows_the_last_cost() {
        let t0 = Instant::now();
        let mut b = budget();
        assert!(b.due(t0), "the first scan is due at once");
        assert_eq!(b.next_due(), None);

        b.record(t0, ms(5)); // 10 s
        assert_eq!(b.period(), 10 * S);
        assert_eq!(b.last_cost(), ms(5));
        assert!(!b.due(t0));
        assert!(!b.due(t0 + 9 * S));
        assert!(b.due(t0 + 10 * S - DUE_SLACK));
        assert!(b.due(t0 + 10 * S));
        assert_eq!(b.next_due(), Some(t0 + 10 * S - DUE_SLACK));

        // A cheaper scan shortens the period again.
        let t1 = t0 + 10 * S;
        b.record(t1, Duration::from_micros(100));
        assert_eq!(b.period(), S);
        assert!(!b.due(t1 + ms(700)));
        // The next tick, which comes a little before a full second after the scan's own start.
        assert!(b.due(t1 + ms(999)));

        // A clock reading older than the last scan is not due.
        assert!(!b.due(t0));
    }

    #[test]
    fn average_cost_stays_within_the_budget() {
        // A 1 s ticker asking due() with scans costing 7.3 ms each: over an hour the CPU spent
        // is at most the budget plus the slack's share.
        let t0 = Instant::now();
        let mut b = budget();
        let cost = Duration::from_micros(7300);
        let mut spent = Duration::ZERO;
        let mut scans = 0;
        for tick in 0..3600 {
            let now = t0 + tick * S + ms(3);
            if b.due(now) {
                b.record(now + ms(1), cost);
                spent += cost;
                scans += 1;
            }
        }
        let per_sec = spent.as_secs_f64() / 3600.0;
        assert!(per_sec <= 0.0005 * 1.02, "{per_sec}");
        assert!(scans >= 3600 / 15, "{scans} scans");
    }
}
