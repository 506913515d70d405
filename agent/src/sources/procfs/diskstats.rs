//! `/proc/diskstats`: per block device I/O counters (sar `-b` and `-d`).
//!
//! A real example (kernel 6.18, 20 columns per line):
//!
//! ```text
//!    7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
//!  254       0 vda 79285 8981 5774290 120987 7778 25462 4022040 9087 0 7648 130441 4479 41 322104 345 546 21
//!  253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
//! ```
//!
//! After major, minor and name: reads, reads merged, sectors read, ms reading, writes, writes
//! merged, sectors written, ms writing, I/Os in progress, ms doing I/O, weighted ms doing I/O,
//! discards, discards merged, sectors discarded, ms discarding, flushes, ms flushing. Older
//! kernels stop after 11 or 15 numbers; like sysstat (`read_diskstats_io`/`read_diskstats_disk`
//! in rd_stats.c) the missing discard columns read as zero. The `*_ticks` columns are 32-bit
//! millisecond counters in the kernel, so they wrap.
//!
//! Whether a line is a whole disk, and whether it is a real one, is not in this file: the sampler
//! asks `/sys` (see `sysfs.rs`) and records the answer in [`DiskStat::kind`].

use super::parse::{fields, lines, set_string, u64_field};

/// What `/sys` says about a device (filled by the sampler, not by the parser).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskKind {
    /// Not looked up.
    #[default]
    Unknown,
    /// No `/sys/block/<name>`: a partition. sar ignores it unless asked (`sadc -S XDISK`).
    Partition,
    /// `/sys/block/<name>` without a `device` link (loop, ram, zram, dm-*, md*): shown by `-d`,
    /// not counted by `-b`.
    Virtual,
    /// `/sys/block/<name>/device` exists: shown by `-d` and counted by `-b`.
    Real,
}

/// One line of `/proc/diskstats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStat {
    pub major: u32,
    pub minor: u32,
    /// The kernel's name (`vda`, `nvme0n1`, `dm-0`).
    pub name: String,
    pub rd_ios: u64,
    pub rd_sect: u64,
    pub rd_ticks: u64,
    pub wr_ios: u64,
    pub wr_sect: u64,
    pub wr_ticks: u64,
    pub tot_ticks: u64,
    pub rq_ticks: u64,
    pub dc_ios: u64,
    pub dc_sect: u64,
    pub dc_ticks: u64,
    /// How many numbers followed the name: sysstat's `-b` needs 7 (through sectors written),
    /// `-d` needs 11 (through weighted ms).
    pub nvalues: u8,
    /// Filled by the sampler from `/sys`.
    pub kind: DiskKind,
    /// The name sar prints with `-p`, when it differs from `name` (the device-mapper name of a
    /// `dm-N` device, from `/sys/block/dm-N/dm/name`); empty otherwise. Filled by the sampler.
    pub label: String,
}

impl DiskStat {
    /// The name sar prints for this device with `-d -p`.
    pub fn display_name(&self) -> &str {
        if self.label.is_empty() {
            &self.name
        } else {
            &self.label
        }
    }

    /// Reads, writes and discards, as sysstat's `nr_ios`.
    pub fn nr_ios(&self) -> u64 {
        self.rd_ios
            .wrapping_add(self.wr_ios)
            .wrapping_add(self.dc_ios)
    }
}

/// A device with every counter at zero: the reference of a device that is new in the interval.
pub static ZERO: DiskStat = DiskStat {
    major: 0,
    minor: 0,
    name: String::new(),
    rd_ios: 0,
    rd_sect: 0,
    rd_ticks: 0,
    wr_ios: 0,
    wr_sect: 0,
    wr_ticks: 0,
    tot_ticks: 0,
    rq_ticks: 0,
    dc_ios: 0,
    dc_sect: 0,
    dc_ticks: 0,
    nvalues: 0,
    kind: DiskKind::Unknown,
    label: String::new(),
};

/// sysstat's `check_disk_reg` (sa_common.c): the reference for `c` among the previous devices,
/// or [`ZERO`] when `c` is new, or when its I/O count and every sector count that was not zero
/// went backwards (the device was removed and another registered under its numbers).
pub fn reference<'a>(c: &DiskStat, prev: impl Iterator<Item = &'a DiskStat>) -> &'a DiskStat {
    let mut prev = prev;
    let Some(p) = prev.find(|p| p.major == c.major && p.minor == c.minor) else {
        return &ZERO;
    };
    let back = |pv: u64, cv: u64| pv == 0 || cv < pv;
    if c.nr_ios() < p.nr_ios()
        && back(p.rd_sect, c.rd_sect)
        && back(p.wr_sect, c.wr_sect)
        && back(p.dc_sect, c.dc_sect)
    {
        return &ZERO;
    }
    p
}

/// Parses `/proc/diskstats`.
pub fn parse(buf: &[u8]) -> Vec<DiskStat> {
    let mut v = Vec::new();
    parse_into(buf, &mut v);
    v
}

/// [`parse`] into `out`, reusing its entries and their name buffers. Lines without major, minor,
/// name and at least the 7 numbers `-b` needs are skipped. `kind` and `label` are reset.
pub fn parse_into(buf: &[u8], out: &mut Vec<DiskStat>) {
    let mut n = 0;
    for line in lines(buf) {
        let mut it = fields(line);
        let (Some(major), Some(minor), Some(name)) = (
            it.next().and_then(u64_field),
            it.next().and_then(u64_field),
            it.next(),
        ) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (u32::try_from(major), u32::try_from(minor)) else {
            continue;
        };
        let mut v = [0u64; 15];
        let mut nvalues = 0u8;
        for slot in &mut v {
            match it.next().and_then(u64_field) {
                Some(x) => {
                    *slot = x;
                    nvalues += 1;
                }
                None => break,
            }
        }
        if nvalues < 7 {
            continue;
        }
        if n == out.len() {
            out.push(DiskStat::default());
        }
        let d = &mut out[n];
        n += 1;
        d.major = major;
        d.minor = minor;
        set_string(&mut d.name, name);
        d.rd_ios = v[0];
        d.rd_sect = v[2];
        d.rd_ticks = v[3];
        d.wr_ios = v[4];
        d.wr_sect = v[6];
        d.wr_ticks = v[7];
        d.tot_ticks = v[9];
        d.rq_ticks = v[10];
        d.dc_ios = v[11];
        d.dc_sect = v[13];
        d.dc_ticks = v[14];
        d.nvalues = nvalues;
        d.kind = DiskKind::Unknown;
        d.label.clear();
    }
    out.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_lines() {
        let text = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n \
254       0 vda 79285 8981 5774290 120987 7778 25462 4022040 9087 0 7648 130441 4479 41 322104 345 546 21\n \
254       1 vda1 100 0 800 5 10 0 80 1 0 6 6\n\
8 0 old 1 2 3 4\n\
garbage line\n";
        let d = parse(text.as_bytes());
        assert_eq!(d.len(), 3);
        let vda = &d[1];
        assert_eq!((vda.major, vda.minor, vda.name.as_str()), (254, 0, "vda"));
        assert_eq!(vda.rd_ios, 79285);
        assert_eq!(vda.rd_sect, 5774290);
        assert_eq!(vda.wr_sect, 4022040);
        assert_eq!(vda.tot_ticks, 7648);
        assert_eq!(vda.rq_ticks, 130441);
        assert_eq!(vda.dc_ios, 4479);
        assert_eq!(vda.dc_sect, 322104);
        assert_eq!(vda.dc_ticks, 345);
        assert_eq!(vda.nr_ios(), 79285 + 7778 + 4479);
        assert_eq!(d[2].nvalues, 11, "pre-4.18 kernel: no discard columns");
        assert_eq!(d[2].dc_ios, 0);
    }

    #[test]
    fn reuse_keeps_order_and_shrinks() {
        let mut v = parse(b"1 0 a 1 0 1 0 1 0 1 0 0 0 0\n1 1 b 1 0 1 0 1 0 1 0 0 0 0\n");
        parse_into(b"1 1 b 2 0 2 0 2 0 2 0 0 0 0\n", &mut v);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "b");
        assert_eq!(v[0].rd_ios, 2);
    }
}
