//! The agent's command line: [`parse`] turns the arguments (without the program's name) into a
//! [`Cli`] to run, a text to print (`--help`, `--version`), or a [`UsageError`] naming the flag
//! and what is wrong with it. It is pure: nothing is read, printed or exited here.
//!
//! ```text
//! fleet-agent --collector https://c.example:7443 --state-dir=/var/lib/fleet-agent \
//!     --label role=web --label zone=a --no-kmsg --config /etc/fleet/agent.toml --check-config
//! fleet-agent --config /etc/fleet/agent.toml release-policies
//! fleet-agent parse-kmsg --format dmesg -        (standard input)
//! ```
//!
//! Every flag is a row of [`FLAGS`]: its name, the name of its value (none for a switch), whether
//! it may be repeated, what it conflicts with, its line of `--help`, and how its value is stored.
//! A value follows its flag (`--flag value`) or is joined to it (`--flag=value`); a value that
//! starts with `-` must be joined (`--state-dir=-odd`), except `-` itself. Flags are not
//! abbreviated, and each one may be given once unless it is repeatable (`--label`,
//! `--ntp-server`). The daemon's flags come before a subcommand (`parse-kmsg`,
//! `release-policies`, `help`), whose own arguments follow it. Values are kept as the operating
//! system gave them for paths (a non-UTF-8 path works); other values must be UTF-8.
//!
//! Written by hand rather than with clap: the agent's resident memory is mostly the pages of its
//! binary that it touches, start-up included, and clap's parser, help and error machinery was
//! the largest piece of code run once at start.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::iter::Peekable;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use thiserror::Error;

use crate::config::{Label, Options};
use crate::sources::kmsg::InputFormat;

/// The program's name in help and errors.
pub const NAME: &str = "fleet-agent";

/// A command line to run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cli {
    /// The settings the flags give (laid over the config file's by [`Options::over`]).
    pub options: Options,
    /// `--config FILE`: the TOML config file.
    pub config: Option<PathBuf>,
    /// `--check-config`: check the settings and the files they name, and start nothing.
    pub check_config: bool,
    /// None: run the daemon.
    pub command: Option<Command>,
}

/// A subcommand instead of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `parse-kmsg [--format F] FILE`: one JSON object per OOM event in a kernel log (`-`: stdin).
    ParseKmsg { format: InputFormat, file: PathBuf },
    /// `release-policies`: the uninstall path for OOM policies.
    ReleasePolicies,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Boxed: a [`Cli`] is some twenty times the size of a help text.
    Run(Box<Cli>),
    /// `--help`, `-h`, `help [COMMAND]` or `COMMAND --help`: this text, for standard output.
    Help(String),
    /// `--version`, `-V`: this line, for standard output.
    Version(String),
}

/// A command line that cannot be run: what is wrong, and the (sub)command whose usage to show.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{problem}")]
pub struct UsageError {
    pub problem: Problem,
    /// The subcommand being parsed when it went wrong; None: the daemon's flags.
    pub command: Option<&'static str>,
}

/// What is wrong with a command line. Flags are named as `--flag <VALUE>`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("unexpected argument '{0}' found")]
    Unexpected(String),
    #[error("unrecognized subcommand '{0}'")]
    UnknownCommand(String),
    #[error("a value is required for '{0}' but none was supplied")]
    MissingValue(String),
    #[error("invalid value '{value}' for '{flag}': {why}")]
    BadValue {
        flag: String,
        value: String,
        why: String,
    },
    #[error("unexpected value '{value}' for '{flag}' found; no more were expected")]
    NoValueTaken { flag: String, value: String },
    #[error("the argument '{0}' cannot be used multiple times")]
    Repeated(String),
    #[error("the argument '{0}' cannot be used with '{1}'")]
    Conflict(String, String),
    #[error("the following required arguments were not provided:\n  <{0}>")]
    Missing(&'static str),
}

impl UsageError {
    /// The error as printed on standard error (exit status 2), with the usage line.
    pub fn render(&self) -> String {
        format!(
            "error: {}\n\nUsage: {}\n\nFor more information, try '--help'.\n",
            self.problem,
            usage(self.command)
        )
    }
}

/// How a flag's value is stored; `Err` says why the value is not valid.
type Setter = fn(&mut Cli, OsString) -> Result<(), String>;

/// One flag of the daemon.
#[derive(Debug)]
pub struct Flag {
    /// Its name without the leading `--`.
    pub name: &'static str,
    /// Its value's name in help (`--label <K=V>`); None: a switch, which takes no value.
    pub value: Option<&'static str>,
    /// May be given more than once (each adds a value).
    pub repeat: bool,
    /// The name of a flag it cannot be given with.
    pub conflicts_with: Option<&'static str>,
    /// Its line of `--help`.
    pub help: &'static str,
    set: Setter,
}

impl Flag {
    /// `--name <VALUE>`, as help and errors show it.
    fn spec(&self) -> String {
        match self.value {
            Some(value) => format!("--{} <{value}>", self.name),
            None => format!("--{}", self.name),
        }
    }
}

/// A flag that takes a value.
const fn value(name: &'static str, value: &'static str, help: &'static str, set: Setter) -> Flag {
    Flag {
        name,
        value: Some(value),
        repeat: false,
        conflicts_with: None,
        help,
        set,
    }
}

/// A switch: on when given.
const fn switch(name: &'static str, help: &'static str, set: Setter) -> Flag {
    Flag {
        name,
        value: None,
        repeat: false,
        conflicts_with: None,
        help,
        set,
    }
}

const fn repeated(flag: Flag) -> Flag {
    Flag {
        repeat: true,
        ..flag
    }
}

fn set<T>(slot: &mut T, value: T) -> Result<(), String> {
    *slot = value;
    Ok(())
}

fn add<T>(list: &mut Vec<T>, value: T) -> Result<(), String> {
    list.push(value);
    Ok(())
}

/// A value that must be text.
fn text(value: OsString) -> Result<String, String> {
    value
        .into_string()
        .map_err(|_| "invalid UTF-8 was detected".to_string())
}

/// A number such as `64` (or `+64`).
fn number<T: std::str::FromStr<Err = std::num::ParseIntError>>(
    value: OsString,
) -> Result<T, String> {
    text(value)?.parse().map_err(|e| format!("{e}"))
}

/// The daemon's flags, in the order `--help` lists them.
pub const FLAGS: &[Flag] = &[
    value(
        "collector",
        "COLLECTOR",
        "Collector URL: https://HOST:PORT (or http:// with --insecure)",
        |c, v| set(&mut c.options.collector, Some(text(v)?)),
    ),
    value(
        "state-dir",
        "STATE_DIR",
        "Directory for the spool and other state that must survive restarts",
        |c, v| set(&mut c.options.state_dir, Some(v.into())),
    ),
    value(
        "host-id",
        "HOST_ID",
        "Host id (default: /etc/machine-id)",
        |c, v| set(&mut c.options.host_id, Some(text(v)?)),
    ),
    value(
        "hostname",
        "HOSTNAME",
        "Hostname to report (default: the kernel's)",
        |c, v| set(&mut c.options.hostname, Some(text(v)?)),
    ),
    value(
        "cluster",
        "CLUSTER",
        "Cluster this host belongs to (default: \"default\")",
        |c, v| set(&mut c.options.cluster, Some(text(v)?)),
    ),
    repeated(value(
        "label",
        "K=V",
        "A label KEY=VALUE; repeatable",
        |c, v| add(&mut c.options.labels, Label::Flag(text(v)?)),
    )),
    value(
        "interval",
        "INTERVAL",
        "Sampling interval, 1s to 1h (default 10s)",
        |c, v| set(&mut c.options.interval, Some(text(v)?)),
    ),
    value(
        "proc-root",
        "PROC_ROOT",
        "Root of the proc filesystem (for tests and containers)",
        |c, v| set(&mut c.options.proc_root, Some(v.into())),
    ),
    value(
        "sys-root",
        "SYS_ROOT",
        "Root of the sys filesystem",
        |c, v| set(&mut c.options.sys_root, Some(v.into())),
    ),
    switch(
        "insecure",
        "Allow a plaintext http:// collector (local demos and tests only)",
        |c, _| set(&mut c.options.insecure, true),
    ),
    value(
        "tls-ca",
        "TLS_CA",
        "CA certificate (PEM) that signed the collector's certificate",
        |c, v| set(&mut c.options.tls_ca, Some(v.into())),
    ),
    value(
        "tls-cert",
        "TLS_CERT",
        "Client certificate (PEM)",
        |c, v| set(&mut c.options.tls_cert, Some(v.into())),
    ),
    value("tls-key", "TLS_KEY", "Client key (PEM)", |c, v| {
        set(&mut c.options.tls_key, Some(v.into()))
    }),
    value(
        "spool-max-mib",
        "SPOOL_MAX_MIB",
        "Upper bound of the on-disk spool in MiB (default 64); oldest samples go first when full",
        |c, v| set(&mut c.options.spool_max_mib, Some(number(v)?)),
    ),
    Flag {
        conflicts_with: Some("no-kmsg"),
        ..value(
            "kmsg-path",
            "KMSG_PATH",
            "Kernel log to watch for OOM kills (default /dev/kmsg)",
            |c, v| set(&mut c.options.kmsg_path, Some(v.into())),
        )
    },
    switch(
        "no-kmsg",
        "Do not read the kernel log (no OOM events); `kmsg_path = \"\"` in the config file",
        |c, _| set(&mut c.options.no_kmsg, true),
    ),
    value(
        "top-oom-limit",
        "TOP_OOM_LIMIT",
        "How many processes top-oom reports each interval (default 10; 0 turns it off)",
        |c, v| set(&mut c.options.top_oom_limit, Some(number(v)?)),
    ),
    repeated(value(
        "ntp-server",
        "HOST:PORT",
        "An NTP server HOST:PORT to measure; repeatable (default: chrony's, ntpd's or timesyncd's)",
        |c, v| add(&mut c.options.ntp_servers, text(v)?),
    )),
    value(
        "config",
        "CONFIG",
        "TOML config file; flags override it",
        |c, v| set(&mut c.config, Some(v.into())),
    ),
    switch(
        "check-config",
        "Only check the config file and flags and that the files they name can be read: print \
         \"config OK\" (exit 0) or the error naming the field (exit 2), and start nothing",
        |c, _| set(&mut c.check_config, true),
    ),
];

const ABOUT: &str =
    "Fleet's per-host agent: samples sar activities and streams them to the collector";
const PARSE_KMSG: &str = "parse-kmsg";
const PARSE_KMSG_ABOUT: &str =
    "Prints one JSON object per OOM kill found in a kernel log (a file, or - for stdin)";
const RELEASE_POLICIES: &str = "release-policies";
const RELEASE_POLICIES_ABOUT: &str = "Gives every process an OOM policy changed back its \
    original oom_score_adj and forgets the policies (the uninstall path). Run it with the agent \
    stopped and the same config; it refuses while an agent uses the state directory. Exit 1 if \
    a write failed";
const HELP_ABOUT: &str = "Print this message or the help of the given subcommand(s)";
const FORMAT_SPEC: &str = "--format <FORMAT>";

/// The usage line of the daemon (None) or of a subcommand.
fn usage(command: Option<&str>) -> String {
    match command {
        Some(PARSE_KMSG) => format!("{NAME} {PARSE_KMSG} [OPTIONS] <FILE>"),
        Some(RELEASE_POLICIES) => format!("{NAME} {RELEASE_POLICIES}"),
        _ => format!("{NAME} [OPTIONS] [COMMAND]"),
    }
}

/// Rows of two columns, the second aligned two spaces after the longest first one.
fn table(out: &mut String, rows: &[(String, &str)]) {
    let width = rows.iter().map(|(left, _)| left.len()).max().unwrap_or(0);
    for (left, right) in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{left:width$}  {right}");
    }
}

/// A flag's first column: long flags line up after the place of a short one (`-h, `).
fn option_column(short: Option<char>, long: &str) -> String {
    match short {
        Some(c) => format!("  -{c}, {long}"),
        None => format!("      {long}"),
    }
}

/// `--help` of the daemon (None) or of a subcommand.
pub fn help(command: Option<&str>) -> String {
    let mut out = String::new();
    let help_row = (option_column(Some('h'), "--help"), "Print help");
    match command {
        Some(PARSE_KMSG) => {
            let _ = write!(
                out,
                "{PARSE_KMSG_ABOUT}\n\nUsage: {}\n\nArguments:\n  <FILE>  The log file, or - \
                 for standard input\n\nOptions:\n",
                usage(command)
            );
            let format = "Input form: auto, kmsg (/dev/kmsg records), dmesg, or syslog (also \
                          journal text) [default: auto]";
            table(
                &mut out,
                &[(option_column(None, FORMAT_SPEC), format), help_row],
            );
        }
        Some(RELEASE_POLICIES) => {
            let _ = write!(
                out,
                "{RELEASE_POLICIES_ABOUT}\n\nUsage: {}\n\nOptions:\n",
                usage(command)
            );
            table(&mut out, &[help_row]);
        }
        _ => {
            let _ = write!(out, "{ABOUT}\n\nUsage: {}\n\nCommands:\n", usage(None));
            table(
                &mut out,
                &[
                    (format!("  {PARSE_KMSG}"), PARSE_KMSG_ABOUT),
                    (format!("  {RELEASE_POLICIES}"), RELEASE_POLICIES_ABOUT),
                    ("  help".to_string(), HELP_ABOUT),
                ],
            );
            out.push_str("\nOptions:\n");
            let mut rows: Vec<(String, &str)> = FLAGS
                .iter()
                .map(|f| (option_column(None, &f.spec()), f.help))
                .collect();
            rows.push(help_row);
            rows.push((option_column(Some('V'), "--version"), "Print version"));
            table(&mut out, &rows);
        }
    }
    out
}

/// `--version`.
pub fn version() -> String {
    format!("{NAME} {}", env!("CARGO_PKG_VERSION"))
}

/// A long flag split into its name (without `--`) and its joined value, if any; None: not a
/// long flag.
fn long_flag(arg: &OsStr) -> Option<(&[u8], Option<&OsStr>)> {
    let rest = arg
        .as_bytes()
        .strip_prefix(b"--")
        .filter(|r| !r.is_empty())?;
    Some(match rest.iter().position(|&b| b == b'=') {
        Some(i) => (&rest[..i], Some(OsStr::from_bytes(&rest[i + 1..]))),
        None => (rest, None),
    })
}

/// An argument that looks like a flag: `-x`, `--x` (but not `-`).
fn is_flag(arg: &OsStr) -> bool {
    arg.as_bytes().len() > 1 && arg.as_bytes()[0] == b'-'
}

fn lossy(arg: &OsStr) -> String {
    arg.to_string_lossy().into_owned()
}

/// The value of the flag shown as `spec`: the joined one, else the next argument unless it looks
/// like a flag. An empty value counts as none.
fn value_of<I: Iterator<Item = OsString>>(
    spec: &str,
    joined: Option<&OsStr>,
    args: &mut Peekable<I>,
) -> Result<OsString, Problem> {
    let value = match joined {
        Some(v) => Some(v.to_os_string()),
        None => args.next_if(|a| !is_flag(a)),
    };
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Problem::MissingValue(spec.to_string()))
}

/// Parses the arguments after the program's name.
///
/// # Errors
/// [`UsageError`]: an unknown flag or subcommand, a missing or invalid value, a flag given twice
/// that is not repeatable, or two flags that conflict.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, UsageError> {
    let mut args = args.into_iter().peekable();
    let mut cli = Cli::default();
    // Where each flag of FLAGS was first given (for conflicts, named in that order).
    let mut given = [None::<usize>; FLAGS.len()];
    let daemon = |problem| UsageError {
        problem,
        command: None,
    };
    let mut position = 0;
    while let Some(arg) = args.next() {
        position += 1;
        match arg.as_bytes() {
            b"-h" | b"--help" => return Ok(Parsed::Help(help(None))),
            b"-V" | b"--version" => return Ok(Parsed::Version(version())),
            b"--" => {
                // What follows `--` is a subcommand, never a flag.
                if let Some(name) = args.next() {
                    match subcommand(&name, &mut args)? {
                        Ok(command) => cli.command = Some(command),
                        Err(print) => return Ok(print),
                    }
                }
                break;
            }
            _ => {}
        }
        let Some((name, joined)) = long_flag(&arg) else {
            if is_flag(&arg) {
                return Err(daemon(Problem::Unexpected(lossy(&arg))));
            }
            match subcommand(&arg, &mut args)? {
                Ok(command) => cli.command = Some(command),
                Err(print) => return Ok(print),
            }
            break;
        };
        let Some(index) = FLAGS.iter().position(|f| f.name.as_bytes() == name) else {
            let name = OsStr::from_bytes(name);
            return Err(daemon(Problem::Unexpected(format!("--{}", lossy(name)))));
        };
        let flag = &FLAGS[index];
        let spec = flag.spec();
        if given[index].is_some() && !flag.repeat {
            return Err(daemon(Problem::Repeated(spec)));
        }
        given[index].get_or_insert(position);
        let value = match (flag.value, joined) {
            (None, None) => OsString::new(),
            (None, Some(v)) => {
                return Err(daemon(Problem::NoValueTaken {
                    flag: spec,
                    value: lossy(v),
                }))
            }
            (Some(_), joined) => value_of(&spec, joined, &mut args).map_err(daemon)?,
        };
        let shown = lossy(&value);
        (flag.set)(&mut cli, value).map_err(|why| {
            daemon(Problem::BadValue {
                flag: spec,
                value: shown,
                why,
            })
        })?;
    }
    for (index, flag) in FLAGS.iter().enumerate() {
        let (Some(at), Some(other)) = (given[index], flag.conflicts_with) else {
            continue;
        };
        let Some(o) = FLAGS.iter().position(|f| f.name == other) else {
            continue;
        };
        if let Some(other_at) = given[o] {
            let (first, second) = if at < other_at {
                (flag, &FLAGS[o])
            } else {
                (&FLAGS[o], flag)
            };
            return Err(daemon(Problem::Conflict(first.spec(), second.spec())));
        }
    }
    Ok(Parsed::Run(Box::new(cli)))
}

/// The subcommand `name` and its arguments (the rest); `Err` inside: help to print instead.
fn subcommand<I: Iterator<Item = OsString>>(
    name: &OsStr,
    args: &mut Peekable<I>,
) -> Result<Result<Command, Parsed>, UsageError> {
    match name.as_bytes() {
        b"parse-kmsg" => parse_kmsg(args),
        b"release-policies" => {
            let error = |problem| UsageError {
                problem,
                command: Some(RELEASE_POLICIES),
            };
            let mut after_dashes = false;
            for arg in args {
                match arg.as_bytes() {
                    b"-h" | b"--help" if !after_dashes => {
                        return Ok(Err(Parsed::Help(help(Some(RELEASE_POLICIES)))))
                    }
                    b"--" if !after_dashes => after_dashes = true,
                    _ => return Err(error(Problem::Unexpected(lossy(&arg)))),
                }
            }
            Ok(Ok(Command::ReleasePolicies))
        }
        b"help" => {
            let topic = match args.next() {
                None => None,
                Some(t) if t == PARSE_KMSG => Some(PARSE_KMSG),
                Some(t) if t == RELEASE_POLICIES => Some(RELEASE_POLICIES),
                Some(t) if t == "help" => None,
                Some(t) => {
                    return Err(UsageError {
                        problem: Problem::UnknownCommand(lossy(&t)),
                        command: None,
                    })
                }
            };
            if let Some(extra) = args.next() {
                return Err(UsageError {
                    problem: Problem::Unexpected(lossy(&extra)),
                    command: None,
                });
            }
            Ok(Err(Parsed::Help(help(topic))))
        }
        _ => Err(UsageError {
            problem: Problem::UnknownCommand(lossy(name)),
            command: None,
        }),
    }
}

/// `parse-kmsg [--format F] FILE`; FILE may be `-` (standard input), or anything after `--`.
fn parse_kmsg<I: Iterator<Item = OsString>>(
    args: &mut Peekable<I>,
) -> Result<Result<Command, Parsed>, UsageError> {
    let error = |problem| UsageError {
        problem,
        command: Some(PARSE_KMSG),
    };
    let mut format = None;
    let mut file = None;
    let mut after_dashes = false;
    while let Some(arg) = args.next() {
        if !after_dashes && is_flag(&arg) {
            match (arg.as_bytes(), long_flag(&arg)) {
                (b"-h" | b"--help", _) => return Ok(Err(Parsed::Help(help(Some(PARSE_KMSG))))),
                (b"--", _) => after_dashes = true,
                (_, Some((b"format", joined))) => {
                    if format.is_some() {
                        return Err(error(Problem::Repeated(FORMAT_SPEC.into())));
                    }
                    let value = value_of(FORMAT_SPEC, joined, args).map_err(error)?;
                    let shown = lossy(&value);
                    let parsed = text(value).and_then(|t| t.parse().map_err(|e| format!("{e}")));
                    format = Some(parsed.map_err(|why| {
                        error(Problem::BadValue {
                            flag: FORMAT_SPEC.into(),
                            value: shown,
                            why,
                        })
                    })?);
                }
                _ => return Err(error(Problem::Unexpected(lossy(&arg)))),
            }
        } else if file.is_none() {
            file = Some(PathBuf::from(arg));
        } else {
            return Err(error(Problem::Unexpected(lossy(&arg))));
        }
    }
    let file = file.ok_or_else(|| error(Problem::Missing("FILE")))?;
    Ok(Ok(Command::ParseKmsg {
        format: format.unwrap_or_default(),
        file,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn run(list: &[&str]) -> Cli {
        match parse(args(list)) {
            Ok(Parsed::Run(cli)) => *cli,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    fn problem(list: &[&str]) -> Problem {
        match parse(args(list)) {
            Err(e) => e.problem,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    fn printed(list: &[&str]) -> String {
        match parse(args(list)) {
            Ok(Parsed::Help(text) | Parsed::Version(text)) => text,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    /// Every flag, as the tests' agents and deploy/ give them (`--flag value`).
    const EVERY_FLAG: &[&str] = &[
        "--collector",
        "https://c:7443",
        "--state-dir",
        "/var/lib/fleet-agent",
        "--host-id",
        "web1",
        "--hostname",
        "web1.example",
        "--cluster",
        "prod",
        "--label",
        "role=web",
        "--interval",
        "1s",
        "--proc-root",
        "/p",
        "--sys-root",
        "/s",
        "--insecure",
        "--tls-ca",
        "/ca.pem",
        "--tls-cert",
        "/cert.pem",
        "--tls-key",
        "/key.pem",
        "--spool-max-mib",
        "8",
        "--kmsg-path",
        "/dev/kmsg",
        "--top-oom-limit",
        "0",
        "--ntp-server",
        "127.0.0.1:123",
        "--config",
        "/etc/fleet/agent.toml",
        "--check-config",
    ];

    fn every_flag() -> Cli {
        Cli {
            options: Options {
                collector: Some("https://c:7443".into()),
                state_dir: Some("/var/lib/fleet-agent".into()),
                host_id: Some("web1".into()),
                hostname: Some("web1.example".into()),
                cluster: Some("prod".into()),
                labels: vec![Label::Flag("role=web".into())],
                interval: Some("1s".into()),
                proc_root: Some("/p".into()),
                sys_root: Some("/s".into()),
                insecure: true,
                tls_ca: Some("/ca.pem".into()),
                tls_cert: Some("/cert.pem".into()),
                tls_key: Some("/key.pem".into()),
                spool_max_mib: Some(8),
                kmsg_path: Some("/dev/kmsg".into()),
                top_oom_limit: Some(0),
                ntp_servers: vec!["127.0.0.1:123".into()],
                ..Options::default()
            },
            config: Some("/etc/fleet/agent.toml".into()),
            check_config: true,
            command: None,
        }
    }

    #[test]
    fn every_flag_in_both_forms() {
        assert_eq!(run(EVERY_FLAG), every_flag());
        // The same with every value joined: `--flag=value`.
        let mut joined = Vec::new();
        let mut list = EVERY_FLAG.iter().peekable();
        while let Some(flag) = list.next() {
            match list.next_if(|v| !v.starts_with("--")) {
                Some(value) => joined.push(format!("{flag}={value}")),
                None => joined.push(flag.to_string()),
            }
        }
        let joined: Vec<&str> = joined.iter().map(String::as_str).collect();
        assert_eq!(joined[0], "--collector=https://c:7443");
        assert_eq!(run(&joined), every_flag());
        assert_eq!(run(&[]), Cli::default());
    }

    #[test]
    fn every_flag_is_in_the_table_and_the_help() {
        let help = printed(&["--help"]);
        for flag in FLAGS {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(&flag.spec()))
                .unwrap_or_else(|| panic!("--{} not in help:\n{help}", flag.name));
            assert!(line.ends_with(flag.help), "{line}");
            assert!(
                EVERY_FLAG.contains(&format!("--{}", flag.name).as_str()) || flag.name == "no-kmsg",
                "--{} is not tested",
                flag.name
            );
        }
        assert!(help.starts_with(ABOUT), "{help}");
        assert!(help.contains("\nUsage: fleet-agent [OPTIONS] [COMMAND]\n"));
        assert!(help.contains("\n  release-policies  Gives every process"));
        assert!(help.contains(
            "\n      --spool-max-mib <SPOOL_MAX_MIB>  Upper bound of the on-disk spool in MiB \
             (default 64); oldest samples go first when full\n"
        ));
        assert!(help.contains("\n  -h, --help                           Print help\n"));
        assert!(help.ends_with("  -V, --version                        Print version\n"));
        assert_eq!(printed(&["-h"]), help);
        assert_eq!(printed(&["help"]), help);
        assert_eq!(printed(&["--insecure", "--help", "--bogus"]), help);
        assert_eq!(
            printed(&["--version"]),
            format!("fleet-agent {}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(printed(&["-V"]), printed(&["--version"]));
    }

    #[test]
    fn repeatable_flags_keep_every_value_in_order() {
        let cli = run(&[
            "--label",
            "a=1",
            "--ntp-server=x:1",
            "--label=b=2=3",
            "--ntp-server",
            "y:2",
        ]);
        assert_eq!(
            cli.options.labels,
            [Label::Flag("a=1".into()), Label::Flag("b=2=3".into())]
        );
        assert_eq!(cli.options.ntp_servers, ["x:1", "y:2"]);
    }

    #[test]
    fn a_flag_given_twice_is_refused_unless_repeatable() {
        for list in [
            &["--collector", "a", "--collector=b"][..],
            &["--insecure", "--insecure"],
            &["--kmsg-path=/x", "--kmsg-path", "/y"],
        ] {
            let Problem::Repeated(flag) = problem(list) else {
                panic!("{list:?}")
            };
            assert!(
                flag.starts_with(list[0].split('=').next().unwrap()),
                "{flag}"
            );
        }
        assert_eq!(
            problem(&["--collector", "a", "--collector=b"]).to_string(),
            "the argument '--collector <COLLECTOR>' cannot be used multiple times"
        );
    }

    #[test]
    fn unknown_flags_and_commands_are_named() {
        assert_eq!(problem(&["--bogus"]), Problem::Unexpected("--bogus".into()));
        assert_eq!(
            problem(&["--insecure", "--bogus=1"]),
            Problem::Unexpected("--bogus".into())
        );
        assert_eq!(problem(&["-x"]), Problem::Unexpected("-x".into()));
        // Not abbreviated.
        assert_eq!(
            problem(&["--coll", "x"]),
            Problem::Unexpected("--coll".into())
        );
        assert_eq!(problem(&["bogus"]), Problem::UnknownCommand("bogus".into()));
        assert_eq!(problem(&["-"]), Problem::UnknownCommand("-".into()));
        assert_eq!(
            problem(&["--", "--insecure"]),
            Problem::UnknownCommand("--insecure".into())
        );
        assert_eq!(
            problem(&["help", "bogus"]),
            Problem::UnknownCommand("bogus".into())
        );
        let e = parse(args(&["--bogus"])).unwrap_err();
        assert_eq!(
            e.render(),
            "error: unexpected argument '--bogus' found\n\nUsage: fleet-agent [OPTIONS] \
             [COMMAND]\n\nFor more information, try '--help'.\n"
        );
        // The daemon's flags go before a subcommand.
        let e = parse(args(&["parse-kmsg", "--collector", "x", "f"])).unwrap_err();
        assert_eq!(e.problem, Problem::Unexpected("--collector".into()));
        assert_eq!(e.command, Some("parse-kmsg"));
        assert!(e
            .render()
            .contains("\nUsage: fleet-agent parse-kmsg [OPTIONS] <FILE>\n"));
    }

    #[test]
    fn missing_and_bad_values_name_the_flag() {
        let missing = |flag: &str| Problem::MissingValue(flag.into());
        assert_eq!(
            problem(&["--collector"]),
            missing("--collector <COLLECTOR>")
        );
        // A value that looks like a flag is not taken: join it.
        assert_eq!(
            problem(&["--collector", "--insecure"]),
            missing("--collector <COLLECTOR>")
        );
        assert_eq!(
            problem(&["--state-dir", "-odd"]),
            missing("--state-dir <STATE_DIR>")
        );
        assert_eq!(
            run(&["--state-dir=-odd"]).options.state_dir,
            Some("-odd".into())
        );
        assert_eq!(
            run(&["--state-dir", "-"]).options.state_dir,
            Some("-".into())
        );
        assert_eq!(
            problem(&["--state-dir="]),
            missing("--state-dir <STATE_DIR>")
        );
        assert_eq!(problem(&["--label", ""]), missing("--label <K=V>"));
        assert_eq!(
            problem(&["--spool-max-mib", "x"]),
            Problem::BadValue {
                flag: "--spool-max-mib <SPOOL_MAX_MIB>".into(),
                value: "x".into(),
                why: "invalid digit found in string".into()
            }
        );
        assert_eq!(
            problem(&["--top-oom-limit=-1"]).to_string(),
            "invalid value '-1' for '--top-oom-limit <TOP_OOM_LIMIT>': invalid digit found in \
             string"
        );
        let Problem::BadValue { why, .. } = problem(&["--spool-max-mib", "99999999999999999999"])
        else {
            panic!()
        };
        assert_eq!(why, "number too large to fit in target type");
        assert_eq!(
            problem(&["--insecure=true"]),
            Problem::NoValueTaken {
                flag: "--insecure".into(),
                value: "true".into()
            }
        );
        assert_eq!(
            problem(&["--check-config=1"]).to_string(),
            "unexpected value '1' for '--check-config' found; no more were expected"
        );
    }

    #[test]
    fn kmsg_path_conflicts_with_no_kmsg_named_in_order() {
        assert!(run(&["--no-kmsg"]).options.no_kmsg);
        assert_eq!(
            problem(&["--kmsg-path", "/x", "--no-kmsg"]),
            Problem::Conflict("--kmsg-path <KMSG_PATH>".into(), "--no-kmsg".into())
        );
        assert_eq!(
            problem(&["--no-kmsg", "--insecure", "--kmsg-path=/x"]).to_string(),
            "the argument '--no-kmsg' cannot be used with '--kmsg-path <KMSG_PATH>'"
        );
        // Help wins over a conflict, as it does over anything after it.
        assert!(printed(&["--no-kmsg", "--kmsg-path=/x", "-h"]).starts_with(ABOUT));
    }

    #[test]
    fn paths_need_not_be_utf8_but_text_must() {
        let odd = OsStr::from_bytes(b"/tmp/caf\xe9").to_os_string();
        let mut list = args(&["--state-dir"]);
        list.push(odd.clone());
        let mut joined = OsString::from("--tls-ca=");
        joined.push(&odd);
        list.push(joined);
        list.extend(args(&["parse-kmsg", "--format=kmsg"]));
        list.push(odd.clone());
        let Ok(Parsed::Run(cli)) = parse(list) else {
            panic!()
        };
        assert_eq!(cli.options.state_dir.as_deref(), Some(odd.as_ref()));
        assert_eq!(cli.options.tls_ca.as_deref(), Some(odd.as_ref()));
        assert_eq!(
            cli.command,
            Some(Command::ParseKmsg {
                format: InputFormat::Kmsg,
                file: odd.clone().into()
            })
        );
        let mut list = args(&["--host-id"]);
        list.push(odd);
        let Err(e) = parse(list) else { panic!() };
        assert_eq!(
            e.problem,
            Problem::BadValue {
                flag: "--host-id <HOST_ID>".into(),
                value: "/tmp/caf\u{fffd}".into(),
                why: "invalid UTF-8 was detected".into()
            }
        );
    }

    #[test]
    fn parse_kmsg_takes_one_file_dash_for_stdin_and_a_format() {
        let kmsg = |format, file: &str| {
            Some(Command::ParseKmsg {
                format,
                file: file.into(),
            })
        };
        assert_eq!(
            run(&["parse-kmsg", "f.log"]).command,
            kmsg(InputFormat::Auto, "f.log")
        );
        assert_eq!(
            run(&["parse-kmsg", "-"]).command,
            kmsg(InputFormat::Auto, "-")
        );
        assert_eq!(
            run(&["parse-kmsg", "--format", "dmesg", "-"]).command,
            kmsg(InputFormat::Dmesg, "-")
        );
        assert_eq!(
            run(&["parse-kmsg", "-", "--format=journal"]).command,
            kmsg(InputFormat::Syslog, "-")
        );
        // After `--`, a file may look like a flag.
        assert_eq!(
            run(&["parse-kmsg", "--", "--format"]).command,
            kmsg(InputFormat::Auto, "--format")
        );
        assert_eq!(
            run(&["parse-kmsg", "--", "-"]).command,
            kmsg(InputFormat::Auto, "-")
        );
        // The daemon's flags before it are kept (main ignores them for parse-kmsg).
        let cli = run(&["--config", "/c", "--", "parse-kmsg", "f"]);
        assert_eq!(
            (cli.config, cli.command),
            (Some("/c".into()), kmsg(InputFormat::Auto, "f"))
        );

        assert_eq!(problem(&["parse-kmsg"]), Problem::Missing("FILE"));
        assert_eq!(
            problem(&["parse-kmsg", "f", "g"]),
            Problem::Unexpected("g".into())
        );
        assert_eq!(
            problem(&["parse-kmsg", "-x"]),
            Problem::Unexpected("-x".into())
        );
        assert_eq!(
            problem(&["parse-kmsg", "--format", "kmsg", "--format=dmesg", "f"]),
            Problem::Repeated("--format <FORMAT>".into())
        );
        assert_eq!(
            problem(&["parse-kmsg", "--format=xx", "f"]).to_string(),
            "invalid value 'xx' for '--format <FORMAT>': unknown input format \"xx\": expected \
             auto, kmsg, dmesg or syslog"
        );
        assert_eq!(
            problem(&["parse-kmsg", "--format", "-"]),
            Problem::BadValue {
                flag: "--format <FORMAT>".into(),
                value: "-".into(),
                why: "unknown input format \"-\": expected auto, kmsg, dmesg or syslog".into()
            }
        );
        assert_eq!(
            problem(&["parse-kmsg", "--format"]),
            Problem::MissingValue("--format <FORMAT>".into())
        );

        let help = printed(&["parse-kmsg", "f", "--help"]);
        assert_eq!(
            help,
            "Prints one JSON object per OOM kill found in a kernel log (a file, or - for stdin)\n\
             \n\
             Usage: fleet-agent parse-kmsg [OPTIONS] <FILE>\n\
             \n\
             Arguments:\n  <FILE>  The log file, or - for standard input\n\
             \n\
             Options:\n      --format <FORMAT>  Input form: auto, kmsg (/dev/kmsg records), \
             dmesg, or syslog (also journal text) [default: auto]\n  \
             -h, --help             Print help\n"
        );
        assert_eq!(printed(&["help", "parse-kmsg"]), help);
        assert_eq!(printed(&["parse-kmsg", "-h"]), help);
        assert_eq!(
            run(&["parse-kmsg", "--", "-h"]).command,
            kmsg(InputFormat::Auto, "-h")
        );
    }

    #[test]
    fn release_policies_takes_the_daemons_flags_before_it() {
        let cli = run(&["--config", "/etc/fleet/agent.toml", "release-policies"]);
        assert_eq!(cli.config, Some("/etc/fleet/agent.toml".into()));
        assert_eq!(cli.command, Some(Command::ReleasePolicies));
        let cli = run(&["--collector", "u", "--no-kmsg", "release-policies", "--"]);
        assert!(cli.options.no_kmsg);
        assert_eq!(cli.command, Some(Command::ReleasePolicies));
        assert_eq!(
            problem(&["release-policies", "extra"]),
            Problem::Unexpected("extra".into())
        );
        assert_eq!(
            problem(&["release-policies", "--config", "/c"]),
            Problem::Unexpected("--config".into())
        );
        let help = printed(&["release-policies", "--help"]);
        assert!(help.starts_with(RELEASE_POLICIES_ABOUT), "{help}");
        assert!(help.ends_with(
            "\n\nUsage: fleet-agent release-policies\n\nOptions:\n  -h, --help  Print help\n"
        ));
        assert_eq!(printed(&["help", "release-policies"]), help);
    }
}
