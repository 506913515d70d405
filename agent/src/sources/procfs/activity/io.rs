//! `sar -b`: I/O and transfer rates summed over the real disks, from `/proc/diskstats` and the
//! `/sys` classification of its devices (shared). Follows sysstat's `print_io_stats`
//! (pr_stats.c) and `read_diskstats_io` (rd_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::rates::{delta, rate};
use super::{record, Interval, SarActivity, NO_INSTANCE};
use crate::sources::procfs::diskstats::{self, DiskKind, DiskStat};

/// `sar -b`: left out without `/proc/diskstats`.
pub struct Io;

impl SarActivity for Io {
    const ACTIVITY: Activity = Activity::Io;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        if let (Some(p), Some(c)) = (&x.prev.disks, &x.curr.disks) {
            out.push(io(p, c, x.itv));
        }
    }
}

/// `sar -b` (pr_stats.c, `print_io_stats`): transfers and sectors per second summed over the
/// real whole disks (sysstat's `read_diskstats_io` with `IGNORE_VIRTUAL_DEVICES`; partitions,
/// loop, zram, dm and md devices are not counted).
///
/// sysstat subtracts the sums of two readings and prints 0 for a column whose sum went down.
/// Fleet sums per-device deltas instead, matching each device to its previous reading as `-d`
/// does: identical while the set of disks is stable, and when a disk is removed the others are
/// still counted rather than the whole interval reading 0.
pub fn io(prev: &[DiskStat], curr: &[DiskStat], itv: u64) -> Record {
    let real = |d: &&DiskStat| d.kind == DiskKind::Real;
    let mut s = [0u64; 7];
    for c in curr.iter().filter(real) {
        let p = diskstats::reference(c, prev.iter().filter(real));
        let (r, w, d) = (
            delta(p.rd_ios, c.rd_ios),
            delta(p.wr_ios, c.wr_ios),
            delta(p.dc_ios, c.dc_ios),
        );
        for (slot, v) in s.iter_mut().zip([
            r.wrapping_add(w).wrapping_add(d),
            r,
            w,
            d,
            delta(p.rd_sect, c.rd_sect),
            delta(p.wr_sect, c.wr_sect),
            delta(p.dc_sect, c.dc_sect),
        ]) {
            *slot = slot.wrapping_add(v);
        }
    }
    record(
        Activity::Io,
        NO_INSTANCE,
        s.iter().map(|&v| rate(v, itv)).collect(),
    )
}
