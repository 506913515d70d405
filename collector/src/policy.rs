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
//! # Storage
//!
//! Versions and host statuses live in the `policies` column family (key layout in
//! [`crate::storage::keys`], values in [`crate::storage::values`]), one synced write per change
//! or report; everything is loaded into
//! memory at start. Process lists are kept in memory only: agents send them on connect, each
//! process with the identity the agent read ([`process_info`]), so a dry run matches `exe:` as
//! the agent will.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use fleet_policy::{
    check_policy, check_safety_on, parse_policy, plan, FileId, Policy, PolicyError, ProcessInfo,
};
use fleet_proto::v1::{
    ApplyPolicyRequest, HostPlan, HostPolicyStatus, PlannedChange, PolicyChange, PolicyRefusal,
    PolicyReport, PolicySpec, PolicyStatusReport, PolicyVersion, ProcessList,
};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::storage::keys::{self, PolicyKey};
use crate::storage::values;
use crate::storage::{HostRecord, StorageError, Store};

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
    /// (policy, host num) → what the host last reported.
    statuses: HashMap<(String, u32), HostPolicyStatus>,
    processes: HashMap<u32, HostProcesses>,
}

/// The collector's policies; shared by the `Policies` service and the agent sessions.
pub struct PolicyBook {
    store: Arc<Store>,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
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
    pub fn open(store: Arc<Store>) -> Result<PolicyBook, StorageError> {
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
        info!(policies = inner.in_force.len(), "OOM policies loaded");
        Ok(PolicyBook {
            store,
            inner: Mutex::new(inner),
            changed: watch::channel(0).0,
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
            .map(|(name, _)| {
                let current = inner.versions[name].last().expect("in force has versions");
                PolicySpec {
                    name: name.clone(),
                    version: current.version,
                    document: current.document.clone(),
                    forced: current.forced,
                }
            })
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
        let last = inner.versions.get(&policy.name).and_then(|v| v.last());
        if let Some(cur) = last {
            if cur.action != ACTION_DELETE
                && cur.document == req.document
                && cur.cluster == req.cluster
            {
                return Ok(PolicyChange {
                    policy: Some(cur.clone()),
                    hosts: plans,
                    refusals,
                    unchanged: true,
                    ..PolicyChange::default()
                });
            }
        }
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

    /// Stores what a host reported. Only policies whose report changed are written.
    ///
    /// # Errors
    /// [`StorageError`] if the write fails (the report is kept in memory anyway).
    pub fn report(&self, host: &HostRecord, report: &PolicyReport) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let mut puts = Vec::new();
        let base = HostPolicyStatus {
            host_id: host.identity.host_id.clone(),
            hostname: host.identity.hostname.clone(),
            cluster: host.identity.cluster.clone(),
            reported_ms: report.time_ms,
            ..HostPolicyStatus::default()
        };
        let entries = report
            .policies
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    HostPolicyStatus {
                        status: Some(s.clone()),
                        ..base.clone()
                    },
                )
            })
            .chain(report.removed.iter().map(|r| {
                (
                    r.name.clone(),
                    HostPolicyStatus {
                        removal: Some(r.clone()),
                        ..base.clone()
                    },
                )
            }));
        for (name, rec) in entries {
            let k = (name, host.num);
            let same = inner
                .statuses
                .get(&k)
                .is_some_and(|old| old.status == rec.status && old.removal == rec.removal);
            if same {
                continue;
            }
            match keys::policy_status_key(&k.0, host.num) {
                Ok(key) => puts.push((key, values::encode_policy_status(&rec))),
                Err(e) => {
                    warn!(host_id = %host.identity.host_id, error = %e, "policy report ignored");
                    continue;
                }
            }
            inner.statuses.insert(k, rec);
        }
        drop(inner);
        if puts.is_empty() {
            return Ok(());
        }
        self.store.policy_write(&puts)
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
mod tests {
    use super::*;
    use crate::storage::StoreOptions;
    use fleet_proto::v1::{HostIdentity, PolicyHostStatus, PolicyRemoval, ProcessEntry};

    fn open(dir: &std::path::Path) -> (Arc<Store>, PolicyBook) {
        let store = Arc::new(Store::open(dir, StoreOptions::default()).unwrap());
        let book = PolicyBook::open(store.clone()).unwrap();
        (store, book)
    }

    fn host(store: &Store, id: &str, cluster: &str) -> HostRecord {
        let identity = HostIdentity {
            host_id: id.into(),
            hostname: id.into(),
            cluster: cluster.into(),
            ..HostIdentity::default()
        };
        store.upsert_host(&identity, 1, true).unwrap()
    }

    /// A process of the host's mount namespace running the host's file at `exe`.
    fn entry(pid: u32, comm: &str, exe: &str, adj: i32, rss_kb: u64) -> ProcessEntry {
        ProcessEntry {
            pid,
            ppid: 1,
            comm: comm.into(),
            exe: exe.into(),
            cmdline: exe.into(),
            oom_score_adj: adj,
            rss_kb,
            exe_dev: 65024,
            exe_ino: 1000 + u64::from(pid),
            exe_at_path: true,
            starttime: 500,
            ..ProcessEntry::default()
        }
    }

    fn apply(
        book: &PolicyBook,
        doc: &str,
        hosts: &[HostRecord],
        dry: bool,
        force: bool,
    ) -> PolicyChange {
        let req = ApplyPolicyRequest {
            document: doc.into(),
            origin: "p.yaml".into(),
            dry_run: dry,
            force,
            ..ApplyPolicyRequest::default()
        };
        book.apply(&req, "alice@laptop (unauthenticated)", hosts, 1_000)
            .unwrap()
    }

    const SSHD: &str = "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {exe: /usr/sbin/sshd}\noom_score_adj: -1000\n";
    const SSHD_500: &str = "name: protect-sshd\ntarget: {cluster: prod}\nmatch: {exe: /usr/sbin/sshd}\noom_score_adj: -500\n";

    #[test]
    fn apply_dry_run_refusal_rollback_delete_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (store, book) = open(dir.path());
        let web1 = host(&store, "web1", "prod");
        let db1 = host(&store, "db1", "staging");
        let hosts = vec![web1.clone(), db1.clone()];
        book.set_processes(
            web1.num,
            &ProcessList {
                time_ms: 5,
                processes: vec![
                    entry(812, "sshd", "/usr/sbin/sshd", 0, 8_000),
                    entry(900, "java", "/usr/bin/java", 0, 4_000_000),
                ],
                truncated: false,
            },
        );

        // Dry run: the plan for the targeted host only, nothing stored or pushed.
        let rx = book.subscribe();
        let dry = apply(&book, SSHD, &hosts, true, false);
        assert!(dry.dry_run && dry.policy.is_none() && dry.refusals.is_empty());
        assert_eq!(dry.hosts.len(), 1);
        assert_eq!(dry.hosts[0].host_id, "web1");
        assert_eq!(dry.hosts[0].processes_time_ms, 5);
        let c = &dry.hosts[0].changes;
        assert_eq!((c.len(), c[0].pid, c[0].from, c[0].to), (1, 812, 0, -1000));
        assert!(book.list("").is_empty());
        assert!(!rx.has_changed().unwrap());
        assert!(book.desired_for(&web1).is_empty());

        // Refused: -1000 on the largest memory user; nothing stored. (Matched by exe: on comm
        // alone it would also be refused as weak_identity.)
        let java = "name: protect-java\ntarget: {cluster: prod}\nmatch: {exe: /usr/bin/java}\noom_score_adj: -1000\n";
        let refused = apply(&book, java, &hosts, false, false);
        assert!(refused.policy.is_none() && !refused.dry_run);
        assert_eq!(refused.refusals.len(), 1);
        assert_eq!(refused.refusals[0].kind, "largest_memory_user");
        assert!(
            refused.refusals[0].reason.contains("java"),
            "{}",
            refused.refusals[0].reason
        );
        assert!(matches!(
            book.history("protect-java"),
            Err(PolicyBookError::NotFound(_))
        ));
        // Forced, it is stored and marked so.
        let forced = apply(&book, java, &hosts, false, true);
        assert!(forced.policy.as_ref().unwrap().forced);

        // Apply: version 1, pushed to web1 only.
        let v1 = apply(&book, SSHD, &hosts, false, false).policy.unwrap();
        assert_eq!((v1.version, v1.action.as_str()), (1, ACTION_APPLY));
        assert_eq!(v1.actor, "alice@laptop (unauthenticated)");
        assert_eq!(v1.target, "cluster=prod");
        let names = |h: &HostRecord| -> Vec<String> {
            book.desired_for(h).into_iter().map(|s| s.name).collect()
        };
        assert_eq!(names(&web1), ["protect-java", "protect-sshd"]);
        assert!(book.desired_for(&db1).is_empty());
        // The same document again stores nothing.
        assert_eq!(
            apply(&book, SSHD, &hosts, false, false)
                .policy
                .unwrap()
                .version,
            1
        );
        // --cluster replaces the target: now db1's.
        let req = ApplyPolicyRequest {
            document: SSHD.into(),
            cluster: "staging".into(),
            ..ApplyPolicyRequest::default()
        };
        let v2 = book
            .apply(&req, "bob", &hosts, 2_000)
            .unwrap()
            .policy
            .unwrap();
        assert_eq!((v2.version, v2.cluster.as_str()), (2, "staging"));
        assert_eq!(names(&db1), ["protect-sshd"]);
        assert_eq!(names(&web1), ["protect-java"]);
        let v3 = apply(&book, SSHD_500, &hosts, false, false).policy.unwrap();
        assert_eq!((v3.version, v3.oom_score_adj), (3, -500));

        // Status: web1 reports version 3; db1 still enforces version 2 (not targeted now).
        let report = |version: u64| PolicyReport {
            time_ms: 10,
            policies: vec![PolicyHostStatus {
                name: "protect-sshd".into(),
                version,
                matched: 1,
                set: 1,
                ..PolicyHostStatus::default()
            }],
            removed: vec![],
        };
        book.report(&web1, &report(3)).unwrap();
        book.report(&db1, &report(2)).unwrap();
        let st = book.status("protect-sshd", &hosts).unwrap();
        let states: Vec<(&str, &str)> = st
            .hosts
            .iter()
            .map(|h| (h.host_id.as_str(), h.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [("web1", STATE_ENFORCED), ("db1", STATE_NOT_TARGETED)]
        );

        // Rollback steps back one apply at a time: 3 → 2 → 1, then nothing earlier.
        let r4 = book
            .rollback("protect-sshd", "carol", &hosts, 3_000)
            .unwrap()
            .policy
            .unwrap();
        assert_eq!(
            (r4.version, r4.restores, r4.action.as_str()),
            (4, 2, ACTION_ROLLBACK)
        );
        assert_eq!(r4.document, SSHD);
        assert_eq!(r4.cluster, "staging");
        let r5 = book
            .rollback("protect-sshd", "carol", &hosts, 3_001)
            .unwrap()
            .policy
            .unwrap();
        assert_eq!((r5.version, r5.restores, r5.cluster.as_str()), (5, 1, ""));
        assert_eq!(names(&web1), ["protect-java", "protect-sshd"]);
        assert_eq!(book.desired_for(&web1)[1].version, 5);
        let e = book
            .rollback("protect-sshd", "carol", &hosts, 3_002)
            .unwrap_err();
        assert!(matches!(e, PolicyBookError::Precondition(_)), "{e}");
        // web1 enforces version 3 still: outdated until it reports 5.
        let st = book.status("protect-sshd", &hosts).unwrap();
        assert_eq!(st.hosts[0].state, STATE_OUTDATED);

        // Delete, then the host reports the removal.
        let d6 = book
            .delete("protect-sshd", "dave", 4_000)
            .unwrap()
            .policy
            .unwrap();
        assert_eq!((d6.version, d6.action.as_str()), (6, ACTION_DELETE));
        assert_eq!(names(&web1), ["protect-java"]);
        assert!(matches!(
            book.delete("protect-sshd", "dave", 4_001),
            Err(PolicyBookError::Precondition(_))
        ));
        assert_eq!(
            book.status("protect-sshd", &hosts).unwrap().hosts[0].state,
            STATE_PENDING
        );
        book.report(
            &web1,
            &PolicyReport {
                time_ms: 11,
                policies: vec![],
                removed: vec![PolicyRemoval {
                    name: "protect-sshd".into(),
                    version: 5,
                    restored: 1,
                    ..PolicyRemoval::default()
                }],
            },
        )
        .unwrap();
        let st = book.status("protect-sshd", &hosts).unwrap();
        assert_eq!(st.hosts[0].state, STATE_REMOVED);
        assert_eq!(st.hosts[0].removal.as_ref().unwrap().restored, 1);
        assert_eq!(book.list("").len(), 1, "deleted policies are not listed");

        // Rollback after a delete brings back what was in force before it.
        let r7 = book
            .rollback("protect-sshd", "erin", &hosts, 5_000)
            .unwrap()
            .policy
            .unwrap();
        assert_eq!((r7.version, r7.restores), (7, 1));

        // Everything survives a restart of the collector.
        drop(book);
        let again = PolicyBook::open(store.clone()).unwrap();
        let h = again.history("protect-sshd").unwrap();
        let actions: Vec<(u64, &str, &str)> = h
            .iter()
            .map(|v| (v.version, v.action.as_str(), v.actor.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                (1, "apply", "alice@laptop (unauthenticated)"),
                (2, "apply", "bob"),
                (3, "apply", "alice@laptop (unauthenticated)"),
                (4, "rollback", "carol"),
                (5, "rollback", "carol"),
                (6, "delete", "dave"),
                (7, "rollback", "erin"),
            ]
        );
        assert_eq!(again.desired_for(&web1).len(), 2);
        let st = again.status("protect-sshd", &hosts).unwrap();
        assert_eq!(st.hosts[0].removal.as_ref().unwrap().restored, 1);
    }

    /// The dry run matches `exe:` by the identity the agent sent, as the agent will: the user
    /// and mount namespace impostor whose exe, comm and cmdline read sshd is not in the plan.
    /// A value below 0 on claims alone is refused once for the policy (no host named), hosts or
    /// not; forced, it is stored and the refusal comes back with it.
    #[test]
    fn dry_runs_match_by_identity_and_claims_alone_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, book) = open(dir.path());
        let web1 = host(&store, "web1", "prod");
        let hosts = vec![web1.clone()];
        let impostor = ProcessEntry {
            exe_ino: 77,
            exe_at_path: false,
            foreign_mount_ns: true,
            uid: 65534,
            ..entry(4000, "sshd", "/usr/sbin/sshd", 0, 1_000)
        };
        book.set_processes(
            web1.num,
            &ProcessList {
                time_ms: 5,
                processes: vec![
                    entry(812, "sshd", "/usr/sbin/sshd", 0, 8_000),
                    impostor.clone(),
                    entry(900, "java", "/usr/bin/java", 0, 4_000_000),
                ],
                truncated: false,
            },
        );
        let dry = apply(&book, SSHD_500, &hosts, true, false);
        let pids: Vec<u32> = dry.hosts[0].changes.iter().map(|c| c.pid).collect();
        assert_eq!(pids, [812]);
        assert!(dry.refusals.is_empty());

        let weak = "name: weak\ntarget: {}\nmatch: {comm: sshd}\noom_score_adj: -500\n";
        for hosts in [&hosts[..], &[]] {
            let refused = apply(&book, weak, hosts, false, false);
            assert!(refused.policy.is_none());
            assert_eq!(refused.refusals.len(), 1, "{refused:?}");
            let r = &refused.refusals[0];
            assert_eq!((r.kind.as_str(), r.host_id.as_str()), ("weak_identity", ""));
            assert!(r.reason.contains("matched only by comm"), "{}", r.reason);
        }
        // The plan shows what enforcement would do: both sshd-named processes.
        let dry = apply(&book, weak, &hosts, true, false);
        assert_eq!(dry.hosts[0].changes.len(), 2);
        assert!(book.history("weak").is_err(), "nothing stored");
        let forced = apply(&book, weak, &hosts, false, true);
        assert!(forced.policy.unwrap().forced);
        assert_eq!(forced.refusals[0].kind, "weak_identity");

        // The conversion: no path, no image at it; a device and inode of 0 are none.
        let odd = process_info(&ProcessEntry {
            exe: String::new(),
            exe_at_path: true,
            exe_dev: 0,
            exe_ino: 0,
            ..impostor
        });
        assert!(!odd.exe_at_path && odd.exe.is_none() && odd.exe_id.is_none());
        assert!(odd.foreign_mount_ns);
        let sshd = process_info(&entry(812, "sshd", "/usr/sbin/sshd", 0, 1));
        assert_eq!(
            sshd.exe_id,
            Some(FileId {
                dev: 65024,
                ino: 1812
            })
        );
        assert!(sshd.exe_at_path && !sshd.foreign_mount_ns);
        assert_eq!(sshd.starttime, 500);
    }

    #[test]
    fn bad_documents_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, book) = open(dir.path());
        let req = ApplyPolicyRequest {
            document: "name: x\ntarget: {}\nmatch: {exe: /bin/x}\noom_score_adj: -2000\n".into(),
            origin: "x.yaml".into(),
            ..ApplyPolicyRequest::default()
        };
        let e = book.apply(&req, "a", &[], 1).unwrap_err().to_string();
        assert!(e.contains("x.yaml") && e.contains("oom_score_adj"), "{e}");
        assert!(matches!(
            book.status("nope", &[]),
            Err(PolicyBookError::NotFound(_))
        ));
    }
}
