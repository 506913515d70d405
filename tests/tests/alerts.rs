//! End-to-end: NTP offsets from three agents, cross-host rules, alerts in fleetctl and in a real
//! Prometheus Alertmanager (Debian package `prometheus-alertmanager`) on loopback.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A fake NTP server (tests/src/bin/fleet-fake-ntp.rs) whose offset a control file sets.
fn fake_ntp(dir: &Path, name: &str, offset_ms: i64) -> (Proc, String, std::path::PathBuf) {
    let control = dir.join(format!("{name}.ctl"));
    std::fs::write(&control, format!("offset_ms={offset_ms}\n")).unwrap();
    let log = dir.join(format!("{name}.log"));
    let mut child = Command::new(bin("fleet-fake-ntp"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--offset-ms",
            &offset_ms.to_string(),
            "--control-file",
        ])
        .arg(&control)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start fleet-fake-ntp");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("fake ntp address")
        .to_string();
    (Proc { child, log }, addr, control)
}

/// A real Alertmanager on a loopback port, clustering off, state in `dir`.
fn alertmanager(dir: &Path) -> (Proc, u16) {
    alertmanager_with(dir, None)
}

/// As [`alertmanager`]; with `tls` (certificate, key, the CA to check it with) it serves https.
fn alertmanager_with(dir: &Path, tls: Option<(&Path, &Path, &Path)>) -> (Proc, u16) {
    let port = free_port();
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: none\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let log = dir.join("alertmanager.log");
    let am = Path::new("/usr/bin/prometheus-alertmanager");
    assert!(
        am.exists(),
        "install the prometheus-alertmanager package (scripts/test does)"
    );
    let mut cmd = Command::new(am);
    if let Some((cert, key, _)) = tls {
        let web = dir.join("web.yml");
        std::fs::write(
            &web,
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        cmd.arg(format!("--web.config.file={}", web.display()));
    }
    let client = tls.map(|(_, _, ca)| tls_client(ca));
    let child = cmd
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start alertmanager");
    let p = Proc { child, log };
    wait_for("alertmanager ready", Duration::from_secs(30), || {
        get(client.as_ref(), port, "/-/ready").filter(|b| b.contains("OK"))
    });
    (p, port)
}

/// A TLS client (rustls) trusting `ca` only.
fn tls_client(ca: &Path) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// A plain HTTP/1.1 GET on loopback; the body, or None.
fn http_get(port: u16, path: &str) -> Option<String> {
    get(None, port, path)
}

/// A GET on loopback, over TLS (server name `localhost`) when `tls` is given.
fn get(
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    port: u16,
    path: &str,
) -> Option<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    match tls {
        None => {
            let mut s = s;
            s.write_all(request.as_bytes()).ok()?;
            s.read_to_string(&mut text).ok()?;
        }
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(config.clone(), name).ok()?;
            let mut s = rustls::StreamOwned::new(conn, s);
            s.write_all(request.as_bytes()).ok()?;
            // A server that closes without close_notify ends the read with an error after the
            // body: keep what arrived.
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    // Alertmanager may answer chunked; the JSON is in the chunks.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            out.push_str(tail.get(..n)?);
            rest = tail.get(n + 2..)?;
        }
        return Some(out);
    }
    Some(body.to_string())
}

fn am_alerts(port: u16) -> Vec<Value> {
    http_get(port, "/api/v2/alerts?active=true")
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn fleet_alerts(url: &str, state: &str) -> Vec<Value> {
    try_fleetctl_json(url, &["alerts", "--state", state])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn clock_skew_fires_reaches_alertmanager_and_resolves_and_silent_hosts_are_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let (_good, good_addr, _) = fake_ntp(tmp.path(), "good", 0);
    let (_bad, bad_addr, bad_ctl) = fake_ntp(tmp.path(), "bad", 250);
    let (_am, am_port) = alertmanager(tmp.path());
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
    let _w1 = spawn("w1", &good_addr);
    let mut w2 = spawn("w2", &good_addr);
    let _w3 = spawn("w3", &bad_addr);

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
        am_alerts(am_port)
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "prod-clock-skew")
    });

    // Correct the server: the alert resolves, in fleetctl and in Alertmanager.
    std::fs::write(&bad_ctl, "offset_ms=0\n").unwrap();
    wait_for("clock skew resolved", Duration::from_secs(90), || {
        fleet_alerts(&url, "resolved")
            .into_iter()
            .find(|a| a["rule"] == "prod-clock-skew")
    });
    wait_for(
        "Alertmanager sees it resolved",
        Duration::from_secs(30),
        || {
            let active = am_alerts(am_port);
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
fn oom_alert_setup(tmp: &Path) -> (Collector, Proc, u16, Proc, MemCgroup) {
    let (am, am_port) = alertmanager(tmp);
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
    wait_for("agent samples", Duration::from_secs(30), || {
        let v = try_fleetctl_json(&url, &["hosts"])?;
        (v.as_array()?.first()?["last_seq"].as_u64()? >= 2).then_some(())
    });
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
    (c, a, am_port, am, MemCgroup::new(32 << 20))
}

fn am_burst_since(port: u16, after_ms: i64) -> Option<i64> {
    am_alerts(port).into_iter().find_map(|a| {
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
    let (c, _agent, am_port, _am, cg) = oom_alert_setup(tmp.path());
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
        am_burst_since(am_port, before - 1000)
    });
}

/// Benchmark (run explicitly): real OOM kill to the `oom_kill_burst` alert in Alertmanager.
///
/// `cargo test --release -p fleet-tests --test alerts -- --ignored --nocapture oom_alert_latency`
#[test]
#[ignore = "benchmark"]
fn oom_alert_latency() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, _agent, am_port, _am, cg) = oom_alert_setup(tmp.path());
    let mut latencies = Vec::new();
    for _ in 0..10 {
        let before = chrono::Utc::now().timestamp_millis();
        let mut hog = cg.spawn_hog();
        hog.wait().unwrap();
        let killed = chrono::Utc::now().timestamp_millis();
        // Poll Alertmanager every 20 ms.
        let end = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if am_burst_since(am_port, before - 1000).is_some() {
                latencies.push(chrono::Utc::now().timestamp_millis() - killed);
                break;
            }
            assert!(std::time::Instant::now() < end, "no alert in Alertmanager");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the alert resolve (window 5 s) before the next kill.
        wait_for("resolved", Duration::from_secs(30), || {
            (!fleet_alerts(&c.url(), "firing")
                .iter()
                .any(|a| a["rule"] == "oom-burst"))
            .then_some(())
        });
        wait_for("resolved in Alertmanager", Duration::from_secs(30), || {
            (!am_alerts(am_port)
                .iter()
                .any(|a| a["labels"]["alertname"] == "oom-burst"))
            .then_some(())
        });
    }
    latencies.sort_unstable();
    println!(
        "OOM kill -> alert in Alertmanager over {} kills: p50 {} ms, p99 {} ms",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
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
    wait_for("agent samples", Duration::from_secs(30), || {
        let v = try_fleetctl_json(&url, &["hosts"])?;
        (v.as_array()?.first()?["last_seq"].as_u64()? >= 1).then_some(())
    });
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
    // SAFETY: kill(2) on the collector this test started, by its pid.
    unsafe { libc::kill(c.proc.child.id() as i32, libc::SIGHUP) };
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
    // SAFETY: as above.
    unsafe { libc::kill(c.proc.child.id() as i32, libc::SIGHUP) };
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
    let pki = dir.join("pki");
    let other = dir.join("other");
    for d in [&pki, &other] {
        let out = Command::new(bin("fleetctl"))
            .args(["certs", "init", "--dir"])
            .arg(d)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    // Alertmanager serves the certificate `fleetctl certs init` makes for localhost.
    let am_dir = dir.join("am");
    std::fs::create_dir(&am_dir).unwrap();
    let (_am, port) = alertmanager_with(
        &am_dir,
        Some((
            &pki.join("collector.pem"),
            &pki.join("collector-key.pem"),
            &pki.join("ca.pem"),
        )),
    );
    let client = tls_client(&pki.join("ca.pem"));
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"https-test-memused\"\nkind = \"sar\"\ncolumn = \"%memused\"\nop = \">\"\nvalue = 0\n",
    )
    .unwrap();
    let am_url = format!("https://localhost:{port}");
    let start = |name: &str, ca: &Path| {
        Collector::start(
            &dir.join(name),
            "127.0.0.1:0",
            &[
                "--rules",
                rules.to_str().unwrap(),
                "--alertmanager",
                &am_url,
                "--notify-ca",
                ca.to_str().unwrap(),
            ],
        )
    };
    let good = start("good", &pki.join("ca.pem"));
    let wrong = start("wrong", &other.join("ca.pem"));
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
            let body = get(Some(&client), port, "/api/v2/alerts?active=true")?;
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
    let body = get(Some(&client), port, "/api/v2/alerts?active=true").unwrap();
    assert!(
        !body.contains("https-host-2"),
        "nothing from the collector with the wrong CA"
    );
}
