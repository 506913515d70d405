//! What the policy end-to-end tests (`policy.rs`, `policy_identity.rs`) share: a policy file
//! written for fleetctl, and a fleetctl run that must succeed.

#![allow(dead_code)] // Each test file uses its own part of it.

use std::path::{Path, PathBuf};

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
