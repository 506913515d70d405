//! sar's activities, one file each: from two [`Reading`]s to the records sar would print.
//!
//! Each activity is a unit struct implementing [`SarActivity`] in its own module. Its
//! [`compute`](SarActivity::compute) follows one sysstat 12.6 function, which the module doc
//! names (mostly `pr_stats.c`, what sar prints; also `sa_common.c` for devices that come and
//! go, `rd_stats.c` for what sadc reads). It takes what it needs from the shared sources of the
//! [`Reading`] (`stat`, `meminfo`, `vmstat`, `loadavg`, `uptime`, `disks`, `net`), and from files
//! of its own: a file that no other activity reads is declared in the activity's
//! [`FILES`](SarActivity::FILES) (path under `proc_root`, mandatory or optional, pure parser),
//! and the [`Sampler`](super::Sampler) keeps it open and reads it into
//! [`Reading::own`] at every sample, with the shared ones.
//!
//! The list at the end of this file registers the activities, one line each, in wire-enum order:
//! the records of a sample come in that order, and a test checks the list against
//! `fleet_proto::schema::ACTIVITIES`. [`rates`] holds the delta and rate rules they share.

pub mod cpu;
pub mod disk;
pub mod io;
pub mod load;
pub mod memory;
pub mod net_dev;
pub mod net_edev;
pub mod paging;
pub mod psi_cpu;
pub mod psi_io;
pub mod psi_mem;
pub mod rates;
pub mod swap;
pub mod swapping;

use fleet_proto::v1::{Activity, Record};

use super::parse::ParseError;
use super::{Reading, SourceError};
use rates::interval_cs;

/// One sar activity. See the [module doc](self) and the modules below for examples.
pub trait SarActivity {
    /// Its value on the wire: every record it makes carries it.
    const ACTIVITY: Activity;

    /// What it reads from files of its own (`()` when it has none): the parsers of
    /// [`FILES`](Self::FILES) fill it, and [`Interval::own`] gives it back for both readings.
    type Own: Default + Clone + std::fmt::Debug + PartialEq + 'static;

    /// The files under `proc_root` only this activity reads, in the order they are read.
    const FILES: &'static [OwnFile<Self::Own>] = &[];

    /// Appends its records for the interval (none when what it needs is missing), values in
    /// `fleet_proto::schema` column order.
    fn compute(x: &Interval<'_, Self::Own>, out: &mut Vec<Record>);

    /// Adjusts `next`, the reading the next interval will start from, after the interval from
    /// `prev` to it was computed. Only the CPU activity needs this (sysstat carries an offline
    /// CPU's last values forward); the default does nothing.
    fn carry_forward(_prev: &Reading, _next: &mut Reading) {}
}

/// A file under `proc_root` that one activity reads.
pub struct OwnFile<T: 'static> {
    /// Its path relative to `proc_root`, e.g. `"pressure/cpu"`.
    pub path: &'static str,
    /// Mandatory (the sampler fails with a [`SourceError`] naming the file when it cannot be
    /// opened, read or parsed), or optional (the activity is left out while the file is missing,
    /// unreadable or unparsable; it is opened once, when the sampler starts).
    pub required: bool,
    /// The kernel makes the file in one piece (seq_file's `single_open`, as `pressure/*`): a
    /// read shorter than the buffer is all of it, so one `pread` reads it (see
    /// `sampler::ProcFile`).
    pub whole: bool,
    /// Pure parser of the file's content into the activity's reading, overwriting what an
    /// earlier parse left there (the reading is reused from sample to sample, to keep its
    /// allocations).
    pub parse: fn(&[u8], &mut T) -> Result<(), ParseError>,
}

/// What an activity computes from: the two readings, the time between them, and its own files.
#[derive(Debug, Clone, Copy)]
pub struct Interval<'a, O = ()> {
    pub prev: &'a Reading,
    pub curr: &'a Reading,
    /// Elapsed time in hundredths of a second, at least 1 (see [`rates::interval_cs`]).
    pub itv: u64,
    /// The activity's own files at `prev`; `None` while an optional one is missing (and for an
    /// activity without files).
    pub own_prev: Option<&'a O>,
    /// The same at `curr`.
    pub own_curr: Option<&'a O>,
}

impl<O> Interval<'_, O> {
    /// The activity's own files at both readings, when both have them.
    pub fn own(&self) -> Option<(&O, &O)> {
        Some((self.own_prev?, self.own_curr?))
    }
}

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

impl SampleOut {
    /// The output of an interval of `itv` hundredths of a second.
    pub(super) fn new(itv: u64, records: Vec<Record>) -> SampleOut {
        SampleOut {
            interval_ms: u32::try_from(itv.saturating_mul(10)).unwrap_or(u32::MAX),
            records,
        }
    }
}

/// A record of `activity`, its length checked against the schema in debug builds.
pub fn record(activity: Activity, instance: impl Into<String>, values: Vec<f64>) -> Record {
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
    let mut records = Vec::new();
    let itv = compute_into(prev, curr, &mut records);
    SampleOut::new(itv, records)
}

/// Runs one activity over the interval.
#[inline]
fn compute_one<A: SarActivity>(
    prev: &Reading,
    curr: &Reading,
    itv: u64,
    own: (Option<&A::Own>, Option<&A::Own>),
    out: &mut Vec<Record>,
) {
    let at = out.len();
    A::compute(
        &Interval {
            prev,
            curr,
            itv,
            own_prev: own.0,
            own_curr: own.1,
        },
        out,
    );
    debug_assert!(
        out[at..].iter().all(|r| r.activity == A::ACTIVITY as i32),
        "{:?} made records of another activity",
        A::ACTIVITY
    );
}

/// Something done to each activity's own reading in list order: the sampler reads the activities'
/// files with it.
pub(super) trait VisitOwn {
    fn visit<A: SarActivity>(&mut self, own: &mut Option<A::Own>) -> Result<(), SourceError>;
}

/// The list: `field: module::Type`, one line per activity in wire-enum order. It generates
/// [`Own`] (a field per activity), [`ORDER`], [`compute_into`] and the sampler's per-activity
/// loops, so that nothing else has to name the activities.
macro_rules! activities {
    ($($name:ident: $sar:ty,)*) => {
        /// What each activity read from its own files ([`SarActivity::Own`]): `None` while an
        /// optional file is missing or unreadable, and always for an activity without files.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Own {
            $(pub $name: Option<<$sar as SarActivity>::Own>,)*
        }

        /// The activities in the order they are computed.
        pub const ORDER: &[Activity] = &[$(<$sar as SarActivity>::ACTIVITY,)*];

        /// [`compute`] appending to `out`; returns the interval in hundredths of a second.
        pub fn compute_into(prev: &Reading, curr: &Reading, out: &mut Vec<Record>) -> u64 {
            let itv = interval_cs(prev.uptime_cs, curr.uptime_cs);
            $(compute_one::<$sar>(
                prev,
                curr,
                itv,
                (prev.own.$name.as_ref(), curr.own.$name.as_ref()),
                out,
            );)*
            itv
        }

        /// Every activity's [`SarActivity::carry_forward`].
        pub(super) fn carry_forward(prev: &Reading, next: &mut Reading) {
            $(<$sar as SarActivity>::carry_forward(prev, next);)*
        }

        /// Path and whether it is mandatory, of every activity's own file, in list order.
        pub(super) fn own_files() -> Vec<(&'static str, bool, bool)> {
            let mut files = Vec::new();
            $(files.extend(
                <$sar as SarActivity>::FILES.iter().map(|f| (f.path, f.required, f.whole)),
            );)*
            files
        }

        /// Calls `v` with each activity's own reading, in list order.
        pub(super) fn visit_own(v: &mut impl VisitOwn, own: &mut Own) -> Result<(), SourceError> {
            $(v.visit::<$sar>(&mut own.$name)?;)*
            Ok(())
        }
    };
}

activities! {
    cpu: cpu::Cpu,
    memory: memory::Memory,
    swap: swap::Swap,
    swapping: swapping::Swapping,
    paging: paging::Paging,
    io: io::Io,
    disk: disk::Disk,
    load: load::Load,
    net_dev: net_dev::NetDev,
    net_edev: net_edev::NetEdev,
    psi_cpu: psi_cpu::PsiCpu,
    psi_io: psi_io::PsiIo,
    psi_mem: psi_mem::PsiMem,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_the_schema_in_wire_order() {
        let schema: Vec<Activity> = fleet_proto::schema::ACTIVITIES
            .iter()
            .map(|s| s.activity)
            .collect();
        assert_eq!(ORDER, schema, "one line per schema activity, in wire order");
    }
}
