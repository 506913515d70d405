//! Remote-write into real receivers on loopback (README "Remote-write"): VictoriaMetrics and
//! Prometheus (`--web.enable-remote-write-receiver`), fed by one collector with two agents at
//! 1 s for about a minute:
//!
//! - every sample of `fleet_cpu_idle_percent{cpu="all"}` of both hosts arrives, at the sample's
//!   time with the value `fleetctl sar -u -o json` shows, and a range query at a 1 s step has
//!   no hole;
//! - `fleet_ntp_offset_seconds` of the agent measured against a +250 ms NTP server reads 0.25;
//! - a real OOM kill in a memory cgroup raises `fleet_oom_kills_total` and names its victim in
//!   `fleet_oom_last_kill_info`;
//! - VictoriaMetrics stopped for 30 s and started again, then the collector SIGKILLed and
//!   started again: still every sample, none twice, in both receivers;
//! - the collector's `/metrics` shows each receiver's failures during the outage and no lag
//!   once caught up, and `promtool check metrics` accepts it;
//! - every metric the Grafana dashboards (deploy/grafana/) query is in VictoriaMetrics (all of
//!   them are written in this run: every sar activity, NTP and kernel clock, OOM kills, the live
//!   series).

use std::collections::BTreeSet;
use std::time::Duration;

use fleet_tests::fake_ntp::FakeNtp;
use fleet_tests::grafana;
use fleet_tests::net::http_get;
use fleet_tests::tsdb::{promtool_check_metrics, Kind, Tsdb};
use fleet_tests::*;
use serde_json::Value;

/// (ms, %idle) of `host`'s `sar -u` rows (CPU all) over the last 10 minutes.
fn sar_idle(url: &str, host: &str) -> Vec<(i64, f64)> {
    let v = fleetctl_json(url, &["sar", "-u", "--host", host, "--since", "10m"]);
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let t = chrono::DateTime::parse_from_rfc3339(r["time"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            (t, r["%idle"].as_f64().unwrap())
        })
        .collect()
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn idle_selector(host: &str) -> String {
    format!("fleet_cpu_idle_percent{{cpu=\"all\",host_id=\"{host}\"}}")
}

/// The value of `name` (with `labels` as written) in the metrics text, or 0.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `db` has every sample fleetctl shows for `host` up to `until_ms`, then checks
/// they are the same: times, values, none twice, none missing.
fn same_as_fleetctl(db: &Tsdb, url: &str, host: &str, until_ms: i64) -> usize {
    let want: Vec<(i64, f64)> = sar_idle(url, host)
        .into_iter()
        .filter(|(t, _)| *t <= until_ms)
        .collect();
    let last = want.last().expect("rows").0;
    let got = wait_for(
        &format!("{:?} to have every sample of {host}", db.kind),
        Duration::from_secs(60),
        || {
            let got = db.samples(&idle_selector(host), "10m", until_ms as f64 / 1000.0 + 0.5);
            got.last().is_some_and(|(t, _)| *t >= last).then_some(got)
        },
    );
    let got: Vec<(i64, f64)> = got.into_iter().filter(|(t, _)| *t <= until_ms).collect();
    let times: BTreeSet<i64> = got.iter().map(|p| p.0).collect();
    assert_eq!(
        times.len(),
        got.len(),
        "{:?}: a sample twice: {got:?}",
        db.kind
    );
    let want_times: Vec<i64> = want.iter().map(|p| p.0).collect();
    let got_times: Vec<i64> = got.iter().map(|p| p.0).collect();
    assert_eq!(got_times, want_times, "{:?}: the times of {host}", db.kind);
    for ((t, w), (_, g)) in want.iter().zip(&got) {
        assert!(
            (w - g).abs() < 1e-9,
            "{:?} {host} at {t}: {g} vs sar's {w}",
            db.kind
        );
    }
    want.len()
}

#[test]
fn every_sample_reaches_victoria_metrics_and_prometheus_through_outages() {
    caps::require(caps::kmsg());
    let tmp = tempfile::tempdir().unwrap();
    let mut vm = Tsdb::start(Kind::VictoriaMetrics, &tmp.path().join("vm"));
    let prom = Tsdb::start(Kind::Prometheus, &tmp.path().join("prom"));
    let ntp = FakeNtp::start(tmp.path(), "ntp", 250);
    let data = tmp.path().join("data");
    let (vm_url, prom_url) = (vm.write_url(), prom.write_url());
    let args = [
        "--metrics-listen",
        "127.0.0.1:0",
        "--remote-write",
        vm_url.as_str(),
        "--remote-write",
        prom_url.as_str(),
        "--remote-write-label",
        "fleet_env=test",
    ];
    let mut c = Collector::start(&data, "127.0.0.1:0", &args);
    let url = c.url();
    let addr = c.addr.clone();
    let agent_cfg = tmp.path().join("agent.toml");
    std::fs::write(&agent_cfg, "ntp_period = \"1s\"\n").unwrap();
    let _a1 = start_agent(
        &url,
        &tmp.path().join("r1"),
        "r1",
        "prod",
        &[
            "--config",
            agent_cfg.to_str().unwrap(),
            "--ntp-server",
            &ntp.addr,
            "--kmsg-path",
            "/dev/kmsg",
        ],
    );
    let _a2 = start_agent(&url, &tmp.path().join("r2"), "r2", "prod", &[]);
    wait_for_sample_rows(&url, "r1", "-u", 5);
    wait_for_sample_rows(&url, "r2", "-u", 5);

    // The NTP offset, and the labels of a series.
    let offset = wait_for(
        "fleet_ntp_offset_seconds in VictoriaMetrics",
        Duration::from_secs(30),
        || {
            let r = vm.query(
                &format!(
                    "fleet_ntp_offset_seconds{{host_id=\"r1\",server=\"{}\"}}",
                    ntp.addr
                ),
                now_s(),
            );
            r.first().cloned()
        },
    );
    let value: f64 = offset["value"][1].as_str().unwrap().parse().unwrap();
    assert!((value - 0.25).abs() < 0.02, "offset {value}: {offset}");
    let m = &offset["metric"];
    assert_eq!(m["hostname"], "r1", "{m}");
    assert_eq!(m["cluster"], "prod", "{m}");
    assert_eq!(m["role"], "test", "the host's label: {m}");
    assert_eq!(m["fleet_env"], "test", "the configured label: {m}");

    // A real OOM kill raises the counter and names the victim.
    let kills = |db: &Tsdb| -> f64 {
        db.query("max(fleet_oom_kills_total{host_id=\"r1\"})", now_s())
            .first()
            .and_then(|r| r["value"][1].as_str()?.parse().ok())
            .unwrap_or(-1.0)
    };
    let before = wait_for("fleet_oom_kills_total", Duration::from_secs(30), || {
        let k = kills(&vm);
        (k >= 0.0).then_some(k)
    });
    let cg = MemCgroup::new(64 << 20);
    let mut hog = cg.spawn_hog();
    assert!(!hog.wait().unwrap().success(), "the hog is OOM-killed");
    wait_for(
        "fleet_oom_kills_total raised",
        Duration::from_secs(30),
        || (kills(&vm) > before).then_some(()),
    );
    let info = vm.query("fleet_oom_last_kill_info{host_id=\"r1\"}", now_s());
    assert_eq!(
        info.first().map(|i| &i["metric"]["victim_comm"]),
        Some(&Value::from("tail")),
        "{info:?}"
    );

    // VictoriaMetrics down for 30 s: the collector keeps storing and retries.
    vm.stop();
    // A fixed sleep on purpose: the outage itself is what is tested.
    std::thread::sleep(Duration::from_secs(30));
    vm.restart();
    wait_for("VictoriaMetrics caught up", Duration::from_secs(60), || {
        let m = http_get(None, metrics_port(&c), "/metrics")?;
        let lag = format!("fleet_collector_remote_write_lag_entries{{receiver=\"{vm_url}\"}}");
        let failures =
            format!("fleet_collector_remote_write_failures_total{{receiver=\"{vm_url}\"}}");
        (metric(&m, &lag) <= 2.0 && metric(&m, &failures) >= 1.0).then_some(())
    });

    // The receivers' families pass promtool.
    let promtool = caps::require(caps::program("promtool", "prometheus"));
    let text = http_get(None, metrics_port(&c), "/metrics").expect("/metrics");
    assert!(text.contains("fleet_collector_remote_write_samples_sent_total{receiver="));
    assert_eq!(promtool_check_metrics(&promtool, &text), None, "{text}");

    // The collector SIGKILLed and started again on its port and data.
    c.proc.kill9();
    c = Collector::start(&data, &addr, &args);
    wait_for_sample_rows(&url, "r1", "-u", 45);
    std::thread::sleep(Duration::from_secs(3));
    let until_ms = (now_s() * 1000.0) as i64 - 2000;

    for db in [&vm, &prom] {
        for host in ["r1", "r2"] {
            let n = same_as_fleetctl(db, &url, host, until_ms);
            assert!(n >= 45, "{:?} {host}: {n} samples", db.kind);
        }
    }
    // A range query at a 1 s step: a value at every step between the first and last sample.
    let got = vm.samples(&idle_selector("r2"), "10m", until_ms as f64 / 1000.0);
    let (start, end) = (
        got[0].0 as f64 / 1000.0,
        got.last().unwrap().0 as f64 / 1000.0,
    );
    let r = vm.query_range(&idle_selector("r2"), start, end, "1s");
    let points = r[0]["values"].as_array().unwrap().len();
    assert!(
        points as f64 >= (end - start).floor(),
        "{points} points over {:.0} s",
        end - start
    );

    // What the dashboards query arrived.
    let names = vm
        .get_json("/api/v1/label/__name__/values")
        .expect("label values");
    let stored: BTreeSet<&str> = names["data"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let queried = grafana::queried_metrics();
    assert!(
        queried.contains("fleet_cpu_idle_percent") && queried.contains("fleet_oom_kills_total"),
        "{queried:?}"
    );
    let missing: Vec<&String> = queried
        .iter()
        .filter(|m| !stored.contains(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "queried by a dashboard, not in VictoriaMetrics: {missing:?}"
    );
    assert!(c.proc.running(), "the collector still runs");
}

/// The port of the collector's metrics endpoint.
fn metrics_port(c: &Collector) -> u16 {
    c.metrics
        .as_deref()
        .and_then(|m| m.rsplit(':').next()?.parse().ok())
        .expect("--metrics-listen")
}
