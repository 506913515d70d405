//! OOM policy enforcement: sets `/proc/PID/oom_score_adj` of the processes a policy matches,
//! keeps doing so for processes that start later, and restores the original values when a
//! policy is removed. The policy format, matching and safety checks are `fleet_policy`'s.
//!
//! Layout:
//! - [`scan`]: [`ProcScanner`] reads processes from a proc root; its `tick` examines only new
//!   pids, so a tick costs one readdir when nothing started, and of a new process it reads only
//!   what the policies match on (`stat` and `cmdline`, plus the exe identity, `status` or
//!   `cgroup` when a policy names them); the enforcer reads in full only the processes a policy
//!   holds or matches (a busy host starts many that none does).
//! - [`parse`]: the pure parsers of what it reads (`stat`, `status`, `statm`, `/proc/loadavg`).
//! - [`procdir`]: [`ProcDir`], one process's opened `/proc/PID`: every read and write goes
//!   through it, checked against the identity that was matched.
//! - [`host`]: [`HostView`], the host's mount namespace (PID 1's, else the agent's own) that
//!   `exe:` is resolved in.
//! - [`state`]: the state file (policies, versions, which processes each matched, their
//!   original values), replaced atomically, so enforcement and restores survive a restart.
//! - [`release`]: every policy removed and every original value restored at once
//!   (`fleet-agent release-policies`, the uninstall path).
//! - [`Enforcer`]: `apply`, `remove`, `tick`, `status`.
//!
//! When several policies match a process, the one applied last wins (list order; re-applying a
//! policy keeps its place). The original value is the one the process had before the first
//! policy touched it, and it is written to the state file *before* the new value is written to
//! the process, so a crash in between cannot make the policy's value look original.
//!
//! A process is identified by its pid and its starttime (field 22 of /proc/PID/stat). Each
//! write opens `/proc/PID` and checks, through that directory's descriptor, the starttime and,
//! for a policy's value, the device and inode of the running image that matched; then writes
//! through the same descriptor. A descriptor of an exited process answers `ESRCH` whoever holds
//! its pid now, so a reused pid never receives another process's value, and a process that
//! exec'd another program since it was matched is not written either ([`EXE_CHANGED`]).
//!
//! `exe:` matches by the identity of the running image (see `fleet_policy::identity`). A
//! process the enforcer holds whose binary is then replaced on disk (an upgrade) no longer
//! matches by itself; as long as its image is the one that matched, it is kept and its value
//! stays (also across a restart of the agent: the state file records the image). A restart of
//! the program matches the new file.
//!
//! Lowering a value below the current one needs CAP_SYS_RESOURCE; without it writes fail with
//! "permission denied" and are reported in [`PolicyStatus::failed`].
//!
//! # Safety net
//!
//! The collector refuses a policy that breaks `fleet_policy`'s safety rules unless forced, but
//! it checks against the process lists it has, and cannot see processes that start later. So
//! the enforcer checks again on the host, for policies not applied with `--force`: at apply
//! time the whole rule set ([`fleet_policy::check_policy`]: a value below 0 on a match that
//! rests on claims alone; [`fleet_policy::check_safety`]: -1000 on too many processes or on the
//! largest), and a policy that breaks it takes no process at all (each match is reported with
//! the reason); later, a new process is not taken by a -1000 policy once it holds
//! [`MAX_DISABLED_PER_HOST`] processes.

pub mod host;
pub mod parse;
pub mod procdir;
pub mod release;
pub mod runner;
pub mod scan;
pub mod state;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use fleet_policy::{
    check_policy, check_safety, uid_of, FileId, Policy, ProcessInfo, MAX_DISABLED_PER_HOST,
};
use thiserror::Error;
use tracing::{debug, info, warn};

pub use host::{HostView, Reference};
pub use procdir::{Expect, ProcDir, WriteError};
pub use runner::PolicyRunner;
pub use scan::{ProcScanner, Tick};

/// Failure reason: the kernel refused the write (no CAP_SYS_RESOURCE to lower the value).
pub const PERMISSION_DENIED: &str = "permission denied";
/// Failure reason: the process exited (or its pid now names another process).
pub const PROCESS_GONE: &str = "process gone";
/// Failure reason: the process runs another program than the one matched (it exec'd since the
/// scan); it is matched again by what it runs now at the next full rescan.
pub const EXE_CHANGED: &str = "executable changed since it was matched";
/// Failure reason: the process meets every criterion but `exe:`, which the agent could not
/// check (reported so that a missing capability does not look like "nothing matched").
pub const EXE_UNREADABLE: &str = "not matched: its executable cannot be read (permission denied; \
     the agent needs CAP_SYS_PTRACE to read other users' /proc/PID/exe)";
/// Failures kept per policy for its status; the oldest go first.
pub const MAX_FAILURES: usize = 64;

/// A process: its pid and starttime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    pub pid: u32,
    pub starttime: u64,
}

/// What a policy does on this host now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatus {
    pub name: String,
    pub version: u64,
    /// Live processes the policy applies to.
    pub matched: usize,
    /// Of those, the ones holding the value (set by the agent, or already so).
    pub set: usize,
    /// Writes that failed, with the reason ([`PERMISSION_DENIED`], [`PROCESS_GONE`], or the
    /// error in words); at most [`MAX_FAILURES`].
    pub failed: Vec<(u32, String)>,
}

/// What removing a policy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// Processes given back their original value.
    pub restored: usize,
    /// Processes now holding the value of another policy that also matches them.
    pub handed_over: usize,
    pub failed: Vec<(u32, String)>,
}

/// Why the enforcer could not do its work.
#[derive(Debug, Error)]
pub enum EnforceError {
    #[error("policy state in {dir}: {source}")]
    State { dir: PathBuf, source: io::Error },
    #[error("cannot list processes in {root}: {source}")]
    Proc { root: PathBuf, source: io::Error },
}

/// A process a policy holds: its starttime, and the running image it had when it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    starttime: u64,
    image: Option<FileId>,
}

struct Entry {
    policy: Policy,
    version: u64,
    /// Applied with `--force`: the safety net is off.
    forced: bool,
    /// Why the safety net refused this version at apply time: it takes no process.
    blocked: Option<String>,
    /// pid → the live processes the policy applies to.
    matched: BTreeMap<u32, Held>,
    failed: Vec<(u32, String)>,
}

/// Whether `p` is a process `held` holds with the image it matched with (its file may have been
/// replaced on disk since): then `exe:` is taken as met ([`fleet_policy::Matcher::still_matches`]).
fn same_image(held: &BTreeMap<u32, Held>, p: &ProcessInfo) -> bool {
    held.get(&p.pid)
        .is_some_and(|h| h.starttime == p.starttime && h.image.is_some() && h.image == p.exe_id)
}

impl Entry {
    /// Whether the safety net applies: -1000 and not forced.
    fn guarded(&self) -> bool {
        !self.forced && self.policy.oom_score_adj == fleet_policy::doc::OOM_SCORE_ADJ_MIN
    }

    fn holds(&self, key: ProcKey) -> bool {
        self.held(key).is_some()
    }

    fn held(&self, key: ProcKey) -> Option<Held> {
        self.matched
            .get(&key.pid)
            .filter(|h| h.starttime == key.starttime)
            .copied()
    }

    fn fail(&mut self, pid: u32, reason: String) {
        self.failed.retain(|(p, _)| *p != pid);
        if self.failed.len() >= MAX_FAILURES {
            self.failed.remove(0);
        }
        self.failed.push((pid, reason));
    }

    fn status(&self) -> PolicyStatus {
        let failing = self
            .failed
            .iter()
            .filter(|(pid, _)| self.matched.contains_key(pid))
            .count();
        PolicyStatus {
            name: self.policy.name.clone(),
            version: self.version,
            matched: self.matched.len(),
            set: self.matched.len() - failing,
            failed: self.failed.clone(),
        }
    }
}

/// Enforces policies on the processes of one proc root.
pub struct Enforcer {
    scanner: ProcScanner,
    etc_root: PathBuf,
    state_dir: PathBuf,
    policies: Vec<Entry>,
    /// The value each process had before a policy changed it.
    originals: BTreeMap<ProcKey, i32>,
}

/// A write to make: the process, the value, and which policy asked (none for a restore), with
/// the image the policy matched (checked before a policy's value is written).
struct Pending {
    key: ProcKey,
    value: i32,
    policy: Option<usize>,
    image: Option<FileId>,
}

impl Enforcer {
    /// Opens the enforcer, loading the policies and original values stored in `state_dir`.
    /// Stored processes that have exited are forgotten. Nothing is written to processes until
    /// the first [`Enforcer::tick`], which examines every process.
    ///
    /// `etc_root` holds `passwd`, for policies that match a user by name.
    ///
    /// # Errors
    /// [`EnforceError::State`] when the state file exists but cannot be read or understood.
    pub fn open(
        proc_root: &Path,
        etc_root: &Path,
        state_dir: &Path,
    ) -> Result<Enforcer, EnforceError> {
        let scanner = ProcScanner::new(proc_root);
        let host = scanner.host();
        match host.why_not_pid1() {
            None => info!(root = %host.root_path().display(),
                "exe: is matched in PID 1's mount namespace"),
            Some(why) => warn!(error = %why,
                "cannot read PID 1's mount namespace (the agent needs CAP_SYS_PTRACE for it): \
                 exe: is matched in the agent's own, and processes of any other are foreign"),
        }
        let mut e = Enforcer {
            scanner,
            etc_root: etc_root.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            policies: Vec::new(),
            originals: BTreeMap::new(),
        };
        let stored = state::load(state_dir).map_err(|source| EnforceError::State {
            dir: state_dir.to_path_buf(),
            source,
        })?;
        if let Some(stored) = stored {
            let mut alive = HashMap::new();
            let mut is_alive = |scanner: &mut ProcScanner, pid: u32, st: u64| {
                *alive.entry(pid).or_insert_with(|| scanner.starttime(pid)) == Some(st)
            };
            for o in stored.originals {
                if is_alive(&mut e.scanner, o.pid, o.starttime) {
                    e.originals.insert(
                        ProcKey {
                            pid: o.pid,
                            starttime: o.starttime,
                        },
                        o.oom_score_adj,
                    );
                }
            }
            for p in stored.policies {
                let mut policy = p.policy;
                e.resolve_users(&mut policy);
                let images: HashMap<u32, FileId> = p
                    .images
                    .iter()
                    .map(|&(pid, dev, ino)| (pid, FileId { dev, ino }))
                    .collect();
                let matched = p
                    .matched
                    .into_iter()
                    .filter(|&(pid, st)| is_alive(&mut e.scanner, pid, st))
                    .map(|(pid, starttime)| {
                        let image = images.get(&pid).copied();
                        (pid, Held { starttime, image })
                    })
                    .collect();
                e.policies.push(Entry {
                    policy,
                    version: p.version,
                    forced: p.forced,
                    blocked: p.blocked,
                    matched,
                    failed: Vec::new(),
                });
            }
            info!(
                policies = e.policies.len(),
                originals = e.originals.len(),
                "OOM policies loaded"
            );
        }
        Ok(e)
    }

    /// The policies enforced, in the order they were first applied, with their versions.
    pub fn policies(&self) -> impl Iterator<Item = (&Policy, u64)> {
        self.policies.iter().map(|e| (&e.policy, e.version))
    }

    /// The status of every policy.
    pub fn status(&self) -> Vec<PolicyStatus> {
        self.policies.iter().map(Entry::status).collect()
    }

    /// The live processes a policy applies to (empty for an unknown policy).
    pub fn matched(&self, name: &str) -> Vec<ProcKey> {
        self.policies
            .iter()
            .find(|e| e.policy.name == name)
            .map(|e| {
                e.matched
                    .iter()
                    .map(|(&pid, h)| ProcKey {
                        pid,
                        starttime: h.starttime,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The original value recorded for a process, if a policy changed it.
    pub fn original(&self, key: ProcKey) -> Option<i32> {
        self.originals.get(&key).copied()
    }

    /// The process scanner (for a dry run's snapshot from the same proc root).
    pub fn scanner(&mut self) -> &mut ProcScanner {
        &mut self.scanner
    }

    /// Applies a policy now to every matching process, replacing the policy of the same name
    /// (processes it matched that the new version does not get their original value back).
    /// Safety checks are the caller's ([`fleet_policy::check_safety`]): what reaches the agent
    /// has been accepted.
    ///
    /// # Errors
    /// [`EnforceError`] when /proc cannot be listed or the state cannot be stored; writes to
    /// processes that fail are reported in the returned status instead.
    pub fn apply(&mut self, policy: Policy, version: u64) -> Result<PolicyStatus, EnforceError> {
        self.apply_with(policy, version, false)
    }

    /// [`Enforcer::apply`]; `forced` (the operator's `--force`) turns the safety net off.
    ///
    /// # Errors
    /// As [`Enforcer::apply`].
    pub fn apply_with(
        &mut self,
        mut policy: Policy,
        version: u64,
        forced: bool,
    ) -> Result<PolicyStatus, EnforceError> {
        self.resolve_users(&mut policy);
        let all = self.scanner.scan_all().map_err(|e| self.proc_error(e))?;
        // Whether the processes the old version holds by their image still count: only while
        // `exe:` names the same file.
        let mut keep_images = false;
        let (idx, old) = match self
            .policies
            .iter()
            .position(|e| e.policy.name == policy.name)
        {
            Some(i) => {
                let entry = &mut self.policies[i];
                keep_images = entry.policy.matcher.exe == policy.matcher.exe;
                entry.policy = policy;
                entry.version = version;
                entry.forced = forced;
                entry.blocked = None;
                entry.failed.clear();
                (i, std::mem::take(&mut entry.matched))
            }
            None => {
                self.policies.push(Entry {
                    policy,
                    version,
                    forced,
                    blocked: None,
                    matched: BTreeMap::new(),
                    failed: Vec::new(),
                });
                (self.policies.len() - 1, BTreeMap::new())
            }
        };
        let entry = &mut self.policies[idx];
        let unreadable: Vec<u32> = all
            .iter()
            .filter(|p| entry.policy.matcher.unreadable_exe(p))
            .map(|p| p.pid)
            .collect();
        for pid in unreadable {
            entry.fail(pid, EXE_UNREADABLE.to_string());
        }
        let policy = &self.policies[idx].policy;
        let mut selected = policy.select_by(&all, |_, p| {
            policy.matcher.matches_process(p)
                || (keep_images && same_image(&old, p) && policy.matcher.still_matches(p))
        });
        if !self.policies[idx].forced {
            let refusals: Vec<_> = check_policy(policy)
                .into_iter()
                .chain(check_safety(policy, &all))
                .collect();
            if !refusals.is_empty() {
                let reasons: Vec<String> = refusals.iter().map(|r| r.reason.clone()).collect();
                let why = format!(
                    "not set: {} (the agent's safety check; apply with --force to override)",
                    reasons.join("; ")
                );
                warn!(policy = %self.policies[idx].policy.name, version, reason = %why,
                    "OOM policy refused on this host");
                let entry = &mut self.policies[idx];
                for &i in &selected {
                    entry.fail(all[i].pid, why.clone());
                }
                entry.blocked = Some(why);
                selected.clear();
            }
        }
        let mut writes = Vec::new();
        for &i in &selected {
            let p = &all[i];
            let key = ProcKey {
                pid: p.pid,
                starttime: p.starttime,
            };
            let held = Held {
                starttime: p.starttime,
                image: p.exe_id,
            };
            self.policies[idx].matched.insert(key.pid, held);
            let (winner, value) = self.winner(key).expect("matched just now");
            if p.oom_score_adj != value {
                self.originals.entry(key).or_insert(p.oom_score_adj);
                writes.push(Pending {
                    key,
                    value,
                    policy: Some(winner),
                    image: p.exe_id,
                });
            }
        }
        for (pid, h) in old {
            let key = ProcKey {
                pid,
                starttime: h.starttime,
            };
            if !self.policies[idx].holds(key) {
                writes.push(self.release(key));
            }
        }
        self.store()?;
        let (restored, _) = self.write_all(writes);
        self.forget_restored(&restored);
        self.store()?;
        let status = self.policies[idx].status();
        info!(policy = %status.name, version, matched = status.matched, set = status.set,
            failed = status.failed.len(), "OOM policy applied");
        Ok(status)
    }

    /// Removes a policy: each process it matched gets back its original value (or the value of
    /// another policy that also matches it). `None` when there is no such policy.
    ///
    /// # Errors
    /// [`EnforceError::State`] when the state cannot be stored.
    pub fn remove(&mut self, name: &str) -> Result<Option<RemoveReport>, EnforceError> {
        let Some(idx) = self.policies.iter().position(|e| e.policy.name == name) else {
            return Ok(None);
        };
        let entry = self.policies.remove(idx);
        let writes: Vec<Pending> = entry
            .matched
            .iter()
            .map(|(&pid, h)| {
                self.release(ProcKey {
                    pid,
                    starttime: h.starttime,
                })
            })
            .collect();
        let handed_over = writes.iter().filter(|w| w.policy.is_some()).count();
        let (restored, failed) = self.write_all(writes);
        self.forget_restored(&restored);
        self.store()?;
        let report = RemoveReport {
            restored: restored.len(),
            handed_over: handed_over - failed.iter().filter(|f| f.2).count(),
            failed: failed.into_iter().map(|(pid, why, _)| (pid, why)).collect(),
        };
        info!(policy = %name, restored = report.restored, handed_over = report.handed_over,
            failed = report.failed.len(), "OOM policy removed");
        Ok(Some(report))
    }

    /// Applies the policies to processes started since the last tick (all processes on the
    /// first tick after [`Enforcer::open`]) and forgets processes that exited. Returns the
    /// number of values written.
    ///
    /// # Errors
    /// [`EnforceError`] when /proc cannot be listed or the state cannot be stored.
    pub fn tick(&mut self) -> Result<usize, EnforceError> {
        // The executable is read only for the processes that match on everything else
        // (read_in_full): of most new processes, `exe:` would cost four system calls for nothing.
        self.scanner.set_needs(scan::Needs {
            exe: false,
            ..scan::Needs::of(self.policies.iter().map(|e| &e.policy.matcher))
        });
        let mut tick = self.scanner.tick().map_err(|e| self.proc_error(e))?;
        let mut dirty = false;
        if !tick.vanished.is_empty() {
            let before = self.originals.len();
            self.originals
                .retain(|k, _| !tick.vanished.contains(&k.pid));
            dirty |= self.originals.len() != before;
            for entry in &mut self.policies {
                for pid in &tick.vanished {
                    dirty |= entry.matched.remove(pid).is_some();
                }
                entry
                    .failed
                    .retain(|(pid, why)| why == PROCESS_GONE || !tick.vanished.contains(pid));
            }
        }
        if self.policies.is_empty() || tick.examined.is_empty() {
            if dirty {
                self.store()?;
            }
            return Ok(0);
        }
        let full = self.read_in_full(&mut tick.examined);
        let batch: HashMap<u32, &ProcessInfo> = tick.examined.iter().map(|p| (p.pid, p)).collect();
        let mut writes = Vec::new();
        let mut deferred = Vec::new();
        // The others no policy holds or matches: nothing to do for them.
        for p in tick.examined.iter().filter(|p| full.contains(&p.pid)) {
            let first_look = tick.first_look.binary_search(&p.pid).is_ok();
            let key = ProcKey {
                pid: p.pid,
                starttime: p.starttime,
            };
            let mut was_any = false;
            for entry in &mut self.policies {
                let was = entry.holds(key);
                let kept = same_image(&entry.matched, p) && entry.policy.matcher.still_matches(p);
                let mut now = kept || applies(entry, p, &batch);
                if !now && entry.policy.matcher.unreadable_exe(p) {
                    entry.fail(key.pid, EXE_UNREADABLE.to_string());
                }
                if now && !was {
                    if first_look && entry.matched.contains_key(&p.ppid) {
                        // A child of a process this policy holds, seen for the first time: it
                        // inherited the value at fork, and may be about to exec something else
                        // (sshd's connection child re-execs into a login session, which forks
                        // its own children: written now, they would inherit the policy's
                        // value). Judged at its second look, read in full.
                        deferred.push(p.pid);
                        now = false;
                    } else if let Some(why) = &entry.blocked {
                        let why = why.clone();
                        entry.fail(key.pid, why);
                        now = false;
                    } else if entry.guarded() && entry.matched.len() >= MAX_DISABLED_PER_HOST {
                        entry.fail(
                            key.pid,
                            format!(
                                "not set: the policy already disables the OOM killer for \
                                 {MAX_DISABLED_PER_HOST} processes on this host (the agent's \
                                 safety check; apply with --force to override)"
                            ),
                        );
                        now = false;
                    }
                }
                was_any |= was;
                if now {
                    let held = Held {
                        starttime: p.starttime,
                        image: p.exe_id,
                    };
                    // New, or the same process now running another image that matches too.
                    dirty |= entry.matched.insert(key.pid, held) != Some(held);
                } else if was {
                    entry.matched.remove(&key.pid);
                    dirty = true;
                }
            }
            match self.winner(key) {
                Some((_, value)) if p.oom_score_adj == value => {}
                Some((winner, value)) => {
                    if let std::collections::btree_map::Entry::Vacant(v) = self.originals.entry(key)
                    {
                        v.insert(p.oom_score_adj);
                        dirty = true;
                    }
                    writes.push(Pending {
                        key,
                        value,
                        policy: Some(winner),
                        image: p.exe_id,
                    });
                }
                // It matched before (seen between fork and exec) and no longer does.
                None if was_any => writes.push(self.release(key)),
                None => {}
            }
        }
        for pid in deferred {
            self.scanner.look_again(pid);
        }
        if dirty {
            self.store()?;
        }
        let n = writes.len();
        let (restored, _) = self.write_all(writes);
        if !restored.is_empty() {
            self.forget_restored(&restored);
            self.store()?;
        }
        if n > 0 {
            debug!(writes = n, "OOM policies applied to new processes");
        }
        Ok(n)
    }

    /// The scanner read of each examined process only what the policies match on; those a
    /// policy may hold (it matches one, or holds it already) are read again in full, for their
    /// value and their image. One that exited meanwhile, or whose pid names another process
    /// now, is left out (the next tick sees it vanish, or examines the new one). Returns the
    /// pids read in full.
    fn read_in_full(&mut self, examined: &mut [ProcessInfo]) -> HashSet<u32> {
        let wanted: Vec<usize> = {
            let batch: HashMap<u32, &ProcessInfo> = examined.iter().map(|p| (p.pid, p)).collect();
            examined
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    let key = ProcKey {
                        pid: p.pid,
                        starttime: p.starttime,
                    };
                    // Those that match on everything but the executable, not yet read.
                    self.policies.iter().any(|e| {
                        e.matched.contains_key(&p.pid)
                            || e.holds(key)
                            || applies_by(e, p, &batch, |m, q| m.matches_besides_exe(q))
                    })
                })
                .map(|(i, _)| i)
                .collect()
        };
        let mut full = HashSet::new();
        for i in wanted {
            let p = &mut examined[i];
            match self.scanner.read(p.pid) {
                Some(read) if read.starttime == p.starttime => {
                    *p = read;
                    full.insert(p.pid);
                }
                _ => {}
            }
        }
        full
    }

    /// The last policy holding `key`, and its value.
    fn winner(&self, key: ProcKey) -> Option<(usize, i32)> {
        self.policies
            .iter()
            .enumerate()
            .rev()
            .find(|(_, e)| e.holds(key))
            .map(|(i, e)| (i, e.policy.oom_score_adj))
    }

    /// The write for a process a policy let go of: the value of another policy that still
    /// holds it (checked against the image that policy matched), or else its original value
    /// (the process's own, right whatever it runs now).
    fn release(&self, key: ProcKey) -> Pending {
        match self.winner(key) {
            Some((i, value)) => Pending {
                key,
                value,
                policy: Some(i),
                image: self.policies[i].held(key).and_then(|h| h.image),
            },
            None => Pending {
                key,
                value: self.originals.get(&key).copied().unwrap_or(0),
                policy: None,
                image: None,
            },
        }
    }

    /// Makes the writes; returns the processes restored to their original value (or gone, so
    /// their original is moot), and the failures as (pid, reason, was a hand-over).
    #[allow(clippy::type_complexity)]
    fn write_all(&mut self, writes: Vec<Pending>) -> (Vec<ProcKey>, Vec<(u32, String, bool)>) {
        let mut restored = Vec::new();
        let mut failed = Vec::new();
        for w in writes {
            let restore = w.policy.is_none();
            if restore && !self.originals.contains_key(&w.key) {
                continue; // never changed by a policy: nothing to give back
            }
            match self.write(w.key, w.value, w.image) {
                Ok(()) => {
                    if restore {
                        restored.push(w.key);
                    }
                }
                Err(why) if why == PROCESS_GONE => {
                    // It exited since it was matched (a short-lived process: `sshd -t`, a
                    // fork that exec'd something else): no longer matched by any policy, its
                    // original moot, and no failure of the policy. A removal still lists it.
                    for e in &mut self.policies {
                        e.matched.remove(&w.key.pid);
                    }
                    restored.push(w.key);
                    debug!(
                        pid = w.key.pid,
                        "process gone before its oom_score_adj was written"
                    );
                    failed.push((w.key.pid, why, !restore));
                }
                Err(why) => {
                    if let Some(i) = w.policy {
                        self.policies[i].fail(w.key.pid, why.clone());
                    }
                    warn!(pid = w.key.pid, value = w.value, reason = %why,
                        "cannot set oom_score_adj");
                    failed.push((w.key.pid, why, !restore));
                }
            }
        }
        (restored, failed)
    }

    fn forget_restored(&mut self, keys: &[ProcKey]) {
        for k in keys {
            self.originals.remove(k);
        }
    }

    /// Writes `oom_score_adj` through the process's opened `/proc/PID`, after checking there
    /// that it is the process that was matched (see [`ProcDir::write_oom_score_adj`]).
    fn write(&mut self, key: ProcKey, value: i32, image: Option<FileId>) -> Result<(), String> {
        let dir = self
            .scanner
            .open(key.pid)
            .map_err(|_| PROCESS_GONE.to_string())?;
        let expect = Expect {
            starttime: key.starttime,
            image,
        };
        dir.write_oom_score_adj(value, expect).map_err(|e| match e {
            WriteError::Gone => PROCESS_GONE.to_string(),
            WriteError::ImageChanged => EXE_CHANGED.to_string(),
            WriteError::Io(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                PERMISSION_DENIED.to_string()
            }
            WriteError::Io(e) => e.to_string(),
        })
    }

    fn resolve_users(&self, policy: &mut Policy) {
        if matches!(policy.matcher.user, Some(fleet_policy::User::Name { .. })) {
            let passwd = std::fs::read_to_string(self.etc_root.join("passwd")).unwrap_or_default();
            policy.resolve_users(|name| uid_of(&passwd, name));
        }
    }

    fn store(&self) -> Result<(), EnforceError> {
        let policies = self
            .policies
            .iter()
            .map(|e| state::StoredPolicy {
                policy: e.policy.clone(),
                version: e.version,
                forced: e.forced,
                blocked: e.blocked.clone(),
                matched: e.matched.iter().map(|(&p, h)| (p, h.starttime)).collect(),
                images: e
                    .matched
                    .iter()
                    .filter_map(|(&p, h)| h.image.map(|i| (p, i.dev, i.ino)))
                    .collect(),
            })
            .collect();
        let originals = self
            .originals
            .iter()
            .map(|(k, &v)| state::StoredOriginal {
                pid: k.pid,
                starttime: k.starttime,
                oom_score_adj: v,
            })
            .collect();
        state::store(&self.state_dir, &state::StateFile::new(policies, originals)).map_err(
            |source| EnforceError::State {
                dir: self.state_dir.clone(),
                source,
            },
        )
    }

    fn proc_error(&self, source: io::Error) -> EnforceError {
        EnforceError::Proc {
            root: self.scanner.proc_root().to_path_buf(),
            source,
        }
    }
}

/// Whether `entry` applies to a newly examined process: it matches itself, or with
/// `children: true` an ancestor does, the ancestors being looked up among the processes
/// examined in the same tick and, above them, among the processes the policy already holds.
fn applies(entry: &Entry, p: &ProcessInfo, batch: &HashMap<u32, &ProcessInfo>) -> bool {
    applies_by(entry, p, batch, |m, q| m.matches_process(q))
}

/// As [`applies`], with `matches` deciding whether one process matches by itself.
fn applies_by(
    entry: &Entry,
    p: &ProcessInfo,
    batch: &HashMap<u32, &ProcessInfo>,
    matches: impl Fn(&fleet_policy::doc::Matcher, &ProcessInfo) -> bool,
) -> bool {
    let m = &entry.policy.matcher;
    if matches(m, p) {
        return true;
    }
    if !m.children {
        return false;
    }
    let mut ppid = p.ppid;
    for _ in 0..4096 {
        if ppid == 0 || ppid == p.pid {
            return false;
        }
        match batch.get(&ppid) {
            Some(q) => {
                if matches(m, q) {
                    return true;
                }
                ppid = q.ppid;
            }
            None => return entry.matched.contains_key(&ppid),
        }
    }
    false
}
