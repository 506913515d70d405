//! End-to-end: NTP offsets from three agents, cross-host rules, alerts in fleetctl and in a real
//! Prometheus Alertmanager (Debian package `prometheus-alertmanager`) on loopback.

use std::path::Path;
use std::time::Duration;

use fleet_tests::alertmanager::Alertmanager;
use fleet_tests::fake_ntp::FakeNtp;
use fleet_tests::wait::wait_for_every;
use fleet_tests::*;
use serde_json::Value;

fn fleet_alerts(url: &str, state: &str) -> Vec<Value> {
    try_fleetctl_json(url, &["alerts", "--state", state])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn clock_skew_fires_reaches_alertmanager_and_resolves_and_silent_hosts_are_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let good = FakeNtp::start(tmp.path(), "good", 0);
    let bad = FakeNtp::start(tmp.path(), "bad", 250);
    let am = Alertmanager::start(tmp.path());
    let am_port = am.port;
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"
[[rule]]
name = "prod-clock-skew"
kind = "clock_skew"
cluster = "prod"
threshold_ms = 100
for = "10s"

[[rule]]
name = "silent"
kind = "host_silent"
for = "5s"
"#,
    )
    .unwrap();
    let c = Collector::start(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--alertmanager",
            &format!("http://127.0.0.1:{am_port}"),
        ],
    );
    let url = c.url();
    let ntp = |addr: &str| vec!["--ntp-server".to_string(), addr.to_string()];
    let spawn = |name: &str, addr: &str| {
        let extra = ntp(addr);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        start_agent(&url, &tmp.path().join(name), name, "prod", &extra)
    };
    let _w1 = spawn("w1", &good.addr);
    let mut w2 = spawn("w2", &good.addr);
    let _w3 = spawn("w3", &bad.addr);

    // fleetctl ntp shows each host's offset: w3 about +250 ms.
    let rows = wait_for(
        "NTP offsets of the three hosts",
        Duration::from_secs(60),
        || {
            let v = try_fleetctl_json(&url, &["ntp", "--cluster", "prod"])?;
            let rows = v.as_array()?.clone();
            (rows.len() == 3 && rows.iter().all(|r| r["offset_ms"].is_number())).then_some(rows)
        },
    );
    let w3 = rows.iter().find(|r| r["host_id"] == "w3").unwrap();
    let off = w3["offset_ms"].as_f64().unwrap();
    assert!((off - 250.0).abs() < 20.0, "w3 offset {off}: {w3}");
    assert_eq!(w3["synced"], true);
    let w1 = rows.iter().find(|r| r["host_id"] == "w1").unwrap();
    assert!(w1["offset_ms"].as_f64().unwrap().abs() < 20.0, "{w1}");
    assert!(
        w1["collector_offset_ms"].is_number(),
        "clock measured over the stream: {w1}"
    );

    // The skew alert: pending, then firing after 10 s, in fleetctl and in Alertmanager.
    let firing = wait_for("clock skew firing", Duration::from_secs(60), || {
        fleet_alerts(&url, "firing")
            .into_iter()
            .find(|a| a["rule"] == "prod-clock-skew")
    });
    assert_eq!(firing["cluster"], "prod");
    assert!(
        firing["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "w3"),
        "{firing}"
    );
    assert!(
        firing["summary"].as_str().unwrap().contains("w3"),
        "{firing}"
    );
    wait_for("the alert in Alertmanager", Duration::from_secs(20), || {
        am.active_alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "prod-clock-skew")
    });

    // Correct the server: the alert resolves, in fleetctl and in Alertmanager.
    bad.set_offset_ms(0);
    wait_for("clock skew resolved", Duration::from_secs(90), || {
        fleet_alerts(&url, "resolved")
            .into_iter()
            .find(|a| a["rule"] == "prod-clock-skew")
    });
    wait_for(
        "Alertmanager sees it resolved",
        Duration::from_secs(30),
        || {
            let active = am.active_alerts();
            (!active
                .iter()
                .any(|a| a["labels"]["alertname"] == "prod-clock-skew"))
            .then_some(())
        },
    );

    // A stopped agent: host_silent fires for it.
    assert_eq!(w2.term(Duration::from_secs(10)), Some(0));
    let silent = wait_for("host_silent firing", Duration::from_secs(60), || {
        fleet_alerts(&url, "firing")
            .into_iter()
            .find(|a| a["rule"] == "silent")
    });
    assert_eq!(silent["hosts"], serde_json::json!(["w2"]), "{silent}");

    // The alert state survives a collector restart: the same alert, with the same start.
    let mut c = c;
    let addr = c.addr.clone();
    assert_eq!(c.proc.term(Duration::from_secs(15)), Some(0));
    let c2 = Collector::start(
        &tmp.path().join("data"),
        &addr,
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--alertmanager",
            &format!("http://127.0.0.1:{am_port}"),
        ],
    );
    let after = fleet_alerts(&c2.url(), "firing")
        .into_iter()
        .find(|a| a["rule"] == "silent")
        .expect("still firing");
    assert_eq!(after["since"], silent["since"], "{after}");
    assert!(fleet_alerts(&c2.url(), "resolved")
        .iter()
        .any(|a| a["rule"] == "prod-clock-skew"));
}

/// Starts a collector with an `oom_kill_burst` rule (count 1, for 0) and Alertmanager, an agent
/// reading the real kernel log, and a memory cgroup. Returns what the caller needs.
fn oom_alert_setup(tmp: &Path) -> (Collector, Proc, Alertmanager, MemCgroup) {
    caps::require(caps::kmsg());
    let am = Alertmanager::start(tmp);
    let am_port = am.port;
    let rules = tmp.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"oom-burst\"\nkind = \"oom_kill_burst\"\ncount = 1\nwindow = \"5s\"\nfor = \"0s\"\n",
    )
    .unwrap();
    let c = Collector::start(
        &tmp.join("data"),
        "127.0.0.1:0",
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--alertmanager",
            &format!("http://127.0.0.1:{am_port}"),
        ],
    );
    let a = start_agent(
        &c.url(),
        &tmp.join("agent"),
        "burst1",
        "prod",
        &["--kmsg-path", "/dev/kmsg"],
    );
    let url = c.url();
    wait_for_batches(&url, "burst1", 2);
    // The agent reports the kills still in the kernel's ring buffer (other tests make some): let
    // any alert they raised leave the 5 s window before this test's own kill.
    wait_for(
        "no OOM burst from older kills",
        Duration::from_secs(30),
        || {
            (!fleet_alerts(&url, "firing")
                .iter()
                .any(|a| a["rule"] == "oom-burst"))
            .then_some(())
        },
    );
    (c, a, am, MemCgroup::new(32 << 20))
}

fn am_burst_since(am: &Alertmanager, after_ms: i64) -> Option<i64> {
    am.active_alerts().into_iter().find_map(|a| {
        if a["labels"]["alertname"] != "oom-burst" {
            return None;
        }
        let t = chrono::DateTime::parse_from_rfc3339(a["startsAt"].as_str()?)
            .ok()?
            .timestamp_millis();
        (t >= after_ms).then_some(t)
    })
}

#[test]
fn oom_kill_burst_fires_from_a_real_oom_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, _agent, am, cg) = oom_alert_setup(tmp.path());
    let before = chrono::Utc::now().timestamp_millis();
    let mut hog = cg.spawn_hog();
    hog.wait().unwrap();
    let a = wait_for("oom_kill_burst firing", Duration::from_secs(20), || {
        fleet_alerts(&c.url(), "firing").into_iter().find(|a| {
            a["rule"] == "oom-burst"
                && a["active_since"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t.timestamp_millis() >= before - 1000)
        })
    });
    assert_eq!(a["cluster"], "prod");
    assert!(
        a["hosts"].as_array().unwrap().iter().any(|h| h == "burst1"),
        "{a}"
    );
    wait_for("the alert in Alertmanager", Duration::from_secs(20), || {
        am_burst_since(&am, before - 1000)
    });
}

/// Benchmark (run explicitly, `scripts/bench-oom-alert`): a real OOM kill in a memory cgroup to
/// the `oom_kill_burst` alert in a real Alertmanager, over `KILLS` kills (default 30), each one
/// after the alert of the one before resolved. Prints p50/p99 of the time from the hog's exit
/// (what a user sees: the process is gone) to the alert in Alertmanager's API (polled every
/// 5 ms), and the same from the kernel's kill record (the stored kill's time).
///
/// `KILLS=30 cargo test -p fleet-tests --test alerts -- --ignored --nocapture oom_alert_latency`
#[test]
#[ignore = "benchmark"]
fn oom_alert_latency() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, _agent, am, cg) = oom_alert_setup(tmp.path());
    let kills: usize = std::env::var("KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut from_exit = Vec::new();
    let mut from_kernel = Vec::new();
    for _ in 0..kills {
        let before = chrono::Utc::now().timestamp_millis();
        let mut hog = cg.spawn_hog();
        let pid = hog.id();
        hog.wait().unwrap();
        let exited = chrono::Utc::now().timestamp_millis();
        wait_for_every(
            "the alert in Alertmanager",
            Duration::from_secs(20),
            Duration::from_millis(5),
            || am_burst_since(&am, before - 1000),
        );
        let seen = chrono::Utc::now().timestamp_millis();
        from_exit.push(seen - exited);
        let kill = wait_for("the kill stored", Duration::from_secs(10), || {
            let v = try_fleetctl_json(
                &c.url(),
                &["oom", "--host", "burst1", "--since", "5m", "--limit", "5"],
            )?;
            v.as_array()?
                .iter()
                .find(|k| k["victim_pid"].as_u64() == Some(u64::from(pid)))
                .cloned()
        });
        let at = chrono::DateTime::parse_from_rfc3339(kill["time"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        from_kernel.push(seen - at);
        // Let the alert resolve (window 5 s) before the next kill.
        wait_for("resolved", Duration::from_secs(30), || {
            (!fleet_alerts(&c.url(), "firing")
                .iter()
                .any(|a| a["rule"] == "oom-burst"))
            .then_some(())
        });
        wait_for("resolved in Alertmanager", Duration::from_secs(30), || {
            (!am.active_alerts()
                .iter()
                .any(|a| a["labels"]["alertname"] == "oom-burst"))
            .then_some(())
        });
    }
    eprintln!("from the hog's exit, ms, in order: {from_exit:?}");
    eprintln!("from the kernel's kill record, ms, in order: {from_kernel:?}");
    for (what, mut l) in [
        ("the hog's exit", from_exit),
        ("the kernel's kill record", from_kernel),
    ] {
        l.sort_unstable();
        let p = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize];
        println!(
            "OOM kill -> alert in Alertmanager over {} kills, from {what}: p50 {} ms, p99 {} ms, max {} ms",
            l.len(),
            p(0.5),
            p(0.99),
            l[l.len() - 1]
        );
    }
}

#[test]
fn a_broken_rules_file_on_sighup_is_refused_and_the_rules_in_force_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"silent\"\nkind = \"host_silent\"\nfor = \"2s\"\n",
    )
    .unwrap();
    let c = Collector::start(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &["--rules", rules.to_str().unwrap()],
    );
    let url = c.url();
    let mut a = start_agent(&url, &tmp.path().join("a"), "h1", "prod", &[]);
    wait_for_batches(&url, "h1", 1);
    // The offline check names the rule and the field; the collector says the same on SIGHUP.
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"silent\"\nkind = \"host_silent\"\nfor = \"2s\"\n\n[[rule]]\nname = \"skew\"\nkind = \"clock_skew\"\nthreshold_ms = -5\n",
    )
    .unwrap();
    let out = fleetctl(&url, &["rules", "check", rules.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skew") && err.contains("threshold_ms"),
        "{err}"
    );
    c.proc
        .signal(libc::SIGHUP)
        .expect("SIGHUP to the collector");
    wait_for(
        "the refusal in the collector's log",
        Duration::from_secs(10),
        || {
            let log = c.proc.log_text();
            (log.contains("rules file refused")
                && log.contains("skew")
                && log.contains("threshold_ms"))
            .then_some(())
        },
    );
    // The rule in force still works: stopping the agent fires host_silent.
    assert_eq!(a.term(Duration::from_secs(10)), Some(0));
    wait_for(
        "host_silent still evaluated",
        Duration::from_secs(30),
        || {
            fleet_alerts(&url, "firing")
                .into_iter()
                .find(|a| a["rule"] == "silent")
        },
    );
    // A valid file is taken on the next SIGHUP.
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"silent2\"\nkind = \"host_silent\"\nfor = \"2s\"\n",
    )
    .unwrap();
    c.proc
        .signal(libc::SIGHUP)
        .expect("SIGHUP to the collector");
    wait_for("the new rule fires", Duration::from_secs(30), || {
        fleet_alerts(&url, "firing")
            .into_iter()
            .find(|a| a["rule"] == "silent2")
    });
}

/// Alertmanager behind https: the collector posts over TLS, checking Alertmanager's certificate
/// against the CA given with `--notify-ca`; a collector given another CA refuses the connection
/// and says why.
#[test]
fn alertmanager_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = Pki::init(&dir.join("pki"));
    let other = Pki::init(&dir.join("other"));
    // Alertmanager serves the certificate `fleetctl certs init` makes for localhost.
    let am_dir = dir.join("am");
    std::fs::create_dir(&am_dir).unwrap();
    let am = Alertmanager::start_tls(
        &am_dir,
        &pki.dir.join("collector.pem"),
        &pki.dir.join("collector-key.pem"),
        &pki.dir.join("ca.pem"),
    );
    let port = am.port;
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"https-test-memused\"\nkind = \"sar\"\ncolumn = \"%memused\"\nop = \">\"\nvalue = 0\n",
    )
    .unwrap();
    let am_url = format!("https://localhost:{port}");
    let start = |name: &str, ca: &str| {
        Collector::start(
            &dir.join(name),
            "127.0.0.1:0",
            &[
                "--rules",
                rules.to_str().unwrap(),
                "--alertmanager",
                &am_url,
                "--notify-ca",
                ca,
            ],
        )
    };
    let good = start("good", &pki.ca());
    let wrong = start("wrong", &other.ca());
    let _a = start_agent(
        &good.url(),
        &dir.join("agent-good"),
        "https-host",
        "prod",
        &[],
    );
    let _b = start_agent(
        &wrong.url(),
        &dir.join("agent-wrong"),
        "https-host-2",
        "prod",
        &[],
    );
    wait_for(
        "the alert in Alertmanager over https",
        Duration::from_secs(30),
        || {
            let body = am.get("/api/v2/alerts?active=true")?;
            let alerts: Value = serde_json::from_str(&body).ok()?;
            let hosts: Vec<&str> = alerts
                .as_array()?
                .iter()
                .filter(|a| a["labels"]["alertname"] == "https-test-memused")
                .filter_map(|a| a["labels"]["hosts"].as_str())
                .collect();
            hosts.contains(&"https-host").then_some(())
        },
    );
    wait_for("the wrong CA refused", Duration::from_secs(30), || {
        let log = wrong.proc.log_text();
        (log.contains("UnknownIssuer") || log.contains("invalid peer certificate")).then_some(())
    });
    let body = am.get("/api/v2/alerts?active=true").unwrap();
    assert!(
        !body.contains("https-host-2"),
        "nothing from the collector with the wrong CA"
    );
}
