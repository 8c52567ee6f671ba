//! The admin API's own tokens (`/api/admin/tokens`); the actions are in
//! [`crate::admin_actions::api_tokens`], the dashboard's page in
//! [`super::dashboard::api_tokens`].

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::wire::{ApiTokenList, ApiTokenRequest, ApiTokenScope, WhoAmI};

use crate::admin_actions::api_tokens;
use crate::auth::{AdminCaller, Caller};
use crate::error::ApiError;
use crate::idempotency::{self, Created};
use crate::paging::{self, PageQuery};
use crate::state::AppState;

/// `POST /api/admin/tokens`: 201 with the token, shown this once, and `Location`.
#[utoipa::path(
    post,
    path = "/api/admin/tokens",
    tag = "admin: API tokens",
    request_body = ApiTokenRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer the first answer")
    ),
    responses(
        (status = 201, description = "The token, shown this once", body = lablink_schema::wire::CreatedApiToken),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody),
        (status = 422, description = "An idempotency key reused for another request", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminCaller(caller): AdminCaller,
    body: web::Json<ApiTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    idempotency::once(&state, &request, &caller, &body, || async {
        let created = api_tokens::create(&state, &caller, body.clone()).await?;
        let mut answer = Created::at(format!("/api/admin/tokens/{}", created.view.id), &created)?;
        answer.without_secret = Some(idempotency::to_json(&created.view)?);
        Ok(answer)
    })
    .await
}

/// `GET /api/admin/tokens`: every token, newest first, without the secrets.
#[utoipa::path(
    get,
    path = "/api/admin/tokens",
    tag = "admin: API tokens",
    params(PageQuery),
    responses(
        (status = 200, description = "Every token, newest first", body = ApiTokenList),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn list(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let listed = paging::page(api_tokens::list(&state).await?, |t| t.id.to_string(), &page)?;
    Ok(listed.respond(
        "/api/admin/tokens",
        &ApiTokenList {
            tokens: listed.items.clone(),
        },
    ))
}

/// `GET /api/admin/tokens/{id}`.
#[utoipa::path(
    get,
    path = "/api/admin/tokens/{id}",
    tag = "admin: API tokens",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "One token", body = lablink_schema::wire::ApiTokenView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn show(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(api_tokens::show(&state, *id).await?))
}

/// `POST /api/admin/tokens/{id}/revoke`: the token's next request is refused.
#[utoipa::path(
    post,
    path = "/api/admin/tokens/{id}/revoke",
    tag = "admin: API tokens",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "Revoked", body = lablink_schema::wire::ApiTokenView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn revoke(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(api_tokens::revoke(&state, &caller, *id).await?))
}

/// `GET /api/admin/whoami`: who these credentials act as, and with which scope.
#[utoipa::path(
    get,
    path = "/api/admin/whoami",
    tag = "admin: API tokens",
    responses(
        (status = 200, description = "Who the credentials act as", body = WhoAmI),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn whoami(AdminCaller(caller): AdminCaller) -> HttpResponse {
    let scope = match &caller {
        Caller::ApiToken { scope, .. } => *scope,
        _ => ApiTokenScope::Admin,
    };
    HttpResponse::Ok().json(WhoAmI {
        actor: caller.audit_name(),
        scope,
    })
}
