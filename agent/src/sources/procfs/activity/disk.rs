//! `sar -d -p`: one record per block device, from `/proc/diskstats` and the `/sys`
//! classification and names of its devices (shared). Follows sysstat's `print_disk_stats`
//! (pr_stats.c), `compute_ext_disk_stats` and `read_diskstats_disk` (rd_stats.c).

use fleet_proto::v1::{Activity, Record};

use super::rates::{delta, rate};
use super::{record, Interval, SarActivity};
use crate::sources::procfs::diskstats::{self, DiskKind, DiskStat};

/// `sar -d -p`: left out without `/proc/diskstats`.
pub struct Disk;

impl SarActivity for Disk {
    const ACTIVITY: Activity = Activity::Disk;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        if let (Some(p), Some(c)) = (&x.prev.disks, &x.curr.disks) {
            disks(p, c, x.itv, out);
        }
    }
}

/// Whether sar `-d` shows the device (sysstat's `read_diskstats_disk` without partitions): a
/// whole disk, real or virtual, with the columns `-d` needs, that has done some I/O.
fn shown_by_d(d: &DiskStat) -> bool {
    matches!(d.kind, DiskKind::Real | DiskKind::Virtual)
        && d.nvalues >= 11
        && (d.rd_ios != 0 || d.wr_ios != 0 || d.dc_ios != 0)
}

/// `sar -d -p` (pr_stats.c, `print_disk_stats`; rd_stats.c, `compute_ext_disk_stats`): one
/// record per device, named as sar names it with `-p`.
pub fn disks(prev: &[DiskStat], curr: &[DiskStat], itv: u64, out: &mut Vec<Record>) {
    for c in curr.iter().filter(|d| shown_by_d(d)) {
        let p = diskstats::reference(c, prev.iter().filter(|d| shown_by_d(d)));
        let ios = delta(p.nr_ios(), c.nr_ios());
        let sectors = delta(p.rd_sect, c.rd_sect)
            .wrapping_add(delta(p.wr_sect, c.wr_sect))
            .wrapping_add(delta(p.dc_sect, c.dc_sect));
        let ticks = delta(p.rd_ticks, c.rd_ticks)
            .wrapping_add(delta(p.wr_ticks, c.wr_ticks))
            .wrapping_add(delta(p.dc_ticks, c.dc_ticks));
        let (arqsz, await_ms) = if ios == 0 {
            (0.0, 0.0)
        } else {
            (sectors as f64 / ios as f64, ticks as f64 / ios as f64)
        };
        out.push(record(
            Activity::Disk,
            c.display_name(),
            vec![
                rate(ios, itv),
                rate(delta(p.rd_sect, c.rd_sect), itv) / 2.0,
                rate(delta(p.wr_sect, c.wr_sect), itv) / 2.0,
                rate(delta(p.dc_sect, c.dc_sect), itv) / 2.0,
                arqsz / 2.0,
                rate(delta(p.rq_ticks, c.rq_ticks), itv) / 1000.0,
                await_ms,
                rate(delta(p.tot_ticks, c.tot_ticks), itv) / 10.0,
            ],
        ));
    }
}
