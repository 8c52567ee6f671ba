//! The admin API's enrollment tokens (`/api/admin/enrollment-tokens`); the actions are in
//! [`crate::admin_actions::enrollment_tokens`], the dashboard's page in
//! [`super::dashboard::enrollment`].

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::wire::EnrollmentTokenList;

use crate::admin_actions::enrollment_tokens::{self as enrollment, NewTokenRequest};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::idempotency::{self, Created};
use crate::paging::{self, PageQuery};
use crate::state::AppState;

/// `POST /api/admin/enrollment-tokens`: 201 with the token, shown this once.
/// With `Idempotency-Key`, a retry makes no second token and is told the secret was shown.
#[utoipa::path(
    post,
    path = "/api/admin/enrollment-tokens",
    tag = "admin: enrollment tokens",
    request_body = lablink_schema::wire::EnrollmentTokenRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer the first answer")
    ),
    responses(
        (status = 201, description = "The token, shown this once", body = lablink_schema::wire::CreatedEnrollmentToken),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody),
        (status = 422, description = "An idempotency key reused for another request", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn create_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    idempotency::once(&state, &request, &caller, &body, || async {
        let created = enrollment::create(&state, &caller, body.clone()).await?;
        let location = format!("/api/admin/enrollment-tokens/{}", created.view.id);
        let mut answer = Created::at(location, &created)?;
        answer.without_secret = Some(idempotency::to_json(&created.view)?);
        Ok(answer)
    })
    .await
}

/// `GET /api/admin/enrollment-tokens`: every token, newest first, without the secrets.
#[utoipa::path(
    get,
    path = "/api/admin/enrollment-tokens",
    tag = "admin: enrollment tokens",
    params(PageQuery),
    responses(
        (status = 200, description = "Every token, newest first", body = EnrollmentTokenList),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn list_tokens(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let listed = paging::page(enrollment::list(&state).await?, |t| t.id.to_string(), &page)?;
    Ok(listed.respond(
        "/api/admin/enrollment-tokens",
        &EnrollmentTokenList {
            tokens: listed.items.clone(),
        },
    ))
}

/// `GET /api/admin/enrollment-tokens/{id}`: one token, without its secret.
#[utoipa::path(
    get,
    path = "/api/admin/enrollment-tokens/{id}",
    tag = "admin: enrollment tokens",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "One token", body = lablink_schema::wire::EnrollmentTokenView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn show_token(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(enrollment::show(&state, *id).await?))
}

/// `POST /api/admin/enrollment-tokens/{id}/revoke`.
#[utoipa::path(
    post,
    path = "/api/admin/enrollment-tokens/{id}/revoke",
    tag = "admin: enrollment tokens",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "Revoked", body = lablink_schema::wire::EnrollmentTokenView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn revoke_token(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(enrollment::revoke(&state, &caller, *id).await?))
}
