//! The calls between allocators for browser desktops: `POST
//! /api/internal/desktop/{hostname}/streams`, "ask your agent for this stream" (this
//! allocator holds the VM's tunnel), and `GET /api/internal/desktop/{hostname}/streams/{stream}`,
//! the agent's side of a stream this allocator awaits, relayed by the allocator the agent
//! dialled. Only an allocator of this deployment, with its keyed proof, makes either.

use actix_web::{web, HttpRequest, HttpResponse};

use super::join_agent_side;
use crate::desktop::peers::{PeerCall, StreamAsk};
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

/// `POST /api/internal/desktop/{hostname}/streams`: asks the VM's agent, whose tunnel is
/// here, for a stream another allocator awaits.
#[utoipa::path(
    post,
    path = "/api/internal/desktop/{hostname}/streams",
    tag = "allocators",
    params(("hostname" = String, Path, description = "The VM's hostname")),
    request_body = StreamAsk,
    responses(
        (status = 202, description = "The agent was asked; it dials the stream"),
        (status = 400, description = "Bad input", body = lablink_schema::wire::ErrorBody),
        (status = 403, description = "Not an allocator of this deployment", body = lablink_schema::wire::ErrorBody),
        (status = 503, description = "The VM's tunnel is not here", body = lablink_schema::wire::ErrorBody)
    ),
    security(("peer" = [])),
)]
pub async fn ask_agent(
    state: web::Data<AppState>,
    request: HttpRequest,
    hostname: web::Path<String>,
    body: web::Json<StreamAsk>,
) -> Result<HttpResponse, ApiError> {
    let hostname = validate::hostname(&hostname).map_err(ApiError::BadRequest)?;
    let StreamAsk { stream } = body.into_inner();
    state
        .peers
        .check(PeerCall::Ask, hostname, &stream, &request)?;
    state.desktops.ask_here(hostname, stream).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `GET /api/internal/desktop/{hostname}/streams/{stream}`: the agent's side of a stream
/// this allocator awaits, joined to the browser that asked for it.
#[utoipa::path(
    get,
    path = "/api/internal/desktop/{hostname}/streams/{stream}",
    tag = "allocators",
    params(
        ("hostname" = String, Path, description = "The VM's hostname"),
        ("stream" = String, Path, description = "The stream this allocator awaits")
    ),
    responses(
        (status = 101, description = "WebSocket: the stream's bytes, relayed from the agent"),
        (status = 403, description = "Not an allocator of this deployment", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "No such stream awaited here", body = lablink_schema::wire::ErrorBody)
    ),
    security(("peer" = [])),
)]
pub async fn relayed_stream(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (hostname, stream) = path.into_inner();
    let hostname = validate::hostname(&hostname).map_err(ApiError::BadRequest)?;
    state
        .peers
        .check(PeerCall::Relay, hostname, &stream, &request)?;
    let ends = state.desktops.dialled(hostname, &stream).ok_or_else(|| {
        ApiError::NotFound(format!("no desktop stream `{stream}` is awaited here"))
    })?;
    join_agent_side(&request, body, ends)
}
