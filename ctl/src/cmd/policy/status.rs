//! `fleetctl policy status NAME`: where a policy stands on each host
//! (`Policies.GetPolicyStatus`).
//!
//! JSON `{policy, hosts}`, each host with what its agent last reported (`status`) and, once
//! removed, its removal report (`removal`); CSV one row per host keyed [`STATUS_KEYS`]; the table
//! a header line, the hosts, then the failures, the processes and the removals.

use anyhow::Result;
use chrono::Utc;
use fleet_proto::v1::{
    HostPolicyStatus, PolicyFailure, PolicyHostStatus, PolicyProcess, PolicyRemoval,
    PolicyStatusReport,
};
use serde::Serialize;

use super::{host_key, policy_name, unknown, VersionView};
use crate::cmd::Context;
use crate::output::{
    csv_line, dash, header, host_name, json, nonzero_rfc3339_ms, opt, printable, rfc3339, table,
    OutputFormat,
};
use crate::Output;

/// The keys of a `status` CSV row (one per host), in order.
pub const STATUS_KEYS: [&str; 12] = [
    "host_id",
    "hostname",
    "cluster",
    "connected",
    "state",
    "version",
    "matched",
    "set",
    "failed",
    "reported",
    "restored",
    "handed_over",
];

/// `policy status NAME`: informational, it exits 0 whatever the hosts' state.
///
/// # Errors
///
/// `no policy named NAME` for an unknown policy, else as the collector says.
pub(super) async fn status(name: &str, ctx: &Context) -> Result<Output> {
    let collector = ctx.connect().await?;
    let report = collector
        .policies("GetPolicyStatus", async |c| {
            c.get_policy_status(policy_name(name)).await
        })
        .await
        .map_err(unknown(name))?;
    Ok(Output::print(render(
        name,
        &report,
        ctx.format,
        Utc::now().timestamp_millis(),
    )))
}

#[derive(Debug, Serialize)]
struct StatusView {
    policy: Option<VersionView>,
    hosts: Vec<HostStatusView>,
}

#[derive(Debug, Serialize)]
struct HostStatusView {
    host_id: String,
    hostname: String,
    cluster: String,
    connected: bool,
    /// `enforced`, `pending`, `outdated`, `removed` or `not_targeted`.
    state: String,
    /// When the agent last reported on the policy.
    reported: Option<String>,
    /// What the agent last reported; `None` if it never did.
    status: Option<AgentStatusView>,
    /// The agent's report of the policy's removal, once removed.
    removal: Option<RemovalView>,
    #[serde(skip)]
    reported_ms: i64,
}

#[derive(Debug, Serialize)]
struct AgentStatusView {
    /// The version the agent enforces.
    version: u64,
    matched: u32,
    set: u32,
    failed: Vec<FailureView>,
    processes: Vec<ProcessView>,
}

#[derive(Debug, Serialize)]
struct RemovalView {
    version: u64,
    restored: u32,
    handed_over: u32,
    failed: Vec<FailureView>,
}

#[derive(Debug, Serialize)]
struct FailureView {
    pid: u32,
    reason: String,
}

#[derive(Debug, Serialize)]
struct ProcessView {
    pid: u32,
    comm: String,
    oom_score_adj: i32,
    original: i32,
}

fn failures(failed: &[PolicyFailure]) -> Vec<FailureView> {
    let mut views: Vec<FailureView> = failed
        .iter()
        .map(|f| FailureView {
            pid: f.pid,
            reason: f.reason.clone(),
        })
        .collect();
    views.sort_by_key(|f| f.pid);
    views
}

impl AgentStatusView {
    fn new(s: &PolicyHostStatus) -> Self {
        let mut processes: Vec<ProcessView> = s
            .processes
            .iter()
            .map(|p: &PolicyProcess| ProcessView {
                pid: p.pid,
                comm: p.comm.clone(),
                oom_score_adj: p.oom_score_adj,
                original: p.original,
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        AgentStatusView {
            version: s.version,
            matched: s.matched,
            set: s.set,
            failed: failures(&s.failed),
            processes,
        }
    }
}

impl RemovalView {
    fn new(r: &PolicyRemoval) -> Self {
        RemovalView {
            version: r.version,
            restored: r.restored,
            handed_over: r.handed_over,
            failed: failures(&r.failed),
        }
    }
}

impl HostStatusView {
    fn new(h: &HostPolicyStatus) -> Self {
        HostStatusView {
            host_id: h.host_id.clone(),
            hostname: h.hostname.clone(),
            cluster: h.cluster.clone(),
            connected: h.connected,
            state: h.state.clone(),
            reported: nonzero_rfc3339_ms(h.reported_ms),
            status: h.status.as_ref().map(AgentStatusView::new),
            removal: h.removal.as_ref().map(RemovalView::new),
            reported_ms: h.reported_ms,
        }
    }

    fn host(&self) -> String {
        printable(host_name(&self.hostname, &self.host_id), usize::MAX)
    }

    /// The version the host's last report names: its enforced one, or the one removed.
    fn version(&self) -> Option<u64> {
        self.status
            .as_ref()
            .map(|s| s.version)
            .or_else(|| self.removal.as_ref().map(|r| r.version))
    }

    /// Every failure the host reported, enforcing or removing.
    fn failed(&self) -> impl Iterator<Item = &FailureView> {
        let enforcing = self.status.iter().flat_map(|s| &s.failed);
        let removing = self.removal.iter().flat_map(|r| &r.failed);
        enforcing.chain(removing)
    }

    fn csv_fields(&self) -> [String; 12] {
        let status = self.status.as_ref();
        let removal = self.removal.as_ref();
        let reported_anything = status.is_some() || removal.is_some();
        [
            self.host_id.clone(),
            self.hostname.clone(),
            self.cluster.clone(),
            self.connected.to_string(),
            self.state.clone(),
            opt(self.version()),
            opt(status.map(|s| s.matched)),
            opt(status.map(|s| s.set)),
            opt(reported_anything.then(|| self.failed().count())),
            self.reported.clone().unwrap_or_default(),
            opt(removal.map(|r| r.restored)),
            opt(removal.map(|r| r.handed_over)),
        ]
    }
}

/// Renders `fleetctl policy status NAME` at `now_ms` (for the age of each report). The hosts
/// are sorted by hostname; a policy the answer lacks is called `name`.
pub fn render(
    name: &str,
    report: &PolicyStatusReport,
    format: OutputFormat,
    now_ms: i64,
) -> String {
    let mut hosts: Vec<HostStatusView> = report.hosts.iter().map(HostStatusView::new).collect();
    hosts.sort_by(|a, b| {
        (host_key(&a.hostname, &a.host_id), &a.cluster)
            .cmp(&(host_key(&b.hostname, &b.host_id), &b.cluster))
    });
    let policy = report.policy.as_ref().map(VersionView::new);
    match format {
        OutputFormat::Json => json(&StatusView { policy, hosts }),
        OutputFormat::Csv => {
            let mut out = csv_line(STATUS_KEYS);
            for h in &hosts {
                out.push_str(&csv_line(h.csv_fields()));
            }
            out
        }
        OutputFormat::Table => status_table(name, policy.as_ref(), &hosts, now_ms),
    }
}

fn status_table(
    name: &str,
    policy: Option<&VersionView>,
    hosts: &[HostStatusView],
    now_ms: i64,
) -> String {
    let mut sections = vec![status_header(name, policy)];

    if hosts.is_empty() {
        sections.push("no host is targeted or has reported the policy\n".to_owned());
    } else {
        let mut rows = vec![header(&[
            "HOST", "CLUSTER", "STATE", "VERSION", "MATCHED", "SET", "FAILED", "REPORTED",
        ])];
        for h in hosts {
            let status = h.status.as_ref();
            let reported_anything = status.is_some() || h.removal.is_some();
            rows.push(vec![
                h.host(),
                dash(&h.cluster),
                dash(&h.state),
                h.version().map_or_else(|| "-".into(), |v| v.to_string()),
                status.map_or_else(|| "-".into(), |s| s.matched.to_string()),
                status.map_or_else(|| "-".into(), |s| s.set.to_string()),
                if reported_anything {
                    h.failed().count().to_string()
                } else {
                    "-".into()
                },
                reported_cell(h.reported_ms, now_ms),
            ]);
        }
        sections.push(table(
            &rows,
            &[false, false, false, true, true, true, true, false],
        ));
    }

    let mut failures = vec![header(&["HOST", "PID", "REASON"])];
    for h in hosts {
        for f in h.failed() {
            failures.push(vec![
                h.host(),
                f.pid.to_string(),
                dash(&printable(&f.reason, usize::MAX)),
            ]);
        }
    }
    if failures.len() > 1 {
        sections.push(format!(
            "failures:\n{}",
            table(&failures, &[false, true, false])
        ));
    }

    let mut processes = vec![header(&[
        "HOST",
        "PID",
        "COMM",
        "OOM_SCORE_ADJ",
        "ORIGINAL",
    ])];
    for h in hosts {
        for p in h.status.iter().flat_map(|s| &s.processes) {
            processes.push(vec![
                h.host(),
                p.pid.to_string(),
                dash(&printable(&p.comm, usize::MAX)),
                p.oom_score_adj.to_string(),
                p.original.to_string(),
            ]);
        }
    }
    if processes.len() > 1 {
        sections.push(format!(
            "processes:\n{}",
            table(&processes, &[false, true, false, true, true])
        ));
    }

    let mut removals = vec![header(&[
        "HOST",
        "VERSION",
        "RESTORED",
        "HANDED_OVER",
        "FAILED",
    ])];
    for h in hosts {
        if let Some(r) = &h.removal {
            removals.push(vec![
                h.host(),
                r.version.to_string(),
                r.restored.to_string(),
                r.handed_over.to_string(),
                r.failed.len().to_string(),
            ]);
        }
    }
    if removals.len() > 1 {
        sections.push(format!(
            "removed:\n{}",
            table(&removals, &[false, true, true, true, true])
        ));
    }
    sections.join("\n")
}

/// `policy NAME version N: apply by ACTOR at TIME`, and what the version enforces.
fn status_header(name: &str, policy: Option<&VersionView>) -> String {
    let Some(p) = policy else {
        return format!("policy {name}: no version stored\n");
    };
    let forced = if p.forced { " (forced)" } else { "" };
    let restores = p
        .restores
        .map(|r| format!(" of version {r}"))
        .unwrap_or_default();
    let mut out = format!(
        "policy {} version {}: {}{restores} by {} at {}{forced}\n",
        printable(&p.name, usize::MAX),
        p.version,
        dash(&p.action),
        dash(&printable(&p.actor, usize::MAX)),
        p.time_cell(),
    );
    if let Some(adj) = p.oom_score_adj {
        out.push_str(&format!(
            "oom_score_adj {adj}; target: {}; match: {}\n",
            dash(&printable(&p.target, usize::MAX)),
            dash(&printable(&p.matcher, usize::MAX)),
        ));
    }
    out
}

/// `2026-11-25T22:09:03Z (1m ago)`, or `-` for never.
fn reported_cell(reported_ms: i64, now_ms: i64) -> String {
    match rfc3339(reported_ms) {
        Some(time) => format!("{time} ({})", age(now_ms - reported_ms)),
        None => "-".into(),
    }
}

/// An age in the largest whole unit: `12s ago`, `3m ago`, `5h ago`, `2d ago`. A time ahead of
/// this host's clock (clock skew) is `0s ago`: its size is not this table's news.
fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{version, T0};
    use crate::golden;

    #[test]
    fn ages_in_the_largest_whole_unit() {
        assert_eq!(age(0), "0s ago");
        assert_eq!(age(-5_000), "0s ago");
        assert_eq!(age(59_999), "59s ago");
        assert_eq!(age(60_000), "1m ago");
        assert_eq!(age(3_600_000 * 5 + 1), "5h ago");
        assert_eq!(age(86_400_000 * 2), "2d ago");
    }

    fn host_status(name: &str, state: &str, reported_ms: i64) -> HostPolicyStatus {
        HostPolicyStatus {
            host_id: format!("id-{name}"),
            hostname: name.into(),
            cluster: "prod".into(),
            connected: true,
            state: state.into(),
            reported_ms,
            status: None,
            removal: None,
        }
    }

    #[test]
    fn status_table_has_hosts_failures_processes_and_removals() {
        let mut web1 = host_status("web-1", "enforced", T0 - 60_000);
        web1.status = Some(PolicyHostStatus {
            name: "protect-sshd".into(),
            version: 3,
            matched: 2,
            set: 1,
            failed: vec![PolicyFailure {
                pid: 901,
                reason: "permission denied".into(),
            }],
            processes: vec![
                PolicyProcess {
                    pid: 812,
                    comm: "sshd".into(),
                    oom_score_adj: -1000,
                    original: 0,
                },
                PolicyProcess {
                    pid: 901,
                    comm: "sshd".into(),
                    oom_score_adj: 0,
                    original: 0,
                },
            ],
        });
        let web3 = host_status("web-3", "pending", 0);
        let mut db1 = host_status("db-1", "removed", T0 - 7_200_000);
        db1.removal = Some(PolicyRemoval {
            name: "protect-sshd".into(),
            version: 2,
            restored: 1,
            handed_over: 1,
            failed: Vec::new(),
        });
        let report = PolicyStatusReport {
            policy: Some(version("protect-sshd", 3, "apply")),
            hosts: vec![web3, web1, db1],
        };
        golden::check(
            "policy-status-table.txt",
            &render("protect-sshd", &report, OutputFormat::Table, T0),
        );
        golden::check(
            "policy-status.csv",
            &render("protect-sshd", &report, OutputFormat::Csv, T0),
        );
        let text = render("protect-sshd", &report, OutputFormat::Json, T0);
        golden::check("policy-status.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["policy"]["name"], "protect-sshd");
        assert_eq!(
            value["hosts"][1]["status"]["failed"][0]["reason"],
            "permission denied"
        );
        assert_eq!(value["hosts"][1]["status"]["processes"][0]["original"], 0);
        assert_eq!(value["hosts"][0]["removal"]["handed_over"], 1);
        assert_eq!(value["hosts"][2]["status"], serde_json::Value::Null);
        assert_eq!(value["hosts"][2]["reported"], serde_json::Value::Null);
    }

    #[test]
    fn status_of_a_policy_the_answer_lacks() {
        let report = PolicyStatusReport::default();
        golden::check(
            "policy-status-no-version-table.txt",
            &render("p", &report, OutputFormat::Table, T0),
        );
    }
}
