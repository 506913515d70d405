//! Engine tests against a real RocksDB in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use fleet_proto::v1::{Activity, HostIdentity, Record, Sample};

use super::*;

const HOUR_MS: i64 = 3_600_000;
/// A window-aligned base time (2023-11-14T22:00:00Z).
const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;

fn identity(id: &str) -> HostIdentity {
    HostIdentity {
        host_id: id.into(),
        hostname: format!("{id}.example"),
        cluster: "c1".into(),
        ..Default::default()
    }
}

fn opts() -> StoreOptions {
    StoreOptions {
        retention: Duration::from_secs(24 * 3600),
        chunk_window: Duration::from_secs(3600),
    }
}

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path(), opts()).expect("open")
}

/// A sample with CPU "all" and "0" and one memory record, values derived from `time_ms`.
fn sample(time_ms: i64) -> Sample {
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
    }
}

fn item(host_num: u32, epoch: u64, seq: u64, times: &[i64]) -> IngestItem {
    IngestItem {
        host_num,
        epoch,
        seq,
        dropped_samples: seq / 2,
        samples: times.iter().map(|&t| sample(t)).collect(),
    }
}

fn cpu_rows(store: &Store, host: u32, from: i64, to: i64) -> Vec<StoredRow> {
    store.query(host, Activity::Cpu, from, to).expect("query")
}

fn raw_count(store: &Store) -> usize {
    let mut it = store.db.raw_iterator_cf(store.cf(CF_RAW).unwrap());
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    n
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Store>();
    check::<Arc<Store>>();
}

#[test]
fn hosts_get_small_numbers_and_updates_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.upsert_host(&identity("a"), 1000, true).unwrap();
    let b = store.upsert_host(&identity("b"), 2000, true).unwrap();
    assert_eq!((a.num, b.num), (1, 2));
    assert!(a.connected);
    let mut renamed = identity("a");
    renamed.hostname = "new-name".into();
    let a2 = store.upsert_host(&renamed, 3000, false).unwrap();
    assert_eq!(a2.num, 1);
    assert_eq!(a2.first_seen_ms, 1000);
    assert_eq!(a2.last_seen_ms, 3000);
    assert!(!a2.connected);
    assert_eq!(a2.identity.hostname, "new-name");
    assert_eq!(store.hosts().len(), 2);
    assert_eq!(store.host_by_num(1), Some(a2));
    store.set_connected(2, false, 5000).unwrap();
    assert!(!store.host_by_num(2).unwrap().connected);
    assert!(matches!(
        store.set_connected(99, true, 0),
        Err(StorageError::UnknownHost(99))
    ));
    assert!(matches!(
        store.upsert_host(&identity(""), 0, true),
        Err(StorageError::InvalidArgument(_))
    ));
}

#[test]
fn write_then_query_orders_by_time_then_instance() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), T0, true).unwrap().num;
    let other = store.upsert_host(&identity("b"), T0, true).unwrap().num;
    // Out of order across batches, and a second host that must not leak into the query.
    let out = store
        .write(
            &[
                item(h, 7, 1, &[T0 + 20_000, T0 + 30_000]),
                item(other, 1, 1, &[T0 + 20_000]),
                item(h, 7, 2, &[T0 + 10_000]),
            ],
            T0 + 31_000,
        )
        .unwrap();
    assert_eq!(out, vec![WriteOutcome::Stored; 3]);

    let rows = cpu_rows(&store, h, T0, T0 + HOUR_MS);
    let order: Vec<(i64, &str)> = rows
        .iter()
        .map(|r| (r.time_ms - T0, r.instance.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![
            (10_000, "0"),
            (10_000, "all"),
            (20_000, "0"),
            (20_000, "all"),
            (30_000, "0"),
            (30_000, "all"),
        ]
    );
    let s = sample(T0 + 10_000);
    assert_eq!(rows[1].values, s.records[0].values);
    assert_eq!(rows[1].interval_ms, 10_000);

    // Bounds are inclusive; other activities are separate.
    assert_eq!(cpu_rows(&store, h, T0 + 20_000, T0 + 20_000).len(), 2);
    assert_eq!(cpu_rows(&store, h, T0 + 20_001, T0 + 29_999).len(), 0);
    assert_eq!(cpu_rows(&store, h, T0 + 30_000, T0).len(), 0);
    let mem = store.query(h, Activity::Memory, 0, i64::MAX).unwrap();
    assert_eq!(mem.len(), 3);
    assert_eq!(mem[0].instance, "-");
    assert!(store
        .query(h, Activity::Disk, 0, i64::MAX)
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.query(h, Activity::Unspecified, 0, 1),
        Err(StorageError::InvalidArgument(_))
    ));

    let rec = store.host_by_num(h).unwrap();
    assert_eq!((rec.epoch, rec.last_seq, rec.dropped_samples), (7, 2, 1));
    assert_eq!(rec.last_seen_ms, T0 + 31_000);
}

#[test]
fn duplicate_seqs_are_skipped_and_new_epochs_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    assert_eq!(store.last_seq(h, 5), 0);
    let out = store
        .write(
            &[
                item(h, 5, 1, &[T0 + 10_000]),
                item(h, 5, 2, &[T0 + 20_000]),
                // Within one group: a replay of seq 2 is a duplicate of the item before it.
                item(h, 5, 2, &[T0 + 99_000]),
            ],
            T0,
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            WriteOutcome::Stored,
            WriteOutcome::Stored,
            WriteOutcome::Duplicate
        ]
    );
    assert_eq!(store.last_seq(h, 5), 2);
    assert_eq!(store.last_seq(h, 6), 0);

    let out = store
        .write(
            &[item(h, 5, 1, &[T0 + 40_000]), item(h, 5, 3, &[T0 + 30_000])],
            T0,
        )
        .unwrap();
    assert_eq!(out, vec![WriteOutcome::Duplicate, WriteOutcome::Stored]);
    let times: Vec<i64> = cpu_rows(&store, h, 0, i64::MAX)
        .iter()
        .filter(|r| r.instance == "all")
        .map(|r| r.time_ms - T0)
        .collect();
    assert_eq!(times, vec![10_000, 20_000, 30_000]);

    // A wiped spool: new epoch, numbering restarts.
    let out = store.write(&[item(h, 6, 1, &[T0 + 50_000])], T0).unwrap();
    assert_eq!(out, vec![WriteOutcome::Stored]);
    assert_eq!(store.last_seq(h, 6), 1);
    assert_eq!(store.last_seq(h, 5), 0);
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX).len(), 8);

    // All-duplicate groups write nothing and change nothing.
    let before = store.host_by_num(h).unwrap();
    let out = store
        .write(&[item(h, 6, 1, &[T0])], T0 + 1_000_000)
        .unwrap();
    assert_eq!(out, vec![WriteOutcome::Duplicate]);
    assert_eq!(store.host_by_num(h).unwrap(), before);
    assert!(store.write(&[], T0).unwrap().is_empty());
}

#[test]
fn bad_items_fail_the_whole_group_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let err = store
        .write(&[item(h, 1, 1, &[T0]), item(42, 1, 1, &[T0])], T0)
        .unwrap_err();
    assert!(matches!(err, StorageError::UnknownHost(42)), "{err}");

    let mut bad = item(h, 1, 2, &[T0 + 1000]);
    bad.samples[0].records[0].values.pop();
    let err = store.write(&[item(h, 1, 1, &[T0]), bad], T0).unwrap_err();
    assert!(matches!(err, StorageError::InvalidSample(_)), "{err}");

    let mut unknown = item(h, 1, 1, &[T0]);
    unknown.samples[0].records[0].activity = 99;
    assert!(store.write(&[unknown], T0).is_err());
    assert!(store.write(&[item(h, 1, 1, &[-5])], T0).is_err());

    assert_eq!(store.last_seq(h, 1), 0);
    assert_eq!(raw_count(&store), 0);
}

#[test]
fn reopening_keeps_hosts_seqs_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let (h, before) = {
        let store = open(&dir);
        let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
        store.upsert_host(&identity("b"), 0, true).unwrap();
        store
            .write(&[item(h, 9, 41, &[T0, T0 + 10_000])], T0 + 20_000)
            .unwrap();
        (h, cpu_rows(&store, h, 0, i64::MAX))
        // Dropped without flush: the synced WAL must carry everything.
    };
    let store = open(&dir);
    let rec = store.host_by_num(h).unwrap();
    assert_eq!((rec.epoch, rec.last_seq), (9, 41));
    assert!(!rec.connected, "no session survives a restart");
    assert_eq!(store.last_seq(h, 9), 41);
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX), before);
    assert_eq!(before.len(), 4);
    // Numbering continues after the existing hosts.
    assert_eq!(store.upsert_host(&identity("c"), 0, true).unwrap().num, 3);
    store.flush().unwrap();
    drop(store);

    let store = open(&dir);
    assert_eq!(store.hosts().len(), 3);
    assert_eq!(
        store.write(&[item(h, 9, 41, &[T0])], T0).unwrap(),
        vec![WriteOutcome::Duplicate]
    );
}

#[test]
fn the_stored_chunk_window_wins_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir));
    let store = Store::open(
        dir.path(),
        StoreOptions {
            chunk_window: Duration::from_secs(600),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(store.chunk_window(), Duration::from_secs(3600));
    drop(store);
    let bad = Store::open(
        dir.path(),
        StoreOptions {
            chunk_window: Duration::from_millis(1500),
            ..opts()
        },
    );
    assert!(matches!(bad, Err(StorageError::InvalidArgument(_))));
}

#[test]
fn seal_keeps_query_results_identical() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let h2 = store.upsert_host(&identity("b"), 0, true).unwrap().num;
    // Two full windows and part of a third, 10 s apart, in batches of 6 samples.
    let times: Vec<i64> = (0..800).map(|i| T0 + i * 10_000).collect();
    for (i, chunk) in times.chunks(6).enumerate() {
        let seq = i as u64 + 1;
        store
            .write(&[item(h, 1, seq, chunk), item(h2, 1, seq, chunk)], T0)
            .unwrap();
    }
    let now = T0 + 8_000_000;
    let before_cpu = cpu_rows(&store, h, 0, i64::MAX);
    let before_mem = store.query(h, Activity::Memory, 0, i64::MAX).unwrap();
    assert_eq!(before_cpu.len(), 1600);

    // At now = T0 + 2h13m only the first window is closed (window end + one grace window).
    let stats = store.seal(now).unwrap();
    assert_eq!(stats.groups, 2);
    assert_eq!(stats.samples, 720);
    assert_eq!(stats.chunks, 6, "cpu all, cpu 0, memory for two hosts");
    assert_eq!(stats.rows, 720 * 3);
    assert_eq!(stats.values, 360 * (6 + 6 + 11) * 2);
    assert_eq!(stats.merged_chunks, 0);
    assert_eq!(raw_count(&store), 1600 - 720);
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX), before_cpu);
    assert_eq!(
        store.query(h, Activity::Memory, 0, i64::MAX).unwrap(),
        before_mem
    );
    // Sealing again finds nothing new.
    assert_eq!(store.seal(now).unwrap(), SealStats::default());

    let stats = store.seal(T0 + 5 * HOUR_MS).unwrap();
    assert_eq!(stats.groups, 4);
    assert_eq!(raw_count(&store), 0);
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX), before_cpu);
    assert_eq!(
        store.query(h, Activity::Memory, 0, i64::MAX).unwrap(),
        before_mem
    );
    // Range queries cut inside chunks.
    let part = cpu_rows(&store, h, T0 + 3_590_000, T0 + 3_610_000);
    let times: Vec<i64> = part.iter().map(|r| r.time_ms - T0).collect();
    assert_eq!(
        times,
        vec![3_590_000, 3_590_000, 3_600_000, 3_600_000, 3_610_000, 3_610_000]
    );

    // Sealed data survives a reopen.
    drop(store);
    let store = open(&dir);
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX), before_cpu);
}

#[test]
fn late_data_merges_into_the_existing_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    store
        .write(&[item(h, 1, 1, &[T0 + 10_000, T0 + 30_000])], T0)
        .unwrap();
    assert_eq!(store.seal(T0 + 3 * HOUR_MS).unwrap().chunks, 3);

    // Late: one new timestamp, and one that replaces a sealed row (a re-sent sample in a new
    // epoch); the later write wins, before and after sealing.
    let mut replaced = sample(T0 + 30_000);
    replaced.records[0].values[0] = 77.77;
    let late = IngestItem {
        host_num: h,
        epoch: 2,
        seq: 1,
        dropped_samples: 0,
        samples: vec![sample(T0 + 20_000), replaced],
    };
    store.write(&[late], T0 + 3 * HOUR_MS).unwrap();
    let before = cpu_rows(&store, h, 0, i64::MAX);
    assert_eq!(before.len(), 6);
    assert_eq!(before[5].instance, "all");
    assert_eq!(before[5].values[0], 77.77);

    let stats = store.seal(T0 + 3 * HOUR_MS).unwrap();
    assert_eq!((stats.chunks, stats.merged_chunks), (3, 3));
    assert_eq!(stats.rows, 9);
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX), before);
    assert_eq!(raw_count(&store), 0);
}

#[test]
fn values_are_quantized_the_same_before_and_after_sealing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let mut s = sample(T0);
    s.records[0].values = vec![1.234_9, f64::NAN, f64::INFINITY, -0.0, 1e300, 33.333];
    let it = IngestItem {
        host_num: h,
        epoch: 1,
        seq: 1,
        dropped_samples: 0,
        samples: vec![s],
    };
    store.write(&[it], T0).unwrap();
    let bits =
        |rows: Vec<StoredRow>| -> Vec<u64> { rows[1].values.iter().map(|v| v.to_bits()).collect() };
    let before = bits(cpu_rows(&store, h, 0, i64::MAX));
    store.seal(T0 + 3 * HOUR_MS).unwrap();
    let after = bits(cpu_rows(&store, h, 0, i64::MAX));
    assert_eq!(before, after);
    let vals: Vec<f64> = after.iter().map(|b| f64::from_bits(*b)).collect();
    assert_eq!(vals[0], 1.23);
    assert!(vals[1].is_nan());
    assert_eq!(vals[2], f64::INFINITY);
    assert_eq!(vals[4], 1e300);
    assert_eq!(vals[5], 33.33);
}

#[test]
fn queries_skip_empty_windows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    // Three samples years apart: a query over the whole range must not visit every window.
    let far = [3_600_000, T0, T0 + 200 * 24 * HOUR_MS];
    for (i, t) in far.iter().enumerate() {
        store.write(&[item(h, 1, i as u64 + 1, &[*t])], 0).unwrap();
    }
    store.seal(far[1] + 3 * HOUR_MS).unwrap();
    let started = std::time::Instant::now();
    let rows = cpu_rows(&store, h, 0, i64::MAX);
    assert_eq!(rows.len(), 6);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn retention_drops_whole_expired_windows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir); // retention: 24 h
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let times: Vec<i64> = (0..48).map(|i| T0 + i * HOUR_MS + 60_000).collect();
    for (i, t) in times.iter().enumerate() {
        store.write(&[item(h, 1, i as u64 + 1, &[*t])], 0).unwrap();
    }
    // Seal the first 30 hours; the rest stays raw. Retention must clear both CFs.
    store.seal(T0 + 32 * HOUR_MS).unwrap();
    let now = T0 + 48 * HOUR_MS + 30 * 60_000; // cutoff = T0 + 24h30m
    store.enforce_retention(now).unwrap();
    let rows = cpu_rows(&store, h, 0, i64::MAX);
    let first = rows.first().unwrap().time_ms;
    // The window holding the cutoff (starting at T0 + 24h) is kept whole.
    assert_eq!(first, T0 + 24 * HOUR_MS + 60_000);
    assert_eq!(rows.len(), 24 * 2);
    // Running it again is a no-op; a late old sample is removed by the next run.
    store.enforce_retention(now).unwrap();
    store.write(&[item(h, 1, 100, &[T0])], 0).unwrap();
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX).len(), 50);
    store.enforce_retention(now).unwrap();
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX).len(), 48);
    drop(store);
    assert_eq!(cpu_rows(&open(&dir), h, 0, i64::MAX).len(), 48);
}

#[test]
fn corrupt_keys_and_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    store.write(&[item(h, 1, 1, &[T0])], T0).unwrap();
    let raw = store.cf(CF_RAW).unwrap();
    let chunks = store.cf(CF_CHUNKS).unwrap();

    // A raw value that is not a Sample.
    let key = keys::raw_key(&RawKey {
        window_start_s: (T0 / 1000) as u64,
        host_num: h,
        time_ms: T0 as u64 + 5,
        seq: 2,
    });
    store.db.put_cf(raw, key, [0xff, 0xff, 0xff]).unwrap();
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Corrupt { .. })
    ));
    assert!(store.seal(T0 + 3 * HOUR_MS).is_err());
    // A valid Sample under a key whose time disagrees.
    store
        .db
        .put_cf(raw, key, sample(T0).encode_to_vec())
        .unwrap();
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Corrupt { .. })
    ));
    store.db.delete_cf(raw, key).unwrap();

    // A raw key of the wrong length.
    let mut short = keys::raw_host_prefix((T0 / 1000) as u64, h).to_vec();
    short.push(1);
    store.db.put_cf(raw, &short, b"x").unwrap();
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Key(_))
    ));
    assert!(matches!(
        store.seal(T0 + 3 * HOUR_MS),
        Err(StorageError::Key(_))
    ));
    store.db.delete_cf(raw, &short).unwrap();

    // Seal, then damage the chunk.
    store.seal(T0 + 3 * HOUR_MS).unwrap();
    let ck = keys::chunk_key(&ChunkKey {
        window_start_s: (T0 / 1000) as u64,
        host_num: h,
        activity: Activity::Cpu as u8,
        instance: "all".into(),
    });
    let good = store.db.get_cf(chunks, &ck).unwrap().expect("chunk exists");
    store
        .db
        .put_cf(chunks, &ck, &good[..good.len() / 2])
        .unwrap();
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Chunk(_))
    ));
    let mut v2 = good.clone();
    v2[0] = 99;
    store.db.put_cf(chunks, &ck, &v2).unwrap();
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Chunk(chunk::ChunkError::UnknownVersion(99)))
    ));
    // Late data for that series now cannot merge: an error, and the raw sample stays.
    store.write(&[item(h, 1, 2, &[T0 + 10_000])], T0).unwrap();
    assert!(store.seal(T0 + 3 * HOUR_MS).is_err());
    assert_eq!(raw_count(&store), 1);
    store.db.put_cf(chunks, &ck, &good).unwrap();
    assert_eq!(store.seal(T0 + 3 * HOUR_MS).unwrap().merged_chunks, 3);

    // A damaged host record makes open fail cleanly.
    let hosts = store.cf(CF_HOSTS).unwrap();
    store
        .db
        .put_cf(hosts, keys::host_key("a"), [1, 2, 3])
        .unwrap();
    drop(store);
    assert!(matches!(
        Store::open(dir.path(), opts()),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn host_records_round_trip_and_reject_garbage() {
    let rec = HostRecord {
        num: 7,
        identity: HostIdentity {
            host_id: "m".into(),
            labels: [("rack".to_string(), "r1".to_string())].into(),
            ..identity("m")
        },
        first_seen_ms: -1,
        last_seen_ms: i64::MAX,
        connected: true,
        dropped_samples: 3,
        epoch: u64::MAX,
        last_seq: 12,
    };
    let bytes = encode_host_record(&rec);
    assert_eq!(decode_host_record(&bytes).unwrap(), rec);
    assert!(decode_host_record(&bytes[..10]).is_err());
    let mut v = bytes.clone();
    v[0] = 2;
    assert!(decode_host_record(&v).is_err());
    let mut v = bytes.clone();
    v[21] = 7;
    assert!(decode_host_record(&v).is_err());
    let mut v = bytes;
    v.push(0xff);
    assert!(decode_host_record(&v).is_err());
}

#[test]
fn concurrent_writers_store_each_seq_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut stored = Vec::new();
                for seq in 1..=50u64 {
                    let t = T0 + seq as i64 * 10_000;
                    let out = store.write(&[item(h, 1, seq, &[t])], T0).unwrap();
                    if out[0] == WriteOutcome::Stored {
                        stored.push(seq);
                    }
                }
                stored
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    // Each seq is accepted at most once; racing threads may skip ahead of each other.
    let mut dedup = all.clone();
    dedup.dedup();
    assert_eq!(all, dedup);
    assert_eq!(store.last_seq(h, 1), 50);
    assert_eq!(raw_count(&store), all.len());
}

#[test]
fn normalize_keeps_the_last_row_per_time_and_pads() {
    let r = |t: i64, v: &[f64]| Row {
        time_ms: t,
        interval_ms: 1,
        values: v.to_vec(),
    };
    let rows = normalize_rows(vec![
        r(2, &[1.0]),
        r(1, &[2.0, 3.0]),
        r(2, &[4.0]),
        r(1, &[5.0, 6.0]),
    ]);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].values, vec![5.0, 6.0]);
    assert_eq!(rows[1].values[0], 4.0);
    assert!(rows[1].values[1].is_nan());
}
