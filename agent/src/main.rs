//! `fleet-agent`: ignores SIGHUP before any other code runs, until its main loop handles it;
//! parses flags and the config file, then runs [`fleet_agent::run`].

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use fleet_agent::cli::{self, Command, Parsed};
use fleet_agent::config;

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

/// SIGHUP is ignored from before any library or Rust code runs until the main loop installs its
/// handler (tokio's replaces this disposition, and stays for the life of the process): a SIGHUP
/// in the first milliseconds (Ansible's restart-then-reload on a first run) would otherwise kill
/// the agent, and `main` is too late to prevent it on a busy host. An executable's
/// `.preinit_array` runs as soon as the dynamic loader has relocated everything. A SIGHUP
/// ignored this early asks for nothing: the agent reads its TLS files at every connection.
#[used]
#[link_section = ".preinit_array"]
static IGNORE_EARLY_SIGHUP: extern "C" fn() = ignore_early_sighup;

extern "C" fn ignore_early_sighup() {
    set_sighup(libc::SIG_IGN);
}

fn set_sighup(action: libc::sighandler_t) {
    // SAFETY: sigaction(2) with SIG_IGN or SIG_DFL touches no memory of this process; it runs
    // before any thread or handler exists (and for SIG_DFL, before parse-kmsg starts any).
    unsafe {
        libc::signal(libc::SIGHUP, action);
    }
}

fn release_policies(settings: &config::Settings) -> ExitCode {
    match fleet_agent::release_policies(settings) {
        Ok(r) => {
            println!(
                "released {} polic{}: {} process{} given back the original oom_score_adj, {} failed",
                r.policies.len(),
                if r.policies.len() == 1 { "y" } else { "ies" },
                r.restored,
                if r.restored == 1 { "" } else { "es" },
                r.failed.len()
            );
            for (pid, why) in &r.failed {
                eprintln!("fleet-agent release-policies: pid {pid}: {why}");
            }
            if r.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("fleet-agent release-policies: {e}");
            ExitCode::from(2)
        }
    }
}

/// Logs to standard error, filtered by `RUST_LOG` (`target=level` directives, e.g.
/// `debug,h2=warn`; default `info,h2=warn,tower=warn,hyper=warn`). The filter is
/// [`tracing_subscriber::filter::Targets`], not `EnvFilter`: the same directives without span and
/// field filters, parsed without compiling regular expressions, so a start-up does not pull the
/// regex compiler's code into the agent's resident memory (a policy's cmdline pattern still may).
fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    const DEFAULT: &str = "info,h2=warn,tower=warn,hyper=warn";
    let given = std::env::var("RUST_LOG")
        .ok()
        .filter(|spec| !spec.is_empty());
    let filter: Targets = given
        .and_then(|spec| {
            spec.parse()
                .map_err(|e| {
                    eprintln!(
                        "fleet-agent: RUST_LOG={spec:?} is not a log filter ({e}); using {DEFAULT}"
                    )
                })
                .ok()
        })
        .unwrap_or_else(|| DEFAULT.parse().expect("the default filter parses"));
    tracing_subscriber::fmt()
        // The builder's own maximum (info) would sit under the filter: let the filter decide.
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .finish()
        .with(filter)
        .init();
}

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(cli)) => *cli,
        Ok(Parsed::Help(text) | Parsed::Version(text)) => {
            // `fleet-agent --help | head -1` is not an error either.
            let _ = writeln!(std::io::stdout(), "{}", text.trim_end());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(2);
        }
    };
    if let Some(Command::ParseKmsg { format, file }) = &cli.command {
        // A command-line tool: a hang-up ends it as it ends any other.
        set_sighup(libc::SIG_DFL);
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
    init_logging();
    let settings = match config::load(cli.options, cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fleet-agent: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::ReleasePolicies) = cli.command {
        return release_policies(&settings);
    }
    if cli.check_config {
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
