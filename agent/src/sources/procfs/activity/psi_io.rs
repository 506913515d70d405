//! `sar -q IO`: I/O pressure, from `/proc/pressure/io`, a file of its own (optional:
//! kernels from 4.20 built with PSI), read with the shared [`pressure`] parser. Follows
//! sysstat's `read_psiio` (rd_stats.c) and `print_psiio_stats` (pr_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::{record, Interval, OwnFile, SarActivity, NO_INSTANCE};
use crate::sources::procfs::pressure::{self, Pressure};

/// `sar -q IO`: the `some` then the `full` line; left out unless both readings have both
/// (sysstat's `read_psiio` fails without them).
pub struct PsiIo;

impl SarActivity for PsiIo {
    const ACTIVITY: Activity = Activity::PsiIo;
    type Own = Pressure;
    const FILES: &'static [OwnFile<Pressure>] = &[OwnFile {
        path: "pressure/io",
        required: false,
        whole: true,
        parse: pressure::parse_into,
    }];

    fn compute(x: &Interval<'_, Pressure>, out: &mut Vec<Record>) {
        if let Some(v) = x.own().and_then(|(p, c)| c.some_full_columns(p, x.itv)) {
            out.push(record(Activity::PsiIo, NO_INSTANCE, v));
        }
    }
}
