//! Deltas and rates as sysstat computes them (common.c: `S_VALUE`, `get_interval`).
//!
//! Rates are `delta / itv * 100` with `itv` the difference of the two `/proc/uptime` readings in
//! hundredths of a second (sysstat's `S_VALUE`), so they are per second of real elapsed time.
//! CPU percentages are over the jiffies each CPU accounted in the interval, not over `itv`
//! (see [`cpu`](super::cpu)).
//!
//! Counters going backwards. sysstat computes most deltas with C unsigned arithmetic, which turns
//! a decrease into a huge number. Fleet keeps sysstat's decisions where sysstat makes one
//! (a CPU counter that decreases gives 0%; an interface or disk whose counters all went back is
//! taken as unregistered then registered again, and counted from zero) and otherwise uses
//! [`delta`]: a decrease from a value that fits in 32 bits is a 32-bit wrap (which is what
//! sysstat's `unsigned long` fields do on 32-bit systems, and what 32-bit driver counters do), a
//! decrease from above 2^63 is a 64-bit wrap, and any other decrease counts as no change. A rate
//! is therefore never a bogus 10^17.

/// sysstat's `get_interval`: elapsed hundredths of a second, at least 1. (sysstat would compute a
/// huge interval if uptime went backwards; that cannot happen, but 1 is the safer floor.)
pub fn interval_cs(prev_uptime_cs: u64, curr_uptime_cs: u64) -> u64 {
    curr_uptime_cs.saturating_sub(prev_uptime_cs).max(1)
}

/// The increase of a cumulative counter. See the module doc for decreases.
pub fn delta(prev: u64, curr: u64) -> u64 {
    if curr >= prev {
        curr - prev
    } else if prev <= u64::from(u32::MAX) {
        curr.wrapping_sub(prev) & u64::from(u32::MAX)
    } else if prev > u64::MAX / 2 {
        curr.wrapping_sub(prev)
    } else {
        0
    }
}

/// sysstat's `S_VALUE`: per-second rate of `d` events over `itv` hundredths of a second.
pub fn rate(d: u64, itv: u64) -> f64 {
    d as f64 / itv as f64 * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_rules() {
        assert_eq!(delta(5, 9), 4);
        assert_eq!(delta(u64::from(u32::MAX) - 1, 3), 5, "32-bit wrap");
        assert_eq!(delta(u64::MAX - 1, 3), 5, "64-bit wrap");
        assert_eq!(delta(10_000_000_000, 5), 0, "unexplained decrease");
    }

    #[test]
    fn interval_floor() {
        assert_eq!(interval_cs(100, 400), 300);
        assert_eq!(interval_cs(100, 100), 1);
        assert_eq!(interval_cs(400, 100), 1);
    }
}
