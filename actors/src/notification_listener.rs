//! `NotificationListener`: on PostgreSQL, turns the `vm_updates` channel (fed by the `vms`
//! table trigger, in every allocator process sharing the database) into [`VmEvent`]s.
//!
//! It holds one dedicated tokio-postgres connection that does nothing but `LISTEN`. NOTIFY is
//! a hint, not a queue: a notification sent while the connection is down is gone. So after
//! every (re)connect the listener re-reads the table and publishes [`VmEvent::Resynced`], and
//! consumers treat the table as the truth. A lost connection is retried with capped,
//! jittered exponential backoff, forever.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, WrapFuture};
use futures_util::StreamExt;
use lablink_schema::backoff::Backoff;
use lablink_schema::vms::Vm;
use lablink_schema::DbPool;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::change_feed::{ChangeFeed, VmEvent};

/// The channel the `vms` trigger notifies on.
pub const VM_UPDATES_CHANNEL: &str = "vm_updates";
/// How the listening session names itself in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "lablink-notification-listener";
/// First wait before reconnecting after the connection is lost.
pub const INITIAL_RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);
/// Give up a connection attempt after this long and retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle time before TCP keepalives probe the connection, so a silently dropped network
/// path is noticed instead of waiting forever for notifications that cannot arrive.
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// How long to wait between reconnection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Wait after the first failure; doubled after each further failure.
    pub initial_delay: Duration,
    /// The doubling stops here.
    pub max_delay: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: INITIAL_RECONNECT_DELAY,
            max_delay: MAX_RECONNECT_DELAY,
        }
    }
}

/// The listener actor; see the module documentation.
pub struct NotificationListener {
    database_url: String,
    pool: DbPool,
    feed: Arc<dyn ChangeFeed>,
    policy: ReconnectPolicy,
}

impl std::fmt::Debug for NotificationListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: it is not shown.
        f.debug_struct("NotificationListener")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl NotificationListener {
    /// A listener on the PostgreSQL database at `database_url`, re-reading through `pool`
    /// and publishing to `feed`.
    pub fn new(
        database_url: String,
        pool: DbPool,
        feed: Arc<dyn ChangeFeed>,
        policy: ReconnectPolicy,
    ) -> Self {
        NotificationListener {
            database_url,
            pool,
            feed,
            policy,
        }
    }
}

impl Actor for NotificationListener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let listening = listen_forever(
            self.database_url.clone(),
            self.pool.clone(),
            self.feed.clone(),
            self.policy,
        );
        // Stopping the actor drops this future, which closes the connection.
        ctx.spawn(listening.into_actor(self));
    }
}

/// Why a listening session ended or could not start.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error("invalid database URL for LISTEN: {0}")]
    Config(tokio_postgres::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("timed out connecting to PostgreSQL")]
    ConnectTimeout,
    #[error("re-reading the VMs failed: {0}")]
    Reread(String),
}

async fn listen_forever(
    database_url: String,
    pool: DbPool,
    feed: Arc<dyn ChangeFeed>,
    policy: ReconnectPolicy,
) {
    let mut backoff = Backoff::new(policy.initial_delay, policy.max_delay);
    loop {
        let outcome = listen_once(&database_url, &pool, feed.as_ref()).await;
        if outcome.is_ok() {
            // The session worked; start the backoff afresh.
            backoff.reset();
        }
        let delay = backoff.next_delay();
        match outcome {
            Ok(reason) => {
                tracing::warn!(%reason, retry_in_ms = delay.as_millis(), "lost the LISTEN connection");
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis(), "cannot LISTEN for VM changes");
            }
        }
        tokio::time::sleep(delay).await;
    }
}

/// One listening session: connect, `LISTEN`, re-read, then forward notifications until the
/// connection breaks. Returns why it ended.
async fn listen_once(
    database_url: &str,
    pool: &DbPool,
    feed: &dyn ChangeFeed,
) -> Result<String, ListenError> {
    let mut config: tokio_postgres::Config = database_url.parse().map_err(ListenError::Config)?;
    config
        .application_name(APPLICATION_NAME)
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(TCP_KEEPALIVE_IDLE);
    let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| ListenError::ConnectTimeout)??;

    // The connection object must be polled for the client's queries to complete and for
    // notifications to arrive; a local task drives it and forwards what it yields.
    let (messages_tx, mut messages) = mpsc::unbounded_channel();
    let driver = actix::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            let failed = message.is_err();
            if messages_tx.send(message).is_err() || failed {
                break;
            }
        }
    });
    let session = async {
        client
            .batch_execute(&format!("LISTEN {VM_UPDATES_CHANNEL}"))
            .await?;
        // Only now that LISTEN is active can a re-read be sure to miss nothing: any change
        // committed after this read also arrives as a notification.
        let hostnames = reread_hostnames(pool).await?;
        tracing::info!(vms = hostnames.len(), "listening for VM changes");
        feed.publish(VmEvent::Resynced { hostnames });

        while let Some(message) = messages.recv().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    match hostname_in(notification.payload()) {
                        Some(hostname) => feed.publish(VmEvent::Changed { hostname }),
                        None => tracing::warn!(
                            payload_bytes = notification.payload().len(),
                            "ignored a vm_updates notification without a hostname"
                        ),
                    }
                }
                Ok(AsyncMessage::Notice(notice)) => {
                    tracing::debug!(notice = %notice, "PostgreSQL notice");
                }
                Ok(_) => {}
                Err(err) => return Ok(err.to_string()),
            }
        }
        Ok("connection closed".to_owned())
    };
    let ended = session.await;
    driver.abort();
    ended
}

async fn reread_hostnames(pool: &DbPool) -> Result<Vec<String>, ListenError> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(|err| err.to_string())?;
        Vm::list_hostnames(&mut conn).map_err(|err| err.to_string())
    })
    .await
    .map_err(|err| ListenError::Reread(err.to_string()))?
    .map_err(ListenError::Reread)
}

/// The hostname in a trigger payload `{"hostname": "…", "op": "…"}`.
fn hostname_in(payload: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Payload {
        hostname: String,
    }
    serde_json::from_str::<Payload>(payload)
        .ok()
        .map(|p| p.hostname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_hostname_is_read_and_junk_is_ignored() {
        assert_eq!(
            hostname_in(r#"{"hostname" : "vm-1", "op" : "update"}"#).as_deref(),
            Some("vm-1")
        );
        assert_eq!(hostname_in("not json"), None);
        assert_eq!(hostname_in(r#"{"HostName": "vm-1"}"#), None);
    }
}
