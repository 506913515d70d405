//! `/oom/ID`: one kill's root-cause page: the kernel report's facts (victim, trigger,
//! constraint, memcg), its task table (sortable; largest rss first), the host's memory, swap,
//! swapping and paging graphs of the 30 minutes before with the kill marked, the top-oom
//! ranking before it, and the whole report as `fleetctl oom show` prints it.

use fleet_proto::schema::schema;
use fleet_proto::v1::{OomKillDetail, OomKillRequest};
use serde_json::Value;

use super::html::{e, page as layout, seg, table, time};
use super::PageError;
use crate::client::Collector;
use crate::cmd::oom::show::{evidence, render_table, task_rows};
use crate::plot::source::BUCKETS;
use crate::plot::{activity_panels, downsample, Marker, PlotRow, Range};

/// How far before the kill the graphs reach.
const BEFORE_MS: i64 = 30 * 60 * 1000;

/// The page.
pub(super) async fn page(collector: &Collector, id: &str) -> Result<String, PageError> {
    let request = OomKillRequest {
        id: id.to_owned(),
        before_ms: BEFORE_MS,
    };
    let detail = collector
        .query("GetOomKill", async |c| c.get_oom_kill(request).await)
        .await
        .map_err(|err| match PageError::from(err) {
            // An id that is not an id names no kill.
            PageError::BadRequest(text) => PageError::NotFound(text),
            other => other,
        })?;
    Ok(render(&detail))
}

/// The page of `detail`.
fn render(detail: &OomKillDetail) -> String {
    let kill = detail.kill.clone().unwrap_or_default();
    let event = kill.event.clone().unwrap_or_default();
    let details: serde_json::Map<String, Value> = match serde_json::from_str(&event.detail_json) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let task = |comm: &Option<String>, pid: Option<i64>| match (comm, pid) {
        (Some(c), Some(p)) => format!("{c} (pid {p})"),
        (Some(c), None) => c.clone(),
        (None, Some(p)) => format!("pid {p}"),
        (None, None) => "-".to_owned(),
    };
    let opt = |v: &Option<String>| v.clone().filter(|s| !s.is_empty()).unwrap_or("-".into());
    let kb = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v} kB"));
    let scope = match event.global_oom {
        Some(true) => " (global OOM)",
        Some(false) => " (memory cgroup OOM)",
        None => "",
    };
    let host = format!(
        "<a href=\"/hosts/{}\">{}</a> ({}), cluster {}",
        seg(&kill.host_id),
        e(crate::output::host_name(&kill.hostname, &kill.host_id)),
        e(&kill.host_id),
        e(&kill.cluster)
    );
    let facts: Vec<Vec<String>> = [
        ("Host", host),
        ("Time", e(&time(event.time_ms)).into_owned()),
        (
            "Victim",
            e(&format!(
                "{}, oom_score_adj {}",
                task(&event.victim_comm, event.victim_pid),
                event.oom_score_adj.map_or("-".into(), |v| v.to_string())
            ))
            .into_owned(),
        ),
        (
            "Memory",
            e(&format!(
                "anon-rss {}, file-rss {}, shmem-rss {}, total-vm {}",
                kb(event.anon_rss_kb),
                kb(event.file_rss_kb),
                kb(event.shmem_rss_kb),
                kb(event.total_vm_kb)
            ))
            .into_owned(),
        ),
        (
            "Trigger",
            e(&task(&event.trigger_comm, event.trigger_pid)).into_owned(),
        ),
        (
            "Constraint",
            e(&format!("{}{scope}", opt(&event.constraint))).into_owned(),
        ),
        (
            "Memcg",
            e(&format!(
                "task_memcg {}, oom_memcg {}",
                opt(&event.task_memcg),
                opt(&event.oom_memcg)
            ))
            .into_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| vec![format!("<b>{k}</b>"), v])
    .collect();

    let mut body = table("facts", &["", ""], &facts);
    body.push_str("<h2>Tasks <span class=\"note\">by rss, in pages as the kernel prints them; click a column to sort</span></h2>");
    match details.get("tasks").and_then(Value::as_array) {
        Some(tasks) if !tasks.is_empty() => {
            let (columns, rows) = task_rows(tasks);
            let head: Vec<&str> = columns.iter().map(String::as_str).collect();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(|c| e(c).into_owned()).collect())
                .collect();
            body.push_str(&table("tasks sortable", &head, &cells));
        }
        _ => body.push_str("<p>none in the report</p>"),
    }

    body.push_str("<h2>Before the kill</h2>");
    let range = Range {
        since_ms: event.time_ms - BEFORE_MS,
        until_ms: event.time_ms + 60_000,
    };
    let marker = [Marker {
        time_ms: event.time_ms,
        label: format!("OOM kill: {}", task(&event.victim_comm, event.victim_pid)),
        link: None,
    }];
    for (activity, _, rows) in evidence(detail) {
        let Some(schema) = schema(activity) else {
            continue;
        };
        // The kill's report carries these rows (30 minutes): bucketed here, as the collector
        // would, rather than asked for again.
        let rows = downsample(rows.iter().map(PlotRow::from_sar).collect(), range, BUCKETS);
        body.push_str(&format!(
            "<section class=\"activity\" data-activity=\"{}\">",
            e(schema.name)
        ));
        for panel in activity_panels(schema, &rows, range, &marker) {
            body.push_str(&panel.svg);
        }
        body.push_str("</section>");
    }

    body.push_str("<h2>Top-oom ranking before the kill</h2>");
    if detail.top_oom.is_empty() {
        body.push_str("<p>none stored</p>");
    } else {
        body.push_str(&format!(
            "<p class=\"note\">taken {}</p>",
            e(&time(detail.top_oom_time_ms))
        ));
        let rows: Vec<Vec<String>> = detail
            .top_oom
            .iter()
            .map(|p| {
                vec![
                    p.pid.to_string(),
                    e(&p.comm).into_owned(),
                    p.oom_score.to_string(),
                    p.oom_score_adj.to_string(),
                    p.rss_kb.to_string(),
                    p.uid.to_string(),
                    e(&p.cmdline).into_owned(),
                ]
            })
            .collect();
        body.push_str(&table(
            "sortable",
            &[
                "pid",
                "comm",
                "oom_score",
                "oom_score_adj",
                "rss kB",
                "uid",
                "cmdline",
            ],
            &rows,
        ));
    }
    body.push_str(&format!(
        "<details><summary>The report as <code>fleetctl oom show</code> prints it</summary><pre>{}</pre></details>",
        e(&render_table(detail))
    ));
    layout(&format!("OOM kill {}", kill.id), &body, None)
}

#[cfg(test)]
mod tests {
    use fleet_proto::v1::{OomEvent, OomKill, SarRow};

    use super::*;
    use crate::cmd::testing::T0;

    const EVIL: &str = "<img src=x onerror=alert(1)>";

    fn detail() -> OomKillDetail {
        let tasks = serde_json::json!({
            "tasks": [
                {"pid": 1, "uid": 0, "rss": 10, "name": "small"},
                {"pid": 2, "uid": 0, "rss": 900, "name": EVIL},
            ]
        });
        OomKillDetail {
            kill: Some(OomKill {
                id: "1-abc-0".into(),
                host_id: "a1".into(),
                hostname: EVIL.into(),
                cluster: "prod".into(),
                event: Some(OomEvent {
                    time_ms: T0,
                    victim_comm: Some(EVIL.into()),
                    victim_pid: Some(2),
                    constraint: Some("CONSTRAINT_MEMCG".into()),
                    global_oom: Some(false),
                    task_memcg: Some("/evil/<b>".into()),
                    detail_json: tasks.to_string(),
                    ..OomEvent::default()
                }),
            }),
            memory: (0..5)
                .map(|i| SarRow {
                    host_id: "a1".into(),
                    hostname: EVIL.into(),
                    time_ms: T0 - 50_000 + i * 10_000,
                    interval_ms: 10_000,
                    instance: "-".into(),
                    values: vec![1.0; 11],
                })
                .collect(),
            ..OomKillDetail::default()
        }
    }

    #[test]
    fn the_page_escapes_the_report_and_lists_tasks_by_rss() {
        let page = render(&detail());
        assert!(!page.contains("<img"), "{page}");
        assert!(
            page.contains("&lt;img src=x onerror=alert(1)&gt; (pid 2)"),
            "{page}"
        );
        assert!(page.contains("task_memcg /evil/&lt;b&gt;"));
        assert!(page.contains("CONSTRAINT_MEMCG (memory cgroup OOM)"));
        let big = page.find("<td>900</td>").unwrap();
        let small = page.find("<td>10</td>").unwrap();
        assert!(big < small, "largest rss first");
        // The memory graphs, the kill marked on each.
        assert_eq!(page.matches("data-activity=\"memory\" width").count(), 5);
        assert_eq!(page.matches("class=\"marker\"").count(), 5 + 3 + 1 + 4);
    }
}
