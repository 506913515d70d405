//! `fleet-collector`: ignores SIGHUP before any other code runs, until the reload tasks handle it;
//! parses flags and the config file, opens the store, binds and serves.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use fleet_collector::config::{ConfigError, Options, Settings};
use fleet_collector::rules::{load_rules, RulesOptions};
use fleet_collector::server::{self, ServeOptions};
use fleet_collector::storage::{Store, StoreOptions};

/// mimalloc, not glibc's malloc: on ingest (`scripts/bench-ingest`) glibc's allocator took about
/// a third of the collector's CPU (a batch's samples, records and strings are allocated per
/// message and freed once written), mostly consolidating and unlinking free chunks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Fleet's central service: receives agent streams, stores them in RocksDB, answers fleetctl.
#[derive(Debug, Parser)]
#[command(name = "fleet-collector", version)]
struct Cli {
    #[command(flatten)]
    options: Options,
    /// TOML config file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only check the config file and flags, that the files they name can be read, that the TLS
    /// files (certificate, key, CA, CRL) load and that the rules file is valid: print "config
    /// OK" (exit 0) or the error naming the field (exit 2).
    #[arg(long)]
    check_config: bool,
}

fn settings(cli: Cli) -> Result<Settings, ConfigError> {
    let file = match &cli.config {
        Some(path) => Options::load(path)?,
        None => Options::default(),
    };
    Settings::resolve(file, cli.options)
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
    let tls = settings.tls_settings();
    if tls.is_none() {
        tracing::warn!("serving plaintext gRPC (--insecure): anyone who can reach the port can send and read data");
    }
    if settings.allow_unbound_cluster && tls.is_some() {
        tracing::warn!("allow_unbound_cluster: agent certificates bound to no cluster may join any cluster; reissue them with `fleetctl certs issue --cluster`");
    }
    let store = Arc::new(
        Store::open(
            &settings.data_dir,
            StoreOptions {
                retention: settings.retention,
                outbox_limit: settings.remote_write.as_ref().map(|rw| rw.queue_entries),
                ..StoreOptions::default()
            },
        )
        .with_context(|| format!("cannot open the store in {}", settings.data_dir.display()))?,
    );
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let metrics = match settings.metrics_listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} (metrics_listen)"))?,
        ),
        None => None,
    };
    // Tests and scripts read the bound address from this line when they pass port 0, and the
    // metrics port's from the next (a reader may have closed stdout by then: not an error).
    println!("listening on {}", listener.local_addr()?);
    if let Some(m) = &metrics {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "metrics on {}", m.local_addr()?);
        let _ = std::io::stdout().flush();
    }
    server::run(
        listener,
        store,
        ServeOptions {
            tls,
            max_agents: settings.max_agents,
            seal_every: settings.seal_every,
            max_future_skew: settings.max_future_skew,
            metrics: metrics.map(Arc::new),
            rules: settings.rules.clone().map(|file| RulesOptions {
                file,
                alertmanager: settings.alertmanager.clone(),
                webhook: settings.webhook.clone(),
                notify_ca: settings.notify_ca.clone(),
            }),
            remote_write: settings.remote_write.clone(),
        },
        shutdown_signal(),
    )
    .await
}

/// `--check-config`, after the settings resolved: the files they name, the TLS files as the
/// server reads them, and the rules.
fn check_config(settings: &Settings) -> ExitCode {
    let problem = match settings.check_files() {
        Err(e) => Some(e.to_string()),
        Ok(()) => settings
            .tls_settings()
            .and_then(|tls| fleet_collector::tls::check(&tls).err())
            .or_else(|| match settings.rules.as_deref().map(load_rules) {
                Some(Err(e)) => Some(format!("rules: {e}")),
                _ => None,
            }),
    };
    match problem {
        Some(e) => {
            eprintln!("fleet-collector: {e}");
            ExitCode::from(2)
        }
        None => {
            println!("config OK");
            ExitCode::SUCCESS
        }
    }
}

/// SIGHUP is ignored from before any library or Rust code runs until a reload task installs its
/// handler (tokio's replaces this disposition, and stays for the life of the process). Without
/// it a SIGHUP in the first milliseconds (Ansible's restart-then-reload on a first run) kills
/// the collector with a status systemd does not restart, and `main` is too late to prevent it:
/// the libraries' constructors (RocksDB, libstdc++) and Rust's start-up run before it, and on a
/// busy host take milliseconds. An executable's `.preinit_array` runs as soon as the dynamic
/// loader has relocated everything, before any constructor. A SIGHUP ignored this early asks
/// for nothing: the files a reload would read are read after it (the TLS reloader listens
/// before reading its files).
#[used]
#[link_section = ".preinit_array"]
static IGNORE_EARLY_SIGHUP: extern "C" fn() = ignore_early_sighup;

extern "C" fn ignore_early_sighup() {
    // SAFETY: sigaction(2) with SIG_IGN touches no memory of this process, and nothing else
    // runs yet: no thread, no handler to race with.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
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
            eprintln!("fleet-collector: {e}");
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
