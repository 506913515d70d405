//! `sar -B`: paging, from `/proc/vmstat` (shared). Follows sysstat's `print_paging_stats`
//! (pr_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::rates::{delta, rate};
use super::{record, Interval, SarActivity, NO_INSTANCE};
use crate::sources::procfs::vmstat::Vmstat;

/// `sar -B`.
pub struct Paging;

impl SarActivity for Paging {
    const ACTIVITY: Activity = Activity::Paging;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        out.push(paging(&x.prev.vmstat, &x.curr.vmstat, x.itv));
    }
}

/// `sar -B` (pr_stats.c, `print_paging_stats`): `%vmeff` is pages stolen over pages scanned
/// (kswapd + direct), 0 when nothing was scanned.
pub fn paging(p: &Vmstat, c: &Vmstat, itv: u64) -> Record {
    let scanned = delta(p.pgscan_kswapd, c.pgscan_kswapd)
        .wrapping_add(delta(p.pgscan_direct, c.pgscan_direct));
    let stolen = delta(p.pgsteal, c.pgsteal);
    let vmeff = if scanned == 0 {
        0.0
    } else {
        stolen as f64 / scanned as f64 * 100.0
    };
    record(
        Activity::Paging,
        NO_INSTANCE,
        vec![
            rate(delta(p.pgpgin, c.pgpgin), itv),
            rate(delta(p.pgpgout, c.pgpgout), itv),
            rate(delta(p.pgfault, c.pgfault), itv),
            rate(delta(p.pgmajfault, c.pgmajfault), itv),
            rate(delta(p.pgfree, c.pgfree), itv),
            rate(delta(p.pgscan_kswapd, c.pgscan_kswapd), itv),
            rate(delta(p.pgscan_direct, c.pgscan_direct), itv),
            rate(stolen, itv),
            vmeff,
        ],
    )
}
