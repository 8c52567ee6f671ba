//! The `app_secrets` table: values generated once and shared by every allocator process
//! (the cookie-signing key, a generated admin password's hash). Never logged.

use diesel::prelude::*;

use crate::schema::app_secrets;
use crate::DbConnection;

/// Name of the key that signs session cookies.
pub const SESSION_KEY: &str = "session_key";
/// Name of the generated admin password's argon2 hash.
pub const ADMIN_PASSWORD_HASH: &str = "admin_password_hash";

/// The secret called `name`, if it exists.
pub fn find(conn: &mut DbConnection, name: &str) -> QueryResult<Option<String>> {
    app_secrets::table
        .find(name)
        .select(app_secrets::value)
        .first(conn)
        .optional()
}

/// Stores `value` under `name` unless a value is already there, and returns the value that
/// is stored afterwards: when two processes race, both end up with the winner's value.
pub fn get_or_insert(
    conn: &mut DbConnection,
    name: &str,
    value: &str,
    now: chrono::NaiveDateTime,
) -> QueryResult<String> {
    on_backend!(conn, |c| diesel::insert_into(app_secrets::table)
        .values((
            app_secrets::name.eq(name),
            app_secrets::value.eq(value),
            app_secrets::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    app_secrets::table
        .find(name)
        .select(app_secrets::value)
        .first(conn)
}
