//! `OutboxSender`: delivers the outbox's pending notifications through the configured
//! channels (webhooks, email; see the allocator's `notifications` module), each delivery
//! taken under a lease so one allocator sends it, retried with capped exponential backoff
//! after a failure, and given up after a configured number of attempts. A delivery is
//! recorded as sent only after the receiver accepted it, so a crash in between sends it once
//! more with the same delivery key, which the receiver deduplicates on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, WrapFuture};
use chrono::Utc;
use futures_util::future::BoxFuture;
use lablink_schema::wire::NotificationEvent;

use crate::db_writer::DbWriter;
use crate::lease::{self, LEASE_DURATION};
use crate::workshop_writes::{FinishDelivery, TakeDueDeliveries};

/// Deliveries taken in one round.
const ROUND_SIZE: i64 = 50;

/// Somewhere notifications go.
pub trait NotificationChannel: Send + Sync + 'static {
    /// The name deliveries are stored under (`webhook:<name>`, `email`).
    fn name(&self) -> &str;

    /// Sends one event; an error says why it was not accepted.
    fn send(&self, event: &NotificationEvent) -> BoxFuture<'static, Result<(), String>>;
}

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub first_wait: Duration,
    pub max_wait: Duration,
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure in a row (1-based), or `None` to give up.
    pub fn wait_after(&self, failures: u32) -> Option<Duration> {
        if failures >= self.max_attempts {
            return None;
        }
        let doubling = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
        Some(self.first_wait.saturating_mul(doubling).min(self.max_wait))
    }
}

/// The actor; see the module documentation.
pub struct OutboxSender {
    writer: Addr<DbWriter>,
    channels: Arc<HashMap<String, Arc<dyn NotificationChannel>>>,
    retry: RetryPolicy,
    poll: Duration,
    busy: bool,
}

impl std::fmt::Debug for OutboxSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxSender")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl OutboxSender {
    pub fn new(
        writer: Addr<DbWriter>,
        channels: Vec<Arc<dyn NotificationChannel>>,
        retry: RetryPolicy,
        poll: Duration,
    ) -> Self {
        OutboxSender {
            writer,
            channels: Arc::new(
                channels
                    .into_iter()
                    .map(|channel| (channel.name().to_owned(), channel))
                    .collect(),
            ),
            retry,
            poll,
            busy: false,
        }
    }
}

impl Actor for OutboxSender {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.poll, |sender, ctx| {
            if sender.busy {
                return;
            }
            sender.busy = true;
            let round = send_round(sender.writer.clone(), sender.channels.clone(), sender.retry);
            ctx.spawn(round.into_actor(sender).map(|(), sender, _| {
                sender.busy = false;
            }));
        });
    }
}

async fn send_round(
    writer: Addr<DbWriter>,
    channels: Arc<HashMap<String, Arc<dyn NotificationChannel>>>,
    retry: RetryPolicy,
) {
    let owner = lease::this_process().to_owned();
    let until = Utc::now().naive_utc()
        + chrono::Duration::from_std(LEASE_DURATION)
            .unwrap_or_else(|_| chrono::Duration::seconds(30));
    let take = TakeDueDeliveries {
        owner: owner.clone(),
        until,
        limit: ROUND_SIZE,
    };
    let taken = match writer.send(take).await {
        Ok(Ok(taken)) => taken,
        Ok(Err(err)) => {
            tracing::error!(error = %err, "cannot take the due notifications");
            return;
        }
        Err(_) => return,
    };
    let sends = taken.into_iter().map(|(delivery, event)| {
        let channel = channels.get(&delivery.channel).cloned();
        let notification = event.notification(&delivery);
        async move {
            let sent = match channel {
                Some(channel) => channel.send(&notification).await,
                None => Err(format!(
                    "the channel `{}` is no longer configured",
                    delivery.channel
                )),
            };
            (delivery, sent)
        }
    });
    for (delivery, sent) in futures_util::future::join_all(sends).await {
        let failures = u32::try_from(delivery.attempts).unwrap_or(0) + 1;
        let outcome = match sent {
            Ok(()) => {
                tracing::info!(channel = %delivery.channel, key = %delivery.delivery_key, "notification delivered");
                Ok(())
            }
            Err(error) => {
                let next = retry.wait_after(failures).map(|wait| {
                    Utc::now().naive_utc()
                        + chrono::Duration::from_std(wait)
                            .unwrap_or_else(|_| chrono::Duration::hours(1))
                });
                match next {
                    Some(_) => {
                        tracing::warn!(channel = %delivery.channel, attempt = failures, %error, "notification not delivered; will retry")
                    }
                    None => {
                        tracing::error!(channel = %delivery.channel, attempts = failures, %error, "notification given up")
                    }
                }
                Err((error, next))
            }
        };
        let finish = FinishDelivery {
            id: delivery.id,
            owner: owner.clone(),
            outcome,
        };
        if !matches!(writer.send(finish).await, Ok(Ok(()))) {
            tracing::error!("cannot record a notification's delivery");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_give_up_after_the_last_attempt() {
        let policy = RetryPolicy {
            max_attempts: 5,
            first_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(10),
        };
        let waits: Vec<Option<Duration>> = (1..=5).map(|n| policy.wait_after(n)).collect();
        assert_eq!(
            waits,
            [
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(8)),
                Some(Duration::from_secs(10)),
                None
            ]
        );
    }
}
