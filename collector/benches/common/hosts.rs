//! The simulated hosts of the storage benchmarks (`FLEET_BENCH_MIX`): see `store.rs`'s doc.
//! Shared by `store.rs` and `chunks.rs`, which declare `mod shape` (the load generator's
//! sample) beside it.

use std::path::Path;
use std::sync::Arc;

use fleet_proto::v1::{Activity, Record, Sample};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::shape;

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

pub struct HostSim {
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
pub struct Replay {
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
pub enum Source {
    Sim(Box<HostSim>),
    Recorded(Replay),
    Loadgen(Box<shape::Shape>),
}

impl Source {
    pub fn sample(&mut self, time_ms: i64, interval_ms: i64) -> Sample {
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
pub fn sources(mix: &str) -> Vec<Source> {
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
