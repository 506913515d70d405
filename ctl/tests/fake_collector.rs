//! fleetctl against an in-process fake `Query` service on 127.0.0.1:0 (plaintext): the real client
//! path from `execute`/the binary through tonic to rendering. The real collector's own tests live
//! in the workspace's tests/ crate.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::cli;
use fleet_proto::v1::query_server::{Query, QueryServer};
use fleet_proto::v1::{
    Activity, Alert, AlertList, AlertQuery, ClockStatus, HostIdentity, HostInfo, KernelClock,
    ListHostsRequest, ListHostsResponse, NtpHistoryQuery, NtpHistoryResult, NtpHostHistory,
    NtpHostStatus, NtpMeasurement, NtpQuery, NtpServerStatus, NtpStatusList, OomEvent, OomKill,
    OomKillDetail, OomKillRequest, OomKills, OomKind, OomProcess, OomQuery, SarBucket,
    SarBucketQuery, SarBucketResult, SarBucketSeries, SarQuery, SarResult, SarRow, TopOomQuery,
    TopOomResult, TopOomRow,
};
use fleetctl::execute;
use tonic::{Request, Response, Status};

/// 2026-11-25T22:10:03Z
const T0: i64 = 1_795_644_603_000;

/// The id of the one kill the fake knows in full.
const KILL_ID: &str = "1-19abc2e5d18-0";

/// What `fleet-agent parse-kmsg` prints for a memory-cgroup kill (the keys of a real 6.18 one),
/// with a second task and fewer raw lines.
const DETAIL: &str = r#"{"kmsg_seq":344,"monotonic_s":11517.902634,"time":"Wed Nov 25 22:10:03 2026",
    "victim_pid":4242,"victim_comm":"leaker","victim_uid":1000,"total_vm_kb":300000,
    "anon_rss_kb":262144,"file_rss_kb":1024,"shmem_rss_kb":0,"pgtables_kb":600,"oom_score_adj":0,
    "selected_pid":4242,"selected_comm":"leaker","constraint":"CONSTRAINT_MEMCG","cpuset":"/",
    "global_oom":false,"oom_memcg":"/fleet-test","task_memcg":"/fleet-test",
    "trigger_comm":"leaker","trigger_pid":4242,"gfp_mask":"0xcc0","gfp_flags":"GFP_KERNEL",
    "order":0,"trigger_oom_score_adj":0,
    "mem_info":{"memcg_usage_kb":262144,"memcg_limit_kb":262144,"memcg_failcnt":0},
    "tasks":[{"pid":4241,"uid":1000,"tgid":4241,"total_vm":1000,"rss":200,"oom_score_adj":0,"name":"sh"},
             {"pid":4242,"uid":1000,"tgid":4242,"total_vm":75000,"rss":65792,"oom_score_adj":0,"name":"leaker"}],
    "raw":["leaker invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
           "Memory cgroup out of memory: Killed process 4242 (leaker) total-vm:300000kB, anon-rss:262144kB, file-rss:1024kB, shmem-rss:0kB, UID:1000 pgtables:600kB oom_score_adj:0"]}"#;

#[derive(Default)]
struct Fake {
    queries: Mutex<Vec<SarQuery>>,
    bucket_queries: Mutex<Vec<SarBucketQuery>>,
    list_requests: Mutex<Vec<ListHostsRequest>>,
    top_oom_queries: Mutex<Vec<TopOomQuery>>,
    oom_queries: Mutex<Vec<OomQuery>>,
    kill_requests: Mutex<Vec<OomKillRequest>>,
    ntp_queries: Mutex<Vec<NtpQuery>>,
    ntp_history_queries: Mutex<Vec<NtpHistoryQuery>>,
    alert_queries: Mutex<Vec<AlertQuery>>,
    /// Answer `QuerySarBuckets` with Unimplemented (a collector from before it), and `QuerySar`
    /// with 2,000 rows of CPU "all" a second apart from the range's start.
    old_collector: AtomicBool,
}

fn process(pid: i64, comm: &str, score: i64, adj: i64) -> OomProcess {
    OomProcess {
        pid,
        comm: comm.into(),
        cmdline: format!("/usr/bin/{comm} --serve"),
        uid: 1000,
        oom_score: score,
        oom_score_adj: adj,
        rss_kb: 1024 * score as u64,
    }
}

fn kills() -> Vec<OomKill> {
    let kill = |id: &str, time_ms, source: &str, detail: &str| OomKill {
        id: id.into(),
        host_id: "a1".into(),
        hostname: "web-1".into(),
        cluster: "prod".into(),
        event: Some(OomEvent {
            time_ms,
            source: source.into(),
            partial: source == "vmstat",
            detail_json: detail.into(),
            ..OomEvent::default()
        }),
    };
    vec![
        kill(KILL_ID, T0 + 250, "kmsg", DETAIL),
        kill(
            "1-19abc2d0000-2",
            T0 - 3_600_000,
            "vmstat",
            r#"{"source":"vmstat","oom_kill":1,"note":"counted by /proc/vmstat oom_kill only"}"#,
        ),
    ]
}

/// A memory.oom.group member that was already exiting: an OOM event that killed nothing.
fn skipped_exiting() -> OomKill {
    OomKill {
        id: "1-19abc2e5d18-3".into(),
        host_id: "a1".into(),
        hostname: "web-1".into(),
        cluster: "kinds".into(),
        event: Some(OomEvent {
            time_ms: T0 + 200,
            source: "kmsg".into(),
            partial: true,
            kind: OomKind::NoKill.into(),
            detail_json: r#"{"kind":"no_kill","selected_pid":3804877,"selected_comm":"stress","task_memcg":"/fleet-test","partial":true,"raw":["Memory cgroup out of memory: OOM victim 3804877 (stress) is already exiting. Skip killing the task"]}"#.into(),
            ..OomEvent::default()
        }),
    }
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

fn ntp_source(server: &str, stratum: u32, offset_ms: f64, delay_ms: f64) -> NtpServerStatus {
    NtpServerStatus {
        server: server.into(),
        reachable: true,
        offset_ms,
        delay_ms,
        stratum,
        leap: 0,
        reference_id: "10.0.0.254".into(),
        root_delay_ms: 1.0,
        root_dispersion_ms: 2.0,
        precision: -23,
        poll: 6,
        synced: true,
        error: String::new(),
    }
}

/// Cluster prod as the end-to-end test of the issue has it: three hosts, web3 pointed at a
/// server 250 ms off; web1 with a second, unreachable source. And db-9 in dev, with no status yet.
fn ntp_hosts() -> Vec<NtpHostStatus> {
    let host = |id: &str, name: &str, cluster: &str, servers| NtpHostStatus {
        host_id: id.into(),
        hostname: name.into(),
        cluster: cluster.into(),
        time_ms: T0,
        clock: Some(ClockStatus {
            servers,
            kernel: Some(KernelClock {
                synced: true,
                est_error_ms: 0.5,
                max_error_ms: 8.0,
                freq_ppm: 1.5,
                chronyd: false,
            }),
        }),
        collector_offset_ms: Some(0.5),
        collector_delay_ms: Some(0.2),
    };
    let timeout = NtpServerStatus {
        reachable: false,
        synced: false,
        error: "timeout".into(),
        ..ntp_source("127.0.0.1:1123", 0, 0.0, 0.0)
    };
    vec![
        host(
            "a1",
            "web1",
            "prod",
            vec![ntp_source("127.0.0.1:123", 2, -0.2, 0.3), timeout],
        ),
        host(
            "b2",
            "web2",
            "prod",
            vec![ntp_source("127.0.0.1:123", 2, 0.1, 0.4)],
        ),
        host(
            "c3",
            "web3",
            "prod",
            vec![ntp_source("127.0.0.1:1250", 1, 250.2, 0.5)],
        ),
        NtpHostStatus {
            host_id: "d4".into(),
            hostname: "db-9".into(),
            cluster: "dev".into(),
            ..NtpHostStatus::default()
        },
    ]
}

fn alerts() -> Vec<Alert> {
    let alert =
        |rule: &str, kind: &str, state: &str, since_ms, hosts: &[&str], summary: &str| Alert {
            rule: rule.into(),
            kind: kind.into(),
            state: state.into(),
            cluster: "prod".into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            summary: summary.into(),
            since_ms,
            active_since_ms: since_ms - 10_000,
            labels: [
                ("rule".to_owned(), rule.to_owned()),
                ("severity".to_owned(), "page".to_owned()),
            ]
            .into(),
            value: 250.4,
        };
    vec![
        alert(
            "prod-silent",
            "host_silent",
            "resolved",
            T0 - 600_000,
            &["web2"],
            "web2 sent nothing for 1m",
        ),
        alert(
            "prod-clock-skew",
            "clock_skew",
            "firing",
            T0,
            &["web1", "web3"],
            "clock offsets in cluster prod spread 250.4 ms (web1 -0.2 ms, web3 +250.2 ms)",
        ),
    ]
}

/// Notes a request in `seen` and returns its message.
fn record<T: Clone>(seen: &Mutex<Vec<T>>, request: Request<T>) -> T {
    let message = request.into_inner();
    seen.lock().unwrap().push(message.clone());
    message
}

struct FakeSvc(Arc<Fake>);

#[tonic::async_trait]
impl Query for FakeSvc {
    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        record(&self.0.list_requests, request);
        Ok(Response::new(ListHostsResponse {
            hosts: vec![host("a1", "web-1")],
        }))
    }

    async fn query_sar(&self, request: Request<SarQuery>) -> Result<Response<SarResult>, Status> {
        let query = record(&self.0.queries, request);
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
        if self.0.old_collector.load(Ordering::Relaxed) {
            rows.extend((0..2_000).map(|i| {
                let mut r = row(query.since_ms + i * 1_000, "all", 2.0);
                r.interval_ms = 1_000;
                r
            }));
            return Ok(Response::new(SarResult { rows }));
        }
        for i in 0..query.hosts.len().max(1) as i64 * 3 {
            let t = T0 + i * 10_000;
            rows.extend([row(t, "all", 2.0), row(t, "0", 3.0), row(t, "1", 1.0)]);
        }
        Ok(Response::new(SarResult { rows }))
    }

    async fn query_sar_buckets(
        &self,
        request: Request<SarBucketQuery>,
    ) -> Result<Response<SarBucketResult>, Status> {
        // CPU "all" and "0" of web-1 over two buckets of the step asked for.
        let query = record(&self.0.bucket_queries, request);
        if self.0.old_collector.load(Ordering::Relaxed) {
            return Err(Status::unimplemented("Query.QuerySarBuckets"));
        }
        let step = query.step_ms;
        let start = (T0 - 2 * step).div_euclid(step) * step;
        let bucket = |i: i64, user: f64| SarBucket {
            time_ms: start + i * step,
            count: vec![6; 6],
            min: vec![user - 1.0, 0.0, 1.0, 0.0, 0.0, 97.0 - user],
            max: vec![user + 50.0, 0.0, 1.0, 0.0, 0.0, 99.0 - user],
            mean: vec![user, 0.0, 1.0, 0.0, 0.0, 99.0 - user],
        };
        let series = |instance: &str, user: f64| SarBucketSeries {
            host_id: "a1".into(),
            hostname: "web-1".into(),
            instance: instance.into(),
            buckets: vec![bucket(0, user), bucket(1, user + 1.0)],
        };
        Ok(Response::new(SarBucketResult {
            step_ms: step,
            series: vec![series("0", 3.0), series("all", 2.0)],
        }))
    }

    async fn top_oom(
        &self,
        request: Request<TopOomQuery>,
    ) -> Result<Response<TopOomResult>, Status> {
        let query = record(&self.0.top_oom_queries, request);
        if query.hosts.iter().any(|h| h == "missing") {
            return Err(Status::not_found("no host matches missing"));
        }
        let row = |host_id: &str, hostname: &str, p| TopOomRow {
            host_id: host_id.into(),
            hostname: hostname.into(),
            cluster: "prod".into(),
            time_ms: T0,
            process: Some(p),
        };
        let mut rows = vec![
            row("a1", "web-1", process(77, "hog", 1900, 1000)),
            row("b2", "db-1", process(42, "postgres", 300, 0)),
            row("a1", "web-1", process(1, "systemd", 0, 0)),
        ];
        rows.truncate(query.limit as usize);
        Ok(Response::new(TopOomResult { rows }))
    }

    async fn list_oom_kills(
        &self,
        request: Request<OomQuery>,
    ) -> Result<Response<OomKills>, Status> {
        let query = record(&self.0.oom_queries, request);
        let mut kills = kills();
        // The cluster `kinds` also has a report that killed nothing.
        if query.cluster == "kinds" {
            kills.insert(1, skipped_exiting());
        }
        kills.truncate(query.limit as usize);
        Ok(Response::new(OomKills { kills }))
    }

    async fn get_oom_kill(
        &self,
        request: Request<OomKillRequest>,
    ) -> Result<Response<OomKillDetail>, Status> {
        let request = record(&self.0.kill_requests, request);
        if request.id != KILL_ID {
            // The real collector's words (collector/src/server.rs `get_oom_kill`).
            return Err(Status::not_found(format!(
                "no OOM kill with id {:?}",
                request.id
            )));
        }
        let row = |time_ms, values: Vec<f64>| SarRow {
            host_id: "a1".into(),
            hostname: "web-1".into(),
            time_ms,
            interval_ms: 10_000,
            instance: "-".into(),
            values,
        };
        let memory = [
            1000.0,
            900.0,
            7_000_000.0,
            99.5,
            0.0,
            1.0,
            2.0,
            3.0,
            4.0,
            5.0,
            6.0,
        ];
        Ok(Response::new(OomKillDetail {
            kill: kills().into_iter().next(),
            memory: vec![row(T0 - 10_000, memory.to_vec()), row(T0, memory.to_vec())],
            swap: vec![row(T0, vec![0.0, 0.0, 0.0, 0.0, 0.0])],
            swapping: vec![row(T0, vec![0.0, 0.0])],
            paging: Vec::new(),
            top_oom_time_ms: T0 - 5_000,
            top_oom: vec![process(1, "systemd", 0, 0), process(4242, "leaker", 800, 0)],
        }))
    }

    async fn list_ntp(
        &self,
        request: Request<NtpQuery>,
    ) -> Result<Response<NtpStatusList>, Status> {
        let query = record(&self.0.ntp_queries, request);
        let hosts = ntp_hosts()
            .into_iter()
            .filter(|h| query.cluster.is_empty() || h.cluster == query.cluster)
            .filter(|h| {
                query.hosts.is_empty()
                    || query
                        .hosts
                        .iter()
                        .any(|q| *q == h.host_id || *q == h.hostname)
            })
            .collect();
        Ok(Response::new(NtpStatusList { hosts }))
    }

    async fn ntp_history_buckets(
        &self,
        _: Request<fleet_proto::v1::NtpBucketQuery>,
    ) -> Result<Response<fleet_proto::v1::NtpBucketResult>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn ntp_history(
        &self,
        request: Request<NtpHistoryQuery>,
    ) -> Result<Response<NtpHistoryResult>, Status> {
        // Each host of the cluster with a status: two measurements 16 s apart, the second its
        // status; cluster `many` is truncated.
        let query = record(&self.0.ntp_history_queries, request);
        let hosts = ntp_hosts()
            .into_iter()
            .filter(|h| h.clock.is_some())
            .filter(|h| {
                query.cluster.is_empty() || query.cluster == "many" || h.cluster == query.cluster
            })
            .map(|h| {
                let measurement = |time_ms| NtpMeasurement {
                    time_ms,
                    clock: h.clock.clone(),
                };
                NtpHostHistory {
                    measurements: vec![measurement(T0 - 16_000), measurement(T0)],
                    host_id: h.host_id,
                    hostname: h.hostname,
                    cluster: h.cluster,
                }
            })
            .collect();
        Ok(Response::new(NtpHistoryResult {
            hosts,
            truncated: query.cluster == "many",
        }))
    }

    async fn get_collector_status(
        &self,
        _request: Request<fleet_proto::v1::CollectorStatusRequest>,
    ) -> Result<Response<fleet_proto::v1::CollectorStatus>, Status> {
        Ok(Response::new(fleet_proto::v1::CollectorStatus {
            version: "0.1.0".into(),
            started_ms: T0,
            connected_agents: 2,
            max_agents: 50_000,
            known_hosts: 3,
            tls: false,
            mutual_tls: false,
            tls_handshakes_refused: 0,
            unauthenticated: 0,
            permission_denied: 0,
            streams_refused: 1,
            policies: 1,
            cluster_refused: 0,
            connections_closed: 0,
            storage: Some(fleet_proto::v1::StorageStatus {
                state: fleet_proto::v1::storage_status::State::Ok as i32,
                ..Default::default()
            }),
            ..fleet_proto::v1::CollectorStatus::default()
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<AlertQuery>,
    ) -> Result<Response<AlertList>, Status> {
        let query = record(&self.0.alert_queries, request);
        let alerts = alerts()
            .into_iter()
            .filter(|a| query.cluster.is_empty() || a.cluster == query.cluster)
            .filter(|a| query.state.is_empty() || a.state == query.state)
            .collect();
        Ok(Response::new(AlertList { alerts }))
    }
}

async fn start() -> (SocketAddr, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let service = QueryServer::new(FakeSvc(fake.clone()));
    let addr = common::serve(tonic::transport::Server::builder().add_service(service)).await;
    (addr, fake)
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
async fn sar_step_asks_for_buckets_and_shows_their_means() {
    let (addr, fake) = start().await;
    let args = [
        "sar", "-u", "--host", "web-1", "--since", "1h", "--step", "5m",
    ];
    let out = execute(cli(addr, &args)).await.unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0], "web-1 (a1)  cluster prod  2026-11-25 UTC  mean of 5m buckets",
        "{}",
        out.stdout
    );
    // Two buckets of "all" (not "0": no -P ALL) and their average.
    assert_eq!(
        lines[2..],
        [
            "22:00:00          CPU     %user     %nice   %system   %iowait    %steal     %idle",
            "22:00:00          all      2.00      0.00      1.00      0.00      0.00     97.00",
            "22:05:00          all      3.00      0.00      1.00      0.00      0.00     96.00",
            "Average:          all      2.50      0.00      1.00      0.00      0.00     96.50",
        ]
    );
    let query = fake.bucket_queries.lock().unwrap()[0].clone();
    assert_eq!(query.step_ms, 300_000);
    assert_eq!((query.activity, query.until_ms), (Activity::Cpu as i32, 0));
    assert_eq!(query.hosts, ["web-1"]);
    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    assert!((query.since_ms - hour_ago).abs() < 60_000, "{query:?}");
    // Not the raw query.
    assert!(fake.queries.lock().unwrap().is_empty());

    let out = execute(cli(
        addr,
        &[
            "sar", "-u", "-P", "ALL", "--host", "a1", "--step", "1m", "-o", "json",
        ],
    ))
    .await
    .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let cpus: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["CPU"].as_str().unwrap())
        .collect();
    assert_eq!(cpus, ["all", "0", "all", "0"]);
    assert_eq!(
        rows[0]["%user"],
        serde_json::json!({"min": 1.0, "max": 52.0, "mean": 2.0, "count": 6})
    );
    assert_eq!(rows[0]["step_ms"], 60_000);
}

#[tokio::test]
async fn sar_plot_asks_for_a_bucket_per_pixel_and_draws_their_bands() {
    let (addr, fake) = start().await;
    let args = [
        "sar", "-u", "--host", "web-1", "--since", "1h", "--plot", "-",
    ];
    let out = execute(cli(addr, &args)).await.unwrap();
    // An hour over 900 pixels: 4 s buckets, and no raw rows (the buckets hold 6 samples each).
    let queries = fake.bucket_queries.lock().unwrap().clone();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(queries[0].step_ms, 4_000);
    assert_eq!(queries[0].until_ms - queries[0].since_ms, 3_600_000);
    assert!(fake.queries.lock().unwrap().is_empty());
    let svg = &out.stdout;
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
    // "all" (no -P ALL): two buckets of %user, with its min-max band.
    assert!(svg.contains("data-label=\"%user web-1 all\""), "{svg}");
    assert!(svg.contains("class=\"envelope\""), "{svg}");
    assert!(!svg.contains("%user web-1 0"), "{svg}");
}

#[tokio::test]
async fn sar_plot_of_a_collector_without_buckets_downsamples_its_rows() {
    let (addr, fake) = start().await;
    fake.old_collector.store(true, Ordering::Relaxed);
    let args = [
        "sar", "-u", "--host", "web-1", "--since", "1h", "--plot", "-",
    ];
    let out = execute(cli(addr, &args)).await.unwrap();
    // The buckets were asked for, refused as unimplemented, then every row of the same range.
    let buckets = fake.bucket_queries.lock().unwrap().clone();
    let queries = fake.queries.lock().unwrap().clone();
    assert_eq!(buckets.len(), 1, "{buckets:?}");
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(
        (queries[0].since_ms, queries[0].until_ms),
        (buckets[0].since_ms, buckets[0].until_ms)
    );
    // 2,000 rows into 4 s buckets here: 500 points (501 when the range's start cuts one),
    // each with its min-max band.
    let svg = &out.stdout;
    let user = svg
        .split("<path class=\"series\"")
        .find(|p| p.contains("data-label=\"%user web-1 all\""))
        .unwrap_or_else(|| panic!("no %user line: {svg}"));
    let points: usize = user
        .split("data-points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{user}"));
    assert!((500..=501).contains(&points), "{points}");
    assert!(svg.contains("class=\"envelope\""), "{svg}");
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
async fn sar_several_activities_one_query_each_and_one_list_hosts() {
    let (addr, fake) = start().await;
    let out = execute(cli(
        addr,
        &["sar", "-r", "-u", "--host", "web-1", "--since", "1h"],
    ))
    .await
    .unwrap();
    let mut asked: Vec<i32> = fake
        .queries
        .lock()
        .unwrap()
        .iter()
        .map(|q| q.activity)
        .collect();
    asked.sort_unstable();
    assert_eq!(asked, [Activity::Cpu as i32, Activity::Memory as i32]);
    assert_eq!(fake.list_requests.lock().unwrap().len(), 1);
    // One header line for the host, then -u's table, then -r's, as sar prints them.
    let text = &out.stdout;
    assert_eq!(text.matches("Linux ").count(), 1, "{text}");
    let (cpu, memory) = (text.find("%user").unwrap(), text.find("kbmemfree").unwrap());
    assert!(cpu < memory, "{text}");
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 3, "{text}");
    assert!(
        blocks[1].starts_with("22:09:53          CPU     %user"),
        "{text}"
    );
    assert!(blocks[1].contains("\nAverage:          all "), "{text}");
    assert!(blocks[2].starts_with("22:09:53    kbmemfree"), "{text}");
    assert!(blocks[2].contains("\nAverage: "), "{text}");
    assert_eq!(out.notice, None);

    // JSON: one array, each row naming its activity; no ListHosts.
    let out = execute(cli(
        addr,
        &["sar", "-u", "-r", "--host", "web-1", "-o", "json"],
    ))
    .await
    .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let activities: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["activity"].as_str().unwrap())
        .collect();
    assert_eq!(
        activities,
        [
            "cpu", "cpu", "cpu", "memory", "memory", "memory", "memory", "memory", "memory",
            "memory", "memory", "memory"
        ]
    );
    assert_eq!(fake.list_requests.lock().unwrap().len(), 1);
    assert_eq!(fake.queries.lock().unwrap().len(), 4);
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

    let unknown = fleetctl(&["--insecure", "--collector", &url, "oom", "show", "nope"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr),
        "fleetctl: GetOomKill failed (NotFound): no OOM kill with id \"nope\"\n"
    );
    assert!(unknown.stdout.is_empty());

    // A usage error (no activity) exits 2, before any collector setting is checked.
    let usage = fleetctl(&["sar", "--host", "a"]).output().unwrap();
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

#[tokio::test]
async fn top_oom_table_json_and_csv() {
    let (addr, fake) = start().await;
    let out = execute(cli(addr, &["top-oom", "--cluster", "prod", "--limit", "2"]))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "\
HOST    PID   COMM       OOM_SCORE    ADJ      RSS   CMDLINE
web-1    77   hog             1900   1000     1.9G   /usr/bin/hog --serve
db-1     42   postgres         300      0   300.0M   /usr/bin/postgres --serve
"
    );
    assert_eq!(out.notice, None);
    let query = fake.top_oom_queries.lock().unwrap()[0].clone();
    assert_eq!(
        query,
        TopOomQuery {
            hosts: Vec::new(),
            cluster: "prod".into(),
            limit: 2,
        }
    );

    let out = execute(cli(addr, &["top-oom", "--host", "web-1", "-o", "json"]))
        .await
        .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let mut keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "cluster",
            "cmdline",
            "comm",
            "host_id",
            "hostname",
            "oom_score",
            "oom_score_adj",
            "pid",
            "rss_kb",
            "time",
            "uid"
        ]
    );
    assert_eq!(rows[0]["pid"], 77);
    assert_eq!(rows[0]["oom_score_adj"], 1000);
    assert_eq!(rows[0]["time"], "2026-11-25T22:10:03.000Z");
    let query = fake.top_oom_queries.lock().unwrap()[1].clone();
    assert_eq!(query.hosts, ["web-1"]);
    assert_eq!(query.limit, 10);

    let out = execute(cli(addr, &["top-oom", "-o", "csv"])).await.unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "host_id,hostname,cluster,time,pid,comm,cmdline,uid,oom_score,oom_score_adj,rss_kb"
    );
    assert_eq!(
        lines[1],
        "a1,web-1,prod,2026-11-25T22:10:03.000Z,77,hog,/usr/bin/hog --serve,1000,1900,1000,1945600"
    );
    assert_eq!(lines.len(), 4);
}

#[tokio::test]
async fn top_oom_unknown_host_is_the_collectors_error() {
    let (addr, _fake) = start().await;
    let err = execute(cli(addr, &["top-oom", "--host", "missing"]))
        .await
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "TopOom failed (NotFound): no host matches missing"
    );
}

#[tokio::test]
async fn oom_lists_the_last_day_by_default() {
    let (addr, fake) = start().await;
    let before = chrono::Utc::now().timestamp_millis();
    let out = execute(cli(addr, &["oom"])).await.unwrap();
    assert_eq!(
        out.stdout,
        "\
TIME                   HOST    VICTIM                   MEMCG         ANON_RSS   TRIGGER       ID
2026-11-25T22:10:03Z   web-1   4242 leaker              /fleet-test     256.0M   4242 leaker   1-19abc2e5d18-0
2026-11-25T21:10:03Z   web-1   unknown (vmstat count)   -                    -   -             1-19abc2d0000-2
"
    );
    assert_eq!(out.notice, None);
    let query = fake.oom_queries.lock().unwrap()[0].clone();
    assert!(query.hosts.is_empty() && query.cluster.is_empty());
    assert_eq!(query.until_ms, 0);
    assert_eq!(query.limit, 1000);
    let day = 86_400_000;
    assert!(
        (before - day - 5_000..=before - day + 5_000).contains(&query.since_ms),
        "{query:?}"
    );
}

#[tokio::test]
async fn oom_marks_a_report_that_killed_nothing_and_does_not_count_it() {
    let (addr, _fake) = start().await;
    let out = execute(cli(addr, &["oom", "--cluster", "kinds"]))
        .await
        .unwrap();
    assert_eq!(
        out.stdout,
        "\
TIME                   HOST    VICTIM                            MEMCG         ANON_RSS   TRIGGER       ID
2026-11-25T22:10:03Z   web-1   4242 leaker                       /fleet-test     256.0M   4242 leaker   1-19abc2e5d18-0
2026-11-25T22:10:03Z   web-1   none: 3804877 stress not killed   /fleet-test          -   -             1-19abc2e5d18-3
2026-11-25T21:10:03Z   web-1   unknown (vmstat count)            -                    -   -             1-19abc2d0000-2
"
    );
    assert_eq!(
        out.notice.as_deref(),
        Some(
            "1 of the 3 rows killed nothing (kind panic or no_kill): listed, not counted as kills"
        )
    );
    let out = execute(cli(addr, &["oom", "--cluster", "kinds", "-o", "json"]))
        .await
        .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let kinds: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["kill", "no_kill", "kill"]);
    assert_eq!(out.notice, None);
}

#[tokio::test]
async fn oom_json_rows_and_a_cut_listing() {
    let (addr, fake) = start().await;
    let out = execute(cli(
        addr,
        &[
            "oom",
            "--host",
            "web-1",
            "--cluster",
            "prod",
            "--since",
            "2026-11-25T00:00:00Z",
            "--until",
            "2026-11-26T00:00:00Z",
            "-o",
            "json",
        ],
    ))
    .await
    .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let kill = rows[0].as_object().unwrap();
    for key in [
        "id",
        "host_id",
        "hostname",
        "cluster",
        "time",
        "source",
        "victim_pid",
        "victim_comm",
        "victim_uid",
        "total_vm_kb",
        "anon_rss_kb",
        "file_rss_kb",
        "shmem_rss_kb",
        "pgtables_kb",
        "oom_score_adj",
        "constraint",
        "global_oom",
        "oom_memcg",
        "task_memcg",
        "trigger_comm",
        "trigger_pid",
        "gfp_mask",
        "order",
        "tasks_count",
        // Keys of the real parser beyond the issue's list come through as well.
        "selected_pid",
        "selected_comm",
        "cpuset",
        "gfp_flags",
        "trigger_oom_score_adj",
        "mem_info",
        "monotonic_s",
        "kmsg_seq",
        // Issue 12: every row says what it counts as.
        "kind",
    ] {
        assert!(kill.contains_key(key), "{key}: {kill:?}");
    }
    assert_eq!(kill.len(), 33, "{kill:?}");
    assert_eq!(kill["kind"], "kill");
    assert_eq!(kill["mem_info"]["memcg_limit_kb"], 262_144);
    assert_eq!(kill["id"], "1-19abc2e5d18-0");
    assert_eq!(kill["time"], "2026-11-25T22:10:03.250Z");
    assert_eq!(kill["source"], "kmsg");
    assert_eq!(kill["victim_pid"], 4242);
    assert_eq!(kill["task_memcg"], "/fleet-test");
    assert_eq!(kill["tasks_count"], 2);
    assert_eq!(rows[1]["source"], "vmstat");
    assert_eq!(out.notice, None);
    let query = fake.oom_queries.lock().unwrap()[0].clone();
    assert_eq!(
        query,
        OomQuery {
            hosts: vec!["web-1".into()],
            cluster: "prod".into(),
            since_ms: 1_795_564_800_000,
            until_ms: 1_795_651_200_000,
            limit: 1000,
        }
    );

    let out = execute(cli(addr, &["oom", "--limit", "1", "-o", "csv"]))
        .await
        .unwrap();
    assert_eq!(out.stdout.lines().count(), 2);
    assert!(out
        .stdout
        .starts_with("id,host_id,hostname,cluster,time,source,kind,victim_pid,"));
    assert_eq!(
        out.notice.as_deref(),
        Some(
            "showing the newest 1 kills only; raise --limit or narrow --since/--until for the rest"
        )
    );
}

#[tokio::test]
async fn oom_show_table_has_the_evidence() {
    let (addr, fake) = start().await;
    let out = execute(cli(addr, &["oom", "show", KILL_ID])).await.unwrap();
    let text = &out.stdout;
    assert!(
        text.starts_with("OOM kill 1-19abc2e5d18-0\nHost:         web-1 (a1), cluster prod\n"),
        "{text}"
    );
    for line in [
        "Victim:       4242 leaker, uid 1000, oom_score_adj 0\n",
        "Trigger:      4242 leaker, gfp_mask 0xcc0(GFP_KERNEL), order 0, oom_score_adj 0\n",
        "Constraint:   CONSTRAINT_MEMCG, memory cgroup OOM, cpuset /\n",
        "Memcg:        task_memcg /fleet-test, oom_memcg /fleet-test\n",
        "Mem-Info:     memcg_failcnt 0, memcg_limit_kb 262144, memcg_usage_kb 262144\n",
        "Source:       kmsg\n",
        // The task table, largest rss first.
        "\n pid    uid   tgid   total_vm     rss   oom_score_adj   name\n",
        "4242   1000   4242      75000   65792               0   leaker\n",
        "Memory before the kill (sar -r):\n22:09:43    kbmemfree",
        "Swap space before the kill (sar -S):\n",
        "Swapping before the kill (sar -W):\n",
        "Paging before the kill (sar -B): no samples\n",
        "Top-oom ranking at 2026-11-25T22:09:58.000Z, 5s before the kill:\n",
        concat!(
            " PID   COMM      OOM_SCORE   ADJ      RSS   CMDLINE\n",
            "4242   leaker          800     0   800.0M   /usr/bin/leaker --serve\n",
            "   1   systemd           0     0       0K   /usr/bin/systemd --serve\n",
        ),
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert!(
        text.find("4242   1000") < text.find("4241   1000"),
        "{text}"
    );
    assert_eq!(
        fake.kill_requests.lock().unwrap()[0],
        OomKillRequest {
            id: KILL_ID.into(),
            before_ms: 600_000
        }
    );
}

#[tokio::test]
async fn oom_show_json() {
    let (addr, fake) = start().await;
    let out = execute(cli(
        addr,
        &["oom", "show", KILL_ID, "--before", "30m", "-o", "json"],
    ))
    .await
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "kill",
            "memory",
            "paging",
            "swap",
            "swapping",
            "top_oom",
            "top_oom_time"
        ]
    );
    assert_eq!(value["kill"]["id"], KILL_ID);
    assert_eq!(value["kill"]["tasks"][1]["name"], "leaker");
    assert_eq!(value["kill"]["raw"].as_array().unwrap().len(), 2);
    assert_eq!(value["kill"]["tasks_count"], 2);
    assert_eq!(value["memory"][1]["kbmemfree"], 1000);
    assert_eq!(value["memory"][1]["time"], "2026-11-25T22:10:03.000Z");
    assert_eq!(value["swap"][0]["%swpused"], 0.0);
    assert_eq!(value["swapping"][0]["pswpin/s"], 0.0);
    assert_eq!(value["paging"], serde_json::json!([]));
    assert_eq!(value["top_oom"][0]["pid"], 4242);
    assert_eq!(value["top_oom"][0]["host_id"], "a1");
    assert_eq!(value["top_oom_time"], "2026-11-25T22:09:58.000Z");
    assert_eq!(fake.kill_requests.lock().unwrap()[0].before_ms, 1_800_000);
}

#[tokio::test]
async fn ntp_table_shows_each_source_and_the_clusters_spread() {
    let (addr, fake) = start().await;
    let out = execute(cli(addr, &["ntp"])).await.unwrap();
    let want = "\
CLUSTER   HOST   SERVER           REACH   SYNCED   STRATUM   LEAP   OFFSET_MS   DELAY_MS   COLLECTOR_MS   KERNEL   TIME                   ERROR
dev       db-9   -                -       no             -      -           -          -              -   -        -                      -
prod      web1   127.0.0.1:123    yes     yes            2      0      -0.200      0.300         +0.500   yes      2026-11-25T22:10:03Z   -
prod      web1   127.0.0.1:1123   no      no             -      -           -          -         +0.500   yes      2026-11-25T22:10:03Z   timeout
prod      web2   127.0.0.1:123    yes     yes            2      0      +0.100      0.400         +0.500   yes      2026-11-25T22:10:03Z   -
prod      web3   127.0.0.1:1250   yes     yes            1      0    +250.200      0.500         +0.500   yes      2026-11-25T22:10:03Z   -

cluster dev: 1 host, offset spread n/a (needs two hosts with a synced source); no synced source: db-9
cluster prod: 3 hosts, offset spread 250.4 ms (web1 -0.2 ms … web3 +250.2 ms)
";
    assert_eq!(out.stdout, want, "\n{}", out.stdout);
    assert_eq!(out.notice, None);
    assert_eq!(
        fake.ntp_queries.lock().unwrap()[0],
        NtpQuery {
            hosts: Vec::new(),
            cluster: String::new()
        }
    );

    let out = execute(cli(addr, &["ntp", "--cluster", "nowhere"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.notice.as_deref(),
        Some("no clock status stored for the selected hosts (agents send one with their samples)")
    );
}

#[tokio::test]
async fn ntp_since_shows_the_history_of_each_source() {
    let (addr, fake) = start().await;
    let out = execute(cli(addr, &["ntp", "--since", "1h", "--cluster", "prod"]))
        .await
        .unwrap();
    let want = "\
TIME                   CLUSTER   HOST   SERVER           SYNCED   STRATUM   LEAP   OFFSET_MS   DELAY_MS   ERROR
2026-11-25T22:09:47Z   prod      web1   127.0.0.1:123    yes            2      0      -0.200      0.300   -
2026-11-25T22:09:47Z   prod      web1   127.0.0.1:1123   no             -      -           -          -   timeout
2026-11-25T22:10:03Z   prod      web1   127.0.0.1:123    yes            2      0      -0.200      0.300   -
2026-11-25T22:10:03Z   prod      web1   127.0.0.1:1123   no             -      -           -          -   timeout
2026-11-25T22:09:47Z   prod      web2   127.0.0.1:123    yes            2      0      +0.100      0.400   -
2026-11-25T22:10:03Z   prod      web2   127.0.0.1:123    yes            2      0      +0.100      0.400   -
2026-11-25T22:09:47Z   prod      web3   127.0.0.1:1250   yes            1      0    +250.200      0.500   -
2026-11-25T22:10:03Z   prod      web3   127.0.0.1:1250   yes            1      0    +250.200      0.500   -
";
    assert_eq!(out.stdout, want, "\n{}", out.stdout);
    assert_eq!(out.notice, None);
    let query = fake.ntp_history_queries.lock().unwrap()[0].clone();
    assert_eq!(query.cluster, "prod");
    assert_eq!((query.until_ms, query.limit), (0, 0));
    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    assert!((query.since_ms - hour_ago).abs() < 60_000, "{query:?}");
    // The latest status is still `fleetctl ntp` without --since.
    assert!(fake.ntp_queries.lock().unwrap().is_empty());

    let out = execute(cli(
        addr,
        &["ntp", "--since", "1h", "--host", "web3", "-o", "json"],
    ))
    .await
    .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // The fake answers for every host: web1's two sources, web2, web3, twice each.
    assert_eq!(rows.as_array().unwrap().len(), 8, "{}", out.stdout);
    assert_eq!(rows[7]["hostname"], "web3");
    assert_eq!(rows[7]["offset_ms"], 250.2);
    assert_eq!(rows[7]["time"], "2026-11-25T22:10:03.000Z");
    assert_eq!(rows[7]["collector_offset_ms"], serde_json::Value::Null);
    assert_eq!(fake.ntp_history_queries.lock().unwrap()[1].hosts, ["web3"]);

    let out = execute(cli(addr, &["ntp", "--since", "1h", "--cluster", "many"]))
        .await
        .unwrap();
    assert_eq!(
        out.notice.as_deref(),
        Some("only the oldest 6 measurements are shown; narrow --since/--until or the hosts")
    );
    let out = execute(cli(addr, &["ntp", "--since", "1h", "--cluster", "dev"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, "");
    assert!(
        out.notice
            .as_deref()
            .is_some_and(|n| n.starts_with("no NTP measurements stored from ")),
        "{:?}",
        out.notice
    );
    let err = execute(cli(addr, &["ntp", "--since", "1h", "--until", "2h"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not before --until"), "{err:#}");
}

#[tokio::test]
async fn ntp_json_rows_per_host_and_source() {
    let (addr, fake) = start().await;
    let out = execute(cli(
        addr,
        &[
            "ntp",
            "--cluster",
            "prod",
            "--host",
            "web1",
            "--host",
            "c3",
            "-o",
            "json",
        ],
    ))
    .await
    .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    let mut keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "cluster",
            "collector_offset_ms",
            "delay_ms",
            "error",
            "host_id",
            "hostname",
            "kernel_synced",
            "leap",
            "offset_ms",
            "reachable",
            "server",
            "stratum",
            "synced",
            "time"
        ]
    );
    assert_eq!(rows[0]["host_id"], "a1");
    assert_eq!(rows[0]["server"], "127.0.0.1:123");
    assert_eq!(rows[0]["offset_ms"], -0.2);
    assert_eq!(rows[0]["synced"], true);
    assert_eq!(rows[0]["time"], "2026-11-25T22:10:03.000Z");
    assert_eq!(rows[1]["server"], "127.0.0.1:1123");
    assert_eq!(rows[1]["synced"], false);
    assert_eq!(rows[1]["error"], "timeout");
    assert_eq!(rows[1]["offset_ms"], serde_json::Value::Null);
    assert_eq!(rows[2]["hostname"], "web3");
    assert_eq!(rows[2]["offset_ms"], 250.2);
    assert_eq!(rows[2]["stratum"], 1);
    assert_eq!(rows[2]["collector_offset_ms"], 0.5);
    assert_eq!(
        fake.ntp_queries.lock().unwrap()[0],
        NtpQuery {
            hosts: vec!["web1".into(), "c3".into()],
            cluster: "prod".into()
        }
    );

    // A host without a status: one row, server null.
    let out = execute(cli(addr, &["ntp", "--cluster", "dev", "-o", "json"]))
        .await
        .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["server"], serde_json::Value::Null);
    assert_eq!(rows[0]["synced"], false);
    assert_eq!(out.notice, None);
}

#[tokio::test]
async fn alerts_json_and_table() {
    let (addr, fake) = start().await;
    let out = execute(cli(
        addr,
        &[
            "alerts",
            "--cluster",
            "prod",
            "--state",
            "firing",
            "-o",
            "json",
        ],
    ))
    .await
    .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{
            "rule": "prod-clock-skew",
            "kind": "clock_skew",
            "state": "firing",
            "cluster": "prod",
            "hosts": ["web1", "web3"],
            "summary": "clock offsets in cluster prod spread 250.4 ms (web1 -0.2 ms, web3 +250.2 ms)",
            "since": "2026-11-25T22:10:03.000Z",
            "active_since": "2026-11-25T22:09:53.000Z",
            "value": 250.4,
            "labels": {"rule": "prod-clock-skew", "severity": "page"}
        }])
    );
    assert_eq!(
        fake.alert_queries.lock().unwrap()[0],
        AlertQuery {
            cluster: "prod".into(),
            state: "firing".into()
        }
    );

    let out = execute(cli(addr, &["alerts"])).await.unwrap();
    assert_eq!(
        out.stdout,
        "\
STATE      RULE              CLUSTER   HOSTS        SINCE                  SUMMARY
firing     prod-clock-skew   prod      web1, web3   2026-11-25T22:10:03Z   clock offsets in cluster prod spread 250.4 ms (web1 -0.2 ms, web3 +250.2 ms)
resolved   prod-silent       prod      web2         2026-11-25T22:00:03Z   web2 sent nothing for 1m
"
    );
    assert_eq!(out.notice, None);
    assert_eq!(fake.alert_queries.lock().unwrap()[1], AlertQuery::default());

    let out = execute(cli(
        addr,
        &["alerts", "--state", "pending", "--cluster", "prod"],
    ))
    .await
    .unwrap();
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.notice.as_deref(),
        Some("no pending alerts in cluster prod")
    );
    let out = execute(cli(addr, &["alerts", "--state", "pending", "-o", "json"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, "[]\n");
    assert_eq!(out.notice, None);
}

#[test]
fn binary_rejects_an_unknown_alert_state() {
    let out = fleetctl(&["alerts", "--state", "active"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'active' for '--state <STATE>'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[possible values: pending, firing, resolved]"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

const GOOD_RULES: &str = r#"
[[rule]]
name = "prod-clock-skew"
kind = "clock_skew"
cluster = "prod"          # optional; every cluster when absent
threshold_ms = 100
for = "5s"

[[rule]]
name = "silent"
kind = "host_silent"
for = "1m"

[[rule]]
name = "memory"
kind = "sar"
column = "%memused"
op = ">"
value = 95
for = "5m"
"#;

const BAD_RULES: &str = r#"
[[rule]]
name = "prod-clock-skew"
kind = "clock_skew"
threshold_ms = "100"
for = "5s"
"#;

// No collector anywhere: `rules check` works offline, and the default https:// collector without
// a CA does not stop it.
#[test]
fn binary_rules_check_a_good_and_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&good, GOOD_RULES).unwrap();
    std::fs::write(&bad, BAD_RULES).unwrap();
    let (good, bad) = (good.display().to_string(), bad.display().to_string());

    let out = fleetctl(&["rules", "check", &good]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{good}: 3 rules OK
  prod-clock-skew   clock_skew    prod           for 5s
  silent            host_silent   all clusters   for 1m
  memory            sar           all clusters   for 5m
"
        )
    );
    assert!(out.stderr.is_empty(), "{out:?}");

    let out = fleetctl(&["rules", "check", &good, "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "file": good,
            "ok": true,
            "rules": [
                {"name": "prod-clock-skew", "kind": "clock_skew", "cluster": "prod", "for": "5s"},
                {"name": "silent", "kind": "host_silent", "cluster": null, "for": "1m"},
                {"name": "memory", "kind": "sar", "cluster": null, "for": "5m"}
            ]
        })
    );

    let out = fleetctl(&["rules", "check", &bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "fleetctl: {bad}: rule \"prod-clock-skew\": threshold_ms: "
        )),
        "{stderr}"
    );

    let out = fleetctl(&["rules", "check", &bad, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["file"], bad.as_str());
    let error = value["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("{bad}: rule \"prod-clock-skew\": threshold_ms: ")),
        "{error}"
    );

    let missing = dir.path().join("missing.toml").display().to_string();
    let out = fleetctl(&["rules", "check", &missing]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("fleetctl: cannot read rules file {missing}: ")),
        "{stderr}"
    );
}

#[tokio::test]
async fn collector_status_json_and_table() {
    let (addr, _fake) = start().await;
    let out = execute(cli(addr, &["status", "-o", "json"])).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["connected_agents"], 2);
    assert_eq!(v["refused"]["agent_streams"], 1);
    assert_eq!(v["tls"], false);
    let out = execute(cli(addr, &["status"])).await.unwrap();
    assert!(
        out.stdout
            .contains("transport                plaintext (--insecure)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("2 of at most 50000 (3 hosts known)"),
        "{}",
        out.stdout
    );
}

/// `fleetctl ui` on the fake: its address, and the child (killed when dropped).
struct Console(std::process::Child, String);

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn console(addr: SocketAddr) -> Console {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(["--insecure", "--collector", &format!("http://{addr}")])
        .args(["ui", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ui = line
        .trim()
        .strip_prefix("serving on http://")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    Console(child, ui)
}

/// A plain GET (no gzip): status and body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, mut body) = text.split_once("\r\n\r\n").unwrap();
    let mut out = String::new();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        while let Some((size, rest)) = body.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&rest[..n]);
            body = &rest[n + 2..];
        }
    } else {
        out.push_str(body);
    }
    (head[9..12].parse().unwrap(), out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_on_an_older_collector_falls_back_or_says_so() {
    let (addr, fake) = start().await;
    fake.old_collector.store(true, Ordering::Relaxed);
    let pages = tokio::task::spawn_blocking(move || {
        let ui = console(addr);
        [
            "/hosts/a1?since=1h",
            "/ntp?since=2026-11-25T21:00:00Z&until=2026-11-25T23:00:00Z",
            "/policies",
        ]
        .map(|path| http_get(&ui.1, path))
    })
    .await
    .unwrap();
    let [(host_status, host), (ntp_status, ntp), (policies_status, policies)] = pages;

    // The host page: no buckets (Unimplemented), so every row, bucketed by the console: CPU's
    // 2,000 rows a second apart in 4 s buckets, each with its min-max band.
    assert_eq!(host_status, 200, "{host}");
    assert!(!fake.bucket_queries.lock().unwrap().is_empty());
    assert!(!fake.queries.lock().unwrap().is_empty());
    let user = host
        .split("<path class=\"series\"")
        .find(|p| p.contains("data-label=\"%user web-1"))
        .expect("a %user line");
    let points: usize = user
        .split("data-points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next()?.parse().ok())
        .expect("its points");
    assert!((500..=501).contains(&points), "{points}");
    assert!(host.contains("class=\"envelope\""));

    // /ntp: no NTP buckets (Unimplemented), so the raw history, drawn.
    assert_eq!(ntp_status, 200, "{ntp}");
    assert_eq!(fake.ntp_history_queries.lock().unwrap().len(), 1);
    assert!(ntp.contains("data-activity=\"ntp-offset\""), "{ntp}");

    // /policies: the fake serves no Policies service and there is nothing older to ask: a 501
    // page that says why, not a bare gateway error.
    assert_eq!(policies_status, 501, "{policies}");
    assert!(
        policies.contains("Not offered by this collector"),
        "{policies}"
    );
    assert!(policies.contains("older than this fleetctl"), "{policies}");
}
