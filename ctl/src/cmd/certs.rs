//! `fleetctl certs init|issue|revoke`: makes the fleet's CA, certificates and revocation list
//! offline, with [`crate::certs`] (which documents the files and the identity convention).
//!
//! ```text
//! fleetctl certs init   --dir DIR [--san NAME]... [--org NAME] [--days N] [--ca-days N]
//! fleetctl certs issue  --role agent|viewer|operator --name NAME [--cluster CLUSTER] --dir DIR
//!                       [--days N | --not-after TIME] [--ensure]
//! fleetctl certs revoke --dir DIR [NAME]...
//! ```
//!
//! Prints one line per file written (JSON: an array of [`Written`]), or an error naming what is
//! wrong (nothing is written then). `issue --ensure` prints nothing when it keeps the
//! certificate (it says so on stderr), so "created" in its output means something changed.

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
    /// NAME, OU the role, O the CA's; an agent's bound to its --cluster)
    Issue(CertsIssueArgs),
    /// Revoke the certificates DIR/NAME.pem in DIR/crl.pem, signed by DIR's CA (the collector's
    /// tls_crl); with no NAME, write the list as it is (empty the first time)
    Revoke(CertsRevokeArgs),
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
    /// The organisation (subject O) of the CA and of every certificate it issues; a collector
    /// with tls_org admits that O only
    #[arg(long, value_name = "NAME", default_value = certs::DEFAULT_ORGANIZATION)]
    pub org: String,
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
    /// For an agent: the one cluster it may join (its `cluster` setting). Without it the
    /// certificate is unbound, which collectors refuse unless allow_unbound_cluster = true
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,
    /// Keep DIR/NAME.pem when it already is this CA's certificate for this role, cluster and O
    /// and has not expired (print nothing); otherwise move it and its key to NAME.pem.old and
    /// NAME-key.pem.old and issue it anew
    #[arg(long)]
    pub ensure: bool,
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

/// `fleetctl certs revoke`.
#[derive(Debug, Clone, Args)]
pub struct CertsRevokeArgs {
    /// Directory holding the CA (ca.pem, ca-key.pem), the certificates and crl.pem
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The certificates to revoke: DIR/NAME.pem
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
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
                &args.org,
                certs::Validity::days(now, args.ca_days)?,
                certs::Validity::days(now, args.days)?,
            )?,
            CertsCommand::Issue(args) => {
                let validity = match args.not_after {
                    Some(end) => certs::Validity::until(now, end),
                    None => certs::Validity::days(now, args.days)?,
                };
                let mut notices = Vec::new();
                if validity.expired_at(now) {
                    notices.push(format!(
                        "warning: this certificate expired at {} (--not-after): every collector \
                         refuses it",
                        show_time(validity.not_after)
                    ));
                }
                if args.role == certs::Role::Agent && args.cluster.is_none() {
                    notices.push(
                        "warning: no --cluster: this agent certificate is bound to no cluster, \
                         which collectors refuse unless allow_unbound_cluster = true"
                            .to_owned(),
                    );
                }
                let leaf = certs::Leaf {
                    role: args.role,
                    name: &args.name,
                    cluster: args.cluster.as_deref(),
                };
                let written = if args.ensure {
                    match certs::ensure(&args.dir, &leaf, validity, now)? {
                        certs::Ensured::Kept(path) => {
                            notices = vec![format!(
                                "kept {}: it already is this certificate",
                                path.display()
                            )];
                            Vec::new()
                        }
                        certs::Ensured::Issued { written, replaced } => {
                            if let Some(why) = replaced {
                                notices.push(format!(
                                    "replaced the certificate {} was ({why}); the old pair is \
                                     {name}.pem.old and {name}-key.pem.old",
                                    args.name,
                                    name = args.name
                                ));
                            }
                            written
                        }
                    }
                } else {
                    certs::issue(&args.dir, &leaf, validity)?
                };
                notice = (!notices.is_empty()).then(|| notices.join("\n"));
                written
            }
            CertsCommand::Revoke(args) => certs::revoke(&args.dir, &args.names, now)?,
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
        let what = match (f.kind, f.role.as_str(), &f.cluster) {
            (FileKind::Certificate, "ca", _) => format!("CA certificate CN={}, until", f.name),
            (FileKind::Key, "ca", _) => {
                "CA key (mode 0600): keep it on this machine only".to_owned()
            }
            (FileKind::Certificate, role, None) => {
                format!("{role} certificate CN={}, until", f.name)
            }
            (FileKind::Certificate, role, Some(cluster)) => {
                format!(
                    "{role} certificate CN={} for cluster {cluster}, until",
                    f.name
                )
            }
            (FileKind::Key, _, _) => "its key (mode 0600)".to_owned(),
            (FileKind::Crl, _, _) => {
                let r = f.revoked.clone().unwrap_or(certs::Revoked {
                    added: Vec::new(),
                    total: 0,
                });
                let added = match r.added.as_slice() {
                    [] => String::new(),
                    names => format!(" (now {})", names.join(", ")),
                };
                format!(
                    "revocation list of {}: {} certificates revoked{added}; next update",
                    f.name, r.total
                )
            }
        };
        let verb = match f.kind {
            FileKind::Crl => "wrote",
            _ => "created",
        };
        let mut line = format!("{verb} {:width$}  {what}", f.path.display());
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
    use crate::certs::tests::{init_dir, leaf};
    use crate::certs::{Leaf, Role, Validity};
    use crate::cmd::testing::now;

    #[test]
    fn table_lines_name_each_file() {
        let (_tmp, dir) = init_dir();
        let written = certs::issue(
            &dir,
            &leaf(Role::Agent, "h1"),
            Validity::days(now(), 1).unwrap(),
        )
        .unwrap();
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
        assert!(json[0].get("cluster").is_none());

        let bound = Leaf {
            role: Role::Agent,
            name: "h2",
            cluster: Some("prod"),
        };
        let written = certs::issue(&dir, &bound, Validity::days(now(), 1).unwrap()).unwrap();
        let text = render_table(&written);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .ends_with("agent certificate CN=h2 for cluster prod, until 2026-11-26T22:10:03Z"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&written)).unwrap();
        assert_eq!(json[0]["cluster"], "prod");

        let written = certs::revoke(&dir, &["h1".into()], now()).unwrap();
        let text = render_table(&written);
        assert!(text.starts_with("wrote "), "{text}");
        assert!(
            text.trim_end()
                .ends_with(": 1 certificates revoked (now h1); next update 2027-11-25T22:10:03Z"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&written)).unwrap();
        assert_eq!(json[0]["kind"], "crl");
        assert_eq!(json[0]["revoked"]["added"][0], "h1");
        assert_eq!(json[0]["revoked"]["total"], 1);
    }
}
