//! The NTP probe against fake servers on loopback (`sources::ntp::fake`, the same code as the
//! `fleet-fake-ntp` binary): offsets, unsynchronised servers, kiss-o'-death, spoofed replies,
//! timeouts, and a server whose settings change while it runs.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use fleet_agent::sources::ntp::fake::{FakeConfig, FakeServer, Spoof};
use fleet_agent::sources::ntp::{NtpProbe, DEFAULT_TIMEOUT};
use fleet_proto::v1::NtpServerStatus;

fn fake(cfg: FakeConfig) -> FakeServer {
    FakeServer::start(cfg).expect("start a fake NTP server on 127.0.0.1:0")
}

fn probe(servers: Vec<String>) -> NtpProbe {
    // No chronyd in an empty proc root: the kernel part must not depend on the host.
    NtpProbe::new(servers, DEFAULT_TIMEOUT, Path::new("/nonexistent-proc"))
}

async fn measure_one(server: String) -> NtpServerStatus {
    let status = probe(vec![server]).measure().await;
    assert_eq!(status.servers.len(), 1);
    status.servers.into_iter().next().unwrap()
}

/// The best of three measurements: the one with the smallest round trip, as NTP's clock filter
/// picks it (a test machine busy compiling can delay one exchange by milliseconds).
async fn measure_best(server: String) -> NtpServerStatus {
    let mut p = probe(vec![server]);
    let mut best: Option<NtpServerStatus> = None;
    for _ in 0..3 {
        let st = p.measure().await.servers.remove(0);
        let better = match &best {
            None => true,
            Some(b) => st.reachable && (!b.reachable || st.delay_ms < b.delay_ms),
        };
        if better {
            best = Some(st);
        }
    }
    best.unwrap()
}

/// The measured offset is the true one within half the round trip (the only asymmetry the
/// NTP formula cannot see; causality bounds it) plus a millisecond for rounding and the
/// server's own processing.
fn assert_offset(st: &NtpServerStatus, want_ms: f64) {
    assert!(st.reachable && st.synced, "{st:?}");
    assert!(st.delay_ms >= 0.0 && st.delay_ms < 500.0, "{st:?}");
    let tolerance = 1.0 + st.delay_ms / 2.0;
    assert!(
        (st.offset_ms - want_ms).abs() <= tolerance,
        "offset {} ms, want {want_ms} ± {tolerance} ms",
        st.offset_ms
    );
}

#[tokio::test]
async fn offset_250_ms_is_measured_within_a_few_ms() {
    let server = fake(FakeConfig {
        offset_ms: 250.0,
        ..FakeConfig::default()
    });
    let st = measure_best(server.server()).await;
    assert_offset(&st, 250.0);
    assert!((st.offset_ms - 250.0).abs() < 5.0, "{st:?}");
    assert_eq!(st.server, server.server());
    assert_eq!((st.stratum, st.leap), (2, 0));
    assert_eq!(st.reference_id, "192.0.2.1");
    assert_eq!(st.precision, -20);
    assert!((st.root_delay_ms - 10.0).abs() < 0.1, "{st:?}");
    assert!((st.root_dispersion_ms - 20.0).abs() < 0.1, "{st:?}");
    assert_eq!(st.error, "");
}

#[tokio::test]
async fn negative_offset_and_stratum_1() {
    let server = fake(FakeConfig {
        offset_ms: -1_500.0,
        stratum: 1,
        ..FakeConfig::default()
    });
    let st = measure_one(server.server()).await;
    assert_offset(&st, -1_500.0);
    assert_eq!(st.stratum, 1);
    assert_eq!(st.reference_id, "LOCL");
}

#[tokio::test]
async fn leap_3_is_unsynchronised() {
    let server = fake(FakeConfig {
        offset_ms: 250.0,
        leap: 3,
        ..FakeConfig::default()
    });
    let st = measure_one(server.server()).await;
    assert!(st.reachable, "{st:?}");
    assert!(!st.synced, "{st:?}");
    assert_eq!(st.leap, 3);
    assert_eq!(st.error, "unsynchronised (leap 3)");
    // What it said is still reported.
    assert!((st.offset_ms - 250.0).abs() < 5.0, "{st:?}");
}

#[tokio::test]
async fn stratum_16_is_unsynchronised() {
    let server = fake(FakeConfig {
        stratum: 16,
        ..FakeConfig::default()
    });
    let st = measure_one(server.server()).await;
    assert!(st.reachable && !st.synced, "{st:?}");
    assert_eq!(st.stratum, 16);
    assert_eq!(st.error, "unsynchronised (stratum 16)");
}

#[tokio::test]
async fn kiss_o_death_names_its_code() {
    for code in ["RATE", "DENY", "RSTR"] {
        let server = fake(FakeConfig {
            kod: Some(code.to_string()),
            ..FakeConfig::default()
        });
        let st = measure_one(server.server()).await;
        assert!(st.reachable && !st.synced, "{st:?}");
        assert_eq!(st.error, format!("kiss-o'-death {code}"));
        assert_eq!(st.stratum, 0);
        assert_eq!(st.reference_id, code);
        assert_eq!(st.offset_ms, 0.0, "a KoD's timestamps are not used");
    }
}

#[tokio::test]
async fn a_spoofed_reply_is_ignored() {
    // The wrong-origin reply comes first and claims an offset of one hour more.
    let server = fake(FakeConfig {
        offset_ms: 250.0,
        spoof: Spoof::First,
        ..FakeConfig::default()
    });
    let st = measure_one(server.server()).await;
    assert_offset(&st, 250.0);
}

#[tokio::test]
async fn only_spoofed_replies_are_an_origin_mismatch() {
    let server = fake(FakeConfig {
        spoof: Spoof::Only,
        ..FakeConfig::default()
    });
    let started = Instant::now();
    let st = measure_one(server.server()).await;
    assert!(!st.reachable && !st.synced, "{st:?}");
    assert_eq!(st.error, "origin mismatch");
    // It kept waiting for the right reply until the timeout.
    assert!(
        started.elapsed() >= DEFAULT_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // A bound socket that never answers (so no ICMP "port unreachable" either).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let timeout = Duration::from_millis(300);
    let mut p = NtpProbe::new(
        vec![server.clone()],
        timeout,
        Path::new("/nonexistent-proc"),
    );
    let started = Instant::now();
    let status = p.measure().await;
    let elapsed = started.elapsed();
    let st = &status.servers[0];
    assert!(!st.reachable && !st.synced, "{st:?}");
    assert_eq!(st.error, "timeout");
    assert_eq!(st.server, server);
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_closed_port_is_connection_refused() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let st = measure_one(format!("127.0.0.1:{port}")).await;
    assert!(!st.reachable, "{st:?}");
    assert_eq!(st.error, "connection refused");
}

#[tokio::test]
async fn servers_are_measured_concurrently_and_in_order() {
    let a = fake(FakeConfig {
        offset_ms: 100.0,
        ..FakeConfig::default()
    });
    let silent1 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = fake(FakeConfig {
        offset_ms: -100.0,
        ..FakeConfig::default()
    });
    let servers = vec![
        a.server(),
        silent1.local_addr().unwrap().to_string(),
        b.server(),
        silent2.local_addr().unwrap().to_string(),
    ];
    let timeout = Duration::from_secs(1);
    let mut p = NtpProbe::new(servers.clone(), timeout, Path::new("/nonexistent-proc"));
    let started = Instant::now();
    let status = p.measure().await;
    // Two silent servers cost one timeout, not two.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= timeout && elapsed < timeout * 9 / 5,
        "{elapsed:?}"
    );
    let got: Vec<&str> = status.servers.iter().map(|s| s.server.as_str()).collect();
    assert_eq!(got, servers);
    assert_offset(&status.servers[0], 100.0);
    assert_eq!(status.servers[1].error, "timeout");
    assert_offset(&status.servers[2], -100.0);
    assert_eq!(status.servers[3].error, "timeout");
    // The kernel's view comes along (no chronyd under the empty proc root).
    let kernel = status.kernel.expect("adjtimex works");
    assert!(!kernel.chronyd);
    assert!(kernel.max_error_ms >= 0.0);
}

#[tokio::test]
async fn ipv6_loopback() {
    let Ok(sock) = UdpSocket::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let server = FakeServer::start_on(
        sock,
        FakeConfig {
            offset_ms: 250.0,
            ..FakeConfig::default()
        },
    )
    .unwrap();
    assert!(server.server().starts_with("[::1]:"), "{}", server.server());
    let st = measure_one(server.server()).await;
    assert_offset(&st, 250.0);
}

#[tokio::test]
async fn the_control_file_changes_the_server_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control");
    let write = |text: &str| {
        let tmp = dir.path().join("control.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &control).unwrap();
    };
    write("offset_ms=250\n");
    let server = fake(FakeConfig {
        control_file: Some(control.clone()),
        ..FakeConfig::default()
    });
    let mut p = probe(vec![server.server()]);
    assert_offset(&p.measure().await.servers[0], 250.0);
    write("offset_ms=0\n");
    assert_offset(&p.measure().await.servers[0], 0.0);
    write("leap=3\n");
    let st = p.measure().await.servers.remove(0);
    assert!(
        !st.synced && st.error == "unsynchronised (leap 3)",
        "{st:?}"
    );
}

#[tokio::test]
async fn names_are_resolved() {
    let server = fake(FakeConfig {
        offset_ms: 250.0,
        ..FakeConfig::default()
    });
    // If localhost resolves to ::1 first, nothing listens there: the refusal moves the probe
    // on to 127.0.0.1.
    let st = measure_one(format!("localhost:{}", server.addr().port())).await;
    assert_offset(&st, 250.0);
    assert_eq!(st.server, format!("localhost:{}", server.addr().port()));
}

#[test]
fn due_schedules_on_the_period() {
    let mut p = probe(vec![]).with_period(Duration::from_secs(16));
    let now = Instant::now();
    assert!(p.due(now));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(p.measure());
    assert!(status.servers.is_empty());
    assert!(!p.due(Instant::now()));
    assert!(p.due(Instant::now() + Duration::from_secs(16)));
}
