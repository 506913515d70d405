//! The command line, as clap derive types.
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
//! fleetctl certs init --dir DIR [--san NAME]... [--days N] [--ca-days N]
//! fleetctl certs issue --role agent|viewer|operator --name NAME --dir DIR [--days N|--not-after T]
//! fleetctl policy apply -f FILE [--cluster C] [--dry-run] [--force]
//! fleetctl policy list [--cluster C]
//! fleetctl policy status|history|rollback|delete NAME
//! ```
//!
//! The global options are `global = true`, so they may also follow the command
//! (`fleetctl hosts -o json`). A new command is one more [`Command`] variant with its own `Args`
//! struct and one more arm in `crate::execute`.
//!
//! Everything clap can check is checked here: exactly one sar activity (an [`ArgGroup`]), `-P ALL`
//! only with `-u`, at least one of `--host`/`--cluster`, and well-formed `--since`/`--until`;
//! `--limit` in the collector's range, a positive `--before`, no listing options beside
//! `oom show`, and a known `--state`. Such mistakes exit with status 2 and a usage message before anything is contacted.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use fleet_proto::v1::Activity;

use crate::render::OutputFormat;
use crate::timearg::TimeArg;

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

/// The commands. A new one is a variant here and an arm in `crate::execute`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List the hosts the collector knows
    Hosts(HostsArgs),
    /// Show sar activity of one or more hosts, like sysstat's sar
    Sar(SarArgs),
    /// The processes the OOM killer would pick next, across hosts (highest oom_score first)
    TopOom(TopOomArgs),
    /// List OOM kills, newest first; `oom show ID` shows one in full with its evidence
    Oom(OomArgs),
    /// Each host's time sources (NTP offset, delay, stratum) and its offset from the collector's
    /// clock; the table adds each cluster's offset spread
    Ntp(NtpArgs),
    /// Alerts raised by the collector's rules: firing, pending and resolved
    Alerts(AlertsArgs),
    /// The collector itself: connected agents, transport, refused connections and calls
    Status,
    /// Work with alert rules files (offline: no collector is contacted)
    Rules(RulesArgs),
    /// Make the fleet's CA and certificates for the collector, agents, viewers and operators
    /// (offline: no collector is contacted)
    Certs(CertsArgs),
    /// OOM policies: set oom_score_adj of matching processes on the targeted hosts; every change
    /// is a new version, recorded with who made it
    Policy(PolicyArgs),
}

/// The help text on `--since`/`--until` values.
const TIME_HELP: &str = "TIME is a duration back from now (30s, 10m, 2h, 1d, 1h30m), `now`, or an \
                         RFC 3339 time (2026-11-25T22:10:03Z). Times are shown in UTC.";

/// `fleetctl hosts`.
#[derive(Debug, Clone, Default, Args)]
pub struct HostsArgs {
    /// Only hosts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
}

/// `fleetctl sar`: one activity per call, chosen by sar's own option letters.
#[derive(Debug, Clone, Default, Args)]
#[command(
    next_help_heading = "Activity (exactly one)",
    group(
        ArgGroup::new("activity")
            .required(true)
            .multiple(false)
            .args(["cpu", "memory", "swap", "swapping", "paging", "io", "disk", "queue", "network"])
    ),
    group(ArgGroup::new("target").required(true).multiple(true).args(["hosts", "cluster"])),
    after_help = TIME_HELP
)]
pub struct SarArgs {
    /// CPU utilization (instance "all"; every CPU with -P ALL)
    #[arg(short = 'u')]
    pub cpu: bool,
    /// Memory utilization
    #[arg(short = 'r')]
    pub memory: bool,
    /// Swap space utilization
    #[arg(short = 'S')]
    pub swap: bool,
    /// Swapping statistics
    #[arg(short = 'W')]
    pub swapping: bool,
    /// Paging statistics
    #[arg(short = 'B')]
    pub paging: bool,
    /// I/O and transfer rate statistics
    #[arg(short = 'b')]
    pub io: bool,
    /// Block device activity
    #[arg(short = 'd')]
    pub disk: bool,
    /// Queue length and load averages; with CPU, IO or MEM: pressure-stall statistics
    #[arg(short = 'q', value_enum, value_name = "CPU|IO|MEM", ignore_case = true)]
    pub queue: Option<Option<Pressure>>,
    /// Network interface statistics (DEV) or errors (EDEV)
    #[arg(short = 'n', value_enum, value_name = "DEV|EDEV", ignore_case = true)]
    pub network: Option<Network>,
    /// With -u: every CPU, not only "all"
    #[arg(
        short = 'P',
        value_enum,
        value_name = "ALL",
        ignore_case = true,
        // Not `requires = "cpu"`: a bool flag's default `false` already satisfies `requires`.
        conflicts_with_all = ["memory", "swap", "swapping", "paging", "io", "disk", "queue", "network"]
    )]
    pub per_cpu: Option<AllCpus>,

    /// Host id or hostname (repeatable)
    #[arg(long = "host", value_name = "H", help_heading = "Hosts and time")]
    pub hosts: Vec<String>,
    /// Cluster (with --host: hosts of that cluster only)
    #[arg(long, value_name = "C", help_heading = "Hosts and time")]
    pub cluster: Option<String>,
    /// Start of the time range [default: 10m]
    #[arg(long, value_name = "TIME", help_heading = "Hosts and time")]
    pub since: Option<TimeArg>,
    /// End of the time range [default: now]
    #[arg(long, value_name = "TIME", help_heading = "Hosts and time")]
    pub until: Option<TimeArg>,
}

/// `fleetctl top-oom`: the latest ranking of each selected host, merged.
#[derive(Debug, Clone, Args)]
pub struct TopOomArgs {
    /// Host id or hostname (repeatable) [default: every host]
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Only hosts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// How many processes to show, over all hosts
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        // The collector's own cap (collector/src/server.rs `top_oom`).
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub limit: u32,
}

/// `fleetctl oom`: the kills in a time range, or with `show ID` one kill in full.
///
/// The listing options belong to the listing: `fleetctl oom --since 1h show ID` is a usage error
/// rather than options silently ignored.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = TIME_HELP)]
pub struct OomArgs {
    #[command(subcommand)]
    pub command: Option<OomCommand>,

    /// Host id or hostname (repeatable) [default: every host]
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Only hosts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// Start of the time range [default: 24h]
    #[arg(long, value_name = "TIME")]
    pub since: Option<TimeArg>,
    /// End of the time range [default: now]
    #[arg(long, value_name = "TIME")]
    pub until: Option<TimeArg>,
    /// At most this many kills, the newest
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        // The collector's own cap (collector/src/server.rs `list_oom_kills`).
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub limit: u32,
}

/// What follows `fleetctl oom`.
#[derive(Debug, Clone, Subcommand)]
pub enum OomCommand {
    /// One kill in full: the report, its task table, and the host's memory, swap and paging
    /// samples and top-oom ranking before it
    Show(OomShowArgs),
}

/// `fleetctl oom show ID`.
#[derive(Debug, Clone, Args)]
pub struct OomShowArgs {
    /// The kill's id, as `fleetctl oom` lists it
    #[arg(value_name = "ID")]
    pub id: String,
    /// How far before the kill the sar samples reach (30s, 10m, 1h)
    #[arg(long, value_name = "DUR", default_value = "10m", value_parser = parse_before)]
    pub before: Duration,
}

/// `fleetctl ntp`: the latest clock status of each selected host.
#[derive(Debug, Clone, Default, Args)]
pub struct NtpArgs {
    /// Only hosts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// Host id or hostname (repeatable) [default: every host]
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
}

/// `fleetctl alerts`.
#[derive(Debug, Clone, Default, Args)]
pub struct AlertsArgs {
    /// Only alerts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// Only alerts in this state [default: every state]
    #[arg(long, value_enum, value_name = "STATE")]
    pub state: Option<AlertState>,
}

/// The state of an alert, as the collector's rules move it: pending (the condition holds, not yet
/// for the rule's `for`), firing, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    /// The state as `AlertQuery.state` and `Alert.state` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// `fleetctl rules`.
#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

/// What follows `fleetctl rules`.
#[derive(Debug, Clone, Subcommand)]
pub enum RulesCommand {
    /// Check a rules file as the collector's `--rules` would load it, and list its rules; exits 1
    /// with the rule and field at fault when it does not validate
    Check(RulesCheckArgs),
}

/// `fleetctl rules check FILE`.
#[derive(Debug, Clone, Args)]
pub struct RulesCheckArgs {
    /// The rules file (TOML, `[[rule]]` tables)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

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
    #[arg(long, value_name = "N", default_value_t = crate::certs::DEFAULT_LEAF_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,
    /// Days the CA is valid
    #[arg(long, value_name = "N", default_value_t = crate::certs::DEFAULT_CA_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub ca_days: u32,
}

/// `fleetctl certs issue`.
#[derive(Debug, Clone, Args)]
pub struct CertsIssueArgs {
    /// What the certificate may do: agent (stream one host's data), viewer (query), operator
    /// (query, change policies and rules)
    #[arg(long, value_enum, value_name = "ROLE")]
    pub role: crate::certs::Role,
    /// The subject CN and file name; for an agent, its host id ([A-Za-z0-9._-], 1-128)
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Directory holding the CA (ca.pem, ca-key.pem); the new files are written there
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Days the certificate is valid (at most until the CA expires)
    #[arg(long, value_name = "N", default_value_t = crate::certs::DEFAULT_LEAF_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,
    /// Exact end of validity instead of --days (RFC 3339); a past time makes an already expired
    /// certificate, for testing that it is refused
    #[arg(long, value_name = "TIME", conflicts_with = "days",
          value_parser = parse_rfc3339)]
    pub not_after: Option<chrono::DateTime<chrono::Utc>>,
}

/// A `--not-after` value: an RFC 3339 time.
fn parse_rfc3339(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 time (2026-11-25T22:10:03Z): {e}"))
}

/// `fleetctl policy`.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// What follows `fleetctl policy`.
#[derive(Debug, Clone, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file here, then store it as the policy's next version and push it to the
    /// hosts it targets; with --dry-run only show what would change. Exits 1 when the safety
    /// checks refuse it
    Apply(PolicyApplyArgs),
    /// The current version of every policy
    List(PolicyListArgs),
    /// Where a policy stands on each host: enforced, pending, outdated, removed; with the
    /// failures and the processes it holds
    Status(PolicyNameArgs),
    /// Every version of a policy, oldest first, with who made it
    History(PolicyNameArgs),
    /// Store the version before the current one again, as a new version
    Rollback(PolicyNameArgs),
    /// Stop enforcing a policy: the agents give its processes back their original values
    Delete(PolicyNameArgs),
}

/// `fleetctl policy apply -f FILE`.
#[derive(Debug, Clone, Args)]
pub struct PolicyApplyArgs {
    /// The policy document: YAML, or TOML for a .toml file
    #[arg(short = 'f', long = "file", value_name = "FILE", required = true)]
    pub file: PathBuf,
    /// Apply to this cluster, in place of the document's target.cluster
    #[arg(long, value_name = "C", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub cluster: Option<String>,
    /// Show what would change on each host, and any refusal; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even when the safety checks refuse the policy
    #[arg(long)]
    pub force: bool,
}

/// `fleetctl policy list`.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyListArgs {
    /// Only policies that target this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
}

/// `fleetctl policy status|history|rollback|delete NAME`.
#[derive(Debug, Clone, Args)]
pub struct PolicyNameArgs {
    /// The policy's name, as in its document and `fleetctl policy list`
    #[arg(value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub name: String,
}

/// A `--before` value: a positive humantime duration that fits the wire's milliseconds.
fn parse_before(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration (30s, 10m, 1h): {e}"))?;
    if d.as_millis() == 0 {
        return Err("must be at least 1ms".to_owned());
    }
    if i64::try_from(d.as_millis()).is_err() {
        return Err(format!("`{s}` is too long"));
    }
    Ok(d)
}

/// The argument of `-q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pressure {
    #[value(name = "CPU")]
    Cpu,
    #[value(name = "IO")]
    Io,
    #[value(name = "MEM")]
    Mem,
}

/// The argument of `-n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Network {
    #[value(name = "DEV")]
    Dev,
    #[value(name = "EDEV")]
    Edev,
}

/// The argument of `-P` (sar also takes CPU lists; Fleet shows all or "all").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllCpus {
    #[value(name = "ALL")]
    All,
}

/// A [`SarArgs`] that names no activity, or several. Clap rules this out for parsed arguments;
/// it can only come from a `SarArgs` built in code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivityChoiceError {
    #[error("no activity chosen: pass one of -u -r -S -W -B -b -d -q [CPU|IO|MEM] -n DEV|EDEV")]
    None,
    #[error("several activities chosen ({0}): fleetctl sar shows one per call")]
    Several(String),
}

impl SarArgs {
    /// The one activity these arguments choose.
    ///
    /// # Errors
    ///
    /// [`ActivityChoiceError`] if none or several are chosen.
    pub fn activity(&self) -> Result<Activity, ActivityChoiceError> {
        let queue = self.queue.map(|q| match q {
            None => ("-q", Activity::Load),
            Some(Pressure::Cpu) => ("-q CPU", Activity::PsiCpu),
            Some(Pressure::Io) => ("-q IO", Activity::PsiIo),
            Some(Pressure::Mem) => ("-q MEM", Activity::PsiMem),
        });
        let network = self.network.map(|n| match n {
            Network::Dev => ("-n DEV", Activity::NetDev),
            Network::Edev => ("-n EDEV", Activity::NetEdev),
        });
        let chosen: Vec<(&str, Activity)> = [
            self.cpu.then_some(("-u", Activity::Cpu)),
            self.memory.then_some(("-r", Activity::Memory)),
            self.swap.then_some(("-S", Activity::Swap)),
            self.swapping.then_some(("-W", Activity::Swapping)),
            self.paging.then_some(("-B", Activity::Paging)),
            self.io.then_some(("-b", Activity::Io)),
            self.disk.then_some(("-d", Activity::Disk)),
            queue,
            network,
        ]
        .into_iter()
        .flatten()
        .collect();
        match chosen.as_slice() {
            [] => Err(ActivityChoiceError::None),
            [(_, activity)] => Ok(*activity),
            several => Err(ActivityChoiceError::Several(
                several
                    .iter()
                    .map(|(flag, _)| *flag)
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// Whether every CPU is shown (`-P ALL`) rather than only the "all" line.
    pub fn all_cpus(&self) -> bool {
        self.per_cpu.is_some()
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fleetctl").chain(args.iter().copied()))
    }

    fn sar(args: &[&str]) -> SarArgs {
        let mut all = vec!["sar"];
        all.extend_from_slice(args);
        match parse(&all)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            Command::Sar(sar) => sar,
            other => panic!("not sar: {other:?}"),
        }
    }

    fn sar_error(args: &[&str]) -> clap::Error {
        let mut all = vec!["sar"];
        all.extend_from_slice(args);
        parse(&all).expect_err("should not parse")
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn each_sar_flag_chooses_its_activity() {
        let cases: &[(&[&str], Activity)] = &[
            (&["-u"], Activity::Cpu),
            (&["-r"], Activity::Memory),
            (&["-S"], Activity::Swap),
            (&["-W"], Activity::Swapping),
            (&["-B"], Activity::Paging),
            (&["-b"], Activity::Io),
            (&["-d"], Activity::Disk),
            (&["-q"], Activity::Load),
            (&["-q", "CPU"], Activity::PsiCpu),
            (&["-q", "IO"], Activity::PsiIo),
            (&["-q", "MEM"], Activity::PsiMem),
            (&["-q", "mem"], Activity::PsiMem),
            (&["-n", "DEV"], Activity::NetDev),
            (&["-n", "EDEV"], Activity::NetEdev),
        ];
        for (flags, want) in cases {
            let mut args = flags.to_vec();
            args.extend(["--host", "web-1"]);
            assert_eq!(sar(&args).activity(), Ok(*want), "{flags:?}");
            // The activity flag may also come after the target.
            let mut args = vec!["--host", "web-1"];
            args.extend_from_slice(flags);
            assert_eq!(sar(&args).activity(), Ok(*want), "{flags:?} last");
        }
    }

    #[test]
    fn bare_q_before_another_option_is_load() {
        let args = sar(&["-q", "--cluster", "prod"]);
        assert_eq!(args.activity(), Ok(Activity::Load));
        assert_eq!(args.cluster.as_deref(), Some("prod"));
    }

    #[test]
    fn cpu_alone_or_every_cpu() {
        let args = sar(&["-u", "--host", "a"]);
        assert!(!args.all_cpus());
        let args = sar(&["-u", "-P", "ALL", "--host", "a"]);
        assert!(args.all_cpus());
        assert_eq!(args.activity(), Ok(Activity::Cpu));
    }

    #[test]
    fn per_cpu_needs_dash_u() {
        let err = sar_error(&["-r", "-P", "ALL", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict, "{err}");
        let err = sar_error(&["-n", "DEV", "-P", "ALL", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict, "{err}");
        // Unlike sysstat's sar, -P ALL alone does not imply -u: one explicit activity per call.
        let err = sar_error(&["-P", "ALL", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        let err = sar_error(&["-u", "-P", "3", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
    }

    #[test]
    fn no_activity_is_an_error() {
        let err = sar_error(&["--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        assert!(err.to_string().contains("-u"), "{err}");
    }

    #[test]
    fn several_activities_are_an_error() {
        for flags in [
            &["-u", "-r"][..],
            &["-q", "-n", "DEV"],
            &["-q", "CPU", "-d"],
            &["-b", "-B"],
        ] {
            let mut args = flags.to_vec();
            args.extend(["--host", "a"]);
            let err = sar_error(&args);
            assert_eq!(err.kind(), ErrorKind::ArgumentConflict, "{flags:?}: {err}");
        }
    }

    #[test]
    fn bad_activity_values_are_errors() {
        assert_eq!(
            sar_error(&["-n", "IP", "--host", "a"]).kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            sar_error(&["-q", "NET", "--host", "a"]).kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            sar_error(&["-n", "--host", "a"]).kind(),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn activity_choice_checked_in_code_too() {
        assert_eq!(
            SarArgs::default().activity(),
            Err(ActivityChoiceError::None)
        );
        let several = SarArgs {
            cpu: true,
            queue: Some(Some(Pressure::Io)),
            ..SarArgs::default()
        };
        let err = several.activity().unwrap_err();
        assert_eq!(err, ActivityChoiceError::Several("-u, -q IO".into()));
        assert!(err.to_string().contains("one per call"));
    }

    #[test]
    fn sar_needs_a_host_or_a_cluster() {
        let err = sar_error(&["-u"]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        let args = sar(&["-u", "--host", "a", "--host", "b", "--cluster", "prod"]);
        assert_eq!(args.hosts, ["a", "b"]);
        assert_eq!(args.cluster.as_deref(), Some("prod"));
    }

    #[test]
    fn sar_time_range() {
        let args = sar(&[
            "-u",
            "--host",
            "a",
            "--since",
            "2h",
            "--until",
            "2026-11-25T22:10:03Z",
        ]);
        assert_eq!(
            args.since,
            Some(TimeArg::Ago(std::time::Duration::from_secs(7200)))
        );
        assert!(matches!(args.until, Some(TimeArg::At(_))));
        let err = sar_error(&["-u", "--host", "a", "--since", "yesterday"]);
        assert_eq!(err.kind(), ErrorKind::ValueValidation, "{err}");
        assert!(err.to_string().contains("yesterday"), "{err}");
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

    fn top_oom(args: &[&str]) -> TopOomArgs {
        let mut all = vec!["top-oom"];
        all.extend_from_slice(args);
        match parse(&all)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            Command::TopOom(args) => args,
            other => panic!("not top-oom: {other:?}"),
        }
    }

    fn oom(args: &[&str]) -> OomArgs {
        let mut all = vec!["oom"];
        all.extend_from_slice(args);
        match parse(&all)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            Command::Oom(args) => args,
            other => panic!("not oom: {other:?}"),
        }
    }

    #[test]
    fn top_oom_defaults_to_every_host_and_ten() {
        let args = top_oom(&[]);
        assert!(args.hosts.is_empty());
        assert_eq!(args.cluster, None);
        assert_eq!(args.limit, 10);
        let args = top_oom(&[
            "--host",
            "web-1",
            "--host",
            "a1",
            "--cluster",
            "prod",
            "--limit",
            "3",
        ]);
        assert_eq!(args.hosts, ["web-1", "a1"]);
        assert_eq!(args.cluster.as_deref(), Some("prod"));
        assert_eq!(args.limit, 3);
        for bad in ["0", "-1", "10001", "many"] {
            let err = parse(&["top-oom", "--limit", bad]).unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::ValueValidation | ErrorKind::UnknownArgument
                ),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn oom_lists_by_default() {
        let args = oom(&[]);
        assert!(args.command.is_none());
        assert!(args.hosts.is_empty());
        assert_eq!(args.since, None);
        assert_eq!(args.until, None);
        assert_eq!(args.limit, 1000);
        let args = oom(&[
            "--cluster",
            "prod",
            "--host",
            "db-1",
            "--since",
            "2d",
            "--until",
            "1h",
            "--limit",
            "5",
        ]);
        assert_eq!(args.cluster.as_deref(), Some("prod"));
        assert_eq!(args.hosts, ["db-1"]);
        assert_eq!(
            args.since,
            Some(TimeArg::Ago(Duration::from_secs(2 * 86_400)))
        );
        assert_eq!(args.until, Some(TimeArg::Ago(Duration::from_secs(3600))));
        assert_eq!(args.limit, 5);
        let err = parse(&["oom", "--since", "yesterday"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation, "{err}");
        let err = parse(&["oom", "--limit", "0"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation, "{err}");
    }

    #[test]
    fn oom_show_takes_an_id_and_a_window() {
        let show = |args: &[&str]| match oom(args).command {
            Some(OomCommand::Show(show)) => show,
            None => panic!("not oom show: {args:?}"),
        };
        let args = show(&["show", "1-19abc2e5d18-0"]);
        assert_eq!(args.id, "1-19abc2e5d18-0");
        assert_eq!(args.before, Duration::from_secs(600));
        let args = show(&["show", "--before", "1h30m", "x"]);
        assert_eq!(args.id, "x");
        assert_eq!(args.before, Duration::from_secs(5400));
        // Global options still go anywhere.
        let cli = parse(&["oom", "show", "x", "-o", "json"]).unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));

        let err = parse(&["oom", "show"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        for bad in ["0s", "soon", "-5m"] {
            let err = parse(&["oom", "show", "x", "--before", bad]).unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::ValueValidation | ErrorKind::UnknownArgument
                ),
                "{bad}: {err}"
            );
        }
        // Listing options do not apply to one kill: an error, not silently ignored.
        let err = parse(&["oom", "--since", "1h", "show", "x"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict, "{err}");
        let err = parse(&["oom", "show", "x", "--host", "a"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
    }

    #[test]
    fn ntp_takes_a_cluster_and_hosts() {
        let Command::Ntp(args) = parse(&["ntp"]).unwrap().command else {
            panic!("not ntp");
        };
        assert_eq!(args.cluster, None);
        assert!(args.hosts.is_empty());
        let cli = parse(&[
            "ntp",
            "--cluster",
            "prod",
            "--host",
            "web1",
            "--host",
            "a1",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
        let Command::Ntp(args) = cli.command else {
            panic!("not ntp");
        };
        assert_eq!(args.cluster.as_deref(), Some("prod"));
        assert_eq!(args.hosts, ["web1", "a1"]);
        let err = parse(&["ntp", "--since", "1h"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
    }

    #[test]
    fn alerts_state_is_one_of_three() {
        let alerts = |args: &[&str]| {
            let mut all = vec!["alerts"];
            all.extend_from_slice(args);
            match parse(&all)
                .unwrap_or_else(|e| panic!("{args:?}: {e}"))
                .command
            {
                Command::Alerts(args) => args,
                other => panic!("not alerts: {other:?}"),
            }
        };
        let args = alerts(&[]);
        assert_eq!((args.cluster, args.state), (None, None));
        for (text, state) in [
            ("pending", AlertState::Pending),
            ("firing", AlertState::Firing),
            ("resolved", AlertState::Resolved),
        ] {
            let args = alerts(&["--state", text, "--cluster", "prod"]);
            assert_eq!(args.state, Some(state));
            assert_eq!(state.as_str(), text);
            assert_eq!(args.cluster.as_deref(), Some("prod"));
        }
        let err = parse(&["alerts", "--state", "active"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("[possible values: pending, firing, resolved]"),
            "{text}"
        );
    }

    #[test]
    fn rules_check_takes_one_file() {
        let cli = parse(&["rules", "check", "deploy/rules.toml", "-o", "json"]).unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));
        let Command::Rules(RulesArgs {
            command: RulesCommand::Check(check),
        }) = cli.command
        else {
            panic!("not rules check");
        };
        assert_eq!(check.file, PathBuf::from("deploy/rules.toml"));
        let err = parse(&["rules", "check"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        let err = parse(&["rules"]).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
            "{err}"
        );
        let err = parse(&["rules", "check", "a.toml", "b.toml"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
    }

    fn policy(args: &[&str]) -> PolicyCommand {
        let mut all = vec!["policy"];
        all.extend_from_slice(args);
        match parse(&all)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            Command::Policy(PolicyArgs { command }) => command,
            other => panic!("not policy: {other:?}"),
        }
    }

    #[test]
    fn policy_apply_takes_a_file_and_flags() {
        let PolicyCommand::Apply(args) = policy(&["apply", "-f", "p.yaml"]) else {
            panic!("not apply");
        };
        assert_eq!(args.file, PathBuf::from("p.yaml"));
        assert_eq!(args.cluster, None);
        assert!(!args.dry_run && !args.force);
        let PolicyCommand::Apply(args) = policy(&[
            "apply",
            "--dry-run",
            "--file",
            "p.toml",
            "--cluster",
            "prod",
            "--force",
        ]) else {
            panic!("not apply");
        };
        assert_eq!(args.file, PathBuf::from("p.toml"));
        assert_eq!(args.cluster.as_deref(), Some("prod"));
        assert!(args.dry_run && args.force);
        let cli = parse(&["policy", "apply", "-f", "p.yaml", "-o", "json"]).unwrap();
        assert_eq!(cli.global.output, Some(OutputFormat::Json));

        let err = parse(&["policy", "apply"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        // The file is named with -f, as kubectl apply does, not positionally.
        let err = parse(&["policy", "apply", "p.yaml"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
        let err = parse(&["policy", "apply", "-f", "p.yaml", "--cluster", ""]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
        let err = parse(&["policy"]).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
            "{err}"
        );
    }

    #[test]
    fn policy_list_and_the_commands_that_name_one() {
        let PolicyCommand::List(args) = policy(&["list"]) else {
            panic!("not list");
        };
        assert_eq!(args.cluster, None);
        let PolicyCommand::List(args) = policy(&["list", "--cluster", "prod"]) else {
            panic!("not list");
        };
        assert_eq!(args.cluster.as_deref(), Some("prod"));

        for command in ["status", "history", "rollback", "delete"] {
            let name = match policy(&[command, "protect-sshd"]) {
                PolicyCommand::Status(a)
                | PolicyCommand::History(a)
                | PolicyCommand::Rollback(a)
                | PolicyCommand::Delete(a) => a.name,
                other => panic!("{command}: {other:?}"),
            };
            assert_eq!(name, "protect-sshd", "{command}");
            let err = parse(&["policy", command]).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::MissingRequiredArgument,
                "{command}: {err}"
            );
            let err = parse(&["policy", command, ""]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue, "{command}: {err}");
            let err = parse(&["policy", command, "a", "b"]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{command}: {err}");
        }
        assert!(matches!(policy(&["status", "p"]), PolicyCommand::Status(_)));
        assert!(matches!(policy(&["delete", "p"]), PolicyCommand::Delete(_)));
        let err = parse(&["policy", "delete", "p", "--force"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
    }
}
