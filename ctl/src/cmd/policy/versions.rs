//! `fleetctl policy list [--cluster C]` and `fleetctl policy history NAME`: stored versions
//! (`Policies.ListPolicies`, `Policies.PolicyHistory`).
//!
//! Rows keyed [`POLICY_KEYS`] (JSON adds `document`); the tables are
//! `NAME VERSION OOM_SCORE_ADJ TARGET MATCH CHANGED_BY CHANGED` (by name) and
//! `VERSION ACTION ADJ ACTOR TIME FORCED RESTORES` (oldest first).

use anyhow::Result;
use fleet_proto::v1::{ListPoliciesRequest, PolicyVersion};

use super::{policy_name, unknown, PolicyListArgs, VersionView, POLICY_KEYS};
use crate::cmd::Context;
use crate::output::{csv_line, dash, header, json, printable, table, OutputFormat};
use crate::Output;

/// The widest target or match description a table prints; JSON and CSV carry it whole.
pub const DESCRIPTION_WIDTH: usize = 40;

/// `policy list`: the current version of every policy (of `--cluster`).
pub(super) async fn list(args: PolicyListArgs, ctx: &Context) -> Result<Output> {
    let cluster = args.cluster.unwrap_or_default();
    let request = ListPoliciesRequest {
        cluster: cluster.clone(),
    };
    let collector = ctx.connect().await?;
    let policies = collector
        .policies("ListPolicies", async |c| c.list_policies(request).await)
        .await?
        .policies;
    let notice = (policies.is_empty() && ctx.format == OutputFormat::Table).then(|| match cluster
        .as_str()
    {
        "" => "no policies".to_owned(),
        cluster => format!("no policies target cluster {cluster}"),
    });
    Ok(Output::print(render_list(&policies, ctx.format)).with_notice(notice))
}

/// `policy history NAME`: every version, oldest first.
///
/// # Errors
///
/// `no policy named NAME` for an unknown policy, else as the collector says.
pub(super) async fn history(name: &str, ctx: &Context) -> Result<Output> {
    let collector = ctx.connect().await?;
    let versions = collector
        .policies("PolicyHistory", async |c| {
            c.policy_history(policy_name(name)).await
        })
        .await
        .map_err(unknown(name))?
        .versions;
    let notice = (versions.is_empty() && ctx.format == OutputFormat::Table)
        .then(|| format!("policy {name} has no stored versions"));
    Ok(Output::print(render_history(&versions, ctx.format)).with_notice(notice))
}

/// Renders `fleetctl policy list`, by name: `NAME VERSION OOM_SCORE_ADJ TARGET MATCH CHANGED_BY
/// CHANGED`.
pub fn render_list(policies: &[PolicyVersion], format: OutputFormat) -> String {
    let mut views: Vec<VersionView> = policies.iter().map(VersionView::new).collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => versions_csv(&views),
        OutputFormat::Table => {
            if views.is_empty() {
                return String::new();
            }
            let mut rows = vec![header(&[
                "NAME",
                "VERSION",
                "OOM_SCORE_ADJ",
                "TARGET",
                "MATCH",
                "CHANGED_BY",
                "CHANGED",
            ])];
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
pub fn render_history(versions: &[PolicyVersion], format: OutputFormat) -> String {
    let mut views: Vec<VersionView> = versions.iter().map(VersionView::new).collect();
    views.sort_by_key(|v| v.version);
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => versions_csv(&views),
        OutputFormat::Table => {
            if views.is_empty() {
                return String::new();
            }
            let mut rows = vec![header(&[
                "VERSION", "ACTION", "ADJ", "ACTOR", "TIME", "FORCED", "RESTORES",
            ])];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::{version, T0};
    use crate::golden;

    #[test]
    fn list_and_history_tables() {
        let mut deleted = version("old", 4, "delete");
        deleted.time_ms = T0 - 86_400_000;
        let list = [version("protect-sshd", 3, "apply"), deleted];
        golden::check(
            "policy-list-table.txt",
            &render_list(&list, OutputFormat::Table),
        );
        golden::check("policy-list.json", &render_list(&list, OutputFormat::Json));
        assert_eq!(render_list(&[], OutputFormat::Table), "");
        golden::check("policy-list.csv", &render_list(&list, OutputFormat::Csv));

        let mut rollback = version("p", 3, "rollback");
        rollback.restores = 1;
        rollback.forced = true;
        let history = [rollback, version("p", 1, "apply"), version("p", 2, "apply")];
        golden::check(
            "policy-history-table.txt",
            &render_history(&history, OutputFormat::Table),
        );
        golden::check(
            "policy-history.csv",
            &render_history(&history, OutputFormat::Csv),
        );
    }
}
