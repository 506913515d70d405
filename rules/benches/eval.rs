//! Rule evaluation time for 10,000 hosts: what the collector does every second.
//!
//! 10,000 hosts in 20 clusters, each with an NTP measurement of three sources and about thirty
//! sar records (8 CPUs, 4 disks, 3 interfaces, the fixed activities), some with recent OOM kills;
//! 10 rules of every kind (70 rules), thresholds chosen so that a few percent of hosts breach
//! some of them. Each tick moves the clock one second, jitters the offsets and values, and runs
//! `evaluate()` then `AlertBook::step()`.
//!
//! `cargo bench -p fleet-rules --bench eval` (add `-- --ticks N` for more ticks).

use std::sync::Arc;
use std::time::Instant;

use fleet_proto::schema::ACTIVITIES;
use fleet_proto::v1::{Activity, ClockStatus, KernelClock, NtpServerStatus};
use fleet_rules::{evaluate, parse_rules, AlertBook, FleetView, HostView};

const HOSTS: usize = 10_000;
const CLUSTERS: usize = 20;
const T0: i64 = 1_700_000_000_000;

/// A small deterministic generator (xorshift64*), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn rules_text() -> String {
    let mut t = String::new();
    for i in 0..10 {
        // Half the rules cover every cluster, half one cluster each.
        let cluster = if i % 2 == 0 {
            String::new()
        } else {
            format!("cluster = \"c{i}\"\n")
        };
        let f = i * 10;
        t += &format!(
            "[[rule]]\nname = \"skew-{i}\"\nkind = \"clock_skew\"\nthreshold_ms = {}\nfor = \"{f}s\"\n{cluster}\n",
            20 + i * 20
        );
        t += &format!(
            "[[rule]]\nname = \"offset-{i}\"\nkind = \"ntp_offset\"\nthreshold_ms = {}\nfor = \"{f}s\"\n{cluster}\n",
            50 + i * 25
        );
        t += &format!("[[rule]]\nname = \"unsynced-{i}\"\nkind = \"ntp_unsynced\"\nfor = \"{f}s\"\n{cluster}\n");
        t += &format!(
            "[[rule]]\nname = \"stratum-{i}\"\nkind = \"ntp_stratum\"\nmax_stratum = {}\n{cluster}\n",
            3 + i
        );
        t += &format!(
            "[[rule]]\nname = \"silent-{i}\"\nkind = \"host_silent\"\nfor = \"{}s\"\n{cluster}\n",
            30 + i * 30
        );
        t += &format!(
            "[[rule]]\nname = \"oom-{i}\"\nkind = \"oom_kill_burst\"\ncount = {}\nwindow = \"{}m\"\n{cluster}\n",
            1 + i,
            1 + i
        );
        let (column, op, value) = [
            ("%memused", ">", 95.0),
            ("pswpout/s", ">", 1000.0),
            ("%idle", "<", 5.0),
            ("%util", ">", 90.0),
            ("ldavg-1", ">", 30.0),
            ("%ifutil", ">=", 95.0),
            ("rxerr/s", ">", 10.0),
            ("%smem-10", ">", 20.0),
            ("%commit", ">", 150.0),
            ("%swpused", ">", 80.0),
        ][i];
        t += &format!(
            "[[rule]]\nname = \"sar-{i}\"\nkind = \"sar\"\ncolumn = \"{column}\"\nop = \"{op}\"\nvalue = {value}\nfor = \"{f}s\"\n{cluster}\n"
        );
    }
    t
}

/// How many hosts breach the thresholds.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// A few percent of hosts breach some rule: what a fleet looks like on a normal day.
    Typical,
    /// Every sar value uniform in 0..100: most sar rules breached on many hosts, over 20,000
    /// alerts at once (a worst case: summaries are built for every finding each tick).
    Storm,
}

fn host(i: usize, rng: &mut Rng, load: Load) -> HostView {
    let server = |n: usize, rng: &mut Rng| NtpServerStatus {
        server: format!("10.0.{n}.1:123"),
        reachable: true,
        offset_ms: rng.unit() * 2.0 - 1.0,
        delay_ms: rng.unit() * 5.0,
        stratum: 2 + (rng.next() % 3) as u32,
        synced: true,
        ..Default::default()
    };
    let mut servers: Vec<NtpServerStatus> = (0..3).map(|n| server(n, rng)).collect();
    // 2 % of hosts far off, 0.5 % unsynchronised, 0.5 % far from a reference clock.
    match i % 200 {
        0..=3 => servers[0].offset_ms += 120.0 + rng.unit() * 300.0,
        4 => servers.iter_mut().for_each(|s| s.synced = false),
        5 => servers.iter_mut().for_each(|s| s.stratum = 12),
        _ => {}
    }
    // Typical: values in the lower half of their range, 1 % of hosts maxed out.
    let scale = match load {
        Load::Storm => 100.0,
        Load::Typical if i % 100 == 42 => 200.0,
        Load::Typical => 4.0,
    };
    let mut sar = Vec::new();
    for schema in ACTIVITIES {
        let instances: Vec<String> = match schema.activity {
            Activity::Cpu => std::iter::once("all".to_owned())
                .chain((0..8).map(|c| c.to_string()))
                .collect(),
            Activity::Disk => ["sda", "sdb", "nvme0n1", "nvme1n1"]
                .map(String::from)
                .to_vec(),
            Activity::NetDev | Activity::NetEdev => {
                ["lo", "eth0", "eth1"].map(String::from).to_vec()
            }
            _ => vec!["-".to_owned()],
        };
        for inst in instances {
            let values = schema
                .columns
                .iter()
                .map(|c| {
                    let v = rng.unit() * scale;
                    // %idle is high on a calm host.
                    if load == Load::Typical && *c == "%idle" {
                        100.0 - v
                    } else {
                        v
                    }
                })
                .collect();
            sar.push((schema.activity, inst, values));
        }
    }
    HostView {
        host_id: format!("{i:032x}"),
        hostname: format!("host-{i:05}"),
        cluster: format!("c{}", i % CLUSTERS),
        connected: i % 500 != 0,
        last_seen_ms: if i % 500 == 0 { T0 - 600_000 } else { T0 },
        ntp: Some(Arc::new(ClockStatus {
            servers,
            kernel: Some(KernelClock {
                synced: true,
                ..Default::default()
            }),
        })),
        sar,
        oom_kill_times_ms: if i % 100 == 0 {
            vec![T0 - 30_000, T0 - 90_000]
        } else {
            vec![]
        },
    }
}

fn main() {
    let ticks: usize = std::env::args()
        .skip_while(|a| a != "--ticks")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let rules = parse_rules(&rules_text(), "bench.toml").expect("bench rules parse");
    println!(
        "rule evaluation, {HOSTS} hosts in {CLUSTERS} clusters, {} rules, {ticks} ticks:",
        rules.len()
    );
    for (name, load) in [("typical", Load::Typical), ("storm", Load::Storm)] {
        run(name, load, &rules, ticks);
    }
}

fn run(name: &str, load: Load, rules: &fleet_rules::RuleSet, ticks: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut view = FleetView {
        now_ms: T0,
        hosts: (0..HOSTS).map(|i| host(i, &mut rng, load)).collect(),
    };
    let records: usize = view.hosts.iter().map(|h| h.sar.len()).sum();
    let mut book = AlertBook::new();
    let (mut eval_times, mut step_times) = (Vec::with_capacity(ticks), Vec::with_capacity(ticks));
    let (mut findings, mut transitions) = (0usize, 0usize);
    for tick in 0..ticks {
        view.now_ms = T0 + tick as i64 * 1000;
        // What changes between ticks: offsets jitter, live hosts are seen again.
        for h in view.hosts.iter_mut() {
            if h.connected {
                h.last_seen_ms = view.now_ms;
            }
            if let Some(ntp) = h.ntp.as_mut() {
                for s in &mut Arc::make_mut(ntp).servers {
                    s.offset_ms += rng.unit() * 0.2 - 0.1;
                }
            }
        }
        let start = Instant::now();
        let f = evaluate(rules, &view);
        let evaluated = Instant::now();
        findings = f.len();
        transitions += book.step(rules, f, view.now_ms).len();
        eval_times.push(evaluated - start);
        step_times.push(evaluated.elapsed());
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let total: Vec<_> = eval_times
        .iter()
        .zip(&step_times)
        .map(|(a, b)| *a + *b)
        .collect();
    let mut sorted = total.clone();
    sorted.sort();
    let pick = |q: f64| ms(sorted[((sorted.len() - 1) as f64 * q).round() as usize]);
    let mean = |v: &[std::time::Duration]| v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    println!(
        "  {name:8} evaluate()+step() per tick: mean {:.2} ms (evaluate {:.2} + step {:.2}), median {:.2} ms, p99 {:.2} ms",
        mean(&total),
        mean(&eval_times),
        mean(&step_times),
        pick(0.5),
        pick(0.99),
    );
    println!(
        "           {records} sar records; last tick {findings} findings, {} alerts in the book, {transitions} transitions in all",
        book.len()
    );
}
