//! `fleetctl policy ...`: the operator's side of OOM policies, against the collector's
//! `Policies` service.
//!
//! `apply` reads the document and checks it here with `fleet-policy`, the parser the collector
//! and the agents use, before anything is contacted: a mistake is reported with its field, exit
//! status 1 as for a rules file `rules check` rejects, and nothing is sent. The calls that change
//! something (apply, rollback, delete) name the operator as `USER@HOSTNAME` ([`local_actor`]).
//!
//! A change the safety checks refuse is an answer, not an error: its refusals are printed and
//! fleetctl exits 1 ([`Output::failed`]). `status` is informational and exits 0 whatever the
//! hosts' state.

use std::path::Path;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use fleet_proto::v1::{ApplyPolicyRequest, PolicyChange};

use crate::cli::{PolicyApplyArgs, PolicyArgs, PolicyCommand, PolicyListArgs};
use crate::client::Collector;
use crate::config::Settings;
use crate::render::{self, ChangeOutcome, OutputFormat};
use crate::Output;

/// Runs one `fleetctl policy` command.
///
/// # Errors
///
/// An unreadable or invalid policy file (before anything is contacted), an unreachable
/// collector, a gRPC status (`no policy named NAME` for an unknown one), or an answer that is
/// none of a stored version, a dry run and a refusal.
pub(crate) async fn execute(settings: &Settings, args: PolicyArgs) -> Result<Output> {
    match args.command {
        PolicyCommand::Apply(args) => {
            let request = apply_request(&args)?;
            let collector = Collector::connect(settings).await?;
            let change = collector.apply_policy(request, &local_actor()).await?;
            change_output("ApplyPolicy", &change, settings.output, !args.force)
        }
        PolicyCommand::List(args) => list(settings, args).await,
        PolicyCommand::Status(args) => {
            let collector = Collector::connect(settings).await?;
            let report = collector.policy_status(&args.name).await?;
            Ok(Output {
                stdout: render::render_policy_status(
                    &args.name,
                    &report,
                    settings.output,
                    Utc::now().timestamp_millis(),
                ),
                notice: None,
                failed: false,
            })
        }
        PolicyCommand::History(args) => {
            let collector = Collector::connect(settings).await?;
            let versions = collector.policy_history(&args.name).await?;
            let notice = (versions.is_empty() && settings.output == OutputFormat::Table)
                .then(|| format!("policy {} has no stored versions", args.name));
            Ok(Output {
                stdout: render::render_policy_history(&versions, settings.output),
                notice,
                failed: false,
            })
        }
        PolicyCommand::Rollback(args) => {
            let collector = Collector::connect(settings).await?;
            let change = collector
                .rollback_policy(&args.name, &local_actor())
                .await?;
            // Neither rollback nor delete has --force: a refusal is final.
            change_output("RollbackPolicy", &change, settings.output, false)
        }
        PolicyCommand::Delete(args) => {
            let collector = Collector::connect(settings).await?;
            let change = collector.delete_policy(&args.name, &local_actor()).await?;
            change_output("DeletePolicy", &change, settings.output, false)
        }
    }
}

/// The request `policy apply` sends: the file's text as written (the collector parses it again
/// and stores it), with the file name as its origin.
///
/// # Errors
///
/// An unreadable file, or a document `fleet_policy::parse_policy` refuses (naming the file and
/// the field).
fn apply_request(args: &PolicyApplyArgs) -> Result<ApplyPolicyRequest> {
    let origin = args.file.display().to_string();
    let document = read_policy_file(&args.file, &origin)?;
    fleet_policy::parse_policy(&document, &origin)?;
    Ok(ApplyPolicyRequest {
        document,
        origin,
        cluster: args.cluster.clone().unwrap_or_default(),
        dry_run: args.dry_run,
        force: args.force,
    })
}

fn read_policy_file(path: &Path, origin: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read policy file {origin}"))
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
        (_, ChangeOutcome::Refused) => Some(render::refused_line(force_hint).to_owned()),
        (OutputFormat::Csv, _) => render::change_headline(change),
        (OutputFormat::Json, _) => None,
    };
    Ok(Output {
        stdout: render::render_policy_change(change, format, force_hint),
        notice,
        failed: outcome == ChangeOutcome::Refused,
    })
}

async fn list(settings: &Settings, args: PolicyListArgs) -> Result<Output> {
    let cluster = args.cluster.unwrap_or_default();
    let collector = Collector::connect(settings).await?;
    let policies = collector.list_policies(&cluster).await?;
    let notice = (policies.is_empty() && settings.output == OutputFormat::Table).then(|| {
        match cluster.as_str() {
            "" => "no policies".to_owned(),
            cluster => format!("no policies target cluster {cluster}"),
        }
    });
    Ok(Output {
        stdout: render::render_policy_list(&policies, settings.output),
        notice,
        failed: false,
    })
}

/// Who makes a change, `USER@HOSTNAME`: `$USER` (or `$LOGNAME`) and this host's name. The
/// collector records it only when no client certificate names the caller, and marks it
/// unauthenticated: it is a courtesy, not an identity.
pub(crate) fn local_actor() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|key| std::env::var(key).ok());
    actor(user.as_deref(), hostname().as_deref())
}

/// `USER@HOSTNAME`, with `unknown` for a part that is missing or blank.
fn actor(user: Option<&str>, host: Option<&str>) -> String {
    let part = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    };
    format!("{}@{}", part(user), part(host))
}

/// This host's name: /proc/sys/kernel/hostname, or gethostname(2) where there is no /proc.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(gethostname)
}

#[cfg(unix)]
fn gethostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes, and gethostname writes at most
    // that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    // Without a NUL the name was cut at the buffer's end; what fits still names the host.
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(not(unix))]
fn gethostname() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn actor_is_user_at_host() {
        assert_eq!(actor(Some("alice"), Some("ops-1")), "alice@ops-1");
        assert_eq!(actor(None, Some("ops-1")), "unknown@ops-1");
        assert_eq!(actor(Some(" "), None), "unknown@unknown");
        let local = local_actor();
        assert!(local.contains('@') && !local.ends_with('@'), "{local}");
    }

    #[test]
    fn this_host_has_a_name() {
        let name = hostname().unwrap();
        assert!(!name.is_empty() && !name.contains('\n'), "{name:?}");
        #[cfg(unix)]
        assert_eq!(gethostname().as_deref(), Some(name.as_str()));
    }

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
        let request = apply_request(&apply_args(path.clone())).unwrap();
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
}
