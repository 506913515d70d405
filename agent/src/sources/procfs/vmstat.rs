//! `/proc/vmstat`: paging and swapping event counters (sar `-B`, `-W`).
//!
//! A real example (kernel 6.18, the lines sar reads among ~180 others):
//!
//! ```text
//! pgpgin 2887337
//! pgpgout 2011024
//! pswpin 0
//! pswpout 0
//! pgfree 13572860
//! pgfault 12194635
//! pgmajfault 2546
//! pgsteal_kswapd 0
//! pgsteal_direct 0
//! pgsteal_khugepaged 0
//! pgsteal_proactive 0
//! pgscan_kswapd 0
//! pgscan_direct 0
//! pgscan_khugepaged 0
//! pgscan_proactive 0
//! pgscan_direct_throttle 0
//! pgscan_anon 0
//! pgscan_file 0
//! pgsteal_anon 0
//! pgsteal_file 0
//! ```
//!
//! Matched exactly as sysstat 12.6's `read_vmstat_paging` (rd_stats.c) matches them, by prefix:
//! `pgsteal` is the sum of **every** `pgsteal_*` line, `pgscan_kswapd` of the lines starting with
//! `pgscan_kswapd`, `pgscan_direct` of those starting with `pgscan_direct` (so it includes
//! `pgscan_direct_throttle`). On recent kernels the `pgsteal_anon`/`pgsteal_file` lines repeat
//! the kswapd/direct counts, so `pgsteal/s` is twice the pages reclaimed: that is what sar 12.6.1
//! prints (checked by running its sadc on a doctored `/proc/vmstat`), and Fleet prints the same.

use super::parse::{fields, lines, u64_field};

/// Cumulative event counts since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vmstat {
    pub pgpgin: u64,
    pub pgpgout: u64,
    pub pswpin: u64,
    pub pswpout: u64,
    pub pgfault: u64,
    pub pgmajfault: u64,
    pub pgfree: u64,
    pub pgsteal: u64,
    pub pgscan_kswapd: u64,
    pub pgscan_direct: u64,
    /// The kernel's count of OOM kills (`oom_kill`, since 4.13): not a sar column, but the
    /// kernel log watcher cross-checks the kills it saw against it, from this reading rather
    /// than a second read of the file each interval. `None` on older kernels.
    pub oom_kill: Option<u64>,
}

/// A line sar reads: where its value goes.
#[derive(Clone, Copy)]
enum Counter {
    Pgpgin,
    Pgpgout,
    Pswpin,
    Pswpout,
    Pgfault,
    Pgmajfault,
    Pgfree,
    OomKill,
    Pgsteal,
    PgscanKswapd,
    PgscanDirect,
}

/// The counter a key feeds, if any (exact names, then sysstat's prefixes).
fn counter(key: &[u8]) -> Option<Counter> {
    Some(match key {
        b"pgpgin" => Counter::Pgpgin,
        b"pgpgout" => Counter::Pgpgout,
        b"pswpin" => Counter::Pswpin,
        b"pswpout" => Counter::Pswpout,
        b"pgfault" => Counter::Pgfault,
        b"pgmajfault" => Counter::Pgmajfault,
        b"pgfree" => Counter::Pgfree,
        b"oom_kill" => Counter::OomKill,
        k if k.starts_with(b"pgsteal_") => Counter::Pgsteal,
        k if k.starts_with(b"pgscan_kswapd") => Counter::PgscanKswapd,
        k if k.starts_with(b"pgscan_direct") => Counter::PgscanDirect,
        _ => return None,
    })
}

/// Parses `/proc/vmstat`. Unknown and garbled lines are skipped.
pub fn parse(buf: &[u8]) -> Vmstat {
    let mut v = Vmstat::default();
    for line in lines(buf) {
        // Only `pg*`, `ps*` and `oom_kill` are read: the other ~150 lines are not split, and of
        // the ~70 `pg*` lines of a recent kernel only those sar reads have their value parsed.
        if !(line.starts_with(b"pg") || line.starts_with(b"ps") || line.starts_with(b"oom_")) {
            continue;
        }
        let mut it = fields(line);
        let Some(counter) = it.next().and_then(counter) else {
            continue;
        };
        let Some(value) = it.next().and_then(u64_field) else {
            continue;
        };
        match counter {
            Counter::Pgpgin => v.pgpgin = value,
            Counter::Pgpgout => v.pgpgout = value,
            Counter::Pswpin => v.pswpin = value,
            Counter::Pswpout => v.pswpout = value,
            Counter::Pgfault => v.pgfault = value,
            Counter::Pgmajfault => v.pgmajfault = value,
            Counter::Pgfree => v.pgfree = value,
            Counter::OomKill => v.oom_kill = Some(value),
            Counter::Pgsteal => v.pgsteal = v.pgsteal.wrapping_add(value),
            Counter::PgscanKswapd => v.pgscan_kswapd = v.pgscan_kswapd.wrapping_add(value),
            Counter::PgscanDirect => v.pgscan_direct = v.pgscan_direct.wrapping_add(value),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_sums_like_sysstat() {
        let text = "pgpgin 2887337\npgpgout 2011024\npswpin 3\npswpout 4\npgfree 13572860\n\
pgfault 12194635\npgmajfault 2546\npgsteal_kswapd 1000\npgsteal_direct 0\n\
pgscan_kswapd 2000\npgscan_direct 7\npgscan_direct_throttle 500\npgscan_anon 9\n\
pgscan_file 2000\npgsteal_anon 400\npgsteal_file 600\npgsteal_garbled x\noom_kill 7\n";
        let v = parse(text.as_bytes());
        assert_eq!(v.pgpgin, 2887337);
        assert_eq!(v.pgmajfault, 2546);
        assert_eq!(v.pgsteal, 2000);
        assert_eq!(v.pgscan_kswapd, 2000);
        assert_eq!(v.pgscan_direct, 507);
        assert_eq!((v.pswpin, v.pswpout), (3, 4));
        assert_eq!(v.oom_kill, Some(7));
        assert_eq!(parse(b"pgfault 1\n").oom_kill, None);
    }
}
