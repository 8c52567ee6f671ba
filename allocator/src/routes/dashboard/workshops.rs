//! The workshops pages: `/admin/workshops` (every workshop, a form that makes one, and a
//! test send through the notification channels) and `/admin/workshops/{id}` (its state,
//! spend, timeline of planned and done actions, notifications, and end or extend it). The
//! forms are turned into the same requests as the JSON API's and go through the same admin
//! actions.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset};
use lablink_schema::wire::{
    Admission, ExtendWorkshop, WorkshopChange, WorkshopRequest, WorkshopView,
};
use serde::Serialize;

use super::{page_error, redirect, render};
use crate::admin_actions::workshops::{self, TestSend};
use crate::auth::{Caller, CsrfForm, SignedIn};
use crate::error::ApiError;
use crate::routes::workshops::{read_notifications, NotificationView};
use crate::state::AppState;

#[derive(Debug, Serialize)]
struct ListView<'a> {
    csrf: &'a str,
    workshops: Vec<WorkshopView>,
    error: Option<&'a str>,
    created_invite: Option<String>,
    tests: Option<Vec<TestSend>>,
    currency: &'a str,
    channels: Vec<String>,
    /// The allocator's `desktop.mode`, the default of a new workshop.
    desktop_mode: &'static str,
}

async fn list_page(
    state: &AppState,
    session: &SignedIn,
    status: StatusCode,
    error: Option<&str>,
    tests: Option<Vec<TestSend>>,
) -> HttpResponse {
    match workshops::list(state).await {
        Ok(listed) => render(
            state,
            status,
            "admin_workshops",
            &ListView {
                csrf: session.csrf(),
                workshops: listed,
                error,
                created_invite: None,
                tests,
                currency: &state.workshops.config.currency,
                desktop_mode: state.workshops.desktop_mode.as_str(),
                channels: state
                    .workshops
                    .channels
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect(),
            },
        ),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/workshops`.
pub async fn list(state: web::Data<AppState>, session: SignedIn) -> HttpResponse {
    list_page(&state, &session, StatusCode::OK, None, None).await
}

/// A time from the form: a `datetime-local` value and a UTC offset such as `-08:00`.
fn form_time(form: &CsrfForm, field: &str, offset: &str) -> Result<DateTime<FixedOffset>, String> {
    let local = form.field(field).map(str::trim).unwrap_or_default();
    if local.is_empty() {
        return Err(format!("{field}: give a date and time"));
    }
    let with_seconds = if local.len() == 16 {
        format!("{local}:00")
    } else {
        local.to_owned()
    };
    DateTime::parse_from_rfc3339(&format!("{with_seconds}{offset}"))
        .map_err(|_| format!("{field}: `{local}` with offset `{offset}` is not a date and time"))
}

fn form_number(form: &CsrfForm, field: &str) -> Result<Option<u32>, String> {
    match form.field(field).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("{field}: `{text}` is not a whole number")),
    }
}

/// The create form as the API's request.
fn request_from_form(form: &CsrfForm) -> Result<WorkshopRequest, String> {
    let offset = form
        .field("utc_offset")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("+00:00");
    let text = |name: &str| {
        form.field(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut vm_settings = BTreeMap::new();
    for (number, line) in form
        .field("vm_settings")
        .unwrap_or_default()
        .lines()
        .enumerate()
    {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("VM settings line {}: write it as name=value", number + 1))?;
        vm_settings.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    let admission = match form.field("admission").unwrap_or("open") {
        "invite" => Admission::Invite,
        "roster" => Admission::Roster,
        _ => Admission::Open,
    };
    let warning_minutes = match text("warning_minutes") {
        None => Some(Vec::new()),
        Some(list) => Some(
            list.split([',', ' '])
                .filter(|m| !m.is_empty())
                .map(|m| {
                    m.parse::<u32>()
                        .map_err(|_| format!("warning_minutes: `{m}` is not a number of minutes"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let spend_cap = match text("spend_cap") {
        None => None,
        Some(cap) => Some(
            cap.parse::<f64>()
                .map_err(|_| format!("spend_cap: `{cap}` is not an amount"))?,
        ),
    };
    Ok(WorkshopRequest {
        name: form.field("name").unwrap_or_default().to_owned(),
        starts_at: form_time(form, "starts_at", offset)?,
        ends_at: form_time(form, "ends_at", offset)?,
        time_zone: text("time_zone"),
        headcount: form_number(form, "headcount")?.unwrap_or(0),
        spare_vms: form_number(form, "spare_vms")?,
        warmup_lead_secs: form_number(form, "warmup_lead_minutes")?
            .unwrap_or(30)
            .saturating_mul(60),
        vm_settings,
        admission: Some(admission),
        invite_code: text("invite_code").filter(|_| admission == Admission::Invite),
        roster: text("roster").filter(|_| admission == Admission::Roster),
        warning_minutes,
        keep_after_end_secs: form_number(form, "keep_after_end_minutes")?
            .map(|m| m.saturating_mul(60)),
        spend_cap,
        teardown_at_cap: form.field("teardown_at_cap").is_some(),
        idle_release_secs: form_number(form, "idle_release_minutes")?.map(|m| m.saturating_mul(60)),
        idle_warning_secs: None,
        max_session_secs: form_number(form, "max_session_minutes")?.map(|m| m.saturating_mul(60)),
        desktop_mode: text("desktop_mode").map(|m| m.parse()).transpose()?,
    })
}

/// `POST /admin/workshops/create`: back to the list, with the invite code shown once.
pub async fn create(state: web::Data<AppState>, form: CsrfForm) -> HttpResponse {
    let request = match request_from_form(&form) {
        Ok(request) => request,
        Err(error) => {
            return list_page(
                &state,
                &form.session,
                StatusCode::BAD_REQUEST,
                Some(&error),
                None,
            )
            .await
        }
    };
    match workshops::create(&state, &Caller::Admin, request).await {
        Ok(created) => match created.invite_code {
            None => redirect(&format!("/admin/workshops/{}", created.workshop.id)),
            Some(code) => {
                detail_page(&state, &form.session, created.workshop.id, None, Some(code)).await
            }
        },
        Err(ApiError::BadRequest(error)) => {
            list_page(
                &state,
                &form.session,
                StatusCode::BAD_REQUEST,
                Some(&error),
                None,
            )
            .await
        }
        Err(err) => page_error(err),
    }
}

/// `POST /admin/notifications/test`: the list page with what each channel answered.
pub async fn test_send(state: web::Data<AppState>, form: CsrfForm) -> HttpResponse {
    match workshops::test_send(&state, &Caller::Admin).await {
        Ok(results) => list_page(&state, &form.session, StatusCode::OK, None, Some(results)).await,
        Err(err) => page_error(err),
    }
}

#[derive(Debug, Serialize)]
struct DetailView<'a> {
    csrf: &'a str,
    workshop: WorkshopView,
    notifications: Vec<NotificationView>,
    error: Option<&'a str>,
    invite_code: Option<String>,
    /// An invite workshop (its code can be replaced).
    invite: bool,
    /// The end, for the extend form: `datetime-local` value and offset.
    ends_local: String,
    offset: String,
    /// The workshop's offset from UTC in seconds, for the times shown.
    offset_secs: i32,
}

async fn detail_page(
    state: &AppState,
    session: &SignedIn,
    id: i64,
    error: Option<&str>,
    invite_code: Option<String>,
) -> HttpResponse {
    let workshop = match workshops::show(state, id).await {
        Ok(workshop) => workshop,
        Err(err) => return page_error(err),
    };
    let notifications = match read_notifications(state, Some(id), None, 50).await {
        Ok(listed) => listed,
        Err(err) => return page_error(err),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(
        state,
        status,
        "admin_workshop",
        &DetailView {
            csrf: session.csrf(),
            ends_local: workshop.ends_at.format("%Y-%m-%dT%H:%M").to_string(),
            invite: workshop.admission == Admission::Invite,
            offset: workshop.ends_at.format("%:z").to_string(),
            offset_secs: workshop.ends_at.offset().local_minus_utc(),
            workshop,
            notifications,
            error,
            invite_code,
        },
    )
}

/// `GET /admin/workshops/{id}`.
pub async fn detail(
    state: web::Data<AppState>,
    session: SignedIn,
    id: web::Path<i64>,
) -> HttpResponse {
    detail_page(&state, &session, *id, None, None).await
}

/// `POST /admin/workshops/{id}/end`.
pub async fn end(state: web::Data<AppState>, form: CsrfForm, id: web::Path<i64>) -> HttpResponse {
    match workshops::end_now(&state, &Caller::Admin, *id).await {
        Ok(_) => redirect(&format!("/admin/workshops/{id}")),
        Err(ApiError::Conflict(error)) => {
            detail_page(&state, &form.session, *id, Some(&error), None).await
        }
        Err(err) => page_error(err),
    }
}

/// `POST /admin/workshops/{id}/edit`: the same change as `PATCH /api/admin/workshops/{id}`.
pub async fn edit(state: web::Data<AppState>, form: CsrfForm, id: web::Path<i64>) -> HttpResponse {
    let text = |name: &str| form.field(name).map(str::to_owned);
    let change = match (
        form_number(&form, "headcount"),
        form_number(&form, "spare_vms"),
    ) {
        (Ok(headcount), Ok(spare_vms)) => WorkshopChange {
            name: text("name"),
            time_zone: text("time_zone"),
            headcount,
            spare_vms,
            roster: text("roster").filter(|r| !r.trim().is_empty()),
            invite_code: text("invite_code").filter(|c| !c.trim().is_empty()),
        },
        (Err(error), _) | (_, Err(error)) => {
            return detail_page(&state, &form.session, *id, Some(&error), None).await
        }
    };
    match workshops::edit(&state, &Caller::Admin, *id, change).await {
        Ok(_) => redirect(&format!("/admin/workshops/{id}")),
        Err(ApiError::BadRequest(error) | ApiError::Conflict(error)) => {
            detail_page(&state, &form.session, *id, Some(&error), None).await
        }
        Err(err) => page_error(err),
    }
}

/// `POST /admin/workshops/{id}/extend`.
pub async fn extend(
    state: web::Data<AppState>,
    form: CsrfForm,
    id: web::Path<i64>,
) -> HttpResponse {
    let offset = form
        .field("utc_offset")
        .unwrap_or("+00:00")
        .trim()
        .to_owned();
    let ends_at = match form_time(&form, "ends_at", &offset) {
        Ok(ends_at) => ends_at,
        Err(error) => return detail_page(&state, &form.session, *id, Some(&error), None).await,
    };
    match workshops::extend(&state, &Caller::Admin, *id, ExtendWorkshop { ends_at }).await {
        Ok(_) => redirect(&format!("/admin/workshops/{id}")),
        Err(ApiError::BadRequest(error) | ApiError::Conflict(error)) => {
            detail_page(&state, &form.session, *id, Some(&error), None).await
        }
        Err(err) => page_error(err),
    }
}
