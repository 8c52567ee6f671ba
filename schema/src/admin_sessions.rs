//! The `admin_sessions` table: signed-in admin sessions, by the hash of their id.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{admin_sessions, used_login_nonces};
use crate::DbConnection;

/// A signed-in session.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = admin_sessions)]
pub struct AdminSession {
    pub id_hash: String,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

impl std::fmt::Debug for AdminSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSession")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl AdminSession {
    /// Stores a new session.
    pub fn create(conn: &mut DbConnection, session: &AdminSession) -> QueryResult<()> {
        diesel::insert_into(admin_sessions::table)
            .values((
                admin_sessions::id_hash.eq(&session.id_hash),
                admin_sessions::csrf_token.eq(&session.csrf_token),
                admin_sessions::created_at.eq(session.created_at),
                admin_sessions::expires_at.eq(session.expires_at),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// The session with this id hash, if it exists and has not expired at `now`.
    pub fn find_valid(
        conn: &mut DbConnection,
        id_hash: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Option<AdminSession>> {
        admin_sessions::table
            .find(id_hash)
            .filter(admin_sessions::expires_at.gt(now))
            .select(AdminSession::as_select())
            .first(conn)
            .optional()
    }

    /// Ends a session (logout). Returns whether it existed.
    pub fn delete(conn: &mut DbConnection, id_hash: &str) -> QueryResult<bool> {
        diesel::delete(admin_sessions::table.find(id_hash))
            .execute(conn)
            .map(|n| n > 0)
    }

    /// Forgets sessions that expired before `now`.
    pub fn delete_expired(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
        diesel::delete(admin_sessions::table.filter(admin_sessions::expires_at.le(now)))
            .execute(conn)
    }
}

/// Records the use of a sign-in nonce (by its hash) until `expires_at`, forgetting those past
/// their expiry. Returns `false` when it was used before: the form is being replayed.
pub fn use_login_nonce(
    conn: &mut DbConnection,
    nonce_hash: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::delete(used_login_nonces::table.filter(used_login_nonces::expires_at.le(now)))
        .execute(conn)?;
    on_backend!(conn, |c| diesel::insert_into(used_login_nonces::table)
        .values((
            used_login_nonces::nonce_hash.eq(nonce_hash),
            used_login_nonces::expires_at.eq(expires_at),
        ))
        .on_conflict_do_nothing()
        .execute(c))
    .map(|inserted| inserted == 1)
}
