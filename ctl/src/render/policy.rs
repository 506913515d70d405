//! Rendering of `fleetctl policy ...`: pure functions from the `Policies` answers to text.
//!
//! - A change (`apply`, `rollback`, `delete`): the table is a headline (`dry run: nothing
//!   changed`, `policy NAME version N applied by ACTOR`, ...), then the plan, one row per planned
//!   change and one per targeted host without any, then the refusals:
//!
//!   ```text
//!   policy protect-sshd version 3 applied by alice@ops-1
//!
//!   HOST    PID   COMM                    FROM      TO
//!   db-1    -     (no process list yet)
//!   web-1   812   sshd                       0   -1000
//!   web-2   -     (nothing to change)
//!
//!   not connected (they get the change when they reconnect): db-1
//!   ```
//!
//!   JSON is one object keyed [`CHANGE_KEYS`]; CSV one row per planned change, per host without
//!   one and per refusal, keyed [`PLAN_KEYS`].
//! - `list` and `history`: rows keyed [`POLICY_KEYS`] (JSON adds `document`); tables
//!   `NAME VERSION OOM_SCORE_ADJ TARGET MATCH CHANGED_BY CHANGED` and
//!   `VERSION ACTION ADJ ACTOR TIME FORCED RESTORES`.
//! - `status`: JSON `{policy, hosts}`, each host with what its agent last reported (`status`)
//!   and, once removed, its removal report (`removal`); CSV one row per host keyed
//!   [`STATUS_KEYS`]; the table a header line, the hosts, then the failures, the processes and
//!   the removals.
//!
//! Times are RFC 3339 UTC strings (`null` for none), as in the other commands; tables add the
//! age of a report.

use serde::Serialize;

use fleet_proto::v1::{
    HostPlan, HostPolicyStatus, PolicyChange, PolicyFailure, PolicyHostStatus, PolicyProcess,
    PolicyRefusal, PolicyRemoval, PolicyStatusReport, PolicyVersion,
};

use super::{csv_line, dash, json, nonzero_rfc3339_ms, printable, rfc3339, table, OutputFormat};

/// The widest target or match description a table prints; JSON and CSV carry it whole.
pub const DESCRIPTION_WIDTH: usize = 40;

/// The keys of a policy version in `list` and `history` rows, in order (JSON adds `document`).
pub const POLICY_KEYS: [&str; 10] = [
    "name",
    "version",
    "action",
    "oom_score_adj",
    "target",
    "match",
    "actor",
    "time",
    "forced",
    "restores",
];

/// The keys of the JSON object of a change (`apply`, `rollback`, `delete`), in order.
pub const CHANGE_KEYS: [&str; 5] = ["outcome", "dry_run", "policy", "hosts", "refusals"];

/// The keys of a change's CSV rows, in order. `row` is `change`, `no_change`, `no_process_list`
/// or `refusal`.
pub const PLAN_KEYS: [&str; 12] = [
    "row",
    "host_id",
    "hostname",
    "cluster",
    "connected",
    "processes_time",
    "pid",
    "comm",
    "from",
    "to",
    "refusal",
    "reason",
];

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

// ---------------------------------------------------------------------------------------------
// views: what -o json shows; the field order is the key order

/// One stored version of a policy.
#[derive(Debug, Serialize)]
struct VersionView {
    name: String,
    version: u64,
    /// `apply`, `rollback` or `delete`.
    action: String,
    /// `None` after a delete: no value is enforced.
    oom_score_adj: Option<i32>,
    target: String,
    #[serde(rename = "match")]
    matcher: String,
    actor: String,
    time: Option<String>,
    forced: bool,
    /// A rollback's restored version; `None` for other actions.
    restores: Option<u64>,
    /// The document in force after this change; empty after a delete.
    document: String,
    #[serde(skip)]
    time_ms: i64,
}

impl VersionView {
    fn new(v: &PolicyVersion) -> Self {
        VersionView {
            name: v.name.clone(),
            version: v.version,
            action: v.action.clone(),
            oom_score_adj: (v.action != "delete").then_some(v.oom_score_adj),
            target: v.target.clone(),
            matcher: v.r#match.clone(),
            actor: v.actor.clone(),
            time: nonzero_rfc3339_ms(v.time_ms),
            forced: v.forced,
            restores: (v.restores != 0).then_some(v.restores),
            document: v.document.clone(),
            time_ms: v.time_ms,
        }
    }

    fn csv_fields(&self) -> [String; 10] {
        [
            self.name.clone(),
            self.version.to_string(),
            self.action.clone(),
            opt(self.oom_score_adj),
            self.target.clone(),
            self.matcher.clone(),
            self.actor.clone(),
            self.time.clone().unwrap_or_default(),
            self.forced.to_string(),
            opt(self.restores),
        ]
    }

    fn adj_cell(&self) -> String {
        self.oom_score_adj
            .map_or_else(|| "-".to_owned(), |a| a.to_string())
    }

    fn time_cell(&self) -> String {
        rfc3339(self.time_ms).unwrap_or_else(|| "-".into())
    }
}

/// The answer to a change.
#[derive(Debug, Serialize)]
struct ChangeView {
    /// `stored`, `dry_run` or `refused`.
    outcome: &'static str,
    dry_run: bool,
    policy: Option<VersionView>,
    hosts: Vec<HostPlanView>,
    refusals: Vec<RefusalView>,
}

#[derive(Debug, Serialize)]
struct HostPlanView {
    host_id: String,
    hostname: String,
    cluster: String,
    connected: bool,
    /// When the process list the plan is computed from was taken; `None`: no list yet.
    processes_time: Option<String>,
    changes: Vec<ChangeRowView>,
    #[serde(skip)]
    processes_time_ms: i64,
}

#[derive(Debug, Serialize)]
struct ChangeRowView {
    pid: u32,
    comm: String,
    from: i32,
    to: i32,
}

#[derive(Debug, Serialize)]
struct RefusalView {
    host_id: String,
    hostname: String,
    /// `too_many_disabled` or `largest_memory_user`.
    kind: String,
    reason: String,
}

impl HostPlanView {
    fn new(h: &HostPlan) -> Self {
        let mut changes: Vec<ChangeRowView> = h
            .changes
            .iter()
            .map(|c| ChangeRowView {
                pid: c.pid,
                comm: c.comm.clone(),
                from: c.from,
                to: c.to,
            })
            .collect();
        changes.sort_by_key(|c| c.pid);
        HostPlanView {
            host_id: h.host_id.clone(),
            hostname: h.hostname.clone(),
            cluster: h.cluster.clone(),
            connected: h.connected,
            processes_time: nonzero_rfc3339_ms(h.processes_time_ms),
            changes,
            processes_time_ms: h.processes_time_ms,
        }
    }

    /// What a host without planned changes says instead: (`row` value, table text).
    fn without_changes(&self) -> (&'static str, &'static str) {
        if self.processes_time_ms == 0 {
            ("no_process_list", "(no process list yet)")
        } else {
            ("no_change", "(nothing to change)")
        }
    }
}

impl RefusalView {
    fn new(r: &PolicyRefusal) -> Self {
        RefusalView {
            host_id: r.host_id.clone(),
            hostname: r.hostname.clone(),
            kind: r.kind.clone(),
            reason: r.reason.clone(),
        }
    }
}

/// What the collector did with a change request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// A new version was stored (and pushed to the agents).
    Stored,
    /// Only the plan: nothing was stored.
    DryRun,
    /// The safety checks refused it: nothing was stored.
    Refused,
    /// The same document is already in force: nothing was stored.
    Unchanged,
}

impl ChangeOutcome {
    /// What `change` says happened; `None` for an answer that is none of the three (no stored
    /// version, not a dry run and no refusal).
    pub fn of(change: &PolicyChange) -> Option<Self> {
        if change.dry_run {
            Some(ChangeOutcome::DryRun)
        } else if change.unchanged && change.policy.is_some() {
            Some(ChangeOutcome::Unchanged)
        } else if change.policy.is_some() {
            Some(ChangeOutcome::Stored)
        } else if !change.refusals.is_empty() {
            Some(ChangeOutcome::Refused)
        } else {
            None
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ChangeOutcome::Stored => "stored",
            ChangeOutcome::DryRun => "dry_run",
            ChangeOutcome::Refused => "refused",
            ChangeOutcome::Unchanged => "unchanged",
        }
    }
}

/// The one line that says what a change did: `dry run: nothing changed`,
/// `policy NAME version N applied by ACTOR`, `policy NAME rolled back to version K as version
/// N`, `policy NAME deleted (version N); agents restore the original values`; `None` for a
/// refusal (see [`refused_line`]).
pub fn change_headline(change: &PolicyChange) -> Option<String> {
    match ChangeOutcome::of(change)? {
        ChangeOutcome::DryRun => Some("dry run: nothing changed".to_owned()),
        ChangeOutcome::Refused => None,
        ChangeOutcome::Unchanged => {
            let p = change.policy.as_ref()?;
            Some(format!(
                "policy {} version {} is already in force (applied by {}); nothing changed",
                p.name,
                p.version,
                dash(&p.actor)
            ))
        }
        ChangeOutcome::Stored => {
            let p = change.policy.as_ref()?;
            let forced = if p.forced { " (forced)" } else { "" };
            Some(match p.action.as_str() {
                "rollback" => format!(
                    "policy {} rolled back to version {} as version {}{forced}",
                    p.name, p.restores, p.version
                ),
                "delete" => format!(
                    "policy {} deleted (version {}); agents restore the original values",
                    p.name, p.version
                ),
                _ => format!(
                    "policy {} version {} applied by {}{forced}",
                    p.name,
                    p.version,
                    dash(&p.actor)
                ),
            })
        }
    }
}

/// What a refused change says, last: the hint names `--force` where the command has it.
pub fn refused_line(force_hint: bool) -> &'static str {
    if force_hint {
        "refused: nothing was changed; use --force to apply anyway"
    } else {
        "refused: nothing was changed"
    }
}

/// Renders the answer to `policy apply`, `rollback` or `delete`. The table starts with
/// [`change_headline`] and, for a refusal, ends with [`refused_line`]; JSON and CSV carry neither
/// (JSON has `outcome`), so the caller says them on stderr.
pub fn render_policy_change(
    change: &PolicyChange,
    format: OutputFormat,
    force_hint: bool,
) -> String {
    let outcome = ChangeOutcome::of(change);
    let mut hosts: Vec<HostPlanView> = change.hosts.iter().map(HostPlanView::new).collect();
    hosts.sort_by(|a, b| host_key(&a.hostname, &a.host_id).cmp(&host_key(&b.hostname, &b.host_id)));
    let refusals: Vec<RefusalView> = change.refusals.iter().map(RefusalView::new).collect();
    match format {
        OutputFormat::Json => json(&ChangeView {
            outcome: outcome.map_or("unknown", ChangeOutcome::as_str),
            dry_run: change.dry_run,
            policy: change.policy.as_ref().map(VersionView::new),
            hosts,
            refusals,
        }),
        OutputFormat::Csv => plan_csv(&hosts, &refusals),
        OutputFormat::Table => {
            let mut sections = Vec::new();
            if let Some(headline) = change_headline(change) {
                sections.push(format!("{headline}\n"));
            }
            if !hosts.is_empty() {
                sections.push(plan_table(&hosts));
            } else if outcome != Some(ChangeOutcome::Refused) {
                sections.push("no host is targeted\n".to_owned());
            }
            let offline: Vec<&str> = hosts
                .iter()
                .filter(|h| !h.connected)
                .map(|h| host_name(&h.hostname, &h.host_id))
                .collect();
            if !offline.is_empty() {
                sections.push(format!(
                    "not connected (they get the change when they reconnect): {}\n",
                    offline.join(", ")
                ));
            }
            if !refusals.is_empty() {
                let title = match outcome {
                    Some(ChangeOutcome::DryRun) => "apply would refuse this without --force:",
                    Some(ChangeOutcome::Stored) => "applied over these refusals (--force):",
                    _ => "refused by the safety checks:",
                };
                sections.push(format!("{title}\n{}", refusal_table(&refusals)));
            }
            if outcome == Some(ChangeOutcome::Refused) {
                sections.push(format!("{}\n", refused_line(force_hint)));
            }
            sections.join("\n")
        }
    }
}

fn plan_table(hosts: &[HostPlanView]) -> String {
    let mut rows = vec![["HOST", "PID", "COMM", "FROM", "TO"]
        .map(String::from)
        .to_vec()];
    for h in hosts {
        let host = printable(host_name(&h.hostname, &h.host_id), usize::MAX);
        if h.changes.is_empty() {
            let (_, text) = h.without_changes();
            rows.push(vec![host.clone(), "-".into(), text.into()]);
        }
        for c in &h.changes {
            rows.push(vec![
                host.clone(),
                c.pid.to_string(),
                dash(&printable(&c.comm, usize::MAX)),
                c.from.to_string(),
                c.to.to_string(),
            ]);
        }
    }
    table(&rows, &[false, false, false, true, true])
}

fn refusal_table(refusals: &[RefusalView]) -> String {
    let mut rows = vec![["HOST", "KIND", "REASON"].map(String::from).to_vec()];
    for r in refusals {
        rows.push(vec![
            dash(&printable(host_name(&r.hostname, &r.host_id), usize::MAX)),
            dash(&r.kind),
            dash(&printable(&r.reason, usize::MAX)),
        ]);
    }
    table(&rows, &[false; 3])
}

fn plan_csv(hosts: &[HostPlanView], refusals: &[RefusalView]) -> String {
    let mut out = csv_line(PLAN_KEYS);
    for h in hosts {
        let host = |row: &str, pid: String, comm: &str, from: String, to: String| {
            csv_line([
                row,
                &h.host_id,
                &h.hostname,
                &h.cluster,
                &h.connected.to_string(),
                h.processes_time.as_deref().unwrap_or(""),
                &pid,
                comm,
                &from,
                &to,
                "",
                "",
            ])
        };
        if h.changes.is_empty() {
            let (row, _) = h.without_changes();
            out.push_str(&host(row, String::new(), "", String::new(), String::new()));
        }
        for c in &h.changes {
            out.push_str(&host(
                "change",
                c.pid.to_string(),
                &c.comm,
                c.from.to_string(),
                c.to.to_string(),
            ));
        }
    }
    for r in refusals {
        out.push_str(&csv_line([
            "refusal",
            &r.host_id,
            &r.hostname,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            &r.kind,
            &r.reason,
        ]));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// list and history

/// Renders `fleetctl policy list`, by name: `NAME VERSION OOM_SCORE_ADJ TARGET MATCH CHANGED_BY
/// CHANGED`.
pub fn render_policy_list(policies: &[PolicyVersion], format: OutputFormat) -> String {
    let mut views: Vec<VersionView> = policies.iter().map(VersionView::new).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => versions_csv(&views),
        OutputFormat::Table => {
            if views.is_empty() {
                return String::new();
            }
            let mut rows = vec![[
                "NAME",
                "VERSION",
                "OOM_SCORE_ADJ",
                "TARGET",
                "MATCH",
                "CHANGED_BY",
                "CHANGED",
            ]
            .map(String::from)
            .to_vec()];
            for v in &views {
                rows.push(vec![
                    printable(&v.name, usize::MAX),
                    v.version.to_string(),
                    v.adj_cell(),
                    dash(&printable(&v.target, DESCRIPTION_WIDTH)),
                    dash(&printable(&v.matcher, DESCRIPTION_WIDTH)),
                    dash(&printable(&v.actor, usize::MAX)),
                    v.time_cell(),
                ]);
            }
            table(&rows, &[false, true, true, false, false, false, false])
        }
    }
}

/// Renders `fleetctl policy history`, oldest version first: `VERSION ACTION ADJ ACTOR TIME
/// FORCED RESTORES`.
pub fn render_policy_history(versions: &[PolicyVersion], format: OutputFormat) -> String {
    let mut views: Vec<VersionView> = versions.iter().map(VersionView::new).collect();
    views.sort_by_key(|v| v.version);
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => versions_csv(&views),
        OutputFormat::Table => {
            if views.is_empty() {
                return String::new();
            }
            let mut rows = vec![[
                "VERSION", "ACTION", "ADJ", "ACTOR", "TIME", "FORCED", "RESTORES",
            ]
            .map(String::from)
            .to_vec()];
            for v in &views {
                rows.push(vec![
                    v.version.to_string(),
                    dash(&v.action),
                    v.adj_cell(),
                    dash(&printable(&v.actor, usize::MAX)),
                    v.time_cell(),
                    (if v.forced { "yes" } else { "no" }).to_owned(),
                    v.restores.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                ]);
            }
            table(&rows, &[true, false, true, false, false, false, true])
        }
    }
}

fn versions_csv(views: &[VersionView]) -> String {
    let mut out = csv_line(POLICY_KEYS);
    for v in views {
        out.push_str(&csv_line(v.csv_fields()));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// status

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
pub fn render_policy_status(
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
        let mut rows = vec![[
            "HOST", "CLUSTER", "STATE", "VERSION", "MATCHED", "SET", "FAILED", "REPORTED",
        ]
        .map(String::from)
        .to_vec()];
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

    let mut failures = vec![["HOST", "PID", "REASON"].map(String::from).to_vec()];
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

    let mut processes = vec![["HOST", "PID", "COMM", "OOM_SCORE_ADJ", "ORIGINAL"]
        .map(String::from)
        .to_vec()];
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

    let mut removals = vec![["HOST", "VERSION", "RESTORED", "HANDED_OVER", "FAILED"]
        .map(String::from)
        .to_vec()];
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

// ---------------------------------------------------------------------------------------------
// helpers

/// A host as tables name it: its hostname, or its id when it has none.
fn host_name<'a>(hostname: &'a str, host_id: &'a str) -> &'a str {
    if hostname.is_empty() {
        host_id
    } else {
        hostname
    }
}

fn host_key<'a>(hostname: &'a str, host_id: &'a str) -> (&'a str, &'a str) {
    (host_name(hostname, host_id), host_id)
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use fleet_proto::v1::PlannedChange;

    use super::*;

    /// 2026-11-25T22:10:03Z
    const T0: i64 = 1_795_644_603_000;

    fn version(name: &str, version: u64, action: &str) -> PolicyVersion {
        PolicyVersion {
            name: name.into(),
            version,
            action: action.into(),
            document: if action == "delete" {
                String::new()
            } else {
                format!("name: {name}\n")
            },
            actor: "alice@ops-1".into(),
            time_ms: T0,
            oom_score_adj: -1000,
            target: "cluster=prod".into(),
            r#match: "exe=/usr/sbin/sshd".into(),
            // Not forced, no restored version; and whatever a newer proto adds.
            ..PolicyVersion::default()
        }
    }

    fn plan(name: &str, id: &str, time_ms: i64, changes: &[(u32, &str, i32, i32)]) -> HostPlan {
        HostPlan {
            host_id: id.into(),
            hostname: name.into(),
            cluster: "prod".into(),
            connected: true,
            processes_time_ms: time_ms,
            changes: changes
                .iter()
                .map(|&(pid, comm, from, to)| PlannedChange {
                    pid,
                    comm: comm.into(),
                    from,
                    to,
                })
                .collect(),
        }
    }

    fn refusal() -> PolicyRefusal {
        PolicyRefusal {
            host_id: "a1".into(),
            hostname: "web-1".into(),
            kind: "largest_memory_user".into(),
            reason: "sshd (pid 812) uses the most memory on web-1".into(),
        }
    }

    #[test]
    fn ages_in_the_largest_whole_unit() {
        assert_eq!(age(0), "0s ago");
        assert_eq!(age(-5_000), "0s ago");
        assert_eq!(age(59_999), "59s ago");
        assert_eq!(age(60_000), "1m ago");
        assert_eq!(age(3_600_000 * 5 + 1), "5h ago");
        assert_eq!(age(86_400_000 * 2), "2d ago");
    }

    #[test]
    fn dry_run_table_lists_each_change_and_each_host_without_one() {
        let mut db = plan("db-1", "d1", 0, &[]);
        db.connected = false;
        let change = PolicyChange {
            policy: None,
            dry_run: true,
            hosts: vec![
                plan("web-2", "b2", T0, &[]),
                plan(
                    "web-1",
                    "a1",
                    T0,
                    &[(901, "sshd", 0, -1000), (812, "sshd", 0, -1000)],
                ),
                db,
            ],
            refusals: vec![refusal()],
            unchanged: false,
        };
        assert_eq!(ChangeOutcome::of(&change), Some(ChangeOutcome::DryRun));
        assert_eq!(
            render_policy_change(&change, OutputFormat::Table, true),
            "dry run: nothing changed\n\
             \n\
             HOST    PID   COMM                    FROM      TO\n\
             db-1    -     (no process list yet)\n\
             web-1   812   sshd                       0   -1000\n\
             web-1   901   sshd                       0   -1000\n\
             web-2   -     (nothing to change)\n\
             \n\
             not connected (they get the change when they reconnect): db-1\n\
             \n\
             apply would refuse this without --force:\n\
             HOST    KIND                  REASON\n\
             web-1   largest_memory_user   sshd (pid 812) uses the most memory on web-1\n"
        );
        crate::golden::check(
            "policy-apply-dry-run-table.txt",
            &render_policy_change(&change, OutputFormat::Table, true),
        );
        let csv = render_policy_change(&change, OutputFormat::Csv, true);
        crate::golden::check("policy-apply-dry-run.csv", &csv);
        crate::golden::check(
            "policy-apply-dry-run.json",
            &render_policy_change(&change, OutputFormat::Json, true),
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], PLAN_KEYS.join(","));
        assert_eq!(lines[1], "no_process_list,d1,db-1,prod,false,,,,,,,");
        assert_eq!(
            lines[2],
            "change,a1,web-1,prod,true,2026-11-25T22:10:03.000Z,812,sshd,0,-1000,,"
        );
        assert_eq!(
            lines[4],
            "no_change,b2,web-2,prod,true,2026-11-25T22:10:03.000Z,,,,,,"
        );
        assert_eq!(
            lines[5],
            "refusal,a1,web-1,,,,,,,,largest_memory_user,sshd (pid 812) uses the most memory on web-1"
        );
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn change_json_has_the_contract_keys() {
        let change = PolicyChange {
            policy: Some(version("protect-sshd", 3, "apply")),
            dry_run: false,
            hosts: vec![plan("web-1", "a1", T0, &[(812, "sshd", 0, -1000)])],
            refusals: Vec::new(),
            unchanged: false,
        };
        let text = render_policy_change(&change, OutputFormat::Json, true);
        crate::golden::check("policy-apply.json", &text);
        crate::golden::check(
            "policy-apply-table.txt",
            &render_policy_change(&change, OutputFormat::Table, true),
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut want = CHANGE_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(value["outcome"], "stored");
        assert_eq!(value["policy"]["version"], 3);
        assert_eq!(value["policy"]["time"], "2026-11-25T22:10:03.000Z");
        assert_eq!(value["policy"]["restores"], serde_json::Value::Null);
        assert_eq!(value["policy"]["match"], "exe=/usr/sbin/sshd");
        let mut policy_keys: Vec<&str> = value["policy"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        policy_keys.sort_unstable();
        let mut want: Vec<&str> = POLICY_KEYS.iter().copied().chain(["document"]).collect();
        want.sort_unstable();
        assert_eq!(policy_keys, want);
        assert_eq!(value["hosts"][0]["changes"][0]["to"], -1000);
        assert_eq!(
            value["hosts"][0]["processes_time"],
            "2026-11-25T22:10:03.000Z"
        );
    }

    #[test]
    fn headlines_of_each_action() {
        let stored = |p: PolicyVersion| PolicyChange {
            policy: Some(p),
            ..PolicyChange::default()
        };
        let mut forced = version("p", 3, "apply");
        forced.forced = true;
        assert_eq!(
            change_headline(&stored(forced)).as_deref(),
            Some("policy p version 3 applied by alice@ops-1 (forced)")
        );
        let mut rollback = version("p", 5, "rollback");
        rollback.restores = 2;
        assert_eq!(
            change_headline(&stored(rollback)).as_deref(),
            Some("policy p rolled back to version 2 as version 5")
        );
        assert_eq!(
            change_headline(&stored(version("p", 6, "delete"))).as_deref(),
            Some("policy p deleted (version 6); agents restore the original values")
        );
        let mut same = stored(version("p", 3, "apply"));
        same.unchanged = true;
        assert_eq!(ChangeOutcome::of(&same), Some(ChangeOutcome::Unchanged));
        assert_eq!(
            change_headline(&same).as_deref(),
            Some(
                "policy p version 3 is already in force (applied by alice@ops-1); nothing changed"
            )
        );
        let refused = PolicyChange {
            refusals: vec![refusal()],
            ..PolicyChange::default()
        };
        assert_eq!(ChangeOutcome::of(&refused), Some(ChangeOutcome::Refused));
        assert_eq!(change_headline(&refused), None);
        crate::golden::check(
            "policy-apply-refused-table.txt",
            &render_policy_change(&refused, OutputFormat::Table, true),
        );
        assert_eq!(
            render_policy_change(&refused, OutputFormat::Table, true),
            "refused by the safety checks:\n\
             HOST    KIND                  REASON\n\
             web-1   largest_memory_user   sshd (pid 812) uses the most memory on web-1\n\
             \n\
             refused: nothing was changed; use --force to apply anyway\n"
        );
        assert_eq!(ChangeOutcome::of(&PolicyChange::default()), None);
    }

    #[test]
    fn list_and_history_tables() {
        let mut deleted = version("old", 4, "delete");
        deleted.time_ms = T0 - 86_400_000;
        let list = [version("protect-sshd", 3, "apply"), deleted];
        assert_eq!(
            render_policy_list(&list, OutputFormat::Table),
            "NAME           VERSION   OOM_SCORE_ADJ   TARGET         MATCH                CHANGED_BY    CHANGED\n\
             old                  4               -   cluster=prod   exe=/usr/sbin/sshd   alice@ops-1   2026-11-24T22:10:03Z\n\
             protect-sshd         3           -1000   cluster=prod   exe=/usr/sbin/sshd   alice@ops-1   2026-11-25T22:10:03Z\n"
        );
        crate::golden::check(
            "policy-list-table.txt",
            &render_policy_list(&list, OutputFormat::Table),
        );
        crate::golden::check(
            "policy-list.json",
            &render_policy_list(&list, OutputFormat::Json),
        );
        assert_eq!(render_policy_list(&[], OutputFormat::Table), "");
        let csv = render_policy_list(&list, OutputFormat::Csv);
        crate::golden::check("policy-list.csv", &csv);
        assert_eq!(
            csv.lines().collect::<Vec<_>>(),
            [
                POLICY_KEYS.join(",").as_str(),
                "old,4,delete,,cluster=prod,exe=/usr/sbin/sshd,alice@ops-1,2026-11-24T22:10:03.000Z,false,",
                "protect-sshd,3,apply,-1000,cluster=prod,exe=/usr/sbin/sshd,alice@ops-1,2026-11-25T22:10:03.000Z,false,",
            ]
        );

        let mut rollback = version("p", 3, "rollback");
        rollback.restores = 1;
        rollback.forced = true;
        let history = [rollback, version("p", 1, "apply"), version("p", 2, "apply")];
        assert_eq!(
            render_policy_history(&history, OutputFormat::Table),
            "VERSION   ACTION       ADJ   ACTOR         TIME                   FORCED   RESTORES\n\
             \x20     1   apply      -1000   alice@ops-1   2026-11-25T22:10:03Z   no              -\n\
             \x20     2   apply      -1000   alice@ops-1   2026-11-25T22:10:03Z   no              -\n\
             \x20     3   rollback   -1000   alice@ops-1   2026-11-25T22:10:03Z   yes             1\n"
        );
        crate::golden::check(
            "policy-history-table.txt",
            &render_policy_history(&history, OutputFormat::Table),
        );
        crate::golden::check(
            "policy-history.csv",
            &render_policy_history(&history, OutputFormat::Csv),
        );
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
        assert_eq!(
            render_policy_status("protect-sshd", &report, OutputFormat::Table, T0),
            "policy protect-sshd version 3: apply by alice@ops-1 at 2026-11-25T22:10:03Z\n\
             oom_score_adj -1000; target: cluster=prod; match: exe=/usr/sbin/sshd\n\
             \n\
             HOST    CLUSTER   STATE      VERSION   MATCHED   SET   FAILED   REPORTED\n\
             db-1    prod      removed          2         -     -        0   2026-11-25T20:10:03Z (2h ago)\n\
             web-1   prod      enforced         3         2     1        1   2026-11-25T22:09:03Z (1m ago)\n\
             web-3   prod      pending          -         -     -        -   -\n\
             \n\
             failures:\n\
             HOST    PID   REASON\n\
             web-1   901   permission denied\n\
             \n\
             processes:\n\
             HOST    PID   COMM   OOM_SCORE_ADJ   ORIGINAL\n\
             web-1   812   sshd           -1000          0\n\
             web-1   901   sshd               0          0\n\
             \n\
             removed:\n\
             HOST   VERSION   RESTORED   HANDED_OVER   FAILED\n\
             db-1         2          1             1        0\n"
        );
        crate::golden::check(
            "policy-status-table.txt",
            &render_policy_status("protect-sshd", &report, OutputFormat::Table, T0),
        );
        let csv = render_policy_status("protect-sshd", &report, OutputFormat::Csv, T0);
        crate::golden::check("policy-status.csv", &csv);
        assert_eq!(
            csv.lines().collect::<Vec<_>>(),
            [
                STATUS_KEYS.join(",").as_str(),
                "id-db-1,db-1,prod,true,removed,2,,,0,2026-11-25T20:10:03.000Z,1,1",
                "id-web-1,web-1,prod,true,enforced,3,2,1,1,2026-11-25T22:09:03.000Z,,",
                "id-web-3,web-3,prod,true,pending,,,,,,,",
            ]
        );
        let text = render_policy_status("protect-sshd", &report, OutputFormat::Json, T0);
        crate::golden::check("policy-status.json", &text);
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
        assert_eq!(
            render_policy_status("p", &report, OutputFormat::Table, T0),
            "policy p: no version stored\n\nno host is targeted or has reported the policy\n"
        );
        crate::golden::check(
            "policy-status-no-version-table.txt",
            &render_policy_status("p", &report, OutputFormat::Table, T0),
        );
    }
}
