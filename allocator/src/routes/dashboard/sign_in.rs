//! Signing in and out of the dashboard: the form (with its one-time nonce), the check of the
//! password with the lockout per address, and the session's start and end.

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::{is_https, page_error, redirect, render};
use crate::auth::extractors::form_fields;
use crate::auth::{sessions, CsrfForm};
use crate::state::AppState;

/// The admin as the audit trail names them.
const ADMIN: &str = "admin";

#[derive(Serialize)]
struct LoginPage<'a> {
    nonce: &'a str,
    user: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

fn login_page(
    state: &AppState,
    request: &HttpRequest,
    status: StatusCode,
    user: &str,
    error: Option<&str>,
) -> HttpResponse {
    // A fresh anti-forgery nonce, in a signed cookie and in the form: a sign-in form posted
    // from elsewhere has neither.
    let (nonce, cookie) = sessions::issue_login_nonce(state, is_https(request));
    let notice = match request.query_string() {
        q if q.contains("expired=1") => Some("Your session has ended. Please sign in again."),
        q if q.contains("logged_out=1") => Some("You are signed out."),
        _ => None,
    };
    let mut response = render(
        state,
        status,
        "admin_login",
        &LoginPage {
            nonce: &nonce,
            user,
            error,
            notice,
        },
    );
    let _ = response.add_cookie(&cookie);
    response
}

/// `GET /admin/login`.
pub async fn login_form(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    login_page(&state, &request, StatusCode::OK, "", None)
}

/// `POST /admin/login`.
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let user = field("user").unwrap_or_default();
    let password = field("password").unwrap_or_default();
    let nonce_ok = match field("login_nonce") {
        Some(nonce) => sessions::use_login_nonce(&state, &request, &nonce).await,
        None => false,
    };
    if !nonce_ok {
        return login_page(
            &state,
            &request,
            StatusCode::FORBIDDEN,
            &user,
            Some("The sign-in form expired. Please try again."),
        );
    }
    let address: IpAddr = state.client_addresses.of(&request);
    // Counted as a failure before the check, so concurrent guesses cannot outrun the lockout.
    if let Err(wait) = state.login_guard.begin_attempt(address) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return login_page(
            &state,
            &request,
            StatusCode::TOO_MANY_REQUESTS,
            &user,
            Some(&format!(
                "Too many failed sign-ins. Try again in {minutes} minutes."
            )),
        );
    }
    let auth = state.auth.clone();
    let (check_user, check_password) = (user.clone(), password);
    let verified = web::block(move || auth.admin().verify(&check_user, &check_password))
        .await
        .unwrap_or(false);
    if !verified {
        state
            .audit(
                ADMIN,
                "admin.login_failed",
                None,
                Some(format!("from {address}")),
            )
            .await;
        return login_page(
            &state,
            &request,
            StatusCode::UNAUTHORIZED,
            &user,
            Some("Wrong user name or password."),
        );
    }
    state.login_guard.clear(address);
    let cookie = match sessions::start(&state, is_https(&request)).await {
        Ok(cookie) => cookie,
        Err(err) => return page_error(err),
    };
    state
        .audit(ADMIN, "admin.login", None, Some(format!("from {address}")))
        .await;
    let mut response = redirect("/admin");
    let _ = response.add_cookie(&cookie);
    response
}

/// `POST /admin/logout`.
pub async fn logout(state: web::Data<AppState>, form: CsrfForm) -> HttpResponse {
    let gone = sessions::end(&state, form.session.session()).await;
    state.audit(ADMIN, "admin.logout", None, None).await;
    let mut response = redirect("/admin/login?logged_out=1");
    let _ = response.add_cookie(&gone);
    response
}
