//! Running the real `fleetctl` against a collector: plaintext (`--insecure`) or over mutual TLS,
//! its JSON output parsed.

use std::process::{Command, Output};

use serde_json::Value;

use crate::paths::bin;
use crate::pki::Pki;

/// Runs fleetctl against `url` with `--insecure` and returns its output.
pub fn fleetctl(url: &str, args: &[&str]) -> Output {
    Command::new(bin("fleetctl"))
        .args(["--collector", url, "--insecure"])
        .args(args)
        .output()
        .expect("run fleetctl")
}

/// Runs fleetctl against `url` over TLS, trusting `ca`, presenting `identity` (the certificate
/// of that name in that PKI), or none.
pub fn fleetctl_tls(url: &str, ca: &str, identity: Option<(&Pki, &str)>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("fleetctl"));
    cmd.args(["--collector", url, "--tls-ca", ca]);
    if let Some((pki, name)) = identity {
        cmd.args(pki.tls_args(name));
    }
    cmd.args(args).output().expect("run fleetctl")
}

/// Runs fleetctl with `-o json` and parses stdout.
///
/// # Panics
/// If fleetctl fails (with its stderr) or prints something else than JSON.
pub fn fleetctl_json(url: &str, args: &[&str]) -> Value {
    let out = fleetctl(url, &json_args(args));
    assert!(
        out.status.success(),
        "fleetctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fleetctl {args:?} printed invalid JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Like [`fleetctl_json`] but returns None instead of panicking (for polling).
pub fn try_fleetctl_json(url: &str, args: &[&str]) -> Option<Value> {
    let out = fleetctl(url, &json_args(args));
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn json_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    all
}

/// The last sequence number the collector at `url` stored for `host` (`fleetctl hosts`), or
/// None while it does not list the host.
pub fn last_seq(url: &str, host: &str) -> Option<u64> {
    let v = try_fleetctl_json(url, &["hosts"])?;
    v.as_array()?.iter().find(|h| h["host_id"] == host)?["last_seq"].as_u64()
}

/// Waits (up to 30 s) until the collector at `url` has stored at least `at_least` batches of
/// `host`, and returns the host's last sequence number. A batch is a sample (one a second), or
/// OOM events: an agent reading the kernel log sends the kills already in it first, each in a
/// batch of its own, so batches are no count of samples there ([`wait_for_sample_rows`]).
pub fn wait_for_batches(url: &str, host: &str, at_least: u64) -> u64 {
    crate::wait::wait_for(
        &format!("{at_least} batches of {host} stored"),
        std::time::Duration::from_secs(30),
        || last_seq(url, host).filter(|s| *s >= at_least),
    )
}

/// Waits (up to 30 s) until `fleetctl sar FLAG --host HOST` (the last 10 minutes) at `url` has
/// at least `at_least` rows: samples stored, whatever else the agent sent.
pub fn wait_for_sample_rows(url: &str, host: &str, flag: &str, at_least: usize) {
    crate::wait::wait_for(
        &format!("{at_least} rows of sar {flag} of {host}"),
        std::time::Duration::from_secs(30),
        || {
            let v = try_fleetctl_json(url, &["sar", flag, "--host", host])?;
            (v.as_array()?.len() >= at_least).then_some(())
        },
    );
}
