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
//! The calls name the operator as the CLI does (`USER@HOSTNAME`, unless the certificate names
//! one). The collector's refusal of a certificate (a viewer's) is a 403 page with its message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use fleet_proto::v1::{ApplyPolicyRequest, ListPoliciesRequest, PolicyChange};
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

/// A dry run waiting for its confirmation.
#[derive(Debug)]
struct Pending {
    document: String,
    cluster: String,
    at: Instant,
}

/// The dry runs waiting for confirmation, by token.
#[derive(Debug, Default)]
pub struct Confirmations(Mutex<HashMap<String, Pending>>);

impl Confirmations {
    /// A new token for `document` on `cluster`.
    fn issue(&self, document: &str, cluster: &str) -> Result<String, PageError> {
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
                document: document.to_owned(),
                cluster: cluster.to_owned(),
                at: Instant::now(),
            },
        );
        Ok(token)
    }

    /// The dry run of `token`, once: a token is used up by its first apply.
    fn take(&self, token: &str) -> Option<Pending> {
        let mut pending = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.remove(token).filter(|p| p.at.elapsed() < TOKEN_TTL)
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
             <h3>Hosts</h3><pre class=\"status\">{s}</pre></section>",
            n = e(&policy.name),
            v = policy.version,
            h = e(&render_history(&history.versions, OutputFormat::Table)),
            s = e(&render_status(&policy.name, &status, OutputFormat::Table, now)),
        ));
    }
    body.push_str(&dry_run_form("", ""));
    Ok(layout("Policies", &body, None))
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
        let token = confirmations.issue(&document, &cluster)?;
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
    let Some(pending) = confirmations.take(&token) else {
        return Err(PageError::Forbidden(
            "This apply carries no valid confirmation token (missing, used or expired): start \
             again from the dry run on /policies."
                .to_owned(),
        ));
    };
    let change = send(collector, &pending.document, &pending.cluster, false).await?;
    let text = e(&render_change(&change, OutputFormat::Table, false)).into_owned();
    let body = if change.refusals.is_empty() {
        format!("<pre class=\"applied\">{text}</pre><p><a href=\"/policies\">back to the policies</a></p>")
    } else {
        format!(
            "<p class=\"error refused\">The collector refused the change; nothing was applied.</p>\
             <pre class=\"plan\">{text}</pre>"
        )
    };
    Ok(layout("Policy applied", &body, None))
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
        let c = Confirmations::default();
        let a = c.issue("doc-a", "prod").unwrap();
        let b = c.issue("doc-b", "").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(c.take("nosuch").is_none());
        assert!(c.take("").is_none());
        let p = c.take(&a).unwrap();
        assert_eq!((p.document.as_str(), p.cluster.as_str()), ("doc-a", "prod"));
        assert!(c.take(&a).is_none(), "used twice");
        for i in 0..MAX_PENDING + 5 {
            c.issue(&format!("doc-{i}"), "").unwrap();
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
