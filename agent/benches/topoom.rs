//! The cost of a top-oom scan on a host with thousands of processes, and the scan period the
//! CPU budget gives it.
//!
//! ```sh
//! cargo bench -p fleet-agent --bench topoom
//! ```
//!
//! Starts 3000 `sleep 60` processes (`TOPOOM_BENCH_PROCS` to change, at most 10000), each
//! killed by its pid when the bench ends, also on a panic (a guard), and by the kernel if the
//! bench itself is killed (`PR_SET_PDEATHSIG`); at worst they exit after 60 s on their own. Then
//! times 50 scans of each variant in CPU time of this thread (user + system):
//!
//! - `TopOomScanner`: one open `/proc` fd listed with getdents64, `openat` + one read of
//!   `PID/oom_score` per process, the other files only for processes that enter the top N;
//! - `std, oom_score first`: the same plan with `std::fs::read_dir` and `std::fs::read` of
//!   `/proc/PID/oom_score` (an allocated path, an allocated buffer, a `DirEntry` per process);
//! - `std, all files`: the obvious version, every file of every process read, then a sort;
//! - `kept fds`: `oom_score` of every process kept open between scans and re-read with `pread`
//!   (listing through `read_dir`, ranking left out): the cheapest read there is, measured here
//!   with the kernel memory it pins, which is why the scanner does not do it.
//!
//! All the sleepers have the same score (666 on a host with enough memory), so each of them
//! ties with the weakest of the top N and the scanner must read its `statm` too, for the RSS
//! tie-break: the worst case. Then ten sleepers are given `oom_score_adj` 500, as on a host
//! whose top ten stand out, and the scanner is timed again: the typical case, where most
//! processes cost one read of `oom_score`.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet_agent::sources::topoom::{TopOomScanner, BUDGET_FRACTION, MAX_PERIOD, MIN_PERIOD};
use fleet_proto::v1::OomProcess;

const DEFAULT_PROCS: usize = 3000;
const MAX_PROCS: usize = 10_000;
const SCANS: usize = 50;
const LIMIT: usize = 10;

/// The sleepers, killed and reaped by pid on drop.
struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn spawn_sleepers(n: usize) -> Sleepers {
    let mut s = Sleepers(Vec::with_capacity(n));
    for _ in 0..n {
        let mut cmd = Command::new("sleep");
        cmd.arg("60")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's memory.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        // A failure panics; the guard then ends the ones already started.
        s.0.push(cmd.spawn().expect("spawn sleep"));
    }
    // Until exec, a child is a copy of this process; wait until they all are `sleep`.
    let deadline = Instant::now() + Duration::from_secs(60);
    for c in &s.0 {
        let comm = format!("/proc/{}/comm", c.id());
        while std::fs::read(&comm).map_or(true, |b| b != b"sleep\n") {
            assert!(Instant::now() < deadline, "sleepers did not start");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    s
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Figures {
    cpu_ms: Vec<f64>,
    wall_ms: Vec<f64>,
}

impl Figures {
    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    fn print(&mut self, name: &str, processes: u64) {
        self.cpu_ms.sort_by(f64::total_cmp);
        let n = self.cpu_ms.len();
        let mean = Figures::mean(&self.cpu_ms);
        println!(
            "{name:<28} {processes:>6} procs  CPU ms/scan: mean {mean:>7.3}  median {:>7.3}  \
             min {:>7.3}  max {:>7.3}  (wall mean {:>7.3})  {:>5.2} us/process",
            self.cpu_ms[n / 2],
            self.cpu_ms[0],
            self.cpu_ms[n - 1],
            Figures::mean(&self.wall_ms),
            mean * 1000.0 / processes as f64,
        );
    }
}

/// Times `SCANS` runs of `scan`, which returns the ranking and the processes it saw.
fn time(mut scan: impl FnMut() -> (Vec<OomProcess>, u64)) -> (Figures, u64, Vec<OomProcess>) {
    let (mut out, mut processes) = scan(); // warm-up: dentries and inodes of /proc
    let mut f = Figures {
        cpu_ms: Vec::with_capacity(SCANS),
        wall_ms: Vec::with_capacity(SCANS),
    };
    for _ in 0..SCANS {
        let (c0, w0) = (thread_cpu(), Instant::now());
        (out, processes) = scan();
        f.wall_ms.push(w0.elapsed().as_secs_f64() * 1e3);
        f.cpu_ms.push((thread_cpu() - c0).as_secs_f64() * 1e3);
    }
    (f, processes, out)
}

fn read_i64(path: &Path) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_process(dir: &Path, pid: i64, score: i64) -> Option<OomProcess> {
    let statm = std::fs::read_to_string(dir.join("statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
    if cmdline.is_empty() {
        return None;
    }
    let mut cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    cmdline.truncate(cmdline.trim_end().len().min(256));
    Some(OomProcess {
        pid,
        comm: std::fs::read_to_string(dir.join("comm"))
            .ok()?
            .trim_end()
            .to_owned(),
        cmdline,
        uid,
        oom_score: score,
        oom_score_adj: read_i64(&dir.join("oom_score_adj"))?,
        rss_kb: pages * 4,
    })
}

fn rank(all: &mut Vec<OomProcess>) {
    all.sort_by(|a, b| (b.oom_score, b.rss_kb, a.pid).cmp(&(a.oom_score, a.rss_kb, b.pid)));
    all.truncate(LIMIT);
}

/// Every file of every process, then a sort.
fn std_all_files() -> (Vec<OomProcess>, u64) {
    let mut all = Vec::new();
    let mut n = 0;
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        n += 1;
        let dir = e.path();
        if let Some(p) = read_i64(&dir.join("oom_score")).and_then(|s| read_process(&dir, pid, s)) {
            all.push(p);
        }
    }
    rank(&mut all);
    (all, n)
}

/// `oom_score` of every process through std, the other files for the best few only.
fn std_score_first() -> (Vec<OomProcess>, u64) {
    let mut scores = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        if let Some(s) = read_i64(&e.path().join("oom_score")) {
            scores.push((s, pid));
        }
    }
    let n = scores.len() as u64;
    // Ties on the score need the RSS: keep everything tied with the N-th, as the scanner does.
    scores.sort_unstable_by(|a, b| b.cmp(a));
    let floor = scores.get(LIMIT.saturating_sub(1)).map_or(0, |s| s.0);
    let mut all: Vec<OomProcess> = scores
        .iter()
        .take_while(|s| s.0 >= floor)
        .filter_map(|&(s, pid)| read_process(&Path::new("/proc").join(pid.to_string()), pid, s))
        .collect();
    rank(&mut all);
    (all, n)
}

fn main() {
    let procs = std::env::var("TOPOOM_BENCH_PROCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PROCS)
        .min(MAX_PROCS);
    println!(
        "top-oom scan, top {LIMIT}, {SCANS} scans per variant, budget {:.3} % of a core \
         ({:.2} ms/s), period {MIN_PERIOD:?}..{MAX_PERIOD:?}",
        BUDGET_FRACTION * 100.0,
        BUDGET_FRACTION * 1e3
    );

    let mut baseline = TopOomScanner::new(Path::new("/proc"), LIMIT);
    let (mut f, n, _) = time(|| {
        let out = baseline.scan().expect("scan");
        (out, baseline.last_stats().processes)
    });
    f.print("TopOomScanner (idle host)", n);
    let mut costs = Vec::new();
    for _ in 0..SCANS {
        drop(baseline.scan().expect("scan"));
        costs.push(baseline.last_cost());
    }
    report_period(&baseline, &costs);

    let t = Instant::now();
    let sleepers = spawn_sleepers(procs);
    println!(
        "started {} sleepers in {:.1} s",
        sleepers.0.len(),
        t.elapsed().as_secs_f64()
    );

    let mut scanner = TopOomScanner::new(Path::new("/proc"), LIMIT);
    let mut costs = Vec::new();
    let (mut f, n, top) = time(|| {
        let out = scanner.scan().expect("scan");
        costs.push(scanner.last_cost());
        (out, scanner.last_stats().processes)
    });
    f.print("TopOomScanner, all tied", n);
    report_period(&scanner, &costs);

    let (mut f, n, top_std) = time(std_score_first);
    f.print("std, oom_score first", n);
    // The host's own processes may change between the two runs, so this is a note, not a
    // check (the tests check the ranking).
    let pids = |v: &[OomProcess]| v.iter().map(|p| p.pid).collect::<Vec<_>>();
    if pids(&top_std) != pids(&top) {
        println!("{:<28} (the ranking changed between the two runs)", "");
    }
    let (mut f, n, _) = time(std_all_files);
    f.print("std, all files", n);

    let unreclaimable0 = meminfo_kb("SUnreclaim:");
    let mut kept: HashMap<i64, File> = HashMap::new();
    let (mut f, n, _) = time(|| (kept_fds(&mut kept), kept.len() as u64));
    f.print("kept fds, oom_score only", n);
    let pinned = meminfo_kb("SUnreclaim:").saturating_sub(unreclaimable0);
    println!(
        "{:<28} {} fds open; unreclaimable kernel memory +{} KiB ({:.1} KiB per fd)",
        "",
        kept.len(),
        pinned,
        pinned as f64 / kept.len().max(1) as f64
    );
    drop(kept);

    // The typical case: ten processes stand out, the rest are read for their score only.
    for c in &sleepers.0[..LIMIT] {
        std::fs::write(format!("/proc/{}/oom_score_adj", c.id()), b"500\n")
            .expect("raise oom_score_adj");
    }
    let mut scanner = TopOomScanner::new(Path::new("/proc"), LIMIT);
    let mut costs = Vec::new();
    let (mut f, n, _) = time(|| {
        let out = scanner.scan().expect("scan");
        costs.push(scanner.last_cost());
        (out, scanner.last_stats().processes)
    });
    f.print("TopOomScanner, top 10 apart", n);
    report_period(&scanner, &costs);

    drop(sleepers);
}

/// A `/proc/meminfo` value in KiB.
fn meminfo_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// `oom_score` of every process from a file kept open between calls, re-read with `pread`.
fn kept_fds(kept: &mut HashMap<i64, File>) -> Vec<OomProcess> {
    let mut buf = [0u8; 32];
    let mut best = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
            continue;
        };
        let file = match kept.entry(pid) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                match File::open(e.path().join("oom_score")) {
                    Ok(f) => v.insert(f),
                    Err(_) => continue,
                }
            }
        };
        if let Ok(n) = file.read_at(&mut buf, 0) {
            let score = std::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok());
            if let Some(score) = score {
                if best.len() < LIMIT {
                    best.push(OomProcess {
                        pid,
                        oom_score: score,
                        ..OomProcess::default()
                    });
                }
            }
        }
    }
    best
}

/// The period the mean cost of `costs` gives, and the CPU it averages to.
fn report_period(scanner: &TopOomScanner, costs: &[Duration]) {
    let mean_cost = costs.iter().sum::<Duration>() / costs.len() as u32;
    let period = (mean_cost.as_secs_f64() / BUDGET_FRACTION)
        .clamp(MIN_PERIOD.as_secs_f64(), MAX_PERIOD.as_secs_f64());
    let stats = scanner.last_stats();
    println!(
        "{:<28} candidates {} of {}; last_cost {:?} -> period {:?}; mean cost {:.3} ms -> \
         period {period:.1} s, {:.3} ms CPU per second on average",
        "",
        stats.candidates,
        stats.processes,
        scanner.last_cost(),
        scanner.period(),
        mean_cost.as_secs_f64() * 1e3,
        mean_cost.as_secs_f64() * 1e3 / period,
    );
}
