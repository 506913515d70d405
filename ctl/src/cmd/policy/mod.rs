//! `fleetctl policy ...`: the operator's side of OOM policies, against the collector's
//! `Policies` service.
//!
//! ```text
//! fleetctl policy apply -f FILE [--cluster C] [--dry-run] [--force]   (change.rs)
//! fleetctl policy rollback|delete NAME                                (change.rs)
//! fleetctl policy list [--cluster C]                                  (versions.rs)
//! fleetctl policy history NAME                                        (versions.rs)
//! fleetctl policy status NAME                                         (status.rs)
//! ```
//!
//! `apply` reads the document and checks it here with `fleet-policy`, the parser the collector
//! and the agents use, before anything is contacted: a mistake is reported with its field, exit
//! status 1 as for a rules file `rules check` rejects, and nothing is sent. The calls that change
//! something (apply, rollback, delete) name the operator as `USER@HOSTNAME` (`local_actor`) in
//! the [`ACTOR_METADATA_KEY`] metadata; the collector records it as the change's actor only when
//! no client certificate names one.
//!
//! A change the safety checks refuse is an answer, not an error: its refusals are printed and
//! fleetctl exits 1 ([`Output::failed`]). `status` is informational and exits 0 whatever the
//! hosts' state. Times are RFC 3339 UTC strings (`null` for none), as in the other commands;
//! tables add the age of a report.

mod change;
mod status;
mod versions;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use fleet_proto::v1::{PolicyName, PolicyVersion};
use serde::Serialize;
use tonic::metadata::MetadataValue;
use tonic::Request;

use super::{Context, Run};
use crate::client::CallError;
use crate::output::{host_name, nonzero_rfc3339_ms, opt, time_cell};
use crate::Output;

pub use change::{ChangeOutcome, CHANGE_KEYS, PLAN_KEYS};
// What `fleetctl ui`'s /policies page shows, as these commands show it.
pub(crate) use change::{local_refusal, render as render_change};
pub(crate) use status::render as render_status;
pub use status::STATUS_KEYS;
pub(crate) use versions::render_history;
pub use versions::DESCRIPTION_WIDTH;

/// The gRPC metadata key of the actor a mutating `Policies` call names. The collector reads the
/// same key; keep the two equal.
pub const ACTOR_METADATA_KEY: &str = fleet_proto::metadata::ACTOR;

/// `fleetctl policy`.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// What follows `fleetctl policy`.
#[derive(Debug, Clone, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file here, then store it as the policy's next version and push it to the
    /// hosts it targets; with --dry-run only show what would change. Exits 1 when the safety
    /// checks refuse it
    Apply(PolicyApplyArgs),
    /// The current version of every policy
    List(PolicyListArgs),
    /// Where a policy stands on each host: enforced, pending, outdated, removed; with the
    /// failures and the processes it holds
    Status(PolicyNameArgs),
    /// Every version of a policy, oldest first, with who made it
    History(PolicyNameArgs),
    /// Store the version before the current one again, as a new version
    Rollback(PolicyNameArgs),
    /// Stop enforcing a policy: the agents give its processes back their original values
    Delete(PolicyNameArgs),
}

/// `fleetctl policy apply -f FILE`.
#[derive(Debug, Clone, Args)]
pub struct PolicyApplyArgs {
    /// The policy document: YAML, or TOML for a .toml file
    #[arg(short = 'f', long = "file", value_name = "FILE", required = true)]
    pub file: PathBuf,
    /// Apply to this cluster, in place of the document's target.cluster
    #[arg(long, value_name = "C", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub cluster: Option<String>,
    /// Show what would change on each host, and any refusal; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even when the safety checks refuse the policy
    #[arg(long)]
    pub force: bool,
}

/// `fleetctl policy list`.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyListArgs {
    /// Only policies that target this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
}

/// `fleetctl policy status|history|rollback|delete NAME`.
#[derive(Debug, Clone, Args)]
pub struct PolicyNameArgs {
    /// The policy's name, as in its document and `fleetctl policy list`
    #[arg(value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub name: String,
}

impl Run for PolicyArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        match self.command {
            PolicyCommand::Apply(args) => change::apply(&args, ctx).await,
            PolicyCommand::Rollback(args) => change::rollback(&args.name, ctx).await,
            PolicyCommand::Delete(args) => change::delete(&args.name, ctx).await,
            PolicyCommand::List(args) => versions::list(args, ctx).await,
            PolicyCommand::History(args) => versions::history(&args.name, ctx).await,
            PolicyCommand::Status(args) => status::status(&args.name, ctx).await,
        }
    }
}

/// The message of the calls that name one policy.
pub(crate) fn policy_name(name: &str) -> PolicyName {
    PolicyName {
        name: name.to_owned(),
    }
}

/// How a failed call naming policy `name` reads: `no policy named NAME` for `NotFound`.
fn unknown(name: &str) -> impl FnOnce(CallError) -> anyhow::Error + '_ {
    move |err| err.not_found_as(|| format!("no policy named {name}"))
}

/// The order of hosts in the tables: by name (the hostname, else the id), then id.
fn host_key<'a>(hostname: &'a str, host_id: &'a str) -> (&'a str, &'a str) {
    (host_name(hostname, host_id), host_id)
}

/// `message` with the [`ACTOR_METADATA_KEY`] metadata naming this operator (`local_actor`).
pub(crate) fn as_actor<T>(message: T) -> Request<T> {
    with_actor(message, &local_actor())
}

/// `message` with the [`ACTOR_METADATA_KEY`] metadata.
fn with_actor<T>(message: T, actor: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(ACTOR_METADATA_KEY, actor_value(actor));
    request
}

/// `actor` as an ASCII metadata value: gRPC metadata is printable ASCII, so any other character
/// (a non-ASCII user name) becomes `?` rather than failing the call.
fn actor_value(actor: &str) -> MetadataValue<tonic::metadata::Ascii> {
    let ascii: String = actor
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    MetadataValue::try_from(ascii.trim()).unwrap_or_else(|_| MetadataValue::from_static("unknown"))
}

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
        time_cell(self.time_ms)
    }
}

/// Who makes a change, `USER@HOSTNAME`: `$USER` (or `$LOGNAME`) and this host's name. The
/// collector records it only when no client certificate names the caller, and marks it
/// unauthenticated: it is a courtesy, not an identity.
fn local_actor() -> String {
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
    use clap::error::ErrorKind;

    use super::*;
    use crate::cmd::testing::{command, parse};
    use crate::cmd::Command;
    use crate::output::OutputFormat;

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

    #[test]
    fn actor_metadata_is_printable_ascii() {
        assert_eq!(actor_value("alice@ops-1").to_str().unwrap(), "alice@ops-1");
        assert_eq!(
            actor_value("jürgen@ops-1").to_str().unwrap(),
            "j?rgen@ops-1"
        );
        assert_eq!(actor_value("a\nb@h").to_str().unwrap(), "a?b@h");
        let request = with_actor(policy_name("p"), "alice@ops-1");
        assert_eq!(
            request.metadata().get(ACTOR_METADATA_KEY).unwrap(),
            "alice@ops-1"
        );
    }

    fn policy(args: &[&str]) -> PolicyCommand {
        match command("policy", args) {
            Command::Policy(PolicyArgs { command }) => command,
            other => panic!("not policy: {other:?}"),
        }
    }

    #[test]
    fn policy_apply_takes_a_file_and_flags() {
        let PolicyCommand::Apply(args) = policy(&["apply", "-f", "p.yaml"]) else {
            panic!("not apply");
        };
        assert_eq!(args.file, PathBuf::from("p.yaml"));
        assert_eq!(args.cluster, None);
        assert!(!args.dry_run && !args.force);
        let PolicyCommand::Apply(args) = policy(&[
            "apply",
            "--dry-run",
            "--file",
            "p.toml",
            "--cluster",
            "prod",
            "--force",
        ]) else {
            panic!("not apply");
        };
        assert_eq!(args.file, PathBuf::from("p.toml"));
        assert_eq!(args.cluster.as_deref(), Some("prod"));
        assert!(args.dry_run && args.force);
        let cli = parse(&["policy", "apply", "-f", "p.yaml", "-o", "json"]).unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));

        let err = parse(&["policy", "apply"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        // The file is named with -f, as kubectl apply does, not positionally.
        let err = parse(&["policy", "apply", "p.yaml"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
        let err = parse(&["policy", "apply", "-f", "p.yaml", "--cluster", ""]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
        let err = parse(&["policy"]).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
            "{err}"
        );
    }

    #[test]
    fn policy_list_and_the_commands_that_name_one() {
        let PolicyCommand::List(args) = policy(&["list"]) else {
            panic!("not list");
        };
        assert_eq!(args.cluster, None);
        let PolicyCommand::List(args) = policy(&["list", "--cluster", "prod"]) else {
            panic!("not list");
        };
        assert_eq!(args.cluster.as_deref(), Some("prod"));

        for command in ["status", "history", "rollback", "delete"] {
            let name = match policy(&[command, "protect-sshd"]) {
                PolicyCommand::Status(a)
                | PolicyCommand::History(a)
                | PolicyCommand::Rollback(a)
                | PolicyCommand::Delete(a) => a.name,
                other => panic!("{command}: {other:?}"),
            };
            assert_eq!(name, "protect-sshd", "{command}");
            let err = parse(&["policy", command]).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::MissingRequiredArgument,
                "{command}: {err}"
            );
            let err = parse(&["policy", command, ""]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue, "{command}: {err}");
            let err = parse(&["policy", command, "a", "b"]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{command}: {err}");
        }
        assert!(matches!(policy(&["status", "p"]), PolicyCommand::Status(_)));
        assert!(matches!(policy(&["delete", "p"]), PolicyCommand::Delete(_)));
        let err = parse(&["policy", "delete", "p", "--force"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
    }
}
