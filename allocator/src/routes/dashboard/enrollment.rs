//! The enrollment page (`/admin/enrollment`): the enrollment tokens, a form that makes one
//! (shown once, with the command that starts an agent with it), and revocation.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::{page_error, public_url, redirect, render};
use crate::admin_actions::enrollment_tokens::{
    self as enrollment, agent_command, NewTokenRequest, TokenView,
};
use crate::auth::{Caller, CsrfForm, SignedIn};
use crate::error::ApiError;
use crate::state::AppState;

/// A token just made, shown this once.
#[derive(Debug, Serialize)]
struct CreatedView {
    token: String,
    label: String,
    command: String,
}

#[derive(Debug, Serialize)]
struct EnrollmentView<'a> {
    csrf: &'a str,
    tokens: Vec<TokenView>,
    created: Option<CreatedView>,
    error: Option<&'a str>,
    legacy: bool,
}

async fn enrollment_page(
    state: &AppState,
    session: &SignedIn,
    status: StatusCode,
    created: Option<CreatedView>,
    error: Option<&str>,
) -> HttpResponse {
    match enrollment::list(state).await {
        Ok(tokens) => render(
            state,
            status,
            "admin_enrollment",
            &EnrollmentView {
                csrf: session.csrf(),
                tokens,
                created,
                error,
                legacy: state.auth.legacy_unauthenticated(),
            },
        ),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/enrollment`.
pub async fn page(state: web::Data<AppState>, session: SignedIn) -> HttpResponse {
    enrollment_page(&state, &session, StatusCode::OK, None, None).await
}

/// The form's fields as the action's input; empty numbers mean "no limit".
fn new_token_request(form: &CsrfForm) -> Result<NewTokenRequest, String> {
    let number = |name: &str| -> Result<Option<u64>, String> {
        match form.field(name).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => text
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("`{text}` is not a whole number")),
        }
    };
    let hours = number("expires_in_hours")?;
    let uses = number("max_uses")?;
    Ok(NewTokenRequest {
        label: form.field("label").unwrap_or_default().to_owned(),
        expires_in_secs: hours.map(|h| h.saturating_mul(3600)),
        max_uses: uses.map(|u| u32::try_from(u).unwrap_or(u32::MAX)),
    })
}

/// `POST /admin/enrollment/create`: shows the new token and the command, once.
pub async fn create_from_form(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: CsrfForm,
) -> HttpResponse {
    let refused = |error: String| {
        let state = state.clone();
        let session = form.session.clone();
        async move {
            enrollment_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                None,
                Some(&error),
            )
            .await
        }
    };
    let input = match new_token_request(&form) {
        Ok(input) => input,
        Err(error) => return refused(error).await,
    };
    match enrollment::create(&state, &Caller::Admin, input).await {
        Ok(created) => {
            let shown = CreatedView {
                command: agent_command(&public_url(&request), &created.token),
                token: created.token,
                label: created.view.label,
            };
            enrollment_page(&state, &form.session, StatusCode::OK, Some(shown), None).await
        }
        Err(ApiError::BadRequest(error)) => refused(error).await,
        Err(err) => page_error(err),
    }
}

/// `POST /admin/enrollment/{id}/revoke`.
pub async fn revoke_from_form(
    state: web::Data<AppState>,
    _form: CsrfForm,
    id: web::Path<i64>,
) -> HttpResponse {
    match enrollment::revoke(&state, &Caller::Admin, *id).await {
        Ok(_) => redirect("/admin/enrollment"),
        Err(err) => page_error(err),
    }
}
