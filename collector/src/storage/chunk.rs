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
//! # Format (version 2)
//!
//! All integers are LEB128 varints; signed ones are zigzag-mapped first (`zz`).
//!
//! ```text
//! chunk      := version:u8 (=2) · rows:varint · columns:varint · [body if rows > 0]
//! body       := int_column of time_ms · int_column of interval_ms · column × columns
//! column     := int_column of round(v * 100)  |  mode 3 (floats)
//! int_column := mode:u8 · payload
//!   mode 0  constant      zz(n0)                                  every row equal
//!   mode 3  float xor     varint(bits[i] ^ bits[i-1]) × rows, bits[-1] = 0
//!   mode 4  blocks        order:u8 · heads · gcd:varint · block × ceil((rows - order) / 128)
//!   mode 5  runs          runs:varint · (zz(value - previous value) · varint(length - 1)) × runs
//! ```
//!
//! Mode 4 stores a sequence of terms: the values themselves (order 0), their deltas (order 1,
//! heads `zz(n0)`) or their deltas of deltas (order 2, heads `zz(n0) · zz(n1 - n0)`). `gcd`
//! divides every difference between terms (sar's integer columns, stored ×100, have 100; the
//! agent's intervals, in whole centiseconds, 10; 0 when all terms are equal). Each block of
//! 128 terms (the last one shorter) is `zz(min) · width:u8 (0..=64)` and the terms'
//! `(term - min) / gcd` packed LSB-first at `width` bits each, in whole bytes: a burst widens
//! its own block only.
//!
//! The encoder picks, per column and per chunk, the smallest: a constant, runs (a column that
//! rarely changes), or blocks of whichever order packs tightest (a level that wanders: deltas;
//! a noisy rate: the values; a clock: deltas of deltas). Timestamps are a column like the others,
//! and since every series of a host shares them, the timestamp bytes of a host's chunks in one
//! window are identical: RocksDB's zstd, over blocks that hold several of them, stores them
//! about once.
//!
//! # Version 1
//!
//! Written before issue 16, still read: the same header, then the timestamps as
//! `zz(t0) · [zz(t1 - t0)] · zz(dod) × (rows - 2)`, then the intervals and columns with modes 0
//! to 3 only, where mode 1 is `zz(n0) · zz(n[i] - n[i-1]) × (rows - 1)` (delta varints) and
//! mode 2 `zz(n0) · width:u8 (1..=64)` and the `rows - 1` zigzag deltas packed LSB-first at
//! `width` bits in `ceil((rows - 1) · width / 8)` bytes. A late sample merged into a version 1
//! chunk rewrites it as version 2.
//!
//! Rows are stored in the order given; the store sorts them by time and keeps one row per
//! timestamp before encoding.

use thiserror::Error;

mod ints;

#[cfg(test)]
use ints::{pack_bits, unpack_bits, unzigzag, uvarint_len, zigzag};
use ints::{put_int_column, put_uvarint, Mode, Reader, Scratch, MODE_FLOAT_XOR};

/// The first byte of every chunk this release writes.
pub const CHUNK_VERSION: u8 = 2;
/// The version written before issue 16, still read.
pub const CHUNK_VERSION_1: u8 = 1;
/// The fixed-point scale: two decimals.
pub const SCALE: f64 = 100.0;
/// Largest `|v * SCALE|` stored as an integer: beyond 2^53 an f64 no longer holds every integer.
const MAX_FIXED: f64 = 9_007_199_254_740_992.0;
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
    let mut ints: Vec<i64> = rows.iter().map(|r| r.time_ms).collect();
    put_int_column(&mut out, &ints, &mut scratch);
    ints.clear();
    ints.extend(rows.iter().map(|r| i64::from(r.interval_ms)));
    put_int_column(&mut out, &ints, &mut scratch);

    for c in 0..width {
        ints.clear();
        let mut fixed = true;
        for r in rows {
            match to_fixed(r.values[c]) {
                Some(n) => ints.push(n),
                None => {
                    fixed = false;
                    break;
                }
            }
        }
        if fixed {
            put_int_column(&mut out, &ints, &mut scratch);
        } else {
            out.push(MODE_FLOAT_XOR);
            let mut prev_bits = 0u64;
            for r in rows {
                let bits = quantize(r.values[c]).to_bits();
                put_uvarint(&mut out, bits ^ prev_bits);
                prev_bits = bits;
            }
        }
    }
    Ok(out)
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
    let c = decode_columns(bytes)?;
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
    let mut r = Reader { buf: bytes, pos: 0 };
    let version = r.byte()?;
    if version != CHUNK_VERSION && version != CHUNK_VERSION_1 {
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
    // least one byte of timestamps; in version 2 every 128 rows cost at least two bytes of
    // timestamps (a block), so a header claiming more than the input can hold is corrupt:
    // checked before allocating anything.
    let max_rows = match version {
        CHUNK_VERSION_1 => bytes.len() + 2,
        _ => bytes.len().saturating_mul(64).saturating_add(2),
    };
    if rows > max_rows || width > bytes.len() {
        return Err(ChunkError::Truncated);
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
    } else {
        match r.int_column(version, rows, &mut ints)? {
            Mode::Float => return Err(ChunkError::Malformed("float mode for times")),
            Mode::Const(t) => out.times.resize(rows, t),
            Mode::Ints => std::mem::swap(&mut out.times, &mut ints),
        }
    }

    let interval = |n: i64| u32::try_from(n).map_err(|_| ChunkError::Malformed("interval_ms"));
    match r.int_column(version, rows, &mut ints)? {
        Mode::Float => return Err(ChunkError::Malformed("float mode for intervals")),
        Mode::Const(n) => out.intervals.resize(rows, interval(n)?),
        Mode::Ints => {
            for &n in &ints {
                out.intervals.push(interval(n)?);
            }
        }
    }
    for _ in 0..width {
        let column = match r.int_column(version, rows, &mut ints)? {
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
    r.finish()?;
    Ok(out)
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
mod tests;
