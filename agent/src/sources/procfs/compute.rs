//! From two readings to sar's figures: pure functions, one per activity, following sysstat
//! 12.6's `pr_stats.c` (what sar prints), `sa_common.c` (devices that come and go, CPU "all"),
//! `rd_stats.c` (`get_per_cpu_interval`, `compute_ext_disk_stats`) and `common.c` (`S_VALUE`,
//! `ll_sp_value`, `get_interval`).
//!
//! Rates are `delta / itv * 100` with `itv` the difference of the two `/proc/uptime` readings in
//! hundredths of a second (sysstat's `S_VALUE`), so they are per second of real elapsed time.
//! CPU percentages are over the jiffies each CPU accounted in the interval, not over `itv`.
//!
//! Counters going backwards. sysstat computes most deltas with C unsigned arithmetic, which turns
//! a decrease into a huge number. Fleet keeps sysstat's decisions where sysstat makes one
//! (a CPU counter that decreases gives 0%; an interface or disk whose counters all went back is
//! taken as unregistered then registered again, and counted from zero) and otherwise uses
//! [`delta`]: a decrease from a value that fits in 32 bits is a 32-bit wrap (which is what
//! sysstat's `unsigned long` fields do on 32-bit systems, and what 32-bit driver counters do), a
//! decrease from above 2^63 is a 64-bit wrap, and any other decrease counts as no change. A rate
//! is therefore never a bogus 10^17.

use fleet_proto::v1::{Activity, Record};

use super::diskstats::{DiskKind, DiskStat};
use super::meminfo::Meminfo;
use super::net_dev::{Duplex, NetDev};
use super::pressure::{Pressure, PsiLine};
use super::stat::{CpuTimes, Stat};
use super::vmstat::Vmstat;
use super::Reading;

/// Instance name of the activities that have a single record.
pub const NO_INSTANCE: &str = "-";

/// What one sample produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleOut {
    /// The real elapsed time the rates are computed over (the `/proc/uptime` difference).
    pub interval_ms: u32,
    /// One record per activity and instance, values in `fleet_proto::schema` column order.
    pub records: Vec<Record>,
}

/// sysstat's `get_interval`: elapsed hundredths of a second, at least 1. (sysstat would compute a
/// huge interval if uptime went backwards; that cannot happen, but 1 is the safer floor.)
pub fn interval_cs(prev_uptime_cs: u64, curr_uptime_cs: u64) -> u64 {
    curr_uptime_cs.saturating_sub(prev_uptime_cs).max(1)
}

/// The increase of a cumulative counter. See the module doc for decreases.
pub fn delta(prev: u64, curr: u64) -> u64 {
    if curr >= prev {
        curr - prev
    } else if prev <= u64::from(u32::MAX) {
        curr.wrapping_sub(prev) & u64::from(u32::MAX)
    } else if prev > u64::MAX / 2 {
        curr.wrapping_sub(prev)
    } else {
        0
    }
}

/// sysstat's `S_VALUE`: per-second rate of `d` events over `itv` hundredths of a second.
pub fn rate(d: u64, itv: u64) -> f64 {
    d as f64 / itv as f64 * 100.0
}

/// sysstat's `ll_sp_value`: percentage of `itv` jiffies, 0 when the counter went backwards.
fn ll_sp_value(prev: u64, curr: u64, itv: u64) -> f64 {
    if curr < prev {
        0.0
    } else {
        (curr - prev) as f64 / itv as f64 * 100.0
    }
}

fn record(activity: Activity, instance: impl Into<String>, values: Vec<f64>) -> Record {
    debug_assert_eq!(
        Some(values.len()),
        fleet_proto::schema::schema(activity).map(|s| s.columns.len()),
        "{activity:?}"
    );
    Record {
        activity: activity as i32,
        instance: instance.into(),
        values,
    }
}

/// Computes every activity available in both readings, in wire-enum order.
pub fn compute(prev: &Reading, curr: &Reading) -> SampleOut {
    let mut records = Vec::with_capacity(record_count_hint(curr));
    let interval = compute_into(prev, curr, &mut records);
    SampleOut {
        interval_ms: u32::try_from(interval.saturating_mul(10)).unwrap_or(u32::MAX),
        records,
    }
}

/// About how many records `compute` makes for readings like `r` (to size the vector once).
pub fn record_count_hint(r: &Reading) -> usize {
    // 10 single records (CPU "all", memory, swap, swapping, paging, io, load, 3 PSI), 2 spare.
    12 + r.stat.cpus.len()
        + r.disks.as_ref().map_or(0, Vec::len)
        + 2 * r.net.as_ref().map_or(0, Vec::len)
}

/// [`compute`] appending to `out`; returns the interval in hundredths of a second.
pub fn compute_into(prev: &Reading, curr: &Reading, out: &mut Vec<Record>) -> u64 {
    let itv = interval_cs(prev.uptime_cs, curr.uptime_cs);
    cpu(&prev.stat, &curr.stat, out);
    out.push(memory(&curr.meminfo));
    out.push(swap(&curr.meminfo));
    out.push(swapping(&prev.vmstat, &curr.vmstat, itv));
    out.push(paging(&prev.vmstat, &curr.vmstat, itv));
    if let (Some(p), Some(c)) = (&prev.disks, &curr.disks) {
        out.push(io(p, c, itv));
        disks(p, c, itv, out);
    }
    out.push(load(curr));
    if let (Some(p), Some(c)) = (&prev.net, &curr.net) {
        net_dev(p, c, itv, out);
        net_edev(p, c, itv, out);
    }
    if let (Some(p), Some(c)) = (
        prev.psi_cpu.and_then(|x| x.some),
        curr.psi_cpu.and_then(|x| x.some),
    ) {
        out.push(psi_cpu(&p, &c, itv));
    }
    if let Some(r) = psi_some_full(Activity::PsiIo, prev.psi_io, curr.psi_io, itv) {
        out.push(r);
    }
    if let Some(r) = psi_some_full(Activity::PsiMem, prev.psi_mem, curr.psi_mem, itv) {
        out.push(r);
    }
    itv
}

// ---------------------------------------------------------------------------------------------
// CPU (-u, -P ALL)

/// sysstat's `get_per_cpu_interval` (rd_stats.c): jiffies CPU accounted between `scp` and `scc`.
/// May lower `scp.idle`/`scp.iowait`, exactly as sysstat does, for a CPU that came back online
/// (the kernel restarts those two counters from zero) or whose iowait was re-accounted as idle.
pub fn per_cpu_interval(scc: &CpuTimes, scp: &mut CpuTimes) -> u64 {
    const NEAR_MAX: u64 = u64::MAX - 0x7ffff;
    let mut ishift = 0u64;
    let (c_user, p_user) = (
        scc.user.wrapping_sub(scc.guest),
        scp.user.wrapping_sub(scp.guest),
    );
    if c_user < p_user {
        // guest slightly ahead of the user counter that includes it.
        ishift = ishift.wrapping_add(p_user - c_user);
    }
    let (c_nice, p_nice) = (
        scc.nice.wrapping_sub(scc.guest_nice),
        scp.nice.wrapping_sub(scp.guest_nice),
    );
    if c_nice < p_nice {
        ishift = ishift.wrapping_add(p_nice - c_nice);
    }
    if scc.iowait < scp.iowait && scp.iowait < NEAR_MAX {
        if scc.idle > scp.idle || scp.idle >= NEAR_MAX {
            scp.iowait = scc.iowait;
        } else {
            scp.iowait = 0;
        }
    }
    if scc.idle < scp.idle && scp.idle < NEAR_MAX {
        scp.idle = 0;
    }
    scc.total().wrapping_sub(scp.total()).wrapping_add(ishift)
}

/// `%user %nice %system %iowait %steal %idle` as `sar -u` prints them (pr_stats.c,
/// `print_cpu_stats`, default display): `%user` and `%nice` **include** guest time (the kernel's
/// user/nice counters contain it; only `sar -u ALL` splits it out as `%guest`/`%gnice`), and
/// `%system` includes hard and soft interrupts, so the six columns add up to 100.
fn cpu_values(scp: &CpuTimes, scc: &CpuTimes, itv: u64) -> Vec<f64> {
    vec![
        ll_sp_value(scp.user, scc.user, itv),
        ll_sp_value(scp.nice, scc.nice, itv),
        ll_sp_value(
            scp.system.wrapping_add(scp.irq).wrapping_add(scp.softirq),
            scc.system.wrapping_add(scc.irq).wrapping_add(scc.softirq),
            itv,
        ),
        ll_sp_value(scp.iowait, scc.iowait, itv),
        ll_sp_value(scp.steal, scc.steal, itv),
        if scc.idle < scp.idle {
            0.0
        } else {
            ll_sp_value(scp.idle, scc.idle, itv)
        },
    ]
}

fn add_cpu(sum: &mut CpuTimes, t: &CpuTimes) {
    sum.user = sum.user.wrapping_add(t.user);
    sum.nice = sum.nice.wrapping_add(t.nice);
    sum.system = sum.system.wrapping_add(t.system);
    sum.idle = sum.idle.wrapping_add(t.idle);
    sum.iowait = sum.iowait.wrapping_add(t.iowait);
    sum.irq = sum.irq.wrapping_add(t.irq);
    sum.softirq = sum.softirq.wrapping_add(t.softirq);
    sum.steal = sum.steal.wrapping_add(t.steal);
    sum.guest = sum.guest.wrapping_add(t.guest);
    sum.guest_nice = sum.guest_nice.wrapping_add(t.guest_nice);
}

/// CPU "all" then one record per online CPU, like `sar -u -P ALL`.
///
/// As sysstat's `get_global_cpu_statistics` (sa_common.c): "all" is the sum of the individual
/// CPUs, over the sum of their intervals. A CPU without a line now (offline) is not shown and
/// counts as unchanged; a CPU without a reference reading (it came online during the interval)
/// is neither shown nor counted, and is shown from the next interval on. The caller keeps an
/// offline CPU's last values for the next interval (see [`carry_offline_cpus`]). With no `cpuN`
/// lines at all, "all" comes from the `cpu` line.
pub fn cpu(prev: &Stat, curr: &Stat, out: &mut Vec<Record>) {
    let n = prev.cpus.len().max(curr.cpus.len());
    if n == 0 {
        let mut scp = prev.all;
        let itv = per_cpu_interval(&curr.all, &mut scp).max(1);
        out.push(record(
            Activity::Cpu,
            "all",
            cpu_values(&scp, &curr.all, itv),
        ));
        return;
    }
    let all_at = out.len();
    // Placeholder (no allocation for its values): "all" comes first but is known last.
    out.push(Record {
        activity: Activity::Cpu as i32,
        instance: "all".to_owned(),
        values: Vec::new(),
    });
    let (mut all_c, mut all_p) = (CpuTimes::default(), CpuTimes::default());
    let mut deltot = 0u64;
    for i in 0..n {
        let mut scp = prev.cpus.get(i).copied().flatten().unwrap_or_default();
        let mut scc = curr.cpus.get(i).copied().flatten().unwrap_or_default();
        let offline = scc.total() == 0;
        if offline {
            scc = scp;
        }
        if scp.total() == 0 {
            continue;
        }
        deltot = deltot.wrapping_add(per_cpu_interval(&scc, &mut scp));
        add_cpu(&mut all_c, &scc);
        add_cpu(&mut all_p, &scp);
        if offline {
            continue;
        }
        let itv = per_cpu_interval(&scc, &mut scp);
        let values = if itv == 0 {
            // Tickless CPU: nothing accounted, sar shows it idle.
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 100.0]
        } else {
            cpu_values(&scp, &scc, itv)
        };
        out.push(record(Activity::Cpu, i.to_string(), values));
    }
    out[all_at].values = cpu_values(&all_p, &all_c, deltot.max(1));
}

/// Gives each CPU missing from `curr` (offline) its values from `prev`, as sysstat does
/// (`*scc = *scp` in `get_global_cpu_statistics`), so that when it comes back its interval is
/// computed from its last known values. Call after computing the interval that ends at `curr`.
pub fn carry_offline_cpus(prev: &Stat, curr: &mut Stat) {
    for (i, p) in prev.cpus.iter().enumerate() {
        let Some(p) = p else { continue };
        if curr.cpus.len() <= i {
            curr.cpus.resize(i + 1, None);
        }
        if curr.cpus[i].is_none_or(|c| c.total() == 0) {
            curr.cpus[i] = Some(*p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory (-r), swap space (-S)

/// `sar -r` (pr_stats.c, `print_ram_memory_stats`): used memory is total minus free, buffers,
/// page cache and slab; `%commit` is over RAM plus swap.
pub fn memory(m: &Meminfo) -> Record {
    let nousedmem = m
        .mem_free
        .saturating_add(m.buffers)
        .saturating_add(m.cached)
        .saturating_add(m.slab)
        .min(m.mem_total);
    let used = m.mem_total - nousedmem;
    let pct_used = if m.mem_total == 0 {
        0.0
    } else {
        used as f64 / m.mem_total as f64 * 100.0
    };
    let ram_swap = m.mem_total.saturating_add(m.swap_total);
    let pct_commit = if ram_swap == 0 {
        0.0
    } else {
        m.committed_as as f64 / ram_swap as f64 * 100.0
    };
    record(
        Activity::Memory,
        NO_INSTANCE,
        vec![
            m.mem_free as f64,
            m.mem_available as f64,
            used as f64,
            pct_used,
            m.buffers as f64,
            m.cached as f64,
            m.committed_as as f64,
            pct_commit,
            m.active as f64,
            m.inactive as f64,
            m.dirty as f64,
        ],
    )
}

/// `sar -S` (pr_stats.c, `print_swap_memory_stats`): `%swpcad` is cached swap over used swap.
pub fn swap(m: &Meminfo) -> Record {
    let used = m.swap_total.saturating_sub(m.swap_free);
    let pct_used = if m.swap_total == 0 {
        0.0
    } else {
        used as f64 / m.swap_total as f64 * 100.0
    };
    let pct_cad = if used == 0 {
        0.0
    } else {
        m.swap_cached as f64 / used as f64 * 100.0
    };
    record(
        Activity::Swap,
        NO_INSTANCE,
        vec![
            m.swap_free as f64,
            used as f64,
            pct_used,
            m.swap_cached as f64,
            pct_cad,
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Swapping (-W), paging (-B)

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

// ---------------------------------------------------------------------------------------------
// Block devices (-b, -d)

static ZERO_DISK: DiskStat = DiskStat {
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
/// or the zero reading when `c` is new, or when its I/O count and every sector count that was
/// not zero went backwards (the device was removed and another registered under its numbers).
fn disk_reference<'a>(c: &DiskStat, prev: impl Iterator<Item = &'a DiskStat>) -> &'a DiskStat {
    let mut prev = prev;
    let Some(p) = prev.find(|p| p.major == c.major && p.minor == c.minor) else {
        return &ZERO_DISK;
    };
    let back = |pv: u64, cv: u64| pv == 0 || cv < pv;
    if c.nr_ios() < p.nr_ios()
        && back(p.rd_sect, c.rd_sect)
        && back(p.wr_sect, c.wr_sect)
        && back(p.dc_sect, c.dc_sect)
    {
        return &ZERO_DISK;
    }
    p
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
        let p = disk_reference(c, prev.iter().filter(real));
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
        let p = disk_reference(c, prev.iter().filter(|d| shown_by_d(d)));
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

// ---------------------------------------------------------------------------------------------
// Load (-q)

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

// ---------------------------------------------------------------------------------------------
// Network interfaces (-n DEV, -n EDEV)

/// sysstat's `check_net_dev_reg` (sa_common.c): the previous reading of interface `c`, or
/// `None` (count from zero) when it is new, or when a counter went backwards that is not a
/// counter overflow (the interface was unregistered and registered again).
///
/// sysstat recognises an overflow when bytes went back while packets went on (or the reverse)
/// and the old value was above 2^63. Fleet also recognises the 32-bit case, old value between
/// 2^31 and 2^32: drivers that keep 32-bit counters wrap there, and sysstat would otherwise
/// count the interface from zero, i.e. report its whole history as this interval's traffic.
fn net_dev_reference<'a>(c: &NetDev, prev: &'a [NetDev]) -> Option<&'a NetDev> {
    let p = prev.iter().find(|p| p.name == c.name)?;
    let back = c.rx_packets < p.rx_packets
        || c.tx_packets < p.tx_packets
        || c.rx_bytes < p.rx_bytes
        || c.tx_bytes < p.tx_bytes
        || c.rx_compressed < p.rx_compressed
        || c.tx_compressed < p.tx_compressed
        || c.rx_multicast < p.rx_multicast;
    if !back {
        return Some(p);
    }
    let high = |old: u64| {
        old > u64::MAX / 2 || (old > u64::from(u32::MAX) / 2 && old <= u64::from(u32::MAX))
    };
    let wrapped =
        |cv: u64, pv: u64, c_other: u64, p_other: u64| cv < pv && c_other > p_other && high(pv);
    let overflow = wrapped(c.rx_bytes, p.rx_bytes, c.rx_packets, p.rx_packets)
        || wrapped(c.tx_bytes, p.tx_bytes, c.tx_packets, p.tx_packets)
        || wrapped(c.rx_packets, p.rx_packets, c.rx_bytes, p.rx_bytes)
        || wrapped(c.tx_packets, p.tx_packets, c.tx_bytes, p.tx_bytes);
    overflow.then_some(p)
}

static ZERO_NET: NetDev = NetDev {
    name: String::new(),
    rx_bytes: 0,
    rx_packets: 0,
    rx_errors: 0,
    rx_dropped: 0,
    rx_fifo: 0,
    rx_frame: 0,
    rx_compressed: 0,
    rx_multicast: 0,
    tx_bytes: 0,
    tx_packets: 0,
    tx_errors: 0,
    tx_dropped: 0,
    tx_fifo: 0,
    collisions: 0,
    tx_carrier: 0,
    tx_compressed: 0,
    speed_mbps: 0,
    duplex: Duplex::Unknown,
};

/// sysstat's `compute_ifutil` (sa_common.c): bytes per second against the link speed, the busier
/// direction for a full-duplex link, both together for half duplex; 0 when the speed is unknown.
pub fn ifutil(speed_mbps: u64, duplex: Duplex, rx_bytes_s: f64, tx_bytes_s: f64) -> f64 {
    if speed_mbps == 0 {
        return 0.0;
    }
    let speed = speed_mbps.saturating_mul(1_000_000) as f64;
    match duplex {
        Duplex::Full => rx_bytes_s.max(tx_bytes_s) * 800.0 / speed,
        Duplex::Half => (rx_bytes_s + tx_bytes_s) * 800.0 / speed,
        Duplex::Unknown => 0.0,
    }
}

/// `sar -n DEV` (pr_stats.c, `print_net_dev_stats`): one record per interface present now; an
/// interface gone since the previous reading has no record.
pub fn net_dev(prev: &[NetDev], curr: &[NetDev], itv: u64, out: &mut Vec<Record>) {
    for c in curr {
        let p = net_dev_reference(c, prev).unwrap_or(&ZERO_NET);
        let rx = rate(delta(p.rx_bytes, c.rx_bytes), itv);
        let tx = rate(delta(p.tx_bytes, c.tx_bytes), itv);
        out.push(record(
            Activity::NetDev,
            &c.name,
            vec![
                rate(delta(p.rx_packets, c.rx_packets), itv),
                rate(delta(p.tx_packets, c.tx_packets), itv),
                rx / 1024.0,
                tx / 1024.0,
                rate(delta(p.rx_compressed, c.rx_compressed), itv),
                rate(delta(p.tx_compressed, c.tx_compressed), itv),
                rate(delta(p.rx_multicast, c.rx_multicast), itv),
                ifutil(c.speed_mbps, c.duplex, rx, tx),
            ],
        ));
    }
}

/// `sar -n EDEV` (pr_stats.c, `print_net_edev_stats`; sa_common.c, `check_net_edev_reg`): an
/// interface whose error counters went back is counted from zero. (sysstat leaves `rx_errors`
/// out of that check, so a decrease of it alone would print a huge rate; Fleet includes it.)
pub fn net_edev(prev: &[NetDev], curr: &[NetDev], itv: u64, out: &mut Vec<Record>) {
    for c in curr {
        let p = prev
            .iter()
            .find(|p| p.name == c.name)
            .filter(|p| {
                !(c.rx_errors < p.rx_errors
                    || c.tx_errors < p.tx_errors
                    || c.collisions < p.collisions
                    || c.rx_dropped < p.rx_dropped
                    || c.tx_dropped < p.tx_dropped
                    || c.tx_carrier < p.tx_carrier
                    || c.rx_frame < p.rx_frame
                    || c.rx_fifo < p.rx_fifo
                    || c.tx_fifo < p.tx_fifo)
            })
            .unwrap_or(&ZERO_NET);
        out.push(record(
            Activity::NetEdev,
            &c.name,
            vec![
                rate(delta(p.rx_errors, c.rx_errors), itv),
                rate(delta(p.tx_errors, c.tx_errors), itv),
                rate(delta(p.collisions, c.collisions), itv),
                rate(delta(p.rx_dropped, c.rx_dropped), itv),
                rate(delta(p.tx_dropped, c.tx_dropped), itv),
                rate(delta(p.tx_carrier, c.tx_carrier), itv),
                rate(delta(p.rx_frame, c.rx_frame), itv),
                rate(delta(p.rx_fifo, c.rx_fifo), itv),
                rate(delta(p.tx_fifo, c.tx_fifo), itv),
            ],
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Pressure (-q CPU, -q IO, -q MEM)

/// The stalled time over the interval as a percentage, as sar 12.6 computes `%scpu` & co
/// (pr_stats.c, `print_psi*_stats`): `(total_now - total_before) / (100 * itv)`, totals in
/// microseconds and `itv` in hundredths of a second.
fn psi_pct(p: &PsiLine, c: &PsiLine, itv: u64) -> f64 {
    (c.total as f64 - p.total as f64) / (100.0 * itv as f64)
}

fn psi_values(p: &PsiLine, c: &PsiLine, itv: u64, v: &mut Vec<f64>) {
    v.extend([
        c.avg10 as f64 / 100.0,
        c.avg60 as f64 / 100.0,
        c.avg300 as f64 / 100.0,
        psi_pct(p, c, itv),
    ]);
}

/// `sar -q CPU`: the `some` line only (sysstat reads no `full` line for CPU).
pub fn psi_cpu(p: &PsiLine, c: &PsiLine, itv: u64) -> Record {
    let mut v = Vec::with_capacity(4);
    psi_values(p, c, itv, &mut v);
    record(Activity::PsiCpu, NO_INSTANCE, v)
}

/// `sar -q IO` / `-q MEM`: `some` then `full`; `None` unless both readings have both lines
/// (sysstat's `read_psiio`/`read_psimem` fail without them).
pub fn psi_some_full(
    activity: Activity,
    prev: Option<Pressure>,
    curr: Option<Pressure>,
    itv: u64,
) -> Option<Record> {
    let (p, c) = (prev?, curr?);
    let (ps, pf, cs, cf) = (p.some?, p.full?, c.some?, c.full?);
    let mut v = Vec::with_capacity(8);
    psi_values(&ps, &cs, itv, &mut v);
    psi_values(&pf, &cf, itv, &mut v);
    Some(record(activity, NO_INSTANCE, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_rules() {
        assert_eq!(delta(5, 9), 4);
        assert_eq!(delta(u64::from(u32::MAX) - 1, 3), 5, "32-bit wrap");
        assert_eq!(delta(u64::MAX - 1, 3), 5, "64-bit wrap");
        assert_eq!(delta(10_000_000_000, 5), 0, "unexplained decrease");
    }

    #[test]
    fn interval_floor() {
        assert_eq!(interval_cs(100, 400), 300);
        assert_eq!(interval_cs(100, 100), 1);
        assert_eq!(interval_cs(400, 100), 1);
    }

    #[test]
    fn ifutil_like_sysstat() {
        // 12.5 MB/s on a 1 Gb/s full-duplex link is 10%.
        assert!((ifutil(1000, Duplex::Full, 12_500_000.0, 1.0) - 10.0).abs() < 1e-9);
        assert!((ifutil(1000, Duplex::Half, 6_250_000.0, 6_250_000.0) - 10.0).abs() < 1e-9);
        assert_eq!(ifutil(0, Duplex::Full, 1e9, 1e9), 0.0);
    }

    #[test]
    fn tickless_cpu_is_idle() {
        let t = CpuTimes {
            user: 10,
            idle: 100,
            ..CpuTimes::default()
        };
        let s = Stat {
            all: t,
            cpus: vec![Some(t)],
            ..Stat::default()
        };
        let mut out = Vec::new();
        cpu(&s, &s, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].values, vec![0.0, 0.0, 0.0, 0.0, 0.0, 100.0]);
        // "all" over an interval of 0 jiffies is computed over 1: all zero, not NaN.
        assert!(out[0].values.iter().all(|v| *v == 0.0));
    }
}
