//! `lablink`, the admin command line: parses the command, finds the allocator and token,
//! checks the allocator speaks this CLI's API, runs the command, and exits 0 (done), 1
//! (refused or failed) or 2 (bad usage).

mod api;
mod cli;
mod commands;
mod credentials;
mod error;
mod output;
mod progress;
mod table;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "lablink",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            output::note(&format!("error: cannot start: {err}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::note(&format!("error: {err}"));
            if let Some(hint) = err.hint() {
                output::note(&format!("hint: {hint}"));
            }
            ExitCode::from(err.exit_code())
        }
    }
}
