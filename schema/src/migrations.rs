//! The embedded migrations of both backends and how they are applied: at start-up and by
//! `lablink-allocator migrate`, on PostgreSQL under an advisory lock so that two allocators
//! starting together do not race.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel::{PgConnection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::DbConnection;

/// PostgreSQL migrations, compiled into the binary.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
/// SQLite migrations, compiled into the binary; same version names as PostgreSQL's.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Advisory lock key held while migrating ("lablink" in ASCII), shared by every allocator.
const MIGRATION_LOCK_KEY: i64 = 0x006c_6162_6c69_6e6b;

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("could not take the migration lock: {0}")]
    Lock(#[source] diesel::result::Error),
    #[error("migration failed: {0}")]
    Apply(String),
}

/// Applies every pending migration and returns the versions it applied (empty when the
/// database was already current).
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    match conn {
        DbConnection::Pg(pg) => run_pending_postgres(pg),
        DbConnection::Sqlite(sqlite) => run_pending_sqlite(sqlite),
    }
}

fn run_pending_postgres(conn: &mut PgConnection) -> Result<Vec<String>, MigrationError> {
    // Session-level lock: held across diesel's per-migration transactions, released below or
    // when the connection closes (so a crashed migrator never leaves it held).
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(conn)
        .map_err(MigrationError::Lock)?;
    let applied = apply(conn, POSTGRES_MIGRATIONS);
    let unlocked = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
    let applied = applied?;
    unlocked.map_err(MigrationError::Lock)?;
    Ok(applied)
}

fn run_pending_sqlite(conn: &mut SqliteConnection) -> Result<Vec<String>, MigrationError> {
    // One SQLite file has one writer at a time; the database lock serialises migrators.
    apply(conn, SQLITE_MIGRATIONS)
}

fn apply<C, DB>(conn: &mut C, source: EmbeddedMigrations) -> Result<Vec<String>, MigrationError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    conn.run_pending_migrations(source)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|err| MigrationError::Apply(err.to_string()))
}

/// The versions not yet applied to this database. Readiness is "this is empty".
pub fn pending_versions(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    let pending = match conn {
        DbConnection::Pg(pg) => MigrationHarness::<Pg>::pending_migrations(pg, POSTGRES_MIGRATIONS)
            .map(|list| {
                list.iter()
                    .map(|m| m.name().version().to_string())
                    .collect()
            }),
        DbConnection::Sqlite(sqlite) => {
            MigrationHarness::<Sqlite>::pending_migrations(sqlite, SQLITE_MIGRATIONS).map(|list| {
                list.iter()
                    .map(|m| m.name().version().to_string())
                    .collect()
            })
        }
    };
    pending.map_err(|err| MigrationError::Apply(err.to_string()))
}

/// Every embedded migration version of `backend`, oldest first.
pub fn embedded_versions(backend: crate::Backend) -> Vec<String> {
    let versions =
        match backend {
            crate::Backend::Postgres => MigrationSource::<Pg>::migrations(&POSTGRES_MIGRATIONS)
                .map(|list| {
                    list.iter()
                        .map(|m| m.name().version().to_string())
                        .collect()
                }),
            crate::Backend::Sqlite => MigrationSource::<Sqlite>::migrations(&SQLITE_MIGRATIONS)
                .map(|list| {
                    list.iter()
                        .map(|m| m.name().version().to_string())
                        .collect()
                }),
        };
    let mut versions: Vec<String> = versions.unwrap_or_default();
    versions.sort();
    versions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let postgres = embedded_versions(Backend::Postgres);
        assert!(!postgres.is_empty());
        assert_eq!(postgres, embedded_versions(Backend::Sqlite));
    }
}
