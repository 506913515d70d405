//! Real Prometheus remote-write receivers on a loopback port, each with its own data directory:
//! VictoriaMetrics (Debian package `victoria-metrics`) and Prometheus (`prometheus`, with
//! `--web.enable-remote-write-receiver`, scraping nothing). Both answer the Prometheus query API,
//! which [`Tsdb::query`] and [`Tsdb::query_range`] call. And Prometheus's `promtool check
//! metrics`, which judges the collector's `/metrics`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::caps;
use crate::net::{free_port, http_get};
use crate::procs::Proc;
use crate::wait::wait_for;

/// Which receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    VictoriaMetrics,
    Prometheus,
}

/// A receiver this test started; stopped (SIGTERM) on drop.
pub struct Tsdb {
    pub kind: Kind,
    pub port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
}

/// `s` percent-encoded for a query string.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Tsdb {
    /// Starts `kind` with its data in `dir`, and waits until it is ready.
    pub fn start(kind: Kind, dir: &Path) -> Tsdb {
        let mut t = Tsdb {
            kind,
            port: free_port(),
            dir: dir.to_path_buf(),
            proc: None,
        };
        t.run();
        t
    }

    fn run(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let listen = format!("127.0.0.1:{}", self.port);
        let mut cmd = match self.kind {
            Kind::VictoriaMetrics => {
                let mut cmd = Command::new(caps::require(caps::program(
                    "victoria-metrics",
                    "victoria-metrics",
                )));
                cmd.arg(format!("-httpListenAddr={listen}"))
                    .arg(format!(
                        "-storageDataPath={}",
                        self.dir.join("data").display()
                    ))
                    // One copy of a sample sent twice (at-least-once delivery: README
                    // "Remote-write"), and answers that include the newest samples.
                    .arg("-dedup.minScrapeInterval=1ms")
                    .arg("-search.latencyOffset=0s")
                    .arg("-search.disableCache");
                cmd
            }
            Kind::Prometheus => {
                let mut cmd =
                    Command::new(caps::require(caps::program("prometheus", "prometheus")));
                let cfg = self.dir.join("prometheus.yml");
                std::fs::write(&cfg, "global:\n  scrape_interval: 1m\nscrape_configs: []\n")
                    .unwrap();
                cmd.arg(format!("--config.file={}", cfg.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        self.dir.join("data").display()
                    ))
                    .arg(format!("--web.listen-address={listen}"))
                    .arg("--web.enable-remote-write-receiver");
                cmd
            }
        };
        let log = self.dir.join(format!("{:?}.log", self.kind));
        self.proc = Some(Proc::start(cmd.stdout(Stdio::null()), &log));
        let ready = match self.kind {
            Kind::VictoriaMetrics => "/health",
            Kind::Prometheus => "/-/ready",
        };
        let port = self.port;
        wait_for(
            &format!("{:?} ready", self.kind),
            Duration::from_secs(30),
            || http_get(None, port, ready),
        );
    }

    /// The remote-write URL.
    pub fn write_url(&self) -> String {
        match self.kind {
            Kind::VictoriaMetrics => format!("http://127.0.0.1:{}/api/v1/write", self.port),
            Kind::Prometheus => format!("http://127.0.0.1:{}/api/v1/write", self.port),
        }
    }

    /// Stops it (SIGTERM, waiting up to 30 s).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.term(Duration::from_secs(30));
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// `GET path` (with its query string): the JSON answer, or None.
    pub fn get_json(&self, path: &str) -> Option<Value> {
        let body = http_get(None, self.port, path)?;
        serde_json::from_str(&body).ok()
    }

    /// An instant query at `time_s`: `data.result`.
    pub fn query(&self, promql: &str, time_s: f64) -> Vec<Value> {
        let path = format!(
            "/api/v1/query?query={}&time={time_s:.3}",
            url_encode(promql)
        );
        result(self.get_json(&path))
    }

    /// A range query: `data.result`.
    pub fn query_range(&self, promql: &str, start_s: f64, end_s: f64, step: &str) -> Vec<Value> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start_s:.3}&end={end_s:.3}&step={step}",
            url_encode(promql)
        );
        result(self.get_json(&path))
    }

    /// The raw samples (Unix ms, value) of the one series `selector` names, over `range` (e.g.
    /// `10m`) before `time_s`: a range-vector query, which returns every stored sample.
    pub fn samples(&self, selector: &str, range: &str, time_s: f64) -> Vec<(i64, f64)> {
        let r = self.query(&format!("{selector}[{range}]"), time_s);
        let Some(series) = r.first() else {
            return Vec::new();
        };
        assert_eq!(r.len(), 1, "{selector} names one series: {r:?}");
        series["values"]
            .as_array()
            .map(|vs| vs.iter().map(point).collect())
            .unwrap_or_default()
    }
}

/// `[seconds, "value"]` as (ms, value).
pub fn point(v: &Value) -> (i64, f64) {
    let t = v[0].as_f64().expect("time");
    let x = v[1].as_str().and_then(|s| s.parse().ok()).expect("value");
    ((t * 1000.0).round() as i64, x)
}

fn result(v: Option<Value>) -> Vec<Value> {
    v.and_then(|v| v["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `promtool check metrics` (`promtool`: its path) on `text`: None when it accepts it, else what
/// it said.
pub fn promtool_check_metrics(promtool: &Path, text: &str) -> Option<String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (!out.status.success() || !said.trim().is_empty()).then_some(said)
}
