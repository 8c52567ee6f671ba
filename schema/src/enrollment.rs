//! The `enrollment_tokens` and `vm_enrollments` tables: the admin-made tokens with which a
//! lab's own machines join, and which VMs joined that way. Enrolling is one transaction that
//! checks the token, uses it once, and adds the VM with its own token.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{enrollment_tokens, vm_enrollments, vms};
use crate::vms::Vm;
use crate::wire::VmStatus;
use crate::DbConnection;

/// An enrollment token as stored: never the token itself, only its hash.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = enrollment_tokens)]
pub struct EnrollmentToken {
    pub id: i64,
    pub token_hash: String,
    /// What the admin called it (which machines it is for).
    pub label: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub revoked_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("expires_at", &self.expires_at)
            .field("max_uses", &self.max_uses)
            .field("uses", &self.uses)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// A token about to be stored.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = enrollment_tokens)]
pub struct NewEnrollmentToken {
    pub token_hash: String,
    pub label: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub max_uses: Option<i32>,
}

/// Why an enrollment token cannot be used (nothing is written in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Unknown,
    Expired,
    Revoked,
    UsedUp,
}

impl TokenRefusal {
    /// Said to the machine that presented the token.
    pub fn explain(self) -> &'static str {
        match self {
            TokenRefusal::Unknown => "the enrollment token is not known to this allocator",
            TokenRefusal::Expired => "the enrollment token has expired",
            TokenRefusal::Revoked => "the enrollment token was revoked",
            TokenRefusal::UsedUp => "the enrollment token has been used as often as it allows",
        }
    }
}

/// Why an enrollment did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollRefusal {
    Token(TokenRefusal),
    /// A VM of that name exists; it can only act with its own token.
    HostnameTaken,
    /// As many VMs have enrolled as the limit allows.
    LimitReached {
        limit: i64,
    },
}

/// Which credential let a VM join by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollVia<'a> {
    /// The hash of an enrollment token.
    Token(&'a str),
    /// Token-less, under the legacy switch: the VM gets no token.
    Legacy,
}

impl EnrollmentToken {
    /// Whether the token can be used at `now`, and if not, why.
    pub fn usable_at(&self, now: NaiveDateTime) -> Result<(), TokenRefusal> {
        if self.revoked_at.is_some() {
            Err(TokenRefusal::Revoked)
        } else if self.expires_at.is_some_and(|at| at <= now) {
            Err(TokenRefusal::Expired)
        } else if self.max_uses.is_some_and(|max| self.uses >= max) {
            Err(TokenRefusal::UsedUp)
        } else {
            Ok(())
        }
    }

    pub fn create(conn: &mut DbConnection, new: &NewEnrollmentToken) -> QueryResult<Self> {
        on_backend!(conn, |c| diesel::insert_into(enrollment_tokens::table)
            .values(new)
            .returning(EnrollmentToken::as_returning())
            .get_result(c))
    }

    /// Every token, newest first.
    pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Self>> {
        enrollment_tokens::table
            .order(enrollment_tokens::id.desc())
            .select(EnrollmentToken::as_select())
            .load(conn)
    }

    pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<Self>> {
        enrollment_tokens::table
            .find(id)
            .select(EnrollmentToken::as_select())
            .first(conn)
            .optional()
    }

    fn find_by_hash(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<Self>> {
        enrollment_tokens::table
            .filter(enrollment_tokens::token_hash.eq(token_hash))
            .select(EnrollmentToken::as_select())
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
            enrollment_tokens::table
                .find(id)
                .filter(enrollment_tokens::revoked_at.is_null()),
        )
        .set(enrollment_tokens::revoked_at.eq(now))
        .execute(conn)?;
        Self::find(conn, id)
    }
}

/// How many VMs joined by themselves (enrollment or legacy registration).
pub fn count_enrolled(conn: &mut DbConnection) -> QueryResult<i64> {
    vm_enrollments::table.count().get_result(conn)
}

/// How many VMs a provider made (every VM that did not join by itself).
pub fn count_provider_vms(conn: &mut DbConnection) -> QueryResult<i64> {
    vms::table
        .left_join(vm_enrollments::table)
        .filter(vm_enrollments::hostname.is_null())
        .count()
        .get_result(conn)
}

/// Adds the VM `hostname` in `status` with `vm_token_hash` (none under the legacy switch), using the
/// enrollment token once. Must run inside a transaction, which the caller rolls back on a
/// refusal. At most `limit` VMs may have enrolled.
pub fn enroll(
    conn: &mut DbConnection,
    via: EnrollVia<'_>,
    hostname: &str,
    status: VmStatus,
    vm_token_hash: Option<&str>,
    limit: i64,
    now: NaiveDateTime,
) -> QueryResult<Result<(Vm, Option<EnrollmentToken>), EnrollRefusal>> {
    // Enrollments are rare: one at a time across every allocator keeps the count exact.
    if let DbConnection::Pg(pg) = conn {
        diesel::sql_query("LOCK TABLE vm_enrollments IN SHARE ROW EXCLUSIVE MODE").execute(pg)?;
    }
    let token = match via {
        EnrollVia::Token(token_hash) => {
            let Some(token) = EnrollmentToken::find_by_hash(conn, token_hash)? else {
                return Ok(Err(EnrollRefusal::Token(TokenRefusal::Unknown)));
            };
            if let Err(refusal) = token.usable_at(now) {
                return Ok(Err(EnrollRefusal::Token(refusal)));
            }
            Some(token)
        }
        EnrollVia::Legacy => None,
    };
    if Vm::find_by_hostname(conn, hostname)?.is_some() {
        return Ok(Err(EnrollRefusal::HostnameTaken));
    }
    if count_enrolled(conn)? >= limit {
        return Ok(Err(EnrollRefusal::LimitReached { limit }));
    }
    let token = match token {
        Some(token) => {
            // Guarded again in the statement, so two uses can never both take the last one.
            let used = diesel::update(
                enrollment_tokens::table
                    .find(token.id)
                    .filter(enrollment_tokens::uses.eq(token.uses)),
            )
            .set(enrollment_tokens::uses.eq(token.uses + 1))
            .execute(conn)?;
            if used != 1 {
                return Ok(Err(EnrollRefusal::Token(TokenRefusal::UsedUp)));
            }
            EnrollmentToken::find(conn, token.id)?
        }
        None => None,
    };
    let vm = on_backend!(conn, |c| diesel::insert_into(vms::table)
        .values((
            vms::hostname.eq(hostname),
            vms::status.eq(status.as_str()),
            vms::token_hash.eq(vm_token_hash),
            vms::last_heartbeat_at.eq(now),
            vms::created_at.eq(now),
            vms::updated_at.eq(now),
            vms::state_since.eq(now),
        ))
        .returning(Vm::as_returning())
        .get_result(c))?;
    diesel::insert_into(vm_enrollments::table)
        .values((
            vm_enrollments::hostname.eq(hostname),
            vm_enrollments::token_id.eq(token.as_ref().map(|t| t.id)),
            vm_enrollments::enrolled_at.eq(now),
        ))
        .execute(conn)?;
    Ok(Ok((vm, token)))
}
