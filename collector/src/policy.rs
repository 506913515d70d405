//! OOM policies at the collector: the versions of each policy (with who changed what and when),
//! what each host reported doing, the hosts' process lists for dry runs, and the set of policies
//! each agent must enforce. Parsing, targeting, matching and the safety checks are
//! `fleet_policy`'s, the same code the agent and `fleetctl` run.
//!
//! # Versions
//!
//! Every change is a new version of the policy, numbered from 1 and never deleted:
//!
//! | action     | document              | in force afterwards                                |
//! |------------|-----------------------|----------------------------------------------------|
//! | `apply`    | the one given         | this version                                       |
//! | `rollback` | an earlier version's  | that earlier version (`restores`)                  |
//! | `delete`   | empty                 | nothing: agents give processes their originals back |
//!
//! A rollback goes back one step: from the version in force to the latest `apply` before it;
//! after a delete, to what was in force before the delete. Applying the document (and
//! `--cluster`) already in force stores nothing and answers with the current version, so
//! scripts and Ansible can apply the same file again and again.
//!
//! # Push
//!
//! [`PolicyBook::desired_for`] is the complete set of policies a host must enforce: the current
//! version of each policy in force whose target matches the host. Each agent session sends it
//! after the welcome and again whenever [`PolicyBook::subscribe`] says something changed; the
//! agent removes what is absent. So an agent that was offline during a change catches up when it
//! reconnects, whatever happened meanwhile.
//!
//! # Sizes
//!
//! A host's set travels in one `PolicySync` message, which must stay under the 4 MiB message
//! limit, or every targeted agent is cut off at each push. A document is at most
//! [`fleet_policy::MAX_DOCUMENT_BYTES`] (64 KiB, refused at parse time, here and in `fleetctl`),
//! and the policies in force together, as a `PolicySync`, at most [`MAX_POLICY_SET_BYTES`]: an
//! apply or rollback that would exceed it is refused, naming the limit. The cap is on every
//! policy in force, not on the hosts each one targets today, because any host's set is a part
//! of it whatever hosts register or relabel later, and so no agent needs to take a set in
//! several messages. A stored policy over a cap (from an older collector) is not pushed, as a
//! document that no longer parses is not.
//!
//! # Reports
//!
//! An agent reports on the policies it enforces and the ones it removed. Only entries about
//! policies its session sent it are taken (and removals of those, or of policies it had
//! reported before); the others are dropped and counted ([`PolicyBook::reports_dropped`]), so
//! a host can grow neither memory nor the store with invented names. A report is written (a
//! synced write) before it shows in `fleetctl policy status`; one that cannot be written stays
//! pending in memory and is written by the next attempt (`reports.rs`).
//!
//! # Storage
//!
//! Versions and host statuses live in the `policies` column family (key layout in
//! [`crate::storage::keys`], values in [`crate::storage::values`]), one synced write per change
//! or report, through [`PolicyRecords`]; everything is loaded into memory at start. Process
//! lists are kept in memory only: agents send them on connect, each process with the identity
//! the agent read ([`process_info`]), so a dry run matches `exe:` as the agent will.

#[cfg(test)]
pub(crate) mod flaky;
mod reports;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use fleet_policy::{
    check_policy, check_safety_on, parse_policy, plan, FileId, Policy, PolicyError, ProcessInfo,
};
use fleet_proto::limits::MAX_MESSAGE_BYTES;
use fleet_proto::v1::{
    ApplyPolicyRequest, HostPlan, HostPolicyStatus, PlannedChange, PolicyChange, PolicyRefusal,
    PolicySpec, PolicyStatusReport, PolicySync, PolicyVersion, ProcessList,
};
use prost::Message;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::storage::keys::{self, PolicyKey};
use crate::storage::values;
use crate::storage::{HostRecord, KeyValue, StorageError, Store};

/// The most the policies in force may take together, encoded as one `PolicySync`: half the
/// message limit, so a host's set always fits with room to spare.
pub const MAX_POLICY_SET_BYTES: usize = MAX_MESSAGE_BYTES / 2;

/// Where the book keeps its records: the two calls of [`Store`] it needs, as a trait so tests
/// can fail writes.
pub trait PolicyRecords: Send + Sync {
    /// # Errors
    /// The store's.
    fn policy_write(&self, puts: &[KeyValue]) -> Result<(), StorageError>;
    /// # Errors
    /// The store's.
    fn policy_records(&self) -> Result<Vec<KeyValue>, StorageError>;
}

impl PolicyRecords for Store {
    fn policy_write(&self, puts: &[KeyValue]) -> Result<(), StorageError> {
        Store::policy_write(self, puts)
    }

    fn policy_records(&self) -> Result<Vec<KeyValue>, StorageError> {
        Store::policy_records(self)
    }
}

/// Why a policy request was refused.
#[derive(Debug, Error)]
pub enum PolicyBookError {
    #[error("{0}")]
    Document(#[from] PolicyError),
    #[error("no policy named {0:?}")]
    NotFound(String),
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Policy actions as stored.
pub const ACTION_APPLY: &str = "apply";
pub const ACTION_ROLLBACK: &str = "rollback";
pub const ACTION_DELETE: &str = "delete";

/// A host's state for one policy, as `fleetctl policy status` shows it.
pub const STATE_ENFORCED: &str = "enforced";
pub const STATE_PENDING: &str = "pending";
pub const STATE_OUTDATED: &str = "outdated";
pub const STATE_REMOVED: &str = "removed";
pub const STATE_NOT_TARGETED: &str = "not_targeted";

/// A host's latest process list.
struct HostProcesses {
    time_ms: i64,
    processes: Vec<ProcessInfo>,
    /// uid → user name, from the host's /etc/passwd, for `user:` matches by name.
    users: HashMap<u32, String>,
}

#[derive(Default)]
struct Inner {
    /// Every version of every policy, oldest first.
    versions: BTreeMap<String, Vec<PolicyVersion>>,
    /// The parsed document in force per policy (absent once deleted).
    in_force: HashMap<String, Policy>,
    /// (policy, host num) → what the host last reported, as stored.
    statuses: HashMap<(String, u32), HostPolicyStatus>,
    /// host num → (policy → what the host reported and is not stored yet): taken, waiting for
    /// a write that succeeds. Only names the host may report on (see the module doc).
    unsaved: HashMap<u32, BTreeMap<String, HostPolicyStatus>>,
    processes: HashMap<u32, HostProcesses>,
}

/// The collector's policies; shared by the `Policies` service and the agent sessions.
pub struct PolicyBook {
    store: Arc<dyn PolicyRecords>,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    /// Report entries about policies the host was not sent, dropped since start.
    reports_dropped: AtomicU64,
}

/// Parses a stored or submitted document and applies the `--cluster` override.
fn parse_with_cluster(document: &str, origin: &str, cluster: &str) -> Result<Policy, PolicyError> {
    let mut policy = parse_policy(document, origin)?;
    if !cluster.is_empty() {
        policy.target.cluster = Some(cluster.to_string());
    }
    Ok(policy)
}

fn targets(policy: &Policy, host: &HostRecord) -> bool {
    let id = &host.identity;
    policy
        .target
        .matches(&id.host_id, &id.hostname, &id.cluster, &id.labels)
}

/// What a host is sent of a policy's version `v`.
fn spec_of(v: &PolicyVersion) -> PolicySpec {
    PolicySpec {
        name: v.name.clone(),
        version: v.version,
        document: v.document.clone(),
        forced: v.forced,
    }
}

/// What `v` adds to a `PolicySync` (its entries are concatenated: the sizes add up).
fn sync_bytes(v: &PolicyVersion) -> usize {
    PolicySync {
        policies: vec![spec_of(v)],
    }
    .encoded_len()
}

/// Refuses `change` (a version about to be stored) when the policies in force with it, in
/// place of its policy's current version, would exceed [`MAX_POLICY_SET_BYTES`].
fn check_set_size(inner: &Inner, change: &PolicyVersion) -> Result<(), PolicyBookError> {
    let others: usize = inner
        .in_force
        .keys()
        .filter(|name| **name != change.name)
        .filter_map(|name| inner.versions.get(name)?.last())
        .map(sync_bytes)
        .sum();
    let bytes = others + sync_bytes(change);
    if bytes > MAX_POLICY_SET_BYTES {
        return Err(PolicyBookError::Precondition(format!(
            "policy {:?} version {} refused: the policies in force would take {bytes} bytes \
             together, and a host's policy set is at most {MAX_POLICY_SET_BYTES} bytes (it \
             travels in one message of at most {MAX_MESSAGE_BYTES}); delete or shrink policies first",
            change.name, change.version
        )));
    }
    Ok(())
}

/// The version whose document is in force after `v` (None after a delete).
fn in_force_version(v: &PolicyVersion) -> Option<u64> {
    match v.action.as_str() {
        ACTION_DELETE => None,
        ACTION_ROLLBACK => Some(v.restores),
        _ => Some(v.version),
    }
}

/// Converts an agent's process entry for the matcher, with the identity the agent read (see
/// `fleet_policy::identity`), so a dry run matches `exe:` as the agent will. The identity is
/// taken as sent, except that it cannot say more than the entry does: an image is "at its path"
/// only when there is a path, and a device and inode of 0 are none (an older agent, or an
/// unreadable exe). An agent that sends no identity has its processes match no `exe:` here.
pub fn process_info(e: &fleet_proto::v1::ProcessEntry) -> ProcessInfo {
    let exe = (!e.exe.is_empty()).then(|| e.exe.clone());
    ProcessInfo {
        pid: e.pid,
        ppid: e.ppid,
        comm: e.comm.clone(),
        exe_id: (e.exe_dev != 0 || e.exe_ino != 0).then_some(FileId {
            dev: e.exe_dev,
            ino: e.exe_ino,
        }),
        exe_at_path: e.exe_at_path && exe.is_some(),
        foreign_mount_ns: e.foreign_mount_ns,
        exe_denied: e.exe_denied,
        starttime: e.starttime,
        exe,
        cmdline: e.cmdline.clone(),
        uid: e.uid,
        cgroup: e.cgroup.clone(),
        oom_score_adj: e.oom_score_adj,
        rss_kb: e.rss_kb,
    }
}

impl PolicyBook {
    /// Loads the policies and host statuses from the store.
    ///
    /// # Errors
    /// [`StorageError`] if the store cannot be read or a record does not decode.
    pub fn open(store: Arc<dyn PolicyRecords>) -> Result<PolicyBook, StorageError> {
        let mut inner = Inner::default();
        for (k, v) in store.policy_records()? {
            let key = keys::decode_policy_key(&k)?;
            match key {
                PolicyKey::Version { name, .. } => {
                    let rec = values::decode_policy_version(&name, &v)?;
                    inner.versions.entry(name).or_default().push(rec);
                }
                PolicyKey::Status { name, host_num } => {
                    let rec = values::decode_policy_status(&name, host_num, &v)?;
                    inner.statuses.insert((name, host_num), rec);
                }
            }
        }
        for (name, versions) in &inner.versions {
            let current = versions.last().expect("at least one version");
            if current.action == ACTION_DELETE {
                continue;
            }
            match parse_with_cluster(&current.document, name, &current.cluster) {
                Ok(p) => {
                    inner.in_force.insert(name.clone(), p);
                }
                // Accepted once by the same parser; a newer collector may have tightened it.
                Err(e) => {
                    warn!(policy = %name, error = %e, "stored policy no longer parses; not pushed")
                }
            }
        }
        // Stored before the set was capped: the policies past the cap (by name) are not pushed.
        let mut names: Vec<String> = inner.in_force.keys().cloned().collect();
        names.sort();
        let mut total = 0;
        for name in names {
            let bytes = sync_bytes(inner.versions[&name].last().expect("in force has versions"));
            if total + bytes > MAX_POLICY_SET_BYTES {
                inner.in_force.remove(&name);
                warn!(policy = %name, max_bytes = MAX_POLICY_SET_BYTES,
                    "stored policy does not fit in the policy set; not pushed");
            } else {
                total += bytes;
            }
        }
        info!(policies = inner.in_force.len(), "OOM policies loaded");
        Ok(PolicyBook {
            store,
            inner: Mutex::new(inner),
            changed: watch::channel(0).0,
            reports_dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes whenever a policy changes (a counter); agent sessions wait on it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The policies `host` must enforce, by name.
    pub fn desired_for(&self, host: &HostRecord) -> Vec<PolicySpec> {
        let inner = self.lock();
        let mut out: Vec<PolicySpec> = inner
            .in_force
            .iter()
            .filter(|(_, p)| targets(p, host))
            .map(|(name, _)| spec_of(inner.versions[name].last().expect("in force has versions")))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Keeps a host's latest process list (for dry runs and the safety checks).
    pub fn set_processes(&self, host_num: u32, list: &ProcessList) {
        let mut users = HashMap::new();
        for e in &list.processes {
            if !e.user.is_empty() {
                users.entry(e.uid).or_insert_with(|| e.user.clone());
            }
        }
        let processes = list.processes.iter().map(process_info).collect();
        self.lock().processes.insert(
            host_num,
            HostProcesses {
                time_ms: list.time_ms,
                processes,
                users,
            },
        );
    }

    /// The plan and the refusals of `policy` on each host it targets, after the refusal of the
    /// policy itself (no host named) when it has one.
    fn plan_hosts(
        inner: &Inner,
        policy: &Policy,
        hosts: &[HostRecord],
    ) -> (Vec<HostPlan>, Vec<PolicyRefusal>) {
        let mut plans = Vec::new();
        let mut refusals: Vec<PolicyRefusal> = check_policy(policy)
            .into_iter()
            .map(|r| PolicyRefusal {
                kind: r.kind.as_str().to_string(),
                reason: r.reason,
                ..PolicyRefusal::default()
            })
            .collect();
        for h in hosts.iter().filter(|h| targets(policy, h)) {
            let mut hp = HostPlan {
                host_id: h.identity.host_id.clone(),
                hostname: h.identity.hostname.clone(),
                cluster: h.identity.cluster.clone(),
                connected: h.connected,
                ..HostPlan::default()
            };
            if let Some(procs) = inner.processes.get(&h.num) {
                let mut p = policy.clone();
                p.resolve_users(|name| {
                    procs
                        .users
                        .iter()
                        .find(|(_, n)| n.as_str() == name)
                        .map(|(uid, _)| *uid)
                });
                hp.processes_time_ms = procs.time_ms;
                hp.changes = plan(&p, &procs.processes)
                    .into_iter()
                    .map(|c| PlannedChange {
                        pid: c.pid,
                        comm: c.comm,
                        from: c.from,
                        to: c.to,
                    })
                    .collect();
                let label = if h.identity.hostname.is_empty() {
                    &h.identity.host_id
                } else {
                    &h.identity.hostname
                };
                for r in check_safety_on(&p, label, &procs.processes) {
                    refusals.push(PolicyRefusal {
                        host_id: h.identity.host_id.clone(),
                        hostname: h.identity.hostname.clone(),
                        kind: r.kind.as_str().to_string(),
                        reason: r.reason,
                    });
                }
            }
            plans.push(hp);
        }
        (plans, refusals)
    }

    fn store_version(&self, inner: &mut Inner, rec: PolicyVersion) -> Result<(), StorageError> {
        let key = keys::policy_version_key(&rec.name, rec.version)
            .map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
        self.store
            .policy_write(&[(key, values::encode_policy_version(&rec))])?;
        let name = rec.name.clone();
        if rec.action == ACTION_DELETE {
            inner.in_force.remove(&name);
        } else {
            let p = parse_with_cluster(&rec.document, &name, &rec.cluster)
                .map_err(|e| StorageError::InvalidArgument(e.to_string()))?;
            inner.in_force.insert(name.clone(), p);
        }
        info!(policy = %name, version = rec.version, action = %rec.action, actor = %rec.actor,
            forced = rec.forced, "OOM policy changed");
        inner.versions.entry(name).or_default().push(rec);
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// `fleetctl policy apply`: checks, plans and (unless a dry run or refused) stores a new
    /// version and pushes it. `hosts` is the host registry.
    ///
    /// # Errors
    /// [`PolicyBookError::Document`] for a document that does not parse (naming the field);
    /// [`PolicyBookError::Storage`] if the version cannot be stored.
    pub fn apply(
        &self,
        req: &ApplyPolicyRequest,
        actor: &str,
        hosts: &[HostRecord],
        now_ms: i64,
    ) -> Result<PolicyChange, PolicyBookError> {
        let origin = if req.origin.is_empty() {
            "policy document"
        } else {
            &req.origin
        };
        let policy = parse_with_cluster(&req.document, origin, &req.cluster)?;
        let mut inner = self.lock();
        let (plans, refusals) = Self::plan_hosts(&inner, &policy, hosts);
        let last = inner.versions.get(&policy.name).and_then(|v| v.last());
        let unchanged = last.filter(|cur| {
            cur.action != ACTION_DELETE
                && cur.document == req.document
                && cur.cluster == req.cluster
        });
        let rec = PolicyVersion {
            name: policy.name.clone(),
            version: last.map_or(1, |v| v.version + 1),
            action: ACTION_APPLY.into(),
            document: req.document.clone(),
            actor: actor.to_string(),
            time_ms: now_ms,
            forced: req.force,
            restores: 0,
            oom_score_adj: policy.oom_score_adj,
            target: policy.target.describe(),
            r#match: policy.matcher.describe(),
            cluster: req.cluster.clone(),
        };
        // A dry run says it too: it would be refused.
        if unchanged.is_none() {
            check_set_size(&inner, &rec)?;
        }
        if req.dry_run {
            return Ok(PolicyChange {
                dry_run: true,
                hosts: plans,
                refusals,
                ..PolicyChange::default()
            });
        }
        if !refusals.is_empty() && !req.force {
            info!(policy = %policy.name, actor, refusals = refusals.len(), "OOM policy refused by the safety checks");
            return Ok(PolicyChange {
                hosts: plans,
                refusals,
                ..PolicyChange::default()
            });
        }
        if let Some(cur) = unchanged {
            return Ok(PolicyChange {
                policy: Some(cur.clone()),
                hosts: plans,
                refusals,
                unchanged: true,
                ..PolicyChange::default()
            });
        }
        self.store_version(&mut inner, rec.clone())?;
        Ok(PolicyChange {
            policy: Some(rec),
            hosts: plans,
            refusals,
            ..PolicyChange::default()
        })
    }

    /// `fleetctl policy rollback`: back to the version in force before the current one.
    ///
    /// # Errors
    /// [`PolicyBookError::NotFound`]; [`PolicyBookError::Precondition`] when there is no
    /// earlier version to go back to; [`PolicyBookError::Storage`].
    pub fn rollback(
        &self,
        name: &str,
        actor: &str,
        hosts: &[HostRecord],
        now_ms: i64,
    ) -> Result<PolicyChange, PolicyBookError> {
        let mut inner = self.lock();
        let versions = inner
            .versions
            .get(name)
            .ok_or_else(|| PolicyBookError::NotFound(name.to_string()))?;
        let current = versions.last().expect("at least one version");
        let target = match in_force_version(current) {
            // Undo the delete: what was in force before it.
            None => versions.iter().rev().nth(1).and_then(in_force_version),
            Some(k) => versions
                .iter()
                .rev()
                .find(|v| v.action == ACTION_APPLY && v.version < k)
                .map(|v| v.version),
        };
        let Some(target) = target else {
            return Err(PolicyBookError::Precondition(format!(
                "policy {name:?} has no earlier version to roll back to (version {} is the first in force)",
                current.version
            )));
        };
        let restored = versions
            .iter()
            .find(|v| v.version == target)
            .expect("target is a stored version")
            .clone();
        let rec = PolicyVersion {
            version: current.version + 1,
            action: ACTION_ROLLBACK.into(),
            actor: actor.to_string(),
            time_ms: now_ms,
            restores: target,
            ..restored
        };
        let policy = parse_with_cluster(&rec.document, name, &rec.cluster)?;
        check_set_size(&inner, &rec)?;
        let (plans, refusals) = Self::plan_hosts(&inner, &policy, hosts);
        self.store_version(&mut inner, rec.clone())?;
        Ok(PolicyChange {
            policy: Some(rec),
            hosts: plans,
            refusals,
            ..PolicyChange::default()
        })
    }

    /// `fleetctl policy delete`: agents stop enforcing it and restore the original values.
    ///
    /// # Errors
    /// [`PolicyBookError::NotFound`]; [`PolicyBookError::Precondition`] when already deleted;
    /// [`PolicyBookError::Storage`].
    pub fn delete(
        &self,
        name: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<PolicyChange, PolicyBookError> {
        let mut inner = self.lock();
        let current = inner
            .versions
            .get(name)
            .and_then(|v| v.last())
            .ok_or_else(|| PolicyBookError::NotFound(name.to_string()))?;
        if current.action == ACTION_DELETE {
            return Err(PolicyBookError::Precondition(format!(
                "policy {name:?} is already deleted (version {}); `fleetctl policy rollback {name}` brings it back",
                current.version
            )));
        }
        let rec = PolicyVersion {
            name: name.to_string(),
            version: current.version + 1,
            action: ACTION_DELETE.into(),
            document: String::new(),
            actor: actor.to_string(),
            time_ms: now_ms,
            forced: false,
            restores: 0,
            oom_score_adj: 0,
            target: current.target.clone(),
            r#match: current.r#match.clone(),
            cluster: current.cluster.clone(),
        };
        self.store_version(&mut inner, rec.clone())?;
        Ok(PolicyChange {
            policy: Some(rec),
            ..PolicyChange::default()
        })
    }

    /// The current version of every policy in force, optionally only those that target
    /// `cluster` (or every cluster).
    pub fn list(&self, cluster: &str) -> Vec<PolicyVersion> {
        let inner = self.lock();
        inner
            .versions
            .values()
            .filter_map(|v| v.last())
            .filter(|v| v.action != ACTION_DELETE)
            .filter(|v| {
                cluster.is_empty()
                    || inner
                        .in_force
                        .get(&v.name)
                        .is_some_and(|p| p.target.cluster.as_deref().is_none_or(|c| c == cluster))
            })
            .cloned()
            .collect()
    }

    /// How many policies are in force.
    pub fn in_force_count(&self) -> usize {
        self.lock().in_force.len()
    }

    /// Every version of a policy, oldest first.
    ///
    /// # Errors
    /// [`PolicyBookError::NotFound`].
    pub fn history(&self, name: &str) -> Result<Vec<PolicyVersion>, PolicyBookError> {
        self.lock()
            .versions
            .get(name)
            .cloned()
            .ok_or_else(|| PolicyBookError::NotFound(name.to_string()))
    }

    /// `fleetctl policy status`: per host, what it enforces against what it should.
    ///
    /// # Errors
    /// [`PolicyBookError::NotFound`].
    pub fn status(
        &self,
        name: &str,
        hosts: &[HostRecord],
    ) -> Result<PolicyStatusReport, PolicyBookError> {
        let inner = self.lock();
        let current = inner
            .versions
            .get(name)
            .and_then(|v| v.last())
            .ok_or_else(|| PolicyBookError::NotFound(name.to_string()))?
            .clone();
        let policy = inner.in_force.get(name);
        let mut out = Vec::new();
        for h in hosts {
            let targeted = policy.is_some_and(|p| targets(p, h));
            let reported = inner.statuses.get(&(name.to_string(), h.num));
            let enforcing = reported.and_then(|r| r.status.as_ref());
            let removed = reported.is_some_and(|r| r.removal.is_some());
            let state = if targeted {
                match enforcing {
                    Some(s) if s.version == current.version => STATE_ENFORCED,
                    Some(_) => STATE_OUTDATED,
                    None => STATE_PENDING,
                }
            } else if enforcing.is_some() {
                // Still enforced there: deleted or retargeted, and the host has not caught up.
                if policy.is_none() {
                    STATE_PENDING
                } else {
                    STATE_NOT_TARGETED
                }
            } else if removed {
                STATE_REMOVED
            } else {
                continue;
            };
            let mut rec = reported.cloned().unwrap_or_default();
            rec.host_id = h.identity.host_id.clone();
            rec.hostname = h.identity.hostname.clone();
            rec.cluster = h.identity.cluster.clone();
            rec.connected = h.connected;
            rec.state = state.to_string();
            out.push(rec);
        }
        Ok(PolicyStatusReport {
            policy: Some(current),
            hosts: out,
        })
    }
}

#[cfg(test)]
mod tests;
