//! What one `Sampler::sample()` costs against this machine's real `/proc`: time, heap
//! allocations, and the sampler's own heap. Meaningful in release mode:
//!
//! ```sh
//! cargo test --release -p fleet-agent --test sample_cost -- --nocapture
//! ```
//!
//! In any mode it checks that the steady state allocates only the records it returns (the
//! read buffers and the readings are reused).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use fleet_agent::sources::procfs::Sampler;

/// Counts allocations and live heap bytes (this test binary has a single test, so nothing else
/// runs concurrently).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarding the caller's layout to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        // SAFETY: `p` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        // SAFETY: as for `alloc`/`dealloc`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn cost_of_one_sample() {
    const N: u32 = 1000;
    let live0 = LIVE.load(Ordering::Relaxed);
    let mut s = Sampler::new(Path::new("/proc"), Path::new("/sys")).expect("sampler");
    // Two warm-up samples: the spare reading grows to size.
    for _ in 0..2 {
        drop(s.sample().expect("sample"));
    }
    let heap = LIVE.load(Ordering::Relaxed) - live0;

    let allocs0 = ALLOCS.load(Ordering::Relaxed);
    let mut records = 0;
    let t = Instant::now();
    for _ in 0..N {
        let out = s.sample().expect("sample");
        records += out.records.len();
    }
    let elapsed = t.elapsed();
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs0;

    let per_sample_us = elapsed.as_secs_f64() * 1e6 / f64::from(N);
    let records_per_sample = records as f64 / f64::from(N);
    let allocs_per_sample = allocs as f64 / f64::from(N);
    eprintln!(
        "sample(): {per_sample_us:.1} us each ({:.4} % of a core at 1 s sampling), \
         {records_per_sample:.0} records, {allocs_per_sample:.2} allocations, \
         sampler heap {:.1} KiB",
        per_sample_us / 1e6 * 100.0,
        heap as f64 / 1024.0
    );

    // The output itself: one vector of records, and per record its instance and its values.
    // Reading and parsing add nothing (link speeds are re-read once a minute: a few paths).
    let output = 1.0 + 2.0 * records_per_sample;
    assert!(
        allocs_per_sample <= output + 1.0,
        "{allocs_per_sample} allocations per sample for {records_per_sample} records"
    );
    assert!(heap < 1 << 20, "sampler heap {heap} bytes");
}
