//! `fleet-record-samples`: records this machine's real sar samples, as the agent computes them,
//! into a text file the store benchmark replays (`collector/benches/store.rs`,
//! `scripts/bench-store`).
//!
//! ```text
//! fleet-record-samples --out FILE [--seconds 3900] [--interval-ms 1000] [--proc-root /proc]
//! ```
//!
//! One line per record: `time_ms interval_ms activity instance value...` (the activity as its
//! `fleet.v1.Activity` number, values as Rust prints an `f64`: the shortest text that reads back
//! to the same bits). A sample's records share its time and interval. The file is written as
//! it goes, so a recording cut short is still usable.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use fleet_agent::sources::procfs::Sampler;

#[derive(Debug, Parser)]
#[command(
    name = "fleet-record-samples",
    about = "Record this machine's sar samples"
)]
struct Args {
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// How long to record.
    #[arg(long, default_value_t = 3900)]
    seconds: u64,
    /// The sampling interval.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// The procfs root.
    #[arg(long, default_value = "/proc")]
    proc_root: PathBuf,
    /// The sysfs root.
    #[arg(long, default_value = "/sys")]
    sys_root: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut sampler = Sampler::new(&args.proc_root, &args.sys_root).context("sampler")?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("create {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let start = Instant::now();
    let mut next = start + interval;
    let mut samples = 0u64;
    while start.elapsed() < Duration::from_secs(args.seconds) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += interval;
        let time_ms = fleet_proto::clock::now_ms();
        let sample = match sampler.sample() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sampling failed: {e}");
                continue;
            }
        };
        for r in &sample.records {
            write!(
                out,
                "{time_ms} {} {} {}",
                sample.interval_ms, r.activity, r.instance
            )?;
            for v in &r.values {
                write!(out, " {v}")?;
            }
            writeln!(out)?;
        }
        samples += 1;
        if samples % 60 == 0 {
            out.flush()?;
        }
    }
    out.flush()?;
    eprintln!("recorded {samples} samples into {}", args.out.display());
    Ok(())
}
