//! Downsampled query benchmark (issue 14): 30 days of one host's CPU ("all", six columns) at a
//! 1 s interval, 2,592,000 rows, read back in 1,000 buckets by `Store::query_buckets`, against
//! `Store::query` returning every row of the same range.
//!
//! The store is filled through `Store::write` (one item per hour of samples), sealed as the
//! collector seals it (the last window stays unsealed, as it would be), flushed and fully
//! compacted. Each query runs `FLEET_BENCH_RUNS` times (default 15); printed: the first run and
//! the median and fastest of all, and the median CPU time of the querying thread (RocksDB reads
//! on it: the figure that does not count the other work of a shared machine). `FLEET_BENCH_DAYS` (default 30) and `FLEET_BENCH_BUCKETS`
//! (default 1000) change the range and the bucket count; `FLEET_BENCH_RAW=0` leaves out the raw
//! query (for a profile of the other).
//!
//! Run: `cargo bench -p fleet-collector --bench downsample` (release build).

use std::time::{Duration, Instant};

use fleet_collector::storage::{IngestItem, Store, StoreOptions};
use fleet_proto::v1::{Activity, HostIdentity, Record, Sample};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const HOUR_MS: i64 = 3_600_000;

fn env_i64(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `v` with two decimals, as sar prints it.
fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// One hour of 1 s CPU samples from `start_ms`: %user and %system random walks with spikes,
/// %iowait small noise, %nice and %steal zero, %idle the rest.
fn hour(rng: &mut SmallRng, user: &mut f64, start_ms: i64) -> Vec<Sample> {
    (0..3600)
        .map(|i| {
            *user = (*user + rng.random_range(-1.0..1.0)).clamp(0.0, 60.0);
            let u = if rng.random_range(0..600) == 0 {
                95.0
            } else {
                r2(*user)
            };
            let sys = r2(u / 4.0 + rng.random_range(0.0..1.0));
            let iowait = r2(rng.random_range(0.0..0.3));
            let idle = r2((100.0 - u - sys - iowait).max(0.0));
            Sample {
                time_ms: start_ms + i * 1000,
                interval_ms: 1000,
                records: vec![Record {
                    activity: Activity::Cpu as i32,
                    instance: "all".into(),
                    values: vec![u, 0.0, sys, iowait, 0.0, idle],
                }],
                ..Sample::default()
            }
        })
        .collect()
}

/// CPU time of the calling thread: on a machine shared with other work, wall time measures the
/// neighbours too.
fn thread_cpu() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// What [`time`] measured: the first run, the median and fastest of all, wall and thread CPU.
struct Timing {
    first: Duration,
    median: Duration,
    fastest: Duration,
    cpu_median: Duration,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "wall: first {:.1} ms, median {:.1} ms, fastest {:.1} ms; CPU median {:.1} ms",
            ms(self.first),
            ms(self.median),
            ms(self.fastest),
            ms(self.cpu_median)
        )
    }
}

/// Runs `f` `runs` times; returns the timing and the last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Timing, T) {
    let mut wall = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let (start, start_cpu) = (Instant::now(), thread_cpu());
        let out = f();
        wall.push(start.elapsed());
        cpu.push(thread_cpu().saturating_sub(start_cpu));
        last = Some(out);
    }
    let first = wall[0];
    wall.sort();
    cpu.sort();
    let timing = Timing {
        first,
        median: wall[wall.len() / 2],
        fastest: wall[0],
        cpu_median: cpu[cpu.len() / 2],
    };
    (timing, last.expect("ran once"))
}

fn main() {
    let days = env_i64("FLEET_BENCH_DAYS", 30).max(1);
    let buckets = env_i64("FLEET_BENCH_BUCKETS", 1000).max(1);
    let runs = env_i64("FLEET_BENCH_RUNS", 15).max(1) as usize;
    let tmp = tempfile::tempdir().expect("temp dir");
    let store = Store::open(tmp.path(), StoreOptions::default()).expect("open store");
    let now_ms = fleet_proto::clock::now_ms();
    let end = now_ms / HOUR_MS * HOUR_MS;
    let start = end - days * 24 * HOUR_MS;
    let id = HostIdentity {
        host_id: "bench".into(),
        hostname: "bench".into(),
        cluster: "dc1".into(),
        ..HostIdentity::default()
    };
    let host = store.upsert_host(&id, start, true).expect("upsert").num;

    let fill = Instant::now();
    let mut rng = SmallRng::seed_from_u64(14);
    let mut user = 20.0;
    for (seq, h) in (0..days * 24).enumerate() {
        let item = IngestItem {
            host_num: host,
            epoch: 1,
            seq: seq as u64 + 1,
            samples: hour(&mut rng, &mut user, start + h * HOUR_MS),
            ..IngestItem::default()
        };
        store.write(&[item], now_ms).expect("write");
    }
    let filled = fill.elapsed();
    let seal = Instant::now();
    let stats = store.seal(end).expect("seal");
    store.flush().expect("flush");
    store.compact().expect("compact");
    let sealed = seal.elapsed();
    // Let RocksDB's background jobs of the fill end before anything is timed.
    std::thread::sleep(Duration::from_secs(3));
    let rows = days * 24 * 3600;
    let sst = store.sst_bytes().expect("sst bytes");
    println!(
        "fleet downsample bench: {days} days of CPU \"all\" at 1 s = {rows} rows; written in \
         {:.1} s, sealed ({} windows, {} left unsealed) and compacted in {:.1} s; chunks {:.1} MB, \
         raw {:.1} MB on disk",
        filled.as_secs_f64(),
        stats.groups,
        days * 24 - stats.groups as i64,
        sealed.as_secs_f64(),
        *sst.get("chunks").unwrap_or(&0) as f64 / 1e6,
        *sst.get("raw").unwrap_or(&0) as f64 / 1e6,
    );

    let until = end - 1;
    let step = (until - start) / buckets + 1;
    let (timing, out) = time(runs, || {
        store
            .query_buckets(host, Activity::Cpu, start, until, step)
            .expect("query_buckets")
    });
    let counted: u64 = out[0].buckets.iter().map(|b| u64::from(b.count[0])).sum();
    assert_eq!(counted, rows as u64, "every row in a bucket");
    println!(
        "query_buckets, {} buckets of {} s, {runs} runs: {timing}",
        out[0].buckets.len(),
        step / 1000,
    );
    drop(out);
    if env_i64("FLEET_BENCH_RAW", 1) == 0 {
        return;
    }
    let (timing, out) = time(runs, || {
        store
            .query(host, Activity::Cpu, start, until)
            .expect("query")
    });
    assert_eq!(out.len(), rows as usize);
    println!("query (every row), {runs} runs: {timing}");
}
