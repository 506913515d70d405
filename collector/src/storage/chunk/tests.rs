//! Tests of the chunk codec.

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

/// The rows of [`V1_CHUNK`]: mixed columns (a two-decimal walk, a large integer, zeros, a spike, a
/// float column with a NaN, a negative constant, noise), times with jitter, intervals in steps
/// of 10 ms.
pub(crate) fn v1_rows() -> Vec<Row> {
    (0..40i64)
        .map(|i| Row {
            time_ms: 1_700_000_000_000 + i * 1000 + (i * 7) % 5,
            interval_ms: 1000 + ((i % 3) as u32) * 10,
            values: vec![
                (i * 37 % 101) as f64 / 4.0,
                2_000_000.0 + (i * i) as f64,
                0.0,
                if i == 17 { 3.5 } else { 0.0 },
                if i == 5 { f64::NAN } else { i as f64 * 1.25 },
                -1.5,
                ((i * 7919) % 2003) as f64 / 100.0,
            ],
        })
        .collect()
}

/// `encode(&v1_rows())` as the version 1 encoder (before issue 16, main e6b77ba) wrote it.
pub(crate) const V1_CHUNK: &str = concat!(
    "01280780a0abfef962d40f00090a090a00090a090a00090a090a00090a090a00090a090a00090a090a00090a090a0009",
    "0a02d00f06147552d4495127459d147552d4495127459d147552d4495127459d14750202000c3aa7737fac733af7c73a",
    "a7737fac737fac733af7c73aa7737fac733af7c73af7c73aa7737fac733af7c73aa7737fac737fac733af7c73aa7737f",
    "0c028088debe010ec80096803ee01508072682a2e02e480db68306e147881346856ae160c819d686cee1790820668832",
    "e2924826f68996e2ab882c868bfae2c4c832168d5ee3dd0839a68ec20300000100000000000000000000000000000000",
    "00bc05bb05000000000000000000000000000000000000000000030080808080808080fa3f80808080808080f87f8080",
    "808080808005808080808080800d80808080808080f63f80808080808080f33f808080808080e01f808080808080e002",
    "808080808080a001808080808080e007808080808080a001808080808080e002808080808080900f8080808080807080",
    "8080808080d001808080808080b00380808080808050808080808080f00180808080808050808080808080b007808080",
    "808080d00180808080808070808080808080d003808080808080b00180808080808050808080808080c03f8080808080",
    "802880808080808058808080808080e8018080808080803880808080808068808080808080d803808080808080288080",
    "808080807880808080808028808080808080d8018080808080806880808080808038808080808080e80700ab0202000c",
    "ec9e0bb9900bb9900bb9900bb9900bb9900bb9900bb9900bb9900bb9900bb9c0eeb9900bb9900bb9900bb9900bb9900b",
    "b9900bb9900bb9900bb900",
);

pub(crate) fn from_hex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn quantized(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|r| Row {
            values: r.values.iter().map(|v| quantize(*v)).collect(),
            ..r.clone()
        })
        .collect()
}

#[test]
fn version_1_chunks_are_still_read() {
    let bytes = from_hex(V1_CHUNK);
    assert_eq!(bytes[0], CHUNK_VERSION_1);
    let back = decode(&bytes).unwrap();
    assert!(same_bits(&back, &quantized(&v1_rows())), "{back:?}");
    let c = decode_columns(&bytes).unwrap();
    assert_eq!(c.values[5], Column::Const(-150));
    assert!(matches!(&c.values[4], Column::Float(_)));
    // Re-encoded, it is version 2, smaller, with the same rows.
    let again = encode(&back).unwrap();
    assert_eq!(again[0], CHUNK_VERSION);
    assert!(same_bits(&decode(&again).unwrap(), &back));
    assert!(
        again.len() < bytes.len(),
        "{} >= {}",
        again.len(),
        bytes.len()
    );
    // Version 2's modes are not version 1's: a version 1 header over a version 2 body fails.
    let mut mixed = again.clone();
    mixed[0] = CHUNK_VERSION_1;
    assert!(decode(&mixed).is_err());
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

/// The mode byte (and order, for modes 4 and 6) of each value column of an inline chunk.
fn column_modes(bytes: &[u8]) -> Vec<(u8, Option<u8>)> {
    let mut r = Reader { buf: bytes, pos: 0 };
    assert_eq!(r.byte().unwrap(), CHUNK_VERSION);
    let rows = r.uvarint().unwrap() as usize;
    let width = r.uvarint().unwrap() as usize;
    assert_eq!(r.byte().unwrap(), TIMES_INLINE);
    let mut ints = Vec::new();
    r.int_column(CHUNK_VERSION, rows, &mut ints).unwrap();
    r.int_column(CHUNK_VERSION, rows, &mut ints).unwrap();
    (0..width)
        .map(|_| {
            let (mode, next) = (bytes[r.pos], bytes.get(r.pos + 1).copied());
            assert!(!matches!(
                r.int_column(CHUNK_VERSION, rows, &mut ints).unwrap(),
                Mode::Float
            ));
            let ordered = [ints::MODE_BLOCKS, ints::MODE_VARINTS].contains(&mode);
            (mode, next.filter(|_| ordered))
        })
        .collect()
}

#[test]
fn each_integer_encoding_round_trips_and_suits_its_column() {
    // splitmix64's finalizer: no pattern between neighbours.
    let noise = |i: u64| {
        let mut z = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % 2003
    };
    let columns: Vec<(&str, Vec<f64>, u8, Option<u8>)> = vec![
        ("constant", vec![7.25; 300], ints::MODE_CONST, None),
        (
            "rare steps",
            (0..300)
                .map(|i| if (100..110).contains(&i) { 4.0 } else { 0.0 })
                .collect(),
            ints::MODE_RUNS,
            None,
        ),
        (
            "wandering level (kB, integers): deltas over 100",
            (0..300u64)
                .scan(1_000_000i64, |level, i| {
                    *level += (noise(i) % 21) as i64 - 10;
                    Some(*level as f64)
                })
                .collect(),
            ints::MODE_VARINTS,
            Some(1),
        ),
        (
            "accelerating counter: equal deltas of deltas, blocks of width 0",
            (0..300i64).map(|i| (i * i * 3) as f64).collect(),
            ints::MODE_BLOCKS,
            Some(2),
        ),
    ];
    for (name, values, mode, order) in &columns {
        let rows: Vec<Row> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| row(5_000 + i as i64 * 1000 + i as i64 % 3, 1000, &[v]))
            .collect();
        let bytes = encode(&rows).unwrap();
        assert_eq!(decode(&bytes).unwrap(), rows, "{name}");
        assert_eq!(column_modes(&bytes), vec![(*mode, *order)], "{name}");
    }
    // The wandering level: one byte per row (a delta of at most 10 kB, stored as 1000 / 100),
    // after about 25 bytes of header, times (steady: blocks of width 0), intervals and heads.
    let rows: Vec<Row> = columns[2]
        .1
        .iter()
        .enumerate()
        .map(|(i, &v)| row(i as i64 * 1000, 1000, &[v]))
        .collect();
    let bytes = encode(&rows).unwrap();
    assert!(
        bytes.len() <= 299 + 25,
        "{} bytes: {:?}",
        bytes.len(),
        column_modes(&bytes)
    );
    // Every mode and order decodes, whichever the encoder picks: each written directly.
    let ns: Vec<i64> = (0..300u64).map(|i| noise(i) as i64 * 100 - 7).collect();
    for order in 0..3 {
        let (mut varints, mut blocks, mut t) = (Vec::new(), Vec::new(), Vec::new());
        ints::put_varints(&mut varints, &ns, order, &mut t);
        ints::put_blocks(&mut blocks, &ns, order, &mut t);
        for bytes in [varints, blocks] {
            let mut r = Reader {
                buf: &bytes,
                pos: 0,
            };
            let mut back = Vec::new();
            r.int_column(CHUNK_VERSION, ns.len(), &mut back).unwrap();
            assert_eq!(back, ns, "order {order}");
            r.finish().unwrap();
        }
    }
}

#[test]
fn common_divisors_and_wide_blocks_round_trip() {
    // Integers (gcd 100 once scaled), intervals in steps of 10 ms, a burst in one block only,
    // times with jitter, extremes in a block of their own.
    let rows: Vec<Row> = (0..1000i64)
        .map(|i| {
            let burst = if (300..310).contains(&i) { 1e9 } else { 0.0 };
            row(
                1_700_000_000_000 + i * 1000 + (i * 13) % 7,
                990 + 10 * (i % 3) as u32,
                &[
                    (20_000_000 + (i * 7919) % 100_000) as f64,
                    burst + (i % 17) as f64 / 100.0,
                    if i == 999 { -9.0e13 } else { 9.0e13 },
                ],
            )
        })
        .collect();
    let bytes = encode(&rows).unwrap();
    assert_eq!(decode(&bytes).unwrap(), rows);
    // The integer column costs 17 bits a row (values within 100,000), not 24.
    let c = decode_columns(&bytes).unwrap();
    assert!(matches!(&c.values[0], Column::Fixed(_)));
    assert!(
        bytes.len() < 1000 * (17 + 8 + 2) / 8 + 1000,
        "{} bytes",
        bytes.len()
    );
    // Every cut is an error, never a panic.
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn every_row_count_around_a_block_round_trips() {
    for n in [1usize, 2, 3, 127, 128, 129, 255, 256, 257] {
        let rows: Vec<Row> = (0..n as i64)
            .map(|i| {
                row(
                    i * 997 + i * i % 5,
                    1000,
                    &[(i * i % 91) as f64, i as f64 / 100.0],
                )
            })
            .collect();
        let bytes = encode(&rows).unwrap();
        assert_eq!(decode(&bytes).unwrap(), rows, "{n} rows");
    }
}

#[test]
fn shared_times_round_trip_and_are_required() {
    let rows: Vec<Row> = (0..300i64)
        .map(|i| {
            row(
                1_700_000_000_000 + i * 1000 + i % 7,
                990 + 10 * (i % 3) as u32,
                &[i as f64, 2.0],
            )
        })
        .collect();
    let (series, times) = encode_shared(&rows).unwrap();
    let times = times.expect("rows have times");
    assert_eq!(times_id(&series).unwrap(), Some(times.id));
    assert_eq!(times_id(&times.bytes).unwrap(), None);
    assert_eq!(times_id(&encode(&rows).unwrap()).unwrap(), None);
    assert_eq!(times_id(&from_hex(V1_CHUNK)).unwrap(), None);
    let t = decode_columns(&times.bytes).unwrap();
    assert!(t.values.is_empty());
    assert_eq!(decode_with(&series, Some(&t)).unwrap(), rows);
    assert_eq!(decode(&series), Err(ChunkError::MissingTimes(times.id)));
    // The same times, another series: the same times chunk. Other times: another id.
    let other: Vec<Row> = rows
        .iter()
        .map(|r| row(r.time_ms, r.interval_ms, &[5.0]))
        .collect();
    assert_eq!(encode_shared(&other).unwrap().1, Some(times.clone()));
    let shifted: Vec<Row> = rows
        .iter()
        .map(|r| row(r.time_ms + 1, r.interval_ms, &[5.0]))
        .collect();
    assert_ne!(encode_shared(&shifted).unwrap().1.unwrap().id, times.id);
    // Times of another row count are refused.
    let short = decode_columns(&encode_shared(&rows[..10]).unwrap().1.unwrap().bytes).unwrap();
    assert!(decode_with(&series, Some(&short)).is_err());
    // Much smaller than with its own times.
    assert!(
        series.len() * 2 < encode(&rows).unwrap().len(),
        "{}",
        series.len()
    );
    for cut in 0..series.len() {
        assert!(
            decode_with(&series[..cut], Some(&t)).is_err(),
            "cut at {cut}"
        );
    }
    assert_eq!(encode_shared(&[]).unwrap(), (encode(&[]).unwrap(), None));
}

/// 100 samples at 1 s of this machine as the agent computed them (`fleet-record-samples`, the
/// recording `scripts/bench-store` replays, taken while builds ran): `time_ms interval_ms
/// activity instance values...` per record.
const RECORDED: &str = include_str!("recorded.txt");

/// The recorded samples' series: (activity, instance) to rows.
fn recorded_series() -> std::collections::BTreeMap<(i32, String), Vec<Row>> {
    let mut series = std::collections::BTreeMap::new();
    for line in RECORDED.lines() {
        let mut f = line.split(' ');
        let mut num = || f.next().unwrap().parse::<i64>().unwrap();
        let (time_ms, interval_ms, activity) = (num(), num(), num());
        let instance = f.next().unwrap().to_string();
        let values: Vec<f64> = f.map(|v| v.parse().unwrap()).collect();
        series
            .entry((activity as i32, instance))
            .or_insert_with(Vec::new)
            .push(row(time_ms, interval_ms as u32, &values));
    }
    series
}

/// The first mode byte after the inline times of a chunk: its first column's mode.
fn first_column_mode(bytes: &[u8]) -> u8 {
    let mut r = Reader { buf: bytes, pos: 0 };
    r.byte().unwrap();
    let rows = r.uvarint().unwrap() as usize;
    r.uvarint().unwrap();
    assert_eq!(r.byte().unwrap(), TIMES_INLINE);
    let mut ints = Vec::new();
    r.int_column(CHUNK_VERSION, rows, &mut ints).unwrap();
    r.int_column(CHUNK_VERSION, rows, &mut ints).unwrap();
    bytes[r.pos]
}

#[test]
fn recorded_samples_round_trip_in_every_slice() {
    let series = recorded_series();
    assert!(series.len() > 15, "{} series", series.len());
    let (mut with_rates, mut with_shares) = (0, 0);
    for ((activity, instance), rows) in &series {
        assert_eq!(rows.len(), 100, "{activity} {instance}");
        // Every length from 1 row, and windows starting anywhere (totals and counts change).
        for (from, to) in [
            (0, 100),
            (0, 1),
            (0, 2),
            (0, 3),
            (37, 100),
            (99, 100),
            (10, 75),
        ] {
            let rows = &rows[from..to];
            let bytes = encode(rows).unwrap();
            assert_eq!(bytes[0], CHUNK_VERSION);
            let back = decode(&bytes).unwrap();
            assert!(
                same_bits(&back, &quantized(rows)),
                "{activity} {instance} rows {from}..{to}"
            );
            let (shared, times) = encode_shared(rows).unwrap();
            let times = decode_columns(&times.unwrap().bytes).unwrap();
            assert!(same_bits(
                &decode_with(&shared, Some(&times)).unwrap(),
                &back
            ));
        }
        let bytes = encode(rows).unwrap();
        with_shares += usize::from(first_column_mode(&bytes) == ints::MODE_SHARES);
        with_rates += usize::from(bytes.contains(&ints::MODE_RATE));
    }
    // The CPU rows ("all" and each CPU) are shares of jiffies; paging, I/O, disk and packet
    // rates are counts over the interval.
    let cpu_rows = series.keys().filter(|(a, _)| *a == 1).count();
    assert_eq!(with_shares, cpu_rows);
    let paging = encode(&series[&(5, "-".to_string())]).unwrap();
    assert!(paging.contains(&ints::MODE_RATE));
    assert!(with_rates >= 3, "{with_rates}");
}

#[test]
fn rates_are_smaller_on_recorded_samples() {
    let series = recorded_series();
    for key in [(5, "-".to_string()), (6, "-".to_string())] {
        let rows = &series[&key];
        let v3 = encode(rows).unwrap();
        assert!(v3.contains(&ints::MODE_RATE), "{key:?}");
        // The same rows with their intervals off by one millisecond: no longer whole counts
        // over the interval.
        let mut plain_rows = rows.clone();
        plain_rows.iter_mut().for_each(|r| r.interval_ms += 1);
        let plain = encode(&plain_rows).unwrap();
        assert!(same_bits(&decode(&plain).unwrap(), &quantized(&plain_rows)));
        assert!(
            (v3.len() as f64) < plain.len() as f64 * 0.8,
            "{key:?}: {} vs {}",
            v3.len(),
            plain.len()
        );
    }
}

#[test]
fn rates_and_shares_edge_cases_round_trip() {
    let check = |rows: &[Row]| {
        let bytes = encode(rows).unwrap();
        let back = decode(&bytes).unwrap();
        assert!(same_bits(&back, &quantized(rows)), "{rows:?}");
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        bytes
    };
    // Counts over intervals that wander, a burst, a negative rate, a row off the grid.
    let rates: Vec<Row> = (0..300i64)
        .map(|i| {
            let iv = 990 + (i % 23) as u32;
            let count = (i * 7919 % 613) as f64 + if i == 150 { 1e9 } else { 0.0 };
            let rate = count * 1000.0 / f64::from(iv);
            let odd = if i == 77 { 0.013 } else { 0.0 };
            row(i * 1000, iv, &[rate, -rate / 2.0, rate + odd, 0.0])
        })
        .collect();
    let bytes = check(&rates);
    assert!(bytes.contains(&ints::MODE_RATE));
    // A zero interval: no rates, the values as they are.
    let mut zero = rates.clone();
    zero[5].interval_ms = 0;
    check(&zero);
    // Shares of totals that change, that are 1 (one column takes all), and rows that are not
    // shares (a value above 100 %, a negative one, NaN): the chunk falls back to columns.
    let shares: Vec<Row> = (0..200i64)
        .map(|i| {
            let total = [100.0, 99.0, 101.0, 1.0, 400.0][(i / 40) as usize];
            let user = (i * 37 % 50) as f64 % total;
            let sys = ((i * 11) % 20) as f64 % (total - user + 1.0);
            let idle = (total - user - sys).max(0.0);
            let pct = |k: f64| k * 100.0 / total;
            row(i * 1000, 1000, &[pct(user), 0.0, pct(sys), pct(idle)])
        })
        .collect();
    assert_eq!(first_column_mode(&check(&shares)), ints::MODE_SHARES);
    for bad in [100.01, -0.01, f64::NAN] {
        let mut rows = shares.clone();
        rows[120].values[1] = bad;
        assert_ne!(first_column_mode(&check(&rows)), ints::MODE_SHARES);
    }
    // All zero: no total to share.
    let zeros: Vec<Row> = (0..50)
        .map(|i| row(i * 1000, 1000, &[0.0, 0.0, 0.0]))
        .collect();
    check(&zeros);
}

#[test]
fn version_2_chunks_are_still_read() {
    // Version 3 adds modes 7 and 8 to version 2 and changes nothing else: a chunk that uses
    // neither is a version 2 chunk but for its first byte.
    let rows: Vec<Row> = (0..400i64)
        .map(|i| {
            row(
                i * 1000 + i % 3,
                1000 + (i % 7) as u32,
                &[(i % 13) as f64 * 0.37, 5.0],
            )
        })
        .collect();
    let mut bytes = encode(&rows).unwrap();
    assert!(column_modes(&bytes)
        .iter()
        .all(|(m, _)| *m <= ints::MODE_VARINTS));
    bytes[0] = CHUNK_VERSION_2;
    assert!(same_bits(&decode(&bytes).unwrap(), &quantized(&rows)));
    // Version 3's new modes are not version 2's.
    let rated = encode(&recorded_series()[&(5, "-".to_string())]).unwrap();
    let shared = encode(&recorded_series()[&(1, "all".to_string())]).unwrap();
    for mut v3 in [rated, shared] {
        assert!(decode(&v3).is_ok());
        v3[0] = CHUNK_VERSION_2;
        assert!(decode(&v3).is_err());
    }
    let mut unknown = bytes;
    unknown[0] = CHUNK_VERSION + 1;
    assert_eq!(decode(&unknown), Err(ChunkError::UnknownVersion(4)));
}

#[test]
fn sums_of_columns_round_trip() {
    // sar -r: used is the total less free, buffers, cached and the slab (which moves slowly).
    let noise = |i: i64| (i * 7919 % 1009) - 504;
    let rows: Vec<Row> = (0..600i64)
        .map(|i| {
            let free = 4_000_000.0 + (noise(i) * 37) as f64;
            let buffers = 200_000.0 + (noise(i + 5) * 3) as f64;
            let cached = 9_000_000.0 + (noise(i + 11) * 29) as f64;
            let slab = 500_000.0 + (i / 60) as f64;
            let used = 32_000_000.0 - free - buffers - cached - slab;
            let tps = (noise(i + 3) + 600) as f64 / 100.0;
            row(
                i * 1000,
                1000,
                &[
                    free,
                    used,
                    buffers,
                    cached,
                    tps,
                    1.5,
                    f64::from(i as i32 % 2),
                ],
            )
        })
        .collect();
    let bytes = encode(&rows).unwrap();
    assert!(bytes.contains(&ints::MODE_SUM));
    assert!(same_bits(&decode(&bytes).unwrap(), &quantized(&rows)));
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let c = decode_columns(&bytes).unwrap();
    assert_eq!(c.values[5], Column::Const(150));
    // Version 2 knew no sums.
    let mut v2 = bytes.clone();
    v2[0] = CHUNK_VERSION_2;
    assert!(decode(&v2).is_err());
    // A sum that refers to itself, to a column beyond the chunk, or to another sum is corrupt.
    let one = |plus: u64, minus: u64, width: u64| {
        let mut b = vec![CHUNK_VERSION, 2, width as u8, TIMES_INLINE];
        b.extend([ints::MODE_CONST, 0, ints::MODE_CONST, 0]);
        for c in 0..width {
            if c == 0 {
                b.extend([ints::MODE_SUM, plus as u8, minus as u8, ints::MODE_CONST, 4]);
            } else {
                b.extend([ints::MODE_CONST, 2]);
            }
        }
        decode_columns(&b)
    };
    assert_eq!(
        one(0b10, 0, 2).unwrap().values[0],
        Column::Fixed(vec![1, 1])
    );
    assert_eq!(
        one(0, 0b10, 2).unwrap().values[0],
        Column::Fixed(vec![3, 3])
    );
    for (plus, minus, width) in [(0b1, 0, 2), (0b100, 0, 2), (0b10, 0b10, 2)] {
        assert!(one(plus, minus, width).is_err(), "{plus:b} {minus:b}");
    }
}

#[test]
fn rounded_division_is_exact_on_both_paths() {
    let exact = |n: i128, d: i128| (2 * n + d).div_euclid(2 * d);
    let big = 1i128 << 50;
    for n in [
        0,
        1,
        -1,
        49,
        50,
        51,
        -50,
        -51,
        99_999,
        big - 1,
        -big,
        -big + 1,
        big,
        1 << 70,
    ] {
        for d in [1, 2, 3, 7, 100, 1000, 1010, 4097, big - 1, big, 1 << 60] {
            for n in [n, n * 3 + 1, -(n * 7) - 3] {
                assert_eq!(derived::round_div(n, d), exact(n, d), "{n} / {d}");
            }
        }
    }
}
