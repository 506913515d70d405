//! OOM-killer reports from the kernel log, as structured events. The parser is pure (text in,
//! events out); reading `/dev/kmsg` is [`watch`]'s job, a thin I/O loop around it.
//!
//! Layout:
//! - [`line`](mod@line): the three input forms (`/dev/kmsg` records, `dmesg` text, syslog/journal text)
//!   and their prefixes (vendors' too: `dmesg -x`, `talosctl dmesg`, VMware guest logs), dropping
//!   the records of other programs: [`split_line`], [`parse_kmsg_record`];
//! - [`report`]: one parser per line of a report (trigger, dump_stack banner, summary,
//!   selection, kill, task table, Mem-Info, reaper, panic), each documenting the kernel
//!   versions whose forms it reads;
//! - [`assemble`]: [`OomAssembler`], which turns a stream of lines into one [`OomEvent`] per
//!   kill and per OOM invocation that killed nothing, with bounded memory;
//! - [`event`]: [`OomEvent`], the keys `parse-kmsg` prints, and its [`EventKind`] (`kill`,
//!   `panic`, `no_kill`);
//! - [`watch`]: [`KmsgWatcher`], which reads `/dev/kmsg` (non-blocking, woken by epoll), keeps
//!   the cursor across restarts, counts overruns and cross-checks the `oom_kill` counter of
//!   /proc/vmstat;
//! - here: [`parse_text`] and [`parse_kmsg_cli`] (what `fleet-agent parse-kmsg` runs).
//!
//! A report as `dmesg` shows it on 6.11 (`Call Trace`, `Mem-Info` and zone lines elided):
//!
//! ```text
//! [   30.745678] stress-ng-vm invoked oom-killer: gfp_mask=0x440dc0(GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=1000
//! [   30.745687] CPU: 1 UID: 0 PID: 116 Comm: stress-ng-vm Not tainted 6.11.0-10669-g11a299a7933e-dirty #15
//! [   30.745824] Tasks state (memory values in pages):
//! [   30.745824] [  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name
//! [   30.745836] [    116]     0   116  2628942  1995298  1995157      141         0 16052224        0          1000 stress-ng-vm
//! [   30.745839] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=stress-ng-vm,pid=116,uid=0
//! [   30.745847] Out of memory: Killed process 116 (stress-ng-vm) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB, UID:0 pgtables:15676kB oom_score_adj:1000
//! ```
//!
//! gives (one JSON object per line; `raw` and `tasks` shortened here):
//!
//! ```json
//! {"kind":"kill","monotonic_s":30.745847,"victim_pid":116,"victim_comm":"stress-ng-vm","victim_uid":0,
//!  "total_vm_kb":10515768,"anon_rss_kb":7980628,"file_rss_kb":564,"shmem_rss_kb":0,
//!  "pgtables_kb":15676,"oom_score_adj":1000,"selected_pid":116,"selected_comm":"stress-ng-vm",
//!  "constraint":"CONSTRAINT_NONE","cpuset":"/","global_oom":true,"task_memcg":"/",
//!  "trigger_comm":"stress-ng-vm","trigger_pid":116,"gfp_mask":"0x440dc0",
//!  "gfp_flags":"GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO","order":0,"trigger_oom_score_adj":1000,
//!  "tasks":[{"pid":116,"uid":0,"tgid":116,"total_vm":2628942,"rss":1995298,"rss_anon":1995157,...}],
//!  "raw":["stress-ng-vm invoked oom-killer: ...", ...]}
//! ```
//!
//! Time: `monotonic_s` is the kill line's seconds since boot where the input carries them
//! (kmsg, `dmesg`, syslog with printk times), `time` its wall time exactly as the input wrote
//! it (syslog, journal, `dmesg -T`); `kmsg_seq` is the first record of the event for kmsg
//! input. Converting either to an instant needs facts the text does not hold (boot time,
//! year, zone): the agent does it with the host's own.

pub mod assemble;
pub mod event;
pub mod line;
pub mod report;
pub mod watch;

use std::borrow::Cow;
use std::io::{self, BufRead, Write};

pub use assemble::{OomAssembler, MAX_RAW_LINES, MAX_TASK_ROWS};
pub use event::{EventKind, OomEvent, TaskTable};
pub use line::{
    kmsg_record_seq, parse_kmsg_record, split_line, InputFormat, LogLine, ParseFormatError,
};
pub use report::{MemInfo, TaskRow};
pub use watch::KmsgWatcher;

/// Lines longer than this are cut here by [`parse_kmsg_cli`] (the kernel's own records are at
/// most about 1 KiB, 4 KiB once escaped); the rest of such a line is skipped.
pub const MAX_LINE: usize = 64 * 1024;

/// Every event in `text`, a whole log in `format`.
pub fn parse_text(format: InputFormat, text: &str) -> Vec<OomEvent> {
    let mut asm = OomAssembler::new();
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(line) = split_line(format, l) {
            out.extend(asm.push(line));
        }
    }
    out.extend(asm.finish());
    out
}

/// Reads one line into `buf` (without its newline), at most [`MAX_LINE`] bytes of it.
/// `Ok(false)` at the end of the input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let mut any = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any);
        }
        any = true;
        let (take, used, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, i + 1, true),
            None => (chunk.len(), chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        input.consume(used);
        if done {
            return Ok(true);
        }
    }
}

/// What `fleet-agent parse-kmsg` does: reads `input` line by line (streaming: memory stays
/// bounded by one report, see [`assemble`]) and writes one JSON object per event, one per line,
/// to `out`. Returns the number of events written: one per kill, plus one per report that had
/// no kill line (a truncated report, `partial: true`, or an OOM panic).
///
/// Bytes that are not UTF-8 are replaced (U+FFFD) before parsing.
///
/// # Errors
/// Reading `input` or writing `out` failed (a closed pipe is the caller's to judge).
pub fn parse_kmsg_cli(
    format: InputFormat,
    mut input: impl BufRead,
    mut out: impl Write,
) -> io::Result<u64> {
    let mut asm = OomAssembler::new();
    let mut buf = Vec::with_capacity(4096);
    let mut written = 0u64;
    let mut emit = |events: Vec<OomEvent>, out: &mut dyn Write| -> io::Result<()> {
        for e in events {
            serde_json::to_writer(&mut *out, &e)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        Ok(())
    };
    while read_line(&mut input, &mut buf)? {
        let text = match std::str::from_utf8(&buf) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(&buf),
        };
        if let Some(line) = split_line(format, &text) {
            let events = asm.push(line);
            if !events.is_empty() {
                emit(events, &mut out)?;
            }
        }
    }
    emit(asm.finish(), &mut out)?;
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded() {
        let long = "x".repeat(MAX_LINE + 10);
        let text = format!("{long}\nshort\nlast");
        let mut input = text.as_bytes();
        let mut buf = Vec::new();
        assert!(read_line(&mut input, &mut buf).unwrap());
        assert_eq!(buf.len(), MAX_LINE);
        assert!(read_line(&mut input, &mut buf).unwrap());
        assert_eq!(buf, b"short");
        assert!(read_line(&mut input, &mut buf).unwrap());
        assert_eq!(buf, b"last");
        assert!(!read_line(&mut input, &mut buf).unwrap());
    }

    #[test]
    fn cli_writes_one_object_per_kill() {
        let text = "[ 1.0] Out of memory: Killed process 5 (a) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0\n\
                    [ 2.0] Out of memory: Killed process 6 (b) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0\n";
        let mut out = Vec::new();
        let n = parse_kmsg_cli(InputFormat::Auto, text.as_bytes(), &mut out).unwrap();
        assert_eq!(n, 2);
        let lines: Vec<serde_json::Value> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["victim_pid"], 5);
        assert_eq!(lines[1]["victim_comm"], "b");
        assert_eq!(lines[1]["monotonic_s"], 2.0);
        assert_eq!(lines[1]["partial"], true);
        assert!(lines[0].get("trigger_pid").is_none());
    }
}
