//! The few `/sys` facts sar needs besides `/proc`.
//!
//! - Block devices, as sysstat's `is_device` (common.c) decides: `/sys/block/<name>` exists for a
//!   whole disk and not for a partition, and `/sys/block/<name>/device` exists only for a real
//!   disk (`/` in a name is `!` in sysfs, e.g. `cciss!c0d0`). The name sar prints with `-p` for a
//!   device-mapper device is its mapper name, which `/sys/block/dm-N/dm/name` holds (sysstat
//!   finds the same name by scanning `/dev/mapper`).
//! - Link speed and duplex, as sysstat's `read_if_info` (rd_stats.c) reads them: `duplex` first
//!   (`full` or `half`, anything else means unknown), and only then `speed` in Mb/s. A virtual
//!   interface answers `EINVAL` to both, and an unplugged one has speed `-1`: both mean 0,
//!   which makes `%ifutil` 0 as in sar.
//!
//! These are small files read rarely (when a device first appears, and for speed every
//! [`LINK_REFRESH_SAMPLES`] samples), so they are opened and closed each time.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::diskstats::DiskKind;
use super::net_dev::Duplex;
use super::parse::{fields, u64_field};

/// How many samples a link's speed and duplex are trusted before being read again. sar reads
/// them at every sample; a link renegotiating its speed is rare enough that a minute (at 1 s
/// sampling) of delay is not worth two extra opens per interface per second.
pub const LINK_REFRESH_SAMPLES: u64 = 60;

/// Reads a small file into `buf`; `None` if it cannot be opened or read (missing, `EINVAL`...).
fn read_small<'b>(path: &Path, buf: &'b mut [u8; 256]) -> Option<&'b [u8]> {
    let mut f = File::open(path).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(&buf[..n])
}

/// The sysfs spelling of a block device name (`cciss/c0d0` is `cciss!c0d0`).
fn sysfs_block_name(name: &str) -> String {
    name.replace('/', "!")
}

/// Classifies block device `name` and finds the name sar prints for it with `-p` (empty when it
/// is `name` itself).
pub fn classify_disk(sys_root: &Path, name: &str) -> (DiskKind, String) {
    let dir = sys_root.join("block").join(sysfs_block_name(name));
    if !dir.exists() {
        return (DiskKind::Partition, String::new());
    }
    let kind = if dir.join("device").exists() {
        DiskKind::Real
    } else {
        DiskKind::Virtual
    };
    let mut buf = [0u8; 256];
    let label = read_small(&dir.join("dm").join("name"), &mut buf)
        .and_then(|b| std::str::from_utf8(b).ok())
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != name)
        .map(str::to_owned)
        .unwrap_or_default();
    (kind, label)
}

/// Parses the content of `/sys/class/net/<iface>/duplex`.
pub fn parse_duplex(buf: &[u8]) -> Duplex {
    match fields(buf).next() {
        Some(b"full") => Duplex::Full,
        Some(b"half") => Duplex::Half,
        _ => Duplex::Unknown,
    }
}

/// Parses the content of `/sys/class/net/<iface>/speed` (Mb/s); `-1` and garbage are 0.
pub fn parse_speed(buf: &[u8]) -> u64 {
    fields(buf).next().and_then(u64_field).unwrap_or(0)
}

/// Speed (Mb/s) and duplex of `iface`, 0 and unknown when sysfs does not say.
pub fn link_info(sys_root: &Path, iface: &str) -> (u64, Duplex) {
    let dir = sys_root.join("class").join("net").join(iface);
    let mut buf = [0u8; 256];
    let duplex = read_small(&dir.join("duplex"), &mut buf)
        .map(parse_duplex)
        .unwrap_or_default();
    if duplex == Duplex::Unknown {
        return (0, Duplex::Unknown);
    }
    let speed = read_small(&dir.join("speed"), &mut buf)
        .map(parse_speed)
        .unwrap_or(0);
    (speed, duplex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_and_duplex_contents() {
        assert_eq!(parse_speed(b"1000\n"), 1000);
        assert_eq!(parse_speed(b"-1\n"), 0);
        assert_eq!(parse_speed(b""), 0);
        assert_eq!(parse_duplex(b"full\n"), Duplex::Full);
        assert_eq!(parse_duplex(b"half\n"), Duplex::Half);
        assert_eq!(parse_duplex(b"unknown\n"), Duplex::Unknown);
    }

    #[test]
    fn classify_against_a_tree() {
        let t = tempfile::tempdir().expect("tempdir");
        let sys = t.path();
        std::fs::create_dir_all(sys.join("block/vda/device")).expect("mkdir");
        std::fs::create_dir_all(sys.join("block/loop0")).expect("mkdir");
        std::fs::create_dir_all(sys.join("block/dm-0/dm")).expect("mkdir");
        std::fs::write(sys.join("block/dm-0/dm/name"), "vg0-root\n").expect("write");
        std::fs::create_dir_all(sys.join("block/cciss!c0d0/device")).expect("mkdir");
        assert_eq!(classify_disk(sys, "vda"), (DiskKind::Real, String::new()));
        assert_eq!(
            classify_disk(sys, "vda1"),
            (DiskKind::Partition, String::new())
        );
        assert_eq!(
            classify_disk(sys, "loop0"),
            (DiskKind::Virtual, String::new())
        );
        assert_eq!(
            classify_disk(sys, "dm-0"),
            (DiskKind::Virtual, "vg0-root".to_owned())
        );
        assert_eq!(classify_disk(sys, "cciss/c0d0").0, DiskKind::Real);

        std::fs::create_dir_all(sys.join("class/net/eth0")).expect("mkdir");
        std::fs::write(sys.join("class/net/eth0/duplex"), "full\n").expect("write");
        std::fs::write(sys.join("class/net/eth0/speed"), "10000\n").expect("write");
        std::fs::create_dir_all(sys.join("class/net/eth1")).expect("mkdir");
        std::fs::write(sys.join("class/net/eth1/duplex"), "unknown\n").expect("write");
        std::fs::write(sys.join("class/net/eth1/speed"), "1000\n").expect("write");
        assert_eq!(link_info(sys, "eth0"), (10000, Duplex::Full));
        assert_eq!(link_info(sys, "eth1"), (0, Duplex::Unknown));
        assert_eq!(link_info(sys, "lo"), (0, Duplex::Unknown));
    }
}
