//! The `lablink-allocator` command: serves (the default), or runs one operator task.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::io::{IsTerminal, Write};

use clap::{Parser, Subcommand};
use lablink_allocator::auth;
use lablink_allocator::config::report as config_report;
use lablink_allocator::config::{Config, MIN_ADMIN_PASSWORD_LEN};
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
    /// Check the configuration and print it as it takes effect, secrets masked; exit 2 when
    /// it is invalid.
    CheckConfig,
    /// Read a password on standard input and print its argon2 hash, for `admin.password_hash`.
    HashPassword,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if matches!(command, Command::HashPassword) {
        return hash_password();
    }
    let config = match Config::load(cli.config.as_deref(), cli.bind) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("lablink-allocator: {err}");
            return ExitCode::from(2);
        }
    };
    if matches!(command, Command::CheckConfig) {
        return print_config(&config);
    }
    telemetry::init(&config.log);
    match command {
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
        Command::CheckConfig | Command::HashPassword => ExitCode::SUCCESS,
    }
}

/// `check-config`: the configuration is valid (loading it checked that); print it.
fn print_config(config: &Config) -> ExitCode {
    let report = format!(
        "# lablink-allocator: the configuration is valid; as it takes effect (secrets masked):\n{}",
        config_report::to_yaml(config)
    );
    write_stdout(&report)
}

/// `hash-password`: the password comes on standard input (never as an argument, where other
/// users of the machine could read it in the process list); its hash goes to standard output.
/// At a terminal it is asked twice and not shown.
fn hash_password() -> ExitCode {
    let password = if std::io::stdin().is_terminal() {
        let typed = rpassword::prompt_password("Admin password (not shown): ").and_then(|first| {
            rpassword::prompt_password("The same again: ").map(|second| (first, second))
        });
        match typed {
            Ok((first, second)) if first == second => first,
            Ok(_) => {
                eprintln!("lablink-allocator: the two passwords differ; nothing was hashed");
                return ExitCode::from(2);
            }
            Err(err) => {
                eprintln!("lablink-allocator: cannot read the password: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let mut line = String::new();
        if let Err(err) = std::io::stdin().read_line(&mut line) {
            eprintln!("lablink-allocator: cannot read the password: {err}");
            return ExitCode::FAILURE;
        }
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.len() < MIN_ADMIN_PASSWORD_LEN {
        eprintln!(
            "lablink-allocator: the password must be at least {MIN_ADMIN_PASSWORD_LEN} characters"
        );
        return ExitCode::from(2);
    }
    match auth::passwords::hash_password(&password) {
        Ok(hash) => write_stdout(&format!("{hash}\n")),
        Err(err) => {
            eprintln!("lablink-allocator: cannot hash the password: {err}");
            ExitCode::FAILURE
        }
    }
}

fn write_stdout(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lablink-allocator: cannot write the output: {err}");
            ExitCode::FAILURE
        }
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
