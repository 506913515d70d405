//! What a process *is*, as opposed to what it says about itself: the rules behind `exe:` and
//! `unit:`, and which criteria of a match anchor it to an identity at all.
//!
//! # `exe:`: the running image, by device and inode
//!
//! The text of `readlink /proc/PID/exe` is no identity: an unprivileged user can
//! `unshare -Urm`, bind-mount a binary of their own over `/usr/sbin/sshd` inside that private
//! mount namespace and run it as `/usr/sbin/sshd`; seen from the host its exe, comm and
//! cmdline then all read as sshd. So the agent opens `/proc/PID/exe` (the running image itself)
//! and compares its device and inode (`fstat`) with the file at that path in the host's mount
//! namespace, and reads whether the process lives in the host's mount namespace at all
//! (`/proc/PID/ns/mnt`). [`ProcessInfo`] carries the answers: [`ProcessInfo::exe_id`],
//! [`ProcessInfo::exe_at_path`] and [`ProcessInfo::foreign_mount_ns`].
//!
//! `exe: P` holds for a process when all of these do:
//! - its exe reads `P`;
//! - its image is the file at `P` in the host's mount namespace (`exe_at_path`): same device,
//!   same inode;
//! - it lives in the host's mount namespace, unless the policy says
//!   `mount_namespaces: any` (then a process in any mount namespace matches, still only when
//!   its image is the host's file at `P`).
//!
//! A process whose binary was replaced since it started (an upgrade: its exe reads
//! `/usr/sbin/sshd (deleted)`) runs a file that is no longer at `P`: it no longer matches by
//! itself. The agent keeps the value it already set on such a process as long as its image is
//! the one it matched ([`crate::Matcher::still_matches`]); a restart of the program matches the
//! new file.
//!
//! # `unit:`: the system manager's unit
//!
//! A unit is the cgroup systemd (the system manager, PID 1) made for it:
//! `/A.slice/…/UNIT`, where every component before the unit is a slice (at least one) and the
//! unit is the last component. The path is the process's cgroup in the unified hierarchy
//! (`0::/system.slice/ssh.service`) when that names more than the root, else in the v1
//! `name=systemd` hierarchy (`1:name=systemd:/system.slice/ssh.service`): see
//! [`ProcessInfo::systemd_cgroup`]. Not a unit, so never matched:
//! - a deeper cgroup inside a unit (a delegated subtree, e.g. a container's
//!   `/system.slice/docker-1a2b.scope/ssh.service`);
//! - a user manager's units (`/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service`:
//!   `user@1000.service` is not a slice), which any logged-in user can name as they like;
//! - a cgroup elsewhere whose path merely contains the name (`/fleet-test/ssh.service`).
//!
//! # Claims, and anchors
//!
//! `comm:`, `cmdline:` and `user:` are what a process says about itself (a process can rename
//! itself, write any argv, and any user's process carries that user's uid): they narrow a match
//! and never widen trust. `exe:`, `unit:` and `cgroup:` anchor it: a process cannot choose them
//! (see [`Matcher::anchored`]). A policy that lowers a value below 0 on claims alone is refused
//! unless forced ([`crate::RefusalKind::WeakIdentity`]).

use serde::{Deserialize, Serialize};

use crate::doc::{Matcher, MountNamespaces};
use crate::matching::ProcessInfo;

/// A file's identity: the device and inode `stat` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl ProcessInfo {
    /// The cgroup the system manager placed the process in: the unified hierarchy's (`0::PATH`)
    /// when PATH is not the root, else the v1 `name=systemd` hierarchy's; a single path as given.
    /// `None` when neither is there.
    pub fn systemd_cgroup(&self) -> Option<&str> {
        let mut named = None;
        for line in self.cgroup.lines().map(str::trim) {
            if line.starts_with('/') {
                return Some(line);
            }
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if id == "0" && controllers.is_empty() && path != "/" {
                return Some(path);
            }
            if controllers.split(',').any(|c| c == "name=systemd") {
                named = Some(path);
            }
        }
        named
    }
}

/// The unit a `unit:` value names: itself when it has a suffix, else the service of that name
/// (`ssh` is `ssh.service`).
fn unit_name(unit: &str) -> String {
    if unit.contains('.') {
        unit.to_string()
    } else {
        format!("{unit}.service")
    }
}

/// Whether `path` is the system manager's cgroup of `unit`: `/A.slice/…/UNIT`, every component
/// before the unit a slice, at least one. Only services and scopes hold processes.
pub(crate) fn unit_matches(unit: &str, path: &str) -> bool {
    let unit = unit_name(unit);
    if !(unit.ends_with(".service") || unit.ends_with(".scope")) {
        return false;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let mut components: Vec<&str> = rest.split('/').collect();
    if components.pop() != Some(unit.as_str()) || components.is_empty() {
        return false;
    }
    components
        .iter()
        .all(|c| c.len() > ".slice".len() && c.ends_with(".slice"))
}

/// Whether a cgroup pattern pins a process to part of the tree: it names its first component
/// literally (`/system.slice`, `/system.slice/*.service`), so it is not every cgroup (`/`,
/// `*`, `/*`, `/sys*`).
fn cgroup_anchors(pattern: &str) -> bool {
    let literal = pattern.split(['*', '?']).next().unwrap_or("");
    let Some(rest) = literal.strip_prefix('/') else {
        return false;
    };
    match rest.split_once('/') {
        Some((first, _)) => !first.is_empty(),
        // No wildcard at all: the whole pattern is the first component (`/system.slice`).
        None => !rest.is_empty() && literal.len() == pattern.len(),
    }
}

impl Matcher {
    /// Whether `p`'s image is the file the `exe:` criterion names, seen from the host (see the
    /// module doc); true when there is no such criterion.
    pub(crate) fn exe_holds(&self, p: &ProcessInfo) -> bool {
        let Some(want) = &self.exe else { return true };
        p.exe.as_deref() == Some(want.as_str())
            && p.exe_at_path
            && (!p.foreign_mount_ns || self.mount_namespaces == MountNamespaces::Any)
    }

    /// Whether the match names something a process cannot claim for itself: `exe:`, `unit:`,
    /// or a `cgroup:` that names its first component (not `/` or `*`). A match without one
    /// rests on `comm:`, `cmdline:` and `user:` alone.
    pub fn anchored(&self) -> bool {
        self.exe.is_some()
            || self.unit.is_some()
            || self.cgroup.as_deref().is_some_and(cgroup_anchors)
    }

    /// The claims a match rests on, in words (`comm and cmdline`), for the refusal of a match
    /// that is not [`Matcher::anchored`].
    pub fn claims(&self) -> String {
        let mut names = Vec::new();
        if self.comm.is_some() {
            names.push("comm");
        }
        if self.cmdline.is_some() {
            names.push("cmdline");
        }
        if self.user.is_some() {
            names.push("user");
        }
        if self.cgroup.is_some() {
            names.push("a cgroup pattern that matches every cgroup");
        }
        match names.as_slice() {
            [] => "nothing".to_string(),
            [one] => (*one).to_string(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_the_system_managers_cgroups() {
        assert!(unit_matches("ssh", "/system.slice/ssh.service"));
        assert!(unit_matches("ssh.service", "/system.slice/ssh.service"));
        assert!(unit_matches("a.service", "/system.slice/x.slice/a.service"));
        assert!(unit_matches(
            "session-3.scope",
            "/user.slice/user-1000.slice/session-3.scope"
        ));
        assert!(unit_matches(
            "user@1000.service",
            "/user.slice/user-1000.slice/user@1000.service"
        ));
        // Not the unit's own cgroup, or not under slices only.
        assert!(!unit_matches("ssh", "/ssh.service"), "no slice above");
        assert!(!unit_matches("ssh", "/system.slice/ssh.service/payload"));
        assert!(!unit_matches("ssh", "/fleet-test-1/ssh.service"));
        assert!(!unit_matches(
            "ssh",
            "/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service"
        ));
        assert!(!unit_matches(
            "ssh",
            "/system.slice/docker-1a.scope/ssh.service"
        ));
        assert!(!unit_matches("ssh", "/.slice/ssh.service"));
        assert!(!unit_matches("ssh", "system.slice/ssh.service"));
        assert!(
            !unit_matches("system.slice", "/system.slice"),
            "a slice is not a unit"
        );
        assert!(!unit_matches("ssh.socket", "/system.slice/ssh.socket"));
    }

    #[test]
    fn the_systemd_cgroup_line() {
        let p = |cgroup: &str| ProcessInfo {
            cgroup: cgroup.into(),
            ..ProcessInfo::default()
        };
        // Unified (v2) when it names more than the root.
        let v2 = p("0::/system.slice/ssh.service\n");
        assert_eq!(v2.systemd_cgroup(), Some("/system.slice/ssh.service"));
        // Hybrid with an empty unified path, and v1: the name=systemd line.
        let hybrid = p("12:memory:/x\n9:name=systemd:/system.slice/cron.service\n0::/\n");
        assert_eq!(hybrid.systemd_cgroup(), Some("/system.slice/cron.service"));
        let both = p("1:name=systemd:/a.slice/b.service\n0::/c.slice/d.service\n");
        assert_eq!(both.systemd_cgroup(), Some("/c.slice/d.service"));
        // Another controller's path is not systemd's.
        assert_eq!(
            p("4:memory:/system.slice/ssh.service\n0::/\n").systemd_cgroup(),
            None
        );
        assert_eq!(
            p("/system.slice/x.service").systemd_cgroup(),
            Some("/system.slice/x.service")
        );
        assert_eq!(p("").systemd_cgroup(), None);
    }

    #[test]
    fn cgroup_patterns_that_anchor() {
        for yes in [
            "/system.slice",
            "/system.slice/",
            "/system.slice/*.service",
            "/a/b*",
        ] {
            assert!(cgroup_anchors(yes), "{yes}");
        }
        for no in [
            "/",
            "*",
            "/*",
            "/sys*",
            "*ssh.service",
            "/?ystem.slice/x",
            "//x",
        ] {
            assert!(!cgroup_anchors(no), "{no}");
        }
    }
}
