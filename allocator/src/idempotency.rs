//! `Idempotency-Key` on the admin API's creations: the first request with a key runs and its
//! answer is kept a day; a retry with the same key and body gets that answer again
//! (`Idempotent-Replayed: true`) and creates nothing. The key is claimed in the database
//! before the work starts, so two allocators never both run it; a claim whose allocator died
//! is taken over after [`ABANDONED_AFTER`]. A failed request keeps nothing, so its retry runs.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use lablink_schema::idempotency::{self, Claim, StoredAnswer};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The header on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long an answer is kept for retries.
const KEPT_FOR: Duration = Duration::hours(24);
/// How long a claim may go unanswered before it is thought abandoned.
const ABANDONED_AFTER: Duration = Duration::minutes(10);
/// Longest key.
const MAX_KEY_LEN: usize = 255;

/// A creation's answer.
#[derive(Debug)]
pub struct Created {
    pub status: StatusCode,
    /// Where the new thing can be read (`Location`).
    pub location: Option<String>,
    pub body: serde_json::Value,
    /// The body without its secret, for an answer that carries one (a new token): that is
    /// what is kept, and a retry is told the secret was shown once.
    pub without_secret: Option<serde_json::Value>,
}

impl Created {
    /// 201 with `body` and `Location: location`.
    pub fn at(location: String, body: &impl Serialize) -> Result<Self, ApiError> {
        Ok(Created {
            status: StatusCode::CREATED,
            location: Some(location),
            body: to_json(body)?,
            without_secret: None,
        })
    }

    fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(location) = &self.location {
            response.insert_header((header::LOCATION, location.as_str()));
        }
        if self.without_secret.is_some() {
            response.insert_header((header::CACHE_CONTROL, "no-store"));
        }
        response.json(&self.body)
    }
}

/// Serialises an answer body.
pub fn to_json(body: &impl Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(body).map_err(|err| ApiError::Internal(err.to_string()))
}

/// The request's key, checked: printable ASCII, 1 to 255 characters.
fn key_of(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters without \
             spaces (a UUID is a good key)"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// Runs `create` once per key: with no key it simply runs; with one, a retry replays the
/// first answer. `input` is what the request asked for (its hash tells a retry from a new
/// request that reuses the key).
pub async fn once<F, Fut>(
    state: &AppState,
    request: &HttpRequest,
    caller: &Caller,
    input: &impl Serialize,
    create: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Created, ApiError>>,
{
    let Some(key) = key_of(request)? else {
        return Ok(create().await?.response());
    };
    // As routed: two spellings of one path are one route.
    let route = format!("{} {}", request.method(), request.match_info().as_str());
    let input = serde_json::to_vec(input).map_err(|err| ApiError::Internal(err.to_string()))?;
    let request_hash = lablink_actors::tokens::hash_token(&String::from_utf8_lossy(&input));
    let owner = caller.audit_name();
    let now = Utc::now().naive_utc();
    let claim = {
        let (owner, key, route) = (owner.clone(), key.clone(), route.clone());
        state
            .small_write(move |conn| {
                idempotency::claim(
                    conn,
                    &owner,
                    &key,
                    &route,
                    &request_hash,
                    now,
                    now - KEPT_FOR,
                    now - ABANDONED_AFTER,
                )
            })
            .await?
    };
    match claim {
        Claim::Run => {}
        Claim::Replay(stored) => return replay(stored),
        Claim::InProgress => {
            return Err(ApiError::Coded {
                status: StatusCode::CONFLICT,
                code: "idempotency_key_in_use",
                message: "a request with this Idempotency-Key is still running: retry once it \
                          has answered"
                    .to_owned(),
            })
        }
        Claim::Mismatch { route: first } => {
            return Err(ApiError::Coded {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "idempotency_key_reused",
                message: format!(
                    "this Idempotency-Key was first sent with another request ({first}, or \
                     another body): a new request needs a new key"
                ),
            })
        }
    }
    match create().await {
        Ok(created) => {
            let kept = StoredAnswer {
                status: created.status.as_u16(),
                location: created.location.clone(),
                body: created
                    .without_secret
                    .as_ref()
                    .unwrap_or(&created.body)
                    .to_string(),
                secret_withheld: created.without_secret.is_some(),
            };
            let stored = state
                .small_write(move |conn| idempotency::answer(conn, &owner, &key, &kept, now))
                .await;
            if let Err(err) = stored {
                // The creation happened; a retry within ABANDONED_AFTER is told to wait,
                // and after it would run again. Said loudly, since that is the one gap.
                tracing::error!(error = %err, "cannot keep the answer of an idempotent request");
            }
            Ok(created.response())
        }
        Err(err) => {
            let released = state
                .small_write(move |conn| idempotency::release(conn, &owner, &key))
                .await;
            if let Err(release_err) = released {
                tracing::warn!(error = %release_err, "cannot release an idempotency key");
            }
            Err(err)
        }
    }
}

/// The first answer again.
fn replay(stored: StoredAnswer) -> Result<HttpResponse, ApiError> {
    if stored.secret_withheld {
        return Err(ApiError::Coded {
            status: StatusCode::CONFLICT,
            code: "idempotent_secret_shown",
            message: format!(
                "this Idempotency-Key already made {}: its answer carried a secret, which is \
                 shown only once and not kept (read the rest there; for a lost token, revoke \
                 it and make another; for a lost invite code, set a new one)",
                stored.location.as_deref().unwrap_or("it")
            ),
        });
    }
    let mut response =
        HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK));
    if let Some(location) = &stored.location {
        response.insert_header((header::LOCATION, location.as_str()));
    }
    Ok(response
        .insert_header((REPLAYED, "true"))
        .content_type("application/json")
        .body(stored.body))
}
