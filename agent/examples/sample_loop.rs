//! Calls `Sampler::sample()` a fixed number of times, for instruction counts under callgrind
//! (`sample_cost.rs` measures time and allocations; this measures work, which does not depend on
//! what else the machine runs):
//!
//! ```sh
//! cargo build --release -p fleet-agent --example sample_loop
//! valgrind --tool=callgrind --toggle-collect='sample_loop::samples' \
//!     $CARGO_TARGET_DIR/release/examples/sample_loop [PROC_ROOT SYS_ROOT [N]]
//! ```
//!
//! Defaults: the fixture tree `agent/tests/fixtures/proc-1` (a fixed input, so the count is the
//! same from run to run), its `sys`, and 1000 samples. `--toggle-collect` counts only the
//! samples, not opening the files or the baseline reading.

use std::path::PathBuf;

use fleet_agent::sources::procfs::Sampler;

/// The measured loop; not inlined, so callgrind can name it.
#[inline(never)]
fn samples(s: &mut Sampler, n: u32) -> usize {
    let mut records = 0;
    for _ in 0..n {
        records += s.sample().expect("sample").records.len();
    }
    records
}

fn main() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut args = std::env::args_os().skip(1);
    let proc_root = args.next().map_or(fixtures.join("proc-1"), PathBuf::from);
    let sys_root = args.next().map_or(fixtures.join("sys"), PathBuf::from);
    let n: u32 = args
        .next()
        .map(|a| a.to_string_lossy().parse().expect("N: a number of samples"))
        .unwrap_or(1000);
    let mut s = Sampler::new(&proc_root, &sys_root).expect("sampler");
    let records = samples(&mut s, n);
    println!("{n} samples of {}: {records} records", proc_root.display());
}
