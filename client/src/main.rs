//! The `lablink-client` command run on each VM: starts the agent and runs until SIGTERM or
//! ctrl-c.

use std::process::ExitCode;

use lablink_client::agent::{Agent, AgentParts};
use lablink_client::log_shipping::{own_log, OwnLog};
use lablink_client::settings::AgentSettings;

fn main() -> ExitCode {
    let settings = match AgentSettings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("lablink-client: {err}");
            return ExitCode::from(2);
        }
    };
    let own_log = init_logging(settings.log_shipping);
    let outcome = actix::System::new().block_on(async move {
        let mut parts = AgentParts::real(&settings);
        parts.own_log = own_log;
        let agent = Agent::start(&settings, parts)?;
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

/// Lines of the agent's own log held for the shipper between two of its rounds.
const OWN_LOG_CAPACITY: usize = 20_000;

/// One JSON object per line on stdout; `RUST_LOG` filters (default `info`). With shipping,
/// the same events (`info` and above) also go to the log shipper, whose end is returned.
fn init_logging(shipping: bool) -> Option<OwnLog> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stdout = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .with_filter(filter);
    let (shipped, own_log) = if shipping {
        let (layer, own_log) = own_log(OWN_LOG_CAPACITY);
        (
            Some(layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO)),
            Some(own_log),
        )
    } else {
        (None, None)
    };
    let _ = tracing_subscriber::registry()
        .with(stdout)
        .with(shipped)
        .try_init();
    own_log
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
