//! The kernel's view of its clock, through `adjtimex(2)` with `modes = 0`: a read that changes
//! nothing and needs no privilege. Fleet never calls it with any other mode.
//!
//! What is reported ([`KernelClock`]):
//! - `synced`: `STA_UNSYNC` is clear in `status`;
//! - `est_error_ms`, `max_error_ms`: `esterror` and `maxerror` (kernel microseconds);
//! - `freq_ppm`: `freq`, the frequency correction, in units of 2^-16 ppm;
//! - `chronyd`: whether a process named `chronyd` runs (from `PROC_ROOT/*/comm`).
//!
//! # The chrony caveat
//!
//! The kernel's `STA_UNSYNC` flag is only as good as the daemon that clears it. chronyd clears
//! it (and keeps `maxerror` small) only when it runs with `rtcsync`, the kernel's 11-minute mode;
//! without `rtcsync`, or with `-x` (chronyd does not touch the clock at all), the kernel says
//! "unsynchronised" and `maxerror` grows to 16 s while chrony keeps the clock well
//! synchronised. So when chronyd runs, the kernel flag is not a verdict: Fleet's "is this host
//! synchronised" comes from the NTP measurements (`NtpServerStatus.synced` and the offsets),
//! and the collector's rules use those; `KernelClock.chronyd` tells the reader of
//! `KernelClock.synced` not to alarm on it. (ntpd and systemd-timesyncd do clear the flag
//! themselves, so for them it is meaningful.)
//!
//! Finding chronyd lists the proc root once (one `getdents` per 50 or so processes and one read
//! of `comm` per process: about a millisecond on a host with a few hundred processes), and only
//! when the chronyd found last time has gone: [`ChronydWatch`] remembers its pid.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use fleet_proto::v1::KernelClock;

/// The fields of `struct timex` Fleet reports, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimexReading {
    pub status: i32,
    /// Microseconds.
    pub esterror: i64,
    /// Microseconds.
    pub maxerror: i64,
    /// 2^-16 ppm.
    pub freq: i64,
}

/// Reads the kernel clock's state: `adjtimex` with `modes = 0`, which only reads.
///
/// # Errors
/// The system call's error (it has none on Linux for a read, short of seccomp filters).
pub fn read_timex() -> io::Result<TimexReading> {
    // SAFETY: an all-zero timex is a valid value (plain integers); modes = 0 means the kernel
    // only fills it in and changes nothing.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0;
    // SAFETY: `tx` is a valid, exclusively borrowed timex for the duration of the call.
    let rc = unsafe { libc::adjtimex(&mut tx) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(TimexReading {
        status: tx.status,
        esterror: tx.esterror as i64,
        maxerror: tx.maxerror as i64,
        freq: tx.freq as i64,
    })
}

/// The wire form of a reading.
pub fn kernel_clock(r: TimexReading, chronyd: bool) -> KernelClock {
    KernelClock {
        synced: r.status & libc::STA_UNSYNC == 0,
        est_error_ms: r.esterror as f64 / 1000.0,
        max_error_ms: r.maxerror as f64 / 1000.0,
        freq_ppm: r.freq as f64 / 65_536.0,
        chronyd,
    }
}

/// Whether chronyd runs, remembering where it was found.
#[derive(Debug, Clone)]
pub struct ChronydWatch {
    proc_root: PathBuf,
    /// The pid chronyd had at the last look; checked first (one read) before a full listing.
    last_pid: Option<u32>,
}

impl ChronydWatch {
    /// Watches the processes under `proc_root` (`/proc` on a real host).
    pub fn new(proc_root: &Path) -> ChronydWatch {
        ChronydWatch {
            proc_root: proc_root.to_path_buf(),
            last_pid: None,
        }
    }

    /// Whether a process named `chronyd` runs now.
    pub fn running(&mut self) -> bool {
        if let Some(pid) = self.last_pid {
            if self.is_chronyd(pid) {
                return true;
            }
        }
        self.last_pid = self.find();
        self.last_pid.is_some()
    }

    fn is_chronyd(&self, pid: u32) -> bool {
        fs::read(self.proc_root.join(pid.to_string()).join("comm"))
            .is_ok_and(|c| is_chronyd_comm(&c))
    }

    fn find(&self) -> Option<u32> {
        let rd = fs::read_dir(&self.proc_root).ok()?;
        rd.filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|&pid| self.is_chronyd(pid))
    }
}

/// Whether `/proc/PID/comm` content names chronyd.
pub fn is_chronyd_comm(comm: &[u8]) -> bool {
    comm.strip_suffix(b"\n").unwrap_or(comm) == b"chronyd"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_to_wire() {
        let k = kernel_clock(
            TimexReading {
                status: libc::STA_UNSYNC | libc::STA_PLL,
                esterror: 1500,
                maxerror: 16_000_000,
                freq: -3 * 65_536 - 32_768,
            },
            true,
        );
        assert!(!k.synced);
        assert_eq!(k.est_error_ms, 1.5);
        assert_eq!(k.max_error_ms, 16_000.0);
        assert_eq!(k.freq_ppm, -3.5);
        assert!(k.chronyd);
        let k = kernel_clock(
            TimexReading {
                status: libc::STA_PLL,
                ..TimexReading::default()
            },
            false,
        );
        assert!(k.synced);
    }

    #[test]
    fn reads_this_kernel() {
        let r = read_timex().expect("adjtimex(modes=0)");
        assert!(r.maxerror >= 0 && r.esterror >= 0, "{r:?}");
    }

    #[test]
    fn finds_chronyd_in_a_proc_tree() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path();
        let add = |pid: u32, comm: &str| {
            let d = proc.join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("comm"), comm).unwrap();
        };
        add(1, "init\n");
        add(42, "chronyd-helper\n");
        fs::create_dir_all(proc.join("self")).unwrap();
        let mut w = ChronydWatch::new(proc);
        assert!(!w.running());
        add(77, "chronyd\n");
        assert!(w.running());
        assert_eq!(w.last_pid, Some(77));
        fs::remove_dir_all(proc.join("77")).unwrap();
        assert!(!w.running());
        assert!(!ChronydWatch::new(&proc.join("missing")).running());
    }
}
