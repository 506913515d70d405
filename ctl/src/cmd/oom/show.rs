//! `fleetctl oom show ID [--before DUR]`: one kill in full (`Query.GetOomKill`) with the
//! evidence beside it: the host's memory, swap, swapping and paging samples before the kill and
//! its last top-oom ranking before it.
//!
//! JSON `{kill, memory, swap, swapping, paging, top_oom, top_oom_time}`; the table is the
//! report's facts, the task table by rss, the sar tables and the ranking (no CSV: several
//! tables):
//!
//! ```text
//! OOM kill 1-19abc2e5d18-0
//! Host:         web-1 (a1), cluster prod
//! Time:         2026-11-25T22:10:03.250Z
//! Victim:       116 stress-ng-vm, uid 0, oom_score_adj 1000
//! ...
//! Tasks, by rss (memory in pages, as the kernel prints them):
//! pid   uid   tgid   total_vm       rss   rss_anon ...   name
//! 116     0    116    2628942   1995298    1995157 ...   stress-ng-vm
//!
//! Memory before the kill (sar -r):
//! 22:09:43    kbmemfree   kbavail kbmemused ...
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use fleet_proto::schema::schema;
use fleet_proto::v1::{Activity, OomKill, OomKillDetail, OomKillRequest, SarRow};
use serde::Serialize;
use serde_json::Value;

use super::KillView;
use crate::cmd::sar::{self, SarJsonRow};
use crate::cmd::top_oom::{self, TopOomView};
use crate::cmd::{Context, Run};
use crate::output::{
    dash, json, nonzero_rfc3339_ms, plain, printable, rfc3339_ms, table, OutputFormat,
};
use crate::Output;

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

impl Run for OomShowArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        if ctx.format == OutputFormat::Csv {
            bail!("`oom show` prints several tables and has no CSV form: use -o table or -o json");
        }
        let request = OomKillRequest {
            id: self.id,
            // The CLI admits only durations whose milliseconds fit.
            before_ms: i64::try_from(self.before.as_millis()).unwrap_or(i64::MAX),
        };
        let collector = ctx.connect().await?;
        let detail = collector
            .query("GetOomKill", async |c| c.get_oom_kill(request).await)
            .await?;
        Ok(Output::print(match ctx.format {
            OutputFormat::Json => render_json(&detail),
            OutputFormat::Table | OutputFormat::Csv => render_table(&detail),
        }))
    }
}

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
pub(crate) fn evidence(detail: &OomKillDetail) -> [(Activity, &'static str, Vec<SarRow>); 4] {
    let sorted = |rows: &[SarRow]| {
        let mut rows = rows.to_vec();
        sar::sort_sar_rows(&mut rows);
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
    top_oom::sort(&mut views);
    views
}

/// Renders `fleetctl oom show -o json`: `kill` (an `oom` row with `tasks` and `raw`), the sar
/// rows `memory`, `swap`, `swapping`, `paging` (as `sar -o json` prints them), `top_oom` (as
/// `top-oom -o json` prints them) and `top_oom_time` (`null` when no ranking preceded the kill).
pub fn render_json(detail: &OomKillDetail) -> String {
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
pub fn render_table(detail: &OomKillDetail) -> String {
    let kill = detail.kill.clone().unwrap_or_default();
    let v = KillView::new(&kill, true);
    let mut out = if v.kind() == super::KILL {
        format!("OOM kill {}\n", dash(&kill.id))
    } else {
        format!("OOM report {} (no kill)\n", dash(&kill.id))
    };

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
        .filter(|_| v.kind() == super::KILL && v.int("selected_pid") != v.int("victim_pid"))
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
        (v.kind() != super::KILL).then(|| format!("not a kill ({})", v.kind())),
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
            out.push_str(&sar::sar_body(schema, &rows.iter().collect::<Vec<_>>()));
        }
    }

    out.push('\n');
    let top = detail_top_oom(detail, &kill);
    match nonzero_rfc3339_ms(detail.top_oom_time_ms) {
        Some(at) if !top.is_empty() => {
            let ago = (v.time_ms - detail.top_oom_time_ms).max(0) / 1000;
            let ago = humantime::format_duration(std::time::Duration::from_secs(ago as u64));
            let _ = writeln!(out, "Top-oom ranking at {at}, {ago} before the kill:");
            out.push_str(&top_oom::table(&top, false));
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
    let (columns, body) = task_rows(tasks);
    let right: Vec<bool> = columns.iter().map(|c| c != "name").collect();
    let mut rows = vec![columns];
    rows.extend(body);
    table(&rows, &right)
}

/// The task table's column names and its rows of cells, as [`task_table`] orders them (also
/// the `/oom/ID` page of `fleetctl ui`).
pub(crate) fn task_rows(tasks: &[Value]) -> (Vec<String>, Vec<Vec<String>>) {
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

    let mut rows = Vec::new();
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
    (columns.iter().map(|c| c.to_string()).collect(), rows)
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use fleet_proto::v1::OomEvent;

    use super::*;
    use crate::cmd::oom::tests::oom;
    use crate::cmd::oom::OomCommand;
    use crate::cmd::sar::sar_keys;
    use crate::cmd::testing::{
        keys, keys_in_text_order, kill_611, kill_vmstat, parse, process, row, T0,
    };
    use crate::cmd::top_oom::TOP_OOM_KEYS;
    use crate::golden;

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
        let text = render_json(&detail_611());
        golden::check("oom-show.json", &text);
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
        let list = super::super::render(&[kill_611()], OutputFormat::Json);
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
        let value: serde_json::Value = serde_json::from_str(&render_json(&none)).unwrap();
        assert_eq!(value["top_oom_time"], serde_json::Value::Null);
        assert_eq!(value["top_oom"], serde_json::json!([]));
    }

    #[test]
    fn oom_show_table() {
        let got = render_table(&detail_611());
        golden::check("oom-show-table.txt", &got);
    }

    #[test]
    fn oom_show_table_of_a_kill_only_vmstat_counted() {
        let detail = OomKillDetail {
            kill: Some(kill_vmstat()),
            ..OomKillDetail::default()
        };
        let got = render_table(&detail);
        golden::check("oom-show-vmstat-table.txt", &got);
    }

    #[test]
    fn oom_show_table_marks_a_report_that_killed_nothing() {
        let text = render_table(&OomKillDetail {
            kill: Some(crate::cmd::testing::skipped_exiting()),
            ..OomKillDetail::default()
        });
        golden::check("oom-show-no-kill-table.txt", &text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "OOM report 1-19abc2e5d18-3 (no kill)");
        assert_eq!(lines[3], "Victim:       none: 3804877 stress not killed");
        assert!(
            lines[8].ends_with("partial report, not a kill (no_kill)"),
            "{}",
            lines[8]
        );
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
        let text = render_table(&OomKillDetail {
            kill: Some(kill),
            ..OomKillDetail::default()
        });
        golden::check("oom-show-flagged-table.txt", &text);
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
    fn task_table_has_the_columns_its_kernel_printed() {
        // 3.10's table: no tgid, no rss split, nr_ptes; a row cut short lacks columns.
        let tasks: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"pid":1,"uid":0,"total_vm":48401,"rss":1047,"nr_ptes":98,"swapents":0,"oom_score_adj":0,"name":"systemd"},
                {"pid":2310,"uid":27,"total_vm":1234567,"rss":980000,"nr_ptes":2100,"swapents":10,"oom_score_adj":0,"name":"mysqld"},
                {"pid":900,"name":"cut"}]"#,
        )
        .unwrap();
        golden::check("oom-show-tasks-3.10-table.txt", &task_table(&tasks));
        // Without an rss column (only its parts), the parts' sum orders the rows.
        let tasks: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"pid":1,"rss_anon":10,"rss_file":5,"name":"a"},{"pid":2,"rss_anon":12,"rss_file":0,"extra":"x","name":"b"}]"#,
        )
        .unwrap();
        golden::check("oom-show-tasks-split-rss-table.txt", &task_table(&tasks));
    }
}
