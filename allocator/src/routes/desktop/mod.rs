//! The browser desktop's routes, one file per side: the participant's page and socket
//! ([`participant`]), the instructor's peek ([`peek`]), the agent's tunnel and streams
//! ([`agent`]) and the calls between allocators ([`peer`]); here, what they share: the
//! WebSocket upgrade, the frames a stream accepts, the origin check and the watch on an
//! assignment's end.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_actors::change_feed::VmEvent;

use crate::cross_site::is_own_origin;
use crate::desktop::bridge::{self, Faces, MAX_FRAME};
use crate::desktop::cookie::DesktopGrant;
use crate::desktop::novnc;
use crate::desktop::socket::{self, FrameSender};
use crate::desktop::StreamEnds;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) mod agent;
mod participant;
mod peek;
pub(super) mod peer;

pub use participant::to_desktop;

/// Takes the request over as a WebSocket; a request that is not a WebSocket handshake is
/// answered 400. `toward_browser`: the stream's grants, for a browser's socket.
pub(super) fn upgrade(
    request: &HttpRequest,
    body: web::Payload,
    toward_browser: Option<&StreamEnds>,
) -> Result<(HttpResponse, FrameSender, actix_ws::MessageStream), ApiError> {
    socket::accept(
        request,
        body,
        toward_browser.map(|ends| ends.credits.clone()),
    )
    .map_err(|err| ApiError::BadRequest(format!("a WebSocket handshake is expected: {err}")))
}

/// Takes the request over as the agent's side of a stream (the agent's own dial, or another
/// allocator relaying it) and joins it to `ends` until either side ends.
pub(super) fn join_agent_side(
    request: &HttpRequest,
    body: web::Payload,
    ends: StreamEnds,
) -> Result<HttpResponse, ApiError> {
    let (response, session, messages) = upgrade(request, body, None)?;
    let messages = stream_frames(messages);
    actix_web::rt::spawn(async move {
        let never = std::future::pending::<()>();
        bridge::run(session, messages, ends, never, Faces::Agent).await;
    });
    Ok(response)
}

/// A desktop stream's incoming frames, each at most [`MAX_FRAME`] bytes, also when sent in
/// pieces.
pub(super) fn stream_frames(
    messages: actix_ws::MessageStream,
) -> actix_ws::AggregatedMessageStream {
    messages
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME)
}

/// Refuses a WebSocket whose `Origin` is not this allocator: no other site's page may open a
/// desktop with the cookies the browser holds.
pub(super) fn from_own_page(request: &HttpRequest) -> Result<(), ApiError> {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if origin.is_some_and(|origin| is_own_origin(origin, request.connection_info().host())) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the desktop opens only from this allocator's own pages".to_owned(),
        ))
    }
}

/// Resolves when the assignment `grant` was made for ends (release, reset, replacement, the
/// workshop's end: any change of the VM's row that leaves it not opening), or the allocator
/// stops.
pub(super) async fn assignment_ended(state: AppState, grant: DesktopGrant) {
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

super::route_table! {
    get "/desktop" => participant::page,
    get "/desktop/state" => participant::desktop_state,
    get "/desktop/websockify" => participant::websockify,
    get "/desktop/novnc/{path:.*}" => novnc_file,
    get "/admin/vms/{hostname}/desktop" => peek::page,
    get "/admin/vms/{hostname}/desktop/websockify" => peek::websockify,
    get "/api/agent/{hostname}/tunnel" => agent::agent_tunnel,
    get "/api/agent/{hostname}/tunnel/{stream}" => agent::agent_stream,
    post "/api/internal/desktop/{hostname}/streams" => peer::ask_agent,
    get "/api/internal/desktop/{hostname}/streams/{stream}" => peer::relayed_stream,
}

/// Registers the desktop's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg);
}
