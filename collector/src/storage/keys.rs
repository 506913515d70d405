//! Key encoding for the collector's RocksDB store. Pure: no I/O, no RocksDB types.
//!
//! Every key starts with one prefix byte naming its kind, so a key read from the wrong place is
//! recognised instead of misread. Ids and timestamps are fixed-width big-endian, so the byte
//! order of keys is their numeric order and a range of windows is a range of keys.
//!
//! | kind   | CF       | layout                                                                      | bytes |
//! |--------|----------|-----------------------------------------------------------------------------|-------|
//! | host   | `hosts`  | `0x01` · host_id (UTF-8)                                                    | 2..   |
//! | meta   | `hosts`  | `0x02` · name (ASCII, e.g. `next_host_num`; blobs: `blob/` · blob name)     | 2..   |
//! | raw    | `raw`    | `0x10` · window_start_s u64 · host_num u32 · time_ms u64 · seq u64          | 29    |
//! | chunk  | `chunks` | `0x20` · window_start_s u64 · host_num u32 · activity u8 · instance (UTF-8) | 14..  |
//! | event  | `events` | `0x30` · window_start_s u64 · host_num u32 · time_ms u64 · disc u64         | 29    |
//! | kseq   | `events` | `0x31` · host_num u32 · boot_id_hash u64 · kmsg_seq u64                     | 21    |
//! | topoom | `topoom` | `0x40` · window_start_s u64 · host_num u32 · time_ms u64                    | 21    |
//! | ntp    | `ntp`    | `0x60` · window_start_s u64 · host_num u32 · time_ms u64                    | 21    |
//! | polver | `policies` | `0x50` · name_len u8 · name (ASCII) · version u64                         | 11..  |
//! | polsta | `policies` | `0x51` · name_len u8 · name (ASCII) · host_num u32                        | 7..   |
//!
//! `window_start_s` is the start of the chunk window holding the sample (or event, or ranking), in
//! Unix seconds, aligned to the window length. It comes first in `raw`, `chunks`, `event`,
//! `topoom` and `ntp` keys (time-first layout), so:
//!
//! - retention is one `delete_range` per column family: everything below `prefix · cutoff`;
//! - sealing reads the closed windows as one key range `[prefix, prefix · first_open_window)`;
//! - a query of one host and activity seeks `prefix · window · host_num · activity` once per
//!   window of its time range;
//! - listing OOM kills newest first iterates backwards from `0x30 · last_window` and stops at its
//!   limit.
//!
//! # OOM events
//!
//! An `event` key is one OOM kill of one host. `time_ms` is the kill's wall time; `disc` tells
//! apart kills of the same host in the same millisecond:
//!
//! - the event's `kmsg_seq` (the sequence number of the report's first `/dev/kmsg` record) when
//!   it has one, always below 2⁶³ (the store rejects larger ones, see
//!   [`super::validate_oom_event`]);
//! - otherwise (a kill only `/proc/vmstat` counted) [`DISC_NO_SEQ`]` | n` with
//!   `n = fnv1a64(epoch BE · seq BE · index BE) & (2⁶³ − 1)` over the batch's spool epoch and
//!   seq and the event's index in the batch ([`kmsgless_disc`]). A replayed batch has the same
//!   (epoch, seq) and is dropped as a duplicate anyway; any two stored batches differ in
//!   (epoch, seq), so two kmsg-less events never share a key (up to a 63-bit hash collision).
//!
//! A `kseq` key is the deduplication index of the kills that carry a `kmsg_seq`: it maps
//! (host, boot, seq) to the `event` key stored for it (29 bytes). The same report read twice
//! (an agent restart re-reads the kernel log) is recognised by it even when its recomputed
//! `time_ms` differs by a few milliseconds and so would not hit the same `event` key.
//! `boot_id_hash` is [`boot_id_hash`] (FNV-1a, 64 bits) of the event's `boot_id` string, since
//! `kmsg_seq` restarts at each boot. These keys are not window-first: retention finds the expired
//! ones by scanning them (one per kill) and reading the window of the event key they point to.
//!
//! The printable id of a kill ([`kill_id`]) is `{host_num:x}-{time_ms:x}-{disc:x}` in lowercase
//! hex, e.g. `7-18bcfe59839-2a` for host 7, `1700000012345` ms, `kmsg_seq` 42. The window is
//! recomputed from `time_ms`, so the id names the event key and looking it up is one get.
//!
//! # OOM policies
//!
//! A `polver` key holds one version of a policy (a prost-encoded `PolicyVersion`: document,
//! action, actor, time); the versions of a policy are neighbours, oldest first, and the history
//! is never deleted. A `polsta` key holds the status one host last reported for the policy (a
//! prost-encoded `HostPolicyStatus`). The length byte before the name keeps `web` and `web2`
//! apart in prefix scans. Names are what `fleet_policy` accepts: 1 to 128 letters, digits,
//! `-`, `_`, `.`.
//!
//! # Top-oom rankings
//!
//! A `topoom` key holds the top-oom ranking that one host's sample at `time_ms` carried (the
//! ranking is stored here, not in `raw`, which keeps only sar records).
//!
//! # NTP measurements
//!
//! An `ntp` key holds the NTP measurement (the `ClockStatus`: every server the agent asked, and
//! the kernel's view) that one host's sample at `time_ms` carried, or that arrived at `time_ms`
//! by the collector's clock when the host's clock was ahead (see `server::future`). Like
//! rankings, measurements are not kept in `raw`.
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

/// Prefix of an OOM kill (`events` CF).
pub const PREFIX_EVENT: u8 = 0x30;
/// Prefix of the deduplication index of OOM kills by kernel log sequence number (`events` CF).
pub const PREFIX_EVENT_SEQ: u8 = 0x31;
/// Prefix of a top-oom ranking (`topoom` CF).
pub const PREFIX_TOPOOM: u8 = 0x40;
/// Prefix of an NTP measurement (`ntp` CF).
pub const PREFIX_NTP: u8 = 0x60;
/// Prefix of a policy version (`policies` CF).
pub const PREFIX_POLICY_VERSION: u8 = 0x50;
/// Prefix of a host's policy status (`policies` CF).
pub const PREFIX_POLICY_STATUS: u8 = 0x51;
/// Longest policy name (as `fleet_policy` enforces).
pub const MAX_POLICY_NAME_BYTES: usize = 128;

/// The high bit of an event key's `disc`: set for events without a `kmsg_seq`, clear for the
/// `kmsg_seq` of the others.
pub const DISC_NO_SEQ: u64 = 1 << 63;

/// Meta key name: the numeric id the next new host receives (u32 BE value).
pub const META_NEXT_HOST_NUM: &str = "next_host_num";
/// Meta key name: the chunk window the store was created with, in seconds (u64 BE value). Keys
/// embed aligned window starts, so the window of an existing store never changes.
pub const META_CHUNK_WINDOW_S: &str = "chunk_window_s";

/// Meta key names of opaque blobs (`Store::put_blob`) start with this, so they never collide with
/// the store's own meta values.
pub const META_BLOB_PREFIX: &str = "blob/";
/// Longest blob name.
pub const MAX_BLOB_NAME_BYTES: usize = 128;

/// Length of a raw key.
pub const RAW_KEY_LEN: usize = 1 + 8 + 4 + 8 + 8;
/// Length of an event key.
pub const EVENT_KEY_LEN: usize = 1 + 8 + 4 + 8 + 8;
/// Length of an event deduplication index key.
pub const EVENT_SEQ_KEY_LEN: usize = 1 + 4 + 8 + 8;
/// Length of a top-oom key.
pub const TOPOOM_KEY_LEN: usize = HOST_TIME_KEY_LEN;
/// Length of an NTP measurement key.
pub const NTP_KEY_LEN: usize = HOST_TIME_KEY_LEN;
/// Length of a `prefix · window · host · time` key (top-oom rankings, NTP measurements).
const HOST_TIME_KEY_LEN: usize = 1 + 8 + 4 + 8;
/// Length of the chunk key up to (and including) the activity byte.
pub const CHUNK_SERIES_PREFIX_LEN: usize = 1 + 8 + 4 + 1;
/// Longest instance name a key may carry (sar instances are CPU numbers, devices, interfaces):
/// the wire's limit, which the agent checks too.
pub const MAX_INSTANCE_BYTES: usize = fleet_proto::limits::MAX_INSTANCE_BYTES;
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
    #[error("OOM kill id {0:?} is not HOST-TIME-DISC in hex")]
    BadKillId(String),
    #[error("blob name {0:?} is not 1 to 128 bytes of printable ASCII")]
    BadBlobName(String),
    #[error("policy name {0:?} is not 1 to 128 bytes of printable ASCII")]
    BadPolicyName(String),
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

/// A decoded `event` key: one OOM kill of one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    pub window_start_s: u64,
    pub host_num: u32,
    pub time_ms: u64,
    /// The event's `kmsg_seq`, or [`DISC_NO_SEQ`] `|` [`kmsgless_disc`] (see the module doc).
    pub disc: u64,
}

/// A decoded `topoom` key: the ranking one host's sample carried.
pub type TopOomKey = HostTimeKey;
/// A decoded `ntp` key: the NTP measurement one host's sample carried.
pub type NtpKey = HostTimeKey;

/// A decoded `prefix · window · host · time` key: one record of one host at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostTimeKey {
    pub window_start_s: u64,
    pub host_num: u32,
    pub time_ms: u64,
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

/// `0x02 · "blob/" · name`: the meta key of a blob.
///
/// # Errors
/// [`KeyError::BadBlobName`] unless `name` is 1 to [`MAX_BLOB_NAME_BYTES`] bytes of printable
/// ASCII.
pub fn blob_key(name: &str) -> Result<Vec<u8>, KeyError> {
    if name.is_empty()
        || name.len() > MAX_BLOB_NAME_BYTES
        || !name.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(KeyError::BadBlobName(name.to_owned()));
    }
    Ok(meta_key(&format!("{META_BLOB_PREFIX}{name}")))
}

fn policy_prefix(prefix: u8, name: &str) -> Result<Vec<u8>, KeyError> {
    if name.is_empty()
        || name.len() > MAX_POLICY_NAME_BYTES
        || !name.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(KeyError::BadPolicyName(name.to_owned()));
    }
    let mut out = Vec::with_capacity(2 + name.len() + 8);
    out.push(prefix);
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    Ok(out)
}

/// `0x50 · len · name · version`.
///
/// # Errors
/// [`KeyError::BadPolicyName`] for a name that is empty, too long or not printable ASCII.
pub fn policy_version_key(name: &str, version: u64) -> Result<Vec<u8>, KeyError> {
    let mut out = policy_prefix(PREFIX_POLICY_VERSION, name)?;
    out.extend_from_slice(&version.to_be_bytes());
    Ok(out)
}

/// `0x51 · len · name · host_num`.
///
/// # Errors
/// [`KeyError::BadPolicyName`] as [`policy_version_key`].
pub fn policy_status_key(name: &str, host_num: u32) -> Result<Vec<u8>, KeyError> {
    let mut out = policy_prefix(PREFIX_POLICY_STATUS, name)?;
    out.extend_from_slice(&host_num.to_be_bytes());
    Ok(out)
}

/// A decoded `policies` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyKey {
    Version { name: String, version: u64 },
    Status { name: String, host_num: u32 },
}

/// Decodes a `policies` key.
///
/// # Errors
/// [`KeyError`] for a key of another kind, a wrong length or a name that is not ASCII.
pub fn decode_policy_key(key: &[u8]) -> Result<PolicyKey, KeyError> {
    let (&prefix, rest) = key.split_first().ok_or(KeyError::Empty)?;
    let (kind, tail) = match prefix {
        PREFIX_POLICY_VERSION => ("policy version", 8),
        PREFIX_POLICY_STATUS => ("policy status", 4),
        found => {
            return Err(KeyError::WrongPrefix {
                kind: "policy",
                expected: PREFIX_POLICY_VERSION,
                found,
            })
        }
    };
    let len = usize::from(*rest.first().ok_or(KeyError::WrongLength {
        kind,
        len: key.len(),
        expected: "at least 2",
    })?);
    if rest.len() != 1 + len + tail {
        return Err(KeyError::WrongLength {
            kind,
            len: key.len(),
            expected: "1 + 1 + name length + id",
        });
    }
    let name = std::str::from_utf8(&rest[1..1 + len])
        .map_err(|_| KeyError::NotUtf8 { kind, what: "name" })?
        .to_owned();
    let id = &rest[1 + len..];
    Ok(if prefix == PREFIX_POLICY_VERSION {
        PolicyKey::Version {
            name,
            version: u64::from_be_bytes(id.try_into().expect("length checked")),
        }
    } else {
        PolicyKey::Status {
            name,
            host_num: u32::from_be_bytes(id.try_into().expect("length checked")),
        }
    })
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

/// `0x30 · window · host · time · disc`.
pub fn event_key(k: &EventKey) -> [u8; EVENT_KEY_LEN] {
    let mut out = [0u8; EVENT_KEY_LEN];
    out[..13].copy_from_slice(&host_window_prefix(
        PREFIX_EVENT,
        k.window_start_s,
        k.host_num,
    ));
    out[13..21].copy_from_slice(&k.time_ms.to_be_bytes());
    out[21..29].copy_from_slice(&k.disc.to_be_bytes());
    out
}

/// `0x30 · window`: the first event key of a window (and the exclusive end of the ones before).
pub fn event_window_prefix(window_start_s: u64) -> [u8; 9] {
    window_prefix(PREFIX_EVENT, window_start_s)
}

/// `0x30 · window · host`: the prefix of one host's events in one window.
pub fn event_host_prefix(window_start_s: u64, host_num: u32) -> [u8; 13] {
    host_window_prefix(PREFIX_EVENT, window_start_s, host_num)
}

/// Decodes an `event` key.
///
/// # Errors
/// [`KeyError`] if the prefix or the length is wrong.
pub fn decode_event_key(key: &[u8]) -> Result<EventKey, KeyError> {
    check_prefix(key, PREFIX_EVENT, "event")?;
    if key.len() != EVENT_KEY_LEN {
        return Err(KeyError::WrongLength {
            kind: "event",
            len: key.len(),
            expected: "29",
        });
    }
    Ok(EventKey {
        window_start_s: be_u64(&key[1..9]),
        host_num: be_u32(&key[9..13]),
        time_ms: be_u64(&key[13..21]),
        disc: be_u64(&key[21..29]),
    })
}

/// `0x31 · host · boot_id_hash · kmsg_seq`: the deduplication index entry of one kernel report.
pub fn event_seq_key(host_num: u32, boot_hash: u64, kmsg_seq: u64) -> [u8; EVENT_SEQ_KEY_LEN] {
    let mut out = [0u8; EVENT_SEQ_KEY_LEN];
    out[0] = PREFIX_EVENT_SEQ;
    out[1..5].copy_from_slice(&host_num.to_be_bytes());
    out[5..13].copy_from_slice(&boot_hash.to_be_bytes());
    out[13..21].copy_from_slice(&kmsg_seq.to_be_bytes());
    out
}

/// The smallest deduplication index key (for a prefix scan).
pub fn event_seq_prefix() -> [u8; 1] {
    [PREFIX_EVENT_SEQ]
}

/// The stable 64-bit hash of a boot id in `kseq` keys: FNV-1a over its UTF-8 bytes. Spelled out
/// here (not `std`'s hasher, whose algorithm may change between releases) because it is on disk.
pub fn boot_id_hash(boot_id: &str) -> u64 {
    fnv1a64(boot_id.as_bytes())
}

/// The `disc` of an event without a `kmsg_seq`: [`DISC_NO_SEQ`] with, below it, 63 bits of
/// FNV-1a over `epoch BE · seq BE · index BE` (the batch's spool epoch and seq, the event's
/// index in the batch). Unique per stored event and stable when the batch is replayed.
pub fn kmsgless_disc(epoch: u64, seq: u64, index: u64) -> u64 {
    let mut bytes = [0u8; 24];
    bytes[..8].copy_from_slice(&epoch.to_be_bytes());
    bytes[8..16].copy_from_slice(&seq.to_be_bytes());
    bytes[16..].copy_from_slice(&index.to_be_bytes());
    DISC_NO_SEQ | (fnv1a64(&bytes) & !DISC_NO_SEQ)
}

/// The printable id of an OOM kill: `{host_num:x}-{time_ms:x}-{disc:x}` (see the module doc).
pub fn kill_id(k: &EventKey) -> String {
    format!("{:x}-{:x}-{:x}", k.host_num, k.time_ms, k.disc)
}

/// Parses a [`kill_id`] back to the event key, recomputing the window from the time.
///
/// Each part is 1 to 8 (host) or 16 (time, disc) hex digits, upper or lower case; the time is at
/// most `i64::MAX` (event times are non-negative `i64`s). `window_s` must be non-zero.
///
/// # Errors
/// [`KeyError::BadKillId`] for anything else.
pub fn parse_kill_id(id: &str, window_s: u64) -> Result<EventKey, KeyError> {
    let bad = || KeyError::BadKillId(id.chars().take(64).collect());
    let hex = |part: &str, max_digits: usize| -> Option<u64> {
        if part.is_empty()
            || part.len() > max_digits
            || !part.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        u64::from_str_radix(part, 16).ok()
    };
    let mut parts = id.split('-');
    let (Some(h), Some(t), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let host_num = hex(h, 8).ok_or_else(bad)?;
    let time_ms = hex(t, 16).ok_or_else(bad)?;
    let disc = hex(d, 16).ok_or_else(bad)?;
    if time_ms > i64::MAX as u64 {
        return Err(bad());
    }
    Ok(EventKey {
        window_start_s: window_start_s(time_ms, window_s),
        host_num: u32::try_from(host_num).map_err(|_| bad())?,
        time_ms,
        disc,
    })
}

/// `0x40 · window · host · time`.
pub fn topoom_key(k: &TopOomKey) -> [u8; TOPOOM_KEY_LEN] {
    host_time_key(PREFIX_TOPOOM, k)
}

/// `0x40 · window`: the first top-oom key of a window (and the exclusive end of the ones before).
pub fn topoom_window_prefix(window_start_s: u64) -> [u8; 9] {
    window_prefix(PREFIX_TOPOOM, window_start_s)
}

/// Decodes a `topoom` key.
///
/// # Errors
/// [`KeyError`] if the prefix or the length is wrong.
pub fn decode_topoom_key(key: &[u8]) -> Result<TopOomKey, KeyError> {
    decode_host_time_key(key, PREFIX_TOPOOM, "topoom")
}

/// `0x60 · window · host · time`.
pub fn ntp_key(k: &NtpKey) -> [u8; NTP_KEY_LEN] {
    host_time_key(PREFIX_NTP, k)
}

/// `0x60 · window`: the first NTP key of a window (and the exclusive end of the ones before).
pub fn ntp_window_prefix(window_start_s: u64) -> [u8; 9] {
    window_prefix(PREFIX_NTP, window_start_s)
}

/// `0x60 · window · host`: the prefix of one host's NTP measurements in one window.
pub fn ntp_host_prefix(window_start_s: u64, host_num: u32) -> [u8; 13] {
    host_window_prefix(PREFIX_NTP, window_start_s, host_num)
}

/// Decodes an `ntp` key.
///
/// # Errors
/// [`KeyError`] if the prefix or the length is wrong.
pub fn decode_ntp_key(key: &[u8]) -> Result<NtpKey, KeyError> {
    decode_host_time_key(key, PREFIX_NTP, "ntp")
}

fn host_time_key(prefix: u8, k: &HostTimeKey) -> [u8; HOST_TIME_KEY_LEN] {
    let mut out = [0u8; HOST_TIME_KEY_LEN];
    out[..13].copy_from_slice(&host_window_prefix(prefix, k.window_start_s, k.host_num));
    out[13..21].copy_from_slice(&k.time_ms.to_be_bytes());
    out
}

fn decode_host_time_key(
    key: &[u8],
    prefix: u8,
    kind: &'static str,
) -> Result<HostTimeKey, KeyError> {
    check_prefix(key, prefix, kind)?;
    if key.len() != HOST_TIME_KEY_LEN {
        return Err(KeyError::WrongLength {
            kind,
            len: key.len(),
            expected: "21",
        });
    }
    Ok(HostTimeKey {
        window_start_s: be_u64(&key[1..9]),
        host_num: be_u32(&key[9..13]),
        time_ms: be_u64(&key[13..21]),
    })
}

/// Decodes the window start of a window-first key (`raw`, `chunks`, `event`, `topoom`, `ntp`) carrying
/// prefix `prefix`, without looking at the rest (used to skip empty windows in a query).
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

/// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
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
        assert_eq!(blob_key("a/b").unwrap(), meta_key("blob/a/b"));
        for bad in ["", "a b", "é", &"x".repeat(MAX_BLOB_NAME_BYTES + 1)] {
            assert!(
                matches!(blob_key(bad), Err(KeyError::BadBlobName(_))),
                "{bad:?}"
            );
        }
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
    fn event_keys_round_trip_and_order() {
        let k = EventKey {
            window_start_s: 1_699_999_200,
            host_num: 7,
            time_ms: 1_700_000_012_345,
            disc: 42,
        };
        let bytes = event_key(&k);
        assert_eq!(bytes[0], PREFIX_EVENT);
        assert_eq!(decode_event_key(&bytes), Ok(k));
        assert!(bytes.starts_with(&event_host_prefix(1_699_999_200, 7)));
        assert!(bytes.starts_with(&event_window_prefix(1_699_999_200)));
        assert_eq!(decode_window(&bytes, PREFIX_EVENT), Ok(1_699_999_200));
        assert!(matches!(
            decode_event_key(&bytes[..28]),
            Err(KeyError::WrongLength { .. })
        ));
        assert!(matches!(
            decode_event_key(&raw_key(&RawKey {
                window_start_s: 0,
                host_num: 0,
                time_ms: 0,
                seq: 0
            })),
            Err(KeyError::WrongPrefix { .. })
        ));
        // Kinds stay apart: every event key sorts below the index and the rankings.
        let last_event = event_key(&EventKey {
            window_start_s: u64::MAX,
            host_num: u32::MAX,
            time_ms: u64::MAX,
            disc: u64::MAX,
        });
        assert!(chunk_window_prefix(u64::MAX).as_slice() < last_event.as_slice());
        assert!(last_event.as_slice() < event_seq_prefix().as_slice());
        assert!(event_seq_key(u32::MAX, u64::MAX, u64::MAX).as_slice() < &[PREFIX_TOPOOM][..]);

        let s = event_seq_key(7, boot_id_hash("b"), 42);
        assert_eq!(s.len(), EVENT_SEQ_KEY_LEN);
        assert!(s.starts_with(&event_seq_prefix()));
    }

    #[test]
    fn ntp_keys_round_trip_apart_from_topoom_keys() {
        let k = NtpKey {
            window_start_s: 3600,
            host_num: 7,
            time_ms: 3_600_123,
        };
        let bytes = ntp_key(&k);
        assert_eq!(bytes[0], PREFIX_NTP);
        assert_eq!(decode_ntp_key(&bytes), Ok(k));
        assert!(bytes.starts_with(&ntp_host_prefix(3600, 7)));
        assert!(bytes.starts_with(&ntp_window_prefix(3600)));
        assert!(bytes.as_slice() < ntp_window_prefix(3601).as_slice());
        assert_eq!(decode_window(&bytes, PREFIX_NTP), Ok(3600));
        assert!(matches!(
            decode_ntp_key(&topoom_key(&k)),
            Err(KeyError::WrongPrefix { kind: "ntp", .. })
        ));
        assert!(decode_topoom_key(&bytes).is_err());
        assert!(decode_ntp_key(&bytes[..20]).is_err());
    }

    #[test]
    fn topoom_keys_round_trip() {
        let k = TopOomKey {
            window_start_s: 3600,
            host_num: 3,
            time_ms: 3_600_500,
        };
        let bytes = topoom_key(&k);
        assert_eq!(decode_topoom_key(&bytes), Ok(k));
        assert!(bytes.starts_with(&topoom_window_prefix(3600)));
        assert_eq!(decode_window(&bytes, PREFIX_TOPOOM), Ok(3600));
        assert!(decode_topoom_key(&bytes[..20]).is_err());
        assert!(decode_topoom_key(
            &event_key(&EventKey {
                window_start_s: 0,
                host_num: 0,
                time_ms: 0,
                disc: 0
            })[..21]
        )
        .is_err());
    }

    #[test]
    fn hashes_are_the_documented_fnv1a() {
        // Published FNV-1a 64 test vectors: "" and "a".
        assert_eq!(boot_id_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(boot_id_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let d = kmsgless_disc(1, 2, 0);
        assert_eq!(d & DISC_NO_SEQ, DISC_NO_SEQ);
        assert_eq!(d, kmsgless_disc(1, 2, 0));
        assert_ne!(d, kmsgless_disc(1, 2, 1));
        assert_ne!(d, kmsgless_disc(1, 3, 0));
        assert_ne!(d, kmsgless_disc(2, 2, 0));
    }

    #[test]
    fn kill_ids_round_trip_and_reject_garbage() {
        let k = EventKey {
            window_start_s: 1_699_999_200,
            host_num: 7,
            time_ms: 1_700_000_012_345,
            disc: 42,
        };
        assert_eq!(kill_id(&k), "7-18bcfe59839-2a");
        assert_eq!(parse_kill_id("7-18bcfe59839-2a", 3600), Ok(k));
        assert_eq!(parse_kill_id("7-18BCFE59839-2A", 3600), Ok(k));
        let big = EventKey {
            window_start_s: window_start_s(i64::MAX as u64, 60),
            host_num: u32::MAX,
            time_ms: i64::MAX as u64,
            disc: u64::MAX,
        };
        assert_eq!(parse_kill_id(&kill_id(&big), 60), Ok(big));
        for bad in [
            "",
            "7",
            "7-1",
            "7-1-2-3",
            "7--2",
            "-1-2",
            "7-1-",
            "+7-1-2",
            "7-+1-2",
            "7-1-g",
            "7 -1-2",
            "100000000-1-2",
            "7-8000000000000000-2",
            "7-1-10000000000000000",
            "7-1-2\n",
            "é-1-2",
        ] {
            assert!(
                matches!(parse_kill_id(bad, 3600), Err(KeyError::BadKillId(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn windows_align() {
        assert_eq!(window_start_s(0, 3600), 0);
        assert_eq!(window_start_s(3_599_999, 3600), 0);
        assert_eq!(window_start_s(3_600_000, 3600), 3600);
        assert_eq!(window_start_s(1_700_000_012_345, 3600), 1_699_999_200);
    }

    #[test]
    fn policy_keys_round_trip_and_keep_names_apart() {
        let v = policy_version_key("protect-sshd", 3).unwrap();
        assert_eq!(
            decode_policy_key(&v).unwrap(),
            PolicyKey::Version {
                name: "protect-sshd".into(),
                version: 3
            }
        );
        let st = policy_status_key("web", 7).unwrap();
        assert_eq!(
            decode_policy_key(&st).unwrap(),
            PolicyKey::Status {
                name: "web".into(),
                host_num: 7
            }
        );
        // Versions of a policy sort by number; "web" and "web2" do not interleave.
        assert!(policy_version_key("a", 2).unwrap() < policy_version_key("a", 10).unwrap());
        let web = policy_status_key("web", u32::MAX).unwrap();
        let web2 = policy_status_key("web2", 0).unwrap();
        assert!(web < web2);
        assert!(!web2.starts_with(&policy_prefix(PREFIX_POLICY_STATUS, "web").unwrap()));
        assert!(policy_version_key("", 1).is_err());
        assert!(policy_version_key(&"x".repeat(129), 1).is_err());
        assert!(decode_policy_key(&v[..v.len() - 1]).is_err());
        assert!(decode_policy_key(&[PREFIX_RAW, 1, b'a']).is_err());
    }
}
