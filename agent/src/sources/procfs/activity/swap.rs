//! `sar -S`: swap space utilization, from `/proc/meminfo` (shared). Follows sysstat's
//! `print_swap_memory_stats` (pr_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::{record, Interval, SarActivity, NO_INSTANCE};
use crate::sources::procfs::meminfo::Meminfo;

/// `sar -S`.
pub struct Swap;

impl SarActivity for Swap {
    const ACTIVITY: Activity = Activity::Swap;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        out.push(swap(&x.curr.meminfo));
    }
}

/// `sar -S` (pr_stats.c, `print_swap_memory_stats`): `%swpcad` is cached swap over used swap.
pub fn swap(m: &Meminfo) -> Record {
    let used = m.swap_total.saturating_sub(m.swap_free);
    let pct_used = if m.swap_total == 0 {
        0.0
    } else {
        used as f64 / m.swap_total as f64 * 100.0
    };
    let pct_cad = if used == 0 {
        0.0
    } else {
        m.swap_cached as f64 / used as f64 * 100.0
    };
    record(
        Activity::Swap,
        NO_INSTANCE,
        vec![
            m.swap_free as f64,
            used as f64,
            pct_used,
            m.swap_cached as f64,
            pct_cad,
        ],
    )
}
