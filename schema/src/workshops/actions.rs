//! The `workshop_actions` table: a workshop's planned and done actions. Planned actions are
//! durable jobs: an allocator takes a due one under a lease (the same rules as provisioning
//! operations: no lease, a lapsed one, or a holder known to be gone), does it, and records
//! what it did or why it did not.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::plan::PlannedAction;
use crate::leases::{held, take_lease};
use crate::schema::workshop_actions;
use crate::wire::{WorkshopActionKind, WorkshopActionState, WorkshopActionView};
use crate::DbConnection;

/// A planned or done action as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = workshop_actions)]
pub struct WorkshopAction {
    pub id: i64,
    pub workshop_id: i64,
    pub kind: String,
    pub due_at: NaiveDateTime,
    pub amount: i32,
    pub state: String,
    pub outcome: Option<String>,
    pub done_at: Option<NaiveDateTime>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<NaiveDateTime>,
}

impl WorkshopAction {
    /// What it does; `None` for a kind from a newer version.
    pub fn kind(&self) -> Option<WorkshopActionKind> {
        self.kind.parse().ok()
    }

    pub fn state(&self) -> WorkshopActionState {
        self.state.parse().unwrap_or(WorkshopActionState::Failed)
    }

    pub fn view(&self) -> WorkshopActionView {
        WorkshopActionView {
            id: self.id,
            kind: self.kind().unwrap_or(WorkshopActionKind::End),
            due_at: self.due_at,
            amount: self.amount,
            state: self.state(),
            outcome: self.outcome.clone(),
            done_at: self.done_at,
        }
    }

    /// Stores planned actions for a workshop.
    pub fn plan(
        conn: &mut DbConnection,
        workshop_id: i64,
        actions: &[PlannedAction],
    ) -> QueryResult<usize> {
        let rows: Vec<_> = actions
            .iter()
            .map(|action| {
                (
                    workshop_actions::workshop_id.eq(workshop_id),
                    workshop_actions::kind.eq(action.kind.as_str()),
                    workshop_actions::due_at.eq(action.due_at),
                    workshop_actions::amount.eq(action.amount),
                    workshop_actions::state.eq(WorkshopActionState::Planned.as_str()),
                )
            })
            .collect();
        if rows.is_empty() {
            return Ok(0);
        }
        on_backend!(conn, |c| diesel::insert_into(workshop_actions::table)
            .values(&rows)
            .execute(c))
    }

    /// The workshop's actions in time order.
    pub fn list_for(conn: &mut DbConnection, workshop_id: i64) -> QueryResult<Vec<Self>> {
        workshop_actions::table
            .filter(workshop_actions::workshop_id.eq(workshop_id))
            .order((workshop_actions::due_at, workshop_actions::id))
            .select(WorkshopAction::as_select())
            .load(conn)
    }

    /// Cancels the workshop's planned actions of these kinds (a new plan replaces them),
    /// unless an allocator holds one right now; returns how many were cancelled.
    pub fn cancel_planned(
        conn: &mut DbConnection,
        workshop_id: i64,
        kinds: &[WorkshopActionKind],
        why: &str,
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        diesel::update(
            workshop_actions::table
                .filter(workshop_actions::workshop_id.eq(workshop_id))
                .filter(workshop_actions::state.eq(WorkshopActionState::Planned.as_str()))
                .filter(workshop_actions::kind.eq_any(kinds))
                .filter(
                    workshop_actions::lease_expires_at
                        .is_null()
                        .or(workshop_actions::lease_expires_at.le(now)),
                ),
        )
        .set((
            workshop_actions::state.eq(WorkshopActionState::Cancelled.as_str()),
            workshop_actions::outcome.eq(why),
            workshop_actions::done_at.eq(now),
        ))
        .execute(conn)
    }

    /// Takes the due planned actions nobody holds (see the module documentation), leased to
    /// `owner` until `until`. Each is taken only if its lease is still the one read here, so
    /// of two allocators looking at once only one gets each action.
    pub fn take_due(
        conn: &mut DbConnection,
        owner: &str,
        until: NaiveDateTime,
        now: NaiveDateTime,
        owner_alive: &dyn Fn(&str) -> bool,
    ) -> QueryResult<Vec<Self>> {
        let due: Vec<WorkshopAction> = workshop_actions::table
            .filter(workshop_actions::state.eq(WorkshopActionState::Planned.as_str()))
            .filter(workshop_actions::due_at.le(now))
            .order((workshop_actions::due_at, workshop_actions::id))
            .select(WorkshopAction::as_select())
            .load(conn)?;
        let mut taken = Vec::new();
        for action in due {
            let lease = (action.lease_owner.as_deref(), action.lease_expires_at);
            if held(lease.0, lease.1, now, owner_alive) {
                continue;
            }
            let target = workshop_actions::table
                .filter(workshop_actions::id.eq(action.id))
                .filter(workshop_actions::state.eq(WorkshopActionState::Planned.as_str()));
            let updated = take_lease!(
                conn,
                workshop_actions,
                WorkshopAction,
                target,
                action.lease_expires_at,
                owner,
                until
            )?;
            taken.extend(updated);
        }
        Ok(taken)
    }

    /// Extends `owner`'s leases on these planned actions.
    pub fn renew(
        conn: &mut DbConnection,
        owner: &str,
        ids: &[i64],
        until: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(
            workshop_actions::table
                .filter(workshop_actions::id.eq_any(ids))
                .filter(workshop_actions::state.eq(WorkshopActionState::Planned.as_str()))
                .filter(workshop_actions::lease_owner.eq(owner)),
        )
        .set(workshop_actions::lease_expires_at.eq(until))
        .execute(conn)
    }

    /// Records the action as `state` with its outcome, if `owner` still holds it; `false`
    /// when it does not (another allocator took it over meanwhile: its record stands).
    pub fn finish(
        conn: &mut DbConnection,
        id: i64,
        owner: &str,
        state: WorkshopActionState,
        outcome: &str,
        now: NaiveDateTime,
    ) -> QueryResult<bool> {
        let changed = diesel::update(
            workshop_actions::table
                .filter(workshop_actions::id.eq(id))
                .filter(workshop_actions::state.eq(WorkshopActionState::Planned.as_str()))
                .filter(workshop_actions::lease_owner.eq(owner)),
        )
        .set((
            workshop_actions::state.eq(state.as_str()),
            workshop_actions::outcome.eq(outcome),
            workshop_actions::done_at.eq(now),
            workshop_actions::lease_owner.eq(None::<String>),
            workshop_actions::lease_expires_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
        Ok(changed == 1)
    }
}
