//! A real `fleet-agent` sampling this host at a 1 s interval.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::paths::bin;
use crate::procs::{unique_suffix, Proc};

/// Starts an agent at a 1 s interval against `url`, with `--insecure`, labelled `role=test`.
///
/// The kernel log is shared by every test on this host: only tests about OOM kills read it (they
/// pass `--kmsg-path`), so the other agents get `--no-kmsg` and their batches are samples alone.
pub fn start_agent(
    url: &str,
    state_dir: &Path,
    host_id: &str,
    cluster: &str,
    extra: &[&str],
) -> Proc {
    let mut args = vec!["--insecure"];
    if !extra.contains(&"--kmsg-path") {
        args.push("--no-kmsg");
    }
    args.extend_from_slice(extra);
    spawn_agent(url, state_dir, host_id, cluster, &args)
}

/// Starts an agent at a 1 s interval, labelled `role=test`, with exactly these extra arguments
/// (no `--insecure`, no `--no-kmsg`). Its log is in `state_dir`.
pub fn spawn_agent(
    url: &str,
    state_dir: &Path,
    host_id: &str,
    cluster: &str,
    extra: &[&str],
) -> Proc {
    std::fs::create_dir_all(state_dir).expect("state dir");
    let log = state_dir.join(format!("agent.log.{}", unique_suffix()));
    Proc::start(
        Command::new(bin("fleet-agent"))
            .args(["--collector", url, "--state-dir"])
            .arg(state_dir)
            .args([
                "--host-id",
                host_id,
                "--hostname",
                host_id,
                "--cluster",
                cluster,
            ])
            .args(["--interval", "1s", "--label", "role=test"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null()),
        &log,
    )
}
