//! `fleetctl sar FLAG (--host H | --cluster C) [--since T] [--until T] --step STEP`: the
//! activity downsampled by the collector (`Query.QuerySarBuckets`) into buckets of STEP (`10s`,
//! `1m`, `1h`; aligned to the Unix epoch, so `--step 1h` buckets start on the hour), at most
//! 10,000 per range. Empty buckets are not shown.
//!
//! The table is sar's (`sar_body`), each row a bucket's mean at the bucket's start, under a
//! header line per host that names the step:
//!
//! ```text
//! web-1 (a1)  cluster prod  2026-11-25 UTC  mean of 1m buckets
//!
//! 22:10:00          CPU     %user     %nice   %system   %iowait    %steal     %idle
//! 22:10:00          all      2.51      0.00      1.00      0.10      0.00     96.39
//! Average:          all      2.51      0.00      1.00      0.10      0.00     96.39
//! ```
//!
//! (`Average:` is the mean of the bucket means shown.) JSON: an array with one object per host,
//! instance and bucket: `host_id`, `hostname`, `time` (the bucket's start, RFC 3339 UTC),
//! `step_ms`, the instance column (`CPU`, `DEV`, `IFACE`) where sar prints one, then each sysstat
//! column name with `{"min", "max", "mean", "count"}` (`count`: the samples with a value in the
//! bucket; `min`, `max`, `mean` are `null` when it is 0):
//!
//! ```text
//! [{"host_id": "a1", "hostname": "web-1", "time": "2026-11-25T22:10:00.000Z", "step_ms": 60000,
//!   "CPU": "all", "%user": {"min": 1.0, "max": 9.5, "mean": 2.51, "count": 6}, ...}]
//! ```
//!
//! CSV has one line per host, instance, bucket and column:
//! `host_id,hostname,time,instance,column,count,min,max,mean`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::Utc;
use fleet_proto::schema::{schema, ActivitySchema};
use fleet_proto::v1::{
    Activity, HostInfo, ListHostsRequest, SarBucket, SarBucketQuery, SarBucketSeries, SarRow,
};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::sar::{sar_body, sort_sar_rows, SarArgs, DEFAULT_SINCE};
use super::Context;
use crate::output::{
    csv_line, dash, day, json, printable, rfc3339_ms, show_time, show_until, OutputFormat,
};
use crate::timearg;
use crate::Output;

/// Parses `--step`: a duration of at least 1 ms (`10s`, `1m`, `1h30m`).
///
/// # Errors
/// A message for clap when it is not a duration, or shorter than 1 ms.
pub fn parse_step(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|_| format!("`{s}` is not a duration (10s, 1m, 1h)"))?;
    if d < Duration::from_millis(1) {
        return Err(format!("`{s}` is shorter than 1 ms"));
    }
    Ok(d)
}

/// Runs `fleetctl sar ... --step STEP`.
pub(super) async fn run(args: &SarArgs, step: Duration, ctx: &Context) -> Result<Output> {
    let activity = match args.activities()?.as_slice() {
        [one] => *one,
        several => anyhow::bail!(
            "--step shows one activity per call ({} asked for): run one call per activity",
            several.len()
        ),
    };
    let schema =
        schema(activity).with_context(|| format!("no column schema for activity {activity:?}"))?;
    let (since, until) =
        timearg::range(args.since.unwrap_or(DEFAULT_SINCE), args.until, Utc::now())?;
    let query = SarBucketQuery {
        activity: activity as i32,
        hosts: args.hosts.clone(),
        cluster: args.cluster.clone().unwrap_or_default(),
        since_ms: since.timestamp_millis(),
        // 0 lets the collector use its own now, so clocks need not agree.
        until_ms: until.map_or(0, |t| t.timestamp_millis()),
        step_ms: i64::try_from(step.as_millis()).unwrap_or(i64::MAX),
    };
    let collector = ctx.connect().await?;
    let cluster = query.cluster.clone();
    let buckets = collector.query("QuerySarBuckets", async |c| {
        c.query_sar_buckets(query).await
    });
    let (result, hosts) = if ctx.format == OutputFormat::Table {
        let request = ListHostsRequest { cluster };
        let hosts = collector.query("ListHosts", async |c| c.list_hosts(request).await);
        let (buckets, hosts) = tokio::try_join!(buckets, hosts)?;
        (buckets, hosts.hosts)
    } else {
        (buckets.await?, Vec::new())
    };
    let mut series = result.series;
    if activity == Activity::Cpu && !args.all_cpus() {
        series.retain(|s| s.instance == "all");
    }
    let notice = (series.is_empty() && ctx.format == OutputFormat::Table).then(|| {
        format!(
            "no samples (sar {}) from {} to {}",
            schema.sar_flag,
            show_time(since),
            show_until(until)
        )
    });
    let text = render(schema, result.step_ms, &series, &hosts, ctx.format);
    Ok(Output::print(text).with_notice(notice))
}

/// Renders bucketed series of one activity. `hosts` supplies the cluster for the table's header
/// lines.
pub fn render(
    schema: &ActivitySchema,
    step_ms: i64,
    series: &[SarBucketSeries],
    hosts: &[HostInfo],
    format: OutputFormat,
) -> String {
    // One entry per (series, bucket), in sar's order: host, time, instance.
    let mut rows: Vec<(SarRow, &SarBucketSeries, &SarBucket)> = series
        .iter()
        .flat_map(|s| {
            s.buckets.iter().map(move |b| {
                let mean = SarRow {
                    host_id: s.host_id.clone(),
                    hostname: s.hostname.clone(),
                    time_ms: b.time_ms,
                    interval_ms: 0,
                    instance: s.instance.clone(),
                    values: b.mean.clone(),
                };
                (mean, s, b)
            })
        })
        .collect();
    let mut means: Vec<SarRow> = rows.iter().map(|(r, _, _)| r.clone()).collect();
    sort_sar_rows(&mut means);
    let order: HashMap<(&str, i64, &str), usize> = means
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.host_id.as_str(), r.time_ms, r.instance.as_str()), i))
        .collect();
    rows.sort_by_key(|(r, _, _)| order[&(r.host_id.as_str(), r.time_ms, r.instance.as_str())]);
    match format {
        OutputFormat::Json => json(
            &rows
                .iter()
                .map(|(_, s, b)| BucketJson {
                    schema,
                    step_ms,
                    series: s,
                    bucket: b,
                })
                .collect::<Vec<_>>(),
        ),
        OutputFormat::Csv => {
            let mut out = csv_line([
                "host_id", "hostname", "time", "instance", "column", "count", "min", "max", "mean",
            ]);
            let number = |v: Option<&f64>| match v {
                Some(v) if v.is_finite() => v.to_string(),
                _ => String::new(),
            };
            for (_, s, b) in &rows {
                for (c, column) in schema.columns.iter().enumerate() {
                    out.push_str(&csv_line([
                        s.host_id.clone(),
                        s.hostname.clone(),
                        rfc3339_ms(b.time_ms).unwrap_or_default(),
                        s.instance.clone(),
                        (*column).to_owned(),
                        b.count.get(c).copied().unwrap_or(0).to_string(),
                        number(b.min.get(c)),
                        number(b.max.get(c)),
                        number(b.mean.get(c)),
                    ]));
                }
            }
            out
        }
        OutputFormat::Table => table(schema, step_ms, &means, hosts),
    }
}

/// Per host: a header line naming the step, then sar's body of the bucket means.
fn table(schema: &ActivitySchema, step_ms: i64, means: &[SarRow], hosts: &[HostInfo]) -> String {
    let cluster_of: HashMap<&str, &str> = hosts
        .iter()
        .filter_map(|h| h.identity.as_ref())
        .map(|id| (id.host_id.as_str(), id.cluster.as_str()))
        .collect();
    let step = humantime::format_duration(Duration::from_millis(step_ms.max(0) as u64));
    let mut out = String::new();
    for group in means.chunk_by(|a, b| a.host_id == b.host_id) {
        if !out.is_empty() {
            out.push('\n');
        }
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let (first_day, last_day) = (day(first.time_ms), day(last.time_ms));
        let days = if first_day == last_day {
            first_day
        } else {
            format!("{first_day}..{last_day}")
        };
        out.push_str(&format!(
            "{} ({})  cluster {}  {days} UTC  mean of {step} buckets\n\n",
            dash(&printable(&first.hostname, usize::MAX)),
            dash(&printable(&first.host_id, usize::MAX)),
            dash(&printable(
                cluster_of
                    .get(first.host_id.as_str())
                    .copied()
                    .unwrap_or(""),
                usize::MAX
            )),
        ));
        let refs: Vec<&SarRow> = group.iter().collect();
        out.push_str(&sar_body(schema, &refs));
    }
    out
}

/// One bucket as `-o json` shows it (see the module doc).
struct BucketJson<'a> {
    schema: &'a ActivitySchema,
    step_ms: i64,
    series: &'a SarBucketSeries,
    bucket: &'a SarBucket,
}

/// A column's figures in a bucket.
#[derive(Serialize)]
struct Figures {
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
    count: u32,
}

impl Serialize for BucketJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (s, b) = (self.series, self.bucket);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("host_id", &s.host_id)?;
        map.serialize_entry("hostname", &s.hostname)?;
        map.serialize_entry("time", &rfc3339_ms(b.time_ms))?;
        map.serialize_entry("step_ms", &self.step_ms)?;
        if let Some(column) = self.schema.instance_column {
            map.serialize_entry(column, &s.instance)?;
        }
        let finite = |v: Option<&f64>| v.copied().filter(|v| v.is_finite());
        for (c, column) in self.schema.columns.iter().enumerate() {
            let figures = Figures {
                min: finite(b.min.get(c)),
                max: finite(b.max.get(c)),
                mean: finite(b.mean.get(c)),
                count: b.count.get(c).copied().unwrap_or(0),
            };
            map.serialize_entry(column, &figures)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;
    use crate::cmd::testing::{command, host, parse, T0};
    use crate::cmd::Command;
    use crate::golden;

    fn bucket(time_ms: i64, user: (f64, f64, f64), count: u32) -> SarBucket {
        let (min, max, mean) = user;
        SarBucket {
            time_ms,
            count: vec![count; 6],
            min: vec![min, 0.0, 1.0, 0.0, 0.0, 100.0 - max - 1.0],
            max: vec![max, 0.0, 1.0, 0.5, 0.0, 100.0 - min - 1.0],
            mean: vec![mean, 0.0, 1.0, 0.25, 0.0, 100.0 - mean - 1.0],
        }
    }

    /// web-1 with CPU "all" and "0" over two 1-minute buckets; db-1 with one bucket whose
    /// %steal was never measured.
    fn series() -> Vec<SarBucketSeries> {
        let t = T0 - T0 % 60_000;
        let mut unmeasured = bucket(t, (5.0, 5.0, 5.0), 6);
        unmeasured.count[4] = 0;
        unmeasured.min[4] = f64::NAN;
        unmeasured.max[4] = f64::NAN;
        unmeasured.mean[4] = f64::NAN;
        vec![
            SarBucketSeries {
                host_id: "b2".into(),
                hostname: "db-1".into(),
                instance: "all".into(),
                buckets: vec![unmeasured],
            },
            SarBucketSeries {
                host_id: "a1".into(),
                hostname: "web-1".into(),
                instance: "all".into(),
                buckets: vec![
                    bucket(t, (1.0, 95.5, 2.51), 6),
                    bucket(t + 60_000, (2.0, 3.0, 2.5), 6),
                ],
            },
            SarBucketSeries {
                host_id: "a1".into(),
                hostname: "web-1".into(),
                instance: "0".into(),
                buckets: vec![bucket(t, (0.5, 1.5, 1.0), 6)],
            },
        ]
    }

    fn cpu() -> &'static ActivitySchema {
        schema(Activity::Cpu).unwrap()
    }

    #[test]
    fn step_takes_a_duration() {
        let Command::Sar(args) = command("sar", &["-u", "--host", "a", "--step", "1m"]) else {
            panic!("not sar");
        };
        assert_eq!(args.step, Some(Duration::from_secs(60)));
        let Command::Sar(args) = command("sar", &["-u", "--host", "a"]) else {
            panic!("not sar");
        };
        assert_eq!(args.step, None);
        for bad in ["0s", "fast", "500us"] {
            let err = parse(&["sar", "-u", "--host", "a", "--step", bad]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{bad}: {err}");
        }
    }

    #[test]
    fn step_table_shows_the_means_per_host_in_sars_order() {
        let hosts = [
            host("a1", "web-1", "prod", &[]),
            host("b2", "db-1", "prod", &[]),
        ];
        let got = render(cpu(), 60_000, &series(), &hosts, OutputFormat::Table);
        golden::check("sar-step-table.txt", &got);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(
            lines[0],
            "db-1 (b2)  cluster prod  2026-11-25 UTC  mean of 1m buckets"
        );
        // db-1 before web-1; within web-1, each bucket's "all" before "0".
        assert!(
            lines[3].contains(" all ") && lines[3].contains("5.00"),
            "{got}"
        );
        assert!(lines[3].contains(" - "), "the unmeasured %steal: {got}");
        let web = got.split("\n\n").nth(3).unwrap();
        let cpus: Vec<&str> = web
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(cpus, ["all", "0", "all", "all", "0"], "{web}");
    }

    #[test]
    fn step_json_has_min_max_mean_and_count_per_column() {
        let text = render(cpu(), 60_000, &series(), &[], OutputFormat::Json);
        golden::check("sar-step.json", &text);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), 4);
        let first_web = &rows[1];
        assert_eq!(first_web["host_id"], "a1");
        assert_eq!(first_web["CPU"], "all");
        assert_eq!(first_web["step_ms"], 60_000);
        assert_eq!(first_web["time"], "2026-11-25T22:10:00.000Z");
        assert_eq!(
            first_web["%user"],
            serde_json::json!({"min": 1.0, "max": 95.5, "mean": 2.51, "count": 6})
        );
        assert_eq!(
            rows[0]["%steal"],
            serde_json::json!({"min": null, "max": null, "mean": null, "count": 0})
        );
        let csv = render(cpu(), 60_000, &series(), &[], OutputFormat::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "host_id,hostname,time,instance,column,count,min,max,mean"
        );
        assert_eq!(lines.len(), 1 + 4 * 6);
        assert_eq!(
            lines[7],
            "a1,web-1,2026-11-25T22:10:00.000Z,all,%user,6,1,95.5,2.51"
        );
        assert_eq!(lines[5], "b2,db-1,2026-11-25T22:10:00.000Z,all,%steal,0,,,");
    }
}
