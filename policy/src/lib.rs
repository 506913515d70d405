//! `fleet-policy`: Fleet's OOM policies. Pure: no I/O, no clock. The agent enforces them, the
//! collector stores and pushes them, `fleetctl policy apply --dry-run` previews them; all with
//! this code.
//!
//! Layout:
//! - [`doc`]: the policy document (YAML or TOML, at most [`MAX_DOCUMENT_BYTES`]),
//!   [`parse_policy`], validation with errors that name the field, and the kernel's `oom_adj` →
//!   `oom_score_adj` conversion.
//! - [`identity`]: what a process is rather than what it claims: `exe:` by the device and
//!   inode of the running image and the host's mount namespace, `unit:` as the system
//!   manager's own cgroup, and which criteria anchor a match ([`FileId`],
//!   [`Matcher::anchored`]).
//! - [`matching`]: [`ProcessInfo`], [`Target::matches`] (which hosts), [`Policy::matches`] and
//!   [`Policy::select`] (which processes, with their descendants when `children: true`).
//! - [`safety`]: the refusals that need `--force` ([`check_policy`] for the policy itself,
//!   [`check_safety`] for a host's processes) and [`plan`] (the dry run).
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
//!     // The agent found the running image to be the host's /usr/sbin/sshd.
//!     exe_at_path: true,
//!     ..ProcessInfo::default()
//! };
//! // A process that only says it is sshd (in a mount namespace of its own).
//! let impostor = ProcessInfo {
//!     pid: 4000,
//!     exe_at_path: false,
//!     foreign_mount_ns: true,
//!     ..sshd.clone()
//! };
//! let changes = plan(&policy, &[sshd, impostor]);
//! assert_eq!(changes.len(), 1);
//! assert_eq!((changes[0].pid, changes[0].from, changes[0].to), (812, 0, -1000));
//! ```
//!
//! `deploy/policies/protect-sshd.yaml` is a tested example.

pub mod doc;
pub mod identity;
pub mod matching;
pub mod safety;

pub use doc::{
    oom_adj_to_score_adj, parse_policy, parse_policy_as, Format, MatchDoc, Matcher,
    MountNamespaces, Policy, PolicyDoc, PolicyError, Target, TargetDoc, User, UserRef,
    MAX_DOCUMENT_BYTES,
};
pub use identity::FileId;
pub use matching::{glob_match, uid_of, Labels, ProcessInfo};
pub use safety::{
    check_policy, check_safety, check_safety_on, format_kib, plan, Change, Refusal, RefusalKind,
    MAX_DISABLED_PER_HOST,
};

#[cfg(test)]
mod tests;
