//! The `api_tokens` table: named, scoped tokens for the admin API, kept as SHA-256 hashes.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::api_tokens;
use crate::wire::{ApiTokenScope, ApiTokenState};
use crate::DbConnection;

/// A token as stored: never the token itself, only its hash.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = api_tokens)]
pub struct ApiToken {
    pub id: i64,
    pub token_hash: String,
    pub name: String,
    /// `read-only` or `admin` ([`ApiTokenScope`]; the table checks it).
    pub scope: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    /// The token it was made with, if any: it ends with it.
    pub parent_id: Option<i64>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// A token about to be stored.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct NewApiToken {
    pub token_hash: String,
    pub name: String,
    pub scope: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub parent_id: Option<i64>,
}

impl ApiToken {
    /// What the token may do; a scope this build does not know is read-only.
    pub fn scope(&self) -> ApiTokenScope {
        self.scope.parse().unwrap_or(ApiTokenScope::ReadOnly)
    }

    /// Whether the token works at `now`.
    pub fn state_at(&self, now: NaiveDateTime) -> ApiTokenState {
        if self.revoked_at.is_some() {
            ApiTokenState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            ApiTokenState::Expired
        } else {
            ApiTokenState::Active
        }
    }

    pub fn create(conn: &mut DbConnection, new: &NewApiToken) -> QueryResult<Self> {
        on_backend!(conn, |c| diesel::insert_into(api_tokens::table)
            .values(new)
            .returning(ApiToken::as_returning())
            .get_result(c))
    }

    /// Every token, newest first.
    pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Self>> {
        api_tokens::table
            .order(api_tokens::id.desc())
            .select(ApiToken::as_select())
            .load(conn)
    }

    pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Self>> {
        api_tokens::table
            .find(id)
            .select(ApiToken::as_select())
            .first(conn)
            .optional()
    }

    pub fn find_by_hash(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<Self>> {
        api_tokens::table
            .filter(api_tokens::token_hash.eq(token_hash))
            .select(ApiToken::as_select())
            .first(conn)
            .optional()
    }

    /// Revokes the token (once: revoking again keeps the first time). `None` if unknown.
    pub fn revoke(
        conn: &mut DbConnection,
        id: i64,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Self>> {
        diesel::update(
            api_tokens::table
                .find(id)
                .filter(api_tokens::revoked_at.is_null()),
        )
        .set(api_tokens::revoked_at.eq(now))
        .execute(conn)?;
        Self::find(conn, id)
    }

    /// Revokes every token made with token `id`, and those made with them, and so on;
    /// returns how many were revoked now.
    pub fn revoke_descendants(
        conn: &mut DbConnection,
        id: i64,
        now: NaiveDateTime,
    ) -> QueryResult<usize> {
        let mut parents = vec![id];
        let mut revoked = 0;
        while !parents.is_empty() {
            let children: Vec<i64> = api_tokens::table
                .filter(api_tokens::parent_id.eq_any(&parents))
                .select(api_tokens::id)
                .load(conn)?;
            revoked += diesel::update(
                api_tokens::table
                    .filter(api_tokens::id.eq_any(&children))
                    .filter(api_tokens::revoked_at.is_null()),
            )
            .set(api_tokens::revoked_at.eq(now))
            .execute(conn)?;
            parents = children;
        }
        Ok(revoked)
    }

    /// Notes a use at `now`, unless one was noted since `since` (so a busy script writes
    /// about once a minute, not on every request).
    pub fn note_use(
        conn: &mut DbConnection,
        id: i64,
        now: NaiveDateTime,
        since: NaiveDateTime,
    ) -> QueryResult<()> {
        diesel::update(
            api_tokens::table.find(id).filter(
                api_tokens::last_used_at
                    .is_null()
                    .or(api_tokens::last_used_at.lt(since)),
            ),
        )
        .set(api_tokens::last_used_at.eq(now))
        .execute(conn)?;
        Ok(())
    }
}
