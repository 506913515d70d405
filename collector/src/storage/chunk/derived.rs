//! Columns stored as what sar's values are made of (format version 3): a `/s` column as the
//! whole counts it came from over each row's interval (mode 7), a row of CPU percentages as
//! shares of a total of jiffies (mode 8), and the masks of a sum column (mode 9: a column plus
//! or minus others of its record). The encoder and the decoder share the rounding here, so a
//! round trip is exact. Pure.

use super::ints::{put_int_column, put_uvarint, Scratch, MODE_RATE};
/// The scales [`put_rate_column`] tries: a count per second (sar's `/s` columns: faults, I/O
/// requests, packets) and half a count per second (kB/s made from 512-byte sectors), in
/// fixed-point hundredths per millisecond of interval.
pub(super) const RATE_SCALES: [i64; 2] = [100_000, 50_000];
/// The scale of [`MODE_SHARES`](super::ints::MODE_SHARES): the columns are percentages of the
/// row's total, in hundredths.
pub(super) const SHARES_SCALE: i64 = 10_000;
/// The largest row total [`shares`] searches for.
const MAX_SHARES_TOTAL: i64 = 2048;
/// How far from the row before's total [`shares`] looks first.
const NEAR_TOTAL: i64 = 16;

/// `n / d` rounded to the nearest integer, ties upwards (`d > 0`): the one rounding the encoder
/// and the decoder of modes 7 and 8 share.
pub(super) fn round_div(n: i128, d: i128) -> i128 {
    Divisor::new(d).round(n)
}

/// A divisor of [`round_div`], with its reciprocal: the decoder divides every value of a row
/// by the same total or interval.
#[derive(Debug, Clone, Copy)]
pub(super) struct Divisor {
    d: i128,
    inv: f64,
}

impl Divisor {
    /// `d > 0`.
    pub(super) fn new(d: i128) -> Divisor {
        Divisor {
            d,
            inv: 1.0 / (2 * d) as f64,
        }
    }

    /// [`round_div`]`(n, d)`.
    pub(super) fn round(self, n: i128) -> i128 {
        // 128-bit division is a library call, slow on the hot paths (decoding every value of a
        // rate or shares column, the encoder's search for totals): below 2^50 a float quotient,
        // one off at most, corrected exactly in 64 bits.
        const SMALL: i128 = 1 << 50;
        let d = self.d;
        if (-SMALL..SMALL).contains(&n) && (1..SMALL).contains(&d) {
            let (num, den) = (2 * n as i64 + d as i64, 2 * d as i64);
            let mut q = (num as f64 * self.inv).floor() as i64;
            let mut rem = num - q * den;
            while rem < 0 {
                q -= 1;
                rem += den;
            }
            while rem >= den {
                q += 1;
                rem -= den;
            }
            return i128::from(q);
        }
        let (q, rem) = (n.div_euclid(d), n.rem_euclid(d));
        if rem >= d - rem {
            q + 1
        } else {
            q
        }
    }
}

/// Mode 7's prediction of a value from its count `k`: `round(k · scale / interval_ms)`, `None`
/// when it does not fit (only corrupt input) or the interval is 0.
pub(super) fn rate_value(k: i64, scale: i64, interval_ms: u32) -> Option<i64> {
    if interval_ms == 0 {
        return None;
    }
    rate_value_by(k, scale, Divisor::new(i128::from(interval_ms)))
}

/// [`rate_value`] with the interval as a [`Divisor`].
pub(super) fn rate_value_by(k: i64, scale: i64, interval: Divisor) -> Option<i64> {
    let n = i128::from(k).checked_mul(i128::from(scale))?;
    i64::try_from(interval.round(n)).ok()
}

/// Mode 7, if it is smaller than `plain` (the cost of the column as [`put_int_column`] writes
/// it): a rate over each row's interval stored as the count it was computed from,
/// `7 · scale:varint · int_column of k · int_column of residual`, where the value is
/// [`rate_value`]`(k, scale, interval) + residual`. sar's `/s` columns divide a count by the
/// interval: at 1 s, consecutive counts differ by about 100 hundredths, so the counts cost
/// about 6.6 bits less per value than the rates, and the residuals are all 0.
///
/// Returns the cost written, or `None` (nothing written) when no scale pays.
pub(super) fn put_rate_column(
    out: &mut Vec<u8>,
    ns: &[i64],
    intervals: &[u32],
    plain: f64,
    s: &mut Scratch,
) -> Option<f64> {
    if intervals.contains(&0) {
        return None;
    }
    let mut best: Option<(f64, Vec<u8>)> = None;
    let mut ks = Vec::with_capacity(ns.len());
    let mut residuals = Vec::with_capacity(ns.len());
    for scale in RATE_SCALES {
        ks.clear();
        residuals.clear();
        for (&n, &i) in ns.iter().zip(intervals) {
            let k = i64::try_from(round_div(i128::from(n) * i128::from(i), i128::from(scale)));
            let Some(p) = k.ok().and_then(|k| {
                ks.push(k);
                rate_value(k, scale, i)
            }) else {
                break;
            };
            residuals.push(n.wrapping_sub(p));
            // Not a rate at this scale: a value that is not a whole count costs a residual,
            // and columns that are rates have none; give up early on the others.
            if residuals.len() == 64 && residuals.iter().filter(|&&r| r != 0).count() > 4 {
                break;
            }
        }
        if residuals.len() != ns.len() {
            continue;
        }
        let mut buf = vec![MODE_RATE];
        put_uvarint(&mut buf, scale as u64);
        let cost = 2.0 + put_int_column(&mut buf, &ks, s) + put_int_column(&mut buf, &residuals, s);
        // Only when it pays clearly: at intervals of exactly 1 s, any column of whole numbers
        // is a rate, which costs what its common divisor of 100 does in mode 4 or 6.
        if cost < best.as_ref().map_or(plain * 0.97, |b| b.0) {
            best = Some((cost, buf));
        }
    }
    best.map(|(cost, buf)| {
        out.extend_from_slice(&buf);
        cost
    })
}

/// The columns a mode 9 column is summed with: `(plus, minus)` bit masks of column indices
/// (below 64), chosen greedily (up to three) by how much they smooth column `target` of
/// `columns` (the sum of the absolute differences between neighbours, over the first 1024
/// rows): sar's `kbmemused` is the total less `kbmemfree`, `kbbuffers`, `kbcached` and the slab,
/// so their sum moves with the slab alone; `tps` is `rtps + wtps + dtps` give or take the
/// rounding. `usable[j]`: whether column `j` may be summed (an integer column that is not
/// itself a sum). `None` when nothing smooths it by a tenth.
pub(super) fn sum_masks(
    columns: &[Option<Vec<i64>>],
    target: usize,
    usable: &[bool],
) -> Option<(u64, u64)> {
    let rows = columns[target].as_ref()?.len().min(1024);
    let roughness = |v: &[i64]| -> f64 {
        v.windows(2)
            .map(|w| w[1].wrapping_sub(w[0]).unsigned_abs() as f64)
            .sum()
    };
    let mut cur: Vec<i64> = columns[target].as_ref()?[..rows].to_vec();
    let mut cost = roughness(&cur);
    let (mut plus, mut minus) = (0u64, 0u64);
    let mut trial = vec![0i64; rows];
    for _ in 0..3 {
        let mut best: Option<(f64, usize, bool)> = None;
        for (j, column) in columns.iter().enumerate().take(64) {
            let taken = (plus | minus) >> j & 1 == 1;
            let Some(c) = column
                .as_ref()
                .filter(|_| j != target && usable[j] && !taken)
            else {
                continue;
            };
            for negative in [false, true] {
                for ((t, &a), &b) in trial.iter_mut().zip(&cur).zip(&c[..rows]) {
                    *t = if negative {
                        a.wrapping_sub(b)
                    } else {
                        a.wrapping_add(b)
                    };
                }
                let c = roughness(&trial);
                if c < best.map_or(cost * 0.9, |b| b.0) {
                    best = Some((c, j, negative));
                }
            }
        }
        let Some((c, j, negative)) = best else { break };
        let other = columns[j].as_ref()?;
        for (a, &b) in cur.iter_mut().zip(&other[..rows]) {
            *a = if negative {
                a.wrapping_sub(b)
            } else {
                a.wrapping_add(b)
            };
        }
        cost = c;
        if negative {
            minus |= 1 << j;
        } else {
            plus |= 1 << j;
        }
    }
    (plus | minus != 0).then_some((plus, minus))
}

/// Mode 8's row totals and counts, when every row of `columns` (fixed-point percentages,
/// column-major) is a set of shares of a whole: value `j` of row `i` is
/// `round(k[j][i] · 10000 / total[i])` with `total[i] = rest[i] + Σ k[·][i]`, each total at most
/// [`MAX_SHARES_TOTAL`] (sar's CPU percentages: jiffies over the jiffies of the interval, about
/// 100 per CPU and second). Returns `(rest, k)`, or `None` when a row is not such shares.
pub(super) fn shares(columns: &[Vec<i64>]) -> Option<(Vec<i64>, Vec<Vec<i64>>)> {
    let rows = columns.first()?.len();
    let mut rest = Vec::with_capacity(rows);
    let mut ks: Vec<Vec<i64>> = columns.iter().map(|_| Vec::with_capacity(rows)).collect();
    let mut row = vec![0i64; columns.len()];
    let mut total = 0i64;
    for i in 0..rows {
        for (v, c) in row.iter_mut().zip(columns) {
            *v = c[i];
            if !(0..=SHARES_SCALE).contains(v) {
                return None;
            }
        }
        // The total of the row before is the likeliest (a steady tick rate), or one near it (a
        // tick more or less, tickless accounting); the smallest that fits otherwise.
        let fits = |d: i64| {
            row.iter().all(|&v| {
                let k = round_div(i128::from(v) * i128::from(d), i128::from(SHARES_SCALE));
                round_div(k * i128::from(SHARES_SCALE), i128::from(d)) == i128::from(v)
            })
        };
        let near =
            (0..=2 * NEAR_TOTAL).map(|n| total + if n % 2 == 1 { n / 2 + 1 } else { -n / 2 });
        total = match near
            .filter(|&d| (1..=MAX_SHARES_TOTAL).contains(&d))
            .find(|&d| fits(d))
        {
            Some(d) => d,
            None => (1..=MAX_SHARES_TOTAL).find(|&d| fits(d))?,
        };
        let mut sum = 0i64;
        for (k, &v) in ks.iter_mut().zip(&row) {
            let kv = round_div(i128::from(v) * i128::from(total), i128::from(SHARES_SCALE)) as i64;
            sum += kv;
            k.push(kv);
        }
        rest.push(total - sum);
    }
    Some((rest, ks))
}
