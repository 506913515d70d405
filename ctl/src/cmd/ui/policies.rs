//! `/policies`: each OOM policy with its versions and who made them (`fleetctl policy history`)
//! and where it stands on each host (`fleetctl policy status`), and a form to try a policy
//! document: a dry run first, then, confirmed, the same apply `fleetctl policy apply -f` makes.
//!
//! Applying takes two steps, so nothing changes by one click or by a page from elsewhere:
//!
//! 1. `POST /policies/dry-run` (`document`, `cluster`): the document is checked here as the CLI
//!    checks it, then sent with `dry_run`; the page shows the plan and any refusal. Without a
//!    refusal it also holds a confirmation form with a one-time token: 128 random bits, kept
//!    here with the very document and cluster of the dry run (for [`TOKEN_TTL`], at most
//!    [`MAX_PENDING`] at once).
//! 2. `POST /policies/apply` (`token`): applies what that dry run showed, without `--force`
//!    (the page offers no way over a refusal). A missing, unknown, used or expired token is a
//!    403 and nothing is sent: a cross-site form cannot know a token, which only the dry run's
//!    page ever held.
//!
//! Rolling a policy back (`fleetctl policy rollback`) and deleting it (`fleetctl policy
//! delete`) take two steps the same way: `POST /policies/confirm` (`name`, `action` =
//! `rollback` or `delete`) changes nothing and shows what the change will do with a confirmation
//! form holding a token for that very action on that very policy; `POST /policies/change`
//! (`token`) makes it. A token serves only its own kind of change (an apply's token does not
//! roll back). As in the CLI, neither has a `--force`: a refusal is final.
//!
//! The calls name the operator as the CLI does (`USER@HOSTNAME`, unless the certificate names
//! one). The collector's refusal of a certificate (a viewer's) is a 403 page with its message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use fleet_proto::v1::{ApplyPolicyRequest, ListPoliciesRequest, PolicyChange, PolicyVersion};
use futures::future::try_join_all;

use super::html::{e, page as layout, query_value};
use super::PageError;
use crate::client::Collector;
use crate::cmd::policy::{
    as_actor, local_refusal, policy_name, render_change, render_history, render_status,
};
use crate::output::OutputFormat;

/// How long a dry run's confirmation stays valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(600);
/// The most confirmations waiting at once; a new dry run beyond it forgets the oldest.
pub const MAX_PENDING: usize = 32;

/// What the origin of a document applied from the page reads in the policy's history.
const ORIGIN: &str = "fleetctl ui";

/// A change the page showed and awaits the operator's confirmation of.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// The document of a dry run, on a cluster (empty: the document's own target).
    Apply {
        document: String,
        cluster: String,
    },
    /// Back to the version in force before the current one.
    Rollback {
        name: String,
    },
    Delete {
        name: String,
    },
}

/// A change waiting for its confirmation.
#[derive(Debug)]
struct Pending {
    change: Change,
    at: Instant,
}

/// The dry runs waiting for confirmation, by token.
#[derive(Debug, Default)]
pub struct Confirmations(Mutex<HashMap<String, Pending>>);

impl Confirmations {
    /// A new token for `change`.
    fn issue(&self, change: Change) -> Result<String, PageError> {
        let token = random_token()?;
        let mut pending = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|_, p| p.at.elapsed() < TOKEN_TTL);
        while pending.len() >= MAX_PENDING {
            let oldest = pending
                .iter()
                .min_by_key(|(_, p)| p.at)
                .map(|(t, _)| t.clone());
            match oldest {
                Some(t) => pending.remove(&t),
                None => break,
            };
        }
        pending.insert(
            token.clone(),
            Pending {
                change,
                at: Instant::now(),
            },
        );
        Ok(token)
    }

    /// The change of `token`, once: a token is used up by its first use.
    fn take(&self, token: &str) -> Option<Change> {
        let mut pending = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending
            .remove(token)
            .filter(|p| p.at.elapsed() < TOKEN_TTL)
            .map(|p| p.change)
    }
}

/// 128 bits from the kernel's random source, as hex.
fn random_token() -> Result<String, PageError> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|err| PageError::Collector(format!("cannot read /dev/urandom: {err}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `GET /policies`.
pub(super) async fn page(collector: &Collector) -> Result<String, PageError> {
    let policies = collector
        .policies("ListPolicies", async |c| {
            c.list_policies(ListPoliciesRequest::default()).await
        })
        .await?
        .policies;
    let details = try_join_all(policies.iter().map(|p| async move {
        let history = collector.policies("PolicyHistory", async |c| {
            c.policy_history(policy_name(&p.name)).await
        });
        let status = collector.policies("GetPolicyStatus", async |c| {
            c.get_policy_status(policy_name(&p.name)).await
        });
        tokio::try_join!(history, status)
    }))
    .await?;
    let now = Utc::now().timestamp_millis();
    let mut body = String::new();
    if policies.is_empty() {
        body.push_str("<p class=\"note\">No policies.</p>");
    }
    for (policy, (history, status)) in policies.iter().zip(details) {
        body.push_str(&format!(
            "<section class=\"policy\" data-policy=\"{n}\"><h2>{n} <span class=\"note\">version {v}</span></h2>\
             <h3>Versions</h3><pre class=\"versions\">{h}</pre>\
             <h3>Hosts</h3><pre class=\"status\">{s}</pre>{f}</section>",
            n = e(&policy.name),
            v = policy.version,
            h = e(&render_history(&history.versions, OutputFormat::Table)),
            s = e(&render_status(&policy.name, &status, OutputFormat::Table, now)),
            f = change_form(policy),
        ));
    }
    body.push_str(&dry_run_form("", ""));
    Ok(layout("Policies", &body, None))
}

/// A policy's rollback and delete buttons: each asks for a confirmation first.
fn change_form(policy: &PolicyVersion) -> String {
    // Only a policy with an earlier version has one to go back to.
    let rollback = if policy.version > 1 {
        "<button type=\"submit\" name=\"action\" value=\"rollback\">Roll back…</button> "
    } else {
        ""
    };
    format!(
        "<form class=\"change\" method=\"post\" action=\"/policies/confirm\">\
         <input type=\"hidden\" name=\"name\" value=\"{}\">{rollback}\
         <button type=\"submit\" name=\"action\" value=\"delete\">Delete…</button> \
         <span class=\"note\">you confirm before anything changes</span></form>",
        e(&policy.name)
    )
}

/// The form that starts a change: a document and an optional cluster, sent for a dry run.
fn dry_run_form(document: &str, cluster: &str) -> String {
    format!(
        "<h2>Try a policy</h2><form class=\"dry-run\" method=\"post\" action=\"/policies/dry-run\">\
         <p><textarea name=\"document\" rows=\"8\" cols=\"80\" required \
         placeholder=\"name: protect-sshd&#10;target: {{cluster: prod}}&#10;match: {{comm: sshd}}&#10;oom_score_adj: -1000\">{}</textarea></p>\
         <p><label>cluster (in place of the document's target.cluster) \
         <input name=\"cluster\" value=\"{}\"></label> \
         <button type=\"submit\">Dry run</button> \
         <span class=\"note\">nothing changes: you confirm the result before it is applied</span></p></form>",
        e(document),
        e(cluster)
    )
}

/// `POST /policies/dry-run`: the plan, and the confirmation form when nothing refuses it.
pub(super) async fn dry_run(
    collector: &Collector,
    confirmations: &Confirmations,
    form: &str,
) -> Result<String, PageError> {
    let document = query_value(Some(form), "document").unwrap_or_default();
    let cluster = query_value(Some(form), "cluster")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let policy = fleet_policy::parse_policy(&document, ORIGIN)
        .map_err(|err| PageError::BadRequest(fleet_proto::errors::chain(&err)))?;
    let change = send(collector, &document, &cluster, true).await?;
    let mut body = format!(
        "<h2>Dry run of {}</h2><pre class=\"plan\">{}</pre>",
        e(&policy.name),
        e(&render_change(&change, OutputFormat::Table, false))
    );
    // The refusal of the policy itself, which the CLI makes here without --force.
    let local = local_refusal(&policy);
    if let Some(refusal) = &local {
        body.push_str(&format!(
            "<p class=\"error refused\">Refused: {} ({})</p>",
            e(&refusal.reason),
            e(&refusal.kind)
        ));
    }
    if change.refusals.is_empty() && local.is_none() {
        let token = confirmations.issue(Change::Apply {
            document: document.clone(),
            cluster: cluster.clone(),
        })?;
        body.push_str(&format!(
            "<form class=\"confirm\" method=\"post\" action=\"/policies/apply\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <p><button type=\"submit\">Apply policy {name}{on}</button> \
             <a href=\"/policies\">cancel</a></p></form>",
            name = e(&policy.name),
            on = if cluster.is_empty() {
                String::new()
            } else {
                format!(" to cluster {}", e(&cluster))
            },
        ));
    } else {
        body.push_str(
            "<p class=\"note\">Nothing can be applied from here over a refusal (the CLI's \
             <code>--force</code> is not offered).</p>",
        );
    }
    body.push_str(&dry_run_form(&document, &cluster));
    Ok(layout("Policy dry run", &body, None))
}

/// `POST /policies/apply`: applies the dry run its token stands for.
pub(super) async fn apply(
    collector: &Collector,
    confirmations: &Confirmations,
    form: &str,
) -> Result<String, PageError> {
    let token = query_value(Some(form), "token").unwrap_or_default();
    let Some(Change::Apply { document, cluster }) = confirmations.take(&token) else {
        return Err(PageError::Forbidden(
            "This apply carries no valid confirmation token (missing, used or expired): start \
             again from the dry run on /policies."
                .to_owned(),
        ));
    };
    let change = send(collector, &document, &cluster, false).await?;
    Ok(outcome_page(&change))
}

/// `POST /policies/confirm`: what a rollback or delete of a policy will do, and the form that
/// confirms it. Changes nothing.
pub(super) async fn confirm(
    collector: &Collector,
    confirmations: &Confirmations,
    form: &str,
) -> Result<String, PageError> {
    let name = query_value(Some(form), "name").unwrap_or_default();
    let action = query_value(Some(form), "action").unwrap_or_default();
    // The policy as it stands, so the page says what it changes (an unknown one: a 404).
    let status = collector
        .policies("GetPolicyStatus", async |c| {
            c.get_policy_status(policy_name(&name)).await
        })
        .await?;
    let version = status.policy.as_ref().map_or(0, |p| p.version);
    let (change, title, what) = match action.as_str() {
        "rollback" => (
            Change::Rollback { name: name.clone() },
            "Roll back",
            format!(
                "Roll back policy {} from version {version} to the version in force before it \
                 (see its versions on /policies); the agents it targets enforce that one.",
                e(&name)
            ),
        ),
        "delete" => (
            Change::Delete { name: name.clone() },
            "Delete",
            format!(
                "Delete policy {} (version {version}): the agents stop enforcing it and give \
                 every process it changed back the value it had before.",
                e(&name)
            ),
        ),
        other => {
            return Err(PageError::BadRequest(format!(
                "action {other:?}: rollback or delete"
            )))
        }
    };
    let token = confirmations.issue(change)?;
    let body = format!(
        "<h2>{title} {n}?</h2><p>{what}</p>\
         <form class=\"confirm\" method=\"post\" action=\"/policies/change\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <p><button type=\"submit\">{title} policy {n}</button> \
         <a href=\"/policies\">cancel</a></p></form>",
        n = e(&name),
    );
    Ok(layout(&format!("{title} policy"), &body, None))
}

/// `POST /policies/change`: makes the rollback or delete its token stands for.
pub(super) async fn change(
    collector: &Collector,
    confirmations: &Confirmations,
    form: &str,
) -> Result<String, PageError> {
    let token = query_value(Some(form), "token").unwrap_or_default();
    let change = match confirmations.take(&token) {
        Some(Change::Rollback { name }) => {
            collector
                .policies("RollbackPolicy", async |c| {
                    c.rollback_policy(as_actor(policy_name(&name))).await
                })
                .await?
        }
        Some(Change::Delete { name }) => {
            collector
                .policies("DeletePolicy", async |c| {
                    c.delete_policy(as_actor(policy_name(&name))).await
                })
                .await?
        }
        Some(Change::Apply { .. }) | None => {
            return Err(PageError::Forbidden(
                "This change carries no valid confirmation token (missing, used, expired or \
                 not for this change): start again from /policies."
                    .to_owned(),
            ))
        }
    };
    Ok(outcome_page(&change))
}

/// The page after a confirmed change: what it did, or the collector's refusal.
fn outcome_page(change: &PolicyChange) -> String {
    let text = e(&render_change(change, OutputFormat::Table, false)).into_owned();
    let body = if change.refusals.is_empty() {
        format!("<pre class=\"applied\">{text}</pre><p><a href=\"/policies\">back to the policies</a></p>")
    } else {
        format!(
            "<p class=\"error refused\">The collector refused the change; nothing was applied.</p>\
             <pre class=\"plan\">{text}</pre>"
        )
    };
    layout("Policy changed", &body, None)
}

/// One `ApplyPolicy` call as the operator.
async fn send(
    collector: &Collector,
    document: &str,
    cluster: &str,
    dry_run: bool,
) -> Result<PolicyChange, PageError> {
    let request = ApplyPolicyRequest {
        document: document.to_owned(),
        origin: ORIGIN.to_owned(),
        cluster: cluster.to_owned(),
        dry_run,
        force: false,
    };
    Ok(collector
        .policies("ApplyPolicy", async |c| {
            c.apply_policy(as_actor(request)).await
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_random_single_use_and_bounded() {
        let apply = |document: &str, cluster: &str| Change::Apply {
            document: document.into(),
            cluster: cluster.into(),
        };
        let c = Confirmations::default();
        let a = c.issue(apply("doc-a", "prod")).unwrap();
        let b = c.issue(apply("doc-b", "")).unwrap();
        let r = c.issue(Change::Rollback { name: "p".into() }).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(c.take("nosuch").is_none());
        assert!(c.take("").is_none());
        assert_eq!(c.take(&a), Some(apply("doc-a", "prod")));
        assert!(c.take(&a).is_none(), "used twice");
        assert_eq!(c.take(&r), Some(Change::Rollback { name: "p".into() }));
        for i in 0..MAX_PENDING + 5 {
            c.issue(apply(&format!("doc-{i}"), "")).unwrap();
        }
        assert_eq!(c.0.lock().unwrap().len(), MAX_PENDING);
        assert!(c.take(&b).is_none(), "the oldest is forgotten");
    }

    #[test]
    fn the_form_escapes_what_it_echoes() {
        let form = dry_run_form("name: </textarea><script>", "a\"b");
        assert!(!form.contains("</textarea><script>"), "{form}");
        assert!(form.contains("value=\"a&quot;b\""), "{form}");
    }
}
