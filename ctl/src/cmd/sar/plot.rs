//! `fleetctl sar ... --plot FILE.svg`: the activities asked for as one standalone SVG, with the
//! panels `sadf -g` would draw (see [`crate::plot`]), the OOM kills of the range marked on each,
//! for incident reports and tickets. `--plot -` writes it to stdout.

use std::path::Path;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;

use super::SarPlan;
use crate::client::Collector;
use crate::output::{show_time, show_until};
use crate::plot::source::{self, Selection};
use crate::plot::{activity_panels, document, Marker, Panel, PlotRow, Range};
use crate::Output;

/// Draws `plan` over its range (its open end is `now`) and writes it to `target`.
pub(super) async fn plot(
    plan: &SarPlan,
    collector: &Collector,
    target: &Path,
    now: DateTime<Utc>,
) -> Result<Output> {
    let first = &plan.sections[0].query;
    let selection = Selection {
        hosts: first.hosts.clone(),
        cluster: first.cluster.clone(),
        range: Range {
            since_ms: plan.since.timestamp_millis(),
            until_ms: plan.until.unwrap_or(now).timestamp_millis(),
        },
    };
    let rows = try_join_all(
        plan.sections
            .iter()
            .map(|s| source::sar_rows(collector, s.query.activity, &selection, source::BUCKETS)),
    );
    let kills = source::oom_kills(collector, &selection);
    let (rows, kills) = tokio::try_join!(rows, kills)?;
    let markers = source::oom_markers(&kills, |_| None);
    let (svg, panels) = draw(plan, rows, selection.range, &markers);
    let flags: Vec<&str> = plan.sections.iter().map(|s| s.schema.sar_flag).collect();
    let points: usize = panels.iter().map(|p| p.points).sum();
    let empty = (points == 0).then(|| {
        format!(
            "no samples (sar {}) from {} to {}",
            flags.join(" "),
            show_time(plan.since),
            show_until(plan.until)
        )
    });
    if target == Path::new("-") {
        return Ok(Output::print(svg).with_notice(empty));
    }
    std::fs::write(target, svg).with_context(|| format!("writing {}", target.display()))?;
    let wrote = format!(
        "wrote {}: {} panels, {points} points",
        target.display(),
        panels.len()
    );
    Ok(Output::default().with_notice(Some(
        empty.map_or(wrote.clone(), |e| format!("{e}\n{wrote}")),
    )))
}

/// The document of `plan` from each section's `rows` (in the plan's order), and its panels.
fn draw(
    plan: &SarPlan,
    rows: Vec<Vec<PlotRow>>,
    range: Range,
    markers: &[Marker],
) -> (String, Vec<Panel>) {
    let mut panels = Vec::new();
    for (section, mut rows) in plan.sections.iter().zip(rows) {
        if section.only_all_cpus {
            rows.retain(|r| r.instance == "all");
        }
        panels.extend(activity_panels(section.schema, &rows, range, markers));
    }
    let first = &plan.sections[0].query;
    let flags: Vec<&str> = plan.sections.iter().map(|s| s.schema.sar_flag).collect();
    let mut target: Vec<String> = first.hosts.iter().map(|h| format!("--host {h}")).collect();
    if !first.cluster.is_empty() {
        target.push(format!("--cluster {}", first.cluster));
    }
    let heading = format!(
        "sar {} {}, {} to {}",
        flags.join(" "),
        target.join(" "),
        show_time(plan.since),
        show_until(plan.until)
    );
    (document(&heading, &panels), panels)
}

#[cfg(test)]
mod tests {
    use roxmltree::Document;

    use super::super::tests::sar_args;
    use super::*;
    use crate::cmd::testing::now;

    fn row(instance: &str, i: i64, columns: usize) -> PlotRow {
        PlotRow {
            host_id: "a1".into(),
            host: "web-1".into(),
            instance: instance.into(),
            time_ms: now().timestamp_millis() - 300_000 + i * 10_000,
            interval_ms: 10_000,
            values: vec![1.0 + i as f64; columns],
            envelope: None,
        }
    }

    #[test]
    fn cpu_and_memory_are_six_panels_with_points() {
        let plan = SarPlan::new(&sar_args(&["-r", "-u", "--host", "web-1"]), now()).unwrap();
        let range = Range {
            since_ms: plan.since.timestamp_millis(),
            until_ms: now().timestamp_millis(),
        };
        let cpu: Vec<PlotRow> = (0..10)
            .flat_map(|i| [row("all", i, 6), row("0", i, 6)])
            .collect();
        let memory: Vec<PlotRow> = (0..10).map(|i| row("-", i, 11)).collect();
        let (svg, panels) = draw(&plan, vec![cpu, memory], range, &[]);
        let doc = Document::parse(&svg).expect("valid SVG");
        let panel_nodes: Vec<_> = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("panel"))
            .collect();
        assert_eq!(panel_nodes.len(), 6);
        assert_eq!(panels.len(), 6);
        assert_eq!(panel_nodes[0].attribute("data-activity"), Some("cpu"));
        assert!(panel_nodes[1..]
            .iter()
            .all(|p| p.attribute("data-activity") == Some("memory")));
        // -u without -P ALL: the "all" line only, 6 columns of 10 points.
        assert_eq!(panels[0].points, 60);
        assert!(!svg.contains("web-1 0<"));
        assert!(panels.iter().all(|p| p.points > 0));
        let title = doc
            .root_element()
            .children()
            .find(|n| n.has_tag_name("title"));
        assert_eq!(
            title.and_then(|t| t.text()),
            Some("sar -u -r --host web-1, 2026-11-25T22:00:03Z to now")
        );
    }
}
