//! `fleetctl`, the operator's CLI for Fleet: asks a collector's `Query` service and prints the
//! answer as a table, JSON or CSV.
//!
//! Layout:
//!
//! - [`cli`]: the command line (clap derive). Adding a command is a [`cli::Command`] variant, its
//!   `Args`, and an arm in [`execute`].
//! - [`config`]: the optional TOML file, merged with flags and `FLEET_COLLECTOR` into
//!   [`config::Settings`].
//! - `client`: the connection (TLS via rustls) and the one place gRPC statuses become messages.
//! - [`render`]: pure functions from answers to text, one per command and format.
//! - [`timearg`]: pure parsing of `--since`/`--until`.
//! - `policy`: `fleetctl policy ...`, against the collector's `Policies` service; `apply` checks
//!   the document with `fleet-policy` before sending it.
//!
//! `main.rs` only parses the command line and calls [`run`]; tests call [`execute`] to get the
//! output as a string. `rules check` and `certs` work offline and need no collector settings:
//! `rules check` validates a rules file with `fleet-rules`, the parser the collector loads
//! `--rules` with; [`certs`] makes the fleet's CA and certificates.

pub mod certs;
pub mod cli;
mod client;
pub mod config;
#[cfg(test)]
mod golden;
mod policy;
pub mod render;
pub mod timearg;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use fleet_proto::schema::{schema, ActivitySchema};
use fleet_proto::v1::{
    Activity, AlertQuery, NtpQuery, OomKillRequest, OomQuery, SarQuery, SarRow, TopOomQuery,
};

pub use cli::Cli;
use cli::{
    AlertsArgs, Command, HostsArgs, NtpArgs, OomArgs, OomCommand, OomShowArgs, RulesCheckArgs,
    RulesCommand, SarArgs, TopOomArgs,
};
use client::Collector;
use config::{FileConfig, Settings};
use render::OutputFormat;
use timearg::TimeArg;

/// How far back `sar` looks without `--since`.
const DEFAULT_SINCE: TimeArg = TimeArg::Ago(std::time::Duration::from_secs(10 * 60));
/// How far back `oom` looks without `--since`.
const DEFAULT_OOM_SINCE: TimeArg = TimeArg::Ago(std::time::Duration::from_secs(24 * 60 * 60));

/// What a command prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The result, for stdout.
    pub stdout: String,
    /// A remark for stderr (such as "no samples"), which scripts reading stdout never see.
    pub notice: Option<String>,
    /// The command ran, and its answer is "no": a rules file that does not validate. [`run`]
    /// prints stdout and the notice as usual and then exits 1.
    pub failed: bool,
}

/// Runs one fleetctl invocation: loads the config, talks to the collector, writes the result to
/// stdout and any notice to stderr. The exit code is failure for an [`Output::failed`] answer.
///
/// # Errors
///
/// Bad settings, an unreachable collector, a gRPC status, or a failed write to stdout (see
/// [`is_broken_pipe`] for the one write failure that is not an error to the user).
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let output = execute(cli).await?;
    if let Some(notice) = &output.notice {
        // One prefix per line: `rules check` reports every problem of a file, one per line.
        for line in notice.lines() {
            eprintln!("fleetctl: {line}");
        }
    }
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(output.stdout.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(if output.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs one fleetctl invocation and returns what it would print.
///
/// # Errors
///
/// As [`run`], except writing.
pub async fn execute(cli: Cli) -> Result<Output> {
    let file = match &cli.global.config {
        Some(path) => config::load(path)?,
        None => FileConfig::default(),
    };
    // Offline: no collector URL or TLS files needed, only the output format.
    if let Command::Rules(args) = &cli.command {
        let format = config::output_format(&cli.global, &file);
        return match &args.command {
            RulesCommand::Check(check) => Ok(rules_check(check, format)),
        };
    }
    if let Command::Certs(args) = &cli.command {
        return certs_command(&args.command, config::output_format(&cli.global, &file));
    }
    let settings = config::resolve(&cli.global, file)?;
    match cli.command {
        Command::Hosts(args) => hosts(&settings, args).await,
        Command::Sar(args) => sar(&settings, &args, Utc::now()).await,
        Command::TopOom(args) => top_oom(&settings, &args).await,
        Command::Oom(args) => match &args.command {
            Some(OomCommand::Show(show)) => oom_show(&settings, show).await,
            None => oom(&settings, &args, Utc::now()).await,
        },
        Command::Ntp(args) => ntp(&settings, args).await,
        Command::Alerts(args) => alerts(&settings, args).await,
        Command::Status => collector_status(&settings).await,
        Command::Policy(args) => policy::execute(&settings, args).await,
        Command::Rules(_) | Command::Certs(_) => {
            unreachable!("handled before the settings are resolved")
        }
    }
}

/// `err` with its causes, one line, for stderr. Like anyhow's `{:#}`, except that a cause whose
/// text its wrapper already quotes (hyper and rustls errors repeat their source) is said once.
pub fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// Whether `err` is a write to a closed pipe (`fleetctl hosts -o json | head -1`), which `main`
/// treats as success, as ripgrep does.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

async fn collector_status(settings: &Settings) -> Result<Output> {
    let collector = Collector::connect(settings).await?;
    let status = collector.collector_status().await?;
    Ok(Output {
        stdout: render::render_collector_status(
            &status,
            settings.output,
            Utc::now().timestamp_millis(),
        ),
        notice: None,
        failed: false,
    })
}

async fn hosts(settings: &Settings, args: HostsArgs) -> Result<Output> {
    let collector = Collector::connect(settings).await?;
    let cluster = args.cluster.unwrap_or_default();
    let hosts = collector.list_hosts(&cluster).await?;
    if hosts.is_empty() && settings.output == OutputFormat::Table {
        let notice = match cluster.as_str() {
            "" => "the collector knows no hosts".to_owned(),
            cluster => format!("the collector knows no hosts in cluster {cluster}"),
        };
        return Ok(Output {
            stdout: String::new(),
            notice: Some(notice),
            failed: false,
        });
    }
    Ok(Output {
        stdout: render::render_hosts(&hosts, settings.output),
        notice: None,
        failed: false,
    })
}

/// A `sar` invocation checked and turned into its query, before anything is contacted.
#[derive(Debug, Clone, PartialEq)]
struct SarPlan {
    schema: &'static ActivitySchema,
    query: SarQuery,
    /// `-u` without `-P ALL`: keep only the "all" line, as sar does.
    only_all_cpus: bool,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

impl SarPlan {
    fn new(args: &SarArgs, now: DateTime<Utc>) -> Result<Self> {
        let activity = args.activity()?;
        let schema = schema(activity)
            .with_context(|| format!("no column schema for activity {activity:?}"))?;
        let (since, until) = time_range(args.since.unwrap_or(DEFAULT_SINCE), args.until, now)?;
        Ok(SarPlan {
            schema,
            query: SarQuery {
                activity: activity as i32,
                hosts: args.hosts.clone(),
                cluster: args.cluster.clone().unwrap_or_default(),
                since_ms: since.timestamp_millis(),
                // 0 lets the collector use its own now, so clocks need not agree.
                until_ms: until.map_or(0, |t| t.timestamp_millis()),
            },
            only_all_cpus: activity == Activity::Cpu && !args.all_cpus(),
            since,
            until,
        })
    }

    /// The rows to show, in sar's order.
    fn select(&self, mut rows: Vec<SarRow>) -> Vec<SarRow> {
        if self.only_all_cpus {
            rows.retain(|r| r.instance == "all");
        }
        render::sort_sar_rows(&mut rows);
        rows
    }
}

async fn sar(settings: &Settings, args: &SarArgs, now: DateTime<Utc>) -> Result<Output> {
    let plan = SarPlan::new(args, now)?;
    let collector = Collector::connect(settings).await?;
    let (rows, hosts) = if settings.output == OutputFormat::Table {
        // The table's header lines need each host's kernel and cluster: one ListHosts, in parallel.
        let cluster = plan.query.cluster.clone();
        tokio::try_join!(
            collector.query_sar(plan.query.clone()),
            collector.list_hosts(&cluster)
        )?
    } else {
        (collector.query_sar(plan.query.clone()).await?, Vec::new())
    };
    let rows = plan.select(rows);
    let notice = (rows.is_empty() && settings.output == OutputFormat::Table).then(|| {
        format!(
            "no samples (sar {}) from {} to {}",
            plan.schema.sar_flag,
            show_time(plan.since),
            show_until(plan.until)
        )
    });
    Ok(Output {
        stdout: render::render_sar(plan.schema, &rows, &hosts, settings.output),
        notice,
        failed: false,
    })
}

/// `--since` and `--until` resolved against `now`; `until` stays `None` for "now".
///
/// # Errors
///
/// When `since` is not before the end of the range.
fn time_range(
    since: TimeArg,
    until: Option<TimeArg>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    let since = since.resolve(now);
    let until = until.map(|t| t.resolve(now));
    if since >= until.unwrap_or(now) {
        bail!(
            "--since {} is not before --until {}",
            show_time(since),
            show_until(until)
        );
    }
    Ok((since, until))
}

async fn top_oom(settings: &Settings, args: &TopOomArgs) -> Result<Output> {
    let query = TopOomQuery {
        hosts: args.hosts.clone(),
        cluster: args.cluster.clone().unwrap_or_default(),
        limit: args.limit,
    };
    let collector = Collector::connect(settings).await?;
    let rows = collector.top_oom(query).await?;
    let notice = (rows.is_empty() && settings.output == OutputFormat::Table).then(|| {
        "no top-oom ranking stored for the selected hosts (agents send one with their samples)"
            .to_owned()
    });
    Ok(Output {
        stdout: render::render_top_oom(&rows, settings.output),
        notice,
        failed: false,
    })
}

/// An `oom` listing checked and turned into its query, before anything is contacted.
#[derive(Debug, Clone, PartialEq)]
struct OomPlan {
    query: OomQuery,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

impl OomPlan {
    fn new(args: &OomArgs, now: DateTime<Utc>) -> Result<Self> {
        let (since, until) = time_range(args.since.unwrap_or(DEFAULT_OOM_SINCE), args.until, now)?;
        Ok(OomPlan {
            query: OomQuery {
                hosts: args.hosts.clone(),
                cluster: args.cluster.clone().unwrap_or_default(),
                since_ms: since.timestamp_millis(),
                // 0 lets the collector use its own now, as for sar.
                until_ms: until.map_or(0, |t| t.timestamp_millis()),
                limit: args.limit,
            },
            since,
            until,
        })
    }

    /// What stderr says about `found` kills: none in the range (table only), or a listing cut
    /// at `--limit` (every format: a script must not mistake a cut list for all of them).
    fn notice(&self, found: usize, format: OutputFormat) -> Option<String> {
        let limit = self.query.limit as usize;
        if found == 0 && format == OutputFormat::Table {
            Some(format!(
                "no OOM kills from {} to {}",
                show_time(self.since),
                show_until(self.until)
            ))
        } else if found >= limit {
            Some(format!(
                "showing the newest {limit} kills only; raise --limit or narrow --since/--until \
                 for the rest"
            ))
        } else {
            None
        }
    }
}

async fn oom(settings: &Settings, args: &OomArgs, now: DateTime<Utc>) -> Result<Output> {
    let plan = OomPlan::new(args, now)?;
    let collector = Collector::connect(settings).await?;
    let kills = collector.list_oom_kills(plan.query.clone()).await?;
    Ok(Output {
        stdout: render::render_oom_kills(&kills, settings.output),
        notice: plan.notice(kills.len(), settings.output),
        failed: false,
    })
}

async fn oom_show(settings: &Settings, args: &OomShowArgs) -> Result<Output> {
    if settings.output == OutputFormat::Csv {
        bail!("`oom show` prints several tables and has no CSV form: use -o table or -o json");
    }
    let request = OomKillRequest {
        id: args.id.clone(),
        // The CLI admits only durations whose milliseconds fit.
        before_ms: i64::try_from(args.before.as_millis()).unwrap_or(i64::MAX),
    };
    let collector = Collector::connect(settings).await?;
    let detail = collector.get_oom_kill(request).await?;
    let stdout = match settings.output {
        OutputFormat::Json => render::render_oom_detail_json(&detail),
        OutputFormat::Table | OutputFormat::Csv => render::render_oom_detail_table(&detail),
    };
    Ok(Output {
        stdout,
        notice: None,
        failed: false,
    })
}

async fn ntp(settings: &Settings, args: NtpArgs) -> Result<Output> {
    let query = NtpQuery {
        hosts: args.hosts,
        cluster: args.cluster.unwrap_or_default(),
    };
    let collector = Collector::connect(settings).await?;
    let hosts = collector.list_ntp(query).await?;
    let notice = (hosts.is_empty() && settings.output == OutputFormat::Table).then(|| {
        "no clock status stored for the selected hosts (agents send one with their samples)"
            .to_owned()
    });
    Ok(Output {
        stdout: render::render_ntp(&hosts, settings.output),
        notice,
        failed: false,
    })
}

async fn alerts(settings: &Settings, args: AlertsArgs) -> Result<Output> {
    let query = AlertQuery {
        cluster: args.cluster.unwrap_or_default(),
        state: args
            .state
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
    };
    let collector = Collector::connect(settings).await?;
    let alerts = collector.list_alerts(query.clone()).await?;
    let notice = (alerts.is_empty() && settings.output == OutputFormat::Table).then(|| {
        let state = match query.state.as_str() {
            "" => String::new(),
            state => format!(" {state}"),
        };
        match query.cluster.as_str() {
            "" => format!("no{state} alerts"),
            cluster => format!("no{state} alerts in cluster {cluster}"),
        }
    });
    Ok(Output {
        stdout: render::render_alerts(&alerts, settings.output),
        notice,
        failed: false,
    })
}

/// `certs init` / `certs issue`: one line per file written (JSON: an array of
/// [`certs::Written`]), or an error naming what is wrong (nothing is written then).
fn certs_command(command: &cli::CertsCommand, format: OutputFormat) -> Result<Output> {
    let now = Utc::now();
    let mut notice = None;
    let written = match command {
        cli::CertsCommand::Init(args) => certs::init(
            &args.dir,
            &args.sans,
            certs::Validity::days(now, args.ca_days)?,
            certs::Validity::days(now, args.days)?,
        )?,
        cli::CertsCommand::Issue(args) => {
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
    let stdout = match format {
        OutputFormat::Json => certs::render_json(&written),
        OutputFormat::Table | OutputFormat::Csv => certs::render_table(&written),
    };
    Ok(Output {
        stdout,
        notice,
        failed: false,
    })
}

/// `rules check FILE`: the file's rules, or why it does not validate: on stderr, or with
/// `-o json` as `{"file", "ok": false, "error"}` on stdout. A file that cannot be read fails the
/// same way.
fn rules_check(args: &RulesCheckArgs, format: OutputFormat) -> Output {
    let file = args.file.display().to_string();
    match (check_rules_file(&args.file, &file), format) {
        (Ok(rules), format) => Output {
            stdout: render::render_rules_ok(&file, &rules, format),
            notice: None,
            failed: false,
        },
        (Err(error), OutputFormat::Json) => Output {
            stdout: render::render_rules_error_json(&file, &error),
            notice: None,
            failed: true,
        },
        (Err(error), OutputFormat::Table | OutputFormat::Csv) => Output {
            stdout: String::new(),
            notice: Some(error),
            failed: true,
        },
    }
}

/// The rules of the file at `path` (`file` names it in messages), or every problem with it, one
/// per line.
fn check_rules_file(path: &std::path::Path, file: &str) -> Result<Vec<render::RuleLine>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read rules file {file}: {e}"))?;
    let rules = fleet_rules::parse_rules(&text, file).map_err(|e| e.to_string())?;
    Ok(rules
        .rules()
        .iter()
        .map(|rule| render::RuleLine {
            name: rule.name.clone(),
            kind: rule.kind().as_str().to_owned(),
            cluster: rule.cluster.clone(),
            for_: rule.hold_for,
        })
        .collect())
}

fn show_until(until: Option<DateTime<Utc>>) -> String {
    until.map_or_else(|| "now".to_owned(), show_time)
}

fn show_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-25T22:10:03Z".parse().unwrap()
    }

    fn sar_args(args: &[&str]) -> SarArgs {
        let all = ["fleetctl", "sar"].into_iter().chain(args.iter().copied());
        match Cli::try_parse_from(all).unwrap().command {
            Command::Sar(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sar_plan_defaults_to_the_last_ten_minutes_until_now() {
        let plan =
            SarPlan::new(&sar_args(&["-q", "--host", "web-1", "--host", "b2"]), now()).unwrap();
        assert_eq!(plan.schema.activity, Activity::Load);
        assert_eq!(
            plan.query,
            SarQuery {
                activity: Activity::Load as i32,
                hosts: vec!["web-1".into(), "b2".into()],
                cluster: String::new(),
                since_ms: now().timestamp_millis() - 600_000,
                until_ms: 0,
            }
        );
        assert!(!plan.only_all_cpus);
    }

    #[test]
    fn sar_plan_with_explicit_range_and_cluster() {
        let args = sar_args(&[
            "-n",
            "EDEV",
            "--cluster",
            "prod",
            "--since",
            "2026-11-25T20:00:00Z",
            "--until",
            "1h",
        ]);
        let plan = SarPlan::new(&args, now()).unwrap();
        assert_eq!(plan.query.activity, Activity::NetEdev as i32);
        assert_eq!(plan.query.cluster, "prod");
        assert_eq!(
            plan.query.since_ms,
            "2026-11-25T20:00:00Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(plan.query.until_ms, now().timestamp_millis() - 3_600_000);
    }

    #[test]
    fn sar_plan_rejects_an_empty_range() {
        let err = SarPlan::new(
            &sar_args(&["-u", "--host", "a", "--since", "1h", "--until", "2h"]),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--since 2026-11-25T21:10:03Z is not before --until 2026-11-25T20:10:03Z"
        );
        let err = SarPlan::new(
            &sar_args(&["-u", "--host", "a", "--since", "2027-01-01T00:00:00Z"]),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--since 2027-01-01T00:00:00Z is not before --until now"
        );
    }

    fn row(time_ms: i64, instance: &str) -> SarRow {
        SarRow {
            host_id: "a1".into(),
            hostname: "web-1".into(),
            time_ms,
            interval_ms: 10_000,
            instance: instance.into(),
            values: vec![0.0; 6],
        }
    }

    #[test]
    fn dash_u_shows_all_and_dash_p_all_every_cpu() {
        let rows = vec![
            row(2, "1"),
            row(2, "all"),
            row(1, "0"),
            row(1, "all"),
            row(1, "1"),
        ];
        let plan = SarPlan::new(&sar_args(&["-u", "--host", "a"]), now()).unwrap();
        let shown: Vec<(i64, String)> = plan
            .select(rows.clone())
            .into_iter()
            .map(|r| (r.time_ms, r.instance))
            .collect();
        assert_eq!(shown, [(1, "all".to_owned()), (2, "all".to_owned())]);

        let plan = SarPlan::new(&sar_args(&["-u", "-P", "ALL", "--host", "a"]), now()).unwrap();
        let shown: Vec<String> = plan.select(rows).into_iter().map(|r| r.instance).collect();
        assert_eq!(shown, ["all", "0", "1", "all", "1"]);
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let err = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing to stdout");
        assert!(is_broken_pipe(&err));
        let err = anyhow::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    }

    #[test]
    fn error_message_says_repeated_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error: {0}")]
        struct Wrapper(#[source] io::Error);
        let inner = io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused");
        let err = anyhow::Error::from(Wrapper(inner)).context("cannot reach collector at URL");
        assert_eq!(
            error_message(&err),
            "cannot reach collector at URL: tcp connect error: Connection refused"
        );
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_message(&err), "outer: inner");
    }

    #[tokio::test]
    async fn settings_errors_come_before_any_connection() {
        let cli = Cli::try_parse_from(["fleetctl", "--collector", "http://127.0.0.1:1", "hosts"])
            .unwrap();
        let err = execute(cli).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("plaintext http:// needs --insecure"),
            "{err:#}"
        );

        // A sar mistake is reported without contacting the (absent) collector.
        let cli = Cli::try_parse_from([
            "fleetctl",
            "--insecure",
            "--collector",
            "http://127.0.0.1:1",
            "sar",
            "-u",
            "--host",
            "a",
            "--since",
            "1h",
            "--until",
            "2h",
        ])
        .unwrap();
        let err = execute(cli).await.unwrap_err();
        assert!(err.to_string().starts_with("--since "), "{err:#}");
    }

    fn oom_args(args: &[&str]) -> OomArgs {
        let all = ["fleetctl", "oom"].into_iter().chain(args.iter().copied());
        match Cli::try_parse_from(all).unwrap().command {
            Command::Oom(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oom_plan_defaults_to_the_last_day_of_every_host() {
        let plan = OomPlan::new(&oom_args(&[]), now()).unwrap();
        assert_eq!(
            plan.query,
            OomQuery {
                hosts: Vec::new(),
                cluster: String::new(),
                since_ms: now().timestamp_millis() - 86_400_000,
                until_ms: 0,
                limit: 1000,
            }
        );
        let args = oom_args(&[
            "--host",
            "db-1",
            "--cluster",
            "prod",
            "--since",
            "2026-11-25T20:00:00Z",
            "--until",
            "10m",
            "--limit",
            "20",
        ]);
        let plan = OomPlan::new(&args, now()).unwrap();
        assert_eq!(plan.query.hosts, ["db-1"]);
        assert_eq!(plan.query.cluster, "prod");
        assert_eq!(
            plan.query.since_ms,
            "2026-11-25T20:00:00Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(plan.query.until_ms, now().timestamp_millis() - 600_000);
        assert_eq!(plan.query.limit, 20);
        let err = OomPlan::new(&oom_args(&["--since", "1h", "--until", "1d"]), now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--since 2026-11-25T21:10:03Z is not before --until 2026-11-24T22:10:03Z"
        );
    }

    #[test]
    fn oom_notices() {
        let plan = OomPlan::new(&oom_args(&["--limit", "2"]), now()).unwrap();
        assert_eq!(
            plan.notice(0, OutputFormat::Table).as_deref(),
            Some("no OOM kills from 2026-11-24T22:10:03Z to now")
        );
        // An empty JSON array or CSV header says as much.
        assert_eq!(plan.notice(0, OutputFormat::Json), None);
        assert_eq!(plan.notice(1, OutputFormat::Table), None);
        // A cut listing is said in every format.
        for format in [OutputFormat::Table, OutputFormat::Json, OutputFormat::Csv] {
            assert_eq!(
                plan.notice(2, format).as_deref(),
                Some(
                    "showing the newest 2 kills only; raise --limit or narrow --since/--until \
                     for the rest"
                )
            );
        }
    }

    #[tokio::test]
    async fn oom_mistakes_come_before_any_connection() {
        let run = |args: &[&str]| {
            let all = [
                "fleetctl",
                "--insecure",
                "--collector",
                "http://127.0.0.1:1",
            ];
            execute(Cli::try_parse_from(all.iter().chain(args)).unwrap())
        };
        let err = run(&["oom", "show", "x", "-o", "csv"]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "`oom show` prints several tables and has no CSV form: use -o table or -o json"
        );
        let err = run(&["oom", "--since", "1h", "--until", "2h"])
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("--since "), "{err:#}");
    }

    fn rules_file(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path.display().to_string())
    }

    const GOOD_RULES: &str = r#"
[[rule]]
name = "prod-clock-skew"
kind = "clock_skew"
cluster = "prod"
threshold_ms = 100
for = "5s"

[[rule]]
name = "silent"
kind = "host_silent"
for = "1m"
"#;

    #[tokio::test]
    async fn rules_check_needs_no_collector_settings() {
        // The default collector is https:// without a CA, which no other command accepts.
        let (_dir, path) = rules_file(GOOD_RULES);
        let cli = Cli::try_parse_from(["fleetctl", "rules", "check", &path]).unwrap();
        let out = execute(cli).await.unwrap();
        assert!(!out.failed);
        assert_eq!(out.notice, None);
        assert_eq!(
            out.stdout,
            format!(
                "{path}: 2 rules OK\n  \
                 prod-clock-skew   clock_skew    prod           for 5s\n  \
                 silent            host_silent   all clusters   for 1m\n"
            )
        );
    }

    #[tokio::test]
    async fn rules_check_output_format_comes_from_the_config_file_too() {
        let (dir, path) = rules_file("[[rule]]\nname = \"x\"\nkind = \"nope\"\n");
        let config = dir.path().join("fleetctl.toml");
        std::fs::write(&config, "output = \"json\"\n").unwrap();
        let config = config.display().to_string();
        let cli = Cli::try_parse_from(["fleetctl", "--config", &config, "rules", "check", &path])
            .unwrap();
        let out = execute(cli).await.unwrap();
        assert!(out.failed);
        assert_eq!(out.notice, None);
        let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(value["ok"], false);
        assert_eq!(value["file"], path.as_str());
        let error = value["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("{path}: rule \"x\": kind: ")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn rules_check_of_a_missing_file_fails_like_a_bad_one() {
        let cli =
            Cli::try_parse_from(["fleetctl", "rules", "check", "/nonexistent/rules.toml"]).unwrap();
        let out = execute(cli).await.unwrap();
        assert!(out.failed);
        assert_eq!(out.stdout, "");
        let notice = out.notice.unwrap();
        assert!(
            notice.starts_with("cannot read rules file /nonexistent/rules.toml: "),
            "{notice}"
        );
    }
}
