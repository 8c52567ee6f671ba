//! Exports (`GET /api/admin/export/{kind}` for scripts, `GET /admin/export/{kind}` from the
//! dashboard): the same files, made by [`crate::admin_actions::exports`].

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::admin_actions::exports::{self, ExportFormat, ExportRequest};
use crate::auth::{AdminCaller, SignedIn};
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
    let rows = exports::rows(state, &request).await?;
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
pub async fn api_export(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    kind: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    export(&state, &kind, &query).await
}

/// `GET /admin/export/{kind}`: the same, for a signed-in admin's browser.
pub async fn dashboard_export(
    state: web::Data<AppState>,
    _session: SignedIn,
    kind: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    export(&state, &kind, &query).await
}
