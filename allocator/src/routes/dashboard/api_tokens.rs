//! The API tokens page (`/admin/tokens`): the admin API's tokens, a form that makes one
//! (shown once), and revocation.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::wire::{ApiTokenRequest, ApiTokenScope, ApiTokenView};
use serde::Serialize;

use super::{page_error, public_url, redirect, render};
use crate::admin_actions::api_tokens;
use crate::auth::{Caller, CsrfForm, SignedIn};
use crate::error::ApiError;
use crate::state::AppState;

/// A token just made, shown this once.
#[derive(Debug, Serialize)]
struct CreatedView {
    token: String,
    name: String,
    scope: ApiTokenScope,
    url: String,
}

#[derive(Debug, Serialize)]
struct TokensView<'a> {
    csrf: &'a str,
    tokens: Vec<ApiTokenView>,
    created: Option<CreatedView>,
    error: Option<&'a str>,
}

async fn tokens_page(
    state: &AppState,
    session: &SignedIn,
    status: StatusCode,
    created: Option<CreatedView>,
    error: Option<&str>,
) -> HttpResponse {
    match api_tokens::list(state).await {
        Ok(tokens) => render(
            state,
            status,
            "admin_api_tokens",
            &TokensView {
                csrf: session.csrf(),
                tokens,
                created,
                error,
            },
        ),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/tokens`.
pub async fn page(state: web::Data<AppState>, session: SignedIn) -> HttpResponse {
    tokens_page(&state, &session, StatusCode::OK, None, None).await
}

/// The form's fields as the action's input.
fn token_request(form: &CsrfForm) -> Result<ApiTokenRequest, String> {
    let scope = form.field("scope").unwrap_or_default();
    let scope: ApiTokenScope = scope
        .parse()
        .map_err(|_| format!("`{scope}` is not a scope: choose read-only or admin"))?;
    let days = match form
        .field("expires_in_days")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| format!("`{text}` is not a whole number of days"))?,
        ),
    };
    Ok(ApiTokenRequest {
        name: form.field("name").unwrap_or_default().to_owned(),
        scope,
        expires_in_secs: days.map(|d| d.saturating_mul(24 * 3600)),
    })
}

/// `POST /admin/tokens/create`: shows the new token, once.
pub async fn create_from_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: CsrfForm,
) -> HttpResponse {
    let refused = |error: String| {
        let state = state.clone();
        let session = form.session.clone();
        async move {
            tokens_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                None,
                Some(&error),
            )
            .await
        }
    };
    let input = match token_request(&form) {
        Ok(input) => input,
        Err(error) => return refused(error).await,
    };
    match api_tokens::create(&state, &Caller::Admin, input).await {
        Ok(created) => {
            let shown = CreatedView {
                token: created.token,
                name: created.view.name,
                scope: created.view.scope,
                url: public_url(&request),
            };
            tokens_page(&state, &form.session, StatusCode::OK, Some(shown), None).await
        }
        Err(ApiError::BadRequest(error)) => refused(error).await,
        Err(err) => page_error(err),
    }
}

/// `POST /admin/tokens/{id}/revoke`.
pub async fn revoke_from_form(
    state: web::Data<AppState>,
    _form: CsrfForm,
    id: web::Path<i64>,
) -> HttpResponse {
    match api_tokens::revoke(&state, &Caller::Admin, *id).await {
        Ok(_) => redirect("/admin/tokens"),
        Err(err) => page_error(err),
    }
}
