//! `sar -r`: memory utilization, from `/proc/meminfo` (shared). Follows sysstat's
//! `print_ram_memory_stats` (pr_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::{record, Interval, SarActivity, NO_INSTANCE};
use crate::sources::procfs::meminfo::Meminfo;

/// `sar -r`.
pub struct Memory;

impl SarActivity for Memory {
    const ACTIVITY: Activity = Activity::Memory;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        out.push(memory(&x.curr.meminfo));
    }
}

/// `sar -r` (pr_stats.c, `print_ram_memory_stats`): used memory is total minus free, buffers,
/// page cache and slab; `%commit` is over RAM plus swap.
pub fn memory(m: &Meminfo) -> Record {
    let nousedmem = m
        .mem_free
        .saturating_add(m.buffers)
        .saturating_add(m.cached)
        .saturating_add(m.slab)
        .min(m.mem_total);
    let used = m.mem_total - nousedmem;
    let pct_used = if m.mem_total == 0 {
        0.0
    } else {
        used as f64 / m.mem_total as f64 * 100.0
    };
    let ram_swap = m.mem_total.saturating_add(m.swap_total);
    let pct_commit = if ram_swap == 0 {
        0.0
    } else {
        m.committed_as as f64 / ram_swap as f64 * 100.0
    };
    record(
        Activity::Memory,
        NO_INSTANCE,
        vec![
            m.mem_free as f64,
            m.mem_available as f64,
            used as f64,
            pct_used,
            m.buffers as f64,
            m.cached as f64,
            m.committed_as as f64,
            pct_commit,
            m.active as f64,
            m.inactive as f64,
            m.dirty as f64,
        ],
    )
}
