//! The allocator's configuration: compiled-in defaults, then an optional YAML file
//! (`--config PATH` or `LABLINK_CONFIG`), then the environment (`LABLINK__SECTION__KEY`, and
//! `DATABASE_URL` for the database), then `--bind`. Every key is documented in its section's
//! file; a bad value stops the process with a message naming the key, the value and where it
//! came from. [`loading`] reads the layers, [`validation`] runs each section's checks,
//! [`report`] is what `check-config` prints, and [`secret::Secret`] keeps secrets out of all
//! of them.

use serde::{Deserialize, Serialize};

mod admin;
pub mod channel_url;
mod database;
mod desktop;
mod lifecycle;
pub mod loading;
mod notifications;
mod observability;
pub mod paths;
mod provider;
pub mod report;
pub mod secret;
mod server;
pub mod validation;
mod vm_logs;
mod workshops;

pub use admin::{AdminConfig, ClientsConfig, MIN_ADMIN_PASSWORD_LEN};
pub use channel_url::ChannelUrl;
pub use database::DatabaseConfig;
pub use desktop::{DesktopConfig, DesktopMode};
pub use lifecycle::{LifecycleConfig, ReleasePolicy};
pub use notifications::{
    EmailConfig, NotificationsConfig, SmtpSecurity, WebhookConfig, MIN_WEBHOOK_SECRET_LEN,
};
pub use observability::{LogConfig, LogFormat, MetricsConfig, MIN_METRICS_TOKEN_LEN};
pub use provider::{
    AwsConfig, LocalProviderConfig, ProviderConfig, ProviderKind, TerraformProviderConfig,
};
pub use secret::Secret;
pub use server::{RateLimitConfig, ServerConfig};
use validation::Invalid;
pub use vm_logs::VmLogsConfig;
pub use workshops::WorkshopsConfig;

/// Prefix of the environment variables that set configuration keys.
pub const ENV_PREFIX: &str = "LABLINK__";
/// Separator between section and key in those variables.
pub const ENV_SEPARATOR: &str = "__";
/// Environment variable naming the YAML configuration file.
pub const CONFIG_FILE_ENV: &str = "LABLINK_CONFIG";
/// Environment variable holding the database URL (the common convention; overridden by
/// `LABLINK__DATABASE__URL`).
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// Everything the allocator can be configured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub clients: ClientsConfig,
    pub provider: ProviderConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub rate_limits: RateLimitConfig,
    pub lifecycle: LifecycleConfig,
    pub vm_logs: VmLogsConfig,
    pub workshops: WorkshopsConfig,
    pub notifications: NotificationsConfig,
    pub desktop: DesktopConfig,
}

impl Config {
    /// The URL agents use to reach this allocator.
    pub fn agent_facing_url(&self) -> String {
        self.provider
            .allocator_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.bind))
            .trim_end_matches('/')
            .to_owned()
    }
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A key has a value that does not fit it.
    #[error("invalid configuration: {key} = {value} (from {origin}): {reason}")]
    InvalidValue {
        key: String,
        value: String,
        origin: String,
        reason: String,
    },
    /// A key that does not exist (often a typo).
    #[error("invalid configuration: unknown key {key} (from {origin}); {reason}")]
    UnknownKey {
        key: String,
        origin: String,
        reason: String,
    },
    /// A configured path that cannot be used (a directory that cannot be created or written,
    /// a program that is missing).
    #[error("invalid configuration: {key} = {path}: {reason}")]
    Path {
        key: String,
        path: String,
        reason: String,
    },
    /// The configuration file cannot be read or parsed.
    #[error("invalid configuration file {path}: {reason}")]
    File { path: String, reason: String },
}

#[cfg(test)]
mod tests;
