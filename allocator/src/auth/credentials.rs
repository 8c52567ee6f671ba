//! The credentials a request carries (`Authorization: Basic` or `Bearer`), and the check of
//! Basic ones against the admin's password, with the same lockout as the sign-in form.

use actix_web::http::header;
use actix_web::HttpRequest;
use base64::Engine;

use super::api_tokens::{self, ApiTokenGrant};
use crate::error::ApiError;
use crate::state::AppState;

/// The credentials a request carries.
#[derive(PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// An `Authorization` header we cannot read.
    Malformed,
    /// Basic credentials already checked to be the admin's (see [`checked`]).
    Admin,
    /// A working admin API token (see [`checked`]).
    ApiToken(ApiTokenGrant),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "Credentials::None",
            Credentials::Basic { .. } => "Credentials::Basic",
            Credentials::Bearer(_) => "Credentials::Bearer",
            Credentials::Malformed => "Credentials::Malformed",
            Credentials::Admin => "Credentials::Admin",
            Credentials::ApiToken(_) => "Credentials::ApiToken",
        })
    }
}

impl Credentials {
    /// Reads the `Authorization` header.
    pub fn from_request(request: &HttpRequest) -> Self {
        let Some(value) = request.headers().get(header::AUTHORIZATION) else {
            return Credentials::None;
        };
        let Ok(value) = value.to_str() else {
            return Credentials::Malformed;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Credentials::Bearer(rest.to_owned());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                return Credentials::Basic {
                    user: user.to_owned(),
                    password: password.to_owned(),
                };
            }
        }
        Credentials::Malformed
    }
}

/// The request's credentials, with Basic ones checked against the admin's: the same lockout
/// per client address as the sign-in form, argon2 off the HTTP workers (only until a pair
/// has been verified once), and every failure audited. Known-good admin credentials come
/// back as [`Credentials::Admin`]; wrong ones are refused here with 401 (429 while locked out).
/// A bearer token shaped as an admin API token (`lla_…`) is looked up and comes back as
/// [`Credentials::ApiToken`], or is refused with 401 saying whether it is unknown, expired or
/// revoked.
pub async fn checked(state: &AppState, request: &HttpRequest) -> Result<Credentials, ApiError> {
    let (user, password) = match Credentials::from_request(request) {
        Credentials::Basic { user, password } => (user, password),
        Credentials::Bearer(token) if lablink_actors::tokens::is_api_token(&token) => {
            return api_tokens::resolve(state, &token)
                .await
                .map(Credentials::ApiToken);
        }
        other => return Ok(other),
    };
    let admin = state.auth.admin.clone();
    if admin.basic_known(&user, &password) {
        return Ok(Credentials::Admin);
    }
    let address = state.client_addresses.of(request);
    // Counted as a failure before the check, so concurrent guesses cannot outrun the lockout.
    if let Err(wait) = state.login_guard.begin_attempt(address) {
        return Err(ApiError::TooManyRequests {
            message: "too many failed sign-ins from this address; wait before trying again"
                .to_owned(),
            retry_after: wait,
        });
    }
    let verified = actix_web::web::block(move || admin.verify_basic(&user, &password)).await?;
    if verified {
        state.login_guard.clear(address);
        return Ok(Credentials::Admin);
    }
    state
        .audit(
            "admin",
            "admin.basic_failed",
            Some(request.match_info().as_str().to_owned()),
            Some(format!("from {address}")),
        )
        .await;
    Err(ApiError::admin_required())
}
