//! Children of the policy tests (`policy_enforce.rs`, `policy_identity.rs`): started with a
//! distinctive argv[0] a policy can match, killed and reaped by pid when a test ends.

#![allow(dead_code)] // Each test file uses its own part of it.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Kills and reaps the child by its pid when the test ends, passed or failed.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// `sleep 60` with argv[0] `marker`.
pub fn sleeper(marker: &str) -> Reaped {
    run_as(OsStr::new("sleep"), marker)
}

/// `PROGRAM 60` (a copy of sleep) with argv[0] `marker`, returned once its argv shows.
pub fn run_as(program: &OsStr, marker: &str) -> Reaped {
    let child = Reaped(
        Command::new(program)
            .arg0(marker)
            .arg("60")
            .spawn()
            .expect("spawn sleep"),
    );
    // spawn returns when the child is inside execve, before the kernel has set up the new argv
    // (its /proc cmdline reads empty for a moment): wait until the marker shows.
    let path = format!("/proc/{}/cmdline", child.pid());
    for _ in 0..500 {
        if std::fs::read(&path).is_ok_and(|c| c.starts_with(marker.as_bytes())) {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    panic!("{marker}: argv never appeared in {path}");
}

/// The `oom_score_adj` of `pid`.
pub fn adj(pid: u32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .expect("read oom_score_adj")
        .trim()
        .parse()
        .unwrap()
}
