//! The `lablink-allocator` command: serves (the default), or runs one operator task.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lablink_allocator::config::Config;
use lablink_allocator::startup::{self, Application};
use lablink_allocator::telemetry;

/// Hands out lab VMs to researchers and serves the admin dashboard.
#[derive(Debug, Parser)]
#[command(name = "lablink-allocator", version)]
struct Cli {
    /// YAML configuration file (also `LABLINK_CONFIG`).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding `server.bind` (also `LABLINK__SERVER__BIND`).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    bind: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web pages and the API (what runs when no command is given).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), cli.bind) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("lablink-allocator: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Migrate => match startup::migrate_once(&config) {
            Ok(applied) => {
                tracing::info!(?applied, count = applied.len(), "migrations applied");
                ExitCode::SUCCESS
            }
            Err(err) => {
                tracing::error!(error = %err, "migration failed");
                eprintln!("lablink-allocator: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(config: Config) -> ExitCode {
    let outcome = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config).await?;
        app.run_until_stopped().await?;
        Ok::<_, anyhow::Error>(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "allocator stopped on an error");
            eprintln!("lablink-allocator: {err}");
            ExitCode::FAILURE
        }
    }
}
