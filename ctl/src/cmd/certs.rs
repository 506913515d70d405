//! `fleetctl certs init|issue`: makes the fleet's CA and certificates offline, with
//! [`crate::certs`] (which documents the files and the identity convention).
//!
//! ```text
//! fleetctl certs init  --dir DIR [--san NAME]... [--days N] [--ca-days N]
//! fleetctl certs issue --role agent|viewer|operator --name NAME --dir DIR [--days N | --not-after TIME]
//! ```
//!
//! Prints one line per file written (JSON: an array of [`Written`]), or an error naming what is
//! wrong (nothing is written then).

use std::path::PathBuf;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::{Context, Run};
use crate::certs::{self, FileKind, Written};
use crate::output::{show_time, OutputFormat};
use crate::Output;

/// `fleetctl certs`: see [`crate::certs`] for the files and the identity convention.
#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub command: CertsCommand,
}

/// What follows `fleetctl certs`.
#[derive(Debug, Clone, Subcommand)]
pub enum CertsCommand {
    /// Make the fleet's CA (DIR/ca.pem, DIR/ca-key.pem) and the collector's certificate
    /// (DIR/collector.pem, DIR/collector-key.pem); refuses to overwrite an existing CA
    Init(CertsInitArgs),
    /// Sign a client certificate with DIR's CA: DIR/NAME.pem and DIR/NAME-key.pem (subject CN
    /// NAME, OU the role)
    Issue(CertsIssueArgs),
}

/// `fleetctl certs init`.
#[derive(Debug, Clone, Args)]
pub struct CertsInitArgs {
    /// Directory for the files (made with mode 0700 if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Another name of the collector, besides localhost, 127.0.0.1 and ::1: an IP address or a
    /// DNS name (repeatable)
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    /// Days the collector's certificate is valid
    #[arg(long, value_name = "N", default_value_t = certs::DEFAULT_LEAF_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,
    /// Days the CA is valid
    #[arg(long, value_name = "N", default_value_t = certs::DEFAULT_CA_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub ca_days: u32,
}

/// `fleetctl certs issue`.
#[derive(Debug, Clone, Args)]
pub struct CertsIssueArgs {
    /// What the certificate may do: agent (stream one host's data), viewer (query), operator
    /// (query, change policies and rules)
    #[arg(long, value_enum, value_name = "ROLE")]
    pub role: certs::Role,
    /// The subject CN and file name; for an agent, its host id ([A-Za-z0-9._-], 1-128)
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Directory holding the CA (ca.pem, ca-key.pem); the new files are written there
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Days the certificate is valid (at most until the CA expires)
    #[arg(long, value_name = "N", default_value_t = certs::DEFAULT_LEAF_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,
    /// Exact end of validity instead of --days (RFC 3339); a past time makes an already expired
    /// certificate, for testing that it is refused
    #[arg(long, value_name = "TIME", conflicts_with = "days",
          value_parser = parse_rfc3339)]
    pub not_after: Option<DateTime<Utc>>,
}

/// A `--not-after` value: an RFC 3339 time.
fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time (2026-11-25T22:10:03Z): {e}"))
}

impl Run for CertsArgs {
    const OFFLINE: bool = true;

    async fn run(self, ctx: &Context) -> Result<Output> {
        let now = Utc::now();
        let mut notice = None;
        let written = match self.command {
            CertsCommand::Init(args) => certs::init(
                &args.dir,
                &args.sans,
                certs::Validity::days(now, args.ca_days)?,
                certs::Validity::days(now, args.days)?,
            )?,
            CertsCommand::Issue(args) => {
                let validity = match args.not_after {
                    Some(end) => certs::Validity::until(now, end),
                    None => certs::Validity::days(now, args.days)?,
                };
                if validity.expired_at(now) {
                    notice = Some(format!(
                        "warning: this certificate expired at {} (--not-after): every collector \
                         refuses it",
                        show_time(validity.not_after)
                    ));
                }
                certs::issue(&args.dir, args.role, &args.name, validity)?
            }
        };
        let stdout = match ctx.format {
            OutputFormat::Json => render_json(&written),
            OutputFormat::Table | OutputFormat::Csv => render_table(&written),
        };
        Ok(Output::print(stdout).with_notice(notice))
    }
}

/// The text `fleetctl certs` prints: one line per file.
pub fn render_table(files: &[Written]) -> String {
    let width = files
        .iter()
        .map(|f| f.path.display().to_string().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for f in files {
        let what = match (f.kind, f.role.as_str()) {
            (FileKind::Certificate, "ca") => format!("CA certificate CN={}, until", f.name),
            (FileKind::Key, "ca") => "CA key (mode 0600): keep it on this machine only".to_owned(),
            (FileKind::Certificate, role) => format!("{role} certificate CN={}, until", f.name),
            (FileKind::Key, _) => "its key (mode 0600)".to_owned(),
        };
        let mut line = format!("created {:width$}  {what}", f.path.display());
        if let Some(t) = &f.not_after {
            line.push(' ');
            line.push_str(t);
        }
        if !f.sans.is_empty() {
            line.push_str(", for ");
            line.push_str(&f.sans.join(", "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The JSON `fleetctl certs -o json` prints: an array of [`Written`].
pub fn render_json(files: &[Written]) -> String {
    let mut out = serde_json::to_string_pretty(files).unwrap_or_else(|_| "[]".to_owned());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::tests::init_dir;
    use crate::certs::{Role, Validity};
    use crate::cmd::testing::now;

    #[test]
    fn table_lines_name_each_file() {
        let (_tmp, dir) = init_dir();
        let written =
            certs::issue(&dir, Role::Agent, "h1", Validity::days(now(), 1).unwrap()).unwrap();
        let text = render_table(&written);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].ends_with("agent certificate CN=h1, until 2026-11-26T22:10:03Z"),
            "{text}"
        );
        assert!(
            lines[1].ends_with("h1-key.pem  its key (mode 0600)"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&written)).unwrap();
        assert_eq!(json[0]["kind"], "certificate");
        assert_eq!(json[0]["role"], "agent");
        assert_eq!(json[1]["kind"], "key");
    }
}
