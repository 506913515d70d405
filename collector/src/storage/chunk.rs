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
//! # Format (version 1)
//!
//! All integers are LEB128 varints; signed ones are zigzag-mapped first (`zz`).
//!
//! ```text
//! chunk      := version:u8 (=1) · rows:varint · columns:varint · [body if rows > 0]
//! body       := times · intervals · column × columns
//! times      := zz(t0) · [zz(t1 - t0)] · zz(dod) × (rows - 2)     delta-of-delta, ms
//! intervals  := int_column of interval_ms
//! column     := int_column of round(v * 100)  |  mode 3 (floats)
//! int_column := mode:u8 · payload
//!   mode 0  constant      zz(n0)                                  every row equal
//!   mode 1  delta varint  zz(n0) · zz(n[i] - n[i-1]) × (rows - 1)
//!   mode 2  delta packed  zz(n0) · width:u8 (1..=64) · the (rows - 1) zigzag deltas packed
//!                         LSB-first at `width` bits each, in ceil((rows-1)·width/8) bytes
//!   mode 3  float xor     varint(bits[i] ^ bits[i-1]) × rows, bits[-1] = 0
//! ```
//!
//! The encoder picks, per column, mode 0 when every delta is zero, otherwise the smaller of
//! modes 1 and 2 (a column of large noisy deltas packs tighter at a fixed width; a column of
//! mostly-zero deltas with rare spikes is smaller as varints). RocksDB then compresses whole
//! blocks of chunks (zstd), which mostly removes the runs of zero bytes mode 1 leaves.
//!
//! Rows are stored in the order given; the store sorts them by time and keeps one row per
//! timestamp before encoding.

use thiserror::Error;

/// The first byte of every chunk.
pub const CHUNK_VERSION: u8 = 1;
/// The fixed-point scale: two decimals.
pub const SCALE: f64 = 100.0;
/// Largest `|v * SCALE|` stored as an integer: beyond 2^53 an f64 no longer holds every integer.
const MAX_FIXED: f64 = 9_007_199_254_740_992.0;
/// Most values (rows × columns) one chunk may hold; bounds what a corrupt header can allocate.
pub const MAX_CHUNK_VALUES: usize = 1 << 26;

const MODE_CONST: u8 = 0;
const MODE_DELTA_VARINT: u8 = 1;
const MODE_DELTA_PACKED: u8 = 2;
const MODE_FLOAT_XOR: u8 = 3;

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

    // Timestamps: delta of delta, wrapping so any i64 input encodes.
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, r) in rows.iter().enumerate() {
        match i {
            0 => put_ivarint(&mut out, r.time_ms),
            1 => {
                prev_delta = r.time_ms.wrapping_sub(prev);
                put_ivarint(&mut out, prev_delta);
            }
            _ => {
                let delta = r.time_ms.wrapping_sub(prev);
                put_ivarint(&mut out, delta.wrapping_sub(prev_delta));
                prev_delta = delta;
            }
        }
        prev = r.time_ms;
    }

    let mut ints: Vec<i64> = rows.iter().map(|r| i64::from(r.interval_ms)).collect();
    let mut scratch = Vec::with_capacity(rows.len());
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

/// Writes one integer column in the smallest of modes 0, 1, 2. `scratch` is reused memory.
fn put_int_column(out: &mut Vec<u8>, ns: &[i64], scratch: &mut Vec<u64>) {
    scratch.clear();
    scratch.extend(ns.windows(2).map(|w| zigzag(w[1].wrapping_sub(w[0]))));
    let max = scratch.iter().copied().max().unwrap_or(0);
    if max == 0 {
        out.push(MODE_CONST);
        put_ivarint(out, ns[0]);
        return;
    }
    let width = 64 - max.leading_zeros();
    let packed_len = 1 + (scratch.len() * width as usize).div_ceil(8);
    let varint_len: usize = scratch.iter().map(|&d| uvarint_len(d)).sum();
    if packed_len < varint_len {
        out.push(MODE_DELTA_PACKED);
        put_ivarint(out, ns[0]);
        out.push(width as u8);
        pack_bits(out, scratch, width);
    } else {
        out.push(MODE_DELTA_VARINT);
        put_ivarint(out, ns[0]);
        for &d in scratch.iter() {
            put_uvarint(out, d);
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
    if version != CHUNK_VERSION {
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
    // Each row after the second costs at least one byte of timestamps and each column at least
    // two bytes, so a header claiming more than the input can hold is corrupt: checked before
    // allocating anything.
    if rows > bytes.len() + 2 || width > bytes.len() {
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
        out.times.push(t);
    }

    let interval = |n: i64| u32::try_from(n).map_err(|_| ChunkError::Malformed("interval_ms"));
    let mut ints = Vec::with_capacity(rows);
    match r.int_column(rows, &mut ints)? {
        Mode::Float => return Err(ChunkError::Malformed("float mode for intervals")),
        Mode::Const(n) => out.intervals.resize(rows, interval(n)?),
        Mode::Ints => {
            for &n in &ints {
                out.intervals.push(interval(n)?);
            }
        }
    }
    for _ in 0..width {
        let column = match r.int_column(rows, &mut ints)? {
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

/// What [`Reader::int_column`] read.
enum Mode {
    /// A float column: its values follow.
    Float,
    /// A constant column of this value.
    Const(i64),
    /// The values are in `ints`.
    Ints,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, ChunkError> {
        let b = *self.buf.get(self.pos).ok_or(ChunkError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn uvarint(&mut self) -> Result<u64, ChunkError> {
        // Most varints of a chunk are one or two bytes (timestamps, deltas), mixed at random in a
        // noisy column: read without a branch on which, since a mispredicted branch costs more
        // than the decoding.
        if let Some(&[b0, b1]) = self.buf.get(self.pos..self.pos.saturating_add(2)) {
            let more = b0 >> 7;
            if (more == 0) | (b1 < 0x80) {
                self.pos += 1 + usize::from(more);
                return Ok(u64::from(b0 & 0x7f) | ((u64::from(b1) << 7) * u64::from(more)));
            }
        }
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(ChunkError::Malformed("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ChunkError::Malformed("varint longer than 10 bytes"))
    }

    fn ivarint(&mut self) -> Result<i64, ChunkError> {
        self.uvarint().map(unzigzag)
    }

    /// Reads an integer column into `ints` (only its value when it is constant), or only its
    /// mode byte when it is a float column (the caller then reads the floats).
    fn int_column(&mut self, rows: usize, ints: &mut Vec<i64>) -> Result<Mode, ChunkError> {
        ints.clear();
        let mode = self.byte()?;
        if mode == MODE_FLOAT_XOR {
            return Ok(Mode::Float);
        }
        let first = self.ivarint()?;
        if mode == MODE_CONST {
            return Ok(Mode::Const(first));
        }
        ints.push(first);
        match mode {
            MODE_DELTA_VARINT => {
                let mut n = first;
                for _ in 1..rows {
                    n = n.wrapping_add(unzigzag(self.uvarint()?));
                    ints.push(n);
                }
            }
            MODE_DELTA_PACKED => {
                let width = u32::from(self.byte()?);
                if !(1..=64).contains(&width) {
                    return Err(ChunkError::Malformed("packed width"));
                }
                let len = ((rows - 1) * width as usize).div_ceil(8);
                let end = self.pos.checked_add(len).ok_or(ChunkError::Truncated)?;
                let packed = self.buf.get(self.pos..end).ok_or(ChunkError::Truncated)?;
                self.pos = end;
                let mut n = first;
                unpack_bits(packed, width, rows - 1, |d| {
                    n = n.wrapping_add(unzigzag(d));
                    ints.push(n);
                });
            }
            _ => return Err(ChunkError::Malformed("unknown column mode")),
        }
        Ok(Mode::Ints)
    }

    fn finish(&self) -> Result<(), ChunkError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(ChunkError::TrailingBytes(n)),
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn pack_bits(out: &mut Vec<u8>, vals: &[u64], width: u32) {
    let mut acc: u128 = 0;
    let mut nbits = 0u32;
    for &v in vals {
        acc |= u128::from(v) << nbits;
        nbits += width;
        while nbits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    }
    if nbits > 0 {
        out.push(acc as u8);
    }
}

fn unpack_bits(packed: &[u8], width: u32, count: usize, mut f: impl FnMut(u64)) {
    if width > 56 {
        return unpack_bits_wide(packed, width, count, f);
    }
    // Each value lies within the 8 bytes from its first one (its shift is below 8, its width at
    // most 56): one little-endian load per value; the values whose 8 bytes run past the end are
    // read from a zero-padded copy of the last bytes.
    let mask = (1u64 << width) - 1;
    let width = width as usize;
    let whole = match packed.len().checked_sub(8) {
        Some(last) => (last * 8 / width + 1).min(count),
        None => 0,
    };
    let word_at = |bytes: &[u8], bit: usize| {
        let at = bit / 8;
        u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) >> (bit % 8)
    };
    for k in 0..whole {
        f(word_at(packed, k * width) & mask);
    }
    if whole < count {
        let from = whole * width / 8;
        let mut tail = vec![0u8; packed.len() - from + 8];
        tail[..packed.len() - from].copy_from_slice(&packed[from..]);
        for k in whole..count {
            f(word_at(&tail, k * width - from * 8) & mask);
        }
    }
}

/// [`unpack_bits`] for widths above 56 bits.
fn unpack_bits_wide(packed: &[u8], width: u32, count: usize, mut f: impl FnMut(u64)) {
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let mut acc: u128 = 0;
    let mut nbits = 0u32;
    let mut bytes = packed.iter();
    for _ in 0..count {
        while nbits < width {
            // The caller sized `packed` for `count` values, so this never runs dry.
            let b = bytes.next().copied().unwrap_or(0);
            acc |= u128::from(b) << nbits;
            nbits += 8;
        }
        f((acc as u64) & mask);
        acc >>= width;
        nbits -= width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: i64, iv: u32, values: &[f64]) -> Row {
        Row {
            time_ms: t,
            interval_ms: iv,
            values: values.to_vec(),
        }
    }

    fn same_bits(a: &[Row], b: &[Row]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.time_ms == y.time_ms
                    && x.interval_ms == y.interval_ms
                    && x.values.len() == y.values.len()
                    && x.values
                        .iter()
                        .zip(&y.values)
                        .all(|(p, q)| p.to_bits() == q.to_bits())
            })
    }

    #[test]
    fn two_decimal_values_round_trip_exactly() {
        let mut rows = Vec::new();
        let mut user = 12.34;
        for i in 0..500i64 {
            user = ((user + (i % 7) as f64 * 0.37 - 1.0) * 100.0).round() / 100.0;
            rows.push(row(
                1_700_000_000_000 + i * 10_000 + (i % 3),
                10_000 + (i % 5) as u32,
                &[
                    user,
                    0.0,
                    (9999 - (i % 50) * 100) as f64 / 100.0,
                    1e12 + i as f64,
                    -3.25,
                    (i * 1_000_003 % 99_991) as f64 / 100.0,
                ],
            ));
        }
        let bytes = encode(&rows).unwrap();
        assert_eq!(bytes[0], CHUNK_VERSION);
        let back = decode(&bytes).unwrap();
        assert!(back == rows, "round trip differs");
        assert!(bytes.len() < rows.len() * 6 * 2, "{} bytes", bytes.len());
    }

    #[test]
    fn columns_are_the_rows_transposed() {
        let rows: Vec<Row> = (0..50i64)
            .map(|i| {
                let odd = if i % 7 == 3 { f64::NAN } else { i as f64 * 1.5 };
                row(1_000 + i * 1_000, 1_000, &[i as f64 / 4.0, odd, 5.0])
            })
            .collect();
        let bytes = encode(&rows).unwrap();
        let c = decode_columns(&bytes).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(c.times, back.iter().map(|r| r.time_ms).collect::<Vec<_>>());
        assert_eq!(c.intervals, vec![1_000; 50]);
        assert_eq!(c.values.len(), 3);
        for (col, column) in c.values.iter().enumerate() {
            let from_rows: Vec<u64> = back.iter().map(|r| r.values[col].to_bits()).collect();
            let bits: Vec<u64> = (0..50).map(|i| column.value(i).to_bits()).collect();
            assert_eq!(bits, from_rows, "column {col}");
        }
        // Stored as they are: fixed-point, floats (the NaN), constant.
        assert!(matches!(&c.values[0], Column::Fixed(ns) if ns[4] == 100));
        assert!(matches!(&c.values[1], Column::Float(_)));
        assert_eq!(c.values[2], Column::Const(500));
        assert_eq!(
            decode_columns(&encode(&[]).unwrap()).unwrap(),
            Columns::default()
        );
        assert_eq!(
            decode_columns(&bytes[..bytes.len() - 1]),
            Err(ChunkError::Truncated)
        );
    }

    #[test]
    fn values_are_quantized_to_two_decimals() {
        let rows = vec![row(0, 1000, &[1.234_9, -0.005, 2.675, -0.0, 0.001])];
        let back = decode(&encode(&rows).unwrap()).unwrap();
        assert_eq!(back[0].values, vec![1.23, -0.01, 2.68, 0.0, 0.0]);
        assert!(back[0].values[3].is_sign_positive());
        for v in &rows[0].values {
            assert_eq!(quantize(*v).to_bits(), quantize(quantize(*v)).to_bits());
        }
        // The codec returns exactly what quantize promises.
        for (v, b) in rows[0].values.iter().zip(&back[0].values) {
            assert_eq!(quantize(*v).to_bits(), b.to_bits());
        }
    }

    #[test]
    fn non_finite_and_huge_values_round_trip_bit_for_bit() {
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        let rows = vec![
            row(10, 1, &[f64::NAN, 1.0, 1e300, 5.0]),
            row(20, 1, &[1.234_5, f64::INFINITY, -1e300, 5.0]),
            row(30, 1, &[nan, f64::NEG_INFINITY, 9.5e13, 5.0]),
        ];
        let back = decode(&encode(&rows).unwrap()).unwrap();
        let expected: Vec<Row> = rows
            .iter()
            .map(|r| Row {
                values: r.values.iter().map(|v| quantize(*v)).collect(),
                ..r.clone()
            })
            .collect();
        assert!(same_bits(&back, &expected), "{back:?}");
        assert_eq!(
            back[1].values[0], 1.23,
            "finite values of a float column are quantized"
        );
        assert_eq!(back[2].values[0].to_bits(), nan.to_bits());
        assert_eq!(quantize(f64::NAN).to_bits(), f64::NAN.to_bits());
    }

    #[test]
    fn empty_and_degenerate_chunks() {
        let empty = encode(&[]).unwrap();
        assert_eq!(empty, vec![CHUNK_VERSION, 0, 0]);
        assert_eq!(decode(&empty).unwrap(), vec![]);

        let one = vec![row(-5, 0, &[])];
        assert_eq!(decode(&encode(&one).unwrap()).unwrap(), one);

        let extremes = vec![
            row(i64::MIN, u32::MAX, &[9.0e13]),
            row(i64::MAX, 0, &[-9.0e13]),
            row(0, u32::MAX, &[9.0e13]),
            row(i64::MIN, 7, &[0.01]),
        ];
        assert_eq!(decode(&encode(&extremes).unwrap()).unwrap(), extremes);
    }

    #[test]
    fn ragged_rows_are_rejected() {
        let rows = vec![row(0, 1, &[1.0, 2.0]), row(1, 1, &[1.0])];
        assert_eq!(
            encode(&rows),
            Err(ChunkError::RaggedRows {
                row: 1,
                expected: 2,
                found: 1
            })
        );
    }

    #[test]
    fn packed_and_varint_modes_both_round_trip() {
        // Noisy column (packs) and a spiky one (varints).
        let rows: Vec<Row> = (0..300i64)
            .map(|i| {
                let noisy = ((i * 7919) % 2003) as f64 / 100.0;
                let spiky = if i % 100 == 0 { 1e9 } else { 0.0 };
                row(i * 1000, 1000, &[noisy, spiky])
            })
            .collect();
        let bytes = encode(&rows).unwrap();
        assert_eq!(decode(&bytes).unwrap(), rows);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let rows: Vec<Row> = (0..50i64)
            .map(|i| row(i * 1000, 1000, &[i as f64, 1.0, f64::NAN]))
            .collect();
        let good = encode(&rows).unwrap();
        assert_eq!(decode(&[]), Err(ChunkError::Truncated));
        assert_eq!(decode(&[9, 0, 0]), Err(ChunkError::UnknownVersion(9)));
        assert!(matches!(
            decode(&[CHUNK_VERSION, 0, 0, 0]),
            Err(ChunkError::TrailingBytes(1))
        ));
        // Huge claimed sizes fail before allocating.
        let mut huge = vec![CHUNK_VERSION];
        put_uvarint(&mut huge, u64::MAX);
        put_uvarint(&mut huge, u64::MAX);
        assert!(decode(&huge).is_err());
        // Every truncation and many byte flips: errors or (rarely) different rows, never a panic.
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= flip;
                let _ = decode(&bad);
            }
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(decode(&long), Err(ChunkError::TrailingBytes(1))));
    }

    #[test]
    fn bits_unpack_as_packed_at_every_width() {
        for width in 1..=64u32 {
            let mask = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            for count in [1usize, 2, 7, 8, 9, 63, 100] {
                let vals: Vec<u64> = (0..count as u64)
                    .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(width) & mask)
                    .collect();
                let mut packed = Vec::new();
                pack_bits(&mut packed, &vals, width);
                assert_eq!(packed.len(), (count * width as usize).div_ceil(8));
                let mut back = Vec::new();
                unpack_bits(&packed, width, count, |v| back.push(v));
                assert_eq!(back, vals, "width {width}, {count} values");
            }
        }
    }

    #[test]
    fn varint_helpers() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(b.len(), uvarint_len(v));
            let mut r = Reader { buf: &b, pos: 0 };
            assert_eq!(r.uvarint().unwrap(), v);
        }
        // Mixed lengths back to back, the buffer ending on each kind.
        let vals = [5u64, 300, 127, 128, 16_383, 16_384, 1, u64::MAX, 200, 3];
        for end in 1..=vals.len() {
            let mut b = Vec::new();
            for &v in &vals[..end] {
                put_uvarint(&mut b, v);
            }
            let mut r = Reader { buf: &b, pos: 0 };
            let back: Vec<u64> = (0..end).map(|_| r.uvarint().unwrap()).collect();
            assert_eq!(back, vals[..end]);
            assert_eq!(r.pos, b.len());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        let mut r = Reader {
            buf: &[0xff; 11],
            pos: 0,
        };
        assert!(r.uvarint().is_err());
    }
}
