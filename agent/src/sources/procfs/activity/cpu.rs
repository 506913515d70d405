//! `sar -u -P ALL`: CPU utilization, "all" then each online CPU, from `/proc/stat` (shared).
//!
//! Follows sysstat's `get_global_cpu_statistics` (sa_common.c: "all" and CPUs that go offline
//! or come online), `get_per_cpu_interval` (rd_stats.c: the jiffies a CPU accounted) and
//! `print_cpu_stats` (pr_stats.c, default display). Percentages are over the jiffies each CPU
//! accounted in the interval, not over the elapsed time.

use fleet_proto::v1::{Activity, Record};

use super::{record, Interval, SarActivity};
use crate::sources::procfs::stat::{CpuTimes, Stat};
use crate::sources::procfs::Reading;

/// `sar -u -P ALL`.
pub struct Cpu;

impl SarActivity for Cpu {
    const ACTIVITY: Activity = Activity::Cpu;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        cpu(&x.prev.stat, &x.curr.stat, out);
    }

    fn carry_forward(prev: &Reading, next: &mut Reading) {
        carry_offline_cpus(&prev.stat, &mut next.stat);
    }
}

/// sysstat's `ll_sp_value`: percentage of `itv` jiffies, 0 when the counter went backwards.
fn ll_sp_value(prev: u64, curr: u64, itv: u64) -> f64 {
    if curr < prev {
        0.0
    } else {
        (curr - prev) as f64 / itv as f64 * 100.0
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
