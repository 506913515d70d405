//! `sar -q`: run queue, task count and load averages, from `/proc/loadavg` and
//! `/proc/stat` (shared). Follows sysstat's `read_loadavg` (rd_stats.c) and `print_queue_stats`
//! (pr_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::{record, Interval, SarActivity, NO_INSTANCE};
use crate::sources::procfs::Reading;

/// `sar -q`.
pub struct Load;

impl SarActivity for Load {
    const ACTIVITY: Activity = Activity::Load;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        out.push(load(x.curr));
    }
}

/// `sar -q` (rd_stats.c, `read_loadavg`): `runq-sz` is the running count of `/proc/loadavg`
/// minus the reading process itself, `plist-sz` its task count, `blocked` is `procs_blocked` of
/// `/proc/stat`. (`procs_running` of `/proc/stat` is not used by sysstat 12.6: checked against
/// its sadc on doctored files, it prints `5/100` as `runq-sz` 4 whatever `procs_running` says.)
pub fn load(curr: &Reading) -> Record {
    let l = &curr.loadavg;
    record(
        Activity::Load,
        NO_INSTANCE,
        vec![
            l.nr_running.saturating_sub(1) as f64,
            l.nr_threads as f64,
            l.load_1 as f64 / 100.0,
            l.load_5 as f64 / 100.0,
            l.load_15 as f64 / 100.0,
            curr.stat.procs_blocked as f64,
        ],
    )
}
