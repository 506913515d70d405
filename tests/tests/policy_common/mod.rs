//! What the policy end-to-end tests (`policy.rs`, `policy_identity.rs`, `ui_policies.rs`)
//! share: a policy file written for fleetctl, a fleetctl run that must succeed, and a `sleep`
//! child for a policy to act on.

#![allow(dead_code)] // Each test file uses its own part of it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fleet_tests::procs::with_oom_score_adj as with_adj;
use fleet_tests::{wait_for, Reaped};

/// Writes `text` to `dir/file` and returns the path.
pub fn write_policy(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// The stdout of a run that must have succeeded (else fails naming `what`, with its stderr).
pub fn ok(out: &std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A `sleep` whose argv[0] is `name`, with `oom_score_adj` = `initial`.
pub fn sleeper(name: &str, initial: i32) -> Reaped {
    let child = Reaped(
        with_adj(Command::new("sleep").arg0(name).arg("300"), initial)
            .spawn()
            .unwrap(),
    );
    let path = format!("/proc/{}/cmdline", child.pid());
    wait_for("sleeper argv", Duration::from_secs(5), || {
        std::fs::read(&path)
            .ok()
            .filter(|c| c.starts_with(name.as_bytes()))
    });
    child
}
