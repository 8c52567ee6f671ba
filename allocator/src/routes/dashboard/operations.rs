//! The operations page (`/admin/operations`): the newest provisioning operations with their
//! output, and the live stream that follows them.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use lablink_actors::provisioning_queue::SubscribeOperations;
use lablink_schema::operations::{Operation, OperationState};
use serde::Serialize;

use super::{page_error, render, LISTED};
use crate::auth::SignedIn;
use crate::error::ApiError;
use crate::pages::display_time;
use crate::state::AppState;

/// One operation as the page lists it.
#[derive(Debug, Serialize)]
struct OperationView<'a> {
    id: i64,
    kind: &'a str,
    state: OperationState,
    requested_count: Option<i32>,
    targets: Option<String>,
    requested_by: &'a str,
    error: Option<&'a str>,
    output_tail: &'a str,
    created_at: String,
    finished_at: Option<String>,
}

impl<'a> From<&'a Operation> for OperationView<'a> {
    fn from(op: &'a Operation) -> Self {
        OperationView {
            id: op.id,
            kind: &op.kind,
            state: op.state(),
            requested_count: op.requested_count,
            targets: Some(op.target_hostnames().join(", ")).filter(|t| !t.is_empty()),
            requested_by: &op.requested_by,
            error: op.error.as_deref(),
            output_tail: &op.output_tail,
            created_at: display_time(op.created_at),
            finished_at: op.finished_at.map(display_time),
        }
    }
}

#[derive(Debug, Serialize)]
struct OperationsView<'a> {
    csrf: &'a str,
    operations: Vec<OperationView<'a>>,
}

/// `GET /admin/operations`.
pub async fn operations_page(state: web::Data<AppState>, session: SignedIn) -> HttpResponse {
    match state
        .read(|conn| Operation::list_recent(conn, LISTED))
        .await
    {
        Ok(operations) => render(
            &state,
            StatusCode::OK,
            "admin_operations",
            &OperationsView {
                csrf: session.csrf(),
                operations: operations.iter().map(OperationView::from).collect(),
            },
        ),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/operations/events`: each operation event as JSON.
pub async fn operation_events(state: web::Data<AppState>, _session: SignedIn) -> HttpResponse {
    let Ok(receiver) = state.executor.send(SubscribeOperations).await else {
        return page_error(ApiError::Unavailable(
            "Provisioning is unavailable.".to_owned(),
        ));
    };
    // What changed between rendering the page and subscribing would be lost: so the stream
    // starts with where each listed operation stands now (read after subscribing, so nothing
    // falls between the two).
    match state
        .read(|conn| Operation::list_recent(conn, LISTED))
        .await
    {
        Ok(current) => crate::sse::operations(&state, &current, receiver),
        Err(err) => page_error(err),
    }
}
