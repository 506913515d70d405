//! `sar -q MEM`: memory pressure, from `/proc/pressure/memory`, a file of its own (optional:
//! kernels from 4.20 built with PSI), read with the shared [`pressure`] parser. Follows
//! sysstat's `read_psimem` (rd_stats.c) and `print_psimem_stats` (pr_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::{record, Interval, OwnFile, SarActivity, NO_INSTANCE};
use crate::sources::procfs::pressure::{self, Pressure};

/// `sar -q MEM`: the `some` then the `full` line; left out unless both readings have both
/// (sysstat's `read_psimem` fails without them).
pub struct PsiMem;

impl SarActivity for PsiMem {
    const ACTIVITY: Activity = Activity::PsiMem;
    type Own = Pressure;
    const FILES: &'static [OwnFile<Pressure>] = &[OwnFile {
        path: "pressure/memory",
        required: false,
        whole: true,
        parse: pressure::parse_into,
    }];

    fn compute(x: &Interval<'_, Pressure>, out: &mut Vec<Record>) {
        if let Some(v) = x.own().and_then(|(p, c)| c.some_full_columns(p, x.itv)) {
            out.push(record(Activity::PsiMem, NO_INSTANCE, v));
        }
    }
}
