//! Client-side downsampling: a series (host and instance) with more rows than a panel has
//! pixels becomes one row per time bucket holding each column's mean, with the bucket's min and
//! max as its [`Envelope`], so a spike stays visible. The collector's downsampled query will
//! return the same shape; until then [`super::source`] buckets here.

use std::collections::BTreeMap;

use super::{Envelope, PlotRow, Range};

/// `rows` with each series of more than `buckets` rows cut into `buckets` equal time buckets
/// over `range` (rows outside it dropped); series within the limit are returned as they are.
pub fn downsample(rows: Vec<PlotRow>, range: Range, buckets: usize) -> Vec<PlotRow> {
    let buckets = buckets.max(1);
    let mut series: BTreeMap<(String, String), Vec<PlotRow>> = BTreeMap::new();
    for row in rows {
        series
            .entry((row.host_id.clone(), row.instance.clone()))
            .or_default()
            .push(row);
    }
    let span = (range.until_ms - range.since_ms).max(1);
    let width = (span / i64::try_from(buckets).unwrap_or(i64::MAX)).max(1);
    let mut out = Vec::new();
    for (_, rows) in series {
        if rows.len() <= buckets {
            out.extend(rows);
            continue;
        }
        let mut by_bucket: BTreeMap<i64, Vec<PlotRow>> = BTreeMap::new();
        for row in rows {
            if (range.since_ms..=range.until_ms).contains(&row.time_ms) {
                let b = (row.time_ms - range.since_ms) / width;
                by_bucket.entry(b).or_default().push(row);
            }
        }
        out.extend(
            by_bucket
                .into_iter()
                .map(|(b, rows)| merge(&rows, range.since_ms + b * width, width)),
        );
    }
    out
}

/// One bucket's rows (non-empty) as one row at the bucket's middle.
fn merge(rows: &[PlotRow], start_ms: i64, width_ms: i64) -> PlotRow {
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
    let first = &rows[0];
    PlotRow {
        host_id: first.host_id.clone(),
        host: first.host.clone(),
        instance: first.instance.clone(),
        time_ms: start_ms + width_ms / 2,
        // The bucket is the new interval: consecutive buckets are not a gap.
        interval_ms: u32::try_from(width_ms)
            .unwrap_or(u32::MAX)
            .max(rows.iter().map(|r| r.interval_ms).max().unwrap_or(0)),
        values: mean,
        envelope: Some(Envelope { min, max }),
    }
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
}
