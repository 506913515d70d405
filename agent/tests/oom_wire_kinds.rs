//! The kind of each OOM event reaches the wire (`OomEvent.kind`): kmsg records read through the
//! watcher as the agent reads /dev/kmsg.

use fleet_agent::sources::kmsg::KmsgWatcher;
use fleet_proto::v1::OomKind;

#[test]
fn the_agent_sends_each_events_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let proc_root = tmp.path().join("proc");
    std::fs::create_dir_all(proc_root.join("sys/kernel/random")).unwrap();
    std::fs::write(proc_root.join("sys/kernel/random/boot_id"), "boot-a\n").unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // 051's memory.oom.group lines (a kill, a member already exiting), an orphaned reaper line,
    // and 052's compulsory panic, as /dev/kmsg records.
    let log = tmp.path().join("kmsg");
    std::fs::write(
        &log,
        "3,1,1000,-;Memory cgroup out of memory: Killed process 3804874 (stress) total-vm:13632272kB, anon-rss:1489488kB, file-rss:264kB, shmem-rss:0kB, UID:0 pgtables:2956kB oom_score_adj:-997\n\
         4,2,1001,-;Tasks in /kubepods.slice/pod1 are going to be killed due to memory.oom.group set\n\
         6,3,1002,-;Memory cgroup out of memory: OOM victim 3804877 (stress) is already exiting. Skip killing the task\n\
         6,4,90000000,-;oom_reaper: reaped process 4959 (a.out), now anon-rss:388kB, file-rss:128kB, shmem-rss:0kB\n\
         4,5,95000000,-;oncealloc2 invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n\
         0,6,95000100,-;Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled\n",
    )
    .unwrap();
    let mut w = KmsgWatcher::open(&log, &proc_root, &state).unwrap();
    let mut events = w.read_available();
    events.extend(w.flush_idle());
    // An orphaned reaper line's event goes out at once, the kills of a report when it is over:
    // in the order of their first record.
    events.sort_by_key(|e| e.kmsg_seq);
    let got: Vec<(Option<u64>, OomKind, Option<i64>)> = events
        .iter()
        .map(|e| (e.kmsg_seq, e.kind(), e.victim_pid))
        .collect();
    assert_eq!(
        got,
        [
            (Some(1), OomKind::Kill, Some(3_804_874)),
            (Some(2), OomKind::NoKill, None),
            (Some(4), OomKind::NoKill, None),
            (Some(5), OomKind::Panic, None),
        ]
    );
    // The parse-kmsg object travels too, with the same word.
    for (e, word) in events.iter().zip(["kill", "no_kill", "no_kill", "panic"]) {
        let want = format!(r#""kind":"{word}""#);
        assert!(e.detail_json.contains(&want), "{}", e.detail_json);
    }
}
