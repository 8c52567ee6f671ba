//! `GET /metrics`: the Prometheus exposition, for the admin or a scraper with the metrics
//! token.

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::operations::Operation;
use lablink_schema::vms::Vm;

use crate::admin_auth::same;
use crate::auth::Credentials;
use crate::error::ApiError;
use crate::metrics::{self, DatabaseSnapshot};
use crate::state::AppState;

/// `GET /metrics`.
pub async fn metrics(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some(access) = &state.metrics_access else {
        return Err(ApiError::NotFound("Metrics are turned off.".to_owned()));
    };
    let credentials = crate::auth::credentials(&state, &request).await?;
    let scraper = match (&credentials, &access.token_hash) {
        (Credentials::Bearer(token), Some(expected)) => {
            same(&lablink_actors::tokens::sha256(token.as_bytes()), expected)
        }
        _ => false,
    };
    if !scraper {
        state.auth.require_admin(&credentials)?;
    }
    let snapshot = state
        .read(|conn| {
            Ok(DatabaseSnapshot {
                vms: Vm::count_by_state(conn)?,
                free_vms: Vm::count_free(conn)?,
                operations: Operation::count_by_kind_and_state(conn)?,
            })
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .body(state.metrics.render(&snapshot, &state.pool)))
}
