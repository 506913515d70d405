//! `fleetctl policy apply|rollback|delete`: a change, and the collector's answer to it.
//!
//! The table is a headline (`dry run: nothing changed`, `policy NAME version N applied by
//! ACTOR`, ...), then the plan, one row per planned change and one per targeted host without
//! any, then the refusals:
//!
//! ```text
//! policy protect-sshd version 3 applied by alice@ops-1
//!
//! HOST    PID   COMM                    FROM      TO
//! db-1    -     (no process list yet)
//! web-1   812   sshd                       0   -1000
//! web-2   -     (nothing to change)
//!
//! not connected (they get the change when they reconnect): db-1
//! ```
//!
//! JSON is one object keyed [`CHANGE_KEYS`]; CSV one row per planned change, per host without
//! one and per refusal, keyed [`PLAN_KEYS`]. For JSON and CSV the headline (CSV) and a refusal
//! (both) also go to stderr, and so do the risks a forced change was applied over.
//!
//! `apply` runs the safety check that needs no host (`fleet_policy::check_policy`: a value below
//! 0 on a match that rests on claims alone) here too: without `--force` (and outside a dry run)
//! such a document is refused as the collector would refuse it, and nothing is sent. A refusal
//! that names no host reads `(policy)` in the HOST column.

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use fleet_proto::v1::{ApplyPolicyRequest, HostPlan, PolicyChange, PolicyRefusal};
use serde::Serialize;

use super::{as_actor, host_key, policy_name, unknown, PolicyApplyArgs, VersionView};
use crate::cmd::Context;
use crate::output::{
    csv_line, dash, header, host_name, json, nonzero_rfc3339_ms, printable, table, OutputFormat,
};
use crate::Output;

/// `policy apply`: the file checked here, then sent as the operator.
///
/// # Errors
///
/// An unreadable or invalid policy file (before anything is contacted), an unreachable
/// collector, a gRPC status, or an answer that is none of a stored version, a dry run and a
/// refusal.
pub(super) async fn apply(args: &PolicyApplyArgs, ctx: &Context) -> Result<Output> {
    let (request, policy) = apply_request(args)?;
    if !args.dry_run && !args.force {
        if let Some(refusal) = local_refusal(&policy) {
            let change = PolicyChange {
                refusals: vec![refusal],
                ..PolicyChange::default()
            };
            return change_output("ApplyPolicy", &change, ctx.format, true);
        }
    }
    let collector = ctx.connect().await?;
    let change = collector
        .policies("ApplyPolicy", async |c| {
            c.apply_policy(as_actor(request)).await
        })
        .await?;
    change_output("ApplyPolicy", &change, ctx.format, !args.force)
}

/// `policy rollback NAME`, as the operator.
///
/// # Errors
///
/// `no policy named NAME` for an unknown policy, else as [`apply`].
pub(super) async fn rollback(name: &str, ctx: &Context) -> Result<Output> {
    let collector = ctx.connect().await?;
    let change = collector
        .policies("RollbackPolicy", async |c| {
            c.rollback_policy(as_actor(policy_name(name))).await
        })
        .await
        .map_err(unknown(name))?;
    // Neither rollback nor delete has --force: a refusal is final.
    change_output("RollbackPolicy", &change, ctx.format, false)
}

/// `policy delete NAME`, as the operator.
///
/// # Errors
///
/// `no policy named NAME` for an unknown policy, else as [`apply`].
pub(super) async fn delete(name: &str, ctx: &Context) -> Result<Output> {
    let collector = ctx.connect().await?;
    let change = collector
        .policies("DeletePolicy", async |c| {
            c.delete_policy(as_actor(policy_name(name))).await
        })
        .await
        .map_err(unknown(name))?;
    change_output("DeletePolicy", &change, ctx.format, false)
}

/// The request `policy apply` sends: the file's text as written (the collector parses it again
/// and stores it), with the file name as its origin; and the policy as parsed here.
///
/// # Errors
///
/// An unreadable file, or a document `fleet_policy::parse_policy` refuses (naming the file and
/// the field).
fn apply_request(args: &PolicyApplyArgs) -> Result<(ApplyPolicyRequest, fleet_policy::Policy)> {
    let origin = args.file.display().to_string();
    let document = read_policy_file(&args.file, &origin)?;
    let policy = fleet_policy::parse_policy(&document, &origin)?;
    let request = ApplyPolicyRequest {
        document,
        origin,
        cluster: args.cluster.clone().unwrap_or_default(),
        dry_run: args.dry_run,
        force: args.force,
    };
    Ok((request, policy))
}

/// The refusal of the policy itself, as the collector words it (`fleet_policy::check_policy`).
pub(crate) fn local_refusal(policy: &fleet_policy::Policy) -> Option<PolicyRefusal> {
    fleet_policy::check_policy(policy).map(|r| PolicyRefusal {
        kind: r.kind.as_str().to_owned(),
        reason: r.reason,
        ..PolicyRefusal::default()
    })
}

/// Reads a policy file, at most one byte past `fleet_policy::MAX_DOCUMENT_BYTES`: a bigger file
/// is refused here, naming the limit (as the collector would refuse it), and never read whole.
fn read_policy_file(path: &Path, origin: &str) -> Result<String> {
    use std::io::Read;
    let cannot = || format!("cannot read policy file {origin}");
    let file = std::fs::File::open(path).with_context(cannot)?;
    let cap = fleet_policy::MAX_DOCUMENT_BYTES;
    let mut bytes = Vec::new();
    (&file)
        .take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(cannot)?;
    if bytes.len() > cap {
        let size = file.metadata().map_or(bytes.len(), |m| m.len() as usize);
        return Err(fleet_policy::PolicyError::TooLarge {
            origin: origin.to_owned(),
            bytes: size,
        }
        .into());
    }
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        .with_context(cannot)
}

/// The answer to a change as fleetctl prints it. The table says everything on stdout; JSON says
/// it in `outcome`; for JSON and CSV the headline (CSV) and a refusal (both) also go to stderr.
/// A refusal fails the command.
fn change_output(
    rpc: &str,
    change: &PolicyChange,
    format: OutputFormat,
    force_hint: bool,
) -> Result<Output> {
    let Some(outcome) = ChangeOutcome::of(change) else {
        bail!("{rpc}: the collector answered with no stored version, no dry run and no refusal");
    };
    let notice = match (format, outcome) {
        (OutputFormat::Table, _) => None,
        (_, ChangeOutcome::Refused) => Some(refused_line(force_hint).to_owned()),
        (_, ChangeOutcome::Stored) if !change.refusals.is_empty() => {
            let headline = change_headline(change).filter(|_| format == OutputFormat::Csv);
            Some(
                headline
                    .into_iter()
                    .chain([forced_over(&change.refusals)])
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        (OutputFormat::Csv, _) => change_headline(change),
        (OutputFormat::Json, _) => None,
    };
    Ok(Output {
        stdout: render(change, format, force_hint),
        notice,
        failed: outcome == ChangeOutcome::Refused,
    })
}

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
    /// `too_many_disabled`, `largest_memory_user` or `weak_identity` (the policy itself: no
    /// host named).
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

/// What a change stored over refusals (`--force`) says on stderr for JSON and CSV: each risk it
/// was applied over, `applied over a refusal (--force): KIND: REASON` (the table shows them).
fn forced_over(refusals: &[PolicyRefusal]) -> String {
    refusals
        .iter()
        .map(|r| {
            let host = host_name(&r.hostname, &r.host_id);
            let on = if host.is_empty() {
                String::new()
            } else {
                format!(" on {}", printable(host, usize::MAX))
            };
            format!(
                "applied over a refusal (--force){on}: {}: {}",
                r.kind,
                printable(&r.reason, usize::MAX)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
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
pub fn render(change: &PolicyChange, format: OutputFormat, force_hint: bool) -> String {
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
    let mut rows = vec![header(&["HOST", "PID", "COMM", "FROM", "TO"])];
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
    let mut rows = vec![header(&["HOST", "KIND", "REASON"])];
    for r in refusals {
        let host = host_name(&r.hostname, &r.host_id);
        rows.push(vec![
            if host.is_empty() {
                "(policy)".to_owned()
            } else {
                printable(host, usize::MAX)
            },
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use fleet_proto::v1::{PlannedChange, PolicyVersion};

    use super::*;
    use crate::cmd::policy::POLICY_KEYS;
    use crate::cmd::testing::{version, T0};
    use crate::golden;

    fn apply_args(file: PathBuf) -> PolicyApplyArgs {
        PolicyApplyArgs {
            file,
            cluster: Some("staging".into()),
            dry_run: true,
            force: false,
        }
    }

    #[test]
    fn apply_request_sends_the_text_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("protect-sshd.toml");
        let text = "# keep sshd\nname = \"protect-sshd\"\noom_score_adj = -1000\n\
                    [target]\ncluster = \"prod\"\n[match]\nexe = \"/usr/sbin/sshd\"\n";
        std::fs::write(&path, text).unwrap();
        let (request, _) = apply_request(&apply_args(path.clone())).unwrap();
        assert_eq!(
            request,
            ApplyPolicyRequest {
                document: text.to_owned(),
                origin: path.display().to_string(),
                cluster: "staging".into(),
                dry_run: true,
                force: false,
            }
        );
    }

    #[test]
    fn apply_request_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(
            &path,
            "name: p\ntarget: {}\nmatch: {comm: sshd}\noom_score_adj: 2000\n",
        )
        .unwrap();
        let err = apply_request(&apply_args(path.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: `oom_score_adj`: 2000 is out of range -1000..=1000",
                path.display()
            )
        );
        let missing = dir.path().join("missing.yaml");
        let err = apply_request(&apply_args(missing.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read policy file {}", missing.display())
        );
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
        golden::check(
            "policy-apply-dry-run-table.txt",
            &render(&change, OutputFormat::Table, true),
        );
        let csv = render(&change, OutputFormat::Csv, true);
        golden::check("policy-apply-dry-run.csv", &csv);
        golden::check(
            "policy-apply-dry-run.json",
            &render(&change, OutputFormat::Json, true),
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
        let text = render(&change, OutputFormat::Json, true);
        golden::check("policy-apply.json", &text);
        golden::check(
            "policy-apply-table.txt",
            &render(&change, OutputFormat::Table, true),
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

    /// A value below 0 on claims alone: refused here before anything is sent (as the collector
    /// would), shown against `(policy)`; forced, every format names the risk it was applied
    /// over.
    #[test]
    fn a_weak_identity_is_refused_here_and_named_when_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weak.yaml");
        std::fs::write(
            &path,
            "name: p\ntarget: {}\nmatch: {comm: postgres, user: postgres}\noom_score_adj: -900\n",
        )
        .unwrap();
        let (_, policy) = apply_request(&apply_args(path)).unwrap();
        let weak = local_refusal(&policy).expect("refused");
        assert_eq!(weak.kind, "weak_identity");
        assert_eq!((weak.host_id.as_str(), weak.hostname.as_str()), ("", ""));
        assert!(
            weak.reason
                .starts_with("would set -900 on processes matched only by comm and user,"),
            "{}",
            weak.reason
        );
        let refused = PolicyChange {
            refusals: vec![weak.clone()],
            ..PolicyChange::default()
        };
        let out = change_output("ApplyPolicy", &refused, OutputFormat::Table, true).unwrap();
        assert!(out.failed);
        golden::check("policy-apply-weak-refused-table.txt", &out.stdout);

        let mut stored = version("p", 3, "apply");
        stored.forced = true;
        let forced = PolicyChange {
            policy: Some(stored),
            hosts: vec![plan("web-1", "a1", T0, &[(900, "postgres", 0, -900)])],
            refusals: vec![weak],
            ..PolicyChange::default()
        };
        let out = change_output("ApplyPolicy", &forced, OutputFormat::Table, false).unwrap();
        assert!(!out.failed && out.notice.is_none());
        golden::check("policy-apply-weak-forced-table.txt", &out.stdout);
        let out = change_output("ApplyPolicy", &forced, OutputFormat::Json, false).unwrap();
        let notice = out.notice.unwrap();
        assert!(
            notice.starts_with(
                "applied over a refusal (--force): weak_identity: would set -900 on processes \
                 matched only by comm and user, which any process can claim"
            ),
            "{notice}"
        );
        let out = change_output("ApplyPolicy", &forced, OutputFormat::Csv, false).unwrap();
        let notice = out.notice.unwrap();
        let lines: Vec<&str> = notice.lines().collect();
        assert_eq!(
            lines[0],
            "policy p version 3 applied by alice@ops-1 (forced)"
        );
        assert!(lines[1].starts_with("applied over a refusal (--force): weak_identity: "));
        // A host's refusal names the host.
        assert_eq!(
            forced_over(&[refusal()]),
            "applied over a refusal (--force) on web-1: largest_memory_user: sshd (pid 812) \
             uses the most memory on web-1"
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
        golden::check(
            "policy-apply-refused-table.txt",
            &render(&refused, OutputFormat::Table, true),
        );
        assert_eq!(ChangeOutcome::of(&PolicyChange::default()), None);
    }
}
