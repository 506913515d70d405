//! The top-oom scanner against this machine's real `/proc`: a child given the highest
//! `oom_score_adj` must rank first. Needs to run as root only to lower an adj; raising one, as
//! here, is allowed to anyone.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fleet_agent::sources::topoom::TopOomScanner;

/// Kills and reaps the child by its pid when the test ends, passed or failed.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `cond` up to a deadline.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_child_with_the_highest_adj_ranks_first() {
    let child = Reaped(
        Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = child.0.id();
    let proc_dir = Path::new("/proc").join(pid.to_string());
    std::fs::write(proc_dir.join("oom_score_adj"), b"1000\n").expect("raise oom_score_adj");
    // Until exec, the child is a copy of this test binary.
    wait_for("the child to exec sleep", || {
        std::fs::read(proc_dir.join("cmdline")).is_ok_and(|c| c == b"sleep\x0030\x00")
    });

    let mut scanner = TopOomScanner::new(Path::new("/proc"), 10);
    let out = scanner.scan().expect("scan /proc");
    let stats = scanner.last_stats();
    eprintln!(
        "{} processes, {} candidates, cost {:?}, period {:?}",
        stats.processes,
        stats.candidates,
        scanner.last_cost(),
        scanner.period()
    );
    for p in &out {
        eprintln!(
            "{:>7} {:>5} {:>5} {:>8} kB uid {:>5} {:<15} {}",
            p.pid, p.oom_score, p.oom_score_adj, p.rss_kb, p.uid, p.comm, p.cmdline
        );
    }
    assert!(out.len() <= 10);
    let at = out
        .iter()
        .position(|p| p.pid == i64::from(pid))
        .unwrap_or_else(|| panic!("child {pid} not in the ranking"));
    // Another test on this machine may have raised a process of its own to 1000 at the same
    // time; only such a process may rank above ours.
    for p in &out[..at] {
        assert_eq!(p.oom_score_adj, 1000, "{p:?} ranks above the child");
    }
    if at > 0 {
        eprintln!("note: {at} other process(es) with oom_score_adj 1000 rank above the child");
    }
    let me = &out[at];
    assert_eq!(me.oom_score_adj, 1000);
    assert_eq!(
        (me.comm.as_str(), me.cmdline.as_str()),
        ("sleep", "sleep 30")
    );
    // SAFETY: getuid has no preconditions.
    assert_eq!(me.uid, i64::from(unsafe { libc::getuid() }));
    assert!(me.rss_kb > 0);
    assert!(me.oom_score > 0);
    for w in out.windows(2) {
        assert!(
            (w[0].oom_score, w[0].rss_kb) >= (w[1].oom_score, w[1].rss_kb),
            "out of order: {w:?}"
        );
    }
    // No kernel thread (they have no command line of their own and cannot be killed).
    assert!(out
        .iter()
        .all(|p| p.pid != 2 && !p.cmdline.starts_with('[')));

    drop(child);
    let out = scanner.scan().expect("scan /proc");
    assert!(
        out.iter().all(|p| p.pid != i64::from(pid)),
        "reaped child still ranked"
    );
}
