//! fleetctl's settings: the optional TOML config file, merged with flags and the environment.
//!
//! The file is read only when `--config FILE` is given. Every key is optional; unknown keys are
//! errors, so a typo does not silently fall back to a default:
//!
//! ```toml
//! collector = "https://collector.example.net:7443"
//! tls_ca = "/etc/fleet/ca.pem"        # relative paths are relative to the config file
//! tls_cert = "/etc/fleet/ops.pem"     # client identity: tls_cert and tls_key together
//! tls_key = "/etc/fleet/ops-key.pem"
//! output = "table"                    # table | json | csv
//! insecure = false                    # true allows a plaintext http:// collector
//! ```
//!
//! Precedence, highest first: command-line flags, the `FLEET_COLLECTOR` environment variable
//! (clap folds it into `--collector`), the file, the defaults. `insecure` is on if the flag or the
//! file turns it on.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tonic::transport::Uri;

use crate::cli::GlobalArgs;
use crate::output::OutputFormat;

/// The collector fleetctl talks to when nothing else says.
pub const DEFAULT_COLLECTOR: &str = "https://localhost:7443";

/// The config file's contents, as written: every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub collector: Option<String>,
    pub insecure: Option<bool>,
    pub output: Option<OutputFormat>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// The settings a command runs with, after merging and validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The collector URL, `https://` or (with `insecure`) `http://`.
    pub collector: String,
    pub output: OutputFormat,
    /// TLS files; `None` for a plaintext `http://` collector.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of a TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the collector's certificate.
    pub ca: PathBuf,
    /// The client identity (certificate, key), for collectors that ask for one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// A config that cannot be used. The message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type, or an unknown key (toml's message names the key and shows the line).
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("config file {}: {source}", path.display())]
    InFile {
        path: PathBuf,
        source: Box<ConfigError>,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Parses and validates a config file's text.
///
/// # Errors
///
/// [`ConfigError::Parse`] for bad TOML, a wrong type or an unknown key;
/// [`ConfigError::Invalid`] for a value that parses but cannot be used.
pub fn parse(text: &str) -> Result<FileConfig, ConfigError> {
    let config: FileConfig = toml::from_str(text)?;
    if let Some(url) = &config.collector {
        check_url("collector", url)?;
    }
    for (field, path) in [
        ("tls_ca", &config.tls_ca),
        ("tls_cert", &config.tls_cert),
        ("tls_key", &config.tls_key),
    ] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(invalid(field, "must not be empty"));
        }
    }
    check_identity_pair(config.tls_cert.is_some(), config.tls_key.is_some())?;
    Ok(config)
}

/// Reads and parses the config file at `path`. Relative TLS paths in it are taken relative to the
/// file's directory, so a config works from any working directory.
///
/// # Errors
///
/// [`ConfigError::Read`] if the file cannot be read, otherwise [`parse`]'s errors wrapped in
/// [`ConfigError::InFile`].
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut config = parse(&text).map_err(|e| ConfigError::InFile {
        path: path.to_owned(),
        source: Box::new(e),
    })?;
    let base = path.parent().unwrap_or(Path::new(""));
    for p in [
        &mut config.tls_ca,
        &mut config.tls_cert,
        &mut config.tls_key,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    Ok(config)
}

/// Merges flags (with the environment already folded in by clap) over the file over defaults,
/// and checks that the result can connect.
///
/// # Errors
///
/// [`ConfigError::Invalid`] for a malformed collector URL, `http://` without `insecure`,
/// `https://` without a CA, or half a client identity.
pub fn resolve(flags: &GlobalArgs, file: FileConfig) -> Result<Settings, ConfigError> {
    let output = output_format(flags, &file);
    let collector = flags
        .collector
        .clone()
        .or(file.collector)
        .unwrap_or_else(|| DEFAULT_COLLECTOR.to_owned());
    let insecure = flags.insecure || file.insecure.unwrap_or(false);
    let tls_ca = flags.tls_ca.clone().or(file.tls_ca);
    let tls_cert = flags.tls_cert.clone().or(file.tls_cert);
    let tls_key = flags.tls_key.clone().or(file.tls_key);

    let tls = match check_url("collector", &collector)? {
        Scheme::Http if !insecure => {
            return Err(invalid(
                "collector",
                format!("{collector}: plaintext http:// needs --insecure"),
            ));
        }
        // Plaintext by explicit choice: TLS files (say from a shared config) do not apply.
        Scheme::Http => None,
        Scheme::Https => {
            let ca = tls_ca.ok_or_else(|| {
                invalid(
                    "tls_ca",
                    format!(
                        "{collector} is https:// and needs --tls-ca FILE (or tls_ca in the \
                         config file): the PEM of the CA that signed the collector's certificate"
                    ),
                )
            })?;
            check_identity_pair(tls_cert.is_some(), tls_key.is_some())?;
            Some(TlsFiles {
                ca,
                identity: tls_cert.zip(tls_key),
            })
        }
    };
    Ok(Settings {
        collector,
        output,
        tls,
    })
}

/// The output format alone, flag over file over default: all that an offline command
/// (`rules check`) needs from the settings.
pub fn output_format(flags: &GlobalArgs, file: &FileConfig) -> OutputFormat {
    flags.output.or(file.output).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

fn check_url(field: &'static str, url: &str) -> Result<Scheme, ConfigError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| invalid(field, format!("`{url}` is not a URL: {e}")))?;
    let scheme = match uri.scheme_str() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        _ => {
            return Err(invalid(
                field,
                format!("`{url}` must start with https:// (or http:// with --insecure)"),
            ));
        }
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(field, format!("`{url}` has no host")));
    }
    Ok(scheme)
}

fn check_identity_pair(cert: bool, key: bool) -> Result<(), ConfigError> {
    match (cert, key) {
        (true, false) => Err(invalid("tls_key", "must be set together with tls_cert")),
        (false, true) => Err(invalid("tls_cert", "must be set together with tls_key")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> GlobalArgs {
        GlobalArgs::default()
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), FileConfig::default());
    }

    #[test]
    fn every_key() {
        let text = r#"
            collector = "https://collector.example.net:7443"
            insecure = false
            output = "json"
            tls_ca = "/etc/fleet/ca.pem"
            tls_cert = "/etc/fleet/ops.pem"
            tls_key = "/etc/fleet/ops-key.pem"
        "#;
        let config = parse(text).unwrap();
        assert_eq!(
            config,
            FileConfig {
                collector: Some("https://collector.example.net:7443".into()),
                insecure: Some(false),
                output: Some(OutputFormat::Json),
                tls_ca: Some("/etc/fleet/ca.pem".into()),
                tls_cert: Some("/etc/fleet/ops.pem".into()),
                tls_key: Some("/etc/fleet/ops-key.pem".into()),
            }
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("colector = \"https://x:1\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Parse(_)), "{err:?}");
        assert!(msg.contains("unknown field `colector`"), "{msg}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let msg = parse("output = \"yaml\"").unwrap_err().to_string();
        assert!(msg.contains("output") && msg.contains("yaml"), "{msg}");
        let msg = parse("insecure = \"yes\"").unwrap_err().to_string();
        assert!(msg.contains("insecure"), "{msg}");
        let msg = parse("collector = \"collector:7443\"")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("collector: "), "{msg}");
        let msg = parse("collector = \"ftp://collector:7443\"")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("collector: "), "{msg}");
        let msg = parse("collector = \"not a url\"").unwrap_err().to_string();
        assert!(msg.starts_with("collector: "), "{msg}");
        let msg = parse("tls_cert = \"c.pem\"").unwrap_err().to_string();
        assert_eq!(msg, "tls_key: must be set together with tls_cert");
        let msg = parse("tls_key = \"k.pem\"").unwrap_err().to_string();
        assert_eq!(msg, "tls_cert: must be set together with tls_key");
        let msg = parse("tls_ca = \"\"").unwrap_err().to_string();
        assert_eq!(msg, "tls_ca: must not be empty");
    }

    #[test]
    fn defaults_without_file_or_flags() {
        // The default is https://, which needs a CA.
        let err = resolve(&flags(), FileConfig::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("tls_ca: https://localhost:7443 is https://"),
            "{msg}"
        );
        let with_ca = GlobalArgs {
            tls_ca: Some("ca.pem".into()),
            ..flags()
        };
        let settings = resolve(&with_ca, FileConfig::default()).unwrap();
        assert_eq!(
            settings,
            Settings {
                collector: DEFAULT_COLLECTOR.into(),
                output: OutputFormat::Table,
                tls: Some(TlsFiles {
                    ca: "ca.pem".into(),
                    identity: None
                }),
            }
        );
    }

    #[test]
    fn flags_override_the_file() {
        let file = parse(
            r#"
            collector = "https://from-file:7443"
            output = "csv"
            tls_ca = "/file/ca.pem"
            tls_cert = "/file/c.pem"
            tls_key = "/file/k.pem"
            "#,
        )
        .unwrap();
        let settings = resolve(&flags(), file.clone()).unwrap();
        assert_eq!(settings.collector, "https://from-file:7443");
        assert_eq!(settings.output, OutputFormat::Csv);
        assert_eq!(
            settings.tls,
            Some(TlsFiles {
                ca: "/file/ca.pem".into(),
                identity: Some(("/file/c.pem".into(), "/file/k.pem".into())),
            })
        );

        let over = GlobalArgs {
            collector: Some("https://from-flag:9443".into()),
            output: Some(OutputFormat::Json),
            tls_ca: Some("/flag/ca.pem".into()),
            tls_cert: Some("/flag/c.pem".into()),
            tls_key: Some("/flag/k.pem".into()),
            ..flags()
        };
        let settings = resolve(&over, file).unwrap();
        assert_eq!(settings.collector, "https://from-flag:9443");
        assert_eq!(settings.output, OutputFormat::Json);
        assert_eq!(
            settings.tls,
            Some(TlsFiles {
                ca: "/flag/ca.pem".into(),
                identity: Some(("/flag/c.pem".into(), "/flag/k.pem".into())),
            })
        );
    }

    #[test]
    fn plaintext_needs_insecure_from_flag_or_file() {
        let http = GlobalArgs {
            collector: Some("http://127.0.0.1:7070".into()),
            ..flags()
        };
        let msg = resolve(&http, FileConfig::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "collector: http://127.0.0.1:7070: plaintext http:// needs --insecure"
        );

        let insecure_flag = GlobalArgs {
            insecure: true,
            ..http.clone()
        };
        let settings = resolve(&insecure_flag, FileConfig::default()).unwrap();
        assert_eq!(settings.collector, "http://127.0.0.1:7070");
        assert_eq!(settings.tls, None);

        let insecure_file = parse("insecure = true\ntls_ca = \"ca.pem\"").unwrap();
        let settings = resolve(&http, insecure_file).unwrap();
        assert_eq!(settings.tls, None, "TLS files do not apply to http://");
    }

    #[test]
    fn insecure_does_not_weaken_https() {
        let args = GlobalArgs {
            insecure: true,
            ..flags()
        };
        let msg = resolve(&args, FileConfig::default())
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("tls_ca: "), "{msg}");
    }

    #[test]
    fn half_an_identity_after_merging_is_an_error() {
        let args = GlobalArgs {
            tls_ca: Some("ca.pem".into()),
            tls_cert: Some("c.pem".into()),
            ..flags()
        };
        let msg = resolve(&args, FileConfig::default())
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "tls_key: must be set together with tls_cert");
        // The key may come from the file and the certificate from a flag.
        let file = parse("tls_cert = \"/f/c.pem\"\ntls_key = \"/f/k.pem\"").unwrap();
        let settings = resolve(&args, file).unwrap();
        assert_eq!(
            settings.tls.unwrap().identity,
            Some(("c.pem".into(), "/f/k.pem".into()))
        );
    }

    #[test]
    fn bad_flag_url_is_named() {
        let args = GlobalArgs {
            collector: Some("localhost:7443".into()),
            ..flags()
        };
        let msg = resolve(&args, FileConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("collector: `localhost:7443` must start with https://"),
            "{msg}"
        );
    }

    #[test]
    fn load_resolves_relative_paths_and_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("fleetctl.toml");
        std::fs::write(
            &path,
            "tls_ca = \"ca.pem\"\ntls_cert = \"/abs/c.pem\"\ntls_key = \"k.pem\"\n",
        )
        .unwrap();
        let config = load(&path).unwrap();
        assert_eq!(config.tls_ca, Some(dir.join("ca.pem")));
        assert_eq!(config.tls_cert, Some(PathBuf::from("/abs/c.pem")));
        assert_eq!(config.tls_key, Some(dir.join("k.pem")));

        std::fs::write(&path, "outptu = \"json\"\n").unwrap();
        let msg = load(&path).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("config file {}: ", path.display())),
            "{msg}"
        );
        assert!(msg.contains("unknown field `outptu`"), "{msg}");

        let missing = dir.join("missing.toml");
        let msg = load(&missing).unwrap_err().to_string();
        assert!(msg.starts_with("cannot read config file"), "{msg}");
    }
}
