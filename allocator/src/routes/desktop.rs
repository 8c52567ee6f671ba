//! The browser desktop. The participant's side: `/desktop` (the page), `/desktop/state` (why
//! it cannot connect), `/desktop/websockify` (its RFB socket, opened only with the desktop
//! cookie of a live assignment and from this allocator's own pages) and `/desktop/novnc/…`
//! (the client). The agent's side: `/api/agent/{hostname}/tunnel`, the socket it keeps open
//! to be asked for streams, and `/api/agent/{hostname}/tunnel/{stream}`, each stream it dials.

use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_actors::change_feed::VmEvent;
use lablink_schema::vms::Vm;
use serde::Serialize;

use super::researcher::{held_by_browser, is_https};
use crate::auth::{credentials, Caller};
use crate::cross_site::is_own_origin;
use crate::desktop::bridge::{self, MAX_FRAME};
use crate::desktop::cookie::DesktopGrant;
use crate::desktop::{novnc, OpenError};
use crate::error::ApiError;
use crate::page_error::PageError;
use crate::state::AppState;
use crate::validate;

/// How often the allocator pings an agent's tunnel, so a dead path is noticed and proxies
/// between keep it open.
const TUNNEL_PING: Duration = Duration::from_secs(20);

/// Takes the request over as a WebSocket; a request that is not a WebSocket handshake is
/// answered 400.
fn upgrade(
    request: &HttpRequest,
    body: web::Payload,
) -> Result<(HttpResponse, actix_ws::Session, actix_ws::MessageStream), ApiError> {
    actix_ws::handle(request, body)
        .map_err(|err| ApiError::BadRequest(format!("a WebSocket handshake is expected: {err}")))
}

/// A desktop stream's incoming frames, each at most [`MAX_FRAME`] bytes, also when sent in
/// pieces.
fn stream_frames(messages: actix_ws::MessageStream) -> actix_ws::AggregatedMessageStream {
    messages
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME)
}

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
}

/// `GET /desktop/state`: what the page says when its connection drops.
pub async fn desktop_state(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let answer = match granted_vm(&state, &request).await? {
        None => DesktopState {
            state: "ended",
            message: "Your session has ended: the VM was released or given back. Ask for a \
                      new one on the start page.",
        },
        Some((_, vm)) if !state.desktops.is_connected(&vm.hostname) => DesktopState {
            state: "waiting",
            message: "Your VM is not reachable just now (it may be starting or restarting). \
                      This page connects again by itself as soon as it is back.",
        },
        Some(_) => DesktopState {
            state: "ready",
            message: "The connection to your desktop dropped; connecting again…",
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
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if !origin.is_some_and(|origin| is_own_origin(origin, request.connection_info().host())) {
        return Err(ApiError::Forbidden(
            "the desktop opens only from this allocator's own page".to_owned(),
        ));
    }
    let (grant, vm) = granted_vm(&state, &request).await?.ok_or_else(|| {
        ApiError::Forbidden(
            "no desktop session: the cookie is missing, not this allocator's, or its session \
             ended"
                .to_owned(),
        )
    })?;
    let ends = state.desktops.open(&vm.hostname).await.map_err(|err| {
        ApiError::Unavailable(
            match err {
                OpenError::AgentAway => "the VM's agent is not connected; try again shortly",
                OpenError::AgentSilent => "the VM's agent did not open the desktop in time",
            }
            .to_owned(),
        )
    })?;
    let (response, session, messages) = upgrade(&request, body)?;
    let messages = stream_frames(messages);
    let watcher = state.get_ref().clone();
    actix_web::rt::spawn(async move {
        let hostname = grant.hostname.clone();
        let ended = bridge::run(session, messages, ends, assignment_ended(watcher, grant)).await;
        tracing::info!(%hostname, ?ended, "browser desktop closed");
    });
    tracing::info!(hostname = %vm.hostname, "browser desktop opened");
    Ok(response)
}

/// Resolves when the assignment `grant` was made for ends (release, reset, replacement, the
/// workshop's end: any change of the VM's row that leaves it not opening), or the allocator
/// stops.
async fn assignment_ended(state: AppState, grant: DesktopGrant) {
    let mut changes = state.changes.subscribe();
    let mut stopping = state.stopping.clone();
    loop {
        // Read after subscribing, so a change between the two is not missed.
        match state.find_vm(&grant.hostname).await {
            Ok(Some(vm)) if grant.opens(&vm) => {}
            Ok(_) => return,
            // The database is away: keep the stream, look again at the next change.
            Err(err) => tracing::warn!(%err, "cannot check a desktop's assignment"),
        }
        loop {
            tokio::select! {
                event = changes.recv() => match event {
                    Some(VmEvent::Changed { hostname }) if hostname == grant.hostname => break,
                    Some(VmEvent::Claimed { row, .. }) if row.hostname == grant.hostname => break,
                    Some(VmEvent::Resynced { .. }) => break,
                    Some(_) => {}
                    None => return,
                },
                changed = stopping.changed() => {
                    if changed.is_err() || *stopping.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

/// `GET /desktop/novnc/{path}`: a file of the vendored noVNC package.
pub async fn novnc_file(path: web::Path<String>) -> HttpResponse {
    match novnc::file(&path) {
        Some((bytes, content_type)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, content_type))
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(bytes),
        None => HttpResponse::NotFound().finish(),
    }
}

/// The VM named in the path, acting with its own token: no admin, no enrollment token, no
/// token-less agent opens a VM's tunnel.
async fn the_vm_itself(
    state: &AppState,
    request: &HttpRequest,
    hostname: &str,
) -> Result<String, ApiError> {
    let hostname = validate::hostname(hostname).map_err(ApiError::BadRequest)?;
    let vm = state.find_vm(hostname).await?;
    let credentials = credentials::checked(state, request).await?;
    match state
        .auth
        .authorize_vm(&credentials, hostname, vm.as_ref(), false)?
    {
        Caller::Vm(hostname) => Ok(hostname),
        _ => Err(ApiError::Forbidden(format!(
            "only the VM `{hostname}` itself, with its own token, opens its desktop tunnel"
        ))),
    }
}

/// `GET /api/agent/{hostname}/tunnel`: the agent's tunnel. It stays open; the allocator sends
/// a [`lablink_schema::wire::TunnelCommand`] for every desktop a browser opens, and pings.
pub async fn agent_tunnel(
    state: web::Data<AppState>,
    request: HttpRequest,
    hostname: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hostname = the_vm_itself(&state, &request, &hostname).await?;
    let (response, mut session, messages) = upgrade(&request, body)?;
    let mut messages = messages.max_frame_size(MAX_FRAME);
    let (link, mut commands) = state.desktops.agent_connected(&hostname);
    let desktops = state.desktops.clone();
    tracing::info!(%hostname, "agent's desktop tunnel up");
    actix_web::rt::spawn(async move {
        let mut ping = tokio::time::interval(TUNNEL_PING);
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    let Ok(text) = serde_json::to_string(&command) else { continue };
                    if session.text(text).await.is_err() {
                        break;
                    }
                }
                message = messages.recv() => match message {
                    Some(Ok(actix_ws::Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(actix_ws::Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                _ = ping.tick() => {
                    if session.ping(b"").await.is_err() {
                        break;
                    }
                }
            }
        }
        desktops.agent_gone(&hostname, link);
        let _ = session.close(None).await;
        tracing::info!(%hostname, "agent's desktop tunnel down");
    });
    Ok(response)
}

/// `GET /api/agent/{hostname}/tunnel/{stream}`: a stream the agent was asked for, joined to
/// the browser that asked.
pub async fn agent_stream(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (hostname, stream) = path.into_inner();
    let hostname = the_vm_itself(&state, &request, &hostname).await?;
    let ends = state.desktops.dialled(&hostname, &stream).ok_or_else(|| {
        ApiError::NotFound(format!("no desktop stream `{stream}` waits for this VM"))
    })?;
    let (response, session, messages) = upgrade(&request, body)?;
    let messages = stream_frames(messages);
    actix_web::rt::spawn(async move {
        bridge::run(session, messages, ends, std::future::pending::<()>()).await;
    });
    Ok(response)
}

/// The desktop routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/desktop", web::get().to(page))
        .route("/desktop/state", web::get().to(desktop_state))
        .route("/desktop/websockify", web::get().to(websockify))
        .route("/desktop/novnc/{path:.*}", web::get().to(novnc_file))
        .route("/api/agent/{hostname}/tunnel", web::get().to(agent_tunnel))
        .route(
            "/api/agent/{hostname}/tunnel/{stream}",
            web::get().to(agent_stream),
        );
}
