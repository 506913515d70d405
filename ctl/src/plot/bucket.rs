//! Bucketed rows: one row per time bucket holding each column's mean, with the bucket's min and
//! max as its [`Envelope`], so a spike stays visible when a series has more points than a panel
//! has pixels. One shape for both origins: [`from_buckets`] turns the collector's downsampled
//! answer (`Query.QuerySarBuckets`) into rows, [`downsample`] buckets rows already in hand (the
//! OOM page's 30 minutes, NTP history, a collector without the downsampled query) the same way —
//! epoch-aligned buckets of [`step_ms`], each drawn at the middle of its part of the range.

use std::collections::BTreeMap;

use fleet_proto::v1::SarBucketSeries;

use super::{Envelope, PlotRow, Range};
use crate::output::host_name;

/// The bucket width that cuts `range` into at most `buckets` (+1, as buckets are aligned to the
/// Unix epoch, the first and last may be partial): the span divided by `buckets`, rounded up.
pub fn step_ms(range: Range, buckets: usize) -> i64 {
    let span = (range.until_ms - range.since_ms).max(1);
    let buckets = i64::try_from(buckets.max(1)).unwrap_or(i64::MAX);
    ((span + buckets - 1) / buckets).max(1)
}

/// Per column of one bucket: min, max, mean (NaN: no value in the bucket).
struct Figures {
    min: Vec<f64>,
    max: Vec<f64>,
    mean: Vec<f64>,
}

/// One bucket starting at `start_ms`, `step` wide, as the row drawn for it: at the middle of the
/// bucket's part of `range`, `interval_ms` apart from its neighbours (so consecutive buckets are
/// not a gap).
fn bucket_row(
    series: &PlotRow,
    start_ms: i64,
    step: i64,
    range: Range,
    interval_ms: i64,
    figures: Figures,
) -> PlotRow {
    let from = start_ms.max(range.since_ms);
    let to = (start_ms + step).min(range.until_ms).max(from);
    PlotRow {
        host_id: series.host_id.clone(),
        host: series.host.clone(),
        instance: series.instance.clone(),
        time_ms: from + (to - from) / 2,
        interval_ms: u32::try_from(interval_ms.max(step)).unwrap_or(u32::MAX),
        values: figures.mean,
        envelope: Some(Envelope {
            min: figures.min,
            max: figures.max,
        }),
    }
}

/// The rows of the collector's buckets of `step` over `range`. A series' interval is taken as
/// the step, or the smallest distance between its buckets when wider (a series sampled more
/// sparsely than the step has one sample per bucket and empty buckets between: not gaps).
pub fn from_buckets(series: &[SarBucketSeries], step: i64, range: Range) -> Vec<PlotRow> {
    let step = step.max(1);
    let mut out = Vec::new();
    for s in series {
        let key = PlotRow {
            host_id: s.host_id.clone(),
            host: host_name(&s.hostname, &s.host_id).to_owned(),
            instance: s.instance.clone(),
            time_ms: 0,
            interval_ms: 0,
            values: Vec::new(),
            envelope: None,
        };
        let interval = s
            .buckets
            .windows(2)
            .map(|w| w[1].time_ms - w[0].time_ms)
            .min()
            .unwrap_or(step);
        out.extend(s.buckets.iter().map(|b| {
            let figures = Figures {
                min: b.min.clone(),
                max: b.max.clone(),
                mean: b.mean.clone(),
            };
            bucket_row(&key, b.time_ms, step, range, interval, figures)
        }));
    }
    out
}

/// `rows` with each series (host and instance) of more than `buckets` rows cut into the buckets
/// of [`step_ms`] (rows outside `range` dropped); series within the limit are returned as they
/// are.
pub fn downsample(rows: Vec<PlotRow>, range: Range, buckets: usize) -> Vec<PlotRow> {
    let mut series: BTreeMap<(String, String), Vec<PlotRow>> = BTreeMap::new();
    for row in rows {
        series
            .entry((row.host_id.clone(), row.instance.clone()))
            .or_default()
            .push(row);
    }
    let step = step_ms(range, buckets);
    let mut out = Vec::new();
    for (_, rows) in series {
        if rows.len() <= buckets.max(1) {
            out.extend(rows);
            continue;
        }
        let interval = rows.iter().map(|r| i64::from(r.interval_ms)).max();
        let mut by_bucket: BTreeMap<i64, Vec<PlotRow>> = BTreeMap::new();
        for row in rows {
            if (range.since_ms..=range.until_ms).contains(&row.time_ms) {
                by_bucket
                    .entry(row.time_ms.div_euclid(step) * step)
                    .or_default()
                    .push(row);
            }
        }
        out.extend(by_bucket.into_iter().map(|(start, rows)| {
            let figures = merge(&rows);
            bucket_row(&rows[0], start, step, range, interval.unwrap_or(0), figures)
        }));
    }
    out
}

/// One bucket's rows (non-empty): per column the mean of the values and the extremes of the
/// values (or of the rows' own envelopes).
fn merge(rows: &[PlotRow]) -> Figures {
    let columns = rows.iter().map(|r| r.values.len()).max().unwrap_or(0);
    let mut mean = vec![0.0; columns];
    let mut min = vec![f64::INFINITY; columns];
    let mut max = vec![f64::NEG_INFINITY; columns];
    let mut count = vec![0u32; columns];
    for row in rows {
        let (lo, hi) = match &row.envelope {
            Some(e) => (e.min.as_slice(), e.max.as_slice()),
            None => (row.values.as_slice(), row.values.as_slice()),
        };
        for (c, v) in row.values.iter().enumerate() {
            if v.is_finite() {
                mean[c] += v;
                count[c] += 1;
                min[c] = min[c].min(*lo.get(c).unwrap_or(v));
                max[c] = max[c].max(*hi.get(c).unwrap_or(v));
            }
        }
    }
    for c in 0..columns {
        mean[c] = if count[c] == 0 {
            f64::NAN
        } else {
            mean[c] / f64::from(count[c])
        };
    }
    Figures { min, max, mean }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: i64, v: f64) -> PlotRow {
        PlotRow {
            host_id: "h".into(),
            host: "h".into(),
            instance: "-".into(),
            time_ms: t,
            interval_ms: 1000,
            values: vec![v, 1.0],
            envelope: None,
        }
    }

    #[test]
    fn few_rows_pass_through() {
        let rows = vec![row(0, 1.0), row(1000, 2.0)];
        let range = Range {
            since_ms: 0,
            until_ms: 10_000,
        };
        assert_eq!(downsample(rows.clone(), range, 10), rows);
    }

    #[test]
    fn many_rows_become_buckets_with_exact_extremes() {
        // 100 s at 1 s, one spike of 500 at t=37 s, into 10 buckets of 10 s.
        let rows: Vec<PlotRow> = (0..100)
            .map(|i| row(i * 1000, if i == 37 { 500.0 } else { i as f64 }))
            .collect();
        let range = Range {
            since_ms: 0,
            until_ms: 100_000,
        };
        let out = downsample(rows, range, 10);
        assert_eq!(out.len(), 10);
        let spike = &out[3];
        let e = spike.envelope.as_ref().unwrap();
        assert_eq!((e.min[0], e.max[0]), (30.0, 500.0));
        let mean = (30..40)
            .map(|i| if i == 37 { 500.0 } else { i as f64 })
            .sum::<f64>()
            / 10.0;
        assert!((spike.values[0] - mean).abs() < 1e-9);
        assert_eq!(spike.time_ms, 35_000);
        assert_eq!(spike.values[1], 1.0);
        assert!(out.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
    }

    #[test]
    fn collector_buckets_are_drawn_mid_bucket_and_sparse_series_keep_their_spacing() {
        use fleet_proto::v1::SarBucket;
        let b = |t: i64| SarBucket {
            time_ms: t,
            count: vec![1],
            min: vec![1.0],
            max: vec![3.0],
            mean: vec![2.0],
        };
        let series = |instance: &str, times: &[i64]| SarBucketSeries {
            host_id: "a1".into(),
            hostname: String::new(),
            instance: instance.into(),
            buckets: times.iter().map(|t| b(*t)).collect(),
        };
        // 4 s buckets over [1 s, 30 s]: "dense" fills each, "sparse" is sampled every 12 s.
        let range = Range {
            since_ms: 1_000,
            until_ms: 30_000,
        };
        let rows = from_buckets(
            &[
                series("dense", &[0, 4_000, 8_000, 28_000]),
                series("sparse", &[0, 12_000, 24_000]),
            ],
            4_000,
            range,
        );
        let dense: Vec<(i64, u32)> = rows[..4]
            .iter()
            .map(|r| (r.time_ms, r.interval_ms))
            .collect();
        // The first bucket starts before the range and the last ends after it: their middles are
        // those of the parts inside it.
        assert_eq!(
            dense,
            [
                (2_500, 4_000),
                (6_000, 4_000),
                (10_000, 4_000),
                (29_000, 4_000)
            ]
        );
        assert!(rows[4..].iter().all(|r| r.interval_ms == 12_000));
        assert_eq!(rows[0].host, "a1", "no hostname: the host id");
        let e = rows[0].envelope.as_ref().unwrap();
        assert_eq!((e.min[0], rows[0].values[0], e.max[0]), (1.0, 2.0, 3.0));
    }
}
