//! The admin JSON API (HTTP Basic until the dashboard adds sessions).

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_actors::db_writer::ReleaseVm;
use serde_json::json;

use crate::auth::Credentials;
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
        .require_admin(&Credentials::from_request(&request))?;
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
