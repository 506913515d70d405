//! Top-oom: the processes the kernel's OOM killer would pick first, like `dstat --top-oom` but
//! the top N, ranked by `/proc/PID/oom_score` (highest first; ties: larger RSS first, then
//! lower pid).
//!
//! Layout:
//! - [`parse`]: pure parsers over the bytes of `oom_score`, `oom_score_adj`, `statm`, `status`,
//!   `comm` and `cmdline` (its doc shows real examples);
//! - [`budget`](mod@budget): when the next scan is due under the CPU budget, pure;
//! - `sys`: the system calls (getdents64, openat, the thread CPU clock);
//! - [`TopOomScanner`]: the scan itself.
//!
//! # How a scan reads `/proc`
//!
//! The proc root stays open as one directory fd; each scan rewinds it and lists it with
//! `getdents64` into a reused buffer. Then, in two passes:
//!
//! 1. **Rank.** For every pid, open `PID/oom_score` relative to that fd (`openat`, one read,
//!    close; no path built on the heap) and parse the score. The ranking so far is a min-heap
//!    of at most N keys (score, RSS, pid). A score below the heap's weakest is dropped at once;
//!    otherwise `statm` gives the RSS for the tie-break (and tells kernel threads and zombies,
//!    which have no address space and are skipped), and the key enters the heap if it beats
//!    the weakest. A score of 0 below the weakest is still checked with `statm` once: a pid
//!    without an address space is remembered with its directory's inode number, and the next
//!    scans skip it without reading anything while the pair is listed again (see below).
//! 2. **Describe.** Only the N winners are read further: `oom_score_adj`, `status`, `comm`,
//!    `cmdline`. A winner that exited in between is left out of this scan's ranking.
//!
//! Kernel threads are most of the pids on an idle host (59 of 99 on the development machine)
//! and never get an address space, so after the first scan they cost nothing but their
//! directory entry. A pid's `/proc` inode number changes when the pid is reused by a new
//! process (and when the kernel drops the entry under memory pressure: the pid is then read
//! again), so a new process is never mistaken for the kernel thread that had its pid.
//!
//! So most processes cost three system calls, a scan allocates only the entries it returns,
//! and the per-process cost is that of the kernel opening `oom_score` (measured on this
//! project's 2-vCPU VM, kernel 6.18: about 5.5 µs for `openat` + `read` + `close`, 6 µs more
//! for `statm` when a process ties with the weakest entry's score; see `benches/topoom.rs`).
//!
//! Keeping each process's `oom_score` open between scans and re-reading it with `pread` would
//! cost 1.8 µs instead of 5.5 µs, but pins one fd and about 4.4 KiB of unreclaimable kernel
//! memory (the seq_file buffer) per process on the host (13 MiB at 3000 processes), and needs
//! the fd limit raised to the process count: not a trade a monitoring agent should make for a
//! ranking that is allowed to be seconds old.
//!
//! Field choices:
//! - `uid` is the **real** uid, the first field of `status`'s `Uid:` line. The owner of
//!   `/proc/PID` would be one `fstatat` instead of a read of `status`, but it is the
//!   *effective* uid, and the kernel shows root as the owner of every non-dumpable process
//!   (setuid programs, sshd's children, anything that called `prctl(PR_SET_DUMPABLE, 0)`), so it
//!   would mislabel exactly the processes an operator asks about. The kernel's own kill report
//!   (`Killed process … UID:N`) prints the real uid; ours matches it. `status` is read only for
//!   the N winners, so the difference in cost does not show.
//! - `rss_kb` is `statm`'s resident pages times the page size: the same number as `status`'s
//!   `VmRSS`, from a file that is cheaper for the kernel to produce, and needed in the ranking
//!   pass (for ties).
//! - `cmdline` is the arguments joined with spaces, made printable and cut to
//!   [`CMDLINE_MAX_BYTES`] on a character boundary; an empty one shows as `[comm]`, as in `ps`.
//!
//! Processes that exit mid-scan (`ENOENT`, `ESRCH`) are skipped silently; files that cannot be
//! read for lack of permission are counted ([`ScanStats::denied`]), and content that does not
//! parse skips the process ([`ScanStats::unreadable`]). Nothing in a file can make a scan
//! panic.
//!
//! # The CPU budget
//!
//! The agent ticks every second and aims at costing less than sysstat's `sadc` at the same
//! interval (about 0.7 ms of CPU per second on the development machine; `scripts/bench-agent
//! --compare`), kernel log, NTP and this ranking included. A scan costs 6 to 12 µs of CPU per
//! user process (most of it the kernel opening `/proc` files), so on a host with thousands of
//! processes one scan costs tens of ticks' worth. Top-oom therefore gets a budget of its own and
//! adapts how often it scans rather than what a scan covers (a partial ranking would be wrong,
//! not just stale):
//!
//! - each [`scan`](TopOomScanner::scan) measures its own cost as the CPU time (user + system)
//!   of the calling thread (`CLOCK_THREAD_CPUTIME_ID`; wall time if that clock is missing);
//! - the next scan is due `cost / budget` after the start of this one, but at least
//!   [`MIN_PERIOD`] (1 s, the agent's tick) and at most [`MAX_PERIOD`] (60 s) later;
//! - the budget is [`BUDGET_FRACTION`] of one core (0.005 %, 0.05 ms per second on average)
//!   while memory is not tight, and [`TIGHT_BUDGET_FACTOR`] times that (0.5 ms per second)
//!   while it is ([`budget::memory_tight`]: tasks stalled on memory for 1 % of the last ten
//!   seconds, which includes memory cgroups reclaiming at their limit, or under 10 % of the
//!   memory available). The agent tells the scanner after each sample
//!   ([`set_memory_tight`](TopOomScanner::set_memory_tight)); the ranking is freshest when an OOM
//!   kill is near, and costs least the rest of the time;
//! - [`due`](TopOomScanner::due) answers on the agent's tick (with
//!   [`budget::DUE_SLACK`] so a 1 s period is not stretched to 2 s by tick jitter).
//!
//! The cost per scan measured on the project's VM (`cargo bench -p fleet-agent --bench topoom`,
//! CPU time per scan, top 10, before kernel threads were skipped), and the period and CPU it
//! gives at either budget:
//!
//! | host                                       | per scan | period (tight) | CPU per second (tight) |
//! |--------------------------------------------|---------:|---------------:|-----------------------:|
//! | idle, 88 processes                         |   1.0 ms |     20 s (2 s) |       0.05 ms (0.5 ms) |
//! | 3000 more processes, ten of them stand out |    19 ms |    60 s (38 s) |      0.32 ms (0.5 ms)  |
//! | 3000 more processes, all tied on the score |    36 ms |   60 s (60 s)  |       0.6 ms (0.6 ms)  |
//!
//! In the agent on the development machine (99 pids, 59 of them kernel threads, skipped once
//! known) a scan costs about 1 ms of CPU (the agent wakes once a second, with cold caches), so
//! the ranking is at most 20 s old, 2 s while memory is tight. Beyond `60 s × 0.005 % = 3 ms`
//! per scan (30 ms when tight) the 60 s cap wins: freshness of the ranking is then preferred to
//! the budget, which the worst case above (every process tied with the tenth, so that each
//! one's `statm` is read for the tie-break) overshoots twelvefold; the overshoot shows in
//! [`last_cost`](TopOomScanner::last_cost) and [`period`](TopOomScanner::period), which the
//! agent can log. A scan runs synchronously on the caller's thread (tens of milliseconds at
//! worst, on thousands of processes).

pub mod budget;
pub mod parse;
mod sys;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ffi::CStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fleet_proto::v1::OomProcess;

use budget::Budget;
use sys::ProcDir;

/// Top-oom's share of one core, on average, while memory is not tight: 0.005 %, i.e. 0.05 ms of
/// CPU per second (so that the whole agent costs less than sadc; see the module doc).
pub const BUDGET_FRACTION: f64 = 0.00005;
/// The budget while memory is tight is this many times [`BUDGET_FRACTION`].
pub const TIGHT_BUDGET_FACTOR: f64 = 10.0;
/// Scans are never more frequent than the agent's tick.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);
/// Scans are never further apart than this, whatever they cost.
pub const MAX_PERIOD: Duration = Duration::from_secs(60);
/// The longest `cmdline` reported, in bytes.
pub const CMDLINE_MAX_BYTES: usize = 256;
/// The longest `comm` reported, in bytes (the kernel's limit is 16 for processes, 64 for the
/// names of kernel workers).
const COMM_MAX_BYTES: usize = 64;
/// How much of `cmdline` and `status` is read: `Uid:` is in `status`'s first lines, and
/// [`CMDLINE_MAX_BYTES`] of output never needs more input than that.
const READ_BUF_BYTES: usize = 4096;
/// The getdents64 buffer: about a thousand pids per call.
const DENTS_BUF_BYTES: usize = 32 * 1024;

/// Why a scan could not run at all (per-process problems only skip that process).
#[derive(Debug, thiserror::Error)]
pub enum TopOomError {
    /// The proc root could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The proc root could not be listed.
    #[error("cannot list {}: {source}", path.display())]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What the last scan saw, for logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Pid directories listed.
    pub processes: u64,
    /// Processes whose score could enter the ranking, so that their `statm` was read too.
    pub candidates: u64,
    /// Processes found without an address space (kernel threads, zombies): skipped, and
    /// remembered for the next scan.
    pub no_mm: u64,
    /// Processes skipped without a read: the last scan found them without an address space
    /// (same pid, same `/proc` inode).
    pub known_no_mm: u64,
    /// Processes that exited during the scan, skipped.
    pub vanished: u64,
    /// Processes skipped because a file could not be read for lack of permission.
    pub denied: u64,
    /// Processes skipped because a file could not be read or did not parse.
    pub unreadable: u64,
}

/// Ranks the processes under a proc root by `oom_score`, within a CPU budget.
#[derive(Debug)]
pub struct TopOomScanner {
    proc_root: PathBuf,
    limit: usize,
    /// Opened on the first scan and kept open; dropped after a listing error so the next scan
    /// opens it afresh.
    dir: Option<ProcDir>,
    page_kb: u64,
    /// getdents64 records.
    dents: Vec<u8>,
    /// The content of one file at a time.
    buf: Vec<u8>,
    /// The best `limit` keys so far, the weakest on top; empty between scans.
    heap: BinaryHeap<Reverse<Key>>,
    /// The processes the last scan found without an address space: pid to the inode number of
    /// its `/proc` directory. Skipped while listed with the same inode.
    no_mm: HashMap<i64, u64>,
    /// The same, being built by the current scan (swapped with `no_mm` at its end).
    no_mm_next: HashMap<i64, u64>,
    budget: Budget,
    /// The budget while memory is not tight (the budget's fraction then, times
    /// [`TIGHT_BUDGET_FACTOR`] while it is).
    fraction: f64,
    stats: ScanStats,
}

/// The ranking order, strongest greatest: score, then RSS, then the lower pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    score: i64,
    rss_kb: u64,
    pid: Reverse<i64>,
}

/// `"PID/file\0"` in a stack buffer.
struct RelPath {
    buf: [u8; 48],
    pid_len: usize,
}

impl RelPath {
    /// `None` unless `name` is a pid directory's name (1 to 10 digits).
    fn new(name: &[u8]) -> Option<RelPath> {
        if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut buf = [0u8; 48];
        buf[..name.len()].copy_from_slice(name);
        buf[name.len()] = b'/';
        Some(RelPath {
            buf,
            pid_len: name.len(),
        })
    }

    /// The same for a pid known as a number.
    fn of_pid(pid: i64) -> Option<RelPath> {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut v = u64::try_from(pid).ok()?;
        loop {
            at -= 1;
            digits[at] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        RelPath::new(&digits[at..])
    }

    /// The path of `file` in this pid's directory (`file` is one of the short names below).
    fn of(&mut self, file: &[u8]) -> &CStr {
        let start = self.pid_len + 1;
        let end = start + file.len();
        self.buf[start..end].copy_from_slice(file);
        self.buf[end] = 0;
        CStr::from_bytes_with_nul(&self.buf[..=end]).expect("one NUL, at the end")
    }
}

/// Why one process was skipped.
enum Skip {
    Io(io::Error),
    Garbage,
}

impl From<io::Error> for Skip {
    fn from(e: io::Error) -> Skip {
        Skip::Io(e)
    }
}

impl ScanStats {
    fn count(&mut self, skip: Skip) {
        match skip {
            Skip::Garbage => self.unreadable += 1,
            Skip::Io(e) => match e.raw_os_error() {
                Some(libc::ENOENT | libc::ESRCH) => self.vanished += 1,
                Some(libc::EACCES | libc::EPERM) => self.denied += 1,
                _ => self.unreadable += 1,
            },
        }
    }
}

impl TopOomScanner {
    /// A scanner of the processes under `proc_root` (`/proc`, or a fixture tree of pid
    /// directories) that keeps the top `limit`. Nothing is opened until the first scan.
    pub fn new(proc_root: &Path, limit: usize) -> TopOomScanner {
        TopOomScanner {
            proc_root: proc_root.to_path_buf(),
            limit,
            dir: None,
            page_kb: sys::page_kb(),
            dents: Vec::new(),
            buf: Vec::new(),
            heap: BinaryHeap::new(),
            no_mm: HashMap::new(),
            no_mm_next: HashMap::new(),
            budget: Budget::new(BUDGET_FRACTION, MIN_PERIOD, MAX_PERIOD),
            fraction: BUDGET_FRACTION,
            stats: ScanStats::default(),
        }
    }

    /// The same scanner with another budget while memory is not tight, as a fraction of one
    /// core (see the module doc).
    pub fn with_budget(mut self, fraction: f64) -> TopOomScanner {
        self.budget = Budget::new(fraction, MIN_PERIOD, MAX_PERIOD);
        self.fraction = fraction;
        self
    }

    /// Whether memory is tight now ([`budget::memory_tight`]): the budget is then
    /// [`TIGHT_BUDGET_FACTOR`] times larger, and the next scan is rescheduled from the last
    /// one's cost.
    pub fn set_memory_tight(&mut self, tight: bool) {
        let factor = if tight { TIGHT_BUDGET_FACTOR } else { 1.0 };
        self.budget.set_fraction(self.fraction * factor);
    }

    /// Scans every process and returns the top `limit` by `oom_score`, highest first (ties:
    /// larger RSS first, then lower pid). Kernel threads and zombies are left out. Records its
    /// own cost, which sets when the next scan is [`due`](Self::due).
    ///
    /// # Errors
    ///
    /// [`TopOomError`] when the proc root cannot be opened or listed. Problems with single
    /// processes only leave them out (see [`last_stats`](Self::last_stats)).
    pub fn scan(&mut self) -> Result<Vec<OomProcess>, TopOomError> {
        let started = Instant::now();
        let cpu0 = sys::thread_cpu_time();
        let result = self.scan_all();
        let cost = match (cpu0, sys::thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => started.elapsed(),
        };
        self.budget.record(started, cost);
        result
    }

    /// Whether a scan is due at `now` under the CPU budget (always before the first scan).
    pub fn due(&self, now: Instant) -> bool {
        self.budget.due(now)
    }

    /// Charges a scan that started at `started` and cost `cost`. [`scan`](Self::scan) calls
    /// this itself; it is public for callers that run the scan in their own accounting.
    pub fn record(&mut self, started: Instant, cost: Duration) {
        self.budget.record(started, cost);
    }

    /// The CPU time the last scan cost.
    pub fn last_cost(&self) -> Duration {
        self.budget.last_cost()
    }

    /// The current period between scans, set by the last cost.
    pub fn period(&self) -> Duration {
        self.budget.period()
    }

    /// What the last scan saw.
    pub fn last_stats(&self) -> ScanStats {
        self.stats
    }

    /// The number of processes ranked.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn scan_all(&mut self) -> Result<Vec<OomProcess>, TopOomError> {
        self.stats = ScanStats::default();
        self.heap.clear();
        if self.limit == 0 {
            return Ok(Vec::new());
        }
        if self.dir.is_none() {
            let dir = ProcDir::open(&self.proc_root).map_err(|source| TopOomError::Open {
                path: self.proc_root.clone(),
                source,
            })?;
            self.dir = Some(dir);
            self.dents.resize(DENTS_BUF_BYTES, 0);
            self.buf.resize(READ_BUF_BYTES, 0);
            self.heap.reserve(self.limit + 1);
        }
        if let Err(source) = self.rank() {
            self.dir = None;
            self.heap.clear();
            self.no_mm.clear();
            self.no_mm_next.clear();
            return Err(TopOomError::List {
                path: self.proc_root.clone(),
                source,
            });
        }
        Ok(self.describe())
    }

    /// Pass 1: the top `limit` keys into the heap.
    fn rank(&mut self) -> io::Result<()> {
        let Self {
            dir,
            dents,
            buf,
            heap,
            stats,
            limit,
            page_kb,
            no_mm,
            no_mm_next,
            ..
        } = self;
        let dir = dir.as_mut().expect("opened by the caller");
        dir.rewind()?;
        no_mm_next.clear();
        loop {
            let n = dir.read_entries(dents)?;
            if n == 0 {
                std::mem::swap(no_mm, no_mm_next);
                return Ok(());
            }
            for (ino, name) in sys::dirents(&dents[..n]) {
                let Some(mut path) = RelPath::new(name) else {
                    continue;
                };
                let Some(pid) = crate::sources::procfs::parse::u64_field(name)
                    .and_then(|p| i64::try_from(p).ok())
                else {
                    continue;
                };
                stats.processes += 1;
                if no_mm.get(&pid) == Some(&ino) {
                    stats.known_no_mm += 1;
                    no_mm_next.insert(pid, ino);
                    continue;
                }
                let floor = (heap.len() >= *limit)
                    .then(|| heap.peek().map(|Reverse(k)| *k))
                    .flatten();
                match rank_one(dir, &mut path, pid, buf, *page_kb, floor, stats) {
                    Ok(Ranked::Key(key)) => {
                        heap.push(Reverse(key));
                        if heap.len() > *limit {
                            heap.pop();
                        }
                    }
                    Ok(Ranked::Below) => {}
                    Ok(Ranked::NoMm) => {
                        no_mm_next.insert(pid, ino);
                    }
                    Err(skip) => stats.count(skip),
                }
            }
        }
    }

    /// Pass 2: the winners, strongest first, with the rest of their fields.
    fn describe(&mut self) -> Vec<OomProcess> {
        let mut keys: Vec<Key> = Vec::with_capacity(self.heap.len());
        keys.extend(self.heap.drain().map(|Reverse(k)| k));
        keys.sort_unstable_by(|a, b| b.cmp(a));
        let dir = self.dir.as_ref().expect("opened by the caller");
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(mut path) = RelPath::of_pid(key.pid.0) else {
                continue;
            };
            let mut p = OomProcess {
                pid: key.pid.0,
                oom_score: key.score,
                rss_kb: key.rss_kb,
                ..OomProcess::default()
            };
            match describe_one(dir, &mut path, &mut self.buf, &mut p) {
                Ok(()) => out.push(p),
                Err(skip) => self.stats.count(skip),
            }
        }
        out
    }
}

/// What pass 1 made of one process.
enum Ranked {
    /// Its key, which beats the weakest of the heap (or the heap is not full).
    Key(Key),
    /// It does not enter the ranking.
    Below,
    /// It has no address space (a kernel thread, a zombie): it never will.
    NoMm,
}

/// Pass 1 for one process: its key if it beats `floor` (the weakest of a full heap), read
/// as far as needed to tell. A score of 0 below the floor is read further once, to tell a
/// process without an address space (which the caller then remembers).
fn rank_one(
    dir: &ProcDir,
    path: &mut RelPath,
    pid: i64,
    buf: &mut [u8],
    page_kb: u64,
    floor: Option<Key>,
    stats: &mut ScanStats,
) -> Result<Ranked, Skip> {
    let n = dir.read_file(path.of(b"oom_score"), &mut buf[..32], true)?;
    let score = parse::oom_score(&buf[..n]).ok_or(Skip::Garbage)?;
    let below = floor.is_some_and(|f| score < f.score);
    if below && score != 0 {
        return Ok(Ranked::Below);
    }
    if !below {
        stats.candidates += 1;
    }
    let n = dir.read_file(path.of(b"statm"), &mut buf[..256], true)?;
    let statm = parse::statm(&buf[..n]).ok_or(Skip::Garbage)?;
    if !statm.has_mm() {
        stats.no_mm += 1;
        return Ok(Ranked::NoMm);
    }
    let key = Key {
        score,
        rss_kb: statm.resident.saturating_mul(page_kb),
        pid: Reverse(pid),
    };
    Ok(if floor.is_none_or(|f| key > f) {
        Ranked::Key(key)
    } else {
        Ranked::Below
    })
}

/// Pass 2 for one winner: the fields its score and statm did not give.
fn describe_one(
    dir: &ProcDir,
    path: &mut RelPath,
    buf: &mut [u8],
    p: &mut OomProcess,
) -> Result<(), Skip> {
    let n = dir.read_file(path.of(b"oom_score_adj"), &mut buf[..32], true)?;
    p.oom_score_adj = parse::oom_score_adj(&buf[..n]).ok_or(Skip::Garbage)?;

    let n = dir.read_file(path.of(b"status"), buf, false)?;
    p.uid = i64::from(parse::status_real_uid(&buf[..n]).ok_or(Skip::Garbage)?);

    let n = dir.read_file(path.of(b"comm"), &mut buf[..128], true)?;
    parse::comm_into(&mut p.comm, &buf[..n], COMM_MAX_BYTES);

    let n = dir.read_file(path.of(b"cmdline"), buf, false)?;
    parse::cmdline_into(&mut p.cmdline, &buf[..n], CMDLINE_MAX_BYTES);
    if p.cmdline.is_empty() {
        p.cmdline.reserve_exact(p.comm.len() + 2);
        p.cmdline.push('[');
        p.cmdline.push_str(&p.comm);
        p.cmdline.push(']');
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths() {
        let mut p = RelPath::new(b"4242").unwrap();
        assert_eq!(p.of(b"oom_score"), c"4242/oom_score");
        assert_eq!(p.of(b"statm"), c"4242/statm");
        let mut p = RelPath::of_pid(4_194_304).unwrap();
        assert_eq!(p.of(b"cmdline"), c"4194304/cmdline");
        assert_eq!(RelPath::of_pid(0).unwrap().of(b"comm"), c"0/comm");
        assert!(RelPath::of_pid(-1).is_none());
        assert!(RelPath::of_pid(99_999_999_999).is_none());
        assert!(RelPath::new(b"self").is_none());
        assert!(RelPath::new(b"").is_none());
        assert!(RelPath::new(b"12a").is_none());
    }

    #[test]
    fn keys_rank_score_then_rss_then_lower_pid() {
        let k = |score, rss_kb, pid| Key {
            score,
            rss_kb,
            pid: Reverse(pid),
        };
        assert!(k(2, 0, 9) > k(1, 100, 1));
        assert!(k(1, 100, 9) > k(1, 99, 1));
        assert!(k(1, 100, 1) > k(1, 100, 2));
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let mut s = ScanStats::default();
        for e in [libc::ENOENT, libc::ESRCH] {
            s.count(Skip::Io(io::Error::from_raw_os_error(e)));
        }
        for e in [libc::EACCES, libc::EPERM] {
            s.count(Skip::Io(io::Error::from_raw_os_error(e)));
        }
        s.count(Skip::Io(io::Error::from_raw_os_error(libc::EIO)));
        s.count(Skip::Garbage);
        assert_eq!((s.vanished, s.denied, s.unreadable), (2, 2, 2));
    }
}
