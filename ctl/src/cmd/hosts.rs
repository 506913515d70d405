//! `fleetctl hosts [--cluster C]`: the hosts the collector knows (`Query.ListHosts`), sorted by
//! cluster, hostname and host id.
//!
//! ```text
//! HOST_ID   HOSTNAME   CLUSTER   CONNECTED   LAST_SEEN              KERNEL           LABELS
//! b2        db-1       prod      no          2026-11-25T22:10:03Z   6.1.0-18-amd64   -
//! a1        web-1      prod      yes         2026-11-25T22:10:03Z   6.1.0-18-amd64   az=b,role=web
//! ```
//!
//! JSON: an array of objects keyed [`HOST_KEYS`]; CSV: the same keys, labels as `k=v,k=v`.
//!
//! A hostname is what the agent reports, a display name: two hosts may report the same one (a
//! reinstalled machine, a clone, a mistake, or an agent posing as another host). Host ids are
//! unique. When hostnames repeat, a notice on stderr names each one with its hosts' ids
//! ([`shared_hostnames`]); `--host NAME` of the other commands is then refused by the collector,
//! and the host id selects.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use fleet_proto::v1::{HostInfo, ListHostsRequest};
use serde::Serialize;

use super::{Context, Run};
use crate::output::{csv_line, dash, header, json, rfc3339, table, OutputFormat};
use crate::Output;

/// `fleetctl hosts`.
#[derive(Debug, Clone, Default, Args)]
pub struct HostsArgs {
    /// Only hosts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
}

impl Run for HostsArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        let cluster = self.cluster.unwrap_or_default();
        let request = ListHostsRequest {
            cluster: cluster.clone(),
        };
        let collector = ctx.connect().await?;
        let hosts = collector
            .query("ListHosts", async |c| c.list_hosts(request).await)
            .await?
            .hosts;
        if hosts.is_empty() && ctx.format == OutputFormat::Table {
            let notice = match cluster.as_str() {
                "" => "the collector knows no hosts".to_owned(),
                cluster => format!("the collector knows no hosts in cluster {cluster}"),
            };
            return Ok(Output::default().with_notice(Some(notice)));
        }
        Ok(Output::print(render(&hosts, ctx.format)).with_notice(shared_hostnames(&hosts)))
    }
}

/// One line per hostname that several of `hosts` report, naming their ids; `None` when every
/// hostname is unique.
pub fn shared_hostnames(hosts: &[HostInfo]) -> Option<String> {
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for id in hosts.iter().filter_map(|h| h.identity.as_ref()) {
        if !id.hostname.is_empty() {
            by_name.entry(&id.hostname).or_default().push(&id.host_id);
        }
    }
    let lines: Vec<String> = by_name
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(name, mut ids)| {
            ids.sort_unstable();
            format!(
                "hostname \"{}\" is reported by {} hosts: {}; select them with --host HOST_ID",
                dash(name),
                ids.len(),
                ids.iter().map(|id| dash(id)).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The keys of a host, in order (JSON and CSV).
pub const HOST_KEYS: [&str; 11] = [
    "host_id",
    "hostname",
    "cluster",
    "labels",
    "kernel",
    "agent_version",
    "connected",
    "first_seen",
    "last_seen",
    "dropped_samples",
    "last_seq",
];

/// One host as `-o json` shows it. The field order is [`HOST_KEYS`].
#[derive(Debug, Serialize)]
struct HostView {
    host_id: String,
    hostname: String,
    cluster: String,
    labels: BTreeMap<String, String>,
    kernel: String,
    agent_version: String,
    connected: bool,
    first_seen: Option<String>,
    last_seen: Option<String>,
    dropped_samples: u64,
    /// Highest batch sequence number stored for the host's current spool epoch.
    last_seq: u64,
}

impl HostView {
    fn new(host: &HostInfo) -> Self {
        let id = host.identity.clone().unwrap_or_default();
        HostView {
            host_id: id.host_id,
            hostname: id.hostname,
            cluster: id.cluster,
            labels: id.labels.into_iter().collect(),
            kernel: id.kernel,
            agent_version: id.agent_version,
            connected: host.connected,
            first_seen: rfc3339(host.first_seen_ms),
            last_seen: rfc3339(host.last_seen_ms),
            dropped_samples: host.dropped_samples,
            last_seq: host.last_seq,
        }
    }

    fn labels_text(&self) -> String {
        let pairs: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(",")
    }
}

/// Renders `fleetctl hosts`, sorted by cluster, hostname and host id.
pub fn render(hosts: &[HostInfo], format: OutputFormat) -> String {
    let mut views: Vec<HostView> = hosts.iter().map(HostView::new).collect();
    views.sort_by(|a, b| {
        (&a.cluster, &a.hostname, &a.host_id).cmp(&(&b.cluster, &b.hostname, &b.host_id))
    });
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let mut out = csv_line(HOST_KEYS);
            for v in &views {
                out.push_str(&csv_line([
                    v.host_id.as_str(),
                    &v.hostname,
                    &v.cluster,
                    &v.labels_text(),
                    &v.kernel,
                    &v.agent_version,
                    if v.connected { "true" } else { "false" },
                    v.first_seen.as_deref().unwrap_or(""),
                    v.last_seen.as_deref().unwrap_or(""),
                    &v.dropped_samples.to_string(),
                    &v.last_seq.to_string(),
                ]));
            }
            out
        }
        OutputFormat::Table => {
            let mut rows = vec![header(&[
                "HOST_ID",
                "HOSTNAME",
                "CLUSTER",
                "CONNECTED",
                "LAST_SEEN",
                "KERNEL",
                "LABELS",
            ])];
            for v in &views {
                rows.push(vec![
                    dash(&v.host_id),
                    dash(&v.hostname),
                    dash(&v.cluster),
                    (if v.connected { "yes" } else { "no" }).to_owned(),
                    v.last_seen.clone().unwrap_or_else(|| "-".into()),
                    dash(&v.kernel),
                    dash(&v.labels_text()),
                ]);
            }
            table(&rows, &[false; 7])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{host, keys};
    use crate::golden;

    #[test]
    fn hosts_json_has_exactly_the_contract_keys() {
        let mut db = host("b2", "db-1", "prod", &[]);
        db.connected = false;
        db.dropped_samples = 12;
        let hosts = [
            db,
            host("a1", "web-1", "prod", &[("role", "web"), ("az", "b")]),
        ];
        let text = render(&hosts, OutputFormat::Json);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let array = value.as_array().unwrap();
        assert_eq!(array.len(), 2);
        let mut want = vec![
            "host_id",
            "hostname",
            "cluster",
            "labels",
            "kernel",
            "agent_version",
            "connected",
            "first_seen",
            "last_seen",
            "dropped_samples",
            "last_seq",
        ];
        let mut got = keys(&array[0]);
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        // Sorted by cluster, then hostname.
        assert_eq!(array[0]["hostname"], "db-1");
        assert_eq!(array[0]["connected"], false);
        assert_eq!(array[0]["dropped_samples"], 12);
        assert_eq!(
            array[1]["labels"],
            serde_json::json!({"az": "b", "role": "web"})
        );
        assert_eq!(array[1]["last_seen"], "2026-11-25T22:10:03Z");
        assert_eq!(array[1]["first_seen"], "2026-11-25T21:10:03Z");
        assert_eq!(array[1]["kernel"], "6.1.0-18-amd64");
        assert_eq!(array[1]["agent_version"], "0.1.0");
        assert!(text.ends_with("]\n"));
        golden::check("hosts.json", &text);
        assert_eq!(render(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn hosts_table_is_aligned() {
        let mut db = host("b2", "db-1", "prod", &[]);
        db.connected = false;
        let hosts = [
            host("a1", "web-1", "prod", &[("role", "web"), ("az", "b")]),
            db,
        ];
        golden::check("hosts-table.txt", &render(&hosts, OutputFormat::Table));
    }

    #[test]
    fn shared_hostnames_are_named_with_their_host_ids() {
        let hosts = [
            host("c3", "web-1", "staging", &[]),
            host("a1", "web-1", "prod", &[]),
            host("b2", "db-1", "prod", &[]),
            host("d4", "db-1", "prod", &[]),
            host("e5", "web-5", "prod", &[]),
            host("f6", "", "prod", &[]),
            host("g7", "", "prod", &[]),
        ];
        assert_eq!(
            shared_hostnames(&hosts).as_deref(),
            Some(
                "hostname \"db-1\" is reported by 2 hosts: b2, d4; select them with --host HOST_ID\n\
                 hostname \"web-1\" is reported by 2 hosts: a1, c3; select them with --host HOST_ID"
            )
        );
        assert_eq!(shared_hostnames(&hosts[1..3]), None);
        assert_eq!(shared_hostnames(&[]), None);
        // The table is the same as without the repeat.
        golden::check(
            "hosts-shared-table.txt",
            &render(&hosts[..2], OutputFormat::Table),
        );
    }

    #[test]
    fn agent_text_is_escaped_in_tables_and_csv_and_exact_in_json() {
        // What a compromised agent might say: a terminal title, a colour, a CSI in its 8-bit form
        // (U+009B), a carriage return that would overwrite the line, a right-to-left override.
        let mut evil = host(
            "a1",
            "web-1\u{1b}]0;owned\u{7}",
            "prod\r",
            &[("role", "web\u{1b}[31m"), ("k\u{9b}2J", "v\u{202e}1-bew")],
        );
        evil.identity.as_mut().unwrap().kernel = "6.1\u{7f}\u{8}".into();
        let hosts = [evil];
        for format in [OutputFormat::Table, OutputFormat::Csv, OutputFormat::Json] {
            let text = render(&hosts, format);
            assert!(
                !text.chars().any(
                    |c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c)
                ),
                "{format:?}: {text:?}"
            );
        }
        golden::check(
            "hosts-escaped-table.txt",
            &render(&hosts, OutputFormat::Table),
        );
        golden::check("hosts-escaped.csv", &render(&hosts, OutputFormat::Csv));
        // JSON escapes them too, and reads back as exactly what the agent said.
        let text = render(&hosts, OutputFormat::Json);
        assert!(
            text.contains(r#""hostname": "web-1\u001b]0;owned\u0007""#),
            "{text}"
        );
        assert!(text.contains(r#""k\u009b2J": "v\u202e1-bew""#), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        let id = hosts[0].identity.as_ref().unwrap();
        assert_eq!(back[0]["hostname"], id.hostname.as_str());
        assert_eq!(back[0]["kernel"], id.kernel.as_str());
        assert_eq!(back[0]["labels"]["k\u{9b}2J"], "v\u{202e}1-bew");
    }

    #[test]
    fn hosts_csv_quotes_what_needs_it() {
        let hosts = [host(
            "a1",
            "web-1",
            "prod",
            &[("role", "web"), ("note", "say \"hi\"")],
        )];
        golden::check("hosts.csv", &render(&hosts, OutputFormat::Csv));
    }
}
