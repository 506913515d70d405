//! Key encoding for the collector's RocksDB store. Pure: no I/O, no RocksDB types.
//!
//! Every key starts with one prefix byte naming its kind, so a key read from the wrong place is
//! recognised instead of misread. Ids and timestamps are fixed-width big-endian, so the byte
//! order of keys is their numeric order and a range of windows is a range of keys.
//!
//! | kind  | CF       | layout                                                                        | bytes |
//! |-------|----------|-------------------------------------------------------------------------------|-------|
//! | host  | `hosts`  | `0x01` · host_id (UTF-8)                                                      | 2..   |
//! | meta  | `hosts`  | `0x02` · name (ASCII, e.g. `next_host_num`)                                   | 2..   |
//! | raw   | `raw`    | `0x10` · window_start_s u64 · host_num u32 · time_ms u64 · seq u64            | 29    |
//! | chunk | `chunks` | `0x20` · window_start_s u64 · host_num u32 · activity u8 · instance (UTF-8)   | 14..  |
//!
//! `window_start_s` is the start of the chunk window holding the sample, in Unix seconds, aligned
//! to the window length. It comes first in `raw` and `chunks` keys (time-first layout), so:
//!
//! - retention is one `delete_range` per column family: everything below `prefix · cutoff`;
//! - sealing reads the closed windows as one key range `[prefix, prefix · first_open_window)`;
//! - a query of one host and activity seeks `prefix · window · host_num · activity` once per
//!   window of its time range.
//!
//! Example: the raw key of a sample of host 7 at `1700000012345` ms, window 3600 s, batch seq 42:
//!
//! ```text
//! 10 | 00 00 00 00 65 53 ed e0 | 00 00 00 07 | 00 00 01 8b cf e5 98 39 | 00 00 00 00 00 00 00 2a
//!      window 1699999200 s        host 7        time_ms 1700000012345     seq 42
//! ```
//!
//! The chunk key of that host's CPU 0 series in the same window:
//!
//! ```text
//! 20 | 00 00 00 00 65 53 ed e0 | 00 00 00 07 | 01 | 30
//!      window                    host 7        CPU  "0"
//! ```

use thiserror::Error;

/// Prefix of a host registry record (`hosts` CF).
pub const PREFIX_HOST: u8 = 0x01;
/// Prefix of a store-wide metadata value (`hosts` CF).
pub const PREFIX_META: u8 = 0x02;
/// Prefix of an unsealed sample (`raw` CF).
pub const PREFIX_RAW: u8 = 0x10;
/// Prefix of a sealed chunk (`chunks` CF).
pub const PREFIX_CHUNK: u8 = 0x20;

/// Meta key name: the numeric id the next new host receives (u32 BE value).
pub const META_NEXT_HOST_NUM: &str = "next_host_num";
/// Meta key name: the chunk window the store was created with, in seconds (u64 BE value). Keys
/// embed aligned window starts, so the window of an existing store never changes.
pub const META_CHUNK_WINDOW_S: &str = "chunk_window_s";

/// Length of a raw key.
pub const RAW_KEY_LEN: usize = 1 + 8 + 4 + 8 + 8;
/// Length of the chunk key up to (and including) the activity byte.
pub const CHUNK_SERIES_PREFIX_LEN: usize = 1 + 8 + 4 + 1;
/// Longest instance name a key may carry (sar instances are CPU numbers, devices, interfaces).
pub const MAX_INSTANCE_BYTES: usize = 255;
/// Longest host id a key may carry.
pub const MAX_HOST_ID_BYTES: usize = 255;

/// A key that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("empty key")]
    Empty,
    #[error("{kind} key: expected prefix {expected:#04x}, found {found:#04x}")]
    WrongPrefix {
        kind: &'static str,
        expected: u8,
        found: u8,
    },
    #[error("{kind} key: {len} bytes, expected {expected}")]
    WrongLength {
        kind: &'static str,
        len: usize,
        expected: &'static str,
    },
    #[error("{kind} key: {what} is not UTF-8")]
    NotUtf8 {
        kind: &'static str,
        what: &'static str,
    },
}

/// A decoded `raw` key: one sample of one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RawKey {
    pub window_start_s: u64,
    pub host_num: u32,
    pub time_ms: u64,
    /// The seq of the batch that carried the sample: two batches carrying the same timestamp
    /// never overwrite each other before sealing decides which one wins (the higher key).
    pub seq: u64,
}

/// A decoded `chunks` key: one series (host, activity, instance) in one window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChunkKey {
    pub window_start_s: u64,
    pub host_num: u32,
    /// The wire value of `fleet_proto::v1::Activity`.
    pub activity: u8,
    pub instance: String,
}

/// The start (Unix seconds) of the window of length `window_s` holding `time_ms`.
///
/// `time_ms` must be non-negative (the store rejects earlier samples); `window_s` non-zero.
pub fn window_start_s(time_ms: u64, window_s: u64) -> u64 {
    let secs = time_ms / 1000;
    secs - secs % window_s
}

/// `0x01 · host_id`.
pub fn host_key(host_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + host_id.len());
    k.push(PREFIX_HOST);
    k.extend_from_slice(host_id.as_bytes());
    k
}

/// The smallest key of the host records (for a prefix scan).
pub fn host_prefix() -> [u8; 1] {
    [PREFIX_HOST]
}

/// `0x02 · name`.
pub fn meta_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(PREFIX_META);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `0x10 · window · host · time · seq`.
pub fn raw_key(k: &RawKey) -> [u8; RAW_KEY_LEN] {
    let mut out = [0u8; RAW_KEY_LEN];
    out[0] = PREFIX_RAW;
    out[1..9].copy_from_slice(&k.window_start_s.to_be_bytes());
    out[9..13].copy_from_slice(&k.host_num.to_be_bytes());
    out[13..21].copy_from_slice(&k.time_ms.to_be_bytes());
    out[21..29].copy_from_slice(&k.seq.to_be_bytes());
    out
}

/// `0x10 · window`: the first raw key of a window (and the exclusive end of the ones before).
pub fn raw_window_prefix(window_start_s: u64) -> [u8; 9] {
    window_prefix(PREFIX_RAW, window_start_s)
}

/// `0x10 · window · host`: the prefix of one host's samples in one window.
pub fn raw_host_prefix(window_start_s: u64, host_num: u32) -> [u8; 13] {
    host_window_prefix(PREFIX_RAW, window_start_s, host_num)
}

/// Decodes a `raw` key.
///
/// # Errors
/// [`KeyError`] if the prefix or the length is wrong.
pub fn decode_raw_key(key: &[u8]) -> Result<RawKey, KeyError> {
    check_prefix(key, PREFIX_RAW, "raw")?;
    if key.len() != RAW_KEY_LEN {
        return Err(KeyError::WrongLength {
            kind: "raw",
            len: key.len(),
            expected: "29",
        });
    }
    Ok(RawKey {
        window_start_s: be_u64(&key[1..9]),
        host_num: be_u32(&key[9..13]),
        time_ms: be_u64(&key[13..21]),
        seq: be_u64(&key[21..29]),
    })
}

/// `0x20 · window · host · activity · instance`.
pub fn chunk_key(k: &ChunkKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHUNK_SERIES_PREFIX_LEN + k.instance.len());
    out.extend_from_slice(&chunk_series_prefix(
        k.window_start_s,
        k.host_num,
        k.activity,
    ));
    out.extend_from_slice(k.instance.as_bytes());
    out
}

/// `0x20 · window`: the first chunk key of a window (and the exclusive end of the ones before).
pub fn chunk_window_prefix(window_start_s: u64) -> [u8; 9] {
    window_prefix(PREFIX_CHUNK, window_start_s)
}

/// `0x20 · window · host`: the prefix of one host's chunks in one window.
pub fn chunk_host_prefix(window_start_s: u64, host_num: u32) -> [u8; 13] {
    host_window_prefix(PREFIX_CHUNK, window_start_s, host_num)
}

/// `0x20 · window · host · activity`: the prefix of every instance of one activity.
pub fn chunk_series_prefix(
    window_start_s: u64,
    host_num: u32,
    activity: u8,
) -> [u8; CHUNK_SERIES_PREFIX_LEN] {
    let mut out = [0u8; CHUNK_SERIES_PREFIX_LEN];
    out[..13].copy_from_slice(&host_window_prefix(PREFIX_CHUNK, window_start_s, host_num));
    out[13] = activity;
    out
}

/// Decodes a `chunks` key.
///
/// # Errors
/// [`KeyError`] if the prefix is wrong, the key is too short or the instance is not UTF-8.
pub fn decode_chunk_key(key: &[u8]) -> Result<ChunkKey, KeyError> {
    check_prefix(key, PREFIX_CHUNK, "chunk")?;
    if key.len() < CHUNK_SERIES_PREFIX_LEN {
        return Err(KeyError::WrongLength {
            kind: "chunk",
            len: key.len(),
            expected: "at least 14",
        });
    }
    let instance =
        std::str::from_utf8(&key[CHUNK_SERIES_PREFIX_LEN..]).map_err(|_| KeyError::NotUtf8 {
            kind: "chunk",
            what: "instance",
        })?;
    Ok(ChunkKey {
        window_start_s: be_u64(&key[1..9]),
        host_num: be_u32(&key[9..13]),
        activity: key[13],
        instance: instance.to_owned(),
    })
}

/// Decodes the window start of a `raw` or `chunks` key carrying prefix `prefix`, without
/// looking at the rest (used to skip empty windows in a query).
///
/// # Errors
/// [`KeyError`] if the prefix is wrong or the key is too short.
pub fn decode_window(key: &[u8], prefix: u8) -> Result<u64, KeyError> {
    check_prefix(key, prefix, "windowed")?;
    if key.len() < 9 {
        return Err(KeyError::WrongLength {
            kind: "windowed",
            len: key.len(),
            expected: "at least 9",
        });
    }
    Ok(be_u64(&key[1..9]))
}

/// Decodes a host key to its host id.
///
/// # Errors
/// [`KeyError`] if the prefix is wrong, the id is empty or not UTF-8.
pub fn decode_host_key(key: &[u8]) -> Result<&str, KeyError> {
    check_prefix(key, PREFIX_HOST, "host")?;
    if key.len() < 2 {
        return Err(KeyError::WrongLength {
            kind: "host",
            len: key.len(),
            expected: "at least 2",
        });
    }
    std::str::from_utf8(&key[1..]).map_err(|_| KeyError::NotUtf8 {
        kind: "host",
        what: "host id",
    })
}

fn window_prefix(prefix: u8, window_start_s: u64) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[0] = prefix;
    out[1..9].copy_from_slice(&window_start_s.to_be_bytes());
    out
}

fn host_window_prefix(prefix: u8, window_start_s: u64, host_num: u32) -> [u8; 13] {
    let mut out = [0u8; 13];
    out[..9].copy_from_slice(&window_prefix(prefix, window_start_s));
    out[9..13].copy_from_slice(&host_num.to_be_bytes());
    out
}

fn check_prefix(key: &[u8], expected: u8, kind: &'static str) -> Result<(), KeyError> {
    match key.first() {
        None => Err(KeyError::Empty),
        Some(&found) if found != expected => Err(KeyError::WrongPrefix {
            kind,
            expected,
            found,
        }),
        Some(_) => Ok(()),
    }
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_key_round_trips() {
        let k = RawKey {
            window_start_s: 1_699_999_200,
            host_num: 7,
            time_ms: 1_700_000_012_345,
            seq: 42,
        };
        let bytes = raw_key(&k);
        assert_eq!(bytes.len(), RAW_KEY_LEN);
        assert_eq!(bytes[0], PREFIX_RAW);
        assert_eq!(decode_raw_key(&bytes), Ok(k));
        assert!(bytes.starts_with(&raw_host_prefix(1_699_999_200, 7)));
        assert!(bytes.starts_with(&raw_window_prefix(1_699_999_200)));
    }

    #[test]
    fn module_doc_example_matches() {
        let k = raw_key(&RawKey {
            window_start_s: window_start_s(1_700_000_012_345, 3600),
            host_num: 7,
            time_ms: 1_700_000_012_345,
            seq: 42,
        });
        let hex: Vec<String> = k.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "10 00 00 00 00 65 53 ed e0 00 00 00 07 00 00 01 8b cf e5 98 39 00 00 00 00 00 00 00 2a"
        );
    }

    #[test]
    fn chunk_key_round_trips() {
        let k = ChunkKey {
            window_start_s: 3600,
            host_num: u32::MAX,
            activity: 9,
            instance: "eth0".into(),
        };
        let bytes = chunk_key(&k);
        assert_eq!(decode_chunk_key(&bytes), Ok(k.clone()));
        assert!(bytes.starts_with(&chunk_series_prefix(3600, u32::MAX, 9)));
        assert!(bytes.starts_with(&chunk_host_prefix(3600, u32::MAX)));
        assert!(bytes.starts_with(&chunk_window_prefix(3600)));
        assert_eq!(decode_window(&bytes, PREFIX_CHUNK), Ok(3600));
        let empty = ChunkKey {
            instance: String::new(),
            ..k
        };
        assert_eq!(decode_chunk_key(&chunk_key(&empty)), Ok(empty));
    }

    #[test]
    fn host_and_meta_keys() {
        let k = host_key("abc");
        assert_eq!(decode_host_key(&k), Ok("abc"));
        assert!(k.starts_with(&host_prefix()));
        assert_eq!(meta_key("x"), vec![PREFIX_META, b'x']);
        assert!(decode_host_key(&meta_key("x")).is_err());
    }

    #[test]
    fn byte_order_is_window_then_host_then_time_then_seq() {
        let keys = [
            RawKey {
                window_start_s: 0,
                host_num: 9,
                time_ms: 999,
                seq: 9,
            },
            RawKey {
                window_start_s: 3600,
                host_num: 1,
                time_ms: 3_600_000,
                seq: 100,
            },
            RawKey {
                window_start_s: 3600,
                host_num: 1,
                time_ms: 3_600_001,
                seq: 1,
            },
            RawKey {
                window_start_s: 3600,
                host_num: 1,
                time_ms: 3_600_001,
                seq: 2,
            },
            RawKey {
                window_start_s: 3600,
                host_num: 256,
                time_ms: 0,
                seq: 0,
            },
            RawKey {
                window_start_s: 1 << 40,
                host_num: 0,
                time_ms: 0,
                seq: 0,
            },
        ];
        let encoded: Vec<_> = keys.iter().map(raw_key).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
        // Every key of a window sorts below the next window's prefix.
        assert!(encoded[4].as_slice() < raw_window_prefix(3601).as_slice());
        assert!(raw_window_prefix(3600).as_slice() <= encoded[1].as_slice());

        let c1 = chunk_key(&ChunkKey {
            window_start_s: 0,
            host_num: 1,
            activity: 1,
            instance: "10".into(),
        });
        let c2 = chunk_key(&ChunkKey {
            window_start_s: 0,
            host_num: 1,
            activity: 1,
            instance: "2".into(),
        });
        let c3 = chunk_key(&ChunkKey {
            window_start_s: 0,
            host_num: 1,
            activity: 2,
            instance: "-".into(),
        });
        assert!(c1 < c2 && c2 < c3);
        // Prefix bytes keep the kinds apart.
        assert!(host_key("zzz") < meta_key("a"));
        assert!(meta_key("zzz") < raw_window_prefix(0).to_vec());
        assert!(encoded[5].as_slice() < chunk_window_prefix(0).as_slice());
    }

    #[test]
    fn bad_keys_are_errors() {
        assert_eq!(decode_raw_key(&[]), Err(KeyError::Empty));
        assert!(matches!(
            decode_raw_key(&[PREFIX_CHUNK; 29]),
            Err(KeyError::WrongPrefix { .. })
        ));
        assert!(matches!(
            decode_raw_key(&[PREFIX_RAW; 28]),
            Err(KeyError::WrongLength { .. })
        ));
        assert!(matches!(
            decode_chunk_key(&[PREFIX_CHUNK; 13]),
            Err(KeyError::WrongLength { .. })
        ));
        let mut bad_utf8 = chunk_series_prefix(0, 1, 1).to_vec();
        bad_utf8.push(0xff);
        assert!(matches!(
            decode_chunk_key(&bad_utf8),
            Err(KeyError::NotUtf8 { .. })
        ));
        assert!(decode_host_key(&[PREFIX_HOST]).is_err());
        assert!(decode_host_key(&[PREFIX_HOST, 0xff]).is_err());
        assert!(decode_window(&[PREFIX_RAW, 0], PREFIX_RAW).is_err());
    }

    #[test]
    fn windows_align() {
        assert_eq!(window_start_s(0, 3600), 0);
        assert_eq!(window_start_s(3_599_999, 3600), 0);
        assert_eq!(window_start_s(3_600_000, 3600), 3600);
        assert_eq!(window_start_s(1_700_000_012_345, 3600), 1_699_999_200);
    }
}
