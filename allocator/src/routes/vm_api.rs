//! The VM-facing API, compatible with the original agents: the assignment long-poll, status,
//! GPU health and in-use reports, and reading a VM's status (its logs: [`super::vm_logs`]). Every write needs
//! the VM's own token (or the admin, or a token-less legacy agent when allowed): the
//! extractors in [`crate::auth::extractors`] check that before a handler runs.

use actix_web::{web, HttpResponse, ResponseError};
use lablink_actors::enrollment_writes::EnrollVm;
use lablink_actors::report_batcher::VmReport;
use lablink_actors::vm_actor::WaitOutcome;
use lablink_actors::vm_supervisor::WaitForAssignment;
use lablink_schema::enrollment::EnrollRefusal;
use lablink_schema::vms::Vm;
use lablink_schema::wire::{
    GpuHealthReport, InUseReport, MessageBody, VmStartupAnswer, VmStartupRequest, VmStatus,
    VmStatusAnswer, VmStatusReport, VmStatusView, VmStatuses,
};
use lablink_schema::workshops::Workshop;

use crate::auth::{new_vm_token, AdminCaller, AuthorizedVm, Caller, VmOrAdmin, VmRegistration};
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /vm_startup`: waits until the VM is assigned and answers with the PIN and command.
/// With `assignment_id` (the assignment the agent already holds) it answers when that one
/// ends: with the next assignment, or `{"status": "released"}`.
#[utoipa::path(
    post,
    path = "/vm_startup",
    tag = "agents",
    request_body = VmStartupRequest,
    responses(
        (status = 200, description = "Assigned (PIN and command) or released", body = VmStartupAnswer),
        (status = 400, description = "Bad input", body = lablink_schema::wire::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = [])),
)]
pub async fn vm_startup(
    state: web::Data<AppState>,
    request: AuthorizedVm<VmStartupRequest>,
) -> Result<HttpResponse, ApiError> {
    let AuthorizedVm { vm, body, .. } = request;
    let _waiting = state.metrics.agent_waiting();
    let outcome = state
        .supervisor
        .send(WaitForAssignment {
            hostname: vm.hostname,
            held: body.assignment_id,
        })
        .await?;
    // Waiting here holds no thread and no connection; if the agent hangs up, this future is
    // dropped and the VM actor forgets the waiter.
    let outcome = tokio::select! {
        outcome = outcome => outcome,
        () = state.until_stopping() => {
            // An answer, not a failure: the response alone (no error attached for the request
            // log to report), so a graceful stop logs no error per waiting agent.
            return Ok(ApiError::Unavailable(
                "The allocator is restarting; please retry.".to_owned(),
            )
            .error_response());
        }
    };
    match outcome {
        Ok(WaitOutcome::Assigned(assignment)) => {
            Ok(HttpResponse::Ok().json(VmStartupAnswer::Assigned {
                pin: assignment.pin,
                command: assignment.command,
                assignment_id: assignment.assignment_id,
            }))
        }
        Ok(WaitOutcome::Released) => Ok(HttpResponse::Ok().json(VmStartupAnswer::Released)),
        Ok(WaitOutcome::VmGone) => Err(ApiError::vm_not_found()),
        Ok(WaitOutcome::Replaced) => Err(ApiError::Conflict(
            "another request is now waiting for this VM's assignment; only one may wait".to_owned(),
        )),
        Err(_) => Err(ApiError::Unavailable(
            "The allocator is restarting; please retry.".to_owned(),
        )),
    }
}

/// `POST /api/vm-status`: records the VM's status (its heartbeat). A machine the allocator
/// does not know joins here: with an enrollment token it gets its own token, returned once;
/// under the legacy switch a token-less original agent joins without one.
#[utoipa::path(
    post,
    path = "/api/vm-status",
    tag = "agents",
    request_body = VmStatusReport,
    responses(
        (status = 200, description = "Recorded; the enrolling report carries the VM's token", body = VmStatusAnswer),
        (status = 400, description = "Bad input", body = lablink_schema::wire::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 409, description = "Conflict", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = [])),
)]
pub async fn report_status(
    state: web::Data<AppState>,
    request: VmRegistration<VmStatusReport>,
) -> Result<HttpResponse, ApiError> {
    let VmRegistration { caller, vm, body } = request;
    let VmStatusReport {
        hostname,
        status,
        session,
    } = body;
    let notice = desktop_notice(&state, vm.as_ref()).await;
    let token = match (caller, vm) {
        (Caller::Enrolling { token_hash }, _) => {
            let (token, vm_token_hash) = new_vm_token();
            enroll(
                &state,
                &hostname,
                status,
                Some(token_hash),
                Some(vm_token_hash),
            )
            .await?;
            tracing::info!(%hostname, "VM enrolled and given its token");
            Some(token)
        }
        (Caller::LegacyAgent, None) => {
            enroll(&state, &hostname, status, None, None).await?;
            tracing::warn!(%hostname, "token-less legacy VM registered");
            None
        }
        (_, None) => return Err(ApiError::vm_not_found()),
        (_, Some(_)) => {
            state
                .reports
                .report(VmReport::Status {
                    hostname: hostname.clone(),
                    status,
                    session,
                })
                .await?;
            None
        }
    };
    Ok(HttpResponse::Ok().json(VmStatusAnswer {
        message: "VM status updated successfully.".to_owned(),
        token,
        heartbeat_interval_ms: u64::try_from(state.heartbeat_interval.as_millis()).ok(),
        notice,
    }))
}

/// What the person at an assigned VM should be told on its desktop: the session's own
/// warning, else its workshop's. Unassigned VMs have nobody to tell.
async fn desktop_notice(state: &AppState, vm: Option<&Vm>) -> Option<String> {
    let vm = vm.filter(|vm| vm.user_email.is_some())?;
    if let Some(notice) = &vm.session_notice {
        return Some(notice.clone());
    }
    let id = vm.workshop_id?;
    state
        .read(move |conn| Workshop::find(conn, id))
        .await
        .ok()
        .flatten()
        .and_then(|workshop| workshop.notice)
}

/// Adds a VM that joins by itself; refusals become 401 (the token), 409 (the name), 403 (the
/// limit), with nothing written.
async fn enroll(
    state: &AppState,
    hostname: &str,
    status: VmStatus,
    enrollment_token_hash: Option<String>,
    vm_token_hash: Option<String>,
) -> Result<(), ApiError> {
    let outcome = state
        .writer
        .send(EnrollVm {
            hostname: hostname.to_owned(),
            status,
            enrollment_token_hash,
            vm_token_hash,
            limit: i64::from(state.provider_max_vms),
        })
        .await??;
    match outcome {
        Ok(_) => Ok(()),
        Err(EnrollRefusal::Token(refusal)) => {
            tracing::warn!(%hostname, reason = refusal.explain(), "enrollment refused");
            Err(ApiError::enrollment_refused(refusal.explain()))
        }
        Err(EnrollRefusal::HostnameTaken) => Err(ApiError::Conflict(format!(
            "a VM named `{hostname}` exists already; only that VM's own token can act for it"
        ))),
        Err(EnrollRefusal::LimitReached { limit }) => {
            tracing::warn!(%hostname, limit, "enrollment refused: limit reached");
            Err(ApiError::Forbidden(format!(
                "{limit} VMs have enrolled already, as many as provider.max_vms allows; \
                 destroy some on the dashboard first"
            )))
        }
    }
}

/// `GET /api/vm-status` (admin): every VM's status as `{hostname: status}`.
#[utoipa::path(
    get,
    path = "/api/vm-status",
    tag = "agents",
    responses(
        (status = 200, description = "Every VM's status by hostname", body = VmStatuses),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn list_statuses(
    state: web::Data<AppState>,
    _admin: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let vms = state.read(Vm::list_all).await?;
    if vms.is_empty() {
        return Err(ApiError::NotFound("No VMs found.".to_owned()));
    }
    let statuses: VmStatuses = vms
        .into_iter()
        .map(|vm| {
            let status = vm.status();
            (vm.hostname, status)
        })
        .collect();
    Ok(HttpResponse::Ok().json(statuses))
}

/// `GET /api/vm-status/{hostname}` (admin, or the VM itself).
#[utoipa::path(
    get,
    path = "/api/vm-status/{hostname}",
    tag = "agents",
    params(
        ("hostname" = String, Path, description = "The VM's hostname")
    ),
    responses(
        (status = 200, description = "The VM's status", body = VmStatusView),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = []), ("bearer" = []), ("basic" = [])),
)]
pub async fn get_status(reader: VmOrAdmin) -> HttpResponse {
    let vm = reader.vm;
    HttpResponse::Ok().json(VmStatusView {
        status: vm.status(),
        hostname: vm.hostname,
    })
}

/// `POST /api/update_inuse_status`.
#[utoipa::path(
    post,
    path = "/api/update_inuse_status",
    tag = "agents",
    request_body = InUseReport,
    responses(
        (status = 200, description = "Recorded", body = MessageBody),
        (status = 400, description = "Bad input", body = lablink_schema::wire::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = [])),
)]
pub async fn report_in_use(
    state: web::Data<AppState>,
    request: AuthorizedVm<InUseReport>,
) -> Result<HttpResponse, ApiError> {
    let InUseReport { hostname, status } = request.body;
    state
        .reports
        .report(VmReport::InUse {
            hostname,
            in_use: status,
        })
        .await?;
    Ok(message("In-use status updated successfully."))
}

/// `POST /api/gpu_health`.
#[utoipa::path(
    post,
    path = "/api/gpu_health",
    tag = "agents",
    request_body = GpuHealthReport,
    responses(
        (status = 200, description = "Recorded", body = MessageBody),
        (status = 400, description = "Bad input", body = lablink_schema::wire::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = [])),
)]
pub async fn report_gpu_health(
    state: web::Data<AppState>,
    request: AuthorizedVm<GpuHealthReport>,
) -> Result<HttpResponse, ApiError> {
    let GpuHealthReport {
        hostname,
        gpu_status,
    } = request.body;
    state
        .reports
        .report(VmReport::GpuHealth {
            hostname,
            health: gpu_status,
        })
        .await?;
    Ok(message("GPU health status updated successfully."))
}

pub(super) fn message(text: &str) -> HttpResponse {
    HttpResponse::Ok().json(MessageBody {
        message: text.to_owned(),
    })
}
