//! The instructor's peek at a participant's desktop: `/admin/vms/{hostname}/desktop`, a
//! signed-in admin's view-only noVNC page bound to the assignment it was opened for, and its
//! socket. Input is dropped on the allocator ([`crate::desktop::view_only`]), not only in the
//! viewer; the participant's page shows that an instructor is viewing.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{assignment_ended, from_own_page, stream_frames, upgrade};
use crate::admin_actions::desktops;
use crate::auth::{random_token, Caller, SignedIn};
use crate::desktop::bridge::{self, Faces};
use crate::desktop::cookie::DesktopGrant;
use crate::desktop::presence;
use crate::desktop::view_only::ViewOnlyFilter;
use crate::error::ApiError;
use crate::page_error::PageError;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct PeekQuery {
    assignment: i64,
}

#[derive(Debug, Serialize)]
struct PeekPage<'a> {
    hostname: &'a str,
    peek_of: &'a str,
    socket: String,
    message: &'a str,
}

/// `GET /admin/vms/{hostname}/desktop`: the view of the VM's current session.
pub async fn page(
    state: web::Data<AppState>,
    _session: SignedIn,
    hostname: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let vm = desktops::peek_target(&state, &hostname, None).await?;
    let html = state
        .pages
        .render(
            "desktop",
            &PeekPage {
                hostname: &vm.hostname,
                peek_of: vm.user_email.as_deref().unwrap_or_default(),
                socket: format!(
                    "/admin/vms/{}/desktop/websockify?assignment={}",
                    vm.hostname, vm.assignment_seq
                ),
                message: "",
            },
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(HttpResponse::build(StatusCode::OK)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html))
}

/// `GET /admin/vms/{hostname}/desktop/websockify?assignment=N`: the view-only stream,
/// audited; it ends when that assignment does.
pub async fn websockify(
    state: web::Data<AppState>,
    _session: SignedIn,
    request: HttpRequest,
    hostname: web::Path<String>,
    query: web::Query<PeekQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    from_own_page(&request)?;
    let (vm, ends) = desktops::peek(&state, &Caller::Admin, &hostname, query.assignment).await?;
    let (response, session, messages) = upgrade(&request, body, Some(&ends))?;
    let messages = stream_frames(messages);
    let watcher = state.get_ref().clone();
    let watching = state.desktops.watch(&vm.hostname);
    let view = random_token();
    presence::view_opened(&state, &vm.hostname, &view).await;
    let state = state.get_ref().clone();
    actix_web::rt::spawn(async move {
        let stop = assignment_ended(watcher, DesktopGrant::of(&vm));
        let faces = Faces::Browser(Some(ViewOnlyFilter::default()));
        let ended = bridge::run(session, messages, ends, stop, faces).await;
        drop(watching);
        presence::view_closed(&state, &view).await;
        tracing::info!(hostname = %vm.hostname, ?ended, "instructor's view closed");
    });
    Ok(response)
}
