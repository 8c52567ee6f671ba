//! The agent's side of the browser desktop: `/api/agent/{hostname}/tunnel`, the socket it
//! keeps open to be asked for streams, and `/api/agent/{hostname}/tunnel/{stream}`, each
//! stream it dials back (joined here, or relayed to the allocator that awaits it). Only the
//! VM itself, with its own token, opens either.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};

use super::{join_agent_side, stream_frames, upgrade};
use crate::auth::{credentials, random_token, Caller};
use crate::desktop::bridge::{self, Faces, MAX_FRAME};
use crate::desktop::links::stream_pair;
use crate::desktop::{hop, presence};
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

/// How often the allocator pings an agent's tunnel, so a dead path is noticed and proxies
/// between keep it open.
const TUNNEL_PING: Duration = Duration::from_secs(20);

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
#[utoipa::path(
    get,
    path = "/api/agent/{hostname}/tunnel",
    tag = "agents",
    params(
        ("hostname" = String, Path, description = "The VM's hostname")
    ),
    responses(
        (status = 101, description = "WebSocket: the allocator asks for desktop streams over it"),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 403, description = "Not allowed", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = [])),
)]
pub async fn agent_tunnel(
    state: web::Data<AppState>,
    request: HttpRequest,
    hostname: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let hostname = the_vm_itself(&state, &request, &hostname).await?;
    let (response, session, messages) = upgrade(&request, body, None)?;
    let mut messages = messages.max_frame_size(MAX_FRAME);
    let (link, mut commands) = state.desktops.agent_connected(&hostname);
    // Listed for the other allocators under an id of its own, so that the end of this
    // tunnel never takes a newer one (held here or elsewhere) off the list.
    let listed_as = random_token();
    presence::tunnel_up(&state, &hostname, &listed_as).await;
    let state = state.get_ref().clone();
    tracing::info!(%hostname, "agent's desktop tunnel up");
    actix_web::rt::spawn(async move {
        let mut ping = tokio::time::interval(TUNNEL_PING);
        // Closed when the allocator stops, so the graceful stop need not wait out the
        // drain; the agent dials again (after the restart, or another allocator).
        let stopping = state.until_stopping();
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                () = &mut stopping => break,
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
                    if session.ping().await.is_err() {
                        break;
                    }
                }
            }
        }
        state.desktops.agent_gone(&hostname, link);
        presence::tunnel_down(&state, &hostname, &listed_as).await;
        session.close().await;
        tracing::info!(%hostname, "agent's desktop tunnel down");
    });
    Ok(response)
}

/// `GET /api/agent/{hostname}/tunnel/{stream}`: a stream the agent was asked for, joined to
/// the browser that asked.
#[utoipa::path(
    get,
    path = "/api/agent/{hostname}/tunnel/{stream}",
    tag = "agents",
    params(
        ("hostname" = String, Path, description = "The VM's hostname"),
        ("stream" = String, Path, description = "The stream the allocator asked for")
    ),
    responses(
        (status = 101, description = "WebSocket: one desktop stream's bytes"),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 403, description = "Not allowed", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = [])),
)]
pub async fn agent_stream(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (hostname, stream) = path.into_inner();
    let hostname = the_vm_itself(&state, &request, &hostname).await?;
    if let Some(ends) = state.desktops.dialled(&hostname, &stream) {
        return join_agent_side(&request, body, ends);
    }
    // Another allocator awaits it (the browser reached that one): relay it there.
    let peer = state.peers.awaited_elsewhere(&stream).ok_or_else(|| {
        ApiError::NotFound(format!("no desktop stream `{stream}` waits for this VM"))
    })?;
    let hop = state
        .peers
        .relay_to(&peer, &hostname, &stream)
        .await
        .map_err(|reason| {
            tracing::warn!(%hostname, %reason, "cannot relay a desktop stream to its allocator");
            ApiError::Unavailable(format!(
                "the allocator that awaits stream `{stream}` cannot be reached; try again"
            ))
        })?;
    let (response, session, messages) = upgrade(&request, body, None)?;
    let messages = stream_frames(messages);
    let (agent_side, peer_side) = stream_pair();
    actix_web::rt::spawn(async move {
        let bridged = bridge::run(
            session,
            messages,
            agent_side,
            std::future::pending::<()>(),
            Faces::Agent,
        );
        tokio::join!(bridged, hop::carry(hop, peer_side));
        tracing::info!(%hostname, %peer, "relayed desktop stream closed");
    });
    Ok(response)
}
