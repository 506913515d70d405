//! `fleet-agent parse-kmsg` over the real reports of ../shared/corpus/oom: one JSON object per
//! kill, with the fields the corpus expects.

use std::path::PathBuf;
use std::process::Command;

use fleet_tests::paths::workspace_path;
use fleet_tests::{bin, run};
use serde_json::Value;

fn corpus() -> PathBuf {
    workspace_path("agent/tests/fixtures/oom")
}

#[test]
fn every_corpus_report_gives_its_expected_kills() {
    let mut checked = 0;
    for entry in std::fs::read_dir(corpus()).expect("fixtures") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".expected.json") {
            continue;
        }
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(file) = expected["file"].as_str() else {
            continue;
        };
        let report = corpus().join(file);
        let out = run("fleet-agent", &["parse-kmsg", report.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kills: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{file}: bad JSON line ({e}): {l}"))
            })
            .collect();
        let want = expected["kills"].as_array().unwrap();
        assert_eq!(kills.len(), want.len(), "{file}: number of kills");
        for (got, want) in kills.iter().zip(want) {
            for (key, value) in want.as_object().unwrap() {
                if key == "tasks_count" {
                    assert_eq!(
                        got["tasks"].as_array().map_or(0, Vec::len) as u64,
                        value.as_u64().unwrap_or(0),
                        "{file}: tasks"
                    );
                } else {
                    assert_matches(&got[key], value, &format!("{file}: {key}"));
                }
            }
            assert!(
                got["raw"].as_array().is_some_and(|r| !r.is_empty()),
                "{file}: raw kept"
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} corpus files checked");
}

/// Expected objects list the keys a report must have (a subset); everything else is equal.
fn assert_matches(got: &Value, want: &Value, what: &str) {
    match want {
        Value::Object(w) => {
            for (k, v) in w {
                assert_matches(&got[k], v, &format!("{what}.{k}"));
            }
        }
        // parse-kmsg leaves out flags that are false.
        Value::Bool(false) if got.is_null() => {}
        _ => assert_eq!(got, want, "{what}"),
    }
}

#[test]
fn reads_stdin_and_survives_a_closed_pipe() {
    let file = corpus().join("013-centos7-1160-memcg-ltp-repeated-kills-syslog.log");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} parse-kmsg - < {} | head -1",
            bin("fleet-agent").display(),
            file.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}
