//! The admin API's enrollment tokens (`/api/admin/enrollment-tokens`); the actions are in
//! [`crate::admin_actions::enrollment_tokens`], the dashboard's page in
//! [`super::dashboard::enrollment`].

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::wire::EnrollmentTokenList;

use crate::admin_actions::enrollment_tokens::{self as enrollment, NewTokenRequest};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::idempotency::{self, Created};
use crate::state::AppState;

/// `POST /api/admin/enrollment-tokens`: 201 with the token, shown this once.
/// With `Idempotency-Key`, a retry makes no second token and is told the secret was shown.
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
pub async fn list_tokens(
    state: web::Data<AppState>,
    _admin: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(EnrollmentTokenList {
        tokens: enrollment::list(&state).await?,
    }))
}

/// `GET /api/admin/enrollment-tokens/{id}`: one token, without its secret.
pub async fn show_token(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(enrollment::show(&state, *id).await?))
}

/// `POST /api/admin/enrollment-tokens/{id}/revoke`.
pub async fn revoke_token(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(enrollment::revoke(&state, &caller, *id).await?))
}
