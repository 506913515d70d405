//! Late headers: syslog files can hold a report's lines out of order, its kill line before its
//! trigger line. The kills of a report without a trigger line wait here ([`Pending`]) while the
//! next report is read; if that one is their header (see [`Pending::takes`]) its facts and
//! lines join theirs: one event rather than two.

use super::{Held, Report, Terminal, MAX_RAW_LINES, REORDER_MONO_US, REORDER_WALL_S};
use crate::sources::kmsg::line::wall_seconds_of_day;

/// The events of a report without a trigger line, waiting while the next report is read: it
/// may be their own header, arriving late (see the module doc).
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) events: Vec<Held>,
    /// The pids the events name (victims, chosen tasks).
    pids: Vec<i64>,
    /// The times of the last kill line.
    mono: Option<u64>,
    wall: Option<String>,
    /// A trigger line joined them.
    pub(super) header: bool,
}

impl Pending {
    pub(super) fn new(events: Vec<Held>, r: &Report) -> Self {
        let pids = events
            .iter()
            .flat_map(|h| [h.event.victim_pid, h.event.selected_pid])
            .flatten()
            .collect();
        Pending {
            events,
            pids,
            mono: r.last_mono,
            wall: r.last_wall.clone(),
            header: false,
        }
    }

    /// Whether `r`, a report with no kill of its own, is these events' header arriving late.
    pub(super) fn takes(&self, r: &Report) -> bool {
        if r.outcomes > 0 || r.terminal == Some(Terminal::Panic) {
            return false;
        }
        // A report that names another chosen task is another report.
        if r.selected_pid.is_some_and(|p| !self.pids.contains(&p)) {
            return false;
        }
        if let (Some(kill), Some(first)) = (self.mono, r.first_mono) {
            return first <= kill && kill - first <= REORDER_MONO_US;
        }
        let seconds = |w: &Option<String>| w.as_deref().and_then(wall_seconds_of_day);
        let near = match (seconds(&self.wall), seconds(&r.first_wall)) {
            (Some(a), Some(b)) => {
                let d = a.abs_diff(b);
                d.min(86_400 - d) <= REORDER_WALL_S
            }
            (None, None) => true,
            _ => false,
        };
        let names = r.selected_pid.is_some() || r.tasks.iter().any(|t| self.pids.contains(&t.pid));
        near && names
    }

    /// Joins the facts and lines of `r` to the events.
    pub(super) fn merge(&mut self, r: &mut Report) {
        fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
            if slot.is_none() {
                slot.clone_from(value);
            }
        }
        self.header |= r.header;
        let mut raw = std::mem::take(&mut r.raw);
        for (i, h) in self.events.iter_mut().enumerate() {
            // Returned already, if the assembler is early: it goes out again, amended.
            h.amended = true;
            let e = &mut h.event;
            fill(&mut e.trigger_comm, &r.trigger_comm);
            fill(&mut e.trigger_pid, &r.trigger_pid);
            fill(&mut e.gfp_mask, &r.gfp_mask);
            fill(&mut e.gfp_flags, &r.gfp_flags);
            fill(&mut e.order, &r.order);
            fill(&mut e.trigger_oom_score_adj, &r.trigger_adj);
            fill(&mut e.constraint, &r.constraint);
            fill(&mut e.cpuset, &r.cpuset);
            fill(&mut e.global_oom, &r.global_oom);
            fill(&mut e.oom_memcg, &r.oom_memcg);
            fill(&mut e.task_memcg, &r.task_memcg);
            fill(&mut e.suppressed, &r.suppressed);
            if e.selected_pid.is_none() {
                e.selected_pid = r.selected_pid;
                e.selected_comm.clone_from(&r.selected_comm);
            }
            if e.score.is_none() && r.selected_by_line && r.selected_pid == e.victim_pid {
                e.score = r.score;
            }
            if e.mem_info.is_none() && !r.mem.is_empty() {
                e.mem_info = Some(r.mem.clone());
            }
            if e.tasks.is_empty() {
                e.tasks.clone_from(&r.tasks);
                e.tasks_dropped = (r.tasks_dropped > 0).then_some(r.tasks_dropped);
            }
            e.partial = !self.header || h.cut;
            if i == 0 {
                let room = MAX_RAW_LINES
                    .saturating_sub(e.raw.len())
                    .min(raw.lines.len());
                let over = (raw.lines.len() - room) as u64 + raw.dropped;
                e.raw.extend(raw.lines.drain(..room));
                if over > 0 {
                    e.raw_dropped = Some(e.raw_dropped.unwrap_or(0) + over);
                }
            }
        }
    }
}
