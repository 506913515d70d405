//! fleetctl against an in-process fake `Query` service on 127.0.0.1:0 (plaintext): the real client
//! path from `execute`/the binary through tonic to rendering. The real collector's own tests live
//! in the workspace's tests/ crate.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use clap::Parser;
use fleet_proto::v1::query_server::{Query, QueryServer};
use fleet_proto::v1::{
    Activity, HostIdentity, HostInfo, ListHostsRequest, ListHostsResponse, SarQuery, SarResult,
    SarRow,
};
use fleetctl::{execute, Cli};
use tonic::{Request, Response, Status};

/// 2026-11-25T22:10:03Z
const T0: i64 = 1_795_644_603_000;

#[derive(Default)]
struct Fake {
    queries: Mutex<Vec<SarQuery>>,
    list_requests: Mutex<Vec<ListHostsRequest>>,
}

fn host(id: &str, name: &str) -> HostInfo {
    HostInfo {
        identity: Some(HostIdentity {
            host_id: id.into(),
            hostname: name.into(),
            cluster: "prod".into(),
            labels: [("role".to_owned(), "web".to_owned())].into(),
            kernel: "6.1.0-18-amd64".into(),
            agent_version: "0.1.0".into(),
        }),
        connected: true,
        first_seen_ms: T0 - 3_600_000,
        last_seen_ms: T0,
        dropped_samples: 3,
        last_seq: 9,
    }
}

struct FakeSvc(Arc<Fake>);

#[tonic::async_trait]
impl Query for FakeSvc {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        self.0
            .list_requests
            .lock()
            .unwrap()
            .push(request.into_inner());
        Ok(Response::new(ListHostsResponse {
            hosts: vec![host("a1", "web-1")],
        }))
    }

    async fn query_sar(&self, request: Request<SarQuery>) -> Result<Response<SarResult>, Status> {
        let query = request.into_inner();
        self.0.queries.lock().unwrap().push(query.clone());
        if query.hosts.iter().any(|h| h == "missing") {
            return Err(Status::not_found("no host matches missing"));
        }
        let row = |time_ms, instance: &str, user| SarRow {
            host_id: "a1".into(),
            hostname: "web-1".into(),
            time_ms,
            interval_ms: 10_000,
            instance: instance.into(),
            values: vec![user, 0.0, 1.0, 0.0, 0.0, 99.0 - user],
        };
        let mut rows = Vec::new();
        for i in 0..query.hosts.len().max(1) as i64 * 3 {
            let t = T0 + i * 10_000;
            rows.extend([row(t, "all", 2.0), row(t, "0", 3.0), row(t, "1", 1.0)]);
        }
        Ok(Response::new(SarResult { rows }))
    }
}

async fn start() -> (SocketAddr, Arc<Fake>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(Fake::default());
    let service = QueryServer::new(FakeSvc(fake.clone()));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (addr, fake)
}

fn cli(addr: SocketAddr, args: &[&str]) -> Cli {
    let url = format!("http://{addr}");
    let all = ["fleetctl", "--insecure", "--collector", url.as_str()];
    Cli::try_parse_from(all.iter().chain(args)).unwrap()
}

#[tokio::test]
async fn hosts_json() {
    let (addr, fake) = start().await;
    let out = execute(cli(addr, &["hosts", "-o", "json", "--cluster", "prod"]))
        .await
        .unwrap();
    let hosts: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(hosts[0]["host_id"], "a1");
    assert_eq!(hosts[0]["labels"]["role"], "web");
    assert_eq!(hosts[0]["last_seen"], "2026-11-25T22:10:03Z");
    assert_eq!(hosts[0]["dropped_samples"], 3);
    assert_eq!(fake.list_requests.lock().unwrap()[0].cluster, "prod");
}

#[tokio::test]
async fn sar_table_asks_for_hosts_and_shows_only_all() {
    let (addr, fake) = start().await;
    let out = execute(cli(
        addr,
        &["sar", "-u", "--host", "web-1", "--since", "1h"],
    ))
    .await
    .unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "Linux 6.1.0-18-amd64 (web-1)  a1  cluster prod  2026-11-25 UTC"
    );
    assert!(
        lines[2].starts_with("22:09:53          CPU     %user"),
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 3 + 3 + 1, "{}", out.stdout);
    assert!(
        lines[3..].iter().all(|l| l.contains(" all ")),
        "{}",
        out.stdout
    );
    assert_eq!(out.notice, None);
    let query = fake.queries.lock().unwrap()[0].clone();
    assert_eq!(query.activity, Activity::Cpu as i32);
    assert_eq!(query.hosts, ["web-1"]);
    assert_eq!(query.until_ms, 0);
    assert!(query.since_ms > 0);
    assert_eq!(fake.list_requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn sar_csv_every_cpu_without_list_hosts() {
    let (addr, fake) = start().await;
    let out = execute(cli(
        addr,
        &["sar", "-u", "-P", "ALL", "--cluster", "prod", "-o", "csv"],
    ))
    .await
    .unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "host_id,hostname,time,CPU,%user,%nice,%system,%iowait,%steal,%idle"
    );
    assert_eq!(
        lines[1],
        "a1,web-1,2026-11-25T22:10:03.000Z,all,2,0,1,0,0,97"
    );
    assert_eq!(lines[2], "a1,web-1,2026-11-25T22:10:03.000Z,0,3,0,1,0,0,96");
    assert_eq!(lines.len(), 1 + 9);
    assert!(fake.list_requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn grpc_status_is_reported_with_its_message() {
    let (addr, _fake) = start().await;
    let err = execute(cli(addr, &["sar", "-r", "--host", "missing", "-o", "json"]))
        .await
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "QuerySar failed (NotFound): no host matches missing"
    );
}

fn fleetctl(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetctl"));
    cmd.args(args).env_remove("FLEET_COLLECTOR");
    cmd
}

// Multi-threaded: the blocking wait on the child must not starve the fake server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exit_statuses() {
    let (addr, _fake) = start().await;
    let url = format!("http://{addr}");

    let ok = fleetctl(&["--insecure", "--collector", &url, "hosts"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("HOST_ID "));

    let plaintext = fleetctl(&["--collector", &url, "hosts"]).output().unwrap();
    assert_eq!(plaintext.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&plaintext.stderr);
    assert!(
        stderr.contains("plaintext http:// needs --insecure"),
        "{stderr}"
    );

    let usage = fleetctl(&["sar", "-u", "-r", "--host", "a"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));

    // Nobody listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let down = fleetctl(&["--insecure", "--collector", &dead, "hosts"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.starts_with(&format!("fleetctl: cannot reach collector at {dead}: ")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stdout_is_success() {
    let (addr, _fake) = start().await;
    let url = format!("http://{addr}");
    let mut child = fleetctl(&["--insecure", "--collector", &url, "hosts", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before fleetctl has its answer to write.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(stderr, "");
}
