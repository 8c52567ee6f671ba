//! The `operations` table: provisioning runs, their model and their queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::leases::{held, take_lease};
use crate::schema::operations;
use crate::DbConnection;

pub use crate::wire::{OperationKind, OperationState, OperationView};

/// A provisioning run as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = operations)]
pub struct Operation {
    pub id: i64,
    pub kind: String,
    pub requested_count: Option<i32>,
    /// JSON array of hostnames, for `destroy`.
    pub targets: Option<String>,
    pub state: String,
    pub requested_by: String,
    pub error: Option<String>,
    pub output_tail: String,
    pub created_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    /// The allocator holding the run while it is unfinished (see [`Operation::renew_leases`]).
    pub lease_owner: Option<String>,
    /// Until when it holds it, unless renewed.
    pub lease_expires_at: Option<NaiveDateTime>,
    /// The workshop whose VMs a creation makes.
    pub workshop_id: Option<i64>,
}

/// A provisioning run about to be queued.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = operations)]
pub struct NewOperation {
    pub kind: &'static str,
    pub requested_count: Option<i32>,
    pub targets: Option<String>,
    pub state: &'static str,
    pub requested_by: String,
    pub created_at: NaiveDateTime,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<NaiveDateTime>,
    pub workshop_id: Option<i64>,
}

impl NewOperation {
    /// A queued run of `kind`, asked for by `requested_by`.
    pub fn queued(kind: OperationKind, requested_by: &str, now: NaiveDateTime) -> Self {
        NewOperation {
            kind: kind.as_str(),
            requested_count: None,
            targets: None,
            state: OperationState::Queued.as_str(),
            requested_by: requested_by.to_owned(),
            created_at: now,
            lease_owner: None,
            lease_expires_at: None,
            workshop_id: None,
        }
    }

    /// The same run, held by `owner` until `until` from the moment it is stored.
    pub fn leased_to(self, owner: &str, until: NaiveDateTime) -> Self {
        NewOperation {
            lease_owner: Some(owner.to_owned()),
            lease_expires_at: Some(until),
            ..self
        }
    }
}

impl Operation {
    /// Stores a new run and returns it with its id.
    pub fn insert(conn: &mut DbConnection, new: &NewOperation) -> QueryResult<Operation> {
        on_backend!(conn, |c| diesel::insert_into(operations::table)
            .values(new)
            .returning(Operation::as_returning())
            .get_result(c))
    }

    /// The run with this id, if any.
    pub fn find_by_id(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Operation>> {
        operations::table
            .find(id)
            .select(Operation::as_select())
            .first(conn)
            .optional()
    }

    /// Marks the run as started.
    pub fn mark_running(
        conn: &mut DbConnection,
        id: i64,
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(operations::table.find(id))
            .set((
                operations::state.eq(OperationState::Running.as_str()),
                operations::started_at.eq(now),
            ))
            .execute(conn)
    }

    /// Marks the run as finished in `state`, keeping the tail of its output.
    pub fn finish(
        conn: &mut DbConnection,
        id: i64,
        state: OperationState,
        error: Option<&str>,
        output_tail: &str,
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(operations::table.find(id))
            .set((
                operations::state.eq(state.as_str()),
                operations::error.eq(error),
                operations::output_tail.eq(output_tail),
                operations::finished_at.eq(now),
                operations::lease_owner.eq(None::<String>),
                operations::lease_expires_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)
    }

    /// Takes over the unfinished runs nobody holds (no lease, a lease that has run out, or a
    /// holder that `owner_alive` says is gone): they are leased to `owner` until `until`, to
    /// be run again. Each is taken only if its lease is still the one read here, so a holder
    /// renewing meanwhile keeps its run, and of two allocators taking over at once only one
    /// gets each run. Returns the runs taken.
    pub fn take_over_abandoned(
        conn: &mut DbConnection,
        owner: &str,
        until: NaiveDateTime,
        now: NaiveDateTime,
        owner_alive: &dyn Fn(&str) -> bool,
    ) -> QueryResult<Vec<Operation>> {
        let unfinished: Vec<Operation> = operations::table
            .filter(operations::finished_at.is_null())
            .select(Operation::as_select())
            .load(conn)?;
        let mut marked = Vec::new();
        for run in unfinished {
            let lease = (run.lease_owner.as_deref(), run.lease_expires_at);
            if held(lease.0, lease.1, now, owner_alive) {
                continue;
            }
            let target = operations::table
                .filter(operations::id.eq(run.id))
                .filter(operations::finished_at.is_null());
            let updated = take_lease!(
                conn,
                operations,
                Operation,
                target,
                run.lease_expires_at,
                owner,
                until
            )?;
            marked.extend(updated);
        }
        Ok(marked)
    }

    /// Extends `owner`'s lease on these unfinished runs to `until`; returns how many it
    /// still holds.
    pub fn renew_leases(
        conn: &mut DbConnection,
        owner: &str,
        ids: &[i64],
        until: NaiveDateTime,
    ) -> QueryResult<usize> {
        diesel::update(
            operations::table
                .filter(operations::id.eq_any(ids))
                .filter(operations::finished_at.is_null())
                .filter(operations::lease_owner.eq(owner)),
        )
        .set(operations::lease_expires_at.eq(until))
        .execute(conn)
    }

    /// Records the hostnames a run works on (for a creation: the names it gives its VMs),
    /// as a JSON array, so an interrupted run can be tidied up after a restart.
    pub fn set_targets(
        conn: &mut DbConnection,
        id: i64,
        hostnames: &[String],
    ) -> QueryResult<usize> {
        let targets = serde_json::to_string(hostnames).unwrap_or_else(|_| "[]".to_owned());
        diesel::update(operations::table.find(id))
            .set(operations::targets.eq(targets))
            .execute(conn)
    }

    /// Where the run stands. A value this version does not know (written by a newer one)
    /// reads as failed, which nothing acts on.
    pub fn state(&self) -> OperationState {
        self.state.parse().unwrap_or(OperationState::Failed)
    }

    /// What the run does. An unknown value (from a newer version) reads as a creation.
    pub fn kind(&self) -> OperationKind {
        self.kind.parse().unwrap_or(OperationKind::Create)
    }

    /// The run as the admin API shows it.
    pub fn view(&self) -> OperationView {
        OperationView {
            operation_id: self.id,
            kind: self.kind(),
            state: self.state(),
            requested_count: self.requested_count,
            targets: self
                .targets
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            requested_by: self.requested_by.clone(),
            error: self.error.clone(),
            output_tail: self.output_tail.clone(),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            workshop_id: self.workshop_id,
        }
    }

    /// The hostnames recorded with [`Operation::set_targets`] (or asked for by a destroy).
    pub fn target_hostnames(&self) -> Vec<String> {
        self.targets
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    /// How many runs there are of each kind in each state: `(kind, state, count)`.
    pub fn count_by_kind_and_state(
        conn: &mut DbConnection,
    ) -> QueryResult<Vec<(String, String, i64)>> {
        operations::table
            .group_by((operations::kind, operations::state))
            .select((
                operations::kind,
                operations::state,
                diesel::dsl::count_star(),
            ))
            .order((operations::kind, operations::state))
            .load(conn)
    }

    /// The workshop's runs that have not finished.
    pub fn unfinished_for_workshop(
        conn: &mut DbConnection,
        workshop_id: i64,
    ) -> QueryResult<Vec<Operation>> {
        operations::table
            .filter(operations::workshop_id.eq(workshop_id))
            .filter(operations::finished_at.is_null())
            .select(Operation::as_select())
            .load(conn)
    }

    /// The newest runs first, at most `limit`.
    /// At most `limit` operations older than `before` (an id), newest first: a page of the
    /// admin API's list.
    pub fn page_before(
        conn: &mut DbConnection,
        before: i64,
        limit: i64,
    ) -> QueryResult<Vec<Operation>> {
        operations::table
            .filter(operations::id.lt(before))
            .order(operations::id.desc())
            .limit(limit)
            .select(Operation::as_select())
            .load(conn)
    }

    pub fn list_recent(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<Operation>> {
        operations::table
            .order(operations::id.desc())
            .limit(limit)
            .select(Operation::as_select())
            .load(conn)
    }
}
