//! Benchmark (issue 14, "Fast on a big range"), `#[ignore]`d: the host page of `fleetctl ui` for
//! a host with 24 h of 1 s samples, timed to the full HTML, and the page's size gzipped.
//!
//! The store is filled in-process the way `collector/benches/downsample.rs` fills it
//! (`Store::write`, one item per hour of samples, then sealed, flushed and compacted), with
//! samples shaped like `fleet-loadgen`'s: every activity of the schema, about 160 values a second
//! (CPU `all` and 4 CPUs, memory, swap, paging, I/O, load, pressure, 2 disks, 3 interfaces),
//! random walks with a spike every ten minutes. Then the real collector serves that
//! store and `fleetctl ui` serves `/hosts/bench?since=24h`: the first (cold) and the median of
//! `FLEET_BENCH_RUNS` (default 5) GETs are printed (and the spread: fastest and slowest), with
//! the CPU time per page of the collector and of `fleetctl ui`, the HTML's size, and the page and
//! the assets it links as sent to a browser that accepts gzip (their `Content-Encoding` checked;
//! a build that does not compress shows the same sizes as plain). `FLEET_BENCH_FLEETCTL=PATH`
//! times another fleetctl on the same collector too (the build before a change).
//!
//! Run (release):
//! `cargo build --release -p fleet-collector -p fleetctl --bins &&
//!  cargo test --release -p fleet-tests --test ui_bench -- --ignored --nocapture`

use std::path::Path;
use std::time::{Duration, Instant};

mod ui_common;

use fleet_collector::storage::{IngestItem, Store, StoreOptions};
use fleet_proto::schema::ACTIVITIES;
use fleet_proto::v1::{HostIdentity, Record, Sample};
use fleet_tests::{bin, Collector};
use ui_common::{get, get_gzip, gunzip, start_ui_of};

const HOUR_MS: i64 = 3_600_000;

/// A tiny xorshift generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One record per activity and instance, the instances `fleet-loadgen` sends: CPU `all` and 4
/// CPUs, 2 disks, 3 interfaces, `-` for an activity without instances.
fn records() -> Vec<Record> {
    ACTIVITIES
        .iter()
        .flat_map(|a| {
            let instances: &[&str] = match a.instance_column {
                Some("CPU") => &["all", "0", "1", "2", "3"],
                Some("DEV") => &["sda", "sdb"],
                Some(_) => &["lo", "eth0", "eth1"],
                None => &["-"],
            };
            instances.iter().map(|i| Record {
                activity: a.activity as i32,
                instance: (*i).to_owned(),
                values: vec![10.0; a.columns.len()],
            })
        })
        .collect()
}

/// One hour of 1 s samples from `start_ms`, each value a random walk (two decimals, as sar
/// prints), 10 times higher for one second every ten minutes.
fn hour(rng: &mut Rng, state: &mut [Record], start_ms: i64) -> Vec<Sample> {
    (0..3600)
        .map(|i| {
            let spike = i % 600 == 300;
            let records = state
                .iter_mut()
                .map(|r| {
                    for v in &mut r.values {
                        *v = ((*v + (rng.unit() - 0.5) * 4.0).max(0.0) * 100.0).round() / 100.0;
                    }
                    let mut record = r.clone();
                    if spike {
                        record.values.iter_mut().for_each(|v| *v *= 10.0);
                    }
                    record
                })
                .collect();
            Sample {
                time_ms: start_ms + i * 1000,
                interval_ms: 1000,
                records,
                ..Sample::default()
            }
        })
        .collect()
}

/// Fills `dir` with 24 h of `bench`'s samples up to `end_ms`; returns the values written.
fn fill(dir: &Path, end_ms: i64) -> usize {
    let store = Store::open(dir, StoreOptions::default()).expect("open store");
    let start = end_ms - 24 * HOUR_MS;
    let identity = HostIdentity {
        host_id: "bench".into(),
        hostname: "bench".into(),
        cluster: "dc1".into(),
        kernel: "6.1.0".into(),
        agent_version: "bench".into(),
        ..HostIdentity::default()
    };
    let host = store.upsert_host(&identity, end_ms, false).expect("upsert");
    let (mut rng, mut state, mut values) = (Rng(14), records(), 0);
    for h in 0..24 {
        let samples = hour(&mut rng, &mut state, start + h * HOUR_MS);
        values += samples
            .iter()
            .flat_map(|s| &s.records)
            .map(|r| r.values.len())
            .sum::<usize>();
        let item = IngestItem {
            host_num: host.num,
            epoch: 1,
            seq: h as u64 + 1,
            samples,
            ..IngestItem::default()
        };
        store.write(&[item], end_ms).expect("write");
    }
    store.seal(end_ms).expect("seal");
    store.flush().expect("flush");
    store.compact().expect("compact");
    values
}

/// The size of `path` as sent to a browser that accepts gzip, and whether it came gzipped (then
/// checked to unzip to `plain`, when given).
fn sent(addr: &str, path: &str, plain: Option<&str>) -> (usize, bool) {
    let (status, encoding, _, body) = get_gzip(addr, path);
    assert_eq!(status, 200, "{path}");
    let zipped = encoding == "gzip";
    if let (true, Some(plain)) = (zipped, plain) {
        assert_eq!(gunzip(&body), plain, "{path}");
    }
    (body.len(), zipped)
}

/// The `src="/..."` and `href="/assets/..."` a page links to.
fn assets(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let link = part.split('"').next().unwrap_or("");
            if link.starts_with("/assets/") && !out.iter().any(|l| l == link) {
                out.push(link.to_owned());
            }
        }
    }
    out
}

/// GETs `path` `runs` times: (first, median, fastest, slowest) and the last body.
fn time_page(addr: &str, path: &str, runs: usize) -> ([Duration; 4], String) {
    let mut times = Vec::new();
    let mut body = String::new();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let (status, _, page) = get(addr, path);
        times.push(start.elapsed());
        assert_eq!(status, 200, "{page}");
        body = page;
    }
    let first = times[0];
    times.sort();
    let last = times[times.len() - 1];
    ([first, times[times.len() / 2], times[0], last], body)
}

/// CPU seconds (user + system) process `pid` has used, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf(_SC_CLK_TCK) only reads a constant.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One fleetctl's figures for the host page.
fn measure(label: &str, program: &Path, collector: u32, url: &str, dir: &Path, runs: usize) {
    let (mut ui, addr) = start_ui_of(program, url, &[], dir);
    let cpu = || (cpu_seconds(collector), cpu_seconds(ui.child.id()));
    let before = cpu();
    let ([first, median, fastest, slowest], html) =
        time_page(&addr, "/hosts/bench?since=24h", runs);
    let after = cpu();
    let panels = html.matches("class=\"panel\"").count();
    let bands = html.matches("class=\"envelope\"").count();
    let points: usize = html
        .split("data-points=\"")
        .skip(1)
        .filter_map(|p| p.split('"').next()?.parse::<usize>().ok())
        .sum();
    println!(
        "{label}: host page, 24 h at 1 s: first {:.0} ms, median of {runs} {:.0} ms \
         (fastest {:.0}, slowest {:.0}); {panels} panels, {points} points, {bands} min-max bands; \
         HTML {:.0} KB",
        ms(first),
        ms(median),
        ms(fastest),
        ms(slowest),
        html.len() as f64 / 1000.0,
    );
    println!(
        "{label}: CPU per page: collector {:.0} ms, fleetctl ui {:.0} ms",
        (after.0 - before.0) * 1000.0 / runs as f64,
        (after.1 - before.1) * 1000.0 / runs as f64,
    );
    // The page is rendered anew (its range ends now): its size is checked, not its text.
    let (mut total, zipped) = sent(&addr, "/hosts/bench?since=24h", None);
    println!(
        "{label}:   the page as sent: {:.1} KB{}",
        total as f64 / 1000.0,
        if zipped { ", gzip" } else { ", not compressed" }
    );
    for asset in assets(&html) {
        let (status, _, text) = get(&addr, &asset);
        assert_eq!(status, 200, "{asset}");
        let (size, zipped) = sent(&addr, &asset, Some(&text));
        total += size;
        println!(
            "{label}:   {asset}: {:.1} KB, as sent {:.1} KB{}",
            text.len() as f64 / 1000.0,
            size as f64 / 1000.0,
            if zipped { ", gzip" } else { ", not compressed" }
        );
    }
    println!(
        "{label}: the page and its assets as sent: {:.0} KB",
        total as f64 / 1000.0
    );
    ui.term(Duration::from_secs(10));
}

#[test]
#[ignore = "a benchmark: run in release with --ignored --nocapture"]
fn host_page_of_24h_at_1s() {
    let runs: usize = std::env::var("FLEET_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let end = fleet_proto::clock::now_ms() / 1000 * 1000;
    let filled = Instant::now();
    let values = fill(&data, end);
    println!(
        "store: 86,400 samples of {} values a second written, sealed and compacted in {:.1} s",
        values / 86_400,
        filled.elapsed().as_secs_f64()
    );
    let collector = Collector::start(&data, "127.0.0.1:0", &[]);
    let url = collector.url();
    let pid = collector.proc.child.id();
    measure("this build", &bin("fleetctl"), pid, &url, tmp.path(), runs);
    if let Ok(other) = std::env::var("FLEET_BENCH_FLEETCTL") {
        measure(&other, Path::new(&other), pid, &url, tmp.path(), runs);
    }
}
