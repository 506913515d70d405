//! Live state benchmark: the latest values of many hosts, as the rules and the console read them.
//!
//! `FLEET_BENCH_HOSTS` hosts (default 10,000) are registered in a real store, and each sends
//! `FLEET_BENCH_ROUNDS` samples (default 10) of a realistic shape (CPU "all" + 4 CPUs, memory,
//! swap, swapping, paging, I/O, 2 disks, load, 3 network interfaces (DEV and EDEV) and PSI) with
//! an NTP reading, into [`Live::observe`]. Printed, median and maximum over the repeats:
//! (a) `Live::observe` per batch; (b) the rules' view of the whole fleet (`fleet_view`) with the
//! shipped rules (deploy/rules/default.toml), made new; (c) refreshed in place, as the rules
//! loop does each second; (d) refreshed and evaluated by those rules; (e) every host's clock as
//! `ListNtp` (the console's overview) reads it.
//!
//! Run: `cargo bench -p fleet-collector --bench live` (release build).

use std::time::{Duration, Instant};

use fleet_collector::rules::{fleet_view, refresh_view, Live, Observation};
use fleet_collector::storage::{Store, StoreOptions};
use fleet_proto::schema::ACTIVITIES;
use fleet_proto::v1::{
    Activity, Batch, ClockStatus, HostIdentity, NtpServerStatus, Record, Sample,
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The instances a realistic host reports for `activity`.
fn instances(activity: Activity) -> &'static [&'static str] {
    match activity {
        Activity::Cpu => &["all", "0", "1", "2", "3"],
        Activity::Disk => &["nvme0n1", "sda"],
        Activity::NetDev | Activity::NetEdev => &["lo", "eth0", "docker0"],
        _ => &["-"],
    }
}

fn batch(seq: u64, time_ms: i64) -> Batch {
    let mut records = Vec::new();
    for a in ACTIVITIES {
        for &instance in instances(a.activity) {
            records.push(Record {
                activity: a.activity as i32,
                instance: instance.into(),
                values: (0..a.columns.len())
                    .map(|i| (seq as f64 + i as f64) * 1.5)
                    .collect(),
            });
        }
    }
    Batch {
        seq,
        samples: vec![Sample {
            time_ms,
            interval_ms: 1000,
            records,
            clock: Some(ClockStatus {
                servers: ["10.0.0.1:123", "10.0.0.2:123"]
                    .iter()
                    .map(|&server| NtpServerStatus {
                        server: server.into(),
                        offset_ms: 0.5,
                        stratum: 2,
                        reachable: true,
                        synced: true,
                        ..NtpServerStatus::default()
                    })
                    .collect(),
                ..ClockStatus::default()
            }),
            ..Sample::default()
        }],
        ..Batch::default()
    }
}

/// CPU time used so far by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime writes into the struct we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` `n` times; prints the median and maximum of its thread CPU time and wall time
/// (on a busy machine the CPU time is the figure that compares).
fn time(what: &str, n: usize, mut f: impl FnMut()) {
    let (mut cpu, mut wall): (Vec<Duration>, Vec<Duration>) = (0..n)
        .map(|_| {
            let (c, t) = (thread_cpu(), Instant::now());
            f();
            (thread_cpu() - c, t.elapsed())
        })
        .unzip();
    cpu.sort();
    wall.sort();
    println!(
        "{what}: CPU median {:.2?}, max {:.2?}; wall median {:.2?}, max {:.2?} ({n} runs)",
        cpu[n / 2],
        cpu[n - 1],
        wall[n / 2],
        wall[n - 1]
    );
}

fn main() {
    let hosts = env_usize("FLEET_BENCH_HOSTS", 10_000);
    let rounds = env_usize("FLEET_BENCH_ROUNDS", 10);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("open store");
    let now = fleet_proto::clock::now_ms();
    let nums: Vec<u32> = (0..hosts)
        .map(|i| {
            let identity = HostIdentity {
                host_id: format!("host-{i:05}"),
                hostname: format!("host-{i:05}.example.net"),
                cluster: format!("cluster-{}", i % 20),
                ..HostIdentity::default()
            };
            store.upsert_host(&identity, now, true).expect("host").num
        })
        .collect();
    let rules_file = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rules/default.toml");
    let text = std::fs::read_to_string(rules_file).expect("rules file");
    let rules = fleet_rules::parse_rules(&text, rules_file).expect("rules");

    let live = Live::default();
    let values: usize = batch(0, 0).samples[0]
        .records
        .iter()
        .map(|r| r.values.len())
        .sum();
    println!(
        "{hosts} hosts, {} records and {values} values per sample",
        batch(0, 0).samples[0].records.len()
    );
    let mut observe = Duration::ZERO;
    for round in 0..rounds {
        let batches: Vec<Batch> = (0..hosts)
            .map(|_| batch(round as u64, now + round as i64 * 1000))
            .collect();
        let t = Instant::now();
        for (&num, mut b) in nums.iter().zip(batches) {
            let obs = Observation::take(&mut b, vec![]);
            live.observe(num, obs);
        }
        observe += t.elapsed();
    }
    println!(
        "(a) Live::observe, copy of the batch included: {:.0?} per batch",
        observe / (hosts * rounds) as u32
    );
    let repeats = 21;
    time("(b) fleet_view of every host, new", repeats, || {
        std::hint::black_box(fleet_view(&store, &live, &rules));
    });
    let mut view = fleet_view(&store, &live, &rules);
    time(
        "(c) the view of the previous evaluation refreshed",
        repeats,
        || {
            refresh_view(&mut view, &store, &live, &rules);
        },
    );
    time("(d) refreshed + evaluated (each second)", repeats, || {
        refresh_view(&mut view, &store, &live, &rules);
        std::hint::black_box(fleet_rules::evaluate(&rules, &view));
    });
    time("(e) every host's clock (ListNtp)", repeats, || {
        let mut n = 0;
        for &num in &nums {
            live.with_host(num, |h| n += usize::from(h.clock.is_some()));
        }
        assert_eq!(n, hosts);
    });
}
