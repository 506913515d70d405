//! The agent's durable queue: every sample is written here before it is sent, and stays until the
//! collector acknowledges it.
//!
//! # On-disk format
//!
//! `STATE_DIR/spool/` holds numbered segment files, one small metadata file, and the batches
//! the collector refused ([`aside`]):
//!
//! ```text
//! spool.meta                      text: "epoch <16 hex>\nnext_seq <n>\ndropped_samples <n>\n"
//!                                 (+ "rejected_batches <n>\n" once a batch was set aside)
//! spool.reserve                   text: "boot_id <id>\nnext_seq <n>\n", see "When it is synced"
//! seg-00000000000000000001.log    first seq in the name, zero-padded so names sort by seq
//! seg-00000000000000000733.log
//! rejected/                       batches set aside, see [`aside`]
//! ```
//!
//! A segment starts with a 16-byte header (`b"FLEETSP1"` and the epoch, u64 little-endian),
//! followed by frames:
//!
//! ```text
//! len u32 LE | crc32 u32 LE | seq u64 LE | flags_samples u32 LE | payload (len bytes)
//! ```
//!
//! `crc32` covers `seq`, `flags_samples` and the payload. The payload is one prost-encoded
//! `fleet.v1.Batch` whose `seq`, `dropped_samples` and `kmsg` are filled in when it is sent.
//! `flags_samples` is the number of samples in it, with the high bit set when it holds OOM
//! events ("precious").
//!
//! # When it is synced
//!
//! A frame holding OOM events is fsynced (`fdatasync`) as it is appended, before the kernel log
//! cursor moves past its lines. Samples are grouped: a sample is written at once (and is sent at
//! once, from memory) but synced only when the collector has not acknowledged it within
//! [`SYNC_EVERY`] of being written (or with the next event, or when its segment is rolled or the
//! spool closed). With the collector up, its ack (sent once its own store has committed the
//! batch, and held back at most the 2 s the agent asks for, `link::ACK_DELAY`) comes well within
//! that, and a sample it acknowledged needs no sync of its own: its durable copy is the
//! collector's. So at a 1 s interval the spool syncs about never while the collector is up, and
//! once per [`SYNC_EVERY`] during an outage.
//!
//! What a power loss (or a kernel crash; a crash of the agent alone loses nothing, the page cache
//! keeps what was written) can lose: the samples written in the last [`SYNC_EVERY`] that the
//! collector had not acknowledged, without being counted in `dropped_samples` (nothing survives
//! to count them). Never OOM events, never anything acknowledged. Frames written since the last
//! sync may come back torn or corrupt; they are truncated or skipped on open as above.
//!
//! Sequence numbers stay unique across such a loss: a frame that is not yet synced is handed to
//! the link only once `spool.reserve` (`boot_id <id>\nnext_seq <n>\n`, written like
//! `spool.meta`) numbers above it; it is then raised [`SEQ_RESERVE`] ahead, one write per that
//! many frames. When the spool is opened on another boot than the one that reserved (the host
//! went down: the page cache, and the frames written since the last sync, may be gone),
//! numbering continues above the reservation, so no new sample reuses a seq the collector may
//! have acknowledged (it would take it for a duplicate). On the same boot (the agent alone
//! stopped or crashed) every frame written is still there and numbering continues without a gap;
//! [`Spool::close`] (the graceful stop) syncs and removes the reservation.
//!
//! # Guarantees
//!
//! - Nothing is freed before the collector acknowledges it: [`Spool::ack`] deletes only segments
//!   whose every frame has `seq <= acked`.
//! - Bounded: when the spool exceeds `max_bytes`, the oldest segment goes first and its samples are
//!   added to `dropped_samples`, which is persisted and sent with every batch (never silent).
//!   Its OOM events are appended again at the head instead: events never go before samples.
//! - Crash-safe: a torn last frame (power loss mid-append) is truncated away on open. A corrupt
//!   frame elsewhere is reported with its file and offset, skipped, and the reader resynchronises
//!   on the next valid frame, so the frames after it are not lost.
//! - Memory does not grow with an outage: only per-segment summaries are kept in memory; frames
//!   are read back from disk when sent.
//! - A batch the collector refuses as invalid is set aside ([`Spool::set_aside`]): copied to
//!   `rejected/`, never sent again, its samples counted in `dropped_samples`; the frames after
//!   it flow on, and the collector's next ack frees it with them.
//!
//! What goes into a frame is [`pack`]'s job: batches checked against the rules the collector
//! enforces, OOM events split so that every batch fits them.
//! Reading a segment back at open (corrupt frames, torn tails) is `recover`'s, and
//! `spool.reserve` is `reserve`'s.

pub mod aside;
mod format;
pub mod pack;
mod recover;
mod reserve;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use self::aside::Aside;
use self::format::{
    encode_frame, parse_meta, parse_seg_name, read_frame_at, resync, seg_name, FrameAt,
    FRAME_HEADER, MAX_FRAME, PRECIOUS, SEG_HEADER, SEG_MAGIC,
};
pub use self::reserve::SEQ_RESERVE;

const META: &str = "spool.meta";

/// Samples not acknowledged by the collector are synced at most this long after they were
/// written (see the module doc).
pub const SYNC_EVERY: Duration = Duration::from_secs(5);

/// Errors of the spool. Each names the file involved.
#[derive(Debug, Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spool segment {path} is not a Fleet spool segment (bad header)")]
    BadSegment { path: PathBuf },
    #[error("batch of {len} bytes is larger than the spool's frame limit")]
    TooLarge { len: usize },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Summary of one segment file (the only per-segment state kept in memory).
#[derive(Debug, Clone)]
struct Segment {
    path: PathBuf,
    first_seq: u64,
    /// 0 while empty.
    last_seq: u64,
    samples: u64,
    /// Frames holding OOM events.
    precious: u64,
    bytes: u64,
}

/// Frames written to the active segment, not yet synced and not yet acknowledged: frame
/// `first_seq + i` was written at `written[i]`. An ack that covers some of them starts the
/// wait of the rest from when the first of those was written, so a collector that acknowledges
/// every other second (`Hello.ack_delay_ms`) while samples keep coming never makes them due.
#[derive(Debug, Default)]
struct Unsynced {
    first_seq: u64,
    written: VecDeque<Instant>,
}

impl Unsynced {
    /// Counts frame `seq`, the one after the last counted, as written at `now`.
    fn push(&mut self, seq: u64, now: Instant) {
        if self.written.is_empty() {
            self.first_seq = seq;
        }
        self.written.push_back(now);
    }

    /// When they must be synced, `every` after the oldest of them was written; None if none is
    /// waiting.
    fn due(&self, every: Duration) -> Option<Instant> {
        self.written.front().map(|&written| written + every)
    }

    /// They were synced: none is waiting.
    fn clear(&mut self) {
        self.written.clear();
    }

    /// The collector holds every frame up to `acked`: none of those is owed a sync.
    fn acked(&mut self, acked: u64) {
        while self.first_seq <= acked && self.written.pop_front().is_some() {
            self.first_seq += 1;
        }
    }

    /// Whether frame `seq` is among them.
    fn holds(&self, seq: u64) -> bool {
        !self.written.is_empty() && seq >= self.first_seq
    }
}

/// One frame, read back from disk or handed out as appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub seq: u64,
    pub samples: u32,
    /// Holds OOM events: never dropped to make room.
    pub precious: bool,
    pub payload: Vec<u8>,
    /// Read back from a segment (it passed its CRC), not handed out from memory as appended.
    pub from_disk: bool,
}

/// A batch set aside by [`Spool::set_aside`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Where its payload is kept.
    pub path: PathBuf,
    /// Samples in it, now counted in `dropped_samples`.
    pub samples: u32,
    /// It holds OOM events.
    pub precious: bool,
}

/// What the spool recovered or lost when it was opened; logged by the caller.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    pub frames: u64,
    /// Bytes of corrupt data skipped, with the file and offset of each corrupt region.
    pub corrupt: Vec<(PathBuf, u64, u64)>,
    /// Bytes of a torn last frame that were truncated.
    pub truncated_bytes: u64,
    /// Set when spool.meta was missing or unreadable and state was rebuilt from the segments.
    pub meta_problem: Option<String>,
}

/// Counters exported for logs and the agent's own status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    pub pending_frames: u64,
    pub pending_bytes: u64,
    pub dropped_samples: u64,
    pub acked_seq: u64,
    /// Batches set aside since the spool was created (the collector refused them).
    pub rejected_batches: u64,
}

/// The durable queue. Single owner (the shipper task); not shared between threads.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    epoch: u64,
    next_seq: u64,
    acked: u64,
    dropped_samples: u64,
    /// Batches set aside since the spool was created.
    rejected_batches: u64,
    /// The batches set aside, and the seqs among them not to send again.
    aside: Aside,
    segments: Vec<Segment>,
    /// Open handle of the last segment, for appends.
    active: Option<File>,
    /// Read cursor: the next frame to send has seq > sent.
    sent: u64,
    /// Where the reader is: (segment first_seq, byte offset of the next frame).
    cursor: Option<(u64, u64)>,
    /// The frame last appended, with its segment's first seq and the offset after it: when it
    /// is the next to send (the usual case, one sample per interval with the collector up), it
    /// is handed out from memory instead of being read back from the file just written.
    tail: Option<(Frame, u64, u64)>,
    /// How long a sample may wait unsynced for its ack ([`SYNC_EVERY`]; zero: every append is
    /// synced).
    sync_every: Duration,
    /// What was written since the last sync, if anything.
    unsynced: Unsynced,
    /// This boot's id (empty: unknown, every open is taken for a new boot).
    boot_id: String,
    /// The `next_seq` of `spool.reserve` for this boot: frames below it may leave unsynced.
    reserved: u64,
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, bounded to `max_bytes` on disk, rolling segments at
    /// `segment_bytes`.
    ///
    /// # Errors
    /// I/O errors on the directory. Corrupt data inside segments is not an error: it is skipped
    /// and described in the returned [`OpenReport`].
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        segment_bytes: u64,
    ) -> Result<(Spool, OpenReport), SpoolError> {
        Spool::open_on_boot(dir, max_bytes, segment_bytes, "")
    }

    /// As [`Spool::open`], on the boot `boot_id` (`/proc/sys/kernel/random/boot_id`): a
    /// reservation of seqs made on this boot is not skipped (see the module doc).
    ///
    /// # Errors
    /// As [`Spool::open`].
    pub fn open_on_boot(
        dir: &Path,
        max_bytes: u64,
        segment_bytes: u64,
        boot_id: &str,
    ) -> Result<(Spool, OpenReport), SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut report = OpenReport::default();
        let meta_path = dir.join(META);
        let meta = match fs::read_to_string(&meta_path) {
            Ok(text) => match parse_meta(&text) {
                Ok(m) => Some(m),
                Err(e) => {
                    report.meta_problem = Some(format!("{}: {e}", meta_path.display()));
                    None
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                report.meta_problem = Some(format!("{}: {e}", meta_path.display()));
                None
            }
        };

        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            if let Some(first) = name.to_str().and_then(parse_seg_name) {
                names.push((first, entry.path()));
            } else if name.to_str().is_some_and(|n| n.ends_with(".tmp")) {
                let _ = fs::remove_file(entry.path());
            }
        }
        names.sort();

        let mut epoch_from_segments = None;
        let mut segments = Vec::new();
        for (first_seq, path) in names {
            if let Some((seg, seg_epoch)) = Segment::recover(path, first_seq, &mut report)? {
                epoch_from_segments.get_or_insert(seg_epoch);
                segments.push(seg);
            }
        }
        report.segments = segments.len();

        let max_seen = segments.iter().map(|s| s.last_seq).max().unwrap_or(0);
        let (epoch, next_seq, dropped_samples, rejected_batches) = match meta {
            Some(m) => (
                m.epoch,
                m.next_seq.max(max_seen + 1),
                m.dropped_samples,
                m.rejected_batches,
            ),
            None => (
                epoch_from_segments.unwrap_or_else(rand::random::<u64>),
                max_seen + 1,
                0,
                0,
            ),
        };
        let (next_seq, reserved) = reserve::on_open(dir, boot_id, next_seq);
        let first_pending = segments
            .iter()
            .find(|s| s.last_seq > 0)
            .map(|s| s.first_seq);
        let acked = first_pending.map_or(next_seq - 1, |f| f.saturating_sub(1));
        let mut aside = Aside::open(dir, epoch)?;
        aside.acked(acked);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(segment_bytes),
            segment_bytes,
            epoch,
            next_seq,
            acked,
            dropped_samples,
            rejected_batches,
            aside,
            segments,
            active: None,
            sent: 0,
            cursor: None,
            tail: None,
            sync_every: SYNC_EVERY,
            unsynced: Unsynced::default(),
            boot_id: boot_id.to_string(),
            reserved,
        };
        // Appends always start a new segment after an open (`active` is None), never after bytes
        // that could not be read.
        spool.sent = spool.acked;
        spool.write_meta()?;
        Ok((spool, report))
    }

    /// Sets how long an unacknowledged sample may stay unsynced (default [`SYNC_EVERY`]); zero
    /// syncs every append.
    #[must_use]
    pub fn with_sync_every(mut self, every: Duration) -> Spool {
        self.sync_every = every;
        self
    }

    /// When the frames written since the last sync must be synced, if any are waiting.
    pub fn sync_deadline(&self) -> Option<Instant> {
        self.unsynced.due(self.sync_every)
    }

    /// Syncs the frames written since the last sync, if their deadline has passed (the agent's
    /// loop calls this at [`Spool::sync_deadline`]).
    ///
    /// # Errors
    /// I/O errors of the sync.
    pub fn sync_if_due(&mut self, now: Instant) -> Result<(), SpoolError> {
        if self.sync_deadline().is_some_and(|at| at <= now) {
            self.sync()?;
        }
        Ok(())
    }

    /// Syncs what was written to the active segment since the last sync.
    fn sync(&mut self) -> Result<(), SpoolError> {
        if self.unsynced.written.is_empty() {
            return Ok(());
        }
        if let (Some(file), Some(seg)) = (self.active.as_ref(), self.segments.last()) {
            file.sync_data().map_err(io_err(&seg.path))?;
        }
        self.unsynced.clear();
        Ok(())
    }

    /// The graceful stop: syncs what is unsynced and writes the exact `next_seq`, so numbering
    /// continues without a gap.
    ///
    /// # Errors
    /// I/O errors of the sync or of writing spool.meta.
    pub fn close(mut self) -> Result<(), SpoolError> {
        self.sync()?;
        self.write_meta()?;
        reserve::remove(&self.dir)
    }

    /// The epoch of this spool's sequence numbers.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Cumulative samples discarded: because the spool was full, or in a batch the collector
    /// refused ([`Spool::set_aside`]) or the agent could not make valid ([`Spool::count_dropped`]).
    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples
    }

    /// Batches set aside since the spool was created.
    pub fn rejected_batches(&self) -> u64 {
        self.rejected_batches
    }

    /// The seq the next appended frame gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Counts `samples` discarded before they were spooled, in `dropped_samples` (persisted).
    ///
    /// # Errors
    /// I/O errors writing spool.meta.
    pub fn count_dropped(&mut self, samples: u64) -> Result<(), SpoolError> {
        if samples == 0 {
            return Ok(());
        }
        self.dropped_samples += samples;
        self.write_meta()
    }

    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            pending_frames: self.pending_frames(),
            pending_bytes: self.segments.iter().map(|s| s.bytes).sum(),
            dropped_samples: self.dropped_samples,
            acked_seq: self.acked,
            rejected_batches: self.rejected_batches,
        }
    }

    /// Frames handed out by [`Spool::next_unsent`] and not yet acknowledged.
    pub fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.acked)
    }

    /// Whether every frame appended has been handed out by [`Spool::next_unsent`] (or skipped,
    /// set aside).
    pub fn all_sent(&self) -> bool {
        self.sent + 1 >= self.next_seq
    }

    /// Frames not yet acknowledged, those set aside left out.
    pub fn pending_frames(&self) -> u64 {
        (self.next_seq - 1)
            .saturating_sub(self.acked)
            .saturating_sub(self.aside.seqs.len() as u64)
    }

    /// Appends one encoded sample durably (fsync) and returns its seq.
    ///
    /// # Errors
    /// I/O errors writing the segment; the sample is then not accepted.
    pub fn append(
        &mut self,
        payload: &[u8],
        samples: u32,
        precious: bool,
    ) -> Result<u64, SpoolError> {
        let seq = self.append_frame(payload, samples, precious)?;
        self.enforce_bound()?;
        Ok(seq)
    }

    fn append_frame(
        &mut self,
        payload: &[u8],
        samples: u32,
        precious: bool,
    ) -> Result<u64, SpoolError> {
        if payload.len() > MAX_FRAME as usize {
            return Err(SpoolError::TooLarge { len: payload.len() });
        }
        let frame_len = FRAME_HEADER + payload.len() as u64;
        let need_new = match self.segments.last() {
            None => true,
            Some(s) => self.active.is_none() || s.bytes + frame_len > self.segment_bytes,
        };
        if need_new {
            self.start_segment()?;
        }
        let seq = self.next_seq;
        let samples = samples.min(!PRECIOUS);
        let frame = encode_frame(seq, samples | if precious { PRECIOUS } else { 0 }, payload);
        let seg = self
            .segments
            .last_mut()
            .expect("a segment was just ensured");
        let file = self.active.as_mut().expect("active segment open");
        file.write_all(&frame).map_err(io_err(&seg.path))?;
        let now = Instant::now();
        self.unsynced.push(seq, now);
        if precious
            || self
                .unsynced
                .due(self.sync_every)
                .is_some_and(|due| now >= due)
        {
            file.sync_data().map_err(io_err(&seg.path))?;
            self.unsynced.clear();
        }
        seg.bytes += frame_len;
        seg.last_seq = seq;
        seg.samples += u64::from(samples);
        seg.precious += u64::from(precious);
        self.next_seq += 1;
        let frame = Frame {
            seq,
            samples,
            precious,
            payload: payload.to_vec(),
            from_disk: false,
        };
        self.tail = Some((frame, seg.first_seq, seg.bytes));
        Ok(seq)
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        // What the segment before holds is synced before its handle goes.
        self.sync()?;
        let path = self.dir.join(seg_name(self.next_seq));
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut head = Vec::with_capacity(16);
        head.extend_from_slice(SEG_MAGIC);
        head.extend_from_slice(&self.epoch.to_le_bytes());
        f.write_all(&head)
            .and_then(|()| f.sync_all())
            .map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        self.segments.push(Segment {
            path,
            first_seq: self.next_seq,
            last_seq: 0,
            samples: 0,
            precious: 0,
            bytes: SEG_HEADER,
        });
        self.active = Some(f);
        self.write_meta()
    }

    /// Reads every frame of one segment (skipping corrupt bytes).
    fn read_segment(seg: &Segment) -> Result<Vec<Frame>, SpoolError> {
        let file = File::open(&seg.path).map_err(io_err(&seg.path))?;
        let mut frames = Vec::new();
        let mut off = SEG_HEADER;
        loop {
            match read_frame_at(&file, off, seg.bytes).map_err(io_err(&seg.path))? {
                FrameAt::Frame { frame, next } => {
                    frames.push(frame);
                    off = next;
                }
                FrameAt::End { torn: false } => return Ok(frames),
                FrameAt::Corrupt | FrameAt::End { torn: true } => {
                    match resync(&file, off, seg.bytes).map_err(io_err(&seg.path))? {
                        Some(next) => off = next,
                        None => return Ok(frames),
                    }
                }
            }
        }
    }

    /// Drops the oldest segments while over the bound. Unacknowledged samples in them are
    /// counted in `dropped_samples`; unacknowledged precious frames (OOM events) are appended
    /// again at the head instead, so events never go before samples.
    fn enforce_bound(&mut self) -> Result<(), SpoolError> {
        // Frames appended from here on are rescued ones: never evict them in this call, so a
        // spool full of events cannot loop.
        let floor = self.next_seq;
        let mut changed = false;
        let mut rescued: Vec<Frame> = Vec::new();
        while self.segments.len() > 1
            && self.segments[0].first_seq < floor
            && self.segments.iter().map(|s| s.bytes).sum::<u64>() > self.max_bytes
        {
            let seg = self.segments.remove(0);
            if seg.last_seq > self.acked {
                if seg.precious > 0 || seg.samples > 0 {
                    for f in Self::read_segment(&seg)? {
                        // Set aside: counted when it was, never sent again.
                        if f.seq <= self.acked || self.aside.seqs.contains(&f.seq) {
                            continue;
                        }
                        if f.precious {
                            rescued.push(f);
                        } else {
                            self.dropped_samples += u64::from(f.samples);
                        }
                    }
                }
                self.acked = seg.last_seq;
                self.aside.acked(self.acked);
                if self.sent < self.acked {
                    self.sent = self.acked;
                    self.cursor = None;
                }
            }
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            changed = true;
        }
        if changed {
            self.write_meta()?;
        }
        for f in rescued {
            self.append_frame(&f.payload, f.samples, true)?;
        }
        Ok(())
    }

    /// Records that the collector has durably stored every frame with seq <= `seq`, and frees
    /// the segments that are now fully acknowledged.
    ///
    /// # Errors
    /// I/O errors deleting segment files or writing spool.meta.
    pub fn ack(&mut self, seq: u64) -> Result<(), SpoolError> {
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq.min(self.next_seq - 1);
        self.aside.acked(self.acked);
        if self.sent < self.acked {
            self.sent = self.acked;
            self.cursor = None;
        }
        // The collector holds what it acknowledged: no sync is owed for it.
        self.unsynced.acked(self.acked);
        let mut freed = false;
        while let Some(first) = self.segments.first() {
            let is_active = self.segments.len() == 1 && self.active.is_some();
            if first.last_seq == 0 || first.last_seq > self.acked || is_active {
                break;
            }
            let seg = self.segments.remove(0);
            fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            freed = true;
        }
        if freed {
            self.write_meta()?;
        }
        Ok(())
    }

    /// Applies the collector's `Welcome{last_seq}`: everything up to it is stored. If the
    /// collector knows a higher seq than this spool ever wrote (spool metadata lost while its
    /// segments were gone), numbering continues above it, so new samples are never mistaken for
    /// duplicates. Returns true when that happened.
    ///
    /// # Errors
    /// As [`Spool::ack`].
    pub fn resume_after(&mut self, last_seq: u64) -> Result<bool, SpoolError> {
        let jumped = last_seq >= self.next_seq;
        if jumped {
            self.next_seq = last_seq + 1;
            self.write_meta()?;
        }
        self.ack(last_seq)?;
        self.rewind();
        Ok(jumped)
    }

    /// Sets the batch `seq` aside: the collector refused it as invalid (`reason`, in its words).
    /// Its payload is kept in `rejected/` ([`aside`]), it is never sent again, and its samples
    /// count in `dropped_samples`. Returns None for a seq that is not pending (acknowledged, set
    /// aside before, or never written): nothing is done.
    ///
    /// # Errors
    /// I/O errors reading the segment or writing the files.
    pub fn set_aside(&mut self, seq: u64, reason: &str) -> Result<Option<SetAside>, SpoolError> {
        if seq <= self.acked || seq >= self.next_seq || self.aside.seqs.contains(&seq) {
            return Ok(None);
        }
        let Some(seg) = self
            .segments
            .iter()
            .find(|s| s.first_seq <= seq && seq <= s.last_seq)
        else {
            return Ok(None);
        };
        let Some(frame) = Self::read_segment(seg)?.into_iter().find(|f| f.seq == seq) else {
            return Ok(None);
        };
        let path = self
            .aside
            .keep(self.epoch, seq, &frame.payload, crate::now_ms(), reason)?;
        self.rejected_batches += 1;
        self.dropped_samples += u64::from(frame.samples);
        self.write_meta()?;
        Ok(Some(SetAside {
            path,
            samples: frame.samples,
            precious: frame.precious,
        }))
    }

    /// Makes the next [`Spool::next_unsent`] start again after the last acknowledged frame (after
    /// a reconnect, when what was in flight may have been lost).
    pub fn rewind(&mut self) {
        self.sent = self.acked;
        self.cursor = None;
    }

    /// Reads the next frame that has not been handed out since the last rewind, if any.
    ///
    /// # Errors
    /// I/O errors reading a segment.
    pub fn next_unsent(&mut self) -> Result<Option<Frame>, SpoolError> {
        let frame = self.next_unsent_frame()?;
        if let Some(f) = &frame {
            self.cover(f.seq)?;
        }
        Ok(frame)
    }

    /// Before a frame that is not yet synced leaves: `spool.reserve` must number above it, so
    /// that a power loss that takes the frame cannot make its seq be used again (see the module
    /// doc).
    fn cover(&mut self, seq: u64) -> Result<(), SpoolError> {
        if seq < self.reserved || !self.unsynced.holds(seq) {
            return Ok(());
        }
        self.reserved = reserve::write(&self.dir, &self.boot_id, seq)?;
        Ok(())
    }

    fn next_unsent_frame(&mut self) -> Result<Option<Frame>, SpoolError> {
        loop {
            if self.sent + 1 >= self.next_seq {
                return Ok(None);
            }
            let want = self.sent + 1;
            if let Some((frame, seg_first, next)) = self.tail.take_if(|(f, ..)| f.seq == want) {
                self.cursor = Some((seg_first, next));
                self.sent = want;
                return Ok(Some(frame));
            }
            // Find the segment holding `want` (or the first one after it, if frames were lost).
            let (seg_first, off) = match self.cursor {
                Some(c) => c,
                None => {
                    let Some(seg) = self
                        .segments
                        .iter()
                        .find(|s| s.last_seq >= want && s.last_seq != 0)
                    else {
                        return Ok(None);
                    };
                    (seg.first_seq, SEG_HEADER)
                }
            };
            let Some(seg) = self.segments.iter().find(|s| s.first_seq == seg_first) else {
                self.cursor = None;
                continue;
            };
            let file = File::open(&seg.path).map_err(io_err(&seg.path))?;
            let len = seg.bytes;
            match read_frame_at(&file, off, len).map_err(io_err(&seg.path))? {
                FrameAt::Frame { frame, next } => {
                    self.cursor = Some((seg_first, next));
                    if frame.seq < want {
                        continue;
                    }
                    self.sent = frame.seq;
                    if self.aside.seqs.contains(&frame.seq) {
                        continue;
                    }
                    return Ok(Some(frame));
                }
                FrameAt::End { torn: false } => {
                    // End of this segment: continue with the next one.
                    match self.segments.iter().find(|s| s.first_seq > seg_first) {
                        Some(next) => self.cursor = Some((next.first_seq, SEG_HEADER)),
                        None => return Ok(None),
                    }
                }
                FrameAt::Corrupt | FrameAt::End { torn: true } => {
                    match resync(&file, off, len).map_err(io_err(&seg.path))? {
                        Some(next) => self.cursor = Some((seg_first, next)),
                        None => match self.segments.iter().find(|s| s.first_seq > seg_first) {
                            Some(next) => self.cursor = Some((next.first_seq, SEG_HEADER)),
                            None => return Ok(None),
                        },
                    }
                }
            }
        }
    }

    /// Persists epoch, next_seq and dropped_samples atomically (write to a temp file, fsync,
    /// rename).
    ///
    /// # Errors
    /// I/O errors writing spool.meta.
    pub fn write_meta(&self) -> Result<(), SpoolError> {
        let path = self.dir.join(META);
        let mut text = format!(
            "epoch {:016x}\nnext_seq {}\ndropped_samples {}\n",
            self.epoch, self.next_seq, self.dropped_samples
        );
        // Written once there is something to count, so an older agent still reads the file.
        if self.rejected_batches > 0 {
            text.push_str(&format!("rejected_batches {}\n", self.rejected_batches));
        }
        write_atomically(&self.dir, &path, &text)
    }
}

/// Replaces the file `path` in `dir` with `text`: a temporary file (`.tmp`, removed on open if a
/// crash leaves it) written and fsynced, renamed over it, the directory fsynced.
fn write_atomically(dir: &Path, path: &Path, text: &str) -> Result<(), SpoolError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    (|| -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })()
    .map_err(io_err(path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "6a1c0e4f-0c4e-4d6f-9b0e-3f1f6d8a2b11";

    /// Opened on the same boot each time: as after a restart or a crash of the agent alone.
    fn open(dir: &Path) -> (Spool, OpenReport) {
        Spool::open_on_boot(dir, 1 << 20, 4096, BOOT).expect("open spool")
    }

    fn drain(s: &mut Spool) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(f) = s.next_unsent().expect("read") {
            out.push(f.seq);
        }
        out
    }

    #[test]
    fn append_send_ack_and_replay_after_reopen() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        for i in 0..100u32 {
            assert_eq!(
                s.append(&i.to_le_bytes(), 1, false).unwrap(),
                u64::from(i) + 1
            );
        }
        assert_eq!(drain(&mut s), (1..=100).collect::<Vec<_>>());
        s.ack(40).unwrap();
        let epoch = s.epoch();
        drop(s);
        let (mut s, report) = open(d.path());
        assert_eq!(s.epoch(), epoch);
        assert!(report.corrupt.is_empty());
        // Replays from the first frame of the oldest kept segment; everything after 40 is there.
        let replay = drain(&mut s);
        assert!(replay.contains(&41) && replay.ends_with(&[100]));
        assert_eq!(s.append(b"x", 1, false).unwrap(), 101);
    }

    #[test]
    fn rewind_resends_unacked() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        for _ in 0..5 {
            s.append(b"abc", 1, false).unwrap();
        }
        assert_eq!(drain(&mut s), vec![1, 2, 3, 4, 5]);
        s.ack(2).unwrap();
        s.rewind();
        assert_eq!(drain(&mut s), vec![3, 4, 5]);
    }

    #[test]
    fn the_frame_just_appended_is_handed_out_as_the_file_holds_it() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        s.append(b"one", 1, false).unwrap();
        let first = s.next_unsent().unwrap().unwrap();
        s.append(b"two", 0, true).unwrap();
        s.append(b"three", 3, false).unwrap();
        let second = s.next_unsent().unwrap().unwrap();
        let third = s.next_unsent().unwrap().unwrap();
        assert!(s.next_unsent().unwrap().is_none());
        assert_eq!(
            (first.seq, first.samples, first.precious, &first.payload[..]),
            (1, 1, false, &b"one"[..])
        );
        assert_eq!((second.seq, second.precious), (2, true));
        assert_eq!((third.seq, &third.payload[..]), (3, &b"three"[..]));
        // The last one appended comes from memory, the one behind it from the file.
        assert_eq!(
            (first.from_disk, second.from_disk, third.from_disk),
            (false, true, false)
        );
        // Read back from the file after a rewind: the same frames.
        s.rewind();
        for frame in [first, second, third] {
            let back = s.next_unsent().unwrap().unwrap();
            assert_eq!(
                back,
                Frame {
                    from_disk: true,
                    ..frame
                }
            );
        }
        assert!(s.next_unsent().unwrap().is_none());
    }

    #[test]
    fn ack_frees_segments_and_seq_survives_empty_spool() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        let payload = vec![7u8; 1000];
        for _ in 0..20 {
            s.append(&payload, 1, false).unwrap();
        }
        let before = s.segments.len();
        assert!(before > 3);
        drain(&mut s);
        s.ack(20).unwrap();
        assert!(s.segments.len() <= 1, "{} segments left", s.segments.len());
        drop(s);
        let (mut s, _) = open(d.path());
        assert_eq!(s.append(b"next", 1, false).unwrap(), 21);
    }

    #[test]
    fn full_spool_drops_oldest_and_counts_it() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(d.path(), 8192, 4096).unwrap();
        let payload = vec![1u8; 1000];
        for _ in 0..40 {
            s.append(&payload, 1, false).unwrap();
        }
        let on_disk: u64 = s.segments.iter().map(|x| x.bytes).sum();
        assert!(on_disk <= 8192 + 4096, "{on_disk}");
        let first = drain(&mut s)[0];
        assert!(first > 1);
        // Every frame below the first kept one was counted as dropped.
        assert_eq!(s.dropped_samples(), first - 1);
        drop(s);
        let (s, _) = Spool::open(d.path(), 8192, 4096).unwrap();
        assert_eq!(s.dropped_samples(), first - 1, "dropped count persists");
    }

    #[test]
    fn corrupt_frame_is_skipped_and_later_frames_survive() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        for i in 0..3u8 {
            s.append(&[i; 50], 1, false).unwrap();
        }
        let seg = s.segments[0].path.clone();
        drop(s);
        // Flip a payload byte of the second frame.
        let mut bytes = fs::read(&seg).unwrap();
        let second = (SEG_HEADER + FRAME_HEADER + 50 + FRAME_HEADER + 10) as usize;
        bytes[second] ^= 0xff;
        fs::write(&seg, &bytes).unwrap();
        let (mut s, report) = open(d.path());
        assert_eq!(report.corrupt.len(), 1, "{report:?}");
        assert_eq!(report.corrupt[0].0, seg);
        assert_eq!(drain(&mut s), vec![1, 3]);
        // New appends go to a fresh segment, never after damaged bytes.
        assert_eq!(s.append(b"new", 1, false).unwrap(), 4);
        assert_ne!(s.segments.last().unwrap().path, seg);
    }

    #[test]
    fn torn_tail_is_truncated() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        s.append(b"one", 1, false).unwrap();
        s.append(b"two", 1, false).unwrap();
        let seg = s.segments[0].path.clone();
        drop(s);
        let len = fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 2).unwrap();
        let (mut s, report) = open(d.path());
        assert!(report.truncated_bytes > 0);
        assert_eq!(drain(&mut s), vec![1]);
        assert_eq!(s.append(b"three", 1, false).unwrap(), 2);
        s.rewind();
        assert_eq!(drain(&mut s), vec![1, 2]);
    }

    #[test]
    fn garbage_segment_and_bad_meta_do_not_stop_the_spool() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        s.append(b"keep", 1, false).unwrap();
        drop(s);
        fs::write(d.path().join(seg_name(999)), b"not a segment").unwrap();
        fs::write(d.path().join(META), b"garbage").unwrap();
        let (mut s, report) = open(d.path());
        assert!(report.meta_problem.is_some());
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!(drain(&mut s), vec![1]);
    }

    #[test]
    fn numbering_continues_above_what_the_collector_has() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        s.append(b"a", 1, false).unwrap();
        assert!(!s.resume_after(1).unwrap());
        assert!(s.resume_after(50).unwrap());
        assert_eq!(s.append(b"b", 1, false).unwrap(), 51);
        assert_eq!(drain(&mut s), vec![51]);
    }

    #[test]
    fn full_spool_keeps_events_and_drops_samples() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(d.path(), 8192, 4096).unwrap();
        s.append(b"oom event", 0, true).unwrap();
        let payload = vec![1u8; 1000];
        for _ in 0..40 {
            s.append(&payload, 1, false).unwrap();
        }
        let mut frames = Vec::new();
        while let Some(f) = s.next_unsent().unwrap() {
            frames.push(f);
        }
        let events: Vec<_> = frames.iter().filter(|f| f.precious).collect();
        assert_eq!(events.len(), 1, "the event survived");
        assert_eq!(events[0].payload, b"oom event");
        let kept = frames.len() as u64 - 1;
        assert_eq!(
            s.dropped_samples() + kept,
            40,
            "every sample is kept or counted"
        );
        drop(s);
        let (mut s, _) = Spool::open(d.path(), 8192, 4096).unwrap();
        assert!(std::iter::from_fn(|| s.next_unsent().unwrap()).any(|f| f.precious));
    }

    #[test]
    fn a_batch_set_aside_is_kept_counted_and_never_sent_again() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        for i in 0..5u8 {
            s.append(&[i; 20], 1, i == 2).unwrap();
        }
        assert_eq!(drain(&mut s), vec![1, 2, 3, 4, 5]);
        let aside = s.set_aside(3, "batch seq 3: bad").unwrap().unwrap();
        assert_eq!((aside.samples, aside.precious), (1, true));
        assert_eq!(fs::read(&aside.path).unwrap(), [2u8; 20]);
        assert!(aside.path.starts_with(d.path().join(aside::DIR)));
        assert_eq!(s.set_aside(3, "again").unwrap(), None, "once");
        assert_eq!(s.set_aside(9, "never written").unwrap(), None);
        assert_eq!((s.dropped_samples(), s.rejected_batches()), (1, 1));
        assert_eq!(s.pending_frames(), 4);

        // After a reconnect (or a restart) everything unacknowledged is sent again, but it.
        s.rewind();
        assert_eq!(drain(&mut s), vec![1, 2, 4, 5]);
        let epoch = s.epoch();
        drop(s);
        let (mut s, _) = open(d.path());
        assert_eq!(s.epoch(), epoch);
        assert_eq!((s.dropped_samples(), s.rejected_batches()), (1, 1));
        assert_eq!(drain(&mut s), vec![1, 2, 4, 5]);
        assert_eq!(
            s.set_aside(1, "acked later").unwrap().map(|a| a.samples),
            Some(1)
        );

        // The collector's ack past it frees it with the others; the kept copy stays.
        s.ack(5).unwrap();
        assert_eq!(s.pending_frames(), 0);
        assert_eq!(s.append(b"next", 1, false).unwrap(), 6);
        assert_eq!(drain(&mut s), vec![6]);
        assert!(aside.path.exists());
        assert!(fs::read_to_string(d.path().join(META))
            .unwrap()
            .contains("rejected_batches 2\n"));
    }

    #[test]
    fn a_full_spool_does_not_rescue_events_set_aside() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(d.path(), 8192, 4096).unwrap();
        s.append(b"refused events", 0, true).unwrap();
        s.append(b"kept events", 0, true).unwrap();
        s.set_aside(1, "batch seq 1: bad").unwrap().unwrap();
        for _ in 0..40 {
            s.append(&[1u8; 1000], 1, false).unwrap();
        }
        let events: Vec<Vec<u8>> = std::iter::from_fn(|| s.next_unsent().unwrap())
            .filter(|f| f.precious)
            .map(|f| f.payload)
            .collect();
        assert_eq!(events, [b"kept events".to_vec()]);
    }

    #[test]
    fn samples_wait_for_their_ack_and_events_are_synced_at_once() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        let t0 = Instant::now();
        s.append(b"sample", 1, false).unwrap();
        let due = s
            .sync_deadline()
            .expect("a sample waits for its ack or its sync");
        assert!(due >= t0 + SYNC_EVERY && due <= Instant::now() + SYNC_EVERY);
        std::thread::sleep(Duration::from_millis(20));
        let t1 = Instant::now();
        s.append(b"sample", 1, false).unwrap();
        assert_eq!(s.sync_deadline(), Some(due), "grouped with the first");
        // The collector acknowledged the first only: the second still owes a sync, due
        // SYNC_EVERY after it was written (not after the first: acks that come every other
        // second while samples keep coming never make a sample due).
        s.ack(1).unwrap();
        let due = s.sync_deadline().expect("the second still waits");
        assert!(due >= t1 + SYNC_EVERY && due <= Instant::now() + SYNC_EVERY);
        s.sync_if_due(due - Duration::from_millis(1)).unwrap();
        assert_eq!(s.sync_deadline(), Some(due), "not yet due");
        s.sync_if_due(due).unwrap();
        assert_eq!(s.sync_deadline(), None, "synced");
        // Acknowledged before its deadline: no sync of its own.
        s.append(b"sample", 1, false).unwrap();
        assert!(s.sync_deadline().is_some());
        s.ack(3).unwrap();
        assert_eq!(s.sync_deadline(), None);
        // An OOM event is synced as it is appended (with the samples before it).
        s.append(b"sample", 1, false).unwrap();
        s.append(b"oom event", 0, true).unwrap();
        assert_eq!(s.sync_deadline(), None);
        // Zero: every append is synced.
        let mut s = s.with_sync_every(Duration::ZERO);
        s.append(b"sample", 1, false).unwrap();
        assert_eq!(s.sync_deadline(), None);
    }

    #[test]
    fn after_a_power_loss_numbering_starts_above_every_seq_that_left_unsynced() {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = open(d.path());
        let reserve = || fs::read_to_string(d.path().join(reserve::RESERVE)).ok();
        s.append(b"event", 0, true).unwrap();
        assert_eq!(drain(&mut s), vec![1]);
        assert_eq!(reserve(), None, "a synced frame reserves nothing");
        for _ in 0..3 {
            s.append(b"sample", 1, false).unwrap();
        }
        assert_eq!(reserve(), None, "nor one that has not left");
        assert_eq!(drain(&mut s), vec![2, 3, 4]);
        // Seq 2 left before it was synced: reserved ahead, on this boot.
        let reserved = 2 + SEQ_RESERVE;
        assert_eq!(
            reserve().as_deref(),
            Some(format!("boot_id {BOOT}\nnext_seq {reserved}\n").as_str())
        );
        let seg = s.segments[0].path.clone();
        drop(s);

        // The agent alone crashed: the frames are there, numbering goes on without a gap.
        let (mut s, _) = open(d.path());
        assert_eq!(s.append(b"after a crash", 1, false).unwrap(), 5);
        assert_eq!(drain(&mut s), vec![1, 2, 3, 4, 5]);
        let second = s.segments[1].path.clone();
        drop(s);

        // A power loss: the collector may have acknowledged 2 to 5, which this disk lost
        // (simulated by cutting the segments back to what was synced: the event, and the
        // header of the segment started after the crash). On the next boot the next seq is
        // above all of them.
        let cut = |path: &Path, len: u64| {
            let f = OpenOptions::new().write(true).open(path).unwrap();
            f.set_len(len).unwrap();
        };
        cut(&seg, SEG_HEADER + FRAME_HEADER + 5);
        cut(&second, SEG_HEADER);
        let (mut s, _) = Spool::open_on_boot(d.path(), 1 << 20, 4096, "next boot").unwrap();
        assert_eq!(s.append(b"after", 1, false).unwrap(), reserved);
        assert_eq!(drain(&mut s), vec![1, reserved]);
        assert!(reserve().unwrap().starts_with("boot_id next boot\n"));

        // A graceful stop syncs and drops the reservation: no gap after a reboot either.
        s.close().unwrap();
        assert_eq!(reserve(), None);
        let (mut s, _) = Spool::open_on_boot(d.path(), 1 << 20, 4096, "third boot").unwrap();
        assert_eq!(s.append(b"next", 1, false).unwrap(), reserved + 1);
    }

    #[test]
    fn meta_parser_names_the_problem() {
        assert!(parse_meta("epoch zz\nnext_seq 1\ndropped_samples 0\n")
            .unwrap_err()
            .contains("epoch"));
        assert!(parse_meta("epoch 1\n").unwrap_err().contains("next_seq"));
        let m = parse_meta("epoch ff\nnext_seq 9\ndropped_samples 2\n").unwrap();
        assert_eq!((m.epoch, m.next_seq, m.dropped_samples), (255, 9, 2));
    }
}
