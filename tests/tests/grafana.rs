//! The Grafana dashboards in deploy/grafana/ ask only for what Fleet writes.
//!
//! Every PromQL expression in them (panel targets, annotations, and the metric of each
//! `label_values(...)` variable query) names only metrics of the remote-write naming contract
//! (`fleet_collector::remote_write::names`: the sar columns and the other series), filters on
//! labels those series carry, and parses as PromQL for Prometheus' own `promtool check rules`
//! (Grafana's `$__range` and `$__rate_interval` given values, as Grafana does before it sends a
//! query). Each dashboard also has what an import needs: a unique uid, a title, a data source
//! variable that every panel uses, and panel ids unique within it.

use std::collections::BTreeSet;
use std::process::Command;

use fleet_collector::remote_write::names;
use fleet_proto::schema::ACTIVITIES;
use fleet_tests::caps;
use fleet_tests::grafana::{dashboard, expressions, names_in, DASHBOARDS, PROMQL_WORDS};
use serde_json::Value;

/// Every metric name Fleet writes.
fn written_metrics() -> BTreeSet<String> {
    let mut all: BTreeSet<String> = names::sar_metrics().iter().flatten().cloned().collect();
    all.extend(names::OTHER_METRICS.iter().map(|(n, _, _)| n.to_string()));
    all
}

/// Every label a written series may carry (the host's own labels aside).
fn written_labels() -> BTreeSet<String> {
    let mut all: BTreeSet<String> = ["__name__", "host_id", "hostname", "cluster"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    all.extend(
        ACTIVITIES
            .iter()
            .filter_map(names::instance_label)
            .map(str::to_owned),
    );
    all.extend(
        names::OTHER_METRICS
            .iter()
            .flat_map(|(_, labels, _)| labels.split(','))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned),
    );
    all
}

#[test]
fn every_dashboard_query_names_only_metrics_and_labels_fleet_writes() {
    let metrics = written_metrics();
    let labels = written_labels();
    let mut used = BTreeSet::new();
    for name in DASHBOARDS {
        let board = dashboard(name);
        let exprs = expressions(&board);
        assert!(exprs.len() >= 5, "{name}: {} expressions", exprs.len());
        for (place, expr) in &exprs {
            let (idents, label_names) = names_in(expr);
            let mut named = 0;
            for w in idents {
                if metrics.contains(&w) {
                    used.insert(w);
                    named += 1;
                } else {
                    assert!(
                        PROMQL_WORDS.contains(&w.as_str()),
                        "{name} {place}: {w:?} is neither a metric Fleet writes nor PromQL: {expr}"
                    );
                }
            }
            assert!(named > 0, "{name} {place}: names no Fleet metric: {expr}");
            for l in label_names {
                assert!(
                    labels.contains(&l),
                    "{name} {place}: label {l:?} is on no series Fleet writes: {expr}"
                );
            }
        }
    }
    // The dashboards cover the contract's headline series.
    for m in [
        "fleet_host_up",
        "fleet_cpu_idle_percent",
        "fleet_ntp_offset_seconds",
        "fleet_collector_offset_seconds",
        "fleet_oom_kills_total",
        "fleet_oom_last_kill_info",
    ] {
        assert!(used.contains(m), "no dashboard uses {m}");
    }
}

#[test]
fn a_metric_that_fleet_does_not_write_is_caught() {
    let metrics = written_metrics();
    let (idents, labels) = names_in(
        r#"100 - node_cpu_seconds_total{mode="idle",cpu=~"$x"} + on (instance) fleet_host_up[5m]"#,
    );
    assert_eq!(idents, ["node_cpu_seconds_total", "on", "fleet_host_up"]);
    assert_eq!(labels, ["mode", "cpu", "instance"]);
    assert!(!metrics.contains("node_cpu_seconds_total"));
    assert!(metrics.contains("fleet_cpu_idle_percent"));
}

#[test]
fn every_dashboard_is_importable_and_its_promql_parses() {
    let promtool = caps::require(caps::program("promtool", "prometheus"));
    let mut uids = BTreeSet::new();
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for name in DASHBOARDS {
        let board = dashboard(name);
        assert!(
            uids.insert(board["uid"].as_str().unwrap().to_owned()),
            "{name}: uid twice"
        );
        assert!(!board["title"].as_str().unwrap().is_empty());
        let vars = board["templating"]["list"].as_array().unwrap();
        assert!(
            vars.iter()
                .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "{name}: no Prometheus data source variable"
        );
        let mut ids = BTreeSet::new();
        let mut stack: Vec<&Value> = board["panels"].as_array().unwrap().iter().collect();
        while let Some(p) = stack.pop() {
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{name}: panel id twice"
            );
            if p["type"] != "row" {
                assert_eq!(
                    p["datasource"]["uid"], "${datasource}",
                    "{name}: panel {} has its own data source",
                    p["title"]
                );
            }
            stack.extend(p["panels"].as_array().into_iter().flatten());
        }
        for (i, (_, expr)) in expressions(&board).iter().enumerate() {
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$__range", "1h");
            rules.push_str(&format!(
                "      - record: dashboard:{}:{i}\n        expr: {}\n",
                name.replace('-', "_"),
                serde_json::to_string(&expr).unwrap()
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboards.rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules: {}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
