//! The admin API's tokens as admin actions: create (the token shown once), list, revoke. The
//! JSON API and the dashboard both call these, so a name is checked once and each action
//! leaves the same audit record whichever surface asked.

use chrono::Utc;
use lablink_actors::api_token_writes::{CreateApiToken, RevokeApiToken};
use lablink_schema::api_tokens::{ApiToken, NewApiToken};
use lablink_schema::wire::{ApiTokenRequest, ApiTokenView, CreatedApiToken};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest lifetime a token may be given: two years.
const MAX_TTL_SECS: u64 = 2 * 366 * 24 * 3600;

/// The token as admins see it now.
fn view(token: &ApiToken) -> ApiTokenView {
    ApiTokenView {
        id: token.id,
        name: token.name.clone(),
        scope: token.scope(),
        created_by: token.created_by.clone(),
        created_at: token.created_at,
        expires_at: token.expires_at,
        revoked_at: token.revoked_at,
        last_used_at: token.last_used_at,
        state: token.state_at(Utc::now().naive_utc()),
    }
}

fn checked(request: ApiTokenRequest) -> Result<ApiTokenRequest, ApiError> {
    let name = request.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::BadRequest(
            "give the token a name: who or what will use it (`nightly export`, `Ana's laptop`)"
                .to_owned(),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "the name is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "the name must not contain control characters".to_owned(),
        ));
    }
    match request.expires_in_secs {
        Some(0) => Err(ApiError::BadRequest(
            "expires_in_secs must be at least 1 (leave it out for a token that never expires)"
                .to_owned(),
        )),
        Some(secs) if secs > MAX_TTL_SECS => Err(ApiError::BadRequest(format!(
            "expires_in_secs may be at most {MAX_TTL_SECS} (two years)"
        ))),
        _ => Ok(ApiTokenRequest { name, ..request }),
    }
}

/// Makes a token; the answer carries it, the database only its hash.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: ApiTokenRequest,
) -> Result<CreatedApiToken, ApiError> {
    let request = checked(request)?;
    let now = Utc::now().naive_utc();
    let asked = request
        .expires_in_secs
        .and_then(|secs| chrono::Duration::try_seconds(i64::try_from(secs).ok()?))
        .map(|ttl| now + ttl);
    // A token made with a token never outlives it: its expiry is capped by its parent's, and
    // revoking the parent revokes it.
    let parent = match caller {
        Caller::ApiToken { id, .. } => {
            let id = *id;
            state.read(move |conn| ApiToken::find(conn, id)).await?
        }
        _ => None,
    };
    let expires_at = match (asked, parent.as_ref().and_then(|p| p.expires_at)) {
        (Some(asked), Some(cap)) => Some(asked.min(cap)),
        (asked, cap) => asked.or(cap),
    };
    let (token, token_hash) = lablink_actors::tokens::new_api_token();
    let stored = state
        .writer
        .send(CreateApiToken {
            token: NewApiToken {
                token_hash,
                name: request.name,
                scope: request.scope.as_str().to_owned(),
                created_by: caller.audit_name(),
                created_at: now,
                expires_at,
                parent_id: parent.map(|p| p.id),
            },
        })
        .await??;
    Ok(CreatedApiToken {
        token,
        view: view(&stored),
    })
}

/// Every token, newest first.
pub async fn list(state: &AppState) -> Result<Vec<ApiTokenView>, ApiError> {
    let tokens = state.read(ApiToken::list).await?;
    Ok(tokens.iter().map(view).collect())
}

/// One token.
pub async fn show(state: &AppState, id: i64) -> Result<ApiTokenView, ApiError> {
    state
        .read(move |conn| ApiToken::find(conn, id))
        .await?
        .as_ref()
        .map(view)
        .ok_or_else(|| no_such_token(id))
}

/// Revokes token `id`: its next request is refused, on every allocator.
pub async fn revoke(state: &AppState, caller: &Caller, id: i64) -> Result<ApiTokenView, ApiError> {
    let revoked = state
        .writer
        .send(RevokeApiToken {
            id,
            actor: caller.audit_name(),
        })
        .await??;
    revoked.as_ref().map(view).ok_or_else(|| no_such_token(id))
}

fn no_such_token(id: i64) -> ApiError {
    ApiError::NotFound(format!("no API token has id {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lablink_schema::wire::ApiTokenScope;

    fn request(name: &str, expires_in_secs: Option<u64>) -> ApiTokenRequest {
        ApiTokenRequest {
            name: name.to_owned(),
            scope: ApiTokenScope::ReadOnly,
            expires_in_secs,
        }
    }

    #[test]
    fn requests_are_checked_at_the_edge() {
        let ok = checked(request("  nightly export ", Some(3600))).expect("valid");
        assert_eq!(ok.name, "nightly export");
        for bad in [
            request("", None),
            request("   ", None),
            request(&"x".repeat(101), None),
            request("a\nb", None),
            request("ok", Some(0)),
            request("ok", Some(MAX_TTL_SECS + 1)),
        ] {
            assert!(checked(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
