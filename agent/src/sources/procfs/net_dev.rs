//! `/proc/net/dev`: per interface traffic and error counters (sar `-n DEV`, `-n EDEV`).
//!
//! A real example:
//!
//! ```text
//! Inter-|   Receive                                                |  Transmit
//!  face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
//!     lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
//!   eth0: 127612197    4826    0    0    0     0          0         0   309220    2729    0    0    0     0       0          0
//! ```
//!
//! As in sysstat's `read_net_dev`/`read_net_edev` (rd_stats.c) the name is what precedes the
//! first `:` (with wide counters the first number touches the colon: `eth0:127612197`). Header
//! lines have no colon and are skipped. The link speed and duplex are not in this file: the
//! sampler reads them from `/sys/class/net/<iface>/` into [`NetDev::speed_mbps`] and
//! [`NetDev::duplex`].

use super::parse::{fields, lines, set_string, u64_field};

/// Link duplex as `/sys/class/net/<iface>/duplex` gives it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Duplex {
    /// Missing, unreadable or `unknown`: sar then reports `%ifutil` 0.
    #[default]
    Unknown,
    Full,
    Half,
}

/// One interface line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDev {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub rx_fifo: u64,
    pub rx_frame: u64,
    pub rx_compressed: u64,
    pub rx_multicast: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
    pub tx_fifo: u64,
    pub collisions: u64,
    pub tx_carrier: u64,
    pub tx_compressed: u64,
    /// Mb/s from `/sys/class/net/<iface>/speed`, 0 when unknown. Filled by the sampler.
    pub speed_mbps: u64,
    /// Filled by the sampler.
    pub duplex: Duplex,
}

/// An interface with every counter at zero: the reference of an interface that is new in the
/// interval, or was registered again.
pub static ZERO: NetDev = NetDev {
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

/// Parses `/proc/net/dev`.
pub fn parse(buf: &[u8]) -> Vec<NetDev> {
    let mut v = Vec::new();
    parse_into(buf, &mut v);
    v
}

/// [`parse`] into `out`, reusing its entries and name buffers. A line with fewer than the 16
/// counters is skipped. `speed_mbps` and `duplex` are reset.
pub fn parse_into(buf: &[u8], out: &mut Vec<NetDev>) {
    let mut n = 0;
    for line in lines(buf) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let Some(name) = fields(&line[..colon]).next() else {
            continue;
        };
        let mut v = [0u64; 16];
        let mut it = fields(&line[colon + 1..]);
        if v.iter_mut()
            .any(|slot| match it.next().and_then(u64_field) {
                Some(x) => {
                    *slot = x;
                    false
                }
                None => true,
            })
        {
            continue;
        }
        if n == out.len() {
            out.push(NetDev::default());
        }
        let d = &mut out[n];
        n += 1;
        set_string(&mut d.name, name);
        d.rx_bytes = v[0];
        d.rx_packets = v[1];
        d.rx_errors = v[2];
        d.rx_dropped = v[3];
        d.rx_fifo = v[4];
        d.rx_frame = v[5];
        d.rx_compressed = v[6];
        d.rx_multicast = v[7];
        d.tx_bytes = v[8];
        d.tx_packets = v[9];
        d.tx_errors = v[10];
        d.tx_dropped = v[11];
        d.tx_fifo = v[12];
        d.collisions = v[13];
        d.tx_carrier = v[14];
        d.tx_compressed = v[15];
        d.speed_mbps = 0;
        d.duplex = Duplex::Unknown;
    }
    out.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_file() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n  \
eth0:127612197    4826    1    2    3     4          5         6   309220    2729    7    8    9    10       11          12\n  \
bad0: 1 2 3\n";
        let d = parse(text.as_bytes());
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "lo");
        let e = &d[1];
        assert_eq!(e.name, "eth0");
        assert_eq!((e.rx_bytes, e.rx_packets), (127612197, 4826));
        assert_eq!(
            (
                e.rx_errors,
                e.rx_dropped,
                e.rx_fifo,
                e.rx_frame,
                e.rx_compressed,
                e.rx_multicast
            ),
            (1, 2, 3, 4, 5, 6)
        );
        assert_eq!((e.tx_bytes, e.tx_packets), (309220, 2729));
        assert_eq!(
            (
                e.tx_errors,
                e.tx_dropped,
                e.tx_fifo,
                e.collisions,
                e.tx_carrier,
                e.tx_compressed
            ),
            (7, 8, 9, 10, 11, 12)
        );
    }
}
