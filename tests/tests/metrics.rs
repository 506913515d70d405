//! The collector's metrics port (`--metrics-listen`, README "Metrics"), scraped for real:
//!
//! - over mutual TLS with a viewer certificate, after an agent sent data: the ingest counters
//!   moved, the write latency histogram counted commits, the storage is ok, `fleet_host_up` has
//!   the host at 1, then 0 once the agent stopped; OpenMetrics when asked (`# EOF`);
//! - without a client certificate the handshake is refused; with an agent certificate the
//!   answer is 403; both are counted in `fleet_collector_refusals_total`; a viewer revoked in
//!   the CRL is refused after SIGHUP;
//! - plaintext with `--insecure`; with rules and a webhook that is down, the rules evaluation
//!   histogram counts and the notifier's failures show;
//! - `promtool check metrics` (Debian package `prometheus`) accepts the 0.0.4 text, and
//!   `promtool check config` / `check rules` accept the examples in deploy/prometheus/.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use fleet_tests::tsdb::promtool_check_metrics;
use fleet_tests::*;

/// One HTTP answer: status, header block (lower case), body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// `GET path` on the metrics port, over TLS when `tls` is given; Err when no HTTP answer came
/// (a refused handshake).
fn get(
    port: u16,
    tls: Option<&Arc<rustls::ClientConfig>>,
    path: &str,
    accept: Option<&str>,
) -> Result<Answer, String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n");
    let mut bytes = Vec::new();
    match tls {
        None => {
            let mut s = s;
            s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
            s.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        }
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn =
                rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
            let mut s = rustls::StreamOwned::new(conn, s);
            s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
            if let Err(e) = s.read_to_end(&mut bytes) {
                if bytes.is_empty() {
                    return Err(e.to_string());
                }
            }
        }
    }
    let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status: {head:?}"))?;
    Ok(Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    })
}

/// The value of the sample `series` (name and labels exactly as written) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A rustls client of `pki` presenting `name`'s certificate, speaking HTTP/1.1.
fn http1(pki: &Pki, name: &str) -> Arc<rustls::ClientConfig> {
    let mut c = (*pki.client_tls(name)).clone();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

const OPENMETRICS: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";

#[test]
fn scraped_over_mutual_tls_by_a_viewer_only() {
    let promtool = caps::require(caps::program("promtool", "prometheus"));
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    pki.issue("viewer", "prometheus", &[])
        .issue("viewer", "revoked", &[])
        .issue("agent", "web1", &["--cluster", "c1"])
        .revoke(&[]);
    let mut args: Vec<String> = pki.collector_mtls_args().into();
    args.extend(["--tls-crl".into(), pki.path("crl.pem")]);
    args.extend(["--metrics-listen".into(), "127.0.0.1:0".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = Collector::spawn(&tmp.path().join("data"), "127.0.0.1:0", &args);
    let metrics = port(c.metrics.as_deref().unwrap());
    let viewer = http1(&pki, "prometheus");
    let scrape = || {
        let a = get(metrics, Some(&viewer), "/metrics", None).unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    };

    let mut agent_args = vec!["--no-kmsg".to_string(), "--tls-ca".into(), pki.ca()];
    agent_args.extend(pki.tls_args("web1"));
    let agent_args: Vec<&str> = agent_args.iter().map(String::as_str).collect();
    let url = format!("https://localhost:{}", port(&c.addr));
    let mut agent = spawn_agent(&url, &tmp.path().join("agent"), "web1", "c1", &agent_args);
    let up = r#"fleet_host_up{host_id="web1",hostname="web1",cluster="c1"}"#;
    let text = wait_for(
        "web1 up with batches stored",
        Duration::from_secs(30),
        || {
            let t = scrape();
            let batches = value(&t, "fleet_collector_batches_ingested_total")?;
            (value(&t, up) == Some(1.0) && batches >= 2.0).then_some(t)
        },
    );
    assert!(value(&text, "fleet_collector_values_ingested_total").unwrap() > 0.0);
    assert!(value(&text, "fleet_collector_write_duration_seconds_count").unwrap() >= 2.0);
    assert!(text.contains("fleet_collector_write_duration_seconds_bucket{le=\"+Inf\"} "));
    assert_eq!(value(&text, "fleet_collector_connected_agents"), Some(1.0));
    assert_eq!(
        value(&text, r#"fleet_collector_storage_state{state="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"fleet_collector_storage_state{state="failing"}"#),
        Some(0.0)
    );
    assert!(value(&text, "fleet_collector_writer_queue_capacity").unwrap() > 0.0);
    assert!(text.contains("# TYPE fleet_collector_storage_sst_bytes gauge\n"));
    assert_eq!(promtool_check_metrics(&promtool, &text), None, "{text}");

    // OpenMetrics when the scraper asks for it, as Prometheus does.
    let om = get(metrics, Some(&viewer), "/metrics", Some(OPENMETRICS)).unwrap();
    assert_eq!(om.status, 200);
    assert!(om
        .head
        .contains("content-type: application/openmetrics-text; version=1.0.0"));
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    assert!(om
        .body
        .contains("# TYPE fleet_collector_batches_ingested counter\n"));
    assert!(om
        .body
        .contains("\nfleet_collector_batches_ingested_total "));
    // promtool (2.42) reads the 0.0.4 text only: it takes OpenMetrics' counter families,
    // named without `_total`, for samples without HELP. The OpenMetrics body is checked above.
    let plain = get(metrics, Some(&viewer), "/metrics", None).unwrap();
    assert!(plain
        .head
        .contains("content-type: text/plain; version=0.0.4"));
    assert!(!plain.body.contains("# EOF"));

    // No certificate: the handshake fails. An agent's certificate: 403.
    let anonymous = {
        let mut c = (*net::tls_client(Path::new(&pki.ca()))).clone();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(c)
    };
    let refused = get(metrics, Some(&anonymous), "/metrics", None);
    assert!(
        refused.is_err(),
        "answered without a certificate: {:?}",
        refused.map(|a| a.status)
    );
    let as_agent = get(metrics, Some(&http1(&pki, "web1")), "/metrics", None).unwrap();
    assert_eq!(as_agent.status, 403, "{}", as_agent.body);
    assert!(
        as_agent.body.contains("agent certificate"),
        "{}",
        as_agent.body
    );
    assert!(!as_agent.body.contains("fleet_host_up"));
    let text = scrape();
    let reason = |r: &str| {
        value(
            &text,
            &format!("fleet_collector_refusals_total{{reason=\"{r}\"}}"),
        )
    };
    assert!(reason("tls_handshake").unwrap() >= 1.0, "{text}");
    assert!(reason("permission_denied").unwrap() >= 1.0, "{text}");
    // Plaintext is not served on a TLS port.
    assert!(get(metrics, None, "/metrics", None).map_or(true, |a| a.status != 200));

    // The CRL is the gRPC port's, re-read on SIGHUP: a revoked viewer is refused from then on.
    assert_eq!(
        get(metrics, Some(&http1(&pki, "revoked")), "/metrics", None)
            .unwrap()
            .status,
        200
    );
    pki.revoke(&["revoked"]);
    c.proc.signal(libc::SIGHUP).unwrap();
    wait_for(
        "the revoked viewer refused",
        Duration::from_secs(10),
        || {
            get(metrics, Some(&http1(&pki, "revoked")), "/metrics", None)
                .is_err()
                .then_some(())
        },
    );
    assert!(!scrape().is_empty());

    agent.term(Duration::from_secs(10));
    wait_for("web1 down", Duration::from_secs(15), || {
        (value(&scrape(), up) == Some(0.0)).then_some(())
    });
    assert_eq!(
        value(&scrape(), "fleet_collector_connected_agents"),
        Some(0.0)
    );
}

/// The value of the first sample whose line starts with `prefix`.
fn value_starting(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn plaintext_with_insecure_and_the_rules_and_notifier_metrics() {
    let promtool = caps::require(caps::program("promtool", "prometheus"));
    let tmp = tempfile::tempdir().unwrap();
    // A rule that fires on the first memory sample, and a webhook nobody listens on: its posts
    // fail.
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"always\"\nkind = \"sar\"\ncolumn = \"%memused\"\nop = \">\"\n\
         value = -1\nfor = \"0s\"\n",
    )
    .unwrap();
    let webhook = format!("http://127.0.0.1:{}/hook", net::free_port());
    let mut c = Collector::start(
        &tmp.path().join("data"),
        "127.0.0.1:0",
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--rules",
            rules.to_str().unwrap(),
            "--webhook",
            &webhook,
        ],
    );
    let metrics = port(c.metrics.as_deref().unwrap());
    let mut agent = start_agent(&c.url(), &tmp.path().join("agent"), "db1", "c2", &[]);
    let up = r#"fleet_host_up{host_id="db1",hostname="db1",cluster="c2"}"#;
    let text = wait_for("db1 up, a failed post", Duration::from_secs(30), || {
        let a = get(metrics, None, "/metrics", None).ok()?;
        let failed = value_starting(&a.body, "fleet_collector_notifier_failures_total{notifier=")?;
        (a.status == 200 && value(&a.body, up) == Some(1.0) && failed >= 1.0).then_some(a.body)
    });
    let evaluations = value(
        &text,
        "fleet_collector_rules_evaluation_duration_seconds_count",
    );
    assert!(evaluations.unwrap() >= 1.0, "{text}");
    assert!(value_starting(&text, "fleet_collector_notifier_queue_depth{notifier=").is_some());
    assert_eq!(promtool_check_metrics(&promtool, &text), None, "{text}");
    assert_eq!(get(metrics, None, "/other", None).unwrap().status, 404);
    agent.term(Duration::from_secs(10));
    // The metrics port ends with the collector's graceful shutdown.
    assert_eq!(c.proc.term(Duration::from_secs(20)), Some(0));
    assert!(get(metrics, None, "/metrics", None).is_err());
}

#[test]
fn deploy_examples_pass_promtool() {
    let promtool = caps::require(caps::program("promtool", "prometheus"));
    let tmp = tempfile::tempdir().unwrap();
    // The scrape config names the TLS files where an operator puts them; promtool checks that
    // they exist, so the check reads a copy naming real ones.
    let pki = Pki::init(&tmp.path().join("pki"));
    pki.issue("viewer", "prometheus", &[]);
    let config = paths::read_workspace_file("deploy/prometheus/prometheus.yml");
    assert!(config.contains("/etc/prometheus/fleet/"));
    let config = config.replace("/etc/prometheus/fleet/", &format!("{}/", pki.dir.display()));
    std::fs::write(tmp.path().join("prometheus.yml"), config).unwrap();
    std::fs::copy(
        paths::workspace_path("deploy/prometheus/fleet-collector-rules.yml"),
        tmp.path().join("fleet-collector-rules.yml"),
    )
    .unwrap();
    for (what, file) in [
        ("config", "prometheus.yml"),
        ("rules", "fleet-collector-rules.yml"),
    ] {
        let out = Command::new(&promtool)
            .args(["check", what])
            .arg(tmp.path().join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check {what} {file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
