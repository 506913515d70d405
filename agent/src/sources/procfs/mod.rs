//! sar's activities, computed from `/proc` and `/sys` as sysstat 12.6 computes them.
//!
//! Layout:
//! - [`activity`]: one file per sar activity (`activity/cpu.rs`, `memory.rs`, ... `psi_mem.rs`),
//!   each a [`SarActivity`](activity::SarActivity) whose `compute` turns two readings into
//!   records and cites the sysstat function it follows, and which declares the files only it
//!   reads (`psi_*` declare `pressure/*`); `activity/mod.rs` holds the trait and the list of
//!   activities, `activity/rates.rs` the delta and rate rules;
//! - shared sources, the files several activities read, as pure parsers over `&[u8]` returning
//!   typed structs (each module doc shows a real example of its input): [`stat`], [`meminfo`],
//!   [`vmstat`], [`diskstats`], [`net_dev`], [`loadavg`], [`uptime`]; [`pressure`] is the format
//!   of the three `pressure/*` files; [`sysfs`] the block device and link facts sar takes from
//!   `/sys`; [`parse`] the shared byte helpers;
//! - [`Reading`]: everything read at one instant, shared sources and each activity's own files;
//! - [`Sampler`] (`sampler.rs`): keeps every file open, re-reads them with `pread` into one
//!   reused buffer, keeps the previous reading, and hands out a [`SampleOut`] per call.
//!
//! To add an activity (say `sar -n SOCK`), four files and a registration:
//! 1. `proto/fleet/v1/fleet.proto`: its value in `enum Activity`;
//! 2. `proto/src/schema.rs`: its entry in `ACTIVITIES`, in wire order (sysstat's column names);
//! 3. `agent/src/sources/procfs/activity/<name>.rs`: a unit struct implementing
//!    [`SarActivity`](activity::SarActivity): `ACTIVITY`; `compute`, citing the sysstat function
//!    it follows, pushing one [`activity::record`] per instance; `type Own = ()` when the shared
//!    sources of the [`Reading`] have what it needs. When it needs a file no other activity
//!    reads, the same file holds that file's pure parser (a real example of the input in the
//!    module doc, a test on it), `type Own` the parser's output, and `FILES` the file's
//!    declaration: path under `proc_root`, mandatory or optional, parser. The sampler then keeps
//!    it open and re-reads it with the others, and `compute` finds it in `Interval::own()` (both
//!    readings, for rates) or `Interval::own_curr` (a count at the instant). `swapping.rs` is a
//!    short example without a file of its own, `psi_cpu.rs` one with;
//!
//!    registered in `activity/mod.rs` by `pub mod <name>;` and its line in the `activities!`
//!    list, at its wire position (`list_is_the_schema_in_wire_order` checks the list);
//! 4. `ctl/src/cmd/sar/mod.rs`: the `fleetctl sar` flag that selects it, and its place in
//!    `SAR_ORDER` (sysstat's order of activities).
//!
//! And in the tests, `agent/tests/sar_compare.rs`: its tolerance (the match there is exhaustive)
//! and its sar flag, so that it is compared with the real sar. An activity that needs one more
//! field of a shared file (`sar -w`: `processes` and `ctxt` of `/proc/stat`) adds the field to
//! the shared parser ([`stat`] there) rather than reading the file a second time: one more file.
//! A new file that several activities read becomes a shared source: its parser here, a field of
//! [`Reading`] and its read in `Sampler::read_into`.
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

pub mod activity;
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

pub use activity::{compute, compute_into, SampleOut};
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
    /// What each activity read from the files only it reads (`own.psi_cpu` is
    /// `/proc/pressure/cpu`, `None` without it).
    pub own: activity::Own,
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
