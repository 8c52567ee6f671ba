//! Reading the audit trail as the admin API does: filtered, newest first, a page at a time.

use lablink_schema::audit_events::{AuditEvent, AuditFilter};
use lablink_schema::wire::{AuditEventView, AuditPage};

use crate::error::ApiError;
use crate::state::AppState;

/// Events on a page when the request says nothing.
pub const DEFAULT_PAGE: usize = 100;

/// One page: events matching `filter` older than `before`, at most `limit` (1 to
/// [`crate::paging::MAX_LIMIT`]).
pub async fn page(
    state: &AppState,
    filter: AuditFilter,
    before: Option<i64>,
    limit: Option<usize>,
) -> Result<AuditPage, ApiError> {
    let limit =
        i64::try_from(crate::paging::checked_limit(limit, DEFAULT_PAGE)?).unwrap_or(i64::MAX);
    // One more than asked tells whether a page before this one exists.
    let mut events = state
        .read(move |conn| AuditEvent::page(conn, &filter, before, limit + 1))
        .await?;
    let more = events.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_before = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage {
        events: events
            .into_iter()
            .map(|e| AuditEventView {
                id: e.id,
                occurred_at: e.occurred_at,
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect(),
        next_before,
    })
}
