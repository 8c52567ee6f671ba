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

impl AuditEvent {
    /// Appends an event and returns it with its id.
    pub fn record(conn: &mut DbConnection, new: &NewAuditEvent) -> QueryResult<AuditEvent> {
        on_backend!(conn, |c| diesel::insert_into(audit_events::table)
            .values(new)
            .returning(AuditEvent::as_returning())
            .get_result(c))
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
