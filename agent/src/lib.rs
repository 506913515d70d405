//! `fleet-agent`: the per-host daemon.
//!
//! Layout:
//! - [`agent`]: [`agent::Agent`], the main loop: it owns the sources, the spool and the link,
//!   and its `select!` only dispatches each event (interval tick, kernel log, NTP result,
//!   policy tick, link event, SIGHUP, shutdown) to one method; setup from the settings.
//! - [`alarm`]: the loop's one timer (a `timerfd` set to its earliest deadline: one wakeup per
//!   deadline, where tokio's timer wheel makes two).
//! - [`link`]: the stream to the collector. `link::connector` opens it (the [`link::Connector`]
//!   trait; tonic in production, channels in tests); `link::connection` keeps it up
//!   ([`link::Connection`]: backoff, the outage logged once per change, the in-flight window,
//!   acks into the spool) and yields one stream of [`link::LinkEvent`]s.
//! - [`sources`]: what the agent measures, one folder per source: `procfs` (sar's activities
//!   from /proc, one file per activity in `procfs/activity/`), `kmsg` (the OOM-report parser, and `kmsg::watch` reading /dev/kmsg: cursor,
//!   overruns, the vmstat cross-check; `watch::detail` each event's detail under the limit,
//!   `watch::clock` its wall time), `topoom` (processes ranked by oom_score), `ntp` (NTP
//!   servers and the kernel clock; its fake server only with the `test-util` feature).
//! - [`spool`]: the durable, bounded on-disk queue of batches not yet acknowledged;
//!   `spool::pack` what goes in (batches checked with the collector's check, OOM events split to
//!   fit), `spool::aside` the batches the collector refused, set aside.
//! - [`policy`]: OOM policies (oom_score_adj) enforced on matching processes.
//! - [`statelock`]: one agent per state directory (an `flock` the daemon and
//!   `release-policies` take first).
//! - [`config`]: the settings, one field each for flags and file ([`config::Options`]),
//!   validated into [`config::Settings`]; [`identity`]: who this host is, and the check of its
//!   client certificate at start (`identity::cert` reads the few fields it needs from the DER).
//! - [`cli`]: the command line, parsed by hand (pure: arguments in, a [`cli::Cli`], a help text
//!   or a usage error naming the flag out); each flag a row of [`cli::FLAGS`].
//!
//! The binary (`src/main.rs`) only parses flags, loads the config file, sets up logging and
//! signals, and calls [`run`].
//!
//! Features: `test-util` compiles `sources::ntp::fake`, the fake NTP server of the tests and of
//! the `fleet-fake-ntp` binary; the production build leaves it out.

pub mod agent;
pub mod alarm;
pub mod cli;
pub mod config;
pub mod identity;
pub mod link;
pub mod policy;
pub mod sources;
pub mod spool;
pub mod statelock;

use std::future::Future;

use thiserror::Error;

/// Why the agent could not run.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error(transparent)]
    Source(#[from] sources::procfs::SourceError),
    /// The loop's timer (a timerfd) cannot be made or read.
    #[error("the agent's timer: {0}")]
    Timer(std::io::Error),
}

pub(crate) use fleet_proto::clock::now_ms;

/// `--check-config`, after the settings resolved: the files they name can be read, and the
/// client certificate is an agent certificate for this host id that has not expired.
///
/// # Errors
/// A message naming the field or file at fault, and the fix.
pub fn check_config(settings: &config::Settings) -> Result<(), String> {
    settings.check_files().map_err(|e| e.to_string())?;
    let id = identity::identity(settings)?;
    identity::check_certificate(settings, &id.host_id, now_ms() / 1000)
}

/// Runs the agent with validated settings until `shutdown` resolves.
///
/// # Errors
/// [`AgentError`] when the identity, the spool or /proc cannot be set up, or the spool cannot
/// be written.
pub async fn run(
    settings: config::Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let _lock = statelock::StateLock::acquire(&settings.state_dir)
        .map_err(|e| AgentError::Setup(e.to_string()))?;
    agent::Agent::open(&settings)?.run(shutdown).await
}

/// `fleet-agent release-policies`: with the agent stopped (its state directory's lock is
/// taken first, so a running agent is never undercut), every policy in the state is removed and
/// each process it changed gets back its original `oom_score_adj`.
///
/// # Errors
/// A message naming what failed: the lock (a running agent), or the policy state.
pub fn release_policies(
    settings: &config::Settings,
) -> Result<policy::release::ReleaseReport, String> {
    let _lock = statelock::StateLock::acquire(&settings.state_dir).map_err(|e| e.to_string())?;
    policy::release::release_policies(&settings.proc_root, &settings.etc_root, &settings.state_dir)
        .map_err(|e| e.to_string())
}
