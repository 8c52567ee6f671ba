//! The admin JSON API (HTTP Basic until the dashboard adds sessions).

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_actors::db_writer::ReleaseVm;
use lablink_actors::terraform_executor::{CreateVms, DestroyAllVms, DestroyVms, FindInstanceId};
use lablink_schema::operations::Operation;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

/// `POST /api/admin/vms/{hostname}/release`: ends the VM's session. The researcher is
/// cleared; the VM is handed out again once its agent reports it ready; an agent waiting
/// with the ended assignment is told it was released.
pub async fn release_vm(
    state: web::Data<AppState>,
    request: HttpRequest,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = state
        .auth
        .require_admin(&crate::auth::credentials(&state, &request).await?)?;
    let hostname = validate::hostname(&hostname).map_err(ApiError::BadRequest)?;
    let vm = state
        .writer
        .send(ReleaseVm {
            hostname: hostname.to_owned(),
            actor: caller.audit_name(),
        })
        .await??;
    tracing::info!(hostname = %vm.hostname, "VM released by admin");
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
    let caller = state
        .auth
        .require_admin(&crate::auth::credentials(&state, &request).await?)?;
    state.check_launchable().await?;
    let operation = state
        .executor
        .send(CreateVms {
            count: body.count,
            requested_by: caller.audit_name(),
        })
        .await??;
    state
        .audit(
            &caller.audit_name(),
            "vms.create",
            None,
            Some(format!("{} VMs, operation {}", body.count, operation.id)),
        )
        .await;
    Ok(HttpResponse::Accepted().json(operation_json(&operation)))
}

/// `POST /api/admin/vms/{hostname}/reboot`: reboots the VM through the cloud's API.
pub async fn reboot_vm(
    state: web::Data<AppState>,
    request: HttpRequest,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = state
        .auth
        .require_admin(&crate::auth::credentials(&state, &request).await?)?;
    let hostname = validate::hostname(&hostname)
        .map_err(ApiError::BadRequest)?
        .to_owned();
    reboot(&state, &hostname).await?;
    state
        .audit(
            &caller.audit_name(),
            "vm.reboot",
            Some(hostname.clone()),
            None,
        )
        .await;
    Ok(HttpResponse::Ok().json(json!({"message": "VM rebooting.", "hostname": hostname})))
}

/// Reboots `hostname` through the cloud's API.
pub async fn reboot(state: &AppState, hostname: &str) -> Result<(), ApiError> {
    let Some(cloud) = &state.cloud else {
        return Err(ApiError::BadRequest(
            "rebooting needs the cloud's API: set provider.aws.enabled".to_owned(),
        ));
    };
    let instance_id = state
        .executor
        .send(FindInstanceId {
            hostname: hostname.to_owned(),
        })
        .await?
        .map_err(|err| ApiError::Internal(err.to_string()))?
        .ok_or_else(ApiError::vm_not_found)?;
    cloud
        .reboot(&instance_id)
        .await
        .map_err(|err| ApiError::Unavailable(format!("AWS refused the reboot: {err}")))
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
    let caller = state
        .auth
        .require_admin(&crate::auth::credentials(&state, &request).await?)?;
    let DestroyVmsBody {
        hostnames,
        confirm_assigned,
    } = body.into_inner();
    for hostname in &hostnames {
        validate::hostname(hostname).map_err(ApiError::BadRequest)?;
    }
    let targets = hostnames.join(", ");
    let operation = state
        .executor
        .send(DestroyVms {
            hostnames,
            confirm_assigned,
            requested_by: caller.audit_name(),
        })
        .await??;
    state
        .audit(
            &caller.audit_name(),
            "vms.destroy",
            Some(targets),
            Some(format!("operation {}", operation.id)),
        )
        .await;
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
    let caller = state
        .auth
        .require_admin(&crate::auth::credentials(&state, &request).await?)?;
    let operation = state
        .executor
        .send(DestroyAllVms {
            confirm_assigned: body.confirm_assigned,
            requested_by: caller.audit_name(),
        })
        .await??;
    state
        .audit(
            &caller.audit_name(),
            "vms.destroy_all",
            None,
            Some(format!("operation {}", operation.id)),
        )
        .await;
    Ok(HttpResponse::Accepted().json(operation_json(&operation)))
}

/// Most operations listed.
const OPERATIONS_LISTED: i64 = 100;

/// `GET /api/admin/operations`: the newest provisioning operations first.
pub async fn list_operations(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .auth
        .require_admin(&crate::auth::credentials(&state, &request).await?)?;
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
    state
        .auth
        .require_admin(&crate::auth::credentials(&state, &request).await?)?;
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
