//! Each command group in its own file; [`run`] finds the allocator and token and dispatches.

mod audit;
mod export;
mod login;
mod logs;
mod ops;
mod tokens;
mod vms;
mod workshops;

use crate::api::Api;
use crate::cli::{Cli, Command};
use crate::credentials;
use crate::error::CliError;

/// How a command prints.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub json: bool,
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let style = Style { json: cli.json };
    let token = std::env::var("LABLINK_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    match cli.command {
        Command::Login { url } => return login::login(&url, token).await,
        Command::Logout => return login::logout(),
        Command::Completions { .. } => return Ok(()),
        _ => {}
    }
    let login = credentials::resolve(cli.url, token)?;
    let api = Api::new(&login.url, &login.token)?;
    api.check_version().await?;
    match cli.command {
        Command::Whoami => login::whoami(&api, style).await,
        Command::Vms(command) => vms::run(&api, style, command).await,
        Command::Ops(command) => ops::run(&api, style, command).await,
        Command::Workshop(command) => workshops::run(&api, style, command).await,
        Command::Logs(args) => logs::run(&api, style, args).await,
        Command::Export(args) => export::run(&api, args).await,
        Command::Audit(command) => audit::run(&api, style, command).await,
        Command::Tokens(command) => tokens::run(&api, style, command).await,
        Command::Login { .. } | Command::Logout | Command::Completions { .. } => Ok(()),
    }
}

/// A random idempotency key for one creation, kept across the CLI's own retries.
pub fn idempotency_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("lablink-cli-{hex}")
}

/// A time as the tables show it.
pub fn shown_time(at: Option<chrono::NaiveDateTime>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}
