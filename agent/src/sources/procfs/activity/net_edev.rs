//! `sar -n EDEV`: one record of error counters per network interface, from `/proc/net/dev`
//! (shared). Follows sysstat's `print_net_edev_stats` (pr_stats.c) and `check_net_edev_reg`
//! (sa_common.c).

use fleet_proto::v1::{Activity, Record};

use super::rates::{delta, rate};
use super::{record, Interval, SarActivity};
use crate::sources::procfs::net_dev::{self, NetDev as Iface};

/// `sar -n EDEV`: left out without `/proc/net/dev`.
pub struct NetEdev;

impl SarActivity for NetEdev {
    const ACTIVITY: Activity = Activity::NetEdev;
    type Own = ();

    fn compute(x: &Interval<'_>, out: &mut Vec<Record>) {
        if let (Some(p), Some(c)) = (&x.prev.net, &x.curr.net) {
            net_edev(p, c, x.itv, out);
        }
    }
}

/// `sar -n EDEV` (pr_stats.c, `print_net_edev_stats`; sa_common.c, `check_net_edev_reg`): an
/// interface whose error counters went back is counted from zero. (sysstat leaves `rx_errors`
/// out of that check, so a decrease of it alone would print a huge rate; Fleet includes it.)
pub fn net_edev(prev: &[Iface], curr: &[Iface], itv: u64, out: &mut Vec<Record>) {
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
            .unwrap_or(&net_dev::ZERO);
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
