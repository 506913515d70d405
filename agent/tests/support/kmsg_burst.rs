//! Kernel logs of OOM bursts, as `/dev/kmsg` records (`pri,seq,µs,-;message`), built from two
//! real reports of `agent/tests/fixtures/oom/` (see the README there for their sources):
//!
//! - [`group_burst`]: `035-DERIVED-kmsg-from-002-aks515-memcg.kmsg` (5.15, AKS): a memcg OOM
//!   in a cgroup with `memory.oom.group` set, grown to N processes: its trigger, stack and memcg
//!   lines as printed, a task table of N rows, the summary, the first kill, `Tasks in .. are
//!   going to be killed due to memory.oom.group set`, and a kill line for every other process.
//! - [`global_oom`]: `022-qemu611-global-rssanon-cpu-uid-dmesg.log` (6.11): a global OOM with its
//!   Mem-Info block, its task table grown to N rows (about 150 bytes a row as printed, 230 once
//!   parsed into JSON), one kill.
//!
//! The tests write these to a file and point the kmsg watcher at it (`scripts/bench-oom-burst`
//! builds the same group burst for the release binaries).

#![allow(dead_code)] // Each test file uses its own part of it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A real report of the corpus.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oom")
        .join(name)
}

/// Appends /dev/kmsg records, numbering and timing them.
struct Records {
    text: String,
    seq: u64,
    us: u64,
}

impl Records {
    fn push(&mut self, pri: u8, message: &str) {
        let _ = writeln!(self.text, "{pri},{},{},-;{message}", self.seq, self.us);
        self.seq += 1;
        self.us += 3;
    }
}

/// The first pid of the burst's processes.
pub const FIRST_PID: u64 = 100_000;

/// A memory.oom.group burst killing `kills` processes (pids [`FIRST_PID`]..), records numbered
/// from `first_seq`, the first at `start_us` of the kernel's monotonic clock.
pub fn group_burst(kills: usize, first_seq: u64, start_us: u64) -> String {
    let real = std::fs::read_to_string(fixture("035-DERIVED-kmsg-from-002-aks515-memcg.kmsg"))
        .expect("the 035 report");
    let messages: Vec<&str> = real
        .lines()
        .map(|l| l.split_once(';').expect("a kmsg record").1)
        .collect();
    let mut out = Records {
        text: String::new(),
        seq: first_seq,
        us: start_us,
    };
    // Trigger, stack, memcg usage and stats, "Tasks state", the table header: as printed.
    let header = messages
        .iter()
        .position(|m| m.starts_with("[  pid  ]"))
        .expect("a task table");
    for m in &messages[..=header] {
        out.push(6, m);
    }
    let pid = |i: usize| FIRST_PID + i as u64;
    for i in 0..kills {
        // Sizes vary, so "the biggest rows by rss" means something.
        let rss = 1000 + (i as u64 * 7919) % 50_000;
        out.push(
            6,
            &format!(
                "[{:>7}]     0 {:>5}  {:>7}  {:>7} {:>8}        0          1000 worker",
                pid(i),
                pid(i),
                rss + 2000,
                rss,
                61440
            ),
        );
    }
    let summary = messages
        .iter()
        .find(|m| m.starts_with("oom-kill:"))
        .expect("the summary");
    let summary = summary.replace("task=bash,pid=7788", &format!("task=worker,pid={}", pid(0)));
    out.push(6, &summary);
    let kill = |i: usize| {
        format!(
            "Memory cgroup out of memory: Killed process {} (worker) total-vm:11464kB, anon-rss:1156kB, file-rss:3900kB, shmem-rss:0kB, UID:0 pgtables:60kB oom_score_adj:1000",
            pid(i)
        )
    };
    out.push(3, &kill(0));
    let group = messages
        .iter()
        .find(|m| m.starts_with("Tasks in "))
        .expect("the memory.oom.group line");
    out.push(6, group);
    for i in 1..kills {
        out.push(3, &kill(i));
    }
    out.text
}

/// A global OOM whose task table has `rows` rows (pids [`FIRST_PID`]..; the victim, pid 116,
/// among them), records numbered from `first_seq`, the first at `start_us`.
pub fn global_oom(rows: usize, first_seq: u64, start_us: u64) -> String {
    let real = std::fs::read_to_string(fixture("022-qemu611-global-rssanon-cpu-uid-dmesg.log"))
        .expect("the 022 report");
    // `[   30.745678] message`: the dmesg prefix goes, the message stays.
    let messages: Vec<&str> = real
        .lines()
        .map(|l| l.split_once("] ").expect("a dmesg line").1)
        .collect();
    let mut out = Records {
        text: String::new(),
        seq: first_seq,
        us: start_us,
    };
    let mut in_table = false;
    for m in messages {
        if m.starts_with("[  pid  ]") {
            out.push(6, m);
            for i in 0..rows {
                let rss = 100 + (i as u64 * 7919) % 1_000_000;
                out.push(
                    6,
                    &format!(
                        "[{:>7}]  1000 {:>5}  {:>7}  {:>7}  {:>7}      {:>3}         0     {:>10}        0             0 process-{i:05}",
                        FIRST_PID + i as u64,
                        FIRST_PID + i as u64,
                        rss * 3,
                        rss,
                        rss - 50,
                        50,
                        rss * 16,
                    ),
                );
            }
            in_table = true;
            continue;
        }
        // The real rows: the victim's stays, the others are replaced by the grown table.
        if in_table && m.starts_with('[') && !m.contains(" 116]") {
            continue;
        }
        out.push(if m.contains("Killed process") { 3 } else { 6 }, m);
    }
    out.text
}
