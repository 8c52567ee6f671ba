//! The participant's session after the claim, found by the browser's key: `GET /session`
//! (the VM's page again, which reloads itself while the journey goes on when there is no
//! script), `GET /api/session/journey` (its steps as JSON) and `…/journey/events` (the same,
//! live, as server-sent events), and `POST /api/session/new_vm` (another VM, when this one
//! broke).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_actors::claim_batcher::AssignVm;
use lablink_schema::wire::JourneyView;
use lablink_schema::workshops::Workshop;

use super::researcher::{assigned_page, held_by_browser};
use crate::assignment_proof::{self, browser_key, new_pin};
use crate::error::ApiError;
use crate::page_error::PageError;
use crate::participant_journey;
use crate::state::AppState;

/// How often a live participant's page looks at its session.
const JOURNEY_POLL: Duration = Duration::from_secs(2);

fn no_vm() -> ApiError {
    ApiError::NotFound("This browser holds no VM. Ask for one on the start page.".to_owned())
}

async fn workshop_of(state: &AppState, id: Option<i64>) -> Result<Option<Workshop>, ApiError> {
    match id {
        Some(id) => state.read(move |conn| Workshop::find(conn, id)).await,
        None => Ok(None),
    }
}

/// `GET /session`: the page of the VM this browser holds; the start page when it holds none.
pub async fn session_page(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let Some(vm) = held_by_browser(&state, &request).await? else {
        return Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/"))
            .finish());
    };
    let workshop = workshop_of(&state, vm.workshop_id).await?;
    assigned_page(&state, &vm, false, workshop.as_ref())
        .await
        .map_err(|refused| PageError(ApiError::Internal(refused.message)))
}

/// The journey of the session this browser holds.
async fn current_journey(
    state: &AppState,
    request: &HttpRequest,
) -> Result<Option<JourneyView>, ApiError> {
    match held_by_browser(state, request).await? {
        Some(vm) => participant_journey::of_vm(state, &vm).await,
        None => Ok(None),
    }
}

/// `GET /api/session/journey`.
#[utoipa::path(
    get,
    path = "/api/session/journey",
    tag = "researchers",
    responses(
        (status = 200, description = "The participant's steps", body = JourneyView),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
)]
pub async fn journey(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let journey = current_journey(&state, &request).await?.ok_or_else(no_vm)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(journey))
}

/// `GET /api/session/journey/events`: the journey now, then again whenever it changes;
/// `event: gone` once the browser holds no VM any more.
#[utoipa::path(
    get,
    path = "/api/session/journey/events",
    tag = "researchers",
    responses(
        (status = 200, description = "Server-sent events: the journey, again on every change; `event: gone` at the end", body = String, content_type = "text/event-stream"),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
)]
pub async fn journey_events(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let first = current_journey(&state, &request).await?.ok_or_else(no_vm)?;
    let reader = state.clone();
    // (the browser's request, a journey to send before looking again, the last one sent,
    // whether the session is gone)
    let start = (request, Some(first), String::new(), false);
    let events = futures_util::stream::unfold(start, move |(request, mut next, sent, gone)| {
        let state = reader.clone();
        async move {
            if gone {
                return None;
            }
            loop {
                let journey = match next.take() {
                    Some(journey) => Some(journey),
                    None => {
                        tokio::time::sleep(JOURNEY_POLL).await;
                        match current_journey(&state, &request).await {
                            Ok(journey) => journey,
                            // A failed read is tried again at the next look.
                            Err(_) => continue,
                        }
                    }
                };
                let Some(journey) = journey else {
                    let event = "event: gone\ndata: no VM\n\n".to_owned();
                    return Some((event, (request, None, sent, true)));
                };
                let json = serde_json::to_string(&journey).unwrap_or_default();
                if json != sent {
                    let event = crate::sse::data_event(&json);
                    return Some((event, (request, None, json, false)));
                }
            }
        }
    });
    Ok(crate::sse::event_stream(&state, events))
}

/// `POST /api/session/new_vm`: this browser's VM broke; the participant gets another, with
/// the same email and command, a new PIN, and the page of the new VM. Refused (409) while
/// the VM works.
#[utoipa::path(
    post,
    path = "/api/session/new_vm",
    tag = "researchers",
    responses(
        (status = 200, description = "Another VM for this browser's broken one", body = JourneyView),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody),
        (status = 409, description = "Conflict", body = lablink_schema::wire::ErrorBody),
        (status = 503, description = "Unavailable", body = lablink_schema::wire::ErrorBody)
    ),
)]
pub async fn new_vm(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let vm = held_by_browser(&state, &request).await?.ok_or_else(no_vm)?;
    if !vm.state().blocks_assignment() {
        return Err(ApiError::Conflict(
            "Your VM works; there is no need for another. Go back to your VM's page.".to_owned(),
        )
        .into());
    }
    let (Some(email), Some(crd_command)) = (vm.user_email.clone(), vm.crd_command.clone()) else {
        return Err(no_vm().into());
    };
    let (key, _) = browser_key(&request);
    let assignment = state
        .claims
        .assign(AssignVm {
            email,
            crd_command,
            pin: new_pin(),
            claimed_by: Some(assignment_proof::claimed_by(&key)),
            workshop_id: vm.workshop_id,
        })
        .await
        .map_err(|err| match err {
            lablink_actors::db_writer::WriteError::NoFreeVm => ApiError::Unavailable(
                "No other VM is free right now. Please try again in a minute, or ask your \
                 instructor."
                    .to_owned(),
            ),
            other => ApiError::Unavailable(format!(
                "A new VM could not be given just now ({other}); please press the button again."
            )),
        })?;
    tracing::info!(
        broken = %vm.hostname,
        hostname = %assignment.vm.hostname,
        "a participant took another VM after theirs broke"
    );
    let workshop = workshop_of(&state, vm.workshop_id).await?;
    let newly = assignment.newly_assigned;
    assigned_page(&state, &assignment.vm, newly, workshop.as_ref())
        .await
        .map_err(|refused| PageError(ApiError::Internal(refused.message)))
}
