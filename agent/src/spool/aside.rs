//! Batches the collector refused as invalid, set aside: out of the send queue, kept on disk
//! for inspection, bounded.
//!
//! `STATE_DIR/spool/rejected/` holds, per batch set aside, its payload (the prost-encoded
//! `fleet.v1.Batch` exactly as spooled, e.g. `protoc --decode fleet.v1.Batch fleet.proto <
//! FILE`) and a text file saying when and why:
//!
//! ```text
//! 00c0ffee00c0ffee-00000000000000000733.batch
//! 00c0ffee00c0ffee-00000000000000000733.why      refused_at_ms 1700000000000
//!                                                reason batch seq 733: OOM event 0: ...
//! ```
//!
//! The names carry the spool epoch and the seq: on open, the files of the current epoch whose
//! seq is not acknowledged yet say which frames the spool must not send again (no other state
//! is needed, so a restart never resends a refused batch). The directory keeps the newest
//! [`MAX_KEPT`] batches and at most [`MAX_KEPT_BYTES`] (the newest one always); older ones are
//! deleted. How many were ever set aside is counted in `spool.meta` (`rejected_batches`).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{io_err, sync_dir, SpoolError};

/// Batches kept in `rejected/`, at most.
pub const MAX_KEPT: usize = 16;
/// Bytes of batches kept in `rejected/`, at most (beyond the newest one).
pub const MAX_KEPT_BYTES: u64 = 32 * 1024 * 1024;
/// The directory under the spool's.
pub const DIR: &str = "rejected";

fn stem(epoch: u64, seq: u64) -> String {
    format!("{epoch:016x}-{seq:020}")
}

fn parse_stem(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".batch")?;
    let (epoch, seq) = stem.split_once('-')?;
    Some((u64::from_str_radix(epoch, 16).ok()?, seq.parse().ok()?))
}

/// The batches set aside in one spool directory.
#[derive(Debug)]
pub(super) struct Aside {
    dir: PathBuf,
    /// Seqs of the current epoch set aside and not yet acknowledged past: never sent again.
    pub(super) seqs: BTreeSet<u64>,
}

impl Aside {
    /// Reads `spool_dir/rejected/`: the seqs of `epoch` set aside.
    ///
    /// # Errors
    /// The directory exists but cannot be read.
    pub(super) fn open(spool_dir: &Path, epoch: u64) -> Result<Aside, SpoolError> {
        let dir = spool_dir.join(DIR);
        let mut seqs = BTreeSet::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io_err(&dir))?;
                    if let Some((e, seq)) = entry.file_name().to_str().and_then(parse_stem) {
                        if e == epoch {
                            seqs.insert(seq);
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
        Ok(Aside { dir, seqs })
    }

    /// Keeps `payload`, the batch `seq` of `epoch`, with why it was refused; returns its path.
    /// The oldest kept batches go beyond the bounds.
    ///
    /// # Errors
    /// I/O errors writing the files.
    pub(super) fn keep(
        &mut self,
        epoch: u64,
        seq: u64,
        payload: &[u8],
        refused_at_ms: i64,
        reason: &str,
    ) -> Result<PathBuf, SpoolError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let stem = stem(epoch, seq);
        let why = self.dir.join(format!("{stem}.why"));
        // The reason is the collector's text: one line, whatever it holds.
        let reason: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        fs::write(
            &why,
            format!("refused_at_ms {refused_at_ms}\nreason {reason}\n"),
        )
        .map_err(io_err(&why))?;
        let batch = self.dir.join(format!("{stem}.batch"));
        fs::write(&batch, payload).map_err(io_err(&batch))?;
        fs::File::open(&batch)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&batch))?;
        sync_dir(&self.dir)?;
        self.seqs.insert(seq);
        self.bound()?;
        Ok(batch)
    }

    /// Forgets the seqs up to `acked` (the collector has moved past them); their files stay.
    pub(super) fn acked(&mut self, acked: u64) {
        self.seqs = self.seqs.split_off(&(acked + 1));
    }

    /// Deletes the oldest kept batches (by modification time, then name) beyond the bounds.
    fn bound(&self) -> Result<(), SpoolError> {
        let mut kept: Vec<(std::time::SystemTime, String, u64)> = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if parse_stem(&name).is_none() {
                continue;
            }
            let meta = entry.metadata().map_err(io_err(&entry.path()))?;
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            kept.push((modified, name, meta.len()));
        }
        kept.sort();
        let mut bytes: u64 = kept.iter().map(|k| k.2).sum();
        let mut count = kept.len();
        for (_, name, len) in &kept {
            if count <= 1 || (count <= MAX_KEPT && bytes <= MAX_KEPT_BYTES) {
                break;
            }
            let batch = self.dir.join(name);
            let why = batch.with_extension("why");
            fs::remove_file(&batch).map_err(io_err(&batch))?;
            let _ = fs::remove_file(&why);
            bytes -= len;
            count -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_the_current_epoch_counts() {
        assert_eq!(
            parse_stem(&format!("{}.batch", stem(0xabc, 42))),
            Some((0xabc, 42))
        );
        assert_eq!(parse_stem("x.why"), None);
        let d = tempfile::tempdir().unwrap();
        let mut a = Aside::open(d.path(), 1).unwrap();
        assert!(a.seqs.is_empty(), "no directory yet");
        a.keep(1, 5, b"five", 1, "batch seq 5: bad\nline").unwrap();
        a.keep(2, 6, b"six", 1, "other epoch").unwrap();
        let why =
            fs::read_to_string(d.path().join(DIR).join(format!("{}.why", stem(1, 5)))).unwrap();
        assert_eq!(why, "refused_at_ms 1\nreason batch seq 5: bad line\n");
        let a = Aside::open(d.path(), 1).unwrap();
        assert_eq!(a.seqs.iter().copied().collect::<Vec<_>>(), [5]);
    }

    #[test]
    fn the_directory_is_bounded_keeping_the_newest() {
        let d = tempfile::tempdir().unwrap();
        let mut a = Aside::open(d.path(), 1).unwrap();
        for seq in 1..=(MAX_KEPT as u64 + 4) {
            a.keep(1, seq, &[0u8; 10], 1, "x").unwrap();
        }
        let batches = || {
            let mut names: Vec<String> = fs::read_dir(d.path().join(DIR))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".batch"))
                .collect();
            names.sort();
            names
        };
        let names = batches();
        assert_eq!(names.len(), MAX_KEPT);
        assert_eq!(
            names.last().unwrap(),
            &format!("{}.batch", stem(1, MAX_KEPT as u64 + 4))
        );
        // One batch larger than the byte bound: it alone stays.
        a.keep(1, 100, &vec![0u8; MAX_KEPT_BYTES as usize + 1], 1, "x")
            .unwrap();
        assert_eq!(batches(), [format!("{}.batch", stem(1, 100))]);
        a.acked(50);
        assert_eq!(a.seqs.iter().copied().collect::<Vec<_>>(), [100]);
    }
}
