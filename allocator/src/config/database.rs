//! Section `database`: where the data is and how many connections and writer threads the
//! allocator uses, with its own checks.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lablink_schema::connection::{redact_url, DatabaseLocation};
use serde::{Deserialize, Serialize};

use super::Invalid;

/// The writers that each use up to `writer_threads` connections at once: general writes,
/// researchers' claims and agents' reports.
pub const WRITERS: u32 = 3;

/// Section `database`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://…` to use PostgreSQL, or `sqlite://PATH`. Unset: SQLite in `data_dir`.
    /// May carry a password; it is never logged.
    pub url: Option<String>,
    /// Directory of the embedded SQLite database when no `url` is set.
    pub data_dir: PathBuf,
    /// Most connections the allocator opens to the database.
    pub pool_size: u32,
    /// Threads on PostgreSQL for each of the three writers: general writes, researchers'
    /// claims and agents' reports (SQLite always uses one each).
    pub writer_threads: usize,
    /// At start-up, how long to keep retrying an unreachable database before giving up, in seconds.
    pub startup_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            data_dir: PathBuf::from("lablink-data"),
            pool_size: 16,
            writer_threads: 4,
            startup_timeout_secs: 30,
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("data_dir", &self.data_dir)
            .field("pool_size", &self.pool_size)
            .field("writer_threads", &self.writer_threads)
            .field("startup_timeout_secs", &self.startup_timeout_secs)
            .finish()
    }
}

impl DatabaseConfig {
    /// Where the database is. Validated by [`Config::load`], so this cannot fail afterwards
    /// for a loaded configuration.
    pub fn location(&self) -> Result<DatabaseLocation, String> {
        match &self.url {
            Some(url) => DatabaseLocation::parse(url).map_err(|err| err.to_string()),
            None => Ok(DatabaseLocation::sqlite_in(&self.data_dir)),
        }
    }

    /// [`DatabaseConfig::startup_timeout_secs`] as a duration.
    pub fn startup_timeout(&self) -> Duration {
        Duration::from_secs(self.startup_timeout_secs)
    }

    /// Threads each writer runs on this backend (SQLite allows one writer at a time).
    fn threads_per_writer(&self) -> Result<u32, String> {
        Ok(match self.location()? {
            DatabaseLocation::SqliteFile(_) => 1,
            DatabaseLocation::Postgres(_) => u32::try_from(self.writer_threads).unwrap_or(u32::MAX),
        })
    }

    pub(super) fn validate(&self) -> Result<(), Invalid> {
        let threads = self
            .threads_per_writer()
            .map_err(|reason| Invalid::new("database.url", reason))?;
        if self.pool_size == 0 {
            return Err(Invalid::new("database.pool_size", "must be at least 1"));
        }
        if self.writer_threads == 0 {
            return Err(Invalid::new(
                "database.writer_threads",
                "must be at least 1",
            ));
        }
        // The three writers can hold all their connections at once under load; reads (pages,
        // lists, the researchers' page) need at least one more.
        let writers_hold = threads.saturating_mul(WRITERS);
        if self.pool_size <= writers_hold {
            return Err(Invalid::new(
                "database.pool_size",
                format!(
                    "must be larger than the {writers_hold} connections the {WRITERS} writers \
                     can hold at once ({WRITERS} × {threads} writer threads), so reads still \
                     get connections"
                ),
            ));
        }
        Ok(())
    }
}
