//! Notifiers against a tiny HTTP/1.1 server on 127.0.0.1:0 that records each request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;

use fleet_rules::{RuleKind, Scope};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;

const T0: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(10);

/// One request the server received.
#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

/// Serves `listener`: answers each request with `statuses[n]` (200 once they run out) and
/// sends what it received on the channel.
fn serve(listener: TcpListener, statuses: Vec<u16>) -> mpsc::UnboundedReceiver<Received> {
    let (tx, rx) = mpsc::unbounded_channel();
    let statuses = Arc::new(statuses);
    let served = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                return;
            };
            let (tx, statuses, served) = (tx.clone(), statuses.clone(), served.clone());
            tokio::spawn(async move {
                let _ = connection(conn, tx, &statuses, &served).await;
            });
        }
    });
    rx
}

/// Reads requests (keep-alive) until the client closes.
async fn connection(
    conn: TcpStream,
    tx: mpsc::UnboundedSender<Received>,
    statuses: &[u16],
    served: &AtomicUsize,
) -> std::io::Result<()> {
    let mut conn = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if conn.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).await?;
        let n = served.fetch_add(1, Ordering::SeqCst);
        let status = statuses.get(n).copied().unwrap_or(200);
        let _ = tx.send(Received {
            method,
            path,
            content_type,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
        conn.get_mut().write_all(reply.as_bytes()).await?;
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a request in time")
        .expect("server alive")
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn fast() -> NotifierOptions {
    NotifierOptions {
        queue: 100,
        resend_every: Duration::from_secs(3600),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        tls: None,
    }
}

fn alert(state: AlertState, hosts: &[&str]) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("severity".to_owned(), "page".to_owned());
    Alert {
        key: AlertKey {
            rule: "prod-clock-skew".into(),
            scope: Scope::Cluster("prod".into()),
        },
        kind: RuleKind::ClockSkew,
        state,
        cluster: "prod".into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        summary: "clock skew of 250 ms between hosts in cluster prod".into(),
        value: 250.25,
        labels,
        since_ms: T0 + 10_000,
        active_since_ms: T0,
        fired_at_ms: Some(T0 + 5_000),
        last_held_ms: T0 + 10_000,
    }
}

fn transition(from: AlertState, alert: Alert) -> Transition {
    Transition {
        to: alert.state,
        from,
        alert,
    }
}

async fn local() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

#[test]
fn urls_are_checked() {
    let t = Target::alertmanager("http://127.0.0.1:9093").unwrap();
    assert_eq!(t.uri, "http://127.0.0.1:9093/api/v2/alerts");
    assert_eq!(t.name(), "alertmanager http://127.0.0.1:9093/api/v2/alerts");
    let t = Target::alertmanager("http://am.example/prefix/").unwrap();
    assert_eq!(t.uri, "http://am.example/prefix/api/v2/alerts");
    assert_eq!(
        Target::webhook("http://h:8080/hook?x=1").unwrap().uri,
        "http://h:8080/hook?x=1"
    );
    let t = Target::alertmanager("https://am.example:9093").unwrap();
    assert_eq!(t.uri, "https://am.example:9093/api/v2/alerts");
    assert!(t.is_https());
    assert!(Target::webhook("https://x/hook").unwrap().is_https());
    for bad in ["am:9093", "ftp://am", "http://", "not a url"] {
        assert!(Target::alertmanager(bad).is_err(), "{bad}");
    }
    assert!(Target::alertmanager("http://am:9093/?a=b").is_err());
    let e = Target::webhook("ftp://x").unwrap_err().to_string();
    assert!(e.contains("http:// or https://"), "{e}");
    // The roots for https come from a PEM file; one without a certificate is refused by name.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let e = client_tls(Some(&empty)).unwrap_err();
    assert!(e.contains("empty.pem"), "{e}");
    assert!(client_tls(Some(&dir.path().join("missing.pem"))).is_err());
}

#[tokio::test]
async fn alertmanager_receives_firing_then_resolved() {
    let (listener, addr) = local().await;
    let mut rx = serve(listener, vec![]);
    let n = Notifiers::start(
        vec![Target::alertmanager(&format!("http://{addr}")).unwrap()],
        fast(),
    );

    // Pending transitions go to the log only.
    n.notify(&[transition(
        AlertState::Inactive,
        alert(AlertState::Pending, &["web3"]),
    )]);
    n.notify(&[transition(
        AlertState::Pending,
        alert(AlertState::Firing, &["web3"]),
    )]);
    let r = next(&mut rx).await;
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v2/alerts")
    );
    assert_eq!(r.content_type, "application/json");
    assert_eq!(
        r.body,
        json!([{
            "labels": {
                "alertname": "prod-clock-skew",
                "rule": "prod-clock-skew",
                "kind": "clock_skew",
                "cluster": "prod",
                "hosts": "web3",
                "severity": "page",
            },
            "annotations": {
                "summary": "clock skew of 250 ms between hosts in cluster prod",
                "value": "250.25",
            },
            "startsAt": "2023-11-14T22:13:25.000Z",
        }])
    );

    n.notify(&[transition(
        AlertState::Firing,
        alert(AlertState::Resolved, &["web3"]),
    )]);
    let r = next(&mut rx).await;
    let a = &r.body[0];
    assert_eq!(a["endsAt"], "2023-11-14T22:13:30.000Z");
    assert_eq!(a["labels"]["hosts"], "web3");
    wait_for("stats", || n.stats()[0].posts == 2).await;
    let s = &n.stats()[0];
    assert_eq!(
        (s.posts, s.alerts_sent, s.failed_attempts, s.dropped),
        (2, 2, 0, 0)
    );
    n.shutdown(WAIT).await;
}

#[tokio::test]
async fn firing_alerts_are_resent_and_changed_labels_resolve_the_old_ones() {
    let (listener, addr) = local().await;
    let mut rx = serve(listener, vec![]);
    let opts = NotifierOptions {
        resend_every: Duration::from_millis(200),
        ..fast()
    };
    let n = Notifiers::start(
        vec![Target::alertmanager(&format!("http://{addr}")).unwrap()],
        opts,
    );
    assert!(n.wants_firing());
    n.publish_firing(vec![alert(AlertState::Firing, &["web3"])]);
    n.notify(&[transition(
        AlertState::Pending,
        alert(AlertState::Firing, &["web3"]),
    )]);
    assert_eq!(next(&mut rx).await.body.as_array().unwrap().len(), 1);
    // Resent without any transition.
    let r = next(&mut rx).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["labels"]["hosts"], "web3");
    assert!(r.body[0].get("endsAt").is_none());

    // A second host drifts off while it fires: the old label set is resolved.
    n.publish_firing(vec![alert(AlertState::Firing, &["web2", "web3"])]);
    let r = loop {
        let r = next(&mut rx).await;
        if r.body.as_array().unwrap().len() == 2 {
            break r;
        }
    };
    assert_eq!(r.body[0]["labels"]["hosts"], "web3");
    assert!(r.body[0]["endsAt"].is_string());
    assert_eq!(r.body[1]["labels"]["hosts"], "web2,web3");
    assert!(r.body[1].get("endsAt").is_none());

    // Its resolution lost (say, dropped from a full queue): the next resend resolves it anyway.
    n.publish_firing(vec![]);
    let r = loop {
        let r = next(&mut rx).await;
        if r.body.as_array().is_some_and(|a| !a.is_empty()) {
            break r;
        }
    };
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["labels"]["hosts"], "web2,web3");
    assert!(r.body[0]["endsAt"].is_string());
    n.shutdown(WAIT).await;
}

#[tokio::test]
async fn a_notifier_that_is_down_is_retried_until_it_comes_up() {
    // A free port with nothing listening yet.
    let (listener, addr) = local().await;
    drop(listener);
    let n = Notifiers::start(
        vec![Target::alertmanager(&format!("http://{addr}")).unwrap()],
        fast(),
    );
    n.notify(&[transition(
        AlertState::Pending,
        alert(AlertState::Firing, &["web3"]),
    )]);
    wait_for("two failed attempts", || n.stats()[0].failed_attempts >= 2).await;
    // Queued meanwhile: delivered in the same retry.
    n.notify(&[transition(
        AlertState::Firing,
        alert(AlertState::Resolved, &["web3"]),
    )]);

    let listener = TcpListener::bind(addr).await.expect("rebind the port");
    let mut rx = serve(listener, vec![]);
    let r = next(&mut rx).await;
    // Coalesced: the latest word on the alert.
    assert_eq!(r.body.as_array().unwrap().len(), 1, "{}", r.body);
    assert!(r.body[0]["endsAt"].is_string());
    wait_for("stats", || n.stats()[0].posts == 1).await;
    assert_eq!(n.stats()[0].dropped, 0);
    n.shutdown(WAIT).await;
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let (listener, addr) = local().await;
    let mut rx = serve(listener, vec![503, 400]);
    let n = Notifiers::start(
        vec![Target::webhook(&format!("http://{addr}/hook")).unwrap()],
        fast(),
    );
    n.notify(&[transition(
        AlertState::Pending,
        alert(AlertState::Firing, &["web3"]),
    )]);
    let first = next(&mut rx).await;
    let retry = next(&mut rx).await;
    assert_eq!(first.body, retry.body, "the same alert, retried after 503");
    wait_for("the 400 to be counted", || n.stats()[0].rejected == 1).await;
    n.notify(&[transition(
        AlertState::Firing,
        alert(AlertState::Resolved, &["web3"]),
    )]);
    let r = next(&mut rx).await;
    assert_eq!(r.body["alerts"][0]["state"], "resolved");
    wait_for("stats", || n.stats()[0].posts == 1).await;
    let s = &n.stats()[0];
    assert_eq!((s.failed_attempts, s.rejected, s.posts), (1, 1, 1));
    n.shutdown(WAIT).await;
}

#[tokio::test]
async fn the_webhook_gets_proto_like_json() {
    let (listener, addr) = local().await;
    let mut rx = serve(listener, vec![]);
    let n = Notifiers::start(
        vec![Target::webhook(&format!("http://{addr}/hook")).unwrap()],
        fast(),
    );
    assert!(!n.wants_firing());
    n.notify(&[transition(
        AlertState::Pending,
        alert(AlertState::Firing, &["web3"]),
    )]);
    let r = next(&mut rx).await;
    assert_eq!(r.path, "/hook");
    assert_eq!(
        r.body,
        json!({"alerts": [{
            "rule": "prod-clock-skew",
            "kind": "clock_skew",
            "state": "firing",
            "previous_state": "pending",
            "cluster": "prod",
            "hosts": ["web3"],
            "summary": "clock skew of 250 ms between hosts in cluster prod",
            "since_ms": T0 + 10_000,
            "active_since_ms": T0,
            "labels": {"severity": "page"},
            "value": 250.25,
        }]})
    );
    n.shutdown(WAIT).await;
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_notify_never_waits() {
    let (listener, addr) = local().await;
    drop(listener);
    let opts = NotifierOptions {
        queue: 3,
        backoff_base: Duration::from_secs(60),
        backoff_cap: Duration::from_secs(60),
        ..fast()
    };
    let n = Notifiers::start(
        vec![Target::webhook(&format!("http://{addr}/")).unwrap()],
        opts,
    );
    let start = std::time::Instant::now();
    for i in 0..1000 {
        let mut a = alert(AlertState::Firing, &["web3"]);
        a.value = f64::from(i);
        n.notify(&[transition(AlertState::Pending, a)]);
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    wait_for("a failed attempt", || n.stats()[0].failed_attempts >= 1).await;
    let s = &n.stats()[0];
    // 1000 events, at most 3 queued plus at most 3 in the failed attempt.
    assert!(s.dropped >= 994, "{s:?}");
    assert!(s.queued <= 3, "{s:?}");
    // Shutting down with the target still down gives up within the deadline.
    let start = std::time::Instant::now();
    n.shutdown(Duration::from_secs(5)).await;
    assert!(start.elapsed() < Duration::from_secs(5));
}
