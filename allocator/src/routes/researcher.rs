//! The researcher's side: the start page (`/`, or `/w/{id}` for a workshop),
//! `POST /api/request_vm` (form `email`, `crd_command`, optional `rejoin_code`, and for a
//! workshop `workshop` and `invite_code`), the live count of free VMs, and a workshop's
//! current notice for the participant's page.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_actors::claim_batcher::AssignVm;
use lablink_actors::db_writer::WriteError;
use lablink_schema::vms::Vm;
use lablink_schema::wire::UnassignedVmCount;
use serde::Deserialize;

use crate::admin_actions::workshops::view::local;
use crate::assignment_proof::new_pin;
use crate::assignment_proof::{self, browser_cookie, browser_key};
use crate::config::DesktopMode;
use crate::error::{retry_after_secs, ApiError};
use crate::metrics::Refusal;
use crate::page_error::PageError;
use crate::pages::{AssignedPage, HomePage};
use crate::participant_journey;
use crate::state::AppState;
use crate::validate;
use crate::workshop_admission::{self, WorkshopBanner};
use lablink_actors::lifecycle_writes::ExtendSession;
use lablink_schema::wire::JourneyStep;
use lablink_schema::wire::{Admission, SessionView, WorkshopNotice};
use lablink_schema::workshops::Workshop;

/// The form on the start page. Missing fields read as empty and get a clear message.
#[derive(Deserialize)]
pub struct RequestVmForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    crd_command: String,
    #[serde(default)]
    rejoin_code: String,
    /// The workshop's id, from its start page; empty for the implicit workshop.
    #[serde(default)]
    workshop: String,
    #[serde(default)]
    invite_code: String,
}

pub(super) fn is_https(request: &HttpRequest) -> bool {
    request.connection_info().scheme() == "https"
}

/// `GET /`. Gives the browser its key, so that what it claims it can see again.
pub async fn home(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, PageError> {
    start_page(&state, &request, None).await
}

/// `GET /w/{id}`: a workshop's start page, with its name and whether it is open.
pub async fn workshop_home(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let workshop = find_workshop(&state, *id).await?;
    start_page(&state, &request, Some(workshop)).await
}

async fn start_page(
    state: &AppState,
    request: &HttpRequest,
    workshop: Option<Workshop>,
) -> Result<HttpResponse, PageError> {
    let workshop_id = workshop.as_ref().map(|w| w.id);
    let count = state
        .read(move |conn| Vm::count_free_in(conn, workshop_id))
        .await?;
    let mut response = render_home(
        state,
        StatusCode::OK,
        HomePage {
            count,
            workshop: workshop.as_ref().map(WorkshopBanner::of),
            browser_desktop: state.workshops.desktop_mode_of(workshop.as_ref())
                == DesktopMode::Browser,
            ..HomePage::default()
        },
    )?;
    let (key, new) = browser_key(request);
    if new {
        let _ = response.add_cookie(&browser_cookie(&key, is_https(request)));
    }
    Ok(response)
}

async fn find_workshop(state: &AppState, id: i64) -> Result<Workshop, ApiError> {
    state
        .read(move |conn| Workshop::find(conn, id))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(
                "There is no such workshop. Check the link your instructor gave you.".to_owned(),
            )
        })
}

/// Query of `GET /api/unassigned_vms_count`.
#[derive(Debug, Deserialize)]
pub struct CountQuery {
    /// Count one workshop's VMs; unset, the implicit workshop's.
    #[serde(default)]
    workshop: Option<i64>,
}

/// `GET /api/unassigned_vms_count`.
#[utoipa::path(
    get,
    path = "/api/unassigned_vms_count",
    tag = "researchers",
    responses(
        (status = 200, description = "How many VMs are free", body = UnassignedVmCount)
    ),
)]
pub async fn unassigned_count(
    state: web::Data<AppState>,
    query: web::Query<CountQuery>,
) -> Result<HttpResponse, ApiError> {
    let workshop = query.workshop;
    let count = state
        .read(move |conn| Vm::count_free_in(conn, workshop))
        .await?;
    Ok(HttpResponse::Ok().json(UnassignedVmCount { count }))
}

/// `GET /api/workshops/{id}/notice`: the workshop's state, end and current warning, for the
/// participant's page to show without a reload.
#[utoipa::path(
    get,
    path = "/api/workshops/{id}/notice",
    tag = "researchers",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "The workshop's state, end and warning", body = WorkshopNotice),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
)]
pub async fn workshop_notice(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let workshop = find_workshop(&state, *id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(WorkshopNotice {
            state: workshop.state(),
            ends_at: local(&workshop, workshop.ends_at),
            notice: workshop.notice,
        }))
}

/// Why the start page is shown again instead of a VM.
pub(super) struct Refused {
    status: StatusCode,
    reason: Refusal,
    pub(super) message: String,
    retry_after: Option<std::time::Duration>,
}

impl Refused {
    fn new(status: StatusCode, reason: Refusal, message: impl Into<String>) -> Self {
        Refused {
            status,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// `POST /api/request_vm`: assigns a VM and shows its hostname and PIN, or shows the start
/// page again with what went wrong and the form still filled in.
#[utoipa::path(
    post,
    path = "/api/request_vm",
    tag = "researchers",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`email`, `crd_command` (CRD mode), and a workshop's `invite_code` or rejoin fields"),
    responses(
        (status = 200, description = "The assigned page, or the start page with what to fix (HTML)", body = String, content_type = "text/html"),
        (status = 303, description = "Browser desktop: to /desktop, with its cookie")
    ),
)]
pub async fn request_vm(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<RequestVmForm>,
) -> Result<HttpResponse, PageError> {
    let (key, new_key) = browser_key(&request);
    let workshop = match form.workshop.trim() {
        "" => None,
        id => {
            let id = id.parse::<i64>().map_err(|_| {
                ApiError::BadRequest("The workshop field is not a workshop's number.".to_owned())
            })?;
            Some(find_workshop(&state, id).await?)
        }
    };
    let mut response = match claim(&state, &request, &form, &key, workshop.as_ref()).await {
        Ok(response) => response,
        Err(refused) => {
            state.metrics.refused(refused.reason);
            let workshop_id = workshop.as_ref().map(|w| w.id);
            let count = state
                .read(move |conn| Vm::count_free_in(conn, workshop_id))
                .await
                .unwrap_or(0);
            let mut page = render_home(
                &state,
                refused.status,
                HomePage {
                    count,
                    error: Some(&refused.message),
                    email: &form.email,
                    crd_command: &form.crd_command,
                    rejoin_code: &form.rejoin_code,
                    needs_proof: refused.reason == Refusal::NeedsProof,
                    workshop: workshop.as_ref().map(WorkshopBanner::of),
                    invite_code: &form.invite_code,
                    browser_desktop: state.workshops.desktop_mode_of(workshop.as_ref())
                        == DesktopMode::Browser,
                },
            )?;
            if let Some(wait) = refused.retry_after {
                page.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from_str(&retry_after_secs(wait))
                        .map_err(|e| ApiError::Internal(e.to_string()))?,
                );
            }
            page
        }
    };
    if new_key {
        let _ = response.add_cookie(&browser_cookie(&key, is_https(&request)));
    }
    Ok(response)
}

async fn claim(
    state: &AppState,
    request: &HttpRequest,
    form: &RequestVmForm,
    key: &str,
    workshop: Option<&Workshop>,
) -> Result<HttpResponse, Refused> {
    let client = state.client_addresses.of(request);
    if let Err(wait) = state.admission.admit(client) {
        let seconds = retry_after_secs(wait);
        return Err(Refused {
            retry_after: Some(wait),
            ..Refused::new(
                StatusCode::TOO_MANY_REQUESTS,
                Refusal::RateLimited,
                format!(
                    "Too many requests are arriving just now. Please wait {seconds} seconds, \
                     then press the button again."
                ),
            )
        });
    }
    let email = validate::email(&form.email)
        .map_err(|e| Refused::new(StatusCode::BAD_REQUEST, Refusal::InvalidEmail, e))?;
    // A browser desktop needs nothing from Google: the assignment carries no command.
    let mode = state.workshops.desktop_mode_of(workshop);
    let crd_command = match mode {
        DesktopMode::Browser => String::new(),
        DesktopMode::Crd => validate::crd_command(&form.crd_command)
            .map_err(|e| Refused::new(StatusCode::BAD_REQUEST, Refusal::InvalidCommand, e))?,
    };
    if let Some(workshop) = workshop {
        admit(state, workshop, &email, &form.invite_code).await?;
    }
    let assigned = state
        .claims
        .assign(AssignVm {
            email: email.clone(),
            crd_command,
            pin: new_pin(),
            claimed_by: Some(assignment_proof::claimed_by(key)),
            workshop_id: workshop.map(|w| w.id),
        })
        .await;
    let (vm, newly_assigned) = match assigned {
        Ok(assignment) => (assignment.vm, assignment.newly_assigned),
        Err(WriteError::NoFreeVm) => {
            return Err(Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Refusal::NoFreeVm,
                "No VM is free right now. Please try again in a few minutes, or ask your \
                 instructor.",
            ))
        }
        Err(WriteError::Contended) => {
            return Err(Refused::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Contended,
                "Many people are asking at once; please press the button again.",
            ))
        }
        Err(err) => return outcome_unknown(state, &email, key, err, workshop).await,
    };
    if !newly_assigned && !assignment_proof::proves(&state.signer, &vm, key, &form.rejoin_code) {
        return Err(Refused::new(
            StatusCode::CONFLICT,
            Refusal::NeedsProof,
            "This email already has a VM. To see it again, use the browser you first asked \
             from, or enter the rejoin code you were shown then. Otherwise, ask your \
             instructor for help.",
        ));
    }
    tracing::info!(hostname = %vm.hostname, new = newly_assigned, "VM assigned");
    state.metrics.assigned(newly_assigned);
    if mode == DesktopMode::Browser {
        return Ok(super::desktop::to_desktop(state, request, &vm));
    }
    assigned_page(state, &vm, newly_assigned, workshop).await
}

/// The VM this browser holds, if any (by the key its cookie carries).
pub(super) async fn held_by_browser(
    state: &AppState,
    request: &HttpRequest,
) -> Result<Option<Vm>, ApiError> {
    let (key, new) = browser_key(request);
    if new {
        return Ok(None);
    }
    let claimer = assignment_proof::claimed_by(&key);
    state
        .read(move |conn| Vm::find_by_claimer(conn, &claimer))
        .await
}

/// The session as the participant's page shows it.
async fn session_view(state: &AppState, vm: &Vm) -> Result<SessionView, ApiError> {
    let workshop_notice = match vm.workshop_id {
        Some(id) => state
            .read(move |conn| Workshop::find(conn, id))
            .await?
            .and_then(|w| w.notice),
        None => None,
    };
    Ok(SessionView {
        hostname: vm.hostname.clone(),
        session_notice: vm.session_notice.clone(),
        workshop_notice,
    })
}

/// `GET /api/session`: the warnings for the session this browser holds; 404 when it holds
/// none.
#[utoipa::path(
    get,
    path = "/api/session",
    tag = "researchers",
    responses(
        (status = 200, description = "The warnings of the session this browser holds", body = SessionView),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
)]
pub async fn session(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let vm = held_by_browser(&state, &request)
        .await?
        .ok_or_else(|| ApiError::NotFound("This browser holds no VM.".to_owned()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(session_view(&state, &vm).await?))
}

/// `POST /api/session/extend`: "I am still here": the idle clock of this browser's session
/// starts again. Answers the VM's page again (or JSON, to a script that asks for it).
#[utoipa::path(
    post,
    path = "/api/session/extend",
    tag = "researchers",
    responses(
        (status = 200, description = "The session, its idle clock restarted", body = SessionView),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
)]
pub async fn extend_session(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let (key, new) = browser_key(&request);
    let extended = if new {
        None
    } else {
        state
            .writer
            .send(ExtendSession {
                claimed_by: assignment_proof::claimed_by(&key),
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))?
    };
    let vm = extended.ok_or_else(|| {
        ApiError::NotFound(
            "This browser holds no VM any more. Ask for one again on the start page.".to_owned(),
        )
    })?;
    tracing::info!(hostname = %vm.hostname, "session extended by its participant");
    let wants_json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok(HttpResponse::Ok().json(session_view(&state, &vm).await?));
    }
    let workshop = match vm.workshop_id {
        Some(id) => state.read(move |conn| Workshop::find(conn, id)).await?,
        None => None,
    };
    assigned_page(&state, &vm, false, workshop.as_ref())
        .await
        .map_err(|refused| PageError(ApiError::Internal(refused.message)))
}

/// Refuses a participant the workshop does not let in now.
async fn admit(
    state: &AppState,
    workshop: &Workshop,
    email: &str,
    invite_code: &str,
) -> Result<(), Refused> {
    let on_roster = if workshop.admission() == Admission::Roster {
        let (id, email) = (workshop.id, email.to_owned());
        state
            .read(move |conn| Workshop::on_roster(conn, id, &email))
            .await
            .map_err(|_| {
                Refused::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Refusal::Contended,
                    "The workshop's list could not be checked just now; please try again.",
                )
            })?
    } else {
        false
    };
    workshop_admission::check(workshop, invite_code, || on_roster)
        .map_err(|why| Refused::new(StatusCode::FORBIDDEN, Refusal::NotAdmitted, why.message()))
}

/// A claim failed in a way that may still have committed (the connection broke around the
/// commit): look, and never tell the researcher it failed when it may not have.
async fn outcome_unknown(
    state: &AppState,
    email: &str,
    key: &str,
    err: WriteError,
    workshop: Option<&Workshop>,
) -> Result<HttpResponse, Refused> {
    tracing::warn!(error = %err, "a claim failed; checking whether it took effect");
    let lookup = email.to_owned();
    let held = state
        .read(move |conn| Vm::find_by_email(conn, &lookup))
        .await;
    match held {
        Ok(Some(vm)) if assignment_proof::proves(&state.signer, &vm, key, "") => {
            state.metrics.assigned(true);
            assigned_page(state, &vm, true, workshop).await
        }
        Ok(None) => Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Contended,
            "Your request could not be completed and you have no VM yet. Please press the \
             button again in a moment.",
        )),
        _ => Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Contended,
            "We could not confirm your request: you may already have a VM. Please press the \
             button again in a minute; if you have one, it will be shown.",
        )),
    }
}

pub(super) async fn assigned_page(
    state: &AppState,
    vm: &Vm,
    newly_assigned: bool,
    workshop: Option<&Workshop>,
) -> Result<HttpResponse, Refused> {
    let rejoin_code = newly_assigned.then(|| assignment_proof::rejoin_code(&state.signer, vm));
    // The page shows the VM even when its journey cannot be read just now.
    let journey = participant_journey::of_vm(state, vm)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, hostname = %vm.hostname, "cannot read the journey");
            None
        });
    let step = journey.as_ref().map(|j| j.step);
    let page = AssignedPage {
        hostname: &vm.hostname,
        pin: vm.pin.as_deref().unwrap_or_default(),
        existing: !newly_assigned,
        rejoin_code: rejoin_code.as_deref(),
        workshop: workshop.map(WorkshopBanner::of),
        session_notice: vm.session_notice.as_deref(),
        live: step.is_some_and(|s| s != JourneyStep::Ended),
        failed: step == Some(JourneyStep::Failed),
        journey,
    };
    match state.pages.render("assigned", &page) {
        Ok(html) => Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(html)),
        Err(err) => {
            tracing::error!(error = %err, "cannot render the assigned page");
            Err(Refused::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Refusal::Contended,
                "Your VM is assigned but this page could not be shown; press the button again.",
            ))
        }
    }
}

fn render_home(
    state: &AppState,
    status: StatusCode,
    page: HomePage<'_>,
) -> Result<HttpResponse, PageError> {
    let html = state
        .pages
        .render("index", &page)
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}
