//! What one kernel message is, as far as OOM reports go ([`classify`]): a pure function over
//! the message text, in the order that keeps look-alike lines apart (a kill line before a
//! selection line, a table header before other bracketed lines).

use super::super::report::{self, Column, Kill, Select};

/// What one message is, as far as reports go.
pub(super) enum Kind<'a> {
    Trigger(report::Trigger),
    Banner(i64, &'a str),
    TaskIn(String, String),
    Group,
    MemcgUsage(Option<u64>, Option<u64>, Option<u64>),
    MemInfoStart,
    TableHeader(Vec<Column>),
    Summary(report::Summary),
    Select(Select),
    Kill(Kill),
    Skip(i64, Option<String>),
    Reaper(i64, Option<String>),
    Panic,
    NoKillable,
    Suppressed,
    Other,
}

pub(super) fn classify(msg: &str) -> Kind<'_> {
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
    if let Some((pid, comm)) = report::parse_reaper(msg) {
        return Kind::Reaper(pid, comm);
    }
    if let Some((pid, comm)) = report::parse_skip(msg) {
        return Kind::Skip(pid, comm);
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
