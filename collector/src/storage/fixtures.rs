//! What the store's tests share: a store in a temporary directory, hosts, samples, kills and
//! rankings, and peeks at the raw column families.

use std::time::Duration;

use fleet_proto::v1::{Activity, HostIdentity, OomEvent, OomProcess, Record, Sample};
use prost::Message;

use super::{IngestItem, Store, StoreOptions, StoredOomKill, StoredRow, CF_RAW};

pub(super) const HOUR_MS: i64 = 3_600_000;
/// A window-aligned base time (2023-11-14T22:00:00Z).
pub(super) const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;
/// The boot of the kills of [`kill`].
pub(super) const BOOT: &str = "5f1c3b2a-0000-4000-8000-000000000001";

pub(super) fn identity(id: &str) -> HostIdentity {
    HostIdentity {
        host_id: id.into(),
        hostname: format!("{id}.example"),
        cluster: "c1".into(),
        ..Default::default()
    }
}

/// Retention 24 h, windows of 1 h.
pub(super) fn opts() -> StoreOptions {
    StoreOptions {
        retention: Duration::from_secs(24 * 3600),
        chunk_window: Duration::from_secs(3600),
        outbox_limit: None,
    }
}

pub(super) fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), opts()).expect("open")
}

/// A sample with CPU "all" and "0" and one memory record, values derived from `time_ms`.
pub(super) fn sample(time_ms: i64) -> Sample {
    let x = (time_ms / 1000 % 1000) as f64 / 100.0;
    let cpu = |inst: &str, base: f64| Record {
        activity: Activity::Cpu as i32,
        instance: inst.into(),
        values: vec![base + x, 0.0, 1.5, 0.25, 0.0, 100.0 - base - x - 1.75],
    };
    Sample {
        time_ms,
        interval_ms: 10_000,
        records: vec![
            cpu("all", 10.0),
            cpu("0", 20.0),
            Record {
                activity: Activity::Memory as i32,
                instance: "-".into(),
                values: (0..11).map(|i| f64::from(i) * 1000.0 + x).collect(),
            },
        ],
        top_oom: Vec::new(),
        clock: None,
    }
}

pub(super) fn item(host_num: u32, epoch: u64, seq: u64, times: &[i64]) -> IngestItem {
    IngestItem {
        host_num,
        epoch,
        seq,
        dropped_samples: seq / 2,
        samples: times.iter().map(|&t| sample(t)).collect(),
        ..Default::default()
    }
}

pub(super) fn cpu_rows(store: &Store, host: u32, from: i64, to: i64) -> Vec<StoredRow> {
    store.query(host, Activity::Cpu, from, to).expect("query")
}

/// Puts `value` under `key` in column family `cf`, behind the store's back (to damage data).
pub(super) fn put(store: &Store, cf: &'static str, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
    let db = store.db().unwrap();
    db.put_cf(db.cf(cf).unwrap(), key, value).unwrap();
}

/// Deletes `key` from column family `cf`, behind the store's back.
pub(super) fn delete(store: &Store, cf: &'static str, key: impl AsRef<[u8]>) {
    let db = store.db().unwrap();
    db.delete_cf(db.cf(cf).unwrap(), key).unwrap();
}

/// The value under `key` in column family `cf`.
pub(super) fn get(store: &Store, cf: &'static str, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    let db = store.db().unwrap();
    db.get_cf(db.cf(cf).unwrap(), key).unwrap()
}

/// How many samples `raw` holds.
pub(super) fn raw_count(store: &Store) -> usize {
    let db = store.db().unwrap();
    let mut it = db.raw_iterator_cf(db.cf(CF_RAW).unwrap());
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    n
}

/// Every sample `raw` holds, in key order.
pub(super) fn raw_samples(store: &Store) -> Vec<Sample> {
    let db = store.db().unwrap();
    let mut it = db.raw_iterator_cf(db.cf(CF_RAW).unwrap());
    it.seek_to_first();
    let mut out = Vec::new();
    while let Some(v) = it.value() {
        out.push(Sample::decode(v).unwrap());
        it.next();
    }
    out
}

/// How many keys of column family `cf` start with `prefix`.
pub(super) fn count_keys(store: &Store, cf: &'static str, prefix: u8) -> usize {
    let db = store.db().unwrap();
    let mut it = db.raw_iterator_cf(db.cf(cf).unwrap());
    it.seek([prefix]);
    let mut n = 0;
    while it.key().is_some_and(|k| k[0] == prefix) {
        n += 1;
        it.next();
    }
    n
}

/// A kill parsed from the kernel log (`seq: Some`) or only counted by /proc/vmstat (`None`).
pub(super) fn kill(time_ms: i64, seq: Option<u64>, pid: i64) -> OomEvent {
    OomEvent {
        time_ms,
        kmsg_seq: seq,
        boot_id: BOOT.into(),
        victim_pid: Some(pid),
        victim_comm: Some(format!("proc{pid}")),
        source: if seq.is_some() { "kmsg" } else { "vmstat" }.into(),
        detail_json: format!("{{\"victim_pid\":{pid}}}"),
        ..Default::default()
    }
}

pub(super) fn kills_item(host_num: u32, epoch: u64, seq: u64, events: Vec<OomEvent>) -> IngestItem {
    IngestItem {
        host_num,
        epoch,
        seq,
        oom_events: events,
        ..Default::default()
    }
}

pub(super) fn process(pid: i64, oom_score: i64) -> OomProcess {
    OomProcess {
        pid,
        comm: format!("proc{pid}"),
        cmdline: format!("/usr/bin/proc{pid} --serve"),
        uid: 1000,
        oom_score,
        oom_score_adj: 0,
        rss_kb: 1024 * pid as u64,
    }
}

/// A sample carrying a ranking of `(pid, oom_score)`, in the given (possibly unsorted) order.
pub(super) fn ranked(time_ms: i64, procs: &[(i64, i64)]) -> Sample {
    Sample {
        top_oom: procs.iter().map(|&(p, s)| process(p, s)).collect(),
        ..sample(time_ms)
    }
}

pub(super) fn all_kills(store: &Store) -> Vec<StoredOomKill> {
    store.oom_kills(&[], 0, i64::MAX, usize::MAX).unwrap()
}

pub(super) fn pids(kills: &[StoredOomKill]) -> Vec<i64> {
    kills.iter().map(|k| k.event.victim_pid.unwrap()).collect()
}
