//! The command line: [`Cli`], the global options every command takes, and the command
//! ([`crate::cmd::Command`], whose modules hold each command's own arguments).
//!
//! ```text
//! fleetctl [--collector URL] [--insecure] [-o table|json|csv] [--config FILE]
//!          [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] COMMAND
//! fleetctl hosts [--cluster C]
//! fleetctl sar -u|-r|-S|-W|-B|-b|-d|-q [CPU|IO|MEM]|-n DEV|EDEV [-P ALL]
//!              (--host H ... | --cluster C) [--since T] [--until T]
//! fleetctl top-oom [--cluster C] [--host H]... [--limit N]
//! fleetctl oom [--cluster C] [--host H]... [--since T] [--until T] [--limit N]
//! fleetctl oom show ID [--before DUR]
//! fleetctl ntp [--cluster C] [--host H]...
//! fleetctl alerts [--cluster C] [--state pending|firing|resolved]
//! fleetctl status
//! fleetctl rules check FILE
//! fleetctl certs init --dir DIR [--san NAME]... [--org NAME] [--days N] [--ca-days N]
//! fleetctl certs issue --role agent|viewer|operator --name NAME [--cluster C] --dir DIR
//!                      [--days N|--not-after T] [--ensure]
//! fleetctl certs revoke --dir DIR [NAME]...
//! fleetctl policy apply -f FILE [--cluster C] [--dry-run] [--force]
//! fleetctl policy list [--cluster C]
//! fleetctl policy status|history|rollback|delete NAME
//! ```
//!
//! The global options are `global = true`, so they may also follow the command
//! (`fleetctl hosts -o json`).
//!
//! Everything clap can check is checked when parsing: exactly one sar activity, `-P ALL` only
//! with `-u`, at least one of `--host`/`--cluster`, and well-formed `--since`/`--until`;
//! `--limit` in the collector's range, a positive `--before`, no listing options beside
//! `oom show`, and a known `--state`. Such mistakes exit with status 2 and a usage message before
//! anything is contacted.

use std::path::PathBuf;

use clap::{Args, Parser};

use crate::cmd::Command;
use crate::output::OutputFormat;

/// `fleetctl`: query a Fleet collector.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "fleetctl",
    version,
    about = "Query a Fleet collector and change its OOM policies",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. Each one left unset here falls back to the config file, then to
/// the built-in default (see [`crate::config::resolve`]).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Collector URL: https://HOST:PORT, or http://HOST:PORT with --insecure
    /// [default: https://localhost:7443]
    #[arg(long, global = true, env = "FLEET_COLLECTOR", value_name = "URL")]
    pub collector: Option<String>,

    /// Allow a plaintext http:// collector URL (no TLS at all)
    #[arg(long, global = true)]
    pub insecure: bool,

    /// Output format [default: table]
    #[arg(short = 'o', long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// TOML config file (keys: collector, insecure, output, tls_ca, tls_cert, tls_key)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// PEM file of the CA that signed the collector's certificate (needed for https://)
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate, for collectors that require a client identity (with --tls-key)
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    use super::*;
    use crate::cmd::testing::parse;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_before_or_after_the_command() {
        let cli = parse(&["--insecure", "-o", "json", "hosts", "--cluster", "prod"]).unwrap();
        assert!(cli.global.insecure);
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
        let cli = parse(&["hosts", "--output", "csv", "--config", "/etc/fleetctl.toml"]).unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Csv));
        assert_eq!(cli.global.config, Some(PathBuf::from("/etc/fleetctl.toml")));
        let cli = parse(&[
            "sar", "-u", "--host", "a", "-o", "json", "--tls-ca", "ca.pem",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
        assert_eq!(cli.global.tls_ca, Some(PathBuf::from("ca.pem")));
        let cli = parse(&["--collector", "http://127.0.0.1:7070", "hosts"]).unwrap();
        assert_eq!(
            cli.global.collector.as_deref(),
            Some("http://127.0.0.1:7070")
        );
        assert_eq!(
            parse(&["-o", "yaml", "hosts"]).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn a_command_is_required() {
        let err = parse(&[]).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
            "{err}"
        );
    }
}
