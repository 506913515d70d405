//! The agent's side of the policy protocol, between the stream and the [`Enforcer`]:
//!
//! - [`PolicyRunner::sync`] takes the collector's complete policy set (`PolicySync`): policies
//!   absent from it are removed (originals restored), new versions are applied at once;
//! - [`PolicyRunner::tick`] (at least every `POLICY_TICK`, a second, with the sample ticks, while there are policies) applies them to processes
//!   started since the last tick;
//! - [`PolicyRunner::take_report`] is the `PolicyReport` to send when something changed (and on
//!   every connect);
//! - [`PolicyRunner::process_list`] is the host's process list for dry runs at the collector,
//!   sent on connect and then at most every [`LIST_EVERY`] when it changed, with each
//!   process's identity as the enforcer reads it (its image's device and inode, whether that is
//!   the host's file at its exe path, whether it lives in another mount namespace, its start
//!   time), so the collector's dry run matches `exe:` as the enforcer will. It is read with a
//!   scanner of its own, so it never hides a new process from the enforcer's next tick.
//!
//! The collector checks documents before it stores them; a document this agent cannot parse
//! (an older agent, say) is reported as a failure of that policy, and the version in force stays.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fleet_policy::parse_policy;
use fleet_proto::v1::{
    PolicyFailure, PolicyHostStatus, PolicyProcess, PolicyRemoval, PolicyReport, PolicySpec,
    ProcessEntry, ProcessList,
};
use prost::Message;
use tracing::{error, warn};

use super::{EnforceError, Enforcer, PolicyStatus, ProcDir, ProcScanner, RemoveReport};
use crate::now_ms;

/// How often a changed process list is sent, at most.
pub const LIST_EVERY: Duration = Duration::from_secs(60);
/// Command lines in the process list are cut to this many bytes.
pub const MAX_CMDLINE_BYTES: usize = 512;
/// A process list stops growing at this encoded size (the message limit is 4 MiB).
pub const MAX_LIST_BYTES: usize = 3 * 1024 * 1024;
/// Processes listed per policy in a report.
pub const MAX_REPORTED_PROCESSES: usize = 64;

/// See the module doc.
pub struct PolicyRunner {
    enforcer: Enforcer,
    lister: ProcScanner,
    proc_root: PathBuf,
    passwd: PathBuf,
    /// Removals since the last report.
    removed: Vec<PolicyRemoval>,
    /// Policies whose document this agent could not parse: name → (version, why).
    unparsable: BTreeMap<String, (u64, String)>,
    /// The statuses last reported (None: a report is due).
    reported: Option<Vec<PolicyStatus>>,
    /// The version and document this runner applied, per policy. Empty after a restart, so the
    /// first sync applies everything again (idempotent: originals are kept), and a document
    /// that changed under the same version (a collector rebuilt from scratch) is not missed.
    applied: HashMap<String, (u64, String)>,
    list_sent: Option<(Instant, u64)>,
}

fn failures(list: &[(u32, String)]) -> Vec<PolicyFailure> {
    list.iter()
        .map(|(pid, reason)| PolicyFailure {
            pid: *pid,
            reason: reason.clone(),
        })
        .collect()
}

fn removal(name: &str, version: u64, r: &RemoveReport) -> PolicyRemoval {
    PolicyRemoval {
        name: name.to_string(),
        version,
        restored: r.restored as u32,
        handed_over: r.handed_over as u32,
        failed: failures(&r.failed),
    }
}

/// uid → name from the text of /etc/passwd.
fn users(passwd: &str) -> HashMap<u32, String> {
    passwd
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl PolicyRunner {
    /// Opens the enforcer on `state_dir` (loading the policies kept there, which are enforced
    /// from the first tick on, collector or not).
    ///
    /// # Errors
    /// [`EnforceError`] as [`Enforcer::open`].
    pub fn open(
        proc_root: &Path,
        etc_root: &Path,
        state_dir: &Path,
    ) -> Result<PolicyRunner, EnforceError> {
        Ok(PolicyRunner {
            enforcer: Enforcer::open(proc_root, etc_root, state_dir)?,
            lister: ProcScanner::new(proc_root),
            proc_root: proc_root.to_path_buf(),
            passwd: etc_root.join("passwd"),
            removed: Vec::new(),
            unparsable: BTreeMap::new(),
            reported: None,
            applied: HashMap::new(),
            list_sent: None,
        })
    }

    /// Whether any policy is enforced (the enforcement tick runs only then).
    pub fn has_policies(&self) -> bool {
        self.enforcer.policies().next().is_some()
    }

    /// The enforcer (tests, and the dry run's snapshot).
    pub fn enforcer(&mut self) -> &mut Enforcer {
        &mut self.enforcer
    }

    /// Makes the enforced set the collector's `specs`: removes what is absent, applies new
    /// versions. Errors of the state directory are logged; the report tells the collector.
    pub fn sync(&mut self, specs: &[PolicySpec]) {
        let enforced: Vec<(String, u64)> = self
            .enforcer
            .policies()
            .map(|(p, v)| (p.name.clone(), v))
            .collect();
        for (name, version) in &enforced {
            if specs.iter().any(|s| &s.name == name) {
                continue;
            }
            self.applied.remove(name);
            match self.enforcer.remove(name) {
                Ok(Some(r)) => self.removed.push(removal(name, *version, &r)),
                Ok(None) => {}
                Err(e) => error!(policy = %name, error = %e, "cannot remove OOM policy"),
            }
        }
        self.unparsable
            .retain(|name, _| specs.iter().any(|s| &s.name == name));
        for spec in specs {
            let current = enforced.iter().find(|(n, _)| n == &spec.name).map(|e| e.1);
            let same = self
                .applied
                .get(&spec.name)
                .is_some_and(|(v, doc)| *v == spec.version && *doc == spec.document);
            if (current == Some(spec.version) && same)
                || self
                    .unparsable
                    .get(&spec.name)
                    .is_some_and(|(v, _)| *v == spec.version)
            {
                continue;
            }
            let policy = match parse_policy(&spec.document, &spec.name) {
                Ok(p) if p.name == spec.name => p,
                Ok(p) => {
                    let why = format!("document names policy {:?}, not {:?}", p.name, spec.name);
                    warn!(policy = %spec.name, error = %why, "OOM policy not applied");
                    self.unparsable
                        .insert(spec.name.clone(), (spec.version, why));
                    continue;
                }
                Err(e) => {
                    warn!(policy = %spec.name, error = %e, "OOM policy not applied");
                    self.unparsable
                        .insert(spec.name.clone(), (spec.version, e.to_string()));
                    continue;
                }
            };
            self.unparsable.remove(&spec.name);
            match self.enforcer.apply_with(policy, spec.version, spec.forced) {
                Ok(_) => {
                    self.applied
                        .insert(spec.name.clone(), (spec.version, spec.document.clone()));
                }
                Err(e) => error!(policy = %spec.name, error = %e, "cannot apply OOM policy"),
            }
        }
        self.reported = None;
    }

    /// Applies the policies to new processes; notes a status change for the next report.
    pub fn tick(&mut self) {
        if let Err(e) = self.enforcer.tick() {
            warn!(error = %e, "OOM policy tick failed");
        }
        if self
            .reported
            .as_ref()
            .is_some_and(|r| *r != self.enforcer.status())
        {
            self.reported = None;
        }
    }

    /// Asks for a report at the next [`PolicyRunner::take_report`] (a new session).
    pub fn report_due(&mut self) {
        self.reported = None;
    }

    /// The report to send, when one is due.
    pub fn take_report(&mut self) -> Option<PolicyReport> {
        if self.reported.is_some() {
            return None;
        }
        let status = self.enforcer.status();
        let mut policies: Vec<PolicyHostStatus> = status
            .iter()
            .map(|s| PolicyHostStatus {
                name: s.name.clone(),
                version: s.version,
                matched: s.matched as u32,
                set: s.set as u32,
                failed: failures(&s.failed),
                processes: self.processes_of(&s.name),
            })
            .collect();
        for (name, (version, why)) in &self.unparsable {
            if policies.iter().any(|p| &p.name == name) {
                // The older version stays in force; say why the new one is not.
                let p = policies
                    .iter_mut()
                    .find(|p| &p.name == name)
                    .expect("found");
                p.failed.push(PolicyFailure {
                    pid: 0,
                    reason: format!("version {version} not applied: {why}"),
                });
            } else {
                policies.push(PolicyHostStatus {
                    name: name.clone(),
                    version: 0,
                    failed: vec![PolicyFailure {
                        pid: 0,
                        reason: format!("version {version} not applied: {why}"),
                    }],
                    ..PolicyHostStatus::default()
                });
            }
        }
        self.reported = Some(status);
        Some(PolicyReport {
            time_ms: now_ms(),
            policies,
            removed: std::mem::take(&mut self.removed),
        })
    }

    /// The processes a policy holds now, with their values now and before.
    fn processes_of(&self, name: &str) -> Vec<PolicyProcess> {
        self.enforcer
            .matched(name)
            .into_iter()
            .take(MAX_REPORTED_PROCESSES)
            .filter_map(|key| {
                // Through the process's own directory, checked: a pid reused since names another.
                let dir = ProcDir::open(&self.proc_root, key.pid).ok()?;
                if dir.starttime()? != key.starttime {
                    return None;
                }
                let now: i32 = dir.read_text("oom_score_adj")?.parse().ok()?;
                Some(PolicyProcess {
                    pid: key.pid,
                    comm: dir.read_text("comm").unwrap_or_default(),
                    oom_score_adj: now,
                    original: self.enforcer.original(key).unwrap_or(now),
                })
            })
            .collect()
    }

    /// The process list to send: always when `force` (a new session), else when it changed and
    /// [`LIST_EVERY`] has passed since the last one.
    pub fn process_list(&mut self, force: bool) -> Option<ProcessList> {
        if !force
            && self
                .list_sent
                .is_some_and(|(at, _)| at.elapsed() < LIST_EVERY)
        {
            return None;
        }
        let procs = match self.lister.scan_all() {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot list processes");
                return None;
            }
        };
        let names = std::fs::read_to_string(&self.passwd)
            .map(|t| users(&t))
            .unwrap_or_default();
        let mut list = ProcessList {
            time_ms: now_ms(),
            ..ProcessList::default()
        };
        let mut size = 0;
        let mut hasher = DefaultHasher::new();
        for i in procs {
            let entry = ProcessEntry {
                pid: i.pid,
                ppid: i.ppid,
                user: names.get(&i.uid).cloned().unwrap_or_default(),
                comm: i.comm,
                exe: i.exe.unwrap_or_default(),
                cmdline: cut(&i.cmdline, MAX_CMDLINE_BYTES),
                uid: i.uid,
                cgroup: i.cgroup,
                oom_score_adj: i.oom_score_adj,
                rss_kb: i.rss_kb,
                exe_dev: i.exe_id.map_or(0, |f| f.dev),
                exe_ino: i.exe_id.map_or(0, |f| f.ino),
                exe_at_path: i.exe_at_path,
                foreign_mount_ns: i.foreign_mount_ns,
                exe_denied: i.exe_denied,
                starttime: i.starttime,
            };
            size += entry.encoded_len() + 4;
            if size > MAX_LIST_BYTES {
                list.truncated = true;
                break;
            }
            (
                entry.pid,
                entry.starttime,
                entry.oom_score_adj,
                &entry.exe,
                &entry.cmdline,
                entry.exe_ino,
                entry.exe_at_path,
            )
                .hash(&mut hasher);
            list.processes.push(entry);
        }
        let hash = hasher.finish();
        if !force && self.list_sent.is_some_and(|(_, h)| h == hash) {
            self.list_sent = Some((Instant::now(), hash));
            return None;
        }
        self.list_sent = Some((Instant::now(), hash));
        Some(list)
    }

    /// Forget that a list was sent (it was not: the stream was full), so the next try sends.
    pub fn list_unsent(&mut self) {
        self.list_sent = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_names_and_cutting() {
        let u = users("root:x:0:0:root:/root:/bin/bash\nsshd:x:101:65534::/run/sshd:/usr/sbin/nologin\nbroken\n");
        assert_eq!(u.get(&0).map(String::as_str), Some("root"));
        assert_eq!(u.get(&101).map(String::as_str), Some("sshd"));
        assert_eq!(u.len(), 2);
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 5), "abc");
    }
}
