//! The downsampled sar query end to end: a real agent samples this host every second; `fleetctl
//! sar -u -P ALL --step 3s -o json` over a fixed range gives, per CPU and bucket, the min, max,
//! mean and count of the rows plain `fleetctl sar` prints for the same range.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use fleet_tests::*;
use serde_json::Value;

#[test]
fn buckets_are_those_of_the_rows_sar_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let _agent = start_agent(&url, &tmp.path().join("w1"), "w1", "prod", &[]);
    wait_for_batches(&url, "w1", 12);

    // A fixed range, so both commands read the same rows.
    let now = Utc::now();
    let at = |ago_ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(now.timestamp_millis() - ago_ms)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    let (since, until) = (at(60_000), at(0));
    let range = ["--since", since.as_str(), "--until", until.as_str()];
    let raw = fleetctl_json(
        &url,
        &[&["sar", "-u", "-P", "ALL", "--host", "w1"][..], &range].concat(),
    );
    let step = 3_000i64;
    let buckets = fleetctl_json(
        &url,
        &[
            &["sar", "-u", "-P", "ALL", "--host", "w1", "--step", "3s"][..],
            &range,
        ]
        .concat(),
    );

    // The rows, grouped the way the collector buckets them.
    let mut want: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
    for row in raw.as_array().unwrap() {
        let time = DateTime::parse_from_rfc3339(row["time"].as_str().unwrap()).unwrap();
        let start = time.timestamp_millis().div_euclid(step) * step;
        let cpu = row["CPU"].as_str().unwrap().to_owned();
        want.entry((cpu, start))
            .or_default()
            .push(row["%user"].as_f64().unwrap());
    }
    let got: BTreeMap<(String, i64), &Value> = buckets
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let time = DateTime::parse_from_rfc3339(b["time"].as_str().unwrap()).unwrap();
            (
                (
                    b["CPU"].as_str().unwrap().to_owned(),
                    time.timestamp_millis(),
                ),
                b,
            )
        })
        .collect();
    assert!(want.len() >= 10, "{want:?}");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same (CPU, bucket) pairs"
    );
    for (key, values) in &want {
        let b = got[key];
        assert_eq!(b["step_ms"], step);
        let user = &b["%user"];
        assert_eq!(user["count"], values.len(), "{key:?}: {b}");
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert_eq!(user["min"].as_f64(), Some(min), "{key:?}: {b}");
        assert_eq!(user["max"].as_f64(), Some(max), "{key:?}: {b}");
        let got_mean = user["mean"].as_f64().unwrap();
        assert!(
            (got_mean - mean).abs() < 1e-9,
            "{key:?}: {got_mean} vs {mean}"
        );
    }
}
