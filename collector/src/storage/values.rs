//! Value encoding for the collector's RocksDB store. Pure: no I/O, no RocksDB types. The keys
//! are in [`super::keys`], the chunk values in [`super::chunk`]; every other value is encoded
//! and decoded here, and every decoder checks what it reads and returns
//! [`StorageError::Corrupt`] (naming the record) instead of panicking.
//!
//! | value          | CF         | key                       | format                                |
//! |----------------|------------|---------------------------|---------------------------------------|
//! | host record    | `hosts`    | `0x01` · host_id          | version 2, below                      |
//! | next host num  | `hosts`    | `0x02` · `next_host_num`  | u32 BE                                |
//! | chunk window   | `hosts`    | `0x02` · `chunk_window_s` | u64 BE, never zero                    |
//! | blob           | `hosts`    | `0x02` · `blob/` · name   | opaque bytes (`Store::put_blob`)      |
//! | raw sample     | `raw`      | `0x10` · …                | prost `fleet.v1.Sample`, see below    |
//! | chunk          | `chunks`   | `0x20` · …                | see [`super::chunk`]                  |
//! | OOM event      | `events`   | `0x30` · …                | prost `fleet.v1.OomEvent` as received |
//! | event index    | `events`   | `0x31` · …                | the 29-byte `0x30` key of the kill    |
//! | top-oom        | `topoom`   | `0x40` · …                | prost ranking, see below              |
//! | NTP measurement | `ntp`     | `0x60` · …                | prost `fleet.v1.ClockStatus` as received |
//! | policy version | `policies` | `0x50` · …                | prost `fleet.v1.PolicyVersion`        |
//! | policy status  | `policies` | `0x51` · …                | prost `fleet.v1.HostPolicyStatus`     |
//!
//! A raw sample is stored as received when it carries no top-oom ranking; one that does is
//! stored as its `time_ms`, `interval_ms` and `records` alone (the ranking goes to `topoom`),
//! and not at all when it has no records. A top-oom ranking is a prost message with one field,
//! `repeated fleet.v1.OomProcess processes = 1`, highest `oom_score` first.
//!
//! # Host record
//!
//! Version 2, big-endian:
//!
//! ```text
//! 2:u8 · num:u32 · first_seen_ms:i64 · last_seen_ms:i64 · connected:u8 · dropped_samples:u64
//!   · epoch:u64 · last_seq:u64 · top_oom_ms:i64 · kmsg_len:u16 · kmsg · identity
//! ```
//!
//! `connected` is 0 or 1; `top_oom_ms` is the time of the host's latest top-oom ranking (−1:
//! none); `kmsg` the `kmsg_len` bytes of the prost-encoded `KmsgStatus` last reported, and
//! `identity` (the rest) the prost-encoded `HostIdentity`. Version 1 records (written before OOM
//! support) are still read: the same without `top_oom_ms`, `kmsg_len` and `kmsg`; the store
//! rewrites them as version 2 on the host's next change.
//!
//! # Checks against the key
//!
//! A raw sample's `time_ms` must be its key's; an OOM event's `time_ms` must be its key's, and
//! its `kmsg_seq` must agree with the key's discriminator (see [`super::keys`], "OOM events").

use fleet_proto::v1::{
    ClockStatus, HostIdentity, HostPolicyStatus, KmsgStatus, OomEvent, OomProcess, PolicyVersion,
    Sample,
};
use prost::Message;

use super::keys::{self, EventKey, RawKey};
use super::{HostRecord, StorageError, StoredOomKill};

/// The version of the host records this release writes.
pub const HOST_RECORD_VERSION: u8 = 2;
/// The fixed part of a version 1 record (everything before the identity).
pub const HOST_RECORD_V1_FIXED_LEN: usize = 1 + 4 + 8 + 8 + 1 + 8 + 8 + 8;
/// The fixed part of a version 2 record (everything before the `kmsg` bytes).
pub const HOST_RECORD_V2_FIXED_LEN: usize = HOST_RECORD_V1_FIXED_LEN + 8 + 2;
/// `top_oom_ms` of a host without a ranking.
pub const NO_TOP_OOM: i64 = -1;

/// The value of a `topoom` key.
#[derive(Clone, PartialEq, prost::Message)]
struct TopOomRanking {
    #[prost(message, repeated, tag = "1")]
    processes: Vec<OomProcess>,
}

/// Encodes a host record (the current version) with the time of its latest ranking.
pub fn encode_host_record(r: &HostRecord, top_oom_ms: Option<i64>) -> Vec<u8> {
    let kmsg_len = r.kmsg.encoded_len();
    let mut out =
        Vec::with_capacity(HOST_RECORD_V2_FIXED_LEN + kmsg_len + r.identity.encoded_len());
    out.push(HOST_RECORD_VERSION);
    out.extend_from_slice(&r.num.to_be_bytes());
    out.extend_from_slice(&r.first_seen_ms.to_be_bytes());
    out.extend_from_slice(&r.last_seen_ms.to_be_bytes());
    out.push(u8::from(r.connected));
    out.extend_from_slice(&r.dropped_samples.to_be_bytes());
    out.extend_from_slice(&r.epoch.to_be_bytes());
    out.extend_from_slice(&r.last_seq.to_be_bytes());
    out.extend_from_slice(&top_oom_ms.unwrap_or(NO_TOP_OOM).to_be_bytes());
    // Three varints: at most 30 bytes.
    let kmsg_len = u16::try_from(kmsg_len).expect("a KmsgStatus is a few bytes");
    out.extend_from_slice(&kmsg_len.to_be_bytes());
    r.kmsg
        .encode(&mut out)
        .expect("a Vec grows to fit any message");
    r.identity
        .encode(&mut out)
        .expect("a Vec grows to fit any message");
    out
}

/// Decodes a host record of version 1 or 2, with the time of its latest ranking.
///
/// # Errors
/// [`StorageError::Corrupt`] for an unknown version, a short record, a `connected` byte other
/// than 0 or 1, a negative `top_oom_ms` other than −1, or a `kmsg` or identity that does not
/// decode.
pub fn decode_host_record(v: &[u8]) -> Result<(HostRecord, Option<i64>), StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt {
        what: "host record",
        detail,
    };
    let fixed_len = match v.first() {
        Some(1) => HOST_RECORD_V1_FIXED_LEN,
        Some(2) => HOST_RECORD_V2_FIXED_LEN,
        Some(&b) => return Err(corrupt(format!("unknown version {b}"))),
        None => return Err(corrupt("empty".into())),
    };
    if v.len() < fixed_len {
        return Err(corrupt(format!("{} bytes", v.len())));
    }
    let u64_at = |i: usize| u64::from_be_bytes(v[i..i + 8].try_into().expect("8 bytes"));
    let connected = match v[21] {
        0 => false,
        1 => true,
        b => return Err(corrupt(format!("connected byte {b}"))),
    };
    let (top_oom_ms, kmsg, identity_at) = if v[0] == 1 {
        (None, KmsgStatus::default(), HOST_RECORD_V1_FIXED_LEN)
    } else {
        let t = u64_at(HOST_RECORD_V1_FIXED_LEN) as i64;
        let top_oom_ms = match t {
            NO_TOP_OOM => None,
            t if t >= 0 => Some(t),
            t => return Err(corrupt(format!("top_oom_ms {t}"))),
        };
        let len_at = HOST_RECORD_V1_FIXED_LEN + 8;
        let kmsg_len = usize::from(u16::from_be_bytes(
            v[len_at..len_at + 2].try_into().expect("2 bytes"),
        ));
        let kmsg_end = HOST_RECORD_V2_FIXED_LEN + kmsg_len;
        let Some(kmsg_bytes) = v.get(HOST_RECORD_V2_FIXED_LEN..kmsg_end) else {
            return Err(corrupt(format!(
                "kmsg of {kmsg_len} bytes in a record of {}",
                v.len()
            )));
        };
        let kmsg = KmsgStatus::decode(kmsg_bytes).map_err(|e| corrupt(format!("kmsg: {e}")))?;
        (top_oom_ms, kmsg, kmsg_end)
    };
    let identity =
        HostIdentity::decode(&v[identity_at..]).map_err(|e| corrupt(format!("identity: {e}")))?;
    let rec = HostRecord {
        num: u32::from_be_bytes(v[1..5].try_into().expect("4 bytes")),
        first_seen_ms: u64_at(5) as i64,
        last_seen_ms: u64_at(13) as i64,
        connected,
        dropped_samples: u64_at(22),
        epoch: u64_at(30),
        last_seq: u64_at(38),
        identity,
        kmsg,
    };
    Ok((rec, top_oom_ms))
}

/// Encodes the `next_host_num` meta value.
pub fn encode_next_host_num(num: u32) -> [u8; 4] {
    num.to_be_bytes()
}

/// Decodes the `next_host_num` meta value.
///
/// # Errors
/// [`StorageError::Corrupt`] unless it is 4 bytes.
pub fn decode_next_host_num(v: &[u8]) -> Result<u32, StorageError> {
    Ok(u32::from_be_bytes(v.try_into().map_err(|_| {
        StorageError::Corrupt {
            what: "meta next_host_num",
            detail: format!("{} bytes", v.len()),
        }
    })?))
}

/// Encodes the `chunk_window_s` meta value.
pub fn encode_chunk_window_s(window_s: u64) -> [u8; 8] {
    window_s.to_be_bytes()
}

/// Decodes the `chunk_window_s` meta value.
///
/// # Errors
/// [`StorageError::Corrupt`] unless it is 8 bytes and not zero.
pub fn decode_chunk_window_s(v: &[u8]) -> Result<u64, StorageError> {
    let window_s = u64::from_be_bytes(v.try_into().map_err(|_| StorageError::Corrupt {
        what: "meta chunk_window_s",
        detail: format!("{} bytes", v.len()),
    })?);
    if window_s == 0 {
        return Err(StorageError::Corrupt {
            what: "meta chunk_window_s",
            detail: "zero".into(),
        });
    }
    Ok(window_s)
}

/// Encodes a raw sample into `buf` (cleared first). The caller strips the `top_oom` ranking,
/// which is stored apart.
///
/// # Errors
/// [`StorageError::InvalidSample`] if prost refuses it.
pub fn encode_raw_sample(sample: &Sample, buf: &mut Vec<u8>) -> Result<(), StorageError> {
    buf.clear();
    sample
        .encode(buf)
        .map_err(|e| StorageError::InvalidSample(e.to_string()))
}

/// Decodes a raw sample and checks it against its key.
///
/// # Errors
/// [`StorageError::Corrupt`] if it does not decode or its time is not its key's.
pub fn decode_raw_sample(key: &RawKey, value: &[u8]) -> Result<Sample, StorageError> {
    let sample = Sample::decode(value).map_err(|e| StorageError::Corrupt {
        what: "raw sample",
        detail: e.to_string(),
    })?;
    if u64::try_from(sample.time_ms).ok() != Some(key.time_ms) {
        return Err(StorageError::Corrupt {
            what: "raw sample",
            detail: format!("time_ms {} under key time {}", sample.time_ms, key.time_ms),
        });
    }
    Ok(sample)
}

/// Encodes an OOM event (as received).
pub fn encode_oom_event(event: &OomEvent) -> Vec<u8> {
    event.encode_to_vec()
}

/// Decodes a stored OOM kill and checks it against its key.
///
/// # Errors
/// [`StorageError::Corrupt`] if it does not decode, or its time or `kmsg_seq` disagrees with
/// the key.
pub fn decode_oom_kill(key: &EventKey, value: &[u8]) -> Result<StoredOomKill, StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt {
        what: "OOM event",
        detail,
    };
    let event = OomEvent::decode(value).map_err(|e| corrupt(e.to_string()))?;
    if u64::try_from(event.time_ms).ok() != Some(key.time_ms) {
        return Err(corrupt(format!(
            "time_ms {} under key time {}",
            event.time_ms, key.time_ms
        )));
    }
    let seq_disc = key.disc & keys::DISC_NO_SEQ == 0;
    if seq_disc != event.kmsg_seq.is_some() || (seq_disc && event.kmsg_seq != Some(key.disc)) {
        return Err(corrupt(format!(
            "kmsg_seq {:?} under key discriminator {:#x}",
            event.kmsg_seq, key.disc
        )));
    }
    Ok(StoredOomKill {
        id: keys::kill_id(key),
        host_num: key.host_num,
        event,
    })
}

/// Encodes a top-oom ranking (the caller orders it highest `oom_score` first).
pub fn encode_ranking(processes: &[OomProcess]) -> Vec<u8> {
    let mut out = Vec::new();
    // What `TopOomRanking::encode` writes, without cloning the processes into one.
    prost::encoding::message::encode_repeated(1, processes, &mut out);
    out
}

/// Decodes a top-oom ranking.
///
/// # Errors
/// [`StorageError::Corrupt`] if it does not decode.
pub fn decode_ranking(value: &[u8]) -> Result<Vec<OomProcess>, StorageError> {
    TopOomRanking::decode(value)
        .map(|r| r.processes)
        .map_err(|e| StorageError::Corrupt {
            what: "top-oom ranking",
            detail: e.to_string(),
        })
}

/// Encodes one NTP measurement.
pub fn encode_clock(clock: &ClockStatus) -> Vec<u8> {
    clock.encode_to_vec()
}

/// Decodes one NTP measurement.
///
/// # Errors
/// [`StorageError::Corrupt`] if it does not decode.
pub fn decode_clock(value: &[u8]) -> Result<ClockStatus, StorageError> {
    ClockStatus::decode(value).map_err(|e| StorageError::Corrupt {
        what: "NTP measurement",
        detail: e.to_string(),
    })
}

/// Encodes one version of a policy.
pub fn encode_policy_version(version: &PolicyVersion) -> Vec<u8> {
    version.encode_to_vec()
}

/// Decodes one version of the policy `name` (the name is for the error).
///
/// # Errors
/// [`StorageError::Corrupt`] if it does not decode.
pub fn decode_policy_version(name: &str, value: &[u8]) -> Result<PolicyVersion, StorageError> {
    PolicyVersion::decode(value).map_err(|e| StorageError::Corrupt {
        what: "policy version",
        detail: format!("{name}: {e}"),
    })
}

/// Encodes the status a host reported for a policy.
pub fn encode_policy_status(status: &HostPolicyStatus) -> Vec<u8> {
    status.encode_to_vec()
}

/// Decodes the status host `host_num` reported for the policy `name` (both for the error).
///
/// # Errors
/// [`StorageError::Corrupt`] if it does not decode.
pub fn decode_policy_status(
    name: &str,
    host_num: u32,
    value: &[u8],
) -> Result<HostPolicyStatus, StorageError> {
    HostPolicyStatus::decode(value).map_err(|e| StorageError::Corrupt {
        what: "policy status",
        detail: format!("{name}, host {host_num}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use fleet_proto::v1::{HostPolicyStatus, OomProcess, PolicyVersion};

    use super::*;
    use crate::storage::fixtures::{identity, kill, process, sample, T0};

    #[test]
    fn host_records_round_trip_and_reject_garbage() {
        let rec = HostRecord {
            num: 7,
            identity: HostIdentity {
                host_id: "m".into(),
                labels: [("rack".to_string(), "r1".to_string())].into(),
                ..identity("m")
            },
            first_seen_ms: -1,
            last_seen_ms: i64::MAX,
            connected: true,
            dropped_samples: 3,
            epoch: u64::MAX,
            last_seq: 12,
            kmsg: KmsgStatus {
                records_read: 1000,
                records_lost: 3,
                unlogged_kills: 1,
            },
        };
        let bytes = encode_host_record(&rec, Some(T0));
        assert_eq!(decode_host_record(&bytes).unwrap(), (rec.clone(), Some(T0)));
        let none = encode_host_record(&rec, None);
        assert_eq!(decode_host_record(&none).unwrap(), (rec.clone(), None));
        assert!(decode_host_record(&bytes[..10]).is_err());
        assert!(decode_host_record(&[]).is_err());
        let mut v = bytes.clone();
        v[0] = 3;
        assert!(decode_host_record(&v).is_err());
        let mut v = bytes.clone();
        v[21] = 7;
        assert!(decode_host_record(&v).is_err());
        let mut v = bytes;
        v.push(0xff);
        assert!(decode_host_record(&v).is_err());
    }

    #[test]
    fn meta_values_round_trip_and_reject_garbage() {
        let next = encode_next_host_num(7);
        assert_eq!(next, [0, 0, 0, 7]);
        assert_eq!(decode_next_host_num(&next).unwrap(), 7);
        assert!(decode_next_host_num(&[0, 7]).is_err());
        let window = encode_chunk_window_s(3600);
        assert_eq!(window, 3600u64.to_be_bytes());
        assert_eq!(decode_chunk_window_s(&window).unwrap(), 3600);
        assert!(decode_chunk_window_s(&[0; 8]).is_err(), "zero");
        assert!(decode_chunk_window_s(&next).is_err());
    }

    #[test]
    fn raw_samples_round_trip_and_are_checked_against_their_key() {
        let s = sample(T0);
        let key = RawKey {
            window_start_s: (T0 / 1000) as u64,
            host_num: 1,
            time_ms: T0 as u64,
            seq: 1,
        };
        let mut buf = vec![1, 2, 3];
        encode_raw_sample(&s, &mut buf).unwrap();
        assert_eq!(buf, s.encode_to_vec(), "the prost encoding, nothing else");
        assert_eq!(decode_raw_sample(&key, &buf).unwrap(), s);
        let other_time = RawKey {
            time_ms: T0 as u64 + 1,
            ..key
        };
        assert!(matches!(
            decode_raw_sample(&other_time, &buf),
            Err(StorageError::Corrupt { .. })
        ));
        assert!(decode_raw_sample(&key, &[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn oom_kills_round_trip_and_are_checked_against_their_key() {
        let with_seq = kill(T0, Some(42), 1);
        let key = EventKey {
            window_start_s: (T0 / 1000) as u64,
            host_num: 7,
            time_ms: T0 as u64,
            disc: 42,
        };
        let v = encode_oom_event(&with_seq);
        assert_eq!(v, with_seq.encode_to_vec());
        let stored = decode_oom_kill(&key, &v).unwrap();
        assert_eq!(stored.event, with_seq);
        assert_eq!(
            (stored.host_num, stored.id.as_str()),
            (7, "7-18bcfd93300-2a")
        );
        // Time, seq, or the kind of discriminator disagreeing with the key.
        for wrong in [
            EventKey {
                time_ms: T0 as u64 + 1,
                ..key
            },
            EventKey { disc: 43, ..key },
            EventKey {
                disc: keys::DISC_NO_SEQ | 42,
                ..key
            },
        ] {
            assert!(matches!(
                decode_oom_kill(&wrong, &v),
                Err(StorageError::Corrupt { .. })
            ));
        }
        let without = kill(T0, None, 2);
        let key_without = EventKey {
            disc: keys::DISC_NO_SEQ | 5,
            ..key
        };
        let v = encode_oom_event(&without);
        assert_eq!(decode_oom_kill(&key_without, &v).unwrap().event, without);
        assert!(decode_oom_kill(&key, &v).is_err());
        assert!(decode_oom_kill(&key, &[0xff]).is_err());
    }

    #[test]
    fn rankings_are_the_documented_prost_message() {
        let processes = vec![process(2, 900), process(1, 200)];
        let v = encode_ranking(&processes);
        let as_message = TopOomRanking {
            processes: processes.clone(),
        };
        assert_eq!(v, as_message.encode_to_vec());
        assert_eq!(decode_ranking(&v).unwrap(), processes);
        assert_eq!(encode_ranking(&[]), Vec::<u8>::new());
        assert_eq!(decode_ranking(&[]).unwrap(), Vec::<OomProcess>::new());
        assert!(matches!(
            decode_ranking(&[0xff]),
            Err(StorageError::Corrupt { .. })
        ));
    }

    #[test]
    fn policy_values_round_trip_and_name_what_is_corrupt() {
        let version = PolicyVersion {
            name: "web".into(),
            version: 3,
            document: "doc".into(),
            ..Default::default()
        };
        let v = encode_policy_version(&version);
        assert_eq!(v, version.encode_to_vec());
        assert_eq!(decode_policy_version("web", &v).unwrap(), version);
        let err = decode_policy_version("web", &[0xff]).unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { what: "policy version", detail } if detail.starts_with("web: ")),
            "{err}"
        );
        let status = HostPolicyStatus {
            state: "enforced".into(),
            ..Default::default()
        };
        let v = encode_policy_status(&status);
        assert_eq!(decode_policy_status("web", 4, &v).unwrap(), status);
        let err = decode_policy_status("web", 4, &[0xff]).unwrap_err();
        assert!(
            matches!(&err, StorageError::Corrupt { what: "policy status", detail } if detail.starts_with("web, host 4: ")),
            "{err}"
        );
    }
}
