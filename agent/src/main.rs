//! `fleet-agent`: parses flags and the config file, then runs [`fleet_agent::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use fleet_agent::config::{FileConfig, Flags, Settings};

/// Fleet's per-host agent: samples sar activities and streams them to the collector.
#[derive(Debug, Parser)]
#[command(name = "fleet-agent", version)]
struct Cli {
    /// Collector URL: https://HOST:PORT (or http:// with --insecure).
    #[arg(long)]
    collector: Option<String>,
    /// Directory for the spool and other state that must survive restarts.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Host id (default: /etc/machine-id).
    #[arg(long)]
    host_id: Option<String>,
    /// Hostname to report (default: the kernel's).
    #[arg(long)]
    hostname: Option<String>,
    /// Cluster this host belongs to (default: "default").
    #[arg(long)]
    cluster: Option<String>,
    /// A label KEY=VALUE; repeatable.
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// Sampling interval, 1s to 1h (default 10s).
    #[arg(long)]
    interval: Option<String>,
    /// Root of the proc filesystem (for tests and containers).
    #[arg(long)]
    proc_root: Option<PathBuf>,
    /// Root of the sys filesystem.
    #[arg(long)]
    sys_root: Option<PathBuf>,
    /// Allow a plaintext http:// collector (local demos and tests only).
    #[arg(long)]
    insecure: bool,
    /// CA certificate (PEM) that signed the collector's certificate.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Upper bound of the on-disk spool in MiB (default 64); oldest samples go first when full.
    #[arg(long)]
    spool_max_mib: Option<u64>,
    /// Kernel log to watch for OOM kills (default /dev/kmsg).
    #[arg(long, conflicts_with = "no_kmsg")]
    kmsg_path: Option<PathBuf>,
    /// Do not read the kernel log (no OOM events); `kmsg_path = ""` in the config file.
    #[arg(long)]
    no_kmsg: bool,
    /// How many processes top-oom reports each interval (default 10; 0 turns it off).
    #[arg(long)]
    top_oom_limit: Option<usize>,
    /// An NTP server HOST:PORT to measure; repeatable (default: chrony's, ntpd's or timesyncd's).
    #[arg(long = "ntp-server", value_name = "HOST:PORT")]
    ntp_servers: Vec<String>,
    /// TOML config file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only check the config file and flags and that the files they name can be read: print
    /// "config OK" (exit 0) or the error naming the field (exit 2), and start nothing.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Prints one JSON object per OOM kill found in a kernel log (a file, or - for stdin).
    ParseKmsg {
        /// Input form: auto, kmsg (/dev/kmsg records), dmesg, or syslog (also journal text).
        #[arg(long, default_value = "auto")]
        format: fleet_agent::sources::kmsg::InputFormat,
        /// The log file, or - for standard input.
        file: PathBuf,
    },
}

fn parse_kmsg(
    format: fleet_agent::sources::kmsg::InputFormat,
    file: &std::path::Path,
) -> anyhow::Result<u64> {
    let stdout = std::io::stdout().lock();
    let out = std::io::BufWriter::new(stdout);
    if file.as_os_str() == "-" {
        let stdin = std::io::stdin().lock();
        Ok(fleet_agent::sources::kmsg::parse_kmsg_cli(
            format, stdin, out,
        )?)
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        Ok(fleet_agent::sources::kmsg::parse_kmsg_cli(
            format,
            std::io::BufReader::with_capacity(1 << 20, f),
            out,
        )?)
    }
}

fn settings(cli: Cli) -> anyhow::Result<Settings> {
    let file = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            FileConfig::parse(&text, &path.display().to_string())?
        }
        None => FileConfig::default(),
    };
    let flags = Flags {
        collector: cli.collector,
        state_dir: cli.state_dir,
        host_id: cli.host_id,
        hostname: cli.hostname,
        cluster: cli.cluster,
        labels: cli.labels,
        interval: cli.interval,
        proc_root: cli.proc_root,
        sys_root: cli.sys_root,
        insecure: cli.insecure,
        tls_ca: cli.tls_ca,
        tls_cert: cli.tls_cert,
        tls_key: cli.tls_key,
        spool_max_mib: cli.spool_max_mib,
        kmsg_path: if cli.no_kmsg {
            Some(PathBuf::new())
        } else {
            cli.kmsg_path
        },
        top_oom_limit: cli.top_oom_limit,
        ntp_servers: cli.ntp_servers,
    };
    Ok(Settings::resolve(file, flags)?)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutdown requested; flushing");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ParseKmsg { format, file }) = &cli.command {
        return match parse_kmsg(*format, file) {
            Ok(_) => ExitCode::SUCCESS,
            // `parse-kmsg ... | head` is not an error.
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
            {
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fleet-agent parse-kmsg: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let check_only = cli.check_config;
    let settings = match settings(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fleet-agent: {e:#}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        return match fleet_agent::check_config(&settings) {
            Ok(()) => {
                println!("config OK");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fleet-agent: {e}");
                ExitCode::from(2)
            }
        };
    }
    // One thread: the agent's work is a few file reads per interval; no worker pool needed.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fleet-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fleet_agent::run(settings, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
