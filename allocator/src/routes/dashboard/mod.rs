//! The admin dashboard, one file per page: sign-in, instances, operations, logs, audit,
//! enrollment and API tokens. Every page needs a signed-in session ([`SignedIn`]) and every form the
//! session's CSRF token ([`crate::auth::CsrfForm`]); what a form does is an admin action
//! ([`crate::admin_actions`]), and the handler only turns its outcome into a page or a
//! redirect. Pages render typed view models; live updates come from [`crate::sse`].

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

pub mod allocator_log;
pub mod api_tokens;
pub mod audit;
pub mod enrollment;
pub mod instances;
pub mod logs;
pub mod operations;
pub mod participants;
pub mod sign_in;
pub mod workshops;

/// Operations and audit events listed.
const LISTED: i64 = 100;

pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// An error on a dashboard page, as a page.
pub(super) fn page_error(err: ApiError) -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::page_error::PageError(err))
}

/// `name` rendered with `context`, with `status`.
pub(super) fn render(
    state: &AppState,
    status: StatusCode,
    name: &str,
    context: &impl Serialize,
) -> HttpResponse {
    match state.pages.render(name, context) {
        Ok(html) => html_page(status, html),
        Err(err) => page_error(ApiError::Internal(err.to_string())),
    }
}

/// An admin page or fragment: never cached, it shows live state.
pub(super) fn html_page(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

pub(super) fn is_https(request: &HttpRequest) -> bool {
    request.connection_info().scheme() == "https"
}

/// The allocator's address as the admin's browser reached it (for the commands and logins the
/// enrollment and API-token pages show).
fn public_url(request: &HttpRequest) -> String {
    let info = request.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}
