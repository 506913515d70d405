//! `fleet-loadgen`: simulates many agents streaming to a running collector, to measure ingest.
//!
//! ```sh
//! fleet-loadgen --collector http://127.0.0.1:7070 --agents 300 --seconds 30 --collector-pid PID
//! ```
//!
//! Each simulated agent opens its own `Ingest.Session` stream, says Hello, and sends batches of
//! one sar-like sample (about 150 values: per-CPU, memory, paging, disks, interfaces...) with
//! random-walk values, as fast as the collector acknowledges them (up to 64 in flight). Sample
//! times start a day back and advance one second per batch, so the data looks like a 1 s agent.
//! It prints acknowledged values per second, and with `--collector-pid`, values per second of
//! collector CPU time (utime + stime from /proc/PID/stat).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use fleet_proto::v1::{
    agent_message, collector_message, ingest_client::IngestClient, AgentMessage, Batch, Hello,
    HostIdentity, Sample,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[path = "loadgen/shape.rs"]
mod shape;
use shape::Shape;

#[derive(Debug, Parser)]
#[command(name = "fleet-loadgen")]
struct Cli {
    /// Collector URL (plaintext http://).
    #[arg(long)]
    collector: String,
    /// Simulated agents, each with its own stream.
    #[arg(long, default_value_t = 300)]
    agents: usize,
    /// How long to send.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Batches in flight per agent.
    #[arg(long, default_value_t = 64)]
    window: u64,
    /// How long the collector may hold Acks back (Hello.ack_delay_ms), as fleet-agent asks.
    #[arg(long, default_value_t = 2000)]
    ack_delay_ms: u32,
    /// Collector process id, to report values per CPU-second.
    #[arg(long)]
    collector_pid: Option<u32>,
}

async fn agent(
    url: String,
    n: usize,
    window: u64,
    ack_delay_ms: u32,
    until: Instant,
    acked_values: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut client = IngestClient::connect(url)
        .await
        .context("connect")?
        .max_decoding_message_size(fleet_proto::limits::MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel(window as usize + 1);
    let epoch = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64 ^ n as u64;
    tx.send(AgentMessage {
        msg: Some(agent_message::Msg::Hello(Hello {
            identity: Some(HostIdentity {
                host_id: format!("loadgen-{n:05}"),
                hostname: format!("loadgen-{n:05}"),
                cluster: "loadgen".into(),
                kernel: "6.1.0".into(),
                agent_version: "loadgen".into(),
                ..Default::default()
            }),
            spool_epoch: epoch,
            ack_delay_ms,
        })),
    })
    .await?;
    let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
    let mut shape = Shape::new(n as u64 * 7919 + 1);
    let per_batch = shape.values();
    let t0 = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64 - 86_400_000;
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut tx = Some(tx);
    loop {
        while let Some(tx) = tx
            .as_ref()
            .filter(|_| sent - acked < window && Instant::now() < until)
        {
            sent += 1;
            let batch = Batch {
                seq: sent,
                samples: vec![Sample {
                    time_ms: t0 + sent as i64 * 1000,
                    interval_ms: 1000,
                    records: shape.step(),
                    top_oom: Vec::new(),
                    clock: None,
                }],
                ..Batch::default()
            };
            tx.send(AgentMessage {
                msg: Some(agent_message::Msg::Batch(batch)),
            })
            .await?;
        }
        if acked == sent {
            return Ok(());
        }
        if Instant::now() >= until {
            // All sent: ending this side makes the collector send the Acks it holds back.
            tx = None;
        }
        match inbound.message().await? {
            Some(m) => {
                if let Some(collector_message::Msg::Ack(a)) = m.msg {
                    if a.seq > acked {
                        acked_values.fetch_add((a.seq - acked) * per_batch, Ordering::Relaxed);
                        acked = a.seq;
                    }
                }
            }
            None => anyhow::bail!("stream closed"),
        }
    }
}

fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf(_SC_CLK_TCK) only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let acked = Arc::new(AtomicU64::new(0));
    let cpu0 = cli.collector_pid.and_then(cpu_seconds);
    let start = Instant::now();
    let until = start + Duration::from_secs(cli.seconds);
    let mut tasks = Vec::new();
    for n in 0..cli.agents {
        tasks.push(tokio::spawn(agent(
            cli.collector.clone(),
            n,
            cli.window,
            cli.ack_delay_ms,
            until,
            acked.clone(),
        )));
    }
    let mut failed = 0;
    for t in tasks {
        if let Err(e) = t.await? {
            failed += 1;
            eprintln!("agent failed: {e:#}");
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let values = acked.load(Ordering::Relaxed);
    println!(
        "{} agents, {:.1} s: {} values acknowledged, {:.0} values/s{}",
        cli.agents,
        wall,
        values,
        values as f64 / wall,
        if failed > 0 {
            format!(", {failed} agents failed")
        } else {
            String::new()
        }
    );
    if let (Some(pid), Some(c0)) = (cli.collector_pid, cpu0) {
        if let Some(c1) = cpu_seconds(pid) {
            let cpu = c1 - c0;
            println!(
                "collector CPU: {cpu:.1} s ({:.2} cores busy): {:.0} values per CPU-second",
                cpu / wall,
                values as f64 / cpu
            );
        }
    }
    Ok(())
}
