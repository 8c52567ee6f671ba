//! The writer's workshop and outbox messages: a workshop stored with its roster and plan,
//! its end moved, its planned actions taken and finished under leases, its spend alerts
//! raised, and outbox deliveries taken and recorded. Every change that notifies writes its
//! outbox event in the same transaction, and every admin change its audit record.

use actix::{Handler, Message};
use chrono::{NaiveDateTime, Utc};
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use lablink_schema::outbox::{Delivery, NewEvent, OutboxEvent};
use lablink_schema::wire::{WorkshopActionKind, WorkshopActionState, WorkshopState};
use lablink_schema::workshops::actions::WorkshopAction;
use lablink_schema::workshops::plan::PlannedAction;
use lablink_schema::workshops::{NewWorkshop, SpendAlert, Workshop, WorkshopEdit};
use lablink_schema::DbConnection;

use crate::db_writer::{DbWriter, WriteError};

impl DbWriter {
    /// Records `event` in the outbox, with one delivery per configured channel.
    pub(crate) fn notify(
        &self,
        conn: &mut DbConnection,
        event: &NewEvent,
        now: NaiveDateTime,
    ) -> Result<(), WriteError> {
        OutboxEvent::record(conn, event, &self.channels, now)?;
        Ok(())
    }
}

/// Store a new workshop, its roster and its plan, audited and announced, in one transaction.
#[derive(Debug, Message)]
#[rtype(result = "Result<Workshop, WriteError>")]
pub struct CreateWorkshop {
    pub workshop: NewWorkshop,
    pub roster: Vec<String>,
    pub plan: Vec<PlannedAction>,
}

impl Handler<CreateWorkshop> for DbWriter {
    type Result = Result<Workshop, WriteError>;

    fn handle(&mut self, msg: CreateWorkshop, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            let workshop = Workshop::insert(conn, &msg.workshop, &msg.roster)?;
            WorkshopAction::plan(conn, workshop.id, &msg.plan)?;
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: now,
                    actor: workshop.created_by.clone(),
                    action: "workshop.create".to_owned(),
                    target: Some(format!("workshop {}", workshop.id)),
                    detail: Some(format!(
                        "{}: {} participants, {} to {}",
                        workshop.name, workshop.headcount, workshop.starts_at, workshop.ends_at
                    )),
                },
            )?;
            Ok(workshop)
        })
    }
}

/// Move a workshop's end (extend it, or end it now): the planned warnings, end and
/// teardown are replaced by `plan`; audited. Answers `None` for an unknown workshop.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Workshop>, WriteError>")]
pub struct MoveWorkshopEnd {
    pub id: i64,
    pub ends_at: NaiveDateTime,
    /// Also cancel the planned warm-up and opening (the workshop ends before it began).
    pub cancel_start: bool,
    pub plan: Vec<PlannedAction>,
    pub actor: String,
    /// `workshop.extend` or `workshop.end`.
    pub action: String,
}

impl Handler<MoveWorkshopEnd> for DbWriter {
    type Result = Result<Option<Workshop>, WriteError>;

    fn handle(&mut self, msg: MoveWorkshopEnd, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            if Workshop::find(conn, msg.id)?.is_none() {
                return Ok(None);
            }
            let mut kinds = vec![
                WorkshopActionKind::Warning,
                WorkshopActionKind::End,
                WorkshopActionKind::Teardown,
            ];
            if msg.cancel_start {
                kinds.extend([WorkshopActionKind::WarmUp, WorkshopActionKind::Open]);
            }
            let why = format!("replaced: {} moved the end to {}", msg.actor, msg.ends_at);
            WorkshopAction::cancel_planned(conn, msg.id, &kinds, &why, now)?;
            Workshop::set_end(conn, msg.id, msg.ends_at, now)?;
            // A workshop extended after it ended opens again if its start has passed.
            let started = Workshop::find(conn, msg.id)?.is_some_and(|w| w.starts_at <= now);
            if msg.ends_at > now && started {
                Workshop::change_state(
                    conn,
                    msg.id,
                    &[WorkshopState::Ended],
                    WorkshopState::Open,
                    now,
                )?;
            }
            WorkshopAction::plan(conn, msg.id, &msg.plan)?;
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: now,
                    actor: msg.actor.clone(),
                    action: msg.action.clone(),
                    target: Some(format!("workshop {}", msg.id)),
                    detail: Some(format!("ends at {}", msg.ends_at)),
                },
            )?;
            Ok(Workshop::find(conn, msg.id)?)
        })
    }
}

/// Edit a workshop: its fields, optionally its roster, and its warm-up replanned for a new
/// headcount; audited. Answers `None` for an unknown workshop.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Workshop>, WriteError>")]
pub struct EditWorkshop {
    pub id: i64,
    pub edit: WorkshopEdit,
    pub roster: Option<Vec<String>>,
    /// Cancel the planned warm-up batches and plan these instead (`None`: keep them).
    pub warm_up: Option<Vec<PlannedAction>>,
    pub actor: String,
    pub detail: String,
}

impl Handler<EditWorkshop> for DbWriter {
    type Result = Result<Option<Workshop>, WriteError>;

    fn handle(&mut self, msg: EditWorkshop, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            if Workshop::find(conn, msg.id)?.is_none() {
                return Ok(None);
            }
            Workshop::edit(conn, msg.id, &msg.edit, now)?;
            if let Some(roster) = &msg.roster {
                Workshop::replace_roster(conn, msg.id, roster)?;
            }
            if let Some(plan) = &msg.warm_up {
                let why = format!("replaced: {} changed the headcount", msg.actor);
                WorkshopAction::cancel_planned(
                    conn,
                    msg.id,
                    &[WorkshopActionKind::WarmUp],
                    &why,
                    now,
                )?;
                WorkshopAction::plan(conn, msg.id, plan)?;
            }
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: now,
                    actor: msg.actor.clone(),
                    action: "workshop.edit".to_owned(),
                    target: Some(format!("workshop {}", msg.id)),
                    detail: Some(msg.detail.clone()),
                },
            )?;
            Ok(Workshop::find(conn, msg.id)?)
        })
    }
}

/// Take the due planned actions nobody holds, leased to `owner` until `until`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<WorkshopAction>, WriteError>")]
pub struct TakeDueWorkshopActions {
    pub owner: String,
    pub until: NaiveDateTime,
}

impl Handler<TakeDueWorkshopActions> for DbWriter {
    type Result = Result<Vec<WorkshopAction>, WriteError>;

    fn handle(&mut self, msg: TakeDueWorkshopActions, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Ok(WorkshopAction::take_due(
                conn,
                &msg.owner,
                msg.until,
                Utc::now().naive_utc(),
                &crate::lease::may_be_alive,
            )?)
        })
    }
}

/// What finishing an action changes besides its own row, in the same transaction.
#[derive(Debug, Clone, Default)]
pub struct ActionEffects {
    /// Move the workshop from any of these states to the second.
    pub state: Option<(Vec<WorkshopState>, WorkshopState)>,
    /// Set (or, with `Some(None)`, clear) what participants are told.
    pub notice: Option<Option<String>>,
    pub event: Option<NewEvent>,
    /// Send `event` only if `state` changed the workshop's state (the first warm-up batch
    /// announces the warm-up; later ones do not).
    pub event_only_on_change: bool,
    pub audit: Option<NewAuditEvent>,
}

/// Record a taken action as done, skipped or failed with its outcome, and its effects.
/// Answers `false` (nothing written) when `owner` no longer holds it.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, WriteError>")]
pub struct FinishWorkshopAction {
    pub action: WorkshopAction,
    pub owner: String,
    pub state: WorkshopActionState,
    pub outcome: String,
    pub effects: ActionEffects,
}

impl Handler<FinishWorkshopAction> for DbWriter {
    type Result = Result<bool, WriteError>;

    fn handle(&mut self, msg: FinishWorkshopAction, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            let workshop = msg.action.workshop_id;
            if !WorkshopAction::finish(
                conn,
                msg.action.id,
                &msg.owner,
                msg.state,
                &msg.outcome,
                now,
            )? {
                return Ok(false);
            }
            let changed = match &msg.effects.state {
                Some((from, to)) => Workshop::change_state(conn, workshop, from, *to, now)?,
                None => false,
            };
            if let Some(notice) = &msg.effects.notice {
                Workshop::set_notice(conn, workshop, notice.as_deref(), now)?;
            }
            if let Some(event) = &msg.effects.event {
                if changed || !msg.effects.event_only_on_change {
                    self.notify(conn, event, now)?;
                }
            }
            if let Some(audit) = &msg.effects.audit {
                AuditEvent::record(conn, audit)?;
            }
            Ok(true)
        })
    }
}

/// Raise a workshop's spend alert to `level`, with its event and audit record; answers
/// `false` (nothing written) when it was already there, so each level is acted on once.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, WriteError>")]
pub struct RaiseSpendAlert {
    pub workshop_id: i64,
    pub level: SpendAlert,
    pub event: NewEvent,
    pub audit: NewAuditEvent,
    /// Plan a teardown now (the cap is reached and the workshop says to tear down).
    pub teardown: bool,
}

impl Handler<RaiseSpendAlert> for DbWriter {
    type Result = Result<bool, WriteError>;

    fn handle(&mut self, msg: RaiseSpendAlert, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            if !Workshop::raise_spend_alert(conn, msg.workshop_id, msg.level, now)? {
                return Ok(false);
            }
            self.notify(conn, &msg.event, now)?;
            AuditEvent::record(conn, &msg.audit)?;
            if msg.teardown {
                let teardown = PlannedAction {
                    kind: WorkshopActionKind::Teardown,
                    due_at: now,
                    amount: 0,
                };
                WorkshopAction::plan(conn, msg.workshop_id, &[teardown])?;
            }
            Ok(true)
        })
    }
}

/// Take up to `limit` due deliveries nobody holds, leased to `owner` until `until`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<(Delivery, OutboxEvent)>, WriteError>")]
pub struct TakeDueDeliveries {
    pub owner: String,
    pub until: NaiveDateTime,
    pub limit: i64,
}

impl Handler<TakeDueDeliveries> for DbWriter {
    type Result = Result<Vec<(Delivery, OutboxEvent)>, WriteError>;

    fn handle(&mut self, msg: TakeDueDeliveries, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Ok(Delivery::take_due(
                conn,
                &msg.owner,
                msg.until,
                Utc::now().naive_utc(),
                &crate::lease::may_be_alive,
                msg.limit,
            )?)
        })
    }
}

/// Record a delivery's attempt: delivered, to be tried again at a time, or given up.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WriteError>")]
pub struct FinishDelivery {
    pub id: i64,
    pub owner: String,
    /// `Ok`: delivered; `Err((error, next attempt or None to give up))`.
    pub outcome: Result<(), (String, Option<NaiveDateTime>)>,
}

impl Handler<FinishDelivery> for DbWriter {
    type Result = Result<(), WriteError>;

    fn handle(&mut self, msg: FinishDelivery, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            match &msg.outcome {
                Ok(()) => Delivery::delivered(conn, msg.id, &msg.owner, Utc::now().naive_utc())?,
                Err((error, next)) => Delivery::failed(conn, msg.id, &msg.owner, error, *next)?,
            };
            Ok(())
        })
    }
}
