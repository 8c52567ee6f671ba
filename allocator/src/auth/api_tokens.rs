//! Admin API tokens (`Authorization: Bearer lla_…`): looked up by hash on every request, so a
//! revocation or an expiry takes effect at once on every allocator; refused saying why; and
//! their use noted, to the minute.

use chrono::{Duration, Utc};
use lablink_schema::api_tokens::ApiToken;
use lablink_schema::wire::{ApiTokenScope, ApiTokenState};

use super::{hash_token, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// A working token, as a request presented it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenGrant {
    pub id: i64,
    pub name: String,
    pub scope: ApiTokenScope,
}

impl ApiTokenGrant {
    /// Who a request with this token acts as.
    pub fn caller(&self) -> Caller {
        Caller::ApiToken {
            id: self.id,
            name: self.name.clone(),
            scope: self.scope,
        }
    }
}

/// How stale `last_used_at` may get before a use writes it again.
const USE_NOTED_EVERY: Duration = Duration::minutes(1);

/// The grant of `token`, or why it has none.
pub async fn resolve(state: &AppState, token: &str) -> Result<ApiTokenGrant, ApiError> {
    let hash = hash_token(token);
    let Some(stored) = state
        .read(move |conn| ApiToken::find_by_hash(conn, &hash))
        .await?
    else {
        return Err(ApiError::api_token_unknown());
    };
    let now = Utc::now().naive_utc();
    match stored.state_at(now) {
        ApiTokenState::Active => {}
        ApiTokenState::Expired => {
            return Err(ApiError::api_token_expired(
                stored.expires_at.unwrap_or(now),
            ))
        }
        ApiTokenState::Revoked => return Err(ApiError::api_token_revoked()),
    }
    if stored
        .last_used_at
        .is_none_or(|at| at < now - USE_NOTED_EVERY)
    {
        let id = stored.id;
        // Bookkeeping only: a failure to note the use must not refuse the request.
        if let Err(err) = state
            .small_write(move |conn| ApiToken::note_use(conn, id, now, now - USE_NOTED_EVERY))
            .await
        {
            tracing::warn!(token = id, error = %err, "cannot note the API token's use");
        }
    }
    Ok(ApiTokenGrant {
        id: stored.id,
        scope: stored.scope(),
        name: stored.name,
    })
}
