//! Watching the kernel log for OOM kills: the thin I/O loop around the pure parser of
//! [`super`] (the modules beside this one).
//!
//! - `/dev/kmsg` is read one record per `read()`, non-blocking, woken by epoll (tokio's
//!   `AsyncFd`). A path that cannot be polled (a regular file in tests) is re-read every
//!   [`POLL_FILE`]. A file can hold a record longer than the read buffer (the device cannot):
//!   its head is read, cut, and the rest skipped, so no line stalls the reader.
//! - `EPIPE` means the ring buffer overwrote records before we read them: the reader continues
//!   at the oldest record still there and the gap (by sequence number) is counted in
//!   `KmsgStatus.records_lost`.
//! - The cursor (`STATE_DIR/kmsg.cursor`: boot id and last sequence number) is written after
//!   the events of everything read so far are in the spool, which is durable: after an agent
//!   restart in the same boot, records up to the cursor are skipped (nothing is sent twice);
//!   after a reboot (another boot id) the ring buffer is read from its start, so the kills of
//!   the new boot that happened before the agent started are reported too.
//! - A kill leaves as soon as its kill line is read (the assembler is
//!   [`early`](OomAssembler::early)): the lines a kill needs come before it. A report is over
//!   when the log goes quiet for [`IDLE_FLUSH`] after it (the kernel prints a whole report within
//!   milliseconds, the `oom_reaper` line within a few more); what its later lines changed in a
//!   kill (`reaped`) then leaves as an amendment: the whole event again, with the same
//!   `kmsg_seq`, `time_ms` and table part, and `amends` set, so the collector replaces the kill
//!   it has and counts nothing. When a kill and its amendment are read in the same call (a
//!   backlog), only the amended event leaves. The cursor moves only once the report is over.
//! - Cross-check: the `oom_kill` counter of /proc/vmstat (as the sampler read it, passed in)
//!   counts every kill. When it shows more kills since the agent started than the log did, for
//!   two checks in a row, each missing kill is reported as an event with `source = "vmstat"`
//!   and what is known (the time).
//! - Bursts: one call reads at most [`MAX_RECORDS_PER_READ`] records, for at most
//!   [`READ_BUDGET`], so the agent's loop spools and ships between the parts of a storm and
//!   keeps sampling on time; [`KmsgWatcher::readable`] is ready at once while records are left.
//! - Wall times: [`clock`], the boot time read again for every event (a stepped clock applies
//!   to the kills after it). Details: [`detail`], each event's under the collector's limit (the
//!   biggest task rows, one table per `memory.oom.group` burst).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fleet_proto::v1::{KmsgStatus, OomEvent};
use tokio::io::unix::AsyncFd;
use tracing::{debug, info, warn};

use self::clock::{BootTime, Clocks, SystemClocks};
use self::detail::{Details, TablePart};
use super::assemble::MAX_HELD;
use super::{kmsg_record_seq, parse_kmsg_record, OomAssembler};
use crate::now_ms;

pub mod clock;
pub mod detail;

/// How long the log must stay quiet before a pending report is considered complete.
pub const IDLE_FLUSH: Duration = Duration::from_millis(250);
/// Re-read interval for a kmsg path that cannot be polled (a regular file).
pub const POLL_FILE: Duration = Duration::from_millis(500);
const RECORD_BUF: usize = 16 * 1024;
/// Records one [`KmsgWatcher::read_available`] reads at most.
pub const MAX_RECORDS_PER_READ: usize = 4096;
/// How long one [`KmsgWatcher::read_available`] goes on reading at most (a record can cost
/// much: each kill of a `memory.oom.group` burst carries the report's whole table).
pub const READ_BUDGET: Duration = Duration::from_millis(50);

/// Kills remembered after they left, for their amendment: the assembler amends only kills
/// still held (at most [`MAX_HELD`] of the report being read, and as many of the report before
/// it waiting for a late header).
const AMENDABLE: usize = 4 * MAX_HELD;

/// What an amendment must repeat of the event it replaces.
#[derive(Debug, Clone, Copy)]
struct Sent {
    kmsg_seq: u64,
    /// Read once: a clock stepped between the two must not move the kill.
    time_ms: i64,
    table: TablePart,
}

/// The device or file being read.
enum Source {
    Device(AsyncFd<File>),
    File(File),
}

/// Persisted read position: `boot_id seq boot_us` (the boot time in use, see [`clock`]; absent
/// in cursors of older agents).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    boot_id: String,
    seq: u64,
    boot_us: Option<i64>,
}

fn parse_cursor(text: &str) -> Option<Cursor> {
    let mut it = text.split_whitespace();
    let boot_id = it.next()?.to_string();
    let seq = it.next()?.parse().ok()?;
    let boot_us = it.next().and_then(|t| t.parse().ok());
    Some(Cursor {
        boot_id,
        seq,
        boot_us,
    })
}

/// Reads the kernel log and turns OOM reports into events.
pub struct KmsgWatcher {
    source: Source,
    path: PathBuf,
    buf: Vec<u8>,
    assembler: OomAssembler,
    boot_id: String,
    /// The wall time of the kernel's monotonic zero, read again for every event.
    boot: BootTime,
    /// Keeps each event's detail under the collector's limit.
    details: Details,
    /// The last kills that left, newest last, at most [`AMENDABLE`].
    sent: VecDeque<Sent>,
    /// The last read stopped at [`MAX_RECORDS_PER_READ`] or [`READ_BUDGET`]: records are left.
    backlog: bool,
    /// [`READ_BUDGET`] (tests shorten it).
    read_budget: Duration,
    /// Records with seq <= this were handled by a previous run of this boot.
    skip_upto: Option<u64>,
    last_seq: Option<u64>,
    cursor_path: PathBuf,
    committed: Option<u64>,
    last_record: Option<Instant>,
    flushed: bool,
    status: KmsgStatus,
    /// Kernel monotonic time (µs) when this agent started: kills before it are not in the
    /// counter delta.
    start_monotonic_us: u64,
    oom_kill_baseline: Option<u64>,
    logged_since_start: u64,
    suspect_unlogged: u64,
}

impl KmsgWatcher {
    /// Opens the kernel log at `path`, reads the boot id under `proc_root`, and loads the cursor
    /// from `state_dir`.
    ///
    /// # Errors
    /// The kernel log cannot be opened (e.g. no CAP_SYSLOG): the message names the path.
    pub fn open(path: &Path, proc_root: &Path, state_dir: &Path) -> Result<KmsgWatcher, String> {
        Self::open_with_clocks(path, proc_root, state_dir, Box::new(SystemClocks))
    }

    /// As [`KmsgWatcher::open`], reading wall and monotonic time from `clocks` (tests step them).
    ///
    /// # Errors
    /// As [`KmsgWatcher::open`].
    pub fn open_with_clocks(
        path: &Path,
        proc_root: &Path,
        state_dir: &Path,
        clocks: Box<dyn Clocks>,
    ) -> Result<KmsgWatcher, String> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| format!("cannot open the kernel log {}: {e}", path.display()))?;
        let is_file = file.metadata().map(|m| m.is_file()).unwrap_or(false);
        let source = if is_file {
            Source::File(file)
        } else {
            // SAFETY: the File owns its descriptor and keeps it open, unchanged, for as long as
            // the AsyncFd holds it.
            match unsafe { AsyncFd::register_with_interest(file, tokio::io::Interest::READABLE) } {
                Ok(fd) => Source::Device(fd),
                Err(e) => {
                    return Err(format!(
                        "cannot poll {}: {}",
                        path.display(),
                        e.into_parts().1
                    ))
                }
            }
        };
        let boot_id = std::fs::read_to_string(proc_root.join("sys/kernel/random/boot_id"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string());
        let cursor_path = state_dir.join("kmsg.cursor");
        let cursor = std::fs::read_to_string(&cursor_path)
            .ok()
            .and_then(|t| parse_cursor(&t));
        match &cursor {
            Some(c) if c.boot_id == boot_id => {
                info!(boot_id = %boot_id, after_seq = c.seq, "kernel log: resuming this boot's log after its cursor");
            }
            Some(c) => {
                info!(boot_id = %boot_id, cursor_boot_id = %c.boot_id,
                    "kernel log: a new boot; its log is read from the first record (the cursor was of another boot)");
            }
            None => {
                info!(boot_id = %boot_id, "kernel log: no cursor; reading this boot's log from the first record")
            }
        }
        let this_boot = cursor.filter(|c| c.boot_id == boot_id);
        let skip_upto = this_boot.as_ref().map(|c| c.seq);
        let boot = BootTime::new(clocks, this_boot.and_then(|c| c.boot_us));
        let mono = boot.monotonic_us();
        Ok(KmsgWatcher {
            source,
            path: path.to_path_buf(),
            buf: vec![0; RECORD_BUF],
            assembler: OomAssembler::new().early(),
            boot_id,
            boot,
            details: Details::default(),
            sent: VecDeque::new(),
            backlog: false,
            read_budget: READ_BUDGET,
            skip_upto,
            last_seq: None,
            cursor_path,
            committed: skip_upto,
            last_record: None,
            flushed: true,
            status: KmsgStatus::default(),
            start_monotonic_us: mono,
            oom_kill_baseline: None,
            logged_since_start: 0,
            suspect_unlogged: 0,
        })
    }

    /// The kernel log health counters.
    pub fn status(&self) -> KmsgStatus {
        self.status
    }

    /// Waits until records may be readable (device) or the poll period passed (file); at once
    /// while the last read left records.
    pub async fn readable(&mut self) {
        if self.backlog {
            return tokio::task::yield_now().await;
        }
        match &self.source {
            Source::Device(fd) => match fd.readable().await {
                Ok(mut guard) => guard.clear_ready(),
                Err(e) => {
                    warn!(error = %e, "polling the kernel log failed");
                    tokio::time::sleep(POLL_FILE).await;
                }
            },
            Source::File(_) => tokio::time::sleep(POLL_FILE).await,
        }
    }

    /// Reads for at most `budget` per [`KmsgWatcher::read_available`] instead of [`READ_BUDGET`].
    #[must_use]
    pub fn with_read_budget(mut self, budget: Duration) -> KmsgWatcher {
        self.read_budget = budget;
        self
    }

    /// Whether the last read stopped at [`MAX_RECORDS_PER_READ`] or [`READ_BUDGET`] with
    /// records left.
    pub fn has_backlog(&self) -> bool {
        self.backlog
    }

    /// When a pending report should be flushed (the log has been quiet for [`IDLE_FLUSH`]);
    /// never while records are left to read (the report may go on in them).
    pub fn flush_deadline(&self) -> Option<Instant> {
        if self.flushed || self.backlog {
            None
        } else {
            self.last_record.map(|t| t + IDLE_FLUSH)
        }
    }

    fn read_one(&mut self) -> io::Result<usize> {
        match &mut self.source {
            Source::Device(fd) => fd.get_mut().read(&mut self.buf),
            Source::File(f) => read_file_record(f, &mut self.buf),
        }
    }

    /// Reads the records available now, at most [`MAX_RECORDS_PER_READ`] and for at most
    /// [`READ_BUDGET`], and returns the events of reports that completed.
    pub fn read_available(&mut self) -> Vec<OomEvent> {
        let mut out = Vec::new();
        self.backlog = false;
        let started = Instant::now();
        for read in 0.. {
            if read == MAX_RECORDS_PER_READ || (read > 0 && started.elapsed() >= self.read_budget) {
                self.backlog = true;
                break;
            }
            let n = match self.read_one() {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                    // Overrun: the next read returns the oldest record still in the buffer; the
                    // gap is counted from its sequence number.
                    debug!("kernel log overrun");
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(path = %self.path.display(), error = %e, "reading the kernel log failed");
                    break;
                }
            };
            // The sequence number of every record, also those the parser ignores (user-space
            // records written to /dev/kmsg), drives the cursor and the gap count.
            if let Some(seq) = kmsg_record_seq(&self.buf[..n]) {
                if self.skip_upto.is_some_and(|s| seq <= s) {
                    continue;
                }
                // Checked: a file can hold any number, even u64::MAX.
                let gap = self
                    .last_seq
                    .and_then(|last| seq.checked_sub(last)?.checked_sub(1));
                if let Some(lost) = gap.filter(|&lost| lost > 0) {
                    self.status.records_lost = self.status.records_lost.saturating_add(lost);
                    warn!(lost, "kernel log records overwritten before they were read");
                }
                self.last_seq = Some(seq);
            }
            let Some(line) = parse_kmsg_record(&self.buf[..n]) else {
                continue;
            };
            self.status.records_read += 1;
            self.last_record = Some(Instant::now());
            self.flushed = false;
            let done = self.assembler.push(line);
            self.convert(done, &mut out);
        }
        out
    }

    /// Completes a pending report once the log has been quiet; returns its events (amendments
    /// of kills that already left, and events of reports without a kill line).
    pub fn flush_idle(&mut self) -> Vec<OomEvent> {
        self.flushed = true;
        let done = self.assembler.finish();
        let mut out = Vec::new();
        self.convert(done, &mut out);
        out
    }

    /// Appends the wire form of `done` to `out`; an amendment of an event still in `out`
    /// replaces it there (one event leaves, not two).
    fn convert(&mut self, done: Vec<super::OomEvent>, out: &mut Vec<OomEvent>) {
        for e in done {
            let mut e = self.event_to_proto(e);
            if e.amends {
                if let Some(first) = out
                    .iter_mut()
                    .rev()
                    .find(|o| o.kmsg_seq.is_some() && o.kmsg_seq == e.kmsg_seq)
                {
                    e.amends = first.amends;
                    *first = e;
                    continue;
                }
            }
            out.push(e);
        }
    }

    /// Persists the read position. Call only after the events returned so far are spooled, and
    /// after [`KmsgWatcher::flush_idle`] (the parser then holds no partial report).
    ///
    /// # Errors
    /// The cursor file cannot be written.
    pub fn commit(&mut self) -> io::Result<()> {
        let Some(seq) = self.last_seq else {
            return Ok(());
        };
        if self.committed == Some(seq) || !self.flushed {
            return Ok(());
        }
        let tmp = self.cursor_path.with_extension("tmp");
        std::fs::write(
            &tmp,
            format!("{} {} {}\n", self.boot_id, seq, self.boot.boot_us()),
        )?;
        std::fs::rename(&tmp, &self.cursor_path)?;
        self.committed = Some(seq);
        Ok(())
    }

    /// Compares the kernel's oom_kill counter (`/proc/vmstat`, as the sampler last read it;
    /// `None` when it could not) with the kills seen in the log; returns an event for each
    /// kill the log did not show.
    pub fn check_counter(&mut self, oom_kill: Option<u64>) -> Vec<OomEvent> {
        let Some(count) = oom_kill else {
            return Vec::new();
        };
        let base = *self.oom_kill_baseline.get_or_insert(count);
        let kills = count.saturating_sub(base);
        let missing = kills.saturating_sub(self.logged_since_start + self.status.unlogged_kills);
        // The log may trail the counter by a moment: report only what is missing twice in a row.
        let confirmed = missing.min(self.suspect_unlogged);
        self.suspect_unlogged = missing;
        let mut out = Vec::new();
        for _ in 0..confirmed {
            self.status.unlogged_kills += 1;
            self.suspect_unlogged = self.suspect_unlogged.saturating_sub(1);
            warn!(
                oom_kill = count,
                "an OOM kill counted by /proc/vmstat is missing from the kernel log"
            );
            out.push(OomEvent {
                time_ms: now_ms(),
                boot_id: self.boot_id.clone(),
                partial: true,
                source: "vmstat".into(),
                detail_json: format!(
                    "{{\"source\":\"vmstat\",\"oom_kill\":{count},\"note\":\"counted by /proc/vmstat oom_kill but not found in the kernel log (overrun, rate limiting or a log level that hides it)\"}}"
                ),
                ..OomEvent::default()
            });
        }
        out
    }

    fn event_to_proto(&mut self, mut e: super::OomEvent) -> OomEvent {
        let first = e
            .amends
            .then(|| {
                self.sent
                    .iter()
                    .rev()
                    .find(|s| Some(s.kmsg_seq) == e.kmsg_seq)
                    .copied()
            })
            .flatten();
        // The assembler amends only what it returned, so the kill is known; were it not, the
        // event goes out as a kill of its own (the collector stores it once all the same).
        e.amends = first.is_some();
        let mono_us = e.monotonic_s.map(|s| (s * 1_000_000.0).round() as u64);
        // Only kills move the kernel's oom_kill counter; an amendment is no other kill.
        if e.kind == super::EventKind::Kill
            && !e.amends
            && mono_us.is_some_and(|m| m >= self.start_monotonic_us)
        {
            self.logged_since_start += 1;
        }
        let (time_ms, detail_json) = match first {
            Some(s) => (s.time_ms, detail::render(&mut e, s.table)),
            None => {
                let time_ms = mono_us.map_or_else(now_ms, |m| self.boot.wall_ms(m));
                let (detail_json, table) = self.details.detail(&mut e);
                if let Some(kmsg_seq) = e.kmsg_seq {
                    if self.sent.len() == AMENDABLE {
                        self.sent.pop_front();
                    }
                    self.sent.push_back(Sent {
                        kmsg_seq,
                        time_ms,
                        table,
                    });
                }
                (time_ms, detail_json)
            }
        };
        OomEvent {
            time_ms,
            kmsg_seq: e.kmsg_seq,
            boot_id: self.boot_id.clone(),
            victim_pid: e.victim_pid,
            victim_comm: e.victim_comm.clone(),
            victim_uid: e.victim_uid,
            total_vm_kb: e.total_vm_kb,
            anon_rss_kb: e.anon_rss_kb,
            file_rss_kb: e.file_rss_kb,
            shmem_rss_kb: e.shmem_rss_kb,
            pgtables_kb: e.pgtables_kb,
            oom_score_adj: e.oom_score_adj,
            score: e.score,
            constraint: e.constraint.clone(),
            global_oom: e.global_oom,
            oom_memcg: e.oom_memcg.clone(),
            task_memcg: e.task_memcg.clone(),
            trigger_comm: e.trigger_comm.clone(),
            trigger_pid: e.trigger_pid,
            gfp_mask: e.gfp_mask.clone(),
            order: e.order,
            partial: e.partial,
            reaped: e.reaped,
            panic: e.panic,
            source: "kmsg".into(),
            detail_json,
            kind: e.kind.to_proto().into(),
            amends: e.amends,
        }
    }
}

/// Reads one newline-terminated record from a regular file holding /dev/kmsg text (tests and
/// replays); 0 at the end. Continuation lines (starting with a space) belong to the record.
fn read_file_record(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let start = f.stream_position()?;
    let n = f.read(buf)?;
    if n == 0 {
        return Ok(0);
    }
    match record_end(&buf[..n], n < buf.len()) {
        Some(e) => {
            f.seek(SeekFrom::Start(start + e as u64))?;
            Ok(e)
        }
        None if n == buf.len() => {
            // A record longer than the buffer (a file, not the device, can hold one): its head
            // is returned cut, the rest skipped, so one long line cannot stall the reader.
            match skip_record(f, start + n as u64)? {
                Some(next) => {
                    f.seek(SeekFrom::Start(next))?;
                    Ok(n)
                }
                None => {
                    f.seek(SeekFrom::Start(start))?;
                    Ok(0)
                }
            }
        }
        None => {
            // An incomplete record at the end: wait for the writer to finish it.
            f.seek(SeekFrom::Start(start))?;
            Ok(0)
        }
    }
}

/// The end of the first record in `bytes` (after its newline): a newline not followed by a
/// space (a continuation line). A newline at the very end may still be followed by one, so it
/// counts only when `at_eof`.
fn record_end(bytes: &[u8], at_eof: bool) -> Option<usize> {
    let n = bytes.len();
    (0..n)
        .find(|&i| {
            bytes[i] == b'\n'
                && if i + 1 < n {
                    bytes[i + 1] != b' '
                } else {
                    at_eof
                }
        })
        .map(|i| i + 1)
}

/// The offset where the record that goes on at `from` ends, reading on from there; None when
/// the file ends first (the writer has not finished it).
fn skip_record(f: &mut File, from: u64) -> io::Result<Option<u64>> {
    let mut chunk = vec![0; RECORD_BUF];
    let mut at = from;
    f.seek(SeekFrom::Start(from))?;
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(e) = record_end(&chunk[..n], n < chunk.len()) {
            return Ok(Some(at + e as u64));
        }
        // A newline last in the chunk, a space first in the next: the record goes on.
        at += n as u64 - u64::from(chunk[n - 1] == b'\n');
        f.seek(SeekFrom::Start(at))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kmsg text file (the real AKS report of the corpus, 6 kills) read through the watcher,
    /// with a cursor: a second watcher in the same boot reports nothing again; in another boot
    /// it reads the buffer from the start.
    #[test]
    fn file_source_cursor_and_reboot() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/oom/035-DERIVED-kmsg-from-002-aks515-memcg.kmsg");
        let tmp = tempfile::tempdir().unwrap();
        let proc_root = tmp.path().join("proc");
        std::fs::create_dir_all(proc_root.join("sys/kernel/random")).unwrap();
        let boot = proc_root.join("sys/kernel/random/boot_id");
        std::fs::write(&boot, "boot-a\n").unwrap();
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&state).unwrap();

        let read_all = |w: &mut KmsgWatcher| {
            let mut events = w.read_available();
            events.extend(w.flush_idle());
            events
        };
        let mut w = KmsgWatcher::open(&fixture, &proc_root, &state).unwrap();
        let events = read_all(&mut w);
        assert_eq!(events.len(), 6);
        assert!(events
            .iter()
            .all(|e| e.source == "kmsg" && e.kmsg_seq.is_some()));
        assert!(events
            .iter()
            .all(|e| e.victim_pid.is_some() && e.boot_id == "boot-a"));
        assert!(w.status().records_read > 50, "{:?}", w.status());
        w.commit().unwrap();

        let mut again = KmsgWatcher::open(&fixture, &proc_root, &state).unwrap();
        assert!(
            read_all(&mut again).is_empty(),
            "nothing twice in the same boot"
        );

        std::fs::write(&boot, "boot-b\n").unwrap();
        let mut rebooted = KmsgWatcher::open(&fixture, &proc_root, &state).unwrap();
        assert_eq!(
            read_all(&mut rebooted).len(),
            6,
            "a new boot reads from the start"
        );
    }

    /// A jump in sequence numbers (what the reader sees after an `EPIPE` overrun) is counted as
    /// lost records; user-space records the parser ignores still move the sequence on.
    #[test]
    fn sequence_gaps_are_counted_as_lost_records() {
        let tmp = tempfile::tempdir().unwrap();
        let kmsg = tmp.path().join("kmsg");
        std::fs::write(
            &kmsg,
            "6,1,100,-;first\n12,2,200,-;systemd[1]: a user-space record\n6,5,300,-;after an overrun\n",
        )
        .unwrap();
        let mut w = KmsgWatcher::open(&kmsg, tmp.path(), tmp.path()).unwrap();
        assert!(w.read_available().is_empty());
        assert_eq!(w.status().records_lost, 2, "{:?}", w.status());
    }

    #[test]
    fn counter_kills_missing_from_the_log_are_reported_after_a_grace_check() {
        let tmp = tempfile::tempdir().unwrap();
        let proc_root = tmp.path();
        let kmsg = proc_root.join("kmsg");
        std::fs::write(&kmsg, "").unwrap();
        let mut w = KmsgWatcher::open(&kmsg, proc_root, proc_root).unwrap();
        assert!(w.check_counter(None).is_empty(), "no counter");
        assert!(w.check_counter(Some(5)).is_empty(), "baseline");
        assert!(
            w.check_counter(Some(7)).is_empty(),
            "the log may still be catching up"
        );
        let events = w.check_counter(Some(7));
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.source == "vmstat" && e.partial));
        assert_eq!(w.status().unlogged_kills, 2);
        assert!(w.check_counter(Some(7)).is_empty(), "reported once");
    }

    fn kill_record(seq: u64, us: u64, pid: u64) -> String {
        format!("3,{seq},{us},-;Out of memory: Killed process {pid} (a) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0\n")
    }

    /// The wall clock steps back an hour while the agent runs: the kill after the step gets its
    /// time from the boot time as it is then, not the one read when the agent started (which
    /// would put it an hour ahead of the host's clock). The boot time in use is saved with the
    /// cursor, so a restart keeps giving a record the same time.
    #[test]
    fn a_clock_step_applies_to_the_kills_after_it() {
        let tmp = tempfile::tempdir().unwrap();
        let kmsg = tmp.path().join("kmsg");
        std::fs::write(&kmsg, kill_record(1, 10_000_000, 5)).unwrap();
        let clocks = clock::tests::Fake::default();
        // Booted at 1_700_000_000 s; now 15 s after boot.
        *clocks.0.lock().unwrap() = (1_700_000_015_000_000, 15_000_000);
        let mut w =
            KmsgWatcher::open_with_clocks(&kmsg, tmp.path(), tmp.path(), Box::new(clocks.clone()))
                .unwrap();
        let read = |w: &mut KmsgWatcher| {
            let mut events = w.read_available();
            events.extend(w.flush_idle());
            events
        };
        let first = read(&mut w);
        assert_eq!(first[0].time_ms, 1_700_000_010_000);
        w.commit().unwrap();

        // At 30 s after boot the clock is stepped back an hour; a kill at 40 s follows.
        *clocks.0.lock().unwrap() = (1_700_000_045_000_000 - 3_600_000_000, 45_000_000);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&kmsg)
            .unwrap();
        std::io::Write::write_all(&mut f, kill_record(2, 40_000_000, 6).as_bytes()).unwrap();
        let second = read(&mut w);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].time_ms, 1_700_000_040_000 - 3_600_000);
        w.commit().unwrap();

        // A restart in the same boot (the cursor moved back to read both again): the boot time
        // saved with the cursor is the one in use (the clocks now read 50 µs off it), so the kill
        // after the step gets the very same time again.
        let cursor = std::fs::read_to_string(tmp.path().join("kmsg.cursor")).unwrap();
        assert!(cursor.ends_with(" 1699996400000000\n"), "{cursor}");
        *clocks.0.lock().unwrap() = (1_700_000_050_000_050 - 3_600_000_000, 50_000_000);
        std::fs::write(tmp.path().join("kmsg.cursor"), cursor.replace(" 2 ", " 0 ")).unwrap();
        let mut again =
            KmsgWatcher::open_with_clocks(&kmsg, tmp.path(), tmp.path(), Box::new(clocks)).unwrap();
        let times: Vec<i64> = read(&mut again).iter().map(|e| e.time_ms).collect();
        assert_eq!(
            times,
            [1_700_000_010_000 - 3_600_000, 1_700_000_040_000 - 3_600_000]
        );
    }

    /// A long log is read in parts: the watcher says it has more, and the parts add up.
    #[test]
    fn a_storm_is_read_in_bounded_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let kmsg = tmp.path().join("kmsg");
        let n = MAX_RECORDS_PER_READ as u64 * 2 + 10;
        let text: String = (1..=n).map(|i| kill_record(i, i * 1000, i)).collect();
        std::fs::write(&kmsg, text).unwrap();
        let mut w = KmsgWatcher::open(&kmsg, tmp.path(), tmp.path())
            .unwrap()
            .with_read_budget(Duration::MAX);
        let mut events = 0;
        let mut reads = 0;
        loop {
            events += w.read_available().len();
            reads += 1;
            if !w.has_backlog() {
                break;
            }
        }
        events += w.flush_idle().len();
        assert_eq!(reads, 3);
        assert_eq!(events as u64, n);

        // Out of time: one record a read, the rest left for the next.
        let mut w = KmsgWatcher::open(&kmsg, tmp.path(), tmp.path())
            .unwrap()
            .with_read_budget(Duration::ZERO);
        for read in 1..=2 {
            w.read_available();
            assert!(w.has_backlog());
            assert_eq!(w.status().records_read, read);
        }
    }

    /// A record longer than the read buffer (a file can hold any line) is cut and skipped,
    /// with its continuation lines: the records after it are read, and one still being
    /// written at the end is waited for.
    #[test]
    fn an_overlong_record_does_not_stall_the_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let kmsg = tmp.path().join("kmsg");
        let long = format!(
            "6,2,20000,-;{}\n SUBSYSTEM={}\n",
            "x".repeat(3 * RECORD_BUF),
            "y".repeat(RECORD_BUF - 1)
        );
        let text = format!(
            "{}{long}{}",
            kill_record(1, 10_000, 5),
            kill_record(3, 30_000, 6)
        );
        std::fs::write(&kmsg, &text).unwrap();
        let mut w = KmsgWatcher::open(&kmsg, tmp.path(), tmp.path()).unwrap();
        let mut events = w.read_available();
        events.extend(w.flush_idle());
        let pids: Vec<_> = events.iter().map(|e| e.victim_pid).collect();
        assert_eq!(pids, [Some(5), Some(6)]);
        assert_eq!(w.status().records_lost, 0, "{:?}", w.status());

        // The head of an overlong record whose end is not written yet: nothing is read past it.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&kmsg)
            .unwrap();
        std::io::Write::write_all(
            &mut f,
            format!("6,4,40000,-;{}", "z".repeat(2 * RECORD_BUF)).as_bytes(),
        )
        .unwrap();
        assert!(w.read_available().is_empty());
        std::io::Write::write_all(
            &mut f,
            format!("\n{}", kill_record(5, 50_000, 7)).as_bytes(),
        )
        .unwrap();
        let mut events = w.read_available();
        events.extend(w.flush_idle());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].victim_pid, Some(7));
    }

    #[test]
    fn cursor_and_vmstat_parsers() {
        assert_eq!(
            parse_cursor("abc-123 42\n"),
            Some(Cursor {
                boot_id: "abc-123".into(),
                seq: 42,
                boot_us: None,
            })
        );
        assert_eq!(
            parse_cursor("abc-123 42 1699999995000000\n").and_then(|c| c.boot_us),
            Some(1_699_999_995_000_000)
        );
        assert_eq!(parse_cursor("abc"), None);
        assert_eq!(parse_cursor("abc x"), None);
    }
}
