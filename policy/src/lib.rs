//! `fleet-policy`: Fleet's OOM policies. Pure: no I/O, no clock. The agent enforces them, the
//! collector stores and pushes them, `fleetctl policy apply --dry-run` previews them; all with
//! this code.
//!
//! Layout:
//! - [`doc`]: the policy document (YAML or TOML), [`parse_policy`], validation with errors that
//!   name the field, and the kernel's `oom_adj` → `oom_score_adj` conversion.
//! - [`matching`]: [`ProcessInfo`], [`Target::matches`] (which hosts), [`Policy::matches`] and
//!   [`Policy::select`] (which processes, with their descendants when `children: true`).
//! - [`safety`]: [`check_safety`] (the refusals that need `--force`) and [`plan`] (the dry run).
//!
//! ```
//! use fleet_policy::{parse_policy, plan, ProcessInfo};
//!
//! let policy = parse_policy(
//!     "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {exe: /usr/sbin/sshd}\noom_adj: -17\n",
//!     "protect-sshd.yaml",
//! )
//! .unwrap();
//! assert_eq!(policy.oom_score_adj, -1000);
//! let sshd = ProcessInfo {
//!     pid: 812,
//!     ppid: 1,
//!     comm: "sshd".into(),
//!     exe: Some("/usr/sbin/sshd".into()),
//!     ..ProcessInfo::default()
//! };
//! let changes = plan(&policy, &[sshd]);
//! assert_eq!((changes[0].pid, changes[0].from, changes[0].to), (812, 0, -1000));
//! ```
//!
//! `deploy/policies/protect-sshd.yaml` is a tested example.

pub mod doc;
pub mod matching;
pub mod safety;

pub use doc::{
    oom_adj_to_score_adj, parse_policy, parse_policy_as, Format, MatchDoc, Matcher, Policy,
    PolicyDoc, PolicyError, Target, TargetDoc, User, UserRef,
};
pub use matching::{glob_match, uid_of, Labels, ProcessInfo};
pub use safety::{
    check_safety, check_safety_on, format_kib, plan, Change, Refusal, RefusalKind,
    MAX_DISABLED_PER_HOST,
};

#[cfg(test)]
mod tests;
