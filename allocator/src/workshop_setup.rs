//! Starting what runs workshops and notifications: the scheduler of planned actions, the
//! outbox sender with the configured channels, and the settings the admin actions use.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use lablink_actors::db_writer::DbWriter;
use lablink_actors::outbox_sender::OutboxSender;
use lablink_actors::provisioning_queue::ProvisioningQueue;
use lablink_actors::workshop_scheduler::WorkshopScheduler;
use lablink_schema::DbPool;

use crate::admin_actions::workshops::WorkshopSettings;
use crate::config::{Config, ProviderKind};
use crate::notifications;
use crate::startup::StartupError;

/// Starts the scheduler and the outbox sender; answers the settings for the app state.
pub fn start(
    config: &Config,
    pool: &DbPool,
    writer: &Addr<DbWriter>,
    queue: &Addr<ProvisioningQueue>,
) -> Result<Arc<WorkshopSettings>, StartupError> {
    WorkshopScheduler::new(pool.clone(), writer.clone(), queue.clone()).start();
    let channels = notifications::channels(&config.notifications)
        .map_err(|err| StartupError::Config(format!("notifications: {err}")))?;
    OutboxSender::new(
        writer.clone(),
        channels.clone(),
        config.notifications.retry_policy(),
        Duration::from_millis(config.notifications.poll_ms),
    )
    .start();
    let default_instance_type = config
        .workshops
        .default_instance_type
        .clone()
        .unwrap_or_else(|| match config.provider.kind {
            ProviderKind::Local => "local".to_owned(),
            ProviderKind::Terraform => config.provider.instance_type(),
        });
    Ok(Arc::new(WorkshopSettings {
        config: config.workshops.clone(),
        default_instance_type,
        public_url: config.agent_facing_url(),
        channels,
        desktop_mode: config.desktop.mode,
    }))
}
