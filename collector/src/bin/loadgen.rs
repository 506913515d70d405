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
use fleet_proto::schema::ACTIVITIES;
use fleet_proto::v1::{
    agent_message, collector_message, ingest_client::IngestClient, Activity, AgentMessage, Batch,
    Hello, HostIdentity, Record, Sample,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

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
    /// Collector process id, to report values per CPU-second.
    #[arg(long)]
    collector_pid: Option<u32>,
}

/// A tiny xorshift generator: deterministic, no allocation.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A sar-like sample: random walks for busy columns, constants and zeros for the rest.
struct Shape {
    records: Vec<Record>,
    rng: Rng,
}

impl Shape {
    fn new(seed: u64) -> Shape {
        let mut records = Vec::new();
        let mut add = |activity: Activity, instance: &str| {
            let schema = ACTIVITIES
                .iter()
                .find(|s| s.activity == activity)
                .expect("schema");
            records.push(Record {
                activity: activity as i32,
                instance: instance.to_string(),
                values: vec![0.0; schema.columns.len()],
            });
        };
        for cpu in ["all", "0", "1", "2", "3"] {
            add(Activity::Cpu, cpu);
        }
        for a in [
            Activity::Memory,
            Activity::Swap,
            Activity::Swapping,
            Activity::Paging,
            Activity::Io,
            Activity::Load,
            Activity::PsiCpu,
            Activity::PsiIo,
            Activity::PsiMem,
        ] {
            add(a, "-");
        }
        for d in ["sda", "sdb"] {
            add(Activity::Disk, d);
        }
        for i in ["lo", "eth0", "eth1"] {
            add(Activity::NetDev, i);
            add(Activity::NetEdev, i);
        }
        let mut s = Shape {
            records,
            rng: Rng(seed | 1),
        };
        for r in &mut s.records {
            for v in &mut r.values {
                *v = (s.rng.next() * 1000.0).round();
            }
        }
        s
    }

    fn values(&self) -> u64 {
        self.records.iter().map(|r| r.values.len() as u64).sum()
    }

    fn step(&mut self) -> Vec<Record> {
        for r in &mut self.records {
            let busy = matches!(
                Activity::try_from(r.activity),
                Ok(Activity::Cpu | Activity::Memory | Activity::Paging | Activity::Load)
            ) || r.instance == "eth0";
            for (i, v) in r.values.iter_mut().enumerate() {
                if busy && i % 2 == 0 {
                    *v = (*v + (self.rng.next() - 0.5) * 20.0).max(0.0);
                    *v = (*v * 100.0).round() / 100.0;
                } else if !busy {
                    *v = 0.0;
                }
            }
        }
        self.records.clone()
    }
}

async fn agent(
    url: String,
    n: usize,
    window: u64,
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
        })),
    })
    .await?;
    let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
    let mut shape = Shape::new(n as u64 * 7919 + 1);
    let per_batch = shape.values();
    let t0 = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64 - 86_400_000;
    let (mut sent, mut acked) = (0u64, 0u64);
    loop {
        while sent - acked < window && Instant::now() < until {
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
