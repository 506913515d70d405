//! A top-oom scan allocates only what survives into the ranking it returns: nothing per
//! process scanned. One test in this binary, so the counting allocator sees nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use fleet_agent::sources::topoom::TopOomScanner;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarding the caller's layout to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`/`dealloc`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Allocations of one warm scan (the third), and the number of processes it saw.
fn allocs_per_scan(root: &Path, limit: usize) -> (u64, u64, usize) {
    let mut s = TopOomScanner::new(root, limit);
    for _ in 0..2 {
        drop(s.scan().expect("scan"));
    }
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let out = s.scan().expect("scan");
    let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    (allocs, s.last_stats().processes, out.len())
}

#[test]
fn a_scan_allocates_per_ranked_entry_not_per_process() {
    // 2000 fake processes whose scores rise with the pid, so that the listing order (which
    // the filesystem chooses) pushes many keys into the heap and out again.
    let tmp = tempfile::tempdir().unwrap();
    for pid in 1..=2000u32 {
        let dir = tmp.path().join(pid.to_string());
        std::fs::create_dir(&dir).unwrap();
        let files: [(&str, String); 6] = [
            ("oom_score", format!("{}\n", pid / 3)),
            ("oom_score_adj", "0\n".into()),
            ("statm", format!("100 {} 0 0 0 0 0\n", pid % 7 + 1)),
            ("status", "Name:\tp\nUid:\t1\t1\t1\t1\n".into()),
            ("comm", format!("proc-{pid}\n")),
            ("cmdline", format!("/usr/bin/proc\0--id\0{pid}\0")),
        ];
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
    }
    let limit = 10;
    let (allocs, processes, ranked) = allocs_per_scan(tmp.path(), limit);
    eprintln!("fixture: {allocs} allocations for {processes} processes, {ranked} ranked");
    assert_eq!((processes, ranked), (2000, limit));
    // The winners' keys, the returned vector, and per ranked entry its two strings (and at most
    // as many again for growth): nothing for the 1990 processes that did not make it.
    let bound = 2 + 4 * limit as u64;
    assert!(allocs <= bound, "{allocs} allocations, more than {bound}");

    let (allocs, processes, ranked) = allocs_per_scan(Path::new("/proc"), limit);
    eprintln!("/proc: {allocs} allocations for {processes} processes, {ranked} ranked");
    assert!(allocs <= 2 + 4 * ranked as u64, "{allocs} allocations");
}
