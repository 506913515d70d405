use std::collections::BTreeMap;

use fleet_proto::v1::{Activity, Record, Sample};

use super::super::fixtures::{identity, item, open, sample, HOUR_MS, T0};
use super::super::{IngestItem, StorageError, StoredRow};
use super::*;

/// The buckets computed the plain way from [`Store::query`]'s rows.
fn expected(rows: &[StoredRow], step: i64) -> Vec<SeriesBuckets> {
    let mut by: BTreeMap<(String, i64), Vec<&StoredRow>> = BTreeMap::new();
    for r in rows {
        let start = r.time_ms.div_euclid(step) * step;
        by.entry((r.instance.clone(), start)).or_default().push(r);
    }
    let mut out: Vec<SeriesBuckets> = Vec::new();
    for ((instance, start), rows) in by {
        let width = rows.iter().map(|r| r.values.len()).max().unwrap();
        let mut b = Bucket {
            start_ms: start,
            count: vec![0; width],
            min: vec![f64::NAN; width],
            max: vec![f64::NAN; width],
            mean: vec![f64::NAN; width],
        };
        for c in 0..width {
            let vals: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.values.get(c).copied())
                .filter(|v| !v.is_nan())
                .collect();
            if vals.is_empty() {
                continue;
            }
            b.count[c] = vals.len() as u32;
            b.min[c] = vals.iter().copied().fold(f64::INFINITY, f64::min);
            b.max[c] = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            b.mean[c] = vals.iter().sum::<f64>() / vals.len() as f64;
        }
        match out.last_mut() {
            Some(s) if s.instance == instance => s.buckets.push(b),
            _ => out.push(SeriesBuckets {
                instance,
                buckets: vec![b],
            }),
        }
    }
    out
}

/// Min and max bit for bit, counts equal, means to float rounding (NaN where no value).
fn assert_same(got: &[SeriesBuckets], want: &[SeriesBuckets], what: &str) {
    let shape = |s: &[SeriesBuckets]| -> Vec<(String, Vec<i64>)> {
        s.iter()
            .map(|s| {
                (
                    s.instance.clone(),
                    s.buckets.iter().map(|b| b.start_ms).collect(),
                )
            })
            .collect()
    };
    assert_eq!(shape(got), shape(want), "{what}: series and bucket starts");
    for (g, w) in got.iter().zip(want) {
        for (gb, wb) in g.buckets.iter().zip(&w.buckets) {
            let at = format!("{what}: {} bucket {}", g.instance, gb.start_ms);
            assert_eq!(gb.count, wb.count, "{at}: count");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&gb.min), bits(&wb.min), "{at}: min");
            assert_eq!(bits(&gb.max), bits(&wb.max), "{at}: max");
            for (c, (m, e)) in gb.mean.iter().zip(&wb.mean).enumerate() {
                let close = (m.is_nan() && e.is_nan()) || (m - e).abs() <= 1e-9 * e.abs().max(1.0);
                assert!(close, "{at}: mean of column {c}: {m} vs {e}");
            }
        }
    }
}

/// A sample with CPU "all" and "0" whose values move with the time (fixtures' `sample`), its
/// user column spiking every 13th sample.
fn spiky(time_ms: i64) -> Sample {
    let mut s = sample(time_ms);
    if (time_ms / 10_000) % 13 == 0 {
        s.records[0].values[0] = 99.99;
    }
    s
}

/// Three hours of samples every 10 s, less a 25 minute gap in the second hour: the first two
/// windows sealed, the third not; plus late writes into the first (sealed) window that replace
/// a sealed row and add a NaN, and an unsealed row written twice.
fn store_with_history(dir: &tempfile::TempDir) -> (Store, u32) {
    let store = open(dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let times = |from: i64, to: i64| (from..to).step_by(10_000).collect::<Vec<i64>>();
    let mut seq = 0;
    let mut write = |times: Vec<i64>| {
        seq += 1;
        let it = IngestItem {
            samples: times.iter().map(|&t| spiky(t)).collect(),
            ..item(h, 1, seq, &[])
        };
        store.write(&[it], 0).unwrap();
    };
    write(times(T0, T0 + HOUR_MS));
    write(times(T0 + HOUR_MS, T0 + HOUR_MS + 10 * 60_000));
    write(times(T0 + HOUR_MS + 35 * 60_000, T0 + 2 * HOUR_MS));
    // Windows T0 and T0 + 1h are closed by T0 + 4h: sealed.
    let stats = store.seal(T0 + 4 * HOUR_MS).unwrap();
    assert_eq!(stats.groups, 2);
    write(times(T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS));
    let cpu = |instance: &str, user: f64| Record {
        activity: Activity::Cpu as i32,
        instance: instance.into(),
        values: vec![user, 0.0, 1.0, 0.0, 0.0, 50.0],
    };
    let late = |time_ms, records| Sample {
        time_ms,
        interval_ms: 10_000,
        records,
        ..Sample::default()
    };
    seq += 1;
    let late_writes = IngestItem {
        samples: vec![
            // Replaces a sealed row: the new minimum of its bucket.
            late(T0 + 20_000, vec![cpu("all", -5.0)]),
            // A value not measured.
            late(T0 + 30_000, vec![cpu("0", f64::NAN)]),
            // An unsealed row, then the same time again: the second wins.
            late(T0 + 2 * HOUR_MS + 50_000, vec![cpu("all", 1234.5)]),
        ],
        ..item(h, 1, seq, &[])
    };
    store.write(&[late_writes], 0).unwrap();
    seq += 1;
    let again = IngestItem {
        samples: vec![late(T0 + 2 * HOUR_MS + 50_000, vec![cpu("all", 77.0)])],
        ..item(h, 1, seq, &[])
    };
    store.write(&[again], 0).unwrap();
    (store, h)
}

#[test]
fn buckets_are_those_of_the_raw_rows_sealed_or_not_at_any_step_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let (store, h) = store_with_history(&dir);
    let cases = [
        // Whole range, 7 minutes (buckets across window boundaries).
        (T0, T0 + 3 * HOUR_MS, 7 * 60_000),
        // Edges cutting buckets, 10 minutes.
        (T0 + 17_345, T0 + 2 * HOUR_MS + 33_333, 10 * 60_000),
        // A step of one sample; one larger than a window; one larger than the range.
        (T0, T0 + 3 * HOUR_MS, 10_000),
        (T0 - 5 * HOUR_MS, T0 + 3 * HOUR_MS, 2 * HOUR_MS),
        (T0 + 1_000, T0 + 3 * HOUR_MS, 100 * HOUR_MS),
        // Inside one window, and a range holding no sample.
        (T0 + 1_000, T0 + 50_000, 20_000),
        (
            T0 + HOUR_MS + 12 * 60_000,
            T0 + HOUR_MS + 30 * 60_000,
            60_000,
        ),
    ];
    for (from, to, step) in cases {
        for activity in [Activity::Cpu, Activity::Memory] {
            let what = format!("{activity:?} {from}..={to} step {step}");
            let rows = store.query(h, activity, from, to).unwrap();
            let got = store.query_buckets(h, activity, from, to, step).unwrap();
            assert_same(&got, &expected(&rows, step), &what);
        }
    }

    let minute = 60_000;
    let got = store
        .query_buckets(h, Activity::Cpu, T0, T0 + 3 * HOUR_MS, 10 * minute)
        .unwrap();
    let all = &got[0];
    assert_eq!(
        (all.instance.as_str(), got[1].instance.as_str()),
        ("0", "all")
    );
    let all = &got[1];
    // 18 buckets of 10 minutes, less the two the gap empties (1h10..1h30), plus the one at the
    // range's end (T0 + 3h exactly, the samples stop just before it): not there either.
    let starts: Vec<i64> = all
        .buckets
        .iter()
        .map(|b| (b.start_ms - T0) / minute)
        .collect();
    let want: Vec<i64> = (0..18)
        .map(|i| i * 10)
        .filter(|m| !(70..90).contains(m))
        .collect();
    assert_eq!(starts, want);
    // The cut bucket at the gap's edge counts only its samples: 1h30..1h35 is empty, 1h35..1h40
    // has 30.
    let edge = all
        .buckets
        .iter()
        .find(|b| b.start_ms == T0 + 90 * minute)
        .unwrap();
    assert_eq!(edge.count, vec![30; 6]);
    // The sealed row replaced late: the minimum; the spikes: the maximum.
    assert_eq!(all.buckets[0].min[0], -5.0);
    assert_eq!(all.buckets[0].max[0], 99.99);
    assert_eq!(all.buckets[0].count[0], 60);
    // The NaN is left out of its column only.
    let cpu0 = &got[0].buckets[0];
    assert_eq!(cpu0.count, vec![59, 60, 60, 60, 60, 60]);
    // The unsealed row written twice counts once, the later value.
    let third = all
        .buckets
        .iter()
        .find(|b| b.start_ms == T0 + 120 * minute)
        .unwrap();
    assert_eq!(third.count[0], 60);
    assert_eq!(third.max[0], 99.99);
    let one = store
        .query_buckets(
            h,
            Activity::Cpu,
            T0 + 2 * HOUR_MS + 50_000,
            T0 + 2 * HOUR_MS + 50_000,
            1,
        )
        .unwrap();
    assert_eq!(one[1].buckets[0].mean[0], 77.0);
}

#[test]
fn a_bad_step_or_range_is_refused_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let h = store.upsert_host(&identity("a"), 0, true).unwrap().num;
    let refused = |from, to, step| match store.query_buckets(h, Activity::Cpu, from, to, step) {
        Err(StorageError::InvalidArgument(m)) => m,
        other => panic!("{from}..{to} step {step}: {other:?}"),
    };
    assert_eq!(refused(0, 10, 0), "step_ms must be positive, not 0");
    assert_eq!(refused(0, 10, -5), "step_ms must be positive, not -5");
    assert_eq!(refused(10, 5, 1), "until_ms 5 is before since_ms 10");
    assert_eq!(
        refused(T0, T0 + HOUR_MS, 100),
        "step_ms 100 cuts the range into 36001 buckets, more than 10000: use a step of at least \
         361 ms or a shorter range"
    );
    // The bound itself is allowed, and the suggested step is enough.
    assert_eq!(bucket_count(0, 9_999, 1), Ok(10_000));
    assert!(bucket_count(0, 10_000, 1).is_err());
    assert_eq!(
        bucket_count(T0, T0 + HOUR_MS, 361).map(|n| n <= 10_000),
        Ok(true)
    );
    assert_eq!(bucket_count(5, 5, 1_000), Ok(1));
    assert!(matches!(
        store.query_buckets(h, Activity::Unspecified, 0, 10, 1),
        Err(StorageError::InvalidArgument(_))
    ));
    assert_eq!(
        store
            .query_buckets(h, Activity::Cpu, 0, 10_000, 1_000)
            .unwrap(),
        vec![]
    );
}

#[test]
fn the_downsampler_takes_unsorted_and_wider_rows() {
    let mut ds = Downsampler::new(0, 1_000, 100);
    let cols = Columns {
        times: vec![150, 120, 990, 1_001],
        intervals: vec![1; 4],
        values: vec![Column::Float(vec![1.0, 3.0, 5.0, 100.0])],
    };
    ds.add_columns("x", &cols);
    ds.add_row("x", 160, &[2.0, 8.0]);
    ds.add_row("x", -1, &[1.0]);
    ds.add_row("x", 950, &[f64::NAN, f64::NAN]);
    let got = ds.finish();
    assert_eq!(got.len(), 1);
    let b = &got[0].buckets;
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].start_ms, 100);
    assert_eq!(b[0].count, vec![3, 1]);
    assert_eq!((b[0].min[0], b[0].max[0], b[0].mean[0]), (1.0, 3.0, 2.0));
    assert_eq!((b[0].min[1], b[0].mean[1]), (8.0, 8.0));
    assert_eq!(b[1].start_ms, 900);
    assert!(b[1].min[1].is_nan() && b[1].mean[1].is_nan());
    assert_eq!(b[1].count, vec![1, 0]);
    assert_eq!(b[1].mean[0], 5.0);
}
