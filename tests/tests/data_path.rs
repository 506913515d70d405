//! End-to-end: real collector, real agents on this host's /proc, real fleetctl.

use std::collections::BTreeSet;
use std::time::Duration;

use fleet_tests::*;
use serde_json::Value;

const ACTIVITIES: &[(&[&str], &str)] = &[
    (&["-u"], "%user"),
    (&["-u", "-P", "ALL"], "%idle"),
    (&["-r"], "kbmemfree"),
    (&["-S"], "kbswpfree"),
    (&["-W"], "pswpin/s"),
    (&["-B"], "pgpgin/s"),
    (&["-b"], "tps"),
    (&["-q"], "runq-sz"),
    (&["-n", "DEV"], "rxpck/s"),
    (&["-n", "EDEV"], "rxerr/s"),
];

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().expect("a JSON array")
}

#[test]
fn three_agents_two_clusters_every_activity() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let _a1 = start_agent(&url, &tmp.path().join("a1"), "web1", "prod", &[]);
    let _a2 = start_agent(&url, &tmp.path().join("a2"), "web2", "prod", &[]);
    let _a3 = start_agent(&url, &tmp.path().join("a3"), "stg1", "staging", &[]);

    let hosts = wait_for("three connected hosts", Duration::from_secs(30), || {
        let v = try_fleetctl_json(&url, &["hosts"])?;
        let connected = rows(&v)
            .iter()
            .filter(|h| h["connected"] == Value::Bool(true))
            .count();
        (connected == 3).then_some(v)
    });
    let mut seen: Vec<(String, String)> = rows(&hosts)
        .iter()
        .map(|h| {
            for key in [
                "host_id",
                "hostname",
                "cluster",
                "labels",
                "kernel",
                "agent_version",
                "connected",
                "last_seen",
            ] {
                assert!(h.get(key).is_some(), "hosts row lacks {key}: {h}");
            }
            assert_eq!(h["labels"]["role"], "test");
            let last_seen = h["last_seen"].as_str().unwrap();
            assert!(
                last_seen.ends_with('Z') && last_seen.contains('T'),
                "RFC 3339 UTC: {last_seen}"
            );
            (
                h["host_id"].as_str().unwrap().to_string(),
                h["cluster"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("stg1".to_string(), "staging".to_string()),
            ("web1".to_string(), "prod".to_string()),
            ("web2".to_string(), "prod".to_string())
        ]
    );
    let prod = fleetctl_json(&url, &["hosts", "--cluster", "prod"]);
    assert_eq!(rows(&prod).len(), 2);

    // Every activity, for every host, arrives and carries sysstat's column names.
    for (flags, column) in ACTIVITIES {
        for host in ["web1", "web2", "stg1"] {
            let mut args = vec!["sar"];
            args.extend_from_slice(flags);
            args.extend_from_slice(&["--host", host, "--since", "5m"]);
            let v = wait_for(
                &format!("sar {flags:?} rows for {host}"),
                Duration::from_secs(30),
                || {
                    let v = try_fleetctl_json(&url, &args)?;
                    (!rows(&v).is_empty()).then_some(v)
                },
            );
            let row = &rows(&v)[0];
            assert_eq!(row["host_id"], host, "{row}");
            assert!(row["time"].as_str().unwrap().ends_with('Z'), "{row}");
            assert!(
                row[column].is_number(),
                "{flags:?}: no numeric {column:?} in {row}"
            );
        }
    }
    // -P ALL shows per-CPU rows besides "all".
    let v = fleetctl_json(
        &url,
        &["sar", "-u", "-P", "ALL", "--host", "web1", "--since", "5m"],
    );
    let cpus: BTreeSet<String> = rows(&v)
        .iter()
        .map(|r| r["CPU"].as_str().unwrap().to_string())
        .collect();
    assert!(cpus.contains("all") && cpus.contains("0"), "{cpus:?}");
    // A cluster query covers its hosts only.
    let v = fleetctl_json(&url, &["sar", "-r", "--cluster", "prod", "--since", "5m"]);
    let ids: BTreeSet<&str> = rows(&v)
        .iter()
        .map(|r| r["host_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, BTreeSet::from(["web1", "web2"]));
    // Several activities in one call, as `sar -r -u` (shown as sar shows them: -u first): JSON
    // rows of both for the host, each naming its activity; a table per activity.
    let v = fleetctl_json(
        &url,
        &["sar", "-r", "-u", "--host", "web1", "--since", "5m"],
    );
    let activities: Vec<&str> = rows(&v)
        .iter()
        .map(|r| {
            assert_eq!(r["host_id"], "web1", "{r}");
            let (activity, column) = match r["activity"].as_str() {
                Some("cpu") => ("cpu", "%user"),
                Some("memory") => ("memory", "kbmemfree"),
                other => panic!("activity {other:?} in {r}"),
            };
            assert!(r[column].is_number(), "no numeric {column:?} in {r}");
            activity
        })
        .collect();
    let first_memory = activities.iter().position(|a| *a == "memory");
    assert!(
        matches!(first_memory, Some(i) if i > 0 && activities[i..].iter().all(|a| *a == "memory")),
        "cpu rows, then memory rows: {activities:?}"
    );
    let out = fleetctl(
        &url,
        &["sar", "-u", "-r", "--host", "web1", "--since", "5m"],
    );
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.matches("Linux ").count(), 1, "{table}");
    let (cpu, memory) = (table.find("%user"), table.find("kbmemfree"));
    assert!(cpu.is_some() && cpu < memory, "{table}");
    assert!(table.matches("Average:").count() >= 2, "{table}");
    // The table looks like sar's.
    let out = fleetctl(&url, &["sar", "-u", "--host", "web1", "--since", "5m"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        table.contains("%user") && table.contains("%idle") && table.contains("Average:"),
        "{table}"
    );
}

/// Checks that `host` has exactly one stored sample per sequence number: the number of rows
/// equals the host's last acknowledged seq, times strictly increase, and no two rows are closer
/// than half an interval or further apart than `max_gap`.
fn assert_exactly_once(url: &str, host: &str, max_gap: Duration) -> usize {
    let hosts = fleetctl_json(url, &["hosts"]);
    let h = rows(&hosts)
        .iter()
        .find(|h| h["host_id"] == host)
        .expect("host listed");
    let last_seq = h["last_seq"].as_u64().expect("last_seq in hosts JSON");
    let v = fleetctl_json(url, &["sar", "-u", "--host", host, "--since", "1h"]);
    let times: Vec<i64> = rows(&v)
        .iter()
        .map(|r| {
            let t = r["time"].as_str().unwrap();
            chrono_ms(t)
        })
        .collect();
    assert_eq!(
        times.len() as u64,
        last_seq,
        "{host}: rows vs sequence numbers"
    );
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= 500,
            "{host}: duplicate or too close samples ({gap} ms apart)"
        );
        assert!(gap <= max_gap.as_millis() as i64, "{host}: gap of {gap} ms");
    }
    times.len()
}

/// Milliseconds of an RFC 3339 time as fleetctl prints it.
fn chrono_ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{t:?} is not RFC 3339: {e}"))
        .timestamp_millis()
}

#[test]
fn collector_killed_and_restarted_loses_and_doubles_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut c = Collector::start(&data, "127.0.0.1:0", &[]);
    let url = c.url();
    let addr = c.addr.clone();
    let mut agents = vec![
        start_agent(&url, &tmp.path().join("a1"), "o1", "prod", &[]),
        start_agent(&url, &tmp.path().join("a2"), "o2", "prod", &[]),
    ];
    wait_for("samples from both agents", Duration::from_secs(30), || {
        let v = try_fleetctl_json(&url, &["hosts"])?;
        (rows(&v)
            .iter()
            .filter(|h| h["last_seq"].as_u64() >= Some(3))
            .count()
            == 2)
            .then_some(())
    });
    c.proc.kill9();
    // Down for several intervals; agents keep sampling into their spools. A fixed sleep on
    // purpose: the outage itself is what is tested (replayed once, and logged once).
    std::thread::sleep(Duration::from_secs(6));
    let c2 = Collector::start(&data, &addr, &[]);
    wait_for(
        "agents reconnected and replayed",
        Duration::from_secs(60),
        || {
            let v = try_fleetctl_json(&c2.url(), &["hosts"])?;
            (rows(&v)
                .iter()
                .filter(|h| h["connected"] == true && h["last_seq"].as_u64() >= Some(12))
                .count()
                == 2)
                .then_some(())
        },
    );
    for a in &mut agents {
        assert_eq!(
            a.term(Duration::from_secs(15)),
            Some(0),
            "agent exit; log:\n{}",
            a.log_text()
        );
    }
    for host in ["o1", "o2"] {
        let n = assert_exactly_once(&c2.url(), host, Duration::from_millis(2500));
        assert!(n >= 12, "{host}: {n} samples");
    }
    // The outage was logged once per state change, not once per attempt.
    let log = agents[0].log_text();
    assert_eq!(
        log.matches("collector unreachable").count()
            + log.matches("stream to collector lost").count(),
        1,
        "{log}"
    );
}

#[test]
fn agent_killed_and_restarted_replays_its_spool_once() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    let state = tmp.path().join("a1");
    let mut a = start_agent(&url, &state, "k1", "prod", &[]);
    wait_for_batches(&url, "k1", 3);
    a.kill9();
    // A fixed sleep on purpose: the agent stays down 2 s, the gap the check below allows for.
    std::thread::sleep(Duration::from_secs(2));
    let mut a = start_agent(&url, &state, "k1", "prod", &[]);
    wait_for_batches(&url, "k1", 8);
    assert_eq!(a.term(Duration::from_secs(15)), Some(0));
    // The agent was down ~2 s plus its start-up: one gap of up to ~5 s is expected, nothing doubled.
    assert_exactly_once(&url, "k1", Duration::from_secs(6));
}
