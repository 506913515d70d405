//! What agents say is printed escaped: a fake collector answers every query with text a
//! compromised agent could have sent (escape sequences that set the terminal's title, clear it,
//! recolour it; a C1 CSI; a carriage return; a right-to-left override) in every field that comes
//! from an agent: hostnames, kernels, labels, clusters, process names and command lines, memcg
//! paths, sar instances, NTP sources, OOM reports. No command prints a control character raw,
//! in any format, on stdout or stderr; JSON still carries the exact text.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::cli;
use fleet_proto::v1::query_server::{Query, QueryServer};
use fleet_proto::v1::{
    Alert, AlertList, AlertQuery, ClockStatus, CollectorStatus, CollectorStatusRequest,
    HostIdentity, HostInfo, ListHostsRequest, ListHostsResponse, NtpHistoryQuery, NtpHistoryResult,
    NtpHostHistory, NtpHostStatus, NtpMeasurement, NtpQuery, NtpServerStatus, NtpStatusList,
    OomEvent, OomKill, OomKillDetail, OomKillRequest, OomKills, OomProcess, OomQuery, SarBucket,
    SarBucketQuery, SarBucketResult, SarBucketSeries, SarQuery, SarResult, SarRow, TopOomQuery,
    TopOomResult, TopOomRow,
};
use fleetctl::execute;
use tonic::{Request, Response, Status};

/// 2026-11-25T22:10:03Z
const T0: i64 = 1_795_644_603_000;

/// Sets the terminal's title, clears the screen, turns text red (8-bit CSI), returns to the
/// start of the line, and reverses what follows.
const EVIL: &str = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\r\u{202e}";

/// `base` with [`EVIL`] inside.
fn evil(base: &str) -> String {
    format!("{base}{EVIL}x")
}

/// Whether `text` holds anything a terminal acts on, besides line feeds and tabs (which a quoted
/// CSV field keeps).
fn acts_on_terminal(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    })
}

fn identity(host_id: &str) -> HostIdentity {
    HostIdentity {
        host_id: host_id.into(),
        hostname: evil("web-1"),
        cluster: evil("prod"),
        labels: [(evil("role"), evil("web"))].into(),
        kernel: evil("6.1.0"),
        agent_version: evil("0.1.0"),
    }
}

fn process() -> OomProcess {
    OomProcess {
        pid: 77,
        comm: evil("hog"),
        cmdline: evil("/usr/bin/hog --serve\n--x\t"),
        uid: 1000,
        oom_score: 1900,
        oom_score_adj: 1000,
        rss_kb: 1024,
    }
}

fn kill() -> OomKill {
    let detail = serde_json::json!({
        "victim_pid": 77, "victim_comm": evil("hog"), "victim_uid": 1000,
        "trigger_comm": evil("trig"), "trigger_pid": 78,
        "constraint": evil("CONSTRAINT_MEMCG"), "global_oom": false,
        "oom_memcg": evil("/fleet"), "task_memcg": evil("/fleet/task"), "cpuset": evil("/"),
        "gfp_mask": "0xcc0", "gfp_flags": evil("GFP_KERNEL"),
        "mem_info": {evil("memcg_usage_kb"): 1},
        "tasks": [{"pid": 77, "rss": 10, "name": evil("hog"), evil("col"): 1}],
        "note": evil("note"),
        "raw": [evil("hog invoked oom-killer")],
    });
    OomKill {
        id: "1-19abc2e5d18-0".into(),
        host_id: "a1".into(),
        hostname: evil("web-1"),
        cluster: evil("prod"),
        event: Some(OomEvent {
            time_ms: T0,
            victim_pid: Some(77),
            victim_comm: Some(evil("hog")),
            trigger_comm: Some(evil("trig")),
            task_memcg: Some(evil("/fleet/task")),
            oom_memcg: Some(evil("/fleet")),
            source: "kmsg".into(),
            detail_json: detail.to_string(),
            ..OomEvent::default()
        }),
    }
}

fn sar_rows() -> Vec<SarRow> {
    (0..2)
        .map(|i| SarRow {
            host_id: "a1".into(),
            hostname: evil("web-1"),
            time_ms: T0 + i * 10_000,
            interval_ms: 10_000,
            instance: evil("eth0"),
            values: vec![1.0; 9],
        })
        .collect()
}

/// Three hosts with hostile names and sources, c3's unreachable.
fn ntp_hosts() -> Vec<NtpHostStatus> {
    let host = |id: &str, synced: bool| NtpHostStatus {
        host_id: id.into(),
        hostname: evil(id),
        cluster: evil("prod"),
        time_ms: T0,
        clock: Some(ClockStatus {
            servers: vec![NtpServerStatus {
                server: evil("ntp"),
                reachable: synced,
                synced,
                offset_ms: 1.0,
                reference_id: evil("ref"),
                error: if synced {
                    String::new()
                } else {
                    evil("timeout")
                },
                ..NtpServerStatus::default()
            }],
            kernel: None,
        }),
        collector_offset_ms: Some(0.5),
        collector_delay_ms: None,
    };
    vec![host("a1", true), host("b2", true), host("c3", false)]
}

struct Hostile;

#[tonic::async_trait]
impl Query for Hostile {
    async fn list_hosts(
        &self,
        _: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        // Two hosts with the same (hostile) hostname: the notice names it.
        let host = |id: &str| HostInfo {
            identity: Some(identity(id)),
            connected: true,
            last_seen_ms: T0,
            ..HostInfo::default()
        };
        Ok(Response::new(ListHostsResponse {
            hosts: vec![host("a1"), host("b2")],
        }))
    }

    async fn query_sar(&self, request: Request<SarQuery>) -> Result<Response<SarResult>, Status> {
        if request.get_ref().hosts.iter().any(|h| h == "refused") {
            // A collector's message quoting a hostile hostname.
            return Err(Status::invalid_argument(format!(
                "hostname {} is shared",
                evil("web")
            )));
        }
        Ok(Response::new(SarResult { rows: sar_rows() }))
    }

    async fn query_sar_buckets(
        &self,
        _: Request<SarBucketQuery>,
    ) -> Result<Response<SarBucketResult>, Status> {
        let buckets = sar_rows()
            .into_iter()
            .map(|r| SarBucket {
                time_ms: r.time_ms,
                count: vec![1; r.values.len()],
                min: r.values.clone(),
                max: r.values.clone(),
                mean: r.values,
            })
            .collect();
        Ok(Response::new(SarBucketResult {
            step_ms: 10_000,
            series: vec![SarBucketSeries {
                host_id: "a1".into(),
                hostname: evil("web-1"),
                instance: evil("eth0"),
                buckets,
            }],
        }))
    }

    async fn top_oom(&self, _: Request<TopOomQuery>) -> Result<Response<TopOomResult>, Status> {
        Ok(Response::new(TopOomResult {
            rows: vec![TopOomRow {
                host_id: "a1".into(),
                hostname: evil("web-1"),
                cluster: evil("prod"),
                time_ms: T0,
                process: Some(process()),
            }],
        }))
    }

    async fn list_oom_kills(&self, _: Request<OomQuery>) -> Result<Response<OomKills>, Status> {
        Ok(Response::new(OomKills {
            kills: vec![kill()],
        }))
    }

    async fn get_oom_kill(
        &self,
        _: Request<OomKillRequest>,
    ) -> Result<Response<OomKillDetail>, Status> {
        Ok(Response::new(OomKillDetail {
            kill: Some(kill()),
            top_oom_time_ms: T0 - 5_000,
            top_oom: vec![process()],
            ..OomKillDetail::default()
        }))
    }

    async fn list_ntp(&self, _: Request<NtpQuery>) -> Result<Response<NtpStatusList>, Status> {
        Ok(Response::new(NtpStatusList { hosts: ntp_hosts() }))
    }

    async fn ntp_history_buckets(
        &self,
        _: Request<fleet_proto::v1::NtpBucketQuery>,
    ) -> Result<Response<fleet_proto::v1::NtpBucketResult>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn ntp_history(
        &self,
        _: Request<NtpHistoryQuery>,
    ) -> Result<Response<NtpHistoryResult>, Status> {
        let hosts = ntp_hosts()
            .into_iter()
            .map(|h| NtpHostHistory {
                measurements: vec![NtpMeasurement {
                    time_ms: h.time_ms,
                    clock: h.clock,
                }],
                host_id: h.host_id,
                hostname: h.hostname,
                cluster: h.cluster,
            })
            .collect();
        Ok(Response::new(NtpHistoryResult {
            hosts,
            truncated: false,
        }))
    }

    async fn get_collector_status(
        &self,
        _: Request<CollectorStatusRequest>,
    ) -> Result<Response<CollectorStatus>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn list_alerts(&self, _: Request<AlertQuery>) -> Result<Response<AlertList>, Status> {
        Ok(Response::new(AlertList {
            alerts: vec![Alert {
                rule: "clock-skew".into(),
                kind: "clock_skew".into(),
                state: "firing".into(),
                cluster: evil("prod"),
                hosts: vec![evil("web-1"), evil("web-2")],
                summary: evil("clock offsets spread"),
                since_ms: T0,
                labels: [(evil("k"), evil("v"))].into(),
                ..Alert::default()
            }],
        }))
    }
}

async fn start() -> SocketAddr {
    common::serve(tonic::transport::Server::builder().add_service(QueryServer::new(Hostile))).await
}

#[tokio::test]
async fn no_command_prints_agent_text_raw_in_any_format() {
    let addr = start().await;
    let commands: [&[&str]; 9] = [
        &["hosts"],
        &["sar", "-n", "DEV", "--host", "a1", "--since", "1h"],
        &[
            "sar", "-n", "DEV", "--host", "a1", "--since", "1h", "--step", "10s",
        ],
        &["top-oom"],
        &["oom"],
        &["oom", "show", "1-19abc2e5d18-0"],
        &["ntp"],
        &["ntp", "--since", "1h"],
        &["alerts"],
    ];
    for command in commands {
        for format in ["table", "csv", "json"] {
            if command.starts_with(&["oom", "show"]) && format == "csv" {
                continue; // `oom show` has no CSV form
            }
            let args = [command, &["-o", format]].concat();
            let out = match execute(cli(addr, &args)).await {
                Ok(out) => out,
                Err(e) => panic!("fleetctl {args:?}: {e:#}"),
            };
            assert!(
                !acts_on_terminal(&out.stdout),
                "fleetctl {args:?} printed:\n{:?}",
                out.stdout
            );
            let notice = out.notice.unwrap_or_default();
            assert!(!acts_on_terminal(&notice), "{args:?}: {notice:?}");
            if format == "json" {
                // Exactly what the agent said, once parsed.
                let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                assert!(
                    serde_json::to_string(&value)
                        .unwrap()
                        .contains(r"\u001b]0;owned\u0007"),
                    "{args:?}: {value}"
                );
            } else {
                assert!(
                    out.stdout
                        .contains(r"\x1b]0;owned\x07\x1b[2J\x9b31m\x0d\u{202e}x"),
                    "fleetctl {args:?} does not show the text escaped:\n{}",
                    out.stdout
                );
            }
        }
    }
}

#[tokio::test]
async fn oom_show_escapes_the_reports_names_paths_and_tasks() {
    let addr = start().await;
    let out = execute(cli(addr, &["oom", "show", "1-19abc2e5d18-0"]))
        .await
        .unwrap();
    let escaped = |s: &str| format!(r"{s}\x1b]0;owned\x07\x1b[2J\x9b31m\x0d\u{{202e}}x");
    for (what, text) in [
        ("victim", format!("77 {}", escaped("hog"))),
        ("trigger", format!("78 {}", escaped("trig"))),
        ("memcg", format!("task_memcg {}", escaped("/fleet/task"))),
        (
            "host",
            format!("{} (a1), cluster {}", escaped("web-1"), escaped("prod")),
        ),
        ("task column", escaped("col")),
        ("note", escaped("note")),
    ] {
        assert!(
            out.stdout.contains(&text),
            "{what}: {text} missing from\n{}",
            out.stdout
        );
    }
}

fn fleetctl(addr: SocketAddr, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(["--insecure", "--collector", &format!("http://{addr}")])
        .args(args)
        .env_remove("FLEET_COLLECTOR")
        .output()
        .unwrap()
}

// Multi-threaded: the blocking wait on the child must not starve the fake server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_escapes_notices_and_the_collectors_messages() {
    let addr = start().await;
    // The notice of a shared hostname names it, escaped.
    let out = fleetctl(addr, &["hosts"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "fleetctl: hostname \"web-1\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\x0d\\u{202e}x\" is \
         reported by 2 hosts: a1, b2; select them with --host HOST_ID\n"
    );
    assert!(!acts_on_terminal(&String::from_utf8(out.stdout).unwrap()));
    // An error from the collector quoting agent text.
    let out = fleetctl(addr, &["sar", "-u", "--host", "refused"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!acts_on_terminal(&stderr), "{stderr:?}");
    assert!(
        stderr.starts_with(
            "fleetctl: QuerySar failed (InvalidArgument): hostname web\\x1b]0;owned\\x07"
        ),
        "{stderr}"
    );
}
