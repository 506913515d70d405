//! `fleet-agent`: the per-host daemon.
//!
//! Layout:
//! - [`sources`]: what the agent measures; `sources::procfs` computes sar's activities from /proc,
//!   `sources::kmsg` parses OOM-killer reports, `sources::topoom` ranks processes by oom_score.
//! - [`oomwatch`]: reads /dev/kmsg (cursor, overruns, the vmstat cross-check) into OOM events.
//! - [`spool`]: the durable, bounded on-disk queue of samples not yet acknowledged.
//! - [`link`]: the main loop: sample, spool, ship over one gRPC stream, free on ack.
//! - [`config`], [`identity`]: settings, who this host is.
//!
//! The binary (`src/main.rs`) only parses flags, loads the config file, sets up logging and
//! signals, and calls [`run`].

pub mod config;
pub mod identity;
pub mod link;
pub mod policy;
pub mod sources;
pub mod spool;

use std::future::Future;

use thiserror::Error;
use tracing::{error, info, warn};

/// Why the agent could not run.
#[derive(Debug, Error)]
pub enum AgentError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error(transparent)]
    Source(#[from] sources::procfs::SourceError),
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

/// Opens the OOM policy enforcer. A state file that cannot be understood is moved aside (named
/// in the log) rather than stopping the agent: the collector sends the policies again, and the
/// values the processes hold now become their originals.
fn open_policies(settings: &config::Settings) -> Option<policy::PolicyRunner> {
    let open =
        || policy::PolicyRunner::open(&settings.proc_root, &settings.etc_root, &settings.state_dir);
    match open() {
        Ok(r) => Some(r),
        Err(policy::EnforceError::State { dir, source }) => {
            let path = dir.join(policy::state::STATE_FILE);
            let aside = dir.join(format!(
                "{}.unreadable-{}",
                policy::state::STATE_FILE,
                now_ms()
            ));
            error!(error = %source, moved_to = %aside.display(),
                "OOM policy state unreadable; moved aside, policies come again from the collector");
            if let Err(e) = std::fs::rename(&path, &aside) {
                error!(error = %e, "cannot move the policy state aside; OOM policies are not enforced");
                return None;
            }
            open()
                .map_err(|e| error!(error = %e, "OOM policies are not enforced"))
                .ok()
        }
        Err(e) => {
            error!(error = %e, "OOM policies are not enforced");
            None
        }
    }
}

/// Spool segments roll at this size.
pub const SPOOL_SEGMENT_BYTES: u64 = 1024 * 1024;

/// Runs the agent with validated settings until `shutdown` resolves.
///
/// # Errors
/// [`AgentError`] when the identity, the spool or /proc cannot be set up, or the spool cannot
/// be written.
pub async fn run(
    settings: config::Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let identity = identity::identity(&settings).map_err(AgentError::Setup)?;
    // `--check-config` (the units' ExecStartPre) refuses this; the daemon says it and goes on
    // spooling, so new certificate files and a SIGHUP fix it without a restart.
    if let Err(e) = identity::check_certificate(&settings, &identity.host_id, now_ms() / 1000) {
        error!(error = %e, "the collector will refuse this agent's certificate");
    }
    let (spool, report) = spool::Spool::open(
        &settings.state_dir.join("spool"),
        settings.spool_max_bytes,
        SPOOL_SEGMENT_BYTES.min(settings.spool_max_bytes),
    )?;
    for (path, offset, len) in &report.corrupt {
        warn!(file = %path.display(), offset, bytes = len,
            "corrupt spool data skipped; the frames around it are kept");
    }
    if report.truncated_bytes > 0 {
        warn!(
            bytes = report.truncated_bytes,
            "torn last spool frame truncated (the agent stopped mid-write)"
        );
    }
    if let Some(problem) = &report.meta_problem {
        warn!(problem = %problem, "spool metadata rebuilt from the segments");
    }
    let sampler = sources::procfs::Sampler::new(&settings.proc_root, &settings.sys_root)?;
    let top_oom = (settings.top_oom_limit > 0)
        .then(|| sources::topoom::TopOomScanner::new(&settings.proc_root, settings.top_oom_limit));
    let kmsg = match &settings.kmsg_path {
        Some(path) => {
            match sources::kmsg::KmsgWatcher::open(path, &settings.proc_root, &settings.state_dir) {
                Ok(w) => Some(w),
                Err(e) => {
                    // Samples still flow; the operator sees why OOM kills are not reported.
                    warn!(error = %e, "OOM kills will not be reported (the agent needs CAP_SYSLOG to read the kernel log)");
                    None
                }
            }
        }
        None => None,
    };
    info!(
        host_id = %identity.host_id,
        hostname = %identity.hostname,
        cluster = %identity.cluster,
        interval = %humantime::format_duration(settings.interval),
        spooled = report.frames,
        "fleet-agent starting"
    );
    let servers = if settings.ntp_servers.is_empty() {
        sources::ntp::config::discover(&settings.etc_root)
    } else {
        settings.ntp_servers.clone()
    };
    if servers.is_empty() {
        warn!("no NTP server configured or found in chrony/ntpd/timesyncd configuration; clock offsets will not be measured");
    } else {
        info!(servers = ?servers, "measuring NTP offsets");
    }
    let ntp = (!servers.is_empty()).then(|| {
        sources::ntp::NtpProbe::new(
            servers,
            std::time::Duration::from_secs(1),
            &settings.proc_root,
        )
        .with_period(settings.ntp_period)
    });
    let policies = open_policies(&settings);
    let sources = link::Sources {
        sampler,
        top_oom,
        kmsg,
        ntp,
        policies,
    };
    link::run(settings, identity, sources, spool, shutdown).await
}
