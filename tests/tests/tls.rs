//! Mutual TLS and roles, end to end: a collector with certificates made by `fleetctl certs`, real
//! agents and fleetctl presenting theirs. Refused: an agent without a certificate, with one from
//! another CA, with an expired one, or claiming another host's id; a viewer applying a policy;
//! an agent certificate querying. Accepted: the agent for its own host, a viewer querying, an
//! operator applying a policy (recorded with the certificate's name). Nothing a refused client
//! sent is stored. Certificates rotate on SIGHUP without a restart. (Clusters, roles, the
//! organisation and revocation: tests/tests/identity.rs.)

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use fleet_tests::fleetctl::fleetctl_tls as ctl;
use fleet_tests::paths::file_mode;
use fleet_tests::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn host_ids(url: &str, ca: &str, pki: &Pki) -> Vec<String> {
    let out = ctl(url, ca, Some((pki, "viewer")), &["-o", "json", "hosts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| h["host_id"].as_str().unwrap().to_string())
        .collect()
}

/// An agent with the certificate `cert` (None: no certificate) claiming `host_id`.
fn agent(url: &str, state: &Path, host_id: &str, ca: &str, cert: Option<(&Pki, &str)>) -> Proc {
    let mut args = vec!["--no-kmsg".to_string(), "--tls-ca".into(), ca.into()];
    if let Some((pki, name)) = cert {
        args.extend(pki.tls_args(name));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_agent(url, state, host_id, "prod", &args)
}

#[test]
fn mutual_tls_roles_refusals_and_rotation() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    let other = Pki::init(&tmp.path().join("other"));
    // Agent certificates are bound to the agents' cluster (tests/tests/identity.rs: the
    // refusals when they are not).
    let prod = ["--cluster", "prod"];
    pki.issue("agent", "web1", &prod)
        .issue("agent", "web3", &prod)
        .issue(
            "agent",
            "old1",
            &["--cluster", "prod", "--not-after", "2026-01-01T00:00:00Z"],
        )
        .issue("viewer", "viewer", &[])
        .issue("operator", "alice", &[]);
    other
        .issue("agent", "rogue1", &prod)
        .issue("viewer", "viewer", &[]);
    // Keys are private to their owner.
    for key in [
        "ca-key.pem",
        "collector-key.pem",
        "web1-key.pem",
        "alice-key.pem",
    ] {
        assert_eq!(file_mode(&pki.dir.join(key)), 0o600, "{key}");
    }

    // The collector reads its files from paths the test can rotate later.
    let live = Pki::at(&tmp.path().join("live"));
    std::fs::create_dir(&live.dir).unwrap();
    for f in ["collector.pem", "collector-key.pem", "ca.pem"] {
        std::fs::copy(pki.dir.join(f), live.dir.join(f)).unwrap();
    }
    let mut c = Collector::spawn(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &[
            "--tls-cert",
            &live.path("collector.pem"),
            "--tls-key",
            &live.path("collector-key.pem"),
            "--tls-ca",
            &live.ca(),
        ],
    );
    let port = c.addr.rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{port}");
    let ca = pki.ca();
    let a = |name: &str| tmp.path().join(format!("agent-{name}"));
    // A client that connects and never speaks: the collector drops it when the TLS handshake
    // has not completed in 10 s (checked at the end).
    let mut silent = std::net::TcpStream::connect(&c.addr).unwrap();
    let silent_since = std::time::Instant::now();

    // The agent of web1 streams for web1 (from files it will get rotated later).
    let agent_live = Pki::at(&tmp.path().join("agent-live"));
    std::fs::create_dir(&agent_live.dir).unwrap();
    for f in ["ca.pem", "web1.pem", "web1-key.pem"] {
        std::fs::copy(pki.dir.join(f), agent_live.dir.join(f)).unwrap();
    }
    let good = agent(
        &url,
        &a("web1"),
        "web1",
        &agent_live.ca(),
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
    // Nothing of theirs is stored. A fixed sleep on purpose: the check is that nothing arrives
    // within 2 s more of their retries.
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
        std::fs::copy(other.dir.join(f), live.dir.join(f)).unwrap();
    }
    c.proc
        .signal(libc::SIGHUP)
        .expect("SIGHUP to the collector");
    let other_ca = other.ca();
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
    other.issue("agent", "web1", &prod);
    for f in ["ca.pem", "web1.pem", "web1-key.pem"] {
        std::fs::copy(other.dir.join(f), agent_live.dir.join(f)).unwrap();
    }
    let seq_of = |v: &serde_json::Value| {
        v.as_array()?.iter().find(|h| h["host_id"] == "web1")?["last_seq"].as_u64()
    };
    let hosts = |ca: &str| -> Option<serde_json::Value> {
        let out = ctl(&url, ca, Some((&other, "viewer")), &["-o", "json", "hosts"]);
        serde_json::from_slice(&out.stdout).ok()
    };
    let before = seq_of(&hosts(&other_ca).unwrap()).unwrap();
    good.signal(libc::SIGHUP).expect("SIGHUP to the agent");
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
    let pki = Pki::init(&tmp.path().join("pki"));
    let c = Collector::spawn(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &[
            "--tls-cert",
            &pki.path("collector.pem"),
            "--tls-key",
            &pki.path("collector-key.pem"),
            "--tls-ca",
            &pki.ca(),
        ],
    );
    let out = fleetctl(&format!("http://{}", c.addr), &["hosts"]);
    assert!(!out.status.success());
    // And a collector with TLS but no fleet CA does not start.
    let data2 = tmp.path().join("data2");
    let out = run(
        "fleet-collector",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data2.to_str().unwrap(),
            "--tls-cert",
            &pki.path("collector.pem"),
            "--tls-key",
            &pki.path("collector-key.pem"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tls_ca"), "{}", stderr(&out));
}
