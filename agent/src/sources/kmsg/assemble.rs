//! Streaming assembly of OOM reports into events: one [`OomEvent`] per kill, and one per OOM
//! invocation that killed nothing (its [`EventKind`] says which).
//!
//! Lines go in one at a time ([`OomAssembler::push`]); a report's events come out when the
//! report is over (an [`OomAssembler::early`] one returns each kill at its kill line already,
//! and amends it when the report is over if later lines changed it; the agent's watcher uses
//! that, `parse-kmsg` does not):
//! - a report starts at a trigger line (`X invoked oom-killer:`), or, when the start is missing
//!   (ring buffer overwritten, rate limiting, a grep'd excerpt), at whichever line of it comes
//!   first: the summary (`oom-kill:`), a selection (`Kill process .. score`), a kill
//!   (`Killed process`), a skipped victim (`OOM victim N (x) is already exiting`), `Task in ..
//!   killed as a result of limit of`, a task-table header, or an OOM panic. Everything from
//!   there on is the report's raw text, other kernel lines interleaved with it included;
//! - each kill line makes a `kill` event with the report's facts (trigger, constraint, memcgs,
//!   task table, memory summary), each `OOM victim N (x) is already exiting. Skip killing the
//!   task` line a `no_kill` event naming N as `selected_pid`. After `Tasks in .. memory.oom.group
//!   set`, the kills that follow share the report (each event copies the task table, and its
//!   `raw` holds the lines since the previous kill). Any other second kill starts a new report:
//!   the OOM killer's rate limit prints a bare kill line for a report whose header it suppressed;
//! - a report without a kill line makes one event: a `kill` of the selected task when it has a
//!   selection line (kernels 2.6.24-5.0 print one before the kill line, and logs often keep the
//!   selection lines alone: grep excerpts, rate limiting) or a summary naming one (4.19+ print
//!   `oom-kill:...,pid=N` only for a victim about to be killed), `panic` when it ends in an OOM
//!   panic, else `no_kill` (`Out of memory and no killable processes` in a memory cgroup;
//!   2.6.x's report that ends without a kill line while the previous victim is still exiting; a
//!   cut report);
//! - an `oom_reaper: reaped process P` line whose P was not killed in the last [`RECENT_VICTIMS`]
//!   kills is a `no_kill` event of its own: the kernel took an exiting task as its victim and
//!   printed nothing else;
//! - a report ends at the next report's first line, [`TAIL_LINES`] lines after its last kill
//!   (an `oom_reaper: reaped process P` line within them sets `reaped` on the kill of P), an
//!   OOM panic, [`STALL_LINES`] lines without any line of a report before a kill (a truncated
//!   report), a monotonic clock that goes back by more than a second (a reboot in a
//!   concatenated log), or [`OomAssembler::finish`]. The `oom_reaper` line is best-effort:
//!   when it comes later than [`TAIL_LINES`] lines, or after `finish`, it is not attached.
//!
//! A late header: syslog files can hold a report's lines out of order, its kill line before its
//! trigger line. The kills of a report without a trigger line wait while the next report is
//! read; if that one has no kill of its own and its lines come from the same moment (its first
//! printk time at most [`REORDER_MONO_US`] before the kill's, or, without printk times, its wall
//! time within [`REORDER_WALL_S`] of the kill's and its summary, selection or task table naming
//! the victim), its facts and lines join the kills', one event rather than two
//! (`assemble/late.rs`).
//!
//! `partial` is set when the report's trigger line was not seen, or it has no kill line and
//! did not end in a panic or `Out of memory and no killable processes`, or it was cut by a
//! limit below. Victim fields come from a kill line, or from a selection line or summary when no
//! kill line followed it (then `partial`): the selection line names the task chosen, which is not
//! the one killed when a child was sacrificed (it is kept as `selected_pid`/`selected_comm`), and
//! the summary's `pid=` names the task chosen too.
//!
//! Bounded memory: per report at most [`MAX_TASK_ROWS`] task rows (more are counted in
//! `tasks_dropped`), per event at most [`MAX_RAW_LINES`] raw lines and [`MAX_RAW_BYTES`] of them
//! (more are counted in `raw_dropped`; the kill line itself is always kept), at most
//! [`MAX_HELD`] kills held for their reaper line or a late header, the last [`RECENT_VICTIMS`]
//! victims' pids, and a report longer than [`MAX_REPORT_LINES`] lines is closed as partial.
//!
//! Private submodules: `held.rs` (an event waiting for its report's end, and what of it leaves
//! then), `late.rs` (kills waiting for a late header), `recent.rs` (the last victims' pids).

mod held;
mod kind;
mod late;
mod recent;

use std::collections::VecDeque;
use std::sync::Arc;

use aho_corasick::AhoCorasick;

use held::{release_all, Held};

pub use super::event::{EventKind, OomEvent, TaskTable};
use super::line::LogLine;
use super::report::{self, Column, Kill, MemInfo};
use kind::{classify, Kind};
use late::Pending;
use recent::Recent;

/// Task rows kept per report.
pub const MAX_TASK_ROWS: usize = 10_000;
/// Raw lines kept per event.
pub const MAX_RAW_LINES: usize = 12_000;
/// Raw bytes kept per event.
pub const MAX_RAW_BYTES: usize = 4 << 20;
/// Lines after which a report is closed as partial whatever it holds. Memory is bounded by
/// the raw and row caps already; this only ends a report that never ends (a host with a
/// million tasks prints a million rows, still within it).
pub const MAX_REPORT_LINES: u64 = 2_000_000;
/// Lines in a row that are no part of a report, before its kill line, after which the report
/// is taken as truncated. A report's stack trace and zone lines are under 200 lines; the
/// Mem-Info block and the task table, however long, count as report lines.
pub const STALL_LINES: u32 = 1_000;
/// Lines after the last kill during which an `oom_reaper` line or a memory.oom.group kill
/// still belongs to the report.
pub const TAIL_LINES: u32 = 64;
/// Kills held for their `oom_reaper` line; past this the oldest is emitted at once.
pub const MAX_HELD: usize = 256;
/// Victims remembered, so that an `oom_reaper` line of a kill already emitted is not taken for
/// an invocation that killed nothing.
pub const RECENT_VICTIMS: usize = 4_096;
/// How much earlier than a kill line a late header's printk time may be.
pub const REORDER_MONO_US: u64 = 60_000_000;
/// How far apart a kill line's and a late header's wall times (seconds) may be.
pub const REORDER_WALL_S: u32 = 2;
/// Lines during which a `... callbacks suppressed` line is kept for the next report.
const PREAMBLE_LINES: u32 = 16;

/// Raw lines with their bounds.
#[derive(Debug, Default)]
struct Raw {
    lines: Vec<String>,
    bytes: usize,
    dropped: u64,
    first_seq: Option<u64>,
}

impl Raw {
    fn push(&mut self, line: &LogLine<'_>) {
        self.push_inner(line, false);
    }

    /// The kill line is kept even past the bounds: it is the evidence for the victim.
    fn push_kill(&mut self, line: &LogLine<'_>) {
        self.push_inner(line, true);
    }

    fn push_inner(&mut self, line: &LogLine<'_>, always: bool) {
        if self.lines.is_empty() && self.dropped == 0 {
            self.first_seq = line.seq;
        }
        let full =
            self.lines.len() >= MAX_RAW_LINES || self.bytes + line.message.len() > MAX_RAW_BYTES;
        if full && !always {
            self.dropped += 1;
            return;
        }
        self.bytes += line.message.len();
        self.lines.push(line.message.to_string());
    }
}

/// How a report without a kill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terminal {
    Panic,
    NoKillable,
}

/// The facts of the report shared by its kills.
#[derive(Debug, Default)]
struct Report {
    raw: Raw,
    header: bool,
    trigger_comm: Option<String>,
    trigger_pid: Option<i64>,
    gfp_mask: Option<String>,
    gfp_flags: Option<String>,
    order: Option<i64>,
    trigger_adj: Option<i64>,
    constraint: Option<String>,
    cpuset: Option<String>,
    global_oom: Option<bool>,
    oom_memcg: Option<String>,
    task_memcg: Option<String>,
    selected_pid: Option<i64>,
    selected_comm: Option<String>,
    /// The selection line was seen (its pid may differ from the victim's).
    selected_by_line: bool,
    score: Option<i64>,
    mem: MemInfo,
    tasks: TaskTable,
    tasks_dropped: u64,
    columns: Option<Vec<Column>>,
    in_meminfo: bool,
    /// Kill and skipped-victim lines so far.
    outcomes: u32,
    group: bool,
    terminal: Option<Terminal>,
    /// Closed by a limit or a stall.
    cut: bool,
    suppressed: Option<u64>,
    /// Lines since the last line that was part of the report (before a kill) or since the
    /// last kill, group or reaper line (after one).
    quiet: u32,
    lines: u64,
    first_mono: Option<u64>,
    first_wall: Option<String>,
    /// The times of the selection line, and of the last kill (or selection) line.
    select_mono: Option<u64>,
    select_wall: Option<String>,
    last_mono: Option<u64>,
    last_wall: Option<String>,
}

/// A `... callbacks suppressed` line waiting for the report it precedes.
#[derive(Debug)]
struct Preamble {
    message: String,
    seq: Option<u64>,
    count: Option<u64>,
    age: u32,
}

/// Why a report was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// The first line of another report arrived.
    Next,
    /// Its terminal line, a stall, a limit, a reboot or the end of the input.
    End,
}

/// What ended an OOM invocation: a kill line, or a victim skipped as already exiting.
enum Outcome {
    Kill(Kill),
    Skip(i64, Option<String>),
}

/// Turns kernel log lines into OOM events; see the module doc for when an event is finished.
#[derive(Debug)]
pub struct OomAssembler {
    report: Option<Report>,
    /// Events of the current report, waiting for their reaper line or the report's end.
    held: VecDeque<Held>,
    /// Events of a report without a trigger line, waiting for a late one.
    pending: Option<Pending>,
    preamble: Option<Preamble>,
    /// Victims of the last kills, so that a late `oom_reaper` line is known for one.
    recent: Recent,
    last_mono: Option<u64>,
    /// Anchors of every line that can start a report: a line without any is skipped at once.
    gate: AhoCorasick,
    /// Return each kill at its kill line, and amend it later ([`OomAssembler::early`]).
    early: bool,
}

impl Default for OomAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl OomAssembler {
    pub fn new() -> Self {
        let gate = AhoCorasick::new([
            "oom-killer: ",
            "illed process ",
            "ill process ",
            "oom-kill:",
            "Task in ",
            "uid  tgid",
            "not syncing: ",
            "no killable",
            "callbacks suppressed",
            "reaped process ",
            "already exiting",
        ])
        .expect("static patterns");
        Self {
            report: None,
            held: VecDeque::new(),
            pending: None,
            preamble: None,
            recent: Recent::default(),
            last_mono: None,
            gate,
            early: false,
        }
    }

    /// An assembler that returns each event of a kill (and of a victim skipped as already
    /// exiting) at once, from the line that names the victim, rather than when its report is
    /// over: everything a kill needs is known by then (the kill line comes after the trigger,
    /// the task table and, from 4.19, the `oom-kill:` summary). What later lines of the report
    /// change (the `oom_reaper` line sets `reaped`; a late header fills in the facts of a report
    /// read without one) comes out when the report is over, as the whole event again with
    /// [`OomEvent::amends`] set: it replaces the one returned before, which has the same
    /// `kmsg_seq`. An event nothing changed is returned once. Events of reports without a kill
    /// line (`no_kill`, `panic`, a selection alone) come out when their report is over, as
    /// without this.
    #[must_use]
    pub fn early(mut self) -> Self {
        self.early = true;
        self
    }

    /// Takes one line; returns the events this line finished (usually none).
    pub fn push(&mut self, line: LogLine<'_>) -> Vec<OomEvent> {
        let mut out = Vec::new();
        if let (Some(now), Some(last)) = (line.monotonic_us, self.last_mono) {
            if now.saturating_add(1_000_000) < last {
                // The clock went back: a reboot between two boots' logs.
                self.close(&mut out, Close::End);
                self.flush_pending(&mut out);
                self.preamble = None;
                self.recent.clear();
            }
        }
        if line.monotonic_us.is_some() {
            self.last_mono = line.monotonic_us;
        }
        if self.report.is_none() {
            if !self.gate.is_match(line.message) {
                self.age_preamble();
                return out;
            }
            match classify(line.message) {
                Kind::Suppressed => {
                    self.preamble = Some(Preamble {
                        message: line.message.to_string(),
                        seq: line.seq,
                        count: suppressed_count(line.message),
                        age: 0,
                    });
                }
                Kind::Reaper(pid, comm) => {
                    self.reaper_alone(pid, comm, &line, &mut out);
                    self.age_preamble();
                }
                Kind::Banner(..)
                | Kind::Group
                | Kind::MemcgUsage(..)
                | Kind::MemInfoStart
                | Kind::Other => self.age_preamble(),
                kind => {
                    self.start(&line);
                    self.apply(kind, &line, &mut out);
                }
            }
            return out;
        }
        let kind = classify(line.message);
        self.apply(kind, &line, &mut out);
        out
    }

    /// Ends the report in progress and returns every event not yet returned. The assembler can
    /// be used again after it (the agent calls it when the log has been quiet for a moment).
    pub fn finish(&mut self) -> Vec<OomEvent> {
        let mut out = Vec::new();
        self.close(&mut out, Close::End);
        self.flush_pending(&mut out);
        self.preamble = None;
        out
    }

    fn age_preamble(&mut self) {
        if let Some(p) = &mut self.preamble {
            p.age += 1;
            if p.age > PREAMBLE_LINES {
                self.preamble = None;
            }
        }
    }

    fn start(&mut self, line: &LogLine<'_>) {
        let mut r = Report {
            first_mono: line.monotonic_us,
            first_wall: line.wall_time.clone(),
            ..Report::default()
        };
        if let Some(p) = self.preamble.take() {
            r.raw.push(&LogLine {
                seq: p.seq,
                monotonic_us: None,
                wall_time: None,
                message: &p.message,
            });
            r.suppressed = p.count;
        }
        self.report = Some(r);
    }

    fn flush_pending(&mut self, out: &mut Vec<OomEvent>) {
        if let Some(p) = self.pending.take() {
            release_all(p.events, out);
        }
    }

    /// An `oom_reaper` line outside any report's kills: a `no_kill` event unless its pid was
    /// killed a moment ago.
    fn reaper_alone(
        &mut self,
        pid: i64,
        comm: Option<String>,
        line: &LogLine<'_>,
        out: &mut Vec<OomEvent>,
    ) {
        if !self.recent.contains(pid) {
            self.recent.add(pid);
            out.push(orphan_reaper(pid, comm, line));
        }
    }

    /// Ends the report: its held events, or its one event for a report without a kill, unless
    /// it is the late header of pending events, or its own events must wait for one.
    fn close(&mut self, out: &mut Vec<OomEvent>, why: Close) {
        let Some(mut r) = self.report.take() else {
            return;
        };
        if let Some(mut p) = self.pending.take() {
            if p.takes(&r) {
                p.merge(&mut r);
                if p.header || why == Close::End {
                    release_all(p.events, out);
                } else {
                    self.pending = Some(p);
                }
                return;
            }
            release_all(p.events, out);
        }
        let mut events: Vec<Held> = self.held.drain(..).collect();
        if r.outcomes == 0 {
            events.push(self.without_kill_line(&mut r));
        }
        let may_wait = why == Close::Next
            && !r.header
            && events.iter().any(|h| h.event.kind == EventKind::Kill);
        if may_wait {
            self.pending = Some(Pending::new(events, &r));
        } else {
            release_all(events, out);
        }
    }

    /// The event of a report without a kill or skipped-victim line.
    fn without_kill_line(&mut self, r: &mut Report) -> Held {
        let mut e = event_of(r, None);
        if r.selected_pid.is_some() && r.terminal != Some(Terminal::Panic) {
            // The selection line (2.6.24-5.0), or the summary's `pid=` (4.19+, printed only
            // for a victim about to be killed), is a kill whose kill line the log does not hold.
            e.victim_pid = r.selected_pid;
            e.victim_comm.clone_from(&r.selected_comm);
            e.monotonic_s = r.select_mono.map(secs);
            e.time.clone_from(&r.select_wall);
            e.partial = true;
            if let Some(pid) = r.selected_pid {
                self.recent.add(pid);
            }
            return Held::new(e, true);
        }
        e.monotonic_s = r.first_mono.map(secs);
        e.time.clone_from(&r.first_wall);
        e.panic = r.terminal == Some(Terminal::Panic);
        e.kind = if e.panic {
            EventKind::Panic
        } else {
            EventKind::NoKill
        };
        // A report is whole without a kill line only when it says why it has none.
        let cut = r.cut || r.terminal.is_none();
        e.partial = !r.header || cut;
        Held::new(e, cut)
    }

    /// Closes the report and starts a new one at `line`.
    fn restart(&mut self, line: &LogLine<'_>, out: &mut Vec<OomEvent>) {
        self.close(out, Close::Next);
        self.start(line);
    }

    fn apply(&mut self, kind: Kind<'_>, line: &LogLine<'_>, out: &mut Vec<OomEvent>) {
        let msg = line.message;
        let (outcomes, begun, selected) = self.report.as_ref().map_or((0, false, false), |r| {
            (r.outcomes, r.lines > 0, r.selected_by_line)
        });
        // Lines that begin a new report (the trigger always; the others when this report
        // already has its kill, or a selection that had no kill line).
        match &kind {
            Kind::Trigger(_) if begun => self.restart(line, out),
            Kind::TaskIn(..)
            | Kind::TableHeader(_)
            | Kind::Summary(_)
            | Kind::Panic
            | Kind::NoKillable
                if outcomes > 0 =>
            {
                self.restart(line, out)
            }
            Kind::Select(_) if outcomes > 0 || selected => self.restart(line, out),
            Kind::Suppressed if outcomes > 0 => {
                self.close(out, Close::End);
                self.preamble = Some(Preamble {
                    message: msg.to_string(),
                    seq: line.seq,
                    count: suppressed_count(msg),
                    age: 0,
                });
                return;
            }
            _ => {}
        }
        let kind = match kind {
            Kind::Kill(k) => return self.outcome(Outcome::Kill(k), line, out),
            Kind::Skip(pid, comm) => return self.outcome(Outcome::Skip(pid, comm), line, out),
            kind => kind,
        };
        let Some(r) = self.report.as_mut() else {
            return;
        };
        r.lines += 1;
        let mut part_of_report = true;
        let mut reaped_held = false;
        let mut orphan = false;
        let mut tail_reset = false;
        match kind {
            Kind::Trigger(t) => {
                r.header = true;
                r.trigger_comm = t.comm;
                r.gfp_mask = t.gfp_mask;
                r.gfp_flags = t.gfp_flags;
                r.order = t.order;
                r.trigger_adj = t.oom_score_adj;
            }
            Kind::Banner(pid, banner) => {
                // The dump_stack banner after the trigger names the allocating task; another
                // CPU's warning may print its own banner first, so only one naming the
                // trigger's comm is taken.
                if r.header
                    && r.trigger_pid.is_none()
                    && !r.in_meminfo
                    && r.outcomes == 0
                    && r.trigger_comm
                        .as_deref()
                        .is_some_and(|c| report::banner_names(banner, c))
                {
                    r.trigger_pid = Some(pid);
                } else {
                    part_of_report = r.in_meminfo;
                }
            }
            Kind::TaskIn(task, oom) => {
                r.task_memcg.get_or_insert(task);
                r.oom_memcg.get_or_insert(oom);
                r.global_oom = Some(false);
            }
            Kind::Group => {
                if r.outcomes > 0 {
                    r.group = true;
                    tail_reset = true;
                }
            }
            Kind::MemcgUsage(usage, limit, failcnt) => {
                if r.outcomes == 0 {
                    r.mem.memcg_usage_kb = r.mem.memcg_usage_kb.or(usage);
                    r.mem.memcg_limit_kb = r.mem.memcg_limit_kb.or(limit);
                    r.mem.memcg_failcnt = r.mem.memcg_failcnt.or(failcnt);
                }
            }
            Kind::MemInfoStart => r.in_meminfo = r.outcomes == 0,
            Kind::TableHeader(cols) => {
                r.columns = Some(cols);
                r.in_meminfo = false;
            }
            Kind::Summary(s) => {
                r.columns = None;
                r.in_meminfo = false;
                r.constraint = s.constraint;
                r.cpuset = s.cpuset;
                r.global_oom = s.global_oom.or(r.global_oom);
                if s.oom_memcg.is_some() {
                    r.oom_memcg = s.oom_memcg;
                }
                if s.task_memcg.is_some() {
                    r.task_memcg = s.task_memcg;
                }
                if !r.selected_by_line {
                    r.selected_pid = s.pid;
                    r.selected_comm = s.task;
                    r.select_mono = line.monotonic_us;
                    r.select_wall.clone_from(&line.wall_time);
                }
            }
            Kind::Select(s) => {
                r.columns = None;
                r.in_meminfo = false;
                r.selected_by_line = true;
                r.selected_pid = Some(s.pid);
                r.selected_comm = s.comm;
                r.score = s.score;
                r.select_mono = line.monotonic_us;
                r.select_wall.clone_from(&line.wall_time);
                r.last_mono = line.monotonic_us;
                r.last_wall.clone_from(&line.wall_time);
                if r.global_oom.is_none() {
                    r.global_oom = s.global_oom;
                }
            }
            Kind::Reaper(pid, comm) => {
                if let Some(h) = self
                    .held
                    .iter_mut()
                    .rev()
                    .find(|h| h.event.victim_pid == Some(pid) && !h.event.reaped)
                {
                    h.event.reaped = true;
                    h.amended = true;
                    if h.event.raw.len() < MAX_RAW_LINES {
                        h.event.raw.push(msg.to_string());
                    }
                    reaped_held = true;
                    tail_reset = true;
                } else {
                    part_of_report = false;
                    if !self.recent.contains(pid) {
                        self.recent.add(pid);
                        out.push(orphan_reaper(pid, comm, line));
                        orphan = true;
                    }
                }
            }
            Kind::Panic => r.terminal = Some(Terminal::Panic),
            Kind::NoKillable => r.terminal = Some(Terminal::NoKillable),
            Kind::Suppressed => {}
            Kind::Other => {
                part_of_report = false;
                if r.outcomes == 0 {
                    let t = msg.trim_start();
                    if let Some(cols) = &r.columns {
                        if t.starts_with('[') {
                            if let Some(row) = report::parse_task_row(msg, cols) {
                                if r.tasks.len() < MAX_TASK_ROWS {
                                    Arc::make_mut(&mut r.tasks).push(row);
                                } else {
                                    r.tasks_dropped += 1;
                                }
                                part_of_report = true;
                            }
                        }
                    }
                    if !part_of_report && r.mem.read_totals(msg) {
                        part_of_report = true;
                    }
                    if !part_of_report && r.in_meminfo {
                        r.mem.read_summary(msg);
                        part_of_report = true;
                    }
                    if t.starts_with("Memory cgroup stats for ") {
                        part_of_report = true;
                    }
                }
            }
            Kind::Kill(_) | Kind::Skip(..) => unreachable!("handled above"),
        }
        if !reaped_held && !orphan {
            r.raw.push(line);
        }
        let terminal = r.terminal.is_some();
        if r.outcomes == 0 {
            if part_of_report {
                r.quiet = 0;
            } else {
                r.quiet += 1;
            }
        } else if tail_reset {
            r.quiet = 0;
        } else {
            r.quiet += 1;
        }
        let stalled = (r.outcomes == 0 && r.quiet > STALL_LINES) || r.lines > MAX_REPORT_LINES;
        let tail_over = r.outcomes > 0 && r.quiet > TAIL_LINES;
        if stalled {
            r.cut = true;
        }
        if terminal || stalled || tail_over {
            self.close(out, Close::End);
        }
    }

    /// A kill line, or a victim skipped as already exiting: an event with the report's facts.
    fn outcome(&mut self, o: Outcome, line: &LogLine<'_>, out: &mut Vec<OomEvent>) {
        let pid = match &o {
            Outcome::Kill(k) => k.pid,
            Outcome::Skip(pid, _) => *pid,
        };
        match &self.report {
            None => self.start(line),
            Some(r) if r.outcomes > 0 && !r.group => self.restart(line, out),
            // 5.3+ prints no selection line and kills the task its summary named: a kill of
            // another pid is not this report's.
            Some(r)
                if r.outcomes == 0
                    && !r.selected_by_line
                    && r.selected_pid.is_some_and(|p| p != pid) =>
            {
                self.restart(line, out)
            }
            Some(_) => {}
        }
        // A report with a kill of its own is no late header: what waited for one goes out first.
        self.flush_pending(out);
        let Some(r) = self.report.as_mut() else {
            return;
        };
        r.lines += 1;
        r.raw.push_kill(line);
        r.quiet = 0;
        r.columns = None;
        r.in_meminfo = false;
        r.last_mono = line.monotonic_us;
        r.last_wall.clone_from(&line.wall_time);
        let first = r.outcomes == 0;
        let (mut e, cut) = match o {
            Outcome::Kill(k) => {
                let mut e = event_of(r, Some(&k));
                if !first {
                    // A memory.oom.group kill: the chosen task's score is not this one's.
                    e.score = None;
                }
                // A kill line cut inside the comm is a truncated report too.
                (e, r.cut || k.comm.is_none())
            }
            Outcome::Skip(pid, comm) => {
                let mut e = event_of(r, None);
                e.kind = EventKind::NoKill;
                e.selected_pid = Some(pid);
                e.selected_comm = comm;
                e.score = None;
                (e, r.cut)
            }
        };
        e.monotonic_s = line.monotonic_us.map(secs);
        e.time.clone_from(&line.wall_time);
        e.partial = !r.header || cut;
        r.outcomes += 1;
        self.recent.add(pid);
        let mut held = Held::new(e, cut);
        if self.early {
            out.push(held.event.clone());
            held.sent = true;
        }
        self.held.push_back(held);
        if self.held.len() > MAX_HELD {
            if let Some(h) = self.held.pop_front() {
                h.release(out);
            }
        }
    }
}

/// The `no_kill` event of an `oom_reaper` line of no kill the assembler saw.
fn orphan_reaper(pid: i64, comm: Option<String>, line: &LogLine<'_>) -> OomEvent {
    OomEvent {
        kind: EventKind::NoKill,
        kmsg_seq: line.seq,
        monotonic_s: line.monotonic_us.map(secs),
        time: line.wall_time.clone(),
        selected_pid: Some(pid),
        selected_comm: comm,
        reaped: true,
        partial: true,
        raw: vec![line.message.to_string()],
        ..OomEvent::default()
    }
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

fn suppressed_count(msg: &str) -> Option<u64> {
    let rest = msg.strip_suffix(" callbacks suppressed")?;
    rest.rsplit(' ').next()?.parse().ok()
}

/// An event with the report's facts and the raw lines gathered since the last event; the
/// victim's fields from `kill`.
fn event_of(r: &mut Report, kill: Option<&Kill>) -> OomEvent {
    let raw = std::mem::take(&mut r.raw);
    let mut e = OomEvent {
        kmsg_seq: raw.first_seq,
        trigger_comm: r.trigger_comm.clone(),
        trigger_pid: r.trigger_pid,
        gfp_mask: r.gfp_mask.clone(),
        gfp_flags: r.gfp_flags.clone(),
        order: r.order,
        trigger_oom_score_adj: r.trigger_adj,
        constraint: r.constraint.clone(),
        cpuset: r.cpuset.clone(),
        global_oom: r.global_oom,
        oom_memcg: r.oom_memcg.clone(),
        task_memcg: r.task_memcg.clone(),
        selected_pid: r.selected_pid,
        selected_comm: r.selected_comm.clone(),
        score: r.score,
        mem_info: (!r.mem.is_empty()).then(|| r.mem.clone()),
        suppressed: r.suppressed,
        tasks: r.tasks.clone(),
        tasks_dropped: (r.tasks_dropped > 0).then_some(r.tasks_dropped),
        raw: raw.lines,
        raw_dropped: (raw.dropped > 0).then_some(raw.dropped),
        ..OomEvent::default()
    };
    if let Some(k) = kill {
        e.victim_pid = Some(k.pid);
        e.victim_comm = k.comm.clone();
        e.victim_uid = k.uid;
        e.total_vm_kb = k.total_vm_kb;
        e.anon_rss_kb = k.anon_rss_kb;
        e.file_rss_kb = k.file_rss_kb;
        e.shmem_rss_kb = k.shmem_rss_kb;
        e.pgtables_kb = k.pgtables_kb;
        e.oom_score_adj = k.oom_score_adj;
        if e.global_oom.is_none() {
            e.global_oom = k.global_oom;
        }
        if r.selected_by_line && r.selected_pid != Some(k.pid) {
            e.score = None;
        }
    }
    e
}
