//! What a policy would do: the refusals that need `--force` (one that holds for the policy
//! anywhere, [`check_policy`]; those of one host's processes, [`check_safety_on`]), and the
//! dry-run plan. `fleetctl` runs [`check_policy`] before it sends a document, the collector
//! runs both for every host it has a process list of, and the agent runs both again on its host
//! (its safety net, for what reaches it unforced).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::doc::{Policy, OOM_SCORE_ADJ_MIN};
use crate::matching::ProcessInfo;

/// Most processes per host a policy may make unkillable (-1000) without `--force`. sshd's
/// listener, a few agents and an init-like supervisor fit; a pattern matching more is more
/// likely a mistake than a plan.
pub const MAX_DISABLED_PER_HOST: usize = 5;

/// Which safety rule a policy broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalKind {
    /// More than [`MAX_DISABLED_PER_HOST`] processes would get -1000.
    TooManyDisabled,
    /// The host's largest memory user would get -1000.
    LargestMemoryUser,
    /// A value below 0 on a match that rests only on what processes claim (comm, cmdline,
    /// user): any local user could start a process that gets it.
    WeakIdentity,
}

impl RefusalKind {
    /// The name on the wire and in fleetctl's output: `too_many_disabled`,
    /// `largest_memory_user`, `weak_identity`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::TooManyDisabled => "too_many_disabled",
            RefusalKind::LargestMemoryUser => "largest_memory_user",
            RefusalKind::WeakIdentity => "weak_identity",
        }
    }
}

/// A reason to refuse a policy on a host unless forced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub kind: RefusalKind,
    /// The host whose processes the refusal is about; empty for one about the policy itself
    /// ([`check_policy`]).
    pub host: String,
    /// The reason in words, for the operator.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The refusal of a policy whatever the hosts: a value below 0 on a match that is not
/// anchored (no `exe:`, `unit:` or a `cgroup:` that names part of the tree; see
/// [`crate::Matcher::anchored`]). `comm`, `cmdline` and `user` are claims any process can make:
/// a user who names their memory hog `sshd` would otherwise have it spared by the OOM killer
/// at the expense of everything else on the host.
pub fn check_policy(policy: &Policy) -> Option<Refusal> {
    if policy.oom_score_adj >= 0 || policy.matcher.anchored() {
        return None;
    }
    Some(Refusal {
        kind: RefusalKind::WeakIdentity,
        host: String::new(),
        reason: format!(
            "would set {} on processes matched only by {}, which any process can claim: \
             any local user could start a process that the OOM killer then spares at the \
             expense of the rest of the host; add exe:, unit: or cgroup: to say which program",
            policy.oom_score_adj,
            policy.matcher.claims()
        ),
    })
}

/// The safety checks for one host's process list, worded for "this host"; see
/// [`check_safety_on`]. The agent adds [`check_policy`].
pub fn check_safety(policy: &Policy, processes: &[ProcessInfo]) -> Vec<Refusal> {
    check_safety_on(policy, "this host", processes)
}

/// The safety checks for the process list of `host`: a policy that would disable the OOM
/// killer (-1000) for more than [`MAX_DISABLED_PER_HOST`] processes, or for the largest memory
/// user, is refused. Disabling it for the wrong process turns an OOM kill into a kernel panic or
/// a hung host. Policies with any other value are never refused.
pub fn check_safety_on(policy: &Policy, host: &str, processes: &[ProcessInfo]) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    if policy.oom_score_adj != OOM_SCORE_ADJ_MIN {
        return refusals;
    }
    let selected = policy.select(processes);
    if selected.len() > MAX_DISABLED_PER_HOST {
        refusals.push(Refusal {
            kind: RefusalKind::TooManyDisabled,
            host: host.to_string(),
            reason: format!(
                "would disable the OOM killer for {} processes on {host} (limit {MAX_DISABLED_PER_HOST})",
                selected.len()
            ),
        });
    }
    // The first of equals: the one the kernel would most likely pick.
    let largest = processes
        .iter()
        .enumerate()
        .filter(|(_, p)| p.rss_kb > 0)
        .max_by(|(ia, a), (ib, b)| a.rss_kb.cmp(&b.rss_kb).then(ib.cmp(ia)));
    if let Some((i, p)) = largest {
        if selected.contains(&i) {
            refusals.push(Refusal {
                kind: RefusalKind::LargestMemoryUser,
                host: host.to_string(),
                reason: format!(
                    "would protect the largest memory user on {host} ({}, pid {}, {}): an OOM could then only end in a kernel panic or a hung host",
                    p.comm,
                    p.pid,
                    format_kib(p.rss_kb)
                ),
            });
        }
    }
    refusals
}

/// `12.3 GiB`, `512.0 MiB`, `900 KiB`.
pub fn format_kib(kib: u64) -> String {
    const MIB: u64 = 1024;
    const GIB: u64 = 1024 * 1024;
    if kib >= GIB {
        format!("{:.1} GiB", kib as f64 / GIB as f64)
    } else if kib >= MIB {
        format!("{:.1} MiB", kib as f64 / MIB as f64)
    } else {
        format!("{kib} KiB")
    }
}

/// One process whose value a policy would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub pid: u32,
    pub comm: String,
    pub from: i32,
    pub to: i32,
}

/// The dry run: each process the policy applies to whose `oom_score_adj` differs from the
/// policy's, in pid order. Nothing is changed.
pub fn plan(policy: &Policy, processes: &[ProcessInfo]) -> Vec<Change> {
    let mut changes: Vec<Change> = policy
        .select(processes)
        .into_iter()
        .map(|i| &processes[i])
        .filter(|p| p.oom_score_adj != policy.oom_score_adj)
        .map(|p| Change {
            pid: p.pid,
            comm: p.comm.clone(),
            from: p.oom_score_adj,
            to: policy.oom_score_adj,
        })
        .collect();
    changes.sort_by_key(|c| c.pid);
    changes
}
