//! When the next top-oom scan is due: the CPU budget policy, pure (times are passed in).
//!
//! After each scan its cost `c` (CPU time of the scanning thread) is recorded, and the next scan
//! is due `clamp(c / fraction, min_period, max_period)` after the start of the one just done.
//! Scanning then costs `fraction` of one core on average, whatever the number of processes,
//! until the cap on the period takes over (see the module doc of [`super`]). The fraction is
//! raised while memory is tight ([`memory_tight`], [`Budget::set_fraction`]).

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

    /// Another fraction from now on: the next scan is rescheduled from the last one's cost (so a
    /// larger fraction can make it due at once).
    pub fn set_fraction(&mut self, fraction: f64) {
        if fraction.to_bits() != self.fraction.to_bits() {
            self.fraction = fraction;
            if self.last_start.is_some() {
                self.period = self.period_for(self.last_cost);
            }
        }
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

/// Memory stalls (PSI `some avg10`, hundredths of a percent) from this share of the time on
/// count as tight: 1 %.
pub const TIGHT_STALL: u64 = 100;
/// Less than this share of `MemTotal` available counts as tight: 10 %.
pub const TIGHT_AVAILABLE_PERCENT: u64 = 10;

/// Whether memory is tight enough for an OOM kill to be near: tasks stalled on memory for at
/// least [`TIGHT_STALL`] of the last ten seconds (`/proc/pressure/memory`'s `some avg10`, which
/// counts stalls in memory cgroups at their limit too), or less than
/// [`TIGHT_AVAILABLE_PERCENT`] of the memory available. Figures in kB from `/proc/meminfo`;
/// `available_kb` 0 (kernels before 3.14 print no `MemAvailable`) is estimated as free + buffers +
/// cached, as `free` did then. `psi_some_avg10` is `None` without PSI.
pub fn memory_tight(
    total_kb: u64,
    available_kb: u64,
    free_buffers_cached_kb: u64,
    psi_some_avg10: Option<u64>,
) -> bool {
    let available = if available_kb > 0 {
        available_kb
    } else {
        free_buffers_cached_kb
    };
    psi_some_avg10.is_some_and(|v| v >= TIGHT_STALL)
        || available.saturating_mul(100) < total_kb.saturating_mul(TIGHT_AVAILABLE_PERCENT)
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

    #[test]
    fn a_larger_fraction_reschedules_the_next_scan() {
        let mut b = Budget::new(0.00005, S, 60 * S);
        b.set_fraction(0.0005);
        assert!(b.due(Instant::now()), "before the first scan: due");
        b.set_fraction(0.00005);
        let t = Instant::now();
        b.record(t, ms(1));
        assert_eq!(b.period(), 20 * S);
        assert!(!b.due(t + 5 * S));
        b.set_fraction(0.0005);
        assert_eq!(b.period(), 2 * S);
        assert!(b.due(t + 5 * S), "due at once under the larger budget");
        b.set_fraction(0.00005);
        assert_eq!(b.period(), 20 * S);
    }

    #[test]
    fn memory_is_tight_on_stalls_or_little_available() {
        const GIB: u64 = 1 << 20;
        // The development machine idle: 23.5 GiB total, 22 available, no stalls.
        assert!(!memory_tight(24_683_664, 23_000_000, 0, Some(0)));
        assert!(!memory_tight(24_683_664, 23_000_000, 0, None));
        // Stalled 1 % of the last ten seconds (`some avg10=1.00`), plenty available.
        assert!(memory_tight(16 * GIB, 12 * GIB, 0, Some(100)));
        assert!(!memory_tight(16 * GIB, 12 * GIB, 0, Some(99)));
        // Under 10 % available.
        assert!(memory_tight(16 * GIB, GIB, 0, None));
        assert!(!memory_tight(10 * GIB, GIB, 0, None));
        // No MemAvailable: free + buffers + cached instead.
        assert!(memory_tight(16 * GIB, 0, GIB, None));
        assert!(!memory_tight(16 * GIB, 0, 8 * GIB, None));
    }
}
