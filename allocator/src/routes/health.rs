//! `GET /healthz` (the process is up) and `GET /readyz` (the database is reachable and fully
//! migrated), for load balancers, orchestrators and the container healthcheck.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use lablink_schema::migrations;
use lablink_schema::wire::HealthAnswer;

use crate::state::AppState;

/// How long readiness waits for a database connection before answering 503.
const READINESS_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /api/version`: the allocator's release and admin API version, for the CLI to check
/// it speaks the same API before it acts.
#[utoipa::path(
    get,
    path = "/api/version",
    tag = "health",
    responses(
        (status = 200, description = "The release and the admin API version", body = lablink_schema::wire::VersionView)
    ),
)]
pub async fn version() -> HttpResponse {
    HttpResponse::Ok().json(lablink_schema::wire::VersionView {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        api: lablink_schema::wire::ADMIN_API_VERSION,
    })
}

/// Always 200 while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "The process serves requests", body = HealthAnswer)
    ),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthAnswer::new("ok", None))
}

/// 200 when the database answers and has every migration this binary knows; else 503 with
/// the reason (which never includes connection details).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The database answers and is fully migrated", body = HealthAnswer),
        (status = 503, description = "Not ready, with the reason", body = HealthAnswer)
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let checked = web::block(move || {
        let mut conn = pool
            .get_timeout(READINESS_DB_TIMEOUT)
            .map_err(|_| "database unreachable".to_owned())?;
        migrations::pending_versions(&mut conn).map_err(|_| "database unreachable".to_owned())
    })
    .await;
    match checked {
        Ok(Ok(pending)) if pending.is_empty() => {
            HttpResponse::Ok().json(HealthAnswer::new("ready", None))
        }
        Ok(Ok(pending)) => {
            tracing::warn!(?pending, "not ready: migrations pending");
            HttpResponse::ServiceUnavailable().json(HealthAnswer::new(
                "unavailable",
                Some("database migrations pending"),
            ))
        }
        Ok(Err(reason)) => {
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable().json(HealthAnswer::new("unavailable", Some(&reason)))
        }
        Err(blocking) => {
            tracing::error!(error = %blocking, "readiness check did not run");
            HttpResponse::ServiceUnavailable().json(HealthAnswer::new(
                "unavailable",
                Some("readiness check failed"),
            ))
        }
    }
}
