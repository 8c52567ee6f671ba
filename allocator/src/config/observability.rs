//! Sections `metrics` (Prometheus on `GET /metrics`) and `log`, each with its own checks.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::Invalid;

/// Shortest metrics token accepted.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

/// Section `metrics`: Prometheus metrics on `GET /metrics`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics`; when off it answers 404.
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub enabled: bool,
    /// A bearer token for the scraper (`Authorization: Bearer <token>`). The admin's HTTP
    /// Basic credentials are always accepted too; without either the endpoint answers 401.
    pub token: Option<Secret>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: None,
        }
    }
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("token_set", &self.token.is_some())
            .finish()
    }
}

impl MetricsConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self
            .token
            .as_deref()
            .is_some_and(|t| t.len() < MIN_METRICS_TOKEN_LEN)
        {
            return Err(Invalid::new(
                "metrics.token",
                format!("must be at least {MIN_METRICS_TOKEN_LEN} characters"),
            ));
        }
        Ok(())
    }
}

/// Section `log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `lablink_allocator=debug,info`. `RUST_LOG` wins when set.
    pub level: String,
    /// `json` (one object per line, for log collectors), `text` (readable lines: time,
    /// level, message, fields), or `auto`: text when the log goes to a terminal (standard
    /// output, where it is written), else JSON.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Auto,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
    Auto,
}

impl LogFormat {
    /// The format in effect: `auto` decided by whether standard output is a terminal.
    pub fn resolved(self) -> LogFormat {
        use std::io::IsTerminal;
        match self {
            LogFormat::Auto if std::io::stdout().is_terminal() => LogFormat::Text,
            LogFormat::Auto => LogFormat::Json,
            format => format,
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map(|_| ())
            .map_err(|err| Invalid::new("log.level", err.to_string()))
    }
}
