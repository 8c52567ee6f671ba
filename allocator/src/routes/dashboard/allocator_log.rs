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

#[derive(Debug, Deserialize)]
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
