//! The `idempotency_keys` table: a creation sent with `Idempotency-Key` is claimed before it
//! runs and answered after, so a retry gets the first answer instead of creating twice.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::idempotency_keys;
use crate::DbConnection;

/// A stored first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub location: Option<String>,
    /// The body, or for an answer that carried a secret, the body without it.
    pub body: String,
    /// The first answer carried a secret, which was not kept.
    pub secret_withheld: bool,
}

/// What a request with a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its earlier claim was abandoned): run the request, then answer.
    Run,
    /// The key was answered: send that answer again.
    Replay(StoredAnswer),
    /// A request with this key is running now.
    InProgress,
    /// The key was used for another route or another body.
    Mismatch { route: String },
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRow {
    route: String,
    request_hash: String,
    created_at: NaiveDateTime,
    status: Option<i32>,
    location: Option<String>,
    body: Option<String>,
    secret_withheld: bool,
}

/// Claims `key` for `caller`'s request. Keys older than `forget_before` are forgotten first;
/// an unanswered claim older than `abandoned_before` (its allocator died mid-request) is
/// taken over.
#[allow(clippy::too_many_arguments)]
pub fn claim(
    conn: &mut DbConnection,
    caller: &str,
    key: &str,
    route: &str,
    request_hash: &str,
    now: NaiveDateTime,
    forget_before: NaiveDateTime,
    abandoned_before: NaiveDateTime,
) -> QueryResult<Claim> {
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(forget_before)))
        .execute(conn)?;
    let inserted = on_backend!(conn, |c| diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::caller.eq(caller),
            idempotency_keys::key.eq(key),
            idempotency_keys::route.eq(route),
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::created_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(c))?;
    if inserted == 1 {
        return Ok(Claim::Run);
    }
    let row: KeyRow = idempotency_keys::table
        .find((caller, key))
        .select(KeyRow::as_select())
        .first(conn)?;
    if row.route != route || row.request_hash != request_hash {
        return Ok(Claim::Mismatch { route: row.route });
    }
    if let (Some(status), Some(body)) = (row.status, row.body) {
        return Ok(Claim::Replay(StoredAnswer {
            status: u16::try_from(status).unwrap_or(200),
            location: row.location,
            body,
            secret_withheld: row.secret_withheld,
        }));
    }
    if row.created_at < abandoned_before {
        // Taken over only if nobody else took it over meanwhile.
        let taken = diesel::update(
            idempotency_keys::table
                .find((caller, key))
                .filter(idempotency_keys::created_at.eq(row.created_at))
                .filter(idempotency_keys::answered_at.is_null()),
        )
        .set(idempotency_keys::created_at.eq(now))
        .execute(conn)?;
        if taken == 1 {
            return Ok(Claim::Run);
        }
    }
    Ok(Claim::InProgress)
}

/// Stores the answer of a claimed key.
pub fn answer(
    conn: &mut DbConnection,
    caller: &str,
    key: &str,
    answer: &StoredAnswer,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((caller, key)))
        .set((
            idempotency_keys::answered_at.eq(now),
            idempotency_keys::status.eq(i32::from(answer.status)),
            idempotency_keys::location.eq(answer.location.as_deref()),
            idempotency_keys::body.eq(&answer.body),
            idempotency_keys::secret_withheld.eq(answer.secret_withheld),
        ))
        .execute(conn)?;
    Ok(())
}

/// Lets a claimed key go unanswered (the request failed and created nothing), so a retry
/// runs it again.
pub fn release(conn: &mut DbConnection, caller: &str, key: &str) -> QueryResult<()> {
    diesel::delete(
        idempotency_keys::table
            .find((caller, key))
            .filter(idempotency_keys::answered_at.is_null()),
    )
    .execute(conn)?;
    Ok(())
}
