//! `sar -q CPU`: CPU pressure, from `/proc/pressure/cpu`, a file of its own (optional: kernels
//! from 4.20 built with PSI), read with the shared [`pressure`] parser. Follows sysstat's
//! `read_psicpu` (rd_stats.c) and `print_psicpu_stats` (pr_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::{record, Interval, OwnFile, SarActivity, NO_INSTANCE};
use crate::sources::procfs::pressure::{self, Pressure};

/// `sar -q CPU`: the `some` line only (sysstat reads no `full` line for CPU).
pub struct PsiCpu;

impl SarActivity for PsiCpu {
    const ACTIVITY: Activity = Activity::PsiCpu;
    type Own = Pressure;
    const FILES: &'static [OwnFile<Pressure>] = &[OwnFile {
        path: "pressure/cpu",
        required: false,
        whole: true,
        parse: pressure::parse_into,
    }];

    fn compute(x: &Interval<'_, Pressure>, out: &mut Vec<Record>) {
        let Some((p, c)) = x.own() else { return };
        if let (Some(p), Some(c)) = (p.some, c.some) {
            let v = c.sar_columns(&p, x.itv).to_vec();
            out.push(record(Activity::PsiCpu, NO_INSTANCE, v));
        }
    }
}
