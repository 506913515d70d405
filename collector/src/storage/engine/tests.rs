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
        top_oom: Vec::new(),
        clock: None,
    }
}

fn item(host_num: u32, epoch: u64, seq: u64, times: &[i64]) -> IngestItem {
    IngestItem {
        host_num,
        epoch,
        seq,
        dropped_samples: seq / 2,
        samples: times.iter().map(|&t| sample(t)).collect(),
        ..Default::default()
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
        ..Default::default()
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
        ..Default::default()
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
        kmsg: KmsgStatus {
            records_read: 1000,
            records_lost: 3,
            unlogged_kills: 1,
        },
    };
    let bytes = encode_host_record(&rec, Some(T0));
    assert_eq!(decode_host_record(&bytes).unwrap(), (rec.clone(), Some(T0)));
    let none = encode_host_record(&rec, None);
    assert_eq!(decode_host_record(&none).unwrap(), (rec.clone(), None));
    assert!(decode_host_record(&bytes[..10]).is_err());
    assert!(decode_host_record(&[]).is_err());
    let mut v = bytes.clone();
    v[0] = 3;
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

// ---- OOM kills and top-oom rankings ----

const BOOT: &str = "5f1c3b2a-0000-4000-8000-000000000001";

/// A kill parsed from the kernel log (`seq: Some`) or only counted by /proc/vmstat (`None`).
fn kill(time_ms: i64, seq: Option<u64>, pid: i64) -> OomEvent {
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

fn kills_item(host_num: u32, epoch: u64, seq: u64, events: Vec<OomEvent>) -> IngestItem {
    IngestItem {
        host_num,
        epoch,
        seq,
        oom_events: events,
        ..Default::default()
    }
}

fn process(pid: i64, oom_score: i64) -> OomProcess {
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
fn ranked(time_ms: i64, procs: &[(i64, i64)]) -> Sample {
    Sample {
        top_oom: procs.iter().map(|&(p, s)| process(p, s)).collect(),
        ..sample(time_ms)
    }
}

fn all_kills(store: &Store) -> Vec<StoredOomKill> {
    store.oom_kills(&[], 0, i64::MAX, usize::MAX).unwrap()
}

fn pids(kills: &[StoredOomKill]) -> Vec<i64> {
    kills.iter().map(|k| k.event.victim_pid.unwrap()).collect()
}

fn count_keys(store: &Store, cf: &'static str, prefix: u8) -> usize {
    let mut it = store.db.raw_iterator_cf(store.cf(cf).unwrap());
    it.seek([prefix]);
    let mut n = 0;
    while it.key().is_some_and(|k| k[0] == prefix) {
        n += 1;
        it.next();
    }
    n
}

fn raw_samples(store: &Store) -> Vec<Sample> {
    let mut it = store.db.raw_iterator_cf(store.cf(CF_RAW).unwrap());
    it.seek_to_first();
    let mut out = Vec::new();
    while let Some(v) = it.value() {
        out.push(Sample::decode(v).unwrap());
        it.next();
    }
    out
}

#[test]
fn kills_are_stored_with_their_batch_and_once_per_kernel_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let mut first = item(h, 1, 1, &[T0 + 10_000]);
    first.oom_events = vec![
        kill(T0 + 5_000, Some(100), 11),
        kill(T0 + 6_000, Some(120), 12),
    ];
    assert_eq!(
        store.write(&[first.clone()], T0).unwrap(),
        vec![WriteOutcome::Stored]
    );
    // The same batch again (a lost ack): a duplicate seq, nothing new.
    assert_eq!(
        store.write(&[first], T0).unwrap(),
        vec![WriteOutcome::Duplicate]
    );
    assert_eq!(pids(&all_kills(&store)), vec![12, 11]);

    // The agent restarted and re-read the kernel log: the same reports in new batches, once
    // with the same time and once with a time recomputed a few ms off.
    let mut shifted = kill(T0 + 6_003, Some(120), 12);
    shifted.victim_comm = Some("re-read".into());
    let out = store
        .write(
            &[
                kills_item(h, 1, 2, vec![kill(T0 + 5_000, Some(100), 11)]),
                kills_item(h, 1, 3, vec![shifted]),
            ],
            T0,
        )
        .unwrap();
    assert_eq!(out, vec![WriteOutcome::Stored; 2]);
    let kills = all_kills(&store);
    assert_eq!(pids(&kills), vec![12, 11]);
    assert_eq!(kills[0].event.time_ms, T0 + 6_000, "the first copy is kept");
    assert_eq!(kills[0].event.victim_comm.as_deref(), Some("proc12"));
    assert_eq!(store.last_seq(h, 1), 3);

    // Within one group, and within one batch, a report is stored once too.
    let out = store
        .write(
            &[
                kills_item(
                    h,
                    1,
                    4,
                    vec![
                        kill(T0 + 7_000, Some(130), 13),
                        kill(T0 + 7_001, Some(130), 13),
                    ],
                ),
                kills_item(h, 1, 5, vec![kill(T0 + 7_002, Some(130), 13)]),
            ],
            T0,
        )
        .unwrap();
    assert_eq!(out, vec![WriteOutcome::Stored; 2]);
    assert_eq!(pids(&all_kills(&store)), vec![13, 12, 11]);

    // The same seq in another boot is another kill (sequence numbers restart at boot).
    let mut rebooted = kill(T0 + 8_000, Some(100), 14);
    rebooted.boot_id = "another-boot".into();
    store
        .write(&[kills_item(h, 1, 6, vec![rebooted])], T0)
        .unwrap();
    assert_eq!(pids(&all_kills(&store)), vec![14, 13, 12, 11]);
    assert_eq!(count_keys(&store, CF_EVENTS, keys::PREFIX_EVENT_SEQ), 4);
    assert_eq!(
        raw_count(&store),
        1,
        "the samples are stored beside the kills"
    );
}

#[test]
fn a_batch_of_kills_alone_is_stored_and_updates_the_kmsg_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    assert_eq!(store.host_by_num(h).unwrap().kmsg, KmsgStatus::default());
    let status = KmsgStatus {
        records_read: 5000,
        records_lost: 2,
        unlogged_kills: 1,
    };
    let mut it = kills_item(h, 3, 7, vec![kill(T0, Some(1), 1), kill(T0, None, 2)]);
    it.kmsg = Some(status);
    assert_eq!(
        store.write(&[it], T0 + 1).unwrap(),
        vec![WriteOutcome::Stored]
    );
    let rec = store.host_by_num(h).unwrap();
    assert_eq!((rec.epoch, rec.last_seq, rec.last_seen_ms), (3, 7, T0 + 1));
    assert_eq!(rec.kmsg, status);
    assert_eq!(raw_count(&store), 0);
    assert_eq!(all_kills(&store).len(), 2);

    // A batch without a status keeps the last one.
    store.write(&[item(h, 3, 8, &[T0])], T0).unwrap();
    assert_eq!(store.host_by_num(h).unwrap().kmsg, status);

    // Events are checked like samples: the whole group fails and nothing is written.
    let bad_seq = kills_item(h, 3, 9, vec![kill(T0, Some(1 << 63), 3)]);
    assert!(matches!(
        store.write(&[item(h, 3, 9, &[T0 + 1000]), bad_seq], T0),
        Err(StorageError::InvalidEvent(_))
    ));
    let bad_time = kills_item(h, 3, 9, vec![kill(-1, Some(3), 3)]);
    assert!(matches!(
        store.write(&[bad_time], T0),
        Err(StorageError::InvalidEvent(_))
    ));
    assert_eq!(store.last_seq(h, 3), 8);
    assert_eq!(all_kills(&store).len(), 2);
}

#[test]
fn kills_without_a_kernel_seq_are_kept_apart_and_replay_safe() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    // Two kills only /proc/vmstat counted, in the same millisecond.
    let batch = kills_item(h, 1, 1, vec![kill(T0, None, 1), kill(T0, None, 2)]);
    store.write(std::slice::from_ref(&batch), T0).unwrap();
    store.write(&[batch], T0).unwrap();
    let kills = all_kills(&store);
    assert_eq!(kills.len(), 2);
    for k in &kills {
        let disc = u64::from_str_radix(k.id.rsplit('-').next().unwrap(), 16).unwrap();
        assert_eq!(disc & keys::DISC_NO_SEQ, keys::DISC_NO_SEQ, "{}", k.id);
        assert_eq!(store.oom_kill(&k.id).unwrap().as_ref(), Some(k));
    }
    assert_ne!(kills[0].id, kills[1].id);
    assert_eq!(count_keys(&store, CF_EVENTS, keys::PREFIX_EVENT_SEQ), 0);
}

/// A host's first batch (epoch 1, seq 1), carrying kills only.
fn kills_items(host: u32, events: &[OomEvent]) -> IngestItem {
    kills_item(host, 1, 1, events.to_vec())
}

#[test]
fn kills_list_newest_first_across_hosts_and_windows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let b = store.upsert_host(&identity("b"), 0, true).unwrap().num;
    let c = store.upsert_host(&identity("c"), 0, true).unwrap().num;
    // pid = 100 * host + n; times spread over four windows, hosts interleaved in time.
    let at = |h: u32, n: i64, t: i64| kill(t, Some(n as u64), 100 * i64::from(h) + n);
    store
        .write(
            &[
                kills_items(a, &[at(a, 1, T0 + 1_000), at(a, 2, T0 + HOUR_MS + 500)]),
                kills_items(
                    b,
                    &[
                        at(b, 1, T0 + 2_000),
                        at(b, 2, T0 + HOUR_MS + 100),
                        at(b, 3, T0 + 3 * HOUR_MS),
                    ],
                ),
                kills_items(c, &[at(c, 1, T0 + 1_500), at(c, 2, T0 + HOUR_MS + 500)]),
            ],
            T0,
        )
        .unwrap();
    let all = all_kills(&store);
    // Equal times (a 2 and c 2) order by host number.
    assert_eq!(pids(&all), vec![203, 102, 302, 202, 201, 301, 101]);
    assert!(all
        .windows(2)
        .all(|w| w[0].event.time_ms >= w[1].event.time_ms));

    // Limits, also cutting inside a window.
    for n in 0..=all.len() + 1 {
        let got = store.oom_kills(&[], 0, i64::MAX, n).unwrap();
        assert_eq!(got, all[..n.min(all.len())], "limit {n}");
    }
    // Inclusive time bounds.
    let got = store
        .oom_kills(&[], T0 + 1_500, T0 + HOUR_MS + 100, 100)
        .unwrap();
    assert_eq!(pids(&got), vec![202, 201, 301]);
    assert!(store.oom_kills(&[], T0 + 2, T0 + 1, 10).unwrap().is_empty());
    assert!(store
        .oom_kills(&[], T0 + 2_001, T0 + 3_000, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        pids(&store.oom_kills(&[], i64::MIN, T0 + 1_000, 10).unwrap()),
        vec![101]
    );
    // Host selections, skipping the others (in any order, with repeats, unknown hosts).
    let ac = store.oom_kills(&[c, a, c, 99], 0, i64::MAX, 100).unwrap();
    assert_eq!(pids(&ac), vec![102, 302, 301, 101]);
    assert_eq!(
        pids(&store.oom_kills(&[b], 0, i64::MAX, 2).unwrap()),
        vec![203, 202]
    );
    assert!(store.oom_kills(&[99], 0, i64::MAX, 10).unwrap().is_empty());
    assert_eq!(
        pids(
            &store
                .oom_kills(&[a], T0 + HOUR_MS, T0 + HOUR_MS, 10)
                .unwrap()
        ),
        Vec::<i64>::new()
    );
}

#[test]
fn a_kill_is_found_by_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for id in ["a", "b", "c", "d", "e", "f", "g"] {
        store.upsert_host(&identity(id), 0, true).unwrap();
    }
    let h = 7;
    let t = 1_700_000_012_345;
    store
        .write(&[kills_item(h, 1, 1, vec![kill(t, Some(42), 1)])], t)
        .unwrap();
    let k = &all_kills(&store)[0];
    assert_eq!(k.id, "7-18bcfe59839-2a", "the documented example");
    assert_eq!(k.host_num, h);
    assert_eq!(k.event, kill(t, Some(42), 1));
    assert_eq!(store.oom_kill(&k.id).unwrap().as_ref(), Some(k));
    assert_eq!(
        store.oom_kill("7-18BCFE59839-2A").unwrap().as_ref(),
        Some(k)
    );
    // Well-formed but unknown: another host, time or discriminator.
    for unknown in [
        "6-18bcfe59839-2a",
        "7-18bcfe5983a-2a",
        "7-18bcfe59839-2b",
        "0-0-0",
    ] {
        assert_eq!(store.oom_kill(unknown).unwrap(), None, "{unknown}");
    }
    for bad in [
        "",
        "7-18bcfe59839",
        "x-1-2",
        "7-1-2-3",
        "7_1_2",
        "7-1-2 ",
        "7-ffffffffffffffff-1",
    ] {
        assert!(
            matches!(store.oom_kill(bad), Err(StorageError::InvalidArgument(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn top_oom_rankings_leave_raw_and_answer_latest_and_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let other = store.upsert_host(&identity("b"), 0, true).unwrap().num;
    assert_eq!(store.top_oom_latest(h), None);
    assert_eq!(store.top_oom_before(h, T0).unwrap(), None);

    // Unsorted on the wire: stored highest score first (ties keep their order).
    let first = IngestItem {
        samples: vec![
            ranked(T0 + 10_000, &[(1, 200), (2, 900), (3, 200)]),
            sample(T0 + 20_000),
        ],
        ..item(h, 1, 1, &[])
    };
    store.write(&[first], T0).unwrap();
    let latest = store.top_oom_latest(h).unwrap();
    assert_eq!(latest.0, T0 + 10_000);
    let order: Vec<i64> = latest.1.iter().map(|p| p.pid).collect();
    assert_eq!(order, vec![2, 1, 3]);
    assert_eq!(latest.1[0], process(2, 900));

    // raw keeps only the sar records; a sample that carried only a ranking is not in raw.
    let rank_only = Sample {
        time_ms: T0 + 2 * HOUR_MS + 5_000,
        interval_ms: 10_000,
        records: Vec::new(),
        top_oom: vec![process(9, 999)],
        clock: None,
    };
    let second = IngestItem {
        samples: vec![rank_only],
        ..item(h, 1, 2, &[])
    };
    let other_item = IngestItem {
        samples: vec![ranked(T0 + 3 * HOUR_MS, &[(5, 5)])],
        ..item(other, 1, 1, &[])
    };
    store.write(&[second, other_item], T0).unwrap();
    let raws = raw_samples(&store);
    assert_eq!(raws.len(), 3);
    assert!(raws
        .iter()
        .all(|s| s.top_oom.is_empty() && s.records.len() == 3));
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX).len(), 4);
    assert_eq!(
        store.top_oom_latest(h).map(|l| l.0),
        Some(T0 + 2 * HOUR_MS + 5_000)
    );

    // A late, older ranking is stored but does not become the latest.
    let late = IngestItem {
        samples: vec![ranked(T0 + HOUR_MS + 1, &[(7, 7)])],
        ..item(h, 1, 3, &[])
    };
    store.write(&[late], T0).unwrap();
    assert_eq!(
        store.top_oom_latest(h).map(|l| l.0),
        Some(T0 + 2 * HOUR_MS + 5_000)
    );

    // Before a time: searched backwards across windows and past the other host's rankings.
    let before = |t: i64| {
        store
            .top_oom_before(h, t)
            .unwrap()
            .map(|(at, p)| (at, p[0].pid))
    };
    assert_eq!(before(T0 + 9_999), None);
    assert_eq!(before(T0 + 10_000), Some((T0 + 10_000, 2)));
    assert_eq!(before(T0 + HOUR_MS), Some((T0 + 10_000, 2)));
    assert_eq!(before(T0 + HOUR_MS + 1), Some((T0 + HOUR_MS + 1, 7)));
    assert_eq!(
        before(T0 + 2 * HOUR_MS + 4_999),
        Some((T0 + HOUR_MS + 1, 7))
    );
    assert_eq!(
        before(T0 + 2 * HOUR_MS + 5_000),
        Some((T0 + 2 * HOUR_MS + 5_000, 9))
    );
    assert_eq!(before(i64::MAX), Some((T0 + 2 * HOUR_MS + 5_000, 9)));
    assert_eq!(before(-1), None);
    assert_eq!(
        store.top_oom_before(other, T0 + 3 * HOUR_MS - 1).unwrap(),
        None
    );
    assert_eq!(store.top_oom_before(99, i64::MAX).unwrap(), None);
    assert_eq!(store.top_oom_latest(99), None);

    // Sealing is unaffected by rankings.
    let rows = cpu_rows(&store, h, 0, i64::MAX);
    assert_eq!(rows.len(), 6, "three samples of h with sar records");
    store.seal(T0 + 10 * HOUR_MS).unwrap();
    assert_eq!(raw_count(&store), 0);
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX), rows);
    assert_eq!(before(T0 + HOUR_MS), Some((T0 + 10_000, 2)));
}

#[test]
fn reopening_keeps_kills_rankings_and_the_kmsg_status() {
    let dir = tempfile::tempdir().unwrap();
    let status = KmsgStatus {
        records_read: 9,
        records_lost: 0,
        unlogged_kills: 4,
    };
    let (h, kills, latest) = {
        let store = open(&dir);
        let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
        let it = IngestItem {
            samples: vec![
                ranked(T0 + 1_000, &[(1, 10)]),
                ranked(T0 + 2_000, &[(2, 20), (3, 30)]),
            ],
            oom_events: vec![kill(T0 + 1_500, Some(77), 4), kill(T0 + 1_600, None, 5)],
            kmsg: Some(status),
            ..item(h, 1, 1, &[])
        };
        store.write(&[it], T0).unwrap();
        (h, all_kills(&store), store.top_oom_latest(h).unwrap())
        // Dropped without flush: the synced WAL carries everything.
    };
    let store = open(&dir);
    assert_eq!(all_kills(&store), kills);
    assert_eq!(store.top_oom_latest(h), Some(latest.clone()));
    assert_eq!(latest.1[0].pid, 3);
    assert_eq!(store.host_by_num(h).unwrap().kmsg, status);
    // The dedup index survives too.
    store
        .write(
            &[kills_item(h, 1, 2, vec![kill(T0 + 1_502, Some(77), 4)])],
            T0,
        )
        .unwrap();
    assert_eq!(all_kills(&store), kills);
    // And updates of the host record (connect, upsert) keep the latest ranking's time.
    store.set_connected(h, true, T0).unwrap();
    store.upsert_host(&identity("a"), T0, false).unwrap();
    store.flush().unwrap();
    drop(store);
    let store = open(&dir);
    assert_eq!(store.top_oom_latest(h), Some(latest));
    assert_eq!(
        store.top_oom_before(h, T0 + 1_999).unwrap().unwrap().0,
        T0 + 1_000
    );
}

#[test]
fn retention_drops_old_kills_rankings_and_their_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir); // retention: 24 h
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let quiet = store.upsert_host(&identity("b"), 0, true).unwrap().num;
    for i in 0..48u64 {
        let t = T0 + i as i64 * HOUR_MS + 60_000;
        let it = IngestItem {
            samples: vec![ranked(t, &[(i as i64, 1)])],
            oom_events: vec![
                kill(t, Some(i), i as i64),
                kill(t + 1, None, 1000 + i as i64),
            ],
            ..item(h, 1, i + 1, &[])
        };
        store.write(&[it], 0).unwrap();
    }
    // The quiet host's only ranking is old: it expires from memory as well.
    let old = IngestItem {
        samples: vec![ranked(T0, &[(1, 1)])],
        ..item(quiet, 1, 1, &[])
    };
    store.write(&[old], 0).unwrap();
    assert_eq!(all_kills(&store).len(), 96);
    assert_eq!(count_keys(&store, CF_EVENTS, keys::PREFIX_EVENT_SEQ), 48);

    let now = T0 + 48 * HOUR_MS + 30 * 60_000; // cutoff = T0 + 24h30m
    store.enforce_retention(now).unwrap();
    let kills = all_kills(&store);
    assert_eq!(kills.len(), 48);
    assert_eq!(
        kills.last().unwrap().event.time_ms,
        T0 + 24 * HOUR_MS + 60_000
    );
    assert_eq!(count_keys(&store, CF_EVENTS, keys::PREFIX_EVENT_SEQ), 24);
    assert_eq!(count_keys(&store, CF_TOPOOM, keys::PREFIX_TOPOOM), 24);
    assert_eq!(store.top_oom_before(h, T0 + 24 * HOUR_MS).unwrap(), None);
    assert_eq!(
        store
            .top_oom_before(h, T0 + 25 * HOUR_MS)
            .unwrap()
            .unwrap()
            .0,
        T0 + 24 * HOUR_MS + 60_000
    );
    assert_eq!(store.top_oom_latest(h).unwrap().1[0].pid, 47);
    assert_eq!(store.top_oom_latest(quiet), None);

    // A late old kill is removed, with its index entry, by the next run.
    store
        .write(
            &[kills_item(h, 1, 100, vec![kill(T0, Some(5000), 5000)])],
            0,
        )
        .unwrap();
    assert_eq!(all_kills(&store).len(), 49);
    store.enforce_retention(now).unwrap();
    assert_eq!(all_kills(&store).len(), 48);
    assert_eq!(count_keys(&store, CF_EVENTS, keys::PREFIX_EVENT_SEQ), 24);
    drop(store);
    let store = open(&dir);
    assert_eq!(all_kills(&store).len(), 48);
    assert_eq!(store.top_oom_latest(h).unwrap().1[0].pid, 47);
    assert_eq!(store.top_oom_latest(quiet), None);
}

#[test]
fn corrupt_kills_and_rankings_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let it = IngestItem {
        samples: vec![ranked(T0 + 1_000, &[(1, 1)]), ranked(T0 + 5_000, &[(2, 2)])],
        oom_events: vec![kill(T0, Some(1), 1)],
        ..item(h, 1, 1, &[])
    };
    store.write(&[it], T0).unwrap();
    let id = all_kills(&store)[0].id.clone();
    let events = store.cf(CF_EVENTS).unwrap();
    let topoom = store.cf(CF_TOPOOM).unwrap();
    let window_s = (T0 / 1000) as u64;
    let ek = keys::event_key(&EventKey {
        window_start_s: window_s,
        host_num: h,
        time_ms: T0 as u64,
        disc: 1,
    });
    let good = store.db.get_cf(events, ek).unwrap().expect("stored");

    let corrupt = |store: &Store| {
        assert!(matches!(
            store.oom_kills(&[], 0, i64::MAX, 10),
            Err(StorageError::Corrupt { .. })
        ));
        assert!(matches!(
            store.oom_kill(&id),
            Err(StorageError::Corrupt { .. })
        ));
    };
    // Not an OomEvent.
    store.db.put_cf(events, ek, [0xff, 0xff, 0xff]).unwrap();
    corrupt(&store);
    // A valid event under a key whose time or seq disagrees.
    store
        .db
        .put_cf(events, ek, kill(T0 + 1, Some(1), 1).encode_to_vec())
        .unwrap();
    corrupt(&store);
    store
        .db
        .put_cf(events, ek, kill(T0, Some(2), 1).encode_to_vec())
        .unwrap();
    corrupt(&store);
    store
        .db
        .put_cf(events, ek, kill(T0, None, 1).encode_to_vec())
        .unwrap();
    corrupt(&store);
    store.db.put_cf(events, ek, &good).unwrap();
    // A key of the wrong length in the listed range.
    let short = keys::event_host_prefix(window_s, h);
    store.db.put_cf(events, short, &good).unwrap();
    assert!(matches!(
        store.oom_kills(&[], 0, i64::MAX, 10),
        Err(StorageError::Key(_))
    ));
    store.db.delete_cf(events, short).unwrap();
    assert_eq!(all_kills(&store).len(), 1);
    // A damaged index entry fails retention cleanly.
    let idx = keys::event_seq_key(h, keys::boot_id_hash(BOOT), 1);
    store.db.put_cf(events, idx, b"short").unwrap();
    assert!(store.enforce_retention(T0 + 100 * HOUR_MS).is_err());
    store.db.put_cf(events, idx, ek).unwrap();

    // A damaged ranking: the search for an earlier one fails; at open, the latest is dropped
    // with a warning instead of keeping the collector down.
    let rank_key = |t: i64| {
        keys::topoom_key(&TopOomKey {
            window_start_s: window_s,
            host_num: h,
            time_ms: t as u64,
        })
    };
    store
        .db
        .put_cf(topoom, rank_key(T0 + 1_000), [0xff])
        .unwrap();
    assert!(matches!(
        store.top_oom_before(h, T0 + 2_000),
        Err(StorageError::Corrupt { .. })
    ));
    store
        .db
        .put_cf(topoom, rank_key(T0 + 5_000), [0xff])
        .unwrap();
    drop(store);
    let store = open(&dir);
    assert_eq!(store.top_oom_latest(h), None);
    assert_eq!(all_kills(&store).len(), 1);
}

#[test]
fn version_1_host_records_are_still_read() {
    let rec = HostRecord {
        num: 3,
        identity: identity("old"),
        first_seen_ms: 10,
        last_seen_ms: 20,
        connected: false,
        dropped_samples: 4,
        epoch: 5,
        last_seq: 6,
        kmsg: KmsgStatus::default(),
    };
    // The version 1 layout, as the previous release wrote it.
    let mut v1 = vec![1u8];
    v1.extend_from_slice(&3u32.to_be_bytes());
    v1.extend_from_slice(&10i64.to_be_bytes());
    v1.extend_from_slice(&20i64.to_be_bytes());
    v1.push(0);
    for x in [4u64, 5, 6] {
        v1.extend_from_slice(&x.to_be_bytes());
    }
    v1.extend_from_slice(&rec.identity.encode_to_vec());
    assert_eq!(decode_host_record(&v1).unwrap(), (rec.clone(), None));

    // A store holding it opens, and the record is rewritten as version 2 on the next change.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let hosts = store.cf(CF_HOSTS).unwrap();
    store.db.put_cf(hosts, keys::host_key("old"), &v1).unwrap();
    drop(store);
    let store = open(&dir);
    assert_eq!(store.host_by_num(3), Some(rec));
    store
        .write(&[kills_item(3, 5, 7, vec![kill(T0, Some(1), 1)])], T0)
        .unwrap();
    let stored = store
        .db
        .get_cf(store.cf(CF_HOSTS).unwrap(), keys::host_key("old"))
        .unwrap()
        .unwrap();
    assert_eq!(stored[0], HOST_RECORD_VERSION);
    // Damaged version 2 parts are errors.
    let mut v = stored.clone();
    let len_at = HOST_RECORD_V1_FIXED_LEN + 8;
    v[len_at..len_at + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(decode_host_record(&v).is_err());
    let mut v = stored.clone();
    v[HOST_RECORD_V1_FIXED_LEN..len_at].copy_from_slice(&(-5i64).to_be_bytes());
    assert!(decode_host_record(&v).is_err());
    assert!(decode_host_record(&stored[..HOST_RECORD_V2_FIXED_LEN - 1]).is_err());
}

#[test]
fn blobs_round_trip_survive_reopen_and_stay_apart_from_meta() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(store.get_blob("rules/alerts").unwrap(), None);
    store.put_blob("rules/alerts", b"{\"version\":1}").unwrap();
    store.put_blob("other", b"").unwrap();
    store.put_blob("rules/alerts", b"{\"version\":2}").unwrap();
    // A blob named like a meta value does not touch it.
    store
        .put_blob(keys::META_NEXT_HOST_NUM, b"not a number")
        .unwrap();
    assert!(matches!(
        store.put_blob("bad name", b"x"),
        Err(StorageError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.get_blob(""),
        Err(StorageError::InvalidArgument(_))
    ));
    drop(store);

    let store = open(&dir);
    assert_eq!(
        store.get_blob("rules/alerts").unwrap().as_deref(),
        Some(&b"{\"version\":2}"[..])
    );
    assert_eq!(store.get_blob("other").unwrap(), Some(Vec::new()));
    let rec = store.upsert_host(&identity("h"), T0, true).unwrap();
    assert_eq!(rec.num, 1, "next_host_num is intact");
}
