//! The columnar chunk codec: all rows of one series (host, activity, instance) in one window,
//! in one compact value. Pure: bytes in, rows out.
//!
//! # Precision
//!
//! sar prints two decimals, so values are stored as fixed-point integers `round(v * 100)`:
//! reading returns [`quantize`]`(v)`, the value rounded to the nearest hundredth (ties away
//! from zero), which is exact for any value that already had at most two decimals. `-0.0` reads
//! back as `0.0`. The store applies the same [`quantize`] to rows it has not sealed yet, so a
//! query returns the same numbers before and after sealing.
//!
//! Values that have no fixed-point form — NaN, ±infinity, and magnitudes above 2^53 / 100
//! (≈ 9·10^13) — are not rejected and not clamped: a column holding any of them is stored as
//! raw IEEE-754 bits instead (mode 3 below), so they round-trip bit for bit (the other values of
//! that column are still quantized first, so the result never depends on the chosen mode).
//!
//! # Format (version 3)
//!
//! All integers are LEB128 varints; signed ones are zigzag-mapped first (`zz`).
//!
//! ```text
//! chunk      := version:u8 (=3) · rows:varint · columns:varint · [body if rows > 0]
//! body       := times · column × columns
//!             | times · 8:u8 · int_column of rest · int_column of k × columns      shares
//! times      := 0:u8 · int_column of time_ms · int_column of interval_ms    inline
//!             | 1:u8 · id:u64 (little-endian)                              shared: times chunk `id`
//! column     := int_column of round(v * 100)  |  mode 3 (floats)  |  rate  |  sum
//! rate       := 7:u8 · scale:varint · int_column of k · int_column of residual
//! sum        := 9:u8 · plus:varint · minus:varint · int_column of s
//! int_column := mode:u8 · payload
//!   mode 0  constant      zz(n0)                                  every row equal
//!   mode 3  float xor     varint(bits[i] ^ bits[i-1]) × rows, bits[-1] = 0
//!   mode 4  blocks        order:u8 · heads · gcd:varint · block × ceil((rows - order) / 128)
//!   mode 5  runs          runs:varint · (zz(value - previous value) · varint(length - 1)) × runs
//!   mode 6  varints       order:u8 · heads · gcd:varint · zz(term / gcd) × (rows - order)
//! ```
//!
//! Modes 4 and 6 store a sequence of terms: the values themselves (order 0), their deltas
//! (order 1, heads `zz(n0)`) or their deltas of deltas (order 2, heads `zz(n0) · zz(n1 - n0)`).
//! In mode 6, `gcd` divides every term (sar's integer columns, stored ×100, have 100; the
//! agent's intervals, in whole centiseconds, 10; 0 when all terms are 0, then nothing follows).
//! In mode 4, `gcd` divides every difference between terms (0 when all are equal); each block
//! of 128 terms (the last one shorter) is `zz(min) · width:u8 (0..=64)` and the terms'
//! `(term - min) / gcd` packed LSB-first at `width` bits each, in whole bytes: a burst widens
//! its own block only.
//!
//! A rate column (mode 7) holds the counts a rate was computed from: value `i` is
//! `round(k[i] · scale / interval_ms[i]) + residual[i]` (rounding to nearest, ties up, on 128-bit
//! integers; `scale` 100,000 for a count per second, 50,000 for kB/s of 512-byte sectors). sar's
//! `/s` columns are counts over the interval: at 1 s two consecutive counts are about 100
//! hundredths apart, so a count costs about 6.6 bits less than its rate, and the residuals are
//! all 0 (a constant). A chunk of shares (mode 8, in place of the first column's mode) holds
//! each row as the integer parts of a whole: value `j` of row `i` is
//! `round(k[j][i] · 10000 / total[i])` with `total[i] = rest[i] + Σ_j k[j][i]` (above 0): sar's
//! CPU percentages are jiffies over the jiffies of the interval, so the chunk stores the jiffies
//! (the encoder finds, per row, the smallest total up to 2048 that gives back every value).
//!
//! A sum column (mode 9) holds `s = v[c] + Σ_{j in plus} v[j] - Σ_{j in minus} v[j]` (wrapping
//! 64-bit arithmetic), `plus` and `minus` bit masks of other columns (below 64) that are
//! integer columns and not sums themselves: sar's `kbmemused` is the total less `kbmemfree`,
//! `kbbuffers`, `kbcached` and the slab, so their sum moves with the slab alone; `%system` plus
//! the other CPU columns is 100 % give or take the rounding; `tps` less `rtps`, `wtps` and
//! `dtps` is about 0. The encoder picks the masks greedily (up to three columns, each cutting
//! the sum of the absolute differences between neighbours by a tenth) and keeps a rate, a sum
//! or shares only when it should be smaller after zstd than the plain column (a rate or a sum:
//! by 3 %; shares: than all the columns).
//!
//! The encoder picks, per column and per chunk, a constant when it is one, otherwise the
//! encoding that RocksDB's zstd should store smallest, by the entropy of its bytes: runs (a
//! column that rarely changes), varints or bit-packed blocks of whichever order suits (a level
//! that wanders: deltas; a noisy rate: the values; a clock: deltas of deltas). Since zstd codes
//! bytes by their frequency, varints of mostly small terms usually beat bit-packing at the width
//! of the largest (on the store benchmark's recorded data, version 1's delta varints took 0.46
//! bytes per value on disk, bit-packed blocks 0.51, this choice with shared times 0.35).
//!
//! # Shared times
//!
//! Every series of a host has the same timestamps and intervals (one sample holds all its
//! records), which at 1 s cost about as much as the values of a series of seven columns. So the
//! store writes them once per host and window, as a *times chunk*: a chunk with no columns and
//! inline times, whose id is the FNV-1a hash of its bytes ([`encode_shared`]); each series chunk
//! then holds that id instead of its times. A times chunk is never rewritten, since its id is
//! its content: when late data changes the times of some series, they refer to a new one and
//! the others keep theirs. [`times_id`] reads the id, and [`decode_columns_with`] takes the
//! decoded times chunk. Where the store keeps times chunks is in `samples.rs`.
//!
//! # Versions 1 and 2
//!
//! Version 2 (before rates and shares) is version 3 without modes 7 and 8: still read.
//!
//!
//! Written before issue 16, still read: the same header, then the timestamps as
//! `zz(t0) · [zz(t1 - t0)] · zz(dod) × (rows - 2)`, then the intervals and columns with modes 0
//! to 3 only, where mode 1 is `zz(n0) · zz(n[i] - n[i-1]) × (rows - 1)` (delta varints) and
//! mode 2 `zz(n0) · width:u8 (1..=64)` and the `rows - 1` zigzag deltas packed LSB-first at
//! `width` bits in `ceil((rows - 1) · width / 8)` bytes. A late sample merged into a version 1
//! or 2 chunk rewrites it as version 3.
//!
//! Rows are stored in the order given; the store sorts them by time and keeps one row per
//! timestamp before encoding.

use thiserror::Error;

mod derived;
mod ints;

use derived::{put_rate_column, rate_value_by, shares, sum_masks, Divisor, SHARES_SCALE};
#[cfg(test)]
use ints::{pack_bits, unpack_bits, unzigzag, uvarint_len, zigzag};
use ints::{
    put_int_column, put_uvarint, Mode, Reader, Scratch, MODE_FLOAT_XOR, MODE_SHARES, MODE_SUM,
};

/// The first byte of every chunk this release writes.
pub const CHUNK_VERSION: u8 = 3;
/// The version written before rates and shares (modes 7 and 8), still read.
pub const CHUNK_VERSION_2: u8 = 2;
/// The version written before issue 16, still read.
pub const CHUNK_VERSION_1: u8 = 1;
/// The fixed-point scale: two decimals.
pub const SCALE: f64 = 100.0;
/// Largest `|v * SCALE|` stored as an integer: beyond 2^53 an f64 no longer holds every integer.
const MAX_FIXED: f64 = 9_007_199_254_740_992.0;
/// The times of a version 2 chunk follow its header.
const TIMES_INLINE: u8 = 0;
/// The times of a version 2 chunk are those of the times chunk it names.
const TIMES_SHARED: u8 = 1;
/// Most values (rows × columns) one chunk may hold; bounds what a corrupt header can allocate.
pub const MAX_CHUNK_VALUES: usize = 1 << 26;

/// One row of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub time_ms: i64,
    pub interval_ms: u32,
    pub values: Vec<f64>,
}

/// A chunk that cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkError {
    #[error("unknown chunk version {0}")]
    UnknownVersion(u8),
    #[error("chunk truncated")]
    Truncated,
    #[error("chunk malformed: {0}")]
    Malformed(&'static str),
    #[error("{0} trailing bytes after the chunk")]
    TrailingBytes(usize),
    #[error("row {row} has {found} values, the first row has {expected}")]
    RaggedRows {
        row: usize,
        expected: usize,
        found: usize,
    },
    #[error("chunk of {0} values exceeds the limit")]
    TooLarge(usize),
    #[error("the chunk's times are in times chunk {0:016x}, not given")]
    MissingTimes(u64),
}

/// `v` as the store returns it: rounded to two decimals when it has a fixed-point form,
/// unchanged otherwise (NaN, ±inf, |v| > 2^53 / 100). See the module doc.
pub fn quantize(v: f64) -> f64 {
    match to_fixed(v) {
        Some(n) => fixed_value(n),
        None => v,
    }
}

fn to_fixed(v: f64) -> Option<i64> {
    let scaled = (v * SCALE).round();
    // NaN fails the comparison; infinities exceed the bound.
    if scaled.abs() <= MAX_FIXED {
        Some(scaled as i64)
    } else {
        None
    }
}

/// Encodes `rows` (all with the same number of values).
///
/// # Errors
/// [`ChunkError::RaggedRows`] if the rows differ in width, [`ChunkError::TooLarge`] beyond
/// [`MAX_CHUNK_VALUES`].
pub fn encode(rows: &[Row]) -> Result<Vec<u8>, ChunkError> {
    encode_inner(rows, None)
}

/// A times chunk: the timestamps and intervals of rows, as a chunk without columns, that series
/// chunks of the same host and window refer to by `id` (see "Shared times" in the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimesChunk {
    pub id: u64,
    pub bytes: Vec<u8>,
}

/// Encodes `rows` as a series chunk that refers to a times chunk for its timestamps and
/// intervals, and that times chunk (which other series with the same times share). Rows
/// without any: a chunk of its own, as [`encode`].
///
/// # Errors
/// As [`encode`].
pub fn encode_shared(rows: &[Row]) -> Result<(Vec<u8>, Option<TimesChunk>), ChunkError> {
    if rows.is_empty() {
        return encode(rows).map(|b| (b, None));
    }
    let bare: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            time_ms: r.time_ms,
            interval_ms: r.interval_ms,
            values: Vec::new(),
        })
        .collect();
    let bytes = encode(&bare)?;
    let times = TimesChunk {
        id: fnv1a(&bytes),
        bytes,
    };
    encode_inner(rows, Some(times.id)).map(|b| (b, Some(times)))
}

/// FNV-1a, 64 bits: a times chunk's id. Stable across releases (it is stored).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// [`encode`], with the times inline, or a reference to the times chunk `shared`.
fn encode_inner(rows: &[Row], shared: Option<u64>) -> Result<Vec<u8>, ChunkError> {
    let width = rows.first().map_or(0, |r| r.values.len());
    for (i, r) in rows.iter().enumerate() {
        if r.values.len() != width {
            return Err(ChunkError::RaggedRows {
                row: i,
                expected: width,
                found: r.values.len(),
            });
        }
    }
    let total = rows.len().saturating_mul(width.max(1));
    if total > MAX_CHUNK_VALUES {
        return Err(ChunkError::TooLarge(total));
    }

    let mut out = Vec::with_capacity(16 + rows.len() * (3 + width * 2));
    out.push(CHUNK_VERSION);
    put_uvarint(&mut out, rows.len() as u64);
    put_uvarint(&mut out, width as u64);
    if rows.is_empty() {
        return Ok(out);
    }

    let mut scratch = Scratch::default();
    let mut ints: Vec<i64> = Vec::with_capacity(rows.len());
    if let Some(id) = shared {
        out.push(TIMES_SHARED);
        out.extend_from_slice(&id.to_le_bytes());
    } else {
        out.push(TIMES_INLINE);
        ints.extend(rows.iter().map(|r| r.time_ms));
        put_int_column(&mut out, &ints, &mut scratch);
        ints.clear();
        ints.extend(rows.iter().map(|r| i64::from(r.interval_ms)));
        put_int_column(&mut out, &ints, &mut scratch);
    }

    let intervals: Vec<u32> = rows.iter().map(|r| r.interval_ms).collect();
    let fixed: Vec<Option<Vec<i64>>> = (0..width)
        .map(|c| rows.iter().map(|r| to_fixed(r.values[c])).collect())
        .collect();
    // Each column's bytes and their estimated size after zstd.
    let mut parts: Vec<(Vec<u8>, f64)> = Vec::with_capacity(width);
    let mut plain = Vec::new();
    for (c, column) in fixed.iter().enumerate() {
        let Some(ns) = column else {
            let mut body = vec![MODE_FLOAT_XOR];
            let mut prev_bits = 0u64;
            for r in rows {
                let bits = quantize(r.values[c]).to_bits();
                put_uvarint(&mut body, bits ^ prev_bits);
                prev_bits = bits;
            }
            parts.push((body, f64::INFINITY));
            continue;
        };
        plain.clear();
        let plain_cost = put_int_column(&mut plain, ns, &mut scratch);
        let mut rate = Vec::new();
        parts.push(
            match put_rate_column(&mut rate, ns, &intervals, plain_cost, &mut scratch) {
                Some(rate_cost) => (rate, rate_cost),
                None => (plain.clone(), plain_cost),
            },
        );
    }
    put_sums(&fixed, &mut parts, &mut scratch);
    let cost: f64 = parts.iter().map(|p| p.1).sum();
    let mut body: Vec<u8> = parts.into_iter().flat_map(|p| p.0).collect();
    if width >= 2 && cost.is_finite() {
        let columns: Vec<Vec<i64>> = fixed.into_iter().flatten().collect();
        if let Some((rest, ks)) = shares(&columns) {
            let mut alt = vec![MODE_SHARES];
            let mut alt_cost = 1.0 + put_int_column(&mut alt, &rest, &mut scratch);
            for k in &ks {
                alt_cost += put_int_column(&mut alt, k, &mut scratch);
            }
            if alt_cost < cost {
                body = alt;
            }
        }
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// Replaces, in `parts`, the columns that cost less as a sum with others (mode 9; see
/// [`sum_masks`]), costliest first: a column summed with others is not summed itself, and one
/// that others are summed with is not replaced.
fn put_sums(fixed: &[Option<Vec<i64>>], parts: &mut [(Vec<u8>, f64)], s: &mut Scratch) {
    let mut usable: Vec<bool> = fixed
        .iter()
        .map(|c| c.as_ref().is_some_and(|ns| ns.iter().any(|&n| n != ns[0])))
        .collect();
    let mut order: Vec<usize> = (0..fixed.len().min(64)).filter(|&c| usable[c]).collect();
    order.sort_by(|&a, &b| parts[b].1.total_cmp(&parts[a].1));
    let mut summed_with = 0u64;
    for c in order {
        if summed_with >> c & 1 == 1 {
            continue;
        }
        usable[c] = false;
        let Some((plus, minus)) = sum_masks(fixed, c, &usable) else {
            usable[c] = true;
            continue;
        };
        let mut sum = fixed[c].clone().expect("usable columns are integers");
        for (j, column) in fixed.iter().enumerate().take(64) {
            let Some(ns) = column.as_ref().filter(|_| (plus | minus) >> j & 1 == 1) else {
                continue;
            };
            for (a, &b) in sum.iter_mut().zip(ns) {
                *a = if minus >> j & 1 == 1 {
                    a.wrapping_sub(b)
                } else {
                    a.wrapping_add(b)
                };
            }
        }
        let mut bytes = vec![MODE_SUM];
        put_uvarint(&mut bytes, plus);
        put_uvarint(&mut bytes, minus);
        let cost = bytes.len() as f64 + put_int_column(&mut bytes, &sum, s);
        if cost < parts[c].1 * 0.97 {
            parts[c] = (bytes, cost);
            summed_with |= plus | minus;
        } else {
            usable[c] = true;
        }
    }
}

/// A chunk's rows as columns: row `i` is `times[i]`, `intervals[i]` and `values[c].value(i)`
/// for each column `c`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    pub times: Vec<i64>,
    pub intervals: Vec<u32>,
    pub values: Vec<Column>,
}

/// One column of a chunk as it is stored: a reader that aggregates can work on the fixed-point
/// integers, and on a constant column once.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Every row holds this fixed-point value (see [`fixed_value`]).
    Const(i64),
    /// One fixed-point value per row.
    Fixed(Vec<i64>),
    /// One value per row, as stored (a column holding a value without a fixed-point form).
    Float(Vec<f64>),
}

impl Column {
    /// Row `i`'s value, as [`decode`] returns it.
    pub fn value(&self, i: usize) -> f64 {
        match self {
            Column::Const(n) => fixed_value(*n),
            Column::Fixed(ns) => fixed_value(ns[i]),
            Column::Float(vs) => vs[i],
        }
    }
}

/// The value a fixed-point integer stands for: `n / 100`, exactly what [`quantize`] returns for
/// the value it was made from.
pub fn fixed_value(n: i64) -> f64 {
    n as f64 / SCALE
}

/// Decodes a chunk into rows.
///
/// # Errors
/// As [`decode_columns`].
pub fn decode(bytes: &[u8]) -> Result<Vec<Row>, ChunkError> {
    decode_with(bytes, None)
}

/// Decodes a chunk into rows, with the decoded times chunk it refers to, if any.
///
/// # Errors
/// As [`decode_columns_with`].
pub fn decode_with(bytes: &[u8], times: Option<&Columns>) -> Result<Vec<Row>, ChunkError> {
    let c = decode_columns_with(bytes, times)?;
    Ok(c.times
        .iter()
        .zip(&c.intervals)
        .enumerate()
        .map(|(i, (&time_ms, &interval_ms))| Row {
            time_ms,
            interval_ms,
            values: c.values.iter().map(|column| column.value(i)).collect(),
        })
        .collect())
}

/// Decodes a chunk into columns, the layout it is stored in: what a reader that aggregates
/// each column (the downsampled query) wants, without a vector per row.
///
/// # Errors
/// [`ChunkError`] for an unknown version, truncated or malformed input, or trailing bytes; never
/// panics on any input.
pub fn decode_columns(bytes: &[u8]) -> Result<Columns, ChunkError> {
    decode_columns_with(bytes, None)
}

/// The id of the times chunk a chunk refers to, or `None` when its times are its own.
///
/// # Errors
/// As [`decode_columns`], for its header.
pub fn times_id(bytes: &[u8]) -> Result<Option<u64>, ChunkError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.byte()?;
    if version == CHUNK_VERSION_1 {
        return Ok(None);
    }
    if !(CHUNK_VERSION_2..=CHUNK_VERSION).contains(&version) {
        return Err(ChunkError::UnknownVersion(version));
    }
    if r.uvarint()? == 0 {
        return Ok(None);
    }
    r.uvarint()?;
    match r.byte()? {
        TIMES_INLINE => Ok(None),
        TIMES_SHARED => Ok(Some(r.u64_le()?)),
        _ => Err(ChunkError::Malformed("times kind")),
    }
}

/// [`decode_columns`] of a chunk that may refer to a times chunk: `times`, that times chunk
/// decoded (see [`times_id`]).
///
/// # Errors
/// As [`decode_columns`]; [`ChunkError::MissingTimes`] when the chunk refers to a times chunk
/// and `times` is `None`, [`ChunkError::Malformed`] when `times` has another number of rows.
pub fn decode_columns_with(bytes: &[u8], times: Option<&Columns>) -> Result<Columns, ChunkError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.byte()?;
    if !(CHUNK_VERSION_1..=CHUNK_VERSION).contains(&version) {
        return Err(ChunkError::UnknownVersion(version));
    }
    let rows = usize::try_from(r.uvarint()?).map_err(|_| ChunkError::Malformed("row count"))?;
    let width = usize::try_from(r.uvarint()?).map_err(|_| ChunkError::Malformed("column count"))?;
    if rows == 0 {
        if width != 0 {
            return Err(ChunkError::Malformed("columns without rows"));
        }
        return r.finish().map(|()| Columns::default());
    }
    // Each column costs at least two bytes, and in version 1 each row after the second at
    // least one byte of timestamps, so a header claiming more than the input can hold is
    // corrupt: checked before allocating anything. Version 2 can hold many rows in a few bytes
    // (times at a steady step, a constant), so only MAX_CHUNK_VALUES bounds its rows.
    let max_rows = match version {
        CHUNK_VERSION_1 => bytes.len() + 2,
        _ => MAX_CHUNK_VALUES,
    };
    if width > bytes.len() {
        return Err(ChunkError::Truncated);
    }
    let kind = if version == CHUNK_VERSION_1 {
        TIMES_INLINE
    } else {
        r.byte()?
    };
    match kind {
        TIMES_INLINE if rows > max_rows => return Err(ChunkError::Truncated),
        TIMES_INLINE => {}
        TIMES_SHARED => {
            let id = r.u64_le()?;
            let t = times.ok_or(ChunkError::MissingTimes(id))?;
            if t.times.len() != rows || t.intervals.len() != rows {
                return Err(ChunkError::Malformed("times chunk of another row count"));
            }
        }
        _ => return Err(ChunkError::Malformed("times kind")),
    }
    let total = rows.saturating_mul(width.max(1));
    if total > MAX_CHUNK_VALUES {
        return Err(ChunkError::TooLarge(total));
    }

    let mut out = Columns {
        times: Vec::with_capacity(rows),
        intervals: Vec::with_capacity(rows),
        values: Vec::with_capacity(width),
    };
    let mut ints = Vec::with_capacity(rows);
    if version == CHUNK_VERSION_1 {
        read_v1_times(&mut r, rows, &mut out.times)?;
    } else if let (TIMES_SHARED, Some(t)) = (kind, times) {
        out.times.extend_from_slice(&t.times);
        out.intervals.extend_from_slice(&t.intervals);
    } else {
        r.ints(version, rows, &mut out.times)?;
    }

    let interval = |n: i64| u32::try_from(n).map_err(|_| ChunkError::Malformed("interval_ms"));
    if kind == TIMES_INLINE {
        r.ints(version, rows, &mut ints)?;
        for &n in &ints {
            out.intervals.push(interval(n)?);
        }
    }
    // Mode 9 columns: index and masks; their values are the sums until all columns are read.
    let mut sums: Vec<(usize, u64, u64)> = Vec::new();
    let mut divisors = Vec::new();
    while out.values.len() < width {
        let column = match r.int_column(version, rows, &mut ints)? {
            Mode::Sum => {
                let (plus, minus) = (r.uvarint()?, r.uvarint()?);
                sums.push((out.values.len(), plus, minus));
                let mut sum = Vec::with_capacity(rows);
                r.ints(version, rows, &mut sum)?;
                Column::Fixed(sum)
            }
            Mode::Rate => Column::Fixed(read_rate(&mut r, version, &out.intervals, &mut divisors)?),
            Mode::Shares if out.values.is_empty() && width >= 2 => {
                read_shares(&mut r, version, rows, width, &mut out.values)?;
                break;
            }
            Mode::Shares => return Err(ChunkError::Malformed("shares after a column")),
            Mode::Float => {
                let mut column = Vec::with_capacity(rows);
                let mut bits = 0u64;
                for _ in 0..rows {
                    bits ^= r.uvarint()?;
                    column.push(f64::from_bits(bits));
                }
                Column::Float(column)
            }
            Mode::Const(n) => Column::Const(n),
            Mode::Ints => Column::Fixed(std::mem::replace(&mut ints, Vec::with_capacity(rows))),
        };
        out.values.push(column);
    }
    undo_sums(&sums, &mut out.values)?;
    r.finish()?;
    Ok(out)
}

/// Turns the mode 9 columns of `values` (`sums`: index, plus and minus masks) from their sums
/// back into their values.
fn undo_sums(sums: &[(usize, u64, u64)], values: &mut [Column]) -> Result<(), ChunkError> {
    let mut summed = 0u64;
    for &(c, _, _) in sums {
        summed |= u32::try_from(c)
            .ok()
            .and_then(|c| 1u64.checked_shl(c))
            .ok_or(ChunkError::Malformed("sum column index"))?;
    }
    for &(c, plus, minus) in sums {
        let others = plus | minus;
        if plus & minus != 0
            || others & summed != 0
            || (values.len() < 64 && others >> values.len() != 0)
        {
            return Err(ChunkError::Malformed("sum masks"));
        }
        let mut column = match std::mem::replace(&mut values[c], Column::Const(0)) {
            Column::Fixed(ns) => ns,
            _ => return Err(ChunkError::Malformed("sum column")),
        };
        for (j, other) in values.iter().enumerate().take(64) {
            if others >> j & 1 == 0 {
                continue;
            }
            let negative = minus >> j & 1 == 1;
            let undo = |a: &mut i64, b: i64| {
                *a = if negative {
                    a.wrapping_add(b)
                } else {
                    a.wrapping_sub(b)
                }
            };
            match other {
                Column::Const(n) => column.iter_mut().for_each(|a| undo(a, *n)),
                Column::Fixed(ns) => column.iter_mut().zip(ns).for_each(|(a, &b)| undo(a, b)),
                Column::Float(_) => return Err(ChunkError::Malformed("sum with floats")),
            }
        }
        values[c] = Column::Fixed(column);
    }
    Ok(())
}

/// Reads the rest of a mode 7 column (see `put_rate_column`), its values computed over
/// `intervals`.
fn read_rate(
    r: &mut Reader<'_>,
    version: u8,
    intervals: &[u32],
    divisors: &mut Vec<Option<Divisor>>,
) -> Result<Vec<i64>, ChunkError> {
    let scale = i64::try_from(r.uvarint()?).map_err(|_| ChunkError::Malformed("rate scale"))?;
    let rows = intervals.len();
    let mut ks = Vec::with_capacity(rows);
    r.ints(version, rows, &mut ks)?;
    let mut residuals = Vec::with_capacity(rows);
    r.ints(version, rows, &mut residuals)?;
    // Every rate column of the chunk divides by the same intervals: their reciprocals once.
    if divisors.is_empty() {
        divisors.extend(
            intervals
                .iter()
                .map(|&i| (i > 0).then(|| Divisor::new(i128::from(i)))),
        );
    }
    ks.iter()
        .zip(&residuals)
        .zip(divisors.iter())
        .map(|((&k, &res), &d)| {
            d.and_then(|d| rate_value_by(k, scale, d))
                .map(|p| p.wrapping_add(res))
                .ok_or(ChunkError::Malformed("rate out of range"))
        })
        .collect()
}

/// Reads the columns of a mode 8 chunk (see `shares`) into `values`.
fn read_shares(
    r: &mut Reader<'_>,
    version: u8,
    rows: usize,
    width: usize,
    values: &mut Vec<Column>,
) -> Result<(), ChunkError> {
    let mut rest = Vec::with_capacity(rows);
    r.ints(version, rows, &mut rest)?;
    let mut ks = Vec::with_capacity(width);
    for _ in 0..width {
        let mut k = Vec::with_capacity(rows);
        r.ints(version, rows, &mut k)?;
        ks.push(k);
    }
    let mut totals: Vec<i128> = rest.iter().map(|&n| i128::from(n)).collect();
    for k in &ks {
        for (t, &n) in totals.iter_mut().zip(k) {
            *t += i128::from(n);
        }
    }
    if totals.iter().any(|&t| t <= 0) {
        return Err(ChunkError::Malformed("shares of a total not above 0"));
    }
    let totals: Vec<Divisor> = totals.into_iter().map(Divisor::new).collect();
    for mut k in ks {
        for (v, &t) in k.iter_mut().zip(&totals) {
            let n = t.round(i128::from(*v) * i128::from(SHARES_SCALE));
            *v = i64::try_from(n).map_err(|_| ChunkError::Malformed("share out of range"))?;
        }
        values.push(Column::Fixed(k));
    }
    Ok(())
}

/// Reads version 1's timestamps (see the module doc).
fn read_v1_times(r: &mut Reader<'_>, rows: usize, times: &mut Vec<i64>) -> Result<(), ChunkError> {
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for i in 0..rows {
        let t = match i {
            0 => r.ivarint()?,
            1 => {
                prev_delta = r.ivarint()?;
                prev.wrapping_add(prev_delta)
            }
            _ => {
                prev_delta = prev_delta.wrapping_add(r.ivarint()?);
                prev.wrapping_add(prev_delta)
            }
        };
        prev = t;
        times.push(t);
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests;
