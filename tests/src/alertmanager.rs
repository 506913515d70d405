//! A real Prometheus Alertmanager (Debian package `prometheus-alertmanager`) on a loopback port,
//! clustering off, over http or https: the receiver of the collector's alerts.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::caps;
use crate::net::{free_port, http_get, tls_client};
use crate::procs::Proc;
use crate::wait::wait_for;

/// An Alertmanager this test started, ready to serve.
pub struct Alertmanager {
    pub proc: Proc,
    pub port: u16,
    /// The client of an https Alertmanager, trusting the CA it was started with.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Alertmanager {
    /// Starts one over http, its config and state in `dir`, and waits until it is ready.
    pub fn start(dir: &Path) -> Alertmanager {
        Alertmanager::start_with(dir, None)
    }

    /// As [`Alertmanager::start`], serving https with `cert` and `key`; this harness checks its
    /// certificate against `ca`.
    pub fn start_tls(dir: &Path, cert: &Path, key: &Path, ca: &Path) -> Alertmanager {
        Alertmanager::start_with(dir, Some((cert, key, ca)))
    }

    fn start_with(dir: &Path, tls: Option<(&Path, &Path, &Path)>) -> Alertmanager {
        let program = caps::require(caps::alertmanager());
        let port = free_port();
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(
            &cfg,
            "route:\n  receiver: none\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: none\n",
        )
        .unwrap();
        let mut cmd = Command::new(program);
        if let Some((cert, key, _)) = tls {
            let web = dir.join("web.yml");
            std::fs::write(
                &web,
                format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                    cert.display(),
                    key.display()
                ),
            )
            .unwrap();
            cmd.arg(format!("--web.config.file={}", web.display()));
        }
        let proc = Proc::start(
            cmd.arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.path={}", dir.join("am-data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null()),
            &dir.join("alertmanager.log"),
        );
        let am = Alertmanager {
            proc,
            port,
            tls: tls.map(|(_, _, ca)| tls_client(ca)),
        };
        wait_for("alertmanager ready", Duration::from_secs(30), || {
            am.get("/-/ready").filter(|b| b.contains("OK"))
        });
        am
    }

    /// A GET of `path` (over https if it serves https): the body of a 200 answer, or None.
    pub fn get(&self, path: &str) -> Option<String> {
        http_get(self.tls.as_ref(), self.port, path)
    }

    /// The active alerts (`/api/v2/alerts?active=true`); empty when it does not answer.
    pub fn active_alerts(&self) -> Vec<Value> {
        self.get("/api/v2/alerts?active=true")
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}
