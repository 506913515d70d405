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
//!
//! The OOM commands follow the same pattern:
//!
//! - `top-oom`: rows keyed [`TOP_OOM_KEYS`], highest `oom_score` first; the table
//!   (`HOST PID COMM OOM_SCORE ADJ RSS CMDLINE`) cuts command lines to [`CMDLINE_WIDTH`].
//! - `oom`: one row per kill, keyed [`KILL_FIXED_KEYS`] and then the keys of the kill's
//!   `fleet-agent parse-kmsg` object (known ones in [`KILL_DETAIL_KEYS`] order, others sorted),
//!   without its `tasks` and `raw` but with `tasks_count`. The CSV header is stable: every known
//!   key, then any other key a row has.
//! - `oom show`: JSON `{kill, memory, swap, swapping, paging, top_oom, top_oom_time}`; the table
//!   is the report's facts, the task table by rss, the sar tables before the kill and the last
//!   top-oom ranking before it:
//!
//!   ```text
//!   OOM kill 1-19abc2e5d18-0
//!   Host:         web-1 (a1), cluster prod
//!   Time:         2026-11-25T22:10:03.250Z
//!   Victim:       116 stress-ng-vm, uid 0, oom_score_adj 1000
//!   ...
//!   Tasks, by rss (memory in pages, as the kernel prints them):
//!   pid   uid   tgid   total_vm       rss   rss_anon ...   name
//!   116     0    116    2628942   1995298    1995157 ...   stress-ng-vm
//!
//!   Memory before the kill (sar -r):
//!   22:09:43    kbmemfree   kbavail kbmemused ...
//!   ```
//!
//! Clocks and alerts:
//!
//! - `ntp`: one row per (host, time source), keyed [`NTP_KEYS`]; a host without sources has one
//!   row with a `null` server. The table ends with each cluster's offset spread, the hosts'
//!   offsets taken from each one's synced source of lowest stratum:
//!
//!   ```text
//!   CLUSTER   HOST   SERVER         REACH   SYNCED   STRATUM   LEAP   OFFSET_MS ...
//!   prod      web1   10.0.0.1:123   yes     yes            2      0      -0.200 ...
//!   ...
//!
//!   cluster prod: 3 hosts, offset spread 250.4 ms (web1 -0.2 ms … web3 +250.2 ms)
//!   ```
//! - `alerts`: rows keyed [`ALERT_KEYS`], firing first, then pending, then resolved, newest first
//!   within each; the table is `STATE RULE CLUSTER HOSTS SINCE SUMMARY`.
//! - `rules check`: `FILE: N rules OK` and one line per rule, or JSON
//!   `{"file", "ok", "rules": [{"name", "kind", "cluster", "for"}]}` (`{"file", "ok", "error"}`
//!   for a file that does not validate).
//! - `policy ...`: the change plans, policy versions and per-host status; `render/policy.rs`
//!   describes them, and its functions are re-exported here.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use fleet_proto::schema::{schema, ActivitySchema};
use fleet_proto::v1::{
    Activity, Alert, HostIdentity, HostInfo, NtpHostStatus, NtpServerStatus, OomEvent, OomKill,
    OomKillDetail, OomProcess, SarRow, TopOomRow,
};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

mod policy;
mod status;
pub use policy::{
    change_headline, refused_line, render_policy_change, render_policy_history, render_policy_list,
    render_policy_status, ChangeOutcome, CHANGE_KEYS, DESCRIPTION_WIDTH, PLAN_KEYS, POLICY_KEYS,
    STATUS_KEYS,
};
pub use status::{render_collector_status, STATUS_CSV_KEYS};

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
    let rows: Vec<Vec<String>> = rows.iter().map(|row| row.to_vec()).collect();
    table(&rows, &[false; N])
}

/// Columns three spaces apart, column `i` right-aligned where `right[i]`, else left-aligned; no
/// trailing blanks.
fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("   ");
            }
            let w = widths[i];
            if right.get(i).copied().unwrap_or(false) {
                let _ = write!(line, "{cell:>w$}");
            } else {
                let _ = write!(line, "{cell:<w$}");
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
    out.push_str(&sar_body(schema, rows));
    out
}

/// The part of a sar table under the header line: the column header (at the start of the first
/// interval), the rows, the `Average:` lines. `rows` must not be empty.
fn sar_body(schema: &ActivitySchema, rows: &[&SarRow]) -> String {
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
// top-oom

/// The widest command line a table prints (the rest becomes `…`); JSON and CSV carry it whole.
pub const CMDLINE_WIDTH: usize = 60;

/// The keys of a `top-oom` row, in order (JSON and CSV).
pub const TOP_OOM_KEYS: [&str; 11] = [
    "host_id",
    "hostname",
    "cluster",
    "time",
    "pid",
    "comm",
    "cmdline",
    "uid",
    "oom_score",
    "oom_score_adj",
    "rss_kb",
];

/// One ranked process as `-o json` shows it. The field order is [`TOP_OOM_KEYS`].
#[derive(Debug, Serialize)]
struct TopOomView {
    host_id: String,
    hostname: String,
    cluster: String,
    /// When the host's ranking was taken.
    time: Option<String>,
    pid: i64,
    comm: String,
    cmdline: String,
    uid: i64,
    oom_score: i64,
    oom_score_adj: i64,
    rss_kb: u64,
}

impl TopOomView {
    fn new(row: &TopOomRow) -> Self {
        let process = row.process.clone().unwrap_or_default();
        Self::of(
            &row.host_id,
            &row.hostname,
            &row.cluster,
            row.time_ms,
            process,
        )
    }

    fn of(host_id: &str, hostname: &str, cluster: &str, time_ms: i64, p: OomProcess) -> Self {
        TopOomView {
            host_id: host_id.to_owned(),
            hostname: hostname.to_owned(),
            cluster: cluster.to_owned(),
            time: nonzero_rfc3339_ms(time_ms),
            pid: p.pid,
            comm: p.comm,
            cmdline: p.cmdline,
            uid: p.uid,
            oom_score: p.oom_score,
            oom_score_adj: p.oom_score_adj,
            rss_kb: p.rss_kb,
        }
    }

    fn csv_fields(&self) -> [String; 11] {
        [
            self.host_id.clone(),
            self.hostname.clone(),
            self.cluster.clone(),
            self.time.clone().unwrap_or_default(),
            self.pid.to_string(),
            self.comm.clone(),
            self.cmdline.clone(),
            self.uid.to_string(),
            self.oom_score.to_string(),
            self.oom_score_adj.to_string(),
            self.rss_kb.to_string(),
        ]
    }
}

/// Highest `oom_score` first; a stable sort, so ties keep the collector's order.
fn sort_top_oom(views: &mut [TopOomView]) {
    views.sort_by_key(|v| std::cmp::Reverse(v.oom_score));
}

/// Renders `fleetctl top-oom`: highest `oom_score` first, with each process's host.
pub fn render_top_oom(rows: &[TopOomRow], format: OutputFormat) -> String {
    let mut views: Vec<TopOomView> = rows.iter().map(TopOomView::new).collect();
    sort_top_oom(&mut views);
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let mut out = csv_line(TOP_OOM_KEYS);
            for v in &views {
                out.push_str(&csv_line(v.csv_fields()));
            }
            out
        }
        OutputFormat::Table => top_oom_table(&views, true),
    }
}

/// `HOST PID COMM OOM_SCORE ADJ RSS CMDLINE`, like `dstat --top-oom` with more columns; without
/// the host column for one host's ranking (`oom show`).
fn top_oom_table(views: &[TopOomView], with_host: bool) -> String {
    let skip = usize::from(!with_host);
    let mut rows = vec![
        ["HOST", "PID", "COMM", "OOM_SCORE", "ADJ", "RSS", "CMDLINE"]
            .iter()
            .skip(skip)
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    for v in views {
        let host = if v.hostname.is_empty() {
            &v.host_id
        } else {
            &v.hostname
        };
        let cells = [
            dash(host),
            v.pid.to_string(),
            dash(&printable(&v.comm, usize::MAX)),
            v.oom_score.to_string(),
            v.oom_score_adj.to_string(),
            human_kb(v.rss_kb),
            dash(&printable(&v.cmdline, CMDLINE_WIDTH)),
        ];
        rows.push(cells.into_iter().skip(skip).collect());
    }
    let right = [false, true, false, true, true, true, false];
    table(&rows, &right[skip..])
}

// ---------------------------------------------------------------------------------------------
// oom

/// The keys every kill row starts with. The collector's values win over same-named keys of the
/// parse-kmsg detail (its `time` is the kernel's text, its `source` the agent's guess).
pub const KILL_FIXED_KEYS: [&str; 6] = ["id", "host_id", "hostname", "cluster", "time", "source"];

/// The parse-kmsg keys, in the order rows print them; keys not listed follow, sorted, so a field
/// a newer agent adds reaches the output without a fleetctl change.
pub const KILL_DETAIL_KEYS: [&str; 35] = [
    "victim_pid",
    "victim_comm",
    "victim_uid",
    "total_vm_kb",
    "anon_rss_kb",
    "file_rss_kb",
    "shmem_rss_kb",
    "pgtables_kb",
    "oom_score_adj",
    "score",
    "selected_pid",
    "selected_comm",
    "constraint",
    "cpuset",
    "global_oom",
    "oom_memcg",
    "task_memcg",
    "trigger_comm",
    "trigger_pid",
    "trigger_oom_score_adj",
    "gfp_mask",
    "gfp_flags",
    "order",
    "mem_info",
    "tasks_count",
    "tasks",
    "tasks_dropped",
    "monotonic_s",
    "kmsg_seq",
    "partial",
    "suppressed",
    "reaped",
    "panic",
    "raw",
    "raw_dropped",
];

/// The keys only `oom show` prints: the task table and the report's lines.
const KILL_FULL_ONLY_KEYS: [&str; 2] = ["tasks", "raw"];

/// One kill as `oom` (without `tasks` and `raw`) and `oom show` (with them) print it.
#[derive(Debug, Clone, PartialEq)]
struct KillView {
    time_ms: i64,
    /// The keys in print order, with their values.
    fields: Vec<(String, Value)>,
}

impl KillView {
    /// The fixed keys, then the event's parse-kmsg object (`detail_json`) merged in. Typed fields
    /// of the event fill keys the object lacks, so an event whose detail is missing or unreadable
    /// still shows what the wire carries.
    fn new(kill: &OomKill, full: bool) -> Self {
        let none = OomEvent::default();
        let event = kill.event.as_ref().unwrap_or(&none);
        let mut detail = match serde_json::from_str(&event.detail_json) {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        for (key, value) in typed_event_fields(event) {
            if let Some(value) = value {
                detail.entry(key).or_insert(value);
            }
        }
        let source = match event.source.as_str() {
            "" => detail
                .get("source")
                .and_then(Value::as_str)
                .unwrap_or("kmsg")
                .to_owned(),
            source => source.to_owned(),
        };
        for key in KILL_FIXED_KEYS {
            detail.remove(key);
        }
        if let Some(Value::Array(tasks)) = detail.get("tasks") {
            let count = tasks.len();
            detail.entry("tasks_count").or_insert(count.into());
        }
        if !full {
            for key in KILL_FULL_ONLY_KEYS {
                detail.remove(key);
            }
        }
        let mut fields: Vec<(String, Value)> = vec![
            ("id".into(), kill.id.clone().into()),
            ("host_id".into(), kill.host_id.clone().into()),
            ("hostname".into(), kill.hostname.clone().into()),
            ("cluster".into(), kill.cluster.clone().into()),
            ("time".into(), nonzero_rfc3339_ms(event.time_ms).into()),
            ("source".into(), source.into()),
        ];
        for key in KILL_DETAIL_KEYS {
            if let Some(value) = detail.remove(key) {
                fields.push((key.to_owned(), value));
            }
        }
        let mut rest: Vec<(String, Value)> = detail.into_iter().collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        fields.extend(rest);
        KillView {
            time_ms: event.time_ms,
            fields,
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// `pid comm` of the victim (`victim`) or the trigger (`trigger`), as far as known.
    fn task(&self, who: &str) -> Option<String> {
        let pid = self.int(&format!("{who}_pid"));
        let comm = self
            .text(&format!("{who}_comm"))
            .map(|c| printable(c, usize::MAX));
        match (pid, comm) {
            (Some(pid), Some(comm)) => Some(format!("{pid} {comm}")),
            (Some(pid), None) => Some(pid.to_string()),
            (None, Some(comm)) => Some(comm),
            (None, None) => None,
        }
    }

    /// The victim column: `pid comm`, or why it is unknown.
    fn victim(&self) -> String {
        match self.task("victim") {
            Some(victim) => victim,
            None if self.text("source") == Some("vmstat") => "unknown (vmstat count)".to_owned(),
            None => "-".to_owned(),
        }
    }

    /// The memcg column: the victim's memory cgroup, else the one that ran out, else `global`
    /// for a global OOM.
    fn memcg(&self) -> String {
        let memcg = ["task_memcg", "oom_memcg"]
            .into_iter()
            .find_map(|key| self.text(key).filter(|s| !s.is_empty()));
        match (memcg, self.get("global_oom").and_then(Value::as_bool)) {
            (Some(memcg), _) => printable(memcg, usize::MAX),
            (None, Some(true)) => "global".to_owned(),
            (None, _) => "-".to_owned(),
        }
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool) == Some(true)
    }
}

impl Serialize for KillView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (key, value) in &self.fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The event's typed fields under their parse-kmsg keys; `None` where the wire has no value
/// (and for flags that are false, which parse-kmsg leaves out too).
fn typed_event_fields(e: &OomEvent) -> [(&'static str, Option<Value>); 22] {
    let flag = |on: bool| on.then_some(Value::Bool(true));
    [
        ("victim_pid", e.victim_pid.map(Value::from)),
        ("victim_comm", e.victim_comm.clone().map(Value::from)),
        ("victim_uid", e.victim_uid.map(Value::from)),
        ("total_vm_kb", e.total_vm_kb.map(Value::from)),
        ("anon_rss_kb", e.anon_rss_kb.map(Value::from)),
        ("file_rss_kb", e.file_rss_kb.map(Value::from)),
        ("shmem_rss_kb", e.shmem_rss_kb.map(Value::from)),
        ("pgtables_kb", e.pgtables_kb.map(Value::from)),
        ("oom_score_adj", e.oom_score_adj.map(Value::from)),
        ("score", e.score.map(Value::from)),
        ("constraint", e.constraint.clone().map(Value::from)),
        ("global_oom", e.global_oom.map(Value::from)),
        ("oom_memcg", e.oom_memcg.clone().map(Value::from)),
        ("task_memcg", e.task_memcg.clone().map(Value::from)),
        ("trigger_comm", e.trigger_comm.clone().map(Value::from)),
        ("trigger_pid", e.trigger_pid.map(Value::from)),
        ("gfp_mask", e.gfp_mask.clone().map(Value::from)),
        ("order", e.order.map(Value::from)),
        ("kmsg_seq", e.kmsg_seq.map(Value::from)),
        ("partial", flag(e.partial)),
        ("reaped", flag(e.reaped)),
        ("panic", flag(e.panic)),
    ]
}

/// The CSV header of `oom`: the fixed keys, the known parse-kmsg keys of the list view (always,
/// so the header is stable), then any other key some row has, sorted.
fn kill_csv_keys(views: &[KillView]) -> Vec<String> {
    let mut keys: Vec<String> = KILL_FIXED_KEYS
        .iter()
        .chain(
            KILL_DETAIL_KEYS
                .iter()
                .filter(|k| !KILL_FULL_ONLY_KEYS.contains(k)),
        )
        .map(|k| k.to_string())
        .collect();
    let mut extra: Vec<&str> = views
        .iter()
        .flat_map(|v| v.fields.iter().map(|(k, _)| k.as_str()))
        .filter(|k| !keys.iter().any(|known| known == k))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    keys.extend(extra.into_iter().map(String::from));
    keys
}

/// A JSON value as one CSV field: strings bare, `null` empty, arrays and objects as compact JSON.
fn csv_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Renders `fleetctl oom`: the kills newest first (the collector's order; the sort is stable).
pub fn render_oom_kills(kills: &[OomKill], format: OutputFormat) -> String {
    let mut views: Vec<KillView> = kills.iter().map(|k| KillView::new(k, false)).collect();
    views.sort_by_key(|v| std::cmp::Reverse(v.time_ms));
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let keys = kill_csv_keys(&views);
            let mut out = csv_line(&keys);
            for v in &views {
                out.push_str(&csv_line(keys.iter().map(|k| csv_value(v.get(k)))));
            }
            out
        }
        OutputFormat::Table => {
            let mut rows = vec![[
                "TIME", "HOST", "VICTIM", "MEMCG", "ANON_RSS", "TRIGGER", "ID",
            ]
            .map(String::from)
            .to_vec()];
            for v in &views {
                let host = v
                    .text("hostname")
                    .filter(|h| !h.is_empty())
                    .or(v.text("host_id"))
                    .unwrap_or("");
                rows.push(vec![
                    rfc3339(v.time_ms).unwrap_or_else(|| "-".into()),
                    dash(host),
                    v.victim(),
                    v.memcg(),
                    v.get("anon_rss_kb")
                        .and_then(Value::as_u64)
                        .map_or_else(|| "-".into(), human_kb),
                    v.task("trigger").unwrap_or_else(|| "-".into()),
                    dash(v.text("id").unwrap_or("")),
                ]);
            }
            table(&rows, &[false, false, false, false, true, false, false])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// oom show

/// `oom show -o json`: the kill in full and the evidence beside it. Field order is key order.
#[derive(Serialize)]
struct KillDetailView<'a> {
    kill: KillView,
    memory: Vec<SarJsonRow<'a>>,
    swap: Vec<SarJsonRow<'a>>,
    swapping: Vec<SarJsonRow<'a>>,
    paging: Vec<SarJsonRow<'a>>,
    top_oom: Vec<TopOomView>,
    top_oom_time: Option<String>,
}

/// The evidence sections of `oom show`: activity, title, rows (sorted as sar sorts them).
fn evidence(detail: &OomKillDetail) -> [(Activity, &'static str, Vec<SarRow>); 4] {
    let sorted = |rows: &[SarRow]| {
        let mut rows = rows.to_vec();
        sort_sar_rows(&mut rows);
        rows
    };
    [
        (Activity::Memory, "Memory", sorted(&detail.memory)),
        (Activity::Swap, "Swap space", sorted(&detail.swap)),
        (Activity::Swapping, "Swapping", sorted(&detail.swapping)),
        (Activity::Paging, "Paging", sorted(&detail.paging)),
    ]
}

/// The ranking before the kill, as top-oom rows of the kill's host.
fn detail_top_oom(detail: &OomKillDetail, kill: &OomKill) -> Vec<TopOomView> {
    let mut views: Vec<TopOomView> = detail
        .top_oom
        .iter()
        .map(|p| {
            TopOomView::of(
                &kill.host_id,
                &kill.hostname,
                &kill.cluster,
                detail.top_oom_time_ms,
                p.clone(),
            )
        })
        .collect();
    sort_top_oom(&mut views);
    views
}

/// Renders `fleetctl oom show -o json`: `kill` (an `oom` row with `tasks` and `raw`), the sar
/// rows `memory`, `swap`, `swapping`, `paging` (as `sar -o json` prints them), `top_oom` (as
/// `top-oom -o json` prints them) and `top_oom_time` (`null` when no ranking preceded the kill).
pub fn render_oom_detail_json(detail: &OomKillDetail) -> String {
    let kill = detail.kill.clone().unwrap_or_default();
    let [memory, swap, swapping, paging] = evidence(detail);
    fn rows<'a>((activity, _, rows): &'a (Activity, &str, Vec<SarRow>)) -> Vec<SarJsonRow<'a>> {
        match schema(*activity) {
            Some(schema) => rows.iter().map(|row| SarJsonRow { schema, row }).collect(),
            None => Vec::new(),
        }
    }
    let view = KillDetailView {
        kill: KillView::new(&kill, true),
        memory: rows(&memory),
        swap: rows(&swap),
        swapping: rows(&swapping),
        paging: rows(&paging),
        top_oom: detail_top_oom(detail, &kill),
        top_oom_time: nonzero_rfc3339_ms(detail.top_oom_time_ms),
    };
    json(&view)
}

/// Renders `fleetctl oom show`: the report's facts, the task table by rss, the host's sar
/// samples before the kill, and the last top-oom ranking before it.
pub fn render_oom_detail_table(detail: &OomKillDetail) -> String {
    let kill = detail.kill.clone().unwrap_or_default();
    let v = KillView::new(&kill, true);
    let mut out = format!("OOM kill {}\n", dash(&kill.id));

    let known = |parts: Vec<Option<String>>| {
        let parts: Vec<String> = parts.into_iter().flatten().collect();
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(", ")
        }
    };
    let labelled = |key: &str, label: &str| v.get(key).map(|x| format!("{label} {}", plain(x)));
    let kb = |key: &str, label: &str| v.get(key).map(|x| format!("{label} {}kB", plain(x)));
    let host = format!(
        "{} ({}), cluster {}",
        dash(&kill.hostname),
        dash(&kill.host_id),
        dash(&kill.cluster)
    );
    let time = rfc3339_ms(v.time_ms).unwrap_or_else(|| "-".into());
    // The task the killer chose, when a child was killed in its place.
    let selected = v
        .task("selected")
        .filter(|_| v.int("selected_pid") != v.int("victim_pid"))
        .map(|task| format!("selected {task}"));
    let victim = known(vec![
        Some(v.victim()),
        labelled("victim_uid", "uid"),
        labelled("oom_score_adj", "oom_score_adj"),
        labelled("score", "score"),
        selected,
    ]);
    let memory = known(vec![
        kb("total_vm_kb", "total-vm"),
        kb("anon_rss_kb", "anon-rss"),
        kb("file_rss_kb", "file-rss"),
        kb("shmem_rss_kb", "shmem-rss"),
        kb("pgtables_kb", "pgtables"),
    ]);
    let gfp = v.text("gfp_mask").map(|mask| match v.text("gfp_flags") {
        Some(flags) => format!("gfp_mask {mask}({flags})"),
        None => format!("gfp_mask {mask}"),
    });
    let trigger = known(vec![
        v.task("trigger"),
        gfp,
        labelled("order", "order"),
        labelled("trigger_oom_score_adj", "oom_score_adj"),
    ]);
    let scope = match v.get("global_oom").and_then(Value::as_bool) {
        Some(true) => Some("global OOM".to_owned()),
        Some(false) => Some("memory cgroup OOM".to_owned()),
        None => None,
    };
    let constraint = known(vec![
        v.text("constraint").map(String::from),
        scope,
        labelled("cpuset", "cpuset"),
    ]);
    let memcg = known(vec![
        labelled("task_memcg", "task_memcg"),
        labelled("oom_memcg", "oom_memcg"),
    ]);
    // The Mem-Info summary, as the parser names its values (`*_pages`, `*_kb`).
    let mem_info = v.get("mem_info").and_then(Value::as_object).map(|info| {
        let pairs: Vec<Option<String>> = info
            .iter()
            .map(|(key, value)| Some(format!("{key} {}", plain(value))))
            .collect();
        known(pairs)
    });
    let source = known(vec![
        v.text("source").map(String::from),
        v.flag("partial").then(|| "partial report".to_owned()),
        v.int("suppressed")
            .map(|n| format!("{n} earlier reports rate-limited")),
        labelled("tasks_dropped", "task rows dropped:"),
        labelled("raw_dropped", "lines dropped:"),
        v.flag("reaped").then(|| "reaped".to_owned()),
        v.flag("panic").then(|| "kernel panic".to_owned()),
    ]);
    let mut facts = vec![
        ["Host:", &host],
        ["Time:", &time],
        ["Victim:", &victim],
        ["Memory:", &memory],
        ["Trigger:", &trigger],
        ["Constraint:", &constraint],
        ["Memcg:", &memcg],
    ];
    if let Some(mem_info) = &mem_info {
        facts.push(["Mem-Info:", mem_info]);
    }
    facts.push(["Source:", &source]);
    let mut facts: Vec<Vec<String>> = facts
        .into_iter()
        .map(|[label, value]| vec![label.to_owned(), printable(value, usize::MAX)])
        .collect();
    if let Some(note) = v.text("note") {
        facts.push(vec!["Note:".to_owned(), printable(note, usize::MAX)]);
    }
    out.push_str(&table(&facts, &[false, false]));

    out.push('\n');
    match v.get("tasks").and_then(Value::as_array) {
        Some(tasks) if !tasks.is_empty() => {
            out.push_str("Tasks, by rss (memory in pages, as the kernel prints them):\n");
            out.push_str(&task_table(tasks));
        }
        _ => out.push_str("Tasks: none in the report\n"),
    }

    for (activity, title, rows) in evidence(detail) {
        let Some(schema) = schema(activity) else {
            continue;
        };
        out.push('\n');
        if rows.is_empty() {
            let _ = writeln!(
                out,
                "{title} before the kill (sar {}): no samples",
                schema.sar_flag
            );
        } else {
            let _ = writeln!(out, "{title} before the kill (sar {}):", schema.sar_flag);
            out.push_str(&sar_body(schema, &rows.iter().collect::<Vec<_>>()));
        }
    }

    out.push('\n');
    let top = detail_top_oom(detail, &kill);
    match nonzero_rfc3339_ms(detail.top_oom_time_ms) {
        Some(at) if !top.is_empty() => {
            let ago = (v.time_ms - detail.top_oom_time_ms).max(0) / 1000;
            let ago = humantime::format_duration(std::time::Duration::from_secs(ago as u64));
            let _ = writeln!(out, "Top-oom ranking at {at}, {ago} before the kill:");
            out.push_str(&top_oom_table(&top, false));
        }
        _ => out.push_str("Top-oom ranking before the kill: none stored\n"),
    }
    out
}

/// The task-table columns in the kernel's order; `name` last, unknown columns before it.
const TASK_COLUMNS: [&str; 14] = [
    "pid",
    "uid",
    "tgid",
    "total_vm",
    "rss",
    "rss_anon",
    "rss_file",
    "rss_shmem",
    "pgtables_bytes",
    "nr_ptes",
    "nr_pmds",
    "swapents",
    "oom_adj",
    "oom_score_adj",
];

/// The report's task table with the columns its kernel printed, largest rss first (rss, or on
/// kernels that split it only, the sum of its parts), then by pid.
fn task_table(tasks: &[Value]) -> String {
    let objects: Vec<&serde_json::Map<String, Value>> =
        tasks.iter().filter_map(Value::as_object).collect();
    let has = |key: &str| objects.iter().any(|o| o.contains_key(key));
    let mut columns: Vec<&str> = TASK_COLUMNS.iter().copied().filter(|c| has(c)).collect();
    let mut extra: Vec<&str> = objects
        .iter()
        .flat_map(|o| o.keys().map(String::as_str))
        .filter(|k| *k != "name" && !TASK_COLUMNS.contains(k))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    columns.extend(extra);
    columns.push("name");

    let number = |o: &serde_json::Map<String, Value>, key: &str| o.get(key).and_then(Value::as_u64);
    let rss = |o: &serde_json::Map<String, Value>| {
        number(o, "rss").unwrap_or_else(|| {
            ["rss_anon", "rss_file", "rss_shmem"]
                .iter()
                .filter_map(|k| number(o, k))
                .sum()
        })
    };
    let pid = |o: &serde_json::Map<String, Value>| o.get("pid").and_then(Value::as_i64);
    let mut sorted = objects.clone();
    sorted.sort_by(|a, b| rss(b).cmp(&rss(a)).then_with(|| pid(a).cmp(&pid(b))));

    let mut rows = vec![columns.iter().map(|c| c.to_string()).collect::<Vec<_>>()];
    for o in sorted {
        rows.push(
            columns
                .iter()
                .map(|c| match o.get(*c) {
                    None | Some(Value::Null) => "-".to_owned(),
                    Some(value) => printable(&plain(value), usize::MAX),
                })
                .collect(),
        );
    }
    let right: Vec<bool> = columns.iter().map(|c| *c != "name").collect();
    table(&rows, &right)
}

/// A JSON value as a table shows it: strings without quotes, anything else as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An amount of kB as a table shows it: `564K`, `1.9M`, `7.6G` (binary units, as `top` uses).
fn human_kb(kb: u64) -> String {
    const UNITS: [&str; 4] = ["M", "G", "T", "P"];
    if kb < 1024 {
        return format!("{kb}K");
    }
    let mut value = kb as f64 / 1024.0;
    let mut unit = 0;
    // Roll over before rounding would print 1024.0.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}

/// `s` fit for one table cell: control characters (a cmdline's newlines, tabs) as spaces, cut to
/// `max` characters with `…` marking the cut.
fn printable(s: &str, max: usize) -> String {
    let clean = s.chars().map(|c| if c.is_control() { ' ' } else { c });
    if s.chars().count() <= max {
        clean.collect()
    } else {
        clean
            .take(max.saturating_sub(1))
            .chain(std::iter::once('…'))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// ntp

/// The keys of an `ntp` row, in order (JSON and CSV).
pub const NTP_KEYS: [&str; 14] = [
    "host_id",
    "hostname",
    "cluster",
    "server",
    "reachable",
    "synced",
    "offset_ms",
    "delay_ms",
    "stratum",
    "leap",
    "error",
    "kernel_synced",
    "collector_offset_ms",
    "time",
];

/// The most hosts a cluster's spread line names as having no synced source; the rest are counted.
const SPREAD_NAMES: usize = 5;

/// One (host, time source) as `-o json` shows it. The field order is [`NTP_KEYS`].
///
/// A host without sources has one row whose source fields are `null` (and `synced` false). An
/// unreachable source has `null` offset, delay, stratum and leap: the wire's zeros there are no
/// measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct NtpView {
    host_id: String,
    hostname: String,
    cluster: String,
    server: Option<String>,
    reachable: Option<bool>,
    /// See [`source_synced`].
    synced: bool,
    offset_ms: Option<f64>,
    delay_ms: Option<f64>,
    stratum: Option<u32>,
    leap: Option<u32>,
    error: Option<String>,
    /// The kernel's STA_UNSYNC flag is clear. `null` when not known: no kernel status, or the flag
    /// is set while chronyd runs, which chronyd does on purpose (unless `rtcsync`), so it is no
    /// sign of trouble.
    kernel_synced: Option<bool>,
    /// The host's clock minus the collector's, measured over the agent's stream.
    collector_offset_ms: Option<f64>,
    /// When the agent measured.
    time: Option<String>,
    /// `time` for the table, which shows whole seconds.
    #[serde(skip)]
    time_ms: i64,
}

impl NtpView {
    /// The rows of one host: one per source, in the agent's (configured) order, or one without a
    /// source.
    fn rows(host: &NtpHostStatus) -> Vec<NtpView> {
        let clock = host.clock.clone().unwrap_or_default();
        let kernel_synced = clock
            .kernel
            .as_ref()
            .and_then(|k| match (k.synced, k.chronyd) {
                (true, _) => Some(true),
                (false, true) => None,
                (false, false) => Some(false),
            });
        let host_row = NtpView {
            host_id: host.host_id.clone(),
            hostname: host.hostname.clone(),
            cluster: host.cluster.clone(),
            server: None,
            reachable: None,
            synced: false,
            offset_ms: None,
            delay_ms: None,
            stratum: None,
            leap: None,
            error: None,
            kernel_synced,
            collector_offset_ms: host.collector_offset_ms.filter(|v| v.is_finite()),
            time: nonzero_rfc3339_ms(host.time_ms),
            time_ms: host.time_ms,
        };
        if clock.servers.is_empty() {
            return vec![host_row];
        }
        clock
            .servers
            .iter()
            .map(|s| {
                let measured = |v: f64| Some(v).filter(|v| s.reachable && v.is_finite());
                NtpView {
                    server: Some(s.server.clone()),
                    reachable: Some(s.reachable),
                    synced: source_synced(s),
                    offset_ms: measured(s.offset_ms),
                    delay_ms: measured(s.delay_ms),
                    stratum: s.reachable.then_some(s.stratum),
                    leap: s.reachable.then_some(s.leap),
                    error: Some(s.error.clone()).filter(|e| !e.is_empty()),
                    ..host_row.clone()
                }
            })
            .collect()
    }

    fn host(&self) -> &str {
        if self.hostname.is_empty() {
            &self.host_id
        } else {
            &self.hostname
        }
    }
}

/// Whether a source can set a clock: reachable, leap indicator not 3 and stratum 1 to 15 (RFC
/// 5905's unsynchronised cases), and so flagged by the agent. fleetctl checks the facts itself
/// too, so a source is never shown synced against them.
fn source_synced(s: &NtpServerStatus) -> bool {
    s.synced && s.reachable && s.leap != 3 && (1..=15).contains(&s.stratum)
}

/// A host's offset as its cluster's spread counts it: from its synced source with the lowest
/// stratum, ties to the lower delay, then to the first configured.
fn best_offset(host: &NtpHostStatus) -> Option<f64> {
    host.clock
        .as_ref()?
        .servers
        .iter()
        .filter(|s| source_synced(s) && s.offset_ms.is_finite())
        .min_by(|a, b| {
            a.stratum
                .cmp(&b.stratum)
                .then(a.delay_ms.total_cmp(&b.delay_ms))
        })
        .map(|s| s.offset_ms)
}

/// What a cluster's spread line says.
#[derive(Debug, Clone, PartialEq)]
struct ClusterSpread<'a> {
    cluster: &'a str,
    hosts: usize,
    /// Name and offset of each host with a synced source, in host order.
    offsets: Vec<(&'a str, f64)>,
    /// The hosts without one.
    unsynced: Vec<&'a str>,
}

impl ClusterSpread<'_> {
    /// `cluster prod: 3 hosts, offset spread 250.4 ms (web1 -0.2 ms … web3 +250.2 ms)`, with the
    /// hosts that have no synced source named after it.
    fn line(&self) -> String {
        let hosts = match self.hosts {
            1 => "1 host".to_owned(),
            n => format!("{n} hosts"),
        };
        let mut line = format!("cluster {}: {hosts}, offset spread ", dash(self.cluster));
        // min_by keeps the first of equals and max_by the last, so the two differ.
        let by_offset = |a: &&(&str, f64), b: &&(&str, f64)| a.1.total_cmp(&b.1);
        match (
            self.offsets.iter().min_by(by_offset),
            self.offsets.iter().max_by(by_offset),
        ) {
            (Some(low), Some(high)) if self.offsets.len() >= 2 => {
                let _ = write!(
                    line,
                    "{:.1} ms ({} {:+.1} ms … {} {:+.1} ms)",
                    high.1 - low.1,
                    printable(low.0, usize::MAX),
                    low.1,
                    printable(high.0, usize::MAX),
                    high.1
                );
            }
            _ => line.push_str("n/a (needs two hosts with a synced source)"),
        }
        if !self.unsynced.is_empty() {
            line.push_str("; no synced source: ");
            let named: Vec<String> = self.unsynced[..self.unsynced.len().min(SPREAD_NAMES)]
                .iter()
                .map(|name| printable(name, usize::MAX))
                .collect();
            line.push_str(&named.join(", "));
            if self.unsynced.len() > SPREAD_NAMES {
                let _ = write!(line, " and {} more", self.unsynced.len() - SPREAD_NAMES);
            }
        }
        line
    }
}

/// The spread of each cluster, clusters in `hosts` order (sorted by the caller).
fn cluster_spreads<'a>(hosts: &[&'a NtpHostStatus]) -> Vec<ClusterSpread<'a>> {
    let mut spreads: Vec<ClusterSpread<'a>> = Vec::new();
    for host in hosts {
        let i = match spreads.iter().position(|c| c.cluster == host.cluster) {
            Some(i) => i,
            None => {
                spreads.push(ClusterSpread {
                    cluster: &host.cluster,
                    hosts: 0,
                    offsets: Vec::new(),
                    unsynced: Vec::new(),
                });
                spreads.len() - 1
            }
        };
        let spread = &mut spreads[i];
        let name = if host.hostname.is_empty() {
            &host.host_id
        } else {
            &host.hostname
        };
        spread.hosts += 1;
        match best_offset(host) {
            Some(offset) => spread.offsets.push((name, offset)),
            None => spread.unsynced.push(name),
        }
    }
    spreads
}

/// Renders `fleetctl ntp`: hosts sorted by cluster, hostname and host id, each with one row per
/// source. The table ends with one spread line per cluster (`ClusterSpread::line`).
pub fn render_ntp(hosts: &[NtpHostStatus], format: OutputFormat) -> String {
    let mut hosts: Vec<&NtpHostStatus> = hosts.iter().collect();
    hosts.sort_by(|a, b| {
        (&a.cluster, &a.hostname, &a.host_id).cmp(&(&b.cluster, &b.hostname, &b.host_id))
    });
    let views: Vec<NtpView> = hosts.iter().flat_map(|h| NtpView::rows(h)).collect();
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let mut out = csv_line(NTP_KEYS);
            for v in &views {
                let value = serde_json::to_value(v).expect("plain data always serializes");
                out.push_str(&csv_line(NTP_KEYS.iter().map(|k| csv_value(value.get(k)))));
            }
            out
        }
        OutputFormat::Table => {
            if views.is_empty() {
                return String::new();
            }
            let mut rows = vec![[
                "CLUSTER",
                "HOST",
                "SERVER",
                "REACH",
                "SYNCED",
                "STRATUM",
                "LEAP",
                "OFFSET_MS",
                "DELAY_MS",
                "COLLECTOR_MS",
                "KERNEL",
                "TIME",
                "ERROR",
            ]
            .map(String::from)
            .to_vec()];
            let yes_no = |b: Option<bool>| match b {
                Some(true) => "yes".to_owned(),
                Some(false) => "no".to_owned(),
                None => "-".to_owned(),
            };
            let ms = |v: Option<f64>, signed: bool| match v {
                Some(v) if signed => format!("{v:+.3}"),
                Some(v) => format!("{v:.3}"),
                None => "-".to_owned(),
            };
            let number = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            for v in &views {
                rows.push(vec![
                    dash(&v.cluster),
                    dash(&printable(v.host(), usize::MAX)),
                    dash(&printable(v.server.as_deref().unwrap_or(""), usize::MAX)),
                    yes_no(v.reachable),
                    yes_no(Some(v.synced)),
                    number(v.stratum),
                    number(v.leap),
                    ms(v.offset_ms, true),
                    ms(v.delay_ms, false),
                    ms(v.collector_offset_ms, true),
                    yes_no(v.kernel_synced),
                    rfc3339(v.time_ms).unwrap_or_else(|| "-".into()),
                    dash(&printable(v.error.as_deref().unwrap_or(""), usize::MAX)),
                ]);
            }
            let right = [
                false, false, false, false, false, true, true, true, true, true, false, false,
                false,
            ];
            let mut out = table(&rows, &right);
            out.push('\n');
            for spread in cluster_spreads(&hosts) {
                out.push_str(&spread.line());
                out.push('\n');
            }
            out
        }
    }
}

// ---------------------------------------------------------------------------------------------
// alerts

/// The keys of an `alerts` row, in order (JSON and CSV).
pub const ALERT_KEYS: [&str; 10] = [
    "rule",
    "kind",
    "state",
    "cluster",
    "hosts",
    "summary",
    "since",
    "active_since",
    "value",
    "labels",
];

/// The widest host list a table prints; the hosts left out are counted.
pub const HOSTS_WIDTH: usize = 40;

/// One alert as `-o json` shows it. The field order is [`ALERT_KEYS`].
#[derive(Debug, Serialize)]
struct AlertView {
    rule: String,
    kind: String,
    state: String,
    cluster: String,
    hosts: Vec<String>,
    summary: String,
    /// When the alert entered its current state.
    since: Option<String>,
    /// When its condition first held.
    active_since: Option<String>,
    /// The measured value behind it (spread, offset, count, ...).
    value: Option<f64>,
    labels: BTreeMap<String, String>,
    #[serde(skip)]
    since_ms: i64,
}

impl AlertView {
    fn new(alert: &Alert) -> Self {
        AlertView {
            rule: alert.rule.clone(),
            kind: alert.kind.clone(),
            state: alert.state.clone(),
            cluster: alert.cluster.clone(),
            hosts: alert.hosts.clone(),
            summary: alert.summary.clone(),
            since: nonzero_rfc3339_ms(alert.since_ms),
            active_since: nonzero_rfc3339_ms(alert.active_since_ms),
            value: Some(alert.value).filter(|v| v.is_finite()),
            labels: alert
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            since_ms: alert.since_ms,
        }
    }

    /// Firing first, then pending, then resolved (then any state a newer collector adds).
    fn state_rank(&self) -> u8 {
        match self.state.as_str() {
            "firing" => 0,
            "pending" => 1,
            "resolved" => 2,
            _ => 3,
        }
    }
}

/// `web-1, web-2, web-3 +12 more`: as many names as fit in `width` characters, and how many
/// did not.
fn host_list(hosts: &[String], width: usize) -> String {
    let mut out = String::new();
    for (i, host) in hosts.iter().enumerate() {
        let host = printable(host, width);
        let rest = hosts.len() - i;
        let sep = if i == 0 { "" } else { ", " };
        // Room for this name, and for the count of the others unless it is the last.
        let more = if rest > 1 {
            format!(" +{} more", rest - 1).len()
        } else {
            0
        };
        if i > 0 && out.chars().count() + sep.len() + host.chars().count() + more > width {
            let _ = write!(out, " +{rest} more");
            return out;
        }
        out.push_str(sep);
        out.push_str(&host);
    }
    out
}

/// Renders `fleetctl alerts`: firing first, then pending, then resolved; newest first within a
/// state.
pub fn render_alerts(alerts: &[Alert], format: OutputFormat) -> String {
    let mut views: Vec<AlertView> = alerts.iter().map(AlertView::new).collect();
    views.sort_by(|a, b| {
        (
            a.state_rank(),
            std::cmp::Reverse(a.since_ms),
            &a.rule,
            &a.cluster,
        )
            .cmp(&(
                b.state_rank(),
                std::cmp::Reverse(b.since_ms),
                &b.rule,
                &b.cluster,
            ))
    });
    match format {
        OutputFormat::Json => json(&views),
        OutputFormat::Csv => {
            let mut out = csv_line(ALERT_KEYS);
            for v in &views {
                let labels: Vec<String> =
                    v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
                out.push_str(&csv_line([
                    v.rule.as_str(),
                    &v.kind,
                    &v.state,
                    &v.cluster,
                    &v.hosts.join(","),
                    &v.summary,
                    v.since.as_deref().unwrap_or(""),
                    v.active_since.as_deref().unwrap_or(""),
                    &v.value.map(|x| x.to_string()).unwrap_or_default(),
                    &labels.join(","),
                ]));
            }
            out
        }
        OutputFormat::Table => {
            if views.is_empty() {
                return String::new();
            }
            let mut rows = vec![["STATE", "RULE", "CLUSTER", "HOSTS", "SINCE", "SUMMARY"]
                .map(String::from)
                .to_vec()];
            for v in &views {
                rows.push(vec![
                    dash(&v.state),
                    dash(&printable(&v.rule, usize::MAX)),
                    dash(&v.cluster),
                    dash(&host_list(&v.hosts, HOSTS_WIDTH)),
                    rfc3339(v.since_ms).unwrap_or_else(|| "-".into()),
                    dash(&printable(&v.summary, usize::MAX)),
                ]);
            }
            table(&rows, &[false; 6])
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rules check

/// One rule as `rules check` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleLine {
    pub name: String,
    pub kind: String,
    /// `None`: the rule applies to every cluster.
    pub cluster: Option<String>,
    /// How long the condition must hold before the alert fires.
    pub for_: std::time::Duration,
}

/// `rules check -o json`, a file that validates. The field order is the key order.
#[derive(Serialize)]
struct RulesOkView<'a> {
    file: &'a str,
    ok: bool,
    rules: Vec<RuleView<'a>>,
}

#[derive(Serialize)]
struct RuleView<'a> {
    name: &'a str,
    kind: &'a str,
    cluster: Option<&'a str>,
    #[serde(rename = "for")]
    for_: String,
}

/// `rules check -o json`, a file that does not.
#[derive(Serialize)]
struct RulesErrorView<'a> {
    file: &'a str,
    ok: bool,
    error: &'a str,
}

/// Renders `fleetctl rules check` of a file that validates: `FILE: N rules OK` and one line per
/// rule (table), `{"file", "ok": true, "rules": [{"name", "kind", "cluster", "for"}]}` (JSON, a
/// `null` cluster for every cluster), or the rules' keys as a CSV header and one line per rule.
pub fn render_rules_ok(file: &str, rules: &[RuleLine], format: OutputFormat) -> String {
    let for_text = |r: &RuleLine| humantime::format_duration(r.for_).to_string();
    match format {
        OutputFormat::Json => json(&RulesOkView {
            file,
            ok: true,
            rules: rules
                .iter()
                .map(|r| RuleView {
                    name: &r.name,
                    kind: &r.kind,
                    cluster: r.cluster.as_deref(),
                    for_: for_text(r),
                })
                .collect(),
        }),
        OutputFormat::Csv => {
            let mut out = csv_line(["name", "kind", "cluster", "for"]);
            for r in rules {
                out.push_str(&csv_line([
                    r.name.as_str(),
                    &r.kind,
                    r.cluster.as_deref().unwrap_or(""),
                    &for_text(r),
                ]));
            }
            out
        }
        OutputFormat::Table => {
            let count = match rules.len() {
                1 => "1 rule".to_owned(),
                n => format!("{n} rules"),
            };
            let mut out = format!("{file}: {count} OK\n");
            let rows: Vec<Vec<String>> = rules
                .iter()
                .map(|r| {
                    vec![
                        format!("  {}", printable(&r.name, usize::MAX)),
                        r.kind.clone(),
                        r.cluster.as_deref().map_or_else(
                            || "all clusters".to_owned(),
                            |c| printable(c, usize::MAX),
                        ),
                        format!("for {}", for_text(r)),
                    ]
                })
                .collect();
            out.push_str(&table(&rows, &[false; 4]));
            out
        }
    }
}

/// Renders `fleetctl rules check -o json` of a file that does not validate (or cannot be read):
/// `{"file", "ok": false, "error"}`. The other formats say `error` on stderr alone.
pub fn render_rules_error_json(file: &str, error: &str) -> String {
    json(&RulesErrorView {
        file,
        ok: false,
        error,
    })
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

/// [`rfc3339_ms`], with `None` for 0 (no such time).
fn nonzero_rfc3339_ms(ms: i64) -> Option<String> {
    (ms != 0).then(|| rfc3339_ms(ms)).flatten()
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
    use fleet_proto::v1::{Activity, ClockStatus, KernelClock};

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
        crate::golden::check("hosts.json", &text);
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
        crate::golden::check(
            "hosts-table.txt",
            &render_hosts(&hosts, OutputFormat::Table),
        );
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
        crate::golden::check("hosts.csv", &render_hosts(&hosts, OutputFormat::Csv));
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
        crate::golden::check(
            "sar-cpu-table.txt",
            &render_sar(cpu, &cpu_rows(), &hosts, OutputFormat::Table),
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
        crate::golden::check("sar-memory-wide-table.txt", &text);
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
        crate::golden::check(
            "sar-load-two-hosts-table.txt",
            &render_sar(load, &rows, &hosts, OutputFormat::Table),
        );
        assert_eq!(render_sar(load, &[], &hosts, OutputFormat::Table), "");
    }

    #[test]
    fn sar_table_marks_missing_values() {
        let swapping = schema(Activity::Swapping).unwrap();
        let rows = [row("a1", "web-1", T0, "-", &[f64::NAN])];
        let text = render_sar(swapping, &rows, &[], OutputFormat::Table);
        crate::golden::check("sar-missing-values-table.txt", &text);
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
        crate::golden::check("sar-disk.json", &text);
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
        crate::golden::check("sar-memory.json", &text);
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
        crate::golden::check(
            "sar-net-dev.csv",
            &render_sar(net, &rows, &[], OutputFormat::Csv),
        );
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

    // -----------------------------------------------------------------------------------------
    // top-oom, oom, oom show

    fn process(
        pid: i64,
        comm: &str,
        cmdline: &str,
        score: i64,
        adj: i64,
        rss_kb: u64,
    ) -> OomProcess {
        OomProcess {
            pid,
            comm: comm.into(),
            cmdline: cmdline.into(),
            uid: 1000,
            oom_score: score,
            oom_score_adj: adj,
            rss_kb,
        }
    }

    fn top_row(host: &str, name: &str, p: OomProcess) -> TopOomRow {
        TopOomRow {
            host_id: host.into(),
            hostname: name.into(),
            cluster: "prod".into(),
            time_ms: T0,
            process: Some(p),
        }
    }

    fn top_rows() -> Vec<TopOomRow> {
        vec![
            top_row(
                "b2",
                "db-1",
                process(42, "postgres", "postgres -D /var/lib/pg", 300, 0, 2_097_152),
            ),
            top_row(
                "a1",
                "web-1",
                process(
                    7,
                    "java",
                    "/usr/bin/java -Xmx4g -Dapp.name=shop -Dlog.dir=/var/log/shop -jar /opt/shop/shop.jar --port 8080",
                    1500,
                    1000,
                    4_500_000,
                ),
            ),
            top_row("a1", "web-1", process(9, "sleep", "", 2, -998, 512)),
        ]
    }

    fn keys(value: &serde_json::Value) -> Vec<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    /// Keys in the order the text shows them (serde_json's map may sort them).
    fn keys_in_text_order<'a>(text: &str, keys: &[&'a str]) -> Vec<&'a str> {
        let mut found: Vec<(usize, &str)> = keys
            .iter()
            .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), *k))
            .collect();
        found.sort_unstable();
        found.into_iter().map(|(_, k)| k).collect()
    }

    #[test]
    fn top_oom_json_has_exactly_the_contract_keys() {
        let text = render_top_oom(&top_rows(), OutputFormat::Json);
        crate::golden::check("top-oom.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        assert_eq!(rows.len(), 3);
        let mut got = keys(&rows[0]);
        got.sort_unstable();
        let mut want = TOP_OOM_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(
            keys_in_text_order(&text[..text.find('}').unwrap()], &TOP_OOM_KEYS),
            TOP_OOM_KEYS
        );
        // Highest oom_score first, whatever order the rows came in.
        assert_eq!(rows[0]["host_id"], "a1");
        assert_eq!(rows[0]["pid"], 7);
        assert_eq!(rows[0]["oom_score"], 1500);
        assert_eq!(rows[0]["oom_score_adj"], 1000);
        assert_eq!(rows[0]["rss_kb"], 4_500_000);
        assert_eq!(rows[0]["uid"], 1000);
        assert_eq!(rows[0]["time"], "2026-11-25T22:10:03.000Z");
        assert_eq!(rows[0]["hostname"], "web-1");
        assert_eq!(rows[0]["cluster"], "prod");
        // JSON carries the command line whole.
        assert!(rows[0]["cmdline"]
            .as_str()
            .unwrap()
            .ends_with("--port 8080"));
        assert_eq!(rows[1]["comm"], "postgres");
        assert_eq!(rows[2]["oom_score_adj"], -998);
        assert_eq!(render_top_oom(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn top_oom_table_cuts_the_cmdline() {
        let want = "\
HOST    PID   COMM       OOM_SCORE    ADJ    RSS   CMDLINE
web-1     7   java            1500   1000   4.3G   /usr/bin/java -Xmx4g -Dapp.name=shop -Dlog.dir=/var/log/sho…
db-1     42   postgres         300      0   2.0G   postgres -D /var/lib/pg
web-1     9   sleep              2   -998   512K   -
";
        assert_eq!(render_top_oom(&top_rows(), OutputFormat::Table), want);
        crate::golden::check(
            "top-oom-table.txt",
            &render_top_oom(&top_rows(), OutputFormat::Table),
        );
        let cmdline = want.lines().nth(1).unwrap().split("   ").last().unwrap();
        assert_eq!(cmdline.chars().count(), CMDLINE_WIDTH);
    }

    #[test]
    fn top_oom_csv_has_the_json_keys() {
        let want = "\
host_id,hostname,cluster,time,pid,comm,cmdline,uid,oom_score,oom_score_adj,rss_kb
a1,web-1,prod,2026-11-25T22:10:03.000Z,7,java,/usr/bin/java -Xmx4g -Dapp.name=shop -Dlog.dir=/var/log/shop -jar /opt/shop/shop.jar --port 8080,1000,1500,1000,4500000
b2,db-1,prod,2026-11-25T22:10:03.000Z,42,postgres,postgres -D /var/lib/pg,1000,300,0,2097152
a1,web-1,prod,2026-11-25T22:10:03.000Z,9,sleep,,1000,2,-998,512
";
        assert_eq!(render_top_oom(&top_rows(), OutputFormat::Csv), want);
        crate::golden::check(
            "top-oom.csv",
            &render_top_oom(&top_rows(), OutputFormat::Csv),
        );
    }

    /// What `fleet-agent parse-kmsg` prints for the 6.11 global OOM of the corpus
    /// (022-qemu611-global-rssanon-cpu-uid-dmesg), with two lines of its raw text.
    const DETAIL_611: &str = r#"{"victim_pid":116,"victim_comm":"stress-ng-vm","victim_uid":0,
        "total_vm_kb":10515768,"anon_rss_kb":7980628,"file_rss_kb":564,"shmem_rss_kb":0,
        "pgtables_kb":15676,"oom_score_adj":1000,"constraint":"CONSTRAINT_NONE","global_oom":true,
        "task_memcg":"/","trigger_comm":"stress-ng-vm","trigger_pid":116,"gfp_mask":"0x440dc0",
        "order":0,"tasks":[
        {"pid":111,"uid":0,"tgid":111,"total_vm":431,"rss":289,"rss_anon":32,"rss_file":257,"rss_shmem":0,"pgtables_bytes":49152,"swapents":0,"oom_score_adj":0,"name":"sh"},
        {"pid":114,"uid":0,"tgid":114,"total_vm":7500,"rss":4676,"rss_anon":96,"rss_file":452,"rss_shmem":4128,"pgtables_bytes":90112,"swapents":0,"oom_score_adj":-1000,"name":"stress-ng"},
        {"pid":115,"uid":0,"tgid":115,"total_vm":7501,"rss":270,"rss_anon":84,"rss_file":186,"rss_shmem":0,"pgtables_bytes":61440,"swapents":0,"oom_score_adj":-1000,"name":"stress-ng-vm"},
        {"pid":116,"uid":0,"tgid":116,"total_vm":2628942,"rss":1995298,"rss_anon":1995157,"rss_file":141,"rss_shmem":0,"pgtables_bytes":16052224,"swapents":0,"oom_score_adj":1000,"name":"stress-ng-vm"}],
        "raw":["stress-ng-vm invoked oom-killer: gfp_mask=0x440dc0(GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=1000",
        "Out of memory: Killed process 116 (stress-ng-vm) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB, UID:0 pgtables:15676kB oom_score_adj:1000"],
        "monotonic_s":30.745839,"time":"[   30.745839]","reaped":true,"cgroup_v":2}"#;

    fn kill_611() -> OomKill {
        OomKill {
            id: "1-19abc2e5d18-0".into(),
            host_id: "a1".into(),
            hostname: "web-1".into(),
            cluster: "prod".into(),
            event: Some(OomEvent {
                time_ms: T0 + 250,
                victim_pid: Some(116),
                victim_comm: Some("stress-ng-vm".into()),
                anon_rss_kb: Some(7_980_628),
                global_oom: Some(true),
                task_memcg: Some("/".into()),
                trigger_comm: Some("stress-ng-vm".into()),
                trigger_pid: Some(116),
                reaped: true,
                source: "kmsg".into(),
                detail_json: DETAIL_611.into(),
                ..OomEvent::default()
            }),
        }
    }

    fn kill_memcg() -> OomKill {
        let detail = r#"{"victim_pid":140339,"victim_comm":"python3","victim_uid":0,"total_vm_kb":120832,
            "anon_rss_kb":15596,"file_rss_kb":8924,"shmem_rss_kb":0,"pgtables_kb":276,
            "oom_score_adj":-997,"global_oom":false,"constraint":"CONSTRAINT_MEMCG",
            "oom_memcg":"/kubepods/burstable/pod1","task_memcg":"/kubepods/burstable/pod1/c1",
            "trigger_comm":"python3","tasks":[],"raw":["x"],"partial":true,
            "mem_info":{"memcg_usage_kb":65536,"memcg_limit_kb":65536}}"#;
        OomKill {
            id: "2-19abc2e0000-1".into(),
            host_id: "b2".into(),
            hostname: "db-1".into(),
            cluster: "prod".into(),
            event: Some(OomEvent {
                time_ms: T0 - 60_000,
                partial: true,
                source: "kmsg".into(),
                detail_json: detail.into(),
                ..OomEvent::default()
            }),
        }
    }

    fn kill_vmstat() -> OomKill {
        OomKill {
            id: "1-19abc2d0000-2".into(),
            host_id: "a1".into(),
            hostname: "web-1".into(),
            cluster: "prod".into(),
            event: Some(OomEvent {
                time_ms: T0 - 3_600_000,
                partial: true,
                source: "vmstat".into(),
                detail_json: r#"{"source":"vmstat","oom_kill":3,"note":"counted by /proc/vmstat oom_kill but not found in the kernel log"}"#.into(),
                ..OomEvent::default()
            }),
        }
    }

    fn kills() -> Vec<OomKill> {
        vec![kill_611(), kill_memcg(), kill_vmstat()]
    }

    #[test]
    fn oom_json_rows_merge_the_parse_kmsg_object() {
        let text = render_oom_kills(&kills(), OutputFormat::Json);
        crate::golden::check("oom.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        assert_eq!(rows.len(), 3);

        let row = rows[0].as_object().unwrap();
        let want = [
            "id",
            "host_id",
            "hostname",
            "cluster",
            "time",
            "source",
            "victim_pid",
            "victim_comm",
            "victim_uid",
            "total_vm_kb",
            "anon_rss_kb",
            "file_rss_kb",
            "shmem_rss_kb",
            "pgtables_kb",
            "oom_score_adj",
            "constraint",
            "global_oom",
            "task_memcg",
            "trigger_comm",
            "trigger_pid",
            "gfp_mask",
            "order",
            "tasks_count",
            "monotonic_s",
            "reaped",
            // Keys fleetctl does not know come last, sorted.
            "cgroup_v",
        ];
        let mut got = keys(&rows[0]);
        got.sort_unstable();
        let mut sorted = want.to_vec();
        sorted.sort_unstable();
        assert_eq!(got, sorted);
        let first = &text[..text.find('}').unwrap()];
        assert_eq!(keys_in_text_order(first, &want), want);
        assert_eq!(row["id"], "1-19abc2e5d18-0");
        // The event's time wins over the kernel's text.
        assert_eq!(row["time"], "2026-11-25T22:10:03.250Z");
        assert_eq!(row["source"], "kmsg");
        assert_eq!(row["victim_pid"], 116);
        assert_eq!(row["anon_rss_kb"], 7_980_628);
        assert_eq!(row["global_oom"], true);
        assert_eq!(row["tasks_count"], 4);
        assert_eq!(row["monotonic_s"], 30.745839);
        assert!(!row.contains_key("tasks") && !row.contains_key("raw"));

        let memcg = rows[1].as_object().unwrap();
        assert_eq!(memcg["oom_score_adj"], -997);
        assert_eq!(memcg["tasks_count"], 0);
        assert_eq!(memcg["partial"], true);
        assert_eq!(memcg["oom_memcg"], "/kubepods/burstable/pod1");
        assert!(!memcg.contains_key("victim_memcg"));

        let vmstat = rows[2].as_object().unwrap();
        let mut got = keys(&rows[2]);
        got.sort_unstable();
        let mut want = [
            "id", "host_id", "hostname", "cluster", "time", "source", "partial", "note", "oom_kill",
        ];
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(vmstat["source"], "vmstat");
        assert_eq!(vmstat["oom_kill"], 3);
        assert_eq!(vmstat["time"], "2026-11-25T21:10:03.000Z");
        assert_eq!(render_oom_kills(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn oom_row_without_a_readable_detail_shows_the_typed_fields() {
        let mut kill = kill_611();
        let event = kill.event.as_mut().unwrap();
        event.detail_json = "not json".into();
        let view = KillView::new(&kill, false);
        let keys: Vec<&str> = view.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "id",
                "host_id",
                "hostname",
                "cluster",
                "time",
                "source",
                "victim_pid",
                "victim_comm",
                "anon_rss_kb",
                "global_oom",
                "task_memcg",
                "trigger_comm",
                "trigger_pid",
                "reaped"
            ]
        );
    }

    #[test]
    fn the_collectors_keys_win_over_the_details() {
        let mut kill = kill_vmstat();
        kill.event.as_mut().unwrap().detail_json =
            r#"{"id":"forged","host_id":"x","hostname":"x","cluster":"x","source":"kmsg"}"#.into();
        let view = KillView::new(&kill, false);
        assert_eq!(view.text("id"), Some("1-19abc2d0000-2"));
        assert_eq!(view.text("host_id"), Some("a1"));
        assert_eq!(view.text("source"), Some("vmstat"));
        assert_eq!(view.fields.len(), 7, "{:?}", view.fields);
    }

    #[test]
    fn oom_table() {
        let want = "\
TIME                   HOST    VICTIM                   MEMCG                         ANON_RSS   TRIGGER            ID
2026-11-25T22:10:03Z   web-1   116 stress-ng-vm         /                                 7.6G   116 stress-ng-vm   1-19abc2e5d18-0
2026-11-25T22:09:03Z   db-1    140339 python3           /kubepods/burstable/pod1/c1      15.2M   python3            2-19abc2e0000-1
2026-11-25T21:10:03Z   web-1   unknown (vmstat count)   -                                    -   -                  1-19abc2d0000-2
";
        assert_eq!(render_oom_kills(&kills(), OutputFormat::Table), want);
        crate::golden::check(
            "oom-table.txt",
            &render_oom_kills(&kills(), OutputFormat::Table),
        );
        assert_eq!(
            render_oom_kills(&[], OutputFormat::Table),
            "TIME   HOST   VICTIM   MEMCG   ANON_RSS   TRIGGER   ID\n"
        );
    }

    #[test]
    fn oom_memcg_column_falls_back_to_global() {
        let mut kill = kill_611();
        let event = kill.event.as_mut().unwrap();
        event.detail_json = r#"{"victim_pid":1,"global_oom":true}"#.into();
        event.task_memcg = None;
        assert_eq!(KillView::new(&kill, false).memcg(), "global");
        kill.event.as_mut().unwrap().global_oom = None;
        assert_eq!(KillView::new(&kill, false).memcg(), "global");
        let mut kill = kill_memcg();
        kill.event.as_mut().unwrap().detail_json = r#"{"oom_memcg":"/a"}"#.into();
        assert_eq!(KillView::new(&kill, false).memcg(), "/a");
        kill.event.as_mut().unwrap().detail_json = "{}".into();
        assert_eq!(KillView::new(&kill, false).memcg(), "-");
    }

    #[test]
    fn oom_csv_has_a_stable_header() {
        let text = render_oom_kills(&kills(), OutputFormat::Csv);
        crate::golden::check("oom.csv", &text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        // Every known key but tasks and raw, then the keys only some rows have, sorted.
        let mut want: Vec<&str> = KILL_FIXED_KEYS.to_vec();
        want.extend(
            KILL_DETAIL_KEYS
                .iter()
                .filter(|k| **k != "tasks" && **k != "raw"),
        );
        want.extend(["cgroup_v", "note", "oom_kill"]);
        assert_eq!(lines[0], want.join(","));
        let empty = render_oom_kills(&[], OutputFormat::Csv);
        assert_eq!(empty, want[..want.len() - 3].join(",") + "\n");

        let row = |pairs: &[(&str, &str)]| {
            want.iter()
                .map(|k| {
                    pairs
                        .iter()
                        .find(|(key, _)| key == k)
                        .map_or("", |(_, v)| *v)
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(
            lines[1],
            row(&[
                ("id", "1-19abc2e5d18-0"),
                ("host_id", "a1"),
                ("hostname", "web-1"),
                ("cluster", "prod"),
                ("time", "2026-11-25T22:10:03.250Z"),
                ("source", "kmsg"),
                ("victim_pid", "116"),
                ("victim_comm", "stress-ng-vm"),
                ("victim_uid", "0"),
                ("total_vm_kb", "10515768"),
                ("anon_rss_kb", "7980628"),
                ("file_rss_kb", "564"),
                ("shmem_rss_kb", "0"),
                ("pgtables_kb", "15676"),
                ("oom_score_adj", "1000"),
                ("constraint", "CONSTRAINT_NONE"),
                ("global_oom", "true"),
                ("task_memcg", "/"),
                ("trigger_comm", "stress-ng-vm"),
                ("trigger_pid", "116"),
                ("gfp_mask", "0x440dc0"),
                ("order", "0"),
                ("tasks_count", "4"),
                ("monotonic_s", "30.745839"),
                ("reaped", "true"),
                ("cgroup_v", "2"),
            ])
        );
        // An object is one field of compact JSON, quoted.
        assert!(
            lines[2].contains(",\"{\"\"memcg_limit_kb\"\":65536,\"\"memcg_usage_kb\"\":65536}\","),
            "{}",
            lines[2]
        );
        assert_eq!(
            lines[3],
            row(&[
                ("id", "1-19abc2d0000-2"),
                ("host_id", "a1"),
                ("hostname", "web-1"),
                ("cluster", "prod"),
                ("time", "2026-11-25T21:10:03.000Z"),
                ("source", "vmstat"),
                ("partial", "true"),
                (
                    "note",
                    "counted by /proc/vmstat oom_kill but not found in the kernel log"
                ),
                ("oom_kill", "3"),
            ])
        );
    }

    fn sar_row_at(time_ms: i64, values: &[f64]) -> SarRow {
        row("a1", "web-1", time_ms, "-", values)
    }

    fn detail_611() -> OomKillDetail {
        OomKillDetail {
            kill: Some(kill_611()),
            memory: vec![
                sar_row_at(
                    T0 - 10_000,
                    &[
                        90_000.0,
                        120_000.0,
                        7_900_000.0,
                        98.9,
                        0.0,
                        30_000.0,
                        9_000_000.0,
                        112.5,
                        7_800_000.0,
                        10_000.0,
                        12.0,
                    ],
                ),
                sar_row_at(
                    T0,
                    &[
                        60_000.0,
                        80_000.0,
                        7_930_000.0,
                        99.25,
                        0.0,
                        29_000.0,
                        9_000_000.0,
                        112.5,
                        7_830_000.0,
                        9_000.0,
                        10.0,
                    ],
                ),
            ],
            swap: vec![sar_row_at(T0, &[0.0, 0.0, 0.0, 0.0, 0.0])],
            swapping: Vec::new(),
            paging: vec![sar_row_at(
                T0,
                &[0.0, 12.5, 3000.0, 2.0, 1500.0, 800.0, 0.0, 800.0, 100.0],
            )],
            top_oom_time_ms: T0 - 5_000,
            top_oom: vec![
                process(115, "stress-ng-vm", "stress-ng-vm", 0, -1000, 1080),
                process(
                    116,
                    "stress-ng-vm",
                    "stress-ng --vm 1 --vm-bytes 90%",
                    1998,
                    1000,
                    6_000_000,
                ),
            ],
        }
    }

    #[test]
    fn oom_show_json_is_the_kill_in_full_and_its_evidence() {
        let text = render_oom_detail_json(&detail_611());
        crate::golden::check("oom-show.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let want = [
            "kill",
            "memory",
            "swap",
            "swapping",
            "paging",
            "top_oom",
            "top_oom_time",
        ];
        let mut got = keys(&value);
        got.sort_unstable();
        let mut sorted = want.to_vec();
        sorted.sort_unstable();
        assert_eq!(got, sorted);
        assert_eq!(keys_in_text_order(&text, &want), want);

        let kill = &value["kill"];
        assert_eq!(kill["id"], "1-19abc2e5d18-0");
        assert_eq!(kill["time"], "2026-11-25T22:10:03.250Z");
        assert_eq!(kill["tasks_count"], 4);
        assert_eq!(kill["tasks"].as_array().unwrap().len(), 4);
        // The task table as the kernel printed it: JSON keeps its order.
        assert_eq!(kill["tasks"][0]["name"], "sh");
        assert_eq!(kill["tasks"][3]["rss_anon"], 1_995_157);
        assert_eq!(kill["raw"].as_array().unwrap().len(), 2);
        // Apart from tasks and raw, the kill has the keys of its `oom` row.
        let list = render_oom_kills(&[kill_611()], OutputFormat::Json);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        let mut full = keys(kill);
        full.retain(|k| *k != "tasks" && *k != "raw");
        full.sort_unstable();
        let mut row = keys(&list[0]);
        row.sort_unstable();
        assert_eq!(full, row);

        let memory = value["memory"].as_array().unwrap();
        assert_eq!(memory.len(), 2);
        let mem_schema = schema(Activity::Memory).unwrap();
        let mut got = keys(&memory[0]);
        got.sort_unstable();
        let mut want = sar_keys(mem_schema);
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(memory[1]["kbmemfree"], 60_000);
        assert_eq!(memory[1]["%memused"], 99.25);
        assert_eq!(memory[1]["time"], "2026-11-25T22:10:03.000Z");
        assert_eq!(value["swap"][0]["kbswpfree"], 0);
        assert_eq!(value["swapping"], serde_json::json!([]));
        assert_eq!(value["paging"][0]["pgpgout/s"], 12.5);

        let top = value["top_oom"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        let mut got = keys(&top[0]);
        got.sort_unstable();
        let mut want = TOP_OOM_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(top[0]["pid"], 116);
        assert_eq!(top[0]["host_id"], "a1");
        assert_eq!(top[0]["time"], "2026-11-25T22:09:58.000Z");
        assert_eq!(value["top_oom_time"], "2026-11-25T22:09:58.000Z");

        let mut none = detail_611();
        none.top_oom_time_ms = 0;
        none.top_oom.clear();
        let value: serde_json::Value =
            serde_json::from_str(&render_oom_detail_json(&none)).unwrap();
        assert_eq!(value["top_oom_time"], serde_json::Value::Null);
        assert_eq!(value["top_oom"], serde_json::json!([]));
    }

    #[test]
    fn oom_show_table() {
        let want = "\
OOM kill 1-19abc2e5d18-0
Host:         web-1 (a1), cluster prod
Time:         2026-11-25T22:10:03.250Z
Victim:       116 stress-ng-vm, uid 0, oom_score_adj 1000
Memory:       total-vm 10515768kB, anon-rss 7980628kB, file-rss 564kB, shmem-rss 0kB, pgtables 15676kB
Trigger:      116 stress-ng-vm, gfp_mask 0x440dc0, order 0
Constraint:   CONSTRAINT_NONE, global OOM
Memcg:        task_memcg /
Source:       kmsg, reaped

Tasks, by rss (memory in pages, as the kernel prints them):
pid   uid   tgid   total_vm       rss   rss_anon   rss_file   rss_shmem   pgtables_bytes   swapents   oom_score_adj   name
116     0    116    2628942   1995298    1995157        141           0         16052224          0            1000   stress-ng-vm
114     0    114       7500      4676         96        452        4128            90112          0           -1000   stress-ng
111     0    111        431       289         32        257           0            49152          0               0   sh
115     0    115       7501       270         84        186           0            61440          0           -1000   stress-ng-vm

Memory before the kill (sar -r):
22:09:43    kbmemfree   kbavail kbmemused  %memused kbbuffers  kbcached  kbcommit   %commit  kbactive   kbinact   kbdirty
22:09:53        90000    120000   7900000     98.90         0     30000   9000000    112.50   7800000     10000        12
22:10:03        60000     80000   7930000     99.25         0     29000   9000000    112.50   7830000      9000        10
Average:        75000    100000   7915000     99.08         0     29500   9000000    112.50   7815000      9500        11

Swap space before the kill (sar -S):
22:09:53    kbswpfree kbswpused  %swpused  kbswpcad   %swpcad
22:10:03            0         0      0.00         0      0.00
Average:            0         0      0.00         0      0.00

Swapping before the kill (sar -W): no samples

Paging before the kill (sar -B):
22:09:53     pgpgin/s pgpgout/s   fault/s  majflt/s  pgfree/s pgscank/s pgscand/s pgsteal/s    %vmeff
22:10:03         0.00     12.50   3000.00      2.00   1500.00    800.00      0.00    800.00    100.00
Average:         0.00     12.50   3000.00      2.00   1500.00    800.00      0.00    800.00    100.00

Top-oom ranking at 2026-11-25T22:09:58.000Z, 5s before the kill:
PID   COMM           OOM_SCORE     ADJ    RSS   CMDLINE
116   stress-ng-vm        1998    1000   5.7G   stress-ng --vm 1 --vm-bytes 90%
115   stress-ng-vm           0   -1000   1.1M   stress-ng-vm
";
        let got = render_oom_detail_table(&detail_611());
        assert_eq!(got, want, "\n{got}");
        crate::golden::check("oom-show-table.txt", &got);
    }

    #[test]
    fn oom_show_table_of_a_kill_only_vmstat_counted() {
        let detail = OomKillDetail {
            kill: Some(kill_vmstat()),
            ..OomKillDetail::default()
        };
        let want = "\
OOM kill 1-19abc2d0000-2
Host:         web-1 (a1), cluster prod
Time:         2026-11-25T21:10:03.000Z
Victim:       unknown (vmstat count)
Memory:       -
Trigger:      -
Constraint:   -
Memcg:        -
Source:       vmstat, partial report
Note:         counted by /proc/vmstat oom_kill but not found in the kernel log

Tasks: none in the report

Memory before the kill (sar -r): no samples

Swap space before the kill (sar -S): no samples

Swapping before the kill (sar -W): no samples

Paging before the kill (sar -B): no samples

Top-oom ranking before the kill: none stored
";
        let got = render_oom_detail_table(&detail);
        assert_eq!(got, want, "\n{got}");
        crate::golden::check("oom-show-vmstat-table.txt", &got);
    }

    #[test]
    fn oom_show_table_says_what_the_parser_flagged() {
        let detail = r#"{"victim_pid":301,"victim_comm":"worker","selected_pid":300,
            "selected_comm":"master","score":912,"suppressed":3,"tasks_dropped":120,
            "raw_dropped":40,"partial":true,"panic":true}"#;
        let mut kill = kill_611();
        let event = kill.event.as_mut().unwrap();
        *event = OomEvent {
            time_ms: T0,
            source: "kmsg".into(),
            detail_json: detail.into(),
            ..OomEvent::default()
        };
        let text = render_oom_detail_table(&OomKillDetail {
            kill: Some(kill),
            ..OomKillDetail::default()
        });
        crate::golden::check("oom-show-flagged-table.txt", &text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[3],
            "Victim:       301 worker, score 912, selected 300 master"
        );
        assert_eq!(
            lines[8],
            "Source:       kmsg, partial report, 3 earlier reports rate-limited, \
             task rows dropped: 120, lines dropped: 40, kernel panic"
        );
    }

    #[test]
    fn oom_rows_are_newest_first() {
        let mut oldest_first = kills();
        oldest_first.reverse();
        assert_eq!(
            render_oom_kills(&oldest_first, OutputFormat::Table),
            render_oom_kills(&kills(), OutputFormat::Table)
        );
    }

    #[test]
    fn task_table_has_the_columns_its_kernel_printed() {
        // 3.10's table: no tgid, no rss split, nr_ptes; a row cut short lacks columns.
        let tasks: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"pid":1,"uid":0,"total_vm":48401,"rss":1047,"nr_ptes":98,"swapents":0,"oom_score_adj":0,"name":"systemd"},
                {"pid":2310,"uid":27,"total_vm":1234567,"rss":980000,"nr_ptes":2100,"swapents":10,"oom_score_adj":0,"name":"mysqld"},
                {"pid":900,"name":"cut"}]"#,
        )
        .unwrap();
        // (No `\` line continuation: it would eat the header's leading blank.)
        let want = " pid   uid   total_vm      rss   nr_ptes   swapents   oom_score_adj   name
2310    27    1234567   980000      2100         10               0   mysqld
   1     0      48401     1047        98          0               0   systemd
 900     -          -        -         -          -               -   cut
";
        assert_eq!(task_table(&tasks), want);
        crate::golden::check("oom-show-tasks-3.10-table.txt", &task_table(&tasks));
        // Without an rss column (only its parts), the parts' sum orders the rows.
        let tasks: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"pid":1,"rss_anon":10,"rss_file":5,"name":"a"},{"pid":2,"rss_anon":12,"rss_file":0,"extra":"x","name":"b"}]"#,
        )
        .unwrap();
        let want = "\
pid   rss_anon   rss_file   extra   name
  1         10          5       -   a
  2         12          0       x   b
";
        assert_eq!(task_table(&tasks), want);
        crate::golden::check("oom-show-tasks-split-rss-table.txt", &task_table(&tasks));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_kb(0), "0K");
        assert_eq!(human_kb(1023), "1023K");
        assert_eq!(human_kb(1024), "1.0M");
        assert_eq!(human_kb(15_596), "15.2M");
        assert_eq!(human_kb(1_048_575), "1.0G");
        assert_eq!(human_kb(7_980_628), "7.6G");
        assert_eq!(human_kb(3 * 1024 * 1024 * 1024), "3.0T");
        assert_eq!(human_kb(u64::MAX), "16777216.0P");
    }

    #[test]
    fn printable_cells() {
        assert_eq!(printable("a\tb\nc", 10), "a b c");
        assert_eq!(printable("abcdef", 4), "abc…");
        assert_eq!(printable("abcd", 4), "abcd");
        assert_eq!(printable("ééééé", 3), "éé…");
        assert_eq!(printable("", 3), "");
    }

    // -----------------------------------------------------------------------------------------
    // ntp, alerts, rules check

    fn source(server: &str, stratum: u32, offset_ms: f64, delay_ms: f64) -> NtpServerStatus {
        NtpServerStatus {
            server: server.into(),
            reachable: true,
            offset_ms,
            delay_ms,
            stratum,
            leap: 0,
            reference_id: "GPS".into(),
            root_delay_ms: 0.1,
            root_dispersion_ms: 0.2,
            precision: -20,
            poll: 6,
            synced: true,
            error: String::new(),
        }
    }

    fn ntp_host(
        id: &str,
        name: &str,
        cluster: &str,
        servers: Vec<NtpServerStatus>,
    ) -> NtpHostStatus {
        NtpHostStatus {
            host_id: id.into(),
            hostname: name.into(),
            cluster: cluster.into(),
            time_ms: T0,
            clock: Some(ClockStatus {
                servers,
                kernel: Some(KernelClock {
                    synced: true,
                    est_error_ms: 0.5,
                    max_error_ms: 16.0,
                    freq_ppm: -3.2,
                    chronyd: false,
                }),
            }),
            collector_offset_ms: Some(1.25),
            collector_delay_ms: Some(0.3),
        }
    }

    /// Four hosts in prod, web3 250 ms off, db1 with only an unsynchronised source; one host
    /// without any clock status in dev.
    fn ntp_hosts() -> Vec<NtpHostStatus> {
        let unreachable = NtpServerStatus {
            reachable: false,
            synced: false,
            error: "timeout".into(),
            ..source("10.0.0.4:123", 0, 0.0, 0.0)
        };
        let mut web2 = ntp_host(
            "b2",
            "web2",
            "prod",
            vec![source("10.0.0.1:123", 2, 0.1, 0.5)],
        );
        web2.clock.as_mut().unwrap().kernel = Some(KernelClock {
            synced: false,
            chronyd: true,
            ..KernelClock::default()
        });
        // The agent's flag says synced, the facts say otherwise: leap 3, stratum 16.
        let unsynchronised = NtpServerStatus {
            leap: 3,
            ..source("10.0.0.1:123", 16, 12.0, 0.5)
        };
        let mut db1 = ntp_host("d1", "db1", "prod", vec![unsynchronised]);
        db1.collector_offset_ms = None;
        db1.collector_delay_ms = None;
        db1.clock.as_mut().unwrap().kernel.as_mut().unwrap().synced = false;
        vec![
            ntp_host(
                "c3",
                "web3",
                "prod",
                vec![source("10.9.9.9:123", 1, 250.2, 0.7)],
            ),
            ntp_host(
                "a1",
                "web1",
                "prod",
                vec![
                    source("10.0.0.3:123", 3, 5.0, 0.2),
                    source("10.0.0.2:123", 2, 1.5, 0.9),
                    source("10.0.0.1:123", 2, -0.2, 0.4),
                    unreachable,
                ],
            ),
            web2,
            db1,
            NtpHostStatus {
                host_id: "e5".into(),
                hostname: "h1".into(),
                cluster: "dev".into(),
                ..NtpHostStatus::default()
            },
        ]
    }

    #[test]
    fn ntp_json_has_one_row_per_host_and_source() {
        let text = render_ntp(&ntp_hosts(), OutputFormat::Json);
        crate::golden::check("ntp.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        // h1 (dev), db1, web1 x4, web2, web3.
        assert_eq!(rows.len(), 8, "{text}");
        for row in rows {
            let mut got = keys(row);
            got.sort_unstable();
            let mut want = NTP_KEYS.to_vec();
            want.sort_unstable();
            assert_eq!(got, want);
        }
        assert_eq!(keys_in_text_order(&text, &NTP_KEYS), NTP_KEYS);

        let hosts: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r["hostname"].as_str().unwrap(),
                    r["server"].as_str().unwrap_or("null"),
                )
            })
            .collect();
        assert_eq!(
            hosts,
            [
                ("h1", "null"),
                ("db1", "10.0.0.1:123"),
                // Sources keep the agent's (configured) order.
                ("web1", "10.0.0.3:123"),
                ("web1", "10.0.0.2:123"),
                ("web1", "10.0.0.1:123"),
                ("web1", "10.0.0.4:123"),
                ("web2", "10.0.0.1:123"),
                ("web3", "10.9.9.9:123"),
            ]
        );
        // A host without a clock status: one row, nothing measured.
        let none = serde_json::json!({
            "host_id": "e5", "hostname": "h1", "cluster": "dev", "server": null,
            "reachable": null, "synced": false, "offset_ms": null, "delay_ms": null,
            "stratum": null, "leap": null, "error": null, "kernel_synced": null,
            "collector_offset_ms": null, "time": null
        });
        assert_eq!(rows[0], none);
        let web1 = serde_json::json!({
            "host_id": "a1", "hostname": "web1", "cluster": "prod", "server": "10.0.0.1:123",
            "reachable": true, "synced": true, "offset_ms": -0.2, "delay_ms": 0.4,
            "stratum": 2, "leap": 0, "error": null, "kernel_synced": true,
            "collector_offset_ms": 1.25, "time": "2026-11-25T22:10:03.000Z"
        });
        assert_eq!(rows[4], web1);
        // Unreachable: no measurement, and why.
        assert_eq!(rows[5]["reachable"], false);
        assert_eq!(rows[5]["synced"], false);
        assert_eq!(rows[5]["offset_ms"], serde_json::Value::Null);
        assert_eq!(rows[5]["stratum"], serde_json::Value::Null);
        assert_eq!(rows[5]["error"], "timeout");
        // Unsynchronised (leap 3, stratum 16) is never synced, whatever the agent's flag.
        assert_eq!(rows[1]["synced"], false);
        assert_eq!(rows[1]["leap"], 3);
        assert_eq!(rows[1]["offset_ms"], 12.0);
        assert_eq!(rows[1]["kernel_synced"], false);
        assert_eq!(rows[1]["collector_offset_ms"], serde_json::Value::Null);
        // chronyd keeps the kernel's flag unsynchronised: unknown, not an alarm.
        assert_eq!(rows[6]["kernel_synced"], serde_json::Value::Null);
        assert_eq!(render_ntp(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn ntp_table_ends_with_each_clusters_spread() {
        let got = render_ntp(&ntp_hosts(), OutputFormat::Table);
        let want = "\
CLUSTER   HOST   SERVER         REACH   SYNCED   STRATUM   LEAP   OFFSET_MS   DELAY_MS   COLLECTOR_MS   KERNEL   TIME                   ERROR
dev       h1     -              -       no             -      -           -          -              -   -        -                      -
prod      db1    10.0.0.1:123   yes     no            16      3     +12.000      0.500              -   no       2026-11-25T22:10:03Z   -
prod      web1   10.0.0.3:123   yes     yes            3      0      +5.000      0.200         +1.250   yes      2026-11-25T22:10:03Z   -
prod      web1   10.0.0.2:123   yes     yes            2      0      +1.500      0.900         +1.250   yes      2026-11-25T22:10:03Z   -
prod      web1   10.0.0.1:123   yes     yes            2      0      -0.200      0.400         +1.250   yes      2026-11-25T22:10:03Z   -
prod      web1   10.0.0.4:123   no      no             -      -           -          -         +1.250   yes      2026-11-25T22:10:03Z   timeout
prod      web2   10.0.0.1:123   yes     yes            2      0      +0.100      0.500         +1.250   -        2026-11-25T22:10:03Z   -
prod      web3   10.9.9.9:123   yes     yes            1      0    +250.200      0.700         +1.250   yes      2026-11-25T22:10:03Z   -

cluster dev: 1 host, offset spread n/a (needs two hosts with a synced source); no synced source: h1
cluster prod: 4 hosts, offset spread 250.4 ms (web1 -0.2 ms … web3 +250.2 ms); no synced source: db1
";
        assert_eq!(got, want, "\n{got}");
        crate::golden::check("ntp-table.txt", &got);
        assert_eq!(render_ntp(&[], OutputFormat::Table), "");
    }

    #[test]
    fn ntp_csv_has_the_json_keys() {
        let text = render_ntp(&ntp_hosts(), OutputFormat::Csv);
        crate::golden::check("ntp.csv", &text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], NTP_KEYS.join(","));
        assert_eq!(lines[1], "e5,h1,dev,,,false,,,,,,,,");
        assert_eq!(
            lines[5],
            "a1,web1,prod,10.0.0.1:123,true,true,-0.2,0.4,2,0,,true,1.25,2026-11-25T22:10:03.000Z"
        );
        assert_eq!(
            lines[6],
            "a1,web1,prod,10.0.0.4:123,false,false,,,,,timeout,true,1.25,2026-11-25T22:10:03.000Z"
        );
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn spread_uses_the_lowest_stratum_then_the_lowest_delay() {
        let hosts = ntp_hosts();
        assert_eq!(best_offset(&hosts[1]), Some(-0.2));
        // Same stratum and delay: the first configured.
        let tie = ntp_host(
            "x",
            "x",
            "prod",
            vec![source("a", 2, 7.0, 0.4), source("b", 2, 8.0, 0.4)],
        );
        assert_eq!(best_offset(&tie), Some(7.0));
        assert_eq!(best_offset(&hosts[3]), None);
        assert_eq!(best_offset(&hosts[4]), None);
    }

    #[test]
    fn spread_lines() {
        let one = |name: &str, offset: f64| {
            ntp_host(name, name, "prod", vec![source("s", 2, offset, 1.0)])
        };
        let line = |hosts: &[NtpHostStatus]| {
            let refs: Vec<&NtpHostStatus> = hosts.iter().collect();
            cluster_spreads(&refs)
                .iter()
                .map(ClusterSpread::line)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            line(&[one("web1", -0.2), one("web2", 0.1), one("web3", 250.2)]),
            ["cluster prod: 3 hosts, offset spread 250.4 ms (web1 -0.2 ms … web3 +250.2 ms)"]
        );
        // Equal offsets still name two hosts.
        assert_eq!(
            line(&[one("a", 1.0), one("b", 1.0)]),
            ["cluster prod: 2 hosts, offset spread 0.0 ms (a +1.0 ms … b +1.0 ms)"]
        );
        assert_eq!(
            line(&[one("a", 1.0)]),
            ["cluster prod: 1 host, offset spread n/a (needs two hosts with a synced source)"]
        );
        let mut hosts = vec![one("a", 1.0), one("b", 3.0)];
        for i in 0..7 {
            hosts.push(ntp_host(
                &format!("u{i}"),
                &format!("u{i}"),
                "prod",
                Vec::new(),
            ));
        }
        assert_eq!(
            line(&hosts),
            [
                "cluster prod: 9 hosts, offset spread 2.0 ms (a +1.0 ms … b +3.0 ms); \
              no synced source: u0, u1, u2, u3, u4 and 2 more"
            ]
        );
    }

    fn alert(rule: &str, state: &str, since_ms: i64, hosts: &[&str]) -> Alert {
        Alert {
            rule: rule.into(),
            kind: "clock_skew".into(),
            state: state.into(),
            cluster: "prod".into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            summary: format!("{rule}: clock offsets in cluster prod spread 250.4 ms"),
            since_ms,
            active_since_ms: since_ms - 10_000,
            labels: [
                ("rule".to_owned(), rule.to_owned()),
                ("cluster".to_owned(), "prod".to_owned()),
            ]
            .into(),
            value: 250.4,
        }
    }

    fn alerts() -> Vec<Alert> {
        vec![
            alert("old-skew", "resolved", T0 - 3_600_000, &["web1", "web3"]),
            alert("prod-clock-skew", "firing", T0, &["web1", "web3"]),
            alert("new-skew", "resolved", T0 - 60_000, &["web3"]),
            Alert {
                kind: "host_silent".into(),
                summary: "db1 has sent nothing for 1m".into(),
                cluster: String::new(),
                ..alert("silent", "pending", T0 + 5_000, &["db1"])
            },
        ]
    }

    #[test]
    fn alerts_json_has_the_contract_keys() {
        let text = render_alerts(&alerts(), OutputFormat::Json);
        crate::golden::check("alerts.json", &text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = value.as_array().unwrap();
        assert_eq!(rows.len(), 4);
        let mut got = keys(&rows[0]);
        got.sort_unstable();
        let mut want = ALERT_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(keys_in_text_order(&text, &ALERT_KEYS), ALERT_KEYS);
        assert_eq!(
            rows[0],
            serde_json::json!({
                "rule": "prod-clock-skew",
                "kind": "clock_skew",
                "state": "firing",
                "cluster": "prod",
                "hosts": ["web1", "web3"],
                "summary": "prod-clock-skew: clock offsets in cluster prod spread 250.4 ms",
                "since": "2026-11-25T22:10:03.000Z",
                "active_since": "2026-11-25T22:09:53.000Z",
                "value": 250.4,
                "labels": {"cluster": "prod", "rule": "prod-clock-skew"}
            })
        );
        // Firing, pending, then resolved newest first.
        let order: Vec<&str> = rows.iter().map(|r| r["rule"].as_str().unwrap()).collect();
        assert_eq!(order, ["prod-clock-skew", "silent", "new-skew", "old-skew"]);
        let mut nan = alerts().remove(1);
        nan.value = f64::NAN;
        nan.active_since_ms = 0;
        let value: serde_json::Value =
            serde_json::from_str(&render_alerts(&[nan], OutputFormat::Json)).unwrap();
        assert_eq!(value[0]["value"], serde_json::Value::Null);
        assert_eq!(value[0]["active_since"], serde_json::Value::Null);
        assert_eq!(render_alerts(&[], OutputFormat::Json), "[]\n");
    }

    #[test]
    fn alerts_table() {
        let want = "\
STATE      RULE              CLUSTER   HOSTS        SINCE                  SUMMARY
firing     prod-clock-skew   prod      web1, web3   2026-11-25T22:10:03Z   prod-clock-skew: clock offsets in cluster prod spread 250.4 ms
pending    silent            -         db1          2026-11-25T22:10:08Z   db1 has sent nothing for 1m
resolved   new-skew          prod      web3         2026-11-25T22:09:03Z   new-skew: clock offsets in cluster prod spread 250.4 ms
resolved   old-skew          prod      web1, web3   2026-11-25T21:10:03Z   old-skew: clock offsets in cluster prod spread 250.4 ms
";
        let got = render_alerts(&alerts(), OutputFormat::Table);
        assert_eq!(got, want, "\n{got}");
        crate::golden::check("alerts-table.txt", &got);
        assert_eq!(render_alerts(&[], OutputFormat::Table), "");
    }

    #[test]
    fn alerts_csv() {
        let text = render_alerts(&alerts()[1..2], OutputFormat::Csv);
        crate::golden::check("alerts-firing.csv", &text);
        crate::golden::check("alerts.csv", &render_alerts(&alerts(), OutputFormat::Csv));
        assert_eq!(
            text,
            "rule,kind,state,cluster,hosts,summary,since,active_since,value,labels\n\
             prod-clock-skew,clock_skew,firing,prod,\"web1,web3\",\
             prod-clock-skew: clock offsets in cluster prod spread 250.4 ms,\
             2026-11-25T22:10:03.000Z,2026-11-25T22:09:53.000Z,250.4,\
             \"cluster=prod,rule=prod-clock-skew\"\n"
        );
    }

    #[test]
    fn host_lists_fit_their_column() {
        let hosts = |n: usize| (1..=n).map(|i| format!("web-{i:02}")).collect::<Vec<_>>();
        assert_eq!(host_list(&[], 40), "");
        assert_eq!(host_list(&hosts(1), 40), "web-01");
        assert_eq!(
            host_list(&hosts(5), 40),
            "web-01, web-02, web-03, web-04, web-05"
        );
        let cut = host_list(&hosts(30), 40);
        assert_eq!(cut, "web-01, web-02, web-03, web-04 +26 more");
        assert!(cut.chars().count() <= 40);
        // A name longer than the column is cut, not dropped.
        let long = vec!["x".repeat(60), "y".into()];
        assert_eq!(host_list(&long, 10), format!("{}… +1 more", "x".repeat(9)));
    }

    fn rule_lines() -> Vec<RuleLine> {
        vec![
            RuleLine {
                name: "prod-clock-skew".into(),
                kind: "clock_skew".into(),
                cluster: Some("prod".into()),
                for_: std::time::Duration::from_secs(5),
            },
            RuleLine {
                name: "silent".into(),
                kind: "host_silent".into(),
                cluster: None,
                for_: std::time::Duration::from_secs(90),
            },
        ]
    }

    #[test]
    fn rules_check_output() {
        let want = "\
rules.toml: 2 rules OK
  prod-clock-skew   clock_skew    prod           for 5s
  silent            host_silent   all clusters   for 1m 30s
";
        assert_eq!(
            render_rules_ok("rules.toml", &rule_lines(), OutputFormat::Table),
            want
        );
        crate::golden::check(
            "rules-check-table.txt",
            &render_rules_ok("rules.toml", &rule_lines(), OutputFormat::Table),
        );
        assert_eq!(
            render_rules_ok("r.toml", &rule_lines()[..1], OutputFormat::Table)
                .lines()
                .next(),
            Some("r.toml: 1 rule OK")
        );
        let text = render_rules_ok("rules.toml", &rule_lines(), OutputFormat::Json);
        crate::golden::check("rules-check.json", &text);
        assert_eq!(
            keys_in_text_order(&text, &["file", "ok", "rules"]),
            ["file", "ok", "rules"]
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "file": "rules.toml",
                "ok": true,
                "rules": [
                    {"name": "prod-clock-skew", "kind": "clock_skew", "cluster": "prod", "for": "5s"},
                    {"name": "silent", "kind": "host_silent", "cluster": null, "for": "1m 30s"}
                ]
            })
        );
        crate::golden::check(
            "rules-check.csv",
            &render_rules_ok("rules.toml", &rule_lines(), OutputFormat::Csv),
        );
        assert_eq!(
            render_rules_ok("rules.toml", &rule_lines(), OutputFormat::Csv),
            "name,kind,cluster,for\nprod-clock-skew,clock_skew,prod,5s\nsilent,host_silent,,1m 30s\n"
        );
        let error = render_rules_error_json("bad.toml", "rule \"x\": threshold_ms: missing");
        crate::golden::check("rules-check-error.json", &error);
        let value: serde_json::Value = serde_json::from_str(&error).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"file": "bad.toml", "ok": false, "error": "rule \"x\": threshold_ms: missing"})
        );
    }
}
