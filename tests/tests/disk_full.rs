//! End-to-end: the collector's data directory is a small tmpfs of the test's own, filled under
//! the load of a real agent (issue 12, "A full disk on the collector"). The collector stays up,
//! stops acknowledging while the agent keeps its samples in its spool, answers queries, shows
//! the storage state in `fleetctl status`, and takes writes again by itself once space is back:
//! nothing lost, nothing stored twice. Stopped while the disk is full it exits cleanly (before
//! the fix: SIGABRT, an assertion inside Debian's RocksDB) and comes back with all it
//! acknowledged. A store that cannot be reopened at all ends the collector with status 1.
//!
//! The collector's log is written next to its data directory, outside the full filesystem.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use fleet_tests::*;
use serde_json::Value;

/// The size of the collector's filesystem: room for its database, filled by the test.
const FS_BYTES: u64 = 32 << 20;
/// How soon writes must resume once space is back (the bound).
const RESUME_WITHIN: Duration = Duration::from_secs(30);
/// The outage the tests hold the disk full for: a fixed sleep on purpose, the outage itself is
/// what is tested (nothing acknowledged during it, all of it replayed after).
const OUTAGE: Duration = Duration::from_secs(6);

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

/// Exactly once: one stored row per acknowledged seq of `host`, none twice, no gap (the agent
/// samples every second and kept what it took during the outage).
fn assert_exactly_once(url: &str, host: &str) {
    let last = last_seq(url, host).expect("host listed");
    let times = sample_times(url, host);
    assert_eq!(times.len() as u64, last, "{host}: rows vs sequence numbers");
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            (500..=2500).contains(&gap),
            "{host}: samples {gap} ms apart: doubled or lost"
        );
    }
}

/// A collector whose data directory is a fresh tmpfs (with `extra` flags), with one agent
/// (`host`) whose samples it stores.
fn collector_with_agent(tmp: &Path, host: &str, extra: &[&str]) -> (Tmpfs, Collector, Proc) {
    caps::require(caps::root());
    let fs = Tmpfs::mount(&tmp.join("data"), FS_BYTES);
    let c = Collector::start(fs.path(), "127.0.0.1:0", extra);
    let agent = start_agent(&c.url(), &tmp.join("agent"), host, "prod", &[]);
    wait_for_batches(&c.url(), host, 3);
    (fs, c, agent)
}

/// Fills the disk and drives load until a write of the collector failed on it (its log says
/// so), watching that it lives; returns the host's last acknowledged seq then.
///
/// The load is `fleet-loadgen` (two simulated agents) next to the real agent: RocksDB
/// preallocates its write-ahead log, so the writes of one agent alone could go on into the
/// preallocated space for minutes after the filesystem is full. Its agents stop at the first
/// refused write.
fn fill_until_a_write_fails(fs: &Tmpfs, c: &mut Collector, host: &str) -> u64 {
    let filled = fs.fill();
    let _load = Reaped(
        std::process::Command::new(bin("fleet-loadgen"))
            .args(["--collector", &c.url(), "--agents", "2", "--seconds", "30"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start fleet-loadgen"),
    );
    wait_for(
        &format!("a write failing on the full disk ({filled} bytes of filler)"),
        Duration::from_secs(30),
        || {
            assert_up(c);
            c.proc
                .log_text()
                .contains("No space left on device")
                .then_some(())
        },
    );
    last_seq(&c.url(), host).expect("host listed")
}

#[test]
fn a_full_disk_stops_acks_keeps_queries_and_resumes_losing_and_doubling_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Sealing every second: its writes, too, wait quietly for the disk.
    let config = tmp.path().join("collector.toml");
    std::fs::write(&config, "seal_every = \"1s\"\n").unwrap();
    // Dropped in reverse: agent, collector, then the unmount.
    let (fs, mut c, mut agent) =
        collector_with_agent(tmp.path(), "df1", &["--config", config.to_str().unwrap()]);
    let url = c.url();

    let stored = fill_until_a_write_fails(&fs, &mut c, "df1");
    let rows = sample_times(&url, "df1").len();
    std::thread::sleep(OUTAGE);
    // Nothing acknowledged or stored meanwhile, queries answered, the collector up.
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
    let during = storage(&mut c);
    let table = String::from_utf8(fleetctl(&url, &["status"]).stdout).unwrap();

    fs.free();
    let freed = Instant::now();
    let mut resumed_after = None;
    // The agent's spool, replayed once writes resume (its reconnect backoff is at most 30 s):
    // the samples it took while the disk was full arrive.
    wait_for(
        "writes to resume and the samples spooled during the outage to be stored",
        Duration::from_secs(60),
        || {
            if resumed_after.is_none() && storage(&mut c)["state"] == "ok" {
                resumed_after = Some(freed.elapsed());
            }
            last_seq(&url, "df1").filter(|s| *s >= stored + OUTAGE.as_secs())
        },
    );
    let resumed_after = resumed_after.expect("storage ok");
    eprintln!("storage ok {resumed_after:?} after space came back");
    assert!(resumed_after <= RESUME_WITHIN, "{resumed_after:?}");

    // What `fleetctl status` showed during the outage.
    assert_eq!(during["state"], "failing", "{during}");
    assert!(during["since"].is_string(), "{during}");
    assert!(
        during["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device")),
        "{during}"
    );
    assert!(
        table.contains("storage                  failing since "),
        "{table}"
    );

    assert_eq!(agent.term(Duration::from_secs(15)), Some(0), "agent exit");
    assert_exactly_once(&url, "df1");
    assert_up(&mut c);
    assert_eq!(
        c.proc.term(Duration::from_secs(15)),
        Some(0),
        "collector exit"
    );
    // Logged once per change of state, not per refused batch, retry, seal or disconnect.
    let log = c.proc.log_text();
    assert_eq!(log.matches("storage writes failing").count(), 1, "{log}");
    assert_eq!(log.matches("storage writable again").count(), 1, "{log}");
    for quiet in [
        "sealing failed",
        "retention failed",
        "could not record disconnect",
    ] {
        assert!(!log.contains(quiet), "{quiet}: {log}");
    }
}

#[test]
fn stopped_on_a_full_disk_it_exits_cleanly_and_comes_back_with_all_it_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, mut c, mut agent) = collector_with_agent(tmp.path(), "df3", &[]);
    let stored = fill_until_a_write_fails(&fs, &mut c, "df3");
    let status = c.proc.term(Duration::from_secs(15));
    assert_eq!(
        status,
        Some(0),
        "stopped on a full disk (None: killed by a signal); log:\n{}",
        c.proc.log_text()
    );

    fs.free();
    let c = Collector::start(fs.path(), &c.addr, &[]);
    let url = c.url();
    wait_for(
        "the samples spooled while the collector was down to be stored",
        Duration::from_secs(60),
        || last_seq(&url, "df3").filter(|s| *s >= stored + 3),
    );
    assert_eq!(agent.term(Duration::from_secs(15)), Some(0), "agent exit");
    assert_exactly_once(&url, "df3");
}

#[test]
fn a_store_that_cannot_be_reopened_ends_the_collector_with_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, mut c, _agent) = collector_with_agent(tmp.path(), "df2", &[]);
    fill_until_a_write_fails(&fs, &mut c, "df2");
    // The database's files are taken away while writes fail; then space comes back, and the
    // reopen finds no database.
    for f in std::fs::read_dir(fs.path()).unwrap() {
        let path = f.unwrap().path();
        if path != fs.filler() {
            std::fs::remove_file(path).unwrap();
        }
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
