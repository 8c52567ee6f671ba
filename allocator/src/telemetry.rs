//! Structured logging: one JSON object per line on stdout, or readable text lines when stdout
//! is a terminal (`log.format`), filtered by
//! `RUST_LOG` when set, else by `log.level`; the same events are kept in memory for the
//! admin ([`crate::recent_log`]).

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::recent_log::{self, RecordingLayer};

/// Installs the global subscriber: to stdout, and into the ring of recent events shown on
/// `/admin/log` ([`crate::recent_log`]). Call once, before anything logs; later calls do
/// nothing.
pub fn init(config: &LogConfig) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&config.level))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let stdout = match config.format.resolved() {
        LogFormat::Json | LogFormat::Auto => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stdout)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(std::io::stdout)
            .boxed(),
    };
    let recorded = RecordingLayer::new(recent_log::global()).with_filter(filter());
    // `try_init` fails only when a subscriber is already installed, which is harmless.
    let _ = tracing_subscriber::registry()
        .with(stdout.with_filter(filter()))
        .with(recorded)
        .try_init();
}
