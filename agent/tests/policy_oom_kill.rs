//! The kernel honours what the enforcer sets: in a memory cgroup (v1) limited to 96 MiB, a
//! larger process the policy protects (`dd` holding a 64 MiB buffer while blocked on a pipe
//! nobody reads) survives a real OOM kill, and the smaller, growing, unprotected one (`tail
//! /dev/zero`, which buffers a line that never ends) is killed.
//!
//! Both start at oom_score_adj 1000 (set by their shell before exec, which anyone may do), so
//! the unprotected baseline is the same for both, and a control run without the policy shows
//! the kernel then kills the larger `dd`. The policy sets -1000 where this process has
//! CAP_SYS_RESOURCE and 0 where it has not (a container without it may not go below 0): either
//! way the enforcer's value is what decides the victim.
//!
//! Skipped, with a message, when the machine has no cgroup v1 memory controller. Needs root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fleet_agent::policy::Enforcer;
use fleet_policy::parse_policy;

const MEMCG_ROOT: &str = "/sys/fs/cgroup/memory";
const LIMIT: u64 = 96 << 20;

/// Kills and reaps the child by its pid when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test's memory cgroup, removed when dropped (after the processes in it, declared later,
/// were killed).
struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn make_cgroup(name: &str) -> Cgroup {
    let dir = Path::new(MEMCG_ROOT).join(name);
    std::fs::create_dir(&dir).expect("create memory cgroup (run as root)");
    let cg = Cgroup(dir);
    std::fs::write(cg.0.join("memory.limit_in_bytes"), LIMIT.to_string()).unwrap();
    // With swap, the limit on memory+swap keeps the hog from swapping instead of being killed.
    let _ = std::fs::write(cg.0.join("memory.memsw.limit_in_bytes"), LIMIT.to_string());
    cg
}

/// Runs `command` with `sh`, which first joins the cgroup and sets its own adj to 1000.
fn spawn_in(cg: &Cgroup, command: &str, stdout: Stdio) -> Reaped {
    let script = format!(
        "echo $$ > {procs} && echo 1000 > /proc/$$/oom_score_adj && exec {command}",
        procs = cg.0.join("cgroup.procs").display()
    );
    Reaped(
        Command::new("sh")
            .args(["-c", &script])
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh"),
    )
}

fn rss_kb(pid: u32) -> u64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_exit(child: &mut Reaped, what: &str) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{what} was not OOM-killed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn killed_by_sigkill(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(libc::SIGKILL)
}

/// Starts the 64 MiB `dd` in the cgroup and waits until its buffer is resident.
fn start_large(cg: &Cgroup) -> Reaped {
    // dd reads 64 MiB of zeros into one buffer, then blocks writing it to our pipe, which we
    // never read: it holds the memory for as long as the test needs.
    let dd = spawn_in(cg, "dd if=/dev/zero bs=64M count=1", Stdio::piped());
    let pid = dd.0.id();
    wait_for("dd to fill its 64 MiB buffer", 20, || {
        comm(pid) == "dd" && rss_kb(pid) >= 60 * 1024
    });
    dd
}

fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap() & (1 << 24) != 0
}

#[test]
fn the_oom_killer_spares_the_protected_process() {
    if !Path::new(MEMCG_ROOT).join("memory.limit_in_bytes").exists() {
        eprintln!("SKIPPED: no cgroup v1 memory controller at {MEMCG_ROOT}");
        return;
    }
    let name = format!("fleet-policy-oom-{}", std::process::id());

    // Control: without the policy the kernel kills the larger process.
    {
        let cg = make_cgroup(&format!("{name}-control"));
        let mut dd = start_large(&cg);
        let _hog = spawn_in(&cg, "tail /dev/zero", Stdio::null());
        let status = wait_exit(&mut dd, "the unprotected dd (control)");
        assert!(killed_by_sigkill(status), "control: dd ended with {status}");
    }

    let cg = make_cgroup(&name);
    let dd = start_large(&cg);
    let protect = if has_cap_sys_resource() { -1000 } else { 0 };
    let policy = parse_policy(
        &format!(
            "name: protect-dd\ntarget: {{}}\nmatch:\n  comm: dd\n  cgroup: '*/{name}'\noom_score_adj: {protect}\n"
        ),
        "protect-dd.yaml",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    // Forced, as an operator would: the protected dd may be this small host's largest memory
    // user, which the safety check refuses without --force.
    let status = enforcer.apply_with(policy, 1, true).unwrap();
    assert_eq!((status.matched, status.set), (1, 1), "{status:?}");
    let adj = std::fs::read_to_string(format!("/proc/{}/oom_score_adj", dd.0.id())).unwrap();
    assert_eq!(adj.trim(), protect.to_string());

    let mut hog = spawn_in(&cg, "tail /dev/zero", Stdio::null());
    let status = wait_exit(&mut hog, "the unprotected tail");
    assert!(killed_by_sigkill(status), "tail ended with {status}");
    let mut dd = dd;
    assert!(
        dd.0.try_wait().unwrap().is_none(),
        "the protected dd must survive"
    );
    assert!(rss_kb(dd.0.id()) >= 60 * 1024, "and keep its memory");
    if let Ok(oom) = std::fs::read_to_string(cg.0.join("memory.oom_control")) {
        if let Some(kills) = oom.lines().find_map(|l| l.strip_prefix("oom_kill ")) {
            assert!(kills.trim().parse::<u64>().unwrap() >= 1, "{oom}");
        }
    }
}
