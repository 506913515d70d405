//! `fleetctl ntp --since T [--until T] [--cluster C] [--host H]...`: every NTP measurement the
//! collector stored for the selected hosts over a time range (`Query.NtpHistory`), oldest first
//! per host. Without `--since`, `fleetctl ntp` shows the latest status ([`super::ntp`]).
//!
//! One row per (host, measurement, time source). JSON and CSV rows are those of `fleetctl ntp`
//! (keys [`super::ntp::NTP_KEYS`]; `time` is when the agent measured; `collector_offset_ms`
//! is `null`: the collector keeps no history of its own probes). The table:
//!
//! ```text
//! TIME                   CLUSTER   HOST   SERVER         SYNCED   STRATUM   LEAP   OFFSET_MS   DELAY_MS   ERROR
//! 2026-11-25T22:10:03Z   prod      web1   10.0.0.1:123   yes            2      0      -0.200      0.400   -
//! ```

use anyhow::Result;
use chrono::Utc;
use fleet_proto::v1::{NtpHistoryQuery, NtpHostHistory, NtpHostStatus, NtpServerStatus};

use super::ntp::{self, source_synced, NtpArgs};
use super::Context;
use crate::output::{
    dash, header, host_name, printable, show_time, show_until, table, time_cell, OutputFormat,
};
use crate::timearg::{self, TimeArg};
use crate::Output;

/// Runs `fleetctl ntp --since`.
pub(super) async fn run(args: NtpArgs, since: TimeArg, ctx: &Context) -> Result<Output> {
    let (since, until) = timearg::range(since, args.until, Utc::now())?;
    let query = NtpHistoryQuery {
        hosts: args.hosts,
        cluster: args.cluster.unwrap_or_default(),
        since_ms: since.timestamp_millis(),
        // 0 lets the collector use its own now, so clocks need not agree.
        until_ms: until.map_or(0, |t| t.timestamp_millis()),
        limit: 0,
    };
    let collector = ctx.connect().await?;
    let result = collector
        .query("NtpHistory", async |c| c.ntp_history(query).await)
        .await?;
    let shown: usize = result.hosts.iter().map(|h| h.measurements.len()).sum();
    let notice = if result.truncated {
        Some(format!(
            "only the oldest {shown} measurements are shown; narrow --since/--until or the hosts"
        ))
    } else {
        (shown == 0 && ctx.format == OutputFormat::Table).then(|| {
            format!(
                "no NTP measurements stored from {} to {}",
                show_time(since),
                show_until(until)
            )
        })
    };
    Ok(Output::print(render(&result.hosts, ctx.format)).with_notice(notice))
}

/// Renders the history: hosts sorted by cluster, hostname and host id, each host's
/// measurements oldest first, each with one row per source (a measurement without sources has
/// one row without a server).
pub fn render(hosts: &[NtpHostHistory], format: OutputFormat) -> String {
    // One status per measurement: JSON and CSV are `fleetctl ntp`'s rows (its sort is stable,
    // so each host's measurements keep their order).
    let statuses: Vec<NtpHostStatus> = hosts
        .iter()
        .flat_map(|h| {
            h.measurements.iter().map(|m| NtpHostStatus {
                host_id: h.host_id.clone(),
                hostname: h.hostname.clone(),
                cluster: h.cluster.clone(),
                time_ms: m.time_ms,
                clock: m.clock.clone(),
                collector_offset_ms: None,
                collector_delay_ms: None,
            })
        })
        .collect();
    match format {
        OutputFormat::Json | OutputFormat::Csv => ntp::render(&statuses, format),
        OutputFormat::Table => history_table(statuses),
    }
}

fn history_table(mut statuses: Vec<NtpHostStatus>) -> String {
    if statuses.is_empty() {
        return String::new();
    }
    statuses.sort_by(|a, b| {
        (&a.cluster, &a.hostname, &a.host_id).cmp(&(&b.cluster, &b.hostname, &b.host_id))
    });
    let mut rows = vec![header(&[
        "TIME",
        "CLUSTER",
        "HOST",
        "SERVER",
        "SYNCED",
        "STRATUM",
        "LEAP",
        "OFFSET_MS",
        "DELAY_MS",
        "ERROR",
    ])];
    for s in &statuses {
        let host = dash(&printable(host_name(&s.hostname, &s.host_id), usize::MAX));
        let servers = s.clock.as_ref().map_or(&[][..], |c| &c.servers[..]);
        if servers.is_empty() {
            let mut row = vec![time_cell(s.time_ms), dash(&s.cluster), host.clone()];
            row.extend(std::iter::repeat_n("-".to_owned(), 7));
            rows.push(row);
        }
        for src in servers {
            rows.push(source_row(s, &host, src));
        }
    }
    let right = [
        false, false, false, false, false, true, true, true, true, false,
    ];
    table(&rows, &right)
}

/// One source of one measurement; an unreachable source shows no measured values.
fn source_row(s: &NtpHostStatus, host: &str, src: &NtpServerStatus) -> Vec<String> {
    let measured = |v: f64, signed: bool| match v {
        v if !src.reachable || !v.is_finite() => "-".to_owned(),
        v if signed => format!("{v:+.3}"),
        v => format!("{v:.3}"),
    };
    let number = |n: u32| {
        if src.reachable {
            n.to_string()
        } else {
            "-".to_owned()
        }
    };
    vec![
        time_cell(s.time_ms),
        dash(&s.cluster),
        host.to_owned(),
        dash(&printable(&src.server, usize::MAX)),
        if source_synced(src) { "yes" } else { "no" }.to_owned(),
        number(src.stratum),
        number(src.leap),
        measured(src.offset_ms, true),
        measured(src.delay_ms, false),
        dash(&printable(&src.error, usize::MAX)),
    ]
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use fleet_proto::v1::{ClockStatus, NtpMeasurement};

    use super::*;
    use crate::cmd::testing::{parse, T0};
    use crate::cmd::Command;
    use crate::golden;

    fn source(server: &str, offset_ms: f64) -> NtpServerStatus {
        NtpServerStatus {
            server: server.into(),
            reachable: true,
            offset_ms,
            delay_ms: 0.4,
            stratum: 2,
            synced: true,
            ..NtpServerStatus::default()
        }
    }

    fn measurement(time_ms: i64, servers: Vec<NtpServerStatus>) -> NtpMeasurement {
        NtpMeasurement {
            time_ms,
            clock: Some(ClockStatus {
                servers,
                kernel: None,
            }),
        }
    }

    /// web3 drifting away against its one server; web1 with a second, unreachable one; h1 in
    /// dev with a measurement that had no server.
    fn history() -> Vec<NtpHostHistory> {
        let unreachable = NtpServerStatus {
            server: "10.0.0.9:123".into(),
            error: "timeout".into(),
            ..NtpServerStatus::default()
        };
        vec![
            NtpHostHistory {
                host_id: "c3".into(),
                hostname: "web3".into(),
                cluster: "prod".into(),
                measurements: (0..3)
                    .map(|i| {
                        measurement(
                            T0 + i * 16_000,
                            vec![source("10.0.0.1:123", 100.0 * i as f64)],
                        )
                    })
                    .collect(),
            },
            NtpHostHistory {
                host_id: "a1".into(),
                hostname: "web1".into(),
                cluster: "prod".into(),
                measurements: vec![measurement(
                    T0,
                    vec![source("10.0.0.1:123", -0.2), unreachable],
                )],
            },
            NtpHostHistory {
                host_id: "e5".into(),
                hostname: "h1".into(),
                cluster: "dev".into(),
                measurements: vec![measurement(T0 + 1_000, Vec::new())],
            },
        ]
    }

    #[test]
    fn since_asks_for_history_and_until_needs_it() {
        let Command::Ntp(args) = parse(&["ntp", "--since", "1h", "--cluster", "prod"])
            .unwrap()
            .command
        else {
            panic!("not ntp");
        };
        assert_eq!(
            args.since,
            Some(TimeArg::Ago(std::time::Duration::from_secs(3600)))
        );
        assert_eq!(args.until, None);
        let err = parse(&["ntp", "--until", "1h"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        let err = parse(&["ntp", "--since", "yesterday"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation, "{err}");
    }

    #[test]
    fn history_table_has_a_row_per_measurement_and_source() {
        let got = render(&history(), OutputFormat::Table);
        golden::check("ntp-history-table.txt", &got);
        let lines: Vec<&str> = got.lines().collect();
        // Header, h1 (dev), web1 x2, web3 x3: clusters, then hosts, each oldest first.
        assert_eq!(lines.len(), 7, "{got}");
        assert!(lines[1].contains("h1") && lines[1].contains("dev"), "{got}");
        assert!(lines[4].contains("+0.000"), "{got}");
        assert!(lines[6].contains("+200.000"), "{got}");
        assert_eq!(render(&[], OutputFormat::Table), "");
    }

    #[test]
    fn history_json_rows_are_fleetctl_ntp_rows() {
        let text = render(&history(), OutputFormat::Json);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        assert_eq!(rows.len(), 6, "{text}");
        let offsets: Vec<(&str, serde_json::Value)> = rows
            .iter()
            .map(|r| (r["hostname"].as_str().unwrap(), r["offset_ms"].clone()))
            .collect();
        assert_eq!(
            offsets,
            [
                ("h1", serde_json::Value::Null),
                ("web1", (-0.2).into()),
                ("web1", serde_json::Value::Null),
                ("web3", 0.0.into()),
                ("web3", 100.0.into()),
                ("web3", 200.0.into()),
            ]
        );
        assert_eq!(rows[5]["time"], "2026-11-25T22:10:35.000Z");
        assert_eq!(rows[5]["collector_offset_ms"], serde_json::Value::Null);
        for row in rows {
            assert_eq!(row.as_object().unwrap().len(), ntp::NTP_KEYS.len(), "{row}");
        }
        let csv = render(&history(), OutputFormat::Csv);
        assert_eq!(csv.lines().next().unwrap(), ntp::NTP_KEYS.join(","));
        assert_eq!(csv.lines().count(), 7);
    }
}
