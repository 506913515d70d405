//! Fleet's sampler against the real `sar` over the same window, on this machine, under a CPU and
//! memory load the test makes itself.
//!
//! sysstat must be installed (`apt-get install sysstat`); without `sar` this test fails, it does
//! not skip. It runs `sar -o FILE 3 1` (sar's collector `sadc` then takes two readings 3 s apart
//! and writes them to FILE), takes the Sampler's baseline right after sadc's first reading lands
//! in FILE and its sample right after the second, then prints the file with
//! `sar -f FILE -u -P ALL -r -S -W -B -b -d -p -q ALL -n DEV,EDEV` and compares every column sar
//! prints with the matching record. The columns are identified by their header, through
//! `fleet_proto::schema`, so the parsing does not depend on sar's column widths or order.
//!
//! Tolerances (the two readings of each tool are a few milliseconds apart, and other processes,
//! e.g. concurrent builds, keep changing memory and I/O counters in between):
//! - CPU percentages: 3 points.
//! - kB amounts (`-r`, `-S`): 2 %, or 32 MiB. Other percentages of memory: 1 point.
//! - Rates: 10 %, or a small absolute amount per kind (5/s for operations and packets, 300/s for
//!   pages, 500 sectors/s, 250 kB/s, 5 kB/s of network traffic); `%vmeff` 5 points; disk
//!   `areq-sz`, `aqu-sz`, `await`, `%util`: 25 % or 8 kB / 0.1 / 2 ms / 2 points, and the
//!   per-request averages `areq-sz` and `await` only when the device did 20 I/Os or more.
//! - Instantaneous counts (`-q`): `runq-sz` and `blocked` within 4, `plist-sz` within 10 % or 20,
//!   load averages within 0.25 (the kernel updates them every 5 s).
//! - Pressure: averages within 2 points, interval percentages within 10 % or 2 points.
//!
//! `FLEET_SAR_VERBOSE=1` prints every comparison.
//!
//! A window can be disturbed by a burst from another process landing between the two tools'
//! readings; the comparison is retried (a new window) up to 3 times, and fails only if no
//! window matches.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_agent::sources::procfs::{SampleOut, Sampler};
use fleet_proto::schema::{self, ActivitySchema};
use fleet_proto::v1::Activity;

const SAR_ENV: [(&str, &str); 3] = [
    ("LC_ALL", "C"),
    ("S_TIME_FORMAT", "ISO"),
    ("S_COLORS", "never"),
];

#[test]
fn matches_real_sar_under_load() {
    match Command::new("sar").arg("-V").output() {
        Ok(_) => {}
        Err(e) => panic!(
            "cannot run `sar` ({e}): install sysstat (e.g. `apt-get install sysstat`); \
             this test compares Fleet with the real sar and does not skip"
        ),
    }
    let mut failures = Vec::new();
    for attempt in 1..=3 {
        match window() {
            Ok(summary) => {
                eprintln!("sar comparison, attempt {attempt}: {summary}");
                return;
            }
            Err(e) => {
                eprintln!("sar comparison, attempt {attempt} failed:\n{e}");
                failures.push(e);
            }
        }
    }
    panic!(
        "Fleet and sar disagree in 3 windows:\n{}",
        failures.join("\n---\n")
    );
}

/// A spinning thread and 200 MiB allocated and touched one second in; both stop on drop (and
/// by themselves after 15 s at most).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start() -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + Duration::from_secs(15);
        let s = stop.clone();
        let spin = std::thread::spawn(move || {
            let mut x = 0u64;
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                for i in 0..10_000u64 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                }
                std::hint::black_box(x);
            }
        });
        let s = stop.clone();
        let mem = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            let mut v = vec![0u8; 200 << 20];
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            std::hint::black_box(&v);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(v);
        });
        Load {
            stop,
            threads: vec![spin, mem],
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Waits until `path` is larger than `than`; returns false at the deadline.
fn grows(path: &Path, than: u64, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if size(path) > than {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    false
}

/// Waits until `path` has not grown for 10 ms.
fn settle(path: &Path) {
    let mut last = size(path);
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_millis(10) {
        std::thread::sleep(Duration::from_micros(200));
        let now = size(path);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// One comparison window; a summary, or every disagreement.
fn window() -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("window.sa");
    let load = Load::start();
    std::thread::sleep(Duration::from_millis(300));

    let mut sar = Command::new("sar")
        .arg("-o")
        .arg(&file)
        .args(["3", "1"])
        .envs(SAR_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning sar: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    // sadc writes the file header, then the first record right after its first reading.
    if !grows(&file, 0, deadline) {
        let _ = sar.kill();
        return Err("sar -o wrote nothing".into());
    }
    let header = size(&file);
    // If header and record were written together before we looked, there is no second growth
    // soon: take the baseline after 50 ms anyway (1.7 % of the window at worst). The record is
    // written in several `write`s: wait until the file stops growing.
    grows(&file, header, Instant::now() + Duration::from_millis(50));
    settle(&file);
    let mut sampler = Sampler::new(Path::new("/proc"), Path::new("/sys"))
        .map_err(|e| format!("Sampler::new: {e}"))?;
    let first = size(&file);
    if !grows(&file, first, deadline) {
        let _ = sar.kill();
        return Err("sar did not write its second reading".into());
    }
    let ours = sampler.sample().map_err(|e| format!("sample: {e}"))?;
    let status = sar.wait_with_output().map_err(|e| e.to_string())?;
    drop(load);
    if !status.status.success() {
        return Err(format!(
            "sar -o failed: {}",
            String::from_utf8_lossy(&status.stderr)
        ));
    }

    let printed = Command::new("sar")
        .arg("-f")
        .arg(&file)
        .args([
            "-u", "-P", "ALL", "-r", "-S", "-W", "-B", "-b", "-d", "-p", "-q", "ALL", "-n",
            "DEV,EDEV",
        ])
        .envs(SAR_ENV)
        .output()
        .map_err(|e| format!("sar -f: {e}"))?;
    let text = String::from_utf8_lossy(&printed.stdout);
    let theirs = parse_sar(&text)?;
    compare(&ours, &theirs).map_err(|e| format!("{e}\nsar printed:\n{text}"))
}

/// sar's figures by (activity, instance): column name to value.
type SarRows = HashMap<(Activity, String), Vec<(&'static str, f64)>>;

/// Parses sar's text report. Sections are a header line (time, column names) and data lines
/// (time, values, and the instance column where its header says); `Average:` lines, the banner
/// and sections of activities Fleet does not know are skipped.
fn parse_sar(text: &str) -> Result<SarRows, String> {
    let mut rows = SarRows::new();
    let mut section: Option<(&'static ActivitySchema, Vec<String>)> = None;
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.len() < 2 || tokens[0].starts_with("Average") || tokens[0] == "Linux" {
            if tokens.is_empty() {
                section = None;
            }
            continue;
        }
        let cells = &tokens[1..];
        if cells.iter().all(|c| c.parse::<f64>().is_err()) {
            // Header: find the activity whose schema has exactly these columns.
            let found = schema::ACTIVITIES.iter().find(|s| {
                let cols: Vec<&str> = cells
                    .iter()
                    .copied()
                    .filter(|c| Some(*c) != s.instance_column)
                    .collect();
                cols == s.columns
            });
            section = found.map(|s| (s, cells.iter().map(|c| c.to_string()).collect()));
            continue;
        }
        let Some((s, header)) = &section else {
            continue;
        };
        if header.len() != cells.len() {
            return Err(format!("sar line does not match its header: {line:?}"));
        }
        let mut instance = "-".to_string();
        let mut values = Vec::new();
        for (h, c) in header.iter().zip(cells) {
            if Some(h.as_str()) == s.instance_column {
                instance = c.to_string();
            } else {
                let col = s
                    .columns
                    .iter()
                    .find(|x| **x == h.as_str())
                    .ok_or_else(|| format!("unknown column {h}"))?;
                let v = c
                    .parse::<f64>()
                    .map_err(|_| format!("not a number in {col}: {line:?}"))?;
                values.push((*col, v));
            }
        }
        rows.insert((s.activity, instance), values);
    }
    Ok(rows)
}

/// Largest allowed difference between Fleet's `ours` and sar's `theirs` for `column`.
fn tolerance(activity: Activity, column: &str, ours: f64, theirs: f64) -> f64 {
    let big = ours.abs().max(theirs.abs());
    let rel = |r: f64, floor: f64| (big * r).max(floor);
    match activity {
        Activity::Cpu => 3.0,
        Activity::Memory | Activity::Swap if column.starts_with('%') => 1.0,
        Activity::Memory | Activity::Swap => rel(0.02, 32768.0),
        Activity::Swapping | Activity::Paging if column == "%vmeff" => 5.0,
        Activity::Swapping | Activity::Paging => rel(0.10, 300.0),
        Activity::Io if column.starts_with('b') => rel(0.10, 500.0),
        Activity::Io => rel(0.10, 5.0),
        Activity::Disk => match column {
            "tps" => rel(0.10, 5.0),
            "areq-sz" => rel(0.25, 8.0),
            "aqu-sz" => rel(0.25, 0.1),
            "await" => rel(0.25, 2.0),
            "%util" => rel(0.25, 2.0),
            _ => rel(0.10, 250.0),
        },
        Activity::Load => match column {
            "runq-sz" | "blocked" => 4.0,
            "plist-sz" => rel(0.10, 20.0),
            _ => 0.25,
        },
        Activity::NetDev if column == "%ifutil" => 1.0,
        Activity::NetDev => rel(0.10, 5.0),
        Activity::NetEdev => rel(0.10, 1.0),
        Activity::PsiCpu | Activity::PsiIo | Activity::PsiMem => {
            if column.contains('-') {
                2.0
            } else {
                rel(0.10, 2.0)
            }
        }
        Activity::Unspecified => 0.0,
    }
}

fn compare(ours: &SampleOut, theirs: &SarRows) -> Result<String, String> {
    let mut problems = Vec::new();
    let mut compared = 0;
    let mut worst: Option<(f64, String)> = None;
    for required in [
        Activity::Cpu,
        Activity::Memory,
        Activity::Swap,
        Activity::Swapping,
        Activity::Paging,
        Activity::Io,
        Activity::Load,
        Activity::NetDev,
        Activity::NetEdev,
    ] {
        if !theirs.keys().any(|(a, _)| *a == required) {
            problems.push(format!("sar printed no {required:?} section"));
        }
    }
    for ((activity, instance), cols) in theirs {
        let Some(rec) = ours
            .records
            .iter()
            .find(|r| r.activity == *activity as i32 && &r.instance == instance)
        else {
            problems.push(format!("Fleet has no {activity:?} record for {instance:?}"));
            continue;
        };
        let s = schema::schema(*activity).ok_or("schema")?;
        // Per-request averages over a handful of I/Os change completely with one I/O more or
        // less at the window's edges: compared only over 20 I/Os or more.
        let few_ios = *activity == Activity::Disk
            && cols
                .iter()
                .find(|(c, _)| *c == "tps")
                .is_some_and(|(_, tps)| {
                    tps.min(rec.values[0]) * f64::from(ours.interval_ms) / 1000.0 < 20.0
                });
        for (col, theirs) in cols {
            if few_ios && matches!(*col, "areq-sz" | "await") {
                continue;
            }
            let i = s.columns.iter().position(|c| c == col).ok_or("column")?;
            let ours = rec.values[i];
            let tol = tolerance(*activity, col, ours, *theirs);
            compared += 1;
            let diff = (ours - theirs).abs();
            if std::env::var_os("FLEET_SAR_VERBOSE").is_some() {
                eprintln!(
                    "{activity:?} {instance} {col}: Fleet {ours:.2} sar {theirs:.2} (±{tol:.2})"
                );
            }
            let share = if tol > 0.0 { diff / tol } else { 0.0 };
            if worst.as_ref().is_none_or(|(w, _)| share > *w) {
                worst = Some((
                    share,
                    format!("{activity:?} {instance} {col}: Fleet {ours:.2}, sar {theirs:.2}"),
                ));
            }
            if diff > tol {
                problems.push(format!(
                    "{activity:?} {instance} {col}: Fleet {ours:.2}, sar {theirs:.2} (tolerance {tol:.2})"
                ));
            }
        }
    }
    // Fleet shows the same CPUs and interfaces as sar.
    for r in &ours.records {
        let a = Activity::try_from(r.activity).map_err(|e| e.to_string())?;
        if matches!(a, Activity::Cpu | Activity::NetDev | Activity::NetEdev)
            && !theirs.contains_key(&(a, r.instance.clone()))
        {
            problems.push(format!("sar has no {a:?} line for {:?}", r.instance));
        }
    }
    // The load was inside the window: the spinner alone keeps one of the CPUs busy.
    if let Some(all) = ours
        .records
        .iter()
        .find(|r| r.activity == Activity::Cpu as i32 && r.instance == "all")
    {
        let cpus = ours
            .records
            .iter()
            .filter(|r| r.activity == Activity::Cpu as i32 && r.instance != "all")
            .count()
            .max(1);
        let busy = 100.0 - all.values[5];
        if busy < 0.8 * 100.0 / cpus as f64 {
            problems.push(format!(
                "CPU only {busy:.1}% busy: the load was not measured"
            ));
        }
    }
    if problems.is_empty() {
        let (share, what) = worst.unwrap_or((0.0, "nothing".into()));
        Ok(format!(
            "{compared} values within tolerance over {} ms; closest to its limit ({:.0}% of it): {what}",
            ours.interval_ms,
            share * 100.0
        ))
    } else {
        Err(problems.join("\n"))
    }
}
