//! The admin JSON API for VMs and operations: each handler takes an [`AdminCaller`], calls
//! one admin action ([`crate::admin_actions`]) and answers its typed result as JSON.

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::operations::{Operation, OperationView};
use lablink_schema::wire::VmActionAnswer;
use serde::Deserialize;

use crate::admin_actions::{audit, recovery, vms};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::idempotency::{self, Created};
use crate::state::AppState;

/// `POST /api/admin/vms/{hostname}/release`: ends the VM's session. The researcher is
/// cleared; the VM is handed out again once its agent reports it ready; an agent waiting
/// with the ended assignment is told it was released.
#[utoipa::path(
    post,
    path = "/api/admin/vms/{hostname}/release",
    tag = "admin: VMs",
    params(
        ("hostname" = String, Path, description = "The VM's hostname")
    ),
    responses(
        (status = 200, description = "Released", body = VmActionAnswer),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
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
#[derive(utoipa::ToSchema)]
pub struct CreateVmsBody {
    pub count: u32,
}

/// `POST /api/admin/vms`: queues the creation of `count` more VMs; 202 with the operation,
/// and its address in `Location`. With `Idempotency-Key`, a retry answers the same operation
/// and queues nothing.
#[utoipa::path(
    post,
    path = "/api/admin/vms",
    tag = "admin: VMs",
    request_body = CreateVmsBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer the first answer")
    ),
    responses(
        (status = 202, description = "Queued; `Location` is the operation", body = OperationView),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody),
        (status = 422, description = "An idempotency key reused for another request", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
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

/// Query of `GET /api/admin/vms`: each given filter must match.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VmFilter {
    /// A lifecycle state (`ready`, `assigned`, `failed`, …).
    pub state: Option<String>,
    /// `true`: only VMs assigned to a participant; `false`: only the others.
    pub assigned: Option<bool>,
    /// The cursor of the `Link: rel="next"` header (a hostname): the VMs after it.
    pub after: Option<String>,
    /// 1 to 1,000; 100 when absent.
    pub limit: Option<usize>,
}

/// `GET /api/admin/vms`: every VM (or those the filters keep) with its lifecycle state, why,
/// since when and what is planned next.
#[utoipa::path(
    get,
    path = "/api/admin/vms",
    tag = "admin: VMs",
    params(
        VmFilter
    ),
    responses(
        (status = 200, description = "The VMs the filters keep", body = Vec<lablink_schema::wire::AdminVmView>),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn list_vms(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    filter: web::Query<VmFilter>,
) -> Result<HttpResponse, ApiError> {
    let wanted_state = match filter.state.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<lablink_schema::wire::LifecycleState>()
                .map_err(|err| ApiError::BadRequest(format!("not a VM state: {err}")))?,
        ),
    };
    let mut listed = recovery::list(&state).await?;
    listed.retain(|vm| {
        wanted_state.is_none_or(|s| vm.state == s)
            && filter
                .assigned
                .is_none_or(|assigned| vm.assigned_to.is_some() == assigned)
    });
    listed.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    let query = crate::paging::PageQuery {
        after: filter.after.clone(),
        limit: filter.limit,
    };
    // The filters go on to the next page too.
    let mut path = String::from("/api/admin/vms");
    let mut kept = Vec::new();
    if let Some(state) = &filter.state {
        kept.push(format!("state={state}"));
    }
    if let Some(assigned) = filter.assigned {
        kept.push(format!("assigned={assigned}"));
    }
    if !kept.is_empty() {
        path = format!("{path}?{}", kept.join("&"));
    }
    let page = crate::paging::page(listed, |vm| vm.hostname.clone(), &query)?;
    Ok(page.respond(&path, &page.items))
}

/// `GET /api/admin/vms/{hostname}`: one VM as in the list.
#[utoipa::path(
    get,
    path = "/api/admin/vms/{hostname}",
    tag = "admin: VMs",
    params(
        ("hostname" = String, Path, description = "The VM's hostname")
    ),
    responses(
        (status = 200, description = "One VM", body = lablink_schema::wire::AdminVmView),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn show_vm(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    hostname: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(recovery::show(&state, &hostname).await?))
}

/// `POST /api/admin/vms/{hostname}/reboot`: reboots the VM now; it is `recovering` until
/// its agent reports again.
#[utoipa::path(
    post,
    path = "/api/admin/vms/{hostname}/reboot",
    tag = "admin: VMs",
    params(
        ("hostname" = String, Path, description = "The VM's hostname")
    ),
    responses(
        (status = 200, description = "Rebooting", body = VmActionAnswer),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody),
        (status = 503, description = "Unavailable (database, provider)", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
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
#[derive(utoipa::ToSchema)]
pub struct ReplaceVmBody {
    /// Replace a VM assigned to a participant too.
    #[serde(default)]
    pub confirm_assigned: bool,
}

/// `POST /api/admin/vms/{hostname}/replace`: queues its replacement; 202 with the operation.
#[utoipa::path(
    post,
    path = "/api/admin/vms/{hostname}/replace",
    tag = "admin: VMs",
    request_body = ReplaceVmBody,
    params(
        ("hostname" = String, Path, description = "The VM's hostname")
    ),
    responses(
        (status = 202, description = "Queued", body = OperationView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
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
#[utoipa::path(
    post,
    path = "/api/admin/vms/{hostname}/clear-quarantine",
    tag = "admin: VMs",
    params(
        ("hostname" = String, Path, description = "The VM's hostname")
    ),
    responses(
        (status = 200, description = "The VM", body = lablink_schema::wire::AdminVmView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
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
#[derive(utoipa::ToSchema)]
pub struct DestroyVmsBody {
    pub hostnames: Vec<String>,
    /// Destroy VMs that are assigned to a researcher too.
    #[serde(default)]
    pub confirm_assigned: bool,
}

/// `POST /api/admin/vms/destroy`: queues the destruction of these VMs only.
#[utoipa::path(
    post,
    path = "/api/admin/vms/destroy",
    tag = "admin: VMs",
    request_body = DestroyVmsBody,
    responses(
        (status = 202, description = "Queued", body = OperationView),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
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
#[derive(utoipa::ToSchema)]
pub struct DestroyAllBody {
    #[serde(default)]
    pub confirm_assigned: bool,
}

/// `POST /api/admin/vms/destroy-all`: queues the destruction of every VM.
#[utoipa::path(
    post,
    path = "/api/admin/vms/destroy-all",
    tag = "admin: VMs",
    request_body = DestroyAllBody,
    responses(
        (status = 202, description = "Queued", body = OperationView),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn destroy_all_vms(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<DestroyAllBody>,
) -> Result<HttpResponse, ApiError> {
    let operation = vms::destroy_all(&state, &caller, body.confirm_assigned).await?;
    Ok(HttpResponse::Accepted().json(operation.view()))
}

/// Operations on a page when the request says nothing.
const OPERATIONS_LISTED: usize = 100;

/// Query of `GET /api/admin/operations`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperationPage {
    /// Operations older than this id (the cursor of the `Link: rel="next"` header).
    pub before: Option<i64>,
    /// 1 to 1,000; 100 when absent.
    pub limit: Option<usize>,
}

/// `GET /api/admin/operations`: the newest provisioning operations first, a page at a time;
/// when older ones exist, `Link: <…?before=ID&limit=N>; rel="next"` reads the next page.
#[utoipa::path(
    get,
    path = "/api/admin/operations",
    tag = "admin: operations",
    params(OperationPage),
    responses(
        (status = 200, description = "One page, newest first; `Link` with `rel=\"next\"` when there are older ones", body = Vec<OperationView>),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn list_operations(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    page: web::Query<OperationPage>,
) -> Result<HttpResponse, ApiError> {
    let limit = crate::paging::checked_limit(page.limit, OPERATIONS_LISTED)?;
    let before = page.before.unwrap_or(i64::MAX);
    // One more than asked tells whether a next page exists.
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let operations = state
        .read(move |conn| Operation::page_before(conn, before, fetch))
        .await?;
    let listed: Vec<OperationView> = operations.iter().map(Operation::view).collect();
    Ok(crate::paging::respond_before(
        "/api/admin/operations",
        listed,
        limit,
        |op| op.operation_id,
    ))
}

/// `GET /api/admin/operations/{id}/events`: the operation's progress as server-sent events
/// (`event: operation`, its view), ending once it has finished.
#[utoipa::path(
    get,
    path = "/api/admin/operations/{id}/events",
    tag = "admin: operations",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "Server-sent events: `event: operation` with the operation, on every change, until it ends", body = String, content_type = "text/event-stream"),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn operation_events(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let operation = state
        .read(move |conn| Operation::find_by_id(conn, id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operation {id}")))?;
    Ok(crate::sse::operation_progress(&state, operation))
}

/// Query of `GET /api/admin/vms/{hostname}/logs/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FollowLogs {
    /// Lines after this id (the newest one already read); none: from now on.
    pub after: Option<i64>,
}

/// `GET /api/admin/vms/{hostname}/logs/events`: the VM's new log lines as server-sent
/// events, one line each, as they arrive.
#[utoipa::path(
    get,
    path = "/api/admin/vms/{hostname}/logs/events",
    tag = "admin: logs",
    params(
        ("hostname" = String, Path, description = "The VM's hostname"),
        FollowLogs
    ),
    responses(
        (status = 200, description = "Server-sent events: each new line", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn follow_logs(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    hostname: web::Path<String>,
    query: web::Query<FollowLogs>,
) -> Result<HttpResponse, ApiError> {
    let hostname = crate::validate::hostname(&hostname)
        .map_err(ApiError::BadRequest)?
        .to_owned();
    if state.find_vm(&hostname).await?.is_none() {
        return Err(ApiError::vm_not_found());
    }
    let after = match query.after {
        Some(after) => after,
        None => {
            let host = hostname.clone();
            state
                .read(move |conn| {
                    lablink_schema::vm_logs::VmLogLine::newest_first(
                        conn,
                        &host,
                        &Default::default(),
                        1,
                    )
                })
                .await?
                .first()
                .map_or(0, |line| line.id)
        }
    };
    Ok(crate::sse::log_lines(&state, hostname, after))
}

/// Query of `GET /api/admin/audit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// The `next_before` of the page after this one.
    pub before: Option<i64>,
    /// 1 to 1,000; 100 when absent.
    pub limit: Option<usize>,
}

/// `GET /api/admin/audit`: the audit trail, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/admin/audit",
    tag = "admin: audit",
    params(
        AuditQuery
    ),
    responses(
        (status = 200, description = "One page, newest first", body = lablink_schema::wire::AuditPage),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn audit(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let AuditQuery {
        actor,
        action,
        target,
        before,
        limit,
    } = query.into_inner();
    let filter = lablink_schema::audit_events::AuditFilter {
        actor,
        action,
        target,
    };
    Ok(HttpResponse::Ok().json(audit::page(&state, filter, before, limit).await?))
}

/// `GET /api/admin/operations/{id}`.
#[utoipa::path(
    get,
    path = "/api/admin/operations/{id}",
    tag = "admin: operations",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "One operation", body = OperationView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
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
