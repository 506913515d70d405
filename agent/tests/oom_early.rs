//! Early send: the agent's assembler returns a kill at its kill line and amends it once the
//! report is over ([`OomAssembler::early`]). On every real report of the corpus, the early
//! events with their amendments applied are exactly what `parse-kmsg` prints, no kill comes out
//! twice unamended, and each kill comes out at its own line; and through the watcher on real
//! reports: a 5.18 kill with its `oom_reaper` line, a 4.4 memcg kill (no `oom-kill:` summary in
//! that generation), the 5.15 `memory.oom.group` kill of six processes.

#[path = "support/kmsg_text.rs"]
mod kmsg_text;

use std::path::{Path, PathBuf};

use fleet_agent::sources::kmsg::{
    parse_kmsg_record, split_line, InputFormat, KmsgWatcher, OomAssembler, OomEvent,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oom")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

/// The lines of a fixture as the assembler takes them (kmsg: record by record).
fn lines(name: &str, text: &str) -> Vec<String> {
    if name.ends_with(".kmsg") {
        kmsg_text::records(text)
    } else {
        text.lines().map(str::to_string).collect()
    }
}

fn push(asm: &mut OomAssembler, name: &str, line: &str) -> Vec<OomEvent> {
    if name.ends_with(".kmsg") {
        let rec = format!("{line}\n");
        match parse_kmsg_record(rec.as_bytes()) {
            Some(l) => asm.push(l),
            None => Vec::new(),
        }
    } else {
        match split_line(InputFormat::Auto, line) {
            Some(l) => asm.push(l),
            None => Vec::new(),
        }
    }
}

/// What identifies an event across its amendment (text inputs have no `kmsg_seq`).
fn identity(
    e: &OomEvent,
) -> (
    Option<u64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
) {
    (
        e.kmsg_seq,
        e.monotonic_s.map(|s| s.to_string()),
        e.time.clone(),
        e.victim_pid.or(e.selected_pid),
        e.raw.first().cloned().unwrap_or_default(),
    )
}

/// Every fixture: early events, amendments applied in place, equal the events of a plain
/// assembler; an amendment replaces an event that came out before it, once; an early kill came
/// out at the line that names its victim.
#[test]
fn early_events_amended_are_the_reports_events_on_every_fixture() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".log") || n.ends_with(".kmsg"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "{names:?}");
    let mut early_kills = 0;
    let mut amended = 0;
    for name in &names {
        let text = read(name);
        let lines = lines(name, &text);
        let mut plain = OomAssembler::new();
        let mut want = Vec::new();
        for l in &lines {
            want.extend(push(&mut plain, name, l));
        }
        want.extend(plain.finish());

        let mut early = OomAssembler::new().early();
        let mut got: Vec<OomEvent> = Vec::new();
        let mut amends_seen = Vec::new();
        let mut apply = |events: Vec<OomEvent>, line: Option<&str>, got: &mut Vec<OomEvent>| {
            for e in events {
                if e.amends {
                    let id = identity(&e);
                    assert!(!amends_seen.contains(&id), "{name}: amended twice: {id:?}");
                    let at = got
                        .iter()
                        .position(|g| identity(g) == id)
                        .unwrap_or_else(|| panic!("{name}: amendment of nothing: {id:?}"));
                    amends_seen.push(id);
                    got[at] = OomEvent { amends: false, ..e };
                    amended += 1;
                    continue;
                }
                if let (Some(line), Some(pid)) = (line, e.victim_pid) {
                    // Out at its own line: the line names the victim.
                    if e.kind == fleet_agent::sources::kmsg::EventKind::Kill
                        && line.contains(&format!("illed process {pid}"))
                    {
                        early_kills += 1;
                    }
                }
                assert!(
                    !got.iter().any(|g| identity(g) == identity(&e) && *g == e),
                    "{name}: the same event twice: {:?}",
                    identity(&e)
                );
                got.push(e);
            }
        };
        for l in &lines {
            let events = push(&mut early, name, l);
            apply(events, Some(l), &mut got);
        }
        apply(early.finish(), None, &mut got);
        assert_eq!(got, want, "{name}");
    }
    assert!(early_kills > 40, "{early_kills} kills out at their line");
    assert!(
        amended >= 3,
        "{amended} amendments (reaper lines, late headers)"
    );
}

/// A `dmesg` report as /dev/kmsg gives it: `[  1471.742583] message` becomes
/// `6,SEQ,1471742583,-;message`, `shift_us` later; a line the publisher's wrapping cut off its
/// stamp is left out.
fn kmsg_of_dmesg(text: &str, first_seq: u64, shift_us: u64) -> String {
    let mut out = String::new();
    let stamped = text
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.split_once("] "));
    for (i, (stamp, msg)) in stamped.enumerate() {
        let us = (stamp.trim().parse::<f64>().unwrap() * 1e6).round() as u64 + shift_us;
        out.push_str(&format!("6,{},{us},-;{msg}\n", first_seq + i as u64));
    }
    out
}

struct Host {
    _dir: tempfile::TempDir,
    kmsg: PathBuf,
    proc_root: PathBuf,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("sys/kernel/random")).unwrap();
        std::fs::write(proc_root.join("sys/kernel/random/boot_id"), "boot-a\n").unwrap();
        let kmsg = dir.path().join("kmsg");
        std::fs::write(&kmsg, "").unwrap();
        Host {
            _dir: dir,
            kmsg,
            proc_root,
        }
    }

    fn append(&self, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.kmsg)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn watcher(&self) -> KmsgWatcher {
        KmsgWatcher::open(&self.kmsg, &self.proc_root, &self.proc_root).unwrap()
    }
}

fn detail(e: &fleet_proto::v1::OomEvent) -> Value {
    serde_json::from_str(&e.detail_json).unwrap()
}

/// 5.18 (LKML, a mempolicy OOM): the kill leaves at its kill line, with the summary's facts and
/// without `reaped`; its `oom_reaper` line, 107 ms later, is read while the report is still
/// open, and once the log is quiet the kill leaves again, amended: same `kmsg_seq`, same time,
/// `reaped`, the reaper line in its raw lines. Read in one go with the next report (an agent
/// catching up), the kill leaves once, whole.
#[test]
fn a_kill_leaves_at_its_kill_line_and_its_reaper_line_amends_it() {
    let text = read("046-lkml-518-mempolicy-reaper-dmesg.log");
    let records = kmsg_of_dmesg(&text, 500, 0);
    let reaper_at = records.find(";oom_reaper:").unwrap();
    let reaper_start = records[..reaper_at].rfind('\n').map_or(0, |i| i + 1);
    let (head, reaper) = (&records[..reaper_start], &records[reaper_start..]);
    assert!(reaper.contains(";oom_reaper:") && !head.contains("oom_reaper"));

    let host = Host::new();
    let mut w = host.watcher();
    host.append(head);
    let first = w.read_available();
    assert_eq!(first.len(), 1, "{first:?}");
    let kill = &first[0];
    assert!(!kill.amends && !kill.reaped);
    assert_eq!(kill.victim_pid, Some(13135));
    assert_eq!(kill.constraint.as_deref(), Some("CONSTRAINT_MEMORY_POLICY"));
    assert!(kill.kmsg_seq.is_some());
    assert!(w.flush_deadline().is_some(), "the report is still open");

    host.append(reaper);
    assert!(w.read_available().is_empty(), "the report is still open");
    let amended = w.flush_idle();
    assert_eq!(amended.len(), 1, "{amended:?}");
    let a = &amended[0];
    assert!(a.amends && a.reaped);
    assert_eq!(
        (a.kmsg_seq, a.time_ms, &a.boot_id, a.victim_pid),
        (kill.kmsg_seq, kill.time_ms, &kill.boot_id, kill.victim_pid)
    );
    let d = detail(a);
    assert!(d["raw"].as_array().unwrap().iter().any(|l| l
        .as_str()
        .unwrap()
        .starts_with("oom_reaper: reaped process 13135")));
    assert_eq!(d["reaped"], true);
    assert!(d.get("amends").is_none(), "not part of the report");
    assert!(w.flush_idle().is_empty(), "amended once");

    // The whole report and the next one (the same, ten seconds later) in one read: the first
    // report ends at the second's first line, so its kill leaves once, already reaped; the
    // second's leaves at its kill line and is amended when the log is quiet.
    let host = Host::new();
    host.append(&records);
    host.append(&kmsg_of_dmesg(&text, 600, 10_000_000));
    let mut w = host.watcher();
    let events = w.read_available();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].reaped && !events[0].amends);
    assert_eq!(events[0].kmsg_seq, kill.kmsg_seq);
    assert!(!events[1].reaped && !events[1].amends);
    let last = w.flush_idle();
    assert_eq!(last.len(), 1);
    assert!(last[0].reaped && last[0].amends);
    assert_eq!(last[0].kmsg_seq, events[1].kmsg_seq);
}

/// Ubuntu 16.04, 4.4 (a Docker memcg kill): that generation prints a selection line and a kill
/// line, no `oom-kill:` summary. The kill leaves at its kill line with the selection's score and
/// the memcg of `Task in`; nothing amends it.
#[test]
fn an_old_kernels_kill_without_a_summary_leaves_at_its_kill_line() {
    let text = read("045-ubuntu1604-44-docker-memcg-dmesg.log");
    assert!(!text.contains("oom-kill:"));
    let records = kmsg_of_dmesg(&text, 1, 0);
    let kill_at = records.find(";Killed process 11344").unwrap();
    let kill_end = kill_at + records[kill_at..].find('\n').unwrap() + 1;

    let host = Host::new();
    let mut w = host.watcher();
    host.append(&records[..kill_end]);
    let events = w.read_available();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (e.victim_pid, e.victim_comm.as_deref()),
        (Some(11344), Some("main"))
    );
    assert_eq!(e.score, Some(904));
    assert!(e.task_memcg.is_some() && !e.partial && !e.amends);
    host.append(&records[kill_end..]);
    assert!(w.read_available().is_empty());
    assert!(w.flush_idle().is_empty(), "nothing to amend");
}

/// AKS 5.15 (`memory.oom.group`): six kills of one report, each leaving at its own kill line,
/// once; the first one carries the report's task table, the others name it. Nothing is left for
/// the quiet moment.
#[test]
fn a_group_kill_leaves_kill_by_kill() {
    let records = read("035-DERIVED-kmsg-from-002-aks515-memcg.kmsg");
    let host = Host::new();
    let mut w = host.watcher();
    let mut all = Vec::new();
    let mut lines_read = 0;
    for rec in lines(".kmsg", &records) {
        host.append(&format!("{rec}\n"));
        lines_read += 1;
        let events = w.read_available();
        if rec.contains("Killed process") {
            assert_eq!(events.len(), 1, "at line {lines_read}: {events:?}");
        } else {
            assert!(events.is_empty(), "at line {lines_read}: {events:?}");
        }
        all.extend(events);
    }
    assert!(w.flush_idle().is_empty(), "no amendment: nothing changed");
    let pids: Vec<i64> = all.iter().filter_map(|e| e.victim_pid).collect();
    assert_eq!(pids, [7788, 7620, 7656, 7657, 7712, 7788]);
    let mut seqs: Vec<u64> = all.iter().filter_map(|e| e.kmsg_seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 6, "one id each");
    assert!(all.iter().all(|e| !e.amends));
    let first = detail(&all[0]);
    assert!(first["tasks"].as_array().unwrap().len() > 1);
    let second = detail(&all[1]);
    assert_eq!(second["tasks_with_kmsg_seq"], all[0].kmsg_seq.unwrap());
}

/// The amendment of a group's first kill keeps the whole table it had (not the victim's row
/// that later kills of the group keep), and its time stays that of the first send.
#[test]
fn an_amended_group_kill_keeps_its_table_and_time() {
    let records = read("035-DERIVED-kmsg-from-002-aks515-memcg.kmsg");
    let recs = lines(".kmsg", &records);
    // The first kill, its reaper line (the kernel's reaper thread may print it at any point),
    // the group's other kills, and the reaper line of one of them.
    let first_kill = recs
        .iter()
        .position(|r| r.contains("Killed process 7788"))
        .unwrap();
    let host = Host::new();
    let mut w = host.watcher();
    host.append(&(recs[..=first_kill].join("\n") + "\n"));
    let sent = w.read_available();
    assert_eq!(sent.len(), 1);
    // Reaper lines take sequence numbers of their own: the group's records come after.
    host.append("6,3068,139201490,-;oom_reaper: reaped process 7788 (bash), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n");
    let rest: Vec<String> = recs[first_kill + 1..]
        .iter()
        .map(|r| {
            let (pri, tail) = r.split_once(',').unwrap();
            let (seq, tail) = tail.split_once(',').unwrap();
            format!("{pri},{},{tail}", seq.parse::<u64>().unwrap() + 100)
        })
        .collect();
    host.append(&(rest.join("\n") + "\n"));
    host.append("6,3200,139250000,-;oom_reaper: reaped process 7620 (nginx), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n");
    let more = w.read_available();
    assert_eq!(more.len(), 5, "the group's other kills, once each");
    let amended = w.flush_idle();
    let pids: Vec<_> = amended.iter().map(|e| e.victim_pid).collect();
    assert_eq!(pids, [Some(7788), Some(7620)], "{amended:?}");
    assert!(amended.iter().all(|e| e.amends && e.reaped));
    let a = &amended[0];
    assert_eq!((a.kmsg_seq, a.time_ms), (sent[0].kmsg_seq, sent[0].time_ms));
    assert_eq!(
        detail(a)["tasks"],
        detail(&sent[0])["tasks"],
        "the first kill's whole table"
    );
    let b = &amended[1];
    let first_of = more.iter().find(|e| e.victim_pid == Some(7620)).unwrap();
    assert_eq!(
        (b.kmsg_seq, b.time_ms),
        (first_of.kmsg_seq, first_of.time_ms)
    );
    assert_eq!(detail(b)["tasks_with_kmsg_seq"], sent[0].kmsg_seq.unwrap());
}

/// Kills of lines the assembler never sent early (a report without a kill line) come out when
/// the report is over, as before.
#[test]
fn a_report_without_a_kill_line_comes_out_when_it_is_over() {
    let text = read("052-arm64-54-panic-on-oom-compulsory-dmesg.log");
    let mut asm = OomAssembler::new().early();
    let mut during = Vec::new();
    for l in text.lines() {
        if let Some(line) = split_line(InputFormat::Auto, l) {
            during.extend(asm.push(line));
        }
    }
    let after = asm.finish();
    assert!(during.iter().chain(&after).all(|e| !e.amends));
    let kinds: Vec<_> = during
        .iter()
        .chain(&after)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["panic"]);
}
