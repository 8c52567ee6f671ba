//! The dashboard's sessions and its sign-in form's one-time nonces.
//!
//! A session is a random id in a signed, HttpOnly, SameSite=Strict cookie (Secure over TLS);
//! the database keeps only the id's hash, its CSRF token and its expiry, so signing out ends
//! it on every allocator. The sign-in form carries a nonce that is also in a signed cookie
//! and can be used once, which a form posted from elsewhere cannot have.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use chrono::Utc;
use lablink_actors::db_writer::{EndAdminSession, StartAdminSession, UseLoginNonce};
use lablink_schema::admin_sessions::AdminSession;

use super::{hash_token, random_token, same};
use crate::error::ApiError;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "lablink_admin";
/// Name of the cookie that carries the sign-in form's anti-forgery nonce.
pub const LOGIN_COOKIE: &str = "lablink_login";
/// How long a sign-in form stays usable.
const LOGIN_FORM_TTL_SECS: i64 = 3600;

/// A signed-in admin's session, as found for a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub(crate) id_hash: String,
    /// The token every form of this session must carry.
    pub csrf: String,
}

/// Why a request has no session.
#[derive(Debug)]
pub enum NoSession {
    /// No session cookie at all.
    Missing,
    /// A cookie that is forged, expired or signed out.
    Ended,
    /// The database could not be asked.
    Failed(ApiError),
}

/// The session this request's cookie names, if it is valid now.
pub async fn of_request(state: &AppState, request: &HttpRequest) -> Result<Session, NoSession> {
    let cookie = request.cookie(SESSION_COOKIE).ok_or(NoSession::Missing)?;
    let session_id = state
        .signer
        .verify(cookie.value())
        .ok_or(NoSession::Ended)?;
    let id_hash = hash_token(session_id);
    let lookup = id_hash.clone();
    let session = state
        .read(move |conn| AdminSession::find_valid(conn, &lookup, Utc::now().naive_utc()))
        .await
        .map_err(NoSession::Failed)?
        .ok_or(NoSession::Ended)?;
    Ok(Session {
        id_hash,
        csrf: session.csrf_token,
    })
}

/// Starts a session (stored on every allocator) and returns the cookie that carries it.
pub async fn start(state: &AppState, secure: bool) -> Result<Cookie<'static>, ApiError> {
    let session_id = random_token();
    let now = Utc::now().naive_utc();
    let ttl = chrono::Duration::from_std(state.session_ttl)
        .unwrap_or_else(|_| chrono::Duration::hours(8));
    let session = AdminSession {
        id_hash: hash_token(&session_id),
        csrf_token: random_token(),
        created_at: now,
        expires_at: now + ttl,
    };
    if !matches!(
        state.writer.send(StartAdminSession(session)).await,
        Ok(Ok(()))
    ) {
        return Err(ApiError::Unavailable(
            "Cannot sign in right now; please try again.".to_owned(),
        ));
    }
    Ok(
        Cookie::build(SESSION_COOKIE, state.signer.sign(&session_id))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            // No Max-Age: gone when the browser closes; the server enforces the expiry.
            .finish(),
    )
}

/// Ends `session` everywhere and returns the cookie that removes it from the browser.
pub async fn end(state: &AppState, session: &Session) -> Cookie<'static> {
    let _ = state
        .writer
        .send(EndAdminSession {
            id_hash: session.id_hash.clone(),
        })
        .await;
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    gone
}

/// A fresh nonce for a sign-in form, and the signed cookie that carries it too.
pub fn issue_login_nonce(state: &AppState, secure: bool) -> (String, Cookie<'static>) {
    let nonce = random_token();
    let issued = format!("{nonce}:{}", Utc::now().timestamp());
    let cookie = Cookie::build(LOGIN_COOKIE, state.signer.sign(&issued))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish();
    (nonce, cookie)
}

/// Whether this request's login cookie carries `nonce`, issued within the form's lifetime and
/// used now for the first time (recorded in the database, so every allocator knows).
pub async fn use_login_nonce(state: &AppState, request: &HttpRequest, nonce: &str) -> bool {
    let Some(cookie) = request.cookie(LOGIN_COOKIE) else {
        return false;
    };
    let Some((issued_nonce, issued_at)) = state
        .signer
        .verify(cookie.value())
        .and_then(|value| value.rsplit_once(':'))
    else {
        return false;
    };
    let Ok(issued_at) = issued_at.parse::<i64>() else {
        return false;
    };
    let now = Utc::now().timestamp();
    if !same(issued_nonce.as_bytes(), nonce.as_bytes())
        || !(issued_at..issued_at + LOGIN_FORM_TTL_SECS).contains(&now)
    {
        return false;
    }
    let expires_at = chrono::DateTime::from_timestamp(issued_at + LOGIN_FORM_TTL_SECS, 0)
        .map(|at| at.naive_utc())
        .unwrap_or_default();
    matches!(
        state
            .writer
            .send(UseLoginNonce {
                nonce_hash: hash_token(nonce),
                expires_at,
            })
            .await,
        Ok(Ok(true))
    )
}
