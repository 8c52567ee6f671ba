//! The audit page (`/admin/audit`): the newest admin actions, who did them, and on what.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use lablink_schema::audit_events::AuditEvent;
use serde::Serialize;

use super::{page_error, render, LISTED};
use crate::auth::SignedIn;
use crate::pages::display_time;
use crate::state::AppState;

#[derive(Debug, Serialize)]
struct AuditEventView<'a> {
    occurred_at: String,
    actor: &'a str,
    action: &'a str,
    target: Option<&'a str>,
    detail: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct AuditView<'a> {
    csrf: &'a str,
    events: Vec<AuditEventView<'a>>,
}

/// `GET /admin/audit`.
pub async fn audit_page(state: web::Data<AppState>, session: SignedIn) -> HttpResponse {
    match state
        .read(|conn| AuditEvent::list_recent(conn, LISTED))
        .await
    {
        Ok(events) => render(
            &state,
            StatusCode::OK,
            "admin_audit",
            &AuditView {
                csrf: session.csrf(),
                events: events
                    .iter()
                    .map(|e| AuditEventView {
                        occurred_at: display_time(e.occurred_at),
                        actor: &e.actor,
                        action: &e.action,
                        target: e.target.as_deref(),
                        detail: e.detail.as_deref(),
                    })
                    .collect(),
            },
        ),
        Err(err) => page_error(err),
    }
}
