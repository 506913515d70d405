//! The lines of an OOM report, one parser each: a kernel message (prefix already stripped) in,
//! the facts it states out. Pure, allocation only for the strings they return.
//!
//! A report, as 5.x-6.x print it (`mm/oom_kill.c`: `dump_header`, `dump_tasks`,
//! `__oom_kill_process`), with what each line gives:
//!
//! ```text
//! stress-ng-vm invoked oom-killer: gfp_mask=0x440dc0(GFP_KERNEL_ACCOUNT|__GFP_COMP), order=0, oom_score_adj=1000   <- Trigger
//! CPU: 1 UID: 0 PID: 116 Comm: stress-ng-vm Not tainted 6.11.0 #15                                                 <- cpu_line (trigger pid)
//! Mem-Info:
//! active_anon:1999425 inactive_anon:0 isolated_anon:0                                                              <- meminfo tokens
//! ...
//! Free swap  = 0kB
//! 2097022 pages RAM
//! Tasks state (memory values in pages):
//! [  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name   <- table header
//! [    116]     0   116  2628942  1995298  1995157      141         0 16052224        0          1000 stress-ng-vm  <- TaskRow
//! oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=stress-ng-vm,pid=116,uid=0   <- Summary
//! Out of memory: Killed process 116 (stress-ng-vm) total-vm:10515768kB, anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB, UID:0 pgtables:15676kB oom_score_adj:1000   <- Kill
//! oom_reaper: reaped process 116 (stress-ng-vm), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB   <- reaper
//! ```
//!
//! Older kernels differ in every line; the forms handled are listed on each parser. A value
//! that could have been cut short by a truncated line is only taken with its unit after it
//! (`...kB`), so a truncated number is never reported as a smaller one.

use serde::Serialize;

/// `X invoked oom-killer: gfp_mask=0x201da(GFP_..), [nodemask=..,] order=0, oom_score_adj=0`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    /// `None` for the 2.6.1x form `oom-killer: gfp_mask=0x1d2` that names no task.
    pub comm: Option<String>,
    pub gfp_mask: Option<String>,
    pub gfp_flags: Option<String>,
    pub order: Option<i64>,
    /// The allocating task's adj: `oom_score_adj=` (2.6.36+), else `oom_adj=`/`oomkilladj=`.
    pub oom_score_adj: Option<i64>,
}

/// `Killed process PID (comm) total-vm:..kB, ...` in all its forms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kill {
    pub pid: i64,
    /// Absent when the line was cut before the comm closed.
    pub comm: Option<String>,
    pub uid: Option<i64>,
    pub total_vm_kb: Option<u64>,
    pub anon_rss_kb: Option<u64>,
    pub file_rss_kb: Option<u64>,
    pub shmem_rss_kb: Option<u64>,
    pub pgtables_kb: Option<u64>,
    pub oom_score_adj: Option<i64>,
    /// `Some(false)` after `Memory cgroup out of memory:`, `Some(true)` after `Out of memory:`.
    pub global_oom: Option<bool>,
}

/// `Out of memory: Kill process PID (comm) score N or sacrifice child`: the task the killer
/// chose, which is not necessarily the one killed (a child may be sacrificed instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    pub pid: i64,
    pub comm: Option<String>,
    pub score: Option<i64>,
    pub global_oom: Option<bool>,
}

/// `oom-kill:constraint=..,nodemask=..,cpuset=..,mems_allowed=..,{global_oom|oom_memcg=..},task_memcg=..,task=..,pid=..,uid=..` (4.19+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub constraint: Option<String>,
    pub cpuset: Option<String>,
    pub global_oom: Option<bool>,
    pub oom_memcg: Option<String>,
    pub task_memcg: Option<String>,
    pub task: Option<String>,
    pub pid: Option<i64>,
    pub uid: Option<i64>,
}

/// One row of the task table, mapped by the header's column names. Memory columns are in
/// pages except `pgtables_bytes`; columns a kernel did not print are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    pub pid: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tgid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_vm: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_anon: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_file: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_shmem: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgtables_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nr_ptes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nr_pmds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swapents: Option<u64>,
    /// 2.6.x's `oom_adj` column (-17..15).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_adj: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    pub name: String,
}

/// A task-table column, by its header name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Uid,
    Tgid,
    TotalVm,
    Rss,
    RssAnon,
    RssFile,
    RssShmem,
    PgtablesBytes,
    NrPtes,
    NrPmds,
    Swapents,
    OomAdj,
    OomScoreAdj,
    /// A numeric column Fleet does not know (`cpu` on 2.6.32, local patches): read and dropped.
    Other,
}

/// A signed decimal at the start of `s` and whether it ran to the end of `s`.
fn leading_int(s: &str) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let neg = b.first() == Some(&b'-');
    if neg {
        i = 1;
    }
    let start = i;
    let mut v: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(i64::from(b[i] - b'0'))?;
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((if neg { -v } else { v }, i))
}

/// The whole of `s` as a signed decimal.
fn int(s: &str) -> Option<i64> {
    match leading_int(s) {
        Some((v, n)) if n == s.len() => Some(v),
        _ => None,
    }
}

/// `NkB` (the whole token) as N: the unit proves the number was not cut short.
fn kb(s: &str) -> Option<u64> {
    let n = s.strip_suffix("kB").or_else(|| s.strip_suffix("KB"))?;
    if n.is_empty() || n.len() > 20 || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

fn lower_contains(hay: &str, needle: &str) -> bool {
    hay.len() >= needle.len()
        && hay
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The prefixes the kernel prints before `Kill process`, `Killed process` and `OOM victim`
/// (`%s: ` with the message `oom_kill_process` was given), compared without case.
const OOM_PREFIXES: [&str; 3] = [
    "Out of memory: ",
    "Memory cgroup out of memory: ",
    "Out of memory (oom_kill_allocating_task): ",
];

/// What comes before `Kill process`/`Killed process` must be nothing or one of the kernel's
/// [`OOM_PREFIXES`] exactly: a line of another program that quotes a kill (node-problem-detector's
/// `Message:Memory cgroup out of memory: Killed process ..`, a Kubernetes event) is not the OOM
/// killer. Returns whether the prefix says a global OOM.
fn oom_prefix(prefix: &str) -> Option<Option<bool>> {
    if prefix.is_empty() {
        return Some(None);
    }
    OOM_PREFIXES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(prefix))
        .map(|p| Some(!p.starts_with("Memory cgroup")))
}

/// Parses a trigger line.
pub fn parse_trigger(msg: &str) -> Option<Trigger> {
    const INVOKED: &str = " invoked oom-killer: ";
    let (comm, rest) = if let Some(i) = msg.find(INVOKED) {
        (Some(msg[..i].to_string()), &msg[i + INVOKED.len()..])
    } else if let Some(rest) = msg.strip_prefix("oom-killer: ") {
        if !rest.starts_with("gfp_mask=") {
            return None;
        }
        (None, rest)
    } else {
        return None;
    };
    let mut t = Trigger {
        comm,
        ..Trigger::default()
    };
    let mut adj = None;
    for field in rest.split(", ") {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key.trim() {
            "gfp_mask" => {
                let (mask, flags) = match value.split_once('(') {
                    Some((m, f)) => (m, f.strip_suffix(')')),
                    None => (value.trim_end(), None),
                };
                if mask.len() > 2
                    && mask.starts_with("0x")
                    && mask[2..].bytes().all(|c| c.is_ascii_hexdigit())
                {
                    t.gfp_mask = Some(mask.to_string());
                    t.gfp_flags = flags.filter(|f| !f.is_empty()).map(str::to_string);
                }
            }
            "order" => t.order = leading_int(value).map(|(v, _)| v),
            "oom_score_adj" => t.oom_score_adj = leading_int(value).map(|(v, _)| v),
            "oom_adj" | "oomkilladj" => adj = leading_int(value).map(|(v, _)| v),
            _ => {}
        }
    }
    if t.oom_score_adj.is_none() {
        t.oom_score_adj = adj;
    }
    Some(t)
}

/// The dump_stack banner after the trigger: `CPU: 1 [UID: 0 ]PID: 116 Comm: x ...` (3.x+) or
/// `Pid: 3794, comm: java Not tainted ...` (2.6.x). Returns the pid and the text from the comm
/// on.
pub fn parse_cpu_line(msg: &str) -> Option<(i64, &str)> {
    if let Some(rest) = msg.strip_prefix("CPU: ") {
        let i = rest.find("PID: ")?;
        let rest = &rest[i + 5..];
        let (pid, n) = leading_int(rest)?;
        let comm = rest[n..].strip_prefix(" Comm: ")?;
        return Some((pid, comm));
    }
    if let Some(rest) = msg.strip_prefix("Pid: ") {
        let (pid, n) = leading_int(rest)?;
        let comm = rest[n..].strip_prefix(", comm: ")?;
        return Some((pid, comm));
    }
    None
}

/// Whether the banner text (from [`parse_cpu_line`]) names `comm`.
pub fn banner_names(banner: &str, comm: &str) -> bool {
    banner == comm
        || banner
            .strip_prefix(comm)
            .is_some_and(|r| r.starts_with(' '))
}

/// The comm between `(` and the kernel's text after it; `rest` starts after the `(`.
fn comm_until(rest: &str, ends: &[&str]) -> Option<(String, usize)> {
    for end in ends {
        if let Some(i) = rest.rfind(end) {
            return Some((rest[..i].to_string(), i + 1));
        }
    }
    None
}

/// Parses a kill line. Forms:
/// - `Killed process 116 (x) total-vm:..kB, anon-rss:..kB, file-rss:..kB, shmem-rss:..kB, UID:0 pgtables:..kB oom_score_adj:N`
///   (5.x-6.x, after `Out of memory: ` or `Memory cgroup out of memory: `);
/// - `Killed process 123 (x) total-vm:..kB, anon-rss:..kB, file-rss:..kB[, shmem-rss:..kB]` (3.x-4.x);
/// - `Killed process 42453 (x), UID 0, total-vm:..kB, ...` (RHEL 7);
/// - `Killed process 21578, UID 503, (x) total-vm:..kB, ...` (RHEL 6);
/// - `Killed process 1235 (x) vsz:..kB, anon-rss:..kB, file-rss:..kB` (2.6.3x);
/// - `Killed process 5281 (x)` and `Out of Memory: Killed process 6672 (x).` (2.6.x).
pub fn parse_kill(msg: &str) -> Option<Kill> {
    let at = msg.find("illed process ")?;
    if at == 0 || !matches!(msg.as_bytes()[at - 1], b'K' | b'k') {
        return None;
    }
    let global_oom = oom_prefix(&msg[..at - 1])?;
    let rest = &msg[at + "illed process ".len()..];
    let (pid, n) = leading_int(rest)?;
    if pid <= 0 {
        return None;
    }
    let mut kill = Kill {
        pid,
        global_oom,
        ..Kill::default()
    };
    let mut rest = &rest[n..];
    if let Some(r) = rest.strip_prefix(", UID ") {
        // RHEL 6: "Killed process 21578, UID 503, (redis-server) ..."
        let (uid, n) = leading_int(r)?;
        kill.uid = Some(uid);
        rest = r[n..].strip_prefix(", ").unwrap_or(&r[n..]);
    } else {
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    let Some(after_paren) = rest.strip_prefix('(') else {
        // Nothing after the pid ("Killed process 5281" cut short): the pid alone is certain
        // only when it ended the line or was followed by punctuation.
        return (rest.is_empty() || rest.starts_with([',', '.', ' '])).then_some(kill);
    };
    let tail = if let Some((comm, skip)) = comm_until(
        after_paren,
        &[") total-vm:", "), UID ", ") vsz:", "), total-vm:"],
    ) {
        kill.comm = Some(comm);
        &after_paren[skip..]
    } else if let Some(c) = after_paren
        .strip_suffix(").")
        .or_else(|| after_paren.strip_suffix(')'))
    {
        kill.comm = Some(c.to_string());
        ""
    } else {
        // Cut inside the comm.
        return Some(kill);
    };
    let mut tokens = tail.split([' ', ',']).filter(|t| !t.is_empty()).peekable();
    while let Some(tok) = tokens.next() {
        if tok == "UID" {
            if let Some(v) = tokens.peek().and_then(|t| int(t)) {
                kill.uid = Some(v);
                tokens.next();
            }
            continue;
        }
        let Some((key, value)) = tok.split_once(':') else {
            continue;
        };
        match key {
            "total-vm" | "vsz" => kill.total_vm_kb = kb(value),
            "anon-rss" => kill.anon_rss_kb = kb(value),
            "file-rss" => kill.file_rss_kb = kb(value),
            "shmem-rss" => kill.shmem_rss_kb = kb(value),
            "pgtables" => kill.pgtables_kb = kb(value),
            "UID" | "uid" => kill.uid = int(value),
            "oom_score_adj" => kill.oom_score_adj = int(value),
            _ => {}
        }
    }
    Some(kill)
}

/// Parses a selection line: `[Out of memory|Memory cgroup out of memory]: Kill process PID
/// (comm) score N or sacrifice child` (2.6.36-5.0; 5.1 dropped it), `... kill process PID (comm) score N or a
/// child` (2.6.2x-2.6.35).
pub fn parse_select(msg: &str) -> Option<Select> {
    let at = msg.find("ill process ")?;
    if at == 0 || !matches!(msg.as_bytes()[at - 1], b'K' | b'k') {
        return None;
    }
    let global_oom = oom_prefix(&msg[..at - 1])?;
    let rest = &msg[at + "ill process ".len()..];
    let (pid, n) = leading_int(rest)?;
    let rest = rest[n..].strip_prefix(" (")?;
    let (comm, score) = match rest.rfind(") score ") {
        Some(i) => {
            let s = &rest[i + ") score ".len()..];
            let score = leading_int(s).and_then(|(v, n)| s[n..].starts_with(' ').then_some(v));
            (Some(rest[..i].to_string()), score)
        }
        None => (None, None),
    };
    Some(Select {
        pid,
        comm,
        score,
        global_oom,
    })
}

/// Parses the summary line, from the right, since cgroup paths and comms may hold commas.
pub fn parse_summary(msg: &str) -> Option<Summary> {
    let body = msg.strip_prefix("oom-kill:")?;
    let mut s = Summary::default();
    let mut rest = body;
    if let Some(i) = rest.rfind(",uid=") {
        s.uid = int(&rest[i + 5..]);
        rest = &rest[..i];
    }
    if let Some(i) = rest.rfind(",pid=") {
        s.pid = int(&rest[i + 5..]);
        rest = &rest[..i];
    }
    if let Some(i) = rest.rfind(",task=") {
        s.task = Some(rest[i + 6..].to_string());
        rest = &rest[..i];
    }
    if let Some(i) = rest.find(",task_memcg=") {
        s.task_memcg = Some(rest[i + 12..].to_string());
        rest = &rest[..i];
    }
    if let Some(i) = rest.find(",oom_memcg=") {
        s.oom_memcg = Some(rest[i + 11..].to_string()).filter(|m| !m.is_empty());
        s.global_oom = Some(false);
        rest = &rest[..i];
    }
    if rest.ends_with(",global_oom") || rest.contains(",global_oom,") {
        s.global_oom = Some(true);
    }
    if let Some(c) = rest.strip_prefix("constraint=") {
        let c = c.split(',').next().unwrap_or("");
        if !c.is_empty() {
            s.constraint = Some(c.to_string());
            if c == "CONSTRAINT_MEMCG" && s.global_oom.is_none() {
                s.global_oom = Some(false);
            }
        }
    }
    if let Some(i) = rest.find(",cpuset=") {
        let v = &rest[i + 8..];
        let v = v.find(",mems_allowed=").map_or(v, |j| &v[..j]);
        s.cpuset = Some(v.to_string());
    }
    Some(s)
}

/// `Task in /x killed as a result of limit of /y` (memcg OOM, 2.6.x-4.x): (task memcg, OOM memcg).
pub fn parse_task_in(msg: &str) -> Option<(String, String)> {
    let rest = msg.strip_prefix("Task in ")?;
    let (task, oom) = rest.split_once(" killed as a result of limit of ")?;
    Some((task.to_string(), oom.trim_end().to_string()))
}

/// `Tasks in /x are going to be killed due to memory.oom.group set` (4.19+): the kills that
/// follow belong to the same report.
pub fn is_group_kill(msg: &str) -> bool {
    msg.starts_with("Tasks in ") && msg.contains("going to be killed due to memory.oom.group")
}

/// `memory: usage 204800kB, limit 204800kB, failcnt 4563` (memcg OOM): (usage, limit, failcnt).
pub fn parse_memcg_usage(msg: &str) -> Option<(Option<u64>, Option<u64>, Option<u64>)> {
    let rest = msg.strip_prefix("memory: usage ")?;
    let mut it = rest.split(", ");
    let usage = it.next().and_then(kb);
    let limit = it
        .next()
        .and_then(|s| s.strip_prefix("limit "))
        .and_then(kb);
    let failcnt = it
        .next()
        .and_then(|s| s.strip_prefix("failcnt "))
        .and_then(|s| s.trim_end().parse().ok());
    Some((usage, limit, failcnt))
}

/// The column names of a task-table header (`[ pid ]   uid  tgid ... name`), without the pid
/// and the final `name`.
pub fn parse_table_header(msg: &str) -> Option<Vec<Column>> {
    let t = msg.trim_start();
    let rest = t.strip_prefix('[')?;
    let close = rest.find(']')?;
    if rest[..close].trim() != "pid" {
        return None;
    }
    let names: Vec<&str> = rest[close + 1..].split_whitespace().collect();
    if names.last() != Some(&"name") || !names.contains(&"uid") {
        return None;
    }
    Some(
        names[..names.len() - 1]
            .iter()
            .map(|n| match *n {
                "uid" => Column::Uid,
                "tgid" => Column::Tgid,
                "total_vm" => Column::TotalVm,
                "rss" => Column::Rss,
                "rss_anon" => Column::RssAnon,
                "rss_file" => Column::RssFile,
                "rss_shmem" => Column::RssShmem,
                "pgtables_bytes" => Column::PgtablesBytes,
                "nr_ptes" => Column::NrPtes,
                "nr_pmds" => Column::NrPmds,
                "swapents" => Column::Swapents,
                "oom_adj" => Column::OomAdj,
                "oom_score_adj" => Column::OomScoreAdj,
                _ => Column::Other,
            })
            .collect(),
    )
}

/// `[  pid]` at the start of a row: the pid and the text after the bracket.
pub fn row_pid(msg: &str) -> Option<(i64, &str)> {
    let t = msg.trim_start();
    let rest = t.strip_prefix('[')?;
    let close = rest.find(']')?;
    let pid = int(rest[..close].trim_start())?;
    Some((pid, &rest[close + 1..]))
}

/// One task-table row under `columns`. `None` when a column is missing or not a number (a
/// row cut short, or a line that only looks like a row).
pub fn parse_task_row(msg: &str, columns: &[Column]) -> Option<TaskRow> {
    let (pid, mut rest) = row_pid(msg)?;
    let mut row = TaskRow {
        pid,
        ..TaskRow::default()
    };
    for col in columns {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ')?;
        let v = int(&t[..end])?;
        rest = &t[end..];
        let u = u64::try_from(v).ok();
        match col {
            Column::Uid => row.uid = Some(v),
            Column::Tgid => row.tgid = Some(v),
            Column::TotalVm => row.total_vm = Some(u?),
            Column::Rss => row.rss = Some(u?),
            Column::RssAnon => row.rss_anon = Some(u?),
            Column::RssFile => row.rss_file = Some(u?),
            Column::RssShmem => row.rss_shmem = Some(u?),
            Column::PgtablesBytes => row.pgtables_bytes = Some(u?),
            Column::NrPtes => row.nr_ptes = Some(u?),
            Column::NrPmds => row.nr_pmds = Some(u?),
            Column::Swapents => row.swapents = Some(u?),
            Column::OomAdj => row.oom_adj = Some(v),
            Column::OomScoreAdj => row.oom_score_adj = Some(v),
            Column::Other => {}
        }
    }
    // The kernel prints one space before the comm, which may itself hold spaces.
    row.name = rest.strip_prefix(' ')?.to_string();
    Some(row)
}

/// `oom_reaper: reaped process 116 (x), now anon-rss:0kB, ...` (4.6+): the pid and comm.
pub fn parse_reaper(msg: &str) -> Option<(i64, Option<String>)> {
    let rest = msg.strip_prefix("oom_reaper: reaped process ")?;
    let (pid, n) = leading_int(rest)?;
    let rest = rest[n..].strip_prefix(' ')?;
    let comm = rest
        .strip_prefix('(')
        .and_then(|r| r.rfind("), now ").map(|i| r[..i].to_string()));
    Some((pid, comm))
}

/// `Memory cgroup out of memory: OOM victim 3804877 (stress) is already exiting. Skip killing
/// the task` (5.x+): the victim chosen had already lost its memory, so nothing was killed.
pub fn parse_skip(msg: &str) -> Option<(i64, Option<String>)> {
    const AT: &str = "OOM victim ";
    let at = msg.find(AT)?;
    oom_prefix(&msg[..at])?;
    let rest = &msg[at + AT.len()..];
    let (pid, n) = leading_int(rest)?;
    let rest = rest[n..].strip_prefix(" (")?;
    let comm = rest
        .rfind(") is already exiting")
        .map(|i| rest[..i].to_string());
    rest.contains(" is already exiting").then_some((pid, comm))
}

/// `Kernel panic - not syncing: Out of memory: ...` (panic_on_oom), `... Out of memory and no
/// killable processes...`, `... System is deadlocked on memory`.
pub fn is_oom_panic(msg: &str) -> bool {
    msg.strip_prefix("Kernel panic - not syncing: ")
        .is_some_and(|r| {
            lower_contains(r, "out of memory") || r.starts_with("System is deadlocked on memory")
        })
}

/// `Out of memory and no killable processes...`: the report ends without a kill.
pub fn is_no_killable(msg: &str) -> bool {
    msg.starts_with("Out of memory and no killable processes")
}

/// `oom_kill_process: 9 callbacks suppressed`: the OOM killer's rate limit dropped reports.
pub fn is_oom_suppressed(msg: &str) -> bool {
    msg.ends_with(" callbacks suppressed")
        && (msg.starts_with("oom")
            || msg.starts_with("out_of_memory")
            || msg.starts_with("dump_header"))
}

/// The Mem-Info summary and swap/RAM lines, as far as the parser reads them. Counts are in
/// pages of the reporting host (4 KiB on x86_64, larger on some arm64/ppc64 kernels).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_anon_pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_anon_pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_file_pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_file_pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shmem_pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slab_reclaimable_pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slab_unreclaimable_pages: Option<u64>,
    /// `N pages RAM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ram_pages: Option<u64>,
    /// `N pages reserved`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_pages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_swap_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_swap_kb: Option<u64>,
    /// memcg OOM: `memory: usage NkB, limit NkB, failcnt N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg_usage_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg_limit_kb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg_failcnt: Option<u64>,
}

impl MemInfo {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads `key:N` tokens of the Mem-Info summary (`active_anon:46557 inactive_anon:..`),
    /// split by spaces, kmsg's `\x0a` or rsyslog's `#012`; the first value of a key wins (the
    /// per-node lines after it say `free:1964kB` and are not plain numbers).
    pub fn read_summary(&mut self, msg: &str) {
        for word in msg.split_whitespace() {
            for tok in word.split("\\x0a").flat_map(|w| w.split("#012")) {
                let Some((key, value)) = tok.split_once(':') else {
                    continue;
                };
                if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
                    continue;
                }
                let slot = match key {
                    "free" => &mut self.free_pages,
                    "active_anon" => &mut self.active_anon_pages,
                    "inactive_anon" => &mut self.inactive_anon_pages,
                    "active_file" => &mut self.active_file_pages,
                    "inactive_file" => &mut self.inactive_file_pages,
                    "shmem" => &mut self.shmem_pages,
                    "slab_reclaimable" => &mut self.slab_reclaimable_pages,
                    "slab_unreclaimable" => &mut self.slab_unreclaimable_pages,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = value.parse().ok();
                }
            }
        }
    }

    /// The lines after the zones: `Free swap  = 0kB`, `Total swap = N kB`, `N pages RAM`,
    /// `N pages reserved`. Returns whether the line was one of them.
    pub fn read_totals(&mut self, msg: &str) -> bool {
        let t = msg.trim();
        if let Some(r) = t.strip_prefix("Free swap") {
            if let Some(v) = r.trim_start().strip_prefix('=').map(str::trim).and_then(kb) {
                self.free_swap_kb.get_or_insert(v);
            }
            return true;
        }
        if let Some(r) = t.strip_prefix("Total swap") {
            if let Some(v) = r.trim_start().strip_prefix('=').map(str::trim).and_then(kb) {
                self.total_swap_kb.get_or_insert(v);
            }
            return true;
        }
        if let Some(n) = t.strip_suffix(" pages RAM") {
            if let Ok(v) = n.parse() {
                self.ram_pages.get_or_insert(v);
            }
            return true;
        }
        if let Some(n) = t.strip_suffix(" pages reserved") {
            if let Ok(v) = n.parse() {
                self.reserved_pages.get_or_insert(v);
            }
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers() {
        let t = parse_trigger(
            "stress-ng-vm invoked oom-killer: gfp_mask=0x440dc0(GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=1000",
        )
        .unwrap();
        assert_eq!(t.comm.as_deref(), Some("stress-ng-vm"));
        assert_eq!(t.gfp_mask.as_deref(), Some("0x440dc0"));
        assert_eq!(
            t.gfp_flags.as_deref(),
            Some("GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO")
        );
        assert_eq!((t.order, t.oom_score_adj), (Some(0), Some(1000)));
        let t = parse_trigger("CPU 0/KVM invoked oom-killer: gfp_mask=0x15000c0(GFP_KERNEL_ACCOUNT), nodemask=(null), order=0, oom_score_adj=0").unwrap();
        assert_eq!(t.comm.as_deref(), Some("CPU 0/KVM"));
        let t =
            parse_trigger("php5-cgi invoked oom-killer: gfp_mask=0x201da, order=0, oomkilladj=-17")
                .unwrap();
        assert_eq!(t.oom_score_adj, Some(-17));
        let t = parse_trigger("oom-killer: gfp_mask=0x1d2").unwrap();
        assert_eq!(
            (t.comm, t.gfp_mask.as_deref(), t.order),
            (None, Some("0x1d2"), None)
        );
        // Cut by a terminal: the cut key is not taken.
        let t =
            parse_trigger("connection invoked oom-killer: gfp_mask=0x201da, order=0, oom_score")
                .unwrap();
        assert_eq!((t.order, t.oom_score_adj), (Some(0), None));
        assert!(parse_trigger("oom-killer: something else").is_none());
    }

    #[test]
    fn banners() {
        assert_eq!(
            parse_cpu_line("CPU: 1 UID: 0 PID: 116 Comm: stress-ng-vm Not tainted"),
            Some((116, "stress-ng-vm Not tainted"))
        );
        assert_eq!(
            parse_cpu_line("Pid: 3794, comm: java Not tainted 2.6.32"),
            Some((3794, "java Not tainted 2.6.32"))
        );
        assert!(banner_names("in:imjournal Kdump: loaded", "in:imjournal"));
        assert!(banner_names("CPU 0/KVM Not tainted", "CPU 0/KVM"));
        assert!(!banner_names("java2 Not", "java"));
    }

    #[test]
    fn kill_lines() {
        let k = parse_kill("Memory cgroup out of memory: Killed process 140339 (python3) total-vm:120832kB, anon-rss:15596kB, file-rss:8924kB, shmem-rss:0kB, UID:0 pgtables:276kB oom_score_adj:-997").unwrap();
        assert_eq!(
            (k.pid, k.comm.as_deref(), k.uid),
            (140_339, Some("python3"), Some(0))
        );
        assert_eq!(
            (k.total_vm_kb, k.anon_rss_kb, k.file_rss_kb, k.shmem_rss_kb),
            (Some(120_832), Some(15_596), Some(8_924), Some(0))
        );
        assert_eq!(
            (k.pgtables_kb, k.oom_score_adj, k.global_oom),
            (Some(276), Some(-997), Some(false))
        );
        let k = parse_kill("Killed process 21578, UID 503, (redis-server) total-vm:9100804kB, anon-rss:9066596kB, file-rss:64kB").unwrap();
        assert_eq!(
            (k.pid, k.uid, k.comm.as_deref(), k.file_rss_kb),
            (21_578, Some(503), Some("redis-server"), Some(64))
        );
        let k = parse_kill("Killed process 42453 (memcg_test_1), UID 0, total-vm:7296kB, anon-rss:96kB, file-rss:164kB, shmem-rss:0kB").unwrap();
        assert_eq!(
            (k.comm.as_deref(), k.uid, k.total_vm_kb),
            (Some("memcg_test_1"), Some(0), Some(7296))
        );
        let k = parse_kill("Out of Memory: Killed process 6672 (RNAsubopt).").unwrap();
        assert_eq!(
            (k.pid, k.comm.as_deref(), k.global_oom),
            (6672, Some("RNAsubopt"), Some(true))
        );
        let k =
            parse_kill("Killed process 1235 (a) b) vsz:100kB, anon-rss:5kB, file-rss:1kB").unwrap();
        assert_eq!(
            (k.comm.as_deref(), k.total_vm_kb),
            (Some("a) b"), Some(100))
        );
        // A comm that imitates the fields does not move them.
        let k =
            parse_kill("Killed process 5 (x) total-vm:1kB) total-vm:100kB, anon-rss:2kB").unwrap();
        assert_eq!(
            (k.comm.as_deref(), k.total_vm_kb),
            (Some("x) total-vm:1kB"), Some(100))
        );
        // Cut lines: no number without its unit, no comm without its parenthesis.
        let k = parse_kill("Killed process 7788 (bash) total-vm:71694").unwrap();
        assert_eq!((k.comm.as_deref(), k.total_vm_kb), (Some("bash"), None));
        let k = parse_kill("Memory cgroup out of memory: Killed process 7788 (ba").unwrap();
        assert_eq!((k.pid, k.comm), (7788, None));
        assert!(parse_kill("Memory cgroup out of memory: Killed process 77")
            .is_some_and(|k| k.pid == 77));
        assert!(parse_kill("systemd-oomd: Killed process 5 (x)").is_none());
        // Only the kernel's own prefixes: a program quoting a kill is not one.
        assert!(parse_kill(
            "Message:Memory cgroup out of memory: Killed process 5 (x) total-vm:1kB"
        )
        .is_none());
        assert!(parse_kill("\"message\": \"Out of memory: Killed process 5 (x)").is_none());
        assert!(
            parse_kill("Out of memory (oom_kill_allocating_task): Killed process 5 (x)").is_some()
        );
        assert!(parse_kill("Killed process abc").is_none());
    }

    #[test]
    fn selections() {
        let s =
            parse_select("Out of memory: Kill process 30705 (mysqld) score 43 or sacrifice child")
                .unwrap();
        assert_eq!(
            (s.pid, s.comm.as_deref(), s.score, s.global_oom),
            (30_705, Some("mysqld"), Some(43), Some(true))
        );
        let s = parse_select("Out of memory: kill process 1269 (apache2) score 335419 or a child")
            .unwrap();
        assert_eq!(s.score, Some(335_419));
        let s = parse_select("Memory cgroup out of memory: Kill process 42453 (memcg_test_1) score 0 or sacrifice child").unwrap();
        assert_eq!(s.global_oom, Some(false));
        assert!(parse_select("Killed process 5 (x)").is_none());
        assert!(parse_select("Warning  PodOOMKilling  2m    kernel-monitor, <node>  Memory cgroup out of memory: Kill process 25169 (hyperkube) score 2109 or sacrifice child").is_none());
    }

    #[test]
    fn summaries() {
        let s = parse_summary("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=a,b.scope,mems_allowed=0,oom_memcg=/k,8s,task_memcg=/k,8s/c,task=x,y,pid=7788,uid=0").unwrap();
        assert_eq!(s.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
        assert_eq!(s.cpuset.as_deref(), Some("a,b.scope"));
        assert_eq!(s.oom_memcg.as_deref(), Some("/k,8s"));
        assert_eq!(s.task_memcg.as_deref(), Some("/k,8s/c"));
        assert_eq!(
            (s.task.as_deref(), s.pid, s.uid, s.global_oom),
            (Some("x,y"), Some(7788), Some(0), Some(false))
        );
        let s = parse_summary("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=a,pid=1,uid=0").unwrap();
        assert_eq!(
            (s.global_oom, s.task_memcg.as_deref()),
            (Some(true), Some("/"))
        );
    }

    #[test]
    fn tables() {
        let cols = parse_table_header("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name").unwrap();
        let r = parse_task_row("[    116]     0   116  2628942  1995298  1995157      141         0 16052224        0          1000 stress-ng-vm", &cols).unwrap();
        assert_eq!(
            (r.pid, r.rss_anon, r.pgtables_bytes, r.oom_score_adj),
            (116, Some(1_995_157), Some(16_052_224), Some(1000))
        );
        assert_eq!(r.name, "stress-ng-vm");
        let cols = parse_table_header(
            "[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name",
        )
        .unwrap();
        let r = parse_task_row(
            "[  549]     0   549     2662      118   1     -17         -1000 udevd",
            &cols,
        )
        .unwrap();
        assert_eq!(
            (r.oom_adj, r.oom_score_adj, r.name.as_str()),
            (Some(-17), Some(-1000), "udevd")
        );
        let r = parse_task_row(
            "[  549]     0   549     2662      118   1     -17         -1000 Web Content",
            &cols,
        )
        .unwrap();
        assert_eq!(r.name, "Web Content");
        assert!(parse_task_row("[  549]     0   549     2662", &cols).is_none());
        assert!(parse_table_header("[  pid  ] something").is_none());
    }

    #[test]
    fn meminfo() {
        let mut m = MemInfo::default();
        m.read_summary("active_anon:33632 inactive_anon:1327714 isolated_anon:0#012 active_file:43 free:89421#012 shmem:5");
        m.read_summary("Node 0 DMA free:1964kB min:88kB");
        assert_eq!(
            (
                m.active_anon_pages,
                m.active_file_pages,
                m.free_pages,
                m.shmem_pages
            ),
            (Some(33_632), Some(43), Some(89_421), Some(5))
        );
        assert!(m.read_totals("Free swap  = 0kB"));
        assert!(m.read_totals("Total swap = 1023996kB"));
        assert!(m.read_totals("130972 pages RAM"));
        assert_eq!(
            (m.free_swap_kb, m.total_swap_kb, m.ram_pages),
            (Some(0), Some(1_023_996), Some(130_972))
        );
        assert_eq!(
            parse_memcg_usage("memory: usage 204800kB, limit 204800kB, failcnt 4563"),
            Some((Some(204_800), Some(204_800), Some(4563)))
        );
    }

    #[test]
    fn others() {
        assert_eq!(
            parse_reaper("oom_reaper: reaped process 13135 (a.out), now anon-rss:0kB"),
            Some((13_135, Some("a.out".into())))
        );
        assert_eq!(
            parse_reaper("oom_reaper: reaped process 7 (a), now b), now anon-rss:0kB"),
            Some((7, Some("a), now b".into())))
        );
        assert_eq!(
            parse_skip("Memory cgroup out of memory: OOM victim 3804877 (stress) is already exiting. Skip killing the task"),
            Some((3_804_877, Some("stress".into())))
        );
        assert!(
            parse_skip("app: OOM victim 3 (x) is already exiting. Skip killing the task").is_none()
        );
        assert!(is_oom_panic(
            "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled"
        ));
        assert!(is_oom_panic(
            "Kernel panic - not syncing: System is deadlocked on memory"
        ));
        assert!(!is_oom_panic(
            "Kernel panic - not syncing: Attempted to kill init!"
        ));
        assert!(is_oom_suppressed(
            "oom_kill_process: 9 callbacks suppressed"
        ));
        assert!(!is_oom_suppressed("warn_alloc: 3 callbacks suppressed"));
        assert_eq!(
            parse_task_in("Task in /1/2 killed as a result of limit of /1"),
            Some(("/1/2".into(), "/1".into()))
        );
        assert!(is_group_kill(
            "Tasks in /a are going to be killed due to memory.oom.group set"
        ));
    }
}
