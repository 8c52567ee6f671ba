//! Section `notifications`: where admins are told what happened (webhooks, email through
//! SMTP) and how failed deliveries are retried.

use std::time::Duration;

use lablink_actors::outbox_sender::RetryPolicy;
use serde::{Deserialize, Serialize};

use super::{ChannelUrl, Invalid, Secret};

/// Shortest webhook signing secret accepted.
pub const MIN_WEBHOOK_SECRET_LEN: usize = 16;

/// Section `notifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// Each receives every event as signed JSON.
    pub webhooks: Vec<WebhookConfig>,
    /// Every event is also mailed here, when set.
    pub email: Option<EmailConfig>,
    /// Attempts per delivery before it is given up (shown on the workshop page).
    pub max_attempts: u32,
    /// Wait after a first failed attempt; doubled after each further one.
    pub retry_first_secs: f64,
    /// Longest wait between attempts.
    pub retry_max_secs: f64,
    /// How often pending deliveries are looked for.
    pub poll_ms: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            webhooks: Vec::new(),
            email: None,
            max_attempts: 12,
            retry_first_secs: 5.0,
            retry_max_secs: 3600.0,
            poll_ms: 500,
        }
    }
}

/// One webhook receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A short name: letters, digits, `-` and `_` (deliveries are recorded under it).
    pub name: String,
    /// `https://…` (or `http://` for a receiver on this machine or a private network). A
    /// secret: only its scheme and host are ever shown.
    pub url: ChannelUrl,
    /// Signs each body (HMAC-SHA256); the receiver checks it with the same secret.
    pub secret: Secret,
}

/// How email is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587); refused if the server cannot.
    Starttls,
    /// TLS from the start (port 465).
    Tls,
    /// No encryption: only for a relay on this machine (127.0.0.1, ::1, localhost).
    None,
}

/// Section `notifications.email`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub smtp_host: String,
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    #[serde(default = "default_security")]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender, e.g. `LabLink <lablink@lab.example.org>`.
    pub from: String,
    /// Who gets the notifications.
    pub to: Vec<String>,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_security() -> SmtpSecurity {
    SmtpSecurity::Starttls
}

impl NotificationsConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        let mut names = std::collections::BTreeSet::new();
        for hook in &self.webhooks {
            let name_ok = !hook.name.is_empty()
                && hook.name.len() <= 40
                && hook
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !name_ok {
                return Err(Invalid::new(
                    "notifications.webhooks",
                    format!(
                        "the webhook name `{}` must be 1 to 40 letters, digits, - or _",
                        hook.name
                    ),
                ));
            }
            if !names.insert(hook.name.as_str()) {
                return Err(Invalid::new(
                    "notifications.webhooks",
                    format!("two webhooks are named `{}`", hook.name),
                ));
            }
            let url = reqwest::Url::parse(hook.url.expose()).map_err(|e| {
                Invalid::new(
                    "notifications.webhooks",
                    format!("the URL of webhook `{}` is not a URL: {e}", hook.name),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(Invalid::new(
                    "notifications.webhooks",
                    format!(
                        "the URL of webhook `{}` must be http(s)://host/…",
                        hook.name
                    ),
                ));
            }
            if hook.secret.len() < MIN_WEBHOOK_SECRET_LEN {
                return Err(Invalid::new(
                    "notifications.webhooks",
                    format!(
                        "the secret of webhook `{}` must be at least {MIN_WEBHOOK_SECRET_LEN} \
                         characters",
                        hook.name
                    ),
                ));
            }
        }
        if let Some(email) = &self.email {
            email.validate()?;
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return Err(Invalid::new(
                "notifications.max_attempts",
                "must be between 1 and 100",
            ));
        }
        let ok = |v: f64| v.is_finite() && (0.01..=86_400.0).contains(&v);
        if !ok(self.retry_first_secs) || !ok(self.retry_max_secs) {
            return Err(Invalid::new(
                "notifications.retry_first_secs",
                "retry_first_secs and retry_max_secs must be between 0.01 and 86400 seconds",
            ));
        }
        if !(50..=60_000).contains(&self.poll_ms) {
            return Err(Invalid::new(
                "notifications.poll_ms",
                "must be between 50 and 60000",
            ));
        }
        Ok(())
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            first_wait: Duration::from_secs_f64(self.retry_first_secs),
            max_wait: Duration::from_secs_f64(self.retry_max_secs.max(self.retry_first_secs)),
        }
    }

    /// The channel names outbox deliveries are recorded under.
    pub fn channel_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .webhooks
            .iter()
            .map(|hook| format!("webhook:{}", hook.name))
            .collect();
        if self.email.is_some() {
            names.push("email".to_owned());
        }
        names
    }
}

impl EmailConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.smtp_host.trim().is_empty() {
            return Err(Invalid::new(
                "notifications.email.smtp_host",
                "must name the SMTP server",
            ));
        }
        let local = matches!(self.smtp_host.as_str(), "localhost" | "127.0.0.1" | "::1");
        if self.security == SmtpSecurity::None && !local {
            return Err(Invalid::new(
                "notifications.email.security",
                "`none` sends mail (and any password) unencrypted, so it is allowed only for a \
                 relay on this machine; use starttls or tls",
            ));
        }
        if self.password.is_some() != self.username.is_some() {
            return Err(Invalid::new(
                "notifications.email.username",
                "username and password are set together or not at all",
            ));
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(Invalid::new(
                "notifications.email.from",
                "must be an address such as `LabLink <lablink@example.org>`",
            ));
        }
        if self.to.is_empty() {
            return Err(Invalid::new(
                "notifications.email.to",
                "must list at least one address",
            ));
        }
        if let Some(bad) = self
            .to
            .iter()
            .find(|to| to.parse::<lettre::message::Mailbox>().is_err())
        {
            return Err(Invalid::new(
                "notifications.email.to",
                format!("`{bad}` is not an email address"),
            ));
        }
        Ok(())
    }
}
