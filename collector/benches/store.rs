//! Storage benchmark: ingest, seal and on-disk size of sar data.
//!
//! Simulates `FLEET_BENCH_HOSTS` hosts (default 500) sending one sample every
//! `FLEET_BENCH_INTERVAL_S` seconds (default 10) for `FLEET_BENCH_INTERVALS` intervals (default
//! 720 = two one-hour chunk windows at 10 s), `FLEET_BENCH_SAMPLES_PER_BATCH` samples per batch
//! (default 1). What each host sends (`FLEET_BENCH_MIX`, default `sim:500`, a comma-separated
//! list of `kind:hosts` that overrides `FLEET_BENCH_HOSTS`):
//!
//! - `sim`: 157 values: CPU "all" + 4 CPUs, memory, swap, swapping, paging, io, 2 disks, load,
//!   3 network interfaces (DEV and EDEV) and PSI. Values are random walks and noisy rates with
//!   two decimals, with the many constant or zero columns a real host has (nice, steal, swap,
//!   errors, ...).
//! - `recorded`: this machine's real samples, recorded by `fleet-record-samples` into the file
//!   `FLEET_BENCH_RECORDING` (see `scripts/bench-store`, which records an hour at 1 s): replayed
//!   forwards, then backwards, and so on (rates and levels stay continuous), each host starting
//!   at its own point of the recording, with the recorded timing jitter and intervals.
//! - `loadgen`: the sample `fleet-loadgen` sends (`src/bin/loadgen/shape.rs`).
//!
//! Each interval is written as one group commit of `FLEET_BENCH_GROUP` batches (default: all
//! hosts) through `Store::write`. Printed: (a) values stored per second, per wall second and per
//! CPU second of the whole process (RocksDB's flush and compaction threads included, data
//! generation excluded); (b) seal throughput; (c) bytes on disk per value after sealing and a
//! full compaction (live SST files in the data directory / values stored); (d) query times.
//!
//! Run: `cargo bench -p fleet-collector --bench store` (release build); `scripts/bench-store`
//! runs it on a day of recorded and load generator data.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_collector::storage::{IngestItem, Store, StoreOptions, WriteOutcome};
use fleet_proto::v1::{Activity, HostIdentity, Record, Sample};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

// `Shape::values` serves fleet-loadgen only.
#[allow(dead_code)]
#[path = "../src/bin/loadgen/shape.rs"]
mod shape;

const HOUR_MS: i64 = 3_600_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds used so far: by the whole process, or by the calling thread.
fn cpu_seconds(who: libc::c_int) -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn process_cpu() -> f64 {
    cpu_seconds(libc::RUSAGE_SELF)
}

fn thread_cpu() -> f64 {
    cpu_seconds(libc::RUSAGE_THREAD)
}

/// A mean-reverting random walk, rounded to `decimals` (0 or 2) like sar prints it.
struct Walk {
    v: f64,
    mean: f64,
    step: f64,
    lo: f64,
    hi: f64,
}

impl Walk {
    fn new(mean: f64, step: f64, lo: f64, hi: f64) -> Walk {
        Walk {
            v: mean,
            mean,
            step,
            lo,
            hi,
        }
    }

    fn next(&mut self, rng: &mut SmallRng) -> f64 {
        let noise = rng.random_range(-1.0..1.0) + rng.random_range(-1.0..1.0);
        self.v += noise * self.step + (self.mean - self.v) * 0.05;
        self.v = self.v.clamp(self.lo, self.hi);
        self.v
    }
}

fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A noisy rate: `mean` ± `spread` (relative), two decimals; zero when `mean` is zero.
fn rate(rng: &mut SmallRng, mean: f64, spread: f64) -> f64 {
    if mean == 0.0 {
        return 0.0;
    }
    r2((mean * (1.0 + spread * rng.random_range(-1.0..1.0))).max(0.0))
}

/// Occasionally non-zero (errors, major faults): `p` chance of a small value.
fn rare(rng: &mut SmallRng, p: f64, size: f64) -> f64 {
    if rng.random_bool(p) {
        r2(rng.random_range(0.0..size))
    } else {
        0.0
    }
}

struct HostSim {
    rng: SmallRng,
    cpu_user: Vec<Walk>,
    cpu_sys: Vec<Walk>,
    mem_free: Walk,
    mem_cached: Walk,
    mem_commit: Walk,
    mem_active: Walk,
    plist: Walk,
    ld1: Walk,
    ld5: Walk,
    ld15: Walk,
    net_pck: Walk,
    disk_tps: Vec<Walk>,
    io_level: f64,
}

const MEM_TOTAL_KB: f64 = 32_000_000.0;
const CPUS: usize = 4;

impl HostSim {
    fn new(seed: u64) -> HostSim {
        let mut rng = SmallRng::seed_from_u64(seed);
        let busy = rng.random_range(2.0..40.0);
        HostSim {
            cpu_user: (0..CPUS).map(|_| Walk::new(busy, 2.0, 0.0, 90.0)).collect(),
            cpu_sys: (0..CPUS)
                .map(|_| Walk::new(busy * 0.3, 0.7, 0.0, 9.0))
                .collect(),
            mem_free: Walk::new(rng.random_range(2e6..20e6), 20_000.0, 1e5, 3e7),
            mem_cached: Walk::new(8e6, 5_000.0, 1e6, 1.5e7),
            mem_commit: Walk::new(1.2e7, 3_000.0, 1e6, 4e7),
            mem_active: Walk::new(1e7, 4_000.0, 1e6, 2.5e7),
            plist: Walk::new(rng.random_range(300.0..1500.0), 1.0, 100.0, 5000.0),
            ld1: Walk::new(busy / 25.0, 0.08, 0.0, 64.0),
            ld5: Walk::new(busy / 25.0, 0.02, 0.0, 64.0),
            ld15: Walk::new(busy / 25.0, 0.005, 0.0, 64.0),
            net_pck: Walk::new(rng.random_range(100.0..20_000.0), 50.0, 0.0, 1e6),
            disk_tps: (0..2).map(|_| Walk::new(50.0, 5.0, 0.0, 5000.0)).collect(),
            io_level: rng.random_range(10.0..500.0),
            rng,
        }
    }

    fn sample(&mut self, time_ms: i64, interval_ms: i64) -> Sample {
        let mut records = Vec::with_capacity(24);
        let rng = &mut self.rng;
        let rec = |activity: Activity, instance: &str, values: Vec<f64>| Record {
            activity: activity as i32,
            instance: instance.into(),
            values,
        };

        // CPU: per-CPU walks and their average.
        let mut per_cpu = Vec::with_capacity(CPUS);
        for c in 0..CPUS {
            let user = r2(self.cpu_user[c].next(rng));
            let sys = r2(self.cpu_sys[c].next(rng));
            let iowait = rare(rng, 0.3, 2.0);
            let idle = r2((100.0 - user - sys - iowait).max(0.0));
            per_cpu.push([user, 0.0, sys, iowait, 0.0, idle]);
        }
        let mut all = [0.0; 6];
        for c in &per_cpu {
            for (a, v) in all.iter_mut().zip(c) {
                *a += v / CPUS as f64;
            }
        }
        records.push(rec(
            Activity::Cpu,
            "all",
            all.iter().map(|v| r2(*v)).collect(),
        ));
        for (c, vals) in per_cpu.iter().enumerate() {
            records.push(rec(Activity::Cpu, &c.to_string(), vals.to_vec()));
        }

        // Memory (kB integers and percentages).
        let free = self.mem_free.next(rng).round();
        let cached = self.mem_cached.next(rng).round();
        let commit = self.mem_commit.next(rng).round();
        let active = self.mem_active.next(rng).round();
        let used = MEM_TOTAL_KB - free;
        records.push(rec(
            Activity::Memory,
            "-",
            vec![
                free,
                free + cached,
                used,
                r2(used / MEM_TOTAL_KB * 100.0),
                204_800.0,
                cached,
                commit,
                r2(commit / MEM_TOTAL_KB * 100.0),
                active,
                r2(MEM_TOTAL_KB - active - free).max(0.0).round(),
                rng.random_range(0.0..40_000.0_f64).round(),
            ],
        ));
        // No swap in use: constant.
        records.push(rec(
            Activity::Swap,
            "-",
            vec![2_097_148.0, 0.0, 0.0, 0.0, 0.0],
        ));
        records.push(rec(Activity::Swapping, "-", vec![0.0, 0.0]));
        let io = self.io_level;
        records.push(rec(
            Activity::Paging,
            "-",
            vec![
                rate(rng, io * 0.2, 0.8),
                rate(rng, io * 8.0, 0.5),
                rate(rng, 2500.0, 0.3),
                rare(rng, 0.05, 3.0),
                rate(rng, 3000.0, 0.3),
                0.0,
                0.0,
                0.0,
                0.0,
            ],
        ));
        let tps = rate(rng, io * 0.5, 0.4);
        records.push(rec(
            Activity::Io,
            "-",
            vec![
                tps,
                rare(rng, 0.2, 5.0),
                tps,
                0.0,
                rate(rng, io * 0.4, 0.8),
                rate(rng, io * 16.0, 0.5),
                0.0,
            ],
        ));
        for (d, name) in ["sda", "nvme0n1"].iter().enumerate() {
            let tps = r2(self.disk_tps[d].next(rng));
            let wkb = rate(rng, tps * 12.0, 0.3);
            records.push(rec(
                Activity::Disk,
                name,
                vec![
                    tps,
                    rare(rng, 0.2, 50.0),
                    wkb,
                    0.0,
                    rate(rng, 12.0, 0.2),
                    rate(rng, 0.05, 0.5),
                    rate(rng, 0.4, 0.5),
                    r2((tps / 50.0).min(100.0)),
                ],
            ));
        }
        records.push(rec(
            Activity::Load,
            "-",
            vec![
                f64::from(rng.random_range(0..4u8)),
                self.plist.next(rng).round(),
                r2(self.ld1.next(rng)),
                r2(self.ld5.next(rng)),
                r2(self.ld15.next(rng)),
                0.0,
            ],
        ));
        let pck = self.net_pck.next(rng);
        let ifaces = [("lo", 0.01), ("eth0", 1.0), ("eth1", 0.0)];
        for (name, share) in ifaces {
            let rx = rate(rng, pck * share, 0.2);
            let tx = rate(rng, pck * share * 0.8, 0.2);
            records.push(rec(
                Activity::NetDev,
                name,
                vec![
                    rx,
                    tx,
                    r2(rx * 0.9),
                    r2(tx * 1.1),
                    0.0,
                    0.0,
                    if share > 0.5 {
                        rare(rng, 0.5, 1.0)
                    } else {
                        0.0
                    },
                    r2(rx * 0.9 / 125_000.0 * 100.0),
                ],
            ));
        }
        for (name, _) in ifaces {
            let drop = if name == "eth0" {
                rare(rng, 0.02, 1.0)
            } else {
                0.0
            };
            records.push(rec(
                Activity::NetEdev,
                name,
                vec![0.0, 0.0, 0.0, drop, 0.0, 0.0, 0.0, 0.0, 0.0],
            ));
        }
        let stall = rare(rng, 0.3, 1.0);
        records.push(rec(
            Activity::PsiCpu,
            "-",
            vec![r2(stall * 0.8), r2(stall * 0.5), r2(stall * 0.3), stall],
        ));
        let io_stall = rare(rng, 0.1, 2.0);
        records.push(rec(
            Activity::PsiIo,
            "-",
            vec![
                r2(io_stall * 0.8),
                r2(io_stall * 0.4),
                r2(io_stall * 0.2),
                io_stall,
                r2(io_stall * 0.5),
                0.0,
                0.0,
                r2(io_stall * 0.5),
            ],
        ));
        records.push(rec(Activity::PsiMem, "-", vec![0.0; 8]));

        let jitter = rng.random_range(0..4i64);
        Sample {
            time_ms: time_ms + jitter,
            interval_ms: (interval_ms + rng.random_range(-2..3i64)) as u32,
            records,
            top_oom: Vec::new(),
            clock: None,
        }
    }
}

/// One recorded sample: its time, interval and records.
struct Recorded {
    time_ms: i64,
    interval_ms: u32,
    records: Vec<Record>,
}

/// Reads a recording of `fleet-record-samples` (see its doc for the format).
fn read_recording(path: &Path) -> Vec<Recorded> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read recording {}: {e}", path.display()));
    let mut out: Vec<Recorded> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bad = || format!("{}:{}: bad line {line:?}", path.display(), n + 1);
        let mut f = line.split(' ');
        let mut num = || -> i64 {
            f.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{}", bad()))
        };
        let time_ms = num();
        let interval_ms = u32::try_from(num()).unwrap_or_else(|_| panic!("{}", bad()));
        let activity = i32::try_from(num()).unwrap_or_else(|_| panic!("{}", bad()));
        let instance = f.next().unwrap_or_else(|| panic!("{}", bad())).to_string();
        let values = f
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{}", bad())))
            .collect::<Vec<f64>>();
        let record = Record {
            activity,
            instance,
            values,
        };
        match out.last_mut() {
            Some(last) if last.time_ms == time_ms => last.records.push(record),
            _ => out.push(Recorded {
                time_ms,
                interval_ms,
                records: vec![record],
            }),
        }
    }
    // A sample cut short at the end of an interrupted recording.
    if out.len() > 1 && out[out.len() - 1].records.len() < out[0].records.len() {
        out.pop();
    }
    assert!(out.len() >= 2, "{}: too short a recording", path.display());
    out
}

/// A host replaying a recording forwards, then backwards, and so on, from its own start.
struct Replay {
    rec: Arc<Vec<Recorded>>,
    /// Position in the forwards-then-backwards sequence of length `2 * (len - 1)`.
    pos: usize,
}

impl Replay {
    fn index(&self) -> usize {
        let last = self.rec.len() - 1;
        let p = self.pos % (2 * last);
        if p <= last {
            p
        } else {
            2 * last - p
        }
    }

    /// The next sample: at `time_ms` plus the recorded sample's offset from its own schedule
    /// (its timing jitter), with the recorded interval.
    fn sample(&mut self, time_ms: i64, interval_ms: i64) -> Sample {
        let i = self.index();
        self.pos += 1;
        let r = &self.rec[i];
        let scheduled = self.rec[0].time_ms + i as i64 * interval_ms;
        let jitter = (r.time_ms - scheduled).clamp(-interval_ms / 4, interval_ms / 4);
        Sample {
            time_ms: time_ms + jitter,
            interval_ms: r.interval_ms,
            records: r.records.clone(),
            top_oom: Vec::new(),
            clock: None,
        }
    }
}

/// What one simulated host sends.
enum Source {
    Sim(Box<HostSim>),
    Recorded(Replay),
    Loadgen(Box<shape::Shape>),
}

impl Source {
    fn sample(&mut self, time_ms: i64, interval_ms: i64) -> Sample {
        match self {
            Source::Sim(sim) => sim.sample(time_ms, interval_ms),
            Source::Recorded(replay) => replay.sample(time_ms, interval_ms),
            Source::Loadgen(shape) => Sample {
                time_ms,
                interval_ms: interval_ms as u32,
                records: shape.step(),
                top_oom: Vec::new(),
                clock: None,
            },
        }
    }
}

/// The hosts of `FLEET_BENCH_MIX` (see the module doc).
fn sources(mix: &str) -> Vec<Source> {
    let mut recording = None;
    let mut out = Vec::new();
    for part in mix.split(',').filter(|p| !p.is_empty()) {
        let (kind, n) = part
            .split_once(':')
            .and_then(|(k, n)| Some((k, n.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("FLEET_BENCH_MIX: bad part {part:?}"));
        for _ in 0..n {
            let seed = out.len() as u64;
            out.push(match kind {
                "sim" => Source::Sim(Box::new(HostSim::new(seed))),
                "loadgen" => Source::Loadgen(Box::new(shape::Shape::new(seed * 7919 + 1))),
                "recorded" => {
                    let rec: &Arc<Vec<Recorded>> = recording.get_or_insert_with(|| {
                        let path = std::env::var_os("FLEET_BENCH_RECORDING")
                            .expect("FLEET_BENCH_RECORDING names the recording");
                        Arc::new(read_recording(Path::new(&path)))
                    });
                    // Hosts start 7/19 of the way apart, so no two replay the same stretch.
                    let pos = (seed as usize * 7 * rec.len() / 19) % (2 * (rec.len() - 1));
                    Source::Recorded(Replay {
                        rec: rec.clone(),
                        pos,
                    })
                }
                k => panic!("FLEET_BENCH_MIX: unknown kind {k:?}"),
            });
        }
    }
    out
}

fn dir_sst_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read data dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

fn main() {
    let mix = std::env::var("FLEET_BENCH_MIX")
        .unwrap_or_else(|_| format!("sim:{}", env_usize("FLEET_BENCH_HOSTS", 500)));
    let mut sims = sources(&mix);
    let hosts = sims.len();
    assert!(hosts > 0, "no hosts");
    let intervals = env_usize("FLEET_BENCH_INTERVALS", 720);
    let group = env_usize("FLEET_BENCH_GROUP", hosts).max(1);
    let interval_ms = env_usize("FLEET_BENCH_INTERVAL_S", 10).max(1) as i64 * 1000;
    let per_batch = env_usize("FLEET_BENCH_SAMPLES_PER_BATCH", 1).max(1);
    let base = std::env::var_os("FLEET_BENCH_DIR").map(std::path::PathBuf::from);
    let tmp = match &base {
        Some(b) => tempfile::tempdir_in(b),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let dir = tmp.path();

    let store = Store::open(dir, StoreOptions::default()).expect("open store");
    // A window-aligned start a day ago.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = (now_ms - 24 * HOUR_MS) / HOUR_MS * HOUR_MS;

    let nums: Vec<u32> = (0..hosts)
        .map(|i| {
            let id = HostIdentity {
                host_id: format!("{i:032x}"),
                hostname: format!("node{i:04}.dc1.example"),
                cluster: "dc1".into(),
                ..Default::default()
            };
            store.upsert_host(&id, t0, true).expect("upsert").num
        })
        .collect();
    println!(
        "fleet storage bench: {hosts} hosts ({mix}) x {intervals} intervals of {} s, \
         group commits of {group} batches of {per_batch} samples",
        interval_ms / 1000
    );

    // (a) Ingest.
    let mut values: u64 = 0;
    let mut write_wall = Duration::ZERO;
    let mut writer_cpu = 0.0;
    let mut gen_cpu = 0.0;
    let mut commits = 0u64;
    // CPU rows per sample of host 0, for the check of the query below.
    let mut cpu_instances = 0;
    let cpu_start = process_cpu();
    let wall_start = Instant::now();
    for b in 0..intervals.div_ceil(per_batch) {
        let batch = b * per_batch..((b + 1) * per_batch).min(intervals);
        let t = t0 + batch.end as i64 * interval_ms;
        for (hs, ns) in sims.chunks_mut(group).zip(nums.chunks(group)) {
            let g0 = thread_cpu();
            let items: Vec<IngestItem> = hs
                .iter_mut()
                .zip(ns)
                .map(|(sim, &num)| IngestItem {
                    host_num: num,
                    epoch: 7,
                    seq: b as u64 + 1,
                    dropped_samples: 0,
                    samples: batch
                        .clone()
                        .map(|i| sim.sample(t0 + i as i64 * interval_ms, interval_ms))
                        .collect(),
                    ..Default::default()
                })
                .collect();
            if b == 0 && cpu_instances == 0 {
                cpu_instances = items[0].samples[0]
                    .records
                    .iter()
                    .filter(|r| r.activity == Activity::Cpu as i32)
                    .count();
            }
            let n: usize = items
                .iter()
                .flat_map(|it| &it.samples)
                .flat_map(|s| &s.records)
                .map(|r| r.values.len())
                .sum();
            let w0 = thread_cpu();
            gen_cpu += w0 - g0;
            let started = Instant::now();
            let out = store.write(&items, t + 500).expect("write");
            write_wall += started.elapsed();
            writer_cpu += thread_cpu() - w0;
            assert!(out.iter().all(|o| *o == WriteOutcome::STORED));
            values += n as u64;
            commits += 1;
        }
    }
    store.flush().expect("flush");
    let ingest_wall = wall_start.elapsed().as_secs_f64();
    let ingest_cpu = process_cpu() - cpu_start - gen_cpu;
    let raw_sst: u64 = store.sst_bytes().expect("sst").values().sum();
    println!("(a) ingest: {values} values in {commits} synced group commits");
    println!(
        "    write() calls: {:.2} s wall -> {:.0} values/s ({:.2} ms per commit)",
        write_wall.as_secs_f64(),
        values as f64 / write_wall.as_secs_f64(),
        write_wall.as_secs_f64() * 1e3 / commits as f64
    );
    println!(
        "    writer thread CPU in write(): {:.2} s -> {:.0} values per CPU-second",
        writer_cpu,
        values as f64 / writer_cpu
    );
    println!(
        "    whole process incl. RocksDB flush/compaction threads, excl. data generation: \
         {:.2} CPU-s over {:.2} s wall -> {:.0} values per CPU-second",
        ingest_cpu,
        ingest_wall,
        values as f64 / ingest_cpu
    );
    println!(
        "    unsealed (raw) SSTs after flush: {:.1} MB = {:.2} bytes/value",
        raw_sst as f64 / 1e6,
        raw_sst as f64 / values as f64
    );

    // (b) Seal every window (now = end + two windows).
    let seal_now = t0 + intervals as i64 * interval_ms + 3 * HOUR_MS;
    let cpu0 = process_cpu();
    let started = Instant::now();
    let stats = store.seal(seal_now).expect("seal");
    let seal_wall = started.elapsed().as_secs_f64();
    let seal_cpu = process_cpu() - cpu0;
    assert_eq!(stats.values, values, "every value sealed");
    println!(
        "(b) seal: {} groups, {} samples, {} chunks in {:.2} s wall / {:.2} CPU-s -> {:.0} values/s",
        stats.groups,
        stats.samples,
        stats.chunks,
        seal_wall,
        seal_cpu,
        stats.values as f64 / seal_wall
    );
    println!(
        "    encoded chunks: {:.1} MB = {:.3} bytes/value before RocksDB compression \
         ({:.1} rows per chunk)",
        stats.chunk_bytes as f64 / 1e6,
        stats.chunk_bytes as f64 / values as f64,
        stats.rows as f64 / stats.chunks as f64
    );

    // (c) Size after a full compaction.
    let started = Instant::now();
    store.flush().expect("flush");
    store.compact().expect("compact");
    let compact_s = started.elapsed().as_secs_f64();
    let per_cf = store.sst_bytes().expect("sst");
    let on_disk = dir_sst_bytes(dir);
    println!(
        "(c) after seal + full compaction ({compact_s:.2} s): {:.2} MB of SST files = {:.3} bytes/value",
        on_disk as f64 / 1e6,
        on_disk as f64 / values as f64
    );
    for (cf, bytes) in &per_cf {
        println!(
            "    {cf:>8}: {:>10} bytes = {:.3} bytes/value",
            bytes,
            *bytes as f64 / values as f64
        );
    }

    // (d) Query sanity and speed: whole range, a few hosts and activities, warm (median of 5).
    let started = Instant::now();
    let rows = store
        .query(nums[0], Activity::Cpu, t0, seal_now)
        .expect("query");
    println!(
        "(d) query: {} CPU rows of one host over {} h in {:.1} ms (first)",
        rows.len(),
        intervals as i64 * interval_ms / HOUR_MS,
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(rows.len(), intervals * cpu_instances);
    let activities = [
        Activity::Cpu,
        Activity::Memory,
        Activity::Disk,
        Activity::NetDev,
    ];
    let mut runs = Vec::new();
    let mut total_rows = 0;
    for _ in 0..5 {
        let c0 = thread_cpu();
        total_rows = 0;
        for &num in nums.iter().take(4) {
            for a in activities {
                total_rows += store.query(num, a, t0, seal_now).expect("query").len();
            }
        }
        runs.push(thread_cpu() - c0);
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "    CPU, memory, disk and network rows of {} hosts: {total_rows} rows in {:.1} ms CPU \
         (median of 5)",
        hosts.min(4),
        runs[2] * 1e3
    );
}
