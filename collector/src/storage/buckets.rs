//! Downsampled sar reads ([`Store::query_buckets`]): per time bucket and per (instance, column)
//! the min, max, mean and count of one host's samples, computed while reading.
//!
//! Buckets are `step_ms` wide and aligned to the Unix epoch: bucket `k` holds the samples with
//! `k * step_ms <= time_ms < (k + 1) * step_ms`, so a range that is refreshed or panned keeps
//! its bucket boundaries. Only samples inside the range count, so the first and the last bucket
//! may be partial. A bucket without samples is not returned.
//!
//! The store is read window by window (the chunk window, 1 h by default): a window's unsealed
//! samples first (only their records of the activity decoded, `raw`), then its chunks, each chunk decoded into columns ([`chunk::decode_columns`])
//! and folded into the open buckets of its series, run by run of rows in one bucket. Memory
//! holds one window's rows at most, the open buckets, and the buckets done; never the rows of the
//! whole range. A window's unsealed sample of the same time and instance as a sealed row replaces
//! it, and of two unsealed ones the later write wins, as in [`Store::query`], whose rows give the
//! same buckets.
//!
//! A column's NaN values (not measured, see [`chunk`]) are left out of its min, max, mean and
//! count; a column without any other value in a bucket has count 0 and NaN min, max and mean.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use fleet_proto::limits::MAX_SAR_BUCKETS;
use fleet_proto::v1::Activity;

use super::chunk::{self, Column, Columns, Row, SCALE};
use super::keys;
use super::samples::{activity_byte, dedup_keep_last, ChunkDecoder};
use super::{Span, StorageError, Store, CF_CHUNKS, CF_RAW};

/// One bucket of one series, in the activity's column order.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    /// The bucket's start (a multiple of the step), Unix ms.
    pub start_ms: i64,
    /// Per column: its values that are numbers.
    pub count: Vec<u32>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub mean: Vec<f64>,
}

/// The buckets of one series (instance) of one host, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesBuckets {
    pub instance: String,
    pub buckets: Vec<Bucket>,
}

/// Checks a bucketed range and returns how many buckets it cuts into: `step_ms` positive,
/// `until_ms` not before `since_ms`, at most [`MAX_SAR_BUCKETS`] buckets.
///
/// # Errors
/// What is wrong, in words that name the request's fields.
pub fn bucket_count(since_ms: i64, until_ms: i64, step_ms: i64) -> Result<u64, String> {
    if step_ms <= 0 {
        return Err(format!("step_ms must be positive, not {step_ms}"));
    }
    if until_ms < since_ms {
        return Err(format!("until_ms {until_ms} is before since_ms {since_ms}"));
    }
    let count =
        i128::from(until_ms.div_euclid(step_ms)) - i128::from(since_ms.div_euclid(step_ms)) + 1;
    if count > i128::from(MAX_SAR_BUCKETS) {
        let min_step =
            (i128::from(until_ms) - i128::from(since_ms)) / i128::from(MAX_SAR_BUCKETS - 1) + 1;
        return Err(format!(
            "step_ms {step_ms} cuts the range into {count} buckets, more than {MAX_SAR_BUCKETS}: \
             use a step of at least {min_step} ms or a shorter range"
        ));
    }
    // At most MAX_SAR_BUCKETS.
    Ok(count as u64)
}

/// Running min, max, sum and count of each column of one bucket.
#[derive(Clone, Debug)]
struct Acc {
    count: Vec<u32>,
    min: Vec<f64>,
    max: Vec<f64>,
    sum: Vec<f64>,
}

impl Acc {
    fn new(width: usize) -> Acc {
        let mut acc = Acc {
            count: Vec::new(),
            min: Vec::new(),
            max: Vec::new(),
            sum: Vec::new(),
        };
        acc.widen(width);
        acc
    }

    /// At least `width` columns (a schema that gained columns).
    fn widen(&mut self, width: usize) {
        if width > self.count.len() {
            self.count.resize(width, 0);
            self.min.resize(width, f64::INFINITY);
            self.max.resize(width, f64::NEG_INFINITY);
            self.sum.resize(width, 0.0);
        }
    }

    /// Folds rows `rows` of column `c` of a chunk in: fixed-point values in the integers, where
    /// the min and max are the same values [`chunk::decode`] returns, and a constant at once.
    fn add_column(&mut self, c: usize, column: &Column, rows: Range<usize>) {
        match column {
            Column::Const(n) => {
                let v = chunk::fixed_value(*n);
                let sum = i128::from(*n) * rows.len() as i128;
                self.fold(c, v, v, sum as f64 / SCALE, rows.len());
            }
            Column::Fixed(ns) => {
                let ns = &ns[rows];
                let (mut min, mut max, mut sum) = (i64::MAX, i64::MIN, 0i128);
                for &n in ns {
                    min = min.min(n);
                    max = max.max(n);
                    sum += i128::from(n);
                }
                if !ns.is_empty() {
                    let (min, max) = (chunk::fixed_value(min), chunk::fixed_value(max));
                    self.fold(c, min, max, sum as f64 / SCALE, ns.len());
                }
            }
            Column::Float(vs) => self.add(c, &vs[rows]),
        }
    }

    /// Folds the values of column `c` in.
    fn add(&mut self, c: usize, values: &[f64]) {
        let (mut min, mut max, mut sum, mut n) = (self.min[c], self.max[c], self.sum[c], 0u32);
        for &v in values {
            if !v.is_nan() {
                min = min.min(v);
                max = max.max(v);
                sum += v;
                n += 1;
            }
        }
        (self.min[c], self.max[c], self.sum[c]) = (min, max, sum);
        self.count[c] += n;
    }

    /// Folds in `n` values of column `c` with this min, max and sum.
    fn fold(&mut self, c: usize, min: f64, max: f64, sum: f64, n: usize) {
        self.min[c] = self.min[c].min(min);
        self.max[c] = self.max[c].max(max);
        self.sum[c] += sum;
        // A chunk holds at most 2^26 values.
        self.count[c] += n as u32;
    }

    fn finish(self, start_ms: i64) -> Bucket {
        let none = |n: u32, v: f64| if n == 0 { f64::NAN } else { v };
        let per = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .zip(&self.count)
                .map(|(&v, &n)| none(n, v))
                .collect()
        };
        Bucket {
            start_ms,
            min: per(&self.min),
            max: per(&self.max),
            mean: self
                .sum
                .iter()
                .zip(&self.count)
                .map(|(&s, &n)| none(n, s / f64::from(n)))
                .collect(),
            count: self.count,
        }
    }
}

/// The buckets of one series: those still open (a later window may add to them), and those
/// done.
#[derive(Debug, Default)]
struct SeriesAcc {
    open: BTreeMap<i64, Acc>,
    done: Vec<Bucket>,
}

/// Folds rows of one host and activity into buckets (pure: the store feeds it).
#[derive(Debug)]
struct Downsampler {
    from_ms: i64,
    to_ms: i64,
    step_ms: i64,
    series: BTreeMap<String, SeriesAcc>,
}

impl Downsampler {
    /// Buckets of `step_ms` (positive) over `from_ms..=to_ms`.
    pub fn new(from_ms: i64, to_ms: i64, step_ms: i64) -> Downsampler {
        assert!(step_ms > 0, "step_ms {step_ms}");
        Downsampler {
            from_ms,
            to_ms,
            step_ms,
            series: BTreeMap::new(),
        }
    }

    fn start_of(&self, time_ms: i64) -> i64 {
        time_ms.div_euclid(self.step_ms) * self.step_ms
    }

    fn series(&mut self, instance: &str) -> &mut SeriesAcc {
        if !self.series.contains_key(instance) {
            self.series
                .insert(instance.to_owned(), SeriesAcc::default());
        }
        self.series.get_mut(instance).expect("inserted above")
    }

    /// Adds a chunk's rows (sorted by time, as the store writes them; other rows go one by one).
    pub fn add_columns(&mut self, instance: &str, c: &Columns) {
        let times = &c.times;
        if !times.is_sorted() {
            for (i, &t) in times.iter().enumerate() {
                let values: Vec<f64> = c.values.iter().map(|col| col.value(i)).collect();
                self.add_row(instance, t, &values);
            }
            return;
        }
        let (from, to) = (self.from_ms, self.to_ms);
        let mut i = times.partition_point(|&t| t < from);
        let end = times.partition_point(|&t| t <= to);
        while i < end {
            let start = self.start_of(times[i]);
            let next = start.saturating_add(self.step_ms);
            let j = i + times[i..end].partition_point(|&t| t < next);
            let width = c.values.len();
            let acc = self
                .series(instance)
                .open
                .entry(start)
                .or_insert_with(|| Acc::new(width));
            acc.widen(width);
            for (col, column) in c.values.iter().enumerate() {
                acc.add_column(col, column, i..j);
            }
            i = j;
        }
    }

    /// Adds one row (ignored outside the range).
    pub fn add_row(&mut self, instance: &str, time_ms: i64, values: &[f64]) {
        if time_ms < self.from_ms || time_ms > self.to_ms {
            return;
        }
        let start = self.start_of(time_ms);
        let acc = self
            .series(instance)
            .open
            .entry(start)
            .or_insert_with(|| Acc::new(values.len()));
        acc.widen(values.len());
        for (col, v) in values.iter().enumerate() {
            acc.add(col, std::slice::from_ref(v));
        }
    }

    /// Closes the buckets that end at or before `time_ms`: no row before it is added after.
    pub fn close_before(&mut self, time_ms: i64) {
        let step = self.step_ms;
        for s in self.series.values_mut() {
            while let Some(entry) = s.open.first_entry() {
                if entry.key().saturating_add(step) > time_ms {
                    break;
                }
                let (start, acc) = entry.remove_entry();
                s.done.push(acc.finish(start));
            }
        }
    }

    /// The buckets of each series, by instance.
    pub fn finish(mut self) -> Vec<SeriesBuckets> {
        self.close_before(i64::MAX);
        self.series
            .into_iter()
            .filter(|(_, s)| !s.done.is_empty())
            .map(|(instance, s)| SeriesBuckets {
                instance,
                buckets: s.done,
            })
            .collect()
    }
}

impl Store {
    /// The samples of one activity of one host with `from_ms <= time_ms <= to_ms`, downsampled
    /// into buckets of `step_ms` (see the module doc): per instance, its buckets with samples,
    /// oldest first. Reads one consistent snapshot, window by window, from sealed chunks and
    /// unsealed samples alike; the buckets are those of [`Store::query`]'s rows.
    ///
    /// # Errors
    /// [`StorageError::InvalidArgument`] for `Activity::Unspecified`, and for a range or step
    /// that [`bucket_count`] refuses (naming what is wrong); a corruption error if a key, sample
    /// or chunk in the range does not decode; [`StorageError::Rocks`] on read errors.
    pub fn query_buckets(
        &self,
        host_num: u32,
        activity: Activity,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> Result<Vec<SeriesBuckets>, StorageError> {
        let act = activity_byte(activity)?;
        bucket_count(from_ms, to_ms, step_ms).map_err(StorageError::InvalidArgument)?;
        let Some(span) = Span::new(from_ms, to_ms, self.window_s) else {
            return Ok(Vec::new());
        };
        let mut ds = Downsampler::new(from_ms, to_ms, step_ms);
        let db = self.db()?;
        let snapshot = db.snapshot();
        let chunks_cf = db.cf(CF_CHUNKS)?;
        let mut chunks = snapshot.raw_iterator_cf_opt(chunks_cf, span.chunk_reads());
        let mut decoder = ChunkDecoder::new(|key: &[u8]| Ok(snapshot.get_cf(chunks_cf, key)?));
        let mut raw = snapshot.raw_iterator_cf_opt(db.cf(CF_RAW)?, span.raw_reads());
        let series = |w| keys::chunk_series_prefix(w, host_num, act);
        let host = |w| keys::raw_host_prefix(w, host_num);

        let mut w = span.w_from;
        loop {
            let chunk_w =
                self.seek_window(&mut chunks, keys::PREFIX_CHUNK, w, span.w_to, series)?;
            let raw_w = self.seek_window(&mut raw, keys::PREFIX_RAW, w, span.w_to, host)?;
            let Some(window) = chunk_w.into_iter().chain(raw_w).min() else {
                break;
            };
            // This window's unsealed rows, per instance in key order (time, then seq): a later
            // write of the same time comes after.
            let mut unsealed: HashMap<String, Vec<Row>> = HashMap::new();
            if raw_w == Some(window) {
                raw::read_rows_of(
                    &mut raw,
                    &host(window),
                    &span,
                    i32::from(act),
                    |instance, r| {
                        unsealed.entry(instance).or_default().push(r);
                    },
                )?;
            }
            if chunk_w == Some(window) {
                let prefix = series(window);
                while let (Some(key), Some(value)) = (chunks.key(), chunks.value()) {
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    let ck = keys::decode_chunk_key(key)?;
                    match unsealed.remove(&ck.instance) {
                        // Sealed and unsealed rows of one series: merged, the unsealed winning.
                        Some(late) => {
                            let mut rows = decoder.rows(&ck, value)?;
                            rows.extend(late);
                            add_rows(&mut ds, &ck.instance, rows);
                        }
                        None => ds.add_columns(&ck.instance, &decoder.columns(&ck, value)?),
                    }
                    chunks.next();
                }
                chunks.status()?;
            }
            for (instance, rows) in unsealed {
                add_rows(&mut ds, &instance, rows);
            }
            let next = window.saturating_add(self.window_s);
            ds.close_before(i64::try_from(next.saturating_mul(1000)).unwrap_or(i64::MAX));
            w = next;
        }
        Ok(ds.finish())
    }
}

/// Adds rows of one series in write order: sorted by time (stably), the last of equal times
/// kept.
fn add_rows(ds: &mut Downsampler, instance: &str, mut rows: Vec<Row>) {
    rows.sort_by_key(|r| r.time_ms);
    dedup_keep_last(&mut rows, |a, b| a.time_ms == b.time_ms);
    for r in &rows {
        ds.add_row(instance, r.time_ms, &r.values);
    }
}

pub(super) mod raw;
#[cfg(test)]
mod tests;
