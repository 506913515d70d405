//! Reading [`ProcessInfo`] from a proc root, and noticing new processes cheaply.
//!
//! For each pid the scanner opens `/proc/PID` once ([`ProcDir`]) and reads, relative to it, so
//! every value comes from the same process even if its pid is reused meanwhile:
//! - `stat`: comm, ppid, the flags (a kernel thread has `PF_KTHREAD`), and starttime (field 22,
//!   clock ticks since boot), which with the pid identifies a process even after its pid is
//!   reused:
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
//! the last tick, no process started or exited, and the tick reads nothing more. Only when the
//! proc root is the agent's own pid namespace (its `self` is this process), since the last pid
//! is that of the reader's namespace.
//!
//! When the last pid moved by at most [`PROBE_MAX`], the tick does not list the proc root (a
//! `getdents64` of every process, the dearest part of a tick on a host with many): the kernel
//! hands out pids in increasing order (wrapping at `pid_max`), so every task created since the
//! last tick has a pid in between, and the tick opens each of those pids' directories
//! (`/proc/PID` opens for any task, listed or not). A thread (`stat`'s thread count above one
//! and `status`' `Tgid:` another pid) and a kernel thread are passed over. A pid already
//! allocated but whose task is not yet attached (fork still under way) or already gone answers
//! `ENOENT`; it is tried once more at the next tick, so a fork caught half-way is not missed
//! (and that look counts as its first). The tick lists instead when the last pid moved further,
//! and at every [`FULL_RESCAN_EVERY`]. After a listing that followed a larger jump, the next
//! tick that sees activity lists again, since a task still being forked during that listing is
//! not listed.
//!
//! A tick examines only the pids it has not seen (and, once more, those first seen on the
//! previous tick, since a process seen between fork and exec still carries its parent's name;
//! that second look reads the `stat` kept open from the first, and goes further only when it
//! shows an exec).
//! Every [`FULL_RESCAN_EVERY`] a tick examines every process again, so a process that exec'd
//! another program or retitled itself (sshd's `[listener]`) is matched by what it is now, and a
//! value someone reset is set again. Kernel threads (most pids on an idle host, hundreds on one
//! with many CPUs) are read once: a full rescan, and [`ProcScanner::scan_all`], pass over a pid
//! listed with the directory inode it had when it was found to be a kernel thread (the inode
//! number comes with the listing; a pid used by a new task gets a new one). Exits are noticed
//! when a tick opens the pid again (a new process that exits by its second look) and otherwise
//! at the full rescan's listing, not sooner: a listing instantiates a dentry for every process,
//! the dearest thing a tick does, and only the policies' status (a held process that exited is
//! listed until then) would gain.
//! A pid is not handed out twice until the pids wrap past `pid_max`, so a pid seen before names
//! the same process until then; a tick that sees the last pid wrap makes a full rescan. A pid
//! that exits and is reused is told by its new start time when it is probed.

use std::collections::HashMap;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fleet_policy::ProcessInfo;

use super::host::HostView;
use super::parse::{
    parse_loadavg_activity, parse_stat, parse_statm_resident, parse_status_field, parse_status_uid,
    Stat,
};
use super::procdir::{read_whole, ProcDir};

/// How often a tick examines every process, not only new ones.
pub const FULL_RESCAN_EVERY: Duration = Duration::from_secs(30);

/// A tick opens the pids created since the last one, one by one, when there are at most this
/// many; more, and it lists the proc root.
pub const PROBE_MAX: u64 = 64;

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
    /// Whether the tick listed the proc root (else it opened new pids one by one, or read
    /// only `loadavg`).
    pub listed: bool,
    /// The pids seen for the first time, sorted: such a process may have been caught between
    /// fork and exec, still running its parent's program.
    pub first_look: Vec<u32>,
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
    /// What those looked like then: a look that finds the same is not taken further.
    marks: HashMap<u32, ExecMark>,
    /// The `stat` of marked pids, kept open from the first look (at most [`PROBE_MAX`]): the
    /// second look of a process that did not exec is then one `pread` (and a `close`) instead of
    /// opening its directory and its `stat` again. An open `stat` reads `ESRCH` once its process
    /// exited, whatever process gets the pid next.
    stat_files: HashMap<u32, std::fs::File>,
    /// Reused by every read.
    buf: Vec<u8>,
    /// The pids the last listing found, with the inode numbers of their directories.
    listed: HashMap<u32, u64>,
    /// Kernel threads, with the inode numbers of their directories when first read: a full
    /// rescan passes over a pid listed with the same inode without opening it. The kernel makes
    /// a new inode when a pid is used by a new task (and when it dropped the old one from its
    /// caches: read again then), so no process is ever taken for the kernel thread that had its
    /// pid.
    kthreads: HashMap<u32, u64>,
    /// When every process was last examined.
    last_full: Option<Instant>,
    full_every: Duration,
    /// What a tick reads of each process it examines.
    needs: Needs,
    /// `loadavg`, kept open and read from its start each tick, when it tells that nothing
    /// started or exited: the proc root is of this process's pid namespace.
    loadavg: Option<std::fs::File>,
    /// The threads and the last pid `loadavg` showed at the last tick that read it.
    activity: Option<(u64, u64)>,
    /// Every pid up to this one (the last pid at the last tick that read `loadavg`) has been
    /// listed or opened; the next tick opens those after it.
    probed_to: Option<u64>,
    /// Pids that answered `ENOENT` when opened: tried once more (a fork under way).
    retry: Vec<u32>,
    /// The last listing followed a larger jump of the last pid (or none was known): the next
    /// tick with activity lists again.
    relist: bool,
}

/// What a process's `stat` shows that changes when it execs another program: its name, its
/// start time (another process, if the pid was reused) and where its code and stack are
/// (fields 26 to 28: a new memory layout at every exec, its addresses randomised; `1 1 0` when
/// the agent may not trace the process, and then no mark is kept). A process that rewrites
/// its own command line without exec (a retitle) keeps its mark: the full rescan sees that.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExecMark {
    comm: String,
    starttime: u64,
    layout: [u64; 3],
}

impl ExecMark {
    /// Whether `stat` shows the process as it was marked.
    fn shows(&self, stat: &Stat) -> bool {
        self.starttime == stat.starttime && self.layout == stat.layout && self.comm == stat.comm
    }
}

/// What opening one pid found.
enum Examined {
    /// The process, with its code and stack layout and its open `stat` (for
    /// [`ProcScanner::mark`]).
    Process(ProcessInfo, [u64; 3], std::fs::File),
    /// Looked at again: `stat` shows the same [`ExecMark`] as the last look, so nothing more
    /// was read.
    Unchanged,
    /// A kernel thread, or a thread of another process (only when opened by pid).
    NotAProcess,
    /// No such task now (`ENOENT`, `ESRCH`), or its files did not parse.
    Gone,
}

/// Why a pid is opened in a tick that does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Probe {
    /// Created since the last tick.
    New,
    /// Examined on the last tick for the first time (fork, then exec).
    Again,
    /// Answered `ENOENT` on the last tick.
    Retry,
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
            marks: HashMap::new(),
            stat_files: HashMap::new(),
            buf: Vec::with_capacity(4096),
            listed: HashMap::new(),
            kthreads: HashMap::new(),
            last_full: None,
            full_every: FULL_RESCAN_EVERY,
            needs: Needs::ALL,
            loadavg: std::fs::read_link(proc_root.join("self"))
                .is_ok_and(|l| l.as_os_str() == std::process::id().to_string().as_str())
                .then(|| std::fs::File::open(proc_root.join("loadavg")).ok())
                .flatten(),
            activity: None,
            probed_to: None,
            retry: Vec::new(),
            relist: true,
        }
    }

    /// Changes how often a tick examines every process (default [`FULL_RESCAN_EVERY`]).
    pub fn set_full_rescan(&mut self, every: Duration) {
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

    /// Lists the proc root into `out`: each pid with its directory's inode number (given by
    /// the listing itself). Kernel threads no longer listed are forgotten.
    fn list_into(&mut self, out: &mut HashMap<u32, u64>) -> io::Result<()> {
        use std::os::unix::fs::DirEntryExt;
        out.clear();
        for entry in std::fs::read_dir(&self.proc_root)? {
            let entry = entry?;
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                out.insert(pid, entry.ino());
            }
        }
        self.kthreads
            .retain(|pid, ino| out.get(pid).is_some_and(|i| i == ino));
        Ok(())
    }

    /// Whether `pid`, listed with directory inode `ino`, is a kernel thread read before.
    fn known_kthread(&self, pid: u32, ino: u64) -> bool {
        self.kthreads.get(&pid) == Some(&ino)
    }

    /// Every process now (kernel threads left out), read afresh. Marks them seen, so the next
    /// [`ProcScanner::tick`] examines only processes started after this.
    ///
    /// # Errors
    /// The proc root cannot be listed.
    pub fn scan_all(&mut self) -> io::Result<Vec<ProcessInfo>> {
        let mut listed = std::mem::take(&mut self.listed);
        self.list_into(&mut listed)?;
        let mut pids: Vec<(u32, u64)> = listed.iter().map(|(&pid, &ino)| (pid, ino)).collect();
        pids.sort_unstable();
        self.listed = listed;
        let mut out = Vec::with_capacity(pids.len());
        self.known.clear();
        self.young.clear();
        self.marks.clear();
        self.stat_files.clear();
        self.host.forget();
        self.last_full = Some(Instant::now());
        for (pid, ino) in pids {
            self.known.insert(pid, 0);
            if self.known_kthread(pid, ino) {
                continue;
            }
            match self.examine(pid, Needs::ALL, false, None, None) {
                Examined::Process(p, ..) => {
                    self.known.insert(pid, p.starttime);
                    if p.cmdline.is_empty() {
                        // Caught inside execve: the kernel fills in the new argv only after
                        // waking a vfork parent, so look again next tick.
                        self.young.push(pid);
                    }
                    out.push(p);
                }
                Examined::NotAProcess => {
                    self.kthreads.insert(pid, ino);
                }
                Examined::Unchanged | Examined::Gone => {}
            }
        }
        Ok(out)
    }

    /// Examines the processes created since the last tick (opening their pids, or listing the
    /// proc root; see the module doc) and those first seen on the last tick once more; every
    /// process at a full rescan.
    ///
    /// # Errors
    /// The proc root cannot be listed.
    pub fn tick(&mut self) -> io::Result<Tick> {
        let now = Instant::now();
        let activity = self.activity();
        // After the pids wrapped past pid_max, a pid seen before may name a new process: every
        // process is examined afresh (between wraps no pid is handed out twice).
        let wrapped =
            matches!((self.probed_to, activity), (Some(from), Some((_, to))) if to < from);
        let full = wrapped
            || self
                .last_full
                .is_none_or(|t| now.duration_since(t) >= self.full_every);
        let changed = activity.is_none() || activity != self.activity;
        if !full && !changed && self.young.is_empty() && self.retry.is_empty() {
            return Ok(Tick::default());
        }
        self.activity = activity;
        // The pids created since the last tick, when few and not wrapped past pid_max.
        let created = match (self.probed_to, activity) {
            (Some(from), Some((_, to))) if to >= from && to - from <= PROBE_MAX => {
                Some(from + 1..=to)
            }
            _ => None,
        };
        // A listing is due: a full rescan, or a jump too large to probe before.
        let list = full || (changed && self.relist);
        match created {
            Some(created) if !list => {
                self.probed_to = activity.map(|a| a.1);
                Ok(self.probe(created))
            }
            created => self.list(full, created, activity.map(|a| a.1), now),
        }
    }

    /// A tick that opens the pids `created` (and those to look at again) without listing.
    fn probe(&mut self, created: RangeInclusive<u64>) -> Tick {
        let mut pids: Vec<(u32, Probe)> = created
            .filter_map(|p| u32::try_from(p).ok())
            .map(|p| (p, Probe::New))
            .chain(
                std::mem::take(&mut self.young)
                    .into_iter()
                    .map(|p| (p, Probe::Again)),
            )
            .chain(
                std::mem::take(&mut self.retry)
                    .into_iter()
                    .map(|p| (p, Probe::Retry)),
            )
            .collect();
        // One look per pid, as new if it is new.
        pids.sort_unstable();
        pids.dedup_by_key(|(p, _)| *p);
        let mut tick = Tick::default();
        self.host.forget();
        for (pid, why) in pids {
            let (mark, stat) = if why == Probe::Again {
                (self.marks.remove(&pid), self.stat_files.remove(&pid))
            } else {
                (None, None)
            };
            match self.examine(pid, self.needs, true, mark.as_ref(), stat) {
                Examined::Unchanged => {}
                Examined::Process(p, layout, stat) => {
                    // The pid names another process than the one seen: that one is gone.
                    if self
                        .known
                        .get(&pid)
                        .is_some_and(|&st| st != 0 && st != p.starttime)
                    {
                        tick.vanished.push(pid);
                    }
                    self.known.insert(pid, p.starttime);
                    // New, or tried again after it answered ENOENT mid-fork: a first look.
                    let first = why != Probe::Again;
                    if first || p.cmdline.is_empty() {
                        self.young.push(pid);
                    }
                    if first {
                        tick.first_look.push(pid);
                        if !p.cmdline.is_empty() {
                            self.mark(&p, layout, Some(stat));
                        }
                    }
                    tick.examined.push(p);
                }
                Examined::NotAProcess => {
                    if self.known.remove(&pid).is_some_and(|st| st != 0) {
                        tick.vanished.push(pid);
                    }
                }
                Examined::Gone => {
                    if why == Probe::New {
                        self.retry.push(pid);
                    }
                    if self.known.remove(&pid).is_some() {
                        tick.vanished.push(pid);
                    }
                }
            }
        }
        tick
    }

    /// A tick that lists the proc root: every pid not seen before is examined (every pid on a
    /// `full` one), and those not listed any more have vanished. `created` are the pids
    /// created since the last tick when few (one still being forked is not listed: tried at
    /// the next tick); `last_pid` is the last pid `loadavg` showed before the listing.
    fn list(
        &mut self,
        full: bool,
        created: Option<RangeInclusive<u64>>,
        last_pid: Option<u64>,
        now: Instant,
    ) -> io::Result<Tick> {
        let mut listed = std::mem::take(&mut self.listed);
        self.list_into(&mut listed)?;
        self.probed_to = last_pid;
        self.relist = created.is_none();
        self.retry = created
            .into_iter()
            .flatten()
            .filter_map(|p| u32::try_from(p).ok())
            .filter(|p| !listed.contains_key(p))
            .collect();
        let mut tick = Tick {
            listed: true,
            ..Tick::default()
        };
        self.host.forget();
        self.known.retain(|pid, _| {
            let keep = listed.contains_key(pid);
            if !keep {
                tick.vanished.push(*pid);
            }
            keep
        });
        if full {
            self.last_full = Some(now);
        }
        let mut new_pids: Vec<u32> = listed
            .keys()
            .copied()
            .filter(|pid| !self.known.contains_key(pid))
            .collect();
        new_pids.sort_unstable();
        let fresh: Vec<u32> = if full {
            // Every process, but not the kernel threads read before.
            let mut all: Vec<u32> = listed
                .iter()
                .filter(|&(&pid, &ino)| !self.known_kthread(pid, ino))
                .map(|(&pid, _)| pid)
                .collect();
            all.sort_unstable();
            all
        } else {
            new_pids.clone()
        };
        let again: Vec<u32> = std::mem::take(&mut self.young)
            .into_iter()
            .filter(|pid| listed.contains_key(pid) && fresh.binary_search(pid).is_err())
            .collect();
        // New pids are examined once more on the next tick (fork then exec).
        tick.first_look.clone_from(&new_pids);
        let mut young = new_pids;
        for (i, &pid) in again.iter().chain(&fresh).enumerate() {
            let (mark, stat) = if i < again.len() {
                (self.marks.remove(&pid), self.stat_files.remove(&pid))
            } else {
                (None, None)
            };
            if mark.is_none() {
                self.known.insert(pid, 0);
            }
            match self.examine(pid, self.needs, false, mark.as_ref(), stat) {
                Examined::Process(p, layout, stat) => {
                    self.known.insert(pid, p.starttime);
                    // Marked for the second look of a new pid (a full rescan examines every
                    // process: those marks are forgotten below).
                    if i >= again.len() && !p.cmdline.is_empty() {
                        let new = young.binary_search(&pid).is_ok();
                        self.mark(&p, layout, new.then_some(stat));
                    }
                    // A process still inside execve (empty argv, see scan_all) is read again
                    // until its command line is there.
                    if p.cmdline.is_empty() {
                        if let Err(at) = young.binary_search(&pid) {
                            young.insert(at, pid);
                        }
                    }
                    tick.examined.push(p);
                }
                Examined::NotAProcess => {
                    if let Some(&ino) = listed.get(&pid) {
                        self.kthreads.insert(pid, ino);
                    }
                }
                Examined::Unchanged | Examined::Gone => {}
            }
        }
        self.young = young;
        self.listed = listed;
        self.forget_marks();
        Ok(tick)
    }

    /// Makes the next tick examine `pid` in full (its second look reads everything, whatever
    /// its `stat` shows).
    pub fn look_again(&mut self, pid: u32) {
        self.marks.remove(&pid);
        self.stat_files.remove(&pid);
        if !self.young.contains(&pid) {
            self.young.push(pid);
        }
    }

    /// Remembers how a process looked at its first look, for the next one, and keeps its open
    /// `stat` for that look while fewer than [`PROBE_MAX`] are kept.
    fn mark(&mut self, p: &ProcessInfo, layout: [u64; 3], stat: Option<std::fs::File>) {
        // Without ptrace access the kernel shows 1, 1 and 0 (and zeros for a process without
        // memory): no layout to compare, so the next look reads everything.
        if layout[2] != 0 {
            if let Some(stat) = stat.filter(|_| self.stat_files.len() < PROBE_MAX as usize) {
                self.stat_files.insert(p.pid, stat);
            }
            self.marks.insert(
                p.pid,
                ExecMark {
                    comm: p.comm.clone(),
                    starttime: p.starttime,
                    layout,
                },
            );
        }
    }

    /// Marks and kept `stat`s only of pids to look at again: those of a pid that left them
    /// (gone, or examined afresh by a full rescan) are dropped, and its file closed, at the tick
    /// that saw it leave.
    fn forget_marks(&mut self) {
        let young = &self.young;
        self.marks.retain(|pid, _| young.contains(pid));
        self.stat_files.retain(|pid, _| young.contains(pid));
    }

    /// The threads in the system and the last pid created, from `loadavg`; `None` when the
    /// proc root is not this process's pid namespace or the file does not parse.
    fn activity(&mut self) -> Option<(u64, u64)> {
        let file = self.loadavg.as_ref()?;
        // From offset 0 each time: one pread.
        read_whole(&mut ReadAt(file, 0), &mut self.buf).ok()?;
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
        match self.examine(pid, needs, false, None, None) {
            Examined::Process(p, ..) => Some(p),
            Examined::Unchanged | Examined::NotAProcess | Examined::Gone => None,
        }
    }

    /// Opens `pid` and reads what `needs` asks for, with `stat` and `cmdline`. `by_pid`: the
    /// pid was not listed but opened by its number, so it may be a thread of another process.
    /// `mark`: how it looked at the last look; when `stat` shows the same, it did not exec
    /// since, and nothing more is read. `kept`: its `stat` as opened at that look, read first
    /// (a process gone since reads `ESRCH`); one that shows a change is examined afresh.
    fn examine(
        &mut self,
        pid: u32,
        needs: Needs,
        by_pid: bool,
        mark: Option<&ExecMark>,
        kept: Option<std::fs::File>,
    ) -> Examined {
        if let (Some(m), Some(file)) = (mark, kept) {
            if read_whole(&mut ReadAt(&file, 0), &mut self.buf).is_err() {
                return Examined::Gone;
            }
            if parse_stat(&self.buf).is_some_and(|stat| m.shows(&stat)) {
                return Examined::Unchanged;
            }
        }
        let Ok(dir) = ProcDir::open(&self.proc_root, pid) else {
            return Examined::Gone;
        };
        let Ok(stat_file) = dir.open_file("stat") else {
            return Examined::Gone;
        };
        let Some(stat) = read_whole(&mut ReadAt(&stat_file, 0), &mut self.buf)
            .ok()
            .and_then(|()| parse_stat(&self.buf))
        else {
            return Examined::Gone;
        };
        if stat.kernel_thread {
            return Examined::NotAProcess;
        }
        if mark.is_some_and(|m| m.shows(&stat)) {
            return Examined::Unchanged;
        }
        if by_pid && stat.threads > 1 {
            if dir.read("status", &mut self.buf).is_err() {
                return Examined::Gone;
            }
            if parse_status_field(&self.buf, "Tgid:") != Some(pid) {
                return Examined::NotAProcess;
            }
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
            let value = dir
                .read("oom_score_adj", &mut self.buf)
                .ok()
                .and_then(|()| std::str::from_utf8(&self.buf).ok()?.trim().parse().ok());
            let Some(value) = value else {
                return Examined::Gone;
            };
            info.oom_score_adj = value;
            if dir.read("statm", &mut self.buf).is_ok() {
                info.rss_kb = parse_statm_resident(&self.buf).unwrap_or(0) * self.page_kb;
            }
        }
        Examined::Process(info, stat.layout, stat_file)
    }
}

/// Reads a file from offset 0 with positional reads (`pread`), so an open file is read again
/// without a seek.
struct ReadAt<'a>(&'a std::fs::File, u64);

impl std::io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.0, buf, self.1)?;
        self.1 += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// On the real /proc: a tick after a new process lists it; a quiet one may list nothing.
    #[test]
    fn a_new_process_is_examined_at_the_next_tick() {
        let mut scanner = ProcScanner::new(Path::new("/proc"));
        assert!(
            scanner.loadavg.is_some(),
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

    /// The pid is examined once more at the next tick: only when it exec'd since (a new name
    /// and layout in `stat`) is it read again and reported.
    #[test]
    fn a_second_look_reads_only_what_exec_changed() {
        use std::io::Write;
        let mut scanner = ProcScanner::new(Path::new("/proc"));
        scanner.tick().unwrap();
        // Waits for a line on stdin, then execs another program.
        let execs = std::process::Command::new("sh")
            .args(["-c", "read x; exec sleep 60"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stays = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let (a, b) = (execs.id(), stays.id());
        // Until both are examined (a tick may catch one inside its execve).
        let mut first = HashMap::new();
        for _ in 0..50 {
            for p in scanner.tick().unwrap().examined {
                if (p.pid == a || p.pid == b) && !p.cmdline.is_empty() {
                    first.insert(p.pid, p.comm);
                }
            }
            if first.len() == 2 && scanner.young.is_empty() {
                break;
            }
            if first.len() == 2 {
                // A second look now: neither changed since the first.
                let again = scanner.tick().unwrap();
                assert!(
                    !again.examined.iter().any(|p| p.pid == a || p.pid == b),
                    "unchanged processes are not examined again"
                );
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(first.get(&a).map(String::as_str), Some("sh"));
        assert_eq!(first.get(&b).map(String::as_str), Some("sleep"));

        // Now one that execs between its first look and the second.
        let mut scanner = ProcScanner::new(Path::new("/proc"));
        scanner.scan_all().unwrap();
        let mut execs2 = std::process::Command::new("sh")
            .args(["-c", "read x; exec sleep 60"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let c = execs2.id();
        let seen = (0..50).any(|_| {
            let seen = scanner
                .tick()
                .unwrap()
                .examined
                .iter()
                .any(|p| p.pid == c && p.comm == "sh");
            if !seen {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            seen
        });
        assert!(seen, "first look, before the exec");
        writeln!(execs2.stdin.as_mut().unwrap()).unwrap();
        let comm = format!("/proc/{c}/comm");
        while std::fs::read_to_string(&comm).unwrap().trim() != "sleep" {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let again = scanner.tick().unwrap();
        let p = again.examined.iter().find(|p| p.pid == c);
        assert_eq!(
            p.map(|p| (&p.comm[..], &p.cmdline[..])),
            Some(("sleep", "sleep 60")),
            "the second look sees the exec"
        );
        for mut child in [execs, stays, execs2] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// A new process's `stat` is kept open from its first look: the second look reads it (one
    /// pread), and a process that exited in between reads `ESRCH` there, so it is gone.
    #[test]
    fn the_second_look_reads_the_stat_kept_from_the_first() {
        // `spawn` returns once the child is inside execve, before the kernel set its code
        // addresses: a look then is not of the process as it stays (its second look would find
        // the exec and read everything). Each child is waited for until its exec is done.
        let sleep = || {
            let child = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            let stat = format!("/proc/{}/stat", child.id());
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read(&stat)
                .ok()
                .and_then(|b| parse_stat(&b))
                .is_none_or(|s| s.layout[0] == 0)
            {
                assert!(Instant::now() < deadline, "{stat}: exec not done in 10 s");
                std::thread::sleep(Duration::from_millis(1));
            }
            child
        };
        let mut scanner = ProcScanner::new(Path::new("/proc"));
        scanner.scan_all().unwrap();
        // Both must have their first look at the same tick. Tests running beside this one start
        // processes too, so a tick may find one of the two only after the other had its second
        // look already: then the pair is started again (at most 20 times).
        let (mut stays, mut exits) = (sleep(), sleep());
        for _ in 0..20 {
            let (a, b) = (stays.id(), exits.id());
            let kept = |s: &ProcScanner| [a, b].map(|pid| s.stat_files.contains_key(&pid));
            for _ in 0..50 {
                scanner.tick().unwrap();
                if kept(&scanner).contains(&true) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if kept(&scanner) == [true, true] {
                break;
            }
            for mut child in [stays, exits] {
                child.kill().unwrap();
                child.wait().unwrap();
            }
            (stays, exits) = (sleep(), sleep());
        }
        let (a, b) = (stays.id(), exits.id());
        assert!(
            scanner.stat_files.contains_key(&a) && scanner.stat_files.contains_key(&b),
            "both stats kept: {:?}",
            scanner.stat_files.keys()
        );
        exits.kill().unwrap();
        exits.wait().unwrap();
        let again = scanner.tick().unwrap();
        assert!(
            !again.examined.iter().any(|p| p.pid == a),
            "unchanged: not examined again: {again:?}"
        );
        assert!(again.vanished.contains(&b), "gone: {again:?}");
        assert!(
            !scanner.stat_files.contains_key(&a) && !scanner.stat_files.contains_key(&b),
            "closed after the second look"
        );
        stays.kill().unwrap();
        stays.wait().unwrap();
    }

    /// The flags (`stat` field 9) of a process and of a kernel thread on the development
    /// machine (`init`: PF_RANDOMIZE | PF_SUPERPRIV; kthreadd: PF_KTHREAD | PF_NOFREEZE |
    /// PF_FORKNOEXEC).
    const PROCESS_FLAGS: u64 = 4_194_560;
    const KTHREAD_FLAGS: u64 = 2_129_984;

    /// A fixture `/proc/PID` with `stat` and `cmdline`, for a process with parent `ppid`.
    fn fixture_task(root: &Path, pid: u32, ppid: u32, comm: &str) {
        fixture_stat(root, pid, ppid, PROCESS_FLAGS, comm, &format!("{comm}\0"));
    }

    /// A fixture kernel thread: a child of kthreadd with PF_KTHREAD and no command line.
    fn fixture_kthread(root: &Path, pid: u32, comm: &str) {
        let ppid = if pid == 2 { 0 } else { 2 };
        fixture_stat(root, pid, ppid, KTHREAD_FLAGS, comm, "");
    }

    fn fixture_stat(root: &Path, pid: u32, ppid: u32, flags: u64, comm: &str, cmdline: &str) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("stat"),
            format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 {flags} 1 0 0 0 0 0 0 0 20 0 1 0 1000 1000 10 18446744073709551615\n"),
        )
        .unwrap();
        std::fs::write(dir.join("cmdline"), cmdline).unwrap();
        std::fs::write(dir.join("oom_score_adj"), "0\n").unwrap();
    }

    /// Full rescans and full lists pass over the kernel threads they read before without
    /// opening them (what a kernel thread's files say is not read again: a fixture that turns
    /// one into a process is not seen), until its directory is another inode (a new task, or
    /// the kernel dropped the old inode), or its pid is no longer listed.
    #[test]
    fn kernel_threads_are_read_once() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fixture_task(root, 1, 0, "init");
        fixture_kthread(root, 2, "kthreadd");
        fixture_kthread(root, 50, "kworker/0:1");
        let pids = |v: &[ProcessInfo]| v.iter().map(|p| p.pid).collect::<Vec<_>>();
        let mut scanner = ProcScanner::new(root);
        scanner.set_full_rescan(Duration::ZERO);
        assert_eq!(pids(&scanner.scan_all().unwrap()), [1]);
        assert_eq!(pids(&scanner.tick().unwrap().examined), [1]);
        // Same directory: not read again, by a full list or a full tick.
        fixture_task(root, 50, 1, "impostor");
        assert_eq!(pids(&scanner.scan_all().unwrap()), [1]);
        assert_eq!(pids(&scanner.tick().unwrap().examined), [1]);
        // A new directory for the pid (made before the old one goes, so that the file
        // system cannot hand it the same inode number; /proc never reuses one): read.
        fixture_task(&root.join("new"), 50, 1, "sshd");
        std::fs::remove_dir_all(root.join("50")).unwrap();
        std::fs::rename(root.join("new/50"), root.join("50")).unwrap();
        std::fs::remove_dir(root.join("new")).unwrap();
        assert_eq!(pids(&scanner.tick().unwrap().examined), [1, 50]);
        assert_eq!(pids(&scanner.scan_all().unwrap()), [1, 50]);
        // A kernel thread that is no longer listed is forgotten with its inode.
        std::fs::remove_dir_all(root.join("50")).unwrap();
        fixture_kthread(root, 51, "kworker/1:0");
        assert_eq!(pids(&scanner.scan_all().unwrap()), [1]);
        let mut kthreads: Vec<u32> = scanner.kthreads.keys().copied().collect();
        kthreads.sort_unstable();
        assert_eq!(
            kthreads,
            [2, 51],
            "kthreadd and the kernel thread listed now"
        );
    }

    /// A kernel thread is told by PF_KTHREAD, not by its parent: a usermode helper the kernel
    /// starts (`modprobe`, a `core_pattern` pipe) is a child of kthreadd, and a process that a
    /// policy may hold. kthreadd itself is read like any pid (a container's pid 2 is a process).
    #[test]
    fn kernel_threads_are_told_by_their_flag() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fixture_task(root, 1, 0, "init");
        fixture_kthread(root, 2, "kthreadd");
        fixture_kthread(root, 40, "kworker/0:1");
        fixture_task(root, 41, 2, "modprobe");
        let mut scanner = ProcScanner::new(root);
        let pids: Vec<u32> = scanner.scan_all().unwrap().iter().map(|p| p.pid).collect();
        assert_eq!(pids, [1, 41]);
        let mut kthreads: Vec<u32> = scanner.kthreads.keys().copied().collect();
        kthreads.sort_unstable();
        assert_eq!(kthreads, [2, 40]);

        let other = tempfile::tempdir().unwrap();
        fixture_task(other.path(), 1, 0, "tini");
        fixture_task(other.path(), 2, 1, "nginx");
        let mut scanner = ProcScanner::new(other.path());
        let pids: Vec<u32> = scanner.scan_all().unwrap().iter().map(|p| p.pid).collect();
        assert_eq!(pids, [1, 2], "pid 2 of another pid namespace");
    }

    /// A thread's id is opened like a pid when it falls in the range of new pids: it is not
    /// taken for a process. A new process is examined by a tick that lists nothing.
    #[test]
    fn probing_skips_threads_and_finds_processes() {
        let mut scanner = ProcScanner::new(Path::new("/proc"));
        let mut probed = false;
        for _ in 0..20 {
            // Until a tick that opens new pids rather than listing.
            let _ = scanner.tick().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
            let thread = std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tx.send(unsafe { libc::gettid() } as u32).unwrap();
                stop_rx.recv().ok();
            });
            let tid = rx.recv().unwrap();
            let mut child = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            let tick = scanner.tick().unwrap();
            stop_tx.send(()).unwrap();
            thread.join().unwrap();
            child.kill().unwrap();
            child.wait().unwrap();
            assert!(!tick.examined.iter().any(|p| p.pid == tid), "a thread");
            assert!(!scanner.known.contains_key(&tid));
            if !tick.listed {
                assert!(
                    tick.examined.iter().any(|p| p.pid == child.id()),
                    "the new process, without a listing"
                );
                probed = true;
                break;
            }
        }
        assert!(probed, "no tick opened new pids without listing");
    }
}
