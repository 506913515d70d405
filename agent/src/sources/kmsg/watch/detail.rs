//! An event's detail (`detail_json`: the object `fleet-agent parse-kmsg` prints for it), kept
//! under the collector's limit of [`MAX_EVENT_DETAIL_BYTES`] whatever the report held, so no
//! event is ever refused for its size:
//!
//! - The task table: at most [`MAX_TASK_BYTES`] of it (1 MiB of JSON, about 4,500 rows of a real
//!   table at ~230 bytes a row), the biggest rows by rss (rss, or on kernels that split it, the
//!   sum of its parts), the victim's always, kept in the kernel's order. `tasks_omitted` counts
//!   the rows left out. A global OOM on a host with 9,000 processes keeps its 4,500 biggest.
//! - `memory.oom.group`: every kill of one report carries the same table. The first event
//!   carries it (capped as above); each later one with the very same table keeps only the
//!   victim's row, counts the others in `tasks_omitted` and names the event that has them
//!   (`tasks_with_kmsg_seq`, and a `note`). A burst of N kills then weighs N kill lines and one
//!   table, not N tables. An amendment of an event ([`super`]) keeps the event's place for the
//!   table ([`TablePart`]): a group's first kill amended still carries the table.
//! - The raw lines: what the budget has left ([`DETAIL_BUDGET`] less the rest), the first and
//!   the last lines kept (the trigger and stack; the summary and the kill line), those between
//!   (in a long report: the task table again, as printed) counted in `raw_dropped`.
//! - Last resort, should the rest of the event alone be too large: no table and no raw lines,
//!   both counted.

use std::sync::Arc;

use fleet_proto::limits::MAX_EVENT_DETAIL_BYTES;
use serde::Serialize;

use super::super::{OomEvent, TaskRow, TaskTable};

/// JSON bytes of task rows one event's detail keeps, at most.
pub const MAX_TASK_BYTES: usize = 1 << 20;
/// The size a detail is kept under: the collector's limit less room for what the agent adds.
pub const DETAIL_BUDGET: usize = MAX_EVENT_DETAIL_BYTES - 16 * 1024;

/// The parse-kmsg object with the keys the agent adds.
#[derive(Serialize)]
struct Detail<'a> {
    #[serde(flatten)]
    event: &'a OomEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks_omitted: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks_with_kmsg_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// The last task table sent in full: a later kill of the same `memory.oom.group` report refers
/// to it.
#[derive(Debug, Default)]
pub struct Details {
    last_table: Option<(TaskTable, Option<u64>)>,
}

/// Where an event's detail has the report's task table: in it ([`TablePart::Own`], capped), or
/// with an earlier kill of the same `memory.oom.group` report (its `kmsg_seq`), keeping only
/// the victim's row. An amendment of an event keeps what its first detail had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TablePart {
    Own,
    WithKill(Option<u64>),
}

/// A row's rss in pages, as fleetctl ranks rows.
fn rss(row: &TaskRow) -> u64 {
    row.rss.unwrap_or_else(|| {
        row.rss_anon.unwrap_or(0) + row.rss_file.unwrap_or(0) + row.rss_shmem.unwrap_or(0)
    })
}

fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |v| v.len())
}

impl Details {
    /// The detail of `e` under [`DETAIL_BUDGET`], and where it has the task table; `e`'s table
    /// and raw lines are taken (the caller is done with them).
    pub fn detail(&mut self, e: &mut OomEvent) -> (String, TablePart) {
        let part = match &self.last_table {
            Some((last, seq))
                if !e.tasks.is_empty() && (Arc::ptr_eq(last, &e.tasks) || *last == e.tasks) =>
            {
                TablePart::WithKill(*seq)
            }
            _ => TablePart::Own,
        };
        if part == TablePart::Own && !e.tasks.is_empty() {
            self.last_table = Some((e.tasks.clone(), e.kmsg_seq));
        }
        (render(e, part), part)
    }
}

/// The detail of `e` under [`DETAIL_BUDGET`], with the table where `part` says; `e`'s table and
/// raw lines are taken.
pub fn render(e: &mut OomEvent, part: TablePart) -> String {
    let table = std::mem::take(&mut e.tasks);
    let raw = std::mem::take(&mut e.raw);
    let mut extra = Extra::default();
    let shared = match part {
        TablePart::WithKill(seq) if !table.is_empty() => Some(seq),
        _ => None,
    };
    let victim = |row: &TaskRow| Some(row.pid) == e.victim_pid;
    if let Some(seq) = shared {
        e.tasks = Arc::new(table.iter().filter(|r| victim(r)).cloned().collect());
        extra.omitted = table.len() - e.tasks.len();
        extra.with_seq = seq;
        extra.note = Some(match seq {
                Some(seq) => format!(
                    "memory.oom.group: the report's task table ({} rows) is with its first kill (kmsg_seq {seq}); this event keeps the victim's row",
                    table.len()
                ),
                None => format!(
                    "memory.oom.group: the report's task table ({} rows) is with its first kill; this event keeps the victim's row",
                    table.len()
                ),
            });
    } else {
        e.tasks = Arc::new(biggest(&table, MAX_TASK_BYTES, victim));
        extra.omitted = table.len() - e.tasks.len();
    }
    // The raw lines get what is left (less room for `raw_dropped`).
    let rest = extra.render(e).len() + 48;
    let (kept, dropped) = trim_raw(raw, DETAIL_BUDGET.saturating_sub(rest));
    e.raw = kept;
    if dropped > 0 {
        e.raw_dropped = Some(e.raw_dropped.unwrap_or(0) + dropped);
    }
    let detail = extra.render(e);
    if detail.len() <= DETAIL_BUDGET {
        return detail;
    }
    // The rest of the event alone is too large: neither table nor raw lines.
    extra.omitted += e.tasks.len();
    e.tasks = TaskTable::default();
    let dropped = e.raw.len() as u64;
    e.raw.clear();
    e.raw_dropped = Some(e.raw_dropped.unwrap_or(0) + dropped);
    extra.render(e)
}

/// What the agent adds to the parse-kmsg object.
#[derive(Default)]
struct Extra {
    omitted: usize,
    with_seq: Option<u64>,
    note: Option<String>,
}

impl Extra {
    fn render(&self, e: &OomEvent) -> String {
        serde_json::to_string(&Detail {
            event: e,
            tasks_omitted: (self.omitted > 0).then_some(self.omitted as u64),
            tasks_with_kmsg_seq: self.with_seq,
            note: self.note.clone(),
        })
        .unwrap_or_default()
    }
}

/// The rows to keep: the victim's, then the biggest by rss while their JSON fits in `budget`;
/// in the table's order.
fn biggest(table: &[TaskRow], budget: usize, victim: impl Fn(&TaskRow) -> bool) -> Vec<TaskRow> {
    let sizes: Vec<usize> = table.iter().map(|r| json_len(r) + 1).collect();
    if sizes.iter().sum::<usize>() <= budget {
        return table.to_vec();
    }
    let mut order: Vec<usize> = (0..table.len()).collect();
    // The victim first, then by rss, biggest first; the table's order among equals.
    order.sort_by_key(|&i| (!victim(&table[i]), std::cmp::Reverse(rss(&table[i])), i));
    let mut keep = vec![false; table.len()];
    let mut used = 0;
    for i in order {
        if used + sizes[i] > budget {
            continue;
        }
        used += sizes[i];
        keep[i] = true;
    }
    table
        .iter()
        .zip(keep)
        .filter(|(_, kept)| *kept)
        .map(|(row, _)| row.clone())
        .collect()
}

/// Keeps the first and the last lines within `budget` JSON bytes (half for each end, the end
/// taking what the start left); returns them and how many were dropped between.
fn trim_raw(raw: Vec<String>, budget: usize) -> (Vec<String>, u64) {
    let sizes: Vec<usize> = raw.iter().map(|l| json_len(l.as_str()) + 1).collect();
    if sizes.iter().sum::<usize>() <= budget {
        return (raw, 0);
    }
    let mut head = 0;
    let mut used = 0;
    while head < raw.len() && used + sizes[head] <= budget / 2 {
        used += sizes[head];
        head += 1;
    }
    let mut tail = raw.len();
    while tail > head && used + sizes[tail - 1] <= budget {
        used += sizes[tail - 1];
        tail -= 1;
    }
    let dropped = (tail - head) as u64;
    let mut raw = raw;
    raw.drain(head..tail);
    (raw, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: i64, rss: u64) -> TaskRow {
        TaskRow {
            pid,
            rss: Some(rss),
            name: format!("p{pid}"),
            ..TaskRow::default()
        }
    }

    #[test]
    fn the_biggest_rows_and_the_victim_are_kept_in_order() {
        let table: Vec<TaskRow> = [(1, 50), (2, 10), (3, 90), (4, 70), (5, 1)]
            .into_iter()
            .map(|(p, r)| row(p, r))
            .collect();
        let one = json_len(&table[0]) + 1;
        let kept = biggest(&table, 3 * one, |r| r.pid == 5);
        let pids: Vec<i64> = kept.iter().map(|r| r.pid).collect();
        assert_eq!(pids, [3, 4, 5]);
        assert_eq!(biggest(&table, usize::MAX, |_| false), table);
        // rss split in parts (6.x) ranks by their sum.
        let split = TaskRow {
            pid: 9,
            rss_anon: Some(60),
            rss_file: Some(50),
            ..TaskRow::default()
        };
        assert_eq!(rss(&split), 110);
    }

    #[test]
    fn raw_lines_keep_both_ends() {
        let raw: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
        let line = json_len("line 0") + 1;
        let (kept, dropped) = trim_raw(raw.clone(), 4 * line);
        assert_eq!(kept, ["line 0", "line 1", "line 8", "line 9"]);
        assert_eq!(dropped, 6);
        assert_eq!(trim_raw(raw.clone(), 100 * line), (raw, 0));
    }

    #[test]
    fn a_group_shares_one_table_and_a_huge_event_stays_under_the_limit() {
        let table: Vec<TaskRow> = (0..10).map(|p| row(p, 100 + p as u64)).collect();
        let kill = |pid: i64, seq: u64| OomEvent {
            kmsg_seq: Some(seq),
            victim_pid: Some(pid),
            tasks: Arc::new(table.clone()),
            raw: vec![format!("Killed process {pid}")],
            ..OomEvent::default()
        };
        let mut d = Details::default();
        let first: serde_json::Value = serde_json::from_str(&d.detail(&mut kill(0, 7)).0).unwrap();
        assert_eq!(first["tasks"].as_array().unwrap().len(), 10);
        assert!(first.get("tasks_omitted").is_none());
        let second: serde_json::Value =
            serde_json::from_str(&d.detail(&mut kill(3, 40)).0).unwrap();
        assert_eq!(second["tasks"].as_array().unwrap().len(), 1);
        assert_eq!(second["tasks"][0]["pid"], 3);
        assert_eq!(second["tasks_omitted"], 9);
        assert_eq!(second["tasks_with_kmsg_seq"], 7);
        assert!(second["note"].as_str().unwrap().contains("kmsg_seq 7"));

        // Another table: in full again.
        let mut other = kill(1, 50);
        Arc::make_mut(&mut other.tasks).pop();
        let third: serde_json::Value = serde_json::from_str(&d.detail(&mut other).0).unwrap();
        assert_eq!(third["tasks"].as_array().unwrap().len(), 9);

        // An event whose own fields fill the budget loses its table and raw lines, counted.
        let mut huge = kill(2, 60);
        huge.trigger_comm = Some("x".repeat(DETAIL_BUDGET));
        let text = d.detail(&mut huge).0;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v.get("tasks").is_none());
        assert_eq!(v["tasks_omitted"], 10);
        assert_eq!(v["raw_dropped"], 1);
    }
}
