//! The outbox: `outbox_events` (what happened, written in the same transaction as the change
//! that causes it) and `outbox_deliveries` (one per event and configured channel, sent
//! afterwards under a lease, retried with backoff). A delivery's key stays the same across
//! retries, so a receiver that saw it once can drop a repeat.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::leases::{held, take_lease};
use crate::schema::{outbox_deliveries, outbox_events};
use crate::wire::NotificationEvent;
use crate::DbConnection;

/// Something to notify about.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// E.g. `workshop.warning`, `vm.failed`.
    pub kind: String,
    pub subject: String,
    pub workshop_id: Option<i64>,
    pub hostname: Option<String>,
    pub details: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: &str, subject: impl Into<String>) -> Self {
        NewEvent {
            kind: kind.to_owned(),
            subject: subject.into(),
            workshop_id: None,
            hostname: None,
            details: serde_json::Value::Null,
        }
    }

    pub fn for_workshop(mut self, id: i64) -> Self {
        self.workshop_id = Some(id);
        self
    }

    pub fn for_vm(mut self, hostname: &str) -> Self {
        self.hostname = Some(hostname.to_owned());
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = outbox_events)]
pub struct OutboxEvent {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    /// The [`NotificationEvent`] as JSON, its delivery key left empty.
    pub payload: String,
    pub created_at: NaiveDateTime,
}

/// One event's delivery to one channel.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = outbox_deliveries)]
pub struct Delivery {
    pub id: i64,
    pub event_id: i64,
    pub channel: String,
    pub delivery_key: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<NaiveDateTime>,
}

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const GAVE_UP: &str = "failed";

impl OutboxEvent {
    /// Writes the event and one pending delivery per channel; call it inside the
    /// transaction of the change it reports.
    pub fn record(
        conn: &mut DbConnection,
        event: &NewEvent,
        channels: &[String],
        now: NaiveDateTime,
    ) -> QueryResult<OutboxEvent> {
        let payload = NotificationEvent {
            event: event.kind.clone(),
            subject: event.subject.clone(),
            delivery_key: String::new(),
            occurred_at: now,
            workshop_id: event.workshop_id,
            hostname: event.hostname.clone(),
            details: event.details.clone(),
        };
        let payload = serde_json::to_string(&payload).unwrap_or_else(|_| "{}".to_owned());
        let stored: OutboxEvent = on_backend!(conn, |c| diesel::insert_into(outbox_events::table)
            .values((
                outbox_events::kind.eq(&event.kind),
                outbox_events::subject.eq(&event.subject),
                outbox_events::payload.eq(&payload),
                outbox_events::created_at.eq(now),
            ))
            .returning(OutboxEvent::as_returning())
            .get_result(c))?;
        let rows: Vec<_> = channels
            .iter()
            .map(|channel| {
                (
                    outbox_deliveries::event_id.eq(stored.id),
                    outbox_deliveries::channel.eq(channel),
                    outbox_deliveries::delivery_key.eq(format!("lablink-{}-{channel}", stored.id)),
                    outbox_deliveries::state.eq(PENDING),
                    outbox_deliveries::next_attempt_at.eq(now),
                )
            })
            .collect();
        if !rows.is_empty() {
            on_backend!(conn, |c| diesel::insert_into(outbox_deliveries::table)
                .values(&rows)
                .execute(c))?;
        }
        Ok(stored)
    }

    /// The event as a receiver gets it through `delivery`.
    pub fn notification(&self, delivery: &Delivery) -> NotificationEvent {
        let mut event: NotificationEvent =
            serde_json::from_str(&self.payload).unwrap_or_else(|_| NotificationEvent {
                event: self.kind.clone(),
                subject: self.subject.clone(),
                delivery_key: String::new(),
                occurred_at: self.created_at,
                workshop_id: None,
                hostname: None,
                details: serde_json::Value::Null,
            });
        event.delivery_key = delivery.delivery_key.clone();
        event
    }

    /// The newest events first, at most `limit`; of one workshop when `workshop` is set.
    pub fn list_recent(
        conn: &mut DbConnection,
        workshop: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<OutboxEvent>> {
        let wanted = usize::try_from(limit).unwrap_or(0);
        let mut found = Vec::new();
        let mut before = before.unwrap_or(i64::MAX);
        // A workshop's events are told apart by their payload, so they are looked for a
        // window at a time, newest first, until enough are found or none are left.
        let window = if workshop.is_some() { 1000 } else { limit };
        loop {
            let events: Vec<OutboxEvent> = outbox_events::table
                .filter(outbox_events::id.lt(before))
                .order(outbox_events::id.desc())
                .limit(window)
                .select(OutboxEvent::as_select())
                .load(conn)?;
            let Some(oldest) = events.last().map(|e| e.id) else {
                break;
            };
            let exhausted = events.len() < usize::try_from(window).unwrap_or(0);
            found.extend(events.into_iter().filter(|e| {
                workshop.is_none_or(|id| {
                    serde_json::from_str::<NotificationEvent>(&e.payload)
                        .is_ok_and(|n| n.workshop_id == Some(id))
                })
            }));
            if found.len() >= wanted || exhausted {
                break;
            }
            before = oldest;
        }
        found.truncate(wanted);
        Ok(found)
    }
}

impl Delivery {
    /// Takes the pending deliveries whose time has come and that nobody holds, leased to
    /// `owner` until `until`, each with its event.
    pub fn take_due(
        conn: &mut DbConnection,
        owner: &str,
        until: NaiveDateTime,
        now: NaiveDateTime,
        owner_alive: &dyn Fn(&str) -> bool,
        limit: i64,
    ) -> QueryResult<Vec<(Delivery, OutboxEvent)>> {
        let due: Vec<Delivery> = outbox_deliveries::table
            .filter(outbox_deliveries::state.eq(PENDING))
            .filter(outbox_deliveries::next_attempt_at.le(now))
            .order(outbox_deliveries::id)
            .limit(limit)
            .select(Delivery::as_select())
            .load(conn)?;
        let mut taken = Vec::new();
        for delivery in due {
            let lease = (delivery.lease_owner.as_deref(), delivery.lease_expires_at);
            if held(lease.0, lease.1, now, owner_alive) {
                continue;
            }
            let target = outbox_deliveries::table
                .filter(outbox_deliveries::id.eq(delivery.id))
                .filter(outbox_deliveries::state.eq(PENDING));
            let updated = take_lease!(
                conn,
                outbox_deliveries,
                Delivery,
                target,
                delivery.lease_expires_at,
                owner,
                until
            )?;
            if let Some(delivery) = updated {
                let event = outbox_events::table
                    .find(delivery.event_id)
                    .select(OutboxEvent::as_select())
                    .first(conn)?;
                taken.push((delivery, event));
            }
        }
        Ok(taken)
    }

    /// Records a delivery the receiver accepted.
    pub fn delivered(
        conn: &mut DbConnection,
        id: i64,
        owner: &str,
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(
            outbox_deliveries::table
                .filter(outbox_deliveries::id.eq(id))
                .filter(outbox_deliveries::lease_owner.eq(owner)),
        )
        .set((
            outbox_deliveries::state.eq(DELIVERED),
            outbox_deliveries::attempts.eq(outbox_deliveries::attempts + 1),
            outbox_deliveries::delivered_at.eq(now),
            outbox_deliveries::last_error.eq(None::<String>),
            outbox_deliveries::lease_owner.eq(None::<String>),
            outbox_deliveries::lease_expires_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
    }

    /// Records a failed attempt: tried again at `next_attempt_at`, or given up (`None`).
    pub fn failed(
        conn: &mut DbConnection,
        id: i64,
        owner: &str,
        error: &str,
        next_attempt_at: Option<NaiveDateTime>,
    ) -> QueryResult<usize> {
        let target = outbox_deliveries::table
            .filter(outbox_deliveries::id.eq(id))
            .filter(outbox_deliveries::lease_owner.eq(owner));
        let common = (
            outbox_deliveries::attempts.eq(outbox_deliveries::attempts + 1),
            outbox_deliveries::last_error.eq(error),
            outbox_deliveries::lease_owner.eq(None::<String>),
            outbox_deliveries::lease_expires_at.eq(None::<NaiveDateTime>),
        );
        match next_attempt_at {
            Some(at) => diesel::update(target)
                .set((common, outbox_deliveries::next_attempt_at.eq(at)))
                .execute(conn),
            None => diesel::update(target)
                .set((common, outbox_deliveries::state.eq(GAVE_UP)))
                .execute(conn),
        }
    }

    /// Every delivery of an event.
    pub fn of_event(conn: &mut DbConnection, event_id: i64) -> QueryResult<Vec<Delivery>> {
        outbox_deliveries::table
            .filter(outbox_deliveries::event_id.eq(event_id))
            .order(outbox_deliveries::id)
            .select(Delivery::as_select())
            .load(conn)
    }
}
