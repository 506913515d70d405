//! The collector's configuration: a TOML file, overridden by command-line flags. Both are one
//! struct, [`Options`] (a clap `Args` and a serde `Deserialize`), merged flags-over-file in
//! [`Options::over`] and validated into [`Settings`] by [`Settings::resolve`], with errors that
//! name the field.
//!
//! ```toml
//! listen = "0.0.0.0:7443"
//! data_dir = "/var/lib/fleet-collector"
//! retention = "30d"
//! tls_cert = "/etc/fleet/collector.pem"
//! tls_key = "/etc/fleet/collector-key.pem"
//! tls_ca = "/etc/fleet/ca.pem"
//! tls_crl = "/etc/fleet/crl.pem"
//! tls_org = "Fleet"
//! allow_unbound_cluster = false
//! max_future_skew = "5m"
//! metrics_listen = "0.0.0.0:9464"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Errors in configuration. Each names the offending field.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read config file {}: {error}", path.display())]
    Read { path: PathBuf, error: String },
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

/// Every setting of the collector, declared once: each field is both a flag (`--data-dir`) and a
/// key of the TOML file (`data_dir`), except the few marked "config file only". Unknown keys are
/// refused. [`Options::over`] puts the flags over the file; [`Settings::resolve`] validates.
#[derive(Debug, Default, Clone, PartialEq, Eq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Address to listen on, e.g. 0.0.0.0:7443 (port 0 picks a free port, printed at start).
    #[arg(long)]
    pub listen: Option<String>,
    /// RocksDB data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address of the Prometheus metrics port (`GET /metrics`), e.g. 0.0.0.0:9464; with the TLS
    /// files and client certificate rules of the gRPC port (a scraper presents a viewer or
    /// operator certificate), plaintext only with `insecure`. None: no metrics port.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Serve plaintext gRPC (local demos and tests only).
    #[arg(long)]
    #[serde(default)]
    pub insecure: bool,
    /// Server certificate chain (PEM).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// Server key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// The fleet's CA (PEM): clients must present a certificate it signed (mutual TLS).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Certificate revocation lists (PEM, one or more, each from a CA of tls_ca): the client
    /// certificates they list are refused; re-read on SIGHUP, when open connections of newly
    /// revoked certificates are closed.
    #[arg(long)]
    pub tls_crl: Option<PathBuf>,
    /// The organisation (subject O) every client certificate must name, so that a CA shared
    /// with other uses does not admit every certificate it signed.
    #[arg(long)]
    pub tls_org: Option<String>,
    /// Accept agent certificates bound to no cluster (issued without `--cluster`), letting
    /// their agents join any cluster: for fleets migrating to bound certificates.
    #[arg(long)]
    #[serde(default)]
    pub allow_unbound_cluster: bool,
    /// How long samples are kept (default 30d).
    #[arg(long)]
    pub retention: Option<String>,
    /// How far ahead of the collector's clock an agent's timestamps may be (default 5m): later
    /// samples are dropped, later kills and clock readings stamped with the collector's time,
    /// and each is counted (`fleetctl status`).
    #[arg(long)]
    pub max_future_skew: Option<String>,
    /// Most agents connected at once (default 50000); more are refused until some leave. Config
    /// file only.
    #[arg(skip)]
    pub max_agents: Option<usize>,
    /// How often closed time windows are sealed into compressed chunks, e.g. "1m". Config file
    /// only.
    #[arg(skip)]
    pub seal_every: Option<String>,
    /// Alert rules file (TOML); reloaded on SIGHUP. Without it no rule is evaluated.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Prometheus Alertmanager URL (http://HOST:PORT) that receives alerts (v2 API).
    #[arg(long)]
    pub alertmanager: Option<String>,
    /// URL that receives every alert change as a JSON POST.
    #[arg(long)]
    pub webhook: Option<String>,
    /// CA (PEM) that an https Alertmanager's or webhook's certificate must chain to (default:
    /// the system's bundle, /etc/ssl/certs/ca-certificates.crt).
    #[arg(long)]
    pub notify_ca: Option<PathBuf>,
    /// Prometheus remote-write receiver URL (repeatable; `remote_write = [...]` in the file):
    /// every stored sample, NTP reading and OOM kill is sent to each, in order, resent after an
    /// outage or a restart (README "Remote-write").
    #[arg(long = "remote-write", value_name = "URL")]
    #[serde(default)]
    pub remote_write: Vec<String>,
    /// CA (PEM) an https receiver's certificate must chain to (default: the system's bundle).
    #[arg(long)]
    pub remote_write_ca: Option<PathBuf>,
    /// Client certificate (PEM) for receivers that ask for one; with remote_write_key.
    #[arg(long)]
    pub remote_write_cert: Option<PathBuf>,
    /// Key (PEM) of remote_write_cert.
    #[arg(long)]
    pub remote_write_key: Option<PathBuf>,
    /// File holding `USER:PASSWORD` for HTTP basic auth to the receivers.
    #[arg(long)]
    pub remote_write_basic_auth_file: Option<PathBuf>,
    /// File holding a bearer token for the receivers.
    #[arg(long)]
    pub remote_write_bearer_token_file: Option<PathBuf>,
    /// Label added to every remote-written series, NAME=VALUE (repeatable); never overrides a
    /// series' own or its host's labels.
    #[arg(long = "remote-write-label", value_name = "NAME=VALUE")]
    #[serde(default)]
    pub remote_write_label: Vec<String>,
    /// Most stored batches kept for receivers that have not accepted them (default 1000000);
    /// beyond it the oldest are dropped and counted.
    #[arg(long)]
    pub remote_write_queue: Option<u64>,
    /// Requests in flight per receiver (default 4): each stored batch's series are split
    /// across this many shards by their labels, a series always to the same shard; 1 sends one
    /// request at a time.
    #[arg(long)]
    pub remote_write_shards: Option<usize>,
}

impl Options {
    /// Parses the TOML text of a config file. `origin` names the file in errors.
    ///
    /// # Errors
    /// [`ConfigError::File`] naming the file and the bad or unknown key.
    pub fn parse(text: &str, origin: &str) -> Result<Options, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::File {
            path: origin.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// Reads and parses the config file at `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, else as [`Options::parse`].
    pub fn load(path: &Path) -> Result<Options, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            error: e.to_string(),
        })?;
        Options::parse(&text, &path.display().to_string())
    }

    /// These options (the flags) over `file`'s: each one given here wins. The one place the two
    /// sources are merged.
    pub fn over(self, file: Options) -> Options {
        Options {
            listen: self.listen.or(file.listen),
            data_dir: self.data_dir.or(file.data_dir),
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            insecure: self.insecure || file.insecure,
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            tls_ca: self.tls_ca.or(file.tls_ca),
            tls_crl: self.tls_crl.or(file.tls_crl),
            tls_org: self.tls_org.or(file.tls_org),
            allow_unbound_cluster: self.allow_unbound_cluster || file.allow_unbound_cluster,
            retention: self.retention.or(file.retention),
            max_future_skew: self.max_future_skew.or(file.max_future_skew),
            max_agents: self.max_agents.or(file.max_agents),
            seal_every: self.seal_every.or(file.seal_every),
            rules: self.rules.or(file.rules),
            alertmanager: self.alertmanager.or(file.alertmanager),
            webhook: self.webhook.or(file.webhook),
            notify_ca: self.notify_ca.or(file.notify_ca),
            remote_write: or_list(self.remote_write, file.remote_write),
            remote_write_ca: self.remote_write_ca.or(file.remote_write_ca),
            remote_write_cert: self.remote_write_cert.or(file.remote_write_cert),
            remote_write_key: self.remote_write_key.or(file.remote_write_key),
            remote_write_basic_auth_file: (self.remote_write_basic_auth_file)
                .or(file.remote_write_basic_auth_file),
            remote_write_bearer_token_file: (self.remote_write_bearer_token_file)
                .or(file.remote_write_bearer_token_file),
            remote_write_label: or_list(self.remote_write_label, file.remote_write_label),
            remote_write_queue: self.remote_write_queue.or(file.remote_write_queue),
            remote_write_shards: self.remote_write_shards.or(file.remote_write_shards),
        }
    }
}

/// A repeatable setting: the flags' list when any was given, else the file's.
fn or_list(flags: Vec<String>, file: Vec<String>) -> Vec<String> {
    if flags.is_empty() {
        file
    } else {
        flags
    }
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The metrics port; None: none.
    pub metrics_listen: Option<SocketAddr>,
    /// None: plaintext (only with `insecure`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The CA client certificates must chain to (mutual TLS); None: clients are not asked for
    /// a certificate.
    pub tls_ca: Option<PathBuf>,
    /// Revoked client certificates; only with `tls_ca`.
    pub tls_crl: Option<PathBuf>,
    /// The subject O client certificates must have; only with `tls_ca`.
    pub tls_org: Option<String>,
    /// Agent certificates bound to no cluster are accepted.
    pub allow_unbound_cluster: bool,
    pub retention: Duration,
    /// How far ahead of the collector's clock an agent's timestamps may be.
    pub max_future_skew: Duration,
    /// How often closed windows are sealed into compressed chunks.
    pub seal_every: Duration,
    pub max_agents: usize,
    pub rules: Option<PathBuf>,
    pub alertmanager: Option<String>,
    pub webhook: Option<String>,
    /// CA for https notifier URLs; None: the system's bundle.
    pub notify_ca: Option<PathBuf>,
    /// Remote-write; None: off.
    pub remote_write: Option<crate::remote_write::RemoteWriteOptions>,
}

/// How long samples are kept unless `retention` says otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often closed windows are sealed unless `seal_every` says otherwise.
pub const DEFAULT_SEAL_EVERY: Duration = Duration::from_secs(60);
/// Most connected agents unless `max_agents` says otherwise.
pub const DEFAULT_MAX_AGENTS: usize = 50_000;
/// How far ahead of the collector's clock an agent's timestamps may be unless
/// `max_future_skew` says otherwise: far more than a synchronised clock is ever off, far less
/// than the chunk window.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(300);

fn duration(field: &'static str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim())
        .map_err(|e| invalid(field, format!("{text:?} is not a duration ({e})")))
}

impl Settings {
    /// Merges file and flags (flags win, [`Options::over`]) and validates.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub fn resolve(file: Options, flags: Options) -> Result<Settings, ConfigError> {
        let o = flags.over(file);
        let remote_write = remote_write(&o.remote_write, &o)?;
        let listen_text = o
            .listen
            .ok_or_else(|| invalid("listen", "required (--listen ADDR:PORT)"))?;
        let listen = listen_text.parse().map_err(|e| {
            invalid(
                "listen",
                format!("{listen_text:?} is not ADDR:PORT ({e}); e.g. 0.0.0.0:7443"),
            )
        })?;
        let data_dir = o
            .data_dir
            .ok_or_else(|| invalid("data_dir", "required (--data-dir DIR)"))?;
        let metrics_listen = match o.metrics_listen {
            Some(text) => Some(text.parse().map_err(|e| {
                invalid(
                    "metrics_listen",
                    format!("{text:?} is not ADDR:PORT ({e}); e.g. 0.0.0.0:9464"),
                )
            })?),
            None => None,
        };
        let tls =
            match (o.tls_cert, o.tls_key) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) if o.insecure => None,
                (None, None) => return Err(invalid(
                    "tls_cert",
                    "TLS is required: give --tls-cert and --tls-key, or --insecure for plaintext",
                )),
                _ => return Err(invalid("tls_key", "--tls-cert and --tls-key go together")),
            };
        match (&tls, &o.tls_ca) {
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
        if o.tls_ca.is_none() {
            for (field, given) in [
                ("tls_crl", o.tls_crl.is_some()),
                ("tls_org", o.tls_org.is_some()),
            ] {
                if given {
                    return Err(invalid(
                        field,
                        "checks client certificates, which need mutual TLS: give --tls-cert, \
                         --tls-key and --tls-ca too",
                    ));
                }
            }
        }
        let tls_org = match o.tls_org {
            Some(org) if org.trim().is_empty() || org.trim() != org => {
                return Err(invalid(
                    "tls_org",
                    format!(
                        "{org:?}: the organisation is a name without leading or trailing blanks"
                    ),
                ))
            }
            org => org,
        };
        let retention = match o.retention {
            Some(t) => duration("retention", &t)?,
            None => DEFAULT_RETENTION,
        };
        if retention < Duration::from_secs(3600) {
            return Err(invalid("retention", "must be at least 1h"));
        }
        let max_future_skew = match o.max_future_skew {
            Some(t) => duration("max_future_skew", &t)?,
            None => DEFAULT_MAX_FUTURE_SKEW,
        };
        if max_future_skew < Duration::from_secs(1) {
            return Err(invalid(
                "max_future_skew",
                "must be at least 1s: clocks are never exactly the same",
            ));
        }
        let seal_every = match o.seal_every {
            Some(t) => duration("seal_every", &t)?,
            None => DEFAULT_SEAL_EVERY,
        };
        for (field, url) in [("alertmanager", &o.alertmanager), ("webhook", &o.webhook)] {
            if let Some(u) = url {
                if !u.starts_with("http://") && !u.starts_with("https://") {
                    return Err(invalid(
                        field,
                        format!("{u:?} must be an http:// or https:// URL"),
                    ));
                }
            }
        }
        let max_agents = o.max_agents.unwrap_or(DEFAULT_MAX_AGENTS);
        if max_agents == 0 {
            return Err(invalid("max_agents", "must be at least 1"));
        }
        Ok(Settings {
            remote_write,
            max_agents,
            listen,
            data_dir,
            metrics_listen,
            tls,
            tls_ca: o.tls_ca,
            tls_crl: o.tls_crl,
            tls_org,
            allow_unbound_cluster: o.allow_unbound_cluster,
            retention,
            max_future_skew,
            seal_every,
            rules: o.rules,
            alertmanager: o.alertmanager,
            webhook: o.webhook,
            notify_ca: o.notify_ca,
        })
    }

    /// The TLS settings the server takes; None for plaintext.
    pub fn tls_settings(&self) -> Option<crate::tls::TlsSettings> {
        let (cert, key) = self.tls.clone()?;
        Some(crate::tls::TlsSettings {
            cert,
            key,
            ca: self.tls_ca.clone(),
            crl: self.tls_crl.clone(),
            clients: crate::auth::CertRules {
                org: self.tls_org.clone(),
                allow_unbound_cluster: self.allow_unbound_cluster,
            },
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
        files.extend(self.tls_crl.as_ref().map(|f| ("tls_crl", f)));
        files.extend(self.rules.as_ref().map(|f| ("rules", f)));
        files.extend(self.notify_ca.as_ref().map(|f| ("notify_ca", f)));
        if let Some(rw) = &self.remote_write {
            crate::remote_write::client::check(&rw.client)
                .map_err(|e| invalid("remote_write", e))?;
        }
        for (field, path) in files {
            std::fs::File::open(path)
                .map_err(|e| invalid(field, format!("cannot read {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

/// Most remote-write shards per receiver: each holds a connection and up to two batches.
const MAX_REMOTE_WRITE_SHARDS: usize = 64;

/// The remote-write settings of `o` (None without a URL), validated.
fn remote_write(
    urls: &[String],
    o: &Options,
) -> Result<Option<crate::remote_write::RemoteWriteOptions>, ConfigError> {
    use crate::remote_write::{ClientOptions, RemoteWriteOptions, SenderOptions};
    let given_without = [
        ("remote_write_ca", o.remote_write_ca.is_some()),
        ("remote_write_cert", o.remote_write_cert.is_some()),
        ("remote_write_key", o.remote_write_key.is_some()),
        (
            "remote_write_basic_auth_file",
            o.remote_write_basic_auth_file.is_some(),
        ),
        (
            "remote_write_bearer_token_file",
            o.remote_write_bearer_token_file.is_some(),
        ),
        ("remote_write_label", !o.remote_write_label.is_empty()),
        ("remote_write_queue", o.remote_write_queue.is_some()),
        ("remote_write_shards", o.remote_write_shards.is_some()),
    ];
    if urls.is_empty() {
        return match given_without.iter().find(|(_, given)| *given) {
            Some((field, _)) => Err(invalid(field, "needs remote_write (--remote-write URL)")),
            None => Ok(None),
        };
    }
    let mut seen = std::collections::HashSet::new();
    for u in urls {
        if !u.starts_with("http://") && !u.starts_with("https://") {
            return Err(invalid(
                "remote_write",
                format!(
                    "{:?} must be an http:// or https:// URL",
                    crate::remote_write::display_url(u)
                ),
            ));
        }
        if !seen.insert(u) {
            return Err(invalid("remote_write", "the same URL twice"));
        }
    }
    let cert = match (&o.remote_write_cert, &o.remote_write_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "remote_write_key",
                "remote_write_cert and remote_write_key go together",
            ))
        }
    };
    if o.remote_write_basic_auth_file.is_some() && o.remote_write_bearer_token_file.is_some() {
        return Err(invalid(
            "remote_write_bearer_token_file",
            "basic auth and a bearer token exclude each other",
        ));
    }
    let mut labels = Vec::new();
    for l in &o.remote_write_label {
        let Some((name, value)) = l.split_once('=') else {
            return Err(invalid(
                "remote_write_label",
                format!("{l:?} is not NAME=VALUE"),
            ));
        };
        if crate::remote_write::names::sanitize_label_name(name).as_deref() != Some(name) {
            return Err(invalid(
                "remote_write_label",
                format!(
                    "{name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                ),
            ));
        }
        labels.push((name.to_owned(), value.to_owned()));
    }
    let queue_entries = o
        .remote_write_queue
        .unwrap_or(crate::remote_write::DEFAULT_QUEUE_ENTRIES);
    if queue_entries == 0 {
        return Err(invalid("remote_write_queue", "must be at least 1"));
    }
    let shards = o
        .remote_write_shards
        .unwrap_or(crate::remote_write::DEFAULT_SHARDS);
    if !(1..=MAX_REMOTE_WRITE_SHARDS).contains(&shards) {
        return Err(invalid(
            "remote_write_shards",
            format!("{shards}: from 1 to {MAX_REMOTE_WRITE_SHARDS}"),
        ));
    }
    Ok(Some(RemoteWriteOptions {
        urls: urls.to_vec(),
        client: ClientOptions {
            ca: o.remote_write_ca.clone(),
            cert,
            basic_auth_file: o.remote_write_basic_auth_file.clone(),
            bearer_token_file: o.remote_write_bearer_token_file.clone(),
            timeout: std::time::Duration::from_secs(30),
        },
        sender: SenderOptions {
            labels,
            shards,
            ..SenderOptions::default()
        },
        queue_entries,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Options {
        Options {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some("/tmp/d".into()),
            insecure: true,
            ..Options::default()
        }
    }

    #[test]
    fn unknown_key_and_bad_value_are_named() {
        let e = Options::parse("retension = \"1d\"", "c.toml").unwrap_err();
        assert!(e.to_string().contains("retension"), "{e}");
        let f = Options::parse("retention = \"forever\"", "c.toml").unwrap();
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
            Options::default(),
            Options {
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
    fn metrics_listen_from_the_file_or_the_flag() {
        let s = Settings::resolve(Options::default(), flags()).unwrap();
        assert_eq!(s.metrics_listen, None);
        let file = Options::parse("metrics_listen = \"127.0.0.1:9464\"", "c.toml").unwrap();
        let s = Settings::resolve(file.clone(), flags()).unwrap();
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
        let flag = Options {
            metrics_listen: Some("[::1]:0".into()),
            ..flags()
        };
        let s = Settings::resolve(file, flag).unwrap();
        assert_eq!(s.metrics_listen, Some("[::1]:0".parse().unwrap()));
        let flag = Options {
            metrics_listen: Some(":9464".into()),
            ..flags()
        };
        let e = Settings::resolve(Options::default(), flag).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    field: "metrics_listen",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn tls_is_required_without_insecure() {
        let e = Settings::resolve(
            Options::default(),
            Options {
                insecure: false,
                ..flags()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("--insecure"), "{e}");
        let s = Settings::resolve(
            Options::parse("retention = \"7d\"", "c.toml").unwrap(),
            flags(),
        )
        .unwrap();
        assert_eq!(s.retention, Duration::from_secs(7 * 86400));
        assert_eq!(s.tls, None);
    }

    #[test]
    fn max_future_skew_from_the_file_or_the_flag() {
        let s = Settings::resolve(Options::default(), flags()).unwrap();
        assert_eq!(s.max_future_skew, DEFAULT_MAX_FUTURE_SKEW);
        let file = Options::parse("max_future_skew = \"90s\"", "c.toml").unwrap();
        let s = Settings::resolve(file.clone(), flags()).unwrap();
        assert_eq!(s.max_future_skew, Duration::from_secs(90));
        let flag = Options {
            max_future_skew: Some("10m".into()),
            ..flags()
        };
        let s = Settings::resolve(file, flag).unwrap();
        assert_eq!(s.max_future_skew, Duration::from_secs(600));
        for bad in ["0s", "soon"] {
            let flag = Options {
                max_future_skew: Some(bad.into()),
                ..flags()
            };
            let e = Settings::resolve(Options::default(), flag).unwrap_err();
            assert!(
                matches!(
                    e,
                    ConfigError::Invalid {
                        field: "max_future_skew",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn certificate_rules_need_mutual_tls() {
        let mutual = || Options {
            insecure: false,
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            tls_ca: Some("ca.pem".into()),
            ..flags()
        };
        let f = Options::parse(
            "tls_crl = \"/etc/fleet/crl.pem\"\ntls_org = \"Acme\"\nallow_unbound_cluster = true\n",
            "c.toml",
        )
        .unwrap();
        let s = Settings::resolve(f.clone(), mutual()).unwrap();
        assert_eq!(s.tls_crl, Some(PathBuf::from("/etc/fleet/crl.pem")));
        assert_eq!(s.tls_org.as_deref(), Some("Acme"));
        assert!(s.allow_unbound_cluster);
        let tls = s.tls_settings().unwrap();
        assert_eq!(tls.clients.org.as_deref(), Some("Acme"));
        assert!(tls.clients.allow_unbound_cluster);
        // Off unless the file or the flag says so.
        let s = Settings::resolve(Options::default(), mutual()).unwrap();
        assert!(!s.allow_unbound_cluster && s.tls_crl.is_none());
        let s = Settings::resolve(
            Options::default(),
            Options {
                allow_unbound_cluster: true,
                ..mutual()
            },
        )
        .unwrap();
        assert!(s.allow_unbound_cluster);
        // Without client certificates there is nothing to revoke or check.
        let e = Settings::resolve(f, flags()).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    field: "tls_crl",
                    ..
                }
            ),
            "{e}"
        );
        let e = Settings::resolve(
            Options::default(),
            Options {
                tls_org: Some(" Acme".into()),
                ..mutual()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    field: "tls_org",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn client_ca_needs_tls() {
        let f = Options::parse("tls_ca = \"/etc/fleet/ca.pem\"", "c.toml").unwrap();
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
            Options {
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
            Options::default(),
            Options {
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

    #[test]
    fn remote_write_settings_are_checked() {
        let f = Options::parse(
            "remote_write = [\"http://vm:8428/api/v1/write\"]\nremote_write_label = [\"env=prod\"]\nremote_write_queue = 5",
            "c.toml",
        )
        .unwrap();
        let rw = Settings::resolve(f.clone(), flags())
            .unwrap()
            .remote_write
            .unwrap();
        assert_eq!(rw.urls, ["http://vm:8428/api/v1/write"]);
        assert_eq!(rw.sender.labels, [("env".to_owned(), "prod".to_owned())]);
        assert_eq!(rw.queue_entries, 5);
        assert_eq!(rw.sender.shards, crate::remote_write::DEFAULT_SHARDS);
        // Flags replace the file's list.
        let over = Options {
            remote_write: vec!["https://a/w".into(), "https://b/w".into()],
            ..flags()
        };
        let rw = Settings::resolve(f, over).unwrap().remote_write.unwrap();
        assert_eq!(rw.urls.len(), 2);
        let shards = Options::parse(
            "remote_write = [\"http://vm:8428/api/v1/write\"]\nremote_write_shards = 8",
            "c.toml",
        )
        .unwrap();
        let rw = Settings::resolve(shards.clone(), flags())
            .unwrap()
            .remote_write
            .unwrap();
        assert_eq!(rw.sender.shards, 8);
        let one = Options {
            remote_write_shards: Some(1),
            ..flags()
        };
        let rw = Settings::resolve(shards, one)
            .unwrap()
            .remote_write
            .unwrap();
        assert_eq!(rw.sender.shards, 1);
        assert_eq!(
            Settings::resolve(Options::default(), flags())
                .unwrap()
                .remote_write,
            None
        );
        for (bad, field) in [
            (
                Options {
                    remote_write_queue: Some(5),
                    ..flags()
                },
                "remote_write_queue",
            ),
            (
                Options {
                    remote_write_shards: Some(2),
                    ..flags()
                },
                "remote_write_shards",
            ),
            (
                Options {
                    remote_write: vec!["http://a/w".into()],
                    remote_write_shards: Some(0),
                    ..flags()
                },
                "remote_write_shards",
            ),
            (
                Options {
                    remote_write: vec!["vm:8428".into()],
                    ..flags()
                },
                "remote_write",
            ),
            (
                Options {
                    remote_write: vec!["http://a/w".into()],
                    remote_write_label: vec!["__x=1".into()],
                    ..flags()
                },
                "remote_write_label",
            ),
            (
                Options {
                    remote_write: vec!["http://a/w".into()],
                    remote_write_cert: Some("c.pem".into()),
                    ..flags()
                },
                "remote_write_key",
            ),
            (
                Options {
                    remote_write: vec!["http://a/w".into()],
                    remote_write_basic_auth_file: Some("a".into()),
                    remote_write_bearer_token_file: Some("b".into()),
                    ..flags()
                },
                "remote_write_bearer_token_file",
            ),
        ] {
            let e = Settings::resolve(Options::default(), bad).unwrap_err();
            assert!(
                matches!(e, ConfigError::Invalid { field: f, .. } if f == field),
                "{e}"
            );
        }
    }
}
