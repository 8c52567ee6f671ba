//! Exports (`GET /api/admin/export/{kind}` for scripts, `GET /admin/export/{kind}` from the
//! dashboard): the same files, made by [`crate::admin_actions::exports`].

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::admin_actions::exports::{self, ExportFormat, ExportRequest};
use crate::auth::{AdminCaller, Caller, SignedIn};
use crate::error::ApiError;
use crate::state::AppState;

/// Query of an export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    workshop: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

async fn export(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    query: &ExportQuery,
) -> Result<HttpResponse, ApiError> {
    let request = ExportRequest::check(
        kind,
        query.format.as_deref(),
        query.workshop.as_deref(),
        query.from.as_deref(),
        query.to.as_deref(),
    )?;
    let rows = exports::audited_rows(state, caller, &request).await?;
    let disposition = format!("attachment; filename=\"{}\"", request.file_name());
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_DISPOSITION, disposition))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    Ok(match request.format {
        ExportFormat::Json => response.json(rows),
        ExportFormat::Csv => response
            .content_type("text/csv; charset=utf-8")
            .body(exports::to_csv(request.kind, &rows)?),
    })
}

/// `GET /api/admin/export/{participants|vms|audit}?format=csv|json&workshop=&from=&to=`.
#[utoipa::path(
    get,
    path = "/api/admin/export/{kind}",
    tag = "admin: exports",
    params(
        ("kind" = String, Path, description = "`participants`, `vms` or `audit`"),
        ("format" = Option<String>, Query, description = "`json` (the default) or `csv`"),
        ("workshop" = Option<i64>, Query, description = "Only this workshop's rows"),
        ("from" = Option<String>, Query, description = "RFC 3339 with an offset"),
        ("to" = Option<String>, Query, description = "RFC 3339 with an offset")
    ),
    responses(
        (status = 200, description = "The rows as a download (CSV or JSON)", body = String, content_type = "text/csv"),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn api_export(
    state: web::Data<AppState>,
    admin: AdminCaller,
    kind: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    export(&state, &admin.0, &kind, &query).await
}

/// `GET /admin/export/{kind}`: the same, for a signed-in admin's browser.
pub async fn dashboard_export(
    state: web::Data<AppState>,
    _session: SignedIn,
    kind: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    export(&state, &Caller::Admin, &kind, &query).await
}
