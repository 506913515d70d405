//! The agent's configuration: a TOML file, overridden by command-line flags.
//!
//! ```toml
//! collector = "https://collector.example:7443"
//! state_dir = "/var/lib/fleet-agent"
//! cluster = "prod"
//! interval = "10s"
//! [labels]
//! role = "web"
//! ```
//!
//! Every setting is one field of [`Options`]: its config key (serde) is the field, and its flag
//! is the row of [`crate::cli::FLAGS`] that stores into the field. A few exist on one side only:
//! `machine_id_path`, `ntp_period` and `etc_root` are config keys without a flag, `--no-kmsg` is
//! the flag for `kmsg_path = ""`.
//! [`Options::parse`] reads a file's text (pure: text in, typed options or an error naming the
//! field out); [`Options::over`] lays the flags over the file, the one place where they merge;
//! [`Settings::validate`] checks the result into the [`Settings`] the agent runs with, each
//! error naming its field. [`load`] is the three in a row, as `main` runs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

/// Errors in configuration. Each names the offending file or field.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// Every setting, as the flags and the config file give it (all optional: either side may
/// supply it). Unknown config keys are rejected. The flags' `--help` is in [`crate::cli::FLAGS`].
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Collector URL: https://HOST:PORT (or http:// with --insecure).
    pub collector: Option<String>,
    /// Directory for the spool and other state that must survive restarts.
    pub state_dir: Option<PathBuf>,
    /// Host id (default: /etc/machine-id).
    pub host_id: Option<String>,
    /// Hostname to report (default: the kernel's).
    pub hostname: Option<String>,
    /// Cluster this host belongs to (default: "default").
    pub cluster: Option<String>,
    /// A label KEY=VALUE; repeatable.
    // In the file, a `[labels]` table.
    #[serde(default, deserialize_with = "label_table")]
    pub labels: Vec<Label>,
    /// Sampling interval, 1s to 1h (default 10s).
    // A duration such as "10s" or "1m".
    pub interval: Option<String>,
    /// Root of the proc filesystem (for tests and containers).
    pub proc_root: Option<PathBuf>,
    /// Root of the sys filesystem.
    pub sys_root: Option<PathBuf>,
    // Config file only: where the host id is read from (default /etc/machine-id).
    pub machine_id_path: Option<PathBuf>,
    /// Allow a plaintext http:// collector (local demos and tests only).
    // On if the flag or the file turns it on.
    #[serde(default)]
    pub insecure: bool,
    /// CA certificate (PEM) that signed the collector's certificate.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Upper bound of the on-disk spool in MiB (default 64); oldest samples go first when full.
    pub spool_max_mib: Option<u64>,
    /// Kernel log to watch for OOM kills (default /dev/kmsg).
    // "" in the file turns it off.
    pub kmsg_path: Option<PathBuf>,
    /// Do not read the kernel log (no OOM events); `kmsg_path = ""` in the config file.
    #[serde(skip)]
    pub no_kmsg: bool,
    /// How many processes top-oom reports each interval (default 10; 0 turns it off).
    pub top_oom_limit: Option<usize>,
    /// An NTP server HOST:PORT to measure; repeatable (default: chrony's, ntpd's or timesyncd's).
    // In the file, `ntp_servers = [...]`; flags, when given, replace the file's list.
    #[serde(default)]
    pub ntp_servers: Vec<String>,
    // Config file only: how often the NTP servers are queried, e.g. "16s".
    pub ntp_period: Option<String>,
    // Config file only: where chrony/ntpd/timesyncd configuration is looked for (default "/etc").
    pub etc_root: Option<PathBuf>,
}

/// One label: an entry of the file's `[labels]` table, or a `--label K=V` flag as typed (split
/// when the settings are validated, so a malformed one is reported by field like any value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    Pair(String, String),
    Flag(String),
}

fn label_table<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Label>, D::Error> {
    let table = BTreeMap::<String, String>::deserialize(d)?;
    Ok(table.into_iter().map(|(k, v)| Label::Pair(k, v)).collect())
}

impl Options {
    /// Parses the TOML text of a config file. `origin` names the file in errors.
    ///
    /// # Errors
    /// [`ConfigError::File`] naming the file, the line and the bad or unknown key.
    pub fn parse(text: &str, origin: &str) -> Result<Options, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: origin.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// These options (the flags) laid over `file`: each setting given here wins; `insecure` is
    /// on if either turns it on; labels merge, a flag's winning over the file's for the same
    /// key; `--no-kmsg` becomes `kmsg_path = ""`.
    pub fn over(self, file: Options) -> Options {
        let mut labels = file.labels;
        labels.extend(self.labels);
        Options {
            collector: self.collector.or(file.collector),
            state_dir: self.state_dir.or(file.state_dir),
            host_id: self.host_id.or(file.host_id),
            hostname: self.hostname.or(file.hostname),
            cluster: self.cluster.or(file.cluster),
            labels,
            interval: self.interval.or(file.interval),
            proc_root: self.proc_root.or(file.proc_root),
            sys_root: self.sys_root.or(file.sys_root),
            machine_id_path: self.machine_id_path.or(file.machine_id_path),
            insecure: self.insecure || file.insecure,
            tls_ca: self.tls_ca.or(file.tls_ca),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            spool_max_mib: self.spool_max_mib.or(file.spool_max_mib),
            kmsg_path: if self.no_kmsg {
                Some(PathBuf::new())
            } else {
                self.kmsg_path.or(file.kmsg_path)
            },
            no_kmsg: false,
            top_oom_limit: self.top_oom_limit.or(file.top_oom_limit),
            ntp_servers: if self.ntp_servers.is_empty() {
                file.ntp_servers
            } else {
                self.ntp_servers
            },
            ntp_period: self.ntp_period.or(file.ntp_period),
            etc_root: self.etc_root.or(file.etc_root),
        }
    }
}

/// Reads the config file (if any), lays `flags` over it and validates the result.
///
/// # Errors
/// [`ConfigError`] naming the file or the field at fault.
pub fn load(flags: Options, config: Option<&Path>) -> Result<Settings, ConfigError> {
    let file = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            Options::parse(&text, &path.display().to_string())?
        }
        None => Options::default(),
    };
    Settings::validate(flags.over(file))
}

/// TLS material for the connection to the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The validated settings the agent runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub collector: String,
    pub state_dir: PathBuf,
    /// None: read from `machine_id_path`.
    pub host_id: Option<String>,
    /// None: the kernel's hostname.
    pub hostname: Option<String>,
    pub cluster: String,
    pub labels: BTreeMap<String, String>,
    pub interval: Duration,
    pub proc_root: PathBuf,
    pub sys_root: PathBuf,
    pub machine_id_path: PathBuf,
    /// None: plaintext (only with `insecure`).
    pub tls: Option<TlsFiles>,
    pub spool_max_bytes: u64,
    /// None: the kernel log is not read.
    pub kmsg_path: Option<PathBuf>,
    /// 0: top-oom off.
    pub top_oom_limit: usize,
    /// Explicit NTP servers (HOST:PORT); empty: discovered under `etc_root`.
    pub ntp_servers: Vec<String>,
    pub ntp_period: Duration,
    pub etc_root: PathBuf,
}

pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_SPOOL_MIB: u64 = 64;
pub const DEFAULT_TOP_OOM: usize = 10;
pub const MAX_TOP_OOM: usize = 1000;

/// Parses a duration like "10s", "1m", "1500ms".
///
/// # Errors
/// A message naming what could not be read.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration ({e})"))
}

/// Checks an NTP server given as `HOST:PORT` (`[v6addr]:PORT` for IPv6).
///
/// # Errors
/// A message saying what is wrong.
pub fn check_host_port(text: &str) -> Result<(), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{text:?} is not HOST:PORT (port 1-65535)"));
    }
    Ok(())
}

/// Checks a host id: 1-128 characters of `[A-Za-z0-9._-]`.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_host_id(id: &str) -> Result<(), String> {
    fleet_proto::identity::check_host_id(id).map_err(|e| format!("{id:?} {e}"))
}

impl Settings {
    /// Merges the file and the flags (which win, see [`Options::over`]) and validates the result.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn resolve(file: Options, flags: Options) -> Result<Settings, ConfigError> {
        Settings::validate(flags.over(file))
    }

    /// Validates merged options, filling in the defaults.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn validate(o: Options) -> Result<Settings, ConfigError> {
        let collector = o.collector.ok_or_else(|| {
            invalid(
                "collector",
                "required (--collector URL or `collector` in the config file)",
            )
        })?;
        let tls = if let Some(rest) = collector.strip_prefix("http://") {
            if !o.insecure {
                return Err(invalid(
                    "collector",
                    format!("plaintext http://{rest} needs --insecure; use https:// with --tls-ca otherwise"),
                ));
            }
            None
        } else if collector.starts_with("https://") {
            let ca = o.tls_ca.ok_or_else(|| {
                invalid(
                    "tls_ca",
                    "an https:// collector needs --tls-ca FILE (the fleet's CA certificate)",
                )
            })?;
            if o.tls_cert.is_some() != o.tls_key.is_some() {
                return Err(invalid("tls_key", "--tls-cert and --tls-key go together"));
            }
            Some(TlsFiles {
                ca,
                cert: o.tls_cert,
                key: o.tls_key,
            })
        } else {
            return Err(invalid(
                "collector",
                format!("{collector:?} must start with https:// (or http:// with --insecure)"),
            ));
        };

        let state_dir = o
            .state_dir
            .ok_or_else(|| invalid("state_dir", "required (--state-dir DIR)"))?;

        if let Some(id) = &o.host_id {
            check_host_id(id).map_err(|m| invalid("host_id", m))?;
        }
        let cluster = o.cluster.unwrap_or_else(|| "default".to_string());
        fleet_proto::identity::check_cluster(&cluster)
            .map_err(|e| invalid("cluster", e.to_string()))?;
        let mut labels = BTreeMap::new();
        for label in o.labels {
            let (k, v) = match label {
                Label::Pair(k, v) => (k, v),
                Label::Flag(kv) => {
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| invalid("label", format!("{kv:?} is not KEY=VALUE")))?;
                    if k.is_empty() {
                        return Err(invalid("label", format!("{kv:?} has an empty key")));
                    }
                    (k.to_string(), v.to_string())
                }
            };
            labels.insert(k, v);
        }

        let interval = match o.interval {
            Some(text) => parse_duration(&text).map_err(|m| invalid("interval", m))?,
            None => DEFAULT_INTERVAL,
        };
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
            return Err(invalid(
                "interval",
                format!("{} is outside 1s..1h", humantime::format_duration(interval)),
            ));
        }
        let spool_mib = o.spool_max_mib.unwrap_or(DEFAULT_SPOOL_MIB);
        if spool_mib == 0 {
            return Err(invalid("spool_max_mib", "must be at least 1"));
        }

        let top_oom_limit = o.top_oom_limit.unwrap_or(DEFAULT_TOP_OOM);
        if top_oom_limit > MAX_TOP_OOM {
            return Err(invalid(
                "top_oom_limit",
                format!("{top_oom_limit} is more than {MAX_TOP_OOM}"),
            ));
        }
        let kmsg_path = match o.kmsg_path {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p),
            None => Some(PathBuf::from("/dev/kmsg")),
        };

        for server in &o.ntp_servers {
            check_host_port(server).map_err(|m| invalid("ntp_servers", m))?;
        }
        let ntp_period = match &o.ntp_period {
            Some(t) => parse_duration(t).map_err(|m| invalid("ntp_period", m))?,
            None => Duration::from_secs(16),
        };
        if ntp_period < Duration::from_secs(1) {
            return Err(invalid("ntp_period", "must be at least 1s"));
        }

        Ok(Settings {
            collector,
            state_dir,
            host_id: o.host_id,
            hostname: o.hostname,
            cluster,
            labels,
            interval,
            proc_root: o.proc_root.unwrap_or_else(|| "/proc".into()),
            sys_root: o.sys_root.unwrap_or_else(|| "/sys".into()),
            machine_id_path: o
                .machine_id_path
                .unwrap_or_else(|| "/etc/machine-id".into()),
            tls,
            spool_max_bytes: spool_mib * 1024 * 1024,
            kmsg_path,
            top_oom_limit,
            ntp_servers: o.ntp_servers,
            ntp_period,
            etc_root: o.etc_root.unwrap_or_else(|| "/etc".into()),
        })
    }

    /// Checks that every file these settings name can be opened for reading by this process
    /// (`--check-config`, which a unit runs as the service's user before starting it): the TLS
    /// files, and the machine id when no `host_id` is set.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field and the file.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let mut files = Vec::new();
        if let Some(tls) = &self.tls {
            files.push(("tls_ca", &tls.ca));
            files.extend(tls.cert.as_ref().map(|f| ("tls_cert", f)));
            files.extend(tls.key.as_ref().map(|f| ("tls_key", f)));
        }
        if self.host_id.is_none() {
            files.push(("machine_id_path", &self.machine_id_path));
        }
        for (field, path) in files {
            std::fs::File::open(path)
                .map_err(|e| invalid(field, format!("cannot read {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Options {
        Options {
            collector: Some("http://127.0.0.1:1".into()),
            state_dir: Some("/tmp/x".into()),
            insecure: true,
            ..Options::default()
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Options::parse("colector = \"x\"\n", "agent.toml").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("agent.toml") && msg.contains("colector"),
            "{msg}"
        );
    }

    #[test]
    fn bad_value_is_named() {
        let err = Options::parse("interval = 10\n", "a.toml").unwrap_err();
        assert!(err.to_string().contains("interval"), "{err}");
        let file = Options::parse("interval = \"ten seconds\"\n", "a.toml").unwrap();
        let err = Settings::resolve(file, flags()).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    field: "interval",
                    ..
                }
            ),
            "{err}"
        );
        let err = Settings::resolve(
            Options::default(),
            Options {
                interval: Some("500ms".into()),
                ..flags()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("outside 1s..1h"), "{err}");
    }

    #[test]
    fn flags_win_over_file_and_labels_merge() {
        let file = Options::parse(
            "cluster = \"staging\"\ninterval = \"5s\"\n[labels]\nrole = \"db\"\nzone = \"a\"\n",
            "a.toml",
        )
        .unwrap();
        let s = Settings::resolve(
            file,
            Options {
                cluster: Some("prod".into()),
                labels: vec![Label::Flag("role=web".into())],
                ..flags()
            },
        )
        .unwrap();
        assert_eq!(s.cluster, "prod");
        assert_eq!(s.interval, Duration::from_secs(5));
        assert_eq!(s.labels["role"], "web");
        assert_eq!(s.labels["zone"], "a");
        assert_eq!(s.tls, None);
    }

    #[test]
    fn plaintext_needs_insecure_and_https_needs_a_ca() {
        let err = Settings::resolve(
            Options::default(),
            Options {
                insecure: false,
                ..flags()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("--insecure"), "{err}");
        let err = Settings::resolve(
            Options::default(),
            Options {
                collector: Some("https://c:7443".into()),
                ..flags()
            },
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                field: "tls_ca",
                ..
            }
        ));
    }

    #[test]
    fn host_id_and_labels_are_checked() {
        let err = Settings::resolve(
            Options::default(),
            Options {
                host_id: Some("a b".into()),
                ..flags()
            },
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                field: "host_id",
                ..
            }
        ));
        let err = Settings::resolve(
            Options::default(),
            Options {
                labels: vec![Label::Flag("novalue".into())],
                ..flags()
            },
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { field: "label", .. }));
    }

    #[test]
    fn flags_over_file_in_one_place() {
        let file = Options::parse(
            "insecure = true\nkmsg_path = \"/k\"\nntp_servers = [\"a:123\"]\n\
             [labels]\n\"a=b\" = \"c\"\n",
            "a.toml",
        )
        .unwrap();
        let s = Settings::resolve(
            file.clone(),
            Options {
                insecure: false,
                ..flags()
            },
        )
        .unwrap();
        assert_eq!(s.tls, None, "insecure from the file");
        assert_eq!(s.kmsg_path, Some("/k".into()));
        assert_eq!(s.ntp_servers, ["a:123"]);
        assert_eq!(s.labels["a=b"], "c", "a file key may hold '='");
        let s = Settings::resolve(
            file,
            Options {
                no_kmsg: true,
                ntp_servers: vec!["b:123".into()],
                labels: vec![Label::Flag("a=b=d".into())],
                ..flags()
            },
        )
        .unwrap();
        assert_eq!(s.kmsg_path, None, "--no-kmsg");
        assert_eq!(s.ntp_servers, ["b:123"], "flags replace the file's list");
        assert_eq!(
            (s.labels["a"].as_str(), s.labels["a=b"].as_str()),
            ("b=d", "c")
        );
    }
}
