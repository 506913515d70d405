//! `sar -n DEV`: one record per network interface, from `/proc/net/dev` and the link speed
//! and duplex from `/sys` (shared). Follows sysstat's `print_net_dev_stats` (pr_stats.c),
//! `check_net_dev_reg` and `compute_ifutil` (sa_common.c).

use fleet_proto::v1::{Activity, Record};

use super::rates::{delta, rate};
use super::{record, Interval, SarActivity};
// The source's record of one interface; `NetDev` is this activity.
use crate::sources::procfs::net_dev::{self, Duplex, NetDev as Iface};

/// `sar -n DEV`: left out without `/proc/net/dev`.
pub struct NetDev;

impl SarActivity for NetDev {
    const ACTIVITY: Activity = Activity::NetDev;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        if let (Some(p), Some(c)) = (&x.prev.net, &x.curr.net) {
            net_dev(p, c, x.itv, out);
        }
    }
}

/// sysstat's `check_net_dev_reg` (sa_common.c): the previous reading of interface `c`, or
/// `None` (count from zero) when it is new, or when a counter went backwards that is not a
/// counter overflow (the interface was unregistered and registered again).
///
/// sysstat recognises an overflow when bytes went back while packets went on (or the reverse)
/// and the old value was above 2^63. Fleet also recognises the 32-bit case, old value between
/// 2^31 and 2^32: drivers that keep 32-bit counters wrap there, and sysstat would otherwise
/// count the interface from zero, i.e. report its whole history as this interval's traffic.
fn net_dev_reference<'a>(c: &Iface, prev: &'a [Iface]) -> Option<&'a Iface> {
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
pub fn net_dev(prev: &[Iface], curr: &[Iface], itv: u64, out: &mut Vec<Record>) {
    for c in curr {
        let p = net_dev_reference(c, prev).unwrap_or(&net_dev::ZERO);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifutil_like_sysstat() {
        // 12.5 MB/s on a 1 Gb/s full-duplex link is 10%.
        assert!((ifutil(1000, Duplex::Full, 12_500_000.0, 1.0) - 10.0).abs() < 1e-9);
        assert!((ifutil(1000, Duplex::Half, 6_250_000.0, 6_250_000.0) - 10.0).abs() < 1e-9);
        assert_eq!(ifutil(0, Duplex::Full, 1e9, 1e9), 0.0);
    }
}
