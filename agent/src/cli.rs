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
mod tests;
