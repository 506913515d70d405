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
use std::time::{Duration, Instant};

use fleet_collector::storage::{IngestItem, Store, StoreOptions, WriteOutcome};
use fleet_proto::v1::{Activity, HostIdentity};

// `Shape::values` serves fleet-loadgen only.
#[allow(dead_code)]
#[path = "../src/bin/loadgen/shape.rs"]
mod shape;

mod common {
    pub mod hosts;
}
use common::hosts::sources;

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
