//! Sealing and retention tests against a real RocksDB in a temporary directory, and the loop
//! that runs them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_proto::clock::now_ms;
use fleet_proto::v1::Activity;
use tokio::sync::watch;

use super::{normalize_rows, run};
use crate::storage::chunk::Row;
use crate::storage::fixtures::{
    all_kills, count_keys, cpu_rows, identity, item, kill, kills_item, open, ranked, raw_count,
    sample, HOUR_MS, T0,
};
use crate::storage::{keys, IngestItem, SealStats, CF_EVENTS, CF_TOPOOM};

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

#[tokio::test]
async fn the_loop_seals_and_enforces_retention_at_once_then_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir)); // retention: 24 h, windows of 1 h
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let now = now_ms();
    // One sample in a closed window, one older than retention.
    let (recent, old) = (now - 3 * HOUR_MS, now - 48 * HOUR_MS);
    store.write(&[item(h, 1, 1, &[old, recent])], now).unwrap();
    assert_eq!(cpu_rows(&store, h, 0, i64::MAX).len(), 4);

    let (stop_tx, stop_rx) = watch::channel(false);
    // Ticks an hour apart: everything below happens on the first, which is immediate.
    let task = tokio::spawn(run(store.clone(), Duration::from_secs(3600), stop_rx));
    let deadline = Instant::now() + Duration::from_secs(30);
    while raw_count(&store) > 0 || cpu_rows(&store, h, 0, i64::MAX).len() > 2 {
        assert!(Instant::now() < deadline, "not sealed and trimmed in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let times: Vec<i64> = cpu_rows(&store, h, 0, i64::MAX)
        .iter()
        .map(|r| r.time_ms)
        .collect();
    assert_eq!(times, vec![recent, recent], "the recent sample, sealed");

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the loop stops when told")
        .unwrap();
}

/// Every key and value of the `chunks` CF.
fn chunks_cf(store: &crate::storage::Store) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = store.db().unwrap();
    let mut it = db.raw_iterator_cf(db.cf(crate::storage::CF_CHUNKS).unwrap());
    it.seek_to_first();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        out.push((k.to_vec(), v.to_vec()));
        it.next();
    }
    out
}

/// Issue 12: sealing loaded all of a host's raw samples of a window at once, so one agent that
/// pushed a huge window could exhaust the collector's memory, again at every restart. Steps
/// bound what one write holds, and the chunks on disk are the same as sealed in one step, late
/// data and replaced rows included.
#[test]
fn a_huge_window_is_sealed_in_bounded_steps_into_the_same_chunks() {
    let day = crate::storage::StoreOptions {
        retention: Duration::from_secs(30 * 24 * 3600),
        chunk_window: Duration::from_secs(24 * 3600),
        ..Default::default()
    };
    let fill = |store: &crate::storage::Store| {
        let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
        // A day's window of samples every second (two of them at the same ms, the later write
        // wins), plus a second host.
        let times: Vec<i64> = (0..6000).map(|i| T0 + i * 1000).collect();
        for (i, part) in times.chunks(500).enumerate() {
            store.write(&[item(h, 1, i as u64 + 1, part)], T0).unwrap();
        }
        let mut replaced = sample(T0 + 42_000);
        replaced.records[0].values[0] = 99.0;
        let late = IngestItem {
            host_num: h,
            epoch: 2,
            seq: 77,
            samples: vec![replaced],
            ..Default::default()
        };
        store.write(&[late], T0).unwrap();
        let h2 = store.upsert_host(&identity("b"), 0, true).unwrap().num;
        store
            .write(&[item(h2, 1, 1, &[T0 + 5_000, T0 + 6_000])], T0)
            .unwrap();
        h
    };
    let now = T0 + 3 * 24 * HOUR_MS;
    let dir = tempfile::tempdir().unwrap();
    let once = crate::storage::Store::open(dir.path(), day.clone()).unwrap();
    let h = fill(&once);
    let before = cpu_rows(&once, h, 0, i64::MAX);
    let stats = once.seal(now).unwrap();
    assert_eq!((stats.groups, stats.steps, stats.samples), (2, 2, 6003));

    let dir2 = tempfile::tempdir().unwrap();
    let stepped = crate::storage::Store::open(dir2.path(), day).unwrap();
    fill(&stepped);
    // Steps of about 64 KiB: a few hundred samples each.
    let stats = stepped.seal_in_steps(now, 64 << 10).unwrap();
    assert_eq!((stats.groups, stats.samples), (2, 6003));
    assert!(stats.steps > 10, "{stats:?}");
    assert_eq!(raw_count(&stepped), 0);
    assert_eq!(
        chunks_cf(&stepped),
        chunks_cf(&once),
        "the same chunks on disk"
    );
    let after = cpu_rows(&stepped, h, 0, i64::MAX);
    assert_eq!(after, before);
    let replaced = after
        .iter()
        .find(|r| r.time_ms == T0 + 42_000 && r.instance == "all")
        .unwrap();
    assert_eq!(replaced.values[0], 99.0, "the later write wins");
    // One sample per step works too.
    let dir3 = tempfile::tempdir().unwrap();
    let tiny = open(&dir3);
    let h = tiny.upsert_host(&identity("a"), 0, true).unwrap().num;
    tiny.write(&[item(h, 1, 1, &[T0, T0 + 1000, T0 + 2000])], T0)
        .unwrap();
    let stats = tiny.seal_in_steps(T0 + 3 * HOUR_MS, 1).unwrap();
    assert_eq!((stats.groups, stats.steps, stats.samples), (1, 3, 3));
    assert_eq!(cpu_rows(&tiny, h, 0, i64::MAX).len(), 6);
}
