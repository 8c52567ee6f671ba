//! The allocator's own log page (`/admin/log`): its recent events, masked, newest first
//! ([`crate::recent_log`]), so an operator without shell access can see why, say, a
//! provisioning run failed.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::render;
use crate::auth::SignedIn;
use crate::pages::display_time;
use crate::recent_log::{self, KEPT_EVENTS};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AllocatorLogParams {
    /// `true`: warnings and errors only.
    #[serde(default)]
    errors: bool,
}

#[derive(Debug, Serialize)]
struct EventView {
    at: String,
    level: String,
    target: String,
    text: String,
    serious: bool,
}

#[derive(Debug, Serialize)]
struct AllocatorLogView<'a> {
    csrf: &'a str,
    events: Vec<EventView>,
    errors_only: bool,
    kept: usize,
}

/// `GET /admin/log?errors=true`.
pub async fn allocator_log_page(
    state: web::Data<AppState>,
    session: SignedIn,
    params: web::Query<AllocatorLogParams>,
) -> HttpResponse {
    let events = recent_log::global()
        .newest_first(params.errors)
        .into_iter()
        .map(|event| EventView {
            at: display_time(event.at),
            serious: event.level <= tracing::Level::WARN,
            level: event.level.to_string(),
            target: event.target,
            text: event.text,
        })
        .collect();
    render(
        &state,
        StatusCode::OK,
        "admin_log",
        &AllocatorLogView {
            csrf: session.csrf(),
            events,
            errors_only: params.errors,
            kept: KEPT_EVENTS,
        },
    )
}

/// `GET /api/admin/allocator-log?errors=true`: the same events as JSON, newest first.
#[utoipa::path(
    get,
    path = "/api/admin/allocator-log",
    tag = "admin: audit",
    params(AllocatorLogParams),
    responses(
        (status = 200, description = "The allocator's recent events, masked, newest first", body = Vec<lablink_schema::wire::AllocatorLogEvent>),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn allocator_log_json(
    _admin: crate::auth::AdminCaller,
    params: web::Query<AllocatorLogParams>,
) -> HttpResponse {
    let events: Vec<lablink_schema::wire::AllocatorLogEvent> = recent_log::global()
        .newest_first(params.errors)
        .into_iter()
        .map(|event| lablink_schema::wire::AllocatorLogEvent {
            at: event.at,
            level: event.level.to_string(),
            target: event.target,
            text: event.text,
        })
        .collect();
    HttpResponse::Ok().json(events)
}
