//! What a test needs from the machine, checked before it starts so that a test that cannot run
//! here says why instead of failing somewhere in its middle. Each check returns what it found, or
//! the reason it is missing (and how to get it). A test that cannot do without calls
//! [`require`], which fails it with the reason; a test that is optional on some machines uses
//! [`skip_unless!`](crate::skip_unless), which prints `SKIPPED name: reason` and returns.
//!
//! scripts/test installs the programs (sysstat, chrony, prometheus-alertmanager, ansible,
//! openssh-server) and runs the suite as root.

use std::path::{Path, PathBuf};

/// A memory cgroup controller this machine offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryController {
    /// cgroup v1: the `memory` hierarchy's root (`/sys/fs/cgroup/memory`).
    V1(PathBuf),
    /// cgroup v2: a cgroup2 mount whose `cgroup.controllers` lists `memory`.
    V2(PathBuf),
}

/// Running as root (memory cgroups, `/run/sshd`, lowering `oom_score_adj` of other processes).
pub fn root() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        Ok(())
    } else {
        Err(format!(
            "not running as root (euid {uid}); scripts/test runs the suite as root"
        ))
    }
}

/// `/dev/kmsg` opens for reading (the agent's OOM-kill source): it needs root or CAP_SYSLOG, and
/// a kernel log the machine (or container) shares.
pub fn kmsg() -> Result<(), String> {
    std::fs::File::open("/dev/kmsg")
        .map(drop)
        .map_err(|e| format!("/dev/kmsg is not readable: {e}"))
}

/// A memory cgroup controller: v1's `memory` hierarchy first, else a cgroup2 mount with the memory
/// controller (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid systems).
pub fn memory_cgroup() -> Result<MemoryController, String> {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("memory.limit_in_bytes").exists() {
        return Ok(MemoryController::V1(v1.to_path_buf()));
    }
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let root = Path::new(root);
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "memory") {
            return Ok(MemoryController::V2(root.to_path_buf()));
        }
    }
    Err(
        "no memory cgroup controller: neither /sys/fs/cgroup/memory (v1) nor a cgroup2 mount \
         with the memory controller"
            .into(),
    )
}

/// CAP_SYS_RESOURCE in the effective set: needed to set `oom_score_adj` below 0 (containers often
/// drop it even for root).
pub fn cap_sys_resource() -> Result<(), String> {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or("no CapEff line in /proc/self/status")?;
    if eff & (1 << CAP_SYS_RESOURCE) != 0 {
        Ok(())
    } else {
        Err("CAP_SYS_RESOURCE is not in the effective capability set".into())
    }
}

/// The program `name`, found on PATH or in /usr/sbin or /sbin; the reason names the Debian
/// `package` that has it.
pub fn program(name: &str, package: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "{name} is not installed (Debian package `{package}`; scripts/test installs it)"
            )
        })
}

/// chronyd, a real NTP server.
pub fn chronyd() -> Result<PathBuf, String> {
    program("chronyd", "chrony")
}

/// OpenSSH's sshd, with ssh-keygen to make its host key.
pub fn sshd() -> Result<PathBuf, String> {
    program("ssh-keygen", "openssh-client")?;
    program("sshd", "openssh-server")
}

/// A real Prometheus Alertmanager.
pub fn alertmanager() -> Result<PathBuf, String> {
    program("prometheus-alertmanager", "prometheus-alertmanager")
}

/// `ansible-playbook`.
pub fn ansible_playbook() -> Result<PathBuf, String> {
    program("ansible-playbook", "ansible")
}

/// `ansible-inventory`.
pub fn ansible_inventory() -> Result<PathBuf, String> {
    program("ansible-inventory", "ansible")
}

/// systemd's `systemd-analyze`, which verifies unit files.
pub fn systemd_analyze() -> Result<PathBuf, String> {
    program("systemd-analyze", "systemd")
}

/// What `check` found.
///
/// # Panics
/// With the reason, when the machine lacks it: the test cannot run here.
#[track_caller]
pub fn require<T>(check: Result<T, String>) -> T {
    check.unwrap_or_else(|why| panic!("this test cannot run on this machine: {why}"))
}

/// What `$check` (a [`caps`](crate::caps) check) found; when the machine lacks it, prints
/// `SKIPPED <test>: <reason>` and returns from the calling test.
#[macro_export]
macro_rules! skip_unless {
    ($test:expr, $check:expr) => {
        match $check {
            Ok(found) => found,
            Err(why) => {
                eprintln!("SKIPPED {}: {why}", $test);
                return;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_with_its_package() {
        let why = program("fleet-no-such-program", "fleet-nothing").unwrap_err();
        assert!(
            why.contains("fleet-no-such-program") && why.contains("`fleet-nothing`"),
            "{why}"
        );
        assert!(program("sh", "dash").is_ok());
    }

    fn reach_the_end(check: Result<u8, String>, reached: &mut bool) {
        let _found: u8 = skip_unless!("reach_the_end", check);
        *reached = true;
    }

    #[test]
    fn skip_unless_returns_from_the_test_when_missing() {
        let mut reached = false;
        reach_the_end(Ok(3), &mut reached);
        assert!(reached);
        let mut reached = false;
        reach_the_end(Err("nothing here".into()), &mut reached);
        assert!(!reached);
    }
}
