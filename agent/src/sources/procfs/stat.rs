//! `/proc/stat`: CPU times and the number of blocked tasks.
//!
//! A real example (2 CPUs, the `intr` and `softirq` lines shortened):
//!
//! ```text
//! cpu  57732 0 6351 1551420 491 0 50 25 0 0
//! cpu0 28441 0 2910 776503 112 0 8 11 0 0
//! cpu1 29290 0 3440 774917 379 0 41 13 0 0
//! intr 459777 0 0 0 0 0 ...
//! ctxt 559744
//! btime 1795637043
//! processes 9744
//! procs_running 1
//! procs_blocked 0
//! softirq 354854 0 94303 4 5447 40425 0 237 125617 0 88821
//! ```
//!
//! CPU columns, in jiffies: user nice system idle iowait irq softirq steal guest guest_nice.
//! As in sysstat's `read_stat_cpu` (rd_stats.c), columns an old kernel does not print are zero,
//! and `user`/`nice` already include `guest`/`guest_nice`. An offline CPU has no `cpuN` line.

use super::parse::{fields, lines, next_u64, strip, u64_field, ParseError};

/// sysstat's `NR_CPUS`: CPU numbers at or above it are ignored (a garbled `cpu4000000000` line
/// must not allocate a huge table).
pub const MAX_CPUS: usize = 16384;

/// Jiffies one CPU (or all of them) spent in each state since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
    pub guest_nice: u64,
}

impl CpuTimes {
    /// Total jiffies, without guest and guest_nice (already in user and nice), as sysstat sums
    /// them in `get_global_cpu_statistics`.
    pub fn total(&self) -> u64 {
        self.user
            .wrapping_add(self.nice)
            .wrapping_add(self.system)
            .wrapping_add(self.idle)
            .wrapping_add(self.iowait)
            .wrapping_add(self.irq)
            .wrapping_add(self.steal)
            .wrapping_add(self.softirq)
    }

    /// Reads the numbers after the `cpu`/`cpuN` label. `None` if fewer than the four columns
    /// every kernel prints are numbers.
    fn parse<'a>(mut it: impl Iterator<Item = &'a [u8]>) -> Option<CpuTimes> {
        let mut v = [0u64; 10];
        let mut n = 0;
        for slot in &mut v {
            match next_u64(&mut it) {
                Some(x) => {
                    *slot = x;
                    n += 1;
                }
                // Like sscanf: stop at the first column that is not there.
                None => break,
            }
        }
        if n < 4 {
            return None;
        }
        Some(CpuTimes {
            user: v[0],
            nice: v[1],
            system: v[2],
            idle: v[3],
            iowait: v[4],
            irq: v[5],
            softirq: v[6],
            steal: v[7],
            guest: v[8],
            guest_nice: v[9],
        })
    }
}

/// What Fleet uses from `/proc/stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    /// The `cpu` line (all CPUs).
    pub all: CpuTimes,
    /// `cpus[n]` is the `cpuN` line; `None` for a CPU without a line (offline).
    pub cpus: Vec<Option<CpuTimes>>,
    pub procs_running: u64,
    pub procs_blocked: u64,
}

/// Parses `/proc/stat`.
///
/// # Errors
/// When there is no valid `cpu ` line. Other garbled lines are skipped.
pub fn parse(buf: &[u8]) -> Result<Stat, ParseError> {
    let mut s = Stat::default();
    parse_into(buf, &mut s)?;
    Ok(s)
}

/// [`parse`] into `out`, reusing its CPU table.
///
/// # Errors
/// As [`parse`].
pub fn parse_into(buf: &[u8], out: &mut Stat) -> Result<(), ParseError> {
    out.cpus.clear();
    out.procs_running = 0;
    out.procs_blocked = 0;
    let mut seen_all = false;
    for line in lines(buf) {
        if let Some(rest) = strip(line, b"cpu") {
            let mut it = fields(rest);
            if rest.first().is_some_and(u8::is_ascii_whitespace) {
                if let Some(t) = CpuTimes::parse(it) {
                    out.all = t;
                    seen_all = true;
                }
                continue;
            }
            let Some(n) = it.next().and_then(u64_field) else {
                continue;
            };
            let Ok(n) = usize::try_from(n) else { continue };
            if n >= MAX_CPUS {
                continue;
            }
            if let Some(t) = CpuTimes::parse(it) {
                if out.cpus.len() <= n {
                    out.cpus.resize(n + 1, None);
                }
                out.cpus[n] = Some(t);
            }
        } else if let Some(rest) = strip(line, b"procs_running ") {
            out.procs_running = fields(rest).next().and_then(u64_field).unwrap_or(0);
        } else if let Some(rest) = strip(line, b"procs_blocked ") {
            out.procs_blocked = fields(rest).next().and_then(u64_field).unwrap_or(0);
        }
    }
    if seen_all {
        Ok(())
    } else {
        Err(ParseError("no \"cpu\" line"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "cpu  57732 0 6351 1551420 491 0 50 25 0 0\n\
cpu0 28441 0 2910 776503 112 0 8 11 0 0\n\
cpu1 29290 0 3440 774917 379 0 41 13 0 0\n\
intr 459777 0 0 0 0 0\n\
ctxt 559744\n\
btime 1795637043\n\
processes 9744\n\
procs_running 1\n\
procs_blocked 0\n\
softirq 354854 0 94303 4 5447 40425 0 237 125617 0 88821\n";

    #[test]
    fn real_file() {
        let s = parse(REAL.as_bytes()).expect("parses");
        assert_eq!(s.all.user, 57732);
        assert_eq!(s.all.idle, 1551420);
        assert_eq!(s.all.steal, 25);
        assert_eq!(s.cpus.len(), 2);
        let c1 = s.cpus[1].expect("cpu1");
        assert_eq!(c1.system, 3440);
        assert_eq!(c1.softirq, 41);
        assert_eq!(c1.total(), 29290 + 3440 + 774917 + 379 + 41 + 13);
        assert_eq!((s.procs_running, s.procs_blocked), (1, 0));
    }

    #[test]
    fn offline_cpu_and_garbage() {
        let text = "cpu  10 0 10 100\ncpu0 5 0 5 50\ncpu2 5 0 5 50 1 2 3\ncpuX 1 2 3 4\n\
cpu3 1 2\ncpu99999999 1 2 3 4\nprocs_blocked 4\n";
        let s = parse(text.as_bytes()).expect("parses");
        assert_eq!(s.cpus.len(), 3);
        assert!(s.cpus[1].is_none(), "cpu1 offline");
        assert_eq!(s.cpus[2].map(|c| c.softirq), Some(3));
        assert_eq!(s.procs_blocked, 4);
    }

    #[test]
    fn missing_cpu_line_is_an_error() {
        assert!(parse(b"cpu0 1 2 3 4\n").is_err());
        assert!(parse(b"").is_err());
    }
}
