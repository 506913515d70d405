//! How `fleetctl sar` prints the rows of its activities: a table as sar's, JSON, CSV.
//!
//! `sections` are the activities asked for, in sar's order, each with its rows as
//! `sort_sar_rows` orders them (by hostname, host id, time, instance: `all` first, CPUs
//! numerically, then names).
//!
//! - **Table.** Per host (by hostname, then host id): its header line
//!   (`Linux KERNEL (HOSTNAME)  HOST_ID  cluster C  DAY UTC`), a blank line, then each activity's
//!   table that has rows for the host: the column header (carrying the start of the first
//!   interval), the rows, the `Average:` lines (per instance, the mean over the rows shown);
//!   tables and hosts are separated by a blank line. Numbers have two decimals except the
//!   schema's integer columns; a missing value is `-`.
//! - **JSON.** An array of rows keyed `host_id`, `hostname`, `time` (RFC 3339 UTC), the instance
//!   column (`CPU`, `DEV`, `IFACE`) where sar prints one, then the sysstat column names
//!   (`%user`, `kbmemfree`, ...) with numeric values (`null` for a value that is not a finite
//!   number): [`sar_keys`]. With several activities the array holds the rows of each activity in
//!   turn, and each row also has `activity` (the schema's name: `cpu`, `memory`, `net-dev`, ...)
//!   right after `time`, so a script can tell them apart; with one activity rows have no
//!   `activity`, as before several could be asked for, so the output of a one-activity call
//!   stayed byte for byte what scripts read (and keeps the same keys as its CSV).
//! - **CSV.** Per activity, a header line of [`sar_keys`] and its rows; with several activities
//!   one such block per activity (also one without rows: its header alone), blocks separated by
//!   an empty line, as `sadf -d` prints a header per activity.

use std::collections::HashMap;
use std::fmt::Write as _;

use fleet_proto::schema::ActivitySchema;
use fleet_proto::v1::{HostIdentity, HostInfo, SarRow};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::output::{csv_line, dash, day, hms, json, printable, rfc3339_ms, OutputFormat};

/// Width of sar's time column (`%-11s` in sysstat).
const SAR_TIME_WIDTH: usize = 11;
/// Narrowest sar value column (`%9s` in sysstat); wider values widen their column.
const SAR_MIN_WIDTH: usize = 9;

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

/// Renders `fleetctl sar` rows of one activity: [`render_activities`] with one section.
pub fn render(
    schema: &ActivitySchema,
    rows: &[SarRow],
    hosts: &[HostInfo],
    format: OutputFormat,
) -> String {
    render_activities(&[(schema, rows)], hosts, format)
}

/// Renders `fleetctl sar` rows of one or more activities, each with its rows, in the order
/// given (see the module doc). `hosts` supplies the kernel and cluster for the table's per-host
/// header line; a host missing from it is shown with what its rows carry.
pub fn render_activities(
    sections: &[(&ActivitySchema, &[SarRow])],
    hosts: &[HostInfo],
    format: OutputFormat,
) -> String {
    match format {
        OutputFormat::Json => match sections {
            [(schema, rows)] => json(
                &rows
                    .iter()
                    .map(|row| SarJsonRow { schema, row })
                    .collect::<Vec<_>>(),
            ),
            several => json(
                &several
                    .iter()
                    .flat_map(|(schema, rows)| {
                        rows.iter()
                            .map(|row| ActivityJsonRow(SarJsonRow { schema, row }))
                    })
                    .collect::<Vec<_>>(),
            ),
        },
        OutputFormat::Csv => sections
            .iter()
            .map(|(schema, rows)| sar_csv(schema, rows))
            .collect::<Vec<_>>()
            .join("\n"),
        OutputFormat::Table => sar_table(sections, hosts),
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

/// One row as `-o json` shows it when it holds several activities: a [`SarJsonRow`] with
/// `activity` after `time`.
struct ActivityJsonRow<'a>(SarJsonRow<'a>);

impl Serialize for SarJsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize_with(serializer, None)
    }
}

impl Serialize for ActivityJsonRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_with(serializer, Some(self.0.schema.name))
    }
}

impl SarJsonRow<'_> {
    /// The row's map, with `activity` after `time` if given.
    fn serialize_with<S: Serializer>(
        &self,
        serializer: S,
        activity: Option<&str>,
    ) -> Result<S::Ok, S::Error> {
        let (schema, row) = (self.schema, self.row);
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("host_id", &row.host_id)?;
        map.serialize_entry("hostname", &row.hostname)?;
        map.serialize_entry("time", &rfc3339_ms(row.time_ms))?;
        if let Some(activity) = activity {
            map.serialize_entry("activity", activity)?;
        }
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

/// The table: per host, its header line and a table per activity with rows of it.
fn sar_table(sections: &[(&ActivitySchema, &[SarRow])], hosts: &[HostInfo]) -> String {
    let info: HashMap<&str, &HostIdentity> = hosts
        .iter()
        .filter_map(|h| h.identity.as_ref())
        .map(|id| (id.host_id.as_str(), id))
        .collect();
    let mut out = String::new();
    for (i, host) in host_parts(sections).iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&sar_host_block(host, info.get(host.host_id)));
    }
    out
}

/// One host's rows of each activity that has some.
struct HostParts<'a> {
    host_id: &'a str,
    parts: Parts<'a>,
}

/// Per activity, in the sections' order: its rows of one host (never empty).
type Parts<'a> = Vec<(&'a ActivitySchema, Vec<&'a SarRow>)>;

/// The rows of `sections` per host. Hosts come in the order of their first rows in the first
/// activity; a host first seen in a later activity goes before the first host listed whose
/// (hostname, host id) is greater, so rows sorted as `sort_sar_rows` sorts them give hosts by
/// hostname, then host id.
fn host_parts<'a>(sections: &[(&'a ActivitySchema, &'a [SarRow])]) -> Vec<HostParts<'a>> {
    let mut order: Vec<&str> = Vec::new();
    let mut parts: HashMap<&str, Parts> = HashMap::new();
    for (n, (schema, rows)) in sections.iter().enumerate() {
        for group in group_by_host(rows) {
            let first = group[0];
            let host_id = first.host_id.as_str();
            if let Some(host) = parts.get_mut(host_id) {
                host.push((schema, group));
                continue;
            }
            let at = if n == 0 {
                order.len()
            } else {
                let key = (first.hostname.as_str(), host_id);
                order
                    .iter()
                    .position(|id| (parts[id][0].1[0].hostname.as_str(), *id) > key)
                    .unwrap_or(order.len())
            };
            order.insert(at, host_id);
            parts.insert(host_id, vec![(schema, group)]);
        }
    }
    order
        .into_iter()
        .map(|host_id| HostParts {
            host_id,
            parts: parts.remove(host_id).unwrap_or_default(),
        })
        .collect()
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

/// One host's part of the table: header line, blank line, then per activity the column
/// header, rows and averages, a blank line between activities.
fn sar_host_block(host: &HostParts, id: Option<&&HostIdentity>) -> String {
    let first = host.parts[0].1[0];
    let rows = || host.parts.iter().flat_map(|(_, rows)| rows);
    let first_ms = rows().map(|r| r.time_ms).min().unwrap_or(first.time_ms);
    let last_ms = rows().map(|r| r.time_ms).max().unwrap_or(first.time_ms);
    let hostname = id.map_or(first.hostname.as_str(), |id| &id.hostname);
    let kernel = id.map_or("", |id| &id.kernel);
    let cluster = id.map_or("", |id| &id.cluster);
    let (first_day, last_day) = (day(first_ms), day(last_ms));
    let days = if first_day == last_day {
        first_day
    } else {
        format!("{first_day}..{last_day}")
    };
    let mut out = format!(
        "Linux {} ({})  {}  cluster {}  {days} UTC\n",
        dash(kernel),
        dash(hostname),
        dash(&first.host_id),
        dash(cluster)
    );
    for (schema, rows) in &host.parts {
        out.push('\n');
        out.push_str(&sar_body(schema, rows));
    }
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
    use fleet_proto::schema::schema;
    use fleet_proto::v1::Activity;

    use super::*;
    use crate::cmd::testing::{host, row, T0};
    use crate::golden;

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

    fn memory_row(host: &str, name: &str, time_ms: i64, kbmemfree: f64) -> SarRow {
        let mut values = vec![2000.0, 3000.0, 42.5, 10.0, 20.0, 30.0, 7.0, 1.0, 2.0, 3.0];
        values.insert(0, kbmemfree);
        row(host, name, time_ms, "-", &values)
    }

    /// `sar -u -r` of web-1 (both activities) and db-1 (memory only), as the plan sorts them.
    fn cpu_and_memory() -> (Vec<SarRow>, Vec<SarRow>) {
        let cpu = vec![
            row("a1", "web-1", T0, "all", &[2.51, 0.0, 1.0, 0.1, 0.0, 96.39]),
            row(
                "a1",
                "web-1",
                T0 + 10_000,
                "all",
                &[3.49, 0.0, 1.0, 0.3, 0.0, 95.21],
            ),
        ];
        let mut memory = vec![
            memory_row("a1", "web-1", T0, 1000.0),
            memory_row("a1", "web-1", T0 + 10_000, 1002.0),
            memory_row("b2", "db-1", T0, 5000.0),
        ];
        sort_sar_rows(&mut memory);
        (cpu, memory)
    }

    fn cpu_and_memory_schemas() -> (&'static ActivitySchema, &'static ActivitySchema) {
        (
            schema(Activity::Cpu).unwrap(),
            schema(Activity::Memory).unwrap(),
        )
    }

    #[test]
    fn two_activities_table_per_host_like_sar_u_r() {
        let (cpu, memory) = cpu_and_memory();
        let (cpu_schema, mem_schema) = cpu_and_memory_schemas();
        let hosts = [
            host("a1", "web-1", "prod", &[]),
            host("b2", "db-1", "prod", &[]),
        ];
        let sections = [(cpu_schema, &cpu[..]), (mem_schema, &memory[..])];
        let text = render_activities(&sections, &hosts, OutputFormat::Table);
        golden::check("sar-cpu-memory-two-hosts-table.txt", &text);

        // db-1, first seen in the second activity, still comes first (by hostname), with the
        // one table it has rows for.
        let blocks: Vec<&str> = text.split("\nLinux ").collect();
        assert_eq!(blocks.len(), 2, "{text}");
        assert!(
            blocks[0].starts_with("Linux 6.1.0-18-amd64 (db-1)  b2"),
            "{text}"
        );
        assert!(!blocks[0].contains("%user"), "{text}");
        assert!(
            blocks[1].starts_with("6.1.0-18-amd64 (web-1)  a1"),
            "{text}"
        );
        // web-1: each activity's table is exactly what `sar -u` and `sar -r` alone show.
        let web: Vec<&SarRow> = cpu.iter().collect();
        let web_mem: Vec<&SarRow> = memory.iter().filter(|r| r.host_id == "a1").collect();
        let want = format!(
            "6.1.0-18-amd64 (web-1)  a1  cluster prod  2026-11-25 UTC\n\n{}\n{}",
            sar_body(cpu_schema, &web),
            sar_body(mem_schema, &web_mem)
        );
        assert_eq!(blocks[1], want);
        // In the order the sections are given, and hosts sort the same either way.
        let swapped = render_activities(
            &[(mem_schema, &memory[..]), (cpu_schema, &cpu[..])],
            &hosts,
            OutputFormat::Table,
        );
        assert!(
            swapped.find("kbmemfree") < swapped.find("%user"),
            "{swapped}"
        );
        assert!(
            swapped.find("(db-1)") < swapped.find("(web-1)"),
            "{swapped}"
        );
    }

    #[test]
    fn table_header_days_span_every_activity_of_the_host() {
        let cpu = [row("a1", "web-1", T0, "all", &[0.0; 6])];
        let memory = [memory_row("a1", "web-1", T0 + 86_400_000, 1.0)];
        let (cpu_schema, mem_schema) = cpu_and_memory_schemas();
        let text = render_activities(
            &[(cpu_schema, &cpu[..]), (mem_schema, &memory[..])],
            &[],
            OutputFormat::Table,
        );
        assert!(
            text.starts_with("Linux - (web-1)  a1  cluster -  2026-11-25..2026-11-26 UTC\n\n"),
            "{text}"
        );
        // No rows at all: nothing, as for one activity.
        let none = render_activities(
            &[(cpu_schema, &[][..]), (mem_schema, &[][..])],
            &[],
            OutputFormat::Table,
        );
        assert_eq!(none, "");
    }

    #[test]
    fn two_activities_json_rows_carry_their_activity() {
        let (cpu, memory) = cpu_and_memory();
        let (cpu_schema, mem_schema) = cpu_and_memory_schemas();
        let sections = [(cpu_schema, &cpu[..]), (mem_schema, &memory[..])];
        let text = render_activities(&sections, &[], OutputFormat::Json);
        golden::check("sar-cpu-memory.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        // The rows of -u, then those of -r, each as a one-activity call lists them.
        let shown: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["activity"].as_str().unwrap(),
                    r["host_id"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("cpu", "a1"),
                ("cpu", "a1"),
                ("memory", "b2"),
                ("memory", "a1"),
                ("memory", "a1")
            ]
        );
        for row in rows {
            let schema = if row["activity"] == "cpu" {
                cpu_schema
            } else {
                mem_schema
            };
            let mut want = sar_keys(schema);
            want.push("activity");
            want.sort_unstable();
            let mut got: Vec<&str> = row
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            got.sort_unstable();
            assert_eq!(got, want, "{row}");
        }
        // `activity` comes right after `time`.
        assert!(
            text.contains(
                "\"time\": \"2026-11-25T22:10:03.000Z\",\n    \"activity\": \"cpu\",\n    \"CPU\""
            ),
            "{text}"
        );
        // One activity: rows as before, without `activity`.
        let one = render_activities(&sections[..1], &[], OutputFormat::Json);
        assert_eq!(one, render(cpu_schema, &cpu, &[], OutputFormat::Json));
        assert!(!one.contains("\"activity\""), "{one}");
        let none = render_activities(
            &[(cpu_schema, &[][..]), (mem_schema, &[][..])],
            &[],
            OutputFormat::Json,
        );
        assert_eq!(none, "[]\n");
    }

    #[test]
    fn two_activities_csv_one_block_each() {
        let (cpu, memory) = cpu_and_memory();
        let (cpu_schema, mem_schema) = cpu_and_memory_schemas();
        let text = render_activities(
            &[(cpu_schema, &cpu[..]), (mem_schema, &memory[..])],
            &[],
            OutputFormat::Csv,
        );
        golden::check("sar-cpu-memory.csv", &text);
        let blocks: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(
            blocks,
            [
                render(cpu_schema, &cpu, &[], OutputFormat::Csv).trim_end(),
                &render(mem_schema, &memory, &[], OutputFormat::Csv)
            ]
        );
        // An activity without rows keeps its block: its header line.
        let text = render_activities(
            &[(cpu_schema, &[][..]), (mem_schema, &memory[..])],
            &[],
            OutputFormat::Csv,
        );
        assert!(
            text.starts_with("host_id,hostname,time,CPU,%user,%nice,%system,%iowait,%steal,%idle\n\nhost_id,hostname,time,kbmemfree,"),
            "{text}"
        );
    }
}
