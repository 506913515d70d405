//! Mutual TLS and roles, end to end: a collector with certificates made by `fleetctl certs`, real
//! agents and fleetctl presenting theirs. Refused: an agent without a certificate, with one from
//! another CA, with an expired one, or claiming another host's id; a viewer applying a policy;
//! an agent certificate querying. Accepted: the agent for its own host, a viewer querying, an
//! operator applying a policy (recorded with the certificate's name). Nothing a refused client
//! sent is stored. Certificates rotate on SIGHUP without a restart.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;

fn certs(args: &[&str]) {
    let out = std::process::Command::new(bin("fleetctl"))
        .arg("certs")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fleetctl certs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn issue(dir: &Path, role: &str, name: &str, extra: &[&str]) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["issue", "--role", role, "--name", name, "--dir", d];
    args.extend_from_slice(extra);
    certs(&args);
}

fn p(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// fleetctl over mutual TLS with `name`'s certificate from `dir` (or none).
fn ctl(url: &str, ca: &str, identity: Option<(&Path, &str)>, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(bin("fleetctl"));
    cmd.args(["--collector", url, "--tls-ca", ca]);
    if let Some((dir, name)) = identity {
        cmd.args(["--tls-cert", &p(dir, &format!("{name}.pem"))])
            .args(["--tls-key", &p(dir, &format!("{name}-key.pem"))]);
    }
    cmd.args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn host_ids(url: &str, ca: &str, dir: &Path) -> Vec<String> {
    let out = ctl(url, ca, Some((dir, "viewer")), &["-o", "json", "hosts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| h["host_id"].as_str().unwrap().to_string())
        .collect()
}

/// An agent with the certificate of `cert_name` (None: no certificate) claiming `host_id`.
fn agent(url: &str, state: &Path, host_id: &str, ca: &str, cert: Option<(&Path, &str)>) -> Proc {
    let mut args = vec!["--no-kmsg".to_string(), "--tls-ca".into(), ca.into()];
    if let Some((dir, name)) = cert {
        args.extend([
            "--tls-cert".into(),
            p(dir, &format!("{name}.pem")),
            "--tls-key".into(),
            p(dir, &format!("{name}-key.pem")),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_agent(url, state, host_id, "prod", &args)
}

#[test]
fn mutual_tls_roles_refusals_and_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    let other = tmp.path().join("other");
    certs(&["init", "--dir", pki.to_str().unwrap()]);
    certs(&["init", "--dir", other.to_str().unwrap()]);
    issue(&pki, "agent", "web1", &[]);
    issue(&pki, "agent", "web3", &[]);
    issue(
        &pki,
        "agent",
        "old1",
        &["--not-after", "2026-01-01T00:00:00Z"],
    );
    issue(&pki, "viewer", "viewer", &[]);
    issue(&pki, "operator", "alice", &[]);
    issue(&other, "agent", "rogue1", &[]);
    issue(&other, "viewer", "viewer", &[]);
    // Keys are private to their owner.
    use std::os::unix::fs::PermissionsExt;
    for key in [
        "ca-key.pem",
        "collector-key.pem",
        "web1-key.pem",
        "alice-key.pem",
    ] {
        let mode = std::fs::metadata(pki.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }

    // The collector reads its files from paths the test can rotate later.
    let live = tmp.path().join("live");
    std::fs::create_dir(&live).unwrap();
    for f in ["collector.pem", "collector-key.pem", "ca.pem"] {
        std::fs::copy(pki.join(f), live.join(f)).unwrap();
    }
    let mut c = Collector::spawn(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &[
            "--tls-cert",
            &p(&live, "collector.pem"),
            "--tls-key",
            &p(&live, "collector-key.pem"),
            "--tls-ca",
            &p(&live, "ca.pem"),
        ],
    );
    let port = c.addr.rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{port}");
    let ca = p(&pki, "ca.pem");
    let a = |name: &str| tmp.path().join(format!("agent-{name}"));
    // A client that connects and never speaks: the collector drops it when the TLS handshake
    // has not completed in 10 s (checked at the end).
    let mut silent = std::net::TcpStream::connect(&c.addr).unwrap();
    let silent_since = std::time::Instant::now();

    // The agent of web1 streams for web1 (from files it will get rotated later).
    let agent_live = tmp.path().join("agent-live");
    std::fs::create_dir(&agent_live).unwrap();
    for f in ["ca.pem", "web1.pem", "web1-key.pem"] {
        std::fs::copy(pki.join(f), agent_live.join(f)).unwrap();
    }
    let good = agent(
        &url,
        &a("web1"),
        "web1",
        &p(&agent_live, "ca.pem"),
        Some((&agent_live, "web1")),
    );
    wait_for(
        "web1's data over mutual TLS",
        Duration::from_secs(30),
        || {
            let out = ctl(&url, &ca, Some((&pki, "viewer")), &["-o", "json", "hosts"]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let h = v.as_array()?.iter().find(|h| h["host_id"] == "web1")?;
            (h["last_seq"].as_u64()? >= 2).then_some(())
        },
    );

    // Refused agents: no certificate, another CA, expired, another host's id, a viewer's.
    let mut refused = vec![
        ("nocert1", agent(&url, &a("nocert"), "nocert1", &ca, None)),
        (
            "rogue1",
            agent(&url, &a("rogue"), "rogue1", &ca, Some((&other, "rogue1"))),
        ),
        (
            "old1",
            agent(&url, &a("old"), "old1", &ca, Some((&pki, "old1"))),
        ),
        (
            "web4",
            agent(&url, &a("web3"), "web4", &ca, Some((&pki, "web3"))),
        ),
        (
            "viewer",
            agent(&url, &a("viewer"), "viewer", &ca, Some((&pki, "viewer"))),
        ),
    ];
    // Each says why in its log; the collector logs and counts the refusals.
    // (The TLS alerts rustls sends: certificate_required, unknown_ca, certificate_expired.)
    let reasons = [
        ("nocert1", "certificaterequired"),
        ("rogue1", "unknownca"),
        ("old1", "certificateexpired"),
        ("web4", "cannot stream as host \"web4\""),
        ("viewer", "may not stream"),
    ];
    for (name, want) in reasons {
        let (_, proc) = refused.iter().find(|(n, _)| *n == name).unwrap();
        wait_for(&format!("{name} refused"), Duration::from_secs(20), || {
            let log = proc.log_text().to_lowercase();
            (log.contains("collector unreachable") && log.contains(want)).then_some(())
        });
    }
    // The agents with a wrong certificate said so themselves at start.
    for name in ["web4", "viewer", "old1"] {
        let (_, proc) = refused.iter().find(|(n, _)| *n == name).unwrap();
        let log = proc.log_text();
        assert!(
            log.contains("the collector will refuse this agent's certificate"),
            "{name}: {log}"
        );
    }
    let log = c.proc.log_text();
    assert!(log.contains("TLS handshake refused"), "{log}");
    assert!(log.contains("host id is not its certificate's"), "{log}");
    assert!(log.contains("may not stream"), "{log}");
    for (_, p) in &mut refused {
        assert!(p.running(), "a refused agent keeps running and spooling");
    }
    // Nothing of theirs is stored.
    std::thread::sleep(Duration::from_secs(2));
    let hosts = host_ids(&url, &ca, &pki);
    assert_eq!(hosts, ["web1"], "only the accepted agent's host is stored");

    // fleetctl: no certificate, another CA's viewer, an agent certificate: refused.
    let out = ctl(&url, &ca, None, &["hosts"]);
    assert!(!out.status.success());
    let out = ctl(&url, &ca, Some((&other, "viewer")), &["hosts"]);
    assert!(!out.status.success());
    let out = ctl(&url, &ca, Some((&pki, "web1")), &["hosts"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("may not query"), "{}", stderr(&out));

    // A viewer cannot apply a policy; an operator can, and the history names the operator.
    let policy = tmp.path().join("p.yaml");
    std::fs::write(
        &policy,
        "name: mtls-test\ntarget: {cluster: prod}\nmatch: {cmdline: '^fleet-mtls-test-nothing$'}\noom_score_adj: 10\n",
    )
    .unwrap();
    let pol = policy.to_str().unwrap();
    let out = ctl(
        &url,
        &ca,
        Some((&pki, "viewer")),
        &["policy", "apply", "-f", pol],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("may not change policies"),
        "{}",
        stderr(&out)
    );
    let out = ctl(
        &url,
        &ca,
        Some((&pki, "viewer")),
        &["policy", "history", "mtls-test"],
    );
    assert!(!out.status.success(), "the viewer's policy was not stored");
    let out = ctl(
        &url,
        &ca,
        Some((&pki, "alice")),
        &["policy", "apply", "-f", pol],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ctl(
        &url,
        &ca,
        Some((&pki, "viewer")),
        &["policy", "history", "mtls-test"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("alice (operator)"), "{text}");

    // The refusals are counted, and `fleetctl status` shows them.
    let out = ctl(&url, &ca, Some((&pki, "viewer")), &["-o", "json", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["mutual_tls"], true);
    assert!(
        st["refused"]["tls_handshakes"].as_u64().unwrap() >= 3,
        "{st}"
    );
    assert!(
        st["refused"]["permission_denied"].as_u64().unwrap() >= 3,
        "{st}"
    );
    assert!(st["connected_agents"].as_u64().unwrap() >= 1, "{st}");

    // Rotation: the collector's files are replaced by another CA's and it gets SIGHUP. New
    // connections need the new CA; nothing restarted.
    for f in ["collector.pem", "collector-key.pem", "ca.pem"] {
        std::fs::copy(other.join(f), live.join(f)).unwrap();
    }
    let pid = c.proc.child.id() as i32;
    // SAFETY: kill(2) on the collector this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let other_ca = p(&other, "ca.pem");
    wait_for(
        "the rotated certificates in force",
        Duration::from_secs(10),
        || {
            ctl(&url, &other_ca, Some((&other, "viewer")), &["hosts"])
                .status
                .success()
                .then_some(())
        },
    );
    let out = ctl(&url, &ca, Some((&pki, "viewer")), &["hosts"]);
    assert!(
        !out.status.success(),
        "the old CA's clients are refused after the rotation"
    );
    assert!(c.proc.running());
    assert!(c.proc.log_text().contains("TLS certificates reloaded"));

    // The agent's files are rotated too (a certificate for web1 from the new CA) and it gets
    // SIGHUP: it reconnects with them, and its data flows again through the new chain.
    issue(&other, "agent", "web1", &[]);
    for f in ["ca.pem", "web1.pem", "web1-key.pem"] {
        std::fs::copy(other.join(f), agent_live.join(f)).unwrap();
    }
    let seq_of = |v: &serde_json::Value| {
        v.as_array()?.iter().find(|h| h["host_id"] == "web1")?["last_seq"].as_u64()
    };
    let hosts = |ca: &str| -> Option<serde_json::Value> {
        let out = ctl(&url, ca, Some((&other, "viewer")), &["-o", "json", "hosts"]);
        serde_json::from_slice(&out.stdout).ok()
    };
    let before = seq_of(&hosts(&other_ca).unwrap()).unwrap();
    // SAFETY: kill(2) on the agent this test started.
    assert_eq!(
        unsafe { libc::kill(good.child.id() as i32, libc::SIGHUP) },
        0
    );
    wait_for(
        "web1 reconnected with its new certificate",
        Duration::from_secs(20),
        || {
            let log = good.log_text();
            let after_hup = &log[log.find("SIGHUP")?..];
            (after_hup.contains("collector reachable again")
                || after_hup.contains("connected to collector"))
            .then_some(())
        },
    );
    wait_for(
        "web1's data after the rotation",
        Duration::from_secs(20),
        || (seq_of(&hosts(&other_ca)?)? >= before + 3).then_some(()),
    );

    // The silent client was dropped by the collector after the handshake timeout.
    use std::io::Read;
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = [0u8; 16];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the silent connection is still open: {other:?}"),
    }
    let waited = silent_since.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
        "closed after {waited:?}"
    );
}

/// Plaintext needs --insecure on both ends; a plaintext client against the TLS port fails.
#[test]
fn plaintext_against_tls_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let pki: PathBuf = tmp.path().join("pki");
    certs(&["init", "--dir", pki.to_str().unwrap()]);
    let c = Collector::spawn(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &[
            "--tls-cert",
            &p(&pki, "collector.pem"),
            "--tls-key",
            &p(&pki, "collector-key.pem"),
            "--tls-ca",
            &p(&pki, "ca.pem"),
        ],
    );
    let out = fleetctl(&format!("http://{}", c.addr), &["hosts"]);
    assert!(!out.status.success());
    // And a collector with TLS but no fleet CA does not start.
    let out = std::process::Command::new(bin("fleet-collector"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data2"))
        .args(["--tls-cert", &p(&pki, "collector.pem")])
        .args(["--tls-key", &p(&pki, "collector-key.pem")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tls_ca"), "{}", stderr(&out));
}
