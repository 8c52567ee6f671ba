//! The participant's browser desktop: `/desktop` (the page), `/desktop/state` (why it cannot
//! connect, and whether an instructor is viewing) and `/desktop/websockify` (its RFB socket,
//! opened only with the desktop cookie of a live assignment, from this allocator's own page).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::vms::Vm;
use serde::Serialize;

use super::super::researcher::{held_by_browser, is_https};
use super::{assignment_ended, from_own_page, stream_frames, upgrade};
use crate::assignment_proof;
use crate::desktop::bridge::{self, Faces};
use crate::desktop::cookie::DesktopGrant;
use crate::desktop::{peers, presence};
use crate::error::ApiError;
use crate::page_error::PageError;
use crate::state::AppState;

/// The answer to a claim in browser mode: to the desktop page, with the cookie that opens it.
pub fn to_desktop(state: &AppState, request: &HttpRequest, vm: &Vm) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/desktop"))
        .cookie(DesktopGrant::of(vm).cookie(&state.signer, is_https(request)))
        .finish()
}

/// The VM the request's desktop cookie opens, while its assignment lasts.
async fn granted_vm(
    state: &AppState,
    request: &HttpRequest,
) -> Result<Option<(DesktopGrant, Vm)>, ApiError> {
    let Some(grant) = DesktopGrant::from_request(&state.signer, request) else {
        return Ok(None);
    };
    Ok(state
        .find_vm(&grant.hostname)
        .await?
        .filter(|vm| grant.opens(vm))
        .map(|vm| (grant, vm)))
}

#[derive(Debug, Serialize)]
struct DesktopPage<'a> {
    hostname: Option<&'a str>,
    message: &'a str,
    /// The code that opens this session from another browser.
    rejoin_code: Option<String>,
}

const NO_SESSION: &str = "This browser holds no lab desktop just now: your session ended, or it \
                          was started from another browser. Ask for a VM on the start page.";

/// `GET /desktop`: the page. A browser that claimed its VM before it had the desktop cookie
/// (the same browser key) is given one.
pub async fn page(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let (vm, new_cookie) = match granted_vm(&state, &request).await? {
        Some((_, vm)) => (Some(vm), false),
        None => (held_by_browser(&state, &request).await?, true),
    };
    let html = state
        .pages
        .render(
            "desktop",
            &DesktopPage {
                hostname: vm.as_ref().map(|vm| vm.hostname.as_str()),
                message: NO_SESSION,
                rejoin_code: vm
                    .as_ref()
                    .map(|vm| assignment_proof::rejoin_code(&state.signer, vm)),
            },
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = HttpResponse::build(if vm.is_some() {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    });
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if let (Some(vm), true) = (&vm, new_cookie) {
        response.cookie(DesktopGrant::of(vm).cookie(&state.signer, is_https(&request)));
    }
    Ok(response.body(html))
}

#[derive(Debug, Serialize)]
struct DesktopState {
    /// `ready`, `waiting` (the VM's agent is not connected) or `ended`.
    state: &'static str,
    message: &'static str,
    /// An instructor is viewing this desktop now.
    watched: bool,
}

/// `GET /desktop/state`: what the page says when its connection drops, and whether an
/// instructor is viewing.
pub async fn desktop_state(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let granted = granted_vm(&state, &request).await?;
    let reachable = match &granted {
        Some((_, vm)) => presence::is_reachable(&state, &vm.hostname).await,
        None => false,
    };
    let (state_name, message, hostname) = match granted {
        None => (
            "ended",
            "Your session has ended: the VM was released or given back. Ask for a new one on \
             the start page.",
            None,
        ),
        Some((_, vm)) if !reachable => (
            "waiting",
            "Your VM is not reachable just now (it may be starting or restarting). This page \
             connects again by itself as soon as it is back.",
            Some(vm.hostname),
        ),
        Some((_, vm)) => (
            "ready",
            "The connection to your desktop dropped; connecting again…",
            Some(vm.hostname),
        ),
    };
    let answer = DesktopState {
        state: state_name,
        message,
        watched: match &hostname {
            Some(hostname) => presence::is_watched(&state, hostname).await,
            None => false,
        },
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}

/// `GET /desktop/websockify`: the browser's RFB socket. Everything is checked before the
/// agent is asked for anything: the page's origin, the cookie, the assignment.
pub async fn websockify(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    from_own_page(&request)?;
    let (grant, vm) = granted_vm(&state, &request).await?.ok_or_else(|| {
        ApiError::Forbidden(
            "no desktop session: the cookie is missing, not this allocator's, or its session \
             ended"
                .to_owned(),
        )
    })?;
    let ends = peers::open_stream(&state, &vm.hostname).await?;
    let (response, session, messages) = upgrade(&request, body, Some(&ends))?;
    let messages = stream_frames(messages);
    let watcher = state.get_ref().clone();
    actix_web::rt::spawn(async move {
        let hostname = grant.hostname.clone();
        let stop = assignment_ended(watcher, grant);
        let ended = bridge::run(session, messages, ends, stop, Faces::Browser(None)).await;
        tracing::info!(%hostname, ?ended, "browser desktop closed");
    });
    tracing::info!(hostname = %vm.hostname, "browser desktop opened");
    Ok(response)
}
