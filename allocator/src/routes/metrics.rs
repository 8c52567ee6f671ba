//! `GET /metrics`: the Prometheus exposition, for the admin or a scraper with the metrics
//! token.

use actix_web::{web, HttpResponse};
use lablink_schema::operations::Operation;
use lablink_schema::vms::Vm;

use crate::auth::extractors::MetricsReader;
use crate::error::ApiError;
use crate::metrics::{self, DatabaseSnapshot};
use crate::state::AppState;

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "Needs the admin or the metrics token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Metrics are turned off", body = lablink_schema::wire::ErrorBody)
    ),
)]
pub async fn metrics(
    state: web::Data<AppState>,
    _reader: MetricsReader,
) -> Result<HttpResponse, ApiError> {
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
