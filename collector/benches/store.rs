//! Storage benchmark: ingest, seal and on-disk size of realistic sar data.
//!
//! Simulates `FLEET_BENCH_HOSTS` hosts (default 500) sending one sample every
//! `FLEET_BENCH_INTERVAL_S` seconds (default 10) for `FLEET_BENCH_INTERVALS` intervals (default
//! 720 = two one-hour chunk windows at 10 s). Each sample has
//! 157 values: CPU "all" + 4 CPUs, memory, swap, swapping, paging, io, 2 disks, load, 3 network
//! interfaces (DEV and EDEV) and PSI. Values are random walks and noisy rates with two decimals,
//! with the many constant or zero columns a real host has (nice, steal, swap, errors, ...).
//!
//! Each interval is written as one group commit of `FLEET_BENCH_GROUP` batches (default: all
//! hosts) through `Store::write`. Printed: (a) values stored per second, per wall second and per
//! CPU second of the whole process (RocksDB's flush and compaction threads included, data
//! generation excluded); (b) seal throughput; (c) bytes on disk per value after sealing and a
//! full compaction (live SST files in the data directory / values stored).
//!
//! Run: `cargo bench -p fleet-collector --bench store` (release build).

use std::path::Path;
use std::time::{Duration, Instant};

use fleet_collector::storage::{IngestItem, Store, StoreOptions, WriteOutcome};
use fleet_proto::v1::{Activity, HostIdentity, Record, Sample};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

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

fn dir_sst_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read data dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

fn main() {
    let hosts = env_usize("FLEET_BENCH_HOSTS", 500);
    let intervals = env_usize("FLEET_BENCH_INTERVALS", 720);
    let group = env_usize("FLEET_BENCH_GROUP", hosts).max(1);
    let interval_ms = env_usize("FLEET_BENCH_INTERVAL_S", 10).max(1) as i64 * 1000;
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

    let mut sims: Vec<HostSim> = (0..hosts as u64).map(HostSim::new).collect();
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
    let values_per_sample: usize = sims[0]
        .sample(t0, interval_ms)
        .records
        .iter()
        .map(|r| r.values.len())
        .sum();
    println!(
        "fleet storage bench: {hosts} hosts x {intervals} intervals of {} s, \
         {values_per_sample} values per host-interval, group commit of {group} batches",
        interval_ms / 1000
    );

    // (a) Ingest.
    let mut values: u64 = 0;
    let mut write_wall = Duration::ZERO;
    let mut writer_cpu = 0.0;
    let mut gen_cpu = 0.0;
    let mut commits = 0u64;
    let cpu_start = process_cpu();
    let wall_start = Instant::now();
    for i in 0..intervals {
        let t = t0 + i as i64 * interval_ms;
        for (hs, ns) in sims.chunks_mut(group).zip(nums.chunks(group)) {
            let g0 = thread_cpu();
            let items: Vec<IngestItem> = hs
                .iter_mut()
                .zip(ns)
                .map(|(sim, &num)| IngestItem {
                    host_num: num,
                    epoch: 7,
                    seq: i as u64 + 1,
                    dropped_samples: 0,
                    samples: vec![sim.sample(t, interval_ms)],
                    ..Default::default()
                })
                .collect();
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

    // Query sanity and speed: one host, one activity, the whole range.
    let started = Instant::now();
    let rows = store
        .query(nums[0], Activity::Cpu, t0, seal_now)
        .expect("query");
    println!(
        "query: {} CPU rows of one host over {} h in {:.1} ms",
        rows.len(),
        intervals as i64 * interval_ms / HOUR_MS,
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(rows.len(), intervals * (CPUS + 1));
}
