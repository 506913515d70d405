//! `fleetctl sar`: one activity of one or more hosts over a time range (`Query.QuerySar`), as
//! sysstat's sar prints it.
//!
//! ```text
//! fleetctl sar -u|-r|-S|-W|-B|-b|-d|-q [CPU|IO|MEM]|-n DEV|EDEV [-P ALL]
//!              (--host H ... | --cluster C) [--since T] [--until T]
//! ```
//!
//! Clap checks the arguments: exactly one activity (an [`ArgGroup`]), `-P ALL` only with `-u`, at
//! least one of `--host`/`--cluster`, well-formed times; `SarPlan` checks the range. The table
//! is sar's, per host, with 24-hour UTC times:
//!
//! ```text
//! Linux 6.1.0-18-amd64 (web-1)  4f3c9a0e  cluster prod  2026-11-25 UTC
//!
//! 22:10:03          CPU     %user     %nice   %system   %iowait    %steal     %idle
//! 22:10:13          all      2.51      0.00      1.00      0.10      0.00     96.39
//! 22:10:23          all      3.49      0.00      1.00      0.30      0.00     95.21
//! Average:          all      3.00      0.00      1.00      0.20      0.00     95.80
//! ```
//!
//! As in sar, the column header line carries the start of the first interval, numbers have two
//! decimals except the schema's integer columns, and `Average:` lines give, per instance, the
//! mean over the rows shown. JSON: an array of rows keyed `host_id`, `hostname`, `time` (RFC 3339
//! UTC), the instance column (`CPU`, `DEV`, `IFACE`) where sar prints one, then the sysstat
//! column names (`%user`, `kbmemfree`, ...) with numeric values (`null` for a value that is not
//! a finite number); CSV the same keys ([`sar_keys`]). `oom show` prints its evidence with
//! `sar_body` and `SarJsonRow`.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, ValueEnum};
use fleet_proto::schema::{schema, ActivitySchema};
use fleet_proto::v1::{Activity, HostIdentity, HostInfo, ListHostsRequest, SarQuery, SarRow};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::{Context, Run};
use crate::output::{
    csv_line, dash, day, hms, json, printable, rfc3339_ms, show_time, show_until, OutputFormat,
};
use crate::timearg::{self, TimeArg};
use crate::Output;

/// How far back `sar` looks without `--since`.
pub(crate) const DEFAULT_SINCE: TimeArg = TimeArg::Ago(std::time::Duration::from_secs(10 * 60));
/// Width of sar's time column (`%-11s` in sysstat).
const SAR_TIME_WIDTH: usize = 11;
/// Narrowest sar value column (`%9s` in sysstat); wider values widen their column.
const SAR_MIN_WIDTH: usize = 9;

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
    /// Downsample into buckets of STEP (10s, 1m, 1h): the table shows each bucket's mean, JSON
    /// and CSV its min, max, mean and count (see `sar_step`)
    #[arg(
        long,
        value_name = "STEP",
        value_parser = super::sar_step::parse_step,
        help_heading = "Hosts and time"
    )]
    pub step: Option<std::time::Duration>,
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

impl Run for SarArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        if let Some(step) = self.step {
            return super::sar_step::run(&self, step, ctx).await;
        }
        let plan = SarPlan::new(&self, Utc::now())?;
        let collector = ctx.connect().await?;
        let query = plan.query.clone();
        let sar = collector.query("QuerySar", async |c| c.query_sar(query).await);
        let (rows, hosts) = if ctx.format == OutputFormat::Table {
            // The table's header lines need each host's kernel and cluster: one ListHosts, in
            // parallel.
            let request = ListHostsRequest {
                cluster: plan.query.cluster.clone(),
            };
            let hosts = collector.query("ListHosts", async |c| c.list_hosts(request).await);
            let (sar, hosts) = tokio::try_join!(sar, hosts)?;
            (sar.rows, hosts.hosts)
        } else {
            (sar.await?.rows, Vec::new())
        };
        let rows = plan.select(rows);
        let notice = (rows.is_empty() && ctx.format == OutputFormat::Table).then(|| {
            format!(
                "no samples (sar {}) from {} to {}",
                plan.schema.sar_flag,
                show_time(plan.since),
                show_until(plan.until)
            )
        });
        Ok(Output::print(render(plan.schema, &rows, &hosts, ctx.format)).with_notice(notice))
    }
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
        let (since, until) = timearg::range(args.since.unwrap_or(DEFAULT_SINCE), args.until, now)?;
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
        sort_sar_rows(&mut rows);
        rows
    }
}

/// Sorts rows by hostname, host id, time, then instance in sar's order: `all` first, CPU numbers
/// numerically, then names.
pub(crate) fn sort_sar_rows(rows: &mut [SarRow]) {
    rows.sort_by(|a, b| {
        (
            &a.hostname,
            &a.host_id,
            a.time_ms,
            instance_key(&a.instance),
        )
            .cmp(&(
                &b.hostname,
                &b.host_id,
                b.time_ms,
                instance_key(&b.instance),
            ))
    });
}

fn instance_key(instance: &str) -> (u8, u64, &str) {
    match instance {
        "all" => (0, 0, ""),
        _ => match instance.parse::<u64>() {
            Ok(n) => (1, n, ""),
            Err(_) => (2, 0, instance),
        },
    }
}

/// Renders `fleetctl sar` rows of one activity. `hosts` supplies the kernel and cluster for the
/// table's per-host header line; a host missing from it is shown with what its rows carry.
pub fn render(
    schema: &ActivitySchema,
    rows: &[SarRow],
    hosts: &[HostInfo],
    format: OutputFormat,
) -> String {
    match format {
        OutputFormat::Json => json(
            &rows
                .iter()
                .map(|row| SarJsonRow { schema, row })
                .collect::<Vec<_>>(),
        ),
        OutputFormat::Csv => sar_csv(schema, rows),
        OutputFormat::Table => sar_table(schema, rows, hosts),
    }
}

/// The keys of a sar row, in order: the fixed ones, the instance column, the schema's columns.
pub fn sar_keys(schema: &ActivitySchema) -> Vec<&'static str> {
    let mut keys = vec!["host_id", "hostname", "time"];
    keys.extend(schema.instance_column);
    keys.extend_from_slice(schema.columns);
    keys
}

/// One row as `-o json` shows it, keyed [`sar_keys`].
pub(crate) struct SarJsonRow<'a> {
    pub(crate) schema: &'a ActivitySchema,
    pub(crate) row: &'a SarRow,
}

impl Serialize for SarJsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (schema, row) = (self.schema, self.row);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("host_id", &row.host_id)?;
        map.serialize_entry("hostname", &row.hostname)?;
        map.serialize_entry("time", &rfc3339_ms(row.time_ms))?;
        if let Some(column) = schema.instance_column {
            map.serialize_entry(column, &row.instance)?;
        }
        for (i, column) in schema.columns.iter().enumerate() {
            let value = row.values.get(i).copied().unwrap_or(f64::NAN);
            map.serialize_entry(column, &json_number(value, schema.is_integer(column)))?;
        }
        map.end()
    }
}

/// A value as a JSON number: integer columns without a fraction as integers, anything not finite
/// as `null`.
fn json_number(value: f64, integer: bool) -> serde_json::Value {
    // 2^53: beyond it an f64 no longer holds every integer.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if integer && value.fract() == 0.0 && value.abs() <= EXACT {
        serde_json::Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into)
    }
}

fn sar_csv(schema: &ActivitySchema, rows: &[SarRow]) -> String {
    let mut out = csv_line(sar_keys(schema));
    for row in rows {
        let mut fields = vec![
            row.host_id.clone(),
            row.hostname.clone(),
            rfc3339_ms(row.time_ms).unwrap_or_default(),
        ];
        if schema.instance_column.is_some() {
            fields.push(row.instance.clone());
        }
        for i in 0..schema.columns.len() {
            fields.push(match row.values.get(i) {
                // Display of f64 is the shortest text that reads back as the same number.
                Some(v) if v.is_finite() => v.to_string(),
                _ => String::new(),
            });
        }
        out.push_str(&csv_line(&fields));
    }
    out
}

fn sar_table(schema: &ActivitySchema, rows: &[SarRow], hosts: &[HostInfo]) -> String {
    let info: HashMap<&str, &HostIdentity> = hosts
        .iter()
        .filter_map(|h| h.identity.as_ref())
        .map(|id| (id.host_id.as_str(), id))
        .collect();
    let mut out = String::new();
    for (i, group) in group_by_host(rows).iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&sar_host_block(
            schema,
            group,
            info.get(group[0].host_id.as_str()),
        ));
    }
    out
}

/// Rows grouped by host id, hosts in order of first appearance.
fn group_by_host(rows: &[SarRow]) -> Vec<Vec<&SarRow>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<&SarRow>> = Vec::new();
    for row in rows {
        let i = *index.entry(&row.host_id).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(row);
    }
    groups
}

/// One host's part of the table: header line, blank line, column header, rows, averages.
fn sar_host_block(schema: &ActivitySchema, rows: &[&SarRow], id: Option<&&HostIdentity>) -> String {
    let first = rows[0];
    let last = rows[rows.len() - 1];
    let hostname = id.map_or(first.hostname.as_str(), |id| &id.hostname);
    let kernel = id.map_or("", |id| &id.kernel);
    let cluster = id.map_or("", |id| &id.cluster);
    let (first_day, last_day) = (day(first.time_ms), day(last.time_ms));
    let days = if first_day == last_day {
        first_day
    } else {
        format!("{first_day}..{last_day}")
    };
    let mut out = format!(
        "Linux {} ({})  {}  cluster {}  {days} UTC\n\n",
        dash(kernel),
        dash(hostname),
        dash(&first.host_id),
        dash(cluster)
    );
    out.push_str(&sar_body(schema, rows));
    out
}

/// The part of a sar table under the header line: the column header (at the start of the first
/// interval), the rows, the `Average:` lines. `rows` must not be empty.
pub(crate) fn sar_body(schema: &ActivitySchema, rows: &[&SarRow]) -> String {
    let first = rows[0];
    let mut out = String::new();

    // Cells: the time column, then the instance column if any, then the values.
    let value_cell = |column: &str, value: Option<f64>| match value {
        Some(v) if v.is_finite() && schema.is_integer(column) => format!("{v:.0}"),
        Some(v) if v.is_finite() => format!("{v:.2}"),
        _ => "-".to_owned(),
    };
    let mut lines: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 2);
    let mut header = vec![hms(first.time_ms - i64::from(first.interval_ms))];
    header.extend(schema.instance_column.map(String::from));
    header.extend(schema.columns.iter().map(|c| c.to_string()));
    lines.push(header);

    // Per instance, in order of first appearance: the sum and count of each column's finite values.
    let mut averages: Vec<(&str, Vec<(f64, u32)>)> = Vec::new();
    for row in rows {
        let mut line = vec![hms(row.time_ms)];
        if schema.instance_column.is_some() {
            line.push(printable(&row.instance, usize::MAX));
        }
        let slot = match averages.iter().position(|(inst, _)| *inst == row.instance) {
            Some(slot) => slot,
            None => {
                averages.push((&row.instance, vec![(0.0, 0); schema.columns.len()]));
                averages.len() - 1
            }
        };
        for (i, column) in schema.columns.iter().enumerate() {
            let value = row.values.get(i).copied();
            line.push(value_cell(column, value));
            if let Some(v) = value.filter(|v| v.is_finite()) {
                let (sum, n) = &mut averages[slot].1[i];
                *sum += v;
                *n += 1;
            }
        }
        lines.push(line);
    }
    for (instance, sums) in &averages {
        let mut line = vec!["Average:".to_owned()];
        if schema.instance_column.is_some() {
            line.push(printable(instance, usize::MAX));
        }
        for (column, (sum, n)) in schema.columns.iter().zip(sums) {
            let mean = (*n > 0).then(|| sum / f64::from(*n));
            line.push(value_cell(column, mean));
        }
        lines.push(line);
    }

    let mut widths = vec![SAR_MIN_WIDTH; lines[0].len()];
    widths[0] = SAR_TIME_WIDTH;
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for line in &lines {
        let _ = write!(out, "{:<w$}", line[0], w = widths[0]);
        for (cell, w) in line.iter().zip(&widths).skip(1) {
            let _ = write!(out, " {cell:>w$}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use fleet_proto::schema::schema;

    use super::*;
    use crate::cmd::testing::{command, host, now, parse, row, T0};
    use crate::cmd::Command;
    use crate::golden;

    /// `fleetctl sar ARGS...`'s arguments.
    fn sar_args(args: &[&str]) -> SarArgs {
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
            assert_eq!(sar_args(&args).activity(), Ok(*want), "{flags:?}");
            // The activity flag may also come after the target.
            let mut args = vec!["--host", "web-1"];
            args.extend_from_slice(flags);
            assert_eq!(sar_args(&args).activity(), Ok(*want), "{flags:?} last");
        }
    }

    #[test]
    fn bare_q_before_another_option_is_load() {
        let args = sar_args(&["-q", "--cluster", "prod"]);
        assert_eq!(args.activity(), Ok(Activity::Load));
        assert_eq!(args.cluster.as_deref(), Some("prod"));
    }

    #[test]
    fn cpu_alone_or_every_cpu() {
        let args = sar_args(&["-u", "--host", "a"]);
        assert!(!args.all_cpus());
        let args = sar_args(&["-u", "-P", "ALL", "--host", "a"]);
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

    fn cpu_rows() -> Vec<SarRow> {
        vec![
            row(
                "a1",
                "web-1",
                T0 + 10_000,
                "all",
                &[2.51, 0.0, 1.0, 0.1, 0.0, 96.39],
            ),
            row(
                "a1",
                "web-1",
                T0 + 10_000,
                "0",
                &[5.02, 0.0, 2.0, 0.2, 0.0, 92.78],
            ),
            row(
                "a1",
                "web-1",
                T0 + 20_000,
                "all",
                &[3.49, 0.0, 1.0, 0.3, 0.0, 95.21],
            ),
            row(
                "a1",
                "web-1",
                T0 + 20_000,
                "0",
                &[4.0, 0.0, 2.0, 0.0, 0.0, 94.0],
            ),
        ]
    }

    #[test]
    fn sar_cpu_table_looks_like_sar() {
        let cpu = schema(Activity::Cpu).unwrap();
        let hosts = [host("a1", "web-1", "prod", &[])];
        golden::check(
            "sar-cpu-table.txt",
            &render(cpu, &cpu_rows(), &hosts, OutputFormat::Table),
        );
    }

    #[test]
    fn sar_table_integer_columns_no_instance_and_wide_values() {
        let mem = schema(Activity::Memory).unwrap();
        let rows = [
            row(
                "a1",
                "web-1",
                T0,
                "-",
                &[
                    1000.0,
                    2000.0,
                    3000.0,
                    42.5,
                    10.0,
                    20.0,
                    12_345_678_901.0,
                    7.25,
                    1.0,
                    2.0,
                    3.0,
                ],
            ),
            row(
                "a1",
                "web-1",
                T0 + 10_000,
                "-",
                &[
                    1002.0,
                    2000.0,
                    3000.0,
                    42.0,
                    10.0,
                    20.0,
                    12_345_678_901.0,
                    7.0,
                    1.0,
                    2.0,
                    5.0,
                ],
            ),
        ];
        let text = render(mem, &rows, &[], OutputFormat::Table);
        golden::check("sar-memory-wide-table.txt", &text);
        let lines: Vec<&str> = text.lines().collect();
        // Without ListHosts data the header falls back to the row's hostname.
        assert_eq!(lines[0], "Linux - (web-1)  a1  cluster -  2026-11-25 UTC");
        assert_eq!(lines[1], "");
        assert!(
            lines[2].starts_with("22:09:53    kbmemfree   kbavail kbmemused  %memused"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("22:10:03         1000      2000      3000     42.50"),
            "{text}"
        );
        // kbcommit is wider than 9: its column widens, and stays right-aligned.
        assert!(lines[2].contains("kbcached    kbcommit"), "{text}");
        assert!(lines[3].contains(" 12345678901 "), "{text}");
        // Averages of integer columns have no decimals, like sar's.
        assert!(
            lines[5].starts_with("Average:         1001      2000      3000     42.25"),
            "{text}"
        );
        assert!(lines[5].ends_with("         4"), "{text}");
        assert_eq!(lines.len(), 6);
        let widths: Vec<usize> = lines[2..].iter().map(|l| l.len()).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{text}");
    }

    #[test]
    fn sar_table_one_block_per_host() {
        let load = schema(Activity::Load).unwrap();
        let rows = [
            row("a1", "web-1", T0, "-", &[1.0, 300.0, 0.5, 0.4, 0.3, 0.0]),
            row(
                "b2",
                "db-1",
                T0 + 86_400_000,
                "-",
                &[2.0, 400.0, 1.5, 1.4, 1.3, 1.0],
            ),
            row(
                "b2",
                "db-1",
                T0 + 2 * 86_400_000,
                "-",
                &[2.0, 400.0, 1.5, 1.4, 1.3, 1.0],
            ),
        ];
        let hosts = [
            host("a1", "web-1", "prod", &[]),
            host("b2", "db-1", "", &[]),
        ];
        golden::check(
            "sar-load-two-hosts-table.txt",
            &render(load, &rows, &hosts, OutputFormat::Table),
        );
        assert_eq!(render(load, &[], &hosts, OutputFormat::Table), "");
    }

    #[test]
    fn sar_table_marks_missing_values() {
        let swapping = schema(Activity::Swapping).unwrap();
        let rows = [row("a1", "web-1", T0, "-", &[f64::NAN])];
        let text = render(swapping, &rows, &[], OutputFormat::Table);
        golden::check("sar-missing-values-table.txt", &text);
        assert!(text.contains("22:10:03            -         -\n"), "{text}");
        assert!(text.contains("Average:            -         -\n"), "{text}");
    }

    #[test]
    fn sar_json_keys_and_numbers() {
        let disk = schema(Activity::Disk).unwrap();
        let rows = [row(
            "a1",
            "web-1",
            T0,
            "nvme0n1",
            &[12.0, 100.5, 200.25, 0.0, 25.0, 0.01, 1.5, f64::INFINITY],
        )];
        let text = render(disk, &rows, &[], OutputFormat::Json);
        golden::check("sar-disk.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let obj = value[0].as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = sar_keys(disk);
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(obj["host_id"], "a1");
        assert_eq!(obj["hostname"], "web-1");
        assert_eq!(obj["time"], "2026-11-25T22:10:03.000Z");
        assert_eq!(obj["DEV"], "nvme0n1");
        assert_eq!(obj["rkB/s"], 100.5);
        assert_eq!(obj["%util"], serde_json::Value::Null);
        // The text keeps the column order, as sar prints it.
        let at = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
        assert!(at("time") < at("DEV") && at("DEV") < at("tps") && at("tps") < at("%util"));
    }

    #[test]
    fn sar_json_integer_columns_are_integers() {
        let mem = schema(Activity::Memory).unwrap();
        let values = [
            1000.0, 2000.0, 3000.0, 42.5, 10.0, 20.0, 30.0, 7.0, 1.0, 2.0, 3.0,
        ];
        let rows = [row("a1", "web-1", T0, "-", &values)];
        let text = render(mem, &rows, &[], OutputFormat::Json);
        golden::check("sar-memory.json", &text);
        assert!(text.contains("\"kbmemfree\": 1000,"), "{text}");
        assert!(text.contains("\"%memused\": 42.5,"), "{text}");
        assert!(text.contains("\"%commit\": 7.0,"), "{text}");
        assert!(
            !text.contains("\"CPU\""),
            "no instance column for memory: {text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[0]["kbmemfree"].as_i64(), Some(1000));
        assert_eq!(render(mem, &[], &[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn sar_csv_has_header_and_same_keys() {
        let net = schema(Activity::NetDev).unwrap();
        let rows = [row(
            "a1",
            "web-1",
            T0,
            "eth0",
            &[1.5, 2.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.1],
        )];
        let full = render(net, &rows, &[], OutputFormat::Csv);
        golden::check("sar-net-dev.csv", &full);
        assert_eq!(
            render(net, &[], &[], OutputFormat::Csv),
            full.lines().next().unwrap().to_owned() + "\n"
        );
    }

    #[test]
    fn sorting_puts_all_first_and_cpus_numerically() {
        let mut rows = vec![
            row("b2", "db-1", T0, "all", &[]),
            row("a1", "web-1", T0 + 1, "10", &[]),
            row("a1", "web-1", T0 + 1, "2", &[]),
            row("a1", "web-1", T0 + 1, "all", &[]),
            row("a1", "web-1", T0, "eth0", &[]),
        ];
        sort_sar_rows(&mut rows);
        let order: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.hostname.as_str(), r.instance.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("db-1", "all"),
                ("web-1", "eth0"),
                ("web-1", "all"),
                ("web-1", "2"),
                ("web-1", "10")
            ]
        );
    }
}
