//! The collector's configuration: a TOML file, overridden by command-line flags.
//!
//! ```toml
//! listen = "0.0.0.0:7443"
//! data_dir = "/var/lib/fleet-collector"
//! retention = "30d"
//! tls_cert = "/etc/fleet/collector.pem"
//! tls_key = "/etc/fleet/collector-key.pem"
//! ```

use std::net::SocketAddr;
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

/// Every key the collector's TOML file may hold. Unknown keys are rejected.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The fleet's CA: clients (agents, fleetctl) must present a certificate it signed.
    pub tls_ca: Option<PathBuf>,
    /// How long samples are kept, e.g. "30d".
    pub retention: Option<String>,
    /// Most agents connected at once (default 50000); more are refused until some leave.
    pub max_agents: Option<usize>,
    /// How often closed time windows are sealed into compressed chunks, e.g. "1m".
    pub seal_every: Option<String>,
    /// Alert rules file (TOML, `[[rule]]` tables); reloaded on SIGHUP.
    pub rules: Option<PathBuf>,
    /// Prometheus Alertmanager base URL (http://HOST:PORT) to send alerts to.
    pub alertmanager: Option<String>,
    /// A URL that receives every alert change as JSON (POST).
    pub webhook: Option<String>,
    /// CA (PEM) that an https Alertmanager's or webhook's certificate must chain to; default:
    /// the system's bundle.
    pub notify_ca: Option<PathBuf>,
}

impl FileConfig {
    /// Parses the TOML text of a config file. `origin` names the file in errors.
    ///
    /// # Errors
    /// [`ConfigError::File`] naming the file and the bad or unknown key.
    pub fn parse(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: origin.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }
}

/// The flags, as given.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub insecure: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub retention: Option<String>,
    pub rules: Option<PathBuf>,
    pub alertmanager: Option<String>,
    pub webhook: Option<String>,
    pub notify_ca: Option<PathBuf>,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// None: plaintext (only with `insecure`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The CA client certificates must chain to (mutual TLS); None: clients are not asked for
    /// a certificate.
    pub tls_ca: Option<PathBuf>,
    pub retention: Duration,
    /// How often closed windows are sealed into compressed chunks.
    pub seal_every: Duration,
    pub max_agents: usize,
    pub rules: Option<PathBuf>,
    pub alertmanager: Option<String>,
    pub webhook: Option<String>,
    /// CA for https notifier URLs; None: the system's bundle.
    pub notify_ca: Option<PathBuf>,
}

pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

fn duration(field: &'static str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim())
        .map_err(|e| invalid(field, format!("{text:?} is not a duration ({e})")))
}

impl Settings {
    /// Merges file and flags (flags win) and validates.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn resolve(file: FileConfig, flags: Flags) -> Result<Settings, ConfigError> {
        let listen_text = flags
            .listen
            .or(file.listen)
            .ok_or_else(|| invalid("listen", "required (--listen ADDR:PORT)"))?;
        let listen = listen_text.parse().map_err(|e| {
            invalid(
                "listen",
                format!("{listen_text:?} is not ADDR:PORT ({e}); e.g. 0.0.0.0:7443"),
            )
        })?;
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .ok_or_else(|| invalid("data_dir", "required (--data-dir DIR)"))?;
        let insecure = flags.insecure || file.insecure.unwrap_or(false);
        let cert = flags.tls_cert.or(file.tls_cert);
        let key = flags.tls_key.or(file.tls_key);
        let tls =
            match (cert, key) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) if insecure => None,
                (None, None) => return Err(invalid(
                    "tls_cert",
                    "TLS is required: give --tls-cert and --tls-key, or --insecure for plaintext",
                )),
                _ => return Err(invalid("tls_key", "--tls-cert and --tls-key go together")),
            };
        let tls_ca = flags.tls_ca.or(file.tls_ca);
        match (&tls, &tls_ca) {
            (None, Some(_)) => {
                return Err(invalid(
                    "tls_ca",
                    "client certificates need TLS: give --tls-cert and --tls-key too",
                ))
            }
            // Mutual TLS by default: who may send, read or change is the client certificate's
            // role. Plaintext (--insecure) is the only way without it.
            (Some(_), None) => {
                return Err(invalid(
                    "tls_ca",
                    "required with TLS: the fleet CA that client certificates must chain to \
                     (mutual TLS); `fleetctl certs init` makes one",
                ))
            }
            _ => {}
        }
        let retention = match flags.retention.or(file.retention) {
            Some(t) => duration("retention", &t)?,
            None => DEFAULT_RETENTION,
        };
        if retention < Duration::from_secs(3600) {
            return Err(invalid("retention", "must be at least 1h"));
        }
        let seal_every = match file.seal_every {
            Some(t) => duration("seal_every", &t)?,
            None => Duration::from_secs(60),
        };
        let alertmanager = flags.alertmanager.or(file.alertmanager);
        let webhook = flags.webhook.or(file.webhook);
        for (field, url) in [("alertmanager", &alertmanager), ("webhook", &webhook)] {
            if let Some(u) = url {
                if !u.starts_with("http://") && !u.starts_with("https://") {
                    return Err(invalid(
                        field,
                        format!("{u:?} must be an http:// or https:// URL"),
                    ));
                }
            }
        }
        let max_agents = file.max_agents.unwrap_or(crate::server::DEFAULT_MAX_AGENTS);
        if max_agents == 0 {
            return Err(invalid("max_agents", "must be at least 1"));
        }
        Ok(Settings {
            max_agents,
            listen,
            data_dir,
            tls,
            tls_ca,
            retention,
            seal_every,
            rules: flags.rules.or(file.rules),
            alertmanager,
            webhook,
            notify_ca: flags.notify_ca.or(file.notify_ca),
        })
    }

    /// Checks that every file these settings name can be opened for reading by this process
    /// (`--check-config`, which a unit runs as the service's user before starting it).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field and the file.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let mut files = Vec::new();
        if let Some((cert, key)) = &self.tls {
            files.extend([("tls_cert", cert), ("tls_key", key)]);
        }
        files.extend(self.tls_ca.as_ref().map(|f| ("tls_ca", f)));
        files.extend(self.rules.as_ref().map(|f| ("rules", f)));
        files.extend(self.notify_ca.as_ref().map(|f| ("notify_ca", f)));
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
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some("/tmp/d".into()),
            insecure: true,
            ..Flags::default()
        }
    }

    #[test]
    fn unknown_key_and_bad_value_are_named() {
        let e = FileConfig::parse("retension = \"1d\"", "c.toml").unwrap_err();
        assert!(e.to_string().contains("retension"), "{e}");
        let f = FileConfig::parse("retention = \"forever\"", "c.toml").unwrap();
        let e = Settings::resolve(f, flags()).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    field: "retention",
                    ..
                }
            ),
            "{e}"
        );
        let e = Settings::resolve(
            FileConfig::default(),
            Flags {
                listen: Some("localhost".into()),
                ..flags()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    field: "listen",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn tls_is_required_without_insecure() {
        let e = Settings::resolve(
            FileConfig::default(),
            Flags {
                insecure: false,
                ..flags()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("--insecure"), "{e}");
        let s = Settings::resolve(
            FileConfig::parse("retention = \"7d\"", "c.toml").unwrap(),
            flags(),
        )
        .unwrap();
        assert_eq!(s.retention, Duration::from_secs(7 * 86400));
        assert_eq!(s.tls, None);
    }

    #[test]
    fn client_ca_needs_tls() {
        let f = FileConfig::parse("tls_ca = \"/etc/fleet/ca.pem\"", "c.toml").unwrap();
        let e = Settings::resolve(f.clone(), flags()).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    field: "tls_ca",
                    ..
                }
            ),
            "{e}"
        );
        let s = Settings::resolve(
            f,
            Flags {
                insecure: false,
                tls_cert: Some("c.pem".into()),
                tls_key: Some("k.pem".into()),
                ..flags()
            },
        )
        .unwrap();
        assert_eq!(s.tls_ca, Some(PathBuf::from("/etc/fleet/ca.pem")));
        // TLS without the fleet CA is refused: mutual TLS or plaintext, nothing between.
        let e = Settings::resolve(
            FileConfig::default(),
            Flags {
                insecure: false,
                tls_cert: Some("c.pem".into()),
                tls_key: Some("k.pem".into()),
                ..flags()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    field: "tls_ca",
                    ..
                }
            ),
            "{e}"
        );
    }
}
