//! The admin JSON API (HTTP Basic until the dashboard adds sessions).

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::operations::Operation;
use serde::Deserialize;
use serde_json::json;

use crate::admin_actions::vms;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/admin/vms/{hostname}/release`: ends the VM's session. The researcher is
/// cleared; the VM is handed out again once its agent reports it ready; an agent waiting
/// with the ended assignment is told it was released.
pub async fn release_vm(
    state: web::Data<AppState>,
    request: HttpRequest,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = crate::auth::require_admin(&state, &request).await?;
    let vm = vms::release(&state, &caller, &hostname).await?;
    Ok(HttpResponse::Ok().json(json!({
        "message": "VM released.",
        "hostname": vm.hostname,
        "status": vm.status,
    })))
}

/// Body of `POST /api/admin/vms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVmsBody {
    pub count: u32,
}

/// `POST /api/admin/vms`: queues the creation of `count` more VMs; 202 with the operation.
pub async fn create_vms(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<CreateVmsBody>,
) -> Result<HttpResponse, ApiError> {
    let caller = crate::auth::require_admin(&state, &request).await?;
    let operation = vms::create(&state, &caller, body.count).await?;
    Ok(HttpResponse::Accepted().json(operation_json(&operation)))
}

/// `POST /api/admin/vms/{hostname}/reboot`: reboots the VM through the cloud's API.
pub async fn reboot_vm(
    state: web::Data<AppState>,
    request: HttpRequest,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = crate::auth::require_admin(&state, &request).await?;
    vms::reboot(&state, &caller, &hostname).await?;
    Ok(HttpResponse::Ok().json(json!({"message": "VM rebooting.", "hostname": *hostname})))
}

/// Body of `POST /api/admin/vms/destroy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestroyVmsBody {
    pub hostnames: Vec<String>,
    /// Destroy VMs that are assigned to a researcher too.
    #[serde(default)]
    pub confirm_assigned: bool,
}

/// `POST /api/admin/vms/destroy`: queues the destruction of these VMs only.
pub async fn destroy_vms(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<DestroyVmsBody>,
) -> Result<HttpResponse, ApiError> {
    let caller = crate::auth::require_admin(&state, &request).await?;
    let DestroyVmsBody {
        hostnames,
        confirm_assigned,
    } = body.into_inner();
    let operation = vms::destroy(&state, &caller, hostnames, confirm_assigned).await?;
    Ok(HttpResponse::Accepted().json(operation_json(&operation)))
}

/// Body of `POST /api/admin/vms/destroy-all`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestroyAllBody {
    #[serde(default)]
    pub confirm_assigned: bool,
}

/// `POST /api/admin/vms/destroy-all`: queues the destruction of every VM.
pub async fn destroy_all_vms(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<DestroyAllBody>,
) -> Result<HttpResponse, ApiError> {
    let caller = crate::auth::require_admin(&state, &request).await?;
    let operation = vms::destroy_all(&state, &caller, body.confirm_assigned).await?;
    Ok(HttpResponse::Accepted().json(operation_json(&operation)))
}

/// Most operations listed.
const OPERATIONS_LISTED: i64 = 100;

/// `GET /api/admin/operations`: the newest provisioning operations first.
pub async fn list_operations(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    crate::auth::require_admin(&state, &request).await?;
    let operations = state
        .read(|conn| Operation::list_recent(conn, OPERATIONS_LISTED))
        .await?;
    let listed: Vec<serde_json::Value> = operations.iter().map(operation_json).collect();
    Ok(HttpResponse::Ok().json(listed))
}

/// `GET /api/admin/operations/{id}`.
pub async fn get_operation(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::require_admin(&state, &request).await?;
    let id = id.into_inner();
    let operation = state
        .read(move |conn| Operation::find_by_id(conn, id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operation {id}")))?;
    Ok(HttpResponse::Ok().json(operation_json(&operation)))
}

fn operation_json(operation: &Operation) -> serde_json::Value {
    let targets = operation
        .targets
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok());
    json!({
        "operation_id": operation.id,
        "kind": operation.kind,
        "state": operation.state,
        "requested_count": operation.requested_count,
        "targets": targets,
        "requested_by": operation.requested_by,
        "error": operation.error,
        "output_tail": operation.output_tail,
        "created_at": operation.created_at,
        "started_at": operation.started_at,
        "finished_at": operation.finished_at,
    })
}
