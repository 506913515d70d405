use fleet_proto::v1::{ClockStatus, KernelClock, NtpServerStatus};

use super::super::fixtures::{count_keys, identity, item, open, HOUR_MS, T0};
use super::super::{keys, IngestItem, StorageError, Store, WriteOutcome, CF_NTP};
use super::buckets::NtpBucket;
use super::*;

/// A measurement of two servers: the first at `offset_ms`, the second unreachable.
fn clock(offset_ms: f64) -> ClockStatus {
    ClockStatus {
        servers: vec![
            NtpServerStatus {
                server: "10.0.0.1:123".into(),
                reachable: true,
                offset_ms,
                delay_ms: 0.75,
                stratum: 2,
                leap: 0,
                reference_id: "192.168.1.1".into(),
                synced: true,
                ..Default::default()
            },
            NtpServerStatus {
                server: "10.0.0.2:123".into(),
                error: "timeout".into(),
                leap: 3,
                ..Default::default()
            },
        ],
        kernel: Some(KernelClock {
            synced: true,
            chronyd: true,
            ..Default::default()
        }),
    }
}

/// A batch of `host` carrying one sample and one measurement at each of `times` (the
/// measurement's offset is its index).
fn clocks_item(host: u32, seq: u64, times: &[i64]) -> IngestItem {
    IngestItem {
        clocks: times
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, clock(i as f64)))
            .collect(),
        ..item(host, 1, seq, times)
    }
}

fn times(h: &NtpHistory) -> Vec<(u32, i64)> {
    h.measurements
        .iter()
        .map(|m| (m.host_num, m.time_ms))
        .collect()
}

fn all(store: &Store, hosts: &[u32]) -> NtpHistory {
    store.ntp_history(hosts, 0, i64::MAX, usize::MAX).unwrap()
}

#[test]
fn measurements_round_trip_per_host_oldest_first_across_windows_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let b = store.upsert_host(&identity("b"), 0, true).unwrap().num;
    // Three windows; b's measurements interleave with a's in time.
    let ta = [T0 + 1_000, T0 + HOUR_MS + 5_000, T0 + 2 * HOUR_MS + 1];
    let tb = [T0 + 2_000, T0 + HOUR_MS + 4_000];
    store.write(&[clocks_item(a, 1, &ta)], 0).unwrap();
    store.write(&[clocks_item(b, 1, &tb)], 0).unwrap();

    let h = all(&store, &[]);
    assert!(!h.truncated);
    assert_eq!(
        times(&h),
        [(a, ta[0]), (b, tb[0]), (b, tb[1]), (a, ta[1]), (a, ta[2])]
    );
    // Each measurement comes back as sent, every field and server.
    assert_eq!(h.measurements[3].clock, clock(1.0));
    assert_eq!(h.measurements[4].clock, clock(2.0));

    // One host; a range that cuts windows, bounds included.
    let only_a = store.ntp_history(&[a], ta[1], ta[2], 100).unwrap();
    assert_eq!(times(&only_a), [(a, ta[1]), (a, ta[2])]);
    let only_b = store.ntp_history(&[b], T0, tb[1] - 1, 100).unwrap();
    assert_eq!(times(&only_b), [(b, tb[0])]);
    assert_eq!(
        times(&store.ntp_history(&[99], 0, i64::MAX, 9).unwrap()),
        []
    );
    assert_eq!(times(&store.ntp_history(&[a], 10, 5, 9).unwrap()), []);

    // The samples themselves are stored as before, without the measurements.
    assert_eq!(
        store
            .query(a, fleet_proto::v1::Activity::Cpu, 0, i64::MAX)
            .unwrap()
            .len(),
        6
    );
    drop(store);
    let store = open(&dir);
    assert_eq!(times(&all(&store, &[a, b])), times(&h));
}

#[test]
fn a_replayed_batch_stores_its_measurements_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let batch = clocks_item(a, 1, &[T0, T0 + 1_000]);
    assert!(store.write(std::slice::from_ref(&batch), 0).unwrap()[0].is_stored());
    assert_eq!(
        store.write(&[batch], 0).unwrap(),
        vec![WriteOutcome::Duplicate]
    );
    assert_eq!(count_keys(&store, CF_NTP, keys::PREFIX_NTP), 2);
    assert_eq!(all(&store, &[a]).measurements.len(), 2);
}

#[test]
fn the_limit_keeps_the_oldest_and_says_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let b = store.upsert_host(&identity("b"), 0, true).unwrap().num;
    let ta: Vec<i64> = (0..4).map(|i| T0 + i * HOUR_MS / 2).collect();
    let tb: Vec<i64> = (0..4).map(|i| T0 + i * HOUR_MS / 2 + 1).collect();
    store.write(&[clocks_item(a, 1, &ta)], 0).unwrap();
    store.write(&[clocks_item(b, 1, &tb)], 0).unwrap();

    // The first window has 4 (a, b, a, b in time): a limit inside it keeps the oldest.
    let h = store.ntp_history(&[], 0, i64::MAX, 3).unwrap();
    assert!(h.truncated);
    assert_eq!(times(&h), [(a, ta[0]), (b, tb[0]), (a, ta[1])]);
    // A limit that ends a window exactly: truncated, since more follow.
    let h = store.ntp_history(&[], 0, i64::MAX, 4).unwrap();
    assert!(h.truncated);
    assert_eq!(h.measurements.len(), 4);
    // Exactly all of them: not truncated.
    let h = store.ntp_history(&[], 0, i64::MAX, 8).unwrap();
    assert!(!h.truncated);
    assert_eq!(h.measurements.len(), 8);
    // Only host b, whose last measurement ends the range.
    let h = store.ntp_history(&[b], 0, i64::MAX, 4).unwrap();
    assert!(!h.truncated);
    assert_eq!(times(&h), tb.iter().map(|&t| (b, t)).collect::<Vec<_>>());
}

#[test]
fn measurements_expire_with_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir); // retention: 24 h, windows of 1 h
    let a = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    for i in 0..48u64 {
        let t = T0 + i as i64 * HOUR_MS + 60_000;
        store.write(&[clocks_item(a, i + 1, &[t])], 0).unwrap();
    }
    assert_eq!(all(&store, &[a]).measurements.len(), 48);
    let now = T0 + 48 * HOUR_MS + 30 * 60_000; // cutoff = T0 + 24h30m
    store.enforce_retention(now).unwrap();
    let h = all(&store, &[a]);
    assert_eq!(h.measurements.len(), 24);
    assert_eq!(h.measurements[0].time_ms, T0 + 24 * HOUR_MS + 60_000);
    assert_eq!(count_keys(&store, CF_NTP, keys::PREFIX_NTP), 24);
    // As many as the samples kept.
    let cpu_all = store
        .query(a, fleet_proto::v1::Activity::Cpu, 0, i64::MAX)
        .unwrap();
    assert_eq!(cpu_all.len(), 2 * 24);

    // An old measurement that arrives after retention ran is dropped by its next run.
    store
        .write(&[clocks_item(a, 100, &[T0 + 60_000])], 0)
        .unwrap();
    assert_eq!(all(&store, &[a]).measurements.len(), 25);
    store.enforce_retention(now).unwrap();
    assert_eq!(all(&store, &[a]).measurements.len(), 24);
}

#[test]
fn a_measurement_before_1970_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let mut bad = clocks_item(a, 1, &[T0]);
    bad.clocks.push((-5, clock(0.0)));
    let e = store.write(&[bad], 0).unwrap_err();
    assert!(
        matches!(&e, StorageError::InvalidSample(m) if m.contains("NTP measurement time -5")),
        "{e}"
    );
    assert_eq!(count_keys(&store, CF_NTP, keys::PREFIX_NTP), 0);
    assert_eq!(store.host_by_num(a).unwrap().last_seq, 0);
}

#[test]
fn buckets_against_the_raw_history_min_and_max_exact_and_the_mean() {
    use fleet_proto::ntp::best_offset;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let b = store.upsert_host(&identity("b"), 0, true).unwrap().num;
    let c = store.upsert_host(&identity("c"), 0, true).unwrap().num;
    // Three hours at 16 s (crossing windows), offsets that wander with a spike now and then;
    // every 7th measurement of b has no synced source and counts nowhere.
    let times: Vec<i64> = (0..675).map(|i| T0 + 7 + i * 16_000).collect();
    let offset = |host: u32, i: usize| {
        let wave = ((i as f64) * 0.37 + f64::from(host)).sin() * 3.0 + f64::from(host) * 100.0;
        if i % 97 == 13 {
            wave + 250.123
        } else {
            (wave * 1000.0).round() / 1000.0
        }
    };
    for (seq, host) in [a, b, c].into_iter().enumerate() {
        let clocks = times
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let mut clock = clock(offset(host, i));
                if host == b && i % 7 == 0 {
                    clock.servers[0].synced = false;
                }
                (t, clock)
            })
            .collect();
        let batch = IngestItem {
            clocks,
            ..item(host, 1, seq as u64 + 1, &times)
        };
        store.write(&[batch], 0).unwrap();
    }

    let (from, to) = (T0 + 600_000, T0 + 3 * HOUR_MS - 123_456);
    for step in [60_000, 300_000, 1_000_000] {
        let got = store.ntp_buckets(&[a, b], from, to, step).unwrap();
        let raw = store.ntp_history(&[a, b], from, to, usize::MAX).unwrap();
        let mut want: std::collections::BTreeMap<(u32, i64), Vec<f64>> = Default::default();
        for m in &raw.measurements {
            if let Some(o) = best_offset(&m.clock) {
                let start = m.time_ms.div_euclid(step) * step;
                want.entry((m.host_num, start)).or_default().push(o);
            }
        }
        let flat: Vec<(u32, &NtpBucket)> = got
            .iter()
            .flat_map(|h| h.buckets.iter().map(move |b| (h.host_num, b)))
            .collect();
        assert_eq!(
            flat.iter()
                .map(|(h, b)| (*h, b.start_ms))
                .collect::<Vec<_>>(),
            want.keys().copied().collect::<Vec<_>>(),
            "step {step}"
        );
        for ((h, bucket), values) in flat.iter().zip(want.values()) {
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            assert_eq!(bucket.count as usize, values.len(), "host {h} {bucket:?}");
            assert_eq!((bucket.min, bucket.max), (min, max), "host {h} {bucket:?}");
            assert!(
                (bucket.mean - mean).abs() <= 1e-9 * mean.abs().max(1.0),
                "{bucket:?}"
            );
        }
        // The spikes survive in the max of their bucket.
        assert!(flat.iter().any(|(_, b)| b.max > 250.0), "step {step}");
    }
    // Every host: c too.
    assert_eq!(
        store
            .ntp_buckets(&[], from, to, 600_000)
            .unwrap()
            .iter()
            .map(|h| h.host_num)
            .collect::<Vec<_>>(),
        [a, b, c]
    );
    // A step refused as the sar buckets refuse it; an empty range has none.
    let e = store.ntp_buckets(&[a], from, to, 0).unwrap_err();
    assert!(
        matches!(&e, StorageError::InvalidArgument(m) if m.contains("step_ms")),
        "{e}"
    );
    let e = store.ntp_buckets(&[a], 0, 100 * HOUR_MS, 1).unwrap_err();
    assert!(matches!(&e, StorageError::InvalidArgument(_)), "{e}");
    assert_eq!(store.ntp_buckets(&[a], T0 - 10, T0 - 1, 1).unwrap(), []);
}
