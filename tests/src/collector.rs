//! A real `fleet-collector` on loopback.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::paths::bin;
use crate::procs::{unique_suffix, Proc};

/// A collector this test started; its log is next to its data directory.
pub struct Collector {
    pub proc: Proc,
    /// The address it listens on, as it printed it (`127.0.0.1:PORT`).
    pub addr: String,
    /// The address of its metrics port (`--metrics-listen`), as it printed it.
    pub metrics: Option<String>,
    pub data_dir: PathBuf,
}

impl Collector {
    /// Starts with `--insecure` on `listen` (use "127.0.0.1:0" for a free port, or the `addr` of
    /// a collector stopped before to restart on its port) and waits until it serves.
    pub fn start(data_dir: &Path, listen: &str, extra: &[&str]) -> Collector {
        let mut args = vec!["--insecure"];
        args.extend_from_slice(extra);
        Collector::spawn(data_dir, listen, &args)
    }

    /// As [`Collector::start`] with exactly these extra arguments (no `--insecure`: give the TLS
    /// flags).
    ///
    /// # Panics
    /// If it does not start, with its log.
    pub fn spawn(data_dir: &Path, listen: &str, extra: &[&str]) -> Collector {
        let log = data_dir.with_extension(format!("log.{}", unique_suffix()));
        let mut proc = Proc::start(
            Command::new(bin("fleet-collector"))
                .args(["--listen", listen, "--data-dir"])
                .arg(data_dir)
                .args(extra)
                .env("RUST_LOG", "info")
                .stdout(Stdio::piped()),
            &log,
        );
        let (addr, metrics) = if extra.contains(&"--metrics-listen") {
            // `listening on ADDR`, then `metrics on ADDR`.
            let lines = proc.stdout_lines(2);
            let addr = lines[0].strip_prefix("listening on ");
            let metrics = lines[1].strip_prefix("metrics on ");
            match addr.zip(metrics) {
                Some((a, m)) => (a.to_string(), Some(m.to_string())),
                None => panic!(
                    "collector did not start: {lines:?}; log:\n{}",
                    proc.log_text()
                ),
            }
        } else {
            (proc.listening_addr(), None)
        };
        Collector {
            proc,
            addr,
            metrics,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// `http://ADDR`, for agents and fleetctl of a collector started with `--insecure`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
