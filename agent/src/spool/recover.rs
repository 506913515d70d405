//! A segment read back at open: its frames summed up ([`Segment`]), a corrupt frame skipped
//! (the reader resynchronises on the next valid one), a torn tail cut off, a segment whose
//! header never reached the disk removed. Each problem is described in the [`OpenReport`].

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::format::{read_frame_at, resync, FrameAt, SEG_HEADER, SEG_MAGIC};
use super::{io_err, OpenReport, Segment, SpoolError};

impl Segment {
    /// Reads the segment at `path` (its first seq from its name); the segment and its epoch, or
    /// `None` when it held no header (then removed).
    ///
    /// # Errors
    /// I/O errors on the file.
    pub(super) fn recover(
        path: PathBuf,
        first_seq: u64,
        report: &mut OpenReport,
    ) -> Result<Option<(Segment, u64)>, SpoolError> {
        let file = File::open(&path).map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        let mut head = [0u8; SEG_HEADER as usize];
        if len < SEG_HEADER || file.read_exact_at(&mut head, 0).is_err() || &head[..8] != SEG_MAGIC
        {
            // A segment whose header never made it to disk holds no frames.
            report.corrupt.push((path.clone(), 0, len));
            fs::remove_file(&path).map_err(io_err(&path))?;
            return Ok(None);
        }
        let seg_epoch = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        let mut seg = Segment {
            path: path.clone(),
            first_seq,
            last_seq: 0,
            samples: 0,
            precious: 0,
            bytes: len,
        };
        let mut off = SEG_HEADER;
        loop {
            match read_frame_at(&file, off, len).map_err(io_err(&path))? {
                FrameAt::Frame { frame, next } => {
                    seg.last_seq = seg.last_seq.max(frame.seq);
                    seg.samples += u64::from(frame.samples);
                    seg.precious += u64::from(frame.precious);
                    report.frames += 1;
                    off = next;
                }
                FrameAt::End { torn: false } => break,
                FrameAt::Corrupt | FrameAt::End { torn: true } => {
                    match resync(&file, off, len).map_err(io_err(&path))? {
                        Some(next) => {
                            report.corrupt.push((path.clone(), off, next - off));
                            off = next;
                        }
                        None => {
                            // Nothing valid follows: a torn tail. Cut it off so appends
                            // (if this is the last segment) continue on a clean boundary.
                            report.truncated_bytes += len - off;
                            let f = OpenOptions::new()
                                .write(true)
                                .open(&path)
                                .map_err(io_err(&path))?;
                            f.set_len(off).map_err(io_err(&path))?;
                            f.sync_all().map_err(io_err(&path))?;
                            seg.bytes = off;
                            break;
                        }
                    }
                }
            }
        }
        Ok(Some((seg, seg_epoch)))
    }
}
