//! The spool's on-disk codecs (the format is described in the [`super`] module doc): segment
//! names, frames (read with their CRC checked, resynchronised after corruption, encoded) and
//! `spool.meta`. Pure functions over bytes and text, and positioned reads of one file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::Frame;

pub(super) const SEG_MAGIC: &[u8; 8] = b"FLEETSP1";
pub(super) const SEG_HEADER: u64 = 16;
pub(super) const FRAME_HEADER: u64 = 20;
/// A frame larger than this is garbage, not data (a sample is a few KiB).
pub(super) const MAX_FRAME: u32 = 16 * 1024 * 1024;
/// High bit of a frame's `samples` field: the frame holds OOM events and is never dropped.
pub(super) const PRECIOUS: u32 = 1 << 31;

/// Result of decoding the frame at one offset.
pub(super) enum FrameAt {
    Frame {
        frame: Frame,
        next: u64,
    },
    /// Corrupt data at this offset.
    Corrupt,
    /// Clean end of file, or a torn frame running past it.
    End {
        torn: bool,
    },
}

pub(super) fn read_frame_at(file: &File, off: u64, file_len: u64) -> io::Result<FrameAt> {
    if off == file_len {
        return Ok(FrameAt::End { torn: false });
    }
    if off + FRAME_HEADER > file_len {
        return Ok(FrameAt::End { torn: true });
    }
    let mut h = [0u8; FRAME_HEADER as usize];
    file.read_exact_at(&mut h, off)?;
    let len = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    let flags_samples = u32::from_le_bytes(h[16..20].try_into().expect("4 bytes"));
    let (precious, samples) = (flags_samples & PRECIOUS != 0, flags_samples & !PRECIOUS);
    if len > MAX_FRAME || seq == 0 {
        return Ok(FrameAt::Corrupt);
    }
    let end = off + FRAME_HEADER + u64::from(len);
    if end > file_len {
        // Either a torn append or a corrupt length; the caller decides by what follows.
        return Ok(FrameAt::End { torn: true });
    }
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, off + FRAME_HEADER)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&h[8..20]);
    hasher.update(&payload);
    if hasher.finalize() != crc {
        return Ok(FrameAt::Corrupt);
    }
    Ok(FrameAt::Frame {
        frame: Frame {
            seq,
            samples,
            precious,
            payload,
            from_disk: true,
        },
        next: end,
    })
}

/// Finds the next offset after `from` where a valid frame starts, if any.
pub(super) fn resync(file: &File, from: u64, file_len: u64) -> io::Result<Option<u64>> {
    let mut off = from + 1;
    while off + FRAME_HEADER <= file_len {
        if let FrameAt::Frame { .. } = read_frame_at(file, off, file_len)? {
            return Ok(Some(off));
        }
        off += 1;
    }
    Ok(None)
}

pub(super) fn encode_frame(seq: u64, samples: u32, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(FRAME_HEADER as usize + payload.len());
    body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    body.extend_from_slice(&[0u8; 4]);
    body.extend_from_slice(&seq.to_le_bytes());
    body.extend_from_slice(&samples.to_le_bytes());
    body.extend_from_slice(payload);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&body[8..]);
    let crc = hasher.finalize();
    body[4..8].copy_from_slice(&crc.to_le_bytes());
    body
}

pub(super) fn seg_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.log")
}

pub(super) fn parse_seg_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

#[derive(Debug)]
pub(super) struct Meta {
    pub(super) epoch: u64,
    pub(super) next_seq: u64,
    pub(super) dropped_samples: u64,
    pub(super) rejected_batches: u64,
}

/// Parses spool.meta. Pure.
pub(super) fn parse_meta(text: &str) -> Result<Meta, String> {
    let (mut epoch, mut next_seq, mut dropped, mut rejected) = (None, None, None, 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line
            .split_once(' ')
            .ok_or_else(|| format!("malformed line {line:?}"))?;
        match k {
            "epoch" => epoch = Some(u64::from_str_radix(v, 16).map_err(|e| format!("epoch: {e}"))?),
            "next_seq" => next_seq = Some(v.parse().map_err(|e| format!("next_seq: {e}"))?),
            "dropped_samples" => {
                dropped = Some(v.parse().map_err(|e| format!("dropped_samples: {e}"))?)
            }
            "rejected_batches" => {
                rejected = v.parse().map_err(|e| format!("rejected_batches: {e}"))?
            }
            other => return Err(format!("unknown key {other:?}")),
        }
    }
    Ok(Meta {
        epoch: epoch.ok_or("missing epoch")?,
        next_seq: next_seq.ok_or("missing next_seq")?,
        dropped_samples: dropped.ok_or("missing dropped_samples")?,
        rejected_batches: rejected,
    })
}

/// Parses `spool.reserve`: `boot_id <id>\nnext_seq <n>\n`. `None` when it does not parse (it
/// is then ignored: the reservation only ever skips seqs).
pub(super) fn parse_reserve(text: &str) -> Option<(String, u64)> {
    let mut boot = None;
    let mut seq = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("boot_id", v)) => boot = Some(v.to_string()),
            Some(("next_seq", v)) => seq = v.parse().ok(),
            _ => {}
        }
    }
    Some((boot?, seq?))
}
