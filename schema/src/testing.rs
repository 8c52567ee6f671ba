//! Test support: each test gets its own PostgreSQL database, cloned from a migrated template
//! and dropped when the test ends, so tests run in parallel against the real server and may
//! commit freely. Also a throw-away SQLite database for the embedded backend.
//!
//! The server is `TEST_DATABASE_URL` (default [`DEFAULT_TEST_DATABASE_URL`]). When it cannot
//! be reached the test panics with the reason: PostgreSQL tests never skip silently.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::PgConnection;

use crate::connection::{build_pool, DatabaseLocation};
use crate::{migrations, DbConnection, DbPool};

/// The server tests use when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Serialises template creation across test processes running at once.
const TEMPLATE_LOCK_KEY: i64 = 0x006c_6162_7465_7374;
/// Pool size for a test database: enough for a few concurrent requests.
const TEST_POOL_SIZE: u32 = 8;

/// The URL of the PostgreSQL server tests run against. Without an `sslmode` of its own it
/// gets `sslmode=disable`: the tests' server is local, and libpq's TLS brings in OpenSSL,
/// whose clean-up when a test process exits can race the connections of threads still
/// running (a test binary was seen to crash with SIGSEGV after all its tests had passed).
pub fn server_url() -> String {
    let url =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    without_tls_unless_asked(&url)
}

fn without_tls_unless_asked(url: &str) -> String {
    if url.contains("sslmode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = without_query.find("://").map_or(0, |i| i + 3);
    let base = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// A database of its own for one test, dropped (with any open sessions) on `Drop`.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    server_url: String,
}

impl TestDatabase {
    /// A fresh, fully migrated database.
    pub fn migrated() -> Self {
        let server_url = server_url();
        let template = migrated_template(&server_url);
        Self::create(server_url, &format!("TEMPLATE {template}"))
    }

    /// A fresh database with no tables at all, for migration tests.
    pub fn empty() -> Self {
        Self::create(server_url(), "TEMPLATE template0")
    }

    fn create(server_url: String, template_clause: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "lablink_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = connect_server(&server_url);
        admin
            .batch_execute(&format!("CREATE DATABASE {name} {template_clause}"))
            .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
        let url = with_database(&server_url, &name);
        TestDatabase {
            name,
            url,
            server_url,
        }
    }

    /// This database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new connection to this database.
    pub fn connect(&self) -> DbConnection {
        DbConnection::Pg(
            PgConnection::establish(&self.url)
                .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", self.name)),
        )
    }

    /// A connection pool on this database.
    pub fn pool(&self) -> DbPool {
        build_pool(
            &DatabaseLocation::Postgres(self.url.clone()),
            TEST_POOL_SIZE,
        )
        .unwrap_or_else(|err| panic!("cannot build a pool for {}: {err}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort: a leftover database is harmless, and panicking in drop would hide the
        // test's own failure.
        if let Ok(mut admin) = PgConnection::establish(&self.server_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn connect_server(server_url: &str) -> PgConnection {
    PgConnection::establish(server_url).unwrap_or_else(|err| {
        panic!(
            "PostgreSQL tests need a reachable server at {} (set TEST_DATABASE_URL): {err}",
            crate::connection::redact_url(server_url)
        )
    })
}

/// The name of a template database holding the current migrations, creating it once.
///
/// Its name carries a hash of the migration files, so editing a migration yields a new
/// template. It is built under another name and renamed when complete, so a test process
/// that dies half-way never leaves a broken template behind.
fn migrated_template(server_url: &str) -> String {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let template = format!("lablink_test_tpl_{:016x}", migrations_fingerprint());
            let building = format!("{template}_building");
            let mut admin = connect_server(server_url);
            admin
                .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
                .unwrap_or_else(|err| panic!("cannot lock template creation: {err}"));
            let exists = diesel::dsl::select(diesel::dsl::exists(
                pg_database::table.filter(pg_database::datname.eq(&template)),
            ))
            .get_result::<bool>(&mut admin)
            .unwrap_or_else(|err| panic!("cannot look up template {template}: {err}"));
            if !exists {
                // Separate statements: PostgreSQL runs a multi-statement batch as one
                // transaction, and neither DROP nor CREATE DATABASE may run inside one.
                for statement in [
                    format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
                    format!("CREATE DATABASE {building} TEMPLATE template0"),
                ] {
                    admin
                        .batch_execute(&statement)
                        .unwrap_or_else(|err| panic!("cannot create template {building}: {err}"));
                }
                {
                    let mut conn = DbConnection::Pg(
                        PgConnection::establish(&with_database(server_url, &building))
                            .unwrap_or_else(|err| panic!("cannot connect to {building}: {err}")),
                    );
                    migrations::run_pending(&mut conn)
                        .unwrap_or_else(|err| panic!("cannot migrate {building}: {err}"));
                }
                admin
                    .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
                    .unwrap_or_else(|err| panic!("cannot finish template {template}: {err}"));
            }
            admin
                .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
                .unwrap_or_else(|err| panic!("cannot unlock template creation: {err}"));
            template
        })
        .clone()
}

diesel::table! {
    pg_database (datname) {
        datname -> Text,
    }
}

/// FNV-1a over every PostgreSQL migration file's path and contents, in sorted order.
fn migrations_fingerprint() -> u64 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/postgres");
    let mut files = Vec::new();
    collect_files(&root, &mut files);
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in files {
        let contents = std::fs::read(&file).unwrap_or_default();
        for byte in file.to_string_lossy().bytes().chain(contents) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A migrated SQLite database in its own temporary directory, removed on `Drop`.
#[derive(Debug)]
pub struct TestSqliteDatabase {
    dir: tempfile::TempDir,
}

impl TestSqliteDatabase {
    /// A fresh, fully migrated SQLite database.
    pub fn migrated() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("cannot make a temp dir: {err}"));
        let db = TestSqliteDatabase { dir };
        let mut conn = db
            .pool()
            .get()
            .unwrap_or_else(|err| panic!("cannot open SQLite: {err}"));
        migrations::run_pending(&mut conn).unwrap_or_else(|err| panic!("cannot migrate: {err}"));
        db
    }

    /// Where the database lives.
    pub fn location(&self) -> DatabaseLocation {
        DatabaseLocation::sqlite_in(self.dir.path())
    }

    /// A connection pool on this database.
    pub fn pool(&self) -> DbPool {
        build_pool(&self.location(), TEST_POOL_SIZE)
            .unwrap_or_else(|err| panic!("cannot build a SQLite pool: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::{with_database, without_tls_unless_asked};

    #[test]
    fn test_connections_skip_tls_unless_the_url_asks_for_it() {
        assert_eq!(
            without_tls_unless_asked("postgres://u@h/db"),
            "postgres://u@h/db?sslmode=disable"
        );
        assert_eq!(
            without_tls_unless_asked("postgres://u@h/db?application_name=t"),
            "postgres://u@h/db?application_name=t&sslmode=disable"
        );
        assert_eq!(
            without_tls_unless_asked("postgres://u@h/db?sslmode=require"),
            "postgres://u@h/db?sslmode=require"
        );
    }

    #[test]
    fn database_name_is_replaced_keeping_host_and_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
            "postgres://u:p@h/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t3"), "postgres://u@h/t3");
    }
}
