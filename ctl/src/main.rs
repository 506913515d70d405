//! The `fleetctl` binary: parse the command line, call [`fleetctl::run`], turn the outcome into an
//! exit status. Usage errors exit 2 (clap); every other error prints one line and exits 1, as does
//! a rules file that `rules check` rejects.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = fleetctl::Cli::parse();
    match fleetctl::run(cli).await {
        Ok(code) => code,
        // The reader went away (`fleetctl hosts -o json | head -1`): not a failure.
        Err(err) if fleetctl::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fleetctl: {}", fleetctl::error_message(&err));
            ExitCode::FAILURE
        }
    }
}
