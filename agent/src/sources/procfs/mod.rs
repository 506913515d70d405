//! sar's activities, computed from `/proc` and `/sys` as sysstat 12.6 computes them.
//!
//! Layout:
//! - one parser per file, pure functions over `&[u8]` returning typed structs (each module doc
//!   shows a real example of its input): [`stat`], [`meminfo`], [`vmstat`], [`diskstats`],
//!   [`net_dev`], [`loadavg`], [`uptime`], [`pressure`]; [`sysfs`] for the block device and link
//!   facts sar takes from `/sys`; [`parse`] holds the shared byte helpers;
//! - [`Reading`]: everything read at one instant;
//! - [`compute`](mod@compute): two readings to records, one pure function per activity, each citing the
//!   sysstat function it follows;
//! - [`Sampler`]: keeps the files open, reads them into reused buffers, keeps the previous
//!   reading, and hands out a [`SampleOut`] per call.
//!
//! The parsers are Fleet's own rather than `procfs-core`'s: `procfs-core` builds a `HashMap` for
//! meminfo and a `String` per field or line elsewhere on every parse, has no typed
//! `/proc/vmstat` prefix sums or discard columns as sysstat reads them, and each of these
//! formats is a dozen lines to read exactly the way sysstat's `sscanf` calls do. Ours allocate
//! nothing once the buffers have grown to size.
//!
//! Files: `stat`, `meminfo`, `vmstat`, `loadavg` and `uptime` are mandatory (a [`SourceError`]
//! names the one missing); `diskstats`, `net/dev` and `pressure/*` are optional (their activities
//! are left out while they are missing or unreadable).

pub mod compute;
pub mod diskstats;
pub mod loadavg;
pub mod meminfo;
pub mod net_dev;
pub mod parse;
pub mod pressure;
mod sampler;
pub mod stat;
pub mod sysfs;
pub mod uptime;
pub mod vmstat;

use std::path::{Path, PathBuf};

pub use compute::{compute, SampleOut};
pub use sampler::Sampler;

/// Why `/proc` could not be sampled.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A mandatory file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A mandatory file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A mandatory file lacks what sar needs from it.
    #[error("{}: {what}", path.display())]
    Parse { path: PathBuf, what: String },
}

/// Everything read from `/proc` (and `/sys`) at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// `/proc/uptime` in hundredths of a second.
    pub uptime_cs: u64,
    pub stat: stat::Stat,
    pub meminfo: meminfo::Meminfo,
    pub vmstat: vmstat::Vmstat,
    pub loadavg: loadavg::LoadAvg,
    /// `None` without `/proc/diskstats`. Entries carry their `/sys` classification.
    pub disks: Option<Vec<diskstats::DiskStat>>,
    /// `None` without `/proc/net/dev`. Entries carry their link speed and duplex.
    pub net: Option<Vec<net_dev::NetDev>>,
    /// `None` without a readable `/proc/pressure/cpu`.
    pub psi_cpu: Option<pressure::Pressure>,
    pub psi_io: Option<pressure::Pressure>,
    pub psi_mem: Option<pressure::Pressure>,
}

impl Reading {
    /// Reads a whole `/proc` + `/sys` tree once (opening and closing the files). The
    /// [`Sampler`] does the same with files kept open; this is for one-off readings and tests.
    ///
    /// # Errors
    /// As [`Sampler::new`].
    pub fn read(proc_root: &Path, sys_root: &Path) -> Result<Reading, SourceError> {
        let mut s = Sampler::open(proc_root, sys_root)?;
        let mut r = Reading::default();
        s.read_into(&mut r)?;
        Ok(r)
    }
}
