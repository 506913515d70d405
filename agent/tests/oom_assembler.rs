//! How the OOM assembler streams and bounds: when events come out, the limits, and the
//! boundaries between reports that no fixture shows.

use fleet_agent::sources::kmsg::assemble::{MAX_RAW_LINES, MAX_TASK_ROWS, STALL_LINES, TAIL_LINES};
use fleet_agent::sources::kmsg::{
    parse_kmsg_record, parse_text, split_line, EventKind, InputFormat, LogLine, OomAssembler,
    OomEvent,
};

const TRIGGER: &str =
    "a.out invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0";
const BANNER: &str = "CPU: 0 PID: 42 Comm: a.out Not tainted 6.1.0 #1";
const HEADER: &str =
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name";
const SUMMARY: &str =
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=a.out,pid=42,uid=0";
const KILL: &str = "Out of memory: Killed process 42 (a.out) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:12kB oom_score_adj:0";
const REAPER: &str =
    "oom_reaper: reaped process 42 (a.out), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB";

fn row(pid: usize) -> String {
    format!("[{pid:7}]     0 {pid:5}     1000      900    65536        0             0 task{pid}")
}

fn push_all(asm: &mut OomAssembler, lines: &[String]) -> Vec<OomEvent> {
    let mut out = Vec::new();
    for l in lines {
        out.extend(asm.push(LogLine::bare(l)));
    }
    out
}

fn report(rows: usize) -> Vec<String> {
    let mut v = vec![TRIGGER.to_string(), BANNER.to_string(), HEADER.to_string()];
    v.extend((1..=rows).map(row));
    v.push(SUMMARY.to_string());
    v.push(KILL.to_string());
    v
}

#[test]
fn a_kill_comes_out_after_its_tail_or_at_finish() {
    let mut asm = OomAssembler::new();
    assert!(
        push_all(&mut asm, &report(3)).is_empty(),
        "held for its reaper line"
    );
    let noise: Vec<String> = (0..TAIL_LINES)
        .map(|i| format!("usb 1-1: noise {i}"))
        .collect();
    assert!(push_all(&mut asm, &noise).is_empty());
    let out = asm.push(LogLine::bare("usb 1-1: one more"));
    assert_eq!(out.len(), 1, "the tail window closed the report");
    assert_eq!(out[0].victim_pid, Some(42));
    assert_eq!(out[0].trigger_pid, Some(42));
    assert_eq!(out[0].tasks.len(), 3);
    assert!(!out[0].partial);
    assert!(
        !out[0].raw.iter().any(|l| l.contains("noise")),
        "trailing noise is not the kill's"
    );

    // finish() ends a report at once, and the assembler goes on afterwards.
    push_all(&mut asm, &report(1));
    assert_eq!(asm.finish().len(), 1);
    assert!(asm.finish().is_empty());
    push_all(&mut asm, &report(1));
    assert_eq!(asm.finish().len(), 1);
}

#[test]
fn the_reaper_line_marks_its_own_kill_only() {
    let mut asm = OomAssembler::new();
    push_all(&mut asm, &report(1));
    asm.push(LogLine::bare(
        "oom_reaper: reaped process 7 (other), now anon-rss:0kB",
    ));
    asm.push(LogLine::bare(REAPER));
    let out = asm.finish();
    assert_eq!(out.len(), 1);
    assert!(out[0].reaped);
    assert_eq!(out[0].raw.last().map(String::as_str), Some(REAPER));
    // After the report is over, a late reaper line is not attached anywhere.
    let mut asm = OomAssembler::new();
    push_all(&mut asm, &report(1));
    let out = asm.finish();
    assert!(!out[0].reaped);
    assert!(asm.push(LogLine::bare(REAPER)).is_empty());
    assert!(asm.finish().is_empty());
}

#[test]
fn task_rows_and_raw_lines_are_bounded() {
    let rows = MAX_TASK_ROWS + 2_500;
    let mut asm = OomAssembler::new();
    let mut out = push_all(&mut asm, &report(rows));
    out.extend(asm.finish());
    assert_eq!(out.len(), 1);
    let e = &out[0];
    assert_eq!(e.tasks.len(), MAX_TASK_ROWS);
    assert_eq!(e.tasks_dropped, Some(2_500));
    assert!(e.raw.len() <= MAX_RAW_LINES + 1);
    assert!(e.raw_dropped.is_some());
    assert_eq!(
        e.raw.last().map(String::as_str),
        Some(KILL),
        "the kill line is always kept"
    );
    assert_eq!(e.victim_pid, Some(42));
}

#[test]
fn a_report_that_never_reaches_its_kill_is_closed_as_partial() {
    let mut asm = OomAssembler::new();
    let mut lines = vec![TRIGGER.to_string(), BANNER.to_string()];
    lines.extend((0..=STALL_LINES).map(|i| format!("e1000e eth0: noise {i}")));
    let out = push_all(&mut asm, &lines);
    assert_eq!(out.len(), 1);
    assert!(out[0].partial);
    assert_eq!(out[0].victim_pid, None);
    assert_eq!(out[0].trigger_comm.as_deref(), Some("a.out"));
    // A kill much later is a report of its own, not this one's.
    let out = push_all(&mut asm, &[KILL.to_string()]);
    assert!(out.is_empty());
    let out = asm.finish();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].trigger_comm, None);
    assert!(out[0].partial);
}

#[test]
fn a_clock_going_back_separates_two_boots() {
    let text = "[  500.000000] a.out invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n\
                [  500.000100] CPU: 0 PID: 42 Comm: a.out Not tainted 6.1.0 #1\n\
                [    0.000000] Linux version 6.1.0 (builder@host) #1 SMP\n\
                [    2.000000] Out of memory: Killed process 9 (b) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0\n";
    let out = parse_text(InputFormat::Dmesg, text);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].victim_pid, out[0].partial), (None, true));
    assert_eq!(
        (out[1].victim_pid, out[1].trigger_comm.as_deref()),
        (Some(9), None)
    );
}

#[test]
fn a_kill_of_another_task_than_the_summary_named_is_not_this_reports() {
    // 5.3+ prints no selection line; the summary names the task that will be killed, and is
    // printed only right before its kill line: a summary whose kill line the log lost is a
    // kill of the task it names (partial).
    let mut lines = report(1);
    let last = lines.len() - 1;
    lines[last] = KILL.replace("process 42 (a.out)", "process 77 (other)");
    let mut asm = OomAssembler::new();
    let mut out = push_all(&mut asm, &lines);
    out.extend(asm.finish());
    assert_eq!(out.len(), 2);
    assert_eq!(
        (
            out[0].kind,
            out[0].victim_pid,
            out[0].selected_pid,
            out[0].partial
        ),
        (EventKind::Kill, Some(42), Some(42), true)
    );
    assert_eq!(
        (
            out[1].victim_pid,
            out[1].trigger_comm.as_deref(),
            out[1].partial
        ),
        (Some(77), None, true)
    );
}

#[test]
fn user_space_cannot_forge_a_kill() {
    // /dev/kmsg records written by user space carry another facility.
    assert!(
        parse_kmsg_record(b"12,9,100,-;Out of memory: Killed process 1 (init) total-vm:1kB\n")
            .is_none()
    );
    // syslog lines of other programs are not kernel lines.
    assert!(split_line(
        InputFormat::Syslog,
        "Nov 25 22:00:01 h earlyoom[5]: Killed process 1 (init)"
    )
    .is_none());
    assert!(split_line(
        InputFormat::Auto,
        "Nov 25 22:00:01 h earlyoom[5]: Killed process 1 (init)"
    )
    .is_none());
}

#[test]
fn a_record_cut_by_the_reader_is_not_a_line() {
    // A read into a too small buffer, or a record split across two buffers.
    let rec = b"3,3067,139201482,-;Memory cgroup out of memory: Killed process 7788 (bash) total-vm:7169492kB\n";
    for cut in 0..19 {
        assert!(
            parse_kmsg_record(&rec[..cut]).is_none(),
            "prefix of {cut} bytes"
        );
    }
    let l = parse_kmsg_record(&rec[..rec.len() - 20]).unwrap();
    let mut asm = OomAssembler::new();
    asm.push(l);
    let out = asm.finish();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].victim_pid, Some(7788));
    assert_eq!(out[0].victim_comm.as_deref(), Some("bash"));
    assert_eq!(out[0].total_vm_kb, None, "a number cut short is not taken");
}

#[test]
fn selection_lines_without_their_kill_line_are_kills() {
    // A grep excerpt of a 2.6.24-5.0 kernel's log: selection lines, one kill line.
    let text = "[  100.000000] Out of memory: Kill process 11 (a) score 900 or sacrifice child\n\
                [  200.000000] Out of memory: Kill process 12 (b) score 800 or sacrifice child\n\
                [  200.000100] Killed process 12 (b) total-vm:1000kB, anon-rss:900kB, file-rss:0kB\n\
                [  300.000000] Memory cgroup out of memory: Kill process 13 (c) score 700 or sacrifice child\n";
    let out = parse_text(InputFormat::Dmesg, text);
    let got: Vec<_> = out
        .iter()
        .map(|e| (e.kind, e.victim_pid, e.score, e.partial, e.anon_rss_kb))
        .collect();
    assert_eq!(
        got,
        [
            (EventKind::Kill, Some(11), Some(900), true, None),
            (EventKind::Kill, Some(12), Some(800), true, Some(900)),
            (EventKind::Kill, Some(13), Some(700), true, None),
        ]
    );
    assert_eq!(out[0].monotonic_s, Some(100.0));
    assert_eq!(out[2].global_oom, Some(false));
}

#[test]
fn an_orphaned_reaper_line_is_an_invocation_that_killed_nothing() {
    let mut asm = OomAssembler::new();
    let mut out = push_all(&mut asm, &[REAPER.to_string()]);
    out.extend(asm.finish());
    assert_eq!(out.len(), 1);
    let e = &out[0];
    assert_eq!(
        (e.kind, e.victim_pid, e.selected_pid, e.reaped, e.partial),
        (EventKind::NoKill, None, Some(42), true, true)
    );
    assert_eq!(e.selected_comm.as_deref(), Some("a.out"));
    // The reaper line of a kill already sent (it came after the report's tail) is no event.
    let mut lines = report(1);
    lines.extend((0..=TAIL_LINES).map(|i| format!("unrelated {i}")));
    let mut out = push_all(&mut asm, &lines);
    assert_eq!(out.len(), 1);
    out.extend(push_all(&mut asm, &[REAPER.to_string()]));
    out.extend(asm.finish());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].kind, EventKind::Kill);
}

/// A report's lines as a syslog file holds them, the kill line first (rsyslog and journald
/// forwarding can reorder lines of one moment).
fn syslog(at: &str, lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| format!("Jun  1 {at} host kernel: {l}\n"))
        .collect()
}

#[test]
fn a_header_after_its_kill_line_belongs_to_the_same_event() {
    let mut text = syslog("10:00:01", &[KILL]);
    text += &syslog("10:00:01", &[TRIGGER, BANNER, HEADER, &row(42), SUMMARY]);
    let out = parse_text(InputFormat::Syslog, &text);
    assert_eq!(out.len(), 1, "{out:?}");
    let e = &out[0];
    assert_eq!(
        (e.kind, e.victim_pid, e.partial),
        (EventKind::Kill, Some(42), false)
    );
    assert_eq!(
        (e.trigger_comm.as_deref(), e.trigger_pid),
        (Some("a.out"), Some(42))
    );
    assert_eq!(e.tasks.len(), 1);
    assert_eq!(e.raw.len(), 6);
    // Printk times say the same: the header's at most a minute before the kill line.
    let text =
        format!("[  500.000200] {KILL}\n[  500.000000] {TRIGGER}\n[  500.000100] {BANNER}\n");
    let out = parse_text(InputFormat::Dmesg, &text);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].trigger_comm.as_deref(), Some("a.out"));
}

#[test]
fn a_header_seconds_after_a_kill_is_another_report() {
    let mut text = syslog("10:00:01", &[KILL]);
    text += &syslog("10:00:09", &[TRIGGER, BANNER, HEADER, &row(42)]);
    let out = parse_text(InputFormat::Syslog, &text);
    let got: Vec<_> = out
        .iter()
        .map(|e| (e.kind, e.victim_pid, e.trigger_comm.as_deref(), e.partial))
        .collect();
    assert_eq!(
        got,
        [
            (EventKind::Kill, Some(42), None, true),
            (EventKind::NoKill, None, Some("a.out"), true),
        ]
    );
}
