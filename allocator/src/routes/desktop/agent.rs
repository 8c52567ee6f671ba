//! The agent's side of the browser desktop: `/api/agent/{hostname}/tunnel`, the socket it
//! keeps open to be asked for streams, and `/api/agent/{hostname}/tunnel/{stream}`, each
//! stream it dials back. Only the VM itself, with its own token, opens either.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};

use super::{stream_frames, upgrade};
use crate::auth::{credentials, Caller};
use crate::desktop::bridge::{self, MAX_FRAME};
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
    let (response, session, messages) = upgrade(&request, body)?;
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
                    if session.ping().await.is_err() {
                        break;
                    }
                }
            }
        }
        desktops.agent_gone(&hostname, link);
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
    let ends = state.desktops.dialled(&hostname, &stream).ok_or_else(|| {
        ApiError::NotFound(format!("no desktop stream `{stream}` waits for this VM"))
    })?;
    let (response, session, messages) = upgrade(&request, body)?;
    let messages = stream_frames(messages);
    actix_web::rt::spawn(async move {
        bridge::run(session, messages, ends, std::future::pending::<()>(), None).await;
    });
    Ok(response)
}
