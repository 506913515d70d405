//! Streaming assembly of OOM reports into one [`OomEvent`] per kill.
//!
//! Lines go in one at a time ([`OomAssembler::push`]); a report's events come out when the
//! report is over:
//! - a report starts at a trigger line (`X invoked oom-killer:`), or, when the start is missing
//!   (ring buffer overwritten, rate limiting, a grep'd excerpt), at whichever line of it comes
//!   first: the summary (`oom-kill:`), a selection (`Kill process .. score`), a kill
//!   (`Killed process`), `Task in .. killed as a result of limit of`, a task-table header, or
//!   an OOM panic. Everything from there on is the report's raw text, other kernel lines
//!   interleaved with it included;
//! - each kill line makes an event with the report's facts (trigger, constraint, memcgs, task
//!   table, memory summary). After `Tasks in .. memory.oom.group set`, the kills that follow
//!   share the report (each event copies the task table, and its `raw` holds the lines since
//!   the previous kill). Any other second kill starts a new report: the OOM killer's rate
//!   limit prints a bare kill line for a report whose header it suppressed;
//! - a report ends at the next report's first line, [`TAIL_LINES`] lines after its last kill
//!   (an `oom_reaper: reaped process P` line within them sets `reaped` on the kill of P), an
//!   OOM panic, [`STALL_LINES`] lines without any line of a report before a kill (a truncated
//!   report), a monotonic clock that goes back by more than a second (a reboot in a
//!   concatenated log), or [`OomAssembler::finish`]. The `oom_reaper` line is best-effort:
//!   when it comes later than [`TAIL_LINES`] lines, or after `finish`, it is not attached.
//!
//! `partial` is set when the report's trigger line was not seen, or it has no kill line and
//! did not end in a panic or `Out of memory and no killable processes`, or it was cut by a
//! limit below. Victim fields come only from a kill line: the selection line names the task
//! chosen, which is not the one killed when a child was sacrificed (it is kept as
//! `selected_pid`/`selected_comm`), and the summary's `pid=` names the task chosen too.
//!
//! Bounded memory: per report at most [`MAX_TASK_ROWS`] task rows (more are counted in
//! `tasks_dropped`), per event at most [`MAX_RAW_LINES`] raw lines and [`MAX_RAW_BYTES`] of them
//! (more are counted in `raw_dropped`; the kill line itself is always kept), at most [`MAX_HELD`] kills held for their reaper line,
//! and a report longer than [`MAX_REPORT_LINES`] lines is closed as partial.

use std::collections::VecDeque;

use aho_corasick::AhoCorasick;
use serde::Serialize;

use super::line::LogLine;
use super::report::{self, Column, Kill, MemInfo, TaskRow};

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
/// Lines during which a `... callbacks suppressed` line is kept for the next report.
const PREAMBLE_LINES: u32 = 16;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One OOM kill (or one report without a kill line, then `partial` or `panic`), with the keys
/// `fleet-agent parse-kmsg` prints. A key is absent when the report does not say it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OomEvent {
    /// Sequence number of the event's first /dev/kmsg record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kmsg_seq: Option<u64>,
    /// Seconds since boot of the kill line (of the report's first line without one), from the
    /// kmsg record or a `[seconds]` prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monotonic_s: Option<f64>,
    /// The wall time of that line as the input wrote it (syslog, journal, `dmesg -T`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victim_pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victim_comm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victim_uid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_vm_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anon_rss_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_rss_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shmem_rss_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgtables_kb: Option<u64>,
    /// The victim's, from the kill line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// The badness the selection line printed; left out when the victim is not the selected
    /// task (a child was sacrificed), since it is the parent's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<i64>,
    /// The task the killer chose (selection line, or the summary's `task=`/`pid=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_comm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_oom: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_memcg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_memcg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_comm: Option<String>,
    /// From the `CPU: N PID: P Comm: X` banner after the trigger, when it names the same comm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gfp_mask: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gfp_flags: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    /// The allocating task's adj, from the trigger line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_oom_score_adj: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_info: Option<MemInfo>,
    #[serde(skip_serializing_if = "is_false")]
    pub reaped: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub panic: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub partial: bool,
    /// `N` of an `oom_kill_process: N callbacks suppressed` line just before the report: N
    /// earlier reports lost their header to the rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_dropped: Option<u64>,
    /// The kernel messages of the event, prefixes stripped, in order.
    pub raw: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_dropped: Option<u64>,
}

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
    tasks: Vec<TaskRow>,
    tasks_dropped: u64,
    columns: Option<Vec<Column>>,
    in_meminfo: bool,
    kills: u32,
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
}

/// A `... callbacks suppressed` line waiting for the report it precedes.
#[derive(Debug)]
struct Preamble {
    message: String,
    seq: Option<u64>,
    count: Option<u64>,
    age: u32,
}

/// What one message is, as far as reports go.
enum Kind<'a> {
    Trigger(report::Trigger),
    Banner(i64, &'a str),
    TaskIn(String, String),
    Group,
    MemcgUsage(Option<u64>, Option<u64>, Option<u64>),
    MemInfoStart,
    TableHeader(Vec<Column>),
    Summary(report::Summary),
    Select(report::Select),
    Kill(Kill),
    Reaper(i64),
    Panic,
    NoKillable,
    Suppressed,
    Other,
}

fn classify(msg: &str) -> Kind<'_> {
    let t = msg.trim_start();
    if let Some(k) = report::parse_kill(msg) {
        return Kind::Kill(k);
    }
    if let Some(s) = report::parse_select(msg) {
        return Kind::Select(s);
    }
    if let Some(s) = report::parse_summary(msg) {
        return Kind::Summary(s);
    }
    if let Some(t) = report::parse_trigger(msg) {
        return Kind::Trigger(t);
    }
    if t.starts_with('[') {
        if let Some(cols) = report::parse_table_header(msg) {
            return Kind::TableHeader(cols);
        }
        return Kind::Other;
    }
    if let Some((pid, rest)) = report::parse_cpu_line(msg) {
        return Kind::Banner(pid, rest);
    }
    if let Some((task, oom)) = report::parse_task_in(msg) {
        return Kind::TaskIn(task, oom);
    }
    if report::is_group_kill(msg) {
        return Kind::Group;
    }
    if let Some((u, l, f)) = report::parse_memcg_usage(msg) {
        return Kind::MemcgUsage(u, l, f);
    }
    if t == "Mem-Info:" {
        return Kind::MemInfoStart;
    }
    if let Some(pid) = report::parse_reaper(msg) {
        return Kind::Reaper(pid);
    }
    if report::is_oom_panic(msg) {
        return Kind::Panic;
    }
    if report::is_no_killable(msg) {
        return Kind::NoKillable;
    }
    if report::is_oom_suppressed(msg) {
        return Kind::Suppressed;
    }
    Kind::Other
}

/// Turns kernel log lines into OOM events; see the module doc for when an event is finished.
#[derive(Debug)]
pub struct OomAssembler {
    report: Option<Report>,
    /// Kills of the current report, waiting for their reaper line or the report's end.
    held: VecDeque<OomEvent>,
    preamble: Option<Preamble>,
    last_mono: Option<u64>,
    /// Anchors of every line that can start a report: a line without any is skipped at once.
    gate: AhoCorasick,
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
        ])
        .expect("static patterns");
        Self {
            report: None,
            held: VecDeque::new(),
            preamble: None,
            last_mono: None,
            gate,
        }
    }

    /// Takes one line; returns the events this line finished (usually none).
    pub fn push(&mut self, line: LogLine<'_>) -> Vec<OomEvent> {
        let mut out = Vec::new();
        if let (Some(now), Some(last)) = (line.monotonic_us, self.last_mono) {
            if now.saturating_add(1_000_000) < last {
                // The clock went back: a reboot between two boots' logs.
                self.close(&mut out);
                self.preamble = None;
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
                Kind::Banner(..)
                | Kind::Group
                | Kind::MemcgUsage(..)
                | Kind::MemInfoStart
                | Kind::Reaper(_)
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
        self.close(&mut out);
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

    /// Ends the report: its held kills, or one event for a report without a kill.
    fn close(&mut self, out: &mut Vec<OomEvent>) {
        let Some(mut r) = self.report.take() else {
            return;
        };
        out.extend(self.held.drain(..));
        if r.kills == 0 {
            let mut e = event_of(&mut r, None);
            e.monotonic_s = r.first_mono.map(secs);
            e.time = r.first_wall.clone();
            e.panic = r.terminal == Some(Terminal::Panic);
            e.partial = !r.header || r.terminal.is_none() || r.cut;
            out.push(e);
        }
    }

    /// Closes the report and starts a new one at `line`.
    fn restart(&mut self, line: &LogLine<'_>, out: &mut Vec<OomEvent>) {
        self.close(out);
        self.start(line);
    }

    fn apply(&mut self, kind: Kind<'_>, line: &LogLine<'_>, out: &mut Vec<OomEvent>) {
        let msg = line.message;
        let (kills, begun) = self
            .report
            .as_ref()
            .map_or((0, false), |r| (r.kills, r.lines > 0));
        // Lines that begin a new report (the trigger always; the others when this report
        // already has its kill).
        match &kind {
            Kind::Trigger(_) if begun => self.restart(line, out),
            Kind::TaskIn(..) | Kind::TableHeader(_) | Kind::Summary(_) | Kind::Select(_)
                if kills > 0 =>
            {
                self.restart(line, out)
            }
            Kind::Suppressed if kills > 0 => {
                self.close(out);
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
        if let Kind::Kill(k) = kind {
            self.kill(k, line, out);
            return;
        }
        let Some(r) = self.report.as_mut() else {
            return;
        };
        r.lines += 1;
        let mut part_of_report = true;
        let mut reaped_held = false;
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
                    && r.kills == 0
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
                if r.kills > 0 {
                    r.group = true;
                    tail_reset = true;
                }
            }
            Kind::MemcgUsage(usage, limit, failcnt) => {
                if r.kills == 0 {
                    r.mem.memcg_usage_kb = r.mem.memcg_usage_kb.or(usage);
                    r.mem.memcg_limit_kb = r.mem.memcg_limit_kb.or(limit);
                    r.mem.memcg_failcnt = r.mem.memcg_failcnt.or(failcnt);
                }
            }
            Kind::MemInfoStart => r.in_meminfo = r.kills == 0,
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
                }
            }
            Kind::Select(s) => {
                r.columns = None;
                r.in_meminfo = false;
                r.selected_by_line = true;
                r.selected_pid = Some(s.pid);
                r.selected_comm = s.comm;
                r.score = s.score;
                if r.global_oom.is_none() {
                    r.global_oom = s.global_oom;
                }
            }
            Kind::Reaper(pid) => {
                if let Some(e) = self
                    .held
                    .iter_mut()
                    .rev()
                    .find(|e| e.victim_pid == Some(pid) && !e.reaped)
                {
                    e.reaped = true;
                    if e.raw.len() < MAX_RAW_LINES {
                        e.raw.push(msg.to_string());
                    }
                    reaped_held = true;
                    tail_reset = true;
                } else {
                    part_of_report = false;
                }
            }
            Kind::Panic => r.terminal = Some(Terminal::Panic),
            Kind::NoKillable => r.terminal = Some(Terminal::NoKillable),
            Kind::Suppressed => {}
            Kind::Other => {
                part_of_report = false;
                if r.kills == 0 {
                    let t = msg.trim_start();
                    if let Some(cols) = &r.columns {
                        if t.starts_with('[') {
                            if let Some(row) = report::parse_task_row(msg, cols) {
                                if r.tasks.len() < MAX_TASK_ROWS {
                                    r.tasks.push(row);
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
            Kind::Kill(_) => unreachable!("handled above"),
        }
        if !reaped_held {
            r.raw.push(line);
        }
        let terminal = r.terminal.is_some();
        if r.kills == 0 {
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
        let stalled = (r.kills == 0 && r.quiet > STALL_LINES) || r.lines > MAX_REPORT_LINES;
        let tail_over = r.kills > 0 && r.quiet > TAIL_LINES;
        if stalled {
            r.cut = true;
        }
        if terminal || stalled || tail_over {
            self.close(out);
        }
    }

    fn kill(&mut self, k: Kill, line: &LogLine<'_>, out: &mut Vec<OomEvent>) {
        match &self.report {
            None => self.start(line),
            Some(r) if r.kills > 0 && !r.group => self.restart(line, out),
            // 5.3+ prints no selection line and kills the task its summary named: a kill of
            // another pid is not this report's.
            Some(r)
                if r.kills == 0
                    && !r.selected_by_line
                    && r.selected_pid.is_some_and(|p| p != k.pid) =>
            {
                self.restart(line, out)
            }
            Some(_) => {}
        }
        let Some(r) = self.report.as_mut() else {
            return;
        };
        r.lines += 1;
        r.raw.push_kill(line);
        r.quiet = 0;
        r.columns = None;
        r.in_meminfo = false;
        let first_kill = r.kills == 0;
        let mut e = event_of(r, Some(&k));
        if !first_kill {
            // A memory.oom.group kill: the chosen task's score is not this one's.
            e.score = None;
        }
        e.monotonic_s = line.monotonic_us.map(secs);
        e.time = line.wall_time.clone();
        // A kill line cut inside the comm is a truncated report too.
        e.partial = !r.header || r.cut || k.comm.is_none();
        r.kills += 1;
        self.held.push_back(e);
        if self.held.len() > MAX_HELD {
            out.extend(self.held.pop_front());
        }
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
