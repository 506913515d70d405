//! The Grafana dashboards of deploy/grafana/ as the tests read them: their PromQL expressions
//! (panel targets, annotations, the selector of each `label_values(...)` variable) and the names
//! in them. `tests/tests/grafana.rs` checks those names against the naming contract;
//! `tests/tests/remote_write.rs` checks that the metrics they query arrive in a real receiver.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::paths::workspace_path;

/// The dashboards, by file name without `.json`.
pub const DASHBOARDS: &[&str] = &["fleet-overview", "fleet-host", "fleet-oom-clocks"];

/// PromQL's functions, aggregations and keywords the dashboards may use (anything else that
/// looks like a name outside label matchers must be a Fleet metric).
pub const PROMQL_WORDS: &[&str] = &[
    "abs",
    "and",
    "avg",
    "bool",
    "by",
    "changes",
    "clamp_min",
    "count",
    "delta",
    "group_left",
    "ignoring",
    "increase",
    "irate",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "offset",
    "on",
    "or",
    "rate",
    "sum",
    "topk",
    "unless",
    "vector",
    "without",
];

/// The expressions of a dashboard: (where, PromQL) of each panel target and annotation, and
/// the selector inside each `label_values(...)` variable query.
pub fn expressions(board: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn panels(v: &Value, out: &mut Vec<(String, String)>) {
        for p in v.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?");
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{title}: no expr"));
                out.push((format!("panel {title:?}"), expr.to_owned()));
            }
            panels(&p["panels"], out);
        }
    }
    panels(&board["panels"], &mut out);
    for a in board["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = a["expr"].as_str() {
            out.push((format!("annotation {:?}", a["name"]), expr.to_owned()));
        }
    }
    for v in board["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["definition"]
            .as_str()
            .expect("a query variable's definition");
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.rsplit_once(','))
            .map(|(sel, _)| sel.trim())
            .unwrap_or_else(|| panic!("variable {}: not label_values(...): {q}", v["name"]));
        out.push((format!("variable {}", v["name"]), inner.to_owned()));
    }
    out
}

/// The names in `expr` outside strings, label matchers and range selectors, and the label
/// names it uses (in matchers and in the parentheses after `by`, `without`, `on`, ...).
pub fn names_in(expr: &str) -> (Vec<String>, Vec<String>) {
    let (mut idents, mut labels) = (Vec::new(), Vec::new());
    let chars: Vec<char> = expr.chars().collect();
    let (mut i, mut word) = (0, String::new());
    let mut in_braces = false;
    let mut grouping = false;
    while i <= chars.len() {
        let c = chars.get(i).copied().unwrap_or(' ');
        if c == '"' {
            // A string: skip to its end.
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            i += 1;
            continue;
        }
        if !word.is_empty() && !word.chars().next().unwrap().is_ascii_digit() {
            let w = std::mem::take(&mut word);
            if in_braces || grouping {
                labels.push(w);
            } else {
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&w.as_str())
                {
                    grouping = true;
                }
                idents.push(w);
            }
        }
        word.clear();
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            ')' => grouping = false,
            _ => {}
        }
        i += 1;
    }
    (idents, labels)
}

pub fn dashboard(name: &str) -> Value {
    let path = workspace_path(&format!("deploy/grafana/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}"))
}

/// Every metric name the dashboards query (the names in their expressions that are not PromQL).
pub fn queried_metrics() -> BTreeSet<String> {
    DASHBOARDS
        .iter()
        .flat_map(|name| expressions(&dashboard(name)))
        .flat_map(|(_, expr)| names_in(&expr).0)
        .filter(|w| !PROMQL_WORDS.contains(&w.as_str()))
        .collect()
}
