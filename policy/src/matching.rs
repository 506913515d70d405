//! Which hosts and which processes a policy applies to. What `exe:` and `unit:` mean, and why,
//! is [`crate::identity`]'s.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use regex::Regex;

use crate::doc::{Matcher, MountNamespaces, Policy, Target, User};
use crate::identity::{unit_matches, FileId};

/// What the matcher and the safety checks know about a process; the agent fills it from
/// /proc/PID (see the agent's `policy::scan`), the collector from the agent's process list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    /// /proc/PID/comm: at most 15 bytes, as the kernel truncates it. A claim.
    pub comm: String,
    /// The text of the /proc/PID/exe link; `None` for kernel threads or when it cannot be read.
    /// A binary replaced since the process started reads as `/usr/sbin/sshd (deleted)`. Only
    /// text: [`ProcessInfo::exe_at_path`] says whether it is the file at that path.
    pub exe: Option<String>,
    /// The device and inode of the running image (`fstat` of the opened /proc/PID/exe).
    pub exe_id: Option<FileId>,
    /// The running image is the file at [`ProcessInfo::exe`] in the host's mount namespace (same
    /// device and inode). False when either cannot be read, or the exe reads `(deleted)`.
    pub exe_at_path: bool,
    /// The process lives in another mount namespace than the host's (or the agent could not
    /// tell): its exe path is no evidence of anything on the host.
    pub foreign_mount_ns: bool,
    /// The exe link exists but the reader may not follow it (`EACCES`: the agent lacks
    /// CAP_SYS_PTRACE for another user's process). Such a process cannot meet an `exe:` rule;
    /// [`Matcher::unreadable_exe`] says when that hides a match.
    pub exe_denied: bool,
    /// Field 22 of /proc/PID/stat (clock ticks after boot): with the pid, the process.
    pub starttime: u64,
    /// /proc/PID/cmdline with the NUL separators turned into spaces. A claim.
    pub cmdline: String,
    /// The real uid.
    pub uid: u32,
    /// /proc/PID/cgroup as read (`hierarchy:controllers:path` lines), or a single path.
    pub cgroup: String,
    pub oom_score_adj: i32,
    pub rss_kb: u64,
}

impl ProcessInfo {
    /// The cgroup paths of the process, one per hierarchy.
    pub fn cgroup_paths(&self) -> impl Iterator<Item = &str> {
        self.cgroup.lines().filter_map(|line| {
            let line = line.trim();
            if line.is_empty() {
                None
            } else if line.starts_with('/') {
                Some(line)
            } else {
                line.splitn(3, ':').nth(2)
            }
        })
    }
}

/// Host labels, whichever map type the caller holds.
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// Matches `text` against a glob where `*` is any run of characters (including `/`) and `?`
/// any one character; everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last star: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

impl Target {
    /// The target in words, e.g. `cluster=prod role=web hosts=web*,db1`; `every host` when empty.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.cluster {
            parts.push(format!("cluster={c}"));
        }
        for (k, v) in &self.labels {
            parts.push(format!("{k}={v}"));
        }
        if !self.hosts.is_empty() {
            parts.push(format!("hosts={}", self.hosts.join(",")));
        }
        if parts.is_empty() {
            "every host".to_string()
        } else {
            parts.join(" ")
        }
    }

    /// Whether a host is targeted: every key given must hold. `hosts` patterns match the
    /// hostname or the host id.
    pub fn matches(
        &self,
        host_id: &str,
        hostname: &str,
        cluster: &str,
        labels: &impl Labels,
    ) -> bool {
        if let Some(c) = &self.cluster {
            if c != cluster {
                return false;
            }
        }
        if !self
            .labels
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
        {
            return false;
        }
        self.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|p| glob_match(p, hostname) || glob_match(p, host_id))
    }
}

/// TASK_COMM_LEN - 1: the kernel keeps this many bytes of a command name.
const COMM_MAX: usize = 15;

impl Matcher {
    /// The match in words, e.g. `exe=/usr/sbin/sshd user=root +children`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        };
        put("exe", self.exe.as_deref());
        put("comm", self.comm.as_deref());
        put("cmdline", self.cmdline.as_ref().map(Regex::as_str));
        let user = self.user.as_ref().map(|u| match u {
            User::Uid(uid) => uid.to_string(),
            User::Name { name, .. } => name.clone(),
        });
        put("user", user.as_deref());
        put("cgroup", self.cgroup.as_deref());
        put("unit", self.unit.as_deref());
        if self.mount_namespaces == MountNamespaces::Any {
            parts.push("mount_namespaces=any".to_string());
        }
        if self.children {
            parts.push("+children".to_string());
        }
        parts.join(" ")
    }

    /// Whether the process itself meets every criterion (descendants aside).
    pub fn matches_process(&self, p: &ProcessInfo) -> bool {
        self.exe_holds(p) && self.matches_besides_exe(p)
    }

    /// As [`Matcher::matches_process`], with the image taken as matching `exe:`: for a process
    /// the agent already holds, whose image is the very one it matched (same device and inode)
    /// though the file at the path has been replaced since (an upgrade, `(deleted)`). The value
    /// already set stays; the mount namespace and every other criterion are checked as ever.
    pub fn still_matches(&self, p: &ProcessInfo) -> bool {
        (!p.foreign_mount_ns || self.mount_namespaces == MountNamespaces::Any)
            && self.matches_besides_exe(p)
    }

    /// Whether the process meets every criterion but `exe:`, which cannot be checked because its
    /// executable could not be read ([`ProcessInfo::exe_denied`]): enforcement then reports it
    /// instead of passing over it in silence.
    pub fn unreadable_exe(&self, p: &ProcessInfo) -> bool {
        self.exe.is_some() && p.exe_denied && self.matches_besides_exe(p)
    }

    /// Whether the process meets every criterion but `exe:` (which it may still fail): the
    /// agent reads a process's executable only when this holds.
    pub fn matches_besides_exe(&self, p: &ProcessInfo) -> bool {
        if let Some(comm) = &self.comm {
            let matches = p.comm == *comm
                || (comm.len() > COMM_MAX
                    && comm.is_char_boundary(COMM_MAX)
                    && p.comm == comm[..COMM_MAX]);
            if !matches {
                return false;
            }
        }
        if let Some(re) = &self.cmdline {
            if !re.is_match(&p.cmdline) {
                return false;
            }
        }
        match &self.user {
            None => {}
            Some(User::Uid(u)) | Some(User::Name { uid: Some(u), .. }) if p.uid == *u => {}
            Some(_) => return false,
        }
        if let Some(pattern) = &self.cgroup {
            if !p.cgroup_paths().any(|path| cgroup_matches(pattern, path)) {
                return false;
            }
        }
        if let Some(unit) = &self.unit {
            if !p
                .systemd_cgroup()
                .is_some_and(|path| unit_matches(unit, path))
            {
                return false;
            }
        }
        true
    }
}

/// A glob is matched against the whole path; a plain path is a prefix ending at a component
/// boundary (`/system.slice` covers `/system.slice/ssh.service`, not `/system.slicer`).
fn cgroup_matches(pattern: &str, path: &str) -> bool {
    if is_glob(pattern) {
        return glob_match(pattern, path);
    }
    let pattern = pattern.trim_end_matches('/');
    if pattern.is_empty() {
        return true; // "/" is every cgroup
    }
    path == pattern
        || path
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Longest parent chain followed; guards against a cycle in an inconsistent snapshot.
const MAX_DEPTH: usize = 4096;

impl Policy {
    /// Whether the policy applies to `p`: it matches itself, or, with `children: true`, one of
    /// its ancestors in `all` does.
    pub fn matches(&self, p: &ProcessInfo, all: &[ProcessInfo]) -> bool {
        if self.matcher.matches_process(p) {
            return true;
        }
        if !self.matcher.children {
            return false;
        }
        let mut ppid = p.ppid;
        for _ in 0..MAX_DEPTH {
            if ppid == 0 || ppid == p.pid {
                return false;
            }
            let Some(parent) = all.iter().find(|q| q.pid == ppid) else {
                return false;
            };
            if self.matcher.matches_process(parent) {
                return true;
            }
            ppid = parent.ppid;
        }
        false
    }

    /// Indexes into `all` of the processes the policy applies to, in one pass (what
    /// [`Policy::matches`] gives for each, without a search per ancestor).
    pub fn select(&self, all: &[ProcessInfo]) -> Vec<usize> {
        self.select_by(all, |_, p| self.matcher.matches_process(p))
    }

    /// As [`Policy::select`], with `direct(index, process)` saying which processes match by
    /// themselves (the agent adds those it holds by [`Matcher::still_matches`]).
    pub fn select_by(
        &self,
        all: &[ProcessInfo],
        mut direct: impl FnMut(usize, &ProcessInfo) -> bool,
    ) -> Vec<usize> {
        let direct: Vec<bool> = all.iter().enumerate().map(|(i, p)| direct(i, p)).collect();
        if !self.matcher.children {
            return (0..all.len()).filter(|&i| direct[i]).collect();
        }
        let index: HashMap<u32, usize> = all.iter().enumerate().map(|(i, p)| (p.pid, i)).collect();
        // memo[i]: Some(answer) once known.
        let mut memo: Vec<Option<bool>> = direct.iter().map(|&d| d.then_some(true)).collect();
        let mut chain = Vec::new();
        for start in 0..all.len() {
            chain.clear();
            let mut i = start;
            let answer = loop {
                if let Some(a) = memo[i] {
                    break a;
                }
                if chain.len() >= MAX_DEPTH {
                    break false;
                }
                chain.push(i);
                let ppid = all[i].ppid;
                match index.get(&ppid) {
                    Some(&j) if ppid != 0 && !chain.contains(&j) => i = j,
                    _ => break false,
                }
            };
            for &k in &chain {
                memo[k] = Some(answer);
            }
        }
        (0..all.len()).filter(|&i| memo[i] == Some(true)).collect()
    }
}

/// The uid of `name` in an /etc/passwd text (`name:x:uid:gid:…`).
pub fn uid_of(passwd: &str, name: &str) -> Option<u32> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.trim().parse().ok()
    })
}
