//! `sar -W`: swapping, from `/proc/vmstat` (shared). Follows sysstat's `print_swap_stats`
//! (pr_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::rates::{delta, rate};
use super::{record, Interval, SarActivity, NO_INSTANCE};
use crate::sources::procfs::vmstat::Vmstat;

/// `sar -W`.
pub struct Swapping;

impl SarActivity for Swapping {
    const ACTIVITY: Activity = Activity::Swapping;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        out.push(swapping(&x.prev.vmstat, &x.curr.vmstat, x.itv));
    }
}

/// `sar -W`: pages swapped in and out per second.
pub fn swapping(p: &Vmstat, c: &Vmstat, itv: u64) -> Record {
    record(
        Activity::Swapping,
        NO_INSTANCE,
        vec![
            rate(delta(p.pswpin, c.pswpin), itv),
            rate(delta(p.pswpout, c.pswpout), itv),
        ],
    )
}
