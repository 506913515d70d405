//! `fleetctl ntp [--cluster C] [--host H]...`: each host's time sources and its offset from the
//! collector's clock (`Query.ListNtp`), the latest status of each selected host. With
//! `--since`, the history of the measurements instead ([`super::ntp_history`]).
//!
//! One row per (host, time source), keyed [`NTP_KEYS`]; a host without sources has one row with
//! a `null` server. The table ends with each cluster's offset spread, the hosts' offsets taken
//! from each one's synced source of lowest stratum:
//!
//! ```text
//! CLUSTER   HOST   SERVER         REACH   SYNCED   STRATUM   LEAP   OFFSET_MS ...
//! prod      web1   10.0.0.1:123   yes     yes            2      0      -0.200 ...
//! ...
//!
//! cluster prod: 3 hosts, offset spread 250.4 ms (web1 -0.2 ms … web3 +250.2 ms)
//! ```

use std::fmt::Write as _;

use anyhow::Result;
use clap::Args;
use fleet_proto::v1::{NtpHostStatus, NtpQuery};
use serde::Serialize;

use super::{ntp_history, Context, Run};
use crate::output::{
    csv_line, csv_value, dash, header, host_name, json, nonzero_rfc3339_ms, printable, table,
    time_cell, OutputFormat,
};
use crate::timearg::{self, TimeArg};
use crate::Output;

/// `fleetctl ntp`: the latest clock status of each selected host, or with `--since` every
/// measurement stored.
#[derive(Debug, Clone, Default, Args)]
#[command(after_help = timearg::HELP)]
pub struct NtpArgs {
    /// Only hosts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// Host id or hostname (repeatable) [default: every host]
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Show every measurement stored since TIME (the history) instead of the latest ones
    #[arg(long, value_name = "TIME")]
    pub since: Option<TimeArg>,
    /// With --since: end of the history [default: now]
    #[arg(long, value_name = "TIME", requires = "since")]
    pub until: Option<TimeArg>,
}

impl Run for NtpArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        if let Some(since) = self.since {
            return ntp_history::run(self, since, ctx).await;
        }
        let query = NtpQuery {
            hosts: self.hosts,
            cluster: self.cluster.unwrap_or_default(),
        };
        let collector = ctx.connect().await?;
        let hosts = collector
            .query("ListNtp", async |c| c.list_ntp(query).await)
            .await?
            .hosts;
        let notice = (hosts.is_empty() && ctx.format == OutputFormat::Table).then(|| {
            "no clock status stored for the selected hosts (agents send one with their samples)"
                .to_owned()
        });
        Ok(Output::print(render(&hosts, ctx.format)).with_notice(notice))
    }
}

/// The keys of an `ntp` row, in order (JSON and CSV).
pub const NTP_KEYS: [&str; 14] = [
    "host_id",
    "hostname",
    "cluster",
    "server",
    "reachable",
    "synced",
    "offset_ms",
    "delay_ms",
    "stratum",
    "leap",
    "error",
    "kernel_synced",
    "collector_offset_ms",
    "time",
];

/// The most hosts a cluster's spread line names as having no synced source; the rest are counted.
const SPREAD_NAMES: usize = 5;

/// One (host, time source) as `-o json` shows it. The field order is [`NTP_KEYS`].
///
/// A host without sources has one row whose source fields are `null` (and `synced` false). An
/// unreachable source has `null` offset, delay, stratum and leap: the wire's zeros there are no
/// measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct NtpView {
    host_id: String,
    hostname: String,
    cluster: String,
    server: Option<String>,
    reachable: Option<bool>,
    /// See [`source_synced`].
    synced: bool,
    offset_ms: Option<f64>,
    delay_ms: Option<f64>,
    stratum: Option<u32>,
    leap: Option<u32>,
    error: Option<String>,
    /// The kernel's STA_UNSYNC flag is clear. `null` when not known: no kernel status, or the flag
    /// is set while chronyd runs, which chronyd does on purpose (unless `rtcsync`), so it is no
    /// sign of trouble.
    kernel_synced: Option<bool>,
    /// The host's clock minus the collector's, measured over the agent's stream.
    collector_offset_ms: Option<f64>,
    /// When the agent measured.
    time: Option<String>,
    /// `time` for the table, which shows whole seconds.
    #[serde(skip)]
    time_ms: i64,
}

impl NtpView {
    /// The rows of one host: one per source, in the agent's (configured) order, or one without a
    /// source.
    fn rows(host: &NtpHostStatus) -> Vec<NtpView> {
        let clock = host.clock.clone().unwrap_or_default();
        let kernel_synced = clock
            .kernel
            .as_ref()
            .and_then(|k| match (k.synced, k.chronyd) {
                (true, _) => Some(true),
                (false, true) => None,
                (false, false) => Some(false),
            });
        let host_row = NtpView {
            host_id: host.host_id.clone(),
            hostname: host.hostname.clone(),
            cluster: host.cluster.clone(),
            server: None,
            reachable: None,
            synced: false,
            offset_ms: None,
            delay_ms: None,
            stratum: None,
            leap: None,
            error: None,
            kernel_synced,
            collector_offset_ms: host.collector_offset_ms.filter(|v| v.is_finite()),
            time: nonzero_rfc3339_ms(host.time_ms),
            time_ms: host.time_ms,
        };
        if clock.servers.is_empty() {
            return vec![host_row];
        }
        clock
            .servers
            .iter()
            .map(|s| {
                let measured = |v: f64| Some(v).filter(|v| s.reachable && v.is_finite());
                NtpView {
                    server: Some(s.server.clone()),
                    reachable: Some(s.reachable),
                    synced: source_synced(s),
                    offset_ms: measured(s.offset_ms),
                    delay_ms: measured(s.delay_ms),
                    stratum: s.reachable.then_some(s.stratum),
                    leap: s.reachable.then_some(s.leap),
                    error: Some(s.error.clone()).filter(|e| !e.is_empty()),
                    ..host_row.clone()
                }
            })
            .collect()
    }

    fn host(&self) -> &str {
        host_name(&self.hostname, &self.host_id)
    }
}

pub(super) use fleet_proto::ntp::source_synced;

/// A host's offset as its cluster's spread counts it ([`fleet_proto::ntp::best_offset`]: its
/// synced source with the lowest stratum, ties to the lower delay, then to the first configured).
pub(crate) fn best_offset(host: &NtpHostStatus) -> Option<f64> {
    host.clock.as_ref().and_then(fleet_proto::ntp::best_offset)
}

/// What a cluster's spread line says.
#[derive(Debug, Clone, PartialEq)]
struct ClusterSpread<'a> {
    cluster: &'a str,
    hosts: usize,
    /// Name and offset of each host with a synced source, in host order.
    offsets: Vec<(&'a str, f64)>,
    /// The hosts without one.
    unsynced: Vec<&'a str>,
}

impl ClusterSpread<'_> {
    /// `cluster prod: 3 hosts, offset spread 250.4 ms (web1 -0.2 ms … web3 +250.2 ms)`, with the
    /// hosts that have no synced source named after it.
    fn line(&self) -> String {
        let hosts = match self.hosts {
            1 => "1 host".to_owned(),
            n => format!("{n} hosts"),
        };
        let mut line = format!("cluster {}: {hosts}, offset spread ", dash(self.cluster));
        // min_by keeps the first of equals and max_by the last, so the two differ.
        let by_offset = |a: &&(&str, f64), b: &&(&str, f64)| a.1.total_cmp(&b.1);
        match (
            self.offsets.iter().min_by(by_offset),
            self.offsets.iter().max_by(by_offset),
        ) {
            (Some(low), Some(high)) if self.offsets.len() >= 2 => {
                let _ = write!(
                    line,
                    "{:.1} ms ({} {:+.1} ms … {} {:+.1} ms)",
                    high.1 - low.1,
                    printable(low.0, usize::MAX),
                    low.1,
                    printable(high.0, usize::MAX),
                    high.1
                );
            }
            _ => line.push_str("n/a (needs two hosts with a synced source)"),
        }
        if !self.unsynced.is_empty() {
            line.push_str("; no synced source: ");
            let named: Vec<String> = self.unsynced[..self.unsynced.len().min(SPREAD_NAMES)]
                .iter()
                .map(|name| printable(name, usize::MAX))
                .collect();
            line.push_str(&named.join(", "));
            if self.unsynced.len() > SPREAD_NAMES {
                let _ = write!(line, " and {} more", self.unsynced.len() - SPREAD_NAMES);
            }
        }
        line
    }
}

/// The spread of each cluster, clusters in `hosts` order (sorted by the caller).
fn cluster_spreads<'a>(hosts: &[&'a NtpHostStatus]) -> Vec<ClusterSpread<'a>> {
    let mut spreads: Vec<ClusterSpread<'a>> = Vec::new();
    for host in hosts {
        let i = match spreads.iter().position(|c| c.cluster == host.cluster) {
            Some(i) => i,
            None => {
                spreads.push(ClusterSpread {
                    cluster: &host.cluster,
                    hosts: 0,
                    offsets: Vec::new(),
                    unsynced: Vec::new(),
                });
                spreads.len() - 1
            }
        };
        let spread = &mut spreads[i];
        let name = host_name(&host.hostname, &host.host_id);
        spread.hosts += 1;
        match best_offset(host) {
            Some(offset) => spread.offsets.push((name, offset)),
            None => spread.unsynced.push(name),
        }
    }
    spreads
}

/// Renders `fleetctl ntp`: hosts sorted by cluster, hostname and host id, each with one row per
/// source. The table ends with one spread line per cluster (`ClusterSpread::line`).
pub fn render(hosts: &[NtpHostStatus], format: OutputFormat) -> String {
    let mut hosts: Vec<&NtpHostStatus> = hosts.iter().collect();
    hosts.sort_by(|a, b| {
        (&a.cluster, &a.hostname, &a.host_id).cmp(&(&b.cluster, &b.hostname, &b.host_id))
    });
    let views: Vec<NtpView> = hosts.iter().flat_map(|h| NtpView::rows(h)).collect();
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let mut out = csv_line(NTP_KEYS);
            for v in &views {
                let value = serde_json::to_value(v).expect("plain data always serializes");
                out.push_str(&csv_line(NTP_KEYS.iter().map(|k| csv_value(value.get(k)))));
            }
            out
        }
        OutputFormat::Table => {
            if views.is_empty() {
                return String::new();
            }
            let mut rows = vec![header(&[
                "CLUSTER",
                "HOST",
                "SERVER",
                "REACH",
                "SYNCED",
                "STRATUM",
                "LEAP",
                "OFFSET_MS",
                "DELAY_MS",
                "COLLECTOR_MS",
                "KERNEL",
                "TIME",
                "ERROR",
            ])];
            let yes_no = |b: Option<bool>| match b {
                Some(true) => "yes".to_owned(),
                Some(false) => "no".to_owned(),
                None => "-".to_owned(),
            };
            let ms = |v: Option<f64>, signed: bool| match v {
                Some(v) if signed => format!("{v:+.3}"),
                Some(v) => format!("{v:.3}"),
                None => "-".to_owned(),
            };
            let number = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            for v in &views {
                rows.push(vec![
                    dash(&v.cluster),
                    dash(&printable(v.host(), usize::MAX)),
                    dash(&printable(v.server.as_deref().unwrap_or(""), usize::MAX)),
                    yes_no(v.reachable),
                    yes_no(Some(v.synced)),
                    number(v.stratum),
                    number(v.leap),
                    ms(v.offset_ms, true),
                    ms(v.delay_ms, false),
                    ms(v.collector_offset_ms, true),
                    yes_no(v.kernel_synced),
                    time_cell(v.time_ms),
                    dash(&printable(v.error.as_deref().unwrap_or(""), usize::MAX)),
                ]);
            }
            let right = [
                false, false, false, false, false, true, true, true, true, true, false, false,
                false,
            ];
            let mut out = table(&rows, &right);
            out.push('\n');
            for spread in cluster_spreads(&hosts) {
                out.push_str(&spread.line());
                out.push('\n');
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use fleet_proto::v1::{ClockStatus, KernelClock, NtpServerStatus};

    use super::*;
    use crate::cmd::testing::{keys, keys_in_text_order, parse, T0};
    use crate::cmd::Command;
    use crate::golden;
    use crate::output::OutputFormat;

    #[test]
    fn ntp_takes_a_cluster_and_hosts() {
        let Command::Ntp(args) = parse(&["ntp"]).unwrap().command else {
            panic!("not ntp");
        };
        assert_eq!(args.cluster, None);
        assert!(args.hosts.is_empty());
        let cli = parse(&[
            "ntp",
            "--cluster",
            "prod",
            "--host",
            "web1",
            "--host",
            "a1",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
        let Command::Ntp(args) = cli.command else {
            panic!("not ntp");
        };
        assert_eq!(args.cluster.as_deref(), Some("prod"));
        assert_eq!(args.hosts, ["web1", "a1"]);
        // Without --since: the latest status (--since asks for the history, see ntp_history).
        assert_eq!(args.since, None);
        let err = parse(&["ntp", "--step", "1m"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
    }

    fn source(server: &str, stratum: u32, offset_ms: f64, delay_ms: f64) -> NtpServerStatus {
        NtpServerStatus {
            server: server.into(),
            reachable: true,
            offset_ms,
            delay_ms,
            stratum,
            leap: 0,
            reference_id: "GPS".into(),
            root_delay_ms: 0.1,
            root_dispersion_ms: 0.2,
            precision: -20,
            poll: 6,
            synced: true,
            error: String::new(),
        }
    }

    fn ntp_host(
        id: &str,
        name: &str,
        cluster: &str,
        servers: Vec<NtpServerStatus>,
    ) -> NtpHostStatus {
        NtpHostStatus {
            host_id: id.into(),
            hostname: name.into(),
            cluster: cluster.into(),
            time_ms: T0,
            clock: Some(ClockStatus {
                servers,
                kernel: Some(KernelClock {
                    synced: true,
                    est_error_ms: 0.5,
                    max_error_ms: 16.0,
                    freq_ppm: -3.2,
                    chronyd: false,
                }),
            }),
            collector_offset_ms: Some(1.25),
            collector_delay_ms: Some(0.3),
        }
    }

    /// Four hosts in prod, web3 250 ms off, db1 with only an unsynchronised source; one host
    /// without any clock status in dev.
    fn ntp_hosts() -> Vec<NtpHostStatus> {
        let unreachable = NtpServerStatus {
            reachable: false,
            synced: false,
            error: "timeout".into(),
            ..source("10.0.0.4:123", 0, 0.0, 0.0)
        };
        let mut web2 = ntp_host(
            "b2",
            "web2",
            "prod",
            vec![source("10.0.0.1:123", 2, 0.1, 0.5)],
        );
        web2.clock.as_mut().unwrap().kernel = Some(KernelClock {
            synced: false,
            chronyd: true,
            ..KernelClock::default()
        });
        // The agent's flag says synced, the facts say otherwise: leap 3, stratum 16.
        let unsynchronised = NtpServerStatus {
            leap: 3,
            ..source("10.0.0.1:123", 16, 12.0, 0.5)
        };
        let mut db1 = ntp_host("d1", "db1", "prod", vec![unsynchronised]);
        db1.collector_offset_ms = None;
        db1.collector_delay_ms = None;
        db1.clock.as_mut().unwrap().kernel.as_mut().unwrap().synced = false;
        vec![
            ntp_host(
                "c3",
                "web3",
                "prod",
                vec![source("10.9.9.9:123", 1, 250.2, 0.7)],
            ),
            ntp_host(
                "a1",
                "web1",
                "prod",
                vec![
                    source("10.0.0.3:123", 3, 5.0, 0.2),
                    source("10.0.0.2:123", 2, 1.5, 0.9),
                    source("10.0.0.1:123", 2, -0.2, 0.4),
                    unreachable,
                ],
            ),
            web2,
            db1,
            NtpHostStatus {
                host_id: "e5".into(),
                hostname: "h1".into(),
                cluster: "dev".into(),
                ..NtpHostStatus::default()
            },
        ]
    }

    #[test]
    fn ntp_json_has_one_row_per_host_and_source() {
        let text = render(&ntp_hosts(), OutputFormat::Json);
        golden::check("ntp.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        // h1 (dev), db1, web1 x4, web2, web3.
        assert_eq!(rows.len(), 8, "{text}");
        for row in rows {
            let mut got = keys(row);
            got.sort_unstable();
            let mut want = NTP_KEYS.to_vec();
            want.sort_unstable();
            assert_eq!(got, want);
        }
        assert_eq!(keys_in_text_order(&text, &NTP_KEYS), NTP_KEYS);

        let hosts: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["hostname"].as_str().unwrap(),
                    r["server"].as_str().unwrap_or("null"),
                )
            })
            .collect();
        assert_eq!(
            hosts,
            [
                ("h1", "null"),
                ("db1", "10.0.0.1:123"),
                // Sources keep the agent's (configured) order.
                ("web1", "10.0.0.3:123"),
                ("web1", "10.0.0.2:123"),
                ("web1", "10.0.0.1:123"),
                ("web1", "10.0.0.4:123"),
                ("web2", "10.0.0.1:123"),
                ("web3", "10.9.9.9:123"),
            ]
        );
        // A host without a clock status: one row, nothing measured.
        let none = serde_json::json!({
            "host_id": "e5", "hostname": "h1", "cluster": "dev", "server": null,
            "reachable": null, "synced": false, "offset_ms": null, "delay_ms": null,
            "stratum": null, "leap": null, "error": null, "kernel_synced": null,
            "collector_offset_ms": null, "time": null
        });
        assert_eq!(rows[0], none);
        let web1 = serde_json::json!({
            "host_id": "a1", "hostname": "web1", "cluster": "prod", "server": "10.0.0.1:123",
            "reachable": true, "synced": true, "offset_ms": -0.2, "delay_ms": 0.4,
            "stratum": 2, "leap": 0, "error": null, "kernel_synced": true,
            "collector_offset_ms": 1.25, "time": "2026-11-25T22:10:03.000Z"
        });
        assert_eq!(rows[4], web1);
        // Unreachable: no measurement, and why.
        assert_eq!(rows[5]["reachable"], false);
        assert_eq!(rows[5]["synced"], false);
        assert_eq!(rows[5]["offset_ms"], serde_json::Value::Null);
        assert_eq!(rows[5]["stratum"], serde_json::Value::Null);
        assert_eq!(rows[5]["error"], "timeout");
        // Unsynchronised (leap 3, stratum 16) is never synced, whatever the agent's flag.
        assert_eq!(rows[1]["synced"], false);
        assert_eq!(rows[1]["leap"], 3);
        assert_eq!(rows[1]["offset_ms"], 12.0);
        assert_eq!(rows[1]["kernel_synced"], false);
        assert_eq!(rows[1]["collector_offset_ms"], serde_json::Value::Null);
        // chronyd keeps the kernel's flag unsynchronised: unknown, not an alarm.
        assert_eq!(rows[6]["kernel_synced"], serde_json::Value::Null);
        assert_eq!(render(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn ntp_table_ends_with_each_clusters_spread() {
        let got = render(&ntp_hosts(), OutputFormat::Table);
        golden::check("ntp-table.txt", &got);
        assert_eq!(render(&[], OutputFormat::Table), "");
    }

    #[test]
    fn ntp_csv_has_the_json_keys() {
        let text = render(&ntp_hosts(), OutputFormat::Csv);
        golden::check("ntp.csv", &text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], NTP_KEYS.join(","));
        assert_eq!(lines[1], "e5,h1,dev,,,false,,,,,,,,");
        assert_eq!(
            lines[5],
            "a1,web1,prod,10.0.0.1:123,true,true,-0.2,0.4,2,0,,true,1.25,2026-11-25T22:10:03.000Z"
        );
        assert_eq!(
            lines[6],
            "a1,web1,prod,10.0.0.4:123,false,false,,,,,timeout,true,1.25,2026-11-25T22:10:03.000Z"
        );
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn spread_uses_the_lowest_stratum_then_the_lowest_delay() {
        let hosts = ntp_hosts();
        assert_eq!(best_offset(&hosts[1]), Some(-0.2));
        // Same stratum and delay: the first configured.
        let tie = ntp_host(
            "x",
            "x",
            "prod",
            vec![source("a", 2, 7.0, 0.4), source("b", 2, 8.0, 0.4)],
        );
        assert_eq!(best_offset(&tie), Some(7.0));
        assert_eq!(best_offset(&hosts[3]), None);
        assert_eq!(best_offset(&hosts[4]), None);
    }

    #[test]
    fn spread_lines() {
        let one = |name: &str, offset: f64| {
            ntp_host(name, name, "prod", vec![source("s", 2, offset, 1.0)])
        };
        let line = |hosts: &[NtpHostStatus]| {
            let refs: Vec<&NtpHostStatus> = hosts.iter().collect();
            cluster_spreads(&refs)
                .iter()
                .map(ClusterSpread::line)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            line(&[one("web1", -0.2), one("web2", 0.1), one("web3", 250.2)]),
            ["cluster prod: 3 hosts, offset spread 250.4 ms (web1 -0.2 ms … web3 +250.2 ms)"]
        );
        // Equal offsets still name two hosts.
        assert_eq!(
            line(&[one("a", 1.0), one("b", 1.0)]),
            ["cluster prod: 2 hosts, offset spread 0.0 ms (a +1.0 ms … b +1.0 ms)"]
        );
        assert_eq!(
            line(&[one("a", 1.0)]),
            ["cluster prod: 1 host, offset spread n/a (needs two hosts with a synced source)"]
        );
        let mut hosts = vec![one("a", 1.0), one("b", 3.0)];
        for i in 0..7 {
            hosts.push(ntp_host(
                &format!("u{i}"),
                &format!("u{i}"),
                "prod",
                Vec::new(),
            ));
        }
        assert_eq!(
            line(&hosts),
            [
                "cluster prod: 9 hosts, offset spread 2.0 ms (a +1.0 ms … b +3.0 ms); \
              no synced source: u0, u1, u2, u3, u4 and 2 more"
            ]
        );
    }
}
