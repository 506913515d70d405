//! The integer columns of a chunk (timestamps, intervals, fixed-point values): the encodings
//! of [`super`]'s format, the encoder that picks the smallest, and the bit-level helpers
//! (varints, zigzag, bit packing). Pure. Columns stored as what sar's values are made of
//! (version 3's rates, shares and sums) are [`super::derived`]'s.

use super::ChunkError;

pub(super) const MODE_CONST: u8 = 0;
pub(super) const MODE_DELTA_VARINT: u8 = 1;
pub(super) const MODE_DELTA_PACKED: u8 = 2;
pub(super) const MODE_FLOAT_XOR: u8 = 3;
pub(super) const MODE_BLOCKS: u8 = 4;
pub(super) const MODE_RUNS: u8 = 5;
pub(super) const MODE_VARINTS: u8 = 6;
pub(super) const MODE_RATE: u8 = 7;
pub(super) const MODE_SHARES: u8 = 8;
pub(super) const MODE_SUM: u8 = 9;

/// Values per block of [`MODE_BLOCKS`]: a multiple of 8, so every block is whole bytes.
pub(super) const BLOCK: usize = 128;

/// Memory the encoder reuses from one column to the next.
#[derive(Default)]
pub(super) struct Scratch {
    t: Vec<i64>,
    best: Vec<u8>,
    try_out: Vec<u8>,
}

/// Writes one integer column (format version 2): a constant as mode 0, otherwise whichever of
/// modes 4, 5 and 6 (each order) RocksDB's zstd should store smallest, by [`entropy_bytes`]:
/// zstd codes bytes by their frequency, so a column of mostly small deltas costs less as
/// varints (mode 6) than bit-packed at the width of its largest delta (mode 4).
///
/// Returns that estimate of its size (a constant: its bytes).
pub(super) fn put_int_column(out: &mut Vec<u8>, ns: &[i64], s: &mut Scratch) -> f64 {
    let n0 = ns[0];
    if ns.iter().all(|&n| n == n0) {
        let start = out.len();
        out.push(MODE_CONST);
        put_ivarint(out, n0);
        return (out.len() - start) as f64;
    }
    s.best.clear();
    put_runs(&mut s.best, ns);
    let mut best = entropy_bytes(&s.best);
    for order in 0..3u8 {
        if ns.len() <= usize::from(order) {
            break;
        }
        for mode in [MODE_VARINTS, MODE_BLOCKS] {
            s.try_out.clear();
            if mode == MODE_VARINTS {
                put_varints(&mut s.try_out, ns, order, &mut s.t);
            } else {
                put_blocks(&mut s.try_out, ns, order, &mut s.t);
            }
            let cost = entropy_bytes(&s.try_out);
            if cost < best {
                best = cost;
                std::mem::swap(&mut s.best, &mut s.try_out);
            }
        }
    }
    out.extend_from_slice(&s.best);
    best
}

/// What `bytes` cost coded by their frequency (order-0 entropy), plus a byte per 64 for what
/// that misses: an estimate of their size after zstd.
fn entropy_bytes(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let bits: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let c = f64::from(c);
            -c * (c / n).log2()
        })
        .sum();
    bits / 8.0 + n / 64.0
}

/// The terms of order `order` of `ns` into `t` (see [`put_blocks`]), their heads into `out`.
fn terms(out: &mut Vec<u8>, ns: &[i64], order: u8, t: &mut Vec<i64>) {
    t.clear();
    match order {
        0 => t.extend_from_slice(ns),
        1 => {
            put_ivarint(out, ns[0]);
            t.extend(ns.windows(2).map(|w| w[1].wrapping_sub(w[0])));
        }
        _ => {
            put_ivarint(out, ns[0]);
            put_ivarint(out, ns[1].wrapping_sub(ns[0]));
            t.extend(ns.windows(3).map(|w| {
                w[2].wrapping_sub(w[1])
                    .wrapping_sub(w[1].wrapping_sub(w[0]))
            }));
        }
    }
}

/// Mode 6: `order:u8` and heads as in mode 4 · `gcd:varint` of the terms themselves (0 when all
/// are 0) · `zz(term / gcd)` × terms.
pub(super) fn put_varints(out: &mut Vec<u8>, ns: &[i64], order: u8, t: &mut Vec<i64>) {
    out.push(MODE_VARINTS);
    out.push(order);
    terms(out, ns, order, t);
    let g = t.iter().fold(
        0u64,
        |g, &v| {
            if g == 1 {
                1
            } else {
                gcd(g, v.unsigned_abs())
            }
        },
    );
    put_uvarint(out, g);
    if g == 0 {
        return;
    }
    for &v in t.iter() {
        // i64::MIN / 1 is the one division that overflows: g == 1 leaves the term as it is.
        put_ivarint(out, if g == 1 { v } else { v / g as i64 });
    }
}

/// Mode 5: `runs:varint` then per run `zz(value - previous run's value)` (the first against 0)
/// and `varint(length - 1)`.
fn put_runs(out: &mut Vec<u8>, ns: &[i64]) {
    out.push(MODE_RUNS);
    let runs = 1 + ns.windows(2).filter(|w| w[0] != w[1]).count();
    put_uvarint(out, runs as u64);
    let mut prev = 0i64;
    let mut i = 0;
    while i < ns.len() {
        let v = ns[i];
        let len = ns[i..].iter().take_while(|&&n| n == v).count();
        put_ivarint(out, v.wrapping_sub(prev));
        put_uvarint(out, len as u64 - 1);
        prev = v;
        i += len;
    }
}

/// Mode 4: `order:u8` (0: the values, 1: their deltas, 2: their deltas of deltas) · the first
/// `order` values of the sequence as `zz` (n0; then n1 - n0) · `gcd:varint` (every term is
/// congruent to the first modulo it; 0 when all are equal) · blocks of [`BLOCK`] terms, each
/// `zz(min) · width:u8 (0..=64) · ((term - min) / gcd) packed LSB-first at width bits`.
pub(super) fn put_blocks(out: &mut Vec<u8>, ns: &[i64], order: u8, t: &mut Vec<i64>) {
    out.push(MODE_BLOCKS);
    out.push(order);
    terms(out, ns, order, t);
    let g = gcd_of_differences(t);
    put_uvarint(out, g);
    let mut packed = [0u64; BLOCK];
    for block in t.chunks(BLOCK) {
        let min = block.iter().copied().min().expect("chunks are not empty");
        let mut max = 0u64;
        for (p, &v) in packed.iter_mut().zip(block) {
            let d = v.wrapping_sub(min) as u64;
            *p = if g > 1 { d / g } else { d };
            max = max.max(*p);
        }
        let width = 64 - max.leading_zeros();
        put_ivarint(out, min);
        out.push(width as u8);
        if width > 0 {
            pack_bits(out, &packed[..block.len()], width);
        }
    }
}

/// The greatest common divisor of every `t[i] - t[0]` (0 when all are equal; 1 when a difference
/// overflows, which only extreme inputs have).
fn gcd_of_differences(t: &[i64]) -> u64 {
    let mut g = 0u64;
    for &v in &t[1..] {
        let Some(d) = v.checked_sub(t[0]) else {
            return 1;
        };
        g = gcd(g, d.unsigned_abs());
        if g == 1 {
            break;
        }
    }
    g
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What [`Reader::int_column`] read.
pub(super) enum Mode {
    /// A float column: its values follow.
    Float,
    /// A rate column (mode 7, version 3): its scale and two integer columns follow.
    Rate,
    /// Shares (mode 8, version 3): the chunk's columns follow, see
    /// [`shares`](super::derived::shares).
    Shares,
    /// A sum (mode 9, version 3): its masks and an integer column follow, see
    /// [`sum_masks`](super::derived::sum_masks).
    Sum,
    /// A constant column of this value.
    Const(i64),
    /// The values are in `ints`.
    Ints,
}

pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl Reader<'_> {
    pub(super) fn byte(&mut self) -> Result<u8, ChunkError> {
        let b = *self.buf.get(self.pos).ok_or(ChunkError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn uvarint(&mut self) -> Result<u64, ChunkError> {
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

    pub(super) fn ivarint(&mut self) -> Result<i64, ChunkError> {
        self.uvarint().map(unzigzag)
    }

    pub(super) fn u64_le(&mut self) -> Result<u64, ChunkError> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self, len: usize) -> Result<&[u8], ChunkError> {
        let end = self.pos.checked_add(len).ok_or(ChunkError::Truncated)?;
        let b = self.buf.get(self.pos..end).ok_or(ChunkError::Truncated)?;
        self.pos = end;
        Ok(b)
    }

    /// Reads an integer column into `ints` (only its value when it is constant), or only its
    /// mode byte when it is a float column (the caller then reads the floats). `version` 1
    /// knows modes 0 to 3, version 2 all.
    pub(super) fn int_column(
        &mut self,
        version: u8,
        rows: usize,
        ints: &mut Vec<i64>,
    ) -> Result<Mode, ChunkError> {
        ints.clear();
        let mode = self.byte()?;
        match mode {
            MODE_FLOAT_XOR => return Ok(Mode::Float),
            MODE_RATE if version >= 3 => return Ok(Mode::Rate),
            MODE_SHARES if version >= 3 => return Ok(Mode::Shares),
            MODE_SUM if version >= 3 => return Ok(Mode::Sum),
            MODE_BLOCKS if version >= 2 => {
                self.blocks(rows, ints)?;
                return Ok(Mode::Ints);
            }
            MODE_VARINTS if version >= 2 => {
                self.varints(rows, ints)?;
                return Ok(Mode::Ints);
            }
            MODE_RUNS if version >= 2 => {
                self.runs(rows, ints)?;
                return Ok(Mode::Ints);
            }
            _ => {}
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
                let packed = self.bytes(((rows - 1) * width as usize).div_ceil(8))?;
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

    /// Reads an integer column that must be one (not floats, a rate or shares) into `out`, a
    /// constant repeated.
    pub(super) fn ints(
        &mut self,
        version: u8,
        rows: usize,
        out: &mut Vec<i64>,
    ) -> Result<(), ChunkError> {
        match self.int_column(version, rows, out)? {
            Mode::Ints => Ok(()),
            Mode::Const(n) => {
                out.resize(rows, n);
                Ok(())
            }
            Mode::Float | Mode::Rate | Mode::Shares | Mode::Sum => {
                Err(ChunkError::Malformed("integer column expected"))
            }
        }
    }

    /// Mode 5 (see [`put_runs`]).
    fn runs(&mut self, rows: usize, ints: &mut Vec<i64>) -> Result<(), ChunkError> {
        let runs = self.uvarint()?;
        let mut v = 0i64;
        for _ in 0..runs {
            v = v.wrapping_add(self.ivarint()?);
            let len = self.uvarint()?;
            let room = (rows - ints.len()) as u64;
            if len >= room {
                return Err(ChunkError::Malformed("runs longer than the chunk"));
            }
            ints.resize(ints.len() + len as usize + 1, v);
        }
        if ints.len() != rows {
            return Err(ChunkError::Malformed("runs shorter than the chunk"));
        }
        Ok(())
    }

    /// The order and heads of modes 4 and 6, the heads pushed to `ints`.
    fn order_and_heads(
        &mut self,
        rows: usize,
        ints: &mut Vec<i64>,
    ) -> Result<(u8, [i64; 2]), ChunkError> {
        let order = self.byte()?;
        if order > 2 || usize::from(order) >= rows {
            return Err(ChunkError::Malformed("term order"));
        }
        let heads: [i64; 2] = match order {
            0 => [0, 0],
            1 => [self.ivarint()?, 0],
            _ => [self.ivarint()?, self.ivarint()?],
        };
        ints.reserve(rows);
        ints.extend_from_slice(&heads[..usize::from(order)]);
        Ok((order, heads))
    }

    /// Mode 6 (see [`put_varints`]).
    fn varints(&mut self, rows: usize, ints: &mut Vec<i64>) -> Result<(), ChunkError> {
        let (order, heads) = self.order_and_heads(rows, ints)?;
        let g = self.uvarint()?;
        let terms = rows - usize::from(order);
        if g == 0 {
            ints.resize(rows, 0);
        } else {
            for _ in 0..terms {
                ints.push(self.ivarint()?.wrapping_mul(g as i64));
            }
        }
        undo_terms(order, heads, ints);
        Ok(())
    }

    /// Mode 4 (see [`put_blocks`]).
    fn blocks(&mut self, rows: usize, ints: &mut Vec<i64>) -> Result<(), ChunkError> {
        // The terms first, transformed back in place below.
        let (order, heads) = self.order_and_heads(rows, ints)?;
        let g = self.uvarint()?;
        let terms = rows - usize::from(order);
        let mut left = terms;
        while left > 0 {
            let count = left.min(BLOCK);
            left -= count;
            let min = self.ivarint()?;
            let width = u32::from(self.byte()?);
            if width > 64 {
                return Err(ChunkError::Malformed("block width"));
            }
            if width == 0 {
                ints.resize(ints.len() + count, min);
                continue;
            }
            let packed = self.bytes((count * width as usize).div_ceil(8))?;
            unpack_bits(packed, width, count, |u| {
                ints.push(min.wrapping_add(u.wrapping_mul(g) as i64));
            });
        }
        undo_terms(order, heads, ints);
        Ok(())
    }

    pub(super) fn finish(&self) -> Result<(), ChunkError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(ChunkError::TrailingBytes(n)),
        }
    }
}

/// Turns the terms of order `order` in `ints` (after the heads) back into the values, in place.
fn undo_terms(order: u8, heads: [i64; 2], ints: &mut [i64]) {
    match order {
        0 => {}
        1 => {
            let mut n = heads[0];
            for v in &mut ints[1..] {
                n = n.wrapping_add(*v);
                *v = n;
            }
        }
        _ => {
            let (mut n, mut delta) = (heads[0].wrapping_add(heads[1]), heads[1]);
            ints[1] = n;
            for v in &mut ints[2..] {
                delta = delta.wrapping_add(*v);
                n = n.wrapping_add(delta);
                *v = n;
            }
        }
    }
}

pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(super) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

#[cfg(test)]
pub(super) fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

pub(super) fn pack_bits(out: &mut Vec<u8>, vals: &[u64], width: u32) {
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

pub(super) fn unpack_bits(packed: &[u8], width: u32, count: usize, mut f: impl FnMut(u64)) {
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
        let mut tail = [0u8; 16];
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
