//! `fleet-collector`: parses flags and the config file, opens the store, binds and serves.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use fleet_collector::config::{FileConfig, Flags, Settings};
use fleet_collector::server::{self, ServeOptions};
use fleet_collector::storage::{Store, StoreOptions};

/// Fleet's central service: receives agent streams, stores them in RocksDB, answers fleetctl.
#[derive(Debug, Parser)]
#[command(name = "fleet-collector", version)]
struct Cli {
    /// Address to listen on, e.g. 0.0.0.0:7443 (port 0 picks a free port, printed at start).
    #[arg(long)]
    listen: Option<String>,
    /// RocksDB data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Serve plaintext gRPC (local demos and tests only).
    #[arg(long)]
    insecure: bool,
    /// Server certificate chain (PEM).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// Server key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// The fleet's CA (PEM): clients must present a certificate it signed (mutual TLS).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// How long samples are kept (default 30d).
    #[arg(long)]
    retention: Option<String>,
    /// Alert rules file (TOML); reloaded on SIGHUP. Without it no rule is evaluated.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Prometheus Alertmanager URL (http://HOST:PORT) that receives alerts (v2 API).
    #[arg(long)]
    alertmanager: Option<String>,
    /// URL that receives every alert change as a JSON POST.
    #[arg(long)]
    webhook: Option<String>,
    /// CA (PEM) that an https Alertmanager's or webhook's certificate must chain to (default:
    /// the system's bundle, /etc/ssl/certs/ca-certificates.crt).
    #[arg(long)]
    notify_ca: Option<PathBuf>,
    /// TOML config file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only check the config file and flags, that the files they name can be read and that the
    /// rules file is valid: print "config OK" (exit 0) or the error naming the field (exit 2).
    #[arg(long)]
    check_config: bool,
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
    Ok(Settings::resolve(
        file,
        Flags {
            listen: cli.listen,
            data_dir: cli.data_dir,
            insecure: cli.insecure,
            tls_cert: cli.tls_cert,
            tls_key: cli.tls_key,
            tls_ca: cli.tls_ca,
            retention: cli.retention,
            rules: cli.rules,
            alertmanager: cli.alertmanager,
            webhook: cli.webhook,
            notify_ca: cli.notify_ca,
        },
    )?)
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
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let tls = match &settings.tls {
        Some((cert, key)) => Some(fleet_collector::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: settings.tls_ca.clone(),
        }),
        None => {
            tracing::warn!("serving plaintext gRPC (--insecure): anyone who can reach the port can send and read data");
            None
        }
    };
    let store = Arc::new(
        Store::open(
            &settings.data_dir,
            StoreOptions {
                retention: settings.retention,
                ..StoreOptions::default()
            },
        )
        .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?,
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    // Tests and scripts read the bound address from this line when they pass port 0.
    println!("listening on {}", listener.local_addr()?);
    server::run(
        listener,
        store,
        ServeOptions {
            tls,
            max_agents: settings.max_agents,
            seal_every: settings.seal_every,
            rules: settings.rules.clone().map(|file| server::RulesOptions {
                file,
                alertmanager: settings.alertmanager.clone(),
                webhook: settings.webhook.clone(),
                notify_ca: settings.notify_ca.clone(),
            }),
        },
        shutdown_signal(),
    )
    .await
}

/// `--check-config`, after the settings resolved: the files they name, and the rules.
fn check_config(settings: &Settings) -> ExitCode {
    let rules = settings.rules.as_deref().map(server::load_rules);
    match (settings.check_files(), rules) {
        (Err(e), _) => eprintln!("fleet-collector: {e}"),
        (Ok(()), Some(Err(e))) => eprintln!("fleet-collector: rules: {e}"),
        (Ok(()), _) => {
            println!("config OK");
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::from(2)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let check_only = cli.check_config;
    let settings = match settings(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fleet-collector: {e:#}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        return check_config(&settings);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fleet-collector: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet-collector: {e:#}");
            ExitCode::FAILURE
        }
    }
}
