//! OOM kill and top-oom ranking tests against a real RocksDB in a temporary directory.

use fleet_proto::v1::{KmsgStatus, OomEvent, OomKind, Sample};
use prost::Message;

use crate::storage::fixtures::{
    all_kills, count_keys, cpu_rows, delete, get, identity, item, kill, kills_item, open, pids,
    process, put, ranked, raw_count, raw_samples, sample, BOOT, HOUR_MS, T0,
};
use crate::storage::keys::{self, EventKey, TopOomKey};
use crate::storage::{IngestItem, StorageError, Store, WriteOutcome, CF_EVENTS, CF_TOPOOM};

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
        vec![WriteOutcome::STORED]
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
    // Stored (new seqs), but each kill was already there.
    let repeated = |i: Vec<u32>| WriteOutcome::Stored { repeated_kills: i };
    assert_eq!(out, vec![repeated(vec![0]), repeated(vec![0])]);
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
    assert_eq!(out, vec![repeated(vec![1]), repeated(vec![0])]);
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
        vec![WriteOutcome::STORED]
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
    let (events, topoom) = (CF_EVENTS, CF_TOPOOM);
    let window_s = (T0 / 1000) as u64;
    let ek = keys::event_key(&EventKey {
        window_start_s: window_s,
        host_num: h,
        time_ms: T0 as u64,
        disc: 1,
    });
    let good = get(&store, events, ek).expect("stored");

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
    put(&store, events, ek, [0xff, 0xff, 0xff]);
    corrupt(&store);
    // A valid event under a key whose time or seq disagrees.
    put(&store, events, ek, kill(T0 + 1, Some(1), 1).encode_to_vec());
    corrupt(&store);
    put(&store, events, ek, kill(T0, Some(2), 1).encode_to_vec());
    corrupt(&store);
    put(&store, events, ek, kill(T0, None, 1).encode_to_vec());
    corrupt(&store);
    put(&store, events, ek, &good);
    // A key of the wrong length in the listed range.
    let short = keys::event_host_prefix(window_s, h);
    put(&store, events, short, &good);
    assert!(matches!(
        store.oom_kills(&[], 0, i64::MAX, 10),
        Err(StorageError::Key(_))
    ));
    delete(&store, events, short);
    assert_eq!(all_kills(&store).len(), 1);
    // A damaged index entry fails retention cleanly.
    let idx = keys::event_seq_key(h, keys::boot_id_hash(BOOT), 1);
    put(&store, events, idx, b"short");
    assert!(store.enforce_retention(T0 + 100 * HOUR_MS).is_err());
    put(&store, events, idx, ek);

    // A damaged ranking: the search for an earlier one fails; at open, the latest is dropped
    // with a warning instead of keeping the collector down.
    let rank_key = |t: i64| {
        keys::topoom_key(&TopOomKey {
            window_start_s: window_s,
            host_num: h,
            time_ms: t as u64,
        })
    };
    put(&store, topoom, rank_key(T0 + 1_000), [0xff]);
    assert!(matches!(
        store.top_oom_before(h, T0 + 2_000),
        Err(StorageError::Corrupt { .. })
    ));
    put(&store, topoom, rank_key(T0 + 5_000), [0xff]);
    drop(store);
    let store = open(&dir);
    assert_eq!(store.top_oom_latest(h), None);
    assert_eq!(all_kills(&store).len(), 1);
}

#[test]
fn kinds_are_stored_and_events_stored_before_them_read_as_kills() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let mut skipped = kill(T0 + 2_000, Some(130), 13);
    skipped.kind = OomKind::NoKill.into();
    let mut panic = kill(T0 + 3_000, Some(140), 14);
    panic.kind = OomKind::Panic.into();
    let it = kills_item(
        h,
        1,
        1,
        vec![kill(T0 + 1_000, Some(120), 12), skipped, panic],
    );
    store.write(&[it], T0).unwrap();
    let kinds: Vec<OomKind> = all_kills(&store).iter().map(|k| k.event.kind()).collect();
    assert_eq!(kinds, [OomKind::Panic, OomKind::NoKill, OomKind::Kill]);
    let id = all_kills(&store)[1].id.clone();
    assert_eq!(
        store.oom_kill(&id).unwrap().unwrap().event.kind(),
        OomKind::NoKill
    );

    // An event as a collector before kinds stored it (proto3 leaves the default kind out, so
    // these are the bytes an older collector wrote for it).
    let old = kill(T0 + 500, Some(110), 11).encode_to_vec();
    let ek = keys::event_key(&EventKey {
        window_start_s: (T0 / 1000) as u64,
        host_num: h,
        time_ms: (T0 + 500) as u64,
        disc: 110,
    });
    put(&store, CF_EVENTS, ek, &old);
    let oldest = all_kills(&store).pop().unwrap();
    assert_eq!(oldest.event.victim_pid, Some(11));
    assert_eq!(oldest.event.kind(), OomKind::Kill);
}

/// An amendment (the whole kill again, with what the rest of its report said) replaces the kill
/// under the id it has, whatever time it says, and is never a new kill: in a later batch, in the
/// same batch and group as its kill, and without its kill stored (then it is the kill).
#[test]
fn an_amendment_replaces_its_kill_under_the_same_id_and_is_no_new_kill() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let amended = |mut e: OomEvent| {
        e.amends = true;
        e.reaped = true;
        e.detail_json = "{\"reaped\":true}".into();
        e
    };
    let repeated = |i: Vec<u32>| WriteOutcome::Stored { repeated_kills: i };
    let first = kill(T0 + 5_000, Some(100), 11);
    assert_eq!(
        store
            .write(&[kills_item(h, 1, 1, vec![first.clone()])], T0)
            .unwrap(),
        vec![WriteOutcome::STORED]
    );
    let id = all_kills(&store)[0].id.clone();
    // The amendment says another time (a clock stepped meanwhile): the kill keeps its own.
    let mut later = amended(first.clone());
    later.time_ms += 7;
    assert_eq!(
        store
            .write(&[kills_item(h, 1, 2, vec![later])], T0)
            .unwrap(),
        vec![repeated(vec![0])]
    );
    let kills = all_kills(&store);
    assert_eq!(kills.len(), 1);
    assert_eq!(kills[0].id, id);
    assert!(kills[0].event.reaped && !kills[0].event.amends);
    assert_eq!(kills[0].event.time_ms, T0 + 5_000);
    assert_eq!(kills[0].event.detail_json, "{\"reaped\":true}");
    assert_eq!(store.oom_kill(&id).unwrap().unwrap().event, kills[0].event);
    // The kill re-read after an agent restart does not undo the amendment.
    assert_eq!(
        store
            .write(&[kills_item(h, 1, 3, vec![first.clone()])], T0)
            .unwrap(),
        vec![repeated(vec![0])]
    );
    assert!(all_kills(&store)[0].event.reaped);

    // Kill and amendment in one batch, and in two batches of one group.
    let k2 = kill(T0 + 6_000, Some(200), 12);
    let k3 = kill(T0 + 7_000, Some(300), 13);
    let out = store
        .write(
            &[
                kills_item(h, 1, 4, vec![k2.clone(), amended(k2.clone()), k3.clone()]),
                kills_item(h, 1, 5, vec![amended(k3.clone())]),
            ],
            T0,
        )
        .unwrap();
    assert_eq!(out, vec![repeated(vec![1]), repeated(vec![0])]);
    let kills = all_kills(&store);
    assert_eq!(pids(&kills), vec![13, 12, 11]);
    assert!(kills.iter().all(|k| k.event.reaped && !k.event.amends));

    // An amendment whose kill is not stored is the kill; one without a kmsg_seq names none.
    let k4 = kill(T0 + 8_000, Some(400), 14);
    let mut no_seq = amended(kill(T0 + 9_000, None, 15));
    no_seq.source = "kmsg".into();
    let out = store
        .write(&[kills_item(h, 1, 6, vec![amended(k4), no_seq])], T0)
        .unwrap();
    assert_eq!(out, vec![repeated(vec![1])]);
    let kills = all_kills(&store);
    assert_eq!(pids(&kills), vec![14, 13, 12, 11]);
    assert!(!kills[0].event.amends);
    // Another boot's seq 100 is another kill, amendment or not.
    let mut other_boot = amended(kill(T0 + 9_500, Some(100), 16));
    other_boot.boot_id = "another-boot".into();
    let out = store
        .write(&[kills_item(h, 1, 7, vec![other_boot])], T0)
        .unwrap();
    assert_eq!(out, vec![WriteOutcome::STORED]);
    assert_eq!(all_kills(&store).len(), 5);
}
