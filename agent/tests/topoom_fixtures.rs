//! The top-oom scanner against fixture proc trees: temporary directories of fake pid
//! directories holding `oom_score`, `oom_score_adj`, `statm`, `status`, `comm` and `cmdline`
//! with the contents the kernel writes (see `sources::topoom::parse` for real examples).

use std::path::Path;
use std::time::{Duration, Instant};

use fleet_agent::sources::topoom::{ScanStats, TopOomError, TopOomScanner, CMDLINE_MAX_BYTES};
use fleet_proto::v1::OomProcess;

/// The page size in KiB, as the scanner multiplies `statm`'s pages by it.
fn page_kb() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64) / 1024
}

/// A fake process; `files` overrides or removes (`None`) any of the defaults.
struct Fake<'a> {
    pid: u32,
    score: i64,
    adj: i64,
    rss_pages: u64,
    uid: u32,
    comm: &'a str,
    cmdline: &'a [u8],
    files: Vec<(&'a str, Option<&'a [u8]>)>,
}

fn fake<'a>(pid: u32, score: i64, rss_pages: u64, comm: &'a str, cmdline: &'a [u8]) -> Fake<'a> {
    Fake {
        pid,
        score,
        adj: 0,
        rss_pages,
        uid: 1000,
        comm,
        cmdline,
        files: Vec::new(),
    }
}

impl Fake<'_> {
    fn write(&self, root: &Path) {
        let dir = root.join(self.pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let defaults: Vec<(&str, Vec<u8>)> = vec![
            ("oom_score", format!("{}\n", self.score).into_bytes()),
            ("oom_score_adj", format!("{}\n", self.adj).into_bytes()),
            (
                "statm",
                format!(
                    "{} {} 378 4 0 92 0\n",
                    self.rss_pages * 3 + 1,
                    self.rss_pages
                )
                .into_bytes(),
            ),
            (
                "status",
                format!(
                    "Name:\t{}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\n\
                     Pid:\t{pid}\nPPid:\t1\nTracerPid:\t0\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n\
                     Gid:\t100\t100\t100\t100\nVmRSS:\t{} kB\n",
                    self.comm,
                    self.rss_pages * page_kb(),
                    pid = self.pid,
                    uid = self.uid,
                )
                .into_bytes(),
            ),
            ("comm", format!("{}\n", self.comm).into_bytes()),
            ("cmdline", self.cmdline.to_vec()),
        ];
        for (name, content) in defaults {
            let content = match self.files.iter().find(|(n, _)| *n == name) {
                Some((_, Some(c))) => c.to_vec(),
                Some((_, None)) => continue,
                None => content,
            };
            std::fs::write(dir.join(name), content).unwrap();
        }
    }
}

/// A kernel thread: no address space, score 0, empty cmdline.
fn kthread(root: &Path, pid: u32, comm: &str) {
    let mut k = fake(pid, 0, 0, comm, b"");
    k.uid = 0;
    k.files.push(("statm", Some(b"0 0 0 0 0 0 0\n")));
    k.write(root);
}

fn tree(procs: &[Fake<'_>]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for p in procs {
        p.write(tmp.path());
    }
    // What else lives in /proc: not processes.
    std::fs::create_dir(tmp.path().join("sys")).unwrap();
    std::fs::write(tmp.path().join("meminfo"), b"MemTotal: 1 kB\n").unwrap();
    std::os::unix::fs::symlink("1", tmp.path().join("self")).unwrap();
    std::fs::create_dir(tmp.path().join("12a")).unwrap();
    std::fs::create_dir(tmp.path().join("99999999999")).unwrap();
    tmp
}

fn ranking(out: &[OomProcess]) -> Vec<i64> {
    out.iter().map(|p| p.pid).collect()
}

#[test]
fn ranks_by_score_then_rss_then_pid() {
    let tmp = tree(&[
        fake(100, 500, 10, "a", b"a\0"),
        fake(101, 900, 10, "b", b"b\0"),
        // Three ties at 700: the larger RSS first, then the lower pid.
        fake(205, 700, 50, "c", b"c\0"),
        fake(203, 700, 50, "d", b"d\0"),
        fake(204, 700, 80, "e", b"e\0"),
        fake(300, 1, 1, "f", b"f\0"),
    ]);
    kthread(tmp.path(), 2, "kthreadd");
    kthread(tmp.path(), 3, "kworker/0:0-events");

    let mut all = TopOomScanner::new(tmp.path(), 10);
    let out = all.scan().unwrap();
    assert_eq!(ranking(&out), [101, 204, 203, 205, 100, 300]);
    let stats = all.last_stats();
    assert_eq!(
        stats,
        ScanStats {
            processes: 8,
            candidates: 8,
            no_mm: 2,
            ..ScanStats::default()
        }
    );

    // The top 3 cuts inside the tie, on RSS then pid.
    let mut top3 = TopOomScanner::new(tmp.path(), 3);
    assert_eq!(ranking(&top3.scan().unwrap()), [101, 204, 203]);
    let mut top1 = TopOomScanner::new(tmp.path(), 1);
    assert_eq!(ranking(&top1.scan().unwrap()), [101]);
}

#[test]
fn kernel_threads_are_skipped_without_a_read_until_their_pid_is_a_new_process() {
    let tmp = tree(&[
        fake(100, 500, 10, "a", b"a\0"),
        fake(101, 900, 10, "b", b"b\0"),
    ]);
    kthread(tmp.path(), 2, "kthreadd");
    kthread(tmp.path(), 3, "kworker/0:0-events");
    // The top 1: the kernel threads (score 0) are below the weakest once the heap is full, and
    // are still told apart by their statm.
    let mut s = TopOomScanner::new(tmp.path(), 1);
    assert_eq!(ranking(&s.scan().unwrap()), [101]);
    assert_eq!(s.last_stats().no_mm, 2);
    assert_eq!(s.last_stats().known_no_mm, 0);

    // The next scan reads nothing of theirs: without their files they are still not counted
    // as vanished or unreadable.
    for pid in ["2", "3"] {
        std::fs::remove_file(tmp.path().join(pid).join("oom_score")).unwrap();
    }
    assert_eq!(ranking(&s.scan().unwrap()), [101]);
    let stats = s.last_stats();
    assert_eq!((stats.known_no_mm, stats.no_mm), (2, 0));
    assert_eq!((stats.vanished, stats.unreadable), (0, 0), "{stats:?}");

    // Pid 3 is now a new process (a new directory, so a new inode, as /proc gives a reused
    // pid): read again, and ranked first.
    let new = tmp.path().join("new-3");
    fake(3, 1000, 10, "reused", b"reused\0").write(&new);
    std::fs::remove_dir_all(tmp.path().join("3")).unwrap();
    std::fs::rename(new.join("3"), tmp.path().join("3")).unwrap();
    assert_eq!(ranking(&s.scan().unwrap()), [3]);
    assert_eq!(s.last_stats().known_no_mm, 1);
}

#[test]
fn reports_every_field() {
    let mut p = fake(4242, 1332, 420, "sleep", b"sleep\x0030\x00");
    p.adj = 1000;
    p.uid = 65534;
    let mut q = fake(77, 10, 5, "nginx", b"nginx: worker process\0\0\0\0\0\0");
    q.adj = -17;
    let mut blank = fake(78, 9, 5, "blanked", b"\0\0\0");
    blank.uid = 0;
    let tmp = tree(&[p, q, blank]);
    let out = TopOomScanner::new(tmp.path(), 10).scan().unwrap();
    assert_eq!(
        out,
        [
            OomProcess {
                pid: 4242,
                comm: "sleep".into(),
                cmdline: "sleep 30".into(),
                uid: 65534,
                oom_score: 1332,
                oom_score_adj: 1000,
                rss_kb: 420 * page_kb(),
            },
            OomProcess {
                pid: 77,
                comm: "nginx".into(),
                cmdline: "nginx: worker process".into(),
                uid: 1000,
                oom_score: 10,
                oom_score_adj: -17,
                rss_kb: 5 * page_kb(),
            },
            // A process whose arguments are blank shows as [comm], like ps.
            OomProcess {
                pid: 78,
                comm: "blanked".into(),
                cmdline: "[blanked]".into(),
                uid: 0,
                oom_score: 9,
                oom_score_adj: 0,
                rss_kb: 5 * page_kb(),
            },
        ]
    );
}

#[test]
fn matches_a_full_sort_whatever_the_listing_order() {
    // 500 processes with scores and RSS drawn from a small range, so that ties are many.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let procs: Vec<Fake<'_>> = (1..=500)
        .map(|pid| {
            let score = (next() % 40) as i64 * 25;
            let rss = next() % 4;
            fake(pid, score, rss + 1, "p", b"p\0")
        })
        .collect();
    let tmp = tree(&procs);
    let mut expected: Vec<(i64, u64, i64)> = procs
        .iter()
        .map(|p| (p.score, p.rss_pages, i64::from(p.pid)))
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    for limit in [1, 7, 10, 100, 499, 500, 1000] {
        let mut s = TopOomScanner::new(tmp.path(), limit);
        // Twice: the second scan reuses the evicted entries and the open directory.
        for _ in 0..2 {
            let out = s.scan().unwrap();
            let want: Vec<i64> = expected.iter().take(limit).map(|e| e.2).collect();
            assert_eq!(ranking(&out), want, "limit {limit}");
            for p in &out {
                let f = &procs[p.pid as usize - 1];
                assert_eq!((p.oom_score, p.rss_kb), (f.score, f.rss_pages * page_kb()));
            }
            let stats = s.last_stats();
            assert_eq!(stats.processes, 500);
            assert!(
                stats.candidates as usize >= limit.min(500) && stats.candidates <= 500,
                "{stats:?}"
            );
        }
    }
}

#[test]
fn vanished_processes_are_skipped_silently() {
    let mut gone_after_score = fake(11, 900, 10, "gone", b"gone\0");
    gone_after_score.files.push(("status", None));
    gone_after_score.files.push(("cmdline", None));
    let mut gone_after_statm = fake(12, 800, 10, "gone2", b"gone2\0");
    gone_after_statm.files.push(("oom_score_adj", None));
    let tmp = tree(&[
        fake(10, 100, 10, "stays", b"stays\0"),
        gone_after_score,
        gone_after_statm,
    ]);
    // Gone before anything was read: an empty pid directory.
    std::fs::create_dir(tmp.path().join("13")).unwrap();

    let mut s = TopOomScanner::new(tmp.path(), 10);
    assert_eq!(ranking(&s.scan().unwrap()), [10]);
    let stats = s.last_stats();
    assert_eq!((stats.processes, stats.vanished), (4, 3), "{stats:?}");
    assert_eq!((stats.denied, stats.unreadable), (0, 0), "{stats:?}");

    // A process that exits between two scans is gone from the next ranking, and one that
    // appears is in it (the directory fd is kept open and re-listed).
    std::fs::remove_dir_all(tmp.path().join("10")).unwrap();
    fake(14, 50, 1, "new", b"new\0").write(tmp.path());
    assert_eq!(ranking(&s.scan().unwrap()), [14]);
}

#[test]
fn garbage_content_skips_the_process_and_never_panics() {
    let mut bad_score = fake(21, 999, 1, "x", b"x\0");
    bad_score.files.push(("oom_score", Some(b"lots\n")));
    let mut empty_score = fake(22, 999, 1, "x", b"x\0");
    empty_score.files.push(("oom_score", Some(b"")));
    let mut bad_statm = fake(23, 999, 1, "x", b"x\0");
    bad_statm.files.push(("statm", Some(b"12\n")));
    let mut bad_adj = fake(24, 999, 1, "x", b"x\0");
    bad_adj.files.push(("oom_score_adj", Some(b"5000\n")));
    let mut no_uid = fake(25, 999, 1, "x", b"x\0");
    no_uid.files.push(("status", Some(b"Name:\tx\n\xff\xfe\n")));
    // Odd but parseable: kept, with printable strings.
    let mut odd = fake(26, 998, 1, "", b"");
    odd.files.push(("comm", Some(b"evil\x1b[2J\xff\n")));
    let huge: Vec<u8> = b"arg\0".iter().copied().cycle().take(100_000).collect();
    odd.files.push(("cmdline", Some(&huge)));
    let mut huge_status = fake(27, 997, 1, "big", b"big\0");
    let mut status = b"Name:\tbig\nUid:\t42\t42\t42\t42\n".to_vec();
    status.resize(200_000, b'z');
    huge_status.files.push(("status", Some(&status)));
    let tmp = tree(&[
        bad_score,
        empty_score,
        bad_statm,
        bad_adj,
        no_uid,
        odd,
        huge_status,
        fake(28, 5, 1, "fine", b"fine\0"),
    ]);
    let mut s = TopOomScanner::new(tmp.path(), 10);
    let out = s.scan().unwrap();
    assert_eq!(ranking(&out), [26, 27, 28]);
    assert_eq!(out[0].comm, "evil?[2J\u{fffd}");
    assert_eq!(
        out[0].cmdline.len(),
        CMDLINE_MAX_BYTES - 1,
        "'arg ' × 64, less the last space"
    );
    assert!(out[0].cmdline.starts_with("arg arg arg"));
    assert_eq!(out[1].uid, 42);
    let stats = s.last_stats();
    assert_eq!(stats.unreadable, 5, "{stats:?}");

    // Random bytes in every file of many processes: no panic, and whatever is reported is
    // well-formed.
    let tmp = tempfile::tempdir().unwrap();
    let mut x: u64 = 1;
    for pid in 1..=300u32 {
        let dir = tmp.path().join(pid.to_string());
        std::fs::create_dir(&dir).unwrap();
        for name in [
            "oom_score",
            "oom_score_adj",
            "statm",
            "status",
            "comm",
            "cmdline",
        ] {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (x >> 33) as usize % 24;
            let mut content: Vec<u8> = (0..len)
                .map(|i| {
                    let r = (x >> (i % 8 * 8)) as u8;
                    // Mostly digits, blanks and separators, so that some of it parses.
                    match r % 4 {
                        0 => b'0' + r % 10,
                        1 => b" \n\0\t-Uid:"[usize::from(r) % 9],
                        _ => r,
                    }
                })
                .collect();
            if name == "status" && (x >> 40) % 3 == 1 {
                content.extend_from_slice(b"\nUid:\t7\t7\t7\t7\n");
            }
            std::fs::write(dir.join(name), content).unwrap();
        }
    }
    let mut s = TopOomScanner::new(tmp.path(), 50);
    let out = s.scan().unwrap();
    for w in out.windows(2) {
        assert!(w[0].oom_score >= w[1].oom_score);
    }
    for p in &out {
        assert!(p.cmdline.len() <= CMDLINE_MAX_BYTES && (-1000..=1000).contains(&p.oom_score_adj));
    }
    assert_eq!(s.last_stats().processes, 300);
}

#[test]
fn a_missing_root_is_an_error_until_it_appears() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("proc");
    let mut s = TopOomScanner::new(&root, 10);
    let e = s.scan().unwrap_err();
    assert!(matches!(e, TopOomError::Open { .. }), "{e}");
    assert!(e.to_string().contains("proc"), "{e}");
    std::fs::create_dir(&root).unwrap();
    fake(5, 10, 1, "x", b"x\0").write(&root);
    assert_eq!(ranking(&s.scan().unwrap()), [5]);

    // A file where the directory should be cannot be listed.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let e = TopOomScanner::new(&file, 10).scan().unwrap_err();
    assert!(matches!(e, TopOomError::List { .. }), "{e}");
}

#[test]
fn limit_zero_scans_nothing() {
    let tmp = tree(&[fake(5, 10, 1, "x", b"x\0")]);
    let mut s = TopOomScanner::new(tmp.path(), 0);
    assert!(s.scan().unwrap().is_empty());
    assert_eq!(s.last_stats().processes, 0);
}

#[test]
fn a_scan_sets_when_the_next_is_due() {
    let tmp = tree(&[fake(5, 10, 1, "x", b"x\0")]);
    // A budget of 0.5 ms per second: a scan of one fake process costs far less, so the period
    // is the minimum.
    let mut s = TopOomScanner::new(tmp.path(), 10).with_budget(0.0005);
    let t0 = Instant::now();
    assert!(s.due(t0), "due before the first scan");
    s.scan().unwrap();
    assert!(s.last_cost() > Duration::ZERO && s.last_cost() < Duration::from_millis(20));
    assert_eq!(s.period(), Duration::from_secs(1));
    assert!(!s.due(Instant::now()));
    assert!(s.due(Instant::now() + Duration::from_secs(1)));

    // At the default budget (0.005 %), an expensive scan (charged by hand) pushes the next one
    // out by cost / 0.005 %.
    let mut s = TopOomScanner::new(tmp.path(), 10);
    let t1 = Instant::now();
    s.record(t1, Duration::from_micros(1200));
    assert_eq!(s.period(), Duration::from_secs(24));
    assert!(!s.due(t1 + Duration::from_secs(23)));
    assert!(s.due(t1 + Duration::from_secs(24)));
    // While memory is tight the budget is ten times larger: the next scan is due sooner.
    s.set_memory_tight(true);
    assert_eq!(s.period(), Duration::from_millis(2400));
    assert!(s.due(t1 + Duration::from_secs(3)));
    s.set_memory_tight(false);
    assert_eq!(s.period(), Duration::from_secs(24));
    s.record(t1, Duration::from_millis(12));
    assert_eq!(s.period(), Duration::from_secs(60));

    // A bigger budget scans more often.
    let mut s = TopOomScanner::new(tmp.path(), 10).with_budget(0.01);
    s.record(t1, Duration::from_millis(12));
    let p = s.period().as_secs_f64();
    assert!((p - 1.2).abs() < 1e-6, "{p}");
}
