//! Enrollment tokens on both surfaces: the admin API (`/api/admin/enrollment-tokens`) and the
//! dashboard's page (`/admin/enrollment`). Both only translate; the actions are in
//! [`crate::admin_actions::enrollment_tokens`].

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::admin_pages::{
    csrf_ok, csrf_refused, field, form_fields, page_error, redirect, render, SignedIn,
};
use crate::admin_actions::enrollment_tokens::{self as enrollment, agent_command, NewTokenRequest};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /api/admin/enrollment-tokens`: 201 with the token, shown this once.
pub async fn create_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<NewTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = crate::auth::require_admin(&state, &request).await?;
    let created = enrollment::create(&state, &caller, body.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(created))
}

/// `GET /api/admin/enrollment-tokens`: every token, newest first, without the secrets.
pub async fn list_tokens(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    crate::auth::require_admin(&state, &request).await?;
    Ok(HttpResponse::Ok().json(json!({ "tokens": enrollment::list(&state).await? })))
}

/// `POST /api/admin/enrollment-tokens/{id}/revoke`.
pub async fn revoke_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let caller = crate::auth::require_admin(&state, &request).await?;
    Ok(HttpResponse::Ok().json(enrollment::revoke(&state, &caller, *id).await?))
}

/// The allocator's address as the admin's browser reached it, for the enrollment command.
fn public_url(request: &HttpRequest) -> String {
    let info = request.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

async fn enrollment_page(
    state: &AppState,
    session: &SignedIn,
    status: StatusCode,
    created: Option<serde_json::Value>,
    error: Option<&str>,
) -> HttpResponse {
    match enrollment::list(state).await {
        Ok(tokens) => render(
            state,
            status,
            "admin_enrollment",
            &json!({
                "csrf": session.csrf,
                "tokens": tokens,
                "created": created,
                "error": error,
                "legacy": state.auth.legacy_unauthenticated(),
            }),
        ),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/enrollment`.
pub async fn page(state: web::Data<AppState>, session: SignedIn) -> HttpResponse {
    enrollment_page(&state, &session, StatusCode::OK, None, None).await
}

/// `POST /admin/enrollment/create`: shows the new token and the command, once.
pub async fn create_from_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    session: SignedIn,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    if !csrf_ok(&session, &fields) {
        return csrf_refused();
    }
    let number = |name: &str| -> Result<Option<u64>, String> {
        match field(&fields, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => Ok(None),
            Some(text) => text
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("`{text}` is not a whole number")),
        }
    };
    let parsed = (|| {
        let hours = number("expires_in_hours")?;
        let uses = number("max_uses")?;
        Ok::<_, String>(NewTokenRequest {
            label: field(&fields, "label").unwrap_or_default().to_owned(),
            expires_in_secs: hours.map(|h| h.saturating_mul(3600)),
            max_uses: uses.map(|u| u32::try_from(u).unwrap_or(u32::MAX)),
        })
    })();
    let request_body = match parsed {
        Ok(body) => body,
        Err(error) => {
            return enrollment_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                None,
                Some(&error),
            )
            .await
        }
    };
    match enrollment::create(&state, &Caller::Admin, request_body).await {
        Ok(created) => {
            let command = agent_command(&public_url(&request), &created.token);
            let shown = json!({
                "token": created.token,
                "label": created.view.label,
                "command": command,
            });
            enrollment_page(&state, &session, StatusCode::OK, Some(shown), None).await
        }
        Err(ApiError::BadRequest(error)) => {
            enrollment_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                None,
                Some(&error),
            )
            .await
        }
        Err(err) => page_error(err),
    }
}

/// `POST /admin/enrollment/{id}/revoke`.
pub async fn revoke_from_form(
    state: web::Data<AppState>,
    session: SignedIn,
    id: web::Path<i64>,
    body: web::Bytes,
) -> HttpResponse {
    if !csrf_ok(&session, &form_fields(&body)) {
        return csrf_refused();
    }
    match enrollment::revoke(&state, &Caller::Admin, *id).await {
        Ok(_) => redirect("/admin/enrollment"),
        Err(err) => page_error(err),
    }
}
