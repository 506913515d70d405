//! `fleetctl`, the operator's CLI for Fleet: asks a collector's `Query` and `Policies` services
//! and prints the answer as a table, JSON or CSV.
//!
//! Layout:
//!
//! - [`cli`]: the command line, [`Cli`]: the global options and the command.
//! - [`cmd`]: one module per command (`hosts`, `sar`, `top_oom`, `oom`, `ntp`, `alerts`,
//!   `status`, `rules`, `certs`, `policy`), each with its clap `Args`, the request it sends and
//!   how it renders the answer for table, JSON and CSV; [`cmd::Command`] lists them and
//!   dispatches.
//! - [`output`]: what every command prints with: the `-o` format, aligned tables, CSV, JSON,
//!   times, cell conventions, and [`output::escape`], which every table cell, CSV field, JSON
//!   string, notice and error goes through, so that no control character an agent sent reaches
//!   the operator's terminal.
//! - `client`: the connection (TLS via rustls, timeouts, answer limit) and the one place gRPC
//!   statuses become fleetctl's messages; commands call the generated clients through
//!   `Collector::query` and `Collector::policies`.
//! - [`config`]: the optional TOML file, merged with flags and `FLEET_COLLECTOR` into
//!   [`config::Settings`].
//! - [`plot`]: sar rows drawn as SVG panels grouped as `sadf -g` groups them (pure: rows in,
//!   string out), for `sar --plot` and the pages of `ui`.
//! - [`timearg`]: pure parsing of `--since`/`--until` and their range.
//! - [`certs`]: the fleet's CA, certificates and revocation list (`certs/issue.rs`: `init`,
//!   `issue`, `issue --ensure`; `certs/crl.rs`: `revoke`); `fleetctl certs` is [`cmd::certs`].
//!
//! To add a command `fleetctl foo`: write `ctl/src/cmd/foo.rs` with its `FooArgs` (clap derive)
//! and `impl Run for FooArgs` (request, call, render for each format), then add `pub mod foo;`
//! and its variant `Foo(foo::FooArgs)` to `Command` in `ctl/src/cmd/mod.rs`. Its table output is
//! best tested against a golden file in `ctl/tests/golden/` (see `golden.rs`;
//! `UPDATE_GOLDEN=1 cargo test -p fleetctl` writes them).
//!
//! `main.rs` only parses the command line and calls [`run`]; tests call [`execute`] to get the
//! output as a string. `rules check` and `certs` work offline and need no collector settings.

pub mod certs;
pub mod cli;
mod client;
pub mod cmd;
pub mod config;
#[cfg(test)]
mod golden;
pub mod output;
pub mod plot;
pub mod timearg;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};

pub use cli::Cli;
use config::FileConfig;

/// What a command prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The result, for stdout.
    pub stdout: String,
    /// A remark for stderr (such as "no samples"), which scripts reading stdout never see.
    pub notice: Option<String>,
    /// The command ran, and its answer is "no": a rules file that does not validate. [`run`]
    /// prints stdout and the notice as usual and then exits 1.
    pub failed: bool,
}

impl Output {
    /// `stdout`, with no notice, not failed.
    pub fn print(stdout: String) -> Self {
        Output {
            stdout,
            ..Output::default()
        }
    }

    /// With `notice` for stderr, if any.
    #[must_use]
    pub fn with_notice(self, notice: Option<String>) -> Self {
        Output { notice, ..self }
    }

    /// Marked [`Output::failed`] when `failed`.
    #[must_use]
    pub fn failed_if(self, failed: bool) -> Self {
        Output { failed, ..self }
    }
}

/// Runs one fleetctl invocation: loads the config, talks to the collector, writes the result to
/// stdout and any notice to stderr. The exit code is failure for an [`Output::failed`] answer.
///
/// # Errors
///
/// Bad settings, an unreachable collector, a gRPC status, or a failed write to stdout (see
/// [`is_broken_pipe`] for the one write failure that is not an error to the user).
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let output = execute(cli).await?;
    if let Some(notice) = &output.notice {
        // One prefix per line: `rules check` reports every problem of a file, one per line.
        // Escaped: a notice may name what agents said (hostnames).
        for line in notice.lines() {
            eprintln!("fleetctl: {}", output::escape(line, output::Breaks::Space));
        }
    }
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(output.stdout.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(if output.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs one fleetctl invocation and returns what it would print.
///
/// # Errors
///
/// As [`run`], except writing.
pub async fn execute(cli: Cli) -> Result<Output> {
    let file = match &cli.global.config {
        Some(path) => config::load(path)?,
        None => FileConfig::default(),
    };
    cli.command.execute(&cli.global, file).await
}

/// `err` with its causes, one line, for stderr: [`fleet_proto::errors::chain`], so a cause whose
/// text its wrapper already quotes (hyper and rustls errors repeat their source) is said once;
/// [`output::escape`]d, as the collector's messages may quote what agents said (the line breaks
/// of a TOML error's excerpt are kept).
pub fn error_message(err: &anyhow::Error) -> String {
    output::escape(
        &fleet_proto::errors::chain(err.as_ref()),
        output::Breaks::Keep,
    )
    .into_owned()
}

/// Whether `err` is a write to a closed pipe (`fleetctl hosts -o json | head -1`), which `main`
/// treats as success, as ripgrep does.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::testing::parse_ok;

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let err = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing to stdout");
        assert!(is_broken_pipe(&err));
        let err = anyhow::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    }

    #[test]
    fn error_message_says_repeated_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error: {0}")]
        struct Wrapper(#[source] io::Error);
        let inner = io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused");
        let err = anyhow::Error::from(Wrapper(inner)).context("cannot reach collector at URL");
        assert_eq!(
            error_message(&err),
            "cannot reach collector at URL: tcp connect error: Connection refused"
        );
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_message(&err), "outer: inner");
    }

    #[tokio::test]
    async fn settings_errors_come_before_any_connection() {
        let cli = parse_ok(&["--collector", "http://127.0.0.1:1", "hosts"]);
        let err = execute(cli).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("plaintext http:// needs --insecure"),
            "{err:#}"
        );

        // A sar mistake is reported without contacting the (absent) collector.
        let cli = parse_ok(&[
            "--insecure",
            "--collector",
            "http://127.0.0.1:1",
            "sar",
            "-u",
            "--host",
            "a",
            "--since",
            "1h",
            "--until",
            "2h",
        ]);
        let err = execute(cli).await.unwrap_err();
        assert!(err.to_string().starts_with("--since "), "{err:#}");
    }
}
