//! The `audit_events` table: who did what to which target, when; its model and its queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::audit_events;
use crate::DbConnection;

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: NaiveDateTime,
    /// Who acted: `admin`, `researcher:<email>`, `vm:<hostname>`, `system`.
    pub actor: String,
    /// What was done, e.g. `vm.release`, `vms.create`.
    pub action: String,
    pub target: Option<String>,
    /// Extra context; never a secret.
    pub detail: Option<String>,
}

/// An action about to be recorded.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent {
    pub occurred_at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// Which events to list: each given field must match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
}

impl AuditEvent {
    /// Appends an event and returns it with its id.
    pub fn record(conn: &mut DbConnection, new: &NewAuditEvent) -> QueryResult<AuditEvent> {
        on_backend!(conn, |c| diesel::insert_into(audit_events::table)
            .values(new)
            .returning(AuditEvent::as_returning())
            .get_result(c))
    }

    /// The events from `from` to `to` (either open), of `target` when given, oldest first, at
    /// most `limit`.
    pub fn list_between(
        conn: &mut DbConnection,
        from: Option<NaiveDateTime>,
        to: Option<NaiveDateTime>,
        target: Option<&str>,
        limit: i64,
    ) -> QueryResult<Vec<AuditEvent>> {
        // Open ends as times both databases store.
        let from = from.unwrap_or(chrono::DateTime::UNIX_EPOCH.naive_utc());
        let to = to.unwrap_or_else(|| {
            chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
                .and_then(|d| d.and_hms_opt(23, 59, 59))
                .unwrap_or_default()
        });
        match target {
            Some(target) => audit_events::table
                .filter(audit_events::occurred_at.between(from, to))
                .filter(audit_events::target.eq(target))
                .order((audit_events::occurred_at, audit_events::id))
                .limit(limit)
                .select(AuditEvent::as_select())
                .load(conn),
            None => audit_events::table
                .filter(audit_events::occurred_at.between(from, to))
                .order((audit_events::occurred_at, audit_events::id))
                .limit(limit)
                .select(AuditEvent::as_select())
                .load(conn),
        }
    }

    /// At most `limit` events matching `filter`, newest first (by id), older than `before`
    /// when given: one page of the admin API's audit list.
    pub fn page(
        conn: &mut DbConnection,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> QueryResult<Vec<AuditEvent>> {
        let mut select = audit_events::table.into_boxed();
        if let Some(before) = before {
            select = select.filter(audit_events::id.lt(before));
        }
        if let Some(actor) = &filter.actor {
            select = select.filter(audit_events::actor.eq(actor.clone()));
        }
        if let Some(action) = &filter.action {
            select = select.filter(audit_events::action.eq(action.clone()));
        }
        if let Some(target) = &filter.target {
            select = select.filter(audit_events::target.eq(target.clone()));
        }
        select
            .order(audit_events::id.desc())
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)
    }

    /// The newest events first, at most `limit`.
    pub fn list_recent(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditEvent>> {
        audit_events::table
            .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(conn)
    }
}
