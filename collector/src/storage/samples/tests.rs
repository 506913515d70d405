//! Write path and query tests against a real RocksDB in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use fleet_proto::v1::Activity;
use prost::Message;

use crate::storage::fixtures::{
    cpu_rows, delete, get, identity, item, open, opts, put, raw_count, sample, HOUR_MS, T0,
};
use crate::storage::keys::{self, ChunkKey, RawKey};
use crate::storage::{
    chunk, IngestItem, StorageError, Store, StoredRow, WriteOutcome, CF_CHUNKS, CF_HOSTS, CF_RAW,
};

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
    assert_eq!(out, vec![WriteOutcome::STORED; 3]);

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
            WriteOutcome::STORED,
            WriteOutcome::STORED,
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
    assert_eq!(out, vec![WriteOutcome::Duplicate, WriteOutcome::STORED]);
    let times: Vec<i64> = cpu_rows(&store, h, 0, i64::MAX)
        .iter()
        .filter(|r| r.instance == "all")
        .map(|r| r.time_ms - T0)
        .collect();
    assert_eq!(times, vec![10_000, 20_000, 30_000]);

    // A wiped spool: new epoch, numbering restarts.
    let out = store.write(&[item(h, 6, 1, &[T0 + 50_000])], T0).unwrap();
    assert_eq!(out, vec![WriteOutcome::STORED]);
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
                    if out[0] == WriteOutcome::STORED {
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
fn corrupt_keys_and_values_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    store.write(&[item(h, 1, 1, &[T0])], T0).unwrap();
    let (raw, chunks) = (CF_RAW, CF_CHUNKS);

    // A raw value that is not a Sample.
    let key = keys::raw_key(&RawKey {
        window_start_s: (T0 / 1000) as u64,
        host_num: h,
        time_ms: T0 as u64 + 5,
        seq: 2,
    });
    put(&store, raw, key, [0xff, 0xff, 0xff]);
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Corrupt { .. })
    ));
    assert!(store.seal(T0 + 3 * HOUR_MS).is_err());
    // A valid Sample under a key whose time disagrees.
    put(&store, raw, key, sample(T0).encode_to_vec());
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Corrupt { .. })
    ));
    delete(&store, raw, key);

    // A raw key of the wrong length.
    let mut short = keys::raw_host_prefix((T0 / 1000) as u64, h).to_vec();
    short.push(1);
    put(&store, raw, &short, b"x");
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Key(_))
    ));
    assert!(matches!(
        store.seal(T0 + 3 * HOUR_MS),
        Err(StorageError::Key(_))
    ));
    delete(&store, raw, &short);

    // Seal, then damage the chunk.
    store.seal(T0 + 3 * HOUR_MS).unwrap();
    let ck = keys::chunk_key(&ChunkKey {
        window_start_s: (T0 / 1000) as u64,
        host_num: h,
        activity: Activity::Cpu as u8,
        instance: "all".into(),
    });
    let good = get(&store, chunks, &ck).expect("chunk exists");
    put(&store, chunks, &ck, &good[..good.len() / 2]);
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Chunk(_))
    ));
    let mut v2 = good.clone();
    v2[0] = 99;
    put(&store, chunks, &ck, &v2);
    assert!(matches!(
        store.query(h, Activity::Cpu, 0, i64::MAX),
        Err(StorageError::Chunk(chunk::ChunkError::UnknownVersion(99)))
    ));
    // Late data for that series now cannot merge: an error, and the raw sample stays.
    store.write(&[item(h, 1, 2, &[T0 + 10_000])], T0).unwrap();
    assert!(store.seal(T0 + 3 * HOUR_MS).is_err());
    assert_eq!(raw_count(&store), 1);
    put(&store, chunks, &ck, &good);
    assert_eq!(store.seal(T0 + 3 * HOUR_MS).unwrap().merged_chunks, 3);

    // A damaged host record makes open fail cleanly.
    let hosts = CF_HOSTS;
    put(&store, hosts, keys::host_key("a"), [1, 2, 3]);
    drop(store);
    assert!(matches!(
        Store::open(dir.path(), opts()),
        Err(StorageError::Corrupt { .. })
    ));
}

/// Issue 12: the watermark is contiguous over what a stream sent. A group that fails (here: an
/// invalid item of another host fails the whole write, as a full disk would) takes a stream's
/// batch 5 down; its batch 6, in the next group, succeeds alone in the old code and the welcome
/// said 6, releasing batch 5 from the agent's spool unstored.
#[test]
fn a_batch_after_a_failed_one_is_not_stored_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let other = store.upsert_host(&identity("b"), 0, true).unwrap().num;
    let chained = |seq: u64, after_seq: u64| IngestItem {
        after_seq,
        ..item(h, 1, seq, &[T0 + seq as i64 * 1000])
    };
    for seq in 1..=4 {
        store.write(&[chained(seq, seq - 1)], T0).unwrap();
    }
    assert_eq!(store.last_seq(h, 1), 4);

    // Group 1 fails as a whole: batch 5 is not stored.
    let mut bad = item(other, 1, 1, &[T0]);
    bad.samples[0].records[0].values.pop();
    assert!(store.write(&[chained(5, 4), bad], T0).is_err());
    // Group 2: batch 6 (sent after 5) succeeds as a write, but is not stored past 5.
    let out = store
        .write(&[chained(6, 5), item(other, 1, 1, &[T0])], T0)
        .unwrap();
    assert_eq!(out, vec![WriteOutcome::Blocked, WriteOutcome::STORED]);
    assert_eq!(store.last_seq(h, 1), 4, "the welcome still says 4");
    let times: Vec<i64> = cpu_rows(&store, h, 0, i64::MAX)
        .iter()
        .filter(|r| r.instance == "all")
        .map(|r| r.time_ms - T0)
        .collect();
    assert_eq!(
        times,
        [1000, 2000, 3000, 4000],
        "nothing of batch 6 is stored"
    );

    // The agent's next stream resends 5 and 6 after the welcome's 4; consecutive batches of one
    // stream may share a group.
    let out = store.write(&[chained(5, 4), chained(6, 5)], T0).unwrap();
    assert_eq!(out, vec![WriteOutcome::STORED; 2]);
    assert_eq!(store.last_seq(h, 1), 6);
    // A gap the agent made (batches it dropped or set aside) is no hole: it never sent them.
    assert_eq!(
        store.write(&[chained(9, 6)], T0).unwrap(),
        vec![WriteOutcome::STORED]
    );
    assert_eq!(store.last_seq(h, 1), 9);
    // A stale stream of an older epoch cannot take the host back to it, and a new epoch starts
    // from 0.
    let stale = IngestItem {
        after_seq: 3,
        ..item(h, 0, 4, &[T0])
    };
    assert_eq!(
        store.write(&[stale], T0).unwrap(),
        vec![WriteOutcome::Blocked]
    );
    assert_eq!(store.last_seq(h, 1), 9);
    let fresh = IngestItem {
        after_seq: 0,
        ..item(h, 2, 1, &[T0 + 20_000])
    };
    assert_eq!(
        store.write(&[fresh], T0).unwrap(),
        vec![WriteOutcome::STORED]
    );
    assert_eq!(store.last_seq(h, 2), 1);
    // The watermark is the host record's `last_seq`: it survives a reopen.
    drop(store);
    let store = open(&dir);
    assert_eq!(store.last_seq(h, 2), 1);
}

/// The times chunks of the `chunks` CF (activity 0), and each series chunk's times id.
fn times_chunks(store: &Store) -> (Vec<Vec<u8>>, Vec<Option<u64>>) {
    let db = store.db().unwrap();
    let mut it = db.raw_iterator_cf(db.cf(CF_CHUNKS).unwrap());
    it.seek_to_first();
    let (mut times, mut refs) = (Vec::new(), Vec::new());
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        if keys::decode_chunk_key(k).unwrap().activity == 0 {
            times.push(k.to_vec());
        } else {
            refs.push(chunk::times_id(v).unwrap());
        }
        it.next();
    }
    (times, refs)
}

/// Issue 16: the series of a host in a window share one times chunk; late data that changes
/// the times of some series only gives them a new one, and a times chunk no series refers to
/// any more is deleted.
#[test]
fn sealed_series_share_times_and_late_data_keeps_every_series_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let times: Vec<i64> = (1..=5).map(|i| T0 + i * 1000 + i % 2).collect();
    store.write(&[item(h, 1, 1, &times)], T0).unwrap();
    store.seal(T0 + 3 * HOUR_MS).unwrap();
    let (tc, refs) = times_chunks(&store);
    assert_eq!(tc.len(), 1);
    let id = u64::from_str_radix(std::str::from_utf8(&tc[0][14..]).unwrap(), 16).unwrap();
    assert_eq!(refs, vec![Some(id); 3], "CPU all, CPU 0, memory");

    // Late: a sample with CPU "all" only, then sealed: "all" has new times, the rest keep theirs.
    let mut only_all = sample(T0 + 2500);
    only_all.records.truncate(1);
    let late = |seq, s| IngestItem {
        host_num: h,
        epoch: 2,
        seq,
        samples: vec![s],
        ..Default::default()
    };
    store.write(&[late(1, only_all)], T0).unwrap();
    let before = cpu_rows(&store, h, 0, i64::MAX);
    store.seal(T0 + 3 * HOUR_MS).unwrap();
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX), before);
    assert_eq!(before.len(), 11);
    let (tc, refs) = times_chunks(&store);
    assert_eq!(tc.len(), 2);
    assert!(refs.contains(&Some(id)) && refs.iter().any(|r| *r != Some(id)));
    let memory = store.query(h, Activity::Memory, 0, i64::MAX).unwrap();
    assert_eq!(memory.len(), 5);

    // The same time for every series again: one times chunk, the other deleted.
    store.write(&[late(2, sample(T0 + 2500))], T0).unwrap();
    store.seal(T0 + 3 * HOUR_MS).unwrap();
    let (tc, refs) = times_chunks(&store);
    assert_eq!(tc.len(), 1);
    assert!(refs.iter().all(|r| r.is_some() && *r == refs[0]));
    let after = cpu_rows(&store, h, 0, i64::MAX);
    assert_eq!(after.len(), 12, "CPU 0 gained the late time");
    assert!(before.iter().all(|r| after.contains(r)));
    assert_eq!(
        store.query(h, Activity::Memory, 0, i64::MAX).unwrap().len(),
        6
    );
}

/// Issue 16: a store written before the chunk format's version 2 is upgraded in place: its
/// version 1 chunks are read by queries, and late data merged into one rewrites it as version 2.
#[test]
fn version_1_chunks_in_the_store_are_read_and_merged() {
    use chunk::tests::{from_hex, quantized, v1_rows, V1_CHUNK};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let rows = quantized(&v1_rows());
    let t0 = rows[0].time_ms;
    let window = keys::window_start_s(t0 as u64, 3600);
    let ck = keys::chunk_key(&ChunkKey {
        window_start_s: window,
        host_num: h,
        activity: Activity::Io as u8,
        instance: "-".into(),
    });
    put(&store, CF_CHUNKS, &ck, from_hex(V1_CHUNK));
    let bits = |rs: &[StoredRow]| -> Vec<(i64, u32, Vec<u64>)> {
        rs.iter()
            .map(|r| {
                (
                    r.time_ms,
                    r.interval_ms,
                    r.values.iter().map(|v| v.to_bits()).collect(),
                )
            })
            .collect()
    };
    let expected: Vec<(i64, u32, Vec<u64>)> = rows
        .iter()
        .map(|r| {
            (
                r.time_ms,
                r.interval_ms,
                r.values.iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect();
    let read = store.query(h, Activity::Io, 0, i64::MAX).unwrap();
    assert_eq!(bits(&read), expected);
    // Late data for that series: merged, the chunk rewritten as version 2.
    let late = fleet_proto::v1::Sample {
        time_ms: t0 + 40_500,
        interval_ms: 1000,
        records: vec![fleet_proto::v1::Record {
            activity: Activity::Io as i32,
            instance: "-".into(),
            values: vec![1.0; 7],
        }],
        top_oom: Vec::new(),
        clock: None,
    };
    let item = IngestItem {
        host_num: h,
        epoch: 1,
        seq: 1,
        samples: vec![late],
        ..Default::default()
    };
    store.write(&[item], t0).unwrap();
    store.seal(t0 + 3 * HOUR_MS).unwrap();
    let merged = store.query(h, Activity::Io, 0, i64::MAX).unwrap();
    assert_eq!(merged.len(), 41);
    assert_eq!(bits(&merged[..40]), expected);
    let now = get(&store, CF_CHUNKS, &ck).unwrap();
    assert_eq!(now[0], chunk::CHUNK_VERSION);
    assert!(chunk::times_id(&now).unwrap().is_some());
}
