//! Where the bytes of sealed chunks go: per activity and per column, encoded and after zstd.
//!
//! Builds the chunks the store would seal from `FLEET_BENCH_HOURS` (default 2) one-hour windows
//! at 1 s of the hosts of `FLEET_BENCH_MIX` (default `recorded:4,loadgen:4`, as
//! `scripts/bench-store`; `FLEET_BENCH_RECORDING` names the recording), with
//! `chunk::encode_shared`, and prints:
//!
//! - the total: encoded bytes, and zstd level 9 over the chunks in key order cut into 32 KiB
//!   blocks (what RocksDB's bottommost level does with the chunks column family);
//! - per activity: values, encoded bytes and zstd of each chunk alone;
//! - the costliest columns: each column encoded alone (a chunk of that one column, less its
//!   header) and zstd of those bytes alone, with the modes the encoder chose;
//! - the time to decode every chunk, and a check that each decodes to its rows.
//!
//! Run: `FLEET_BENCH_RECORDING=/var/tmp/fleet-bench/samples.txt cargo bench -p fleet-collector
//! --bench chunks`.

use std::collections::BTreeMap;
use std::time::Instant;

use fleet_collector::storage::chunk::{self, Row};
use fleet_proto::schema::schema_of_i32;

#[allow(dead_code)]
#[path = "../src/bin/loadgen/shape.rs"]
mod shape;

mod common {
    pub mod hosts;
}
use common::hosts::sources;

#[link(name = "zstd")]
extern "C" {
    fn ZSTD_compress(
        dst: *mut std::ffi::c_void,
        dst_capacity: usize,
        src: *const std::ffi::c_void,
        src_size: usize,
        level: std::ffi::c_int,
    ) -> usize;
    fn ZSTD_compressBound(src_size: usize) -> usize;
    fn ZSTD_isError(code: usize) -> std::ffi::c_uint;
}

/// `bytes` compressed by zstd at level 9: its size.
fn zstd_len(bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        return 0;
    }
    // SAFETY: dst has the capacity zstd asks for; src is a live slice.
    unsafe {
        let mut dst = vec![0u8; ZSTD_compressBound(bytes.len())];
        let n = ZSTD_compress(
            dst.as_mut_ptr().cast(),
            dst.len(),
            bytes.as_ptr().cast(),
            bytes.len(),
            9,
        );
        assert_eq!(ZSTD_isError(n), 0, "zstd");
        n
    }
}

/// Bytes of a chunk that are not its columns: its header and times reference.
fn header_len(rows: &[Row]) -> usize {
    let bare: Vec<Row> = rows
        .iter()
        .map(|r| Row {
            values: Vec::new(),
            ..r.clone()
        })
        .collect();
    chunk::encode_shared(&bare).expect("encode").0.len()
}

#[derive(Default)]
struct Cost {
    values: u64,
    encoded: u64,
    zstd: u64,
    modes: BTreeMap<u8, u32>,
}

impl Cost {
    fn add(&mut self, values: usize, encoded: usize, zstd: usize) {
        self.values += values as u64;
        self.encoded += encoded as u64;
        self.zstd += zstd as u64;
    }
}

fn main() {
    let mix = std::env::var("FLEET_BENCH_MIX").unwrap_or_else(|_| "recorded:4,loadgen:4".into());
    let hours: usize = std::env::var("FLEET_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut hosts = sources(&mix);
    let t0 = 1_800_000_000_000i64 / 3_600_000 * 3_600_000;

    // (window, host, activity, instance) -> rows, in the chunks column family's key order.
    let mut series: BTreeMap<(usize, usize, i32, String), Vec<Row>> = BTreeMap::new();
    for hour in 0..hours {
        for (h, host) in hosts.iter_mut().enumerate() {
            for s in 0..3600 {
                let t = t0 + (hour * 3600 + s) as i64 * 1000;
                let sample = host.sample(t, 1000);
                for r in sample.records {
                    series
                        .entry((hour, h, r.activity, r.instance))
                        .or_default()
                        .push(Row {
                            time_ms: sample.time_ms,
                            interval_ms: sample.interval_ms,
                            values: r.values,
                        });
                }
            }
        }
    }

    let mut total = Cost::default();
    let mut stream: Vec<u8> = Vec::new();
    let mut blocks_zstd = 0usize;
    let mut times_seen = std::collections::BTreeSet::new();
    let mut per_activity: BTreeMap<i32, Cost> = BTreeMap::new();
    let mut per_column: BTreeMap<(i32, usize), Cost> = BTreeMap::new();
    let mut encoded_chunks = Vec::new();
    let mut push_block = |stream: &mut Vec<u8>, value: &[u8], last: bool| {
        stream.extend_from_slice(value);
        if stream.len() >= 32 << 10 || (last && !stream.is_empty()) {
            blocks_zstd += zstd_len(stream);
            stream.clear();
        }
    };
    for ((hour, host, activity, _), rows) in &series {
        let (bytes, times) = chunk::encode_shared(rows).expect("encode");
        if let Some(t) = times {
            if times_seen.insert((*hour, *host, t.id)) {
                total.add(0, t.bytes.len(), 0);
                push_block(&mut stream, &t.bytes, false);
            }
        }
        let width = rows[0].values.len();
        let z = zstd_len(&bytes);
        total.add(rows.len() * width, bytes.len(), 0);
        per_activity
            .entry(*activity)
            .or_default()
            .add(rows.len() * width, bytes.len(), z);
        push_block(&mut stream, &bytes, false);

        let head = header_len(rows);
        for c in 0..width {
            let one: Vec<Row> = rows
                .iter()
                .map(|r| Row {
                    values: vec![r.values[c]],
                    ..r.clone()
                })
                .collect();
            let col = chunk::encode_shared(&one).expect("encode").0;
            let body = &col[head..];
            let cost = per_column.entry((*activity, c)).or_default();
            cost.add(rows.len(), body.len(), zstd_len(body));
            *cost.modes.entry(body[0]).or_default() += 1;
        }
        encoded_chunks.push((bytes, rows));
    }
    push_block(&mut stream, &[], true);

    // Decode every chunk: time it, and check the round trip.
    let times: BTreeMap<u64, chunk::Columns> = series
        .values()
        .filter_map(|rows| chunk::encode_shared(rows).expect("encode").1)
        .map(|t| (t.id, chunk::decode_columns(&t.bytes).expect("times chunk")))
        .collect();
    let started = Instant::now();
    let mut decoded_values = 0usize;
    for (bytes, _) in &encoded_chunks {
        let id = chunk::times_id(bytes).expect("header");
        let c = chunk::decode_columns_with(bytes, id.map(|id| &times[&id])).expect("decode");
        decoded_values += c.values.len() * c.times.len();
    }
    let decode_s = started.elapsed().as_secs_f64();
    for (bytes, rows) in &encoded_chunks {
        let id = chunk::times_id(bytes).expect("header");
        let got = chunk::decode_with(bytes, id.map(|id| &times[&id])).expect("decode");
        for (g, r) in got.iter().zip(rows.iter()) {
            assert_eq!((g.time_ms, g.interval_ms), (r.time_ms, r.interval_ms));
            for (a, b) in g.values.iter().zip(&r.values) {
                let q = chunk::quantize(*b);
                assert!(a.to_bits() == q.to_bits() || (a.is_nan() && q.is_nan()));
            }
        }
    }

    let v = total.values as f64;
    println!(
        "chunks of {} series ({mix}, {hours} h at 1 s): {} values",
        series.len(),
        total.values
    );
    println!(
        "  encoded {} bytes = {:.3} B/value; zstd 9 in 32 KiB blocks {} bytes = {:.3} B/value",
        total.encoded,
        total.encoded as f64 / v,
        blocks_zstd,
        blocks_zstd as f64 / v
    );
    println!(
        "  decode_columns of every chunk: {:.1} ms ({:.0} M values/s); round trip checked",
        decode_s * 1e3,
        decoded_values as f64 / decode_s / 1e6
    );
    println!("per activity (zstd of each chunk alone):");
    for (a, c) in &per_activity {
        let name = schema_of_i32(*a).map_or("?", |s| s.name);
        println!(
            "  {name:>9}: {:>9} values, encoded {:>8} ({:.3} B/v), zstd {:>8} ({:.3} B/v, {:4.1} % of all)",
            c.values,
            c.encoded,
            c.encoded as f64 / c.values as f64,
            c.zstd,
            c.zstd as f64 / c.values as f64,
            c.zstd as f64 * 100.0 / per_activity.values().map(|c| c.zstd).sum::<u64>() as f64
        );
    }
    let top: usize = std::env::var("FLEET_BENCH_TOP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    println!("costliest columns (each alone: encoded, zstd; modes chosen: mode x chunks):");
    let mut cols: Vec<_> = per_column.iter().collect();
    cols.sort_by_key(|(_, c)| std::cmp::Reverse(c.zstd));
    let all_zstd: u64 = per_column.values().map(|c| c.zstd).sum();
    for ((a, i), c) in cols.into_iter().take(top) {
        let s = schema_of_i32(*a);
        let name = s.map_or("?", |s| s.name);
        let col = s.and_then(|s| s.columns.get(*i)).unwrap_or(&"?");
        println!(
            "  {name:>9} {col:>10}: {:>9} rows, encoded {:.3} B/v, zstd {:.3} B/v ({:4.1} %) {:?}",
            c.values,
            c.encoded as f64 / c.values as f64,
            c.zstd as f64 / c.values as f64,
            c.zstd as f64 * 100.0 / all_zstd as f64,
            c.modes
        );
    }
}
