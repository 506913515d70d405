//! `/proc/meminfo`: the fields sar's `-r` and `-S` use, in kB.
//!
//! A real example (first lines, and the other lines sar reads):
//!
//! ```text
//! MemTotal:       24684096 kB
//! MemFree:        23782784 kB
//! MemAvailable:   24319972 kB
//! Buffers:            2436 kB
//! Cached:           703736 kB
//! SwapCached:            0 kB
//! Active:           359736 kB
//! Inactive:         343884 kB
//! Active(anon):       1528 kB
//! ...
//! SwapTotal:             0 kB
//! SwapFree:              0 kB
//! Dirty:               144 kB
//! ...
//! Slab:             125092 kB
//! ...
//! Committed_AS:      55272 kB
//! ```
//!
//! Same keys as sysstat's `read_meminfo` (rd_stats.c); a key the kernel does not print stays 0.

use super::parse::{fields, lines, u64_field, ParseError};

/// Memory figures in kB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meminfo {
    pub mem_total: u64,
    pub mem_free: u64,
    pub mem_available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub swap_cached: u64,
    pub active: u64,
    pub inactive: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub dirty: u64,
    pub committed_as: u64,
    pub slab: u64,
}

/// Parses `/proc/meminfo`.
///
/// # Errors
/// When `MemTotal` is missing (nothing sensible can be computed without it).
pub fn parse(buf: &[u8]) -> Result<Meminfo, ParseError> {
    let mut m = Meminfo::default();
    let mut seen_total = false;
    for line in lines(buf) {
        let mut it = fields(line);
        let Some(key) = it.next() else {
            continue;
        };
        // The key first: the value of the ~40 lines sar does not read is not parsed.
        let slot = match key {
            b"MemTotal:" => &mut m.mem_total,
            b"MemFree:" => &mut m.mem_free,
            b"MemAvailable:" => &mut m.mem_available,
            b"Buffers:" => &mut m.buffers,
            b"Cached:" => &mut m.cached,
            b"SwapCached:" => &mut m.swap_cached,
            b"Active:" => &mut m.active,
            b"Inactive:" => &mut m.inactive,
            b"SwapTotal:" => &mut m.swap_total,
            b"SwapFree:" => &mut m.swap_free,
            b"Dirty:" => &mut m.dirty,
            b"Committed_AS:" => &mut m.committed_as,
            b"Slab:" => &mut m.slab,
            _ => continue,
        };
        let Some(value) = it.next().and_then(u64_field) else {
            continue;
        };
        *slot = value;
        seen_total |= key == b"MemTotal:";
    }
    if seen_total {
        Ok(m)
    } else {
        Err(ParseError("no MemTotal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_lines() {
        let text = "MemTotal:       24684096 kB\nMemFree:        23782784 kB\n\
MemAvailable:   24319972 kB\nBuffers:            2436 kB\nCached:           703736 kB\n\
SwapCached:            0 kB\nActive:           359736 kB\nInactive:         343884 kB\n\
Active(anon):       1528 kB\nSwapTotal:       1048572 kB\nSwapFree:         1000000 kB\n\
Dirty:               144 kB\nSlab:             125092 kB\nCommitted_AS:      55272 kB\n\
HugePages_Total:       0\n";
        let m = parse(text.as_bytes()).expect("parses");
        assert_eq!(m.mem_total, 24684096);
        assert_eq!(m.active, 359736, "Active(anon) must not overwrite Active");
        assert_eq!(m.swap_total, 1048572);
        assert_eq!(m.slab, 125092);
        assert_eq!(m.committed_as, 55272);
    }

    #[test]
    fn needs_memtotal() {
        assert!(parse(b"MemFree: 1 kB\n").is_err());
        assert!(parse(b"MemTotal: garbage kB\n").is_err());
    }
}
