//! `fleetctl oom`: the OOM kills of a time range, newest first (`Query.ListOomKills`); with
//! `show ID` one kill in full ([`show`]).
//!
//! ```text
//! fleetctl oom [--cluster C] [--host H]... [--since T] [--until T] [--limit N]
//! fleetctl oom show ID [--before DUR]
//! ```
//!
//! ```text
//! TIME                   HOST    VICTIM                   MEMCG                         ANON_RSS   TRIGGER            ID
//! 2026-11-25T22:10:03Z   web-1   116 stress-ng-vm         /                                 7.6G   116 stress-ng-vm   1-19abc2e5d18-0
//! 2026-11-25T22:09:03Z   db-1    140339 python3           /kubepods/burstable/pod1/c1      15.2M   python3            2-19abc2e0000-1
//! 2026-11-25T21:10:03Z   web-1   unknown (vmstat count)   -                                    -   -                  1-19abc2d0000-2
//! ```
//!
//! A row is keyed [`KILL_FIXED_KEYS`] and then the keys of the kill's `fleet-agent parse-kmsg`
//! object (known ones in [`KILL_DETAIL_KEYS`] order, others sorted), without its `tasks` and
//! `raw` but with `tasks_count`. The CSV header is stable: every known key, then any other key a
//! row has. A listing cut at `--limit` says so on stderr in every format.
//!
//! Every row has a `kind`: `kill`, or an OOM report that killed nothing, listed but not counted
//! as a kill: `panic` (the report ended in a kernel panic) or `no_kill` (the chosen task was
//! already exiting, an `oom_reaper` line of no kill, a report cut before its kill line). The
//! table marks them in the VICTIM column (`none: kernel panic`, `none: 3804877 stress not
//! killed`) and says on stderr how many of the rows are not kills. Events stored before kinds
//! existed are kills.

pub mod show;

use anyhow::Result;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use fleet_proto::v1::{OomEvent, OomKill, OomKind, OomQuery};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{Context, Run};
use crate::output::{
    csv_line, csv_value, dash, header, human_kb, json, nonzero_rfc3339_ms, printable, show_time,
    show_until, table, time_cell, OutputFormat,
};
use crate::timearg::{self, TimeArg};
use crate::Output;

/// How far back `oom` looks without `--since`.
const DEFAULT_SINCE: TimeArg = TimeArg::Ago(std::time::Duration::from_secs(24 * 60 * 60));

/// `fleetctl oom`: the kills in a time range, or with `show ID` one kill in full.
///
/// The listing options belong to the listing: `fleetctl oom --since 1h show ID` is a usage error
/// rather than options silently ignored.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = timearg::HELP)]
pub struct OomArgs {
    #[command(subcommand)]
    pub command: Option<OomCommand>,

    /// Host id or hostname (repeatable) [default: every host]
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Only hosts of this cluster
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// Start of the time range [default: 24h]
    #[arg(long, value_name = "TIME")]
    pub since: Option<TimeArg>,
    /// End of the time range [default: now]
    #[arg(long, value_name = "TIME")]
    pub until: Option<TimeArg>,
    /// At most this many kills, the newest
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        // The collector's own cap (its `ListOomKills` handler).
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub limit: u32,
}

/// What follows `fleetctl oom`.
#[derive(Debug, Clone, Subcommand)]
pub enum OomCommand {
    /// One kill in full: the report, its task table, and the host's memory, swap and paging
    /// samples and top-oom ranking before it
    Show(show::OomShowArgs),
}

impl Run for OomArgs {
    async fn run(self, ctx: &Context) -> Result<Output> {
        if let Some(OomCommand::Show(show)) = self.command {
            return show.run(ctx).await;
        }
        let plan = OomPlan::new(&self, Utc::now())?;
        let collector = ctx.connect().await?;
        let query = plan.query.clone();
        let kills = collector
            .query("ListOomKills", async |c| c.list_oom_kills(query).await)
            .await?
            .kills;
        let notices: Vec<String> = [
            plan.notice(kills.len(), ctx.format),
            uncounted_notice(&kills, ctx.format),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(Output::print(render(&kills, ctx.format))
            .with_notice((!notices.is_empty()).then(|| notices.join("\n"))))
    }
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
        let (since, until) = timearg::range(args.since.unwrap_or(DEFAULT_SINCE), args.until, now)?;
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

/// The keys every kill row starts with. The collector's values win over same-named keys of the
/// parse-kmsg detail (its `time` is the kernel's text, its `source` the agent's guess).
pub const KILL_FIXED_KEYS: [&str; 6] = ["id", "host_id", "hostname", "cluster", "time", "source"];

/// The parse-kmsg keys, in the order rows print them; keys not listed follow, sorted, so a field
/// a newer agent adds reaches the output without a fleetctl change.
pub const KILL_DETAIL_KEYS: [&str; 36] = [
    "kind",
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

    /// `kill`, `panic` or `no_kill` (see the module doc).
    fn kind(&self) -> &str {
        self.text("kind").unwrap_or(KILL)
    }

    /// The victim column: `pid comm`, why it is unknown, or that nothing was killed.
    fn victim(&self) -> String {
        match (self.kind(), self.task("victim")) {
            (PANIC, _) => "none: kernel panic".to_owned(),
            (NO_KILL, _) => match self.task("selected") {
                Some(task) => format!("none: {task} not killed"),
                None => "none: nothing killed".to_owned(),
            },
            (_, Some(victim)) => victim,
            (_, None) if self.text("source") == Some("vmstat") => {
                "unknown (vmstat count)".to_owned()
            }
            (_, None) => "-".to_owned(),
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

/// The `kind` words of parse-kmsg.
const KILL: &str = "kill";
const PANIC: &str = "panic";
const NO_KILL: &str = "no_kill";

/// The parse-kmsg word of a wire kind (`unknown` for a kind newer than this fleetctl).
fn kind_word(kind: i32) -> &'static str {
    match OomKind::try_from(kind) {
        Ok(OomKind::Kill) => KILL,
        Ok(OomKind::Panic) => PANIC,
        Ok(OomKind::NoKill) => NO_KILL,
        Err(_) => "unknown",
    }
}

/// What stderr says, in a table, about rows that are not kills: how many, and that they are not
/// counted as kills.
fn uncounted_notice(kills: &[OomKill], format: OutputFormat) -> Option<String> {
    if format != OutputFormat::Table {
        return None;
    }
    let others = kills
        .iter()
        .filter(|k| {
            k.event
                .as_ref()
                .is_some_and(|e| e.kind != i32::from(OomKind::Kill))
        })
        .count();
    (others > 0).then(|| {
        format!(
            "{others} of the {} rows killed nothing (kind panic or no_kill): listed, not counted \
             as kills",
            kills.len()
        )
    })
}

/// The event's typed fields under their parse-kmsg keys; `None` where the wire has no value
/// (and for flags that are false, which parse-kmsg leaves out too).
fn typed_event_fields(e: &OomEvent) -> [(&'static str, Option<Value>); 23] {
    let flag = |on: bool| on.then_some(Value::Bool(true));
    [
        ("kind", Some(kind_word(e.kind).into())),
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

/// Renders `fleetctl oom`: the kills newest first (the collector's order; the sort is stable).
pub fn render(kills: &[OomKill], format: OutputFormat) -> String {
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
            let mut rows = vec![header(&[
                "TIME", "HOST", "VICTIM", "MEMCG", "ANON_RSS", "TRIGGER", "ID",
            ])];
            for v in &views {
                let host = v
                    .text("hostname")
                    .filter(|h| !h.is_empty())
                    .or(v.text("host_id"))
                    .unwrap_or("");
                rows.push(vec![
                    time_cell(v.time_ms),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::error::ErrorKind;

    use super::*;
    use crate::cmd::testing::{
        command, keys, keys_in_text_order, kill_611, kill_memcg, kill_vmstat, kills,
        kills_and_others, now, oom_panic, parse, parse_ok, skipped_exiting,
    };
    use crate::cmd::Command;
    use crate::golden;

    pub(super) fn oom(args: &[&str]) -> OomArgs {
        match command("oom", args) {
            Command::Oom(args) => args,
            other => panic!("not oom: {other:?}"),
        }
    }

    #[test]
    fn oom_lists_by_default() {
        let args = oom(&[]);
        assert!(args.command.is_none());
        assert!(args.hosts.is_empty());
        assert_eq!(args.since, None);
        assert_eq!(args.until, None);
        assert_eq!(args.limit, 1000);
        let args = oom(&[
            "--cluster",
            "prod",
            "--host",
            "db-1",
            "--since",
            "2d",
            "--until",
            "1h",
            "--limit",
            "5",
        ]);
        assert_eq!(args.cluster.as_deref(), Some("prod"));
        assert_eq!(args.hosts, ["db-1"]);
        assert_eq!(
            args.since,
            Some(TimeArg::Ago(Duration::from_secs(2 * 86_400)))
        );
        assert_eq!(args.until, Some(TimeArg::Ago(Duration::from_secs(3600))));
        assert_eq!(args.limit, 5);
        let err = parse(&["oom", "--since", "yesterday"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation, "{err}");
        let err = parse(&["oom", "--limit", "0"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation, "{err}");
    }

    #[test]
    fn oom_plan_defaults_to_the_last_day_of_every_host() {
        let plan = OomPlan::new(&oom(&[]), now()).unwrap();
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
        let args = oom(&[
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
        let err = OomPlan::new(&oom(&["--since", "1h", "--until", "1d"]), now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--since 2026-11-25T21:10:03Z is not before --until 2026-11-24T22:10:03Z"
        );
    }

    #[test]
    fn oom_notices() {
        let plan = OomPlan::new(&oom(&["--limit", "2"]), now()).unwrap();
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
            let all = ["--insecure", "--collector", "http://127.0.0.1:1"];
            crate::execute(parse_ok(&[&all, args].concat()))
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

    #[test]
    fn oom_json_rows_merge_the_parse_kmsg_object() {
        let text = render(&kills(), OutputFormat::Json);
        golden::check("oom.json", &text);
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
            "kind",
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
            "id", "host_id", "hostname", "cluster", "time", "source", "kind", "partial", "note",
            "oom_kill",
        ];
        want.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(vmstat["source"], "vmstat");
        assert_eq!(vmstat["oom_kill"], 3);
        assert_eq!(vmstat["time"], "2026-11-25T21:10:03.000Z");
        assert_eq!(render(&[], OutputFormat::Json), "[]\n");
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
                "kind",
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
        assert_eq!(view.text("kind"), Some("kill"));
        assert_eq!(view.fields.len(), 8, "{:?}", view.fields);
    }

    #[test]
    fn reports_that_killed_nothing_are_listed_marked_and_not_counted() {
        let all = kills_and_others();
        let text = render(&all, OutputFormat::Table);
        golden::check("oom-kinds-table.txt", &text);
        assert!(
            text.contains("   none: 3804877 stress not killed   "),
            "{text}"
        );
        assert!(text.contains("   none: kernel panic   "), "{text}");
        assert_eq!(
            uncounted_notice(&all, OutputFormat::Table).as_deref(),
            Some("2 of the 5 rows killed nothing (kind panic or no_kill): listed, not counted as kills")
        );
        assert_eq!(uncounted_notice(&kills(), OutputFormat::Table), None);
        assert_eq!(uncounted_notice(&all, OutputFormat::Json), None);
        // Every JSON row says its kind: from the parse-kmsg object, else from the wire (an older
        // agent's), else a kill (an event stored before kinds existed).
        let rows: Vec<Value> = serde_json::from_str(&render(&all, OutputFormat::Json)).unwrap();
        let kinds: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r["kind"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("1-19abc2e5d18-0", "kill"),
                ("1-19abc2e5d18-3", "no_kill"),
                ("2-19abc2e0000-1", "kill"),
                ("2-19abc2e0000-4", "panic"),
                ("1-19abc2d0000-2", "kill"),
            ]
        );
        assert_eq!(KillView::new(&skipped_exiting(), false).kind(), NO_KILL);
        assert_eq!(KillView::new(&oom_panic(), false).kind(), PANIC);
    }

    #[test]
    fn oom_table() {
        golden::check("oom-table.txt", &render(&kills(), OutputFormat::Table));
        assert_eq!(
            render(&[], OutputFormat::Table),
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
        let text = render(&kills(), OutputFormat::Csv);
        golden::check("oom.csv", &text);
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
        let empty = render(&[], OutputFormat::Csv);
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
                ("kind", "kill"),
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
                ("kind", "kill"),
                ("partial", "true"),
                (
                    "note",
                    "counted by /proc/vmstat oom_kill but not found in the kernel log"
                ),
                ("oom_kill", "3"),
            ])
        );
    }

    #[test]
    fn oom_rows_are_newest_first() {
        let mut oldest_first = kills();
        oldest_first.reverse();
        assert_eq!(
            render(&oldest_first, OutputFormat::Table),
            render(&kills(), OutputFormat::Table)
        );
    }
}
