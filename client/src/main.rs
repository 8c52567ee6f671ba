//! The `lablink-client` command run on each VM: starts the agent and runs until SIGTERM or
//! ctrl-c.

use std::process::ExitCode;

use lablink_client::agent::{Agent, AgentParts};
use lablink_client::settings::AgentSettings;

fn main() -> ExitCode {
    let settings = match AgentSettings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("lablink-client: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let outcome = actix::System::new().block_on(async move {
        let agent = Agent::start(&settings, AgentParts::real(&settings))?;
        wait_for_shutdown_signal().await;
        tracing::info!("stopping");
        agent.stop();
        Ok::<_, lablink_client::agent::AgentError>(())
    });
    match outcome {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("lablink-client: {err}");
            ExitCode::FAILURE
        }
    }
}

/// One JSON object per line on stdout; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .try_init();
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
