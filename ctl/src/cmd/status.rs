//! `fleetctl status`: the collector itself (`Query.GetCollectorStatus`).
//!
//! ```text
//! version                  0.1.0
//! started                  2026-11-26T02:40:00Z (3h12m ago)
//! storage                  failing since 2026-11-26T05:50:10Z (2m 2s ago): IO error: No space left on device: ...
//! connected agents         212 of at most 50000 (230 hosts known)
//! transport                mutual TLS
//! refused TLS handshakes   4
//! refused unauthenticated  0
//! refused permission       2
//! refused agent streams    1
//! refused other cluster    5
//! closed on reload         6
//! policies in force        3
//! ```
//!
//! The storage line says whether the collector's store takes writes: `ok`, `failing since T`
//! (a write failed, a full disk: nothing is acknowledged, the agents keep their data) or
//! `read-only since T` (the database is open for reading only), with the latest error; `unknown`
//! from a collector too old to say.
//!
//! JSON keys: `version`, `started`, `storage` (`state`: `ok`, `failing`, `read-only` or
//! `unknown`; `since`, `error`: null when ok), `connected_agents`, `max_agents`, `known_hosts`,
//! `tls`, `mutual_tls`, `refused` (`tls_handshakes`, `unauthenticated`, `permission_denied`,
//! `agent_streams`, `cluster`: agent hellos for a cluster their certificate is not bound to,
//! `connections_closed`: open connections closed on SIGHUP because their certificate was no
//! longer accepted), `policies`. CSV: one header line and one row with the same keys flattened
//! (the storage keys last).

use anyhow::Result;
use chrono::Utc;
use clap::Args;
#[cfg(test)]
use fleet_proto::v1::StorageStatus;
use fleet_proto::v1::{storage_status, CollectorStatus, CollectorStatusRequest};
use serde::Serialize;

use super::{Context, Run};
use crate::output::{csv_line, escape, json, rfc3339, Breaks, OutputFormat};
use crate::Output;

/// `fleetctl status`: no arguments of its own.
#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {}

impl Run for StatusArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        let collector = ctx.connect().await?;
        let status = collector
            .query("GetCollectorStatus", async |c| {
                c.get_collector_status(CollectorStatusRequest {}).await
            })
            .await?;
        Ok(Output::print(render(
            &status,
            ctx.format,
            Utc::now().timestamp_millis(),
        )))
    }
}

#[derive(Serialize)]
struct Refused {
    tls_handshakes: u64,
    unauthenticated: u64,
    permission_denied: u64,
    agent_streams: u64,
    cluster: u64,
    connections_closed: u64,
}

#[derive(Serialize)]
struct Storage {
    state: &'static str,
    since: Option<String>,
    error: Option<String>,
}

impl Storage {
    fn of(s: &CollectorStatus) -> Storage {
        use storage_status::State;
        let Some(st) = &s.storage else {
            return Storage {
                state: "unknown",
                since: None,
                error: None,
            };
        };
        let state = match State::try_from(st.state) {
            Ok(State::Ok) => "ok",
            Ok(State::Failing) => "failing",
            Ok(State::ReadOnly) => "read-only",
            Ok(State::Unspecified) | Err(_) => "unknown",
        };
        Storage {
            state,
            since: (st.since_ms > 0).then(|| rfc3339(st.since_ms)).flatten(),
            error: (!st.error.is_empty()).then(|| st.error.clone()),
        }
    }
}

#[derive(Serialize)]
struct StatusView {
    version: String,
    started: Option<String>,
    storage: Storage,
    connected_agents: u32,
    max_agents: u32,
    known_hosts: u32,
    tls: bool,
    mutual_tls: bool,
    refused: Refused,
    policies: u32,
}

/// The CSV header of `fleetctl status`.
pub const STATUS_CSV_KEYS: [&str; 17] = [
    "version",
    "started",
    "connected_agents",
    "max_agents",
    "known_hosts",
    "tls",
    "mutual_tls",
    "refused_tls_handshakes",
    "refused_unauthenticated",
    "refused_permission_denied",
    "refused_agent_streams",
    "refused_cluster",
    "refused_connections_closed",
    "policies",
    "storage_state",
    "storage_since",
    "storage_error",
];

/// Renders the collector's status; `now_ms` for the table's "ago".
pub fn render(s: &CollectorStatus, format: OutputFormat, now_ms: i64) -> String {
    let v = StatusView {
        version: s.version.clone(),
        started: rfc3339(s.started_ms),
        storage: Storage::of(s),
        connected_agents: s.connected_agents,
        max_agents: s.max_agents,
        known_hosts: s.known_hosts,
        tls: s.tls,
        mutual_tls: s.mutual_tls,
        refused: Refused {
            tls_handshakes: s.tls_handshakes_refused,
            unauthenticated: s.unauthenticated,
            permission_denied: s.permission_denied,
            agent_streams: s.streams_refused,
            cluster: s.cluster_refused,
            connections_closed: s.connections_closed,
        },
        policies: s.policies,
    };
    match format {
        OutputFormat::Json => json(&v),
        OutputFormat::Csv => {
            let mut out = csv_line(STATUS_CSV_KEYS);
            out.push_str(&csv_line([
                v.version.clone(),
                v.started.clone().unwrap_or_default(),
                v.connected_agents.to_string(),
                v.max_agents.to_string(),
                v.known_hosts.to_string(),
                v.tls.to_string(),
                v.mutual_tls.to_string(),
                v.refused.tls_handshakes.to_string(),
                v.refused.unauthenticated.to_string(),
                v.refused.permission_denied.to_string(),
                v.refused.agent_streams.to_string(),
                v.refused.cluster.to_string(),
                v.refused.connections_closed.to_string(),
                v.policies.to_string(),
                v.storage.state.to_string(),
                v.storage.since.clone().unwrap_or_default(),
                v.storage.error.clone().unwrap_or_default(),
            ]));
            out
        }
        OutputFormat::Table => {
            let ago = |ms: i64| {
                let secs = ((now_ms - ms).max(0) / 1000) as u64;
                humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
            };
            let transport = match (v.tls, v.mutual_tls) {
                (true, true) => "mutual TLS",
                (true, false) => "TLS (no client certificates)",
                _ => "plaintext (--insecure)",
            };
            let rows = [
                ("version", v.version.clone()),
                (
                    "started",
                    match &v.started {
                        Some(t) => format!("{t} ({} ago)", ago(s.started_ms)),
                        None => "-".into(),
                    },
                ),
                ("storage", storage_line(&v.storage, s, &ago)),
                (
                    "connected agents",
                    format!(
                        "{} of at most {} ({} hosts known)",
                        v.connected_agents, v.max_agents, v.known_hosts
                    ),
                ),
                ("transport", transport.to_string()),
                (
                    "refused TLS handshakes",
                    v.refused.tls_handshakes.to_string(),
                ),
                (
                    "refused unauthenticated",
                    v.refused.unauthenticated.to_string(),
                ),
                (
                    "refused permission",
                    v.refused.permission_denied.to_string(),
                ),
                ("refused agent streams", v.refused.agent_streams.to_string()),
                ("refused other cluster", v.refused.cluster.to_string()),
                ("closed on reload", v.refused.connections_closed.to_string()),
                ("policies in force", v.policies.to_string()),
            ];
            let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            rows.iter()
                .map(|(k, val)| format!("{k:<width$}  {val}\n"))
                .collect()
        }
    }
}

/// The table's storage line: `ok`, or the state, since when and the latest error.
fn storage_line(st: &Storage, s: &CollectorStatus, ago: &dyn Fn(i64) -> String) -> String {
    let mut line = st.state.to_string();
    if let (Some(since), Some(storage)) = (&st.since, &s.storage) {
        line.push_str(&format!(" since {since} ({} ago)", ago(storage.since_ms)));
    }
    if let Some(error) = &st.error {
        line.push_str(": ");
        line.push_str(&escape(error, Breaks::Space));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::T0;
    use crate::golden;

    fn status() -> CollectorStatus {
        CollectorStatus {
            version: "0.1.0".into(),
            started_ms: T0,
            connected_agents: 212,
            max_agents: 50_000,
            known_hosts: 230,
            tls: true,
            mutual_tls: true,
            tls_handshakes_refused: 4,
            unauthenticated: 0,
            permission_denied: 2,
            streams_refused: 1,
            policies: 3,
            cluster_refused: 5,
            connections_closed: 6,
            storage: Some(StorageStatus {
                state: storage_status::State::Ok as i32,
                since_ms: 0,
                error: String::new(),
            }),
            ..CollectorStatus::default()
        }
    }

    #[test]
    fn table_json_and_csv() {
        let t = render(&status(), OutputFormat::Table, T0 + 90_000);
        golden::check("status-table.txt", &t);
        assert!(
            t.contains("started                  2026-11-25T22:10:03Z (1m 30s ago)"),
            "{t}"
        );
        assert!(
            t.contains("connected agents         212 of at most 50000 (230 hosts known)"),
            "{t}"
        );
        assert!(t.contains("transport                mutual TLS"), "{t}");
        assert!(t.contains("refused permission       2"), "{t}");
        assert!(t.contains("refused other cluster    5"), "{t}");
        assert!(t.contains("closed on reload         6"), "{t}");
        let text = render(&status(), OutputFormat::Json, 0);
        golden::check("status.json", &text);
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(j["refused"]["tls_handshakes"], 4);
        assert_eq!(j["refused"]["agent_streams"], 1);
        assert_eq!(j["refused"]["cluster"], 5);
        assert_eq!(j["refused"]["connections_closed"], 6);
        assert_eq!(j["mutual_tls"], true);
        assert_eq!(j["started"], "2026-11-25T22:10:03Z");
        let c = render(&status(), OutputFormat::Csv, 0);
        golden::check("status.csv", &c);
        let lines: Vec<&str> = c.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("version,started,connected_agents"));
        assert!(lines[1].ends_with(",4,0,2,1,5,6,3,ok,,"), "{c}");
        assert!(t.contains("storage                  ok\n"), "{t}");
        assert_eq!(j["storage"]["state"], "ok");
        assert!(j["storage"]["since"].is_null() && j["storage"]["error"].is_null());
    }

    #[test]
    fn storage_failing_read_only_and_unknown() {
        let mut s = status();
        s.storage = Some(StorageStatus {
            state: storage_status::State::Failing as i32,
            since_ms: T0 + 30_000,
            error:
                "IO error: No space left on device: While appending to file: /d/000020.log\u{1b}[2J"
                    .into(),
        });
        let t = render(&s, OutputFormat::Table, T0 + 90_000);
        assert!(
            t.contains(
                "storage                  failing since 2026-11-25T22:10:33Z (1m ago): IO error: \
                 No space left on device: While appending to file: /d/000020.log\\x1b[2J\n"
            ),
            "{t}"
        );
        let j: serde_json::Value =
            serde_json::from_str(&render(&s, OutputFormat::Json, 0)).unwrap();
        assert_eq!(j["storage"]["state"], "failing");
        assert_eq!(j["storage"]["since"], "2026-11-25T22:10:33Z");
        assert!(j["storage"]["error"]
            .as_str()
            .unwrap()
            .starts_with("IO error: No space left on device"));
        let c = render(&s, OutputFormat::Csv, 0);
        assert!(
            c.lines()
                .nth(1)
                .unwrap()
                .contains(",3,failing,2026-11-25T22:10:33Z,IO error:"),
            "{c}"
        );

        s.storage.as_mut().unwrap().state = storage_status::State::ReadOnly as i32;
        let t = render(&s, OutputFormat::Table, T0 + 90_000);
        assert!(
            t.contains("storage                  read-only since "),
            "{t}"
        );

        s.storage = None;
        let t = render(&s, OutputFormat::Table, T0 + 90_000);
        assert!(t.contains("storage                  unknown\n"), "{t}");
        let j: serde_json::Value =
            serde_json::from_str(&render(&s, OutputFormat::Json, 0)).unwrap();
        assert_eq!(j["storage"]["state"], "unknown");
    }
}
