//! End-to-end: the collector's data directory on a small tmpfs of the test's own, filled under
//! the load of a real agent (issue 12, "A full disk on the collector"). The collector stays up
//! (Debian's RocksDB is built with assertions: before the fix it died of SIGABRT here), stops
//! acknowledging while the agent keeps its samples in its spool, answers queries, shows the
//! storage state in `fleetctl status`, and takes writes again by itself once space is back:
//! nothing lost, nothing stored twice. A store that cannot be reopened at all ends the
//! collector with a non-zero status.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use fleet_tests::*;
use serde_json::Value;

/// The size of the collector's filesystem: room for its database, filled by the test.
const FS_BYTES: u64 = 32 << 20;
/// How soon writes must resume once space is back (the bound).
const RESUME_WITHIN: Duration = Duration::from_secs(30);

/// Panics, with how it ended and its log, if the collector is no longer running.
fn assert_up(c: &mut Collector) {
    if let Ok(Some(status)) = c.proc.child.try_wait() {
        panic!(
            "the collector ended: {status} (signal {:?}); log:\n{}",
            status.signal(),
            c.proc.log_text()
        );
    }
}

/// `fleetctl status -o json`'s `storage` object, failing the test if the collector died.
fn storage(c: &mut Collector) -> Value {
    assert_up(c);
    fleetctl_json(&c.url(), &["status"])["storage"].clone()
}

/// Waits until `fleetctl status` shows the storage `state`, watching that the collector lives.
fn wait_for_storage(c: &mut Collector, state: &str, timeout: Duration) -> Value {
    wait_for(&format!("storage {state}"), timeout, || {
        let s = storage(c);
        (s["state"] == state).then_some(s)
    })
}

/// The times (ms) of the host's stored CPU rows (`all`), in order.
fn sample_times(url: &str, host: &str) -> Vec<i64> {
    let v = fleetctl_json(url, &["sar", "-u", "--host", host, "--since", "1h"]);
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| {
            let t = r["time"].as_str().expect("time");
            chrono::DateTime::parse_from_rfc3339(t)
                .unwrap_or_else(|e| panic!("{t:?}: {e}"))
                .timestamp_millis()
        })
        .collect()
}

/// A collector on a fresh tmpfs with one agent (`host`) whose samples it stores.
fn collector_with_agent(tmp: &Path, host: &str) -> (Tmpfs, Collector, Proc) {
    caps::require(caps::root());
    let fs = Tmpfs::mount(&tmp.join("mnt"), FS_BYTES);
    let c = Collector::start(&fs.path().join("data"), "127.0.0.1:0", &[]);
    let agent = start_agent(&c.url(), &tmp.join("agent"), host, "prod", &[]);
    wait_for_samples(&c.url(), host, 3);
    (fs, c, agent)
}

#[test]
fn a_full_disk_stops_acks_keeps_queries_and_resumes_losing_and_doubling_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Dropped in reverse: agent, collector, then the unmount.
    let (fs, mut c, mut agent) = collector_with_agent(tmp.path(), "df1");
    let url = c.url();
    assert_eq!(storage(&mut c)["state"], "ok");

    let filled = fs.fill();
    let failing = wait_for_storage(&mut c, "failing", Duration::from_secs(30));
    assert!(
        failing["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device")),
        "{failing} (filler of {filled} bytes)"
    );
    assert!(failing["since"].is_string(), "{failing}");
    let table = String::from_utf8(fleetctl(&url, &["status"]).stdout).unwrap();
    assert!(
        table.contains("storage                  failing since "),
        "{table}"
    );

    // Full for a while: a fixed sleep on purpose, the outage itself is what is tested. Nothing
    // is acknowledged or stored meanwhile, queries are answered, the collector stays up.
    let stored = last_seq(&url, "df1").expect("df1 listed");
    let rows = sample_times(&url, "df1").len();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        last_seq(&url, "df1"),
        Some(stored),
        "acknowledged on a full disk"
    );
    assert_eq!(
        sample_times(&url, "df1").len(),
        rows,
        "stored on a full disk"
    );
    assert_eq!(storage(&mut c)["state"], "failing");

    fs.free();
    let freed = Instant::now();
    wait_for_storage(&mut c, "ok", RESUME_WITHIN);
    eprintln!("storage ok {:?} after space came back", freed.elapsed());
    // The agent's spool, replayed (its reconnect backoff is at most 30 s): the samples it took
    // while the disk was full arrive.
    wait_for(
        "the samples spooled during the outage",
        Duration::from_secs(60),
        || last_seq(&url, "df1").filter(|s| *s >= stored + 8),
    );
    assert_eq!(agent.term(Duration::from_secs(15)), Some(0), "agent exit");

    // Exactly once: one row per acknowledged seq, none twice, no gap from the outage.
    let last = last_seq(&url, "df1").unwrap();
    let times = sample_times(&url, "df1");
    assert_eq!(times.len() as u64, last, "rows vs sequence numbers");
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            (500..=2500).contains(&gap),
            "samples {gap} ms apart: doubled or lost"
        );
    }

    assert_up(&mut c);
    assert_eq!(
        c.proc.term(Duration::from_secs(15)),
        Some(0),
        "collector exit"
    );
    // Logged once per change of state, not per refused batch or retry.
    let log = c.proc.log_text();
    assert_eq!(log.matches("storage writes failing").count(), 1, "{log}");
    assert_eq!(log.matches("storage writable again").count(), 1, "{log}");
}

#[test]
fn a_store_that_cannot_be_reopened_ends_the_collector_with_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, mut c, _agent) = collector_with_agent(tmp.path(), "df2");
    fs.fill();
    wait_for_storage(&mut c, "failing", Duration::from_secs(30));
    // The database's files are taken away while writes fail; then space comes back, and the
    // reopen finds no database.
    for f in std::fs::read_dir(&c.data_dir).unwrap() {
        let _ = std::fs::remove_file(f.unwrap().path());
    }
    fs.free();
    let child = &mut c.proc.child;
    let status = wait_for("the collector to stop", RESUME_WITHIN, || {
        child.try_wait().ok().flatten()
    });
    let log = c.proc.log_text();
    assert_eq!(status.code(), Some(1), "{status}; log:\n{log}");
    assert!(log.contains("storage cannot continue"), "{log}");
}
