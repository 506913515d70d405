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
//! [`FileConfig::parse`] is pure (text in, typed config or an error naming the field out);
//! [`Settings::resolve`] merges file and flags and validates the result.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Errors in configuration. Each names the offending field.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
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

/// Every key the agent's TOML file may hold. Unknown keys are rejected.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub collector: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub host_id: Option<String>,
    pub hostname: Option<String>,
    pub cluster: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A duration such as "10s" or "1m".
    pub interval: Option<String>,
    pub proc_root: Option<PathBuf>,
    pub sys_root: Option<PathBuf>,
    pub machine_id_path: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Upper bound of the on-disk spool, in MiB.
    pub spool_max_mib: Option<u64>,
    /// The kernel log to watch for OOM kills; "" turns it off.
    pub kmsg_path: Option<PathBuf>,
    /// How many processes top-oom reports; 0 turns it off.
    pub top_oom_limit: Option<usize>,
    /// NTP servers to measure, "HOST:PORT"; empty: those of chrony, ntpd or timesyncd.
    #[serde(default)]
    pub ntp_servers: Vec<String>,
    /// How often the NTP servers are queried, e.g. "16s".
    pub ntp_period: Option<String>,
    /// Where chrony/ntpd/timesyncd configuration is looked for (default "/etc").
    pub etc_root: Option<PathBuf>,
}

impl FileConfig {
    /// Parses the TOML text of a config file. `origin` names the file in errors.
    ///
    /// # Errors
    /// [`ConfigError::File`] naming the file, the line and the bad or unknown key.
    pub fn parse(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: origin.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }
}

/// The flags, as given (all optional so that the file can supply them).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub collector: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub host_id: Option<String>,
    pub hostname: Option<String>,
    pub cluster: Option<String>,
    pub labels: Vec<String>,
    pub interval: Option<String>,
    pub proc_root: Option<PathBuf>,
    pub sys_root: Option<PathBuf>,
    pub insecure: bool,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub spool_max_mib: Option<u64>,
    pub kmsg_path: Option<PathBuf>,
    pub top_oom_limit: Option<usize>,
    pub ntp_servers: Vec<String>,
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
    /// Merges the file (if any) and the flags (which win) and validates everything.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn resolve(file: FileConfig, flags: Flags) -> Result<Settings, ConfigError> {
        let collector = flags.collector.or(file.collector).ok_or_else(|| {
            invalid(
                "collector",
                "required (--collector URL or `collector` in the config file)",
            )
        })?;
        let insecure = flags.insecure || file.insecure.unwrap_or(false);
        let tls_ca = flags.tls_ca.or(file.tls_ca);
        let tls_cert = flags.tls_cert.or(file.tls_cert);
        let tls_key = flags.tls_key.or(file.tls_key);
        let tls = if let Some(rest) = collector.strip_prefix("http://") {
            if !insecure {
                return Err(invalid(
                    "collector",
                    format!("plaintext http://{rest} needs --insecure; use https:// with --tls-ca otherwise"),
                ));
            }
            None
        } else if collector.starts_with("https://") {
            let ca = tls_ca.ok_or_else(|| {
                invalid(
                    "tls_ca",
                    "an https:// collector needs --tls-ca FILE (the fleet's CA certificate)",
                )
            })?;
            if tls_cert.is_some() != tls_key.is_some() {
                return Err(invalid("tls_key", "--tls-cert and --tls-key go together"));
            }
            Some(TlsFiles {
                ca,
                cert: tls_cert,
                key: tls_key,
            })
        } else {
            return Err(invalid(
                "collector",
                format!("{collector:?} must start with https:// (or http:// with --insecure)"),
            ));
        };

        let state_dir = flags
            .state_dir
            .or(file.state_dir)
            .ok_or_else(|| invalid("state_dir", "required (--state-dir DIR)"))?;

        let host_id = flags.host_id.or(file.host_id);
        if let Some(id) = &host_id {
            check_host_id(id).map_err(|m| invalid("host_id", m))?;
        }
        let cluster = flags
            .cluster
            .or(file.cluster)
            .unwrap_or_else(|| "default".to_string());
        if cluster.is_empty() || cluster.len() > 128 {
            return Err(invalid("cluster", "must be 1 to 128 characters"));
        }
        let mut labels = file.labels;
        for kv in &flags.labels {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| invalid("label", format!("{kv:?} is not KEY=VALUE")))?;
            if k.is_empty() {
                return Err(invalid("label", format!("{kv:?} has an empty key")));
            }
            labels.insert(k.to_string(), v.to_string());
        }

        let interval = match flags.interval.or(file.interval) {
            Some(text) => parse_duration(&text).map_err(|m| invalid("interval", m))?,
            None => DEFAULT_INTERVAL,
        };
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
            return Err(invalid(
                "interval",
                format!("{} is outside 1s..1h", humantime::format_duration(interval)),
            ));
        }
        let spool_mib = flags
            .spool_max_mib
            .or(file.spool_max_mib)
            .unwrap_or(DEFAULT_SPOOL_MIB);
        if spool_mib == 0 {
            return Err(invalid("spool_max_mib", "must be at least 1"));
        }

        let top_oom_limit = flags
            .top_oom_limit
            .or(file.top_oom_limit)
            .unwrap_or(DEFAULT_TOP_OOM);
        if top_oom_limit > MAX_TOP_OOM {
            return Err(invalid(
                "top_oom_limit",
                format!("{top_oom_limit} is more than {MAX_TOP_OOM}"),
            ));
        }
        let kmsg_path = match flags.kmsg_path.or(file.kmsg_path) {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p),
            None => Some(PathBuf::from("/dev/kmsg")),
        };

        let ntp_servers = if flags.ntp_servers.is_empty() {
            file.ntp_servers
        } else {
            flags.ntp_servers
        };
        for server in &ntp_servers {
            check_host_port(server).map_err(|m| invalid("ntp_servers", m))?;
        }
        let ntp_period = match &file.ntp_period {
            Some(t) => parse_duration(t).map_err(|m| invalid("ntp_period", m))?,
            None => Duration::from_secs(16),
        };
        if ntp_period < Duration::from_secs(1) {
            return Err(invalid("ntp_period", "must be at least 1s"));
        }

        Ok(Settings {
            collector,
            state_dir,
            host_id,
            hostname: flags.hostname.or(file.hostname),
            cluster,
            labels,
            interval,
            proc_root: flags
                .proc_root
                .or(file.proc_root)
                .unwrap_or_else(|| "/proc".into()),
            sys_root: flags
                .sys_root
                .or(file.sys_root)
                .unwrap_or_else(|| "/sys".into()),
            machine_id_path: file
                .machine_id_path
                .unwrap_or_else(|| "/etc/machine-id".into()),
            tls,
            spool_max_bytes: spool_mib * 1024 * 1024,
            kmsg_path,
            top_oom_limit,
            ntp_servers,
            ntp_period,
            etc_root: file.etc_root.unwrap_or_else(|| "/etc".into()),
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

    fn flags() -> Flags {
        Flags {
            collector: Some("http://127.0.0.1:1".into()),
            state_dir: Some("/tmp/x".into()),
            insecure: true,
            ..Flags::default()
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = FileConfig::parse("colector = \"x\"\n", "agent.toml").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("agent.toml") && msg.contains("colector"),
            "{msg}"
        );
    }

    #[test]
    fn bad_value_is_named() {
        let err = FileConfig::parse("interval = 10\n", "a.toml").unwrap_err();
        assert!(err.to_string().contains("interval"), "{err}");
        let file = FileConfig::parse("interval = \"ten seconds\"\n", "a.toml").unwrap();
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
            FileConfig::default(),
            Flags {
                interval: Some("500ms".into()),
                ..flags()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("outside 1s..1h"), "{err}");
    }

    #[test]
    fn flags_win_over_file_and_labels_merge() {
        let file = FileConfig::parse(
            "cluster = \"staging\"\ninterval = \"5s\"\n[labels]\nrole = \"db\"\nzone = \"a\"\n",
            "a.toml",
        )
        .unwrap();
        let s = Settings::resolve(
            file,
            Flags {
                cluster: Some("prod".into()),
                labels: vec!["role=web".into()],
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
            FileConfig::default(),
            Flags {
                insecure: false,
                ..flags()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("--insecure"), "{err}");
        let err = Settings::resolve(
            FileConfig::default(),
            Flags {
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
            FileConfig::default(),
            Flags {
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
            FileConfig::default(),
            Flags {
                labels: vec!["novalue".into()],
                ..flags()
            },
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { field: "label", .. }));
    }
}
