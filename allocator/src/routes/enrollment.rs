//! The admin API's enrollment tokens (`/api/admin/enrollment-tokens`); the actions are in
//! [`crate::admin_actions::enrollment_tokens`], the dashboard's page in
//! [`super::dashboard::enrollment`].

use actix_web::{web, HttpResponse};
use lablink_schema::wire::EnrollmentTokenList;

use crate::admin_actions::enrollment_tokens::{self as enrollment, NewTokenRequest};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/admin/enrollment-tokens`: 201 with the token, shown this once.
pub async fn create_token(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    body: web::Json<NewTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = enrollment::create(&state, &caller, body.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(created))
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

/// `POST /api/admin/enrollment-tokens/{id}/revoke`.
pub async fn revoke_token(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(enrollment::revoke(&state, &caller, *id).await?))
}
