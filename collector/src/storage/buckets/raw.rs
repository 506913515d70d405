//! The unsealed samples of one host and window as the row and downsampled queries read them
//! ([`Store::query`](super::super::Store::query), [`Store::query_buckets`](super::super::Store::query_buckets)): of each
//! stored `Sample` (protobuf, as `values::decode_raw_sample` reads it) only the records of the
//! activity asked for are decoded. A record of another activity is skipped by its length after
//! reading its activity, so a query of one activity no longer decodes (and allocates) every
//! record of every activity in the window: in the host page's 17 queries of a host with 157
//! values a second, that decoding was three quarters of the collector's CPU.
//!
//! It checks what `values::decode_raw_sample` checks: the message decodes, and its time is its
//! key's.

use fleet_proto::v1::Record;
use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
use prost::Message;
use rocksdb::DBRawIterator;

use super::super::chunk::{self, Row};
use super::super::keys::{self, RawKey};
use super::super::{Span, StorageError};

/// `Sample`'s fields read here (fleet.proto).
const SAMPLE_TIME_MS: u32 = 1;
const SAMPLE_INTERVAL_MS: u32 = 2;
const SAMPLE_RECORDS: u32 = 3;

/// Only the activity of a `Record` (field 1): its other fields are skipped, not decoded.
#[derive(Clone, PartialEq, Message)]
struct RecordActivity {
    #[prost(int32, tag = "1")]
    activity: i32,
}

/// Reads the unsealed samples under `prefix` (one host in one window; `it` is on its first key)
/// with a time in `span`, and hands each record of activity `act` to `push` as (instance, row),
/// its values rounded as chunks round them, in key order: by time, then batch seq.
///
/// # Errors
/// A corruption error if a key or sample does not decode, or a sample's time is not its key's;
/// [`StorageError::Rocks`] on read errors.
pub(in crate::storage) fn read_rows_of(
    it: &mut DBRawIterator<'_>,
    prefix: &[u8],
    span: &Span,
    act: i32,
    mut push: impl FnMut(String, Row),
) -> Result<(), StorageError> {
    while let (Some(key), Some(value)) = (it.key(), it.value()) {
        if !key.starts_with(prefix) {
            break;
        }
        let rk = keys::decode_raw_key(key)?;
        if span.contains(rk.time_ms) {
            let (time_ms, interval_ms, records) = records_of(&rk, value, act)?;
            for rec in records {
                let row = Row {
                    time_ms,
                    interval_ms,
                    values: rec.values.into_iter().map(chunk::quantize).collect(),
                };
                push(rec.instance, row);
            }
        }
        it.next();
    }
    Ok(it.status()?)
}

/// A raw sample's time, interval and records of activity `act`.
///
/// # Errors
/// [`StorageError::Corrupt`] if it does not decode or its time is not its key's.
fn records_of(
    key: &RawKey,
    value: &[u8],
    act: i32,
) -> Result<(i64, u32, Vec<Record>), StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt {
        what: "raw sample",
        detail,
    };
    let (time_ms, interval_ms, records) = decode_records_of(value, act).map_err(corrupt)?;
    if u64::try_from(time_ms).ok() != Some(key.time_ms) {
        return Err(corrupt(format!(
            "time_ms {time_ms} under key time {}",
            key.time_ms
        )));
    }
    Ok((time_ms, interval_ms, records))
}

/// The fields of an encoded `Sample` this query needs; the records of other activities, and
/// every other field, skipped. As prost decodes: the last of a repeated scalar wins, fields it
/// does not know are skipped. The error in words.
fn decode_records_of(mut buf: &[u8], act: i32) -> Result<(i64, u32, Vec<Record>), String> {
    let text = |e: prost::DecodeError| e.to_string();
    let (mut time_ms, mut interval_ms, mut records) = (0i64, 0u32, Vec::new());
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf).map_err(text)?;
        match (tag, wire) {
            (SAMPLE_TIME_MS, WireType::Varint) => {
                time_ms = decode_varint(&mut buf).map_err(text)? as i64;
            }
            // As prost reads a uint32: the low 32 bits.
            (SAMPLE_INTERVAL_MS, WireType::Varint) => {
                interval_ms = decode_varint(&mut buf).map_err(text)? as u32;
            }
            (SAMPLE_RECORDS, WireType::LengthDelimited) => {
                let len = decode_varint(&mut buf).map_err(text)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|n| *n <= buf.len())
                    .ok_or("a record longer than the sample")?;
                let (record, rest) = buf.split_at(len);
                buf = rest;
                if RecordActivity::decode(record).map_err(text)?.activity == act {
                    records.push(Record::decode(record).map_err(text)?);
                }
            }
            (SAMPLE_TIME_MS | SAMPLE_INTERVAL_MS | SAMPLE_RECORDS, _) => {
                return Err(format!("field {tag}: wire type {wire:?} not expected"));
            }
            _ => skip_field(wire, tag, &mut buf, DecodeContext::default()).map_err(text)?,
        }
    }
    Ok((time_ms, interval_ms, records))
}

#[cfg(test)]
mod tests {
    use fleet_proto::v1::{ClockStatus, OomProcess, Sample};

    use super::*;

    fn record(activity: i32, instance: &str, values: &[f64]) -> Record {
        Record {
            activity,
            instance: instance.into(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn only_the_records_of_the_activity_as_prost_decodes_them() {
        let sample = Sample {
            time_ms: 1_795_644_603_000,
            interval_ms: 1_000,
            records: vec![
                record(1, "all", &[1.0, 2.0]),
                record(2, "-", &[3.0]),
                record(1, "0", &[4.5, f64::NAN]),
                record(0, "", &[]),
            ],
            top_oom: vec![OomProcess {
                pid: 7,
                comm: "x".into(),
                ..OomProcess::default()
            }],
            clock: Some(ClockStatus::default()),
        };
        let bytes = sample.encode_to_vec();
        let full = Sample::decode(&bytes[..]).unwrap();
        for act in [0, 1, 2, 3] {
            let (t, i, records) = decode_records_of(&bytes, act).unwrap();
            assert_eq!((t, i), (full.time_ms, full.interval_ms));
            let want: Vec<Record> = full
                .records
                .iter()
                .filter(|r| r.activity == act)
                .cloned()
                .collect();
            // NaN != NaN: compared as debug text.
            assert_eq!(
                format!("{records:?}"),
                format!("{want:?}"),
                "activity {act}"
            );
        }
        // Corrupt input: refused, as prost refuses it.
        for cut in [1, 5, bytes.len() - 1] {
            assert!(
                decode_records_of(&bytes[..cut], 1).is_err()
                    == Sample::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        assert!(decode_records_of(&[0x08], 1).is_err());
        // A time that is not the key's.
        let key = RawKey {
            window_start_s: 0,
            host_num: 1,
            time_ms: 5,
            seq: 1,
        };
        let e = records_of(&key, &bytes, 1).unwrap_err();
        assert!(e.to_string().contains("under key time 5"), "{e}");
    }
}
