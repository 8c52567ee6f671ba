//! The admin JSON API for VMs and operations: each handler takes an [`AdminCaller`], calls
//! one admin action ([`crate::admin_actions`]) and answers its typed result as JSON.

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::operations::{Operation, OperationView};
use lablink_schema::wire::VmActionAnswer;
use serde::Deserialize;

use crate::admin_actions::{recovery, vms};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::idempotency::{self, Created};
use crate::state::AppState;

/// `POST /api/admin/vms/{hostname}/release`: ends the VM's session. The researcher is
/// cleared; the VM is handed out again once its agent reports it ready; an agent waiting
/// with the ended assignment is told it was released.
pub async fn release_vm(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let vm = vms::release(&state, &caller, &hostname).await?;
    Ok(HttpResponse::Ok().json(VmActionAnswer {
        message: "VM released.".to_owned(),
        status: Some(vm.status()),
        hostname: vm.hostname,
    }))
}

/// Body of `POST /api/admin/vms`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVmsBody {
    pub count: u32,
}

/// `POST /api/admin/vms`: queues the creation of `count` more VMs; 202 with the operation,
/// and its address in `Location`. With `Idempotency-Key`, a retry answers the same operation
/// and queues nothing.
pub async fn create_vms(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminCaller(caller): AdminCaller,
    body: web::Json<CreateVmsBody>,
) -> Result<HttpResponse, ApiError> {
    let count = body.count;
    idempotency::once(&state, &request, &caller, &count, || async {
        let operation = vms::create(&state, &caller, count).await?;
        let mut answer = Created::at(
            format!("/api/admin/operations/{}", operation.id),
            &operation.view(),
        )?;
        answer.status = actix_web::http::StatusCode::ACCEPTED;
        Ok(answer)
    })
    .await
}

/// `GET /api/admin/vms`: every VM with its lifecycle state, why, since when and what is
/// planned next.
pub async fn list_vms(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(recovery::list(&state).await?))
}

/// `GET /api/admin/vms/{hostname}`: one VM as in the list.
pub async fn show_vm(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(recovery::show(&state, &hostname).await?))
}

/// `POST /api/admin/vms/{hostname}/reboot`: reboots the VM now; it is `recovering` until
/// its agent reports again.
pub async fn reboot_vm(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let vm = recovery::reboot(&state, &caller, &hostname).await?;
    Ok(HttpResponse::Ok().json(VmActionAnswer {
        message: "VM rebooting.".to_owned(),
        status: Some(vm.status()),
        hostname: vm.hostname,
    }))
}

/// Body of `POST /api/admin/vms/{hostname}/replace`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceVmBody {
    /// Replace a VM assigned to a participant too.
    #[serde(default)]
    pub confirm_assigned: bool,
}

/// `POST /api/admin/vms/{hostname}/replace`: queues its replacement; 202 with the operation.
pub async fn replace_vm(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    hostname: web::Path<String>,
    body: web::Json<ReplaceVmBody>,
) -> Result<HttpResponse, ApiError> {
    let operation = recovery::replace(&state, &caller, &hostname, body.confirm_assigned).await?;
    Ok(HttpResponse::Accepted().json(operation.view()))
}

/// `POST /api/admin/vms/{hostname}/clear-quarantine`: lifts a GPU quarantine.
pub async fn clear_quarantine(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let vm = recovery::clear_quarantine(&state, &caller, &hostname).await?;
    Ok(HttpResponse::Ok().json(vm.admin_view()))
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
    AdminCaller(caller): AdminCaller,
    body: web::Json<DestroyVmsBody>,
) -> Result<HttpResponse, ApiError> {
    let DestroyVmsBody {
        hostnames,
        confirm_assigned,
    } = body.into_inner();
    let operation = vms::destroy(&state, &caller, hostnames, confirm_assigned).await?;
    Ok(HttpResponse::Accepted().json(operation.view()))
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
    AdminCaller(caller): AdminCaller,
    body: web::Json<DestroyAllBody>,
) -> Result<HttpResponse, ApiError> {
    let operation = vms::destroy_all(&state, &caller, body.confirm_assigned).await?;
    Ok(HttpResponse::Accepted().json(operation.view()))
}

/// Most operations listed.
const OPERATIONS_LISTED: i64 = 100;

/// `GET /api/admin/operations`: the newest provisioning operations first.
pub async fn list_operations(
    state: web::Data<AppState>,
    _admin: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    let operations = state
        .read(|conn| Operation::list_recent(conn, OPERATIONS_LISTED))
        .await?;
    let listed: Vec<OperationView> = operations.iter().map(Operation::view).collect();
    Ok(HttpResponse::Ok().json(listed))
}

/// `GET /api/admin/operations/{id}`.
pub async fn get_operation(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let operation = state
        .read(move |conn| Operation::find_by_id(conn, id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operation {id}")))?;
    Ok(HttpResponse::Ok().json(operation.view()))
}
