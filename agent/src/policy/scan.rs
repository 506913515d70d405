//! Reading [`ProcessInfo`] from a proc root, and noticing new processes cheaply.
//!
//! For each pid the scanner opens `/proc/PID` once ([`ProcDir`]) and reads, relative to it, so
//! every value comes from the same process even if its pid is reused meanwhile:
//! - `stat`: comm, ppid and starttime (field 22, clock ticks since boot), which with the pid
//!   identifies a process even after its pid is reused:
//!   `4242 (java) S 1 4242 4242 0 -1 4194560 … 0 20 0 54 0 1234567 …`
//! - the `exe` link: its text, and the device and inode of the running image it leads to,
//!   compared with the file at that path in the host's mount namespace ([`HostView`]);
//! - `ns/mnt`: whether the process lives in the host's mount namespace;
//! - `cmdline` (NUL-separated), `status` (`Uid:` real, effective, saved, fs), `cgroup`,
//!   `oom_score_adj` and `statm` (resident pages, second field).
//!
//! [`ProcScanner::tick`] reads, of a process it examines, what [`Needs`] asks for: always `stat`
//! and `cmdline` (an empty one tells a process still inside execve); the exe identity, `status`
//! and `cgroup` only when a policy matches on them; `oom_score_adj` and `statm` not at all. The
//! enforcer reads in full ([`ProcScanner::read`]) only the few processes a policy may hold, so a
//! process no policy wants (most of those a busy host starts) costs two small files.
//!
//! Before it lists anything, a tick reads `loadavg`, whose last two numbers are the threads in
//! the system and the last pid created (`0.11 0.61 0.90 1/234 12345`): when neither moved since
//! the last tick, no process started or exited, and the tick lists nothing (a quiet host's
//! ticks then cost one small read, not a `getdents64` of the whole proc root, which is the
//! dearest part). Only when the proc root is the agent's own pid namespace (its `self` is this
//! process), since the last pid is that of the reader's namespace.
//!
//! [`ProcScanner::tick`] lists the proc root and examines only the pids it has not seen (and,
//! once more, those first seen on the previous tick, since a process seen between fork and exec
//! still carries its parent's name); it forgets the pids that vanished. Its steady-state cost is
//! one readdir. Every [`FULL_RESCAN_EVERY`] a tick examines every process again, so a process
//! that exec'd another program or retitled itself (sshd's `[listener]`) is matched by what it is
//! now, and a value someone reset is set again. A pid that exits and is reused between two ticks
//! is not noticed: with pid_max at 4194304 by default that takes millions of forks within a
//! second.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use fleet_policy::ProcessInfo;

use super::host::HostView;
use super::procdir::ProcDir;

/// The pid of kthreadd; it and its children are kernel threads, which no policy applies to.
const KTHREADD: u32 = 2;

/// How often a tick examines every process, not only new ones.
pub const FULL_RESCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What [`ProcScanner::tick`] reads of a process besides `stat` and `cmdline` (by default,
/// everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The exe link, its image's identity and the mount namespace (`exe:` matchers).
    pub exe: bool,
    /// `status`, for the real uid (`user:`).
    pub uid: bool,
    /// `cgroup` (`cgroup:`, `unit:`).
    pub cgroup: bool,
    /// `oom_score_adj` and `statm`: a process read without them is left out when it exits
    /// between its reads only if `oom_score_adj` was wanted.
    pub values: bool,
}

impl Needs {
    /// Every field of [`ProcessInfo`].
    pub const ALL: Needs = Needs {
        exe: true,
        uid: true,
        cgroup: true,
        values: true,
    };

    /// What matching processes against these matchers reads (`comm`, `ppid`, `starttime` and
    /// `cmdline` are always read).
    pub fn of<'a>(matchers: impl IntoIterator<Item = &'a fleet_policy::doc::Matcher>) -> Needs {
        let mut needs = Needs {
            exe: false,
            uid: false,
            cgroup: false,
            values: false,
        };
        for m in matchers {
            needs.exe |= m.exe.is_some();
            needs.uid |= m.user.is_some();
            needs.cgroup |= m.cgroup.is_some() || m.unit.is_some();
        }
        needs
    }
}

/// What one [`ProcScanner::tick`] found.
#[derive(Debug, Default)]
pub struct Tick {
    /// Processes not seen before (or first seen on the previous tick), read now.
    pub examined: Vec<ProcessInfo>,
    /// Pids that are no longer listed.
    pub vanished: Vec<u32>,
}

/// Reads processes from `proc_root`, remembering which pids it has seen.
pub struct ProcScanner {
    proc_root: PathBuf,
    /// The host's mount namespace and root, for `exe:` identity.
    host: HostView,
    page_kb: u64,
    /// Every pid listed on the last tick, with its starttime once read.
    known: HashMap<u32, u64>,
    /// Pids first examined on the last tick: examined once more.
    young: Vec<u32>,
    /// Reused by every read.
    buf: Vec<u8>,
    listed: HashSet<u32>,
    /// When every process was last examined.
    last_full: Option<std::time::Instant>,
    full_every: std::time::Duration,
    /// What a tick reads of each process it examines.
    needs: Needs,
    /// Whether `loadavg` tells when nothing started or exited: the proc root is of this
    /// process's pid namespace.
    own_namespace: bool,
    /// The threads and the last pid `loadavg` showed at the last tick that listed.
    activity: Option<(u64, u64)>,
}

impl ProcScanner {
    /// A scanner of `proc_root` (`/proc` on a host, a fixture tree in tests).
    pub fn new(proc_root: &Path) -> ProcScanner {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        ProcScanner {
            proc_root: proc_root.to_path_buf(),
            host: HostView::detect(proc_root),
            page_kb: if page > 0 { page as u64 / 1024 } else { 4 },
            known: HashMap::new(),
            young: Vec::new(),
            buf: Vec::with_capacity(4096),
            listed: HashSet::new(),
            last_full: None,
            full_every: FULL_RESCAN_EVERY,
            needs: Needs::ALL,
            own_namespace: std::fs::read_link(proc_root.join("self"))
                .is_ok_and(|l| l.as_os_str() == std::process::id().to_string().as_str()),
            activity: None,
        }
    }

    /// Changes how often a tick examines every process (default [`FULL_RESCAN_EVERY`]).
    pub fn set_full_rescan(&mut self, every: std::time::Duration) {
        self.full_every = every;
    }

    /// Sets what [`ProcScanner::tick`] reads of each process it examines (default
    /// [`Needs::ALL`]); the fields left out keep their defaults.
    pub fn set_needs(&mut self, needs: Needs) {
        self.needs = needs;
    }

    /// The proc root.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// The host's mount namespace, as the scanner found it.
    pub fn host(&self) -> &HostView {
        &self.host
    }

    /// The pids listed in the proc root, kernel threads included.
    ///
    /// # Errors
    /// The proc root cannot be listed.
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir(&self.proc_root)? {
            let entry = entry?;
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                pids.push(pid);
            }
        }
        Ok(pids)
    }

    /// Every process now (kernel threads left out), read afresh. Marks them seen, so the next
    /// [`ProcScanner::tick`] examines only processes started after this.
    ///
    /// # Errors
    /// The proc root cannot be listed.
    pub fn scan_all(&mut self) -> io::Result<Vec<ProcessInfo>> {
        let pids = self.pids()?;
        let mut out = Vec::with_capacity(pids.len());
        self.known.clear();
        self.young.clear();
        self.host.forget();
        self.last_full = Some(std::time::Instant::now());
        for pid in pids {
            self.known.insert(pid, 0);
            if let Some(p) = self.read(pid) {
                self.known.insert(pid, p.starttime);
                if p.cmdline.is_empty() {
                    // Caught inside execve: the kernel fills in the new argv only after
                    // waking a vfork parent, so look again next tick.
                    self.young.push(pid);
                }
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Lists the proc root; reads only new pids (and last tick's new ones once more).
    ///
    /// # Errors
    /// The proc root cannot be listed.
    pub fn tick(&mut self) -> io::Result<Tick> {
        let full = self
            .last_full
            .is_none_or(|t| t.elapsed() >= self.full_every);
        let activity = self.activity();
        if !full && self.young.is_empty() && activity.is_some() && activity == self.activity {
            return Ok(Tick::default());
        }
        self.activity = activity;
        let mut listed = std::mem::take(&mut self.listed);
        listed.clear();
        for entry in std::fs::read_dir(&self.proc_root)? {
            let entry = entry?;
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            {
                listed.insert(pid);
            }
        }
        let mut tick = Tick::default();
        self.host.forget();
        self.known.retain(|pid, _| {
            let keep = listed.contains(pid);
            if !keep {
                tick.vanished.push(*pid);
            }
            keep
        });
        if full {
            self.last_full = Some(std::time::Instant::now());
        }
        let mut new_pids: Vec<u32> = listed
            .iter()
            .copied()
            .filter(|pid| !self.known.contains_key(pid))
            .collect();
        new_pids.sort_unstable();
        let fresh: Vec<u32> = if full {
            let mut all: Vec<u32> = listed.iter().copied().collect();
            all.sort_unstable();
            all
        } else {
            new_pids.clone()
        };
        let again: Vec<u32> = std::mem::take(&mut self.young)
            .into_iter()
            .filter(|pid| listed.contains(pid) && fresh.binary_search(pid).is_err())
            .collect();
        // New pids are examined once more on the next tick (fork then exec).
        let mut young = new_pids;
        for &pid in again.iter().chain(&fresh) {
            self.known.insert(pid, 0);
            if let Some(p) = self.read_with(pid, self.needs) {
                self.known.insert(pid, p.starttime);
                // A process still inside execve (empty argv, see scan_all) is read again until
                // its command line is there.
                if p.cmdline.is_empty() {
                    if let Err(at) = young.binary_search(&pid) {
                        young.insert(at, pid);
                    }
                }
                tick.examined.push(p);
            }
        }
        self.young = young;
        self.listed = listed;
        Ok(tick)
    }

    /// The threads in the system and the last pid created, from `loadavg`; `None` when the
    /// proc root is not this process's pid namespace or the file does not parse.
    fn activity(&mut self) -> Option<(u64, u64)> {
        if !self.own_namespace {
            return None;
        }
        let mut f = std::fs::File::open(self.proc_root.join("loadavg")).ok()?;
        self.buf.clear();
        std::io::Read::read_to_end(&mut f, &mut self.buf).ok()?;
        parse_loadavg_activity(&self.buf)
    }

    /// The starttime of `pid` now, or `None` when it is gone.
    pub fn starttime(&mut self, pid: u32) -> Option<u64> {
        ProcDir::open(&self.proc_root, pid).ok()?.starttime()
    }

    /// Opens `/proc/PID` (for a write through it, see [`ProcDir`]).
    ///
    /// # Errors
    /// The process is gone, or its directory cannot be opened.
    pub fn open(&self, pid: u32) -> io::Result<ProcDir> {
        ProcDir::open(&self.proc_root, pid)
    }

    /// Reads one process; `None` when it is gone (or is a kernel thread).
    pub fn read(&mut self, pid: u32) -> Option<ProcessInfo> {
        self.read_with(pid, Needs::ALL)
    }

    /// Reads what `needs` asks for of one process, with `stat` and `cmdline`.
    fn read_with(&mut self, pid: u32, needs: Needs) -> Option<ProcessInfo> {
        if pid == KTHREADD {
            return None;
        }
        let dir = ProcDir::open(&self.proc_root, pid).ok()?;
        dir.read("stat", &mut self.buf).ok()?;
        let stat = parse_stat(&self.buf)?;
        if stat.ppid == KTHREADD {
            return None;
        }
        let mut info = ProcessInfo {
            pid,
            ppid: stat.ppid,
            comm: stat.comm,
            starttime: stat.starttime,
            ..ProcessInfo::default()
        };
        if needs.exe {
            // Unreadable for other users' processes without CAP_SYS_PTRACE: matched as absent,
            // and reported by the policies it could have matched (`exe_denied`). Kernel threads
            // and zombies have none (ENOENT).
            match dir.readlink("exe") {
                Ok(exe) => info.exe = Some(exe),
                Err(e) => info.exe_denied = e.raw_os_error() == Some(libc::EACCES),
            }
            info.exe_id = dir.target_id("exe").ok();
            info.exe_at_path = match (&info.exe, info.exe_id) {
                (Some(path), Some(id)) => self.host.file_id(path) == Some(id),
                _ => false,
            };
            info.foreign_mount_ns = self.host.is_foreign(dir.target_id("ns/mnt").ok());
        }
        if dir.read("cmdline", &mut self.buf).is_ok() {
            let bytes = self.buf.strip_suffix(b"\0").unwrap_or(&self.buf);
            info.cmdline = String::from_utf8_lossy(bytes).replace('\0', " ");
        }
        if needs.uid && dir.read("status", &mut self.buf).is_ok() {
            info.uid = parse_status_uid(&self.buf).unwrap_or(0);
        }
        if needs.cgroup && dir.read("cgroup", &mut self.buf).is_ok() {
            info.cgroup = String::from_utf8_lossy(&self.buf).into_owned();
        }
        if needs.values {
            // The process may exit between the reads: what it had at its last file counts.
            dir.read("oom_score_adj", &mut self.buf).ok()?;
            info.oom_score_adj = std::str::from_utf8(&self.buf).ok()?.trim().parse().ok()?;
            if dir.read("statm", &mut self.buf).is_ok() {
                info.rss_kb = parse_statm_resident(&self.buf).unwrap_or(0) * self.page_kb;
            }
        }
        Some(info)
    }
}

/// The fields of /proc/PID/stat the scanner uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    pub starttime: u64,
}

/// Parses /proc/PID/stat. The comm is between the first `(` and the last `)`, since it may
/// itself contain parentheses and spaces.
pub fn parse_stat(bytes: &[u8]) -> Option<Stat> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = String::from_utf8_lossy(&bytes[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(&bytes[close + 1..]).ok()?;
    // rest starts at field 3 (state): ppid is field 4, starttime field 22.
    let mut fields = rest.split_ascii_whitespace();
    let ppid = fields.nth(1)?.parse().ok()?;
    let starttime = fields.nth(17)?.parse().ok()?;
    Some(Stat {
        comm,
        ppid,
        starttime,
    })
}

/// The threads in the system and the last pid created: the fourth field's denominator and the
/// fifth field of `/proc/loadavg` (`0.11 0.61 0.90 1/234 12345`).
pub fn parse_loadavg_activity(bytes: &[u8]) -> Option<(u64, u64)> {
    let mut fields = std::str::from_utf8(bytes).ok()?.split_ascii_whitespace();
    let threads = fields.nth(3)?.split_once('/')?.1.parse().ok()?;
    let last_pid = fields.next()?.parse().ok()?;
    Some((threads, last_pid))
}

/// The real uid from /proc/PID/status (`Uid:` then real, effective, saved and fs uids).
pub fn parse_status_uid(bytes: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(bytes).ok()?;
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line["Uid:".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident pages: the second field of /proc/PID/statm.
pub fn parse_statm_resident(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes)
        .ok()?
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_in_comm() {
        let line = b"4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 54 0 1234567 1000 300 18446744073709551615\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: "we ird) (x)".into(),
                ppid: 1,
                starttime: 1_234_567
            })
        );
        assert_eq!(parse_stat(b"12 (x) S"), None);
    }

    /// On the real /proc: a tick reads only what the matchers need, a full read everything.
    #[test]
    fn a_tick_reads_what_the_matchers_need() {
        let me = std::process::id();
        let mut scanner = ProcScanner::new(Path::new("/proc"));
        scanner.set_needs(Needs::of([]));
        let tick = scanner.tick().unwrap();
        let light = tick.examined.iter().find(|p| p.pid == me).expect("itself");
        assert!(!light.comm.is_empty() && !light.cmdline.is_empty() && light.starttime > 0);
        assert_eq!(
            (light.exe_id, light.rss_kb, &light.cgroup[..]),
            (None, 0, "")
        );
        let full = scanner.read(me).unwrap();
        assert!(full.exe_id.is_some() && full.rss_kb > 0 && !full.cgroup.is_empty());
        assert_eq!(
            (full.starttime, &full.cmdline),
            (light.starttime, &light.cmdline)
        );
    }

    #[test]
    fn loadavg_threads_and_last_pid() {
        assert_eq!(
            parse_loadavg_activity(b"0.11 0.61 0.90 1/234 12345\n"),
            Some((234, 12345))
        );
        assert_eq!(parse_loadavg_activity(b"0.11 0.61 0.90 1 12345\n"), None);
    }

    /// On the real /proc: a tick after a new process lists it; a quiet one may list nothing.
    #[test]
    fn a_new_process_is_examined_at_the_next_tick() {
        let mut scanner = ProcScanner::new(Path::new("/proc"));
        assert!(
            scanner.own_namespace,
            "the test runs in its /proc's namespace"
        );
        scanner.tick().unwrap();
        scanner.tick().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let seen = scanner.tick().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen.examined.iter().any(|p| p.pid == child.id()));
        let gone = (0..3).any(|_| scanner.tick().unwrap().vanished.contains(&child.id()));
        assert!(gone, "its exit is noticed");
    }

    #[test]
    fn status_and_statm() {
        let status = b"Name:\tsshd\nUmask:\t0022\nState:\tS (sleeping)\nPPid:\t1\nUid:\t105\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_status_uid(status), Some(105));
        assert_eq!(
            parse_statm_resident(b"3000 812 500 100 0 400 0\n"),
            Some(812)
        );
    }
}
