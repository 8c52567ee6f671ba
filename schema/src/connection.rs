//! One connection type for both backends (PostgreSQL for deployments, bundled SQLite for a
//! single-binary lab), the pool built on it, and the per-connection SQLite settings.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ConnectionManager, CustomizeConnection};
use diesel::{PgConnection, SqliteConnection};

/// How long a SQLite writer waits for another writer's lock before giving up. Writes go
/// through one writer thread, so this only covers readers checkpointing the WAL.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// How long asking the pool for a connection may take before the request fails.
const POOL_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to either backend; every query in this crate runs on it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

impl fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbConnection::Pg(_) => "DbConnection::Pg",
            DbConnection::Sqlite(_) => "DbConnection::Sqlite",
        })
    }
}

impl DbConnection {
    /// Which backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Pg(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// The two supported database engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Where the database is, parsed from `DATABASE_URL` / `database.url` or the data directory.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A `postgres://` or `postgresql://` URL (may carry a password: never printed).
    Postgres(String),
    /// A SQLite database file.
    SqliteFile(PathBuf),
}

/// The URL may contain a password, so only the backend and, for SQLite, the path are shown.
impl fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseLocation::Postgres(url) => write!(f, "Postgres({})", redact_url(url)),
            DatabaseLocation::SqliteFile(path) => write!(f, "SqliteFile({})", path.display()),
        }
    }
}

impl fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseLocation::Postgres(url) => f.write_str(&redact_url(url)),
            DatabaseLocation::SqliteFile(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

/// A database URL the allocator cannot use.
#[derive(Debug, thiserror::Error)]
#[error("unsupported database URL `{shown}`: use postgres://… , postgresql://… or sqlite://PATH")]
pub struct UnsupportedDatabaseUrl {
    shown: String,
}

impl DatabaseLocation {
    /// Parses a database URL: `postgres://…`, `postgresql://…`, `sqlite://PATH` or `sqlite:PATH`.
    pub fn parse(url: &str) -> Result<Self, UnsupportedDatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(url.to_owned()));
        }
        let sqlite_path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"));
        match sqlite_path {
            Some(path) if !path.is_empty() => Ok(DatabaseLocation::SqliteFile(PathBuf::from(path))),
            _ => Err(UnsupportedDatabaseUrl {
                shown: redact_url(url),
            }),
        }
    }

    /// The SQLite file `lablink.sqlite` inside `data_dir`.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        DatabaseLocation::SqliteFile(data_dir.join("lablink.sqlite"))
    }

    /// Which engine this location needs.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseLocation::Postgres(_) => Backend::Postgres,
            DatabaseLocation::SqliteFile(_) => Backend::Sqlite,
        }
    }

    /// The URL diesel connects with.
    fn connection_url(&self) -> String {
        match self {
            DatabaseLocation::Postgres(url) => url.clone(),
            DatabaseLocation::SqliteFile(path) => path.display().to_string(),
        }
    }
}

/// Replaces the password of `scheme://user:password@host/…` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// A pool of [`DbConnection`]s.
pub type DbPool = r2d2::Pool<ConnectionManager<DbConnection>>;
/// A connection checked out of a [`DbPool`].
pub type PooledDbConnection = r2d2::PooledConnection<ConnectionManager<DbConnection>>;

/// Why a pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot create the SQLite data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build the connection pool for {location}: {source}")]
    Build {
        location: String,
        source: r2d2::PoolError,
    },
}

/// Builds a pool of at most `max_size` connections to `location`.
///
/// No connection is opened here: the first query (or the start-up migration) opens one, so a
/// database that is briefly down does not stop the process from starting and reporting it.
pub fn build_pool(location: &DatabaseLocation, max_size: u32) -> Result<DbPool, PoolError> {
    if let DatabaseLocation::SqliteFile(path) = location {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| PoolError::DataDir {
                path: dir.to_owned(),
                source,
            })?;
        }
    }
    let manager = ConnectionManager::<DbConnection>::new(location.connection_url());
    Ok(r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(0))
        .connection_timeout(POOL_CONNECTION_TIMEOUT)
        .connection_customizer(Box::new(SqliteSettings))
        .build_unchecked(manager))
}

/// Applies the settings SQLite needs on every new connection: write-ahead logging so readers
/// never block the writer, a busy timeout, and foreign keys (off by default in SQLite).
#[derive(Debug, Clone, Copy)]
struct SqliteSettings;

impl CustomizeConnection<DbConnection, r2d2::Error> for SqliteSettings {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        match conn {
            DbConnection::Pg(_) => Ok(()),
            DbConnection::Sqlite(sqlite) => sqlite
                .batch_execute(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"
                ))
                .map_err(r2d2::Error::QueryError),
        }
    }
}

/// Runs `write` in one transaction that writes. On SQLite it begins `IMMEDIATE`, taking the
/// write lock up front: a deferred transaction that reads first and writes later cannot wait
/// for a writer that committed meanwhile, so SQLite fails it at once with `database is
/// locked`; taken up front, the lock is waited for (`busy_timeout`) like any other.
/// Transactions inside `write` become savepoints, as with `Connection::transaction`.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    write: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    if !matches!(conn, DbConnection::Sqlite(_)) {
        return diesel::Connection::transaction(conn, write);
    }
    fn sqlite(conn: &mut DbConnection) -> Result<&mut SqliteConnection, diesel::result::Error> {
        match conn {
            DbConnection::Sqlite(inner) => Ok(inner),
            DbConnection::Pg(_) => Err(diesel::result::Error::BrokenTransactionManager),
        }
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite(conn)?, "BEGIN IMMEDIATE")?;
    match write(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(sqlite(conn)?)?;
            Ok(value)
        }
        Err(err) => {
            let inner = sqlite(conn)?;
            AnsiTransactionManager::rollback_transaction(inner)?;
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_their_backend() {
        assert_eq!(
            DatabaseLocation::parse("postgres://u@h/db")
                .map(|l| l.backend())
                .ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            DatabaseLocation::parse("postgresql://u@h/db")
                .map(|l| l.backend())
                .ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            DatabaseLocation::parse("sqlite:///var/lib/lablink/db.sqlite").ok(),
            Some(DatabaseLocation::SqliteFile(PathBuf::from(
                "/var/lib/lablink/db.sqlite"
            )))
        );
        assert!(DatabaseLocation::parse("mysql://u:pw@h/db").is_err());
        assert!(DatabaseLocation::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_never_appear_in_shown_urls() {
        let url = "postgres://lablink:hunter2@db.internal:5432/lablink";
        let location = DatabaseLocation::parse(url).expect("valid");
        for shown in [
            format!("{location}"),
            format!("{location:?}"),
            redact_url(url),
            DatabaseLocation::parse("mysql://lablink:hunter2@h/db")
                .expect_err("unsupported")
                .to_string(),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert_eq!(
            redact_url(url),
            "postgres://lablink:***@db.internal:5432/lablink"
        );
        assert_eq!(
            redact_url("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
    }
}
