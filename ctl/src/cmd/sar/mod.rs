//! `fleetctl sar`: one or more activities of one or more hosts over a time range
//! (`Query.QuerySar`, one call per activity, all in parallel), as sysstat's sar prints them.
//!
//! ```text
//! fleetctl sar [-u [-P ALL]] [-r] [-S] [-W] [-B] [-b] [-d] [-q [CPU|IO|MEM]] [-n DEV|EDEV ...]
//!              (--host H ... | --cluster C) [--since T] [--until T] [--plot FILE.svg|-]
//! ```
//!
//! With `--plot`, the same rows are drawn as one SVG instead (the `plot` module).
//!
//! Clap checks the arguments: at least one activity (an [`ArgGroup`]; `-q` once, `-n` repeatable
//! and also `-n DEV,EDEV`), `-P ALL` only with `-u`, at least one of `--host`/`--cluster`,
//! well-formed times; `SarPlan` checks the range. Whatever the order of the flags, the activities
//! are shown in the order sysstat's sar prints them ([`SAR_ORDER`]). The table is sar's, per
//! host, with 24-hour UTC times; with several activities each host's header line is followed by
//! one table per activity, separated by a blank line, as `sar -u -r -f FILE` prints them:
//!
//! ```text
//! Linux 6.1.0-18-amd64 (web-1)  4f3c9a0e  cluster prod  2026-11-25 UTC
//!
//! 22:10:03          CPU     %user     %nice   %system   %iowait    %steal     %idle
//! 22:10:13          all      2.51      0.00      1.00      0.10      0.00     96.39
//! 22:10:23          all      3.49      0.00      1.00      0.30      0.00     95.21
//! Average:          all      3.00      0.00      1.00      0.20      0.00     95.80
//!
//! 22:10:03    kbmemfree   kbavail kbmemused  %memused ...
//! ```
//!
//! The rendering, for every format, is in the `render` module ([`render_activities`]). In
//! short: the table as above; JSON an array of rows keyed by sysstat's column names, with
//! several activities the rows of each activity in turn, each row then also keyed `activity`;
//! CSV one block per activity, each with its own header line, blocks separated by an empty line.
//! With one activity the output is what it was before several could be asked for, byte for
//! byte. `oom show` prints its evidence with `sar_body` and `SarJsonRow`.

mod plot;
mod render;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, ValueEnum};
use fleet_proto::schema::{schema, ActivitySchema};
use fleet_proto::v1::{Activity, ListHostsRequest, SarQuery, SarRow};
use futures::future::try_join_all;

use super::{Context, Run};
use crate::output::{show_time, show_until, OutputFormat};
use crate::timearg::{self, TimeArg};
use crate::Output;

pub use render::{render, render_activities, sar_keys};
pub(crate) use render::{sar_body, sort_sar_rows, SarJsonRow};

/// How far back `sar` looks without `--since`.
pub(crate) const DEFAULT_SINCE: TimeArg = TimeArg::Ago(std::time::Duration::from_secs(10 * 60));

/// The order in which sysstat's sar prints the activities Fleet has, whatever the order of the
/// flags: the order of sysstat's activity list (`act[]` in its `activity.c`: CPU, swapping,
/// paging, I/O, memory then swap space, queue, disks, network, pressure stall last).
pub const SAR_ORDER: [Activity; 13] = [
    Activity::Cpu,
    Activity::Swapping,
    Activity::Paging,
    Activity::Io,
    Activity::Memory,
    Activity::Swap,
    Activity::Load,
    Activity::Disk,
    Activity::NetDev,
    Activity::NetEdev,
    Activity::PsiCpu,
    Activity::PsiIo,
    Activity::PsiMem,
];

/// `fleetctl sar`: one or more activities per call, chosen by sar's own option letters.
#[derive(Debug, Clone, Default, Args)]
#[command(
    next_help_heading = "Activity (one or more; shown in sar's order)",
    group(
        ArgGroup::new("activity")
            .required(true)
            .multiple(true)
            .args(["cpu", "memory", "swap", "swapping", "paging", "io", "disk", "queue", "network"])
    ),
    group(ArgGroup::new("target").required(true).multiple(true).args(["hosts", "cluster"])),
    after_help = timearg::HELP
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
    /// Network interface statistics (DEV) or errors (EDEV); repeatable, or DEV,EDEV
    #[arg(
        short = 'n',
        value_enum,
        value_name = "DEV|EDEV",
        ignore_case = true,
        value_delimiter = ','
    )]
    pub network: Vec<Network>,
    /// With -u: every CPU, not only "all"
    #[arg(
        short = 'P',
        value_enum,
        value_name = "ALL",
        ignore_case = true,
        requires = "cpu"
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
    /// Downsample into buckets of STEP (10s, 1m, 1h): the table shows each bucket's mean, JSON
    /// and CSV its min, max, mean and count (see `sar_step`); one activity per call
    #[arg(
        long,
        value_name = "STEP",
        value_parser = super::sar_step::parse_step,
        help_heading = "Hosts and time",
        conflicts_with = "plot"
    )]
    pub step: Option<std::time::Duration>,

    /// Draw the activities as one SVG file (`-`: stdout), a panel per column group as sadf -g
    #[arg(long, value_name = "FILE.svg", help_heading = "Output")]
    pub plot: Option<std::path::PathBuf>,
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

/// A [`SarArgs`] that clap would have refused. Clap rules these out for parsed arguments; they
/// can only come from a `SarArgs` built in code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivityChoiceError {
    #[error(
        "no activity chosen: pass one or more of -u -r -S -W -B -b -d -q [CPU|IO|MEM] -n DEV|EDEV"
    )]
    None,
    #[error("-P ALL is for -u: pass -u with it")]
    AllCpusWithoutCpu,
}

impl SarArgs {
    /// The activities these arguments choose, each once, in [`SAR_ORDER`].
    ///
    /// # Errors
    ///
    /// [`ActivityChoiceError`] if none is chosen, or `-P ALL` without `-u`.
    pub fn activities(&self) -> Result<Vec<Activity>, ActivityChoiceError> {
        if self.per_cpu.is_some() && !self.cpu {
            return Err(ActivityChoiceError::AllCpusWithoutCpu);
        }
        let queue = self.queue.map(|q| match q {
            None => Activity::Load,
            Some(Pressure::Cpu) => Activity::PsiCpu,
            Some(Pressure::Io) => Activity::PsiIo,
            Some(Pressure::Mem) => Activity::PsiMem,
        });
        let network = self.network.iter().map(|n| match n {
            Network::Dev => Activity::NetDev,
            Network::Edev => Activity::NetEdev,
        });
        let chosen: Vec<Activity> = [
            self.cpu.then_some(Activity::Cpu),
            self.memory.then_some(Activity::Memory),
            self.swap.then_some(Activity::Swap),
            self.swapping.then_some(Activity::Swapping),
            self.paging.then_some(Activity::Paging),
            self.io.then_some(Activity::Io),
            self.disk.then_some(Activity::Disk),
            queue,
        ]
        .into_iter()
        .flatten()
        .chain(network)
        .collect();
        let ordered: Vec<Activity> = SAR_ORDER
            .into_iter()
            .filter(|a| chosen.contains(a))
            .collect();
        if ordered.is_empty() {
            return Err(ActivityChoiceError::None);
        }
        Ok(ordered)
    }

    /// Whether every CPU is shown (`-P ALL`) rather than only the "all" line.
    pub fn all_cpus(&self) -> bool {
        self.per_cpu.is_some()
    }
}

impl Run for SarArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        if let Some(step) = self.step {
            return super::sar_step::run(&self, step, ctx).await;
        }
        let now = Utc::now();
        let plan = SarPlan::new(&self, now)?;
        let collector = ctx.connect().await?;
        if let Some(target) = &self.plot {
            return plot::plot(&plan, &collector, target, now).await;
        }
        let collector = &collector;
        // One QuerySar per activity, in parallel.
        let sar = try_join_all(plan.sections.iter().map(|section| {
            let query = section.query.clone();
            collector.query("QuerySar", async |c| c.query_sar(query).await)
        }));
        let (answers, hosts) = if ctx.format == OutputFormat::Table {
            // The table's header lines need each host's kernel and cluster: one ListHosts, in
            // parallel with the QuerySar calls.
            let request = ListHostsRequest {
                cluster: plan.cluster().to_owned(),
            };
            let hosts = collector.query("ListHosts", async |c| c.list_hosts(request).await);
            let (sar, hosts) = tokio::try_join!(sar, hosts)?;
            (sar, hosts.hosts)
        } else {
            (sar.await?, Vec::new())
        };
        let rows: Vec<Vec<SarRow>> = plan
            .sections
            .iter()
            .zip(answers)
            .map(|(section, answer)| section.select(answer.rows))
            .collect();
        let notice = (ctx.format == OutputFormat::Table)
            .then(|| plan.notice(&rows))
            .flatten();
        let sections: Vec<(&ActivitySchema, &[SarRow])> = plan
            .sections
            .iter()
            .zip(&rows)
            .map(|(section, rows)| (section.schema, rows.as_slice()))
            .collect();
        Ok(Output::print(render_activities(&sections, &hosts, ctx.format)).with_notice(notice))
    }
}

/// A `sar` invocation checked and turned into its queries, before anything is contacted.
#[derive(Debug, Clone, PartialEq)]
struct SarPlan {
    /// One per activity, in [`SAR_ORDER`]; never empty.
    sections: Vec<SectionPlan>,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

/// One activity of a [`SarPlan`]: its query and which of its rows are shown.
#[derive(Debug, Clone, PartialEq)]
struct SectionPlan {
    schema: &'static ActivitySchema,
    query: SarQuery,
    /// `-u` without `-P ALL`: keep only the "all" line, as sar does.
    only_all_cpus: bool,
}

impl SarPlan {
    fn new(args: &SarArgs, now: DateTime<Utc>) -> Result<Self> {
        let activities = args.activities()?;
        let (since, until) = timearg::range(args.since.unwrap_or(DEFAULT_SINCE), args.until, now)?;
        let sections = activities
            .into_iter()
            .map(|activity| {
                let schema = schema(activity)
                    .with_context(|| format!("no column schema for activity {activity:?}"))?;
                Ok(SectionPlan {
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
                })
            })
            .collect::<Result<_>>()?;
        Ok(SarPlan {
            sections,
            since,
            until,
        })
    }

    /// The cluster every query is limited to (`""`: none).
    fn cluster(&self) -> &str {
        &self.sections[0].query.cluster
    }

    /// The table's notice when activities have no rows: `rows` holds each section's rows, in
    /// order. Names the flags of every activity without rows, `None` when each has some.
    fn notice(&self, rows: &[Vec<SarRow>]) -> Option<String> {
        let empty: Vec<&str> = self
            .sections
            .iter()
            .zip(rows)
            .filter(|(_, rows)| rows.is_empty())
            .map(|(section, _)| section.schema.sar_flag)
            .collect();
        (!empty.is_empty()).then(|| {
            format!(
                "no samples (sar {}) from {} to {}",
                empty.join(" "),
                show_time(self.since),
                show_until(self.until)
            )
        })
    }
}

impl SectionPlan {
    /// The rows to show, in sar's order.
    fn select(&self, mut rows: Vec<SarRow>) -> Vec<SarRow> {
        if self.only_all_cpus {
            rows.retain(|r| r.instance == "all");
        }
        sort_sar_rows(&mut rows);
        rows
    }
}

#[cfg(test)]
pub(super) mod tests {
    use clap::error::ErrorKind;

    use super::*;
    use crate::cmd::testing::{command, now, parse};
    use crate::cmd::Command;

    /// `fleetctl sar ARGS...`'s arguments.
    pub(super) fn sar_args(args: &[&str]) -> SarArgs {
        match command("sar", args) {
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
            assert_eq!(sar_args(&args).activities(), Ok(vec![*want]), "{flags:?}");
            // The activity flag may also come after the target.
            let mut args = vec!["--host", "web-1"];
            args.extend_from_slice(flags);
            assert_eq!(
                sar_args(&args).activities(),
                Ok(vec![*want]),
                "{flags:?} last"
            );
        }
    }

    #[test]
    fn bare_q_before_another_option_is_load() {
        let args = sar_args(&["-q", "--cluster", "prod"]);
        assert_eq!(args.activities(), Ok(vec![Activity::Load]));
        assert_eq!(args.cluster.as_deref(), Some("prod"));
    }

    #[test]
    fn cpu_alone_or_every_cpu() {
        let args = sar_args(&["-u", "--host", "a"]);
        assert!(!args.all_cpus());
        let args = sar_args(&["-u", "-P", "ALL", "--host", "a"]);
        assert!(args.all_cpus());
        assert_eq!(args.activities(), Ok(vec![Activity::Cpu]));
    }

    #[test]
    fn per_cpu_needs_dash_u() {
        let err = sar_error(&["-r", "-P", "ALL", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        assert!(err.to_string().contains("-u"), "{err}");
        let err = sar_error(&["-n", "DEV", "-P", "ALL", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        // Unlike sysstat's sar, -P ALL alone does not imply -u: activities are explicit.
        let err = sar_error(&["-P", "ALL", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        let err = sar_error(&["-u", "-P", "3", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err}");
        // With -u, -P ALL goes with other activities too, and applies to -u alone.
        let args = sar_args(&["-r", "-P", "ALL", "-u", "--host", "a"]);
        assert!(args.all_cpus());
        assert_eq!(args.activities(), Ok(vec![Activity::Cpu, Activity::Memory]));
    }

    #[test]
    fn no_activity_is_an_error() {
        let err = sar_error(&["--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        assert!(err.to_string().contains("-u"), "{err}");
    }

    #[test]
    fn several_activities_come_in_sars_order() {
        let cases: &[(&[&str], &[Activity])] = &[
            (&["-u", "-r"], &[Activity::Cpu, Activity::Memory]),
            (&["-r", "-u"], &[Activity::Cpu, Activity::Memory]),
            (&["-S", "-r"], &[Activity::Memory, Activity::Swap]),
            (&["-q", "-n", "DEV"], &[Activity::Load, Activity::NetDev]),
            (&["-d", "-q", "CPU"], &[Activity::Disk, Activity::PsiCpu]),
            (&["-b", "-B"], &[Activity::Paging, Activity::Io]),
            (
                &["-n", "EDEV", "-n", "DEV", "-q", "MEM", "-W"],
                &[
                    Activity::Swapping,
                    Activity::NetDev,
                    Activity::NetEdev,
                    Activity::PsiMem,
                ],
            ),
            (&["-n", "EDEV,DEV"], &[Activity::NetDev, Activity::NetEdev]),
            // The same activity twice is shown once.
            (&["-n", "DEV", "-n", "dev"], &[Activity::NetDev]),
            (
                &[
                    "-q", "IO", "-d", "-r", "-b", "-u", "-S", "-n", "DEV", "-W", "-B",
                ],
                &[
                    Activity::Cpu,
                    Activity::Swapping,
                    Activity::Paging,
                    Activity::Io,
                    Activity::Memory,
                    Activity::Swap,
                    Activity::Disk,
                    Activity::NetDev,
                    Activity::PsiIo,
                ],
            ),
        ];
        for (flags, want) in cases {
            let mut args = flags.to_vec();
            args.extend(["--cluster", "prod"]);
            assert_eq!(
                sar_args(&args).activities().as_deref(),
                Ok(*want),
                "{flags:?}"
            );
        }
        // Every activity at once: SAR_ORDER itself.
        let all = sar_args(&[
            "-n", "DEV,EDEV", "-q", "-d", "-b", "-B", "-W", "-S", "-r", "-u", "--host", "a",
        ]);
        let mut want: Vec<Activity> = SAR_ORDER.to_vec();
        want.retain(|a| !matches!(a, Activity::PsiCpu | Activity::PsiIo | Activity::PsiMem));
        assert_eq!(all.activities(), Ok(want));
    }

    #[test]
    fn sar_order_has_every_activity_once() {
        let mut order: Vec<Activity> = SAR_ORDER.to_vec();
        let mut every: Vec<Activity> = fleet_proto::schema::ACTIVITIES
            .iter()
            .map(|s| s.activity)
            .collect();
        order.sort_by_key(|a| *a as i32);
        every.sort_by_key(|a| *a as i32);
        assert_eq!(order, every);
    }

    #[test]
    fn q_is_given_once() {
        let err = sar_error(&["-q", "-q", "CPU", "--host", "a"]);
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict, "{err}");
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
            SarArgs::default().activities(),
            Err(ActivityChoiceError::None)
        );
        let per_cpu_alone = SarArgs {
            memory: true,
            per_cpu: Some(AllCpus::All),
            ..SarArgs::default()
        };
        assert_eq!(
            per_cpu_alone.activities(),
            Err(ActivityChoiceError::AllCpusWithoutCpu)
        );
        let several = SarArgs {
            queue: Some(Some(Pressure::Io)),
            cpu: true,
            ..SarArgs::default()
        };
        assert_eq!(
            several.activities(),
            Ok(vec![Activity::Cpu, Activity::PsiIo])
        );
    }

    #[test]
    fn sar_needs_a_host_or_a_cluster() {
        let err = sar_error(&["-u"]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{err}");
        let args = sar_args(&["-u", "--host", "a", "--host", "b", "--cluster", "prod"]);
        assert_eq!(args.hosts, ["a", "b"]);
        assert_eq!(args.cluster.as_deref(), Some("prod"));
    }

    #[test]
    fn sar_time_range() {
        let args = sar_args(&[
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
    fn sar_plan_defaults_to_the_last_ten_minutes_until_now() {
        let plan =
            SarPlan::new(&sar_args(&["-q", "--host", "web-1", "--host", "b2"]), now()).unwrap();
        assert_eq!(plan.sections[0].schema.activity, Activity::Load);
        assert_eq!(
            plan.sections[0].query,
            SarQuery {
                activity: Activity::Load as i32,
                hosts: vec!["web-1".into(), "b2".into()],
                cluster: String::new(),
                since_ms: now().timestamp_millis() - 600_000,
                until_ms: 0,
            }
        );
        assert!(!plan.sections[0].only_all_cpus);
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
        assert_eq!(plan.sections[0].query.activity, Activity::NetEdev as i32);
        assert_eq!(plan.sections[0].query.cluster, "prod");
        assert_eq!(
            plan.sections[0].query.since_ms,
            "2026-11-25T20:00:00Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            plan.sections[0].query.until_ms,
            now().timestamp_millis() - 3_600_000
        );
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

    fn cpu_row(time_ms: i64, instance: &str) -> SarRow {
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
            cpu_row(2, "1"),
            cpu_row(2, "all"),
            cpu_row(1, "0"),
            cpu_row(1, "all"),
            cpu_row(1, "1"),
        ];
        let plan = SarPlan::new(&sar_args(&["-u", "--host", "a"]), now()).unwrap();
        let shown: Vec<(i64, String)> = plan.sections[0]
            .select(rows.clone())
            .into_iter()
            .map(|r| (r.time_ms, r.instance))
            .collect();
        assert_eq!(shown, [(1, "all".to_owned()), (2, "all".to_owned())]);

        let plan = SarPlan::new(&sar_args(&["-u", "-P", "ALL", "--host", "a"]), now()).unwrap();
        let shown: Vec<String> = plan.sections[0]
            .select(rows)
            .into_iter()
            .map(|r| r.instance)
            .collect();
        assert_eq!(shown, ["all", "0", "1", "all", "1"]);
    }

    #[test]
    fn sar_plan_has_one_query_per_activity_in_sars_order() {
        let args = sar_args(&["-r", "-u", "-n", "DEV", "--cluster", "prod", "--host", "w1"]);
        let plan = SarPlan::new(&args, now()).unwrap();
        let activities: Vec<Activity> = plan.sections.iter().map(|s| s.schema.activity).collect();
        assert_eq!(
            activities,
            [Activity::Cpu, Activity::Memory, Activity::NetDev]
        );
        for (section, activity) in plan.sections.iter().zip(activities) {
            assert_eq!(
                section.query,
                SarQuery {
                    activity: activity as i32,
                    hosts: vec!["w1".into()],
                    cluster: "prod".into(),
                    since_ms: now().timestamp_millis() - 600_000,
                    until_ms: 0,
                }
            );
            // Only -u keeps its "all" line alone.
            assert_eq!(section.only_all_cpus, activity == Activity::Cpu);
        }
        assert_eq!(plan.cluster(), "prod");
        let plan =
            SarPlan::new(&sar_args(&["-r", "-u", "-P", "ALL", "--host", "a"]), now()).unwrap();
        assert!(plan.sections.iter().all(|s| !s.only_all_cpus));
        assert_eq!(plan.cluster(), "");
    }

    #[test]
    fn notice_names_every_flag_without_rows() {
        let args = sar_args(&["-u", "-q", "CPU", "-r", "--host", "a", "--since", "1h"]);
        let plan = SarPlan::new(&args, now()).unwrap();
        let some = vec![cpu_row(1, "all")];
        assert_eq!(
            plan.notice(&[vec![], vec![], vec![]]).as_deref(),
            Some("no samples (sar -u -r -q CPU) from 2026-11-25T21:10:03Z to now")
        );
        assert_eq!(
            plan.notice(&[some.clone(), vec![], some.clone()])
                .as_deref(),
            Some("no samples (sar -r) from 2026-11-25T21:10:03Z to now")
        );
        assert_eq!(plan.notice(&[some.clone(), some.clone(), some]), None);
    }
}
