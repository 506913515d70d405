//! The event the OOM parser produces: [`OomEvent`], one JSON object of `fleet-agent parse-kmsg`,
//! and its [`EventKind`].

use fleet_proto::v1::OomKind;
use std::sync::Arc;

use serde::Serialize;

use super::report::{MemInfo, TaskRow};

/// What an event counts as. Only kills count in `fleetctl oom` totals and `oom_kill_burst`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A process was killed: a kill line (`Killed process N`), or a selection line
    /// (`Kill process N (x) score S or sacrifice child`, 2.6.24-5.0) whose kill line the log
    /// does not hold, then `partial`.
    #[default]
    Kill,
    /// The report ends in a kernel panic (`vm.panic_on_oom`, or no killable process in a global
    /// OOM): nothing was killed, the host went down.
    Panic,
    /// An OOM invocation that killed nothing: the chosen victim was already exiting (`OOM victim
    /// N (x) is already exiting. Skip killing the task`; 2.6.x's report without a kill line
    /// while the last victim exits), a memory cgroup with nothing left to kill (`Out of memory
    /// and no killable processes...`), an `oom_reaper` line without a kill (the kernel took an
    /// exiting task as its victim and printed nothing else), or a report that stops before any
    /// kill (then `partial`).
    NoKill,
}

impl EventKind {
    /// The word `parse-kmsg` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::Panic => "panic",
            Self::NoKill => "no_kill",
        }
    }

    /// The wire form, `OomEvent.kind`.
    pub fn to_proto(self) -> OomKind {
        match self {
            Self::Kill => OomKind::Kill,
            Self::Panic => OomKind::Panic,
            Self::NoKill => OomKind::NoKill,
        }
    }
}

/// A report's task table. Shared, not copied, by the events of one report: a `memory.oom.group`
/// kill of N processes makes N events of the same report, and a table of 10,000 rows copied into
/// each held 2.5 MB per kill (686 MiB during a 10,000-kill burst).
pub type TaskTable = Arc<Vec<TaskRow>>;

fn no_rows(t: &TaskTable) -> bool {
    t.is_empty()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One OOM kill, or one OOM invocation that killed nothing, with the keys
/// `fleet-agent parse-kmsg` prints. A key is absent when the report does not say it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OomEvent {
    /// What the event counts as; only [`EventKind::Kill`] is a kill.
    pub kind: EventKind,
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
    /// The task the killer chose (selection line, or the summary's `task=`/`pid=`); for a
    /// `no_kill` event the task it would have killed (`OOM victim N (x) is already exiting`, the
    /// pid of an `oom_reaper` line without a kill).
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
    #[serde(skip_serializing_if = "no_rows")]
    pub tasks: TaskTable,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_dropped: Option<u64>,
    /// The kernel messages of the event, prefixes stripped, in order.
    pub raw: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_dropped: Option<u64>,
    /// This event replaces the one of the same `kmsg_seq` returned before (an early assembler's
    /// amendment, see [`OomAssembler::early`](super::OomAssembler::early)). Not part of the
    /// report, so not printed.
    #[serde(skip)]
    pub amends: bool,
}
