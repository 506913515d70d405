//! `fleet-fake-ntp`: a fake NTP server for Fleet's tests. It answers NTP client requests with
//! its own clock shifted by `--offset-ms`, or as unsynchronised (`--leap 3`, `--stratum 16`),
//! or with a kiss-o'-death (`--kod RATE`), and re-reads `--control-file` on every request so a
//! test can change it while it runs (`offset_ms=0`, `leap=3`, `kod=`, ...; see
//! `fleet_agent::sources::ntp::fake`).
//!
//! ```text
//! fleet-fake-ntp --listen 127.0.0.1:0 --offset-ms 250 [--stratum 2] [--leap 0|3] [--kod RATE]
//!                [--spoof never|first|only] [--control-file F]
//! ```
//!
//! The first line on stdout is `listening on ADDR`; it then serves until killed.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Parser;
use fleet_agent::sources::ntp::fake::{self, FakeConfig};

#[derive(Debug, Parser)]
#[command(name = "fleet-fake-ntp", about = "A fake NTP server for tests")]
struct Args {
    /// Address to listen on (UDP).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// How far ahead of the real clock the served clock is, in milliseconds (negative: behind).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    offset_ms: f64,
    /// Stratum to announce (16: unsynchronised).
    #[arg(long, default_value_t = 2)]
    stratum: u8,
    /// Leap indicator to announce (3: unsynchronised).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3))]
    leap: u8,
    /// Answer with a kiss-o'-death carrying this code (RATE, DENY, RSTR...).
    #[arg(long, value_parser = parse_kod)]
    kod: Option<String>,
    /// Send a reply with a wrong origin timestamp first (`first`) or only (`only`).
    #[arg(long, default_value = "never", value_parser = parse_spoof)]
    spoof: fake::Spoof,
    /// A `key=value` file re-read on every request; its settings override the flags.
    #[arg(long)]
    control_file: Option<PathBuf>,
}

fn parse_kod(v: &str) -> Result<String, String> {
    fake::parse_kod(v)?.ok_or_else(|| "empty kiss code".to_string())
}

fn parse_spoof(v: &str) -> Result<fake::Spoof, String> {
    fake::parse_spoof(v).ok_or_else(|| format!("want never, first or only: {v:?}"))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = FakeConfig {
        offset_ms: args.offset_ms,
        stratum: args.stratum,
        leap: args.leap,
        kod: args.kod,
        spoof: args.spoof,
        control_file: args.control_file,
    };
    let socket = UdpSocket::bind(args.listen).with_context(|| format!("bind {}", args.listen))?;
    let addr = socket.local_addr().context("local address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    let never = AtomicBool::new(false);
    fake::serve(&socket, &config, &never).with_context(|| format!("serve on {addr}"))
}
