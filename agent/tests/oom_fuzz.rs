//! A bounded, seeded mutation fuzzer for the OOM parser that runs on stable in `cargo test`
//! (cargo-fuzz needs nightly; its target is agent/fuzz/fuzz_targets/parse_kmsg.rs).
//!
//! Each iteration takes one or two fixtures, applies a handful of byte and line mutations
//! (flips, kernel-ish tokens, cut lines, duplicated/dropped/swapped lines, lines spliced from
//! another report, huge numbers, invalid UTF-8), and runs the result through every input form
//! and, record by record, through `parse_kmsg_record`. It asserts: no panic, one JSON object
//! per output line, the count returned equals the lines written, bounded raw lines and task
//! rows, and a victim only on a kill, where a kill line (or a selection line) of the same event
//! names it.
//!
//! `FLEET_FUZZ_ITERS` and `FLEET_FUZZ_SEED` change the run (default 3000 iterations, seed 1).

use std::path::Path;

use fleet_agent::sources::kmsg::{
    parse_kmsg_cli, parse_kmsg_record, EventKind, InputFormat, OomAssembler, OomEvent,
    MAX_RAW_LINES, MAX_TASK_ROWS,
};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "Killed process ",
    "Out of memory: Killed process 1 (",
    "Memory cgroup out of memory: Kill process ",
    " invoked oom-killer: gfp_mask=0x",
    "oom-killer: gfp_mask=",
    "oom-kill:constraint=CONSTRAINT_MEMCG,",
    ",task_memcg=",
    ",oom_memcg=",
    ",pid=",
    "[  pid  ]   uid  tgid total_vm      rss name",
    "[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name",
    "Tasks in /x are going to be killed due to memory.oom.group set",
    "Task in /a killed as a result of limit of /b",
    "oom_reaper: reaped process ",
    "Memory cgroup out of memory: OOM victim ",
    ") is already exiting. Skip killing the task",
    "2023-12-04T10:49:30.122Z In(05) vcpu-5 - Guest: <4>",
    "2020-06-17T09:24:58.187Z| vcpu-0| I125: Guest: ",
    "172.16.1.110: kern: warning: [2024-07-16T19:11:36.10466434Z]: ",
    "daemon:info  : ",
    "<30>",
    "Kernel panic - not syncing: Out of memory",
    "oom_kill_process: 3 callbacks suppressed",
    "Mem-Info:",
    "CPU: 0 PID: ",
    " Comm: ",
    "total-vm:",
    "kB, ",
    "UID ",
    "\\x0a",
    "#012",
    "99999999999999999999999",
    "-9223372036854775808",
    "6,1,2,-;",
    "14,3,4,-;",
    " SUBSYSTEM=x",
    "[   12.345678] ",
    "[Tue Nov 25 22:00:01 2026] ",
    "Nov 25 22:00:01 host kernel: ",
    "<4>1 2026-11-25T22:00:01Z h kernel - - - ",
    "(",
    ")",
    ",",
    ":",
    ";",
    "\n",
    " ",
];

fn fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oom");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".log") || name.ends_with(".kmsg") {
            out.push(std::fs::read(&path).unwrap());
        }
    }
    out.sort();
    assert!(out.len() >= 20, "fixtures not found");
    out
}

fn lines(data: &[u8]) -> Vec<Vec<u8>> {
    data.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn join(ls: &[Vec<u8>]) -> Vec<u8> {
    ls.join(&b'\n')
}

fn mutate(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..1 + rng.below(6) {
        match rng.below(11) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(d.len() + 1);
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                d.splice(i..i, t.iter().copied());
            }
            2 if !d.is_empty() => {
                let i = rng.below(d.len());
                let n = rng.below(64).min(d.len() - i);
                d.drain(i..i + n);
            }
            3 => d.truncate(rng.below(d.len() + 1)),
            4 => {
                let mut ls = lines(&d);
                if !ls.is_empty() {
                    let i = rng.below(ls.len());
                    let l = ls[i].clone();
                    ls.insert(i, l);
                }
                d = join(&ls);
            }
            5 => {
                let mut ls = lines(&d);
                if !ls.is_empty() {
                    ls.remove(rng.below(ls.len()));
                }
                d = join(&ls);
            }
            6 => {
                let mut ls = lines(&d);
                if ls.len() > 1 {
                    let (a, b) = (rng.below(ls.len()), rng.below(ls.len()));
                    ls.swap(a, b);
                }
                d = join(&ls);
            }
            7 => {
                let theirs = lines(other);
                let mut ls = lines(&d);
                let at = rng.below(ls.len() + 1);
                let from = rng.below(theirs.len());
                let n = rng.below(40).min(theirs.len() - from);
                for (k, l) in theirs[from..from + n].iter().enumerate() {
                    ls.insert(at + k, l.clone());
                }
                d = join(&ls);
            }
            8 => {
                // Cut one line in the middle (a truncated record).
                let mut ls = lines(&d);
                if !ls.is_empty() {
                    let i = rng.below(ls.len());
                    let n = rng.below(ls[i].len() + 1);
                    ls[i].truncate(n);
                }
                d = join(&ls);
            }
            9 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = [0xff, 0xc3, 0x80, 0x00][rng.below(4)];
            }
            _ => {
                let i = rng.below(d.len() + 1);
                let n = rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                d.splice(i..i, bytes);
            }
        }
    }
    d
}

fn check_event(e: &OomEvent, input: &[u8]) {
    assert!(e.raw.len() <= MAX_RAW_LINES + 1, "raw unbounded");
    assert!(e.tasks.len() <= MAX_TASK_ROWS, "tasks unbounded");
    assert_eq!(
        e.victim_pid.is_some(),
        e.kind == EventKind::Kill,
        "a kill names its victim, nothing else does: {e:?}"
    );
    if let Some(pid) = e.victim_pid {
        // A kill line, or a selection line or summary that no kill line followed.
        let kill = format!("illed process {pid}");
        let selection = format!("ill process {pid} (");
        let summary = format!(",pid={pid}");
        assert!(
            e.raw.iter().any(|l| l.contains(&kill)
                || l.contains(&selection)
                || l.split(&summary)
                    .skip(1)
                    .any(|rest| rest.is_empty() || rest.starts_with(','))),
            "victim {pid} without its kill line in raw {:?}\ninput:\n{}",
            e.raw,
            String::from_utf8_lossy(input)
        );
    }
}

fn run_one(input: &[u8]) {
    for format in [
        InputFormat::Auto,
        InputFormat::Kmsg,
        InputFormat::Dmesg,
        InputFormat::Syslog,
    ] {
        let mut out = Vec::new();
        let n = parse_kmsg_cli(format, input, &mut out).unwrap();
        let text = std::str::from_utf8(&out).expect("output is UTF-8");
        let mut count = 0;
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            assert!(v.is_object());
            count += 1;
        }
        assert_eq!(count, n);
    }
    let mut asm = OomAssembler::new();
    for rec in input.split(|&b| b == b'\n') {
        if let Some(l) = parse_kmsg_record(rec) {
            for e in asm.push(l) {
                check_event(&e, input);
            }
        }
    }
    for e in asm.finish() {
        check_event(&e, input);
    }
    let text = String::from_utf8_lossy(input);
    for format in [InputFormat::Auto, InputFormat::Dmesg, InputFormat::Syslog] {
        for e in fleet_agent::sources::kmsg::parse_text(format, &text) {
            check_event(&e, input);
        }
    }
}

#[test]
fn mutated_fixtures_never_panic_nor_invent_a_victim() {
    let iters: usize = std::env::var("FLEET_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("FLEET_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let corpus = fixtures();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for _ in 0..iters {
        let a = &corpus[rng.below(corpus.len())];
        let b = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, a, b);
        run_one(&input);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0xDEAD_BEEF);
    for _ in 0..500 {
        let n = rng.below(2048);
        let input: Vec<u8> = (0..n)
            .map(|_| {
                // Biased towards the bytes the formats are made of.
                let pick = b"0123456789,;[]() :.-\nkKx=";
                if rng.below(3) == 0 {
                    rng.next() as u8
                } else {
                    pick[rng.below(pick.len())]
                }
            })
            .collect();
        run_one(&input);
    }
}
