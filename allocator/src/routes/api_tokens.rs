//! The admin API's own tokens (`/api/admin/tokens`); the actions are in
//! [`crate::admin_actions::api_tokens`], the dashboard's page in
//! [`super::dashboard::api_tokens`].

use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::wire::{ApiTokenList, ApiTokenRequest, ApiTokenScope, WhoAmI};

use crate::admin_actions::api_tokens;
use crate::auth::{AdminCaller, Caller};
use crate::error::ApiError;
use crate::idempotency::{self, Created};
use crate::state::AppState;

/// `POST /api/admin/tokens`: 201 with the token, shown this once, and `Location`.
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
pub async fn list(
    state: web::Data<AppState>,
    _admin: AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(ApiTokenList {
        tokens: api_tokens::list(&state).await?,
    }))
}

/// `GET /api/admin/tokens/{id}`.
pub async fn show(
    state: web::Data<AppState>,
    _admin: AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(api_tokens::show(&state, *id).await?))
}

/// `POST /api/admin/tokens/{id}/revoke`: the token's next request is refused.
pub async fn revoke(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(api_tokens::revoke(&state, &caller, *id).await?))
}

/// `GET /api/admin/whoami`: who these credentials act as, and with which scope.
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
