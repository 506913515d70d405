//! The commands, one module each: its clap `Args`, the request it sends, and how it prints the
//! answer as a table, JSON or CSV (with the helpers of [`crate::output`]).
//!
//! Each command's `Args` implements `Run`. [`Command`] lists them, one variant per command
//! (its doc comment is the command's help line), and `Command::execute` dispatches: it resolves
//! the collector settings first, so a bad URL or missing CA is reported before the command
//! checks its own arguments, except for `Run::OFFLINE` commands, which need only the output
//! format.
//!
//! To add a command `fleetctl foo`: write `foo.rs` here with `FooArgs` (clap derive) and
//! `impl Run for FooArgs`, then add `pub mod foo;` and the variant `Foo(foo::FooArgs)` below.

pub mod alerts;
pub mod certs;
pub mod hosts;
pub mod ntp;
pub mod ntp_history;
pub mod oom;
pub mod policy;
pub mod rules;
pub mod sar;
pub mod sar_step;
pub mod status;
#[cfg(test)]
pub(crate) mod testing;
pub mod top_oom;
pub mod ui;

use anyhow::{anyhow, Result};
use clap::Subcommand;

use crate::cli::GlobalArgs;
use crate::client::Collector;
use crate::config::{self, FileConfig, Settings};
use crate::output::OutputFormat;
use crate::Output;

/// What a command runs with.
#[derive(Debug, Clone)]
pub struct Context {
    /// The `-o` format: flag, then config file, then `table`.
    pub format: OutputFormat,
    /// The collector's settings; `None` for an offline command.
    settings: Option<Settings>,
}

impl Context {
    /// Connects to the collector.
    ///
    /// # Errors
    ///
    /// As `Collector::connect`: unreadable TLS files, an unreachable collector.
    pub async fn connect(&self) -> Result<Collector> {
        let settings = self
            .settings
            .as_ref()
            .ok_or_else(|| anyhow!("an offline command has no collector to connect to"))?;
        Collector::connect(settings).await
    }
}

/// A command: what its `Args` do when run.
pub(crate) trait Run {
    /// The command works without a collector (`rules check`, `certs`): its settings are not
    /// resolved, so the default `https://` collector without a CA does not stop it.
    const OFFLINE: bool = false;

    /// Runs the command and returns what it prints.
    async fn run(self, ctx: &Context) -> Result<Output>;
}

/// Runs `command` with the settings from `global` and `file`.
async fn run<C: Run>(command: C, global: &GlobalArgs, file: FileConfig) -> Result<Output> {
    let ctx = if C::OFFLINE {
        Context {
            format: config::output_format(global, &file),
            settings: None,
        }
    } else {
        let settings = config::resolve(global, file)?;
        Context {
            format: settings.output,
            settings: Some(settings),
        }
    };
    command.run(&ctx).await
}

/// Declares [`Command`], one variant per command, and its dispatch to [`Run::run`], from one list.
macro_rules! commands {
    ($($(#[$doc:meta])* $variant:ident($args:ty),)*) => {
        /// The commands: one variant per module of [`crate::cmd`].
        #[derive(Debug, Clone, Subcommand)]
        pub enum Command {
            $($(#[$doc])* $variant($args),)*
        }

        impl Command {
            /// Runs the command, with the settings from `global` and the config file.
            ///
            /// # Errors
            ///
            /// Bad settings, then whatever the command reports.
            pub(crate) async fn execute(self, global: &GlobalArgs, file: FileConfig) -> Result<Output> {
                match self {
                    $(Command::$variant(args) => run(args, global, file).await,)*
                }
            }
        }
    };
}

commands! {
    /// List the hosts the collector knows
    Hosts(hosts::HostsArgs),
    /// Show sar activity of one or more hosts, like sysstat's sar
    Sar(sar::SarArgs),
    /// The processes the OOM killer would pick next, across hosts (highest oom_score first)
    TopOom(top_oom::TopOomArgs),
    /// List OOM kills, newest first; `oom show ID` shows one in full with its evidence
    Oom(oom::OomArgs),
    /// Each host's time sources (NTP offset, delay, stratum) and its offset from the collector's
    /// clock; the table adds each cluster's offset spread. With --since: every measurement stored
    Ntp(ntp::NtpArgs),
    /// Alerts raised by the collector's rules: firing, pending and resolved
    Alerts(alerts::AlertsArgs),
    /// The collector itself: connected agents, transport, refused connections and calls
    Status(status::StatusArgs),
    /// Work with alert rules files (offline: no collector is contacted)
    Rules(rules::RulesArgs),
    /// Make the fleet's CA and certificates for the collector, agents, viewers and operators
    /// (offline: no collector is contacted)
    Certs(certs::CertsArgs),
    /// A local web console of the fleet (graphs, OOM kills, alerts), as this certificate may see
    /// it; viewer only
    Ui(ui::UiArgs),
    /// OOM policies: set oom_score_adj of matching processes on the targeted hosts; every change
    /// is a new version, recorded with who made it
    Policy(policy::PolicyArgs),
}
