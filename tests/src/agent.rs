//! A real `fleet-agent` sampling this host at a 1 s interval.

use std::ffi::OsStr;
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
    let as_is = AgentAs {
        hostname: OsStr::new(host_id),
        wrapper: &[],
    };
    spawn_agent_as(as_is, url, state_dir, host_id, cluster, extra)
}

/// How [`spawn_agent_as`] runs an agent.
#[derive(Debug, Clone, Copy)]
pub struct AgentAs<'a> {
    /// The hostname it reports (`--hostname`; [`spawn_agent`] reports its host id).
    pub hostname: &'a OsStr,
    /// A program and its arguments that execute the agent's command line given after them, e.g.
    /// `setpriv --reuid=nobody ... --`; empty: the agent itself.
    pub wrapper: &'a [&'a str],
}

/// As [`spawn_agent`], reporting another hostname, or run through a wrapper.
pub fn spawn_agent_as(
    how: AgentAs<'_>,
    url: &str,
    state_dir: &Path,
    host_id: &str,
    cluster: &str,
    extra: &[&str],
) -> Proc {
    std::fs::create_dir_all(state_dir).expect("state dir");
    let log = state_dir.join(format!("agent.log.{}", unique_suffix()));
    let agent = bin("fleet-agent");
    let mut cmd = match how.wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(agent);
            cmd
        }
        None => Command::new(agent),
    };
    Proc::start(
        cmd.args(["--collector", url, "--state-dir"])
            .arg(state_dir)
            .args(["--host-id", host_id, "--hostname"])
            .arg(how.hostname)
            .args(["--cluster", cluster])
            .args(["--interval", "1s", "--label", "role=test"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null()),
        &log,
    )
}
