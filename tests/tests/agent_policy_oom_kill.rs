//! The kernel honours what the agent's enforcer (`fleet_agent::policy::Enforcer`, in-process)
//! sets: in a memory cgroup limited to 96 MiB, a larger process the policy protects (`dd` holding
//! a 64 MiB buffer while blocked on a pipe nobody reads) survives a real OOM kill, and the
//! smaller, growing, unprotected one (`tail /dev/zero`, which buffers a line that never ends) is
//! killed.
//!
//! Both start at oom_score_adj 1000 (set before exec, which anyone may do), so the unprotected
//! baseline is the same for both, and a control run without the policy shows the kernel then
//! kills the larger `dd`. The policy sets -1000 where this process has CAP_SYS_RESOURCE and 0
//! where it has not (a container without it may not go below 0): either way the enforcer's value
//! is what decides the victim.
//!
//! Skipped, with a message, when the machine has no memory cgroup controller. Needs root.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use fleet_agent::policy::Enforcer;
use fleet_policy::parse_policy;
use fleet_tests::procs::{comm, oom_score_adj, rss_kb};
use fleet_tests::wait::wait_for_every;
use fleet_tests::{caps, skip_unless, MemCgroup, Reaped};

const LIMIT: u64 = 96 << 20;
/// The starting `oom_score_adj` of both processes: the same unprotected baseline.
const BASELINE_ADJ: i32 = 1000;
/// The waits poll /proc and a child's status, which is cheap: often, so the test ends soon after
/// the kernel acted.
const EVERY: Duration = Duration::from_millis(20);

/// Waits until the OOM killer ends `child`, and returns how it ended.
fn wait_exit(child: &mut Reaped, what: &str) -> ExitStatus {
    wait_for_every(
        &format!("{what} to be OOM-killed"),
        Duration::from_secs(30),
        EVERY,
        || child.0.try_wait().unwrap(),
    )
}

fn killed_by_sigkill(status: ExitStatus) -> bool {
    status.signal() == Some(libc::SIGKILL)
}

/// Starts the 64 MiB `dd` in the cgroup and waits until its buffer is resident.
fn start_large(cg: &MemCgroup) -> Reaped {
    // dd reads 64 MiB of zeros into one buffer, then blocks writing it to our pipe, which we
    // never read: it holds the memory for as long as the test needs.
    let dd = cg.spawn(
        "dd if=/dev/zero bs=64M count=1",
        BASELINE_ADJ,
        Stdio::piped(),
    );
    let pid = dd.pid();
    wait_for_every(
        "dd to fill its 64 MiB buffer",
        Duration::from_secs(20),
        EVERY,
        || (comm(pid) == "dd" && rss_kb(pid) >= 60 * 1024).then_some(()),
    );
    dd
}

/// The growing, unprotected `tail /dev/zero` in the cgroup.
fn start_hog(cg: &MemCgroup) -> Reaped {
    cg.spawn("tail /dev/zero", BASELINE_ADJ, Stdio::null())
}

#[test]
fn the_oom_killer_spares_the_protected_process() {
    skip_unless!(
        "the_oom_killer_spares_the_protected_process",
        caps::memory_cgroup()
    );

    // Control: without the policy the kernel kills the larger process.
    {
        let cg = MemCgroup::new(LIMIT);
        let mut dd = start_large(&cg);
        let _hog = start_hog(&cg);
        let status = wait_exit(&mut dd, "the unprotected dd (control)");
        assert!(killed_by_sigkill(status), "control: dd ended with {status}");
    }

    let cg = MemCgroup::new(LIMIT);
    let mut dd = start_large(&cg);
    let protect = if caps::cap_sys_resource().is_ok() {
        -1000
    } else {
        0
    };
    let policy = parse_policy(
        &format!(
            "name: protect-dd\ntarget: {{}}\nmatch:\n  comm: dd\n  cgroup: '*{}'\noom_score_adj: {protect}\n",
            cg.name
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
    assert_eq!(oom_score_adj(dd.pid()), protect);

    let mut hog = start_hog(&cg);
    let status = wait_exit(&mut hog, "the unprotected tail");
    assert!(killed_by_sigkill(status), "tail ended with {status}");
    assert!(
        dd.0.try_wait().unwrap().is_none(),
        "the protected dd must survive"
    );
    assert!(rss_kb(dd.pid()) >= 60 * 1024, "and keep its memory");
    if let Some(kills) = cg.oom_kills() {
        assert!(kills >= 1, "the cgroup counts {kills} OOM kills");
    }
}
