//! Rendering: pure functions from query answers to the text fleetctl prints.
//!
//! Three formats, chosen with `-o`:
//!
//! - `table` (default): for people. `hosts` prints aligned columns; `sar` prints what sysstat's
//!   sar prints, per host, with 24-hour UTC times:
//!
//!   ```text
//!   Linux 6.1.0-18-amd64 (web-1)  4f3c9a0e  cluster prod  2026-11-25 UTC
//!
//!   22:10:03          CPU     %user     %nice   %system   %iowait    %steal     %idle
//!   22:10:13          all      2.51      0.00      1.00      0.10      0.00     96.39
//!   22:10:23          all      3.49      0.00      1.00      0.30      0.00     95.21
//!   Average:          all      3.00      0.00      1.00      0.20      0.00     95.80
//!   ```
//!
//!   As in sar, the column header line carries the start of the first interval, numbers have two
//!   decimals except the schema's integer columns, and `Average:` lines give, per instance, the
//!   mean over the rows shown.
//! - `json`: for scripts. `hosts` is an array of host objects; `sar` an array of rows keyed
//!   `host_id`, `hostname`, `time` (RFC 3339 UTC), the instance column (`CPU`, `DEV`, `IFACE`)
//!   where sar prints one, then the sysstat column names (`%user`, `kbmemfree`, ...) with numeric
//!   values (`null` for a value that is not a finite number).
//! - `csv`: the same keys as a header row, then one line per row (RFC 4180 quoting).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use fleet_proto::schema::ActivitySchema;
use fleet_proto::v1::{HostIdentity, HostInfo, SarRow};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// The `-o` / `output` choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
    Csv,
}

/// Width of sar's time column (`%-11s` in sysstat).
const SAR_TIME_WIDTH: usize = 11;
/// Narrowest sar value column (`%9s` in sysstat); wider values widen their column.
const SAR_MIN_WIDTH: usize = 9;

// ---------------------------------------------------------------------------------------------
// hosts

/// One host as `-o json` shows it. The field order is the key order.
#[derive(Debug, Serialize)]
struct HostView {
    host_id: String,
    hostname: String,
    cluster: String,
    labels: BTreeMap<String, String>,
    kernel: String,
    agent_version: String,
    connected: bool,
    first_seen: Option<String>,
    last_seen: Option<String>,
    dropped_samples: u64,
    /// Highest batch sequence number stored for the host's current spool epoch.
    last_seq: u64,
}

impl HostView {
    fn new(host: &HostInfo) -> Self {
        let id = host.identity.clone().unwrap_or_default();
        HostView {
            host_id: id.host_id,
            hostname: id.hostname,
            cluster: id.cluster,
            labels: id.labels.into_iter().collect(),
            kernel: id.kernel,
            agent_version: id.agent_version,
            connected: host.connected,
            first_seen: rfc3339(host.first_seen_ms),
            last_seen: rfc3339(host.last_seen_ms),
            dropped_samples: host.dropped_samples,
            last_seq: host.last_seq,
        }
    }

    fn labels_text(&self) -> String {
        let pairs: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join(",")
    }
}

/// Renders `fleetctl hosts`, sorted by cluster, hostname and host id.
pub fn render_hosts(hosts: &[HostInfo], format: OutputFormat) -> String {
    let mut views: Vec<HostView> = hosts.iter().map(HostView::new).collect();
    views.sort_by(|a, b| {
        (&a.cluster, &a.hostname, &a.host_id).cmp(&(&b.cluster, &b.hostname, &b.host_id))
    });
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let mut lines = vec![csv_line([
                "host_id",
                "hostname",
                "cluster",
                "labels",
                "kernel",
                "agent_version",
                "connected",
                "first_seen",
                "last_seen",
                "dropped_samples",
                "last_seq",
            ])];
            for v in &views {
                lines.push(csv_line([
                    v.host_id.as_str(),
                    &v.hostname,
                    &v.cluster,
                    &v.labels_text(),
                    &v.kernel,
                    &v.agent_version,
                    if v.connected { "true" } else { "false" },
                    v.first_seen.as_deref().unwrap_or(""),
                    v.last_seen.as_deref().unwrap_or(""),
                    &v.dropped_samples.to_string(),
                    &v.last_seq.to_string(),
                ]));
            }
            lines.concat()
        }
        OutputFormat::Table => {
            let mut cells = vec![[
                "HOST_ID",
                "HOSTNAME",
                "CLUSTER",
                "CONNECTED",
                "LAST_SEEN",
                "KERNEL",
                "LABELS",
            ]
            .map(String::from)];
            for v in &views {
                cells.push([
                    dash(&v.host_id),
                    dash(&v.hostname),
                    dash(&v.cluster),
                    (if v.connected { "yes" } else { "no" }).to_owned(),
                    v.last_seen.clone().unwrap_or_else(|| "-".into()),
                    dash(&v.kernel),
                    dash(&v.labels_text()),
                ]);
            }
            left_aligned_table(&cells)
        }
    }
}

/// Columns left-aligned, three spaces apart, no trailing blanks.
fn left_aligned_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}   ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-" } else { s }.to_owned()
}

// ---------------------------------------------------------------------------------------------
// sar

/// Sorts rows by hostname, host id, time, then instance in sar's order: `all` first, CPU numbers
/// numerically, then names.
pub fn sort_sar_rows(rows: &mut [SarRow]) {
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
pub fn render_sar(
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

struct SarJsonRow<'a> {
    schema: &'a ActivitySchema,
    row: &'a SarRow,
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
        first.host_id,
        dash(cluster)
    );

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
            line.push(row.instance.clone());
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
            line.push(instance.to_string());
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

// ---------------------------------------------------------------------------------------------
// shared helpers

/// RFC 3339 UTC with whole seconds (`2026-11-25T22:10:03Z`); `None` for 0 (never) or an
/// unrepresentable time.
pub fn rfc3339(ms: i64) -> Option<String> {
    if ms == 0 {
        return None;
    }
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// RFC 3339 UTC with milliseconds (`2026-11-25T22:10:03.250Z`), for sample times: samples are
/// stamped to the millisecond and two of them may fall in the same second.
pub fn rfc3339_ms(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn hms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || "??:??:??".to_owned(),
        |t| t.format("%H:%M:%S").to_string(),
    )
}

fn day(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| "?".to_owned(), |t| t.format("%Y-%m-%d").to_string())
}

fn json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut text =
        serde_json::to_string_pretty(value).expect("plain data with string keys always serializes");
    text.push('\n');
    text
}

/// One CSV record, RFC 4180 quoting, `\n`-terminated.
fn csv_line<I, S>(fields: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut line = String::new();
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let field = field.as_ref();
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use fleet_proto::schema::schema;
    use fleet_proto::v1::Activity;

    use super::*;

    /// 2026-11-25T22:10:03Z
    const T0: i64 = 1_795_644_603_000;

    fn host(id: &str, name: &str, cluster: &str, labels: &[(&str, &str)]) -> HostInfo {
        HostInfo {
            identity: Some(HostIdentity {
                host_id: id.into(),
                hostname: name.into(),
                cluster: cluster.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                kernel: "6.1.0-18-amd64".into(),
                agent_version: "0.1.0".into(),
            }),
            connected: true,
            first_seen_ms: T0 - 3_600_000,
            last_seen_ms: T0,
            dropped_samples: 0,
            last_seq: 7,
        }
    }

    fn row(host: &str, name: &str, time_ms: i64, instance: &str, values: &[f64]) -> SarRow {
        SarRow {
            host_id: host.into(),
            hostname: name.into(),
            time_ms,
            interval_ms: 10_000,
            instance: instance.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn t0_is_what_the_tests_say() {
        assert_eq!(rfc3339(T0).as_deref(), Some("2026-11-25T22:10:03Z"));
        assert_eq!(rfc3339(T0 + 999).as_deref(), Some("2026-11-25T22:10:03Z"));
        assert_eq!(rfc3339(0), None);
    }

    #[test]
    fn hosts_json_has_exactly_the_contract_keys() {
        let mut db = host("b2", "db-1", "prod", &[]);
        db.connected = false;
        db.dropped_samples = 12;
        let hosts = [
            db,
            host("a1", "web-1", "prod", &[("role", "web"), ("az", "b")]),
        ];
        let text = render_hosts(&hosts, OutputFormat::Json);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let array = value.as_array().unwrap();
        assert_eq!(array.len(), 2);
        let keys: Vec<&str> = array[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = vec![
            "host_id",
            "hostname",
            "cluster",
            "labels",
            "kernel",
            "agent_version",
            "connected",
            "first_seen",
            "last_seen",
            "dropped_samples",
            "last_seq",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        // Sorted by cluster, then hostname.
        assert_eq!(array[0]["hostname"], "db-1");
        assert_eq!(array[0]["connected"], false);
        assert_eq!(array[0]["dropped_samples"], 12);
        assert_eq!(
            array[1]["labels"],
            serde_json::json!({"az": "b", "role": "web"})
        );
        assert_eq!(array[1]["last_seen"], "2026-11-25T22:10:03Z");
        assert_eq!(array[1]["first_seen"], "2026-11-25T21:10:03Z");
        assert_eq!(array[1]["kernel"], "6.1.0-18-amd64");
        assert_eq!(array[1]["agent_version"], "0.1.0");
        assert!(text.ends_with("]\n"));
        assert_eq!(render_hosts(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn hosts_table_is_aligned() {
        let mut db = host("b2", "db-1", "prod", &[]);
        db.connected = false;
        let hosts = [
            host("a1", "web-1", "prod", &[("role", "web"), ("az", "b")]),
            db,
        ];
        let want = "\
HOST_ID   HOSTNAME   CLUSTER   CONNECTED   LAST_SEEN              KERNEL           LABELS
b2        db-1       prod      no          2026-11-25T22:10:03Z   6.1.0-18-amd64   -
a1        web-1      prod      yes         2026-11-25T22:10:03Z   6.1.0-18-amd64   az=b,role=web
";
        assert_eq!(render_hosts(&hosts, OutputFormat::Table), want);
    }

    #[test]
    fn hosts_csv_quotes_what_needs_it() {
        let hosts = [host(
            "a1",
            "web-1",
            "prod",
            &[("role", "web"), ("note", "say \"hi\"")],
        )];
        let want = "\
host_id,hostname,cluster,labels,kernel,agent_version,connected,first_seen,last_seen,dropped_samples,last_seq
a1,web-1,prod,\"note=say \"\"hi\"\",role=web\",6.1.0-18-amd64,0.1.0,true,2026-11-25T21:10:03Z,2026-11-25T22:10:03Z,0,7
";
        assert_eq!(render_hosts(&hosts, OutputFormat::Csv), want);
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
        let want = "\
Linux 6.1.0-18-amd64 (web-1)  a1  cluster prod  2026-11-25 UTC

22:10:03          CPU     %user     %nice   %system   %iowait    %steal     %idle
22:10:13          all      2.51      0.00      1.00      0.10      0.00     96.39
22:10:13            0      5.02      0.00      2.00      0.20      0.00     92.78
22:10:23          all      3.49      0.00      1.00      0.30      0.00     95.21
22:10:23            0      4.00      0.00      2.00      0.00      0.00     94.00
Average:          all      3.00      0.00      1.00      0.20      0.00     95.80
Average:            0      4.51      0.00      2.00      0.10      0.00     93.39
";
        assert_eq!(
            render_sar(cpu, &cpu_rows(), &hosts, OutputFormat::Table),
            want
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
        let text = render_sar(mem, &rows, &[], OutputFormat::Table);
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
        let want = "\
Linux 6.1.0-18-amd64 (web-1)  a1  cluster prod  2026-11-25 UTC

22:09:53      runq-sz  plist-sz   ldavg-1   ldavg-5  ldavg-15   blocked
22:10:03            1       300      0.50      0.40      0.30         0
Average:            1       300      0.50      0.40      0.30         0

Linux 6.1.0-18-amd64 (db-1)  b2  cluster -  2026-11-26..2026-11-27 UTC

22:09:53      runq-sz  plist-sz   ldavg-1   ldavg-5  ldavg-15   blocked
22:10:03            2       400      1.50      1.40      1.30         1
22:10:03            2       400      1.50      1.40      1.30         1
Average:            2       400      1.50      1.40      1.30         1
";
        assert_eq!(render_sar(load, &rows, &hosts, OutputFormat::Table), want);
        assert_eq!(render_sar(load, &[], &hosts, OutputFormat::Table), "");
    }

    #[test]
    fn sar_table_marks_missing_values() {
        let swapping = schema(Activity::Swapping).unwrap();
        let rows = [row("a1", "web-1", T0, "-", &[f64::NAN])];
        let text = render_sar(swapping, &rows, &[], OutputFormat::Table);
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
        let text = render_sar(disk, &rows, &[], OutputFormat::Json);
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
        let text = render_sar(mem, &rows, &[], OutputFormat::Json);
        assert!(text.contains("\"kbmemfree\": 1000,"), "{text}");
        assert!(text.contains("\"%memused\": 42.5,"), "{text}");
        assert!(text.contains("\"%commit\": 7.0,"), "{text}");
        assert!(
            !text.contains("\"CPU\""),
            "no instance column for memory: {text}"
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[0]["kbmemfree"].as_i64(), Some(1000));
        assert_eq!(render_sar(mem, &[], &[], OutputFormat::Json), "[]\n");
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
        let want = "\
host_id,hostname,time,IFACE,rxpck/s,txpck/s,rxkB/s,txkB/s,rxcmp/s,txcmp/s,rxmcst/s,%ifutil
a1,web-1,2026-11-25T22:10:03.000Z,eth0,1.5,2,0.25,0,0,0,0,0.1
";
        assert_eq!(render_sar(net, &rows, &[], OutputFormat::Csv), want);
        assert_eq!(
            render_sar(net, &[], &[], OutputFormat::Csv),
            want.lines().next().unwrap().to_owned() + "\n"
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

    #[test]
    fn csv_quoting() {
        assert_eq!(
            csv_line(["a", "b,c", "d\"e", "f\ng", ""]),
            "a,\"b,c\",\"d\"\"e\",\"f\ng\",\n"
        );
    }
}
