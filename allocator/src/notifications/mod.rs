//! The notification channels the outbox delivers through: signed webhooks ([`webhook`])
//! and email over SMTP ([`email`]), built from section `notifications`. The sending loop,
//! leases and retries are [`lablink_actors::outbox_sender`].

use std::sync::Arc;

use lablink_actors::outbox_sender::NotificationChannel;

use crate::config::NotificationsConfig;

pub mod email;
pub mod webhook;

/// How long one delivery attempt may take.
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Every configured channel, named as [`NotificationsConfig::channel_names`] names them.
pub fn channels(config: &NotificationsConfig) -> anyhow::Result<Vec<Arc<dyn NotificationChannel>>> {
    let mut channels: Vec<Arc<dyn NotificationChannel>> = Vec::new();
    for hook in &config.webhooks {
        channels.push(Arc::new(webhook::Webhook::new(hook)?));
    }
    if let Some(email) = &config.email {
        channels.push(Arc::new(email::Email::new(email)?));
    }
    Ok(channels)
}
