//! The OOM policy enforcer against this machine's real /proc, on `sleep` children of the test
//! (each with a distinctive argv[0] the policy's cmdline regex matches), and against a fixture
//! proc tree for pid reuse and failures.
//!
//! Setting a value below the process's floor (`oom_score_adj_min`, 0 unless a privileged
//! process lowered it) needs CAP_SYS_RESOURCE, which containers often drop. So these tests move
//! values above 0, which any owner may do, and `lowering_needs_cap_sys_resource` checks both
//! outcomes: the value set with the capability, "permission denied" reported without it.

mod children;

use std::path::Path;
use std::process::Command;

use children::{adj, sleeper, Reaped};
use fleet_agent::policy::release::release_policies;
use fleet_agent::policy::{Enforcer, ProcKey, PERMISSION_DENIED, PROCESS_GONE};
use fleet_policy::parse_policy;

fn set_adj(pid: u32, value: i32) {
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), format!("{value}\n"))
        .expect("write oom_score_adj of our own child");
}

fn policy(marker: &str, value: i32) -> fleet_policy::Policy {
    parse_policy(
        &format!("name: {marker}\ntarget: {{}}\nmatch:\n  cmdline: '^{marker} '\noom_score_adj: {value}\n"),
        "test.yaml",
    )
    .unwrap()
}

/// [`policy`] anchored by the sleepers' executable (`exe:`), as a value below 0 needs: on the
/// command line alone it would be refused as a weak identity.
fn anchored(marker: &str, value: i32, sleeper: &Reaped) -> fleet_policy::Policy {
    let exe = std::fs::read_link(format!("/proc/{}/exe", sleeper.pid())).unwrap();
    parse_policy(
        &format!(
            "name: {marker}\ntarget: {{}}\nmatch:\n  exe: {}\n  cmdline: '^{marker} '\noom_score_adj: {value}\n",
            exe.display()
        ),
        "test.yaml",
    )
    .unwrap()
}

#[test]
fn apply_new_processes_remove_and_restart() {
    let marker = format!("fleet-policy-test-{}-a", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let own = adj(std::process::id());

    let first = sleeper(&marker);
    set_adj(first.pid(), 123); // a distinctive original value
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    enforcer.tick().unwrap(); // nothing to do yet: no policy
    let status = enforcer.apply(policy(&marker, 500), 1).unwrap();
    assert_eq!(adj(first.pid()), 500);
    assert_eq!((status.matched, status.set), (1, 1), "{status:?}");
    assert!(status.failed.is_empty());

    // A process started afterwards gets the value within one tick.
    let second = sleeper(&marker);
    assert_eq!(adj(second.pid()), own, "inherited from the test");
    assert_eq!(enforcer.tick().unwrap(), 1);
    assert_eq!(adj(second.pid()), 500);
    let status = &enforcer.status()[0];
    assert_eq!((status.version, status.matched, status.set), (1, 2, 2));
    assert_eq!(enforcer.tick().unwrap(), 0, "steady state writes nothing");

    // A restarted enforcer (same state dir) keeps enforcing ...
    drop(enforcer);
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    assert_eq!(enforcer.policies().count(), 1);
    let third = sleeper(&marker);
    enforcer.tick().unwrap();
    assert_eq!(adj(third.pid()), 500);
    assert_eq!(enforcer.status()[0].matched, 3);

    // ... and still restores what the processes had before the policy.
    let report = enforcer.remove(&marker).unwrap().expect("policy known");
    assert_eq!(report.restored, 3, "{report:?}");
    assert!(report.failed.is_empty());
    assert_eq!(adj(first.pid()), 123);
    assert_eq!(adj(second.pid()), own);
    assert_eq!(adj(third.pid()), own);
    assert!(enforcer.status().is_empty());
    assert!(enforcer.remove(&marker).unwrap().is_none());

    // Removal is durable: a new instance enforces nothing.
    drop(enforcer);
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    assert_eq!(enforcer.policies().count(), 0);
    let fourth = sleeper(&marker);
    enforcer.tick().unwrap();
    assert_eq!(adj(fourth.pid()), own);
}

#[test]
fn new_version_releases_what_it_no_longer_matches() {
    let marker = format!("fleet-policy-test-{}-b", std::process::id());
    let other = format!("fleet-policy-test-{}-c", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let a = sleeper(&marker);
    let b = sleeper(&other);
    set_adj(a.pid(), 7);
    set_adj(b.pid(), 8);
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    let both = |v: i32| {
        parse_policy(
            &format!("name: p\ntarget: {{}}\nmatch:\n  cmdline: '^({marker}|{other}) '\noom_score_adj: {v}\n"),
            "p.yaml",
        )
        .unwrap()
    };
    enforcer.apply(both(300), 1).unwrap();
    assert_eq!((adj(a.pid()), adj(b.pid())), (300, 300));
    // Version 2 matches only `a`, with another value: `b` gets its original back.
    let mut v2 = policy(&marker, 200);
    v2.name = "p".into();
    let status = enforcer.apply(v2, 2).unwrap();
    assert_eq!((status.version, status.matched), (2, 1));
    assert_eq!((adj(a.pid()), adj(b.pid())), (200, 8));
    enforcer.remove("p").unwrap().unwrap();
    assert_eq!((adj(a.pid()), adj(b.pid())), (7, 8));
}

#[test]
fn overlapping_policies_hand_over() {
    let marker = format!("fleet-policy-test-{}-d", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let a = sleeper(&marker);
    set_adj(a.pid(), 11);
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    let mut first = policy(&marker, 100);
    first.name = "first".into();
    let mut second = policy(&marker, 200);
    second.name = "second".into();
    enforcer.apply(first, 1).unwrap();
    enforcer.apply(second, 1).unwrap();
    assert_eq!(adj(a.pid()), 200, "the policy applied last wins");
    let report = enforcer.remove("second").unwrap().unwrap();
    assert_eq!((report.restored, report.handed_over), (0, 1));
    assert_eq!(adj(a.pid()), 100);
    enforcer.remove("first").unwrap().unwrap();
    assert_eq!(adj(a.pid()), 11, "the value from before any policy");
    assert_eq!(
        enforcer.original(ProcKey {
            pid: a.pid(),
            starttime: 0
        }),
        None
    );
}

/// `release-policies` (the uninstall path): from the stored state alone, every process gets back
/// the value it had before any policy, also one two policies match, and no policy is left.
#[test]
fn release_restores_every_original_from_the_stored_state() {
    let marker = format!("fleet-policy-test-{}-r", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let (a, b) = (sleeper(&marker), sleeper(&marker));
    set_adj(a.pid(), 11);
    set_adj(b.pid(), 22);
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    // Named in their documents: the state file keeps each policy's document.
    let named = |name: &str, value: i32| {
        let text = format!(
            "name: {name}\ntarget: {{}}\nmatch:\n  cmdline: '^{marker} '\noom_score_adj: {value}\n"
        );
        parse_policy(&text, "test.yaml").unwrap()
    };
    enforcer.apply(named("first", 100), 1).unwrap();
    enforcer.apply(named("second", 200), 1).unwrap();
    assert_eq!((adj(a.pid()), adj(b.pid())), (200, 200));
    // The agent stops; the release reads what it stored.
    drop(enforcer);
    let report = release_policies(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    assert_eq!(
        report.policies,
        ["second", "first"],
        "the last applied first"
    );
    assert_eq!(report.restored, 2, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!((adj(a.pid()), adj(b.pid())), (11, 22));
    let reopened = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    assert_eq!(reopened.policies().count(), 0, "nothing left to enforce");
}

/// A fixture proc tree: one process whose oom_score_adj is a plain file.
fn fixture_proc(root: &Path, pid: u32, starttime: u64, comm: &str, adj: i32) {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("stat"),
        format!("{pid} ({comm}) S 1 {pid} {pid} 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 {starttime} 1000 10 18446744073709551615\n"),
    )
    .unwrap();
    std::fs::write(dir.join("cmdline"), format!("/usr/sbin/{comm}\0-D\0")).unwrap();
    std::fs::write(dir.join("status"), "Name:\tx\nUid:\t0\t0\t0\t0\n").unwrap();
    std::fs::write(dir.join("cgroup"), "0::/system.slice/ssh.service\n").unwrap();
    std::fs::write(dir.join("statm"), "100 50 0 0 0 0 0\n").unwrap();
    std::fs::write(dir.join("oom_score_adj"), format!("{adj}\n")).unwrap();
}

fn fixture_adj(root: &Path, pid: u32) -> String {
    std::fs::read_to_string(root.join(pid.to_string()).join("oom_score_adj"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_reused_pid_is_not_restored() {
    let proc_root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let root = proc_root.path();
    fixture_proc(root, 812, 1000, "sshd", 0);
    fixture_proc(root, 900, 1001, "cron", 5);
    let unit = parse_policy(
        "name: ssh\ntarget: {}\nmatch: {unit: ssh, comm: sshd}\noom_adj: -17\n",
        "p.yaml",
    )
    .unwrap();
    let mut enforcer = Enforcer::open(root, Path::new("/etc"), state.path()).unwrap();
    // Forced: in this two-process fixture sshd ties for the largest memory user, which the
    // safety check would refuse (safety_net_for_minus_1000 tests that).
    let status = enforcer.apply_with(unit, 4, true).unwrap();
    assert_eq!((status.matched, status.set), (1, 1));
    assert_eq!(fixture_adj(root, 812), "-1000");
    assert_eq!(fixture_adj(root, 900), "5");
    drop(enforcer);

    // sshd exits and its pid is reused by another process while the agent is down.
    fixture_proc(root, 812, 2000, "sshd", -1000);
    let mut enforcer = Enforcer::open(root, Path::new("/etc"), state.path()).unwrap();
    let report = enforcer.remove("ssh").unwrap().unwrap();
    assert_eq!(report.restored, 0, "the stored process is gone");
    assert_eq!(
        fixture_adj(root, 812),
        "-1000",
        "another process's value untouched"
    );
}

#[test]
fn failures_are_reported_with_reasons() {
    let proc_root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let root = proc_root.path();
    fixture_proc(root, 812, 1000, "sshd", 0);
    fixture_proc(root, 813, 1001, "sshd", 0);
    // A read-only sysctl refuses writes even from root: the kernel's answer to a write without
    // CAP_SYS_RESOURCE, EACCES.
    let adj_path = root.join("812/oom_score_adj");
    std::fs::remove_file(&adj_path).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/ngroups_max", &adj_path).unwrap();
    // Anchored by the unit: on comm alone a value below 0 is refused as a weak identity.
    let policy = parse_policy(
        "name: ssh\ntarget: {}\nmatch: {comm: sshd, unit: ssh}\noom_score_adj: -1\n",
        "p",
    )
    .unwrap();
    let mut enforcer = Enforcer::open(root, Path::new("/etc"), state.path()).unwrap();
    let status = enforcer.apply(policy, 1).unwrap();
    assert_eq!((status.matched, status.set), (2, 1), "{status:?}");
    assert_eq!(status.failed, vec![(812, PERMISSION_DENIED.to_string())]);
    assert_eq!(fixture_adj(root, 813), "-1");

    // 813 exits while the agent is running; removing the policy reports it gone.
    std::fs::remove_dir_all(root.join("813")).unwrap();
    let report = enforcer.remove("ssh").unwrap().unwrap();
    assert_eq!(
        report.failed,
        vec![
            (812, PERMISSION_DENIED.to_string()),
            (813, PROCESS_GONE.to_string())
        ],
        "{report:?}"
    );
}

/// Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff).
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
fn lowering_needs_cap_sys_resource() {
    let marker = format!("fleet-policy-test-{}-e", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let a = sleeper(&marker);
    let before = adj(a.pid());
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    let status = enforcer.apply(anchored(&marker, -1000, &a), 1).unwrap();
    assert_eq!(status.matched, 1);
    if has_cap_sys_resource() {
        assert_eq!((status.set, adj(a.pid())), (1, -1000), "{status:?}");
        enforcer.remove(&marker).unwrap().unwrap();
        assert_eq!(adj(a.pid()), before);
    } else {
        eprintln!("no CAP_SYS_RESOURCE here: checking that the refusal is reported");
        assert_eq!(status.set, 0);
        assert_eq!(
            status.failed,
            vec![(a.pid(), PERMISSION_DENIED.to_string())]
        );
        assert_eq!(adj(a.pid()), before, "unchanged");
    }
}

/// The periodic full rescan sets again a value someone reset, and matches a process by what it
/// became (a new argv after exec in the same pid), not only by what it was when first seen.
#[test]
fn full_rescan_reapplies_and_follows_exec() {
    let marker = format!("fleet-policy-test-{}-rescan", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    enforcer
        .scanner()
        .set_full_rescan(std::time::Duration::from_millis(300));
    let first = sleeper(&marker);
    enforcer.apply(policy(&marker, 321), 1).unwrap();
    assert_eq!(adj(first.pid()), 321);

    // Someone resets it: the next full rescan sets it again.
    set_adj(first.pid(), 0);
    enforcer.tick().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(350));
    enforcer.tick().unwrap();
    assert_eq!(adj(first.pid()), 321, "value set again by the full rescan");

    // A shell that execs into a matching command: first seen (and read twice) as `bash`, it
    // matches only after the exec, which the full rescan notices.
    let shell = Reaped(
        Command::new("bash")
            .arg("-c")
            .arg(format!("sleep 1; exec -a {marker} sleep 60"))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    enforcer.tick().unwrap();
    enforcer.tick().unwrap();
    assert_eq!(adj(shell.pid()), 0, "the shell does not match");
    let path = format!("/proc/{}/cmdline", shell.pid());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read(&path).is_ok_and(|c| c.starts_with(marker.as_bytes())) {
        assert!(std::time::Instant::now() < deadline, "exec never happened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(350));
    enforcer.tick().unwrap();
    assert_eq!(adj(shell.pid()), 321, "matched after its exec");
}

/// The runner makes the enforced set the collector's: absent policies are removed, a new
/// version is applied, and so is a changed document under the same version (a collector rebuilt
/// from scratch numbers from 1 again). Its report says what it holds and what it removed.
#[test]
fn runner_syncs_to_the_collectors_set() {
    use fleet_agent::policy::PolicyRunner;
    use fleet_proto::v1::PolicySpec;
    let marker = format!("fleet-policy-test-{}-runner", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let p = sleeper(&marker);
    let spec = |version: u64, value: i32| PolicySpec {
        name: "runner".into(),
        version,
        document: format!(
            "name: runner\ntarget: {{}}\nmatch:\n  cmdline: '^{marker} '\noom_score_adj: {value}\n"
        ),
        forced: false,
    };
    let mut runner =
        PolicyRunner::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    runner.sync(&[spec(1, 111)]);
    assert_eq!(adj(p.pid()), 111);
    let report = runner.take_report().expect("a report after a change");
    assert_eq!(report.policies.len(), 1);
    assert_eq!(
        (report.policies[0].version, report.policies[0].matched),
        (1, 1)
    );
    assert_eq!(report.policies[0].processes[0].original, 0);
    assert!(runner.take_report().is_none(), "nothing changed since");

    runner.sync(&[spec(1, 222)]);
    assert_eq!(adj(p.pid()), 222, "same version, other document: applied");
    runner.sync(&[spec(2, 333)]);
    assert_eq!(adj(p.pid()), 333);

    // After a restart the first sync applies again (idempotent), then the set empties.
    drop(runner);
    let mut runner =
        PolicyRunner::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    runner.sync(&[spec(2, 333)]);
    assert_eq!(adj(p.pid()), 333);
    runner.sync(&[]);
    assert_eq!(adj(p.pid()), 0, "removed: the original value is back");
    let report = runner.take_report().unwrap();
    assert!(report.policies.is_empty());
    assert_eq!(report.removed.len(), 1);
    assert_eq!(
        (report.removed[0].version, report.removed[0].restored),
        (2, 1)
    );
    assert!(!runner.has_policies());
}

/// The agent's own safety net for -1000 without --force: a policy matching more than five
/// processes at apply time takes none (each reported with the reason), forced it takes them all;
/// a policy that was fine at apply time stops taking new processes at five. Works with or
/// without CAP_SYS_RESOURCE: a -1000 write the kernel refuses still counts as taken.
#[test]
fn safety_net_for_minus_1000() {
    let marker = format!("fleet-policy-test-{}-net", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let six: Vec<Reaped> = (0..6).map(|_| sleeper(&marker)).collect();
    let policy = |value| anchored(&marker, value, &six[0]);
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    let status = enforcer.apply(policy(-1000), 1).unwrap();
    assert_eq!(status.matched, 0, "refused: takes no process");
    assert_eq!(status.failed.len(), 6);
    assert!(
        status
            .failed
            .iter()
            .all(|(_, why)| why.contains("6 processes") && why.contains("--force")),
        "{status:?}"
    );
    for p in &six {
        assert_eq!(adj(p.pid()), 0, "nothing written");
    }
    // The refusal outlives a restart and new processes: they are not taken either.
    drop(enforcer);
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    let seventh = sleeper(&marker);
    enforcer.tick().unwrap();
    assert_eq!(adj(seventh.pid()), 0);
    assert_eq!(enforcer.status()[0].matched, 0);

    // Forced, every match is taken (set, or "permission denied" without the capability).
    let status = enforcer.apply_with(policy(-1000), 2, true).unwrap();
    assert_eq!(status.matched, 7);
    assert!(
        status
            .failed
            .iter()
            .all(|(_, why)| why == PERMISSION_DENIED),
        "{status:?}"
    );
    enforcer.remove(&marker).unwrap();
    let policy = policy(-1000);
    drop(six);
    drop(seventh);

    // Fine at apply time (one process), then capped at five as more start.
    let first = sleeper(&marker);
    let status = enforcer.apply(policy, 3).unwrap();
    assert_eq!(status.matched, 1);
    let more: Vec<Reaped> = (0..6).map(|_| sleeper(&marker)).collect();
    enforcer.tick().unwrap();
    enforcer.tick().unwrap();
    let status = &enforcer.status()[0];
    assert_eq!(status.matched, 5, "{status:?}");
    let capped: Vec<&(u32, String)> = status
        .failed
        .iter()
        .filter(|(_, why)| why.contains("already disables the OOM killer for 5 processes"))
        .collect();
    assert_eq!(capped.len(), 2, "{status:?}");
    drop(first);
    drop(more);
}

/// A child of a process the policy holds, caught between fork and exec, is not given the
/// policy's value at that first look: it inherited the value at fork, and sshd's connection
/// child sets its own value back, then execs into a login session whose children would inherit
/// anything written meanwhile. Its second look, after the exec, finds it no longer matching:
/// it and the child it started keep their own value.
#[test]
fn a_forked_child_is_judged_after_its_exec() {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let marker = format!("fleet-policy-test-{}-f", std::process::id());
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (child_file, go, grandchild_file) = (
        dir.path().join("child"),
        dir.path().join("go"),
        dir.path().join("grandchild"),
    );
    // On a line on stdin the parent forks a subshell that sets its own value to 0, waits for
    // `go` (5 s at most), then execs a shell that starts a grandchild (30 s).
    let script = format!(
        "read x; ( echo 0 > /proc/$BASHPID/oom_score_adj; echo $BASHPID > {child}; \
         for i in $(seq 500); do [ -e {go} ] && break; sleep 0.01; done; \
         exec sh -c 'sleep 30 & echo $! > {grandchild}; wait' ) & wait",
        child = child_file.display(),
        go = go.display(),
        grandchild = grandchild_file.display(),
    );
    let parent = Reaped(
        Command::new("bash")
            .arg0(&marker)
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut enforcer = Enforcer::open(Path::new("/proc"), Path::new("/etc"), state.path()).unwrap();
    enforcer.tick().unwrap();
    enforcer.apply(policy(&marker, 321), 1).unwrap();
    assert_eq!(adj(parent.pid()), 321);
    enforcer.tick().unwrap();

    let read_pid = |path: &Path| -> u32 {
        for _ in 0..500 {
            if let Some(pid) = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                return pid;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{} not written", path.display());
    };
    let mut stdin = parent.0.stdin.as_ref().unwrap();
    writeln!(stdin).unwrap();
    let child = read_pid(&child_file);
    assert_eq!(adj(child), 0, "the child set its own value");
    // The first look: the child still runs the parent's program, with its command line.
    enforcer.tick().unwrap();
    assert!(
        std::fs::read_to_string(format!("/proc/{child}/cmdline"))
            .unwrap()
            .starts_with(&marker),
        "the first look came before the exec"
    );
    assert_eq!(adj(child), 0, "not written at its first look");
    std::fs::write(&go, "").unwrap();
    let grandchild = read_pid(&grandchild_file);
    enforcer.tick().unwrap();
    enforcer.tick().unwrap();
    let values = (adj(parent.pid()), adj(child), adj(grandchild));
    for pid in [grandchild, child] {
        // SAFETY: kill has no memory preconditions; these are this test's own descendants.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    assert_eq!(values, (321, 0, 0), "(parent, child, grandchild)");
}
